//! The adversarial cases of issue 21 against a real `dimed`'s DMAP listeners, over real
//! sockets on loopback (`../shared/design/test-plan.md`, "DMAP / IMAP"; `spec/dmap.md` §4.1,
//! §4.2, §6): literal bombs and trickles, deep nesting and huge sequence sets, the pre-auth
//! surface (STARTTLS injection, garbage, the bad-command budget), login throttling and timing,
//! cross-user mailbox names, a slow reader of a large FETCH, and the connection caps. Every
//! limit is tried at the limit and one past.
//!
//! `dimed` runs in this process (the fixture's runtime on its own thread), so the process's
//! resident size is the server's: the tests that measure it take [`RSS`] for writing, every
//! other test takes it for reading, so that no other test's server runs meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use dime_interop_tests::dimed::{Dimed, HOST};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const ALICE: (&str, &str) = ("alice@example.test", "alice imap password");
const BOB: (&str, &str) = ("bob@example.test", "bob imap password");
/// How long one answer may take to come.
const ANSWER: Duration = Duration::from_secs(10);

/// Taken for writing by the tests that measure the process's resident size.
static RSS: RwLock<()> = RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    RSS.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    RSS.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A field of `/proc/self/status`, KiB.
fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn rss_mib() -> f64 {
    status_kib("VmRSS:") as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------------
// A raw IMAP client.

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Client {
    io: Pin<Box<dyn Io>>,
    buf: Vec<u8>,
}

/// A TCP connection to `to` from the address `from` (any of 127/8 on Linux).
/// From 127.0.0.1 the kernel picks the port at connect, away from the 4-tuples still in
/// TIME_WAIT (thousands of connections are made from it).
async fn tcp_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    if from == Ipv4Addr::LOCALHOST {
        return TcpStream::connect(to).await;
    }
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    s.connect(to).await
}

fn tls_connector(d: &Dimed) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(&d.cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_over(d: &Dimed, tcp: TcpStream) -> tokio_rustls::client::TlsStream<TcpStream> {
    let name = rustls_pki_types::ServerName::try_from(HOST).unwrap();
    tokio::time::timeout(ANSWER, tls_connector(d).connect(name, tcp)).await.unwrap().unwrap()
}

impl Client {
    fn new(io: impl Io + 'static) -> Client {
        Client { io: Box::pin(io), buf: Vec::new() }
    }

    /// The STARTTLS port from `from`, greeting read.
    async fn plain_from(d: &Dimed, from: Ipv4Addr) -> Client {
        let mut c = Client::new(tcp_from(from, d.imap).await.unwrap());
        let g = c.line().await.unwrap();
        assert!(g.starts_with("* OK"), "{g}");
        c
    }

    async fn plain(d: &Dimed) -> Client {
        Client::plain_from(d, Ipv4Addr::LOCALHOST).await
    }

    /// The implicit-TLS port from `from`, greeting read.
    async fn tls_from(d: &Dimed, from: Ipv4Addr) -> Client {
        let tcp = tcp_from(from, d.imaps).await.unwrap();
        let mut c = Client::new(tls_over(d, tcp).await);
        let g = c.line().await.unwrap();
        assert!(g.starts_with("* OK"), "{g}");
        c
    }

    async fn tls(d: &Dimed) -> Client {
        Client::tls_from(d, Ipv4Addr::LOCALHOST).await
    }

    async fn login(d: &Dimed, user: (&str, &str)) -> Client {
        let mut c = Client::tls(d).await;
        let r = c.cmd("l", &format!("LOGIN \"{}\" \"{}\"", user.0, user.1)).await;
        assert!(r.last().unwrap().starts_with("l OK"), "{r:?}");
        c
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
        self.io.flush().await.unwrap();
    }

    /// More input; `false` at the end of the stream.
    async fn fill(&mut self) -> bool {
        self.buf.reserve(64 * 1024);
        matches!(self.io.read_buf(&mut self.buf).await, Ok(1..))
    }

    /// The next line without its CRLF, within [`ANSWER`]; `None` at the end of the stream.
    async fn line(&mut self) -> Option<String> {
        self.line_within(ANSWER).await
    }

    async fn line_within(&mut self, limit: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(k) = self.buf.iter().position(|&b| b == b'\n') {
                let l: Vec<u8> = self.buf.drain(..=k).collect();
                let l = String::from_utf8_lossy(&l).trim_end_matches(['\r', '\n']).to_owned();
                return Some(l);
            }
            match tokio::time::timeout_at(deadline, self.fill()).await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(_) => panic!("no line within {limit:?}; have {:?}", self.buf),
            }
        }
    }

    /// A response line with the literals it announces inlined (as `{n}` and their octets).
    async fn response(&mut self) -> Option<String> {
        let mut out = self.line().await?;
        while let Some(n) = literal_at_end(&out) {
            while self.buf.len() < n {
                assert!(self.fill().await, "stream ended in a literal");
            }
            let lit: Vec<u8> = self.buf.drain(..n).collect();
            out.push_str(&String::from_utf8_lossy(&lit));
            out.push_str(&self.line().await.expect("line after a literal"));
        }
        Some(out)
    }

    /// Sends `tag text` and reads to the tagged answer: every response, the tagged one last.
    async fn cmd(&mut self, tag: &str, text: &str) -> Vec<String> {
        self.send(format!("{tag} {text}\r\n").as_bytes()).await;
        self.until_tagged(tag).await
    }

    async fn until_tagged(&mut self, tag: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let r = self.response().await.unwrap_or_else(|| panic!("closed; had {out:?}"));
            let done = r.starts_with(&format!("{tag} "));
            out.push(r);
            if done {
                return out;
            }
        }
    }

    /// Everything until the end of the stream, within `limit`.
    async fn drain(&mut self, limit: Duration) -> Vec<u8> {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::timeout_at(deadline, self.fill()).await.expect("stream not closed") {}
        std::mem::take(&mut self.buf)
    }

    /// Whether the server closed the stream (end of stream or reset) within `limit`, the
    /// lines before it read and returned.
    async fn closed_within(&mut self, limit: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut lines = Vec::new();
        loop {
            if let Some(k) = self.buf.iter().position(|&b| b == b'\n') {
                let l: Vec<u8> = self.buf.drain(..=k).collect();
                lines.push(String::from_utf8_lossy(&l).trim_end().to_owned());
                continue;
            }
            match tokio::time::timeout_at(deadline, self.fill()).await {
                Ok(true) => {}
                Ok(false) => return lines,
                Err(_) => panic!("still open after {limit:?}; read {lines:?}"),
            }
        }
    }
}

fn literal_at_end(line: &str) -> Option<usize> {
    let open = line.strip_suffix('}')?.rfind('{')?;
    line[open + 1..line.len() - 1].trim_end_matches('+').parse().ok()
}

/// The answer without its tag.
fn text(answer: &str) -> &str {
    answer.split_once(' ').map_or(answer, |(_, t)| t)
}

fn tagged(r: &[String]) -> &str {
    r.last().map_or("", String::as_str)
}

/// An RFC 5322 message of about `size` octets.
fn message(subject: &str, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: alice@example.test\r\nTo: alice@example.test\r\nSubject: {subject}\r\n\
         Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@example.test>\r\n\r\n"
    )
    .into_bytes();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    m
}

async fn append(c: &mut Client, mailbox: &str, msg: &[u8]) -> Vec<String> {
    c.send(format!("ap APPEND \"{mailbox}\" {{{}+}}\r\n", msg.len()).as_bytes()).await;
    c.send(msg).await;
    c.send(b"\r\n").await;
    c.until_tagged("ap").await
}

// ---------------------------------------------------------------------------------------------
// 1. Literal bombs.

/// `{4294967295}` and `{99999999999999999999}` are refused when announced, without a
/// continuation and without the process growing; the APPENDLIMIT at the limit and one past;
/// a non-synchronizing literal over its limit gets `* BYE` and the close; before a login an
/// APPEND is held to the command limit (64 KiB), not to the APPENDLIMIT.
#[test]
fn literal_bombs_are_refused_before_allocating() {
    let _x = exclusive();
    let d = Dimed::start(&[ALICE], "[imap]\nappend_limit = 1048576\n");
    runtime().block_on(async {
        // The resident size once a login has run (its Argon2id memory is the slot's, kept).
        let mut c = Client::login(&d, ALICE).await;
        let before = rss_mib();
        // Synchronizing bombs: answered at once, no continuation.
        for (tag, n) in [("b1", "4294967295"), ("b2", "99999999999999999999"), ("b3", "1048577")] {
            c.send(format!("{tag} APPEND INBOX {{{n}}}\r\n").as_bytes()).await;
            let r = c.line().await.unwrap();
            assert!(r.starts_with(&format!("{tag} NO [TOOBIG]")), "{n}: {r}");
        }
        // Any other command: its literal is held to the command limit.
        for (tag, n) in [("b4", "4294967295"), ("b5", "99999999999999999999"), ("b6", "65537")] {
            c.send(format!("{tag} SEARCH TEXT {{{n}}}\r\n").as_bytes()).await;
            let r = c.line().await.unwrap();
            assert!(r.starts_with(&format!("{tag} BAD")), "{n}: {r}");
        }
        let r = c.cmd("n1", "NOOP").await;
        assert!(tagged(&r).starts_with("n1 OK"), "{r:?}");
        let grown = rss_mib() - before;
        println!("resident size after the bombs: {grown:+.1} MiB");
        assert!(grown < 4.0, "the process grew by {grown:.1} MiB");
        // The APPENDLIMIT itself: a continuation, then stored.
        let m = message("at-the-limit", 1 << 20);
        let pad = (1 << 20) - m.len();
        let mut m = m;
        m.extend(std::iter::repeat_n(b'x', pad));
        c.send(format!("b7 APPEND INBOX {{{}}}\r\n", m.len()).as_bytes()).await;
        let r = c.line().await.unwrap();
        assert!(r.starts_with('+'), "{r}");
        c.send(&m).await;
        c.send(b"\r\n").await;
        let r = c.until_tagged("b7").await;
        assert!(tagged(&r).starts_with("b7 OK [APPENDUID"), "{r:?}");
        let grown = rss_mib() - before;
        println!("resident size after an APPEND of 1 MiB: {grown:+.1} MiB");
        assert!(grown < 16.0, "the process grew by {grown:.1} MiB");

        // Non-synchronizing over the limit: `* BYE`, closed.
        c.send(b"b8 APPEND INBOX {100000000+}\r\n").await;
        c.send(&[b'x'; 4096]).await;
        let lines = c.closed_within(ANSWER).await;
        assert!(lines.iter().any(|l| l.starts_with("* BYE")), "{lines:?}");

        // Before a login: an APPEND is any command (64 KiB at most), at the limit and past.
        let mut p = Client::tls(&d).await;
        p.send(b"p1 APPEND INBOX {1048576}\r\n").await;
        let r = p.line().await.unwrap();
        assert!(r.starts_with("p1 BAD"), "a continuation for 1 MiB before a login: {r}");
        p.send(b"p2 APPEND INBOX {65537}\r\n").await;
        let r = p.line().await.unwrap();
        assert!(r.starts_with("p2 BAD"), "{r}");
        p.send(b"p3 APPEND INBOX {1000}\r\n").await;
        let r = p.line().await.unwrap();
        assert!(r.starts_with('+'), "{r}");
        p.send(&[b'x'; 1000]).await;
        p.send(b"\r\n").await;
        let r = p.until_tagged("p3").await;
        assert!(tagged(&r).starts_with("p3 BAD"), "{r:?}");
        p.send(b"p4 APPEND INBOX {1048576+}\r\n").await;
        let lines = p.closed_within(ANSWER).await;
        assert!(lines.iter().any(|l| l.starts_with("* BYE")), "{lines:?}");
        let grown = rss_mib() - before;
        println!("resident size at the end: {grown:+.1} MiB");
        assert!(grown < 16.0, "the process grew by {grown:.1} MiB");
    });
}

/// A literal trickled in (announced 1 MiB, then 1 octet a second) and a command line trickled
/// in without its end are closed by the command deadline (`spec/dmap.md` §6), however often
/// their octets come; a literal at the slowest allowed rate is taken.
#[test]
fn trickled_literal_and_line_are_closed_by_the_command_deadline() {
    let _s = shared();
    // A command may take 1 s plus its octets at 1 MiB/s: 2 s for a 1 MiB APPEND.
    let d =
        Dimed::start(&[ALICE], "[imap]\ncommand_timeout_secs = 1\nmin_literal_rate = 1048576\n");
    runtime().block_on(async {
        // Within the bound: 1 MiB in 8 pieces over about 0.5 s.
        let mut c = Client::login(&d, ALICE).await;
        let m = message("in-time", 1 << 20);
        c.send(format!("t1 APPEND INBOX {{{}}}\r\n", m.len()).as_bytes()).await;
        assert!(c.line().await.unwrap().starts_with('+'));
        for piece in m.chunks(m.len() / 8 + 1) {
            c.send(piece).await;
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        c.send(b"\r\n").await;
        let r = c.until_tagged("t1").await;
        assert!(tagged(&r).starts_with("t1 OK"), "{r:?}");

        // A trickle: 1 MiB announced, 1 octet a second.
        let start = Instant::now();
        c.send(b"t2 APPEND INBOX {1048576}\r\n").await;
        assert!(c.line().await.unwrap().starts_with('+'));
        let Client { io, buf } = c;
        let (mut rd, mut wr) = tokio::io::split(io);
        let trickle = tokio::spawn(async move {
            for _ in 0..30 {
                if wr.write_all(b"x").await.is_err() || wr.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let mut got = buf;
        let mut b = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(15), rd.read(&mut b)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(n)) => got.extend_from_slice(&b[..n]),
                Err(_) => panic!("the trickle was not closed within 15 s"),
            }
        }
        let took = start.elapsed();
        trickle.abort();
        let got = String::from_utf8_lossy(&got);
        println!("trickled literal closed after {took:?}: {got:?}");
        assert!(got.contains("* BYE command too slow"), "{got}");
        assert!(took >= Duration::from_millis(1900), "closed before its bound: {took:?}");
        assert!(took < Duration::from_secs(6), "{took:?}");

        // Before a login, a line without its end, one octet every 200 ms: 1 s.
        let mut p = Client::plain(&d).await;
        let start = Instant::now();
        let mut closed = false;
        for b in b"a NOOP and more and more and more and more and more and more".iter().cycle() {
            if p.io.write_all(&[*b]).await.is_err() {
                closed = true;
                break;
            }
            if let Ok(false) = tokio::time::timeout(Duration::from_millis(200), p.fill()).await {
                closed = true;
                break;
            }
            if String::from_utf8_lossy(&p.buf).contains("* BYE") || start.elapsed() > ANSWER {
                break;
            }
        }
        let took = start.elapsed();
        let got = String::from_utf8_lossy(&p.buf).into_owned();
        println!("trickled line closed after {took:?}: {got:?}");
        assert!(closed || got.contains("* BYE command too slow"), "{got}");
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "{took:?}");
    });
}

/// An HTTP request and binary garbage get BAD lines that do not echo the attacker's octets
/// (beyond what reads as a tag), and the connection is closed after
/// `MAX_BAD_COMMANDS` (20) BAD answers in a row; 19 and then a good command keep it.
#[test]
fn garbage_gets_unechoed_bad_lines_and_a_close_after_twenty() {
    let _s = shared();
    let d = Dimed::start(&[ALICE], "");
    runtime().block_on(async {
        const CANARY: &str = "CANARY7f3b";
        let http = format!(
            "GET /{CANARY} HTTP/1.1\r\nHost: evil.example\r\nUser-Agent: x-{CANARY}\r\n\r\n"
        );
        // At the limit: 19 BADs, then a good command, twice over.
        let mut c = Client::plain(&d).await;
        for round in 0..2 {
            let mut bads = 0;
            let mut junk = Vec::new();
            for k in 0..19 {
                match k % 3 {
                    0 => junk.extend_from_slice(format!("x{k} FROB {CANARY}\r\n").as_bytes()),
                    1 => junk.extend_from_slice(
                        &[&[0x16u8, 0x03, 0x01, 0xfe, 0x80, 0xc3, 0x28][..], b"\r\n"].concat(),
                    ),
                    _ => junk.extend_from_slice(format!("* {CANARY}\r\n").as_bytes()),
                }
            }
            c.send(&junk).await;
            while bads < 19 {
                let l = c.line().await.expect("closed before the limit");
                assert!(l.contains(" BAD "), "{l}");
                assert!(!l.contains(CANARY), "echoed: {l}");
                assert!(l.bytes().all(|b| (0x20..0x7f).contains(&b)), "{l:?}");
                bads += 1;
            }
            let r = c.cmd("ok", "NOOP").await;
            assert_eq!(r, ["ok OK NOOP completed"], "round {round}");
        }
        // Past it: an HTTP request and more garbage; the 20th BAD in a row closes.
        let mut junk = http.clone().into_bytes();
        for k in 0..30u8 {
            junk.extend_from_slice(&[k, 0xff, b' ', 0x80 | k, b'\r', b'\n']);
        }
        c.send(&junk).await;
        let lines = c.closed_within(ANSWER).await;
        println!("{lines:#?}");
        let bads = lines.iter().filter(|l| l.contains(" BAD ")).count();
        assert_eq!(bads, 20, "{lines:?}");
        assert_eq!(lines.last().map(String::as_str), Some("* BYE too many bad commands"));
        for l in &lines {
            // "GET", "Host:" and "User-Agent:" read as tags; nothing after them is echoed.
            assert!(!l.contains(CANARY) && !l.contains("evil.example"), "echoed: {l}");
            assert!(l.bytes().all(|b| (0x20..0x7f).contains(&b)), "{l:?}");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 6. A slow reader of a large FETCH.

/// 100 messages of 1 MiB (of 128) fetched by a client that reads nothing: the server holds a
/// bounded output (the process's peak grows by far less than the 100 MiB asked for), and the
/// write deadline (`[imap] write_timeout_secs`, 2 s here) closes the connection.
#[test]
fn slow_reader_of_a_large_fetch_is_bounded_and_closed() {
    let _x = exclusive();
    let d = Dimed::start(&[ALICE], "[imap]\nwrite_timeout_secs = 2\n");
    runtime().block_on(async {
        let mut c = Client::login(&d, ALICE).await;
        let m = message("big", 1 << 20);
        let seeding = Instant::now();
        let r = append(&mut c, "INBOX", &m).await;
        assert!(tagged(&r).starts_with("ap OK"), "{r:?}");
        let r = c.cmd("s", "SELECT INBOX").await;
        assert!(tagged(&r).starts_with("s OK"), "{r:?}");
        // Doubled by COPY up to 128 messages (1 + 1 + 2 + ... + 64).
        for k in 0..7 {
            let mut r = c.cmd("cp", "COPY 1:* INBOX").await;
            assert!(tagged(&r).starts_with("cp OK"), "{r:?}");
            r.extend(c.cmd("n", "NOOP").await);
            assert!(r.iter().any(|l| *l == format!("* {} EXISTS", 2 << k)), "{r:?}");
        }
        println!("128 x 1 MiB in the mailbox after {:?}", seeding.elapsed());

        let before = rss_mib();
        let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let start = Instant::now();
        c.send(b"f FETCH 1:100 BODY.PEEK[]\r\n").await;
        // Peak resident size while the server is stuck on its write, sampled until the write
        // deadline (2 s) has surely passed.
        let mut peak = before;
        while start.elapsed() < Duration::from_secs(4) {
            peak = peak.max(rss_mib());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if hwm_reset {
            peak = peak.max(status_kib("VmHWM:") as f64 / 1024.0);
        }
        let grown = peak - before;
        println!("peak growth during the stuck FETCH: {grown:.1} MiB (hwm reset: {hwm_reset})");
        assert!(grown < 40.0, "the server held {grown:.1} MiB for a client that reads nothing");
        // Now read: what the kernel buffered, then the end; never the whole answer.
        let got = c.drain(ANSWER).await;
        let tail = String::from_utf8_lossy(&got[got.len().saturating_sub(200)..]).into_owned();
        println!("read {} octets after the close", got.len());
        assert!(got.len() < 50 << 20, "{} octets", got.len());
        assert!(!tail.contains("f OK"), "the FETCH completed: {tail}");
    });
}
