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

/// A real, origin-signed envelope to `to` (sealed to its current signet's key).
fn envelope(store: &dime_store::Store, to: &dime_core::Mailbox, text: &str, seed: u64) -> Vec<u8> {
    use dime_core::crypto::{Ed25519Seed, X25519Secret, default_provider};
    use dime_envelope::*;
    let p = default_provider();
    let actor = |n: u8| {
        let enc = ActorSecret::new(p, X25519Secret::from_bytes([n; 32]));
        let seed = Ed25519Seed::from_bytes([n + 100; 32]);
        let keys = ActorKeys { encryption: *enc.public(), signing: p.signature.public_key(&seed) };
        (enc, seed, keys)
    };
    let (_, author_seed, author) = actor(1);
    let (origin_enc, origin_seed, origin) = actor(2);
    let (_, _, dest) = actor(3);
    let (_, signet) = store.signet(to).unwrap();
    let addressing = Addressing {
        author: dime_core::Mailbox::parse("sender@example.com").unwrap(),
        author_keys: author,
        origin: dime_core::Domain::parse("example.com").unwrap(),
        origin_keys: origin,
        destination: to.domain().clone(),
        destination_keys: dest,
        recipient: to.clone(),
        recipient_keys: ActorKeys::from_signet(&signet).unwrap(),
    };
    let m = Message {
        common_headers: Headers::from_pairs([("Subject", text)]).unwrap(),
        other_headers: Headers::from_pairs([("X-Test", "1")]).unwrap(),
        parts: vec![Part {
            kind: PartKind::Display,
            info: PartInfo { content_type: "text/plain".into(), filename: String::new() },
            data: text.as_bytes().to_vec(),
        }],
    };
    let mut rng = dime_testkit::seeded_rng(seed);
    let mut sealed =
        seal_message(p, &mut rng, &addressing, Signer::Author(&author_seed), &m).unwrap();
    let v =
        open_as_origin(p, &sealed[..], &origin_enc).unwrap().verify(p, &author.signing).unwrap();
    sealed.extend(v.origin_signature_chunk(p, &mut rng, &origin_seed, &addressing.origin).unwrap());
    sealed
}

#[test]
fn rotate_rewrap_moves_stored_mail_to_the_new_key() {
    let t = tempfile::tempdir().unwrap();
    let org = t.path().join("org");
    ok(&["org", "init", "--domain", "example.org", "--out", s(&org)], &[]);
    let key = org.join("org.key");
    let data = t.path().join("data");
    let d = s(&data);
    let pw = [("DIME_USER_PASSWORD", "pw")];
    let addr = "carol@example.org";
    ok(
        &[
            "user",
            "add",
            "--data-dir",
            d,
            "--address",
            addr,
            "--org-key",
            s(&key),
            "--recovery",
            "none",
        ],
        &pw,
    );
    let carol = dime_core::Mailbox::parse(addr).unwrap();
    let mut sent = Vec::new();
    {
        let store = open_store(t.path());
        for i in 0..3u64 {
            let env = envelope(&store, &carol, &format!("mail {i}"), i);
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
    let p = dime_core::crypto::default_provider();
    let author = p.signature.public_key(&dime_core::crypto::Ed25519Seed::from_bytes([101; 32]));
    let origin = p.signature.public_key(&dime_core::crypto::Ed25519Seed::from_bytes([102; 32]));
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
        let v = o.message.verify(p, &author, Some(&origin)).unwrap();
        assert_eq!(v.view().message.parts[0].data, format!("mail {i}").into_bytes());
    }
}
