//! The record parser (`spec/dns-record.md` §2, §3, §5).

use super::{
    EXPIRY_MAX_DAYS, EXPIRY_MIN_DAYS, Host, KEY_MAX_LEN, MAX_DELIVERY_HOSTS, MAX_POKS,
    MAX_SYNDICATES, MAX_TLS_PINS, MAX_UNKNOWN_KEYS, POK_TEXT_LEN, Policy, Record, RecordError,
    SubdomainPolicy, TLS_TEXT_LEN, TXT_STRING_MAX_LEN, TlsPin,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use dime_core::Domain;
use dime_core::crypto::{Ed25519PublicKey, Ed25519Signature};
use dime_core::limits::DX_RECORD_MAX_LEN;

/// The keys this version knows (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Ver,
    Pok,
    Tls,
    Pol,
    Syn,
    Dx,
    Exp,
    Sub,
}

/// Every accepted key name, canonical name first for each key (§5, the alias table).
pub(crate) const KEY_NAMES: &[(&str, Key)] = &[
    ("ver", Key::Ver),
    ("version", Key::Ver),
    ("pok", Key::Pok),
    ("primary", Key::Pok),
    ("tls", Key::Tls),
    ("pol", Key::Pol),
    ("policy", Key::Pol),
    ("syn", Key::Syn),
    ("syndicates", Key::Syn),
    ("dx", Key::Dx),
    ("deliver", Key::Dx),
    ("exp", Key::Exp),
    ("expiry", Key::Exp),
    ("sub", Key::Sub),
    ("subdomain", Key::Sub),
];

impl Key {
    /// The canonical (short, lower-case) name.
    pub(crate) fn canonical(self) -> &'static str {
        match self {
            Key::Ver => "ver",
            Key::Pok => "pok",
            Key::Tls => "tls",
            Key::Pol => "pol",
            Key::Syn => "syn",
            Key::Dx => "dx",
            Key::Exp => "exp",
            Key::Sub => "sub",
        }
    }

    /// The key a name denotes, ignoring ASCII case.
    pub(crate) fn lookup(name: &str) -> Option<Key> {
        KEY_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|&(_, k)| k)
    }
}

/// Separators between tokens (§3): space, tab, CR, LF and `;` (libdime's separator).
pub(crate) fn is_separator(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b';')
}

/// Octets allowed inside a token (§3): printable ASCII except `;`.
pub(crate) fn is_token_octet(b: u8) -> bool {
    (0x21..=0x7E).contains(&b) && b != b';'
}

/// Key syntax (§3): a letter, then letters, digits, `-` or `_`; at most [`KEY_MAX_LEN`].
pub(crate) fn is_valid_key(k: &str) -> bool {
    let b = k.as_bytes();
    match b.first() {
        Some(f) if f.is_ascii_alphabetic() => {}
        _ => return false,
    }
    b.len() <= KEY_MAX_LEN
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

/// Joins the character-strings of one TXT record without separator (§2), after checking each
/// string's length and the total against the limits, before allocating.
pub(crate) fn join_strings<S: AsRef<[u8]>>(strings: &[S]) -> Result<Vec<u8>, RecordError> {
    let mut total: usize = 0;
    for (index, s) in strings.iter().enumerate() {
        let len = s.as_ref().len();
        if len > TXT_STRING_MAX_LEN {
            return Err(RecordError::StringTooLong { index });
        }
        total = total.saturating_add(len);
        if total > DX_RECORD_MAX_LEN {
            return Err(RecordError::TooLong);
        }
    }
    let mut joined = Vec::with_capacity(total);
    for s in strings {
        joined.extend_from_slice(s.as_ref());
    }
    Ok(joined)
}

/// Whether the joined strings begin (after separators) with a `ver` or `version` key (§2).
/// Looks at no more than the first few octets and allocates nothing.
fn starts_with_version<S: AsRef<[u8]>>(strings: &[S]) -> bool {
    let mut octets = strings.iter().flat_map(|s| s.as_ref().iter().copied());
    let mut key = [0u8; 8];
    let mut n = 0;
    for b in octets.by_ref() {
        if n == 0 && is_separator(b) {
            continue;
        }
        if b == b'=' {
            let k = &key[..n];
            return k.eq_ignore_ascii_case(b"ver") || k.eq_ignore_ascii_case(b"version");
        }
        if n == key.len() || !is_token_octet(b) {
            return false;
        }
        key[n] = b;
        n += 1;
    }
    false
}

/// Picks the one DIME record among a TXT RRset (§2) and parses it.
pub(crate) fn parse_rrset<R: AsRef<[S]>, S: AsRef<[u8]>>(
    rrset: &[R],
) -> Result<Option<Record>, RecordError> {
    let mut found: Option<&[S]> = None;
    for rr in rrset {
        let strings = rr.as_ref();
        if starts_with_version(strings) {
            if found.is_some() {
                return Err(RecordError::MultipleRecords);
            }
            found = Some(strings);
        }
    }
    match found {
        Some(strings) => {
            let joined = join_strings(strings)?;
            parse_text(&joined).map(Some)
        }
        None => Ok(None),
    }
}

/// Parses the joined record (§3, §5).
pub(crate) fn parse_text(text: &[u8]) -> Result<Record, RecordError> {
    if text.len() > DX_RECORD_MAX_LEN {
        return Err(RecordError::TooLong);
    }
    if let Some(offset) = text.iter().position(|&b| !is_separator(b) && !is_token_octet(b)) {
        return Err(RecordError::BadCharacter { offset });
    }
    // Every octet is ASCII now, so this conversion cannot fail; map the impossible error anyway.
    let text = std::str::from_utf8(text).map_err(|_| RecordError::BadCharacter { offset: 0 })?;

    let mut record = Record::new(Vec::new());
    let mut seen = [false; 8];
    let mut index = 0usize;
    let mut any = false;
    for token in text.split(|c: char| c.is_ascii() && is_separator(c as u8)) {
        if token.is_empty() {
            continue;
        }
        any = true;
        let (key_text, value) =
            token.split_once('=').ok_or(RecordError::MissingEquals { index })?;
        if !is_valid_key(key_text) {
            return Err(RecordError::BadKey { index });
        }
        let key = Key::lookup(key_text);
        if value.is_empty() {
            return Err(RecordError::EmptyValue { key: key.map_or("unknown", Key::canonical) });
        }
        if index == 0 && key != Some(Key::Ver) {
            return Err(RecordError::VersionNotFirst);
        }
        match key {
            None => {
                if record.unknown.len() >= MAX_UNKNOWN_KEYS {
                    return Err(RecordError::TooManyUnknown);
                }
                record.unknown.push((key_text.to_ascii_lowercase(), value.to_owned()));
            }
            Some(k) => {
                let slot = k as usize;
                let repeatable = matches!(k, Key::Pok | Key::Tls | Key::Syn | Key::Dx);
                if !repeatable {
                    if seen.get(slot).copied().unwrap_or(false) {
                        return Err(RecordError::DuplicateKey { key: k.canonical() });
                    }
                    if let Some(s) = seen.get_mut(slot) {
                        *s = true;
                    }
                }
                apply(&mut record, k, value)?;
            }
        }
        index += 1;
    }
    if !any {
        return Err(RecordError::Empty);
    }
    if record.poks.is_empty() {
        return Err(RecordError::MissingPok);
    }
    Ok(record)
}

/// Pushes `item` unless `list` already holds `max` items.
fn push_bounded<T>(list: &mut Vec<T>, item: T, key: Key, max: usize) -> Result<(), RecordError> {
    if list.len() >= max {
        return Err(RecordError::TooMany { key: key.canonical(), max });
    }
    list.push(item);
    Ok(())
}

/// Applies one known key's value to the record (§5).
fn apply(record: &mut Record, key: Key, value: &str) -> Result<(), RecordError> {
    match key {
        Key::Ver => {
            if value != "1" {
                return Err(RecordError::UnsupportedVersion);
            }
        }
        Key::Pok => {
            let pok = parse_pok(value)?;
            push_bounded(&mut record.poks, pok, key, MAX_POKS)?;
        }
        Key::Tls => {
            let pin = parse_tls(value)?;
            push_bounded(&mut record.tls, pin, key, MAX_TLS_PINS)?;
        }
        Key::Pol => record.policy = Some(Policy::parse(value).ok_or(RecordError::BadPolicy)?),
        Key::Syn => {
            let host = parse_host(key, value)?;
            push_bounded(&mut record.syndicates, host, key, MAX_SYNDICATES)?;
        }
        Key::Dx => {
            let host = parse_host(key, value)?;
            push_bounded(&mut record.delivery_hosts, host, key, MAX_DELIVERY_HOSTS)?;
        }
        Key::Exp => record.expiry_days = Some(parse_expiry(value)?),
        Key::Sub => {
            record.subdomain = Some(SubdomainPolicy::parse(value).ok_or(RecordError::BadSubdomain)?)
        }
    }
    Ok(())
}

/// Decodes exactly `N` octets from `len` characters of canonical unpadded base64.
fn decode_fixed<const N: usize>(value: &str, len: usize) -> Option<[u8; N]> {
    if value.len() != len {
        return None;
    }
    // The engine refuses padding and non-zero trailing bits: one text per value (§5.2).
    let bytes = STANDARD_NO_PAD.decode(value).ok()?;
    bytes.try_into().ok()
}

/// A `pok=` value (§5.2).
pub(crate) fn parse_pok(value: &str) -> Result<Ed25519PublicKey, RecordError> {
    decode_fixed::<32>(value, POK_TEXT_LEN).map(Ed25519PublicKey).ok_or(RecordError::BadPok)
}

/// A `tls=` value (§5.3).
pub(crate) fn parse_tls(value: &str) -> Result<TlsPin, RecordError> {
    decode_fixed::<64>(value, TLS_TEXT_LEN)
        .map(|b| TlsPin(Ed25519Signature(b)))
        .ok_or(RecordError::BadTls)
}

/// A canonical decimal: 1 to `max_digits` digits, no sign, no leading zero.
fn parse_decimal(s: &str, max_digits: usize) -> Option<u32> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > max_digits || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 1 && b.first() == Some(&b'0') {
        return None;
    }
    s.parse().ok()
}

/// An `exp=` value (§5.7).
fn parse_expiry(value: &str) -> Result<u16, RecordError> {
    let n = parse_decimal(value, 3).ok_or(RecordError::BadExpiry)?;
    let n = u16::try_from(n).map_err(|_| RecordError::BadExpiry)?;
    if (EXPIRY_MIN_DAYS..=EXPIRY_MAX_DAYS).contains(&n) {
        Ok(n)
    } else {
        Err(RecordError::BadExpiry)
    }
}

/// A `dx=` or `syn=` value: `name[:port]` (§5.5).
pub(crate) fn parse_host(key: Key, value: &str) -> Result<Host, RecordError> {
    let bad = || RecordError::BadHost { key: key.canonical() };
    let (name, port) = match value.split_once(':') {
        Some((name, port)) => {
            let p = parse_decimal(port, 5).ok_or_else(bad)?;
            let p = u16::try_from(p).map_err(|_| bad())?;
            if p == 0 {
                return Err(bad());
            }
            (name, Some(p))
        }
        None => (value, None),
    };
    let name = Domain::parse(name).map_err(|_| bad())?;
    // A name whose last label is all digits is an address literal, not a host name
    // (RFC 1123 §2.1).
    let last = name.as_str().rsplit('.').next().unwrap_or("");
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok(Host { name, port })
}
