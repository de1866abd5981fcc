//! A local socket of JSON lines (`spec/dimed.md` §4, §5): a Unix stream socket whose file
//! mode decides who may connect at all. Each request is one JSON object on one line; each is
//! answered, in order, by one line. A line over the service's limit is answered with an error
//! and the connection is closed.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt, BufReader};
use tokio::sync::watch;

/// What answers the requests of one socket.
pub(crate) trait Service: Send + Sync + 'static {
    /// The longest request line, octets.
    const MAX_REQUEST_LEN: usize;

    /// What one connection keeps between its requests (a login session): made when the
    /// connection opens, dropped when it closes.
    type Connection: Default + Send;

    /// The answer to the request `line` (its line end included) on connection `conn`: one
    /// JSON object, without a line end.
    fn answer(
        self: Arc<Self>,
        conn: &mut Self::Connection,
        line: Vec<u8>,
    ) -> impl Future<Output = Vec<u8>> + Send;
}

/// The error answer `{"ok":false,"error":msg}`.
pub(crate) fn error_answer(msg: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "ok": false, "error": msg }))
        .unwrap_or_else(|_| b"{\"ok\":false}".to_vec())
}

/// Binds `path` (replacing a stale socket) with file mode `mode` and serves `service` on it
/// until `stop` turns true.
///
/// # Errors
/// The socket cannot be bound, or its mode set.
pub(crate) fn serve<S: Service>(
    path: &Path,
    mode: u32,
    service: Arc<S>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                a = listener.accept() => {
                    let Ok((stream, _)) = a else { continue };
                    tokio::spawn(connection(stream, Arc::clone(&service)));
                }
            }
        }
    }))
}

async fn connection<S: Service>(stream: tokio::net::UnixStream, service: Arc<S>) {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut conn = S::Connection::default();
    loop {
        let mut line = Vec::new();
        let mut limited = (&mut r).take(S::MAX_REQUEST_LEN as u64 + 1);
        let n = match tokio::io::AsyncBufReadExt::read_until(&mut limited, b'\n', &mut line).await {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        let too_long = line.len() > S::MAX_REQUEST_LEN;
        let mut out = if too_long {
            error_answer("request too long")
        } else {
            Arc::clone(&service).answer(&mut conn, line).await
        };
        out.push(b'\n');
        if w.write_all(&out).await.is_err() || too_long {
            return;
        }
    }
}
