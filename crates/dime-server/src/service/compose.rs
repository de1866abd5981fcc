//! Composing (`spec/dimed.md` §4.2): a message sealed as the session's user, with the
//! recipient's and its destination's keys (from the store for our own domain, else
//! discovered), and the origin signature appended at once (`spec/envelope.md` §7.3): the
//! envelope as it is queued, never opened again.

use super::session::{SessionError, UserSession};
use super::{Directory, MailService, blocking};
use dime_core::{Domain, Mailbox};
use dime_envelope::{
    ActorKeyError, ActorKeys, Addressing, Headers, Message, Part, PartInfo, PartKind, SealError,
    Signer, seal_message_origin_signed,
};
use dime_resolver::DiscoveryError;
use dime_signet::EncryptionKey;
use dime_store::{AccountError, Accounts, Timestamp};
use std::sync::Arc;

/// A text message to one recipient.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The recipient.
    pub to: Mailbox,
    /// The subject.
    pub subject: String,
    /// The text body.
    pub body: String,
}

/// A sealed, origin-signed message, ready to queue.
#[derive(Debug)]
pub struct Composed {
    /// The destination domain.
    pub destination: Domain,
    /// The envelope.
    pub envelope: Vec<u8>,
}

/// Why a message could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The session ended.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The recipient is of our domain and has no account.
    #[error("no such user {0}")]
    NoSuchUser(Mailbox),
    /// The recipient's keys could not be discovered: the message was not sent.
    #[error("{}", not_sent(.0, .1))]
    RecipientKeys(Mailbox, DiscoveryError),
    /// A signet has no usable keys.
    #[error("{0}'s signet has no usable keys: {1}")]
    Keys(&'static str, ActorKeyError),
    /// A header value is not allowed.
    #[error("header {0}: {1}")]
    Header(&'static str, String),
    /// Sealing failed (a limit).
    #[error("seal: {0}")]
    Seal(#[from] SealError),
    /// The store failed.
    #[error("store: {0}")]
    Store(AccountError),
}

/// What the author reads when `to`'s keys were not found (`spec/dimed.md` §4.2): "not sent",
/// the resolver's reason, and whether trying again later may help.
fn not_sent(to: &Mailbox, e: &DiscoveryError) -> String {
    let why = match e {
        DiscoveryError::NotUsable(dime_resolver::Decision::Defer(reason)) => reason.to_string(),
        e => e.to_string(),
    };
    let later = if e.is_temporary() { "; it may work later" } else { "" };
    format!("not sent: the keys of {to} cannot be found ({why}){later}")
}

/// Longest client-made Message-ID, octets (RFC 5322's line limit less `Message-ID: `).
pub const MAX_MESSAGE_ID_LEN: usize = 250;

/// Checks a client-made Message-ID (`spec/dimed.md` §4.2): `<left@right>`, printable ASCII
/// without spaces, at most [`MAX_MESSAGE_ID_LEN`] octets.
///
/// # Errors
/// [`ComposeError::Header`] saying what is wrong.
pub fn check_message_id(m: &str) -> Result<(), ComposeError> {
    let bad = |why: &str| Err(ComposeError::Header("Message-ID", why.to_owned()));
    if m.len() > MAX_MESSAGE_ID_LEN {
        return bad("longer than 250 octets");
    }
    let Some(inner) = m.strip_prefix('<').and_then(|r| r.strip_suffix('>')) else {
        return bad("not of the form <left@right>");
    };
    match inner.split_once('@') {
        Some((l, r))
            if !l.is_empty()
                && !r.is_empty()
                && !r.contains('@')
                && inner.bytes().all(|b| b.is_ascii_graphic() && !b"<>\\\"".contains(&b)) =>
        {
            Ok(())
        }
        _ => bad("not of the form <left@right> in printable ASCII"),
    }
}

fn keys_of(signet: &dime_signet::Signet, what: &'static str) -> Result<ActorKeys, ComposeError> {
    ActorKeys::from_signet(signet).map_err(|e| ComposeError::Keys(what, e))
}

impl<D: Directory> MailService<D> {
    /// Seals `draft` as the session's user at `now`, origin-signed.
    ///
    /// # Errors
    /// [`ComposeError`].
    pub async fn compose(
        &self,
        session: &mut UserSession,
        draft: &Draft,
        now: Timestamp,
    ) -> Result<Composed, ComposeError> {
        self.compose_as(session, draft, None, now).await
    }

    /// [`MailService::compose`] with the Message-ID `message_id` (checked with
    /// [`check_message_id`]) instead of a new one.
    ///
    /// # Errors
    /// [`ComposeError`].
    pub async fn compose_as(
        &self,
        session: &mut UserSession,
        draft: &Draft,
        message_id: Option<&str>,
        now: Timestamp,
    ) -> Result<Composed, ComposeError> {
        session.touch(now)?;
        let to = &draft.to;
        let origin_keys = keys_of(&self.local.org_signet, "our org")?;
        let (recipient_keys, destination_keys) = if to.domain() == &self.local.domain {
            let signet = match self.store.signet(to) {
                Ok((_, s)) => s,
                Err(AccountError::UnknownAccount | AccountError::Shredded) => {
                    return Err(ComposeError::NoSuchUser(to.clone()));
                }
                Err(e) => return Err(ComposeError::Store(e)),
            };
            (keys_of(&signet, "recipient")?, origin_keys)
        } else {
            let (user, org) = self
                .directory
                .user_signets(to)
                .await
                .map_err(|e| ComposeError::RecipientKeys(to.clone(), e))?;
            (keys_of(&user, "recipient")?, keys_of(&org, "destination")?)
        };
        let author = session.address().clone();
        let mut common = Headers::new();
        for (k, v) in [
            ("From", author.to_string()),
            ("To", to.to_string()),
            ("Subject", draft.subject.clone()),
            ("Date", crate::bounce::rfc5322_date(now)),
        ] {
            common.push(k, &v).map_err(|e| ComposeError::Header(k, e.to_string()))?;
        }
        // A Message-ID of the origin's domain, as any mail client makes one (clients thread and
        // de-duplicate by it): 16 random octets in hex.
        let message_id = match message_id {
            Some(m) => {
                check_message_id(m)?;
                m.to_owned()
            }
            None => {
                let mut id = [0u8; 16];
                rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut id);
                format!("<{}@{}>", hex::encode(id), self.local.domain)
            }
        };
        let mut other = Headers::new();
        other
            .push("Message-ID", &message_id)
            .map_err(|e| ComposeError::Header("Message-ID", e.to_string()))?;
        let message = Message {
            common_headers: common,
            other_headers: other,
            parts: vec![Part {
                kind: PartKind::Display,
                info: PartInfo {
                    content_type: "text/plain; charset=utf-8".into(),
                    filename: String::new(),
                },
                data: draft.body.clone().into_bytes(),
            }],
        };
        let p = self.provider;
        let current = session.keys(now)?.current_keys().ok_or(SessionError::Expired)?;
        let Some(EncryptionKey::X25519(encryption)) = current.encryption_secret().public_key(p)
        else {
            return Err(ComposeError::Keys("author", ActorKeyError::V1EncryptionKey));
        };
        let author_keys = ActorKeys { signing: current.signing_key(p), encryption };
        let seed = current.signing_seed().duplicate();
        let addressing = Addressing {
            author: author.clone(),
            author_keys,
            origin: self.local.domain.clone(),
            origin_keys,
            destination: to.domain().clone(),
            destination_keys,
            recipient: to.clone(),
            recipient_keys,
        };
        let local = Arc::clone(&self.local);
        let envelope = blocking(move || {
            seal_message_origin_signed(
                p,
                &mut rand_core::OsRng,
                &addressing,
                Signer::Author(&seed),
                local.keys().pok_seed(),
                now.0,
                &message,
            )
        })
        .await?;
        Ok(Composed { destination: to.domain().clone(), envelope })
    }
}
