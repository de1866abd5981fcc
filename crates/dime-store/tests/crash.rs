//! Crash harness (`spec/storage.md` §10): a child process runs store operations and reports
//! each acknowledged one on stdout; the parent kills it with SIGKILL at a random moment, reopens
//! the store and checks that every acknowledged operation is present and intact and that every
//! unacknowledged one is all or nothing.
//!
//! Iterations per scenario: 5 by default; set `DIME_CRASH_ITERATIONS` for a long run, e.g.
//! `DIME_CRASH_ITERATIONS=200 cargo test -p dime-store --release --test crash`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr, clippy::print_stdout)]

mod common;
use common::after_crash::{self, ALICE, FLAGGED};
use common::*;
use dime_core::RngCore;
use dime_store::{Accounts, Deliveries, MailboxId, Mailboxes, Recovery, Store, Uid};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

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
                let uid = (rng.next_u32() % FLAGGED) + 1;
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
        "imap" => after_crash::imap_work(&store, tag, &mut ack, &|| true),
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
        after_crash::deliveries(&store, &acked, "crash");
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
        for i in 0..FLAGGED as u8 {
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
        after_crash::flags(&open(dir.path()), &mut last);
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
        current = after_crash::password(&open(dir.path()), acked);
    }
    eprintln!("crash harness: password: {} kills, {n} acknowledged changes verified", iterations());
}

#[test]
fn crash_during_append_store_and_expunge_keeps_every_acknowledged_change() {
    // APPEND, bulk STORE and EXPUNGE (`spec/storage.md` §5.1-§5.3).
    let dir = tempfile::tempdir().unwrap();
    drop(setup(dir.path()));
    let mut st = after_crash::ImapState::default();
    for it in 0..iterations() {
        let acks = run_and_kill(dir.path(), "imap", 500 + it as u64, &[]);
        after_crash::imap(&open(dir.path()), &mut st, &acks);
    }
    eprintln!(
        "crash harness: imap: {} kills, {} acknowledged appends, {} flag changes and {} \
         expunges verified (UIDNEXT {}, HIGHESTMODSEQ {})",
        iterations(),
        st.appends,
        st.stores,
        st.expunges,
        st.uid_next,
        st.modseq
    );
}

#[test]
fn crash_during_slot_rewrap_leaves_every_message_whole_at_one_generation() {
    // Real envelopes (spec/envelope.md), re-wrapped through key overlays (spec/envelope.md
    // §16): each kill lands during a rotation or a re-wrap; every iteration rotates again, so
    // later runs re-wrap from the overlays of earlier ones.
    let dir = tempfile::tempdir().unwrap();
    let tx = Sender::new();
    let sent = after_crash::deliver_rewrap_messages(&setup(dir.path()), &tx);
    let (mut n, mut mid) = (0, 0);
    for it in 0..iterations() {
        let acks = run_and_kill(dir.path(), "rewrap", 400 + it as u64, &[]);
        n += acks.len();
        mid += usize::from(!acks.iter().any(|a| a == "finished"));
        after_crash::rewrap(&open(dir.path()), &tx, &sent, &acks);
    }
    eprintln!(
        "crash harness: slot re-wrap: {} kills ({mid} before the re-wrap finished), {n} acknowledged steps verified",
        iterations()
    );
}
