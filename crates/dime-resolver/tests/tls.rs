//! The DMTP certificate verifier over real rustls handshakes on loopback, with certificates
//! made in the test (`spec/dns-record.md` §8.3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dime_core::crypto::default_provider;
use dime_resolver::tls::{CertAuthentication, CertPolicy, DimeCertVerifier, WebPki, root_store};
use dime_signet::OrgKeys;
use dime_signet::record::{Record, tls_value};
use dime_testkit::tls_provider;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

const HOST: &str = "dx.example.test";

struct Cert {
    der: CertificateDer<'static>,
    key: Vec<u8>,
}

fn self_signed(name: &str) -> Cert {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    Cert { der: ck.cert.der().clone(), key: ck.signing_key.serialize_der() }
}

/// A CA (written as PEM to a file) and a leaf for `name` issued by it.
fn ca_and_leaf(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, Cert) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = params.self_signed(&ca_key).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let issuer = Issuer::new(params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    (ca_file, Cert { der: leaf.der().clone(), key: leaf_key.serialize_der() })
}

/// Serves one TLS handshake with `cert` on loopback; returns whether the client accepted it
/// (it then exchanges one byte) and how the verifier authenticated it.
fn handshake(cert: &Cert, verifier: DimeCertVerifier) -> (bool, Option<CertAuthentication>) {
    let server_config = rustls::ServerConfig::builder_with_provider(tls_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key.clone())),
        )
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let conn = rustls::ServerConnection::new(Arc::new(server_config)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut b = [0u8; 1];
        if tls.read_exact(&mut b).is_ok() {
            let _ = tls.write_all(&b);
        }
    });
    let verifier = Arc::new(verifier);
    let config = verifier.client_config().unwrap();
    let conn = rustls::ClientConnection::new(
        Arc::new(config),
        ServerName::try_from(HOST.to_owned()).unwrap(),
    )
    .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(addr).unwrap());
    let ok = tls.write_all(b"x").and_then(|_| tls.flush()).and_then(|_| {
        let mut b = [0u8; 1];
        tls.read_exact(&mut b)
    });
    drop(tls);
    server.join().unwrap();
    (ok.is_ok(), verifier.authentication())
}

fn record_with_pin(keys: &OrgKeys, cert: Option<&Cert>) -> Arc<Record> {
    let p = default_provider();
    let mut r = Record::new(vec![keys.pok(p)]);
    if let Some(c) = cert {
        r.tls.push(tls_value(p, keys.pok_seed(), c.der.as_ref()));
    }
    Arc::new(r)
}

fn verifier(policy: CertPolicy, ca: Option<&std::path::Path>) -> DimeCertVerifier {
    DimeCertVerifier::new(policy, &WebPki::load(tls_provider(), ca).unwrap(), default_provider())
}

#[test]
fn secure_pin_accepts_a_self_signed_certificate() {
    let keys = OrgKeys::generate(&mut dime_testkit::seeded_rng(1));
    let cert = self_signed("some-other-name.invalid");
    let v = verifier(CertPolicy::SecureRecord(record_with_pin(&keys, Some(&cert))), None);
    let (ok, auth) = handshake(&cert, v);
    assert!(ok);
    assert_eq!(auth, Some(CertAuthentication::SecurePin { tls_index: 0, pok_index: 0 }));
}

#[test]
fn secure_pins_refuse_a_certificate_matching_none() {
    let keys = OrgKeys::generate(&mut dime_testkit::seeded_rng(2));
    let pinned = self_signed(HOST);
    let served = self_signed(HOST);
    let v = verifier(CertPolicy::SecureRecord(record_with_pin(&keys, Some(&pinned))), None);
    assert_eq!(handshake(&served, v), (false, None));
}

#[test]
fn pin_signed_by_another_key_does_not_match() {
    let keys = OrgKeys::generate(&mut dime_testkit::seeded_rng(3));
    let other = OrgKeys::generate(&mut dime_testkit::seeded_rng(4));
    let cert = self_signed(HOST);
    let p = default_provider();
    let mut r = Record::new(vec![keys.pok(p)]);
    r.tls.push(tls_value(p, other.pok_seed(), cert.der.as_ref()));
    let v = verifier(CertPolicy::SecureRecord(Arc::new(r)), None);
    assert_eq!(handshake(&cert, v), (false, None));
}

#[test]
fn secure_record_without_pins_needs_webpki() {
    let keys = OrgKeys::generate(&mut dime_testkit::seeded_rng(5));
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf) = ca_and_leaf(dir.path(), HOST);
    let record = record_with_pin(&keys, None);
    // Self-signed: unknown issuer.
    let v = verifier(CertPolicy::SecureRecord(record.clone()), Some(&ca));
    assert_eq!(handshake(&self_signed(HOST), v), (false, None));
    // Issued by the extra CA for the right name.
    let v = verifier(CertPolicy::SecureRecord(record.clone()), Some(&ca));
    assert_eq!(handshake(&leaf, v), (true, Some(CertAuthentication::SecureRecordWebPki)));
    // Without the extra CA, webpki-roots alone do not know it.
    let v = verifier(CertPolicy::SecureRecord(record), None);
    assert_eq!(handshake(&leaf, v), (false, None));
}

#[test]
fn webpki_checks_the_host_name() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf) = ca_and_leaf(dir.path(), "other.example.test");
    let v = verifier(CertPolicy::WebPkiOnly, Some(&ca));
    assert_eq!(handshake(&leaf, v), (false, None));
    let (ca, leaf) = ca_and_leaf(dir.path(), HOST);
    let v = verifier(CertPolicy::WebPkiOnly, Some(&ca));
    assert_eq!(handshake(&leaf, v), (true, Some(CertAuthentication::WebPki)));
}

#[test]
fn insecure_record_needs_ca_validity_and_a_pin_when_it_has_pins() {
    let keys = OrgKeys::generate(&mut dime_testkit::seeded_rng(6));
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf) = ca_and_leaf(dir.path(), HOST);
    // A pinned self-signed certificate is not enough without DNSSEC.
    let selfsigned = self_signed(HOST);
    let v = verifier(
        CertPolicy::InsecureRecordCaTls(record_with_pin(&keys, Some(&selfsigned))),
        Some(&ca),
    );
    assert_eq!(handshake(&selfsigned, v), (false, None));
    // CA-valid and pinned: accepted, recorded as the CA-TLS fallback with the pin.
    let v =
        verifier(CertPolicy::InsecureRecordCaTls(record_with_pin(&keys, Some(&leaf))), Some(&ca));
    assert_eq!(
        handshake(&leaf, v),
        (true, Some(CertAuthentication::CaTlsFallback { pin: Some((0, 0)) }))
    );
    // CA-valid but the record pins another certificate: refused.
    let v = verifier(
        CertPolicy::InsecureRecordCaTls(record_with_pin(&keys, Some(&selfsigned))),
        Some(&ca),
    );
    assert_eq!(handshake(&leaf, v), (false, None));
    // No pins: CA validity alone.
    let v = verifier(CertPolicy::InsecureRecordCaTls(record_with_pin(&keys, None)), Some(&ca));
    assert_eq!(handshake(&leaf, v), (true, Some(CertAuthentication::CaTlsFallback { pin: None })));
}

#[test]
fn extra_ca_file_without_certificates_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("empty.pem");
    std::fs::write(&f, "nothing here\n").unwrap();
    assert!(root_store(Some(&f)).is_err());
    assert!(WebPki::load(tls_provider(), Some(&f)).is_err());
}

#[test]
fn roots_are_read_once_and_shared_by_every_verifier() {
    let keys = OrgKeys::generate(&mut dime_testkit::seeded_rng(8));
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf) = ca_and_leaf(dir.path(), HOST);
    let webpki = WebPki::load(tls_provider(), Some(&ca)).unwrap();
    // The CA file is not read again: verifiers built after it is gone still know its roots.
    std::fs::remove_file(&ca).unwrap();
    for policy in [
        CertPolicy::WebPkiOnly,
        CertPolicy::SecureRecord(record_with_pin(&keys, None)),
        CertPolicy::InsecureRecordCaTls(record_with_pin(&keys, None)),
    ] {
        let v = DimeCertVerifier::new(policy, &webpki, default_provider());
        assert!(handshake(&leaf, v).0);
    }
}
