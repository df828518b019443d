//! Charset labels as real senders write them, and text decoding with them.
//!
//! mail-parser knows the WHATWG labels and a few more; senders also write Python's
//! (`eucgb2312_cn`, `big5_tw`, `latin_1`, `cp949`…), and mail-parser decodes an unknown
//! label as UTF-8, i.e. as mojibake. `lookup` normalizes a label as Python does and finds
//! it among every alias of Python's codec registry (`generated.rs`, written from it by
//! `tests/tools/gen_charsets.py`); `needs_redecoding` says when mail-parser's text for a
//! label is wrong and ours must replace it. Decoding goes through encoding_rs (the
//! WHATWG encodings), plus the few Cyrillic and Korean/Chinese codecs it lacks.

#[rustfmt::skip]
mod generated;

use std::borrow::Cow;

use encoding_rs::Encoding;

/// How to turn bytes of one charset into text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoder {
    /// A WHATWG encoding.
    Whatwg(&'static Encoding),
    /// A single-byte code page: ASCII below 0x80, this table above.
    Table(&'static [char; 128]),
    /// HZ (RFC 1843): GB2312 inside `~{ … ~}` in 7-bit text.
    Hz,
    /// ISO-2022-KR (RFC 1557): KS X 1001 between SO and SI.
    Iso2022Kr,
    /// Korean Johab (KS X 1001 annex 3).
    Johab,
}

/// Longest label considered; real ones are far shorter.
const MAX_LABEL: usize = 48;

/// The decoder for a label, if it names a charset we know under any of its aliases.
pub fn lookup(label: &str) -> Option<Decoder> {
    let mut buf = [0u8; MAX_LABEL];
    let normalized = normalize(label, &mut buf)?;
    if let Ok(i) = generated::ALIASES.binary_search_by(|(alias, _)| alias.cmp(&normalized)) {
        return Some(generated::ALIASES[i].1);
    }
    Encoding::for_label(label.trim().as_bytes()).map(Decoder::Whatwg)
}

/// Whether mail-parser decoded text of this label wrongly (it does not know the label
/// and fell back to UTF-8) while we know a better decoder.
pub fn needs_redecoding(label: &str) -> Option<Decoder> {
    // The labels nearly every message carries, read right by mail-parser.
    if ["utf-8", "us-ascii"]
        .iter()
        .any(|known| label.eq_ignore_ascii_case(known))
    {
        return None;
    }
    if mail_parser::decoders::charsets::map::charset_decoder(label.as_bytes()).is_some() {
        return None;
    }
    lookup(label).filter(|d| *d != Decoder::Whatwg(encoding_rs::UTF_8))
}

/// Python's `normalize_encoding`, lower-cased: runs of characters other than ASCII
/// letters, digits and `.` become one `_`, none leading or trailing.
fn normalize<'b>(label: &str, buf: &'b mut [u8; MAX_LABEL]) -> Option<&'b str> {
    let mut len = 0;
    let mut pending_underscore = false;
    for b in label.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' {
            if pending_underscore && len > 0 {
                *buf.get_mut(len)? = b'_';
                len += 1;
            }
            pending_underscore = false;
            *buf.get_mut(len)? = b.to_ascii_lowercase();
            len += 1;
        } else {
            pending_underscore = true;
        }
    }
    std::str::from_utf8(&buf[..len]).ok()
}

impl Decoder {
    pub fn decode(self, bytes: &[u8]) -> String {
        match self {
            Self::Whatwg(encoding) => decode_via(encoding, bytes),
            Self::Table(table) => bytes
                .iter()
                .map(|&b| match b.checked_sub(0x80) {
                    Some(high) => table[usize::from(high)],
                    None => char::from(b),
                })
                .collect(),
            Self::Hz => decode_via(encoding_rs::GBK, &hz_to_euc(bytes)),
            Self::Iso2022Kr => decode_via(encoding_rs::EUC_KR, &iso2022kr_to_euc(bytes)),
            Self::Johab => johab(bytes),
        }
    }
}

fn decode_via(encoding: &'static Encoding, bytes: &[u8]) -> String {
    encoding.decode_without_bom_handling(bytes).0.into_owned()
}

/// Decodes `bytes` labelled `label`: ours where mail-parser would be wrong, else as
/// mail-parser does (its decoder, or UTF-8).
pub fn decode<'a>(label: &str, bytes: &'a [u8]) -> Cow<'a, str> {
    if let Some(decoder) = lookup(label)
        && decoder != Decoder::Whatwg(encoding_rs::UTF_8)
    {
        return Cow::Owned(decoder.decode(bytes));
    }
    String::from_utf8_lossy(bytes)
}

/// HZ to EUC-CN: `~{` enters GB mode, `~}` leaves it, `~~` is `~`, `~` + newline is a
/// line continuation; in GB mode byte pairs are GB2312 with the high bit cleared.
fn hz_to_euc(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut gb = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'~' {
            match bytes.get(i + 1) {
                Some(b'{') => gb = true,
                Some(b'}') => gb = false,
                Some(b'~') => out.push(b'~'),
                Some(b'\n') => {}
                _ => out.push(b'~'),
            }
            i += 2;
            continue;
        }
        if gb && (0x21..=0x7e).contains(&b) {
            out.push(b | 0x80);
            out.push(bytes.get(i + 1).map_or(0x80, |&c| c | 0x80));
            i += 2;
        } else {
            if b == b'\n' {
                gb = false;
            }
            out.push(b);
            i += 1;
        }
    }
    out
}

/// ISO-2022-KR to EUC-KR: drops the `ESC $ ) C` designation; between SO and SI bytes
/// are KS X 1001 with the high bit cleared. A line ends the shifted state.
fn iso2022kr_to_euc(bytes: &[u8]) -> Vec<u8> {
    const DESIGNATION: &[u8] = b"\x1b$)C";
    let mut out = Vec::with_capacity(bytes.len());
    let mut shifted = false;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(DESIGNATION) {
            i += DESIGNATION.len();
            continue;
        }
        match bytes[i] {
            0x0e => shifted = true,
            0x0f => shifted = false,
            b @ 0x21..=0x7e if shifted => out.push(b | 0x80),
            b => {
                if b == b'\n' {
                    shifted = false;
                }
                out.push(b);
            }
        }
        i += 1;
    }
    out
}

/// Korean Johab: ASCII below 0x80; two-byte Hangul with 5-bit initial, medial and final
/// indices (lead bytes 0x84-0xD3); symbols and Hanja (0xD9-0xF9) map onto KS X 1001.
/// Mirrors CPython's `_codecs_kr` decoder; invalid pairs become U+FFFD.
fn johab(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c < 0x80 {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        let Some(&c2) = bytes.get(i + 1) else {
            out.push(char::REPLACEMENT_CHARACTER);
            break;
        };
        let decoded = if c < 0xd8 {
            johab_hangul(u16::from_be_bytes([c, c2]))
        } else {
            johab_symbol(c, c2)
        };
        match decoded {
            Some(ch) => {
                out.push(ch);
                i += 2;
            }
            None => {
                out.push(char::REPLACEMENT_CHARACTER);
                i += 1;
            }
        }
    }
    out
}

fn johab_hangul(code: u16) -> Option<char> {
    const FILL: u8 = 254;
    const NONE: u8 = 255;
    let (c, j, k) = (
        usize::from((code >> 10) & 31),
        usize::from((code >> 5) & 31),
        usize::from(code & 31),
    );
    let (cho, jung, jong) = (
        generated::JOHAB_CHO[c],
        generated::JOHAB_JUNG[j],
        generated::JOHAB_JONG[k],
    );
    if cho == NONE || jung == NONE || jong == NONE {
        return None;
    }
    let jamo = |cp: u16| char::from_u32(u32::from(cp)).filter(|_| cp != 0);
    match (cho == FILL, jung == FILL, jong == FILL) {
        (true, true, true) => Some('\u{3000}'),
        (true, true, false) => jamo(generated::JOHAB_JONG_JAMO[k]),
        (true, false, true) => jamo(generated::JOHAB_JUNG_JAMO[j]),
        (false, true, true) => jamo(generated::JOHAB_CHO_JAMO[c]),
        (false, false, _) => {
            let jong = if jong == FILL { 0 } else { u32::from(jong) + 1 };
            char::from_u32(0xac00 + u32::from(cho) * 588 + u32::from(jung) * 28 + jong)
        }
        _ => None,
    }
}

fn johab_symbol(c: u8, c2: u8) -> Option<char> {
    if c == 0xdf
        || c > 0xf9
        || c == 0xd8
        || c2 < 0x31
        || (0x80..0x91).contains(&c2)
        || c2 & 0x7f == 0x7f
        || (c == 0xda && (0xa1..=0xd3).contains(&c2))
    {
        return None;
    }
    let t1 = if c < 0xe0 {
        2 * (u16::from(c) - 0xd9)
    } else {
        2 * u16::from(c) - 0x197
    };
    let t2 = if c2 < 0x91 {
        u16::from(c2) - 0x31
    } else {
        u16::from(c2) - 0x43
    };
    let t1 = t1 + u16::from(t2 >= 0x5e) + 0x21;
    let t2 = (if t2 < 0x5e { t2 } else { t2 - 0x5e }) + 0x21;
    let euc = [(t1 as u8) | 0x80, (t2 as u8) | 0x80];
    let (text, had_errors) = encoding_rs::EUC_KR.decode_without_bom_handling(&euc);
    let mut chars = text.chars();
    match (had_errors, chars.next(), chars.next()) {
        (false, Some(ch), None) => Some(ch),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_normalized_as_python_does() {
        let mut buf = [0u8; MAX_LABEL];
        assert_eq!(
            normalize("KS_C_5601-1987", &mut buf),
            Some("ks_c_5601_1987")
        );
        assert_eq!(normalize(" x--gbk ", &mut buf), Some("x_gbk"));
        assert_eq!(
            normalize("ANSI_X3.4-1968", &mut buf),
            Some("ansi_x3.4_1968")
        );
        assert_eq!(normalize(&"a".repeat(MAX_LABEL + 1), &mut buf), None);
    }

    #[test]
    fn senders_labels_find_their_charsets() {
        let gbk = Some(Decoder::Whatwg(encoding_rs::GBK));
        for label in [
            "eucgb2312_cn",
            "GB2312",
            "x-gbk",
            "cp936",
            "ms936",
            "EUC-CN",
        ] {
            assert_eq!(lookup(label), gbk, "{label}");
        }
        let whatwg = |e| Some(Decoder::Whatwg(e));
        assert_eq!(lookup("big5_tw"), whatwg(encoding_rs::BIG5));
        assert_eq!(lookup("ks_c_5601-1987"), whatwg(encoding_rs::EUC_KR));
        assert_eq!(lookup("latin_1"), whatwg(encoding_rs::WINDOWS_1252));
        assert_eq!(lookup("sjis"), whatwg(encoding_rs::SHIFT_JIS));
        assert_eq!(lookup("x-sjis"), whatwg(encoding_rs::SHIFT_JIS));
        assert_eq!(lookup("utf8"), whatwg(encoding_rs::UTF_8));
        assert_eq!(lookup("no-such-charset"), None);
    }

    #[test]
    fn the_alias_table_is_sorted() {
        assert!(generated::ALIASES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn redecoding_only_where_mail_parser_is_wrong() {
        assert_eq!(needs_redecoding("gb2312"), None, "mail-parser knows it");
        assert_eq!(needs_redecoding("utf8"), None, "its fallback is UTF-8");
        assert_eq!(
            needs_redecoding("eucgb2312_cn"),
            Some(Decoder::Whatwg(encoding_rs::GBK))
        );
        assert_eq!(needs_redecoding("unknown"), None);
    }

    #[test]
    fn seven_bit_chinese_and_korean() {
        // Python: "中文".encode("hz"), "한국어".encode("iso2022_kr").
        assert_eq!(Decoder::Hz.decode(b"~{VPND~}"), "中文");
        assert_eq!(Decoder::Hz.decode(b"a~~b~\nc"), "a~bc");
        assert_eq!(
            Decoder::Iso2022Kr.decode(b"\x1b$)C\x0eGQ19>n\x0f"),
            "한국어"
        );
        // Python: "한국어".encode("johab").
        assert_eq!(Decoder::Johab.decode(b"\xd0\x65\x8a\x82\xb4\xe1"), "한국어");
    }
}
