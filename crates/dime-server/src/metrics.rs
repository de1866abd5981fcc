//! `dimed`'s Prometheus metrics (`spec/dimed.md` §8): the counters and gauges the server keeps
//! through the `metrics` facade, the recorder that holds them, and the scrape endpoint
//! (`[metrics] listen`, loopback unless `allow_public`).
//!
//! Labels carry results, transports, listeners and proof kinds only: never an address, a local
//! part, a domain or a subject.
//!
//! **One recorder per process, one endpoint per daemon.** A `metrics` recorder is
//! process-global and can be installed once; tests start several daemons in one process. So
//! the recorder (`metrics-exporter-prometheus`'s, without its own HTTP listener) is installed
//! by the first daemon that asks for metrics ([`OnceLock`]), and each daemon serves its
//! rendering on its own listener, bound to its own `[metrics] listen` at start (a bind error
//! is a start error naming the address) and closed when it stops. The exporter's listener
//! (feature `http-listener`) would be bound once, to the first daemon's address, on that
//! daemon's runtime (a test's runtime ends with the test, and the listener with it), and it
//! would outlive the daemon's shutdown; and it needs hyper. The answer here is a minimal
//! HTTP/1.1 exchange: one `GET /metrics` per connection, then closed. Daemons in one process
//! share the counters (a test that reads exact values runs `dimed` in a process of its own).
//!
//! Where each metric is counted: outbound outcomes in [`crate::outbound`], inbound
//! transactions in [`crate::Destination`], DMAP connections in the DMAP listener, login
//! failures in the service's login throttle, DMTP connections in `dime-net`
//! ([`dime_net::DMTP_CONNECTIONS_METRIC`]), store commits in `dime-store`
//! ([`dime_store::COMMIT_SECONDS_METRIC`]), DNS proofs in `dime-resolver`
//! ([`dime_resolver::DNS_PROOFS_METRIC`]). The queue's gauges are read from the store at each
//! scrape ([`dime_store::Store::queue_stats`]: a count the store keeps and one record, no
//! scan), so they cost nothing between scrapes and are never stale.

use crate::outbound::Outcome;
use crate::service::LoginSource;
use dime_dmtp::Refusal;
use dime_store::Store;
use metrics::{counter, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// Counter: outbound queue entries by the outcome of an attempt (`result`: `delivered`,
/// `deferred`, `failed`, `bounced`).
pub const OUTBOUND_DELIVERIES: &str = "dime_outbound_deliveries_total";
/// Counter: inbound DMTP transactions by outcome (`result`: `accepted`, stored durably;
/// `deferred`, refused with a temporary code; `refused`, with a permanent code), counted at
/// the step that ended them (MAIL, RCPT or the body).
pub const INBOUND_DELIVERIES: &str = "dime_inbound_deliveries_total";
/// Gauge: entries in the outbound queue, held and under way included.
pub const QUEUE_DEPTH: &str = "dime_queue_depth";
/// Gauge: seconds since the oldest queue entry was queued (0 when the queue is empty).
pub const QUEUE_OLDEST_AGE: &str = "dime_queue_oldest_age_seconds";
/// Counter: DMAP connections accepted (after the TLS handshake on `imaps`), by `listener`
/// (`imaps`, `imap`).
pub const DMAP_CONNECTIONS: &str = "dime_dmap_connections_total";
/// Gauge: DMAP connections open now, by `listener`.
pub const DMAP_CONNECTIONS_OPEN: &str = "dime_dmap_connections_open";
/// Counter: failed or refused logins, by `source` (`local`: the submission socket; `network`:
/// DMAP) and `reason` (`password`, `unknown_user`, `deleted`: a password check that failed;
/// `delayed`: refused unchecked within a failure delay; `busy`: no password-check slot).
pub const LOGIN_FAILURES: &str = "dime_login_failures_total";

/// The buckets of [`dime_store::COMMIT_SECONDS_METRIC`], seconds: an `fdatasync` takes from
/// tens of microseconds (a battery-backed cache) to tens of milliseconds (a disk).
const COMMIT_BUCKETS: [f64; 12] =
    [0.000_25, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Scrapes answered at once by one endpoint; one more is closed unanswered.
const MAX_SCRAPES: usize = 4;
/// Time for a scrape's request to arrive and its answer to be written.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest request head read.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// The label values of each labelled metric, registered at 0 when the recorder is installed
/// so that a scrape lists every series from the start.
const OUTBOUND_RESULTS: [&str; 4] = ["delivered", "deferred", "failed", "bounced"];
const INBOUND_RESULTS: [&str; 3] = ["accepted", "deferred", "refused"];
const DNS_PROOFS: [&str; 4] = ["secure", "insecure", "bogus", "indeterminate"];
const DMTP_TRANSPORTS: [&str; 2] = ["quic", "tls"];
const DMAP_LISTENERS: [&str; 2] = ["imaps", "imap"];

static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// The process's recorder, installed by the first call.
fn recorder() -> Result<PrometheusHandle, String> {
    RECORDER.get_or_init(install).clone()
}

fn install() -> Result<PrometheusHandle, String> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(dime_store::COMMIT_SECONDS_METRIC.into()),
            &COMMIT_BUCKETS,
        )
        .map_err(|e| e.to_string())?;
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|_| "another metrics recorder is installed in this process".to_owned())?;
    describe();
    Ok(handle)
}

/// Describes every metric and registers each series at 0.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(OUTBOUND_DELIVERIES, "outbound queue entries by the outcome of an attempt");
    describe_counter!(INBOUND_DELIVERIES, "inbound DMTP transactions by outcome");
    describe_gauge!(QUEUE_DEPTH, "entries in the outbound queue");
    describe_gauge!(QUEUE_OLDEST_AGE, "seconds since the oldest queue entry was queued");
    describe_counter!(dime_net::DMTP_CONNECTIONS_METRIC, "DMTP connections accepted");
    describe_gauge!(dime_net::DMTP_CONNECTIONS_OPEN_METRIC, "DMTP connections open");
    describe_counter!(DMAP_CONNECTIONS, "DMAP connections accepted");
    describe_gauge!(DMAP_CONNECTIONS_OPEN, "DMAP connections open");
    describe_counter!(LOGIN_FAILURES, "failed or refused logins");
    describe_histogram!(
        dime_store::COMMIT_SECONDS_METRIC,
        metrics::Unit::Seconds,
        "store commits of delivery batches, fdatasync included"
    );
    describe_counter!(dime_resolver::DNS_PROOFS_METRIC, "_dx record lookups by DNSSEC proof");
    for r in OUTBOUND_RESULTS {
        counter!(OUTBOUND_DELIVERIES, "result" => r).increment(0);
    }
    for r in INBOUND_RESULTS {
        counter!(INBOUND_DELIVERIES, "result" => r).increment(0);
    }
    for p in DNS_PROOFS {
        counter!(dime_resolver::DNS_PROOFS_METRIC, "proof" => p).increment(0);
    }
    for t in DMTP_TRANSPORTS {
        counter!(dime_net::DMTP_CONNECTIONS_METRIC, "transport" => t).increment(0);
        gauge!(dime_net::DMTP_CONNECTIONS_OPEN_METRIC, "transport" => t).increment(0.0);
    }
    for l in DMAP_LISTENERS {
        counter!(DMAP_CONNECTIONS, "listener" => l).increment(0);
        gauge!(DMAP_CONNECTIONS_OPEN, "listener" => l).increment(0.0);
    }
    gauge!(QUEUE_DEPTH).set(0.0);
    gauge!(QUEUE_OLDEST_AGE).set(0.0);
}

/// Counts an outbound outcome once recorded.
pub(crate) fn outbound(outcome: &Outcome) {
    let result = match outcome {
        Outcome::Delivered { .. } => "delivered",
        Outcome::Deferred { .. } => "deferred",
        Outcome::Failed { bounced: true, .. } => "bounced",
        Outcome::Failed { bounced: false, .. } => "failed",
    };
    counter!(OUTBOUND_DELIVERIES, "result" => result).increment(1);
}

/// Counts an inbound transaction ended by `r`.
pub(crate) fn inbound<T>(r: &Result<T, Refusal>) {
    let result = match r {
        Ok(_) => "accepted",
        Err(e) if e.code().is_temporary() => "deferred",
        Err(_) => "refused",
    };
    counter!(INBOUND_DELIVERIES, "result" => result).increment(1);
}

/// Counts a failed or refused login from `source` (`reason` as [`LOGIN_FAILURES`] lists).
pub(crate) fn login_failed(source: &LoginSource, reason: &'static str) {
    let source = match source {
        LoginSource::Ip(_) => "network",
        LoginSource::Local { .. } => "local",
        LoginSource::Unspecified => "unspecified",
    };
    counter!(LOGIN_FAILURES, "source" => source, "reason" => reason).increment(1);
}

/// One DMAP connection counted accepted, and open until dropped.
pub(crate) struct DmapConnection(&'static str);

impl DmapConnection {
    pub(crate) fn new(implicit_tls: bool) -> DmapConnection {
        let listener = if implicit_tls { "imaps" } else { "imap" };
        counter!(DMAP_CONNECTIONS, "listener" => listener).increment(1);
        gauge!(DMAP_CONNECTIONS_OPEN, "listener" => listener).increment(1.0);
        DmapConnection(listener)
    }
}

impl Drop for DmapConnection {
    fn drop(&mut self) {
        gauge!(DMAP_CONNECTIONS_OPEN, "listener" => self.0).decrement(1.0);
    }
}

/// Binds the scrape endpoint at `addr` (the process's recorder installed if it was not) and
/// serves it until `stop`; the answer is the bound address and the task.
///
/// # Errors
/// Another recorder was installed in the process, or `addr` cannot be bound.
pub(crate) async fn serve(
    addr: SocketAddr,
    store: Arc<Store>,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), crate::daemon::StartError> {
    use crate::daemon::StartError;
    let handle = recorder().map_err(|e| StartError::Setup(format!("metrics: {e}")))?;
    let bind = |error| StartError::Bind { what: format!("metrics {addr}"), error };
    let listener = TcpListener::bind(addr).await.map_err(bind)?;
    let bound = listener.local_addr().map_err(bind)?;
    let scrapes = Arc::new(Semaphore::new(MAX_SCRAPES));
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.wait_for(|s| *s) => return,
            };
            let tcp = match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::debug!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Over the cap: closed unanswered (a scraper retries at its next interval).
            let Ok(permit) = Arc::clone(&scrapes).try_acquire_owned() else { continue };
            let (handle, store) = (handle.clone(), Arc::clone(&store));
            tokio::spawn(async move {
                let _ = tokio::time::timeout(SCRAPE_TIMEOUT, answer(tcp, &handle, store)).await;
                drop(permit);
            });
        }
    });
    tracing::info!(addr = %bound, "metrics served");
    Ok((bound, task))
}

/// Reads one request head and answers it: `GET /metrics` with the rendering, anything else
/// with its error status; then closes.
async fn answer(mut tcp: TcpStream, handle: &PrometheusHandle, store: Arc<Store>) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_REQUEST_HEAD {
            return reply(&mut tcp, "431 Request Header Fields Too Large", "").await;
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    if method != b"GET" {
        return reply(&mut tcp, "405 Method Not Allowed", "only GET\n").await;
    }
    if path != b"/metrics" {
        return reply(&mut tcp, "404 Not Found", "the metrics are at /metrics\n").await;
    }
    refresh_queue(store).await;
    handle.run_upkeep();
    reply(&mut tcp, "200 OK", &handle.render()).await;
}

/// Sets the queue's gauges from the store; on an error they keep their last values.
async fn refresh_queue(store: Arc<Store>) {
    match tokio::task::spawn_blocking(move || store.queue_stats()).await {
        Ok(Ok(stats)) => {
            let now = crate::now();
            let age = stats.oldest_queued.map_or(0, |q| now.0.saturating_sub(q.0));
            // Counts and seconds far below 2^53: exact as f64.
            #[allow(clippy::cast_precision_loss)]
            {
                gauge!(QUEUE_DEPTH).set(stats.depth as f64);
                gauge!(QUEUE_OLDEST_AGE).set(age as f64);
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: cannot read the queue"),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the queue"),
    }
}

async fn reply(tcp: &mut TcpStream, status: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if tcp.write_all(head.as_bytes()).await.is_ok() && tcp.write_all(body.as_bytes()).await.is_ok()
    {
        let _ = tcp.shutdown().await;
    }
}
