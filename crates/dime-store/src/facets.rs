//! The store's facets (`spec/storage.md` §1.1): one trait per owner of truth, each with its own
//! error, all implemented by [`crate::Store`] (the redb store) behind one handle.
//!
//! | facet | owns | error |
//! |---|---|---|
//! | [`Accounts`] | accounts, their address index, key wraps, logins, recovery, rotation, the directory of signets | [`AccountError`] |
//! | [`Mailboxes`] | mailboxes, their entries and messages, flags, quota use, retention, summaries, key overlays (open, re-wrap) | [`MailboxError`] |
//! | [`Deliveries`] | delivering into an inbox, durable before it is acknowledged (the delivery log) | [`DeliveryError`] |
//! | [`Queue`] | the outbound queue, its leases and schedules, and each entry's delivery status | [`QueueError`] |
//! | [`Pins`] | the resolver's signet pins | [`PinError`] |
//! | [`Archive`] | account export and import | [`ArchiveError`] |
//!
//! The traits name no storage engine: their arguments and answers are this crate's values,
//! `dime-core`'s and `dime-signet`'s, and a second backend implements them over its own
//! storage, mapping its failures to [`crate::BackendError`]. They are object safe (`&dyn Queue`).
//! [`Session`] and [`SealedSummaries`] keep their secrets crate-private, so an implementation
//! that logs in or seals summaries lives in this crate, beside the key handling it shares.

use crate::errors::{
    AccountError, ArchiveError, DeliveryError, MailboxError, PinError, QueueError,
};
use crate::{
    AccountId, Appended, Created, Delivered, DeliveryStatus, EntryInfo, FlagsStored, Leased,
    MailboxId, MailboxInfo, NewAccount, Opened, OutboundEntry, QueueId, QueuedEntry, Quota,
    RecoveryCode, RewrapProgress, SealedSummaries, Session, Settlement, SpecialUse, Timestamp,
    Transport, Uid,
};
use dime_core::crypto::{Hashed, X25519Secret};
use dime_core::{CryptoRngCore, Mailbox};
use dime_signet::{OrgKeys, Signet};
use zeroize::Zeroizing;

/// Accounts and their keys (`spec/storage.md` §3, §6): creation, the address index, logins,
/// password change, recovery, key rotation, the directory of user signets, deletion.
pub trait Accounts: Send + Sync {
    /// Creates an account: fresh user keys, an SSR signed by `org` (its POK) into the user
    /// signet, a random account key wrapping the keyring, the password wrap, the recovery
    /// wrap, and the inbox. The shredding key goes to the vault first.
    ///
    /// # Errors
    /// [`AccountError::AccountExists`], [`AccountError::TooLarge`] (the password),
    /// [`AccountError::Signet`], the backend's.
    fn create_account(
        &self,
        rng: &mut dyn CryptoRngCore,
        org: &OrgKeys,
        new: &NewAccount<'_>,
        now: Timestamp,
    ) -> Result<Created, AccountError>;

    /// The account of an address.
    ///
    /// # Errors
    /// [`AccountError::UnknownAccount`], the backend's.
    fn account_of(&self, address: &Mailbox) -> Result<AccountId, AccountError>;

    /// Logs in: unwraps the account key with the password (the stored Argon2 parameters are
    /// checked against the fixed bounds first), then the keyring.
    ///
    /// # Errors
    /// [`AccountError::UnknownAccount`], [`AccountError::Shredded`],
    /// [`AccountError::LoginFailed`], [`AccountError::HostileParams`],
    /// [`AccountError::TooLarge`], the backend's.
    fn login(
        &self,
        address: &Mailbox,
        password: &[u8],
        now: Timestamp,
    ) -> Result<Session, AccountError>;

    /// Changes the password: re-wraps the account key, in one transaction (the old password
    /// works until it commits, the new one after). Nothing else is re-encrypted.
    ///
    /// # Errors
    /// [`AccountError::SessionExpired`], [`AccountError::TooLarge`], the backend's.
    fn change_password(
        &self,
        rng: &mut dyn CryptoRngCore,
        session: &mut Session,
        new_password: &[u8],
        now: Timestamp,
    ) -> Result<(), AccountError>;

    /// Recovers with the account's recovery code and sets a new password. A code recovers
    /// once (`spec/storage.md` §6.3): in one transaction the new password wrap replaces the
    /// old one and a new code's wrap replaces the used code's, so the used code no longer
    /// opens anything. Returns the session and the new code: show it once.
    ///
    /// # Errors
    /// [`AccountError::NoRecovery`], [`AccountError::LoginFailed`] (a wrong code, or one
    /// used by another recovery in the meantime), as [`Accounts::login`].
    fn recover_with_code(
        &self,
        rng: &mut dyn CryptoRngCore,
        address: &Mailbox,
        code: &RecoveryCode,
        new_password: &[u8],
        now: Timestamp,
    ) -> Result<(Session, RecoveryCode), AccountError>;

    /// Recovers with the organisation's escrow secret and sets a new password. The escrow
    /// wrap stays as it is: the organisation's key is the organisation's, and recovers again.
    ///
    /// # Errors
    /// [`AccountError::NoRecovery`], [`AccountError::LoginFailed`] (a wrong secret), as
    /// [`Accounts::login`].
    fn recover_with_escrow(
        &self,
        rng: &mut dyn CryptoRngCore,
        address: &Mailbox,
        org_secret: &X25519Secret,
        new_password: &[u8],
        now: Timestamp,
    ) -> Result<Session, AccountError>;

    /// The current user signet of an address and its key generation (read with the pepper;
    /// the data directory alone does not hold it in clear).
    ///
    /// # Errors
    /// [`AccountError::UnknownAccount`], [`AccountError::Shredded`], the backend's.
    fn signet(&self, address: &Mailbox) -> Result<(u32, Signet), AccountError>;

    /// The directory record of an address (read with the pepper): its current signet, the
    /// earlier signets of its chain of custody, oldest first, and the addresses it had before
    /// it moved (`spec/storage.md` §6.5). What HIST answers and what a reader verifies an
    /// author's older mail with (`spec/envelope.md` §7.6).
    ///
    /// # Errors
    /// As [`Accounts::signet`].
    fn directory(&self, address: &Mailbox) -> Result<crate::DirectoryRec, AccountError>;

    /// Rotates the user's keys: new keys, a rotation SSR with the chain-of-custody signature
    /// by the current keys, signed by `org` into the new user signet. The keyring keeps every
    /// older generation so old mail still opens. Returns the new signet.
    ///
    /// # Errors
    /// [`AccountError::SessionExpired`], [`AccountError::Signet`],
    /// [`AccountError::NotV2Keys`], the backend's.
    fn rotate_keys(
        &self,
        rng: &mut dyn CryptoRngCore,
        session: &mut Session,
        org: &OrgKeys,
        now: Timestamp,
    ) -> Result<Signet, AccountError>;

    /// Deletes an account: first its shredding key (after that, no copy of the data can be
    /// opened with the pepper and any password), then every record.
    ///
    /// # Errors
    /// [`AccountError::UnknownAccount`], the backend's.
    fn delete_account(&self, address: &Mailbox) -> Result<(), AccountError>;

    /// Up to `max` accounts whose ids follow `after` (from the first when none), in id order
    /// (random, so in no order of address): each one's address (from its directory entry,
    /// read with the configuration), key generation, recovery, quota and use
    /// (`spec/storage.md` §3.1, §6.5). An account whose records do not open is listed with
    /// its id and no address.
    ///
    /// # Errors
    /// The backend's.
    fn accounts(
        &self,
        after: Option<AccountId>,
        max: usize,
    ) -> Result<Vec<crate::AccountInfo>, AccountError>;
}

/// Mailboxes and the messages in them (`spec/storage.md` §5, §6.5-§6.7): listing, fetching,
/// expunge, copy and move, retention, encrypted names and flags, quota use, summaries, and the
/// key overlays beside messages (opening with the session's keys, re-wrap after a rotation).
pub trait Mailboxes: Send + Sync {
    /// Quota use of an account (no secret needed).
    ///
    /// # Errors
    /// [`MailboxError::UnknownAccount`], the backend's.
    fn quota(&self, a: AccountId) -> Result<Quota, MailboxError>;

    /// The entries of a mailbox, by UID (no secret needed). A corrupt index record is
    /// quarantined and left out.
    ///
    /// # Errors
    /// [`MailboxError::NoSuchMailbox`], the backend's.
    fn list(&self, a: AccountId, m: MailboxId) -> Result<Vec<EntryInfo>, MailboxError>;

    /// The sealed envelope of one message, checked against its digest. A corrupt message is
    /// quarantined (and its entries removed), and [`crate::BackendError::Corrupt`] returned.
    ///
    /// # Errors
    /// [`MailboxError::NoSuchMessage`], the backend's.
    fn fetch(&self, a: AccountId, m: MailboxId, uid: Uid) -> Result<Vec<u8>, MailboxError>;

    /// Expunges messages from a mailbox (no secret needed); returns how many were removed.
    ///
    /// # Errors
    /// [`MailboxError::NoSuchMailbox`], the backend's.
    fn expunge(&self, a: AccountId, m: MailboxId, uids: &[Uid]) -> Result<usize, MailboxError>;

    /// Copies messages into `dst` (the sealed envelope is shared, not duplicated); returns
    /// (source UID, new UID) pairs.
    ///
    /// # Errors
    /// [`MailboxError::NoSuchMailbox`], [`MailboxError::NoSuchMessage`],
    /// [`MailboxError::TooLarge`] (copies of one message), the backend's.
    fn copy(
        &self,
        a: AccountId,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
    ) -> Result<Vec<(Uid, Uid)>, MailboxError>;

    /// Moves messages into `dst`, atomically.
    ///
    /// # Errors
    /// As [`Mailboxes::copy`].
    fn move_messages(
        &self,
        a: AccountId,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
    ) -> Result<Vec<(Uid, Uid)>, MailboxError>;

    /// Removes every message older than `days` days at `now` (retention); returns how many.
    ///
    /// # Errors
    /// The backend's.
    fn purge_older_than(
        &self,
        a: AccountId,
        days: u64,
        now: Timestamp,
    ) -> Result<u64, MailboxError>;

    /// The mailboxes of the session's account, names decrypted.
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], the backend's.
    fn mailboxes(&self, s: &mut Session, now: Timestamp) -> Result<Vec<MailboxInfo>, MailboxError>;

    /// Creates a mailbox with an encrypted name, subscribed and with no special use
    /// (`spec/storage.md` §5.2). Names are case-sensitive, except `INBOX` in any case, which
    /// is the inbox's.
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], [`MailboxError::MailboxExists`],
    /// [`MailboxError::TooLarge`] (the name), the backend's.
    fn create_mailbox(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        name: &str,
        now: Timestamp,
    ) -> Result<MailboxId, MailboxError>;

    /// Deletes a mailbox and expunges its messages (not the inbox).
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], [`MailboxError::InboxIsFixed`],
    /// [`MailboxError::NoSuchMailbox`], the backend's.
    fn delete_mailbox(
        &self,
        s: &mut Session,
        m: MailboxId,
        now: Timestamp,
    ) -> Result<(), MailboxError>;

    /// Sets a message's flags (encrypted under the account's meta key); returns the new
    /// MODSEQ.
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], [`MailboxError::NoSuchMessage`],
    /// [`MailboxError::TooLarge`] (the flags), the backend's.
    fn set_flags(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        uid: Uid,
        flags: &[&str],
        now: Timestamp,
    ) -> Result<u64, MailboxError>;

    /// A message's flags, decrypted.
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], [`MailboxError::NoSuchMessage`], the backend's.
    fn flags(
        &self,
        s: &mut Session,
        m: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Vec<String>, MailboxError>;

    /// The entries of mailbox `m` in UID order ([`Mailboxes::list`]), each with its summary
    /// when it has one that opens with the session's read key. Reads only; opens no message.
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], the backend's.
    #[allow(clippy::type_complexity)]
    fn list_summaries(
        &self,
        s: &mut Session,
        m: MailboxId,
        now: Timestamp,
    ) -> Result<Vec<(EntryInfo, Option<Zeroizing<Vec<u8>>>)>, MailboxError>;

    /// The summary of message `uid` of mailbox `m`, when it has one that opens with the
    /// session's read key (as [`Mailboxes::list_summaries`], for one message).
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], [`MailboxError::NoSuchMessage`], the backend's.
    fn summary(
        &self,
        s: &mut Session,
        m: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, MailboxError>;

    /// Seals `summaries` (UID, bytes of at most [`crate::MAX_SUMMARY_LEN`]) of mailbox `m`
    /// under the session's read key; store them with [`Mailboxes::put_summaries`].
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], [`MailboxError::TooLarge`].
    fn seal_summaries(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        summaries: &[(Uid, &[u8])],
        now: Timestamp,
    ) -> Result<SealedSummaries, MailboxError>;

    /// Stores summaries sealed by [`Mailboxes::seal_summaries`], in one transaction, each
    /// beside its message if it is still there. Returns how many were stored.
    ///
    /// # Errors
    /// The backend's.
    fn put_summaries(&self, summaries: &SealedSummaries) -> Result<usize, MailboxError>;

    /// Opens a message with the session's keys (`spec/storage.md` §6.6): through its read
    /// overlay when it has one (no X25519); otherwise through its re-wrap overlay or its own
    /// slots (one X25519), then stores a read overlay so that the next open is fast. Old mail
    /// delivered under a rotated key opens through the keyring or the re-wrap overlay.
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], [`MailboxError::NoSuchMessage`],
    /// [`MailboxError::Unopenable`], the backend's.
    fn open_message(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Opened, MailboxError>;

    /// Opens a message for display only (`spec/storage.md` §6.6): in one read transaction its
    /// envelope, read overlay and summary; the chunks opened with the overlay's keys, each
    /// authenticated, without hashing them for the signatures and without checking the blob
    /// digest (every octet shown is authenticated by its chunk's tag). `None` when the message
    /// has no read overlay, or anything fails to open that way: then [`Mailboxes::open_message`]
    /// (the checked way, which quarantines a corrupt message). Writes nothing.
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], [`MailboxError::NoSuchMessage`], the backend's.
    fn open_for_display(
        &self,
        s: &mut Session,
        m: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Option<crate::Displayed>, MailboxError>;

    /// [`Mailboxes::open_for_display`] of many messages of mailbox `m` in one read transaction,
    /// in the order of `uids`, until `budget` octets of envelopes are read (the rest left
    /// out): each with what it gives, `None` also for a message not there. It takes a
    /// session's [`crate::DisplayKey`] (not the session), so that several threads can open
    /// the parts of one FETCH at once.
    ///
    /// # Errors
    /// The backend's.
    #[allow(clippy::type_complexity)]
    fn open_for_display_many(
        &self,
        k: &crate::DisplayKey,
        m: MailboxId,
        uids: &[Uid],
        budget: usize,
    ) -> Result<Vec<(Uid, Option<crate::Displayed>)>, MailboxError>;

    /// Opens a message with the session's keys without the read overlay (neither read nor
    /// written): the cost of one X25519. For audits and benchmarks.
    ///
    /// # Errors
    /// As [`Mailboxes::open_message`].
    fn open_message_uncached(
        &self,
        s: &mut Session,
        m: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Opened, MailboxError>;

    /// Re-wraps every message delivered under an older key generation to the session's
    /// current key (`spec/storage.md` §6.5): for each, a re-wrap overlay (its recipient chunk
    /// keys sealed to the current X25519 key) and its new generation, `batch` messages per
    /// transaction; the envelope itself is never changed. Calls `progress` before the first
    /// batch and after each. Safe to interrupt and run again.
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], [`MailboxError::NotV2Keys`], the backend's.
    fn rewrap_slots(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        batch: usize,
        now: Timestamp,
        progress: &mut dyn FnMut(RewrapProgress),
    ) -> Result<RewrapProgress, MailboxError>;

    /// APPEND (RFC 9051 §6.3.12, RFC 4315): stores `envelope`, sealed to the user by the
    /// server, as a new message of mailbox `m` (any mailbox), with `flags` sealed as
    /// [`Mailboxes::set_flags`] seals them (none when empty), `internal_date` as its arrival,
    /// the account's current key generation, and `summary` sealed as
    /// [`Mailboxes::seal_summaries`] seals it (`spec/storage.md` §5.1). The quota is checked
    /// as a delivery checks it. Durable (one durable transaction) before it returns; the
    /// message opens with [`Mailboxes::open_message`] as a delivered one does.
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], [`MailboxError::NoSuchMailbox`],
    /// [`MailboxError::OverQuota`], [`MailboxError::TooLarge`] (the envelope, the flags, the
    /// summary, UIDs), the backend's.
    #[allow(clippy::too_many_arguments)]
    fn append(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        envelope: &[u8],
        flags: &[&str],
        internal_date: Timestamp,
        summary: Option<&[u8]>,
        now: Timestamp,
    ) -> Result<Appended, MailboxError>;

    /// Every entry of mailbox `m` with its MODSEQ and flags, decrypted, in UID order, from one
    /// read transaction (`spec/storage.md` §5). A corrupt index record is quarantined and left
    /// out.
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], [`MailboxError::NoSuchMailbox`], the backend's
    /// ([`crate::BackendError::Corrupt`] for flags that do not open).
    #[allow(clippy::type_complexity)]
    fn flags_all(
        &self,
        s: &mut Session,
        m: MailboxId,
        now: Timestamp,
    ) -> Result<Vec<(Uid, u64, Vec<String>)>, MailboxError>;

    /// [`Mailboxes::flags_all`] of the entries of `uids` alone (each looked up: for a command
    /// that names a few messages of a large mailbox), in UID order; a UID with no entry is
    /// left out.
    ///
    /// # Errors
    /// As [`Mailboxes::flags_all`].
    #[allow(clippy::type_complexity)]
    fn flags_of(
        &self,
        s: &mut Session,
        m: MailboxId,
        uids: &[Uid],
        now: Timestamp,
    ) -> Result<Vec<(Uid, u64, Vec<String>)>, MailboxError>;

    /// STORE (RFC 9051 §6.4.6, RFC 7162 §3.1.3): sets the flags of many entries of mailbox
    /// `m` in one durable transaction (`spec/storage.md` §5). Each entry whose flag set
    /// changes gets a new MODSEQ from the mailbox's HIGHESTMODSEQ, strictly increasing in the
    /// order given; an entry that already has that set keeps its MODSEQ. With
    /// `unchanged_since`, an entry whose MODSEQ is above it is left as it is and reported in
    /// [`FlagsStored::modified`]. UIDs that are not there are skipped.
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], [`MailboxError::NoSuchMailbox`],
    /// [`MailboxError::TooLarge`] (one entry's flags: then nothing is stored), the backend's.
    fn store_flags(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        changes: &[(Uid, Vec<String>)],
        unchanged_since: Option<u64>,
        now: Timestamp,
    ) -> Result<FlagsStored, MailboxError>;

    /// QRESYNC's VANISHED (RFC 7162 §3.2.5.1, §3.2.10): the UIDs removed from mailbox `m`
    /// (expunged, moved out, purged) after MODSEQ `modseq`, as ascending inclusive ranges
    /// (`spec/storage.md` §5.3). Below the mailbox's tombstone floor, every UID below UIDNEXT
    /// that is not there (more than was removed since, as the RFC allows). No secret needed.
    ///
    /// # Errors
    /// [`MailboxError::NoSuchMailbox`], the backend's.
    fn vanished_ranges_since(
        &self,
        a: AccountId,
        m: MailboxId,
        modseq: u64,
    ) -> Result<Vec<(Uid, Uid)>, MailboxError>;

    /// [`Mailboxes::vanished_ranges_since`], one UID at a time.
    ///
    /// # Errors
    /// As [`Mailboxes::vanished_ranges_since`].
    fn vanished_since(
        &self,
        a: AccountId,
        m: MailboxId,
        modseq: u64,
    ) -> Result<Vec<Uid>, MailboxError> {
        Ok(self
            .vanished_ranges_since(a, m, modseq)?
            .into_iter()
            .flat_map(|(first, last)| (first.0..=last.0).map(Uid))
            .collect())
    }

    /// [`Mailboxes::create_mailbox`] with a special use (RFC 6154 `CREATE-SPECIAL-USE`), sealed
    /// with the mailbox's attributes (`spec/storage.md` §5.2). A new mailbox is subscribed.
    /// Its UIDVALIDITY is above every one given before in the account (§5.4).
    ///
    /// # Errors
    /// As [`Mailboxes::create_mailbox`]; [`MailboxError::SpecialUseTaken`].
    fn create_mailbox_with(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        name: &str,
        special_use: Option<SpecialUse>,
        now: Timestamp,
    ) -> Result<MailboxId, MailboxError>;

    /// RENAME (RFC 9051 §6.3.6): the mailbox keeps its id, UIDVALIDITY, UIDs and messages; its
    /// name is sealed anew (`spec/storage.md` §5.4). The store's names are flat: renaming the
    /// children of a hierarchy is the caller's.
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], [`MailboxError::InboxIsFixed`],
    /// [`MailboxError::NoSuchMailbox`], [`MailboxError::MailboxExists`] (another mailbox, or
    /// this one, has the name), [`MailboxError::TooLarge`] (the name), the backend's.
    fn rename_mailbox(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        new_name: &str,
        now: Timestamp,
    ) -> Result<(), MailboxError>;

    /// [`Mailboxes::rename_mailbox`] of several mailboxes in one transaction (a RENAME of a
    /// hierarchy: the mailbox, then its children), each new name free when its turn comes:
    /// all renamed, or none.
    ///
    /// # Errors
    /// As [`Mailboxes::rename_mailbox`], for any of them.
    fn rename_mailboxes(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        renames: &[(MailboxId, &str)],
        now: Timestamp,
    ) -> Result<(), MailboxError>;

    /// SUBSCRIBE and UNSUBSCRIBE (RFC 9051 §6.3.7, §6.3.8) of an existing mailbox, sealed with
    /// its attributes (`spec/storage.md` §5.2).
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], [`MailboxError::NoSuchMailbox`], the backend's.
    fn set_subscribed(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        subscribed: bool,
        now: Timestamp,
    ) -> Result<(), MailboxError>;

    /// Sets or clears a mailbox's special use (RFC 6154), sealed with its attributes
    /// (`spec/storage.md` §5.2). At most one mailbox of an account has a given role.
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], [`MailboxError::NoSuchMailbox`],
    /// [`MailboxError::SpecialUseTaken`], the backend's.
    fn set_special_use(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        special_use: Option<SpecialUse>,
        now: Timestamp,
    ) -> Result<(), MailboxError>;

    /// One mailbox, as [`Mailboxes::mailboxes`] lists it, without reading the others (SELECT,
    /// STATUS).
    ///
    /// # Errors
    /// [`MailboxError::SessionExpired`], [`MailboxError::NoSuchMailbox`], the backend's.
    fn mailbox(
        &self,
        s: &mut Session,
        m: MailboxId,
        now: Timestamp,
    ) -> Result<MailboxInfo, MailboxError>;
}

/// Delivery into an account's inbox (`spec/storage.md` §4): needs no secret, and returns only
/// once the message is on stable storage (the redb store: its delivery log, with group
/// commit).
pub trait Deliveries: Send + Sync {
    /// Delivers a sealed envelope to `recipient`'s inbox. Needs no secret (the recipient may
    /// be offline). Returns only once the message is on stable storage; concurrent deliveries
    /// may share one commit (group commit).
    ///
    /// # Errors
    /// [`DeliveryError::UnknownAccount`], [`DeliveryError::OverQuota`],
    /// [`DeliveryError::TooLarge`] (over [`crate::MAX_ENVELOPE_LEN`]), the backend's (then
    /// the delivery is not durable).
    fn deliver(
        &self,
        recipient: &Mailbox,
        envelope: &[u8],
        now: Timestamp,
    ) -> Result<Delivered, DeliveryError>;

    /// [`Deliveries::deliver`] of an envelope whose SHA-512 the caller has (a DMTP destination
    /// checked it against the DATA commitment): a store of format 2 takes the blob digest from
    /// it instead of hashing the envelope again (`spec/storage.md` §2.1, §3).
    ///
    /// # Errors
    /// As [`Deliveries::deliver`].
    fn deliver_hashed(
        &self,
        recipient: &Mailbox,
        envelope: &Hashed,
        now: Timestamp,
    ) -> Result<Delivered, DeliveryError>;

    /// [`Deliveries::deliver`] by account id.
    ///
    /// # Errors
    /// As [`Deliveries::deliver`].
    fn deliver_to(
        &self,
        account: AccountId,
        envelope: &[u8],
        now: Timestamp,
    ) -> Result<Delivered, DeliveryError>;

    /// Delivers many envelopes in one transaction (imports, benchmarks' fill). All or none.
    ///
    /// # Errors
    /// As [`Deliveries::deliver`], for the whole batch.
    fn deliver_many(
        &self,
        account: AccountId,
        envelopes: &[&[u8]],
        now: Timestamp,
    ) -> Result<Vec<Delivered>, DeliveryError>;

    /// How many deliveries the store's durability mechanism gave back when it was opened:
    /// those acknowledged before a crash that the storage had not yet made durable
    /// (`spec/storage.md` §4.1; the redb store's delivery log). 0 for a backend whose commits
    /// are durable by themselves.
    fn replayed_deliveries(&self) -> usize;
}

/// The outbound queue and the delivery status of each entry (`spec/storage.md` §7, §7.1): an
/// entry and its status change together, in one transaction.
pub trait Queue: Send + Sync {
    /// Adds an entry queued by the account `author`, due at `now`; durable before it returns.
    /// Its status (queued) records `author`, sealed: [`DeliveryStatus::author`].
    ///
    /// # Errors
    /// [`QueueError::TooLarge`] (the payload), the backend's.
    fn enqueue(
        &self,
        rng: &mut dyn CryptoRngCore,
        transport: Transport,
        author: AccountId,
        destination: &str,
        payload: &[u8],
        now: Timestamp,
    ) -> Result<QueueId, QueueError>;

    /// [`Queue::enqueue`] once per submission key: the first call with `author`'s `key` (a
    /// client-made Message-ID) queues the entry and records its id under the key, in the same
    /// transaction; a later one (a client's retry) queues nothing and answers that id. The
    /// answer says whether the entry is new. Keys are kept as long as the statuses
    /// (`spec/storage.md` §7.4), as a tag derived with the pepper, never in clear.
    ///
    /// # Errors
    /// [`QueueError::TooLarge`] (the payload, or a key empty or over
    /// [`crate::MAX_SUBMISSION_KEY_LEN`]), the backend's.
    #[allow(clippy::too_many_arguments)]
    fn enqueue_once(
        &self,
        rng: &mut dyn CryptoRngCore,
        transport: Transport,
        author: AccountId,
        destination: &str,
        payload: &[u8],
        key: &[u8],
        now: Timestamp,
    ) -> Result<(QueueId, bool), QueueError>;

    /// The entry `author` queued under submission key `key`, if its record is kept.
    ///
    /// # Errors
    /// [`QueueError::TooLarge`] (the key), the backend's.
    fn submitted(&self, author: AccountId, key: &[u8]) -> Result<Option<QueueId>, QueueError>;

    /// Leases up to `max` entries of `transport` due at `now` for `lease_secs` seconds, in due
    /// order; the other transports' entries are not read.
    ///
    /// # Errors
    /// The backend's.
    fn lease(
        &self,
        transport: Transport,
        now: Timestamp,
        lease_secs: u64,
        max: usize,
    ) -> Result<Vec<Leased>, QueueError>;

    /// Hands back leased entries that were not tried: each is due at `now` again, not at the
    /// end of its lease (a worker that stops). An entry that is gone is skipped.
    ///
    /// # Errors
    /// The backend's.
    fn release(&self, ids: &[QueueId], now: Timestamp) -> Result<(), QueueError>;

    /// Removes an entry without recording a status (its status is pruned with the old ones);
    /// the outbound worker uses [`Queue::complete_delivered`], [`Queue::complete_failed`] or
    /// [`Queue::complete_bounced`].
    ///
    /// # Errors
    /// [`QueueError::NoSuchEntry`], the backend's.
    fn complete(&self, id: QueueId) -> Result<(), QueueError>;

    /// Records a failed attempt, schedules the next one at `next_attempt`, and records the
    /// status deferred (`reason`, the attempts so far, the next attempt), in one transaction.
    /// Returns the attempts made so far.
    ///
    /// # Errors
    /// [`QueueError::NoSuchEntry`], the backend's.
    fn defer(
        &self,
        rng: &mut dyn CryptoRngCore,
        id: QueueId,
        next_attempt: Timestamp,
        reason: &str,
        now: Timestamp,
    ) -> Result<u32, QueueError>;

    /// Removes a delivered entry and records its status delivered with the destination's
    /// transaction id, in one transaction.
    ///
    /// # Errors
    /// [`QueueError::NoSuchEntry`], the backend's.
    fn complete_delivered(
        &self,
        rng: &mut dyn CryptoRngCore,
        id: QueueId,
        txid: &str,
        now: Timestamp,
    ) -> Result<(), QueueError>;

    /// Removes an entry that failed for good and records its status failed with `reason`, in
    /// one transaction.
    ///
    /// # Errors
    /// [`QueueError::NoSuchEntry`], the backend's.
    fn complete_failed(
        &self,
        rng: &mut dyn CryptoRngCore,
        id: QueueId,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), QueueError>;

    /// Removes an entry that failed for good, delivers `bounce` (a sealed envelope) to the
    /// inbox of `author` (a local account) and records the status bounced with `reason`, all
    /// in one transaction. When the bounce cannot be delivered nothing is written and the
    /// error is returned: record the failure with [`Queue::complete_failed`].
    ///
    /// # Errors
    /// [`QueueError::Bounce`] (no such account, over quota), [`QueueError::TooLarge`],
    /// [`QueueError::NoSuchEntry`], the backend's.
    fn complete_bounced(
        &self,
        rng: &mut dyn CryptoRngCore,
        id: QueueId,
        reason: &str,
        author: &Mailbox,
        bounce: &[u8],
        now: Timestamp,
    ) -> Result<Delivered, QueueError>;

    /// Records the outcomes of many attempts in one transaction (one durable commit), each as
    /// [`Queue::complete_delivered`], [`Queue::defer`] or [`Queue::complete_failed`] would (a
    /// bounce goes through [`Queue::complete_bounced`], which also delivers it). An entry that
    /// is gone or does not read is its own error in the answer, in the order given, and the
    /// others are recorded; for a deferred entry the answer is its attempts so far.
    ///
    /// # Errors
    /// The backend's, for the whole batch: then nothing of it is recorded.
    #[allow(clippy::type_complexity)]
    fn settle_all(
        &self,
        rng: &mut dyn CryptoRngCore,
        outcomes: &[(QueueId, Settlement)],
        now: Timestamp,
    ) -> Result<Vec<Result<u32, QueueError>>, QueueError>;

    /// Up to `max` queue entries with ids above `after`, in id order, each with its schedule
    /// and status. Opens no payload.
    ///
    /// # Errors
    /// The backend's ([`crate::BackendError::Corrupt`] for a schedule record that does not read).
    fn queued(&self, after: QueueId, max: usize) -> Result<Vec<QueuedEntry>, QueueError>;

    /// The operator's hand on entry `id` (`spec/storage.md` §7.3): hold it (no lease reaches
    /// it), release a held one (due at its scheduled attempt, or `now` when that is past), or
    /// retry it at `now` (held or not). In one transaction with the check that no attempt is
    /// under way.
    ///
    /// # Errors
    /// [`QueueError::NoSuchEntry`], [`QueueError::InFlight`] (leased, its lease not ended),
    /// [`QueueError::NotHeld`] (release of an entry not held), the backend's.
    fn control(
        &self,
        id: QueueId,
        action: crate::QueueControl,
        now: Timestamp,
    ) -> Result<(), QueueError>;

    /// Makes every entry due later than `now`, neither held nor under way, due at `now`;
    /// returns how many.
    ///
    /// # Errors
    /// The backend's.
    fn flush(&self, now: Timestamp) -> Result<usize, QueueError>;

    /// Entry `id` with its payload, opened, without leasing it.
    ///
    /// # Errors
    /// [`QueueError::NoSuchEntry`], the backend's ([`crate::BackendError::Corrupt`]).
    fn entry(&self, id: QueueId) -> Result<OutboundEntry, QueueError>;

    /// Every queue entry, in id order.
    ///
    /// # Errors
    /// The backend's.
    fn queue_entries(&self) -> Result<Vec<OutboundEntry>, QueueError>;

    /// The delivery status of queue entry `id`, if it has one (pruned statuses are gone). A
    /// corrupt record is quarantined and reported as [`crate::BackendError::Corrupt`].
    ///
    /// # Errors
    /// The backend's.
    fn delivery_status(&self, id: QueueId) -> Result<Option<DeliveryStatus>, QueueError>;

    /// Up to `max` delivery statuses written at or after `since`, oldest change first. Corrupt
    /// records are quarantined and left out.
    ///
    /// # Errors
    /// The backend's.
    fn delivery_statuses(
        &self,
        since: Timestamp,
        max: usize,
    ) -> Result<Vec<DeliveryStatus>, QueueError>;

    /// Removes the statuses last written before `before` whose entries are complete
    /// (delivered, failed, bounced), and those of entries no longer in the queue. Returns how
    /// many were removed. Writes nothing when there is nothing to remove.
    ///
    /// # Errors
    /// The backend's.
    fn prune_delivery_statuses(&self, before: Timestamp) -> Result<usize, QueueError>;
}

/// The key resolver's signet pins (`spec/storage.md` §7.2): an opaque record per address.
pub trait Pins: Send + Sync {
    /// The pin record of `address`, if one was stored. A record that does not open is
    /// quarantined and reported as [`crate::BackendError::Corrupt`].
    ///
    /// # Errors
    /// The backend's.
    fn pin(&self, address: &Mailbox) -> Result<Option<Vec<u8>>, PinError>;

    /// Replaces the pin record of `address`; durable before it returns.
    ///
    /// # Errors
    /// [`PinError::TooLarge`] (over [`crate::MAX_PIN_LEN`]), the backend's.
    fn set_pin(
        &self,
        rng: &mut dyn CryptoRngCore,
        address: &Mailbox,
        record: &[u8],
    ) -> Result<(), PinError>;
}

/// Account export and import (`spec/storage.md` §8): a portable archive, still encrypted.
pub trait Archive: Send + Sync {
    /// Exports the session's account to an archive sealed under `archive_password`.
    ///
    /// # Errors
    /// [`ArchiveError::SessionExpired`], the backend's.
    fn export(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        archive_password: &[u8],
        now: Timestamp,
    ) -> Result<Vec<u8>, ArchiveError> {
        self.export_with_progress(rng, s, archive_password, now, &mut |_, _| {})
    }

    /// [`Archive::export`], calling `progress(records done, records total)` as it goes.
    ///
    /// # Errors
    /// As [`Archive::export`].
    fn export_with_progress(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        archive_password: &[u8],
        now: Timestamp,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Vec<u8>, ArchiveError>;

    /// Imports an archive made by [`Archive::export`] (here or on another server), protected
    /// by `archive_password`; the account's login password becomes `new_password` and its
    /// recovery is none. Returns the account and its address.
    ///
    /// # Errors
    /// [`ArchiveError::Refused`] (malformed, or the wrong password),
    /// [`ArchiveError::AccountExists`], [`ArchiveError::HostileParams`], the backend's.
    fn import(
        &self,
        rng: &mut dyn CryptoRngCore,
        archive: &[u8],
        archive_password: &[u8],
        new_password: &[u8],
        now: Timestamp,
    ) -> Result<(AccountId, Mailbox), ArchiveError> {
        self.import_with_progress(
            rng,
            archive,
            archive_password,
            new_password,
            None,
            now,
            &mut |_, _| {},
        )
    }

    /// Imports an archive as an account of this host (`spec/storage.md` §8.3): its address is
    /// `target.address`, else the archive's, and must be of `target.domain`; the account gets
    /// a new generation of keys in a user signet signed by `target.org`, with a custody
    /// signature by its keys of the host it moved from, and keeps its earlier signets and,
    /// when the address changed, the former one.
    ///
    /// # Errors
    /// As [`Archive::import`]; [`ArchiveError::Refused`] for an address outside
    /// `target.domain`.
    fn import_to(
        &self,
        rng: &mut dyn CryptoRngCore,
        archive: &[u8],
        archive_password: &[u8],
        new_password: &[u8],
        target: &crate::ImportTarget<'_>,
        now: Timestamp,
    ) -> Result<(AccountId, Mailbox), ArchiveError> {
        self.import_with_progress(
            rng,
            archive,
            archive_password,
            new_password,
            Some(target),
            now,
            &mut |_, _| {},
        )
    }

    /// The address an archive holds, when `archive_password` opens it (the whole archive is
    /// checked, nothing is written): a caller asks for the rest only then.
    ///
    /// # Errors
    /// As [`Archive::import`].
    fn archive_address(
        &self,
        archive: &[u8],
        archive_password: &[u8],
    ) -> Result<Mailbox, ArchiveError>;

    /// [`Archive::import`] (`target` none) or [`Archive::import_to`], calling
    /// `progress(records checked, records total)` as it goes.
    ///
    /// # Errors
    /// As [`Archive::import`].
    #[allow(clippy::too_many_arguments)]
    fn import_with_progress(
        &self,
        rng: &mut dyn CryptoRngCore,
        archive: &[u8],
        archive_password: &[u8],
        new_password: &[u8],
        target: Option<&crate::ImportTarget<'_>>,
        now: Timestamp,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(AccountId, Mailbox), ArchiveError>;
}

/// Every facet: what the mail server needs of one store handle. Implemented for every type
/// that implements them all ([`crate::Store`]).
pub trait Facets: Accounts + Mailboxes + Deliveries + Queue + Pins + Archive {}

impl<T: Accounts + Mailboxes + Deliveries + Queue + Pins + Archive + ?Sized> Facets for T {}
