//! A local socket of JSON lines (`spec/dimed.md` §4, §5): a Unix stream socket whose file
//! mode decides who may connect at all. Each request is one JSON object on one line; each is
//! answered, in order, by one line. A line over the service's limit is answered with an error
//! and the connection is closed.
//!
//! Its limits and deadlines are the network listeners' ([`LocalLimits`]): a cap on
//! connections at once, an idle timeout between requests, a deadline for a request line from
//! its first octet to its end (so no unfinished line is held longer), and a deadline for
//! writing each answer (a client that never reads its answers is closed).

use dime_net::gate::Gate;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt, BufReader};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// What answers the requests of one socket.
pub(crate) trait Service: Send + Sync + 'static {
    /// The longest request line, octets.
    const MAX_REQUEST_LEN: usize;

    /// What one connection keeps between its requests (a login session): made when the
    /// connection opens, dropped when it closes.
    type Connection: Default + Send;

    /// Whether `conn` holds a live login session: between requests it may then stay silent
    /// for [`LocalLimits::session_idle_timeout`] rather than [`LocalLimits::idle_timeout`].
    fn holds_session(_conn: &Self::Connection) -> bool {
        false
    }

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
pub const LOCAL_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Longest silence between requests on a local connection without a session
/// (`spec/dimed.md` §4): the DMTP listeners' idle timeout (`spec/dmtp.md` §8).
pub const LOCAL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest silence between requests on a local connection with a live session
/// (`spec/dimed.md` §4): the session's own idle timeout, after which it has ended anyway
/// (`dimed` opens its store with it).
pub const LOCAL_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(900);
/// Longest time from a request line's first octet to its line end (`spec/dimed.md` §4): an
/// unfinished line is never held longer.
pub const LOCAL_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for an answer to be written (`spec/dimed.md` §4): a client that does not read
/// its answers is closed. The DMTP listeners' write deadline (`spec/dmtp.md` §8).
pub const LOCAL_WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Octets of request lines in progress on one local socket, beyond the first
/// 64 KiB of each (`spec/dimed.md` §4): a line that would pass it is answered
/// `busy` and its connection closed. Four requests of the submission socket's largest.
pub const LOCAL_LINE_BUDGET: usize = 64 * 1024 * 1024;
/// The octets of each request line that need nothing of [`LocalLimits::line_budget`]: the
/// requests without a message body (covered by the cap on connections).
const LINE_ALLOWANCE: usize = 64 * 1024;
/// How much of [`LocalLimits::line_budget`] a growing line takes at a time.
const LINE_STEP: usize = 1024 * 1024;

/// The limits and deadlines of a local socket (`spec/dimed.md` §4); the defaults are the
/// constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalLimits {
    /// Connections at once ([`MAX_LOCAL_CONNECTIONS`]); one more is answered `busy` and
    /// closed.
    pub max_connections: usize,
    /// Longest silence between requests without a session ([`LOCAL_IDLE_TIMEOUT`]).
    pub idle_timeout: Duration,
    /// Longest silence between requests with a live session
    /// ([`LOCAL_SESSION_IDLE_TIMEOUT`]).
    pub session_idle_timeout: Duration,
    /// From a request line's first octet to its end ([`LOCAL_REQUEST_TIMEOUT`]).
    pub request_timeout: Duration,
    /// Longest wait for one answer to be written ([`LOCAL_WRITE_TIMEOUT`]).
    pub write_timeout: Duration,
    /// At a stop, how long the requests under way may still take ([`LOCAL_SHUTDOWN_GRACE`]).
    pub shutdown_grace: Duration,
    /// Octets of request lines in progress at once, beyond the first 64 KiB of each
    /// ([`LOCAL_LINE_BUDGET`]; counted in steps of 1 MiB).
    pub line_budget: usize,
}

impl Default for LocalLimits {
    fn default() -> LocalLimits {
        LocalLimits {
            max_connections: MAX_LOCAL_CONNECTIONS,
            idle_timeout: LOCAL_IDLE_TIMEOUT,
            session_idle_timeout: LOCAL_SESSION_IDLE_TIMEOUT,
            request_timeout: LOCAL_REQUEST_TIMEOUT,
            write_timeout: LOCAL_WRITE_TIMEOUT,
            shutdown_grace: LOCAL_SHUTDOWN_GRACE,
            line_budget: LOCAL_LINE_BUDGET,
        }
    }
}

/// Binds `path` (replacing a stale socket) with file mode `mode` and serves `service` on it
/// until `stop` turns true, within `limits`: at most `max_connections` at once. At `stop` it
/// accepts no more connections, lets each finish the request it is serving (for up to
/// `shutdown_grace`) and closes them; the task ends then.
///
/// # Errors
/// The socket cannot be bound, or its mode set.
pub(crate) fn serve<S: Service>(
    path: &Path,
    mode: u32,
    service: Arc<S>,
    mut stop: watch::Receiver<bool>,
    limits: LocalLimits,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    let mut gate = Gate::new(limits.max_connections, None);
    let budget = Arc::new(Semaphore::new(limits.line_budget / LINE_STEP));
    Ok(tokio::spawn(async move {
        let mut stopped = std::pin::pin!(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        loop {
            tokio::select! {
                () = &mut stopped => break,
                a = listener.accept() => {
                    let mut stream = match a {
                        Ok((stream, _)) => {
                            gate.accepted();
                            stream
                        }
                        Err(e) => {
                            // Out of descriptors most often: back off rather than spin.
                            gate.accept_failed(&e).await;
                            continue;
                        }
                    };
                    match gate.admit(None) {
                        Ok(admitted) => {
                            let stopping = gate.stopping();
                            let service = Arc::clone(&service);
                            let budget = Arc::clone(&budget);
                            let served = connection(stream, service, limits, budget, stopping);
                            gate.spawn(admitted, served);
                        }
                        Err(refused) => {
                            tracing::debug!(%refused, "local connection refused");
                            let mut out = error_answer("busy");
                            out.push(b'\n');
                            // Best effort, and never waiting on the peer.
                            let _ = tokio::time::timeout(
                                Duration::from_secs(1),
                                stream.write_all(&out),
                            )
                            .await;
                        }
                    }
                }
            }
        }
        drop(listener);
        let aborted = gate.drain(limits.shutdown_grace).await;
        if aborted > 0 {
            tracing::warn!(aborted, "local connections closed at shutdown mid-request");
        }
    }))
}

/// How a request line's read ended.
enum Line {
    /// At its line end (or at the end of the stream, after some octets).
    Whole,
    /// Past the service's limit.
    TooLong,
    /// The line budget could not take it.
    OverBudget,
    /// The stream ended before any octet.
    End,
}

/// Reads one request line into `line`, at most `max` octets and one more: past the first
/// [`LINE_ALLOWANCE`] octets, it takes a [`LINE_STEP`] of `budget` into `held` before each
/// step further.
async fn read_line(
    r: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    line: &mut Vec<u8>,
    max: usize,
    budget: &Arc<Semaphore>,
    held: &mut Option<OwnedSemaphorePermit>,
) -> std::io::Result<Line> {
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if line.is_empty() { Line::End } else { Line::Whole });
        }
        let (chunk, ends) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let take = chunk.len().min(max + 1 - line.len());
        let allowed = |held: &Option<OwnedSemaphorePermit>| {
            LINE_ALLOWANCE + held.as_ref().map_or(0, |p| p.num_permits() * LINE_STEP)
        };
        while line.len() + take > allowed(held) {
            let Ok(step) = Arc::clone(budget).try_acquire_owned() else {
                return Ok(Line::OverBudget);
            };
            match held {
                Some(p) => p.merge(step),
                None => *held = Some(step),
            }
        }
        line.extend_from_slice(&chunk[..take]);
        r.consume(take);
        if line.len() > max {
            return Ok(Line::TooLong);
        }
        if ends {
            return Ok(Line::Whole);
        }
    }
}

/// Serves one connection: a request line at a time, each answered before the next is read.
/// It ends at the end of the stream, at a stop between requests, at a line too long or over
/// the line budget, and at each deadline of `limits`; whatever it held (the line, its part of
/// the budget, the session) is dropped then.
async fn connection<S: Service>(
    stream: tokio::net::UnixStream,
    service: Arc<S>,
    limits: LocalLimits,
    budget: Arc<Semaphore>,
    stopping: watch::Receiver<bool>,
) {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut conn = S::Connection::default();
    let mut stopped = std::pin::pin!(async move {
        let mut stop = stopping;
        let _ = stop.wait_for(|s| *s).await;
    });
    loop {
        let idle =
            if S::holds_session(&conn) { limits.session_idle_timeout } else { limits.idle_timeout };
        // Between requests, a stop or the idle timeout ends the connection; a request under
        // way is answered.
        let begun = tokio::select! {
            () = &mut stopped => return,
            b = tokio::time::timeout(idle, r.fill_buf()) => b.map(|b| b.map(|b| !b.is_empty())),
        };
        match begun {
            Ok(Ok(true)) => {}
            Ok(Ok(false) | Err(_)) => return,
            Err(_) => {
                tracing::debug!(secs = idle.as_secs(), "local connection idle: closed");
                return;
            }
        }
        // A request has begun: its line must end within the request deadline. What it takes
        // of the line budget is held until it is answered.
        let mut line = Vec::new();
        let mut held = None;
        let read = tokio::select! {
            () = &mut stopped => return,
            n = tokio::time::timeout(
                limits.request_timeout,
                read_line(&mut r, &mut line, S::MAX_REQUEST_LEN, &budget, &mut held),
            ) => n,
        };
        let (mut out, last) = match read {
            Ok(Ok(Line::Whole)) => (Arc::clone(&service).answer(&mut conn, line).await, false),
            Ok(Ok(Line::TooLong)) => (error_answer("request too long"), true),
            Ok(Ok(Line::OverBudget)) => {
                tracing::debug!(octets = line.len(), "local request lines over their budget");
                (error_answer("busy"), true)
            }
            Ok(Ok(Line::End) | Err(_)) => return,
            Err(_) => {
                tracing::debug!(
                    secs = limits.request_timeout.as_secs(),
                    octets = line.len(),
                    "local request line not ended within its deadline: closed"
                );
                return;
            }
        };
        out.push(b'\n');
        let written = tokio::time::timeout(limits.write_timeout, w.write_all(&out)).await;
        drop(held);
        match written {
            Ok(Ok(())) if !last => {}
            Ok(_) => return,
            Err(_) => {
                tracing::debug!(
                    secs = limits.write_timeout.as_secs(),
                    "local answer not read within its deadline: closed"
                );
                return;
            }
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

    fn limits(max_connections: usize, shutdown_grace: Duration) -> LocalLimits {
        LocalLimits { max_connections, shutdown_grace, ..LocalLimits::default() }
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
        let task = serve(&path, 0o600, service, rx, limits(2, Duration::from_secs(5))).unwrap();
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
        let task = serve(&path, 0o600, Arc::clone(&service), rx, limits(8, Duration::from_secs(5)))
            .unwrap();
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
            serve(&path, 0o600, Arc::clone(&service), rx, limits(8, Duration::from_millis(200)))
                .unwrap();
        let mut c = connect(&path).await;
        c.0.write_all(b"{}\n").await.unwrap();
        service.started.notified().await;
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
        assert_eq!(line(&mut c).await, "", "closed without an answer");
    }
}
