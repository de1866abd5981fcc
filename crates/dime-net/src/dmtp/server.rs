//! The server driver: accept loops for QUIC and TLS over TCP, and the loop that connects one
//! stream to a [`dime_dmtp::Server`] machine and the [`Handler`] (`spec/dmtp.md` §2, §7.1).

use crate::NetError;
use crate::caps::{ConnectionCaps, MAX_CONNECTIONS_PER_IP};
use dime_core::crypto::CryptoProvider;
use dime_core::{Domain, Fingerprint};
use dime_dmtp::limits::{ALPN, HANDSHAKE_TIMEOUT};
use dime_dmtp::{
    Delivery, Event, Refusal, Server, ServerConfig, SignetName, TransactionId, VerifyAnswer,
};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Streams (transactions) per QUIC connection before the server closes it
/// (`spec/dmtp.md` §8).
pub const MAX_STREAMS_PER_CONNECTION: u64 = 100_000;

/// Octets read from a stream at a time.
const READ_CHUNK: usize = 64 * 1024;

/// What the server does with the machine's requests: the resolver, the store and the signet
/// service, supplied by `dime-server` (or a test). Each method answers one `Need*` event of
/// [`dime_dmtp::Event`].
pub trait Handler: Send + Sync + 'static {
    /// MAIL: authenticate `origin`'s signet as `fingerprint`.
    fn verify_origin(
        &self,
        origin: Domain,
        fingerprint: Fingerprint,
    ) -> impl Future<Output = Result<(), Refusal>> + Send;
    /// RCPT: is `destination` served here, sealed to its current signet `fingerprint`?
    fn check_recipient(
        &self,
        destination: Domain,
        fingerprint: Fingerprint,
    ) -> impl Future<Output = Result<(), Refusal>> + Send;
    /// A body whose size and hash matched: verify, open, store durably, return the id.
    fn deliver(
        &self,
        delivery: Delivery,
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
            max_connections_per_ip: MAX_CONNECTIONS_PER_IP,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            max_streams_per_connection: MAX_STREAMS_PER_CONNECTION,
        }
    }
}

/// A running server: its address and its task. Dropping the handle does not stop it; call
/// [`ServerHandle::shutdown`].
#[derive(Debug)]
pub struct ServerHandle {
    /// The bound address (useful after binding port 0).
    pub local_addr: SocketAddr,
    task: JoinHandle<()>,
    endpoint: Option<quinn::Endpoint>,
}

impl ServerHandle {
    /// Stops accepting and closes open connections.
    pub fn shutdown(self) {
        if let Some(e) = &self.endpoint {
            e.close(quinn::VarInt::from_u32(0), b"shutdown");
        }
        self.task.abort();
    }
}

/// Runs one DMTP stream to its end: reads frames into the machine, answers its events through
/// `handler`, writes its replies; enforces the machine's deadlines.
///
/// # Errors
/// [`NetError::Io`] when the stream fails; [`NetError::Misuse`] on a driver bug.
pub async fn serve_stream<R, W, H>(
    mut reader: R,
    mut writer: W,
    handler: &H,
    options: &ServerOptions,
) -> Result<(), NetError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    H: Handler,
{
    let mut m = Server::new(*options.provider, options.dmtp.clone(), Instant::now());
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        while let Some(ev) = m.poll_event() {
            decide(&mut m, ev, handler).await?;
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
        match crate::stream::read_until(&mut reader, &mut buf, m.poll_timeout()).await? {
            None => m.handle_timeout(Instant::now()),
            Some(0) => m.handle_end(Instant::now()),
            Some(n) => m.handle_input(buf.get(..n).unwrap_or_default(), Instant::now()),
        }
    }
}

async fn decide<H: Handler>(m: &mut Server, ev: Event, handler: &H) -> Result<(), NetError> {
    let r = match ev {
        Event::NeedVerifyOrigin { origin, fingerprint } => {
            match handler.verify_origin(origin, fingerprint).await {
                Ok(()) => m.accept_mail(Instant::now()),
                Err(r) => m.reject_mail(r, Instant::now()),
            }
        }
        Event::NeedRecipient { destination, fingerprint } => {
            match handler.check_recipient(destination, fingerprint).await {
                Ok(()) => m.accept_recipient(Instant::now()),
                Err(r) => m.reject_recipient(r, Instant::now()),
            }
        }
        Event::MessageReceived(delivery) => match handler.deliver(*delivery).await {
            Ok(id) => m.data_stored(id, Instant::now()),
            Err(r) => m.data_failed(r, Instant::now()),
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

/// Serves DMTP over QUIC on `endpoint` (built with [`crate::quic_server_config`]) until the
/// endpoint is closed.
pub fn spawn_quic<H: Handler>(
    endpoint: quinn::Endpoint,
    handler: Arc<H>,
    options: ServerOptions,
) -> Result<ServerHandle, NetError> {
    let local_addr = endpoint.local_addr()?;
    let options = Arc::new(options);
    let caps = ConnectionCaps::new(options.max_connections_per_ip);
    let ep = endpoint.clone();
    let task = tokio::spawn(async move {
        while let Some(incoming) = ep.accept().await {
            let Some(slot) = caps.try_acquire(incoming.remote_address().ip()) else {
                tracing::debug!("quic connection refused: per-ip cap");
                incoming.refuse();
                continue;
            };
            let (handler, options) = (Arc::clone(&handler), Arc::clone(&options));
            tokio::spawn(async move {
                let _slot = slot;
                let connecting = match incoming.accept() {
                    Ok(c) => c,
                    Err(_) => return,
                };
                let conn = match tokio::time::timeout(options.handshake_timeout, connecting).await {
                    Ok(Ok(c)) => c,
                    _ => return,
                };
                let alpn_ok = conn
                    .handshake_data()
                    .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
                    .and_then(|d| d.protocol)
                    .is_some_and(|p| p == ALPN);
                if !alpn_ok {
                    conn.close(quinn::VarInt::from_u32(1), b"alpn");
                    return;
                }
                serve_quic_connection(conn, handler, options).await;
            });
        }
    });
    Ok(ServerHandle { local_addr, task, endpoint: Some(endpoint) })
}

async fn serve_quic_connection<H: Handler>(
    conn: quinn::Connection,
    handler: Arc<H>,
    options: Arc<ServerOptions>,
) {
    let mut streams = 0u64;
    while let Ok((send, recv)) = conn.accept_bi().await {
        streams += 1;
        if streams > options.max_streams_per_connection {
            conn.close(quinn::VarInt::from_u32(2), b"too many streams");
            return;
        }
        let (handler, options) = (Arc::clone(&handler), Arc::clone(&options));
        tokio::spawn(async move {
            if let Err(e) = serve_stream(recv, send, handler.as_ref(), &options).await {
                tracing::debug!(error = %e, "dmtp quic stream ended with an error");
            }
        });
    }
}

/// Serves DMTP over TLS on TCP `listener` with `tls` (built with
/// [`crate::server_tls_config`]).
pub fn spawn_tls<H: Handler>(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    handler: Arc<H>,
    options: ServerOptions,
) -> Result<ServerHandle, NetError> {
    let local_addr = listener.local_addr()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let options = Arc::new(options);
    let caps = ConnectionCaps::new(options.max_connections_per_ip);
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                continue;
            };
            let Some(slot) = caps.try_acquire(peer.ip()) else {
                tracing::debug!("tls connection refused: per-ip cap");
                drop(tcp);
                continue;
            };
            // Replies are small frames written one by one: with Nagle's algorithm a reply
            // written while the previous one is unacknowledged waits for the client's delayed
            // ACK (40 ms on Linux), once per transaction. The client sets it too.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "tcp nodelay not set");
            }
            let (handler, options, acceptor) =
                (Arc::clone(&handler), Arc::clone(&options), acceptor.clone());
            tokio::spawn(async move {
                let _slot = slot;
                let tls =
                    match tokio::time::timeout(options.handshake_timeout, acceptor.accept(tcp))
                        .await
                    {
                        Ok(Ok(s)) => s,
                        _ => return,
                    };
                if tls.get_ref().1.alpn_protocol() != Some(ALPN) {
                    return;
                }
                let (r, w) = tokio::io::split(tls);
                if let Err(e) = serve_stream(r, w, handler.as_ref(), &options).await {
                    tracing::debug!(error = %e, "dmtp tls stream ended with an error");
                }
            });
        }
    });
    Ok(ServerHandle { local_addr, task, endpoint: None })
}
