//! Reading mail (`spec/dimed.md` §4.3) and keeping mailboxes (flags, moves, expunges): each
//! message opened with the session's keys
//! (`spec/storage.md` §6.6) and verified, the author signatures with the author's signet (from
//! the store for this domain, else discovered; the origin's key for a trustful message) and the
//! origin signature with the origin's org signet. The signers' keys are kept for the session,
//! so a mailbox of many messages from few senders costs few lookups.

use super::session::{SessionError, UserSession};
use super::{Directory, MailService};
use dime_core::crypto::Ed25519PublicKey;
use dime_core::{Domain, Mailbox};
use dime_envelope::{FullView, MessageKind, PartKind, Unverified};
use dime_store::{Accounts, MailboxId, MailboxInfo, Mailboxes, Timestamp, Uid};

/// Whether a message's signatures hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every signature verified.
    Verified,
    /// They did not, or the signers' keys could not be found: why.
    NotVerified(String),
}

/// A message in a listing: nothing of an unverified message's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its UID.
    pub uid: Uid,
    /// The sealed envelope's size, octets.
    pub size: u64,
    /// The author (as claimed, when not verified).
    pub from: Mailbox,
    /// The subject; empty when not verified.
    pub subject: String,
    /// Whether it verified.
    pub verification: Verification,
}

/// A message as read: only a verified one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadMessage {
    /// The author.
    pub from: Mailbox,
    /// The recipient.
    pub to: Mailbox,
    /// The origin domain.
    pub origin: Domain,
    /// The subject.
    pub subject: String,
    /// Authored, or trustful (signed by the origin server for a legacy sender).
    pub kind: MessageKind,
    /// The display parts' text, joined by line ends.
    pub body: String,
}

/// Why a message was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The session ended.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// No message with that UID.
    #[error("no such message")]
    NoSuchMessage,
    /// It does not verify (or its signers' keys could not be found): not shown.
    #[error("message not shown: {0}")]
    NotShown(String),
    /// The store failed (or the message does not open with the user's keys).
    #[error("store: {0}")]
    Store(dime_store::MailboxError),
}

impl From<dime_store::MailboxError> for ReadError {
    fn from(e: dime_store::MailboxError) -> ReadError {
        match e {
            dime_store::MailboxError::SessionExpired => ReadError::Session(SessionError::Expired),
            dime_store::MailboxError::NoSuchMessage => ReadError::NoSuchMessage,
            e => ReadError::Store(e),
        }
    }
}

impl<D: Directory> MailService<D> {
    /// Every message of `mailbox`, in UID order, verified. A message listed before is shown
    /// from its summary (one small record, sealed under the session's read key: no message
    /// opened, no signature checked again, no lookup); the others are opened and verified, and
    /// the summaries of those that verify are stored afterwards, off the read path (the listing
    /// does not wait for that write).
    ///
    /// # Errors
    /// [`ReadError`] (never `NotShown`: an unverified message is listed as such).
    pub async fn list(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        now: Timestamp,
    ) -> Result<Vec<Listed>, ReadError> {
        let keys = session.keys(now)?;
        let entries = crate::in_place(|| self.store.list_summaries(keys, mailbox, now))?;
        let mut out = Vec::with_capacity(entries.len());
        let mut made: Vec<(Uid, Vec<u8>)> = Vec::new();
        for (e, summary) in entries {
            if let Some((from, subject)) = summary.as_deref().and_then(|b| decode_summary(b)) {
                let verification = Verification::Verified;
                out.push(Listed { uid: e.uid, size: e.size, from, subject, verification });
                continue;
            }
            let keys = session.keys(now)?;
            let opened =
                crate::in_place(|| self.store.open_message_uncached(keys, mailbox, e.uid, now))?
                    .message;
            let author = opened.claimed_author().clone();
            out.push(match self.verify(session, opened).await {
                Ok((view, kind)) => {
                    let subject = subject_of(&view);
                    made.push((e.uid, encode_summary(kind, &view.author, &subject)));
                    let verification = Verification::Verified;
                    Listed { uid: e.uid, size: e.size, from: view.author, subject, verification }
                }
                Err(why) => Listed {
                    uid: e.uid,
                    size: e.size,
                    from: author,
                    subject: String::new(),
                    verification: Verification::NotVerified(why),
                },
            });
        }
        if !made.is_empty() {
            let items: Vec<(Uid, &[u8])> = made.iter().map(|(u, b)| (*u, b.as_slice())).collect();
            let keys = session.keys(now)?;
            let sealed =
                self.store.seal_summaries(&mut rand_core::OsRng, keys, mailbox, &items, now)?;
            let store = std::sync::Arc::clone(&self.store);
            drop(tokio::task::spawn_blocking(move || {
                if let Err(e) = store.put_summaries(&sealed) {
                    tracing::warn!(error = %e, "message summaries not stored");
                }
            }));
        }
        Ok(out)
    }

    /// The message `uid` of `mailbox`, when it verifies.
    ///
    /// # Errors
    /// [`ReadError`].
    pub async fn read(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<ReadMessage, ReadError> {
        let opened = self.open(session, mailbox, uid, now)?;
        let (view, kind) = self.verify(session, opened).await.map_err(ReadError::NotShown)?;
        let body = view
            .message
            .parts
            .iter()
            .filter(|p| p.kind == PartKind::Display)
            .map(|p| String::from_utf8_lossy(&p.data).into_owned())
            .collect::<Vec<_>>()
            .join("\n");
        Ok(ReadMessage {
            subject: subject_of(&view),
            from: view.author,
            to: view.recipient,
            origin: view.origin,
            kind,
            body,
        })
    }

    fn open(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Unverified<FullView>, ReadError> {
        let keys = session.keys(now)?;
        // A read writes nothing: the store's read overlay would save one X25519 (tens of
        // microseconds) on the next open of this message at the cost of a durable commit now.
        let opened =
            crate::in_place(|| self.store.open_message_uncached(keys, mailbox, uid, now))?;
        Ok(opened.message)
    }

    /// Verifies a message: its view when every signature holds, else why not.
    async fn verify(
        &self,
        session: &mut UserSession,
        m: Unverified<FullView>,
    ) -> Result<(FullView, MessageKind), String> {
        let kind = m.kind();
        let (author, origin) = (m.claimed_author().clone(), m.claimed_origin().clone());
        let origin_key = self.origin_key(session, &origin).await?;
        let author_key = match kind {
            MessageKind::Trustful => origin_key,
            _ => self.author_key(session, &author).await?,
        };
        let origin_key = m.origin_signed().then_some(origin_key);
        m.verify(self.provider, &author_key, origin_key.as_ref())
            .map(|v| (v.into_view(), kind))
            .map_err(|_| "signatures do not verify".to_owned())
    }

    /// The signing key of `origin`'s organisation: ours, else discovered once per session.
    async fn origin_key(
        &self,
        session: &mut UserSession,
        origin: &Domain,
    ) -> Result<Ed25519PublicKey, String> {
        if *origin == self.local.domain {
            return Ok(self.local.keys().pok(self.provider));
        }
        if let Some(k) = session.origin_keys.get(origin) {
            return Ok(*k);
        }
        let signet =
            self.directory.org_signet(origin).await.map_err(|e| format!("origin keys: {e}"))?;
        let key = signet.signing_key().map_err(|e| format!("origin key: {e}"))?;
        session.origin_keys.insert(origin.clone(), key);
        Ok(key)
    }

    /// The signing key of `author`'s current signet: from the store for our domain, else
    /// discovered once per session.
    async fn author_key(
        &self,
        session: &mut UserSession,
        author: &Mailbox,
    ) -> Result<Ed25519PublicKey, String> {
        if let Some(k) = session.author_keys.get(author) {
            return Ok(*k);
        }
        let signet = if author.domain() == &self.local.domain {
            crate::in_place(|| self.store.signet(author))
                .map_err(|e| format!("author signet: {e}"))?
                .1
        } else {
            self.directory.user_signets(author).await.map_err(|e| format!("author keys: {e}"))?.0
        };
        let key = signet.signing_key().map_err(|e| format!("author key: {e}"))?;
        session.author_keys.insert(author.clone(), key);
        Ok(key)
    }
}

/// Why a mailbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// The session ended.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// No such message or mailbox, or a name or flag the store refuses (its limits), or a
    /// store failure: the store's error.
    #[error("store: {0}")]
    Store(dime_store::MailboxError),
}

impl From<dime_store::MailboxError> for MailboxError {
    fn from(e: dime_store::MailboxError) -> MailboxError {
        match e {
            dime_store::MailboxError::SessionExpired => {
                MailboxError::Session(SessionError::Expired)
            }
            e => MailboxError::Store(e),
        }
    }
}

impl<D: Directory> MailService<D> {
    /// The session's user's mailboxes.
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn mailboxes(
        &self,
        session: &mut UserSession,
        now: Timestamp,
    ) -> Result<Vec<MailboxInfo>, MailboxError> {
        let keys = session.keys(now)?;
        Ok(crate::in_place(|| self.store.mailboxes(keys, now))?)
    }

    /// Creates a mailbox named `name`.
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn create_mailbox(
        &self,
        session: &mut UserSession,
        name: &str,
        now: Timestamp,
    ) -> Result<MailboxId, MailboxError> {
        let keys = session.keys(now)?;
        Ok(crate::in_place(|| self.store.create_mailbox(&mut rand_core::OsRng, keys, name, now))?)
    }

    /// Sets the flags of message `uid` (replacing them); returns its new MODSEQ.
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn set_flags(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        uid: Uid,
        flags: &[&str],
        now: Timestamp,
    ) -> Result<u64, MailboxError> {
        let keys = session.keys(now)?;
        Ok(crate::in_place(|| {
            self.store.set_flags(&mut rand_core::OsRng, keys, mailbox, uid, flags, now)
        })?)
    }

    /// The flags of message `uid`.
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn flags(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Vec<String>, MailboxError> {
        let keys = session.keys(now)?;
        Ok(crate::in_place(|| self.store.flags(keys, mailbox, uid, now))?)
    }

    /// Moves messages `uids` of `from` to `to`: their (old, new) UIDs.
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn move_messages(
        &self,
        session: &mut UserSession,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
        now: Timestamp,
    ) -> Result<Vec<(Uid, Uid)>, MailboxError> {
        session.touch(now)?;
        let a = session.account();
        Ok(crate::in_place(|| self.store.move_messages(a, from, uids, to))?)
    }

    /// Expunges messages `uids` of `mailbox`: how many were there.
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn expunge(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        uids: &[Uid],
        now: Timestamp,
    ) -> Result<usize, MailboxError> {
        session.touch(now)?;
        let a = session.account();
        Ok(crate::in_place(|| self.store.expunge(a, mailbox, uids))?)
    }
}

/// A summary (`spec/dimed.md` §4.3): u8 version 1, u8 kind (1 authored, 2 trustful), then the
/// author's address and the subject, each a u32-length-prefixed UTF-8 string.
fn encode_summary(kind: MessageKind, author: &Mailbox, subject: &str) -> Vec<u8> {
    let author = author.to_string();
    let mut out = Vec::with_capacity(10 + author.len() + subject.len());
    out.push(1);
    out.push(kind.code());
    for s in [author.as_bytes(), subject.as_bytes()] {
        out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(s);
    }
    out
}

/// The author and subject of a summary, if it reads.
fn decode_summary(b: &[u8]) -> Option<(Mailbox, String)> {
    let [1, kind, rest @ ..] = b else { return None };
    MessageKind::from_code(*kind)?;
    let string = |b: &[u8]| -> Option<(String, usize)> {
        let len = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let s = std::str::from_utf8(b.get(4..4usize.checked_add(len)?)?).ok()?;
        Some((s.to_owned(), 4 + len))
    };
    let (author, n) = string(rest)?;
    let (subject, m) = string(&rest[n..])?;
    (n + m == rest.len()).then_some(())?;
    Some((Mailbox::parse(&author).ok()?, subject))
}

fn subject_of(view: &FullView) -> String {
    view.message.common_headers.get("Subject").unwrap_or("").to_owned()
}
