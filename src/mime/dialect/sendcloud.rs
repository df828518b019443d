//! SendCloud's custom headers: `SC-Custom-<key>: value` (string metadata, returned by
//! SendCloud's webhooks; RFC 2047 words decoded). Its `X-SMTPAPI` is SendGrid's format:
//! see `smtpapi`.

use serde_json::Value;

use super::{Context, DialectError, Field, Options, Provider};

pub const PROVIDER: Provider = Provider {
    name: "SendCloud",
    headers: &["sc-custom-"],
    read,
};

const CUSTOM: &str = "SC-Custom-";

fn read(fields: &[Field<'_>], options: &mut Options, cx: &Context<'_>) -> Result<(), DialectError> {
    let mut entries = serde_json::Map::new();
    for field in fields {
        let key = field.key(CUSTOM);
        if key.is_empty() {
            return Err(DialectError::EmptyKey { header: CUSTOM });
        }
        // The first header of a key wins.
        entries
            .entry(key.to_owned())
            .or_insert_with(|| Value::String(field.decoded(cx.scratch)));
    }
    options.merge_metadata(entries);
    Ok(())
}
