//! Admission and shutdown for a listener's connections, whatever the protocol (DMTP over QUIC
//! or TLS, the local sockets; DMAP and SMTP next): a global cap on connections at once (a
//! semaphore), optional per-IP and per-IPv6-/64 caps ([`ConnectionCaps`]), a back-off after
//! failed accepts ([`AcceptBackoff`], through [`Gate::accept_failed`]), and a graceful stop. At
//! [`Gate::stop`] the listener stops accepting, each connection finishes the request it is
//! serving and then closes, and [`Gate::drain`] waits for them up to a deadline, then aborts
//! the rest ([`Gate::settle`] and [`Gate::abort`] are its two halves, for a listener that
//! closes what is left its own way first, as QUIC closes its endpoint).

use crate::caps::{CapExceeded, ConnectionCaps, ConnectionSlot};
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The listener serves its most connections at once.
    #[error("too many connections")]
    Busy,
    /// The peer's address has its most connections open.
    #[error("too many connections from one address")]
    PerIp,
    /// The peer's IPv6 /64 has its most connections open.
    #[error("too many connections from one ipv6 /64")]
    PerPrefix,
    /// The listener is stopping.
    #[error("stopping")]
    Stopping,
}

/// One admitted connection's places; released when dropped.
#[derive(Debug)]
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
    _slot: Option<ConnectionSlot>,
}

/// A listener's admission and shutdown.
#[derive(Debug)]
pub struct Gate {
    permits: Arc<Semaphore>,
    per_ip: Option<ConnectionCaps>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    backoff: AcceptBackoff,
}

impl Gate {
    /// At most `max_connections` at once, and at most `per_ip` from one address when given
    /// (and [`crate::MAX_CONNECTIONS_PER_PREFIX`] from one IPv6 /64: [`ConnectionCaps::new`]).
    pub fn new(max_connections: usize, per_ip: Option<usize>) -> Gate {
        Gate::with_caps(max_connections, per_ip.map(ConnectionCaps::new))
    }

    /// At most `max_connections` at once, and within `caps` per source when given.
    pub fn with_caps(max_connections: usize, caps: Option<ConnectionCaps>) -> Gate {
        Gate {
            permits: Arc::new(Semaphore::new(max_connections)),
            per_ip: caps,
            stop: watch::Sender::new(false),
            tasks: JoinSet::new(),
            backoff: AcceptBackoff::default(),
        }
    }

    /// Admits a connection (from `ip`, for the per-IP cap), or says why not.
    ///
    /// # Errors
    /// [`Refused`].
    pub fn admit(&self, ip: Option<IpAddr>) -> Result<Admitted, Refused> {
        if *self.stop.borrow() {
            return Err(Refused::Stopping);
        }
        let slot = match (&self.per_ip, ip) {
            (Some(caps), Some(ip)) => Some(caps.acquire(ip).map_err(|e| match e {
                CapExceeded::Ip => Refused::PerIp,
                CapExceeded::Prefix => Refused::PerPrefix,
            })?),
            _ => None,
        };
        let permit = Arc::clone(&self.permits).try_acquire_owned().map_err(|_| Refused::Busy)?;
        Ok(Admitted { _permit: permit, _slot: slot })
    }

    /// An accept on the listener failed (out of file descriptors, most often: `EMFILE`,
    /// `ENFILE`; or `ENOBUFS`, `ENOMEM`, a connection reset before it was taken): waits as
    /// [`AcceptBackoff`] says before the listener tries again, rather than spinning on a
    /// listening socket that stays readable. The first failure of a run is logged as a
    /// warning, the rest at debug.
    pub async fn accept_failed(&mut self, error: &std::io::Error) {
        let wait = self.backoff.failed();
        if self.backoff.failures() == 1 {
            tracing::warn!(%error, "accept failed; backing off");
        } else {
            tracing::debug!(%error, failures = self.backoff.failures(), ?wait, "accept failed");
        }
        tokio::time::sleep(wait).await;
    }

    /// An accept on the listener succeeded: the next failure backs off from the start again.
    pub fn accepted(&mut self) {
        let failures = self.backoff.failures();
        if failures > 0 {
            tracing::info!(failures, "accepting again after failed accepts");
        }
        self.backoff.reset();
    }

    /// What a connection watches: it turns true at [`Gate::stop`]. A connection ends once the
    /// request it is serving is answered.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Runs an admitted connection, tracked until [`Gate::drain`].
    pub fn spawn(
        &mut self,
        admitted: Admitted,
        connection: impl Future<Output = ()> + Send + 'static,
    ) {
        // Finished connections are reaped as new ones come, so the set stays at most as large
        // as the cap.
        while self.tasks.try_join_next().is_some() {}
        self.tasks.spawn(async move {
            let _admitted = admitted;
            connection.await;
        });
    }

    /// The accept loop of a TCP listener, until `stop` resolves (its output is returned): each
    /// accepted connection is admitted (a refused one is passed to `refused`, which may write
    /// a line without blocking, then closed; a failed accept backs off), gets `TCP_NODELAY`
    /// (replies are small writes: with Nagle's algorithm one written while the previous is
    /// unacknowledged waits for the peer's delayed ACK, 40 ms on Linux) and runs as `start`
    /// makes it, tracked until [`Gate::drain`]. `what` names the listener in the logs.
    pub async fn accept_tcp<T, F>(
        &mut self,
        listener: &tokio::net::TcpListener,
        stop: impl Future<Output = T>,
        what: &'static str,
        mut refused: impl FnMut(&tokio::net::TcpStream),
        mut start: impl FnMut(tokio::net::TcpStream, std::net::SocketAddr, watch::Receiver<bool>) -> F,
    ) -> T
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                t = &mut stop => return t,
                accepted = listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            self.accept_failed(&e).await;
                            continue;
                        }
                    };
                    self.accepted();
                    let admitted = match self.admit(Some(peer.ip())) {
                        Ok(a) => a,
                        Err(why) => {
                            tracing::debug!(%why, what, "connection refused");
                            refused(&tcp);
                            continue;
                        }
                    };
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, what, "tcp nodelay not set");
                    }
                    let c = start(tcp, peer, self.stopping());
                    self.spawn(admitted, c);
                }
            }
        }
    }

    /// Connections under way.
    pub fn open(&mut self) -> usize {
        while self.tasks.try_join_next().is_some() {}
        self.tasks.len()
    }

    /// Stops admitting and tells every connection to end after its current request.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// [`Gate::stop`], then waits up to `grace` for the connections to end. Returns how many
    /// are still open then (a caller may close them its own way before [`Gate::abort`]).
    pub async fn settle(&mut self, grace: Duration) -> usize {
        self.stop();
        let _ =
            tokio::time::timeout(grace, async { while self.tasks.join_next().await.is_some() {} })
                .await;
        self.open()
    }

    /// Aborts the connections still open and waits until they are gone. Returns how many
    /// were aborted.
    pub async fn abort(mut self) -> usize {
        let n = self.open();
        self.tasks.shutdown().await;
        n
    }

    /// [`Gate::settle`], then [`Gate::abort`]: stops, waits up to `grace` for the connections
    /// to end, aborts the rest. Returns how many were aborted.
    pub async fn drain(mut self, grace: Duration) -> usize {
        self.settle(grace).await;
        self.abort().await
    }
}

/// The first wait after a failed accept.
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest wait after failed accepts.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How long a listener waits after failed accepts: [`ACCEPT_BACKOFF_MIN`], doubling with each
/// failure in a row up to [`ACCEPT_BACKOFF_MAX`], back to the start after a success. A
/// listener out of file descriptors so tries at most about once a second, and takes
/// connections again within a second of descriptors coming free.
#[derive(Debug, Clone, Default)]
pub struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    /// The wait after one more failure in a row.
    pub fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        // 10 ms * 2^7 > 1 s: the shift never needs more.
        let doubled = ACCEPT_BACKOFF_MIN.saturating_mul(1 << (self.failures - 1).min(7));
        doubled.min(ACCEPT_BACKOFF_MAX)
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A success: the next failure waits [`ACCEPT_BACKOFF_MIN`].
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_global_and_per_ip_caps_hold_at_the_limit_and_free_on_drop() {
        let gate = Gate::new(3, Some(2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = gate.admit(Some(a)).unwrap();
        let second = gate.admit(Some(a)).unwrap();
        assert_eq!(gate.admit(Some(a)).unwrap_err(), Refused::PerIp);
        let third = gate.admit(Some(b)).unwrap();
        assert_eq!(gate.admit(Some(b)).unwrap_err(), Refused::Busy);
        assert_eq!(gate.admit(None).unwrap_err(), Refused::Busy);
        drop(first);
        let again = gate.admit(Some(a)).unwrap();
        drop((second, third, again));
        gate.stop();
        assert_eq!(gate.admit(None).unwrap_err(), Refused::Stopping);
    }

    #[test]
    fn an_ipv6_64_is_refused_past_its_cap_and_a_mapped_ipv4_counts_as_ipv4() {
        let gate = Gate::with_caps(100, Some(ConnectionCaps::with_prefix(1, 2)));
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        let held = [gate.admit(Some(a)).unwrap(), gate.admit(Some(b)).unwrap()];
        assert_eq!(
            gate.admit(Some("2001:db8::3".parse().unwrap())).unwrap_err(),
            Refused::PerPrefix
        );
        assert_eq!(gate.admit(Some(a)).unwrap_err(), Refused::PerIp);
        let v4 = gate.admit(Some("192.0.2.1".parse().unwrap())).unwrap();
        assert_eq!(
            gate.admit(Some("::ffff:192.0.2.1".parse().unwrap())).unwrap_err(),
            Refused::PerIp
        );
        drop((held, v4));
    }

    #[test]
    fn the_accept_backoff_doubles_from_10ms_to_1s_and_resets_on_success() {
        let mut b = AcceptBackoff::default();
        let waits: Vec<u64> = (0..10).map(|_| b.failed().as_millis() as u64).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        assert_eq!(b.failures(), 10);
        b.reset();
        assert_eq!(b.failed(), ACCEPT_BACKOFF_MIN);
        for _ in 0..100 {
            assert!(b.failed() <= ACCEPT_BACKOFF_MAX);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_gate_waits_longer_after_each_failed_accept_and_from_the_start_after_one_taken() {
        let mut gate = Gate::new(4, None);
        let emfile = std::io::Error::from_raw_os_error(24);
        let start = tokio::time::Instant::now();
        for _ in 0..9 {
            gate.accept_failed(&emfile).await;
        }
        // 10 + 20 + ... + 640 + 1000 + 1000 ms in virtual time.
        assert_eq!(start.elapsed(), Duration::from_millis(1270 + 2000));
        gate.accepted();
        let again = tokio::time::Instant::now();
        gate.accept_failed(&emfile).await;
        assert_eq!(again.elapsed(), ACCEPT_BACKOFF_MIN);
    }

    #[tokio::test]
    async fn draining_lets_connections_finish_within_the_grace_and_aborts_the_rest() {
        let mut gate = Gate::new(4, None);
        let mut stopping = gate.stopping();
        // One connection ends when told to; one ignores it.
        gate.spawn(gate.admit(None).unwrap(), async move {
            let _ = stopping.wait_for(|s| *s).await;
        });
        gate.spawn(gate.admit(None).unwrap(), std::future::pending());
        assert_eq!(gate.open(), 2);
        assert_eq!(gate.drain(Duration::from_millis(200)).await, 1);
    }

    #[tokio::test]
    async fn settling_reports_the_connections_left_for_the_caller_to_close() {
        let mut gate = Gate::new(4, None);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // Ends only when its caller closes it, after the grace.
        gate.spawn(gate.admit(None).unwrap(), async move {
            let _ = rx.await;
        });
        assert_eq!(gate.settle(Duration::from_millis(100)).await, 1);
        assert_eq!(gate.admit(None).unwrap_err(), Refused::Stopping);
        drop(tx);
        assert_eq!(gate.settle(Duration::from_secs(10)).await, 0);
        assert_eq!(gate.abort().await, 0);
    }
}
