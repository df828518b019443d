//! Provider extension headers (dialects.md): every provider's SMTP headers read, in one
//! gateway, into one normalized `Options`.
//!
//! A provider is data: the header names it reads and one parser (`Provider`). Only the
//! message's top-level header block counts; names are matched case-insensitively. The
//! parsers run in the order of `PROVIDERS`, which is the merge order the spec gives
//! (metadata: Postmark, SendCloud's custom headers, SparkPost, SendGrid/SendCloud's
//! X-SMTPAPI, Mailgun, then SES tags; tags in the same order). Adding a provider means
//! one parser module and one row here (and in the README's table).
//!
//! A message without any of these headers costs one pass over its header list checking
//! for non-standard names, and no allocation.

mod brevo;
mod error;
mod idempotency;
mod json;
mod mailgun;
mod mailjet;
mod options;
mod postmark;
mod sendcloud;
mod ses;
mod smtpapi;
mod sparkpost;

use std::borrow::Cow;
use std::time::SystemTime;

use bumpalo::Bump;
use mail_parser::{HeaderName, Message};

pub use error::DialectError;
pub use options::{ExtraAddress, Options, Tracking};

use super::encoded_word;

/// One provider: the header names it reads, and how.
pub struct Provider {
    pub name: &'static str,
    /// Lower-case header names; one ending in `-` names a family by its prefix
    /// (`x-pm-metadata-`), whose members carry a key after it.
    pub headers: &'static [&'static str],
    /// Reads this provider's fields (in header order) into the options.
    pub read: fn(&[Field<'_>], &mut Options, &Context<'_>) -> Result<(), DialectError>,
}

/// In merge order (see the module's doc).
pub static PROVIDERS: &[Provider] = &[
    postmark::PROVIDER,
    sendcloud::PROVIDER,
    sparkpost::PROVIDER,
    smtpapi::PROVIDER,
    mailgun::PROVIDER,
    mailjet::PROVIDER,
    brevo::PROVIDER,
    ses::PROVIDER,
    idempotency::PROVIDER,
];

/// What a parser may use besides its fields.
pub struct Context<'a> {
    /// Per-message scratch (unfolded values).
    pub scratch: &'a Bump,
    /// When the message arrived (for `send_at`).
    pub now: SystemTime,
}

/// One header field of the top-level block, as written.
#[derive(Clone, Copy, Debug)]
pub struct Field<'x> {
    /// The name as written.
    pub name: &'x str,
    /// The raw value: after the colon, folding and the final CRLF included.
    pub raw: &'x [u8],
}

impl<'x> Field<'x> {
    /// The text after a family prefix (`X-PM-Metadata-color` → `color`), case kept.
    pub fn key(&self, prefix: &str) -> &'x str {
        self.name.get(prefix.len()..).unwrap_or_default()
    }

    /// The value unfolded as RFC 5322 says (each CRLF removed, the whitespace after it
    /// kept) and trimmed. Borrowed unless it was folded.
    pub fn unfolded<'a>(&self, scratch: &'a Bump) -> &'a [u8]
    where
        'x: 'a,
    {
        let value = self.raw.trim_ascii();
        if !value.contains(&b'\n') && !value.contains(&b'\r') {
            return value;
        }
        let mut out = bumpalo::collections::Vec::with_capacity_in(value.len(), scratch);
        out.extend(value.iter().copied().filter(|&b| b != b'\r' && b != b'\n'));
        out.into_bump_slice()
    }

    /// The unfolded value as text (invalid UTF-8 replaced).
    pub fn text<'a>(&self, scratch: &'a Bump) -> Cow<'a, str>
    where
        'x: 'a,
    {
        String::from_utf8_lossy(self.unfolded(scratch))
    }

    /// The unfolded value with its RFC 2047 encoded words decoded.
    pub fn decoded(&self, scratch: &Bump) -> String {
        encoded_word::decode(&self.text(scratch)).into_owned()
    }
}

/// Which provider reads a header name, if any.
fn provider_of(name: &str) -> Option<usize> {
    PROVIDERS.iter().position(|provider| {
        provider
            .headers
            .iter()
            .any(|pattern| match pattern.strip_suffix('-') {
                // A family member has a key after the prefix; the bare prefix is its own
                // (malformed) member, so it is refused precisely rather than ignored.
                Some(_) => name
                    .get(..pattern.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(pattern)),
                None => name.eq_ignore_ascii_case(pattern),
            })
    })
}

/// Reads every provider header of the message's top-level block into one `Options`.
pub fn read(message: &Message<'_>, context: &Context<'_>) -> Result<Options, DialectError> {
    let mut options = Options::default();
    let raw = message.raw_message();
    // (provider, field), in header order; allocated only when a provider header exists.
    let mut found: Option<bumpalo::collections::Vec<'_, (usize, Field<'_>)>> = None;
    for header in message.headers() {
        let HeaderName::Other(name) = &header.name else {
            continue;
        };
        let Some(provider) = provider_of(name) else {
            continue;
        };
        let value = raw
            .get(header.offset_start as usize..header.offset_end as usize)
            .unwrap_or_default();
        found
            .get_or_insert_with(|| bumpalo::collections::Vec::new_in(context.scratch))
            .push((provider, Field { name, raw: value }));
    }
    let Some(mut found) = found else {
        return Ok(options);
    };
    // Stable: fields keep their header order within a provider.
    found.sort_by_key(|&(provider, _)| provider);
    let mut rest = &found[..];
    while let Some(&(provider, _)) = rest.first() {
        let end = rest
            .iter()
            .position(|&(p, _)| p != provider)
            .unwrap_or(rest.len());
        let fields: bumpalo::collections::Vec<'_, Field<'_>> =
            bumpalo::collections::Vec::from_iter_in(
                rest[..end].iter().map(|&(_, field)| field),
                context.scratch,
            );
        (PROVIDERS[provider].read)(&fields, &mut options, context)?;
        rest = &rest[end..];
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_name_belongs_to_one_provider() {
        let mut seen = std::collections::BTreeSet::new();
        for provider in PROVIDERS {
            for &name in provider.headers {
                assert_eq!(name, name.to_ascii_lowercase(), "{}", provider.name);
                assert!(seen.insert(name), "{name} claimed twice");
            }
        }
        assert_eq!(provider_of("X-PM-Tag"), provider_of("x-pm-tag"));
        assert!(provider_of("X-PM-Metadata-color").is_some());
        assert!(provider_of("X-PM-Metadat").is_none());
        assert!(provider_of("Subject").is_none());
    }

    #[test]
    fn unfolding_keeps_the_whitespace_after_each_break() {
        let bump = Bump::new();
        let field = Field {
            name: "X-MSYS-API",
            raw: b" {\"campaign_id\" : \"my_awes\r\n   ome\"}\r\n",
        };
        assert_eq!(
            field.unfolded(&bump),
            b"{\"campaign_id\" : \"my_awes   ome\"}"
        );
        let single = Field {
            name: "X-PM-Tag",
            raw: b" welcome \r\n",
        };
        assert_eq!(single.unfolded(&bump), b"welcome");
    }
}
