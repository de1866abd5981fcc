//! DMTP over the transport-neutral plumbing of the crate root (`spec/dmtp.md` §2, §3, §8):
//! the quinn and rustls configurations under the ALPN `dmtp/1` (`config`), the drivers that
//! run `dime-dmtp`'s sans-IO machines on streams (`server`, `client`) and the client's
//! connection pools (`pool`). Everything here is re-exported at the crate root.

mod client;
mod config;
mod pool;
mod server;

pub use client::{QuicClient, QuicConnection, TlsConnection, is_temporary};
pub use config::{
    MAX_CONCURRENT_STREAMS, PinnedCertVerifier, TlsProvider, client_tls_config, quic_client_config,
    quic_server_config, server_tls_config, server_tls_config_reloadable,
};
pub use pool::{QuicPool, TLS_IDLE, TlsPool};
pub use server::{
    DMTP_CONNECTIONS_METRIC, DMTP_CONNECTIONS_OPEN_METRIC, Handler, MAX_CONNECTIONS,
    MAX_STREAMS_PER_CONNECTION, SHUTDOWN_GRACE, ServerHandle, ServerOptions, WRITE_TIMEOUT,
    serve_stream, spawn_quic, spawn_tls,
};

use dime_dmtp::{ClientError, CommandKind, ReplyCode};

impl crate::stream::Pieces for dime_dmtp::frame::Frame {
    fn pieces(&self) -> [&[u8]; 2] {
        [self.head(), self.tail()]
    }
}

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
    /// A pooled connection attempt made at the same time, which this request waited for,
    /// failed ([`QuicPool`]).
    #[error("a connection attempt made at the same time failed")]
    ConnectFailed,
    /// The peer did not negotiate the ALPN `dmtp/1`.
    #[error("alpn dmtp/1 not negotiated")]
    Alpn,
    /// The server refused a command.
    #[error("{command:?} refused by the peer with {code} {text:?}")]
    Refused {
        /// The command refused.
        command: CommandKind,
        /// The server's code.
        code: ReplyCode,
        /// The server's text (printable ASCII, bounded: [`dime_dmtp::MAX_REFUSAL_TEXT_LEN`]).
        text: String,
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
