//! The local relay listener: plaintext SMTP without AUTH from loopback, submitted with
//! the configured application and token; no STARTTLS listener unless asked for.

mod common;

use common::*;
use smtpgate::config::ListenerKind;

#[test]
fn relay_submits_with_the_configured_credentials() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = RelayGateway::start(&upstream.url(), "RELAY-APP", "  relay-token\n", &[]);
    assert!(
        gateway.server.addrs(ListenerKind::StartTls).is_empty(),
        "no STARTTLS listener without --listen"
    );
    let mut smtp = Smtp::connect(gateway.relay);
    let ehlo = smtp.cmd("EHLO app-host");
    assert!(
        !ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    assert_code(
        &send(
            &mut smtp,
            &["r@example.com"],
            &simple_message("relayed", "b"),
        ),
        "250 2.0.0 Ok: queued as MSG-1",
    );
    let call = upstream.only_call();
    assert_eq!(call.authorization.as_deref(), Some("Token relay-token"));
    assert_eq!(transactional(&call.request).application, "RELAY-APP");
    assert_eq!(payload(&call.request).subject["default"], "relayed");
}

#[test]
fn relay_refuses_auth_and_starttls_but_stays_usable() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = RelayGateway::start(&upstream.url(), "RELAY-APP", "tok", &[]);
    let mut smtp = Smtp::connect(gateway.relay);
    smtp.cmd("EHLO app-host");
    assert_code(&smtp.cmd("STARTTLS"), "502 5.5.1");
    assert_code(&smtp.auth_plain("other", "creds"), "503 5.5.1");
    assert_code(
        &send(&mut smtp, &["r@example.com"], &simple_message("s", "b")),
        "250 2.0.0",
    );
    assert_eq!(
        upstream.only_call().authorization.as_deref(),
        Some("Token tok")
    );
}

#[test]
fn relay_and_starttls_listeners_side_by_side() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = RelayGateway::start(
        &upstream.url(),
        "RELAY-APP",
        "tok",
        &["--dev", "--listen", "127.0.0.1:0"],
    );
    let starttls = gateway.server.addrs(ListenerKind::StartTls);
    assert_eq!(starttls.len(), 1);
    let mut plain = Smtp::connect(starttls[0]);
    plain.cmd("EHLO c");
    assert_code(&plain.cmd("MAIL FROM:<a@example.com>"), "530 5.7.0");
    let mut relay = Smtp::connect(gateway.relay);
    relay.cmd("EHLO c");
    assert_code(&relay.cmd("MAIL FROM:<a@example.com>"), "250 2.1.0");
}

#[test]
fn swaks_through_the_relay() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = RelayGateway::start(&upstream.url(), "RELAY-APP", "tok", &[]);
    let server = gateway.relay.to_string();
    let output = std::process::Command::new("swaks")
        .args([
            "--server",
            &server,
            "--to",
            "r@example.com",
            "--from",
            "s@example.com",
            "--header",
            "Subject: sidecar",
            "--body",
            "x",
        ])
        .output()
        .expect("swaks runs (install it: see .ci/run)");
    let transcript = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{transcript}");
    assert!(
        transcript.contains("<-  250 2.0.0 Ok: queued as MSG-1"),
        "{transcript}"
    );
    assert_eq!(
        payload(&upstream.only_call().request).subject["default"],
        "sidecar"
    );
}

#[test]
fn a_refused_relay_token_is_a_temporary_failure() {
    for code in [tonic::Code::Unauthenticated, tonic::Code::PermissionDenied] {
        let upstream = TestUpstream::start(Behavior::Fail(code, "token revoked".into()));
        let gateway = RelayGateway::start(&upstream.url(), "RELAY-APP", "old-token", &[]);
        let mut smtp = Smtp::connect(gateway.relay);
        smtp.cmd("EHLO app-host");
        // The token is the gateway's, not the client's: the client must keep the
        // message and retry once the operator fixed the token, never discard it.
        assert_eq!(
            send(&mut smtp, &["r@example.com"], &simple_message("s", "b")),
            "451 4.7.0 The gateway's credentials were refused upstream, retry later: token revoked\r\n",
            "{code:?}"
        );
        std::fs::write(&gateway.token_file, "new-token").expect("write");
        upstream.set_behavior(Behavior::Accept);
        smtpgate::signals::reload(&gateway.server.controller(), &gateway.config);
        let mut retry = Smtp::connect(gateway.relay);
        retry.cmd("EHLO app-host");
        assert_code(
            &send(&mut retry, &["r@example.com"], &simple_message("s", "b")),
            "250 2.0.0",
        );
        assert_eq!(
            upstream
                .calls()
                .last()
                .and_then(|c| c.authorization.clone())
                .as_deref(),
            Some("Token new-token")
        );
    }
}
