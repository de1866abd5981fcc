//! DMTP over real loopback sockets: QUIC and TLS over TCP servers on 127.0.0.1:0 whose store is
//! an in-memory callback that opens each envelope as the destination (`spec/dmtp.md` §2, §3,
//! §8, §10).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dime_core::crypto::{CryptoProvider, Ed25519Seed, Hashed, X25519Secret, default_provider};
use dime_core::{Domain, Fingerprint, Mailbox};
use dime_dmtp::frame::{Split, split_frame};
use dime_dmtp::limits::MAX_FRAME_SIZE;
use dime_dmtp::{
    CommandKind, Delivery, Outgoing, Refusal, ReplyCode, SignetName, TransactionId, VerifyAnswer,
};
use dime_envelope::{
    ActorKeys, ActorSecret, Addressing, Headers, Message, Part, PartInfo, PartKind, Signer,
    open_as_destination, open_as_origin, seal_message,
};
use dime_net::*;
use dime_testkit::tls_provider;
use dime_wire::Message as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ORIGIN_FP: Fingerprint = Fingerprint([0xa1; 64]);
const DEST_FP: Fingerprint = Fingerprint([0xb2; 64]);

fn domain(s: &str) -> Domain {
    Domain::parse(s).unwrap()
}

fn p() -> &'static CryptoProvider {
    default_provider()
}

/// The destination's keys and an in-memory store.
struct Store {
    dest: ActorSecret,
    origin_signing: dime_core::crypto::Ed25519PublicKey,
    /// Each delivery: its id, its recipient, and the number of the origin check its MAIL had.
    stored: Mutex<Vec<(TransactionId, Mailbox, u64)>>,
    next: AtomicU64,
    /// Origin checks made so far.
    checks: AtomicU64,
}

impl Handler for Store {
    /// The number of the check, and the origin's key.
    type Origin = (u64, dime_core::crypto::Ed25519PublicKey);

    async fn verify_origin(
        &self,
        origin: Domain,
        fingerprint: Fingerprint,
    ) -> Result<Self::Origin, Refusal> {
        if origin == domain("a.test") && fingerprint == ORIGIN_FP {
            Ok((self.checks.fetch_add(1, Ordering::SeqCst) + 1, self.origin_signing))
        } else {
            Err(Refusal::OriginNotVerified)
        }
    }

    async fn check_recipient(
        &self,
        destination: Domain,
        fingerprint: Fingerprint,
    ) -> Result<(), Refusal> {
        if destination != domain("b.test") {
            return Err(Refusal::NotFound);
        }
        if fingerprint != DEST_FP {
            return Err(Refusal::StaleFingerprint);
        }
        Ok(())
    }

    async fn deliver(&self, d: Delivery, origin: &Self::Origin) -> Result<TransactionId, Refusal> {
        let view = open_as_destination(p(), &d.body[..], &self.dest)
            .and_then(|u| u.verify(p(), &origin.1, &d.destination))
            .map_err(|_| Refusal::BadSignature)?;
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let id = TransactionId::new(&format!("tx{n}")).unwrap();
        self.stored.lock().unwrap().push((id.clone(), view.view().recipient.clone(), origin.0));
        Ok(id)
    }

    async fn signet(
        &self,
        name: SignetName,
        _pin: Option<Fingerprint>,
    ) -> Result<Vec<u8>, Refusal> {
        if name.domain == domain("b.test") {
            Ok(b"org-signet".to_vec())
        } else {
            Err(Refusal::NotFound)
        }
    }

    async fn verify(&self, _name: SignetName, _fp: Fingerprint) -> Result<VerifyAnswer, Refusal> {
        Ok(VerifyAnswer::Current)
    }

    async fn history(
        &self,
        _name: SignetName,
        _from: Fingerprint,
    ) -> Result<Vec<Vec<u8>>, Refusal> {
        Ok(Vec::new())
    }
}

struct World {
    store: Arc<Store>,
    sealed: Vec<u8>,
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

fn actor(n: u8) -> (ActorSecret, Ed25519Seed, ActorKeys) {
    let enc = ActorSecret::new(p(), X25519Secret::from_bytes([n; 32]));
    let sign = Ed25519Seed::from_bytes([n.wrapping_add(100); 32]);
    let keys = ActorKeys { encryption: *enc.public(), signing: p().signature.public_key(&sign) };
    (enc, sign, keys)
}

/// Seals a message as the author and adds the origin's signature: what the origin delivers.
fn world() -> World {
    let (_, author_sign, author) = actor(1);
    let (origin_enc, origin_sign, origin) = actor(2);
    let (dest_enc, _, dest) = actor(3);
    let (_, _, recip) = actor(4);
    let addressing = Addressing {
        author: Mailbox::parse("alice@a.test").unwrap(),
        author_keys: author,
        origin: domain("a.test"),
        origin_keys: origin,
        destination: domain("b.test"),
        destination_keys: dest,
        recipient: Mailbox::parse("bob@b.test").unwrap(),
        recipient_keys: recip,
    };
    let msg = Message {
        common_headers: Headers::from_pairs([("Subject", "canary-subject")]).unwrap(),
        other_headers: Headers::new(),
        parts: vec![Part {
            kind: PartKind::Display,
            info: PartInfo { content_type: "text/plain".into(), filename: String::new() },
            data: b"hello bob".to_vec(),
        }],
    };
    let mut rng = dime_testkit::seeded_rng(7);
    let mut sealed =
        seal_message(p(), &mut rng, &addressing, Signer::Author(&author_sign), &msg).unwrap();
    let v = open_as_origin(p(), &sealed[..], &origin_enc)
        .unwrap()
        .verify(p(), &author.signing)
        .unwrap();
    sealed.extend_from_slice(
        &v.origin_signature_chunk(
            p(),
            &mut rng,
            &origin_sign,
            &addressing.origin,
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        )
        .unwrap(),
    );
    let ck = rcgen::generate_simple_self_signed(vec!["b.test".to_owned()]).unwrap();
    World {
        store: Arc::new(Store {
            dest: dest_enc,
            origin_signing: origin.signing,
            stored: Mutex::default(),
            next: AtomicU64::new(1),
            checks: AtomicU64::new(0),
        }),
        sealed,
        cert: ck.cert.der().clone(),
        key: ck.signing_key.serialize_der(),
    }
}

impl World {
    fn server_tls(&self) -> rustls::ServerConfig {
        server_tls_config(
            tls_provider(),
            vec![self.cert.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone())),
        )
        .unwrap()
    }

    fn client_tls(&self) -> rustls::ClientConfig {
        let verifier = PinnedCertVerifier::new(tls_provider(), self.cert.clone());
        client_tls_config(tls_provider(), Arc::new(verifier)).unwrap()
    }

    fn options(&self) -> ServerOptions {
        ServerOptions::new(domain("b.test"), p())
    }

    fn quic_server(&self, options: ServerOptions) -> ServerHandle {
        let config = quic_server_config(self.server_tls()).unwrap();
        let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
        spawn_quic(endpoint, Arc::clone(&self.store), options).unwrap()
    }

    async fn tls_server(&self, options: ServerOptions) -> ServerHandle {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        spawn_tls(listener, self.server_tls(), Arc::clone(&self.store), options).unwrap()
    }

    fn quic_client(&self) -> QuicClient {
        let config = quic_client_config(self.client_tls()).unwrap();
        QuicClient::new("127.0.0.1:0".parse().unwrap(), config, domain("a.test")).unwrap()
    }

    async fn tls_client(&self, addr: SocketAddr) -> Result<TlsConnection, NetError> {
        TlsConnection::connect(addr, "b.test", Arc::new(self.client_tls()), &domain("a.test")).await
    }

    fn outgoing(&self) -> Outgoing {
        Outgoing {
            origin: domain("a.test"),
            origin_fingerprint: ORIGIN_FP,
            destination: domain("b.test"),
            destination_fingerprint: DEST_FP,
            body: Hashed::new(p(), self.sealed.clone()),
        }
    }

    /// A client machine given one transaction, and what it sends for it, all at once: HELLO,
    /// MAIL, RCPT, DATA, body.
    fn one_transaction(&self) -> (dime_dmtp::Client, dime_dmtp::TxnHandle, Vec<u8>) {
        let now = std::time::Instant::now();
        let mut c = dime_dmtp::Client::new(Some(&domain("a.test")), dime_dmtp::Mode::Transfer, now);
        let txn = c.send_message(self.outgoing(), now);
        let mut input = Vec::new();
        while let Some(f) = c.poll_transmit() {
            input.extend_from_slice(&f.to_vec());
        }
        (c, txn, input)
    }

    fn stored(&self) -> usize {
        self.store.stored.lock().unwrap().len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_delivers_sealed_envelopes_concurrently_on_one_connection() {
    let w = world();
    let server = w.quic_server(w.options());
    let conn = w.quic_client().connect(server.local_addr, "b.test").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (conn, msg) = (conn.clone(), w.outgoing());
        tasks.push(tokio::spawn(async move { conn.send(msg).await }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().unwrap().as_str().to_owned());
    }
    assert_eq!(ids.len(), 32);
    assert_eq!(w.stored(), 32);
    assert!(w.store.stored.lock().unwrap().iter().all(|(_, r, _)| r.local_part() == "bob"));
    let name = SignetName { domain: domain("b.test"), mailbox: None };
    assert_eq!(conn.lookup_signet(&name, None).await.unwrap(), b"org-signet");
    conn.close();
    server.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_delivers_in_turn_on_each_connection_and_concurrently_across_them() {
    let w = Arc::new(world());
    let server = w.tls_server(w.options()).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (w, addr) = (Arc::clone(&w), server.local_addr);
        tasks.push(tokio::spawn(async move {
            let mut c = w.tls_client(addr).await.unwrap();
            assert_eq!(c.greeting().unwrap().domain, domain("b.test"));
            for _ in 0..8 {
                c.send(w.outgoing()).await.unwrap();
            }
            c.quit().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(w.stored(), 32);
    // One origin check per transaction, at its MAIL, and each body verified under its own.
    assert_eq!(w.store.checks.load(Ordering::SeqCst), 32);
    let mut used: Vec<u64> = w.store.stored.lock().unwrap().iter().map(|s| s.2).collect();
    used.sort_unstable();
    assert_eq!(used, (1..=32).collect::<Vec<_>>());
    server.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_envelope_unknown_destination_and_stale_key_get_their_codes() {
    let w = world();
    let server = w.quic_server(w.options());
    let conn = w.quic_client().connect(server.local_addr, "b.test").await.unwrap();
    // Tampered before it was hashed: the commitment holds, the envelope does not open.
    let mut bad = w.outgoing();
    let mut body = bad.body.into_bytes().to_vec();
    let mid = body.len() / 2;
    body[mid] ^= 1;
    bad.body = Hashed::new(p(), body);
    let err = conn.send(bad).await.unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Refused { command: CommandKind::Data, code: ReplyCode::BAD_SIGNATURE, .. }
        ),
        "{err}"
    );
    let mut other = w.outgoing();
    other.destination = domain("c.test");
    let err = conn.send(other).await.unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Refused { command: CommandKind::Rcpt, code: ReplyCode::NOT_FOUND, .. }
        ),
        "{err}"
    );
    // The refusal says the code and the peer's text (issue 25: a deferral says why).
    assert_eq!(err.to_string(), "Rcpt refused by the peer with 550 \"not found\"");
    let mut stale = w.outgoing();
    stale.destination_fingerprint = Fingerprint([0; 64]);
    let err = conn.send(stale).await.unwrap_err();
    assert!(matches!(err, NetError::Refused { code: ReplyCode::STALE_FINGERPRINT, .. }), "{err}");
    assert!(!is_temporary(&err));
    assert_eq!(w.stored(), 0);
    server.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_reuses_a_live_connection_keeps_it_on_a_refusal_and_reconnects_on_a_failure() {
    let w = world();
    let server = w.quic_server(w.options());
    let addr = server.local_addr;
    let tls = w.client_tls();
    let pool: QuicPool<SocketAddr> = QuicPool::new(domain("a.test"));
    let send = |msg: Outgoing| {
        move |c: QuicConnection| {
            let msg = msg.clone();
            async move { c.send(msg).await }
        }
    };
    let id_of = |pool: &QuicPool<SocketAddr>| pool.live(&addr).unwrap().quic().stable_id();
    // A new connection, then the same one again.
    assert!(!pool.is_live(&addr));
    pool.run(&addr, addr, "b.test", &tls, send(w.outgoing())).await.unwrap();
    let first = id_of(&pool);
    pool.run(&addr, addr, "b.test", &tls, send(w.outgoing())).await.unwrap();
    assert_eq!(id_of(&pool), first);
    // A refusal is the server's answer: returned as it is, the connection kept.
    let mut stale = w.outgoing();
    stale.destination_fingerprint = Fingerprint([0; 64]);
    let err = pool.run(&addr, addr, "b.test", &tls, send(stale)).await.unwrap_err();
    assert!(matches!(err, NetError::Refused { code: ReplyCode::STALE_FINGERPRINT, .. }), "{err}");
    assert_eq!(id_of(&pool), first);
    // A closed connection is replaced.
    pool.live(&addr).unwrap().close();
    assert!(!pool.is_live(&addr));
    pool.run(&addr, addr, "b.test", &tls, send(w.outgoing())).await.unwrap();
    let second = id_of(&pool);
    assert_ne!(second, first);
    // A failure other than a reply on a reused connection: dropped, the request made once
    // more on a new connection.
    let calls = AtomicU64::new(0);
    let flaky = |c: QuicConnection| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let msg = w.outgoing();
        async move { if n == 0 { Err(NetError::Closed) } else { c.send(msg).await } }
    };
    pool.run(&addr, addr, "b.test", &tls, flaky).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_ne!(id_of(&pool), second);
    // On a new connection it is not retried, and the connection is dropped.
    let other: SocketAddr = "127.0.0.2:1".parse().unwrap();
    let calls = AtomicU64::new(0);
    let failing = |_c: QuicConnection| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Err::<(), _>(NetError::Closed) }
    };
    assert!(matches!(pool.run(&other, addr, "b.test", &tls, failing).await, Err(NetError::Closed)));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(!pool.is_live(&other));
    assert_eq!(w.stored(), 4);
    server.shutdown(Duration::ZERO).await;
}

/// Reads what the server sends until it closes (or 5 s pass).
async fn read_to_close(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut all))
        .await
        .expect("server closes");
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_protocol_text_is_closed_without_echo() {
    let w = world();
    let server = w.tls_server(w.options()).await;
    for text in [
        &b"GET / HTTP/1.1\r\nHost: canary-host\r\n\r\n"[..],
        b"EHLO canary-host\r\n",
        b"a001 LOGIN canary-user canary-pass\r\n",
    ] {
        let mut s = tokio::net::TcpStream::connect(server.local_addr).await.unwrap();
        s.write_all(text).await.unwrap();
        let back = read_to_close(&mut s).await;
        assert!(!back.windows(6).any(|win| win == b"canary"), "echoed: {back:?}");
        assert!(back.len() < 64, "at most a TLS alert: {back:?}");
    }
    // The server still serves a real client.
    let mut c = w.tls_client(server.local_addr).await.unwrap();
    c.send(w.outgoing()).await.unwrap();
    server.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_garbage_datagrams_do_not_disturb_a_real_client() {
    let w = world();
    let server = w.quic_server(w.options());
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut rng = dime_testkit::seeded_rng(9);
    for i in 0..200usize {
        let mut d = vec![0u8; 20 + i * 7 % 1200];
        rand_core::RngCore::fill_bytes(&mut rng, &mut d);
        udp.send_to(&d, server.local_addr).await.unwrap();
    }
    let conn = w.quic_client().connect(server.local_addr, "b.test").await.unwrap();
    conn.send(w.outgoing()).await.unwrap();
    assert_eq!(w.stored(), 1);
    server.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_limit_is_refused_and_the_stream_closed() {
    let w = world();
    let server = w.tls_server(w.options()).await;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(w.client_tls()));
    let tcp = tokio::net::TcpStream::connect(server.local_addr).await.unwrap();
    let mut tls = connector.connect(ServerName::try_from("b.test").unwrap(), tcp).await.unwrap();
    tls.write_all(&((MAX_FRAME_SIZE + 1) as u32).to_be_bytes()).await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut back)).await.unwrap().ok();
    let Ok(Split::Frame { payload, consumed }) = split_frame(&back) else {
        panic!("no reply: {back:?}")
    };
    assert_eq!(consumed, back.len(), "one reply, then close");
    assert_eq!(dime_wire::dmtp::Reply::decode(payload).unwrap().code, 500);
    server.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_cap_at_the_limit_and_one_past() {
    let w = world();
    let mut options = w.options();
    options.max_connections_per_ip = 2;
    let server = w.tls_server(options).await;
    let a = w.tls_client(server.local_addr).await.unwrap();
    let b = w.tls_client(server.local_addr).await.unwrap();
    assert!(w.tls_client(server.local_addr).await.is_err(), "third connection from one ip");
    drop(a);
    // The slot comes back once the server sees the close.
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Ok(c) = w.tls_client(server.local_addr).await {
            drop(c);
            ok = true;
            break;
        }
    }
    assert!(ok, "slot released");
    drop(b);
    server.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_tcp_peer_is_closed_at_the_handshake_deadline() {
    let w = world();
    let mut options = w.options();
    options.handshake_timeout = Duration::from_millis(200);
    let server = w.tls_server(options).await;
    let mut s = tokio::net::TcpStream::connect(server.local_addr).await.unwrap();
    let back = read_to_close(&mut s).await;
    assert!(back.is_empty());
    server.shutdown(Duration::ZERO).await;
}

#[test]
fn early_data_is_disabled_on_both_sides() {
    let w = world();
    assert_eq!(w.server_tls().max_early_data_size, 0);
    assert!(!w.client_tls().enable_early_data);
    assert_eq!(w.server_tls().alpn_protocols, vec![b"dmtp/1".to_vec()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_after_the_tls_handshake_gets_421_at_the_hello_deadline() {
    let w = world();
    let mut options = w.options();
    options.dmtp.handshake_timeout = Duration::from_millis(200);
    let server = w.tls_server(options).await;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(w.client_tls()));
    let tcp = tokio::net::TcpStream::connect(server.local_addr).await.unwrap();
    let mut tls = connector.connect(ServerName::try_from("b.test").unwrap(), tcp).await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut back)).await.unwrap().ok();
    let Ok(Split::Frame { payload, .. }) = split_frame(&back) else { panic!("no reply: {back:?}") };
    assert_eq!(dime_wire::dmtp::Reply::decode(payload).unwrap().code, 421);
    server.shutdown(Duration::ZERO).await;
}

/// A writer that keeps each write it is given, as one entry.
#[derive(Default, Clone)]
struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

impl tokio::io::AsyncWrite for Writes {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.lock().unwrap().push(buf.to_vec());
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

fn frames_in(mut buf: &[u8]) -> usize {
    let mut n = 0;
    while let Ok(Split::Frame { consumed, .. }) = split_frame(buf) {
        buf = &buf[consumed..];
        n += 1;
    }
    assert!(buf.is_empty(), "a write ends inside a frame");
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_flushes_its_replies_before_it_reads_again() {
    let w = world();
    let (mut c, txn, input) = w.one_transaction();
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let (sr, sw) = tokio::io::split(server_io);
    // A writer that holds what it is given until it is flushed, as a TLS stream does with
    // records the socket did not take at once.
    let sw = tokio::io::BufWriter::new(sw);
    let (store, options) = (Arc::clone(&w.store), w.options());
    let server = tokio::spawn(async move { serve_stream(sr, sw, store.as_ref(), &options).await });
    let (mut cr, mut cw) = tokio::io::split(client_io);
    cw.write_all(&input).await.unwrap();
    // The stream stays open: the replies must come without more input.
    let mut buf = vec![0u8; 4096];
    let delivered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let n = cr.read(&mut buf).await.unwrap();
            assert!(n > 0, "the server ended the stream");
            c.handle_input(&buf[..n], std::time::Instant::now());
            while let Some(ev) = c.poll_event() {
                if matches!(ev, dime_dmtp::ClientEvent::Delivered { txn: t, .. } if t == txn) {
                    return;
                }
            }
        }
    })
    .await;
    assert!(delivered.is_ok(), "the replies stayed in the server's writer");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replies_to_a_pipelined_transaction_leave_in_one_write() {
    let w = world();
    let (_, _, input) = w.one_transaction();
    let writes = Writes::default();
    serve_stream(&input[..], writes.clone(), w.store.as_ref(), &w.options()).await.unwrap();
    assert_eq!(w.stored(), 1);
    let writes = writes.0.lock().unwrap();
    // Every reply of the transaction in one write: the greeting (HELLO's), MAIL's, RCPT's,
    // DATA's 354 and the stored reply (one write each before).
    let counts: Vec<usize> = writes.iter().map(|b| frames_in(b)).collect();
    assert_eq!(counts, vec![5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quic_transaction_ends_the_clients_side_with_its_frames() {
    let w = world();
    let config = quic_server_config(w.server_tls()).unwrap();
    let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let (store, options) = (Arc::clone(&w.store), w.options());
    // A server that reads the whole stream before it answers anything: the read ends only if
    // the client ends its side with the transaction, without waiting for a reply
    // (`spec/dmtp.md` §2). Before, the client ended it after the stored reply.
    let server = tokio::spawn(async move {
        let conn = endpoint.accept().await.unwrap().await.unwrap();
        let (send, mut recv) = conn.accept_bi().await.unwrap();
        let input = tokio::time::timeout(Duration::from_secs(10), recv.read_to_end(1 << 20))
            .await
            .expect("the client's side did not end before a reply")
            .unwrap();
        serve_stream(&input[..], send, store.as_ref(), &options).await.unwrap();
        conn.closed().await;
    });
    let conn = w.quic_client().connect(addr, "b.test").await.unwrap();
    conn.send(w.outgoing()).await.unwrap();
    assert_eq!(w.stored(), 1);
    conn.close();
    server.await.unwrap();
}

/// A UDP relay on loopback to `to`: it holds each datagram from a client `delay` before
/// passing it on, and passes the answers back at once. Each client gets its own socket
/// towards `to`. Runs until the test's runtime ends.
async fn slow_relay(to: SocketAddr, delay: Duration) -> SocketAddr {
    let front = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = front.local_addr().unwrap();
    tokio::spawn(async move {
        let mut backs: std::collections::HashMap<SocketAddr, Arc<tokio::net::UdpSocket>> =
            std::collections::HashMap::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, client)) = front.recv_from(&mut buf).await else { return };
            let back = match backs.get(&client) {
                Some(b) => Arc::clone(b),
                None => {
                    let b = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
                    b.connect(to).await.unwrap();
                    let (b2, f2) = (Arc::clone(&b), Arc::clone(&front));
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 65536];
                        while let Ok(n) = b2.recv(&mut buf).await {
                            let _ = f2.send_to(&buf[..n], client).await;
                        }
                    });
                    backs.insert(client, Arc::clone(&b));
                    b
                }
            };
            let datagram = buf[..n].to_vec();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = back.send(&datagram).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_requests_at_once_share_one_connection_attempt() {
    let w = world();
    let server = w.quic_server(w.options());
    let addr = server.local_addr;
    let tls = w.client_tls();
    let pool: QuicPool<SocketAddr> = QuicPool::new(domain("a.test"));
    // Eight at once and no live connection: one connection for all of them.
    let ids = Mutex::new(std::collections::HashSet::new());
    let send = |c: QuicConnection| {
        ids.lock().unwrap().insert(c.quic().stable_id());
        let msg = w.outgoing();
        async move { c.send(msg).await }
    };
    let runs = (0..8).map(|_| pool.run(&addr, addr, "b.test", &tls, send));
    for r in futures_util::future::join_all(runs).await {
        r.unwrap();
    }
    assert_eq!(ids.lock().unwrap().len(), 1, "one connection");
    assert_eq!(w.stored(), 8);
    // A server whose certificate the pin refuses: the first attempt fails, and the requests
    // that waited for it fail at once, without an attempt of their own.
    // Reached through a relay that holds each client datagram 100 ms, so that the first
    // attempt cannot end before the other three have asked (on a loaded machine it did).
    let other = world();
    let refused = other.quic_server(other.options());
    let key = slow_relay(refused.local_addr, Duration::from_millis(100)).await;
    let runs = (0..4).map(|_| pool.run(&key, key, "b.test", &tls, send));
    let errors: Vec<NetError> =
        futures_util::future::join_all(runs).await.into_iter().map(|r| r.unwrap_err()).collect();
    let waited = errors.iter().filter(|e| matches!(e, NetError::ConnectFailed)).count();
    assert_eq!(waited, 3, "{errors:?}");
    assert!(!pool.is_live(&key));
    // A request after the failure makes its own attempt.
    let again = pool.run(&key, key, "b.test", &tls, send).await.unwrap_err();
    assert!(!matches!(again, NetError::ConnectFailed), "{again}");
    refused.shutdown(Duration::ZERO).await;
    server.shutdown(Duration::ZERO).await;
}

/// A TCP relay on loopback to `to` that counts the connections it accepted; `cut` closes
/// every connection it carries.
struct TcpRelay {
    addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    carrying: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl TcpRelay {
    async fn start(to: SocketAddr) -> TcpRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicU64::new(0));
        let carrying = Arc::new(Mutex::new(Vec::new()));
        let (a, c) = (Arc::clone(&accepted), Arc::clone(&carrying));
        tokio::spawn(async move {
            while let Ok((mut front, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let task = tokio::spawn(async move {
                    let mut back = tokio::net::TcpStream::connect(to).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut front, &mut back).await;
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        TcpRelay { addr, accepted, carrying }
    }

    fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    fn cut(&self) {
        for t in self.carrying.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_pool_reuses_idle_connections_and_replaces_closed_and_spent_ones() {
    let w = world();
    let server = w.tls_server(w.options()).await;
    let relay = TcpRelay::start(server.local_addr).await;
    let (key, tls) = (relay.addr, Arc::new(w.client_tls()));
    let pool: TlsPool<SocketAddr> = TlsPool::new(domain("a.test"));
    let send = |msg: Outgoing| {
        let (pool, tls) = (&pool, &tls);
        async move { pool.send(&key, key, "b.test", tls, &msg).await }
    };
    // A new connection, then the same one again.
    send(w.outgoing()).await.unwrap();
    send(w.outgoing()).await.unwrap();
    assert_eq!((relay.accepted(), pool.idle(&key)), (1, 1));
    // A refusal is the server's answer: returned as it is, the connection kept, and the next
    // transaction on it goes through.
    let mut stale = w.outgoing();
    stale.destination_fingerprint = Fingerprint([0; 64]);
    let err = send(stale).await.unwrap_err();
    assert!(matches!(err, NetError::Refused { code: ReplyCode::STALE_FINGERPRINT, .. }), "{err}");
    assert_eq!(pool.idle(&key), 1);
    send(w.outgoing()).await.unwrap();
    assert_eq!(relay.accepted(), 1);
    // A pooled connection closed under it: the message goes once more, on a new connection.
    relay.cut();
    send(w.outgoing()).await.unwrap();
    assert_eq!((relay.accepted(), pool.idle(&key)), (2, 1));
    // Two at once: the idle one and a new one, both kept; or, when the first is answered
    // before the second takes a connection (a resend is answered without a store write), the
    // idle one twice. Either way every connection made is kept idle.
    let (a, b) = tokio::join!(send(w.outgoing()), send(w.outgoing()));
    a.unwrap();
    b.unwrap();
    let made = relay.accepted();
    assert!((2..=3).contains(&made), "{made} connections");
    assert_eq!(pool.idle(&key) as u64, made - 1);
    assert_eq!(w.stored(), 6);
    // A connection that carried MAX_TRANSACTIONS (the server's limit) says QUIT and is not
    // kept; the next transaction connects again.
    let pool: TlsPool<SocketAddr> = TlsPool::new(domain("a.test"));
    let before = relay.accepted();
    for _ in 0..dime_dmtp::limits::MAX_TRANSACTIONS {
        pool.send(&key, key, "b.test", &tls, &w.outgoing()).await.unwrap();
    }
    assert_eq!((relay.accepted(), pool.idle(&key)), (before + 1, 0));
    pool.send(&key, key, "b.test", &tls, &w.outgoing()).await.unwrap();
    assert_eq!((relay.accepted(), pool.idle(&key)), (before + 2, 1));
    server.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_pool_closes_connections_idle_too_long_under_any_key() {
    let w = world();
    let server = w.tls_server(w.options()).await;
    let relay = TcpRelay::start(server.local_addr).await;
    let (key, tls) = (relay.addr, Arc::new(w.client_tls()));
    let pool: TlsPool<SocketAddr> =
        TlsPool::new(domain("a.test")).with_max_idle(Duration::from_millis(300));
    pool.send(&key, key, "b.test", &tls, &w.outgoing()).await.unwrap();
    assert_eq!(pool.idle(&key), 1);
    // Idle past its time: not reused, a new connection instead.
    tokio::time::sleep(Duration::from_millis(400)).await;
    pool.send(&key, key, "b.test", &tls, &w.outgoing()).await.unwrap();
    assert_eq!((relay.accepted(), pool.idle(&key)), (2, 1));
    // And closed even when its key is not asked again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    pool.close_idle();
    assert_eq!(pool.idle_total(), 0);
    assert_eq!(w.stored(), 2);
    server.shutdown(Duration::ZERO).await;
}
