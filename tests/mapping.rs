//! Every row of the MIME → Notify mapping table (notify-api.md), one test each, through
//! a real gateway to a real gRPC upstream.

mod common;

use common::*;
use smtpgate::notify::{MessageType, Platform, notify_transactional::Target};

#[test]
fn auth_username_becomes_application() {
    let (upstream, gateway) = accepting_gateway();
    let mut smtp = gateway.login_as("XXXXX-XXXXX", "secret-token");
    assert_code(
        &send(&mut smtp, &["a@example.com"], &simple_message("s", "b")),
        "250 2.0.0",
    );
    assert_eq!(
        transactional(&upstream.only_call().request).application,
        "XXXXX-XXXXX"
    );
}

#[test]
fn auth_password_becomes_authorization_metadata_and_nothing_else() {
    let (upstream, gateway) = accepting_gateway();
    let mut smtp = gateway.login_as("APP", "s3cret-T0ken");
    assert_code(
        &send(&mut smtp, &["a@example.com"], &simple_message("s", "b")),
        "250 2.0.0",
    );
    let call = upstream.only_call();
    assert_eq!(call.authorization.as_deref(), Some("Token s3cret-T0ken"));
    assert_eq!(call.content_type.as_deref(), Some("application/grpc"));
    let encoded = prost::Message::encode_to_vec(&call.request);
    let needle = b"s3cret-T0ken";
    assert!(
        !encoded.windows(needle.len()).any(|w| w == needle),
        "token leaked into the request"
    );
}

#[test]
fn rcpt_to_becomes_users_list_in_order_deduplicated() {
    let request = forward_one(
        &[
            "first@example.com",
            "second@example.com",
            "FIRST@example.com",
            "third@example.com",
        ],
        &simple_message("s", "b"),
    );
    match &transactional(&request).target {
        Some(Target::Users(list)) => {
            assert_eq!(
                list.list,
                [
                    "first@example.com",
                    "second@example.com",
                    "third@example.com"
                ]
            );
        }
        other => panic!("target is not users: {other:?}"),
    }
}

#[test]
fn subject_is_rfc2047_decoded() {
    let message = "From: a@example.com\r\nSubject: =?UTF-8?B?0J/RgNC40LLQtdGC?= =?ISO-8859-1?Q?_caf=E9?=\r\n\r\nb\r\n";
    let request = forward_one(&["r@example.com"], message);
    assert_eq!(
        payload(&request).subject.get("default").map(String::as_str),
        Some("Привет café")
    );
}

#[test]
fn from_header_gives_name_and_email() {
    let message =
        "From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.com>\r\nSubject: s\r\n\r\nb\r\n";
    let request = forward_one(&["r@example.com"], message);
    let from = payload(&request).from.as_ref().expect("from is set");
    assert_eq!(
        (from.name.as_str(), from.email.as_str()),
        ("Jörg Müller", "joerg@example.com")
    );
}

#[test]
fn html_part_is_preferred_over_text() {
    let message = "From: a@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
        --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain version\r\n\
        --alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html version</p>\r\n\
        --alt--\r\n";
    let request = forward_one(&["r@example.com"], message);
    assert_eq!(payload(&request).body.trim_end(), "<p>html version</p>");
}

#[test]
fn plain_text_part_is_used_without_html() {
    let message = "From: a@example.com\r\nSubject: s\r\nContent-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\r\nna=C3=AFve text\r\n";
    let request = forward_one(&["r@example.com"], message);
    assert_eq!(payload(&request).body.trim_end(), "naïve text");
}

#[test]
fn reply_to_is_mapped() {
    let message =
        "From: a@example.com\r\nReply-To: Support <help@example.com>\r\nSubject: s\r\n\r\nb\r\n";
    let request = forward_one(&["r@example.com"], message);
    let reply_to = payload(&request)
        .reply_to
        .as_ref()
        .expect("reply_to is set");
    assert_eq!(
        (reply_to.name.as_str(), reply_to.email.as_str()),
        ("Support", "help@example.com")
    );
}

#[test]
fn attachments_are_decoded() {
    let message = "From: a@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n\
        --mix\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
        --mix\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n\
        Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfs\r\n\
        --mix\r\nContent-Type: text/csv\r\nContent-Disposition: attachment\r\n\r\na,b\r\n1,2\r\n\
        --mix--\r\n";
    let request = forward_one(&["r@example.com"], message);
    let attachments = &payload(&request).attachments;
    assert_eq!(attachments.len(), 2);
    assert_eq!(attachments[0].name, "report.pdf");
    assert_eq!(&attachments[0].content[..], b"%PDF-1.4\n%\xc7\xec");
    assert_eq!(attachments[1].name, "attachment-2.txt");
    assert_eq!(&attachments[1].content[..], b"a,b\r\n1,2");
    assert_eq!(payload(&request).body.trim_end(), "see attached");
}

#[test]
fn list_unsubscribe_url_is_mapped() {
    let message = "From: a@example.com\r\nSubject: s\r\n\
        List-Unsubscribe: <mailto:unsub@example.com>,\r\n <https://example.com/unsub?u=42>\r\n\r\nb\r\n";
    let request = forward_one(&["r@example.com"], message);
    assert_eq!(
        payload(&request).list_unsubscribe,
        "https://example.com/unsub?u=42"
    );
}

#[test]
fn mail_from_is_ignored() {
    let request = forward_one(&["r@example.com"], &simple_message("s", "b"));
    let encoded = prost::Message::encode_to_vec(&request);
    let needle = b"envelope@example.com";
    assert!(
        !encoded.windows(needle.len()).any(|w| w == needle),
        "MAIL FROM reached the request"
    );
    assert_eq!(
        payload(&request).from.as_ref().map(|f| f.email.as_str()),
        Some("sender@example.com")
    );
}

#[test]
fn fixed_fields_platform_type_schedule() {
    let request = forward_one(&["r@example.com"], &simple_message("s", "b"));
    let t = transactional(&request);
    assert_eq!(t.platforms, [Platform::Email as i32]);
    assert_eq!(t.message_type, MessageType::Transactional as i32);
    assert_eq!(
        t.schedule.as_ref().map(|s| s.send_date.as_str()),
        Some("now")
    );
}

#[test]
fn transaction_id_is_stable_across_a_retry() {
    let upstream = TestUpstream::start(Behavior::Fail(tonic::Code::Unavailable, "busy".into()));
    let gateway = Gateway::start(&upstream.url());
    let mut smtp = gateway.login();
    let message = simple_message("retry me", "same bytes");
    assert_code(&send(&mut smtp, &["r@example.com"], &message), "451 4.4.1");
    upstream.set_behavior(Behavior::Accept);
    assert_code(
        &send(&mut smtp, &["r@example.com"], &message),
        "250 2.0.0 Ok: queued as MSG-2",
    );
    let calls = upstream.calls();
    let ids: Vec<_> = calls
        .iter()
        .map(|c| transactional(&c.request).transaction_id.clone())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[0].len(), 32);
    // A different recipient set is a different delivery.
    assert_code(
        &send(&mut smtp, &["other@example.com"], &message),
        "250 2.0.0",
    );
    assert_ne!(
        transactional(&upstream.calls()[2].request).transaction_id,
        ids[0]
    );
}

#[test]
fn deadline_is_sent_as_grpc_timeout() {
    let upstream = TestUpstream::start(Behavior::Accept);
    let gateway = Gateway::start_with(&upstream.url(), &["--upstream-timeout", "7s"]);
    let mut smtp = gateway.login();
    assert_code(
        &send(&mut smtp, &["r@example.com"], &simple_message("s", "b")),
        "250 2.0.0",
    );
    assert_eq!(upstream.only_call().grpc_timeout.as_deref(), Some("7000m"));
}
