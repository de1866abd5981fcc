//! `dimed` as a user meets it: quickstart creates a domain and a user, serves it, and mail
//! sent to itself through the submission socket arrives verified; bad configuration gets a
//! one-line error naming the key, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn dime(args: &[&str], password: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dime"))
        .args(args)
        .env("DIME_USER_PASSWORD", password)
        .output()
        .unwrap()
}

#[test]
fn quickstart_serves_a_domain_that_delivers_to_itself() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("qs");
    let listen = format!("127.0.0.1:{}", dime_testkit::free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_dimed"))
        .args(["quickstart", "--listen", &listen, "--data-dir"])
        .arg(&data)
        .env("DIME_USER_PASSWORD", "quickstart pw")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        seen.push_str(&l);
        seen.push('\n');
        if l.starts_with("dimed serving") {
            break;
        }
    }
    assert!(seen.contains("_dx.example.test. IN TXT \"ver=1 pok="), "{seen}");
    assert!(seen.contains("password (shown once): quickstart pw"), "{seen}");
    let sock = data.join("data/dimed.sock");
    let sock = sock.to_str().unwrap();
    let me = "alice@example.test";
    let o = dime(
        &[
            "send",
            "--socket",
            sock,
            "--user",
            me,
            "--to",
            me,
            "--subject",
            "hi",
            "--body",
            "to myself",
        ],
        "quickstart pw",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t0 = Instant::now();
    let listing = loop {
        let o = dime(&["inbox", "--socket", sock, "--user", me], "quickstart pw");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8(o.stdout).unwrap();
        if !out.trim().is_empty() {
            break out;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "the message did not arrive");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(listing.contains(me) && listing.contains("hi") && !listing.contains('!'), "{listing}");
    // Which signatures it carries and which verified (`spec/dimed.md` §4.3): all three.
    assert!(
        listing.contains("signatures: author tree verified, author full verified, origin verified")
            && !listing.contains("warning"),
        "{listing}"
    );
    let o = dime(&["read", "1", "--socket", sock, "--user", me], "quickstart pw");
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("signatures verified") && text.ends_with("to myself\n"), "{text}");
    assert!(
        text.contains(
            "X-Dime-Signatures: author tree verified, author full verified, origin verified\n"
        ) && !text.contains("X-Dime-Warning"),
        "{text}"
    );
    // With --json an error is one JSON object on standard output (`spec/dimed.md` §4.5).
    let o = dime(&["read", "99", "--json", "--socket", sock, "--user", me], "quickstart pw");
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, serde_json::json!({"error": "no such message", "class": "no-such-message"}));
    // The author sees the delivery (the origin records it once the delivery has ended).
    let status = loop {
        let o = dime(&["status", "1", "--socket", sock, "--user", me], "quickstart pw");
        let out = String::from_utf8(o.stdout).unwrap();
        if out.starts_with("1 to example.test: delivered\n") {
            break out;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "not delivered: {out}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.contains("(1 attempt)") && status.contains("\ntxid:     "), "{status}");
    // The operator's socket: owner only, and the queue is empty again.
    let admin = data.join("data/dimed-admin.sock");
    assert_eq!(std::fs::metadata(&admin).unwrap().permissions().mode() & 0o777, 0o600);
    let o = Command::new(env!("CARGO_BIN_EXE_dimed"))
        .args(["queue", "--config", data.join("dimed.toml").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "the queue is empty\n");
    let o = dime(&["inbox", "--socket", sock, "--user", me], "wrong");
    assert!(!o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "error: login failed");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "dimed did not stop cleanly on SIGTERM: {status}");
    assert!(!data.join("data/dimed.sock").exists(), "the socket is removed on shutdown");
    assert!(!admin.exists(), "the operator's socket is removed on shutdown");
}

#[test]
fn bad_configuration_is_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("dimed.toml");
    // The data directory exists (a missing one is its own error: the test below).
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::set_permissions(dir.path().join("d"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let run = |text: &str| {
        std::fs::write(&conf, text).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_dimed"))
            .args(["serve", "--config"])
            .arg(&conf)
            .output()
            .unwrap();
        assert!(!o.status.success());
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(err.starts_with("error: ") && !err.contains("panicked"), "{err}");
        err
    };
    let base = "domain = \"a.test\"\nhost = \"mx.a.test\"\ndata_dir = \"d\"\nconfig_dir = \"c\"\n";
    let err =
        run(&format!("{base}[listen]\nquic = \"127.0.0.1:1\"\n[outbound]\ntransport = \"quic\"\n"));
    assert!(err.contains("transport"), "{err}");
    let err = run(&format!("{base}[listen]\n"));
    assert!(err.contains("listen: give quic, tls or both"), "{err}");
    let err = run(&format!("{base}[listen]\nquic = \"127.0.0.1:1\"\n"));
    assert!(err.contains("org.key"), "missing files are named: {err}");
    let o = Command::new(env!("CARGO_BIN_EXE_dimed"))
        .args(["serve", "--config", "/nonexistent/dimed.toml"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot read /nonexistent/dimed.toml"), "{err}");
    // The cause once, not once per layer (issue 25: errors were doubled).
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");
    let o = Command::new(env!("CARGO_BIN_EXE_dimed"))
        .args(["queue", "--config", "/nonexistent/dimed.toml"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");
}

/// Logging flags (issue 25): `--log-level` and `--log-format json` on every command, the
/// environment variable `DIMED_LOG` kept; an unknown level, from either, is an error that names
/// the levels, before anything runs.
#[test]
fn log_level_and_format_flags() {
    let dimed = || Command::new(env!("CARGO_BIN_EXE_dimed"));
    for o in [
        dimed().args(["--log-level", "loud", "serve", "--config", "/nonexistent/dimed.toml"]),
        dimed().args(["serve", "--config", "/nonexistent/dimed.toml"]).env("DIMED_LOG", "loud"),
    ]
    .map(|c| c.output().unwrap())
    {
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.starts_with("error: unknown log level \"loud\"")
                && err.contains("error, warn, info, debug, trace"),
            "{err}"
        );
    }
    // JSON lines: one object per event, with its level and message.
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", dime_testkit::free_port());
    let d = dir.path().join("d");
    let o = dimed()
        .args(["init", "--domain", "a.test", "--listen", &listen, "--dir"])
        .arg(&d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let serve = |flags: &[&str]| {
        let log = dir.path().join("log");
        serve_briefly(&d, flags, std::fs::File::create(&log).unwrap());
        std::fs::read_to_string(&log).unwrap()
    };
    let text = serve(&["--log-format", "json"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "{text}");
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["level"].is_string() && v["fields"]["message"].is_string(), "{l}");
    }
    assert!(text.contains("\"dimed started\""), "{text}");
    // The level filters: at warn, the info lines are gone.
    let text = serve(&["--log-level", "warn"]);
    assert!(!text.contains("dimed started") && !text.contains('{'), "{text}");
}

/// A `data_dir` that does not exist is an error unless `--create` (issue 25): a typo in
/// `dimed.toml` does not start an empty store.
#[test]
fn a_missing_data_dir_is_an_error_unless_create() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", dime_testkit::free_port());
    let d = dir.path().join("d");
    let dimed = || Command::new(env!("CARGO_BIN_EXE_dimed"));
    let o = dimed()
        .args(["init", "--domain", "a.test", "--listen", &listen, "--dir"])
        .arg(&d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let conf = d.join("dimed.toml");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, text.replace("data_dir = \"data\"", "data_dir = \"dta\"")).unwrap();
    // (Spawned, not run to its end: before the fix it served an empty store for ever.)
    let mut child = dimed()
        .args(["serve", "--config"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("dimed served a data_dir that does not exist");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("error: ") && err.contains("dta") && err.contains("--create"), "{err}");
    assert!(!d.join("dta").exists(), "nothing created");
    serve_briefly(&d, &["--create"], Stdio::null());
    assert!(d.join("dta/store.redb").exists(), "the empty store was made where data_dir says");
    // A port taken: the cause said once (issue 25: errors were doubled).
    let _taken = std::net::TcpListener::bind(&listen).unwrap();
    let o = dimed().args(["serve", "--config"]).arg(&conf).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot bind tls"), "{err}");
    assert_eq!(err.matches("(os error 98)").count(), 1, "{err}");
}

/// `dimed init` ends with the next steps (issue 25): the record to publish, the A/AAAA record
/// of the `dx=` host with the address dimed listens on, the `[dns]` keys for a private DNS
/// root, and the command that starts it.
#[test]
fn init_ends_with_the_next_steps() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    let o = Command::new(env!("CARGO_BIN_EXE_dimed"))
        .args(["init", "--domain", "b.test", "--listen", "127.0.0.1:4004", "--dir"])
        .arg(&d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let next = out.split("next steps:").nth(1).unwrap_or_else(|| panic!("{out}"));
    for want in [
        "_dx.b.test",
        "mx.b.test. IN A 127.0.0.1",
        "dns.servers",
        "dns.trust_anchor",
        &format!("dime user add --config {} --address USER@b.test", d.join("dimed.toml").display()),
        &format!("dimed serve --config {}", d.join("dimed.toml").display()),
    ] {
        assert!(next.contains(want), "{want:?} missing from the next steps:\n{next}");
    }
}

/// The systemd unit of `dist/` (issue 25, packaging): hardened, its `ExecStart` a command this
/// dimed has, `systemd-analyze verify` clean, and `systemd-analyze security` (offline) rating
/// its exposure at most 2.0 ("OK").
#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let unit = std::fs::read_to_string(repo.join("dist/dimed.service")).unwrap();
    for want in [
        "User=dimed",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "ReadWritePaths=/var/lib/dimed",
        "ExecStart=/usr/local/bin/dimed serve --config /var/lib/dimed/domain/dimed.toml",
    ] {
        assert!(unit.lines().any(|l| l == want), "{want} missing from dist/dimed.service");
    }
    let help = Command::new(env!("CARGO_BIN_EXE_dimed")).args(["serve", "--help"]).output();
    assert!(String::from_utf8_lossy(&help.unwrap().stdout).contains("--config"));
    // Verified with this build's binary in place of /usr/local/bin/dimed.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dimed.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/dimed", env!("CARGO_BIN_EXE_dimed")))
        .unwrap();
    let o = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd, installed by .ci/run)");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.trim().is_empty(), "systemd-analyze verify: {err}");
    let o = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let level: f64 = text
        .split("Overall exposure level for dimed.service: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    println!("systemd-analyze security: exposure {level}");
    assert!(level <= 2.0, "exposure {level}:\n{text}");
}

/// Runs `dimed serve FLAGS --config D/dimed.toml` (its log to `stderr`) until its submission
/// socket (under `D/data/`) is up, then stops it with SIGTERM: it must exit cleanly.
fn serve_briefly(d: &std::path::Path, flags: &[&str], stderr: impl Into<Stdio>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dimed"))
        .arg("serve")
        .args(flags)
        .arg("--config")
        .arg(d.join("dimed.toml"))
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !d.join("data/dimed.sock").exists() {
        assert!(t0.elapsed() < Duration::from_secs(20), "dimed {flags:?} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    assert!(child.wait().unwrap().success(), "dimed {flags:?} did not stop cleanly");
}

/// Quickstart as a new operator meets it (issue 25): a port in use is an error before
/// anything is created; a rerun serves on the addresses given then; the commands it prints
/// work as printed (pasted into a shell).
#[test]
fn quickstart_checks_its_ports_honours_a_rerun_and_prints_commands_that_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("qs");
    let port = || format!("127.0.0.1:{}", dime_testkit::free_port());
    let quickstart = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dimed"));
        c.arg("quickstart").args(args).arg("--data-dir").arg(&data).env_remove("CARGO");
        c
    };
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let (imaps, imap) = (port(), port());
    let o = quickstart(&["--listen", &port(), "--imaps", &taken_addr, "--imap", &imap])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(&format!("cannot listen for IMAP over TLS on {taken_addr}"))
            && err.contains("--imaps"),
        "{err}"
    );
    assert!(!data.exists(), "nothing created");
    drop(taken);

    let o = quickstart(&["--no-serve", "--listen", &port(), "--imaps", &imaps, "--imap", &imap])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed = String::from_utf8(o.stdout).unwrap();
    // A rerun, elsewhere.
    let (dmtp2, imaps2, imap2) = (port(), port(), port());
    let mut child = quickstart(&["--listen", &dmtp2, "--imaps", &imaps2, "--imap", &imap2])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let serving = lines.find_map(|l| l.ok().filter(|l| l.starts_with("dimed serving"))).unwrap();
    for want in [&dmtp2, &imaps2, &imap2] {
        assert!(serving.contains(want.as_str()), "{want} not in {serving:?}");
    }
    // The printed commands, pasted into a shell.
    let block = printed.split("try, in another terminal while dimed runs:\n").nth(1).unwrap();
    let cmds: Vec<&str> = block.lines().take_while(|l| l.starts_with("  ")).collect();
    assert!(cmds[0].starts_with("  export DIME_USER_PASSWORD="), "{cmds:?}");
    let run = |i: usize| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("{}\n{}", cmds[0], cmds[i]))
            .env_remove("DIME_USER_PASSWORD")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}: {}", cmds[i], String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    assert!(run(1).contains("queued"), "send");
    let t0 = Instant::now();
    while !run(2).contains("hello") {
        assert!(t0.elapsed() < Duration::from_secs(30), "the message did not arrive");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(run(3).ends_with("first dime mail\n"));
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    assert!(child.wait().unwrap().success());
}
