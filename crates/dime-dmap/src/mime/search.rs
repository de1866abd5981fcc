//! What SEARCH needs from a message (RFC 9051 §6.4.4): header values, the sent date and a
//! case-insensitive text match over decoded text parts.

use super::fetch::decoded_body;
use super::header;
use super::tree::MimeTree;

/// Where [`contains_text`] looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextScope {
    /// The body: text parts and the headers of nested messages (SEARCH BODY).
    Body,
    /// The header and the body (SEARCH TEXT).
    Text,
}

/// The values of every top-level header field named `name` (case-insensitive), unfolded and
/// with RFC 2047 encoded words decoded.
pub fn header_values(raw: &[u8], name: &str) -> Vec<String> {
    let (h, _) = header::split_header(raw, 0, raw.len());
    header::fields(raw, h)
        .iter()
        .filter(|f| header::is_named(raw, f, name))
        .map(|f| decoded_value(&raw[f.value.clone()]))
        .collect()
}

fn decoded_value(v: &[u8]) -> String {
    let unfolded: Vec<u8> = v.iter().copied().filter(|&b| b != b'\r' && b != b'\n').collect();
    header::decode_2047(&unfolded)
}

/// The Date header as unix seconds (RFC 5322 §3.3 with the obsolete syntax of §4.3: two- and
/// three-digit years, named zones; a military or unknown zone counts as +0000). `None`
/// without a Date field or when it does not read as a date.
pub fn sent_date(raw: &[u8]) -> Option<i64> {
    let (h, _) = header::split_header(raw, 0, raw.len());
    let fields = header::fields(raw, h);
    let f = header::find(raw, &fields, "Date")?;
    parse_date(&raw[f.value.clone()])
}

const MONTHS: [&str; 12] =
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

fn parse_date(v: &[u8]) -> Option<i64> {
    // Words split at blanks, commas and comments.
    let text = String::from_utf8_lossy(v);
    let mut clean = String::new();
    let mut depth = 0u32;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => clean.push(' '),
            c if depth == 0 => clean.push(c),
            _ => {}
        }
    }
    let mut w: Vec<&str> = clean.split_whitespace().collect();
    if w.first().is_some_and(|d| d.chars().all(|c| c.is_ascii_alphabetic())) {
        w.remove(0); // day of week
    }
    if w.len() < 4 {
        return None;
    }
    let day: i64 = w[0].parse().ok()?;
    let month =
        MONTHS.iter().position(|m| w[1].get(..3).is_some_and(|x| x.eq_ignore_ascii_case(m)))?;
    let mut year: i64 = w[2].parse().ok()?;
    if w[2].len() <= 2 {
        year += if year < 50 { 2000 } else { 1900 };
    } else if w[2].len() == 3 {
        year += 1900;
    }
    let t: Vec<i64> = w[3].split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let (hh, mm, ss) = match t[..] {
        [h, m] => (h, m, 0),
        [h, m, s] => (h, m, s),
        _ => return None,
    };
    if !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let zone = w.get(4).map_or(0, |z| zone_offset(z));
    let days = days_from_civil(year, month as i64 + 1, day);
    Some(days * 86400 + hh * 3600 + mm * 60 + ss - zone)
}

/// A zone's offset east of UTC in seconds.
fn zone_offset(z: &str) -> i64 {
    let b = z.as_bytes();
    if b.len() == 5 && (b[0] == b'+' || b[0] == b'-') && b[1..].iter().all(u8::is_ascii_digit) {
        let n: i64 = z[1..].parse().unwrap_or(0);
        let s = (n / 100) * 3600 + (n % 100) * 60;
        return if b[0] == b'-' { -s } else { s };
    }
    let h = match z.to_ascii_uppercase().as_str() {
        "EDT" => -4,
        "EST" | "CDT" => -5,
        "CST" | "MDT" => -6,
        "MST" | "PDT" => -7,
        "PST" => -8,
        _ => 0,
    };
    h * 3600
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whether `needle` occurs, case-insensitively, in the decoded text of the message: text
/// parts with their transfer encoding undone and their charset read (UTF-8; anything else as
/// Latin-1), nested messages' headers, and with [`TextScope::Text`] the message's header
/// (encoded words decoded).
pub fn contains_text(raw: &[u8], tree: &MimeTree, needle: &str, scope: TextScope) -> bool {
    let needle = needle.to_lowercase();
    if needle.is_empty() {
        return true;
    }
    let hit = |s: &str| s.to_lowercase().contains(&needle);
    let header_hit = |h: std::ops::Range<usize>| {
        header::fields(raw, h).iter().any(|f| hit(&decoded_value(&raw[f.whole.clone()])))
    };
    if scope == TextScope::Text && header_hit(tree.root().header.clone()) {
        return true;
    }
    let mut nested = vec![false; tree.nodes.len()];
    for m in tree.nodes.iter().filter_map(|n| n.message) {
        nested[m] = true;
    }
    for (k, n) in tree.nodes.iter().enumerate() {
        if nested[k] && header_hit(n.header.clone()) {
            return true;
        }
        if !n.children.is_empty() || n.message.is_some() || !n.is_text() {
            continue;
        }
        let Ok(body) = decoded_body(raw, n) else { continue };
        let charset = n.param("charset").unwrap_or(b"us-ascii");
        if hit(&header::decode_charset(charset, &body)) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_with_obsolete_zones() {
        assert_eq!(parse_date(b"Thu, 1 Jan 1970 00:00:00 +0000"), Some(0));
        assert_eq!(parse_date(b"1 Jan 70 01:00 +0100"), Some(0));
        assert_eq!(parse_date(b"Wed, 31 Dec 1969 19:00:00 EST"), Some(0));
        assert_eq!(parse_date(b"Mon, 7 Dec 2026 10:00:00 +0100 (CET)"), Some(1_796_634_000));
        assert_eq!(parse_date(b"1 Jan 2000 00:00:00 Z"), Some(946_684_800));
        assert_eq!(parse_date(b"garbage"), None);
        assert_eq!(parse_date("1 éa 2000 00:00".as_bytes()), None);
        assert_eq!(parse_date(b"32 Jan 2000 00:00"), None);
    }

    #[test]
    fn text_search_decodes() {
        let raw = b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 au lait\r\n";
        let t = MimeTree::parse(raw);
        assert!(contains_text(raw, &t, "CAFÉ", TextScope::Body));
        assert!(!contains_text(raw, &t, "grüße", TextScope::Body));
        assert!(contains_text(raw, &t, "grüße", TextScope::Text));
        assert_eq!(header_values(raw, "subject"), vec!["Grüße".to_string()]);
    }
}
