//! The doctor (issue 25, `spec/dimed.md` §7): `dimed doctor --config dimed.toml` and
//! `dime doctor DOMAIN` against knotd serving the domain's zone on loopback (the interop-tests
//! fixture), with `dimed init`'s domain and, where the hosts must answer, `dimed serve`: a good
//! domain (every line ok, exit 0, also as JSON), a stale pin, an unsigned zone (a warning, a
//! failure under `dns.strict`, never "bogus"), a bogus zone, a host that does not answer and a
//! resolver that does not validate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use dime_interop_tests::knot::{Knot, Zone, ZoneKind};
use dime_signet::record::{Record, TlsPin, check_tls};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A domain made by `dimed init` under a temporary directory.
struct Domain {
    _root: tempfile::TempDir,
    dir: PathBuf,
    name: &'static str,
    addr: SocketAddr,
}

impl Domain {
    fn init(name: &'static str) -> Domain {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(name);
        let addr = SocketAddr::from(([127, 0, 0, 1], dime_testkit::free_port()));
        init_dir(&dir, name, addr);
        Domain { _root: root, dir, name, addr }
    }

    fn config(&self) -> PathBuf {
        self.dir.join("dimed.toml")
    }

    fn record(&self) -> String {
        std::fs::read_to_string(self.dir.join("config/dx-record.txt")).unwrap().trim().to_owned()
    }

    /// Its zone: the record of `dimed init` and the delivery host's address.
    fn zone(&self, kind: ZoneKind) -> Zone {
        Zone::new(self.name.trim_end_matches(".test"), kind)
            .dx(&self.record())
            .record(&format!("mx 300 IN A {}", self.addr.ip()))
    }

    /// Points the resolver at knotd (`extra`: more `[dns]` lines).
    fn configure(&self, knot: &Knot, anchor: &Path, extra: &str) {
        let text = std::fs::read_to_string(self.config()).unwrap();
        let base = text.split("[dns]").next().unwrap().to_owned();
        let text = format!(
            "{base}[dns]\nservers = [\"{}\"]\ntrust_anchor = \"{}\"\ntimeout_secs = 2\n{extra}\n\n\
             [outbound]\ntransports = \"quic-then-tls\"\n",
            knot.addr,
            anchor.display()
        );
        std::fs::write(self.config(), text).unwrap();
    }

    fn start(&self) -> Server {
        let log = self.dir.join("dimed.log");
        let child = Command::new(env!("CARGO_BIN_EXE_dimed"))
            .arg("serve")
            .arg("--config")
            .arg(self.config())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut s = Server { child };
        let socket = self.dir.join("data/dimed.sock");
        let t0 = Instant::now();
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("dimed exited {st}: {}", std::fs::read_to_string(&log).unwrap());
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "dimed did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    /// `dimed doctor --config` (with `--json` when asked).
    fn doctor(&self, json: bool) -> Report {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dimed"));
        cmd.arg("doctor").arg("--config").arg(self.config());
        if json {
            cmd.arg("--json");
        }
        Report::of(cmd.output().unwrap())
    }
}

fn init_dir(dir: &Path, name: &str, addr: SocketAddr) {
    let o = Command::new(env!("CARGO_BIN_EXE_dimed"))
        .args(["init", "--domain", name, "--host", &format!("mx.{name}"), "--listen"])
        .arg(addr.to_string())
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "dimed init: {}", String::from_utf8_lossy(&o.stderr));
}

/// `dime doctor DOMAIN` through knotd.
fn dime_doctor(knot: &Knot, domain: &str, extra: &[&str]) -> Report {
    let o = Command::new(env!("CARGO_BIN_EXE_dime"))
        .args(["doctor", domain, "--resolver", &knot.addr.to_string(), "--trust-anchor"])
        .arg(&knot.anchor_dnskey)
        .args(extra)
        .output()
        .unwrap();
    Report::of(o)
}

/// A running `dimed`, stopped when dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The doctor's output: its lines as (status, check, detail), and whether it exited 0.
struct Report {
    success: bool,
    stdout: String,
    stderr: String,
    lines: Vec<(String, String, String)>,
}

impl Report {
    fn of(o: Output) -> Report {
        let stdout = String::from_utf8(o.stdout).unwrap();
        let stderr = String::from_utf8(o.stderr).unwrap();
        let lines = stdout
            .lines()
            .filter(|l| !l.starts_with('['))
            .map(|l| {
                let mut it = l.splitn(2, "  ");
                let status = it.next().unwrap().trim().to_owned();
                let rest = it.next().unwrap_or_default().trim_start();
                let (check, detail) = rest.split_once(' ').unwrap_or((rest, ""));
                (status, check.to_owned(), detail.trim_start().to_owned())
            })
            .collect();
        eprintln!("{stdout}{stderr}");
        Report { success: o.status.success(), stdout, stderr, lines }
    }

    /// The lines of `check`.
    fn of_check(&self, check: &str) -> Vec<(&str, &str)> {
        self.lines
            .iter()
            .filter(|(_, c, _)| c == check)
            .map(|(s, _, d)| (s.as_str(), d.as_str()))
            .collect()
    }

    /// The one line of `check`.
    fn one(&self, check: &str) -> (&str, &str) {
        let l = self.of_check(check);
        assert_eq!(l.len(), 1, "one {check} line in:\n{}", self.stdout);
        l[0]
    }

    fn checks(&self) -> Vec<&str> {
        self.lines.iter().map(|(_, c, _)| c.as_str()).collect()
    }
}

#[test]
fn a_good_domain_passes_every_check_from_inside_and_outside() {
    let d = Domain::init("good.test");
    let knot = Knot::start(&[d.zone(ZoneKind::Signed)]);
    d.configure(&knot, &knot.anchor_dnskey, "");
    let _server = d.start();

    let r = d.doctor(false);
    assert!(r.success, "dimed doctor failed: {}", r.stderr);
    for check in [
        "config",
        "resolver",
        "dnssec",
        "record",
        "org-key",
        "tls-pin",
        "host",
        "quic",
        "tls",
        "certificate",
        "store",
        "disk",
    ] {
        assert!(r.checks().contains(&check), "no {check} line in:\n{}", r.stdout);
    }
    for (status, check, detail) in &r.lines {
        assert_eq!(status, "ok", "{check}: {detail}");
    }
    assert!(r.one("dnssec").1.contains("_dx.good.test is dnssec-secure"));
    assert!(r.one("quic").1.contains(&d.addr.to_string()));
    assert!(r.one("tls").1.contains("answers DMTP"));
    assert!(r.one("store").1.contains("in use by the running dimed"));

    // The same as one JSON array of {check, status, detail}.
    let j = d.doctor(true);
    assert!(j.success);
    let v: Vec<serde_json::Value> = serde_json::from_str(j.stdout.trim()).unwrap();
    assert_eq!(v.len(), r.lines.len());
    for (f, (_, check, detail)) in v.iter().zip(&r.lines) {
        assert_eq!(f["status"], "ok");
        assert_eq!(f["check"], check.as_str());
        if check != "disk" {
            // (Free space moves between two runs.)
            assert_eq!(f["detail"], detail.as_str());
        }
        assert_eq!(f.as_object().unwrap().len(), 3);
    }

    // From outside: what a sender sees.
    let o = dime_doctor(&knot, "good.test", &[]);
    assert!(o.success, "dime doctor failed: {}", o.stderr);
    for check in ["resolver", "dnssec", "record", "host", "quic", "tls", "certificate"] {
        assert!(o.checks().contains(&check), "no {check} line in:\n{}", o.stdout);
    }
    for (status, check, detail) in &o.lines {
        assert_eq!(status, "ok", "{check}: {detail}");
    }
}

#[test]
fn a_stale_pin_fails_naming_the_published_pin_and_the_one_to_publish() {
    let d = Domain::init("stale.test");
    let published = d.record();
    // A renewed certificate (another key) that was never published: the record keeps the old
    // certificate's pin.
    let other = d._root.path().join("other");
    init_dir(&other, d.name, d.addr);
    for f in ["tls.crt", "tls.key"] {
        std::fs::copy(other.join("config").join(f), d.dir.join("config").join(f)).unwrap();
    }
    let knot = Knot::start(&[d.zone(ZoneKind::Signed)]);
    d.configure(&knot, &knot.anchor_dnskey, "");
    let _server = d.start();

    let r = d.doctor(false);
    assert!(!r.success);
    let record = Record::parse(&published).unwrap();
    let old_pin = record.tls[0].to_string();
    let (status, detail) = r.one("tls-pin");
    assert_eq!(status, "fail");
    assert!(detail.contains("stale"), "{detail}");
    assert!(detail.contains(&format!("tls={old_pin}")), "{detail}");
    // The pin it says to publish is the served certificate's, under the published POK.
    let new_pin = detail.rsplit("publish tls=").next().unwrap().trim();
    let mut fixed = record.clone();
    fixed.tls = vec![new_pin.parse::<TlsPin>().unwrap()];
    let pem = std::fs::read(d.dir.join("config/tls.crt")).unwrap();
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(&pem)
        .map(|c: rustls::pki_types::CertificateDer<'_>| c.to_vec())
        .unwrap();
    let _ = check_tls(dime_core::crypto::default_provider(), &fixed, &der).unwrap();
    assert!(check_tls(dime_core::crypto::default_provider(), &record, &der).is_err());
    // The hosts answer, but with a certificate senders refuse.
    for check in ["quic", "tls"] {
        let (status, detail) = r.one(check);
        assert_eq!(status, "fail", "{check}");
        assert!(detail.contains("tls= pin"), "{check}: {detail}");
    }
    // What does not depend on the pin stays ok.
    for check in ["resolver", "dnssec", "record", "org-key", "host", "store"] {
        assert_eq!(r.one(check).0, "ok", "{check}");
    }
}

#[test]
fn an_unsigned_zone_warns_fails_under_strict_and_is_never_called_bogus() {
    let d = Domain::init("plain.test");
    let knot = Knot::start(&[d.zone(ZoneKind::Unsigned)]);
    d.configure(&knot, &knot.anchor_dnskey, "");
    let _server = d.start();

    let r = d.doctor(false);
    let (status, detail) = r.one("dnssec");
    assert_eq!(status, "warn", "{detail}");
    assert!(detail.contains("unsigned zone"), "{detail}");
    assert_eq!(r.one("resolver").0, "ok");
    assert!(!r.stdout.contains("bogus"), "{}", r.stdout);
    // The self-signed certificate is pinned only by an unauthenticated record: senders need
    // it CA-valid, and the probes say so.
    let (status, detail) = r.one("tls");
    assert_eq!(status, "fail");
    assert!(detail.contains("CA-valid certificate"), "{detail}");

    d.configure(&knot, &knot.anchor_dnskey, "strict = true");
    let r = d.doctor(false);
    assert!(!r.success);
    let (status, detail) = r.one("dnssec");
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("dns.strict"), "{detail}");
    assert!(!r.stdout.contains("bogus"), "{}", r.stdout);

    let o = dime_doctor(&knot, "plain.test", &[]);
    assert_eq!(o.one("dnssec").0, "warn");
    let o = dime_doctor(&knot, "plain.test", &["--strict"]);
    assert_eq!(o.one("dnssec").0, "fail");
    assert!(!o.stdout.contains("bogus"), "{}", o.stdout);
}

#[test]
fn a_bogus_zone_fails_as_bogus() {
    let d = Domain::init("tampered.test");
    let knot = Knot::start(&[d.zone(ZoneKind::TamperedRrsig)]);
    d.configure(&knot, &knot.anchor_dnskey, "");

    let r = d.doctor(false);
    assert!(!r.success);
    assert_eq!(r.one("resolver").0, "ok", "the resolver validates: the zone is to blame");
    let (status, detail) = r.one("dnssec");
    assert_eq!(status, "fail");
    assert!(detail.starts_with("bogus: the answer for _dx.tampered.test"), "{detail}");
    assert!(detail.contains("re-sign the zone"), "{detail}");
    assert_eq!(r.one("record").0, "skip");

    let o = dime_doctor(&knot, "tampered.test", &[]);
    assert!(!o.success);
    assert!(o.one("dnssec").1.starts_with("bogus:"), "{}", o.stdout);
    assert!(o.stderr.contains("checks failed"), "{}", o.stderr);
}

#[test]
fn a_host_that_does_not_answer_fails() {
    let d = Domain::init("silent.test");
    let knot = Knot::start(&[d.zone(ZoneKind::Signed)]);
    d.configure(&knot, &knot.anchor_dnskey, "");
    // dimed is not running: the record and DNS are right, nobody answers.
    let t0 = Instant::now();
    let r = d.doctor(false);
    eprintln!("dimed doctor took {:?}", t0.elapsed());
    assert!(!r.success);
    assert!(r.stderr.contains("error: doctor: 2 of"), "{}", r.stderr);
    assert_eq!(r.one("host").0, "ok");
    for check in ["quic", "tls"] {
        let (status, detail) = r.one(check);
        assert_eq!(status, "fail", "{check}");
        assert!(detail.contains(&d.addr.to_string()), "{detail}");
    }
    assert!(r.one("tls").1.contains("is dimed running?"));
    // Stopped, its store opens and tells its format.
    let (status, detail) = r.one("store");
    assert_eq!(status, "ok");
    assert!(detail.contains(&format!("format {}", dime_store::STORE_FORMAT)), "{detail}");

    let o = dime_doctor(&knot, "silent.test", &[]);
    assert!(!o.success);
    assert_eq!(o.one("quic").0, "fail");
    assert_eq!(o.one("tls").0, "fail");
    assert_eq!(o.one("certificate").0, "skip");
}

#[test]
fn a_resolver_that_does_not_validate_is_blamed_not_the_zone() {
    let d = Domain::init("anchored.test");
    let knot = Knot::start(&[d.zone(ZoneKind::Signed)]);
    // A trust anchor that is not the root's key: every answer would be bogus.
    let line = std::fs::read_to_string(&knot.anchor_dnskey).unwrap();
    let (head, key) = line.trim().rsplit_once(' ').unwrap();
    let mut key = key.to_owned();
    let c = if key.as_bytes()[8] == b'A' { "B" } else { "A" };
    key.replace_range(8..9, c);
    let wrong = d._root.path().join("wrong.dnskey");
    std::fs::write(&wrong, format!("{head} {key}\n")).unwrap();
    d.configure(&knot, &wrong, "");

    let r = d.doctor(false);
    assert!(!r.success);
    let (status, detail) = r.one("resolver");
    assert_eq!(status, "fail");
    assert!(detail.contains("does not validate"), "{detail}");
    assert!(detail.contains("trust anchor"), "{detail}");
    assert_eq!(r.one("dnssec").0, "skip", "the zone is not blamed");
}

#[test]
fn a_record_naming_another_org_key_fails() {
    let d = Domain::init("moved.test");
    // The record of another `dimed init` of the same domain: another POK, another pin.
    let other = d._root.path().join("other");
    init_dir(&other, d.name, d.addr);
    let foreign = std::fs::read_to_string(other.join("config/dx-record.txt")).unwrap();
    let zone = Zone::new("moved", ZoneKind::Signed)
        .dx(foreign.trim())
        .record(&format!("mx 300 IN A {}", d.addr.ip()));
    let knot = Knot::start(&[zone]);
    d.configure(&knot, &knot.anchor_dnskey, "");
    let _server = d.start();

    let r = d.doctor(false);
    assert!(!r.success);
    let (status, detail) = r.one("org-key");
    assert_eq!(status, "fail");
    assert!(detail.contains("names another org key"), "{detail}");
    assert!(detail.contains("dx-record.zone"), "{detail}");
    assert_eq!(r.one("dnssec").0, "ok");
    // Its hosts serve our certificate and our org signet, which the record does not name.
    assert_eq!(r.one("tls").0, "fail");
}
