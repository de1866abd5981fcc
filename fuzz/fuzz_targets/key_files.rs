//! Fuzzes what `dimed` parses of its key files at start (`dime_server::daemon::start`,
//! `setup::read_org_keys`): the org key file through `keyfile::read_org` (with and without the
//! stored passphrase; the insecure provider makes the AEAD and the password KDF cheap and
//! satisfiable), the user key file of `dime` through `keyfile::read_user`, and the TLS
//! certificate chain and private key (PEM) handed to `dime_net::server_tls_config`.
//! `keyfile::read` itself is fuzzed by `armor_decode`, the org signet by `signet_decode` and the
//! `_dx` record by `record_parse`; this target adds the round trips and the TLS material.
//!
//! Input: byte 0 picks what the rest is: 0 the TLS files (certificate PEM, a NUL, key PEM),
//! 1 an org key file, 2 a user key file.
//! Properties: no input panics; keys read from a file write out (plaintext) to a file that
//! reads back to the same keys, and (encrypted under a passphrase) to one that reads back too.
#![no_main]

use dime_core::crypto::Argon2Params;
use dime_signet::keyfile;
use dime_testkit::insecure_provider;
use libfuzzer_sys::fuzz_target;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

const PASS: &[u8] = b"fuzz passphrase";
/// The cheapest password KDF the bounds accept (cheap anyway under the insecure provider).
const FAST: Argon2Params = Argon2Params { m_kib: Argon2Params::MIN_M_KIB, t: 1, p: 1 };

fn tls(data: &[u8]) {
    let (cert_pem, key_pem) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    let chain: Result<Vec<CertificateDer<'static>>, _> =
        CertificateDer::pem_slice_iter(cert_pem).collect();
    let key = PrivateKeyDer::from_pem_slice(key_pem);
    if let (Ok(chain), Ok(key)) = (chain, key) {
        let _ = dime_net::server_tls_config(dime_testkit::tls_provider(), chain, key);
    }
}

fuzz_target!(|data: &[u8]| {
    let p = insecure_provider();
    let mut rng = dime_testkit::seeded_rng(1);
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => tls(rest),
        1 => {
            for pass in [None, Some(PASS)] {
                let Ok(keys) = keyfile::read_org(p, rest, pass) else { continue };
                // A v1 key set with soks has no file form: refused, not a round trip.
                let Ok(plain) = keys.to_insecure_plaintext_bytes() else { continue };
                let again = keyfile::read_org(p, &plain, None).expect("written keys read back");
                let plain2 = again.to_insecure_plaintext_bytes().expect("read keys write out");
                assert_eq!(plain, plain2, "org key file round trip");
                if let Ok(enc) = keys.to_encrypted_bytes(p, &mut rng, PASS, &FAST) {
                    let back = keyfile::read_org(p, &enc, Some(PASS)).expect("encrypted keys read");
                    let plain3 = back.to_insecure_plaintext_bytes().expect("write out");
                    assert_eq!(plain, plain3, "encrypted org key file round trip");
                }
            }
        }
        _ => {
            for pass in [None, Some(PASS)] {
                let Ok(keys) = keyfile::read_user(p, rest, pass) else { continue };
                // A v1 key set with soks has no file form: refused, not a round trip.
                let Ok(plain) = keys.to_insecure_plaintext_bytes() else { continue };
                let again = keyfile::read_user(p, &plain, None).expect("written keys read back");
                let plain2 = again.to_insecure_plaintext_bytes().expect("read keys write out");
                assert_eq!(plain, plain2, "user key file round trip");
                if let Ok(enc) = keys.to_encrypted_bytes(p, &mut rng, PASS, &FAST) {
                    let back =
                        keyfile::read_user(p, &enc, Some(PASS)).expect("encrypted keys read");
                    let plain3 = back.to_insecure_plaintext_bytes().expect("write out");
                    assert_eq!(plain, plain3, "encrypted user key file round trip");
                }
            }
        }
    }
});
