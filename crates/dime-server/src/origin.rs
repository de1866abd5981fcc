//! The origin role (`spec/dmtp.md` §2, §5.1, §11): submission into the durable outbound
//! queue, and the worker that delivers queued envelopes to their destination servers.
//!
//! A queue entry's destination is the destination domain; its payload is [`PAYLOAD_MAGIC`],
//! the time it was queued (8 octets, big-endian seconds), the SHA-512 of the origin-signed
//! envelope (each attempt's DATA commitment, computed once) and that envelope. The
//! worker leases due entries, resolves the destination ([`Routes`]), tries QUIC first and TLS
//! over TCP when QUIC gets no answer, and then: completes the entry on 250; fails it on a
//! permanent refusal (5xx); reschedules it with [`backoff`] on a temporary failure (4xx,
//! transport, indeterminate or bogus DNS); fails it once [`RetryPolicy::max_lifetime_secs`]
//! would pass since it was queued. A failed entry is bounced: a notice signed by our org key
//! is delivered to its author's inbox (`spec/dmtp.md` §11.3). Each change to an entry is
//! recorded with its delivery status in the same store transaction
//! ([`dime_store::DeliveryStatus`], `spec/storage.md` §7.1). Time and randomness are
//! parameters of [`Outbound::run_once`].

use crate::bounce::{self, Failure};
use crate::{LocalDomain, in_place};
use dime_core::crypto::{CryptoProvider, Ed25519PublicKey, Hashed};
use dime_core::{CryptoRngCore, Domain, Fingerprint, Mailbox};
use dime_dmtp::{Outgoing, TransactionId};
use dime_net::{NetError, QuicPool, TlsPool, TlsProvider, is_temporary};
use dime_resolver::tls::{CertPolicy, DimeCertVerifier, WebPki};
use dime_resolver::{
    AuthenticatedDomain, AuthenticatedRecord, DiscoveryError, KeyResolver, PinStore, SignetSource,
};
use dime_store::{OutboundEntry, QueueId, Settlement, Store, StoreError, Timestamp, Transport};
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rustls::client::danger::ServerCertVerifier;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::OnceCell;

use crate::service::outbox::{NotSigned, origin_sign, queue_envelope};
pub use crate::service::outbox::{PAYLOAD_MAGIC, Payload, parse_payload};
/// The DMTP port when the record names none (`spec/dmtp.md` §2).
pub const DMTP_PORT: u16 = 26;
/// How long the delivery status of a completed entry is kept by default: 30 days
/// (`spec/dmtp.md` §11.4).
pub const DEFAULT_STATUS_RETENTION_SECS: u64 = 30 * 24 * 3600;

pub use crate::bounce::{BOUNCE_LOCAL_PART, BOUNCE_REASON_MAX_CHARS};

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The envelope does not open for our org key, or its author signature does not verify.
    #[error("envelope does not open as the origin or its author signature does not verify")]
    Envelope,
    /// The author is not one of our users.
    #[error("author is not a user of this domain")]
    NotOurUser,
    /// The store refused (unknown author, I/O).
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Checks an envelope submitted by `author` (authenticated by the caller: a login session) as
/// the origin: it opens with our org key, `author` is ours, signed it and is the author it
/// names. Then appends the origin signature and queues it durably for its destination.
/// (`dime-envelope`'s `Unverified<OriginView>` exposes no claimed author, so the caller names
/// the author and the verified view must agree.) The author's signing key is that of their
/// current signet in `store`; a caller already holding it uses [`submit_signed_by`].
///
/// # Errors
/// [`SubmitError`].
pub fn submit(
    p: &CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    store: &Store,
    local: &LocalDomain,
    author: &Mailbox,
    envelope: &[u8],
    now: Timestamp,
) -> Result<(QueueId, Domain), SubmitError> {
    if author.domain() != &local.domain {
        return Err(SubmitError::NotOurUser);
    }
    let (_, signet) = store.signet(author)?;
    let key = signet.signing_key().map_err(|_| SubmitError::Envelope)?;
    submit_signed_by(p, rng, store, local, author, &key, envelope, now)
}

/// [`submit`] with the author's signing key from the caller: the key of `author`'s current
/// signet in `store`, read by the caller (one read per submission, not two).
///
/// # Errors
/// [`SubmitError`].
#[allow(clippy::too_many_arguments)]
pub fn submit_signed_by(
    p: &CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    store: &Store,
    local: &LocalDomain,
    author: &Mailbox,
    author_key: &Ed25519PublicKey,
    envelope: &[u8],
    now: Timestamp,
) -> Result<(QueueId, Domain), SubmitError> {
    if author.domain() != &local.domain {
        return Err(SubmitError::NotOurUser);
    }
    let (chunk, destination) =
        origin_sign(p, rng, local, author, author_key, envelope).map_err(|e| match e {
            NotSigned::Envelope => SubmitError::Envelope,
            NotSigned::OtherAuthor => SubmitError::NotOurUser,
        })?;
    let account = store.account_of(author)?;
    let id = queue_envelope(p, rng, store, account, &destination, &[envelope, &chunk], now)?;
    Ok((id, destination))
}

/// One leased entry to try: its payload read (the entry keeps none), and its route, looked up
/// by the first attempt to its destination that starts.
struct Attempt {
    e: OutboundEntry,
    destination: Domain,
    payload: Payload,
    route: Arc<OnceCell<Result<Route, RouteError>>>,
    /// The end of its lease.
    until: Timestamp,
}

/// One server to try: the name its certificate is checked for, and its addresses.
#[derive(Debug, Clone)]
pub struct Target {
    /// The host name (the certificate's name).
    pub server_name: String,
    /// Addresses with ports, in order.
    pub addrs: Vec<SocketAddr>,
}

/// Where and how to deliver to a destination domain.
#[derive(Clone)]
pub struct Route {
    /// The destination's current org signet fingerprint (RCPT, `spec/dmtp.md` §6.3).
    pub destination_fingerprint: Fingerprint,
    /// Its delivery hosts in order.
    pub targets: Vec<Target>,
    /// The certificate verifier for its servers (the resolver's pinning verifier).
    pub verifier: Arc<dyn ServerCertVerifier>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route").field("targets", &self.targets).finish_non_exhaustive()
    }
}

/// Why a route could not be found.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    /// It may work later (DNS indeterminate or bogus, fetch failed): defer.
    #[error("route temporarily unavailable: {0}")]
    Temporary(&'static str),
    /// It will not work (not a DIME domain, signet refused): fail.
    #[error("no route: {0}")]
    Permanent(&'static str),
}

/// Resolves a destination domain to a [`Route`].
pub trait Routes: Send + Sync + 'static {
    /// The route to `destination`.
    fn route(&self, destination: &Domain)
    -> impl Future<Output = Result<Route, RouteError>> + Send;
}

/// [`Routes`] through the [`KeyResolver`]: the org signet's fingerprint, the delivery hosts
/// (`spec/dns-record.md` §5.5) and a [`DimeCertVerifier`] for the record's pins. The record
/// and the hosts are those the resolver used for the org signet, not looked up again.
#[derive(Debug)]
pub struct ResolverRoutes<S, P> {
    resolver: Arc<KeyResolver<S, P>>,
    provider: &'static CryptoProvider,
    webpki: WebPki,
}

impl<S, P> ResolverRoutes<S, P> {
    /// Routes through `resolver`; `webpki` is the shared WebPKI verifier (its roots loaded
    /// once) for certificates the record's pins do not decide.
    pub fn new(
        resolver: Arc<KeyResolver<S, P>>,
        provider: &'static CryptoProvider,
        webpki: WebPki,
    ) -> ResolverRoutes<S, P> {
        ResolverRoutes { resolver, provider, webpki }
    }
}

fn route_error(e: &DiscoveryError) -> RouteError {
    if e.is_temporary() {
        RouteError::Temporary("org signet lookup deferred")
    } else {
        RouteError::Permanent("org signet refused")
    }
}

impl<S, P> Routes for ResolverRoutes<S, P>
where
    S: SignetSource + 'static,
    P: PinStore + 'static,
{
    async fn route(&self, destination: &Domain) -> Result<Route, RouteError> {
        let domain =
            self.resolver.authenticated_domain(destination).await.map_err(|e| route_error(&e))?;
        let org = self.resolver.org_key_for(&domain).await.map_err(|e| route_error(&e))?;
        let targets = delivery_targets(&domain).await;
        if targets.is_empty() {
            return Err(RouteError::Temporary("no delivery host with a trustworthy address"));
        }
        let verifier = record_verifier(domain.record(), &self.webpki, self.provider);
        Ok(Route { destination_fingerprint: org.org.fingerprint, targets, verifier })
    }
}

/// The delivery hosts of an authenticated `domain` whose addresses can be trusted (bogus or
/// indeterminate answers are skipped), with their ports (`spec/dns-record.md` §5.5). The hosts
/// are looked up once per [`AuthenticatedDomain`].
pub async fn delivery_targets(domain: &AuthenticatedDomain) -> Vec<Target> {
    domain
        .delivery_hosts()
        .await
        .iter()
        .filter_map(|h| {
            let port = h.host.port.unwrap_or(DMTP_PORT);
            Some(Target {
                server_name: h.host.name.as_str().to_owned(),
                addrs: h.trusted_addresses()?.iter().map(|a| SocketAddr::new(*a, port)).collect(),
            })
        })
        .filter(|t| !t.addrs.is_empty())
        .collect()
}

/// The certificate verifier for a domain's servers under its usable `record`: its `tls=` pins
/// (secure record) or the WebPKI (CA-TLS) through the shared `webpki`. Cheap: no file is read
/// and no root store built.
pub fn record_verifier(
    record: &AuthenticatedRecord,
    webpki: &WebPki,
    provider: &'static CryptoProvider,
) -> Arc<DimeCertVerifier> {
    Arc::new(DimeCertVerifier::new(CertPolicy::for_record(record), webpki, provider))
}

/// Which transports the worker tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transports {
    /// QUIC first, TLS over TCP when QUIC gets no answer (`spec/dmtp.md` §2).
    QuicThenTls,
    /// QUIC only.
    QuicOnly,
    /// TLS over TCP only.
    TlsOnly,
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
    /// Stored by the destination under its transaction id; the entry is complete.
    Delivered {
        /// The entry.
        id: QueueId,
        /// The destination's transaction id.
        txid: TransactionId,
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

enum SendError {
    Temporary(String),
    Permanent(String),
}

/// The one mapping of a delivery's failure, over QUIC or TLS, on a new or a reused connection
/// alike (`spec/dmtp.md` §11.2): a 4xx and transport failures are temporary, a 5xx and local
/// configuration or misuse errors permanent.
fn classify(e: NetError) -> SendError {
    if is_temporary(&e) {
        SendError::Temporary(e.to_string())
    } else {
        SendError::Permanent(e.to_string())
    }
}

/// The outbound worker: one per origin server.
pub struct Outbound<R> {
    store: Arc<Store>,
    local: Arc<LocalDomain>,
    routes: Arc<R>,
    policy: RetryPolicy,
    transports: Transports,
    provider: &'static CryptoProvider,
    /// The rustls provider every client configuration is built over.
    tls_provider: TlsProvider,
    status_retention_secs: u64,
    wake: Option<Arc<tokio::sync::Notify>>,
    /// QUIC connections by destination and address, reused while live.
    quic: QuicPool<(Domain, SocketAddr)>,
    /// TLS connections by destination and address, idle between transactions.
    tls: TlsPool<(Domain, SocketAddr)>,
}

impl<R> std::fmt::Debug for Outbound<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("domain", &self.local.domain)
            .field("policy", &self.policy)
            .field("transports", &self.transports)
            .field("status_retention_secs", &self.status_retention_secs)
            .finish_non_exhaustive()
    }
}

impl<R: Routes> Outbound<R> {
    /// A worker delivering `store`'s queue for `local` along `routes`; DIME's primitives from
    /// `provider`, its TLS and QUIC client configurations over `tls_provider`.
    pub fn new(
        store: Arc<Store>,
        local: Arc<LocalDomain>,
        routes: Arc<R>,
        policy: RetryPolicy,
        transports: Transports,
        provider: &'static CryptoProvider,
        tls_provider: TlsProvider,
    ) -> Outbound<R> {
        Outbound {
            quic: QuicPool::new(local.domain.clone()),
            tls: TlsPool::new(local.domain.clone()),
            store,
            local,
            routes,
            policy,
            transports,
            provider,
            tls_provider,
            status_retention_secs: DEFAULT_STATUS_RETENTION_SECS,
            wake: None,
        }
    }

    /// Keeps the delivery status of completed entries for `secs` seconds after their last
    /// change (default [`DEFAULT_STATUS_RETENTION_SECS`]); older ones are pruned every interval
    /// ([`Outbound::run`]) and at the start of [`Outbound::run_once`].
    #[must_use]
    pub fn with_status_retention(mut self, secs: u64) -> Outbound<R> {
        self.status_retention_secs = secs;
        self
    }

    /// [`Outbound::run`] also looks for due entries as soon as `wake` is notified (a
    /// submission), not only every interval.
    pub fn with_wake(mut self, wake: Arc<tokio::sync::Notify>) -> Outbound<R> {
        self.wake = Some(wake);
        self
    }

    /// One pass at time `now`: prunes old delivery statuses, leases the due entries (up to
    /// the policy's batch) and tries each once, recording each outcome in the entry's status
    /// (`spec/dmtp.md` §11). [`Outbound::run`] is the worker `dimed` runs: it does not go by
    /// passes.
    ///
    /// # Errors
    /// [`StoreError`] when the queue cannot be read or updated.
    pub async fn run_once(
        &self,
        now: Timestamp,
        rng: &mut (dyn CryptoRngCore + Send),
    ) -> Result<Vec<Outcome>, StoreError> {
        self.drive(rng, Some(now), None, std::pin::pin!(std::future::pending())).await
    }

    /// Prunes the delivery statuses older than the retention, and closes the TLS connections
    /// idle past their time.
    fn housekeeping(&self, now: Timestamp) {
        // The store's writes are durable commits: each runs in place (`crate::in_place`), so
        // the worker's other tasks (the destination's streams, in `dimed`) go on meanwhile.
        let before = Timestamp(now.0.saturating_sub(self.status_retention_secs));
        match in_place(|| self.store.prune_delivery_statuses(before)) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "old delivery statuses pruned"),
            Err(e) => tracing::warn!(error = %e, "delivery status pruning failed"),
        }
        self.tls.close_idle();
    }

    /// Leases up to `max` due entries as attempts. An entry that does not read fails
    /// here (its outcome is the second part). The attempts to one destination share one route
    /// lookup, made by the first of them to start.
    fn lease_attempts(
        &self,
        rng: &mut (dyn CryptoRngCore + Send),
        now: Timestamp,
        max: usize,
    ) -> Result<(Vec<Attempt>, Vec<Outcome>), StoreError> {
        let leased = in_place(|| self.store.lease(now, self.policy.lease_secs, max))?;
        let mut failed = Vec::new();
        let mut routes: HashMap<Domain, Arc<OnceCell<Result<Route, RouteError>>>> = HashMap::new();
        let mut attempts = Vec::with_capacity(leased.len());
        for l in leased {
            let mut e = l.entry;
            if e.transport != Transport::Dmtp {
                continue;
            }
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
    async fn attempt(&self, a: Attempt) -> (Attempt, Result<TransactionId, SendError>) {
        let route = a.route.get_or_init(|| self.routes.route(&a.destination)).await;
        let result = match route {
            Ok(route) => self.send(&a.destination, route, &a.payload.envelope).await,
            Err(RouteError::Temporary(r)) => Err(SendError::Temporary((*r).into())),
            Err(RouteError::Permanent(r)) => Err(SendError::Permanent((*r).into())),
        };
        (a, result)
    }

    /// Records the outcomes of attempts that ended: failures here, in place, each with its
    /// bounce; deliveries and deferrals together, in the transaction the second part runs on
    /// the blocking pool ([`Outbound::settle`]). The first part is the outcomes recorded.
    fn record(
        &self,
        rng: &mut (dyn CryptoRngCore + Send),
        ended: Vec<(Attempt, Result<TransactionId, SendError>)>,
        now: Timestamp,
    ) -> Result<(Vec<Outcome>, Option<Recording>), StoreError> {
        let batch = in_place(|| self.classify(rng, ended, now))?;
        if batch.settle.is_empty() {
            return Ok((batch.outcomes, None));
        }
        Ok((Vec::new(), Some(Box::pin(self.settle(batch, rng, now)))))
    }

    /// Records `batch`'s deliveries and deferrals in one transaction on the blocking pool
    /// ([`Store::settle_all`]), then logs each; resolves to the batch's outcomes.
    fn settle(
        &self,
        batch: Classified,
        rng: &mut (dyn CryptoRngCore + Send),
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Outcome>, StoreError>> + use<R> {
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
                .map_err(|e| StoreError::Backend(format!("recording outcomes stopped: {e}")))??;
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
        ended: Vec<(Attempt, Result<TransactionId, SendError>)>,
        now: Timestamp,
    ) -> Result<Classified, StoreError> {
        let mut outcomes = Vec::with_capacity(ended.len());
        // (index in `outcomes`, destination) of each entry in `settle`.
        let mut settled = Vec::new();
        let mut settle = Vec::new();
        for (a, result) in ended {
            let (e, destination) = (&a.e, &a.destination);
            let (queued, envelope) = (a.payload.queued, a.payload.envelope.bytes());
            let (outcome, settlement) = match result {
                Ok(txid) => {
                    let s = Settlement::Delivered { txid: txid.as_str().to_owned() };
                    (Outcome::Delivered { id: e.id, txid }, Some(s))
                }
                Err(SendError::Permanent(reason)) => {
                    (self.fail(rng, e, destination, queued, envelope, reason, now)?, None)
                }
                Err(SendError::Temporary(reason)) => {
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
    ) -> Result<Outcome, StoreError> {
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
                    Err(
                        err @ (StoreError::Backend(_)
                        | StoreError::Closed
                        | StoreError::NoSuchQueueEntry),
                    ) => return Err(err),
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

    async fn send(
        &self,
        destination: &Domain,
        route: &Route,
        envelope: &Hashed,
    ) -> Result<TransactionId, SendError> {
        let msg = Outgoing {
            origin: self.local.domain.clone(),
            origin_fingerprint: self.local.org_fingerprint,
            destination: destination.clone(),
            destination_fingerprint: route.destination_fingerprint,
            body: envelope.clone(),
        };
        // One TLS configuration for every address of the route.
        let tls = Arc::new(
            dime_net::client_tls_config(
                Arc::clone(&self.tls_provider),
                Arc::clone(&route.verifier),
            )
            .map_err(|e| SendError::Temporary(e.to_string()))?,
        );
        // (Without QUIC no connection is live.)
        let addrs = attempt_order(&route.targets, |a| self.quic.is_live(&(destination.clone(), a)));
        let mut last = SendError::Temporary("no address answered".into());
        for (t, addr) in addrs {
            match self.try_addr(destination, &tls, t, addr, &msg).await {
                Ok(id) => return Ok(id),
                Err(SendError::Permanent(r)) => return Err(SendError::Permanent(r)),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// One address: QUIC (a live pooled connection, else a new one), then TLS over TCP (an
    /// idle pooled connection, else a new one) when QUIC failed without a reply. A reply is
    /// the server's answer on either transport.
    async fn try_addr(
        &self,
        destination: &Domain,
        tls: &Arc<rustls::ClientConfig>,
        target: &Target,
        addr: SocketAddr,
        msg: &Outgoing,
    ) -> Result<TransactionId, SendError> {
        let mut last = SendError::Temporary("no transport tried".into());
        if self.transports != Transports::TlsOnly {
            let key = (destination.clone(), addr);
            let sent = self
                .quic
                .run(&key, addr, &target.server_name, tls, |c| {
                    let msg = msg.clone();
                    async move { c.send(msg).await }
                })
                .await;
            match sent {
                Ok(id) => return Ok(id),
                Err(e @ NetError::Refused { .. }) => return Err(classify(e)),
                Err(e) => {
                    tracing::debug!(destination = %destination, error = %e, "quic failed");
                    last = classify(e);
                }
            }
        }
        if self.transports != Transports::QuicOnly {
            let key = (destination.clone(), addr);
            return self
                .tls
                .send(&key, addr, &target.server_name, tls, msg)
                .await
                .map_err(classify);
        }
        Err(last)
    }

    /// The worker: keeps up to `in_flight` attempts under way until `shutdown` resolves. It
    /// leases a batch of due entries when fewer than `in_flight` wait to start and entries may
    /// be due: at start, every `interval`, after a [`Outbound::with_wake`] notification, and
    /// after a lease that was full (a backlog drains at the worker's pace). An attempt does not
    /// wait for others that started before it (one slow destination holds back no other).
    /// Every `interval` it also prunes old statuses and closes idle TLS connections. At
    /// `shutdown` it starts nothing more, lets the attempts under way end and records them,
    /// and hands back the entries it leased and did not try (due again at once). It logs the
    /// store's errors and goes on.
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
    ) -> Result<Vec<Outcome>, StoreError> {
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
        let mut waiting: VecDeque<Attempt> = VecDeque::new();
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

/// The order in which a route's addresses are tried: every address of every host, in the
/// route's order, except that those with a live QUIC connection (`live`) come first.
fn attempt_order(
    targets: &[Target],
    live: impl Fn(SocketAddr) -> bool,
) -> Vec<(&Target, SocketAddr)> {
    let mut addrs: Vec<(&Target, SocketAddr)> =
        targets.iter().flat_map(|t| t.addrs.iter().map(move |a| (t, *a))).collect();
    addrs.sort_by_cached_key(|(_, a)| !live(*a));
    addrs
}

/// A transaction of outcomes under way ([`Outbound::settle`]).
type Recording = std::pin::Pin<Box<dyn Future<Output = Result<Vec<Outcome>, StoreError>> + Send>>;

/// Outcomes of attempts that ended, the failures among them recorded.
struct Classified {
    outcomes: Vec<Outcome>,
    /// (index in `outcomes`, destination) of each entry in `settle`.
    settled: Vec<(usize, Domain)>,
    /// The deliveries and deferrals to record.
    settle: Vec<(QueueId, Settlement)>,
}

/// Logs an outcome once recorded.
fn log_outcome(destination: &Domain, outcome: &Outcome) {
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
    use dime_core::crypto::default_provider;
    use dime_resolver::{DeliveryHost, DnssecProof};
    use dime_testkit::FixedDraws;

    #[tokio::test]
    async fn only_hosts_with_a_trustworthy_proof_and_an_address_are_targets() {
        use dime_resolver::HostSource;
        use dime_signet::record::Host;
        let host = |name: &str, port, proof, addresses: &[&str]| {
            DeliveryHost::new(
                Host { name: name.parse().unwrap(), port },
                HostSource::Dx,
                addresses.iter().map(|a| a.parse().unwrap()).collect(),
                proof,
            )
        };
        let hosts = [
            host("secure.test", None, DnssecProof::Secure, &["192.0.2.1", "2001:db8::1"]),
            host("insecure.test", Some(2600), DnssecProof::Insecure, &["192.0.2.2"]),
            host("bogus.test", None, DnssecProof::Bogus, &["192.0.2.3"]),
            host("unknown.test", None, DnssecProof::Indeterminate, &["192.0.2.4"]),
            host("empty.test", None, DnssecProof::Secure, &[]),
        ];
        let keys = dime_signet::OrgKeys::generate(&mut dime_testkit::seeded_rng(3));
        let record = AuthenticatedRecord {
            record: Arc::new(dime_signet::record::Record::new(vec![keys.pok(default_provider())])),
            published_by: "mail.test".parse().unwrap(),
            proof: DnssecProof::Secure,
            lifetime_secs: 300,
        };
        let domain =
            AuthenticatedDomain::with_hosts("mail.test".parse().unwrap(), record, hosts.to_vec());
        let got: Vec<(String, Vec<SocketAddr>)> =
            delivery_targets(&domain).await.into_iter().map(|t| (t.server_name, t.addrs)).collect();
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            got,
            [
                ("secure.test".to_owned(), vec![addr("192.0.2.1:26"), addr("[2001:db8::1]:26")]),
                ("insecure.test".to_owned(), vec![addr("192.0.2.2:2600")]),
            ]
        );
    }

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
    fn addresses_are_tried_in_route_order_with_live_quic_connections_first() {
        let a = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let targets = [
            Target { server_name: "mx1.b.test".into(), addrs: vec![a(1), a(2)] },
            Target { server_name: "mx2.b.test".into(), addrs: vec![] },
            Target { server_name: "mx3.b.test".into(), addrs: vec![a(3), a(4)] },
        ];
        let order = |live: &[u16]| -> Vec<(String, u16)> {
            attempt_order(&targets, |addr| live.contains(&addr.port()))
                .into_iter()
                .map(|(t, addr)| (t.server_name.clone(), addr.port()))
                .collect()
        };
        let named = |v: &[(&str, u16)]| -> Vec<(String, u16)> {
            v.iter().map(|(n, p)| (format!("{n}.b.test"), *p)).collect()
        };
        let in_order = named(&[("mx1", 1), ("mx1", 2), ("mx3", 3), ("mx3", 4)]);
        assert_eq!(order(&[]), in_order);
        assert_eq!(order(&[1, 2, 3, 4]), in_order, "a stable order among the live");
        assert_eq!(order(&[4]), named(&[("mx3", 4), ("mx1", 1), ("mx1", 2), ("mx3", 3)]));
        assert_eq!(order(&[2, 3]), named(&[("mx1", 2), ("mx3", 3), ("mx1", 1), ("mx3", 4)]));
    }

    #[test]
    fn the_defaults_are_the_specs() {
        // spec/dmtp.md §11.1, §11.2, §11.4, in seconds.
        assert_eq!(DEFAULT_STATUS_RETENTION_SECS, 2_592_000);
        let d = RetryPolicy::default();
        assert_eq!((d.base_secs, d.max_backoff_secs, d.max_lifetime_secs), (60, 21_600, 432_000));
        assert_eq!((d.lease_secs, d.batch, d.in_flight), (300, 64, 8));
        assert_eq!(DMTP_PORT, 26);
    }
}
