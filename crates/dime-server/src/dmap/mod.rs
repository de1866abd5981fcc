//! The DMAP listeners (`spec/dmap.md` §2): IMAP4rev2 for ordinary mail clients, on implicit
//! TLS (`listen.imaps`) and on plaintext with STARTTLS (`listen.imap`). A thin driver: the
//! protocol is `dime-dmap`'s [`dime_dmap::Server`], every mailbox operation the mail service's
//! ([`crate::service`]); this module moves bytes, keeps the deadlines and caps, and maps the
//! service's answers to IMAP responses.
//!
//! Caps and deadlines (`spec/dmap.md` §6): connections at once and per IP address (the
//! listener's [`Gate`]); the TLS handshake's deadline; a deadline for the client's silence
//! (short before a login, the session's idle timeout after); a deadline for each write (a
//! client that does not read its answers is closed, and a large FETCH is written as it is
//! made, never held whole: backpressure); logins throttled per account and per address by the
//! service.

mod conn;
mod exec;
mod fetch;
mod search;
mod stream;

use crate::service::{Directory, MailService};
use dime_net::gate::Gate;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Connections at once on one DMAP listener, from every address (`spec/dmap.md` §6).
pub const DMAP_MAX_CONNECTIONS: usize = 10_000;
/// Connections at once from one IP address on one DMAP listener (`spec/dmap.md` §6).
pub const DMAP_MAX_CONNECTIONS_PER_IP: usize = 64;
/// Time for the TLS handshake (implicit TLS or after STARTTLS), `spec/dmap.md` §6.
pub const DMAP_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest silence before a login (`spec/dmap.md` §6).
pub const DMAP_LOGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest silence of a logged-in client outside IDLE (`spec/dmap.md` §6): the session's
/// idle timeout, after which its keys are gone anyway.
pub const DMAP_IDLE_TIMEOUT: Duration = crate::LOCAL_SESSION_IDLE_TIMEOUT;
/// Longest IDLE without a word from the client (`spec/dmap.md` §6; RFC 9051 §5.4: at least
/// 30 minutes); the session is kept alive meanwhile.
pub const DMAP_IDLE_COMMAND_TIMEOUT: Duration = Duration::from_secs(31 * 60);
/// Longest wait for one write to be taken by the client (`spec/dmap.md` §6).
pub const DMAP_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time a command may take to arrive, from its first octet, beyond its literals' octets at
/// [`DMAP_MIN_LITERAL_RATE`] (`spec/dmap.md` §6): a client trickling a command or a literal is
/// closed, however often its octets arrive.
pub const DMAP_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Slowest rate a command's literals may arrive at, octets per second (`spec/dmap.md` §6;
/// the same as DMTP's `MIN_BODY_RATE`).
pub const DMAP_MIN_LITERAL_RATE: u64 = 32 * 1024;
/// Output a command may hold before it is written (`spec/dmap.md` §6): a FETCH of many
/// messages is written as it goes.
pub const DMAP_OUTPUT_HIGH_WATER: usize = 256 * 1024;
/// Octets of rendered messages a session keeps for its next FETCH (`spec/dmap.md` §5.2).
pub const DMAP_RENDER_CACHE: usize = 8 * 1024 * 1024;

/// A DMAP listener's options.
#[derive(Debug, Clone)]
pub struct DmapOptions {
    /// Connections at once, every address.
    pub max_connections: usize,
    /// Connections at once from one IP address.
    pub max_connections_per_ip: usize,
    /// Largest APPEND, octets.
    pub append_limit: u64,
    /// TLS handshake deadline.
    pub handshake_timeout: Duration,
    /// Silence before a login.
    pub login_timeout: Duration,
    /// Silence after a login.
    pub idle_timeout: Duration,
    /// Silence in IDLE.
    pub idle_command_timeout: Duration,
    /// Write deadline.
    pub write_timeout: Duration,
    /// A command's time to arrive beyond its literals'.
    pub command_timeout: Duration,
    /// Slowest rate of a command's literals, octets per second.
    pub min_literal_rate: u64,
}

impl Default for DmapOptions {
    fn default() -> DmapOptions {
        DmapOptions {
            max_connections: DMAP_MAX_CONNECTIONS,
            max_connections_per_ip: DMAP_MAX_CONNECTIONS_PER_IP,
            append_limit: dime_dmap::limits::MAX_APPEND_LEN as u64,
            handshake_timeout: DMAP_HANDSHAKE_TIMEOUT,
            login_timeout: DMAP_LOGIN_TIMEOUT,
            idle_timeout: DMAP_IDLE_TIMEOUT,
            idle_command_timeout: DMAP_IDLE_COMMAND_TIMEOUT,
            write_timeout: DMAP_WRITE_TIMEOUT,
            command_timeout: DMAP_COMMAND_TIMEOUT,
            min_literal_rate: DMAP_MIN_LITERAL_RATE,
        }
    }
}

/// The rustls configuration of the DMAP listeners: TLS 1.2 and 1.3 (mail clients still
/// speak 1.2), ALPN `imap` when the client offers ALPN (RFC 9051 §11.1 registers none; `imap`
/// is the IANA name), over the project's one provider.
///
/// # Errors
/// rustls's, when the key does not fit the certificate.
pub fn tls_config(
    provider: Arc<rustls::crypto::CryptoProvider>,
    chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"imap".to_vec()];
    Ok(Arc::new(config))
}

/// [`tls_config`] with its certificate from `certs` (replaceable while it runs: `dimed
/// reload`).
///
/// # Errors
/// rustls refuses the protocol versions for the provider.
pub fn tls_config_reloadable(
    provider: Arc<rustls::crypto::CryptoProvider>,
    certs: Arc<dime_net::ReloadableCert>,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"imap".to_vec()];
    Ok(Arc::new(config))
}

/// A running DMAP listener.
#[derive(Debug)]
pub struct DmapHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl DmapHandle {
    /// Stops accepting; the connections get `* BYE` and close; waits up to `grace`.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// How a listener's connections start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first octet (port 993).
    ImplicitTls,
    /// Plaintext, STARTTLS offered; no login before it (port 143).
    StartTls,
}

/// Serves DMAP on `listener`.
pub fn spawn<D: Directory>(
    listener: TcpListener,
    security: Security,
    tls: Arc<rustls::ServerConfig>,
    service: Arc<MailService<D>>,
    options: DmapOptions,
) -> std::io::Result<DmapHandle> {
    let addr = listener.local_addr()?;
    let (stop, mut stop_rx) = watch::channel(false);
    let options = Arc::new(options);
    let task = tokio::spawn(async move {
        let mut gate = Gate::new(options.max_connections, Some(options.max_connections_per_ip));
        gate.accept_tcp(
            &listener,
            async { drop(stop_rx.wait_for(|s| *s).await) },
            "imap",
            |tcp| {
                // A line the client can show (never blocking the accept loop); then closed.
                if security == Security::StartTls {
                    let _ = tcp.try_write(b"* BYE too many connections\r\n");
                }
            },
            |tcp, peer, stopping| {
                conn::serve(
                    tcp,
                    peer,
                    security,
                    Arc::clone(&tls),
                    Arc::clone(&service),
                    Arc::clone(&options),
                    stopping,
                )
            },
        )
        .await;
        drop(listener);
        let left = gate.drain(crate::LOCAL_SHUTDOWN_GRACE).await;
        if left > 0 {
            tracing::info!(closed = left, "imap connections closed at the shutdown grace");
        }
    });
    Ok(DmapHandle { addr, stop, task })
}
