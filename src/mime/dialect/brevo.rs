//! Brevo (Sendinblue): `X-Mailin-Tag`, each header one tag.

use super::{Context, DialectError, Field, Options, Provider};

pub const PROVIDER: Provider = Provider {
    name: "Brevo",
    headers: &["x-mailin-tag"],
    read,
};

fn read(fields: &[Field<'_>], options: &mut Options, cx: &Context<'_>) -> Result<(), DialectError> {
    for field in fields {
        options.add_tag(&field.decoded(cx.scratch));
    }
    Ok(())
}
