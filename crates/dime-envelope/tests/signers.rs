//! Which keys sign (`spec/envelope.md` §7.6): the origin's POK or a secondary organisational
//! key with the messages permission; the author's current key or an earlier one of an unbroken
//! chain of custody; at most `MAX_SIGNER_KEYS` keys tried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dime_core::Mailbox;
use dime_core::crypto::{CryptoProvider, Ed25519PublicKey, Ed25519Seed, default_provider};
use dime_envelope::*;
use dime_signet::{
    OrgKeys, OrgSigner, Profile, Signet, SokPermissions, UserKeys, create_org_signet,
    create_rotation_ssr, create_ssr, sign_user_signet,
};
use dime_testkit::seeded_rng;

/// An org signet of example.com with two SOKs: index 0 may sign user signets only, index 1
/// may sign messages.
fn org_with_soks(p: &CryptoProvider) -> (OrgKeys, Signet) {
    let mut rng = seeded_rng(71);
    let mut org = OrgKeys::generate(&mut rng);
    assert_eq!(org.add_sok(&mut rng, SokPermissions::SIGNET), 0);
    assert_eq!(org.add_sok(&mut rng, SokPermissions::MESSAGE), 1);
    let signet =
        create_org_signet(p, &org, &"example.com".parse().unwrap(), &Profile::new()).unwrap();
    (org, signet)
}

fn origin_signed_by(p: &CryptoProvider, w: &World, seed: &Ed25519Seed) -> Vec<u8> {
    seal_message_origin_signed(
        p,
        &mut seeded_rng(72),
        &w.addressing,
        Signer::Author(&w.author.sign),
        seed,
        SIGNED_AT,
        &sample_message(10),
    )
    .unwrap()
}

/// The destination's and the recipient's verdicts with `origin_keys` as the origin's set.
fn verdicts(
    p: &CryptoProvider,
    w: &World,
    msg: &[u8],
    origin_keys: &[Ed25519PublicKey],
) -> [bool; 2] {
    let d = open_as_destination(p, msg, &w.dest.enc)
        .unwrap()
        .verify(p, &origin_keys, &w.addressing.destination)
        .is_ok();
    let r = open_as_recipient(p, msg, &w.recip.enc)
        .unwrap()
        .verify_delivered(p, &w.author.keys.signing, &origin_keys)
        .is_ok();
    [d, r]
}

#[test]
fn an_origin_signature_by_a_secondary_key_with_the_messages_permission_verifies() {
    let p = default_provider();
    let w = world(p);
    let (org, signet) = org_with_soks(p);
    let keys = origin_signing_keys(&signet).unwrap();
    // The POK, then only the SOK that may sign messages.
    assert_eq!(keys, vec![org.pok(p), p.signature.public_key(&org.soks()[1].seed)]);

    let by_message_sok = origin_signed_by(p, &w, &org.soks()[1].seed);
    assert_eq!(verdicts(p, &w, &by_message_sok, &keys), [true, true]);
    // The POK alone does not verify what the SOK signed: the set is what makes it verify.
    assert_eq!(verdicts(p, &w, &by_message_sok, &[org.pok(p)]), [false, false]);

    let by_pok = origin_signed_by(p, &w, org.pok_seed());
    assert_eq!(verdicts(p, &w, &by_pok, &keys), [true, true]);

    // A SOK that may sign user signets only is not in the set: what it signs is refused.
    let by_signet_sok = origin_signed_by(p, &w, &org.soks()[0].seed);
    assert_eq!(verdicts(p, &w, &by_signet_sok, &keys), [false, false]);
    assert!(matches!(
        open_as_destination(p, &by_signet_sok[..], &w.dest.enc).unwrap().verify(
            p,
            &keys,
            &w.addressing.destination
        ),
        Err(OpenError::Unauthentic)
    ));
}

#[test]
fn a_trustful_message_signed_by_a_secondary_key_verifies_with_the_origins_set() {
    // §10: a trustful message's author signatures are the origin's, from the same set.
    let p = default_provider();
    let w = world(p);
    let (org, signet) = org_with_soks(p);
    let keys = origin_signing_keys(&signet).unwrap();
    let sok = &org.soks()[1].seed;
    let msg = seal_message_origin_signed(
        p,
        &mut seeded_rng(73),
        &w.addressing,
        Signer::TrustfulServer(sok),
        sok,
        SIGNED_AT,
        &sample_message(10),
    )
    .unwrap();
    let r = open_as_recipient(p, &msg, &w.recip.enc).unwrap();
    assert_eq!(r.kind(), MessageKind::Trustful);
    assert!(r.verify_delivered(p, &keys, &keys).is_ok());
    let o = open_as_origin(p, &msg[..], &w.origin.enc).unwrap();
    assert!(o.verify(p, &keys).is_ok());
    let o = open_as_origin(p, &msg[..], &w.origin.enc).unwrap();
    assert!(matches!(o.verify(p, &org.pok(p)), Err(OpenError::Unauthentic)));
}

#[test]
fn no_more_than_max_signer_keys_are_tried() {
    let p = default_provider();
    let w = world(p);
    let msg = delivered(p, &mut seeded_rng(74), &w, &sample_message(10));
    let others: Vec<Ed25519PublicKey> = (0..MAX_SIGNER_KEYS as u8)
        .map(|i| p.signature.public_key(&Ed25519Seed::from_bytes([200 + i; 32])))
        .collect();
    // The right key in the last place that is tried, then one place later.
    let mut within = others[..MAX_SIGNER_KEYS - 1].to_vec();
    within.push(w.origin.keys.signing);
    assert_eq!(verdicts(p, &w, &msg, &within), [true, true]);
    let mut beyond = others.clone();
    beyond.push(w.origin.keys.signing);
    assert_eq!(verdicts(p, &w, &msg, &beyond), [false, false]);
    // The origin's set never grows past the limit, however many SOKs may sign messages.
    let mut rng = seeded_rng(75);
    let mut org = OrgKeys::generate(&mut rng);
    for _ in 0..MAX_SIGNER_KEYS + 3 {
        org.add_sok(&mut rng, SokPermissions::MESSAGE | SokPermissions::SIGNET);
    }
    let signet =
        create_org_signet(p, &org, &"example.com".parse().unwrap(), &Profile::new()).unwrap();
    let keys = origin_signing_keys(&signet).unwrap();
    assert_eq!(keys.len(), MAX_SIGNER_KEYS);
    assert_eq!(keys[0], org.pok(p));
    assert_eq!(
        keys[MAX_SIGNER_KEYS - 1],
        p.signature.public_key(&org.soks()[MAX_SIGNER_KEYS - 2].seed)
    );
}

/// A user signet of alice@example.com for `keys`, its SSR carrying a custody signature by
/// `previous` when given.
fn user_signet(
    p: &CryptoProvider,
    org: &OrgKeys,
    keys: &UserKeys,
    previous: Option<&UserKeys>,
) -> Signet {
    let ssr = match previous {
        Some(prev) => create_rotation_ssr(p, keys, prev).unwrap(),
        None => create_ssr(p, keys).unwrap(),
    };
    let mailbox: Mailbox = "alice@example.com".parse().unwrap();
    sign_user_signet(p, org, OrgSigner::Pok, &ssr, &mailbox, &Profile::new()).unwrap()
}

/// A message from alice signed with `keys`' signing key, origin-signed.
fn authored_by(p: &CryptoProvider, w: &World, keys: &UserKeys) -> Vec<u8> {
    seal_message_origin_signed(
        p,
        &mut seeded_rng(76),
        &w.addressing,
        Signer::Author(keys.signing_seed()),
        &w.origin.sign,
        SIGNED_AT,
        &sample_message(10),
    )
    .unwrap()
}

fn reads(p: &CryptoProvider, w: &World, msg: &[u8], author_keys: &[Ed25519PublicKey]) -> bool {
    open_as_recipient(p, msg, &w.recip.enc)
        .unwrap()
        .verify_delivered(p, &author_keys, &w.origin.keys.signing)
        .is_ok()
}

#[test]
fn mail_signed_by_a_rotated_out_key_verifies_while_the_chain_of_custody_holds() {
    let p = default_provider();
    let w = world(p);
    let mut rng = seeded_rng(77);
    let org = OrgKeys::generate(&mut rng);
    let k: Vec<UserKeys> = (0..4).map(|_| UserKeys::generate(&mut rng)).collect();
    // Three generations, each rotation signed by the previous key (spec/signet.md §5.4).
    let s0 = user_signet(p, &org, &k[0], None);
    let s1 = user_signet(p, &org, &k[1], Some(&k[0]));
    let s2 = user_signet(p, &org, &k[2], Some(&k[1]));
    let chain = [s0.clone(), s1.clone(), s2.clone()];
    let keys = author_signing_keys(p, &chain).unwrap();
    assert_eq!(keys, vec![k[2].signing_key(p), k[1].signing_key(p), k[0].signing_key(p)]);
    let m: Vec<Vec<u8>> = k.iter().map(|keys| authored_by(p, &w, keys)).collect();
    // Every generation's mail verifies with the whole chain, and says under which key (a
    // reader records which signet that was) ...
    for (i, msg) in m[..3].iter().enumerate() {
        assert!(reads(p, &w, msg, &keys));
        let v = open_as_recipient(p, msg, &w.recip.enc)
            .unwrap()
            .verify_delivered(p, &keys, &w.origin.keys.signing)
            .unwrap();
        assert_eq!(v.author_key(), Some(&k[i].signing_key(p)), "generation {i}");
        assert_eq!(v.origin_key(), Some(&w.origin.keys.signing));
    }
    // ... and only the current key's mail with the current signet alone.
    let current = author_signing_keys(p, std::slice::from_ref(&s2)).unwrap();
    assert_eq!(current, vec![k[2].signing_key(p)]);
    assert!(reads(p, &w, &m[2], &current));
    assert!(!reads(p, &w, &m[0], &current));
    assert!(!reads(p, &w, &m[1], &current));

    // A break: the organisation re-issues alice's keys without the old key's consent (no
    // custody signature). Mail signed before the break no longer verifies; after it, it does.
    let reset = user_signet(p, &org, &k[3], None);
    let broken = author_signing_keys(p, &[s0.clone(), s1.clone(), s2.clone(), reset]).unwrap();
    assert_eq!(broken, vec![k[3].signing_key(p)]);
    for msg in &m[..3] {
        assert!(!reads(p, &w, msg, &broken));
    }
    assert!(reads(p, &w, &m[3], &broken));

    // A custody signature by a key that is not the previous one is a break too.
    let forged = user_signet(p, &org, &k[3], Some(&k[0]));
    let keys = author_signing_keys(p, &[s0, s1, s2, forged]).unwrap();
    assert_eq!(keys, vec![k[3].signing_key(p)]);
    assert!(!reads(p, &w, &m[2], &keys));
    assert!(author_signing_keys(p, &[]).unwrap().is_empty());
}
