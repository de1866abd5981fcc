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
use dime_core::crypto::Ed25519PublicKey;
use dime_core::{Domain, Mailbox};
use dime_envelope::{
    ChunkType, ErrorClass, FullView, MessageKind, PartKind, SignatureState, Signatures, Unverified,
    origin_signing_keys,
};
use dime_store::{Accounts, MailboxId, MailboxInfo, Mailboxes, Timestamp, Uid};

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
}

/// A message whose signatures and addresses hold.
struct Checked {
    view: FullView,
    kind: MessageKind,
    signatures: Signatures,
    warnings: Vec<String>,
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
            if let Some(s) = summary.as_deref().and_then(|b| decode_summary(b)) {
                out.push(Listed {
                    uid: e.uid,
                    size: e.size,
                    from: Some(s.author),
                    subject: s.subject,
                    verification: Verification::Verified,
                    signatures: ALL_VERIFIED,
                    warnings: s.warnings,
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
                    });
                    continue;
                }
                Err(err) => return Err(err.into()),
            };
            let author = opened.claimed_author().clone();
            let present = opened.signatures();
            out.push(match self.verify(session, opened).await {
                Ok(c) => {
                    let subject = subject_of(&c.view);
                    made.push((
                        e.uid,
                        encode_summary(c.kind, c.signatures, &c.view.author, &subject, &c.warnings),
                    ));
                    Listed {
                        uid: e.uid,
                        size: e.size,
                        from: Some(c.view.author),
                        subject,
                        verification: Verification::Verified,
                        signatures: c.signatures,
                        warnings: c.warnings,
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
        let Checked { view, kind, signatures, warnings } =
            self.verify(session, opened).await.map_err(ReadError::NotShown)?;
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
            signatures,
            warnings,
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
        let opened = crate::in_place(|| self.store.open_message_uncached(keys, mailbox, uid, now))?;
        Ok(opened.message)
    }

    /// Verifies a message of a mailbox (`spec/envelope.md` §7.4, §7.5): its view, its
    /// signatures and the warnings when every signature holds (the origin's included: the
    /// message arrived over DMTP) and its addresses agree, else why not.
    async fn verify(
        &self,
        session: &mut UserSession,
        m: Unverified<FullView>,
    ) -> Result<Checked, String> {
        let kind = m.kind();
        let (author, origin) = (m.claimed_author().clone(), m.claimed_origin().clone());
        // Refused whatever its signatures: no lookup at a domain the author cannot claim.
        author_of_origin(kind, &author, &origin)?;
        let origin_keys = self.origin_keys(session, &origin).await?;
        let author_keys = match kind {
            MessageKind::Trustful => origin_keys.clone(),
            _ => vec![self.author_key(session, &author).await?],
        };
        let v = m
            .verify_delivered(self.provider, &author_keys, &origin_keys)
            .map_err(|e| reason(e.class()))?;
        let signatures = v.signatures();
        let view = v.into_view();
        let warnings = address_rules(&view, session.address())?;
        Ok(Checked { view, kind, signatures, warnings })
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

    /// The message-signing keys of `origin`'s organisation (`spec/envelope.md` §7.6): ours,
    /// else discovered once per session.
    async fn origin_keys(
        &self,
        session: &mut UserSession,
        origin: &Domain,
    ) -> Result<Vec<Ed25519PublicKey>, String> {
        if let Some(k) = session.origin_keys.get(origin) {
            return Ok(k.clone());
        }
        if *origin == self.local.domain {
            let keys = origin_signing_keys(&self.local.org_signet)
                .map_err(|e| unavailable(format_args!("origin keys: {e}")))?;
            session.origin_keys.insert(origin.clone(), keys.clone());
            return Ok(keys);
        }
        let signet = self
            .directory
            .org_signet(origin)
            .await
            .map_err(|e| unavailable(format_args!("origin keys: {e}")))?;
        let keys = origin_signing_keys(&signet)
            .map_err(|e| unavailable(format_args!("origin keys: {e}")))?;
        session.origin_keys.insert(origin.clone(), keys.clone());
        Ok(keys)
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
                .map_err(|e| unavailable(format_args!("author signet: {e}")))?
                .1
        } else {
            self.directory
                .user_signets(author)
                .await
                .map_err(|e| unavailable(format_args!("author keys: {e}")))?
                .0
        };
        let key = signet.signing_key().map_err(|e| unavailable(format_args!("author key: {e}")))?;
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

/// The signatures of every message shown as verified (only such messages get a summary).
const ALL_VERIFIED: Signatures = Signatures {
    author_tree: SignatureState::Verified,
    author_full: SignatureState::Verified,
    origin: SignatureState::Verified,
};

/// The summary version this code writes; a summary of another version (1: made before the
/// origin signature was required and before the address rules) is as good as none.
const SUMMARY_VERSION: u8 = 2;

/// The signatures octet of a summary: bit 0 author tree, bit 1 author full, bit 2 origin, each
/// set when verified.
fn signatures_octet(s: Signatures) -> u8 {
    [s.author_tree, s.author_full, s.origin]
        .iter()
        .enumerate()
        .filter(|(_, st)| **st == SignatureState::Verified)
        .fold(0, |acc, (i, _)| acc | (1 << i))
}

/// A summary (`spec/dimed.md` §4.3): u8 version 2, u8 kind (1 authored, 2 trustful), u8
/// signatures verified (bit 0 author tree, bit 1 author full, bit 2 origin: all three set),
/// the author's address and the subject, each a u32-length-prefixed UTF-8 string, then u8
/// count and that many warnings, each a u32-length-prefixed UTF-8 string.
fn encode_summary(
    kind: MessageKind,
    signatures: Signatures,
    author: &Mailbox,
    subject: &str,
    warnings: &[String],
) -> Vec<u8> {
    let author = author.to_string();
    let mut out = Vec::with_capacity(12 + author.len() + subject.len());
    out.extend_from_slice(&[SUMMARY_VERSION, kind.code(), signatures_octet(signatures)]);
    let string = |out: &mut Vec<u8>, s: &[u8]| {
        out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(s);
    };
    string(&mut out, author.as_bytes());
    string(&mut out, subject.as_bytes());
    let warnings = warnings.get(..usize::from(u8::MAX)).unwrap_or(warnings);
    out.push(u8::try_from(warnings.len()).unwrap_or(u8::MAX));
    for w in warnings {
        string(&mut out, w.as_bytes());
    }
    out
}

/// What a summary keeps.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    author: Mailbox,
    subject: String,
    warnings: Vec<String>,
}

/// A summary, if it reads as version 2 with every signature verified.
fn decode_summary(b: &[u8]) -> Option<Summary> {
    let [SUMMARY_VERSION, kind, sigs, rest @ ..] = b else { return None };
    MessageKind::from_code(*kind)?;
    (*sigs == signatures_octet(ALL_VERIFIED)).then_some(())?;
    let string = |b: &[u8]| -> Option<(String, usize)> {
        let len = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let s = std::str::from_utf8(b.get(4..4usize.checked_add(len)?)?).ok()?;
        Some((s.to_owned(), 4 + len))
    };
    let (author, n) = string(rest)?;
    let mut at = n;
    let (subject, m) = string(rest.get(at..)?)?;
    at += m;
    let count = *rest.get(at)?;
    at += 1;
    let mut warnings = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let (w, k) = string(rest.get(at..)?)?;
        warnings.push(w);
        at += k;
    }
    (at == rest.len()).then_some(())?;
    Some(Summary { author: Mailbox::parse(&author).ok()?, subject, warnings })
}

/// What a reader says of a message that does not open or verify: its class's text
/// (`spec/envelope.md` §14), and for a removed origin signature why it matters
/// (`spec/dimed.md` §4.3).
fn reason(class: ErrorClass) -> String {
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
/// `account`: why it is refused, else its warnings.
fn address_rules(view: &FullView, account: &Mailbox) -> Result<Vec<String>, String> {
    if view.recipient.domain() != &view.destination {
        return Err(unverified(
            "recipient-domain",
            &format!(
                "the recipient {} is not of the destination domain {}",
                view.recipient, view.destination
            ),
        ));
    }
    if &view.destination != account.domain() {
        return Err(unverified(
            "destination-domain",
            &format!("addressed to the domain {}, not to this account's", view.destination),
        ));
    }
    let mut warnings = Vec::new();
    if &view.recipient != account {
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

/// Whether a To or Cc value lists `who`: split at commas, semicolons, white space, angle
/// brackets and double quotes, one of the pieces reads as `who` (`spec/envelope.md` §7.5).
fn lists(value: &str, who: &Mailbox) -> bool {
    value
        .split(|c: char| matches!(c, ',' | ';' | '<' | '>' | '"') || c.is_whitespace())
        .filter(|t| t.contains('@'))
        .any(|t| Mailbox::parse(t).is_ok_and(|m| &m == who))
}

fn subject_of(view: &FullView) -> String {
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

    #[test]
    fn a_summary_reads_back_only_as_version_2_with_every_signature_verified() {
        let alice = mailbox("alice@a.test");
        let warnings = vec!["one".to_owned(), "two".to_owned()];
        let b = encode_summary(MessageKind::Authored, ALL_VERIFIED, &alice, "hi", &warnings);
        let want = Summary { author: alice.clone(), subject: "hi".into(), warnings };
        assert_eq!(decode_summary(&b), Some(want));
        // Version 1 (the same author and subject): as good as none.
        let v1 = [&[1u8, 1][..], &12u32.to_be_bytes(), b"alice@a.test", &2u32.to_be_bytes(), b"hi"]
            .concat();
        assert_eq!(decode_summary(&v1), None);
        // A signature not verified, a truncation, a trailing octet: none.
        let origin_absent = Signatures { origin: SignatureState::Absent, ..ALL_VERIFIED };
        let b2 = encode_summary(MessageKind::Authored, origin_absent, &alice, "hi", &[]);
        assert_eq!(decode_summary(&b2), None);
        assert_eq!(decode_summary(&b[..b.len() - 1]), None);
        assert_eq!(decode_summary(&[&b[..], &[0]].concat()), None);
    }
}
