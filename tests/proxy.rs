//! The PROXY protocol (`--proxy-trusted`, `--proxy-timeout`): a trusted balancer's
//! connection must begin with a v1 or v2 header, whose source becomes the client's
//! address (seen here through the relay allow-list, which refuses or serves by it);
//! v2 `LOCAL` keeps the real peer; a missing, malformed, oversized or slow header
//! closes the connection without a banner; an untrusted peer is served as it is and
//! its PROXY line is an unknown command.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use ppp::v2;
use smtpgate::config::ListenerKind;

/// A gateway trusting 127.0.0.1 as its balancer, with a relay listener that serves
/// loopback and 198.51.100.0/24 only, a STARTTLS and an implicit-TLS listener.
fn behind_a_balancer(upstream: &TestUpstream, extra: &[&str]) -> RelayGateway {
    let flags = [
        &[
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--listen-tls",
            "127.0.0.1:0",
            "--relay-allow",
            "198.51.100.0/24",
            "--proxy-trusted",
            "127.0.0.1/32",
        ][..],
        extra,
    ]
    .concat();
    RelayGateway::start(&upstream.url(), "RELAY-APP", "tok", &flags)
}

fn v1(source: &str) -> Vec<u8> {
    let source: SocketAddr = source.parse().expect("address");
    let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    let destination = if source.is_ipv4() {
        "10.0.0.1"
    } else {
        "2001:db8::1"
    };
    format!(
        "PROXY {family} {} {destination} {} 25\r\n",
        source.ip(),
        source.port()
    )
    .into_bytes()
}

fn v2_proxy(source: &str) -> Vec<u8> {
    let source: SocketAddr = source.parse().expect("address");
    let destination: SocketAddr = if source.is_ipv4() {
        "10.0.0.1:25".parse().expect("address")
    } else {
        "[2001:db8::1]:25".parse().expect("address")
    };
    v2::Builder::with_addresses(
        v2::Version::Two | v2::Command::Proxy,
        v2::Protocol::Stream,
        (source, destination),
    )
    .build()
    .expect("header")
}

fn v2_local() -> Vec<u8> {
    v2::Builder::with_addresses(
        v2::Version::Two | v2::Command::Local,
        v2::Protocol::Unspecified,
        v2::Addresses::Unspecified,
    )
    .build()
    .expect("header")
}

/// Connects, sends `header`, and reads the first reply (or why there is none).
fn first_reply(addr: SocketAddr, header: &[u8]) -> Result<String, String> {
    let mut smtp = Smtp::connect_silent(addr);
    smtp.write_raw(header);
    smtp.try_read_reply()
}

#[test]
fn the_header_names_the_client_in_v1_and_v2_tcp4_and_tcp6() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = behind_a_balancer(&upstream, &[]);
    for header in [
        v1("198.51.100.7:5555"),
        v1("[::ffff:198.51.100.7]:5555"),
        v2_proxy("198.51.100.7:5555"),
        v2_proxy("[::ffff:198.51.100.7]:5555"),
    ] {
        let reply = first_reply(gateway.relay, &header);
        assert_eq!(reply.as_deref(), Ok("220 mx.test ESMTP\r\n"), "{header:?}");
    }
    for header in [
        v1("203.0.113.9:5555"),
        v1("[2001:db8::9]:5555"),
        v2_proxy("203.0.113.9:5555"),
        v2_proxy("[2001:db8::9]:5555"),
    ] {
        let reply = first_reply(gateway.relay, &header);
        assert_eq!(
            reply.as_deref(),
            Ok("554 5.7.1 Relay access denied, closing connection\r\n"),
            "the relay judges the client, not the balancer: {header:?}"
        );
    }
    // A health check speaks for the balancer itself: loopback, served.
    for header in [v2_local(), b"PROXY UNKNOWN\r\n".to_vec()] {
        let reply = first_reply(gateway.relay, &header);
        assert_eq!(reply.as_deref(), Ok("220 mx.test ESMTP\r\n"), "{header:?}");
    }
}

#[test]
fn a_whole_session_behind_the_header_on_every_kind_of_listener() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = behind_a_balancer(&upstream, &[]);
    let cert = gateway
        .server
        .self_signed_pem
        .clone()
        .expect("--dev certificate");
    // Relay: the header and the first command in one write, as a balancer may send.
    let mut relay = Smtp::connect_silent(gateway.relay);
    relay.write_raw(&v1("198.51.100.7:5555"));
    assert_code(&relay.read_reply(), "220");
    assert_code(
        &send_after_ehlo(&mut relay, "relayed"),
        "250 2.0.0 Ok: queued as MSG-1",
    );
    // STARTTLS.
    let starttls = gateway.server.addrs(ListenerKind::StartTls)[0];
    let mut smtp = Smtp::connect_silent(starttls);
    smtp.write_raw(&v2_proxy("203.0.113.9:5555"));
    assert_code(&smtp.read_reply(), "220");
    smtp.cmd("EHLO client.test");
    smtp.starttls(&cert);
    smtp.cmd("EHLO client.test");
    assert_code(&smtp.auth_plain("APP", "tok"), "235");
    assert_code(
        &send(
            &mut smtp,
            &["r@example.com"],
            &simple_message("starttls", "b"),
        ),
        "250",
    );
    // Implicit TLS: the ClientHello follows the header on the same socket.
    let tls = gateway.server.addrs(ListenerKind::Tls)[0];
    let mut smtp = Smtp::connect_silent(tls);
    smtp.write_raw(&v2_proxy("[2001:db8::9]:5555"));
    smtp.handshake(&cert).expect("TLS after the header");
    assert_code(&smtp.read_reply(), "220");
    smtp.cmd("EHLO client.test");
    assert_code(&smtp.auth_plain("APP", "tok"), "235");
    assert_code(
        &send(&mut smtp, &["r@example.com"], &simple_message("tls", "b")),
        "250",
    );
    assert_eq!(upstream.calls().len(), 3);
}

fn send_after_ehlo(smtp: &mut Smtp, subject: &str) -> String {
    smtp.cmd("EHLO app-host");
    send(smtp, &["r@example.com"], &simple_message(subject, "b"))
}

/// The connection closes and not a byte of SMTP comes back.
#[track_caller]
fn closed_without_banner(addr: SocketAddr, send: &[u8]) {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    tcp.write_all(send).expect("write");
    let mut received = Vec::new();
    let _ = tcp.read_to_end(&mut received);
    assert!(
        received.is_empty(),
        "{send:?} got {:?}",
        String::from_utf8_lossy(&received)
    );
}

#[test]
fn a_missing_malformed_oversized_or_slow_header_closes_without_a_banner() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = behind_a_balancer(&upstream, &["--proxy-timeout", "300ms"]);
    let mut oversized = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x08\x00".to_vec();
    oversized.extend_from_slice(&[0; 64]);
    for send in [
        &b"EHLO client.test\r\n"[..],
        b"PROXY TCP4 not-an-address 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 198.51.100.7 10.0.0.1 5555\r\n",
        &[b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat(),
        &oversized,
        // Slow: nothing, or half a header, then silence past --proxy-timeout.
        b"",
        b"PROXY TCP4 198.51",
    ] {
        closed_without_banner(gateway.relay, send);
    }
    assert!(upstream.calls().is_empty());
}

#[test]
fn an_untrusted_peer_is_served_as_it_is_and_its_header_is_not_a_command() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = RelayGateway::start(
        &upstream.url(),
        "RELAY-APP",
        "tok",
        &["--proxy-trusted", "10.0.0.0/8"],
    );
    let mut smtp = Smtp::connect(gateway.relay);
    assert_code(&smtp.greeting, "220 mx.test ESMTP");
    let line = String::from_utf8(v1("198.51.100.7:5555")).expect("ascii");
    assert_code(&smtp.cmd(line.trim_end()), "500 5.5.1");
    assert_code(&send_after_ehlo(&mut smtp, "direct"), "250 2.0.0");
}
