//! The crypto provider seam (`spec/signet.md` §1; crypto.md "Primitives").
//!
//! A [`CryptoProvider`] is a struct of the primitives dime uses, as in rustls: Ed25519
//! signatures, X25519 key agreement, XChaCha20-Poly1305, SHA-512, HKDF-SHA-512 and Argon2id.
//! Every operation in the project goes through a provider, so tests and fuzzers can swap in
//! the insecure deterministic provider of `dime-testkit`. [`default_provider`] is the
//! RustCrypto/dalek set.
//!
//! One Ed25519 validity rule everywhere: [`SignatureAlgorithm::verify`] has `verify_strict`
//! semantics (canonical encodings, no small-order public keys or `R`).

mod default;
mod hashed;
mod keys;

pub use default::{Argon2Memory, default_provider};
pub use hashed::{Bytes, Hashed, HashingBuffer};
pub use keys::{
    AeadKey, Ed25519PublicKey, Ed25519Seed, Ed25519Signature, SharedSecret, X25519PublicKey,
    X25519Secret,
};

use std::fmt;

/// Length of an AEAD key (XChaCha20-Poly1305).
pub const AEAD_KEY_LEN: usize = 32;
/// Length of an AEAD nonce (XChaCha20-Poly1305).
pub const AEAD_NONCE_LEN: usize = 24;
/// Length of an AEAD tag (Poly1305).
pub const AEAD_TAG_LEN: usize = 16;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of an Ed25519 or X25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Longest HKDF-SHA-512 output (255 × 64 octets, RFC 5869 §2.3).
pub const HKDF_MAX_OUTPUT: usize = 255 * 64;

/// A failed crypto operation. The messages are deliberately generic: an AEAD failure does not
/// say whether the tag, the nonce or the associated data was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A signature did not verify under the strict Ed25519 rule.
    #[error("signature does not verify")]
    BadSignature,
    /// A public key is not a valid, non-weak curve point.
    #[error("public key is not a valid curve point or has small order")]
    InvalidPublicKey,
    /// X25519 produced the all-zero shared secret (a low-order input).
    #[error("key agreement is not contributory (low-order or all-zero input)")]
    NonContributory,
    /// AEAD decryption failed.
    #[error("decryption failed")]
    Decrypt,
    /// A length was outside what the primitive accepts.
    #[error("length outside what the primitive accepts")]
    BadLength,
    /// Password-KDF parameters are outside the fixed bounds.
    #[error("password kdf parameters out of bounds: {0}")]
    PasswordParams(&'static str),
}

/// Ed25519 signatures.
pub trait SignatureAlgorithm: Send + Sync + fmt::Debug {
    /// The public key of a seed.
    fn public_key(&self, seed: &Ed25519Seed) -> Ed25519PublicKey;
    /// Signs `msg`.
    fn sign(&self, seed: &Ed25519Seed, msg: &[u8]) -> Ed25519Signature;
    /// Verifies with `verify_strict` semantics.
    fn verify(
        &self,
        key: &Ed25519PublicKey,
        msg: &[u8],
        sig: &Ed25519Signature,
    ) -> Result<(), CryptoError>;
    /// Checks that a public key is a valid point of large order.
    fn check_public_key(&self, key: &Ed25519PublicKey) -> Result<(), CryptoError>;
}

/// X25519 key agreement.
pub trait KeyAgreement: Send + Sync + fmt::Debug {
    /// The public key of a secret.
    fn public_key(&self, secret: &X25519Secret) -> X25519PublicKey;
    /// The shared secret; refuses a non-contributory (all-zero) result before any KDF sees it.
    fn agree(
        &self,
        secret: &X25519Secret,
        peer: &X25519PublicKey,
    ) -> Result<SharedSecret, CryptoError>;
}

/// An AEAD with 32-byte keys, 24-byte nonces and 16-byte tags (XChaCha20-Poly1305).
pub trait Aead: Send + Sync + fmt::Debug {
    /// Encrypts `buf` in place and returns the tag.
    fn seal_detached(
        &self,
        key: &AeadKey,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; AEAD_TAG_LEN];
    /// Verifies the tag, then decrypts `buf` in place. On failure `buf` is zeroed: no
    /// plaintext is released before its tag verifies.
    fn open_detached(
        &self,
        key: &AeadKey,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError>;

    /// Encrypts `buf` and appends the tag.
    fn seal(&self, key: &AeadKey, nonce: &[u8; AEAD_NONCE_LEN], aad: &[u8], buf: &mut Vec<u8>) {
        let tag = self.seal_detached(key, nonce, aad, buf);
        buf.extend_from_slice(&tag);
    }

    /// Verifies and decrypts `ciphertext || tag` in place, removing the tag. On failure `buf`
    /// is cleared.
    fn open(
        &self,
        key: &AeadKey,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let Some(split) = buf.len().checked_sub(AEAD_TAG_LEN) else {
            buf.clear();
            return Err(CryptoError::Decrypt);
        };
        let mut tag = [0u8; AEAD_TAG_LEN];
        tag.copy_from_slice(&buf[split..]);
        buf.truncate(split);
        let r = self.open_detached(key, nonce, aad, buf, &tag);
        if r.is_err() {
            buf.clear();
        }
        r
    }
}

/// An incremental SHA-512 computation.
pub trait HashContext: Send {
    /// Absorbs bytes.
    fn update(&mut self, data: &[u8]);
    /// Returns the digest.
    fn finish(self: Box<Self>) -> [u8; 64];
}

/// SHA-512.
pub trait Hash: Send + Sync + fmt::Debug {
    /// Starts an incremental computation.
    fn start(&self) -> Box<dyn HashContext>;
    /// SHA-512 of the concatenation of `parts`.
    fn sha512(&self, parts: &[&[u8]]) -> [u8; 64] {
        let mut h = self.start();
        for p in parts {
            h.update(p);
        }
        h.finish()
    }
}

/// HKDF-SHA-512 (RFC 5869).
pub trait Kdf: Send + Sync + fmt::Debug {
    /// Extract-then-expand into `out` (at most [`HKDF_MAX_OUTPUT`] octets).
    fn hkdf_sha512(
        &self,
        salt: &[u8],
        ikm: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError>;
}

/// Argon2id parameters, stored beside anything wrapped under a password and checked against
/// fixed bounds ([`Argon2Params::check`]) before any work is done with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory cost in KiB.
    pub m_kib: u32,
    /// Time cost (passes).
    pub t: u32,
    /// Parallelism (lanes).
    pub p: u32,
}

impl Argon2Params {
    /// Smallest memory cost accepted: 8 MiB.
    pub const MIN_M_KIB: u32 = 8 * 1024;
    /// Largest memory cost accepted: 2 GiB.
    pub const MAX_M_KIB: u32 = 2 * 1024 * 1024;
    /// Largest time cost accepted.
    pub const MAX_T: u32 = 16;
    /// Largest parallelism accepted.
    pub const MAX_P: u32 = 8;
    /// The default: 19 MiB, 2 passes, 1 lane (OWASP's Argon2id baseline).
    pub const DEFAULT: Argon2Params = Argon2Params { m_kib: 19 * 1024, t: 2, p: 1 };

    /// Refuses parameters outside the fixed bounds (a hostile stored blob cannot make us
    /// allocate gigabytes or spin for minutes, nor weaken the derivation to nothing).
    pub fn check(&self) -> Result<(), CryptoError> {
        if self.m_kib < Self::MIN_M_KIB || self.m_kib > Self::MAX_M_KIB {
            return Err(CryptoError::PasswordParams("memory must be 8 MiB to 2 GiB"));
        }
        if self.t == 0 || self.t > Self::MAX_T {
            return Err(CryptoError::PasswordParams("time cost must be 1 to 16"));
        }
        if self.p == 0 || self.p > Self::MAX_P {
            return Err(CryptoError::PasswordParams("parallelism must be 1 to 8"));
        }
        // Argon2 needs at least 8 KiB per lane: the bounds above imply it.
        const _: () = assert!(Argon2Params::MIN_M_KIB >= 8 * Argon2Params::MAX_P);
        Ok(())
    }
}

/// Argon2id password hashing.
pub trait PasswordKdf: Send + Sync + fmt::Debug {
    /// Derives `out` from a password and salt; checks `params` first.
    fn argon2id(
        &self,
        password: &[u8],
        salt: &[u8],
        params: &Argon2Params,
        out: &mut [u8],
    ) -> Result<(), CryptoError>;

    /// As [`PasswordKdf::argon2id`], working in `memory` (grown to the parameters' size if
    /// smaller, wiped after use) instead of a fresh allocation: a caller that bounds how many
    /// derivations run at once keeps one [`Argon2Memory`] per slot (`spec/dimed.md`, Logins).
    /// A provider that cannot use it derives as [`PasswordKdf::argon2id`] does.
    fn argon2id_in(
        &self,
        password: &[u8],
        salt: &[u8],
        params: &Argon2Params,
        out: &mut [u8],
        memory: &mut Argon2Memory,
    ) -> Result<(), CryptoError> {
        let _ = memory;
        self.argon2id(password, salt, params, out)
    }
}

/// The set of primitives every dime operation uses.
#[derive(Debug, Clone, Copy)]
pub struct CryptoProvider {
    /// A short name, shown by tools (`"rustcrypto"`, `"insecure-test"`).
    pub name: &'static str,
    /// Ed25519.
    pub signature: &'static dyn SignatureAlgorithm,
    /// X25519.
    pub key_agreement: &'static dyn KeyAgreement,
    /// XChaCha20-Poly1305.
    pub aead: &'static dyn Aead,
    /// SHA-512.
    pub hash: &'static dyn Hash,
    /// HKDF-SHA-512.
    pub kdf: &'static dyn Kdf,
    /// Argon2id.
    pub password_kdf: &'static dyn PasswordKdf,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider's hash that implements only `start`: `sha512` is the trait's own.
    #[derive(Debug)]
    struct OnlyStart;

    impl Hash for OnlyStart {
        fn start(&self) -> Box<dyn HashContext> {
            default_provider().hash.start()
        }
    }

    #[test]
    fn the_default_sha512_hashes_the_concatenation_of_the_parts() {
        let parts: [&[u8]; 3] = [b"a", b"", b"bc"];
        let want = default_provider().hash.sha512(&[b"abc"]);
        assert_eq!(OnlyStart.sha512(&parts), want);
        assert_eq!(OnlyStart.sha512(&[b"abc"]), want);
        assert_ne!(OnlyStart.sha512(&[b"abd"]), want);
        assert_eq!(OnlyStart.sha512(&[]), default_provider().hash.sha512(&[b""]));
    }

    #[test]
    fn lengths_are_those_of_the_algorithms() {
        assert_eq!(HKDF_MAX_OUTPUT, 16_320);
        assert_eq!(Argon2Params::MIN_M_KIB, 8_192);
        assert_eq!(Argon2Params::MAX_M_KIB, 2_097_152);
        assert_eq!(Argon2Params::DEFAULT, Argon2Params { m_kib: 19_456, t: 2, p: 1 });
        assert!(Argon2Params::DEFAULT.check().is_ok());
    }

    #[test]
    fn argon2_bounds_hold_at_the_limit_and_refuse_one_past() {
        let ok = |m_kib, t, p| Argon2Params { m_kib, t, p }.check().is_ok();
        let (min_m, max_m) = (Argon2Params::MIN_M_KIB, Argon2Params::MAX_M_KIB);
        let (max_t, max_p) = (Argon2Params::MAX_T, Argon2Params::MAX_P);
        assert!(ok(min_m, 1, 1) && ok(max_m, 1, 1));
        assert!(!ok(min_m - 1, 1, 1) && !ok(max_m + 1, 1, 1) && !ok(0, 1, 1));
        assert!(ok(min_m, max_t, 1) && ok(min_m, 1, max_p) && ok(min_m, max_t, max_p));
        assert!(!ok(min_m, max_t + 1, 1) && !ok(min_m, 0, 1));
        assert!(!ok(min_m, 1, max_p + 1) && !ok(min_m, 1, 0));
        assert!(!ok(u32::MAX, 1, 1) && !ok(min_m, u32::MAX, 1) && !ok(min_m, 1, u32::MAX));
    }
}
