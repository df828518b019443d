//! SendGrid's and SendCloud's `X-SMTPAPI`: a JSON object (SendGrid) or the base64 of one
//! (SendCloud; whitespace left by folding is ignored), at most 1 MiB once decoded. The
//! first header wins (SendGrid's rule); SendCloud's demand that it be the last header
//! is not enforced. Fields: `to` (replaces the envelope's recipients, ≤ 1000), `sub`
//! (per-recipient substitutions, ignored when `pubsub` is present), `pubsub`,
//! `category`, `unique_args`/`custom_args`, `filters` (tracking flags, template),
//! `send_at` (≤ 72 hours ahead), `asm_group_id`, `ip_pool` and
//! `settings.unsubscribe.page_id`. Unknown keys are ignored.

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::json::{Json, join};
use super::{Context, DialectError, Field, Options, Provider};
use crate::smtp::command::is_mailbox;

pub const PROVIDER: Provider = Provider {
    name: "SendGrid / SendCloud",
    headers: &["x-smtpapi"],
    read,
};

const J: Json = Json {
    header: "X-SMTPAPI",
};
const MAX_DECODED: usize = 1 << 20;
pub const MAX_RECIPIENTS: usize = 1000;
/// SendGrid's scheduling window, and the clock skew tolerated for "now".
const MAX_AHEAD: Duration = Duration::from_secs(72 * 3600);
const SKEW: Duration = Duration::from_secs(60);
const TRACKING_FILTERS: [&str; 3] = ["open_tracking", "click_tracking", "subscription_tracking"];

fn read(fields: &[Field<'_>], options: &mut Options, cx: &Context<'_>) -> Result<(), DialectError> {
    let Some(field) = fields.first() else {
        return Ok(());
    };
    let api = J.object(&json_text(field.unfolded(cx.scratch))?)?;
    options.email_ids = true;
    if let Some(to) = api.get("to") {
        options.recipients = Some(recipients(to)?);
    }
    match (api.get("pubsub"), api.get("sub")) {
        (Some(pubsub), _) => options.merge_placeholders(J.placeholders("pubsub", pubsub)?),
        (None, Some(sub)) => options.substitutions = substitutions(sub)?,
        (None, None) => {}
    }
    if let Some(category) = api.get("category") {
        let tags = match category {
            Value::String(tag) => vec![tag.clone()],
            other => J
                .decoded_strings("category", other)
                .map_err(|_| J.wrong("category", "string or array of strings"))?,
        };
        for tag in tags {
            options.add_tag(&tag);
        }
    }
    for name in ["unique_args", "custom_args"] {
        if let Some(args) = api.get(name) {
            options.merge_metadata(J.object_in(name, args)?.clone());
        }
    }
    if let Some(filters) = api.get("filters") {
        read_filters(J.object_in("filters", filters)?, options)?;
    }
    if let Some(send_at) = api.get("send_at") {
        let at = J.integer("send_at", send_at)?;
        let now = cx
            .now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if at < now - SKEW.as_secs() as i64 {
            return Err(DialectError::SendAtPast);
        }
        if at > now + MAX_AHEAD.as_secs() as i64 {
            return Err(DialectError::SendAtTooFar);
        }
        options.send_at = Some(at);
    }
    if let Some(group) = api.get("asm_group_id") {
        options.unsubscribe_group_id = Some(J.integer("asm_group_id", group)?);
    }
    if let Some(pool) = api.get("ip_pool") {
        J.str("ip_pool", pool)?;
        options.sending.insert("ip_pool".to_owned(), pool.clone());
    }
    if let Some(settings) = api.get("settings") {
        let settings = J.object_in("settings", settings)?;
        if let Some(unsubscribe) = settings.get("unsubscribe") {
            let unsubscribe = J.object_in("settings.unsubscribe", unsubscribe)?;
            if let Some(page) = unsubscribe.get("page_id") {
                options.unsubscribe_page_id =
                    Some(J.integer("settings.unsubscribe.page_id", page)?);
            }
        }
    }
    Ok(())
}

/// The JSON text: the value itself when it is JSON (it has a `{`, which base64 cannot),
/// else the base64 it is, whitespace ignored.
fn json_text(value: &[u8]) -> Result<Vec<u8>, DialectError> {
    let too_big = DialectError::TooBig {
        header: J.header,
        limit: "1 MiB",
    };
    if value.contains(&b'{') || value.contains(&b'[') {
        return if value.len() > MAX_DECODED {
            Err(too_big)
        } else {
            Ok(value.to_vec())
        };
    }
    let compact: Vec<u8> = value
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.len() / 4 * 3 > MAX_DECODED + 3 {
        return Err(too_big);
    }
    let decoded = STANDARD
        .decode(&compact)
        .map_err(|_| DialectError::NotJsonNorBase64 { header: J.header })?;
    if decoded.len() > MAX_DECODED {
        return Err(too_big);
    }
    Ok(decoded)
}

/// `to`: addresses (`addr` or `Name <addr>`), ≤ 1000, as given.
fn recipients(to: &Value) -> Result<Vec<String>, DialectError> {
    let entries = J.array("to", to)?;
    if entries.len() > MAX_RECIPIENTS {
        return Err(DialectError::TooManyRecipients {
            header: J.header,
            fields: "'to'",
            count: entries.len(),
            limit: MAX_RECIPIENTS,
        });
    }
    if entries.is_empty() {
        return Err(DialectError::EmptyList {
            header: J.header,
            field: "to",
        });
    }
    entries
        .iter()
        .map(|entry| {
            let text = J
                .str("to", entry)
                .map_err(|_| J.wrong("to", "array of strings"))?
                .trim();
            let address = match (text.rfind('<'), text.strip_suffix('>')) {
                (Some(open), Some(inner)) => inner.get(open + 1..).unwrap_or_default().trim(),
                _ => text,
            };
            if is_mailbox(address) {
                Ok(address.to_owned())
            } else {
                Err(DialectError::BadAddress {
                    header: J.header,
                    field: "to",
                    address: text.to_owned(),
                })
            }
        })
        .collect()
}

/// `sub`: each key with one value per recipient (their count is checked against the
/// recipients when the message is mapped).
fn substitutions(sub: &Value) -> Result<Vec<(String, Vec<String>)>, DialectError> {
    J.object_in("sub", sub)?
        .iter()
        .map(|(key, values)| {
            let field = join("sub", key);
            let values = J
                .array(&field, values)?
                .iter()
                .map(|v| J.scalar_text(&field, v))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((key.clone(), values))
        })
        .collect()
}

fn read_filters(filters: &Map<String, Value>, options: &mut Options) -> Result<(), DialectError> {
    let tracking = &mut options.tracking;
    let flags = [
        &mut tracking.open,
        &mut tracking.click,
        &mut tracking.subscription,
    ];
    for (name, flag) in TRACKING_FILTERS.into_iter().zip(flags) {
        let path = ["filters", name, "settings", "enable"];
        let Some(enable) = lookup(filters, &path[1..]) else {
            continue;
        };
        let on = match enable {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => n.as_u64().filter(|&n| n <= 1).map(|n| n == 1),
            Value::String(s) if s == "1" || s == "0" => Some(s == "1"),
            _ => None,
        }
        .ok_or_else(|| J.wrong(&path.join("."), "0 or 1"))?;
        *flag = Some(on);
    }
    if let Some(template) = lookup(filters, &["templates", "settings", "template_id"]) {
        let id = J.scalar_text("filters.templates.settings.template_id", template)?;
        options.template = Some(id);
    }
    Ok(())
}

/// The value at a path of object keys, if every step is an object that has it.
fn lookup<'v>(object: &'v Map<String, Value>, path: &[&str]) -> Option<&'v Value> {
    let (first, rest) = path.split_first()?;
    let value = object.get(*first)?;
    if rest.is_empty() {
        Some(value)
    } else {
        lookup(value.as_object()?, rest)
    }
}
