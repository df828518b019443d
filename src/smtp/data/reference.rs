//! A deliberately naive model of DATA reception, for differential tests and fuzzing:
//! the message ends at the first `CRLF.CRLF` (the DATA line's own CRLF counts as the
//! first CRLF), its lines are split on CRLF and unstuffed one by one, and any CR not
//! followed by LF or LF not preceded by CR is a bare line ending. Slow and obviously
//! right; `Receiver` must agree with it (in `BareLf::Reject` mode).

/// What the model expects of one input.
#[derive(Debug, PartialEq, Eq)]
pub struct Expected {
    /// Bytes consumed up to and including the terminating `.CRLF`; `None` if the input
    /// holds no terminator.
    pub end: Option<usize>,
    /// The unstuffed body, when the message is complete.
    pub body: Vec<u8>,
    /// The message has a bare CR or LF.
    pub bare: bool,
}

/// Feeds `input` to `rx` in pieces of `chunk` bytes, as a socket would deliver it;
/// returns where the message ended, counted from the start of `input`.
pub fn feed_in_chunks(
    rx: &mut super::Receiver,
    input: &[u8],
    chunk: usize,
    body: &mut Vec<u8>,
) -> Option<usize> {
    let mut offset = 0;
    for piece in input.chunks(chunk.max(1)) {
        if let Some(n) = rx.feed(piece, body) {
            return Some(offset + n);
        }
        offset += piece.len();
    }
    None
}

pub fn expect(input: &[u8]) -> Expected {
    let mut framed = b"\r\n".to_vec();
    framed.extend_from_slice(input);
    let end = framed.windows(5).position(|w| w == b"\r\n.\r\n");
    // The message text: everything before the final `.CRLF`, its last CRLF included.
    let text = match end {
        Some(i) => &framed[2..i + 2],
        None => &framed[2..],
    };
    let bare = text.iter().enumerate().any(|(i, &b)| {
        (b == b'\r' && text.get(i + 1) != Some(&b'\n'))
            || (b == b'\n' && (i == 0 || text[i - 1] != b'\r'))
    });
    let mut body = Vec::with_capacity(text.len());
    for line in text.split_inclusive(|&b| b == b'\n') {
        body.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    Expected {
        end: end.map(|i| i + 3),
        body,
        bare,
    }
}
