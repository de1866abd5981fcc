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

/// Serves one connection per entry: the login gets `login`, and when it is `{"ok":true}`, the
/// next request gets `answer`.
fn serve_script(
    listener: UnixListener,
    script: Vec<(&'static str, &'static str)>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for (login, answer) in script {
            let (s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(&s);
            let mut w = &s;
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            w.write_all(login.as_bytes()).unwrap();
            w.write_all(b"\n").unwrap();
            if login != r#"{"ok":true}"# {
                continue;
            }
            line.clear();
            r.read_line(&mut line).unwrap();
            w.write_all(answer.as_bytes()).unwrap();
            w.write_all(b"\n").unwrap();
        }
    })
}

/// A failed `--json` run: exit 1, one JSON object on standard output, the `error:` line on
/// standard error; returns the object.
fn json_error(o: &std::process::Output) -> serde_json::Value {
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert_eq!(out.lines().count(), 1, "one line: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        format!("error: {}", v["error"].as_str().unwrap()),
        err.trim_end(),
        "the same text on both"
    );
    v
}

/// Issue 27 item 4 (`spec/dimed.md` §4.5): `dime read --json` (and `inbox`, `status`) print an
/// error as one JSON object, its class naming the step that failed.
#[test]
fn read_json_prints_errors_as_json_with_their_class() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("dimed.sock");
    const OK: &str = r#"{"ok":true}"#;
    let server = serve_script(
        UnixListener::bind(&sock).unwrap(),
        vec![
            (OK, r#"{"ok":false,"error":"message not shown: message does not authenticate"}"#),
            (OK, r#"{"ok":false,"error":"no such message"}"#),
            (r#"{"ok":false,"error":"login failed"}"#, ""),
            (r#"{"ok":false,"error":"busy"}"#, ""),
            (OK, r#"{"ok":false,"error":"session expired"}"#),
            (OK, "this is no answer"),
            (OK, r#"{"ok":false,"error":"store: backend failed"}"#),
            (r#"{"ok":false,"error":"login failed"}"#, ""),
            (OK, r#"{"ok":false,"error":"no such queued message"}"#),
        ],
    );
    let sock = sock.to_str().unwrap();
    let read = |uid: &str| dime(&["read", uid, "--json", "--socket", sock, "--user", "bob@a.test"]);

    let o = read("2");
    json_error(&o);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "{\"error\":\"message not shown: message does not authenticate\",\"class\":\"not-shown\",\
         \"reason\":\"message does not authenticate\"}\n",
        "the members in their order"
    );
    let classes = [
        ("no such message", "no-such-message"),
        ("login failed", "login"),
        ("busy", "busy"),
        ("session expired", "session"),
    ];
    for (text, class) in classes {
        assert_eq!(json_error(&read("9")), serde_json::json!({"error": text, "class": class}));
    }
    let v = json_error(&read("9"));
    assert_eq!(v["class"], "protocol", "{v}");
    assert!(v["error"].as_str().unwrap().starts_with("dimed sent a malformed answer"), "{v}");
    assert_eq!(
        json_error(&read("9")),
        serde_json::json!({"error": "store: backend failed", "class": "server"})
    );
    let o = dime(&["inbox", "--json", "--socket", sock, "--user", "bob@a.test"]);
    assert_eq!(json_error(&o), serde_json::json!({"error": "login failed", "class": "login"}));
    let o = dime(&["status", "7", "--json", "--socket", sock, "--user", "bob@a.test"]);
    assert_eq!(
        json_error(&o),
        serde_json::json!({"error": "no such queued message", "class": "server"})
    );
    server.join().unwrap();

    // No dimed there; a password file that cannot be read (dimed is not asked).
    let gone = dir.path().join("gone.sock");
    let o =
        dime(&["read", "1", "--json", "--socket", gone.to_str().unwrap(), "--user", "b@a.test"]);
    let v = json_error(&o);
    assert_eq!(v["class"], "unreachable", "{v}");
    assert!(v["error"].as_str().unwrap().starts_with("cannot reach dimed at "), "{v}");
    let missing = dir.path().join("no-password-file");
    let o = dime(&[
        "read",
        "1",
        "--json",
        "--socket",
        sock,
        "--user",
        "b@a.test",
        "--password-file",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(json_error(&o)["class"], "input");

    // Without --json, the error stays on standard error alone.
    let o = dime(&["read", "1", "--socket", gone.to_str().unwrap(), "--user", "b@a.test"]);
    assert!(!o.status.success() && o.stdout.is_empty());
}
