//! Limits over real sockets: SIZE=, a message that outgrows the limit while streaming,
//! the 51st recipient, over-long command lines, the idle timeout, the per-connection
//! message cap.

mod common;

use common::*;

#[test]
fn size_parameter_over_the_limit_is_552() {
    let (_upstream, gateway) = accepting_gateway();
    let mut smtp = gateway.login();
    let ehlo = smtp.cmd("EHLO again");
    assert!(ehlo.contains("250-SIZE 26214400\r\n"), "{ehlo}");
    assert_code(
        &smtp.cmd("MAIL FROM:<a@example.com> SIZE=26214401"),
        "552 5.3.4",
    );
    assert_code(
        &smtp.cmd("mail from:<a@example.com> size=1000"),
        "250 2.1.0",
    );
}

#[test]
fn streaming_past_the_limit_is_drained_and_refused() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = Gateway::start_with(&upstream.url(), &["--max-message-size", "65536"]);
    let mut smtp = gateway.login();
    begin_data(&mut smtp, &["r@example.com"]);
    let line = format!("{}\r\n", "x".repeat(998));
    let mut body = "Subject: big\r\n\r\n".to_owned();
    while body.len() < 200_000 {
        body.push_str(&line);
    }
    // A fake end and a command inside the oversize body must not run.
    body.push_str(".\nHELP\r\n");
    assert_code(&smtp.data(&body), "552 5.3.4");
    assert!(upstream.calls().is_empty(), "nothing was forwarded");
    assert_code(&smtp.cmd("NOOP"), "250 2.0.0");
    // A message within the limit still goes through on the same connection.
    assert_code(
        &send(&mut smtp, &["r@example.com"], &simple_message("s", "small")),
        "250 2.0.0",
    );
}

#[test]
fn the_51st_recipient_gets_452_and_50_are_forwarded() {
    let (upstream, gateway) = accepting_gateway();
    let mut smtp = gateway.login();
    assert_code(&smtp.cmd("MAIL FROM:<a@example.com>"), "250 2.1.0");
    for i in 0..50 {
        assert_code(
            &smtp.cmd(&format!("RCPT TO:<r{i}@example.com>")),
            "250 2.1.5",
        );
    }
    assert_code(&smtp.cmd("RCPT TO:<r50@example.com>"), "452 4.5.3");
    assert_code(&smtp.cmd("DATA"), "354");
    assert_code(&smtp.data(&simple_message("s", "b")), "250 2.0.0");
    let call = upstream.only_call();
    match &transactional(&call.request).target {
        Some(smtpgate::notify::notify_transactional::Target::Users(l)) => {
            assert_eq!(l.list.len(), 50)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn over_long_command_line_is_500_and_the_session_goes_on() {
    let (_upstream, gateway) = accepting_gateway();
    let mut smtp = Smtp::connect(gateway.addr);
    assert_code(
        &smtp.cmd(&format!("EHLO {}", "a".repeat(2000))),
        "500 5.5.2",
    );
    assert_code(&smtp.cmd("EHLO ok.example"), "250-mx.test");
}

#[test]
fn endless_line_is_refused_and_closed() {
    let (_upstream, gateway) = accepting_gateway();
    let mut smtp = Smtp::connect(gateway.addr);
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..4 {
        // The server may close mid-way; later writes can fail, which is fine.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| smtp.write_raw(&chunk)));
    }
    assert_code(&smtp.read_reply(), "500 5.5.2");
    assert!(smtp.is_closed());
}

#[test]
fn idle_client_gets_421_and_is_closed() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = Gateway::start_with(&upstream.url(), &["--command-timeout", "1s"]);
    let mut smtp = Smtp::connect(gateway.addr);
    assert_code(&smtp.read_reply(), "421 4.4.2");
    assert!(smtp.is_closed());
}

#[test]
fn client_that_never_reads_replies_is_disconnected() {
    use std::io::Write as _;
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = Gateway::start_with(&upstream.url(), &["--command-timeout", "1s"]);
    // A tiny receive window so the gateway's replies back up quickly.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    socket.connect(&gateway.addr.into()).expect("connect");
    let mut stream: std::net::TcpStream = socket.into();
    // If the gateway never gave up, this write would block and time out.
    stream
        .set_write_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let chunk = b"NOOP\r\n".repeat(10_000);
    let error = loop {
        if let Err(error) = stream.write_all(&chunk) {
            break error;
        }
    };
    assert!(
        matches!(
            error.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "the gateway closed the connection: {error}"
    );
}

#[test]
fn the_message_cap_closes_the_connection_at_the_next_mail() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = Gateway::start_with(&upstream.url(), &["--max-messages-per-connection", "2"]);
    let mut smtp = gateway.login();
    for i in 1..=2 {
        assert_code(
            &send(&mut smtp, &["r@example.com"], &simple_message("s", "b")),
            &format!("250 2.0.0 Ok: queued as MSG-{i}"),
        );
    }
    assert_code(&smtp.cmd("MAIL FROM:<a@example.com>"), "421 4.7.0");
    assert!(smtp.is_closed());
    // A new connection starts a new count.
    let mut again = gateway.login();
    assert_code(
        &send(&mut again, &["r@example.com"], &simple_message("s", "b")),
        "250 2.0.0 Ok: queued as MSG-3",
    );
}

#[test]
fn adversarial_greet_pause_over_real_sockets() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = Gateway::start_with(&upstream.url(), &["--greet-pause", "300ms"]);
    let mut eager = Smtp::connect_silent(gateway.addr);
    eager.write_raw(b"EHLO spam.test\r\nMAIL FROM:<a@example.com>\r\n");
    assert_code(&eager.read_reply(), "554 5.5.0");
    assert!(eager.is_closed());
    // A client that waits gets the greeting and a normal session.
    let mut patient = Smtp::connect(gateway.addr);
    assert_code(&patient.greeting, "220 mx.test ESMTP");
    assert_code(&patient.cmd("EHLO client.test"), "250");
}

#[test]
fn adversarial_auth_failures_close_the_session() {
    let (_upstream, gateway) = accepting_gateway();
    let mut smtp = gateway.tls_client();
    assert_code(&smtp.auth_plain("APP", ""), "535");
    assert_code(&smtp.auth_plain("", "tok"), "535");
    // The third failure still gets its own reply, then the end.
    assert_code(&smtp.auth_plain("APP", ""), "535");
    assert_code(&smtp.read_reply(), "421 4.7.0");
    assert!(smtp.is_closed());
}

#[test]
fn adversarial_slow_drip_is_cut_off_at_the_command_timeout() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = Gateway::start_with(&upstream.url(), &["--command-timeout", "1s"]);
    let mut smtp = Smtp::connect(gateway.addr);
    // A byte every 300 ms: each arrives well within a second, the line never does.
    for byte in b"NOOP NOOP NOOP" {
        smtp.write_raw(&[*byte]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        if smtp.is_closed_or_replied() {
            break;
        }
    }
    assert_code(&smtp.read_reply(), "421 4.4.2");
}

#[test]
fn adversarial_connection_caps_refuse_the_next_and_spare_the_open_ones() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = Gateway::start_with(&upstream.url(), &["--max-connections", "2"]);
    let mut first = Smtp::connect(gateway.addr);
    let _second = Smtp::connect(gateway.addr);
    let third = Smtp::connect(gateway.addr);
    assert_code(&third.greeting, "421 4.7.0");
    // The open ones are untouched.
    assert_code(&first.cmd("NOOP"), "250");
    drop(first);
    eventually("a place is free again", || {
        Smtp::connect(gateway.addr).greeting.starts_with("220")
    });
}

#[test]
fn adversarial_per_address_cap_counts_the_proxy_source() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = Gateway::start_with(
        &upstream.url(),
        &[
            "--max-connections-per-ip",
            "2",
            "--proxy-trusted",
            "127.0.0.1/32",
        ],
    );
    let from = |source: &str| {
        let mut smtp = Smtp::connect_silent(gateway.addr);
        smtp.write_raw(format!("PROXY TCP4 {source} 10.0.0.1 5555 587\r\n").as_bytes());
        let greeting = smtp.read_reply();
        (smtp, greeting)
    };
    let (_a, first) = from("198.51.100.7");
    let (_b, second) = from("198.51.100.7");
    let (_c, third) = from("198.51.100.7");
    assert_code(&first, "220");
    assert_code(&second, "220");
    assert_code(&third, "421 4.7.0");
    let (_d, other) = from("198.51.100.8");
    assert_code(&other, "220");
    // The balancer's own health check (loopback) is exempt.
    let mut local = Smtp::connect_silent(gateway.addr);
    local.write_raw(b"PROXY UNKNOWN\r\n");
    assert_code(&local.read_reply(), "220");
}
