//! A binary of the crate run as a child process: its stdout read line by line on a
//! thread, and the process killed when the test is done with it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

pub struct Spawned {
    pub child: Child,
    lines: Receiver<String>,
}

impl Spawned {
    pub fn start(command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line on stdout (waiting up to 30 s).
    pub fn next_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .expect("a line on stdout")
    }

    /// Every line still to come, until the process closes its stdout (waiting up to
    /// 30 s for each).
    pub fn lines_until_exit(&self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => lines.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(e) => panic!("the process neither wrote nor exited: {e}"),
            }
        }
    }

    /// The address in a `... listening on ADDR[ (kind)]` line.
    pub fn listening_address(&self, prefix: &str) -> String {
        let line = self.next_line();
        let rest = line
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        rest.split(' ').next().unwrap_or(rest).to_owned()
    }
}

impl Spawned {
    /// Sends a signal (`TERM`, `INT`, `HUP`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name}");
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
