//! Crash harness (`spec/storage.md` §10): a child process runs store operations and reports
//! each acknowledged one on stdout; the parent kills it with SIGKILL at a random moment, reopens
//! the store and checks that every acknowledged operation is present and intact and that every
//! unacknowledged one is all or nothing.
//!
//! Iterations per scenario: 5 by default; set `DIME_CRASH_ITERATIONS` for a long run, e.g.
//! `DIME_CRASH_ITERATIONS=200 cargo test -p dime-store --release --test crash`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr, clippy::print_stdout)]

mod common;
use common::*;
use dime_core::RngCore;
use dime_store::{MailboxId, OpenedVia, Recovery, Store, Uid};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const ALICE: &str = "alice@example.org";

fn iterations() -> usize {
    std::env::var("DIME_CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(5)
}

fn ack(line: String) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ACK {line}").unwrap();
    out.flush().unwrap();
}

/// The child side: runs only when the parent sets `DIME_CRASH_CHILD`.
#[test]
fn crash_child() {
    let Ok(op) = std::env::var("DIME_CRASH_CHILD") else { return };
    let dir = std::path::PathBuf::from(std::env::var("DIME_CRASH_DIR").unwrap());
    let tag: u64 = std::env::var("DIME_CRASH_TAG").unwrap().parse().unwrap();
    let store = open(&dir);
    let alice = mailbox(ALICE);
    let mut rng = dime_testkit::seeded_rng(tag);
    ack("ready".into());
    match op.as_str() {
        "deliver" => std::thread::scope(|sc| {
            for w in 0..4 {
                let (store, alice) = (&store, &alice);
                sc.spawn(move || {
                    for i in 0.. {
                        let body = format!("m-{tag}-{w}-{i}-").repeat(20);
                        store.deliver(alice, body.as_bytes(), T0).unwrap();
                        ack(body);
                    }
                });
            }
        }),
        "flags" => {
            let mut s = store.login(&alice, b"pw", T0).unwrap();
            for n in 0u64.. {
                let uid = (rng.next_u32() % 20) + 1;
                let flag = format!("v{tag:04}{n:08}");
                store
                    .set_flags(&mut rng, &mut s, MailboxId::INBOX, Uid(uid), &[&flag], T0)
                    .unwrap();
                ack(format!("{uid} {flag}"));
            }
        }
        "password" => {
            let mut n: u64 = std::env::var("DIME_CRASH_PW").unwrap().parse().unwrap();
            loop {
                let mut s = store.login(&alice, format!("pw{n}").as_bytes(), T0).unwrap();
                store
                    .change_password(&mut rng, &mut s, format!("pw{}", n + 1).as_bytes(), T0)
                    .unwrap();
                n += 1;
                ack(format!("{n}"));
            }
        }
        "rewrap" => {
            let mut s = store.login(&alice, b"pw", T0).unwrap();
            store.rotate_keys(&mut rng, &mut s, &org(1), T0).unwrap();
            ack(format!("rotated {}", s.current_generation().unwrap()));
            // Spread the batches over the kill window (on a fast disk the whole re-wrap takes
            // a few milliseconds): the kill lands before, inside or between transactions.
            let mut pace = dime_testkit::seeded_rng(tag ^ 0xbeef);
            store
                .rewrap_slots(&mut rng, &mut s, 2, T0, &mut |p| {
                    ack(format!("progress {}", p.done));
                    std::thread::sleep(Duration::from_millis(u64::from(pace.next_u32() % 16)));
                })
                .unwrap();
            ack("finished".into());
            std::thread::sleep(Duration::from_secs(60));
        }
        _ => unreachable!(),
    }
}

/// Runs one child, kills it with SIGKILL after a random delay, returns the acknowledged lines.
fn run_and_kill(dir: &Path, op: &str, tag: u64, extra: &[(&str, String)]) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env("DIME_CRASH_CHILD", op)
        .env("DIME_CRASH_DIR", dir)
        .env("DIME_CRASH_TAG", tag.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The harness may print "test crash_child ... " on the same line first.
            if let Some(a) = line.find("ACK ").map(|i| &line[i + 4..]) {
                if a == "ready" {
                    let _ = tx.send(());
                } else {
                    acks.push(a.to_owned());
                }
            }
        }
        acks
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("child ready");
    let mut rng = dime_testkit::seeded_rng(tag ^ 0x5eed);
    std::thread::sleep(Duration::from_millis(20 + u64::from(rng.next_u32() % 400)));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    reader.join().unwrap()
}

fn setup(dir: &Path) -> Store {
    let store = open(dir);
    create(&store, &org(1), &mailbox(ALICE), b"pw", Recovery::None);
    store
}

#[test]
fn crash_during_delivery_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    drop(setup(dir.path()));
    let mut acked = Vec::new();
    let mut replayed = 0;
    for it in 0..iterations() {
        acked.extend(run_and_kill(dir.path(), "deliver", 100 + it as u64, &[]));
        let store = open(dir.path());
        replayed += store.replayed_deliveries();
        let a = store.account_of(&mailbox(ALICE)).unwrap();
        let list = store.list(a, MailboxId::INBOX).unwrap();
        let mut bodies = std::collections::HashSet::new();
        let mut total = 0;
        for e in &list {
            let b = store.fetch(a, MailboxId::INBOX, e.uid).unwrap();
            assert_eq!(b.len() as u64, e.size);
            total += e.size;
            let s = String::from_utf8(b).unwrap();
            let unit = s.split_inclusive('-').take(4).collect::<String>();
            assert_eq!(s, unit.repeat(20), "message intact (all or nothing)");
            bodies.insert(s);
        }
        for body in &acked {
            assert!(bodies.contains(body), "acknowledged delivery lost");
        }
        let q = store.quota(a).unwrap();
        assert_eq!((q.used, q.messages), (total, list.len() as u64));
        let uids: Vec<u32> = list.iter().map(|e| e.uid.0).collect();
        assert!(uids.windows(2).all(|w| w[0] < w[1]));
    }
    eprintln!(
        "crash harness: delivery: {} kills, {} acknowledged deliveries verified, {} of them \
         given back by the delivery log",
        iterations(),
        acked.len(),
        replayed
    );
}

#[test]
fn crash_during_flag_updates_keeps_the_last_acknowledged_flags_or_a_later_one() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = setup(dir.path());
        for i in 0..20u8 {
            store.deliver(&mailbox(ALICE), &[i; 32], T0).unwrap();
        }
    }
    let mut last: HashMap<u32, String> = HashMap::new();
    let mut n = 0;
    for it in 0..iterations() {
        for a in run_and_kill(dir.path(), "flags", 200 + it as u64, &[]) {
            let (uid, flag) = a.split_once(' ').unwrap();
            last.insert(uid.parse().unwrap(), flag.to_owned());
            n += 1;
        }
        let store = open(dir.path());
        let mut s = store.login(&mailbox(ALICE), b"pw", T0).unwrap();
        for uid in 1..=20u32 {
            let flags = store.flags(&mut s, MailboxId::INBOX, Uid(uid), T0).unwrap();
            if let Some(want) = last.get(&uid) {
                assert_eq!(flags.len(), 1);
                assert!(
                    flags[0] >= *want,
                    "uid {uid}: {:?} older than acknowledged {want}",
                    flags[0]
                );
            }
        }
        // Flags written but not acknowledged become the new floor.
        for uid in 1..=20u32 {
            if let Some(f) = store.flags(&mut s, MailboxId::INBOX, Uid(uid), T0).unwrap().pop() {
                last.insert(uid, f);
            }
        }
        let boxes = store.mailboxes(&mut s, T0).unwrap();
        let a = s.account();
        let max_entry =
            store.list(a, MailboxId::INBOX).unwrap().iter().map(|e| e.modseq).max().unwrap();
        assert!(boxes[0].highest_modseq >= max_entry);
    }
    eprintln!("crash harness: flags: {} kills, {n} acknowledged updates verified", iterations());
}

#[test]
fn crash_during_password_change_leaves_exactly_one_password_working() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        create(&store, &org(1), &mailbox(ALICE), b"pw0", Recovery::None);
    }
    let mut current = 0u64;
    let mut n = 0;
    for it in 0..iterations() {
        let acks = run_and_kill(
            dir.path(),
            "password",
            300 + it as u64,
            &[("DIME_CRASH_PW", current.to_string())],
        );
        n += acks.len();
        let acked = acks.last().map(|a| a.parse().unwrap()).unwrap_or(current);
        let store = open(dir.path());
        let alice = mailbox(ALICE);
        let old = store.login(&alice, format!("pw{acked}").as_bytes(), T0).is_ok();
        let new = store.login(&alice, format!("pw{}", acked + 1).as_bytes(), T0).is_ok();
        assert!(
            old ^ new,
            "exactly one of pw{acked} / pw{} works (old {old}, new {new})",
            acked + 1
        );
        current = if old { acked } else { acked + 1 };
    }
    eprintln!("crash harness: password: {} kills, {n} acknowledged changes verified", iterations());
}

#[test]
fn crash_during_slot_rewrap_leaves_every_message_whole_at_one_generation() {
    // Real envelopes (spec/envelope.md), re-wrapped through key overlays (spec/envelope.md
    // §16): each kill lands during a rotation or a re-wrap; every iteration rotates again, so
    // later runs re-wrap from the overlays of earlier ones.
    const N: u32 = 60;
    let dir = tempfile::tempdir().unwrap();
    let tx = Sender::new();
    let mut sent = Vec::new();
    {
        let store = setup(dir.path());
        let alice = mailbox(ALICE);
        let a = store.account_of(&alice).unwrap();
        for i in 0..N {
            sent.push(tx.seal(&store, &alice, &format!("payload-{i:05}"), u64::from(i)));
        }
        let refs: Vec<&[u8]> = sent.iter().map(Vec::as_slice).collect();
        store.deliver_many(a, &refs, T0).unwrap();
    }
    let (mut n, mut mid) = (0, 0);
    for it in 0..iterations() {
        let acks = run_and_kill(dir.path(), "rewrap", 400 + it as u64, &[]);
        n += acks.len();
        mid += usize::from(!acks.iter().any(|a| a == "finished"));
        let store = open(dir.path());
        let mut s = store.login(&mailbox(ALICE), b"pw", T0).unwrap();
        let a = s.account();
        let list = store.list(a, MailboxId::INBOX).unwrap();
        assert_eq!(list.len(), N as usize);
        let mut at_current = 0;
        for e in &list {
            let b = store.fetch(a, MailboxId::INBOX, e.uid).unwrap();
            assert_eq!(b, sent[e.uid.0 as usize - 1], "envelope byte-identical");
            let o = store.open_message_uncached(&mut s, MailboxId::INBOX, e.uid, T0).unwrap();
            // Whole at its recorded generation: its own slots at generation 0, the overlay
            // sealed to that generation's key after a re-wrap.
            let want =
                if e.key_generation == 0 { OpenedVia::Slots(0) } else { OpenedVia::RewrapOverlay };
            assert_eq!(o.via, want, "uid {} at generation {}", e.uid.0, e.key_generation);
            assert_eq!(tx.verify(o), format!("payload-{:05}", e.uid.0 - 1), "body intact");
            if Some(e.key_generation) == s.current_generation() {
                at_current += 1;
            }
        }
        let rotated = acks.iter().find_map(|a| a.strip_prefix("rotated "));
        if let Some(rotated) = rotated {
            // An acknowledged rotation is durable.
            assert_eq!(s.current_generation(), Some(rotated.parse().unwrap()));
        }
        if acks.iter().any(|a| a == "finished") {
            assert_eq!(at_current, N as usize);
        } else if let Some(done) = acks.iter().rev().find_map(|a| a.strip_prefix("progress "))
            && rotated.is_some()
        {
            // Acknowledged re-wrap progress toward the acknowledged generation is durable.
            assert!(at_current >= done.parse::<usize>().unwrap());
        }
    }
    eprintln!(
        "crash harness: slot re-wrap: {} kills ({mid} before the re-wrap finished), {n} acknowledged steps verified",
        iterations()
    );
}
