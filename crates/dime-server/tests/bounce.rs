//! The origin's queue behaviour (`spec/dmtp.md` §11) over real loopback sockets: a permanent
//! refusal or the maximum lifetime bounces the message to its author with a notice signed by
//! the origin's org key (a trustful message, not author-signed); each entry's delivery status
//! (queued, deferred, delivered, failed, bounced) is kept durably, survives reopening the
//! store, and neither it, the bounce nor the logs show a local part, subject or body in clear.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dime_core::crypto::{Argon2Params, CryptoProvider, default_provider};
use dime_core::{Domain, Mailbox, Secret};
use dime_envelope::{
    ActorKeys, Addressing, Headers, Message, MessageKind, Part, PartInfo, PartKind, Signer,
    inspect, seal_message,
};
use dime_net::{ServerHandle, ServerOptions};
use dime_server::origin::{
    BOUNCE_LOCAL_PART, Outbound, Outcome, RetryPolicy, Route, RouteError, Routes, Target,
    Transports, submit,
};
use dime_server::{Destination, LocalDomain, StaticOrigins};
use dime_signet::{OrgKeys, Profile, create_org_signet};
use dime_store::{
    DeliveryState, MailboxId, NewAccount, QueueId, Recovery, Store, StoreConfig, Timestamp,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

const T0: Timestamp = Timestamp(1_700_000_000);
const AUTHOR: &str = "canaryauthor@a.test";
const RECIPIENT: &str = "canaryrcpt@b.test";
const SUBJECT: &str = "canary-subject-5d1e";
const BODY: &str = "canary-body-8b40 hello";

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

/// A fixed route to b.test; every other domain is not a DIME domain (permanent).
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

fn store_config(dir: &Path, seed: u64) -> StoreConfig {
    StoreConfig {
        data_dir: dir.join("data"),
        vault_path: dir.join("vault").join("vault.redb"),
        pepper: Secret::new(vec![seed as u8; 32]),
        argon2: Argon2Params { m_kib: Argon2Params::MIN_M_KIB, t: 1, p: 1 },
        idle_timeout_secs: 900,
    }
}

struct Side {
    local: Arc<LocalDomain>,
    store: Arc<Store>,
}

fn side(dir: &Path, name: &str, seed: u64, user: &str) -> Side {
    let store = Store::open(store_config(dir, seed), p()).unwrap();
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
    dir: tempfile::TempDir,
    a: Side,
    b: Side,
    tls: ServerHandle,
    _quic: ServerHandle,
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
    World { dir, a, b, tls, _quic: quic, cert }
}

impl World {
    fn outbound(&self, addr: SocketAddr) -> Outbound<StaticRoutes> {
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
            Transports::TlsOnly,
            p(),
        )
    }

    /// The author seals a message to the recipient at `to_domain` (b.test's keys).
    fn seal(&self, seed: u64, to_domain: &str) -> Vec<u8> {
        let mut s = self.a.store.login(&mailbox(AUTHOR), b"pw", T0).unwrap();
        let author_keys = s.current_keys().unwrap();
        let (_, author_signet) = self.a.store.signet(&mailbox(AUTHOR)).unwrap();
        let (_, recip_signet) = self.b.store.signet(&mailbox(RECIPIENT)).unwrap();
        let recipient = mailbox(&RECIPIENT.replace("b.test", to_domain));
        let addressing = Addressing {
            author: mailbox(AUTHOR),
            author_keys: ActorKeys::from_signet(&author_signet).unwrap(),
            origin: domain("a.test"),
            origin_keys: ActorKeys::from_signet(&self.a.local.org_signet).unwrap(),
            destination: domain(to_domain),
            destination_keys: ActorKeys::from_signet(&self.b.local.org_signet).unwrap(),
            recipient,
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

    /// Seals and submits a message; returns its queue id and message id.
    fn submit(&self, seed: u64, to_domain: &str) -> (QueueId, [u8; 32]) {
        let sealed = self.seal(seed, to_domain);
        let message_id = inspect(p(), &sealed, None).message_id.unwrap();
        let mut rng = dime_testkit::seeded_rng(seed + 1000);
        let (id, dest) =
            submit(p(), &mut rng, &self.a.store, &self.a.local, &mailbox(AUTHOR), &sealed, T0)
                .unwrap();
        assert_eq!(dest, domain(to_domain));
        (id, message_id)
    }

    /// The author logs in at `now`, finds exactly `count` messages in the inbox, opens the
    /// last one and checks it is a bounce from the origin: a trustful message (not signed
    /// by a person) whose author and origin signatures verify with a.test's POK and not with
    /// the author's own key. Returns its headers and text.
    fn author_reads_bounce(&self, now: Timestamp, count: usize) -> (Headers, Headers, String) {
        let store = &self.a.store;
        let mut s = store.login(&mailbox(AUTHOR), b"pw", now).unwrap();
        let entries = store.list(s.account(), MailboxId::INBOX).unwrap();
        assert_eq!(entries.len(), count);
        let uid = entries.last().unwrap().uid;
        let pok = self.a.local.org_signet.signing_key().unwrap();
        let author_key = store.signet(&mailbox(AUTHOR)).unwrap().1.signing_key().unwrap();
        let mut rng = dime_testkit::seeded_rng(9);
        let opened = store.open_message(&mut rng, &mut s, MailboxId::INBOX, uid, now).unwrap();
        assert_eq!(opened.message.kind(), MessageKind::Trustful, "marked not author-signed");
        let again = store.open_message(&mut rng, &mut s, MailboxId::INBOX, uid, now).unwrap();
        assert!(
            again.message.verify(p(), &author_key, Some(&pok)).is_err(),
            "the author's own key does not verify a bounce"
        );
        let verified = opened.message.verify(p(), &pok, Some(&pok)).unwrap();
        assert_eq!(verified.kind(), MessageKind::Trustful);
        let view = verified.into_view();
        assert_eq!(view.author, mailbox(&format!("{BOUNCE_LOCAL_PART}@a.test")));
        assert_eq!(view.origin, domain("a.test"));
        assert_eq!(view.recipient, mailbox(AUTHOR));
        assert!(view.origin_signed);
        assert_eq!(view.message.parts.len(), 1);
        let text = String::from_utf8(view.message.parts[0].data.clone()).unwrap();
        assert!(!text.contains("canary-body") && !text.contains(SUBJECT), "{text}");
        (view.message.common_headers, view.message.other_headers, text)
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Records every tracing event and span field of this test binary (every test, every
/// thread), as `name=value` text.
struct Capture(Arc<Mutex<String>>);

/// The log of this test binary so far; installs the capturing subscriber on first use.
fn captured_log() -> Arc<Mutex<String>> {
    static LOG: std::sync::OnceLock<Arc<Mutex<String>>> = std::sync::OnceLock::new();
    Arc::clone(LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(String::new()));
        tracing::subscriber::set_global_default(Capture(Arc::clone(&log))).unwrap();
        log
    }))
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        span.record(&mut Fields(&mut self.0.lock().unwrap()));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut log = self.0.lock().unwrap();
        event.record(&mut Fields(&mut log));
        log.push('\n');
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_recipient_is_bounced_to_the_author_signed_by_the_origin() {
    let log = captured_log();
    let w = world().await;
    let (id, message_id) = w.submit(11, "b.test");
    let s = w.a.store.delivery_status(id).unwrap().unwrap();
    assert_eq!((s.state, s.destination.as_str(), s.queued), (DeliveryState::Queued, "b.test", T0));
    // The recipient is gone from b.test: 550 after the body, a permanent failure.
    w.b.store.delete_account(&mailbox(RECIPIENT)).unwrap();
    let out = w.outbound(w.tls.local_addr);
    let mut rng = dime_testkit::seeded_rng(11);
    let now = Timestamp(T0.0 + 5);
    let o = out.run_once(now, &mut rng).await.unwrap();
    let Outcome::Failed { reason, bounced: true, .. } = &o[0] else { panic!("{o:?}") };
    assert!(reason.contains("550"), "{reason}");
    assert!(w.a.store.queue_entries().unwrap().is_empty());

    let (common, other, text) = w.author_reads_bounce(now, 1);
    assert_eq!(common.get("To"), Some(AUTHOR));
    assert_eq!(common.get("From"), Some("Mail Delivery System <postmaster@a.test>"));
    assert!(common.get("Subject").unwrap().contains("b.test"));
    assert_eq!(common.get("Date"), Some("Tue, 14 Nov 2023 22:13:25 +0000"));
    assert_eq!(other.get("Auto-Submitted"), Some("auto-replied"));
    assert_eq!(other.get("Dime-Bounce-Destination"), Some("b.test"));
    assert_eq!(other.get("Dime-Bounce-Reason"), Some(reason.as_str()));
    assert_eq!(other.get("Dime-Bounce-Message-Id"), Some(hex(&message_id).as_str()));
    assert_eq!(other.get("Dime-Bounce-Queued"), Some(T0.0.to_string().as_str()));
    assert_eq!(other.get("Dime-Bounce-Queue-Id"), Some(id.0.to_string().as_str()));
    for want in ["b.test", reason.as_str(), &hex(&message_id), "Tue, 14 Nov 2023 22:13:20 +0000"] {
        assert!(text.contains(want), "{want} not in {text}");
    }

    let s = w.a.store.delivery_status(id).unwrap().unwrap();
    assert_eq!(s.state, DeliveryState::Bounced { reason: reason.clone() });
    assert_eq!((s.queued, s.updated, s.attempts), (T0, now, 1));

    // Nothing in a.test's data or in the logs shows a local part, the subject or the body.
    let log = log.lock().unwrap().clone();
    assert!(log.contains("delivery failed") && log.contains("bounced=true"), "{log}");
    let a_dir = w.dir.path().join("a");
    for canary in ["canaryrcpt", "canaryauthor", SUBJECT, "canary-body"] {
        assert!(!contains(&a_dir, canary), "origin data holds {canary}");
        assert!(!log.contains(canary), "the log holds {canary}: {log}");
    }
    assert!(!format!("{s:?} {o:?}").contains("canary"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_destination_is_deferred_then_bounced_after_the_maximum_lifetime() {
    let _log = captured_log();
    let w = world().await;
    let (id, message_id) = w.submit(5, "b.test");
    // A TCP port with nothing listening: refused at once, a temporary failure.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = w.outbound(dead);
    let mut rng = dime_testkit::seeded_rng(5);
    let o = out.run_once(T0, &mut rng).await.unwrap();
    let Outcome::Deferred { next, reason, .. } = &o[0] else { panic!("{o:?}") };
    let s = w.a.store.delivery_status(id).unwrap().unwrap();
    assert_eq!(
        s.state,
        DeliveryState::Deferred { next_attempt: *next, reason: reason.clone() },
        "deferred with its next attempt"
    );
    assert_eq!((s.attempts, s.updated), (1, T0));
    let o = out.run_once(*next, &mut rng).await.unwrap();
    let Outcome::Deferred { next, .. } = &o[0] else { panic!("{o:?}") };
    let s = w.a.store.delivery_status(id).unwrap().unwrap();
    assert_eq!(s.attempts, 2);
    assert!(
        matches!(s.state, DeliveryState::Deferred { next_attempt, .. } if next_attempt == *next)
    );

    let late = Timestamp(T0.0 + RetryPolicy::default().max_lifetime_secs);
    let o = out.run_once(late, &mut rng).await.unwrap();
    let Outcome::Failed { reason, bounced: true, .. } = &o[0] else { panic!("{o:?}") };
    assert!(reason.starts_with("maximum lifetime reached"), "{reason}");
    let s = w.a.store.delivery_status(id).unwrap().unwrap();
    assert_eq!(s.state, DeliveryState::Bounced { reason: reason.clone() });
    assert_eq!((s.attempts, s.updated, s.queued), (3, late, T0));

    let (_, other, text) = w.author_reads_bounce(late, 1);
    assert_eq!(other.get("Dime-Bounce-Destination"), Some("b.test"));
    assert!(other.get("Dime-Bounce-Reason").unwrap().starts_with("maximum lifetime reached"));
    assert_eq!(other.get("Dime-Bounce-Message-Id"), Some(hex(&message_id).as_str()));
    assert!(text.contains("Attempts:    3"), "{text}");
    assert!(out.run_once(late, &mut rng).await.unwrap().is_empty(), "bounced once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_dime_domain_fails_and_an_author_without_an_account_gets_no_bounce() {
    let _log = captured_log();
    let w = world().await;
    // c.test is not a DIME domain: a permanent route failure, bounced.
    let (first, _) = w.submit(21, "c.test");
    let out = w.outbound(w.tls.local_addr);
    let mut rng = dime_testkit::seeded_rng(21);
    let o = out.run_once(T0, &mut rng).await.unwrap();
    assert!(matches!(o[0], Outcome::Failed { bounced: true, .. }), "{o:?}");
    assert!(matches!(
        w.a.store.delivery_status(first).unwrap().unwrap().state,
        DeliveryState::Bounced { .. }
    ));
    // The author's account is deleted before the worker gives up: the entry fails, status
    // failed, and nothing is bounced (or bounced again).
    let (second, _) = w.submit(22, "c.test");
    w.a.store.delete_account(&mailbox(AUTHOR)).unwrap();
    let o = out.run_once(T0, &mut rng).await.unwrap();
    let Outcome::Failed { reason, bounced: false, .. } = &o[0] else { panic!("{o:?}") };
    let s = w.a.store.delivery_status(second).unwrap().unwrap();
    assert_eq!(s.state, DeliveryState::Failed { reason: reason.clone() });
    assert!(w.a.store.queue_entries().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_status_keeps_the_transaction_id_and_survives_reopening_the_store() {
    let _log = captured_log();
    let w = world().await;
    let (id, _) = w.submit(31, "b.test");
    let out = w.outbound(w.tls.local_addr);
    let mut rng = dime_testkit::seeded_rng(31);
    let now = Timestamp(T0.0 + 2);
    let o = out.run_once(now, &mut rng).await.unwrap();
    let Outcome::Delivered { txid, .. } = &o[0] else { panic!("{o:?}") };
    let want = DeliveryState::Delivered { txid: txid.as_str().to_owned() };
    let s = w.a.store.delivery_status(id).unwrap().unwrap();
    assert_eq!((&s.state, s.attempts, s.updated), (&want, 1, now));
    assert_eq!(w.a.store.delivery_statuses(T0, 10).unwrap(), std::slice::from_ref(&s));

    // Reopen a.test's store: the status is still there.
    let World { dir, a, b: _b, tls: _tls, _quic, cert: _ } = w;
    drop(out);
    let Side { store, local: _ } = a;
    drop(Arc::into_inner(store).expect("the only reference"));
    let store = Store::open(store_config(&dir.path().join("a"), 1), p()).unwrap();
    assert_eq!(store.delivery_status(id).unwrap().unwrap(), s);
    // Pruned once the retention has passed, not before.
    assert_eq!(store.prune_delivery_statuses(now).unwrap(), 0);
    assert_eq!(store.prune_delivery_statuses(Timestamp(now.0 + 1)).unwrap(), 1);
    assert_eq!(store.delivery_status(id).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_pass_prunes_statuses_older_than_the_retention() {
    let _log = captured_log();
    let w = world().await;
    let (id, _) = w.submit(41, "b.test");
    let out = w.outbound(w.tls.local_addr).with_status_retention(3600);
    let mut rng = dime_testkit::seeded_rng(41);
    let o = out.run_once(T0, &mut rng).await.unwrap();
    assert!(matches!(o[0], Outcome::Delivered { .. }), "{o:?}");
    assert!(out.run_once(Timestamp(T0.0 + 3600), &mut rng).await.unwrap().is_empty());
    assert!(w.a.store.delivery_status(id).unwrap().is_some(), "kept for the retention");
    assert!(out.run_once(Timestamp(T0.0 + 3601), &mut rng).await.unwrap().is_empty());
    assert_eq!(w.a.store.delivery_status(id).unwrap(), None, "pruned after it");
}
