//! The SMTP submission protocol, sans IO: RFC 5321 with STARTTLS (RFC 3207), AUTH
//! (RFC 4954), PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME and
//! ENHANCEDSTATUSCODES. No sockets, no executor, no clock: see `session`.

pub mod auth;
pub mod command;
pub mod data;
pub mod limits;
pub mod line;
pub mod reply;
pub mod session;

#[cfg(any(test, feature = "fuzzing"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use auth::{AuthPolicy, Credentials, Token, TokenOwner};
pub use limits::{BareLf, Limits};
pub use reply::Reply;
pub use session::{Ending, Event, Mode, Notice, Session, SessionConfig, Submission};
