//! `dime-store`: the zero-access store of dime (`spec/storage.md`).
//!
//! What it is: accounts with wrapped private keys, login sessions, recovery, key rotation,
//! mailboxes of sealed messages (UID, UIDVALIDITY, MODSEQ, encrypted names and flags, quota,
//! retention), account export and import, and the durable outbound queue with the delivery
//! status of each entry. Everything sits on a [`Backend`]: [`RedbBackend`] (one embedded redb
//! file in the data directory) by default. Its files (the redb databases and the delivery log)
//! are reached through a file layer, [`StoreFs`]: [`OsFs`] is the real file system,
//! [`PowerCutFs`] an in-memory one for crash tests, whose power can be cut
//! ([`Store::open_with_fs`]).
//!
//! The contract is six facets, one trait per owner of truth, each with its own error
//! (`spec/storage.md` §1.1): [`Accounts`] ([`AccountError`]), [`Mailboxes`] ([`MailboxError`]),
//! [`Deliveries`] ([`DeliveryError`]), [`Queue`] ([`QueueError`]), [`Pins`] ([`PinError`]) and
//! [`Archive`] ([`ArchiveError`]); each error's `Backend` variant is a [`BackendError`]. [`Store`]
//! implements them all (the handle a server opens once and shares); import the traits a caller
//! uses. They name no storage engine, so a second backend can implement them. [`StoreError`] is
//! the low-level error of opening a store and of its [`Backend`].
//!
//! What it is not: a message codec. A delivered envelope is opaque sealed bytes
//! ([`Deliveries::deliver`] needs no secret, and the store keeps it byte for byte). With a
//! [`Session`], [`Mailboxes::open_message`] opens it through `dime-envelope` (its slots, or the key
//! overlays the store keeps beside it: re-wrap after a rotation, the read-key fast path); the
//! caller verifies the signatures.
//!
//! The promises it keeps (`spec/storage.md` §1): an acknowledged delivery is on stable storage
//! before [`Deliveries::deliver`] returns; nothing beyond what delivery and quota need is stored in
//! clear; without the password (or recovery secret), the server's disk plus its configuration
//! (the pepper) cannot open an account; a password change re-wraps one key, atomically.
//!
//! Time and randomness are parameters (`now`, `rng`); the store reads no clock.

mod account;
mod archive;
pub use archive::ImportTarget;
pub mod backend;
mod codec;
mod compact;
mod deliver;
mod errors;
mod facets;
mod format;
mod fs;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gate;
mod imap;
mod keys;
mod log;
mod mail;
mod pins;
mod powercut;
mod queue;
mod queue_stats;
mod rewrap;
mod status;
mod summary;
#[cfg(test)]
mod testing;

pub use account::{
    AccountInfo, Created, DirectoryRec, MAX_FORMER_ADDRESSES, MAX_SIGNET_HISTORY, NewAccount,
    Recovery, RecoveryCode,
};
pub use backend::{Backend, ReadTxn, RedbBackend, Table, WriteTxn};
pub use deliver::{COMMIT_SECONDS_METRIC, Delivered, SEEN_RETENTION_SECS};
pub use errors::{
    AccountError, ArchiveError, BackendError, DeliveryError, MailboxError, PinError, QueueError,
    SessionExpired,
};
pub use facets::{Accounts, Archive, Deliveries, Facets, Mailboxes, Pins, Queue};
pub use fs::{OsFs, StoreFile, StoreFs};
pub use imap::{Appended, FlagsStored, MAX_TOMBSTONES, SpecialUse};
pub use keys::{DisplayKey, Session};
pub use mail::{EntryInfo, MailboxInfo, Quota};
pub use pins::MAX_PIN_LEN;
pub use powercut::{CutMode, POWER_CUT_PAGE, PowerCutFs};
pub use queue::{
    Leased, MAX_SUBMISSION_KEY_LEN, OutboundEntry, QueueControl, QueueId, QueuedEntry, Settlement,
    Transport,
};
pub use queue_stats::QueueStats;
pub use rewrap::{Displayed, Opened, OpenedVia, RewrapProgress};
pub use status::{DeliveryState, DeliveryStatus, MAX_STATUS_TEXT_LEN};
pub use summary::{MAX_SUMMARY_LEN, SealedSummaries};

use dime_core::Secret;
use dime_core::crypto::{AeadKey, Argon2Params, CryptoError, CryptoProvider};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Largest envelope the store accepts: 64 MiB (`spec/storage.md` §4).
pub const MAX_ENVELOPE_LEN: usize = 64 * 1024 * 1024;
/// Largest mailbox name, in octets (`spec/storage.md` §5).
pub const MAX_MAILBOX_NAME_LEN: usize = 1024;
/// Largest flag set of one message, in octets of its encoding (`spec/storage.md` §5).
pub const MAX_FLAGS_LEN: usize = 4096;
/// Largest password accepted, in octets (`dime_core::limits::PASSPHRASE_MAX_LEN`).
pub const MAX_PASSWORD_LEN: usize = dime_core::limits::PASSPHRASE_MAX_LEN;
/// Shortest pepper accepted, in octets (`spec/storage.md` §6).
pub const MIN_PEPPER_LEN: usize = 32;
/// The format a new store is created with (`spec/storage.md` §2.1); [`Store::format`] is the
/// format of an open one.
pub const STORE_FORMAT: u32 = 2;
/// Most deliveries one group commit writes in one transaction (`spec/storage.md` §4).
pub const MAX_GROUP_COMMIT: usize = 256;

/// Seconds since the Unix epoch: every operation that depends on time takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

/// An account's identifier: 16 random octets, never derived from the address
/// (`spec/storage.md` §3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub [u8; 16]);

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// A mailbox of one account. [`MailboxId::INBOX`] receives deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId(pub u32);

impl MailboxId {
    /// The inbox, created with the account.
    pub const INBOX: MailboxId = MailboxId(0);
}

/// A message's UID inside one mailbox (IMAP, RFC 9051 §2.3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid(pub u32);

/// How a store is opened.
pub struct StoreConfig {
    /// The data directory (created if missing); holds `store.redb` and the delivery log.
    pub data_dir: PathBuf,
    /// The key vault file: per-account shredding keys (`spec/storage.md` §6). Keep it out of
    /// the data directory's backups.
    pub vault_path: PathBuf,
    /// The server pepper from configuration; never written to the store.
    pub pepper: Secret<Vec<u8>>,
    /// Argon2id parameters for new password wraps.
    pub argon2: Argon2Params,
    /// Idle timeout of sessions, in seconds.
    pub idle_timeout_secs: u64,
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("data_dir", &self.data_dir)
            .field("vault_path", &self.vault_path)
            .field("pepper", &"<redacted>")
            .field("argon2", &self.argon2)
            .field("idle_timeout_secs", &self.idle_timeout_secs)
            .finish()
    }
}

/// The low-level error of the redb store: of opening it ([`Store::open`]), of its key-value
/// [`Backend`], and of the code behind its facets, which sorts it into each facet's own error
/// ([`AccountError`], [`MailboxError`], ...) at the facet's boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, database).
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// The configuration is unusable.
    #[error("configuration refused: {0}")]
    Config(&'static str),
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
    /// The session belongs to another account.
    #[error("session does not belong to this account")]
    WrongSession,
    /// Stored Argon2 parameters are outside the fixed bounds: refused before running.
    #[error("stored argon2 parameters refused: {0}")]
    HostileParams(CryptoError),
    /// A crypto operation failed.
    #[error("crypto: {0}")]
    Crypto(CryptoError),
    /// A stored item failed its checksum or did not decode: it has been quarantined.
    #[error("corrupt {what} detected and quarantined")]
    Corrupt {
        /// What was corrupt.
        what: &'static str,
    },
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
    /// A length is over its named limit.
    #[error("{what} exceeds its limit of {limit} octets")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit (a constant of this crate).
        limit: usize,
    },
    /// No such mailbox.
    #[error("no such mailbox")]
    NoSuchMailbox,
    /// No such message.
    #[error("no such message")]
    NoSuchMessage,
    /// The inbox cannot be deleted or renamed.
    #[error("the inbox cannot be deleted or renamed")]
    InboxIsFixed,
    /// Another mailbox of the account has that name (`spec/storage.md` §5).
    #[error("a mailbox with that name exists already")]
    MailboxExists,
    /// Another mailbox of the account has that special use (`spec/storage.md` §5.2).
    #[error("special use {role:?} belongs to mailbox {by:?} already")]
    SpecialUseTaken {
        /// The role asked for.
        role: SpecialUse,
        /// The mailbox that has it.
        by: MailboxId,
    },
    /// The account has no recovery of the kind asked for.
    #[error("account has no {0} recovery")]
    NoRecovery(&'static str),
    /// Creating or signing a signet failed.
    #[error("signet: {0}")]
    Signet(String),
    /// The keys are not v2 keys (X25519) this store can wrap.
    #[error("only v2 (x25519) keys can be stored")]
    NotV2Keys,
    /// An archive is malformed or does not open with the password given.
    #[error("archive refused: {0}")]
    BadArchive(&'static str),
    /// No such outbound queue entry (or its lease was lost).
    #[error("no such queue entry")]
    NoSuchQueueEntry,
    /// An attempt to deliver the queue entry is under way.
    #[error("an attempt to deliver it is under way")]
    QueueEntryInFlight,
    /// The queue entry is not held.
    #[error("the queue entry is not held")]
    QueueEntryNotHeld,
    /// The store is shutting down.
    #[error("store is closed")]
    Closed,
    /// The message does not open with the session's keys: the class of
    /// `spec/envelope.md` §14 (framing, its rule named; or "does not authenticate", which
    /// is also what a message not sealed to this account gives).
    #[error("{0}")]
    Unopenable(dime_envelope::ErrorClass),
}

impl From<CryptoError> for StoreError {
    fn from(e: CryptoError) -> Self {
        StoreError::Crypto(e)
    }
}

/// Keys derived from the pepper alone, once at open: they seal what the server keeps without
/// any account's key.
pub(crate) struct PepperKeys {
    /// Outbound queue entries (`spec/storage.md` §7).
    pub(crate) queue: AeadKey,
    /// Delivery statuses (§7.1).
    pub(crate) status: AeadKey,
    /// Signet pins (§7.2).
    pub(crate) pins: AeadKey,
}

impl PepperKeys {
    fn derive(p: &CryptoProvider, pepper: &[u8]) -> Result<PepperKeys, StoreError> {
        let key = |purpose: &[u8]| keys::derive(p, pepper, b"", &[purpose]);
        Ok(PepperKeys {
            queue: key(b"dime-store outbound queue")?,
            status: key(b"dime-store delivery status")?,
            pins: key(b"dime-store signet pins")?,
        })
    }
}

pub(crate) struct Inner {
    /// The store proper, behind the read gate of the delivery log.
    pub(crate) backend: gate::Gated,
    pub(crate) vault: Box<dyn Backend>,
    pub(crate) p: &'static CryptoProvider,
    /// How this store's blob digests are computed (its format, `spec/storage.md` §2.1).
    pub(crate) blob_digest: codec::BlobDigest,
    pub(crate) pepper: Secret<Vec<u8>>,
    pub(crate) keys: PepperKeys,
    pub(crate) argon2: Argon2Params,
    pub(crate) idle_timeout_secs: u64,
}

/// The store: open it once per process and share it (`&Store` is `Sync`).
pub struct Store {
    pub(crate) inner: Arc<Inner>,
    pub(crate) committer: deliver::Committer,
    /// Deliveries the delivery log gave back when the store was opened.
    replayed: usize,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("backend", &self.inner.backend).finish_non_exhaustive()
    }
}

impl Store {
    /// The cryptographic provider the store was opened with.
    pub fn provider(&self) -> &'static CryptoProvider {
        self.inner.p
    }

    /// Opens (or creates) the store of `config.data_dir` with the redb backend.
    pub fn open(
        config: StoreConfig,
        provider: &'static CryptoProvider,
    ) -> Result<Store, StoreError> {
        Store::open_with_fs(config, provider, &OsFs)
    }

    /// [`Store::open`] on the file system `fs`: its directories, the redb files (the store
    /// and the key vault) and the delivery log live there. [`OsFs`] is the real one; a crash
    /// test passes a [`PowerCutFs`] (`spec/storage.md` §10).
    pub fn open_with_fs(
        config: StoreConfig,
        provider: &'static CryptoProvider,
        fs: &dyn StoreFs,
    ) -> Result<Store, StoreError> {
        fs::create_dir_durably(fs, &config.data_dir)?;
        if let Some(parent) = config.vault_path.parent() {
            fs::create_dir_durably(fs, parent)?;
        }
        let backend = RedbBackend::open_with_fs(fs, &config.data_dir.join(fs::STORE_FILE))?;
        let vault = RedbBackend::open_with_fs(fs, &config.vault_path)?;
        Store::assemble(Box::new(backend), Box::new(vault), config, provider, fs)
    }

    /// Opens a store over any backend pair (the store proper and the key vault); its delivery
    /// log, when the backend defers durability, is in `config.data_dir` on the real file
    /// system.
    pub fn with_backends(
        backend: Box<dyn Backend>,
        vault: Box<dyn Backend>,
        config: StoreConfig,
        provider: &'static CryptoProvider,
    ) -> Result<Store, StoreError> {
        Store::assemble(backend, vault, config, provider, &OsFs)
    }

    fn assemble(
        backend: Box<dyn Backend>,
        vault: Box<dyn Backend>,
        config: StoreConfig,
        provider: &'static CryptoProvider,
        fs: &dyn StoreFs,
    ) -> Result<Store, StoreError> {
        if config.pepper.expose().len() < MIN_PEPPER_LEN {
            return Err(StoreError::Config("pepper must be at least 32 octets"));
        }
        config.argon2.check().map_err(|_| StoreError::Config("argon2 parameters out of bounds"))?;
        let data_dir = config.data_dir;
        let keys = PepperKeys::derive(provider, config.pepper.expose())?;
        let blob_digest = format::open(provider, &*backend)?;
        let inner = Arc::new(Inner {
            backend: gate::Gated::new(backend),
            vault,
            p: provider,
            blob_digest,
            keys,
            pepper: config.pepper,
            argon2: config.argon2,
            idle_timeout_secs: config.idle_timeout_secs,
        });
        let (log, replayed) = if inner.backend.defers() {
            let (log, n) = deliver::recover(&inner, fs, &data_dir)?;
            (Some(log), n)
        } else {
            (None, 0)
        };
        queue::upgrade(&inner)?;
        let committer = deliver::Committer::start(inner.clone(), log);
        Ok(Store { inner, committer, replayed })
    }

    /// The store's format (`spec/storage.md` §2.1): [`STORE_FORMAT`], or 1 for a store
    /// written before formats, which keeps it.
    pub fn format(&self) -> u32 {
        self.inner.blob_digest.format()
    }

    /// The backend, for tools (fsck, audits, tests that corrupt records on purpose).
    pub fn backend(&self) -> &dyn Backend {
        &self.inner.backend
    }

    /// Items quarantined so far: (table code, original key) of each.
    pub fn quarantined(&self) -> Result<Vec<(u8, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        self.inner.backend.read(&mut |t| {
            out = t
                .range(Table::Quarantine, &[], &[0xff; 64], usize::MAX)?
                .into_iter()
                .filter_map(|(k, _)| {
                    let (code, rest) = k.split_first()?;
                    Some((*code, rest.to_vec()))
                })
                .collect();
            Ok(())
        })?;
        Ok(out)
    }
}

/// Moves `key` of `table` into the quarantine table, in its own transaction.
pub(crate) fn quarantine(inner: &Inner, table: Table, key: &[u8]) {
    // Best effort: a failure to quarantine leaves the item where it is, still detected as
    // corrupt on every read.
    let _ = inner.backend.write(&mut |t| quarantine_in(t, table, key));
}

/// Moves `key` of `table` (if present) into the quarantine table, under table code ‖ key,
/// inside the transaction `t` (`spec/storage.md` §9).
pub(crate) fn quarantine_in(
    t: &mut dyn WriteTxn,
    table: Table,
    key: &[u8],
) -> Result<(), StoreError> {
    if let Some(v) = t.get(table, key)? {
        let qk = [&[table.code()][..], key].concat();
        t.put(Table::Quarantine, &qk, &v)?;
        t.delete(table, key)?;
    }
    Ok(())
}
