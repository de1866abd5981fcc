//! Properties: open(seal(m)) == m for every actor's view, each actor opens exactly its chunks,
//! and no input makes a decoder panic (house-style.md "Tests").
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dime_core::crypto::{CryptoProvider, default_provider};
use dime_envelope::*;
use dime_testkit::{insecure_provider, seeded_rng};
use proptest::prelude::*;

fn headers() -> impl Strategy<Value = Headers> {
    // Any field §8.3 allows: no Bcc or Resent-Bcc name, no control character but HTAB.
    let name = "[A-Za-z][A-Za-z0-9-]{0,20}".prop_filter("no Bcc field (§8.3)", |n: &String| {
        !n.eq_ignore_ascii_case("bcc") && !n.eq_ignore_ascii_case("resent-bcc")
    });
    prop::collection::vec((name, "[^\u{0}-\u{8}\u{a}-\u{1f}\u{7f}-\u{9f}]{0,40}"), 0..6).prop_map(
        |pairs| Headers::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap(),
    )
}

fn part(kind: PartKind) -> impl Strategy<Value = Part> {
    (
        "[a-z]{1,10}/[a-z0-9.+-]{1,20}",
        "[^\u{0}-\u{1f}\u{7f}-\u{9f}]{0,30}",
        prop_oneof![
            4 => prop::collection::vec(any::<u8>(), 0..3000),
            1 => prop::collection::vec(any::<u8>(), 65_500..66_000),
        ],
    )
        .prop_map(move |(content_type, filename, data)| Part {
            kind,
            info: PartInfo { content_type, filename },
            data,
        })
}

fn message() -> impl Strategy<Value = Message> {
    (
        headers(),
        headers(),
        prop::collection::vec(part(PartKind::Display), 0..3),
        prop::collection::vec(part(PartKind::Attachment), 0..3),
    )
        .prop_map(|(common_headers, other_headers, mut parts, atts)| {
            parts.extend(atts);
            Message { common_headers, other_headers, parts }
        })
}

fn check_round_trip(p: &CryptoProvider, m: &Message, seed: u64, trustful: bool) {
    let w = world(p);
    let signer = if trustful {
        Signer::TrustfulServer(&w.origin.sign)
    } else {
        Signer::Author(&w.author.sign)
    };
    let author_key = if trustful { w.origin.keys.signing } else { w.author.keys.signing };
    let mut rng = seeded_rng(seed);
    let mut msg = seal_message(p, &mut rng, &w.addressing, signer, m).unwrap();
    let o = open_as_origin(p, &msg[..], &w.origin.enc).unwrap().verify(p, &author_key).unwrap();
    assert_eq!(o.author, w.addressing.author);
    assert_eq!(o.destination, w.addressing.destination);
    msg.extend(
        o.origin_signature_chunk(p, &mut rng, &w.origin.sign, &w.addressing.origin, SIGNED_AT)
            .unwrap(),
    );

    for (secret, role) in
        [(&w.recip.enc, ReaderRole::Recipient), (&w.author.enc, ReaderRole::Author)]
    {
        let u = match role {
            ReaderRole::Recipient => open_as_recipient(p, &msg, secret),
            ReaderRole::Author => open_as_author(p, &msg, secret),
        };
        let v = u.unwrap().verify(p, &author_key, Some(&w.origin.keys.signing)).unwrap();
        assert_eq!(&v.message, m);
        assert_eq!(v.author, w.addressing.author);
        assert_eq!(v.recipient, w.addressing.recipient);
        assert_eq!(v.kind() == MessageKind::Trustful, trustful);
    }
    let d = open_as_destination(p, &msg[..], &w.dest.enc)
        .unwrap()
        .verify(p, &w.origin.keys.signing, &w.addressing.destination)
        .unwrap();
    assert_eq!(d.recipient, w.addressing.recipient);
    assert_eq!(d.origin, w.addressing.origin);

    for (secret, role) in [
        (&w.author.enc, Role::Author),
        (&w.origin.enc, Role::Origin),
        (&w.dest.enc, Role::Destination),
        (&w.recip.enc, Role::Recipient),
    ] {
        let ins = inspect(p, &msg, Some(secret));
        assert_eq!(ins.error, None);
        assert_eq!(ins.chunks.len(), 9 + m.parts.len());
        for c in &ins.chunks {
            let may = c.chunk_type.slot_roles().contains(&role);
            let opened = c.opened_as.is_some();
            let expect = may || c.chunk_type == ChunkType::OriginSig;
            assert_eq!(opened, expect, "{role:?} {:?}", c.chunk_type);
            if let Some(size) = c.padded_size.filter(|_| c.chunk_type.is_padded()) {
                assert_eq!(size, padded_len(size), "padded size is a bucket");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn round_trip_with_real_crypto(m in message(), seed in any::<u64>(), trustful in any::<bool>()) {
        check_round_trip(default_provider(), &m, seed, trustful);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip_with_insecure_provider(m in message(), seed in any::<u64>(), trustful in any::<bool>()) {
        check_round_trip(insecure_provider(), &m, seed, trustful);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let p = insecure_provider();
        let w = world(p);
        let mut input = b"DIMEMSG\x02\x01\x00".to_vec();
        input.extend_from_slice(&bytes);
        for b in [&bytes[..], &input[..]] {
            let _ = inspect(p, b, Some(&w.recip.enc));
            let _ = open_as_recipient(p, b, &w.recip.enc);
            let _ = open_as_origin(p, b, &w.origin.enc);
            let _ = open_as_destination(p, b, &w.dest.enc);
        }
    }

    #[test]
    fn mutated_messages_never_panic_and_never_verify(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let p = insecure_provider();
        let w = world(p);
        let msg = delivered(p, &mut seeded_rng(50), &w, &sample_message(100));
        let mut bad = msg.clone();
        for (i, b) in &edits {
            let i = i.index(bad.len());
            bad[i] = *b;
        }
        if bad != msg {
            prop_assert_eq!(all_accept(p, &w, &bad), [false; 4]);
        }
        let c = cut.index(msg.len());
        let _ = inspect(p, &bad[..c], Some(&w.recip.enc));
        prop_assert_eq!(&all_accept(p, &w, &bad[..c])[2..], &[false, false][..]);
    }
}
