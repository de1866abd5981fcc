//! The operator's socket (`spec/dimed.md` §5): a Unix socket of mode 0600, so only the
//! account `dimed` runs as (and root) can connect. It lists the outbound queue: each entry's
//! schedule and delivery status, the destination domain and the server's own reason texts,
//! never a payload, a local part or a subject. `dimed queue` prints it. It also manages the
//! accounts of the running server (`dime user add|list|passwd|delete --config`), whose store
//! no other process may open.

use crate::LocalDomain;
use crate::lines::{LocalLimits, Service, error_answer};
use crate::submission::QueueStatus;
use dime_core::Mailbox;
use dime_signet::EncryptionSecret;
use dime_store::{AccountId, Accounts, NewAccount, Queue, QueueControl, QueueId, Recovery, Store};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;
use zeroize::Zeroizing;

/// Most entries one `queue` request lists (and the default).
pub const MAX_LISTED: usize = 1000;

/// What serves the socket.
pub struct Admin {
    /// The store.
    pub store: Arc<Store>,
    /// The served domain, whose org keys sign new accounts' user signets and bounces (none:
    /// the account requests and the deletion of queue entries are refused).
    pub local: Option<Arc<LocalDomain>>,
    /// Wakes the outbound worker when entries are made due (none: it finds them at its next
    /// look).
    pub wake: Option<Arc<tokio::sync::Notify>>,
    /// What `reload` re-reads (none: refused).
    pub reload: Option<Arc<crate::daemon::Reloader>>,
}

impl Admin {
    /// The socket over `store` alone: the queue's listing and control (no deletion), no
    /// account requests.
    pub fn new(store: Arc<Store>) -> Admin {
        Admin { store, local: None, wake: None, reload: None }
    }
}

/// A password in a request: zeroized when dropped, never shown by `Debug`.
pub struct Password(Zeroizing<String>);

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Password, D::Error> {
        String::deserialize(d).map(|s| Password(Zeroizing::new(s)))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A request (`"op"` names it).
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminRequest {
    /// Queue entries in id order, a page at a time.
    Queue {
        /// List the entries with ids above this one (default 0: from the first).
        #[serde(default)]
        after: u64,
        /// At most this many (default and limit [`MAX_LISTED`]).
        #[serde(default)]
        max: Option<usize>,
    },
    /// Accounts in id order, a page at a time.
    UserList {
        /// List the accounts with ids above this one (32 hex digits; default: from the first).
        #[serde(default)]
        after: Option<String>,
        /// At most this many (default and limit [`MAX_LISTED`]).
        #[serde(default)]
        max: Option<usize>,
    },
    /// Creates an account of the served domain.
    UserAdd {
        /// Its address.
        address: String,
        /// Its password.
        password: Password,
        /// "none", "code" (the default: a recovery code, answered once) or "escrow".
        #[serde(default)]
        recovery: Option<String>,
        /// Its quota, MiB (default 1024).
        #[serde(default)]
        quota_mib: Option<u64>,
    },
    /// Changes an account's password (its current one unwraps its keys).
    UserPasswd {
        /// The account's address.
        address: String,
        /// Its current password.
        password: Password,
        /// The new one.
        new_password: Password,
    },
    /// Deletes an account and shreds its keys.
    UserDelete {
        /// The account's address.
        address: String,
    },
    /// Holds a queue entry: it is not tried until released.
    QueueHold {
        /// The entry.
        id: u64,
    },
    /// Releases a held queue entry.
    QueueRelease {
        /// The entry.
        id: u64,
    },
    /// Tries a queue entry at once.
    QueueRetry {
        /// The entry.
        id: u64,
    },
    /// Makes every waiting queue entry due at once.
    QueueFlush,
    /// Re-reads the certificate and key (`spec/dimed.md` §5.2).
    Reload,
    /// Removes a queue entry: bounced to its author, or with `silent` only recorded failed.
    QueueDelete {
        /// The entry.
        id: u64,
        /// No bounce.
        #[serde(default)]
        silent: bool,
    },
}

/// One account as listed: no key, no mail.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountView {
    /// The account id, 32 hex digits (the `after` of the next page).
    pub id: String,
    /// Its address (none when its directory entry does not open).
    pub address: Option<String>,
    /// Its key generation.
    pub generation: u32,
    /// Its recovery: none, code or escrow.
    pub recovery: String,
    /// Quota, octets.
    pub quota_bytes: u64,
    /// Octets used.
    pub used_bytes: u64,
    /// Messages.
    pub messages: u64,
}

/// One queue entry as listed.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct QueuedView {
    /// The queue entry.
    pub queue_id: u64,
    /// When it is due, seconds since the Unix epoch: its next attempt, or the end of its
    /// lease while an attempt is under way.
    pub due: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// When its next attempt is scheduled, seconds since the Unix epoch.
    #[serde(default)]
    pub next_attempt: u64,
    /// Held by the operator.
    #[serde(default)]
    pub held: bool,
    /// An attempt is under way.
    #[serde(default)]
    pub in_flight: bool,
    /// Its delivery status (none when its record is missing or does not open).
    pub status: Option<QueueStatus>,
}

impl From<dime_store::AccountInfo> for AccountView {
    fn from(a: dime_store::AccountInfo) -> AccountView {
        AccountView {
            id: hex::encode(a.id.0),
            address: a.address.map(|m| m.to_string()),
            generation: a.generation,
            recovery: a.recovery.to_owned(),
            quota_bytes: a.quota_bytes,
            used_bytes: a.used_bytes,
            messages: a.messages,
        }
    }
}

/// An answer.
#[derive(Debug, Serialize, Deserialize, Default)]
pub struct AdminResponse {
    /// Whether the request succeeded.
    pub ok: bool,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// queue: the entries of this page (fewer than asked: the last page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<QueuedView>>,
    /// user_list: the accounts of this page (fewer than asked: the last page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<AccountView>>,
    /// user_add: the account's recovery code (shown once), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
    /// queue_flush: how many entries were made due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// reload: what was reloaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reloaded: Option<String>,
    /// queue_delete: whether the author got a bounce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounced: Option<bool>,
}

fn ok_answer(resp: AdminResponse) -> Vec<u8> {
    serde_json::to_vec(&AdminResponse { ok: true, ..resp })
        .unwrap_or_else(|_| error_answer("internal error"))
}

/// Binds `path` (replacing a stale socket, mode 0600) and serves it until `stop` turns true.
///
/// # Errors
/// The socket cannot be bound.
pub fn serve(
    path: &Path,
    admin: Arc<Admin>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    serve_with(path, admin, stop, LocalLimits::default())
}

/// [`serve`] within `limits` (`spec/dimed.md` §4, §5).
///
/// # Errors
/// The socket cannot be bound.
pub fn serve_with(
    path: &Path,
    admin: Arc<Admin>,
    stop: watch::Receiver<bool>,
    limits: LocalLimits,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    crate::lines::serve(path, 0o600, admin, stop, limits)
}

/// Longest request line, octets.
pub const MAX_ADMIN_REQUEST_LEN: usize = 4096;

impl Service for Admin {
    const MAX_REQUEST_LEN: usize = MAX_ADMIN_REQUEST_LEN;

    type Connection = ();

    async fn answer(self: Arc<Self>, _: &mut (), line: Vec<u8>) -> Vec<u8> {
        // The line may hold passwords.
        let line = Zeroizing::new(line);
        let request = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => return error_answer(&format!("bad request: {e}")),
        };
        match request {
            AdminRequest::Queue { after, max } => self.queue(after, max).await,
            AdminRequest::UserList { after, max } => self.user_list(after, max).await,
            AdminRequest::Reload => match &self.reload {
                Some(r) => {
                    let r = Arc::clone(r);
                    match tokio::task::spawn_blocking(move || r.reload()).await {
                        Ok(Ok(what)) => ok_answer(AdminResponse {
                            reloaded: Some(what),
                            ..AdminResponse::default()
                        }),
                        Ok(Err(e)) => error_answer(&e),
                        Err(_) => error_answer("internal error"),
                    }
                }
                None => error_answer("reload is not served on this socket"),
            },
            r @ (AdminRequest::QueueHold { .. }
            | AdminRequest::QueueRelease { .. }
            | AdminRequest::QueueRetry { .. }
            | AdminRequest::QueueFlush
            | AdminRequest::QueueDelete { .. }) => self.queue_control(r).await,
            other => self.account_change(other).await,
        }
    }
}

impl Admin {
    async fn queue(self: Arc<Self>, after: u64, max: Option<usize>) -> Vec<u8> {
        let max = max.unwrap_or(MAX_LISTED).min(MAX_LISTED);
        let store = Arc::clone(&self.store);
        let listed = tokio::task::spawn_blocking(move || store.queued(QueueId(after), max)).await;
        let entries = match listed {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return error_answer(&format!("store: {e}")),
            Err(_) => return error_answer("internal error"),
        };
        let now = crate::now();
        let entries = entries
            .into_iter()
            .map(|e| QueuedView {
                queue_id: e.id.0,
                due: e.due.0,
                attempts: e.attempts,
                next_attempt: e.next_attempt.0,
                held: e.held,
                in_flight: e.in_flight(now),
                status: e.status.map(QueueStatus::from),
            })
            .collect();
        ok_answer(AdminResponse { entries: Some(entries), ..AdminResponse::default() })
    }

    async fn user_list(self: Arc<Self>, after: Option<String>, max: Option<usize>) -> Vec<u8> {
        let after = match after.as_deref().map(hex::decode) {
            None => None,
            Some(Ok(b)) if b.len() == 16 => {
                let mut id = [0; 16];
                id.copy_from_slice(&b);
                Some(AccountId(id))
            }
            Some(_) => return error_answer("bad request: after is not an account id"),
        };
        let max = max.unwrap_or(MAX_LISTED).min(MAX_LISTED);
        let store = Arc::clone(&self.store);
        let listed = tokio::task::spawn_blocking(move || store.accounts(after, max)).await;
        let accounts = match listed {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return error_answer(&format!("store: {e}")),
            Err(_) => return error_answer("internal error"),
        };
        let accounts = accounts.into_iter().map(AccountView::from).collect();
        ok_answer(AdminResponse { accounts: Some(accounts), ..AdminResponse::default() })
    }

    /// queue_hold, queue_release, queue_retry, queue_flush, queue_delete, on a blocking thread
    /// (`spec/dimed.md` §5, `spec/storage.md` §7.3); the worker is woken when entries became
    /// due.
    async fn queue_control(self: Arc<Self>, request: AdminRequest) -> Vec<u8> {
        let this = Arc::clone(&self);
        let done = tokio::task::spawn_blocking(move || this.control_blocking(request)).await;
        match done {
            Ok(Ok((resp, due))) => {
                if let Some(w) = self.wake.as_ref().filter(|_| due) {
                    w.notify_one();
                }
                ok_answer(resp)
            }
            Ok(Err(e)) => error_answer(&e),
            Err(_) => error_answer("internal error"),
        }
    }

    /// The answer, and whether entries became due.
    fn control_blocking(&self, request: AdminRequest) -> Result<(AdminResponse, bool), String> {
        let now = crate::now();
        let store = &*self.store;
        let control = |id: u64, action| {
            store.control(QueueId(id), action, now).map_err(|e| format!("entry {id}: {e}"))
        };
        let none = AdminResponse::default();
        match request {
            AdminRequest::QueueHold { id } => {
                control(id, QueueControl::Hold)?;
                tracing::info!(queue_id = id, "queue entry held by the operator");
                Ok((none, false))
            }
            AdminRequest::QueueRelease { id } => {
                control(id, QueueControl::Release)?;
                tracing::info!(queue_id = id, "queue entry released by the operator");
                Ok((none, true))
            }
            AdminRequest::QueueRetry { id } => {
                control(id, QueueControl::Retry)?;
                tracing::info!(queue_id = id, "queue entry retried by the operator");
                Ok((none, true))
            }
            AdminRequest::QueueFlush => {
                let n = store.flush(now).map_err(|e| e.to_string())?;
                tracing::info!(entries = n, "queue flushed by the operator");
                Ok((AdminResponse { count: Some(n), ..none }, n > 0))
            }
            AdminRequest::QueueDelete { id, silent } => {
                let Some(local) = &self.local else {
                    return Err("queue entries are not deleted on this socket".into());
                };
                // Held first: no worker leases it while it is bounced and removed.
                control(id, QueueControl::Hold)?;
                let bounced = self.delete_entry(local, QueueId(id), silent, now)?;
                tracing::info!(queue_id = id, bounced, "queue entry deleted by the operator");
                Ok((AdminResponse { bounced: Some(bounced), ..none }, false))
            }
            _ => Err("internal error".into()),
        }
    }

    /// Removes held entry `id`: bounced to its author unless `silent` (or when no bounce can
    /// be built or delivered), else recorded failed; answers whether it bounced.
    fn delete_entry(
        &self,
        local: &LocalDomain,
        id: QueueId,
        silent: bool,
        now: dime_store::Timestamp,
    ) -> Result<bool, String> {
        let store = &*self.store;
        let mut rng = rand_core::OsRng;
        let err = |e: dime_store::QueueError| format!("entry {}: {e}", id.0);
        if !silent {
            let entry = store.entry(id).map_err(err)?;
            let payload = crate::service::outbox::parse_payload(store.provider(), &entry.payload);
            let destination = dime_core::Domain::parse(&entry.destination).ok();
            if let (Some(payload), Some(destination)) = (payload, destination) {
                let queued = payload.queued;
                let failure = crate::bounce::Failure {
                    id,
                    destination: &destination,
                    reason: DELETED,
                    queued,
                    failed: now,
                    attempts: entry.attempts,
                };
                let built = crate::bounce::build(
                    store.provider(),
                    &mut rng,
                    local,
                    store,
                    payload.envelope.bytes(),
                    &failure,
                );
                match built {
                    Ok(b) => match store.complete_bounced(
                        &mut rng,
                        id,
                        DELETED,
                        &b.author,
                        &b.envelope,
                        now,
                    ) {
                        Ok(_) => return Ok(true),
                        Err(e @ dime_store::QueueError::Backend(_)) => return Err(err(e)),
                        Err(e) => {
                            tracing::warn!(queue_id = id.0, error = %e, "bounce not delivered");
                        }
                    },
                    Err(e) => tracing::warn!(queue_id = id.0, error = %e, "bounce not built"),
                }
            }
        }
        store.complete_failed(&mut rng, id, DELETED, now).map_err(err)?;
        Ok(false)
    }

    /// user_add, user_passwd, user_delete: each on a blocking thread (Argon2id, the store's
    /// transactions).
    async fn account_change(self: Arc<Self>, request: AdminRequest) -> Vec<u8> {
        let Some(local) = self.local.clone() else {
            return error_answer("accounts are not managed on this socket");
        };
        let store = Arc::clone(&self.store);
        let done =
            tokio::task::spawn_blocking(move || change_account(&store, &local, request)).await;
        match done {
            Ok(Ok(resp)) => ok_answer(resp),
            Ok(Err(e)) => error_answer(&e),
            Err(_) => error_answer("internal error"),
        }
    }
}

/// The reason a deleted entry's status and bounce give.
pub const DELETED: &str = "deleted by the operator";

/// An address of the served domain.
fn local_address(local: &LocalDomain, address: &str) -> Result<Mailbox, String> {
    let m = Mailbox::parse(address).map_err(|_| format!("{address:?} is not a mail address"))?;
    if m.domain() != &local.domain {
        return Err(format!("{m} is not of this server's domain {}", local.domain));
    }
    Ok(m)
}

fn change_account(
    store: &Store,
    local: &LocalDomain,
    request: AdminRequest,
) -> Result<AdminResponse, String> {
    let mut rng = rand_core::OsRng;
    let now = crate::now();
    match request {
        AdminRequest::UserAdd { address, password, recovery, quota_mib } => {
            let address = local_address(local, &address)?;
            let recovery = match recovery.as_deref().unwrap_or("code") {
                "none" => Recovery::None,
                "code" => Recovery::Code,
                "escrow" => match local.keys().encryption_secret() {
                    EncryptionSecret::X25519(x) => {
                        Recovery::Escrow(store.provider().key_agreement.public_key(x))
                    }
                    EncryptionSecret::Secp256k1(_) => {
                        return Err("the org key has no x25519 key for escrow".into());
                    }
                },
                other => {
                    return Err(format!("unknown recovery {other:?}: use none, code or escrow"));
                }
            };
            let new = NewAccount {
                address: &address,
                password: password.0.as_bytes(),
                recovery,
                quota_bytes: quota_mib.unwrap_or(1024).saturating_mul(1024 * 1024),
            };
            let created = store
                .create_account(&mut rng, local.keys(), &new, now)
                .map_err(|e| e.to_string())?;
            tracing::info!(account = ?created.account, "account created by the operator");
            Ok(AdminResponse {
                recovery_code: created.recovery_code.map(|c| c.expose().to_owned()),
                ..AdminResponse::default()
            })
        }
        AdminRequest::UserPasswd { address, password, new_password } => {
            let address = local_address(local, &address)?;
            let mut s =
                store.login(&address, password.0.as_bytes(), now).map_err(|e| e.to_string())?;
            store
                .change_password(&mut rng, &mut s, new_password.0.as_bytes(), now)
                .map_err(|e| e.to_string())?;
            tracing::info!(account = ?s.account(), "password changed by the operator");
            Ok(AdminResponse::default())
        }
        AdminRequest::UserDelete { address } => {
            let address = local_address(local, &address)?;
            store.delete_account(&address).map_err(|e| e.to_string())?;
            tracing::info!("account deleted by the operator");
            Ok(AdminResponse::default())
        }
        _ => Err("internal error".into()),
    }
}
