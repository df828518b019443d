//! The upstream misbehaving: down, too slow, recovering, and reached over TLS.

mod common;

use std::time::Duration;

use common::*;

/// A port with nothing listening.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn upstream_down_is_451_4_4_1_and_nothing_is_accepted() {
    let gateway = Gateway::start(&format!("http://127.0.0.1:{}", dead_port()));
    let mut smtp = gateway.login();
    let reply = send(&mut smtp, &["r@example.com"], &simple_message("s", "b"));
    assert_code(&reply, "451 4.4.1");
    assert!(reply.contains("cannot connect to upstream"), "{reply}");
    // Calls during the reconnect backoff fail fast, still transient.
    assert_code(
        &send(&mut smtp, &["r@example.com"], &simple_message("s", "b")),
        "451 4.4.1",
    );
    assert_code(&smtp.cmd("QUIT"), "221 2.0.0");
}

#[test]
fn upstream_deadline_is_451_4_4_1() {
    let upstream = TestUpstream::start(Behavior::Delay(Duration::from_secs(3)));
    let gateway = Gateway::start_with(&upstream.url(), &["--upstream-timeout", "300ms"]);
    let mut smtp = gateway.login();
    let reply = send(&mut smtp, &["r@example.com"], &simple_message("s", "b"));
    assert_code(&reply, "451 4.4.1");
    assert!(reply.contains("deadline"), "{reply}");
    assert_eq!(upstream.only_call().grpc_timeout.as_deref(), Some("300m"));
}

#[test]
fn upstream_that_comes_back_is_used_again() {
    // Reserve a port, start the gateway pointing at it while it is dead, then start
    // the upstream there.
    let port = dead_port();
    let gateway = Gateway::start(&format!("http://127.0.0.1:{port}"));
    let mut smtp = gateway.login();
    assert_code(
        &send(&mut smtp, &["r@example.com"], &simple_message("s", "b")),
        "451 4.4.1",
    );

    let upstream = ProxyUpstream::start(port);
    let mut accepted = false;
    for _ in 0..100 {
        let reply = send(&mut smtp, &["r@example.com"], &simple_message("s", "b"));
        if reply.starts_with("250 2.0.0") {
            accepted = true;
            break;
        }
        assert_code(&reply, "451 4.4.1");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(accepted, "the gateway reconnected after its backoff");
    assert_eq!(upstream.calls().len(), 1);
}

/// Forwards a fixed port to a TestUpstream, so the upstream can appear on a port that
/// the gateway was configured with before it existed.
struct ProxyUpstream {
    inner: TestUpstream,
}

impl ProxyUpstream {
    fn start(port: u16) -> Self {
        let inner = TestUpstream::start(Behavior::Accept);
        let target = inner.addr;
        let listener =
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the reserved port");
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(target) else {
                    continue;
                };
                let (mut c2, mut s2) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                let (mut c1, mut s1) = (client, server);
                std::thread::spawn(move || std::io::copy(&mut c1, &mut s1));
                std::thread::spawn(move || std::io::copy(&mut s2, &mut c2));
            }
        });
        Self { inner }
    }

    fn calls(&self) -> Vec<common::upstream::RecordedCall> {
        self.inner.calls()
    }
}

#[test]
fn goaway_from_a_restarting_upstream_leads_to_a_new_connection() {
    let first = TestUpstream::start(Behavior::Accept);
    let port = first.addr.port();
    let gateway = Gateway::start(&first.url());
    let mut smtp = gateway.login();
    assert_code(
        &send(&mut smtp, &["r@example.com"], &simple_message("one", "b")),
        "250 2.0.0 Ok: queued as MSG-1",
    );
    // Graceful shutdown sends GOAWAY on the gateway's persistent connection.
    first.stop();
    let second = TestUpstream::start_on(Behavior::Accept, port);
    let mut replies = Vec::new();
    for _ in 0..50 {
        let reply = send(&mut smtp, &["r@example.com"], &simple_message("two", "b"));
        let accepted = reply.starts_with("250 2.0.0");
        replies.push(reply);
        if accepted {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let last = replies.last().expect("at least one try");
    assert_code(last, "250 2.0.0 Ok: queued as MSG-1");
    for reply in &replies[..replies.len() - 1] {
        assert_code(reply, "451 4.4.1");
    }
    assert_eq!(
        second.calls().len(),
        1,
        "the new upstream got the message on a new connection"
    );
}

#[test]
fn upstream_over_tls_with_a_private_ca() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let upstream = TestUpstream::start_tls(Behavior::Accept, cert_pem.clone(), key_pem);
    let dir = std::env::temp_dir().join(format!("smtpgate-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca = dir.join("upstream-ca.pem");
    std::fs::write(&ca, cert_pem).expect("write CA");
    let url = format!("https://localhost:{}", upstream.addr.port());

    let gateway = Gateway::start_with(&url, &["--upstream-ca", ca.to_str().expect("utf-8 path")]);
    let mut smtp = gateway.login();
    assert_code(
        &send(&mut smtp, &["r@example.com"], &simple_message("tls", "b")),
        "250 2.0.0 Ok: queued as MSG-1",
    );

    // Without the CA the upstream's certificate is not trusted: transient failure.
    let untrusting = Gateway::start(&url);
    let mut smtp = untrusting.login();
    let reply = send(&mut smtp, &["r@example.com"], &simple_message("tls", "b"));
    assert_code(&reply, "451 4.4.1");
    assert!(reply.contains("TLS"), "{reply}");
    assert_eq!(upstream.calls().len(), 1);
}

#[test]
fn a_recovered_upstream_is_used_again_within_a_second() {
    let port = dead_port();
    let gateway = Gateway::start(&format!("http://127.0.0.1:{port}"));
    let mut smtp = gateway.login();
    // A long outage: enough failed dials to reach the longest backoff.
    for _ in 0..8 {
        assert_code(
            &send(&mut smtp, &["r@example.com"], &simple_message("s", "b")),
            "451 4.4.1",
        );
        std::thread::sleep(Duration::from_millis(150));
    }
    let upstream = ProxyUpstream::start(port);
    // Past the longest backoff (500 ms) with room to spare, the first try succeeds.
    std::thread::sleep(Duration::from_millis(700));
    assert_code(
        &send(&mut smtp, &["r@example.com"], &simple_message("s", "b")),
        "250 2.0.0",
    );
    assert_eq!(upstream.calls().len(), 1);
}

/// A forwarder to a TestUpstream whose connections can go silent: after `freeze`, the
/// connections it already carries forward nothing either way and never close (a
/// middlebox that lost its state); new connections work.
struct FreezingProxy {
    inner: TestUpstream,
    addr: std::net::SocketAddr,
    frozen_before: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FreezingProxy {
    fn start() -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let inner = TestUpstream::start(Behavior::Accept);
        let target = inner.addr;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let frozen_before = std::sync::Arc::new(AtomicUsize::new(0));
        let frozen = std::sync::Arc::clone(&frozen_before);
        std::thread::spawn(move || {
            for (number, client) in listener.incoming().flatten().enumerate() {
                let Ok(server) = std::net::TcpStream::connect(target) else {
                    continue;
                };
                for (from, to) in [
                    (
                        client.try_clone().expect("clone"),
                        server.try_clone().expect("clone"),
                    ),
                    (server, client),
                ] {
                    let frozen = std::sync::Arc::clone(&frozen);
                    std::thread::spawn(move || {
                        let (mut from, mut to) = (from, to);
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = std::io::Read::read(&mut from, &mut buf) {
                            if n == 0 {
                                break;
                            }
                            if number < frozen.load(Ordering::SeqCst) {
                                // Silent from now on, but never closed.
                                std::thread::sleep(Duration::from_secs(3600));
                            }
                            if std::io::Write::write_all(&mut to, &buf[..n]).is_err() {
                                break;
                            }
                        }
                    });
                }
            }
        });
        Self {
            inner,
            addr,
            frozen_before,
        }
    }

    /// Every connection made so far goes silent.
    fn freeze(&self, connections_so_far: usize) {
        self.frozen_before
            .store(connections_so_far, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_silent_upstream_connection_is_dropped_and_the_next_call_dials_anew() {
    let proxy = FreezingProxy::start();
    let gateway = Gateway::start_with(
        &format!("http://{}", proxy.addr),
        &["--upstream-timeout", "1s", "--upstream-keepalive", "300ms"],
    );
    let mut smtp = gateway.login();
    assert_code(
        &send(
            &mut smtp,
            &["r@example.com"],
            &simple_message("before", "b"),
        ),
        "250 2.0.0",
    );
    // The one connection so far goes silent: a call on it misses its deadline...
    proxy.freeze(1);
    assert_code(
        &send(
            &mut smtp,
            &["r@example.com"],
            &simple_message("silent", "b"),
        ),
        "451 4.4.1",
    );
    // ...and the unanswered PING drops it, so a later call dials a new one.
    eventually("the gateway dials anew", || {
        send(&mut smtp, &["r@example.com"], &simple_message("after", "b")).starts_with("250")
    });
    assert!(proxy.inner.calls().len() >= 2);
}
