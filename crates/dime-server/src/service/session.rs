//! Sessions (`spec/dimed.md` §4.1): a login unwraps the user's keys once (Argon2id once); the
//! session keeps them until it is idle longer than the store's idle timeout, older than
//! [`SESSION_MAX_SECS`], logged out, or dropped, and zeroizes them on each of these.
//!
//! A login goes through the service's [`throttle`](super::throttle) (`spec/dimed.md`, Logins):
//! refused while its account or source is in a failure delay, then a slot for the password
//! check, whose failure is recorded and logged.

use super::throttle::{AccountTag, FailureClass, LoginSource, Refusal};
use super::{Directory, MailService, blocking};
use dime_core::{Domain, Mailbox, Secret};
use dime_store::{AccountError, AccountId, Timestamp};
use std::collections::HashMap;
use std::sync::Arc;

/// A session's longest life: 12 hours after its login, however active (`spec/dimed.md` §4.1).
pub const SESSION_MAX_SECS: u64 = 12 * 3600;

/// A password as a front end received it: zeroized when dropped, never shown by `Debug`.
pub struct Password(Secret<Vec<u8>>);

impl Password {
    /// Wraps `bytes`.
    pub fn new(bytes: Vec<u8>) -> Password {
        Password(Secret::new(bytes))
    }

    fn expose(&self) -> &[u8] {
        self.0.expose()
    }
}

impl From<String> for Password {
    fn from(s: String) -> Password {
        Password::new(s.into_bytes())
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl<'de> serde::Deserialize<'de> for Password {
    fn deserialize<De: serde::Deserializer<'de>>(d: De) -> Result<Password, De::Error> {
        String::deserialize(d).map(Password::from)
    }
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// A wrong password, an unknown user or a deleted account: the same answer for each.
    #[error("login failed")]
    Failed,
    /// The account or the source failed a login lately: no password is checked for it until
    /// the delay has passed (`spec/dimed.md`, Logins).
    #[error("too many failed logins: retry in {retry_after_secs} s")]
    Delayed {
        /// Seconds until a login is checked again.
        retry_after_secs: u64,
    },
    /// Every password-check slot stayed taken for the queue deadline: the password was not
    /// checked (`spec/dimed.md`, Logins).
    #[error("server busy: too many logins at once, retry later")]
    Busy,
    /// The store failed.
    #[error("store: {0}")]
    Store(AccountError),
}

/// Why a session cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Idle too long, too old, or logged out: log in again.
    #[error("session expired")]
    Expired,
}

/// A logged-in user: the unlocked keys, bound to one connection (or token).
pub struct UserSession {
    keys: dime_store::Session,
    /// Its login time.
    started: Timestamp,
    max_secs: u64,
    /// The signets of the authors (each one's chain of custody, oldest first) and origins
    /// (the current org signet) whose mail this session verified afresh.
    pub(super) author_chains: HashMap<Mailbox, Vec<dime_signet::Signet>>,
    pub(super) origin_signets: HashMap<Domain, dime_signet::Signet>,
    /// The addresses this account had before it moved here (`spec/storage.md` §6.5).
    pub(super) former: Option<Vec<Mailbox>>,
}

impl std::fmt::Debug for UserSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSession").field("keys", &self.keys).finish_non_exhaustive()
    }
}

impl UserSession {
    /// The user's address.
    pub fn address(&self) -> &Mailbox {
        self.keys.address()
    }

    /// The user's account.
    pub fn account(&self) -> AccountId {
        self.keys.account()
    }

    /// Marks activity at `now` and gives the unlocked keys; fails (and zeroizes them for good)
    /// once the session is idle too long or older than its longest life.
    pub(super) fn keys(
        &mut self,
        now: Timestamp,
    ) -> Result<&mut dime_store::Session, SessionError> {
        if now.0.saturating_sub(self.started.0) > self.max_secs {
            self.keys.expire();
        }
        self.keys.touch(now).map_err(|_| SessionError::Expired)?;
        Ok(&mut self.keys)
    }

    /// The key that opens this session's messages for display (`spec/storage.md` §6.6), for
    /// one command: several threads render the parts of a FETCH with it at once.
    ///
    /// # Errors
    /// [`SessionError::Expired`].
    pub fn display_key(&mut self, now: Timestamp) -> Result<dime_store::DisplayKey, SessionError> {
        self.keys(now)?.display_key(now).map_err(|_| SessionError::Expired)
    }

    /// Checks that the session is still live at `now` (and marks activity).
    ///
    /// # Errors
    /// [`SessionError::Expired`].
    pub fn touch(&mut self, now: Timestamp) -> Result<(), SessionError> {
        self.keys(now).map(|_| ())
    }

    /// Ends the session: the keys are zeroized now.
    pub fn logout(mut self) {
        self.keys.expire();
    }
}

impl Drop for UserSession {
    fn drop(&mut self) {
        self.keys.expire();
    }
}

impl<D: Directory> MailService<D> {
    /// [`MailService::login_from`] with no source: throttled per account only. For tools in
    /// the process; a front end passes its peer.
    ///
    /// # Errors
    /// As [`MailService::login_from`].
    pub async fn login(
        &self,
        user: &Mailbox,
        password: Password,
        now: Timestamp,
    ) -> Result<UserSession, LoginError> {
        self.login_from(user, password, LoginSource::Unspecified, now).await
    }

    /// Logs `user` in with `password` from `source` at `now` (`spec/dimed.md`, Logins):
    /// refused while the account or the source is in a failure delay, else checked in a
    /// password-check slot (Argon2id in the slot's memory, off the async workers); a failure is
    /// recorded for both and logged.
    ///
    /// # Errors
    /// [`LoginError::Failed`] for a wrong password, an unknown user or a deleted account alike
    /// (each taking the same work); [`LoginError::Delayed`] within a failure delay;
    /// [`LoginError::Busy`] when no slot came free in time.
    pub async fn login_from(
        &self,
        user: &Mailbox,
        password: Password,
        source: LoginSource,
        now: Timestamp,
    ) -> Result<UserSession, LoginError> {
        let account = AccountTag(self.store.login_tag(user).map_err(LoginError::Store)?);
        let logins = &self.logins;
        let refused = |why: Refusal| {
            logins.refused(account, &source, why);
            match why {
                Refusal::Delayed(retry_after_secs) => LoginError::Delayed { retry_after_secs },
                Refusal::Busy => LoginError::Busy,
            }
        };
        logins.admit(account, &source, now).map_err(refused)?;
        let mut slot = logins.slot().await.map_err(refused)?;
        // A failure recorded while this login waited for its slot counts too.
        logins.admit(account, &source, now).map_err(refused)?;
        let store = Arc::clone(&self.store);
        let address = user.clone();
        let throttle = Arc::clone(logins);
        // The check runs to its end and its outcome is recorded and logged even if this future
        // is dropped meanwhile: a client that hangs up after sending a guess is throttled as one
        // that waits for the answer. The slot (its permit and memory) is given back after the
        // outcome is recorded, so that a login waiting for it sees that failure.
        let check = tokio::spawn(async move {
            let (keys, slot) = blocking(move || {
                let keys = store.login_in(&address, password.expose(), now, slot.memory());
                (keys, slot)
            })
            .await;
            let class = match &keys {
                Ok(_) => None,
                Err(AccountError::LoginFailed) => Some(FailureClass::Password),
                Err(AccountError::UnknownAccount) => Some(FailureClass::Unknown),
                Err(AccountError::Shredded) => Some(FailureClass::Deleted),
                Err(_) => None,
            };
            let outcome = match (class, keys) {
                (Some(class), _) => {
                    throttle.failed(account, &source, now, class);
                    Err(LoginError::Failed)
                }
                (None, Ok(keys)) => {
                    throttle.succeeded(account, &source);
                    Ok(keys)
                }
                (None, Err(e)) => Err(LoginError::Store(e)),
            };
            drop(slot);
            outcome
        });
        let keys = match check.await {
            Ok(outcome) => outcome?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down.
            Err(_) => return Err(LoginError::Busy),
        };
        Ok(UserSession {
            keys,
            started: now,
            max_secs: self.session_max_secs,
            author_chains: HashMap::new(),
            origin_signets: HashMap::new(),
            former: None,
        })
    }
}
