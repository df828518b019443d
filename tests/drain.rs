//! The drain (SIGTERM/SIGINT, `--drain-timeout`): no new connections, idle sessions get
//! `421 4.3.2` at once, a transaction under way ends with the upstream's real verdict
//! and `421 4.3.2` at the next command, and at the deadline everyone left gets
//! `421 4.3.2`; the gateway then stops (the binary exits 0; a second signal exits at
//! once). In process through the `Controller`, and through the binary with real signals.
#![allow(clippy::disallowed_methods)] // Tests may read the clock.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::process::Spawned;
use common::*;

/// Runs `Server::wait` on a thread; the receiver gets `()` when the gateway stopped.
fn stopped(server: smtpgate::shard::Server) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        server.wait();
        let _ = tx.send(());
    });
    rx
}

fn refuses_connections(addr: SocketAddr) -> bool {
    match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Err(_) => true,
        // Accepted by nobody: the kernel may still complete the handshake on a socket
        // being torn down; no greeting ever comes.
        Ok(tcp) => {
            tcp.set_read_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            let mut byte = [0u8; 1];
            !matches!(std::io::Read::read(&mut &tcp, &mut byte), Ok(1))
        }
    }
}

#[test]
fn idle_sessions_leave_at_once_and_a_transaction_finishes_with_its_verdict() {
    let upstream = TestUpstream::start(Behavior::Delay(Duration::from_millis(1500)));
    let gateway = Gateway::start_with(&upstream.url(), &["--drain-timeout", "20s"]);
    let mut idle = gateway.login();
    let mut busy = gateway.login();
    begin_data(&mut busy, &["r@example.com"]);
    busy.write_raw(simple_message("in flight", "b").as_bytes());
    busy.write_raw(b".\r\n");
    eventually("the message is with the upstream", || {
        upstream.calls().len() == 1
    });

    gateway.server.controller().drain(Duration::from_secs(20));
    assert_eq!(idle.read_reply(), "421 4.3.2 Service shutting down\r\n");
    assert!(idle.is_closed());
    assert_code(&busy.read_reply(), "250 2.0.0 Ok: queued as LATE-1");
    assert_eq!(
        busy.cmd("MAIL FROM:<a@example.com>"),
        "421 4.3.2 Service shutting down\r\n"
    );
    assert!(busy.is_closed());

    let addr = gateway.addr;
    let Gateway { server, .. } = gateway;
    let done = stopped(server);
    done.recv_timeout(Duration::from_secs(30))
        .expect("the gateway stops once no session is left");
    assert!(refuses_connections(addr), "no new connection is served");
    assert_eq!(
        upstream.calls().len(),
        1,
        "nothing forwarded twice, nothing lost"
    );
}

#[test]
fn at_the_deadline_everyone_left_gets_421() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = Gateway::start(&upstream.url());
    let mut stalled = gateway.login();
    assert_code(&stalled.cmd("MAIL FROM:<a@example.com>"), "250 2.1.0");
    // Mid-transaction, then silent: the drain waits for it until its deadline.
    gateway
        .server
        .controller()
        .drain(Duration::from_millis(300));
    assert_eq!(
        stalled.read_reply(),
        "421 4.3.2 Service shutting down\r\n",
        "the deadline ends the transaction"
    );
    assert!(stalled.is_closed());
    let Gateway { server, .. } = gateway;
    stopped(server)
        .recv_timeout(Duration::from_secs(30))
        .expect("the gateway stops at the deadline");
    assert!(upstream.calls().is_empty());
}

/// A `--dev` gateway process with two shards; the address of its first listener.
fn dev_process(flags: &[&str]) -> (Spawned, SocketAddr) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smtpgate"));
    command
        .args(["--dev", "--shards", "2"])
        .args(flags)
        .env_remove("SMTPGATE_LOG")
        .stderr(Stdio::null());
    let process = Spawned::start(&mut command);
    let addr = process
        .listening_address("smtpgate listening on ")
        .parse()
        .expect("address");
    (process, addr)
}

fn exit_status(process: &mut Spawned) -> std::process::ExitStatus {
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = process.child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < give_up, "the process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let (mut process, addr) = dev_process(&["--listen", "127.0.0.1:0"]);
    let mut idle = Smtp::connect(addr);
    assert_code(&idle.cmd("EHLO c.test"), "250");
    process.signal("TERM");
    assert_eq!(idle.read_reply(), "421 4.3.2 Service shutting down\r\n");
    let status = exit_status(&mut process);
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn sigint_twice_exits_at_once() {
    let token = std::env::temp_dir().join(format!("smtpgate-drain-token-{}", std::process::id()));
    std::fs::write(&token, "tok").expect("token file");
    let (mut process, addr) = dev_process(&[
        "--listen-relay",
        "127.0.0.1:0",
        "--relay-application",
        "APP",
        "--relay-token-file",
        token.to_str().expect("utf-8"),
        "--drain-timeout",
        "1h",
    ]);
    let mut busy = Smtp::connect(addr);
    busy.cmd("EHLO c.test");
    assert_code(&busy.cmd("MAIL FROM:<a@example.com>"), "250");
    let mut idle = Smtp::connect(addr);
    assert_code(&idle.cmd("EHLO c.test"), "250");
    process.signal("INT");
    // The drain has begun when the idle session is told (two signals sent before the
    // signal thread reads the first would be one: the kernel does not queue them).
    assert_code(&idle.read_reply(), "421 4.3.2");
    // The first signal leaves the transaction be (its deadline is an hour away)...
    assert_code(&busy.cmd("RCPT TO:<r@example.com>"), "250 2.1.5");
    assert!(process.child.try_wait().expect("try_wait").is_none());
    // ...the second ends the process at once.
    process.signal("INT");
    let status = exit_status(&mut process);
    assert_eq!(status.code(), Some(128 + 2), "{status:?}");
    let _ = std::fs::remove_file(&token);
}
