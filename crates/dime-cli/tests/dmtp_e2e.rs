//! End to end (issue 6): two `dimed` processes, `a.test` on 127.0.0.2 and `b.test` on
//! 127.0.0.3, their `_dx` records in DNSSEC-signed zones served by knotd (the interop-tests
//! fixture). A user at a.test sends to b.test over QUIC, then (a.test restarted with TLS
//! only) over TLS on TCP; the mail lands sealed in b.test's store and the recipient opens and
//! verifies it through b.test's submission socket. A message to a mailbox over its quota
//! waits deferred in a.test's queue, which its author (`dime status`) and the operator
//! (`dimed queue`) see; the author, and no other user of a.test,
//! sees it delivered with b.test's transaction id (`dime status`). Then the canary audit: the origin's data
//! and logs never hold the recipient's local part; the destination's never hold the author's
//! local part, the subject or the body.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::audit;
use dime_interop_tests::knot::{Knot, Zone, ZoneKind};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const AUTHOR: &str = "author-canary-41c2";
const RECIPIENT: &str = "rcpt-canary-7f3a9";
const SUBJECT: &str = "subject-canary-90be";
const BODY: &str = "body-canary-d13f";
const PASSWORD: &str = "e2e password";
/// Another user of a.test.
const NEIGHBOUR: &str = "neighbour";
/// A user of b.test whose mailbox has no room (a quota of 0).
const FULL: &str = "full";

fn free_port(ip: Ipv4Addr) -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind((ip, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on {ip}");
}

fn dime(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dime"))
        .args(args)
        .env("DIME_USER_PASSWORD", PASSWORD)
        .env("DIME_ALLOW_WEAK_PASSWORD", "1")
        .output()
        .expect("run dime")
}

fn ok(args: &[&str]) -> String {
    let o = dime(args);
    assert!(o.status.success(), "dime {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// One domain's directory, created by `dimed init`.
struct Domain {
    dir: PathBuf,
    name: &'static str,
    addr: SocketAddr,
}

impl Domain {
    fn init(root: &Path, name: &'static str, ip: Ipv4Addr) -> Domain {
        let dir = root.join(name);
        let addr = SocketAddr::from((ip, free_port(ip)));
        let o = Command::new(env!("CARGO_BIN_EXE_dimed"))
            .args(["init", "--domain", name, "--host", &format!("mx.{name}"), "--listen"])
            .arg(addr.to_string())
            .arg("--dir")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "dimed init: {}", String::from_utf8_lossy(&o.stderr));
        Domain { dir, name, addr }
    }

    fn record(&self) -> String {
        std::fs::read_to_string(self.dir.join("config/dx-record.txt")).unwrap().trim().to_owned()
    }

    fn zone(&self) -> Zone {
        let label = self.name.trim_end_matches(".test");
        Zone::new(label, ZoneKind::Signed)
            .dx(&self.record())
            .record(&format!("mx 300 IN A {}", self.addr.ip()))
    }

    fn socket(&self) -> String {
        self.dir.join("data/dimed.sock").display().to_string()
    }

    /// Points the resolver at knotd and sets the transports.
    fn configure(&self, knot: &Knot, transports: &str) {
        let path = self.dir.join("dimed.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let base = text.split("[dns]").next().unwrap().to_owned();
        let text = format!(
            "{base}[dns]\nservers = [\"{}\"]\ntrust_anchor = \"{}\"\ntimeout_secs = 2\nstrict = true\n\n\
             [outbound]\ntransports = \"{transports}\"\ninterval_ms = 200\nretry_base_secs = 1\n",
            knot.addr,
            knot.anchor_dnskey.display()
        );
        std::fs::write(path, text).unwrap();
    }

    fn add_user(&self, local: &str, quota_mib: u64) {
        let conf = self.dir.join("config");
        let quota = quota_mib.to_string();
        ok(&[
            "user",
            "add",
            "--data-dir",
            self.dir.join("data").to_str().unwrap(),
            "--config-dir",
            conf.to_str().unwrap(),
            "--address",
            &format!("{local}@{}", self.name),
            "--org-key",
            conf.join("org.key").to_str().unwrap(),
            "--passphrase-file",
            conf.join("org.pass").to_str().unwrap(),
            "--recovery",
            "none",
            "--quota-mib",
            &quota,
        ]);
    }

    fn start(&self, log_name: &str) -> Server {
        let log = self.dir.parent().unwrap().join(log_name);
        let child = Command::new(env!("CARGO_BIN_EXE_dimed"))
            .arg("serve")
            .arg("--config")
            .arg(self.dir.join("dimed.toml"))
            .env("DIMED_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut s = Server { child, log };
        let t0 = Instant::now();
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("dimed {} exited {st}: {}", self.name, s.log_text());
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "dimed {} did not start", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }
}

/// A running `dimed`, stopped (SIGTERM, then SIGKILL) when dropped.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// `dime send` through `from`'s submission socket; returns its output.
fn send(from: &Domain, user: &str, to: &str, subject: &str, body: &str) -> String {
    ok(&[
        "send",
        "--socket",
        &from.socket(),
        "--user",
        user,
        "--to",
        to,
        "--subject",
        subject,
        "--body",
        body,
    ])
}

/// `dime read UID --json` through `b`'s submission socket.
fn read_json(b: &Domain, user: &str, uid: &str) -> serde_json::Value {
    let out = ok(&["read", uid, "--socket", &b.socket(), "--user", user, "--json"]);
    serde_json::from_str(out.trim()).unwrap()
}

/// `dime status QUEUE_ID --json` through `a`'s submission socket, polled until the entry's
/// state is final (the origin records an outcome after the delivery ends).
fn final_status(a: &Domain, user: &str, queue_id: &str) -> serde_json::Value {
    let t0 = Instant::now();
    loop {
        let out = ok(&["status", queue_id, "--socket", &a.socket(), "--user", user, "--json"]);
        let s: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        if !matches!(s["state"].as_str(), Some("queued" | "deferred")) {
            return s;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "not final in 30 s: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `dimed queue` of `a`'s running server (JSON or text).
fn dimed_queue(a: &Domain, json: bool) -> String {
    let config = a.dir.join("dimed.toml");
    let mut args = vec!["queue", "--config", config.to_str().unwrap()];
    if json {
        args.push("--json");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_dimed")).args(&args).output().unwrap();
    assert!(o.status.success(), "dimed queue: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// The entry `queue_id` of `a`'s queue, polled until its status is deferred.
fn deferred_entry(a: &Domain, queue_id: u64) -> serde_json::Value {
    let t0 = Instant::now();
    loop {
        let entries: Vec<serde_json::Value> =
            serde_json::from_str(dimed_queue(a, true).trim()).unwrap();
        let entry = entries.into_iter().find(|e| e["queue_id"] == queue_id);
        if let Some(e) = entry.filter(|e| e["status"]["state"] == "deferred") {
            return e;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "entry {queue_id} not deferred");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn inbox(b: &Domain, user: &str) -> Vec<serde_json::Value> {
    let out = ok(&["inbox", "--socket", &b.socket(), "--user", user, "--json"]);
    serde_json::from_str(out.trim()).unwrap()
}

fn wait_for_messages(
    b: &Domain,
    user: &str,
    n: usize,
    servers: &[&Server],
) -> Vec<serde_json::Value> {
    let t0 = Instant::now();
    loop {
        let msgs = inbox(b, user);
        if msgs.len() >= n {
            return msgs;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let logs: Vec<String> = servers.iter().map(|s| s.log_text()).collect();
            panic!("{n} message(s) did not arrive; logs:\n{}", logs.join("\n-----\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every file under `dir` and the `logs`, searched for each needle (as bytes).
#[test]
fn two_dimed_processes_exchange_layered_mail_over_quic_and_tls() {
    let root = tempfile::tempdir().unwrap();
    let a = Domain::init(root.path(), "a.test", Ipv4Addr::new(127, 0, 0, 2));
    let b = Domain::init(root.path(), "b.test", Ipv4Addr::new(127, 0, 0, 3));
    // Domains whose keys cannot be found, each for its own reason (issue 25): a bogus zone
    // (its signatures altered), an unsigned one (a.test is strict), and one not in DNS.
    let bogus = Zone::new("bogus", ZoneKind::TamperedRrsig).dx(&b.record());
    let plain = Zone::new("plain", ZoneKind::Unsigned).dx(&b.record());
    let knot = Knot::start(&[a.zone(), b.zone(), bogus, plain]);
    a.configure(&knot, "quic");
    b.configure(&knot, "quic-then-tls");
    a.add_user(AUTHOR, 1024);
    a.add_user(NEIGHBOUR, 1024);
    b.add_user(RECIPIENT, 1024);
    b.add_user(FULL, 0);
    let (author, recipient) = (format!("{AUTHOR}@a.test"), format!("{RECIPIENT}@b.test"));

    // Over QUIC.
    let sa = a.start("a-quic.log");
    let sb = b.start("b.log");
    let sent =
        send(&a, &author, &recipient, &format!("{SUBJECT} one"), &format!("{BODY} over quic"));
    assert!(sent.starts_with("queued as "), "{sent}");
    let msgs = wait_for_messages(&b, &recipient, 1, &[&sa, &sb]);
    assert_eq!(msgs[0]["from"], author.as_str());
    assert_eq!(msgs[0]["verified"], true, "{msgs:?}");
    assert_eq!(msgs[0]["subject"], format!("{SUBJECT} one").as_str());
    let uid = msgs[0]["uid"].as_u64().unwrap().to_string();
    let read = read_json(&b, &recipient, &uid);
    assert_eq!(read["body"], format!("{BODY} over quic").as_str());
    assert_eq!(read["kind"], "authored");
    assert_eq!(read["origin"], "a.test");
    assert_eq!(read["to"], recipient.as_str());
    assert_eq!(read["signatures"]["origin"], "verified", "{read}");
    assert_eq!(read["warnings"], serde_json::json!([]), "{read}");
    assert!(sa.log_text().contains("delivered destination=b.test"), "{}", sa.log_text());

    // The author sees it delivered, with the transaction id b.test gave it; another user of
    // a.test gets the answer of an unknown entry.
    let queue_id = sent.trim().strip_prefix("queued as ").unwrap();
    let status = final_status(&a, &author, queue_id);
    assert_eq!(status["state"], "delivered", "{status}");
    assert_eq!(status["destination"], "b.test", "{status}");
    assert_eq!(status["attempts"], 1, "{status}");
    let txid = status["txid"].as_str().unwrap();
    assert!(sb.log_text().contains(&format!("message stored origin=a.test txid={txid}")));
    let neighbour = format!("{NEIGHBOUR}@a.test");
    for id in [queue_id, "999"] {
        let o = dime(&["status", id, "--socket", &a.socket(), "--user", &neighbour]);
        assert!(!o.status.success());
        assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "error: no such queued message");
    }
    sa.stop();

    // Again over TLS on TCP only.
    a.configure(&knot, "tls");
    let sa = a.start("a-tls.log");
    // Keys not found: not sent, and each says why (issue 25).
    let mut reasons = Vec::new();
    for (to, why) in [
        ("x@bogus.test", "bogus dnssec answer for _dx.bogus.test"),
        ("x@plain.test", "unauthenticated (insecure, ca-tls refused locally"),
        ("x@nowhere.test", "not a dime domain"),
    ] {
        let args = ["send", "--socket", &a.socket(), "--user", &author, "--to", to, "--body", "b"];
        let o = dime(&args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "{to}: {err}");
        assert!(err.starts_with(&format!("error: not sent: the keys of {to} cannot be found (")));
        assert!(err.contains(why) && !err.contains("defer"), "{to}: {err}");
        reasons.push(err);
    }
    assert!(reasons[0].ends_with("; it may work later\n"), "{}", reasons[0]);
    // First to a mailbox over its quota: b.test answers 450, and the message waits in
    // a.test's queue, deferred, where its author and the operator see it.
    let full = format!("{FULL}@b.test");
    let sent = send(&a, &author, &full, "for a full mailbox", "it waits");
    let waiting: u64 = sent.trim().strip_prefix("queued as ").unwrap().parse().unwrap();
    let entry = deferred_entry(&a, waiting);
    assert_eq!(entry["status"]["destination"], "b.test", "{entry}");
    assert!(entry["attempts"].as_u64().unwrap() >= 1, "{entry}");
    let quota_reason = entry["status"]["reason"].as_str().unwrap().to_owned();
    assert!(
        quota_reason.contains("refused by the peer with 450 \"temporarily unavailable\""),
        "{entry}"
    );
    assert!(entry["due"].as_u64() >= entry["status"]["updated"].as_u64(), "{entry}");
    let status = ok(&["status", &waiting.to_string(), "--socket", &a.socket(), "--user", &author]);
    assert!(status.starts_with(&format!("{waiting} to b.test: deferred\n")), "{status}");
    assert!(sb.log_text().contains("recipient over quota"), "{}", sb.log_text());
    // Then to the recipient, delivered; the full mailbox's message is still waiting.
    send(&a, &author, &recipient, &format!("{SUBJECT} two"), &format!("{BODY} over tls"));
    let msgs = wait_for_messages(&b, &recipient, 2, &[&sa, &sb]);
    let second = msgs.iter().find(|m| m["subject"] == format!("{SUBJECT} two").as_str()).unwrap();
    assert_eq!(second["verified"], true);
    let uid = second["uid"].as_u64().unwrap().to_string();
    let read = read_json(&b, &recipient, &uid);
    assert_eq!(read["body"], format!("{BODY} over tls").as_str());
    assert!(sa.log_text().contains("delivered destination=b.test"), "{}", sa.log_text());
    let listing = dimed_queue(&a, false);
    assert!(listing.contains(&format!("{waiting}  deferred")), "{listing}");
    assert!(listing.contains("b.test") && listing.ends_with("\n1 entries\n"), "{listing}");
    assert!(!listing.contains(RECIPIENT) && !listing.contains(FULL), "{listing}");

    // A wrong password reads nothing.
    let o = Command::new(env!("CARGO_BIN_EXE_dime"))
        .args(["inbox", "--socket", &b.socket(), "--user", &recipient])
        .env("DIME_USER_PASSWORD", "not the password")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("login failed"));

    // b.test down: the waiting message, retried at once by the operator, now waits for
    // another reason, and its status says so, not as the 450 did.
    sb.stop();
    let conf = a.dir.join("dimed.toml");
    let o = Command::new(env!("CARGO_BIN_EXE_dimed"))
        .args(["queue", "retry", &waiting.to_string(), "--config", conf.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t0 = Instant::now();
    let down_reason = loop {
        let entry = deferred_entry(&a, waiting);
        let r = entry["status"]["reason"].as_str().unwrap().to_owned();
        if r != quota_reason {
            break r;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "not retried: {entry}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(down_reason.contains("Connection refused"), "{down_reason}");
    assert!(!down_reason.contains("450"), "{down_reason}");

    let (a_log_quic, a_log_tls) = (root.path().join("a-quic.log"), root.path().join("a-tls.log"));
    let b_log = root.path().join("b.log");
    sa.stop();

    // Canary audit: the origin never holds the recipient's local part; the destination
    // never holds the author's local part, the subject or the body.
    // The audit finds a planted canary (it can fail).
    let planted = root.path().join("planted");
    std::fs::create_dir_all(planted.join("d")).unwrap();
    for i in 0..6 {
        std::fs::write(planted.join(format!("d/f{i}")), format!("x{i}")).unwrap();
    }
    std::fs::write(planted.join("d/f3"), format!("...{RECIPIENT}...")).unwrap();
    let found = std::panic::catch_unwind(|| audit("planted", &[&planted], &[], &[RECIPIENT]));
    assert!(found.is_err(), "the audit missed a planted canary");
    audit("origin a.test", &[&a.dir], &[&a_log_quic, &a_log_tls], &[RECIPIENT]);
    audit("destination b.test", &[&b.dir], &[&b_log], &[AUTHOR, SUBJECT, BODY]);
}
