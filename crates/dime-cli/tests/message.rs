//! `dime message inspect` on a message sealed to keys that `dime` itself created.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dime_core::crypto::default_provider;
use dime_envelope::{
    ActorKeys, Addressing, Headers, Message, Part, PartInfo, PartKind, Signer, seal_message,
};
use dime_signet::{Signet, keyfile};
use std::path::{Path, PathBuf};
use std::process::Command;

fn dime(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dime")).args(args).output().expect("run dime")
}

fn ok(args: &[&str]) -> String {
    let o = dime(args);
    assert!(o.status.success(), "dime {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Party {
    key: PathBuf,
    signet: PathBuf,
}

/// An organisation and one user of it, made with `dime` (keys in plaintext for the test).
fn org_and_user(dir: &Path, domain: &str, user: &str) -> (Party, Party) {
    let org = dir.join(domain);
    ok(&["org", "init", "--domain", domain, "--out", s(&org), "--insecure-plaintext"]);
    let u = dir.join(user);
    ok(&["user", "request", "--out", s(&u), "--insecure-plaintext"]);
    let signet = dir.join(format!("{user}.signet"));
    ok(&[
        "org",
        "sign-user",
        "--org-key",
        s(&org.join("org.key")),
        "--org-signet",
        s(&org.join("org.signet")),
        "--ssr",
        s(&u.join("user.ssr")),
        "--address",
        &format!("{user}@{domain}"),
        "--out",
        s(&signet),
        "--insecure-plaintext",
    ]);
    (
        Party { key: org.join("org.key"), signet: org.join("org.signet") },
        Party { key: u.join("user.key"), signet },
    )
}

fn keys(p: &Party) -> ActorKeys {
    let b = std::fs::read(&p.signet).unwrap();
    ActorKeys::from_signet(&Signet::decode_any(&b).unwrap()).unwrap()
}

#[test]
fn inspect_shows_what_each_key_opens() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, author) = org_and_user(dir.path(), "a.test", "alice");
    let (dest, recipient) = org_and_user(dir.path(), "b.test", "bob");
    let p = default_provider();
    let addressing = Addressing {
        author: "alice@a.test".parse().unwrap(),
        author_keys: keys(&author),
        origin: "a.test".parse().unwrap(),
        origin_keys: keys(&origin),
        destination: "b.test".parse().unwrap(),
        destination_keys: keys(&dest),
        recipient: "bob@b.test".parse().unwrap(),
        recipient_keys: keys(&recipient),
    };
    let author_keys = match keyfile::read(p, &std::fs::read(&author.key).unwrap(), None).unwrap() {
        keyfile::KeySet::User(k) => k,
        keyfile::KeySet::Org(_) => panic!("user key expected"),
    };
    let message = Message {
        common_headers: Headers::from_pairs([("Subject", "hello")]).unwrap(),
        other_headers: Headers::new(),
        parts: vec![Part {
            kind: PartKind::Display,
            info: PartInfo { content_type: "text/plain".into(), filename: String::new() },
            data: b"hi bob".to_vec(),
        }],
    };
    let mut rng = dime_testkit::seeded_rng(3);
    let sealed = seal_message(
        p,
        &mut rng,
        &addressing,
        Signer::Author(author_keys.signing_seed()),
        &message,
    )
    .unwrap();
    let file = dir.path().join("msg.dime");
    std::fs::write(&file, &sealed).unwrap();

    let roles = |key: &Path| -> Vec<String> {
        let j: serde_json::Value = serde_json::from_str(&ok(&[
            "message",
            "inspect",
            s(&file),
            "--key",
            s(key),
            "--json",
            "--insecure-plaintext",
        ]))
        .unwrap();
        assert_eq!(j["error"], serde_json::Value::Null);
        j["key_roles"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect()
    };
    assert!(roles(&recipient.key).contains(&"Recipient".to_owned()));
    assert!(roles(&origin.key).contains(&"Origin".to_owned()));
    assert!(!roles(&origin.key).contains(&"Recipient".to_owned()));
    assert!(roles(&dest.key).contains(&"Destination".to_owned()));
    assert!(!roles(&dest.key).contains(&"Recipient".to_owned()));

    let text = ok(&["message", "inspect", s(&file)]);
    assert!(text.contains("chunks"), "{text}");
    // A damaged message: inspect reports it and exits non-zero, without panic text.
    let mut bad = sealed.clone();
    bad.truncate(bad.len() / 2);
    std::fs::write(&file, &bad).unwrap();
    let o = dime(&["message", "inspect", s(&file)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.starts_with("error: message is not valid"), "{err}");
}
