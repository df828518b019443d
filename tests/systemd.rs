//! systemd's readiness protocol through a real notification socket: `READY=1` once the
//! gateway listens, `RELOADING=1` (with `MONOTONIC_USEC`) then `READY=1` around SIGHUP,
//! `STOPPING=1` on SIGTERM, and the exit.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::Spawned;

fn next(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a notification");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_reloading_and_stopping_are_notified() {
    let path = std::env::temp_dir().join(format!("smtpgate-notify-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).expect("notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut process = Spawned::start(
        Command::new(env!("CARGO_BIN_EXE_smtpgate"))
            .args(["--dev", "--shards", "2", "--listen", "127.0.0.1:0"])
            .env("NOTIFY_SOCKET", &path)
            .stderr(Stdio::null()),
    );
    process.listening_address("smtpgate listening on ");
    assert_eq!(next(&socket).trim(), "READY=1");
    process.signal("HUP");
    let reloading = next(&socket);
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading:?}"
    );
    assert_eq!(next(&socket).trim(), "READY=1");
    process.signal("TERM");
    assert_eq!(next(&socket).trim(), "STOPPING=1");
    let status = process.child.wait().expect("exits");
    assert_eq!(status.code(), Some(0));
    let _ = std::fs::remove_file(&path);
}
