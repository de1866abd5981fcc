//! rustls and quinn configurations for DMTP (`spec/dmtp.md` §2, §3, §10): TLS 1.3 only, ALPN
//! `dmtp/1`, no early data, over the rustls crypto provider the caller passes in (the binaries
//! build the one ring provider of the process and pass it down; no library crate builds one).

use crate::NetError;
use dime_dmtp::limits::{ALPN, IDLE_TIMEOUT};
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// Largest number of DMTP streams open at once on one QUIC connection (`spec/dmtp.md` §8).
pub const MAX_CONCURRENT_STREAMS: u32 = 64;

/// The rustls crypto provider every TLS and QUIC configuration is built over. The binaries
/// build it once per process (rustls's ring provider) and pass it down; tests take
/// `dime_testkit::tls_provider()`.
pub type TlsProvider = Arc<rustls::crypto::CryptoProvider>;

/// The server's rustls configuration: TLS 1.3, ALPN `dmtp/1`, no early data (0-RTT is
/// disabled, `spec/dmtp.md` §10), certificate `chain` with its `key`, over `provider`.
///
/// # Errors
/// [`NetError::Tls`] when rustls refuses the certificate or key.
pub fn server_tls_config(
    provider: TlsProvider,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, NetError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.max_early_data_size = 0;
    config.send_half_rtt_data = false;
    Ok(config)
}

/// [`server_tls_config`] with its certificate from `certs` (replaceable while it runs).
///
/// # Errors
/// [`NetError::Tls`] when rustls refuses the protocol versions for the provider.
pub fn server_tls_config_reloadable(
    provider: TlsProvider,
    certs: Arc<crate::ReloadableCert>,
) -> Result<rustls::ServerConfig, NetError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.max_early_data_size = 0;
    config.send_half_rtt_data = false;
    Ok(config)
}

/// The client's rustls configuration: TLS 1.3, ALPN `dmtp/1`, no early data, the server's
/// certificate checked by `verifier` (the resolver's pinning verifier in production), over
/// `provider`.
///
/// # Errors
/// [`NetError::Tls`] when rustls refuses the protocol versions for the provider.
pub fn client_tls_config(
    provider: TlsProvider,
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<rustls::ClientConfig, NetError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
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

/// A certificate verifier that accepts exactly one end-entity certificate, byte for byte, and
/// checks the handshake signature with it (TLS 1.3 only). For peers whose certificate is known
/// in advance: tests, benchmarks, closed federations configured by hand. Domains found in DNS
/// use the resolver's verifier (`dime_resolver::tls::DimeCertVerifier`) instead.
#[derive(Debug)]
pub struct PinnedCertVerifier {
    cert: CertificateDer<'static>,
    provider: TlsProvider,
}

impl PinnedCertVerifier {
    /// Accepts `cert` only; handshake signatures are checked with `provider`'s algorithms.
    pub fn new(provider: TlsProvider, cert: CertificateDer<'static>) -> PinnedCertVerifier {
        PinnedCertVerifier { cert, provider }
    }
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("certificate is not the pinned one".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
