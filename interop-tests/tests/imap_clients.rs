//! Real IMAP clients against `dimed`'s DMAP listeners (`spec/dmap.md`), on loopback: Python's
//! imaplib and imapclient, mbsync, curl. Each test starts its own `dimed`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use dime_interop_tests::dimed::Dimed;
use std::path::Path;
use std::process::Command;

const ALICE: (&str, &str) = ("alice@example.test", "alice imap password");

fn python(script: &str, args: &[String]) -> std::process::Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("imap").join(script);
    Command::new("python3").arg(path).args(args).output().expect("python3 runs")
}

#[test]
fn imaplib_smoke() {
    let d = Dimed::start(&[ALICE], "");
    let o = python(
        "smoke.py",
        &[
            "127.0.0.1".into(),
            d.imaps.port().to_string(),
            d.cert.display().to_string(),
            ALICE.0.into(),
            ALICE.1.into(),
        ],
    );
    println!("{}", String::from_utf8_lossy(&o.stdout));
    eprintln!("{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success());
}

const BOB: (&str, &str) = ("bob@example.test", "bob imap password");

/// Every command of `spec/dmap.md` §4 through Python's imaplib and imapclient (IDLE), with
/// the answers checked: `interop-tests/imap/session.py`.
#[test]
fn imaplib_and_imapclient_session_covers_every_command() {
    let d = Dimed::start(&[ALICE, BOB], "");
    let o = python(
        "session.py",
        &[
            "127.0.0.1".into(),
            d.imaps.port().to_string(),
            d.imap.port().to_string(),
            d.cert.display().to_string(),
            ALICE.0.into(),
            ALICE.1.into(),
            BOB.0.into(),
            BOB.1.into(),
            d.dir.path().join("d/data/dimed.sock").display().to_string(),
        ],
    );
    println!("{}", String::from_utf8_lossy(&o.stdout));
    eprintln!("{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "session.py failed");
}

/// Several clients of one account APPEND, STORE, EXPUNGE, COPY and FETCH at once
/// (`interop-tests/imap/stress.py`): no acknowledged APPEND lost, no UID given twice, no UID's
/// content changed. A few seconds here; the long run of the test plan is
/// `DIME_IMAP_STRESS_SECS=600 cargo test -p dime-interop-tests --test imap_clients concurrent`.
#[test]
fn concurrent_clients_lose_no_acknowledged_append() {
    let secs = std::env::var("DIME_IMAP_STRESS_SECS").unwrap_or_else(|_| "5".into());
    let d = Dimed::start(&[ALICE], "");
    let o = python(
        "stress.py",
        &[
            "127.0.0.1".into(),
            d.imaps.port().to_string(),
            d.cert.display().to_string(),
            ALICE.0.into(),
            ALICE.1.into(),
            secs,
            "6".into(),
            "7".into(),
        ],
    );
    println!("{}", String::from_utf8_lossy(&o.stdout));
    eprintln!("{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "stress.py failed");
}
