//! Trustful messages (`spec/envelope.md` §10): whom the author slots are sealed to, which key
//! the origin opens one with, and which key verifies its author signatures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dime_envelope::*;
use dime_testkit::{seeded_rng, vectors_dir};
use serde_json::Value;

fn trustful_vector() -> Vec<u8> {
    let path = vectors_dir().join("envelope").join("trustful.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(v["kind"], "trustful");
    assert_eq!(v["author_signing_key"], "origin");
    hex::decode(v["message_hex"].as_str().unwrap()).unwrap()
}

#[test]
fn trustful_vector_author_slots_open_with_the_users_key_only() {
    // §10: the author slots are sealed to the author role's key of the addressing, the user's
    // own in trustful.json (`actors.author`); the server's key does not open them.
    let p = dime_core::crypto::default_provider();
    let w = world(p);
    let msg = trustful_vector();
    let a = open_as_author(p, &msg, &w.author.enc).unwrap();
    assert_eq!(a.kind(), MessageKind::Trustful);
    // The author signatures verify under the origin's signing key, never the author's.
    let origin_sign = &w.origin.keys.signing;
    assert!(matches!(
        open_as_author(p, &msg, &w.author.enc).unwrap().verify(
            p,
            &w.author.keys.signing,
            Some(origin_sign)
        ),
        Err(OpenError::Unauthentic)
    ));
    assert!(a.verify(p, origin_sign, Some(origin_sign)).is_ok());
    assert!(matches!(open_as_author(p, &msg, &w.origin.enc), Err(OpenError::Unauthentic)));
    // §10: the origin opens it with its own X25519 key (its origin slots), as any message,
    // and verifies the author signatures with its own signing key.
    let o = open_as_origin(p, &msg[..], &w.origin.enc).unwrap();
    assert_eq!(o.kind(), MessageKind::Trustful);
    assert!(o.verify(p, origin_sign).is_ok());
    assert!(matches!(open_as_origin(p, &msg[..], &w.author.enc), Err(OpenError::Unauthentic)));
}

#[test]
fn a_server_without_the_senders_key_seals_the_author_slots_to_its_own() {
    // §10: for a sender without a dime key (a bounce, an SMTP sender), the author slots are
    // sealed to the server's own key: the server then opens the message both as origin and
    // as author with its one X25519 key; the origin opening needs no author slot.
    let p = dime_core::crypto::default_provider();
    let w = world(p);
    let mut addressing = w.addressing.clone();
    addressing.author_keys = w.origin.keys;
    let m = sample_message(10);
    let msg = seal_message_origin_signed(
        p,
        &mut seeded_rng(31),
        &addressing,
        Signer::TrustfulServer(&w.origin.sign),
        &w.origin.sign,
        SIGNED_AT,
        &m,
    )
    .unwrap();
    let origin_sign = &w.origin.keys.signing;
    let o = open_as_origin(p, &msg[..], &w.origin.enc).unwrap();
    assert!(o.verify(p, origin_sign).is_ok());
    let a = open_as_author(p, &msg, &w.origin.enc).unwrap();
    assert_eq!(a.verify(p, origin_sign, Some(origin_sign)).unwrap().message, m);
    assert!(matches!(open_as_author(p, &msg, &w.author.enc), Err(OpenError::Unauthentic)));
    let r = open_as_recipient(p, &msg, &w.recip.enc).unwrap();
    assert_eq!(r.kind(), MessageKind::Trustful);
    assert!(r.verify(p, origin_sign, Some(origin_sign)).is_ok());
}
