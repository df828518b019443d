//! Pure gRPC-over-HTTP/2 pieces: message framing, the `grpc-status` code newtype,
//! status from headers or trailers (a failed call usually arrives Trailers-Only, with
//! the status in the response *headers*), `grpc-message` percent-decoding, and the
//! `grpc-timeout` header. No IO here.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode};
use prost::Message;

/// A gRPC status code (the wire value of `grpc-status`), with named constants like h2's
/// `Reason`: unknown values stay representable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Code(pub u32);

impl Code {
    pub const OK: Code = Code(0);
    pub const CANCELLED: Code = Code(1);
    pub const UNKNOWN: Code = Code(2);
    pub const INVALID_ARGUMENT: Code = Code(3);
    pub const DEADLINE_EXCEEDED: Code = Code(4);
    pub const NOT_FOUND: Code = Code(5);
    pub const ALREADY_EXISTS: Code = Code(6);
    pub const PERMISSION_DENIED: Code = Code(7);
    pub const RESOURCE_EXHAUSTED: Code = Code(8);
    pub const FAILED_PRECONDITION: Code = Code(9);
    pub const ABORTED: Code = Code(10);
    pub const OUT_OF_RANGE: Code = Code(11);
    pub const UNIMPLEMENTED: Code = Code(12);
    pub const INTERNAL: Code = Code(13);
    pub const UNAVAILABLE: Code = Code(14);
    pub const DATA_LOSS: Code = Code(15);
    pub const UNAUTHENTICATED: Code = Code(16);

    pub fn name(self) -> &'static str {
        const NAMES: [&str; 17] = [
            "OK",
            "CANCELLED",
            "UNKNOWN",
            "INVALID_ARGUMENT",
            "DEADLINE_EXCEEDED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED",
            "FAILED_PRECONDITION",
            "ABORTED",
            "OUT_OF_RANGE",
            "UNIMPLEMENTED",
            "INTERNAL",
            "UNAVAILABLE",
            "DATA_LOSS",
            "UNAUTHENTICATED",
        ];
        NAMES.get(self.0 as usize).copied().unwrap_or("UNKNOWN")
    }

    /// gRPC's mapping for responses that are not gRPC at all (a proxy's error page).
    pub fn from_http(status: StatusCode) -> Code {
        match status.as_u16() {
            400 => Code::INTERNAL,
            401 => Code::UNAUTHENTICATED,
            403 => Code::PERMISSION_DENIED,
            404 => Code::UNIMPLEMENTED,
            429 | 502 | 503 | 504 => Code::UNAVAILABLE,
            _ => Code::UNKNOWN,
        }
    }
}

/// A call's final status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    /// Percent-decoded `grpc-message` (may be empty).
    pub message: String,
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The status carried by a header block, if it carries one.
    pub fn from_headers(headers: &HeaderMap) -> Option<Status> {
        let code = headers.get("grpc-status")?;
        let code = std::str::from_utf8(code.as_bytes())
            .ok()
            .and_then(|c| c.trim().parse().ok())
            .map_or(Code::UNKNOWN, Code);
        let message = headers
            .get("grpc-message")
            .map(|m| percent_decode(m.as_bytes()))
            .unwrap_or_default();
        Some(Status { code, message })
    }
}

/// Longest message we accept back from the upstream (a `NotifyResponse` is tiny).
pub const MAX_RESPONSE: usize = 64 * 1024;

/// Frames a message: compressed-flag 0, big-endian length, protobuf bytes, encoded
/// straight into one buffer.
pub fn encode<M: Message>(message: &M) -> Bytes {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(len as u32);
    // Cannot fail: the buffer has exactly the capacity the message needs.
    let _ = message.encode(&mut buf);
    buf.freeze()
}

#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    Compressed,
    TooLarge,
    Truncated,
    Protobuf,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Compressed => "compressed response without negotiated encoding",
            Self::TooLarge => "response message too large",
            Self::Truncated => "truncated response message",
            Self::Protobuf => "undecodable response message",
        })
    }
}

impl std::error::Error for DecodeError {}

/// Decodes the first framed message of a body (unary calls carry one), refusing a
/// declared length over `max`.
pub fn decode<M: Message + Default>(body: &[u8], max: usize) -> Result<M, DecodeError> {
    let Some(header) = body.get(..5) else {
        return Err(DecodeError::Truncated);
    };
    if header[0] != 0 {
        return Err(DecodeError::Compressed);
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > max {
        return Err(DecodeError::TooLarge);
    }
    let payload = body.get(5..5 + len).ok_or(DecodeError::Truncated)?;
    M::decode(payload).map_err(|_| DecodeError::Protobuf)
}

/// Length of the first frame declared by `body`'s header, when the header is complete.
pub fn frame_len(body: &[u8]) -> Option<usize> {
    let header = body.get(..5)?;
    Some(5 + u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize)
}

/// The `grpc-timeout` header: at most 8 digits, in the coarsest unit that keeps precision.
pub fn timeout_header(timeout: Duration) -> HeaderValue {
    let millis = timeout.as_millis();
    let value = if millis < 100_000_000 {
        format!("{millis}m")
    } else {
        format!("{}S", timeout.as_secs().min(99_999_999))
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("99999999S"))
}

/// Encodes a `grpc-message`: bytes outside printable ASCII, and `%`, as `%XX`.
pub fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (gRPC's `grpc-message` encoding); invalid UTF-8 is replaced.
pub fn percent_decode(input: &[u8]) -> String {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if input[i] == b'%'
            && i + 2 < input.len()
            && let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::NotifyResponse;

    #[test]
    fn frame_round_trip() {
        let msg = NotifyResponse {
            message_code: "ABC-123".into(),
        };
        let framed = encode(&msg);
        assert_eq!(framed[0], 0);
        assert_eq!(frame_len(&framed), Some(framed.len()));
        assert_eq!(decode::<NotifyResponse>(&framed, MAX_RESPONSE), Ok(msg));
        assert_eq!(
            decode::<NotifyResponse>(&framed[..3], MAX_RESPONSE),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            decode::<NotifyResponse>(&framed[..framed.len() - 1], MAX_RESPONSE),
            Err(DecodeError::Truncated)
        );
        let mut compressed = framed.to_vec();
        compressed[0] = 1;
        assert_eq!(
            decode::<NotifyResponse>(&compressed, MAX_RESPONSE),
            Err(DecodeError::Compressed)
        );
    }

    #[test]
    fn status_from_trailers_only_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("16"));
        headers.insert(
            "grpc-message",
            HeaderValue::from_static("bad%20token%3A%20%E2%9C%97"),
        );
        let status = Status::from_headers(&headers).expect("status present");
        assert_eq!(
            status,
            Status::new(Code::UNAUTHENTICATED, "bad token: \u{2717}")
        );
        assert_eq!(Status::from_headers(&HeaderMap::new()), None);
        headers.insert("grpc-status", HeaderValue::from_static("banana"));
        assert_eq!(
            Status::from_headers(&headers).map(|s| s.code),
            Some(Code::UNKNOWN)
        );
    }

    #[test]
    fn percent_encoding_round_trips() {
        let text = "50% off \u{2717}\r\n";
        assert_eq!(percent_encode(text), "50%25 off %E2%9C%97%0D%0A");
        assert_eq!(percent_decode(percent_encode(text).as_bytes()), text);
    }

    #[test]
    fn percent_decoding_edge_cases() {
        assert_eq!(percent_decode(b"100%"), "100%");
        assert_eq!(percent_decode(b"%4"), "%4");
        assert_eq!(percent_decode(b"%zz%41"), "%zzA");
    }

    #[test]
    fn timeout_header_units() {
        assert_eq!(timeout_header(Duration::from_millis(500)), "500m");
        assert_eq!(timeout_header(Duration::from_secs(30)), "30000m");
        assert_eq!(timeout_header(Duration::from_secs(10_000_000)), "10000000S");
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..2000usize {
            let body: Vec<u8> = (0..len % 97)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode::<NotifyResponse>(&body, MAX_RESPONSE);
            let _ = decode::<crate::notify::NotifyRequest>(&body, MAX_RESPONSE);
        }
    }

    #[test]
    fn http_status_mapping() {
        assert_eq!(
            Code::from_http(StatusCode::SERVICE_UNAVAILABLE),
            Code::UNAVAILABLE
        );
        assert_eq!(
            Code::from_http(StatusCode::UNAUTHORIZED),
            Code::UNAUTHENTICATED
        );
        assert_eq!(Code::from_http(StatusCode::IM_A_TEAPOT), Code::UNKNOWN);
    }
}
