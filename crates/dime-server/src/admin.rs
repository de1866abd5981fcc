//! The operator's socket (`spec/dimed.md` §5): a Unix socket of mode 0600, so only the
//! account `dimed` runs as (and root) can connect. It lists the outbound queue: each entry's
//! schedule and delivery status, the destination domain and the server's own reason texts,
//! never a payload, a local part or a subject. `dimed queue` prints it.

use crate::lines::{Service, error_answer};
use crate::submission::QueueStatus;
use dime_store::{QueueId, Store};
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
    crate::lines::serve(path, 0o600, admin, stop)
}

impl Service for Admin {
    const MAX_REQUEST_LEN: usize = 4096;

    async fn answer(self: Arc<Self>, line: Vec<u8>) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dime_core::Secret;
    use dime_core::crypto::{Argon2Params, default_provider};
    use dime_store::{AccountId, StoreConfig, Timestamp, Transport};
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    async fn ask(lines: &mut BufReader<tokio::net::UnixStream>, req: &[u8]) -> serde_json::Value {
        lines.get_mut().write_all(req).await.unwrap();
        let mut answer = String::new();
        lines.read_line(&mut answer).await.unwrap();
        serde_json::from_str(&answer).unwrap()
    }

    #[tokio::test]
    async fn the_queue_is_listed_page_by_page_on_a_socket_only_its_owner_may_open() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            data_dir: dir.path().join("data"),
            vault_path: dir.path().join("vault.redb"),
            pepper: Secret::new(vec![3; 32]),
            argon2: Argon2Params { m_kib: Argon2Params::MIN_M_KIB, t: 1, p: 1 },
            idle_timeout_secs: 900,
        };
        let store = Arc::new(Store::open(config, default_provider()).unwrap());
        let mut rng = dime_testkit::seeded_rng(1);
        let t0 = Timestamp(1_700_000_000);
        let ids: Vec<_> = (0..3)
            .map(|_| {
                store.enqueue(&mut rng, Transport::Dmtp, AccountId([1; 16]), "b.test", b"e", t0)
            })
            .collect::<Result<_, _>>()
            .unwrap();
        store.defer(&mut rng, ids[1], Timestamp(t0.0 + 60), "connect: refused", t0).unwrap();

        let path = dir.path().join("admin.sock");
        let (stop, stop_rx) = watch::channel(false);
        let served = serve(&path, Arc::new(Admin { store }), stop_rx).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let mut c = BufReader::new(tokio::net::UnixStream::connect(&path).await.unwrap());

        let page = ask(&mut c, b"{\"op\":\"queue\",\"max\":2}\n").await;
        let e = page["entries"].as_array().unwrap();
        assert_eq!(
            (e.len(), &e[0]["queue_id"], &e[1]["queue_id"]),
            (2, &ids[0].0.into(), &ids[1].0.into())
        );
        assert_eq!(e[0]["status"]["state"], "queued");
        assert_eq!(e[1]["status"]["state"], "deferred");
        assert_eq!(e[1]["status"]["reason"], "connect: refused");
        assert_eq!(e[1]["status"]["destination"], "b.test");
        assert_eq!((&e[1]["attempts"], &e[1]["due"]), (&1.into(), &(t0.0 + 60).into()));
        let after = format!("{{\"op\":\"queue\",\"after\":{},\"max\":2}}\n", ids[1].0);
        let page = ask(&mut c, after.as_bytes()).await;
        let e = page["entries"].as_array().unwrap();
        assert_eq!((e.len(), &e[0]["queue_id"]), (1, &ids[2].0.into()));
        // The default page is the whole queue here.
        let page = ask(&mut c, b"{\"op\":\"queue\"}\n").await;
        assert_eq!(page["entries"].as_array().unwrap().len(), 3);

        // Bad requests are errors on the same connection; a line over the limit closes it.
        let bad = ask(&mut c, b"{\"op\":\"flush\"}\n").await;
        assert_eq!(bad["ok"], false);
        assert!(bad["error"].as_str().unwrap().starts_with("bad request"), "{bad}");
        let mut long = vec![b' '; <Admin as Service>::MAX_REQUEST_LEN + 1];
        long.push(b'\n');
        let too_long = ask(&mut c, &long).await;
        assert_eq!(too_long["error"], "request too long");
        let mut rest = String::new();
        assert_eq!(c.read_line(&mut rest).await.unwrap(), 0, "closed after a request too long");

        stop.send(true).unwrap();
        served.await.unwrap();
    }
}
