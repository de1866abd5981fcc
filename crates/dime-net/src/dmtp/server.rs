//! The server driver: accept loops for QUIC and TLS over TCP on a [`Gate`] (a global
//! connection cap, per-IP and per-IPv6-/64 caps, a back-off after failed accepts, a graceful
//! stop), and the loop that connects one stream to a [`dime_dmtp::Server`] machine and the
//! [`Handler`], with a write deadline, a lookup rate per source and error delays
//! (`spec/dmtp.md` §2, §3, §7.1, §8).

use crate::NetError;
use crate::caps::{ConnectionCaps, MAX_CONNECTIONS_PER_IP, MAX_CONNECTIONS_PER_PREFIX};
use crate::gate::Gate;
use crate::ratelimit::{ErrorDelay, LogLimiter, Peer, SourceRate, with_peer};
use dime_core::crypto::CryptoProvider;
use dime_core::{Domain, Fingerprint};
use dime_dmtp::limits::{ALPN, HANDSHAKE_TIMEOUT, IDLE_TIMEOUT};
use dime_dmtp::{
    Delivery, Event, Refusal, Server, ServerConfig, SignetName, TransactionId, VerifyAnswer,
};
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Streams (transactions) per QUIC connection before the server closes it
/// (`spec/dmtp.md` §8).
pub const MAX_STREAMS_PER_CONNECTION: u64 = 100_000;

/// Connections at once on one listener, QUIC and TCP counted apart, handshakes included; one
/// more is refused before its handshake (`spec/dmtp.md` §8).
pub const MAX_CONNECTIONS: usize = 1024;

/// How long a listener that stops lets the transactions under way finish before it closes
/// the connections still open (`spec/dmtp.md` §8).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long one write of replies may wait for the peer to take them (it reads nothing, its
/// window stays shut) before the server closes the connection (`spec/dmtp.md` §8).
pub const WRITE_TIMEOUT: Duration = IDLE_TIMEOUT;

/// The TLS alert record a server sends to refuse a ClientHello without the ALPN `dmtp/1`
/// (`spec/dmtp.md` §3): plaintext (no key is agreed before the ServerHello), content type
/// alert (21), legacy version TLS 1.2, 2 octets: fatal (2), `no_application_protocol` (120).
const NO_APPLICATION_PROTOCOL_ALERT: [u8; 7] = [21, 3, 3, 0, 2, 2, 120];

/// The QUIC application error code of a connection the server closes because it stops
/// (`spec/dmtp.md` §8), with the reason `shutdown`.
const CLOSE_SHUTDOWN: u32 = 0;
/// The QUIC application error code of a connection whose handshake did not negotiate `dmtp/1`.
const CLOSE_ALPN: u32 = 1;
/// The QUIC application error code of a connection past [`MAX_STREAMS_PER_CONNECTION`].
const CLOSE_TOO_MANY_STREAMS: u32 = 2;

/// Octets read from a stream at a time.
const READ_CHUNK: usize = 64 * 1024;

/// The counter of DMTP connections accepted, handshake and ALPN done, by `transport` (`quic`,
/// `tls`) (`spec/dimed.md` §8); kept through the `metrics` facade, so nothing unless the
/// process installed a recorder.
pub const DMTP_CONNECTIONS_METRIC: &str = "dime_dmtp_connections_total";
/// The gauge of DMTP connections open now, by `transport` (`spec/dimed.md` §8).
pub const DMTP_CONNECTIONS_OPEN_METRIC: &str = "dime_dmtp_connections_open";

/// One connection counted accepted, and open until it is dropped.
struct Counted(&'static str);

impl Counted {
    fn new(transport: &'static str) -> Counted {
        metrics::counter!(DMTP_CONNECTIONS_METRIC, "transport" => transport).increment(1);
        metrics::gauge!(DMTP_CONNECTIONS_OPEN_METRIC, "transport" => transport).increment(1.0);
        Counted(transport)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        metrics::gauge!(DMTP_CONNECTIONS_OPEN_METRIC, "transport" => self.0).decrement(1.0);
    }
}

/// What the server does with the machine's requests: the resolver, the store and the signet
/// service, supplied by `dime-server` (or a test). Each method answers one `Need*` event of
/// [`dime_dmtp::Event`].
pub trait Handler: Send + Sync + 'static {
    /// What an accepted MAIL established about its origin (a destination: the origin's
    /// signing key), kept by the driver for that transaction's body: the origin is looked up
    /// once per transaction.
    type Origin: Send + Sync + 'static;
    /// MAIL: authenticate `origin`'s signet as `fingerprint`.
    fn verify_origin(
        &self,
        origin: Domain,
        fingerprint: Fingerprint,
    ) -> impl Future<Output = Result<Self::Origin, Refusal>> + Send;
    /// RCPT: is `destination` served here, sealed to its current signet `fingerprint`?
    fn check_recipient(
        &self,
        destination: Domain,
        fingerprint: Fingerprint,
    ) -> impl Future<Output = Result<(), Refusal>> + Send;
    /// A body whose size and hash matched: verify (its origin as its MAIL established it),
    /// open, store durably, return the id.
    fn deliver(
        &self,
        delivery: Delivery,
        origin: &Self::Origin,
    ) -> impl Future<Output = Result<TransactionId, Refusal>> + Send;
    /// SGNT.
    fn signet(
        &self,
        name: SignetName,
        pin: Option<Fingerprint>,
    ) -> impl Future<Output = Result<Vec<u8>, Refusal>> + Send;
    /// VRFY.
    fn verify(
        &self,
        name: SignetName,
        fingerprint: Fingerprint,
    ) -> impl Future<Output = Result<VerifyAnswer, Refusal>> + Send;
    /// HIST.
    fn history(
        &self,
        name: SignetName,
        from: Fingerprint,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, Refusal>> + Send;
}

/// How a server runs: the machine's limits and the transport's.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The DMTP machine's configuration (domain and limits).
    pub dmtp: ServerConfig,
    /// The crypto provider (the machine hashes bodies with it).
    pub provider: &'static CryptoProvider,
    /// Connections at once on the listener, from every address, handshakes included.
    pub max_connections: usize,
    /// Connections at once from one IP address.
    pub max_connections_per_ip: usize,
    /// Connections at once from one IPv6 /64.
    pub max_connections_per_prefix: usize,
    /// Time for the TLS or QUIC handshake.
    pub handshake_timeout: Duration,
    /// Streams per QUIC connection.
    pub max_streams_per_connection: u64,
    /// How long one write may wait for the peer to take it before the connection is closed.
    pub write_timeout: Duration,
    /// The lookups (SGNT, VRFY, HIST) each source may make: over it a lookup is answered
    /// [`Refusal::Temporary`] without asking the [`Handler`]. Shared by the listeners given
    /// clones of these options.
    pub lookup_rate: Arc<SourceRate>,
    /// The log lines per source a [`Handler`] lets through ([`crate::log_allowed`]). Shared
    /// like [`ServerOptions::lookup_rate`].
    pub log_limiter: Arc<LogLimiter>,
    /// The waits after errors on a connection (refusals, protocol errors that close).
    pub error_delay: ErrorDelay,
}

impl ServerOptions {
    /// The listener's gate over these caps.
    fn gate(&self) -> Gate {
        let caps = ConnectionCaps::with_prefix(
            self.max_connections_per_ip,
            self.max_connections_per_prefix,
        );
        Gate::with_caps(self.max_connections, Some(caps))
    }

    /// The defaults of `spec/dmtp.md` §8 for `domain`.
    pub fn new(domain: Domain, provider: &'static CryptoProvider) -> ServerOptions {
        ServerOptions {
            dmtp: ServerConfig::new(domain),
            provider,
            max_connections: MAX_CONNECTIONS,
            max_connections_per_ip: MAX_CONNECTIONS_PER_IP,
            max_connections_per_prefix: MAX_CONNECTIONS_PER_PREFIX,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            max_streams_per_connection: MAX_STREAMS_PER_CONNECTION,
            write_timeout: WRITE_TIMEOUT,
            lookup_rate: Arc::default(),
            log_limiter: Arc::default(),
            error_delay: ErrorDelay::default(),
        }
    }
}

/// A running listener: its address and its accept task, which owns the listener's [`Gate`]
/// and so every connection task. Dropping the handle does not stop it; call
/// [`ServerHandle::shutdown`].
#[derive(Debug)]
pub struct ServerHandle {
    /// The bound address (useful after binding port 0).
    pub local_addr: SocketAddr,
    shutdown: watch::Sender<Option<Duration>>,
    task: JoinHandle<usize>,
}

impl ServerHandle {
    /// Stops the listener gracefully (`spec/dmtp.md` §8). At this call it stops accepting
    /// (QUIC: each new connection refused; TCP: the listening socket closed); a connection
    /// starts no new transaction (a MAIL gets 450) and closes once the transactions under way
    /// on it are answered (QUIC: streams it has not accepted are left, the connection closed
    /// with application code 0 and the reason `shutdown`; TLS: close_notify, then the TCP
    /// close). After `grace`, the connections still open are closed (QUIC: the endpoint
    /// closed with the same code; TLS: dropped).
    ///
    /// The future resolves once every connection is closed, to how many were closed at the
    /// grace rather than by themselves. The stop does not wait for it to be polled: dropping
    /// it leaves the stop under way.
    pub fn shutdown(self, grace: Duration) -> impl Future<Output = usize> + Send + 'static {
        self.shutdown.send_replace(Some(grace));
        let task = self.task;
        async move { task.await.unwrap_or(0) }
    }
}

/// The grace asked for by [`ServerHandle::shutdown`]; never resolves when the handle was
/// dropped without it (the listener then runs on).
async fn shutdown_asked(rx: &mut watch::Receiver<Option<Duration>>) -> Duration {
    match rx.wait_for(Option::is_some).await.map(|g| *g) {
        Ok(Some(grace)) => grace,
        _ => std::future::pending().await,
    }
}

/// Resolves once the gate `stopping` came from stops.
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    if stopping.wait_for(|s| *s).await.is_err() {
        // The gate is gone, and with it every connection task: nothing waits on this.
        std::future::pending::<()>().await;
    }
}

/// Runs one DMTP stream to its end: reads frames into the machine, answers its events through
/// `handler`, writes its replies; enforces the machine's deadlines.
///
/// # Errors
/// [`NetError::Io`] when the stream fails; [`NetError::Misuse`] on a driver bug.
pub async fn serve_stream<R, W, H>(
    reader: R,
    writer: W,
    handler: &H,
    options: &ServerOptions,
) -> Result<(), NetError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    H: Handler,
{
    serve(reader, writer, handler, options, None, &Connection::default()).await
}

/// What the streams of one connection share: its peer (for the limits per source) and its
/// error count (for [`ErrorDelay`]).
#[derive(Debug, Default)]
struct Connection {
    peer: Option<IpAddr>,
    errors: AtomicU32,
}

impl Connection {
    fn new(peer: IpAddr) -> Connection {
        Connection { peer: Some(peer), errors: AtomicU32::new(0) }
    }

    /// Counts one more error: the wait before its answer, or `None` when the connection has
    /// had more than `delay.limit` and is to be closed.
    fn error(&self, delay: &ErrorDelay) -> Option<Duration> {
        let n = self.errors.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        (n <= delay.limit).then(|| delay.after(n))
    }
}

/// Where a stream's replies go: its writer and its write deadline.
struct Out<'a, W> {
    writer: &'a mut W,
    timeout: Duration,
}

impl<W: AsyncWrite + Unpin> Out<'_, W> {
    /// Writes every reply the machine has ready and flushes them.
    async fn send(&mut self, m: &mut Server) -> Result<(), NetError> {
        let writer = &mut *self.writer;
        let write = async {
            if crate::stream::write_frames(writer, || m.poll_transmit()).await? {
                // A TLS writer may keep records that the socket did not take at once (rustls
                // buffers them): only a flush sends them before the next read waits.
                writer.flush().await?;
            }
            Ok::<_, std::io::Error>(())
        };
        Ok(crate::stream::within(self.timeout, write).await?)
    }

    /// One more error of `conn` (`spec/dmtp.md` §8): the replies already decided go out first,
    /// so that a pipelining peer is not kept waiting for them, then the error's wait; past
    /// the connection's limit of errors, the stream ends instead.
    async fn error(
        &mut self,
        m: &mut Server,
        conn: &Connection,
        options: &ServerOptions,
    ) -> Result<(), NetError> {
        let Some(wait) = conn.error(&options.error_delay) else {
            // The answers decided so far go out; this error's is never given.
            self.send(m).await?;
            let _ = crate::stream::within(self.timeout, self.writer.shutdown()).await;
            tracing::debug!(peer = ?conn.peer, "too many errors on a connection: closed");
            return Err(NetError::Io(std::io::Error::other("too many errors on the connection")));
        };
        if !wait.is_zero() {
            self.send(m).await?;
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }
}

/// [`serve_stream`], ending early once `stopping` turns true: the stream then starts no
/// transaction (a MAIL gets [`Refusal::Temporary`]) and closes when it waits for the client
/// with none under way ([`Server::in_transaction`]: from an accepted MAIL to the reply to its
/// body, or the RSET, refusal or error that ends it).
///
/// Every write waits at most [`ServerOptions::write_timeout`] for the peer to take it: past
/// that the stream ends with [`NetError::Io`] (`TimedOut`) and its connection is closed.
/// Lookups from `conn`'s peer are limited by [`ServerOptions::lookup_rate`]; errors wait
/// [`ServerOptions::error_delay`] before their answer; the handler runs with the peer as
/// [`crate::peer`].
async fn serve<R, W, H>(
    reader: R,
    writer: W,
    handler: &H,
    options: &ServerOptions,
    stopping: Option<watch::Receiver<bool>>,
    conn: &Connection,
) -> Result<(), NetError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    H: Handler,
{
    let peer = conn.peer.map(|ip| Peer { ip, log: Arc::clone(&options.log_limiter) });
    with_peer(peer, serve_in_scope(reader, writer, handler, options, stopping, conn)).await
}

async fn serve_in_scope<R, W, H>(
    mut reader: R,
    mut writer: W,
    handler: &H,
    options: &ServerOptions,
    mut stopping: Option<watch::Receiver<bool>>,
    conn: &Connection,
) -> Result<(), NetError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    H: Handler,
{
    // The peer's bodies count against its source's share of the body budget.
    let mut config = options.dmtp.clone();
    config.peer = conn.peer;
    let mut m = Server::new(*options.provider, config, Instant::now());
    let mut buf = vec![0u8; READ_CHUNK];
    // What the accepted MAIL of the transaction under way established.
    let mut origin = None;
    loop {
        let mut out = Out { writer: &mut writer, timeout: options.write_timeout };
        while let Some(ev) = m.poll_event() {
            let stop = stopping.as_ref().is_some_and(|s| *s.borrow());
            decide(&mut m, ev, handler, &mut origin, stop, options, conn, &mut out).await?;
        }
        out.send(&mut m).await?;
        if m.is_closed() {
            let _ = crate::stream::within(options.write_timeout, writer.shutdown()).await;
            return Ok(());
        }
        if !m.wants_input() {
            // Every event was answered above, so the machine can only be waiting for input.
            return Err(NetError::Misuse("machine wants no input and has nothing to do"));
        }
        let read = crate::stream::read_until(&mut reader, &mut buf, m.poll_timeout());
        let read = match stopping.as_mut() {
            // Between transactions, a stop ends the stream; one under way goes on.
            Some(stop) if !m.in_transaction() => tokio::select! {
                biased;
                () = stopped(stop) => {
                    let _ = crate::stream::within(options.write_timeout, writer.shutdown()).await;
                    return Ok(());
                }
                r = read => r?,
            },
            _ => read.await?,
        };
        match read {
            None => m.handle_timeout(Instant::now()),
            Some(0) => m.handle_end(Instant::now()),
            Some(n) => m.handle_input(buf.get(..n).unwrap_or_default(), Instant::now()),
        }
    }
}

/// Whether `conn`'s peer may make one more lookup ([`ServerOptions::lookup_rate`]); always
/// with no peer known.
fn lookup_allowed(options: &ServerOptions, conn: &Connection) -> bool {
    conn.peer.is_none_or(|ip| options.lookup_rate.allow(ip, Instant::now()))
}

/// Answers `ev` through `handler` (see [`serve`]), keeping in `origin` what the transaction's
/// accepted MAIL established, for its body; once `stopping`, a new transaction is refused
/// without asking the handler. A lookup over the peer's rate is refused
/// [`Refusal::Temporary`] without asking the handler. Each refusal, and a protocol error that
/// closes, counts as an error of `conn` and waits as [`ServerOptions::error_delay`] says
/// before its answer.
#[allow(clippy::too_many_arguments)]
async fn decide<H: Handler, W: AsyncWrite + Unpin>(
    m: &mut Server,
    ev: Event,
    handler: &H,
    origin: &mut Option<H::Origin>,
    stopping: bool,
    options: &ServerOptions,
    conn: &Connection,
    out: &mut Out<'_, W>,
) -> Result<(), NetError> {
    let r = match ev {
        Event::NeedVerifyOrigin { .. } if stopping => {
            *origin = None;
            m.reject_mail(Refusal::Temporary, Instant::now())
        }
        Event::NeedVerifyOrigin { origin: domain, fingerprint } => {
            match handler.verify_origin(domain, fingerprint).await {
                Ok(o) => {
                    *origin = Some(o);
                    m.accept_mail(Instant::now())
                }
                Err(r) => {
                    *origin = None;
                    out.error(m, conn, options).await?;
                    m.reject_mail(r, Instant::now())
                }
            }
        }
        Event::NeedRecipient { destination, fingerprint } => {
            match handler.check_recipient(destination, fingerprint).await {
                Ok(()) => m.accept_recipient(Instant::now()),
                Err(r) => {
                    out.error(m, conn, options).await?;
                    m.reject_recipient(r, Instant::now())
                }
            }
        }
        // The machine hands a body only in a transaction whose MAIL was accepted.
        Event::MessageReceived(delivery) => match origin.take() {
            None => m.data_failed(Refusal::Temporary, Instant::now()),
            Some(o) => match handler.deliver(*delivery, &o).await {
                Ok(id) => m.data_stored(id, Instant::now()),
                Err(r) => {
                    out.error(m, conn, options).await?;
                    m.data_failed(r, Instant::now())
                }
            },
        },
        Event::NeedSignet { .. } | Event::NeedVerify { .. } | Event::NeedHistory { .. }
            if !lookup_allowed(options, conn) =>
        {
            tracing::debug!(peer = ?conn.peer, "lookup over the source's rate refused");
            out.error(m, conn, options).await?;
            m.lookup_failed(Refusal::Temporary, Instant::now())
        }
        Event::NeedSignet { name, pin } => match handler.signet(name, pin).await {
            Ok(s) => m.provide_signet(s, Instant::now()),
            Err(r) => {
                out.error(m, conn, options).await?;
                m.lookup_failed(r, Instant::now())
            }
        },
        Event::NeedVerify { name, fingerprint } => match handler.verify(name, fingerprint).await {
            Ok(a) => m.provide_verify(a, Instant::now()),
            Err(r) => {
                out.error(m, conn, options).await?;
                m.lookup_failed(r, Instant::now())
            }
        },
        Event::NeedHistory { name, from } => match handler.history(name, from).await {
            Ok(h) => m.provide_history(h, Instant::now()),
            Err(r) => {
                out.error(m, conn, options).await?;
                m.lookup_failed(r, Instant::now())
            }
        },
        Event::Closed(err) => {
            tracing::debug!(error = %err, "dmtp stream closed by protocol error");
            // The closing reply of a peer's error waits too, as a refusal does; not a
            // deadline's or an end's (the peer is silent or gone: waiting only holds its
            // place).
            use dime_dmtp::ProtocolError::*;
            if !matches!(err, HandshakeTimeout | IdleTimeout | BodyTooSlow | UnexpectedEnd) {
                out.error(m, conn, options).await?;
            }
            Ok(())
        }
    };
    r.map_err(|e| NetError::Misuse(e.0))
}

/// Serves DMTP over QUIC on `endpoint` (built with [`crate::quic_server_config`]) until
/// [`ServerHandle::shutdown`] or until the endpoint is closed. Each connection is admitted
/// by the listener's [`Gate`] (at most [`ServerOptions::max_connections`], and
/// [`ServerOptions::max_connections_per_ip`] from one address) before its handshake; one
/// more is refused.
///
/// # Errors
/// [`NetError::Io`] when the endpoint has no local address.
pub fn spawn_quic<H: Handler>(
    endpoint: quinn::Endpoint,
    handler: Arc<H>,
    options: ServerOptions,
) -> Result<ServerHandle, NetError> {
    let local_addr = endpoint.local_addr()?;
    let options = Arc::new(options);
    let (shutdown, mut asked) = watch::channel(None);
    let task = tokio::spawn(async move {
        let mut gate = options.gate();
        let grace = loop {
            tokio::select! {
                biased;
                grace = shutdown_asked(&mut asked) => break grace,
                incoming = endpoint.accept() => {
                    // The endpoint was closed by its owner: its connections are gone with it.
                    let Some(incoming) = incoming else { break Duration::ZERO };
                    match gate.admit(Some(incoming.remote_address().ip())) {
                        Ok(admitted) => {
                            let stopping = gate.stopping();
                            let c = quic_connection(
                                incoming,
                                Arc::clone(&handler),
                                Arc::clone(&options),
                                stopping,
                            );
                            gate.spawn(admitted, c);
                        }
                        Err(refused) => {
                            tracing::debug!(%refused, "quic connection refused");
                            incoming.refuse();
                        }
                    }
                }
            }
        };
        let left = tokio::select! {
            n = gate.settle(grace) => n,
            never = refuse_all(&endpoint) => match never {},
        };
        endpoint.close(quinn::VarInt::from_u32(CLOSE_SHUTDOWN), b"shutdown");
        let aborted = gate.abort().await;
        if left > 0 {
            tracing::info!(closed = left, "quic connections closed at the shutdown grace");
        }
        aborted
    });
    Ok(ServerHandle { local_addr, shutdown, task })
}

/// Refuses every new connection on `endpoint` while the listener stops; then waits forever.
async fn refuse_all(endpoint: &quinn::Endpoint) -> Infallible {
    while let Some(incoming) = endpoint.accept().await {
        incoming.refuse();
    }
    std::future::pending().await
}

/// One admitted QUIC connection: its handshake, then a task per stream until the connection
/// ends or the listener stops; at the stop it accepts no more streams, lets those under way
/// end, and closes with [`CLOSE_SHUTDOWN`].
async fn quic_connection<H: Handler>(
    incoming: quinn::Incoming,
    handler: Arc<H>,
    options: Arc<ServerOptions>,
    mut stopping: watch::Receiver<bool>,
) {
    let Ok(connecting) = incoming.accept() else { return };
    let conn = tokio::select! {
        biased;
        () = stopped(&mut stopping) => return,
        c = tokio::time::timeout(options.handshake_timeout, connecting) => match c {
            Ok(Ok(c)) => c,
            _ => return,
        },
    };
    let alpn_ok = conn
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|d| d.protocol)
        .is_some_and(|p| p == ALPN);
    if !alpn_ok {
        conn.close(quinn::VarInt::from_u32(CLOSE_ALPN), b"alpn");
        return;
    }
    let _counted = Counted::new("quic");
    let shared = Arc::new(Connection::new(conn.remote_address().ip()));
    let mut streams = JoinSet::new();
    let mut n = 0u64;
    loop {
        let accepted = tokio::select! {
            biased;
            () = stopped(&mut stopping) => break,
            s = conn.accept_bi() => s,
        };
        // Otherwise the connection ended: its streams end with it.
        let Ok((send, recv)) = accepted else { break };
        n += 1;
        if n > options.max_streams_per_connection {
            conn.close(quinn::VarInt::from_u32(CLOSE_TOO_MANY_STREAMS), b"too many streams");
            return;
        }
        while streams.try_join_next().is_some() {}
        let stream = quic_stream(
            send,
            recv,
            Arc::clone(&handler),
            Arc::clone(&options),
            stopping.clone(),
            Arc::clone(&shared),
        );
        streams.spawn(stream);
    }
    while streams.join_next().await.is_some() {}
    conn.close(quinn::VarInt::from_u32(CLOSE_SHUTDOWN), b"shutdown");
}

/// One QUIC stream: served to its end, then kept until the client has acknowledged the last
/// reply (closing the connection before would discard it unsent).
async fn quic_stream<H: Handler>(
    mut send: quinn::SendStream,
    recv: quinn::RecvStream,
    handler: Arc<H>,
    options: Arc<ServerOptions>,
    stopping: watch::Receiver<bool>,
    conn: Arc<Connection>,
) {
    match serve(recv, &mut send, handler.as_ref(), &options, Some(stopping), &conn).await {
        Ok(()) => {
            let _ = send.stopped().await;
        }
        Err(e) => tracing::debug!(error = %e, "dmtp quic stream ended with an error"),
    }
}

/// Serves DMTP over TLS on TCP `listener` with `tls` (built with
/// [`crate::server_tls_config`]) until [`ServerHandle::shutdown`]. Each connection is admitted
/// by the listener's [`Gate`] (at most [`ServerOptions::max_connections`], and
/// [`ServerOptions::max_connections_per_ip`] from one address) before its handshake; one
/// more is closed at once.
///
/// # Errors
/// [`NetError::Io`] when the listener has no local address.
pub fn spawn_tls<H: Handler>(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    handler: Arc<H>,
    options: ServerOptions,
) -> Result<ServerHandle, NetError> {
    let local_addr = listener.local_addr()?;
    let tls = Arc::new(tls);
    let options = Arc::new(options);
    let (shutdown, mut asked) = watch::channel(None);
    let task = tokio::spawn(async move {
        let mut gate = options.gate();
        let grace = gate
            .accept_tcp(
                &listener,
                shutdown_asked(&mut asked),
                "tls",
                |_| {},
                |tcp, peer, stopping| {
                    tls_connection(
                        tcp,
                        Arc::clone(&tls),
                        Arc::clone(&handler),
                        Arc::clone(&options),
                        stopping,
                        peer.ip(),
                    )
                },
            )
            .await;
        drop(listener);
        let left = gate.settle(grace).await;
        let aborted = gate.abort().await;
        if left > 0 {
            tracing::info!(closed = left, "tls connections closed at the shutdown grace");
        }
        aborted
    });
    Ok(ServerHandle { local_addr, shutdown, task })
}

/// The TLS handshake of `tcp` under `config`, refused unless the ClientHello offers the ALPN
/// `dmtp/1` (`spec/dmtp.md` §3): rustls itself refuses a ClientHello that offers other
/// protocols only, but completes one that offers none, so the ClientHello is read first and
/// one without `dmtp/1` is answered with a fatal `no_application_protocol` alert.
async fn tls_handshake(
    tcp: tokio::net::TcpStream,
    config: Arc<rustls::ServerConfig>,
) -> std::io::Result<Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>> {
    let start =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
    let offers_dmtp =
        start.client_hello().alpn().is_some_and(|mut offered| offered.any(|p| p == ALPN));
    if !offers_dmtp {
        let mut tcp = start.io;
        let _ = tcp.write_all(&NO_APPLICATION_PROTOCOL_ALERT).await;
        let _ = tcp.shutdown().await;
        return Ok(None);
    }
    let tls = start.into_stream(config).await?;
    // Agreed by rustls from the offer checked above; checked again all the same.
    Ok((tls.get_ref().1.alpn_protocol() == Some(ALPN)).then_some(tls))
}

/// One admitted TLS connection: its handshake, then its one stream.
async fn tls_connection<H: Handler>(
    tcp: tokio::net::TcpStream,
    config: Arc<rustls::ServerConfig>,
    handler: Arc<H>,
    options: Arc<ServerOptions>,
    mut stopping: watch::Receiver<bool>,
    peer: IpAddr,
) {
    let tls = tokio::select! {
        biased;
        () = stopped(&mut stopping) => return,
        s = tokio::time::timeout(options.handshake_timeout, tls_handshake(tcp, config)) => match s {
            Ok(Ok(Some(s))) => s,
            Ok(Ok(None)) => {
                tracing::debug!(%peer, "tls handshake without alpn dmtp/1 refused");
                return;
            }
            _ => return,
        },
    };
    let _counted = Counted::new("tls");
    let (r, w) = tokio::io::split(tls);
    let conn = Connection::new(peer);
    if let Err(e) = serve(r, w, handler.as_ref(), &options, Some(stopping), &conn).await {
        tracing::debug!(error = %e, "dmtp tls stream ended with an error");
    }
}
