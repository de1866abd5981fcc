//! The local submission socket (`spec/dimed.md` §4): a Unix socket (mode 0660) where local
//! tools send mail as a user and read the user's mail. Each request names the user and the
//! password: the server logs in (the keys are unwrapped inside that request only), seals as
//! the author with the user's own key and queues (send), shows the delivery status of what
//! the user queued (status), or opens the user's mail (list, read). One JSON object per line
//! each way.
//!
//! This is the interim local access path until DMAP; the socket is local and its file
//! permissions are the access control for reaching it at all.

use crate::LocalDomain;
use crate::daemon::Resolver;
use dime_core::crypto::{CryptoProvider, Ed25519PublicKey};
use dime_core::{Domain, Mailbox};
use dime_envelope::{
    ActorKeys, Addressing, Headers, Message, MessageKind, Part, PartInfo, PartKind, Signer,
    seal_message,
};
use dime_store::{DeliveryState, DeliveryStatus, MailboxId, QueueId, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// Longest request line, octets (a message body travels in it).
pub const MAX_REQUEST_LEN: usize = 16 * 1024 * 1024;

/// What serves the socket.
pub struct Submission {
    /// The store.
    pub store: Arc<Store>,
    /// Our domain.
    pub local: Arc<LocalDomain>,
    /// The key resolver (recipients' and authors' signets elsewhere).
    pub resolver: Arc<Resolver>,
    /// The crypto provider.
    pub provider: &'static CryptoProvider,
    /// Notified after each queued submission: the outbound worker looks for due entries at once.
    pub wake: Arc<tokio::sync::Notify>,
}

/// A request (`"op"` names it).
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Seal and queue a text message.
    Send {
        /// The author (a user of this domain).
        user: String,
        /// The author's password.
        password: String,
        /// The recipient.
        to: String,
        /// The subject.
        subject: String,
        /// The text body.
        body: String,
    },
    /// The user's inbox: one line per message.
    List {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// One message of the inbox, opened and verified.
    Read {
        /// The user.
        user: String,
        /// The password.
        password: String,
        /// Its UID.
        uid: u32,
    },
    /// The delivery status of a message the user queued (`send`'s `queue_id`).
    Status {
        /// The user.
        user: String,
        /// The password.
        password: String,
        /// The queue entry.
        queue_id: u64,
    },
}

/// The answer to `status`: a queued message's delivery status (`spec/storage.md` §7.1).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct QueueStatus {
    /// The queue entry.
    pub queue_id: u64,
    /// The destination domain.
    pub destination: String,
    /// `queued`, `deferred`, `delivered`, `failed` or `bounced`.
    pub state: String,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// When it was queued, seconds since the Unix epoch.
    pub queued: u64,
    /// When the status last changed, seconds since the Unix epoch.
    pub updated: u64,
    /// deferred: the next attempt, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<u64>,
    /// deferred, failed, bounced: why the (last) attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// delivered: the destination's transaction id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txid: Option<String>,
}

impl From<DeliveryStatus> for QueueStatus {
    fn from(s: DeliveryStatus) -> QueueStatus {
        let (state, next_attempt, reason, txid) = match s.state {
            DeliveryState::Queued => ("queued", None, None, None),
            DeliveryState::Deferred { next_attempt, reason } => {
                ("deferred", Some(next_attempt.0), Some(reason), None)
            }
            DeliveryState::Delivered { txid } => ("delivered", None, None, Some(txid)),
            DeliveryState::Failed { reason } => ("failed", None, Some(reason), None),
            DeliveryState::Bounced { reason } => ("bounced", None, Some(reason), None),
        };
        QueueStatus {
            queue_id: s.id.0,
            destination: s.destination,
            state: state.to_owned(),
            attempts: s.attempts,
            queued: s.queued.0,
            updated: s.updated.0,
            next_attempt,
            reason,
            txid,
        }
    }
}

/// A message in a listing.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    /// UID in the inbox.
    pub uid: u32,
    /// Sealed size, octets.
    pub size: u64,
    /// Author address.
    pub from: String,
    /// Subject.
    pub subject: String,
    /// Whether the signatures verified (author and origin).
    pub verified: bool,
}

/// A response.
#[derive(Debug, Serialize, Deserialize, Default)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// send: the queue entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<u64>,
    /// list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Summary>>,
    /// read: the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<ReadMessage>,
    /// status: the delivery status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<QueueStatus>,
}

/// A message as read.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReadMessage {
    /// Author.
    pub from: String,
    /// Recipient.
    pub to: String,
    /// Origin domain.
    pub origin: String,
    /// Subject.
    pub subject: String,
    /// `authored` or `trustful` (signed by the origin server for a legacy sender).
    pub kind: String,
    /// Whether every signature verified.
    pub verified: bool,
    /// Display parts' text, joined.
    pub body: String,
}

fn fail(msg: impl Into<String>) -> Response {
    Response { ok: false, error: Some(msg.into()), ..Response::default() }
}

/// Binds `path` (replacing a stale socket, mode 0660) and serves it until `stop` turns true.
///
/// # Errors
/// The socket cannot be bound.
pub fn serve(
    path: &Path,
    sub: Arc<Submission>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    crate::lines::serve(path, 0o660, sub, stop)
}

impl crate::lines::Service for Submission {
    const MAX_REQUEST_LEN: usize = MAX_REQUEST_LEN;

    async fn answer(self: Arc<Self>, line: Vec<u8>) -> Vec<u8> {
        let resp = match serde_json::from_slice::<Request>(&line) {
            Ok(req) => handle(&self, req).await,
            Err(e) => fail(format!("bad request: {e}")),
        };
        serde_json::to_vec(&resp).unwrap_or_else(|_| b"{\"ok\":false}".to_vec())
    }
}

async fn handle(sub: &Arc<Submission>, req: Request) -> Response {
    let sub = Arc::clone(sub);
    let r = match req {
        Request::Send { user, password, to, subject, body } => {
            send(sub, user, password, to, subject, body).await
        }
        Request::List { user, password } => list(sub, user, password).await,
        Request::Read { user, password, uid } => read(sub, user, password, uid).await,
        Request::Status { user, password, queue_id } => {
            status(sub, user, password, QueueId(queue_id)).await
        }
    };
    r.unwrap_or_else(fail)
}

fn address(s: &str) -> Result<Mailbox, String> {
    Mailbox::parse(s).map_err(|_| format!("{s:?} is not a mail address"))
}

fn login(
    sub: &Submission,
    user: &str,
    password: &str,
) -> Result<(Mailbox, dime_store::Session), String> {
    let user = address(user)?;
    let s = sub.store.login(&user, password.as_bytes(), crate::now()).map_err(|e| match e {
        StoreError::LoginFailed | StoreError::UnknownAccount | StoreError::Shredded => {
            "login failed".to_owned()
        }
        e => format!("store: {e}"),
    })?;
    Ok((user, s))
}

fn keys_of(signet: &dime_signet::Signet, what: &str) -> Result<ActorKeys, String> {
    ActorKeys::from_signet(signet).map_err(|e| format!("{what}'s signet has no usable keys: {e}"))
}

async fn send(
    sub: Arc<Submission>,
    user: String,
    password: String,
    to: String,
    subject: String,
    body: String,
) -> Result<Response, String> {
    let to = address(&to)?;
    let p = sub.provider;
    // Log in first: a request that does not authenticate causes no lookup.
    let sub2 = Arc::clone(&sub);
    let (author, session) = tokio::task::spawn_blocking(move || login(&sub2, &user, &password))
        .await
        .map_err(|_| "internal error".to_owned())??;
    // The recipient's and destination's keys: from the store for our own domain, else
    // discovered (DNSSEC or CA-TLS, signets validated and pinned).
    let origin_keys = keys_of(&sub.local.org_signet, "our org")?;
    let (recipient_keys, destination_keys) = if to.domain() == &sub.local.domain {
        let (_, s) = sub.store.signet(&to).map_err(|_| format!("no such user {to}"))?;
        (keys_of(&s, "recipient")?, origin_keys)
    } else {
        let k = sub.resolver.user_key(&to).await.map_err(|e| format!("recipient keys: {e}"))?;
        (keys_of(&k.user.signet, "recipient")?, keys_of(&k.org.org.signet, "destination")?)
    };
    tokio::task::spawn_blocking(move || {
        let (_, author_signet) =
            sub.store.signet(&author).map_err(|e| format!("author signet: {e}"))?;
        let author_keys = keys_of(&author_signet, "author")?;
        let author_key = author_keys.signing;
        let addressing = Addressing {
            author: author.clone(),
            author_keys,
            origin: sub.local.domain.clone(),
            origin_keys,
            destination: to.domain().clone(),
            destination_keys,
            recipient: to.clone(),
            recipient_keys,
        };
        let mut common = Headers::new();
        let date = crate::bounce::rfc5322_date(crate::now());
        for (k, v) in [
            ("From", author.to_string()),
            ("To", to.to_string()),
            ("Subject", subject),
            ("Date", date),
        ] {
            common.push(k, &v).map_err(|e| format!("header {k}: {e}"))?;
        }
        let message = Message {
            common_headers: common,
            other_headers: Headers::new(),
            parts: vec![Part {
                kind: PartKind::Display,
                info: PartInfo {
                    content_type: "text/plain; charset=utf-8".into(),
                    filename: String::new(),
                },
                data: body.into_bytes(),
            }],
        };
        let keys = session.current_keys().ok_or("session expired")?;
        let mut rng = rand_core::OsRng;
        let envelope =
            seal_message(p, &mut rng, &addressing, Signer::Author(keys.signing_seed()), &message)
                .map_err(|e| format!("seal: {e}"))?;
        drop(session);
        let (id, _) = crate::origin::submit_signed_by(
            p,
            &mut rng,
            &sub.store,
            &sub.local,
            &author,
            &author_key,
            &envelope,
            crate::now(),
        )
        .map_err(|e| format!("submit: {e}"))?;
        sub.wake.notify_one();
        Ok(Response { ok: true, queue_id: Some(id.0), ..Response::default() })
    })
    .await
    .map_err(|_| "internal error".to_owned())?
}

/// The answer to a status request for an entry that is not the user's, or not (or no longer)
/// known: the same for both, so that nobody learns of another user's mail.
const NO_SUCH_ENTRY: &str = "no such queued message";

/// The delivery status of `id`, when the user queued it.
async fn status(
    sub: Arc<Submission>,
    user: String,
    password: String,
    id: QueueId,
) -> Result<Response, String> {
    tokio::task::spawn_blocking(move || {
        let account = login(&sub, &user, &password)?.1.account();
        match sub.store.delivery_status(id) {
            Ok(Some(s)) if s.author == Some(account) => {
                Ok(Response { ok: true, status: Some(s.into()), ..Response::default() })
            }
            Ok(_) => Err(NO_SUCH_ENTRY.to_owned()),
            Err(e) => Err(format!("store: {e}")),
        }
    })
    .await
    .map_err(|_| "internal error".to_owned())?
}

/// The author's and origin's signing keys for verifying a message.
async fn signer_keys(
    sub: &Submission,
    kind: MessageKind,
    author: &Mailbox,
    origin: &Domain,
    origin_signed: bool,
) -> Result<(Ed25519PublicKey, Option<Ed25519PublicKey>), String> {
    let p = sub.provider;
    let origin_key = if *origin == sub.local.domain {
        sub.local.keys().pok(p)
    } else {
        let k = sub.resolver.org_key(origin).await.map_err(|e| format!("origin keys: {e}"))?;
        k.org.signet.signing_key().map_err(|e| format!("origin key: {e}"))?
    };
    let author_key = match kind {
        MessageKind::Trustful => origin_key,
        _ if author.domain() == &sub.local.domain => {
            let (_, s) = sub.store.signet(author).map_err(|e| format!("author signet: {e}"))?;
            s.signing_key().map_err(|e| format!("author key: {e}"))?
        }
        _ => {
            let k = sub.resolver.user_key(author).await.map_err(|e| format!("author keys: {e}"))?;
            k.user.signet.signing_key().map_err(|e| format!("author key: {e}"))?
        }
    };
    Ok((author_key, origin_signed.then_some(origin_key)))
}

struct OpenedMail {
    uid: u32,
    size: u64,
    message: dime_envelope::Unverified<dime_envelope::FullView>,
}

fn open_inbox(
    sub: &Submission,
    user: &str,
    password: &str,
    only: Option<u32>,
) -> Result<Vec<OpenedMail>, String> {
    let (_, mut session) = login(sub, user, password)?;
    let a = session.account();
    let entries = sub.store.list(a, MailboxId::INBOX).map_err(|e| format!("store: {e}"))?;
    let mut out = Vec::new();
    let mut rng = rand_core::OsRng;
    for e in entries {
        if only.is_some_and(|u| u != e.uid.0) {
            continue;
        }
        let o = sub
            .store
            .open_message(&mut rng, &mut session, MailboxId::INBOX, e.uid, crate::now())
            .map_err(|e| format!("open: {e}"))?;
        out.push(OpenedMail { uid: e.uid.0, size: e.size, message: o.message });
    }
    if only.is_some() && out.is_empty() {
        return Err("no such message".into());
    }
    Ok(out)
}

/// Verifies a message: its view when every signature holds, else why not (with the author it
/// claims). Nothing of an unverified message's content is shown.
async fn verify(
    sub: &Submission,
    m: dime_envelope::Unverified<dime_envelope::FullView>,
) -> Result<(dime_envelope::FullView, MessageKind), (Mailbox, String)> {
    let kind = m.kind();
    let (author, origin) = (m.claimed_author().clone(), m.claimed_origin().clone());
    let (a, o) = signer_keys(sub, kind, &author, &origin, m.origin_signed())
        .await
        .map_err(|e| (author.clone(), e))?;
    m.verify(sub.provider, &a, o.as_ref())
        .map(|v| (v.into_view(), kind))
        .map_err(|_| (author, "signatures do not verify".to_owned()))
}

async fn list(sub: Arc<Submission>, user: String, password: String) -> Result<Response, String> {
    let s2 = Arc::clone(&sub);
    let opened = tokio::task::spawn_blocking(move || open_inbox(&s2, &user, &password, None))
        .await
        .map_err(|_| "internal error".to_owned())??;
    let mut messages = Vec::new();
    for o in opened {
        messages.push(match verify(&sub, o.message).await {
            Ok((v, _)) => Summary {
                uid: o.uid,
                size: o.size,
                from: v.author.to_string(),
                subject: v.message.common_headers.get("Subject").unwrap_or("").to_owned(),
                verified: true,
            },
            Err((author, why)) => Summary {
                uid: o.uid,
                size: o.size,
                from: author.to_string(),
                subject: format!("(not verified: {why})"),
                verified: false,
            },
        });
    }
    Ok(Response { ok: true, messages: Some(messages), ..Response::default() })
}

async fn read(
    sub: Arc<Submission>,
    user: String,
    password: String,
    uid: u32,
) -> Result<Response, String> {
    let s2 = Arc::clone(&sub);
    let mut opened =
        tokio::task::spawn_blocking(move || open_inbox(&s2, &user, &password, Some(uid)))
            .await
            .map_err(|_| "internal error".to_owned())??;
    let o = opened.pop().ok_or("no such message")?;
    let (v, kind) =
        verify(&sub, o.message).await.map_err(|(_, why)| format!("message not shown: {why}"))?;
    let body = v
        .message
        .parts
        .iter()
        .filter(|p| p.kind == PartKind::Display)
        .map(|p| String::from_utf8_lossy(&p.data).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Response {
        ok: true,
        message: Some(ReadMessage {
            from: v.author.to_string(),
            to: v.recipient.to_string(),
            origin: v.origin.as_str().to_owned(),
            subject: v.message.common_headers.get("Subject").unwrap_or("").to_owned(),
            kind: match kind {
                MessageKind::Trustful => "trustful".into(),
                _ => "authored".into(),
            },
            verified: true,
            body,
        }),
        ..Response::default()
    })
}
