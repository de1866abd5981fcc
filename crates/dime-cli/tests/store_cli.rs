//! `dime user add|passwd|recover|delete|rotate|export|import|purge` end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dime_store::{Accounts, Deliveries, Mailboxes};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../../dime-store/tests/common/mod.rs"]
mod store_common;

fn dime(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dime"));
    // Only the secrets a test gives, and no terminal: a secret not given is an error.
    c.args(args)
        .env("DIME_PASSPHRASE", "org passphrase")
        .env("DIME_ALLOW_WEAK_PASSWORD", "1")
        .env_remove("DIME_USER_PASSWORD")
        .env_remove("DIME_NEW_PASSWORD")
        .env_remove("DIME_ARCHIVE_PASSWORD")
        .stdin(std::process::Stdio::null());
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

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A temporary directory holding an `example.org` org (`org init`): the directory and the org
/// key's path.
fn with_org() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let org = t.path().join("org");
    ok(&["org", "init", "--domain", "example.org", "--out", s(&org)], &[]);
    let key = org.join("org.key");
    (t, key)
}

/// `dime user add` of `address` with this recovery mode; returns its output.
fn add_user(
    data_dir: &str,
    address: &str,
    org_key: &Path,
    recovery: &str,
    env: &[(&str, &str)],
) -> String {
    ok(
        &[
            "user",
            "add",
            "--data-dir",
            data_dir,
            "--address",
            address,
            "--org-key",
            s(org_key),
            "--recovery",
            recovery,
        ],
        env,
    )
}

#[test]
fn account_lifecycle_through_the_cli() {
    let (t, key) = with_org();
    let data = t.path().join("data");
    let d = s(&data);
    let pw = [("DIME_USER_PASSWORD", "first")];

    let out = add_user(d, "alice@example.org", &key, "none", &pw);
    assert!(out.contains("high security") && out.contains("the mail is lost"), "{out}");
    assert!(t.path().join("data-config/pepper").is_file());
    let e = fails(
        &["user", "add", "--data-dir", d, "--address", "alice@example.org", "--org-key", s(&key)],
        &pw,
    );
    assert!(e.contains("exists already"), "{e}");

    let out = add_user(d, "bob@example.org", &key, "code", &pw);
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
        &[
            "user",
            "import",
            "--data-dir",
            s(&data2),
            "--file",
            s(&archive),
            "--domain",
            "example.org",
            "--org-key",
            s(&key),
        ],
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

/// Opens the CLI's store in-process (same data directory, vault and pepper).
fn open_store(t: &Path) -> dime_store::Store {
    let cfg = t.join("data-config");
    dime_store::Store::open(
        dime_store::StoreConfig {
            data_dir: t.join("data"),
            vault_path: cfg.join("vault.redb"),
            pepper: dime_core::Secret::new(std::fs::read(cfg.join("pepper")).unwrap()),
            argon2: dime_core::crypto::Argon2Params::DEFAULT,
            idle_timeout_secs: 900,
        },
        dime_core::crypto::default_provider(),
    )
    .unwrap()
}

#[test]
fn rotate_rewrap_moves_stored_mail_to_the_new_key() {
    let (t, key) = with_org();
    let data = t.path().join("data");
    let d = s(&data);
    let pw = [("DIME_USER_PASSWORD", "pw")];
    let addr = "carol@example.org";
    add_user(d, addr, &key, "none", &pw);
    let carol = dime_core::Mailbox::parse(addr).unwrap();
    // Real, origin-signed envelopes sealed to carol's current signet's key.
    let tx = store_common::Sender::new();
    let mut sent = Vec::new();
    {
        let store = open_store(t.path());
        for i in 0..3u64 {
            let env = tx.seal(&store, &carol, &format!("mail {i}"), i);
            store.deliver(&carol, &env, dime_store::Timestamp(1)).unwrap();
            sent.push(env);
        }
    }
    // Clear errors: no org key and nothing to resume; both at once.
    let e = fails(&["user", "rotate", "--data-dir", d, "--address", addr], &pw);
    assert!(e.contains("--org-key"), "{e}");
    let e = fails(
        &[
            "user",
            "rotate",
            "--data-dir",
            d,
            "--address",
            addr,
            "--org-key",
            s(&key),
            "--resume-rewrap",
        ],
        &pw,
    );
    assert!(e.contains("cannot be used with"), "{e}");
    let e = fails(
        &["user", "rotate", "--data-dir", d, "--address", addr, "--resume-rewrap"],
        &[("DIME_USER_PASSWORD", "wrong")],
    );
    assert!(e.contains("cannot log in") && e.contains("wrong password"), "{e}");

    let out = ok(
        &["user", "rotate", "--data-dir", d, "--address", addr, "--org-key", s(&key), "--rewrap"],
        &pw,
    );
    assert!(out.contains("rotated keys of carol@example.org: generation 1"), "{out}");
    assert!(
        out.contains("re-wrapped 3 of 3 messages of carol@example.org to generation 1"),
        "{out}"
    );
    let out = ok(&["user", "rotate", "--data-dir", d, "--address", addr, "--resume-rewrap"], &pw);
    assert!(out.contains("re-wrapped 0 of 0 messages"), "{out}");
    assert!(!out.contains("rotated"), "{out}");

    // The envelopes are unchanged and open through their re-wrap overlays.
    let store = open_store(t.path());
    let mut s = store.login(&carol, b"pw", dime_store::Timestamp(2)).unwrap();
    let a = s.account();
    for (i, e) in store.list(a, dime_store::MailboxId::INBOX).unwrap().iter().enumerate() {
        assert_eq!(e.key_generation, 1);
        assert_eq!(store.fetch(a, dime_store::MailboxId::INBOX, e.uid).unwrap(), sent[i]);
        let o = store
            .open_message_uncached(
                &mut s,
                dime_store::MailboxId::INBOX,
                e.uid,
                dime_store::Timestamp(2),
            )
            .unwrap();
        assert_eq!(o.via, dime_store::OpenedVia::RewrapOverlay);
        assert_eq!(tx.verify(o), format!("mail {i}"));
    }
}

/// Issue 27 item 4: each `dime user` store command offers only the flags it reads. `delete`
/// and `purge` are the operator's and read no password: a password file given to them is
/// refused by the parser (exit 2), before anything is done.
#[test]
fn each_account_command_refuses_the_password_flags_it_does_not_read() {
    let (t, key) = with_org();
    let data = t.path().join("data");
    let d = s(&data);
    let addr = "dave@example.org";
    add_user(d, addr, &key, "none", &[("DIME_USER_PASSWORD", "pw")]);
    let x = t.path().join("x");
    std::fs::write(&x, "not the password\n").unwrap();
    let x = s(&x);
    let out = t.path().join("dave.archive");
    let code = t.path().join("code.txt");
    let refused = |args: &[&str], flag: &str| {
        let o = dime(args, &[("DIME_USER_PASSWORD", "pw"), ("DIME_NEW_PASSWORD", "new")]);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(&format!("unexpected argument '{flag}'")), "{args:?}: {e}");
    };
    let base = ["--data-dir", d, "--address", addr];
    for flag in ["--password-file", "--new-password-file"] {
        refused(&[&["user", "delete"], &base[..], &["--yes", flag, x]].concat(), flag);
        refused(
            &[&["user", "purge"], &base[..], &["--older-than-days", "1", flag, x]].concat(),
            flag,
        );
    }
    refused(
        &[&["user", "add"], &base[..], &["--org-key", s(&key), "--new-password-file", x]].concat(),
        "--new-password-file",
    );
    refused(
        &[&["user", "rotate"], &base[..], &["--org-key", s(&key), "--new-password-file", x]]
            .concat(),
        "--new-password-file",
    );
    refused(
        &[&["user", "export"], &base[..], &["--out", s(&out), "--new-password-file", x]].concat(),
        "--new-password-file",
    );
    refused(
        &[&["user", "recover"], &base[..], &["--code-file", s(&code), "--password-file", x]]
            .concat(),
        "--password-file",
    );
    refused(
        &["user", "import", "--data-dir", d, "--file", s(&out), "--password-file", x],
        "--password-file",
    );
    // Nothing was done: no archive, and the account is there with its password, which
    // `passwd` reads from a file (as `add`, `rotate` and `export` do).
    assert!(!out.exists());
    let pw = t.path().join("pw");
    std::fs::write(&pw, "pw\n").unwrap();
    let o = ok(
        &[&["user", "passwd"], &base[..], &["--password-file", s(&pw)]].concat(),
        &[("DIME_NEW_PASSWORD", "pw2")],
    );
    assert!(o.contains("password changed for dave@example.org"), "{o}");
}

/// The recovery code printed on the line `PREFIX CODE` of `out`.
fn code_after<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("no code: {out}"))
}

/// Issue 27 item 5 (`spec/storage.md` §6.3): `dime user recover` with a code prints a new
/// code, shown once; the code used fails the second time, and the new one works once.
#[test]
fn recover_prints_a_new_code_and_the_used_one_fails() {
    let (t, key) = with_org();
    let data = t.path().join("data");
    let d = s(&data);
    let addr = "erin@example.org";
    let out = add_user(d, addr, &key, "code", &[("DIME_USER_PASSWORD", "lost")]);
    let first = code_after(&out, "recovery code (shown once, keep it offline): ").to_owned();
    let recover = |code: &str, new: &str| {
        let f = t.path().join("code.txt");
        std::fs::write(&f, code).unwrap();
        dime(
            &["user", "recover", "--data-dir", d, "--address", addr, "--code-file", s(&f)],
            &[("DIME_NEW_PASSWORD", new)],
        )
    };
    let new_code =
        "new recovery code (shown once, keep it offline; the code used no longer works): ";
    let o = recover(&first, "one");
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.starts_with("recovered erin@example.org: new password set\n"), "{text}");
    let second = code_after(&text, new_code).to_owned();
    assert_ne!(second, first);

    let o = recover(&first, "two");
    assert!(!o.status.success(), "the used code recovered again");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("login failed: wrong password or recovery secret"), "{e}");
    assert!(o.stdout.is_empty(), "no code is shown for a refused one");

    let o = recover(&second, "two");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let third = code_after(&String::from_utf8(o.stdout).unwrap(), new_code).to_owned();
    assert!(!recover(&second, "three").status.success());
    assert_ne!(third, second);
    ok(
        &["user", "passwd", "--data-dir", d, "--address", addr],
        &[("DIME_USER_PASSWORD", "two"), ("DIME_NEW_PASSWORD", "four")],
    );
}

/// `dime user import` moves an account to this host (issue 27 items 2 and 4;
/// `spec/storage.md` §8.3): the archive password (from a file or the environment) is checked
/// before the new account password is asked for; an address outside this host's domain is
/// refused unless the new one is named.
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
