//! The local submission socket (`spec/dimed.md` §4): a Unix socket (mode 0660) where local
//! tools send mail as a user and read the user's mail, one JSON object per line each way. A
//! thin adapter over the mail service ([`crate::service`]): `login` opens the connection's
//! session (Argon2id once), later requests on the connection use it, and it ends at `logout`,
//! at its expiry or when the connection closes.
//!
//! This is the interim local access path until DMAP; the socket is local and its file
//! permissions are the access control for reaching it at all.

use crate::daemon::Resolver;
use crate::service::{
    Directory, Draft, Listed, LoginSource, MailService, Password, Provenance, ReadError,
    UserSession, Verification,
};
use dime_core::Mailbox;
use dime_envelope::{MessageKind, Signatures};
use dime_store::{DeliveryState, DeliveryStatus, MailboxId, QueueId, Uid};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;
use zeroize::Zeroizing;

/// Longest request line, octets (a message body travels in it).
pub const MAX_REQUEST_LEN: usize = 16 * 1024 * 1024;

/// What serves the socket: the mail service of our domain (with `D` finding other domains'
/// keys: the key resolver in `dimed`).
pub struct Submission<D = Resolver> {
    /// The service.
    pub service: Arc<MailService<D>>,
}

/// A request (`"op"` names it).
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Log in: the connection's session, for every later request on it.
    Login {
        /// The user (an address of this domain).
        user: String,
        /// The password.
        password: Password,
    },
    /// End the connection's session now.
    Logout {},
    /// Seal and queue a text message.
    Send {
        /// The recipient.
        to: String,
        /// The subject.
        subject: String,
        /// The text body.
        body: String,
        /// A client-made Message-ID, also the submission key: a retry with it queues
        /// nothing and answers the first queue id (`spec/dimed.md` §4.2).
        #[serde(default)]
        message_id: Option<String>,
    },
    /// The user's inbox: one line per message.
    List {},
    /// One message of the inbox, opened and verified.
    Read {
        /// Its UID.
        uid: u32,
        /// Verify it afresh (the signers' signets looked up now, the author's history walked
        /// from the recorded signet) instead of under the signets of its record
        /// (`spec/dimed.md` §4.3).
        #[serde(default)]
        recheck: bool,
    },
    /// The delivery status of a message the user queued (`send`'s `queue_id`).
    Status {
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
    /// Author address (as claimed, when not verified); empty when the message does not open.
    pub from: String,
    /// Subject; for a message not verified, `(not verified: REASON)`, the reason a class of
    /// `spec/envelope.md` §14, an address rule of §7.5 or the signers' keys not found.
    pub subject: String,
    /// Whether the message verified: its signatures (author and origin) and its addresses
    /// (`spec/envelope.md` §7.4, §7.5).
    pub verified: bool,
    /// Which signatures it carries and which verified.
    pub signatures: SignatureStates,
    /// What the reader should know of a verified message (`spec/envelope.md` §7.5).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Where the verification of a verified message comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<ProvenanceJson>,
}

/// Where a message's verification comes from (`spec/dimed.md` §4.3).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, Clone)]
pub struct ProvenanceJson {
    /// When its signatures were checked against signets looked up then (seconds since the
    /// Unix epoch).
    pub recorded_at: u64,
    /// The full fingerprint of the author's user signet that verified it (none for a
    /// trustful message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_signet: Option<String>,
    /// The full fingerprint of the origin's org signet that verified it.
    pub origin_signet: String,
    /// `true` when this answer checked the signatures against signets looked up now, `false`
    /// when under those of the record.
    pub fresh: bool,
}

impl From<Provenance> for ProvenanceJson {
    fn from(p: Provenance) -> ProvenanceJson {
        ProvenanceJson {
            recorded_at: p.recorded_at.0,
            author_signet: p.author_signet.map(|f| f.to_string()),
            origin_signet: p.origin_signet.to_string(),
            fresh: p.fresh,
        }
    }
}

/// Which signatures a message carries and which verified (`spec/envelope.md` §7.4), each
/// `verified`, `present` (carried, not verified) or `absent`. The format has no destination
/// signature: the destination domain is bound by the author tree and origin signatures.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, Clone)]
pub struct SignatureStates {
    /// The author tree signature (the origin server's for a trustful message).
    pub author_tree: String,
    /// The author full signature (the origin server's for a trustful message).
    pub author_full: String,
    /// The origin signature.
    pub origin: String,
}

impl From<Signatures> for SignatureStates {
    fn from(s: Signatures) -> SignatureStates {
        SignatureStates {
            author_tree: s.author_tree.as_str().to_owned(),
            author_full: s.author_full.as_str().to_owned(),
            origin: s.origin.as_str().to_owned(),
        }
    }
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
    /// send with a `message_id`: true when it was queued before (a retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
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
    /// Whether every signature verified and the addresses hold (always true: a message that
    /// does not verify is not shown).
    pub verified: bool,
    /// Which signatures it carries and which verified.
    pub signatures: SignatureStates,
    /// What the reader should know (`spec/envelope.md` §7.5).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Display parts' text, joined.
    pub body: String,
    /// Where its verification comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<ProvenanceJson>,
}

fn fail(msg: impl Into<String>) -> Response {
    Response { ok: false, error: Some(msg.into()), ..Response::default() }
}

fn done() -> Response {
    Response { ok: true, ..Response::default() }
}

/// [`serve`] within `limits` (`spec/dimed.md` §4).
///
/// # Errors
/// The socket cannot be bound.
pub fn serve_with<D: Directory>(
    path: &Path,
    sub: Arc<Submission<D>>,
    stop: watch::Receiver<bool>,
    limits: crate::LocalLimits,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    crate::lines::serve(path, 0o660, sub, stop, limits)
}

/// Binds `path` (replacing a stale socket, mode 0660) and serves it until `stop` turns true.
///
/// # Errors
/// The socket cannot be bound.
pub fn serve<D: Directory>(
    path: &Path,
    sub: Arc<Submission<D>>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    serve_with(path, sub, stop, crate::LocalLimits::default())
}

/// One connection's state: its session, and its number as the source of its logins
/// (`spec/dimed.md`, Logins).
pub struct Connection {
    session: Option<UserSession>,
    source: LoginSource,
}

impl Default for Connection {
    fn default() -> Connection {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let connection = NEXT.fetch_add(1, Ordering::Relaxed);
        Connection { session: None, source: LoginSource::Local { uid: None, connection } }
    }
}

impl<D: Directory> crate::lines::Service for Submission<D> {
    const MAX_REQUEST_LEN: usize = MAX_REQUEST_LEN;
    type Connection = Connection;

    fn holds_session(conn: &Connection) -> bool {
        conn.session.is_some()
    }

    async fn answer(self: Arc<Self>, conn: &mut Connection, line: Vec<u8>) -> Vec<u8> {
        // The line may hold a password: zeroized once parsed.
        let line = Zeroizing::new(line);
        let resp = match serde_json::from_slice::<Request>(&line) {
            Ok(req) => handle(&self.service, &mut conn.session, conn.source, req).await,
            Err(e) => fail(format!("bad request: {e}")),
        };
        serde_json::to_vec(&resp).unwrap_or_else(|_| b"{\"ok\":false}".to_vec())
    }
}

fn address(s: &str) -> Result<Mailbox, String> {
    Mailbox::parse(s).map_err(|_| format!("{s:?} is not a mail address"))
}

async fn handle<D: Directory>(
    service: &MailService<D>,
    session: &mut Option<UserSession>,
    source: LoginSource,
    req: Request,
) -> Response {
    let now = crate::now();
    let req = match req {
        Request::Login { user, password } => {
            // A new login ends the connection's session first, whatever its outcome.
            if let Some(old) = session.take() {
                old.logout();
            }
            let user = match address(&user) {
                Ok(u) => u,
                Err(e) => return fail(e),
            };
            return match service.login_from(&user, password, source, now).await {
                Ok(s) => {
                    *session = Some(s);
                    done()
                }
                Err(e) => fail(e.to_string()),
            };
        }
        Request::Logout {} => {
            if let Some(old) = session.take() {
                old.logout();
            }
            return done();
        }
        req => req,
    };
    let Some(s) = session.as_mut() else { return fail("not logged in") };
    let r = op(service, s, req, now).await;
    if s.touch(now).is_err() {
        // Expired: the keys are gone; the connection needs a new login.
        *session = None;
    }
    r.unwrap_or_else(fail)
}

async fn op<D: Directory>(
    service: &MailService<D>,
    s: &mut UserSession,
    req: Request,
    now: dime_store::Timestamp,
) -> Result<Response, String> {
    Ok(match req {
        Request::Send { to, subject, body, message_id } => {
            let draft = Draft { to: address(&to)?, subject, body };
            match message_id {
                Some(m) => {
                    let (id, fresh) =
                        service.send_once(s, &draft, &m, now).await.map_err(|e| e.to_string())?;
                    Response {
                        ok: true,
                        queue_id: Some(id.0),
                        duplicate: Some(!fresh),
                        ..Response::default()
                    }
                }
                None => {
                    let id = service.send(s, &draft, now).await.map_err(|e| e.to_string())?;
                    Response { ok: true, queue_id: Some(id.0), ..Response::default() }
                }
            }
        }
        Request::List {} => {
            let listed = service.list(s, MailboxId::INBOX, now).await.map_err(|e| e.to_string())?;
            let messages = listed.into_iter().map(Summary::from).collect();
            Response { ok: true, messages: Some(messages), ..Response::default() }
        }
        Request::Read { uid, recheck } => {
            let m = if recheck {
                service.recheck(s, MailboxId::INBOX, Uid(uid), now).await
            } else {
                service.read(s, MailboxId::INBOX, Uid(uid), now).await
            };
            let m = m.map_err(|e| match e {
                ReadError::NoSuchMessage => "no such message".to_owned(),
                e => e.to_string(),
            })?;
            Response {
                ok: true,
                message: Some(ReadMessage {
                    from: m.from.to_string(),
                    to: m.to.to_string(),
                    origin: m.origin.as_str().to_owned(),
                    subject: m.subject,
                    kind: match m.kind {
                        MessageKind::Trustful => "trustful".into(),
                        _ => "authored".into(),
                    },
                    verified: true,
                    signatures: m.signatures.into(),
                    warnings: m.warnings,
                    body: m.body,
                    provenance: Some(m.provenance.into()),
                }),
                ..Response::default()
            }
        }
        Request::Status { queue_id } => {
            let st = service.status(s, QueueId(queue_id), now).map_err(|e| e.to_string())?;
            Response { ok: true, status: Some(st.into()), ..Response::default() }
        }
        Request::Login { .. } | Request::Logout {} => return Err("internal error".into()),
    })
}

impl From<Listed> for Summary {
    fn from(l: Listed) -> Summary {
        let (subject, verified) = match l.verification {
            Verification::Verified => (l.subject, true),
            Verification::NotVerified(why) => (format!("(not verified: {why})"), false),
        };
        Summary {
            uid: l.uid.0,
            size: l.size,
            from: l.from.map(|m| m.to_string()).unwrap_or_default(),
            subject,
            verified,
            signatures: l.signatures.into(),
            warnings: l.warnings,
            provenance: l.provenance.map(ProvenanceJson::from),
        }
    }
}
