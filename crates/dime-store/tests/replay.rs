//! A second delivery of the same envelope (`spec/storage.md` §4.2): within the retention it
//! lands nowhere and gets the first delivery's place; after it, it is delivered again; other
//! octets, or another account, are other deliveries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use dime_core::crypto::Hashed;
use dime_store::{
    Accounts, Deliveries, MailboxId, Mailboxes, Recovery, SEEN_RETENTION_SECS, Table, Timestamp,
    Uid,
};

/// An envelope-shaped blob: the DIMEMSG header with message id `id`, then `body`.
fn envelope(id: u8, body: &[u8]) -> Vec<u8> {
    let mut v = b"DIMEMSG\x02\x01\x00".to_vec();
    v.extend_from_slice(&[id; 32]);
    v.extend_from_slice(body);
    v
}

#[test]
fn the_same_envelope_delivered_twice_is_stored_once_and_answered_with_the_first_place() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let alice = mailbox("alice@example.org");
    let bob = mailbox("bob@example.org");
    create(&store, &org(1), &alice, b"pw", Recovery::None);
    create(&store, &org(1), &bob, b"pw", Recovery::None);
    let e = envelope(7, b"sealed octets");

    let first = store.deliver(&alice, &e, T0).unwrap();
    assert_eq!(first.uid, Uid(1));
    // A resend (an honest retry after a lost reply, or a replay), even through the hashed
    // path, an hour later: the same place, nothing written.
    let again = store.deliver(&alice, &e, Timestamp(T0.0 + 3600)).unwrap();
    assert_eq!(again, first);
    let hashed = Hashed::new(default_p(), e.clone());
    assert_eq!(store.deliver_hashed(&alice, &hashed, Timestamp(T0.0 + 7200)).unwrap(), first);
    let mut s = store.login(&alice, b"pw", T0).unwrap();
    let inbox = store.mailboxes(&mut s, T0).unwrap();
    let inbox = inbox.iter().find(|m| m.id == MailboxId::INBOX).unwrap();
    assert_eq!(inbox.messages, 1, "one copy stored");

    // Another envelope with the same message id (other octets) is another delivery; the
    // same octets to another account too.
    assert_eq!(store.deliver(&alice, &envelope(7, b"other octets"), T0).unwrap().uid, Uid(2));
    assert_eq!(store.deliver(&bob, &e, T0).unwrap().uid, Uid(1));

    // After the retention, the record is gone: the envelope is delivered again (the
    // destination refuses such an old envelope before it reaches the store).
    let late = Timestamp(T0.0 + SEEN_RETENTION_SECS);
    assert_eq!(store.deliver(&alice, &e, late).unwrap().uid, Uid(3));
}

#[test]
fn expired_seen_records_are_pruned_as_deliveries_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let alice = mailbox("alice@example.org");
    create(&store, &org(1), &alice, b"pw", Recovery::None);
    for i in 0..20u8 {
        store.deliver(&alice, &envelope(i, b"x"), T0).unwrap();
    }
    let count = |table| {
        let mut n = 0;
        store
            .backend()
            .read(&mut |t| {
                n = t.range(table, &[], &[0xff; 64], 1000)?.len();
                Ok(())
            })
            .unwrap();
        n
    };
    assert_eq!((count(Table::Seen), count(Table::SeenTime)), (20, 20));
    // Each later delivery removes up to 8 expired records: 3 deliveries, 20 records gone,
    // the 3 new ones kept.
    let late = Timestamp(T0.0 + SEEN_RETENTION_SECS + 1);
    for i in 100..103u8 {
        store.deliver(&alice, &envelope(i, b"x"), late).unwrap();
    }
    assert_eq!((count(Table::Seen), count(Table::SeenTime)), (3, 3));
}

fn default_p() -> &'static dime_core::crypto::CryptoProvider {
    dime_core::crypto::default_provider()
}
