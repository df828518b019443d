//! JSON header values (`X-MSYS-API`, `X-SMTPAPI`, Mailgun's and Mailjet's variables):
//! parsed with serde_json on the unfolded header bytes, then read field by field with
//! SparkPost's wording for a field of the wrong type.

use serde_json::{Map, Value};

use super::DialectError;
use crate::mime::encoded_word;

/// Reads the fields of one header's JSON, naming that header in every error.
#[derive(Clone, Copy)]
pub struct Json {
    pub header: &'static str,
}

impl Json {
    /// The value as a JSON object.
    pub fn object(self, text: &[u8]) -> Result<Map<String, Value>, DialectError> {
        match serde_json::from_slice::<Value>(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(self.wrong("", "json object")),
            Err(error) => Err(DialectError::InvalidJson {
                header: self.header,
                at: position(text, &error),
            }),
        }
    }

    pub fn wrong(self, field: &str, expected: &'static str) -> DialectError {
        DialectError::WrongType {
            header: self.header,
            field: field.to_owned(),
            expected,
        }
    }

    pub fn str<'v>(self, field: &str, value: &'v Value) -> Result<&'v str, DialectError> {
        value.as_str().ok_or_else(|| self.wrong(field, "string"))
    }

    pub fn bool(self, field: &str, value: &Value) -> Result<bool, DialectError> {
        value.as_bool().ok_or_else(|| self.wrong(field, "boolean"))
    }

    pub fn integer(self, field: &str, value: &Value) -> Result<i64, DialectError> {
        value.as_i64().ok_or_else(|| self.wrong(field, "integer"))
    }

    pub fn object_in<'v>(
        self,
        field: &str,
        value: &'v Value,
    ) -> Result<&'v Map<String, Value>, DialectError> {
        value
            .as_object()
            .ok_or_else(|| self.wrong(field, "json object"))
    }

    pub fn array<'v>(self, field: &str, value: &'v Value) -> Result<&'v [Value], DialectError> {
        value
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.wrong(field, "array"))
    }

    /// An array of strings, RFC 2047 words decoded.
    pub fn decoded_strings(self, field: &str, value: &Value) -> Result<Vec<String>, DialectError> {
        let items = value
            .as_array()
            .ok_or_else(|| self.wrong(field, "array of strings"))?;
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(|s| encoded_word::decode(s).into_owned())
                    .ok_or_else(|| self.wrong(field, "array of strings"))
            })
            .collect()
    }

    /// A placeholder or substitution value as text: a string as is, a number or a
    /// boolean as its JSON text (`1989.0`, `true`).
    pub fn scalar_text(self, field: &str, value: &Value) -> Result<String, DialectError> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(_) | Value::Bool(_) => Ok(value.to_string()),
            _ => Err(self.wrong(field, "string, number or boolean")),
        }
    }

    /// An object of placeholders: key to `scalar_text`.
    pub fn placeholders(
        self,
        field: &str,
        value: &Value,
    ) -> Result<Vec<(String, String)>, DialectError> {
        let map = self.object_in(field, value)?;
        map.iter()
            .map(|(key, v)| {
                let text = self.scalar_text(&join(field, key), v)?;
                Ok((key.clone(), text))
            })
            .collect()
    }
}

/// `parent.child`, or `child` at the top.
pub fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

/// The 1-based byte position of a parse error in `text` (serde_json gives a line and a
/// column, both 1-based).
fn position(text: &[u8], error: &serde_json::Error) -> usize {
    let line_start: usize = text
        .split_inclusive(|&b| b == b'\n')
        .take(error.line().saturating_sub(1))
        .map(<[u8]>::len)
        .sum();
    line_start + error.column()
}

/// String values, at any depth, with their RFC 2047 words decoded (SparkPost allows
/// them in `metadata`).
pub fn decode_words(value: Value) -> Value {
    match value {
        Value::String(s) => match encoded_word::decode(&s) {
            std::borrow::Cow::Borrowed(_) => Value::String(s),
            std::borrow::Cow::Owned(decoded) => Value::String(decoded),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(decode_words).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, decode_words(v))).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const J: Json = Json {
        header: "X-MSYS-API",
    };

    #[test]
    fn invalid_json_names_the_byte() {
        let err = J.object(br#"{"a": 1 "b": 2}"#).unwrap_err();
        assert_eq!(
            err,
            DialectError::InvalidJson {
                header: "X-MSYS-API",
                at: 9
            }
        );
        let err = J.object(b"{\"a\": 1,\n \"b\" 2}").unwrap_err();
        assert_eq!(
            err,
            DialectError::InvalidJson {
                header: "X-MSYS-API",
                at: 15
            }
        );
        assert_eq!(J.object(b"[1]").unwrap_err(), J.wrong("", "json object"));
    }

    #[test]
    fn scalars_become_text_as_json_writes_them() {
        let v: Value = serde_json::from_str(r#"["a", 1989.0, 3, true]"#).expect("json");
        let texts: Vec<String> = v
            .as_array()
            .expect("array")
            .iter()
            .map(|x| J.scalar_text("f", x).expect("scalar"))
            .collect();
        assert_eq!(texts, ["a", "1989.0", "3", "true"]);
        assert!(J.scalar_text("f", &Value::Null).is_err());
    }
}
