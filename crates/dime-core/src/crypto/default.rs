//! The default provider: ed25519-dalek, x25519-dalek, XChaCha20-Poly1305 (HChaCha20 from
//! `chacha20`, then ring's ChaCha20-Poly1305), sha2, hkdf, argon2.

use super::{
    AEAD_NONCE_LEN, AEAD_TAG_LEN, Aead, AeadKey, Argon2Params, CryptoError, CryptoProvider,
    Ed25519PublicKey, Ed25519Seed, Ed25519Signature, HKDF_MAX_OUTPUT, Hash, HashContext, Kdf,
    KeyAgreement, PasswordKdf, SharedSecret, SignatureAlgorithm, X25519PublicKey, X25519Secret,
};
use sha2::Digest;
use zeroize::Zeroize;

/// The RustCrypto/dalek provider: the one to use outside tests.
pub fn default_provider() -> &'static CryptoProvider {
    &DEFAULT
}

static DEFAULT: CryptoProvider = CryptoProvider {
    name: "rustcrypto",
    signature: &Dalek,
    key_agreement: &Dalek,
    aead: &XChaCha,
    hash: &Sha512,
    kdf: &HkdfSha512,
    password_kdf: &Argon2id,
};

#[derive(Debug)]
struct Dalek;

impl SignatureAlgorithm for Dalek {
    fn public_key(&self, seed: &Ed25519Seed) -> Ed25519PublicKey {
        let sk = ed25519_dalek::SigningKey::from_bytes(seed.expose());
        Ed25519PublicKey(sk.verifying_key().to_bytes())
    }

    fn sign(&self, seed: &Ed25519Seed, msg: &[u8]) -> Ed25519Signature {
        use ed25519_dalek::Signer;
        let sk = ed25519_dalek::SigningKey::from_bytes(seed.expose());
        Ed25519Signature(sk.sign(msg).to_bytes())
    }

    fn verify(
        &self,
        key: &Ed25519PublicKey,
        msg: &[u8],
        sig: &Ed25519Signature,
    ) -> Result<(), CryptoError> {
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&key.0)
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        vk.verify_strict(msg, &sig).map_err(|_| CryptoError::BadSignature)
    }

    fn check_public_key(&self, key: &Ed25519PublicKey) -> Result<(), CryptoError> {
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&key.0)
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        if vk.is_weak() {
            return Err(CryptoError::InvalidPublicKey);
        }
        Ok(())
    }
}

impl KeyAgreement for Dalek {
    fn public_key(&self, secret: &X25519Secret) -> X25519PublicKey {
        let sk = x25519_dalek::StaticSecret::from(*secret.expose());
        X25519PublicKey(x25519_dalek::PublicKey::from(&sk).to_bytes())
    }

    fn agree(
        &self,
        secret: &X25519Secret,
        peer: &X25519PublicKey,
    ) -> Result<SharedSecret, CryptoError> {
        let sk = x25519_dalek::StaticSecret::from(*secret.expose());
        let shared = sk.diffie_hellman(&x25519_dalek::PublicKey::from(peer.0));
        if !shared.was_contributory() {
            return Err(CryptoError::NonContributory);
        }
        Ok(SharedSecret::from_bytes(shared.to_bytes()))
    }
}

#[derive(Debug)]
struct XChaCha;

/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03): the HChaCha20 subkey from the key and the
/// nonce's first 16 octets (the `chacha20` crate), then ring's ChaCha20-Poly1305 (RFC 8439)
/// under that subkey with the nonce `0^4 ‖ nonce[16..24]`. The same octets as RustCrypto's
/// `XChaCha20Poly1305` (checked against it in the tests below), at a fraction of the cost for
/// the small chunks of a message: ring's assembly has no per-call set-up worth measuring,
/// RustCrypto's costs about 1.8 µs a call (`../shared/design/dependency-notes.md`).
fn xchacha_key(
    key: &AeadKey,
    nonce: &[u8; AEAD_NONCE_LEN],
) -> (ring::aead::LessSafeKey, ring::aead::Nonce) {
    let mut input = [0u8; 16];
    input.copy_from_slice(&nonce[..16]);
    let mut sub =
        chacha20::hchacha::<chacha20::cipher::consts::U10>(key.expose().into(), &input.into());
    // A 32-octet key is the one length CHACHA20_POLY1305 takes: this cannot fail.
    let unbound = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, sub.as_slice());
    sub.as_mut_slice().zeroize();
    let unbound = match unbound {
        Ok(k) => k,
        Err(_) => unreachable!("CHACHA20_POLY1305 takes a 32-octet key"),
    };
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&nonce[16..]);
    (ring::aead::LessSafeKey::new(unbound), ring::aead::Nonce::assume_unique_for_key(n))
}

impl Aead for XChaCha {
    fn seal_detached(
        &self,
        key: &AeadKey,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; AEAD_TAG_LEN] {
        let (k, n) = xchacha_key(key, nonce);
        // Sealing fails only for inputs over 256 GiB, which no caller can build: every caller
        // bounds its chunk sizes far below (spec/envelope.md limits).
        match k.seal_in_place_separate_tag(n, ring::aead::Aad::from(aad), buf) {
            Ok(tag) => {
                let mut out = [0u8; AEAD_TAG_LEN];
                out.copy_from_slice(tag.as_ref());
                out
            }
            Err(_) => {
                buf.zeroize();
                [0u8; AEAD_TAG_LEN]
            }
        }
    }

    fn open_detached(
        &self,
        key: &AeadKey,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError> {
        let (k, n) = xchacha_key(key, nonce);
        let tag = ring::aead::Tag::from(*tag);
        match k.open_in_place_separate_tag(n, ring::aead::Aad::from(aad), tag, buf, 0..) {
            Ok(_) => Ok(()),
            Err(_) => {
                buf.zeroize();
                Err(CryptoError::Decrypt)
            }
        }
    }
}

#[derive(Debug)]
struct Sha512;

struct Sha512Ctx(sha2::Sha512);

impl HashContext for Sha512Ctx {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    fn finish(self: Box<Self>) -> [u8; 64] {
        self.0.finalize().into()
    }
}

impl Hash for Sha512 {
    fn start(&self) -> Box<dyn HashContext> {
        Box::new(Sha512Ctx(sha2::Sha512::new()))
    }
    fn sha512(&self, parts: &[&[u8]]) -> [u8; 64] {
        let mut h = sha2::Sha512::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }
}

#[derive(Debug)]
struct HkdfSha512;

impl Kdf for HkdfSha512 {
    fn hkdf_sha512(
        &self,
        salt: &[u8],
        ikm: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        if out.len() > HKDF_MAX_OUTPUT {
            return Err(CryptoError::BadLength);
        }
        hkdf::Hkdf::<sha2::Sha512>::new(Some(salt), ikm)
            .expand(info, out)
            .map_err(|_| CryptoError::BadLength)
    }
}

#[derive(Debug)]
struct Argon2id;

impl PasswordKdf for Argon2id {
    fn argon2id(
        &self,
        password: &[u8],
        salt: &[u8],
        params: &Argon2Params,
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        // A fresh memory, wiped when dropped (argon2's own allocation is not).
        self.argon2id_in(password, salt, params, out, &mut Argon2Memory::new())
    }

    fn argon2id_in(
        &self,
        password: &[u8],
        salt: &[u8],
        params: &Argon2Params,
        out: &mut [u8],
        memory: &mut Argon2Memory,
    ) -> Result<(), CryptoError> {
        params.check()?;
        let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(out.len()))
            .map_err(|_| CryptoError::PasswordParams("rejected by argon2"))?;
        let blocks = memory.blocks(p.block_count());
        let r = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p)
            .hash_password_into_with_memory(password, salt, out, blocks)
            .map_err(|_| CryptoError::BadLength);
        memory.wipe();
        r
    }
}

/// Argon2id's working memory (its 1 KiB blocks), reusable across derivations. It holds values
/// derived from the password while a derivation runs: it is wiped after each derivation and
/// when dropped, and `Debug` shows only its size.
#[derive(Default)]
pub struct Argon2Memory {
    blocks: Vec<argon2::Block>,
}

impl Argon2Memory {
    /// Empty: the first derivation allocates.
    pub const fn new() -> Argon2Memory {
        Argon2Memory { blocks: Vec::new() }
    }

    /// Allocated (and touched) now for `params`, so that the first derivation allocates nothing.
    pub fn for_params(params: &Argon2Params) -> Argon2Memory {
        let mut m = Argon2Memory::new();
        m.blocks(params.m_kib as usize);
        m
    }

    /// Its size, KiB (one block is 1 KiB).
    pub fn kib(&self) -> usize {
        self.blocks.len()
    }

    /// The first `n` blocks, grown to `n` if smaller (a larger memory is kept for later).
    pub(crate) fn blocks(&mut self, n: usize) -> &mut [argon2::Block] {
        if self.blocks.len() < n {
            self.blocks.resize(n, argon2::Block::default());
        }
        &mut self.blocks[..n]
    }

    /// Zeroes every block.
    pub(crate) fn wipe(&mut self) {
        use zeroize::Zeroize;
        self.blocks.iter_mut().for_each(Zeroize::zeroize);
    }
}

impl Drop for Argon2Memory {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl std::fmt::Debug for Argon2Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Argon2Memory({} KiB)", self.kib())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static CryptoProvider {
        default_provider()
    }

    // RFC 8032 §7.1 TEST 1.
    #[test]
    fn ed25519_rfc8032_test1() {
        let seed = Ed25519Seed::from_bytes(hex_arr(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        ));
        let pk = p().signature.public_key(&seed);
        assert_eq!(
            pk.0,
            hex_arr("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        let sig = p().signature.sign(&seed, b"");
        assert_eq!(
            hex(&sig.0),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(p().signature.verify(&pk, b"", &sig).is_ok());
        assert_eq!(p().signature.verify(&pk, b"x", &sig), Err(CryptoError::BadSignature));
    }

    #[test]
    fn ed25519_rejects_small_order_key() {
        // The identity point (small order): verify_strict refuses it.
        let mut id = [0u8; 32];
        id[0] = 1;
        let pk = Ed25519PublicKey(id);
        assert_eq!(p().signature.check_public_key(&pk), Err(CryptoError::InvalidPublicKey));
        assert!(p().signature.verify(&pk, b"", &Ed25519Signature([0; 64])).is_err());
    }

    #[test]
    fn ed25519_identity_key_and_identity_r_with_zero_s_fails_for_every_message() {
        // Public key A = identity and signature (R = identity, s = 0): the cofactorless
        // equation [s]B = R + [k]A holds for every message (both sides are the identity), so
        // plain `verify` accepts it. The strict rule (spec/signet.md §1, rules 2 and 3: no
        // small-order A or R) refuses it, at every verification site.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let pk = Ed25519PublicKey(identity);
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&identity);
        let sig = Ed25519Signature(sig);
        for msg in [&b""[..], b"dime", &[0xff; 100]] {
            assert!(p().signature.verify(&pk, msg, &sig).is_err(), "{msg:?}");
        }
        // The same check through dalek directly shows what the strict rule adds: the lax
        // `verify` accepts this signature.
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap();
        let dsig = ed25519_dalek::Signature::from_bytes(&sig.0);
        assert!(ed25519_dalek::Verifier::verify(&vk, b"dime", &dsig).is_ok());
    }

    // RFC 7748 §6.1.
    #[test]
    fn x25519_rfc7748_and_low_order() {
        let a = X25519Secret::from_bytes(hex_arr(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        let b = X25519Secret::from_bytes(hex_arr(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        ));
        let ka = p().key_agreement;
        let s1 = ka.agree(&a, &ka.public_key(&b)).unwrap();
        let s2 = ka.agree(&b, &ka.public_key(&a)).unwrap();
        assert_eq!(
            s1.expose(),
            &hex_arr("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        );
        assert_eq!(s1.expose(), s2.expose());
        assert_eq!(
            ka.agree(&a, &X25519PublicKey([0u8; 32])).err(),
            Some(CryptoError::NonContributory)
        );
    }

    #[test]
    fn aead_round_trip_and_tamper() {
        let key = AeadKey::from_bytes([9; 32]);
        let nonce = [3u8; 24];
        let mut buf = b"attack at dawn".to_vec();
        p().aead.seal(&key, &nonce, b"ad", &mut buf);
        let sealed = buf.clone();
        p().aead.open(&key, &nonce, b"ad", &mut buf).unwrap();
        assert_eq!(buf, b"attack at dawn");
        let mut bad = sealed.clone();
        bad[0] ^= 1;
        assert_eq!(p().aead.open(&key, &nonce, b"ad", &mut bad), Err(CryptoError::Decrypt));
        assert!(bad.is_empty());
        let mut bad = sealed;
        assert!(p().aead.open(&key, &nonce, b"AD", &mut bad).is_err());
    }

    // RFC 5869 has no SHA-512 vectors; check against a value computed with Python's
    // `cryptography` (HKDF(SHA512, 42, salt=b"salt", info=b"info").derive(b"ikm")).
    proptest::proptest! {
        /// The ring-based XChaCha20-Poly1305 seals and opens exactly as RustCrypto's.
        #[test]
        fn xchacha_matches_rustcrypto(
            key in proptest::array::uniform32(0u8..),
            nonce in proptest::collection::vec(0u8.., 24),
            aad in proptest::collection::vec(0u8.., 0..80),
            msg in proptest::collection::vec(0u8.., 0..600),
        ) {
            use chacha20poly1305::aead::AeadInPlace;
            use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
            let nonce: [u8; 24] = nonce.try_into().unwrap();
            let mut ours = msg.clone();
            let tag = p().aead.seal_detached(&AeadKey::from_bytes(key), &nonce, &aad, &mut ours);
            let mut theirs = msg.clone();
            let rc = XChaCha20Poly1305::new(&key.into());
            let their_tag =
                rc.encrypt_in_place_detached((&nonce).into(), &aad, &mut theirs).unwrap();
            proptest::prop_assert_eq!(&ours, &theirs);
            proptest::prop_assert_eq!(&tag[..], &their_tag[..]);
            p().aead
                .open_detached(&AeadKey::from_bytes(key), &nonce, &aad, &mut ours, &tag)
                .unwrap();
            proptest::prop_assert_eq!(ours, msg);
        }
    }

    #[test]
    fn hkdf_and_sha512_known_answers() {
        assert_eq!(
            hex(&p().hash.sha512(&[b"a", b"bc"])),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        let mut out = [0u8; 42];
        p().kdf.hkdf_sha512(b"salt", b"ikm", b"info", &mut out).unwrap();
        assert_eq!(
            hex(&out),
            "f8666bd3fdd88840c947614272dd065c71c541b0de03ff738644dffc3facec646317f3819f453c7f0c4b"
        );
        // At the limit and one past it (RFC 5869 §2.3: L <= 255 HashLen).
        let mut most = vec![0u8; HKDF_MAX_OUTPUT];
        p().kdf.hkdf_sha512(b"salt", b"ikm", b"info", &mut most).unwrap();
        assert_eq!(most[..42], out, "a longer output extends the shorter one");
        let mut big = vec![0u8; HKDF_MAX_OUTPUT + 1];
        assert_eq!(p().kdf.hkdf_sha512(b"", b"", b"", &mut big), Err(CryptoError::BadLength));
    }

    #[test]
    fn argon2_params_are_bounded() {
        let mut out = [0u8; 32];
        let hostile = Argon2Params { m_kib: u32::MAX, t: 1, p: 1 };
        assert!(matches!(
            p().password_kdf.argon2id(b"pw", b"saltsalt", &hostile, &mut out),
            Err(CryptoError::PasswordParams(_))
        ));
        let weak = Argon2Params { m_kib: 8, t: 1, p: 1 };
        assert!(weak.check().is_err());
        assert!(Argon2Params { m_kib: 8192, t: 0, p: 1 }.check().is_err());
        assert!(Argon2Params { m_kib: 8192, t: 1, p: 9 }.check().is_err());
        let ok = Argon2Params { m_kib: 8192, t: 1, p: 1 };
        p().password_kdf.argon2id(b"pw", b"saltsalt", &ok, &mut out).unwrap();
        let mut out2 = [0u8; 32];
        p().password_kdf.argon2id(b"pw", b"saltsalt", &ok, &mut out2).unwrap();
        assert_eq!(out, out2);
    }

    #[test]
    fn argon2_in_a_reused_memory_derives_as_a_fresh_one_and_leaves_it_wiped() {
        let ok = Argon2Params { m_kib: 8192, t: 1, p: 1 };
        let mut fresh = [0u8; 32];
        p().password_kdf.argon2id(b"pw", b"saltsalt", &ok, &mut fresh).unwrap();
        let mut memory = Argon2Memory::new();
        for (pw, want) in [(&b"other"[..], None), (b"pw", Some(fresh)), (b"pw", Some(fresh))] {
            let mut out = [0u8; 32];
            p().password_kdf.argon2id_in(pw, b"saltsalt", &ok, &mut out, &mut memory).unwrap();
            assert_ne!(out, [0u8; 32]);
            if let Some(want) = want {
                assert_eq!(out, want, "a memory used before derives the same");
            }
            assert_eq!(memory.kib(), 8192, "one allocation of the parameters' size, kept");
            assert!(memory.blocks.iter().all(|b| b.as_ref().iter().all(|w| *w == 0)), "wiped");
        }
        assert_eq!(format!("{memory:?}"), "Argon2Memory(8192 KiB)");
        // A smaller derivation uses a prefix; the memory keeps its size.
        let mut big = Argon2Memory::for_params(&Argon2Params { m_kib: 9000, t: 1, p: 1 });
        let mut out = [0u8; 32];
        p().password_kdf.argon2id_in(b"pw", b"saltsalt", &ok, &mut out, &mut big).unwrap();
        assert_eq!((out, big.kib()), (fresh, 9000));
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn hex_arr(s: &str) -> [u8; 32] {
        let mut a = [0u8; 32];
        for (i, c) in s.as_bytes().chunks(2).enumerate() {
            a[i] = u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap();
        }
        a
    }
}
