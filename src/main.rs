//! The `smtpgate` binary: flags → `Config` → shards (and their signals). Nothing else
//! lives here.

use clap::Parser as _;
use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

use std::io::IsTerminal as _;
use std::sync::Arc;

use smtpgate::config::{Args, Config, LogFormat};
use smtpgate::shard::metrics::Telemetry;

fn main() {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) if !error.use_stderr() => {
            // --help and --version.
            let _ = error.print();
            return;
        }
        Err(error) => fail(&first_line(&error.to_string())),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SMTPGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, never into files or the journal.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs.init(),
        // One object per line, the event's fields at the top level.
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let config = Config::from_args(args).unwrap_or_else(|e| fail(&e.to_string()));
    let signals = smtpgate::signals::Watcher::install()
        .unwrap_or_else(|e| fail(&format!("cannot handle signals: {e}")));
    // The admin listener first, so that it answers "starting" while the shards start.
    let telemetry = Arc::new(Telemetry::new(config.shards));
    let admin = config.admin.and_then(|admin| {
        match smtpgate::admin::start(admin.addr, Arc::clone(&telemetry)) {
            Ok(bound) => Some(bound),
            Err(e) if admin.required => fail(&format!("--admin {}: {e}", admin.addr)),
            Err(e) => {
                // A log line, so that it is JSON under --log-format json.
                tracing::warn!(addr = %admin.addr, error = %e, "admin listener not started");
                None
            }
        }
    });
    let server =
        smtpgate::shard::start_with(&config, telemetry).unwrap_or_else(|e| fail(&e.to_string()));
    for listener in &server.listeners {
        println!(
            "smtpgate listening on {} ({})",
            listener.addr, listener.kind
        );
    }
    if let Some(addr) = admin {
        println!("smtpgate admin on {addr}");
    }
    signals
        .serve(server.controller(), config.clone())
        .unwrap_or_else(|e| fail(&format!("cannot handle signals: {e}")));
    tracing::info!(shards = config.shards, upstream = %server.upstream, "smtpgate up");
    smtpgate::service::ready();
    server.wait();
    tracing::info!("drained, exiting");
}

/// One line on stderr naming what is wrong, then a non-zero exit.
fn fail(message: &str) -> ! {
    eprintln!("smtpgate: {}", message.trim_start_matches("error: "));
    std::process::exit(2);
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).to_owned()
}
