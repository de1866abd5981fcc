//! `dime-testkit`: helpers for tests, benchmarks and fuzzers. Never a dependency of product
//! code (only `[dev-dependencies]` and `fuzz/`).
//!
//! - [`insecure_provider`]: a deterministic [`CryptoProvider`] whose signatures, key agreement
//!   and AEAD are cheap, transparent functions. A fuzzer can satisfy them, so it reaches the
//!   code behind the signature and tag checks. It is **not** cryptography.
//! - [`seeded_rng`]: a reproducible RNG for deterministic vectors.
//! - [`FixedDraws`]: an RNG whose integer draws are pinned (a jitter, a choice), its bytes
//!   still seeded random.
//! - [`vectors_dir`]: where `spec/vectors/` lives.
//! - [`tls_provider`]: the rustls crypto provider (ring) for tests and benchmarks, which build
//!   their TLS and QUIC configurations over it as the binaries do over theirs.
//! - [`free_port`]: a loopback port free for both UDP and TCP, for a server a test starts.

use dime_core::crypto::{
    AEAD_NONCE_LEN, AEAD_TAG_LEN, Aead, AeadKey, Argon2Params, CryptoError, CryptoProvider,
    Ed25519PublicKey, Ed25519Seed, Ed25519Signature, KeyAgreement, PasswordKdf, SharedSecret,
    SignatureAlgorithm, X25519PublicKey, X25519Secret, default_provider,
};
use std::path::PathBuf;

pub use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

pub mod logs;

/// A port of 127.0.0.1 free for UDP and for TCP when asked (a server a test starts binds it
/// next: QUIC and TLS, or DNS over both).
///
/// # Panics
/// When 50 tries found none.
#[allow(clippy::unwrap_used, clippy::panic)]
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// A reproducible RNG seeded from a `u64`.
pub fn seeded_rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// An RNG whose `next_u32` and `next_u64` always draw the same value (to pin a random
/// choice, such as a backoff's jitter, in a test), and whose bytes (`fill_bytes`: nonces,
/// keys) come from [`seeded_rng`], so they stay distinct.
#[derive(Debug)]
pub struct FixedDraws {
    draw: u64,
    bytes: ChaCha20Rng,
}

impl FixedDraws {
    /// Draws `draw` (its low 32 bits for `next_u32`); bytes from `seeded_rng(seed)`.
    pub fn new(draw: u64, seed: u64) -> FixedDraws {
        FixedDraws { draw, bytes: seeded_rng(seed) }
    }
}

impl dime_core::RngCore for FixedDraws {
    fn next_u32(&mut self) -> u32 {
        self.draw as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.draw
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.bytes.fill_bytes(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_chacha::rand_core::Error> {
        self.bytes.try_fill_bytes(dest)
    }
}

impl dime_core::CryptoRng for FixedDraws {}

/// The rustls crypto provider for tests and benchmarks: ring's, the one the binaries build
/// once per process and pass down (`ARCHITECTURE.md`, "Crypto provider seam").
pub fn tls_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// The repository's `spec/vectors/` directory.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../spec/vectors")
}

/// The insecure deterministic provider (see the crate docs). SHA-512 and HKDF are the real
/// ones (cheap, and fingerprints must stay meaningful); Argon2id is replaced by HKDF.
pub fn insecure_provider() -> &'static CryptoProvider {
    &INSECURE
}

static INSECURE: CryptoProvider = CryptoProvider {
    name: "insecure-test",
    signature: &Insecure,
    key_agreement: &Insecure,
    aead: &Insecure,
    hash: DEFAULT_HASH,
    kdf: DEFAULT_KDF,
    password_kdf: &Insecure,
};

// The default provider's SHA-512 and HKDF, reused.
const DEFAULT_HASH: &dyn dime_core::crypto::Hash = &RealHash;
const DEFAULT_KDF: &dyn dime_core::crypto::Kdf = &RealKdf;

#[derive(Debug)]
struct RealHash;
impl dime_core::crypto::Hash for RealHash {
    fn start(&self) -> Box<dyn dime_core::crypto::HashContext> {
        default_provider().hash.start()
    }
}

#[derive(Debug)]
struct RealKdf;
impl dime_core::crypto::Kdf for RealKdf {
    fn hkdf_sha512(&self, s: &[u8], k: &[u8], i: &[u8], o: &mut [u8]) -> Result<(), CryptoError> {
        default_provider().kdf.hkdf_sha512(s, k, i, o)
    }
}

#[derive(Debug)]
struct Insecure;

/// An N-byte fold of `parts`: position-dependent XOR with a running counter. Transparent to
/// a fuzzer, collision-prone, and good for nothing else.
fn fold<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut n: usize = 0;
    for p in parts {
        for &b in *p {
            out[n % N] ^= b.wrapping_add(n as u8);
            n += 1;
        }
        out[n % N] ^= 0xA5;
        n += 1;
    }
    out
}

impl SignatureAlgorithm for Insecure {
    fn public_key(&self, seed: &Ed25519Seed) -> Ed25519PublicKey {
        Ed25519PublicKey(*seed.expose())
    }
    /// signature = public key || fold(public key, msg)
    fn sign(&self, seed: &Ed25519Seed, msg: &[u8]) -> Ed25519Signature {
        let pk = SignatureAlgorithm::public_key(self, seed);
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&pk.0);
        sig[32..].copy_from_slice(&fold::<32>(&[&pk.0, msg]));
        Ed25519Signature(sig)
    }
    fn verify(
        &self,
        key: &Ed25519PublicKey,
        msg: &[u8],
        sig: &Ed25519Signature,
    ) -> Result<(), CryptoError> {
        self.check_public_key(key)?;
        if sig.0[..32] == key.0 && sig.0[32..] == fold::<32>(&[&key.0, msg]) {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }
    fn check_public_key(&self, key: &Ed25519PublicKey) -> Result<(), CryptoError> {
        if key.0 == [0u8; 32] { Err(CryptoError::InvalidPublicKey) } else { Ok(()) }
    }
}

impl KeyAgreement for Insecure {
    fn public_key(&self, secret: &X25519Secret) -> X25519PublicKey {
        X25519PublicKey(*secret.expose())
    }
    /// shared = secret XOR peer (symmetric because public = secret).
    fn agree(
        &self,
        secret: &X25519Secret,
        peer: &X25519PublicKey,
    ) -> Result<SharedSecret, CryptoError> {
        let mut s = [0u8; 32];
        for (i, b) in s.iter_mut().enumerate() {
            *b = secret.expose()[i] ^ peer.0[i];
        }
        if s == [0u8; 32] || peer.0 == [0u8; 32] {
            return Err(CryptoError::NonContributory);
        }
        Ok(SharedSecret::from_bytes(s))
    }
}

impl Insecure {
    fn keystream(key: &AeadKey, nonce: &[u8; AEAD_NONCE_LEN], buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key.expose()[i % 32] ^ nonce[i % AEAD_NONCE_LEN] ^ (i as u8);
        }
    }
    fn tag(key: &AeadKey, nonce: &[u8], aad: &[u8], ct: &[u8]) -> [u8; AEAD_TAG_LEN] {
        fold::<AEAD_TAG_LEN>(&[key.expose(), nonce, aad, ct])
    }
}

impl Aead for Insecure {
    fn seal_detached(
        &self,
        key: &AeadKey,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; AEAD_TAG_LEN] {
        Self::keystream(key, nonce, buf);
        Self::tag(key, nonce, aad, buf)
    }
    fn open_detached(
        &self,
        key: &AeadKey,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError> {
        if Self::tag(key, nonce, aad, buf) != *tag {
            buf.iter_mut().for_each(|b| *b = 0);
            return Err(CryptoError::Decrypt);
        }
        Self::keystream(key, nonce, buf);
        Ok(())
    }
}

impl PasswordKdf for Insecure {
    fn argon2id(
        &self,
        password: &[u8],
        salt: &[u8],
        params: &Argon2Params,
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        params.check()?;
        default_provider().kdf.hkdf_sha512(salt, password, b"insecure-argon2id", out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_signatures_verify_and_detect_changes() {
        let p = insecure_provider();
        let seed = Ed25519Seed::from_bytes([5; 32]);
        let pk = p.signature.public_key(&seed);
        let sig = p.signature.sign(&seed, b"msg");
        assert!(p.signature.verify(&pk, b"msg", &sig).is_ok());
        assert!(p.signature.verify(&pk, b"msh", &sig).is_err());
    }

    #[test]
    fn insecure_agreement_is_symmetric_and_aead_round_trips() {
        let p = insecure_provider();
        let a = X25519Secret::from_bytes([1; 32]);
        let b = X25519Secret::from_bytes([2; 32]);
        let s1 = p.key_agreement.agree(&a, &p.key_agreement.public_key(&b)).unwrap();
        let s2 = p.key_agreement.agree(&b, &p.key_agreement.public_key(&a)).unwrap();
        assert_eq!(s1.expose(), s2.expose());
        let key = AeadKey::from_bytes(*s1.expose());
        let mut buf = b"hello".to_vec();
        p.aead.seal(&key, &[0; 24], b"", &mut buf);
        let mut t = buf.clone();
        t[0] ^= 1;
        assert!(p.aead.open(&key, &[0; 24], b"", &mut t).is_err());
        p.aead.open(&key, &[0; 24], b"", &mut buf).unwrap();
        assert_eq!(buf, b"hello");
    }
}
