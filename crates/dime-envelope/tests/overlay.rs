//! Key overlays (`spec/envelope.md` §16): both forms open the unchanged message and verify
//! exactly as a direct open does; every tampering is the generic error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dime_core::crypto::{X25519Secret, default_provider};
use dime_envelope::*;
use dime_testkit::seeded_rng;

fn setup() -> (World, Vec<u8>, ActorSecret) {
    let p = default_provider();
    let w = world(p);
    let msg = delivered(p, &mut seeded_rng(31), &w, &sample_message(500));
    let new = ActorSecret::new(p, X25519Secret::from_bytes([77; 32]));
    (w, msg, new)
}

fn verify_ok(w: &World, u: Result<Unverified<FullView>, OpenError>) -> Verified<FullView> {
    let p = default_provider();
    u.unwrap().verify(p, &w.author.keys.signing, Some(&w.origin.keys.signing)).unwrap()
}

fn assert_generic(r: Result<ChunkKeys, OpenError>) {
    assert!(matches!(r, Err(OpenError::Unauthentic)), "{r:?}");
}

#[test]
fn chunk_keys_cover_exactly_the_recipient_chunks() {
    let p = default_provider();
    let (w, msg, _) = setup();
    let keys = recipient_chunk_keys(p, &msg, &w.recip.enc).unwrap();
    let ins = inspect(p, &msg, None);
    let want: Vec<(ChunkType, u16)> = ins
        .chunks
        .iter()
        .filter(|c| c.chunk_type.slot_roles().contains(&Role::Recipient))
        .map(|c| (c.chunk_type, c.index))
        .collect();
    assert_eq!(keys.chunks().collect::<Vec<_>>(), want);
    assert!(!want.iter().any(|(t, _)| *t == ChunkType::OriginSig));
    // Another actor's key does not give the recipient's chunk keys.
    assert!(recipient_chunk_keys(p, &msg, &w.dest.enc).is_err());
    assert!(recipient_chunk_keys(p, &msg, &w.author.enc).is_err());
}

#[test]
fn both_forms_open_the_unchanged_message_and_verify_like_a_direct_open() {
    let p = default_provider();
    let (w, msg, new) = setup();
    let direct = verify_ok(&w, open_as_recipient(p, &msg, &w.recip.enc));
    let keys = recipient_chunk_keys(p, &msg, &w.recip.enc).unwrap();
    let mut rng = seeded_rng(5);
    let x = keys.seal_to_x25519(p, &mut rng, new.public()).unwrap();
    let rk = [9u8; 32];
    let r = keys.seal_with_read_key(p, &mut rng, &rk).unwrap();
    for (ov, key) in [(&x, OverlayKey::X25519(&new)), (&r, OverlayKey::Read(&rk))] {
        let via = verify_ok(&w, open_as_recipient_with_overlay(p, &msg, ov, key));
        assert_eq!(via.view(), direct.view());
        assert_eq!(via.message_id(), direct.message_id());
        // The same verification: a wrong author or origin key is refused.
        let u = open_as_recipient_with_overlay(p, &msg, ov, key).unwrap();
        assert!(matches!(
            u.verify(p, &w.origin.keys.signing, Some(&w.origin.keys.signing)),
            Err(OpenError::Unauthentic)
        ));
        let u = open_as_recipient_with_overlay(p, &msg, ov, key).unwrap();
        assert!(matches!(
            u.verify(p, &w.author.keys.signing, None),
            Err(OpenError::OriginSignature)
        ));
    }
    // An overlay of the x25519 form is sealed afresh each time (fresh ephemeral key).
    assert_ne!(x, keys.seal_to_x25519(p, &mut rng, new.public()).unwrap());
}

#[test]
fn without_the_key_an_overlay_gives_nothing() {
    let p = default_provider();
    let (w, msg, new) = setup();
    let keys = recipient_chunk_keys(p, &msg, &w.recip.enc).unwrap();
    let mut rng = seeded_rng(6);
    let x = keys.seal_to_x25519(p, &mut rng, new.public()).unwrap();
    let r = keys.seal_with_read_key(p, &mut rng, &[1; 32]).unwrap();
    assert_generic(open_overlay(p, &msg, &x, OverlayKey::X25519(&w.recip.enc)));
    assert_generic(open_overlay(p, &msg, &x, OverlayKey::Read(&[1; 32])));
    assert_generic(open_overlay(p, &msg, &r, OverlayKey::Read(&[2; 32])));
    assert_generic(open_overlay(p, &msg, &r, OverlayKey::X25519(&new)));
    assert!(x.len() < OVERLAY_MAX_LEN && r.len() < x.len());
}

#[test]
fn every_flipped_overlay_octet_is_refused_with_the_generic_error() {
    let p = default_provider();
    let (w, msg, new) = setup();
    let keys = recipient_chunk_keys(p, &msg, &w.recip.enc).unwrap();
    let mut rng = seeded_rng(7);
    let rk = [3u8; 32];
    for (ov, key) in [
        (keys.seal_to_x25519(p, &mut rng, new.public()).unwrap(), OverlayKey::X25519(&new)),
        (keys.seal_with_read_key(p, &mut rng, &rk).unwrap(), OverlayKey::Read(&rk)),
    ] {
        for i in 0..ov.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = ov.clone();
                bad[i] ^= bit;
                let r = open_as_recipient_with_overlay(p, &msg, &bad, key);
                assert!(matches!(r, Err(OpenError::Unauthentic)), "octet {i}: {r:?}");
            }
        }
        // Truncated or extended.
        for bad in [&ov[..ov.len() - 1], &ov[..9], &[][..]] {
            assert_generic(open_overlay(p, &msg, bad, key));
        }
        let mut longer = ov.clone();
        longer.push(0);
        assert_generic(open_overlay(p, &msg, &longer, key));
    }
}

#[test]
fn an_overlay_of_another_message_is_refused() {
    let p = default_provider();
    let (w, msg, new) = setup();
    let other = delivered(p, &mut seeded_rng(32), &w, &sample_message(500));
    let keys = recipient_chunk_keys(p, &other, &w.recip.enc).unwrap();
    let mut rng = seeded_rng(8);
    let rk = [4u8; 32];
    let x = keys.seal_to_x25519(p, &mut rng, new.public()).unwrap();
    let r = keys.seal_with_read_key(p, &mut rng, &rk).unwrap();
    assert_generic(open_overlay(p, &msg, &x, OverlayKey::X25519(&new)));
    assert_generic(open_overlay(p, &msg, &r, OverlayKey::Read(&rk)));
    // Even the right keys of another message refuse through the keys path.
    assert!(matches!(open_as_recipient_with_keys(p, &msg, &keys), Err(OpenError::Unauthentic)));
}

#[test]
fn an_overlay_with_a_missing_chunk_key_is_refused() {
    let p = default_provider();
    let (w, msg, new) = setup();
    let mut rng = seeded_rng(9);
    let rk = [5u8; 32];
    let n = recipient_chunk_keys(p, &msg, &w.recip.enc).unwrap().len();
    for drop in 0..n {
        let mut keys = recipient_chunk_keys(p, &msg, &w.recip.enc).unwrap();
        let index = keys.chunks().nth(drop).unwrap().1;
        keys.remove_chunk(index);
        for (ov, key) in [
            (keys.seal_to_x25519(p, &mut rng, new.public()).unwrap(), OverlayKey::X25519(&new)),
            (keys.seal_with_read_key(p, &mut rng, &rk).unwrap(), OverlayKey::Read(&rk)),
        ] {
            let r = open_as_recipient_with_overlay(p, &msg, &ov, key);
            assert!(matches!(r, Err(OpenError::Unauthentic)), "chunk {index}: {r:?}");
        }
    }
}

#[test]
fn a_tampered_message_does_not_open_through_a_good_overlay() {
    let p = default_provider();
    let (w, msg, _) = setup();
    let keys = recipient_chunk_keys(p, &msg, &w.recip.enc).unwrap();
    let rk = [6u8; 32];
    let ov = keys.seal_with_read_key(p, &mut seeded_rng(10), &rk).unwrap();
    for c in inspect(p, &msg, None).chunks {
        let mut bad = msg.clone();
        let last = usize::try_from(c.offset + c.size).unwrap() - 1;
        bad[last] ^= 1;
        let r = open_as_recipient_with_overlay(p, &bad, &ov, OverlayKey::Read(&rk))
            .and_then(|u| u.verify(p, &w.author.keys.signing, Some(&w.origin.keys.signing)));
        assert!(r.is_err(), "flip in chunk {} accepted", c.index);
    }
}

/// The display-only open (`spec/dmap.md` §5.2): the same view and kind as the verified open;
/// a flipped octet in any chunk it shows (headers, parts, addresses) refuses the message; a
/// flip in a chunk it reads past (transit and signatures, which it does not open) changes
/// nothing it shows.
#[test]
fn the_unverified_open_shows_what_the_verified_one_does_and_nothing_tampered() {
    let p = default_provider();
    let (w, msg, _) = setup();
    let direct = verify_ok(&w, open_as_recipient(p, &msg, &w.recip.enc));
    let keys = recipient_chunk_keys(p, &msg, &w.recip.enc).unwrap();
    let (view, kind) = open_as_recipient_with_keys_unverified(p, &msg, &keys).unwrap();
    assert_eq!(&view, direct.view());
    assert_eq!(kind, direct.kind());
    for c in inspect(p, &msg, None).chunks {
        let mut bad = msg.clone();
        let last = usize::try_from(c.offset + c.size).unwrap() - 1;
        bad[last] ^= 1;
        let r = open_as_recipient_with_keys_unverified(p, &bad, &keys);
        let shown = !matches!(
            c.chunk_type,
            ChunkType::Ephemeral
                | ChunkType::Transit
                | ChunkType::AuthorTreeSig
                | ChunkType::AuthorFullSig
                | ChunkType::OriginSig
        );
        if shown {
            assert!(r.is_err(), "flip in shown chunk {:?} accepted", c.chunk_type);
        } else if let Ok((v, _)) = r {
            assert_eq!(&v, direct.view(), "flip in {:?} changed the view", c.chunk_type);
        }
    }
}
