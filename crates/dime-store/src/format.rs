//! The store's format (`spec/storage.md` §2.1): a number kept in the `jobs` table, fixed when
//! the store is created, that says how its blob digests are computed. A store written before
//! the number existed is format 1 when it holds an account or a message, and keeps that format;
//! an empty one becomes format 2.

use crate::StoreError;
use crate::backend::{Backend, Table};
use crate::codec::{BlobDigest, open_record, seal_record};
use dime_core::crypto::CryptoProvider;

/// The key of the format in [`Table::Jobs`].
const FORMAT_KEY: &[u8] = b"store format";

/// Reads the format of the store on `backend`, writing it first when the store has none, and
/// gives how its blob digests are computed.
pub(crate) fn open(p: &CryptoProvider, backend: &dyn Backend) -> Result<BlobDigest, StoreError> {
    let mut found = None;
    let mut empty = false;
    backend.read(&mut |t| {
        found = match t.get(Table::Jobs, FORMAT_KEY)? {
            None => None,
            Some(v) => {
                // Nothing says which format a store with a damaged format record has: it is
                // not opened (and the record is not quarantined, which would lose it).
                let corrupt = || StoreError::Backend("the store format record is corrupt".into());
                let b = open_record(p, Table::Jobs, FORMAT_KEY, &v, "store format")
                    .map_err(|_| corrupt())?;
                Some(u32::from_be_bytes(b.try_into().map_err(|_| corrupt())?))
            }
        };
        empty = [Table::Accounts, Table::Messages]
            .into_iter()
            .map(|table| t.range(table, &[], &[0xff; 64], 1))
            .collect::<Result<Vec<_>, _>>()?
            .iter()
            .all(Vec::is_empty);
        Ok(())
    })?;
    let format = match found {
        Some(f) => f,
        None => {
            let f = if empty { crate::STORE_FORMAT } else { 1 };
            let v = seal_record(p, Table::Jobs, FORMAT_KEY, f.to_be_bytes().to_vec());
            backend.write(&mut |t| t.put(Table::Jobs, FORMAT_KEY, &v))?;
            f
        }
    };
    BlobDigest::ALL
        .into_iter()
        .find(|d| d.format() == format)
        .ok_or(StoreError::Config("the store's format is newer than this version of dime"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::mail::MsgRec;
    use crate::testing::{config, open_store};
    use crate::{Accounts, Archive, BackendError, Deliveries, MailboxError, Mailboxes};
    use crate::{MailboxId, NewAccount, Recovery, RedbBackend, Store, Timestamp, Uid};
    use dime_core::Mailbox;
    use dime_core::crypto::{Hashed, default_provider};
    use std::path::Path;

    const T0: Timestamp = Timestamp(1_700_000_000);

    fn raw(dir: &Path) -> RedbBackend {
        RedbBackend::open(&dir.join("data").join("store.redb")).unwrap()
    }

    fn stored_format(b: &dyn Backend) -> Option<u32> {
        let mut f = None;
        b.read(&mut |t| {
            f = t
                .get(Table::Jobs, FORMAT_KEY)?
                .map(|v| u32::from_be_bytes(v[..4].try_into().unwrap()));
            Ok(())
        })
        .unwrap();
        f
    }

    /// What a store written before formats looks like: no format record, every message's
    /// digest computed the format 1 way.
    fn make_pre_format(dir: &Path) {
        let p = default_provider();
        raw(dir)
            .write(&mut |t| {
                t.delete(Table::Jobs, FORMAT_KEY)?;
                for (k, v) in t.range(Table::Messages, &[], &[0xff; 64], usize::MAX)? {
                    let mut m = MsgRec::decode(open_record(p, Table::Messages, &k, &v, "m")?)?;
                    let blob = t.get(Table::Blobs, &k)?.unwrap();
                    m.digest = BlobDigest::Prefixed.of(p, &blob);
                    t.put(Table::Messages, &k, &seal_record(p, Table::Messages, &k, m.encode()))?;
                }
                Ok(())
            })
            .unwrap();
    }

    fn account(store: &Store, alice: &Mailbox) -> crate::AccountId {
        let org = dime_signet::OrgKeys::generate(&mut dime_testkit::seeded_rng(1));
        let new = NewAccount {
            address: alice,
            password: b"pw",
            recovery: Recovery::None,
            quota_bytes: 1 << 20,
        };
        store.create_account(&mut dime_testkit::seeded_rng(2), &org, &new, T0).unwrap().account
    }

    #[test]
    fn a_new_store_is_format_2_and_takes_the_digest_from_the_hash_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let p = default_provider();
        let store = open_store(dir.path());
        assert_eq!(stored_format(store.backend()), Some(crate::STORE_FORMAT));
        assert_eq!(store.format(), crate::STORE_FORMAT);
        let alice = Mailbox::parse("alice@example.org").unwrap();
        let a = account(&store, &alice);
        let good = store.deliver_hashed(&alice, &Hashed::new(p, b"one".to_vec()), T0).unwrap();
        let plain = store.deliver(&alice, b"two", T0).unwrap();
        // A hash that is not the envelope's is taken as given: the message then reads as
        // corrupt, so the digest came from the hash and not from hashing the envelope.
        let wrong = Hashed::from_parts(b"three".to_vec(), [9; 64]);
        let lied = store.deliver_hashed(&alice, &wrong, T0).unwrap();
        assert_eq!(store.fetch(a, MailboxId::INBOX, good.uid).unwrap(), b"one");
        assert_eq!(store.fetch(a, MailboxId::INBOX, plain.uid).unwrap(), b"two");
        assert_eq!(
            store.fetch(a, MailboxId::INBOX, lied.uid).unwrap_err(),
            MailboxError::Backend(BackendError::Corrupt { what: "message" })
        );
    }

    #[test]
    fn a_store_written_before_formats_keeps_format_1_and_its_digests() {
        let dir = tempfile::tempdir().unwrap();
        let p = default_provider();
        let alice = Mailbox::parse("alice@example.org").unwrap();
        let a = {
            let store = open_store(dir.path());
            let a = account(&store, &alice);
            store.deliver(&alice, b"before", T0).unwrap();
            a
        };
        make_pre_format(dir.path());
        assert_eq!(stored_format(&raw(dir.path())), None);
        let store = open_store(dir.path());
        assert_eq!(stored_format(store.backend()), Some(1));
        assert_eq!(store.format(), 1);
        assert_eq!(store.fetch(a, MailboxId::INBOX, Uid(1)).unwrap(), b"before");
        let d = store.deliver_hashed(&alice, &Hashed::new(p, b"after".to_vec()), T0).unwrap();
        assert_eq!(store.fetch(a, MailboxId::INBOX, d.uid).unwrap(), b"after");
        drop(store);
        // Kept: a reopened store is format 1 still.
        let store = open_store(dir.path());
        assert_eq!(stored_format(store.backend()), Some(1));
        assert_eq!(store.format(), 1);
        assert_eq!(store.fetch(a, MailboxId::INBOX, d.uid).unwrap(), b"after");
    }

    #[test]
    fn an_account_exported_from_a_format_1_store_imports_into_a_format_2_store() {
        let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let alice = Mailbox::parse("alice@example.org").unwrap();
        {
            let store = open_store(old.path());
            account(&store, &alice);
            store.deliver(&alice, b"before", T0).unwrap();
        }
        make_pre_format(old.path());
        let store = open_store(old.path());
        assert_eq!(stored_format(store.backend()), Some(1));
        assert_eq!(store.format(), 1);
        let mut rng = dime_testkit::seeded_rng(3);
        let mut s = store.login(&alice, b"pw", T0).unwrap();
        let archive = store.export(&mut rng, &mut s, b"archive pw", T0).unwrap();
        let other = open_store(new.path());
        assert_eq!(stored_format(other.backend()), Some(crate::STORE_FORMAT));
        let (a, _) = other.import(&mut rng, &archive, b"archive pw", b"new pw", T0).unwrap();
        assert_eq!(other.fetch(a, MailboxId::INBOX, Uid(1)).unwrap(), b"before");
    }

    #[test]
    fn an_empty_store_without_a_format_becomes_format_2_and_a_newer_or_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(open_store(dir.path()));
        make_pre_format(dir.path());
        let store = open_store(dir.path());
        assert_eq!(stored_format(store.backend()), Some(crate::STORE_FORMAT));
        assert_eq!(store.format(), crate::STORE_FORMAT);
        drop(store);
        let p = default_provider();
        let v = seal_record(p, Table::Jobs, FORMAT_KEY, 3u32.to_be_bytes().to_vec());
        raw(dir.path()).write(&mut |t| t.put(Table::Jobs, FORMAT_KEY, &v)).unwrap();
        assert_eq!(
            Store::open(config(dir.path()), p).unwrap_err(),
            StoreError::Config("the store's format is newer than this version of dime")
        );
        let mut damaged = seal_record(p, Table::Jobs, FORMAT_KEY, 2u32.to_be_bytes().to_vec());
        damaged[0] ^= 1;
        raw(dir.path()).write(&mut |t| t.put(Table::Jobs, FORMAT_KEY, &damaged)).unwrap();
        assert_eq!(
            Store::open(config(dir.path()), p).unwrap_err(),
            StoreError::Backend("the store format record is corrupt".into())
        );
        assert!(stored_format(&raw(dir.path())).is_some(), "the damaged record is kept");
    }
}
