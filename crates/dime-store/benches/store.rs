//! Store benchmark (`spec/storage.md` §11), one JSON line per figure:
//! durable deliveries per second into one mailbox with 1 and 16 writers against a plain
//! write + fsync + rename file loop (the Maildir floor) in the same run; delivery cost at 1k and
//! 100k stored messages; login latency with the default Argon2id parameters; opening a stored
//! message through its slots (one X25519) and through its read-key overlay
//! (`spec/storage.md` §6.6).
//!
//! `cargo bench -p dime-store --bench store` (set `DIME_BENCH_QUICK=1` for a short run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use dime_core::crypto::{Argon2Params, default_provider};
use dime_core::{Mailbox, Secret};
use dime_signet::OrgKeys;
use dime_store::{
    Accounts, Deliveries, Mailboxes, NewAccount, Recovery, Store, StoreConfig, Timestamp,
};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

const BODY: usize = 4096;
const T0: Timestamp = Timestamp(1_700_000_000);

fn open(dir: &Path, argon2: Argon2Params) -> Store {
    Store::open(
        StoreConfig {
            data_dir: dir.join("data"),
            vault_path: dir.join("vault.redb"),
            pepper: Secret::new(vec![7; 32]),
            argon2,
            idle_timeout_secs: 900,
        },
        default_provider(),
    )
    .unwrap()
}

fn account(store: &Store, addr: &Mailbox) {
    let mut rng = dime_testkit::seeded_rng(1);
    let org = OrgKeys::generate(&mut rng);
    store
        .create_account(
            &mut rng,
            &org,
            &NewAccount {
                address: addr,
                password: b"pw",
                recovery: Recovery::None,
                quota_bytes: u64::MAX,
            },
            T0,
        )
        .unwrap();
}

/// Deliveries per second with `writers` threads for about `dur`.
fn store_rate(store: &Store, addr: &Mailbox, writers: usize, dur: Duration) -> f64 {
    let body = vec![0xa5u8; BODY];
    let start = Instant::now();
    let count = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|sc| {
        for _ in 0..writers {
            sc.spawn(|| {
                while start.elapsed() < dur {
                    store.deliver(addr, &body, T0).unwrap();
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    count.into_inner() as f64 / start.elapsed().as_secs_f64()
}

/// The Maildir floor: create a temporary file, write, fsync, rename into place, fsync the
/// directory; `writers` threads.
fn file_rate(dir: &Path, writers: usize, dur: Duration) -> f64 {
    let body = vec![0xa5u8; BODY];
    let tmp = dir.join("tmp");
    let new = dir.join("new");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&new).unwrap();
    let start = Instant::now();
    let count = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|sc| {
        for w in 0..writers {
            let (tmp, new, body, count) = (&tmp, &new, &body, &count);
            sc.spawn(move || {
                let mut i = 0u64;
                while start.elapsed() < dur {
                    let name = format!("{w}.{i}");
                    let t = tmp.join(&name);
                    let mut f = std::fs::File::create(&t).unwrap();
                    f.write_all(body).unwrap();
                    f.sync_all().unwrap();
                    std::fs::rename(&t, new.join(&name)).unwrap();
                    std::fs::File::open(new).unwrap().sync_all().unwrap();
                    i += 1;
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    count.into_inner() as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let quick = std::env::var("DIME_BENCH_QUICK").is_ok();
    let dur = Duration::from_millis(if quick { 1000 } else { 3000 });
    let fast = Argon2Params { m_kib: Argon2Params::MIN_M_KIB, t: 1, p: 1 };
    let addr = Mailbox::parse("bench@example.org").unwrap();

    for writers in [1usize, 16] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), fast);
        account(&store, &addr);
        let s = store_rate(&store, &addr, writers, dur);
        let fdir = tempfile::tempdir().unwrap();
        let f = file_rate(fdir.path(), writers, dur);
        println!(
            "{{\"bench\":\"deliver\",\"writers\":{writers},\"body\":{BODY},\"store_per_s\":{s:.0},\"file_loop_per_s\":{f:.0},\"ratio\":{:.2}}}",
            s / f
        );
    }

    // Delivery cost as the mailbox grows: fill (in big transactions), then time single
    // durable deliveries.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), fast);
    account(&store, &addr);
    let a = store.account_of(&addr).unwrap();
    let small = vec![0x5au8; 512];
    let mut stored = 0usize;
    let targets: &[usize] = if quick { &[1_000, 20_000] } else { &[1_000, 100_000] };
    for &target in targets {
        while stored < target {
            let n = (target - stored).min(2_000);
            let batch: Vec<&[u8]> = (0..n).map(|_| small.as_slice()).collect();
            store.deliver_many(a, &batch, T0).unwrap();
            stored += n;
        }
        let reps = 200;
        let start = Instant::now();
        for _ in 0..reps {
            store.deliver(&addr, &small, T0).unwrap();
        }
        stored += reps;
        let us = start.elapsed().as_secs_f64() * 1e6 / reps as f64;
        println!(
            "{{\"bench\":\"deliver_cost\",\"stored\":{target},\"writers\":1,\"us_per_delivery\":{us:.0}}}"
        );
    }

    open_costs(quick, fast);

    // Login latency with the default Argon2id parameters.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Argon2Params::DEFAULT);
    account(&store, &addr);
    let reps = 10;
    let start = Instant::now();
    for _ in 0..reps {
        store.login(&addr, b"pw", T0).unwrap();
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / reps as f64;
    let p = Argon2Params::DEFAULT;
    println!(
        "{{\"bench\":\"login\",\"argon2_m_kib\":{},\"argon2_t\":{},\"argon2_p\":{},\"ms\":{ms:.1}}}",
        p.m_kib, p.t, p.p
    );
}

/// Opening cost: through the slots (one X25519) against the read-key overlay (one AEAD
/// unwrap), through the store (fetch, open every tag; no signature check) and for the key step
/// alone.
fn open_costs(quick: bool, fast: Argon2Params) {
    use dime_store::{MailboxId, OpenedVia, Uid};
    let p = default_provider();
    let n: u32 = if quick { 100 } else { 500 };
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), fast);
    let addr = Mailbox::parse("reader@example.org").unwrap();
    account(&store, &addr);
    let a = store.account_of(&addr).unwrap();
    // Real, origin-signed envelopes with a 4 KiB display part.
    let tx = common::Sender::new();
    let body = [b'a'; BODY];
    let envs: Vec<Vec<u8>> =
        (0..n).map(|i| tx.seal_body(&store, &addr, "bench", &body, u64::from(i))).collect();
    let refs: Vec<&[u8]> = envs.iter().map(Vec::as_slice).collect();
    store.deliver_many(a, &refs, T0).unwrap();
    let mut s = store.login(&addr, b"pw", T0).unwrap();
    let mut rng = dime_testkit::seeded_rng(2);
    let per = |start: Instant| start.elapsed().as_secs_f64() * 1e6 / f64::from(n);

    let start = Instant::now();
    for uid in 1..=n {
        let o = store.open_message_uncached(&mut s, MailboxId::INBOX, Uid(uid), T0).unwrap();
        assert_eq!(o.via, OpenedVia::Slots(0));
    }
    let slots_us = per(start);
    let start = Instant::now();
    for uid in 1..=n {
        store.open_message(&mut rng, &mut s, MailboxId::INBOX, Uid(uid), T0).unwrap();
    }
    let first_us = per(start);
    let start = Instant::now();
    for uid in 1..=n {
        let o = store.open_message(&mut rng, &mut s, MailboxId::INBOX, Uid(uid), T0).unwrap();
        assert_eq!(o.via, OpenedVia::ReadOverlay);
    }
    let read_us = per(start);
    println!(
        "{{\"bench\":\"open\",\"messages\":{n},\"envelope_bytes\":{},\"via_x25519_us\":{slots_us:.1},\"first_open_writing_read_overlay_us\":{first_us:.1},\"via_read_overlay_us\":{read_us:.1},\"speedup\":{:.2}}}",
        envs[0].len(),
        slots_us / read_us
    );

    // The key step alone: the recipient chunk keys from the slots against from the overlay.
    let x = match dime_store::Session::current_keys(&s).unwrap().encryption_secret() {
        dime_signet::EncryptionSecret::X25519(x) => x.duplicate(),
        _ => unreachable!(),
    };
    let me = dime_envelope::ActorSecret::new(p, x);
    let read_key = [7u8; 32];
    let overlays: Vec<Vec<u8>> = envs
        .iter()
        .map(|e| {
            dime_envelope::recipient_chunk_keys(p, e, &me)
                .unwrap()
                .seal_with_read_key(p, &mut rng, &read_key)
                .unwrap()
        })
        .collect();
    let start = Instant::now();
    for e in &envs {
        dime_envelope::recipient_chunk_keys(p, e, &me).unwrap();
    }
    let keys_x = per(start);
    let start = Instant::now();
    for (e, o) in envs.iter().zip(&overlays) {
        dime_envelope::open_overlay(p, e, o, dime_envelope::OverlayKey::Read(&read_key)).unwrap();
    }
    let keys_r = per(start);
    println!(
        "{{\"bench\":\"open_keys\",\"messages\":{n},\"via_x25519_us\":{keys_x:.1},\"via_read_overlay_us\":{keys_r:.1},\"speedup\":{:.1}}}",
        keys_x / keys_r
    );
}
