//! The two mappings between dime's envelope [`Message`] and RFC 5322 bytes: a legacy message
//! keeps its original bytes in one display part; a native message is rendered as MIME with
//! 7-bit headers, deterministically (the server caches sizes).

use dime_envelope::limits::{HEADER_VALUE_MAX_LEN, PART_MAX_LEN};
use dime_envelope::{DecodeError, Headers, Message, Part, PartInfo, PartKind};
use zeroize::Zeroizing;

use super::codec;
use super::header;

/// The content type of the single display part of a legacy message: its data is the
/// original RFC 5322 message, served byte for byte.
pub const LEGACY_CONTENT_TYPE: &str = "message/rfc822; x-dime-original=1";

/// The header fields a legacy message copies to its common header chunk (`spec/envelope.md`
/// §8.3); Message-ID goes to the other chunk.
const COMMON: [&str; 8] =
    ["From", "To", "Cc", "Date", "Subject", "Reply-To", "In-Reply-To", "References"];

/// Why raw bytes cannot be sealed as a legacy message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyError {
    /// The message is longer than a part may be (`PART_MAX_LEN`).
    #[error("message exceeds the part size limit ({PART_MAX_LEN} octets)")]
    TooLarge,
    /// A header field was refused after cleaning (should not happen).
    #[error("header field refused: {0}")]
    Header(DecodeError),
}

/// Maps an RFC 5322 message (an IMAP APPEND, a message from the SMTP bridge) to a legacy
/// [`Message`]: one display part of type [`LEGACY_CONTENT_TYPE`] holding `raw` unchanged, and
/// copies of the common fields (first occurrence, unfolded, cleaned, cut to 65535 octets) and
/// of Message-ID in the header chunks. Never a Bcc field.
pub fn legacy_message(raw: &[u8]) -> Result<Message, LegacyError> {
    if raw.len() as u64 > PART_MAX_LEN {
        return Err(LegacyError::TooLarge);
    }
    let (h, _) = header::split_header(raw, 0, raw.len());
    let fields = header::fields(raw, h);
    let mut common = Headers::new();
    let mut other = Headers::new();
    for (list, names) in [(&mut common, &COMMON[..]), (&mut other, &["Message-ID"][..])] {
        for name in names {
            if let Some(f) = header::find(raw, &fields, name) {
                list.push(name, &clean_value(&raw[f.value.clone()]))
                    .map_err(LegacyError::Header)?;
            }
        }
    }
    Ok(Message {
        common_headers: common,
        other_headers: other,
        parts: vec![Part {
            kind: PartKind::Display,
            info: PartInfo { content_type: LEGACY_CONTENT_TYPE.into(), filename: String::new() },
            data: raw.to_vec(),
        }],
    })
}

/// A header value as `Headers::push` accepts it: unfolded, invalid UTF-8 and control
/// characters other than HTAB replaced by U+FFFD, cut at a character boundary to 65535 octets.
fn clean_value(v: &[u8]) -> String {
    let unfolded: Vec<u8> = v.iter().copied().filter(|&b| b != b'\r' && b != b'\n').collect();
    let mut s: String = String::from_utf8_lossy(&unfolded)
        .chars()
        .map(|c| if c.is_control() && c != '\t' { '\u{fffd}' } else { c })
        .collect();
    if s.len() > HEADER_VALUE_MAX_LEN {
        let mut cut = HEADER_VALUE_MAX_LEN;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn is_legacy(m: &Message) -> bool {
    matches!(&m.parts[..], [p] if p.kind == PartKind::Display && p.info.content_type == LEGACY_CONTENT_TYPE)
}

/// Renders a message as RFC 5322 bytes: a legacy message's original bytes; otherwise its
/// header fields (folded, non-ASCII values RFC 2047-encoded), `MIME-Version: 1.0`, and its
/// one display part, or a multipart/mixed of its parts, each with the transfer encoding its
/// data needs. Deterministic: the same message always renders to the same bytes.
pub fn render_message(m: &Message) -> Zeroizing<Vec<u8>> {
    if is_legacy(m) {
        return Zeroizing::new(m.parts[0].data.clone());
    }
    let mut out = Zeroizing::new(Vec::new());
    for (name, value) in m.common_headers.fields().iter().chain(m.other_headers.fields()) {
        let skip =
            ["Bcc", "Resent-Bcc", "MIME-Version"].iter().any(|n| name.eq_ignore_ascii_case(n))
                || name.len() >= 8 && name[..8].eq_ignore_ascii_case("content-");
        if !skip {
            write_field(&mut out, name, value);
        }
    }
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    match &m.parts[..] {
        [] => out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n\r\n"),
        [p] if p.kind == PartKind::Display && p.info.filename.is_empty() => {
            let (headers, body) = encode_part(p);
            out.extend_from_slice(&headers);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&body);
        }
        parts => {
            let mut ordered: Vec<&Part> =
                parts.iter().filter(|p| p.kind == PartKind::Display).collect();
            ordered.extend(parts.iter().filter(|p| p.kind == PartKind::Attachment));
            let encoded: Vec<(Vec<u8>, Zeroizing<Vec<u8>>)> = ordered
                .iter()
                .map(|p| {
                    let (h, b) = encode_part(p);
                    (h, Zeroizing::new(b))
                })
                .collect();
            let boundary = choose_boundary(&encoded);
            write_field(
                &mut out,
                "Content-Type",
                &format!("multipart/mixed; boundary=\"{boundary}\""),
            );
            out.extend_from_slice(b"\r\n");
            for (h, b) in &encoded {
                out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                out.extend_from_slice(h);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        }
    }
    out
}

const BOUNDARY_PREFIX: &[u8] = b"=_dime_";

/// The first `=_dime_NNNNNNNN` that occurs in no part: candidates found in the parts are
/// collected once, so the choice is linear in the size of the parts.
fn choose_boundary(parts: &[(Vec<u8>, Zeroizing<Vec<u8>>)]) -> String {
    let mut taken = std::collections::BTreeSet::new();
    for (h, b) in parts {
        for data in [&h[..], &b[..]] {
            let mut i = 0;
            while let Some(p) = find(&data[i..], BOUNDARY_PREFIX) {
                let s = i + p + BOUNDARY_PREFIX.len();
                let digits = data[s..].iter().take(8).take_while(|c| c.is_ascii_hexdigit()).count();
                if digits == 8
                    && let Ok(n) =
                        u32::from_str_radix(&String::from_utf8_lossy(&data[s..s + 8]), 16)
                {
                    taken.insert(n);
                }
                i = s;
            }
        }
    }
    // At most taken.len() candidates are taken, so one of the first taken.len() + 1 is free.
    let n = (0..=u32::MAX).find(|n| !taken.contains(n)).unwrap_or(u32::MAX);
    format!("=_dime_{n:08x}")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A part's MIME header fields and encoded body.
fn encode_part(p: &Part) -> (Vec<u8>, Vec<u8>) {
    let ct = &p.info.content_type;
    let ct = if ct.is_empty() || !ct.is_ascii() {
        if p.kind == PartKind::Display && ct.is_empty() {
            "text/plain; charset=utf-8"
        } else {
            "application/octet-stream"
        }
    } else {
        ct.as_str()
    };
    let text = ct.len() >= 5 && ct[..5].eq_ignore_ascii_case("text/");
    let opaque = ["multipart/", "message/"]
        .iter()
        .any(|t| ct.len() >= t.len() && ct[..t.len()].eq_ignore_ascii_case(t));
    let mut h = Vec::new();
    write_field(&mut h, "Content-Type", ct);
    let mut body = Vec::new();
    let cte = if is_7bit(&p.data) {
        body.extend_from_slice(&p.data);
        "7bit"
    } else if opaque {
        body.extend_from_slice(&p.data);
        if p.data.contains(&0) { "binary" } else { "8bit" }
    } else if text {
        codec::qp_encode(&p.data, &mut body);
        "quoted-printable"
    } else {
        codec::base64_encode(&p.data, 76, &mut body);
        "base64"
    };
    write_field(&mut h, "Content-Transfer-Encoding", cte);
    if p.kind == PartKind::Attachment || !p.info.filename.is_empty() {
        let d = if p.kind == PartKind::Attachment { "attachment" } else { "inline" };
        let name = &p.info.filename;
        let v = if name.is_empty() {
            d.to_owned()
        } else if name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            let q: String = name
                .chars()
                .flat_map(|c| match c {
                    '"' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            format!("{d}; filename=\"{q}\"")
        } else {
            // RFC 2231 §4: charset'language'percent-encoded.
            let mut e = String::new();
            for b in name.bytes() {
                if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                    e.push(char::from(b));
                } else {
                    e.push_str(&format!("%{b:02X}"));
                }
            }
            format!("{d}; filename*=utf-8''{e}")
        };
        write_field(&mut h, "Content-Disposition", &v);
    }
    (h, body)
}

/// Whether data can go as 7bit: ASCII without NUL, CR and LF only as CRLF, lines of at
/// most 998 octets (RFC 5322 §2.1.1).
fn is_7bit(d: &[u8]) -> bool {
    let mut line = 0usize;
    for (i, &b) in d.iter().enumerate() {
        match b {
            0 | 0x80..=0xff => return false,
            b'\r' if d.get(i + 1) != Some(&b'\n') => return false,
            b'\n' => {
                if i == 0 || d[i - 1] != b'\r' {
                    return false;
                }
                line = 0;
                continue;
            }
            _ => {}
        }
        line += 1;
        if line > 998 {
            return false;
        }
    }
    true
}

/// Appends `Name: value\r\n`, the value RFC 2047-encoded where it is not ASCII and folded at
/// blanks to keep lines within 78 octets where possible and always within 998.
fn write_field(out: &mut Vec<u8>, name: &str, value: &str) {
    let value = encode_words(value);
    let mut line = name.len() + 1;
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    // Tokens: (blanks before, word).
    let v = value.as_bytes();
    let mut i = 0;
    let mut first = true;
    while i < v.len() || first {
        let ws_start = i;
        while i < v.len() && matches!(v[i], b' ' | b'\t') {
            i += 1;
        }
        let ws = &v[ws_start..i];
        let w_start = i;
        while i < v.len() && !matches!(v[i], b' ' | b'\t') {
            i += 1;
        }
        let word = &v[w_start..i];
        if first {
            // The first word follows "Name: " (the blanks of the value are kept after it).
            out.push(b' ');
            line += 1;
            out.extend_from_slice(ws);
            line += ws.len();
            first = false;
        } else if !ws.is_empty() && line + ws.len() + word.len() > 78 && line > name.len() + 2 {
            out.extend_from_slice(b"\r\n");
            line = 0;
            out.extend_from_slice(ws);
            line += ws.len();
        } else {
            out.extend_from_slice(ws);
            line += ws.len();
        }
        // A word too long for any line: break it (the only change to the value).
        let mut w = word;
        while line + w.len() > 998 {
            let room = 998 - line.min(997);
            out.extend_from_slice(&w[..room.min(w.len())]);
            out.extend_from_slice(b"\r\n ");
            line = 1;
            w = &w[room.min(w.len())..];
        }
        out.extend_from_slice(w);
        line += w.len();
    }
    out.extend_from_slice(b"\r\n");
}

/// RFC 2047: each run of blank-separated words holding non-ASCII becomes UTF-8 B encoded
/// words of at most 75 octets (quotes around the run dropped, the run being a phrase).
fn encode_words(v: &str) -> String {
    if v.is_ascii() {
        return v.to_owned();
    }
    let tokens: Vec<&str> = v.split(' ').collect();
    let mut out = String::new();
    let mut k = 0;
    while k < tokens.len() {
        if k > 0 {
            out.push(' ');
        }
        if tokens[k].is_ascii() {
            out.push_str(tokens[k]);
            k += 1;
            continue;
        }
        let mut e = k;
        // Extend the run over further non-ASCII words, and over blanks between two of them
        // (a decoder drops the blanks between adjacent encoded words).
        loop {
            let mut j = e + 1;
            while j < tokens.len() && tokens[j].is_empty() {
                j += 1;
            }
            if j < tokens.len() && !tokens[j].is_ascii() {
                e = j;
            } else {
                break;
            }
        }
        let mut run = tokens[k..=e].join(" ");
        // A quoted phrase loses its quotes: encoded words are not read inside quotes.
        let mut suffix = String::new();
        if run.starts_with('"')
            && let Some(end) = run.rfind('"').filter(|&p| p > 0)
        {
            suffix = run[end + 1..].to_owned();
            run = run[1..end].replace("\\\"", "\"").replace("\\\\", "\\");
        }
        out.push_str(&encoded_words(&run));
        out.push_str(&suffix);
        k = e + 1;
    }
    out
}

fn encoded_words(s: &str) -> String {
    // 45 octets of UTF-8 make 60 base64 characters: "=?UTF-8?B?" + 60 + "?=" = 72.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            let mut b = Vec::new();
            codec::base64_encode(w.as_bytes(), 0, &mut b);
            format!("=?UTF-8?B?{}?=", String::from_utf8_lossy(&b))
        })
        .collect::<Vec<_>>()
        .join(" ")
}
