//! A private Postfix instance (Debian package `postfix`) for benchmarks: its own
//! configuration, queue and data directories in a temporary directory, smtpd on a free port of
//! 127.0.0.1 only, no DNS, every message for the accepted domain delivered to `discard`, and no
//! `smtp`, `relay` or `local` service at all, so nothing leaves the machine. Queue files are
//! fsynced before the 250 (Postfix's behaviour; no parameter turns it off). It logs to a file
//! (`maillog_file`), which [`MailLog`] follows. The system's own Postfix instance is not
//! touched. Everything started here stops when the [`Postfix`] is dropped.
//!
//! Test support only: a failure to start panics with Postfix's log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where a program is: the sbin and bin directories, then `PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin"]
        .iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A `kB` field (`VmRSS:`, `VmHWM:`, `Pss:`) of a `/proc/<pid>/status`-like file.
pub fn proc_kib(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Uid:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).map(|e| e == "0"))
        .unwrap_or(false)
}

fn uid_of(user: &str) -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next() == Some(user)).then(|| f.nth(1)?.parse().ok()).flatten()
    })
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// A running private Postfix instance; stopped on drop.
#[derive(Debug)]
pub struct Postfix {
    dir: tempfile::TempDir,
    postfix: PathBuf,
    smtp_source: PathBuf,
    /// smtpd's port on 127.0.0.1.
    pub port: u16,
    /// The master process's id (its children are the instance's other processes).
    pub master: u32,
}

impl Postfix {
    /// Why an instance cannot be started here (not installed, not root), or `None`.
    pub fn unavailable() -> Option<String> {
        if find_program("postfix").is_none() || find_program("smtp-source").is_none() {
            return Some(
                "postfix is not installed: apt-get install postfix (it ships smtp-source); \
                 preseed `postfix postfix/main_mailer_type select No configuration`"
                    .into(),
            );
        }
        if !is_root() {
            return Some("postfix needs root to start an instance of its own".into());
        }
        None
    }

    /// Starts an instance in a new directory under `root` that accepts mail for `domain` (and
    /// discards it).
    pub fn start(root: &Path, domain: &str) -> Postfix {
        let postfix = find_program("postfix").expect("postfix is installed");
        let smtp_source = find_program("smtp-source").expect("smtp-source is installed");
        let postconf = find_program("postconf").expect("postconf is in the postfix package");
        let default = |param: &str| {
            let out = run(Command::new(&postconf).args(["-d", "-h", param]));
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let dir = tempfile::Builder::new().prefix("postfix").tempdir_in(root).unwrap();
        let d = dir.path();
        // The daemons run as `postfix`: they must reach the queue and own the data directory.
        let mode = |path: &Path, m: u32| {
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap()
        };
        mode(root, 0o755);
        mode(d, 0o755);
        for sub in ["etc", "queue", "data"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        let postfix_uid = uid_of("postfix").expect("the postfix user (created by the package)");
        std::os::unix::fs::chown(d.join("data"), Some(postfix_uid), None).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let main_cf = format!(
            "# A private instance: loopback only, discard delivery, no DNS.
compatibility_level = 3.6
config_directory = {d}/etc
queue_directory = {d}/queue
data_directory = {d}/data
daemon_directory = {daemon}
command_directory = {command}
shlib_directory = {shlib}
meta_directory = {meta}
mail_owner = postfix
setgid_group = postdrop
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
delay_logging_resolution_limit = 3
myhostname = postfix-bench.test
mydomain = postfix-bench.test
myorigin = postfix-bench.test
mydestination = {domain}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_client_restrictions = permit_mynetworks, reject
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
local_recipient_maps =
alias_maps =
alias_database =
local_transport = discard
virtual_transport = discard
relay_transport = discard
default_transport = discard
biff = no
append_dot_mydomain = no
",
            d = d.display(),
            daemon = default("daemon_directory"),
            command = default("command_directory"),
            shlib = default("shlib_directory"),
            meta = default("meta_directory"),
        );
        // No chroot (the private queue has no chroot tree); no smtp, relay or local service.
        let master_cf = format!(
            "127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60    1 pickup
cleanup   unix  n - n -     0 cleanup
qmgr      unix  n - n 300   1 qmgr
rewrite   unix  - - n -     - trivial-rewrite
bounce    unix  - - n -     0 bounce
defer     unix  - - n -     0 bounce
trace     unix  - - n -     0 bounce
verify    unix  - - n -     1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -     - proxymap
showq     unix  n - n -     - showq
error     unix  - - n -     - error
retry     unix  - - n -     - error
discard   unix  - - n -     - discard
anvil     unix  - - n -     1 anvil
scache    unix  - - n -     1 scache
postlog   unix-dgram n - n - 1 postlogd
"
        );
        std::fs::write(d.join("etc/main.cf"), main_cf).unwrap();
        std::fs::write(d.join("etc/master.cf"), master_cf).unwrap();
        // `postfix` reports on a terminal only; its log file says why a start failed.
        let out =
            Command::new(&postfix).arg("-c").arg(d.join("etc")).arg("start").output().unwrap();
        let log = std::fs::read_to_string(d.join("maillog")).unwrap_or_default();
        if !out.status.success() {
            panic!("postfix start failed ({}): {log}", out.status);
        }
        let pid_file = d.join("queue/pid/master.pid");
        let master = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("no master pid in {}: {log}", pid_file.display()));
        Postfix { dir, postfix, smtp_source, port, master }
    }

    /// The instance's log file.
    pub fn maillog(&self) -> PathBuf {
        self.dir.path().join("maillog")
    }

    /// Files still in the queue (incoming, active, deferred, hold, maildrop).
    pub fn queued(&self) -> usize {
        fn count(dir: &Path) -> usize {
            std::fs::read_dir(dir).map_or(0, |rd| {
                rd.flatten()
                    .map(|e| {
                        let p = e.path();
                        if p.is_dir() { count(&p) } else { 1 }
                    })
                    .sum()
            })
        }
        ["incoming", "active", "deferred", "hold", "maildrop"]
            .iter()
            .map(|q| count(&self.dir.path().join("queue").join(q)))
            .sum()
    }

    /// `smtp-source -d` (sessions reused) against this instance: `messages` messages of `len`
    /// octets from `from` to `to` over `sessions` parallel sessions; stdout discarded, stderr
    /// piped.
    pub fn smtp_source(
        &self,
        sessions: usize,
        messages: usize,
        len: usize,
        from: &str,
        to: &str,
    ) -> Command {
        let mut c = Command::new(&self.smtp_source);
        c.args(["-d", "-s", &sessions.to_string(), "-m", &messages.to_string()])
            .args(["-l", &len.to_string(), "-M", "smtp-source.test", "-f", from, "-t", to])
            .arg(format!("127.0.0.1:{}", self.port))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new(&self.postfix)
            .arg("-c")
            .arg(self.dir.path().join("etc"))
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let gone = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{}", self.master)).exists() && Instant::now() < gone {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Follows a Postfix log file: counts messages discarded and their `delay=` (arrival in the
/// queue to delivered), keeps every other delivery status, warning and error line.
#[derive(Debug)]
pub struct MailLog {
    path: PathBuf,
    pos: u64,
    partial: Vec<u8>,
    /// Messages discarded (`postfix/discard` with `status=sent`).
    pub sent: usize,
    /// Their `delay=`, in milliseconds, in log order.
    pub delays_ms: Vec<f64>,
    /// Lines with another status, a warning, a fatal error or a panic.
    pub problems: Vec<String>,
}

impl MailLog {
    /// Follows `path` from its start.
    pub fn new(path: PathBuf) -> MailLog {
        MailLog {
            path,
            pos: 0,
            partial: Vec::new(),
            sent: 0,
            delays_ms: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Reads what was appended since the last call.
    pub fn poll(&mut self) {
        let Ok(mut f) = std::fs::File::open(&self.path) else { return };
        f.seek(SeekFrom::Start(self.pos)).unwrap();
        let mut new = Vec::new();
        self.pos += f.read_to_end(&mut new).unwrap() as u64;
        self.partial.extend_from_slice(&new);
        while let Some(i) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line);
            if line.contains("postfix/discard[") && line.contains(" status=sent ") {
                self.sent += 1;
                let delay = line
                    .split(", ")
                    .find_map(|f| f.strip_prefix("delay="))
                    .and_then(|v| v.parse::<f64>().ok());
                if let Some(s) = delay {
                    self.delays_ms.push(s * 1000.0);
                }
            } else if line.contains(" status=")
                || line.contains("fatal:")
                || line.contains("panic:")
                || line.contains("warning:")
            {
                self.problems.push(line.trim().to_owned());
            }
        }
    }

    /// Polls until `want` messages have been discarded; panics on a message not discarded
    /// (another status, a fatal error) or at `deadline`.
    pub fn wait_discarded(&mut self, want: usize, deadline: Instant) {
        loop {
            self.poll();
            if let Some(bad) = self.problems.iter().find(|l| !l.contains("warning:")) {
                panic!("postfix did not discard a message: {bad}");
            }
            if self.sent >= want {
                return;
            }
            if Instant::now() > deadline {
                panic!("postfix discarded {} of {want} messages before the deadline", self.sent);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The memory peaks of a process and its children, from [`sample_tree`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TreePeak {
    /// The largest sum of `VmRSS` seen (shared pages counted once per process).
    pub rss_kib: u64,
    /// The largest sum of `Pss` seen (shared pages divided among their processes).
    pub pss_kib: u64,
    /// The most processes seen at once.
    pub processes: usize,
}

/// Samples `parent` and its children every 50 ms until `stop` is set.
pub fn sample_tree(parent: u32, stop: Arc<AtomicBool>) -> JoinHandle<TreePeak> {
    std::thread::spawn(move || {
        let mut peak = TreePeak::default();
        while !stop.load(Ordering::Relaxed) {
            let mut pids = vec![parent];
            if let Ok(rd) = std::fs::read_dir("/proc") {
                for e in rd.flatten() {
                    let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok())
                    else {
                        continue;
                    };
                    let stat =
                        std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                    let ppid = stat
                        .rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                        .and_then(|s| s.parse::<u32>().ok());
                    if ppid == Some(parent) {
                        pids.push(pid);
                    }
                }
            }
            let (mut rss, mut pss) = (0, 0);
            for pid in &pids {
                rss += proc_kib(Path::new(&format!("/proc/{pid}/status")), "VmRSS:").unwrap_or(0);
                pss +=
                    proc_kib(Path::new(&format!("/proc/{pid}/smaps_rollup")), "Pss:").unwrap_or(0);
            }
            peak.rss_kib = peak.rss_kib.max(rss);
            peak.pss_kib = peak.pss_kib.max(pss);
            peak.processes = peak.processes.max(pids.len());
            std::thread::sleep(Duration::from_millis(50));
        }
        peak
    })
}
