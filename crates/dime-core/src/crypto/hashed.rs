//! Bytes carried with their SHA-512, so that the layers a message passes through use one hash
//! of it: an origin hashes an envelope once when it queues it, and each attempt sends that
//! hash as the DMTP commitment; a destination hashes the body as it arrives to check the
//! commitment, and the store takes its blob digest from that hash (`spec/dmtp.md` §6.4,
//! `spec/storage.md` §3). The bytes are [`Bytes`]: an envelope read from the queue is shared,
//! not copied, from the lease to the frames that carry it.

use super::{CryptoProvider, HashContext};
pub use bytes::Bytes;
use std::fmt;

/// Bytes and their SHA-512. A clone shares the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Hashed {
    bytes: Bytes,
    sha512: [u8; 64],
}

impl Hashed {
    /// Hashes `bytes` with `p`.
    pub fn new(p: &CryptoProvider, bytes: impl Into<Bytes>) -> Hashed {
        let bytes = bytes.into();
        let sha512 = p.hash.sha512(&[&bytes]);
        Hashed { bytes, sha512 }
    }

    /// Bytes with the SHA-512 [`Hashed::new`] gave for them earlier, kept since where it could
    /// not change (a sealed store record). Nothing checks it here: a wrong hash makes every
    /// check made against it later fail (a DMTP destination refuses the body, the store reads
    /// the message as corrupt).
    pub fn from_parts(bytes: impl Into<Bytes>, sha512: [u8; 64]) -> Hashed {
        Hashed { bytes: bytes.into(), sha512 }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Their SHA-512.
    pub fn sha512(&self) -> &[u8; 64] {
        &self.sha512
    }

    /// The bytes, shared (not copied).
    pub fn shared(&self) -> Bytes {
        self.bytes.clone()
    }

    /// The bytes, by value (shared, not copied).
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

impl std::ops::Deref for Hashed {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Hashed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hashed").field("len", &self.bytes.len()).finish_non_exhaustive()
    }
}

/// Bytes appended piece by piece and hashed as they come; [`HashingBuffer::finish`] gives
/// them as [`Hashed`].
pub struct HashingBuffer {
    bytes: Vec<u8>,
    hash: Box<dyn HashContext>,
}

impl HashingBuffer {
    /// An empty buffer hashing with `p`.
    pub fn new(p: &CryptoProvider) -> HashingBuffer {
        HashingBuffer { bytes: Vec::new(), hash: p.hash.start() }
    }

    /// Appends `data`.
    pub fn extend(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
        self.hash.update(data);
    }

    /// Octets appended so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes appended, with their SHA-512.
    pub fn finish(self) -> Hashed {
        Hashed { bytes: Bytes::from(self.bytes), sha512: self.hash.finish() }
    }
}

impl fmt::Debug for HashingBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashingBuffer").field("len", &self.bytes.len()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::default_provider;

    #[test]
    fn a_buffer_filled_in_pieces_hashes_as_new_does() {
        let p = default_provider();
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let whole = Hashed::new(p, data.clone());
        assert_eq!(whole.sha512(), &p.hash.sha512(&[&data]));
        for step in [1, 127, 128, 129, 999, 1000] {
            let mut b = HashingBuffer::new(p);
            for piece in data.chunks(step) {
                b.extend(piece);
            }
            assert_eq!(b.len(), data.len());
            assert_eq!(b.finish(), whole, "pieces of {step}");
        }
        let empty = HashingBuffer::new(p);
        assert!(empty.is_empty());
        assert_eq!(empty.finish(), Hashed::new(p, Vec::new()));
    }

    #[test]
    fn debug_shows_the_length_not_the_bytes() {
        let h = Hashed::new(default_provider(), b"secret body".to_vec());
        let s = format!("{h:?}");
        assert!(s.contains("11") && !s.contains("secret"), "{s}");
        assert_eq!(&*h, b"secret body");
        assert_eq!(Hashed::from_parts(h.bytes().to_vec(), *h.sha512()), h);
    }
}
