//! Implicit TLS (RFC 8314, `--listen-tls`): the handshake comes first, then a session
//! that offers AUTH at once and no STARTTLS; real clients (rustls, Python's
//! `smtplib.SMTP_SSL`) submit through it, and a plaintext client gets no banner.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use smtpgate::config::ListenerKind;

fn gateway_with_implicit_tls() -> (TestUpstream, Gateway, std::net::SocketAddr) {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = Gateway::start_with(&upstream.url(), &["--listen-tls", "127.0.0.1:0"]);
    let tls = gateway.server.addrs(ListenerKind::Tls);
    assert_eq!(
        tls.len(),
        1,
        "one implicit-TLS listener beside the STARTTLS one"
    );
    (upstream, gateway, tls[0])
}

#[test]
fn the_session_starts_inside_tls_and_offers_auth_at_once() {
    let (upstream, gateway, addr) = gateway_with_implicit_tls();
    let mut smtp = Smtp::connect_tls(addr, &gateway.cert_pem);
    assert_code(&smtp.greeting, "220 mx.test ESMTP");
    let ehlo = smtp.cmd("EHLO client.test");
    assert!(ehlo.contains("250 AUTH PLAIN LOGIN"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert_code(&smtp.cmd("STARTTLS"), "503 5.5.1");
    assert_code(&smtp.auth_plain("APP-CODE", "TOKEN-1"), "235 2.7.0");
    assert_code(
        &send(
            &mut smtp,
            &["r@example.com"],
            &simple_message("over 465", "b"),
        ),
        "250 2.0.0 Ok: queued as MSG-1",
    );
    let call = upstream.only_call();
    assert_eq!(call.authorization.as_deref(), Some("Token TOKEN-1"));
    assert_eq!(payload(&call.request).subject["default"], "over 465");
}

#[test]
fn a_plaintext_client_gets_no_banner() {
    let (upstream, _gateway, addr) = gateway_with_implicit_tls();
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    tcp.write_all(b"EHLO plain.test\r\n").expect("write");
    let mut received = Vec::new();
    // The gateway ends the connection (perhaps after a TLS alert), never with SMTP.
    let _ = tcp.read_to_end(&mut received);
    assert!(
        !received.starts_with(b"220") && !received.windows(4).any(|w| w == b"250 "),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    assert!(upstream.calls().is_empty());
}

const SMTP_SSL_SCRIPT: &str = r#"
import smtplib, ssl, sys
from email.message import EmailMessage

port, cafile = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context(cafile=cafile)
msg = EmailMessage()
msg["From"] = "app@example.com"
msg["To"] = "user@example.com"
msg["Subject"] = "smtplib over implicit TLS"
msg.set_content("hello")
with smtplib.SMTP_SSL("localhost", port, context=context) as smtp:
    smtp.ehlo("python.test")
    assert not smtp.has_extn("starttls"), smtp.esmtp_features
    smtp.login("APP-PY", "py-token")
    refused = smtp.send_message(msg)
    assert refused == {}, refused
    print("sent")
"#;

#[test]
fn python_smtp_ssl_submits() {
    let (upstream, gateway, addr) = gateway_with_implicit_tls();
    let out = run_python(SMTP_SSL_SCRIPT, addr.port(), &gateway.cert_pem);
    assert_eq!(out.trim(), "sent");
    let call = upstream.only_call();
    assert_eq!(call.authorization.as_deref(), Some("Token py-token"));
    assert_eq!(transactional(&call.request).application, "APP-PY");
    assert_eq!(
        payload(&call.request).subject["default"],
        "smtplib over implicit TLS"
    );
}
