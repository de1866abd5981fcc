//! The `dime` binary, run as a user would: real files, real exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

const PASS: &str = "correct horse battery staple";

fn dime(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dime"))
        .args(args)
        .env("DIME_PASSPHRASE", PASS)
        .output()
        .expect("run dime")
}

fn ok(args: &[&str]) -> String {
    let o = dime(args);
    assert!(o.status.success(), "dime {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// Runs a command that must fail: non-zero exit, an `error:` line, never Rust panic text.
fn fails(args: &[&str]) -> String {
    let o = dime(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "dime {args:?} should fail");
    assert!(err.starts_with("error:"), "stderr: {err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "stderr: {err}");
    err
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).unwrap()
}

#[test]
fn org_init_writes_key_signet_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("org");
    let text = ok(&[
        "org",
        "init",
        "--domain",
        "Example.TEST",
        "--out",
        s(&out),
        "--dx",
        "mx.example.test",
    ]);
    assert!(text.contains("_dx.example.test. IN TXT \"ver=1 pok="), "{text}");
    let key = std::fs::read_to_string(out.join("org.key")).unwrap();
    assert!(key.starts_with("-----BEGIN ENCRYPTED ORGANIZATIONAL KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("org.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "key file readable by others: {mode:o}");
        // The directory it made for the keys is private too (`spec/dimed.md` §3).
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "key directory open to others: {mode:o}");
    }
    let j = json(&["signet", "inspect", s(&out.join("org.signet")), "--json"]);
    assert_eq!(j["state"], "Id");
    assert_eq!(j["kind"], "org");
    assert_eq!(j["v2"], true);
    // The printed record parses, and its POK is the signet's signing key.
    let zone = std::fs::read_to_string(out.join("dx-record.txt")).unwrap();
    let quoted = &zone[zone.find('"').unwrap()..];
    let r = json(&["record", "parse", quoted.trim(), "--json"]);
    assert_eq!(r["pok"][0], j["signing_key"]);
    assert_eq!(r["delivery_hosts"][0], "mx.example.test");
    // Never overwrites.
    let err = fails(&["org", "init", "--domain", "example.test", "--out", s(&out)]);
    assert!(err.contains("refusing to overwrite"), "{err}");
}

#[test]
fn user_request_sign_and_inspect_reach_id_state() {
    let dir = tempfile::tempdir().unwrap();
    let org = dir.path().join("org");
    let user = dir.path().join("user");
    ok(&["org", "init", "--domain", "example.test", "--out", s(&org)]);
    ok(&["user", "request", "--out", s(&user)]);
    let ssr = json(&["signet", "inspect", s(&user.join("user.ssr")), "--json"]);
    assert_eq!(ssr["state"], "Ssr");
    let signet = dir.path().join("alice.signet");
    let (org_key, org_signet, user_ssr) =
        (org.join("org.key"), org.join("org.signet"), user.join("user.ssr"));
    let args = [
        "org",
        "sign-user",
        "--org-key",
        s(&org_key),
        "--org-signet",
        s(&org_signet),
        "--ssr",
        s(&user_ssr),
        "--address",
        "alice@example.test",
        "--out",
        s(&signet),
    ];
    ok(&args);
    let v = json(&["signet", "inspect", s(&signet), "--org", s(&org.join("org.signet")), "--json"]);
    assert_eq!(v["state"], "Id");
    assert_eq!(v["fingerprints"]["ssr"], ssr["fingerprints"]["ssr"]);
    // Without the org signet the org signatures cannot be checked: the state stops at Ssr.
    let alone = json(&["signet", "inspect", s(&signet), "--json"]);
    assert_eq!(alone["state"], "Ssr");

    // Another domain's address is refused.
    let err = fails(&[
        "org",
        "sign-user",
        "--org-key",
        s(&org.join("org.key")),
        "--org-signet",
        s(&org.join("org.signet")),
        "--ssr",
        s(&user.join("user.ssr")),
        "--address",
        "alice@other.test",
        "--out",
        s(&dir.path().join("x.signet")),
    ]);
    assert!(err.contains("differs"), "{err}");

    // Rotation: a new request signed by the previous key; the chain of custody verifies.
    let user2 = dir.path().join("user2");
    ok(&["user", "request", "--out", s(&user2), "--previous-key", s(&user.join("user.key"))]);
    let signet2 = dir.path().join("alice2.signet");
    let mut args2 = args;
    let user2_ssr = user2.join("user.ssr");
    args2[7] = s(&user2_ssr);
    args2[11] = s(&signet2);
    ok(&args2);
    let v2 = json(&[
        "signet",
        "inspect",
        s(&signet2),
        "--org",
        s(&org.join("org.signet")),
        "--previous",
        s(&signet),
        "--json",
    ]);
    assert_eq!(v2["state"], "Id");
    assert_eq!(v2["custody_checked"], true);
    // The first signet is not chained from the second: the custody check fails.
    let o = dime(&[
        "signet",
        "inspect",
        s(&signet),
        "--org",
        s(&org.join("org.signet")),
        "--previous",
        s(&signet2),
        "--json",
    ]);
    assert!(!o.status.success());
}

#[test]
fn wrong_passphrase_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let org = dir.path().join("org");
    let user = dir.path().join("user");
    ok(&["org", "init", "--domain", "example.test", "--out", s(&org)]);
    ok(&["user", "request", "--out", s(&user), "--insecure-plaintext"]);
    let key = std::fs::read_to_string(user.join("user.key")).unwrap();
    assert!(key.starts_with("-----BEGIN USER KEY-----"), "{key}");
    let o = Command::new(env!("CARGO_BIN_EXE_dime"))
        .args([
            "org",
            "sign-user",
            "--org-key",
            s(&org.join("org.key")),
            "--org-signet",
            s(&org.join("org.signet")),
            "--ssr",
            s(&user.join("user.ssr")),
            "--address",
            "bob@example.test",
            "--out",
            s(&dir.path().join("bob.signet")),
        ])
        .env("DIME_PASSPHRASE", "not the passphrase")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.starts_with("error: cannot read key file"), "{err}");
    assert!(!dir.path().join("bob.signet").exists());
}

#[test]
fn v1_vectors_inspect() {
    let v = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/vectors/dime-v1");
    let org = json(&["signet", "inspect", s(&v.join("org-signet.b64")), "--json"]);
    assert_eq!(org["state"], "Id");
    assert_eq!(org["v2"], false);
    assert_eq!(org["signing_key"], "POBPl5Z0Jtq3/8QK8FkWKAlkRyny2J0dXqY3xh0i3ms");
    assert_eq!(
        org["fingerprints"]["id"],
        "vcBXnfrFk6UeAcGXV9IXqrReFHvYmdIaXeUeWjeCUlk+p9K48lWyWQ1o1bYVvM1n1OxU7aHG8z6sGH2KbGkmiw"
    );
    let user = json(&[
        "signet",
        "inspect",
        s(&v.join("user-signet.b64")),
        "--org",
        s(&v.join("org-signet.b64")),
        "--json",
    ]);
    assert_eq!(user["state"], "Id");
    let text = ok(&["signet", "inspect", s(&v.join("org-signet.b64"))]);
    assert!(text.contains("field  16 Name (11 bytes, text): Example LLC"), "{text}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, b"\x06\xf0\xff\xff\xffhello").unwrap();
    let err = fails(&["signet", "inspect", s(&garbage)]);
    assert!(err.contains("not a readable signet"), "{err}");
    std::fs::write(
        &garbage,
        "-----BEGIN USER SIGNET-----\nAAAA\n=AAAA\n-----END USER SIGNET-----\n",
    )
    .unwrap();
    fails(&["signet", "inspect", s(&garbage)]);
    fails(&["signet", "inspect", s(&dir.path().join("missing"))]);
    fails(&["org", "init", "--domain", "bad domain", "--out", s(&dir.path().join("o"))]);
    let err = fails(&["record", "parse", "ver=2 pok=x"]);
    assert!(err.contains("record does not parse"), "{err}");
    fails(&["record", "format", "--pok", "short"]);
    // Usage errors are clap's: exit status 2.
    let o = dime(&["org", "init"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn record_format_then_parse_round_trips() {
    let pok = "POBPl5Z0Jtq3/8QK8FkWKAlkRyny2J0dXqY3xh0i3ms";
    let text = ok(&[
        "record",
        "format",
        "--pok",
        pok,
        "--policy",
        "strict",
        "--dx",
        "mx1.example.com:2525",
        "--exp",
        "7",
        "--sub",
        "relaxed",
    ]);
    let line = text.trim();
    let j = json(&["record", "parse", line, "--json"]);
    assert_eq!(j["canonical"], line);
    assert_eq!(j["policy"], "strict");
    assert_eq!(j["expiry_days"], 7);
    assert_eq!(j["delivery_hosts"][0], "mx1.example.com:2525");
    let zone = ok(&["record", "format", "--pok", pok, "--zone"]);
    assert_eq!(zone.trim(), format!("\"ver=1 pok={pok}\""));
}

/// `dime --help` and `dimed --help` each open with their own description (issue 25,
/// packaging), not the crate's.
#[test]
fn each_binary_describes_itself_in_its_help() {
    let first = |bin: &str| {
        let o = Command::new(bin).arg("--help").output().unwrap();
        assert!(o.status.success());
        String::from_utf8(o.stdout).unwrap().lines().next().unwrap_or_default().to_owned()
    };
    let dime = first(env!("CARGO_BIN_EXE_dime"));
    let dimed = first(env!("CARGO_BIN_EXE_dimed"));
    assert!(dime.starts_with("dime: "), "{dime}");
    assert!(dimed.starts_with("dimed: "), "{dimed}");
    assert_ne!(dime, dimed);
}

/// Man pages and shell completions generated from the command grammar (issue 25,
/// packaging): `dime docs --out DIR` and `dimed docs --out DIR`.
#[test]
fn docs_writes_man_pages_and_completions_for_each_binary() {
    let dir = tempfile::tempdir().unwrap();
    for (bin, name, sub) in [
        (env!("CARGO_BIN_EXE_dime"), "dime", "dime-user.1"),
        (env!("CARGO_BIN_EXE_dimed"), "dimed", "dimed-serve.1"),
    ] {
        let o = Command::new(bin).args(["docs", "--out"]).arg(dir.path()).output().unwrap();
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        let man = std::fs::read_to_string(dir.path().join("man").join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("{name}.1: {e}"));
        assert!(man.contains(&format!(".TH {name} 1")), "{man}");
        assert!(dir.path().join("man").join(sub).exists(), "{sub}");
        let bash =
            std::fs::read_to_string(dir.path().join("completions").join(format!("{name}.bash")))
                .unwrap();
        assert!(bash.contains(&format!("complete -F _{name}")), "{bash}");
        assert!(dir.path().join("completions").join(format!("_{name}")).exists(), "zsh");
        assert!(dir.path().join("completions").join(format!("{name}.fish")).exists(), "fish");
    }
}
