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
/// 1-128 printable ASCII octets without `:`, never Bcc or Resent-Bcc; values are UTF-8
/// without control characters (C0, DEL, C1) but HTAB. Order and duplicates are kept. The
/// writer ([`Headers::push`]) and the reader refuse the same fields.
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

    /// Test only: a list whose fields are not checked, for the negative vectors.
    #[cfg(test)]
    pub(crate) fn unchecked(pairs: &[(&str, &str)]) -> Self {
        Headers(pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect())
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
            let name = std::str::from_utf8(r.take(nl)?).map_err(|_| DecodeError::HeaderName)?;
            let vl = usize::from(r.u16()?);
            let value = std::str::from_utf8(r.take(vl)?).map_err(|_| DecodeError::HeaderValue)?;
            check_header(name, value)?;
            h.push((name.to_owned(), value.to_owned()));
        }
        r.finish()?;
        Ok(Headers(h))
    }
}

/// The reader and writer rules of a header field (`spec/envelope.md` §8.3).
fn check_header(name: &str, value: &str) -> Result<(), DecodeError> {
    // A control character is Unicode general category Cc: C0 (U+0000-U+001F), DEL (U+007F)
    // and C1 (U+0080-U+009F), exactly `char::is_control`.
    if name.is_empty()
        || name.len() > HEADER_NAME_MAX_LEN
        || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
    {
        return Err(DecodeError::HeaderName);
    }
    if is_bcc(name) {
        return Err(DecodeError::BccHeader);
    }
    if value.len() > HEADER_VALUE_MAX_LEN || value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(DecodeError::HeaderValue);
    }
    Ok(())
}

/// Whether a header name is Bcc or Resent-Bcc, in any case (`spec/envelope.md` §8.3, §13).
fn is_bcc(name: &str) -> bool {
    name.eq_ignore_ascii_case("bcc") || name.eq_ignore_ascii_case("resent-bcc")
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

    /// The reader and writer rules of part info (`spec/envelope.md` §8.4): no control
    /// character (C0, DEL or C1, as `char::is_control`), within the lengths.
    pub(crate) fn check(&self) -> Result<(), DecodeError> {
        let ok = |s: &str, max: usize| s.len() <= max && !s.chars().any(char::is_control);
        if !ok(&self.content_type, CONTENT_TYPE_MAX_LEN) || !ok(&self.filename, FILENAME_MAX_LEN) {
            return Err(DecodeError::PartInfo);
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
        let text = |b: &[u8]| std::str::from_utf8(b).map(str::to_owned);
        let cl = usize::from(r.u8()?);
        let ct = text(r.take(cl)?).map_err(|_| DecodeError::PartInfo)?;
        let fl = usize::from(r.u16()?);
        if fl > FILENAME_MAX_LEN {
            return Err(DecodeError::PartInfo);
        }
        let fname = text(r.take(fl)?).map_err(|_| DecodeError::PartInfo)?;
        let info = PartInfo { content_type: ct, filename: fname };
        info.check()?;
        Ok((info, 3 + cl + fl))
    }
}

fn push_str16(v: &mut Vec<u8>, s: &str) {
    v.extend_from_slice(&u16::try_from(s.len()).unwrap_or(u16::MAX).to_be_bytes());
    v.extend_from_slice(s.as_bytes());
}

/// A name of the origin or destination chunk: UTF-8 (§8.1).
fn read_name<'a>(r: &mut Reader<'a>) -> Result<&'a str, DecodeError> {
    let l = usize::from(r.u16()?);
    std::str::from_utf8(r.take(l)?).map_err(|_| DecodeError::Name)
}

/// A mailbox exactly in its canonical form (`spec/envelope.md` §8.1): what parses and prints
/// back octet for octet.
fn mailbox(s: &str) -> Result<Mailbox, DecodeError> {
    let m = Mailbox::parse(s).map_err(|_| DecodeError::Name)?;
    if m.to_string() != s {
        return Err(DecodeError::Name);
    }
    Ok(m)
}

/// A domain exactly in its canonical form (`spec/envelope.md` §8.1).
fn domain(s: &str) -> Result<Domain, DecodeError> {
    let d = Domain::parse(s).map_err(|_| DecodeError::Name)?;
    if d.as_str() != s {
        return Err(DecodeError::Name);
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
    let a = mailbox(read_name(&mut r)?)?;
    let d = domain(read_name(&mut r)?)?;
    r.finish()?;
    Ok((a, d))
}

/// Destination chunk content: recipient mailbox, origin domain (`spec/envelope.md` §8.2).
pub(crate) fn encode_destination(recipient: &Mailbox, origin: &Domain) -> Vec<u8> {
    encode_origin(recipient, origin)
}

/// Test only: an origin or destination chunk's content from any two strings (§8.1, §8.2),
/// for the negative vectors.
#[cfg(test)]
pub(crate) fn encode_names_unchecked(mailbox: &str, domain: &str) -> Vec<u8> {
    let mut v = Vec::new();
    push_str16(&mut v, mailbox);
    push_str16(&mut v, domain);
    v
}

pub(crate) fn decode_destination(b: &[u8]) -> Result<(Mailbox, Domain), DecodeError> {
    decode_origin(b)
}

/// Tree signature chunk content: the tree, then the signature, its algorithm first
/// (`spec/envelope.md` §7, §7.1).
pub(crate) fn encode_tree_sig(tree: &[TreeEntry], alg: u8, sig: &Ed25519Signature) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + tree.len() * TREE_ENTRY_LEN + 1 + SIGNATURE_LEN);
    v.extend_from_slice(&u16::try_from(tree.len()).unwrap_or(u16::MAX).to_be_bytes());
    for e in tree {
        e.write(&mut v);
    }
    v.extend_from_slice(&encode_sig(alg, sig));
    v
}

/// A signature as a signature chunk carries it: `u8 alg || sig` (`spec/envelope.md` §7).
pub(crate) fn encode_sig(alg: u8, sig: &Ed25519Signature) -> [u8; 1 + SIGNATURE_LEN] {
    let mut v = [0u8; 1 + SIGNATURE_LEN];
    v[0] = alg;
    v[1..].copy_from_slice(&sig.0);
    v
}

/// The origin signature chunk's content: `u64 signed_at || u8 alg || sig`
/// (`spec/envelope.md` §7.3).
pub(crate) fn encode_origin_sig(
    signed_at: u64,
    alg: u8,
    sig: &Ed25519Signature,
) -> [u8; crate::format::ORIGIN_SIG_CONTENT_LEN] {
    let mut v = [0u8; crate::format::ORIGIN_SIG_CONTENT_LEN];
    v[..8].copy_from_slice(&signed_at.to_be_bytes());
    v[8..].copy_from_slice(&encode_sig(alg, sig));
    v
}

/// Reads the origin signature chunk's content: its time, then its signature.
pub(crate) fn decode_origin_sig(b: &[u8]) -> Result<(u64, Ed25519Signature), DecodeError> {
    let mut r = Reader::new(b);
    let signed_at = u64::from_be_bytes(r.array::<8>()?);
    let sig = read_sig(&mut r)?;
    r.finish()?;
    Ok((signed_at, sig))
}

/// Reads `u8 alg || sig`, refusing an algorithm other than Ed25519 (`spec/envelope.md` §4.1)
/// before any signature check.
fn read_sig(r: &mut Reader<'_>) -> Result<Ed25519Signature, DecodeError> {
    let alg = r.u8()?;
    if alg != crate::format::SIG_ALG_ED25519 {
        return Err(DecodeError::Algorithm(alg));
    }
    Ok(Ed25519Signature(r.array::<SIGNATURE_LEN>()?))
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
        let chunk_type = ChunkType::from_code(code).ok_or(DecodeError::TreeEntry)?;
        let index = r.u16()?;
        let hash = r.array::<64>()?;
        tree.push(TreeEntry { chunk_type, index, hash });
    }
    let sig = read_sig(&mut r)?;
    r.finish()?;
    Ok((tree, sig))
}

pub(crate) fn decode_sig(b: &[u8]) -> Result<Ed25519Signature, DecodeError> {
    let mut r = Reader::new(b);
    let sig = read_sig(&mut r)?;
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

    /// A header chunk's content written field by field, without the writer's checks.
    fn raw_headers(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut v = u16::try_from(fields.len()).unwrap().to_be_bytes().to_vec();
        for (n, val) in fields {
            v.push(u8::try_from(n.len()).unwrap());
            v.extend_from_slice(n);
            v.extend_from_slice(&u16::try_from(val.len()).unwrap().to_be_bytes());
            v.extend_from_slice(val);
        }
        v
    }

    #[test]
    fn header_reader_refuses_control_characters_c0_del_and_c1() {
        // spec/envelope.md §8.3: a value holds no control character but HTAB: C0, DEL
        // (U+007F) and C1 (U+0080-U+009F) are refused by the reader and the writer alike.
        let tab = raw_headers(&[(b"Subject", b"a\tb")]);
        assert_eq!(Headers::decode(&tab).unwrap().get("subject"), Some("a\tb"));
        assert!(Headers::from_pairs([("Subject", "a\tb")]).is_ok());
        for bad in [
            "\0",
            "\r",
            "\n",
            "\u{1}",
            "\u{1b}[31m",
            "\u{1f}",
            "\u{7f}",
            "\u{80}",
            "\u{85}",
            "\u{9b}31m",
            "\u{9f}",
        ] {
            let value = format!("x{bad}y");
            let enc = raw_headers(&[(b"Subject", value.as_bytes())]);
            assert_eq!(Headers::decode(&enc), Err(DecodeError::HeaderValue), "{value:?}");
            assert_eq!(
                Headers::from_pairs([("Subject", value.as_str())]),
                Err(DecodeError::HeaderValue),
                "{value:?}"
            );
        }
        // A value that is not UTF-8, a name of a non-printable or non-ASCII octet or with ':'.
        let enc = raw_headers(&[(b"Subject", b"\xff")]);
        assert_eq!(Headers::decode(&enc), Err(DecodeError::HeaderValue));
        for name in [&b"X Y"[..], b"X:Y", b"X\x7fY", b"X\xc3\xa9", b"", &[b'a'; 129]] {
            let enc = raw_headers(&[(name, b"v")]);
            assert_eq!(Headers::decode(&enc), Err(DecodeError::HeaderName), "{name:?}");
        }
    }

    #[test]
    fn header_reader_refuses_bcc() {
        // spec/envelope.md §8.3, §13: no copy carries a Bcc (or Resent-Bcc) field, in any case.
        for name in ["Bcc", "BCC", "bcc", "Resent-Bcc", "resent-BCC"] {
            let enc =
                raw_headers(&[(b"To", b"b@example.org"), (name.as_bytes(), b"c@example.net")]);
            assert_eq!(Headers::decode(&enc), Err(DecodeError::BccHeader), "{name}");
            assert_eq!(Headers::from_pairs([(name, "c@example.net")]), Err(DecodeError::BccHeader));
        }
        // Names that only contain it are other fields.
        let enc = raw_headers(&[(b"X-Bcc-Note", b"v"), (b"Bccx", b"v")]);
        assert_eq!(Headers::decode(&enc).unwrap().len(), 2);
    }

    #[test]
    fn part_info_reader_refuses_control_characters() {
        // spec/envelope.md §8.4: the same control characters as §8.3, HTAB included.
        for bad in ["\t", "\u{1b}", "\u{7f}", "\u{85}"] {
            for (ct, fname) in [
                (format!("text/plain{bad}"), String::new()),
                ("text/plain".to_owned(), format!("a{bad}.txt")),
            ] {
                let e = PartInfo { content_type: ct, filename: fname }.encode();
                assert_eq!(PartInfo::decode_prefix(&e), Err(DecodeError::PartInfo));
            }
        }
        let mut e = vec![1, 0xff, 0, 0];
        assert_eq!(PartInfo::decode_prefix(&e), Err(DecodeError::PartInfo));
        e = vec![0, 0x04, 0x01];
        assert_eq!(PartInfo::decode_prefix(&e), Err(DecodeError::PartInfo));
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
        assert_eq!(decode_origin(&bad), Err(DecodeError::Name));
    }

    #[test]
    fn names_must_be_exactly_canonical() {
        // spec/envelope.md §8.1, §8.2: each name is refused unless it is exactly its
        // canonical form; nothing is normalised on reading.
        let good = ("Ab.c@example.org", "example.com");
        let name = |m: &str, d: &str| {
            let mut v = Vec::new();
            push_str16(&mut v, m);
            push_str16(&mut v, d);
            decode_destination(&v)
        };
        assert!(name(good.0, good.1).is_ok());
        for (m, d) in [
            ("b@Example.org", good.1),
            ("b@example.org.", good.1),
            (good.0, "example.com."),
            (good.0, "EXAMPLE.com"),
            (good.0, "exämple.com"),
            (good.0, "xn--exmple-cua.com "),
            ("b c@example.org", good.1),
            ("b\u{85}@example.org", good.1),
            ("b\u{7f}@example.org", good.1),
            (".b@example.org", good.1),
            ("\"b\"@example.org", good.1),
            ("b@", good.1),
            ("example.org", good.1),
            (good.0, ""),
        ] {
            assert_eq!(name(m, d), Err(DecodeError::Name), "{m:?} {d:?}");
        }
        let mut v = Vec::new();
        v.extend_from_slice(&[0, 1, 0xff]);
        push_str16(&mut v, good.1);
        assert_eq!(decode_destination(&v), Err(DecodeError::Name));
    }
}
