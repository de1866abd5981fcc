//! A DMTP listener's admission and graceful stop over real loopback sockets, QUIC and TLS over
//! TCP on 127.0.0.1:0 (`spec/dmtp.md` §8): the global connection cap, a transaction under way
//! at the stop, the connections left at the grace. The handler holds each delivery until the
//! test releases it, so a transaction is under way exactly as long as a test wants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dime_core::crypto::{CryptoProvider, Hashed, default_provider};
use dime_core::{Domain, Fingerprint};
use dime_dmtp::frame::{Split, split_frame};
use dime_dmtp::{
    ClientEvent, Delivery, Outgoing, Refusal, SignetName, TransactionId, VerifyAnswer,
};
use dime_net::*;
use dime_testkit::tls_provider;
use dime_wire::Message as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;

/// Longest wait for anything a test expects to happen (never a timed assertion: a bound on a
/// hang).
const WAIT: Duration = Duration::from_secs(10);

fn domain(s: &str) -> Domain {
    Domain::parse(s).unwrap()
}

fn p() -> &'static CryptoProvider {
    default_provider()
}

/// Accepts every origin and recipient; holds each delivery until released.
struct Held {
    /// A permit per delivery that reached the handler.
    entered: Semaphore,
    /// A permit per delivery allowed to end.
    release: Semaphore,
    next: AtomicU64,
}

impl Default for Held {
    fn default() -> Held {
        Held { entered: Semaphore::new(0), release: Semaphore::new(0), next: AtomicU64::new(1) }
    }
}

impl Handler for Held {
    type Origin = ();

    async fn verify_origin(&self, _: Domain, _: Fingerprint) -> Result<(), Refusal> {
        Ok(())
    }

    async fn check_recipient(&self, _: Domain, _: Fingerprint) -> Result<(), Refusal> {
        Ok(())
    }

    async fn deliver(&self, _: Delivery, (): &()) -> Result<TransactionId, Refusal> {
        self.entered.add_permits(1);
        self.release.acquire().await.map_err(|_| Refusal::StoreFailed)?.forget();
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        Ok(TransactionId::new(&format!("tx{n}")).unwrap())
    }

    async fn signet(&self, _: SignetName, _: Option<Fingerprint>) -> Result<Vec<u8>, Refusal> {
        Err(Refusal::NotFound)
    }

    async fn verify(&self, _: SignetName, _: Fingerprint) -> Result<VerifyAnswer, Refusal> {
        Err(Refusal::NotFound)
    }

    async fn history(&self, _: SignetName, _: Fingerprint) -> Result<Vec<Vec<u8>>, Refusal> {
        Err(Refusal::NotFound)
    }
}

#[derive(Debug, Clone, Copy)]
enum Transport {
    Quic,
    Tls,
}

/// A client connection over either transport.
enum Conn {
    Quic(QuicConnection),
    Tls(TlsConnection),
}

impl Conn {
    async fn send(&mut self, msg: Outgoing) -> Result<TransactionId, NetError> {
        match self {
            Conn::Quic(c) => c.send(msg).await,
            Conn::Tls(c) => c.send(msg).await,
        }
    }
}

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

struct Env {
    held: Arc<Held>,
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

fn env() -> Env {
    let ck = rcgen::generate_simple_self_signed(vec!["b.test".to_owned()]).unwrap();
    Env { held: Arc::default(), cert: ck.cert.der().clone(), key: ck.signing_key.serialize_der() }
}

fn outgoing() -> Outgoing {
    Outgoing {
        origin: domain("a.test"),
        origin_fingerprint: Fingerprint([0xa1; 64]),
        destination: domain("b.test"),
        destination_fingerprint: Fingerprint([0xb2; 64]),
        body: Hashed::new(p(), b"an envelope the handler does not open".to_vec()),
    }
}

impl Env {
    fn server_tls(&self) -> rustls::ServerConfig {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        server_tls_config(tls_provider(), vec![self.cert.clone()], key).unwrap()
    }

    fn client_tls(&self) -> rustls::ClientConfig {
        let verifier = PinnedCertVerifier::new(tls_provider(), self.cert.clone());
        client_tls_config(tls_provider(), Arc::new(verifier)).unwrap()
    }

    fn options(&self) -> ServerOptions {
        ServerOptions::new(domain("b.test"), p())
    }

    async fn server(&self, t: Transport, options: ServerOptions) -> ServerHandle {
        let handler = Arc::clone(&self.held);
        match t {
            Transport::Quic => {
                let config = quic_server_config(self.server_tls()).unwrap();
                let ep = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
                spawn_quic(ep, handler, options).unwrap()
            }
            Transport::Tls => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                spawn_tls(listener, self.server_tls(), handler, options).unwrap()
            }
        }
    }

    fn quic_client(&self) -> QuicClient {
        let config = quic_client_config(self.client_tls()).unwrap();
        QuicClient::new("127.0.0.1:0".parse().unwrap(), config, domain("a.test")).unwrap()
    }

    /// A new connection, its handshake and HELLO done.
    async fn connect(&self, t: Transport, addr: SocketAddr) -> Result<Conn, NetError> {
        let tls = Arc::new(self.client_tls());
        match t {
            Transport::Quic => self.quic_client().connect(addr, "b.test").await.map(Conn::Quic),
            Transport::Tls => {
                TlsConnection::connect(addr, "b.test", tls, &domain("a.test")).await.map(Conn::Tls)
            }
        }
    }

    /// A new connection's one stream, bare (QUIC: its connection is the third value, to keep).
    async fn raw(
        &self,
        t: Transport,
        addr: SocketAddr,
    ) -> (Reader, Writer, Option<QuicConnection>) {
        match t {
            Transport::Quic => {
                let conn = self.quic_client().connect(addr, "b.test").await.unwrap();
                let (send, recv) = conn.quic().open_bi().await.unwrap();
                (Box::new(recv), Box::new(send), Some(conn))
            }
            Transport::Tls => {
                let connector = tokio_rustls::TlsConnector::from(Arc::new(self.client_tls()));
                let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                let name = ServerName::try_from("b.test").unwrap();
                let tls = connector.connect(name, tcp).await.unwrap();
                let (r, w) = tokio::io::split(tls);
                (Box::new(r), Box::new(w), None)
            }
        }
    }

    /// Waits until a delivery has reached the handler.
    async fn entered(&self) {
        let permit = tokio::time::timeout(WAIT, self.held.entered.acquire()).await;
        permit.expect("a delivery reaches the handler").unwrap().forget();
    }
}

fn frames_in(mut buf: &[u8]) -> usize {
    let mut n = 0;
    while let Ok(Split::Frame { consumed, .. }) = split_frame(buf) {
        buf = &buf[consumed..];
        n += 1;
    }
    n
}

/// The codes of the replies in `buf`, in order.
fn reply_codes(mut buf: &[u8]) -> Vec<u32> {
    let mut codes = Vec::new();
    while let Ok(Split::Frame { payload, consumed }) = split_frame(buf) {
        codes.push(dime_wire::dmtp::Reply::decode(payload).unwrap().code);
        buf = &buf[consumed..];
    }
    codes
}

/// The frames a client machine sends for one transaction, pipelined: HELLO, MAIL, RCPT, DATA
/// and the body.
fn transaction_frames() -> (dime_dmtp::Client, dime_dmtp::TxnHandle, Vec<Vec<u8>>) {
    let now = Instant::now();
    let mut c = dime_dmtp::Client::new(Some(&domain("a.test")), dime_dmtp::Mode::Transfer, now);
    let txn = c.send_message(outgoing(), now);
    let frames: Vec<Vec<u8>> =
        std::iter::from_fn(|| c.poll_transmit().map(|f| f.to_vec())).collect();
    assert!(frames.len() >= 5, "HELLO, MAIL, RCPT, DATA and the body, pipelined");
    (c, txn, frames)
}

/// Reads into `got` until it holds `n` whole frames.
async fn read_frames(r: &mut Reader, got: &mut Vec<u8>, n: usize) {
    let mut buf = vec![0u8; 4096];
    while frames_in(got) < n {
        let read = tokio::time::timeout(WAIT, r.read(&mut buf)).await.expect("replies in time");
        let k = read.unwrap();
        assert!(k > 0, "the stream ended after {} of {n} replies", frames_in(got));
        got.extend_from_slice(&buf[..k]);
    }
}

/// Reads to the end of the stream, into `got`; panics when it does not end in time.
async fn read_to_end(r: &mut Reader, got: &mut Vec<u8>) {
    let read = tokio::time::timeout(WAIT, r.read_to_end(got)).await;
    read.expect("the server ends the stream").unwrap();
}

async fn over_the_global_cap_a_connection_is_refused_before_it_is_served(t: Transport) {
    let e = env();
    let mut options = e.options();
    options.max_connections = 2;
    let server = e.server(t, options).await;
    let addr = server.local_addr;
    let mut a = e.connect(t, addr).await.unwrap();
    let b = e.connect(t, addr).await.unwrap();
    let third = e.connect(t, addr).await;
    assert!(third.is_err(), "{t:?}: a third connection with the cap at 2 was served");
    // The two admitted are served.
    e.held.release.add_permits(1);
    tokio::time::timeout(WAIT, a.send(outgoing())).await.unwrap().unwrap();
    // A place comes back once the server sees a connection close.
    match b {
        Conn::Quic(c) => c.close(),
        Conn::Tls(c) => drop(c),
    }
    let mut again = None;
    for _ in 0..100 {
        if let Ok(c) = e.connect(t, addr).await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "{t:?}: the place of a closed connection was not freed");
    server.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_over_the_global_cap_a_connection_is_refused_before_it_is_served() {
    over_the_global_cap_a_connection_is_refused_before_it_is_served(Transport::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_over_the_global_cap_a_connection_is_refused_before_it_is_served() {
    over_the_global_cap_a_connection_is_refused_before_it_is_served(Transport::Tls).await;
}

async fn a_delivery_under_way_at_the_stop_is_answered_and_new_connections_refused(t: Transport) {
    let e = env();
    let server = e.server(t, e.options()).await;
    let addr = server.local_addr;
    let mut conn = e.connect(t, addr).await.unwrap();
    let sending = tokio::spawn(async move { conn.send(outgoing()).await });
    e.entered().await;
    let drained = tokio::spawn(server.shutdown(Duration::from_secs(60)));
    assert!(e.connect(t, addr).await.is_err(), "{t:?}: a connection after the stop was served");
    e.held.release.add_permits(1);
    let reply = tokio::time::timeout(WAIT, sending).await.expect("the reply in time").unwrap();
    assert!(reply.is_ok(), "{t:?}: the delivery under way at the stop failed: {reply:?}");
    let closed_at_grace = tokio::time::timeout(WAIT, drained).await.expect("drained").unwrap();
    assert_eq!(closed_at_grace, 0, "{t:?}: the connection did not close by itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_a_delivery_under_way_at_the_stop_is_answered_and_new_connections_refused() {
    a_delivery_under_way_at_the_stop_is_answered_and_new_connections_refused(Transport::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_a_delivery_under_way_at_the_stop_is_answered_and_new_connections_refused() {
    a_delivery_under_way_at_the_stop_is_answered_and_new_connections_refused(Transport::Tls).await;
}

/// A transaction whose MAIL and RCPT were answered before the stop gets its DATA and body in
/// after it, and its 250; a stream idle at the stop (HELLO only) is closed at once.
async fn a_transaction_open_at_the_stop_finishes_and_an_idle_stream_closes(t: Transport) {
    let e = env();
    let server = e.server(t, e.options()).await;
    let addr = server.local_addr;
    let (mut c, txn, frames) = transaction_frames();
    let (head, tail) = frames.split_at(3);

    let (mut r, mut w, _keep) = e.raw(t, addr).await;
    w.write_all(&head.concat()).await.unwrap();
    w.flush().await.unwrap();
    let mut got = Vec::new();
    read_frames(&mut r, &mut got, 3).await;

    let (mut idle_r, mut idle_w, _keep_idle) = e.raw(t, addr).await;
    idle_w.write_all(&head[0]).await.unwrap();
    idle_w.flush().await.unwrap();
    let mut idle_got = Vec::new();
    read_frames(&mut idle_r, &mut idle_got, 1).await;

    let drained = tokio::spawn(server.shutdown(Duration::from_secs(60)));
    read_to_end(&mut idle_r, &mut idle_got).await;
    assert_eq!(frames_in(&idle_got), 1, "{t:?}: the idle stream got more than its greeting");

    e.held.release.add_permits(1);
    w.write_all(&tail.concat()).await.unwrap();
    w.shutdown().await.unwrap();
    read_to_end(&mut r, &mut got).await;
    c.handle_input(&got, Instant::now());
    c.handle_end();
    let delivered = std::iter::from_fn(|| c.poll_event())
        .any(|ev| matches!(ev, ClientEvent::Delivered { txn: d, .. } if d == txn));
    assert!(delivered, "{t:?}: the transaction open at the stop was not answered 250");
    let closed_at_grace = tokio::time::timeout(WAIT, drained).await.expect("drained").unwrap();
    assert_eq!(closed_at_grace, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_a_transaction_open_at_the_stop_finishes_and_an_idle_stream_closes() {
    a_transaction_open_at_the_stop_finishes_and_an_idle_stream_closes(Transport::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_a_transaction_open_at_the_stop_finishes_and_an_idle_stream_closes() {
    a_transaction_open_at_the_stop_finishes_and_an_idle_stream_closes(Transport::Tls).await;
}

/// On a stream whose transaction was open at the stop, the MAIL of the next one, sent with the
/// first's body, is refused with 450 (`Temporary`) after the first's 250.
async fn a_transaction_begun_after_the_stop_is_refused_with_450(t: Transport) {
    let e = env();
    let server = e.server(t, e.options()).await;
    let (_, _, first) = transaction_frames();
    let (_, _, second) = transaction_frames();
    let (head, tail) = first.split_at(3);
    let (mut r, mut w, _keep) = e.raw(t, server.local_addr).await;
    w.write_all(&head.concat()).await.unwrap();
    w.flush().await.unwrap();
    let mut got = Vec::new();
    read_frames(&mut r, &mut got, 3).await;
    // A stream idle at the stop: once it is closed, the stop has reached every connection.
    let (mut idle_r, mut idle_w, _keep_idle) = e.raw(t, server.local_addr).await;
    idle_w.write_all(&first[0]).await.unwrap();
    idle_w.flush().await.unwrap();
    read_frames(&mut idle_r, &mut Vec::new(), 1).await;

    let drained = tokio::spawn(server.shutdown(Duration::from_secs(60)));
    read_to_end(&mut idle_r, &mut Vec::new()).await;
    e.held.release.add_permits(2);
    // The first transaction's DATA and body, then the second's MAIL (its HELLO left out).
    w.write_all(&[tail.concat(), second[1].clone()].concat()).await.unwrap();
    w.shutdown().await.unwrap();
    read_to_end(&mut r, &mut got).await;
    let codes = reply_codes(&got);
    assert_eq!(codes.get(4), Some(&250), "{t:?}: the transaction open at the stop: {codes:?}");
    assert_eq!(codes.get(5), Some(&450), "{t:?}: a MAIL after the stop: {codes:?}");
    let closed_at_grace = tokio::time::timeout(WAIT, drained).await.expect("drained").unwrap();
    assert_eq!(closed_at_grace, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_a_transaction_begun_after_the_stop_is_refused_with_450() {
    a_transaction_begun_after_the_stop_is_refused_with_450(Transport::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_a_transaction_begun_after_the_stop_is_refused_with_450() {
    a_transaction_begun_after_the_stop_is_refused_with_450(Transport::Tls).await;
}

async fn connections_still_busy_at_the_grace_are_closed(t: Transport) {
    let e = env();
    let server = e.server(t, e.options()).await;
    let addr = server.local_addr;
    let mut conn = e.connect(t, addr).await.unwrap();
    let quic = match &conn {
        Conn::Quic(c) => Some(c.clone()),
        Conn::Tls(_) => None,
    };
    let sending = tokio::spawn(async move { conn.send(outgoing()).await });
    e.entered().await;
    // The delivery is never released: it is still under way at the grace.
    let drained = tokio::time::timeout(WAIT, server.shutdown(Duration::from_millis(200))).await;
    let closed_at_grace = drained.expect("the listener ends after the grace");
    assert_eq!(closed_at_grace, 1, "{t:?}");
    let reply = tokio::time::timeout(WAIT, sending).await.expect("the client sees the close");
    assert!(reply.unwrap().is_err(), "{t:?}: a delivery was answered after the grace");
    if let Some(c) = quic {
        let reason = c.quic().close_reason();
        let Some(quinn::ConnectionError::ApplicationClosed(close)) = reason else {
            panic!("closed otherwise: {reason:?}")
        };
        assert_eq!((close.error_code.into_inner(), &close.reason[..]), (0, &b"shutdown"[..]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_connections_still_busy_at_the_grace_are_closed() {
    connections_still_busy_at_the_grace_are_closed(Transport::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connections_still_busy_at_the_grace_are_closed() {
    connections_still_busy_at_the_grace_are_closed(Transport::Tls).await;
}
