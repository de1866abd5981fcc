//! Real IMAP clients against `dimed`'s DMAP listeners (issue 21, "Real clients";
//! `spec/dmap.md`), all on loopback, each test with its own `dimed` and its own temporary
//! directory:
//! - mbsync: a full sync into a Maildir (every message as the server holds it, flags), flag
//!   changes and a deletion on each side, a message and a nested folder made in the Maildir, a
//!   second sync after which both sides agree, a third that sends nothing and changes nothing;
//!   and a sync over STARTTLS with AUTHENTICATE PLAIN;
//! - curl: messages fetched byte for byte on implicit TLS and over STARTTLS (`--ssl-reqd`),
//!   the certificate's host name checked; an upload (APPEND) and a search;
//! - offlineimap: a full fetch of filtered folders (byte for byte, flags), then an upload and
//!   a flag change from the Maildir, then an idle run;
//! - neomutt driven through tmux: a search on the server, a canary read on screen, a flag, a
//!   save to another mailbox, a deletion, new mail seen through IDLE; its folder browser
//!   reaching a nested mailbox; a reopen from its header cache through QRESYNC.
//!
//! Mailboxes are seeded and inspected with Python's imaplib (`imap/ops.py`). A test whose
//! program is missing prints `SKIPPED: ...` on stderr and passes; `.ci/run` installs every one
//! of them (isync, curl, offlineimap3, neomutt, tmux).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use dime_interop_tests::dimed::{Dimed, HOST};
use rand_core::{OsRng, RngCore};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const ALICE: (&str, &str) = ("alice@example.test", "alice imap password");
/// What any one client run may take at most (they take well under a second here).
const LIMIT: Duration = Duration::from_secs(40);

// ---------------------------------------------------------------------------------------------
// Processes.

/// Whether `program` is on `PATH`; when it is not, says on stderr that the test is skipped.
fn have(program: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
    if !found {
        eprintln!(
            "SKIPPED: `{program}` is not installed (Debian package `{package}`; .ci/run installs it)"
        );
    }
    found
}

/// Runs `cmd` to its end with stdin closed and its output captured; kills it and fails after
/// `limit`.
fn run(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            b
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + limit;
    let (status, late) = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break (s, false);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break (child.wait().expect("wait"), true);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o =
        Output { status, stdout: out.join().expect("stdout"), stderr: err.join().expect("stderr") };
    if late {
        show(&o);
        panic!("{cmd:?} was still running after {limit:?}");
    }
    o
}

fn show(o: &Output) {
    println!("{}", String::from_utf8_lossy(&o.stdout));
    eprintln!("{}", String::from_utf8_lossy(&o.stderr));
}

/// [`run`], and fails unless the program succeeded.
fn run_ok(cmd: &mut Command) -> Output {
    let o = run(cmd, LIMIT);
    if !o.status.success() {
        show(&o);
        panic!("{cmd:?} failed: {}", o.status);
    }
    o
}

// ---------------------------------------------------------------------------------------------
// The mailbox as the server shows it, through imap/ops.py (imaplib).

type Flags = BTreeSet<String>;
/// Mailbox → message (CRLF, as the server holds it) → flags.
type Model = BTreeMap<String, BTreeMap<Vec<u8>, Flags>>;

fn flags(s: &str) -> Flags {
    s.split_whitespace().map(str::to_owned).collect()
}

fn json_str(s: &str) -> String {
    let mut o = String::from('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                o.push('\\');
                o.push(c);
            }
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Runs the operations of `imap/ops.py` (see there) as alice; returns what it printed.
fn ops(d: &Dimed, list: &[Vec<String>]) -> String {
    let json: Vec<String> = list
        .iter()
        .map(|op| format!("[{}]", op.iter().map(|s| json_str(s)).collect::<Vec<_>>().join(",")))
        .collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("imap/ops.py");
    let o = run_ok(
        Command::new("python3")
            .arg(script)
            .args(["127.0.0.1", &d.imaps.port().to_string()])
            .arg(&d.cert)
            .args([ALICE.0, ALICE.1])
            .arg(format!("[{}]", json.join(","))),
    );
    String::from_utf8(o.stdout).expect("utf-8")
}

fn op(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

/// The server's view of `mailboxes`.
struct ServerView {
    model: Model,
    /// (mailbox, message) → UID.
    uids: BTreeMap<(String, Vec<u8>), u32>,
    /// Everything the dump printed, status (MESSAGES, UIDNEXT, HIGHESTMODSEQ) included.
    raw: String,
}

/// Reads `mailboxes` over IMAP (EXAMINE, `UID FETCH 1:* (FLAGS BODY.PEEK[])`). `strip` removes
/// mbsync's `X-TUID` header line from what it appended.
fn server_view(d: &Dimed, mailboxes: &[&str], strip: bool) -> ServerView {
    let raw = ops(d, &mailboxes.iter().map(|m| op(&["dump", m])).collect::<Vec<_>>());
    let mut v = ServerView { model: Model::new(), uids: BTreeMap::new(), raw: raw.clone() };
    for m in mailboxes {
        v.model.insert((*m).to_owned(), BTreeMap::new());
    }
    for line in raw.lines().filter(|l| !l.starts_with("status\t")) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 4, "dump line {line:?}");
        let mut body = unhex(f[3]);
        if strip {
            body = strip_tuid(&body);
        }
        let uid: u32 = f[1].parse().expect("uid");
        let previous = v.model.get_mut(f[0]).expect("mailbox").insert(body.clone(), flags(f[2]));
        assert!(previous.is_none(), "a message twice in {}", f[0]);
        v.uids.insert((f[0].to_owned(), body), uid);
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Test messages: several shapes, each with its own random canary.

fn canary() -> String {
    let mut b = [0u8; 12];
    OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for (i, c) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            s.push_str("\r\n");
        }
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                s.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// `n` distinct messages (CRLF line ends throughout), cycling through: plain text, 8-bit
/// UTF-8, multipart/mixed with a base64 attachment, multipart/alternative, a 200 KiB body,
/// folded and encoded headers. Every one carries `tag` and a canary of its own in its body.
fn corpus(n: usize, tag: &str) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let c = canary();
            let head = format!(
                "From: Bob Sender <bob@example.org>\r\nTo: Alice <alice@example.test>\r\n\
                 Date: Mon, 7 Dec 2026 10:{:02}:00 +0000\r\nMessage-ID: <{c}@example.org>\r\n",
                i % 60
            );
            let text = match i % 6 {
                0 => format!("Subject: {tag} plain {i}\r\n\r\nHello, canary {c}.\r\n"),
                1 => format!(
                    "Subject: {tag} utf-8 {i}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; \
                     charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\u{fc}\u{df}e, \
                     \u{e7}a va? canary {c}\r\n"
                ),
                2 => {
                    let mut blob = vec![0u8; 3000];
                    OsRng.fill_bytes(&mut blob);
                    format!(
                        "Subject: {tag} attachment {i}\r\nMIME-Version: 1.0\r\nContent-Type: \
                         multipart/mixed; boundary=\"b1-{c}\"\r\n\r\nThis is MIME.\r\n\
                         --b1-{c}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
                         See the attachment, canary {c}.\r\n--b1-{c}\r\nContent-Type: \
                         application/octet-stream\r\nContent-Disposition: attachment; \
                         filename=\"blob.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
                         {}\r\n--b1-{c}--\r\n",
                        base64(&blob)
                    )
                }
                3 => format!(
                    "Subject: {tag} alternative {i}\r\nMIME-Version: 1.0\r\nContent-Type: \
                     multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: \
                     text/plain\r\n\r\ncanary {c}\r\n--alt\r\nContent-Type: text/html\r\n\r\n\
                     <p>canary {c}</p>\r\n--alt--\r\n"
                ),
                4 => {
                    let mut s = format!("Subject: {tag} large {i}\r\n\r\ncanary {c}\r\n");
                    for k in 0..3000 {
                        s.push_str(&format!("line {k:05} {}\r\n", "x".repeat(60)));
                    }
                    s
                }
                _ => format!(
                    "Subject: =?utf-8?q?{tag}_=C3=A9ncod=C3=A9d?= {i}\r\nX-Folded: one\r\n two\r\n\
                     \tthree\r\n\r\ncanary {c}\r\n\r\n\r\nafter blank lines\r\n"
                ),
            };
            format!("{head}{text}").into_bytes()
        })
        .collect()
}

/// Appends `seed` ((mailbox, flags, message)) in order, creating mailboxes other than INBOX.
fn seed(d: &Dimed, dir: &Path, seed: &[(&str, &str, &[u8])]) -> Model {
    let mut list = Vec::new();
    let mut model = Model::new();
    for (i, (mailbox, fl, message)) in seed.iter().enumerate() {
        if !model.contains_key(*mailbox) {
            if *mailbox != "INBOX" {
                list.push(op(&["create", mailbox]));
            }
            model.insert((*mailbox).to_owned(), BTreeMap::new());
        }
        let path = dir.join(format!("seed-{i}.eml"));
        std::fs::write(&path, message).expect("write message");
        list.push(op(&["append", mailbox, fl, path.to_str().expect("utf-8 path")]));
        model.get_mut(*mailbox).expect("mailbox").insert(message.to_vec(), flags(fl));
    }
    ops(d, &list);
    model
}

// ---------------------------------------------------------------------------------------------
// Maildirs (mbsync, offlineimap).

fn lf(b: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(b).replace("\r\n", "\n").into_bytes()
}

fn crlf(b: &[u8]) -> Vec<u8> {
    assert!(!b.contains(&b'\r'), "a CR in a Maildir message");
    let mut o = Vec::with_capacity(b.len() + b.len() / 40);
    for &c in b {
        if c == b'\n' {
            o.push(b'\r');
        }
        o.push(c);
    }
    o
}

/// Removes the one `X-TUID: ` header line mbsync adds to the messages it copies (in the
/// header, LF or CRLF ended); anything else is left as it is.
fn strip_tuid(b: &[u8]) -> Vec<u8> {
    let head_end = b
        .windows(2)
        .position(|w| w == b"\n\n")
        .or_else(|| b.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 1));
    let head_end = head_end.unwrap_or(b.len());
    let mut start = 0;
    while start < head_end {
        let end = b[start..].iter().position(|&c| c == b'\n').map_or(b.len(), |p| start + p + 1);
        if b[start..end].starts_with(b"X-TUID: ") {
            return [&b[..start], &b[end..]].concat();
        }
        start = end;
    }
    b.to_vec()
}

/// Maildir info letters ↔ IMAP system flags (both mbsync and offlineimap).
const LETTERS: [(char, &str); 5] = [
    ('D', "\\Draft"),
    ('F', "\\Flagged"),
    ('R', "\\Answered"),
    ('S', "\\Seen"),
    ('T', "\\Deleted"),
];

fn maildir_flags(name: &str) -> Flags {
    let info = name.split_once(":2,").map_or("", |(_, i)| i);
    info.chars()
        .map(|c| {
            LETTERS
                .iter()
                .find(|(l, _)| *l == c)
                .unwrap_or_else(|| panic!("Maildir flag {c} in {name}"))
                .1
                .to_owned()
        })
        .collect()
}

struct MaildirView {
    /// Messages turned back to CRLF (and without mbsync's X-TUID): comparable to the server's.
    model: Model,
    /// (mailbox, message) → file.
    paths: BTreeMap<(String, Vec<u8>), PathBuf>,
    /// Every file under the Maildir root and its bytes.
    files: BTreeMap<PathBuf, Vec<u8>>,
}

fn maildir_view(root: &Path, mailboxes: &[&str]) -> MaildirView {
    let mut v = MaildirView { model: Model::new(), paths: BTreeMap::new(), files: BTreeMap::new() };
    fn walk(dir: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, files);
            } else {
                files.insert(p.clone(), std::fs::read(&p).expect("read"));
            }
        }
    }
    walk(root, &mut v.files);
    for m in mailboxes {
        let mut messages = BTreeMap::new();
        for sub in ["cur", "new"] {
            let dir = root.join(m).join(sub);
            for (p, bytes) in v.files.range(dir.clone()..) {
                if !p.starts_with(&dir) {
                    break;
                }
                let name = p.file_name().expect("name").to_str().expect("utf-8 name");
                let body = crlf(&strip_tuid(bytes));
                let previous = messages.insert(body.clone(), maildir_flags(name));
                assert!(previous.is_none(), "a message twice in Maildir {m}");
                v.paths.insert(((*m).to_owned(), body), p.clone());
            }
        }
        v.model.insert((*m).to_owned(), messages);
    }
    v
}

/// Gives a Maildir message new flags the way a mail reader does: a rename into `cur/`.
fn set_maildir_flags(path: &Path, new: &[char]) {
    let name = path.file_name().expect("name").to_str().expect("utf-8");
    let base = name.split_once(":2,").map_or(name, |(b, _)| b);
    let mut letters: Vec<char> = new.to_vec();
    letters.sort_unstable();
    let to = path
        .parent()
        .and_then(Path::parent)
        .expect("mailbox dir")
        .join("cur")
        .join(format!("{base}:2,{}", letters.iter().collect::<String>()));
    std::fs::rename(path, to).expect("rename");
}

fn diff(what: &str, got: &Model, want: &Model) {
    if got == want {
        return;
    }
    let show = |m: &Model| {
        let mut s = String::new();
        for (mailbox, msgs) in m {
            for (body, fl) in msgs {
                let subject = String::from_utf8_lossy(body)
                    .lines()
                    .find(|l| l.starts_with("Subject:"))
                    .unwrap_or("?")
                    .to_owned();
                s.push_str(&format!("  {mailbox}: {subject} {fl:?} ({} bytes)\n", body.len()));
            }
        }
        s
    };
    panic!("{what}:\ngot\n{}want\n{}", show(got), show(want));
}

// ---------------------------------------------------------------------------------------------
// mbsync.

/// One mbsync run over every channel, with the IMAP traffic logged (`-Dn`); returns the
/// commands it sent (without tags).
fn mbsync(rc: &Path) -> Vec<String> {
    let o = run_ok(Command::new("mbsync").arg("-V").arg("-Dn").arg("-c").arg(rc).arg("-a"));
    let out = String::from_utf8_lossy(&o.stdout);
    println!("--- mbsync\n{out}");
    let commands: Vec<String> = out
        .lines()
        // Pipelined commands are logged after a "(N in progress) " prefix.
        .filter_map(|l| l.split_once(">>> ").map(|(_, c)| c))
        .map(|l| l.split_once(' ').map_or(l, |(_, c)| c).to_owned())
        .collect();
    assert!(
        commands.iter().any(|c| c.starts_with("LOGIN") || c.starts_with("AUTHENTICATE")),
        "no IMAP traffic logged by mbsync -Dn:\n{out}"
    );
    commands
}

/// An mbsync configuration syncing every mailbox of alice both ways with the Maildir `maildir`
/// (created), on implicit TLS with LOGIN, or over STARTTLS with AUTHENTICATE PLAIN.
fn mbsyncrc(d: &Dimed, dir: &Path, maildir: &Path, starttls: bool) -> PathBuf {
    std::fs::create_dir_all(maildir).expect("mkdir");
    let rc = dir.join(if starttls { "mbsyncrc-starttls" } else { "mbsyncrc" });
    let (port, tls, auth) = if starttls {
        (d.imap.port(), "STARTTLS", "PLAIN")
    } else {
        (d.imaps.port(), "IMAPS", "LOGIN")
    };
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount dime\nHost 127.0.0.1\nPort {port}\nUser {user}\nPass \"{pass}\"\n\
             SSLType {tls}\n# A certificate listed here is trusted as is (no host name check).\n\
             CertificateFile {cert}\nAuthMechs {auth}\n\n\
             IMAPStore remote\nAccount dime\n\n\
             MaildirStore local\nPath {md}/\nInbox {md}/INBOX\nSubFolders Verbatim\n\n\
             Channel dime\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\n\
             Expunge Both\nSyncState *\nSync All\n",
            user = ALICE.0,
            pass = ALICE.1,
            cert = d.cert.display(),
            md = maildir.display(),
        ),
    )
    .expect("write rc");
    rc
}

#[test]
fn mbsync_full_sync_then_flags_and_deletions_both_ways() {
    if !have("mbsync", "isync") {
        return;
    }
    let t0 = Instant::now();
    let d = Dimed::start(&[ALICE], "");
    let tmp = tempfile::tempdir().expect("tempdir");
    let m = corpus(8, "mbsync");
    let seeded = seed(
        &d,
        tmp.path(),
        &[
            ("INBOX", "\\Flagged", &m[0]),
            ("INBOX", "\\Seen", &m[1]),
            ("INBOX", "", &m[2]),
            ("INBOX", "\\Seen \\Answered", &m[3]),
            ("INBOX", "", &m[4]),
            ("INBOX", "\\Seen", &m[5]),
            ("Work", "\\Flagged \\Seen", &m[6]),
            ("Work", "\\Draft", &m[7]),
        ],
    );
    let boxes = ["INBOX", "Work"];
    let maildir = tmp.path().join("maildir");
    let rc = mbsyncrc(&d, tmp.path(), &maildir, false);

    // 1. A full sync: every message lands in the Maildir as the server holds it (mbsync
    // stores LF line ends and adds an X-TUID header line: nothing else may differ), with its
    // flags, and the server is left as it was (BODY.PEEK: no \Seen set by the copy).
    let commands = mbsync(&rc);
    assert!(!commands.iter().any(|c| c.starts_with("APPEND")), "{commands:?}");
    let near = maildir_view(&maildir, &boxes);
    diff("Maildir after the first sync", &near.model, &seeded);
    for ((mailbox, body), path) in &near.paths {
        let file = &near.files[path];
        assert_eq!(strip_tuid(file), lf(body), "{mailbox}: {path:?} is not the server's message");
    }
    let far = server_view(&d, &boxes, false);
    diff("server after the first sync", &far.model, &seeded);

    // 2. Changes on both sides.
    let mut want = seeded.clone();
    let key = |mailbox: &str, i: usize| (mailbox.to_owned(), m[i].clone());
    let set = |want: &mut Model, mailbox: &str, i: usize, fl: &str| {
        want.get_mut(mailbox).expect("mailbox").insert(m[i].clone(), flags(fl));
    };
    // In the Maildir: m0 read (F → FS), m2 read (→ S), Work's m6 unflagged (FS → S), m1
    // deleted, and a new message delivered into INBOX/new.
    set_maildir_flags(&near.paths[&key("INBOX", 0)], &['F', 'S']);
    set(&mut want, "INBOX", 0, "\\Flagged \\Seen");
    set_maildir_flags(&near.paths[&key("INBOX", 2)], &['S']);
    set(&mut want, "INBOX", 2, "\\Seen");
    set_maildir_flags(&near.paths[&key("Work", 6)], &['S']);
    set(&mut want, "Work", 6, "\\Seen");
    std::fs::remove_file(&near.paths[&key("INBOX", 1)]).expect("rm");
    want.get_mut("INBOX").expect("INBOX").remove(&m[1]);
    let fresh = corpus(1, "from-the-maildir").remove(0);
    std::fs::write(maildir.join("INBOX/new/1796600000.M1P1.near"), lf(&fresh)).expect("write");
    want.get_mut("INBOX").expect("INBOX").insert(fresh.clone(), Flags::new());
    // A folder made in the Maildir below a level that is no folder ("Projects/2026"): mbsync
    // creates it on the server (CREATE; the server then lists "Projects" \Noselect) and
    // uploads its message.
    let project = corpus(1, "in a new folder").remove(0);
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join("Projects/2026").join(sub)).expect("mkdir");
    }
    let file = maildir.join("Projects/2026/cur/1796600001.M2P1.near:2,S");
    std::fs::write(file, lf(&project)).expect("write");
    want.insert("Projects/2026".into(), BTreeMap::from([(project.clone(), flags("\\Seen"))]));
    // On the server: m3 unanswered and flagged, m4 read, m5 expunged, Work's m7 undrafted.
    let uid = |i: usize, mailbox: &str| far.uids[&key(mailbox, i)].to_string();
    ops(
        &d,
        &[
            op(&["store", "INBOX", &uid(3, "INBOX"), "-FLAGS.SILENT", "\\Answered"]),
            op(&["store", "INBOX", &uid(3, "INBOX"), "+FLAGS.SILENT", "\\Flagged"]),
            op(&["store", "INBOX", &uid(4, "INBOX"), "+FLAGS", "\\Seen"]),
            op(&["delete_uid", "INBOX", &uid(5, "INBOX")]),
            op(&["store", "Work", &uid(7, "Work"), "FLAGS.SILENT", ""]),
        ],
    );
    set(&mut want, "INBOX", 3, "\\Seen \\Flagged");
    set(&mut want, "INBOX", 4, "\\Seen");
    want.get_mut("INBOX").expect("INBOX").remove(&m[5]);
    set(&mut want, "Work", 7, "");

    let commands = mbsync(&rc);
    assert!(commands.iter().any(|c| c.starts_with("APPEND")), "{commands:?}");
    assert!(commands.iter().any(|c| c.starts_with("CREATE")), "{commands:?}");
    let boxes = ["INBOX", "Work", "Projects/2026"];
    let near = maildir_view(&maildir, &boxes);
    let far = server_view(&d, &boxes, true);
    diff("Maildir after the second sync", &near.model, &want);
    diff("server after the second sync", &far.model, &want);

    // 3. Nothing left to do: a third sync sends no APPEND, STORE, EXPUNGE, CREATE nor any
    // fetch of a message, and changes nothing on either side (HIGHESTMODSEQ and UIDNEXT
    // included).
    let commands = mbsync(&rc);
    for c in &commands {
        let verb = c.to_ascii_uppercase();
        assert!(
            !["APPEND", "UID STORE", "STORE", "EXPUNGE", "UID EXPUNGE", "CREATE", "DELETE"]
                .iter()
                .any(|v| verb.starts_with(v))
                && !verb.contains("BODY"),
            "the third sync still sent {c:?}; all: {commands:?}"
        );
    }
    let near3 = maildir_view(&maildir, &boxes);
    let far3 = server_view(&d, &boxes, true);
    assert_eq!(near3.files, near.files, "the third sync changed the Maildir");
    assert_eq!(far3.raw, far.raw, "the third sync changed the server");
    d.stop();
    println!("mbsync: three syncs in {:?}", t0.elapsed());
}

/// mbsync's other way in: STARTTLS on the `imap` port, then AUTHENTICATE PLAIN (SASL-IR); one
/// full sync, byte for byte.
#[test]
fn mbsync_over_starttls_with_authenticate_plain() {
    if !have("mbsync", "isync") {
        return;
    }
    let t0 = Instant::now();
    let d = Dimed::start(&[ALICE], "");
    let tmp = tempfile::tempdir().expect("tempdir");
    let m = corpus(6, "starttls");
    let entries: Vec<(&str, &str, &[u8])> = m
        .iter()
        .enumerate()
        .map(|(i, b)| (if i < 4 { "INBOX" } else { "Sent" }, "\\Seen", b.as_slice()))
        .collect();
    let seeded = seed(&d, tmp.path(), &entries);
    let maildir = tmp.path().join("maildir");
    let commands = mbsync(&mbsyncrc(&d, tmp.path(), &maildir, true));
    assert_eq!(commands.first().map(String::as_str), Some("STARTTLS"), "{commands:?}");
    assert!(commands.iter().any(|c| c.starts_with("AUTHENTICATE PLAIN")), "{commands:?}");
    assert!(!commands.iter().any(|c| c.starts_with("LOGIN")), "{commands:?}");
    let near = maildir_view(&maildir, &["INBOX", "Sent"]);
    diff("Maildir after a sync over STARTTLS", &near.model, &seeded);
    d.stop();
    println!("mbsync: a sync over STARTTLS in {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------------------------
// curl.

/// curl's `scheme://HOST:port/path`, with HOST sent to loopback (`--resolve`) so that the
/// certificate's name is checked as usual.
fn curl(d: &Dimed, scheme: &str, port: u16, path: &str, extra: &[&str]) -> Vec<u8> {
    let o = run_ok(
        Command::new("curl")
            .args(["-q", "-sS", "--max-time", "30", "--cacert"])
            .arg(&d.cert)
            .arg("--resolve")
            .arg(format!("{HOST}:{port}:127.0.0.1"))
            .arg("-u")
            .arg(format!("{}:{}", ALICE.0, ALICE.1))
            .args(extra)
            .arg(format!("{scheme}://{HOST}:{port}/{path}")),
    );
    o.stdout
}

#[test]
fn curl_fetches_uploads_and_searches_over_imaps_and_starttls() {
    if !have("curl", "curl") {
        return;
    }
    let t0 = Instant::now();
    let d = Dimed::start(&[ALICE], "");
    let tmp = tempfile::tempdir().expect("tempdir");
    let m = corpus(3, "curl");
    seed(
        &d,
        tmp.path(),
        &[("INBOX", "", &m[0]), ("INBOX", "\\Flagged", &m[1]), ("INBOX", "", &m[2])],
    );
    let uids = server_view(&d, &["INBOX"], false).uids;
    let uid = |i: usize| uids[&("INBOX".to_owned(), m[i].clone())];

    // Implicit TLS, the host name checked against the certificate.
    let imaps = d.imaps.port();
    let got = curl(&d, "imaps", imaps, &format!("INBOX;UID={}", uid(2)), &[]);
    assert!(got == m[2], "imaps fetch differs:\n{}", String::from_utf8_lossy(&got));
    // The listing curl gets for the server's root.
    let list = curl(&d, "imaps", imaps, "", &[]);
    assert!(String::from_utf8_lossy(&list).contains("INBOX"), "{}", String::from_utf8_lossy(&list));

    // STARTTLS, required: curl refuses to go on in clear.
    let got = curl(&d, "imap", d.imap.port(), &format!("INBOX;UID={}", uid(1)), &["--ssl-reqd"]);
    assert!(got == m[1], "STARTTLS fetch differs:\n{}", String::from_utf8_lossy(&got));
    // curl's fetch is BODY[] (not PEEK): the two messages are now \Seen, the third untouched.
    let after = server_view(&d, &["INBOX"], false).model;
    assert_eq!(after["INBOX"][&m[2]], flags("\\Seen"));
    assert_eq!(after["INBOX"][&m[1]], flags("\\Flagged \\Seen"));
    assert_eq!(after["INBOX"][&m[0]], flags(""));

    // An upload (-T: APPEND (\Seen) with a synchronizing literal) and a search (SEARCH, by sequence
    // number) over STARTTLS: the message lands byte for byte.
    let up = corpus(1, "uploaded by curl").remove(0);
    let file = tmp.path().join("up.eml");
    std::fs::write(&file, &up).expect("write");
    let file = file.to_str().expect("utf-8");
    curl(&d, "imap", d.imap.port(), "INBOX", &["--ssl-reqd", "-T", file]);
    let inbox = server_view(&d, &["INBOX"], false);
    // (curl appends with the flag \Seen.)
    assert_eq!(inbox.model["INBOX"].get(&up), Some(&flags("\\Seen")), "the upload is not there");
    let found = curl(&d, "imaps", imaps, "INBOX?SUBJECT%20%22uploaded%20by%20curl%22", &[]);
    assert_eq!(String::from_utf8_lossy(&found).trim_end(), "* SEARCH 4");
    d.stop();
    println!("curl: five requests in {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------------------------
// offlineimap.

#[test]
fn offlineimap_full_fetch_then_an_upload() {
    if !have("offlineimap", "offlineimap3") {
        return;
    }
    let t0 = Instant::now();
    let d = Dimed::start(&[ALICE], "");
    let tmp = tempfile::tempdir().expect("tempdir");
    let m = corpus(7, "offlineimap");
    let seeded = seed(
        &d,
        tmp.path(),
        &[
            ("INBOX", "", &m[0]),
            ("INBOX", "\\Seen", &m[1]),
            ("INBOX", "\\Flagged \\Answered", &m[2]),
            ("INBOX", "", &m[3]),
            ("INBOX", "\\Seen", &m[4]),
            ("Archive 2026", "\\Seen \\Flagged", &m[5]),
            ("Skipped", "", &m[6]),
        ],
    );
    let boxes = ["INBOX", "Archive 2026"];
    let home = tmp.path().join("home");
    let maildir = tmp.path().join("maildir");
    std::fs::create_dir(&home).expect("mkdir");
    // offlineimap has no --resolve: its `pythonfile` (run at start) sends the certificate's
    // host name to loopback, so that the name is checked against the certificate as usual.
    let resolve = tmp.path().join("resolve.py");
    std::fs::write(
        &resolve,
        format!(
            "import socket\n_real = socket.getaddrinfo\n\
             def _loopback(host, *args, **kwargs):\n    \
             return _real('127.0.0.1' if host == '{HOST}' else host, *args, **kwargs)\n\
             socket.getaddrinfo = _loopback\n"
        ),
    )
    .expect("write");
    let rc = tmp.path().join("offlineimaprc");
    std::fs::write(
        &rc,
        format!(
            "[general]\naccounts = dime\nmetadata = {meta}\nui = basic\npythonfile = {resolve}\n\n\
             [Account dime]\nlocalrepository = local\nremoterepository = remote\n\n\
             [Repository local]\ntype = Maildir\nlocalfolders = {md}\n\n\
             [Repository remote]\ntype = IMAP\nremotehost = {HOST}\nremoteport = {port}\n\
             remoteuser = {user}\nremotepass = {pass}\nssl = yes\nsslcacertfile = {cert}\n\
             folderfilter = lambda folder: folder in ['INBOX', 'Archive 2026']\n",
            meta = tmp.path().join("meta").display(),
            resolve = resolve.display(),
            md = maildir.display(),
            port = d.imaps.port(),
            user = ALICE.0,
            pass = ALICE.1,
            cert = d.cert.display(),
        ),
    )
    .expect("write rc");
    let offlineimap = || {
        let o = run_ok(
            Command::new("offlineimap")
                .args(["-o", "-u", "basic", "-c"])
                .arg(&rc)
                .env("HOME", &home)
                .env("TMPDIR", tmp.path()),
        );
        let log =
            String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
        assert!(!log.contains("ERROR"), "offlineimap reported an error:\n{log}");
    };
    offlineimap();

    // Every message of the two filtered folders, byte for byte (offlineimap stores LF line
    // ends), with its flags; the folder left out by the filter is not there.
    let near = maildir_view(&maildir, &boxes);
    let mut want = seeded.clone();
    want.remove("Skipped");
    diff("Maildir after offlineimap", &near.model, &want);
    for ((mailbox, body), path) in &near.paths {
        assert_eq!(near.files[path], lf(body), "{mailbox}: {path:?} is not the server's message");
    }
    assert!(!maildir.join("Skipped").exists(), "the folder filter was not applied");
    // Nothing changed on the server (a fetch is BODY.PEEK).
    let all = ["INBOX", "Archive 2026", "Skipped"];
    diff("server after offlineimap", &server_view(&d, &all, false).model, &seeded);

    // Then the other way: a message delivered into the Maildir is uploaded (APPEND, its UID
    // from APPENDUID, so no X-OfflineIMAP header is added), a flag change is pushed (STORE);
    // a third run finds nothing to do on either side.
    let up = corpus(1, "uploaded").remove(0);
    std::fs::write(maildir.join("INBOX/new/1796600002.P2.near"), lf(&up)).expect("write");
    set_maildir_flags(&near.paths[&("INBOX".to_owned(), m[0].clone())], &['F', 'S']);
    offlineimap();
    let mut want = seeded.clone();
    let inbox = want.get_mut("INBOX").expect("INBOX");
    inbox.insert(up.clone(), Flags::new());
    inbox.insert(m[0].clone(), flags("\\Flagged \\Seen"));
    let far = server_view(&d, &all, false);
    diff("server after the upload", &far.model, &want);
    let near = maildir_view(&maildir, &boxes);
    want.remove("Skipped");
    diff("Maildir after the upload", &near.model, &want);
    offlineimap();
    assert_eq!(
        maildir_view(&maildir, &boxes).files,
        near.files,
        "the third run changed the Maildir"
    );
    assert_eq!(server_view(&d, &all, false).raw, far.raw, "the third run changed the server");
    d.stop();
    println!("offlineimap: a fetch, an upload, an idle run in {:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------------------------
// neomutt through tmux.

/// A tmux server on a private socket, killed on drop.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket);
        c
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&run_ok(self.cmd().args(["capture-pane", "-p"])).stdout)
            .into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        run_ok(self.cmd().arg("send-keys").args(keys));
    }

    /// Polls the screen until `what` is on it; fails (showing the screen) after 30 s.
    fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.contains(what) {
                return screen;
            }
            assert!(Instant::now() < deadline, "{what:?} never appeared; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Tmux {
    /// Waits (30 s at most) for the session to end: its program has exited.
    fn wait_gone(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while run(self.cmd().arg("has-session"), LIMIT).status.success() {
            assert!(Instant::now() < deadline, "still running:\n{}", self.screen());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = run(self.cmd().arg("kill-server"), Duration::from_secs(10));
    }
}

/// neomutt in a tmux session of its own (200×50, `TERM=xterm`, a private `HOME` and
/// `TMPDIR` under `dir`), logged in as alice on implicit TLS, showing the INBOX; `extra` ends
/// its muttrc. Its debug log (level 2: the IMAP commands) goes to `dir/neomutt-RUN.log0`.
fn neomutt(d: &Dimed, dir: &Path, run: &str, extra: &str) -> Tmux {
    let home = dir.join("home");
    let tmpdir = dir.join("tmp");
    std::fs::create_dir_all(&home).expect("mkdir");
    std::fs::create_dir_all(&tmpdir).expect("mkdir");
    let muttrc = home.join(format!("muttrc-{run}"));
    std::fs::write(
        &muttrc,
        format!(
            "# neomutt has no --resolve and SNI/host checks need the certificate's name: it dials\n\
             # 127.0.0.1 and skips only the host name check (ssl_verify_host), while the\n\
             # certificate itself must still chain to the one in ssl_ca_certificates_file.\n\
             set folder = \"imaps://{user}@127.0.0.1:{port}/\"\n\
             set spoolfile = \"+INBOX\"\n\
             set imap_pass = \"{pass}\"\n\
             set ssl_ca_certificates_file = \"{cert}\"\n\
             set ssl_verify_host = no\n\
             set header_cache = \"\"\n\
             set message_cachedir = \"\"\n\
             set imap_check_subscribed = no\n\
             set mail_check_stats = no\n\
             set sort = date\n\
             set delete = yes\n\
             set confirmappend = no\n\
             set imap_idle = yes\n\
             set timeout = 1\n\
             set mail_check = 1\n\
             {extra}\n",
            user = ALICE.0,
            port = d.imaps.port(),
            pass = ALICE.1,
            cert = d.cert.display(),
        ),
    )
    .expect("write muttrc");
    let tmux = Tmux { socket: dir.join(format!("tmux-{run}.sock")) };
    let log = dir.join(format!("neomutt-{run}.log"));
    run_ok(
        tmux.cmd()
            .args(["-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "50"])
            .arg(format!("neomutt -n -d 2 -l '{}' -F '{}'", log.display(), muttrc.display()))
            .env("HOME", &home)
            .env("TMPDIR", &tmpdir)
            .env("TERM", "xterm")
            .env_remove("TMUX"),
    );
    tmux
}

#[test]
fn neomutt_reads_a_canary_on_screen() {
    if !have("neomutt", "neomutt") || !have("tmux", "tmux") {
        return;
    }
    let t0 = Instant::now();
    let d = Dimed::start(&[ALICE], "");
    let tmp = tempfile::tempdir().expect("tempdir");
    let secret = canary();
    let with_canary = format!(
        "From: Bob Sender <bob@example.org>\r\nTo: Alice <alice@example.test>\r\n\
         Subject: the one to open\r\nDate: Mon, 7 Dec 2026 11:00:00 +0000\r\n\
         Message-ID: <open-{secret}@example.org>\r\n\r\nThe canary is {secret}-on-screen.\r\n"
    )
    .into_bytes();
    let others = corpus(4, "neomutt");
    let seeded = seed(
        &d,
        tmp.path(),
        &[
            ("INBOX", "", &others[0]),
            ("INBOX", "", &with_canary),
            ("INBOX", "\\Seen", &others[1]),
            ("INBOX", "", &others[2]),
            ("Work", "", &others[3]),
        ],
    );
    let tmux = neomutt(&d, tmp.path(), "1", "");
    // The index: four messages; the canary is in no subject, so not on screen yet.
    let index = tmux.wait_for("the one to open");
    assert!(!index.contains(&secret), "{index}");
    // Limit the index by a search on the server (=b: UID SEARCH BODY; the canary is in no
    // header neomutt has), open the one message left: the body shows the canary.
    tmux.keys(&["l"]);
    tmux.wait_for("Limit to messages");
    tmux.keys(&[&format!("=b {secret}"), "Enter"]);
    tmux.wait_for("Msgs:1/4");
    tmux.keys(&["Enter"]);
    let pager = tmux.wait_for(&format!("The canary is {secret}-on-screen."));
    assert!(pager.contains("Subject: the one to open"), "{pager}");
    // Back in the index, every message shown again: flag the message just read, save another
    // to Work (UID COPY, then \Deleted), delete a third, write the changes back ($, EXPUNGE):
    // the server ends up with the read message \Seen and \Flagged, the saved one in Work
    // only, the third gone.
    tmux.keys(&["i"]);
    tmux.wait_for("Msgs:1/4");
    tmux.keys(&["l"]);
    tmux.wait_for("Limit to messages");
    tmux.keys(&["C-u", "all", "Enter"]);
    tmux.wait_for("neomutt utf-8 1");
    tmux.keys(&["F", "/", "neomutt utf-8 1", "Enter", "s"]);
    tmux.wait_for("Save to mailbox");
    tmux.keys(&["C-u", "=Work", "Enter"]);
    tmux.keys(&["/", "neomutt attachment 2", "Enter", "d", "$"]);
    let mut want = seeded.clone();
    let inbox = want.get_mut("INBOX").expect("INBOX");
    inbox.insert(with_canary.clone(), flags("\\Seen \\Flagged"));
    inbox.remove(&others[1]);
    inbox.remove(&others[2]);
    want.get_mut("Work").expect("Work").insert(others[1].clone(), flags("\\Seen"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = server_view(&d, &["INBOX", "Work"], false).model;
        if now == want {
            break;
        }
        if Instant::now() > deadline {
            println!("{}", tmux.screen());
            diff("server after neomutt's changes", &now, &want);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Mail appended by another session reaches the open index (neomutt IDLEs: EXISTS).
    let live = corpus(1, "arrived while open").remove(0);
    let path = tmp.path().join("live.eml");
    std::fs::write(&path, &live).expect("write");
    let t = Instant::now();
    ops(&d, &[op(&["append", "INBOX", "", path.to_str().expect("utf-8")])]);
    tmux.wait_for("arrived while open plain 0");
    println!("neomutt: new mail on screen {:?} after the start of its APPEND", t.elapsed());
    drop(tmux);
    d.stop();
    println!("neomutt: canary on screen in {:?}", t0.elapsed());
}

/// neomutt's folder browser lists with `LIST "" "%"`, its browser of subscribed folders with
/// `LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"`: a mailbox below a level of hierarchy that is no
/// mailbox itself ("Parent/Child" without "Parent") is reached through that level, which the
/// server must list (\Noselect; \NonExistent with CHILDINFO). Before the fixes neither browser
/// showed "Parent/".
#[test]
fn neomutt_browses_into_a_nested_mailbox() {
    if !have("neomutt", "neomutt") || !have("tmux", "tmux") {
        return;
    }
    let t0 = Instant::now();
    let d = Dimed::start(&[ALICE], "");
    let tmp = tempfile::tempdir().expect("tempdir");
    let secret = canary();
    let nested = format!(
        "From: Bob Sender <bob@example.org>\r\nTo: Alice <alice@example.test>\r\n\
         Subject: the nested one\r\nMessage-ID: <nested-{secret}@example.org>\r\n\r\n\
         Nested canary {secret}.\r\n"
    )
    .into_bytes();
    let others = corpus(2, "neomutt");
    seed(
        &d,
        tmp.path(),
        &[("INBOX", "", &others[0]), ("Parent/Child", "", &nested), ("Hidden/Box", "", &others[1])],
    );
    ops(&d, &[op(&["unsubscribe", "Hidden/Box"])]);
    let tmux = neomutt(&d, tmp.path(), "1", "set imap_list_subscribed = yes");
    tmux.wait_for("neomutt plain 0");
    // Change folder, ask for the list, switch from the mailboxes to the server's subscribed
    // folders: "Parent/" (above the subscribed Parent/Child), not "Hidden/".
    tmux.keys(&["c"]);
    tmux.wait_for("Open mailbox");
    tmux.keys(&["?"]);
    tmux.wait_for("Mailboxes");
    tmux.keys(&["Tab"]);
    let subscribed = tmux.wait_for("Parent/");
    assert!(subscribed.contains("Subscribed ["), "{subscribed}");
    assert!(!subscribed.contains("Hidden/"), "{subscribed}");
    // Every folder (T): both.
    tmux.keys(&["T"]);
    let all = tmux.wait_for("Hidden/");
    assert!(all.contains("Parent/"), "{all}");
    tmux.keys(&["/", "Parent", "Enter", "Enter"]);
    tmux.wait_for("Child");
    tmux.keys(&["/", "Child", "Enter", "Enter"]);
    tmux.wait_for("the nested one");
    tmux.keys(&["Enter"]);
    tmux.wait_for(&format!("Nested canary {secret}."));
    drop(tmux);
    d.stop();
    println!("neomutt: nested mailbox browsed and read in {:?}", t0.elapsed());
}

/// neomutt with a header cache and QRESYNC (RFC 7162) reopens the INBOX from its cache: `UID
/// FETCH 1:n (FLAGS) (CHANGEDSINCE m VANISHED)` after `ENABLE QRESYNC` and a `SELECT ...
/// (CONDSTORE)`; the server's VANISHED (EARLIER) and changed flags must leave its index right:
/// the message expunged meanwhile gone, the one flagged meanwhile flagged, the new one there.
#[test]
fn neomutt_resyncs_its_header_cache_with_qresync() {
    if !have("neomutt", "neomutt") || !have("tmux", "tmux") {
        return;
    }
    let t0 = Instant::now();
    let d = Dimed::start(&[ALICE], "");
    let tmp = tempfile::tempdir().expect("tempdir");
    let m = corpus(5, "cached");
    let seeded = seed(
        &d,
        tmp.path(),
        &[
            ("INBOX", "", &m[0]),
            ("INBOX", "\\Seen", &m[1]),
            ("INBOX", "", &m[2]),
            ("INBOX", "", &m[3]),
        ],
    );
    let cache = tmp.path().join("cache");
    std::fs::create_dir(&cache).expect("mkdir");
    let extra = format!(
        "set header_cache = \"{c}/\"\nset imap_condstore = yes\nset imap_qresync = yes\n",
        c = cache.display()
    );
    let first = neomutt(&d, tmp.path(), "first", &extra);
    first.wait_for("cached alternative 3");
    first.keys(&["q"]);
    first.wait_gone();
    drop(first);

    let far = server_view(&d, &["INBOX"], false);
    let uid = |i: usize| far.uids[&("INBOX".to_owned(), m[i].clone())].to_string();
    let path = tmp.path().join("new.eml");
    std::fs::write(&path, &m[4]).expect("write");
    ops(
        &d,
        &[
            op(&["delete_uid", "INBOX", &uid(1)]),
            op(&["store", "INBOX", &uid(2), "+FLAGS.SILENT", "\\Flagged"]),
            op(&["append", "INBOX", "", path.to_str().expect("utf-8")]),
        ],
    );

    let second = neomutt(&d, tmp.path(), "second", &extra);
    let index = second.wait_for("cached large 4");
    let line = |subject: &str| index.lines().find(|l| l.contains(subject)).map(str::to_owned);
    assert!(line("cached utf-8 1").is_none(), "the expunged message is still listed:\n{index}");
    let flagged = line("cached attachment 2").expect("message 2 listed");
    assert!(flagged.contains('!'), "not shown flagged: {flagged:?}\n{index}");
    assert!(!line("cached plain 0").expect("message 0 listed").contains('!'), "{index}");
    second.keys(&["q"]);
    second.wait_gone();
    drop(second);
    let log = std::fs::read(tmp.path().join("neomutt-second.log0")).expect("neomutt's log");
    let log = String::from_utf8_lossy(&log);
    assert!(log.contains("(CHANGEDSINCE "), "neomutt did not resync from its cache:\n{log}");
    assert!(log.contains("Handling VANISHED"), "no VANISHED (EARLIER) handled:\n{log}");
    // Nothing else changed on the server but neomutt's own "Old" keyword.
    let mut want = seeded.clone();
    let inbox = want.get_mut("INBOX").expect("INBOX");
    inbox.remove(&m[1]);
    inbox.insert(m[2].clone(), flags("\\Flagged"));
    inbox.insert(m[4].clone(), Flags::new());
    let mut now = server_view(&d, &["INBOX"], false).model;
    for fl in now.get_mut("INBOX").expect("INBOX").values_mut() {
        fl.remove("Old");
    }
    diff("server after neomutt's resync", &now, &want);
    d.stop();
    println!("neomutt: QRESYNC from the header cache in {:?}", t0.elapsed());
}
