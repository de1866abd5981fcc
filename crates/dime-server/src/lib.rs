//! `dime-server`: the server roles of `dimed` (`spec/dmtp.md`), wiring the `dime-dmtp`
//! machines (through `dime-net`'s drivers) to the store (`dime-store`) and the key resolver
//! (`dime-resolver`).
//!
//! What it is:
//! - [`Destination`]: the [`dime_net::Handler`] of a destination server. MAIL's origin is
//!   authenticated through [`OriginKeys`] (the [`dime_resolver::KeyResolver`]); a body is
//!   opened as the destination with our org key, its origin signature verified against the
//!   origin's org signet, the recipient found, and the sealed envelope stored durably before
//!   the 250. It also answers SGNT, VRFY and HIST for our domain and users.
//! - [`origin`]: the origin's submission. [`origin::submit`] checks an author's envelope, adds
//!   the origin signature and queues it durably.
//! - [`outbound`]: the scheduler of each transport's queue entries. [`outbound::Outbound`]
//!   leases its transport's due entries and completes, reschedules (exponential backoff with
//!   jitter, until a maximum lifetime) or fails and bounces each; what a transport does is a
//!   [`outbound::Deliver`]: [`outbound::dmtp::Dmtp`] resolves the destination
//!   ([`outbound::dmtp::Routes`]) and connects (QUIC first, TLS over TCP as the fallback).
//! - [`LocalDomain`]: our domain's org keys and org signet.
//!
//! What it is not: a protocol or a store. Logs (tracing) carry domains, transaction ids and
//! codes; never a secret, a local part, a subject or a body.

pub mod admin;
mod bounce;
pub mod config;
pub mod daemon;
mod destination;
pub mod dmap;
mod lines;
pub mod metrics;
pub mod origin;
pub mod outbound;
pub mod pins;
pub mod service;
pub mod setup;
pub mod signets;
pub mod submission;

pub use bounce::rfc5322_date;
pub use destination::{Destination, OriginKeys, StaticOrigins};
pub use lines::{
    LOCAL_IDLE_TIMEOUT, LOCAL_LINE_BUDGET, LOCAL_REQUEST_TIMEOUT, LOCAL_SESSION_IDLE_TIMEOUT,
    LOCAL_SHUTDOWN_GRACE, LOCAL_WRITE_TIMEOUT, LocalLimits, MAX_LOCAL_CONNECTIONS,
};

use dime_core::crypto::CryptoProvider;
use dime_core::{Domain, Fingerprint};
use dime_envelope::ActorSecret;
use dime_signet::{OrgKeys, Signet};
use dime_store::Timestamp;

/// Errors setting up a server role.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The org keys cannot open envelopes (not a v2 X25519 key set).
    #[error("org keys have no x25519 encryption key")]
    OrgKeys,
    /// The org signet has no fingerprint (it lacks its signatures).
    #[error("org signet has no fingerprint")]
    OrgSignet,
}

/// Our domain: its org keys (secret) and its org signet.
pub struct LocalDomain {
    /// The domain.
    pub domain: Domain,
    /// The org signet we publish.
    pub org_signet: Signet,
    /// Its fingerprint as MAIL and RCPT name it ([`Signet::naming_fingerprint`]).
    pub org_fingerprint: Fingerprint,
    keys: OrgKeys,
    secret: ActorSecret,
}

impl std::fmt::Debug for LocalDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalDomain")
            .field("domain", &self.domain)
            .field("org_fingerprint", &self.org_fingerprint.to_string())
            .finish_non_exhaustive()
    }
}

impl LocalDomain {
    /// Our domain from its org `keys` and `org_signet`.
    ///
    /// # Errors
    /// [`ServerError`] when the keys cannot open envelopes or the signet has no fingerprint.
    pub fn new(
        p: &CryptoProvider,
        domain: Domain,
        keys: OrgKeys,
        org_signet: Signet,
    ) -> Result<LocalDomain, ServerError> {
        let secret = ActorSecret::from_org_keys(p, &keys).map_err(|_| ServerError::OrgKeys)?;
        let org_fingerprint = org_signet.naming_fingerprint(p).ok_or(ServerError::OrgSignet)?;
        Ok(LocalDomain { domain, org_signet, org_fingerprint, keys, secret })
    }

    /// The org keys (the origin signs with the POK).
    pub fn keys(&self) -> &OrgKeys {
        &self.keys
    }
}

/// Runs `f`, blocking work such as a durable store write, from async code without stalling
/// the other tasks of the worker it runs on: on a multi-threaded runtime through
/// [`tokio::task::block_in_place`] (the worker hands its other tasks to another thread
/// meanwhile); on a current-thread runtime, or outside a runtime, directly.
pub(crate) fn in_place<T>(f: impl FnOnce() -> T) -> T {
    if multi_threaded() { tokio::task::block_in_place(f) } else { f() }
}

/// Whether this code runs on a multi-threaded tokio runtime, where [`in_place`] hands the
/// worker's other tasks to another thread (elsewhere it cannot).
pub(crate) fn multi_threaded() -> bool {
    use tokio::runtime::{Handle, RuntimeFlavor};
    Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread)
}

/// The wall clock as a store [`Timestamp`] (seconds since the Unix epoch).
pub fn now() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn in_place_lets_the_workers_other_tasks_run() {
        let ticks = Arc::new(AtomicU64::new(0));
        let t = Arc::clone(&ticks);
        let ticker = tokio::spawn(async move {
            loop {
                t.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        while ticks.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // On the only worker: called directly, this would hold the ticker for the whole wait.
        let t = Arc::clone(&ticks);
        let (before, after) = tokio::spawn(async move {
            in_place(|| {
                let before = t.load(Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(200));
                (before, t.load(Ordering::SeqCst))
            })
        })
        .await
        .unwrap();
        ticker.abort();
        assert!(after > before, "the ticker stood still: {before} then {after}");
    }

    #[tokio::test]
    async fn in_place_runs_directly_on_a_current_thread_runtime() {
        assert_eq!(in_place(|| 7), 7);
        assert_eq!(in_place(|| std::thread::current().id()), std::thread::current().id());
    }
}
