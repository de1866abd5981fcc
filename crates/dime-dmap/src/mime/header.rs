//! Header fields over raw RFC 5322 bytes: splitting, unfolding, MIME parameters (RFC 2045,
//! RFC 2231 as Dovecot merges them), RFC 2047 encoded words, and the IMAP strings Dovecot
//! writes (`imap-quote.c`: quoted, literal, "for humans").

use std::ops::Range;

/// One header field: byte ranges into the raw message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    /// The name, without the colon and trailing blanks.
    pub(crate) name: Range<usize>,
    /// The value: after the colon and leading blanks, up to the final line break (folds kept).
    pub(crate) value: Range<usize>,
    /// The whole field with its final line break.
    pub(crate) whole: Range<usize>,
}

/// The end of the line starting at `i` (after its `\n`, or `end`).
pub(crate) fn line_end(raw: &[u8], i: usize, end: usize) -> usize {
    match raw[i..end].iter().position(|&b| b == b'\n') {
        Some(p) => i + p + 1,
        None => end,
    }
}

/// Splits `raw[start..end]` into header and body: the header runs through the first empty
/// line (kept in it); without one, the whole range is header and the body is empty.
pub(crate) fn split_header(raw: &[u8], start: usize, end: usize) -> (Range<usize>, Range<usize>) {
    let mut i = start;
    while i < end {
        let e = line_end(raw, i, end);
        let line = &raw[i..e];
        if line == b"\r\n" || line == b"\n" {
            return (start..e, e..end);
        }
        i = e;
    }
    (start..end, end..end)
}

/// The fields of a header range, in order. A line that is no field (no colon) is a field
/// with an empty name.
pub(crate) fn fields(raw: &[u8], header: Range<usize>) -> Vec<Field> {
    let mut out = Vec::new();
    let end = header.end;
    let mut i = header.start;
    while i < end {
        let first = line_end(raw, i, end);
        let line = &raw[i..first];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        // Continuation lines.
        let mut e = first;
        while e < end && matches!(raw[e], b' ' | b'\t') {
            e = line_end(raw, e, end);
        }
        if let Some(colon) = raw[i..first].iter().position(|&b| b == b':') {
            let mut name_end = i + colon;
            while name_end > i && matches!(raw[name_end - 1], b' ' | b'\t') {
                name_end -= 1;
            }
            let mut vs = i + colon + 1;
            while vs < e && matches!(raw[vs], b' ' | b'\t') {
                vs += 1;
            }
            let mut ve = e;
            if ve > vs && raw[ve - 1] == b'\n' {
                ve -= 1;
                if ve > vs && raw[ve - 1] == b'\r' {
                    ve -= 1;
                }
            }
            if name_end > i && !matches!(raw[i], b' ' | b'\t') {
                out.push(Field { name: i..name_end, value: vs..ve.max(vs), whole: i..e });
                i = e;
                continue;
            }
        }
        // A line that is no field keeps its place, nameless (HEADER.FIELDS.NOT copies it).
        out.push(Field { name: i..i, value: i..i, whole: i..e });
        i = e;
    }
    out
}

/// The first field named `name` (case-insensitive).
pub(crate) fn find<'a>(raw: &[u8], fields: &'a [Field], name: &str) -> Option<&'a Field> {
    fields.iter().find(|f| is_named(raw, f, name))
}

/// Whether a field has the name `name` (case-insensitive; a nameless line never has).
pub(crate) fn is_named(raw: &[u8], f: &Field, name: &str) -> bool {
    !name.is_empty() && raw[f.name.clone()].eq_ignore_ascii_case(name.as_bytes())
}

/// Removes CR and LF as Dovecot's `remove_newlines_and_append` does: a line break not
/// followed by a blank becomes a space.
pub(crate) fn unfold(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for (i, &b) in v.iter().enumerate() {
        if b != b'\r' && b != b'\n' {
            out.push(b);
        } else if !matches!(v.get(i + 1), None | Some(b' ' | b'\t' | b'\r' | b'\n')) {
            out.push(b' ');
        }
    }
    out
}

/// Appends a Dovecot `imap_append_nstring`: `NIL`, a quoted string, or a literal when the
/// value holds CR, LF, 8-bit octets or more than four quoted-specials. Like Dovecot's C
/// strings, a value ends at its first NUL.
pub(crate) fn nstring(out: &mut Vec<u8>, v: Option<&[u8]>) {
    let Some(v) = v else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let v = match v.iter().position(|&b| b == 0) {
        Some(p) => &v[..p],
        None => v,
    };
    let mut escapes = 0;
    let literal = v.iter().any(|&b| match b {
        b'"' | b'\\' => {
            escapes += 1;
            escapes > 4
        }
        b'\r' | b'\n' => true,
        b => b >= 0x80,
    });
    if literal {
        out.extend_from_slice(format!("{{{}}}\r\n", v.len()).as_bytes());
        out.extend_from_slice(v);
    } else {
        out.push(b'"');
        for &b in v {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    }
}

/// Appends a string as Dovecot's `imap_append_string_for_humans` does (envelope subjects
/// and display names): blanks collapsed and trimmed, NUL as 0x80, and a literal when
/// anything had to change or needs escaping.
pub(crate) fn for_humans(out: &mut Vec<u8>, src: &[u8]) {
    let mut remove = 0usize;
    let mut ws_prefix = true;
    let mut last_lwsp = true;
    let mut modify = false;
    for &b in src {
        match b {
            0 => {
                last_lwsp = false;
                modify = true;
            }
            b'\r' | b'\n' | b'\t' | b' ' => {
                if b != b' ' {
                    modify = true;
                }
                if last_lwsp {
                    modify = true;
                    remove += 1;
                }
                last_lwsp = true;
            }
            b'"' | b'\\' => {
                modify = true;
                last_lwsp = false;
            }
            b => {
                if b >= 0x80 {
                    modify = true;
                }
                last_lwsp = false;
            }
        }
        if !last_lwsp {
            ws_prefix = false;
        }
    }
    if last_lwsp && !src.is_empty() && !ws_prefix {
        modify = true;
        remove += 1;
    }
    if !modify {
        out.push(b'"');
        out.extend_from_slice(src);
        out.push(b'"');
        return;
    }
    if src.len() == remove {
        out.extend_from_slice(b"\"\"");
        return;
    }
    out.extend_from_slice(format!("{{{}}}\r\n", src.len() - remove).as_bytes());
    let pos = out.len();
    let mut last_lwsp = true;
    let mut ws_prefix = true;
    for &b in src {
        match b {
            0 => {
                out.push(0x80);
                last_lwsp = false;
            }
            b'\r' | b'\n' | b'\t' | b' ' => {
                if !last_lwsp {
                    out.push(b' ');
                }
                last_lwsp = true;
            }
            b => {
                last_lwsp = false;
                out.push(b);
            }
        }
        if !last_lwsp {
            ws_prefix = false;
        }
    }
    if last_lwsp && !src.is_empty() && !ws_prefix && out.len() > pos {
        out.pop();
    }
}

/// Skips blanks, line breaks and (nested) comments from `i`.
pub(crate) fn skip_cfws(v: &[u8], mut i: usize) -> usize {
    while i < v.len() {
        match v[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => i = skip_comment(v, i).0,
            _ => break,
        }
    }
    i
}

/// Skips a comment starting at `v[i] == '('`; returns the index after it and its text.
pub(crate) fn skip_comment(v: &[u8], mut i: usize) -> (usize, Vec<u8>) {
    let mut depth = 0usize;
    let mut text = Vec::new();
    while i < v.len() {
        match v[i] {
            b'(' => {
                if depth > 0 {
                    text.push(b'(');
                }
                depth += 1;
            }
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return (i + 1, text);
                }
                text.push(b')');
            }
            b'\\' if i + 1 < v.len() => {
                i += 1;
                text.push(v[i]);
            }
            b => text.push(b),
        }
        i += 1;
    }
    (i, text)
}

/// Reads a quoted string at `v[i] == '"'`; returns the index after it and its content.
pub(crate) fn quoted(v: &[u8], mut i: usize) -> (usize, Vec<u8>) {
    let mut s = Vec::new();
    i += 1;
    while i < v.len() {
        match v[i] {
            b'"' => return (i + 1, s),
            b'\\' if i + 1 < v.len() => {
                i += 1;
                s.push(v[i]);
            }
            b'\r' | b'\n' => {}
            b => s.push(b),
        }
        i += 1;
    }
    (i, s)
}

fn is_tspecial(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')'
            | b'<'
            | b'>'
            | b'@'
            | b','
            | b';'
            | b':'
            | b'\\'
            | b'"'
            | b'/'
            | b'['
            | b']'
            | b'?'
            | b'='
    ) || b <= b' '
        || b == 0x7f
}

/// Reads an RFC 2045 token from `i`.
pub(crate) fn token(v: &[u8], i: usize) -> (usize, &[u8]) {
    let mut e = i;
    while e < v.len() && !is_tspecial(v[e]) {
        e += 1;
    }
    (e, &v[i..e])
}

/// A MIME value with its parameters: `value *(";" name "=" value)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Params(pub(crate) Vec<(Vec<u8>, Vec<u8>)>);

/// Parses the parameters after `i`, then merges RFC 2231 continuations as Dovecot's
/// `rfc2231_parse` does: plain parameters first in order, then `name*0`, `name*1`... joined
/// as `name` (or `name*` when any piece is extended).
pub(crate) fn params(v: &[u8], mut i: usize) -> Params {
    let mut plain = Vec::new();
    let mut cont: Vec<(Vec<u8>, u32, bool, Vec<u8>)> = Vec::new();
    loop {
        i = skip_cfws(v, i);
        if i >= v.len() {
            break;
        }
        if v[i] != b';' {
            // Garbage: skip to the next ';'.
            match v[i..].iter().position(|&b| b == b';') {
                Some(p) => i += p,
                None => break,
            }
        }
        i = skip_cfws(v, i + 1);
        let (e, name) = token(v, i);
        if name.is_empty() {
            continue;
        }
        let name = name.to_vec();
        i = skip_cfws(v, e);
        if i >= v.len() || v[i] != b'=' {
            continue;
        }
        i = skip_cfws(v, i + 1);
        let value = if i < v.len() && v[i] == b'"' {
            let (e, s) = quoted(v, i);
            i = e;
            s
        } else {
            let (e, t) = token(v, i);
            i = e;
            t.to_vec()
        };
        // RFC 2231: name*N or name*N*.
        if let Some(star) = name.iter().position(|&b| b == b'*') {
            let rest = &name[star + 1..];
            let (digits, ext) = match rest.strip_suffix(b"*") {
                Some(d) => (d, true),
                None => (rest, false),
            };
            if !digits.is_empty()
                && digits.iter().all(u8::is_ascii_digit)
                && let Ok(n) = std::str::from_utf8(digits).unwrap_or("x").parse::<u32>()
            {
                cont.push((name[..star].to_vec(), n, ext, value));
                continue;
            }
        }
        plain.push((name, value));
    }
    // Merge continuations in order of first appearance of each name.
    let mut names: Vec<Vec<u8>> = Vec::new();
    for (n, ..) in &cont {
        if !names.iter().any(|x| x.eq_ignore_ascii_case(n)) {
            names.push(n.clone());
        }
    }
    for n in names {
        let mut pieces: Vec<&(Vec<u8>, u32, bool, Vec<u8>)> =
            cont.iter().filter(|c| c.0.eq_ignore_ascii_case(&n)).collect();
        pieces.sort_by_key(|c| c.1);
        let ext = pieces.iter().any(|c| c.2);
        let mut value = Vec::new();
        for (k, p) in pieces.iter().enumerate() {
            if u32::try_from(k).ok() != Some(p.1) {
                break;
            }
            value.extend_from_slice(&p.3);
        }
        let mut name = n;
        if ext {
            name.push(b'*');
        }
        plain.push((name, value));
    }
    Params(plain)
}

/// Decodes text in a charset to a `String`: UTF-8 (invalid sequences replaced), and every
/// other charset as Latin-1 (exact for ISO-8859-1 and US-ASCII, an approximation otherwise).
pub(crate) fn decode_charset(charset: &[u8], b: &[u8]) -> String {
    let cs = charset.to_ascii_lowercase();
    if cs == b"utf-8" || cs == b"utf8" || b.is_ascii() {
        String::from_utf8_lossy(b).into_owned()
    } else {
        b.iter().map(|&c| char::from(c)).collect()
    }
}

/// Decodes RFC 2047 encoded words in an (unfolded) header value; blanks between two
/// adjacent encoded words are dropped. Raw 8-bit text is read as UTF-8.
pub(crate) fn decode_2047(v: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    let mut pending_ws: Option<usize> = None; // start of blanks after an encoded word
    let mut last_encoded = false;
    while i < v.len() {
        if v[i..].starts_with(b"=?")
            && let Some((e, text)) = encoded_word(v, i)
        {
            if let Some(ws) = pending_ws.take()
                && !last_encoded
            {
                out.push_str(&String::from_utf8_lossy(&v[ws..i]));
            }
            out.push_str(&text);
            last_encoded = true;
            i = e;
            continue;
        }
        if matches!(v[i], b' ' | b'\t') {
            let s = i;
            while i < v.len() && matches!(v[i], b' ' | b'\t') {
                i += 1;
            }
            if last_encoded && v[i..].starts_with(b"=?") {
                pending_ws = Some(s);
                continue;
            }
            out.push_str(&String::from_utf8_lossy(&v[s..i]));
            last_encoded = false;
            continue;
        }
        let s = i;
        while i < v.len() && !matches!(v[i], b' ' | b'\t') && !v[i..].starts_with(b"=?") {
            i += 1;
        }
        if i == s {
            i += 1;
        }
        out.push_str(&String::from_utf8_lossy(&v[s..i]));
        last_encoded = false;
    }
    out
}

/// One encoded word at `i`: `=?charset?B|Q?text?=`.
fn encoded_word(v: &[u8], i: usize) -> Option<(usize, String)> {
    let rest = &v[i + 2..];
    let q1 = rest.iter().position(|&b| b == b'?')?;
    let charset = &rest[..q1];
    let charset = match charset.iter().position(|&b| b == b'*') {
        Some(p) => &charset[..p], // RFC 2231 language suffix
        None => charset,
    };
    let enc = *rest.get(q1 + 1)?;
    if rest.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let len = rest[text_start..].windows(2).position(|w| w == b"?=")?;
    let text = &rest[text_start..text_start + len];
    if text.iter().any(|&b| b == b' ' || b == b'\t') {
        return None;
    }
    let bytes = match enc {
        b'B' | b'b' => super::codec::base64_decode(text),
        b'Q' | b'q' => {
            let mut out = Vec::with_capacity(text.len());
            let mut k = 0;
            while k < text.len() {
                match text[k] {
                    b'_' => out.push(b' '),
                    b'=' => match (
                        text.get(k + 1).and_then(|&c| hex(c)),
                        text.get(k + 2).and_then(|&c| hex(c)),
                    ) {
                        (Some(h), Some(l)) => {
                            out.push(h << 4 | l);
                            k += 2;
                        }
                        _ => out.push(b'='),
                    },
                    b => out.push(b),
                }
                k += 1;
            }
            out
        }
        _ => return None,
    };
    Some((i + 2 + text_start + len + 2, decode_charset(charset, &bytes)))
}

/// The value of a hex digit.
pub(crate) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_folds_and_ranges() {
        let raw = b"A: 1\r\nB:  two\r\n  more\r\n\r\nbody";
        let (h, b) = split_header(raw, 0, raw.len());
        assert_eq!(&raw[b], b"body");
        let f = fields(raw, h);
        assert_eq!(f.len(), 2);
        assert_eq!(&raw[f[1].value.clone()], b"two\r\n  more");
        assert_eq!(&raw[f[1].whole.clone()], b"B:  two\r\n  more\r\n");
    }

    #[test]
    fn rfc2231_continuations_merge_like_dovecot() {
        let v = b"; filename*0=\"long\"; filename*1=\"name.bin\"; a=b";
        let p = params(v, 0);
        assert_eq!(p.0[0], (b"a".to_vec(), b"b".to_vec()));
        assert_eq!(p.0[1], (b"filename".to_vec(), b"longname.bin".to_vec()));
        let p = params(b"; name*=utf-8''x%20y", 0);
        assert_eq!(p.0[0], (b"name*".to_vec(), b"utf-8''x%20y".to_vec()));
    }

    #[test]
    fn encoded_words_decode_and_join() {
        assert_eq!(
            decode_2047(b"=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_?= =?UTF-8?Q?Berlin?="),
            "Grüße aus Berlin"
        );
        assert_eq!(decode_2047(b"=?ISO-8859-1?Q?Andr=E9?= <a@b>"), "André <a@b>");
        assert_eq!(decode_2047(b"a =?utf-8?b?w6k=?= b"), "a é b");
        assert_eq!(decode_2047(b"=?bad"), "=?bad");
    }

    #[test]
    fn strings_quote_like_dovecot() {
        let mut o = Vec::new();
        nstring(&mut o, Some(b"a\"b"));
        assert_eq!(o, b"\"a\\\"b\"");
        o.clear();
        nstring(&mut o, Some("é".as_bytes()));
        assert_eq!(o, b"{2}\r\n\xc3\xa9");
        o.clear();
        for_humans(&mut o, b"  Spaced   Name  ");
        assert_eq!(o, b"{11}\r\nSpaced Name");
        o.clear();
        for_humans(&mut o, b"plain");
        assert_eq!(o, b"\"plain\"");
    }
}
