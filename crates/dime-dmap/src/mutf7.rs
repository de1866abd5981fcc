//! Modified UTF-7, the mailbox-name encoding of IMAP4rev1 (RFC 3501 §5.1.3).
//!
//! Printable US-ASCII other than `&` stands for itself, `&` is `&-`, and every run of other
//! characters is `&` + the modified base64 (`,` for `/`, no padding) of its UTF-16BE + `-`.
//! The decoder is strict: it refuses every form the encoder would not produce (a printable
//! character shifted needlessly, two adjacent shifts, nonzero padding bits, a lone surrogate,
//! an unterminated shift), so one name has one spelling.

/// A name was not canonical modified UTF-7 (RFC 3501 §5.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid modified utf-7: {0}")]
pub struct Mutf7Error(&'static str);

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn is_direct(c: u32) -> bool {
    (0x20..=0x7e).contains(&c)
}

/// Encodes a name in modified UTF-7 (RFC 3501 §5.1.3).
#[must_use]
pub fn encode_mutf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut units: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_direct(u32::from(c)) {
            flush_shift(&mut out, &mut units);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush_shift(&mut out, &mut units);
    out
}

fn flush_shift(out: &mut String, units: &mut Vec<u16>) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut bits: u32 = 0;
    let mut nbits = 0u32;
    for u in units.iter() {
        for byte in u.to_be_bytes() {
            bits = (bits << 8) | u32::from(byte);
            nbits += 8;
            while nbits >= 6 {
                nbits -= 6;
                out.push(char::from(ALPHABET[((bits >> nbits) & 0x3f) as usize]));
            }
        }
    }
    if nbits > 0 {
        out.push(char::from(ALPHABET[((bits << (6 - nbits)) & 0x3f) as usize]));
    }
    out.push('-');
    units.clear();
}

fn b64_value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b',' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes a modified UTF-7 name (RFC 3501 §5.1.3), refusing non-canonical forms.
///
/// # Errors
/// [`Mutf7Error`] naming the rule broken.
pub fn decode_mutf7(name: &[u8]) -> Result<String, Mutf7Error> {
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    // Whether the previous item was a shifted run (two adjacent runs are not canonical).
    let mut after_shift = false;
    while i < name.len() {
        let c = name[i];
        if c != b'&' {
            if !is_direct(u32::from(c)) {
                return Err(Mutf7Error("octet outside printable us-ascii"));
            }
            out.push(char::from(c));
            i += 1;
            after_shift = false;
            continue;
        }
        i += 1;
        if name.get(i) == Some(&b'-') {
            out.push('&');
            i += 1;
            after_shift = false;
            continue;
        }
        if after_shift {
            return Err(Mutf7Error("adjacent shifted runs"));
        }
        let start = i;
        while i < name.len() && name[i] != b'-' {
            i += 1;
        }
        if i >= name.len() {
            return Err(Mutf7Error("unterminated shift"));
        }
        decode_run(&name[start..i], &mut out)?;
        i += 1;
        after_shift = true;
    }
    Ok(out)
}

fn decode_run(run: &[u8], out: &mut String) -> Result<(), Mutf7Error> {
    let mut bits: u32 = 0;
    let mut nbits = 0u32;
    let mut units: Vec<u16> = Vec::with_capacity(run.len() * 6 / 16 + 1);
    let mut pending: Option<u8> = None;
    for &c in run {
        let v = b64_value(c).ok_or(Mutf7Error("bad base64 in shift"))?;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            let byte = ((bits >> nbits) & 0xff) as u8;
            bits &= (1 << nbits) - 1;
            match pending.take() {
                None => pending = Some(byte),
                Some(hi) => units.push(u16::from_be_bytes([hi, byte])),
            }
        }
    }
    if pending.is_some() {
        return Err(Mutf7Error("odd number of octets in shift"));
    }
    if nbits >= 6 || bits != 0 {
        return Err(Mutf7Error("nonzero or excess padding bits"));
    }
    for r in char::decode_utf16(units.iter().copied()) {
        let c = r.map_err(|_| Mutf7Error("unpaired surrogate"))?;
        if is_direct(u32::from(c)) {
            return Err(Mutf7Error("printable character shifted"));
        }
        out.push(c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 3501 §5.1.3 and its example, plus RFC 2152-style edge cases.
    #[test]
    fn known_answers_rfc3501_5_1_3() {
        let table: &[(&str, &str)] = &[
            ("INBOX", "INBOX"),
            ("&", "&-"),
            ("a&b", "a&-b"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("ü&", "&APw-&-"),
            ("😀", "&2D3eAA-"),
            ("\u{7f}", "&AH8-"),
            ("", ""),
        ];
        for (plain, wire) in table {
            assert_eq!(encode_mutf7(plain), *wire, "encode {plain:?}");
            assert_eq!(decode_mutf7(wire.as_bytes()).as_deref(), Ok(*plain), "decode {wire}");
        }
    }

    #[test]
    fn decode_refuses_non_canonical_forms() {
        let bad: &[&str] = &[
            "&AGE-",      // "a" shifted needlessly
            "&AGEAYg-",   // "ab" shifted
            "&APw-&APw-", // two adjacent shifts: canonical is &APwA,A-
            "&APw",       // unterminated
            "&APx-",      // nonzero padding bits
            "&APwA-",     // excess base64 character
            "&AP-",       // odd octets
            "&A/w-",      // standard base64 '/', not ','
            "&APw=-",     // padding
            "&2D0-",      // lone high surrogate
            "\u{e9}",     // raw 8-bit
            "a\tb",       // control
        ];
        for b in bad {
            assert!(decode_mutf7(b.as_bytes()).is_err(), "{b:?} accepted");
        }
        assert_eq!(decode_mutf7(b"&APwA,A-").as_deref(), Ok("üü"));
        assert_eq!(encode_mutf7("üü"), "&APwA,A-");
    }

    proptest! {
        #[test]
        fn round_trips(s in any::<String>()) {
            let wire = encode_mutf7(&s);
            prop_assert!(wire.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            prop_assert_eq!(decode_mutf7(wire.as_bytes()), Ok(s));
        }

        #[test]
        fn decode_never_panics_and_is_canonical(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(s) = decode_mutf7(&b) {
                let wire = encode_mutf7(&s);
                prop_assert_eq!(wire.as_bytes(), &b[..]);
            }
        }
    }
}
