//! The queue at a glance, for `dimed`'s metrics (`spec/dimed.md` §8): how many entries and
//! when the oldest was queued, read without a scan, so that a scrape costs the same on a queue
//! of ten entries and one of a million.

use crate::backend::{Backend, Table};
use crate::status::load_status;
use crate::{Store, StoreError, Timestamp};

/// What [`Store::queue_stats`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    /// Entries in the queue, held ones and those under way included.
    pub depth: u64,
    /// When the oldest entry was queued; `None` when the queue is empty or that entry's status
    /// does not read.
    pub oldest_queued: Option<Timestamp>,
}

impl Store {
    /// The queue's depth and its oldest entry, in one read: the depth is the schedule table's
    /// count, which the backend keeps (redb: in the table's header); entry ids grow with each
    /// entry queued, so the oldest is the first schedule record, whose status (one record
    /// opened) says when it was queued.
    ///
    /// # Errors
    /// The backend's.
    pub fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        let inner = &*self.inner;
        let mut stats = QueueStats { depth: 0, oldest_queued: None };
        inner.backend.read(&mut |t| {
            let depth = t.len(Table::Queue)?;
            let first = t.range(Table::Queue, &[], &[0xff; 9], 1)?;
            let id = first.first().and_then(|(k, _)| <[u8; 8]>::try_from(k.as_slice()).ok());
            let oldest_queued = match id {
                Some(id) => load_status(inner, t, &inner.keys.status, u64::from_be_bytes(id))
                    .ok()
                    .flatten()
                    .map(|s| s.queued),
                None => None,
            };
            stats = QueueStats { depth, oldest_queued };
            Ok(())
        })?;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing::open_store;
    use crate::{AccountId, Queue, Transport};

    #[test]
    fn depth_and_oldest_follow_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut rng = dime_testkit::seeded_rng(3);
        assert_eq!(store.queue_stats().unwrap(), QueueStats { depth: 0, oldest_queued: None });
        let author = AccountId([1; 16]);
        let ids: Vec<_> = (0..3u64)
            .map(|i| {
                let t = Timestamp(1_000 + i);
                store.enqueue(&mut rng, Transport::Dmtp, author, "b.test", b"p", t).unwrap()
            })
            .collect();
        let oldest = |s: &Store| s.queue_stats().unwrap().oldest_queued;
        assert_eq!(store.queue_stats().unwrap().depth, 3);
        assert_eq!(oldest(&store), Some(Timestamp(1_000)));
        store.complete_delivered(&mut rng, ids[0], "tx", Timestamp(2_000)).unwrap();
        assert_eq!(store.queue_stats().unwrap().depth, 2);
        assert_eq!(oldest(&store), Some(Timestamp(1_001)));
        for id in &ids[1..] {
            store.complete(*id).unwrap();
        }
        assert_eq!(store.queue_stats().unwrap(), QueueStats { depth: 0, oldest_queued: None });
    }
}
