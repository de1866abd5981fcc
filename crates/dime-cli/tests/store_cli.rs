//! `dime user add|passwd|recover|delete|rotate|export|import|purge` end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn dime(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dime"));
    c.args(args).env("DIME_PASSPHRASE", "org passphrase").env_remove("DIME_USER_PASSWORD");
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
    let e = String::from_utf8(o.stderr).unwrap();
    assert!(e.starts_with("error: "), "{e}");
    e
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn account_lifecycle_through_the_cli() {
    let t = tempfile::tempdir().unwrap();
    let org = t.path().join("org");
    ok(&["org", "init", "--domain", "example.org", "--out", s(&org)], &[]);
    let key = org.join("org.key");
    let data = t.path().join("data");
    let d = s(&data);
    let pw = [("DIME_USER_PASSWORD", "first")];

    let out = ok(
        &[
            "user",
            "add",
            "--data-dir",
            d,
            "--address",
            "alice@example.org",
            "--org-key",
            s(&key),
            "--recovery",
            "none",
        ],
        &pw,
    );
    assert!(out.contains("high security") && out.contains("the mail is lost"), "{out}");
    assert!(t.path().join("data-config/pepper").is_file());
    let e = fails(
        &["user", "add", "--data-dir", d, "--address", "alice@example.org", "--org-key", s(&key)],
        &pw,
    );
    assert!(e.contains("exists already"), "{e}");

    let out = ok(
        &[
            "user",
            "add",
            "--data-dir",
            d,
            "--address",
            "bob@example.org",
            "--org-key",
            s(&key),
            "--recovery",
            "code",
        ],
        &pw,
    );
    let code = out
        .lines()
        .find_map(|l| l.strip_prefix("recovery code (shown once, keep it offline): "))
        .unwrap();
    let code_file = t.path().join("code.txt");
    std::fs::write(&code_file, code).unwrap();
    ok(
        &[
            "user",
            "recover",
            "--data-dir",
            d,
            "--address",
            "bob@example.org",
            "--code-file",
            s(&code_file),
        ],
        &[("DIME_NEW_PASSWORD", "bobs new")],
    );
    ok(
        &["user", "rotate", "--data-dir", d, "--address", "bob@example.org", "--org-key", s(&key)],
        &[("DIME_USER_PASSWORD", "bobs new")],
    );

    ok(
        &["user", "passwd", "--data-dir", d, "--address", "alice@example.org"],
        &[("DIME_USER_PASSWORD", "first"), ("DIME_NEW_PASSWORD", "second")],
    );
    let e = fails(
        &["user", "passwd", "--data-dir", d, "--address", "alice@example.org"],
        &[("DIME_USER_PASSWORD", "first"), ("DIME_NEW_PASSWORD", "x")],
    );
    assert!(e.contains("wrong password"), "{e}");
    let out = ok(
        &[
            "user",
            "purge",
            "--data-dir",
            d,
            "--address",
            "alice@example.org",
            "--older-than-days",
            "30",
        ],
        &[],
    );
    assert!(out.contains("purged 0 messages"), "{out}");

    let archive = t.path().join("alice.archive");
    ok(
        &[
            "user",
            "export",
            "--data-dir",
            d,
            "--address",
            "alice@example.org",
            "--out",
            s(&archive),
        ],
        &[("DIME_USER_PASSWORD", "second"), ("DIME_ARCHIVE_PASSWORD", "arch")],
    );
    let data2 = t.path().join("other");
    ok(
        &["user", "import", "--data-dir", s(&data2), "--file", s(&archive)],
        &[("DIME_ARCHIVE_PASSWORD", "arch"), ("DIME_NEW_PASSWORD", "third")],
    );
    ok(
        &["user", "passwd", "--data-dir", s(&data2), "--address", "alice@example.org"],
        &[("DIME_USER_PASSWORD", "third"), ("DIME_NEW_PASSWORD", "fourth")],
    );

    let e = fails(&["user", "delete", "--data-dir", d, "--address", "alice@example.org"], &[]);
    assert!(e.contains("--yes"), "{e}");
    ok(&["user", "delete", "--data-dir", d, "--address", "alice@example.org", "--yes"], &[]);
    let e = fails(
        &["user", "passwd", "--data-dir", d, "--address", "alice@example.org"],
        &[("DIME_USER_PASSWORD", "second"), ("DIME_NEW_PASSWORD", "x")],
    );
    assert!(e.contains("no such account"), "{e}");
    let e = fails(
        &[
            "user",
            "purge",
            "--data-dir",
            s(&t.path().join("none")),
            "--address",
            "a@example.org",
            "--older-than-days",
            "1",
        ],
        &[],
    );
    assert!(e.contains("no pepper"), "{e}");
}
