//! Purged and deleted mail leaves the store's files (`spec/storage.md` §12): the delivery log
//! right after a purge or a deletion, every file after a compaction. Each test searches the
//! raw files for 32 octets from the middle of each removed envelope (random octets: the store
//! keeps envelopes opaque).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{T0, create, mailbox, open, org};
use dime_core::Mailbox;
use dime_store::{
    AccountId, Accounts, Deliveries, MailboxId, Mailboxes, Recovery, Store, Timestamp, Uid,
};
use rand_core::RngCore;
use std::path::Path;

const DAY: u64 = 24 * 3600;
/// At `LATER`, a purge of mail older than 30 days removes what arrived at `T0`.
const LATER: Timestamp = Timestamp(T0.0 + 40 * DAY);

/// `n` envelopes of random octets, 600 to 4,000 long: each is its own byte sequence.
fn envelopes(seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut rng = dime_testkit::seeded_rng(seed);
    (0..n)
        .map(|_| {
            let mut e = vec![0u8; 600 + (rng.next_u32() % 3400) as usize];
            rng.fill_bytes(&mut e);
            e
        })
        .collect()
}

/// 32 octets from the middle of an envelope: what the searches look for.
fn window(e: &[u8]) -> &[u8] {
    let m = e.len() / 2 - 16;
    &e[m..m + 32]
}

/// Whether any file under `dir` (the data directory and the vault's) holds `e`'s window.
fn on_disk(dir: &Path, e: &[u8]) -> bool {
    common::files(dir).iter().any(|f| std::fs::read(f).unwrap().windows(32).any(|w| w == window(e)))
}

fn in_log(dir: &Path, e: &[u8]) -> bool {
    let log = std::fs::read(dir.join("data/deliveries.log")).unwrap();
    log.windows(32).any(|w| w == window(e))
}

fn account(store: &Store, seed: u64, address: &str) -> (Mailbox, AccountId) {
    let addr = mailbox(address);
    create(store, &org(seed), &addr, b"pw", Recovery::None);
    let a = store.account_of(&addr).unwrap();
    (addr, a)
}

/// Delivers each envelope on its own (each through the delivery log) at `now`.
fn deliver(store: &Store, to: &Mailbox, envelopes: &[Vec<u8>], now: Timestamp) -> Vec<Uid> {
    envelopes.iter().map(|e| store.deliver(to, e, now).unwrap().uid).collect()
}

fn reads_back(store: &Store, a: AccountId, uids: &[Uid], envelopes: &[Vec<u8>]) {
    for (uid, e) in uids.iter().zip(envelopes) {
        let got = store.fetch(a, MailboxId::INBOX, *uid).unwrap();
        assert!(&got == e, "{uid:?} reads back other octets");
    }
}

#[test]
fn a_purge_leaves_no_purged_envelope_in_the_delivery_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (alice, a) = account(&store, 1, "alice@example.org");
    let kept = envelopes(2, 3);
    let purged = envelopes(3, 12);
    let kept_uids = deliver(&store, &alice, &kept, LATER);
    deliver(&store, &alice, &purged, T0);
    // The last records written are in the log (a checkpoint lets later records overwrite
    // earlier ones; it erases none).
    assert!(purged.iter().any(|e| in_log(dir.path(), e)), "the log holds deliveries");
    assert_eq!(store.purge_older_than(a, 30, LATER).unwrap(), 12);
    for (i, e) in purged.iter().enumerate() {
        assert!(!in_log(dir.path(), e), "purged envelope {i} is still in the delivery log");
    }
    reads_back(&store, a, &kept_uids, &kept);
    // The log goes on; a store opened again replays nothing and reads the same.
    let more = envelopes(4, 2);
    let more_uids = deliver(&store, &alice, &more, LATER);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.replayed_deliveries(), 0);
    reads_back(&store, a, &kept_uids, &kept);
    reads_back(&store, a, &more_uids, &more);
    assert_eq!(store.list(a, MailboxId::INBOX).unwrap().len(), 5);
}

#[test]
fn a_deletion_leaves_none_of_the_accounts_envelopes_in_the_delivery_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (bob, b) = account(&store, 5, "bob@example.org");
    let (alice, _) = account(&store, 6, "alice@example.org");
    let bobs = envelopes(7, 3);
    let bob_uids = deliver(&store, &bob, &bobs, T0);
    let alices = envelopes(8, 10);
    deliver(&store, &alice, &alices, T0);
    assert!(alices.iter().any(|e| in_log(dir.path(), e)), "the log holds deliveries");
    store.delete_account(&alice).unwrap();
    for (i, e) in alices.iter().enumerate() {
        assert!(!in_log(dir.path(), e), "deleted envelope {i} is still in the delivery log");
    }
    reads_back(&store, b, &bob_uids, &bobs);
}

#[test]
fn compaction_after_a_purge_leaves_no_octets_of_a_purged_envelope_in_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (alice, a) = account(&store, 11, "alice@example.org");
    let kept = envelopes(12, 4);
    let purged = envelopes(13, 24);
    let mut kept_uids = deliver(&store, &alice, &kept[..2], LATER);
    deliver(&store, &alice, &purged[..12], T0);
    // Delivered in one durable transaction, past the log.
    let many: Vec<&[u8]> = purged[12..].iter().map(Vec::as_slice).collect();
    store.deliver_many(a, &many, T0).unwrap();
    kept_uids.extend(deliver(&store, &alice, &kept[2..], LATER));
    assert_eq!(store.purge_older_than(a, 30, LATER).unwrap(), 24);
    // What the issue saw: the purge alone leaves octets in the database's free pages.
    assert!(purged.iter().any(|e| on_disk(dir.path(), e)), "the purge alone left nothing");
    assert!(store.compact(LATER).unwrap());
    for (i, e) in purged.iter().enumerate() {
        assert!(!on_disk(dir.path(), e), "purged envelope {i} is still in a file");
    }
    assert!(kept.iter().all(|e| on_disk(dir.path(), e)));
    reads_back(&store, a, &kept_uids, &kept);
    // The compacted store goes on, and opens again.
    let more = envelopes(14, 3);
    let more_uids = deliver(&store, &alice, &more, LATER);
    reads_back(&store, a, &more_uids, &more);
    drop(store);
    let store = open(dir.path());
    reads_back(&store, a, &kept_uids, &kept);
    reads_back(&store, a, &more_uids, &more);
    assert_eq!(store.list(a, MailboxId::INBOX).unwrap().len(), 7);
    assert!(!dir.path().join("data/store.redb.compact").exists());
}

#[test]
fn compaction_after_a_deletion_leaves_no_octets_of_the_accounts_mail_in_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (bob, b) = account(&store, 21, "bob@example.org");
    let (alice, _) = account(&store, 22, "alice@example.org");
    let bobs = envelopes(23, 3);
    let bob_uids = deliver(&store, &bob, &bobs, T0);
    let alices = envelopes(24, 16);
    deliver(&store, &alice, &alices, T0);
    store.delete_account(&alice).unwrap();
    assert!(alices.iter().any(|e| on_disk(dir.path(), e)), "the deletion alone left nothing");
    assert!(store.compact(LATER).unwrap());
    for (i, e) in alices.iter().enumerate() {
        assert!(!on_disk(dir.path(), e), "deleted envelope {i} is still in a file");
    }
    reads_back(&store, b, &bob_uids, &bobs);
    drop(store);
    let store = open(dir.path());
    reads_back(&store, b, &bob_uids, &bobs);
    assert!(store.account_of(&alice).is_err());
}

#[test]
fn deliveries_go_on_while_the_store_compacts_and_none_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (alice, a) = account(&store, 31, "alice@example.org");
    let all: Vec<Vec<Vec<u8>>> = (0..4).map(|t| envelopes(40 + t, 40)).collect();
    let (st, to) = (&store, &alice);
    let uids = std::thread::scope(|s| {
        let writers: Vec<_> =
            all.iter().map(|mine| s.spawn(move || deliver(st, to, mine, T0))).collect();
        for _ in 0..3 {
            assert!(st.compact(LATER).unwrap());
            st.list(a, MailboxId::INBOX).unwrap();
        }
        writers.into_iter().map(|w| w.join().unwrap()).collect::<Vec<_>>()
    });
    for (mine, uids) in all.iter().zip(&uids) {
        reads_back(&store, a, uids, mine);
    }
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.list(a, MailboxId::INBOX).unwrap().len(), 160);
    for (mine, uids) in all.iter().zip(&uids) {
        reads_back(&store, a, uids, mine);
    }
}

#[test]
fn compaction_after_an_expunge_leaves_no_octets_of_the_expunged_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (alice, a) = account(&store, 51, "alice@example.org");
    let mail = envelopes(52, 8);
    let uids = deliver(&store, &alice, &mail, T0);
    assert_eq!(store.expunge(a, MailboxId::INBOX, &uids[..5]).unwrap(), 5);
    assert!(store.compact(LATER).unwrap());
    for (i, e) in mail[..5].iter().enumerate() {
        assert!(!on_disk(dir.path(), e), "expunged envelope {i} is still in a file");
    }
    reads_back(&store, a, &uids[5..], &mail[5..]);
}

#[test]
fn a_copy_left_by_an_unfinished_compaction_is_removed_when_the_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (alice, a) = account(&store, 61, "alice@example.org");
    let purged = envelopes(62, 1);
    deliver(&store, &alice, &purged, T0);
    drop(store);
    // What a compaction stopped before its rename leaves: copies of the databases, here
    // holding an envelope purged since.
    let copies =
        [dir.path().join("data/store.redb.compact"), dir.path().join("vault/vault.redb.compact")];
    for c in &copies {
        std::fs::write(c, &purged[0]).unwrap();
    }
    let store = open(dir.path());
    for c in &copies {
        assert!(!c.exists(), "{c:?} is left");
    }
    assert_eq!(store.purge_older_than(a, 30, LATER).unwrap(), 1);
}
