//! Zero-access after an IMAP session (issue 21, `spec/dmap.md` §5.2): a `dimed` process serves
//! a user over IMAPS to Python's imaplib, which creates and renames a mailbox, appends plain and
//! multipart messages, fetches them whole and in parts (rendered, read overlays and
//! verification records written), searches their text, sets a keyword and copies. Then, with
//! the server stopped, every file under its directory and its debug log is searched for each
//! canary: the subject, the body, an attachment, an author's local part, the mailbox names, the
//! keyword, the search terms and the password. None may be there in clear. The audit is first
//! run on a planted file, so that it can fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::audit;
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DOMAIN: &str = "example.test";
const USER: &str = "reader@example.test";
const PASSWORD: &str = "pw-canary-0c9e-imap password";
const SUBJECT: &str = "subject-canary-5e1f";
const BODY: &str = "body-canary-a93c";
const ATTACHMENT: &str = "attachment-canary-61d0";
const AUTHOR: &str = "author-canary-77d2";
const FOLDER: &str = "folder-canary-c4d1";
const RENAMED: &str = "renamed-canary-9f02";
const KEYWORD: &str = "kwcanary3b8e";
const SEARCHED: &str = "search-canary-e5a7";

fn free() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

const SCRIPT: &str = r#"
import imaplib, ssl, sys
port, cert, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
subject, body, att, author, folder, renamed, kw, searched = sys.argv[5:13]
ctx = ssl.create_default_context(cafile=cert)
ctx.check_hostname = False
m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
def ok(r):
    assert r[0] == "OK", r
    return r[1]
ok(m.login(user, pw))
ok(m.create(folder))
plain = (f"From: {author} <{author}@example.org>\r\nTo: {user}\r\nSubject: {subject}\r\n"
         f"Message-ID: <1@example.org>\r\n\r\nHello, {body}. Also {searched}.\r\n").encode()
multi = (f"From: {author}@example.org\r\nSubject: {subject} two\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
         f"Content-Type: text/plain\r\n\r\n{body} two\r\n--b\r\n"
         "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; "
         f"filename=a.bin\r\n\r\n{att}\r\n--b--\r\n").encode()
ok(m.append("INBOX", None, None, plain))
ok(m.append("INBOX", "(\\Flagged)", None, multi))
ok(m.append(folder, None, None, plain))
ok(m.select("INBOX"))
got = ok(m.fetch("1:2", "(BODY[] BODYSTRUCTURE ENVELOPE)"))
text = b"".join(p[1] if isinstance(p, tuple) else p for p in got)
for c in (subject, body, att, author):
    assert c.encode() in text, ("fetched", c)
got = ok(m.fetch("2", "(BODY.PEEK[2] BODY.PEEK[HEADER.FIELDS (SUBJECT)] BINARY.PEEK[1])"))
assert att.encode() in b"".join(p[1] if isinstance(p, tuple) else p for p in got)
assert ok(m.search(None, "BODY", searched))[0] == b"1"
assert ok(m.search(None, "SUBJECT", subject))[0] == b"1 2"
assert ok(m.search(None, "TEXT", f'"{body} two"'))[0] == b"2"
ok(m.store("1", "+FLAGS", f"({kw})"))
assert kw.encode() in b"".join(ok(m.fetch("1", "(FLAGS)")))
ok(m.copy("1:2", folder))
ok(m.rename(folder, renamed))
names = b"".join(ok(m.list()))
assert renamed.encode() in names and folder.encode() not in names, names
ok(m.status(renamed, "(MESSAGES SIZE)"))
m.logout()
print("session ok")
"#;

#[test]
fn an_imap_session_leaves_no_canary_in_the_data_dir_or_the_log() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("d");
    let (listen, imaps, imap) = (free(), free(), free());
    let o = Command::new(env!("CARGO_BIN_EXE_dimed"))
        .args(["init", "--domain", DOMAIN, "--host", "mx.example.test", "--listen"])
        .arg(listen.to_string())
        .arg("--imaps")
        .arg(imaps.to_string())
        .arg("--imap")
        .arg(imap.to_string())
        .arg("--dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "dimed init: {}", String::from_utf8_lossy(&o.stderr));
    let conf = dir.join("config");
    let o = Command::new(env!("CARGO_BIN_EXE_dime"))
        .args(["user", "add", "--data-dir"])
        .arg(dir.join("data"))
        .arg("--config-dir")
        .arg(&conf)
        .args(["--address", USER, "--org-key"])
        .arg(conf.join("org.key"))
        .arg("--passphrase-file")
        .arg(conf.join("org.pass"))
        .args(["--recovery", "none"])
        .env("DIME_USER_PASSWORD", PASSWORD)
        .env("DIME_ALLOW_WEAK_PASSWORD", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "dime user add: {}", String::from_utf8_lossy(&o.stderr));

    let log = root.path().join("dimed.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dimed"))
        .arg("serve")
        .arg("--config")
        .arg(dir.join("dimed.toml"))
        .env("DIMED_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while std::net::TcpStream::connect(imaps).is_err() {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("dimed exited {st}: {}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "dimed did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(imaps.port().to_string())
        .arg(conf.join("tls.crt"))
        .args([USER, PASSWORD, SUBJECT, BODY, ATTACHMENT, AUTHOR, FOLDER, RENAMED, KEYWORD])
        .arg(SEARCHED)
        .output()
        .expect("python3 runs");
    let stopped = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    assert!(stopped.is_ok_and(|s| s.success()));
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(t0.elapsed() < Duration::from_secs(20), "dimed did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        o.status.success(),
        "the IMAP session failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("dmap") || log_text.contains("imap"), "the log saw the session");

    // The audit finds a planted canary.
    let planted = root.path().join("planted");
    std::fs::create_dir_all(&planted).unwrap();
    for i in 0..6 {
        std::fs::write(planted.join(format!("f{i}")), format!("x{i}")).unwrap();
    }
    std::fs::write(planted.join("f2"), format!("..{KEYWORD}..")).unwrap();
    let found = std::panic::catch_unwind(|| audit("planted", &[&planted], &[], &[KEYWORD]));
    assert!(found.is_err(), "the audit missed a planted canary");

    audit(
        "dimed after an IMAP session",
        &[&dir],
        &[&log],
        &[SUBJECT, BODY, ATTACHMENT, AUTHOR, FOLDER, RENAMED, KEYWORD, SEARCHED, PASSWORD],
    );
}
