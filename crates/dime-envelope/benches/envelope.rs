//! Envelope benchmark (one run): seal for four actors and open as recipient, origin and
//! destination, each against the sum of the primitive operations it must do (X25519, HKDF,
//! AEAD over the same bytes, Ed25519 sign/verify, SHA-512 over the same bytes), measured in
//! the same run with the same provider. Target: ratio <= 1.25 for 4 KiB. Also 64 B and 1 MiB;
//! messages/s per core.
//!
//! `cargo bench -p dime-envelope --bench envelope`. Criterion reports each measurement; the
//! closing table (stdout) gives the ratios and messages/s from a median of timed batches.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::type_complexity
)]

use criterion::{Criterion, black_box};
use dime_core::crypto::{
    AeadKey, CryptoProvider, Ed25519Seed, X25519PublicKey, X25519Secret, default_provider,
};
use dime_core::{Domain, Mailbox};
use dime_envelope::limits::SEGMENT_PAYLOAD;
use dime_envelope::*;
use dime_testkit::seeded_rng;
use std::time::{Duration, Instant};

struct Actor {
    enc: ActorSecret,
    sign: Ed25519Seed,
    keys: ActorKeys,
}

fn actor(p: &CryptoProvider, n: u8) -> Actor {
    let enc = ActorSecret::new(p, X25519Secret::from_bytes([n; 32]));
    let sign = Ed25519Seed::from_bytes([n + 100; 32]);
    let keys = ActorKeys { encryption: *enc.public(), signing: p.signature.public_key(&sign) };
    Actor { enc, sign, keys }
}

struct World {
    a: Actor,
    o: Actor,
    d: Actor,
    r: Actor,
    addressing: Addressing,
}

fn world(p: &CryptoProvider) -> World {
    let (a, o, d, r) = (actor(p, 1), actor(p, 2), actor(p, 3), actor(p, 4));
    let addressing = Addressing {
        author: Mailbox::parse("alice@example.com").unwrap(),
        author_keys: a.keys,
        origin: Domain::parse("example.com").unwrap(),
        origin_keys: o.keys,
        destination: Domain::parse("example.org").unwrap(),
        destination_keys: d.keys,
        recipient: Mailbox::parse("bob@example.org").unwrap(),
        recipient_keys: r.keys,
    };
    World { a, o, d, r, addressing }
}

fn message(size: usize) -> Message {
    Message {
        common_headers: Headers::from_pairs([("Subject", "bench"), ("From", "alice@example.com")])
            .unwrap(),
        other_headers: Headers::new(),
        parts: vec![Part {
            kind: PartKind::Display,
            info: PartInfo { content_type: "text/plain".into(), filename: String::new() },
            data: vec![0x61; size],
        }],
    }
}

/// The primitive work of one operation: counts and byte sizes.
#[derive(Default, Debug)]
struct Work {
    x25519: usize,
    hkdf: usize,
    /// AEAD calls, by plaintext length (slots are 32 octets).
    aead: Vec<usize>,
    sign: Vec<usize>,
    verify: Vec<usize>,
    /// Octets hashed with SHA-512.
    hashed: usize,
}

/// The work the spec requires of `role` on `msg` (§4, §3.3, §7), read from `inspect`.
fn work_of(p: &CryptoProvider, msg: &[u8], key: &ActorSecret, role: Option<Role>) -> Work {
    let ins = inspect(p, msg, Some(key));
    let mut w = Work { x25519: 1, hkdf: 2, ..Default::default() };
    let tree_len = ins.chunks.iter().position(|c| c.chunk_type == ChunkType::AuthorTreeSig);
    let tree_input = 24 + 42 + 12 + 2 + 67 * tree_len.unwrap_or(0);
    let origin_input = 19 + 42 + 24 + 2 + 67 * (ins.chunks.len() - 1);
    let full_region = ins
        .chunks
        .iter()
        .find(|c| c.chunk_type == ChunkType::AuthorFullSig)
        .map(|c| c.offset as usize + 5 + 3 * 49)
        .unwrap();
    let chunks: Vec<&ChunkSummary> = match role {
        // Sealing: every encrypted chunk of the author's message, one slot per matrix role.
        None => ins.chunks.iter().filter(|c| c.chunk_type != ChunkType::Ephemeral).collect(),
        Some(_) => ins.chunks.iter().filter(|c| c.opened_as.is_some()).collect(),
    };
    for c in &chunks {
        let slots = if role.is_none() { c.slots.len() } else { 1 };
        w.aead.extend(std::iter::repeat_n(32, slots));
        let padded = c.padded_size.unwrap() as usize;
        let segs = c.segments as usize;
        for s in 0..segs {
            let payload =
                if s + 1 < segs { SEGMENT_PAYLOAD } else { padded - (segs - 1) * SEGMENT_PAYLOAD };
            w.aead.push(4 + payload);
        }
    }
    match role {
        None => {
            // One ephemeral key pair, four agreements; four actor KEKs and the transit KEK.
            w.x25519 = 5;
            w.hkdf = 5;
            w.sign = vec![tree_input, 24 + 42 + 64];
            w.hashed = msg.len() + full_region;
        }
        Some(Role::Destination) => {
            w.verify = vec![origin_input];
            w.hashed = msg.len();
        }
        Some(Role::Origin) => {
            w.verify = vec![tree_input, 24 + 42 + 64];
            w.hashed = msg.len() + full_region;
        }
        Some(_) => {
            w.verify = vec![tree_input, 24 + 42 + 64, origin_input];
            w.hashed = msg.len() + full_region;
        }
    }
    w
}

/// Runs exactly the primitive operations of `w`.
struct Baseline {
    eph: X25519Secret,
    peer: X25519PublicKey,
    key: AeadKey,
    bufs: Vec<Vec<u8>>,
    sign_inputs: Vec<Vec<u8>>,
    verify_inputs: Vec<(Vec<u8>, dime_core::crypto::Ed25519Signature)>,
    hash_buf: Vec<u8>,
    seed: Ed25519Seed,
    x25519: usize,
    hkdf: usize,
}

impl Baseline {
    fn new(p: &CryptoProvider, w: &Work) -> Self {
        let seed = Ed25519Seed::from_bytes([7; 32]);
        Baseline {
            eph: X25519Secret::from_bytes([9; 32]),
            peer: p.key_agreement.public_key(&X25519Secret::from_bytes([5; 32])),
            key: AeadKey::from_bytes([3; 32]),
            bufs: w.aead.iter().map(|&n| vec![0x42; n]).collect(),
            sign_inputs: w.sign.iter().map(|&n| vec![0x17; n]).collect(),
            verify_inputs: w
                .verify
                .iter()
                .map(|&n| {
                    let m = vec![0x18; n];
                    let s = p.signature.sign(&seed, &m);
                    (m, s)
                })
                .collect(),
            hash_buf: vec![0x33; w.hashed],
            seed,
            x25519: w.x25519,
            hkdf: w.hkdf,
        }
    }

    fn run(&mut self, p: &CryptoProvider) {
        let pk = p.signature.public_key(&self.seed);
        for i in 0..self.x25519 {
            if i == 0 && !self.sign_inputs.is_empty() {
                black_box(p.key_agreement.public_key(&self.eph));
            } else {
                black_box(p.key_agreement.agree(&self.eph, &self.peer).unwrap());
            }
        }
        let mut okm = [0u8; 32];
        for _ in 0..self.hkdf {
            p.kdf.hkdf_sha512(&[1; 64], &[2; 32], b"dime/v2/kek/recipient", &mut okm).unwrap();
        }
        for b in &mut self.bufs {
            black_box(p.aead.seal_detached(&self.key, &[0; 24], &[0; 56], b));
        }
        for m in &self.sign_inputs {
            black_box(p.signature.sign(&self.seed, m));
        }
        for (m, s) in &self.verify_inputs {
            p.signature.verify(&pk, m, s).unwrap();
        }
        black_box(p.hash.sha512(&[&self.hash_buf]));
    }
}

/// Median time of one call, over batches of about 20 ms.
fn median(mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    let mut n = 0u32;
    while t.elapsed() < Duration::from_millis(20) || n < 3 {
        f();
        n += 1;
    }
    let mut v: Vec<Duration> = (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed() / n
        })
        .collect();
    v.sort();
    v[7]
}

fn main() {
    let p = default_provider();
    let w = world(p);
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut table = Vec::new();

    for (label, size) in [("64B", 64usize), ("4KiB", 4096), ("1MiB", 1 << 20)] {
        let m = message(size);
        let mut rng = seeded_rng(1);
        let sealed =
            seal_message(p, &mut rng, &w.addressing, Signer::Author(&w.a.sign), &m).unwrap();
        let o =
            open_as_origin(p, &sealed[..], &w.o.enc).unwrap().verify(p, &w.a.keys.signing).unwrap();
        let mut delivered = sealed.clone();
        delivered.extend(
            o.origin_signature_chunk(p, &mut rng, &w.o.sign, &w.addressing.origin, 1_831_593_600)
                .unwrap(),
        );

        let seal_op = || {
            let mut rng = seeded_rng(2);
            black_box(
                seal_message(p, &mut rng, &w.addressing, Signer::Author(&w.a.sign), &m).unwrap(),
            );
        };
        let open_r = || {
            let v = open_as_recipient(p, &delivered, &w.r.enc)
                .unwrap()
                .verify(p, &w.a.keys.signing, Some(&w.o.keys.signing))
                .unwrap();
            let _ = black_box(v);
        };
        let open_o = || {
            let v = open_as_origin(p, &delivered[..], &w.o.enc)
                .unwrap()
                .verify(p, &w.a.keys.signing)
                .unwrap();
            let _ = black_box(v);
        };
        let open_d = || {
            let v = open_as_destination(p, &delivered[..], &w.d.enc)
                .unwrap()
                .verify(p, &w.o.keys.signing, &w.addressing.destination)
                .unwrap();
            let _ = black_box(v);
        };

        let mut ops: Vec<(&str, Box<dyn FnMut() + '_>, Work)> = vec![
            ("seal", Box::new(seal_op), work_of(p, &sealed, &w.a.enc, None)),
            (
                "open-recipient",
                Box::new(open_r),
                work_of(p, &delivered, &w.r.enc, Some(Role::Recipient)),
            ),
            ("open-origin", Box::new(open_o), work_of(p, &delivered, &w.o.enc, Some(Role::Origin))),
            (
                "open-destination",
                Box::new(open_d),
                work_of(p, &delivered, &w.d.enc, Some(Role::Destination)),
            ),
        ];
        for (name, f, work) in &mut ops {
            let mut base = Baseline::new(p, work);
            let mut g = c.benchmark_group(format!("envelope/{label}"));
            g.bench_function(*name, |b| b.iter(&mut *f));
            g.bench_function(format!("{name}-primitives"), |b| b.iter(|| base.run(p)));
            g.finish();
            let t_op = median(&mut *f);
            let t_base = median(|| base.run(p));
            table.push((label, *name, delivered.len(), t_op, t_base));
        }
    }

    println!("\nenvelope benchmark (default provider, one core)");
    println!(
        "{:<6} {:<17} {:>9} {:>11} {:>11} {:>6} {:>10}",
        "size", "operation", "msg bytes", "op µs", "prims µs", "ratio", "msgs/s"
    );
    for (label, name, len, t_op, t_base) in table {
        println!(
            "{:<6} {:<17} {:>9} {:>11.1} {:>11.1} {:>6.2} {:>10.0}",
            label,
            name,
            len,
            t_op.as_secs_f64() * 1e6,
            t_base.as_secs_f64() * 1e6,
            t_op.as_secs_f64() / t_base.as_secs_f64(),
            1.0 / t_op.as_secs_f64()
        );
    }
    c.final_summary();
}
