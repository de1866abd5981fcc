//! The origin and destination roles over real loopback sockets: a user of a.test submits, the
//! origin's worker delivers to b.test over QUIC and over TLS, the message lands sealed in the
//! recipient's store and opens after login; refusals take their documented codes; the retry
//! schedule backs off and gives up after the maximum lifetime.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dime_core::crypto::{Argon2Params, CryptoProvider, default_provider};
use dime_core::{Domain, Fingerprint, Mailbox, Secret};
use dime_dmtp::{Refusal, SignetName, VerifyAnswer};
use dime_envelope::{
    ActorKeys, Addressing, Headers, Message, Part, PartInfo, PartKind, Signer, seal_message,
};
use dime_net::{Handler, ServerHandle, ServerOptions};
use dime_server::origin::{
    Outbound, Outcome, RetryPolicy, Route, RouteError, Routes, Target, Transports, backoff, submit,
};
use dime_server::{Destination, LocalDomain, StaticOrigins};
use dime_signet::{OrgKeys, Profile, create_org_signet};
use dime_store::{MailboxId, NewAccount, Recovery, Store, StoreConfig, Timestamp};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

const T0: Timestamp = Timestamp(1_700_000_000);
const AUTHOR: &str = "canaryauthor@a.test";
const RECIPIENT: &str = "canaryrcpt@b.test";
const SUBJECT: &str = "canary-subject-7f3a";
const BODY: &str = "canary-body-91c2 hello";

fn p() -> &'static CryptoProvider {
    default_provider()
}

fn domain(s: &str) -> Domain {
    Domain::parse(s).unwrap()
}

fn mailbox(s: &str) -> Mailbox {
    Mailbox::parse(s).unwrap()
}

#[derive(Debug)]
struct PinnedCert(CertificateDer<'static>, Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("certificate not pinned".into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("tls 1.2 not used".into()))
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
            &self.1.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.1.signature_verification_algorithms.supported_schemes()
    }
}

/// A fixed route: one target, a pinned certificate.
struct StaticRoutes(Route);

impl Routes for StaticRoutes {
    async fn route(&self, destination: &Domain) -> Result<Route, RouteError> {
        if destination == &domain("b.test") {
            Ok(self.0.clone())
        } else {
            Err(RouteError::Permanent("not a known domain"))
        }
    }
}

struct Side {
    local: Arc<LocalDomain>,
    store: Arc<Store>,
}

fn side(dir: &Path, name: &str, seed: u64, user: &str) -> Side {
    let config = StoreConfig {
        data_dir: dir.join("data"),
        vault_path: dir.join("vault").join("vault.redb"),
        pepper: Secret::new(vec![seed as u8; 32]),
        argon2: Argon2Params { m_kib: Argon2Params::MIN_M_KIB, t: 1, p: 1 },
        idle_timeout_secs: 900,
    };
    let store = Store::open(config, p()).unwrap();
    let mut rng = dime_testkit::seeded_rng(seed);
    let keys = OrgKeys::generate(&mut rng);
    let signet = create_org_signet(p(), &keys, &domain(name), &Profile::new()).unwrap();
    store
        .create_account(
            &mut rng,
            &keys,
            &NewAccount {
                address: &mailbox(user),
                password: b"pw",
                recovery: Recovery::None,
                quota_bytes: 1 << 30,
            },
            T0,
        )
        .unwrap();
    let local = LocalDomain::new(p(), domain(name), keys, signet).unwrap();
    Side { local: Arc::new(local), store: Arc::new(store) }
}

struct World {
    _dir: tempfile::TempDir,
    a: Side,
    b: Side,
    quic: ServerHandle,
    tls: ServerHandle,
    cert: CertificateDer<'static>,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let a = side(&dir.path().join("a"), "a.test", 1, AUTHOR);
    let b = side(&dir.path().join("b"), "b.test", 2, RECIPIENT);
    let mut origins = HashMap::new();
    origins.insert(
        domain("a.test"),
        (a.local.org_fingerprint, a.local.org_signet.signing_key().unwrap()),
    );
    let handler = Arc::new(Destination::new(
        Arc::clone(&b.local),
        Arc::clone(&b.store),
        Arc::new(StaticOrigins(origins)),
        p(),
    ));
    let ck = rcgen::generate_simple_self_signed(vec!["b.test".to_owned()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = ck.signing_key.serialize_der();
    let tls = dime_net::server_tls_config(
        vec![cert.clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
    )
    .unwrap();
    let qcfg = dime_net::quic_server_config(tls.clone()).unwrap();
    let endpoint = quinn::Endpoint::server(qcfg, "127.0.0.1:0".parse().unwrap()).unwrap();
    let options = ServerOptions::new(domain("b.test"), p());
    let quic = dime_net::spawn_quic(endpoint, Arc::clone(&handler), options.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = dime_net::spawn_tls(listener, tls, handler, options).unwrap();
    World { _dir: dir, a, b, quic, tls, cert }
}

impl World {
    fn outbound(&self, addr: SocketAddr, transports: Transports) -> Outbound<StaticRoutes> {
        let verifier = Arc::new(PinnedCert(
            self.cert.clone(),
            Arc::new(rustls::crypto::ring::default_provider()),
        ));
        let route = Route {
            destination_fingerprint: self.b.local.org_fingerprint,
            targets: vec![Target { server_name: "b.test".into(), addrs: vec![addr] }],
            verifier,
        };
        Outbound::new(
            Arc::clone(&self.a.store),
            Arc::clone(&self.a.local),
            Arc::new(StaticRoutes(route)),
            RetryPolicy::default(),
            transports,
            p(),
        )
    }

    /// The author seals a message to the recipient (keys from both sides' signets).
    fn seal(&self, seed: u64) -> Vec<u8> {
        let mut s = self.a.store.login(&mailbox(AUTHOR), b"pw", T0).unwrap();
        let author_keys = s.current_keys().unwrap();
        let (_, author_signet) = self.a.store.signet(&mailbox(AUTHOR)).unwrap();
        let (_, recip_signet) = self.b.store.signet(&mailbox(RECIPIENT)).unwrap();
        let addressing = Addressing {
            author: mailbox(AUTHOR),
            author_keys: ActorKeys::from_signet(&author_signet).unwrap(),
            origin: domain("a.test"),
            origin_keys: ActorKeys::from_signet(&self.a.local.org_signet).unwrap(),
            destination: domain("b.test"),
            destination_keys: ActorKeys::from_signet(&self.b.local.org_signet).unwrap(),
            recipient: mailbox(RECIPIENT),
            recipient_keys: ActorKeys::from_signet(&recip_signet).unwrap(),
        };
        let msg = Message {
            common_headers: Headers::from_pairs([("Subject", SUBJECT)]).unwrap(),
            other_headers: Headers::new(),
            parts: vec![Part {
                kind: PartKind::Display,
                info: PartInfo { content_type: "text/plain".into(), filename: String::new() },
                data: BODY.as_bytes().to_vec(),
            }],
        };
        let mut rng = dime_testkit::seeded_rng(seed);
        let sealed = seal_message(
            p(),
            &mut rng,
            &addressing,
            Signer::Author(author_keys.signing_seed()),
            &msg,
        )
        .unwrap();
        s.expire();
        sealed
    }

    /// Submits, runs one pass, and returns the outcomes.
    async fn deliver_over(&self, addr: SocketAddr, transports: Transports, seed: u64) -> Outcome {
        let sealed = self.seal(seed);
        let mut rng = dime_testkit::seeded_rng(seed + 100);
        let (_, dest) =
            submit(p(), &mut rng, &self.a.store, &self.a.local, &mailbox(AUTHOR), &sealed, T0)
                .unwrap();
        assert_eq!(dest, domain("b.test"));
        let out = self.outbound(addr, transports);
        let mut outcomes = out.run_once(T0, &mut rng).await.unwrap();
        assert_eq!(outcomes.len(), 1, "{outcomes:?}");
        outcomes.remove(0)
    }

    /// The recipient logs in and opens every message in the inbox; checks each.
    fn recipient_reads(&self) -> usize {
        let store = &self.b.store;
        let mut s = store.login(&mailbox(RECIPIENT), b"pw", T0).unwrap();
        let entries = store.list(s.account(), MailboxId::INBOX).unwrap();
        let author_key = self.a.store.signet(&mailbox(AUTHOR)).unwrap().1.signing_key().unwrap();
        let origin_key = self.a.local.org_signet.signing_key().unwrap();
        for e in &entries {
            let mut rng = dime_testkit::seeded_rng(9);
            let opened = store.open_message(&mut rng, &mut s, MailboxId::INBOX, e.uid, T0).unwrap();
            let v = opened.message.verify(p(), &author_key, Some(&origin_key)).unwrap();
            let view = v.view();
            assert_eq!(view.author, mailbox(AUTHOR));
            assert_eq!(view.recipient, mailbox(RECIPIENT));
            assert_eq!(view.message.parts[0].data, BODY.as_bytes());
        }
        entries.len()
    }
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out
}

fn contains(dir: &Path, needle: &str) -> bool {
    files(dir).iter().any(|f| {
        let data = std::fs::read(f).unwrap();
        data.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_over_quic_and_tls_and_the_recipient_opens_it() {
    let w = world().await;
    let o = w.deliver_over(w.quic.local_addr, Transports::QuicOnly, 1).await;
    assert!(matches!(o, Outcome::Delivered { .. }), "{o:?}");
    let o = w.deliver_over(w.tls.local_addr, Transports::TlsOnly, 2).await;
    assert!(matches!(o, Outcome::Delivered { .. }), "{o:?}");
    // QUIC to a TCP-only port gets no answer: the worker falls back to TLS over TCP.
    let o = w.deliver_over(w.tls.local_addr, Transports::QuicThenTls, 3).await;
    assert!(matches!(o, Outcome::Delivered { .. }), "{o:?}");
    assert_eq!(w.recipient_reads(), 3);
    assert!(w.a.store.queue_entries().unwrap().is_empty());
    // Canary audit of both data directories.
    let root = w._dir.path();
    assert!(!contains(&root.join("a"), "canaryrcpt"), "origin data holds the recipient");
    for canary in ["canaryauthor", SUBJECT, "canary-body-91c2"] {
        assert!(!contains(&root.join("b"), canary), "destination data holds {canary}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_destination_defers_with_backoff_then_gives_up() {
    let w = world().await;
    let sealed = w.seal(5);
    let mut rng = dime_testkit::seeded_rng(5);
    submit(p(), &mut rng, &w.a.store, &w.a.local, &mailbox(AUTHOR), &sealed, T0).unwrap();
    // A TCP port with nothing listening: refused at once.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = w.outbound(dead, Transports::TlsOnly);
    let o = out.run_once(T0, &mut rng).await.unwrap();
    let Outcome::Deferred { next, .. } = o[0] else { panic!("{o:?}") };
    assert!(next.0 >= T0.0 + 30 && next.0 <= T0.0 + 60, "first retry within [base/2, base]");
    assert!(out.run_once(T0, &mut rng).await.unwrap().is_empty(), "not due before its time");
    let late = Timestamp(T0.0 + RetryPolicy::default().max_lifetime_secs);
    let o = out.run_once(late, &mut rng).await.unwrap();
    assert!(matches!(o[0], Outcome::Failed { .. }), "{o:?}");
    assert!(w.a.store.queue_entries().unwrap().is_empty());
}

#[test]
fn backoff_doubles_with_jitter_and_caps() {
    let policy = RetryPolicy::default();
    let mut rng = dime_testkit::seeded_rng(1);
    for attempts in 0..40 {
        let exp = (policy.base_secs << attempts.min(32)).min(policy.max_backoff_secs);
        for _ in 0..20 {
            let d = backoff(&policy, attempts, &mut rng);
            assert!(
                d >= exp / 2 && d <= exp,
                "attempt {attempts}: {d} outside [{}, {exp}]",
                exp / 2
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_refusals_and_signet_service() {
    let w = world().await;
    let h = Destination::new(
        Arc::clone(&w.b.local),
        Arc::clone(&w.b.store),
        Arc::new(StaticOrigins::default()),
        p(),
    );
    assert_eq!(
        h.verify_origin(domain("a.test"), w.a.local.org_fingerprint).await,
        Err(Refusal::OriginNotVerified)
    );
    assert_eq!(
        h.check_recipient(domain("c.test"), w.b.local.org_fingerprint).await,
        Err(Refusal::NotFound)
    );
    assert_eq!(
        h.check_recipient(domain("b.test"), Fingerprint([7; 64])).await,
        Err(Refusal::StaleFingerprint)
    );
    assert_eq!(h.check_recipient(domain("b.test"), w.b.local.org_fingerprint).await, Ok(()));
    // SGNT: the org signet and a user's; unknown user and other domains are 550.
    let org = SignetName { domain: domain("b.test"), mailbox: None };
    assert_eq!(h.signet(org.clone(), None).await.unwrap(), w.b.local.org_signet.to_bytes());
    let user = SignetName { domain: domain("b.test"), mailbox: Some(mailbox(RECIPIENT)) };
    let (_, us) = w.b.store.signet(&mailbox(RECIPIENT)).unwrap();
    assert_eq!(h.signet(user.clone(), None).await.unwrap(), us.to_bytes());
    let nobody = SignetName { domain: domain("b.test"), mailbox: Some(mailbox("nobody@b.test")) };
    assert_eq!(h.signet(nobody, None).await, Err(Refusal::NotFound));
    let other = SignetName { domain: domain("a.test"), mailbox: None };
    assert_eq!(h.signet(other, None).await, Err(Refusal::NotFound));
    assert_eq!(h.signet(org.clone(), Some(Fingerprint([1; 64]))).await, Err(Refusal::NotFound));
    // VRFY and HIST.
    assert_eq!(h.verify(org.clone(), w.b.local.org_fingerprint).await, Ok(VerifyAnswer::Current));
    assert_eq!(
        h.verify(org.clone(), Fingerprint([1; 64])).await,
        Ok(VerifyAnswer::Updated(w.b.local.org_fingerprint))
    );
    assert!(h.history(org.clone(), w.b.local.org_fingerprint).await.unwrap().is_empty());
    assert_eq!(h.history(org, Fingerprint([1; 64])).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_recipient_fails_permanently() {
    let w = world().await;
    let sealed = w.seal(11);
    let mut rng = dime_testkit::seeded_rng(11);
    submit(p(), &mut rng, &w.a.store, &w.a.local, &mailbox(AUTHOR), &sealed, T0).unwrap();
    // The recipient is gone from b.test: 550 after the body, a permanent failure.
    w.b.store.delete_account(&mailbox(RECIPIENT)).unwrap();
    let out = w.outbound(w.tls.local_addr, Transports::TlsOnly);
    let o = out.run_once(T0, &mut rng).await.unwrap();
    let Outcome::Failed { reason, .. } = &o[0] else { panic!("{o:?}") };
    assert!(reason.contains("550"), "{reason}");
}
