//! Reading mail (`spec/dimed.md` §4.3): each message opened with the session's keys
//! (`spec/storage.md` §6.6) and verified, the author signatures with the author's signet (from
//! the store for this domain, else discovered; the origin's key for a trustful message) and the
//! origin signature with the origin's org signet. The signers' keys are kept for the session,
//! so a mailbox of many messages from few senders costs few lookups.

use super::session::{SessionError, UserSession};
use super::{Directory, MailService};
use dime_core::crypto::Ed25519PublicKey;
use dime_core::{Domain, Mailbox};
use dime_envelope::{FullView, MessageKind, PartKind, Unverified};
use dime_store::{MailboxId, StoreError, Timestamp, Uid};

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
    Store(StoreError),
}

impl From<StoreError> for ReadError {
    fn from(e: StoreError) -> ReadError {
        match e {
            StoreError::SessionExpired => ReadError::Session(SessionError::Expired),
            StoreError::NoSuchMessage => ReadError::NoSuchMessage,
            e => ReadError::Store(e),
        }
    }
}

impl<D: Directory> MailService<D> {
    /// Every message of `mailbox`, in UID order, verified.
    ///
    /// # Errors
    /// [`ReadError`] (never `NotShown`: an unverified message is listed as such).
    pub async fn list(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        now: Timestamp,
    ) -> Result<Vec<Listed>, ReadError> {
        session.touch(now)?;
        let entries = crate::in_place(|| self.store.list(session.account(), mailbox))?;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let opened = self.open(session, mailbox, e.uid, now)?;
            let author = opened.claimed_author().clone();
            out.push(match self.verify(session, opened).await {
                Ok((view, _)) => Listed {
                    uid: e.uid,
                    size: e.size,
                    subject: subject_of(&view),
                    from: view.author,
                    verification: Verification::Verified,
                },
                Err(why) => Listed {
                    uid: e.uid,
                    size: e.size,
                    from: author,
                    subject: String::new(),
                    verification: Verification::NotVerified(why),
                },
            });
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
        let opened = crate::in_place(|| {
            self.store.open_message(&mut rand_core::OsRng, keys, mailbox, uid, now)
        })?;
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

fn subject_of(view: &FullView) -> String {
    view.message.common_headers.get("Subject").unwrap_or("").to_owned()
}
