//! The one mapping of the normalized options (`dialect::Options`) onto Notify: the
//! shared fields (`campaign`, `meta_data`, `schedule`, placeholders), the template, and
//! the calls — who each goes to, with which substitutions, under which idempotency key.
//! With no provider header the options are empty and this yields today's request: no
//! `meta_data`, one call to the envelope's recipients under the derived key.

use std::collections::{BTreeMap, HashMap, HashSet};

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Timestamp, Value};

use super::Envelope;
use super::dialect::{DialectError, ExtraAddress, Options};
use super::transaction_id::{self, Source};
use crate::notify::{Delivery, EmailPayload, NotifyTransactional, Schedule};

/// What the mapping knows of the message besides the options.
pub struct Message<'a> {
    pub envelope: Envelope<'a>,
    /// `Message-ID` as written (angle brackets included), folding and all; looked up
    /// only when the options keep it.
    pub message_id_raw: Option<&'a str>,
    /// The idempotency source when the client gave no key.
    pub derived: Source<'a>,
}

/// Fills the shared fields and the payload's template from `options`, and returns one
/// delivery per upstream call.
pub fn apply(
    options: Options,
    message: &Message<'_>,
    shared: &mut NotifyTransactional,
    payload: &mut EmailPayload,
) -> Result<Vec<Delivery>, DialectError> {
    let envelope = message.envelope;
    let source = options
        .idempotency_key
        .as_deref()
        .map_or(message.derived, Source::ClientKey);
    let key = transaction_id::derive(envelope, source);

    let meta = meta_data(&options, message);
    if !meta.fields.is_empty() {
        shared.meta_data = Some(meta);
    }
    if let Some(campaign) = options.campaign {
        shared.campaign = campaign;
    }
    if let Some(at) = options.send_at {
        shared.schedule = Some(Schedule {
            send_date: String::new(),
            at: Some(Timestamp {
                seconds: at,
                nanos: 0,
            }),
        });
    }
    if let Some(template) = options.template {
        payload.email_template = template;
    }
    let mut placeholders = options.placeholders;
    // A key substituted per recipient is never also shared.
    for (key, _) in &options.substitutions {
        placeholders.remove(key);
    }
    shared.dynamic_content_placeholders = placeholders;

    let extras = options
        .cc
        .iter()
        .chain(&options.bcc)
        .chain(&options.archive);
    deliveries(
        envelope.recipients,
        options.recipients.as_deref(),
        &options.substitutions,
        extras,
        key,
    )
}

/// The calls: the message's recipients (the envelope's, or `X-SMTPAPI` `to`) grouped by
/// identical substitution values, then the extra recipients. One call keeps the
/// message's key; each call of a fan-out gets a key derived from it.
fn deliveries<'e>(
    envelope: &[String],
    replaced: Option<&[String]>,
    substitutions: &[(String, Vec<String>)],
    extras: impl Iterator<Item = &'e ExtraAddress>,
    key: String,
) -> Result<Vec<Delivery>, DialectError> {
    let mut extras = extras.peekable();
    if replaced.is_none() && substitutions.is_empty() && extras.peek().is_none() {
        // The common case: one call to the envelope's recipients (already deduplicated
        // by the session), under the message's key.
        return Ok(vec![Delivery {
            recipients: envelope.to_vec(),
            transaction_id: key,
            ..Delivery::default()
        }]);
    }
    let given = replaced.unwrap_or(envelope);
    for (name, values) in substitutions {
        if values.len() != given.len() {
            return Err(DialectError::SubLength {
                key: name.clone(),
                values: values.len(),
                recipients: given.len(),
            });
        }
    }
    let explicit_positions = replaced.is_some();
    let mut seen: HashSet<String> = HashSet::with_capacity(given.len());
    let mut groups: Vec<Delivery> = Vec::new();
    // Substitution values (one per key) -> index in `groups`.
    let mut by_values: HashMap<Vec<&str>, usize> = HashMap::new();
    for (i, address) in given.iter().enumerate() {
        if !seen.insert(address.to_ascii_lowercase()) {
            continue;
        }
        let values: Vec<&str> = substitutions.iter().map(|(_, v)| v[i].as_str()).collect();
        let next = groups.len();
        let group = *by_values.entry(values).or_insert(next);
        if group == next {
            groups.push(Delivery {
                placeholders: substitutions
                    .iter()
                    .map(|(k, v)| (k.clone(), v[i].clone()))
                    .collect::<BTreeMap<_, _>>(),
                ..Delivery::default()
            });
        }
        let delivery = &mut groups[group];
        delivery.recipients.push(address.clone());
        if explicit_positions || !substitutions.is_empty() {
            delivery.positions.push(i as u32);
        }
    }
    // Extra recipients share no substitution values: with a fan-out they are one more
    // call, else they join the only one.
    let mut extra = Delivery::default();
    let mut position = given.len();
    for address in extras {
        if seen.insert(address.email.to_ascii_lowercase()) {
            extra.recipients.push(address.email.clone());
            extra.positions.push(position as u32);
            position += 1;
        }
    }
    match (groups.len(), extra.recipients.is_empty()) {
        (_, true) => {}
        (1, false) if substitutions.is_empty() => {
            let only = &mut groups[0];
            if only.positions.is_empty() {
                only.positions = (0..only.recipients.len() as u32).collect();
            }
            only.recipients.append(&mut extra.recipients);
            only.positions.append(&mut extra.positions);
        }
        _ => groups.push(extra),
    }
    if let [only] = &mut groups[..] {
        only.transaction_id = key;
        if !explicit_positions
            && only
                .positions
                .iter()
                .enumerate()
                .all(|(i, &p)| p as usize == i)
        {
            only.positions.clear();
        }
    } else {
        for group in &mut groups {
            group.transaction_id = transaction_id::for_group(&key, &group.recipients);
        }
    }
    Ok(groups)
}

/// `meta_data`: only the keys that have a value.
fn meta_data(options: &Options, message: &Message<'_>) -> Struct {
    let mut fields = BTreeMap::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            fields.insert(key.to_owned(), value);
        }
    };
    put(
        "subaccount",
        message.envelope.subaccount.map(|n| number(n as f64)),
    );
    put(
        "tags",
        (!options.tags.is_empty()).then(|| strings(options.tags.iter().cloned())),
    );
    let mut metadata: BTreeMap<String, Value> = options
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), from_json(v)))
        .collect();
    for (name, value) in &options.ses_tags {
        metadata.insert(name.clone(), string(value));
    }
    put("metadata", (!metadata.is_empty()).then(|| object(metadata)));
    put(
        "message_stream",
        options.message_stream.as_deref().map(string),
    );
    put(
        "message_id",
        message
            .message_id_raw
            .map(|raw| string(raw.split(['\r', '\n']).collect::<String>().trim())),
    );
    let tracking = &options.tracking;
    if !tracking.is_empty() {
        let mut t = BTreeMap::new();
        for (name, flag) in [
            ("open", tracking.open),
            ("click", tracking.click),
            ("subscription", tracking.subscription),
        ] {
            if let Some(flag) = flag {
                t.insert(name.to_owned(), boolean(flag));
            }
        }
        if let Some(links) = &tracking.links {
            t.insert("links".to_owned(), string(links));
        }
        put("tracking", Some(object(t)));
    }
    put(
        "options",
        (!options.sending.is_empty()).then(|| {
            object(
                options
                    .sending
                    .iter()
                    .map(|(k, v)| (k.clone(), from_json(v)))
                    .collect(),
            )
        }),
    );
    for (name, list) in [
        ("cc", &options.cc),
        ("bcc", &options.bcc),
        ("archive", &options.archive),
    ] {
        put(
            name,
            (!list.is_empty()).then(|| strings(list.iter().map(|a| a.display.clone()))),
        );
    }
    put(
        "unsubscribe_page_id",
        options.unsubscribe_page_id.map(|n| number(n as f64)),
    );
    put(
        "unsubscribe_group_id",
        options.unsubscribe_group_id.map(|n| number(n as f64)),
    );
    put("amp_html", options.amp_html.as_deref().map(string));
    put(
        "configuration_set",
        options.configuration_set.as_deref().map(string),
    );
    Struct { fields }
}

fn value(kind: Kind) -> Value {
    Value { kind: Some(kind) }
}

fn string(s: &str) -> Value {
    value(Kind::StringValue(s.to_owned()))
}

fn number(n: f64) -> Value {
    value(Kind::NumberValue(n))
}

fn boolean(b: bool) -> Value {
    value(Kind::BoolValue(b))
}

fn strings(items: impl Iterator<Item = String>) -> Value {
    value(Kind::ListValue(ListValue {
        values: items.map(|s| value(Kind::StringValue(s))).collect(),
    }))
}

fn object(fields: BTreeMap<String, Value>) -> Value {
    value(Kind::StructValue(Struct { fields }))
}

/// A JSON value as a protobuf `Value` (numbers become doubles, as `Struct` holds them).
fn from_json(json: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => value(Kind::NullValue(0)),
        J::Bool(b) => boolean(*b),
        J::Number(n) => number(n.as_f64().unwrap_or_default()),
        J::String(s) => string(s),
        J::Array(items) => value(Kind::ListValue(ListValue {
            values: items.iter().map(from_json).collect(),
        })),
        J::Object(map) => object(map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("r{i}@example.com")).collect()
    }

    #[test]
    fn one_call_without_substitutions() {
        let envelope = addresses(3);
        let calls = deliveries(&envelope, None, &[], std::iter::empty(), "K".into()).expect("ok");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].recipients, envelope);
        assert_eq!(calls[0].transaction_id, "K");
        assert!(calls[0].positions.is_empty() && calls[0].placeholders.is_empty());
    }

    #[test]
    fn recipients_sharing_values_share_a_call() {
        let to = addresses(5);
        let sub = vec![(
            "%name%".to_owned(),
            ["a", "b", "a", "c", "b"].map(str::to_owned).to_vec(),
        )];
        let calls = deliveries(&[], Some(&to), &sub, std::iter::empty(), "K".into()).expect("ok");
        let groups: Vec<(Vec<&str>, &str, Vec<u32>)> = calls
            .iter()
            .map(|d| {
                (
                    d.recipients.iter().map(String::as_str).collect(),
                    d.placeholders["%name%"].as_str(),
                    d.positions.clone(),
                )
            })
            .collect();
        assert_eq!(
            groups,
            [
                (vec!["r0@example.com", "r2@example.com"], "a", vec![0, 2]),
                (vec!["r1@example.com", "r4@example.com"], "b", vec![1, 4]),
                (vec!["r3@example.com"], "c", vec![3]),
            ]
        );
        let keys: HashSet<&str> = calls.iter().map(|d| d.transaction_id.as_str()).collect();
        assert_eq!(keys.len(), 3, "each call its own key");
        let again = deliveries(&[], Some(&to), &sub, std::iter::empty(), "K".into()).expect("ok");
        assert_eq!(calls, again, "a retry repeats every key");
    }

    #[test]
    fn a_substitution_list_must_match_the_recipients() {
        let sub = vec![("%name%".to_owned(), vec!["a".to_owned(), "b".to_owned()])];
        let err =
            deliveries(&addresses(3), None, &sub, std::iter::empty(), "K".into()).unwrap_err();
        assert_eq!(
            err.reply().to_string(),
            "550 5.6.0 X-SMTPAPI sub '%name%' has 2 values for 3 recipients"
        );
    }

    #[test]
    fn extra_recipients_are_appended_once() {
        let envelope = addresses(2);
        let extra = |email: &str| ExtraAddress {
            email: email.into(),
            display: email.into(),
        };
        let extras = [
            extra("R1@example.com"),
            extra("cc@x.example"),
            extra("cc@x.example"),
        ];
        let calls = deliveries(&envelope, None, &[], extras.iter(), "K".into()).expect("ok");
        assert_eq!(
            calls[0].recipients,
            ["r0@example.com", "r1@example.com", "cc@x.example"]
        );
    }
}
