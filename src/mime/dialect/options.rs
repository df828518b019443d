//! The normalized options: what every provider's headers mean, in one value. Parsers
//! write it through the merge helpers here (so "a later source wins", "in order,
//! deduplicated" and "the first header wins" are each written once); `mime::apply`
//! maps it onto Notify.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

#[derive(Debug, Default, PartialEq)]
pub struct Options {
    /// `campaign`.
    pub campaign: Option<String>,
    /// `meta_data.tags`: in order, deduplicated.
    pub tags: Vec<String>,
    /// `meta_data.metadata`: merged in provider order, a later source wins on a key.
    pub metadata: Map<String, Value>,
    /// `meta_data.message_stream`.
    pub message_stream: Option<String>,
    /// `X-PM-KeepID: true`: `meta_data.message_id` is the client's `Message-ID`.
    pub keep_message_id: bool,
    pub tracking: Tracking,
    /// `meta_data.options`: sending options, values as given.
    pub sending: Map<String, Value>,
    /// Extra recipients (`cc`, `bcc`, `archive`), appended after the message's own.
    pub cc: Vec<ExtraAddress>,
    pub bcc: Vec<ExtraAddress>,
    pub archive: Vec<ExtraAddress>,
    /// Recipients replacing the envelope's (`X-SMTPAPI` `to`), as given.
    pub recipients: Option<Vec<String>>,
    /// `dynamic_content_placeholders` for all recipients.
    pub placeholders: BTreeMap<String, String>,
    /// Per-recipient substitutions (`X-SMTPAPI` `sub`): key, one value per recipient.
    pub substitutions: Vec<(String, Vec<String>)>,
    /// `email_payload.email_template`.
    pub template: Option<String>,
    /// `schedule.at`, Unix seconds.
    pub send_at: Option<i64>,
    pub unsubscribe_page_id: Option<i64>,
    pub unsubscribe_group_id: Option<i64>,
    /// The client's idempotency key.
    pub idempotency_key: Option<String>,
    pub configuration_set: Option<String>,
    /// SES message tags: merged into the metadata after every other source.
    pub ses_tags: Vec<(String, String)>,
    /// `meta_data.amp_html`: the text of a `text/x-amp-html` part.
    pub amp_html: Option<String>,
    /// The message carried `X-SMTPAPI`: its log line lists SendCloud's email ids.
    pub email_ids: bool,
}

/// `meta_data.tracking`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tracking {
    pub open: Option<bool>,
    pub click: Option<bool>,
    pub subscription: Option<bool>,
    /// Postmark's `X-PM-TrackLinks` value.
    pub links: Option<String>,
}

impl Tracking {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A `cc`/`bcc`/`archive` entry: the address, and how it was given (with its display
/// name) for the upstream to render `Cc:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraAddress {
    pub email: String,
    pub display: String,
}

impl Options {
    /// Appends a tag unless it is empty or already there.
    pub fn add_tag(&mut self, tag: &str) {
        let tag = tag.trim();
        if !tag.is_empty() && !self.tags.iter().any(|t| t == tag) {
            self.tags.push(tag.to_owned());
        }
    }

    /// Merges metadata: a later source wins on the same key.
    pub fn merge_metadata(&mut self, entries: impl IntoIterator<Item = (String, Value)>) {
        self.metadata.extend(entries);
    }

    /// Merges placeholders for all recipients: a later source wins on the same key.
    pub fn merge_placeholders(&mut self, entries: impl IntoIterator<Item = (String, String)>) {
        self.placeholders.extend(entries);
    }

    /// Extra recipients over the three lists.
    pub fn extra_count(&self) -> usize {
        self.cc.len() + self.bcc.len() + self.archive.len()
    }
}

/// Whether a header value says yes or no, as the providers write it.
pub fn boolean(text: &str) -> Option<bool> {
    match text.trim() {
        t if t.eq_ignore_ascii_case("true") => Some(true),
        t if t.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_keep_order_and_drop_repeats() {
        let mut o = Options::default();
        for tag in ["b", "a", " b ", "", "c"] {
            o.add_tag(tag);
        }
        assert_eq!(o.tags, ["b", "a", "c"]);
    }

    #[test]
    fn a_later_source_wins() {
        let mut o = Options::default();
        o.merge_metadata([("k".into(), Value::from("first"))]);
        o.merge_metadata([("k".into(), Value::from("second")), ("j".into(), 1.into())]);
        assert_eq!(o.metadata["k"], "second");
        assert_eq!(o.metadata.len(), 2);
    }
}
