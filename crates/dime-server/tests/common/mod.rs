//! Shared setup of the origin/destination integration tests: two local domains (a.test with
//! the author, b.test with the recipient) in a temporary directory, b.test serving DMTP over
//! QUIC and TLS on loopback, and an outbound worker at a.test routed to it with a pinned
//! certificate.
#![allow(unreachable_pub, dead_code, clippy::unwrap_used, clippy::expect_used)]

use dime_core::crypto::{Argon2Params, CryptoProvider, default_provider};
use dime_core::{Domain, Fingerprint, Mailbox, Secret};
use dime_dmtp::{Delivery, Refusal, SignetName, TransactionId, VerifyAnswer};
use dime_envelope::{
    ActorKeys, Addressing, Headers, Message, Part, PartInfo, PartKind, Signer, seal_message,
};
use dime_net::{Handler, ServerHandle, ServerOptions};
use dime_server::outbound::dmtp::{Dmtp, Route, RouteError, Routes, Target, Transports};
use dime_server::outbound::{Outbound, RetryPolicy};
use dime_server::{Destination, LocalDomain, StaticOrigins};
use dime_signet::{OrgKeys, Profile, create_org_signet};
use dime_store::{Accounts, NewAccount, Recovery, Store, StoreConfig, Timestamp};
use dime_testkit::tls_provider;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub const T0: Timestamp = Timestamp(1_700_000_000);
pub const AUTHOR: &str = "canaryauthor@a.test";
pub const RECIPIENT: &str = "canaryrcpt@b.test";

pub fn p() -> &'static CryptoProvider {
    default_provider()
}

pub fn domain(s: &str) -> Domain {
    Domain::parse(s).unwrap()
}

pub fn mailbox(s: &str) -> Mailbox {
    Mailbox::parse(s).unwrap()
}

/// A fixed route to b.test (one target, a pinned certificate); every other domain is not a
/// DIME domain (permanent).
pub struct StaticRoutes(Route);

impl Routes for StaticRoutes {
    async fn route(&self, destination: &Domain) -> Result<Route, RouteError> {
        if destination == &domain("b.test") {
            Ok(self.0.clone())
        } else {
            Err(RouteError::Permanent("not a known domain".into()))
        }
    }
}

pub fn store_config(dir: &Path, seed: u64) -> StoreConfig {
    StoreConfig {
        data_dir: dir.join("data"),
        vault_path: dir.join("vault").join("vault.redb"),
        pepper: Secret::new(vec![seed as u8; 32]),
        argon2: Argon2Params { m_kib: Argon2Params::MIN_M_KIB, t: 1, p: 1 },
        idle_timeout_secs: 900,
    }
}

pub struct Side {
    pub local: Arc<LocalDomain>,
    pub store: Arc<Store>,
}

pub fn side(dir: &Path, name: &str, seed: u64, user: &str) -> Side {
    side_on(Store::open(store_config(dir, seed), p()).unwrap(), name, seed, user)
}

/// [`side`] on a store already open (on another file system).
pub fn side_on(store: Store, name: &str, seed: u64, user: &str) -> Side {
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

impl Side {
    /// Adds `user` with `password` to this side's store (quota 1 GiB, no recovery).
    pub fn add_user(&self, user: &str, password: &[u8]) {
        let new = NewAccount {
            address: &mailbox(user),
            password,
            recovery: Recovery::None,
            quota_bytes: 1 << 30,
        };
        self.store
            .create_account(&mut dime_testkit::seeded_rng(2), self.local.keys(), &new, T0)
            .unwrap();
    }
}

/// A handler that passes everything to `inner` and counts the deliveries under way at once;
/// each delivery waits `hold` first, so that deliveries sent at once meet.
pub struct Counting<H> {
    inner: H,
    now: AtomicUsize,
    /// The most deliveries under way at once.
    pub most: AtomicUsize,
    /// Milliseconds each delivery waits before it is passed on.
    pub hold_ms: AtomicU64,
}

impl<H> Counting<H> {
    pub fn new(inner: H) -> Counting<H> {
        Counting {
            inner,
            now: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            hold_ms: AtomicU64::new(0),
        }
    }

    /// Deliveries under way now.
    pub fn under_way(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }
}

impl<H: Handler> Handler for Counting<H> {
    type Origin = H::Origin;

    async fn verify_origin(
        &self,
        origin: Domain,
        fingerprint: Fingerprint,
    ) -> Result<H::Origin, Refusal> {
        self.inner.verify_origin(origin, fingerprint).await
    }

    async fn check_recipient(
        &self,
        destination: Domain,
        fingerprint: Fingerprint,
    ) -> Result<(), Refusal> {
        self.inner.check_recipient(destination, fingerprint).await
    }

    async fn deliver(
        &self,
        delivery: Delivery,
        origin: &H::Origin,
    ) -> Result<TransactionId, Refusal> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(n, Ordering::SeqCst);
        let hold = self.hold_ms.load(Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(hold)).await;
        let r = self.inner.deliver(delivery, origin).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        r
    }

    async fn signet(&self, name: SignetName, pin: Option<Fingerprint>) -> Result<Vec<u8>, Refusal> {
        self.inner.signet(name, pin).await
    }

    async fn verify(
        &self,
        name: SignetName,
        fingerprint: Fingerprint,
    ) -> Result<VerifyAnswer, Refusal> {
        self.inner.verify(name, fingerprint).await
    }

    async fn history(&self, name: SignetName, from: Fingerprint) -> Result<Vec<Vec<u8>>, Refusal> {
        self.inner.history(name, from).await
    }
}

pub struct World {
    pub dir: tempfile::TempDir,
    pub a: Side,
    pub b: Side,
    pub quic: ServerHandle,
    pub tls: ServerHandle,
    pub cert: CertificateDer<'static>,
    /// b.test's handler: it counts the deliveries under way at once.
    pub handler: Arc<Counting<Destination<StaticOrigins>>>,
    /// The canary subject and body of the messages `seal` writes.
    pub subject: &'static str,
    pub body: &'static str,
}

/// Both sides, b.test listening on QUIC and TLS; `seal` writes `subject` and `body`.
pub async fn world(subject: &'static str, body: &'static str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let a = side(&dir.path().join("a"), "a.test", 1, AUTHOR);
    let b = side(&dir.path().join("b"), "b.test", 2, RECIPIENT);
    let mut origins = HashMap::new();
    origins.insert(
        domain("a.test"),
        (a.local.org_fingerprint, a.local.org_signet.signing_key().unwrap()),
    );
    let handler = Arc::new(Counting::new(Destination::new(
        Arc::clone(&b.local),
        Arc::clone(&b.store),
        Arc::new(StaticOrigins(origins)),
        p(),
    )));
    let ck = rcgen::generate_simple_self_signed(vec!["b.test".to_owned()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = ck.signing_key.serialize_der();
    let tls = dime_net::server_tls_config(
        tls_provider(),
        vec![cert.clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
    )
    .unwrap();
    let qcfg = dime_net::quic_server_config(tls.clone()).unwrap();
    let endpoint = quinn::Endpoint::server(qcfg, "127.0.0.1:0".parse().unwrap()).unwrap();
    let options = ServerOptions::new(domain("b.test"), p());
    let quic = dime_net::spawn_quic(endpoint, Arc::clone(&handler), options.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = dime_net::spawn_tls(listener, tls, Arc::clone(&handler), options).unwrap();
    World { dir, a, b, quic, tls, cert, handler, subject, body }
}

impl World {
    pub fn outbound(
        &self,
        addr: SocketAddr,
        transports: Transports,
    ) -> Outbound<Dmtp<StaticRoutes>> {
        self.outbound_with(addr, transports, RetryPolicy::default())
    }

    pub fn outbound_with(
        &self,
        addr: SocketAddr,
        transports: Transports,
        policy: RetryPolicy,
    ) -> Outbound<Dmtp<StaticRoutes>> {
        let verifier =
            Arc::new(dime_net::PinnedCertVerifier::new(tls_provider(), self.cert.clone()));
        let route = Route {
            destination_fingerprint: self.b.local.org_fingerprint,
            targets: vec![Target { server_name: "b.test".into(), addrs: vec![addr] }],
            verifier,
        };
        Outbound::new(
            Arc::clone(&self.a.store),
            Arc::clone(&self.a.local),
            Dmtp::new(
                Arc::clone(&self.a.local),
                Arc::new(StaticRoutes(route)),
                transports,
                tls_provider(),
            ),
            policy,
            p(),
        )
    }

    /// The author seals a message to the recipient at `to_domain` (keys from both sides'
    /// signets: b.test's whatever the domain).
    pub fn seal(&self, seed: u64, to_domain: &str) -> Vec<u8> {
        self.seal_to(seed, to_domain, &RECIPIENT.replace("b.test", to_domain))
    }

    /// [`World::seal`] for the destination domain `to_domain` and the recipient mailbox
    /// `recipient`, whatever its domain (the recipient's keys are b.test's recipient's).
    pub fn seal_to(&self, seed: u64, to_domain: &str, recipient: &str) -> Vec<u8> {
        let mut s = self.a.store.login(&mailbox(AUTHOR), b"pw", T0).unwrap();
        let author_keys = s.current_keys().unwrap();
        let (_, author_signet) = self.a.store.signet(&mailbox(AUTHOR)).unwrap();
        let (_, recip_signet) = self.b.store.signet(&mailbox(RECIPIENT)).unwrap();
        let recipient = mailbox(recipient);
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
            common_headers: Headers::from_pairs([("Subject", self.subject)]).unwrap(),
            other_headers: Headers::new(),
            parts: vec![Part {
                kind: PartKind::Display,
                info: PartInfo { content_type: "text/plain".into(), filename: String::new() },
                data: self.body.as_bytes().to_vec(),
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

/// Whether any file below `dir` holds `needle`.
pub fn contains(dir: &Path, needle: &str) -> bool {
    files(dir).iter().any(|f| {
        let data = std::fs::read(f).unwrap();
        data.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

/// A directory of no other domain: every lookup defers (a bogus answer at the domain).
pub struct NoDirectory;

fn deferred(at: &Domain) -> dime_resolver::DiscoveryError {
    dime_resolver::DiscoveryError::NotUsable(dime_resolver::Decision::Defer(
        dime_resolver::DeferReason::Bogus { at: at.clone() },
    ))
}

impl dime_server::service::Directory for NoDirectory {
    async fn user_signets(
        &self,
        user: &Mailbox,
    ) -> Result<(dime_signet::Signet, dime_signet::Signet), dime_resolver::DiscoveryError> {
        Err(deferred(user.domain()))
    }
    async fn org_signet(
        &self,
        domain: &Domain,
    ) -> Result<dime_signet::Signet, dime_resolver::DiscoveryError> {
        Err(deferred(domain))
    }
    async fn user_history(
        &self,
        user: &Mailbox,
        _since: &dime_core::Fingerprint,
    ) -> Result<Vec<dime_signet::Signet>, dime_resolver::DiscoveryError> {
        Err(deferred(user.domain()))
    }
}
