//! Delivery status of outbound queue entries (`spec/storage.md` §7.1): every change to an
//! entry and its status is one transaction, statuses survive reopening, list by time, prune,
//! keep the destination and texts sealed, and a bounce lands atomically with its status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use dime_core::crypto::default_provider;
use dime_store::{
    Accounts, BackendError, DeliveryError, DeliveryState, MAX_STATUS_TEXT_LEN, MailboxId,
    Mailboxes, NewAccount, Queue, QueueError, QueueId, Recovery, Settlement, Store, Table,
    Timestamp, Transport,
};

const DEST: &str = "qzdestcanary31.example";
const REASON: &str = "qzReasonCanary64 refused with 550";
const TXID: &str = "qzTxidCanary27";

fn at(secs: u64) -> Timestamp {
    Timestamp(T0.0 + secs)
}

#[test]
fn status_follows_the_entry_from_queued_to_deferred_to_delivered_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = dime_testkit::seeded_rng(1);
    let id;
    {
        let store = open(dir.path());
        id = store.enqueue(&mut rng, Transport::Dmtp, AUTHOR, DEST, b"env", T0).unwrap();
        let s = store.delivery_status(id).unwrap().unwrap();
        assert_eq!(s.state, DeliveryState::Queued);
        assert_eq!((s.destination.as_str(), s.queued, s.updated, s.attempts), (DEST, T0, T0, 0));
        assert_eq!(s.author, Some(AUTHOR));
        assert!(!s.state.is_final());

        assert_eq!(store.defer(&mut rng, id, at(60), "no answer", at(1)).unwrap(), 1);
        assert_eq!(store.defer(&mut rng, id, at(200), REASON, at(61)).unwrap(), 2);
        let s = store.delivery_status(id).unwrap().unwrap();
        assert_eq!(
            s.state,
            DeliveryState::Deferred { next_attempt: at(200), reason: REASON.into() }
        );
        assert_eq!((s.queued, s.updated, s.attempts), (T0, at(61), 2));
        assert_eq!(s.author, Some(AUTHOR), "each change keeps the author");
        // The queue agrees: two attempts, due at the next attempt.
        assert!(store.lease(Transport::Dmtp, at(199), 60, 10).unwrap().is_empty());
        let leased = store.lease(Transport::Dmtp, at(200), 60, 10).unwrap();
        assert_eq!(leased[0].entry.attempts, 2);
    }
    let store = open(dir.path());
    assert_eq!(store.delivery_status(id).unwrap().unwrap().attempts, 2);
    store.complete_delivered(&mut rng, id, TXID, at(201)).unwrap();
    assert!(store.queue_entries().unwrap().is_empty());
    drop(store);
    let store = open(dir.path());
    let s = store.delivery_status(id).unwrap().unwrap();
    assert_eq!(s.state, DeliveryState::Delivered { txid: TXID.into() });
    assert_eq!((s.queued, s.updated, s.attempts), (T0, at(201), 3));
    assert_eq!(s.author, Some(AUTHOR));
    assert!(s.state.is_final());
    // A completed entry cannot be completed again, and its status stays.
    assert_eq!(
        store.complete_failed(&mut rng, id, "late", at(300)).unwrap_err(),
        QueueError::NoSuchEntry
    );
    assert!(matches!(
        store.delivery_status(id).unwrap().unwrap().state,
        DeliveryState::Delivered { .. }
    ));
    assert_eq!(store.delivery_status(QueueId(999)).unwrap(), None);
}

#[test]
fn a_bounce_lands_with_its_status_in_one_transaction_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let author = mailbox("author@example.org");
    let a = create(&store, &org(1), &author, b"pw", Recovery::None).account;
    let mut rng = dime_testkit::seeded_rng(2);
    let id = store.enqueue(&mut rng, Transport::Dmtp, AUTHOR, DEST, b"env", T0).unwrap();
    // An author who is not ours: nothing is written, the entry and its status stay.
    let stranger = mailbox("nobody@example.org");
    assert_eq!(
        store.complete_bounced(&mut rng, id, REASON, &stranger, b"bounce", at(5)).unwrap_err(),
        QueueError::Bounce(DeliveryError::UnknownAccount)
    );
    assert_eq!(store.queue_entries().unwrap().len(), 1);
    assert_eq!(store.delivery_status(id).unwrap().unwrap().state, DeliveryState::Queued);

    let d = store.complete_bounced(&mut rng, id, REASON, &author, b"bounce", at(5)).unwrap();
    assert_eq!((d.account, d.mailbox), (a, MailboxId::INBOX));
    assert_eq!(store.fetch(a, MailboxId::INBOX, d.uid).unwrap(), b"bounce");
    assert!(store.queue_entries().unwrap().is_empty());
    let s = store.delivery_status(id).unwrap().unwrap();
    assert_eq!(s.state, DeliveryState::Bounced { reason: REASON.into() });
    assert_eq!(s.attempts, 1);

    // Over quota: the bounce is refused and nothing changes; the caller records a failure.
    let small = mailbox("small@example.org");
    store
        .create_account(
            &mut rng,
            &org(1),
            &NewAccount {
                address: &small,
                password: b"pw",
                recovery: Recovery::None,
                quota_bytes: 4,
            },
            T0,
        )
        .unwrap();
    let id2 = store.enqueue(&mut rng, Transport::Dmtp, AUTHOR, DEST, b"env", T0).unwrap();
    assert!(matches!(
        store.complete_bounced(&mut rng, id2, REASON, &small, b"too big", at(9)).unwrap_err(),
        QueueError::Bounce(DeliveryError::OverQuota { .. })
    ));
    assert_eq!(store.queue_entries().unwrap().len(), 1);
    store.complete_failed(&mut rng, id2, REASON, at(9)).unwrap();
    let s = store.delivery_status(id2).unwrap().unwrap();
    assert_eq!(s.state, DeliveryState::Failed { reason: REASON.into() });
    assert!(store.queue_entries().unwrap().is_empty());
}

#[test]
fn statuses_list_by_time_and_old_complete_ones_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut rng = dime_testkit::seeded_rng(3);
    let ids: Vec<QueueId> = (0..4)
        .map(|i| store.enqueue(&mut rng, Transport::Dmtp, AUTHOR, DEST, b"env", at(i)).unwrap())
        .collect();
    store.complete_delivered(&mut rng, ids[0], "t0", at(10)).unwrap();
    store.complete_failed(&mut rng, ids[1], "gone", at(20)).unwrap();
    store.defer(&mut rng, ids[2], at(1000), "later", at(30)).unwrap();
    // Completed without a status (the bare call): its queued status is an orphan.
    store.complete(ids[3]).unwrap();

    let all = store.delivery_statuses(T0, 100).unwrap();
    let order: Vec<QueueId> = all.iter().map(|s| s.id).collect();
    assert_eq!(order, [ids[3], ids[0], ids[1], ids[2]], "oldest change first");
    let recent = store.delivery_statuses(at(15), 100).unwrap();
    assert_eq!(recent.iter().map(|s| s.id).collect::<Vec<_>>(), [ids[1], ids[2]]);
    assert_eq!(store.delivery_statuses(T0, 2).unwrap().len(), 2);

    assert_eq!(store.prune_delivery_statuses(at(15)).unwrap(), 2, "the orphan and ids[0]");
    assert_eq!(store.delivery_status(ids[0]).unwrap(), None);
    assert_eq!(store.delivery_status(ids[3]).unwrap(), None);
    assert!(store.delivery_status(ids[1]).unwrap().is_some());
    // The deferred entry is still queued: kept however old.
    assert_eq!(store.prune_delivery_statuses(at(10_000)).unwrap(), 1);
    assert!(store.delivery_status(ids[2]).unwrap().is_some());
    assert_eq!(store.prune_delivery_statuses(at(10_000)).unwrap(), 0);
    assert_eq!(store.delivery_statuses(T0, 100).unwrap().len(), 1);
}

#[test]
fn the_operator_lists_the_queue_with_schedules_and_statuses_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut rng = dime_testkit::seeded_rng(9);
    let ids: Vec<_> = (0..4)
        .map(|_| store.enqueue(&mut rng, Transport::Dmtp, AUTHOR, DEST, b"env", T0).unwrap())
        .collect();
    store.defer(&mut rng, ids[0], at(60), REASON, at(1)).unwrap();
    store.complete_delivered(&mut rng, ids[1], TXID, at(2)).unwrap();
    // ids[2] and ids[3] are leased (an attempt under way), due again when the lease ends.
    assert_eq!(store.lease(Transport::Dmtp, at(3), 300, 2).unwrap().len(), 2);

    let all = store.queued(QueueId(0), 10).unwrap();
    let listed: Vec<_> = all.iter().map(|e| (e.id, e.due, e.attempts)).collect();
    assert_eq!(listed, [(ids[0], at(60), 1), (ids[2], at(303), 0), (ids[3], at(303), 0)]);
    assert_eq!(
        all[0].status.as_ref().unwrap().state,
        DeliveryState::Deferred { next_attempt: at(60), reason: REASON.into() }
    );
    assert_eq!(all[1].status.as_ref().unwrap().state, DeliveryState::Queued);
    assert_eq!(all[2].status.as_ref().unwrap().destination, DEST);
    // Pages: after an id, at most `max`.
    assert_eq!(store.queued(QueueId(0), 1).unwrap(), all[..1]);
    assert_eq!(store.queued(ids[0], 1).unwrap(), all[1..2]);
    assert_eq!(store.queued(ids[2], 10).unwrap(), all[2..]);
    assert!(store.queued(ids[3], 10).unwrap().is_empty());
    assert!(store.queued(QueueId(u64::MAX), 10).unwrap().is_empty());
}

#[test]
fn long_reasons_are_cut_to_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut rng = dime_testkit::seeded_rng(4);
    let id = store.enqueue(&mut rng, Transport::Dmtp, AUTHOR, DEST, b"env", T0).unwrap();
    let long = "x".repeat(MAX_STATUS_TEXT_LEN * 4);
    store.complete_failed(&mut rng, id, &long, at(1)).unwrap();
    let DeliveryState::Failed { reason } = store.delivery_status(id).unwrap().unwrap().state else {
        panic!()
    };
    assert_eq!(reason.len(), MAX_STATUS_TEXT_LEN);
}

#[test]
fn destination_and_texts_are_not_in_clear_and_a_corrupt_status_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = dime_testkit::seeded_rng(5);
    let (a, b);
    {
        let store = open(dir.path());
        a = store.enqueue(&mut rng, Transport::Dmtp, AUTHOR, DEST, b"env", T0).unwrap();
        b = store.enqueue(&mut rng, Transport::Dmtp, AUTHOR, DEST, b"env", T0).unwrap();
        store.defer(&mut rng, a, at(60), REASON, at(1)).unwrap();
        store.complete_delivered(&mut rng, b, TXID, at(2)).unwrap();
        let log = format!("{:?}", store.delivery_statuses(T0, 10).unwrap());
        assert!(log.contains(DEST), "the reader API gives them back");
    }
    for canary in [DEST, "qzReasonCanary64", TXID] {
        for f in files(dir.path()) {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "{canary} found in {}",
                f.display()
            );
        }
    }
    // Another pepper does not open the statuses.
    let mut cfg = config(dir.path());
    cfg.pepper = dime_core::Secret::new(vec![0x11; 32]);
    let other = Store::open(cfg, default_provider()).unwrap();
    assert!(matches!(
        other.delivery_status(b),
        Err(QueueError::Backend(BackendError::Corrupt { .. }))
    ));
    drop(other);

    // A flipped bit: reported corrupt and quarantined; the entry's next change replaces it.
    let store = open(dir.path());
    store
        .backend()
        .write(&mut |t| {
            let key = a.0.to_be_bytes();
            let mut v = t.get(Table::Status, &key)?.unwrap();
            v[3] ^= 1;
            t.put(Table::Status, &key, &v)
        })
        .unwrap();
    assert!(matches!(
        store.delivery_status(a),
        Err(QueueError::Backend(BackendError::Corrupt { .. }))
    ));
    let quarantined = store.quarantined().unwrap();
    assert!(quarantined.contains(&(Table::Status.code(), a.0.to_be_bytes().to_vec())));
    assert_eq!(store.delivery_status(a).unwrap(), None);
    store.complete_failed(&mut rng, a, "gone", at(70)).unwrap();
    let s = store.delivery_status(a).unwrap().unwrap();
    assert_eq!(s.destination, DEST, "taken from the entry");
    assert_eq!(s.state, DeliveryState::Failed { reason: "gone".into() });
}

#[test]
fn settle_all_records_many_outcomes_at_once_and_a_missing_entry_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = dime_testkit::seeded_rng(5);
    let store = open(dir.path());
    let ids: Vec<QueueId> = (0..3)
        .map(|_| store.enqueue(&mut rng, Transport::Dmtp, AUTHOR, DEST, b"env", T0).unwrap())
        .collect();
    assert_eq!(store.lease(Transport::Dmtp, T0, 60, 10).unwrap().len(), 3);
    let outcomes = [
        (ids[0], Settlement::Delivered { txid: TXID.into() }),
        (ids[1], Settlement::Deferred { next_attempt: at(600), reason: REASON.into() }),
        (QueueId(999), Settlement::Delivered { txid: "t".into() }),
        (ids[2], Settlement::Failed { reason: REASON.into() }),
    ];
    let answers = store.settle_all(&mut rng, &outcomes, at(5)).unwrap();
    assert_eq!(answers.len(), 4);
    assert!(matches!(answers[0], Ok(1)), "{:?}", answers[0]);
    assert!(matches!(answers[1], Ok(1)), "{:?}", answers[1]);
    assert!(matches!(answers[2], Err(QueueError::NoSuchEntry)), "{:?}", answers[2]);
    assert!(matches!(answers[3], Ok(1)), "{:?}", answers[3]);
    drop(store);
    // Durable, and each as its one-entry form records it.
    let store = open(dir.path());
    let state = |id| store.delivery_status(id).unwrap().unwrap().state;
    assert_eq!(state(ids[0]), DeliveryState::Delivered { txid: TXID.into() });
    assert_eq!(
        state(ids[1]),
        DeliveryState::Deferred { next_attempt: at(600), reason: REASON.into() }
    );
    assert_eq!(state(ids[2]), DeliveryState::Failed { reason: REASON.into() });
    let left = store.queue_entries().unwrap();
    assert_eq!(left.iter().map(|e| (e.id, e.attempts)).collect::<Vec<_>>(), vec![(ids[1], 1)]);
    assert!(store.lease(Transport::Dmtp, at(599), 60, 10).unwrap().is_empty());
    assert_eq!(store.lease(Transport::Dmtp, at(600), 60, 10).unwrap().len(), 1);
    // Completed entries cannot be settled again; nothing else changes.
    let again = store.settle_all(&mut rng, &outcomes[..1], at(7)).unwrap();
    assert!(matches!(again[0], Err(QueueError::NoSuchEntry)));
    assert_eq!(store.delivery_status(ids[0]).unwrap().unwrap().updated, at(5));
}

#[test]
fn a_payload_or_a_bounce_at_the_envelope_limit_is_taken_and_one_octet_more_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut rng = dime_testkit::seeded_rng(7);
    let big = mailbox("big@example.org");
    let new = NewAccount {
        address: &big,
        password: b"pw",
        recovery: Recovery::None,
        quota_bytes: 1 << 30,
    };
    store.create_account(&mut rng, &org(1), &new, T0).unwrap();
    let limit = dime_store::MAX_ENVELOPE_LEN;
    let (at_limit, over) = (vec![7u8; limit], vec![7u8; limit + 1]);
    assert_eq!(
        store.enqueue(&mut rng, Transport::Dmtp, AUTHOR, DEST, &over, T0).unwrap_err(),
        QueueError::TooLarge { what: "queue payload", limit }
    );
    let id = store.enqueue(&mut rng, Transport::Dmtp, AUTHOR, DEST, &at_limit, T0).unwrap();
    assert_eq!(
        store.complete_bounced(&mut rng, id, REASON, &big, &over, at(5)).unwrap_err(),
        QueueError::Bounce(DeliveryError::TooLarge { what: "envelope", limit })
    );
    let d = store.complete_bounced(&mut rng, id, REASON, &big, &at_limit, at(5)).unwrap();
    assert_eq!(store.fetch(d.account, MailboxId::INBOX, d.uid).unwrap().len(), limit);
}
