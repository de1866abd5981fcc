//! Removed mail leaves the store's files (`spec/storage.md` §12).
//!
//! A purge or an account deletion removes records in a backend transaction; the backend's file
//! may still hold their octets in free pages, and the delivery log in records already applied.
//! The purge and the deletion erase the log themselves (the committer's `erase_log`);
//! [`Store::compact`] rewrites the databases so that they hold only their live records.

use crate::account::{get_body, put_body};
use crate::backend::{Backend, Table};
use crate::codec::Dec;
use crate::{Store, StoreError, Timestamp};

/// The key of the compaction schedule's mark in [`Table::Jobs`]: the time of the last
/// compaction, or of the first time a schedule asked when none has run (a u64).
const COMPACTION_MARK: &[u8] = b"compaction";

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
    /// `now` is recorded as the time of the last compaction ([`Store::compaction_due`]).
    ///
    /// # Errors
    /// The backend's (the old files are then kept, whole).
    pub fn compact(&self, now: Timestamp) -> Result<bool, StoreError> {
        let store = self.inner.backend.compact()?;
        let vault = self.inner.vault.compact()?;
        self.set_compaction_mark(now)?;
        self.committer.erase_log()?;
        Ok(store && vault)
    }

    /// When a compaction is due on a schedule of one every `interval` seconds: `interval`
    /// after the last [`Store::compact`]. The mark is kept in the store, so restarting the
    /// server does not put a compaction off; when none has run yet, the schedule starts at
    /// the first call (`now` is recorded).
    ///
    /// # Errors
    /// The backend's.
    pub fn compaction_due(&self, interval: u64, now: Timestamp) -> Result<Timestamp, StoreError> {
        let inner = &*self.inner;
        let mut mark = None;
        inner.backend.read(&mut |t| {
            mark = match get_body(inner, t, Table::Jobs, COMPACTION_MARK, "compaction mark")? {
                None => None,
                Some(b) => {
                    let mut d = Dec::new(&b, "compaction mark");
                    let v = d.u64()?;
                    d.finish()?;
                    Some(v)
                }
            };
            Ok(())
        })?;
        let mark = match mark {
            Some(m) => m,
            None => {
                self.set_compaction_mark(now)?;
                now.0
            }
        };
        Ok(Timestamp(mark.saturating_add(interval)))
    }

    fn set_compaction_mark(&self, now: Timestamp) -> Result<(), StoreError> {
        let inner = &*self.inner;
        inner.backend.write(&mut |t| {
            put_body(inner, t, Table::Jobs, COMPACTION_MARK, now.0.to_be_bytes().to_vec())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::backend::Table;
    use crate::testing::{any_file_contains, open_store};
    use crate::{Accounts, Deliveries, Timestamp};

    #[test]
    fn compaction_after_a_deletion_leaves_no_copy_of_the_shredding_key_in_the_vault() {
        // `tests/purge.rs` checks the envelopes; this, the key that crypto-shredding
        // relies on (`spec/storage.md` §6.4): its octets stay in the vault's free pages
        // until a compaction.
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut rng = dime_testkit::seeded_rng(1);
        let alice = crate::testing::add_alice(&store, &mut rng, Timestamp(1_700_000_000));
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
        assert!(store.compact(Timestamp(1_700_000_000)).unwrap());
        assert!(!any_file_contains(dir.path(), &shred), "the shredding key is still in a file");
    }

    #[test]
    fn the_schedule_counts_from_the_last_compaction_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        // None yet: the schedule starts at the first ask, and a later ask (a restart) keeps it.
        assert_eq!(store.compaction_due(100, Timestamp(1_000)).unwrap(), Timestamp(1_100));
        drop(store);
        let store = open_store(dir.path());
        assert_eq!(store.compaction_due(100, Timestamp(1_050)).unwrap(), Timestamp(1_100));
        assert!(store.compact(Timestamp(1_120)).unwrap());
        drop(store);
        let store = open_store(dir.path());
        assert_eq!(store.compaction_due(100, Timestamp(1_130)).unwrap(), Timestamp(1_220));
    }
}
