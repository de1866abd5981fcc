//! Reading mail (`spec/dimed.md` §4.3) and keeping mailboxes (flags, moves, expunges): each
//! message opened with the session's keys
//! (`spec/storage.md` §6.6) and verified, the author signatures with the author's signet (from
//! the store for this domain, else discovered; the origin's key for a trustful message) and the
//! origin signature with the origin's org signet. The signers' keys are kept for the session,
//! so a mailbox of many messages from few senders costs few lookups.
//!
//! Every message of a mailbox arrived over DMTP (or is this server's own bounce, origin-signed
//! as it was sealed): it is shown as verified only with a verified origin signature
//! (`spec/envelope.md` §7.4), and only when its addresses agree with each other and with the
//! reading account (`spec/envelope.md` §7.5); what the rules allow but a reader should know
//! (another addressee, a Bcc copy) comes as warnings.
//!
//! A message that does not open or verify is reported by its class of `spec/envelope.md` §14
//! and nothing more: a framing error names its rule ("malformed message (part-info)"), and
//! every failed key slot, tag or signature is the one "message does not authenticate".

use super::session::{SessionError, UserSession};
use super::{Directory, MailService};
use dime_core::{Domain, Fingerprint, Mailbox};
use dime_envelope::{
    ChunkType, ErrorClass, FullView, MessageKind, PartKind, SignatureState, Signatures, Unverified,
    author_signing_keys, origin_signing_keys,
};
use dime_signet::{FingerprintKind, Signet};
use dime_store::{Accounts, Archive, MailboxId, MailboxInfo, Mailboxes, Timestamp, Uid};

/// Whether a message's signatures hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every signature verified.
    Verified,
    /// They did not, or the signers' keys could not be found: why (a class of
    /// `spec/envelope.md` §14, an address rule of §7.5, or the keys not found).
    NotVerified(String),
}

/// A message in a listing: nothing of an unverified message's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its UID.
    pub uid: Uid,
    /// The sealed envelope's size, octets.
    pub size: u64,
    /// The author (as claimed, when not verified); none when the message does not open.
    pub from: Option<Mailbox>,
    /// The subject; empty when not verified.
    pub subject: String,
    /// Whether it verified.
    pub verification: Verification,
    /// Which signatures it carries and which verified (none verified when it did not).
    pub signatures: Signatures,
    /// What the reader should know of a verified message (`spec/envelope.md` §7.5).
    pub warnings: Vec<String>,
    /// Where its verification comes from, when verified.
    pub provenance: Option<Provenance>,
}

/// Where the verification of a message shown comes from (`spec/dimed.md` §4.3): the signets
/// that verified it, and whether this read checked them afresh or took them from the record
/// of an earlier check (the first read of the message, on this host or the one it moved from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// When the signatures were checked against signets looked up then: the first check of
    /// the message (or the last fresh one).
    pub recorded_at: Timestamp,
    /// The full fingerprint of the author's user signet whose key verified the author
    /// signatures; none for a trustful message (the origin's keys signed it).
    pub author_signet: Option<Fingerprint>,
    /// The full fingerprint of the origin's org signet whose key verified the origin
    /// signature.
    pub origin_signet: Fingerprint,
    /// Whether this read looked the signets up (true), or verified the signatures under the
    /// signets of the record (false).
    pub fresh: bool,
}

impl Provenance {
    /// The provenance of a check at `recorded_at` under these signets (their full
    /// fingerprints; none for a signet that is neither an org nor a user signet).
    fn of(
        p: &dime_core::crypto::CryptoProvider,
        recorded_at: Timestamp,
        author_signet: Option<&Signet>,
        origin_signet: &Signet,
        fresh: bool,
    ) -> Option<Provenance> {
        Some(Provenance {
            recorded_at,
            author_signet: match author_signet {
                Some(s) => Some(s.fingerprint(p, FingerprintKind::Full)?),
                None => None,
            },
            origin_signet: origin_signet.fingerprint(p, FingerprintKind::Full)?,
            fresh,
        })
    }
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
    /// Which signatures it carries and which verified (all, for a message shown).
    pub signatures: Signatures,
    /// What the reader should know (`spec/envelope.md` §7.5).
    pub warnings: Vec<String>,
    /// The display parts' text, joined by line ends.
    pub body: String,
    /// Where its verification comes from.
    pub provenance: Provenance,
}

/// A message whose signatures and addresses hold, and the signets that verified it.
pub(super) struct Checked {
    pub(super) view: FullView,
    pub(super) kind: MessageKind,
    signatures: Signatures,
    pub(super) warnings: Vec<String>,
    author_signet: Option<Signet>,
    origin_signet: Signet,
    recorded_at: Timestamp,
    fresh: bool,
}

impl Checked {
    fn provenance(&self, p: &dime_core::crypto::CryptoProvider) -> Option<Provenance> {
        Provenance::of(
            p,
            self.recorded_at,
            self.author_signet.as_ref(),
            &self.origin_signet,
            self.fresh,
        )
    }

    /// The record of this verification (`spec/dimed.md` §4.3).
    pub(super) fn record(&self) -> Record {
        Record {
            kind: self.kind,
            recorded_at: self.recorded_at,
            author: self.view.author.clone(),
            recipient: self.view.recipient.clone(),
            subject: subject_of(&self.view),
            warnings: self.warnings.clone(),
            author_signet: self.author_signet.clone(),
            origin_signet: self.origin_signet.clone(),
        }
    }
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
    /// It does not open or verify (the class of `spec/envelope.md` §14), its addresses break
    /// a rule of §7.5, or its signers' keys could not be found: not shown.
    #[error("message not shown: {0}")]
    NotShown(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(dime_store::MailboxError),
}

impl From<dime_store::MailboxError> for ReadError {
    fn from(e: dime_store::MailboxError) -> ReadError {
        match e {
            dime_store::MailboxError::SessionExpired => ReadError::Session(SessionError::Expired),
            dime_store::MailboxError::NoSuchMessage => ReadError::NoSuchMessage,
            dime_store::MailboxError::Unopenable(c) => ReadError::NotShown(reason(c)),
            e => ReadError::Store(e),
        }
    }
}

impl<D: Directory> MailService<D> {
    /// Every message of `mailbox`, in UID order, verified. A message checked before is shown
    /// from its record (one small record, sealed under the session's read key: no message
    /// opened, no signature checked again, no lookup); the others are opened and verified
    /// afresh, and the records of those that verify are stored afterwards, off the read path
    /// (the listing does not wait for that write).
    ///
    /// # Errors
    /// [`ReadError`] (never `NotShown`: an unverified message is listed as such).
    pub async fn list(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        now: Timestamp,
    ) -> Result<Vec<Listed>, ReadError> {
        let (listed, _) = self.list_recording(session, mailbox, now).await?;
        Ok(listed)
    }

    /// [`MailService::list`], and the write of the records it made (to wait for).
    async fn list_recording(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        now: Timestamp,
    ) -> Result<(Vec<Listed>, Option<tokio::task::JoinHandle<()>>), ReadError> {
        let keys = session.keys(now)?;
        let entries = crate::in_place(|| self.store.list_summaries(keys, mailbox, now))?;
        let mut out = Vec::with_capacity(entries.len());
        let mut made: Vec<(Uid, Vec<u8>)> = Vec::new();
        let former = self.former(session);
        for (e, summary) in entries {
            if let Some(mut r) = summary.as_deref().and_then(|b| decode_record(b)) {
                let provenance = r.provenance(self.provider);
                // The address rules as they stand now: mail to the address this account had
                // before it moved (the record made there does not say so).
                if let Some(w) = moved_warning(&r.recipient, session.address(), &former)
                    && !r.warnings.contains(&w)
                {
                    r.warnings.insert(0, w);
                }
                out.push(Listed {
                    uid: e.uid,
                    size: e.size,
                    from: Some(r.author),
                    subject: r.subject,
                    verification: Verification::Verified,
                    signatures: ALL_VERIFIED,
                    warnings: r.warnings,
                    provenance,
                });
                continue;
            }
            let keys = session.keys(now)?;
            let opened = match crate::in_place(|| {
                self.store.open_message_uncached(keys, mailbox, e.uid, now)
            }) {
                Ok(o) => o.message,
                // Listed by its class (§14), with what its structure carries; the other
                // messages are listed all the same.
                Err(dime_store::MailboxError::Unopenable(class)) => {
                    out.push(Listed {
                        uid: e.uid,
                        size: e.size,
                        from: None,
                        subject: String::new(),
                        verification: Verification::NotVerified(reason(class)),
                        signatures: self.carried(session, mailbox, e.uid),
                        warnings: Vec::new(),
                        provenance: None,
                    });
                    continue;
                }
                Err(err) => return Err(err.into()),
            };
            let author = opened.claimed_author().clone();
            let present = opened.signatures();
            out.push(match self.verify_fresh(session, opened, None, now).await {
                Ok(c) => {
                    made.push((e.uid, encode_record(&c.record())));
                    let provenance = c.provenance(self.provider);
                    Listed {
                        uid: e.uid,
                        size: e.size,
                        subject: subject_of(&c.view),
                        from: Some(c.view.author),
                        verification: Verification::Verified,
                        signatures: c.signatures,
                        warnings: c.warnings,
                        provenance,
                    }
                }
                Err(why) => Listed {
                    uid: e.uid,
                    size: e.size,
                    from: Some(author),
                    subject: String::new(),
                    verification: Verification::NotVerified(why),
                    signatures: present,
                    warnings: Vec::new(),
                    provenance: None,
                },
            });
        }
        let written = self.keep_records(session, mailbox, &made, now)?;
        Ok((out, written))
    }

    /// An archive of the session's account (`spec/storage.md` §8) that another host reads
    /// with its provenance: every message of every mailbox is verified first (those without a
    /// record, afresh), so that the archive carries the record of each message that verifies
    /// here, with the signets that verified it.
    ///
    /// # Errors
    /// [`ExportError`].
    pub async fn export(
        &self,
        session: &mut UserSession,
        archive_password: &[u8],
        now: Timestamp,
    ) -> Result<Vec<u8>, ExportError> {
        for m in self.mailboxes(session, now).map_err(|e| ExportError::Mail(e.to_string()))? {
            let (_, written) = self.list_recording(session, m.id, now).await?;
            if let Some(w) = written {
                w.await.map_err(|_| ExportError::Mail("records not stored".into()))?;
            }
        }
        let keys = session.keys(now)?;
        crate::in_place(|| self.store.export(&mut rand_core::OsRng, keys, archive_password, now))
            .map_err(ExportError::Archive)
    }

    /// Seals `records` in the session and stores them off the read path (the caller does
    /// not wait for the write; a record not stored is made again at the next read).
    pub(super) fn keep_records(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        records: &[(Uid, Vec<u8>)],
        now: Timestamp,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, ReadError> {
        if records.is_empty() {
            return Ok(None);
        }
        let items: Vec<(Uid, &[u8])> = records.iter().map(|(u, b)| (*u, b.as_slice())).collect();
        let keys = session.keys(now)?;
        let sealed =
            self.store.seal_summaries(&mut rand_core::OsRng, keys, mailbox, &items, now)?;
        let store = std::sync::Arc::clone(&self.store);
        Ok(Some(tokio::task::spawn_blocking(move || {
            if let Err(e) = store.put_summaries(&sealed) {
                tracing::warn!(error = %e, "verification records not stored");
            }
        })))
    }

    /// The message `uid` of `mailbox`, when it verifies: under the signets its record names
    /// when it has one (a key rotation or a move since does not matter), else afresh, and
    /// then its record is kept.
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
        self.read_checked(session, mailbox, uid, now, false).await
    }

    /// The message `uid` of `mailbox`, verified afresh (`spec/dimed.md` §4.3): the signers'
    /// signets looked up now, the author's chain of custody walked from the signet its record
    /// names (`spec/envelope.md` §7.6); when it verifies, its record is replaced.
    ///
    /// # Errors
    /// [`ReadError`].
    pub async fn recheck(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<ReadMessage, ReadError> {
        self.read_checked(session, mailbox, uid, now, true).await
    }

    /// [`MailService::read`], or with `recheck` [`MailService::recheck`].
    async fn read_checked(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        uid: Uid,
        now: Timestamp,
        recheck: bool,
    ) -> Result<ReadMessage, ReadError> {
        let keys = session.keys(now)?;
        let record = crate::in_place(|| self.store.summary(keys, mailbox, uid, now))?;
        let opened = self.open(session, mailbox, uid, now)?;
        let record = record.as_deref().and_then(|b| decode_record(b)).filter(|r| r.is_of(&opened));
        let checked = match record {
            Some(r) if !recheck => {
                self.verify_recorded(session, opened, &r).map_err(ReadError::NotShown)?
            }
            r => {
                let from = r.and_then(|r| r.author_signet);
                let c = self
                    .verify_fresh(session, opened, from.as_ref(), now)
                    .await
                    .map_err(ReadError::NotShown)?;
                drop(self.keep_records(
                    session,
                    mailbox,
                    &[(uid, encode_record(&c.record()))],
                    now,
                )?);
                c
            }
        };
        self.shown(checked)
    }

    fn shown(&self, c: Checked) -> Result<ReadMessage, ReadError> {
        // A signet without a full fingerprint is neither an org nor a user signet: it verified
        // nothing.
        let provenance = c
            .provenance(self.provider)
            .ok_or(ReadError::NotShown(reason(ErrorClass::Unauthentic)))?;
        let body = c
            .view
            .message
            .parts
            .iter()
            .filter(|p| p.kind == PartKind::Display)
            .map(|p| String::from_utf8_lossy(&p.data).into_owned())
            .collect::<Vec<_>>()
            .join("\n");
        Ok(ReadMessage {
            subject: subject_of(&c.view),
            from: c.view.author,
            to: c.view.recipient,
            origin: c.view.origin,
            kind: c.kind,
            signatures: c.signatures,
            warnings: c.warnings,
            body,
            provenance,
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
        let opened = crate::in_place(|| self.store.open_message_uncached(keys, mailbox, uid, now))?;
        Ok(opened.message)
    }

    /// Verifies a message of a mailbox (`spec/envelope.md` §7.4, §7.5) afresh: the origin's
    /// current org signet, the author's chain of custody (from the store's directory for our
    /// domain; else the current signet, with the domain's history after `from`, a signet a
    /// record names); its view, its signatures, the signets that verified it, and the
    /// warnings, when every signature holds (the origin's included: the message arrived over
    /// DMTP) and its addresses agree; else why not.
    pub(super) async fn verify_fresh(
        &self,
        session: &mut UserSession,
        m: Unverified<FullView>,
        from: Option<&Signet>,
        now: Timestamp,
    ) -> Result<Checked, String> {
        let kind = m.kind();
        let (author, origin) = (m.claimed_author().clone(), m.claimed_origin().clone());
        // Refused whatever its signatures: no lookup at a domain the author cannot claim.
        author_of_origin(kind, &author, &origin)?;
        let origin_signet = self.origin_signet(session, &origin).await?;
        let origin_keys = origin_signing_keys(&origin_signet)
            .map_err(|e| unavailable(format_args!("origin keys: {e}")))?;
        let chain = match kind {
            MessageKind::Trustful => Vec::new(),
            _ => self.author_chain(session, &author, from).await?,
        };
        let author_keys = match kind {
            MessageKind::Trustful => origin_keys.clone(),
            _ => author_signing_keys(self.provider, &chain)
                .map_err(|e| unavailable(format_args!("author keys: {e}")))?,
        };
        let v = m
            .verify_delivered(self.provider, &author_keys, &origin_keys)
            .map_err(|e| reason(e.class()))?;
        let author_signet = v.author_key().and_then(|k| {
            chain.iter().rev().find(|s| s.signing_key().ok().as_ref() == Some(k)).cloned()
        });
        let signatures = v.signatures();
        let view = v.into_view();
        let former = self.former(session);
        let warnings = address_rules(&view, session.address(), &former)?;
        Ok(Checked {
            view,
            kind,
            signatures,
            warnings,
            author_signet: author_signet.filter(|_| kind != MessageKind::Trustful),
            origin_signet,
            recorded_at: now,
            fresh: true,
        })
    }

    /// Verifies a message under the signets its record names (no lookup): what a key
    /// rotation or a move since does not change.
    fn verify_recorded(
        &self,
        session: &mut UserSession,
        m: Unverified<FullView>,
        r: &Record,
    ) -> Result<Checked, String> {
        let origin_keys =
            origin_signing_keys(&r.origin_signet).map_err(|_| reason(ErrorClass::Unauthentic))?;
        let author_keys = match (r.kind, &r.author_signet) {
            (MessageKind::Trustful, _) => origin_keys.clone(),
            (_, Some(s)) => vec![s.signing_key().map_err(|_| reason(ErrorClass::Unauthentic))?],
            (_, None) => return Err(reason(ErrorClass::Unauthentic)),
        };
        let v = m
            .verify_delivered(self.provider, &author_keys, &origin_keys)
            .map_err(|e| reason(e.class()))?;
        let signatures = v.signatures();
        let view = v.into_view();
        let former = self.former(session);
        let warnings = address_rules(&view, session.address(), &former)?;
        Ok(Checked {
            view,
            kind: r.kind,
            signatures,
            warnings,
            author_signet: r.author_signet.clone(),
            origin_signet: r.origin_signet.clone(),
            recorded_at: r.recorded_at,
            fresh: false,
        })
    }

    /// The addresses the session's account had before it moved here (read once a session).
    fn former(&self, session: &mut UserSession) -> Vec<Mailbox> {
        if let Some(f) = &session.former {
            return f.clone();
        }
        let f = crate::in_place(|| self.store.directory(session.address()))
            .map(|d| d.former)
            .unwrap_or_default();
        session.former = Some(f.clone());
        f
    }

    /// The signatures a message that does not open carries, as far as its structure reads
    /// (`inspect`, no key): each `present` or `absent`, none verified.
    fn carried(&self, session: &UserSession, mailbox: MailboxId, uid: Uid) -> Signatures {
        let mut s = Signatures {
            author_tree: SignatureState::Absent,
            author_full: SignatureState::Absent,
            origin: SignatureState::Absent,
        };
        let Ok(blob) = crate::in_place(|| self.store.fetch(session.account(), mailbox, uid)) else {
            return s;
        };
        for c in dime_envelope::inspect(self.provider, &blob, None).chunks {
            match c.chunk_type {
                ChunkType::AuthorTreeSig => s.author_tree = SignatureState::Present,
                ChunkType::AuthorFullSig => s.author_full = SignatureState::Present,
                ChunkType::OriginSig => s.origin = SignatureState::Present,
                _ => {}
            }
        }
        s
    }

    /// The current org signet of `origin` (`spec/envelope.md` §7.6): ours, else discovered
    /// once per session.
    async fn origin_signet(
        &self,
        session: &mut UserSession,
        origin: &Domain,
    ) -> Result<Signet, String> {
        if let Some(s) = session.origin_signets.get(origin) {
            return Ok(s.clone());
        }
        let signet = if *origin == self.local.domain {
            self.local.org_signet.clone()
        } else {
            self.directory
                .org_signet(origin)
                .await
                .map_err(|e| unavailable(format_args!("origin keys: {e}")))?
        };
        session.origin_signets.insert(origin.clone(), signet.clone());
        Ok(signet)
    }

    /// The chain of custody of `author`, oldest first, the current signet last
    /// (`spec/envelope.md` §7.6): for our domain, the store's directory record (every
    /// signet the account had), and for a former address of the session's account, its own
    /// record; else the current signet, discovered once per session, and
    /// when `from` (a signet a record names) is not it, the domain's history after `from`
    /// (HIST), which must end at the current signet.
    async fn author_chain(
        &self,
        session: &mut UserSession,
        author: &Mailbox,
        from: Option<&Signet>,
    ) -> Result<Vec<Signet>, String> {
        // The account's own mail from before it moved here: its own chain, which the store
        // keeps with the signets of the host it came from (`spec/storage.md` §8.3).
        let own = self.former(session).contains(author);
        if own || author.domain() == &self.local.domain {
            if let Some(c) = session.author_chains.get(author) {
                return Ok(c.clone());
            }
            let whose = if own { session.address().clone() } else { author.clone() };
            let chain = crate::in_place(|| self.store.directory(&whose))
                .map_err(|e| unavailable(format_args!("author signet: {e}")))?
                .chain();
            session.author_chains.insert(author.clone(), chain.clone());
            return Ok(chain);
        }
        let current = match session.author_chains.get(author).and_then(|c| c.last()) {
            Some(c) => c.clone(),
            None => {
                let (c, _) = self
                    .directory
                    .user_signets(author)
                    .await
                    .map_err(|e| unavailable(format_args!("author keys: {e}")))?;
                session.author_chains.insert(author.clone(), vec![c.clone()]);
                c
            }
        };
        let Some(from) = from.filter(|f| **f != current) else {
            return Ok(vec![current]);
        };
        let Some(since) = from.fingerprint(self.provider, FingerprintKind::Crypto) else {
            return Ok(vec![current]);
        };
        let history = self
            .directory
            .user_history(author, &since)
            .await
            .map_err(|e| unavailable(format_args!("author history: {e}")))?;
        if history.last() != Some(&current) {
            return Ok(vec![current]);
        }
        Ok(std::iter::once(from.clone()).chain(history).collect())
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The session ended.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// Verifying the mailboxes failed.
    #[error("mail: {0}")]
    Mail(String),
    /// The store could not make the archive.
    #[error("archive: {0}")]
    Archive(dime_store::ArchiveError),
}

impl From<ReadError> for ExportError {
    fn from(e: ReadError) -> ExportError {
        match e {
            ReadError::Session(s) => ExportError::Session(s),
            e => ExportError::Mail(e.to_string()),
        }
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

/// The signatures of every message shown as verified (only such messages get a summary).
const ALL_VERIFIED: Signatures = Signatures {
    author_tree: SignatureState::Verified,
    author_full: SignatureState::Verified,
    origin: SignatureState::Verified,
};

/// The record version this code writes (`spec/dimed.md` §4.3); a summary of another version
/// (1: before the origin signature was required and the address rules; 2: without the signets
/// that verified it) is as good as none: the message is verified afresh at its next read.
const RECORD_VERSION: u8 = 3;

/// The signatures octet of a record: bit 0 author tree, bit 1 author full, bit 2 origin, each
/// set when verified.
fn signatures_octet(s: Signatures) -> u8 {
    [s.author_tree, s.author_full, s.origin]
        .iter()
        .enumerate()
        .filter(|(_, st)| **st == SignatureState::Verified)
        .fold(0, |acc, (i, _)| acc | (1 << i))
}

/// The record of a message's verification (`spec/dimed.md` §4.3), sealed beside it under the
/// account's read key (`spec/storage.md` §6.7): what a listing shows, and the signets a later
/// read verifies it under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) kind: MessageKind,
    pub(super) recorded_at: Timestamp,
    pub(super) author: Mailbox,
    /// The recipient mailbox the message was delivered to.
    pub(super) recipient: Mailbox,
    pub(super) subject: String,
    pub(super) warnings: Vec<String>,
    /// The author's user signet whose key verified the author signatures (none for a
    /// trustful message).
    pub(super) author_signet: Option<Signet>,
    /// The origin's org signet whose keys verified the origin signature.
    pub(super) origin_signet: Signet,
}

impl Record {
    /// Whether the record is of message `m` as it opens: its kind and author.
    pub(super) fn is_of(&self, m: &Unverified<FullView>) -> bool {
        self.is_of_view(m.kind(), m.claimed_author())
    }

    /// [`Record::is_of`] of a message opened for display only.
    pub(super) fn is_of_view(&self, kind: MessageKind, author: &Mailbox) -> bool {
        self.kind == kind && &self.author == author
    }

    fn provenance(&self, p: &dime_core::crypto::CryptoProvider) -> Option<Provenance> {
        Provenance::of(p, self.recorded_at, self.author_signet.as_ref(), &self.origin_signet, false)
    }
}

/// A record (`spec/dimed.md` §4.3): u8 version 3, u8 kind (1 authored, 2 trustful), u8
/// signatures verified (bit 0 author tree, bit 1 author full, bit 2 origin: all three set),
/// u64 the time of the check (seconds since the Unix epoch), the author's address, the
/// recipient's and the subject, u8 count and that many warnings, then the author's user signet (empty for a
/// trustful message) and the origin's org signet, each string and signet u32-length-prefixed.
pub(super) fn encode_record(r: &Record) -> Vec<u8> {
    let author = r.author.to_string();
    let author_signet = r.author_signet.as_ref().map(Signet::to_bytes).unwrap_or_default();
    let origin_signet = r.origin_signet.to_bytes();
    let mut out = Vec::with_capacity(
        32 + author.len() + r.subject.len() + author_signet.len() + origin_signet.len(),
    );
    out.extend_from_slice(&[RECORD_VERSION, r.kind.code(), signatures_octet(ALL_VERIFIED)]);
    out.extend_from_slice(&r.recorded_at.0.to_be_bytes());
    let string = |out: &mut Vec<u8>, s: &[u8]| {
        out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(s);
    };
    string(&mut out, author.as_bytes());
    string(&mut out, r.recipient.to_string().as_bytes());
    string(&mut out, r.subject.as_bytes());
    let warnings = r.warnings.get(..usize::from(u8::MAX)).unwrap_or(&r.warnings);
    out.push(u8::try_from(warnings.len()).unwrap_or(u8::MAX));
    for w in warnings {
        string(&mut out, w.as_bytes());
    }
    string(&mut out, &author_signet);
    string(&mut out, &origin_signet);
    out
}

/// A record, if it reads as version 3 with every signature verified.
pub(super) fn decode_record(b: &[u8]) -> Option<Record> {
    let [RECORD_VERSION, kind, sigs, rest @ ..] = b else { return None };
    let kind = MessageKind::from_code(*kind)?;
    (*sigs == signatures_octet(ALL_VERIFIED)).then_some(())?;
    let recorded_at = Timestamp(u64::from_be_bytes(rest.get(..8)?.try_into().ok()?));
    let mut at = 8;
    let author = String::from_utf8(field(rest, &mut at)?.to_vec()).ok()?;
    let recipient = String::from_utf8(field(rest, &mut at)?.to_vec()).ok()?;
    let subject = String::from_utf8(field(rest, &mut at)?.to_vec()).ok()?;
    let count = *rest.get(at)?;
    at += 1;
    let mut warnings = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        warnings.push(String::from_utf8(field(rest, &mut at)?.to_vec()).ok()?);
    }
    let author_signet = field(rest, &mut at)?;
    let origin_signet = Signet::decode(field(rest, &mut at)?).ok()?;
    (at == rest.len()).then_some(())?;
    let author_signet = match (kind, author_signet.is_empty()) {
        (MessageKind::Trustful, true) => None,
        (MessageKind::Trustful, false) | (_, true) => return None,
        (_, false) => Some(Signet::decode(author_signet).ok()?),
    };
    Some(Record {
        kind,
        recorded_at,
        author: Mailbox::parse(&author).ok()?,
        recipient: Mailbox::parse(&recipient).ok()?,
        subject,
        warnings,
        author_signet,
        origin_signet,
    })
}

/// The u32-length-prefixed field of `b` at `at`, moving `at` past it.
fn field<'a>(b: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len = u32::from_be_bytes(b.get(*at..at.checked_add(4)?)?.try_into().ok()?) as usize;
    let start = at.checked_add(4)?;
    let v = b.get(start..start.checked_add(len)?)?;
    *at = start + len;
    Some(v)
}

/// What a reader says of a message that does not open or verify: its class's text
/// (`spec/envelope.md` §14), and for a removed origin signature why it matters
/// (`spec/dimed.md` §4.3).
pub(super) fn reason(class: ErrorClass) -> String {
    match class {
        ErrorClass::Unverified(rule @ "no-origin-signature") => unverified(
            rule,
            "no origin signature (mail delivered over DMTP carries one: it was removed)",
        ),
        c => c.to_string(),
    }
}

/// The text of a rule of `spec/envelope.md` §7.4 or §7.5 that leaves a message not verified
/// (§14: "not verified (RULE)"), with what the reader saw.
fn unverified(rule: &'static str, detail: &str) -> String {
    format!("{}: {detail}", ErrorClass::Unverified(rule))
}

/// The signers' keys could not be found: the message is not verified, and is checked again at
/// the next listing (`spec/envelope.md` §14: not a class of the message).
fn unavailable(what: impl std::fmt::Display) -> String {
    format!("signer keys unavailable: {what}")
}

/// The reader's first address rule (`spec/envelope.md` §7.5): an authored message's author is
/// of the origin domain. A trustful message's author is a legacy sender of any domain.
fn author_of_origin(kind: MessageKind, author: &Mailbox, origin: &Domain) -> Result<(), String> {
    if kind != MessageKind::Trustful && author.domain() != origin {
        return Err(unverified(
            "author-domain",
            &format!("the author {author} is not of the origin domain {origin}"),
        ));
    }
    Ok(())
}

/// The reader's other address rules (`spec/envelope.md` §7.5) for a verified message read by
/// `account`, whose addresses before it moved here were `former`: why it is refused, else its
/// warnings. Mail addressed to a former address (delivered before the move) is this
/// account's, shown with a warning that says so.
fn address_rules(
    view: &FullView,
    account: &Mailbox,
    former: &[Mailbox],
) -> Result<Vec<String>, String> {
    if view.recipient.domain() != &view.destination {
        return Err(unverified(
            "recipient-domain",
            &format!(
                "the recipient {} is not of the destination domain {}",
                view.recipient, view.destination
            ),
        ));
    }
    let moved = former.iter().find(|f| **f == view.recipient && *f != account);
    if &view.destination != account.domain() && moved.is_none() {
        return Err(unverified(
            "destination-domain",
            &format!("addressed to the domain {}, not to this account's", view.destination),
        ));
    }
    let mut warnings = Vec::new();
    if let Some(w) = moved_warning(&view.recipient, account, former) {
        warnings.push(w);
    } else if &view.recipient != account {
        warnings.push(format!("addressed to {}, not to this account", view.recipient));
    }
    let headers = &view.message.common_headers;
    let listed = headers
        .fields()
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("To") || n.eq_ignore_ascii_case("Cc"))
        .any(|(_, value)| lists(value, &view.recipient));
    if !listed {
        warnings.push(format!("{} is not in To or Cc (a Bcc copy)", view.recipient));
    }
    Ok(warnings)
}

/// The warning of mail addressed to `recipient`, an address `account` had before it moved
/// here (`former`), if it is one.
fn moved_warning(recipient: &Mailbox, account: &Mailbox, former: &[Mailbox]) -> Option<String> {
    (recipient != account && former.contains(recipient))
        .then(|| format!("addressed to {recipient}, this account's address before it moved"))
}

/// Whether a To or Cc value lists `who`: split at commas, semicolons, white space, angle
/// brackets and double quotes, one of the pieces reads as `who` (`spec/envelope.md` §7.5).
fn lists(value: &str, who: &Mailbox) -> bool {
    value
        .split(|c: char| matches!(c, ',' | ';' | '<' | '>' | '"') || c.is_whitespace())
        .filter(|t| t.contains('@'))
        .any(|t| Mailbox::parse(t).is_ok_and(|m| &m == who))
}

pub(super) fn subject_of(view: &FullView) -> String {
    view.message.common_headers.get("Subject").unwrap_or("").to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn mailbox(s: &str) -> Mailbox {
        Mailbox::parse(s).unwrap()
    }

    #[test]
    fn a_to_or_cc_value_lists_a_mailbox_by_its_address_pieces() {
        let bob = mailbox("bob@a.test");
        for yes in [
            "bob@a.test",
            "Bob <bob@a.test>",
            "\"x\" <bob@A.Test>; c@d.test",
            "a@b.test,bob@a.test",
        ] {
            assert!(lists(yes, &bob), "{yes}");
        }
        for no in ["", "Bob", "bobby@a.test", "bob@a.test.example", "BOB@a.test", "<bob@b.test>"] {
            assert!(!lists(no, &bob), "{no}");
        }
    }

    fn signets() -> (Signet, Signet) {
        let mut rng = dime_testkit::seeded_rng(7);
        let org = dime_signet::OrgKeys::generate(&mut rng);
        let p = dime_core::crypto::default_provider();
        let d = Domain::parse("a.test").unwrap();
        let org_signet =
            dime_signet::create_org_signet(p, &org, &d, &dime_signet::Profile::new()).unwrap();
        let other = dime_signet::create_org_signet(
            p,
            &dime_signet::OrgKeys::generate(&mut rng),
            &d,
            &dime_signet::Profile::new(),
        )
        .unwrap();
        (org_signet, other)
    }

    #[test]
    fn a_record_reads_back_only_as_version_3_with_every_signature_verified() {
        let alice = mailbox("alice@a.test");
        let (origin, author) = signets();
        let r = Record {
            kind: MessageKind::Authored,
            recorded_at: Timestamp(1_700_000_123),
            author: alice.clone(),
            recipient: mailbox("bob@a.test"),
            subject: "hi".into(),
            warnings: vec!["one".to_owned(), "two".to_owned()],
            author_signet: Some(author.clone()),
            origin_signet: origin.clone(),
        };
        let b = encode_record(&r);
        assert_eq!(decode_record(&b), Some(r.clone()));
        // A trustful record names no author signet; one that does, or an authored record
        // that does not, is as good as none.
        let t = Record { kind: MessageKind::Trustful, author_signet: None, ..r.clone() };
        assert_eq!(decode_record(&encode_record(&t)), Some(t.clone()));
        let bad = Record { author_signet: Some(author), ..t };
        assert_eq!(decode_record(&encode_record(&bad)), None);
        let bad = Record { author_signet: None, ..r.clone() };
        assert_eq!(decode_record(&encode_record(&bad)), None);
        // Version 2 (no time, no signets), another signatures octet, a truncation, a trailing
        // octet: none.
        let v2 = [
            &[2u8, 1, 7][..],
            &12u32.to_be_bytes(),
            b"alice@a.test",
            &2u32.to_be_bytes(),
            b"hi",
            &[0],
        ]
        .concat();
        assert_eq!(decode_record(&v2), None);
        let mut other = b.clone();
        other[2] = 3;
        assert_eq!(decode_record(&other), None);
        assert_eq!(decode_record(&b[..b.len() - 1]), None);
        assert_eq!(decode_record(&[&b[..], &[0]].concat()), None);
    }
}
