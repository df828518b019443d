//! Real SMTP clients against the gateway: swaks (Perl, IO::Socket::SSL) and Python's
//! smtplib send multipart messages through STARTTLS + AUTH PLAIN and AUTH LOGIN, and
//! the tests assert what the real gRPC upstream received. `.ci/run` installs swaks.

mod common;

use std::process::Command;

use common::*;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("smtpgate-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e} (install it: see .ci/run)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

fn swaks(gateway: &Gateway, auth: &str, extra: &[&str]) -> String {
    let server = format!("{}", gateway.addr);
    let mut command = Command::new("swaks");
    command.args([
        "--server",
        &server,
        "--tls",
        "--auth",
        auth,
        "--auth-user",
        "SWAKS-APP",
        "--auth-password",
        "swaks-token",
        "--from",
        "envelope@example.com",
        "--to",
        "one@example.com,two@example.com",
        "--h-From",
        "Swaks Sender <sender@example.com>",
    ]);
    command.args(extra);
    run(&mut command)
}

#[test]
fn swaks_multipart_with_attachment_over_auth_plain() {
    let (upstream, gateway) = accepting_gateway();
    let dir = temp_dir("swaks");
    let file = dir.join("report.csv");
    std::fs::write(&file, "id,value\n1,42\n").expect("write attachment");
    let attach = format!("@{}", file.display());
    let transcript = swaks(
        &gateway,
        "PLAIN",
        &[
            "--header",
            "Subject: =?UTF-8?B?0J7RgtGH0ZHRgg==?=",
            "--attach-type",
            "text/plain",
            "--attach-body",
            "plain body",
            "--attach-type",
            "text/html",
            "--attach-body",
            "<p>html body</p>",
            "--attach-type",
            "text/csv",
            "--attach",
            &attach,
        ],
    );
    assert!(
        transcript.contains("<~  250 2.0.0 Ok: queued as MSG-1"),
        "{transcript}"
    );
    assert!(transcript.contains("AUTH PLAIN"), "{transcript}");
    let call = upstream.only_call();
    assert_eq!(call.authorization.as_deref(), Some("Token swaks-token"));
    let t = transactional(&call.request);
    assert_eq!(t.application, "SWAKS-APP");
    let p = payload(&call.request);
    assert_eq!(p.subject["default"], "Отчёт");
    assert_eq!(p.body.trim_end(), "<p>html body</p>");
    assert_eq!(
        p.from.as_ref().map(|f| (f.name.as_str(), f.email.as_str())),
        Some(("Swaks Sender", "sender@example.com"))
    );
    assert_eq!(p.attachments.len(), 1);
    assert_eq!(p.attachments[0].name, "report.csv");
    assert_eq!(&p.attachments[0].content[..], b"id,value\n1,42\n");
}

#[test]
fn swaks_over_auth_login() {
    let (upstream, gateway) = accepting_gateway();
    let transcript = swaks(
        &gateway,
        "LOGIN",
        &[
            "--header",
            "Subject: via login",
            "--attach-type",
            "text/plain",
            "--attach-body",
            "hello",
            "--attach-type",
            "text/html",
            "--attach-body",
            "<b>hello</b>",
            "--attach-type",
            "application/json",
            "--attach-name",
            "data.json",
            "--attach",
            "{\"k\": 1}",
        ],
    );
    assert!(transcript.contains("AUTH LOGIN"), "{transcript}");
    assert!(
        transcript.contains("<~  250 2.0.0 Ok: queued as MSG-1"),
        "{transcript}"
    );
    let call = upstream.only_call();
    assert_eq!(call.authorization.as_deref(), Some("Token swaks-token"));
    let p = payload(&call.request);
    assert_eq!(p.subject["default"], "via login");
    assert_eq!(p.body.trim_end(), "<b>hello</b>");
    assert_eq!(p.attachments.len(), 1);
    assert_eq!(p.attachments[0].name, "data.json");
    assert_eq!(&p.attachments[0].content[..], b"{\"k\": 1}");
}

#[test]
fn swaks_sees_upstream_refusal() {
    let upstream = TestUpstream::start(Behavior::Fail(
        tonic::Code::Unauthenticated,
        "unknown token".into(),
    ));
    let gateway = Gateway::start(&upstream.url());
    let server = format!("{}", gateway.addr);
    let output = Command::new("swaks")
        .args([
            "--server",
            &server,
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "A",
            "--auth-password",
            "bad",
            "--to",
            "r@example.com",
            "--from",
            "s@example.com",
            "--body",
            "x",
        ])
        .output()
        .expect("swaks runs (install it: see .ci/run)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "swaks reports the failure");
    assert!(
        text.contains("<~* 535 5.7.8 Bad application code or API token: unknown token"),
        "{text}"
    );
}

const SMTPLIB_SCRIPT: &str = r#"
import smtplib, ssl, sys
from email.message import EmailMessage

port, cafile, mechanism = int(sys.argv[1]), sys.argv[2], sys.argv[3]
msg = EmailMessage()
msg["From"] = "Python Sender <py@example.com>"
msg["To"] = "one@example.com"
msg["Reply-To"] = "replies@example.com"
msg["Subject"] = "Grüße aus Python"
msg["List-Unsubscribe"] = "<https://example.com/u/1>"
msg.set_content("plain text part")
msg.add_alternative("<h1>HTML part ✓</h1>", subtype="html")
msg.add_attachment(bytes(range(256)), maintype="application", subtype="octet-stream", filename="bytes.bin")

context = ssl.create_default_context(cafile=cafile)
with smtplib.SMTP("127.0.0.1", port, local_hostname="py.example", timeout=20) as s:
    s._host = "localhost"  # the name the certificate is checked against
    s.starttls(context=context)
    if mechanism == "PLAIN":
        s.login("PY-APP", "py-token")
    else:
        s.ehlo()
        s.user, s.password = "PY-APP", "py-token"
        code, resp = s.auth("LOGIN", s.auth_login)
        assert code == 235, (code, resp)
    refused = s.send_message(msg, from_addr="env@example.com", to_addrs=["one@example.com", "two@example.com"])
    assert refused == {}, refused
    code, resp = s.noop()
    print("OK", code)
"#;

fn smtplib(mechanism: &str) {
    let (upstream, gateway) = accepting_gateway();
    let dir = temp_dir(&format!("smtplib-{mechanism}"));
    let ca = dir.join("gateway.pem");
    std::fs::write(&ca, &gateway.cert_pem).expect("write cert");
    let port = gateway.addr.port().to_string();
    let out = run(Command::new("python3").args([
        "-c",
        SMTPLIB_SCRIPT,
        &port,
        ca.to_str().expect("utf-8"),
        mechanism,
    ]));
    assert!(out.contains("OK 250"), "{out}");

    let call = upstream.only_call();
    assert_eq!(call.authorization.as_deref(), Some("Token py-token"));
    let t = transactional(&call.request);
    assert_eq!(t.application, "PY-APP");
    match &t.target {
        Some(smtpgate::notify::notify_transactional::Target::Users(l)) => {
            assert_eq!(l.list, ["one@example.com", "two@example.com"]);
        }
        other => panic!("{other:?}"),
    }
    let p = payload(&call.request);
    assert_eq!(p.subject["default"], "Grüße aus Python");
    assert_eq!(p.body.trim_end(), "<h1>HTML part ✓</h1>");
    assert_eq!(
        p.reply_to.as_ref().map(|r| r.email.as_str()),
        Some("replies@example.com")
    );
    assert_eq!(p.list_unsubscribe, "https://example.com/u/1");
    assert_eq!(p.attachments.len(), 1);
    assert_eq!(p.attachments[0].name, "bytes.bin");
    assert_eq!(
        p.attachments[0].content.to_vec(),
        (0..=255u8).collect::<Vec<_>>()
    );
}

#[test]
fn python_smtplib_auth_plain() {
    smtplib("PLAIN");
}

#[test]
fn python_smtplib_auth_login() {
    smtplib("LOGIN");
}
