//! `dime-net`: the network plumbing of dimed's listeners and clients (`spec/dmtp.md` §2, §3,
//! §8), and DMTP's transports over it.
//!
//! What it is: at its root, plumbing that knows no protocol: [`gate`], a listener's admission
//! (a global connection cap, per-IP and per-IPv6-/64 caps), its back-off after failed accepts
//! and graceful stop, used by the DMTP listeners and the local sockets; the per-source caps
//! ([`ConnectionCaps`]); the open-file limit and the connection cap under it
//! ([`raise_fd_limit`], [`fit_to_fd_limit`]); limits per source and per connection (a token
//! bucket for lookups, [`SourceRate`]; log lines, [`LogLimiter`] and [`log_allowed`]; error
//! delays, [`ErrorDelay`]); stream reads bounded by a machine's deadline and gathered frame
//! writes bounded by a write deadline. Under it, DMTP's transports (module `dmtp`,
//! re-exported here): QUIC endpoints (quinn) and TLS 1.3 over TCP (rustls), both under the
//! ALPN `dmtp/1` with 0-RTT disabled and over the rustls crypto provider the caller passes in
//! ([`TlsProvider`]; the binaries build ring's once); the drivers that connect the sans-IO
//! machines of `dime-dmtp` to their streams (one QUIC stream per transaction, many in flight;
//! transactions in turn over TCP); the listeners [`spawn_quic`] and [`spawn_tls`], each on a
//! gate ([`MAX_CONNECTIONS`] at once, [`MAX_CONNECTIONS_PER_IP`] from one address), with
//! handshake and idle deadlines and a graceful stop ([`ServerHandle::shutdown`]: no new
//! connection or transaction, those under way answered, the rest closed after a grace); the
//! client's connection pools. The server side asks a [`Handler`] (the resolver, the store, the signet service) for
//! every decision; the client side checks the server's certificate with a caller-supplied
//! [`rustls::client::danger::ServerCertVerifier`] (the resolver's pinning verifier).
//!
//! What it is not: policy. It verifies no signature and stores nothing itself; the outbound
//! queue, retries and bounces are `dime-server`'s.

mod caps;
mod certs;
mod dmtp;
pub mod gate;
mod limits;
mod ratelimit;
mod stream;

pub use caps::{
    CapExceeded, ConnectionCaps, ConnectionSlot, MAX_CONNECTIONS_PER_IP,
    MAX_CONNECTIONS_PER_PREFIX, source_of,
};
pub use certs::{CertError, ReloadableCert};
pub use dmtp::{
    DMTP_CONNECTIONS_METRIC, DMTP_CONNECTIONS_OPEN_METRIC, Handler, MAX_CONCURRENT_STREAMS,
    MAX_CONNECTIONS, MAX_STREAMS_PER_CONNECTION, NetError, PinnedCertVerifier, QuicClient,
    QuicConnection, QuicPool, SHUTDOWN_GRACE, ServerHandle, ServerOptions, TLS_IDLE, TlsConnection,
    TlsPool, TlsProvider, WRITE_TIMEOUT, client_tls_config, is_temporary, quic_client_config,
    quic_server_config, serve_stream, server_tls_config, server_tls_config_reloadable, spawn_quic,
    spawn_tls,
};
pub use limits::{FD_RESERVE, FdLimit, fit_to_fd_limit, raise_fd_limit};
pub use ratelimit::{
    ERROR_DELAY_FREE, ERROR_DELAY_MAX, ERROR_DELAY_STEP, ERROR_LIMIT, ErrorDelay, LOG_INTERVAL,
    LOG_LINES, LOOKUP_BURST, LOOKUP_RATE, LogLimiter, LogVerdict, MAX_TRACKED_SOURCES, SourceRate,
    log_allowed, peer,
};
