//! The store's facets (`spec/storage.md` §1.1): each call answers with its own facet's error,
//! the facets are object safe, and a facet can be implemented without redb (a second backend).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{T0, create, mailbox, open, org};
use dime_core::{CryptoRngCore, Mailbox};
use dime_store::{
    AccountError, Accounts, Archive, ArchiveError, BackendError, Deliveries, DeliveryError,
    MAX_PIN_LEN, MailboxError, MailboxId, Mailboxes, PinError, Pins, QueueError, QueueId, Recovery,
    Settlement, Store, Timestamp, Uid,
};
use std::collections::HashMap;
use std::sync::Mutex;

#[test]
fn a_queue_call_on_a_missing_entry_is_the_queues_no_such_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut rng = dime_testkit::seeded_rng(1);
    // Through the facet alone, as a caller generic over backends holds it.
    let queue: &dyn dime_store::Queue = &store;
    let gone = QueueId(404);
    assert_eq!(queue.complete(gone).unwrap_err(), QueueError::NoSuchEntry);
    assert_eq!(
        queue.defer(&mut rng, gone, Timestamp(T0.0 + 60), "later", T0).unwrap_err(),
        QueueError::NoSuchEntry
    );
    assert_eq!(
        queue.complete_delivered(&mut rng, gone, "txid", T0).unwrap_err(),
        QueueError::NoSuchEntry
    );
    let settled = Settlement::Failed { reason: "no".into() };
    let answers = queue.settle_all(&mut rng, &[(gone, settled)], T0).unwrap();
    assert_eq!(answers, vec![Err(QueueError::NoSuchEntry)]);
    assert_eq!(queue.delivery_status(gone).unwrap(), None);
}

#[test]
fn each_facet_refuses_with_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut rng = dime_testkit::seeded_rng(2);
    let alice = mailbox("alice@example.org");
    let nobody = mailbox("nobody@example.org");
    let a = create(&store, &org(1), &alice, b"pw", Recovery::None).account;

    let accounts: &dyn Accounts = &store;
    assert_eq!(accounts.login(&nobody, b"pw", T0).unwrap_err(), AccountError::UnknownAccount);
    assert_eq!(accounts.login(&alice, b"nope", T0).unwrap_err(), AccountError::LoginFailed);

    let deliveries: &dyn Deliveries = &store;
    assert_eq!(deliveries.deliver(&nobody, b"x", T0).unwrap_err(), DeliveryError::UnknownAccount);

    let mailboxes: &dyn Mailboxes = &store;
    assert_eq!(
        mailboxes.fetch(a, MailboxId::INBOX, Uid(9)).unwrap_err(),
        MailboxError::NoSuchMessage
    );
    let mut s = accounts.login(&alice, b"pw", T0).unwrap();
    let late = Timestamp(T0.0 + 1_000_000);
    assert_eq!(mailboxes.mailboxes(&mut s, late).unwrap_err(), MailboxError::SessionExpired);

    let archive: &dyn Archive = &store;
    assert_eq!(
        archive.import(&mut rng, b"not an archive", b"pw", b"new", T0).unwrap_err(),
        ArchiveError::Refused("not a dime store archive")
    );

    let pins: &dyn Pins = &store;
    assert!(matches!(
        pins.set_pin(&mut rng, &alice, &vec![0; MAX_PIN_LEN + 1]),
        Err(PinError::TooLarge { .. })
    ));
}

/// A second backend's pins, in memory: the trait needs nothing of redb or of the store's
/// internals.
#[derive(Default)]
struct MemoryPins {
    pins: Mutex<HashMap<String, Vec<u8>>>,
}

impl Pins for MemoryPins {
    fn pin(&self, address: &Mailbox) -> Result<Option<Vec<u8>>, PinError> {
        let pins = self.pins.lock().map_err(|_| BackendError::Failed("poisoned".into()))?;
        Ok(pins.get(&address.to_string()).cloned())
    }

    fn set_pin(
        &self,
        _rng: &mut dyn CryptoRngCore,
        address: &Mailbox,
        record: &[u8],
    ) -> Result<(), PinError> {
        if record.len() > MAX_PIN_LEN {
            return Err(PinError::TooLarge { what: "signet pin", limit: MAX_PIN_LEN });
        }
        let mut pins = self.pins.lock().map_err(|_| BackendError::Failed("poisoned".into()))?;
        pins.insert(address.to_string(), record.to_vec());
        Ok(())
    }
}

/// The pins contract, the same for every backend.
fn pins_contract(pins: &dyn Pins) {
    let mut rng = dime_testkit::seeded_rng(3);
    let who = mailbox("someone@remote.test");
    assert_eq!(pins.pin(&who).unwrap(), None);
    pins.set_pin(&mut rng, &who, b"one").unwrap();
    pins.set_pin(&mut rng, &who, b"two").unwrap();
    assert_eq!(pins.pin(&who).unwrap().as_deref(), Some(&b"two"[..]));
    assert_eq!(
        pins.set_pin(&mut rng, &who, &vec![0; MAX_PIN_LEN + 1]).unwrap_err(),
        PinError::TooLarge { what: "signet pin", limit: MAX_PIN_LEN }
    );
    assert_eq!(pins.pin(&who).unwrap().as_deref(), Some(&b"two"[..]));
}

#[test]
fn a_facet_is_implementable_without_redb_and_both_backends_keep_its_contract() {
    pins_contract(&MemoryPins::default());
    let dir = tempfile::tempdir().unwrap();
    let store: Store = open(dir.path());
    pins_contract(&store);
}
