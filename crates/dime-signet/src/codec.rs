//! The signet container: 5-byte header and TLV fields (`spec/signet.md` §2, §3).
//!
//! Decoding keeps offsets into the input (copied once into the [`crate::Signet`]); it never
//! allocates more than a constant factor of the input size, whatever the lengths claim.

use crate::fields::{Definition, FieldInfo, SignetKind, Width, field_info};
use dime_core::limits::{SIGNET_HEADER_LEN, SIGNET_MAX_PAYLOAD};

/// Length of an Ed25519 signature field's data (`spec/signet.md` §3.2).
pub const SIGNATURE_FIELD_LEN: usize = 64;

/// Longest name of a named field 251 (`spec/signet.md` §3.2).
pub const NAMED_FIELD_MAX_NAME: usize = u8::MAX as usize;

/// Why bytes are not a well-formed signet container (`spec/signet.md` §3, §10).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer than the 5 header bytes.
    #[error("object is shorter than the {SIGNET_HEADER_LEN}-byte header")]
    ShortHeader,
    /// The magic number is not one this operation accepts.
    #[error("magic number {0} is not a signet (ssr 1215, org 1776, user 1789)")]
    UnknownMagic(u16),
    /// A signet of another kind than the one asked for.
    #[error("expected a {expected} signet, found a {found} signet")]
    WrongKind {
        /// The kind asked for (short name).
        expected: &'static str,
        /// The kind found (short name).
        found: &'static str,
    },
    /// The header's length claims more bytes than follow it.
    #[error("header declares {declared} payload bytes but only {available} follow")]
    Truncated {
        /// The header's length.
        declared: usize,
        /// The bytes after the header.
        available: usize,
    },
    /// Bytes follow the payload the header declares.
    #[error("{extra} bytes follow the declared payload")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// A field's length runs past the end of the payload.
    #[error("field {id} at offset {offset} runs past the end of the payload")]
    FieldTruncated {
        /// The field id.
        id: u8,
        /// Offset of its id byte in the payload.
        offset: usize,
    },
    /// A reserved field id (0; org 5-15; user 7-15; SSR anything but 1-5).
    #[error("field id {id} at offset {offset} is reserved in a {kind} signet")]
    ReservedField {
        /// The field id.
        id: u8,
        /// Offset of its id byte.
        offset: usize,
        /// The kind's short name.
        kind: &'static str,
    },
    /// Field ids are not in ascending order.
    #[error("field {id} at offset {offset} follows field {previous}: ids must ascend")]
    OutOfOrder {
        /// The field id.
        id: u8,
        /// The id before it.
        previous: u8,
        /// Offset of its id byte.
        offset: usize,
    },
    /// A unique field appears twice.
    #[error("field {id} at offset {offset} is unique but appears again")]
    Duplicate {
        /// The field id.
        id: u8,
        /// Offset of the second occurrence.
        offset: usize,
    },
    /// A named field 251 has an empty name.
    #[error("named field 251 at offset {offset} has an empty name")]
    EmptyName {
        /// Offset of its id byte.
        offset: usize,
    },
}

impl DecodeError {
    /// Whether this is a length claim that overruns the data (the ladder's `Overflow` state),
    /// rather than a broken structure rule (`Malformed`) (`spec/signet.md` §6).
    pub fn is_overflow(&self) -> bool {
        matches!(
            self,
            DecodeError::ShortHeader
                | DecodeError::Truncated { .. }
                | DecodeError::FieldTruncated { .. }
        )
    }
}

/// Why fields cannot be encoded into a signet (`spec/signet.md` §3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The field list breaks a container rule.
    #[error("fields break a container rule: {0}")]
    Rule(DecodeError),
    /// A field's data does not fit its length prefix (or a signature is not 64 bytes).
    #[error("field {id} data of {len} bytes does not fit its width")]
    DataLength {
        /// The field id.
        id: u8,
        /// The data length.
        len: usize,
    },
    /// A name was given for a field other than 251, or none for 251.
    #[error("field {id}: only field 251 carries a name, and it must have one")]
    Name {
        /// The field id.
        id: u8,
    },
    /// The payload would exceed [`SIGNET_MAX_PAYLOAD`].
    #[error("payload would exceed {SIGNET_MAX_PAYLOAD} bytes")]
    TooLarge,
}

/// A field borrowed from a decoded signet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field id.
    pub id: u8,
    /// The name of a named field 251.
    pub name: Option<&'a [u8]>,
    /// The field data.
    pub data: &'a [u8],
    /// Offset of the field's id byte in the payload: a signature in this field covers
    /// `payload[..offset]` (`spec/signet.md` §5).
    pub offset: usize,
    /// Offset just after the field in the payload: a fingerprint through this field hashes
    /// `payload[..end]` (`spec/signet.md` §7).
    pub end: usize,
}

impl Field<'_> {
    /// An owned copy.
    pub fn to_owned_field(&self) -> FieldData {
        FieldData { id: self.id, name: self.name.map(<[u8]>::to_vec), data: self.data.to_vec() }
    }
}

/// An owned field, for building signets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldData {
    /// The field id.
    pub id: u8,
    /// The name, for field 251 only.
    pub name: Option<Vec<u8>>,
    /// The data.
    pub data: Vec<u8>,
}

impl FieldData {
    /// A field without a name.
    pub fn new(id: u8, data: impl Into<Vec<u8>>) -> FieldData {
        FieldData { id, name: None, data: data.into() }
    }

    /// A named field 251.
    pub fn named(name: impl Into<Vec<u8>>, data: impl Into<Vec<u8>>) -> FieldData {
        FieldData { id: 251, name: Some(name.into()), data: data.into() }
    }
}

/// Offsets of one field inside a payload (compact: the index is O(payload)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) id: u8,
    pub(crate) offset: u32,
    pub(crate) name_start: u32,
    pub(crate) name_len: u8,
    pub(crate) data_start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn field<'a>(&self, payload: &'a [u8]) -> Field<'a> {
        let o = self.offset as usize;
        let ds = self.data_start as usize;
        let e = self.end as usize;
        let name = if self.id == 251 {
            let ns = self.name_start as usize;
            payload.get(ns..ns + usize::from(self.name_len))
        } else {
            None
        };
        Field { id: self.id, name, data: payload.get(ds..e).unwrap_or(&[]), offset: o, end: e }
    }
}

/// Splits an object into its magic and payload, checking the header length exactly
/// (`spec/signet.md` §2). Nothing is allocated.
pub fn split_header(bytes: &[u8]) -> Result<(u16, &[u8]), DecodeError> {
    let Some((header, payload)) = bytes.split_first_chunk::<SIGNET_HEADER_LEN>() else {
        return Err(DecodeError::ShortHeader);
    };
    let magic = u16::from_be_bytes([header[0], header[1]]);
    let declared =
        usize::from(header[2]) << 16 | usize::from(header[3]) << 8 | usize::from(header[4]);
    match declared.cmp(&payload.len()) {
        std::cmp::Ordering::Greater => {
            Err(DecodeError::Truncated { declared, available: payload.len() })
        }
        std::cmp::Ordering::Less => {
            Err(DecodeError::TrailingBytes { extra: payload.len() - declared })
        }
        std::cmp::Ordering::Equal => Ok((magic, payload)),
    }
}

/// Writes a 5-byte header (`spec/signet.md` §2).
pub fn write_header(out: &mut Vec<u8>, magic: u16, payload_len: usize) -> Result<(), EncodeError> {
    if payload_len > SIGNET_MAX_PAYLOAD {
        return Err(EncodeError::TooLarge);
    }
    out.extend_from_slice(&magic.to_be_bytes());
    // payload_len <= 0xFF_FFFF: the three low bytes carry it all.
    let l = (payload_len as u32).to_be_bytes();
    out.extend_from_slice(&l[1..]);
    Ok(())
}

/// The container rules on the sequence of field ids (`spec/signet.md` §3): no reserved id,
/// ids ascending, a unique id at most once. Shared by the decoder and the encoder.
struct FieldOrder {
    kind: SignetKind,
    previous: Option<u8>,
}

impl FieldOrder {
    fn new(kind: SignetKind) -> FieldOrder {
        FieldOrder { kind, previous: None }
    }

    /// Admits the next field, `id` at `offset`, and returns its table entry.
    fn admit(&mut self, id: u8, offset: usize) -> Result<FieldInfo, DecodeError> {
        let info = field_info(self.kind, id);
        if info.definition == Definition::Reserved {
            return Err(DecodeError::ReservedField { id, offset, kind: self.kind.name() });
        }
        if let Some(prev) = self.previous {
            if id < prev {
                return Err(DecodeError::OutOfOrder { id, previous: prev, offset });
            }
            if id == prev && info.unique {
                return Err(DecodeError::Duplicate { id, offset });
            }
        }
        self.previous = Some(id);
        Ok(info)
    }
}

fn be(bytes: &[u8]) -> usize {
    bytes.iter().fold(0usize, |acc, &b| acc << 8 | usize::from(b))
}

/// Parses the fields of a payload of `kind`, checking every container rule
/// (`spec/signet.md` §3). The index it returns holds at most one entry per 2 payload bytes.
pub(crate) fn index_fields(kind: SignetKind, payload: &[u8]) -> Result<Vec<Span>, DecodeError> {
    let mut spans = Vec::new();
    let mut at = 0usize;
    let mut order = FieldOrder::new(kind);
    while at < payload.len() {
        let offset = at;
        let id = payload[at];
        at += 1;
        let info = order.admit(id, offset)?;
        let truncated = DecodeError::FieldTruncated { id, offset };
        let take = |at: &mut usize, n: usize| -> Result<usize, DecodeError> {
            let start = *at;
            let end =
                start.checked_add(n).filter(|&e| e <= payload.len()).ok_or(truncated.clone())?;
            *at = end;
            Ok(start)
        };
        let (mut name_start, mut name_len) = (0usize, 0u8);
        let data_len = match info.width {
            Width::Signature => SIGNATURE_FIELD_LEN,
            Width::U8 => be(payload.get(take(&mut at, 1)?..at).unwrap_or(&[])),
            Width::U16 => be(payload.get(take(&mut at, 2)?..at).unwrap_or(&[])),
            Width::U24 => be(payload.get(take(&mut at, 3)?..at).unwrap_or(&[])),
            Width::Named => {
                let nl = payload.get(take(&mut at, 1)?).copied().unwrap_or(0);
                if nl == 0 {
                    return Err(DecodeError::EmptyName { offset });
                }
                name_len = nl;
                name_start = take(&mut at, usize::from(nl))?;
                be(payload.get(take(&mut at, 2)?..at).unwrap_or(&[]))
            }
        };
        let data_start = take(&mut at, data_len)?;
        // Every offset is < payload.len() <= SIGNET_MAX_PAYLOAD < u32::MAX.
        spans.push(Span {
            id,
            offset: offset as u32,
            name_start: name_start as u32,
            name_len,
            data_start: data_start as u32,
            end: at as u32,
        });
    }
    Ok(spans)
}

/// Encodes fields into a whole object (header included) of `kind`, checking every container
/// rule (`spec/signet.md` §3): the result always decodes back to the same fields.
pub fn encode_signet(kind: SignetKind, fields: &[FieldData]) -> Result<Vec<u8>, EncodeError> {
    let payload = encode_payload(kind, fields)?;
    let mut out = Vec::with_capacity(SIGNET_HEADER_LEN + payload.len());
    write_header(&mut out, kind.magic(), payload.len())?;
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Encodes fields into a payload (no header); see [`encode_signet`].
pub fn encode_payload(kind: SignetKind, fields: &[FieldData]) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    let mut order = FieldOrder::new(kind);
    for f in fields {
        let offset = out.len();
        let id = f.id;
        let info = order.admit(id, offset).map_err(EncodeError::Rule)?;
        if (info.width == Width::Named) != f.name.is_some() {
            return Err(EncodeError::Name { id });
        }
        let len = f.data.len();
        let bad_len = EncodeError::DataLength { id, len };
        out.push(id);
        match info.width {
            Width::Signature => {
                if len != SIGNATURE_FIELD_LEN {
                    return Err(bad_len);
                }
            }
            Width::U8 => out.push(u8::try_from(len).map_err(|_| bad_len)?),
            Width::U16 => {
                out.extend_from_slice(&u16::try_from(len).map_err(|_| bad_len)?.to_be_bytes())
            }
            Width::U24 => {
                if len > 0xFF_FFFF {
                    return Err(bad_len);
                }
                out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
            }
            Width::Named => {
                let name = f.name.as_deref().unwrap_or(&[]);
                let nl = u8::try_from(name.len()).map_err(|_| EncodeError::Name { id })?;
                if nl == 0 {
                    return Err(EncodeError::Rule(DecodeError::EmptyName { offset }));
                }
                out.push(nl);
                out.extend_from_slice(name);
                out.extend_from_slice(&u16::try_from(len).map_err(|_| bad_len)?.to_be_bytes());
            }
        }
        out.extend_from_slice(&f.data);
        if out.len() > SIGNET_MAX_PAYLOAD {
            return Err(EncodeError::TooLarge);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_length_must_match_exactly() {
        assert_eq!(split_header(&[6, 0xf0, 0]), Err(DecodeError::ShortHeader));
        assert_eq!(
            split_header(&[6, 0xf0, 0xff, 0xff, 0xff]),
            Err(DecodeError::Truncated { declared: 0xFF_FFFF, available: 0 })
        );
        assert_eq!(
            split_header(&[6, 0xf0, 0, 0, 0, 1]),
            Err(DecodeError::TrailingBytes { extra: 1 })
        );
        assert_eq!(split_header(&[6, 0xf0, 0, 0, 1, 9]), Ok((1776, &[9u8][..])));
    }

    #[test]
    fn widths_round_trip() {
        let fields = vec![
            FieldData::new(1, vec![7; 33]),
            FieldData::new(4, vec![1; 64]),
            FieldData::new(21, b"a".to_vec()),
            FieldData::new(21, b"b".to_vec()),
            FieldData::new(160, vec![2; 300]),
            FieldData::named("x-y", b"z".to_vec()),
            FieldData::named("x-y", b"w".to_vec()),
            FieldData::new(252, vec![3; 70_000]),
            FieldData::new(253, vec![4; 64]),
            FieldData::new(254, b"example.com".to_vec()),
        ];
        let p = encode_payload(SignetKind::Org, &fields).unwrap();
        let spans = index_fields(SignetKind::Org, &p).unwrap();
        let back: Vec<FieldData> = spans.iter().map(|s| s.field(&p).to_owned_field()).collect();
        assert_eq!(back, fields);
        // A signature field has no length prefix; 160 a 2-byte one; 252 a 3-byte one.
        assert_eq!(&p[35..36], &[4]);
        assert_eq!(&p[100..101], &[21]);
    }

    #[test]
    fn order_and_uniqueness_rules() {
        let dup = [FieldData::new(16, b"a".to_vec()), FieldData::new(16, b"b".to_vec())];
        assert!(matches!(
            encode_payload(SignetKind::Org, &dup),
            Err(EncodeError::Rule(DecodeError::Duplicate { id: 16, .. }))
        ));
        assert_eq!(
            index_fields(SignetKind::Org, &[16, 0, 16, 0]),
            Err(DecodeError::Duplicate { id: 16, offset: 2 })
        );
        assert_eq!(
            index_fields(SignetKind::Org, &[17, 0, 16, 0]),
            Err(DecodeError::OutOfOrder { id: 16, previous: 17, offset: 2 })
        );
        assert_eq!(
            index_fields(SignetKind::Org, &[5, 0]),
            Err(DecodeError::ReservedField { id: 5, offset: 0, kind: "org" })
        );
        assert_eq!(
            index_fields(SignetKind::Org, &[16, 5, 1]),
            Err(DecodeError::FieldTruncated { id: 16, offset: 0 })
        );
        assert_eq!(
            index_fields(SignetKind::Org, &[252, 0xff, 0xff]),
            Err(DecodeError::FieldTruncated { id: 252, offset: 0 })
        );
        assert_eq!(
            index_fields(SignetKind::Org, &[251, 0, 0, 0]),
            Err(DecodeError::EmptyName { offset: 0 })
        );
        assert!(index_fields(SignetKind::Org, &[21, 0, 21, 0, 28, 0]).is_ok());
    }
}
