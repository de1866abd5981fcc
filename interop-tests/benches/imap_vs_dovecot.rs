//! DMAP against Dovecot 2.3 (issue 21, benchmark; documented, not CI): one run on one machine,
//! 4 KiB messages, `dimed` against a private Dovecot with Maildir in clear and one with the
//! mail-crypt plugin (global EC keys, every message encrypted at rest), both started here with
//! throwaway configurations ([`dime_interop_tests::dovecot`]), Dovecot's `fsync_mode` left at
//! its default.
//!
//! `dimed` runs in a child process of the bench (this executable again, `DIME_BENCH_CHILD=dimed`,
//! the [`Dimed`] fixture with `[imap] max_connections_per_ip` raised), so that its RSS is its
//! own; every client is a small synchronous IMAP client in this process, over implicit TLS to
//! every server (rustls, no certificate check: each server's certificate is a throwaway).
//!
//! Measured, one JSON object per line on stdout, then a table on stderr:
//! - `append_1`: durable APPEND rate of `DIME_BENCH_MESSAGES` (default 2,000) messages into
//!   the INBOX, one client; `append_8`: the same count into another mailbox by 8 clients at once.
//!   Ratio dime / Dovecot plain (target >= 2).
//! - `fetch`: `FETCH 1:n BODY.PEEK[]` of the INBOX's messages in one command by one client in a
//!   fresh session, messages per second (the best of 3 sessions). Ratio dime / Dovecot plain
//!   (target >= 1).
//! - `login_login` and `login_plain`: latency of `LOGIN` and of `AUTHENTICATE PLAIN` (SASL-IR),
//!   from the command to its tagged OK on an established TLS connection, p50 and p99 over
//!   `DIME_BENCH_LOGINS` (default 100) logins.
//! - `idle`: `DIME_BENCH_IDLE` (default 1,000) sessions logged in, INBOX selected, in IDLE, in
//!   dime: the child's VmRSS before and after, per session (target <= 64 KiB).
//!
//! Run: `cargo bench -p dime-interop-tests --bench imap_vs_dovecot` (as root, with Debian's
//! `dovecot-imapd` installed; without it only dime is measured). No timing is asserted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss
)]

use dime_interop_tests::dimed::Dimed;
use dime_interop_tests::dovecot::{Dovecot, Variant};
use dime_interop_tests::postfix::proc_kib;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USER: &str = "bench@example.test";
const PASSWORD: &str = "bench imap password";
const MESSAGE_LEN: usize = 4096;
const CLIENTS: usize = 8;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// A synchronous IMAP client over TLS.

#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    let provider = dime_testkit::tls_provider();
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

struct Client {
    io: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
    n: u64,
}

impl Client {
    fn connect(addr: SocketAddr, tls: &Arc<rustls::ClientConfig>) -> Client {
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_nodelay(true).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let conn = rustls::ClientConnection::new(
            Arc::clone(tls),
            ServerName::try_from("imap.test").unwrap().to_owned(),
        )
        .unwrap();
        let mut c = Client { io: BufReader::new(rustls::StreamOwned::new(conn, tcp)), n: 0 };
        let greeting = c.line();
        assert!(greeting.starts_with(b"* OK"), "greeting {}", String::from_utf8_lossy(&greeting));
        c
    }

    fn line(&mut self) -> Vec<u8> {
        let mut l = Vec::new();
        self.io.read_until(b'\n', &mut l).unwrap();
        assert!(!l.is_empty(), "connection closed");
        l
    }

    /// Reads one response (its literals included); returns it and the octets of its literals.
    fn response(&mut self) -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        let mut literal = 0;
        loop {
            let l = self.line();
            out.extend_from_slice(&l);
            let Some(n) = literal_len(&l) else { return (out, literal) };
            let mut buf = vec![0u8; n];
            self.io.read_exact(&mut buf).unwrap();
            literal += n;
            out.extend_from_slice(&buf);
        }
    }

    fn send(&mut self, data: &[u8]) {
        self.io.get_mut().write_all(data).unwrap();
        self.io.get_mut().flush().unwrap();
    }

    /// Sends `tag command` (and `literal` after a continuation when `command` announces one)
    /// and reads to the tagged response; returns the literal octets read and the tagged line.
    fn command(&mut self, command: &str, literal: Option<&[u8]>) -> (usize, Vec<u8>) {
        self.n += 1;
        let tag = format!("b{}", self.n);
        self.send(format!("{tag} {command}\r\n").as_bytes());
        if let Some(lit) = literal {
            let (r, _) = self.response();
            assert!(r.starts_with(b"+"), "{command}: {}", String::from_utf8_lossy(&r));
            let mut data = lit.to_vec();
            data.extend_from_slice(b"\r\n");
            self.send(&data);
        }
        let mut octets = 0;
        loop {
            let (r, n) = self.response();
            octets += n;
            if r.starts_with(tag.as_bytes()) && r.get(tag.len()) == Some(&b' ') {
                return (octets, r);
            }
        }
    }

    fn ok(&mut self, command: &str, literal: Option<&[u8]>) -> usize {
        let (n, tagged) = self.command(command, literal);
        let text = String::from_utf8_lossy(&tagged);
        assert!(text.split(' ').nth(1) == Some("OK"), "{command}: {text}");
        n
    }

    fn login(&mut self) {
        self.ok(&format!("LOGIN \"{USER}\" \"{PASSWORD}\""), None);
    }
}

fn literal_len(line: &[u8]) -> Option<usize> {
    let l = line.strip_suffix(b"\r\n")?;
    let l = l.strip_suffix(b"}")?;
    let open = l.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&l[open + 1..]).ok()?.trim_end_matches('+').parse().ok()
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let v = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A 4 KiB message (headers and a text body), numbered.
fn message(i: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Sender <sender@example.org>\r\nTo: {USER}\r\nSubject: bench message {i}\r\n\
         Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <bench-{i}@example.org>\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    .into_bytes();
    let line = b"The quick brown fox jumps over the lazy dog, again and again, for the bench.\r\n";
    while m.len() + line.len() <= MESSAGE_LEN {
        m.extend_from_slice(line);
    }
    m.resize(MESSAGE_LEN - 2, b'.');
    m.extend_from_slice(b"\r\n");
    m
}

// ---------------------------------------------------------------------------------------------
// The servers.

struct Server {
    name: &'static str,
    addr: SocketAddr,
    pid: u32,
}

/// The child process that runs `dimed` (this executable with `DIME_BENCH_CHILD=dimed`).
fn dimed_child() -> (Child, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("DIME_BENCH_CHILD", "dimed")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("READY ").expect("the child's READY line");
    (child, addr.parse().unwrap())
}

fn child_main() {
    let extra = "[imap]\nmax_connections_per_ip = 5000\nmax_connections = 20000\n";
    let d = Dimed::start(&[(USER, PASSWORD)], extra);
    println!("READY {}", d.imaps);
    std::io::stdout().flush().unwrap();
    // Until the parent closes stdin (or exits).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    d.stop();
}

// ---------------------------------------------------------------------------------------------
// The measurements.

struct Row {
    bench: String,
    server: &'static str,
    value: f64,
    unit: &'static str,
    extra: String,
}

fn append_one(s: &Server, tls: &Arc<rustls::ClientConfig>, n: usize) -> f64 {
    let mut c = Client::connect(s.addr, tls);
    c.login();
    let start = Instant::now();
    for i in 0..n {
        let m = message(i);
        c.ok(&format!("APPEND INBOX {{{}}}", m.len()), Some(&m));
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn append_many(s: &Server, tls: &Arc<rustls::ClientConfig>, n: usize) -> f64 {
    let mut c = Client::connect(s.addr, tls);
    c.login();
    c.ok("CREATE Many", None);
    let mut clients: Vec<Client> = (0..CLIENTS)
        .map(|_| {
            let mut c = Client::connect(s.addr, tls);
            c.login();
            c
        })
        .collect();
    let per = n / CLIENTS;
    let start = Instant::now();
    std::thread::scope(|scope| {
        for (k, c) in clients.iter_mut().enumerate() {
            scope.spawn(move || {
                for i in 0..per {
                    let m = message(k * per + i);
                    c.ok(&format!("APPEND Many {{{}}}", m.len()), Some(&m));
                }
            });
        }
    });
    (per * CLIENTS) as f64 / start.elapsed().as_secs_f64()
}

fn fetch(s: &Server, tls: &Arc<rustls::ClientConfig>, n: usize) -> f64 {
    let mut best = 0f64;
    for _ in 0..3 {
        let mut c = Client::connect(s.addr, tls);
        c.login();
        c.ok("SELECT INBOX", None);
        let start = Instant::now();
        let octets = c.ok(&format!("FETCH 1:{n} BODY.PEEK[]"), None);
        let rate = n as f64 / start.elapsed().as_secs_f64();
        assert_eq!(octets, n * MESSAGE_LEN, "{}: every message fetched whole", s.name);
        best = best.max(rate);
        c.ok("LOGOUT", None);
    }
    best
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

/// Login latencies in milliseconds (p50, p99) of `LOGIN` (plain = false) or AUTHENTICATE PLAIN.
fn logins(s: &Server, tls: &Arc<rustls::ClientConfig>, n: usize, plain: bool) -> (f64, f64) {
    let mut ms = Vec::with_capacity(n);
    let ir = base64(format!("\0{USER}\0{PASSWORD}").as_bytes());
    for _ in 0..n {
        let mut c = Client::connect(s.addr, tls);
        let start = Instant::now();
        if plain {
            c.ok(&format!("AUTHENTICATE PLAIN {ir}"), None);
        } else {
            c.login();
        }
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
        c.ok("LOGOUT", None);
    }
    (percentile(&mut ms, 0.5), percentile(&mut ms, 0.99))
}

fn rss_kib(pid: u32) -> u64 {
    proc_kib(Path::new(&format!("/proc/{pid}/status")), "VmRSS:").unwrap_or(0)
}

/// Per-session RSS of `n` sessions in IDLE, KiB, and the RSS before and after.
fn idle(s: &Server, tls: &Arc<rustls::ClientConfig>, n: usize) -> (f64, u64, u64) {
    let open = |c: &mut Client| {
        c.login();
        c.ok("SELECT INBOX", None);
        c.n += 1;
        let tag = format!("b{}", c.n);
        c.send(format!("{tag} IDLE\r\n").as_bytes());
        let (r, _) = c.response();
        assert!(r.starts_with(b"+"), "IDLE: {}", String::from_utf8_lossy(&r));
    };
    // A few sessions first, so that what is made once per process is in the baseline.
    let mut warm: Vec<Client> = (0..8).map(|_| Client::connect(s.addr, tls)).collect();
    warm.iter_mut().for_each(open);
    std::thread::sleep(Duration::from_secs(1));
    let before = rss_kib(s.pid);
    let mut sessions = Vec::with_capacity(n);
    for _ in 0..n {
        let mut c = Client::connect(s.addr, tls);
        open(&mut c);
        sessions.push(c);
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib(s.pid);
    drop(sessions);
    drop(warm);
    ((after.saturating_sub(before)) as f64 / n as f64, before, after)
}

fn main() {
    if std::env::var("DIME_BENCH_CHILD").as_deref() == Ok("dimed") {
        child_main();
        return;
    }
    // `cargo test --benches` passes `--bench`-less arguments; a smoke pass is enough there.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let messages = env_usize("DIME_BENCH_MESSAGES", if smoke { 16 } else { 2000 });
    let n_logins = env_usize("DIME_BENCH_LOGINS", if smoke { 4 } else { 100 });
    let n_idle = env_usize("DIME_BENCH_IDLE", if smoke { 8 } else { 1000 });
    let tls = tls_config();

    let (mut child, addr) = dimed_child();
    let mut servers = vec![Server { name: "dime", addr, pid: child.id() }];
    let mut dovecots = Vec::new();
    match Dovecot::unavailable() {
        Some(why) => eprintln!("Dovecot skipped: {why}"),
        None => {
            for (name, variant) in
                [("dovecot", Variant::Plain), ("dovecot-mailcrypt", Variant::MailCrypt)]
            {
                let d = Dovecot::start(variant, USER, PASSWORD);
                servers.push(Server { name, addr: d.imaps, pid: d.pid() });
                dovecots.push(d);
            }
        }
    }

    let mut rows: Vec<Row> = Vec::new();
    for s in &servers {
        eprintln!("{}: append, 1 client", s.name);
        let v = append_one(s, &tls, messages);
        rows.push(Row {
            bench: "append_1".into(),
            server: s.name,
            value: v,
            unit: "msg/s",
            extra: String::new(),
        });
        eprintln!("{}: append, {CLIENTS} clients", s.name);
        let v = append_many(s, &tls, messages);
        rows.push(Row {
            bench: format!("append_{CLIENTS}"),
            server: s.name,
            value: v,
            unit: "msg/s",
            extra: String::new(),
        });
        eprintln!("{}: fetch", s.name);
        let v = fetch(s, &tls, messages);
        rows.push(Row {
            bench: "fetch".into(),
            server: s.name,
            value: v,
            unit: "msg/s",
            extra: String::new(),
        });
        for (bench, plain) in [("login_login", false), ("login_plain", true)] {
            eprintln!("{}: {bench}", s.name);
            let (p50, p99) = logins(s, &tls, n_logins, plain);
            rows.push(Row {
                bench: bench.into(),
                server: s.name,
                value: p50,
                unit: "ms p50",
                extra: format!(",\"p99_ms\":{p99:.2}"),
            });
        }
    }
    eprintln!("dime: {n_idle} sessions in IDLE");
    let (per, before, after) = idle(&servers[0], &tls, n_idle);
    rows.push(Row {
        bench: "idle".into(),
        server: "dime",
        value: per,
        unit: "KiB/session",
        extra: format!(
            ",\"sessions\":{n_idle},\"rss_before_kib\":{before},\"rss_after_kib\":{after}"
        ),
    });

    let reference = |bench: &str| {
        rows.iter().find(|r| r.bench == bench && r.server == "dovecot").map(|r| r.value)
    };
    for r in &rows {
        let ratio = match reference(&r.bench) {
            Some(v) if v > 0.0 && r.unit == "msg/s" => {
                format!(",\"ratio_vs_dovecot\":{:.2}", r.value / v)
            }
            _ => String::new(),
        };
        println!(
            "{{\"bench\":\"{}\",\"server\":\"{}\",\"value\":{:.2},\"unit\":\"{}\",\"messages\":{messages}{}{ratio}}}",
            r.bench, r.server, r.value, r.unit, r.extra
        );
    }
    eprintln!("\n{:<12} {:<18} {:>12} {:<12} {:>8}", "bench", "server", "value", "unit", "ratio");
    for r in &rows {
        let ratio = reference(&r.bench)
            .filter(|v| *v > 0.0 && r.unit == "msg/s")
            .map_or(String::new(), |v| format!("{:.2}", r.value / v));
        eprintln!(
            "{:<12} {:<18} {:>12.2} {:<12} {:>8} {}",
            r.bench,
            r.server,
            r.value,
            r.unit,
            ratio,
            r.extra.trim_start_matches(',').replace('"', "")
        );
    }
    drop(child.stdin.take());
    let _ = child.wait();
    drop(dovecots);
}
