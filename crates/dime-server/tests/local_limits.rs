//! The local sockets' limits and deadlines (`spec/dimed.md` §4, §5) on real Unix sockets,
//! each shortened for the test through [`LocalLimits`]: the cap on connections at once, the
//! idle timeout (longer for a connection with a live session), the deadline of a request line
//! from its first octet to its end (an unfinished line is dropped with its connection), and
//! the deadline of an answer's write (a client that never reads is closed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{NoDirectory, p, side, store_config};
use dime_server::LocalLimits;
use dime_server::admin::Admin;
use dime_server::service::MailService;
use dime_server::submission::Submission;
use dime_store::Store;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;

const ALICE: &str = "alice@a.test";

/// Longest wait for something the server must do (a liveness bound, not a speed check).
const PATIENCE: Duration = Duration::from_secs(30);

/// A short deadline for the one limit under test.
const SHORT: Duration = Duration::from_millis(300);

type Conn = (OwnedWriteHalf, BufReader<OwnedReadHalf>);

async fn connect(path: &Path) -> Conn {
    let (r, w) = tokio::net::UnixStream::connect(path).await.unwrap().into_split();
    (w, BufReader::new(r))
}

/// The next answer line (empty at the end of the stream).
async fn line(c: &mut Conn) -> String {
    let mut s = String::new();
    let read = tokio::time::timeout(PATIENCE, c.1.read_line(&mut s)).await;
    read.expect("an answer or the end of the stream").unwrap();
    s
}

async fn ask(c: &mut Conn, req: &str) -> serde_json::Value {
    c.0.write_all(format!("{req}\n").as_bytes()).await.unwrap();
    let answer = line(c).await;
    serde_json::from_str(&answer).unwrap_or_else(|_| panic!("an answer to {req}: {answer:?}"))
}

/// Reads until the server closes the connection (whatever it sent first).
async fn closed_by_the_server(r: &mut BufReader<OwnedReadHalf>) {
    let mut sink = Vec::new();
    let read = tokio::time::timeout(PATIENCE, r.read_to_end(&mut sink)).await;
    read.expect("the server closes the connection").ok();
}

/// The operator's socket over an empty store, within `limits`.
fn admin(dir: &Path, limits: LocalLimits) -> (std::path::PathBuf, watch::Sender<bool>) {
    let store = Arc::new(Store::open(store_config(dir, 3), p()).unwrap());
    let path = dir.join("admin.sock");
    let (stop, stop_rx) = watch::channel(false);
    dime_server::admin::serve_with(&path, Arc::new(Admin::new(store)), stop_rx, limits).unwrap();
    (path, stop)
}

/// The submission socket of a domain with the user [`ALICE`] (password `pw`), within
/// `limits`.
fn submission(dir: &Path, limits: LocalLimits) -> (std::path::PathBuf, watch::Sender<bool>) {
    let a = side(dir, "a.test", 1, ALICE);
    let service = MailService::new(a.store, a.local, Arc::new(NoDirectory), p());
    let path = dir.join("dimed.sock");
    let (stop, stop_rx) = watch::channel(false);
    let sub = Arc::new(Submission { service: Arc::new(service) });
    dime_server::submission::serve_with(&path, sub, stop_rx, limits).unwrap();
    (path, stop)
}

const QUEUE: &str = r#"{"op":"queue"}"#;

/// A new connection is served: its first request answered `ok` (the one place free is free).
async fn served(path: &Path, req: &str) -> Conn {
    for _ in 0..100 {
        // Until the server has seen the last connection end, a new one may be refused.
        let mut c = connect(path).await;
        if c.0.write_all(format!("{req}\n").as_bytes()).await.is_ok() {
            let answer = line(&mut c).await;
            if !answer.contains("busy") && !answer.is_empty() {
                return c;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("a new connection is served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_serves_its_connections_and_answers_one_more_busy() {
    let dir = tempfile::tempdir().unwrap();
    let limits = LocalLimits { max_connections: 2, ..LocalLimits::default() };
    let (path, _stop) = admin(dir.path(), limits);
    let mut a = connect(&path).await;
    let mut b = connect(&path).await;
    assert_eq!(ask(&mut a, QUEUE).await["ok"], true);
    assert_eq!(ask(&mut b, QUEUE).await["ok"], true);
    let mut c = connect(&path).await;
    assert_eq!(line(&mut c).await, "{\"error\":\"busy\",\"ok\":false}\n");
    assert_eq!(line(&mut c).await, "", "then closed");
    drop(a);
    let _d = served(&path, QUEUE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let limits = LocalLimits { max_connections: 1, idle_timeout: SHORT, ..LocalLimits::default() };
    let (path, _stop) = admin(dir.path(), limits);
    let mut c = connect(&path).await;
    assert_eq!(ask(&mut c, QUEUE).await["ok"], true);
    // Silent after its answer: closed, and its place freed.
    closed_by_the_server(&mut c.1).await;
    let mut silent = served(&path, QUEUE).await;
    closed_by_the_server(&mut silent.1).await;
    // Never a request at all: closed too.
    let mut never = connect(&path).await;
    closed_by_the_server(&mut never.1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_in_connection_may_stay_silent_as_long_as_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let limits = LocalLimits {
        idle_timeout: SHORT,
        session_idle_timeout: Duration::from_secs(3600),
        ..LocalLimits::default()
    };
    let (path, _stop) = submission(dir.path(), limits);
    let mut user = connect(&path).await;
    let login = format!(r#"{{"op":"login","user":"{ALICE}","password":"pw"}}"#);
    assert_eq!(ask(&mut user, &login).await["ok"], true);
    // A connection without a session, opened after the login's answer, is closed at the idle
    // timeout...
    let mut anonymous = connect(&path).await;
    closed_by_the_server(&mut anonymous.1).await;
    // ...and the one with a session, silent as long, still answers on it.
    let listed = ask(&mut user, r#"{"op":"list"}"#).await;
    assert_eq!(listed["ok"], true, "{listed}");
    // Logged out, it has the short timeout again.
    assert_eq!(ask(&mut user, r#"{"op":"logout"}"#).await["ok"], true);
    closed_by_the_server(&mut user.1).await;
}

/// Writes `bytes` then one octet of `dribble` every 50 ms until a write fails (the server
/// closed); gives back how many octets of `dribble` were written.
fn dribble(
    mut w: OwnedWriteHalf,
    bytes: Vec<u8>,
    dribble: &'static [u8],
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        if w.write_all(&bytes).await.is_err() {
            return 0;
        }
        for (i, b) in dribble.iter().cycle().enumerate() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if w.write_all(&[*b]).await.is_err() {
                return i;
            }
        }
        unreachable!("cycle never ends")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_line_dribbled_past_its_deadline_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let limits =
        LocalLimits { max_connections: 1, request_timeout: SHORT, ..LocalLimits::default() };
    let (path, _stop) = admin(dir.path(), limits);
    let (w, mut r) = connect(&path).await;
    // Each octet arrives well within the idle timeout, but the line never ends.
    let writer = dribble(w, Vec::new(), b"{\"op\":");
    closed_by_the_server(&mut r).await;
    tokio::time::timeout(PATIENCE, writer).await.expect("the writer sees the close").unwrap();
    let _next = served(&path, QUEUE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_long_line_is_dropped_at_its_deadline_with_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let limits = LocalLimits {
        max_connections: 1,
        request_timeout: Duration::from_secs(2),
        ..LocalLimits::default()
    };
    let (path, _stop) = submission(dir.path(), limits);
    let (w, mut r) = connect(&path).await;
    // 15 MiB of a send request (under the 16 MiB limit), then an octet at a time, no line end.
    let mut start = br#"{"op":"send","to":"bob@a.test","subject":"s","body":""#.to_vec();
    start.resize(15 << 20, b'a');
    let writer = dribble(w, start, b"a");
    closed_by_the_server(&mut r).await;
    tokio::time::timeout(PATIENCE, writer).await.expect("the writer sees the close").unwrap();
    // The only place is free again: the connection, with the 15 MiB it held, is gone.
    let mut next = served(&path, r#"{"op":"list"}"#).await;
    assert_eq!(ask(&mut next, r#"{"op":"list"}"#).await["error"], "not logged in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_answers_is_closed_at_the_write_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let limits = LocalLimits { max_connections: 1, write_timeout: SHORT, ..LocalLimits::default() };
    let (path, _stop) = admin(dir.path(), limits);
    let (mut w, r) = connect(&path).await;
    // Bad requests, each answered by a longer error line, never read: the answers fill the
    // socket's buffers and the server's write waits.
    let writer = tokio::spawn(async move {
        let requests = b"x\n".repeat(1 << 20);
        loop {
            if w.write_all(&requests).await.is_err() {
                return;
            }
        }
    });
    tokio::time::timeout(PATIENCE, writer)
        .await
        .expect("the server closes the connection")
        .unwrap();
    drop(r);
    let _next = served(&path, QUEUE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lines_past_the_line_budget_are_answered_busy_and_the_budget_frees() {
    let dir = tempfile::tempdir().unwrap();
    // Room for one 2 MiB line in progress (two steps of 1 MiB past the first 64 KiB), not two.
    let limits = LocalLimits { line_budget: 3 << 20, ..LocalLimits::default() };
    let (path, _stop) = submission(dir.path(), limits);
    let mut big = br#"{"op":"send","to":"bob@a.test","subject":"s","body":""#.to_vec();
    big.resize(2 << 20, b'a');
    let big = Arc::new(big);
    let ((wa, mut a), (wb, mut b)) = (connect(&path).await, connect(&path).await);
    // Both lines at once, unfinished (no line end, so neither gives its part back by being
    // answered): together they need more than the budget, so one is refused.
    let send = |mut w: OwnedWriteHalf| {
        let big = Arc::clone(&big);
        tokio::spawn(async move {
            // The refused one's write fails once it is closed.
            let _ = w.write_all(&big).await;
            w
        })
    };
    let (wa, wb) = (send(wa), send(wb));
    let (mut ra, mut rb) = (String::new(), String::new());
    let first = tokio::time::timeout(PATIENCE, async {
        tokio::select! {
            r = a.read_line(&mut ra) => r.map(|_| true),
            r = b.read_line(&mut rb) => r.map(|_| false),
        }
    });
    let a_refused = first.await.expect("one line is refused").unwrap();
    let (refused, fits, written) = if a_refused { (ra, b, wb) } else { (rb, a, wa) };
    assert_eq!(refused, "{\"error\":\"busy\",\"ok\":false}\n");
    // The other goes on to its line end and is answered.
    let mut fits = (tokio::time::timeout(PATIENCE, written).await.expect("written").unwrap(), fits);
    fits.0.write_all(b"\"}\n").await.unwrap();
    let answer: serde_json::Value = serde_json::from_str(&line(&mut fits).await).unwrap();
    assert_eq!(answer["error"], "not logged in", "{answer}");
    // Each line's part of the budget is given back with its answer.
    for _ in 0..2 {
        let mut c = connect(&path).await;
        c.0.write_all(&big).await.unwrap();
        c.0.write_all(b"\"}\n").await.unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&line(&mut c).await).unwrap()["error"],
            "not logged in"
        );
    }
}
