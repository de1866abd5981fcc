//! The version octet (`spec/envelope.md` §2): the AEADs' associated data carry a label that
//! names version 2, not the version octet, so a reader binds the version by refusing any
//! version octet other than 2 before any key agreement, KDF or AEAD. Every way to open a
//! message, and inspection, refuses a message whose version octet changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dime_core::crypto::{
    AEAD_NONCE_LEN, AEAD_TAG_LEN, Aead, AeadKey, CryptoError, CryptoProvider, Kdf, KeyAgreement,
    SharedSecret, X25519PublicKey, X25519Secret, default_provider,
};
use dime_envelope::*;
use dime_testkit::seeded_rng;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Key agreements, KDF calls and AEAD opens, counted (one test in this binary: no race).
static CALLS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug)]
struct Counting;

impl KeyAgreement for Counting {
    fn public_key(&self, secret: &X25519Secret) -> X25519PublicKey {
        default_provider().key_agreement.public_key(secret)
    }
    fn agree(
        &self,
        secret: &X25519Secret,
        peer: &X25519PublicKey,
    ) -> Result<SharedSecret, CryptoError> {
        CALLS.fetch_add(1, Ordering::SeqCst);
        default_provider().key_agreement.agree(secret, peer)
    }
}

impl Kdf for Counting {
    fn hkdf_sha512(&self, s: &[u8], k: &[u8], i: &[u8], o: &mut [u8]) -> Result<(), CryptoError> {
        CALLS.fetch_add(1, Ordering::SeqCst);
        default_provider().kdf.hkdf_sha512(s, k, i, o)
    }
}

impl Aead for Counting {
    fn seal_detached(
        &self,
        key: &AeadKey,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; AEAD_TAG_LEN] {
        default_provider().aead.seal_detached(key, nonce, aad, buf)
    }
    fn open_detached(
        &self,
        key: &AeadKey,
        nonce: &[u8; AEAD_NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError> {
        CALLS.fetch_add(1, Ordering::SeqCst);
        default_provider().aead.open_detached(key, nonce, aad, buf, tag)
    }
}

fn provider() -> CryptoProvider {
    CryptoProvider {
        name: "counting",
        key_agreement: &Counting,
        kdf: &Counting,
        aead: &Counting,
        ..*default_provider()
    }
}

fn is_version(r: Result<(), OpenError>, v: u8) -> bool {
    matches!(r, Err(OpenError::Decode(DecodeError::UnsupportedVersion(x))) if x == v)
}

#[test]
fn a_changed_version_octet_is_refused_before_any_key_agreement_kdf_or_aead() {
    let p = provider();
    let w = world(&p);
    let msg = delivered(&p, &mut seeded_rng(41), &w, &sample_message(100));
    assert_eq!(&msg[..8], b"DIMEMSG\x02");
    let read_key = [7u8; 32];
    let overlay = recipient_chunk_keys(&p, &msg, &w.recip.enc)
        .unwrap()
        .seal_with_read_key(&p, &mut seeded_rng(42), &read_key)
        .unwrap();
    let ins = inspect(&p, &msg, None);
    let ranges: Vec<_> =
        ins.chunks.iter().map(|c| c.offset as usize..(c.offset + c.size) as usize).collect();

    // The message as sealed opens (and the counter sees the work).
    CALLS.store(0, Ordering::SeqCst);
    let _ = open_as_recipient(&p, &msg, &w.recip.enc)
        .unwrap()
        .verify(&p, &w.author.keys.signing, Some(&w.origin.keys.signing))
        .unwrap();
    assert!(CALLS.load(Ordering::SeqCst) > 0);

    for v in (0..=u8::MAX).filter(|&v| v != 2) {
        let mut bad = msg.clone();
        bad[7] = v;
        CALLS.store(0, Ordering::SeqCst);
        let chunks: Vec<_> = ranges.iter().map(|r| LightChunk::Present(&bad[r.clone()])).collect();
        let results = [
            ("recipient", open_as_recipient(&p, &bad, &w.recip.enc).map(|_| ())),
            ("author", open_as_author(&p, &bad, &w.author.enc).map(|_| ())),
            ("origin", open_as_origin(&p, &bad[..], &w.origin.enc).map(|_| ())),
            ("destination", open_as_destination(&p, &bad[..], &w.dest.enc).map(|_| ())),
            ("light", open_light(&p, &bad[..42], &chunks, &w.recip.enc).map(|_| ())),
            ("chunk keys", recipient_chunk_keys(&p, &bad, &w.recip.enc).map(|_| ())),
            (
                "overlay",
                open_as_recipient_with_overlay(&p, &bad, &overlay, OverlayKey::Read(&read_key))
                    .map(|_| ()),
            ),
        ];
        for (what, r) in results {
            assert!(is_version(r, v), "{what}: version {v} not refused as a framing error");
        }
        let ins = inspect(&p, &bad, Some(&w.recip.enc));
        assert!(ins.error.is_some() && ins.chunks.is_empty() && ins.key_roles.is_empty(), "{v}");
        assert_eq!(CALLS.load(Ordering::SeqCst), 0, "version {v}: crypto ran before the refusal");
    }
}
