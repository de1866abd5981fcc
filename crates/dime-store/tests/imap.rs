//! What the store keeps for IMAP4rev2, CONDSTORE/QRESYNC, UIDPLUS, SPECIAL-USE and
//! LIST-EXTENDED (`spec/storage.md` §5.1-§5.4): APPEND, bulk flags, tombstones, mailbox
//! attributes, RENAME, UIDVALIDITY, one mailbox's info. Each limit at the limit and one past.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use dime_core::crypto::default_provider;
use dime_store::{
    Accounts, Deliveries, MAX_ENVELOPE_LEN, MAX_FLAGS_LEN, MAX_MAILBOX_NAME_LEN, MAX_SUMMARY_LEN,
    MAX_TOMBSTONES, MailboxError, MailboxId, Mailboxes, NewAccount, OpenedVia, Recovery, Session,
    SpecialUse, Store, Timestamp, Uid,
};

const ALICE: &str = "alice@example.org";

fn at(secs: u64) -> Timestamp {
    Timestamp(T0.0 + secs)
}

fn alice(store: &Store) -> Session {
    create(store, &org(1), &mailbox(ALICE), b"pw", Recovery::None);
    store.login(&mailbox(ALICE), b"pw", T0).unwrap()
}

/// Delivers `n` small distinct messages to the inbox in one transaction.
fn fill(store: &Store, s: &Session, n: u32) {
    let bodies: Vec<Vec<u8>> = (0..n).map(|i| format!("message {i:06}").into_bytes()).collect();
    let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
    store.deliver_many(s.account(), &refs, T0).unwrap();
}

fn highest(store: &Store, s: &mut Session, m: MailboxId) -> u64 {
    store.mailbox(s, m, T0).unwrap().highest_modseq
}

#[test]
fn an_appended_message_opens_as_a_delivered_one_with_its_flags_date_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut s = alice(&store);
    let mut rng = dime_testkit::seeded_rng(1);
    let tx = Sender::new();
    let sent = store.create_mailbox_with(&mut rng, &mut s, "Sent", Some(SpecialUse::Sent), T0);
    let sent = sent.unwrap();
    let envelope = tx.seal(&store, &mailbox(ALICE), "appended", 7);
    let date = Timestamp(1_600_000_000);
    let before = store.quota(s.account()).unwrap();
    let ap = store
        .append(&mut rng, &mut s, sent, &envelope, &["\\Seen", "$Work"], date, Some(b"sum"), at(1))
        .unwrap();
    let info = store.mailbox(&mut s, sent, at(1)).unwrap();
    assert_eq!((ap.uid, ap.uid_validity, ap.modseq), (Uid(1), info.uid_validity, 2));
    assert_eq!((info.uid_next, info.highest_modseq, info.messages), (2, 2, 1));
    let e = store.list(s.account(), sent).unwrap()[0];
    assert_eq!((e.uid, e.modseq, e.arrival, e.key_generation), (Uid(1), 2, date, 0));
    assert_eq!((e.size, e.has_flags), (envelope.len() as u64, true));
    assert_eq!(store.flags(&mut s, sent, ap.uid, at(1)).unwrap(), ["\\Seen", "$Work"]);
    let summary = store.summary(&mut s, sent, ap.uid, at(1)).unwrap();
    assert_eq!(summary.as_deref().map(|v| &v[..]), Some(&b"sum"[..]));
    let q = store.quota(s.account()).unwrap();
    assert_eq!((q.used, q.messages), (before.used + envelope.len() as u64, before.messages + 1));
    assert_eq!(store.fetch(s.account(), sent, ap.uid).unwrap(), envelope);
    // It opens through its slots, then through the read overlay, as a delivered one does.
    for via in [OpenedVia::Slots(0), OpenedVia::ReadOverlay] {
        let o = store.open_message(&mut rng, &mut s, sent, ap.uid, at(2)).unwrap();
        assert_eq!(o.via, via);
        assert_eq!(tx.verify(o), "appended");
    }

    // After a rotation, an append is at the new generation and opens.
    store.rotate_keys(&mut rng, &mut s, &org(1), at(3)).unwrap();
    let newer = tx.seal(&store, &mailbox(ALICE), "rotated", 8);
    let ap2 =
        store.append(&mut rng, &mut s, MailboxId::INBOX, &newer, &[], at(4), None, at(4)).unwrap();
    let e = store.list(s.account(), MailboxId::INBOX).unwrap()[0];
    assert_eq!((e.uid, e.key_generation, e.has_flags), (ap2.uid, 1, false));
    assert!(store.summary(&mut s, MailboxId::INBOX, ap2.uid, at(4)).unwrap().is_none());
    let o = store.open_message(&mut rng, &mut s, MailboxId::INBOX, ap2.uid, at(5)).unwrap();
    assert_eq!(tx.verify(o), "rotated");
    // A delivery after it takes the next UID.
    let d = store.deliver(&mailbox(ALICE), b"delivered after", at(6)).unwrap();
    assert_eq!(d.uid, Uid(ap2.uid.0 + 1));
}

#[test]
fn append_refuses_what_is_over_its_limits_or_the_quota_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut rng = dime_testkit::seeded_rng(2);
    let addr = mailbox(ALICE);
    let new =
        NewAccount { address: &addr, password: b"pw", recovery: Recovery::None, quota_bytes: 100 };
    store.create_account(&mut rng, &org(1), &new, T0).unwrap();
    let mut s = store.login(&addr, b"pw", T0).unwrap();
    let inbox = MailboxId::INBOX;

    // Flags: at the limit, and one octet past it.
    let flag = "f".repeat(MAX_FLAGS_LEN);
    store.append(&mut rng, &mut s, inbox, b"a", &[&flag], T0, None, T0).unwrap();
    let long = "f".repeat(MAX_FLAGS_LEN + 1);
    let err = store.append(&mut rng, &mut s, inbox, b"a", &[&long], T0, None, T0).unwrap_err();
    assert_eq!(err, MailboxError::TooLarge { what: "flags", limit: MAX_FLAGS_LEN });
    // Summary: at the limit, and one past.
    let sum = vec![7u8; MAX_SUMMARY_LEN];
    store.append(&mut rng, &mut s, inbox, b"b", &[], T0, Some(&sum), T0).unwrap();
    let sum = vec![7u8; MAX_SUMMARY_LEN + 1];
    let err = store.append(&mut rng, &mut s, inbox, b"c", &[], T0, Some(&sum), T0).unwrap_err();
    assert_eq!(err, MailboxError::TooLarge { what: "summary", limit: MAX_SUMMARY_LEN });
    // Envelope: one past the limit (the limit itself is the delivery's, tested there).
    let big = vec![0u8; MAX_ENVELOPE_LEN + 1];
    let err = store.append(&mut rng, &mut s, inbox, &big, &[], T0, None, T0).unwrap_err();
    assert_eq!(err, MailboxError::TooLarge { what: "envelope", limit: MAX_ENVELOPE_LEN });
    // Quota: 2 octets used of 100; 98 more fit exactly, then one octet does not.
    store.append(&mut rng, &mut s, inbox, &[1u8; 98], &[], T0, None, T0).unwrap();
    let err = store.append(&mut rng, &mut s, inbox, b"x", &[], T0, None, T0).unwrap_err();
    assert_eq!(err, MailboxError::OverQuota { used: 100, limit: 100, size: 1 });
    // The same refusal as a delivery's.
    let d = store.deliver(&addr, b"x", T0).unwrap_err();
    assert_eq!(d, dime_store::DeliveryError::OverQuota { used: 100, limit: 100, size: 1 });
    // No such mailbox; an expired session.
    let err = store.append(&mut rng, &mut s, MailboxId(99), b"", &[], T0, None, T0).unwrap_err();
    assert_eq!(err, MailboxError::NoSuchMailbox);
    let late = Timestamp(T0.0 + 100_000);
    let err = store.append(&mut rng, &mut s, inbox, b"", &[], T0, None, late).unwrap_err();
    assert_eq!(err, MailboxError::SessionExpired);
    let mut s = store.login(&addr, b"pw", T0).unwrap();
    let info = store.mailbox(&mut s, inbox, T0).unwrap();
    assert_eq!((info.messages, info.uid_next), (3, 4), "refusals wrote nothing");
}

#[test]
fn store_flags_bumps_modseq_once_per_change_and_honours_unchanged_since() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut s = alice(&store);
    let mut rng = dime_testkit::seeded_rng(3);
    let inbox = MailboxId::INBOX;
    fill(&store, &s, 5);
    let start = highest(&store, &mut s, inbox);
    let seen = |uids: &[u32]| -> Vec<(Uid, Vec<String>)> {
        uids.iter().map(|u| (Uid(*u), vec!["\\Seen".to_string()])).collect()
    };
    let done = store.store_flags(&mut rng, &mut s, inbox, &seen(&[1, 2, 3, 4, 5, 9]), None, T0);
    let done = done.unwrap();
    let modseqs: Vec<u64> = done.applied.iter().map(|(_, m)| *m).collect();
    assert_eq!(modseqs, (start + 1..=start + 5).collect::<Vec<_>>(), "strictly increasing");
    assert!(done.modified.is_empty());
    assert_eq!(highest(&store, &mut s, inbox), start + 5);
    // The flags of a few UIDs, looked up alone: those of `flags_all`, in UID order, a UID
    // with no entry left out.
    let all = store.flags_all(&mut s, inbox, T0).unwrap();
    let some = store.flags_of(&mut s, inbox, &[Uid(4), Uid(2), Uid(9), Uid(2)], T0).unwrap();
    let want: Vec<_> = all.iter().filter(|(u, _, _)| [2, 4].contains(&u.0)).cloned().collect();
    assert_eq!(some, want);
    assert_eq!(some.len(), 2);
    // The same flags again (in another order, repeated): nothing changes, no MODSEQ moves.
    let same: Vec<(Uid, Vec<String>)> =
        vec![(Uid(2), vec!["\\Seen".into(), "\\Seen".into()]), (Uid(1), vec!["\\Seen".into()])];
    let again = store.store_flags(&mut rng, &mut s, inbox, &same, None, T0).unwrap();
    assert_eq!(again.applied, [(Uid(2), start + 2), (Uid(1), start + 1)]);
    assert_eq!(highest(&store, &mut s, inbox), start + 5);

    // UNCHANGEDSINCE: UID 3 changed after the client's MODSEQ; it is left alone and reported.
    let client = start + 5;
    store.set_flags(&mut rng, &mut s, inbox, Uid(3), &["$Other"], T0).unwrap();
    let changes = vec![(Uid(3), vec!["\\Deleted".into()]), (Uid(4), vec!["\\Deleted".into()])];
    let cond = store.store_flags(&mut rng, &mut s, inbox, &changes, Some(client), T0).unwrap();
    assert_eq!(cond.modified, [Uid(3)]);
    assert_eq!(cond.applied, [(Uid(4), client + 2)]);
    assert_eq!(store.flags(&mut s, inbox, Uid(3), T0).unwrap(), ["$Other"]);
    // At exactly its MODSEQ, an entry is changed.
    let m3 = client + 1;
    let cond =
        store.store_flags(&mut rng, &mut s, inbox, &[(Uid(3), vec![])], Some(m3), T0).unwrap();
    assert_eq!((cond.applied, cond.modified), (vec![(Uid(3), client + 3)], vec![]));

    // Every entry's flags and MODSEQ in one read.
    let all = store.flags_all(&mut s, inbox, T0).unwrap();
    let got: Vec<(u32, u64, Vec<String>)> = all.into_iter().map(|(u, m, f)| (u.0, m, f)).collect();
    let seen_f = vec!["\\Seen".to_string()];
    assert_eq!(
        got,
        [
            (1, start + 1, seen_f.clone()),
            (2, start + 2, seen_f.clone()),
            (3, client + 3, vec![]),
            (4, client + 2, vec!["\\Deleted".to_string()]),
            (5, start + 5, seen_f),
        ]
    );

    // One entry over the limit: nothing of the STORE is written.
    let ok = "g".repeat(MAX_FLAGS_LEN);
    let over = "g".repeat(MAX_FLAGS_LEN + 1);
    let before = highest(&store, &mut s, inbox);
    let bad = vec![(Uid(1), vec![ok.clone()]), (Uid(2), vec![over])];
    let err = store.store_flags(&mut rng, &mut s, inbox, &bad, None, T0).unwrap_err();
    assert_eq!(err, MailboxError::TooLarge { what: "flags", limit: MAX_FLAGS_LEN });
    assert_eq!(highest(&store, &mut s, inbox), before);
    store.store_flags(&mut rng, &mut s, inbox, &[(Uid(1), vec![ok.clone()])], None, T0).unwrap();
    assert_eq!(store.flags(&mut s, inbox, Uid(1), T0).unwrap(), [ok]);
    assert_eq!(
        store.flags_all(&mut s, MailboxId(42), T0).unwrap_err(),
        MailboxError::NoSuchMailbox
    );
}

#[test]
fn removals_leave_tombstones_that_vanished_since_reports_by_modseq() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut s = alice(&store);
    let mut rng = dime_testkit::seeded_rng(4);
    let (a, inbox) = (s.account(), MailboxId::INBOX);
    fill(&store, &s, 10);
    let other = store.create_mailbox(&mut rng, &mut s, "Other", T0).unwrap();
    let m0 = highest(&store, &mut s, inbox);
    assert!(store.vanished_since(a, inbox, 0).unwrap().is_empty(), "nothing removed yet");
    assert_eq!(store.expunge(a, inbox, &[Uid(2), Uid(3), Uid(4)]).unwrap(), 3);
    let m1 = highest(&store, &mut s, inbox);
    assert_eq!(m1, m0 + 3, "each removal bumps HIGHESTMODSEQ");
    store.move_messages(a, inbox, &[Uid(7)], other).unwrap();
    let m2 = highest(&store, &mut s, inbox);
    let uids = |v: Vec<Uid>| v.into_iter().map(|u| u.0).collect::<Vec<_>>();
    assert_eq!(uids(store.vanished_since(a, inbox, m0).unwrap()), [2, 3, 4, 7]);
    // UIDs removed one after another form a run, reported whole (RFC 7162 lets a server
    // report more than was removed since).
    assert_eq!(uids(store.vanished_since(a, inbox, m0 + 1).unwrap()), [2, 3, 4, 7]);
    assert_eq!(uids(store.vanished_since(a, inbox, m1).unwrap()), [7]);
    assert!(store.vanished_since(a, inbox, m2).unwrap().is_empty());
    assert_eq!(
        store.vanished_ranges_since(a, inbox, m0).unwrap(),
        [(Uid(2), Uid(4)), (Uid(7), Uid(7))]
    );
    // Below the floor (removals before the first recorded: here none), every missing UID.
    assert_eq!(uids(store.vanished_since(a, inbox, 0).unwrap()), [2, 3, 4, 7]);
    // A copy removes nothing; a retention purge does.
    store.copy(a, inbox, &[Uid(1)], other).unwrap();
    assert!(store.vanished_since(a, inbox, m2).unwrap().is_empty());
    assert_eq!(store.purge_older_than(a, 1, Timestamp(T0.0 + 2 * 86_400)).unwrap(), 7);
    assert_eq!(uids(store.vanished_since(a, inbox, m2).unwrap()), [1, 5, 6, 8, 9, 10]);
    assert_eq!(uids(store.vanished_since(a, other, 0).unwrap()), [1, 2]);
    assert_eq!(store.vanished_since(a, MailboxId(77), 0).unwrap_err(), MailboxError::NoSuchMailbox);
}

#[test]
fn tombstones_keep_max_tombstones_runs_then_report_every_missing_uid_below_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut s = alice(&store);
    let (a, inbox) = (s.account(), MailboxId::INBOX);
    let max = MAX_TOMBSTONES as u32;
    fill(&store, &s, 2 * max + 4);
    // Two runs: UID 1 (at MODSEQ ma), UID 3; then MAX_TOMBSTONES - 2 more (5, 7, ...: no two
    // adjacent), exactly at the limit.
    store.expunge(a, inbox, &[Uid(1)]).unwrap();
    let ma = highest(&store, &mut s, inbox);
    store.expunge(a, inbox, &[Uid(3)]).unwrap();
    let mb = highest(&store, &mut s, inbox);
    let odd: Vec<Uid> = (2..max).map(|i| Uid(2 * i + 1)).collect();
    store.expunge(a, inbox, &odd).unwrap();
    let mut exact: Vec<Uid> = vec![Uid(3)];
    exact.extend(odd.iter().copied());
    assert_eq!(store.vanished_since(a, inbox, ma).unwrap(), exact, "at the limit: exact");
    // One run past the limit: the oldest (UID 1, removed at ma) goes and the floor rises to
    // ma; since ma, the answer is still exact.
    store.expunge(a, inbox, &[Uid(2 * max + 1)]).unwrap();
    exact.push(Uid(2 * max + 1));
    assert_eq!(store.vanished_since(a, inbox, ma).unwrap(), exact, "one past: exact since ma");
    // Another: UID 3's run goes, the floor rises to mb, and a client at ma gets every
    // missing UID below UIDNEXT, UID 1 included (more than was removed since).
    store.expunge(a, inbox, &[Uid(2 * max + 3)]).unwrap();
    exact.push(Uid(2 * max + 3));
    let mut more = vec![Uid(1)];
    more.extend(exact.iter().copied());
    assert_eq!(store.vanished_since(a, inbox, ma).unwrap(), more, "below the floor: more");
    assert_eq!(store.vanished_since(a, inbox, mb).unwrap(), exact[1..], "at the floor: exact");
    let last = highest(&store, &mut s, inbox);
    assert_eq!(store.vanished_since(a, inbox, last - 1).unwrap(), [Uid(2 * max + 3)]);
}

#[test]
fn special_use_is_one_mailbox_per_role_and_subscription_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut s = alice(&store);
    let mut rng = dime_testkit::seeded_rng(5);
    let inbox = store.mailbox(&mut s, MailboxId::INBOX, T0).unwrap();
    assert_eq!((inbox.name.as_str(), inbox.subscribed, inbox.special_use), ("INBOX", true, None));
    let sent =
        store.create_mailbox_with(&mut rng, &mut s, "Sent", Some(SpecialUse::Sent), T0).unwrap();
    let err = store
        .create_mailbox_with(&mut rng, &mut s, "Sent 2", Some(SpecialUse::Sent), T0)
        .unwrap_err();
    assert_eq!(err, MailboxError::SpecialUseTaken { role: SpecialUse::Sent, by: sent });
    let junk = store.create_mailbox(&mut rng, &mut s, "Junk", T0).unwrap();
    let err =
        store.set_special_use(&mut rng, &mut s, junk, Some(SpecialUse::Sent), T0).unwrap_err();
    assert_eq!(err, MailboxError::SpecialUseTaken { role: SpecialUse::Sent, by: sent });
    store.set_special_use(&mut rng, &mut s, junk, Some(SpecialUse::Junk), T0).unwrap();
    // Setting a mailbox's own role again is no conflict; moving a role frees it.
    store.set_special_use(&mut rng, &mut s, sent, Some(SpecialUse::Sent), T0).unwrap();
    store.set_special_use(&mut rng, &mut s, sent, None, T0).unwrap();
    store.set_special_use(&mut rng, &mut s, junk, Some(SpecialUse::Sent), T0).unwrap();
    store.set_subscribed(&mut rng, &mut s, sent, false, T0).unwrap();
    let all = store.mailboxes(&mut s, T0).unwrap();
    let view: Vec<(&str, bool, Option<SpecialUse>)> =
        all.iter().map(|m| (m.name.as_str(), m.subscribed, m.special_use)).collect();
    assert_eq!(
        view,
        [("INBOX", true, None), ("Sent", false, None), ("Junk", true, Some(SpecialUse::Sent))]
    );
    // One mailbox's info is what the listing says of it; a new session reads the same.
    for m in &all {
        assert_eq!(&store.mailbox(&mut s, m.id, T0).unwrap(), m);
    }
    let mut again = store.login(&mailbox(ALICE), b"pw", T0).unwrap();
    assert_eq!(store.mailboxes(&mut again, T0).unwrap(), all);
    assert_eq!(
        store.set_subscribed(&mut rng, &mut s, MailboxId(50), true, T0).unwrap_err(),
        MailboxError::NoSuchMailbox
    );
    assert_eq!(store.mailbox(&mut s, MailboxId(50), T0).unwrap_err(), MailboxError::NoSuchMailbox);
    // The roles' IMAP attributes.
    let attrs: Vec<&str> = SpecialUse::ALL.iter().map(|r| r.attribute()).collect();
    assert_eq!(
        attrs,
        ["\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"]
    );
}

#[test]
fn create_and_rename_refuse_taken_names_inbox_in_any_case_and_long_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut s = alice(&store);
    let mut rng = dime_testkit::seeded_rng(6);
    let a = s.account();
    let work = store.create_mailbox(&mut rng, &mut s, "Work", T0).unwrap();
    for taken in ["Work", "INBOX", "inbox", "InBox"] {
        assert_eq!(
            store.create_mailbox(&mut rng, &mut s, taken, T0).unwrap_err(),
            MailboxError::MailboxExists,
            "{taken}"
        );
    }
    // Other names are case-sensitive.
    store.create_mailbox(&mut rng, &mut s, "work", T0).unwrap();
    // Names at the limit, and one octet past it.
    let long = "n".repeat(MAX_MAILBOX_NAME_LEN);
    let longer = "n".repeat(MAX_MAILBOX_NAME_LEN + 1);
    let too_long = MailboxError::TooLarge { what: "mailbox name", limit: MAX_MAILBOX_NAME_LEN };
    assert_eq!(store.create_mailbox(&mut rng, &mut s, &longer, T0).unwrap_err(), too_long);

    // RENAME keeps the id, UIDVALIDITY, UIDs and messages.
    store.deliver(&mailbox(ALICE), b"one", T0).unwrap();
    store.copy(a, MailboxId::INBOX, &[Uid(1)], work).unwrap();
    let before = store.mailbox(&mut s, work, T0).unwrap();
    let listed = store.list(a, work).unwrap();
    store.rename_mailbox(&mut rng, &mut s, work, &long, T0).unwrap();
    let after = store.mailbox(&mut s, work, T0).unwrap();
    assert_eq!(after.name, long);
    assert_eq!(
        (after.id, after.uid_validity, after.uid_next, after.highest_modseq, after.messages),
        (before.id, before.uid_validity, before.uid_next, before.highest_modseq, before.messages)
    );
    assert_eq!(store.list(a, work).unwrap(), listed);
    assert_eq!(store.fetch(a, work, Uid(1)).unwrap(), b"one");
    assert_eq!(store.rename_mailbox(&mut rng, &mut s, work, &longer, T0).unwrap_err(), too_long);
    for taken in ["work", "INBOX", "Inbox", long.as_str()] {
        assert_eq!(
            store.rename_mailbox(&mut rng, &mut s, work, taken, T0).unwrap_err(),
            MailboxError::MailboxExists,
            "{taken}"
        );
    }
    assert_eq!(
        store.rename_mailbox(&mut rng, &mut s, MailboxId::INBOX, "Other", T0).unwrap_err(),
        MailboxError::InboxIsFixed
    );
    assert_eq!(
        store.rename_mailbox(&mut rng, &mut s, MailboxId(60), "Other", T0).unwrap_err(),
        MailboxError::NoSuchMailbox
    );
    // The old name is free again.
    store.create_mailbox(&mut rng, &mut s, "Work", T0).unwrap();

    // A hierarchy is renamed in one transaction: when one new name is taken, none changes.
    let p = store.create_mailbox(&mut rng, &mut s, "P", T0).unwrap();
    let c = store.create_mailbox(&mut rng, &mut s, "P/c", T0).unwrap();
    store.create_mailbox(&mut rng, &mut s, "Q/c", T0).unwrap();
    assert_eq!(
        store.rename_mailboxes(&mut rng, &mut s, &[(p, "Q"), (c, "Q/c")], T0).unwrap_err(),
        MailboxError::MailboxExists
    );
    let name = |s: &mut Session, m| store.mailbox(s, m, T0).unwrap().name;
    assert_eq!((name(&mut s, p), name(&mut s, c)), ("P".to_owned(), "P/c".to_owned()));
    store.rename_mailboxes(&mut rng, &mut s, &[(p, "R"), (c, "R/c")], T0).unwrap();
    assert_eq!((name(&mut s, p), name(&mut s, c)), ("R".to_owned(), "R/c".to_owned()));
}

#[test]
fn a_mailbox_deleted_and_created_again_gets_a_new_uidvalidity_even_with_the_clock_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut s = alice(&store);
    let mut rng = dime_testkit::seeded_rng(7);
    let a = s.account();
    fill(&store, &s, 3);
    let mut seen = vec![store.mailbox(&mut s, MailboxId::INBOX, T0).unwrap().uid_validity];
    let mut now = at(100);
    for round in 0..4 {
        let m = store.create_mailbox(&mut rng, &mut s, "Tmp", now).unwrap();
        store.copy(a, MailboxId::INBOX, &[Uid(1), Uid(2), Uid(3)], m).unwrap();
        let info = store.mailbox(&mut s, m, now).unwrap();
        assert!(
            seen.iter().all(|v| info.uid_validity > *v),
            "round {round}: {} not above {seen:?}",
            info.uid_validity
        );
        seen.push(info.uid_validity);
        store.delete_mailbox(&mut s, m, now).unwrap();
        assert_eq!(store.mailbox(&mut s, m, now).unwrap_err(), MailboxError::NoSuchMailbox);
        // The clock goes back between rounds.
        now = Timestamp(now.0 - 10);
    }
    // The deleted mailboxes' records went with them.
    let all = store.mailboxes(&mut s, now).unwrap();
    assert_eq!(all.len(), 1);
    let _ = default_provider();
}

#[test]
fn attributes_tombstones_and_renames_travel_in_an_archive() {
    use dime_store::Archive;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("from"));
    let mut s = alice(&store);
    let mut rng = dime_testkit::seeded_rng(9);
    let a = s.account();
    fill(&store, &s, 4);
    let trash =
        store.create_mailbox_with(&mut rng, &mut s, "Bin", Some(SpecialUse::Trash), T0).unwrap();
    store.rename_mailbox(&mut rng, &mut s, trash, "Trash", T0).unwrap();
    store.set_subscribed(&mut rng, &mut s, trash, false, T0).unwrap();
    let m0 = highest(&store, &mut s, MailboxId::INBOX);
    store.expunge(a, MailboxId::INBOX, &[Uid(2), Uid(3)]).unwrap();
    let want = store.mailboxes(&mut s, T0).unwrap();
    let archive = store.export(&mut rng, &mut s, b"archive pw", T0).unwrap();
    drop(store);

    let other = open(&dir.path().join("to"));
    other.import(&mut rng, &archive, b"archive pw", b"new pw", T0).unwrap();
    let mut s = other.login(&mailbox(ALICE), b"new pw", T0).unwrap();
    assert_eq!(other.mailboxes(&mut s, T0).unwrap(), want);
    assert_eq!(other.vanished_since(a, MailboxId::INBOX, m0).unwrap(), [Uid(2), Uid(3)]);
    let err = other
        .create_mailbox_with(&mut rng, &mut s, "Other", Some(SpecialUse::Trash), T0)
        .unwrap_err();
    assert_eq!(err, MailboxError::SpecialUseTaken { role: SpecialUse::Trash, by: trash });
}

/// A backend that counts its durable write transactions.
#[derive(Debug)]
struct Counting(dime_store::RedbBackend, std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl dime_store::Backend for Counting {
    fn read(
        &self,
        f: &mut dyn FnMut(&dyn dime_store::ReadTxn) -> Result<(), dime_store::StoreError>,
    ) -> Result<(), dime_store::StoreError> {
        self.0.read(f)
    }
    fn write(
        &self,
        f: &mut dyn FnMut(&mut dyn dime_store::WriteTxn) -> Result<(), dime_store::StoreError>,
    ) -> Result<(), dime_store::StoreError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.write(f)
    }
}

#[test]
fn a_store_of_every_message_and_an_append_are_one_durable_commit_each() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let commits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cfg = config(dir.path());
    std::fs::create_dir_all(&cfg.data_dir).unwrap();
    std::fs::create_dir_all(cfg.vault_path.parent().unwrap()).unwrap();
    let backend = dime_store::RedbBackend::open(&cfg.data_dir.join("store.redb")).unwrap();
    let vault = dime_store::RedbBackend::open(&cfg.vault_path).unwrap();
    let store = Store::with_backends(
        Box::new(Counting(backend, commits.clone())),
        Box::new(vault),
        cfg,
        default_provider(),
    )
    .unwrap();
    let mut s = alice(&store);
    let mut rng = dime_testkit::seeded_rng(10);
    fill(&store, &s, 300);
    let all: Vec<(Uid, Vec<String>)> =
        (1..=300).map(|u| (Uid(u), vec!["\\Seen".to_string()])).collect();
    let before = commits.load(Ordering::SeqCst);
    let done = store.store_flags(&mut rng, &mut s, MailboxId::INBOX, &all, None, T0).unwrap();
    assert_eq!(done.applied.len(), 300);
    assert_eq!(commits.load(Ordering::SeqCst), before + 1, "STORE 1:* is one commit");
    store.append(&mut rng, &mut s, MailboxId::INBOX, b"m", &["\\Seen"], T0, None, T0).unwrap();
    assert_eq!(commits.load(Ordering::SeqCst), before + 2, "APPEND is one durable commit");
}

/// An APPEND on redb is durable in the delivery log (`spec/storage.md` §4.1, §5.1): a `DLA1`
/// record whose payload is laid out as the spec says, with its flags and summary sealed (not in
/// clear) and the envelope last.
#[test]
fn an_append_is_logged_as_a_dla1_record_laid_out_as_the_spec_says() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut s = alice(&store);
    let mut rng = dime_testkit::seeded_rng(12);
    let tx = Sender::new();
    let work = store.create_mailbox(&mut rng, &mut s, "Work", T0).unwrap();
    let envelope = tx.seal(&store, &mailbox(ALICE), "logged", 3);
    let date = Timestamp(1_650_000_000);
    let flags = ["\\Flagged", "kwcanary77"];
    let ap = store
        .append(&mut rng, &mut s, work, &envelope, &flags, date, Some(b"summarycanary"), at(2))
        .unwrap();
    let log = std::fs::read(dir.path().join("data").join("deliveries.log")).unwrap();
    assert_eq!(&log[..4], b"DLA1");
    let len = u32::from_be_bytes(log[52..56].try_into().unwrap()) as usize;
    let payload = &log[72..72 + len];
    let u32_at = |i: usize| u32::from_be_bytes(payload[i..i + 4].try_into().unwrap());
    let u64_at = |i: usize| u64::from_be_bytes(payload[i..i + 8].try_into().unwrap());
    assert_eq!(u32_at(0), work.0, "the mailbox");
    let number = u64_at(4);
    assert_eq!(u64_at(12), date.0, "the internal date");
    let flags_len = u32_at(36) as usize;
    let summary_len = u32_at(40 + flags_len) as usize;
    assert!(flags_len > 0 && summary_len > 0, "flags and summary are there, sealed");
    assert_eq!(&payload[44 + flags_len + summary_len..], &envelope[..], "the envelope last");
    for canary in [&b"kwcanary77"[..], b"summarycanary"] {
        assert!(!log.windows(canary.len()).any(|w| w == canary), "in clear in the log");
    }
    // Its message number is the message's: a second APPEND gets the next one.
    store.append(&mut rng, &mut s, work, &envelope, &[], date, None, at(3)).unwrap();
    let log = std::fs::read(dir.path().join("data").join("deliveries.log")).unwrap();
    let second = &log[72 + len..];
    assert_eq!(&second[..4], b"DLA1");
    let n2 = u64::from_be_bytes(second[72 + 4..72 + 12].try_into().unwrap());
    assert_eq!(n2, number + 1);
    assert_eq!(store.flags(&mut s, work, ap.uid, at(3)).unwrap(), flags);
}

/// `open_for_display` (`spec/storage.md` §6.6): nothing without a read overlay; with one, the
/// same view `open_message` gives, its kind and summary, in one read and no write; a corrupt
/// octet in the envelope makes it give nothing (the checked way then quarantines it).
#[test]
fn open_for_display_reads_through_the_read_overlay_only_and_never_shows_a_corrupt_octet() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut s = alice(&store);
    let mut rng = dime_testkit::seeded_rng(2);
    let tx = Sender::new();
    let envelope = tx.seal(&store, &mailbox(ALICE), "for display", 9);
    let m = MailboxId::INBOX;
    let ap = store.append(&mut rng, &mut s, m, &envelope, &[], T0, Some(b"rec"), T0).unwrap();
    assert!(store.open_for_display(&mut s, m, ap.uid, T0).unwrap().is_none(), "no overlay yet");
    let full = store.open_message(&mut rng, &mut s, m, ap.uid, T0).unwrap();
    let kind = full.message.kind();
    let view = full.message.into_unverified_view();
    let d = store.open_for_display(&mut s, m, ap.uid, T0).unwrap().expect("through the overlay");
    assert_eq!((d.view, d.kind), (view, kind));
    assert_eq!(d.summary.as_deref().map(|v| &v[..]), Some(&b"rec"[..]));
    assert!(matches!(
        store.open_for_display(&mut s, m, Uid(99), T0),
        Err(MailboxError::NoSuchMessage)
    ));

    // Many at once, in the order asked, a missing one as nothing, up to the budget.
    let k = s.display_key(T0).unwrap();
    let many = store.open_for_display_many(&k, m, &[ap.uid, Uid(99), ap.uid], usize::MAX);
    let many = many.unwrap();
    let got: Vec<(Uid, bool)> = many.iter().map(|(u, d)| (*u, d.is_some())).collect();
    assert_eq!(got, [(ap.uid, true), (Uid(99), false), (ap.uid, true)]);
    let cut = store.open_for_display_many(&k, m, &[ap.uid, ap.uid], 1).unwrap();
    assert_eq!(cut.len(), 1, "the budget is passed after the first envelope");
    // The overlay (a deferred write) is kept by a clean close.
    drop(store);
    let store = open(dir.path());
    let mut s = store.login(&mailbox(ALICE), b"pw", T0).unwrap();
    assert!(store.open_for_display(&mut s, m, ap.uid, T0).unwrap().is_some());
    // Flip one octet of the stored envelope in the middle of its display chunk.
    drop(store);
    let db = common::config(dir.path()).data_dir.join("store.redb");
    let mut bytes = std::fs::read(&db).unwrap();
    let needle = &envelope[envelope.len() / 2..envelope.len() / 2 + 32];
    let at_ = bytes.windows(needle.len()).position(|w| w == needle).expect("envelope in file");
    bytes[at_ + 3] ^= 0x01;
    std::fs::write(&db, bytes).unwrap();
    let store = open(dir.path());
    let mut s = store.login(&mailbox(ALICE), b"pw", T0).unwrap();
    assert!(store.open_for_display(&mut s, m, ap.uid, T0).unwrap().is_none());
    assert!(store.open_message(&mut rng, &mut s, m, ap.uid, T0).is_err());
}
