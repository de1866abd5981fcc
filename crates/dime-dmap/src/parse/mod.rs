//! The command parser: one framed command ([`crate::Frame::Command`]) to a [`TaggedCommand`]
//! (RFC 9051 §9 with RFC 2971, 4315, 4731, 4959, 5182, 5258, 5819, 6154, 6851, 7162, 7888,
//! 3516 and 8438; `spec/dmap.md` §3).
//!
//! A hand-written recursive descent over a byte cursor. It never panics, recurses only into
//! search keys (bounded by [`MAX_SEARCH_DEPTH`]), reads every octet a bounded number of times,
//! and its errors name the rule broken without echoing client bytes other than the tag.

use zeroize::Zeroizing;

use crate::command::{Date, DateTime, Flag, SaslData, SeqBound, SequenceSet, Tag, TaggedCommand};
use crate::frame::{is_astring_char, is_atom_char, is_tag_char, strip_eol};
use crate::limits::{MAX_SEQUENCE_RANGES, MAX_TAG_LEN};

/// A command (or a SASL response) did not parse. The driver answers `tag BAD reason` when
/// the tag was read, else `* BAD reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// The command's tag, when it was read.
    pub tag: Option<Tag>,
    /// Why, lower case, naming the grammar rule broken; never client bytes.
    pub reason: &'static str,
}

/// A client's answer to an AUTHENTICATE challenge (RFC 9051 §6.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslResponse {
    /// `*`: the client cancels the exchange.
    Cancel,
    /// The decoded response.
    Data(SaslData),
}

type R<T> = Result<T, &'static str>;

/// Parses one command, with its final CRLF (or LF), as [`crate::Framer`] delivers it.
///
/// # Errors
/// [`ParseError`] with the tag when one was read and the rule broken.
pub fn parse_command(input: &[u8]) -> Result<TaggedCommand, ParseError> {
    let mut p = Parser { b: input, i: 0 };
    let tag = p.tag().map_err(|reason| ParseError { tag: None, reason })?;
    match p.command().and_then(|c| p.end().map(|()| c)) {
        Ok(command) => Ok(TaggedCommand { tag, command }),
        Err(reason) => Err(ParseError { tag: Some(tag), reason }),
    }
}

/// Parses a client's answer to an AUTHENTICATE challenge: `*` cancels, anything else is
/// base64 (RFC 9051 §6.2.2). The line may carry its CRLF.
///
/// # Errors
/// [`ParseError`] (without a tag) when the line is not base64.
pub fn parse_sasl_response(line: &[u8]) -> Result<SaslResponse, ParseError> {
    let line = strip_eol(line);
    if line == b"*" {
        return Ok(SaslResponse::Cancel);
    }
    decode_base64(line)
        .map(|d| SaslResponse::Data(SaslData(d)))
        .ok_or(ParseError { tag: None, reason: "sasl response is not base64" })
}

/// Whether a line ends IDLE: `DONE`, in any case (RFC 2177). The line may carry its CRLF.
#[must_use]
pub fn is_idle_done(line: &[u8]) -> bool {
    strip_eol(line).eq_ignore_ascii_case(b"DONE")
}

/// Strict padded standard base64 (RFC 4648 §4), as SASL uses it.
fn decode_base64(s: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    fn val(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    }
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() / 4 * 3));
    let n = s.len() / 4;
    for (k, q) in s.chunks_exact(4).enumerate() {
        let pad = if k + 1 == n { q.iter().rev().take_while(|&&c| c == b'=').count() } else { 0 };
        if pad > 2 {
            return None;
        }
        let mut acc = 0u32;
        for &c in &q[..4 - pad] {
            acc = (acc << 6) | val(c)?;
        }
        acc <<= 6 * pad;
        let bytes = acc.to_be_bytes();
        let keep = 3 - pad;
        // The bits under the padding must be zero (one spelling per value).
        if bytes[1 + keep..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[1..=keep]);
    }
    Some(out)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count from 1970-01-01: (year, month, day).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // In range by construction: 1..=31 and 1..=12.
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The month names of `date-month` (RFC 9051 §9).
pub(crate) const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A keyword's upper-cased text, for matching.
fn upper(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c.to_ascii_uppercase())).collect()
}

fn utf8(b: Vec<u8>) -> R<String> {
    String::from_utf8(b).map_err(|_| "string is not utf-8")
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.b.get(self.i + k).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8, why: &'static str) -> R<()> {
        if self.eat(c) { Ok(()) } else { Err(why) }
    }

    fn sp(&mut self) -> R<()> {
        self.expect(b' ', "expected a space")
    }

    fn open(&mut self) -> R<()> {
        self.expect(b'(', "expected an opening parenthesis")
    }

    fn close(&mut self) -> R<()> {
        self.expect(b')', "expected a closing parenthesis")
    }

    /// The end of the command: its CRLF or LF, and nothing after.
    fn end(&mut self) -> R<()> {
        match &self.b[self.i.min(self.b.len())..] {
            b"\r\n" | b"\n" => Ok(()),
            _ => Err("expected the end of the command"),
        }
    }

    fn tag(&mut self) -> R<Tag> {
        let start = self.i;
        while self.peek().is_some_and(is_tag_char) {
            self.i += 1;
        }
        let t = &self.b[start..self.i];
        if t.is_empty() || t.len() > MAX_TAG_LEN {
            return Err("bad tag");
        }
        self.sp()?;
        // Tag characters are ASCII.
        Ok(Tag(t.iter().map(|&c| char::from(c)).collect()))
    }

    /// A keyword (command name, search key, fetch item...): letters, digits, `.` and `-`,
    /// upper-cased.
    fn keyword(&mut self) -> R<String> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-') {
            self.i += 1;
        }
        if self.i == start {
            return Err("expected a keyword");
        }
        Ok(upper(&self.b[start..self.i]))
    }

    /// Reads `kw` when it comes next, followed by a delimiter.
    fn eat_keyword(&mut self, kw: &str) -> bool {
        let end = self.i + kw.len();
        if self.b.get(self.i..end).is_some_and(|w| w.eq_ignore_ascii_case(kw.as_bytes()))
            && matches!(self.b.get(end), None | Some(b' ' | b')' | b'(' | b'\r' | b'\n'))
        {
            self.i = end;
            true
        } else {
            false
        }
    }

    fn atom(&mut self) -> R<&'a [u8]> {
        let start = self.i;
        while self.peek().is_some_and(is_atom_char) {
            self.i += 1;
        }
        if self.i == start {
            return Err("expected an atom");
        }
        Ok(&self.b[start..self.i])
    }

    fn digits(&mut self) -> R<&'a [u8]> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        if self.i == start {
            return Err("expected a number");
        }
        Ok(&self.b[start..self.i])
    }

    /// `number64` (RFC 9051 §9): at most 2^63 - 1.
    fn number64(&mut self) -> R<u64> {
        let d = self.digits()?;
        let mut n: u64 = 0;
        for &c in d {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(c - b'0')))
                .ok_or("number out of range")?;
        }
        if n > i64::MAX as u64 {
            return Err("number out of range");
        }
        Ok(n)
    }

    /// `number` (RFC 9051 §9): a 32-bit unsigned value.
    fn number(&mut self) -> R<u32> {
        u32::try_from(self.number64()?).map_err(|_| "number out of range")
    }

    /// `nz-number` (RFC 9051 §9).
    fn nz_number(&mut self) -> R<u32> {
        if self.peek() == Some(b'0') {
            return Err("expected a nonzero number");
        }
        self.number()
    }

    /// `mod-sequence-value` (RFC 7162 §7): 1 to 2^63 - 1.
    fn modseq(&mut self) -> R<u64> {
        match self.number64()? {
            0 => Err("mod-sequence must be nonzero"),
            n => Ok(n),
        }
    }

    fn quoted(&mut self) -> R<Vec<u8>> {
        self.expect(b'"', "expected a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r' | b'\n' | 0) => return Err("unterminated or bad quoted string"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    match self.peek_at(1) {
                        Some(c @ (b'"' | b'\\')) => out.push(c),
                        _ => return Err("bad escape in quoted string"),
                    }
                    self.i += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// `literal` or, with `allow8`, `literal8` (RFC 9051 §9, RFC 7888): the octets and whether
    /// it was a literal8.
    fn literal(&mut self, allow8: bool) -> R<(&'a [u8], bool)> {
        let binary = self.eat(b'~');
        if binary && !allow8 {
            return Err("literal8 not allowed here");
        }
        self.expect(b'{', "expected a literal")?;
        let n = usize::try_from(self.number64()?).map_err(|_| "literal too large")?;
        self.eat(b'+');
        self.expect(b'}', "bad literal announcement")?;
        self.eat(b'\r');
        self.expect(b'\n', "expected crlf after literal announcement")?;
        let end = self.i.checked_add(n).ok_or("literal too large")?;
        let data = self.b.get(self.i..end).ok_or("literal shorter than announced")?;
        if !binary && data.contains(&0) {
            return Err("nul in literal");
        }
        self.i = end;
        Ok((data, binary))
    }

    /// `string` (RFC 9051 §9): quoted or literal.
    fn string(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(false).map(|(d, _)| d.to_vec()),
            _ => Err("expected a string"),
        }
    }

    /// `astring` (RFC 9051 §9).
    fn astring(&mut self) -> R<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let start = self.i;
                while self.peek().is_some_and(is_astring_char) {
                    self.i += 1;
                }
                if self.i == start {
                    return Err("expected an astring");
                }
                Ok(self.b[start..self.i].to_vec())
            }
        }
    }

    fn astring_utf8(&mut self) -> R<String> {
        utf8(self.astring()?)
    }

    fn is_nil(&self) -> bool {
        self.b.get(self.i..self.i + 3).is_some_and(|w| w.eq_ignore_ascii_case(b"NIL"))
            && matches!(self.b.get(self.i + 3), None | Some(b' ' | b')' | b'\r' | b'\n'))
    }

    /// `nstring` (RFC 9051 §9).
    fn nstring(&mut self) -> R<Option<Vec<u8>>> {
        if self.is_nil() {
            self.i += 3;
            return Ok(None);
        }
        self.string().map(Some)
    }

    /// `mailbox` (RFC 9051 §9): INBOX in any case is `INBOX`.
    fn mailbox(&mut self) -> R<String> {
        let m = self.astring_utf8()?;
        Ok(if m.eq_ignore_ascii_case("INBOX") { "INBOX".into() } else { m })
    }

    /// `list-mailbox` (RFC 9051 §9): `%`, `*` and `]` allowed unquoted.
    fn list_mailbox(&mut self) -> R<String> {
        if matches!(self.peek(), Some(b'"' | b'{')) {
            return utf8(self.string()?);
        }
        let start = self.i;
        while self.peek().is_some_and(|c| is_astring_char(c) || c == b'%' || c == b'*') {
            self.i += 1;
        }
        if self.i == start {
            return Err("expected a list-mailbox");
        }
        utf8(self.b[start..self.i].to_vec())
    }

    /// `flag` (RFC 9051 §9).
    fn flag(&mut self) -> R<Flag> {
        if self.eat(b'\\') {
            let a = self.atom().map_err(|_| "bad flag")?;
            let s = upper(a);
            return Ok(match s.as_str() {
                "SEEN" => Flag::Seen,
                "ANSWERED" => Flag::Answered,
                "FLAGGED" => Flag::Flagged,
                "DELETED" => Flag::Deleted,
                "DRAFT" => Flag::Draft,
                "RECENT" => Flag::Recent,
                _ => Flag::Extension(utf8(a.to_vec())?),
            });
        }
        let a = self.atom().map_err(|_| "bad flag")?;
        Ok(Flag::Keyword(utf8(a.to_vec())?))
    }

    /// `flag-list` (RFC 9051 §9).
    fn flag_list(&mut self) -> R<Vec<Flag>> {
        self.open()?;
        let mut flags = Vec::new();
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            flags.push(self.flag()?);
            if !self.eat(b' ') {
                break;
            }
        }
        self.close()?;
        Ok(flags)
    }

    fn seq_number(&mut self) -> R<SeqBound> {
        if self.eat(b'*') { Ok(SeqBound::Star) } else { self.nz_number().map(SeqBound::Value) }
    }

    /// `sequence-set` (RFC 9051 §9) or `$` (RFC 5182), at most [`MAX_SEQUENCE_RANGES`].
    fn sequence_set(&mut self) -> R<SequenceSet> {
        if self.eat(b'$') {
            return Ok(SequenceSet::Saved);
        }
        let mut ranges = Vec::new();
        loop {
            let a = self.seq_number()?;
            let b = if self.eat(b':') { self.seq_number()? } else { a };
            if ranges.len() == MAX_SEQUENCE_RANGES {
                return Err("too many ranges in sequence set");
            }
            ranges.push((a, b));
            if !self.eat(b',') {
                return Ok(SequenceSet::Ranges(ranges));
            }
        }
    }

    fn month(&mut self) -> R<u32> {
        let m = self.b.get(self.i..self.i + 3).ok_or("bad month")?;
        let k = MONTHS
            .iter()
            .position(|name| name.as_bytes().eq_ignore_ascii_case(m))
            .ok_or("bad month")?;
        self.i += 3;
        // At most 12.
        Ok(u32::try_from(k).unwrap_or(0) + 1)
    }

    fn fixed_digits(&mut self, n: usize) -> R<u32> {
        let d = self.b.get(self.i..self.i + n).ok_or("bad date")?;
        if !d.iter().all(u8::is_ascii_digit) {
            return Err("bad date");
        }
        self.i += n;
        Ok(d.iter().fold(0, |a, &c| a * 10 + u32::from(c - b'0')))
    }

    /// `day-month-year` with its ranges checked, the day being 1 or 2 digits.
    fn date_text(&mut self) -> R<(u32, u32, u32)> {
        let d = self.digits().map_err(|_| "bad date")?;
        if d.len() > 2 {
            return Err("bad date");
        }
        let day = d.iter().fold(0, |a, &c| a * 10 + u32::from(c - b'0'));
        self.expect(b'-', "bad date")?;
        let month = self.month()?;
        self.expect(b'-', "bad date")?;
        let year = self.fixed_digits(4)?;
        if day == 0 || day > days_in_month(year, month) {
            return Err("day out of range");
        }
        Ok((year, month, day))
    }

    /// `date` (RFC 9051 §9), optionally quoted.
    fn date(&mut self) -> R<Date> {
        let quoted = self.eat(b'"');
        let (year, month, day) = self.date_text()?;
        if quoted {
            self.expect(b'"', "bad date")?;
        }
        Ok(Date {
            year: u16::try_from(year).map_err(|_| "bad date")?,
            month: u8::try_from(month).map_err(|_| "bad date")?,
            day: u8::try_from(day).map_err(|_| "bad date")?,
        })
    }

    /// `date-time` (RFC 9051 §9): `" 1-Feb-1994 21:52:25 -0800"`.
    fn date_time(&mut self) -> R<DateTime> {
        self.expect(b'"', "bad date-time")?;
        self.eat(b' ');
        let (year, month, day) = self.date_text()?;
        self.expect(b' ', "bad date-time")?;
        let h = self.fixed_digits(2)?;
        self.expect(b':', "bad date-time")?;
        let m = self.fixed_digits(2)?;
        self.expect(b':', "bad date-time")?;
        let s = self.fixed_digits(2)?;
        self.expect(b' ', "bad date-time")?;
        let sign: i64 = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err("bad zone"),
        };
        self.i += 1;
        let zh = self.fixed_digits(2)?;
        let zm = self.fixed_digits(2)?;
        self.expect(b'"', "bad date-time")?;
        if h > 23 || m > 59 || s > 60 || zh > 23 || zm > 59 {
            return Err("time out of range");
        }
        let offset = sign * i64::from(zh * 60 + zm);
        let days = days_from_civil(i64::from(year), month, day);
        let local = days * 86_400 + i64::from(h * 3600 + m * 60 + s);
        Ok(DateTime {
            unix: local - offset * 60,
            offset_minutes: i16::try_from(offset).map_err(|_| "bad zone")?,
        })
    }
}

mod commands;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use proptest::prelude::*;

    pub(super) fn ok(input: &str) -> Command {
        let line = format!("{input}\r\n");
        match parse_command(line.as_bytes()) {
            Ok(c) => c.command,
            Err(e) => panic!("{input:?}: {e}"),
        }
    }

    pub(super) fn err(input: &[u8]) -> ParseError {
        let mut line = input.to_vec();
        line.extend_from_slice(b"\r\n");
        match parse_command(&line) {
            Ok(c) => panic!("{:?} parsed: {c:?}", String::from_utf8_lossy(input)),
            Err(e) => e,
        }
    }

    pub(super) fn r(a: u32, b: u32) -> (SeqBound, SeqBound) {
        (SeqBound::Value(a), SeqBound::Value(b))
    }

    pub(super) fn set(ranges: &[(u32, u32)]) -> SequenceSet {
        SequenceSet::Ranges(ranges.iter().map(|&(a, b)| r(a, b)).collect())
    }

    pub(super) fn s(x: &str) -> String {
        x.into()
    }

    #[test]
    fn sasl_responses_and_idle_done() {
        assert_eq!(parse_sasl_response(b"*\r\n"), Ok(SaslResponse::Cancel));
        assert_eq!(
            parse_sasl_response(b"dGVzdA==\r\n"),
            Ok(SaslResponse::Data(SaslData(Zeroizing::new(b"test".to_vec()))))
        );
        assert_eq!(
            parse_sasl_response(b""),
            Ok(SaslResponse::Data(SaslData(Zeroizing::new(vec![]))))
        );
        for bad in [&b"dGVzdA="[..], b"dGVzdB==", b"dG=zdA==", b"****", b"dGVz dA=="] {
            assert!(parse_sasl_response(bad).is_err(), "{bad:?}");
        }
        assert!(is_idle_done(b"DONE\r\n") && is_idle_done(b"done") && !is_idle_done(b"DONE "));
    }

    #[test]
    fn date_times_are_validated_rfc9051_9() {
        let table: &[(&str, Option<(i64, i16)>)] = &[
            ("\" 1-Feb-1994 21:52:25 -0800\"", Some((760_168_345, -480))),
            ("\"01-Feb-1994 21:52:25 -0800\"", Some((760_168_345, -480))),
            ("\"01-jan-1970 00:00:00 +0000\"", Some((0, 0))),
            ("\"29-Feb-2000 23:59:59 +0100\"", Some((951_865_199, 60))),
            ("\"29-Feb-1900 00:00:00 +0000\"", None),
            ("\"31-Apr-2020 00:00:00 +0000\"", None),
            ("\"01-Feb-1994 24:00:00 +0000\"", None),
            ("\"01-Feb-1994 21:60:00 +0000\"", None),
            ("\"01-Feb-1994 21:52:25 +0060\"", None),
            ("\"01-Foo-1994 21:52:25 +0000\"", None),
            ("\"01-Feb-94 21:52:25 +0000\"", None),
            ("\"001-Feb-1994 21:52:25 +0000\"", None),
            ("\"01-Feb-1994 21:52:25 0000\"", None),
        ];
        for (text, want) in table {
            let mut p = Parser { b: text.as_bytes(), i: 0 };
            let got = p.date_time().ok().map(|d| (d.unix, d.offset_minutes));
            assert_eq!(got, *want, "{text}");
        }
    }

    /// `spec/dmap.md` §6: MAX_SEQUENCE_RANGES at the limit and one past.
    #[test]
    fn sequence_ranges_at_and_past() {
        let list = |n: usize| (1..=n).map(|k| k.to_string()).collect::<Vec<_>>().join(",");
        let Command::Fetch(f) = ok(&format!("a FETCH {} UID", list(MAX_SEQUENCE_RANGES))) else {
            panic!()
        };
        assert!(matches!(f.set, SequenceSet::Ranges(r) if r.len() == MAX_SEQUENCE_RANGES));
        let e = err(format!("a FETCH {} UID", list(MAX_SEQUENCE_RANGES + 1)).as_bytes());
        assert_eq!(e.reason, "too many ranges in sequence set");
        let Command::Fetch(f) = ok("a FETCH 1,3:5,7:*,*:4,4294967295 FLAGS") else { panic!() };
        assert_eq!(
            f.set,
            SequenceSet::Ranges(vec![
                r(1, 1),
                r(3, 5),
                (SeqBound::Value(7), SeqBound::Star),
                (SeqBound::Star, SeqBound::Value(4)),
                r(u32::MAX, u32::MAX)
            ])
        );
        for bad in ["0", "1:0", "4294967296", "1,", ",1", "1::2", "$,1", "01"] {
            assert!(parse_command(format!("a FETCH {bad} FLAGS\r\n").as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_carry_the_tag_and_no_client_bytes() {
        let table: &[(&[u8], Option<&str>, &str)] = &[
            (b"", None, "bad tag"),
            (b"+ NOOP", None, "bad tag"),
            (b"a", None, "expected a space"),
            (b"a BOGUS", Some("a"), "unknown command"),
            (b"a NOOP extra", Some("a"), "expected the end of the command"),
            (b"a LOGIN \"unterminated", Some("a"), "unterminated or bad quoted string"),
            (b"a LOGIN \"x\\y\" p", Some("a"), "bad escape in quoted string"),
            (b"a SELECT \"\xff\"", Some("a"), "string is not utf-8"),
            (b"a FETCH 1 (FLAGS", Some("a"), "expected a closing parenthesis"),
        ];
        for (input, tag, reason) in table {
            let e = err(input);
            assert_eq!((e.tag.as_ref().map(|t| t.0.as_str()), e.reason), (*tag, *reason));
        }
        let long = "t".repeat(MAX_TAG_LEN);
        assert!(parse_command(format!("{long} NOOP\r\n").as_bytes()).is_ok());
        assert_eq!(err(format!("{long}t NOOP").as_bytes()).tag, None);
        // A command needs its line end.
        assert_eq!(parse_command(b"a NOOP").unwrap_err().reason, "expected the end of the command");
        assert!(parse_command(b"a NOOP\n").is_ok());
        // 8-bit UTF-8 in a quoted string (IMAP4rev2).
        assert_eq!(ok("a DELETE \"Entwürfe\""), Command::Delete(s("Entwürfe")));
    }

    #[test]
    fn calendar_helpers_agree() {
        for days in [-1_000_000i64, -1, 0, 1, 10_957, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    proptest! {
        #[test]
        fn no_input_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_command(&b);
            let _ = parse_sasl_response(&b);
        }

        #[test]
        fn no_command_like_input_panics(
            words in proptest::collection::vec(prop_oneof![
                Just("a"), Just(" "), Just("("), Just(")"), Just("["), Just("]"), Just("<"), Just(">"),
                Just("\""), Just("\\"), Just("{"), Just("}"), Just("~"), Just("+"), Just("1"), Just("*"),
                Just("$"), Just(":"), Just(","), Just("."), Just("0"), Just("\r\n"), Just("UID"),
                Just("FETCH"), Just("SEARCH"), Just("STORE"), Just("BODY"), Just("NOT"), Just("OR"),
                Just("LIST"), Just("SELECT"), Just("APPEND"), Just("HEADER.FIELDS"), Just("{1}\r\n"),
                Just("~{2}\r\n"), Just("-"), Just("NIL"), Just("ID"), Just("QRESYNC"), Just("RETURN"),
            ], 0..40)
        ) {
            let mut input = b"t ".to_vec();
            input.extend(words.concat().bytes());
            input.extend_from_slice(b"\r\n");
            let _ = parse_command(&input);
        }

        #[test]
        fn astring_round_trips(b in proptest::collection::vec(any::<u8>(), 0..100)) {
            let mut line = b"t LOGIN u ".to_vec();
            crate::encode::encode_astring(&mut line, &b);
            line.extend_from_slice(b"\r\n");
            let got = parse_command(&line);
            if b.contains(&0) {
                // A NUL is never in an astring (RFC 9051 CHAR8): its literal is refused.
                prop_assert!(got.is_err());
            } else {
                let Ok(TaggedCommand { command: Command::Login { password, .. }, .. }) = got else {
                    panic!("{got:?}");
                };
                prop_assert_eq!(&password.0[..], &b[..]);
            }
        }

        #[test]
        fn date_time_round_trips(unix in -2_000_000_000i64..100_000_000_000, off in -1439i16..=1439) {
            let mut text = Vec::new();
            crate::encode::encode_date_time(&mut text, DateTime { unix, offset_minutes: off });
            let mut p = Parser { b: &text, i: 0 };
            prop_assert_eq!(p.date_time(), Ok(DateTime { unix, offset_minutes: off }));
        }
    }
}
