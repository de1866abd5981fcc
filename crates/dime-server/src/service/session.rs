//! Sessions (`spec/dimed.md` §4.1): a login unwraps the user's keys once (Argon2id once); the
//! session keeps them until it is idle longer than the store's idle timeout, older than
//! [`SESSION_MAX_SECS`], logged out, or dropped, and zeroizes them on each of these.

use super::{Directory, MailService, blocking};
use dime_core::crypto::Ed25519PublicKey;
use dime_core::{Domain, Mailbox, Secret};
use dime_store::{AccountError, AccountId, Accounts, Timestamp};
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
    /// Signing keys of the authors and origins whose mail this session verified.
    pub(super) author_keys: HashMap<Mailbox, Ed25519PublicKey>,
    pub(super) origin_keys: HashMap<Domain, Vec<Ed25519PublicKey>>,
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
    /// Logs `user` in with `password` at `now` (Argon2id, off the async workers).
    ///
    /// # Errors
    /// [`LoginError::Failed`] for a wrong password, an unknown user or a deleted account alike.
    pub async fn login(
        &self,
        user: &Mailbox,
        password: Password,
        now: Timestamp,
    ) -> Result<UserSession, LoginError> {
        let store = Arc::clone(&self.store);
        let address = user.clone();
        let keys = blocking(move || store.login(&address, password.expose(), now)).await;
        let keys = keys.map_err(|e| match e {
            AccountError::LoginFailed | AccountError::UnknownAccount | AccountError::Shredded => {
                LoginError::Failed
            }
            e => LoginError::Store(e),
        })?;
        Ok(UserSession {
            keys,
            started: now,
            max_secs: self.session_max_secs,
            author_keys: HashMap::new(),
            origin_keys: HashMap::new(),
        })
    }
}
