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

/// The IMAP scenario's work (`spec/storage.md` §10): as alice, in her inbox, while `on()`, an
/// APPEND (two in four steps), a STORE of a new keyword on the last 8 messages, an EXPUNGE of
/// the oldest message (when more than 4 are there); each acknowledged as [`imap`] reads it.
/// Returns at the first error.
pub fn imap_work(store: &Store, tag: u64, ack: &mut dyn FnMut(String), on: &dyn Fn() -> bool) {
    let mut rng = dime_testkit::seeded_rng(tag);
    let Ok(mut s) = store.login(&mailbox(ALICE), b"pw", T0) else { return };
    let inbox = MailboxId::INBOX;
    let Ok(list) = store.list(s.account(), inbox) else { return };
    let mut present: Vec<u32> = list.iter().map(|e| e.uid.0).collect();
    for n in (0u64..).take_while(|_| on()) {
        let f = format!("f{tag:04}{n:08}");
        match n % 4 {
            0 | 1 => {
                let body = format!("ap-{tag}-{n}-").repeat(8);
                let Ok(ap) =
                    store.append(&mut rng, &mut s, inbox, body.as_bytes(), &[&f], T0, None, T0)
                else {
                    return;
                };
                ack(format!("A {} {} {f} {body}", ap.uid.0, ap.modseq));
                present.push(ap.uid.0);
            }
            2 => {
                let changes: Vec<(Uid, Vec<String>)> =
                    present.iter().rev().take(8).map(|u| (Uid(*u), vec![f.clone()])).collect();
                let Ok(done) = store.store_flags(&mut rng, &mut s, inbox, &changes, None, T0)
                else {
                    return;
                };
                for (uid, modseq) in done.applied {
                    ack(format!("S {} {modseq} {f}", uid.0));
                }
            }
            _ if present.len() > 4 => {
                let uid = present.remove(0);
                ack(format!("e {uid}"));
                if store.expunge(s.account(), inbox, &[Uid(uid)]).is_err() {
                    return;
                }
                ack(format!("E {uid}"));
            }
            _ => {}
        }
    }
}

/// What the IMAP scenario (APPEND, bulk STORE, EXPUNGE into the inbox) has established so
/// far, across crashes.
#[derive(Default)]
pub struct ImapState {
    /// Each UID ever seen or acknowledged, with its message's body: a UID never holds another.
    pub bodies: HashMap<u32, String>,
    /// The last acknowledged (or later seen) keyword of each UID: its flags are this or later.
    pub floor: HashMap<u32, String>,
    /// UIDs whose expunge was acknowledged, or which an expunge asked for took away.
    pub expunged: HashSet<u32>,
    /// The highest MODSEQ acknowledged or seen: HIGHESTMODSEQ never goes below it.
    pub modseq: u64,
    /// The highest UIDNEXT seen: it never decreases.
    pub uid_next: u32,
    /// Acknowledged appends, stores and expunges, for the report.
    pub appends: usize,
    /// Acknowledged flag changes.
    pub stores: usize,
    /// Acknowledged expunges.
    pub expunges: usize,
}

/// After a crash in the IMAP scenario: every acknowledged append is there (unless an expunge
/// of it was asked for) with its body and its last acknowledged keyword or a later one; an
/// acknowledged expunge is durable and reported by `vanished_since`; no UID holds two
/// messages; UIDNEXT and HIGHESTMODSEQ never go back. `acks`: `A uid modseq keyword body`,
/// `S uid modseq keyword`, `e uid` (asked), `E uid` (acknowledged).
pub fn imap(store: &Store, st: &mut ImapState, acks: &[String]) {
    let mut asked = HashSet::new();
    for a in acks {
        let f: Vec<&str> = a.split(' ').collect();
        match f[0] {
            "A" => {
                let (uid, modseq) = (f[1].parse().unwrap(), f[2].parse::<u64>().unwrap());
                let body = f[4].to_string();
                if let Some(old) = st.bodies.insert(uid, body.clone()) {
                    assert_eq!(old, body, "UID {uid} reused");
                }
                st.floor.insert(uid, f[3].to_string());
                st.modseq = st.modseq.max(modseq);
                st.appends += 1;
            }
            "S" => {
                let (uid, modseq) = (f[1].parse().unwrap(), f[2].parse::<u64>().unwrap());
                let e = st.floor.entry(uid).or_default();
                if f[3] > e.as_str() {
                    *e = f[3].to_string();
                }
                st.modseq = st.modseq.max(modseq);
                st.stores += 1;
            }
            "e" => {
                asked.insert(f[1].parse::<u32>().unwrap());
            }
            "E" => {
                st.expunged.insert(f[1].parse().unwrap());
                st.expunges += 1;
            }
            other => panic!("unknown ack {other}"),
        }
    }
    let alice = mailbox(ALICE);
    let mut s = store.login(&alice, b"pw", T0).unwrap();
    let a = s.account();
    let inbox = MailboxId::INBOX;
    let present: HashMap<u32, u64> =
        store.list(a, inbox).unwrap().into_iter().map(|e| (e.uid.0, e.modseq)).collect();
    let flags: HashMap<u32, Vec<String>> =
        store.flags_all(&mut s, inbox, T0).unwrap().into_iter().map(|(u, _, f)| (u.0, f)).collect();
    for (uid, body) in &st.bodies {
        if st.expunged.contains(uid) {
            assert!(!present.contains_key(uid), "acknowledged expunge of UID {uid} lost");
        } else if !present.contains_key(uid) {
            assert!(asked.contains(uid), "acknowledged append UID {uid} lost");
        } else {
            let got = store.fetch(a, inbox, Uid(*uid)).unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), *body, "UID {uid} holds its message");
        }
    }
    for (uid, modseq) in &present {
        let got = String::from_utf8(store.fetch(a, inbox, Uid(*uid)).unwrap()).unwrap();
        let held = st.bodies.entry(*uid).or_insert_with(|| got.clone());
        assert_eq!(*held, got, "UID {uid} reused");
        let f = &flags[uid];
        assert_eq!(f.len(), 1, "UID {uid}: one keyword");
        if let Some(want) = st.floor.get(uid) {
            assert!(f[0] >= *want, "UID {uid}: {} older than acknowledged {want}", f[0]);
        }
        st.floor.insert(*uid, f[0].clone());
        st.modseq = st.modseq.max(*modseq);
    }
    for uid in asked {
        if !present.contains_key(&uid) {
            st.expunged.insert(uid);
        }
    }
    let vanished: HashSet<u32> =
        store.vanished_since(a, inbox, 0).unwrap().into_iter().map(|u| u.0).collect();
    assert!(st.expunged.is_subset(&vanished), "every expunged UID is reported as vanished");
    let info = store.mailbox(&mut s, inbox, T0).unwrap();
    let max_uid = st.bodies.keys().copied().max().unwrap_or(0);
    assert!(info.uid_next > max_uid, "UIDNEXT {} not above UID {max_uid}", info.uid_next);
    assert!(info.uid_next >= st.uid_next, "UIDNEXT went back");
    assert!(info.highest_modseq >= st.modseq, "HIGHESTMODSEQ went back");
    st.uid_next = info.uid_next;
    st.modseq = info.highest_modseq;
}
