//! Response-encoding primitives (RFC 9051 §4, §9): each appends one element to an output
//! buffer, choosing the form that carries the value exactly (atom, quoted string, literal).

use crate::command::{DateTime, Flag};
use crate::frame::is_astring_char;
use crate::mutf7::encode_mutf7;
use crate::parse::{MONTHS, civil_from_days};

/// Longest string sent quoted; longer ones go as literals.
const MAX_QUOTED_LEN: usize = 1024;

/// Whether `s` can be a quoted string: no CR, LF or NUL, not too long, and 8-bit octets only
/// as UTF-8 when the client accepts it (IMAP4rev2, UTF8=ACCEPT).
fn quotable(s: &[u8], utf8: bool) -> bool {
    s.len() <= MAX_QUOTED_LEN
        && s.iter().all(|&b| !matches!(b, 0 | b'\r' | b'\n') && (utf8 || b < 0x80))
        && (s.is_ascii() || std::str::from_utf8(s).is_ok())
}

fn string_as(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    if quotable(s, utf8) {
        encode_quoted(out, s);
    } else {
        encode_literal(out, s);
    }
}

fn astring_as(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    if !s.is_empty() && s.iter().all(|&b| is_astring_char(b)) {
        out.extend_from_slice(s);
    } else {
        string_as(out, s, utf8);
    }
}

/// An `astring` (RFC 9051 §9): an atom when every octet is an ASTRING-CHAR, else a
/// [`encode_string`].
pub fn encode_astring(out: &mut Vec<u8>, s: &[u8]) {
    astring_as(out, s, false);
}

/// A `string` (RFC 9051 §9): quoted when it can be (7-bit, no CR, LF or NUL, at most 1 KiB),
/// else a literal. A value with NUL needs [`encode_literal8`] where the grammar allows it.
pub fn encode_string(out: &mut Vec<u8>, s: &[u8]) {
    string_as(out, s, false);
}

/// An `nstring` (RFC 9051 §9): `NIL` or a [`encode_string`].
pub fn encode_nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        None => out.extend_from_slice(b"NIL"),
        Some(s) => encode_string(out, s),
    }
}

/// A `literal` (RFC 9051 §4.3): `{n}` CRLF and the octets.
pub fn encode_literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// A `literal8` (RFC 3516 §4.2, RFC 9051 §4.3): `~{n}` CRLF and the octets, NUL allowed.
pub fn encode_literal8(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'~');
    encode_literal(out, s);
}

/// A `quoted` string (RFC 9051 §9), `"` and `\` escaped. The caller ensures `s` has no CR,
/// LF or NUL (use [`encode_string`] otherwise).
pub fn encode_quoted(out: &mut Vec<u8>, s: &[u8]) {
    debug_assert!(!s.iter().any(|b| matches!(b, 0 | b'\r' | b'\n')));
    out.push(b'"');
    for &b in s {
        if matches!(b, b'"' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// A `flag` (RFC 9051 §2.3.2, §9).
pub fn encode_flag(out: &mut Vec<u8>, flag: &Flag) {
    let system = match flag {
        Flag::Seen => "\\Seen",
        Flag::Answered => "\\Answered",
        Flag::Flagged => "\\Flagged",
        Flag::Deleted => "\\Deleted",
        Flag::Draft => "\\Draft",
        Flag::Recent => "\\Recent",
        Flag::Extension(s) => {
            out.push(b'\\');
            out.extend_from_slice(s.as_bytes());
            return;
        }
        Flag::Keyword(s) => {
            out.extend_from_slice(s.as_bytes());
            return;
        }
    };
    out.extend_from_slice(system.as_bytes());
}

/// A `flag-list` (RFC 9051 §9): `(\Seen $Forwarded)`.
pub fn encode_flags(out: &mut Vec<u8>, flags: &[Flag]) {
    out.push(b'(');
    for (k, f) in flags.iter().enumerate() {
        if k > 0 {
            out.push(b' ');
        }
        encode_flag(out, f);
    }
    out.push(b')');
}

/// A `sequence-set` of UIDs (RFC 9051 §9) from ascending values, runs compressed to ranges:
/// `1,2,3,7` is `1:3,7`. Repeated values are written once; an empty slice writes nothing.
pub fn encode_uid_set(out: &mut Vec<u8>, uids: &[u32]) {
    let mut k = 0;
    let mut first = true;
    while k < uids.len() {
        let start = uids[k];
        let mut end = start;
        k += 1;
        while k < uids.len() && (uids[k] == end || Some(uids[k]) == end.checked_add(1)) {
            end = uids[k];
            k += 1;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        if start == end {
            out.extend_from_slice(start.to_string().as_bytes());
        } else {
            out.extend_from_slice(format!("{start}:{end}").as_bytes());
        }
    }
}

/// A `date-time` (RFC 9051 §9): `"dd-Mon-yyyy hh:mm:ss +zzzz"`, in the value's own zone.
pub fn encode_date_time(out: &mut Vec<u8>, dt: DateTime) {
    let local = dt.unix.saturating_add(i64::from(dt.offset_minutes) * 60);
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let secs = local.rem_euclid(86_400);
    let month = MONTHS[(m as usize).clamp(1, 12) - 1];
    let sign = if dt.offset_minutes < 0 { '-' } else { '+' };
    let off = dt.offset_minutes.unsigned_abs();
    out.extend_from_slice(
        format!(
            "\"{d:02}-{month}-{y:04} {:02}:{:02}:{:02} {sign}{:02}{:02}\"",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            off / 60,
            off % 60
        )
        .as_bytes(),
    );
}

/// A `mailbox` (RFC 9051 §9): UTF-8 as is for a client that enabled IMAP4rev2 or UTF8=ACCEPT
/// (`utf8`), else modified UTF-7 (RFC 3501 §5.1.3); an atom, quoted or a literal as needed.
pub fn encode_mailbox(out: &mut Vec<u8>, name: &str, utf8: bool) {
    if utf8 {
        astring_as(out, name.as_bytes(), true);
    } else {
        astring_as(out, encode_mutf7(name).as_bytes(), false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// RFC 9051 §4.1-§4.3.
    #[test]
    fn strings_choose_their_form() {
        let table: &[(&[u8], &str, &str)] = &[
            (b"INBOX", "INBOX", "\"INBOX\""),
            (b"a]b", "a]b", "\"a]b\""),
            (b"", "\"\"", "\"\""),
            (b"a b", "\"a b\"", "\"a b\""),
            (b"q\"\\", "\"q\\\"\\\\\"", "\"q\\\"\\\\\""),
            (b"50%", "\"50%\"", "\"50%\""),
            (b"a\r\nb", "{4}\r\na\r\nb", "{4}\r\na\r\nb"),
            ("ü".as_bytes(), "{2}\r\nü", "{2}\r\nü"),
            (b"NIL", "NIL", "\"NIL\""),
        ];
        for (s, astring, string) in table {
            assert_eq!(enc(|o| encode_astring(o, s)), *astring);
            assert_eq!(enc(|o| encode_string(o, s)), *string);
        }
        let long = vec![b'x'; MAX_QUOTED_LEN + 1];
        assert!(enc(|o| encode_string(o, &long)).starts_with("{1025}\r\n"));
        assert!(enc(|o| encode_string(o, &long[1..])).starts_with('"'));
        assert_eq!(enc(|o| encode_nstring(o, None)), "NIL");
        assert_eq!(enc(|o| encode_nstring(o, Some(b"x"))), "\"x\"");
        assert_eq!(enc(|o| encode_literal8(o, b"\0")), "~{1}\r\n\0");
    }

    #[test]
    fn flags_rfc9051_2_3_2() {
        let flags = [
            Flag::Seen,
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Draft,
            Flag::Recent,
            Flag::Extension("Important".into()),
            Flag::Keyword("$Forwarded".into()),
        ];
        assert_eq!(
            enc(|o| encode_flags(o, &flags)),
            "(\\Seen \\Answered \\Flagged \\Deleted \\Draft \\Recent \\Important $Forwarded)"
        );
        assert_eq!(enc(|o| encode_flags(o, &[])), "()");
    }

    #[test]
    fn uid_sets_compress_to_ranges() {
        let table: &[(&[u32], &str)] = &[
            (&[], ""),
            (&[5], "5"),
            (&[1, 2, 3, 7], "1:3,7"),
            (&[1, 1, 2, 4, 5, 9], "1:2,4:5,9"),
            (&[u32::MAX - 1, u32::MAX], "4294967294:4294967295"),
        ];
        for (uids, want) in table {
            assert_eq!(enc(|o| encode_uid_set(o, uids)), *want);
        }
    }

    #[test]
    fn date_times_rfc9051_9() {
        let table = [
            (760_168_345, -480, "\"01-Feb-1994 21:52:25 -0800\""),
            (0, 0, "\"01-Jan-1970 00:00:00 +0000\""),
            (951_865_199, 60, "\"29-Feb-2000 23:59:59 +0100\""),
            (-1, 330, "\"01-Jan-1970 05:29:59 +0530\""),
        ];
        for (unix, offset_minutes, want) in table {
            assert_eq!(enc(|o| encode_date_time(o, DateTime { unix, offset_minutes })), want);
        }
    }

    /// RFC 3501 §5.1.3 for IMAP4rev1 clients; UTF-8 for IMAP4rev2 (RFC 9051 §5.1).
    #[test]
    fn mailboxes_in_either_encoding() {
        let table = [
            ("INBOX", false, "INBOX"),
            ("Entwürfe", false, "Entw&APw-rfe"),
            ("Entwürfe", true, "\"Entwürfe\""),
            ("a b&c", false, "\"a b&-c\""),
            ("a b&c", true, "\"a b&c\""),
            ("台北", false, "&U,BTFw-"),
            ("x\ny", true, "{3}\r\nx\ny"),
            ("", true, "\"\""),
        ];
        for (name, utf8, want) in table {
            assert_eq!(enc(|o| encode_mailbox(o, name, utf8)), want, "{name} {utf8}");
        }
    }

    proptest! {
        #[test]
        fn mailbox_round_trips_through_the_parser(name in any::<String>(), utf8 in any::<bool>()) {
            prop_assume!(!name.contains('\0'));
            let mut line = b"t DELETE ".to_vec();
            encode_mailbox(&mut line, &name, utf8);
            line.extend_from_slice(b"\r\n");
            let Ok(crate::TaggedCommand { command: crate::Command::Delete(got), .. }) =
                crate::parse_command(&line) else { panic!("{name:?}") };
            let got = if utf8 { got } else { crate::decode_mutf7(got.as_bytes()).unwrap() };
            if name.eq_ignore_ascii_case("INBOX") {
                prop_assert_eq!(got, "INBOX");
            } else {
                prop_assert_eq!(got, name);
            }
        }
    }
}
