//! The destination role and the signet service (`spec/dmtp.md` §6): a [`dime_net::Handler`]
//! that authenticates the origin, opens the destination chunk with the org key, verifies the
//! origin's signature, stores the sealed envelope durably, and answers SGNT, VRFY and HIST for
//! its own domain and users.

use crate::{LocalDomain, now};
use dime_core::crypto::{CryptoProvider, Ed25519PublicKey};
use dime_core::{Domain, Fingerprint, Mailbox};
use dime_dmtp::limits::{CLOCK_SKEW_SECS, MAX_HISTORY_SIGNETS, REPLAY_WINDOW_SECS};
use dime_dmtp::{Delivery, Refusal, SignetName, TransactionId, VerifyAnswer};
use dime_envelope::{open_as_destination, origin_signing_keys};
use dime_net::Handler;
use dime_resolver::{DiscoveryError, KeyResolver, OrgKey, PinStore, SignetSource};
use dime_signet::{FingerprintKind, Signet};
use dime_store::{AccountError, Accounts, Deliveries, DeliveryError, Store};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where the destination finds an origin's message-signing keys, authenticated as the
/// fingerprint MAIL named: the [`KeyResolver`] in production, a [`StaticOrigins`] map in tests.
pub trait OriginKeys: Send + Sync + 'static {
    /// The message-signing keys of `origin`'s org signet whose fingerprint is `fingerprint`:
    /// its POK and its SOKs that may sign messages (`spec/envelope.md` §7.6).
    /// [`Refusal::OriginNotVerified`] when it is not that signet, [`Refusal::Temporary`] when
    /// DNS or the signet fetch failed in a way that may pass.
    fn origin_key(
        &self,
        origin: &Domain,
        fingerprint: &Fingerprint,
    ) -> impl Future<Output = Result<Vec<Ed25519PublicKey>, Refusal>> + Send;
}

impl<S, P> OriginKeys for KeyResolver<S, P>
where
    S: SignetSource + 'static,
    P: PinStore + 'static,
{
    async fn origin_key(
        &self,
        origin: &Domain,
        fingerprint: &Fingerprint,
    ) -> Result<Vec<Ed25519PublicKey>, Refusal> {
        origin_key_of(self.org_key(origin).await, fingerprint)
    }
}

/// What MAIL's origin check makes of the resolver's answer: the org signet's message-signing
/// keys (`spec/envelope.md` §7.6) when the authenticated signet is the one MAIL named; [`Refusal::OriginNotVerified`] when it is
/// another, or when discovery failed for good; [`Refusal::Temporary`] when it may pass later.
fn origin_key_of(
    found: Result<OrgKey, DiscoveryError>,
    fingerprint: &Fingerprint,
) -> Result<Vec<Ed25519PublicKey>, Refusal> {
    match found {
        Ok(k) if k.org.fingerprint == *fingerprint => {
            origin_signing_keys(&k.org.signet).map_err(|_| Refusal::OriginNotVerified)
        }
        Ok(_) => Err(Refusal::OriginNotVerified),
        Err(e) if e.is_temporary() => Err(Refusal::Temporary),
        Err(_) => Err(Refusal::OriginNotVerified),
    }
}

/// Origins known in advance (tests, closed federations): domain to (org signet fingerprint,
/// signing key).
#[derive(Debug, Default, Clone)]
pub struct StaticOrigins(pub HashMap<Domain, (Fingerprint, Ed25519PublicKey)>);

impl OriginKeys for StaticOrigins {
    async fn origin_key(
        &self,
        origin: &Domain,
        fingerprint: &Fingerprint,
    ) -> Result<Vec<Ed25519PublicKey>, Refusal> {
        match self.0.get(origin) {
            Some((fp, key)) if fp == fingerprint => Ok(vec![*key]),
            _ => Err(Refusal::OriginNotVerified),
        }
    }
}

/// The destination's [`Handler`]: our domain, our store, and where origin keys come from.
pub struct Destination<O> {
    local: Arc<LocalDomain>,
    store: Arc<Store>,
    origins: Arc<O>,
    provider: &'static CryptoProvider,
    /// Deliveries between their DATA and their reply (see [`run_blocking`]).
    delivering: AtomicUsize,
    /// Told of each stored message, so that the recipient's IDLE sessions see it.
    changes: Option<Arc<crate::service::Changes>>,
}

impl<O> std::fmt::Debug for Destination<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination").field("domain", &self.local.domain).finish_non_exhaustive()
    }
}

impl<O: OriginKeys> Destination<O> {
    /// A handler for `local`, storing into `store`, authenticating origins through `origins`.
    pub fn new(
        local: Arc<LocalDomain>,
        store: Arc<Store>,
        origins: Arc<O>,
        provider: &'static CryptoProvider,
    ) -> Destination<O> {
        Destination {
            local,
            store,
            origins,
            provider,
            delivering: AtomicUsize::new(0),
            changes: None,
        }
    }

    /// Tells `changes` of each stored message (the recipient's IDLE sessions wake).
    #[must_use]
    pub fn with_changes(mut self, changes: Arc<crate::service::Changes>) -> Destination<O> {
        self.changes = Some(changes);
        self
    }

    /// The current signet of `name` and its fingerprints (full, crypto), if served here.
    fn current(&self, name: &SignetName) -> Result<Signet, Refusal> {
        if name.domain != self.local.domain {
            return Err(Refusal::NotFound);
        }
        match &name.mailbox {
            None => Ok(self.local.org_signet.clone()),
            Some(m) => user_signet(&self.store, m),
        }
    }

    fn matches(&self, signet: &Signet, fp: &Fingerprint) -> bool {
        [FingerprintKind::Id, FingerprintKind::Full, FingerprintKind::Crypto]
            .into_iter()
            .any(|k| signet.fingerprint(self.provider, k).as_ref() == Some(fp))
    }
}

fn user_signet(store: &Store, mailbox: &Mailbox) -> Result<Signet, Refusal> {
    match store.signet(mailbox) {
        Ok((_, s)) => Ok(s),
        Err(AccountError::UnknownAccount) => Err(Refusal::NotFound),
        Err(e) => {
            tracing::warn!(error = %e, "signet lookup failed in the store");
            Err(Refusal::Temporary)
        }
    }
}

/// A transaction id for a stored message: 24 hex digits of a hash of where it landed (no
/// account id or address in clear).
fn transaction_id(p: &CryptoProvider, d: &dime_store::Delivered) -> Option<TransactionId> {
    let h = p.hash.sha512(&[
        b"dimed transaction id",
        &d.account.0,
        &d.mailbox.0.to_be_bytes(),
        &d.uid.0.to_be_bytes(),
    ]);
    TransactionId::new(&hex::encode(h.get(..12)?)).ok()
}

impl<O: OriginKeys> Handler for Destination<O> {
    /// The origin's message-signing keys, from its org signet as MAIL named it.
    type Origin = Vec<Ed25519PublicKey>;

    async fn verify_origin(
        &self,
        origin: Domain,
        fingerprint: Fingerprint,
    ) -> Result<Vec<Ed25519PublicKey>, Refusal> {
        let r = self.origins.origin_key(&origin, &fingerprint).await;
        if r.is_err() {
            crate::metrics::inbound(&r);
        }
        // At most a few lines per source and minute (`spec/dmtp.md` §8): a peer whose every
        // MAIL is refused does not fill the log.
        if let Err(e) = &r
            && dime_net::log_allowed()
        {
            tracing::info!(origin = %origin, refusal = %e, "mail refused");
        }
        r
    }

    async fn check_recipient(
        &self,
        destination: Domain,
        fingerprint: Fingerprint,
    ) -> Result<(), Refusal> {
        let r = if destination != self.local.domain {
            Err(Refusal::NotFound)
        } else if fingerprint != self.local.org_fingerprint {
            Err(Refusal::StaleFingerprint)
        } else {
            Ok(())
        };
        if r.is_err() {
            crate::metrics::inbound(&r);
        }
        r
    }

    async fn deliver(
        &self,
        d: Delivery,
        keys: &Vec<Ed25519PublicKey>,
    ) -> Result<TransactionId, Refusal> {
        let keys = keys.clone();
        let (local, store, p) = (Arc::clone(&self.local), Arc::clone(&self.store), self.provider);
        let origin = d.origin.clone();
        let changes = self.changes.clone();
        let r = run_blocking(&self.delivering, move || {
            let view = open_as_destination(p, &d.body[..], &local.secret)
                .and_then(|u| u.verify(p, &keys, &local.domain))
                .map_err(|_| Refusal::BadSignature)?;
            let now = now();
            // `spec/dmtp.md` §6.4.2: an envelope signed too long ago is a replay (or an origin
            // that kept it past any queue lifetime); one from too far ahead, an origin whose
            // clock is wrong, which may pass later.
            let signed_at = view.origin_signed_at().ok_or(Refusal::BadSignature)?;
            if signed_at.saturating_add(REPLAY_WINDOW_SECS) < now.0 {
                return Err(Refusal::Policy);
            }
            if signed_at > now.0.saturating_add(CLOCK_SKEW_SECS) {
                return Err(Refusal::Temporary);
            }
            // The address rules of `spec/envelope.md` §7.5: the origin signature verified for
            // our domain (rule 3), the destination chunk's origin is the transaction's (rule
            // 2), and the recipient is of our domain (rule 1).
            let view = view.view();
            if view.origin != d.origin {
                return Err(Refusal::BadSignature);
            }
            if view.recipient.domain() != &local.domain {
                return Err(Refusal::NotFound);
            }
            let delivered =
                store.deliver_hashed(&view.recipient, &d.body, now).map_err(|e| match e {
                    DeliveryError::UnknownAccount => Refusal::NotFound,
                    // The mailbox may have room later: the origin retries from its queue.
                    DeliveryError::OverQuota { .. } => {
                        tracing::info!("recipient over quota");
                        Refusal::Temporary
                    }
                    e => {
                        tracing::error!(error = %e, "store could not make a delivery durable");
                        Refusal::StoreFailed
                    }
                })?;
            if let Some(c) = &changes {
                c.changed(delivered.account);
            }
            transaction_id(p, &delivered).ok_or(Refusal::StoreFailed)
        })
        .await
        .unwrap_or(Err(Refusal::StoreFailed));
        crate::metrics::inbound(&r);
        match &r {
            Ok(id) => tracing::info!(origin = %origin, txid = %id, "message stored"),
            Err(e) if dime_net::log_allowed() => {
                tracing::info!(origin = %origin, refusal = %e, "message refused");
            }
            Err(_) => {}
        }
        r
    }

    async fn signet(&self, name: SignetName, pin: Option<Fingerprint>) -> Result<Vec<u8>, Refusal> {
        let s = self.current(&name)?;
        match pin {
            Some(fp) if !self.matches(&s, &fp) => Err(Refusal::NotFound),
            _ => Ok(s.to_bytes()),
        }
    }

    async fn verify(
        &self,
        name: SignetName,
        fingerprint: Fingerprint,
    ) -> Result<VerifyAnswer, Refusal> {
        let s = self.current(&name)?;
        if self.matches(&s, &fingerprint) {
            return Ok(VerifyAnswer::Current);
        }
        s.naming_fingerprint(self.provider).map(VerifyAnswer::Updated).ok_or(Refusal::NotFound)
    }

    async fn history(&self, name: SignetName, from: Fingerprint) -> Result<Vec<Vec<u8>>, Refusal> {
        // A user's chain of custody from the store's directory record (`spec/storage.md`
        // §6.5): the signets after `from`, oldest first, the newest MAX_HISTORY_SIGNETS; the
        // current one alone when `from` is not in it (the client then finds no chain). The
        // organisation keeps its current signet only.
        let chain = match (&name.mailbox, name.domain == self.local.domain) {
            (Some(m), true) => match self.store.directory(m) {
                Ok(d) => d.chain(),
                Err(AccountError::UnknownAccount) => return Err(Refusal::NotFound),
                Err(e) => {
                    tracing::warn!(error = %e, "signet history lookup failed in the store");
                    return Err(Refusal::Temporary);
                }
            },
            _ => vec![self.current(&name)?],
        };
        let after = match chain.iter().position(|s| self.matches(s, &from)) {
            Some(i) => chain.get(i + 1..).unwrap_or_default(),
            None => chain.get(chain.len().saturating_sub(1)..).unwrap_or_default(),
        };
        let newest = after.len().saturating_sub(MAX_HISTORY_SIGNETS);
        Ok(after.iter().skip(newest).map(Signet::to_bytes).collect())
    }
}

/// Counts one delivery in `delivering` while it lives.
struct Delivering<'a>(&'a AtomicUsize);

impl Drop for Delivering<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `f`, a delivery's blocking work (the crypto and the durable store write), from async
/// code, and gives its result, or `None` when it panicked. Alone (no other delivery under way
/// in `delivering`) on a multi-threaded runtime, it runs in place
/// ([`tokio::task::block_in_place`]), which spares it two thread switches, one to a blocking
/// thread and one back (about 65 µs at 1 in flight in the DMTP bench). Otherwise it runs on
/// the blocking pool: a worker blocked in place hands its other tasks to another thread, which
/// under many deliveries at once doubled the 99th percentile latency.
async fn run_blocking<T, F>(delivering: &AtomicUsize, f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let alone = delivering.fetch_add(1, Ordering::Relaxed) == 0;
    let _counted = Delivering(delivering);
    if alone && crate::multi_threaded() {
        crate::in_place(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok())
    } else {
        tokio::task::spawn_blocking(f).await.ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dime_resolver::signets::ValidOrg;
    use dime_resolver::{Decision, DeferReason, DnssecProof, Provenance, SignetError, SourceError};
    use dime_signet::record::Record;
    use dime_signet::{OrgKeys, Profile, SignetState, SokPermissions, create_org_signet};
    use std::thread::{ThreadId, current};
    use std::time::Duration;

    #[test]
    fn the_origin_key_is_the_named_signets_and_failures_keep_their_kind() {
        let p = dime_core::crypto::default_provider();
        let mut rng = dime_testkit::seeded_rng(5);
        let mut keys = OrgKeys::generate(&mut rng);
        // spec/envelope.md §7.6: a SOK that may sign messages is in the set, one that may
        // only sign user signets is not.
        keys.add_sok(&mut rng, SokPermissions::SIGNET);
        keys.add_sok(&mut rng, SokPermissions::MESSAGE);
        let domain: Domain = "a.test".parse().unwrap();
        let signet = create_org_signet(p, &keys, &domain, &Profile::new()).unwrap();
        let named = signet.naming_fingerprint(p).unwrap();
        let found = |fingerprint: Fingerprint| OrgKey {
            record: Arc::new(Record::new(vec![keys.pok(p)])),
            org: ValidOrg {
                signet: signet.clone(),
                state: SignetState::Full,
                pok: keys.pok(p),
                pok_index: 0,
                fingerprint,
            },
            provenance: Provenance {
                domain: domain.clone(),
                record_from: domain.clone(),
                record_proof: DnssecProof::Secure,
                ca_tls_required: false,
                pok_index: 0,
                org_fingerprint: fingerprint,
                user: None,
            },
        };
        let message_sok = p.signature.public_key(&keys.soks()[1].seed);
        assert_eq!(
            origin_key_of(Ok(found(named)), &named),
            Ok(vec![signet.signing_key().unwrap(), message_sok])
        );
        let other = Fingerprint([7; 64]);
        assert_eq!(origin_key_of(Ok(found(other)), &named), Err(Refusal::OriginNotVerified));
        let temporary = [
            DiscoveryError::NotUsable(Decision::Defer(DeferReason::Indeterminate)),
            DiscoveryError::Signet(SignetError::Source(SourceError::Unavailable("down".into()))),
        ];
        for e in temporary {
            assert_eq!(origin_key_of(Err(e), &named), Err(Refusal::Temporary));
        }
        let permanent = [
            DiscoveryError::NotUsable(Decision::NotDime { proof: DnssecProof::Secure }),
            DiscoveryError::Signet(SignetError::Source(SourceError::NotFound)),
        ];
        for e in permanent {
            assert_eq!(origin_key_of(Err(e), &named), Err(Refusal::OriginNotVerified));
        }
    }

    /// Runs `f` through [`run_blocking`] and tells whether it ran on the caller's thread.
    async fn on_own_thread<T: Send + 'static>(
        d: &AtomicUsize,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> (Option<T>, bool) {
        let caller = current().id();
        let ran: Arc<std::sync::Mutex<Option<ThreadId>>> = Arc::default();
        let r2 = Arc::clone(&ran);
        let out = run_blocking(d, move || {
            *r2.lock().unwrap() = Some(current().id());
            f()
        })
        .await;
        let same = *ran.lock().unwrap() == Some(caller);
        (out, same)
    }

    /// Deliveries at once: each runs, a panic comes back as `None`.
    async fn at_once(d: &Arc<AtomicUsize>, n: usize) {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let d = Arc::clone(d);
                tokio::spawn(async move {
                    run_blocking(&d, move || {
                        std::thread::sleep(Duration::from_millis(20));
                        assert!(i % 3 != 2, "a panicking delivery");
                        i
                    })
                    .await
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), (i % 3 != 2).then_some(i));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn alone_it_runs_in_place_and_at_once_on_the_pool() {
        let d = Arc::new(AtomicUsize::new(0));
        assert_eq!(on_own_thread(&d, || 5).await, (Some(5), true));
        let (out, same) = on_own_thread(&d, || -> u8 { panic!("a panicking delivery") }).await;
        assert_eq!((out, same), (None, true), "a panic in place is caught");
        // One under way: the next goes to the pool.
        d.fetch_add(1, Ordering::Relaxed);
        assert_eq!(on_own_thread(&d, || 6).await, (Some(6), false));
        d.fetch_sub(1, Ordering::Relaxed);
        at_once(&d, 8).await;
        assert_eq!(d.load(Ordering::Relaxed), 0, "every delivery is counted out");
    }

    #[tokio::test]
    async fn on_a_current_thread_runtime_it_runs_on_the_pool() {
        let d = Arc::new(AtomicUsize::new(0));
        assert_eq!(on_own_thread(&d, || 5).await, (Some(5), false));
        at_once(&d, 6).await;
        assert_eq!(d.load(Ordering::Relaxed), 0);
    }
}
