//! Mailgun: `X-Mailgun-Tag` (each header one tag), `X-Mailgun-Variables` (a JSON object
//! of metadata; several headers merge in order), `X-Mailgun-Template-Name` and
//! `X-Mailgun-Template-Variables` (a JSON object of placeholders for all recipients).

use serde_json::Value;

use super::json::Json;
use super::{Context, DialectError, Field, Options, Provider};

pub const PROVIDER: Provider = Provider {
    name: "Mailgun",
    headers: &[
        "x-mailgun-tag",
        "x-mailgun-variables",
        "x-mailgun-template-name",
        "x-mailgun-template-variables",
    ],
    read,
};

fn read(fields: &[Field<'_>], options: &mut Options, cx: &Context<'_>) -> Result<(), DialectError> {
    for field in fields {
        let name = field.name.to_ascii_lowercase();
        match name.as_str() {
            "x-mailgun-tag" => options.add_tag(&field.decoded(cx.scratch)),
            "x-mailgun-variables" => {
                let json = Json {
                    header: "X-Mailgun-Variables",
                };
                options.merge_metadata(json.object(field.unfolded(cx.scratch))?);
            }
            "x-mailgun-template-name" => {
                let name = field.text(cx.scratch);
                if !name.is_empty() {
                    options.template = Some(name.into_owned());
                }
            }
            _ => {
                let json = Json {
                    header: "X-Mailgun-Template-Variables",
                };
                let vars = Value::Object(json.object(field.unfolded(cx.scratch))?);
                options.merge_placeholders(json.placeholders("", &vars)?);
            }
        }
    }
    Ok(())
}
