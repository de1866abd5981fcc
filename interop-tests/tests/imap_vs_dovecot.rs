//! The differential test of DMAP against Dovecot (issue 21): a `dimed` and a private Dovecot
//! 2.3 ([`dime_interop_tests::dovecot`]), each with one user, get the same seeded mailbox (a
//! corpus of varied messages, each APPENDed with an explicit internal date) and then the same
//! random command sequences from a seeded generator, in IMAP4rev1 mode (no `ENABLE IMAP4rev2`:
//! Dovecot 2.3 has no rev2). Every response of the two is compared after normalising what may
//! differ; the differences that are allowed (Dovecot wrong, or both right in different ways)
//! are listed, each with its reason, in `imap/differential.py`, which drives both servers
//! through a raw IMAP client of its own. Any other difference fails the test with the seed, the
//! command and both responses.
//!
//! `DIME_DIFF_SEED` (default `1,2,3,4,5,6`, a comma-separated list; each seed gets fresh servers)
//! and `DIME_DIFF_COMMANDS` (default 300 per seed, the seeding APPENDs included)
//! choose the run; `DIME_DIFF_VERBOSE=1` prints every exchange.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use dime_interop_tests::dimed::Dimed;
use dime_interop_tests::dovecot::{Dovecot, Variant};
use std::path::Path;
use std::process::Command;

const ALICE: (&str, &str) = ("alice@example.test", "alice imap password");

#[test]
fn imap_vs_dovecot() {
    if let Some(why) = Dovecot::unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("imap").join("differential.py");
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/dime-dmap/tests/mime");
    let seeds = std::env::var("DIME_DIFF_SEED").unwrap_or_else(|_| "1,2,3,4,5,6".into());
    let commands = std::env::var("DIME_DIFF_COMMANDS").unwrap_or_else(|_| "300".into());
    for seed in seeds.split(',') {
        // Fresh servers per seed: both start from the same empty account.
        let dime = Dimed::start(&[ALICE], "");
        let dovecot = Dovecot::start(Variant::Plain, ALICE.0, ALICE.1);
        let o = Command::new("python3")
            .arg(&script)
            .args(["--dime", &format!("127.0.0.1:{}", dime.imaps.port())])
            .arg("--dime-cert")
            .arg(&dime.cert)
            .args(["--dovecot", &format!("127.0.0.1:{}", dovecot.imap.port())])
            .args(["--user", ALICE.0, "--password", ALICE.1])
            .arg("--corpus")
            .arg(&corpus)
            .args(["--seed", seed, "--commands", &commands])
            .output()
            .expect("python3 runs");
        println!("{}", String::from_utf8_lossy(&o.stdout));
        eprintln!("{}", String::from_utf8_lossy(&o.stderr));
        if !o.status.success() {
            eprintln!("dovecot's log:\n{}", dovecot.log());
        }
        assert!(o.status.success(), "seed {seed}: the two servers differ (see above)");
    }
}

/// Holds both servers up for probing by hand: `DIME_DIFF_HOLD=1 cargo test ... hold -- --ignored --nocapture`.
#[test]
#[ignore = "for probing by hand"]
fn hold() {
    let dime = Dimed::start(&[ALICE], "");
    let dovecot = Dovecot::start(Variant::Plain, ALICE.0, ALICE.1);
    println!("HOLD dime {} cert {} dovecot {}", dime.imaps, dime.cert.display(), dovecot.imap);
    std::thread::sleep(std::time::Duration::from_secs(1200));
}
