//! The certificate verifier for DMTP connections (`spec/dns-record.md` §8.3;
//! `spec/discovery.md` §6).
//!
//! [`DimeCertVerifier`] is a rustls `ServerCertVerifier`. With a DNSSEC-secure record that
//! carries `tls=` pins, a certificate is accepted when SHA-512 of its DER is signed by one of
//! the record's POKs, whatever its issuer, names or dates. Otherwise it must be valid under the
//! WebPKI for the host name (webpki-roots, plus an optional extra CA file), and, for an
//! insecure record with pins, match a pin as well. What authenticated the connection is kept
//! and read back with [`DimeCertVerifier::authentication`] after the handshake.
//!
//! The roots are loaded once into a [`WebPki`] (the extra CA file read at that time) and shared
//! by every verifier built from it: building a [`DimeCertVerifier`] reads no file and builds
//! no root store.

use crate::discovery::AuthenticatedRecord;
use crate::proof::DnssecProof;
use dime_core::crypto::CryptoProvider as DimeCrypto;
use dime_signet::record::{Record, TlsCheckError, check_tls};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Largest extra CA file read, in octets (`spec/discovery.md` §6).
pub const CA_FILE_MAX_LEN: u64 = 1024 * 1024;

/// An error setting up TLS verification.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file could not be read.
    #[error("cannot read ca file: {0}")]
    Io(#[from] std::io::Error),
    /// The CA file is over [`CA_FILE_MAX_LEN`].
    #[error("ca file is over {CA_FILE_MAX_LEN} octets")]
    TooLarge,
    /// The CA file holds no usable certificate.
    #[error("ca file holds no usable certificate: {0}")]
    NoCertificate(String),
    /// rustls refused the verifier configuration.
    #[error("tls verifier configuration refused: {0}")]
    Verifier(String),
}

/// The roots for WebPKI checks: webpki-roots, plus the PEM certificates of `extra_ca_file`.
pub fn root_store(extra_ca_file: Option<&Path>) -> Result<RootCertStore, TlsSetupError> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = extra_ca_file {
        if std::fs::metadata(path)?.len() > CA_FILE_MAX_LEN {
            return Err(TlsSetupError::TooLarge);
        }
        let pem = std::fs::read(path)?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| TlsSetupError::NoCertificate(e.to_string()))?;
            roots.add(cert).map_err(|e| TlsSetupError::NoCertificate(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsSetupError::NoCertificate("no pem certificate".into()));
        }
    }
    Ok(roots)
}

/// What a certificate is checked against (`spec/dns-record.md` §8.3).
#[derive(Debug, Clone)]
pub enum CertPolicy {
    /// A DNSSEC-secure record: pins if it has any (alone sufficient), else the WebPKI.
    SecureRecord(Arc<Record>),
    /// An insecure record where CA-TLS is allowed: the WebPKI, and a pin when it has any.
    InsecureRecordCaTls(Arc<Record>),
    /// No record (a syndicate or a legacy host): the WebPKI alone.
    WebPkiOnly,
}

impl CertPolicy {
    /// The policy for a usable record, from its proof.
    pub fn for_record(record: &AuthenticatedRecord) -> CertPolicy {
        if record.proof == DnssecProof::Secure {
            CertPolicy::SecureRecord(record.record.clone())
        } else {
            CertPolicy::InsecureRecordCaTls(record.record.clone())
        }
    }
}

/// How a server certificate was accepted: recorded with the message (`spec/discovery.md` §7).
#[must_use = "a certificate authentication says how the peer was proven"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertAuthentication {
    /// A `tls=` pin of a DNSSEC-secure record matched (record indices of the pin and POK).
    SecurePin {
        /// Index of the `tls=` value.
        tls_index: usize,
        /// Index of the `pok=` that signed it.
        pok_index: usize,
    },
    /// A secure record without pins: the certificate is WebPKI-valid for the host name.
    SecureRecordWebPki,
    /// An insecure record (the CA-TLS stand-in): WebPKI-valid for the host name, and matching
    /// a pin when the record has pins (`pin` is then set).
    CaTlsFallback {
        /// The matched pin, if the record had pins.
        pin: Option<(usize, usize)>,
    },
    /// No record: WebPKI-valid for the host name.
    WebPki,
}

/// The WebPKI half of every [`DimeCertVerifier`]: the roots ([`root_store`]) with rustls's
/// verifier over them and the caller's rustls crypto provider, built once and shared (cloning
/// is cheap).
#[derive(Debug, Clone)]
pub struct WebPki {
    provider: Arc<CryptoProvider>,
    verifier: Arc<WebPkiServerVerifier>,
}

impl WebPki {
    /// The WebPKI verifier over `roots`, with `provider` (the binaries' one rustls provider).
    ///
    /// # Errors
    /// [`TlsSetupError::Verifier`] when rustls refuses the roots.
    pub fn new(
        provider: Arc<CryptoProvider>,
        roots: RootCertStore,
    ) -> Result<WebPki, TlsSetupError> {
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| TlsSetupError::Verifier(e.to_string()))?;
        Ok(WebPki { provider, verifier })
    }

    /// The WebPKI verifier over webpki-roots plus the PEM certificates of `extra_ca_file`
    /// ([`root_store`]), the file read now, with `provider`.
    ///
    /// # Errors
    /// [`TlsSetupError`] when the file cannot be read or holds no certificate.
    pub fn load(
        provider: Arc<CryptoProvider>,
        extra_ca_file: Option<&Path>,
    ) -> Result<WebPki, TlsSetupError> {
        WebPki::new(provider, root_store(extra_ca_file)?)
    }

    /// The rustls crypto provider this verifier was built with.
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }
}

/// The rustls verifier for DMTP connections. Build one per connection (cheap: the WebPKI part
/// is a shared [`WebPki`]) and read [`DimeCertVerifier::authentication`] after the handshake.
#[derive(Debug)]
pub struct DimeCertVerifier {
    policy: CertPolicy,
    crypto: &'static DimeCrypto,
    webpki: WebPki,
    outcome: Mutex<Option<CertAuthentication>>,
}

impl DimeCertVerifier {
    /// A verifier for `policy`, with `webpki` for WebPKI checks and its rustls provider for the
    /// handshake signatures.
    pub fn new(
        policy: CertPolicy,
        webpki: &WebPki,
        crypto: &'static DimeCrypto,
    ) -> DimeCertVerifier {
        DimeCertVerifier { policy, crypto, webpki: webpki.clone(), outcome: Mutex::new(None) }
    }

    /// How the last accepted certificate was authenticated (`None` before a handshake or
    /// after a refusal).
    pub fn authentication(&self) -> Option<CertAuthentication> {
        self.outcome.lock().ok().and_then(|g| *g)
    }

    /// A rustls client configuration (the [`WebPki`]'s provider, TLS 1.3 and 1.2) using this
    /// verifier.
    pub fn client_config(self: &Arc<Self>) -> Result<rustls::ClientConfig, TlsSetupError> {
        Ok(rustls::ClientConfig::builder_with_provider(self.webpki.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Verifier(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(self.clone())
            .with_no_client_auth())
    }

    fn set(&self, auth: CertAuthentication) {
        if let Ok(mut g) = self.outcome.lock() {
            *g = Some(auth);
        }
    }

    fn pin(&self, record: &Record, der: &[u8]) -> Result<Option<(usize, usize)>, rustls::Error> {
        match check_tls(self.crypto, record, der) {
            Ok(m) => Ok(Some((m.tls_index, m.pok_index))),
            Err(TlsCheckError::NoPins) => Ok(None),
            Err(TlsCheckError::NoMatch) => Err(rustls::Error::General(
                "certificate matches no tls= pin of the _dx record".into(),
            )),
        }
    }
}

impl ServerCertVerifier for DimeCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut g) = self.outcome.lock() {
            *g = None;
        }
        let webpki = || {
            self.webpki.verifier.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            )
        };
        match &self.policy {
            CertPolicy::SecureRecord(record) => match self.pin(record, end_entity.as_ref())? {
                Some((tls_index, pok_index)) => {
                    self.set(CertAuthentication::SecurePin { tls_index, pok_index });
                    Ok(ServerCertVerified::assertion())
                }
                None => {
                    let ok = webpki()?;
                    self.set(CertAuthentication::SecureRecordWebPki);
                    Ok(ok)
                }
            },
            CertPolicy::InsecureRecordCaTls(record) => {
                let ok = webpki()?;
                let pin = self.pin(record, end_entity.as_ref())?;
                self.set(CertAuthentication::CaTlsFallback { pin });
                Ok(ok)
            }
            CertPolicy::WebPkiOnly => {
                let ok = webpki()?;
                self.set(CertAuthentication::WebPki);
                Ok(ok)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.webpki.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.webpki.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.provider.signature_verification_algorithms.supported_schemes()
    }
}
