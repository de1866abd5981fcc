//! `dime-net`: DMTP's transports (`spec/dmtp.md` §2, §3).
//!
//! What it is: QUIC endpoints (quinn) and TLS 1.3 over TCP (rustls with the ring provider),
//! both under the ALPN `dmtp/1` with 0-RTT disabled; the drivers that connect the sans-IO
//! machines of `dime-dmtp` to their streams (one QUIC stream per transaction, many in flight;
//! transactions in turn over TCP); per-IP connection caps, handshake and idle deadlines. The
//! server side asks a [`Handler`] (the resolver, the store, the signet service) for every
//! decision; the client side checks the server's certificate with a caller-supplied
//! [`rustls::client::danger::ServerCertVerifier`] (the resolver's pinning verifier).
//!
//! What it is not: policy. It verifies no signature and stores nothing itself; the outbound
//! queue, retries and bounces are `dime-server`'s.

mod caps;
mod client;
mod config;
mod pool;
mod server;

/// Reads what `reader` has, waiting at most until the machine's `deadline`: `Some(n)` octets
/// (0 at the end of the stream), or `None` when the deadline came first (the caller then
/// tells its machine the timer fired). Both drivers read this way.
async fn read_until<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    deadline: Option<std::time::Instant>,
) -> Result<Option<usize>, NetError> {
    use tokio::io::AsyncReadExt;
    let read = reader.read(buf);
    Ok(match deadline {
        Some(d) => match tokio::time::timeout_at(tokio::time::Instant::from_std(d), read).await {
            Ok(r) => Some(r?),
            Err(_) => None,
        },
        None => Some(read.await?),
    })
}

pub use caps::{ConnectionCaps, ConnectionSlot, MAX_CONNECTIONS_PER_IP};
pub use client::{QuicClient, QuicConnection, TlsConnection, is_temporary};
pub use config::{
    MAX_CONCURRENT_STREAMS, PinnedCertVerifier, client_tls_config, quic_client_config,
    quic_server_config, server_tls_config,
};
pub use pool::QuicPool;
pub use server::{
    Handler, MAX_STREAMS_PER_CONNECTION, ServerHandle, ServerOptions, serve_stream, spawn_quic,
    spawn_tls,
};

use dime_dmtp::{ClientError, CommandKind, ReplyCode};

/// A transport or protocol failure (`spec/dmtp.md` §5).
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// rustls refused the configuration or the handshake.
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// A configuration that cannot work (the rule is named).
    #[error("configuration: {0}")]
    Config(&'static str),
    /// QUIC could not start the connection.
    #[error("quic connect: {0}")]
    QuicConnect(#[from] quinn::ConnectError),
    /// The QUIC connection failed or was closed.
    #[error("quic connection: {0}")]
    QuicConnection(#[from] quinn::ConnectionError),
    /// No handshake within HANDSHAKE_TIMEOUT.
    #[error("no handshake within HANDSHAKE_TIMEOUT")]
    HandshakeTimeout,
    /// The peer did not negotiate the ALPN `dmtp/1`.
    #[error("alpn dmtp/1 not negotiated")]
    Alpn,
    /// The server refused a command.
    #[error("{command:?} refused with {code}")]
    Refused {
        /// The command refused.
        command: CommandKind,
        /// The server's code.
        code: ReplyCode,
    },
    /// The server broke the protocol.
    #[error("protocol: {0}")]
    Protocol(ClientError),
    /// The stream ended before the answer.
    #[error("stream closed before the answer")]
    Closed,
    /// A driver bug: a decision made out of turn.
    #[error("driver misuse: {0}")]
    Misuse(&'static str),
}
