//! Amazon SES: `X-SES-CONFIGURATION-SET` and `X-SES-MESSAGE-TAGS: n1=v1, n2=v2` (names
//! and values of 1 to 256 `[A-Za-z0-9_-]`; spaces around pairs ignored), merged into the
//! metadata after every other source.

use super::{Context, DialectError, Field, Options, Provider};

pub const PROVIDER: Provider = Provider {
    name: "Amazon SES",
    headers: &["x-ses-configuration-set", "x-ses-message-tags"],
    read,
};

fn read(fields: &[Field<'_>], options: &mut Options, cx: &Context<'_>) -> Result<(), DialectError> {
    for field in fields {
        let text = field.text(cx.scratch);
        if field.name.eq_ignore_ascii_case("x-ses-configuration-set") {
            if !text.is_empty() {
                options.configuration_set = Some(text.into_owned());
            }
            continue;
        }
        for pair in text.split(',') {
            let pair = pair.trim();
            let parsed = pair
                .split_once('=')
                .filter(|(name, value)| is_tag_text(name) && is_tag_text(value));
            let Some((name, value)) = parsed else {
                return Err(DialectError::SesTag {
                    pair: pair.to_owned(),
                });
            };
            options.ses_tags.push((name.to_owned(), value.to_owned()));
        }
    }
    Ok(())
}

fn is_tag_text(text: &str) -> bool {
    (1..=256).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
