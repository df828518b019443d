//! The PROXY protocol header (HAProxy's v1 text and v2 binary forms) that a trusted
//! load balancer sends before the client's first byte, naming the client's address.
//! Pure: bytes in, a verdict out; the `ppp` crate parses both versions, this module
//! bounds the sizes and decides what each form means for the gateway.

use std::net::SocketAddr;

use ppp::{v1, v2};

/// The most bytes a header may take: v1 is at most 107 bytes by its specification;
/// v2 is 16 bytes and the length its header gives, capped here (addresses take at
/// most 216 bytes; the rest is TLVs, of which a balancer sends a few).
pub const MAX_V1: usize = 107;
pub const MAX_V2: usize = 1024;

/// What a complete header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The client's address as the balancer saw it.
    Client(SocketAddr),
    /// The balancer speaks for itself (v2 `LOCAL`, a health check; v1 `UNKNOWN`; an
    /// unspecified or UNIX address): the connection's own peer stands.
    Peer,
}

/// The verdict on the bytes received so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parse {
    /// A whole header of `length` bytes; what follows it is the client's.
    Header {
        source: Source,
        length: usize,
    },
    /// A header so far: wait for more bytes.
    Incomplete,
    Invalid(Invalid),
}

/// Why the connection is refused (closed without a banner).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// The bytes are not a PROXY header.
    Missing,
    Malformed(String),
    TooLong,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("no PROXY header"),
            Self::Malformed(why) => write!(f, "malformed PROXY header: {why}"),
            Self::TooLong => f.write_str("PROXY header too long"),
        }
    }
}

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// Reads a header from the start of `input` (the bytes received so far).
pub fn parse(input: &[u8]) -> Parse {
    if starts_like(input, V2_SIGNATURE) {
        parse_v2(input)
    } else if starts_like(input, V1_PREFIX) {
        parse_v1(input)
    } else {
        Parse::Invalid(Invalid::Missing)
    }
}

/// Whether `input` is, so far, a prefix of `signature` or starts with it.
fn starts_like(input: &[u8], signature: &[u8]) -> bool {
    let n = input.len().min(signature.len());
    input[..n] == signature[..n]
}

fn parse_v1(input: &[u8]) -> Parse {
    let Some(end) = memchr::memchr(b'\n', &input[..input.len().min(MAX_V1)]) else {
        return if input.len() >= MAX_V1 {
            Parse::Invalid(Invalid::TooLong)
        } else {
            Parse::Incomplete
        };
    };
    let line = &input[..=end];
    match v1::Header::try_from(line) {
        Ok(header) => Parse::Header {
            source: match header.addresses {
                v1::Addresses::Tcp4(a) => Source::Client((a.source_address, a.source_port).into()),
                v1::Addresses::Tcp6(a) => Source::Client((a.source_address, a.source_port).into()),
                v1::Addresses::Unknown => Source::Peer,
            },
            length: line.len(),
        },
        Err(error) => Parse::Invalid(Invalid::Malformed(format!("{error:?}"))),
    }
}

fn parse_v2(input: &[u8]) -> Parse {
    // Bytes 14..16 give the length of what follows the 16-byte fixed part.
    if let Some(len) = input.get(14..16) {
        let length = 16 + usize::from(u16::from_be_bytes([len[0], len[1]]));
        if length > MAX_V2 {
            return Parse::Invalid(Invalid::TooLong);
        }
        if input.len() < length {
            return Parse::Incomplete;
        }
        // All `length` bytes are here: any error is final.
        return match v2::Header::try_from(&input[..length]) {
            Ok(header) => Parse::Header {
                source: match (header.command, header.addresses) {
                    (v2::Command::Local, _) => Source::Peer,
                    (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
                        Source::Client((a.source_address, a.source_port).into())
                    }
                    (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
                        Source::Client((a.source_address, a.source_port).into())
                    }
                    (v2::Command::Proxy, _) => Source::Peer,
                },
                length,
            },
            Err(error) => Parse::Invalid(Invalid::Malformed(format!("{error:?}"))),
        };
    }
    Parse::Incomplete
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(text: &str) -> Source {
        Source::Client(text.parse().expect("socket address"))
    }

    fn v2_header(command: v2::Command, addresses: impl Into<v2::Addresses>) -> Vec<u8> {
        v2::Builder::with_addresses(v2::Version::Two | command, v2::Protocol::Stream, addresses)
            .build()
            .expect("header")
    }

    #[test]
    fn v1_tcp4_tcp6_and_unknown() {
        let line = b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 587\r\nEHLO";
        assert_eq!(
            parse(line),
            Parse::Header {
                source: client("203.0.113.7:5555"),
                length: line.len() - 4
            }
        );
        let line = b"PROXY TCP6 2001:db8::7 2001:db8::1 5555 587\r\n";
        assert_eq!(
            parse(line),
            Parse::Header {
                source: client("[2001:db8::7]:5555"),
                length: line.len()
            }
        );
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Parse::Header {
                source: Source::Peer,
                length: 15
            }
        );
    }

    #[test]
    fn v2_proxy_and_local() {
        let src: SocketAddr = "203.0.113.7:5555".parse().expect("addr");
        let dst: SocketAddr = "10.0.0.1:465".parse().expect("addr");
        let header = v2_header(v2::Command::Proxy, (src, dst));
        let mut wire = header.clone();
        wire.extend_from_slice(b"\x16\x03\x01"); // a ClientHello follows
        assert_eq!(
            parse(&wire),
            Parse::Header {
                source: Source::Client(src),
                length: header.len()
            }
        );
        let src6: SocketAddr = "[2001:db8::7]:5555".parse().expect("addr");
        let dst6: SocketAddr = "[2001:db8::1]:465".parse().expect("addr");
        let header = v2_header(v2::Command::Proxy, (src6, dst6));
        assert!(
            matches!(parse(&header), Parse::Header { source, .. } if source == Source::Client(src6))
        );
        let local = v2_header(v2::Command::Local, v2::Addresses::Unspecified);
        assert_eq!(
            parse(&local),
            Parse::Header {
                source: Source::Peer,
                length: local.len()
            }
        );
    }

    #[test]
    fn partial_headers_wait_for_more() {
        let line = b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 587\r\n";
        for cut in 1..line.len() {
            assert_eq!(parse(&line[..cut]), Parse::Incomplete, "{cut}");
        }
        let src: SocketAddr = "203.0.113.7:5555".parse().expect("addr");
        let header = v2_header(v2::Command::Proxy, (src, src));
        for cut in 1..header.len() {
            assert_eq!(parse(&header[..cut]), Parse::Incomplete, "{cut}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(parse(b"EHLO client\r\n"), Parse::Invalid(Invalid::Missing));
        assert_eq!(parse(b"\x16\x03\x01\x02"), Parse::Invalid(Invalid::Missing));
        assert!(matches!(
            parse(b"PROXY TCP4 garbage here 1 2\r\n"),
            Parse::Invalid(Invalid::Malformed(_))
        ));
        assert!(matches!(
            parse(b"PROXY TCP4 203.0.113.7 10.0.0.1 5555\r\n"),
            Parse::Invalid(Invalid::Malformed(_))
        ));
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
        assert_eq!(parse(&long), Parse::Invalid(Invalid::TooLong));
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0x08, 0x00]); // PROXY, TCP4, 2048 bytes
        assert_eq!(parse(&huge), Parse::Invalid(Invalid::TooLong));
        let mut bad_version = V2_SIGNATURE.to_vec();
        bad_version.extend_from_slice(&[0x31, 0x11, 0x00, 0x0c]);
        bad_version.extend_from_slice(&[0; 12]);
        assert!(matches!(
            parse(&bad_version),
            Parse::Invalid(Invalid::Malformed(_))
        ));
    }
}
