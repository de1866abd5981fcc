//! Record encoding (`spec/storage.md` §3): big-endian integers, `u32`-length-prefixed byte
//! strings, and a 16-octet checksum over (table, key, body) at the end of every record.

use crate::StoreError;
use crate::backend::Table;
use dime_core::crypto::{CryptoProvider, Hashed};

/// Octets of the record checksum (SHA-512 truncated), `spec/storage.md` §3.
pub(crate) const CHECKSUM_LEN: usize = 16;

/// Largest byte string inside a record: 64 MiB (`spec/storage.md` §3).
pub(crate) const MAX_FIELD_LEN: usize = 64 * 1024 * 1024;

#[derive(Default)]
pub(crate) struct Enc(pub(crate) Vec<u8>);

impl Enc {
    pub(crate) fn new() -> Enc {
        Enc(Vec::new())
    }
    pub(crate) fn u8(mut self, v: u8) -> Enc {
        self.0.push(v);
        self
    }
    pub(crate) fn u32(mut self, v: u32) -> Enc {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn u64(mut self, v: u64) -> Enc {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn raw(mut self, v: &[u8]) -> Enc {
        self.0.extend_from_slice(v);
        self
    }
    pub(crate) fn bytes(self, v: &[u8]) -> Enc {
        // Lengths above u32::MAX never occur: every caller bounds its input by MAX_FIELD_LEN.
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.u32(len).raw(v)
    }
    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Dec<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Dec<'a> {
        Dec { buf, what }
    }
    fn bad(&self) -> StoreError {
        StoreError::Corrupt { what: self.what }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.buf.len() < n {
            return Err(self.bad());
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, StoreError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes(b.try_into().map_err(|_| self.bad())?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, StoreError> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(b.try_into().map_err(|_| self.bad())?))
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let b = self.take(N)?;
        b.try_into().map_err(|_| self.bad())
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let len = self.u32()? as usize;
        if len > MAX_FIELD_LEN {
            return Err(self.bad());
        }
        self.take(len)
    }
    /// Everything not read yet.
    pub(crate) fn rest(self) -> &'a [u8] {
        self.buf
    }
    /// Whether everything was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub(crate) fn finish(self) -> Result<(), StoreError> {
        if self.buf.is_empty() { Ok(()) } else { Err(self.bad()) }
    }
}

fn checksum(p: &CryptoProvider, table: Table, key: &[u8], body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let len = (key.len() as u64).to_be_bytes();
    let d = p.hash.sha512(&[b"dime-store record", &[table.code()], &len, key, body]);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&d[..CHECKSUM_LEN]);
    out
}

/// Appends the checksum to a record body.
pub(crate) fn seal_record(p: &CryptoProvider, table: Table, key: &[u8], body: Vec<u8>) -> Vec<u8> {
    let c = checksum(p, table, key, &body);
    let mut v = body;
    v.extend_from_slice(&c);
    v
}

/// Checks and strips the checksum; a mismatch is [`StoreError::Corrupt`].
pub(crate) fn open_record<'a>(
    p: &CryptoProvider,
    table: Table,
    key: &[u8],
    value: &'a [u8],
    what: &'static str,
) -> Result<&'a [u8], StoreError> {
    let split = value.len().checked_sub(CHECKSUM_LEN).ok_or(StoreError::Corrupt { what })?;
    let (body, sum) = value.split_at(split);
    let want = checksum(p, table, key, body);
    if !subtle_eq(&want, sum) {
        return Err(StoreError::Corrupt { what });
    }
    Ok(body)
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How a store computes the 16-octet digest of a message blob (`spec/storage.md` §3), fixed by
/// the store's format when it is created (§2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlobDigest {
    /// Format 1: the first 16 octets of SHA-512("dime-store blob" ‖ blob).
    Prefixed,
    /// Format 2: the first 16 octets of SHA-512(blob), the hash a DMTP destination has already
    /// checked against the DATA commitment.
    Plain,
}

fn first_16(d: &[u8; 64]) -> [u8; CHECKSUM_LEN] {
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&d[..CHECKSUM_LEN]);
    out
}

impl BlobDigest {
    /// Every format's, oldest first.
    pub(crate) const ALL: [BlobDigest; 2] = [BlobDigest::Prefixed, BlobDigest::Plain];

    /// The store format that computes digests so (`spec/storage.md` §2.1).
    pub(crate) fn format(self) -> u32 {
        match self {
            BlobDigest::Prefixed => 1,
            BlobDigest::Plain => 2,
        }
    }

    /// The digest of `blob`.
    pub(crate) fn of(self, p: &CryptoProvider, blob: &[u8]) -> [u8; CHECKSUM_LEN] {
        match self {
            BlobDigest::Prefixed => first_16(&p.hash.sha512(&[b"dime-store blob", blob])),
            BlobDigest::Plain => first_16(&p.hash.sha512(&[blob])),
        }
    }

    /// The digest of a blob whose SHA-512 is known: no hashing in format 2.
    pub(crate) fn of_hashed(self, p: &CryptoProvider, blob: &Hashed) -> [u8; CHECKSUM_LEN] {
        match self {
            BlobDigest::Prefixed => self.of(p, blob.bytes()),
            BlobDigest::Plain => first_16(blob.sha512()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_checksum_detects_flips_and_table_moves() {
        let p = dime_core::crypto::default_provider();
        let rec = seal_record(p, Table::Entries, b"k", b"body".to_vec());
        assert_eq!(open_record(p, Table::Entries, b"k", &rec, "x").unwrap(), b"body");
        let mut bad = rec.clone();
        bad[1] ^= 1;
        assert!(open_record(p, Table::Entries, b"k", &bad, "x").is_err());
        assert!(open_record(p, Table::Messages, b"k", &rec, "x").is_err());
        assert!(open_record(p, Table::Entries, b"j", &rec, "x").is_err());
        assert!(open_record(p, Table::Entries, b"k", &rec[..3], "x").is_err());
    }

    #[test]
    fn dec_refuses_overlong_lengths() {
        let v = Enc::new().u32(u32::MAX).finish();
        assert!(Dec::new(&v, "x").bytes().is_err());
        let v = Enc::new().bytes(b"abc").u8(7).finish();
        let mut d = Dec::new(&v, "x");
        assert_eq!(d.bytes().unwrap(), b"abc");
        assert_eq!(d.u8().unwrap(), 7);
        d.finish().unwrap();
    }
}
