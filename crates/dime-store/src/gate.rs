//! The store's backend behind the read gate of the delivery log (`spec/storage.md` §4.1).
//!
//! The committer answers a logged batch once its records are on stable storage and its
//! deferred transaction is applied, and commits that transaction right after. Between the two,
//! a caller already holds its answer (a UID) while the backend does not show the delivery
//! yet. [`Gated`] closes that window: every read, and every write transaction from outside
//! the committer, first waits until the last answered batch is committed. So a caller reads
//! its own deliveries, and nothing is ever seen before it is durable.
//!
//! If the deferred commit of an answered batch fails, the backend no longer holds what was
//! acknowledged (the records are safe in the log). The store is then *poisoned*: every
//! operation fails with [`StoreError::Backend`] until the store is opened again, which
//! replays the batch from the log.

use crate::StoreError;
use crate::backend::{Backend, ReadTxn, WriteTxn};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

/// A backend with the read gate.
#[derive(Debug)]
pub(crate) struct Gated {
    backend: Box<dyn Backend>,
    /// The number of the last logged batch whose callers were answered.
    answered: AtomicU64,
    /// The number of the last logged batch whose deferred transaction committed.
    committed: AtomicU64,
    /// Why the store is poisoned, once it is.
    poisoned: Mutex<Option<String>>,
    changed: Condvar,
}

fn poisoned_err(why: &str) -> StoreError {
    StoreError::Backend(format!(
        "the store must be opened again: a delivery was acknowledged but its commit failed \
         ({why}); reopening replays it from the delivery log"
    ))
}

impl Gated {
    pub(crate) fn new(backend: Box<dyn Backend>) -> Gated {
        Gated {
            backend,
            answered: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            poisoned: Mutex::new(None),
            changed: Condvar::new(),
        }
    }

    /// The committer is about to answer batch `n` (before it commits).
    pub(crate) fn answering(&self, n: u64) {
        self.answered.store(n, Ordering::SeqCst);
    }

    /// Batch `n` committed: readers waiting for it go on.
    pub(crate) fn committed(&self, n: u64) {
        let _g = self.poisoned.lock();
        self.committed.store(n, Ordering::SeqCst);
        self.changed.notify_all();
    }

    /// An answered batch did not commit: every operation fails from now on.
    pub(crate) fn poison(&self, why: &str) {
        if let Ok(mut g) = self.poisoned.lock() {
            g.get_or_insert_with(|| why.to_owned());
        }
        self.changed.notify_all();
    }

    /// The error to give while poisoned.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        match self.poisoned.lock() {
            Ok(g) => g.as_deref().map_or(Ok(()), |why| Err(poisoned_err(why))),
            Err(_) => Err(poisoned_err("a thread panicked")),
        }
    }

    /// Waits until every answered batch is committed (at once, nearly always).
    fn wait_visible(&self) -> Result<(), StoreError> {
        let want = self.answered.load(Ordering::SeqCst);
        if self.committed.load(Ordering::SeqCst) >= want {
            return self.check();
        }
        let mut g = self.poisoned.lock().map_err(|_| poisoned_err("a thread panicked"))?;
        loop {
            if let Some(why) = g.as_deref() {
                return Err(poisoned_err(why));
            }
            if self.committed.load(Ordering::SeqCst) >= want {
                return Ok(());
            }
            g = self.changed.wait(g).map_err(|_| poisoned_err("a thread panicked"))?;
        }
    }
}

impl Backend for Gated {
    fn read(
        &self,
        f: &mut dyn FnMut(&dyn ReadTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.wait_visible()?;
        self.backend.read(f)
    }

    /// Waits inside the transaction: once it holds the write lock, the committer's open
    /// transaction (if any) has ended, committed or failed, and the gate learns which at once.
    fn write(
        &self,
        f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.backend.write(&mut |t| {
            self.wait_visible()?;
            f(t)
        })
    }

    fn defers(&self) -> bool {
        self.backend.defers()
    }

    fn write_deferred(
        &self,
        f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.backend.write_deferred(f)
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        self.backend.checkpoint()
    }

    /// A compaction copies what the backend holds: every answered batch first commits (the
    /// committer's transaction ends before a compaction can hold the writers back).
    fn compact(&self) -> Result<bool, StoreError> {
        self.check()?;
        self.backend.compact()
    }
}
