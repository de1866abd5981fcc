//! A private Dovecot (Debian `dovecot-imapd` 2.3) for the differential test and the benchmark
//! of DMAP (issue 21): a throwaway configuration in a temporary directory (its `base_dir`,
//! `state_dir`, log and Maildir all there), IMAP only, on free ports of 127.0.0.1 (plaintext and
//! implicit TLS with a self-signed certificate made by `openssl`), plaintext logins allowed,
//! `auth_mechanisms = plain login`, one user of a passwd-file, the master, auth and config
//! processes as root, the login processes as `dovenull` and the user's mail processes as `dovecot`
//! (the package's users: Dovecot refuses root for either).
//! Started in the foreground (`dovecot -F -c <conf>`) and stopped when the [`Dovecot`] is dropped.
//! [`Variant::MailCrypt`] adds the mail-crypt plugin with global EC keys (prime256v1, made with
//! `openssl ecparam`), `mail_crypt_save_version = 2`: every saved message is encrypted.
//!
//! Test support only: a failure to start panics with Dovecot's log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::postfix::find_program;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which Dovecot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Maildir in clear.
    Plain,
    /// Maildir encrypted by the mail-crypt plugin (global keys).
    MailCrypt,
}

/// A running private Dovecot; stopped on drop.
#[derive(Debug)]
pub struct Dovecot {
    /// The temporary directory (configuration, state, log, Maildir).
    pub dir: tempfile::TempDir,
    /// IMAP in plaintext (logins allowed without TLS).
    pub imap: SocketAddr,
    /// IMAP on implicit TLS.
    pub imaps: SocketAddr,
    /// The server's self-signed certificate (PEM).
    pub cert: PathBuf,
    /// The master process.
    child: Child,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    if !out.status.success() {
        panic!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
}

/// The uid and gid of a user of `/etc/passwd`.
fn uid_of(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user) && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}

fn free() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], dime_testkit::free_port()))
}

impl Dovecot {
    /// Why a Dovecot cannot be started here (not installed, not root), or `None`.
    pub fn unavailable() -> Option<String> {
        if find_program("dovecot").is_none() {
            return Some("dovecot is not installed: apt-get install -y dovecot-imapd".into());
        }
        if find_program("openssl").is_none() {
            return Some("openssl is not installed".into());
        }
        let root = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Uid:")).map(str::to_owned))
            .is_some_and(|l| l.split_whitespace().next() == Some("0"));
        if !root {
            return Some("the private dovecot runs as root".into());
        }
        None
    }

    /// Starts a Dovecot with one user (`user`, `password`: a full address as the login name).
    pub fn start(variant: Variant, user: &str, password: &str) -> Dovecot {
        let dovecot = find_program("dovecot").expect("dovecot is installed");
        let dir = tempfile::Builder::new().prefix("dovecot").tempdir().unwrap();
        let d = dir.path();
        for sub in ["run", "state", "home"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        // Dovecot's processes check that the base_dir's parents are reachable; the mail
        // processes run as the package's `dovecot` user (it refuses uid 0 for a user's mail).
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mail_uid = uid_of("dovecot").expect("the dovecot user (created by the package)");
        std::fs::create_dir(d.join("Maildir")).unwrap();
        for sub in ["home", "Maildir"] {
            std::os::unix::fs::chown(d.join(sub), Some(mail_uid.0), Some(mail_uid.1)).unwrap();
        }
        let (cert, key) = (d.join("cert.pem"), d.join("key.pem"));
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-nodes", "-days", "2", "-subj", "/CN=dovecot.test", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdin(Stdio::null()));
        std::fs::write(d.join("passwd"), format!("{user}:{{PLAIN}}{password}::::::\n")).unwrap();
        let (imap, imaps) = (free(), free());
        let crypt = match variant {
            Variant::Plain => String::new(),
            Variant::MailCrypt => {
                let (private, public) = (d.join("ec-private.pem"), d.join("ec-public.pem"));
                let out = Command::new("openssl")
                    .args(["ecparam", "-name", "prime256v1", "-genkey", "-noout"])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "openssl ecparam");
                let mut pkey = Command::new("openssl")
                    .args(["pkey", "-out"])
                    .arg(&private)
                    .stdin(Stdio::piped())
                    .spawn()
                    .unwrap();
                std::io::Write::write_all(pkey.stdin.as_mut().unwrap(), &out.stdout).unwrap();
                drop(pkey.stdin.take());
                assert!(pkey.wait().unwrap().success(), "openssl pkey");
                run(Command::new("openssl")
                    .args(["pkey", "-pubout", "-in"])
                    .arg(&private)
                    .arg("-out")
                    .arg(&public));
                format!(
                    "mail_plugins = $mail_plugins mail_crypt
plugin {{
  mail_crypt_global_private_key = <{private}
  mail_crypt_global_public_key = <{public}
  mail_crypt_save_version = 2
}}
",
                    private = private.display(),
                    public = public.display()
                )
            }
        };
        let conf = d.join("dovecot.conf");
        let text = format!(
            "# A private instance: loopback only, one user.
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
instance_name = dovecot-{port}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = root
default_internal_group = root
default_login_user = dovenull
first_valid_uid = 1
mail_uid = dovecot
mail_gid = dovecot
mail_location = maildir:{d}/Maildir
mail_max_userip_connections = 10000
auth_failure_delay = 0
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={d}/home
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {sport}
    ssl = yes
  }}
}}
service imap {{
  process_limit = 2048
}}
{crypt}",
            d = d.display(),
            cert = cert.display(),
            key = key.display(),
            port = imap.port(),
            sport = imaps.port(),
        );
        std::fs::write(&conf, text).unwrap();
        let child = Command::new(dovecot)
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut me = Dovecot { dir, imap, imaps, cert, child };
        me.wait_ready();
        me
    }

    /// Dovecot's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// The master process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The Maildir.
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("Maildir")
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Ok(mut s) = TcpStream::connect(self.imap) {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = [0u8; 5];
                if s.read_exact(&mut buf).is_ok() && &buf == b"* OK " {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(e) = self.child.stderr.as_mut() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("dovecot exited ({status}): {err}\n{}", self.log());
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!("dovecot did not greet within 20 s\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM to the master stops its children too; then reap it.
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
