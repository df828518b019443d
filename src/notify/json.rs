//! Renders a `NotifyRequest` as JSON in the form the upstream's public docs show
//! (gRPC-Gateway style: snake_case names, a oneof as one nested key, enums by name,
//! bytes as base64, default values omitted). Used by the `--dev` sink's output and by
//! the golden tests; never on the forwarding path.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::{
    Address, EmailPayload, MessageType, NotifyRequest, NotifyTransactional, Platform,
    notify_request, notify_transactional,
};

pub fn request(request: &NotifyRequest) -> Value {
    let mut out = Map::new();
    match &request.kind {
        Some(notify_request::Kind::Transactional(t)) => {
            out.insert("transactional".into(), transactional(t));
        }
        Some(notify_request::Kind::Segment(_)) => {
            out.insert("segment".into(), json!({}));
        }
        None => {}
    }
    Value::Object(out)
}

fn transactional(t: &NotifyTransactional) -> Value {
    let mut out = Map::new();
    put_str(&mut out, "application", &t.application);
    if !t.platforms.is_empty() {
        let names = t
            .platforms
            .iter()
            .map(|&p| enum_name(Platform::try_from(p).map(|p| p.as_str_name()), p));
        out.insert("platforms".into(), Value::Array(names.collect()));
    }
    if let Some(target) = &t.target {
        let (key, list) = match target {
            notify_transactional::Target::Users(l) => ("users", l),
            notify_transactional::Target::Hwids(l) => ("hwids", l),
            notify_transactional::Target::PushTokens(l) => ("push_tokens", l),
        };
        out.insert(key.into(), json!({ "list": list.list }));
    }
    if let Some(schedule) = &t.schedule {
        let mut s = Map::new();
        put_str(&mut s, "send_date", &schedule.send_date);
        if let Some(at) = &schedule.at {
            s.insert("at".into(), Value::String(at.to_string()));
        }
        out.insert("schedule".into(), Value::Object(s));
    }
    if let Some(payload) = &t.email_payload {
        out.insert("email_payload".into(), email_payload(payload));
    }
    put_str(&mut out, "campaign", &t.campaign);
    if t.message_type != 0 {
        let name = MessageType::try_from(t.message_type).map(|m| m.as_str_name());
        out.insert("message_type".into(), enum_name(name, t.message_type));
    }
    if !t.dynamic_content_placeholders.is_empty() {
        out.insert(
            "dynamic_content_placeholders".into(),
            json!(t.dynamic_content_placeholders),
        );
    }
    if let Some(meta) = &t.meta_data {
        out.insert("meta_data".into(), structure(meta));
    }
    put_str(&mut out, "transaction_id", &t.transaction_id);
    Value::Object(out)
}

fn email_payload(p: &EmailPayload) -> Value {
    let mut out = Map::new();
    if !p.subject.is_empty() {
        out.insert("subject".into(), json!(p.subject));
    }
    put_str(&mut out, "body", &p.body);
    if !p.attachments.is_empty() {
        let list = p
            .attachments
            .iter()
            .map(|a| json!({ "name": a.name, "content": STANDARD.encode(&a.content) }));
        out.insert("attachments".into(), Value::Array(list.collect()));
    }
    put_str(&mut out, "list_unsubscribe", &p.list_unsubscribe);
    if let Some(from) = &p.from {
        out.insert("from".into(), address(from));
    }
    if let Some(reply_to) = &p.reply_to {
        out.insert("reply_to".into(), address(reply_to));
    }
    put_str(&mut out, "email_template", &p.email_template);
    Value::Object(out)
}

fn address(a: &Address) -> Value {
    let mut out = Map::new();
    put_str(&mut out, "name", &a.name);
    put_str(&mut out, "email", &a.email);
    Value::Object(out)
}

fn structure(s: &prost_types::Struct) -> Value {
    Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value(v)))
            .collect(),
    )
}

fn value(v: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        // Struct numbers are doubles; integral ones print as integers (`123`, not `123.0`).
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9.0e15 => json!(*n as i64),
        Some(Kind::NumberValue(n)) => json!(n),
        Some(Kind::StringValue(s)) => json!(s),
        Some(Kind::BoolValue(b)) => json!(b),
        Some(Kind::StructValue(s)) => structure(s),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(value).collect()),
    }
}

fn enum_name<E>(name: Result<&str, E>, raw: i32) -> Value {
    name.map_or_else(|_| json!(raw), |n| json!(n))
}

fn put_str(out: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        out.insert(key.into(), Value::String(value.into()));
    }
}
