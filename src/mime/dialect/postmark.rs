//! Postmark: `X-PM-Tag` (one per message: the first header wins), `X-PM-Metadata-<key>`,
//! `X-PM-KeepID`, `X-PM-Message-Stream`, `X-PM-TrackOpens`, `X-PM-TrackLinks`. Tag and
//! metadata values may be RFC 2047 encoded words.

use serde_json::Value;

use super::options::boolean;
use super::{Context, DialectError, Field, Options, Provider};

pub const PROVIDER: Provider = Provider {
    name: "Postmark",
    headers: &[
        "x-pm-tag",
        "x-pm-metadata-",
        "x-pm-keepid",
        "x-pm-message-stream",
        "x-pm-trackopens",
        "x-pm-tracklinks",
    ],
    read,
};

const METADATA: &str = "X-PM-Metadata-";
/// `X-PM-TrackLinks` values, as Postmark spells them.
const LINK_TRACKING: [&str; 4] = ["None", "HtmlAndText", "HtmlOnly", "TextOnly"];

fn read(fields: &[Field<'_>], options: &mut Options, cx: &Context<'_>) -> Result<(), DialectError> {
    let mut tagged = false;
    for field in fields {
        let name = field.name.to_ascii_lowercase();
        match name.as_str() {
            "x-pm-tag" if !tagged => {
                tagged = true;
                options.add_tag(&field.decoded(cx.scratch));
            }
            "x-pm-tag" => {}
            "x-pm-keepid" => {
                options.keep_message_id =
                    boolean(&field.text(cx.scratch)).ok_or(DialectError::BadValue {
                        header: "X-PM-KeepID",
                        expected: "true or false",
                    })?;
            }
            "x-pm-message-stream" => {
                let stream = field.text(cx.scratch);
                if !stream.is_empty() {
                    options.message_stream = Some(stream.into_owned());
                }
            }
            "x-pm-trackopens" => {
                let open = boolean(&field.text(cx.scratch)).ok_or(DialectError::BadValue {
                    header: "X-PM-TrackOpens",
                    expected: "true or false",
                })?;
                options.tracking.open = Some(open);
            }
            "x-pm-tracklinks" => {
                let text = field.text(cx.scratch);
                let links = LINK_TRACKING
                    .into_iter()
                    .find(|v| v.eq_ignore_ascii_case(&text))
                    .ok_or(DialectError::BadValue {
                        header: "X-PM-TrackLinks",
                        expected: "None, HtmlAndText, HtmlOnly or TextOnly",
                    })?;
                options.tracking.click = Some(links != "None");
                options.tracking.links = Some(links.to_owned());
            }
            _ => {
                // X-PM-Metadata-<key>; the first header of a key wins.
                let key = field.key(METADATA);
                if key.is_empty() {
                    return Err(DialectError::EmptyKey { header: METADATA });
                }
                if !options.metadata.contains_key(key) {
                    let value = Value::String(field.decoded(cx.scratch));
                    options.merge_metadata([(key.to_owned(), value)]);
                }
            }
        }
    }
    Ok(())
}
