//! Delivery status of outbound queue entries (`spec/storage.md` §7.1).
//!
//! Every queue entry has a status record from [`Queue::enqueue`](crate::Queue::enqueue) on: queued, deferred (with its
//! attempts and next attempt), delivered (with the destination's transaction id), failed (with
//! a short reason) or bounced. A change to an entry and its status is one write transaction
//! ([`Queue::complete_delivered`](crate::Queue::complete_delivered), [`Queue::complete_failed`](crate::Queue::complete_failed), [`Queue::complete_bounced`](crate::Queue::complete_bounced),
//! [`Queue::defer`](crate::Queue::defer)), so no crash leaves an entry gone without a final status. The destination
//! and the texts are sealed under a key derived from the pepper; the state, the times and the
//! attempt count are clear (listing and pruning run on them without opening anything). The
//! author's account id is sealed with the destination, so that the author, and nobody else,
//! can be shown the status.

use crate::account::{get_body, put_body};
use crate::backend::{Backend, ReadTxn, Table, WriteTxn};
use crate::codec::{Dec, Enc, open_record};
use crate::keys::{open, seal};
use crate::queue::QueueId;
use crate::{AccountId, Inner, Store, StoreError, Timestamp, quarantine, quarantine_in};
use dime_core::CryptoRngCore;
use dime_core::crypto::AeadKey;

/// Largest reason or transaction id a status keeps, in octets (`spec/storage.md` §7.1);
/// longer text is cut at a character boundary.
pub const MAX_STATUS_TEXT_LEN: usize = 256;

/// The record version written (`spec/storage.md` §7.1): 2 seals the author's account id.
const VERSION: u8 = 2;
/// The record version before the author: read, never written.
const VERSION_1: u8 = 1;

/// Where a queue entry's delivery stands (`spec/storage.md` §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its first attempt.
    Queued,
    /// A temporary failure; due again at `next_attempt`.
    Deferred {
        /// The next attempt.
        next_attempt: Timestamp,
        /// Why the last attempt failed.
        reason: String,
    },
    /// Stored by the destination; the entry is complete.
    Delivered {
        /// The destination's transaction id.
        txid: String,
    },
    /// Failed for good (a permanent refusal, or the maximum lifetime passed) and no bounce
    /// reached the author; the entry is complete.
    Failed {
        /// Why.
        reason: String,
    },
    /// Failed for good, and a bounce was delivered to the author; the entry is complete.
    Bounced {
        /// Why the delivery failed.
        reason: String,
    },
}

impl DeliveryState {
    /// Whether the entry is complete (delivered, failed or bounced).
    pub fn is_final(&self) -> bool {
        is_final_code(self.code())
    }

    fn code(&self) -> u8 {
        match self {
            DeliveryState::Queued => 1,
            DeliveryState::Deferred { .. } => 2,
            DeliveryState::Delivered { .. } => 3,
            DeliveryState::Failed { .. } => 4,
            DeliveryState::Bounced { .. } => 5,
        }
    }

    fn text(&self) -> &str {
        match self {
            DeliveryState::Queued => "",
            DeliveryState::Deferred { reason, .. }
            | DeliveryState::Failed { reason }
            | DeliveryState::Bounced { reason } => reason,
            DeliveryState::Delivered { txid } => txid,
        }
    }

    fn next_attempt(&self) -> u64 {
        match self {
            DeliveryState::Deferred { next_attempt, .. } => next_attempt.0,
            _ => 0,
        }
    }
}

fn is_final_code(code: u8) -> bool {
    matches!(code, 3..=5)
}

/// The delivery status of one queue entry (`spec/storage.md` §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStatus {
    /// The queue entry.
    pub id: QueueId,
    /// The account that queued it: `None` for a status written before statuses recorded it
    /// (version 1), or rewritten after its record did not open.
    pub author: Option<AccountId>,
    /// Its destination (domain or host), as it was queued.
    pub destination: String,
    /// When it was queued.
    pub queued: Timestamp,
    /// When this status was written.
    pub updated: Timestamp,
    /// Delivery attempts made so far (the one that completed the entry included).
    pub attempts: u32,
    /// Where it stands.
    pub state: DeliveryState,
}

/// `text` cut to at most [`MAX_STATUS_TEXT_LEN`] octets, at a character boundary.
fn cut(text: &str) -> &str {
    if text.len() <= MAX_STATUS_TEXT_LEN {
        return text;
    }
    let mut end = MAX_STATUS_TEXT_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

/// The clear part of a status record.
pub(crate) struct Head {
    version: u8,
    state: u8,
    queued: u64,
    updated: u64,
    attempts: u32,
    next_attempt: u64,
}

impl Head {
    /// The clear part of `s`'s record, in record `version`.
    fn of(s: &DeliveryStatus, version: u8) -> Head {
        Head {
            version,
            state: s.state.code(),
            queued: s.queued.0,
            updated: s.updated.0,
            attempts: s.attempts,
            next_attempt: s.state.next_attempt(),
        }
    }

    /// The record of entry `id`: this clear part, then `pt` sealed under `key` with the clear
    /// part in its associated data.
    fn seal(
        &self,
        inner: &Inner,
        rng: &mut dyn CryptoRngCore,
        key: &AeadKey,
        id: u64,
        pt: &[u8],
    ) -> Vec<u8> {
        let clear = self.encode();
        let sealed = seal(inner.p, rng, key, &status_aad(id, &clear), pt);
        Enc::new().raw(&clear).bytes(&sealed).finish()
    }

    fn encode(&self) -> Vec<u8> {
        Enc::new()
            .u8(self.version)
            .u8(self.state)
            .u64(self.queued)
            .u64(self.updated)
            .u32(self.attempts)
            .u64(self.next_attempt)
            .finish()
    }
}

/// Decodes a record body into its clear part, its encoded clear part and the sealed part.
pub(crate) fn decode(b: &[u8]) -> Result<(Head, &[u8], &[u8]), StoreError> {
    let mut d = Dec::new(b, "delivery status");
    let version = d.u8()?;
    if version != VERSION && version != VERSION_1 {
        return Err(StoreError::Corrupt { what: "delivery status" });
    }
    let head = Head {
        version,
        state: d.u8()?,
        queued: d.u64()?,
        updated: d.u64()?,
        attempts: d.u32()?,
        next_attempt: d.u64()?,
    };
    if !(1..=5).contains(&head.state) {
        return Err(StoreError::Corrupt { what: "delivery status" });
    }
    let clear =
        b.get(..1 + 1 + 8 + 8 + 4 + 8).ok_or(StoreError::Corrupt { what: "delivery status" })?;
    let sealed = d.bytes()?;
    d.finish()?;
    Ok((head, clear, sealed))
}

fn status_aad(id: u64, clear: &[u8]) -> Vec<u8> {
    Enc::new().u64(id).raw(clear).finish()
}

fn time_key(updated: u64, id: u64) -> Vec<u8> {
    Enc::new().u64(updated).u64(id).finish()
}

/// The status of `id`, opened with `key`.
pub(crate) fn load_status(
    inner: &Inner,
    t: &dyn ReadTxn,
    key: &AeadKey,
    id: u64,
) -> Result<Option<DeliveryStatus>, StoreError> {
    let Some(b) = get_body(inner, t, Table::Status, &id.to_be_bytes(), "delivery status")? else {
        return Ok(None);
    };
    let (h, clear, sealed) = decode(&b)?;
    let pt = open(inner.p, key, &status_aad(id, clear), sealed)
        .map_err(|_| StoreError::Corrupt { what: "delivery status" })?;
    let mut d = Dec::new(&pt, "delivery status");
    let destination = String::from_utf8_lossy(d.bytes()?).into_owned();
    let text = String::from_utf8_lossy(d.bytes()?).into_owned();
    let author = if h.version == VERSION_1 {
        None
    } else {
        match d.bytes()? {
            [] => None,
            a => Some(AccountId(
                a.try_into().map_err(|_| StoreError::Corrupt { what: "delivery status" })?,
            )),
        }
    };
    d.finish()?;
    let state = match h.state {
        1 => DeliveryState::Queued,
        2 => DeliveryState::Deferred { next_attempt: Timestamp(h.next_attempt), reason: text },
        3 => DeliveryState::Delivered { txid: text },
        4 => DeliveryState::Failed { reason: text },
        _ => DeliveryState::Bounced { reason: text },
    };
    Ok(Some(DeliveryStatus {
        id: QueueId(id),
        author,
        destination,
        queued: Timestamp(h.queued),
        updated: Timestamp(h.updated),
        attempts: h.attempts,
        state,
    }))
}

/// Writes `s` inside a transaction, replacing the entry's previous status and its index key.
pub(crate) fn put_status(
    inner: &Inner,
    t: &mut dyn WriteTxn,
    rng: &mut dyn CryptoRngCore,
    key: &AeadKey,
    s: &DeliveryStatus,
) -> Result<(), StoreError> {
    let id = s.id.0;
    // A previous record that does not decode leaves at most a stale index key behind, which
    // listing skips and pruning removes.
    if let Ok(Some(old)) = get_body(inner, t, Table::Status, &id.to_be_bytes(), "delivery status")
        && let Ok((h, _, _)) = decode(&old)
    {
        t.delete(Table::StatusTime, &time_key(h.updated, id))?;
    }
    let author = s.author.as_ref().map_or(&[][..], |a| &a.0[..]);
    let pt = Enc::new()
        .bytes(s.destination.as_bytes())
        .bytes(cut(s.state.text()).as_bytes())
        .bytes(author)
        .finish();
    let body = Head::of(s, VERSION).seal(inner, rng, key, id, &pt);
    put_body(inner, t, Table::Status, &id.to_be_bytes(), body)?;
    t.put(Table::StatusTime, &time_key(s.updated.0, id), &[])
}

/// What pruning does with one index key.
enum Prune {
    /// Keep the status (an entry still in the queue).
    Keep,
    /// Remove the index key only (stale: the record moved on or is gone).
    Index,
    /// Remove the status and its index key.
    Both,
    /// Quarantine the record (it does not decode) and remove the index key.
    Corrupt,
}

fn prune_decision(
    inner: &Inner,
    t: &dyn ReadTxn,
    updated: u64,
    id: u64,
) -> Result<Prune, StoreError> {
    let Some(v) = t.get(Table::Status, &id.to_be_bytes())? else {
        return Ok(Prune::Index);
    };
    let Ok(body) = open_record(inner.p, Table::Status, &id.to_be_bytes(), &v, "delivery status")
    else {
        return Ok(Prune::Corrupt);
    };
    let Ok((h, _, _)) = decode(body) else {
        return Ok(Prune::Corrupt);
    };
    if h.updated != updated {
        return Ok(Prune::Index);
    }
    if is_final_code(h.state) || t.get(Table::Queue, &id.to_be_bytes())?.is_none() {
        // Final, or an entry that left the queue without a final status (`Store::complete`).
        Ok(Prune::Both)
    } else {
        Ok(Prune::Keep)
    }
}

fn index_id(k: &[u8]) -> Option<(u64, u64)> {
    let updated = u64::from_be_bytes(k.get(..8)?.try_into().ok()?);
    let id = u64::from_be_bytes(k.get(8..16)?.try_into().ok()?);
    Some((updated, id))
}

impl Store {
    /// The body of [`Queue::delivery_status`](crate::Queue::delivery_status), with the store's low-level error.
    pub(crate) fn delivery_status_inner(
        &self,
        id: QueueId,
    ) -> Result<Option<DeliveryStatus>, StoreError> {
        let inner = &*self.inner;
        let key = &inner.keys.status;
        let mut out = None;
        let r = inner.backend.read(&mut |t| {
            out = load_status(inner, t, key, id.0)?;
            Ok(())
        });
        if let Err(StoreError::Corrupt { what }) = r {
            quarantine(inner, Table::Status, &id.0.to_be_bytes());
            return Err(StoreError::Corrupt { what });
        }
        r?;
        Ok(out)
    }

    /// The body of [`Queue::delivery_statuses`](crate::Queue::delivery_statuses), with the store's low-level error.
    pub(crate) fn delivery_statuses_inner(
        &self,
        since: Timestamp,
        max: usize,
    ) -> Result<Vec<DeliveryStatus>, StoreError> {
        let inner = &*self.inner;
        let key = &inner.keys.status;
        let mut out = Vec::new();
        let mut bad = Vec::new();
        inner.backend.read(&mut |t| {
            out.clear();
            bad.clear();
            let start = time_key(since.0, 0);
            let mut from = start;
            // Stale index keys are skipped; read on until `max` statuses or the end.
            while out.len() < max {
                let batch = t.range(Table::StatusTime, &from, &[0xff; 17], max - out.len())?;
                let Some((last, _)) = batch.last() else { break };
                from = [last.as_slice(), &[0]].concat();
                for (k, _) in &batch {
                    let Some((updated, id)) = index_id(k) else { continue };
                    match load_status(inner, t, key, id) {
                        Ok(Some(s)) if s.updated.0 == updated => out.push(s),
                        Ok(_) => {}
                        Err(StoreError::Corrupt { .. }) => bad.push(id),
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok(())
        })?;
        for id in bad {
            quarantine(inner, Table::Status, &id.to_be_bytes());
        }
        Ok(out)
    }

    /// The body of [`Queue::prune_delivery_statuses`](crate::Queue::prune_delivery_statuses), with the store's low-level error.
    pub(crate) fn prune_delivery_statuses_inner(
        &self,
        before: Timestamp,
    ) -> Result<usize, StoreError> {
        let inner = &*self.inner;
        let end = time_key(before.0, 0);
        let mut pending = false;
        inner.backend.read(&mut |t| {
            pending = false;
            for (k, _) in t.range(Table::StatusTime, &[], &end, usize::MAX)? {
                let Some((updated, id)) = index_id(&k) else {
                    pending = true;
                    break;
                };
                if !matches!(prune_decision(inner, t, updated, id)?, Prune::Keep) {
                    pending = true;
                    break;
                }
            }
            Ok(())
        })?;
        if !pending {
            return Ok(0);
        }
        let mut removed = 0;
        inner.backend.write(&mut |t| {
            removed = 0;
            for (k, _) in t.range(Table::StatusTime, &[], &end, usize::MAX)? {
                let Some((updated, id)) = index_id(&k) else {
                    t.delete(Table::StatusTime, &k)?;
                    continue;
                };
                let key = id.to_be_bytes();
                match prune_decision(inner, t, updated, id)? {
                    Prune::Keep => continue,
                    Prune::Index => {}
                    Prune::Both => {
                        t.delete(Table::Status, &key)?;
                        removed += 1;
                    }
                    Prune::Corrupt => quarantine_in(t, Table::Status, &key)?,
                }
                t.delete(Table::StatusTime, &k)?;
            }
            Ok(())
        })?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Queue;
    use crate::queue::Transport;
    use crate::testing::open_store;

    #[test]
    fn cut_keeps_short_text_and_cuts_at_a_char_boundary() {
        assert_eq!(cut("refused with 550"), "refused with 550");
        let long = "é".repeat(MAX_STATUS_TEXT_LEN);
        let c = cut(&long);
        assert!(c.len() <= MAX_STATUS_TEXT_LEN && c.len() >= MAX_STATUS_TEXT_LEN - 1);
        assert!(c.chars().all(|ch| ch == 'é'));
    }

    #[test]
    fn decode_refuses_unknown_versions_and_states() {
        let h = Head { version: 2, state: 3, queued: 1, updated: 2, attempts: 1, next_attempt: 0 };
        let good = Enc::new().raw(&h.encode()).bytes(b"x").finish();
        assert!(decode(&good).is_ok());
        let mut v = good.clone();
        v[0] = 1;
        assert!(decode(&v).is_ok(), "version 1 records are read");
        for bad in [0, 3] {
            v[0] = bad;
            assert!(decode(&v).is_err());
        }
        let mut s = good.clone();
        s[1] = 6;
        assert!(decode(&s).is_err());
        assert!(decode(&good[..good.len() - 1]).is_err());
    }

    /// Writes `s` as a version 1 record (before statuses recorded the author), as `put_status`
    /// wrote it then.
    fn put_version_1(store: &Store, s: &DeliveryStatus) {
        let inner = &*store.inner;
        let mut rng = dime_testkit::seeded_rng(3);
        inner
            .backend
            .write(&mut |t| {
                let pt = Enc::new()
                    .bytes(s.destination.as_bytes())
                    .bytes(s.state.text().as_bytes())
                    .finish();
                let key = &inner.keys.status;
                let body = Head::of(s, VERSION_1).seal(inner, &mut rng, key, s.id.0, &pt);
                put_body(inner, t, Table::Status, &s.id.0.to_be_bytes(), body)
            })
            .unwrap();
    }

    #[test]
    fn a_version_1_status_reads_without_an_author_and_its_next_change_writes_version_2() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut rng = dime_testkit::seeded_rng(4);
        let author = AccountId([9; 16]);
        let id = store.enqueue(&mut rng, Transport::Dmtp, author, "b.test", b"env", Timestamp(5));
        let id = id.unwrap();
        let mut old = store.delivery_status(id).unwrap().unwrap();
        assert_eq!(old.author, Some(author));
        old.author = None;
        put_version_1(&store, &old);
        assert_eq!(store.delivery_status(id).unwrap().unwrap(), old);
        store.defer(&mut rng, id, Timestamp(60), "no answer", Timestamp(6)).unwrap();
        let s = store.delivery_status(id).unwrap().unwrap();
        assert_eq!((s.author, s.attempts, s.queued), (None, 1, Timestamp(5)));
        let mut version = None;
        store
            .inner
            .backend
            .read(&mut |t| {
                let b = get_body(&store.inner, t, Table::Status, &id.0.to_be_bytes(), "status")?;
                version = b.and_then(|b| b.first().copied());
                Ok(())
            })
            .unwrap();
        assert_eq!(version, Some(VERSION));
    }
}
