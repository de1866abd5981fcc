//! The operator's hand on the outbound queue (issue 25): `dimed queue hold|release|retry|
//! flush|delete` act on the running server's queue; a deletion bounces to the author unless
//! `--silent`. The recipient's mailbox has no room (a quota of 0), so every attempt is refused
//! for now and the entry waits deferred. (An entry under way, listed in flight and not to be
//! held: `dime-server`'s `tests/admin.rs`, on a lease taken as the worker takes it.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "queue test password";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("DIME_USER_PASSWORD", PASSWORD)
        .env("DIME_ALLOW_WEAK_PASSWORD", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(bin: &str, args: &[&str]) -> String {
    let o = run(bin, args);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn err(bin: &str, args: &[&str]) -> String {
    let o = run(bin, args);
    assert!(!o.status.success(), "{args:?} succeeded: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8(o.stderr).unwrap()
}

const DIME: &str = env!("CARGO_BIN_EXE_dime");
const DIMED: &str = env!("CARGO_BIN_EXE_dimed");

struct Server {
    child: Child,
    conf: String,
    sock: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The queue's one entry `id`, as `dimed queue --json` lists it.
    fn entry(&self, id: u64) -> Option<serde_json::Value> {
        let out = ok(DIMED, &["queue", "--json", "--config", &self.conf]);
        let all: serde_json::Value = serde_json::from_str(&out).unwrap();
        all.as_array().unwrap().iter().find(|e| e["queue_id"] == id).cloned()
    }

    /// Waits until `f` holds of entry `id`.
    fn wait(
        &self,
        id: u64,
        what: &str,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let t0 = Instant::now();
        loop {
            if let Some(e) = self.entry(id).filter(|e| f(e)) {
                return e;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "entry {id} never {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn send(&self) -> u64 {
        let out = ok(
            DIME,
            &[
                "send",
                "--socket",
                &self.sock,
                "--user",
                "alice@a.test",
                "--to",
                "bob@a.test",
                "--subject",
                "s",
                "--body",
                "b",
            ],
        );
        out.trim().strip_prefix("queued as ").unwrap().parse().unwrap()
    }
}

fn start(dir: &Path) -> Server {
    let d = dir.join("a");
    let listen = format!("127.0.0.1:{}", dime_testkit::free_port());
    ok(DIMED, &["init", "--domain", "a.test", "--listen", &listen, "--dir", s(&d)]);
    let conf = d.join("dimed.toml");
    let text = std::fs::read_to_string(&conf).unwrap();
    // An hour between attempts: only the operator retries.
    let text =
        text.replace("[outbound]\n", "[outbound]\nretry_base_secs = 3600\ninterval_ms = 100\n");
    std::fs::write(&conf, text).unwrap();
    let conf = s(&conf).to_owned();
    ok(
        DIME,
        &["user", "add", "--config", &conf, "--address", "alice@a.test", "--recovery", "none"],
    );
    let full = ["--address", "bob@a.test", "--recovery", "none", "--quota-mib", "0"];
    ok(DIME, &[&["user", "add", "--config", &conf][..], &full].concat());
    let child = Command::new(DIMED)
        .args(["serve", "--config", &conf])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("dimed.log")).unwrap())
        .spawn()
        .unwrap();
    let sock = s(&d.join("data/dimed.sock")).to_owned();
    let admin = d.join("data/dimed-admin.sock");
    let t0 = Instant::now();
    while std::os::unix::net::UnixStream::connect(&admin).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(20), "dimed did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, conf, sock }
}

#[test]
fn the_operator_holds_retries_flushes_and_deletes_queue_entries() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path());
    let conf = srv.conf.clone();

    let id = srv.send();
    let e =
        srv.wait(id, "deferred", |e| e["in_flight"] == false && e["status"]["state"] == "deferred");
    assert_eq!(e["attempts"], 1);

    // Held: listed so, and not tried by a flush; released, then retried at once.
    let id_text = id.to_string();
    let id_s = id_text.as_str();
    assert!(ok(DIMED, &["queue", "hold", id_s, "--config", &conf]).contains("held"));
    let listing = ok(DIMED, &["queue", "--config", &conf]);
    assert!(listing.contains("held") && listing.contains("until released"), "{listing}");
    assert_eq!(ok(DIMED, &["queue", "flush", "--config", &conf]), "0 entries due now\n");
    ok(DIMED, &["queue", "release", id_s, "--config", &conf]);
    let e = err(DIMED, &["queue", "release", id_s, "--config", &conf]);
    assert!(e.contains("not held"), "{e}");
    ok(DIMED, &["queue", "retry", id_s, "--config", &conf]);
    srv.wait(id, "tried again", |e| e["attempts"] == 2 && e["status"]["state"] == "deferred");
    // Flush: the deferred entry is due at once and tried a third time.
    assert_eq!(ok(DIMED, &["queue", "flush", "--config", &conf]), "1 entries due now\n");
    srv.wait(id, "tried a third time", |e| {
        e["attempts"] == 3 && e["status"]["state"] == "deferred"
    });

    // Deleted: the author gets a bounce, and the status says why.
    let out = ok(DIMED, &["queue", "delete", id_s, "--config", &conf]);
    assert_eq!(out, format!("entry {id} deleted; its author got a bounce\n"));
    assert!(srv.entry(id).is_none());
    let status = ok(DIME, &["status", id_s, "--socket", &srv.sock, "--user", "alice@a.test"]);
    assert!(status.contains("bounced") && status.contains("deleted by the operator"), "{status}");
    let inbox = ok(DIME, &["inbox", "--socket", &srv.sock, "--user", "alice@a.test"]);
    assert_eq!(inbox.lines().filter(|l| l.contains("deliver")).count(), 1, "{inbox}");

    // --silent: no bounce, the status reads failed.
    let id2 = srv.send();
    srv.wait(id2, "deferred", |e| e["in_flight"] == false && e["status"]["state"] == "deferred");
    let id2s = id2.to_string();
    let out = ok(DIMED, &["queue", "delete", &id2s, "--silent", "--config", &conf]);
    assert!(out.contains("no bounce"), "{out}");
    let status = ok(DIME, &["status", &id2s, "--socket", &srv.sock, "--user", "alice@a.test"]);
    assert!(status.contains("failed") && status.contains("deleted by the operator"), "{status}");
    let inbox2 = ok(DIME, &["inbox", "--socket", &srv.sock, "--user", "alice@a.test"]);
    assert_eq!(inbox2, inbox, "no second bounce");
    let e = err(DIMED, &["queue", "retry", "99", "--config", &conf]);
    assert!(e.contains("no such queue entry"), "{e}");
}

/// `dime send --message-id` is idempotent (issue 25): the same Message-ID again answers the
/// first queue id and queues nothing; `--json` answers one object; a message over the
/// submission socket's 16 MiB is refused by the client before it connects.
#[test]
fn send_with_a_message_id_queues_once_and_an_oversized_message_never_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path());
    let send = |extra: &[&str]| {
        let base = ["send", "--socket", &srv.sock, "--user", "alice@a.test", "--to"];
        let rest = ["alice@a.test", "--subject", "once", "--body", "b", "--json"];
        run(DIME, &[&base[..], &rest, extra].concat())
    };
    let json = |o: &Output| -> serde_json::Value {
        serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{o:?}"))
    };
    let first = send(&["--message-id", "<k1-3e9a@client.example>"]);
    assert!(first.status.success(), "{first:?}");
    let id = json(&first)["queue_id"].as_u64().unwrap();
    assert_eq!(json(&first), serde_json::json!({"queue_id": id, "duplicate": false}));
    let again = send(&["--message-id", "<k1-3e9a@client.example>"]);
    assert_eq!(json(&again), serde_json::json!({"queue_id": id, "duplicate": true}));
    let other = send(&["--message-id", "<k2-3e9a@client.example>"]);
    assert_eq!(json(&other)["queue_id"], id + 1);
    let t0 = Instant::now();
    loop {
        let inbox = ok(DIME, &["inbox", "--json", "--socket", &srv.sock, "--user", "alice@a.test"]);
        let n =
            serde_json::from_str::<serde_json::Value>(&inbox).unwrap().as_array().unwrap().len();
        if n == 2 {
            break;
        }
        assert!(n < 2, "a retry was delivered twice");
        assert!(t0.elapsed() < Duration::from_secs(30), "not delivered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let bad = send(&["--message-id", "no-brackets@client.example"]);
    assert!(!bad.status.success());
    assert!(json(&bad)["error"].as_str().unwrap().contains("header Message-ID"), "{bad:?}");

    // 16 MiB and one octet of body: refused before connecting (no socket is there).
    let big = "x".repeat(16 * 1024 * 1024 + 1);
    let mut child = Command::new(DIME)
        .args(["send", "--json", "--socket", "/nonexistent/dimed.sock", "--user", "a@a.test"])
        .args(["--to", "b@a.test"])
        .env("DIME_USER_PASSWORD", PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The body from standard input (an argument that long is over the system's limit).
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), big.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    let v = json(&o);
    assert_eq!(v["class"], "too-large", "{v}");
    assert!(v["error"].as_str().unwrap().contains("limit of 16777216 octets"), "{v}");
}
