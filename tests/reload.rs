//! Reload (SIGHUP): the certificate and key, and the relay token, are read again; new
//! handshakes get the new certificate (told apart by which certificate a client must
//! trust to connect) while sessions already in TLS keep theirs; an unreadable or
//! invalid pair changes nothing. In process through `signals::reload`, and through the
//! binary with a real SIGHUP.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::Spawned;
use common::*;
use smtpgate::config::ListenerKind;

/// A fresh self-signed certificate for `localhost`: (certificate PEM, key PEM).
fn certificate() -> (String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

/// A folder of this test's own, removed at the end.
struct Files(PathBuf);

impl Files {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("smtpgate-reload-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write");
        path.to_str().expect("utf-8").to_owned()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The certificate a new STARTTLS session is shown (DER), the client trusting both.
fn served(addr: std::net::SocketAddr, both: &str) -> Vec<u8> {
    let mut smtp = Smtp::connect(addr);
    smtp.cmd("EHLO client.test");
    smtp.starttls(both);
    smtp.peer_certificate().expect("a certificate")
}

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("PEM")
        .to_vec()
}

/// Whether a new STARTTLS session completes when the client trusts only `cert_pem`.
fn handshake_trusting(addr: std::net::SocketAddr, cert_pem: &str) -> bool {
    let mut smtp = Smtp::connect(addr);
    smtp.cmd("EHLO client.test");
    assert_code(&smtp.cmd("STARTTLS"), "220 2.0.0");
    smtp.handshake(cert_pem).is_ok()
}

#[test]
fn new_handshakes_get_the_new_certificate_and_a_bad_pair_changes_nothing() {
    let files = Files::new("in-process");
    let (cert_a, key_a) = certificate();
    let (cert_b, key_b) = certificate();
    let cert = files.write("cert.pem", &cert_a);
    let key = files.write("key.pem", &key_a);
    let upstream = TestUpstream::start(Behavior::Accept);
    let config = config(
        &upstream.url(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
        &[],
    );
    let server = smtpgate::shard::start(&config).expect("gateway starts");
    let addr = server.addrs(ListenerKind::StartTls)[0];
    let both = format!("{cert_a}{cert_b}");
    assert_eq!(served(addr, &both), der(&cert_a));
    assert!(handshake_trusting(addr, &cert_a));
    assert!(!handshake_trusting(addr, &cert_b));

    // A session already in TLS before the reload.
    let mut before = Smtp::connect(addr);
    before.cmd("EHLO client.test");
    before.starttls(&cert_a);
    assert_code(&before.cmd("EHLO client.test"), "250");

    files.write("cert.pem", &cert_b);
    files.write("key.pem", &key_b);
    smtpgate::signals::reload(&server.controller(), &config);
    assert!(
        handshake_trusting(addr, &cert_b),
        "new handshakes: the new pair"
    );
    assert!(!handshake_trusting(addr, &cert_a));
    assert_code(&before.auth_plain("APP", "tok"), "235 2.7.0");
    assert_code(
        &send(&mut before, &["r@example.com"], &simple_message("s", "b")),
        "250 2.0.0",
    );

    // A certificate that does not parse, then one that does not match its key.
    files.write(
        "cert.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    );
    assert!(config.reload().is_err());
    smtpgate::signals::reload(&server.controller(), &config);
    files.write("cert.pem", &cert_a);
    assert!(config.reload().is_err(), "certificate A with key B");
    smtpgate::signals::reload(&server.controller(), &config);
    assert!(
        handshake_trusting(addr, &cert_b),
        "still the last good pair"
    );
}

#[test]
fn the_relay_token_is_read_again() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = RelayGateway::start(&upstream.url(), "RELAY-APP", "old-token", &[]);
    let mut before = Smtp::connect(gateway.relay);
    before.cmd("EHLO app-host");
    std::fs::write(&gateway.token_file, "new-token\n").expect("write");
    smtpgate::signals::reload(&gateway.server.controller(), &gateway.config);
    let mut after = Smtp::connect(gateway.relay);
    after.cmd("EHLO app-host");
    assert_code(
        &send(&mut after, &["r@example.com"], &simple_message("s", "b")),
        "250 2.0.0",
    );
    assert_code(
        &send(&mut before, &["r@example.com"], &simple_message("s", "b")),
        "250 2.0.0",
    );
    let tokens: Vec<_> = upstream
        .calls()
        .into_iter()
        .map(|c| c.authorization.unwrap_or_default())
        .collect();
    assert_eq!(
        tokens,
        ["Token new-token", "Token old-token"],
        "new sessions use the new token; a session under way keeps its own"
    );
}

#[test]
fn sighup_reloads_the_binary() {
    let files = Files::new("binary");
    let (cert_a, key_a) = certificate();
    let (cert_b, key_b) = certificate();
    let cert = files.write("cert.pem", &cert_a);
    let key = files.write("key.pem", &key_a);
    let upstream = TestUpstream::start(Behavior::Accept);
    let process = Spawned::start(
        Command::new(env!("CARGO_BIN_EXE_smtpgate"))
            .args([
                "--shards",
                "2",
                "--listen",
                "127.0.0.1:0",
                "--hostname",
                "mx.test",
            ])
            .args([
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--upstream",
                &upstream.url(),
            ])
            .env_remove("SMTPGATE_LOG")
            .stderr(Stdio::null()),
    );
    let addr = process
        .listening_address("smtpgate listening on ")
        .parse()
        .expect("address");
    assert!(handshake_trusting(addr, &cert_a));
    files.write("cert.pem", "garbage");
    process.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        handshake_trusting(addr, &cert_a),
        "a bad file changes nothing"
    );
    files.write("cert.pem", &cert_b);
    files.write("key.pem", &key_b);
    process.signal("HUP");
    eventually("the new certificate is served", || {
        handshake_trusting(addr, &cert_b)
    });
}
