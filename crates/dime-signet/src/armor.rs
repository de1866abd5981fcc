//! PEM-like armor with the OpenPGP CRC-24 (`spec/signet.md` §8), and the one entry point that
//! accepts binary, bare base64 or armor.

use crate::codec::{DecodeError, split_header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use dime_core::limits::{ARMOR_MAX_CHARS, SIGNET_HEADER_LEN, SIGNET_MAX_PAYLOAD};

/// Characters of base64 per armor line (`spec/signet.md` §8).
pub const ARMOR_LINE_LEN: usize = 64;

/// Initial value of the OpenPGP CRC-24 (RFC 4880 §6.1).
pub const CRC24_INIT: u32 = 0x00B7_04CE;
/// Generator polynomial of the OpenPGP CRC-24 (RFC 4880 §6.1).
pub const CRC24_POLY: u32 = 0x0186_4CFB;

/// Base64 that accepts input with or without padding (bare base64 input).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why text is not a valid armored or base64 object (`spec/signet.md` §8).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArmorError {
    /// Longer than [`ARMOR_MAX_CHARS`] (text) or a largest object (binary).
    #[error("input is longer than the largest object ({ARMOR_MAX_CHARS} characters of armor)")]
    TooLarge,
    /// Text that is not ASCII.
    #[error("armored or base64 input must be ascii")]
    NotAscii,
    /// No `-----BEGIN <label>-----` line.
    #[error("armor must start with a -----BEGIN <label>----- line")]
    MissingBegin,
    /// No `-----END <label>-----` line.
    #[error("armor has no -----END <label>----- line")]
    MissingEnd,
    /// The label is not one of the known labels.
    #[error("unknown armor label {0:?}")]
    UnknownLabel(String),
    /// BEGIN and END name different labels.
    #[error("armor begins with {begin:?} but ends with {end:?}")]
    LabelMismatch {
        /// The BEGIN label.
        begin: String,
        /// The END label.
        end: String,
    },
    /// Text after the END line.
    #[error("text follows the armor's END line")]
    TrailingText,
    /// A body line is not base64, or is longer than 64 characters.
    #[error("armor line {line} is not base64 of at most 64 characters")]
    BadLine {
        /// 1-based line number.
        line: usize,
    },
    /// The body is not valid base64.
    #[error("body is not valid base64")]
    BadBase64,
    /// No `=XXXX` checksum line before END.
    #[error("armor has no =XXXX crc-24 line before its END line")]
    MissingChecksum,
    /// The CRC-24 does not match the data.
    #[error("crc-24 mismatch: armor says {stated:06x}, data gives {computed:06x}")]
    BadChecksum {
        /// The checksum line's value.
        stated: u32,
        /// The data's CRC-24.
        computed: u32,
    },
    /// The object's magic does not belong to the armor label (or to no known object).
    #[error("magic {magic} does not match armor label {label:?}")]
    WrongMagic {
        /// The label (empty for bare base64 or binary).
        label: String,
        /// The object's magic.
        magic: u16,
    },
    /// The decoded object's header or fields are broken.
    #[error("{0}")]
    Object(DecodeError),
}

/// The OpenPGP CRC-24 of `data` (RFC 4880 §6.1).
pub fn crc24(data: &[u8]) -> u32 {
    let mut crc = CRC24_INIT;
    for &b in data {
        crc ^= u32::from(b) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= CRC24_POLY;
            }
        }
    }
    crc & 0x00FF_FFFF
}

/// The armor label of an object's magic (`spec/signet.md` §8), or `None` for an unknown magic.
pub fn label_for_magic(magic: u16) -> Option<&'static str> {
    use crate::*;
    Some(match magic {
        MAGIC_ORG_SIGNET => "ORGANIZATIONAL SIGNET",
        MAGIC_USER_SIGNET => "USER SIGNET",
        MAGIC_SSR => "SIGNET SIGNING REQUEST",
        MAGIC_ORG_KEY | MAGIC_ORG_KEY_V2 => "ORGANIZATIONAL KEY",
        MAGIC_USER_KEY | MAGIC_USER_KEY_V2 => "USER KEY",
        MAGIC_ENCRYPTED_ORG_KEY | MAGIC_ENCRYPTED_ORG_KEY_V2 => "ENCRYPTED ORGANIZATIONAL KEY",
        MAGIC_ENCRYPTED_USER_KEY | MAGIC_ENCRYPTED_USER_KEY_V2 => "ENCRYPTED USER KEY",
        _ => return None,
    })
}

const KNOWN_LABELS: [&str; 7] = [
    "ORGANIZATIONAL SIGNET",
    "USER SIGNET",
    "SIGNET SIGNING REQUEST",
    "ORGANIZATIONAL KEY",
    "USER KEY",
    "ENCRYPTED ORGANIZATIONAL KEY",
    "ENCRYPTED USER KEY",
];

/// Checks a binary object's header and that its magic is a known one.
fn check_object(bin: &[u8], label: &str) -> Result<(), ArmorError> {
    let (magic, _) = split_header(bin).map_err(ArmorError::Object)?;
    match label_for_magic(magic) {
        Some(l) if label.is_empty() || l == label => Ok(()),
        _ => Err(ArmorError::WrongMagic { label: label.to_owned(), magic }),
    }
}

/// Armors a binary object: BEGIN line, base64 lines of 64 characters, `=XXXX` CRC-24 line,
/// END line, each ending in `\n` (`spec/signet.md` §8).
pub fn encode(object: &[u8]) -> Result<String, ArmorError> {
    let (magic, _) = split_header(object).map_err(ArmorError::Object)?;
    let label =
        label_for_magic(magic).ok_or(ArmorError::WrongMagic { label: String::new(), magic })?;
    let b64 = STANDARD.encode(object);
    let mut out = String::with_capacity(b64.len() + b64.len() / ARMOR_LINE_LEN + 100);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(ARMOR_LINE_LEN) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push('=');
    out.push_str(&STANDARD_NO_PAD.encode(&crc24(object).to_be_bytes()[1..]));
    out.push_str("\n-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    Ok(out)
}

fn label_of<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    line.strip_prefix(prefix)?.strip_suffix("-----")
}

/// Decodes armored text into the binary object, checking the labels, every line, the CRC-24,
/// the header length and that the magic belongs to the label (`spec/signet.md` §8).
pub fn decode(text: &str) -> Result<Vec<u8>, ArmorError> {
    if text.len() > ARMOR_MAX_CHARS {
        return Err(ArmorError::TooLarge);
    }
    if !text.is_ascii() {
        return Err(ArmorError::NotAscii);
    }
    let mut lines =
        text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end())).filter(|(_, l)| !l.is_empty());
    let (_, first) = lines.next().ok_or(ArmorError::MissingBegin)?;
    let begin = label_of(first.trim_start(), "-----BEGIN ").ok_or(ArmorError::MissingBegin)?;
    if !KNOWN_LABELS.contains(&begin) {
        return Err(ArmorError::UnknownLabel(begin.to_owned()));
    }
    let mut body = String::with_capacity(text.len());
    let mut checksum: Option<&str> = None;
    let mut end: Option<&str> = None;
    for (n, line) in lines.by_ref() {
        if let Some(l) = label_of(line, "-----END ") {
            end = Some(l);
            break;
        }
        if checksum.is_some() {
            // Only the END line may follow the checksum line.
            return Err(ArmorError::BadLine { line: n });
        }
        if let Some(c) = line.strip_prefix('=') {
            checksum = Some(c);
            continue;
        }
        let ok = line.len() <= ARMOR_LINE_LEN
            && line
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
        if !ok {
            return Err(ArmorError::BadLine { line: n });
        }
        body.push_str(line);
    }
    let end = end.ok_or(ArmorError::MissingEnd)?;
    if end != begin {
        return Err(ArmorError::LabelMismatch { begin: begin.to_owned(), end: end.to_owned() });
    }
    if lines.next().is_some() {
        return Err(ArmorError::TrailingText);
    }
    let checksum = checksum.ok_or(ArmorError::MissingChecksum)?;
    let bin = STANDARD.decode(body.as_bytes()).map_err(|_| ArmorError::BadBase64)?;
    let crc = STANDARD.decode(checksum.as_bytes()).map_err(|_| ArmorError::BadBase64)?;
    let [a, b, c] = crc[..] else { return Err(ArmorError::BadBase64) };
    let stated = u32::from_be_bytes([0, a, b, c]);
    let computed = crc24(&bin);
    if stated != computed {
        return Err(ArmorError::BadChecksum { stated, computed });
    }
    check_object(&bin, begin)?;
    Ok(bin)
}

/// The one entry point for input of any form: a binary object (returned as is), armored
/// text, or bare base64 (whitespace ignored, padding optional). The result is a binary
/// object whose header length matches and whose magic is known (`spec/signet.md` §8).
pub fn dearmor_any(input: &[u8]) -> Result<Vec<u8>, ArmorError> {
    // A binary object: a known magic with a matching length, or any input starting with a
    // control byte (every known magic starts with 0x04-0x08, which no text form can).
    let known_binary = split_header(input).is_ok_and(|(m, _)| label_for_magic(m).is_some());
    if known_binary || input.first().is_some_and(|&b| b < 0x20 && !b.is_ascii_whitespace()) {
        if input.len() > SIGNET_HEADER_LEN + SIGNET_MAX_PAYLOAD {
            return Err(ArmorError::TooLarge);
        }
        check_object(input, "")?;
        return Ok(input.to_vec());
    }
    if input.len() > ARMOR_MAX_CHARS {
        return Err(ArmorError::TooLarge);
    }
    let text = std::str::from_utf8(input).map_err(|_| ArmorError::NotAscii)?;
    if text.trim_start().starts_with("-----BEGIN ") {
        return decode(text);
    }
    if !text.is_ascii() {
        return Err(ArmorError::NotAscii);
    }
    let compact: Vec<u8> = input.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    let bin = LENIENT.decode(&compact).map_err(|_| ArmorError::BadBase64)?;
    check_object(&bin, "")?;
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc24_known_answers() {
        // RFC 4880's CRC-24 of nothing is its initial value; "123456789" is the standard
        // check input (CRC-24/OPENPGP check value 0x21CF02).
        assert_eq!(crc24(b""), 0xB704CE);
        assert_eq!(crc24(b"123456789"), 0x21CF02);
    }

    fn object() -> Vec<u8> {
        let mut o = vec![0x04, 0xBF, 0, 0, 70];
        o.extend((0..70u8).map(|i| i.wrapping_mul(7)));
        o
    }

    #[test]
    fn armor_round_trip_and_shape() {
        let o = object();
        let a = encode(&o).unwrap();
        assert!(a.starts_with("-----BEGIN SIGNET SIGNING REQUEST-----\n"));
        assert!(a.ends_with("-----END SIGNET SIGNING REQUEST-----\n"));
        let lines: Vec<&str> = a.lines().collect();
        assert_eq!(lines[1].len(), 64);
        assert!(lines[lines.len() - 2].starts_with('=') && lines[lines.len() - 2].len() == 5);
        assert_eq!(decode(&a).unwrap(), o);
        assert_eq!(dearmor_any(a.as_bytes()).unwrap(), o);
        assert_eq!(dearmor_any(&o).unwrap(), o);
        let bare = STANDARD_NO_PAD.encode(&o);
        assert_eq!(dearmor_any(bare.as_bytes()).unwrap(), o);
        assert_eq!(dearmor_any(a.replace('\n', "\r\n").as_bytes()).unwrap(), o);
    }

    #[test]
    fn armor_errors_are_typed() {
        let o = object();
        let a = encode(&o).unwrap();
        let crc_line = a.lines().find(|l| l.starts_with('=')).unwrap().to_owned();
        let bad_crc = a.replace(&crc_line, "=AAAA");
        assert!(matches!(decode(&bad_crc), Err(ArmorError::BadChecksum { .. })));
        let no_crc = a.replace(&format!("{crc_line}\n"), "");
        assert_eq!(decode(&no_crc), Err(ArmorError::MissingChecksum));
        let mismatch = a.replace("END SIGNET SIGNING REQUEST", "END USER SIGNET");
        assert!(matches!(decode(&mismatch), Err(ArmorError::LabelMismatch { .. })));
        let wrong = a.replace("SIGNET SIGNING REQUEST", "USER SIGNET");
        assert!(matches!(decode(&wrong), Err(ArmorError::WrongMagic { magic: 1215, .. })));
        assert_eq!(decode("hello"), Err(ArmorError::MissingBegin));
        let unknown = a.replace("SIGNET SIGNING REQUEST", "PGP MESSAGE");
        assert!(matches!(decode(&unknown), Err(ArmorError::UnknownLabel(_))));
        let bad_char = a.replacen("\n", "\n!", 1);
        assert_eq!(decode(&bad_char), Err(ArmorError::BadLine { line: 2 }));
        assert_eq!(dearmor_any(b"!!!!"), Err(ArmorError::BadBase64));
        assert_eq!(decode(&format!("{a}x\n")), Err(ArmorError::TrailingText));
        let trunc = a.replace("-----END SIGNET SIGNING REQUEST-----\n", "");
        assert_eq!(decode(&trunc), Err(ArmorError::MissingEnd));
        let unknown_magic = STANDARD.encode([0u8, 1, 0, 0, 0]);
        assert!(matches!(
            dearmor_any(unknown_magic.as_bytes()),
            Err(ArmorError::WrongMagic { magic: 1, .. })
        ));
    }
}
