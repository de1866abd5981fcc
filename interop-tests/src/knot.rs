//! A loopback DNSSEC world served by knotd: a fake signed root `.`, a signed `test.`, and one
//! child zone per case, signed at test time with ldns-signzone; plus `delv` as a second
//! validator. Everything started here stops when the fixture is dropped.
//!
//! Test support only: a failure to set the world up (a missing tool, a refused command) panics
//! with what to install, which fails the test that asked for it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How a child zone is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneKind {
    /// Signed, DS in the parent: secure.
    Signed,
    /// Not signed, no DS in the (signed) parent: provably insecure.
    Unsigned,
    /// Signed, the RRSIG over the TXT RRsets altered.
    TamperedRrsig,
    /// Signed with signatures that expired in 2020.
    ExpiredRrsig,
    /// Signed, but the parent's DS matches no key.
    WrongDs,
    /// Signed, DS in the parent, but the DNSKEY RRset removed.
    MissingDnskey,
}

/// One child zone `<label>.test.`: its kind and extra records (zone-file lines relative to
/// the zone's origin).
#[derive(Debug, Clone)]
pub struct Zone {
    /// The label under `test.`.
    pub label: String,
    /// How it is served.
    pub kind: ZoneKind,
    /// Zone-file lines relative to the zone's origin.
    pub records: Vec<String>,
}

impl Zone {
    /// The zone `<label>.test.` of `kind`, with no records but its SOA and NS.
    pub fn new(label: &str, kind: ZoneKind) -> Zone {
        Zone { label: label.to_owned(), kind, records: Vec::new() }
    }
    /// Adds a zone-file line, relative to the zone's origin (`www 300 IN A 127.0.0.1`).
    pub fn record(mut self, line: &str) -> Zone {
        self.records.push(line.to_owned());
        self
    }
    /// A `_dx` TXT record with `text` split into 255-octet strings.
    pub fn dx(self, text: &str) -> Zone {
        let strings: Vec<String> = text
            .as_bytes()
            .chunks(255)
            .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
            .collect();
        self.record(&format!("_dx 300 IN TXT {}", strings.join(" ")))
    }
}

fn run(dir: &Path, cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).current_dir(dir).output().unwrap_or_else(|e| {
        panic!("cannot run {cmd} (install knot, ldnsutils, bind9-dnsutils): {e}")
    });
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn keygen(dir: &Path, zone: &str) -> String {
    run(dir, "ldns-keygen", &["-a", "ECDSAP256SHA256", "-k", zone]).trim().to_owned()
}

fn sign(dir: &Path, zone_file: &str, key: &str, extra: &[&str]) -> String {
    let out = format!("{zone_file}.signed");
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["-f", &out, zone_file, key]);
    run(dir, "ldns-signzone", &args);
    out
}

fn ds_of(dir: &Path, key: &str) -> String {
    let path = dir.join(format!("{key}.ds"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(';'))
        .collect::<Vec<_>>()
        .join("\n")
}

fn header(origin: &str) -> String {
    format!(
        "$ORIGIN {origin}\n$TTL 300\n@ SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n@ NS ns.test.\n"
    )
}

/// Rewrites a signed zone file line by line.
fn edit_zone(path: &Path, mut f: impl FnMut(&[&str]) -> Option<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let Some(l) = f(&fields).or(Some(line.to_owned())).filter(|l| l != "\u{0}") {
            out.push_str(&l);
            out.push('\n');
        }
    }
    std::fs::write(path, out).unwrap();
}

fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// A minimal query for `. SOA`, to see when the server is up.
fn probe(addr: SocketAddr) -> bool {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let q = [0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1];
    if sock.send_to(&q, addr).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    matches!(sock.recv_from(&mut buf), Ok((n, _)) if n >= 12 && buf[..2] == [0x12, 0x34])
}

/// knotd serving the fake root, `test.` and the child zones, on a free loopback port.
pub struct Knot {
    /// The directory holding keys, zones, configuration and knotd's state.
    pub dir: tempfile::TempDir,
    /// Where knotd listens (UDP and TCP).
    pub addr: SocketAddr,
    /// The fake root's KSK as a DNSKEY line (hickory's anchor format).
    pub anchor_dnskey: PathBuf,
    /// The same key as a BIND `trust-anchors` clause (delv's format).
    pub anchor_bind: PathBuf,
    child: Child,
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Knot {
    /// Signs the zones, writes the configuration and starts knotd; returns once it answers.
    pub fn start(zones: &[Zone]) -> Knot {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut test_zone = header("test.");
        test_zone.push_str("ns 300 IN A 127.0.0.1\n");
        let mut conf_zones = String::new();
        for z in zones {
            let origin = format!("{}.test.", z.label);
            let mut text = header(&origin);
            for r in &z.records {
                text.push_str(r);
                text.push('\n');
            }
            let file = format!("{}.zone", z.label);
            std::fs::write(d.join(&file), text).unwrap();
            writeln!(test_zone, "{} 300 IN NS ns.test.", z.label).unwrap();
            let served = if z.kind == ZoneKind::Unsigned {
                file
            } else {
                let key = keygen(d, &origin);
                let extra: &[&str] = if z.kind == ZoneKind::ExpiredRrsig {
                    &["-i", "20200101", "-e", "20200201"]
                } else {
                    &[]
                };
                let signed = sign(d, &file, &key, extra);
                match z.kind {
                    ZoneKind::WrongDs => {
                        // A DS of the right algorithm whose digest matches nothing.
                        writeln!(test_zone, "{} 300 IN DS 12345 13 2 {}", z.label, "00".repeat(32))
                            .unwrap();
                    }
                    _ => {
                        test_zone.push_str(&ds_of(d, &key));
                        test_zone.push('\n');
                    }
                }
                let path = d.join(&signed);
                match z.kind {
                    ZoneKind::TamperedRrsig => edit_zone(&path, |f| {
                        if f.len() > 5 && f[3] == "RRSIG" && f[4] == "TXT" {
                            let mut f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
                            let sig = f.last_mut().unwrap();
                            let c = if sig.as_bytes()[10] == b'A' { "B" } else { "A" };
                            sig.replace_range(10..11, c);
                            Some(f.join("\t"))
                        } else {
                            None
                        }
                    }),
                    ZoneKind::MissingDnskey => edit_zone(&path, |f| {
                        let dnskey = f.len() > 4
                            && (f[3] == "DNSKEY" || (f[3] == "RRSIG" && f[4] == "DNSKEY"));
                        dnskey.then(|| "\u{0}".to_owned())
                    }),
                    _ => {}
                }
                signed
            };
            writeln!(conf_zones, "  - domain: {origin}\n    file: {served}").unwrap();
        }
        std::fs::write(d.join("test.zone"), test_zone).unwrap();
        let test_key = keygen(d, "test.");
        let test_signed = sign(d, "test.zone", &test_key, &[]);
        let root = format!(
            "$ORIGIN .\n$TTL 300\n. SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n. NS ns.test.\ntest. NS ns.test.\nns.test. A 127.0.0.1\n{}\n",
            ds_of(d, &test_key)
        );
        std::fs::write(d.join("root.zone"), root).unwrap();
        let root_key = keygen(d, ".");
        let root_signed = sign(d, "root.zone", &root_key, &[]);
        // Anchors: the root KSK as a DNSKEY line, and as BIND's trust-anchors clause.
        let key_line = std::fs::read_to_string(d.join(format!("{root_key}.key"))).unwrap();
        let key_line = key_line.split(';').next().unwrap().trim().to_owned();
        let anchor_dnskey = d.join("anchor.dnskey");
        std::fs::write(&anchor_dnskey, format!("{key_line}\n")).unwrap();
        let f: Vec<&str> = key_line.split_whitespace().collect();
        let (flags, proto, alg, key) = (f[3], f[4], f[5], f[6..].join(""));
        let anchor_bind = d.join("anchor.bind");
        std::fs::write(
            &anchor_bind,
            format!("trust-anchors {{ . static-key {flags} {proto} {alg} \"{key}\"; }};\n"),
        )
        .unwrap();

        let port = free_port();
        std::fs::create_dir_all(d.join("run")).unwrap();
        std::fs::create_dir_all(d.join("db")).unwrap();
        let conf = format!(
            "server:\n  rundir: {dir}/run\n  listen: 127.0.0.1@{port}\n  udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n\
             database:\n  storage: {dir}/db\n\
             log:\n  - target: stderr\n    any: warning\n\
             template:\n  - id: default\n    storage: {dir}\n    zonefile-sync: -1\n    journal-content: none\n\
             zone:\n  - domain: .\n    file: {root_signed}\n  - domain: test.\n    file: {test_signed}\n{conf_zones}",
            dir = d.display()
        );
        std::fs::write(d.join("knot.conf"), conf).unwrap();
        let mut child = Command::new("knotd")
            .arg("-c")
            .arg(d.join("knot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start knotd (install the Debian package knot)");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let t0 = Instant::now();
        while !probe(addr) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("knotd exited: {status}");
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "knotd did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
        Knot { dir, addr, anchor_dnskey, anchor_bind, child }
    }

    /// The verdict of `delv` (BIND's validator) for `name`/`rtype`, with this fixture's
    /// anchor.
    pub fn delv(&self, name: &str, rtype: &str) -> Delv {
        let out = Command::new("delv")
            .arg("-a")
            .arg(&self.anchor_bind)
            .args(["+root=.", "@127.0.0.1", "-p", &self.addr.port().to_string(), name, rtype])
            .output()
            .expect("cannot run delv (install the Debian package bind9-dnsutils)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let verdict = if text.contains("; negative response, fully validated") {
            DelvVerdict::SecureAbsent
        } else if text.contains("; fully validated") {
            DelvVerdict::Secure
        } else if text.contains("; negative response, unsigned answer") {
            DelvVerdict::InsecureAbsent
        } else if text.contains("; unsigned answer") {
            DelvVerdict::Insecure
        } else if text.contains("resolution failed") || text.contains("validation failure") {
            DelvVerdict::Bogus
        } else {
            DelvVerdict::Other
        };
        Delv { verdict, text }
    }
}

/// What `delv` concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelvVerdict {
    /// "fully validated" answer.
    Secure,
    /// "negative response, fully validated".
    SecureAbsent,
    /// "unsigned answer".
    Insecure,
    /// "negative response, unsigned answer".
    InsecureAbsent,
    /// Resolution or validation failed.
    Bogus,
    /// Anything else.
    Other,
}

/// One `delv` run.
#[derive(Debug)]
pub struct Delv {
    /// Its verdict.
    pub verdict: DelvVerdict,
    /// Its whole output, for failure messages.
    pub text: String,
}

/// A UDP "server" that reads every query and never answers. Stops on drop.
pub struct Silent {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Silent {
    /// Binds a loopback port and starts swallowing queries.
    pub fn start() -> Silent {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !flag.load(Ordering::Relaxed) {
                let _ = sock.recv_from(&mut buf);
            }
        });
        Silent { addr, stop, thread: Some(thread) }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
