//! What must hold after a crash (`spec/storage.md` §1, §10), checked the same way by both
//! harnesses: `crash.rs` (a killed process) and `powercut.rs` (a power cut).

use super::{Sender, T0, mailbox};
use dime_store::{Accounts, Deliveries, MailboxId, Mailboxes, OpenedVia, Store, Uid};
use std::collections::{HashMap, HashSet};

/// The one account of the scenarios.
pub const ALICE: &str = "alice@example.org";
/// Messages in the re-wrap scenario.
pub const REWRAP_MESSAGES: u32 = 60;
/// Messages (UIDs 1 to this) whose flags the flag scenario sets.
pub const FLAGGED: u32 = 20;

/// Every acknowledged delivery (its body, a unit repeated 20 times) is stored whole, nothing
/// is stored in part, the quota counts exactly what is stored, and UIDs increase.
pub fn deliveries(store: &Store, acked: &[String], crash: &str) {
    let a = store.account_of(&mailbox(ALICE)).unwrap();
    let list = store.list(a, MailboxId::INBOX).unwrap();
    let mut bodies = HashSet::new();
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
    for body in acked {
        assert!(bodies.contains(body), "acknowledged delivery lost in a {crash}: {body:.24}…");
    }
    let q = store.quota(a).unwrap();
    assert_eq!((q.used, q.messages), (total, list.len() as u64));
    let uids: Vec<u32> = list.iter().map(|e| e.uid.0).collect();
    assert!(uids.windows(2).all(|w| w[0] < w[1]));
}

/// Each message's flag is the last acknowledged one or a later one; then what is stored
/// (acknowledged or not) becomes the floor for the next crash. HIGHESTMODSEQ covers every
/// entry.
pub fn flags(store: &Store, last: &mut HashMap<u32, String>) {
    let alice = mailbox(ALICE);
    assert!(store.account_of(&alice).is_ok(), "the account survives the crash");
    let mut s = store.login(&alice, b"pw", T0).unwrap();
    for uid in 1..=FLAGGED {
        let flags = store.flags(&mut s, MailboxId::INBOX, Uid(uid), T0).unwrap();
        if let Some(want) = last.get(&uid) {
            assert_eq!(flags.len(), 1);
            assert!(flags[0] >= *want, "uid {uid}: {:?} older than acknowledged {want}", flags[0]);
        }
        if let Some(f) = flags.last() {
            last.insert(uid, f.clone());
        }
    }
    let boxes = store.mailboxes(&mut s, T0).unwrap();
    let a = s.account();
    let max_entry =
        store.list(a, MailboxId::INBOX).unwrap().iter().map(|e| e.modseq).max().unwrap();
    assert!(boxes[0].highest_modseq >= max_entry);
}

/// Exactly one of `pw<acked>` and `pw<acked + 1>` opens the account (the change after the
/// last acknowledged one happened whole or not at all); returns the number of the one that
/// does.
pub fn password(store: &Store, acked: u64) -> u64 {
    let alice = mailbox(ALICE);
    assert!(store.account_of(&alice).is_ok(), "the account survives the crash");
    let old = store.login(&alice, format!("pw{acked}").as_bytes(), T0).is_ok();
    let new = store.login(&alice, format!("pw{}", acked + 1).as_bytes(), T0).is_ok();
    assert!(old ^ new, "exactly one of pw{acked} / pw{} works (old {old}, new {new})", acked + 1);
    if old { acked } else { acked + 1 }
}

/// Seals the re-wrap scenario's messages to alice and delivers them; returns the envelopes.
pub fn deliver_rewrap_messages(store: &Store, tx: &Sender) -> Vec<Vec<u8>> {
    let alice = mailbox(ALICE);
    let a = store.account_of(&alice).unwrap();
    let sent: Vec<Vec<u8>> = (0..REWRAP_MESSAGES)
        .map(|i| tx.seal(store, &alice, &format!("payload-{i:05}"), u64::from(i)))
        .collect();
    let refs: Vec<&[u8]> = sent.iter().map(Vec::as_slice).collect();
    store.deliver_many(a, &refs, T0).unwrap();
    sent
}

/// Every envelope is byte-identical to what was sent, opens at its recorded generation (its
/// slots at generation 0, its re-wrap overlay after) and verifies; an acknowledged rotation is
/// durable, and so is acknowledged re-wrap progress (`acks`: "rotated G", "progress N",
/// "finished").
pub fn rewrap(store: &Store, tx: &Sender, sent: &[Vec<u8>], acks: &[String]) {
    let mut s = store.login(&mailbox(ALICE), b"pw", T0).unwrap();
    let a = s.account();
    let list = store.list(a, MailboxId::INBOX).unwrap();
    assert_eq!(list.len(), REWRAP_MESSAGES as usize);
    let mut at_current = 0;
    for e in &list {
        let b = store.fetch(a, MailboxId::INBOX, e.uid).unwrap();
        assert_eq!(b, sent[e.uid.0 as usize - 1], "envelope byte-identical");
        let o = store.open_message_uncached(&mut s, MailboxId::INBOX, e.uid, T0).unwrap();
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
        assert_eq!(s.current_generation(), Some(rotated.parse().unwrap()), "rotation durable");
    }
    if acks.iter().any(|a| a == "finished") {
        assert_eq!(at_current, REWRAP_MESSAGES as usize);
    } else if let Some(done) = acks.iter().rev().find_map(|a| a.strip_prefix("progress "))
        && rotated.is_some()
    {
        assert!(at_current >= done.parse::<usize>().unwrap(), "re-wrap progress durable");
    }
}
