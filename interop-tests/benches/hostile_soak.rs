//! A mixed soak under hostile load (issue 20, benchmark; documented, not CI): legitimate DMTP
//! deliveries at 32 in flight, once alone ("clean") and once while hostile clients hold about
//! 10% of the connections ("hostile"), against the same destination as `dmtp_vs_postfix`.
//!
//! The destination is the real thing on loopback, in a child process of the bench of its own
//! (`--serve`), so that its RSS and its file descriptors are its own: `dime_server::Destination`
//! over a `dime_store::Store` (redb, durable before the 250) in a fresh directory under
//! `CARGO_TARGET_TMPDIR` for each run, `dime_net` QUIC and TLS listeners on 127.0.0.1 with the
//! defaults of `spec/dmtp.md` §8 (error delays, lookup rate, body budget, deadlines) but for the
//! per-address cap, raised to 64 because the 32 legitimate TLS connections all come from
//! 127.0.0.1; a self-signed certificate the clients pin. The bench process is the clients: N
//! messages (a 4 KiB body each, distinct envelopes, origin-signed now) sealed once before any
//! clock starts, then sent at 32 in flight (over TLS one connection per transaction in flight,
//! over QUIC 32 streams on one connection). A legitimate send refused temporarily (or cut) is
//! sent again on a new connection, as an origin's queue would (the destination answers a resend
//! with its first transaction id, `spec/dmtp.md` §6.4.2); the retries are counted.
//!
//! In the hostile run, 4 hostile slots (next to 32 legitimate connections: ~10%) each open one
//! connection at a time, from a loopback address of their case's own (127.0.0.10 and up, so the
//! per-source limits see separate attackers), and open the next as soon as one ends. Each slot
//! runs its long-lived case once, then its short case back to back for a 4 s burst, again
//! (slowloris and garbage, idle_tls and no_alpn, half_open_tcp and replay, noop_no_read and
//! lookup_flood):
//! - `slowloris`: TLS, HELLO, MAIL, RCPT, DATA declaring 64 MiB (`MAX_MESSAGE_SIZE`), then 64
//!   octets of BODY a second;
//! - `idle_tls`: a TLS handshake, then nothing (no HELLO);
//! - `half_open_tcp`: a TCP connection, no TLS handshake;
//! - `garbage`: TLS, then in turn HELLO and undecodable frames, a frame header declaring 4 GiB,
//!   or SMTP text;
//! - `no_alpn`: a TLS handshake offering no ALPN;
//! - `noop_no_read`: TLS, HELLO, NOOPs pipelined without end, never reading a reply;
//! - `lookup_flood`: TLS, HELLO in lookup mode, 32 SGNT and 32 VRFY pipelined (the stream's
//!   `MAX_LOOKUPS`), the replies read, again;
//! - `replay`: one legitimate envelope (not among the N), delivered once, then sent again 20
//!   times a connection; every answer must carry the first transaction id.
//!
//! Each case is bounded: a connection is cut by the client unless the server ends it first,
//! after 8 s for `slowloris` and `noop_no_read` (the server's own deadlines for them, 30 s plus
//! the declared size at 32 KiB/s and the 60 s write timeout, lie beyond any run), 12 s for
//! `idle_tls` and `half_open_tcp` (past the server's 10 s `HANDSHAKE_TIMEOUT`), and after the
//! 4 s burst for the short ones (1 s and 0.5 s in the smoke pass); at most
//! `Knobs::max_per_case` connections per case and run. When the legitimate load is done the hostile clients are dropped, the legitimate ones
//! say QUIT, and the bench waits (at most `Knobs::settle`) for the server's descriptors to come back
//! to where they were before the first client.
//!
//! Printed: one JSON object per run on stdout, then tables on stderr: legitimate messages per
//! second, clean and hostile, and their ratio (target >= 0.80); the server's RSS (VmRSS of the
//! child, sampled every 250 ms) at the end of the warm-up (the sample when a fifth of the
//! messages were acknowledged), at the end of the load and its maximum after the warm-up, and
//! the least-squares slope between the two (the series, a sample a second, is in the JSON);
//! the server's open descriptors before the first
//! client, at their peak and after the settle; per hostile case, the connections made and how
//! they ended (closed by the server, refused in the handshake, cut at the bound or at the end
//! of the run) with the median time to the server's close. No timing is asserted: the bench
//! panics only when the store does not hold exactly the acknowledged messages (the N, plus the
//! replayed envelope once), a replay is answered with another transaction id, or a legitimate
//! message could not be delivered at all in a clean run.
//!
//! Run: `cargo bench -p dime-interop-tests --bench hostile_soak` (release). `DIME_SOAK_MESSAGES`
//! sets N (default 60000: at ~3000 messages a second on loopback, 3000 would be over in a
//! second, before any hostile case reaches a deadline or the RSS any plateau; 60000 make a run
//! of ~20 s, the envelopes ~300 MiB in the bench process, sealed in ~40 s on two cores);
//! `DIME_SOAK_TRANSPORTS=tls` or `quic` runs one transport's pair
//! (default both; the hostile clients are TCP/TLS in both); `DIME_SOAK_SETTLE_SECS` sets the
//! longest wait for the descriptors after the clients are gone (default 20 s);
//! `DIME_SOAK_ONLY=<case>` makes every hostile slot run that case alone (4 at once). `cargo test --benches` runs a
//! smoke pass (48 messages over TLS, hostile phase of at least 2 s, a few seconds in all).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

use dime_core::crypto::{Argon2Params, Bytes, CryptoProvider, Hashed, default_provider};
use dime_core::{Domain, Fingerprint, Mailbox, Secret};
use dime_dmtp::frame::Frame;
use dime_dmtp::limits::{MAX_MESSAGE_SIZE, MAX_TRANSACTIONS};
use dime_dmtp::{Client, ClientEvent, Mode, Outgoing, SignetName};
use dime_envelope::{
    ActorKeys, ActorSecret, Addressing, Headers, Message, Part, PartInfo, PartKind, Signer,
    open_as_origin, seal_message,
};
use dime_interop_tests::postfix::proc_kib;
use dime_net::{NetError, QuicClient, QuicConnection, ServerOptions, TlsConnection, is_temporary};
use dime_server::{Destination, LocalDomain, StaticOrigins};
use dime_signet::{
    FingerprintKind, OrgKeys, OrgSigner, Profile, Signet, UserKeys, create_org_signet, create_ssr,
    sign_user_signet,
};
use dime_store::{
    AccountId, Accounts, MailboxId, Mailboxes, NewAccount, Recovery, Store, StoreConfig, Timestamp,
};
use dime_testkit::tls_provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::collections::BTreeMap;
use std::io::{BufRead, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The message body (the display part of each envelope).
const BODY_LEN: usize = 4096;
/// Messages per run in a full run (`DIME_SOAK_MESSAGES` overrides).
const DEFAULT_MESSAGES: usize = 60_000;
/// Messages per run in the smoke pass (`cargo test --benches`).
const SMOKE_MESSAGES: usize = 48;
/// Legitimate transactions in flight.
const MANY: usize = 32;
/// Hostile connections at once (next to [`MANY`] legitimate ones: ~10%).
const HOSTILE_SLOTS: usize = 4;
/// The target: legitimate messages per second under hostile load over those of the clean run.
const TARGET_RATIO: f64 = 0.80;
/// How often the server's RSS and descriptors are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// A legitimate message is sent at most this often (first try included) before the run
/// counts it as failed.
const MAX_TRIES: u32 = 20;
/// Replays of the envelope on one connection.
const REPLAYS_PER_CONN: usize = 20;
/// BODY octets a slowloris sends each [`TRICKLE_EVERY`].
const TRICKLE: usize = 64;
const TRICKLE_EVERY: Duration = Duration::from_secs(1);
/// NOOP frames a `noop_no_read` client writes at a time.
const NOOP_BATCH: usize = 512;

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

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The knobs that differ between the full run and the smoke pass.
#[derive(Debug, Clone, Copy)]
struct Knobs {
    /// Longest life of a `slowloris` or `noop_no_read` connection (cut by the client after
    /// it; the server's own deadlines for them are far longer).
    hold: Duration,
    /// Longest life of an `idle_tls` or `half_open_tcp` connection: past the server's
    /// `HANDSHAKE_TIMEOUT` (10 s), so that its close is seen.
    hold_handshake: Duration,
    /// How long a slot runs its short case back to back after each long one; also the bound
    /// of one short connection.
    burst: Duration,
    /// Shortest hostile phase (the smoke pass's legitimate load is over at once).
    min_hostile: Duration,
    /// Connections per hostile case and run, at most.
    max_per_case: usize,
    /// Longest wait for the server's descriptors to come back after the clients are gone.
    settle: Duration,
}

const FULL: Knobs = Knobs {
    hold: Duration::from_secs(8),
    hold_handshake: Duration::from_secs(12),
    burst: Duration::from_secs(4),
    min_hostile: Duration::ZERO,
    max_per_case: 2000,
    settle: Duration::from_secs(20),
};

const SMOKE: Knobs = Knobs {
    hold: Duration::from_secs(1),
    hold_handshake: Duration::from_secs(1),
    burst: Duration::from_millis(500),
    min_hostile: Duration::from_secs(2),
    max_per_case: 50,
    settle: Duration::from_secs(3),
};

// ---------------------------------------------------------------------------------------------
// Keys, store and server (the same world as dmtp_vs_postfix)

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

/// Seed of the destination's keys: the server child's store gets the same org and recipient
/// keys as the one the parent seals to.
const DEST_SEED: u64 = 2;

struct DestinationStore {
    store: Store,
    account: AccountId,
    local: LocalDomain,
    recipient_signet: Signet,
}

/// b.test's keys and a fresh store under `dir` holding the recipient (Argon2 at its cheapest:
/// only account creation runs it).
fn destination_store(dir: &Path) -> DestinationStore {
    let config = StoreConfig {
        data_dir: dir.join("data"),
        vault_path: dir.join("vault").join("vault.redb"),
        pepper: Secret::new(vec![DEST_SEED as u8; 32]),
        argon2: Argon2Params { m_kib: Argon2Params::MIN_M_KIB, t: 1, p: 1 },
        idle_timeout_secs: 900,
    };
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
    let local = LocalDomain::new(p(), domain("b.test"), keys, signet).unwrap();
    DestinationStore { store, account: created.account, local, recipient_signet: created.signet }
}

/// The server child (`--serve DIR`): b.test's store under DIR, its QUIC and TLS listeners on
/// 127.0.0.1 with DIR's certificate; prints `READY <tls addr> <quic addr>`, then answers
/// `COUNT` on stdin with `COUNT <account count> <inbox length>`, and stops at the end of stdin.
fn serve(dir: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let origin = Origin::new();
        let DestinationStore { store, account, local, .. } = destination_store(&dir.join("store"));
        let (store, local) = (Arc::new(store), Arc::new(local));
        let mut origins = std::collections::HashMap::new();
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
        let cert = CertificateDer::from(std::fs::read(dir.join("cert.der")).unwrap());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            std::fs::read(dir.join("key.der")).unwrap(),
        ));
        let tls = dime_net::server_tls_config(tls_provider(), vec![cert], key).unwrap();
        let endpoint = quinn::Endpoint::server(
            dime_net::quic_server_config(tls.clone()).unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .expect("bind the quic endpoint on loopback");
        let mut options = ServerOptions::new(domain("b.test"), p());
        // The 32 legitimate TLS connections all come from 127.0.0.1 (the default cap is 16).
        options.max_connections_per_ip = 2 * MANY;
        let quic = dime_net::spawn_quic(endpoint, Arc::clone(&handler), options.clone()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls = dime_net::spawn_tls(listener, tls, handler, options).unwrap();
        println!("READY {} {}", tls.local_addr, quic.local_addr);
        std::io::stdout().flush().unwrap();

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        while let Some(line) = rx.recv().await {
            if line.trim() == "COUNT" {
                let quota = store.quota(account).expect("read the recipient's quota");
                let listed = store.list(account, MailboxId::INBOX).expect("list the inbox").len();
                println!("COUNT {} {listed}", quota.messages);
                std::io::stdout().flush().unwrap();
            }
        }
        quic.shutdown(Duration::ZERO).await;
        tls.shutdown(Duration::ZERO).await;
    });
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

/// Seals `n` messages from the author to the recipient, origin-signed now, on every core; as
/// the origin queues them: hashed, ready to send.
fn seal_all(origin: &Origin, dest: &DestinationStore, n: usize) -> Vec<Outgoing> {
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
    let signed_at = unix_now();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let seal_range = |range: std::ops::Range<usize>| {
        let mut rng = dime_testkit::seeded_rng(5000 + range.start as u64);
        range
            .map(|i| {
                let subject = format!("soak {i}");
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
                        signed_at,
                    )
                    .expect("origin signature");
                sealed.extend_from_slice(&chunk);
                Outgoing {
                    origin: domain("a.test"),
                    origin_fingerprint: origin.org_fingerprint,
                    destination: domain("b.test"),
                    destination_fingerprint: dest.local.org_fingerprint,
                    body: Hashed::new(p(), sealed),
                }
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

/// The server child, from the parent's side.
struct ServerChild {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    pid: u32,
    tls: SocketAddr,
    quic: SocketAddr,
}

impl ServerChild {
    fn start(dir: &Path) -> ServerChild {
        let exe = std::env::current_exe().expect("the bench's own path");
        let mut child = Command::new(exe)
            .arg("--serve")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server child");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let ready = lines.recv_timeout(Duration::from_secs(60)).expect("the server child is ready");
        let mut words = ready.split_whitespace();
        assert_eq!(words.next(), Some("READY"), "server child said {ready:?}");
        let tls = words.next().unwrap().parse().unwrap();
        let quic = words.next().unwrap().parse().unwrap();
        let pid = child.id();
        ServerChild { stdin: child.stdin.take(), child, lines, pid, tls, quic }
    }

    /// The messages in the recipient's account and inbox.
    fn count(&mut self) -> (u64, usize) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "COUNT").unwrap();
        stdin.flush().unwrap();
        let line = self.lines.recv_timeout(Duration::from_secs(30)).expect("COUNT answered");
        let w: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(w.first(), Some(&"COUNT"), "server child said {line:?}");
        (w[1].parse().unwrap(), w[2].parse().unwrap())
    }

    fn hwm_kib(&self) -> Option<u64> {
        proc_kib(Path::new(&format!("/proc/{}/status", self.pid)), "VmHWM:")
    }

    fn stop(mut self) {
        drop(self.stdin.take());
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "the server child exited with {status}");
                return;
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the server child did not stop within 30 s of its stdin closing");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The server's TCP sockets on `port` (its listener's connections, not the listener), from
/// `/proc/net/tcp`: per peer (the hostile case its address belongs to, or `legit`) and state,
/// how many. Sockets without an inode (TIME-WAIT) are nobody's descriptor and left out.
fn server_sockets(port: u16) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(remote), Some(state), Some(inode)) =
            (f.get(1), f.get(2), f.get(3), f.get(9))
        else {
            continue;
        };
        let port_of =
            |a: &str| a.split_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        if port_of(local) != Some(port) || *state == "0A" || *inode == "0" {
            continue;
        }
        // The address is the IPv4 address's 32 bits in host (little-endian) order.
        let ip = remote
            .split_once(':')
            .and_then(|(a, _)| u32::from_str_radix(a, 16).ok())
            .map(|a| Ipv4Addr::from(a.swap_bytes()));
        let who = match ip {
            Some(ip) if ip == Ipv4Addr::LOCALHOST => "legit".to_owned(),
            Some(ip) => CASES
                .iter()
                .find(|c| c.source() == IpAddr::V4(ip))
                .map_or_else(|| ip.to_string(), |c| c.name().to_owned()),
            None => "?".to_owned(),
        };
        let state = match *state {
            "01" => "established",
            "08" => "close_wait",
            "07" => "close",
            "09" => "last_ack",
            "04" => "fin_wait1",
            "05" => "fin_wait2",
            other => other,
        };
        *out.entry(format!("{who}.{state}")).or_default() += 1;
    }
    out
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

// ---------------------------------------------------------------------------------------------
// Sampling

#[derive(Debug, Clone, Copy)]
struct Sample {
    secs: f64,
    rss_kib: u64,
    fds: usize,
    acked: usize,
    /// Whether the legitimate load was still running.
    loading: bool,
}

struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<Sample>>,
}

impl Sampler {
    fn start(pid: u32, acked: Arc<AtomicUsize>, loading: Arc<AtomicBool>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let start = Instant::now();
            let mut out = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let rss = proc_kib(Path::new(&format!("/proc/{pid}/status")), "VmRSS:");
                out.push(Sample {
                    secs: start.elapsed().as_secs_f64(),
                    rss_kib: rss.unwrap_or(0),
                    fds: fd_count(pid),
                    acked: acked.load(Ordering::Relaxed),
                    loading: loading.load(Ordering::Relaxed),
                });
                std::thread::sleep(SAMPLE_EVERY);
            }
            out
        });
        Sampler { stop, handle }
    }

    fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// RSS figures over a run's samples.
struct RssSummary {
    start: u64,
    warm: u64,
    end_of_load: u64,
    max_after_warm: u64,
    after_settle: u64,
    slope_kib_per_s: f64,
    samples: usize,
}

fn rss_summary(samples: &[Sample], n: usize) -> RssSummary {
    let first = samples.first().map_or(0, |s| s.rss_kib);
    let warm_at = samples.iter().position(|s| s.acked >= n.div_ceil(5)).unwrap_or(0);
    let load_end =
        samples.iter().rposition(|s| s.loading).unwrap_or(samples.len().saturating_sub(1));
    let window = &samples[warm_at.min(load_end)..=load_end.min(samples.len().saturating_sub(1))];
    let (xs, ys): (Vec<f64>, Vec<f64>) = window.iter().map(|s| (s.secs, s.rss_kib as f64)).unzip();
    let slope = if xs.len() >= 2 {
        let mx = xs.iter().sum::<f64>() / xs.len() as f64;
        let my = ys.iter().sum::<f64>() / ys.len() as f64;
        let num: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
        let den: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
        if den > 0.0 { num / den } else { 0.0 }
    } else {
        0.0
    };
    RssSummary {
        start: first,
        warm: samples.get(warm_at).map_or(0, |s| s.rss_kib),
        end_of_load: samples.get(load_end).map_or(0, |s| s.rss_kib),
        max_after_warm: samples[warm_at.min(samples.len().saturating_sub(1))..]
            .iter()
            .map(|s| s.rss_kib)
            .max()
            .unwrap_or(0),
        after_settle: samples.last().map_or(0, |s| s.rss_kib),
        slope_kib_per_s: slope,
        samples: samples.len(),
    }
}

// ---------------------------------------------------------------------------------------------
// The legitimate load

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Quic,
    Tls,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Quic => "quic",
            Transport::Tls => "tls",
        }
    }
}

type Queue = Arc<Mutex<Vec<(Outgoing, u32)>>>;

fn next(q: &Queue) -> Option<(Outgoing, u32)> {
    q.lock().unwrap().pop()
}

#[derive(Default)]
struct Tally {
    acked: usize,
    /// Sends that failed and were tried again, by what failed.
    retried: BTreeMap<String, usize>,
    /// Messages given up on, by their last failure.
    failed: BTreeMap<String, usize>,
    latencies_ms: Vec<f64>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.acked += other.acked;
        for (k, v) in other.retried {
            *self.retried.entry(k).or_default() += v;
        }
        for (k, v) in other.failed {
            *self.failed.entry(k).or_default() += v;
        }
        self.latencies_ms.extend(other.latencies_ms);
    }

    /// Books a failed send of `m`: again later when temporary and tried less than
    /// [`MAX_TRIES`] times.
    fn failure(&mut self, q: &Queue, m: Outgoing, tries: u32, e: &NetError) {
        let what = match e {
            NetError::Refused { command, code, .. } => format!("{command:?} {}", code.0),
            other => {
                let s = other.to_string();
                s.split(':').next().unwrap_or(&s).to_owned()
            }
        };
        if is_temporary(e) && tries < MAX_TRIES {
            *self.retried.entry(what).or_default() += 1;
            q.lock().unwrap().push((m, tries + 1));
        } else {
            *self.failed.entry(what).or_default() += 1;
        }
    }
}

fn client_tls(cert: &CertificateDer<'static>) -> rustls::ClientConfig {
    let verifier = dime_net::PinnedCertVerifier::new(tls_provider(), cert.clone());
    dime_net::client_tls_config(tls_provider(), Arc::new(verifier)).unwrap()
}

async fn tls_connect(addr: SocketAddr, tls: &Arc<rustls::ClientConfig>) -> TlsConnection {
    let mut tries = 0;
    loop {
        match TlsConnection::connect(addr, "b.test", Arc::clone(tls), &domain("a.test")).await {
            Ok(c) => return c,
            Err(e) => {
                tries += 1;
                assert!(tries < 500, "a legitimate TLS connection failed 500 times: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Sends the queue at [`MANY`] in flight over TLS, one connection per transaction in flight
/// (a new one after `MAX_TRANSACTIONS`, or after a failure).
async fn send_tls(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    q: Queue,
    acked: Arc<AtomicUsize>,
) -> Tally {
    let mut conns = Vec::with_capacity(MANY);
    for _ in 0..MANY {
        conns.push(tls_connect(addr, &tls).await);
    }
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            let (q, tls, acked) = (Arc::clone(&q), Arc::clone(&tls), Arc::clone(&acked));
            tokio::spawn(async move {
                let mut t = Tally::default();
                let mut conn = Some(conn);
                let mut on_conn = 0;
                while let Some((m, tries)) = next(&q) {
                    let t0 = Instant::now();
                    if on_conn == MAX_TRANSACTIONS
                        && let Some(c) = conn.take()
                    {
                        let _ = c.quit().await;
                    }
                    let c = match &mut conn {
                        Some(c) => c,
                        None => {
                            on_conn = 0;
                            conn.insert(tls_connect(addr, &tls).await)
                        }
                    };
                    on_conn += 1;
                    match c.send(m.clone()).await {
                        Ok(_) => {
                            t.latencies_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                            t.acked += 1;
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            conn = None;
                            t.failure(&q, m, tries, &e);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                if let Some(c) = conn {
                    let _ = c.quit().await;
                }
                t
            })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        tally.merge(task.await.unwrap());
    }
    tally
}

/// The QUIC connection the workers share, and its generation (bumped at each reconnect).
struct SharedQuic {
    client: QuicClient,
    addr: SocketAddr,
    conn: Mutex<(u64, QuicConnection)>,
    reconnecting: tokio::sync::Mutex<()>,
}

impl SharedQuic {
    fn current(&self) -> (u64, QuicConnection) {
        let g = self.conn.lock().unwrap();
        (g.0, g.1.clone())
    }

    async fn reconnect(&self, seen: u64) {
        let _one = self.reconnecting.lock().await;
        if self.conn.lock().unwrap().0 != seen {
            return;
        }
        for tries in 1.. {
            match self.client.connect(self.addr, "b.test").await {
                Ok(c) => {
                    let mut g = self.conn.lock().unwrap();
                    *g = (seen + 1, c);
                    return;
                }
                Err(e) => {
                    assert!(tries < 500, "a legitimate QUIC connection failed 500 times: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

/// Sends the queue at [`MANY`] in flight over QUIC: streams on one connection (another after
/// it fails).
async fn send_quic(
    addr: SocketAddr,
    tls: rustls::ClientConfig,
    q: Queue,
    acked: Arc<AtomicUsize>,
) -> Tally {
    let client = QuicClient::new(
        "127.0.0.1:0".parse().unwrap(),
        dime_net::quic_client_config(tls).unwrap(),
        domain("a.test"),
    )
    .unwrap();
    let conn = client.connect(addr, "b.test").await.expect("quic connect");
    let shared = Arc::new(SharedQuic {
        client,
        addr,
        conn: Mutex::new((0, conn)),
        reconnecting: tokio::sync::Mutex::new(()),
    });
    let tasks: Vec<_> = (0..MANY)
        .map(|_| {
            let (q, shared, acked) = (Arc::clone(&q), Arc::clone(&shared), Arc::clone(&acked));
            tokio::spawn(async move {
                let mut t = Tally::default();
                while let Some((m, tries)) = next(&q) {
                    let t0 = Instant::now();
                    let (generation, conn) = shared.current();
                    match conn.send(m.clone()).await {
                        Ok(_) => {
                            t.latencies_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                            t.acked += 1;
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            if conn.quic().close_reason().is_some() {
                                shared.reconnect(generation).await;
                            }
                            t.failure(&q, m, tries, &e);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
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
    shared.current().1.close();
    tally
}

// ---------------------------------------------------------------------------------------------
// Hostile clients

/// A TLS client over a tokio socket, driven by hand (rustls' low-level API), so that a hostile
/// client can bind its source address, stop reading, or write whatever it likes.
struct RawTls {
    tcp: TcpStream,
    tls: rustls::ClientConnection,
    buf: Vec<u8>,
}

impl RawTls {
    /// The handshake over `tcp`; on failure, how it ended.
    async fn handshake(
        tcp: TcpStream,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<RawTls, String> {
        let name = ServerName::try_from("b.test").unwrap();
        let tls =
            rustls::ClientConnection::new(config, name).map_err(|e| format!("config: {e}"))?;
        let mut me = RawTls { tcp, tls, buf: vec![0; 16 * 1024] };
        while me.tls.is_handshaking() {
            me.flush().await.map_err(|_| "reset_in_handshake".to_owned())?;
            if !me.tls.is_handshaking() {
                break;
            }
            let n = me.tcp.read(&mut me.buf).await.map_err(|_| "reset_in_handshake".to_owned())?;
            if n == 0 {
                return Err("closed_in_handshake".into());
            }
            me.tls.read_tls(&mut &me.buf[..n]).map_err(|_| "tls_refused".to_owned())?;
            if let Err(e) = me.tls.process_new_packets() {
                let _ = me.flush().await;
                return Err(match e {
                    rustls::Error::AlertReceived(a) => format!("tls_refused_alert_{a:?}"),
                    _ => "tls_refused".into(),
                });
            }
        }
        me.flush().await.map_err(|_| "reset_in_handshake".to_owned())?;
        Ok(me)
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            self.tls.write_tls(&mut out)?;
        }
        if !out.is_empty() {
            self.tcp.write_all(&out).await?;
        }
        Ok(())
    }

    async fn write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        while !data.is_empty() {
            let n = self.tls.writer().write(data)?;
            data = &data[n..];
            self.flush().await?;
        }
        Ok(())
    }

    /// The next plaintext; `None` at the end of the stream. Cancel safe (its only wait is the
    /// socket's read).
    async fn read(&mut self) -> Result<Option<Vec<u8>>, String> {
        use std::io::Read;
        loop {
            let mut out = Vec::new();
            match self.tls.reader().read_to_end(&mut out) {
                Ok(_) if out.is_empty() => return Ok(None),
                Ok(_) => return Ok(Some(out)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if !out.is_empty() {
                        return Ok(Some(out));
                    }
                }
                Err(_) => return Ok(None),
            }
            let n = self.tcp.read(&mut self.buf).await.map_err(|_| "reset_by_server".to_owned())?;
            if n == 0 {
                return Ok(None);
            }
            self.tls.read_tls(&mut &self.buf[..n]).map_err(|_| "tls_error".to_owned())?;
            self.tls.process_new_packets().map_err(|_| "tls_error".to_owned())?;
        }
    }

    /// Reads until the server ends the stream: how it did.
    async fn until_closed(&mut self) -> String {
        loop {
            match self.read().await {
                Ok(Some(_)) => {}
                Ok(None) => return "closed_by_server".into(),
                Err(e) => return e,
            }
        }
    }
}

/// The next event of the client machine `c` over `conn`: its frames written, replies read.
async fn next_event(conn: &mut RawTls, c: &mut Client) -> Result<ClientEvent, String> {
    loop {
        while let Some(f) = c.poll_transmit() {
            conn.write(&f.to_vec()).await.map_err(|_| "reset_by_server".to_owned())?;
        }
        if let Some(ev) = c.poll_event() {
            return Ok(ev);
        }
        if c.is_closed() {
            return Err("closed_by_server".into());
        }
        match conn.read().await? {
            Some(bytes) => c.handle_input(&bytes, Instant::now()),
            None => c.handle_end(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Case {
    Slowloris,
    IdleTls,
    HalfOpenTcp,
    Garbage,
    NoAlpn,
    NoopNoRead,
    LookupFlood,
    Replay,
}

/// The cases; hostile slot `s` alternates between `CASES[s]` and `CASES[s + HOSTILE_SLOTS]`
/// (each long-lived case beside a short one).
const CASES: [Case; 2 * HOSTILE_SLOTS] = [
    Case::Slowloris,
    Case::IdleTls,
    Case::HalfOpenTcp,
    Case::NoopNoRead,
    Case::Garbage,
    Case::NoAlpn,
    Case::Replay,
    Case::LookupFlood,
];

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Slowloris => "slowloris",
            Case::IdleTls => "idle_tls",
            Case::HalfOpenTcp => "half_open_tcp",
            Case::Garbage => "garbage",
            Case::NoAlpn => "no_alpn",
            Case::NoopNoRead => "noop_no_read",
            Case::LookupFlood => "lookup_flood",
            Case::Replay => "replay",
        }
    }

    /// The loopback address this case's connections come from.
    fn source(self) -> IpAddr {
        let i = CASES.iter().position(|c| *c == self).unwrap() as u8;
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + i))
    }
}

/// What the hostile clients share, and what they saw.
struct Hostile {
    addr: SocketAddr,
    knobs: Knobs,
    tls: Arc<rustls::ClientConfig>,
    no_alpn: Arc<rustls::ClientConfig>,
    slow: Outgoing,
    replay: Outgoing,
    hello: Vec<u8>,
    noops: Vec<u8>,
    started: Mutex<BTreeMap<Case, usize>>,
    /// Per case, per ending: how many, and the lifetimes of those the server ended.
    endings: Mutex<BTreeMap<(Case, String), Vec<f64>>>,
    /// Per case, counters of what the server answered.
    counters: Mutex<BTreeMap<(Case, String), usize>>,
    replay_txid: Mutex<Option<String>>,
    stop: AtomicBool,
    /// Every slot runs only this case (`DIME_SOAK_ONLY`).
    only: Option<Case>,
}

impl Hostile {
    fn count(&self, case: Case, what: impl Into<String>) {
        *self.counters.lock().unwrap().entry((case, what.into())).or_default() += 1;
    }

    /// Books one more connection of `case`: how many were started before, or `None` at its
    /// bound.
    fn start(&self, case: Case) -> Option<usize> {
        let mut started = self.started.lock().unwrap();
        let n = started.entry(case).or_default();
        (*n < self.knobs.max_per_case).then(|| {
            *n += 1;
            *n - 1
        })
    }
}

/// One hostile connection under way: books its ending, or, when its task is dropped at the end
/// of the run, `cut_at_end_of_run`.
struct Attempt<'a> {
    hostile: &'a Hostile,
    case: Case,
    start: Instant,
    done: bool,
}

impl Attempt<'_> {
    fn finish(mut self, ending: String) {
        self.book(ending);
        self.done = true;
    }

    fn book(&self, ending: String) {
        let secs = self.start.elapsed().as_secs_f64();
        self.hostile.endings.lock().unwrap().entry((self.case, ending)).or_default().push(secs);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.book("cut_at_end_of_run".into());
        }
    }
}

async fn tcp_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

async fn tls_from(
    h: &Hostile,
    case: Case,
    config: &Arc<rustls::ClientConfig>,
) -> Result<RawTls, String> {
    let tcp = tcp_from(case.source(), h.addr).await.map_err(|_| "connect_failed".to_owned())?;
    RawTls::handshake(tcp, Arc::clone(config)).await
}

/// One hostile connection of `case`; how it ended.
async fn hostile_once(h: &Hostile, case: Case, k: usize) -> Result<String, String> {
    match case {
        Case::Slowloris => {
            let mut conn = tls_from(h, case, &h.tls).await?;
            let mut c = Client::new(Some(&domain("a.test")), Mode::Transfer, Instant::now());
            c.send_message(h.slow.clone(), Instant::now());
            // HELLO, MAIL, RCPT and DATA out; the body is held until 354.
            loop {
                while let Some(f) = c.poll_transmit() {
                    if f.tail().is_empty() {
                        conn.write(&f.to_vec()).await.map_err(|_| "reset_by_server".to_owned())?;
                    } else {
                        // The 354 came: the body would go now. Trickle it instead.
                        return trickle(h, case, &mut conn).await;
                    }
                }
                if let Some(ev) = c.poll_event() {
                    match ev {
                        ClientEvent::Refused { code, .. } => {
                            h.count(case, format!("refused_{}", code.0));
                            return Ok(format!("refused_{}", code.0));
                        }
                        ClientEvent::Failed(_) | ClientEvent::Closed => {
                            return Ok("closed_by_server".into());
                        }
                        _ => continue,
                    }
                }
                match conn.read().await? {
                    Some(b) => c.handle_input(&b, Instant::now()),
                    None => c.handle_end(),
                }
            }
        }
        Case::IdleTls => {
            let mut conn = tls_from(h, case, &h.tls).await?;
            Ok(conn.until_closed().await)
        }
        Case::HalfOpenTcp => {
            let mut tcp =
                tcp_from(case.source(), h.addr).await.map_err(|_| "connect_failed".to_owned())?;
            let mut buf = [0u8; 1024];
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) => return Ok("closed_by_server".into()),
                    Ok(_) => {}
                    Err(_) => return Ok("reset_by_server".into()),
                }
            }
        }
        Case::Garbage => {
            let mut conn = tls_from(h, case, &h.tls).await?;
            let (variant, bytes) = match k % 3 {
                0 => {
                    // HELLO, then frames that do not decode.
                    let mut b = h.hello.clone();
                    for _ in 0..16 {
                        b.extend_from_slice(&[0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff]);
                    }
                    ("undecodable", b)
                }
                1 => ("frame_over_limit", vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]),
                _ => ("smtp_text", b"EHLO mallory.test\r\nMAIL FROM:<m@mallory.test>\r\n".to_vec()),
            };
            h.count(case, variant);
            conn.write(&bytes).await.map_err(|_| "reset_by_server".to_owned())?;
            Ok(conn.until_closed().await)
        }
        Case::NoAlpn => {
            let mut conn = tls_from(h, case, &h.no_alpn).await?;
            let end = conn.until_closed().await;
            Ok(format!("handshake_completed_then_{end}"))
        }
        Case::NoopNoRead => {
            let mut conn = tls_from(h, case, &h.tls).await?;
            conn.write(&h.hello).await.map_err(|_| "reset_by_server".to_owned())?;
            let mut written = 0usize;
            loop {
                match tokio::time::timeout(Duration::from_secs(1), conn.write(&h.noops)).await {
                    Ok(Ok(())) => written += NOOP_BATCH,
                    Ok(Err(_)) => return Ok("closed_by_server".into()),
                    Err(_) => {
                        // Writes blocked: the server stopped reading. Wait, still not reading.
                        h.count(case, "writes_blocked");
                        h.count(case, format!("noops_before_blocked_{}k", written / 1000));
                        tokio::time::sleep(h.knobs.hold).await;
                        return Ok("cut_at_bound".into());
                    }
                }
            }
        }
        Case::LookupFlood => {
            let mut conn = tls_from(h, case, &h.tls).await?;
            let mut c = Client::new(Some(&domain("a.test")), Mode::Lookup, Instant::now());
            let org = SignetName { domain: domain("b.test"), mailbox: None };
            for i in 0..32 {
                c.lookup_signet(&org, None, Instant::now());
                let user = mailbox(&format!("user{}@b.test", k * 32 + i));
                let name = SignetName { domain: domain("b.test"), mailbox: Some(user) };
                c.verify(&name, &Fingerprint([i as u8; 64]), Instant::now());
            }
            let mut answered = 0;
            while answered < 64 {
                match next_event(&mut conn, &mut c).await? {
                    ClientEvent::Greeted(_) => {}
                    ClientEvent::Signet(_) | ClientEvent::Verified(_) => {
                        answered += 1;
                        h.count(case, "answered");
                    }
                    ClientEvent::Refused { code, .. } => {
                        answered += 1;
                        h.count(case, format!("refused_{}", code.0));
                    }
                    ClientEvent::Failed(_) | ClientEvent::Closed => {
                        return Ok("closed_by_server".into());
                    }
                    _ => {}
                }
            }
            c.quit(Instant::now());
            let _ = next_event(&mut conn, &mut c).await;
            Ok("done_quit".into())
        }
        Case::Replay => {
            let mut conn = tls_from(h, case, &h.tls).await?;
            let mut c = Client::new(Some(&domain("a.test")), Mode::Transfer, Instant::now());
            for _ in 0..REPLAYS_PER_CONN {
                if h.stop.load(Ordering::Relaxed) {
                    break;
                }
                c.send_message(h.replay.clone(), Instant::now());
                loop {
                    match next_event(&mut conn, &mut c).await? {
                        ClientEvent::Delivered { id, .. } => {
                            let mut first = h.replay_txid.lock().unwrap();
                            match &*first {
                                None => {
                                    *first = Some(id.as_str().to_owned());
                                    h.count(case, "first_delivery");
                                }
                                Some(f) if f == id.as_str() => h.count(case, "same_txid"),
                                Some(_) => h.count(case, "OTHER_TXID"),
                            }
                            break;
                        }
                        ClientEvent::Refused { code, .. } => {
                            h.count(case, format!("refused_{}", code.0));
                            break;
                        }
                        ClientEvent::Failed(_) | ClientEvent::Closed => {
                            return Ok("closed_by_server".into());
                        }
                        _ => {}
                    }
                }
            }
            c.quit(Instant::now());
            let _ = next_event(&mut conn, &mut c).await;
            Ok("done_quit".into())
        }
    }
}

/// After a 354: [`TRICKLE`] octets of body every [`TRICKLE_EVERY`], until the server ends it.
async fn trickle(h: &Hostile, case: Case, conn: &mut RawTls) -> Result<String, String> {
    h.count(case, "got_354");
    let frame = Frame::body(Bytes::from(vec![b'x'; TRICKLE])).unwrap().to_vec();
    loop {
        tokio::select! {
            r = conn.read() => {
                return match r? {
                    // A reply (421 BodyTooSlow), then the close.
                    Some(_) => Ok(format!("{}_after_reply", conn.until_closed().await)),
                    None => Ok("closed_by_server".into()),
                };
            }
            () = tokio::time::sleep(TRICKLE_EVERY) => {
                conn.write(&frame).await.map_err(|_| "reset_by_server".to_owned())?;
            }
        }
    }
}

/// One hostile slot, a connection at a time until told to stop: its long case once, then its
/// short case back to back for [`Knobs::burst`], again.
async fn hostile_slot(h: Arc<Hostile>, slot: usize) {
    let (long, short) = (CASES[slot], CASES[slot + HOSTILE_SLOTS]);
    if let Some(only) = h.only {
        while !h.stop.load(Ordering::Relaxed) {
            if !hostile_one(&h, only).await {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        return;
    }
    while !h.stop.load(Ordering::Relaxed) {
        let mut any = hostile_one(&h, long).await;
        let burst = Instant::now();
        while burst.elapsed() < h.knobs.burst && !h.stop.load(Ordering::Relaxed) {
            if !hostile_one(&h, short).await {
                break;
            }
            any = true;
        }
        if !any {
            // Both cases at their bound.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One connection of `case` within its bound, booked; `false` when the case is at its count.
async fn hostile_one(h: &Hostile, case: Case) -> bool {
    let Some(k) = h.start(case) else { return false };
    let attempt = Attempt { hostile: h, case, start: Instant::now(), done: false };
    let bound = match case {
        Case::Slowloris | Case::NoopNoRead => h.knobs.hold,
        Case::IdleTls | Case::HalfOpenTcp => h.knobs.hold_handshake,
        Case::Garbage | Case::NoAlpn | Case::Replay | Case::LookupFlood => h.knobs.burst,
    };
    let ending = match tokio::time::timeout(bound, hostile_once(h, case, k)).await {
        Ok(Ok(e) | Err(e)) => e,
        Err(_) => "cut_at_bound".into(),
    };
    attempt.finish(ending);
    tokio::time::sleep(Duration::from_millis(20)).await;
    true
}

// ---------------------------------------------------------------------------------------------
// A run

struct RunResult {
    json: String,
    msgs_per_sec: f64,
    hostile: Option<Arc<Hostile>>,
}

/// What the parent prepared once for every run.
struct World {
    cert: CertificateDer<'static>,
    msgs: Vec<Outgoing>,
    replay: Outgoing,
    root: PathBuf,
    only: Option<Case>,
}

async fn run(world: &World, transport: Transport, hostile: bool, knobs: Knobs) -> RunResult {
    let name = format!("{}_{}", if hostile { "hostile" } else { "clean" }, transport.name());
    let dir = tempfile::Builder::new().prefix(&name).tempdir_in(&world.root).unwrap();
    std::fs::copy(world.root.join("cert.der"), dir.path().join("cert.der")).unwrap();
    std::fs::copy(world.root.join("key.der"), dir.path().join("key.der")).unwrap();
    let mut server = ServerChild::start(dir.path());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fds_before = fd_count(server.pid);
    let n = world.msgs.len();
    let acked = Arc::new(AtomicUsize::new(0));
    let loading = Arc::new(AtomicBool::new(true));
    let sampler = Sampler::start(server.pid, Arc::clone(&acked), Arc::clone(&loading));
    let tls = Arc::new(client_tls(&world.cert));

    let h = hostile.then(|| {
        let mut no_alpn = client_tls(&world.cert);
        no_alpn.alpn_protocols.clear();
        let now = Instant::now();
        let mut c = Client::new(Some(&domain("a.test")), Mode::Transfer, now);
        let hello = c.poll_transmit().unwrap().to_vec();
        for _ in 0..NOOP_BATCH {
            c.noop(now);
        }
        let noops: Vec<u8> =
            std::iter::from_fn(|| c.poll_transmit().map(|f| f.to_vec())).flatten().collect();
        // A body never sent: 64 MiB of untouched zero pages, its hash made up.
        let slow = Outgoing {
            body: Hashed::from_parts(Bytes::from(vec![0u8; MAX_MESSAGE_SIZE as usize]), [7; 64]),
            ..world.replay.clone()
        };
        Arc::new(Hostile {
            addr: server.tls,
            knobs,
            tls: Arc::clone(&tls),
            no_alpn: Arc::new(no_alpn),
            slow,
            replay: world.replay.clone(),
            hello,
            noops,
            started: Mutex::default(),
            endings: Mutex::default(),
            counters: Mutex::default(),
            replay_txid: Mutex::default(),
            stop: AtomicBool::new(false),
            only: world.only,
        })
    });
    let hostile_start = Instant::now();
    let slots: Vec<_> = h
        .iter()
        .flat_map(|h| (0..HOSTILE_SLOTS).map(|s| tokio::spawn(hostile_slot(Arc::clone(h), s))))
        .collect();
    if hostile {
        // Let the hostile clients take their places before the clock starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    eprintln!("{name}: delivering {n} messages at {MANY} in flight");
    let queue: Queue = Arc::new(Mutex::new(world.msgs.iter().cloned().map(|m| (m, 1)).collect()));
    let start = Instant::now();
    let mut tally = match transport {
        Transport::Tls => send_tls(server.tls, Arc::clone(&tls), queue, Arc::clone(&acked)).await,
        Transport::Quic => send_quic(server.quic, (*tls).clone(), queue, Arc::clone(&acked)).await,
    };
    let elapsed = start.elapsed();
    loading.store(false, Ordering::Relaxed);

    if let Some(h) = &h {
        let left = knobs.min_hostile.saturating_sub(hostile_start.elapsed());
        tokio::time::sleep(left).await;
        h.stop.store(true, Ordering::Relaxed);
        for s in &slots {
            s.abort();
        }
    }
    for s in slots {
        let _ = s.await;
    }
    let fds_peak = fd_count(server.pid);
    // The clients are gone: the server's descriptors come back to where they were.
    let settling = Instant::now();
    while fd_count(server.pid) > fds_before && settling.elapsed() < knobs.settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let settle_ms = settling.elapsed().as_millis();
    let fds_after = fd_count(server.pid);
    let lingering = server_sockets(server.tls.port());
    tokio::time::sleep(SAMPLE_EVERY).await;
    let samples = sampler.finish();
    let hwm = server.hwm_kib();
    let (count, listed) = server.count();
    server.stop();

    let fds_max = samples.iter().map(|s| s.fds).max().unwrap_or(0).max(fds_peak);
    let rss = rss_summary(&samples, n);
    let msgs_per_sec = tally.acked as f64 / elapsed.as_secs_f64();
    tally.latencies_ms.sort_by(f64::total_cmp);
    let q = |x: f64| {
        let s = &tally.latencies_ms;
        s.get(((s.len() as f64 - 1.0) * x).round() as usize).copied().unwrap_or(f64::NAN)
    };

    // Correctness: the store holds exactly what was acknowledged (and the replayed envelope
    // once, if it was delivered).
    let replayed = h.as_ref().is_some_and(|h| h.replay_txid.lock().unwrap().is_some());
    let expected = tally.acked + usize::from(replayed);
    let other_txids = h.as_ref().map_or(0, |h| {
        h.counters.lock().unwrap().get(&(Case::Replay, "OTHER_TXID".into())).copied().unwrap_or(0)
    });
    let map_json = |m: &BTreeMap<String, usize>| {
        let items: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", items.join(","))
    };
    let mut json = format!(
        "{{\"bench\":\"hostile_soak\",\"name\":\"{name}\",\"transport\":\"{}\",\"hostile\":{hostile},\
         \"messages\":{n},\"acked\":{},\"seconds\":{:.3},\"msgs_per_sec\":{msgs_per_sec:.1},\
         \"p50_ms\":{:.2},\"p99_ms\":{:.2},\"retried\":{},\"failed\":{},\
         \"store_count\":{count},\"inbox\":{listed},\"expected_in_store\":{expected},\
         \"rss_kib_start\":{},\"rss_kib_warm\":{},\"rss_kib_end_of_load\":{},\"rss_kib_max_after_warm\":{},\
         \"rss_kib_after_settle\":{},\"rss_slope_kib_per_s\":{:.1},\"vm_hwm_kib\":{},\"rss_samples\":{},\
         \"fds_before\":{fds_before},\"fds_max\":{fds_max},\"fds_after\":{fds_after},\"settle_ms\":{settle_ms},\"server_sockets_after_settle\":{},\"rss_series_kib_per_s\":[{}]",
        transport.name(),
        tally.acked,
        elapsed.as_secs_f64(),
        q(0.5),
        q(0.99),
        map_json(&tally.retried),
        map_json(&tally.failed),
        rss.start,
        rss.warm,
        rss.end_of_load,
        rss.max_after_warm,
        rss.after_settle,
        rss.slope_kib_per_s,
        hwm.unwrap_or(0),
        rss.samples,
        map_json(&lingering),
        samples
            .iter()
            .step_by((Duration::from_secs(1).as_millis() / SAMPLE_EVERY.as_millis()) as usize)
            .map(|s| s.rss_kib.to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    if let Some(h) = &h {
        let mut made = BTreeMap::new();
        let mut endings = BTreeMap::new();
        for ((case, ending), v) in h.endings.lock().unwrap().iter() {
            *made.entry(case.name().to_owned()).or_insert(0) += v.len();
            endings.insert(format!("{}.{ending}", case.name()), v.len());
        }
        let counters: BTreeMap<String, usize> = h
            .counters
            .lock()
            .unwrap()
            .iter()
            .map(|((c, k), v)| (format!("{}.{k}", c.name()), *v))
            .collect();
        json.push_str(&format!(
            ",\"hostile_connections\":{},\"hostile_made\":{},\"hostile_endings\":{},\"hostile_counters\":{}",
            made.values().sum::<usize>(),
            map_json(&made),
            map_json(&endings),
            map_json(&counters)
        ));
    }
    json.push('}');
    println!("{json}");

    if count != expected as u64 || listed != expected {
        panic!(
            "{name}: {} acknowledged (+{} replayed envelope) but the store holds {count} (account) / {listed} (inbox)",
            tally.acked,
            usize::from(replayed)
        );
    }
    if other_txids > 0 {
        panic!("{name}: {other_txids} replays were answered with another transaction id");
    }
    if !hostile && tally.acked != n {
        panic!(
            "{name}: {} of {n} delivered in a clean run; failed: {:?}",
            tally.acked, tally.failed
        );
    }
    RunResult { json, msgs_per_sec, hostile: h }
}

fn json_value<'a>(json: &'a str, key: &str) -> &'a str {
    let Some(at) = json.find(&format!("\"{key}\":")) else { return "-" };
    let rest = &json[at + key.len() + 3..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim_matches('"')
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        serve(Path::new(&args[i + 1]));
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it with no argument: then
    // only a smoke pass.
    let full = args.iter().any(|a| a == "--bench");
    let mut knobs = if full { FULL } else { SMOKE };
    if let Ok(v) = std::env::var("DIME_SOAK_SETTLE_SECS") {
        knobs.settle = Duration::from_secs(v.parse().expect("DIME_SOAK_SETTLE_SECS is seconds"));
    }
    let n = std::env::var("DIME_SOAK_MESSAGES")
        .ok()
        .map(|v| v.parse::<usize>().expect("DIME_SOAK_MESSAGES is a number of messages"))
        .unwrap_or(if full { DEFAULT_MESSAGES } else { SMOKE_MESSAGES });
    assert!(n > 0, "DIME_SOAK_MESSAGES must be at least 1");
    let transports: Vec<Transport> = match std::env::var("DIME_SOAK_TRANSPORTS") {
        Ok(v) => v
            .split(',')
            .map(|t| match t.trim() {
                "tls" => Transport::Tls,
                "quic" => Transport::Quic,
                other => panic!("unknown transport {other}"),
            })
            .collect(),
        Err(_) if full => vec![Transport::Tls, Transport::Quic],
        Err(_) => vec![Transport::Tls],
    };
    let root = tempfile::Builder::new()
        .prefix("hostile-soak")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    eprintln!(
        "hostile_soak: {n} messages per run, {MANY} in flight, {HOSTILE_SLOTS} hostile slots, \
         holds {:?}/{:?}, bursts {:?}, in {}",
        knobs.hold,
        knobs.hold_handshake,
        knobs.burst,
        root.path().display()
    );

    let ck = rcgen::generate_simple_self_signed(vec!["b.test".to_owned()]).unwrap();
    std::fs::write(root.path().join("cert.der"), ck.cert.der()).unwrap();
    std::fs::write(root.path().join("key.der"), ck.signing_key.serialize_der()).unwrap();
    let origin = Origin::new();
    eprintln!("hostile_soak: sealing {} messages", n + 1);
    let mut msgs = {
        let dest = destination_store(&root.path().join("sealer"));
        seal_all(&origin, &dest, n + 1)
    };
    let replay = msgs.pop().unwrap();
    let only = std::env::var("DIME_SOAK_ONLY").ok().map(|v| {
        *CASES
            .iter()
            .find(|c| c.name() == v)
            .unwrap_or_else(|| panic!("DIME_SOAK_ONLY: no hostile case {v}"))
    });
    let world =
        World { cert: ck.cert.der().clone(), msgs, replay, root: root.path().to_owned(), only };

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut pairs = Vec::new();
    for &t in &transports {
        let clean = rt.block_on(run(&world, t, false, knobs));
        let hostile = rt.block_on(run(&world, t, true, knobs));
        pairs.push((t, clean, hostile));
    }

    eprintln!();
    eprintln!(
        "{:<6} {:>10} {:>10} {:>7} {:>6}   {:>28}   {:>28}   {:>14}",
        "",
        "clean/s",
        "hostile/s",
        "ratio",
        "target",
        "RSS KiB clean warm/end/max",
        "RSS KiB hostile warm/end/max",
        "fds before/max/after (hostile)"
    );
    for (t, clean, hostile) in &pairs {
        let ratio = hostile.msgs_per_sec / clean.msgs_per_sec;
        let rss = |j: &str| {
            format!(
                "{}/{}/{}",
                json_value(j, "rss_kib_warm"),
                json_value(j, "rss_kib_end_of_load"),
                json_value(j, "rss_kib_max_after_warm")
            )
        };
        eprintln!(
            "{:<6} {:>10.1} {:>10.1} {:>7.2} {:>6}   {:>28}   {:>28}   {:>14}",
            t.name(),
            clean.msgs_per_sec,
            hostile.msgs_per_sec,
            ratio,
            if ratio >= TARGET_RATIO { "ok" } else { "MISS" },
            rss(&clean.json),
            rss(&hostile.json),
            format!(
                "{}/{}/{}",
                json_value(&hostile.json, "fds_before"),
                json_value(&hostile.json, "fds_max"),
                json_value(&hostile.json, "fds_after")
            ),
        );
        println!(
            "{{\"bench\":\"hostile_soak\",\"name\":\"ratio_{}\",\"clean_msgs_per_sec\":{:.1},\
             \"hostile_msgs_per_sec\":{:.1},\"ratio\":{ratio:.3},\"meets_target\":{}}}",
            t.name(),
            clean.msgs_per_sec,
            hostile.msgs_per_sec,
            ratio >= TARGET_RATIO
        );
    }
    for (t, _, hostile) in &pairs {
        let Some(h) = &hostile.hostile else { continue };
        eprintln!();
        eprintln!(
            "hostile connections during the {} run (ending: count, median seconds):",
            t.name()
        );
        let endings = h.endings.lock().unwrap();
        let counters = h.counters.lock().unwrap();
        for case in CASES {
            let mut parts = Vec::new();
            let mut made = 0;
            for ((c, ending), v) in endings.iter() {
                if *c != case {
                    continue;
                }
                made += v.len();
                let mut v = v.clone();
                v.sort_by(f64::total_cmp);
                parts.push(format!("{ending}: {} ({:.1} s)", v.len(), v[v.len() / 2]));
            }
            let seen: Vec<String> = counters
                .iter()
                .filter(|((c, _), _)| *c == case)
                .map(|((_, k), v)| format!("{k}={v}"))
                .collect();
            eprintln!("  {:<14} {made:>5}  {}", case.name(), parts.join(", "));
            if !seen.is_empty() {
                eprintln!("  {:<14} {:>5}  [{}]", "", "", seen.join(", "));
            }
        }
    }
}
