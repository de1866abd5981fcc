//! The outbound scheduler (`spec/dmtp.md` §11, `spec/storage.md` §7): one per transport, over
//! the durable queue, calling that transport's [`Deliver`].
//!
//! A queue entry's payload is the one the outbox wrote (`crate::service::outbox`): the time it
//! was queued, the SHA-512 of the origin-signed envelope (each attempt's commitment, computed
//! once) and that envelope. The scheduler leases its transport's due entries
//! ([`Queue::lease`]: it never reads another transport's), asks the [`Deliver`] for the
//! destination's route (once for the attempts to one destination in a lease) and for each
//! delivery, and then: completes the entry when it was delivered; fails it on a permanent
//! refusal; reschedules it with [`backoff`] on a temporary failure; fails it once
//! [`RetryPolicy::max_lifetime_secs`] would pass since it was queued. A failed entry is
//! bounced: a notice signed by our org key is delivered to its author's inbox
//! (`spec/dmtp.md` §11.3). Each change to an entry is recorded with its delivery status in the
//! same store transaction ([`dime_store::DeliveryStatus`]). The payload is [`Bytes`](dime_core::crypto::Bytes), shared,
//! not copied, from the lease to the transport.
//!
//! What a transport does is its [`Deliver`]: [`dmtp::Dmtp`] now (QUIC first, TLS over TCP,
//! connection pools), SMTP next. Time and randomness are parameters of
//! [`Outbound::run_once`].

pub mod dmtp;

use crate::bounce::{self, Failure};
use crate::service::outbox::{Payload, parse_payload};
use crate::{LocalDomain, in_place};
use dime_core::crypto::{CryptoProvider, Hashed};
use dime_core::{CryptoRngCore, Domain};
use dime_store::{
    BackendError, OutboundEntry, Queue, QueueError, QueueId, Settlement, Store, Timestamp,
    Transport,
};
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// How long the delivery status of a completed entry is kept by default: 30 days
/// (`spec/dmtp.md` §11.4).
pub const DEFAULT_STATUS_RETENTION_SECS: u64 = 30 * 24 * 3600;

/// Why an attempt (or the route lookup before it) did not deliver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliverError {
    /// It may work later (a 4xx, a transport failure, DNS indeterminate): the entry is
    /// deferred.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// It will not work (a 5xx, no route, a local misconfiguration): the entry fails and is
    /// bounced.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// One transport's half of delivery: the scheduler ([`Outbound`]) owns leasing, backoff,
/// lifetime, bounces and settlement; a `Deliver` finds a destination's route and hands it one
/// envelope.
pub trait Deliver: Send + Sync + 'static {
    /// The transport whose queue entries this delivers: the scheduler leases only those.
    const TRANSPORT: Transport;
    /// What a lookup of a destination gives (its hosts, keys, certificate policy), shared by
    /// the attempts to that destination in one lease.
    type Route: Send + Sync + 'static;

    /// The route to `destination`.
    fn route(
        &self,
        destination: &Domain,
    ) -> impl Future<Output = Result<Self::Route, DeliverError>> + Send;

    /// Delivers `envelope` to `destination` along `route`; the answer is the receipt the
    /// destination gave (DMTP: its transaction id), recorded in the delivery status.
    fn deliver(
        &self,
        destination: &Domain,
        route: &Self::Route,
        envelope: &Hashed,
    ) -> impl Future<Output = Result<String, DeliverError>> + Send;

    /// Called every interval of the worker: closes connections idle past their time.
    fn housekeeping(&self) {}
}

/// Retry schedule and limits of the outbound worker.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Delay before the first retry, seconds.
    pub base_secs: u64,
    /// Largest delay between attempts, seconds.
    pub max_backoff_secs: u64,
    /// Time after queueing when the worker gives up, seconds.
    pub max_lifetime_secs: u64,
    /// How long a leased entry is held before another worker may take it, seconds.
    pub lease_secs: u64,
    /// Entries leased at once (a pass of [`Outbound::run_once`]; a lease of the worker).
    pub batch: usize,
    /// Attempts under way at once (0 counts as 1).
    pub in_flight: usize,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            base_secs: 60,
            max_backoff_secs: 6 * 3600,
            max_lifetime_secs: 5 * 24 * 3600,
            lease_secs: 300,
            batch: 64,
            in_flight: 8,
        }
    }
}

/// The delay before the next attempt after `attempts` failed ones: `base * 2^attempts`, capped
/// at `max_backoff_secs`, with "equal jitter" (half fixed, half uniform random).
pub fn backoff(policy: &RetryPolicy, attempts: u32, rng: &mut dyn CryptoRngCore) -> u64 {
    let exp = policy
        .base_secs
        .saturating_mul(1u64 << attempts.min(32))
        .min(policy.max_backoff_secs)
        .max(1);
    let half = exp / 2;
    half + rng.next_u64() % (exp - half + 1)
}

/// What happened to one queue entry in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered; the entry is complete.
    Delivered {
        /// The entry.
        id: QueueId,
        /// The receipt the destination gave (DMTP: its transaction id).
        txid: String,
    },
    /// A temporary failure; the entry is due again at `next`.
    Deferred {
        /// The entry.
        id: QueueId,
        /// Its next attempt.
        next: Timestamp,
        /// Why, for the log.
        reason: String,
    },
    /// A permanent failure, or the maximum lifetime passed; the entry is complete.
    Failed {
        /// The entry.
        id: QueueId,
        /// Why, for the log.
        reason: String,
        /// Whether a bounce was delivered to the author (status bounced; else failed).
        bounced: bool,
    },
}

impl Outcome {
    /// The entry.
    pub fn id(&self) -> QueueId {
        match self {
            Outcome::Delivered { id, .. }
            | Outcome::Deferred { id, .. }
            | Outcome::Failed { id, .. } => *id,
        }
    }
}

/// One leased entry to try: its payload read (the entry keeps none), and its route, looked up
/// by the first attempt to its destination that starts.
struct Attempt<Rt> {
    e: OutboundEntry,
    destination: Domain,
    payload: Payload,
    route: Arc<OnceCell<Result<Rt, DeliverError>>>,
    /// The end of its lease.
    until: Timestamp,
}

/// An attempt that ended, and how.
type Ended<Rt> = (Attempt<Rt>, Result<String, DeliverError>);

/// The outbound worker of one transport: one per origin server and transport.
pub struct Outbound<D> {
    store: Arc<Store>,
    local: Arc<LocalDomain>,
    deliver: D,
    policy: RetryPolicy,
    provider: &'static CryptoProvider,
    status_retention_secs: u64,
    wake: Option<Arc<tokio::sync::Notify>>,
}

impl<D> std::fmt::Debug for Outbound<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("domain", &self.local.domain)
            .field("policy", &self.policy)
            .field("status_retention_secs", &self.status_retention_secs)
            .finish_non_exhaustive()
    }
}

impl<D: Deliver> Outbound<D> {
    /// A worker delivering `store`'s entries of `D`'s transport for `local` through `deliver`;
    /// bounces are sealed with `provider`.
    pub fn new(
        store: Arc<Store>,
        local: Arc<LocalDomain>,
        deliver: D,
        policy: RetryPolicy,
        provider: &'static CryptoProvider,
    ) -> Outbound<D> {
        Outbound {
            store,
            local,
            deliver,
            policy,
            provider,
            status_retention_secs: DEFAULT_STATUS_RETENTION_SECS,
            wake: None,
        }
    }

    /// Keeps the delivery status of completed entries for `secs` seconds after their last
    /// change (default [`DEFAULT_STATUS_RETENTION_SECS`]); older ones are pruned every interval
    /// ([`Outbound::run`]) and at the start of [`Outbound::run_once`].
    #[must_use]
    pub fn with_status_retention(mut self, secs: u64) -> Outbound<D> {
        self.status_retention_secs = secs;
        self
    }

    /// [`Outbound::run`] also looks for due entries as soon as `wake` is notified (a
    /// submission), not only every interval.
    pub fn with_wake(mut self, wake: Arc<tokio::sync::Notify>) -> Outbound<D> {
        self.wake = Some(wake);
        self
    }

    /// One pass at time `now`: prunes old delivery statuses, leases the due entries (up to
    /// the policy's batch) and tries each once, recording each outcome in the entry's status
    /// (`spec/dmtp.md` §11). [`Outbound::run`] is the worker `dimed` runs: it does not go by
    /// passes.
    ///
    /// # Errors
    /// [`QueueError`] when the queue cannot be read or updated.
    pub async fn run_once(
        &self,
        now: Timestamp,
        rng: &mut (dyn CryptoRngCore + Send),
    ) -> Result<Vec<Outcome>, QueueError> {
        self.drive(rng, Some(now), None, std::pin::pin!(std::future::pending())).await
    }

    /// Prunes the delivery statuses older than the retention, and lets the transport close
    /// the connections idle past their time.
    fn housekeeping(&self, now: Timestamp) {
        // The store's writes are durable commits: each runs in place (`crate::in_place`), so
        // the worker's other tasks (the destination's streams, in `dimed`) go on meanwhile.
        let before = Timestamp(now.0.saturating_sub(self.status_retention_secs));
        match in_place(|| self.store.prune_delivery_statuses(before)) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "old delivery statuses pruned"),
            Err(e) => tracing::warn!(error = %e, "delivery status pruning failed"),
        }
        self.deliver.housekeeping();
    }

    /// Leases up to `max` due entries of the transport as attempts. An entry that does not
    /// read fails here (its outcome is the second part). The attempts to one destination share
    /// one route lookup, made by the first of them to start.
    #[allow(clippy::type_complexity)]
    fn lease_attempts(
        &self,
        rng: &mut (dyn CryptoRngCore + Send),
        now: Timestamp,
        max: usize,
    ) -> Result<(Vec<Attempt<D::Route>>, Vec<Outcome>), QueueError> {
        let leased = in_place(|| self.store.lease(D::TRANSPORT, now, self.policy.lease_secs, max))?;
        let mut failed = Vec::new();
        let mut routes: HashMap<Domain, Arc<OnceCell<Result<D::Route, DeliverError>>>> =
            HashMap::new();
        let mut attempts = Vec::with_capacity(leased.len());
        for l in leased {
            let mut e = l.entry;
            let payload = parse_payload(self.provider, &std::mem::take(&mut e.payload));
            let destination = Domain::parse(&e.destination).ok();
            let (Some(payload), Some(destination)) = (payload, destination) else {
                in_place(|| self.store.complete_failed(rng, e.id, "unreadable queue entry", now))?;
                tracing::warn!(queue_id = e.id.0, "unreadable queue entry failed");
                failed.push(Outcome::Failed {
                    id: e.id,
                    reason: "unreadable queue entry".into(),
                    bounced: false,
                });
                continue;
            };
            let route = Arc::clone(routes.entry(destination.clone()).or_default());
            attempts.push(Attempt { e, destination, payload, route, until: l.until });
        }
        Ok((attempts, failed))
    }

    /// One attempt: its route (looked up once for the attempts that share it), then the
    /// delivery.
    async fn attempt(&self, a: Attempt<D::Route>) -> Ended<D::Route> {
        let route = a.route.get_or_init(|| self.deliver.route(&a.destination)).await;
        let result = match route {
            Ok(route) => self.deliver.deliver(&a.destination, route, &a.payload.envelope).await,
            Err(e) => Err(e.clone()),
        };
        (a, result)
    }

    /// Records the outcomes of attempts that ended: failures here, in place, each with its
    /// bounce; deliveries and deferrals together, in the transaction the second part runs on
    /// the blocking pool ([`Outbound::settle`]). The first part is the outcomes recorded.
    #[allow(clippy::type_complexity)]
    fn record(
        &self,
        rng: &mut (dyn CryptoRngCore + Send),
        ended: Vec<Ended<D::Route>>,
        now: Timestamp,
    ) -> Result<(Vec<Outcome>, Option<Recording>), QueueError> {
        let batch = in_place(|| self.classify(rng, ended, now))?;
        if batch.settle.is_empty() {
            return Ok((batch.outcomes, None));
        }
        Ok((Vec::new(), Some(Box::pin(self.settle(batch, rng, now)))))
    }

    /// Records `batch`'s deliveries and deferrals in one transaction on the blocking pool
    /// ([`Queue::settle_all`]), then logs each; resolves to the batch's outcomes.
    fn settle(
        &self,
        batch: Classified,
        rng: &mut (dyn CryptoRngCore + Send),
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Outcome>, QueueError>> + use<D> {
        let store = Arc::clone(&self.store);
        // The status seals take their nonces from a generator of their own, seeded from `rng`.
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut own = ChaCha20Rng::from_seed(seed);
        let Classified { outcomes, settled, settle } = batch;
        let write = tokio::task::spawn_blocking(move || store.settle_all(&mut own, &settle, now));
        async move {
            let answers = write
                .await
                .map_err(|e| BackendError::Failed(format!("recording outcomes stopped: {e}")))??;
            for ((i, destination), answer) in settled.into_iter().zip(answers) {
                match answer {
                    Ok(_) => log_outcome(&destination, &outcomes[i]),
                    // Gone or unreadable since it was leased (another worker's lease ran out and
                    // it completed the entry; damage): nothing more to record.
                    Err(err) => {
                        tracing::warn!(destination = %destination, queue_id = outcomes[i].id().0, error = %err, "outcome not recorded")
                    }
                }
            }
            Ok(outcomes)
        }
    }

    /// The outcomes of attempts that ended: delivered, deferred or failed. A failure is
    /// recorded here, alone, with its bounce; deliveries and deferrals are left to
    /// [`Outbound::settle`], together.
    fn classify(
        &self,
        rng: &mut (dyn CryptoRngCore + Send),
        ended: Vec<Ended<D::Route>>,
        now: Timestamp,
    ) -> Result<Classified, QueueError> {
        let mut outcomes = Vec::with_capacity(ended.len());
        // (index in `outcomes`, destination) of each entry in `settle`.
        let mut settled = Vec::new();
        let mut settle = Vec::new();
        for (a, result) in ended {
            let (e, destination) = (&a.e, &a.destination);
            let (queued, envelope) = (a.payload.queued, a.payload.envelope.bytes());
            let (outcome, settlement) = match result {
                Ok(txid) => {
                    let s = Settlement::Delivered { txid: txid.clone() };
                    (Outcome::Delivered { id: e.id, txid }, Some(s))
                }
                Err(DeliverError::Permanent(reason)) => {
                    (self.fail(rng, e, destination, queued, envelope, reason, now)?, None)
                }
                Err(DeliverError::Temporary(reason)) => {
                    let next =
                        Timestamp(now.0.saturating_add(backoff(&self.policy, e.attempts, rng)));
                    if next.0 > queued.0.saturating_add(self.policy.max_lifetime_secs) {
                        let reason = format!("maximum lifetime reached: {reason}");
                        (self.fail(rng, e, destination, queued, envelope, reason, now)?, None)
                    } else {
                        let s = Settlement::Deferred { next_attempt: next, reason: reason.clone() };
                        (Outcome::Deferred { id: e.id, next, reason }, Some(s))
                    }
                }
            };
            match settlement {
                Some(s) => {
                    settled.push((outcomes.len(), a.destination));
                    settle.push((e.id, s));
                }
                None => log_outcome(destination, &outcome),
            }
            outcomes.push(outcome);
        }
        Ok(Classified { outcomes, settled, settle })
    }

    /// Completes a failed entry: bounces it to its author and records it bounced, or, when no
    /// bounce can be built or delivered, records it failed (`spec/dmtp.md` §11.3).
    #[allow(clippy::too_many_arguments)]
    fn fail(
        &self,
        rng: &mut dyn CryptoRngCore,
        e: &OutboundEntry,
        destination: &Domain,
        queued: Timestamp,
        envelope: &[u8],
        reason: String,
        now: Timestamp,
    ) -> Result<Outcome, QueueError> {
        let failure = Failure {
            id: e.id,
            destination,
            reason: &reason,
            queued,
            failed: now,
            attempts: e.attempts.saturating_add(1),
        };
        let built = bounce::build(self.provider, rng, &self.local, &self.store, envelope, &failure);
        let bounced = match built {
            Ok(b) => {
                match self.store.complete_bounced(rng, e.id, &reason, &b.author, &b.envelope, now) {
                    Ok(_) => true,
                    Err(err @ (QueueError::Backend(_) | QueueError::NoSuchEntry)) => {
                        return Err(err);
                    }
                    Err(err) => {
                        tracing::warn!(destination = %destination, queue_id = e.id.0, error = %err, "bounce not delivered");
                        false
                    }
                }
            }
            Err(err) => {
                tracing::warn!(destination = %destination, queue_id = e.id.0, error = %err, "bounce not built");
                false
            }
        };
        if !bounced {
            self.store.complete_failed(rng, e.id, &reason, now)?;
        }
        Ok(Outcome::Failed { id: e.id, reason, bounced })
    }

    /// The worker: keeps up to `in_flight` attempts under way until `shutdown` resolves. It
    /// leases a batch of due entries when fewer than `in_flight` wait to start and entries may
    /// be due: at start, every `interval`, after a [`Outbound::with_wake`] notification, and
    /// after a lease that was full (a backlog drains at the worker's pace). An attempt does not
    /// wait for others that started before it (one slow destination holds back no other).
    /// Every `interval` it also prunes old statuses and lets the transport close idle
    /// connections. At `shutdown` it starts nothing more, lets the attempts under way end and
    /// records them, and hands back the entries it leased and did not try (due again at once).
    /// It logs the store's errors and goes on.
    pub async fn run(
        self,
        interval: std::time::Duration,
        mut rng: impl CryptoRngCore + Send,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let _ = self.drive(&mut rng, None, Some(tick), std::pin::pin!(shutdown)).await;
    }

    /// Runs attempts: one pass at `once` ([`Outbound::run_once`]: one lease, its attempts,
    /// their outcomes, which it returns; the store's first error ends it), or the worker on the
    /// wall clock ([`Outbound::run`]: leases as places free and at each `tick`, until
    /// `shutdown` resolves; errors are logged; no outcome is kept).
    async fn drive<S: Future<Output = ()>>(
        &self,
        rng: &mut (dyn CryptoRngCore + Send),
        once: Option<Timestamp>,
        mut tick: Option<tokio::time::Interval>,
        mut shutdown: std::pin::Pin<&mut S>,
    ) -> Result<Vec<Outcome>, QueueError> {
        let worker = once.is_none();
        let clock = || once.unwrap_or_else(crate::now);
        let in_flight = self.policy.in_flight.max(1);
        // A lease that ends this close is not started (never, for leases of 0 s).
        let margin = lease_margin(self.policy.lease_secs);
        let mut out = Vec::new();
        let mut keep = |outcomes: Vec<Outcome>| {
            if !worker {
                out.extend(outcomes);
            }
        };
        let mut waiting: VecDeque<Attempt<D::Route>> = VecDeque::new();
        let mut running = FuturesUnordered::new();
        let mut ended = Vec::new();
        // At most one transaction of outcomes under way.
        let mut recording: FuturesUnordered<Recording> = FuturesUnordered::new();
        let (mut due, mut stopping) = (true, false);
        if let Some(now) = once {
            // The worker does this at its first tick.
            self.housekeeping(now);
        }
        loop {
            let now = clock();
            // A pass leases once; the worker keeps at most twice `in_flight` waiting, so that
            // each starts well within its lease.
            if !stopping && due && waiting.len() < in_flight {
                let max = if worker {
                    worker_lease_size(self.policy.batch, in_flight, waiting.len())
                } else {
                    self.policy.batch
                };
                match self.lease_attempts(rng, now, max) {
                    Ok((attempts, failed)) => {
                        // A full lease may have left due entries behind.
                        due = worker && attempts.len() + failed.len() >= max;
                        waiting.extend(attempts);
                        keep(failed);
                    }
                    Err(e) if worker => {
                        tracing::error!(error = %e, "outbound queue lease failed");
                        due = false;
                    }
                    Err(e) => return Err(e),
                }
            }
            while !stopping && running.len() < in_flight {
                let Some(a) = waiting.pop_front() else { break };
                // A lease that ran out while its entry waited may be another attempt's now: the
                // entry is left to whoever leases it next.
                if self.policy.lease_secs > 0 && clock().0.saturating_add(margin) >= a.until.0 {
                    tracing::warn!(queue_id = a.e.id.0, "lease ran out before the attempt; left");
                    continue;
                }
                running.push(self.attempt(a));
            }
            if recording.is_empty() && !ended.is_empty() {
                match self.record(rng, std::mem::take(&mut ended), now) {
                    Ok((done, settling)) => {
                        keep(done);
                        recording.extend(settling);
                    }
                    Err(e) if worker => {
                        tracing::error!(error = %e, "outbound outcomes not recorded")
                    }
                    Err(e) => return Err(e),
                }
            }
            let idle = running.is_empty() && recording.is_empty() && ended.is_empty();
            if idle && (stopping || (!worker && waiting.is_empty())) {
                break;
            }
            let wake = self.wake.clone().filter(|_| worker);
            let woken = async move {
                match wake {
                    Some(w) => w.notified().await,
                    None => std::future::pending().await,
                }
            };
            let ticked = async {
                match tick.as_mut() {
                    Some(t) => {
                        t.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(a) = running.next(), if !running.is_empty() => {
                    ended.push(a);
                    while let Some(Some(a)) = running.next().now_or_never() {
                        ended.push(a);
                    }
                }
                Some(r) = recording.next(), if !recording.is_empty() => match r {
                    Ok(done) => keep(done),
                    Err(e) if worker => tracing::error!(error = %e, "outbound outcomes not recorded"),
                    Err(e) => return Err(e),
                },
                () = shutdown.as_mut(), if worker && !stopping => stopping = true,
                () = ticked, if !stopping => {
                    self.housekeeping(crate::now());
                    due = true;
                }
                () = woken, if !stopping => due = true,
            }
        }
        let untried: Vec<QueueId> = waiting.iter().map(|a| a.e.id).collect();
        if !untried.is_empty()
            && let Err(e) = in_place(|| self.store.release(&untried, clock()))
        {
            tracing::warn!(error = %e, "leased entries not handed back");
        }
        Ok(out)
    }
}

/// An attempt whose lease ends within this many seconds (or a quarter of the lease, if less) is
/// not started.
const LEASE_MARGIN_SECS: u64 = 60;

/// How close to the end of a lease of `lease_secs` an attempt is no longer started.
fn lease_margin(lease_secs: u64) -> u64 {
    (lease_secs / 4).min(LEASE_MARGIN_SECS)
}

/// How many entries the worker leases, with `in_flight` attempts at once and `waiting` leased
/// entries not started (fewer than `in_flight`): the policy's `batch`, at least 1, and no more
/// than leaves twice `in_flight` waiting, so that each starts well within its lease.
fn worker_lease_size(batch: usize, in_flight: usize, waiting: usize) -> usize {
    batch.clamp(1, 2 * in_flight - waiting)
}

/// A transaction of outcomes under way ([`Outbound::settle`]).
type Recording = std::pin::Pin<Box<dyn Future<Output = Result<Vec<Outcome>, QueueError>> + Send>>;

/// Outcomes of attempts that ended, the failures among them recorded.
struct Classified {
    outcomes: Vec<Outcome>,
    /// (index in `outcomes`, destination) of each entry in `settle`.
    settled: Vec<(usize, Domain)>,
    /// The deliveries and deferrals to record.
    settle: Vec<(QueueId, Settlement)>,
}

/// Logs an outcome once recorded, and counts it.
fn log_outcome(destination: &Domain, outcome: &Outcome) {
    crate::metrics::outbound(outcome);
    match outcome {
        Outcome::Delivered { id, txid } => {
            tracing::info!(destination = %destination, queue_id = id.0, txid = %txid, "delivered")
        }
        Outcome::Deferred { id, next, reason } => {
            tracing::info!(destination = %destination, queue_id = id.0, next = next.0, reason = %reason, "deferred")
        }
        Outcome::Failed { id, reason, bounced } => {
            tracing::warn!(destination = %destination, queue_id = id.0, reason = %reason, bounced = *bounced, "delivery failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dime_testkit::FixedDraws;

    #[test]
    fn backoff_is_the_specs_equal_jitter_for_every_draw() {
        // spec/dmtp.md §11.2: e = max(1, min(base * 2^min(n, 32), max_backoff)),
        // delay = floor(e/2) + (r mod (e - floor(e/2) + 1)).
        let policy =
            RetryPolicy { base_secs: 61, max_backoff_secs: 1000, ..RetryPolicy::default() };
        for (n, e) in [(0, 61u64), (1, 122), (2, 244), (3, 488), (4, 976), (5, 1000), (40, 1000)] {
            let half = e / 2;
            let span = e - half + 1;
            for r in [0, 1, span - 1, span, span + 1, u64::MAX] {
                let want = half + r % span;
                assert_eq!(backoff(&policy, n, &mut FixedDraws::new(r, 0)), want, "n {n}, r {r}");
            }
            assert_eq!(
                backoff(&policy, n, &mut FixedDraws::new(span - 1, 0)),
                e,
                "the top is reached"
            );
            assert_eq!(backoff(&policy, n, &mut FixedDraws::new(0, 0)), half, "and the bottom");
        }
        let zero = RetryPolicy { base_secs: 0, ..RetryPolicy::default() };
        assert_eq!(backoff(&zero, 3, &mut FixedDraws::new(0, 0)), 0);
        assert_eq!(backoff(&zero, 3, &mut FixedDraws::new(1, 0)), 1, "e is at least 1");
        let huge = RetryPolicy { base_secs: u64::MAX, max_backoff_secs: u64::MAX, ..zero };
        assert_eq!(backoff(&huge, 40, &mut FixedDraws::new(0, 0)), u64::MAX / 2, "saturating");
    }

    #[test]
    fn an_entry_is_not_started_within_60_s_or_a_quarter_of_its_lease_of_the_end() {
        // spec/dmtp.md §11.2.
        for (lease, margin) in [(0, 0), (3, 0), (4, 1), (100, 25), (240, 60), (241, 60), (300, 60)]
        {
            assert_eq!(lease_margin(lease), margin, "lease {lease}");
        }
        assert_eq!(lease_margin(u64::MAX), LEASE_MARGIN_SECS);
        assert_eq!(LEASE_MARGIN_SECS, 60);
    }

    #[test]
    fn the_worker_leases_up_to_batch_and_keeps_at_most_twice_in_flight_waiting() {
        // spec/dmtp.md §11.2: (batch, in_flight, waiting) -> leased.
        for (batch, in_flight, waiting, leased) in [
            (64, 8, 0, 16),
            (64, 8, 7, 9),
            (10, 8, 0, 10),
            (10, 8, 7, 9),
            (0, 8, 0, 1),
            (0, 1, 0, 1),
            (64, 1, 0, 2),
            (3, 4, 3, 3),
        ] {
            assert_eq!(
                worker_lease_size(batch, in_flight, waiting),
                leased,
                "batch {batch}, in_flight {in_flight}, waiting {waiting}"
            );
        }
    }

    #[test]
    fn the_defaults_are_the_specs() {
        // spec/dmtp.md §11.1, §11.2, §11.4, in seconds.
        assert_eq!(DEFAULT_STATUS_RETENTION_SECS, 2_592_000);
        let d = RetryPolicy::default();
        assert_eq!((d.base_secs, d.max_backoff_secs, d.max_lifetime_secs), (60, 21_600, 432_000));
        assert_eq!((d.lease_secs, d.batch, d.in_flight), (300, 64, 8));
    }
}
