//! The mail service: one typed, protocol-neutral service under every front end
//! (`spec/dimed.md` §4 today; DMAP and the SMTP bridge next). A front end parses its protocol,
//! calls the service and maps the service's errors to its own codes; it seals, opens, lists and
//! queues nothing itself.
//!
//! - [`session`]: log in once (Argon2id once), keep the unlocked keys with idle and absolute
//!   expiry and explicit logout, zeroized on every exit path.
//! - [`throttle`]: the logins of every front end, throttled in one place: bounded password
//!   checks at once (each with a reused Argon2id memory), failure delays per account and per
//!   source, and an audit line per failure.
//! - [`compose`]: seal as the session's user, origin-signed at once.
//! - [`mailbox`]: list (from per-message summaries once verified), read (opened with the
//!   session's keys, verified with signer keys cached for the session), mailboxes, flags,
//!   moves and expunges.
//! - [`outbox`]: queue an origin-signed envelope (the queue payload format) and show its
//!   delivery status to its author.
//!
//! Every operation that uses a session takes it `&mut` and the current time: the session is
//! bound to one connection (or token) and never shared across users. Blocking work (Argon2id,
//! durable store writes) runs off the async workers, in one of two ways, by one rule: work
//! that owns what it needs (a login's Argon2id, sealing a draft, queueing) moves to the
//! blocking pool (`blocking`); work that borrows the session's unlocked keys (opening,
//! listing, flags) runs where it is, with the worker's other tasks handed to another thread
//! (`crate::in_place`), so that the keys never leave the session that holds them.

pub mod access;
pub mod changes;
pub mod compose;
pub mod mailbox;
pub mod outbox;
pub mod session;
pub mod throttle;

use crate::LocalDomain;
use dime_core::crypto::CryptoProvider;
use dime_core::{Domain, Fingerprint, Mailbox};
use dime_resolver::DiscoveryError;
use dime_signet::Signet;
use dime_store::Store;
use std::future::Future;
use std::sync::Arc;

pub use access::{AppendError, Rendered};
pub use changes::Changes;
pub use compose::{ComposeError, Composed, Draft};
pub use mailbox::{
    ExportError, Listed, MailboxError, Provenance, ReadError, ReadMessage, Verification,
};
pub use outbox::{SendError, StatusError, SubmitError};
pub use session::{LoginError, Password, SessionError, UserSession};
pub use throttle::{AccountTag, LoginPolicy, LoginSource};

/// Authenticated keys of other domains (discovery, `spec/discovery.md`).
pub trait Directory: Send + Sync + 'static {
    /// The signet of `user` (of another domain) and its organisation's, authenticated.
    fn user_signets(
        &self,
        user: &Mailbox,
    ) -> impl Future<Output = Result<(Signet, Signet), DiscoveryError>> + Send;

    /// The org signet of `domain`, authenticated.
    fn org_signet(
        &self,
        domain: &Domain,
    ) -> impl Future<Output = Result<Signet, DiscoveryError>> + Send;

    /// The signets of `user` after the one whose crypto fingerprint is `since`, oldest first
    /// (the domain's HIST, `spec/dmtp.md` §6.7), each authenticated as a user signet of its
    /// organisation: the chain a reader walks from a signet it recorded
    /// (`spec/envelope.md` §7.6).
    fn user_history(
        &self,
        user: &Mailbox,
        since: &Fingerprint,
    ) -> impl Future<Output = Result<Vec<Signet>, DiscoveryError>> + Send;
}

impl Directory for crate::daemon::Resolver {
    async fn user_signets(&self, user: &Mailbox) -> Result<(Signet, Signet), DiscoveryError> {
        let k = self.user_key(user).await?;
        Ok((k.user.signet, k.org.org.signet))
    }

    async fn org_signet(&self, domain: &Domain) -> Result<Signet, DiscoveryError> {
        Ok(self.org_key(domain).await?.org.signet)
    }

    async fn user_history(
        &self,
        user: &Mailbox,
        since: &Fingerprint,
    ) -> Result<Vec<Signet>, DiscoveryError> {
        dime_resolver::KeyResolver::user_history(self, user, since).await
    }
}

/// The mail service of one domain.
pub struct MailService<D> {
    store: Arc<Store>,
    local: Arc<LocalDomain>,
    directory: Arc<D>,
    provider: &'static CryptoProvider,
    /// Notified after each queued message: the outbound worker looks for due entries at once.
    wake: Option<Arc<tokio::sync::Notify>>,
    /// A session's longest life, seconds, however active ([`session::SESSION_MAX_SECS`]).
    session_max_secs: u64,
    /// Login slots and failure delays, shared by every front end.
    logins: Arc<throttle::LoginThrottle>,
    /// Change notices per account, for IDLE.
    changes: Arc<Changes>,
}

impl<D: Directory> MailService<D> {
    /// The service of `local` over `store`, with `directory` for other domains' keys.
    pub fn new(
        store: Arc<Store>,
        local: Arc<LocalDomain>,
        directory: Arc<D>,
        provider: &'static CryptoProvider,
    ) -> MailService<D> {
        MailService {
            store,
            local,
            directory,
            provider,
            wake: None,
            session_max_secs: session::SESSION_MAX_SECS,
            logins: Arc::new(throttle::LoginThrottle::new(LoginPolicy::default())),
            changes: Arc::new(Changes::default()),
        }
    }

    /// The change notices of every account (give them to the DMTP destination too).
    pub fn changes(&self) -> &Arc<Changes> {
        &self.changes
    }

    /// Shares `changes` (one for the whole server).
    #[must_use]
    pub fn with_changes(mut self, changes: Arc<Changes>) -> MailService<D> {
        self.changes = changes;
        self
    }

    /// Notifies `wake` after each queued message.
    #[must_use]
    pub fn with_wake(mut self, wake: Arc<tokio::sync::Notify>) -> MailService<D> {
        self.wake = Some(wake);
        self
    }

    /// Sessions end `secs` seconds after their login, however active (default
    /// [`session::SESSION_MAX_SECS`]).
    #[must_use]
    pub fn with_session_max_secs(mut self, secs: u64) -> MailService<D> {
        self.session_max_secs = secs;
        self
    }

    /// Throttles logins by `policy` (default [`LoginPolicy::default`]).
    #[must_use]
    pub fn with_login_policy(mut self, policy: LoginPolicy) -> MailService<D> {
        self.logins = Arc::new(throttle::LoginThrottle::new(policy));
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Our domain.
    pub fn local(&self) -> &Arc<LocalDomain> {
        &self.local
    }
}

/// Runs blocking work (Argon2id, a durable store write) off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        // The closure panicked (a bug): let the caller's task see it.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
