//! The gRPC frame of one Notify call of a mapped message (`notify::Outgoing`): prost
//! encodes the shared fields and the payload, the call's own fields (recipients,
//! placeholders, idempotency key) are written from its `Delivery`, and the body goes
//! once, straight from where it lies (the received message, or the transfer-decoded
//! text), into the frame. Lengths are computed up front, so the frame is one allocation
//! of exactly the right size, and nothing of the message is cloned per call.
//!
//! Protobuf parsers accept fields in any order: the delivery's fields follow the shared
//! ones, the body goes last inside `email_payload`, and `email_payload` last inside
//! `transactional`.

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use prost::encoding::{
    WireType, btree_map, encode_key, encode_varint, encoded_len_varint, key_len, string,
};

use crate::notify::{Delivery, Outgoing};

/// Field numbers from `proto/notify.proto`.
const REQUEST_TRANSACTIONAL: u32 = 2;
const TRANSACTIONAL_USERS: u32 = 3;
const TRANSACTIONAL_EMAIL_PAYLOAD: u32 = 7;
const TRANSACTIONAL_PLACEHOLDERS: u32 = 10;
const TRANSACTIONAL_TRANSACTION_ID: u32 = 12;
const LIST_LIST: u32 = 1;
const EMAIL_PAYLOAD_BODY: u32 = 2;

fn delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn put_delimited_header(buf: &mut BytesMut, tag: u32, len: usize) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

/// Encoded length of the delivery's fields inside `NotifyTransactional`.
fn delivery_len(delivery: &Delivery) -> usize {
    let users = string::encoded_len_repeated(LIST_LIST, &delivery.recipients);
    delimited_len(TRANSACTIONAL_USERS, users)
        + btree_map::encoded_len(
            string::encoded_len,
            string::encoded_len,
            TRANSACTIONAL_PLACEHOLDERS,
            &delivery.placeholders,
        )
        + if delivery.transaction_id.is_empty() {
            0
        } else {
            string::encoded_len(TRANSACTIONAL_TRANSACTION_ID, &delivery.transaction_id)
        }
}

fn put_delivery(buf: &mut BytesMut, delivery: &Delivery) {
    let users = string::encoded_len_repeated(LIST_LIST, &delivery.recipients);
    put_delimited_header(buf, TRANSACTIONAL_USERS, users);
    string::encode_repeated(LIST_LIST, &delivery.recipients, buf);
    btree_map::encode(
        string::encode,
        string::encoded_len,
        string::encode,
        string::encoded_len,
        TRANSACTIONAL_PLACEHOLDERS,
        &delivery.placeholders,
        buf,
    );
    if !delivery.transaction_id.is_empty() {
        string::encode(TRANSACTIONAL_TRANSACTION_ID, &delivery.transaction_id, buf);
    }
}

/// One call's request, as one gRPC frame. `message.shared` carries no target,
/// placeholders of this call or transaction id of its own: the delivery supplies them.
pub fn encode(message: &Outgoing<'_>, delivery: &Delivery) -> Bytes {
    let body = &*message.body;
    debug_assert!(message.payload.body.is_empty(), "the body travels apart");
    debug_assert!(message.shared.email_payload.is_none() && message.shared.target.is_none());
    let body_len = if body.is_empty() {
        0
    } else {
        delimited_len(EMAIL_PAYLOAD_BODY, body.len())
    };
    let payload_len = message.payload.encoded_len() + body_len;
    let transactional_len = message.shared.encoded_len()
        + delivery_len(delivery)
        + delimited_len(TRANSACTIONAL_EMAIL_PAYLOAD, payload_len);
    let request_len = delimited_len(REQUEST_TRANSACTIONAL, transactional_len);

    let mut buf = BytesMut::with_capacity(5 + request_len);
    buf.put_u8(0);
    buf.put_u32(request_len as u32);
    put_delimited_header(&mut buf, REQUEST_TRANSACTIONAL, transactional_len);
    message.shared.encode_raw(&mut buf);
    put_delivery(&mut buf, delivery);
    put_delimited_header(&mut buf, TRANSACTIONAL_EMAIL_PAYLOAD, payload_len);
    message.payload.encode_raw(&mut buf);
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
    use crate::notify::{Address, Attachment, EmailPayload, NotifyRequest, NotifyTransactional};
    use crate::upstream::grpc;
    use std::borrow::Cow;

    fn message(body: &str, shared_placeholders: &[(&str, &str)]) -> Outgoing<'static> {
        let mut shared = NotifyTransactional {
            application: "APP".into(),
            platforms: vec![14],
            message_type: 1,
            campaign: "spring".into(),
            ..Default::default()
        };
        for (k, v) in shared_placeholders {
            shared
                .dynamic_content_placeholders
                .insert((*k).into(), (*v).into());
        }
        Outgoing {
            shared,
            payload: EmailPayload {
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
            },
            body: Cow::Owned(body.to_owned()),
            deliveries: vec![
                Delivery {
                    recipients: vec!["a@example.com".into(), "b@example.com".into()],
                    transaction_id: "abc".into(),
                    ..Default::default()
                },
                Delivery {
                    recipients: vec!["c@example.com".into()],
                    placeholders: [("%name%".to_owned(), "Cé".to_owned())].into(),
                    transaction_id: "def".into(),
                    positions: vec![2],
                },
                Delivery::default(),
            ],
            email_ids: false,
        }
    }

    #[test]
    fn each_frame_decodes_to_that_calls_whole_request() {
        for body in ["", "short", &"x".repeat(200), &"long body ".repeat(100_000)] {
            for shared in [&[][..], &[("%shop%", "Acme")][..]] {
                let m = message(body, shared);
                for delivery in &m.deliveries {
                    let frame = encode(&m, delivery);
                    let decoded: NotifyRequest = grpc::decode(&frame, usize::MAX).expect("decodes");
                    assert_eq!(decoded, m.request(delivery), "body of {} bytes", body.len());
                }
            }
        }
    }
}
