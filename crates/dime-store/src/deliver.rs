//! Delivery with group commit (`spec/storage.md` §4).
//!
//! [`Store::deliver`] hands the envelope to one committer thread and waits. The committer takes
//! every delivery waiting in its queue (up to [`MAX_GROUP_COMMIT`]), writes them in one
//! transaction, commits it durably (one fsync for the batch), then answers each caller. A
//! caller therefore returns only after its own delivery is on stable storage.

use crate::account::{load_account, put_body, save_account};
use crate::backend::{Table, WriteTxn};
use crate::codec::{CHECKSUM_LEN, blob_digest};
use crate::mail::{EntryRec, MsgRec, entry_key, load_mbox, mbox_key, msg_key};
use crate::{
    AccountId, Inner, MAX_ENVELOPE_LEN, MAX_GROUP_COMMIT, MailboxId, Store, StoreError, Timestamp,
    Uid,
};
use dime_core::Mailbox;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Where a delivered message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The recipient's account.
    pub account: AccountId,
    /// The mailbox (the inbox).
    pub mailbox: MailboxId,
    /// The new message's UID.
    pub uid: Uid,
}

struct Job {
    account: AccountId,
    envelope: Vec<u8>,
    /// [`blob_digest`] of the envelope, computed by the caller's thread before queueing, so
    /// the committer (which every delivery in a batch waits on) does no hashing.
    digest: [u8; CHECKSUM_LEN],
    now: Timestamp,
    reply: mpsc::SyncSender<Result<Delivered, StoreError>>,
}

pub(crate) struct Committer {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    pub(crate) fn start(inner: Arc<Inner>) -> Committer {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("dime-store-committer".into())
            .spawn(move || run(&inner, &rx))
            .ok();
        Committer { tx: Mutex::new(Some(tx)), thread }
    }

    fn sender(&self) -> Option<mpsc::Sender<Job>> {
        self.tx.lock().ok().and_then(|g| g.clone())
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(inner: &Inner, rx: &mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP_COMMIT {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let mut results: Vec<Option<Result<Delivered, StoreError>>> = Vec::new();
        let r = inner.backend.write(&mut |t| {
            results.clear();
            for j in &batch {
                // Item errors (quota) are decided before the item writes anything; a backend
                // error aborts the whole batch.
                match deliver_one(inner, t, j.account, &j.envelope, &j.digest, j.now) {
                    Err(StoreError::Backend(e)) => return Err(StoreError::Backend(e)),
                    other => results.push(Some(other)),
                }
            }
            Ok(())
        });
        for (i, j) in batch.into_iter().enumerate() {
            let answer = match &r {
                Ok(()) => {
                    results.get_mut(i).and_then(Option::take).unwrap_or(Err(StoreError::Closed))
                }
                Err(e) => Err(e.clone()),
            };
            let _ = j.reply.send(answer);
        }
    }
}

/// Writes one delivery inside a transaction; all checks come before the first write.
pub(crate) fn deliver_one(
    inner: &Inner,
    t: &mut dyn WriteTxn,
    a: AccountId,
    envelope: &[u8],
    digest: &[u8; CHECKSUM_LEN],
    now: Timestamp,
) -> Result<Delivered, StoreError> {
    let mut acc = load_account(inner, t, a)?;
    let size = envelope.len() as u64;
    if acc.used.saturating_add(size) > acc.quota {
        return Err(StoreError::OverQuota { used: acc.used, limit: acc.quota, size });
    }
    let m = MailboxId::INBOX;
    let mut mb = load_mbox(inner, t, a, m)?;
    let uid = mb.uid_next;
    mb.uid_next =
        uid.checked_add(1).ok_or(StoreError::TooLarge { what: "uid", limit: u32::MAX as usize })?;
    mb.modseq += 1;
    mb.count += 1;
    let seq = acc.next_msg;
    acc.next_msg += 1;
    acc.used += size;
    acc.count += 1;
    let msg = MsgRec {
        size,
        arrival: now.0,
        key_gen: acc.key_gen,
        digest: *digest,
        refs: vec![(m.0, uid)],
    };
    let mk = msg_key(a, seq);
    t.put(Table::Blobs, &mk, envelope)?;
    put_body(inner, t, Table::Messages, &mk, msg.encode())?;
    let e = EntryRec { seq, modseq: mb.modseq, flags: Vec::new() };
    put_body(inner, t, Table::Entries, &entry_key(a, m.0, uid), e.encode())?;
    put_body(inner, t, Table::Mailboxes, &mbox_key(a, m), mb.encode())?;
    save_account(inner, t, a, &acc)?;
    Ok(Delivered { account: a, mailbox: m, uid: Uid(uid) })
}

impl Store {
    /// Delivers a sealed envelope to `recipient`'s inbox. Needs no secret (the recipient may
    /// be offline). Returns only once the message is on stable storage; concurrent deliveries
    /// share one commit (group commit).
    pub fn deliver(
        &self,
        recipient: &Mailbox,
        envelope: &[u8],
        now: Timestamp,
    ) -> Result<Delivered, StoreError> {
        if envelope.len() > MAX_ENVELOPE_LEN {
            return Err(StoreError::TooLarge { what: "envelope", limit: MAX_ENVELOPE_LEN });
        }
        let account = self.inner.account_of(recipient)?;
        self.deliver_to(account, envelope, now)
    }

    /// [`Store::deliver`] by account id.
    pub fn deliver_to(
        &self,
        account: AccountId,
        envelope: &[u8],
        now: Timestamp,
    ) -> Result<Delivered, StoreError> {
        if envelope.len() > MAX_ENVELOPE_LEN {
            return Err(StoreError::TooLarge { what: "envelope", limit: MAX_ENVELOPE_LEN });
        }
        let digest = blob_digest(self.inner.p, envelope);
        let (reply, answer) = mpsc::sync_channel(1);
        let tx = self.committer.sender().ok_or(StoreError::Closed)?;
        tx.send(Job { account, envelope: envelope.to_vec(), digest, now, reply })
            .map_err(|_| StoreError::Closed)?;
        answer.recv().map_err(|_| StoreError::Closed)?
    }

    /// Delivers many envelopes in one transaction (imports, benchmarks' fill). All or none.
    pub fn deliver_many(
        &self,
        account: AccountId,
        envelopes: &[&[u8]],
        now: Timestamp,
    ) -> Result<Vec<Delivered>, StoreError> {
        if envelopes.iter().any(|e| e.len() > MAX_ENVELOPE_LEN) {
            return Err(StoreError::TooLarge { what: "envelope", limit: MAX_ENVELOPE_LEN });
        }
        let inner = &*self.inner;
        let digests: Vec<_> = envelopes.iter().map(|e| blob_digest(inner.p, e)).collect();
        let mut out = Vec::new();
        inner.backend.write(&mut |t| {
            out.clear();
            for (e, d) in envelopes.iter().zip(&digests) {
                out.push(deliver_one(inner, t, account, e, d, now)?);
            }
            Ok(())
        })?;
        Ok(out)
    }
}
