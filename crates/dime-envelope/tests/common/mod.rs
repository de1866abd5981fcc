//! Shared fixtures: four actors with fixed keys, a sample message, the full author -> origin
//! flow.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use dime_core::crypto::{CryptoProvider, Ed25519Seed, X25519Secret};
use dime_core::{CryptoRngCore, Domain, Mailbox};
use dime_envelope::*;

/// When the tests' origin signs (`spec/envelope.md` §7.3): 2028-01-15.
pub const SIGNED_AT: u64 = 1_831_593_600;

pub struct Actor {
    pub enc: ActorSecret,
    pub sign: Ed25519Seed,
    pub keys: ActorKeys,
}

pub fn actor(p: &CryptoProvider, n: u8) -> Actor {
    let enc = ActorSecret::new(p, X25519Secret::from_bytes([n; 32]));
    let sign = Ed25519Seed::from_bytes([n.wrapping_add(100); 32]);
    let keys = ActorKeys { encryption: *enc.public(), signing: p.signature.public_key(&sign) };
    Actor { enc, sign, keys }
}

pub struct World {
    pub author: Actor,
    pub origin: Actor,
    pub dest: Actor,
    pub recip: Actor,
    pub addressing: Addressing,
}

pub fn world(p: &CryptoProvider) -> World {
    let (author, origin, dest, recip) = (actor(p, 1), actor(p, 2), actor(p, 3), actor(p, 4));
    let addressing = Addressing {
        author: Mailbox::parse("alice@example.com").unwrap(),
        author_keys: author.keys,
        origin: Domain::parse("example.com").unwrap(),
        origin_keys: origin.keys,
        destination: Domain::parse("example.org").unwrap(),
        destination_keys: dest.keys,
        recipient: Mailbox::parse("bob@example.org").unwrap(),
        recipient_keys: recip.keys,
    };
    World { author, origin, dest, recip, addressing }
}

pub fn sample_message(attachment_len: usize) -> Message {
    Message {
        common_headers: Headers::from_pairs([
            ("From", "Alice <alice@example.com>"),
            ("To", "Bob <bob@example.org>"),
            ("Subject", "canary-subject-7f3a"),
            ("Date", "Sat, 01 Jan 2028 00:00:00 +0000"),
        ])
        .unwrap(),
        other_headers: Headers::from_pairs([("X-Mailer", "dime test")]).unwrap(),
        parts: vec![
            Part {
                kind: PartKind::Display,
                info: PartInfo {
                    content_type: "text/plain; charset=utf-8".into(),
                    filename: String::new(),
                },
                data: b"Hello Bob, canary-body-91c2.".to_vec(),
            },
            Part {
                kind: PartKind::Attachment,
                info: PartInfo {
                    content_type: "application/octet-stream".into(),
                    filename: "a.bin".into(),
                },
                data: (0..attachment_len).map(|i| (i * 7 % 251) as u8).collect(),
            },
        ],
    }
}

/// Seals as the author, then adds the origin's signature: what the destination receives.
pub fn delivered(
    p: &CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    w: &World,
    m: &Message,
) -> Vec<u8> {
    let mut sealed =
        seal_message(p, rng, &w.addressing, Signer::Author(&w.author.sign), m).unwrap();
    let v = open_as_origin(p, &sealed[..], &w.origin.enc)
        .unwrap()
        .verify(p, &w.author.keys.signing)
        .unwrap();
    let chunk =
        v.origin_signature_chunk(p, rng, &w.origin.sign, &w.addressing.origin, SIGNED_AT).unwrap();
    sealed.extend_from_slice(&chunk);
    sealed
}

/// Opens and verifies as every actor; Ok(()) only if all four accept.
pub fn all_accept(p: &CryptoProvider, w: &World, msg: &[u8]) -> [bool; 4] {
    let a = open_as_author(p, msg, &w.author.enc)
        .and_then(|u| u.verify(p, &w.author.keys.signing, Some(&w.origin.keys.signing)))
        .is_ok();
    let o = open_as_origin(p, msg, &w.origin.enc)
        .and_then(|u| u.verify(p, &w.author.keys.signing))
        .is_ok();
    let d = open_as_destination(p, msg, &w.dest.enc)
        .and_then(|u| u.verify(p, &w.origin.keys.signing, &w.addressing.destination))
        .is_ok();
    let r = open_as_recipient(p, msg, &w.recip.enc)
        .and_then(|u| u.verify(p, &w.author.keys.signing, Some(&w.origin.keys.signing)))
        .is_ok();
    [a, o, d, r]
}
