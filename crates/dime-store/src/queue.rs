//! The durable outbound queue for DMTP and SMTP (`spec/storage.md` §7).
//!
//! An entry is due at one time: its next attempt, or, while it is leased, the end of its
//! lease (a worker that dies loses its lease when the lease ends). The destination and the
//! payload are sealed under a key derived from the pepper; times and attempt counts are clear.
//! An entry is two records: its schedule in `queue`, small, which leasing and each attempt's
//! outcome rewrite, and its sealed payload in `queue_payload`, written once (an entry queued
//! before that table kept its payload in its schedule record, and moves it at its first lease).
//! The transport is in the clear, in the schedule and in the key of the due index: each
//! transport's worker leases only its own entries ([`Queue::lease`](crate::Queue::lease)). A store whose entries
//! predate that is upgraded when it is opened ([`upgrade`]).
//!
//! Each entry has a delivery status (`status.rs`, `spec/storage.md` §7.1), written in the same
//! transaction as the entry's change: [`Queue::enqueue`](crate::Queue::enqueue) (queued), [`Queue::defer`](crate::Queue::defer),
//! [`Queue::complete_delivered`](crate::Queue::complete_delivered), [`Queue::complete_failed`](crate::Queue::complete_failed) and [`Queue::complete_bounced`](crate::Queue::complete_bounced).

use crate::account::{get_body, put_body};
use crate::backend::{Backend, ReadTxn, Table, WriteTxn};
use crate::codec::{Dec, Enc};
use crate::deliver::{Delivered, deliver_one};
use crate::keys::{open, seal};
use crate::status::{DeliveryState, DeliveryStatus, load_status, put_status};
use crate::{
    AccountId, BackendError, DeliveryError, Inner, MAX_ENVELOPE_LEN, Queue, QueueError, Store,
    StoreError, Timestamp,
};
use dime_core::{CryptoRngCore, Mailbox};

const NEXT_ID: &[u8] = b"queue-next-id";

/// Which transfer protocol an entry leaves by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// DMTP to a DIME domain.
    Dmtp,
    /// SMTP to a legacy domain.
    Smtp,
}

impl Transport {
    /// Its code in the store (`spec/storage.md` §7).
    fn code(self) -> u8 {
        match self {
            Transport::Dmtp => 1,
            Transport::Smtp => 2,
        }
    }

    fn from_code(code: u8) -> Option<Transport> {
        match code {
            1 => Some(Transport::Dmtp),
            2 => Some(Transport::Smtp),
            _ => None,
        }
    }
}

/// A queue entry's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub u64);

/// An outbound queue entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundEntry {
    /// Its id.
    pub id: QueueId,
    /// The transport.
    pub transport: Transport,
    /// The destination (domain or host), as the caller gave it.
    pub destination: String,
    /// The payload (a sealed envelope, or what the SMTP bridge sends), shared: the worker
    /// hands slices of it to the transport without copying.
    pub payload: bytes::Bytes,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it is next due.
    pub next_attempt: Timestamp,
}

/// A queue entry as the operator lists it ([`Queue::queued`](crate::Queue::queued)): its schedule and its status,
/// without its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEntry {
    /// Its id.
    pub id: QueueId,
    /// When it is due: its next attempt or, while an attempt is under way, the end of its
    /// lease.
    pub due: Timestamp,
    /// Attempts made so far.
    pub attempts: u32,
    /// When its next attempt is scheduled (earlier than `due` while it is leased).
    pub next_attempt: Timestamp,
    /// Held by the operator: not leased until released ([`Queue::control`](crate::Queue::control)).
    pub held: bool,
    /// Its delivery status; `None` when it has none or its record does not open (then
    /// quarantined, `spec/storage.md` §7.1).
    pub status: Option<DeliveryStatus>,
}

impl QueuedEntry {
    /// Whether an attempt is under way at `now`: it is leased (due at its lease's end, later
    /// than its scheduled attempt) and the lease has not ended.
    pub fn in_flight(&self, now: Timestamp) -> bool {
        !self.held && self.due > self.next_attempt && self.due > now
    }
}

/// The due time of a held entry: after every other, so no lease reaches it.
pub(crate) const HELD: u64 = u64::MAX;

/// What the operator does to one queue entry (`spec/storage.md` §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueControl {
    /// Keep it from being tried until released.
    Hold,
    /// Let a held entry go on: due at its scheduled attempt (at once when that is past).
    Release,
    /// Try it at once (a held entry too).
    Retry,
}

/// Whether schedule `r` is leased at `now` (an attempt under way).
fn leased(r: &QRec, now: u64) -> bool {
    r.due != HELD && r.due > r.next_attempt && r.due > now
}

/// An entry leased to a worker until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    /// The entry.
    pub entry: OutboundEntry,
    /// The lease's end: after it, the entry is due again.
    pub until: Timestamp,
}

pub(crate) struct QRec {
    due: u64,
    attempts: u32,
    next_attempt: u64,
    /// The sealed payload of an entry queued before `queue_payload`; empty otherwise.
    sealed: Vec<u8>,
    /// The transport, in the clear; `None` in a record written before it was (only until the
    /// store is opened: [`upgrade`]).
    transport: Option<Transport>,
}

impl QRec {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let e =
            Enc::new().u64(self.due).u32(self.attempts).u64(self.next_attempt).bytes(&self.sealed);
        match self.transport {
            Some(t) => e.u8(t.code()).finish(),
            None => e.finish(),
        }
    }
    pub(crate) fn decode(b: &[u8]) -> Result<QRec, StoreError> {
        let mut d = Dec::new(b, "queue entry");
        let mut r = QRec {
            due: d.u64()?,
            attempts: d.u32()?,
            next_attempt: d.u64()?,
            sealed: d.bytes()?.to_vec(),
            transport: None,
        };
        if !d.is_empty() {
            r.transport = Some(
                Transport::from_code(d.u8()?).ok_or(StoreError::Corrupt { what: "queue entry" })?,
            );
        }
        d.finish()?;
        Ok(r)
    }

    /// Its transport; a record without one is not read before [`upgrade`] gave it one.
    fn transport(&self) -> Result<Transport, StoreError> {
        self.transport.ok_or(StoreError::Corrupt { what: "queue entry" })
    }
}

/// The key of entry `id` in the due index: its transport, its due time, its id. Each
/// transport's entries are one range of the index, in due order.
fn due_key(transport: Transport, due: u64, id: u64) -> Vec<u8> {
    Enc::new().u8(transport.code()).u64(due).u64(id).finish()
}

/// The length of a due key written before the transport was in it (due ‖ id).
const OLD_DUE_KEY_LEN: usize = 16;

/// The sealed payload of entry `id` whose schedule is `r`: kept in `r` (queued before
/// `queue_payload`) or in `queue_payload`.
fn sealed_of(inner: &Inner, t: &dyn ReadTxn, id: u64, r: &QRec) -> Result<Vec<u8>, StoreError> {
    if !r.sealed.is_empty() {
        return Ok(r.sealed.clone());
    }
    get_body(inner, t, Table::QueuePayload, &id.to_be_bytes(), "queue entry")?
        .ok_or(StoreError::Corrupt { what: "queue entry" })
}

/// Up to `max` schedule records from the key `from` on, in id order, with their ids.
fn schedules(
    inner: &Inner,
    t: &dyn ReadTxn,
    from: &[u8],
    max: usize,
) -> Result<Vec<(u64, QRec)>, StoreError> {
    let corrupt = || StoreError::Corrupt { what: "queue entry" };
    let mut out = Vec::new();
    for (k, v) in t.range(Table::Queue, from, &[0xff; 9], max)? {
        let id = u64::from_be_bytes(k.as_slice().try_into().map_err(|_| corrupt())?);
        let body = crate::codec::open_record(inner.p, Table::Queue, &k, &v, "queue entry")?;
        out.push((id, QRec::decode(body)?));
    }
    Ok(out)
}

/// Makes entry `id`, whose schedule is `r`, due at `due`: its schedule record and its index.
fn reschedule(
    inner: &Inner,
    t: &mut dyn WriteTxn,
    id: u64,
    r: &mut QRec,
    due: u64,
) -> Result<(), StoreError> {
    let transport = r.transport()?;
    t.delete(Table::QueueDue, &due_key(transport, r.due, id))?;
    r.due = due;
    put_body(inner, t, Table::Queue, &id.to_be_bytes(), r.encode())?;
    t.put(Table::QueueDue, &due_key(transport, due, id), &[])
}

/// Takes due key `k` out of the index and gives its entry's id (the 8 octets at `at` in the
/// key) and schedule; `None` when the key is malformed or its entry gone.
fn take_due(
    inner: &Inner,
    t: &mut dyn WriteTxn,
    k: &[u8],
    at: usize,
) -> Result<Option<(u64, QRec)>, StoreError> {
    t.delete(Table::QueueDue, k)?;
    let Some(id) = k.get(at..at + 8).and_then(|s| s.try_into().ok()).map(u64::from_be_bytes) else {
        return Ok(None);
    };
    let Some(b) = get_body(inner, t, Table::Queue, &id.to_be_bytes(), "queue entry")? else {
        return Ok(None);
    };
    Ok(Some((id, QRec::decode(&b)?)))
}

/// Removes entry `id`, whose schedule is `r`: its schedule, due index and payload.
fn remove_entry(t: &mut dyn WriteTxn, id: u64, r: &QRec) -> Result<(), StoreError> {
    t.delete(Table::QueueDue, &due_key(r.transport()?, r.due, id))?;
    t.delete(Table::Queue, &id.to_be_bytes())?;
    t.delete(Table::QueuePayload, &id.to_be_bytes())?;
    Ok(())
}

impl Inner {
    fn open_entry(&self, id: u64, r: &QRec, sealed: &[u8]) -> Result<OutboundEntry, StoreError> {
        let corrupt = || StoreError::Corrupt { what: "queue entry" };
        let mut opened =
            open(self.p, &self.keys.queue, &id.to_be_bytes(), sealed).map_err(|_| corrupt())?;
        // Nothing in it is a secret the store must wipe: the payload is a sealed envelope (or
        // what the SMTP bridge sends, sealed likewise), and the destination is on the wire.
        let pt = bytes::Bytes::from(std::mem::take(&mut *opened));
        let mut d = Dec::new(&pt, "queue entry");
        let transport = Transport::from_code(d.u8()?).ok_or_else(corrupt)?;
        let destination = String::from_utf8_lossy(d.bytes()?).into_owned();
        let payload = d.bytes()?;
        d.finish()?;
        // The payload is the end of the opened record: shared with it, not copied.
        let payload = pt.slice_ref(payload);
        if r.transport.is_some_and(|t| t != transport) {
            return Err(corrupt());
        }
        Ok(OutboundEntry {
            id: QueueId(id),
            transport,
            destination,
            payload,
            attempts: r.attempts,
            next_attempt: Timestamp(r.next_attempt),
        })
    }
}

/// Gives every entry written before the transport was in the clear its transport: in its
/// schedule record, and as the first octet of its key in the due index (`spec/storage.md` §7),
/// in one transaction. The transport comes from the entry's sealed payload; one that does not
/// open is a DMTP entry (the only transport that queued before), and fails when it is leased.
/// Nothing is done once no old key is left: the old keys (due ‖ id, the due time's first octet
/// 0) sort before every new one, so that one read of the index's start tells.
pub(crate) fn upgrade(inner: &Inner) -> Result<usize, StoreError> {
    let mut any = false;
    inner.backend.read(&mut |t| {
        any = !t.range(Table::QueueDue, &[], &[1], 1)?.is_empty();
        Ok(())
    })?;
    if !any {
        return Ok(0);
    }
    let mut n = 0;
    inner.backend.write(&mut |t| {
        n = 0;
        // Every key whose first octet is 0, and no new key (a transport's code is at least 1).
        let old = t.range(Table::QueueDue, &[], &[1], usize::MAX)?;
        for (k, _) in old {
            if k.len() != OLD_DUE_KEY_LEN {
                continue;
            }
            let Some((id, mut r)) = take_due(inner, t, &k, 8)? else { continue };
            let transport = sealed_of(inner, t, id, &r)
                .and_then(|sealed| inner.open_entry(id, &r, &sealed))
                .map_or(Transport::Dmtp, |e| e.transport);
            r.transport = Some(transport);
            put_body(inner, t, Table::Queue, &id.to_be_bytes(), r.encode())?;
            t.put(Table::QueueDue, &due_key(transport, r.due, id), &[])?;
            n += 1;
        }
        Ok(())
    })?;
    Ok(n)
}

impl Queue for Store {
    fn enqueue(
        &self,
        rng: &mut dyn CryptoRngCore,
        transport: Transport,
        author: AccountId,
        destination: &str,
        payload: &[u8],
        now: Timestamp,
    ) -> Result<QueueId, QueueError> {
        Ok(self.enqueue_keyed(rng, transport, author, destination, payload, None, now)?.0)
    }

    fn enqueue_once(
        &self,
        rng: &mut dyn CryptoRngCore,
        transport: Transport,
        author: AccountId,
        destination: &str,
        payload: &[u8],
        key: &[u8],
        now: Timestamp,
    ) -> Result<(QueueId, bool), QueueError> {
        let k = submission_key(&self.inner, author, key)?;
        self.enqueue_keyed(rng, transport, author, destination, payload, Some(&k), now)
    }

    fn submitted(&self, author: AccountId, key: &[u8]) -> Result<Option<QueueId>, QueueError> {
        let inner = &*self.inner;
        let k = submission_key(inner, author, key)?;
        let mut found = None;
        inner.backend.read(&mut |t| {
            found = submitted_id(inner, t, &k)?;
            Ok(())
        })?;
        Ok(found)
    }

    fn lease(
        &self,
        transport: Transport,
        now: Timestamp,
        lease_secs: u64,
        max: usize,
    ) -> Result<Vec<Leased>, QueueError> {
        let inner = &*self.inner;
        let until = now.0.saturating_add(lease_secs);
        let mut got = Vec::new();
        inner.backend.write(&mut |t| {
            got.clear();
            let (from, to) = (due_key(transport, 0, 0), due_key(transport, now.0, u64::MAX));
            for (k, _) in t.range(Table::QueueDue, &from, &to, max)? {
                let Some((id, mut r)) = take_due(inner, t, &k, 9)? else { continue };
                let sealed = sealed_of(inner, t, id, &r)?;
                if !r.sealed.is_empty() {
                    // Queued before `queue_payload`: the payload moves there, once.
                    let moved = std::mem::take(&mut r.sealed);
                    put_body(inner, t, Table::QueuePayload, &id.to_be_bytes(), moved)?;
                }
                reschedule(inner, t, id, &mut r, until)?;
                got.push((id, r, sealed));
            }
            Ok(())
        })?;
        got.iter()
            .map(|(id, r, sealed)| {
                Ok(Leased { entry: inner.open_entry(*id, r, sealed)?, until: Timestamp(until) })
            })
            .collect()
    }

    fn release(&self, ids: &[QueueId], now: Timestamp) -> Result<(), QueueError> {
        let inner = &*self.inner;
        Ok(inner.backend.write(&mut |t| {
            for id in ids {
                let key = id.0.to_be_bytes();
                let Some(b) = get_body(inner, t, Table::Queue, &key, "queue entry")? else {
                    continue;
                };
                reschedule(inner, t, id.0, &mut QRec::decode(&b)?, now.0)?;
            }
            Ok(())
        })?)
    }

    fn complete(&self, id: QueueId) -> Result<(), QueueError> {
        let inner = &*self.inner;
        Ok(inner.backend.write(&mut |t| {
            let b = get_body(inner, t, Table::Queue, &id.0.to_be_bytes(), "queue entry")?
                .ok_or(StoreError::NoSuchQueueEntry)?;
            let r = QRec::decode(&b)?;
            remove_entry(t, id.0, &r)
        })?)
    }

    fn defer(
        &self,
        rng: &mut dyn CryptoRngCore,
        id: QueueId,
        next_attempt: Timestamp,
        reason: &str,
        now: Timestamp,
    ) -> Result<u32, QueueError> {
        let state = DeliveryState::Deferred { next_attempt, reason: reason.to_owned() };
        Ok(self.settle(rng, id, state, None, now)?.0)
    }

    fn complete_delivered(
        &self,
        rng: &mut dyn CryptoRngCore,
        id: QueueId,
        txid: &str,
        now: Timestamp,
    ) -> Result<(), QueueError> {
        let state = DeliveryState::Delivered { txid: txid.to_owned() };
        self.settle(rng, id, state, None, now)?;
        Ok(())
    }

    fn complete_failed(
        &self,
        rng: &mut dyn CryptoRngCore,
        id: QueueId,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), QueueError> {
        let state = DeliveryState::Failed { reason: reason.to_owned() };
        self.settle(rng, id, state, None, now)?;
        Ok(())
    }

    fn complete_bounced(
        &self,
        rng: &mut dyn CryptoRngCore,
        id: QueueId,
        reason: &str,
        author: &Mailbox,
        bounce: &[u8],
        now: Timestamp,
    ) -> Result<Delivered, QueueError> {
        if bounce.len() > MAX_ENVELOPE_LEN {
            let too_large = DeliveryError::TooLarge { what: "envelope", limit: MAX_ENVELOPE_LEN };
            return Err(QueueError::Bounce(too_large));
        }
        let account = self.inner.account_of(author)?;
        let state = DeliveryState::Bounced { reason: reason.to_owned() };
        let (_, delivered) = self.settle(rng, id, state, Some((account, bounce)), now)?;
        delivered.ok_or(QueueError::Backend(BackendError::Closed))
    }

    fn settle_all(
        &self,
        rng: &mut dyn CryptoRngCore,
        outcomes: &[(QueueId, Settlement)],
        now: Timestamp,
    ) -> Result<Vec<Result<u32, QueueError>>, QueueError> {
        let inner = &*self.inner;
        let states: Vec<DeliveryState> = outcomes.iter().map(|(_, s)| s.state()).collect();
        let mut answers = Vec::with_capacity(outcomes.len());
        inner.backend.write(&mut |t: &mut dyn WriteTxn| {
            answers.clear();
            for ((id, _), state) in outcomes.iter().zip(&states) {
                // Each entry's reads come before its first write: an entry refused here leaves
                // nothing of itself in the transaction.
                match settle_in(inner, t, &mut *rng, *id, state, None, now) {
                    Ok((attempts, _)) => answers.push(Ok(attempts)),
                    Err(e @ (StoreError::NoSuchQueueEntry | StoreError::Corrupt { .. })) => {
                        answers.push(Err(e.into()));
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })?;
        Ok(answers)
    }

    fn queued(&self, after: QueueId, max: usize) -> Result<Vec<QueuedEntry>, QueueError> {
        let inner = &*self.inner;
        let mut out = Vec::new();
        let mut bad = Vec::new();
        inner.backend.read(&mut |t| {
            out.clear();
            bad.clear();
            let Some(from) = after.0.checked_add(1) else { return Ok(()) };
            for (id, r) in schedules(inner, t, &from.to_be_bytes(), max)? {
                let status = match load_status(inner, t, &inner.keys.status, id) {
                    Ok(s) => s,
                    Err(StoreError::Corrupt { .. }) => {
                        bad.push(id);
                        None
                    }
                    Err(e) => return Err(e),
                };
                out.push(QueuedEntry {
                    id: QueueId(id),
                    due: Timestamp(r.due),
                    attempts: r.attempts,
                    next_attempt: Timestamp(r.next_attempt),
                    held: r.due == HELD,
                    status,
                });
            }
            Ok(())
        })?;
        for id in bad {
            crate::quarantine(inner, Table::Status, &id.to_be_bytes());
        }
        Ok(out)
    }

    fn control(&self, id: QueueId, action: QueueControl, now: Timestamp) -> Result<(), QueueError> {
        let inner = &*self.inner;
        Ok(inner.backend.write(&mut |t| {
            let key = id.0.to_be_bytes();
            let b = get_body(inner, t, Table::Queue, &key, "queue entry")?
                .ok_or(StoreError::NoSuchQueueEntry)?;
            let mut r = QRec::decode(&b)?;
            if leased(&r, now.0) {
                return Err(StoreError::QueueEntryInFlight);
            }
            let due = match action {
                QueueControl::Hold => HELD,
                QueueControl::Release if r.due != HELD => {
                    return Err(StoreError::QueueEntryNotHeld);
                }
                QueueControl::Release => r.next_attempt.max(now.0),
                QueueControl::Retry => now.0,
            };
            if due != r.due {
                reschedule(inner, t, id.0, &mut r, due)?;
            }
            Ok(())
        })?)
    }

    fn flush(&self, now: Timestamp) -> Result<usize, QueueError> {
        let inner = &*self.inner;
        let mut n = 0;
        inner.backend.write(&mut |t| {
            n = 0;
            let mut from = 1_u64.to_be_bytes().to_vec();
            loop {
                let page = schedules(inner, t, &from, 256)?;
                let Some(last) = page.last().map(|(id, _)| *id) else { break };
                let full = page.len() == 256;
                for (id, mut r) in page {
                    if r.due != HELD && !leased(&r, now.0) && r.due > now.0 {
                        reschedule(inner, t, id, &mut r, now.0)?;
                        n += 1;
                    }
                }
                match last.checked_add(1) {
                    Some(next) if full => from = next.to_be_bytes().to_vec(),
                    _ => break,
                }
            }
            Ok(())
        })?;
        Ok(n)
    }

    fn entry(&self, id: QueueId) -> Result<OutboundEntry, QueueError> {
        let inner = &*self.inner;
        let mut got = None;
        inner.backend.read(&mut |t| {
            let key = id.0.to_be_bytes();
            let b = get_body(inner, t, Table::Queue, &key, "queue entry")?
                .ok_or(StoreError::NoSuchQueueEntry)?;
            let r = QRec::decode(&b)?;
            let sealed = sealed_of(inner, t, id.0, &r)?;
            got = Some((r, sealed));
            Ok(())
        })?;
        let (r, sealed) = got.ok_or(StoreError::NoSuchQueueEntry)?;
        Ok(inner.open_entry(id.0, &r, &sealed)?)
    }

    fn queue_entries(&self) -> Result<Vec<OutboundEntry>, QueueError> {
        let inner = &*self.inner;
        let mut raw = Vec::new();
        inner.backend.read(&mut |t| {
            raw.clear();
            for (id, r) in schedules(inner, t, &[], usize::MAX)? {
                let sealed = sealed_of(inner, t, id, &r)?;
                raw.push((id, r, sealed));
            }
            Ok(())
        })?;
        Ok(raw
            .iter()
            .map(|(id, r, sealed)| inner.open_entry(*id, r, sealed))
            .collect::<Result<_, _>>()?)
    }

    fn delivery_status(&self, id: QueueId) -> Result<Option<DeliveryStatus>, QueueError> {
        Ok(self.delivery_status_inner(id)?)
    }

    fn delivery_statuses(
        &self,
        since: Timestamp,
        max: usize,
    ) -> Result<Vec<DeliveryStatus>, QueueError> {
        Ok(self.delivery_statuses_inner(since, max)?)
    }

    fn prune_delivery_statuses(&self, before: Timestamp) -> Result<usize, QueueError> {
        let n = self.prune_delivery_statuses_inner(before)?;
        // The submission keys go with them: a read, and a write only when one is old.
        let inner = &*self.inner;
        let mut old = Vec::new();
        inner.backend.read(&mut |t| {
            old = old_submission_keys(inner, t, before)?;
            Ok(())
        })?;
        if !old.is_empty() {
            inner.backend.write(&mut |t| {
                for k in &old {
                    t.delete(Table::Jobs, k)?;
                }
                Ok(())
            })?;
        }
        Ok(n)
    }
}

/// The prefix of a submission key's record in `jobs` (`spec/storage.md` §7.4).
pub(crate) const SUBMISSION_KEY: &[u8] = b"submission-key\0";

/// Longest submission key, octets.
pub const MAX_SUBMISSION_KEY_LEN: usize = 998;

/// The `jobs` key of `author`'s submission key `key`: [`SUBMISSION_KEY`] ‖ a 32-octet tag
/// derived with the pepper, so the key itself is never stored.
fn submission_key(inner: &Inner, author: AccountId, key: &[u8]) -> Result<Vec<u8>, StoreError> {
    if key.is_empty() || key.len() > MAX_SUBMISSION_KEY_LEN {
        return Err(StoreError::TooLarge { what: "submission key", limit: MAX_SUBMISSION_KEY_LEN });
    }
    let ikm = [&author.0[..], key].concat();
    let tag =
        crate::keys::derive(inner.p, inner.pepper.expose(), &ikm, &[b"dime-store submission key"])?;
    Ok([SUBMISSION_KEY, &tag.expose()[..]].concat())
}

/// The queue id a submission key's record names.
fn submitted_id(inner: &Inner, t: &dyn ReadTxn, k: &[u8]) -> Result<Option<QueueId>, StoreError> {
    let Some(b) = get_body(inner, t, Table::Jobs, k, "submission key")? else { return Ok(None) };
    let mut d = Dec::new(&b, "submission key");
    let id = d.u64()?;
    let _created = d.u64()?;
    d.finish()?;
    Ok(Some(QueueId(id)))
}

/// The submission keys recorded before `before` (kept as long as the statuses:
/// `spec/storage.md` §7.4); a record that does not read counts as old.
fn old_submission_keys(
    inner: &Inner,
    t: &dyn ReadTxn,
    before: Timestamp,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let end = [SUBMISSION_KEY, &[0xff; 33][..]].concat();
    let mut old = Vec::new();
    for (k, _) in t.range(Table::Jobs, SUBMISSION_KEY, &end, usize::MAX)? {
        let created = match get_body(inner, t, Table::Jobs, &k, "submission key") {
            Ok(Some(b)) => {
                let mut d = Dec::new(&b, "submission key");
                d.u64().and_then(|_| d.u64()).unwrap_or(0)
            }
            _ => 0,
        };
        if created < before.0 {
            old.push(k);
        }
    }
    Ok(old)
}

impl Store {
    /// [`Queue::enqueue`], and with `key` ([`submission_key`]) the queue id recorded under it
    /// when there is one (nothing written: `false`), else the new entry recorded under it.
    #[allow(clippy::too_many_arguments)]
    fn enqueue_keyed(
        &self,
        rng: &mut dyn CryptoRngCore,
        transport: Transport,
        author: AccountId,
        destination: &str,
        payload: &[u8],
        key: Option<&[u8]>,
        now: Timestamp,
    ) -> Result<(QueueId, bool), QueueError> {
        if payload.len() > MAX_ENVELOPE_LEN {
            return Err(QueueError::TooLarge { what: "queue payload", limit: MAX_ENVELOPE_LEN });
        }
        let inner = &*self.inner;
        let pt =
            Enc::new().u8(transport.code()).bytes(destination.as_bytes()).bytes(payload).finish();
        let (qk, sk) = (&inner.keys.queue, &inner.keys.status);
        let (mut id, mut fresh) = (0, true);
        inner.backend.write(&mut |t| {
            if let Some(QueueId(old)) =
                key.map(|k| submitted_id(inner, t, k)).transpose()?.flatten()
            {
                (id, fresh) = (old, false);
                return Ok(());
            }
            fresh = true;
            id = match get_body(inner, t, Table::Jobs, NEXT_ID, "queue counter")? {
                Some(b) => u64::from_be_bytes(
                    b.as_slice()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt { what: "queue counter" })?,
                ),
                None => 1,
            };
            put_body(inner, t, Table::Jobs, NEXT_ID, (id + 1).to_be_bytes().to_vec())?;
            let sealed = seal(inner.p, &mut *rng, qk, &id.to_be_bytes(), &pt);
            put_body(inner, t, Table::QueuePayload, &id.to_be_bytes(), sealed)?;
            let r = QRec {
                due: now.0,
                attempts: 0,
                next_attempt: now.0,
                sealed: Vec::new(),
                transport: Some(transport),
            };
            put_body(inner, t, Table::Queue, &id.to_be_bytes(), r.encode())?;
            t.put(Table::QueueDue, &due_key(transport, now.0, id), &[])?;
            if let Some(k) = key {
                put_body(inner, t, Table::Jobs, k, Enc::new().u64(id).u64(now.0).finish())?;
            }
            let status = DeliveryStatus {
                id: QueueId(id),
                author: Some(author),
                destination: destination.to_owned(),
                queued: now,
                updated: now,
                attempts: 0,
                state: DeliveryState::Queued,
            };
            put_status(inner, t, &mut *rng, sk, &status)
        })?;
        Ok((QueueId(id), fresh))
    }
}

impl Store {
    /// Changes entry `id` to `state` (deferred: one more attempt, rescheduled; final: removed),
    /// delivers `bounce` if given, and writes the status, in one transaction.
    fn settle(
        &self,
        rng: &mut dyn CryptoRngCore,
        id: QueueId,
        state: DeliveryState,
        bounce: Option<(AccountId, &[u8])>,
        now: Timestamp,
    ) -> Result<(u32, Option<Delivered>), StoreError> {
        let inner = &*self.inner;
        // Hashed once, outside the write transaction.
        let bounce = bounce.map(|(a, e)| (a, e, inner.blob_digest.of(inner.p, e)));
        let mut out = (0, None);
        inner.backend.write(&mut |t: &mut dyn WriteTxn| {
            out = settle_in(inner, t, &mut *rng, id, &state, bounce, now)?;
            Ok(())
        })?;
        Ok(out)
    }
}

/// What [`Queue::settle_all`](crate::Queue::settle_all) records of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Stored by the destination: the entry is removed, its status delivered.
    Delivered {
        /// The destination's transaction id.
        txid: String,
    },
    /// A temporary failure: one more attempt counted, due again at `next_attempt`.
    Deferred {
        /// The next attempt.
        next_attempt: Timestamp,
        /// Why the attempt failed.
        reason: String,
    },
    /// Failed for good, without a bounce: the entry is removed, its status failed.
    Failed {
        /// Why.
        reason: String,
    },
}

impl Settlement {
    fn state(&self) -> DeliveryState {
        match self {
            Settlement::Delivered { txid } => DeliveryState::Delivered { txid: txid.clone() },
            Settlement::Deferred { next_attempt, reason } => {
                DeliveryState::Deferred { next_attempt: *next_attempt, reason: reason.clone() }
            }
            Settlement::Failed { reason } => DeliveryState::Failed { reason: reason.clone() },
        }
    }
}

/// Changes entry `id` to `state` inside `t` (see [`Store::settle`]); `bounce` is the account,
/// the envelope and its blob digest. Every read comes before the first write.
fn settle_in(
    inner: &Inner,
    t: &mut dyn WriteTxn,
    rng: &mut dyn CryptoRngCore,
    id: QueueId,
    state: &DeliveryState,
    bounce: Option<(AccountId, &[u8], [u8; crate::codec::CHECKSUM_LEN])>,
    now: Timestamp,
) -> Result<(u32, Option<Delivered>), StoreError> {
    let sk = &inner.keys.status;
    let b = get_body(inner, t, Table::Queue, &id.0.to_be_bytes(), "queue entry")?
        .ok_or(StoreError::NoSuchQueueEntry)?;
    let mut r = QRec::decode(&b)?;
    // A status that does not open is replaced; the destination then comes from the entry
    // itself, and the author is lost.
    let (author, destination, queued) = match load_status(inner, t, sk, id.0) {
        Ok(Some(s)) => (s.author, s.destination, s.queued),
        Ok(None) | Err(StoreError::Corrupt { .. }) => {
            let sealed = sealed_of(inner, t, id.0, &r)?;
            (None, inner.open_entry(id.0, &r, &sealed)?.destination, now)
        }
        Err(e) => return Err(e),
    };
    let delivered = match bounce {
        // Every check of a delivery comes before its first write: a refused bounce leaves
        // this transaction empty.
        Some((account, envelope, digest)) => {
            Some(deliver_one(inner, t, account, envelope, &digest, now)?)
        }
        None => None,
    };
    r.attempts = r.attempts.saturating_add(1);
    if let DeliveryState::Deferred { next_attempt, .. } = state {
        r.next_attempt = next_attempt.0;
        reschedule(inner, t, id.0, &mut r, next_attempt.0)?;
    } else {
        remove_entry(t, id.0, &r)?;
    }
    let status = DeliveryStatus {
        id,
        author,
        destination,
        queued,
        updated: now,
        attempts: r.attempts,
        state: state.clone(),
    };
    put_status(inner, t, rng, sk, &status)?;
    Ok((r.attempts, delivered))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing::open_store;

    const T0: Timestamp = Timestamp(1_700_000_000);
    const AUTHOR: AccountId = AccountId([0x5a; 16]);

    /// The raw value of `table` under entry `id`'s key.
    fn raw(store: &Store, table: Table, id: QueueId) -> Option<Vec<u8>> {
        let mut v = None;
        store
            .inner
            .backend
            .read(&mut |t| {
                v = t.get(table, &id.0.to_be_bytes())?;
                Ok(())
            })
            .unwrap();
        v
    }

    fn payload_records(store: &Store) -> usize {
        let mut n = 0;
        store
            .inner
            .backend
            .read(&mut |t| {
                n = t.range(Table::QueuePayload, &[], &[0xff; 9], usize::MAX)?.len();
                Ok(())
            })
            .unwrap();
        n
    }

    #[test]
    fn leasing_and_deferring_leave_the_payload_record_as_written_and_completion_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut rng = dime_testkit::seeded_rng(1);
        let id =
            store.enqueue(&mut rng, Transport::Dmtp, AUTHOR, "b.test", b"payload-1", T0).unwrap();
        let written = raw(&store, Table::QueuePayload, id).unwrap();
        let schedule = raw(&store, Table::Queue, id).unwrap();
        assert!(schedule.len() < 64, "the schedule record holds no payload: {}", schedule.len());
        let leased = store.lease(Transport::Dmtp, T0, 60, 10).unwrap();
        assert_eq!(leased[0].entry.payload, &b"payload-1"[..]);
        store.defer(&mut rng, id, Timestamp(T0.0 + 100), "later", T0).unwrap();
        let leased = store.lease(Transport::Dmtp, Timestamp(T0.0 + 100), 60, 10).unwrap();
        assert_eq!(
            (&leased[0].entry.payload[..], leased[0].entry.attempts),
            (&b"payload-1"[..], 1)
        );
        assert_eq!(raw(&store, Table::QueuePayload, id).unwrap(), written);
        store.complete_delivered(&mut rng, id, "tx", T0).unwrap();
        assert_eq!(payload_records(&store), 0);
        let id =
            store.enqueue(&mut rng, Transport::Smtp, AUTHOR, "c.test", b"payload-2", T0).unwrap();
        store.complete(id).unwrap();
        assert_eq!((payload_records(&store), raw(&store, Table::Queue, id)), (0, None));
    }

    #[test]
    fn a_submission_key_queues_once_per_author_and_lives_as_long_as_the_statuses() {
        // spec/storage.md §7.4.
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut rng = dime_testkit::seeded_rng(7);
        let key = b"<retry-canary-5c1e@client.example>";
        let once = |rng: &mut dyn CryptoRngCore, author: AccountId, now: Timestamp| {
            store.enqueue_once(rng, Transport::Dmtp, author, "b.test", b"p", key, now).unwrap()
        };
        let (id, fresh) = once(&mut rng, AUTHOR, T0);
        assert!(fresh);
        assert_eq!(once(&mut rng, AUTHOR, T0), (id, false), "a retry queues nothing");
        assert_eq!(store.queue_entries().unwrap().len(), 1);
        assert_eq!(store.submitted(AUTHOR, key).unwrap(), Some(id));
        let other = AccountId([0x11; 16]);
        let (id2, fresh) = once(&mut rng, other, T0);
        assert!(fresh && id2 != id, "another author's key is another key");
        assert_eq!(store.submitted(AUTHOR, b"<other@client>").unwrap(), None);
        assert!(matches!(
            store.enqueue_once(&mut rng, Transport::Dmtp, AUTHOR, "b.test", b"p", b"", T0),
            Err(QueueError::TooLarge { .. })
        ));
        assert!(!crate::testing::any_file_contains(dir.path(), b"retry-canary-5c1e"));
        // Pruned with the statuses of its time: the key queues anew.
        store.prune_delivery_statuses(Timestamp(T0.0 + 1)).unwrap();
        assert_eq!(store.submitted(AUTHOR, key).unwrap(), None);
        assert!(once(&mut rng, AUTHOR, Timestamp(T0.0 + 2)).1);
    }

    #[test]
    fn the_operator_holds_releases_retries_and_flushes_entries_but_not_one_under_way() {
        // spec/storage.md §7.3.
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut rng = dime_testkit::seeded_rng(5);
        let q = |n: &[u8]| {
            store
                .enqueue(&mut dime_testkit::seeded_rng(6), Transport::Dmtp, AUTHOR, "b.test", n, T0)
                .unwrap()
        };
        let (a, b, c) = (q(b"a"), q(b"b"), q(b"c"));
        let later = |s: u64| Timestamp(T0.0 + s);
        let listed = |now: Timestamp| {
            store
                .queued(QueueId(0), 10)
                .unwrap()
                .into_iter()
                .map(|e| (e.id, e.held, e.in_flight(now), e.due))
                .collect::<Vec<_>>()
        };
        // b under way: it cannot be held, retried or deleted behind the worker's back.
        store.control(a, QueueControl::Hold, T0).unwrap();
        let leased = store.lease(Transport::Dmtp, T0, 300, 1).unwrap();
        assert_eq!(leased[0].entry.id, b, "a held entry is not leased");
        for action in [QueueControl::Hold, QueueControl::Retry] {
            assert_eq!(store.control(b, action, later(1)), Err(QueueError::InFlight));
        }
        assert_eq!(store.control(c, QueueControl::Release, T0), Err(QueueError::NotHeld));
        assert_eq!(
            store.control(QueueId(99), QueueControl::Hold, T0),
            Err(QueueError::NoSuchEntry)
        );
        assert_eq!(
            listed(later(1)),
            vec![
                (a, true, false, Timestamp(HELD)),
                (b, false, true, later(300)),
                (c, false, false, T0)
            ]
        );
        // Its lease ended (a worker that died): no longer under way.
        assert!(!listed(later(301))[1].2);
        // c deferred for an hour; flush makes it due now, leaves a (held) and b (leased).
        store.lease(Transport::Dmtp, T0, 300, 1).unwrap();
        store.defer(&mut rng, c, later(3600), "later", T0).unwrap();
        assert_eq!(store.flush(later(10)).unwrap(), 1);
        assert_eq!(listed(later(10))[2].3, later(10));
        // Released: due at its scheduled attempt, at once when that is past.
        store.control(a, QueueControl::Release, later(20)).unwrap();
        assert_eq!(listed(later(20))[0], (a, false, false, later(20)));
        store.control(a, QueueControl::Hold, later(20)).unwrap();
        store.control(a, QueueControl::Retry, later(30)).unwrap();
        assert_eq!(listed(later(30))[0], (a, false, false, later(30)));
        assert_eq!(&store.entry(a).unwrap().payload[..], b"a");
        assert_eq!(store.entry(QueueId(99)).unwrap_err(), QueueError::NoSuchEntry);
    }

    #[test]
    fn a_released_entry_is_due_again_at_once_and_a_gone_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut rng = dime_testkit::seeded_rng(3);
        let a = store.enqueue(&mut rng, Transport::Dmtp, AUTHOR, "b.test", b"a", T0).unwrap();
        let b = store.enqueue(&mut rng, Transport::Dmtp, AUTHOR, "b.test", b"b", T0).unwrap();
        assert_eq!(store.lease(Transport::Dmtp, T0, 300, 10).unwrap().len(), 2);
        assert!(store.lease(Transport::Dmtp, Timestamp(T0.0 + 1), 300, 10).unwrap().is_empty());
        store.complete(b).unwrap();
        store.release(&[a, b], Timestamp(T0.0 + 1)).unwrap();
        let again = store.lease(Transport::Dmtp, Timestamp(T0.0 + 1), 300, 10).unwrap();
        assert_eq!(again.iter().map(|l| l.entry.id).collect::<Vec<_>>(), vec![a]);
        assert_eq!((&again[0].entry.payload[..], again[0].entry.attempts), (&b"a"[..], 0));
        assert!(store.queue_entries().unwrap().iter().all(|e| e.id != b));
    }

    #[test]
    fn an_entry_queued_before_the_payload_table_is_read_and_its_payload_moves_at_its_lease() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut rng = dime_testkit::seeded_rng(2);
        let id =
            store.enqueue(&mut rng, Transport::Dmtp, AUTHOR, "b.test", b"old-payload", T0).unwrap();
        // Rewritten as an entry was written before `queue_payload`: its payload inline.
        let inner = &*store.inner;
        let key = id.0.to_be_bytes();
        inner
            .backend
            .write(&mut |t| {
                let sealed = get_body(inner, t, Table::QueuePayload, &key, "q")?.unwrap();
                let mut r = QRec::decode(&get_body(inner, t, Table::Queue, &key, "q")?.unwrap())?;
                r.sealed = sealed;
                put_body(inner, t, Table::Queue, &key, r.encode())?;
                t.delete(Table::QueuePayload, &key)?;
                Ok(())
            })
            .unwrap();
        assert_eq!(payload_records(&store), 0);
        assert_eq!(store.queue_entries().unwrap()[0].payload, &b"old-payload"[..]);
        let leased = store.lease(Transport::Dmtp, T0, 60, 10).unwrap();
        assert_eq!(leased[0].entry.payload, &b"old-payload"[..]);
        // Moved, once: the schedule record is small again, the payload in its own record.
        assert!(raw(&store, Table::Queue, id).unwrap().len() < 64);
        assert_eq!(payload_records(&store), 1);
        assert_eq!(store.queue_entries().unwrap()[0].payload, &b"old-payload"[..]);
        store.complete_failed(&mut rng, id, "refused", T0).unwrap();
        assert_eq!(payload_records(&store), 0);
        assert!(store.queue_entries().unwrap().is_empty());
    }

    /// The keys of the due index.
    fn due_keys(store: &Store) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        store
            .inner
            .backend
            .read(&mut |t| {
                keys = t.range(Table::QueueDue, &[], &[0xff; 18], usize::MAX)?;
                Ok(())
            })
            .unwrap();
        keys.into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn each_transport_leases_only_its_own_entries_in_due_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut rng = dime_testkit::seeded_rng(4);
        let mut q = |t, dest: &str, at: u64| {
            store.enqueue(&mut rng, t, AUTHOR, dest, dest.as_bytes(), Timestamp(T0.0 + at)).unwrap()
        };
        let s1 = q(Transport::Smtp, "legacy-1.test", 0);
        let d1 = q(Transport::Dmtp, "dime-1.test", 5);
        let s2 = q(Transport::Smtp, "legacy-2.test", 3);
        let d2 = q(Transport::Dmtp, "dime-2.test", 1);
        let now = Timestamp(T0.0 + 10);
        let ids = |l: Vec<Leased>| l.into_iter().map(|l| l.entry.id).collect::<Vec<_>>();
        // A lease of one takes the transport's earliest entry, not the queue's.
        assert_eq!(ids(store.lease(Transport::Dmtp, now, 60, 1).unwrap()), [d2]);
        assert_eq!(ids(store.lease(Transport::Dmtp, now, 60, 10).unwrap()), [d1]);
        assert!(store.lease(Transport::Dmtp, now, 60, 10).unwrap().is_empty());
        let smtp = store.lease(Transport::Smtp, now, 60, 10).unwrap();
        assert!(smtp.iter().all(|l| l.entry.transport == Transport::Smtp));
        assert_eq!(ids(smtp), [s1, s2]);
        // The transport is in the clear: in the schedule record and the index key.
        let r = QRec::decode(&raw_body(&store, Table::Queue, s1)).unwrap();
        assert_eq!(r.transport, Some(Transport::Smtp));
        let firsts: Vec<u8> = due_keys(&store).iter().map(|k| k[0]).collect();
        assert_eq!(firsts, [1, 1, 2, 2]);
        // A deferral keeps the entry in its transport's range.
        store.defer(&mut rng, s1, Timestamp(T0.0 + 100), "later", now).unwrap();
        // (The DMTP entries' leases have ended: they are due again, and only they.)
        let later = Timestamp(T0.0 + 1000);
        assert_eq!(ids(store.lease(Transport::Dmtp, later, 60, 10).unwrap()), [d1, d2]);
        let again = store.lease(Transport::Smtp, Timestamp(T0.0 + 100), 60, 10).unwrap();
        assert_eq!(ids(again), [s2, s1], "s2 at the end of its lease, s1 deferred");
    }

    /// The body of the record of `table` under entry `id`'s key, its checksum checked.
    fn raw_body(store: &Store, table: Table, id: QueueId) -> Vec<u8> {
        let inner = &*store.inner;
        let mut v = None;
        inner
            .backend
            .read(&mut |t| {
                v = get_body(inner, t, table, &id.0.to_be_bytes(), "q")?;
                Ok(())
            })
            .unwrap();
        v.unwrap()
    }

    /// Rewrites entries `ids` as the previous version wrote them: no transport in the schedule
    /// record, due keys of due ‖ id.
    fn as_before_the_transport_was_clear(store: &Store, ids: &[QueueId]) {
        let inner = &*store.inner;
        inner
            .backend
            .write(&mut |t| {
                for id in ids {
                    let key = id.0.to_be_bytes();
                    let mut r =
                        QRec::decode(&get_body(inner, t, Table::Queue, &key, "q")?.unwrap())?;
                    t.delete(Table::QueueDue, &due_key(r.transport()?, r.due, id.0))?;
                    t.put(Table::QueueDue, &Enc::new().u64(r.due).u64(id.0).finish(), &[])?;
                    r.transport = None;
                    put_body(inner, t, Table::Queue, &key, r.encode())?;
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn entries_from_before_the_transport_was_clear_get_it_when_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = dime_testkit::seeded_rng(5);
        let (d, s, bad);
        {
            let store = open_store(dir.path());
            d = store.enqueue(&mut rng, Transport::Dmtp, AUTHOR, "b.test", b"dmtp", T0).unwrap();
            s = store.enqueue(&mut rng, Transport::Smtp, AUTHOR, "c.test", b"smtp", T0).unwrap();
            bad = store.enqueue(&mut rng, Transport::Smtp, AUTHOR, "d.test", b"bad", T0).unwrap();
            // Rewritten as the previous version wrote them; one entry's payload sealed under
            // another id, so that it does not open.
            as_before_the_transport_was_clear(&store, &[d, s, bad]);
            let inner = &*store.inner;
            inner
                .backend
                .write(&mut |t| {
                    let other = get_body(inner, t, Table::QueuePayload, &d.0.to_be_bytes(), "q")?;
                    put_body(inner, t, Table::QueuePayload, &bad.0.to_be_bytes(), other.unwrap())?;
                    Ok(())
                })
                .unwrap();
            assert!(due_keys(&store).iter().all(|k| k.len() == OLD_DUE_KEY_LEN));
            // What opening the store does, counted: three entries given their transport.
            assert_eq!(upgrade(&store.inner).unwrap(), 3);
            assert!(due_keys(&store).iter().all(|k| k.len() == OLD_DUE_KEY_LEN + 1));
            // Back as the previous version wrote them, for the open below.
            as_before_the_transport_was_clear(&store, &[d, s, bad]);
        }
        let store = open_store(dir.path());
        let mut keys = due_keys(&store);
        keys.sort();
        assert_eq!(
            keys,
            [
                due_key(Transport::Dmtp, T0.0, d.0),
                due_key(Transport::Dmtp, T0.0, bad.0),
                due_key(Transport::Smtp, T0.0, s.0)
            ]
        );
        for (id, t) in [(d, Transport::Dmtp), (s, Transport::Smtp), (bad, Transport::Dmtp)] {
            let r = QRec::decode(&raw_body(&store, Table::Queue, id)).unwrap();
            assert_eq!(r.transport, Some(t), "entry {id:?}");
        }
        let smtp = store.lease(Transport::Smtp, T0, 60, 10).unwrap();
        assert_eq!((smtp.len(), &smtp[0].entry.payload[..]), (1, &b"smtp"[..]));
        // Opened again: nothing left to upgrade.
        drop(store);
        let store = open_store(dir.path());
        assert_eq!(upgrade(&store.inner).unwrap(), 0);
    }
}
