//! Removed mail leaves the store's files (`spec/storage.md` §12).
//!
//! A purge or an account deletion removes records in a backend transaction; the backend's file
//! may still hold their octets in free pages, and the delivery log in records already applied.
//! The purge and the deletion erase the log themselves (the committer's `erase_log`);
//! [`Store::compact`] rewrites the databases so that they hold only their live records.

use crate::backend::Backend;
use crate::{Store, StoreError};

impl Store {
    /// Compacts the store: the store's database and the key vault are each copied, live
    /// records only, into a new file that replaces the old one (renamed over it, the file and
    /// its directory synced), and the delivery log's records are overwritten with zeros. Once
    /// it returns `Ok(true)`, no file of the store holds an octet of a record removed before
    /// the call (a purged or expunged message, a deleted account, its shredding key), apart
    /// from what the file system itself keeps (`spec/storage.md` §12).
    ///
    /// The store stays in use: reads go on during the copy, writes and deliveries wait until
    /// it is over (a time that grows with the live data). `Ok(false)`: a database is not a
    /// file of the operating system (a test's file system) or its backend cannot compact, and
    /// was left as it was.
    ///
    /// # Errors
    /// The backend's (the old files are then kept, whole).
    pub fn compact(&self) -> Result<bool, StoreError> {
        let store = self.inner.backend.compact()?;
        let vault = self.inner.vault.compact()?;
        self.committer.erase_log()?;
        Ok(store && vault)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::backend::Table;
    use crate::testing::{any_file_contains, open_store};
    use crate::{Accounts, Deliveries, NewAccount, Recovery, Timestamp};
    use dime_core::Mailbox;

    #[test]
    fn compaction_after_a_deletion_leaves_no_copy_of_the_shredding_key_in_the_vault() {
        // `tests/purge.rs` checks the envelopes; this, the key that crypto-shredding
        // relies on (`spec/storage.md` §6.4): its octets stay in the vault's free pages
        // until a compaction.
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut rng = dime_testkit::seeded_rng(1);
        let org = dime_signet::OrgKeys::generate(&mut rng);
        let alice = Mailbox::parse("alice@example.org").unwrap();
        let new = NewAccount {
            address: &alice,
            password: b"pw",
            recovery: Recovery::None,
            quota_bytes: 1 << 20,
        };
        store.create_account(&mut rng, &org, &new, Timestamp(1_700_000_000)).unwrap();
        store.deliver(&alice, &[7; 40], Timestamp(1_700_000_000)).unwrap();
        let a = store.account_of(&alice).unwrap();
        let mut shred = None;
        store
            .inner
            .vault
            .read(&mut |t| {
                shred = t.get(Table::Vault, &a.0)?;
                Ok(())
            })
            .unwrap();
        let shred = shred.unwrap();
        store.delete_account(&alice).unwrap();
        assert!(any_file_contains(dir.path(), &shred), "the deletion alone left no copy");
        assert!(store.compact().unwrap());
        assert!(!any_file_contains(dir.path(), &shred), "the shredding key is still in a file");
    }
}
