//! The adversarial cases of issue 21 against a real `dimed`'s DMAP listeners, over real
//! sockets on loopback (`../shared/design/test-plan.md`, "DMAP / IMAP"; `spec/dmap.md` §4.1,
//! §4.2, §6): literal bombs and trickles, deep nesting and huge sequence sets, the pre-auth
//! surface (STARTTLS injection, garbage, the bad-command budget), login throttling and timing,
//! cross-user mailbox names, a slow reader of a large FETCH, and the connection caps. Every
//! limit is tried at the limit and one past.
//!
//! `dimed` runs in this process (the fixture's runtime on its own thread), so the process's
//! resident size is the server's: the tests that measure it (and the one that measures login
//! times) take [`RSS`] for writing, every other test takes it for reading, so that no other
//! test's server runs meanwhile.
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
        for (tag, n) in [("q1", "4294967295"), ("q2", "99999999999999999999")] {
            p.send(format!("{tag} LOGIN {{{n}}}\r\n").as_bytes()).await;
            let r = p.line().await.unwrap();
            assert!(r.starts_with(&format!("{tag} BAD")), "{n}: {r}");
        }
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

        // The deadline is per command: a client pipelining commands for 3 s, each of its
        // writes ending inside the next command, is not closed.
        let mut q = Client::plain(&d).await;
        let start = Instant::now();
        let mut k = 0;
        q.send(b"p0 NO").await;
        while start.elapsed() < Duration::from_secs(3) {
            q.send(format!("OP\r\np{} NO", k + 1).as_bytes()).await;
            let r = q.until_tagged(&format!("p{k}")).await;
            assert_eq!(r, [format!("p{k} OK NOOP completed")]);
            k += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        q.send(b"OP\r\n").await;
        let r = q.until_tagged(&format!("p{k}")).await;
        assert_eq!(r, [format!("p{k} OK NOOP completed")]);

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

// ---------------------------------------------------------------------------------------------
// 2. Deep nesting and huge sequence sets.

#[test]
fn deep_nesting_and_huge_sequence_sets_are_bounded() {
    let _s = shared();
    let d = Dimed::start(&[ALICE], "");
    runtime().block_on(async {
        let mut c = Client::login(&d, ALICE).await;
        for k in 0..3 {
            let r = append(&mut c, "INBOX", &message(&format!("m{k}"), 300)).await;
            assert!(tagged(&r).starts_with("ap OK"), "{r:?}");
        }
        assert!(tagged(&c.cmd("s", "SELECT INBOX").await).starts_with("s OK"));
        let depth = 32;
        for (open, close) in [("NOT ", ""), ("(", ")"), ("OR ALL ", "")] {
            let at = format!("SEARCH {}ALL{}", open.repeat(depth), close.repeat(depth));
            let r = c.cmd("d1", &at).await;
            assert!(tagged(&r).starts_with("d1 OK"), "{open}: {r:?}");
            let past = format!("SEARCH {}ALL{}", open.repeat(depth + 1), close.repeat(depth + 1));
            let r = c.cmd("d2", &past).await;
            assert!(tagged(&r).starts_with("d2 BAD"), "{open}: {r:?}");
            assert_eq!(r.len(), 1, "{r:?}");
        }
        // Deeper than a line may be: refused as a line, the connection kept.
        let r = c.cmd("d3", &format!("SEARCH {}ALL", "NOT ".repeat(100_000))).await;
        assert!(tagged(&r).starts_with("d3 BAD"), "{r:?}");

        // Huge sequence sets: answered at once, with the messages there are.
        for (tag, cmd) in [
            ("h1", "FETCH 1:4294967295 (FLAGS)".to_owned()),
            ("h2", "UID FETCH 1:4294967295 (FLAGS)".to_owned()),
            ("h3", "UID SEARCH UID 1:4294967295".to_owned()),
            ("h4", "FETCH 1:* (FLAGS)".to_owned()),
        ] {
            let start = Instant::now();
            let r = c.cmd(tag, &cmd).await;
            let took = start.elapsed();
            assert!(took < Duration::from_secs(2), "{cmd}: {took:?}");
            let t = tagged(&r);
            assert!(t.starts_with(&format!("{tag} OK")) || t.starts_with(&format!("{tag} BAD")));
            assert!(r.len() <= 4, "{cmd}: {r:?}");
        }
        // A line of exactly `MAX_LINE_LEN` (8 KiB) octets of overlapping ranges (2,042 of
        // them, every one to `*`), and one octet more.
        let line_of = |tag: &str, len: usize| {
            let (head, tail) = (format!("{tag} UID FETCH "), " (FLAGS)");
            let room = len - head.len() - tail.len();
            let k = (room - 1) / 4;
            let last = "1234567890"[..room - 4 * k].to_owned();
            format!("{head}{}{last}{tail}", "1:*,".repeat(k))
        };
        let start = Instant::now();
        let line = line_of("h5", 8192);
        assert_eq!(line.len(), 8192);
        c.send(format!("{line}\r\n").as_bytes()).await;
        let r = c.until_tagged("h5").await;
        let took = start.elapsed();
        assert!(tagged(&r).starts_with("h5 OK"), "{:?}", tagged(&r));
        assert!(r.len() <= 4, "{} responses", r.len());
        assert!(took < Duration::from_secs(2), "{took:?}");
        c.send(format!("{}\r\n", line_of("h6", 8193)).as_bytes()).await;
        let r = c.until_tagged("h6").await;
        assert_eq!(r, ["h6 BAD line too long"]);
        let r = c.cmd("h9", "FETCH 1:4294967296 (FLAGS)").await;
        assert!(tagged(&r).starts_with("h9 BAD"), "{r:?}");
        let r = c.cmd("n", "NOOP").await;
        assert!(tagged(&r).starts_with("n OK"), "{r:?}");
    });
}

// ---------------------------------------------------------------------------------------------
// 3. The pre-auth surface.

/// Every command that needs a login, before one (on both ports): BAD or NO, never data.
const AUTHENTICATED: &[&str] = &[
    "SELECT INBOX",
    "EXAMINE INBOX",
    "CREATE x",
    "DELETE INBOX",
    "RENAME INBOX x",
    "SUBSCRIBE INBOX",
    "UNSUBSCRIBE INBOX",
    "LIST \"\" \"*\"",
    "LIST (SUBSCRIBED) \"\" \"*\" RETURN (STATUS (MESSAGES))",
    "LSUB \"\" \"*\"",
    "NAMESPACE",
    "STATUS INBOX (MESSAGES UIDNEXT SIZE)",
    "APPEND INBOX {5+}\r\nhello",
    "IDLE",
    "CLOSE",
    "UNSELECT",
    "EXPUNGE",
    "UID EXPUNGE 1:*",
    "SEARCH ALL",
    "UID SEARCH ALL",
    "FETCH 1:* (FLAGS BODY[])",
    "UID FETCH 1:* (BODY.PEEK[])",
    "STORE 1 +FLAGS (\\Deleted)",
    "UID STORE 1 +FLAGS (\\Deleted)",
    "COPY 1 x",
    "UID COPY 1 x",
    "MOVE 1 x",
    "UID MOVE 1 x",
    "ENABLE IMAP4rev2 QRESYNC",
];

async fn pre_auth_commands_give_no_data(c: &mut Client) {
    for (k, cmd) in AUTHENTICATED.iter().enumerate() {
        let tag = format!("u{k}");
        let r = c.cmd(&tag, cmd).await;
        assert_eq!(r.len(), 1, "{cmd}: {r:?}");
        let t = text(&r[0]);
        assert!(t.starts_with("BAD") || t.starts_with("NO"), "{cmd}: {r:?}");
        // A NOOP between them: the bad-command budget counts BADs in a row only.
        let r = c.cmd("n", "NOOP").await;
        assert_eq!(r, ["n OK NOOP completed"], "{cmd}");
    }
}

#[test]
fn pre_auth_surface() {
    let _s = shared();
    let d = Dimed::start(&[ALICE], "");
    runtime().block_on(async {
        // Plaintext: logins disabled, every other command refused without data.
        let mut c = Client::plain(&d).await;
        let r = c.cmd("c", "CAPABILITY").await;
        assert!(r[0].contains("LOGINDISABLED") && !r[0].contains("AUTH=PLAIN"), "{r:?}");
        let r = c.cmd("l", &format!("LOGIN \"{}\" \"{}\"", ALICE.0, ALICE.1)).await;
        assert_eq!(r, ["l NO [PRIVACYREQUIRED] LOGIN is disabled before TLS"]);
        let ir = "AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZSBpbWFwIHBhc3N3b3Jk";
        let r = c.cmd("a", &format!("AUTHENTICATE PLAIN {ir}")).await;
        assert!(tagged(&r).starts_with("a NO [PRIVACYREQUIRED]"), "{r:?}");
        let r = c.cmd("a2", "AUTHENTICATE PLAIN").await;
        assert!(tagged(&r).starts_with("a2 NO"), "{r:?}");
        pre_auth_commands_give_no_data(&mut c).await;
        // Implicit TLS, before a login.
        let mut t = Client::tls(&d).await;
        pre_auth_commands_give_no_data(&mut t).await;

        // STARTTLS with commands pipelined behind it in the same packet (CVE-2011-0411): the
        // plaintext after the OK is dropped, never run under TLS.
        let injected = format!(
            "s STARTTLS\r\ni1 CAPABILITY\r\ni2 LOGIN \"{}\" \"{}\"\r\ni3 NOOP\r\n",
            ALICE.0, ALICE.1
        );
        let mut raw = tcp_from(Ipv4Addr::LOCALHOST, d.imap).await.unwrap();
        let mut g = [0u8; 512];
        let n = raw.read(&mut g).await.unwrap();
        assert!(g[..n].starts_with(b"* OK"));
        raw.write_all(injected.as_bytes()).await.unwrap();
        let mut ok = Vec::new();
        while !ok.ends_with(b"\r\n") {
            let mut b = [0u8; 1];
            assert_eq!(raw.read(&mut b).await.unwrap(), 1);
            ok.push(b[0]);
        }
        assert_eq!(ok, b"s OK begin TLS negotiation now\r\n");
        let mut s = Client::new(tls_over(&d, raw).await);
        let r = s.cmd("after", "NOOP").await;
        assert_eq!(r, ["after OK NOOP completed"], "an injected command was run under TLS");
        let r = s.cmd("c2", "CAPABILITY").await;
        assert!(r[0].contains("AUTH=PLAIN"), "{r:?}");
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
// 4. Login throttling and timing.

const FAILED: &str = "NO [AUTHENTICATIONFAILED] authentication failed";
const UNAVAILABLE: &str = "NO [UNAVAILABLE] try again later";

/// One LOGIN from `from` on a new TLS connection: the answer without its tag and the time it
/// took (from the command sent to the answer read).
async fn login_once(d: &Dimed, from: Ipv4Addr, user: &str, password: &str) -> (String, Duration) {
    let mut c = Client::tls_from(d, from).await;
    let start = Instant::now();
    let r = c.cmd("l", &format!("LOGIN \"{user}\" \"{password}\"")).await;
    let took = start.elapsed();
    (text(tagged(&r)).to_owned(), took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Unknown user, wrong password and an address that does not parse: the same answer, and
/// (failure delays kept out: each attempt from its own address and on its own account) the
/// same time within noise: an unknown user is not answered at once.
#[test]
fn login_failures_look_the_same_and_take_the_same_time() {
    // Alone: no other test's server takes the cores while the times are measured.
    let _x = exclusive();
    let users: Vec<(String, String)> =
        (0..10).map(|k| (format!("t{k}@example.test"), format!("password {k}"))).collect();
    let refs: Vec<(&str, &str)> = users.iter().map(|(a, p)| (a.as_str(), p.as_str())).collect();
    let d = Dimed::start(&refs, "");
    runtime().block_on(async {
        let (a, _) = login_once(&d, Ipv4Addr::new(127, 0, 1, 101), "t0", "password 0").await;
        assert!(a.starts_with("OK"), "a bare local part is of the domain: {a}");
        let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
        for k in 0..10u8 {
            let (a, t) =
                login_once(&d, Ipv4Addr::new(127, 0, 1, 2 * k + 1), &users[k as usize].0, "nope")
                    .await;
            assert_eq!(a, FAILED, "wrong password");
            wrong.push(t);
            let (a, t) = login_once(
                &d,
                Ipv4Addr::new(127, 0, 1, 2 * k + 2),
                &format!("nobody{k}@example.test"),
                "nope",
            )
            .await;
            assert_eq!(a, FAILED, "unknown user");
            unknown.push(t);
        }
        let (a, _) = login_once(&d, Ipv4Addr::new(127, 0, 1, 100), "not an @@ address", "x").await;
        assert_eq!(a, FAILED, "an address that does not parse");
        let (w, u) = (median(wrong.clone()), median(unknown.clone()));
        let ratio = u.as_secs_f64() / w.as_secs_f64();
        println!("median wrong password {w:?}, unknown user {u:?}, ratio {ratio:.2}");
        println!("wrong {wrong:?}\nunknown {unknown:?}");
        assert!((0.5..=2.0).contains(&ratio), "unknown/wrong = {ratio:.2} ({u:?} vs {w:?})");
    });
}

/// Polls a login of `user` from a new address each time (or from `from` when given) until it
/// is checked rather than refused within a delay; returns when it was checked and its answer.
async fn next_checked(
    d: &Dimed,
    from: &mut dyn FnMut() -> Ipv4Addr,
    user: &mut dyn FnMut() -> String,
    password: &str,
) -> (Instant, String) {
    let give_up = Instant::now() + Duration::from_secs(12);
    loop {
        let (a, _) = login_once(d, from(), &user(), password).await;
        if a != UNAVAILABLE {
            return (Instant::now(), a);
        }
        assert!(Instant::now() < give_up, "still delayed after 12 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// After a failure, the account and the source address are each refused for a delay that
/// grows (2 s, then 4 s: whole seconds of the server's clock), a refusal checks no password
/// (a right one included) and does not lengthen it.
#[test]
fn failure_delays_grow_per_account_and_per_address() {
    let _s = shared();
    let d = Dimed::start(&[ALICE, BOB], "");
    runtime().block_on(async {
        // Per address: unknown users from one address.
        let by_address = async {
            let ip = Ipv4Addr::new(127, 0, 2, 1);
            let mut n = 0;
            let mut who = move || {
                n += 1;
                format!("nobody{n}@example.test")
            };
            let (a, _) = login_once(&d, ip, &who(), "x").await;
            assert_eq!(a, FAILED);
            let t0 = Instant::now();
            // The right password of another account, from that address: refused unchecked.
            let (a, _) = login_once(&d, ip, ALICE.0, ALICE.1).await;
            assert_eq!(a, UNAVAILABLE, "a login from a delayed address");
            let (t1, a) = next_checked(&d, &mut || ip, &mut who, "x").await;
            assert_eq!(a, FAILED);
            let (t2, a) = next_checked(&d, &mut || ip, &mut who, "x").await;
            assert_eq!(a, FAILED);
            (t1 - t0, t2 - t1)
        };
        // Per account: BOB's wrong password from ever new addresses.
        let by_account = async {
            let mut k = 0u8;
            let mut ip = move || {
                k += 1;
                Ipv4Addr::new(127, 0, 3, k)
            };
            let (a, _) = login_once(&d, ip(), BOB.0, "wrong").await;
            assert_eq!(a, FAILED);
            let t0 = Instant::now();
            let (a, _) = login_once(&d, ip(), BOB.0, BOB.1).await;
            assert_eq!(a, UNAVAILABLE, "the right password within the account's delay");
            let (t1, a) = next_checked(&d, &mut ip, &mut || BOB.0.to_owned(), "wrong").await;
            assert_eq!(a, FAILED);
            let (t2, a) = next_checked(&d, &mut ip, &mut || BOB.0.to_owned(), BOB.1).await;
            assert!(a.starts_with("OK"), "the right password after the delay: {a}");
            (t1 - t0, t2 - t1)
        };
        let ((a1, a2), (b1, b2)) = tokio::join!(by_address, by_account);
        println!("delays per address {a1:?} then {a2:?}; per account {b1:?} then {b2:?}");
        for (first, second) in [(a1, a2), (b1, b2)] {
            assert!(first >= Duration::from_millis(900), "first delay {first:?}");
            assert!(second >= Duration::from_millis(2900), "second delay {second:?}");
            assert!(second > first, "the delay did not grow: {first:?}, {second:?}");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 5. Cross-user mailbox names.

/// A command that takes a mailbox name, and how it is written for a name.
type Named = (&'static str, fn(&str) -> String);

/// Names that try to reach BOB's `Private` (or play on look-alikes) get exactly the answer a
/// name that exists nowhere gets, through every command that takes a mailbox name.
#[test]
fn cross_user_mailbox_names_get_the_missing_answer() {
    let _s = shared();
    let d = Dimed::start(&[ALICE, BOB], "");
    runtime().block_on(async {
        let mut b = Client::login(&d, BOB).await;
        for n in ["Private", "Private/Sub", "Archive"] {
            let r = b.cmd("c", &format!("CREATE \"{n}\"")).await;
            assert!(tagged(&r).starts_with("c OK"), "{r:?}");
        }
        assert!(tagged(&append(&mut b, "Private", &message("secret", 200)).await).contains("OK"));

        let mut a = Client::login(&d, ALICE).await;
        // A name of ALICE's own that looks like one of BOB's must not be taken for it.
        let names = [
            "Private",
            "Private/Sub",
            "../Private",
            "../bob/Private",
            "../bob@example.test/Private",
            "INBOX/../../bob/Private",
            "/bob/Private",
            "bob/Private",
            "bob@example.test/Private",
            "#users/bob/Private",
            "#shared/bob/Private",
            "#public/Private",
            "~bob/Private",
            "Other Users/bob/Private",
            "user.bob.Private",
            "&AC8-bob&AC8-Private",
            "..&AC8-bob&AC8-Private",
        ];
        let commands: [Named; 7] = [
            ("SELECT", |n| format!("SELECT \"{n}\"")),
            ("EXAMINE", |n| format!("EXAMINE \"{n}\"")),
            ("STATUS", |n| format!("STATUS \"{n}\" (MESSAGES UIDNEXT)")),
            ("DELETE", |n| format!("DELETE \"{n}\"")),
            ("RENAME", |n| format!("RENAME \"{n}\" \"Mine\"")),
            ("APPEND", |n| format!("APPEND \"{n}\" {{5+}}\r\nhello")),
            ("UNSUBSCRIBE", |n| format!("UNSUBSCRIBE \"{n}\"")),
        ];
        let ask = async |a: &mut Client, cmd: &str| -> Vec<String> {
            let r = a.cmd("x", cmd).await;
            // Not 20 BADs in a row (`MAX_BAD_COMMANDS`): a NOOP between two.
            assert_eq!(text(tagged(&a.cmd("n", "NOOP").await)), "OK NOOP completed");
            r.iter().map(|l| text(l).to_owned()).collect()
        };
        for n in names {
            let missing = n.replace("Private", "Nowhere7c1").replace("bob", "nobody9");
            for (what, cmd) in &commands {
                let hostile = ask(&mut a, &cmd(n)).await;
                let expected = ask(&mut a, &cmd(&missing)).await;
                assert_eq!(hostile, expected, "{what} {n:?} vs {missing:?}");
                let t = hostile.last().unwrap();
                assert!(
                    t.starts_with("NO [NONEXISTENT]")
                        || t.starts_with("NO [TRYCREATE]")
                        || t.starts_with("BAD"),
                    "{what} {n:?}: {t}"
                );
            }
        }
        // Look-alikes of BOB's names and of ALICE's own INBOX, in UTF-8 (IMAP4rev2).
        let r = a.cmd("e", "ENABLE IMAP4rev2").await;
        assert!(tagged(&r).starts_with("e OK"));
        for n in [
            "\u{420}rivate",                            // Cyrillic Р
            "Priv\u{430}te",                            // Cyrillic а
            "Private\u{200b}",                          // zero-width space
            "Pri\u{301}vate",                           // combining accent
            "\u{ff29}\u{ff2e}\u{ff22}\u{ff2f}\u{ff38}", // fullwidth INBOX
            "\u{130}NBOX",                              // dotted capital I
        ] {
            for (what, cmd) in &commands {
                let hostile = ask(&mut a, &cmd(n)).await;
                let expected = ask(&mut a, &cmd("Nowhere7c1")).await;
                assert_eq!(hostile, expected, "{what} {n:?}");
            }
        }
        // mUTF-7 look-alikes, in an IMAP4rev1 session: the same answer as a missing name.
        let mut a1 = Client::login(&d, ALICE).await;
        for n in ["&BCA-rivate", "&,yn,Lv8i,y,,OA-", "Private&ACA-", "&AFA-rivate"] {
            for (what, cmd) in &commands {
                let hostile = ask(&mut a1, &cmd(n)).await;
                let expected = ask(&mut a1, &cmd("Nowhere7c1")).await;
                let t = hostile.last().unwrap();
                // A non-canonical form (an encoded printable character) is refused as such.
                assert!(
                    hostile == expected || t.starts_with("BAD"),
                    "{what} {n:?}: {hostile:?} vs {expected:?}"
                );
            }
        }
        // LIST shows none of BOB's names, whatever the reference.
        for (reference, pattern) in
            [("", "*"), ("", "%/%"), ("../", "*"), ("#users/", "*"), ("~bob/", "*"), ("/", "*")]
        {
            let r = a.cmd("l", &format!("LIST \"{reference}\" \"{pattern}\"")).await;
            assert!(tagged(&r).starts_with("l OK") || tagged(&r).starts_with("l BAD"), "{r:?}");
            assert!(!r.iter().any(|l| l.contains("Private")), "{reference}{pattern}: {r:?}");
        }
        // COPY and MOVE to them: TRYCREATE, as to a missing one.
        append(&mut a, "INBOX", &message("mine", 200)).await;
        a.cmd("s", "SELECT INBOX").await;
        for n in ["Private", "../bob/Private", "#users/bob/Private"] {
            for verb in ["COPY", "MOVE"] {
                let hostile = ask(&mut a, &format!("{verb} 1 \"{n}\"")).await;
                let expected = ask(&mut a, &format!("{verb} 1 \"Nowhere7c1\"")).await;
                assert_eq!(hostile, expected, "{verb} {n}");
                assert!(hostile.last().unwrap().starts_with("NO [TRYCREATE]"), "{hostile:?}");
            }
        }
        // BOB's message is where it was.
        let r = b.cmd("s", "STATUS Private (MESSAGES)").await;
        assert!(r[0].contains("MESSAGES 1"), "{r:?}");
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

// ---------------------------------------------------------------------------------------------
// 7. Connection caps.

/// Connects `n` times from `from` to `to`, `at_once` at a time, keeping every connection the
/// server greets; returns them and how many were refused (`* BYE` or closed at once).
async fn flood(
    from: Ipv4Addr,
    to: SocketAddr,
    n: usize,
    at_once: usize,
) -> (Vec<TcpStream>, usize) {
    let mut kept = Vec::new();
    let mut refused = 0;
    let mut set = tokio::task::JoinSet::new();
    let mut started = 0;
    while started < n || !set.is_empty() {
        while started < n && set.len() < at_once {
            started += 1;
            set.spawn(async move {
                let mut s = tcp_from(from, to).await.unwrap();
                let mut b = [0u8; 256];
                let got = tokio::time::timeout(ANSWER, s.read(&mut b)).await;
                match got {
                    Ok(Ok(k)) if b[..k].starts_with(b"* OK") => Some(s),
                    Ok(Ok(k)) => {
                        assert!(k == 0 || b[..k].starts_with(b"* BYE too many connections"));
                        None
                    }
                    Ok(Err(_)) => None,
                    Err(_) => panic!("no greeting and no refusal"),
                }
            });
        }
        match set.join_next().await.unwrap().unwrap() {
            Some(s) => kept.push(s),
            None => refused += 1,
        }
    }
    (kept, refused)
}

/// 10,000 connections from one address: exactly 64 (the per-address cap) are served, the
/// rest refused at accept; another address still gets in; a closed one frees its place. The
/// listener-wide cap at the limit and one past.
#[test]
fn ten_thousand_connections_from_one_address_meet_the_cap() {
    let _s = shared();
    dime_net::raise_fd_limit();
    let d = Dimed::start(&[ALICE], "");
    runtime().block_on(async {
        let start = Instant::now();
        let (first, refused) = flood(Ipv4Addr::LOCALHOST, d.imap, 64, 64).await;
        assert_eq!((first.len(), refused), (64, 0), "the cap itself");
        let (more, refused) = flood(Ipv4Addr::LOCALHOST, d.imap, 10_000 - 64, 64).await;
        assert_eq!((more.len(), refused), (0, 10_000 - 64), "past the cap");
        println!("10,000 connections in {:?}", start.elapsed());
        // Another address gets in meanwhile.
        let other = Client::plain_from(&d, Ipv4Addr::new(127, 0, 0, 2)).await;
        drop(other);
        // A closed connection frees its place (when the server has seen it close).
        let mut first = first;
        first.pop();
        let give_up = Instant::now() + ANSWER;
        loop {
            let (got, _) = flood(Ipv4Addr::LOCALHOST, d.imap, 1, 1).await;
            if got.len() == 1 {
                first.extend(got);
                break;
            }
            assert!(Instant::now() < give_up, "the freed place was not given again");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (none, _) = flood(Ipv4Addr::LOCALHOST, d.imap, 1, 1).await;
        assert!(none.is_empty(), "65 from one address");
        drop(first);
    });
    drop(d);
    // The listener-wide cap: 8 at most, from 8 addresses; the 9th refused.
    let d = Dimed::start(&[ALICE], "[imap]\nmax_connections = 8\n");
    runtime().block_on(async {
        let mut kept = Vec::new();
        for k in 0..8 {
            let (got, _) = flood(Ipv4Addr::new(127, 0, 4, k + 1), d.imap, 1, 1).await;
            assert_eq!(got.len(), 1, "connection {k} of 8");
            kept.extend(got);
        }
        let (got, refused) = flood(Ipv4Addr::new(127, 0, 4, 9), d.imap, 1, 1).await;
        assert_eq!((got.len(), refused), (0, 1), "the 9th");
    });
}
