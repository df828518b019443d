//! `smtpgate-sink` run as a process, the upstream of the load and fault tests: started on
//! a free port with the flags a test gives, stopped by SIGTERM, its stdout (`--print`'s
//! call lines, `--record`'s summary) read back as JSON.

use std::process::Command;

use super::process::Spawned;

pub struct Sink {
    pub process: Spawned,
    pub url: String,
}

impl Sink {
    /// Two shards, `--record`, and `flags`.
    pub fn start(flags: &[&str]) -> Self {
        let process = Spawned::start(
            Command::new(env!("CARGO_BIN_EXE_smtpgate-sink"))
                .args(["--listen", "127.0.0.1:0", "--shards", "2", "--record"])
                .args(flags),
        );
        let addr = process.listening_address("smtpgate-sink listening on ");
        Self {
            process,
            url: format!("http://{addr}"),
        }
    }

    /// SIGTERM, then every line it had still to print, parsed: `--print`'s calls, then
    /// the `--record` summary last.
    pub fn stop(mut self) -> Vec<serde_json::Value> {
        self.process.signal("TERM");
        let lines = self.process.lines_until_exit();
        let _ = self.process.child.wait();
        lines
            .iter()
            .map(|line| serde_json::from_str(line).expect("every line is JSON"))
            .collect()
    }

    /// SIGTERM, then the `--record` summary.
    pub fn summary(self) -> serde_json::Value {
        self.stop().pop().expect("a summary line")
    }
}
