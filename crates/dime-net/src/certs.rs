//! The server's certificate, replaceable while it runs (`spec/dimed.md` §5, `dimed reload`):
//! every TLS server configuration (DMTP over TLS and QUIC, DMAP) resolves its certificate
//! through one [`ReloadableCert`], so a renewed certificate serves the next handshake on every
//! listener, and connections already open keep the one they began with.

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use std::sync::{Arc, RwLock};

/// Why a certificate was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The certificate file is not PEM certificates, or holds none.
    #[error("certificate: {0}")]
    Chain(String),
    /// The key file is not a PEM private key, or the provider does not take it.
    #[error("key: {0}")]
    Key(String),
    /// The key is not the certificate's.
    #[error("the key does not match the certificate")]
    Mismatch,
}

/// A certificate and key that [`ReloadableCert::replace`] swaps at once for every listener.
#[derive(Debug)]
pub struct ReloadableCert {
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    /// The certificate chain and key of PEM texts `chain` and `key`, through `provider`.
    ///
    /// # Errors
    /// [`CertError`].
    pub fn from_pem(
        provider: Arc<CryptoProvider>,
        chain: &[u8],
        key: &[u8],
    ) -> Result<ReloadableCert, CertError> {
        let certified = certified(&provider, chain, key)?;
        Ok(ReloadableCert { provider, current: RwLock::new(Arc::new(certified)) })
    }

    /// Serves `chain` and `key` (PEM) from the next handshake on; on an error the certificate
    /// served stays as it was.
    ///
    /// # Errors
    /// [`CertError`].
    pub fn replace(&self, chain: &[u8], key: &[u8]) -> Result<(), CertError> {
        let certified = Arc::new(certified(&self.provider, chain, key)?);
        match self.current.write() {
            Ok(mut c) => *c = certified,
            Err(poisoned) => *poisoned.into_inner() = certified,
        }
        Ok(())
    }

    /// The certificate served now (its end-entity certificate first).
    pub fn current(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

fn certified(
    provider: &CryptoProvider,
    chain: &[u8],
    key: &[u8],
) -> Result<CertifiedKey, CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain)
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::Chain(e.to_string()))?;
    if chain.is_empty() {
        return Err(CertError::Chain("no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| CertError::Key(e.to_string()))?;
    let signing =
        provider.key_provider.load_private_key(key).map_err(|e| CertError::Key(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(_)) => Err(CertError::Mismatch),
        // A key whose public half the provider cannot tell: accepted as rustls would.
        Err(_) => Ok(certified),
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pem() -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec!["mx.a.test".into()]).unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    #[test]
    fn a_replaced_certificate_is_served_and_a_bad_one_leaves_the_old() {
        let provider = dime_testkit::tls_provider();
        let (c1, k1) = pem();
        let (c2, k2) = pem();
        let r =
            ReloadableCert::from_pem(Arc::clone(&provider), c1.as_bytes(), k1.as_bytes()).unwrap();
        let first = r.current().cert[0].clone();
        assert!(matches!(r.replace(c2.as_bytes(), k1.as_bytes()), Err(CertError::Mismatch)));
        assert!(matches!(r.replace(b"not pem", k2.as_bytes()), Err(CertError::Chain(_))));
        assert!(matches!(r.replace(c2.as_bytes(), b"not pem"), Err(CertError::Key(_))));
        assert_eq!(r.current().cert[0], first, "a refused replacement changes nothing");
        r.replace(c2.as_bytes(), k2.as_bytes()).unwrap();
        assert_ne!(r.current().cert[0], first);
    }
}
