//! Admission and shutdown for a listener's connections, whatever the protocol (DMTP over QUIC
//! or TLS, the local sockets; DMAP and SMTP next): a global cap on connections at once (a
//! semaphore), an optional per-IP cap ([`ConnectionCaps`]), and a graceful stop. At
//! [`Gate::stop`] the listener stops accepting, each connection finishes the request it is
//! serving and then closes, and [`Gate::drain`] waits for them up to a deadline, then aborts
//! the rest ([`Gate::settle`] and [`Gate::abort`] are its two halves, for a listener that
//! closes what is left its own way first, as QUIC closes its endpoint).

use crate::caps::{ConnectionCaps, ConnectionSlot};
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
}

impl Gate {
    /// At most `max_connections` at once, and at most `per_ip` from one address when given.
    pub fn new(max_connections: usize, per_ip: Option<usize>) -> Gate {
        Gate {
            permits: Arc::new(Semaphore::new(max_connections)),
            per_ip: per_ip.map(ConnectionCaps::new),
            stop: watch::Sender::new(false),
            tasks: JoinSet::new(),
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
            (Some(caps), Some(ip)) => Some(caps.try_acquire(ip).ok_or(Refused::PerIp)?),
            _ => None,
        };
        let permit = Arc::clone(&self.permits).try_acquire_owned().map_err(|_| Refused::Busy)?;
        Ok(Admitted { _permit: permit, _slot: slot })
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
