//! The gRPC frame of a Notify request whose body is held apart: prost encodes every
//! other field, and the body is written once, straight from where it lies (the received
//! message, or the transfer-decoded text), into the frame. Lengths are computed up
//! front, so the frame is one allocation of exactly the right size.
//!
//! The body field goes last inside `email_payload`, and `email_payload` last inside
//! `transactional`: protobuf parsers accept fields in any order.

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use super::{NotifyRequest, notify_request};
use crate::upstream::grpc;

/// Field numbers from `proto/notify.proto`.
const REQUEST_TRANSACTIONAL: u32 = 2;
const TRANSACTIONAL_EMAIL_PAYLOAD: u32 = 7;
const EMAIL_PAYLOAD_BODY: u32 = 2;

fn delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn put_delimited_header(buf: &mut BytesMut, tag: u32, len: usize) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

/// Encodes `request` (whose `email_payload.body` is empty) with `body` in place, as one
/// gRPC frame.
pub fn encode(request: NotifyRequest, body: &str) -> Bytes {
    let Some(notify_request::Kind::Transactional(mut transactional)) = request.kind else {
        return grpc::encode(&request);
    };
    let payload = transactional.email_payload.take().unwrap_or_default();
    debug_assert!(payload.body.is_empty(), "the body travels apart");
    let body_len = if body.is_empty() {
        0
    } else {
        delimited_len(EMAIL_PAYLOAD_BODY, body.len())
    };
    let payload_len = payload.encoded_len() + body_len;
    let transactional_len =
        transactional.encoded_len() + delimited_len(TRANSACTIONAL_EMAIL_PAYLOAD, payload_len);
    let request_len = delimited_len(REQUEST_TRANSACTIONAL, transactional_len);

    let mut buf = BytesMut::with_capacity(5 + request_len);
    buf.put_u8(0);
    buf.put_u32(request_len as u32);
    put_delimited_header(&mut buf, REQUEST_TRANSACTIONAL, transactional_len);
    transactional.encode_raw(&mut buf);
    put_delimited_header(&mut buf, TRANSACTIONAL_EMAIL_PAYLOAD, payload_len);
    payload.encode_raw(&mut buf);
    if !body.is_empty() {
        put_delimited_header(&mut buf, EMAIL_PAYLOAD_BODY, body.len());
        buf.put_slice(body.as_bytes());
    }
    debug_assert_eq!(buf.len(), 5 + request_len);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{
        Address, Attachment, EmailPayload, List, NotifyTransactional, notify_transactional,
    };

    fn request(payload: Option<EmailPayload>) -> NotifyRequest {
        NotifyRequest {
            kind: Some(notify_request::Kind::Transactional(NotifyTransactional {
                application: "APP".into(),
                platforms: vec![14],
                target: Some(notify_transactional::Target::Users(List {
                    list: vec!["a@example.com".into()],
                })),
                email_payload: payload,
                message_type: 1,
                transaction_id: "abc".into(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn the_spliced_frame_decodes_to_the_whole_request() {
        let payload = EmailPayload {
            subject: [("default".to_owned(), "hi".to_owned())].into(),
            attachments: vec![Attachment {
                name: "a.bin".into(),
                content: Bytes::from_static(b"\x00\x01"),
            }],
            from: Some(Address {
                name: "N".into(),
                email: "n@example.com".into(),
            }),
            ..Default::default()
        };
        for body in ["", "short", &"x".repeat(200), &"long body ".repeat(100_000)] {
            let frame = encode(request(Some(payload.clone())), body);
            let decoded: NotifyRequest = grpc::decode(&frame, usize::MAX).expect("decodes");
            let mut expected = request(Some(payload.clone()));
            if let Some(notify_request::Kind::Transactional(t)) = &mut expected.kind {
                t.email_payload.as_mut().expect("payload").body = body.to_owned();
            }
            assert_eq!(decoded, expected, "body of {} bytes", body.len());
        }
    }

    #[test]
    fn a_request_without_payload_still_carries_the_body() {
        let frame = encode(request(None), "text");
        let decoded: NotifyRequest = grpc::decode(&frame, usize::MAX).expect("decodes");
        let Some(notify_request::Kind::Transactional(t)) = decoded.kind else {
            panic!("kind")
        };
        assert_eq!(t.email_payload.expect("payload").body, "text");
    }
}
