//! The server driver: accept loops for QUIC and TLS over TCP on a [`Gate`] (a global
//! connection cap, per-IP caps, a graceful stop), and the loop that connects one stream to a
//! [`dime_dmtp::Server`] machine and the [`Handler`] (`spec/dmtp.md` §2, §7.1, §8).

use crate::NetError;
use crate::caps::MAX_CONNECTIONS_PER_IP;
use crate::gate::Gate;
use dime_core::crypto::CryptoProvider;
use dime_core::{Domain, Fingerprint};
use dime_dmtp::limits::{ALPN, HANDSHAKE_TIMEOUT};
use dime_dmtp::{
    Delivery, Event, Refusal, Server, ServerConfig, SignetName, TransactionId, VerifyAnswer,
};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
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

/// The QUIC application error code of a connection the server closes because it stops
/// (`spec/dmtp.md` §8), with the reason `shutdown`.
const CLOSE_SHUTDOWN: u32 = 0;
/// The QUIC application error code of a connection whose handshake did not negotiate `dmtp/1`.
const CLOSE_ALPN: u32 = 1;
/// The QUIC application error code of a connection past [`MAX_STREAMS_PER_CONNECTION`].
const CLOSE_TOO_MANY_STREAMS: u32 = 2;

/// Octets read from a stream at a time.
const READ_CHUNK: usize = 64 * 1024;

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
    /// Time for the TLS or QUIC handshake.
    pub handshake_timeout: Duration,
    /// Streams per QUIC connection.
    pub max_streams_per_connection: u64,
}

impl ServerOptions {
    /// The defaults of `spec/dmtp.md` §8 for `domain`.
    pub fn new(domain: Domain, provider: &'static CryptoProvider) -> ServerOptions {
        ServerOptions {
            dmtp: ServerConfig::new(domain),
            provider,
            max_connections: MAX_CONNECTIONS,
            max_connections_per_ip: MAX_CONNECTIONS_PER_IP,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            max_streams_per_connection: MAX_STREAMS_PER_CONNECTION,
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
    serve(reader, writer, handler, options, None).await
}

/// [`serve_stream`], ending early once `stopping` turns true: the stream then starts no
/// transaction (a MAIL gets [`Refusal::Temporary`]) and closes when it waits for the client
/// with none under way ([`Server::in_transaction`]: from an accepted MAIL to the reply to its
/// body, or the RSET, refusal or error that ends it).
async fn serve<R, W, H>(
    mut reader: R,
    mut writer: W,
    handler: &H,
    options: &ServerOptions,
    mut stopping: Option<watch::Receiver<bool>>,
) -> Result<(), NetError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    H: Handler,
{
    let mut m = Server::new(*options.provider, options.dmtp.clone(), Instant::now());
    let mut buf = vec![0u8; READ_CHUNK];
    // What the accepted MAIL of the transaction under way established.
    let mut origin = None;
    loop {
        while let Some(ev) = m.poll_event() {
            let stop = stopping.as_ref().is_some_and(|s| *s.borrow());
            decide(&mut m, ev, handler, &mut origin, stop).await?;
        }
        if crate::stream::write_frames(&mut writer, || m.poll_transmit()).await? {
            // A TLS writer may keep records that the socket did not take at once (rustls
            // buffers them): only a flush sends them before the next read waits.
            writer.flush().await?;
        }
        if m.is_closed() {
            let _ = writer.shutdown().await;
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
                    let _ = writer.shutdown().await;
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

/// Answers `ev` through `handler` (see [`serve`]), keeping in `origin` what the transaction's
/// accepted MAIL established, for its body; once `stopping`, a new transaction is refused
/// without asking the handler.
async fn decide<H: Handler>(
    m: &mut Server,
    ev: Event,
    handler: &H,
    origin: &mut Option<H::Origin>,
    stopping: bool,
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
                    m.reject_mail(r, Instant::now())
                }
            }
        }
        Event::NeedRecipient { destination, fingerprint } => {
            match handler.check_recipient(destination, fingerprint).await {
                Ok(()) => m.accept_recipient(Instant::now()),
                Err(r) => m.reject_recipient(r, Instant::now()),
            }
        }
        // The machine hands a body only in a transaction whose MAIL was accepted.
        Event::MessageReceived(delivery) => match origin.take() {
            None => m.data_failed(Refusal::Temporary, Instant::now()),
            Some(o) => match handler.deliver(*delivery, &o).await {
                Ok(id) => m.data_stored(id, Instant::now()),
                Err(r) => m.data_failed(r, Instant::now()),
            },
        },
        Event::NeedSignet { name, pin } => match handler.signet(name, pin).await {
            Ok(s) => m.provide_signet(s, Instant::now()),
            Err(r) => m.lookup_failed(r, Instant::now()),
        },
        Event::NeedVerify { name, fingerprint } => match handler.verify(name, fingerprint).await {
            Ok(a) => m.provide_verify(a, Instant::now()),
            Err(r) => m.lookup_failed(r, Instant::now()),
        },
        Event::NeedHistory { name, from } => match handler.history(name, from).await {
            Ok(h) => m.provide_history(h, Instant::now()),
            Err(r) => m.lookup_failed(r, Instant::now()),
        },
        Event::Closed(err) => {
            tracing::debug!(error = %err, "dmtp stream closed by protocol error");
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
        let mut gate = Gate::new(options.max_connections, Some(options.max_connections_per_ip));
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
        let stream =
            quic_stream(send, recv, Arc::clone(&handler), Arc::clone(&options), stopping.clone());
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
) {
    match serve(recv, &mut send, handler.as_ref(), &options, Some(stopping)).await {
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
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let options = Arc::new(options);
    let (shutdown, mut asked) = watch::channel(None);
    let task = tokio::spawn(async move {
        let mut gate = Gate::new(options.max_connections, Some(options.max_connections_per_ip));
        let grace = loop {
            tokio::select! {
                biased;
                grace = shutdown_asked(&mut asked) => break grace,
                accepted = listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of descriptors, most often: wait rather than spin.
                            tracing::debug!(error = %e, "tcp accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let admitted = match gate.admit(Some(peer.ip())) {
                        Ok(a) => a,
                        Err(refused) => {
                            tracing::debug!(%refused, "tls connection refused");
                            drop(tcp);
                            continue;
                        }
                    };
                    // Replies are small frames written one by one: with Nagle's algorithm a
                    // reply written while the previous one is unacknowledged waits for the
                    // client's delayed ACK (40 ms on Linux), once per transaction. The client
                    // sets it too.
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "tcp nodelay not set");
                    }
                    let stopping = gate.stopping();
                    let c = tls_connection(
                        tcp,
                        acceptor.clone(),
                        Arc::clone(&handler),
                        Arc::clone(&options),
                        stopping,
                    );
                    gate.spawn(admitted, c);
                }
            }
        };
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

/// One admitted TLS connection: its handshake, then its one stream.
async fn tls_connection<H: Handler>(
    tcp: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    handler: Arc<H>,
    options: Arc<ServerOptions>,
    mut stopping: watch::Receiver<bool>,
) {
    let tls = tokio::select! {
        biased;
        () = stopped(&mut stopping) => return,
        s = tokio::time::timeout(options.handshake_timeout, acceptor.accept(tcp)) => match s {
            Ok(Ok(s)) => s,
            _ => return,
        },
    };
    if tls.get_ref().1.alpn_protocol() != Some(ALPN) {
        return;
    }
    let (r, w) = tokio::io::split(tls);
    if let Err(e) = serve(r, w, handler.as_ref(), &options, Some(stopping)).await {
        tracing::debug!(error = %e, "dmtp tls stream ended with an error");
    }
}
