//! The canonical formatter (`spec/dns-record.md` §4) and the checks on hand-built records.

use super::parse::{Key, is_token_octet, is_valid_key, parse_host};
use super::{
    EXPIRY_MAX_DAYS, EXPIRY_MIN_DAYS, MAX_DELIVERY_HOSTS, MAX_POKS, MAX_SYNDICATES, MAX_TLS_PINS,
    MAX_UNKNOWN_KEYS, RECORD_VERSION, Record, RecordError, TXT_STRING_MAX_LEN,
};
use dime_core::limits::DX_RECORD_MAX_LEN;

/// The canonical tokens, in the canonical order.
fn tokens(r: &Record) -> Vec<String> {
    let mut t = Vec::new();
    t.push(format!("ver={RECORD_VERSION}"));
    t.extend(r.poks.iter().map(|k| format!("pok={k}")));
    t.extend(r.tls.iter().map(|p| format!("tls={p}")));
    t.extend(r.policy.map(|p| format!("pol={p}")));
    t.extend(r.syndicates.iter().map(|h| format!("syn={h}")));
    t.extend(r.delivery_hosts.iter().map(|h| format!("dx={h}")));
    t.extend(r.expiry_days.map(|d| format!("exp={d}")));
    t.extend(r.subdomain.map(|s| format!("sub={s}")));
    t.extend(r.unknown.iter().map(|(k, v)| format!("{k}={v}")));
    t
}

/// The canonical text: the tokens joined by one space.
pub(crate) fn format(r: &Record) -> String {
    tokens(r).join(" ")
}

/// Splits canonical text into character-strings of at most [`TXT_STRING_MAX_LEN`] octets.
/// Each string but the last ends just after a space (so that joining without separator gives
/// back the text); a token longer than a whole string is cut where it must be.
pub(crate) fn split_strings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > TXT_STRING_MAX_LEN {
        // `text` is ASCII (every formatted octet is), so every index is a char boundary;
        // `get` keeps this panic-free regardless.
        let window = rest.get(..TXT_STRING_MAX_LEN).unwrap_or(rest);
        let cut = match window.rfind(' ') {
            Some(space) => space + 1,
            None => window.len(),
        };
        let (head, tail) = rest.split_at_checked(cut).unwrap_or((rest, ""));
        out.push(head.to_owned());
        rest = tail;
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

/// The rules of §5 and §9, checked on a record built by hand.
pub(crate) fn validate(r: &Record) -> Result<(), RecordError> {
    if r.poks.is_empty() {
        return Err(RecordError::MissingPok);
    }
    let counts = [
        (Key::Pok, r.poks.len(), MAX_POKS),
        (Key::Tls, r.tls.len(), MAX_TLS_PINS),
        (Key::Syn, r.syndicates.len(), MAX_SYNDICATES),
        (Key::Dx, r.delivery_hosts.len(), MAX_DELIVERY_HOSTS),
    ];
    for (key, n, max) in counts {
        if n > max {
            return Err(RecordError::TooMany { key: key.canonical(), max });
        }
    }
    if let Some(d) = r.expiry_days
        && !(EXPIRY_MIN_DAYS..=EXPIRY_MAX_DAYS).contains(&d)
    {
        return Err(RecordError::BadExpiry);
    }
    for (key, hosts) in [(Key::Syn, &r.syndicates), (Key::Dx, &r.delivery_hosts)] {
        for host in hosts {
            // A hand-built host must read back as itself: port not 0, name not an address.
            if parse_host(key, &host.to_string()).as_ref() != Ok(host) {
                return Err(RecordError::BadHost { key: key.canonical() });
            }
        }
    }
    if r.unknown.len() > MAX_UNKNOWN_KEYS {
        return Err(RecordError::TooManyUnknown);
    }
    let text = format(r);
    // The unknown tokens come last, so their offsets count back from the end of the text.
    let unknown_len: usize = r.unknown.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut offset = text.len().saturating_sub(unknown_len);
    let first_unknown_index = tokens(r).len() - r.unknown.len();
    for (i, (k, v)) in r.unknown.iter().enumerate() {
        offset += 1;
        if !is_valid_key(k) || k.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(RecordError::BadKey { index: first_unknown_index + i });
        }
        if let Some(known) = Key::lookup(k) {
            return Err(RecordError::UnknownShadowsKnown { key: known.canonical() });
        }
        if v.is_empty() {
            return Err(RecordError::EmptyValue { key: "unknown" });
        }
        if let Some(p) = v.bytes().position(|b| !is_token_octet(b)) {
            return Err(RecordError::BadCharacter { offset: offset + k.len() + 1 + p });
        }
        offset += k.len() + 1 + v.len();
    }
    if format(r).len() > DX_RECORD_MAX_LEN {
        return Err(RecordError::TooLong);
    }
    Ok(())
}
