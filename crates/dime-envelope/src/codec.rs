//! Encodings of chunk contents (`spec/envelope.md` §8): headers, part info, the origin and
//! destination chunks, the tree signature chunk. A [`Reader`] refuses short input and, with
//! [`Reader::finish`], trailing bytes.

use crate::error::DecodeError;
use crate::format::{ChunkType, TREE_ENTRY_LEN, TreeEntry};
use crate::limits::{
    CONTENT_TYPE_MAX_LEN, FILENAME_MAX_LEN, HEADER_NAME_MAX_LEN, HEADER_VALUE_MAX_LEN,
    HEADERS_MAX_COUNT, MAX_TREE_ENTRIES,
};
use dime_core::crypto::{Ed25519Signature, SIGNATURE_LEN};
use dime_core::{Domain, Mailbox};

/// A cursor over a byte slice that never reads past its end.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() { Ok(()) } else { Err(DecodeError::TrailingBytes) }
    }
}

/// An ordered list of header fields, `name: value` (`spec/envelope.md` §8.3). Names are
/// 1-128 printable ASCII octets without `:`; values are UTF-8 without CR, LF or NUL. Order
/// and duplicates are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// An empty list.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// Appends a field after checking it (`spec/envelope.md` §8.3).
    pub fn push(&mut self, name: &str, value: &str) -> Result<(), DecodeError> {
        check_header(name, value)?;
        if self.0.len() >= HEADERS_MAX_COUNT {
            return Err(DecodeError::TooMany("header fields", HEADERS_MAX_COUNT));
        }
        self.0.push((name.to_owned(), value.to_owned()));
        Ok(())
    }

    /// Builds a list from pairs, checking each.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, DecodeError> {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.push(n, v)?;
        }
        Ok(h)
    }

    /// The fields in order.
    pub fn fields(&self) -> &[(String, String)] {
        &self.0
    }

    /// The first value of a field, by case-insensitive name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        // push() bounds the count by HEADERS_MAX_COUNT and the lengths by their limits.
        v.extend_from_slice(&u16::try_from(self.0.len()).unwrap_or(u16::MAX).to_be_bytes());
        for (n, val) in &self.0 {
            v.push(u8::try_from(n.len()).unwrap_or(u8::MAX));
            v.extend_from_slice(n.as_bytes());
            v.extend_from_slice(&u16::try_from(val.len()).unwrap_or(u16::MAX).to_be_bytes());
            v.extend_from_slice(val.as_bytes());
        }
        v
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b);
        let count = usize::from(r.u16()?);
        if count > HEADERS_MAX_COUNT {
            return Err(DecodeError::TooMany("header fields", HEADERS_MAX_COUNT));
        }
        let mut h = Vec::with_capacity(count.min(b.len() / 4));
        for _ in 0..count {
            let nl = usize::from(r.u8()?);
            let name = utf8(r.take(nl)?)?;
            let vl = usize::from(r.u16()?);
            let value = utf8(r.take(vl)?)?;
            check_header(name, value)?;
            h.push((name.to_owned(), value.to_owned()));
        }
        r.finish()?;
        Ok(Headers(h))
    }
}

fn check_header(name: &str, value: &str) -> Result<(), DecodeError> {
    if name.is_empty()
        || name.len() > HEADER_NAME_MAX_LEN
        || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
    {
        return Err(DecodeError::Field("header name must be 1-128 printable octets without ':'"));
    }
    if value.len() > HEADER_VALUE_MAX_LEN || value.bytes().any(|b| matches!(b, 0 | b'\r' | b'\n')) {
        return Err(DecodeError::Field(
            "header value must be at most 65535 octets without CR, LF or NUL",
        ));
    }
    Ok(())
}

fn utf8(b: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(b).map_err(|_| DecodeError::Field("text field is not utf-8"))
}

/// Whether a part is shown (display) or attached (`spec/envelope.md` §8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartKind {
    /// A display (body) part.
    Display,
    /// An attachment.
    Attachment,
}

impl PartKind {
    pub(crate) fn chunk_type(self) -> ChunkType {
        match self {
            PartKind::Display => ChunkType::Display,
            PartKind::Attachment => ChunkType::Attachment,
        }
    }
}

/// The description of a part that precedes its data (`spec/envelope.md` §8.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartInfo {
    /// MIME content type, for example `text/plain; charset=utf-8` (at most 255 octets, no
    /// control characters).
    pub content_type: String,
    /// File name (at most 1024 octets, no control characters); empty for none.
    pub filename: String,
}

impl PartInfo {
    /// Longest encoded part info.
    pub(crate) const MAX_ENCODED: usize = 1 + CONTENT_TYPE_MAX_LEN + 2 + FILENAME_MAX_LEN;

    pub(crate) fn check(&self) -> Result<(), DecodeError> {
        let ok = |s: &str, max: usize| s.len() <= max && !s.chars().any(char::is_control);
        if !ok(&self.content_type, CONTENT_TYPE_MAX_LEN) {
            return Err(DecodeError::Field(
                "content type must be at most 255 octets without controls",
            ));
        }
        if !ok(&self.filename, FILENAME_MAX_LEN) {
            return Err(DecodeError::Field(
                "file name must be at most 1024 octets without controls",
            ));
        }
        Ok(())
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(3 + self.content_type.len() + self.filename.len());
        v.push(u8::try_from(self.content_type.len()).unwrap_or(u8::MAX));
        v.extend_from_slice(self.content_type.as_bytes());
        v.extend_from_slice(&u16::try_from(self.filename.len()).unwrap_or(u16::MAX).to_be_bytes());
        v.extend_from_slice(self.filename.as_bytes());
        v
    }

    /// Decodes the info at the start of `b`; returns it and the number of octets used.
    pub(crate) fn decode_prefix(b: &[u8]) -> Result<(Self, usize), DecodeError> {
        let mut r = Reader::new(b);
        let cl = usize::from(r.u8()?);
        let ct = utf8(r.take(cl)?)?.to_owned();
        let fl = usize::from(r.u16()?);
        if fl > FILENAME_MAX_LEN {
            return Err(DecodeError::Field(
                "file name must be at most 1024 octets without controls",
            ));
        }
        let fname = utf8(r.take(fl)?)?.to_owned();
        let info = PartInfo { content_type: ct, filename: fname };
        info.check()?;
        Ok((info, 3 + cl + fl))
    }
}

fn push_str16(v: &mut Vec<u8>, s: &str) {
    v.extend_from_slice(&u16::try_from(s.len()).unwrap_or(u16::MAX).to_be_bytes());
    v.extend_from_slice(s.as_bytes());
}

fn read_str16<'a>(r: &mut Reader<'a>) -> Result<&'a str, DecodeError> {
    let l = usize::from(r.u16()?);
    utf8(r.take(l)?)
}

fn mailbox(s: &str) -> Result<Mailbox, DecodeError> {
    let m = Mailbox::parse(s).map_err(|_| DecodeError::Field("address is not a valid mailbox"))?;
    if m.to_string() != s {
        return Err(DecodeError::Field("address is not in canonical form"));
    }
    Ok(m)
}

fn domain(s: &str) -> Result<Domain, DecodeError> {
    let d = Domain::parse(s).map_err(|_| DecodeError::Field("domain is not valid"))?;
    if d.as_str() != s {
        return Err(DecodeError::Field("domain is not in canonical form"));
    }
    Ok(d)
}

/// Origin chunk content: author mailbox, destination domain (`spec/envelope.md` §8.1).
pub(crate) fn encode_origin(author: &Mailbox, destination: &Domain) -> Vec<u8> {
    let mut v = Vec::new();
    push_str16(&mut v, &author.to_string());
    push_str16(&mut v, destination.as_str());
    v
}

pub(crate) fn decode_origin(b: &[u8]) -> Result<(Mailbox, Domain), DecodeError> {
    let mut r = Reader::new(b);
    let a = mailbox(read_str16(&mut r)?)?;
    let d = domain(read_str16(&mut r)?)?;
    r.finish()?;
    Ok((a, d))
}

/// Destination chunk content: recipient mailbox, origin domain (`spec/envelope.md` §8.2).
pub(crate) fn encode_destination(recipient: &Mailbox, origin: &Domain) -> Vec<u8> {
    encode_origin(recipient, origin)
}

pub(crate) fn decode_destination(b: &[u8]) -> Result<(Mailbox, Domain), DecodeError> {
    decode_origin(b)
}

/// Tree signature chunk content: the tree, then the signature (`spec/envelope.md` §7.1).
pub(crate) fn encode_tree_sig(tree: &[TreeEntry], sig: &Ed25519Signature) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + tree.len() * TREE_ENTRY_LEN + SIGNATURE_LEN);
    v.extend_from_slice(&u16::try_from(tree.len()).unwrap_or(u16::MAX).to_be_bytes());
    for e in tree {
        e.write(&mut v);
    }
    v.extend_from_slice(&sig.0);
    v
}

pub(crate) fn decode_tree_sig(b: &[u8]) -> Result<(Vec<TreeEntry>, Ed25519Signature), DecodeError> {
    let mut r = Reader::new(b);
    let n = usize::from(r.u16()?);
    if n > MAX_TREE_ENTRIES {
        return Err(DecodeError::TooMany("tree entries", MAX_TREE_ENTRIES));
    }
    let mut tree = Vec::with_capacity(n);
    for _ in 0..n {
        let code = r.u8()?;
        let chunk_type = ChunkType::from_code(code)
            .ok_or(DecodeError::Field("tree names an unknown chunk type"))?;
        let index = r.u16()?;
        let hash = r.array::<64>()?;
        tree.push(TreeEntry { chunk_type, index, hash });
    }
    let sig = Ed25519Signature(r.array::<SIGNATURE_LEN>()?);
    r.finish()?;
    Ok((tree, sig))
}

pub(crate) fn decode_sig(b: &[u8]) -> Result<Ed25519Signature, DecodeError> {
    let mut r = Reader::new(b);
    let sig = Ed25519Signature(r.array::<SIGNATURE_LEN>()?);
    r.finish()?;
    Ok(sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_refuse_injection() {
        let h =
            Headers::from_pairs([("Subject", "hi"), ("X-A", ""), ("subject", "twice")]).unwrap();
        assert_eq!(Headers::decode(&h.encode()).unwrap(), h);
        assert_eq!(h.get("SUBJECT"), Some("hi"));
        assert!(Headers::from_pairs([("Subject", "a\r\nBcc: x")]).is_err());
        assert!(Headers::from_pairs([("Sub ject", "a")]).is_err());
        assert!(Headers::from_pairs([("", "a")]).is_err());
        let mut enc = h.encode();
        enc.push(0);
        assert_eq!(Headers::decode(&enc), Err(DecodeError::TrailingBytes));
        assert_eq!(
            Headers::decode(&[0xff, 0xff]),
            Err(DecodeError::TooMany("header fields", 4096))
        );
    }

    #[test]
    fn part_info_round_trips() {
        let i = PartInfo { content_type: "text/plain".into(), filename: "a.txt".into() };
        let mut e = i.encode();
        e.extend_from_slice(b"data");
        let (d, n) = PartInfo::decode_prefix(&e).unwrap();
        assert_eq!(d, i);
        assert_eq!(&e[n..], b"data");
    }

    #[test]
    fn origin_content_must_be_canonical() {
        let a = Mailbox::parse("a@example.com").unwrap();
        let d = Domain::parse("example.org").unwrap();
        let e = encode_origin(&a, &d);
        assert_eq!(decode_origin(&e).unwrap(), (a, d));
        let mut bad = Vec::new();
        push_str16(&mut bad, "a@EXAMPLE.com");
        push_str16(&mut bad, "example.org");
        assert!(decode_origin(&bad).is_err());
    }
}
