//! Power-cut harness (`spec/storage.md` §10): the scenarios of `crash.rs`, in process, on a
//! [`PowerCutFs`]. Threads run store operations and record each acknowledged one; at a random
//! moment a cut is armed, and it comes at one of the next few changes to a file (so it lands
//! between a write and its sync as often as anywhere). A cut keeps only what was synced (a
//! SIGKILL keeps the page cache, so `crash.rs` cannot see a missing `fdatasync`). Every
//! operation after the cut fails, so the threads stop; the old store is dropped (its files
//! failing), a store is opened on what the cut left, and the invariants of `crash.rs` are
//! checked.
//!
//! A *torn* cut also keeps a random part of what was written but not synced, page by page
//! ([`CutMode::Torn`]): redb's commits (1-phase with checksums) and the delivery log's
//! records (checksummed, `spec/storage.md` §4.1) must both survive that.
//!
//! Iterations per scenario: 5 by default; `DIME_CRASH_ITERATIONS` as for `crash.rs`, e.g.
//! `DIME_CRASH_ITERATIONS=200 cargo test -p dime-store --release --test powercut`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;
use common::after_crash::{self, ALICE, FLAGGED};
use common::*;
use dime_core::RngCore;
use dime_core::crypto::default_provider;
use dime_store::{
    Accounts, CutMode, Deliveries, MailboxId, Mailboxes, PowerCutFs, Recovery, Store, Uid,
};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Where the store lives in the in-memory file system.
const ROOT: &str = "/powercut";

fn iterations() -> usize {
    std::env::var("DIME_CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(5)
}

fn open_on(fs: &PowerCutFs) -> Store {
    Store::open_with_fs(config(Path::new(ROOT)), default_provider(), fs).unwrap()
}

/// How the power goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Only what was synced survives.
    Clean,
    /// What was synced survives, and a random part of the rest, torn page by page.
    Torn,
}

/// The operations acknowledged so far, as the threads report them.
#[derive(Default)]
struct Acks {
    lines: Mutex<Vec<String>>,
    /// Set after the cut: an operation that touches no file (served from a cache) would
    /// otherwise go on succeeding.
    cut: AtomicBool,
}

impl Acks {
    fn push(&self, line: String) {
        self.lines.lock().unwrap().push(line);
    }

    /// Whether the power is still on: the threads stop when it is not.
    fn on(&self) -> bool {
        !self.cut.load(Ordering::SeqCst)
    }
}

/// Opens a store on `fs`, runs `work` on it from `threads` threads (each returns at its first
/// error, or once [`Acks::on`] says the power is gone), cuts the power after a random delay
/// below `window`, drops the store (whose files now fail: it must not panic) and returns the
/// file system as the cut left it, with the acknowledged lines.
fn run_and_cut(
    fs: &PowerCutFs,
    cut: Cut,
    tag: u64,
    threads: usize,
    window: Duration,
    work: impl Fn(&Store, usize, &Acks) + Sync,
) -> (PowerCutFs, Vec<String>) {
    let store = open_on(fs);
    let acks = Acks::default();
    let mut rng = dime_testkit::seeded_rng(tag ^ 0x5eed);
    let delay = Duration::from_micros(rng.next_u64() % window.as_micros() as u64);
    let after = std::thread::scope(|sc| {
        for w in 0..threads {
            let (store, acks, work) = (&store, &acks, &work);
            sc.spawn(move || work(store, w, acks));
        }
        std::thread::sleep(delay);
        // The cut comes at one of the next few changes to a file, so that it lands between
        // a write and its sync as often as anywhere else; if none comes (the work is done),
        // soon after anyway.
        let mode = match cut {
            Cut::Clean => CutMode::Clean,
            Cut::Torn => CutMode::Torn(Box::new(dime_testkit::seeded_rng(rng.next_u64()))),
        };
        fs.arm_cut(1 + rng.next_u64() % 8, mode);
        let after = fs.wait_cut(Duration::from_millis(50));
        // The threads see their operations fail, or this, and return; the scope waits for
        // them. What they acknowledge after the cut is checked like the rest: it must have
        // been durable before.
        acks.cut.store(true, Ordering::SeqCst);
        after
    });
    drop(store);
    (after, acks.lines.into_inner().unwrap())
}

/// How many cuts found unsynced writes in flight, per file name.
#[derive(Default)]
struct InFlight(BTreeMap<String, usize>);

impl InFlight {
    fn count(&mut self, after: &PowerCutFs) {
        for path in after.unsynced_at_cut() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            *self.0.entry(name).or_default() += 1;
        }
    }
}

impl std::fmt::Display for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cuts with unsynced writes in flight:")?;
        if self.0.is_empty() {
            write!(f, " none")?;
        }
        for (name, n) in &self.0 {
            write!(f, " {name} {n}")?;
        }
        Ok(())
    }
}

fn setup(fs: &PowerCutFs) {
    let store = open_on(fs);
    create(&store, &org(1), &mailbox(ALICE), b"pw", Recovery::None);
}

fn delivery(cut: Cut) {
    let started = Instant::now();
    let mut in_flight = InFlight::default();
    let mut fs = PowerCutFs::new();
    setup(&fs);
    let alice = mailbox(ALICE);
    let mut acked = Vec::new();
    let mut replayed = 0;
    for it in 0..iterations() {
        let tag = 100 + it as u64;
        let (after, acks) =
            run_and_cut(&fs, cut, tag, 4, Duration::from_millis(200), |store, w, acks| {
                for i in (0..).take_while(|_| acks.on()) {
                    let body = format!("m-{tag}-{w}-{i}-").repeat(20);
                    if store.deliver(&alice, body.as_bytes(), T0).is_err() {
                        return;
                    }
                    acks.push(body);
                }
            });
        in_flight.count(&after);
        fs = after;
        acked.extend(acks);
        let store = open_on(&fs);
        replayed += store.replayed_deliveries();
        after_crash::deliveries(&store, &acked, "power cut");
    }
    eprintln!(
        "power-cut harness ({cut:?}): delivery: {} cuts, {} acknowledged deliveries verified, {} \
         of them given back by the delivery log, in {:.1} s; {in_flight}",
        iterations(),
        acked.len(),
        replayed,
        started.elapsed().as_secs_f64()
    );
}

fn flags(cut: Cut) {
    let started = Instant::now();
    let mut in_flight = InFlight::default();
    let mut fs = PowerCutFs::new();
    setup(&fs);
    {
        let store = open_on(&fs);
        for i in 0..FLAGGED as u8 {
            store.deliver(&mailbox(ALICE), &[i; 32], T0).unwrap();
        }
    }
    let alice = mailbox(ALICE);
    let mut last: HashMap<u32, String> = HashMap::new();
    let mut n = 0;
    for it in 0..iterations() {
        let tag = 200 + it as u64;
        let (after, acks) =
            run_and_cut(&fs, cut, tag, 1, Duration::from_millis(200), |store, _, acks| {
                let mut rng = dime_testkit::seeded_rng(tag);
                let Ok(mut s) = store.login(&alice, b"pw", T0) else { return };
                for n in (0u64..).take_while(|_| acks.on()) {
                    let uid = (rng.next_u32() % FLAGGED) + 1;
                    let flag = format!("v{tag:04}{n:08}");
                    if store
                        .set_flags(&mut rng, &mut s, MailboxId::INBOX, Uid(uid), &[&flag], T0)
                        .is_err()
                    {
                        return;
                    }
                    acks.push(format!("{uid} {flag}"));
                }
            });
        in_flight.count(&after);
        fs = after;
        for a in acks {
            let (uid, flag) = a.split_once(' ').unwrap();
            last.insert(uid.parse().unwrap(), flag.to_owned());
            n += 1;
        }
        after_crash::flags(&open_on(&fs), &mut last);
    }
    eprintln!(
        "power-cut harness ({cut:?}): flags: {} cuts, {n} acknowledged updates verified, in \
         {:.1} s; {in_flight}",
        iterations(),
        started.elapsed().as_secs_f64()
    );
}

fn password(cut: Cut) {
    let started = Instant::now();
    let mut in_flight = InFlight::default();
    let mut fs = PowerCutFs::new();
    {
        let store = open_on(&fs);
        create(&store, &org(1), &mailbox(ALICE), b"pw0", Recovery::None);
    }
    let alice = mailbox(ALICE);
    let mut current = 0u64;
    let mut n = 0;
    for it in 0..iterations() {
        let tag = 300 + it as u64;
        let (after, acks) =
            run_and_cut(&fs, cut, tag, 1, Duration::from_millis(300), |store, _, acks| {
                let mut rng = dime_testkit::seeded_rng(tag);
                for n in (current..).take_while(|_| acks.on()) {
                    let Ok(mut s) = store.login(&alice, format!("pw{n}").as_bytes(), T0) else {
                        return;
                    };
                    let new = format!("pw{}", n + 1);
                    if store.change_password(&mut rng, &mut s, new.as_bytes(), T0).is_err() {
                        return;
                    }
                    acks.push(format!("{}", n + 1));
                }
            });
        in_flight.count(&after);
        fs = after;
        n += acks.len();
        let acked = acks.last().map(|a| a.parse().unwrap()).unwrap_or(current);
        current = after_crash::password(&open_on(&fs), acked);
    }
    eprintln!(
        "power-cut harness ({cut:?}): password: {} cuts, {n} acknowledged changes verified, in \
         {:.1} s; {in_flight}",
        iterations(),
        started.elapsed().as_secs_f64()
    );
}

fn slot_rewrap(cut: Cut) {
    // Real envelopes (spec/envelope.md), re-wrapped through key overlays (spec/envelope.md
    // §16): each cut lands during a rotation or a re-wrap; every iteration rotates again, so
    // later runs re-wrap from the overlays of earlier ones.
    let started = Instant::now();
    let mut in_flight = InFlight::default();
    let mut fs = PowerCutFs::new();
    let tx = Sender::new();
    let alice = mailbox(ALICE);
    setup(&fs);
    let sent = after_crash::deliver_rewrap_messages(&open_on(&fs), &tx);
    let (mut n, mut mid) = (0, 0);
    for it in 0..iterations() {
        let tag = 400 + it as u64;
        let (after, acks) =
            run_and_cut(&fs, cut, tag, 1, Duration::from_millis(400), |store, _, acks| {
                let mut rng = dime_testkit::seeded_rng(tag);
                let Ok(mut s) = store.login(&alice, b"pw", T0) else { return };
                if store.rotate_keys(&mut rng, &mut s, &org(1), T0).is_err() {
                    return;
                }
                acks.push(format!("rotated {}", s.current_generation().unwrap()));
                // Spread the batches over the cut window: the cut lands before, inside or
                // between transactions.
                let mut pace = dime_testkit::seeded_rng(tag ^ 0xbeef);
                let done = store.rewrap_slots(&mut rng, &mut s, 2, T0, &mut |p| {
                    acks.push(format!("progress {}", p.done));
                    std::thread::sleep(Duration::from_millis(u64::from(pace.next_u32() % 16)));
                });
                if done.is_ok() {
                    acks.push("finished".into());
                }
            });
        in_flight.count(&after);
        fs = after;
        n += acks.len();
        mid += usize::from(!acks.iter().any(|a| a == "finished"));
        after_crash::rewrap(&open_on(&fs), &tx, &sent, &acks);
    }
    eprintln!(
        "power-cut harness ({cut:?}): slot re-wrap: {} cuts ({mid} before the re-wrap \
         finished), {n} acknowledged steps verified, in {:.1} s; {in_flight}",
        iterations(),
        started.elapsed().as_secs_f64()
    );
}

fn imap(cut: Cut) {
    // APPEND, bulk STORE and EXPUNGE into the inbox (`spec/storage.md` §5.1-§5.3), each
    // durable before it is acknowledged.
    let started = Instant::now();
    let mut in_flight = InFlight::default();
    let mut fs = PowerCutFs::new();
    setup(&fs);
    let mut st = after_crash::ImapState::default();
    for it in 0..iterations() {
        let tag = 500 + it as u64;
        let (after, acks) =
            run_and_cut(&fs, cut, tag, 1, Duration::from_millis(200), |store, _, acks| {
                after_crash::imap_work(store, tag, &mut |a| acks.push(a), &|| acks.on());
            });
        in_flight.count(&after);
        fs = after;
        after_crash::imap(&open_on(&fs), &mut st, &acks);
    }
    eprintln!(
        "power-cut harness ({cut:?}): imap: {} cuts, {} acknowledged appends, {} flag changes \
         and {} expunges verified (UIDNEXT {}, HIGHESTMODSEQ {}), in {:.1} s; {in_flight}",
        iterations(),
        st.appends,
        st.stores,
        st.expunges,
        st.uid_next,
        st.modseq,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn power_cut_during_append_store_and_expunge_keeps_every_acknowledged_change() {
    imap(Cut::Clean);
}

#[test]
fn torn_power_cut_during_append_store_and_expunge_keeps_every_acknowledged_change() {
    imap(Cut::Torn);
}

#[test]
fn power_cut_during_delivery_loses_no_acknowledged_message() {
    delivery(Cut::Clean);
}

#[test]
fn power_cut_during_flag_updates_keeps_the_last_acknowledged_flags_or_a_later_one() {
    flags(Cut::Clean);
}

#[test]
fn power_cut_during_password_change_leaves_exactly_one_password_working() {
    password(Cut::Clean);
}

#[test]
fn power_cut_during_slot_rewrap_leaves_every_message_whole_at_one_generation() {
    slot_rewrap(Cut::Clean);
}

#[test]
fn torn_power_cut_during_delivery_loses_no_acknowledged_message() {
    delivery(Cut::Torn);
}

#[test]
fn torn_power_cut_during_flag_updates_keeps_the_last_acknowledged_flags_or_a_later_one() {
    flags(Cut::Torn);
}

#[test]
fn torn_power_cut_during_password_change_leaves_exactly_one_password_working() {
    password(Cut::Torn);
}

#[test]
fn torn_power_cut_during_slot_rewrap_leaves_every_message_whole_at_one_generation() {
    slot_rewrap(Cut::Torn);
}
