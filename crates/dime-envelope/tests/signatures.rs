//! What a verified open says of the signatures (`spec/envelope.md` §7.4): which are present
//! and which this reader verified, for every actor; and a reader of delivered mail
//! (`verify_delivered`) refuses a message whose origin signature chunk was removed, which a
//! plain `verify` without an origin key still accepts (issue 19 item 7).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{delivered, sample_message, world};
use dime_core::crypto::default_provider;
use dime_envelope::{
    OpenError, SignatureState as S, Signatures, inspect, open_as_destination, open_as_origin,
    open_as_recipient,
};

fn sigs(author_tree: S, author_full: S, origin: S) -> Signatures {
    Signatures { author_tree, author_full, origin }
}

#[test]
fn each_reader_reports_which_signatures_are_present_and_verified() {
    let p = default_provider();
    let w = world(p);
    let mut rng = dime_testkit::seeded_rng(1);
    let msg = delivered(p, &mut rng, &w, &sample_message(10));
    let (a, o) = (&w.author.keys.signing, &w.origin.keys.signing);

    let u = open_as_recipient(p, &msg, &w.recip.enc).unwrap();
    assert_eq!(u.signatures(), sigs(S::Present, S::Present, S::Present), "nothing checked yet");
    let v = u.verify_delivered(p, a, o).unwrap();
    assert_eq!(v.signatures(), sigs(S::Verified, S::Verified, S::Verified));
    // The origin checks the author's, not its own; the destination only the origin's.
    let v = open_as_origin(p, &msg[..], &w.origin.enc).unwrap().verify(p, a).unwrap();
    assert_eq!(v.signatures(), sigs(S::Verified, S::Verified, S::Present));
    let v = open_as_destination(p, &msg[..], &w.dest.enc)
        .unwrap()
        .verify(p, o, &w.addressing.destination)
        .unwrap();
    assert_eq!(v.signatures(), sigs(S::Present, S::Present, S::Verified));
    assert_eq!(
        [S::Verified, S::Present, S::Absent].map(S::as_str),
        ["verified", "present", "absent"]
    );
}

#[test]
fn a_stripped_origin_signature_is_reported_and_refused_for_delivered_mail() {
    let p = default_provider();
    let w = world(p);
    let mut rng = dime_testkit::seeded_rng(2);
    let msg = delivered(p, &mut rng, &w, &sample_message(10));
    // Whoever holds the message cuts its last chunk, the origin signature.
    let last = inspect(p, &msg, None).chunks.last().unwrap().offset;
    let stripped = &msg[..usize::try_from(last).unwrap()];
    let (a, o) = (&w.author.keys.signing, &w.origin.keys.signing);

    // Without an origin key, a plain verify accepts it, and now says the signature is absent.
    let v = open_as_recipient(p, stripped, &w.recip.enc).unwrap().verify(p, a, None).unwrap();
    assert_eq!(v.signatures(), sigs(S::Verified, S::Verified, S::Absent));
    // A reader of delivered mail requires it.
    let e = open_as_recipient(p, stripped, &w.recip.enc).unwrap().verify_delivered(p, a, o);
    assert!(matches!(e, Err(OpenError::OriginSignature)), "{e:?}");
    // The destination never accepted it either.
    let e = open_as_destination(p, stripped, &w.dest.enc).unwrap().verify(
        p,
        o,
        &w.addressing.destination,
    );
    assert!(matches!(e, Err(OpenError::OriginSignature)), "{e:?}");
}
