//! The facets' errors (`spec/storage.md` §1.1): one enum per facet, holding the refusals that
//! facet can give, plus [`BackendError`], what any implementation can meet below its rules.
//!
//! Inside this crate the redb implementation works with [`StoreError`], the low-level error of
//! opening a store and of the key-value [`crate::Backend`]; `From<StoreError>` sorts it into
//! each facet's error at the facet's boundary, and `From<facet error> for StoreError` goes back
//! (for a tool that reports any store failure the same way).

use crate::StoreError;
use dime_core::crypto::CryptoError;

/// What any facet can meet below its own rules: the storage failing, a stored item corrupt,
/// the store closing, a crypto primitive failing. A second backend reports its own failures
/// (its connection, its transactions) as [`BackendError::Failed`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The storage failed (I/O, database, connection).
    #[error("storage backend failed: {0}")]
    Failed(String),
    /// A stored item failed its checksum or did not decode: it has been quarantined.
    #[error("corrupt {what} detected and quarantined")]
    Corrupt {
        /// What was corrupt.
        what: &'static str,
    },
    /// The store is shutting down.
    #[error("store is closed")]
    Closed,
    /// A crypto operation failed.
    #[error("crypto: {0}")]
    Crypto(CryptoError),
}

/// The session has been idle longer than the idle timeout (or was ended): its keys are wiped
/// ([`crate::Session::touch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("session expired after its idle timeout")]
pub struct SessionExpired;

/// Errors of the [`crate::Accounts`] facet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// No account has that address.
    #[error("no such account")]
    UnknownAccount,
    /// An account with that address exists already.
    #[error("an account with that address exists already")]
    AccountExists,
    /// The password (or recovery secret) does not open the account key.
    #[error("login failed: wrong password or recovery secret")]
    LoginFailed,
    /// The account's shredding key is gone: the account was deleted.
    #[error("account keys are shredded")]
    Shredded,
    /// The session has been idle longer than the idle timeout.
    #[error("session expired after its idle timeout")]
    SessionExpired,
    /// Stored Argon2 parameters are outside the fixed bounds: refused before running.
    #[error("stored argon2 parameters refused: {0}")]
    HostileParams(CryptoError),
    /// A length (the password) is over its named limit.
    #[error("{what} exceeds its limit of {limit} octets")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit (a constant of this crate).
        limit: usize,
    },
    /// The account has no recovery of the kind asked for.
    #[error("account has no {0} recovery")]
    NoRecovery(&'static str),
    /// Creating or signing a signet failed.
    #[error("signet: {0}")]
    Signet(String),
    /// The keys are not v2 keys (X25519) this store can wrap, or no generation follows.
    #[error("only v2 (x25519) keys can be stored")]
    NotV2Keys,
    /// Below the facet's rules.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Errors of the [`crate::Mailboxes`] facet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    /// No such account.
    #[error("no such account")]
    UnknownAccount,
    /// The session has been idle longer than the idle timeout.
    #[error("session expired after its idle timeout")]
    SessionExpired,
    /// No such mailbox.
    #[error("no such mailbox")]
    NoSuchMailbox,
    /// No such message.
    #[error("no such message")]
    NoSuchMessage,
    /// The inbox cannot be deleted or renamed.
    #[error("the inbox cannot be deleted or renamed")]
    InboxIsFixed,
    /// Another mailbox of the account has that name (CREATE, RENAME; `spec/storage.md` §5).
    #[error("a mailbox with that name exists already")]
    MailboxExists,
    /// Another mailbox of the account has that special use (`spec/storage.md` §5.2).
    #[error("special use {role:?} belongs to mailbox {by:?} already")]
    SpecialUseTaken {
        /// The role asked for.
        role: crate::SpecialUse,
        /// The mailbox that has it.
        by: crate::MailboxId,
    },
    /// Appending this message would exceed the account's quota (as a delivery,
    /// [`DeliveryError::OverQuota`]).
    #[error("quota exceeded: {used} of {limit} octets used, message is {size}")]
    OverQuota {
        /// Octets in use.
        used: u64,
        /// The quota.
        limit: u64,
        /// The refused message's size.
        size: u64,
    },
    /// A length (a name, flags, a summary) is over its named limit.
    #[error("{what} exceeds its limit of {limit} octets")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit (a constant of this crate).
        limit: usize,
    },
    /// The session's keys are not v2 keys (X25519): nothing can be re-wrapped to them.
    #[error("only v2 (x25519) keys can be stored")]
    NotV2Keys,
    /// The message does not open with the session's keys: the class of
    /// `spec/envelope.md` §14 (framing, its rule named; or "does not authenticate", which
    /// is also what a message not sealed to this account gives).
    #[error("{0}")]
    Unopenable(dime_envelope::ErrorClass),
    /// Below the facet's rules.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Errors of the [`crate::Deliveries`] facet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// No account has the recipient's address.
    #[error("no such account")]
    UnknownAccount,
    /// Accepting this message would exceed the account's quota.
    #[error("quota exceeded: {used} of {limit} octets used, message is {size}")]
    OverQuota {
        /// Octets in use.
        used: u64,
        /// The quota.
        limit: u64,
        /// The refused message's size.
        size: u64,
    },
    /// The envelope is over [`crate::MAX_ENVELOPE_LEN`] (or a batch over its limit).
    #[error("{what} exceeds its limit of {limit} octets")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit (a constant of this crate).
        limit: usize,
    },
    /// Below the facet's rules (the delivery is not durable: it was not acknowledged).
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Errors of the [`crate::Queue`] facet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// No such outbound queue entry (or its lease was lost).
    #[error("no such queue entry")]
    NoSuchEntry,
    /// A length (a payload, a destination, a status text) is over its named limit.
    #[error("{what} exceeds its limit of {limit} octets")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit (a constant of this crate).
        limit: usize,
    },
    /// An attempt to deliver the entry is under way (its lease has not ended).
    #[error("an attempt to deliver it is under way: try again when it ends")]
    InFlight,
    /// The entry is not held (a release).
    #[error("the entry is not held")]
    NotHeld,
    /// The bounce could not be delivered to its author's inbox: nothing was written.
    #[error("bounce not delivered: {0}")]
    Bounce(DeliveryError),
    /// Below the facet's rules.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Errors of the [`crate::Pins`] facet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    /// The pin record is over [`crate::MAX_PIN_LEN`].
    #[error("{what} exceeds its limit of {limit} octets")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit (a constant of this crate).
        limit: usize,
    },
    /// Below the facet's rules (a pin that does not open is [`BackendError::Corrupt`]).
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Errors of the [`crate::Archive`] facet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// The archive is malformed or does not open with the password given.
    #[error("archive refused: {0}")]
    Refused(&'static str),
    /// The session has been idle longer than the idle timeout.
    #[error("session expired after its idle timeout")]
    SessionExpired,
    /// The session's account is gone.
    #[error("no such account")]
    UnknownAccount,
    /// The account's shredding key is gone: the account was deleted.
    #[error("account keys are shredded")]
    Shredded,
    /// An account with the archive's address (or id) exists already.
    #[error("an account with that address exists already")]
    AccountExists,
    /// The archive's Argon2 parameters are outside the fixed bounds: refused before running.
    #[error("archive argon2 parameters refused: {0}")]
    HostileParams(CryptoError),
    /// A length (the new password) is over its named limit.
    #[error("{what} exceeds its limit of {limit} octets")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit (a constant of this crate).
        limit: usize,
    },
    /// Below the facet's rules.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl From<StoreError> for BackendError {
    fn from(e: StoreError) -> BackendError {
        match e {
            StoreError::Backend(s) => BackendError::Failed(s),
            StoreError::Corrupt { what } => BackendError::Corrupt { what },
            StoreError::Closed => BackendError::Closed,
            StoreError::Crypto(c) => BackendError::Crypto(c),
            // A refusal outside the facet that met it: a fault of the implementation, reported
            // as a failure with what it was.
            other => BackendError::Failed(format!("unexpected: {other}")),
        }
    }
}

impl From<BackendError> for StoreError {
    fn from(e: BackendError) -> StoreError {
        match e {
            BackendError::Failed(s) => StoreError::Backend(s),
            BackendError::Corrupt { what } => StoreError::Corrupt { what },
            BackendError::Closed => StoreError::Closed,
            BackendError::Crypto(c) => StoreError::Crypto(c),
        }
    }
}

impl From<SessionExpired> for StoreError {
    fn from(_: SessionExpired) -> StoreError {
        StoreError::SessionExpired
    }
}

impl From<CryptoError> for BackendError {
    fn from(e: CryptoError) -> BackendError {
        BackendError::Crypto(e)
    }
}

/// `From<SessionExpired>` and `From<CryptoError>` (through [`BackendError`]) for facet errors
/// with a `SessionExpired` variant, and the way back to [`StoreError`].
macro_rules! common_conversions {
    ($err:ident, session) => {
        impl From<SessionExpired> for $err {
            fn from(_: SessionExpired) -> $err {
                $err::SessionExpired
            }
        }
        common_conversions!($err);
    };
    ($err:ident) => {
        impl From<CryptoError> for $err {
            fn from(e: CryptoError) -> $err {
                $err::Backend(BackendError::Crypto(e))
            }
        }
    };
}

common_conversions!(AccountError, session);
common_conversions!(MailboxError, session);
common_conversions!(ArchiveError, session);
common_conversions!(DeliveryError);
common_conversions!(QueueError);
common_conversions!(PinError);

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> AccountError {
        match e {
            StoreError::UnknownAccount => AccountError::UnknownAccount,
            StoreError::AccountExists => AccountError::AccountExists,
            StoreError::LoginFailed => AccountError::LoginFailed,
            StoreError::Shredded => AccountError::Shredded,
            StoreError::SessionExpired => AccountError::SessionExpired,
            StoreError::HostileParams(c) => AccountError::HostileParams(c),
            StoreError::TooLarge { what, limit } => AccountError::TooLarge { what, limit },
            StoreError::NoRecovery(kind) => AccountError::NoRecovery(kind),
            StoreError::Signet(s) => AccountError::Signet(s),
            StoreError::NotV2Keys => AccountError::NotV2Keys,
            other => AccountError::Backend(other.into()),
        }
    }
}

impl From<AccountError> for StoreError {
    fn from(e: AccountError) -> StoreError {
        match e {
            AccountError::UnknownAccount => StoreError::UnknownAccount,
            AccountError::AccountExists => StoreError::AccountExists,
            AccountError::LoginFailed => StoreError::LoginFailed,
            AccountError::Shredded => StoreError::Shredded,
            AccountError::SessionExpired => StoreError::SessionExpired,
            AccountError::HostileParams(c) => StoreError::HostileParams(c),
            AccountError::TooLarge { what, limit } => StoreError::TooLarge { what, limit },
            AccountError::NoRecovery(kind) => StoreError::NoRecovery(kind),
            AccountError::Signet(s) => StoreError::Signet(s),
            AccountError::NotV2Keys => StoreError::NotV2Keys,
            AccountError::Backend(b) => b.into(),
        }
    }
}

impl From<StoreError> for MailboxError {
    fn from(e: StoreError) -> MailboxError {
        match e {
            StoreError::UnknownAccount => MailboxError::UnknownAccount,
            StoreError::SessionExpired => MailboxError::SessionExpired,
            StoreError::NoSuchMailbox => MailboxError::NoSuchMailbox,
            StoreError::NoSuchMessage => MailboxError::NoSuchMessage,
            StoreError::InboxIsFixed => MailboxError::InboxIsFixed,
            StoreError::MailboxExists => MailboxError::MailboxExists,
            StoreError::SpecialUseTaken { role, by } => MailboxError::SpecialUseTaken { role, by },
            StoreError::OverQuota { used, limit, size } => {
                MailboxError::OverQuota { used, limit, size }
            }
            StoreError::TooLarge { what, limit } => MailboxError::TooLarge { what, limit },
            StoreError::NotV2Keys => MailboxError::NotV2Keys,
            StoreError::Unopenable(c) => MailboxError::Unopenable(c),
            other => MailboxError::Backend(other.into()),
        }
    }
}

impl From<MailboxError> for StoreError {
    fn from(e: MailboxError) -> StoreError {
        match e {
            MailboxError::UnknownAccount => StoreError::UnknownAccount,
            MailboxError::SessionExpired => StoreError::SessionExpired,
            MailboxError::NoSuchMailbox => StoreError::NoSuchMailbox,
            MailboxError::NoSuchMessage => StoreError::NoSuchMessage,
            MailboxError::InboxIsFixed => StoreError::InboxIsFixed,
            MailboxError::MailboxExists => StoreError::MailboxExists,
            MailboxError::SpecialUseTaken { role, by } => StoreError::SpecialUseTaken { role, by },
            MailboxError::OverQuota { used, limit, size } => {
                StoreError::OverQuota { used, limit, size }
            }
            MailboxError::TooLarge { what, limit } => StoreError::TooLarge { what, limit },
            MailboxError::NotV2Keys => StoreError::NotV2Keys,
            MailboxError::Unopenable(c) => StoreError::Unopenable(c),
            MailboxError::Backend(b) => b.into(),
        }
    }
}

impl From<StoreError> for DeliveryError {
    fn from(e: StoreError) -> DeliveryError {
        match e {
            StoreError::UnknownAccount => DeliveryError::UnknownAccount,
            StoreError::OverQuota { used, limit, size } => {
                DeliveryError::OverQuota { used, limit, size }
            }
            StoreError::TooLarge { what, limit } => DeliveryError::TooLarge { what, limit },
            other => DeliveryError::Backend(other.into()),
        }
    }
}

impl From<DeliveryError> for StoreError {
    fn from(e: DeliveryError) -> StoreError {
        match e {
            DeliveryError::UnknownAccount => StoreError::UnknownAccount,
            DeliveryError::OverQuota { used, limit, size } => {
                StoreError::OverQuota { used, limit, size }
            }
            DeliveryError::TooLarge { what, limit } => StoreError::TooLarge { what, limit },
            DeliveryError::Backend(b) => b.into(),
        }
    }
}

impl From<StoreError> for QueueError {
    fn from(e: StoreError) -> QueueError {
        match e {
            StoreError::NoSuchQueueEntry => QueueError::NoSuchEntry,
            StoreError::QueueEntryInFlight => QueueError::InFlight,
            StoreError::QueueEntryNotHeld => QueueError::NotHeld,
            StoreError::TooLarge { what, limit } => QueueError::TooLarge { what, limit },
            // Only a bounce's delivery refuses these.
            StoreError::UnknownAccount => QueueError::Bounce(DeliveryError::UnknownAccount),
            StoreError::OverQuota { used, limit, size } => {
                QueueError::Bounce(DeliveryError::OverQuota { used, limit, size })
            }
            other => QueueError::Backend(other.into()),
        }
    }
}

impl From<QueueError> for StoreError {
    fn from(e: QueueError) -> StoreError {
        match e {
            QueueError::NoSuchEntry => StoreError::NoSuchQueueEntry,
            QueueError::InFlight => StoreError::QueueEntryInFlight,
            QueueError::NotHeld => StoreError::QueueEntryNotHeld,
            QueueError::TooLarge { what, limit } => StoreError::TooLarge { what, limit },
            QueueError::Bounce(d) => d.into(),
            QueueError::Backend(b) => b.into(),
        }
    }
}

impl From<StoreError> for PinError {
    fn from(e: StoreError) -> PinError {
        match e {
            StoreError::TooLarge { what, limit } => PinError::TooLarge { what, limit },
            other => PinError::Backend(other.into()),
        }
    }
}

impl From<PinError> for StoreError {
    fn from(e: PinError) -> StoreError {
        match e {
            PinError::TooLarge { what, limit } => StoreError::TooLarge { what, limit },
            PinError::Backend(b) => b.into(),
        }
    }
}

impl From<StoreError> for ArchiveError {
    fn from(e: StoreError) -> ArchiveError {
        match e {
            StoreError::BadArchive(why) => ArchiveError::Refused(why),
            StoreError::SessionExpired => ArchiveError::SessionExpired,
            StoreError::UnknownAccount => ArchiveError::UnknownAccount,
            StoreError::Shredded => ArchiveError::Shredded,
            StoreError::AccountExists => ArchiveError::AccountExists,
            StoreError::HostileParams(c) => ArchiveError::HostileParams(c),
            StoreError::TooLarge { what, limit } => ArchiveError::TooLarge { what, limit },
            other => ArchiveError::Backend(other.into()),
        }
    }
}

impl From<ArchiveError> for StoreError {
    fn from(e: ArchiveError) -> StoreError {
        match e {
            ArchiveError::Refused(why) => StoreError::BadArchive(why),
            ArchiveError::SessionExpired => StoreError::SessionExpired,
            ArchiveError::UnknownAccount => StoreError::UnknownAccount,
            ArchiveError::Shredded => StoreError::Shredded,
            ArchiveError::AccountExists => StoreError::AccountExists,
            ArchiveError::HostileParams(c) => StoreError::HostileParams(c),
            ArchiveError::TooLarge { what, limit } => StoreError::TooLarge { what, limit },
            ArchiveError::Backend(b) => b.into(),
        }
    }
}
