//! A real HAProxy, started from `deploy/haproxy.cfg` (addresses substituted, checks
//! made faster), in front of two gateway processes on 127.0.0.1: both serve messages,
//! the client's own address reaches their logs through PROXY v2, and draining one
//! (SIGTERM) loses no message: a client that retries on `421`, as MTAs do, ends every
//! message with `250`.

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::Spawned;
use common::*;

struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("smtpgate-haproxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct GatewayProcess {
    process: Spawned,
    starttls: SocketAddr,
    tls: SocketAddr,
    admin: SocketAddr,
    log: PathBuf,
}

fn address(line: &str, prefix: &str) -> SocketAddr {
    line.strip_prefix(prefix)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .expect("address")
}

fn start_gateway(dir: &Dir, name: &str, upstream: &str) -> GatewayProcess {
    let log = dir.path(&format!("{name}.log"));
    let cert = dir.path("cert.pem");
    let key = dir.path("key.pem");
    let process = Spawned::start(
        Command::new(env!("CARGO_BIN_EXE_smtpgate"))
            .args([
                "--shards",
                "1",
                "--hostname",
                "mx.test",
                "--upstream",
                upstream,
            ])
            .args(["--listen", "127.0.0.1:0", "--listen-tls", "127.0.0.1:0"])
            .args(["--admin", "127.0.0.1:0", "--proxy-trusted", "127.0.0.1/32"])
            .args(["--drain-timeout", "10s", "--log-format", "json"])
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .env("SMTPGATE_LOG", "info")
            .stderr(std::fs::File::create(&log).expect("log file")),
    );
    let starttls = address(&process.next_line(), "smtpgate listening on ");
    let tls = address(&process.next_line(), "smtpgate listening on ");
    let admin = address(&process.next_line(), "smtpgate admin on ");
    GatewayProcess {
        process,
        starttls,
        tls,
        admin,
        log,
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// `deploy/haproxy.cfg` with this test's addresses, and checks every 100 ms.
fn haproxy_config(submission: SocketAddr, tls: SocketAddr, gates: [&GatewayProcess; 2]) -> String {
    let mut cfg =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/haproxy.cfg"))
            .expect("deploy/haproxy.cfg");
    let swaps = [
        ("bind 0.0.0.0:587".to_owned(), format!("bind {submission}")),
        ("bind 0.0.0.0:465".to_owned(), format!("bind {tls}")),
        (
            "server gate1 10.0.0.11:587".to_owned(),
            format!(
                "server gate1 {} port {}",
                gates[0].starttls,
                gates[0].admin.port()
            ),
        ),
        (
            "server gate2 10.0.0.12:587".to_owned(),
            format!(
                "server gate2 {} port {}",
                gates[1].starttls,
                gates[1].admin.port()
            ),
        ),
        (
            "server gate1 10.0.0.11:465".to_owned(),
            format!(
                "server gate1 {} port {}",
                gates[0].tls,
                gates[0].admin.port()
            ),
        ),
        (
            "server gate2 10.0.0.12:465".to_owned(),
            format!(
                "server gate2 {} port {}",
                gates[1].tls,
                gates[1].admin.port()
            ),
        ),
        (
            "inter 1s fall 2 rise 2".to_owned(),
            "inter 100ms fall 1 rise 1".to_owned(),
        ),
    ];
    for (from, to) in swaps {
        assert!(
            cfg.contains(&from),
            "deploy/haproxy.cfg no longer has {from:?}"
        );
        cfg = cfg.replace(&from, &to);
    }
    cfg
}

/// A submission client through the balancer that retries a message until it is
/// accepted, reconnecting after a `421` or a lost connection, as an MTA does.
struct Client<'a> {
    frontend: SocketAddr,
    cert: &'a str,
    session: Option<Smtp>,
    /// Local ports of the connections made (what the gateways must log as the client).
    ports: Vec<u16>,
}

impl Client<'_> {
    fn connect(&mut self) -> Result<Smtp, String> {
        let mut smtp = Smtp::connect_silent(self.frontend);
        self.ports.push(smtp.local_addr().port());
        let banner = smtp.try_read_reply()?;
        if !banner.starts_with("220") {
            return Err(banner);
        }
        smtp.cmd("EHLO client.test");
        smtp.starttls(self.cert);
        smtp.cmd("EHLO client.test");
        let auth = smtp.auth_plain("APP", "tok");
        if !auth.starts_with("235") {
            return Err(auth);
        }
        Ok(smtp)
    }

    /// Sends until `250`; returns how many tries it took.
    fn deliver(&mut self, subject: &str, keep_open: bool) -> usize {
        for attempt in 1..=20 {
            let mut smtp = match self.session.take() {
                Some(smtp) => smtp,
                None => match self.connect() {
                    Ok(smtp) => smtp,
                    Err(_) => continue,
                },
            };
            let reply = try_send(&mut smtp, subject);
            if reply.as_deref().is_ok_and(|r| r.starts_with("250 ")) {
                if keep_open {
                    self.session = Some(smtp);
                }
                return attempt;
            }
            // 421 (draining) or a lost connection: the message is still ours; retry.
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{subject} never accepted");
    }
}

fn try_send(smtp: &mut Smtp, subject: &str) -> Result<String, String> {
    let message = format!(
        "From: a@example.com\r\nTo: r@example.com\r\nSubject: {subject}\r\nMessage-ID: <{subject}@test>\r\n\r\nbody\r\n"
    );
    for command in [
        "MAIL FROM:<a@example.com>",
        "RCPT TO:<r@example.com>",
        "DATA",
    ] {
        smtp.write_raw(format!("{command}\r\n").as_bytes());
        let reply = smtp.try_read_reply()?;
        if !(reply.starts_with('2') || reply.starts_with('3')) {
            return Err(reply);
        }
    }
    smtp.write_raw(format!("{message}.\r\n").as_bytes());
    smtp.try_read_reply()
}

#[test]
fn two_gateways_behind_haproxy_share_the_load_see_clients_and_drain_without_loss() {
    let dir = Dir::new();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let cert = certified.cert.pem();
    std::fs::write(dir.path("cert.pem"), &cert).expect("write");
    std::fs::write(dir.path("key.pem"), certified.signing_key.serialize_pem()).expect("write");
    let upstream = TestUpstream::start(Behavior::Accept);
    let gate1 = start_gateway(&dir, "gate1", &upstream.url());
    let gate2 = start_gateway(&dir, "gate2", &upstream.url());
    let (frontend, frontend_tls) = (free_port(), free_port());
    let cfg = dir.path("haproxy.cfg");
    std::fs::write(
        &cfg,
        haproxy_config(frontend, frontend_tls, [&gate1, &gate2]),
    )
    .expect("write");
    // Debian installs it in /usr/sbin, which a non-root PATH may lack.
    let haproxy = ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("haproxy");
    let _haproxy = Spawned::start(
        Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stderr(Stdio::null()),
    );
    eventually("HAProxy listens", || {
        std::net::TcpStream::connect(frontend).is_ok()
    });

    // One connection per message: leastconn spreads them over both gateways.
    let mut client = Client {
        frontend,
        cert: &cert,
        session: None,
        ports: Vec::new(),
    };
    for i in 0..10 {
        client.deliver(&format!("spread-{i}"), false);
    }
    let logs = |gate: &GatewayProcess| std::fs::read_to_string(&gate.log).unwrap_or_default();
    let answered = |log: &str| log.lines().filter(|l| l.contains("\"reply\":250")).count();
    eventually("both gateways logged their messages", || {
        answered(&logs(&gate1)) + answered(&logs(&gate2)) == 10
    });
    assert!(
        answered(&logs(&gate1)) > 0 && answered(&logs(&gate2)) > 0,
        "both served some"
    );
    // The client's own port, not the balancer's, is in the gateways' logs.
    let both = logs(&gate1) + &logs(&gate2);
    for port in &client.ports {
        assert!(
            both.contains(&format!("\"client\":\"127.0.0.1:{port}\"")),
            "client port {port} not logged (PROXY lost?)"
        );
    }

    // Implicit TLS through the balancer, too.
    let mut smtp = Smtp::connect_silent(frontend_tls);
    smtp.handshake(&cert).expect("TLS through HAProxy");
    assert_code(&smtp.read_reply(), "220 mx.test");
    smtp.cmd("EHLO client.test");
    assert_code(&smtp.auth_plain("APP", "tok"), "235");
    assert_code(&try_send(&mut smtp, "over-465").expect("reply"), "250");
    drop(smtp);

    // A persistent client keeps sending while the gateway holding its session drains.
    let mut gates = [gate1, gate2];
    let mut tries = 0;
    let mut drained = None;
    for i in 0..30 {
        if i == 10 {
            let port = *client.ports.last().expect("a connection");
            let holder = format!("\"client\":\"127.0.0.1:{port}\"");
            eventually("the session's gateway logged it", || {
                gates.iter().any(|g| logs(g).contains(&holder))
            });
            let which = usize::from(!logs(&gates[0]).contains(&holder));
            gates[which].process.signal("TERM");
            drained = Some(which);
        }
        tries += client.deliver(&format!("drain-{i}"), true);
    }
    let drained = &mut gates[drained.expect("one was drained")];
    let exit = drained
        .process
        .child
        .wait()
        .expect("the drained gateway exits");
    assert_eq!(exit.code(), Some(0), "a drained gateway exits 0");
    assert!(
        tries > 30,
        "the drain sent the session away (421) and the client retried"
    );

    // Every message is with the upstream; retries repeat the same idempotency key.
    let calls = upstream.calls();
    let subjects: BTreeSet<String> = calls
        .iter()
        .map(|c| payload(&c.request).subject["default"].clone())
        .collect();
    for i in 0..30 {
        assert!(subjects.contains(&format!("drain-{i}")), "drain-{i} lost");
    }
    for i in 0..10 {
        assert!(subjects.contains(&format!("spread-{i}")), "spread-{i} lost");
    }
}
