//! `dime inbox` and `dime read` show why a message is not verified as the socket gives it,
//! the class of `spec/envelope.md` §14 (`spec/dimed.md` §4.3): a message that does not open is
//! listed with `!`, `(unknown)` as its author and its reason as its subject; `dime read`
//! of it fails with the socket's `message not shown: REASON`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::process::Command;

/// Serves one connection per answer: `login` gets `{"ok":true}`, the next request `answer`.
fn serve(listener: UnixListener, answers: Vec<&'static str>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for answer in answers {
            let (s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(&s);
            let mut w = &s;
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.contains("\"login\""), "{line}");
            w.write_all(b"{\"ok\":true}\n").unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            w.write_all(answer.as_bytes()).unwrap();
            w.write_all(b"\n").unwrap();
        }
    })
}

fn dime(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dime"))
        .args(args)
        .env("DIME_USER_PASSWORD", "pw")
        .output()
        .unwrap()
}

const UNOPENED: &str = r#"{"ok":true,"messages":[{"uid":1,"size":900,"from":"","subject":"(not verified: malformed message (part-info))","verified":false,"signatures":{"author_tree":"present","author_full":"present","origin":"present"},"warnings":[]},{"uid":2,"size":900,"from":"alice@a.test","subject":"(not verified: message does not authenticate)","verified":false,"signatures":{"author_tree":"present","author_full":"present","origin":"present"},"warnings":[]}]}"#;

#[test]
fn inbox_and_read_show_the_class_of_a_message_not_verified() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("dimed.sock");
    let server = serve(
        UnixListener::bind(&sock).unwrap(),
        vec![
            UNOPENED,
            r#"{"ok":false,"error":"message not shown: message does not authenticate"}"#,
        ],
    );
    let sock = sock.to_str().unwrap();
    let o = dime(&["inbox", "--socket", sock, "--user", "bob@a.test"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("    1! (unknown) "), "{out}");
    assert!(lines[0].ends_with("900  (not verified: malformed message (part-info))"), "{out}");
    assert!(lines[2].starts_with("    2! alice@a.test "), "{out}");
    assert!(lines[2].ends_with("(not verified: message does not authenticate)"), "{out}");
    let o = dime(&["read", "2", "--socket", sock, "--user", "bob@a.test"]);
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "error: message not shown: message does not authenticate"
    );
    server.join().unwrap();
}
