//! The binary's command-line contract: `--help` documents every flag, invalid values
//! exit non-zero with one line naming the flag, and `--dev` does exactly what the
//! README shows (listener line, swaks gets 250, one JSON line per message on stdout).
#![allow(clippy::disallowed_methods)] // Tests may read the clock.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::process::Spawned;

fn smtpgate() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smtpgate"));
    // The environment must not leak flags into these runs.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SMTPGATE_") {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn help_documents_every_flag() {
    let output = smtpgate().arg("--help").output().expect("runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--listen",
        "--listen-tls",
        "--listen-relay",
        "--tls-cert",
        "--tls-key",
        "--upstream",
        "--upstream-method",
        "--upstream-timeout",
        "--upstream-ca",
        "--upstream-keepalive",
        "--shards",
        "--hostname",
        "--max-message-size",
        "--max-recipients",
        "--command-timeout",
        "--bare-lf",
        "--default-application",
        "--fanout-concurrency",
        "--max-messages-per-connection",
        "--drain-timeout",
        "--proxy-trusted",
        "--proxy-timeout",
        "--admin",
        "--log-format",
        "--greet-pause",
        "--max-connections",
        "--max-connections-per-ip",
        "--max-auth-failures",
        "--min-data-rate",
        "--dev",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
    assert!(
        help.contains("SMTPGATE_UPSTREAM"),
        "--help names the environment variables"
    );
}

#[test]
fn invalid_values_exit_non_zero_with_one_line_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--dev", "--shards", "zero"], "--shards"),
        (
            &["--dev", "--upstream-timeout", "soon"],
            "--upstream-timeout",
        ),
        (&["--dev", "--command-timeout", "0s"], "--command-timeout"),
        (&["--dev", "--max-recipients", "-3"], "--max-recipients"),
        (&["--dev", "--bare-lf", "sometimes"], "--bare-lf"),
        (
            &["--dev", "--spin-before-park", "a while"],
            "--spin-before-park",
        ),
        (&["--dev", "--listen", "not-an-address"], "--listen"),
        (&["--dev", "--upstream", "gopher://x"], "--upstream"),
        (
            &["--dev", "--upstream-method", "Notify"],
            "--upstream-method",
        ),
        (&["--dev", "--hostname", "a b"], "--hostname"),
        (&["--dev", "--listen-tls", "465"], "--listen-tls"),
        (&["--dev", "--drain-timeout", "0s"], "--drain-timeout"),
        (
            &["--dev", "--proxy-trusted", "10.0.0.1/8"],
            "--proxy-trusted",
        ),
        (&["--dev", "--proxy-timeout", "soon"], "--proxy-timeout"),
        (&["--dev", "--admin", "localhost"], "--admin"),
        (&["--dev", "--log-format", "xml"], "--log-format"),
        (&["--dev", "--greet-pause", "a bit"], "--greet-pause"),
        (
            &["--dev", "--max-auth-failures", "0"],
            "--max-auth-failures",
        ),
        (&["--dev", "--min-data-rate", "0"], "--min-data-rate"),
        (&["--dev", "--max-connections", "0"], "--max-connections"),
        (
            &["--dev", "--max-connections-per-ip", "-1"],
            "--max-connections-per-ip",
        ),
        (
            &["--dev", "--max-messages-per-connection", "-1"],
            "--max-messages-per-connection",
        ),
        (&["--upstream", "http://127.0.0.1:1"], "--tls-cert"),
        (
            &[
                "--tls-cert",
                "/nonexistent.pem",
                "--tls-key",
                "/nonexistent.key",
                "--upstream",
                "http://127.0.0.1:1",
            ],
            "--tls-cert",
        ),
    ];
    for (args, flag) in cases {
        let output = smtpgate().args(*args).output().expect("runs");
        assert!(!output.status.success(), "{args:?} must fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: one line, got {stderr:?}"
        );
        assert!(
            stderr.contains(flag),
            "{args:?}: {stderr:?} does not name {flag}"
        );
    }
}

#[test]
fn environment_variables_set_flags() {
    let output = smtpgate()
        .args(["--dev"])
        .env("SMTPGATE_SHARDS", "many")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--shards"));
}

/// A `--dev` gateway on a free port (its stderr where the test wants it).
struct DevGateway {
    process: Spawned,
    addr: String,
}

impl DevGateway {
    fn start(log_level: &str, stderr: Stdio) -> Self {
        Self::start_on("127.0.0.1:0", log_level, stderr)
    }

    fn start_on(listen: &str, log_level: &str, stderr: Stdio) -> Self {
        let process = Spawned::start(
            smtpgate()
                .args(["--dev", "--listen", listen, "--shards", "2"])
                .env("SMTPGATE_LOG", log_level)
                .stderr(stderr),
        );
        let addr = process.listening_address("smtpgate listening on ");
        Self { process, addr }
    }

    /// The next line on stdout after the start-up lines (the admin listener's, when
    /// `--dev` could bind its port).
    fn next_line(&self) -> String {
        loop {
            let line = self.process.next_line();
            if !line.starts_with("smtpgate admin on ") {
                return line;
            }
        }
    }

    /// The README's swaks command against this gateway; returns the transcript.
    fn swaks(&self, token: &str) -> String {
        let output = Command::new("swaks")
            .args([
                "--server",
                &self.addr,
                "--tls",
                "--auth-user",
                "APP-CODE",
                "--auth-password",
                token,
                "--to",
                "a@example.com",
                "--from",
                "b@example.com",
                "--header",
                "Subject: hi",
                "--body",
                "hello",
            ])
            .output()
            .expect("swaks runs (install it: see .ci/run)");
        let transcript = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{transcript}");
        transcript
    }
}

#[test]
fn dev_mode_runs_the_readme_example() {
    let gateway = DevGateway::start("info", Stdio::null());
    let started = Instant::now();
    let transcript = gateway.swaks("TOKEN");
    assert!(
        transcript.contains("<~  250 2.0.0 Ok: queued as DEV-"),
        "{transcript}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));

    let json: serde_json::Value =
        serde_json::from_str(&gateway.next_line()).expect("one JSON line per message");
    assert_eq!(json["authorization"], "Token <redacted>");
    let t = &json["request"]["transactional"];
    assert_eq!(t["application"], "APP-CODE");
    assert_eq!(t["users"]["list"][0], "a@example.com");
    assert_eq!(t["email_payload"]["subject"]["default"], "hi");
    assert_eq!(t["platforms"][0], "EMAIL");
    assert!(
        !json.to_string().contains("TOKEN"),
        "the token never reaches stdout"
    );
}

#[test]
fn token_never_appears_in_logs_even_at_trace_level() {
    let log = std::env::temp_dir().join(format!("smtpgate-trace-{}.log", std::process::id()));
    let file = std::fs::File::create(&log).expect("log file");
    let token = "S3CR3T-T0KEN-4711";
    {
        let gateway = DevGateway::start("trace", Stdio::from(file));
        assert!(
            gateway
                .swaks(token)
                .contains("250 2.0.0 Ok: queued as DEV-")
        );
        let line = gateway.next_line();
        assert!(!line.contains(token), "stdout: {line}");
    }
    let logs = std::fs::read_to_string(&log).expect("read log");
    assert!(
        logs.contains("upstream_status=OK"),
        "the run logged the message"
    );
    assert!(!logs.contains(token), "the token leaked into the logs");
    let _ = std::fs::remove_file(&log);
}

#[test]
fn sendcloud_email_ids_appear_in_the_transaction_s_log_line() {
    let log = std::env::temp_dir().join(format!("smtpgate-email-ids-{}.log", std::process::id()));
    let file = std::fs::File::create(&log).expect("log file");
    {
        let gateway = DevGateway::start("info", Stdio::from(file));
        let output = Command::new("swaks")
            .args(["--server", &gateway.addr, "--tls"])
            .args(["--auth-user", "APP-CODE", "--auth-password", "TOKEN"])
            .args(["--to", "env@example.com", "--from", "b@example.com"])
            .args([
                "--header",
                r#"X-SMTPAPI: {"to": ["ben@ifaxin.com", "joe@ifaxin.com"]}"#,
            ])
            .output()
            .expect("swaks runs (install it: see .ci/run)");
        let transcript = String::from_utf8_lossy(&output.stdout);
        assert!(
            transcript.contains("<~  250 2.0.0 Ok: queued as DEV-00000001"),
            "{transcript}"
        );
        gateway.next_line();
    }
    let logs = std::fs::read_to_string(&log).expect("read log");
    assert!(
        logs.contains("DEV-000000010$ben@ifaxin.com,DEV-000000011$joe@ifaxin.com"),
        "SendCloud's <message id><index>$<address> for each recipient: {logs}"
    );
    let _ = std::fs::remove_file(&log);
}

#[test]
fn a_restart_binds_while_the_last_runs_connections_sit_in_time_wait() {
    use std::io::{BufRead, BufReader, Write};
    let first = DevGateway::start("warn", Stdio::null());
    let addr = first.addr.clone();
    // The server closes after QUIT, so the TIME_WAIT socket is on its side, on its port.
    let stream = std::net::TcpStream::connect(&addr).expect("connect");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("greeting");
    assert!(line.starts_with("220 "), "{line}");
    (&stream).write_all(b"QUIT\r\n").expect("send QUIT");
    line.clear();
    reader.read_line(&mut line).expect("221");
    assert!(line.starts_with("221 "), "{line}");
    line.clear();
    assert_eq!(reader.read_line(&mut line).expect("close"), 0, "{line}");
    drop((reader, stream));
    drop(first);

    let second = DevGateway::start_on(&addr, "warn", Stdio::inherit());
    assert_eq!(second.addr, addr);
}

#[test]
fn one_line_per_listener_names_its_kind() {
    let process = Spawned::start(
        smtpgate()
            .args([
                "--dev",
                "--shards",
                "1",
                "--listen",
                "127.0.0.1:0",
                "--listen-tls",
                "127.0.0.1:0",
            ])
            .stderr(Stdio::null()),
    );
    let starttls = process.next_line();
    let tls = process.next_line();
    for (line, kind) in [(&starttls, "(starttls)"), (&tls, "(tls)")] {
        assert!(
            line.starts_with("smtpgate listening on 127.0.0.1:") && line.ends_with(kind),
            "{line:?}"
        );
    }
    assert_ne!(starttls, tls.replace("(tls)", "(starttls)"), "two ports");
}

#[test]
fn json_logs_have_one_object_per_line_with_the_message_fields() {
    let log = std::env::temp_dir().join(format!("smtpgate-json-{}.log", std::process::id()));
    let file = std::fs::File::create(&log).expect("log file");
    let token = "JS0N-T0KEN-0815";
    {
        let process = Spawned::start(
            smtpgate()
                .args(["--dev", "--shards", "1", "--listen", "127.0.0.1:0"])
                .args(["--log-format", "json", "--max-recipients", "1"])
                .env("SMTPGATE_LOG", "trace")
                .stderr(Stdio::from(file)),
        );
        let addr = process.listening_address("smtpgate listening on ");
        let swaks = |to: &str| {
            Command::new("swaks")
                .args(["--server", &addr, "--tls"])
                .args(["--auth-user", "APP-JSON", "--auth-password", token])
                .args(["--to", to, "--from", "b@example.com"])
                .output()
                .expect("swaks runs")
        };
        assert!(swaks("a@example.com").status.success());
        // Two recipients where one is allowed: the second RCPT is refused by the limit.
        let _ = swaks("a@example.com,b@example.com");
    }
    let logs = std::fs::read_to_string(&log).expect("read log");
    let _ = std::fs::remove_file(&log);
    assert!(!logs.contains(token), "the token leaked into the logs");
    let objects: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let messages: Vec<&serde_json::Value> = objects
        .iter()
        .filter(|o| o["target"] == "smtpgate::message")
        .collect();
    assert!(messages.len() >= 2, "{logs}");
    let accepted = messages[0];
    for key in [
        "timestamp",
        "level",
        "shard",
        "session",
        "client",
        "listener",
        "application",
        "recipients",
        "size",
        "upstream_status",
        "message_code",
        "reply",
        "upstream_ms",
        "total_ms",
    ] {
        assert!(accepted.get(key).is_some(), "{key} missing: {accepted}");
    }
    assert_eq!(accepted["level"], "INFO");
    assert_eq!(accepted["listener"], "starttls");
    assert_eq!(accepted["application"], "APP-JSON");
    assert_eq!(accepted["upstream_status"], "OK");
    assert_eq!(accepted["reply"], 250);
    assert!(
        accepted["message_code"]
            .as_str()
            .is_some_and(|c| c.starts_with("DEV-"))
    );
    assert!(
        accepted["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.0.0.1:"))
    );
    assert!(
        messages
            .iter()
            .any(|m| m["reply"] == 452 && m["upstream_status"] == "NONE"),
        "a limit's refusal has its line too: {logs}"
    );
}
