//! DMTP delivery throughput against Postfix (issue 6, benchmark): sustained durable delivery
//! of pre-sealed messages with a 4 KiB body from one origin (a.test) to one destination
//! (b.test), with 1 and 32 concurrent transactions (and 10, Postfix's own concurrency, for a
//! like-for-like row), over QUIC (streams on one connection) and over TLS (one connection per
//! concurrent transaction); against a Postfix instance of its own receiving the same number of
//! 4 KiB messages over SMTP from `smtp-source` with 10 sessions and delivering them to its
//! `discard` transport.
//!
//! The dime side is the real thing on loopback: `dime_server::Destination` with the default
//! crypto provider, a `dime_store::Store` (redb, fsync before a commit returns, group commit)
//! in a directory under `CARGO_TARGET_TMPDIR`, `dime_net` QUIC and TLS servers on 127.0.0.1,
//! self-signed certificates pinned by the client. Each delivery is opened as the destination,
//! its origin signature verified and the envelope stored durably before the 250. Messages are
//! sealed (author signature, origin signature chunk) and hashed (the DATA commitment, which an
//! origin computes once when it queues a message) before the clock starts; a fresh store
//! per case; afterwards the store must hold exactly the acknowledged count, or the bench
//! panics.
//!
//! Postfix (Debian package `postfix`, which also ships `/usr/sbin/smtp-source`) runs from a
//! private configuration directory under `CARGO_TARGET_TMPDIR` (queue and data directories
//! there too, not the system instance's), listening on a free port of 127.0.0.1 only, with
//! its defaults otherwise (queue files fsynced before the 250), no DNS, every recipient
//! delivered to `discard`, and nothing to relay with (no `smtp` service in its master.cf). It
//! is warmed up with one message per session, then timed from the start of `smtp-source -d`
//! (sessions reused, as DMTP reuses its connections) until its log shows every message
//! discarded.
//!
//! What is measured and printed, one JSON object per case on stdout, then a table on stderr:
//! messages per second; latency p50/p99 (dime: from `send` to the 250 at the client; Postfix:
//! the `delay=` of its log, from arrival in the queue to discarded, as `smtp-source` reports
//! no per-message latency); peak RSS (dime: each case runs in a child process of the bench
//! that holds client, server and the pre-sealed messages, its `VmHWM` reset once they are
//! sealed; Postfix: the peak of the sampled sum over its master and the master's children, RSS
//! and PSS, without `smtp-source`); for dime also the CPU time per message (client and server
//! together). The target is >= 2x Postfix's messages per second; the table says whether each
//! case meets it. No timing is asserted.
//!
//! Two cases go through the origin's own path as `dimed` runs it (`origin_case`, names
//! `origin_quic_c32` and `origin_tls_c32`): the messages are submitted to a.test's store
//! (origin-signed, queued durably; timed apart), and the outbound worker drains the queue with
//! 32 attempts at once, recording every outcome durably in the queue. Their clock runs over the
//! drain.
//!
//! A last child process measures the serial floor of 1 in flight (`floor_case`): the median
//! of each step a message waits for in series at 1 in flight, each timed alone (the
//! destination's crypto, one `fdatasync`, one request/reply round trip), and what their sum
//! allows at most, beside Postfix's rate.
//!
//! Run: `cargo bench -p dime-interop-tests --bench dmtp_vs_postfix` (as root, with Debian's
//! `postfix` installed; without it the Postfix half is skipped with a message).
//! `DIME_BENCH_CASES=quic:1,tls:32,origin:quic:32,floor` runs only the dime cases named (for
//! profiling one).
//! `DIME_BENCH_MESSAGES` sets the messages per case (default 5000); `DIME_BENCH_POSTFIX=0`
//! skips Postfix. `cargo test --benches` runs a smoke pass of 16 messages per case.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

use dime_core::crypto::{Argon2Params, CryptoProvider, Hashed, default_provider};
use dime_core::{Domain, Fingerprint, Mailbox, Secret};
use dime_dmtp::Outgoing;
use dime_dmtp::limits::{MAX_LOOKUPS, MAX_TRANSACTIONS};
use dime_envelope::{
    ActorKeys, ActorSecret, Addressing, ChunkType, Headers, Message, Part, PartInfo, PartKind,
    Signer, inspect, open_as_destination, open_as_origin, seal_message,
};
use dime_interop_tests::postfix::{MailLog, Postfix, proc_kib, sample_tree};
use dime_net::{QuicClient, ServerHandle, ServerOptions, TlsConnection};
use dime_server::origin::submit_signed_by;
use dime_server::outbound::dmtp::{Dmtp, Route, RouteError, Routes, Target, Transports};
use dime_server::outbound::{Outbound, RetryPolicy};
use dime_server::{Destination, LocalDomain, StaticOrigins};
use dime_signet::{
    FingerprintKind, OrgKeys, OrgSigner, Profile, Signet, UserKeys, create_org_signet, create_ssr,
    sign_user_signet,
};
use dime_store::{
    AccountId, Accounts, MailboxId, Mailboxes, NewAccount, Queue as _, Recovery, Store,
    StoreConfig, Timestamp,
};
use dime_testkit::tls_provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The message body (the display part of the envelope; `smtp-source -l`).
const BODY_LEN: usize = 4096;
/// Messages per case in a full run (`DIME_BENCH_MESSAGES` overrides).
const DEFAULT_MESSAGES: usize = 5000;
/// Messages per case in the smoke pass (`cargo test --benches`).
const SMOKE_MESSAGES: usize = 16;
/// Concurrent transactions of the "many" cases.
const MANY: usize = 32;
/// `smtp-source -s`.
const SMTP_SESSIONS: usize = 10;
/// The target: dime's messages per second over Postfix's.
const TARGET_RATIO: f64 = 2.0;

const AUTHOR: &str = "author@a.test";
const RECIPIENT: &str = "rcpt@b.test";

fn p() -> &'static CryptoProvider {
    default_provider()
}

fn domain(s: &str) -> Domain {
    Domain::parse(s).unwrap()
}

fn mailbox(s: &str) -> Mailbox {
    Mailbox::parse(s).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Results

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Quic,
    Tls,
}

struct CaseResult {
    name: String,
    messages: usize,
    seconds: f64,
    /// Sorted.
    latencies_ms: Vec<f64>,
    peak_rss_kib: Option<u64>,
    /// Extra `"key":value` JSON members, already formatted.
    extra: Vec<(&'static str, String)>,
}

impl CaseResult {
    fn msgs_per_sec(&self) -> f64 {
        self.messages as f64 / self.seconds
    }

    fn quantile(&self, q: f64) -> f64 {
        quantile(&self.latencies_ms, q)
    }

    fn json(&self) -> String {
        let mut s = format!(
            "{{\"bench\":\"dmtp_vs_postfix\",\"name\":\"{}\",\"messages\":{},\"seconds\":{:.3},\"msgs_per_sec\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"peak_rss_kib\":{}",
            self.name,
            self.messages,
            self.seconds,
            self.msgs_per_sec(),
            self.quantile(0.5),
            self.quantile(0.99),
            self.peak_rss_kib.map_or("null".into(), |k| k.to_string()),
        );
        for (k, v) in &self.extra {
            s.push_str(&format!(",\"{k}\":{v}"));
        }
        s.push('}');
        s
    }
}

/// One line of the table, from a case's JSON line.
struct Row {
    name: String,
    messages: String,
    seconds: f64,
    msgs_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    peak_rss_kib: String,
    json: String,
}

/// The raw value of `key` in a flat JSON object printed by [`CaseResult::json`].
fn json_value<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let rest = &json[json.find(&format!("\"{key}\":"))? + key.len() + 3..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"'))
}

impl Row {
    fn parse(json: &str) -> Row {
        let text = |k: &str| json_value(json, k).unwrap_or("-").to_owned();
        let num = |k: &str| json_value(json, k).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
        Row {
            name: text("name"),
            messages: text("messages"),
            seconds: num("seconds"),
            msgs_per_sec: num("msgs_per_sec"),
            p50_ms: num("p50_ms"),
            p99_ms: num("p99_ms"),
            peak_rss_kib: text("peak_rss_kib"),
            json: json.to_owned(),
        }
    }

    /// The JSON line with the ratio to Postfix's messages per second, when there is one.
    fn json_against(&self, postfix: Option<f64>) -> String {
        match postfix {
            Some(pf) => {
                let ratio = self.msgs_per_sec / pf;
                format!(
                    "{},\"ratio_to_postfix\":{ratio:.2},\"meets_target\":{}}}",
                    self.json.trim_end_matches('}'),
                    ratio >= TARGET_RATIO
                )
            }
            None => self.json.clone(),
        }
    }
}

/// The `q` quantile of `sorted` (nearest rank); NaN when empty.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// User and system CPU time of this process, all threads, in seconds (`/proc/self/stat`, in
/// clock ticks of 1/100 s, Linux's USER_HZ).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // After the command name: state is field 3 of the man page, utime 14 and stime 15.
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (ticks(14) + ticks(15)) as f64 / 100.0
}

/// Resets this process's peak RSS (`VmHWM`) to its current RSS (Linux >= 4.0).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

// ---------------------------------------------------------------------------------------------
// The dime side

/// The origin a.test: its org keys and signet, and one author.
struct Origin {
    org: OrgKeys,
    org_signet: Signet,
    org_fingerprint: Fingerprint,
    secret: ActorSecret,
    author: UserKeys,
    author_signet: Signet,
}

impl Origin {
    fn new() -> Origin {
        let mut rng = dime_testkit::seeded_rng(1);
        let org = OrgKeys::generate(&mut rng);
        let org_signet = create_org_signet(p(), &org, &domain("a.test"), &Profile::new()).unwrap();
        let org_fingerprint = org_signet.fingerprint(p(), FingerprintKind::Full).unwrap();
        let secret = ActorSecret::from_org_keys(p(), &org).unwrap();
        let author = UserKeys::generate(&mut rng);
        let ssr = create_ssr(p(), &author).unwrap();
        let author_signet =
            sign_user_signet(p(), &org, OrgSigner::Pok, &ssr, &mailbox(AUTHOR), &Profile::new())
                .unwrap();
        Origin { org, org_signet, org_fingerprint, secret, author, author_signet }
    }
}

/// Seed of the destination's keys: every case's store gets the same org and recipient keys, so
/// the messages sealed once by the parent open in each.
const DEST_SEED: u64 = 2;

/// The destination's store side: b.test's keys and a fresh store holding the recipient.
struct DestinationStore {
    store: Store,
    account: AccountId,
    local: LocalDomain,
    /// The org's decryption keys, as [`Destination`] holds them (for the floor case).
    org_secret: ActorSecret,
    recipient_signet: Signet,
}

/// A store under `dir` with a pepper of `seed`'s octet. Only account creation and login run
/// Argon2 (deliveries and submissions do not), with the cheapest parameters.
fn store_config(dir: &Path, seed: u64) -> StoreConfig {
    StoreConfig {
        data_dir: dir.join("data"),
        vault_path: dir.join("vault").join("vault.redb"),
        pepper: Secret::new(vec![seed as u8; 32]),
        argon2: Argon2Params { m_kib: Argon2Params::MIN_M_KIB, t: 1, p: 1 },
        idle_timeout_secs: 900,
    }
}

fn destination_store(dir: &Path) -> DestinationStore {
    let config = store_config(dir, DEST_SEED);
    let store = Store::open(config, p()).expect("open the destination store");
    let mut rng = dime_testkit::seeded_rng(DEST_SEED);
    let keys = OrgKeys::generate(&mut rng);
    let signet = create_org_signet(p(), &keys, &domain("b.test"), &Profile::new()).unwrap();
    let created = store
        .create_account(
            &mut rng,
            &keys,
            &NewAccount {
                address: &mailbox(RECIPIENT),
                password: b"pw",
                recovery: Recovery::None,
                quota_bytes: 1 << 40,
            },
            Timestamp(1_700_000_000),
        )
        .expect("create the recipient account");
    let org_secret = ActorSecret::from_org_keys(p(), &keys).unwrap();
    let local = LocalDomain::new(p(), domain("b.test"), keys, signet).unwrap();
    DestinationStore {
        store,
        account: created.account,
        local,
        org_secret,
        recipient_signet: created.signet,
    }
}

/// The destination b.test: its store, QUIC and TLS servers on loopback.
struct DestinationWorld {
    store: Arc<Store>,
    account: AccountId,
    local: Arc<LocalDomain>,
    org_secret: ActorSecret,
    recipient_signet: Signet,
    quic: ServerHandle,
    tls: ServerHandle,
    cert: CertificateDer<'static>,
}

async fn destination(dir: &Path, origin: &Origin) -> DestinationWorld {
    let DestinationStore { store, account, local, org_secret, recipient_signet } =
        destination_store(dir);
    let (store, local) = (Arc::new(store), Arc::new(local));
    let mut origins = HashMap::new();
    origins.insert(
        domain("a.test"),
        (origin.org_fingerprint, origin.org_signet.signing_key().unwrap()),
    );
    let handler = Arc::new(Destination::new(
        Arc::clone(&local),
        Arc::clone(&store),
        Arc::new(StaticOrigins(origins)),
        p(),
    ));
    let ck = rcgen::generate_simple_self_signed(vec!["b.test".to_owned()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let tls = dime_net::server_tls_config(tls_provider(), vec![cert.clone()], key).unwrap();
    let endpoint = quinn::Endpoint::server(
        dime_net::quic_server_config(tls.clone()).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .expect("bind the quic endpoint on loopback");
    let mut options = ServerOptions::new(domain("b.test"), p());
    // The TLS case with 32 concurrent transactions opens 32 connections from 127.0.0.1; the
    // default per-IP cap is 16.
    options.max_connections_per_ip = 2 * MANY;
    let quic = dime_net::spawn_quic(endpoint, Arc::clone(&handler), options.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = dime_net::spawn_tls(listener, tls, handler, options).unwrap();
    DestinationWorld { store, account, local, org_secret, recipient_signet, quic, tls, cert }
}

/// A 4 KiB text body, different for every message.
fn body(i: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(BODY_LEN + 80);
    while b.len() < BODY_LEN {
        b.extend_from_slice(
            format!("message {i:08}, line {:04}: the quick brown fox jumps over it.\n", b.len())
                .as_bytes(),
        );
    }
    b.truncate(BODY_LEN);
    b
}

/// Seals `n` messages from the author to the recipient and adds the origin signature chunk,
/// as `dime_server::origin::submit` does; on every core.
fn seal_all(origin: &Origin, dest: &DestinationStore, n: usize) -> Vec<Vec<u8>> {
    let addressing = Addressing {
        author: mailbox(AUTHOR),
        author_keys: ActorKeys::from_signet(&origin.author_signet).unwrap(),
        origin: domain("a.test"),
        origin_keys: ActorKeys::from_signet(&origin.org_signet).unwrap(),
        destination: domain("b.test"),
        destination_keys: ActorKeys::from_signet(&dest.local.org_signet).unwrap(),
        recipient: mailbox(RECIPIENT),
        recipient_keys: ActorKeys::from_signet(&dest.recipient_signet).unwrap(),
    };
    let author_key = origin.author_signet.signing_key().unwrap();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let seal_range = |range: std::ops::Range<usize>| {
        let mut rng = dime_testkit::seeded_rng(1000 + range.start as u64);
        range
            .map(|i| {
                let subject = format!("bench {i}");
                let msg = Message {
                    common_headers: Headers::from_pairs([("Subject", subject.as_str())]).unwrap(),
                    other_headers: Headers::new(),
                    parts: vec![Part {
                        kind: PartKind::Display,
                        info: PartInfo {
                            content_type: "text/plain".into(),
                            filename: String::new(),
                        },
                        data: body(i),
                    }],
                };
                let mut sealed = seal_message(
                    p(),
                    &mut rng,
                    &addressing,
                    Signer::Author(origin.author.signing_seed()),
                    &msg,
                )
                .expect("seal");
                let chunk = open_as_origin(p(), &sealed[..], &origin.secret)
                    .expect("open as the origin")
                    .verify(p(), &author_key)
                    .expect("author signature")
                    .origin_signature_chunk(
                        p(),
                        &mut rng,
                        origin.org.pok_seed(),
                        &domain("a.test"),
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_secs(),
                    )
                    .expect("origin signature");
                sealed.extend_from_slice(&chunk);
                sealed
            })
            .collect::<Vec<_>>()
    };
    let per = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * per).min(n)..((t + 1) * per).min(n);
                s.spawn(move || seal_range(range))
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

/// Writes the sealed messages for the case processes: the recipient's signet and the
/// destination's fingerprint they were sealed to, then the envelopes; lengths are big-endian
/// `u32`.
fn write_sealed(path: &Path, dest: &DestinationStore, bodies: &[Vec<u8>]) {
    let signet = dest.recipient_signet.to_bytes();
    let mut out = Vec::with_capacity(bodies.iter().map(|b| b.len() + 4).sum::<usize>() + 512);
    out.extend_from_slice(&(signet.len() as u32).to_be_bytes());
    out.extend_from_slice(&signet);
    out.extend_from_slice(&dest.local.org_fingerprint.0);
    out.extend_from_slice(&(bodies.len() as u32).to_be_bytes());
    for b in bodies {
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(b);
    }
    std::fs::write(path, out).expect("write the sealed messages");
}

/// Reads [`write_sealed`]'s file; panics unless it was sealed to `dest`'s keys.
fn read_sealed(path: &Path, dest: &DestinationWorld) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).expect("read the sealed messages");
    let mut rest = &data[..];
    let mut take = |n: usize| {
        assert!(rest.len() >= n, "sealed messages file is truncated");
        let (head, tail) = rest.split_at(n);
        rest = tail;
        head
    };
    let len = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap()) as usize;
    let n = len(take(4));
    let signet = take(n).to_vec();
    let fingerprint = take(64).to_vec();
    assert!(
        signet == dest.recipient_signet.to_bytes() && fingerprint == dest.local.org_fingerprint.0,
        "the messages were sealed to other destination keys than this case's store has"
    );
    let count = len(take(4));
    (0..count)
        .map(|_| {
            let n = len(take(4));
            take(n).to_vec()
        })
        .collect()
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    acked: usize,
    errors: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.acked += other.acked;
        self.errors.extend(other.errors);
    }
}

type Queue = Arc<Mutex<Vec<Outgoing>>>;

fn next(q: &Queue) -> Option<Outgoing> {
    q.lock().unwrap().pop()
}

async fn send_quic(dest: &DestinationWorld, msgs: Queue, concurrency: usize) -> (Tally, Duration) {
    let tls = client_tls(dest);
    let client = QuicClient::new(
        "127.0.0.1:0".parse().unwrap(),
        dime_net::quic_client_config(tls).unwrap(),
        domain("a.test"),
    )
    .unwrap();
    let conn = client.connect(dest.quic.local_addr, "b.test").await.expect("quic connect");
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (conn, q) = (conn.clone(), Arc::clone(&msgs));
            tokio::spawn(async move {
                let mut t = Tally::default();
                while let Some(m) = next(&q) {
                    let t0 = Instant::now();
                    match conn.send(m).await {
                        Ok(_) => {
                            t.latencies.push(t0.elapsed());
                            t.acked += 1;
                        }
                        Err(e) => t.errors.push(e.to_string()),
                    }
                }
                t
            })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        tally.merge(task.await.unwrap());
    }
    let elapsed = start.elapsed();
    conn.close();
    (tally, elapsed)
}

/// Over TLS a connection carries at most `MAX_TRANSACTIONS` transactions (`spec/dmtp.md` §8):
/// each worker then says QUIT and connects again, inside the clock (the reconnect counts in
/// the latency of the message that waited for it).
async fn send_tls(dest: &DestinationWorld, msgs: Queue, concurrency: usize) -> (Tally, Duration) {
    let tls = Arc::new(client_tls(dest));
    let addr = dest.tls.local_addr;
    let connect = move |tls: Arc<rustls::ClientConfig>| async move {
        TlsConnection::connect(addr, "b.test", tls, &domain("a.test")).await.expect("tls connect")
    };
    let mut conns = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        conns.push(connect(Arc::clone(&tls)).await);
    }
    let start = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let (q, tls) = (Arc::clone(&msgs), Arc::clone(&tls));
            tokio::spawn(async move {
                let mut t = Tally::default();
                let mut on_conn = 0;
                while let Some(m) = next(&q) {
                    let t0 = Instant::now();
                    if on_conn == MAX_TRANSACTIONS {
                        let _ = conn.quit().await;
                        conn = connect(Arc::clone(&tls)).await;
                        on_conn = 0;
                    }
                    on_conn += 1;
                    match conn.send(m).await {
                        Ok(_) => {
                            t.latencies.push(t0.elapsed());
                            t.acked += 1;
                        }
                        Err(e) => t.errors.push(e.to_string()),
                    }
                }
                (t, conn)
            })
        })
        .collect();
    let mut tally = Tally::default();
    let mut open = Vec::new();
    for task in tasks {
        let (t, conn) = task.await.unwrap();
        tally.merge(t);
        open.push(conn);
    }
    let elapsed = start.elapsed();
    for conn in open {
        let _ = conn.quit().await;
    }
    (tally, elapsed)
}

fn client_tls(dest: &DestinationWorld) -> rustls::ClientConfig {
    let verifier = dime_net::PinnedCertVerifier::new(tls_provider(), dest.cert.clone());
    dime_net::client_tls_config(tls_provider(), Arc::new(verifier)).unwrap()
}

async fn dmtp_case(
    root: &Path,
    origin: &Origin,
    transport: Transport,
    concurrency: usize,
    sealed: &Path,
) -> CaseResult {
    let name = match transport {
        Transport::Quic => format!("dmtp_quic_c{concurrency}"),
        Transport::Tls => format!("dmtp_tls_c{concurrency}"),
    };
    let dir = tempfile::Builder::new().prefix(&name).tempdir_in(root).unwrap();
    let dest = destination(dir.path(), origin).await;
    let msgs: Vec<Outgoing> = read_sealed(sealed, &dest)
        .into_iter()
        .map(|body| Outgoing {
            origin: domain("a.test"),
            origin_fingerprint: origin.org_fingerprint,
            destination: domain("b.test"),
            destination_fingerprint: dest.local.org_fingerprint,
            // Hashed once, as an origin does when it queues a message (the DATA commitment).
            body: Hashed::new(p(), body),
        })
        .collect();
    let n = msgs.len();
    let envelope_len = msgs.first().map_or(0, |m| m.body.len());
    let sealed_kib = msgs.iter().map(|m| m.body.len()).sum::<usize>() / 1024;
    let queue: Queue = Arc::new(Mutex::new(msgs));
    let reset = reset_peak_rss();
    let start_rss = proc_kib(Path::new("/proc/self/status"), "VmRSS:");
    eprintln!("{name}: delivering");
    let cpu_start = cpu_seconds();
    let (mut tally, elapsed) = match transport {
        Transport::Quic => send_quic(&dest, queue, concurrency).await,
        Transport::Tls => send_tls(&dest, queue, concurrency).await,
    };
    let cpu = cpu_seconds() - cpu_start;
    let peak = proc_kib(Path::new("/proc/self/status"), "VmHWM:");

    // The store must hold exactly what was acknowledged, and everything must have been.
    let quota = dest.store.quota(dest.account).expect("read the recipient's quota");
    let listed = dest.store.list(dest.account, MailboxId::INBOX).expect("list the inbox").len();
    if !tally.errors.is_empty() || tally.acked != n {
        panic!(
            "{name}: {} of {n} acknowledged; {} errors, first: {:?}",
            tally.acked,
            tally.errors.len(),
            tally.errors.first()
        );
    }
    if quota.messages != tally.acked as u64 || listed != tally.acked {
        panic!(
            "{name}: {} acknowledged but the store holds {} (account count) / {listed} (inbox)",
            tally.acked, quota.messages
        );
    }

    let DestinationWorld { store, quic, tls, .. } = dest;
    quic.shutdown(Duration::ZERO).await;
    tls.shutdown(Duration::ZERO).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(store);

    tally.latencies.sort();
    let scope = if reset {
        "a child process of the bench (client, server, pre-sealed messages), VmHWM reset after loading them"
    } else {
        "a child process of the bench (client, server, pre-sealed messages), VmHWM since it started"
    };
    CaseResult {
        name,
        messages: n,
        seconds: elapsed.as_secs_f64(),
        latencies_ms: tally.latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect(),
        peak_rss_kib: peak,
        extra: vec![
            ("transport", quoted(if transport == Transport::Quic { "quic" } else { "tls" })),
            ("concurrency", concurrency.to_string()),
            ("envelope_octets", envelope_len.to_string()),
            ("latency", quoted("send to 250 at the client")),
            ("rss_at_start_kib", start_rss.map_or("null".into(), |k| k.to_string())),
            ("sealed_kib", sealed_kib.to_string()),
            ("rss_scope", quoted(scope)),
            ("cpu_seconds", format!("{cpu:.3}")),
            ("cpu_us_per_msg", format!("{:.1}", cpu * 1e6 / n as f64)),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// Through the origin's queue

/// Entries the origin's worker leases per pass in the origin cases.
const ORIGIN_BATCH: usize = 256;

/// The route to b.test, fixed: its fingerprint, one address, its pinned certificate.
struct FixedRoute(Route);

impl Routes for FixedRoute {
    async fn route(&self, _: &Domain) -> Result<Route, RouteError> {
        Ok(self.0.clone())
    }
}

/// The envelope as its author submitted it: without the origin signature chunk the parent
/// appended.
fn without_origin_signature(envelope: &[u8]) -> &[u8] {
    let at = inspect(p(), envelope, None)
        .chunks
        .iter()
        .find(|c| c.chunk_type == ChunkType::OriginSig)
        .map(|c| c.offset as usize)
        .expect("the sealed message carries an origin signature");
    &envelope[..at]
}

/// The origin's own path, which a `dimed` runs: each message is submitted to a.test's store
/// (`submit_signed_by`: opened as the origin, the author's signature verified, origin-signed,
/// queued durably), then the outbound worker `dimed` runs drains the queue (`Outbound::run`:
/// [`ORIGIN_BATCH`] entries a lease, `concurrency` attempts at once over one transport, each
/// outcome recorded durably in the queue). The clock runs over the drain; the submissions are
/// timed apart (`submit_us_per_msg`). A message's latency is when it was stored, from the
/// start of the drain.
async fn origin_case(
    root: &Path,
    origin: &Origin,
    transport: Transport,
    concurrency: usize,
    sealed: &Path,
) -> CaseResult {
    let t = if transport == Transport::Quic { "quic" } else { "tls" };
    let name = format!("origin_{t}_c{concurrency}");
    let dir = tempfile::Builder::new().prefix(&name).tempdir_in(root).unwrap();
    // A `dimed` names its org signet by its naming fingerprint (`LocalDomain`).
    let mut named = Origin::new();
    named.org_fingerprint = named.org_signet.naming_fingerprint(p()).unwrap();
    let dest = destination(dir.path(), &named).await;
    let bodies = read_sealed(sealed, &dest);
    let n = bodies.len();
    let config = store_config(&dir.path().join("origin"), 1);
    let store = Arc::new(Store::open(config, p()).expect("open the origin store"));
    let keys = Origin::new();
    let now = Timestamp(1_700_000_000);
    let mut rng = dime_testkit::seeded_rng(7);
    // The author's account, which each queued entry's status names (its signet in the store
    // is not used: the messages were sealed with `origin`'s author keys).
    let account = NewAccount {
        address: &mailbox(AUTHOR),
        password: b"pw",
        recovery: Recovery::None,
        quota_bytes: 1 << 40,
    };
    store.create_account(&mut rng, &keys.org, &account, now).expect("create the author account");
    let local =
        Arc::new(LocalDomain::new(p(), domain("a.test"), keys.org, keys.org_signet).unwrap());
    let author_key = origin.author_signet.signing_key().unwrap();
    eprintln!("{name}: submitting");
    let submitting = Instant::now();
    for b in &bodies {
        let unsigned = without_origin_signature(b);
        submit_signed_by(
            p(),
            &mut rng,
            &store,
            &local,
            &mailbox(AUTHOR),
            &author_key,
            unsigned,
            now,
        )
        .expect("submit");
    }
    let submit_us = submitting.elapsed().as_secs_f64() * 1e6 / n as f64;
    drop(bodies);

    let (addr, transports) = match transport {
        Transport::Quic => (dest.quic.local_addr, Transports::QuicOnly),
        Transport::Tls => (dest.tls.local_addr, Transports::TlsOnly),
    };
    let route = Route {
        destination_fingerprint: dest.local.org_fingerprint,
        targets: vec![Target { server_name: "b.test".into(), addrs: vec![addr] }],
        verifier: Arc::new(dime_net::PinnedCertVerifier::new(tls_provider(), dest.cert.clone())),
    };
    let policy =
        RetryPolicy { batch: ORIGIN_BATCH, in_flight: concurrency, ..RetryPolicy::default() };
    let outbound = Outbound::new(
        Arc::clone(&store),
        Arc::clone(&local),
        Dmtp::new(local, Arc::new(FixedRoute(route)), transports, tls_provider()),
        policy,
        p(),
    );
    let reset = reset_peak_rss();
    let start_rss = proc_kib(Path::new("/proc/self/status"), "VmRSS:");
    eprintln!("{name}: delivering");
    let cpu_start = cpu_seconds();
    let start = Instant::now();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(outbound.run(Duration::from_secs(1), rng, async move {
        let _ = stopped.await;
    }));
    // Every message was queued before the clock started: the k-th stored at the destination
    // has the time it was stored as its latency (sampled every 2 ms).
    let mut latencies = Vec::with_capacity(n);
    let mut checked = Instant::now();
    loop {
        let stored = dest.store.quota(dest.account).expect("read the recipient's quota").messages;
        while (latencies.len() as u64) < stored {
            latencies.push(start.elapsed());
        }
        if latencies.len() >= n {
            break;
        }
        if checked.elapsed() > Duration::from_secs(1) {
            checked = Instant::now();
            let left = store.queue_entries().expect("read the origin's queue").len();
            if left + latencies.len() < n {
                panic!("{name}: {} stored, {left} left in the queue, of {n}", latencies.len());
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = start.elapsed();
    let cpu = cpu_seconds() - cpu_start;
    let peak = proc_kib(Path::new("/proc/self/status"), "VmHWM:");

    stop.send(()).unwrap();
    worker.await.unwrap();

    // Everything queued was delivered and recorded, and the destination holds exactly that.
    let left = store.queue_entries().expect("read the origin's queue").len();
    let listed = dest.store.list(dest.account, MailboxId::INBOX).expect("list the inbox").len();
    if left != 0 || listed != n {
        panic!("{name}: {left} left in the queue, {listed} of {n} stored");
    }
    let DestinationWorld { store: dest_store, quic, tls, .. } = dest;
    quic.shutdown(Duration::ZERO).await;
    tls.shutdown(Duration::ZERO).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(dest_store);

    let latencies_ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let scope = if reset {
        "a child process of the bench (origin store and worker, destination server), VmHWM reset after the submissions"
    } else {
        "a child process of the bench (origin store and worker, destination server), VmHWM since it started"
    };
    CaseResult {
        name,
        messages: n,
        seconds: elapsed.as_secs_f64(),
        latencies_ms,
        peak_rss_kib: peak,
        extra: vec![
            ("transport", quoted(t)),
            ("concurrency", concurrency.to_string()),
            ("batch", ORIGIN_BATCH.to_string()),
            (
                "latency",
                quoted(
                    "from the start of the drain until stored at the destination (all queued before it; sampled every 2 ms)",
                ),
            ),
            ("submit_us_per_msg", format!("{submit_us:.1}")),
            ("rss_at_start_kib", start_rss.map_or("null".into(), |k| k.to_string())),
            ("rss_scope", quoted(scope)),
            ("cpu_seconds", format!("{cpu:.3}")),
            ("cpu_us_per_msg", format!("{:.1}", cpu * 1e6 / n as f64)),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// The serial floor of 1 in flight

/// Samples per step of the floor case (fewer in the smoke pass: one per message).
const FLOOR_SAMPLES: usize = 400;

fn median_us(v: Vec<Duration>) -> f64 {
    let mut us: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    us.sort_by(f64::total_cmp);
    quantile(&us, 0.5)
}

/// Times `f` `k` times; the median in microseconds.
fn time_each(k: usize, mut f: impl FnMut(usize)) -> f64 {
    median_us(
        (0..k)
            .map(|i| {
                let t = Instant::now();
                f(i);
                t.elapsed()
            })
            .collect(),
    )
}

/// With one transaction in flight, every message waits, one after another, for three steps
/// that no implementation detail removes: the destination's crypto (open the destination chunk,
/// verify the origin signature, as `Destination::deliver` does), one `fdatasync` of the
/// message (durable before the 250), and a request/reply round trip on the open connection.
/// Each is timed here on its own, median of [`FLOOR_SAMPLES`], in the same run and on the same
/// file system as the cases; their sum bounds the messages per second of 1 in flight as long
/// as the three run in series, as they do now (`spec/dmtp.md` §6.4: the driver opens the
/// destination chunk, verifies the origin's signature, then stores durably, then answers).
/// The store's own work, the committer and the checkpoints come on top.
async fn floor_case(root: &Path, origin: &Origin, sealed: &Path) -> String {
    let dir = tempfile::Builder::new().prefix("floor").tempdir_in(root).unwrap();
    let dest = destination(dir.path(), origin).await;
    let msgs = read_sealed(sealed, &dest);
    let k = FLOOR_SAMPLES.min(msgs.len());
    let origin_key = origin.org_signet.signing_key().unwrap();
    let b_test = domain("b.test");

    let crypto_us = time_each(k, |i| {
        let opened = open_as_destination(p(), &msgs[i][..], &dest.org_secret)
            .and_then(|u| u.verify(p(), &origin_key, &b_test))
            .expect("a sealed message opens as the destination");
        let _ = std::hint::black_box(opened);
    });

    // Records of one envelope (plus a log header's worth) appended to a zero-filled file, as
    // the delivery log writes them.
    let record = vec![0x5a_u8; msgs[0].len() + 64];
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.path().join("floor.log"))
        .unwrap();
    {
        use std::os::unix::fs::FileExt;
        file.write_all_at(&vec![0; record.len() * k], 0).unwrap();
        file.sync_all().unwrap();
    }
    let fsync_us = time_each(k, |i| {
        use std::os::unix::fs::FileExt;
        file.write_all_at(&record, (i * record.len()) as u64).unwrap();
        file.sync_data().unwrap();
    });

    // SGNT for b.test's org signet: one request and its reply on the open connection.
    let name = dime_dmtp::SignetName { domain: b_test.clone(), mailbox: None };
    let quic = QuicClient::new(
        "127.0.0.1:0".parse().unwrap(),
        dime_net::quic_client_config(client_tls(&dest)).unwrap(),
        domain("a.test"),
    )
    .unwrap()
    .connect(dest.quic.local_addr, "b.test")
    .await
    .expect("quic connect");
    let mut rtts = Vec::with_capacity(k);
    for _ in 0..k {
        let t = Instant::now();
        quic.lookup_signet(&name, None).await.expect("SGNT over QUIC");
        rtts.push(t.elapsed());
    }
    quic.close();
    let rtt_quic_us = median_us(rtts);
    // A TLS stream answers at most MAX_LOOKUPS SGNTs (`spec/dmtp.md` §8): then a new
    // connection, outside the timed requests.
    let tls_config = Arc::new(client_tls(&dest));
    let mut rtts = Vec::with_capacity(k);
    while rtts.len() < k {
        let mut tls = TlsConnection::connect(
            dest.tls.local_addr,
            "b.test",
            Arc::clone(&tls_config),
            &domain("a.test"),
        )
        .await
        .expect("tls connect");
        for _ in 0..MAX_LOOKUPS.min((k - rtts.len()) as u32) {
            let t = Instant::now();
            tls.lookup_signet(&name, None).await.expect("SGNT over TLS");
            rtts.push(t.elapsed());
        }
        let _ = tls.quit().await;
    }
    let rtt_tls_us = median_us(rtts);

    let DestinationWorld { quic, tls, .. } = dest;
    quic.shutdown(Duration::ZERO).await;
    tls.shutdown(Duration::ZERO).await;
    let floor = |rtt: f64| crypto_us + fsync_us + rtt;
    format!(
        "{{\"bench\":\"dmtp_vs_postfix\",\"name\":\"floor_1_in_flight\",\"samples\":{k},\
         \"crypto_us\":{crypto_us:.1},\"fsync_us\":{fsync_us:.1},\"rtt_quic_us\":{rtt_quic_us:.1},\
         \"rtt_tls_us\":{rtt_tls_us:.1},\"floor_quic_us\":{:.1},\"floor_tls_us\":{:.1},\
         \"max_msgs_per_sec_quic\":{:.1},\"max_msgs_per_sec_tls\":{:.1},\
         \"meaning\":\"medians of each step alone; 1 in flight runs them in series, so 1e6 / \
         their sum bounds its messages per second\"}}",
        floor(rtt_quic_us),
        floor(rtt_tls_us),
        1e6 / floor(rtt_quic_us),
        1e6 / floor(rtt_tls_us),
    )
}

/// The floor case's JSON line with the ratios of its rates to Postfix's, when there is one.
fn floor_against(json: &str, postfix: Option<f64>) -> String {
    let max = |t: &str| {
        json_value(json, &format!("max_msgs_per_sec_{t}")).and_then(|v| v.parse::<f64>().ok())
    };
    match (postfix, max("quic"), max("tls")) {
        (Some(b), Some(q), Some(t)) => format!(
            "{},\"max_ratio_to_postfix_quic\":{:.2},\"max_ratio_to_postfix_tls\":{:.2}}}",
            json.trim_end_matches('}'),
            q / b,
            t / b
        ),
        _ => json.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// The Postfix side

fn postfix_case(root: &Path, n: usize) -> Result<CaseResult, String> {
    if let Some(why) = Postfix::unavailable() {
        return Err(why);
    }
    let name = format!("postfix_smtp_s{SMTP_SESSIONS}");
    let pf = Postfix::start(root, "b.test");
    let mut log = MailLog::new(pf.maillog());
    let smtp_source = |n: usize| pf.smtp_source(SMTP_SESSIONS, n, BODY_LEN, AUTHOR, RECIPIENT);
    // Warm-up: one message per session, so smtpd, cleanup, trivial-rewrite and discard
    // processes exist before the clock starts.
    let warm = smtp_source(SMTP_SESSIONS).output().expect("run smtp-source");
    assert!(warm.status.success(), "smtp-source: {}", String::from_utf8_lossy(&warm.stderr));
    log.wait_discarded(SMTP_SESSIONS, Instant::now() + Duration::from_secs(60));
    let warm = log.sent;
    log.delays_ms.clear();

    eprintln!("{name}: delivering");
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_tree(pf.master, Arc::clone(&stop));
    let start = Instant::now();
    let child = smtp_source(n).spawn().expect("start smtp-source");
    // smtp-source exits once its last message has its 250; Postfix discards a moment later.
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        (Instant::now(), out)
    });
    let deadline = start + Duration::from_secs(120) + Duration::from_millis(20 * n as u64);
    log.wait_discarded(warm + n, deadline);
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    let (exited, out) = waiter.join().unwrap();
    let out = out.expect("wait for smtp-source");
    if !out.status.success() {
        panic!("smtp-source failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    let smtp_seconds = exited.duration_since(start);
    let drained = Instant::now() + Duration::from_secs(10);
    while pf.queued() > 0 {
        assert!(Instant::now() < drained, "postfix queue not empty after the run");
        std::thread::sleep(Duration::from_millis(10));
    }
    for w in &log.problems {
        eprintln!("{name}: postfix log: {w}");
    }
    let mut delays = std::mem::take(&mut log.delays_ms);
    delays.sort_by(f64::total_cmp);
    drop(pf);
    Ok(CaseResult {
        name,
        messages: n,
        seconds: elapsed.as_secs_f64(),
        latencies_ms: delays,
        peak_rss_kib: Some(peak.rss_kib),
        extra: vec![
            ("transport", quoted("smtp")),
            ("concurrency", SMTP_SESSIONS.to_string()),
            ("smtp_source_seconds", format!("{:.3}", smtp_seconds.as_secs_f64())),
            ("latency", quoted("queue arrival to discarded (log delay=, 1 ms resolution)")),
            ("peak_pss_kib", peak.pss_kib.to_string()),
            ("peak_processes", peak.processes.to_string()),
            (
                "rss_scope",
                quoted(
                    "postfix master and children, sampled every 50 ms, sum; without smtp-source",
                ),
            ),
        ],
    })
}

// ---------------------------------------------------------------------------------------------

/// Runs one dime case in this process (a child of the bench, so that its peak RSS is its own)
/// and prints its JSON line.
fn child_case(spec: &str, sealed: &Path, root: &Path) {
    if spec == "floor" {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        println!("{}", rt.block_on(floor_case(root, &Origin::new(), sealed)));
        return;
    }
    let (through_origin, spec) = match spec.strip_prefix("origin:") {
        Some(rest) => (true, rest),
        None => (false, spec),
    };
    let (transport, concurrency) = spec.split_once(':').expect("--dime-case TRANSPORT:CONCURRENCY");
    let transport = match transport {
        "quic" => Transport::Quic,
        "tls" => Transport::Tls,
        other => panic!("unknown transport {other}"),
    };
    let concurrency: usize = concurrency.parse().expect("concurrency");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let origin = Origin::new();
    let r = if through_origin {
        rt.block_on(origin_case(root, &origin, transport, concurrency, sealed))
    } else {
        rt.block_on(dmtp_case(root, &origin, transport, concurrency, sealed))
    };
    println!("{}", r.json());
}

fn arg_after(args: &[String], flag: &str) -> Option<String> {
    args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(spec) = arg_after(&args, "--dime-case") {
        let sealed = PathBuf::from(arg_after(&args, "--sealed").expect("--sealed"));
        let root = PathBuf::from(arg_after(&args, "--dir").expect("--dir"));
        child_case(&spec, &sealed, &root);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it with no argument: then
    // only a smoke pass.
    let full = args.iter().any(|a| a == "--bench");
    let n = std::env::var("DIME_BENCH_MESSAGES")
        .ok()
        .map(|v| v.parse::<usize>().expect("DIME_BENCH_MESSAGES is a number of messages"))
        .unwrap_or(if full { DEFAULT_MESSAGES } else { SMOKE_MESSAGES });
    assert!(n > 0, "DIME_BENCH_MESSAGES must be at least 1");
    // Both stores and the Postfix queue on the same file system (the target directory's).
    let root = tempfile::Builder::new()
        .prefix("dmtp-vs-postfix")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    eprintln!(
        "dmtp_vs_postfix: {n} messages per case, body {BODY_LEN} octets, in {}",
        root.path().display()
    );

    let postfix = if std::env::var("DIME_BENCH_POSTFIX").is_ok_and(|v| v == "0") {
        Err("DIME_BENCH_POSTFIX=0".to_owned())
    } else {
        postfix_case(root.path(), n)
    };
    let postfix = match postfix {
        Ok(r) => {
            let row = Row::parse(&r.json());
            println!("{}", row.json);
            Some(row)
        }
        Err(why) => {
            eprintln!("postfix half skipped: {why}");
            None
        }
    };
    let baseline = postfix.as_ref().map(|r| r.msgs_per_sec);

    // The messages, sealed once for every case (the destination keys are the same in each).
    let origin = Origin::new();
    let sealed = root.path().join("sealed.bin");
    {
        eprintln!("dmtp: sealing {n} messages");
        let dest = destination_store(&root.path().join("sealer"));
        write_sealed(&sealed, &dest, &seal_all(&origin, &dest, n));
    }

    // Each dime case in a child process of its own: a fresh heap, so its peak RSS is its own.
    let exe = std::env::current_exe().expect("the bench's own path");
    let mut rows = Vec::new();
    let mut floor = None;
    let all: Vec<String> = ["quic", "tls"]
        .iter()
        .flat_map(|t| [1, SMTP_SESSIONS, MANY].map(|c| format!("{t}:{c}")))
        .chain(["quic", "tls"].iter().map(|t| format!("origin:{t}:{MANY}")))
        .chain(["floor".to_owned()])
        .collect();
    // DIME_BENCH_CASES=quic:1,tls:1 runs only those (profiling one case); `origin:quic:32`
    // names a case through the origin's queue (`origin_case`), `floor` the serial floor of 1
    // in flight (`floor_case`).
    let chosen: Vec<String> = match std::env::var("DIME_BENCH_CASES") {
        Ok(v) => v.split(',').map(str::to_owned).collect(),
        Err(_) => all.clone(),
    };
    for spec in &chosen {
        let out = Command::new(&exe)
            .args(["--dime-case", spec, "--sealed"])
            .arg(&sealed)
            .arg("--dir")
            .arg(root.path())
            .stderr(Stdio::inherit())
            .output()
            .expect("run a dime case");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().find(|l| l.starts_with('{'));
        let (true, Some(line)) = (out.status.success(), line) else {
            panic!("dime case {spec} failed ({}): {stdout}", out.status);
        };
        if spec == "floor" {
            let f = floor_against(line, baseline);
            println!("{f}");
            floor = Some(f);
            continue;
        }
        let row = Row::parse(line);
        println!("{}", row.json_against(baseline));
        rows.push(row);
    }

    eprintln!();
    eprintln!(
        "{:<18} {:>8} {:>9} {:>9} {:>9} {:>9} {:>13} {:>11}",
        "case", "messages", "seconds", "msgs/s", "p50 ms", "p99 ms", "peak RSS KiB", "vs postfix"
    );
    for r in postfix.iter().chain(rows.iter()) {
        let ratio = match baseline {
            Some(b) if !r.name.starts_with("postfix") => {
                let x = r.msgs_per_sec / b;
                format!("{x:.2}x {}", if x >= TARGET_RATIO { "ok" } else { "MISS" })
            }
            _ => "-".into(),
        };
        eprintln!(
            "{:<18} {:>8} {:>9.2} {:>9.1} {:>9.3} {:>9.3} {:>13} {:>11}",
            r.name,
            r.messages,
            r.seconds,
            r.msgs_per_sec,
            r.p50_ms,
            r.p99_ms,
            r.peak_rss_kib,
            ratio
        );
    }
    eprintln!();
    if let Some(pf) = &postfix {
        let pss = json_value(&pf.json, "peak_pss_kib").unwrap_or("-");
        eprintln!(
            "postfix: smtp-source -d -s {SMTP_SESSIONS} (sessions reused); latency is queue \
             arrival to discarded (its log's delay=); peak RSS is the sampled sum over its \
             master and children ({pss} KiB as PSS, which counts shared pages once), \
             smtp-source not included."
        );
    }
    let sealed_kib = rows.first().and_then(|r| json_value(&r.json, "sealed_kib")).unwrap_or("-");
    eprintln!(
        "dime: latency is send to 250 at the client; peak RSS is VmHWM of a child process \
         holding client, server and the pre-sealed messages ({sealed_kib} KiB of envelopes; \
         rss_at_start_kib in the JSON: before the first send)."
    );
    if let Some(f) = &floor {
        let v = |k: &str| json_value(f, k).unwrap_or("-").to_owned();
        let ratio = |t: &str| {
            json_value(f, &format!("max_ratio_to_postfix_{t}"))
                .map_or("-".into(), |r| format!("{r}x postfix"))
        };
        eprintln!(
            "serial floor of 1 in flight (medians of each step alone): destination crypto {} us \
             + fdatasync {} us + round trip {} us (QUIC) / {} us (TLS): at most {} msgs/s over \
             QUIC ({}), {} over TLS ({}).",
            v("crypto_us"),
            v("fsync_us"),
            v("rtt_quic_us"),
            v("rtt_tls_us"),
            v("max_msgs_per_sec_quic"),
            ratio("quic"),
            v("max_msgs_per_sec_tls"),
            ratio("tls"),
        );
    }
    match baseline {
        Some(b) => {
            let met = rows.iter().filter(|r| r.msgs_per_sec >= TARGET_RATIO * b).count();
            eprintln!(
                "target >= {TARGET_RATIO}x postfix msgs/s: {met} of {} dime cases meet it",
                rows.len()
            );
        }
        None => eprintln!("target >= {TARGET_RATIO}x postfix msgs/s: not evaluated (no postfix)"),
    }
}
