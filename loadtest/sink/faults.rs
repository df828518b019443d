//! The sink's fault schedule (`--faults`): phases cycled until exit, each an upstream
//! misbehaving one way for a while — an error storm of one status, latency above the
//! caller's deadline, its connections cut (GOAWAY, TCP reset) or the whole server down
//! (port refused) and back on the same port. Every shard walks the same schedule from
//! the same start instant, so the phases line up across shards without talking.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_channel::mpsc::UnboundedSender;
use smtpgate::upstream::grpc::Code;
use smtpgate::upstream::sink::{Connections, Cut};

/// What the upstream does during one phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Serves as the other flags say.
    Normal,
    /// Every call answered with this status.
    Storm(Code),
    /// Every call answered only after this long.
    Latency(Duration),
    /// The open connections cut this way as the phase begins; then served normally.
    Cut(Cut),
    /// The listener closed and the connections closed: connections are refused.
    Down,
}

impl Fault {
    /// The kinds, for counting: `Fault::kind` indexes this.
    pub const KINDS: [&'static str; 7] = [
        "normal", "storm", "latency", "goaway", "reset", "close", "down",
    ];

    pub fn kind(self) -> usize {
        match self {
            Self::Normal => 0,
            Self::Storm(_) => 1,
            Self::Latency(_) => 2,
            Self::Cut(Cut::GoAway) => 3,
            Self::Cut(Cut::Reset) => 4,
            Self::Cut(Cut::Close) => 5,
            Self::Down => 6,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phase {
    pub fault: Fault,
    pub lasting: Duration,
}

/// The phases, cycled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule(pub Vec<Phase>);

/// A gRPC status by its name (`UNAVAILABLE`, any case).
pub fn status_code(name: &str) -> Result<Code, String> {
    (1..=16)
        .map(Code)
        .find(|c| c.name().eq_ignore_ascii_case(name.trim()))
        .ok_or_else(|| format!("{name:?} is not a gRPC status name (e.g. UNAVAILABLE)"))
}

impl std::str::FromStr for Schedule {
    type Err = String;

    /// Comma-separated `KIND[=ARG][:DURATION]`: `ok:200ms`, `status=UNAVAILABLE:100ms`,
    /// `latency=600ms:150ms`, `goaway`, `reset`, `close` (cut, then `:DURATION` served
    /// normally; 0 by default), `down:300ms`.
    fn from_str(text: &str) -> Result<Self, String> {
        let duration =
            |t: &str| humantime::parse_duration(t.trim()).map_err(|e| format!("{t:?}: {e}"));
        let phases = text
            .split(',')
            .map(|phase| {
                let (what, lasting) = match phase.split_once(':') {
                    Some((what, lasting)) => (what, duration(lasting)?),
                    None => (phase, Duration::ZERO),
                };
                let (kind, argument) = match what.split_once('=') {
                    Some((kind, argument)) => (kind.trim(), Some(argument)),
                    None => (what.trim(), None),
                };
                let fault = match (kind, argument) {
                    ("ok", None) => Fault::Normal,
                    ("status", Some(name)) => Fault::Storm(status_code(name)?),
                    ("latency", Some(delay)) => Fault::Latency(duration(delay)?),
                    ("goaway", None) => Fault::Cut(Cut::GoAway),
                    ("reset", None) => Fault::Cut(Cut::Reset),
                    ("close", None) => Fault::Cut(Cut::Close),
                    ("down", None) => Fault::Down,
                    _ => {
                        return Err(format!(
                            "{phase:?}: expected ok, status=NAME, latency=DURATION, goaway, \
                             reset, close or down, each with an optional :DURATION"
                        ));
                    }
                };
                let holds = matches!(fault, Fault::Normal | Fault::Storm(_) | Fault::Latency(_));
                if (holds || fault == Fault::Down) && lasting.is_zero() {
                    return Err(format!("{phase:?} needs a :DURATION"));
                }
                Ok(Phase { fault, lasting })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self(phases))
    }
}

/// What the serving loop of a shard is told: the server goes down, or comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    Down,
    Up,
}

/// One shard's side of the schedule: sets the fault in force (read by the call handler),
/// cuts the connections, powers the server down and up, and counts each phase as it
/// begins.
pub struct Injector {
    pub current: Rc<Cell<Fault>>,
    pub connections: Rc<Connections>,
    pub power: UnboundedSender<Power>,
    /// Called with each phase as it begins and the number of connections it cut.
    pub count: Box<dyn Fn(Fault, usize)>,
    /// Set (by SIGUSR1): the schedule ends at the next phase boundary.
    pub calm: Arc<AtomicBool>,
}

impl Injector {
    /// Walks the schedule from `started` until calmed, then serves normally.
    pub async fn run(self, schedule: Schedule, started: Instant) {
        let mut boundary = started;
        for phase in schedule.0.iter().cycle() {
            if self.calm.load(Ordering::Relaxed) {
                self.current.set(Fault::Normal);
                return;
            }
            let cut = match phase.fault {
                Fault::Cut(cut) => self.connections.cut_all(cut),
                Fault::Down => {
                    let _ = self.power.unbounded_send(Power::Down);
                    0
                }
                _ => 0,
            };
            (self.count)(phase.fault, cut);
            self.current.set(match phase.fault {
                Fault::Cut(_) => Fault::Normal,
                fault => fault,
            });
            boundary += phase.lasting;
            glommio::timer::sleep(boundary.saturating_duration_since(Instant::now())).await;
            if phase.fault == Fault::Down {
                let _ = self.power.unbounded_send(Power::Up);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_of_phase() {
        let ms = Duration::from_millis;
        let schedule: Schedule = "ok:200ms, status=unavailable:100ms,latency=600ms:150ms,\
            goaway,reset:50ms,close,down:300ms"
            .parse()
            .expect("parses");
        let expected = [
            (Fault::Normal, ms(200)),
            (Fault::Storm(Code::UNAVAILABLE), ms(100)),
            (Fault::Latency(ms(600)), ms(150)),
            (Fault::Cut(Cut::GoAway), ms(0)),
            (Fault::Cut(Cut::Reset), ms(50)),
            (Fault::Cut(Cut::Close), ms(0)),
            (Fault::Down, ms(300)),
        ];
        let expected: Vec<Phase> = expected
            .into_iter()
            .map(|(fault, lasting)| Phase { fault, lasting })
            .collect();
        assert_eq!(schedule, Schedule(expected));
        let kinds: Vec<usize> = schedule.0.iter().map(|p| p.fault.kind()).collect();
        assert_eq!(kinds, [0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        for bad in [
            "",
            "ok",
            "down",
            "status=NOPE:1s",
            "status:1s",
            "latency=soon:1s",
            "goaway=1:1s",
            "explode:1s",
            "ok:forever",
        ] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad:?}");
        }
    }
}
