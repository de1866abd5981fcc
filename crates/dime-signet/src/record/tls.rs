//! The `tls=` certificate pins (`spec/dns-record.md` §8).

use super::{Record, TlsCheckError, TlsPin};
use dime_core::crypto::{CryptoProvider, Ed25519Seed};

/// Computes the `tls=` value for a delivery host's certificate (`spec/dns-record.md` §8): the
/// POK's Ed25519 signature over the 64-octet SHA-512 digest of the certificate's DER encoding.
pub fn tls_value(provider: &CryptoProvider, pok_seed: &Ed25519Seed, cert_der: &[u8]) -> TlsPin {
    let digest = provider.hash.sha512(&[cert_der]);
    TlsPin(provider.signature.sign(pok_seed, &digest))
}

/// Which pin matched, under which POK (indexes into [`Record::tls`] and [`Record::poks`]).
#[must_use = "a matched pin is the proof that the certificate is the domain's"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsMatch {
    /// Index of the matching pin in [`Record::tls`].
    pub tls_index: usize,
    /// Index of the POK it verifies under, in [`Record::poks`].
    pub pok_index: usize,
}

/// Checks a served certificate (DER) against the record's pins (`spec/dns-record.md` §8): the
/// first pin, in record order, that verifies under any POK (in record order) over SHA-512 of
/// `cert_der`, with the provider's strict Ed25519 rule (a weak POK never verifies).
pub fn check_tls(
    provider: &CryptoProvider,
    record: &Record,
    cert_der: &[u8],
) -> Result<TlsMatch, TlsCheckError> {
    if record.tls.is_empty() {
        return Err(TlsCheckError::NoPins);
    }
    let digest = provider.hash.sha512(&[cert_der]);
    for (tls_index, pin) in record.tls.iter().enumerate() {
        for (pok_index, pok) in record.poks.iter().enumerate() {
            if provider.signature.verify(pok, &digest, &pin.0).is_ok() {
                return Ok(TlsMatch { tls_index, pok_index });
            }
        }
    }
    Err(TlsCheckError::NoMatch)
}
