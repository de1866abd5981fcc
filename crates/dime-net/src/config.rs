//! rustls and quinn configurations for DMTP (`spec/dmtp.md` §2, §3, §10): TLS 1.3 only, the
//! ring provider, ALPN `dmtp/1`, no early data.

use crate::NetError;
use dime_dmtp::limits::{ALPN, IDLE_TIMEOUT};
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// Largest number of DMTP streams open at once on one QUIC connection (`spec/dmtp.md` §8).
pub const MAX_CONCURRENT_STREAMS: u32 = 64;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server's rustls configuration: TLS 1.3, ALPN `dmtp/1`, no early data (0-RTT is
/// disabled, `spec/dmtp.md` §10), certificate `chain` with its `key`.
///
/// # Errors
/// [`NetError::Tls`] when rustls refuses the certificate or key.
pub fn server_tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, NetError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.max_early_data_size = 0;
    config.send_half_rtt_data = false;
    Ok(config)
}

/// The client's rustls configuration: TLS 1.3, ALPN `dmtp/1`, no early data, the server's
/// certificate checked by `verifier` (the resolver's pinning verifier in production).
///
/// # Errors
/// [`NetError::Tls`] when rustls refuses the protocol versions for the provider.
pub fn client_tls_config(
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<rustls::ClientConfig, NetError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.enable_early_data = false;
    Ok(config)
}

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(MAX_CONCURRENT_STREAMS));
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    // IDLE_TIMEOUT (60 s) fits a QUIC idle timeout (< 2^62 ms).
    t.max_idle_timeout(quinn::IdleTimeout::try_from(IDLE_TIMEOUT).ok());
    Arc::new(t)
}

/// The QUIC server configuration over [`server_tls_config`]'s rustls configuration.
///
/// # Errors
/// [`NetError::Tls`] when the rustls configuration cannot carry QUIC (it needs
/// TLS13_AES_128_GCM_SHA256 for Initial packets).
pub fn quic_server_config(tls: rustls::ServerConfig) -> Result<quinn::ServerConfig, NetError> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|_| NetError::Config("rustls configuration cannot carry quic"))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport());
    Ok(config)
}

/// The QUIC client configuration over [`client_tls_config`]'s rustls configuration.
///
/// # Errors
/// [`NetError::Config`] when the rustls configuration cannot carry QUIC.
pub fn quic_client_config(tls: rustls::ClientConfig) -> Result<quinn::ClientConfig, NetError> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|_| NetError::Config("rustls configuration cannot carry quic"))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport());
    Ok(config)
}
