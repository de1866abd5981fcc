//! Accounts as an operator manages them (issue 25): `dime user add|list|passwd|delete` take
//! the server's `dimed.toml`, act on its store directly while dimed is stopped and through its
//! operator's socket while it runs; a second pepper is never made for a domain's store; an
//! address outside the domain and a weak password are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::Serving;

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Strong enough for the estimator (zxcvbn 3 or 4).
const STRONG: &str = "violet-anchor-quartz-47-mellow";
const STRONG2: &str = "ember tundra 93 lantern oxide";

fn dime(args: &[&str], env: &[(&str, &str)]) -> Output {
    // No controlling terminal (setsid): a secret not given is an error, never a prompt.
    let mut c = Command::new("setsid");
    c.args(["-w", env!("CARGO_BIN_EXE_dime")])
        .args(args)
        .env_remove("DIME_USER_PASSWORD")
        .env_remove("DIME_NEW_PASSWORD")
        .env_remove("DIME_ALLOW_WEAK_PASSWORD")
        .env_remove("DIME_PASSPHRASE")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let o = dime(args, env);
    assert!(o.status.success(), "dime {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let o = dime(args, env);
    assert!(!o.status.success(), "dime {args:?} succeeded: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8(o.stderr).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `dimed init` of example.test in `d`.
fn init(d: &Path) {
    let listen = format!("127.0.0.1:{}", dime_testkit::free_port());
    let o = Command::new(env!("CARGO_BIN_EXE_dimed"))
        .args(["init", "--domain", "example.test", "--listen", &listen, "--dir", s(d)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `dimed serve` of `d`, once its operator's socket answers.
fn serve(d: &Path) -> Serving {
    let conf = d.join("dimed.toml");
    Serving::start(&["serve", "--config", s(&conf)], &d.join("data/dimed-admin.sock"))
}

#[test]
fn a_domain_store_never_gets_a_second_pepper() {
    // The README's old way: `--data-dir DIR/data` with no --config-dir made DIR/data-config
    // with a new pepper, and an account that dimed could never open.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    init(&d);
    let err = refused(
        &[
            "user",
            "add",
            "--data-dir",
            s(&d.join("data")),
            "--address",
            "bob@example.test",
            "--org-key",
            s(&d.join("config/org.key")),
            "--passphrase-file",
            s(&d.join("config/org.pass")),
        ],
        &[("DIME_USER_PASSWORD", STRONG)],
    );
    assert!(err.contains("--config") && err.contains("dimed.toml"), "{err}");
    assert!(!dir.path().join("d/data-config").exists(), "no second configuration directory");

    // A store whose pepper is elsewhere: refused too, never a new pepper.
    let key = dir.path().join("org");
    ok(&["org", "init", "--domain", "example.org", "--out", s(&key), "--insecure-plaintext"], &[]);
    let add = |config_dir: &str| -> Output {
        dime(
            &[
                "user",
                "add",
                "--data-dir",
                s(&dir.path().join("other")),
                "--config-dir",
                s(&dir.path().join(config_dir)),
                "--address",
                "x@example.org",
                "--org-key",
                s(&key.join("org.key")),
            ],
            &[("DIME_USER_PASSWORD", STRONG)],
        )
    };
    assert!(add("other-config").status.success());
    let o = add("elsewhere");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("exists, but its pepper is not at"), "{err}");
    assert!(!dir.path().join("elsewhere").exists());
}

#[test]
fn accounts_are_managed_with_the_servers_config_stopped_and_running() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    init(&d);
    let conf = d.join("dimed.toml");
    let c = ["--config", s(&conf)];
    fn user<'a>(c: &[&'a str], op: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
        [&["user", op][..], c, rest].concat()
    }
    let pw = [("DIME_USER_PASSWORD", STRONG)];

    // Stopped: straight to the store, with the server's pepper and org key.
    let err = refused(&user(&c, "add", &["--address", "bob@other.test"]), &pw);
    assert!(err.contains("bob@other.test is not of this server's domain example.test"), "{err}");
    let err = refused(
        &user(&c, "add", &["--address", "bob@example.test"]),
        &[("DIME_USER_PASSWORD", "password1")],
    );
    assert!(err.contains("too weak") && err.contains("--allow-weak-password"), "{err}");
    let out = ok(&user(&c, "add", &["--address", "bob@example.test", "--recovery", "none"]), &pw);
    assert!(out.starts_with("created bob@example.test\n"), "{out}");
    let listed = ok(&user(&c, "list", &[]), &[]);
    assert!(
        listed.contains("bob@example.test  generation 0  recovery none  0 messages")
            && listed.ends_with("1 accounts\n"),
        "{listed}"
    );

    // Running: through the operator's socket (the store is dimed's alone).
    let dimed = serve(&d);
    let out = ok(&user(&c, "add", &["--address", "carol@example.test"]), &pw);
    assert!(out.contains("created carol@example.test\nrecovery code (shown once"), "{out}");
    let err = refused(&user(&c, "add", &["--address", "carol@example.test"]), &pw);
    assert!(err.contains("exists already"), "{err}");
    let err = refused(&user(&c, "add", &["--address", "eve@other.test"]), &pw);
    assert!(err.contains("not of this server's domain"), "{err}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&user(&c, "list", &["--json"]), &[])).unwrap();
    let mut names: Vec<&str> =
        json.as_array().unwrap().iter().map(|a| a["address"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["bob@example.test", "carol@example.test"]);
    ok(
        &user(&c, "passwd", &["--address", "carol@example.test"]),
        &[("DIME_USER_PASSWORD", STRONG), ("DIME_NEW_PASSWORD", STRONG2)],
    );
    let sock = d.join("data/dimed.sock");
    let inbox = |password: &str| {
        dime(
            &["inbox", "--socket", s(&sock), "--user", "carol@example.test"],
            &[("DIME_USER_PASSWORD", password)],
        )
    };
    assert!(inbox(STRONG2).status.success(), "the new password logs in");
    assert!(!inbox(STRONG).status.success(), "the old one does not");
    let err = refused(&user(&c, "rotate", &["--address", "carol@example.test"]), &pw);
    assert!(err.contains("dimed is running") && err.contains("stop it"), "{err}");
    ok(&user(&c, "delete", &["--address", "carol@example.test", "--yes"]), &[]);
    assert!(!inbox(STRONG2).status.success(), "a deleted account does not log in");
    dimed.stop();

    let listed = ok(&user(&c, "list", &[]), &[]);
    assert!(listed.ends_with("1 accounts\n") && listed.contains("bob@example.test"), "{listed}");
}

/// `org.pass` removed (the operator keeps the org key's passphrase elsewhere, README
/// "Operations"): dimed refuses to start without it, naming how to give it, and starts with
/// `--org-passphrase-file`; `dime user add --config` takes it with `--passphrase-file`.
#[test]
fn without_org_pass_the_passphrase_is_given_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    init(&d);
    let kept = dir.path().join("org-passphrase");
    std::fs::rename(d.join("config/org.pass"), &kept).unwrap();
    let conf = d.join("dimed.toml");
    // No controlling terminal (setsid): dimed cannot ask, so it says what to do.
    let o = Command::new("setsid")
        .args(["-w", env!("CARGO_BIN_EXE_dimed"), "serve", "--config", s(&conf)])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("org.pass is absent") && err.contains("--org-passphrase-file"), "{err}");
    let pw = [("DIME_USER_PASSWORD", STRONG)];
    let add = ["user", "add", "--config", s(&conf), "--address", "bob@example.test"];
    let err = String::from_utf8(dime(&add, &pw).stderr).unwrap();
    assert!(err.contains("cannot read the server's org key"), "{err}");
    ok(&[&add[..], &["--passphrase-file", s(&kept)]].concat(), &pw);

    let mut child = Command::new(env!("CARGO_BIN_EXE_dimed"))
        .args(["serve", "--config", s(&conf), "--org-passphrase-file", s(&kept)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("dimed serving example.test"), "{line}");
    Serving(child).stop();
}
