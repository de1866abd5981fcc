//! `dime-net`: DMTP's transports (`spec/dmtp.md` §2, §3).
//!
//! What it is: QUIC endpoints (quinn) and TLS 1.3 over TCP (rustls), both under the ALPN
//! `dmtp/1` with 0-RTT disabled and over the rustls crypto provider the caller passes in
//! ([`TlsProvider`]; the binaries build ring's once); the drivers that connect the sans-IO
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
pub mod gate;
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

/// The most octets of frames gathered into one write.
const WRITE_GATHER: usize = 64 * 1024;

/// Writes every frame `next` gives, gathered: the frames ready at once go out in one write (a
/// pipelined transaction, the replies to it) rather than one each, up to [`WRITE_GATHER`]
/// octets per write, and a frame of that size or more goes alone, uncopied (a large body is
/// never copied whole). Returns whether anything was written. Both drivers write this way
/// (`spec/dmtp.md` §2).
async fn write_frames<W: tokio::io::AsyncWrite + Unpin>(
    writer: &mut W,
    mut next: impl FnMut() -> Option<Vec<u8>>,
) -> std::io::Result<bool> {
    use tokio::io::AsyncWriteExt;
    let mut out = Vec::new();
    let mut wrote = false;
    while let Some(frame) = next() {
        if !out.is_empty() && out.len() + frame.len() > WRITE_GATHER {
            writer.write_all(&out).await?;
            out.clear();
            wrote = true;
        }
        if frame.len() >= WRITE_GATHER {
            writer.write_all(&frame).await?;
            wrote = true;
        } else {
            out.extend_from_slice(&frame);
        }
    }
    if !out.is_empty() {
        writer.write_all(&out).await?;
        wrote = true;
    }
    Ok(wrote)
}

pub use caps::{ConnectionCaps, ConnectionSlot, MAX_CONNECTIONS_PER_IP};
pub use client::{QuicClient, QuicConnection, TlsConnection, is_temporary};
pub use config::{
    MAX_CONCURRENT_STREAMS, PinnedCertVerifier, TlsProvider, client_tls_config, quic_client_config,
    quic_server_config, server_tls_config,
};
pub use pool::{QuicPool, TLS_IDLE, TlsPool};
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
    /// A pooled connection attempt made at the same time, which this request waited for,
    /// failed ([`QuicPool`]).
    #[error("a connection attempt made at the same time failed")]
    ConnectFailed,
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

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Keeps each write it is given as one entry.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl tokio::io::AsyncWrite for Writes {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.0.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn frames_are_gathered_up_to_the_bound_and_a_large_one_goes_alone() {
        let sizes = [100, 100, 100, 40 * 1024, 40 * 1024, 200 * 1024, 100];
        let frames: Vec<Vec<u8>> =
            sizes.iter().enumerate().map(|(i, &n)| vec![i as u8; n]).collect();
        let mut queue = frames.clone().into_iter();
        let mut w = Writes::default();
        assert!(super::write_frames(&mut w, || queue.next()).await.unwrap());
        let lens: Vec<usize> = w.0.iter().map(Vec::len).collect();
        assert_eq!(lens, [300 + 40 * 1024, 40 * 1024, 200 * 1024, 100]);
        assert_eq!(w.0.concat(), frames.concat(), "every octet, in order");
        let mut none = std::iter::empty();
        assert!(!super::write_frames(&mut w, || none.next()).await.unwrap());
        assert_eq!(w.0.len(), 4);
    }
}
