//! Delivery with group commit (`spec/storage.md` §4).
//!
//! [`Deliveries::deliver`](crate::Deliveries::deliver) hands the envelope to one committer thread and waits. The committer takes
//! every delivery waiting in its queue (up to [`MAX_GROUP_COMMIT`]) and makes the batch durable
//! with one `fdatasync`: on a backend that defers durability (redb), it appends the batch to
//! the delivery log (`spec/storage.md` §4.1) and, while the log thread writes it, applies it
//! in one deferred transaction; once the records are on stable storage it answers each caller
//! and then commits (the read gate of [`crate::gate`] holds readers back until it has). On any
//! other backend it commits the batch durably, then answers. A caller therefore returns only
//! after its own delivery is on stable storage.

use crate::account::{get_body, put_body};
use crate::backend::{Backend, ReadTxn, Table, WriteTxn};
use crate::codec::{CHECKSUM_LEN, Dec};
use crate::fs::{StoreFs, create_dir_durably};
use crate::imap::{AppendJob, append_one, append_write, replay_append};
use crate::log::{Batch, DeliveryLog, LOG_FILE, MAX_LOGGED_BATCH, Record, Span, WRAP_BYTES};
use crate::{
    AccountId, Deliveries, DeliveryError, Inner, MAX_ENVELOPE_LEN, MAX_GROUP_COMMIT, MailboxId,
    Store, StoreError, Timestamp, Uid,
};
use dime_core::Mailbox;
use dime_core::crypto::Hashed;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

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

/// What the committer answers a job with.
#[derive(Debug, Clone, Copy)]
enum Done {
    Delivered(Delivered),
    Appended(crate::Appended),
}

struct Job {
    account: AccountId,
    envelope: Vec<u8>,
    /// The envelope's blob digest, computed by the caller's thread before queueing (or taken
    /// from the hash the caller has), so the committer (which every delivery in a batch waits
    /// on) does no hashing.
    digest: [u8; CHECKSUM_LEN],
    now: Timestamp,
    /// An APPEND's place and seals (`spec/storage.md` §5.1); `None` for a delivery.
    append: Option<Box<AppendJob>>,
    reply: mpsc::SyncSender<Answer>,
}

/// What the committer is asked to do.
enum Msg {
    /// A delivery.
    Deliver(Job),
    /// Erase the delivery log's records once the backend holds them durably
    /// (`spec/storage.md` §12), then answer.
    Erase(mpsc::SyncSender<Result<(), StoreError>>),
}

pub(crate) struct Committer {
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    pub(crate) fn start(inner: Arc<Inner>, log: Option<DeliveryLog>) -> Committer {
        let (tx, rx) = mpsc::channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("dime-store-committer".into())
            .spawn(move || run(&inner, &rx, log))
            .ok();
        Committer { tx: Mutex::new(Some(tx)), thread }
    }

    fn sender(&self) -> Option<mpsc::Sender<Msg>> {
        self.tx.lock().ok().and_then(|g| g.clone())
    }

    /// Checkpoints and overwrites every record of the delivery log with zeros, between two
    /// batches, and waits until it is done (`spec/storage.md` §12): after a purge or a
    /// deletion, the log keeps no envelope the backend has let go. Nothing to do without a
    /// log.
    pub(crate) fn erase_log(&self) -> Result<(), StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let tx = self.sender().ok_or(StoreError::Closed)?;
        tx.send(Msg::Erase(reply)).map_err(|_| StoreError::Closed)?;
        answer.recv().map_err(|_| StoreError::Closed)?
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

/// The key of the delivery log's durable mark in [`Table::Jobs`]: the sequence number of the
/// last log record the backend holds (`spec/storage.md` §4.1).
const LOG_MARK: &[u8] = b"delivery log";
/// Deferred commits after which the committer checkpoints (small messages: the log bound of
/// [`WRAP_BYTES`] comes first for messages over 4 KiB).
const MAX_DEFERRED: usize = 256;
/// Idle time after which the committer checkpoints pending deferred commits.
const IDLE_CHECKPOINT: Duration = Duration::from_millis(500);

/// The sequence number of the last delivery log record the backend holds.
pub(crate) fn log_mark(inner: &Inner, t: &dyn ReadTxn) -> Result<u64, StoreError> {
    match get_body(inner, t, Table::Jobs, LOG_MARK, "delivery log mark")? {
        None => Ok(0),
        Some(b) => {
            let mut d = Dec::new(&b, "delivery log mark");
            let v = d.u64()?;
            d.finish()?;
            Ok(v)
        }
    }
}

fn set_log_mark(inner: &Inner, t: &mut dyn WriteTxn, seq: u64) -> Result<(), StoreError> {
    put_body(inner, t, Table::Jobs, LOG_MARK, seq.to_be_bytes().to_vec())
}

/// Opens the delivery log of `dir` on `fs` and applies, durably and in order, the records the
/// backend lost in a crash (`spec/storage.md` §4.1).
pub(crate) fn recover(
    inner: &Inner,
    fs: &dyn StoreFs,
    dir: &std::path::Path,
) -> Result<(DeliveryLog, usize), StoreError> {
    let mut mark = 0;
    inner.backend.read(&mut |t| {
        mark = log_mark(inner, t)?;
        Ok(())
    })?;
    create_dir_durably(fs, dir)?;
    let (mut log, replay) =
        DeliveryLog::open(fs, &dir.join(LOG_FILE), inner.p, inner.blob_digest, mark)?;
    if let Some(last) = replay.last().map(|r| r.seq) {
        inner.backend.write(&mut |t| {
            for r in &replay {
                // Item errors (quota, a deleted account) are what the first run decided too
                // (an APPEND is logged only once applied).
                let done = if r.append {
                    replay_append(inner, t, r.account, &r.envelope).map(|_| ())
                } else {
                    deliver_one(inner, t, r.account, &r.envelope, &r.digest, r.now).map(|_| ())
                };
                if let Err(StoreError::Backend(e)) = done {
                    return Err(StoreError::Backend(e));
                }
            }
            set_log_mark(inner, t, last)
        })?;
    }
    // The backend now holds every record durably.
    log.restart();
    Ok((log, replay.len()))
}

type Answer = Result<Done, StoreError>;

/// What `before_commit` of [`write_batch`] is given: each item's answer, each APPEND's delivery
/// log payload (`None` for a delivery or a refused APPEND), and the transaction.
type BeforeCommit<'a> =
    dyn FnMut(&[Answer], &[Option<Vec<u8>>], &mut dyn WriteTxn) -> Result<(), StoreError> + 'a;

/// Writes `batch` in one transaction: deferred when `deferred` (the delivery log holds the
/// batch; with `mark`, up to that sequence number), durable otherwise. `before_commit` runs
/// after the batch is written and before the transaction commits; its error aborts the
/// transaction. Returns each item's answer (or the batch's error).
fn write_batch(
    inner: &Inner,
    batch: &[Job],
    deferred: bool,
    mark: Option<u64>,
    before_commit: &mut BeforeCommit<'_>,
) -> Result<Vec<Answer>, StoreError> {
    let mut results = Vec::new();
    let mut payloads = Vec::new();
    let mut f = |t: &mut dyn WriteTxn| {
        results.clear();
        payloads.clear();
        for j in batch {
            // Item errors (quota) are decided before the item writes anything; a backend
            // error aborts the whole batch.
            let (r, payload) = match &j.append {
                None => (
                    deliver_one(inner, t, j.account, &j.envelope, &j.digest, j.now)
                        .map(Done::Delivered),
                    None,
                ),
                Some(job) => match append_one(inner, t, j.account, &j.envelope, &j.digest, job) {
                    Ok((done, payload)) => (Ok(Done::Appended(done)), Some(payload)),
                    Err(e) => (Err(e), None),
                },
            };
            if let Err(StoreError::Backend(e)) = r {
                return Err(StoreError::Backend(e));
            }
            results.push(r);
            payloads.push(payload);
        }
        if let Some(seq) = mark {
            set_log_mark(inner, t, seq)?;
        }
        before_commit(&results, &payloads, t)
    };
    if deferred { inner.backend.write_deferred(&mut f) } else { inner.backend.write(&mut f) }?;
    Ok(results)
}

fn answer(batch: &[Job], answers: Result<Vec<Answer>, StoreError>) {
    // (Every job is answered once: the hooks answer only when the batch is synced.)
    match answers {
        Ok(v) => {
            for (j, a) in batch.iter().zip(v) {
                let _ = j.reply.send(a);
            }
        }
        Err(e) => {
            for j in batch {
                let _ = j.reply.send(Err(e.clone()));
            }
        }
    }
}

/// The thread that writes and `fdatasync`s log batches, so that the committer applies a batch
/// to the backend while its records go to the disk.
struct Syncer {
    tx: Option<mpsc::Sender<Batch>>,
    done: mpsc::Receiver<Result<(), StoreError>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    fn start() -> Syncer {
        let (tx, rx) = mpsc::channel::<Batch>();
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("dime-store-log".into())
            .spawn(move || {
                while let Ok(b) = rx.recv() {
                    if done_tx.send(b.write()).is_err() {
                        break;
                    }
                }
            })
            .ok();
        Syncer { tx: Some(tx), done, thread }
    }

    /// Starts writing `batch`; [`Syncer::wait`] gives the outcome.
    fn send(&self, batch: Batch) -> Result<(), StoreError> {
        self.tx.as_ref().and_then(|tx| tx.send(batch).ok()).ok_or(StoreError::Closed)
    }

    fn wait(&self) -> Result<(), StoreError> {
        self.done.recv().unwrap_or(Err(StoreError::Closed))
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Committing<'a> {
    inner: &'a Inner,
    log: Option<(DeliveryLog, Syncer)>,
    /// Deferred commits since the last checkpoint.
    deferred: usize,
}

impl Committing<'_> {
    /// Makes `batch` durable and answers each caller.
    fn commit(&mut self, batch: &[Job]) {
        if let Err(e) = self.inner.backend.check() {
            return answer(batch, Err(e));
        }
        let logged = batch.iter().map(|j| j.envelope.len()).sum::<usize>() <= MAX_LOGGED_BATCH;
        let Some((log, syncer)) = self.log.as_mut().filter(|_| logged) else {
            // A durable commit, which also makes every deferred one durable.
            let r = write_batch(self.inner, batch, false, None, &mut |_, _, _| Ok(()));
            if r.is_ok() {
                self.checkpointed();
            }
            return answer(batch, r);
        };
        if batch.iter().any(|j| j.append.is_some()) {
            return self.commit_with_appends(batch);
        }
        let records: Vec<Record<'_>> = batch
            .iter()
            .map(|j| Record {
                account: j.account,
                now: j.now,
                digest: j.digest,
                envelope: &j.envelope,
                append: false,
            })
            .collect();
        let prepared = log.prepare(&records);
        let (span, len) = (prepared.span, prepared.len());
        if let Err(e) = syncer.send(prepared) {
            return answer(batch, Err(e));
        }
        // The gate counts batches by their last sequence number (never reused once answered).
        let n = span.last();
        let gate = &self.inner.backend;
        // The batch is applied while its records are written. Once they are on stable
        // storage, every caller is answered, and then the deferred transaction commits: the
        // read gate holds readers back until it has (`spec/storage.md` §4.1).
        let mut synced = None;
        let applied =
            write_batch(self.inner, batch, true, Some(span.last()), &mut |results, _, _| {
                synced.get_or_insert_with(|| syncer.wait()).clone()?;
                gate.answering(n);
                answer(batch, Ok(results.to_vec()));
                Ok(())
            });
        // The callers were answered exactly when the records were synced before the commit.
        let answered = matches!(synced, Some(Ok(())));
        match (synced.unwrap_or_else(|| syncer.wait()), applied) {
            (Ok(()), Ok(_)) => {
                log.written(&span, len);
                self.deferred += 1;
                gate.committed(n);
            }
            (Ok(()), Err(e)) if answered => {
                // Acknowledged and durable in the log, but not in the backend: the next
                // batch would be given the same UIDs. Stop until the store is reopened,
                // which replays these records.
                log.written(&span, len);
                gate.poison(&e.to_string());
            }
            (Ok(()), Err(e)) => {
                // Not applied, so not acknowledged: take the records back.
                log.written(&span, len);
                let _ = log.truncate_to(span.at, span.first);
                answer(batch, Err(e));
            }
            (Err(e), _) => answer(batch, Err(e)),
        }
    }

    /// [`Committing::commit`] of a batch with APPENDs: an APPEND's record holds its seals,
    /// bound to the message number the transaction gives it, so the batch is applied first and
    /// then its records (every delivery's, every APPEND that was applied) are written and
    /// synced; once they are on stable storage every caller is answered, and the deferred
    /// transaction commits (`spec/storage.md` §4.1).
    fn commit_with_appends(&mut self, batch: &[Job]) {
        let inner = self.inner;
        let Some((log, _)) = self.log.as_mut() else { return };
        let gate = &inner.backend;
        // The records written (their span and length; none when no item left a record) and
        // the outcome of writing them.
        type Logged = (Option<(Span, u64)>, Result<(), StoreError>);
        let mut logged: Option<Logged> = None;
        let applied = write_batch(inner, batch, true, None, &mut |results, payloads, t| {
            if logged.is_none() {
                let records: Vec<Record<'_>> = batch
                    .iter()
                    .zip(payloads)
                    .filter_map(|(j, payload)| match (&j.append, payload) {
                        (None, _) => Some(Record {
                            account: j.account,
                            now: j.now,
                            digest: j.digest,
                            envelope: &j.envelope,
                            append: false,
                        }),
                        (Some(_), Some(p)) => Some(Record {
                            account: j.account,
                            now: j.now,
                            digest: inner.blob_digest.of(inner.p, p),
                            envelope: p,
                            append: true,
                        }),
                        (Some(_), None) => None,
                    })
                    .collect();
                logged = Some(if records.is_empty() {
                    (None, Ok(()))
                } else {
                    let prepared = log.prepare(&records);
                    let span = prepared.span;
                    let r = set_log_mark(inner, t, span.last()).and_then(|()| prepared.write());
                    (Some((span, prepared.len())), r)
                });
            }
            let Some((span, written)) = &logged else {
                return Err(StoreError::Backend("delivery log: not written".into()));
            };
            written.clone()?;
            if let Some((span, _)) = span {
                gate.answering(span.last());
            }
            answer(batch, Ok(results.to_vec()));
            Ok(())
        });
        match (logged, applied) {
            (Some((span, Ok(()))), Ok(_)) => {
                if let Some((span, len)) = span {
                    log.written(&span, len);
                    gate.committed(span.last());
                }
                self.deferred += 1;
            }
            (Some((span, Ok(()))), Err(e)) => {
                // Answered, and durable in the log, but not in the backend: stop until the
                // store is reopened, which replays these records (as in `commit`).
                if let Some((span, len)) = span {
                    log.written(&span, len);
                    gate.poison(&e.to_string());
                }
            }
            // The records did not reach stable storage (`Batch::write` zeroed them), or the
            // batch failed before: nothing was answered.
            (Some((_, Err(e))), _) | (None, Err(e)) => answer(batch, Err(e)),
            (None, Ok(_)) => {}
        }
    }

    fn due(&self) -> bool {
        self.deferred >= MAX_DEFERRED
            || self.log.as_ref().is_some_and(|(l, _)| l.used() >= WRAP_BYTES)
    }

    fn checkpoint(&mut self) {
        // Poisoned, the log must keep the records the backend lacks: no restart.
        if self.deferred > 0
            && self.inner.backend.check().is_ok()
            && self.inner.backend.checkpoint().is_ok()
        {
            self.checkpointed();
        }
    }

    fn checkpointed(&mut self) {
        self.deferred = 0;
        if let Some((log, _)) = self.log.as_mut() {
            log.restart();
        }
    }

    /// Checkpoints (when a deferred commit is pending), then zeroes every record of the log.
    fn erase(&mut self) -> Result<(), StoreError> {
        if self.log.is_none() {
            return Ok(());
        }
        // Poisoned, the log must keep the records the backend lacks.
        self.inner.backend.check()?;
        if self.deferred > 0 {
            self.inner.backend.checkpoint()?;
        }
        self.checkpointed();
        match self.log.as_mut() {
            Some((log, _)) => log.erase(),
            None => Ok(()),
        }
    }
}

fn run(inner: &Inner, rx: &mpsc::Receiver<Msg>, log: Option<DeliveryLog>) {
    let mut c = Committing { inner, log: log.map(|l| (l, Syncer::start())), deferred: 0 };
    loop {
        let first = if c.deferred > 0 {
            match rx.recv_timeout(IDLE_CHECKPOINT) {
                Ok(j) => j,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    c.checkpoint();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(j) => j,
                Err(_) => break,
            }
        };
        let (mut batch, mut erase) = (Vec::new(), Vec::new());
        match first {
            Msg::Deliver(j) => batch.push(j),
            Msg::Erase(reply) => erase.push(reply),
        }
        // An erase ends the batch: it comes after the deliveries asked for before it.
        while batch.len() < MAX_GROUP_COMMIT && erase.is_empty() {
            match rx.try_recv() {
                Ok(Msg::Deliver(j)) => batch.push(j),
                Ok(Msg::Erase(reply)) => erase.push(reply),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let started = std::time::Instant::now();
            c.commit(&batch);
            metrics::histogram!(COMMIT_SECONDS_METRIC).record(started.elapsed().as_secs_f64());
        }
        if !erase.is_empty() {
            let r = c.erase();
            for reply in erase {
                let _ = reply.send(r.clone());
            }
        } else if c.due() {
            c.checkpoint();
        }
    }
    c.checkpoint();
}

/// The histogram of the committer's batches (`spec/dimed.md` §8): seconds from the start of a
/// batch's commit to its last caller answered and the batch applied, `fdatasync` included.
/// Recorded through the `metrics` facade: nothing is kept unless the process installed a
/// recorder.
pub const COMMIT_SECONDS_METRIC: &str = "dime_store_commit_seconds";

/// How long the store remembers where an envelope was delivered, from its arrival: a second
/// delivery of the same octets to the same account within it lands nowhere and is answered
/// with the first one's place (`spec/storage.md` §4.2). It covers the destination's replay
/// window (`spec/dmtp.md` §6.4.2: 7 days from the origin's signature, 1 hour of clock skew)
/// with a day to spare.
pub const SEEN_RETENTION_SECS: u64 = 8 * 24 * 3600;

/// Expired seen records removed by each delivery, at most: pruning keeps pace with deliveries
/// without ever making one delivery long.
const SEEN_PRUNE_PER_DELIVERY: usize = 8;

/// The keyed tag under which a delivery is remembered: account, message id (the header's, for
/// a dime v2 envelope) and blob digest, under a key from the pepper (`spec/storage.md` §4.2).
fn seen_tag(
    inner: &Inner,
    a: AccountId,
    envelope: &[u8],
    digest: &[u8; CHECKSUM_LEN],
) -> Result<[u8; 32], StoreError> {
    let id = match envelope.get(..42) {
        Some(h) if h.starts_with(b"DIMEMSG") => h.get(10..).unwrap_or_default(),
        _ => &[],
    };
    let mut ikm = Vec::with_capacity(16 + 32 + CHECKSUM_LEN);
    ikm.extend_from_slice(&a.0);
    ikm.extend_from_slice(id);
    ikm.extend_from_slice(digest);
    let k = crate::keys::derive(inner.p, inner.pepper.expose(), &ikm, &[b"dime-store seen"])?;
    Ok(*k.expose())
}

/// Removes up to [`SEEN_PRUNE_PER_DELIVERY`] seen records that arrived before `cutoff`.
fn prune_seen(t: &mut dyn WriteTxn, cutoff: u64) -> Result<(), StoreError> {
    let old = t.range(Table::SeenTime, &[], &cutoff.to_be_bytes(), SEEN_PRUNE_PER_DELIVERY)?;
    for (k, _) in old {
        if let Some(tag) = k.get(8..) {
            t.delete(Table::Seen, tag)?;
        }
        t.delete(Table::SeenTime, &k)?;
    }
    Ok(())
}

/// Writes one delivery inside a transaction; all checks come before the first write. The same
/// envelope delivered again to the same account within [`SEEN_RETENTION_SECS`] writes nothing
/// and is answered with the first delivery's place.
pub(crate) fn deliver_one(
    inner: &Inner,
    t: &mut dyn WriteTxn,
    a: AccountId,
    envelope: &[u8],
    digest: &[u8; CHECKSUM_LEN],
    now: Timestamp,
) -> Result<Delivered, StoreError> {
    let tag = seen_tag(inner, a, envelope, digest)?;
    if let Some(b) = get_body(inner, t, Table::Seen, &tag, "seen record")? {
        let (mailbox, uid, arrival) = decode_seen(&b)?;
        if arrival.saturating_add(SEEN_RETENTION_SECS) > now.0 {
            return Ok(Delivered { account: a, mailbox, uid });
        }
    }
    // A delivery lands as an APPEND to the inbox with no flags and no summary would.
    let m = MailboxId::INBOX;
    let (landed, _, _) =
        append_write(inner, t, a, m, now, digest, envelope, &mut |_| Ok((Vec::new(), None)))?;
    let uid = landed.uid.0;
    let mut seen = Vec::with_capacity(16);
    seen.extend_from_slice(&m.0.to_be_bytes());
    seen.extend_from_slice(&uid.to_be_bytes());
    seen.extend_from_slice(&now.0.to_be_bytes());
    put_body(inner, t, Table::Seen, &tag, seen)?;
    let mut by_time = now.0.to_be_bytes().to_vec();
    by_time.extend_from_slice(&tag);
    t.put(Table::SeenTime, &by_time, &[])?;
    prune_seen(t, now.0.saturating_sub(SEEN_RETENTION_SECS))?;
    Ok(Delivered { account: a, mailbox: m, uid: Uid(uid) })
}

/// A seen record: u32 mailbox, u32 UID, u64 arrival.
fn decode_seen(b: &[u8]) -> Result<(MailboxId, Uid, u64), StoreError> {
    let bad = || StoreError::Corrupt { what: "seen record" };
    let m = b.get(..4).and_then(|x| x.try_into().ok()).map(u32::from_be_bytes).ok_or_else(bad)?;
    let u = b.get(4..8).and_then(|x| x.try_into().ok()).map(u32::from_be_bytes).ok_or_else(bad)?;
    let t = b.get(8..16).and_then(|x| x.try_into().ok()).map(u64::from_be_bytes).ok_or_else(bad)?;
    if b.len() != 16 {
        return Err(bad());
    }
    Ok((MailboxId(m), Uid(u), t))
}

/// Refuses an envelope over [`MAX_ENVELOPE_LEN`], before any lookup or hashing.
fn fits(envelope: &[u8]) -> Result<(), StoreError> {
    if envelope.len() > MAX_ENVELOPE_LEN {
        return Err(StoreError::TooLarge { what: "envelope", limit: MAX_ENVELOPE_LEN });
    }
    Ok(())
}

impl Deliveries for Store {
    fn deliver(
        &self,
        recipient: &Mailbox,
        envelope: &[u8],
        now: Timestamp,
    ) -> Result<Delivered, DeliveryError> {
        fits(envelope)?;
        let account = self.inner.account_of(recipient)?;
        let digest = self.inner.blob_digest.of(self.inner.p, envelope);
        Ok(self.deliver_digested(account, envelope, digest, now)?)
    }

    fn deliver_hashed(
        &self,
        recipient: &Mailbox,
        envelope: &Hashed,
        now: Timestamp,
    ) -> Result<Delivered, DeliveryError> {
        fits(envelope)?;
        let account = self.inner.account_of(recipient)?;
        let digest = self.inner.blob_digest.of_hashed(self.inner.p, envelope);
        Ok(self.deliver_digested(account, envelope, digest, now)?)
    }

    fn deliver_to(
        &self,
        account: AccountId,
        envelope: &[u8],
        now: Timestamp,
    ) -> Result<Delivered, DeliveryError> {
        fits(envelope)?;
        let digest = self.inner.blob_digest.of(self.inner.p, envelope);
        Ok(self.deliver_digested(account, envelope, digest, now)?)
    }

    fn deliver_many(
        &self,
        account: AccountId,
        envelopes: &[&[u8]],
        now: Timestamp,
    ) -> Result<Vec<Delivered>, DeliveryError> {
        envelopes.iter().try_for_each(|e| fits(e))?;
        let inner = &*self.inner;
        let digests: Vec<_> = envelopes.iter().map(|e| inner.blob_digest.of(inner.p, e)).collect();
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

    fn replayed_deliveries(&self) -> usize {
        self.replayed
    }
}

impl Store {
    /// Hands a delivery with its blob digest to the committer and waits for its answer.
    fn deliver_digested(
        &self,
        account: AccountId,
        envelope: &[u8],
        digest: [u8; CHECKSUM_LEN],
        now: Timestamp,
    ) -> Result<Delivered, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let tx = self.committer.sender().ok_or(StoreError::Closed)?;
        let job = Job { account, envelope: envelope.to_vec(), digest, now, append: None, reply };
        tx.send(Msg::Deliver(job)).map_err(|_| StoreError::Closed)?;
        match answer.recv().map_err(|_| StoreError::Closed)?? {
            Done::Delivered(d) => Ok(d),
            Done::Appended(_) => Err(StoreError::Backend("committer: a wrong answer".into())),
        }
    }

    /// Hands an APPEND to the committer and waits until it is durable (`spec/storage.md`
    /// §5.1): written with the deliveries, through the delivery log.
    pub(crate) fn append_through_committer(
        &self,
        account: AccountId,
        envelope: &[u8],
        digest: [u8; CHECKSUM_LEN],
        now: Timestamp,
        job: AppendJob,
    ) -> Result<crate::Appended, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let tx = self.committer.sender().ok_or(StoreError::Closed)?;
        let job = Job {
            account,
            envelope: envelope.to_vec(),
            digest,
            now,
            append: Some(Box::new(job)),
            reply,
        };
        tx.send(Msg::Deliver(job)).map_err(|_| StoreError::Closed)?;
        match answer.recv().map_err(|_| StoreError::Closed)?? {
            Done::Appended(a) => Ok(a),
            Done::Delivered(_) => Err(StoreError::Backend("committer: a wrong answer".into())),
        }
    }
}
