//! A local socket of JSON lines (`spec/dimed.md` §4, §5): a Unix stream socket whose file
//! mode decides who may connect at all. Each request is one JSON object on one line; each is
//! answered, in order, by one line. A line over the service's limit is answered with an error
//! and the connection is closed.

use dime_net::gate::Gate;
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

/// Connections at once on a local socket (`spec/dimed.md` §4): one more is answered `busy`
/// and closed.
pub const MAX_LOCAL_CONNECTIONS: usize = 64;
/// How long a local socket, when it stops, waits for the requests under way (`spec/dimed.md`
/// §4): then it closes the connections still open.
pub const LOCAL_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Binds `path` (replacing a stale socket) with file mode `mode` and serves `service` on it
/// until `stop` turns true: at most `max_connections` at once. At `stop` it accepts no more
/// connections, lets each finish the request it is serving (for up to
/// [`LOCAL_SHUTDOWN_GRACE`]) and closes them; the task ends then.
///
/// # Errors
/// The socket cannot be bound, or its mode set.
pub(crate) fn serve<S: Service>(
    path: &Path,
    mode: u32,
    service: Arc<S>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    serve_with(path, mode, service, stop, MAX_LOCAL_CONNECTIONS, LOCAL_SHUTDOWN_GRACE)
}

/// [`serve`] with its limits.
pub(crate) fn serve_with<S: Service>(
    path: &Path,
    mode: u32,
    service: Arc<S>,
    mut stop: watch::Receiver<bool>,
    max_connections: usize,
    grace: std::time::Duration,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    let mut gate = Gate::new(max_connections, None);
    Ok(tokio::spawn(async move {
        let mut stopped = std::pin::pin!(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        loop {
            tokio::select! {
                () = &mut stopped => break,
                a = listener.accept() => {
                    let Ok((mut stream, _)) = a else { continue };
                    match gate.admit(None) {
                        Ok(admitted) => {
                            let stopping = gate.stopping();
                            gate.spawn(admitted, connection(stream, Arc::clone(&service), stopping));
                        }
                        Err(refused) => {
                            tracing::debug!(%refused, "local connection refused");
                            let mut out = error_answer("busy");
                            out.push(b'\n');
                            // Best effort, and never waiting on the peer.
                            let _ = tokio::time::timeout(
                                std::time::Duration::from_secs(1),
                                stream.write_all(&out),
                            )
                            .await;
                        }
                    }
                }
            }
        }
        drop(listener);
        let aborted = gate.drain(grace).await;
        if aborted > 0 {
            tracing::warn!(aborted, "local connections closed at shutdown mid-request");
        }
    }))
}

async fn connection<S: Service>(
    stream: tokio::net::UnixStream,
    service: Arc<S>,
    stopping: watch::Receiver<bool>,
) {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut conn = S::Connection::default();
    let stop = stopping.clone();
    let mut stopped = std::pin::pin!(async move {
        let mut stop = stop;
        let _ = stop.wait_for(|s| *s).await;
    });
    loop {
        let mut line = Vec::new();
        let mut limited = (&mut r).take(S::MAX_REQUEST_LEN as u64 + 1);
        // Between requests, a stop ends the connection; a request under way is answered.
        let read = tokio::select! {
            () = &mut stopped => return,
            n = tokio::io::AsyncBufReadExt::read_until(&mut limited, b'\n', &mut line) => n,
        };
        let n = match read {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncBufReadExt;

    /// Answers each line with `{"ok":true,"n":N}` (N counts this connection's requests),
    /// after `wait`; `started` is notified as each request starts.
    struct Slow {
        wait: Duration,
        started: tokio::sync::Notify,
    }

    fn slow(wait: Duration) -> Arc<Slow> {
        Arc::new(Slow { wait, started: tokio::sync::Notify::new() })
    }

    impl Service for Slow {
        const MAX_REQUEST_LEN: usize = 1024;
        type Connection = u32;

        async fn answer(self: Arc<Self>, n: &mut u32, _: Vec<u8>) -> Vec<u8> {
            self.started.notify_one();
            tokio::time::sleep(self.wait).await;
            *n += 1;
            format!("{{\"ok\":true,\"n\":{n}}}").into_bytes()
        }
    }

    type Conn = (tokio::net::unix::OwnedWriteHalf, BufReader<tokio::net::unix::OwnedReadHalf>);

    async fn connect(path: &Path) -> Conn {
        let (r, w) = tokio::net::UnixStream::connect(path).await.unwrap().into_split();
        (w, BufReader::new(r))
    }

    /// The next line from the server (empty at the end of the stream); fails after 10 s.
    async fn line(c: &mut Conn) -> String {
        let mut s = String::new();
        let read = tokio::time::timeout(Duration::from_secs(10), c.1.read_line(&mut s)).await;
        read.expect("an answer or the end within 10 s").unwrap();
        s
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_connection_past_the_cap_is_answered_busy_and_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let (stop, rx) = watch::channel(false);
        let service = slow(Duration::ZERO);
        let task = serve_with(&path, 0o600, service, rx, 2, Duration::from_secs(5)).unwrap();
        let mut a = connect(&path).await;
        let mut b = connect(&path).await;
        // Both are served (and so admitted) before the third comes.
        for c in [&mut a, &mut b] {
            c.0.write_all(b"{}\n").await.unwrap();
            assert_eq!(line(c).await, "{\"ok\":true,\"n\":1}\n");
        }
        let mut c = connect(&path).await;
        assert_eq!(line(&mut c).await, "{\"error\":\"busy\",\"ok\":false}\n");
        assert_eq!(line(&mut c).await, "", "then closed");
        // A place freed is a place for the next.
        drop(a);
        let mut d = None;
        for _ in 0..100 {
            // Until the server has seen `a` close, a new connection is refused and closed,
            // maybe before the request is written or read: retry.
            let mut next = connect(&path).await;
            let mut answer = String::new();
            if next.0.write_all(b"{}\n").await.is_ok()
                && next.1.read_line(&mut answer).await.is_ok()
                && answer.contains("\"ok\":true")
            {
                d = Some(next);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(d.is_some(), "admitted once a connection closed");
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_stop_the_request_under_way_is_answered_then_every_connection_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let (stop, rx) = watch::channel(false);
        let service = slow(Duration::from_millis(300));
        let task =
            serve_with(&path, 0o600, Arc::clone(&service), rx, 8, Duration::from_secs(5)).unwrap();
        let mut busy = connect(&path).await;
        let mut idle = connect(&path).await;
        busy.0.write_all(b"{}\n").await.unwrap();
        service.started.notified().await;
        stop.send(true).unwrap();
        assert_eq!(line(&mut busy).await, "{\"ok\":true,\"n\":1}\n", "answered");
        assert_eq!(line(&mut busy).await, "", "then closed");
        assert_eq!(line(&mut idle).await, "", "an idle connection is closed");
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
        assert!(tokio::net::UnixStream::connect(&path).await.is_err(), "no longer accepting");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_longer_than_the_grace_is_cut_off_at_stop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let (stop, rx) = watch::channel(false);
        let service = slow(Duration::from_secs(3600));
        let task =
            serve_with(&path, 0o600, Arc::clone(&service), rx, 8, Duration::from_millis(200))
                .unwrap();
        let mut c = connect(&path).await;
        c.0.write_all(b"{}\n").await.unwrap();
        service.started.notified().await;
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
        assert_eq!(line(&mut c).await, "", "closed without an answer");
    }
}
