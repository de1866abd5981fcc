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
use dime_store::{AccountId, Accounts, NewAccount, Queue, QueueId, Recovery, Store};
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
    /// The served domain, whose org keys sign new accounts' user signets (none: the account
    /// requests are refused).
    pub local: Option<Arc<LocalDomain>>,
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
        let entries = entries
            .into_iter()
            .map(|e| QueuedView {
                queue_id: e.id.0,
                due: e.due.0,
                attempts: e.attempts,
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
        AdminRequest::Queue { .. } | AdminRequest::UserList { .. } => Err("internal error".into()),
    }
}
