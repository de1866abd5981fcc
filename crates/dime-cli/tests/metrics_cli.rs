//! `dimed`'s Prometheus metrics (issue 25, `spec/dimed.md` §8): a `dimed serve` with
//! `[metrics] listen` answers `GET /metrics` with what it did: a message sent to itself counted
//! as delivered outbound and accepted inbound, its DMTP connection and its store commit, the
//! queue empty again; one to a full mailbox deferred on both sides and left queued, the queue's
//! depth and age telling it; a login with a wrong password; a `_dx` lookup whose DNS did not
//! answer. A public
//! address is refused without `allow_public`. `dimed` runs in a process of its own, so the
//! counts are this test's alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "metrics test password";
const DIME: &str = env!("CARGO_BIN_EXE_dime");
const DIMED: &str = env!("CARGO_BIN_EXE_dimed");

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run(bin: &str, args: &[&str], password: &str) -> Output {
    Command::new(bin)
        .args(args)
        .env("DIME_USER_PASSWORD", password)
        .env("DIME_ALLOW_WEAK_PASSWORD", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(bin: &str, args: &[&str]) -> String {
    let o = run(bin, args, PASSWORD);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// `dimed init` of a.test under `dir`, its `dimed.toml` given `extra` (TOML sections; a
/// `[dns]` in it replaces the empty one `dimed init` writes); the file's path.
fn init(dir: &Path, extra: &str) -> String {
    let d = dir.join("a");
    let listen = format!("127.0.0.1:{}", dime_testkit::free_port());
    ok(DIMED, &["init", "--domain", "a.test", "--listen", &listen, "--dir", s(&d)]);
    let conf = d.join("dimed.toml");
    let text = std::fs::read_to_string(&conf).unwrap();
    // An hour between attempts: a deferred entry stays queued.
    let mut text =
        text.replace("[outbound]\n", "[outbound]\ninterval_ms = 100\nretry_base_secs = 3600\n");
    if extra.contains("[dns]") {
        text = text.replacen("[dns]\n", "", 1);
    }
    std::fs::write(&conf, format!("{text}{extra}")).unwrap();
    s(&conf).to_owned()
}

/// The body of `GET /metrics` at `port`, as a scraper reads it.
fn scrape(port: u16) -> String {
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    body.to_owned()
}

/// The value of the sample `series` (name and labels as rendered) in `body`.
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Scrapes until the sample `series` is at least `at`; the body that showed it.
fn wait_for(port: u16, series: &str, at: f64) -> String {
    let t0 = Instant::now();
    loop {
        let body = scrape(port);
        if value(&body, series).is_some_and(|v| v >= at) {
            return body;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "{series} never {at}:\n{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_scrape_tells_deliveries_sessions_logins_commits_dns_proofs_and_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = dime_testkit::free_port();
    // A DNS server that does not answer: b.test's `_dx` lookup ends indeterminate.
    let dns = dime_testkit::free_port();
    let conf = init(
        dir.path(),
        &format!(
            "\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n\
             \n[dns]\nservers = [\"127.0.0.1:{dns}\"]\ntimeout_secs = 1\n"
        ),
    );
    for user in ["alice@a.test", "bob@a.test"] {
        ok(DIME, &["user", "add", "--config", &conf, "--address", user, "--recovery", "none"]);
    }
    // carol's mailbox has no room: a message to her is refused for now and waits queued.
    let full = ["--address", "carol@a.test", "--recovery", "none", "--quota-mib", "0"];
    ok(DIME, &[&["user", "add", "--config", &conf][..], &full].concat());
    let child = Command::new(DIMED)
        .args(["serve", "--config", &conf])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("dimed.log")).unwrap())
        .spawn()
        .unwrap();
    let _server = Server(child);
    let sock = s(&dir.path().join("a/data/dimed.sock")).to_owned();
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", metrics)).is_err()
        || std::os::unix::net::UnixStream::connect(dir.path().join("a/data/dimed-admin.sock"))
            .is_err()
    {
        assert!(t0.elapsed() < Duration::from_secs(20), "dimed did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Before anything: every series there, at 0.
    let body = scrape(metrics);
    for series in [
        r#"dime_outbound_deliveries_total{result="delivered"}"#,
        r#"dime_inbound_deliveries_total{result="accepted"}"#,
        r#"dime_dns_proofs_total{proof="bogus"}"#,
        r#"dime_dmap_connections_open{listener="imaps"}"#,
        "dime_queue_depth",
    ] {
        assert_eq!(value(&body, series), Some(0.0), "{series} in:\n{body}");
    }

    let send = |to: &str| {
        let args = ["send", "--socket", &sock, "--user", "alice@a.test", "--to", to];
        run(DIME, &[&args[..], &["--subject", "s", "--body", "b"]].concat(), PASSWORD)
    };
    let sent = send("bob@a.test");
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let body = wait_for(metrics, r#"dime_outbound_deliveries_total{result="delivered"}"#, 1.0);
    let want = [
        (r#"dime_outbound_deliveries_total{result="delivered"}"#, 1.0),
        (r#"dime_outbound_deliveries_total{result="deferred"}"#, 0.0),
        (r#"dime_outbound_deliveries_total{result="failed"}"#, 0.0),
        (r#"dime_outbound_deliveries_total{result="bounced"}"#, 0.0),
        (r#"dime_inbound_deliveries_total{result="accepted"}"#, 1.0),
        (r#"dime_inbound_deliveries_total{result="refused"}"#, 0.0),
        ("dime_queue_depth", 0.0),
        ("dime_queue_oldest_age_seconds", 0.0),
    ];
    for (series, v) in want {
        assert_eq!(value(&body, series), Some(v), "{series} in:\n{body}");
    }
    // Our own domain is delivered to our own listener over QUIC, one connection kept open.
    for (series, v) in [
        (r#"dime_dmtp_connections_total{transport="quic"}"#, 1.0),
        (r#"dime_dmtp_connections_total{transport="tls"}"#, 0.0),
        (r#"dime_dmtp_connections_open{transport="quic"}"#, 1.0),
    ] {
        assert_eq!(value(&body, series), Some(v), "{series} in:\n{body}");
    }
    // The delivery's batch commit: deliveries alone go through the committer.
    assert_eq!(value(&body, "dime_store_commit_seconds_count"), Some(1.0), "{body}");
    assert!(value(&body, "dime_store_commit_seconds_sum").unwrap() > 0.0, "{body}");
    assert_eq!(value(&body, r#"dime_store_commit_seconds_bucket{le="+Inf"}"#), Some(1.0));

    // Over quota: refused for now by the destination, deferred by the origin, left queued,
    // and older with each scrape.
    let sent = send("carol@a.test");
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let body = wait_for(metrics, r#"dime_outbound_deliveries_total{result="deferred"}"#, 1.0);
    for (series, v) in [
        (r#"dime_inbound_deliveries_total{result="deferred"}"#, 1.0),
        (r#"dime_inbound_deliveries_total{result="accepted"}"#, 1.0),
        ("dime_queue_depth", 1.0),
    ] {
        assert_eq!(value(&body, series), Some(v), "{series} in:\n{body}");
    }
    let body = wait_for(metrics, "dime_queue_oldest_age_seconds", 2.0);
    assert_eq!(value(&body, "dime_queue_depth"), Some(1.0), "{body}");

    // A wrong password on the submission socket.
    let args = ["inbox", "--socket", &sock, "--user", "bob@a.test"];
    assert!(!run(DIME, &args, "not the password").status.success());
    let body = scrape(metrics);
    assert_eq!(
        value(&body, r#"dime_login_failures_total{source="local",reason="password"}"#),
        Some(1.0),
        "{body}"
    );

    // A foreign domain whose DNS does not answer: one lookup, its proof indeterminate.
    let _ = send("carol@b.test");
    let body = scrape(metrics);
    let lookups = value(&body, r#"dime_dns_proofs_total{proof="indeterminate"}"#);
    assert_eq!(lookups, Some(1.0), "{body}");
    assert_eq!(value(&body, r#"dime_dns_proofs_total{proof="secure"}"#), Some(0.0), "{body}");

    // Anything but GET /metrics is answered with an error.
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", metrics)).unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
}

#[test]
fn a_public_metrics_address_is_refused_without_allow_public() {
    let dir = tempfile::tempdir().unwrap();
    let port = dime_testkit::free_port();
    let conf = init(dir.path(), &format!("\n[metrics]\nlisten = \"0.0.0.0:{port}\"\n"));
    let o = run(DIMED, &["serve", "--config", &conf], PASSWORD);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("metrics.listen") && err.contains("allow_public"), "{err}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "served: {err}");
}
