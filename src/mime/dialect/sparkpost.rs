//! SparkPost: `X-MSYS-API`, a JSON object (possibly folded over several lines) with
//! `campaign_id` (≤ 64 bytes), `metadata`, `tags`, `cc`/`bcc`/`archive` (strings or
//! `{"email", "name"}` objects, ≤ 1000 in all) and `options` (open and click tracking,
//! and sending options). String values of `campaign_id`, `tags` and `metadata` may be
//! RFC 2047 encoded words. `substitution_data` and unknown keys are ignored, as SparkPost
//! does over SMTP. The first `X-MSYS-API` header wins.

use serde_json::Value;

use super::json::{Json, decode_words, join};
use super::{Context, DialectError, ExtraAddress, Field, Options, Provider};
use crate::mime::encoded_word;
use crate::smtp::command::is_mailbox;

pub const PROVIDER: Provider = Provider {
    name: "SparkPost",
    headers: &["x-msys-api"],
    read,
};

const J: Json = Json {
    header: "X-MSYS-API",
};
const MAX_CAMPAIGN: usize = 64;
pub const MAX_EXTRA_RECIPIENTS: usize = 1000;
/// `options` keys passed on as sending options, with the type SparkPost gives them.
const SENDING_OPTIONS: [(&str, Kind); 5] = [
    ("transactional", Kind::Boolean),
    ("skip_suppression", Kind::Boolean),
    ("ip_pool", Kind::String),
    ("inline_css", Kind::Boolean),
    ("dkim_key", Kind::String),
];

#[derive(Clone, Copy)]
enum Kind {
    Boolean,
    String,
}

fn read(fields: &[Field<'_>], options: &mut Options, cx: &Context<'_>) -> Result<(), DialectError> {
    let Some(field) = fields.first() else {
        return Ok(());
    };
    let api = J.object(field.unfolded(cx.scratch))?;
    if let Some(campaign) = api.get("campaign_id") {
        let campaign = encoded_word::decode(J.str("campaign_id", campaign)?).into_owned();
        if campaign.len() > MAX_CAMPAIGN {
            return Err(DialectError::TooLong {
                header: J.header,
                field: "campaign_id",
                limit: MAX_CAMPAIGN,
            });
        }
        options.campaign = Some(campaign);
    }
    if let Some(metadata) = api.get("metadata") {
        let metadata = J.object_in("metadata", metadata)?;
        options.merge_metadata(
            metadata
                .iter()
                .map(|(k, v)| (k.clone(), decode_words(v.clone()))),
        );
    }
    if let Some(tags) = api.get("tags") {
        for tag in J.decoded_strings("tags", tags)? {
            options.add_tag(&tag);
        }
    }
    for (name, list) in [
        ("cc", &mut options.cc),
        ("bcc", &mut options.bcc),
        ("archive", &mut options.archive),
    ] {
        if let Some(entries) = api.get(name) {
            for entry in J.array(name, entries)? {
                list.push(extra_address(name, entry)?);
            }
        }
    }
    let extra = options.extra_count();
    if extra > MAX_EXTRA_RECIPIENTS {
        return Err(DialectError::TooManyRecipients {
            header: J.header,
            fields: "cc, bcc and archive",
            count: extra,
            limit: MAX_EXTRA_RECIPIENTS,
        });
    }
    if let Some(sending) = api.get("options") {
        let sending = J.object_in("options", sending)?;
        for (name, tracking) in [
            ("open_tracking", &mut options.tracking.open),
            ("click_tracking", &mut options.tracking.click),
        ] {
            if let Some(value) = sending.get(name) {
                *tracking = Some(J.bool(&join("options", name), value)?);
            }
        }
        for (name, kind) in SENDING_OPTIONS {
            let Some(value) = sending.get(name) else {
                continue;
            };
            let field = join("options", name);
            match kind {
                Kind::Boolean => J.bool(&field, value).map(drop)?,
                Kind::String => J.str(&field, value).map(drop)?,
            }
            options.sending.insert(name.to_owned(), value.clone());
        }
    }
    Ok(())
}

/// A `cc`/`bcc`/`archive` entry: `"addr"` or `{"email": "addr", "name": "Name"}`.
fn extra_address(list: &'static str, entry: &Value) -> Result<ExtraAddress, DialectError> {
    let (email, name) = match entry {
        Value::String(email) => (email.trim(), None),
        Value::Object(object) => {
            let email = object
                .get("email")
                .ok_or_else(|| J.wrong(&join(list, "email"), "string"))?;
            let email = J.str(&join(list, "email"), email)?.trim();
            let name = match object.get("name") {
                Some(name) => Some(J.str(&join(list, "name"), name)?),
                None => None,
            };
            (email, name.filter(|n| !n.is_empty()))
        }
        _ => return Err(J.wrong(list, "array of strings or objects")),
    };
    if !is_mailbox(email) {
        return Err(DialectError::BadAddress {
            header: J.header,
            field: list,
            address: email.to_owned(),
        });
    }
    let display = match name {
        Some(name) => format!("\"{}\" <{email}>", name.replace(['\\', '"'], "")),
        None => email.to_owned(),
    };
    Ok(ExtraAddress {
        email: email.to_owned(),
        display,
    })
}
