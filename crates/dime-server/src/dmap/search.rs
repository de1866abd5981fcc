//! SEARCH keys evaluated over one message (RFC 9051 §6.4.4): flags, numbers and dates from the
//! mailbox's snapshot, headers and text from the message rendered in memory (only when a key
//! needs them). Dates compare in UTC; strings case-insensitively, as substrings.

use dime_dmap::{Date, MimeTree, SearchKey, Selected, SeqBound, SequenceSet, TextScope};

/// What a key is evaluated against.
pub(super) struct Message<'a> {
    pub(super) seq: u32,
    pub(super) uid: u32,
    pub(super) flags: &'a [String],
    pub(super) modseq: u64,
    /// Internal date, seconds since the Unix epoch.
    pub(super) arrival: u64,
    /// The rendered message, when a key needs it.
    pub(super) raw: Option<&'a [u8]>,
    pub(super) tree: Option<&'a MimeTree>,
}

/// Whether evaluating `key` needs the message's content.
pub(super) fn needs_content(key: &SearchKey) -> bool {
    match key {
        SearchKey::And(keys) => keys.iter().any(needs_content),
        SearchKey::Not(k) => needs_content(k),
        SearchKey::Or(a, b) => needs_content(a) || needs_content(b),
        SearchKey::Bcc(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::Larger(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Smaller(_)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_) => true,
        _ => false,
    }
}

/// Whether `key` has a MODSEQ criterion (the answer then carries the highest MODSEQ).
pub(super) fn uses_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::And(keys) => keys.iter().any(uses_modseq),
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::ModSeq(_) => true,
        _ => false,
    }
}

/// Days since 1970-01-01 of a civil date.
fn days(d: Date) -> i64 {
    let (y, m, day) = (i64::from(d.year), i64::from(d.month), i64::from(d.day));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn day_of(unix: i64) -> i64 {
    unix.div_euclid(86_400)
}

fn has(flags: &[String], f: &str) -> bool {
    flags.iter().any(|x| x.eq_ignore_ascii_case(f))
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

fn header_has(m: &Message<'_>, name: &str, needle: &str) -> bool {
    let Some(raw) = m.raw else { return false };
    let values = dime_dmap::header_values(raw, name);
    if needle.is_empty() {
        return !values.is_empty();
    }
    values.iter().any(|v| contains_ci(v, needle))
}

/// Whether `n` (a UID, or a sequence number) is in `set`, without expanding it: a range
/// costs one comparison whatever its length.
fn in_set(set: &SequenceSet, n: u32, uid_mode: bool, sel: &Selected) -> bool {
    match set {
        SequenceSet::Saved => sel.saved.binary_search(&n).is_ok(),
        SequenceSet::Ranges(r) => {
            let star = if uid_mode { sel.max_uid() } else { sel.exists() };
            r.iter().any(|&(a, b)| {
                let (lo, hi) = SeqBound::range(a, b, star);
                (lo..=hi).contains(&n)
            })
        }
    }
}

/// Whether message `m` matches `key`.
pub(super) fn matches(key: &SearchKey, m: &Message<'_>, sel: &Selected) -> bool {
    let size = || m.raw.map_or(0, |r| r.len() as u64);
    let sent = || m.raw.and_then(dime_dmap::sent_date).map(day_of);
    let arrival = day_of(i64::try_from(m.arrival).unwrap_or(0));
    match key {
        SearchKey::And(keys) => keys.iter().all(|k| matches(k, m, sel)),
        SearchKey::All => true,
        SearchKey::Answered => has(m.flags, "\\Answered"),
        SearchKey::Unanswered => !has(m.flags, "\\Answered"),
        SearchKey::Deleted => has(m.flags, "\\Deleted"),
        SearchKey::Undeleted => !has(m.flags, "\\Deleted"),
        SearchKey::Draft => has(m.flags, "\\Draft"),
        SearchKey::Undraft => !has(m.flags, "\\Draft"),
        SearchKey::Flagged => has(m.flags, "\\Flagged"),
        SearchKey::Unflagged => !has(m.flags, "\\Flagged"),
        SearchKey::Seen => has(m.flags, "\\Seen"),
        SearchKey::Unseen => !has(m.flags, "\\Seen"),
        SearchKey::Keyword(k) => has(m.flags, k),
        SearchKey::Unkeyword(k) => !has(m.flags, k),
        // No message is \Recent here (IMAP4rev2 dropped it): NEW is UNSEEN and RECENT.
        SearchKey::Recent | SearchKey::New => false,
        SearchKey::Old => true,
        SearchKey::Before(d) => arrival < days(*d),
        SearchKey::On(d) => arrival == days(*d),
        SearchKey::Since(d) => arrival >= days(*d),
        SearchKey::SentBefore(d) => sent().is_some_and(|s| s < days(*d)),
        SearchKey::SentOn(d) => sent().is_some_and(|s| s == days(*d)),
        SearchKey::SentSince(d) => sent().is_some_and(|s| s >= days(*d)),
        SearchKey::Larger(n) => size() > *n,
        SearchKey::Smaller(n) => size() < *n,
        SearchKey::Bcc(s) => header_has(m, "Bcc", s),
        SearchKey::Cc(s) => header_has(m, "Cc", s),
        SearchKey::From(s) => header_has(m, "From", s),
        SearchKey::To(s) => header_has(m, "To", s),
        SearchKey::Subject(s) => header_has(m, "Subject", s),
        SearchKey::Header(name, s) => header_has(m, name, s),
        SearchKey::Body(s) | SearchKey::Text(s) => match (m.raw, m.tree) {
            (Some(raw), Some(tree)) => {
                let scope = if matches!(key, SearchKey::Body(_)) {
                    TextScope::Body
                } else {
                    TextScope::Text
                };
                dime_dmap::contains_text(raw, tree, s, scope)
            }
            _ => false,
        },
        SearchKey::Not(k) => !matches(k, m, sel),
        SearchKey::Or(a, b) => matches(a, m, sel) || matches(b, m, sel),
        SearchKey::Uid(set) => in_set(set, m.uid, true, sel),
        SearchKey::SequenceSet(set) => match set {
            SequenceSet::Saved => in_set(set, m.uid, true, sel),
            _ => in_set(set, m.seq, false, sel),
        },
        SearchKey::ModSeq(n) => m.modseq >= *n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days(Date { year: 1970, month: 1, day: 1 }), 0);
        assert_eq!(days(Date { year: 2000, month: 3, day: 1 }), 11_017);
        assert_eq!(days(Date { year: 2026, month: 12, day: 7 }), 20_794);
    }
}
