//! Seal and open as every actor (`spec/envelope.md` §6, §7, §9, §10).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dime_core::Domain;
use dime_core::crypto::{Ed25519PublicKey, default_provider};
use dime_envelope::*;
use dime_testkit::seeded_rng;

#[test]
fn every_actor_opens_and_verifies_its_view() {
    let p = default_provider();
    let w = world(p);
    let m = sample_message(200_000);
    let msg = delivered(p, &mut seeded_rng(1), &w, &m);

    let r = open_as_recipient(p, &msg, &w.recip.enc).unwrap();
    assert_eq!(r.claimed_author().to_string(), "alice@example.com");
    let r = r.verify(p, &w.author.keys.signing, Some(&w.origin.keys.signing)).unwrap();
    assert_eq!(r.kind(), MessageKind::Authored);
    assert_eq!(r.message, m);
    assert_eq!(r.recipient.to_string(), "bob@example.org");
    assert_eq!(r.destination.as_str(), "example.org");
    assert_eq!(r.origin.as_str(), "example.com");
    assert!(r.origin_signed);

    let a = open_as_author(p, &msg, &w.author.enc).unwrap();
    let a = a.verify(p, &w.author.keys.signing, Some(&w.origin.keys.signing)).unwrap();
    assert_eq!(a.view(), r.view());

    let o = open_as_origin(p, &msg[..], &w.origin.enc).unwrap();
    assert!(o.origin_signed());
    let o = o.verify(p, &w.author.keys.signing).unwrap();
    assert_eq!(o.author.to_string(), "alice@example.com");
    assert_eq!(o.destination.as_str(), "example.org");

    let d = open_as_destination(p, &msg[..], &w.dest.enc).unwrap();
    assert_eq!(d.claimed_origin().as_str(), "example.com");
    let d = d.verify(p, &w.origin.keys.signing, &w.addressing.destination).unwrap();
    assert_eq!(d.recipient.to_string(), "bob@example.org");
}

#[test]
fn each_actor_opens_exactly_the_chunks_of_the_matrix() {
    // spec/envelope.md §6
    let p = default_provider();
    let w = world(p);
    let msg = delivered(p, &mut seeded_rng(2), &w, &sample_message(100));
    for (who, secret) in [
        (Role::Author, &w.author.enc),
        (Role::Origin, &w.origin.enc),
        (Role::Destination, &w.dest.enc),
        (Role::Recipient, &w.recip.enc),
    ] {
        let ins = inspect(p, &msg, Some(secret));
        assert_eq!(ins.error, None);
        assert_eq!(ins.key_roles, vec![who]);
        for c in &ins.chunks {
            let expected = if c.chunk_type == ChunkType::Ephemeral {
                None
            } else if c.chunk_type == ChunkType::OriginSig {
                Some(Role::Transit)
            } else if c.chunk_type.slot_roles().contains(&who) {
                Some(who)
            } else {
                None
            };
            assert_eq!(c.opened_as, expected, "{who:?} on {:?}", c.chunk_type);
        }
    }
    // A stranger opens nothing.
    let stranger = actor(p, 9);
    let ins = inspect(p, &msg, Some(&stranger.enc));
    assert!(ins.key_roles.is_empty());
    assert!(ins.chunks.iter().all(|c| c.opened_as.is_none()));
    assert!(matches!(open_as_recipient(p, &msg, &stranger.enc), Err(OpenError::Unauthentic)));
}

#[test]
fn origin_cannot_reach_recipient_chunks_with_its_slots() {
    let p = default_provider();
    let w = world(p);
    let msg = delivered(p, &mut seeded_rng(3), &w, &sample_message(10));
    // The origin's key used as if it were the recipient's fails at the first recipient slot.
    assert!(matches!(open_as_recipient(p, &msg, &w.origin.enc), Err(OpenError::Unauthentic)));
    assert!(matches!(open_as_recipient(p, &msg, &w.dest.enc), Err(OpenError::Unauthentic)));
    assert!(matches!(open_as_destination(p, &msg[..], &w.origin.enc), Err(OpenError::Unauthentic)));
}

#[test]
fn authors_sent_copy_has_no_origin_signature() {
    let p = default_provider();
    let w = world(p);
    let m = sample_message(10);
    let sealed =
        seal_message(p, &mut seeded_rng(4), &w.addressing, Signer::Author(&w.author.sign), &m)
            .unwrap();
    let a = open_as_author(p, &sealed, &w.author.enc).unwrap();
    assert!(!a.origin_signed());
    let v = a.verify(p, &w.author.keys.signing, None).unwrap();
    assert_eq!(v.message, m);
    // Asking for an origin signature that is not there fails.
    let a = open_as_author(p, &sealed, &w.author.enc).unwrap();
    assert!(matches!(
        a.verify(p, &w.author.keys.signing, Some(&w.origin.keys.signing)),
        Err(OpenError::OriginSignature)
    ));
    // The destination refuses a message without the origin's signature.
    let d = open_as_destination(p, &sealed[..], &w.dest.enc).unwrap();
    assert!(matches!(
        d.verify(p, &w.origin.keys.signing, &w.addressing.destination),
        Err(OpenError::OriginSignature)
    ));
}

#[test]
fn origin_signs_only_once() {
    let p = default_provider();
    let w = world(p);
    let msg = delivered(p, &mut seeded_rng(5), &w, &sample_message(10));
    let o = open_as_origin(p, &msg[..], &w.origin.enc)
        .unwrap()
        .verify(p, &w.author.keys.signing)
        .unwrap();
    assert!(matches!(
        o.origin_signature_chunk(
            p,
            &mut seeded_rng(6),
            &w.origin.sign,
            &w.addressing.origin,
            SIGNED_AT
        ),
        Err(OpenError::AlreadyOriginSigned)
    ));
}

#[test]
fn wrong_signer_keys_are_refused() {
    let p = default_provider();
    let w = world(p);
    let msg = delivered(p, &mut seeded_rng(7), &w, &sample_message(10));
    let r = open_as_recipient(p, &msg, &w.recip.enc).unwrap();
    assert!(matches!(
        r.verify(p, &w.recip.keys.signing, Some(&w.origin.keys.signing)),
        Err(OpenError::Unauthentic)
    ));
    let r = open_as_recipient(p, &msg, &w.recip.enc).unwrap();
    assert!(matches!(
        r.verify(p, &w.author.keys.signing, Some(&w.author.keys.signing)),
        Err(OpenError::Unauthentic)
    ));
    let o = open_as_origin(p, &msg[..], &w.origin.enc).unwrap();
    assert!(matches!(o.verify(p, &w.origin.keys.signing), Err(OpenError::Unauthentic)));
}

#[test]
fn replay_to_another_destination_domain_fails() {
    // spec/envelope.md §9: the destination domain is in every signed input.
    let p = default_provider();
    let w = world(p);
    let msg = delivered(p, &mut seeded_rng(8), &w, &sample_message(10));
    // A server that hosts another domain under the same key still refuses it.
    let other = Domain::parse("other.example").unwrap();
    let d = open_as_destination(p, &msg[..], &w.dest.enc).unwrap();
    assert!(matches!(d.verify(p, &w.origin.keys.signing, &other), Err(OpenError::Unauthentic)));
    // A rogue origin that re-signs for another domain cannot change the author's binding:
    // the recipient checks the author signature over the destination of the origin chunk,
    // and the origin signature over the same domain.
    let d = open_as_destination(p, &msg[..], &w.dest.enc).unwrap();
    assert!(d.verify(p, &w.origin.keys.signing, &w.addressing.destination).is_ok());
}

#[test]
fn an_origin_sealing_for_its_user_signs_at_once_with_the_same_bytes_as_after_opening() {
    // spec/envelope.md §7.3: sealing with the origin signature appended gives the octets of
    // sealing, opening as the origin and appending its signature chunk (same draws).
    let p = default_provider();
    let w = world(p);
    for m in [sample_message(10), sample_message(200_000), Message::default()] {
        let two_steps = delivered(p, &mut seeded_rng(21), &w, &m);
        let at_once = seal_message_origin_signed(
            p,
            &mut seeded_rng(21),
            &w.addressing,
            Signer::Author(&w.author.sign),
            &w.origin.sign,
            SIGNED_AT,
            &m,
        )
        .unwrap();
        assert_eq!(at_once, two_steps);
        assert_eq!(all_accept(p, &w, &at_once), [true; 4]);
    }
    // Signed with another key than the origin's: the destination and the recipient refuse it.
    let m = sample_message(10);
    let wrong = seal_message_origin_signed(
        p,
        &mut seeded_rng(22),
        &w.addressing,
        Signer::Author(&w.author.sign),
        &w.author.sign,
        SIGNED_AT,
        &m,
    )
    .unwrap();
    assert_eq!(all_accept(p, &w, &wrong), [false, true, false, false]);
    // A trustful message (a legacy sender's), sealed and signed by the origin at once.
    let trustful = seal_message_origin_signed(
        p,
        &mut seeded_rng(23),
        &w.addressing,
        Signer::TrustfulServer(&w.origin.sign),
        &w.origin.sign,
        SIGNED_AT,
        &m,
    )
    .unwrap();
    let r = open_as_recipient(p, &trustful, &w.recip.enc).unwrap();
    let v = r.verify(p, &w.origin.keys.signing, Some(&w.origin.keys.signing)).unwrap();
    assert_eq!((v.kind(), v.origin_signed), (MessageKind::Trustful, true));
    let d = open_as_destination(p, &trustful[..], &w.dest.enc).unwrap();
    assert!(d.verify(p, &w.origin.keys.signing, &w.addressing.destination).is_ok());
}

#[test]
fn trustful_messages_say_so_and_verify_only_under_the_server_key() {
    // spec/envelope.md §10
    let p = default_provider();
    let w = world(p);
    let m = sample_message(10);
    let mut sealed = seal_message(
        p,
        &mut seeded_rng(9),
        &w.addressing,
        Signer::TrustfulServer(&w.origin.sign),
        &m,
    )
    .unwrap();
    let o = open_as_origin(p, &sealed[..], &w.origin.enc).unwrap();
    assert_eq!(o.kind(), MessageKind::Trustful);
    let o = o.verify(p, &w.origin.keys.signing).unwrap();
    sealed.extend(
        o.origin_signature_chunk(
            p,
            &mut seeded_rng(10),
            &w.origin.sign,
            &w.addressing.origin,
            SIGNED_AT,
        )
        .unwrap(),
    );

    let r = open_as_recipient(p, &sealed, &w.recip.enc).unwrap();
    assert_eq!(r.kind(), MessageKind::Trustful);
    assert!(matches!(
        r.verify(p, &w.author.keys.signing, Some(&w.origin.keys.signing)),
        Err(OpenError::Unauthentic)
    ));
    let r = open_as_recipient(p, &sealed, &w.recip.enc).unwrap();
    let v = r.verify(p, &w.origin.keys.signing, Some(&w.origin.keys.signing)).unwrap();
    assert_eq!(v.kind(), MessageKind::Trustful);
    assert_eq!(v.message, m);
    let d = open_as_destination(p, &sealed[..], &w.dest.enc).unwrap();
    assert_eq!(d.kind(), MessageKind::Trustful);

    // Flipping the kind octet (trustful -> authored) is detected by every actor.
    let mut forged = sealed.clone();
    forged[8] = MessageKind::Authored.code();
    assert_eq!(all_accept(p, &w, &forged), [false; 4]);
}

#[test]
fn sealing_to_a_low_order_key_is_refused() {
    let p = default_provider();
    let mut w = world(p);
    w.addressing.destination_keys.encryption = dime_core::crypto::X25519PublicKey([0; 32]);
    let r = seal_message(
        p,
        &mut seeded_rng(11),
        &w.addressing,
        Signer::Author(&w.author.sign),
        &sample_message(1),
    );
    assert!(matches!(r, Err(SealError::BadActorKey(Role::Destination))));
}

#[test]
fn empty_message_round_trips_and_is_padded() {
    let p = default_provider();
    let w = world(p);
    let m = Message::default();
    let msg = delivered(p, &mut seeded_rng(12), &w, &m);
    let v = open_as_recipient(p, &msg, &w.recip.enc)
        .unwrap()
        .verify(p, &w.author.keys.signing, Some(&w.origin.keys.signing))
        .unwrap();
    assert_eq!(v.message, m);
    let ins = inspect(p, &msg, Some(&w.recip.enc));
    for c in ins.chunks.iter().filter(|c| c.chunk_type.is_padded()) {
        assert_eq!(c.padded_size, Some(256), "{:?}", c.chunk_type);
    }
}

#[test]
fn the_message_id_is_the_one_sealed_in_the_header_for_every_reader() {
    // spec/envelope.md §2: the header carries the message id; every role reads the same one.
    let p = default_provider();
    let w = world(p);
    let m = sample_message(10);
    let a = delivered(p, &mut seeded_rng(40), &w, &m);
    let b = delivered(p, &mut seeded_rng(41), &w, &m);
    let id = |msg: &[u8]| inspect(p, msg, None).message_id.unwrap();
    assert_ne!(id(&a), id(&b), "each message its own id");
    for msg in [&a, &b] {
        let u = open_as_recipient(p, msg, &w.recip.enc).unwrap();
        assert_eq!(u.message_id(), &id(msg));
        let v = u.verify(p, &w.author.keys.signing, Some(&w.origin.keys.signing)).unwrap();
        assert_eq!(v.message_id(), &id(msg));
        let d = open_as_destination(p, &msg[..], &w.dest.enc).unwrap();
        assert_eq!(d.message_id(), &id(msg));
    }
}

#[test]
fn light_client_verifies_authorship_without_attachment_bodies() {
    // spec/envelope.md §7.1
    let p = default_provider();
    let w = world(p);
    let m = sample_message(150_000);
    let msg = delivered(p, &mut seeded_rng(13), &w, &m);
    let ins = inspect(p, &msg, None);
    let header = &msg[..42];
    let pieces: Vec<(ChunkType, &[u8])> = ins
        .chunks
        .iter()
        .map(|c| (c.chunk_type, &msg[c.offset as usize..(c.offset + c.size) as usize]))
        .collect();
    let light_by = |omit_as: Option<ChunkType>, tamper: bool, author: &Ed25519PublicKey| {
        let mut owned: Vec<Vec<u8>> = pieces.iter().map(|(_, b)| b.to_vec()).collect();
        if tamper {
            owned[4][60] ^= 1; // common headers
        }
        let chunks: Vec<LightChunk<'_>> = pieces
            .iter()
            .zip(&owned)
            .map(|((t, _), b)| match (t, omit_as) {
                (ChunkType::Attachment, Some(as_type)) => LightChunk::Omitted(as_type),
                _ => LightChunk::Present(b),
            })
            .collect();
        open_light(p, header, &chunks, &w.recip.enc)
            .and_then(|u| u.verify(p, author, Some(&w.origin.keys.signing)))
    };
    let light = |omit_as, tamper| light_by(omit_as, tamper, &w.author.keys.signing);
    let v = light(Some(ChunkType::Attachment), false).unwrap();
    assert_eq!(v.view.message.parts.len(), 1, "only the display part was downloaded");
    assert_eq!(v.view.message.common_headers, m.common_headers);
    let (_, att) = pieces.iter().find(|(t, _)| *t == ChunkType::Attachment).unwrap();
    assert_eq!(v.omitted.len(), 1);
    assert_eq!(v.omitted[0].hash, chunk_hash(p, att));
    // Everything present: the same as a full open.
    let full = light(None, false).unwrap();
    assert_eq!(full.view.message, m);
    assert!(full.omitted.is_empty());
    // A tampered present chunk, or an omitted chunk passed off as another type, fails.
    assert!(matches!(light(Some(ChunkType::Attachment), true), Err(OpenError::Unauthentic)));
    assert!(light(Some(ChunkType::Display), false).is_err());
    // The author tree signature is what a light client's authorship rests on: with any key
    // but the author's it fails, whether chunks were omitted or not, although every tag and
    // the origin signature hold.
    for wrong in [&w.origin.keys.signing, &w.recip.keys.signing, &w.dest.keys.signing] {
        for omit in [Some(ChunkType::Attachment), None] {
            assert!(
                matches!(light_by(omit, false, wrong), Err(OpenError::Unauthentic)),
                "omitted {omit:?}"
            );
        }
    }
    // Only parts may be omitted.
    let chunks: Vec<LightChunk<'_>> = pieces
        .iter()
        .map(|(t, b)| {
            if *t == ChunkType::OtherHeaders {
                LightChunk::Omitted(*t)
            } else {
                LightChunk::Present(b)
            }
        })
        .collect();
    assert!(matches!(open_light(p, header, &chunks, &w.recip.enc), Err(OpenError::Decode(_))));
}

#[test]
fn an_open_refuses_a_slot_of_its_role_that_does_not_open_and_inspect_reports_it() {
    // spec/envelope.md §6 (opening: one behaviour, refuse) and §12 (inspection: report).
    let p = default_provider();
    let w = world(p);
    let msg = delivered(p, &mut seeded_rng(3), &w, &sample_message(100));
    let chunks = inspect(p, &msg, None).chunks;
    for (who, secret) in [
        (Role::Author, &w.author.enc),
        (Role::Origin, &w.origin.enc),
        (Role::Destination, &w.dest.enc),
        (Role::Recipient, &w.recip.enc),
    ] {
        for c in chunks.iter().filter(|c| c.slots.contains(&who)) {
            // Flip an octet of the wrapped chunk key in `who`'s slot (after type, flags,
            // index and slot count; one role octet, then the wrapped key).
            let pos = c.slots.iter().position(|r| *r == who).unwrap();
            let at = c.offset as usize + 5 + pos * 49 + 1 + 7;
            let mut bad = msg.clone();
            bad[at] ^= 0x40;
            let opened = match who {
                Role::Author => open_as_author(p, &bad, secret).map(|_| ()),
                Role::Origin => open_as_origin(p, &bad[..], secret).map(|_| ()),
                Role::Destination => open_as_destination(p, &bad[..], secret).map(|_| ()),
                _ => open_as_recipient(p, &bad, secret).map(|_| ()),
            };
            assert!(
                matches!(opened, Err(OpenError::Unauthentic)),
                "{who:?}: a bad slot in {:?} gave {opened:?}",
                c.chunk_type
            );
            if who == Role::Recipient {
                let keys = recipient_chunk_keys(p, &bad, secret).map(|_| ());
                assert!(matches!(keys, Err(OpenError::Unauthentic)), "{:?}", c.chunk_type);
            }
            let ins = inspect(p, &bad, Some(secret));
            assert_eq!(ins.error, None, "{who:?} {:?}", c.chunk_type);
            let seen = &ins.chunks[usize::from(c.index)];
            assert_eq!(seen.opened_as, None, "{who:?} {:?}", c.chunk_type);
        }
    }
}
