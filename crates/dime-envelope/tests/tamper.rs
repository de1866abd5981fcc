//! Tampering: every bit flip, truncation, reordering, duplication, splice and slot swap is
//! detected by every actor; crypto failures share one error; a streaming open releases no
//! plaintext from a bad region (`spec/envelope.md` §3, §4, §7; test-plan.md "Envelope").
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dime_core::crypto::{CryptoProvider, default_provider};
const SLOT: usize = 50;
use dime_envelope::*;
use dime_testkit::{insecure_provider, seeded_rng};

fn chunk_ranges(
    p: &CryptoProvider,
    w: &World,
    msg: &[u8],
) -> Vec<(ChunkType, std::ops::Range<usize>)> {
    let ins = inspect(p, msg, Some(&w.recip.enc));
    assert_eq!(ins.error, None);
    ins.chunks
        .iter()
        .map(|c| (c.chunk_type, c.offset as usize..(c.offset + c.size) as usize))
        .collect()
}

fn assert_all_refuse(p: &CryptoProvider, w: &World, msg: &[u8], what: &str) {
    assert_eq!(all_accept(p, w, msg), [false; 4], "{what}");
}

#[test]
fn every_bit_flip_is_detected_by_the_recipient() {
    // The insecure provider keeps this fast; its tags and signatures still change with
    // every input octet.
    let p = insecure_provider();
    let w = world(p);
    let msg = delivered(p, &mut seeded_rng(20), &w, &sample_message(300));
    for i in 0..msg.len() {
        for bit in 0..8 {
            let mut bad = msg.clone();
            bad[i] ^= 1 << bit;
            let r = open_as_recipient(p, &bad, &w.recip.enc)
                .and_then(|u| u.verify(p, &w.author.keys.signing, Some(&w.origin.keys.signing)));
            match r {
                Err(OpenError::Decode(_) | OpenError::Unauthentic | OpenError::OriginSignature) => {
                }
                other => panic!("flip at {i}.{bit} not detected: {other:?}"),
            }
        }
    }
}

#[test]
fn every_octet_flip_is_detected_by_every_actor() {
    let p = default_provider();
    let w = world(p);
    let msg = delivered(p, &mut seeded_rng(21), &w, &sample_message(50));
    for i in 0..msg.len() {
        let mut bad = msg.clone();
        bad[i] ^= 0x80 >> (i % 8);
        assert_all_refuse(p, &w, &bad, &format!("flip at {i}"));
    }
}

#[test]
fn crypto_failures_do_not_say_which_check_failed() {
    let p = default_provider();
    let w = world(p);
    let msg = delivered(p, &mut seeded_rng(22), &w, &sample_message(50));
    let ranges = chunk_ranges(p, &w, &msg);
    // A flip in a slot, in a chunk's ciphertext and in its tag: the same error, same text.
    let (_, body) = ranges.iter().find(|(t, _)| *t == ChunkType::Display).unwrap().clone();
    let mut texts = Vec::new();
    for off in [body.start + 7, body.start + 5 + 2 * SLOT + 10, body.end - 1] {
        let mut bad = msg.clone();
        bad[off] ^= 1;
        let e = open_as_recipient(p, &bad, &w.recip.enc)
            .and_then(|u| u.verify(p, &w.author.keys.signing, Some(&w.origin.keys.signing)))
            .unwrap_err();
        assert!(matches!(e, OpenError::Unauthentic), "{e:?}");
        texts.push(e.to_string());
    }
    // A wrong author key gives the same error as a bad tag.
    let e = open_as_recipient(p, &msg, &w.recip.enc)
        .unwrap()
        .verify(p, &w.dest.keys.signing, Some(&w.origin.keys.signing))
        .unwrap_err();
    texts.push(e.to_string());
    texts.dedup();
    assert_eq!(texts, vec!["message does not authenticate".to_string()]);
}

#[test]
fn every_truncation_is_detected() {
    let p = default_provider();
    let w = world(p);
    let msg = delivered(p, &mut seeded_rng(23), &w, &sample_message(70_000));
    let ranges = chunk_ranges(p, &w, &msg);
    let mut cuts: Vec<usize> = (0..msg.len()).step_by(97).collect();
    for (_, r) in &ranges {
        cuts.extend([r.start, r.start + 1, r.end.saturating_sub(1), r.end]);
    }
    cuts.retain(|&c| c < msg.len());
    let origin_sig_at = ranges.last().unwrap().1.start;
    for cut in cuts {
        if cut == origin_sig_at {
            // Exactly the author's sealed copy: only the origin accepts it (it has not signed
            // it yet); destination and recipient require the origin signature.
            assert_eq!(all_accept(p, &w, &msg[..cut]), [false, true, false, false]);
            continue;
        }
        assert_all_refuse(p, &w, &msg[..cut], &format!("cut at {cut}"));
    }
    // Extra bytes after the end.
    let mut long = msg.clone();
    long.push(0x61);
    assert_all_refuse(p, &w, &long, "trailing octet");
}

#[test]
fn reordering_duplication_and_splicing_are_detected() {
    let p = default_provider();
    let w = world(p);
    let mut m = sample_message(20);
    m.parts.insert(1, m.parts[0].clone());
    let msg = delivered(p, &mut seeded_rng(24), &w, &m);
    let other = delivered(p, &mut seeded_rng(25), &w, &m);
    let ranges = chunk_ranges(p, &w, &msg);
    let oranges = chunk_ranges(p, &w, &other);
    assert_eq!(ranges.len(), oranges.len());
    let header = &msg[..ranges[0].1.start];
    let piece = |m: &[u8], r: &std::ops::Range<usize>| m[r.clone()].to_vec();

    // Swap two adjacent chunks of the same type (the two display parts), and any pair.
    for i in 1..ranges.len() {
        for j in (i + 1)..ranges.len() {
            let mut order: Vec<usize> = (0..ranges.len()).collect();
            order.swap(i, j);
            let mut bad = header.to_vec();
            for k in order {
                bad.extend(piece(&msg, &ranges[k].1));
            }
            assert_all_refuse(p, &w, &bad, &format!("swap {i} {j}"));
        }
    }
    // Duplicate each chunk in place.
    for i in 0..ranges.len() {
        let mut bad = header.to_vec();
        for (k, (_, r)) in ranges.iter().enumerate() {
            bad.extend(piece(&msg, r));
            if k == i {
                bad.extend(piece(&msg, r));
            }
        }
        assert_all_refuse(p, &w, &bad, &format!("duplicate {i}"));
    }
    // Drop each chunk.
    for i in 0..ranges.len() {
        let mut bad = header.to_vec();
        for (k, (_, r)) in ranges.iter().enumerate() {
            if k != i {
                bad.extend(piece(&msg, r));
            }
        }
        if i == ranges.len() - 1 {
            // The author's sealed copy again: only the origin accepts it.
            assert_eq!(all_accept(p, &w, &bad), [false, true, false, false]);
            continue;
        }
        assert_all_refuse(p, &w, &bad, &format!("drop {i}"));
    }
    // Splice each chunk from another message (same parties, same content) at the same place.
    for i in 0..ranges.len() {
        let mut bad = header.to_vec();
        for (k, (_, r)) in ranges.iter().enumerate() {
            if k == i {
                bad.extend(piece(&other, &oranges[k].1));
            } else {
                bad.extend(piece(&msg, r));
            }
        }
        assert_all_refuse(p, &w, &bad, &format!("splice {i}"));
    }
    // The other message's header with this message's chunks.
    let mut bad = other[..ranges[0].1.start].to_vec();
    bad.extend_from_slice(&msg[ranges[0].1.start..]);
    assert_all_refuse(p, &w, &bad, "header splice");
}

#[test]
fn slot_swaps_are_detected() {
    let p = default_provider();
    let w = world(p);
    let msg = delivered(p, &mut seeded_rng(26), &w, &sample_message(20));
    let ranges = chunk_ranges(p, &w, &msg);
    for (ty, r) in &ranges {
        let n = ty.slot_roles().len();
        for a in 0..n {
            for b in (a + 1)..n {
                let sa = r.start + 5 + a * SLOT;
                let sb = r.start + 5 + b * SLOT;
                // Whole slots swapped (roles out of order), then only the wrapped keys.
                let mut bad = msg.clone();
                let (x, y) = (msg[sa..sa + SLOT].to_vec(), msg[sb..sb + SLOT].to_vec());
                bad[sa..sa + SLOT].copy_from_slice(&y);
                bad[sb..sb + SLOT].copy_from_slice(&x);
                assert_all_refuse(p, &w, &bad, &format!("{ty:?} slots {a}<->{b}"));
                let mut bad = msg.clone();
                bad[sa + 2..sa + SLOT].copy_from_slice(&y[2..]);
                bad[sb + 2..sb + SLOT].copy_from_slice(&x[2..]);
                assert_all_refuse(p, &w, &bad, &format!("{ty:?} wrapped keys {a}<->{b}"));
            }
        }
    }
    // A slot moved from one chunk to another of the same matrix row.
    let ch = ranges.iter().find(|(t, _)| *t == ChunkType::CommonHeaders).unwrap().1.clone();
    let oh = ranges.iter().find(|(t, _)| *t == ChunkType::OtherHeaders).unwrap().1.clone();
    let mut bad = msg.clone();
    bad[oh.start + 5..oh.start + 5 + 98].copy_from_slice(&msg[ch.start + 5..ch.start + 5 + 98]);
    assert_all_refuse(p, &w, &bad, "slots moved between chunks");
}

#[derive(Default)]
struct Recorder {
    data: Vec<u8>,
    /// The calls in order: the part's kind at `begin`, "end" at `end`.
    calls: Vec<String>,
}

impl PartSink for Recorder {
    fn begin(&mut self, kind: PartKind, _: &PartInfo) -> std::io::Result<()> {
        self.calls.push(format!("{kind:?}"));
        Ok(())
    }
    fn data(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(b);
        Ok(())
    }
    fn end(&mut self) -> std::io::Result<()> {
        self.calls.push("end".into());
        Ok(())
    }
}

#[test]
fn streaming_open_releases_nothing_from_a_bad_segment() {
    let p = default_provider();
    let w = world(p);
    let m = sample_message(5 * 65536);
    let msg = delivered(p, &mut seeded_rng(27), &w, &m);
    let ranges = chunk_ranges(p, &w, &msg);
    let att = ranges.iter().find(|(t, _)| *t == ChunkType::Attachment).unwrap().1.clone();
    // Third segment of the attachment: after the chunk head (5 + 2 slots), two full segments.
    let seg = 5 + 65536 + 20;
    let third = att.start + 5 + 2 * 49 + 2 * seg + 5 + 1000;
    let mut bad = msg.clone();
    bad[third] ^= 4;
    let mut sink = Recorder::default();
    let r = open_streaming(p, &bad[..], &w.recip.enc, ReaderRole::Recipient, &mut sink);
    assert!(matches!(r, Err(OpenError::Unauthentic)));
    let good = &m.parts[1].data;
    // Display part, then exactly the two good segments of the attachment (minus its info).
    let display = &m.parts[0].data;
    assert!(sink.data.starts_with(display));
    let released = &sink.data[display.len()..];
    assert!(released.len() < 2 * 65536);
    assert_eq!(released, &good[..released.len()]);

    // A good stream releases everything, and the view carries no part data.
    let mut sink = Recorder::default();
    let v = open_streaming(p, &msg[..], &w.recip.enc, ReaderRole::Recipient, &mut sink)
        .unwrap()
        .verify(p, &w.author.keys.signing, Some(&w.origin.keys.signing))
        .unwrap();
    assert_eq!(v.message.parts.len(), 2);
    assert!(v.message.parts.iter().all(|p| p.data.is_empty()));
    assert_eq!(sink.data.len(), display.len() + good.len());
    // Each part begins and ends, in order, through the caller's sink.
    assert_eq!(sink.calls, ["Display", "end", "Attachment", "end"]);
}

/// Low-order X25519 points (RFC 7748 §5 list as used by libsodium), as little-endian octets.
const LOW_ORDER: [&str; 7] = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

mod counting {
    use dime_core::crypto::{CryptoError, CryptoProvider, Kdf, default_provider};
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub(crate) static KDF_CALLS: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug)]
    pub(crate) struct CountingKdf;
    impl Kdf for CountingKdf {
        fn hkdf_sha512(
            &self,
            s: &[u8],
            k: &[u8],
            i: &[u8],
            o: &mut [u8],
        ) -> Result<(), CryptoError> {
            KDF_CALLS.fetch_add(1, Ordering::SeqCst);
            default_provider().kdf.hkdf_sha512(s, k, i, o)
        }
    }
    pub(crate) fn provider() -> CryptoProvider {
        CryptoProvider { name: "counting", kdf: &CountingKdf, ..*default_provider() }
    }
}

#[test]
fn low_order_ephemeral_keys_are_refused_before_any_kdf() {
    use std::sync::atomic::Ordering;
    let p = counting::provider();
    let w = world(&p);
    let msg = delivered(&p, &mut seeded_rng(28), &w, &sample_message(5));
    let eph_at = 42 + 6; // header, then type, flags, index, length of chunk 0
    assert_eq!(&msg[eph_at - 6..eph_at - 4], &[0x01, 0x00]);
    for point in LOW_ORDER {
        let mut bad = msg.clone();
        bad[eph_at..eph_at + 32].copy_from_slice(&hex::decode(point).unwrap());
        counting::KDF_CALLS.store(0, Ordering::SeqCst);
        for r in [
            open_as_recipient(&p, &bad, &w.recip.enc).map(|_| ()),
            open_as_author(&p, &bad, &w.author.enc).map(|_| ()),
            open_as_origin(&p, &bad[..], &w.origin.enc).map(|_| ()),
            open_as_destination(&p, &bad[..], &w.dest.enc).map(|_| ()),
        ] {
            assert!(matches!(r, Err(OpenError::Unauthentic)), "{point}");
        }
        assert_eq!(counting::KDF_CALLS.load(Ordering::SeqCst), 0, "kdf ran for {point}");
    }
    // Sealing to a low-order actor key fails for each role.
    for point in LOW_ORDER {
        let mut w2 = world(&p);
        w2.addressing.recipient_keys.encryption =
            dime_core::crypto::X25519PublicKey(hex::decode(point).unwrap().try_into().unwrap());
        let r = seal_message(
            &p,
            &mut seeded_rng(29),
            &w2.addressing,
            Signer::Author(&w2.author.sign),
            &sample_message(1),
        );
        assert!(matches!(r, Err(SealError::BadActorKey(Role::Recipient))), "{point}");
    }
}

#[test]
fn declared_length_bombs_fail_before_allocating() {
    let p = default_provider();
    let w = world(p);
    let msg = delivered(p, &mut seeded_rng(30), &w, &sample_message(5));
    let ranges = chunk_ranges(p, &w, &msg);
    let r = &ranges[1].1; // transit chunk: 5 + 4 slots, then the first segment frame
    let len_at = r.start + 5 + 4 * SLOT + 1;
    let mut bad = msg.clone();
    bad[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    let e = open_as_recipient(p, &bad, &w.recip.enc).unwrap_err();
    assert!(matches!(e, OpenError::Decode(DecodeError::SegmentLength)), "{e:?}");
    let ins = inspect(p, &bad, None);
    assert!(ins.error.unwrap().contains("segment length"));
}
