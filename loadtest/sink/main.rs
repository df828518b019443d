//! `smtpgate-sink`: an upstream for load and fault tests. A real gRPC server of the
//! Notify contract (h2 on glommio: the same server code as `--dev`'s sink, one executor
//! per shard so it is never the bottleneck) that answers OK with a message code, after
//! an optional added latency, or fails a chosen fraction of calls with chosen statuses.
//! `--faults` cycles through phases of connection and status faults (see `faults.rs`).
//! `--record` prints a count/bytes summary (one JSON line on stdout) at exit; `--print`
//! prints every request as one JSON line, as `--dev`'s sink does.
#![allow(clippy::disallowed_methods)] // A tool: it may read the clock.

mod faults;
mod latency;
#[path = "../rng.rs"]
mod rng;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_channel::mpsc::{UnboundedReceiver, unbounded};
use futures_util::StreamExt as _;
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
use mimalloc::MiMalloc;
use smtpgate::upstream::grpc::{Code, Status};
use smtpgate::upstream::sink::{self, Answer, Call, Connections, Cut, Handler};

use faults::{Fault, Injector, Power, Schedule};

use latency::{Latency, Rng};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "smtpgate-sink",
    version,
    about = "A Notify gRPC upstream for load and fault tests"
)]
struct Args {
    /// Address to listen on (h2c).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,

    /// Executors (each with its own SO_REUSEPORT listener).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    shards: u16,

    /// gRPC method path served.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/notify.v2.MessagingService/Notify"
    )]
    method: String,

    /// Added latency per call: 2ms, uniform:1ms-5ms, exp:2ms (exponential, that mean), or 0.
    #[arg(long, value_name = "DIST", default_value = "0")]
    latency: Latency,

    /// Fail this fraction of calls with this status, e.g. UNAVAILABLE=0.01 (repeatable).
    #[arg(long = "error-rate", value_name = "STATUS=RATE", value_parser = parse_error_rate)]
    error_rates: Vec<(Code, f64)>,

    /// Cycle through these fault phases until exit, e.g.
    /// `ok:200ms,status=UNAVAILABLE:100ms,latency=2s:150ms,goaway,reset,close,down:300ms`
    /// (error storm, answers late, connections cut by GOAWAY / TCP reset / close,
    /// port refused then served again). SIGUSR1 ends the faults at the next phase
    /// boundary.
    #[arg(long, value_name = "PHASES")]
    faults: Option<Schedule>,

    /// Print a summary (requests, bytes, replies by status, fault phases) as one JSON
    /// line at exit.
    #[arg(long)]
    record: bool,

    /// Print every request as one JSON line on stdout (as --dev does; the token
    /// redacted), meta_data and placeholders included. For checking, not for load.
    #[arg(long)]
    print: bool,

    /// Exit by itself after this long (otherwise on SIGINT/SIGTERM).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
}

fn parse_error_rate(text: &str) -> Result<(Code, f64), String> {
    let (name, rate) = text
        .split_once('=')
        .ok_or("expected STATUS=RATE, e.g. UNAVAILABLE=0.01")?;
    let code = faults::status_code(name)?;
    let rate: f64 = rate
        .trim()
        .parse()
        .map_err(|_| format!("{rate:?} is not a number"))?;
    if !(0.0..=1.0).contains(&rate) {
        return Err(format!("rate {rate} is not between 0 and 1"));
    }
    Ok((code, rate))
}

/// One shard's counters, on their own cache lines: only that shard writes them.
#[repr(align(128))]
#[derive(Default)]
struct ShardStats {
    requests: AtomicU64,
    bytes: AtomicU64,
    by_status: [AtomicU64; 17],
    /// Fault phases begun, by `Fault::kind`.
    phases: [AtomicU64; Fault::KINDS.len()],
    connections_cut: AtomicU64,
}

fn main() {
    let args = Args::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        std::process::exit(if e.use_stderr() { 2 } else { 0 });
    });
    let shards = usize::from(args.shards);
    let stats: Arc<Vec<ShardStats>> =
        Arc::new((0..shards).map(|_| ShardStats::default()).collect());
    // The placeholder keeps the port this process's while `down` phases close the
    // listeners (a bound socket that does not listen: connections are refused).
    let (addr, _placeholder) =
        smtpgate::shard::reserve(args.listen).unwrap_or_else(|e| fail(&e.to_string()));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let next_id = Arc::new(AtomicUsize::new(0));
    let settings = Arc::new((args.method.clone(), args.latency, args.error_rates.clone()));
    let (print, schedule) = (args.print, args.faults.clone());
    let pool_stats = Arc::clone(&stats);
    let started = Instant::now();
    let calm = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&calm))
        .unwrap_or_else(|e| fail(&e.to_string()));
    let handles = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(shards))
        .name("smtpgate-sink")
        .io_memory(512 << 10)
        .on_all_shards(move || {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            let calm = Arc::clone(&calm);
            async move {
                let (method, latency, error_rates) = (*settings).clone();
                let current = Rc::new(Cell::new(Fault::Normal));
                let connections = Rc::new(Connections::default());
                let (power, powered) = unbounded();
                let stats = Arc::clone(&pool_stats);
                let handler = shard_handler(id, latency, error_rates, stats, print, &current);
                if let Some(schedule) = schedule {
                    let injector = Injector {
                        current,
                        connections: Rc::clone(&connections),
                        power,
                        count: Box::new(move |fault, cut| {
                            let mine = &pool_stats[id];
                            mine.phases[fault.kind()].fetch_add(1, Ordering::Relaxed);
                            mine.connections_cut
                                .fetch_add(cut as u64, Ordering::Relaxed);
                        }),
                        calm,
                    };
                    glommio::spawn_local(injector.run(schedule, started)).detach();
                }
                let shard = Shard {
                    addr,
                    method: method.into(),
                    handler,
                    connections,
                    powered,
                };
                shard.serve(ready_tx).await;
            }
        })
        .unwrap_or_else(|e| fail(&e.to_string()));
    for _ in 0..shards {
        match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => fail(&format!("--listen {addr}: {e}")),
            Err(_) => fail("a shard did not start"),
        }
    }
    println!("smtpgate-sink listening on {addr}");

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .unwrap_or_else(|e| fail(&e.to_string()));
    }
    while !stop.load(Ordering::Relaxed) && args.duration.is_none_or(|d| started.elapsed() < d) {
        std::thread::sleep(Duration::from_millis(50));
    }
    if args.record {
        println!("{}", summary(&stats, started.elapsed()));
    }
    // The shards serve forever; the process ends here.
    drop(handles);
    std::process::exit(0);
}

/// One shard's server: serves `addr` until a `down` phase, then again when it ends.
struct Shard {
    addr: SocketAddr,
    method: Rc<str>,
    handler: Handler,
    connections: Rc<Connections>,
    powered: UnboundedReceiver<Power>,
}

impl Shard {
    async fn serve(mut self, ready: std::sync::mpsc::Sender<Result<(), String>>) {
        let mut ready = Some(ready);
        loop {
            let listener = match smtpgate::shard::listen(self.addr) {
                Ok(listener) => listener,
                Err(e) => match ready.take() {
                    Some(ready) => {
                        let _ = ready.send(Err(e.to_string()));
                        return;
                    }
                    // Coming back from `down`: try again shortly.
                    None => {
                        eprintln!("smtpgate-sink: listening again on {}: {e}", self.addr);
                        glommio::timer::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            if let Some(ready) = ready.take() {
                let _ = ready.send(Ok(()));
            }
            let handler = Rc::clone(&self.handler);
            let down = wait_for(&mut self.powered, Power::Down);
            let method = Rc::clone(&self.method);
            sink::serve_until(&listener, method, handler, &self.connections, down).await;
            drop(listener);
            self.connections.cut_all(Cut::Close);
            wait_for(&mut self.powered, Power::Up).await;
        }
    }
}

/// Waits until `power` says `wanted` (for ever once nobody can say it).
async fn wait_for(power: &mut UnboundedReceiver<Power>, wanted: Power) {
    while let Some(said) = power.next().await {
        if said == wanted {
            return;
        }
    }
    std::future::pending().await
}

fn shard_handler(
    id: usize,
    latency: Latency,
    error_rates: Vec<(Code, f64)>,
    stats: Arc<Vec<ShardStats>>,
    print: bool,
    fault: &Rc<Cell<Fault>>,
) -> Handler {
    let rng = std::cell::RefCell::new(Rng::new(id as u64 + 1));
    let counter = std::cell::Cell::new(0u64);
    let fault = Rc::clone(fault);
    Rc::new(move |call: Call<'_>| {
        let mine = &stats[id];
        mine.requests.fetch_add(1, Ordering::Relaxed);
        mine.bytes.fetch_add(call.bytes as u64, Ordering::Relaxed);
        let mut rng = rng.borrow_mut();
        let refusal = match fault.get() {
            Fault::Storm(code) => Some(Status::new(code, "storm injected by smtpgate-sink")),
            _ => drawn_refusal(&error_rates, rng.unit()),
        };
        let delay = match fault.get() {
            Fault::Latency(late) => Some(late),
            _ => latency.sample(&mut rng),
        };
        let result = refusal.map_or_else(
            || {
                counter.set(counter.get() + 1);
                Ok(format!("SINK-{id}-{}", counter.get()))
            },
            Err,
        );
        if print {
            let shown = result.as_ref().map_or("", String::as_str);
            sink::print_call(&call, shown);
        }
        let code = result
            .as_ref()
            .map_or_else(|s: &Status| s.code.0 as usize, |_| 0);
        mine.by_status[code.min(16)].fetch_add(1, Ordering::Relaxed);
        Answer { result, delay }
    })
}

/// The `--error-rate` status that `draw` (uniform in 0..1) falls on, if any.
fn drawn_refusal(error_rates: &[(Code, f64)], mut draw: f64) -> Option<Status> {
    for &(code, rate) in error_rates {
        if draw < rate {
            return Some(Status::new(code, "injected by smtpgate-sink"));
        }
        draw -= rate;
    }
    None
}

fn summary(stats: &[ShardStats], elapsed: Duration) -> serde_json::Value {
    let total = |f: &dyn Fn(&ShardStats) -> u64| stats.iter().map(f).sum::<u64>();
    let requests = total(&|s| s.requests.load(Ordering::Relaxed));
    let bytes = total(&|s| s.bytes.load(Ordering::Relaxed));
    let mut by_status = serde_json::Map::new();
    for code in 0..17 {
        let n = total(&|s| s.by_status[code].load(Ordering::Relaxed));
        if n > 0 {
            by_status.insert(Code(code as u32).name().into(), n.into());
        }
    }
    // Every shard walks the same schedule: the first one's count is the phases'.
    let mut phases = serde_json::Map::new();
    for (kind, name) in Fault::KINDS.iter().enumerate() {
        let n = stats[0].phases[kind].load(Ordering::Relaxed);
        if n > 0 {
            phases.insert((*name).into(), n.into());
        }
    }
    serde_json::json!({
        "requests": requests,
        "bytes": bytes,
        "seconds": elapsed.as_secs_f64(),
        "requests_per_s": requests as f64 / elapsed.as_secs_f64().max(1e-9),
        "by_status": by_status,
        "fault_phases": phases,
        "connections_cut": total(&|s| s.connections_cut.load(Ordering::Relaxed)),
    })
}

fn fail(message: &str) -> ! {
    eprintln!("smtpgate-sink: {message}");
    std::process::exit(2);
}
