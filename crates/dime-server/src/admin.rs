//! The operator's socket (`spec/dimed.md` §5): a Unix socket of mode 0600, so only the
//! account `dimed` runs as (and root) can connect. It lists the outbound queue: each entry's
//! schedule and delivery status, the destination domain and the server's own reason texts,
//! never a payload, a local part or a subject. `dimed queue` prints it.

use crate::lines::{LocalLimits, Service, error_answer};
use crate::submission::QueueStatus;
use dime_store::{Queue, QueueId, Store};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// Most entries one `queue` request lists (and the default).
pub const MAX_LISTED: usize = 1000;

/// What serves the socket.
pub struct Admin {
    /// The store.
    pub store: Arc<Store>,
}

/// A request (`"op"` names it).
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
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
        let AdminRequest::Queue { after, max } = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => return error_answer(&format!("bad request: {e}")),
        };
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
        let resp = AdminResponse { ok: true, error: None, entries: Some(entries) };
        serde_json::to_vec(&resp).unwrap_or_else(|_| error_answer("internal error"))
    }
}
