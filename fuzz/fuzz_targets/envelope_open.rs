//! Fuzzes opening and verifying as every actor with the insecure provider (its tags and
//! signatures are transparent, so the fuzzer reaches the code behind them). Seed it with
//! messages sealed under the same provider and keys (author 1, origin 2, destination 3,
//! recipient 4: the insecure X25519 public key is the secret; Ed25519 seeds n + 100).
//!
//! Properties: no input panics; when recipient and destination both accept a message, they
//! agree on the recipient and the origin domain (a message cannot open differently for two
//! readers); when recipient and origin both accept, they agree on author and destination.
#![no_main]

use dime_core::crypto::{Ed25519Seed, X25519Secret};
use dime_core::Domain;
use dime_envelope::{ActorSecret, open_as_destination, open_as_origin, open_as_recipient};
use dime_testkit::insecure_provider;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = insecure_provider();
    let enc = |n: u8| ActorSecret::new(p, X25519Secret::from_bytes([n; 32]));
    let sig = |n: u8| p.signature.public_key(&Ed25519Seed::from_bytes([n + 100; 32]));
    let destination = Domain::parse("example.org").expect("constant domain");

    let r = open_as_recipient(p, data, &enc(4))
        .and_then(|u| u.verify(p, &sig(1), Some(&sig(2))))
        .ok();
    let o = open_as_origin(p, data, &enc(2)).and_then(|u| u.verify(p, &sig(1))).ok();
    let d = open_as_destination(p, data, &enc(3))
        .and_then(|u| u.verify(p, &sig(2), &destination))
        .ok();
    if let (Some(r), Some(d)) = (&r, &d) {
        assert_eq!(r.recipient, d.recipient);
        assert_eq!(r.origin, d.origin);
        assert_eq!(r.destination, destination);
    }
    if let (Some(r), Some(o)) = (&r, &o) {
        assert_eq!(r.author, o.author);
        assert_eq!(r.destination, o.destination);
    }
});
