//! Client connections kept for reuse (`spec/dmtp.md` §2, §11.2), under a key chosen by the
//! caller (a server address; a destination domain and an address).
//!
//! [`QuicPool`]: one QUIC connection per key, its transactions on streams side by side. A live
//! connection is reused; one the peer or the idle timeout closed is replaced by a new one.
//!
//! A reply code is the server's answer whatever the connection's age: a refusal leaves the
//! connection pooled. Any other failure (transport, protocol, a stream closed early) drops it;
//! when the connection was a reused one, the request is made once more on a new connection.
//! Requests under way at once for a key without a live connection wait for one connection
//! attempt rather than each making its own; when that attempt fails, they fail with
//! [`NetError::ConnectFailed`] at once rather than each trying in turn.
//!
//! [`TlsPool`]: TLS-over-TCP connections idle between transactions, any number per key (a TCP
//! connection carries one transaction at a time, so transactions at once each take their
//! own). A transaction takes an idle connection, or connects, and gives it back when it ends
//! with a reply; a connection idle for [`TLS_IDLE`] or at [`MAX_TRANSACTIONS`] is not reused,
//! and idle ones are closed once they pass [`TLS_IDLE`], whichever key they are under.
//! The same failure rule holds: a failure other than a reply on a reused connection is tried
//! once more on a new one.

use crate::{NetError, QuicClient, QuicConnection, TlsConnection};
use dime_core::Domain;
use dime_dmtp::limits::{IDLE_TIMEOUT, MAX_TRANSACTIONS};
use dime_dmtp::{Outgoing, TransactionId};
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// QUIC connections to DMTP servers for our `domain`, one per key, each on its own endpoint
/// ([`QuicClient::for_peer`]). Shared by reference; every method takes `&self`.
pub struct QuicPool<K> {
    domain: Domain,
    conns: Mutex<HashMap<K, (QuicClient, QuicConnection)>>,
    /// One lock per key, held while connecting to it; it holds when the last attempt failed.
    connecting: Mutex<HashMap<K, Arc<tokio::sync::Mutex<Option<Instant>>>>>,
}

impl<K> std::fmt::Debug for QuicPool<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.conns.lock().map_or(0, |m| m.len());
        f.debug_struct("QuicPool")
            .field("domain", &self.domain)
            .field("connections", &n)
            .finish_non_exhaustive()
    }
}

/// Whether `e` is the server's answer (a reply code) rather than a failure of the connection.
fn is_reply(e: &NetError) -> bool {
    matches!(e, NetError::Refused { .. })
}

fn is_live(c: &QuicConnection) -> bool {
    c.quic().close_reason().is_none()
}

impl<K: Eq + Hash + Clone> QuicPool<K> {
    /// An empty pool whose connections name our `domain` (HELLO on transfer streams).
    pub fn new(domain: Domain) -> QuicPool<K> {
        QuicPool {
            domain,
            conns: Mutex::new(HashMap::new()),
            connecting: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<K, (QuicClient, QuicConnection)>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live connection pooled under `key`, if any.
    pub fn live(&self, key: &K) -> Option<QuicConnection> {
        self.map().get(key).map(|(_, c)| c).filter(|c| is_live(c)).cloned()
    }

    /// Whether a live connection is pooled under `key`.
    pub fn is_live(&self, key: &K) -> bool {
        self.live(key).is_some()
    }

    /// The live connection under `key` (`true`: reused), else a new one to `addr`, its
    /// certificate checked for `server_name` by `tls`'s verifier, pooled under `key` (`false`).
    ///
    /// # Errors
    /// Configuration, socket, connection and handshake errors ([`QuicClient::connect`]).
    pub async fn connection(
        &self,
        key: &K,
        addr: SocketAddr,
        server_name: &str,
        tls: &rustls::ClientConfig,
    ) -> Result<(QuicConnection, bool), NetError> {
        if let Some(c) = self.live(key) {
            return Ok((c, true));
        }
        // One connection attempt per key at a time: a request that waited for another's gets
        // its connection, or its failure.
        let asked = Instant::now();
        let lock = {
            let mut m = self.connecting.lock().unwrap_or_else(PoisonError::into_inner);
            m.retain(|k, l| k == key || Arc::strong_count(l) > 1);
            Arc::clone(m.entry(key.clone()).or_default())
        };
        let mut failed = lock.lock().await;
        if let Some(c) = self.live(key) {
            return Ok((c, true));
        }
        if failed.is_some_and(|at| at >= asked) {
            return Err(NetError::ConnectFailed);
        }
        let connected = async {
            let client = QuicClient::for_peer(addr, tls.clone(), self.domain.clone())?;
            let conn = client.connect(addr, server_name).await?;
            Ok::<_, NetError>((client, conn))
        }
        .await;
        *failed = connected.is_err().then(Instant::now);
        let (client, conn) = connected?;
        let mut m = self.map();
        // Closed connections go with their endpoints.
        m.retain(|_, (_, c)| is_live(c));
        m.insert(key.clone(), (client, conn.clone()));
        Ok((conn, false))
    }

    /// Drops the connection pooled under `key` (one that stopped answering).
    pub fn remove(&self, key: &K) {
        self.map().remove(key);
    }

    /// Drops `conn` from under `key` unless another has replaced it there.
    fn discard(&self, key: &K, conn: &QuicConnection) {
        let mut m = self.map();
        if m.get(key).is_some_and(|(_, c)| c.quic().stable_id() == conn.quic().stable_id()) {
            m.remove(key);
        }
    }

    /// Runs `request` on the connection under `key` ([`QuicPool::connection`]). A refusal is
    /// returned as it is and the connection stays pooled. Any other failure drops the
    /// connection; when it was a reused one, `request` runs once more on a new connection.
    ///
    /// # Errors
    /// [`NetError::Refused`] with the server's code; connection, transport and protocol
    /// errors.
    pub async fn run<T, F, Fut>(
        &self,
        key: &K,
        addr: SocketAddr,
        server_name: &str,
        tls: &rustls::ClientConfig,
        request: F,
    ) -> Result<T, NetError>
    where
        F: Fn(QuicConnection) -> Fut,
        Fut: Future<Output = Result<T, NetError>>,
    {
        let (conn, reused) = self.connection(key, addr, server_name, tls).await?;
        match request(conn.clone()).await {
            Err(e) if !is_reply(&e) => {
                self.discard(key, &conn);
                if !reused {
                    return Err(e);
                }
                tracing::debug!(%addr, error = %e, "pooled quic connection failed; reconnecting");
                let (conn, _) = self.connection(key, addr, server_name, tls).await?;
                let r = request(conn.clone()).await;
                if r.as_ref().is_err_and(|e| !is_reply(e)) {
                    self.discard(key, &conn);
                }
                r
            }
            r => r,
        }
    }
}

/// How long a [`TlsPool`] keeps a connection idle: half the server's idle timeout
/// ([`IDLE_TIMEOUT`]), so that a connection taken from the pool is not one the server is about
/// to close.
pub const TLS_IDLE: Duration = Duration::from_secs(IDLE_TIMEOUT.as_secs() / 2);

/// Idle connections a [`TlsPool`] keeps per key; more are closed.
const TLS_IDLE_PER_KEY: usize = 64;

/// A pooled TLS connection: the transactions it carried, and since when it is idle.
struct IdleTls {
    conn: TlsConnection,
    transactions: u32,
    since: Instant,
}

impl IdleTls {
    /// Whether it has been idle for less than `max_idle`.
    fn fresh(&self, max_idle: Duration) -> bool {
        self.since.elapsed() < max_idle
    }
}

/// TLS-over-TCP connections to DMTP servers for our `domain`, idle between transactions,
/// under keys (see the module's documentation). Shared by reference; every method takes
/// `&self`.
pub struct TlsPool<K> {
    domain: Domain,
    max_idle: Duration,
    idle: Mutex<IdleMap<K>>,
}

/// The idle connections by key, and when those idle too long were last closed.
struct IdleMap<K> {
    by_key: HashMap<K, Vec<IdleTls>>,
    pruned: Instant,
}

impl<K> IdleMap<K> {
    /// Drops the connections idle for `max_idle` (closing them), under every key.
    fn close_idle(&mut self, max_idle: Duration) {
        self.by_key.retain(|_, list| {
            list.retain(|c| c.fresh(max_idle));
            !list.is_empty()
        });
        self.pruned = Instant::now();
    }
}

impl<K> std::fmt::Debug for TlsPool<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.idle.lock().map_or(0, |m| m.by_key.values().map(Vec::len).sum());
        f.debug_struct("TlsPool")
            .field("domain", &self.domain)
            .field("idle", &n)
            .finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Clone> TlsPool<K> {
    /// An empty pool whose connections name our `domain` (HELLO).
    pub fn new(domain: Domain) -> TlsPool<K> {
        TlsPool {
            domain,
            max_idle: TLS_IDLE,
            idle: Mutex::new(IdleMap { by_key: HashMap::new(), pruned: Instant::now() }),
        }
    }

    /// Keeps a connection idle for at most `max_idle` rather than [`TLS_IDLE`] (tests; a
    /// server whose peers close idle connections sooner).
    #[must_use]
    pub fn with_max_idle(mut self, max_idle: Duration) -> TlsPool<K> {
        self.max_idle = max_idle;
        self
    }

    /// The idle connections, those idle for the pool's longest idle time closed first (under
    /// every key, at most once a second: a connection to a destination not asked again is
    /// closed too).
    fn map(&self) -> MutexGuard<'_, IdleMap<K>> {
        let mut m = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if m.pruned.elapsed() >= self.max_idle.min(Duration::from_secs(1)) {
            m.close_idle(self.max_idle);
        }
        m
    }

    /// Idle connections under `key`.
    pub fn idle(&self, key: &K) -> usize {
        self.map().by_key.get(key).map_or(0, Vec::len)
    }

    /// Closes the connections idle past their time, under every key (any use of the pool
    /// does so too, at most once a second).
    pub fn close_idle(&self) {
        let mut m = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        m.close_idle(self.max_idle);
    }

    /// Idle connections under every key.
    pub fn idle_total(&self) -> usize {
        self.map().by_key.values().map(Vec::len).sum()
    }

    /// The most recently idle connection under `key` not idle for the pool's longest idle time
    /// yet (older ones are dropped).
    fn take(&self, key: &K) -> Option<IdleTls> {
        let max_idle = self.max_idle;
        let mut m = self.map();
        let list = m.by_key.get_mut(key)?;
        list.retain(|c| c.fresh(max_idle));
        let c = list.pop();
        if list.is_empty() {
            m.by_key.remove(key);
        }
        c
    }

    /// Gives `conn` back after a transaction that ended with a reply, or says QUIT on it once
    /// it carried [`MAX_TRANSACTIONS`] (the server's limit).
    async fn give_back(&self, key: &K, mut conn: IdleTls) {
        conn.transactions = conn.transactions.saturating_add(1);
        if conn.transactions >= MAX_TRANSACTIONS {
            let _ = conn.conn.quit().await;
            return;
        }
        conn.since = Instant::now();
        let mut m = self.map();
        let list = m.by_key.entry(key.clone()).or_default();
        if list.len() < TLS_IDLE_PER_KEY {
            list.push(conn);
        }
    }

    async fn connect(
        &self,
        addr: SocketAddr,
        server_name: &str,
        tls: &Arc<rustls::ClientConfig>,
    ) -> Result<IdleTls, NetError> {
        let conn = TlsConnection::connect(addr, server_name, Arc::clone(tls), &self.domain).await?;
        Ok(IdleTls { conn, transactions: 0, since: Instant::now() })
    }

    /// Delivers `msg` on an idle connection under `key`, or on a new one to `addr` (its
    /// certificate checked for `server_name` by `tls`'s verifier). A reply (the transaction id,
    /// or a refusal) gives the connection back to the pool. Any other failure drops the
    /// connection; when it was a reused one, `msg` is sent once more on a new connection.
    ///
    /// # Errors
    /// [`NetError::Refused`] with the server's code; connection, transport and protocol
    /// errors.
    pub async fn send(
        &self,
        key: &K,
        addr: SocketAddr,
        server_name: &str,
        tls: &Arc<rustls::ClientConfig>,
        msg: &Outgoing,
    ) -> Result<TransactionId, NetError> {
        let (mut conn, reused) = match self.take(key) {
            Some(c) => (c, true),
            None => (self.connect(addr, server_name, tls).await?, false),
        };
        let mut r = conn.conn.send(msg.clone()).await;
        if reused && r.as_ref().is_err_and(|e| !is_reply(e)) {
            if let Err(e) = &r {
                tracing::debug!(%addr, error = %e, "pooled tls connection failed; reconnecting");
            }
            conn = self.connect(addr, server_name, tls).await?;
            r = conn.conn.send(msg.clone()).await;
        }
        match &r {
            Ok(_) => self.give_back(key, conn).await,
            Err(e) if is_reply(e) => self.give_back(key, conn).await,
            Err(_) => {}
        }
        r
    }
}
