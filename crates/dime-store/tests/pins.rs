//! The resolver's signet pins (`spec/storage.md` §7.2): stored durably under a keyed address
//! tag, sealed; they survive reopening; no address is in clear; a corrupt pin is quarantined
//! and the store stays usable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{files, mailbox, open};
use dime_store::{BackendError, MAX_PIN_LEN, PinError, Pins, Table};

#[test]
fn pins_round_trip_survive_reopening_and_hide_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = dime_testkit::seeded_rng(71);
    let who = mailbox("pin-canary-3e9d@remote.test");
    let other = mailbox("someone@remote.test");
    {
        let store = open(dir.path());
        assert_eq!(store.pin(&who).unwrap(), None);
        store.set_pin(&mut rng, &who, b"first record").unwrap();
        store.set_pin(&mut rng, &who, b"record-canary-77aa").unwrap();
        store.set_pin(&mut rng, &other, b"other").unwrap();
        assert_eq!(store.pin(&who).unwrap().as_deref(), Some(&b"record-canary-77aa"[..]));
        let big = vec![0u8; MAX_PIN_LEN + 1];
        assert!(matches!(
            store.set_pin(&mut rng, &who, &big),
            Err(PinError::TooLarge { what: "signet pin", .. })
        ));
    }
    let store = open(dir.path());
    assert_eq!(store.pin(&who).unwrap().as_deref(), Some(&b"record-canary-77aa"[..]));
    assert_eq!(store.pin(&other).unwrap().as_deref(), Some(&b"other"[..]));
    drop(store);
    for f in files(dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        for needle in ["pin-canary-3e9d", "record-canary-77aa"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} in clear in {}",
                f.display()
            );
        }
    }
}

#[test]
fn a_corrupt_pin_is_quarantined_and_the_store_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = dime_testkit::seeded_rng(72);
    let store = open(dir.path());
    let who = mailbox("bob@remote.test");
    store.set_pin(&mut rng, &who, b"a pin").unwrap();
    // Flip one byte of the sealed record, through the backend.
    let mut pairs = Vec::new();
    store
        .backend()
        .read(&mut |t| {
            pairs = t.range(Table::Pins, &[], &[0xff; 64], 10)?;
            Ok(())
        })
        .unwrap();
    assert_eq!(pairs.len(), 1);
    let (key, mut value) = pairs.remove(0);
    let last = value.len() - 1;
    value[last] ^= 1;
    store.backend().write(&mut |t| t.put(Table::Pins, &key, &value)).unwrap();
    assert!(matches!(
        store.pin(&who),
        Err(PinError::Backend(BackendError::Corrupt { what: "signet pin" }))
    ));
    assert!(store.quarantined().unwrap().contains(&(Table::Pins.code(), key.clone())));
    // Gone from its table: the next lookup finds no pin, and a new one can be set.
    assert_eq!(store.pin(&who).unwrap(), None);
    store.set_pin(&mut rng, &who, b"again").unwrap();
    assert_eq!(store.pin(&who).unwrap().as_deref(), Some(&b"again"[..]));
}
