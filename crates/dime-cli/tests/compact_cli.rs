//! Purged mail leaves the store's files (`spec/storage.md` §12) through the binaries:
//! `dime user purge --compact`, `dimed compact` on a stopped store, and a running `dimed`'s
//! scheduled compaction (`[store] compact_interval_secs`), which goes on serving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dime_store::{Accounts, Deliveries, MailboxId, Mailboxes, Timestamp, Uid};
use rand_core::RngCore;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const ME: &str = "alice@example.test";
const PW: &str = "compact pw";

/// A running `dimed`, stopped with SIGTERM when the test ends, panicking or not.
struct Dimed(std::process::Child);

impl Drop for Dimed {
    fn drop(&mut self) {
        // Only while it runs (once reaped, its process id may be another's).
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill").arg(self.0.id().to_string()).status();
            let _ = self.0.wait();
        }
    }
}

/// `dimed quickstart --no-serve` in `dir`: a domain with the user [`ME`] (password [`PW`]).
fn quickstart(dir: &Path) -> PathBuf {
    let root = dir.join("qs");
    let listen = format!("127.0.0.1:{}", dime_testkit::free_port());
    let o = Command::new(env!("CARGO_BIN_EXE_dimed"))
        .args(["quickstart", "--no-serve", "--listen", &listen, "--data-dir"])
        .arg(&root)
        .env("DIME_USER_PASSWORD", PW)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    root
}

fn run(bin: &str, args: &[&str]) -> String {
    let o = Command::new(bin).args(args).env("DIME_USER_PASSWORD", PW).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// `dime user purge` of [`ME`]'s mail older than 30 days, with `extra` flags.
fn purge(root: &Path, extra: &[&str]) -> String {
    let (data, config) = (root.join("data"), root.join("config"));
    let mut args = vec![
        "user",
        "purge",
        "--data-dir",
        data.to_str().unwrap(),
        "--config-dir",
        config.to_str().unwrap(),
        "--address",
        ME,
        "--older-than-days",
        "30",
    ];
    args.extend_from_slice(extra);
    run(env!("CARGO_BIN_EXE_dime"), &args)
}

/// The quickstart's store, opened in this process (dimed stopped).
fn open_store(root: &Path) -> dime_store::Store {
    let cfg = root.join("config");
    dime_store::Store::open(
        dime_store::StoreConfig {
            data_dir: root.join("data"),
            vault_path: cfg.join("vault.redb"),
            pepper: dime_core::Secret::new(std::fs::read(cfg.join("pepper")).unwrap()),
            argon2: dime_core::crypto::Argon2Params::DEFAULT,
            idle_timeout_secs: 900,
        },
        dime_core::crypto::default_provider(),
    )
    .unwrap()
}

/// `n` envelopes of random octets (the store keeps envelopes opaque), 600 to 4,000 long.
fn envelopes(seed: u64, n: usize) -> Vec<Vec<u8>> {
    let mut rng = dime_testkit::seeded_rng(seed);
    (0..n)
        .map(|_| {
            let mut e = vec![0u8; 600 + (rng.next_u32() % 3400) as usize];
            rng.fill_bytes(&mut e);
            e
        })
        .collect()
}

fn now() -> Timestamp {
    Timestamp(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs())
}

/// Delivers `old` (arrived in 1970: a purge of mail older than 30 days removes it) and `kept`
/// (arrived now) to [`ME`]; returns the UIDs of `kept`.
fn deliver(root: &Path, old: &[Vec<u8>], kept: &[Vec<u8>]) -> Vec<Uid> {
    let store = open_store(root);
    let me = dime_core::Mailbox::parse(ME).unwrap();
    let uids = kept.iter().map(|e| store.deliver(&me, e, now()).unwrap().uid).collect();
    for e in old {
        store.deliver(&me, e, Timestamp(1)).unwrap();
    }
    uids
}

/// Whether any file under `dir` holds 32 octets from the middle of `e`.
fn on_disk(dir: &Path, e: &[u8]) -> bool {
    let m = e.len() / 2 - 16;
    let needle = &e[m..m + 32];
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let p = entry.unwrap().path();
        if p.is_dir() {
            on_disk(&p, e)
        } else {
            std::fs::read(&p).map(|b| b.windows(32).any(|w| w == needle)).unwrap_or(false)
        }
    })
}

fn assert_gone(root: &Path, old: &[Vec<u8>]) {
    for (i, e) in old.iter().enumerate() {
        assert!(!on_disk(root, e), "purged envelope {i} is still in a file under {root:?}");
    }
}

fn reads_back(root: &Path, uids: &[Uid], kept: &[Vec<u8>]) {
    let store = open_store(root);
    let a = store.account_of(&dime_core::Mailbox::parse(ME).unwrap()).unwrap();
    for (uid, e) in uids.iter().zip(kept) {
        let got = store.fetch(a, MailboxId::INBOX, *uid).unwrap();
        assert!(&got == e, "{uid:?} reads back other octets");
    }
}

#[test]
fn dime_user_purge_compact_leaves_no_octets_of_purged_mail() {
    let dir = tempfile::tempdir().unwrap();
    let root = quickstart(dir.path());
    let (old, kept) = (envelopes(1, 16), envelopes(2, 3));
    let uids = deliver(&root, &old, &kept);
    assert!(old.iter().any(|e| on_disk(&root, e)));
    let out = purge(&root, &["--compact"]);
    assert!(out.contains("purged 16 messages") && out.contains("compacted the store"), "{out}");
    assert_gone(&root, &old);
    reads_back(&root, &uids, &kept);
}

#[test]
fn dimed_compact_on_a_stopped_store_leaves_no_octets_of_purged_mail() {
    let dir = tempfile::tempdir().unwrap();
    let root = quickstart(dir.path());
    let (old, kept) = (envelopes(3, 16), envelopes(4, 3));
    let uids = deliver(&root, &old, &kept);
    let out = purge(&root, &[]);
    assert!(out.contains("purged 16 messages") && !out.contains("compacted"), "{out}");
    // The purge alone leaves octets in the database's free pages.
    assert!(old.iter().any(|e| on_disk(&root, e)), "the purge alone left nothing behind");
    let config = root.join("dimed.toml");
    let out = run(env!("CARGO_BIN_EXE_dimed"), &["compact", "--config", config.to_str().unwrap()]);
    assert!(out.starts_with("compacted "), "{out}");
    assert_gone(&root, &old);
    reads_back(&root, &uids, &kept);
}

#[test]
fn a_running_dimed_compacts_on_its_schedule_and_goes_on_serving() {
    let dir = tempfile::tempdir().unwrap();
    let root = quickstart(dir.path());
    let config = root.join("dimed.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[store]\ncompact_interval_secs = 1\n");
    std::fs::write(&config, text).unwrap();
    let old = envelopes(5, 16);
    deliver(&root, &old, &[]);
    purge(&root, &[]);
    assert!(old.iter().any(|e| on_disk(&root, e)), "the purge alone left nothing behind");

    let mut dimed = Dimed(
        Command::new(env!("CARGO_BIN_EXE_dimed"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("DIMED_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut dimed.0;
    // Every log line, as it comes (until dimed ends).
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines() {
            if tx.send(l.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(stdout.any(|l| l.unwrap().starts_with("dimed serving")), "dimed did not start");
    // Wait for the first scheduled compaction's log line (the bound only keeps a broken
    // build from hanging the test).
    let mut seen = String::new();
    loop {
        let l = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("no scheduled compaction; dimed said:\n{seen}"));
        seen.push_str(&l);
        seen.push('\n');
        if l.contains("store compacted") {
            break;
        }
    }
    assert_gone(&root, &old);

    // It goes on serving: mail sent to itself arrives, while it keeps compacting.
    let sock = root.join("data/dimed.sock");
    let sock = sock.to_str().unwrap();
    let dime = env!("CARGO_BIN_EXE_dime");
    run(
        dime,
        &["send", "--socket", sock, "--user", ME, "--to", ME, "--subject", "after", "--body", "b"],
    );
    let t0 = std::time::Instant::now();
    let listing = loop {
        let out = run(dime, &["inbox", "--socket", sock, "--user", ME]);
        if !out.trim().is_empty() {
            break out;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "the message did not arrive");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(listing.contains("after"), "{listing}");
    // `dimed compact` is for a stopped store: refused, and says why, while dimed runs.
    let o = Command::new(env!("CARGO_BIN_EXE_dimed"))
        .args(["compact", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("is dimed running?"), "{e}");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "dimed did not stop cleanly: {status}");
    seen.extend(rx.try_iter().map(|l| l + "\n"));
    assert!(!seen.contains("compaction failed"), "{seen}");
}
