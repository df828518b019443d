//! STARTTLS and AUTH ordering over real sockets and real TLS handshakes, and the
//! STARTTLS command-injection defence.

mod common;

use common::*;

#[test]
fn greeting_and_ehlo_before_tls() {
    let (_up, gw) = accepting_gateway();
    let mut smtp = Smtp::connect(gw.addr);
    assert_eq!(smtp.greeting, "220 mx.test ESMTP\r\n");
    let ehlo = smtp.cmd("EHLO client.test");
    for ext in [
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
    ] {
        assert!(
            ehlo.contains(&format!("250-{ext}\r\n")) || ehlo.contains(&format!("250 {ext}\r\n")),
            "{ehlo}"
        );
    }
    assert!(
        !ehlo.contains("AUTH"),
        "AUTH must not be offered in clear: {ehlo}"
    );
}

#[test]
fn ehlo_after_tls_offers_auth_and_not_starttls() {
    let (_up, gw) = accepting_gateway();
    let mut smtp = Smtp::connect(gw.addr);
    smtp.cmd("EHLO c");
    smtp.starttls(&gw.cert_pem);
    let ehlo = smtp.cmd("EHLO c");
    assert!(ehlo.contains("250 AUTH PLAIN LOGIN\r\n"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
}

#[test]
fn auth_before_tls_is_refused() {
    let (up, gw) = accepting_gateway();
    let mut smtp = Smtp::connect(gw.addr);
    smtp.cmd("EHLO c");
    assert_code(&smtp.auth_plain("APP", "TOKEN"), "530 5.7.0");
    assert_code(&smtp.cmd("MAIL FROM:<a@example.com>"), "530 5.7.0");
    assert!(up.calls().is_empty());
}

#[test]
fn mail_before_auth_is_refused_after_tls() {
    let (up, gw) = accepting_gateway();
    let mut smtp = gw.tls_client();
    assert_code(&smtp.cmd("MAIL FROM:<a@example.com>"), "530 5.7.0");
    assert_code(&smtp.cmd("RCPT TO:<a@external.example>"), "530 5.7.0");
    assert!(up.calls().is_empty());
}

#[test]
fn after_tls_the_client_must_ehlo_again() {
    let (_up, gw) = accepting_gateway();
    let mut smtp = Smtp::connect(gw.addr);
    smtp.cmd("EHLO c");
    smtp.starttls(&gw.cert_pem);
    assert_code(&smtp.auth_plain("APP", "TOKEN"), "503 5.5.1");
    assert_code(&smtp.cmd("MAIL FROM:<a@example.com>"), "503 5.5.1");
}

#[test]
fn auth_login_and_plain_with_challenge_work() {
    let (up, gw) = accepting_gateway();
    let mut smtp = gw.tls_client();
    assert_code(&smtp.auth_login("LOGIN-APP", "login-token"), "235 2.7.0");
    assert_code(
        &send(&mut smtp, &["r@example.com"], &simple_message("s", "b")),
        "250 2.0.0",
    );
    let call = up.only_call();
    assert_eq!(transactional(&call.request).application, "LOGIN-APP");
    assert_eq!(call.authorization.as_deref(), Some("Token login-token"));

    let mut smtp = gw.tls_client();
    assert_eq!(smtp.cmd("AUTH PLAIN"), "334 \r\n");
    use base64::Engine as _;
    let response = base64::engine::general_purpose::STANDARD.encode("\0APP2\0tok2");
    assert_code(&smtp.cmd(&response), "235 2.7.0");
    assert_code(&smtp.auth_plain("again", "x"), "503 5.5.1");
}

#[test]
fn auth_errors_have_precise_replies() {
    let (_up, gw) = accepting_gateway();
    let mut smtp = gw.tls_client();
    assert_code(&smtp.cmd("AUTH PLAIN !!!"), "501 5.5.2");
    assert_code(&smtp.cmd("AUTH CRAM-MD5"), "504 5.5.4");
    assert_code(&smtp.cmd("AUTH LOGIN"), "334");
    assert_code(&smtp.cmd("*"), "501 5.7.0");
    assert_code(
        &smtp.cmd(&format!("AUTH PLAIN {}", "A".repeat(20_000))),
        "500 5.5.6",
    );
    assert_code(&smtp.cmd("NOOP"), "250 2.0.0");
}

#[test]
fn commands_pipelined_behind_starttls_never_run() {
    let (up, gw) = accepting_gateway();
    let mut smtp = Smtp::connect(gw.addr);
    smtp.cmd("EHLO c");
    smtp.write_raw(b"STARTTLS\r\nMAIL FROM:<x@example.com>\r\nRCPT TO:<y@example.com>\r\n");
    assert_code(&smtp.read_reply(), "554 5.5.0");
    assert!(smtp.is_closed(), "the connection is closed");
    assert!(up.calls().is_empty());
}

#[test]
fn starttls_twice_and_with_argument() {
    let (_up, gw) = accepting_gateway();
    let mut smtp = Smtp::connect(gw.addr);
    assert_code(&smtp.cmd("STARTTLS now"), "501 5.5.4");
    let mut smtp = gw.tls_client();
    assert_code(&smtp.cmd("STARTTLS"), "503 5.5.1");
}

#[test]
fn plaintext_instead_of_client_hello_closes_without_echo() {
    let (up, gw) = accepting_gateway();
    let mut smtp = Smtp::connect(gw.addr);
    smtp.cmd("EHLO c");
    assert_code(&smtp.cmd("STARTTLS"), "220 2.0.0");
    smtp.write_raw(b"MAIL FROM:<x@example.com>\r\n");
    let reply = smtp.try_read_reply();
    assert!(reply.is_err(), "nothing answered in clear: {reply:?}");
    assert!(up.calls().is_empty());
}

#[test]
fn a_wrong_certificate_is_rejected_by_a_verifying_client() {
    let (_up, gw) = accepting_gateway();
    let (_, other_pem) = smtpgate::tls::Identity::self_signed(&["localhost".into()]).expect("cert");
    let mut smtp = Smtp::connect(gw.addr);
    smtp.cmd("EHLO c");
    assert_code(&smtp.cmd("STARTTLS"), "220 2.0.0");
    assert!(
        smtp.handshake(&other_pem).is_err(),
        "the handshake verifies the certificate"
    );
}
