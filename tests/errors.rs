//! Every row of the gRPC status → SMTP reply table, one test each: the upstream (real
//! tonic, whose errors arrive Trailers-Only) refuses, the client gets the exact reply
//! with the upstream's percent-decoded grpc-message, and never a 250.

mod common;

use common::*;
use tonic::Code;

/// Sends one message to an upstream that fails with `code` and returns the reply.
fn reply_for(code: Code, message: &str) -> String {
    let upstream = TestUpstream::start(Behavior::Fail(code, message.to_owned()));
    let gateway = Gateway::start(&upstream.url());
    let mut smtp = gateway.login();
    let reply = send(&mut smtp, &["r@example.com"], &simple_message("s", "b"));
    assert_eq!(
        upstream.calls().len(),
        1,
        "the message reached the upstream once"
    );
    // The session goes on after a refusal.
    assert_code(&smtp.cmd("NOOP"), "250 2.0.0");
    reply
}

#[test]
fn unauthenticated_is_535_5_7_8() {
    let reply = reply_for(Code::Unauthenticated, "bad token");
    assert_eq!(
        reply,
        "535 5.7.8 Bad application code or API token: bad token\r\n"
    );
}

#[test]
fn permission_denied_is_550_5_7_1() {
    assert_code(&reply_for(Code::PermissionDenied, "no rights"), "550 5.7.1");
}

#[test]
fn invalid_argument_is_550_5_6_0() {
    let reply = reply_for(Code::InvalidArgument, "missing subject");
    assert_eq!(reply, "550 5.6.0 Bad MIME content: missing subject\r\n");
}

#[test]
fn failed_precondition_is_550_5_6_0() {
    assert_code(&reply_for(Code::FailedPrecondition, ""), "550 5.6.0");
}

#[test]
fn out_of_range_is_550_5_6_0() {
    assert_code(&reply_for(Code::OutOfRange, ""), "550 5.6.0");
}

#[test]
fn not_found_is_550_5_1_1() {
    assert_code(
        &reply_for(Code::NotFound, "no such application"),
        "550 5.1.1",
    );
}

#[test]
fn resource_exhausted_is_452_4_5_3() {
    assert_code(
        &reply_for(Code::ResourceExhausted, "slow down"),
        "452 4.5.3",
    );
}

#[test]
fn deadline_exceeded_is_451_4_4_1() {
    assert_code(&reply_for(Code::DeadlineExceeded, ""), "451 4.4.1");
}

#[test]
fn unavailable_is_451_4_4_1() {
    assert_code(&reply_for(Code::Unavailable, "maintenance"), "451 4.4.1");
}

#[test]
fn anything_else_is_451_4_5_0() {
    for code in [
        Code::Internal,
        Code::Unknown,
        Code::Aborted,
        Code::Unimplemented,
        Code::DataLoss,
    ] {
        assert_code(&reply_for(code, "x"), "451 4.5.0");
    }
}

#[test]
fn grpc_message_is_percent_decoded_and_sanitised() {
    // tonic percent-encodes non-ASCII and control characters in grpc-message.
    let reply = reply_for(Code::InvalidArgument, "50% naïve\r\n250 OK fake");
    assert_eq!(
        reply,
        "550 5.6.0 Bad MIME content: 50% na?ve  250 OK fake\r\n"
    );
    assert_eq!(
        reply.matches("\r\n").count(),
        1,
        "one reply line, no injection"
    );
}
