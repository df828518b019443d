//! Why a provider header cannot be honoured: each refuses the whole message with a
//! precise reply naming the header and the problem (dialects.md, "Bad input"), and no
//! upstream call is made.

use crate::smtp::reply::{self, Reply};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DialectError {
    /// Not JSON: the parser's position (1-based byte) in the unfolded, decoded text.
    InvalidJson {
        header: &'static str,
        at: usize,
    },
    /// `X-SMTPAPI` that is neither JSON nor base64 of JSON.
    NotJsonNorBase64 {
        header: &'static str,
    },
    /// A field of the wrong type (SparkPost's wording). `field` is empty for the value
    /// as a whole.
    WrongType {
        header: &'static str,
        field: String,
        expected: &'static str,
    },
    /// A string over its limit in bytes.
    TooLong {
        header: &'static str,
        field: &'static str,
        limit: usize,
    },
    /// More header recipients than allowed.
    TooManyRecipients {
        header: &'static str,
        fields: &'static str,
        count: usize,
        limit: usize,
    },
    /// A recipient list entry that is not an address.
    BadAddress {
        header: &'static str,
        field: &'static str,
        address: String,
    },
    /// A `sub` list whose length differs from the recipients'.
    SubLength {
        key: String,
        values: usize,
        recipients: usize,
    },
    SendAtPast,
    SendAtTooFar,
    /// A header value over its size limit.
    TooBig {
        header: &'static str,
        limit: &'static str,
    },
    /// `text/x-amp-html` outside `multipart/alternative` beside HTML or text.
    MisplacedAmp,
    /// An idempotency key that is empty, too long or not printable ASCII.
    IdempotencyKey {
        header: &'static str,
    },
    /// A malformed `X-SES-MESSAGE-TAGS` pair.
    SesTag {
        pair: String,
    },
    /// A header whose value is not one of the values it may take.
    BadValue {
        header: &'static str,
        expected: &'static str,
    },
    /// A header family member with nothing after its prefix (`X-PM-Metadata-:`).
    EmptyKey {
        header: &'static str,
    },
    /// A recipient list that must not be empty.
    EmptyList {
        header: &'static str,
        field: &'static str,
    },
}

impl DialectError {
    pub fn reply(&self) -> Reply {
        let text = self.to_string();
        match self {
            Self::TooManyRecipients { .. } => reply::too_many_header_recipients(&text),
            Self::BadAddress { .. } => reply::bad_header_address(&text),
            Self::TooBig { .. } => reply::header_too_big(&text),
            _ => reply::bad_provider_header(&text),
        }
    }
}

impl std::fmt::Display for DialectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidJson { header, at } => write!(f, "{header}: invalid JSON at byte {at}"),
            Self::NotJsonNorBase64 { header } => {
                write!(f, "{header}: neither JSON nor base64 of JSON")
            }
            Self::WrongType {
                header,
                field,
                expected,
            } if field.is_empty() => write!(f, "{header} must be of type '{expected}'"),
            Self::WrongType {
                header,
                field,
                expected,
            } => write!(f, "{header} '{field}' must be of type '{expected}'"),
            Self::TooLong {
                header,
                field,
                limit,
            } => write!(f, "{header} {field} is limited to {limit} bytes"),
            Self::TooManyRecipients {
                header,
                fields,
                count,
                limit,
            } => write!(
                f,
                "Too many recipients: {header} {fields} list {count}, at most {limit}"
            ),
            Self::BadAddress {
                header,
                field,
                address,
            } => write!(f, "{header} '{field}' entry \"{address}\" is not an address"),
            Self::SubLength {
                key,
                values,
                recipients,
            } => write!(
                f,
                "X-SMTPAPI sub '{key}' has {values} values for {recipients} recipients"
            ),
            Self::SendAtPast => f.write_str("X-SMTPAPI send_at is in the past"),
            Self::SendAtTooFar => f.write_str("X-SMTPAPI send_at is more than 72 hours ahead"),
            Self::TooBig { header, limit } => write!(f, "{header} is larger than {limit}"),
            Self::MisplacedAmp => f.write_str(
                "text/x-amp-html part must be inside multipart/alternative beside a text/html or text/plain part",
            ),
            Self::IdempotencyKey { header } => write!(
                f,
                "{header} must be 1 to 256 printable ASCII characters"
            ),
            Self::SesTag { pair } => write!(
                f,
                "X-SES-MESSAGE-TAGS pair \"{pair}\" is not name=value of 1 to 256 [A-Za-z0-9_-]"
            ),
            Self::BadValue { header, expected } => write!(f, "{header} must be {expected}"),
            Self::EmptyKey { header } => write!(f, "{header} header has no key after the prefix"),
            Self::EmptyList { header, field } => {
                write!(f, "{header} '{field}' must list at least one address")
            }
        }
    }
}

impl std::error::Error for DialectError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_carry_the_spec_codes_and_wording() {
        let cases = [
            (
                DialectError::InvalidJson {
                    header: "X-MSYS-API",
                    at: 57,
                },
                "550 5.6.0 X-MSYS-API: invalid JSON at byte 57",
            ),
            (
                DialectError::WrongType {
                    header: "X-MSYS-API",
                    field: "metadata".into(),
                    expected: "json object",
                },
                "550 5.6.0 X-MSYS-API 'metadata' must be of type 'json object'",
            ),
            (
                DialectError::TooLong {
                    header: "X-MSYS-API",
                    field: "campaign_id",
                    limit: 64,
                },
                "550 5.6.0 X-MSYS-API campaign_id is limited to 64 bytes",
            ),
            (
                DialectError::SubLength {
                    key: "%name%".into(),
                    values: 2,
                    recipients: 3,
                },
                "550 5.6.0 X-SMTPAPI sub '%name%' has 2 values for 3 recipients",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(error.reply().to_string(), expected);
        }
        let too_many = DialectError::TooManyRecipients {
            header: "X-SMTPAPI",
            fields: "'to'",
            count: 1001,
            limit: 1000,
        };
        assert!(too_many.reply().to_string().starts_with("550 5.5.3 "));
        let address = DialectError::BadAddress {
            header: "X-SMTPAPI",
            field: "to",
            address: "nobody\r\n".into(),
        };
        let reply = address.reply().to_string();
        assert!(
            reply.starts_with("550 5.1.3 X-SMTPAPI 'to' entry"),
            "{reply}"
        );
        assert!(!reply.contains('\r'), "peer text is sanitised");
        let big = DialectError::TooBig {
            header: "X-SMTPAPI",
            limit: "1 MiB",
        };
        assert!(big.reply().to_string().starts_with("552 5.3.4 "));
    }
}
