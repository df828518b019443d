//! RFC 2920 over a real socket: a whole transaction in one write, replies in order, one
//! upstream call; rejected recipients inside a pipeline; bare-LF smuggling.

mod common;

use common::*;

#[test]
fn whole_transaction_and_quit_in_one_write() {
    let (upstream, gateway) = accepting_gateway();
    let mut smtp = gateway.login();
    let mut wire = String::from(
        "MAIL FROM:<a@example.com>\r\nRCPT TO:<r1@example.com>\r\nRCPT TO:<r2@example.com>\r\nDATA\r\n",
    );
    wire.push_str(&simple_message("pipelined", "body"));
    wire.push_str(".\r\nQUIT\r\n");
    smtp.write_raw(wire.as_bytes());
    let replies: Vec<String> = (0..6).map(|_| smtp.read_reply()).collect();
    let codes: Vec<&str> = replies.iter().map(|r| &r[..3]).collect();
    assert_eq!(
        codes,
        ["250", "250", "250", "354", "250", "221"],
        "{replies:?}"
    );
    assert_code(&replies[4], "250 2.0.0 Ok: queued as MSG-1");
    assert!(smtp.is_closed());
    assert_eq!(
        payload(&upstream.only_call().request).subject["default"],
        "pipelined"
    );
}

#[test]
fn two_transactions_back_to_back() {
    let (upstream, gateway) = accepting_gateway();
    let mut smtp = gateway.login();
    let mut wire = String::new();
    for n in 1..=2 {
        wire.push_str(&format!(
            "MAIL FROM:<a@example.com>\r\nRCPT TO:<r{n}@example.com>\r\nDATA\r\n"
        ));
        wire.push_str(&simple_message(&format!("m{n}"), "b"));
        wire.push_str(".\r\n");
    }
    smtp.write_raw(wire.as_bytes());
    let codes: Vec<String> = (0..8).map(|_| smtp.read_reply()[..3].to_owned()).collect();
    assert_eq!(
        codes,
        ["250", "250", "354", "250", "250", "250", "354", "250"]
    );
    assert_eq!(upstream.calls().len(), 2);
}

#[test]
fn rejected_recipients_then_data_forwards_nothing() {
    let (upstream, gateway) = accepting_gateway();
    let mut smtp = gateway.login();
    smtp.write_raw(
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<not-an-address>\r\nRCPT TO:<>\r\nDATA\r\n",
    );
    let codes: Vec<String> = (0..4).map(|_| smtp.read_reply()[..9].to_owned()).collect();
    assert_eq!(codes, ["250 2.1.0", "501 5.1.3", "501 5.1.3", "554 5.5.1"]);
    assert!(upstream.calls().is_empty());
}

#[test]
fn bare_lf_dot_inside_the_body_never_ends_the_message() {
    let (upstream, gateway) = accepting_gateway();
    let mut smtp = gateway.login();
    begin_data(&mut smtp, &["r@example.com"]);
    smtp.write_raw(
        b"Subject: smuggle\r\n\r\nhello\n.\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n",
    );
    assert_code(&smtp.read_reply(), "550 5.6.0");
    assert_code(&smtp.cmd("NOOP"), "250 2.0.0");
    assert!(upstream.calls().is_empty(), "neither message was forwarded");
}

#[test]
fn bare_lf_normalize_accepts_lf_only_uploads() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = Gateway::start_with(&upstream.url(), &["--bare-lf", "normalize"]);
    let mut smtp = gateway.login();
    begin_data(&mut smtp, &["r@example.com"]);
    smtp.write_raw(b"From: a@example.com\nSubject: lf only\n\nline one\n.\r\nline two\n\r\n.\r\n");
    assert_code(&smtp.read_reply(), "250 2.0.0");
    let request = upstream.only_call().request;
    assert_eq!(payload(&request).subject["default"], "lf only");
    assert_eq!(payload(&request).body, "line one\r\n\r\nline two\r\n\r\n");
}
