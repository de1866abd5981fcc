//! `dime user import` moves an account to this host (issue 27 items 2 and 4;
//! `spec/storage.md` §8.3): the archive password (from a file or the environment) is checked
//! before the new account password is asked for; an address outside this host's domain is
//! refused unless the new one is named; the moved account gets a signet of this host's
//! organisation and keeps its history.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn dime(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dime"));
    c.args(args)
        .env("DIME_PASSPHRASE", "org passphrase")
        .env_remove("DIME_USER_PASSWORD")
        .env_remove("DIME_NEW_PASSWORD")
        .env_remove("DIME_ARCHIVE_PASSWORD")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let o = dime(args, env);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn fails(args: &[&str], env: &[(&str, &str)]) -> String {
    let o = dime(args, env);
    assert!(!o.status.success(), "{args:?} should fail");
    String::from_utf8(o.stderr).unwrap()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn an_account_moves_to_another_domain_only_under_a_named_address() {
    let t = tempfile::tempdir().unwrap();
    let (a_org, b_org) = (t.path().join("a-org"), t.path().join("b-org"));
    ok(&["org", "init", "--domain", "a.test", "--out", s(&a_org)], &[]);
    ok(&["org", "init", "--domain", "b.test", "--out", s(&b_org)], &[]);
    let (a_key, b_key) = (a_org.join("org.key"), b_org.join("org.key"));
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let pw = [("DIME_NEW_PASSWORD", "alice pw 1")];
    ok(
        &[
            "user",
            "add",
            "--data-dir",
            s(&a),
            "--address",
            "alice@a.test",
            "--org-key",
            s(&a_key),
            "--recovery",
            "none",
        ],
        &[("DIME_USER_PASSWORD", "alice pw 1")],
    );
    let archive = t.path().join("alice.archive");
    ok(
        &["user", "export", "--data-dir", s(&a), "--address", "alice@a.test", "--out", s(&archive)],
        &[("DIME_USER_PASSWORD", "alice pw 1"), ("DIME_ARCHIVE_PASSWORD", "archive pw")],
    );
    let apw = t.path().join("archive-password");
    std::fs::write(&apw, "archive pw\n").unwrap();
    let wrong = t.path().join("wrong-password");
    std::fs::write(&wrong, "not it\n").unwrap();
    // b.test creates its store first (its own pepper).
    ok(
        &[
            "user",
            "add",
            "--data-dir",
            s(&b),
            "--address",
            "someone@b.test",
            "--org-key",
            s(&b_key),
            "--recovery",
            "none",
        ],
        &[("DIME_USER_PASSWORD", "x pw")],
    );
    let import = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "user",
            "import",
            "--data-dir",
            s(&b),
            "--file",
            s(&archive),
            "--domain",
            "b.test",
            "--org-key",
            s(&b_key),
        ]
        .iter()
        .map(|x| (*x).to_owned())
        .collect();
        v.extend(extra.iter().map(|x| (*x).to_owned()));
        v
    };
    // A wrong archive password is refused before the new password is asked for (there is no
    // new password to give here, and no terminal).
    let e = fails(&args(&import(&["--archive-password-file", s(&wrong)])), &[]);
    assert!(e.contains("wrong password or damaged archive"), "{e}");
    assert!(!e.contains("new account password"), "{e}");
    // The archive's own address is of a.test: refused on b.test, and the same for a named
    // address of another domain.
    let e = fails(&args(&import(&["--archive-password-file", s(&apw)])), &pw);
    assert!(e.contains("alice@a.test is not of this host's domain b.test"), "{e}");
    assert!(e.contains("--address"), "{e}");
    let e = fails(
        &args(&import(&["--archive-password-file", s(&apw), "--address", "alice@c.test"])),
        &pw,
    );
    assert!(e.contains("alice@c.test is not of this host's domain b.test"), "{e}");
    let e = fails(
        &["user", "passwd", "--data-dir", s(&b), "--address", "alice@a.test"],
        &[("DIME_USER_PASSWORD", "alice pw 1"), ("DIME_NEW_PASSWORD", "x")],
    );
    assert!(e.contains("no such account"), "nothing was imported: {e}");
    // Named, it moves: a signet of b.test's organisation, the old address in its history.
    let out =
        ok(&args(&import(&["--archive-password-file", s(&apw), "--address", "alice@b.test"])), &pw);
    assert!(
        out.contains("imported alice@a.test as alice@b.test: new keys signed by b.test"),
        "{out}"
    );
    ok(
        &["user", "passwd", "--data-dir", s(&b), "--address", "alice@b.test"],
        &[("DIME_USER_PASSWORD", "alice pw 1"), ("DIME_NEW_PASSWORD", "alice pw 2")],
    );
    // The archive password from the environment works as well (the account exists now).
    let e = fails(
        &args(&import(&["--address", "alice@b.test"])),
        &[("DIME_ARCHIVE_PASSWORD", "archive pw"), ("DIME_NEW_PASSWORD", "y")],
    );
    assert!(e.contains("exists"), "{e}");
}
