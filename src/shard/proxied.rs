//! Reading a PROXY header off a trusted balancer's connection, before the banner and
//! before TLS. The header is peeked until whole and then read exactly, so the bytes
//! behind it (a TLS ClientHello, say) stay in the socket for whoever reads next.

use std::time::{Duration, Instant};

use futures_lite::AsyncReadExt;
use glommio::net::TcpStream;

use crate::config::ProxyConfig;
use crate::proxy::{self, Invalid, Parse, Source};

/// Why a trusted peer's connection is closed without a banner.
#[derive(Debug)]
pub enum Refusal {
    Invalid(Invalid),
    Timeout,
    Io(std::io::Error),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(why) => why.fmt(f),
            Self::Timeout => f.write_str("PROXY header timed out"),
            Self::Io(e) => write!(f, "reading the PROXY header: {e}"),
        }
    }
}

/// A header that is still incomplete is peeked again after this pause (a header
/// normally arrives whole; a slow one must not spin the shard).
const RETRY: Duration = Duration::from_millis(5);

/// Reads the header; the connection's next byte is then the client's first.
pub async fn read_header(tcp: &mut TcpStream, config: &ProxyConfig) -> Result<Source, Refusal> {
    let deadline = Instant::now() + config.timeout;
    let mut buf = [0u8; proxy::MAX_V2];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let peek = async { Ok(tcp.peek(&mut buf).await) };
        let seen = match glommio::timer::timeout(left, peek).await {
            Ok(Ok(0)) => return Err(Refusal::Io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(Ok(n)) => n,
            Ok(Err(error)) => return Err(Refusal::Io(error.into())),
            Err(_) => return Err(Refusal::Timeout),
        };
        match proxy::parse(&buf[..seen]) {
            Parse::Header { source, length } => {
                let mut header = [0u8; proxy::MAX_V2];
                tcp.read_exact(&mut header[..length])
                    .await
                    .map_err(Refusal::Io)?;
                return Ok(source);
            }
            Parse::Invalid(why) => return Err(Refusal::Invalid(why)),
            Parse::Incomplete if Instant::now() + RETRY >= deadline => {
                return Err(Refusal::Timeout);
            }
            Parse::Incomplete => glommio::timer::sleep(RETRY).await,
        }
    }
}
