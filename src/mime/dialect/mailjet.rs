//! Mailjet: `X-MJ-TemplateID` (the template) and `X-MJ-Vars` (a JSON object of
//! placeholders for all recipients).

use super::json::Json;
use super::{Context, DialectError, Field, Options, Provider};

pub const PROVIDER: Provider = Provider {
    name: "Mailjet",
    headers: &["x-mj-templateid", "x-mj-vars"],
    read,
};

fn read(fields: &[Field<'_>], options: &mut Options, cx: &Context<'_>) -> Result<(), DialectError> {
    for field in fields {
        if field.name.eq_ignore_ascii_case("x-mj-templateid") {
            let id = field.text(cx.scratch);
            if !id.is_empty() {
                options.template = Some(id.into_owned());
            }
        } else {
            let json = Json {
                header: "X-MJ-Vars",
            };
            let vars = serde_json::Value::Object(json.object(field.unfolded(cx.scratch))?);
            options.merge_placeholders(json.placeholders("", &vars)?);
        }
    }
    Ok(())
}
