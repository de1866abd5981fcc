//! Mail as ordinary clients see it (`spec/dmap.md` §5): each message rendered as RFC 5322 in
//! memory, APPEND sealed to the user on arrival, and the mailbox operations of an IMAP
//! session (flags in bulk, expunge, copy, move, rename, subscriptions, special-use roles),
//! each telling the account's other sessions ([`super::Changes`]).
//!
//! A message is rendered from what opens with the session's keys, through the store's read
//! overlay (no X25519 after the first open), and is not verified again when its record
//! (`spec/dimed.md` §4.3) is there: the record, sealed under the account's read key, was made
//! by the first check. A message without a record is verified afresh and its record kept. One
//! that does not open or verify is rendered as a short notice saying why, never its content.

use super::mailbox::{MailboxError, ReadError, Record, decode_record, encode_record, reason};
use super::session::{SessionError, UserSession};
use super::{Directory, MailService};
use dime_envelope::{
    ActorKeys, Addressing, FullView, MessageKind, Signer, seal_message_origin_signed,
};
use dime_store::{
    Accounts, Appended, FlagsStored, MailboxId, MailboxInfo, Mailboxes, SpecialUse, Timestamp, Uid,
};
use zeroize::Zeroizing;

/// A message rendered as RFC 5322 (`spec/dmap.md` §5.2).
pub struct Rendered {
    /// The message's octets (never written anywhere in clear).
    pub bytes: Zeroizing<Vec<u8>>,
    /// Whether it is the message (true) or a notice that it could not be shown (false).
    pub shown: bool,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("len", &self.bytes.len())
            .field("shown", &self.shown)
            .finish()
    }
}

/// Why an APPEND failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The session ended.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The message cannot be sealed (a limit of `spec/envelope.md` §11).
    #[error("message refused: {0}")]
    Refused(String),
    /// The store refused it or failed (no such mailbox, over quota, too large...).
    #[error("store: {0}")]
    Store(dime_store::MailboxError),
}

impl From<dime_store::MailboxError> for AppendError {
    fn from(e: dime_store::MailboxError) -> AppendError {
        match e {
            dime_store::MailboxError::SessionExpired => AppendError::Session(SessionError::Expired),
            e => AppendError::Store(e),
        }
    }
}

impl<D: Directory> MailService<D> {
    /// Message `uid` of `mailbox` rendered as RFC 5322 (`spec/dmap.md` §5.2).
    ///
    /// # Errors
    /// [`ReadError`] (never `NotShown`: a message not shown renders as a notice).
    pub async fn render(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Rendered, ReadError> {
        // The fast way: the read overlay's keys, the record, no hashing for signatures
        // (`spec/dmap.md` §5.2).
        let key = session.display_key(now)?;
        if let Some((_, r)) =
            crate::in_place(|| self.render_recorded(&key, mailbox, &[uid], usize::MAX))?.pop()
        {
            return Ok(r);
        }
        drop(key);
        let keys = session.keys(now)?;
        let record = crate::in_place(|| self.store.summary(keys, mailbox, uid, now))?;
        let keys = session.keys(now)?;
        let opened = match crate::in_place(|| {
            self.store.open_message(&mut rand_core::OsRng, keys, mailbox, uid, now)
        }) {
            Ok(o) => o.message,
            Err(dime_store::MailboxError::Unopenable(class)) => {
                return Ok(self.notice(session, uid, &reason(class)));
            }
            Err(e) => return Err(e.into()),
        };
        let record = record.as_deref().and_then(|b| decode_record(b)).filter(|r| r.is_of(&opened));
        if let Some(r) = record {
            let view = opened.into_unverified_view();
            return Ok(Rendered { bytes: render_view(&view, &r.warnings), shown: true });
        }
        match self.verify_fresh(session, opened, None, now).await {
            Ok(c) => {
                drop(self.keep_records(
                    session,
                    mailbox,
                    &[(uid, encode_record(&c.record()))],
                    now,
                )?);
                Ok(Rendered { bytes: render_view(&c.view, &c.warnings), shown: true })
            }
            Err(why) => Ok(self.notice(session, uid, &why)),
        }
    }

    /// The fast way of [`MailService::render`] for many messages at once (`spec/dmap.md`
    /// §5.2), on the calling thread (a blocking one: several may render the parts of one FETCH
    /// at once, each with its copy of the session's [`dime_store::DisplayKey`]): each of `uids`
    /// that has a read overlay and a verification record, rendered, until `budget` octets are;
    /// the others (a message without either, one gone, those past the budget) are left out,
    /// for `render`.
    ///
    /// # Errors
    /// [`ReadError`] (the store's).
    pub fn render_recorded(
        &self,
        key: &dime_store::DisplayKey,
        mailbox: MailboxId,
        uids: &[Uid],
        budget: usize,
    ) -> Result<Vec<(Uid, Rendered)>, ReadError> {
        let shown = self.store.open_for_display_many(key, mailbox, uids, budget)?;
        let mut out = Vec::with_capacity(shown.len());
        for (uid, d) in shown {
            let Some(d) = d else { continue };
            let Some(r) = d
                .summary
                .as_deref()
                .and_then(|b| decode_record(b))
                .filter(|r| r.is_of_view(d.kind, &d.view.author))
            else {
                continue;
            };
            out.push((uid, Rendered { bytes: render_view(&d.view, &r.warnings), shown: true }));
        }
        Ok(out)
    }

    /// The notice shown in place of a message that does not open or verify.
    fn notice(&self, session: &UserSession, uid: Uid, why: &str) -> Rendered {
        let domain = &self.local.domain;
        let text = format!(
            "From: dime <postmaster@{domain}>\r\n\
             To: <{to}>\r\n\
             Subject: [dime] a message could not be shown\r\n\
             Message-ID: <not-shown.{uid}@{domain}>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             \r\n\
             This message was not shown: {why}.\r\n\
             Nothing of its content was read as genuine.\r\n",
            to = session.address(),
            uid = uid.0,
        );
        Rendered { bytes: Zeroizing::new(text.into_bytes()), shown: false }
    }

    /// Stores `raw` (RFC 5322, as an IMAP client appends it) in `mailbox`: sealed on arrival to
    /// the session's user as a trustful message of our domain (`spec/dmap.md` §5.3,
    /// `spec/envelope.md` §10), with its flags and internal date, and its record made at once;
    /// durable before this returns.
    ///
    /// # Errors
    /// [`AppendError`].
    pub fn append(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        raw: &[u8],
        flags: &[&str],
        internal_date: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Appended, AppendError> {
        session.touch(now)?;
        let p = self.provider;
        let user = session.address().clone();
        let message =
            dime_dmap::legacy_message(raw).map_err(|e| AppendError::Refused(e.to_string()))?;
        let (_, signet) = self
            .store
            .signet(&user)
            .map_err(|e| AppendError::Refused(format!("the user's signet: {e}")))?;
        let user_keys = ActorKeys::from_signet(&signet)
            .map_err(|e| AppendError::Refused(format!("the user's keys: {e}")))?;
        let org_keys = ActorKeys::from_signet(&self.local.org_signet)
            .map_err(|e| AppendError::Refused(format!("the org keys: {e}")))?;
        let addressing = Addressing {
            author: user.clone(),
            author_keys: user_keys,
            origin: self.local.domain.clone(),
            origin_keys: org_keys,
            destination: self.local.domain.clone(),
            destination_keys: org_keys,
            recipient: user.clone(),
            recipient_keys: user_keys,
        };
        let pok = self.local.keys().pok_seed();
        let sealed = crate::in_place(|| {
            seal_message_origin_signed(
                p,
                &mut rand_core::OsRng,
                &addressing,
                Signer::TrustfulServer(pok),
                pok,
                now.0,
                &message,
            )
        })
        .map_err(|e| AppendError::Refused(e.to_string()))?;
        let record = Record {
            kind: MessageKind::Trustful,
            recorded_at: now,
            author: user.clone(),
            recipient: user,
            subject: message.common_headers.get("Subject").unwrap_or("").to_owned(),
            warnings: Vec::new(),
            author_signet: None,
            origin_signet: self.local.org_signet.clone(),
        };
        let record = encode_record(&record);
        let keys = session.keys(now)?;
        let appended = crate::in_place(|| {
            self.store.append(
                &mut rand_core::OsRng,
                keys,
                mailbox,
                &sealed,
                flags,
                internal_date.unwrap_or(now),
                Some(&record),
                now,
            )
        })?;
        self.changes.changed(session.account());
        Ok(appended)
    }

    /// Every message of `mailbox`: UID, MODSEQ and flags (sorted), in UID order.
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn snapshot(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        now: Timestamp,
    ) -> Result<Vec<dime_dmap::SnapshotEntry>, MailboxError> {
        self.snapshot_of(session, mailbox, None, now)
    }

    /// [`MailService::snapshot`] of the messages of `uids` alone when given (a command that
    /// names a few messages of a large mailbox reads only theirs), in UID order; a UID gone is
    /// left out.
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn snapshot_of(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        uids: Option<&[Uid]>,
        now: Timestamp,
    ) -> Result<Vec<dime_dmap::SnapshotEntry>, MailboxError> {
        let keys = session.keys(now)?;
        let all = crate::in_place(|| match uids {
            None => self.store.flags_all(keys, mailbox, now),
            Some(u) => self.store.flags_of(keys, mailbox, u, now),
        })?;
        Ok(all
            .into_iter()
            .map(|(uid, modseq, mut flags)| {
                flags.sort();
                flags.dedup();
                dime_dmap::SnapshotEntry { uid: uid.0, modseq, flags }
            })
            .collect())
    }

    /// One mailbox's state.
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn mailbox(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        now: Timestamp,
    ) -> Result<MailboxInfo, MailboxError> {
        let keys = session.keys(now)?;
        Ok(crate::in_place(|| self.store.mailbox(keys, mailbox, now))?)
    }

    /// The entries of `mailbox` (sizes, arrival times), no secret needed.
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn entries(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        now: Timestamp,
    ) -> Result<Vec<dime_store::EntryInfo>, MailboxError> {
        session.touch(now)?;
        let a = session.account();
        Ok(crate::in_place(|| self.store.list(a, mailbox))?)
    }

    /// Sets the flags of several messages in one durable write (`spec/dmap.md` §5.5); with
    /// `unchanged_since`, messages changed after it are left and named (RFC 7162 §3.1.3).
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn store_flags(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        changes: &[(Uid, Vec<String>)],
        unchanged_since: Option<u64>,
        now: Timestamp,
    ) -> Result<FlagsStored, MailboxError> {
        let keys = session.keys(now)?;
        let stored = crate::in_place(|| {
            self.store.store_flags(
                &mut rand_core::OsRng,
                keys,
                mailbox,
                changes,
                unchanged_since,
                now,
            )
        })?;
        if !stored.applied.is_empty() {
            self.changes.changed(session.account());
        }
        Ok(stored)
    }

    /// UIDs removed from `mailbox` after `modseq` (QRESYNC), as inclusive ranges.
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn vanished_since(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        modseq: u64,
        now: Timestamp,
    ) -> Result<Vec<(Uid, Uid)>, MailboxError> {
        session.touch(now)?;
        let a = session.account();
        Ok(crate::in_place(|| self.store.vanished_ranges_since(a, mailbox, modseq))?)
    }

    /// Expunges `uids` of `mailbox` and tells the account's other sessions.
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn expunge_notify(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        uids: &[Uid],
        now: Timestamp,
    ) -> Result<usize, MailboxError> {
        let n = self.expunge(session, mailbox, uids, now)?;
        if n > 0 {
            self.changes.changed(session.account());
        }
        Ok(n)
    }

    /// Copies (or with `is_move`, moves) `uids` of `from` to `to`: (old, new) UIDs.
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn copy_notify(
        &self,
        session: &mut UserSession,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
        is_move: bool,
        now: Timestamp,
    ) -> Result<Vec<(Uid, Uid)>, MailboxError> {
        session.touch(now)?;
        let a = session.account();
        let pairs = crate::in_place(|| {
            if is_move {
                self.store.move_messages(a, from, uids, to)
            } else {
                self.store.copy(a, from, uids, to)
            }
        })?;
        if !pairs.is_empty() {
            self.changes.changed(a);
        }
        Ok(pairs)
    }

    /// Creates a mailbox with a special-use role.
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn create_mailbox_with(
        &self,
        session: &mut UserSession,
        name: &str,
        special_use: Option<SpecialUse>,
        now: Timestamp,
    ) -> Result<MailboxId, MailboxError> {
        let keys = session.keys(now)?;
        let id = crate::in_place(|| {
            self.store.create_mailbox_with(&mut rand_core::OsRng, keys, name, special_use, now)
        })?;
        self.changes.changed(session.account());
        Ok(id)
    }

    /// Deletes a mailbox and its messages.
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn delete_mailbox(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        now: Timestamp,
    ) -> Result<(), MailboxError> {
        let keys = session.keys(now)?;
        crate::in_place(|| self.store.delete_mailbox(keys, mailbox, now))?;
        self.changes.changed(session.account());
        Ok(())
    }

    /// Renames mailboxes, all or none (a hierarchy: the mailbox, then its children).
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn rename_mailbox(
        &self,
        session: &mut UserSession,
        renames: &[(MailboxId, &str)],
        now: Timestamp,
    ) -> Result<(), MailboxError> {
        let keys = session.keys(now)?;
        crate::in_place(|| self.store.rename_mailboxes(&mut rand_core::OsRng, keys, renames, now))?;
        self.changes.changed(session.account());
        Ok(())
    }

    /// Subscribes to a mailbox, or unsubscribes.
    ///
    /// # Errors
    /// [`MailboxError`].
    pub fn set_subscribed(
        &self,
        session: &mut UserSession,
        mailbox: MailboxId,
        subscribed: bool,
        now: Timestamp,
    ) -> Result<(), MailboxError> {
        let keys = session.keys(now)?;
        crate::in_place(|| {
            self.store.set_subscribed(&mut rand_core::OsRng, keys, mailbox, subscribed, now)
        })?;
        Ok(())
    }
}

/// A verified message rendered (`spec/dmap.md` §5.2): a line `X-Dime-Warning` for each
/// warning of its verification, then the message.
fn render_view(view: &FullView, warnings: &[String]) -> Zeroizing<Vec<u8>> {
    let body = dime_dmap::render_message(&view.message);
    if warnings.is_empty() {
        return body;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() + 128));
    for w in warnings {
        out.extend_from_slice(b"X-Dime-Warning: ");
        out.extend(w.bytes().filter(|b| !b.is_ascii_control()));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&body);
    out
}
