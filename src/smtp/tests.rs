//! Whole dialogs run in memory against the sans-IO session, on a fake clock.
#![allow(clippy::disallowed_methods)] // The fake clock starts at a real instant.

use std::rc::Rc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::testing::{Dialog, Rng, well_formed};
use super::*;

/// The openings the tests use most, by name.
impl Dialog {
    fn new() -> Self {
        Self::builder().build()
    }

    fn with_limits(limits: Limits) -> Self {
        Self::builder().limits(limits).build()
    }

    fn with_mode(limits: Limits, mode: Mode) -> Self {
        Self::builder().limits(limits).mode(mode).build()
    }

    fn authenticated() -> Self {
        Self::builder().authenticated().build()
    }

    fn tls() -> Self {
        Self::builder().tls().build()
    }

    /// STARTTLS on a dialog built otherwise.
    fn tls_from(mut d: Self) -> Self {
        d.send("EHLO c\r\n");
        assert_eq!(d.send("STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
        assert!(d.starttls_requested);
        d.session.handle_tls_established(d.now);
        d
    }
}

const ACCEPTED: Reply = Reply::new(250, "2.0.0", "OK id-1");

#[test]
fn provider_user_names_submit_as_the_default_application() {
    let policy = AuthPolicy {
        default_application: Some("DEFAULT".into()),
    };
    let mut d = Dialog::tls_from(Dialog::with_mode(
        Limits::default(),
        Mode::Submission(policy),
    ));
    d.send("EHLO c\r\n");
    let login = STANDARD.encode(b"SMTP_Injection:X-MSYS-SUBACCOUNT=9");
    assert_eq!(
        d.send(&format!("AUTH LOGIN {login}\r\n")),
        "334 UGFzc3dvcmQ6\r\n"
    );
    assert!(
        d.send(&format!("{}\r\n", STANDARD.encode(b"key")))
            .starts_with("235 2.7.0")
    );
    d.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<r@b.c>\r\nDATA\r\nx\r\n.\r\n");
    let submitted = &d.submitted[0].credentials;
    assert_eq!(submitted.application, "DEFAULT");
    assert_eq!(submitted.subaccount, Some(9));
    assert_eq!(submitted.token.expose(), "key");
}

#[test]
fn provider_user_names_without_a_default_application_are_refused_at_auth() {
    let mut d = Dialog::tls();
    d.send("EHLO c\r\n");
    let plain = STANDARD.encode(b"\0pm-token\0pm-token");
    let reply = d.send(&format!("AUTH PLAIN {plain}\r\n"));
    assert!(reply.starts_with("535 5.7.8 "), "{reply}");
    assert!(reply.contains("--default-application"), "{reply}");
    assert!(
        d.send("MAIL FROM:<a@b.c>\r\n").starts_with("530 5.7.0"),
        "still not authenticated"
    );
}

#[test]
fn ehlo_before_tls_offers_starttls_not_auth() {
    let mut d = Dialog::new();
    let ehlo = d.send("EHLO client.example\r\n");
    assert_eq!(
        ehlo,
        "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 26214400\r\n250-8BITMIME\r\n\
         250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n"
    );
}

#[test]
fn ehlo_after_tls_offers_auth_not_starttls() {
    let mut d = Dialog::tls();
    let ehlo = d.send("EHLO client.example\r\n");
    assert!(
        ehlo.ends_with("250-ENHANCEDSTATUSCODES\r\n250 AUTH PLAIN LOGIN\r\n"),
        "{ehlo}"
    );
    assert!(!ehlo.contains("STARTTLS"));
}

#[test]
fn auth_before_tls_is_refused_without_checking() {
    let mut d = Dialog::new();
    d.send("EHLO c\r\n");
    let plain = STANDARD.encode(b"\0app\0tok");
    assert!(
        d.send(&format!("AUTH PLAIN {plain}\r\n"))
            .starts_with("530 5.7.0")
    );
    assert!(d.send("MAIL FROM:<a@b.c>\r\n").starts_with("530 5.7.0"));
}

#[test]
fn starttls_with_pipelined_commands_closes_without_running_them() {
    let mut d = Dialog::new();
    d.send("EHLO c\r\n");
    let out = d.send("STARTTLS\r\nMAIL FROM:<x@y.z>\r\n");
    assert!(out.starts_with("554 5.5.0"), "{out}");
    assert_eq!(Dialog::codes(&out).len(), 1);
    assert!(d.session.is_closed());
    assert!(!d.starttls_requested);
}

#[test]
fn starttls_argument_and_second_starttls() {
    let mut d = Dialog::new();
    assert!(d.send("STARTTLS now\r\n").starts_with("501 5.5.4"));
    let mut d = Dialog::tls();
    assert!(d.send("STARTTLS\r\n").starts_with("503 5.5.1"));
}

#[test]
fn after_tls_mail_needs_a_new_ehlo() {
    let mut d = Dialog::tls();
    assert!(d.send("MAIL FROM:<a@b.c>\r\n").starts_with("503 5.5.1"));
}

#[test]
fn mail_before_auth_is_refused() {
    let mut d = Dialog::tls();
    d.send("EHLO c\r\n");
    assert!(d.send("MAIL FROM:<a@b.c>\r\n").starts_with("530 5.7.0"));
    assert!(
        d.send("RCPT TO:<a@external.example>\r\n")
            .starts_with("530 5.7.0")
    );
}

#[test]
fn auth_plain_with_challenge_and_login_flows() {
    let mut d = Dialog::tls();
    d.send("EHLO c\r\n");
    assert_eq!(d.send("AUTH PLAIN\r\n"), "334 \r\n");
    let plain = STANDARD.encode(b"\0APP\0tok");
    assert!(d.send(&format!("{plain}\r\n")).starts_with("235 2.7.0"));
    assert!(
        d.send("AUTH PLAIN\r\n").starts_with("503 5.5.1"),
        "second AUTH"
    );

    let mut d = Dialog::tls();
    d.send("EHLO c\r\n");
    assert_eq!(d.send("AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(
        d.send(&format!("{}\r\n", STANDARD.encode("APP"))),
        "334 UGFzc3dvcmQ6\r\n"
    );
    assert!(
        d.send(&format!("{}\r\n", STANDARD.encode("tok")))
            .starts_with("235 2.7.0")
    );

    let mut d = Dialog::tls();
    d.send("EHLO c\r\n");
    let user = STANDARD.encode("APP");
    assert_eq!(
        d.send(&format!("AUTH LOGIN {user}\r\n")),
        "334 UGFzc3dvcmQ6\r\n"
    );
    assert!(d.send("*\r\n").starts_with("501 5.7.0"), "cancel");
    assert!(d.send("MAIL FROM:<a@b.c>\r\n").starts_with("530 5.7.0"));
}

#[test]
fn auth_errors() {
    let mut d = Dialog::tls();
    d.send("EHLO c\r\n");
    assert!(d.send("AUTH PLAIN !!!\r\n").starts_with("501 5.5.2"));
    assert!(d.send("AUTH CRAM-MD5\r\n").starts_with("504 5.5.4"));
    assert_eq!(d.send("AUTH PLAIN\r\n"), "334 \r\n");
    assert!(d.send("*\r\n").starts_with("501 5.7.0"));
    let huge = format!("AUTH PLAIN {}\r\n", "A".repeat(20_000));
    assert!(d.send(&huge).starts_with("500 5.5.6"));
    assert!(
        d.send("NOOP\r\n").starts_with("250 2.0.0"),
        "session goes on"
    );
}

#[test]
fn auth_inside_a_transaction_is_refused() {
    let mut d = Dialog::authenticated();
    d.send("MAIL FROM:<a@b.c>\r\n");
    assert!(d.send("AUTH PLAIN\r\n").starts_with("503 5.5.1"));
}

#[test]
fn a_whole_transaction_submits_once() {
    let mut d = Dialog::authenticated();
    assert!(
        d.send("MAIL FROM:<a@b.c> SIZE=100\r\n")
            .starts_with("250 2.1.0")
    );
    assert!(d.send("RCPT TO:<x@y.z>\r\n").starts_with("250 2.1.5"));
    assert!(
        d.send("RCPT TO:<X@Y.Z>\r\n").starts_with("250 2.1.5"),
        "duplicate accepted"
    );
    assert!(d.send("RCPT TO:<w@y.z>\r\n").starts_with("250 2.1.5"));
    assert!(d.send("DATA\r\n").starts_with("354"));
    assert_eq!(d.send("Subject: hi\r\n\r\n..dot\r\n.\r\n"), "");
    assert_eq!(d.submitted.len(), 1);
    let s = &d.submitted[0];
    assert_eq!(s.recipients, ["x@y.z", "w@y.z"]);
    assert_eq!(s.mail_from, "a@b.c");
    assert_eq!(s.credentials.application, "APP-1");
    assert_eq!(s.body, b"Subject: hi\r\n\r\n.dot\r\n");
    assert_eq!(
        d.session.poll_timeout(),
        None,
        "no idle timer while the upstream works"
    );
    assert_eq!(d.verdict(&ACCEPTED), "250 2.0.0 OK id-1\r\n");
    assert!(
        d.send("RCPT TO:<x@y.z>\r\n").starts_with("503 5.5.1"),
        "transaction reset"
    );
}

#[test]
fn pipelined_transaction_in_one_write_replies_in_order() {
    let mut d = Dialog::authenticated();
    let out = d.send(
        "MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\nSubject: s\r\n\r\nbody\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(Dialog::codes(&out), ["250 2.1.0", "250 2.1.5", "354 End d"]);
    assert_eq!(d.submitted.len(), 1);
    assert!(!d.session.is_closed(), "QUIT waits for the verdict");
    let out = d.verdict(&ACCEPTED);
    assert_eq!(Dialog::codes(&out), ["250 2.0.0", "221 2.0.0"]);
    assert!(d.session.is_closed());
}

#[test]
fn pipelined_rejected_recipients_then_data() {
    let mut d = Dialog::authenticated();
    let out = d.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<bad>\r\nRCPT TO:<>\r\nDATA\r\n");
    assert_eq!(
        Dialog::codes(&out),
        ["250 2.1.0", "501 5.1.3", "501 5.1.3", "554 5.5.1"]
    );
    assert!(d.submitted.is_empty());
}

#[test]
fn sequence_errors() {
    let mut d = Dialog::authenticated();
    assert!(d.send("RCPT TO:<x@y.z>\r\n").starts_with("503 5.5.1"));
    assert!(d.send("DATA\r\n").starts_with("503 5.5.1"));
    d.send("MAIL FROM:<a@b.c>\r\n");
    assert!(d.send("MAIL FROM:<a@b.c>\r\n").starts_with("503 5.5.1"));
    assert!(d.send("DATA\r\n").starts_with("554 5.5.1"));
    assert!(
        d.send("EHLO again\r\n").starts_with("250-mx.test"),
        "EHLO mid-transaction"
    );
    assert!(
        d.send("RCPT TO:<x@y.z>\r\n").starts_with("503 5.5.1"),
        "and it reset"
    );
}

#[test]
fn size_parameter_over_the_limit() {
    let mut d = Dialog::authenticated();
    assert!(
        d.send("MAIL FROM:<a@b.c> SIZE=26214401\r\n")
            .starts_with("552 5.3.4")
    );
    assert!(
        d.send("mail from:<a@b.c> size=26214400\r\n")
            .starts_with("250 2.1.0")
    );
}

#[test]
fn the_51st_recipient_is_refused_and_50_are_kept() {
    let mut d = Dialog::authenticated();
    d.send("MAIL FROM:<a@b.c>\r\n");
    for i in 0..50 {
        assert!(
            d.send(&format!("RCPT TO:<r{i}@y.z>\r\n"))
                .starts_with("250 2.1.5")
        );
    }
    assert!(d.send("RCPT TO:<r50@y.z>\r\n").starts_with("452 4.5.3"));
    d.send("DATA\r\nx\r\n.\r\n");
    assert_eq!(d.submitted[0].recipients.len(), 50);
}

#[test]
fn streaming_oversize_is_drained_and_refused() {
    let limits = Limits {
        max_message_size: 1000,
        ..Limits::default()
    };
    let mut d = Dialog::with_limits(limits);
    d.send("EHLO c\r\nSTARTTLS\r\n");
    assert!(d.starttls_requested);
    d.session.handle_tls_established(d.now);
    d.send(&format!(
        "EHLO c\r\nAUTH PLAIN {}\r\n",
        STANDARD.encode(b"\0a\0t")
    ));
    d.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
    let mut big = vec![b'x'; 5000];
    big.extend_from_slice(b"\r\n.\nHELP\r\n.\r\nNOOP\r\n");
    let out = d.send_bytes(&big);
    assert_eq!(
        Dialog::codes(&out),
        ["552 5.3.4", "250 2.0.0"],
        "HELP never ran"
    );
    assert!(d.submitted.is_empty());
}

#[test]
fn bare_lf_in_data_is_refused_after_the_real_end() {
    let mut d = Dialog::authenticated();
    d.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
    let out = d.send("a\n.\r\nMAIL FROM:<evil@x.y>\r\n\r\n.\r\n");
    assert_eq!(Dialog::codes(&out), ["550 5.6.0"]);
    assert!(d.submitted.is_empty());
}

#[test]
fn bare_lf_normalized_when_configured() {
    let limits = Limits {
        bare_lf: BareLf::Normalize,
        ..Limits::default()
    };
    let mut d = Dialog::with_limits(limits);
    d.send("EHLO c\r\nSTARTTLS\r\n");
    assert!(d.starttls_requested);
    d.session.handle_tls_established(d.now);
    d.send(&format!(
        "EHLO c\r\nAUTH PLAIN {}\r\n",
        STANDARD.encode(b"\0a\0t")
    ));
    d.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\n");
    assert_eq!(
        d.send("Subject: s\n\nline\n.\r\n"),
        "",
        "`\\n.\\r\\n` does not end it"
    );
    d.send("\r\n.\r\n");
    assert_eq!(d.submitted[0].body, b"Subject: s\r\n\r\nline\r\n\r\n\r\n");
}

#[test]
fn long_command_line_is_refused_and_the_session_goes_on() {
    let mut d = Dialog::new();
    let out = d.send(&format!("EHLO {}\r\nNOOP\r\n", "a".repeat(2000)));
    assert_eq!(Dialog::codes(&out), ["500 5.5.2", "250 2.0.0"]);
    // 510 octets plus CRLF is exactly the limit.
    let out = d.send(&format!("NOOP {}\r\n", "a".repeat(505)));
    assert_eq!(Dialog::codes(&out), ["250 2.0.0"]);
}

#[test]
fn endless_line_closes_at_the_cap_with_bounded_input() {
    let mut d = Dialog::new();
    let mut out = String::new();
    for _ in 0..100 {
        out.push_str(&d.send_bytes(&[b'a'; 16 * 1024]));
        assert!(d.pending.len() <= 512, "the session keeps consuming");
        if d.session.is_closed() {
            break;
        }
    }
    assert!(d.session.is_closed());
    assert!(out.starts_with("500 5.5.2"));
}

#[test]
fn bare_lf_and_nul_in_commands() {
    let mut d = Dialog::new();
    assert!(d.send("NOOP\n").starts_with("500 5.5.2"));
    assert!(d.send("NO\0OP\r\n").starts_with("500 5.5.2"));
    assert!(d.send("NO\rOP\r\n").starts_with("500 5.5.2"));
    assert!(d.send("NOOP\r\n").starts_with("250 2.0.0"));
}

#[test]
fn unknown_and_misc_commands() {
    let mut d = Dialog::new();
    assert!(d.send("FROB\r\n").starts_with("500 5.5.1"));
    assert!(d.send("vrfy someone\r\n").starts_with("252 2.5.0"));
    assert!(d.send("HELP\r\n").starts_with("214 2.0.0"));
    assert!(d.send("RSET\r\n").starts_with("250 2.0.0"));
    assert!(d.send("HELO c\r\n").starts_with("250 mx.test"));
    assert!(d.send("QUIT\r\n").starts_with("221 2.0.0"));
    assert!(d.session.is_closed());
    assert_eq!(d.send("NOOP\r\n"), "", "nothing runs after QUIT");
}

#[test]
fn too_many_errors_close_the_session() {
    let mut d = Dialog::new();
    let out = d.send(&"FROB\r\n".repeat(25));
    let codes = Dialog::codes(&out);
    assert_eq!(codes.len(), 21);
    assert!(codes[..20].iter().all(|c| *c == "500 5.5.1"));
    assert_eq!(codes[20], "421 4.7.0");
    assert!(d.session.is_closed());
}

#[test]
fn http_request_is_refused_and_closed() {
    let mut d = Dialog::new();
    assert!(
        d.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .starts_with("500 5.5.1")
    );
    assert!(d.session.is_closed());
}

#[test]
fn bdat_is_refused_and_its_chunk_never_runs() {
    let mut d = Dialog::authenticated();
    let out = d.send("BDAT 10\r\nQUIT\r\nXYZWNOOP\r\n");
    assert_eq!(Dialog::codes(&out), ["502 5.5.1", "250 2.0.0"]);
    assert!(!d.session.is_closed());
}

#[test]
fn idle_timeout_closes_with_421() {
    let mut d = Dialog::new();
    let deadline = d.session.poll_timeout().expect("idle timer runs");
    assert_eq!(deadline, d.now + Duration::from_secs(300));
    d.session.handle_timeout(d.now + Duration::from_secs(299));
    assert_eq!(d.output(), "");
    d.now += Duration::from_secs(200);
    d.send("NOOP\r\n");
    d.session.handle_timeout(d.now + Duration::from_secs(299));
    assert_eq!(d.output(), "", "activity pushed the deadline");
    d.session.handle_timeout(d.now + Duration::from_secs(300));
    assert!(d.output().starts_with("421 4.4.2"));
    assert!(d.session.is_closed());
}

#[test]
fn partial_lines_wait_for_more_bytes() {
    let mut d = Dialog::new();
    assert_eq!(d.send("NO"), "");
    assert_eq!(d.pending, b"NO");
    assert!(d.send("OP\r\n").starts_with("250 2.0.0"));
}

/// A valid dialog; after its end it starts over at `MAIL`.
const VALID_PATH: &[&[u8]] = &[
    b"EHLO c\r\n",
    b"STARTTLS\r\n",
    b"EHLO c\r\n",
    b"AUTH PLAIN AEFQUAB0b2s=\r\n",
    b"MAIL FROM:<a@b.c>\r\n",
    b"RCPT TO:<x@y.z>\r\n",
    b"DATA\r\n",
    b"Subject: s\r\n\r\n",
    b"body\r\n",
    b"\r\n.\r\n",
];

/// Protocol fragments and line-ending noise.
const FRAGMENTS: &[&[u8]] = &[
    b"EHLO c\r\n",
    b"HELO c\r\n",
    b"STARTTLS\r\n",
    b"AUTH PLAIN AEFQUAB0b2s=\r\n",
    b"AUTH LOGIN\r\n",
    b"QVBQ\r\n",
    b"*\r\n",
    b"MAIL FROM:<a@b.c>\r\n",
    b"MAIL FROM:<a@b.c> SIZE=99999999999\r\n",
    b"RCPT TO:<x@y.z>\r\n",
    b"RCPT TO:<>\r\n",
    b"DATA\r\n",
    b"BDAT 5\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"QUIT\r\n",
    b"VRFY x\r\n",
    b"Subject: s\r\n\r\n",
    b"..dot\r\n",
    b"\r\n.\r\n",
    b"\n.\r\n",
    b".\r\n",
    b"\r",
    b"\n",
    b"\0",
    b".",
    b"GET / HTTP/1.1\r\n",
    b"x",
];

#[test]
fn random_input_never_breaks_the_session() {
    let limits = Limits {
        max_message_size: 4096,
        ..Limits::default()
    };
    let (mut submissions, mut handshakes) = (0, 0);
    for seed in 1..=300u64 {
        let mut rng = Rng::new(seed);
        let mut d = Dialog::with_limits(limits.clone());
        let mut step = 0;
        for _ in 0..200 {
            let mut chunk = Vec::new();
            for _ in 0..=rng.below(8) {
                match rng.below(10) {
                    // Mostly follow a valid dialog, so the deep states are reached...
                    0..=6 => {
                        let fragment = VALID_PATH[step];
                        chunk.extend_from_slice(fragment);
                        step = if step + 1 == VALID_PATH.len() {
                            4
                        } else {
                            step + 1
                        };
                        if fragment == b"STARTTLS\r\n" {
                            // A real client waits for 220 here (pipelining it is refused).
                            break;
                        }
                    }
                    // ...with protocol fragments and raw noise mixed in.
                    7 | 8 => chunk.extend_from_slice(FRAGMENTS[rng.below(FRAGMENTS.len())]),
                    _ => {
                        let len = rng.below(600);
                        chunk.extend((0..len).map(|_| rng.next_u64() as u8));
                    }
                }
            }
            d.pending.extend_from_slice(&chunk);
            let used = d.session.handle_bytes(d.now, &d.pending);
            assert!(used <= d.pending.len());
            d.pending.drain(..used);
            match d.session.poll_event() {
                Some(Event::StartTls) => {
                    handshakes += 1;
                    d.session.handle_tls_established(d.now);
                }
                Some(Event::Submit(s)) => {
                    submissions += 1;
                    assert!(s.body.len() <= 4096, "seed {seed}: body over the limit");
                    assert!(!s.recipients.is_empty() && s.recipients.len() <= 50);
                    d.session.handle_verdict(d.now, &ACCEPTED);
                }
                None => {}
            }
            let output = d.session.transmit().to_vec();
            d.session.transmitted();
            assert!(
                well_formed(&output),
                "seed {seed}: malformed output {:?}",
                String::from_utf8_lossy(&output)
            );
            if d.session.is_closed() {
                assert_eq!(d.session.handle_bytes(d.now, b"NOOP\r\n"), 0);
                break;
            }
            // Unconsumed input is at most one unfinished line.
            assert!(
                d.pending.len() <= 12_288,
                "seed {seed}: {} bytes held",
                d.pending.len()
            );
        }
    }
    // The generator reaches the deep states, not just the greeting.
    assert!(
        handshakes > 100 && submissions > 10,
        "{handshakes} handshakes, {submissions} submissions"
    );
}

#[test]
fn random_lines_never_panic_the_command_parser() {
    let mut rng = Rng::new(0xDEAD_BEEF);
    let words: &[&[u8]] = &[
        b"MAIL",
        b"RCPT",
        b"FROM:",
        b"TO:",
        b"<",
        b">",
        b"@",
        b"\"",
        b"\\",
        b" ",
        b"SIZE=",
        b"=",
        b"AUTH",
        b"PLAIN",
        b"BDAT",
        b"99999999999999999999",
        b"a",
        b".",
        b":",
        b",",
        b"\xc3\xa9",
        b"\xff",
    ];
    for _ in 0..20_000 {
        let mut line = Vec::new();
        for _ in 0..rng.below(12) {
            line.extend_from_slice(words[rng.below(words.len())]);
        }
        if let Ok(command::Command::Rcpt { forward_path }) = command::parse(&line) {
            assert!(forward_path.contains('@') && !forward_path.chars().any(char::is_control));
        }
    }
}

fn relay_mode() -> Mode {
    let credentials = Rc::new(auth::credentials(b"RELAY-APP", b"relay-token").expect("valid"));
    let allow = crate::cidr::AllowList::new(vec!["10.0.0.0/8".parse().expect("cidr")]);
    Mode::Relay { credentials, allow }
}

fn relay_dialog() -> Dialog {
    Dialog::builder().mode(relay_mode()).build()
}

#[test]
fn relay_mode_needs_neither_tls_nor_auth() {
    let mut d = relay_dialog();
    let ehlo = d.send("EHLO app-host\r\n");
    assert!(ehlo.ends_with("250 ENHANCEDSTATUSCODES\r\n"), "{ehlo}");
    assert!(
        !ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    let out =
        d.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<x@y.z>\r\nDATA\r\nSubject: s\r\n\r\nb\r\n.\r\n");
    assert_eq!(Dialog::codes(&out), ["250 2.1.0", "250 2.1.5", "354 End d"]);
    assert_eq!(d.submitted[0].credentials.application, "RELAY-APP");
    assert_eq!(d.submitted[0].credentials.token.expose(), "relay-token");
}

#[test]
fn relay_mode_refuses_starttls_and_auth() {
    let mut d = relay_dialog();
    d.send("EHLO app-host\r\n");
    assert!(d.send("STARTTLS\r\n").starts_with("502 5.5.1"));
    assert!(d.send("AUTH PLAIN AGEAYg==\r\n").starts_with("503 5.5.1"));
    assert!(
        d.send("MAIL FROM:<a@b.c>\r\n").starts_with("250 2.1.0"),
        "still usable"
    );
}

#[test]
fn relay_mode_still_wants_ehlo_first() {
    let mut d = relay_dialog();
    assert!(d.send("MAIL FROM:<a@b.c>\r\n").starts_with("503 5.5.1"));
}

#[test]
fn a_relay_listener_refuses_clients_outside_loopback_and_its_allow_list() {
    let config = Rc::new(SessionConfig::new(
        "mx.test",
        Limits::default(),
        relay_mode(),
    ));
    let now = Instant::now();
    let mut refused = Session::accept(Rc::clone(&config), now, "192.0.2.7".parse().expect("ip"));
    assert_eq!(
        refused.transmit(),
        b"554 5.7.1 Relay access denied, closing connection\r\n",
        "the refusal replaces the greeting"
    );
    assert!(refused.is_closed());
    assert_eq!(
        refused.handle_bytes(now, b"EHLO x\r\n"),
        0,
        "nothing more is read"
    );
    for allowed in ["127.0.0.1", "::1", "10.1.2.3"] {
        let session = Session::accept(Rc::clone(&config), now, allowed.parse().expect("ip"));
        assert_eq!(session.transmit(), b"220 mx.test ESMTP\r\n", "{allowed}");
        assert!(!session.is_closed());
    }
    // Submission listeners serve everyone.
    let submission = Rc::new(SessionConfig::new(
        "mx.test",
        Limits::default(),
        Mode::Submission(AuthPolicy::default()),
    ));
    let session = Session::accept(submission, now, "192.0.2.7".parse().expect("ip"));
    assert!(!session.is_closed());
}

#[test]
fn implicit_tls_offers_auth_at_once_and_no_starttls() {
    let mut d = Dialog::with_mode(
        Limits::default(),
        Mode::SubmissionTls(AuthPolicy::default()),
    );
    let ehlo = d.send("EHLO c\r\n");
    assert!(ehlo.ends_with("250 AUTH PLAIN LOGIN\r\n"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(
        d.send("STARTTLS\r\n")
            .starts_with("503 5.5.1 TLS already active")
    );
    assert!(!d.starttls_requested);
    let plain = STANDARD.encode(b"\0APP-1\0tok");
    assert!(
        d.send(&format!("AUTH PLAIN {plain}\r\n"))
            .starts_with("235 2.7.0")
    );
    let out = d.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<r@b.c>\r\nDATA\r\nx\r\n.\r\n");
    assert_eq!(Dialog::codes(&out), ["250 2.1.0", "250 2.1.5", "354 End d"]);
    assert_eq!(d.submitted[0].credentials.application, "APP-1");
}

#[test]
fn draining_closes_an_idle_session_at_once() {
    let mut d = Dialog::authenticated();
    d.session.shut_down();
    assert_eq!(d.output(), "421 4.3.2 Service shutting down\r\n");
    assert!(d.session.is_closed());
    assert_eq!(d.session.poll_timeout(), None);
}

#[test]
fn draining_lets_a_transaction_finish_then_refuses_the_next_command() {
    let mut d = Dialog::authenticated();
    let out = d.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<r@b.c>\r\nDATA\r\nSubject: s\r\n");
    assert_eq!(Dialog::codes(&out), ["250 2.1.0", "250 2.1.5", "354 End d"]);
    d.session.shut_down();
    assert_eq!(d.output(), "", "nothing is cut in the middle of DATA");
    assert!(!d.session.is_closed());
    d.send("\r\nbody\r\n.\r\n");
    assert_eq!(d.submitted.len(), 1, "the message goes upstream");
    assert_eq!(
        d.verdict(&ACCEPTED),
        "250 2.0.0 OK id-1\r\n",
        "its real verdict"
    );
    assert!(!d.session.is_closed());
    assert_eq!(
        d.send("MAIL FROM:<a@b.c>\r\n"),
        "421 4.3.2 Service shutting down\r\n"
    );
    assert!(d.session.is_closed());
}

#[test]
fn draining_mid_envelope_still_takes_the_message() {
    let mut d = Dialog::authenticated();
    d.send("MAIL FROM:<a@b.c>\r\n");
    d.session.shut_down();
    let out = d.send("RCPT TO:<r@b.c>\r\nDATA\r\nx\r\n.\r\n");
    assert_eq!(Dialog::codes(&out), ["250 2.1.5", "354 End d"]);
    assert_eq!(d.submitted.len(), 1);
    d.verdict(&ACCEPTED);
    assert_eq!(
        d.send("QUIT\r\n"),
        "221 2.0.0 Bye\r\n",
        "QUIT is still answered"
    );
}

#[test]
fn the_drain_deadline_ends_any_session() {
    let mut d = Dialog::authenticated();
    d.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<r@b.c>\r\nDATA\r\nx\r\n.\r\n");
    assert_eq!(d.submitted.len(), 1, "waiting for the upstream");
    d.session.shut_down();
    assert_eq!(d.output(), "");
    d.session.shut_down_now();
    assert_eq!(d.output(), "421 4.3.2 Service shutting down\r\n");
    assert!(d.session.is_closed());
    assert_eq!(d.session.poll_event().map(|_| ()), None);
}

#[test]
fn the_message_cap_sends_the_client_elsewhere_at_the_next_mail() {
    let limits = Limits {
        max_messages_per_connection: 2,
        ..Limits::default()
    };
    let mut d = Dialog::tls_from(Dialog::with_limits(limits));
    d.send("EHLO c\r\n");
    let plain = STANDARD.encode(b"\0APP-1\0tok");
    d.send(&format!("AUTH PLAIN {plain}\r\n"));
    for i in 0..2 {
        d.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<r@b.c>\r\nDATA\r\nx\r\n.\r\n");
        assert_eq!(d.submitted.len(), i + 1);
        d.verdict(&ACCEPTED);
    }
    assert_eq!(
        d.send("NOOP\r\n"),
        "250 2.0.0 OK\r\n",
        "only MAIL is refused"
    );
    assert_eq!(
        d.send("MAIL FROM:<a@b.c>\r\n"),
        "421 4.7.0 Message limit for this connection reached, reconnect to send more\r\n"
    );
    assert!(d.session.is_closed());
}

#[test]
fn notices_tell_the_driver_what_to_count() {
    let limits = Limits {
        max_recipients: 1,
        ..Limits::default()
    };
    let mut d = Dialog::tls_from(Dialog::with_limits(limits));
    d.send("EHLO c\r\n");
    assert!(d.send("AUTH PLAIN !!!\r\n").starts_with("501"));
    let plain = STANDARD.encode(b"\0APP-1\0tok");
    d.send(&format!("AUTH PLAIN {plain}\r\n"));
    d.send("MAIL FROM:<a@b.c> SIZE=999999999999\r\n");
    d.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<r@b.c>\r\nRCPT TO:<s@b.c>\r\nDATA\r\nx\r\n.\r\n");
    d.verdict(&ACCEPTED);
    assert_eq!(
        d.session.take_notices(),
        [
            Notice::AuthFailed,
            Notice::Refused(552),
            Notice::Refused(452),
            Notice::Replied(250)
        ]
    );
    assert!(d.session.take_notices().is_empty(), "taken once");
}

#[test]
fn a_session_that_refuses_its_client_says_why() {
    let limits = |f: fn(&mut Limits)| {
        let mut limits = Limits::default();
        f(&mut limits);
        limits
    };
    let mut d = Dialog::builder()
        .limits(limits(|l| l.greet_pause = Duration::from_secs(3)))
        .build_without_greeting_check();
    d.send("EHLO spam\r\n");
    assert_eq!(
        d.session.take_notices(),
        [Notice::Ended(Ending::TalkedFirst)]
    );

    let mut d = Dialog::builder()
        .limits(limits(|l| l.max_auth_failures = 1))
        .tls()
        .build();
    d.send("EHLO c\r\n");
    assert!(d.send("AUTH PLAIN !!!\r\n").contains("421 4.7.0"));
    assert_eq!(
        d.session.take_notices(),
        [Notice::AuthFailed, Notice::Ended(Ending::AuthFailures)]
    );

    // The upstream refusing the token is a failed authentication too.
    let mut d = Dialog::builder()
        .limits(limits(|l| l.max_auth_failures = 1))
        .authenticated()
        .build();
    d.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<r@b.c>\r\nDATA\r\nx\r\n.\r\n");
    d.verdict(&reply::AUTH_INVALID);
    assert_eq!(
        d.session.take_notices(),
        [
            Notice::Replied(535),
            Notice::AuthFailed,
            Notice::Ended(Ending::AuthFailures)
        ]
    );

    let mut d = Dialog::builder().build();
    d.session.handle_timeout(d.now + Duration::from_secs(300));
    assert_eq!(d.session.take_notices(), [Notice::Ended(Ending::Timeout)]);

    let mut d = Dialog::builder()
        .limits(limits(|l| l.max_errors = 2))
        .build();
    d.send("FOO\r\nBAR\r\n");
    assert_eq!(d.session.take_notices(), [Notice::Ended(Ending::Errors)]);

    for smuggled in ["GET / HTTP/1.1\r\n", "EHLO c\r\nSTARTTLS\r\nNOOP\r\n"] {
        let mut d = Dialog::builder().build();
        d.send(smuggled);
        assert_eq!(
            d.session.take_notices(),
            [Notice::Ended(Ending::Protocol)],
            "{smuggled:?}"
        );
    }

    // A UTF-8 address without SMTPUTF8: the message refused, counted.
    let mut d = Dialog::builder().authenticated().build();
    assert!(
        d.send("MAIL FROM:<jörg@example.com>\r\n")
            .starts_with("553 5.6.7")
    );
    assert_eq!(d.session.take_notices(), [Notice::Refused(553)]);

    // Leaving is no refusal.
    let mut d = Dialog::builder().build();
    assert!(d.send("QUIT\r\n").starts_with("221"));
    assert!(d.session.is_closed());
    assert_eq!(d.session.take_notices(), []);
}

#[test]
fn adversarial_greet_pause_refuses_a_client_that_talks_first() {
    let limits = Limits {
        greet_pause: Duration::from_secs(3),
        ..Limits::default()
    };
    let config = Rc::new(SessionConfig::new(
        "mx.test",
        limits,
        Mode::Submission(AuthPolicy::default()),
    ));
    let start = Instant::now();
    // Patient: the greeting comes at the end of the pause.
    let mut patient = Session::new(Rc::clone(&config), start);
    assert_eq!(patient.transmit(), b"");
    assert_eq!(patient.poll_timeout(), Some(start + Duration::from_secs(3)));
    patient.handle_timeout(start + Duration::from_secs(1));
    assert_eq!(patient.transmit(), b"", "not before the pause ends");
    patient.handle_timeout(start + Duration::from_secs(3));
    assert_eq!(patient.transmit(), b"220 mx.test ESMTP\r\n");
    patient.transmitted();
    assert_eq!(patient.handle_bytes(start, b"NOOP\r\n"), 6);
    assert!(patient.transmit().starts_with(b"250 "));
    // Impatient: whatever it sent is refused unread, and the session ends.
    let mut eager = Session::new(config, start);
    eager.handle_bytes(start, b"EHLO spam\r\nMAIL FROM:<a@b.c>\r\n");
    assert_eq!(
        eager.transmit(),
        b"554 5.5.0 Protocol error: client talked before the greeting, closing connection\r\n"
    );
    assert!(eager.is_closed());
}

#[test]
fn adversarial_auth_failures_end_the_session_after_the_limit() {
    let mut d = Dialog::tls();
    d.send("EHLO c\r\n");
    let bad = STANDARD.encode(b"\0APP\0");
    assert!(d.send(&format!("AUTH PLAIN {bad}\r\n")).starts_with("535"));
    assert!(d.send("AUTH PLAIN !!!\r\n").starts_with("501"));
    let out = d.send(&format!("AUTH PLAIN {bad}\r\n"));
    assert_eq!(
        Dialog::codes(&out),
        ["535 5.7.8", "421 4.7.0"],
        "the third failure gets its reply, then the end"
    );
    assert!(d.session.is_closed());
}

#[test]
fn adversarial_tokens_refused_upstream_count_as_auth_failures() {
    let limits = Limits {
        max_auth_failures: 2,
        ..Limits::default()
    };
    let mut d = Dialog::builder().limits(limits).authenticated().build();
    let refused = Reply::new(535, "5.7.8", "Bad application code or API token");
    for round in 1..=2 {
        d.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<r@b.c>\r\nDATA\r\nx\r\n.\r\n");
        let out = d.verdict(&refused);
        if round == 1 {
            assert_eq!(Dialog::codes(&out), ["535 5.7.8"]);
            assert!(!d.session.is_closed());
        } else {
            assert_eq!(Dialog::codes(&out), ["535 5.7.8", "421 4.7.0"]);
            assert!(d.session.is_closed());
        }
    }
}

#[test]
fn adversarial_slow_drip_a_line_dribbled_does_not_restart_the_clock() {
    let limits = Limits {
        command_timeout: Duration::from_secs(10),
        ..Limits::default()
    };
    let mut d = Dialog::with_limits(limits);
    let start = d.now;
    for (i, byte) in b"NOOP".iter().enumerate() {
        d.now = start + Duration::from_secs(3 * i as u64);
        d.send_bytes(&[*byte]);
    }
    assert_eq!(
        d.session.poll_timeout(),
        Some(start + Duration::from_secs(10))
    );
    d.session.handle_timeout(start + Duration::from_secs(10));
    assert_eq!(d.output(), "421 4.4.2 Idle timeout, closing connection\r\n");
    // A whole line does restart it.
    let mut d = Dialog::with_limits(Limits {
        command_timeout: Duration::from_secs(10),
        ..Limits::default()
    });
    d.now += Duration::from_secs(9);
    d.send("NOOP\r\n");
    assert_eq!(
        d.session.poll_timeout(),
        Some(d.now + Duration::from_secs(10))
    );
}

#[test]
fn adversarial_slow_drip_in_data_gets_a_second_per_min_data_rate_bytes() {
    let limits = Limits {
        command_timeout: Duration::from_secs(10),
        min_data_rate: 100,
        ..Limits::default()
    };
    let mut d = Dialog::builder().limits(limits).authenticated().build();
    d.send("MAIL FROM:<a@b.c>\r\nRCPT TO:<r@b.c>\r\nDATA\r\n");
    let started = d.now;
    d.send_bytes(&[b'x'; 250]);
    assert_eq!(
        d.session.poll_timeout(),
        Some(started + Duration::from_secs(12)),
        "10 s plus 2 s for 250 bytes at 100 bytes/s"
    );
    d.session.handle_timeout(started + Duration::from_secs(12));
    assert_eq!(d.output(), "421 4.4.2 Idle timeout, closing connection\r\n");
    assert!(d.submitted.is_empty());
}

#[test]
fn adversarial_row_34_non_ascii_addresses_need_smtputf8() {
    let mut d = Dialog::authenticated();
    assert_eq!(
        d.send("MAIL FROM:<jörg@example.com>\r\n"),
        "553 5.6.7 Non-ASCII address without the SMTPUTF8 parameter\r\n"
    );
    assert!(d.send("MAIL FROM:<a@example.com>\r\n").starts_with("250"));
    assert!(
        d.send("RCPT TO:<ünïcode@example.com>\r\n")
            .starts_with("553 5.6.7")
    );
    d.send("RSET\r\n");
    let out = d.send(
        "MAIL FROM:<jörg@bücher.example> SMTPUTF8\r\nRCPT TO:<用户@例子.example>\r\nDATA\r\n\
         Subject: grüße\r\n\r\nx\r\n.\r\n",
    );
    assert_eq!(Dialog::codes(&out), ["250 2.1.0", "250 2.1.5", "354 End d"]);
    assert_eq!(d.submitted[0].mail_from, "jörg@bücher.example");
    assert_eq!(d.submitted[0].recipients, ["用户@例子.example"]);
}
