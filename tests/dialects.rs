//! Provider dialects end to end, over real sockets and TLS with the tonic upstream:
//! each provider's credentials form, a 1,000-recipient `X-SMTPAPI` fan-out (one `250`,
//! one call per distinct substitution set, placeholders counted), a partial failure and
//! the keys of its retry, client idempotency keys, refusals that make no call, and a
//! SendCloud-style message sent by Python's smtplib exactly as SendCloud's docs show.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use common::*;
use serde_json::Value;
use smtpgate::notify::notify_transactional::Target;
use smtpgate::notify::{NotifyRequest, json};

fn meta(request: &NotifyRequest) -> Value {
    json::request(request)["transactional"]["meta_data"].clone()
}

fn users(request: &NotifyRequest) -> Vec<String> {
    match &transactional(request).target {
        Some(Target::Users(list)) => list.list.clone(),
        other => panic!("no users target: {other:?}"),
    }
}

/// A message with extra header lines.
fn with_headers(headers: &str, body: &str) -> String {
    format!(
        "From: Sender <sender@example.com>\r\nTo: rcpt@example.com\r\nSubject: dialects\r\n\
         Message-ID: <dialects-{}@test>\r\n{headers}\r\n{body}\r\n",
        headers.len()
    )
}

fn gateway_with_default_application() -> (TestUpstream, Gateway) {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = Gateway::start_with(&upstream.url(), &["--default-application", "DEFAULT-APP"]);
    (upstream, gateway)
}

#[test]
fn postmark_token_as_user_name_and_password() {
    let (upstream, gateway) = gateway_with_default_application();
    let mut smtp = gateway.login_as("pm-server-token", "pm-server-token");
    let message = with_headers(
        "X-PM-Tag: welcome-email\r\nX-PM-Metadata-color: blue\r\nX-PM-KeepID: true\r\n\
         X-PM-Message-Stream: outbound\r\nX-PM-TrackOpens: true\r\nX-PM-TrackLinks: HtmlAndText\r\n",
        "hi",
    );
    assert_code(
        &send(&mut smtp, &["a@example.com"], &message),
        "250 2.0.0 Ok: queued as MSG-1",
    );
    let call = upstream.only_call();
    assert_eq!(call.authorization.as_deref(), Some("Token pm-server-token"));
    assert_eq!(transactional(&call.request).application, "DEFAULT-APP");
    let meta = meta(&call.request);
    assert_eq!(meta["tags"], serde_json::json!(["welcome-email"]));
    assert_eq!(meta["metadata"]["color"], "blue");
    let kept = meta["message_id"].as_str().expect("message_id");
    assert!(
        kept.starts_with("<dialects-") && kept.ends_with("@test>"),
        "{kept}"
    );
    assert_eq!(meta["message_stream"], "outbound");
    assert_eq!(
        meta["tracking"],
        serde_json::json!({"open": true, "click": true, "links": "HtmlAndText"})
    );
}

#[test]
fn sparkpost_smtp_injection_with_a_subaccount_over_auth_login() {
    let (upstream, gateway) = gateway_with_default_application();
    let mut smtp = gateway.tls_client();
    assert_code(
        &smtp.auth_login("SMTP_Injection:X-MSYS-SUBACCOUNT=123", "sp-api-key"),
        "235 2.7.0",
    );
    let message = with_headers(
        "X-MSYS-API: {\"campaign_id\": \"spring\", \"tags\": [\"cat\"],\r\n \"cc\": [\"cc@example.com\"]}\r\n",
        "hi",
    );
    assert_code(&send(&mut smtp, &["a@example.com"], &message), "250 2.0.0");
    let call = upstream.only_call();
    assert_eq!(call.authorization.as_deref(), Some("Token sp-api-key"));
    let t = transactional(&call.request);
    assert_eq!(t.application, "DEFAULT-APP");
    assert_eq!(t.campaign, "spring");
    assert_eq!(users(&call.request), ["a@example.com", "cc@example.com"]);
    let meta = meta(&call.request);
    assert_eq!(meta["subaccount"], 123);
    assert_eq!(meta["cc"], serde_json::json!(["cc@example.com"]));
}

#[test]
fn provider_user_names_need_a_default_application() {
    let (upstream, gateway) = accepting_gateway();
    for (user, pass) in [("tok", "tok"), ("SMTP_Injection", "key")] {
        let mut smtp = gateway.tls_client();
        let reply = smtp.auth_plain(user, pass);
        assert_code(&reply, "535 5.7.8");
        assert!(reply.contains("--default-application"), "{reply}");
    }
    assert!(upstream.calls().is_empty());
}

/// `X-SMTPAPI` (raw JSON) sending to `n` addresses, each with its own `%name%`.
fn fan_out_message(n: usize, distinct_names: usize) -> (String, Vec<String>) {
    let to: Vec<String> = (0..n).map(|i| format!("user{i}@example.com")).collect();
    let names: Vec<String> = (0..n)
        .map(|i| format!("Name {}", i % distinct_names))
        .collect();
    let api = serde_json::json!({"to": to, "sub": {"%name%": names}});
    // Folded at commas, as a mailer keeps header lines under 998 octets.
    let folded = api.to_string().replace(",\"", ",\r\n \"");
    let message = with_headers(&format!("X-SMTPAPI: {folded}\r\n"), "Dear %name%");
    (message, to)
}

#[test]
fn a_thousand_recipients_with_their_own_names_fan_out_behind_one_250() {
    let (upstream, gateway) = accepting_gateway();
    let mut smtp = gateway.login();
    let (message, to) = fan_out_message(1000, 1000);
    let reply = send(&mut smtp, &["envelope@example.com"], &message);
    assert_code(&reply, "250 2.0.0 Ok: queued as MSG-");
    assert!(reply.trim_end().ends_with("(+999 more)"), "{reply}");

    let calls = upstream.calls();
    assert_eq!(calls.len(), 1000, "one call per distinct substitution set");
    let mut seen = BTreeMap::new();
    let mut keys = BTreeSet::new();
    for call in &calls {
        let t = transactional(&call.request);
        let [recipient] = &users(&call.request)[..] else {
            panic!("one recipient per call")
        };
        assert_eq!(t.dynamic_content_placeholders.len(), 1);
        seen.insert(
            recipient.clone(),
            t.dynamic_content_placeholders["%name%"].clone(),
        );
        keys.insert(t.transaction_id.clone());
        assert_eq!(payload(&call.request).body.trim_end(), "Dear %name%");
    }
    assert_eq!(seen.len(), 1000, "every recipient got exactly one call");
    for (i, address) in to.iter().enumerate() {
        assert_eq!(seen[address], format!("Name {i}"), "{address}");
    }
    assert_eq!(keys.len(), 1000, "every call has its own idempotency key");
}

#[test]
fn recipients_sharing_values_share_a_call() {
    let (upstream, gateway) = accepting_gateway();
    let mut smtp = gateway.login();
    let (message, _) = fan_out_message(30, 3);
    assert_code(
        &send(&mut smtp, &["envelope@example.com"], &message),
        "250 2.0.0",
    );
    let calls = upstream.calls();
    assert_eq!(calls.len(), 3);
    for call in &calls {
        assert_eq!(users(&call.request).len(), 10);
    }
}

#[test]
fn a_partial_failure_is_retried_with_the_same_keys() {
    let upstream = TestUpstream::start(Behavior::FailRecipient(
        "user3@example.com".into(),
        tonic::Code::Unavailable,
    ));
    let gateway = Gateway::start(&upstream.url());
    let mut smtp = gateway.login();
    let (message, _) = fan_out_message(5, 5);
    let reply = send(&mut smtp, &["envelope@example.com"], &message);
    assert_code(
        &reply,
        "451 4.4.1 4 of 5 recipients accepted; retrying is safe",
    );
    let first: BTreeMap<Vec<String>, String> = upstream
        .calls()
        .iter()
        .map(|c| {
            (
                users(&c.request),
                transactional(&c.request).transaction_id.clone(),
            )
        })
        .collect();
    assert_eq!(first.len(), 5);

    // The client retries the same message once the upstream is well.
    upstream.set_behavior(Behavior::Accept);
    assert_code(
        &send(&mut smtp, &["envelope@example.com"], &message),
        "250 2.0.0 Ok: queued as",
    );
    let calls = upstream.calls();
    let retry: BTreeMap<Vec<String>, String> = calls[5..]
        .iter()
        .map(|c| {
            (
                users(&c.request),
                transactional(&c.request).transaction_id.clone(),
            )
        })
        .collect();
    assert_eq!(
        first, retry,
        "every group's key repeats, so the upstream drops duplicates"
    );

    // A permanent refusal outranks a transient one.
    upstream.set_behavior(Behavior::FailRecipient(
        "user1@example.com".into(),
        tonic::Code::NotFound,
    ));
    assert_code(
        &send(&mut smtp, &["envelope@example.com"], &message),
        "550 5.1.1 4 of 5 recipients accepted",
    );
}

#[test]
fn the_client_s_idempotency_key_replaces_the_derived_one() {
    let (upstream, gateway) = accepting_gateway();
    let mut smtp = gateway.login();
    let keyed = |key: &str, subject: &str| {
        format!(
            "From: a@example.com\r\nSubject: {subject}\r\nMessage-ID: <{subject}@x>\r\n\
             Idempotency-Key: {key}\r\n\r\nbody\r\n"
        )
    };
    for message in [
        keyed("order-1", "one"),
        keyed("order-1", "two"),
        keyed("order-2", "one"),
    ] {
        assert_code(&send(&mut smtp, &["a@example.com"], &message), "250 2.0.0");
    }
    let resend =
        "From: a@example.com\r\nSubject: three\r\nResend-Idempotency-Key: order-1\r\n\r\nb\r\n";
    assert_code(&send(&mut smtp, &["a@example.com"], resend), "250 2.0.0");
    let ids: Vec<String> = upstream
        .calls()
        .iter()
        .map(|c| transactional(&c.request).transaction_id.clone())
        .collect();
    assert_eq!(
        ids[0], ids[1],
        "same key, different Message-ID: the same message"
    );
    assert_ne!(ids[0], ids[2], "another key: another message");
    assert_eq!(ids[0], ids[3], "Resend-Idempotency-Key is the same key");
}

#[test]
fn bad_control_data_is_refused_without_an_upstream_call() {
    let (upstream, gateway) = accepting_gateway();
    let mut smtp = gateway.login();
    let cases = [
        (
            "X-MSYS-API: {\"campaign_id\": \"x\" \"tags\": []}\r\n",
            "550 5.6.0 X-MSYS-API: invalid JSON at byte 21",
        ),
        (
            "X-SMTPAPI: {\"to\": \"a@example.com\"}\r\n",
            "550 5.6.0 X-SMTPAPI 'to' must be of type 'array'",
        ),
        (
            "X-SMTPAPI: {\"to\": [\"nobody\"]}\r\n",
            "550 5.1.3 X-SMTPAPI 'to' entry \"nobody\" is not an address",
        ),
        (
            "X-SES-MESSAGE-TAGS: a=b;c\r\n",
            "550 5.6.0 X-SES-MESSAGE-TAGS pair \"a=b;c\"",
        ),
    ];
    for (header, expected) in cases {
        let reply = send(&mut smtp, &["a@example.com"], &with_headers(header, "x"));
        assert_code(&reply, expected);
    }
    // Limits that need big headers: over 1000 `to` addresses, and over 1 MiB.
    let to: Vec<String> = (0..1001).map(|i| format!("u{i}@example.com")).collect();
    let api = serde_json::json!({ "to": to })
        .to_string()
        .replace(",\"", ",\r\n \"");
    let reply = send(
        &mut smtp,
        &["a@example.com"],
        &with_headers(&format!("X-SMTPAPI: {api}\r\n"), "x"),
    );
    assert_code(
        &reply,
        "550 5.5.3 Too many recipients: X-SMTPAPI 'to' list 1001, at most 1000",
    );
    let padding = "x".repeat(70);
    let big = (0..15_500)
        .map(|i| format!("\"k{i}\": \"{padding}\""))
        .collect::<Vec<_>>();
    let api = format!("{{\"unique_args\": {{{}}}}}", big.join(",\r\n "));
    let b64 = base64::engine::general_purpose::STANDARD.encode(api.replace("\r\n", ""));
    let folded: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    let reply = send(
        &mut smtp,
        &["a@example.com"],
        &with_headers(&format!("X-SMTPAPI: {}\r\n", folded.join("\r\n ")), "x"),
    );
    // Over 1 MiB of X-SMTPAPI is a header block over its 1 MiB cap: refused as that,
    // before any parsing.
    assert_code(&reply, "552 5.3.4 Header block exceeds 1048576 bytes");
    assert!(upstream.calls().is_empty(), "nothing was forwarded");
    // The session goes on.
    assert_code(
        &send(&mut smtp, &["a@example.com"], &simple_message("fine", "ok")),
        "250 2.0.0",
    );
}

const SENDCLOUD_SCRIPT: &str = r#"
import base64, json, smtplib, ssl, sys
from email.header import Header
from email.mime.text import MIMEText

port, cafile = int(sys.argv[1]), sys.argv[2]
x_smtpapi = {
    "to": ["d@163.com", "i@163.com"],
    "sub": {"%name%": ["jack", "rose"], "%money%": ["199", "299"]},
}
msg = MIMEText("亲爱的%name%: 您本月的消费金额为 %money% 元", "plain", "utf-8")
msg["From"] = "support@ifaxin.com"
msg["Subject"] = Header("账单", "utf-8")
msg["SC-Custom-key1"] = "value1"
msg["SC-Custom-key2"] = "value2"
msg["X-SMTPAPI"] = Header(base64.b64encode(json.dumps(x_smtpapi).encode()).decode())

context = ssl.create_default_context(cafile=cafile)
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s._host = "localhost"
    s.starttls(context=context)
    s.ehlo()
    s.user, s.password = "api_user", "api_key"
    code, resp = s.auth("LOGIN", s.auth_login)
    assert code == 235, (code, resp)
    s.sendmail("support@ifaxin.com", ["ben@ifaxin.com"], msg.as_string())
    print("OK")
"#;

#[test]
fn sendcloud_s_own_example_through_python_smtplib() {
    let (upstream, gateway) = accepting_gateway();
    let out = run_python(SENDCLOUD_SCRIPT, gateway.addr.port(), &gateway.cert_pem);
    assert!(out.contains("OK"), "{out}");

    let calls = upstream.calls();
    assert_eq!(calls.len(), 2, "jack and rose each get their own call");
    let mut by_user = BTreeMap::new();
    for call in &calls {
        let t = transactional(&call.request);
        assert_eq!(t.application, "api_user");
        assert_eq!(
            meta(&call.request)["metadata"],
            serde_json::json!({"key1": "value1", "key2": "value2"})
        );
        assert_eq!(payload(&call.request).subject["default"], "账单");
        by_user.insert(users(&call.request), t.dynamic_content_placeholders.clone());
    }
    let expect = |name: &str, money: &str| {
        BTreeMap::from([
            ("%money%".to_owned(), money.to_owned()),
            ("%name%".to_owned(), name.to_owned()),
        ])
    };
    assert_eq!(
        by_user[&vec!["d@163.com".to_owned()]],
        expect("jack", "199")
    );
    assert_eq!(
        by_user[&vec!["i@163.com".to_owned()]],
        expect("rose", "299")
    );
}
