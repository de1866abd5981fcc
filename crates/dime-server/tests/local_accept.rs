//! A local socket out of file descriptors (`spec/dimed.md` §4): its accept loop backs off as
//! the network listeners' do (`dime_net::gate::AcceptBackoff`) rather than retrying at once,
//! and serves again once descriptors are free. The listener runs in a child process (this
//! binary again) whose open-file limit `sh`'s `ulimit -n` lowers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{p, store_config};
use dime_server::admin::Admin;
use dime_store::Store;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Set for the child: the directory of its store and socket.
const CHILD: &str = "DIME_LOCAL_ACCEPT_CHILD_DIR";

/// The child's open-file limit: room for the runtime, the store and a few connections.
const CHILD_NOFILE: u32 = 48;

/// The child of [`a_local_socket_out_of_file_descriptors_backs_off_and_serves_again`]: the
/// operator's socket in [`CHILD`]'s directory. Prints `ready`, serves until its standard input
/// closes, then prints `accept failures N`. Does nothing unless [`CHILD`] is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_accept_child() {
    let Some(dir) = std::env::var_os(CHILD).map(PathBuf::from) else { return };
    let logs = dime_testkit::logs::Captured::default();
    tracing::subscriber::set_global_default(logs.clone()).unwrap();
    let store = Arc::new(Store::open(store_config(&dir, 3), p()).unwrap());
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let path = dir.join("admin.sock");
    dime_server::admin::serve(&path, Arc::new(Admin::new(store)), stop_rx).unwrap();
    println!("ready");
    tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
        .await
        .unwrap()
        .unwrap();
    println!("accept failures {}", logs.count("accept failed"));
}

// Issue 20, point 11 (as point 2 for the network listeners): out of descriptors, the local
// socket's accept loop retried at once, silently, for as long as it lasted. It now backs off
// from 10 ms to 1 s, logging the failures, and serves again once descriptors are free. Held out
// of descriptors for 3 s, it fails at most about 10 times (fewer on a slow machine, never more).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_socket_out_of_file_descriptors_backs_off_and_serves_again() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n {CHILD_NOFILE} && exec \"$0\" --exact local_accept_child --nocapture \
             --test-threads=1"
        ))
        .arg(exe)
        .env(CHILD, dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut line_with = |prefix: &str| -> String {
        loop {
            let line = lines.next().expect("the child says it").unwrap();
            // libtest may print its own text before ours on the same line.
            if let Some(at) = line.find(prefix) {
                return line[at + prefix.len()..].trim().to_owned();
            }
        }
    };
    line_with("ready");
    let path = dir.path().join("admin.sock");
    // More connections than the child has descriptors: the rest wait in its backlog, and each
    // accept of them fails.
    let mut held = Vec::new();
    for _ in 0..CHILD_NOFILE * 2 {
        held.push(tokio::net::UnixStream::connect(&path).await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(held);
    // Served again once the descriptors are back.
    let mut served = false;
    for _ in 0..100 {
        let mut c = BufReader::new(tokio::net::UnixStream::connect(&path).await.unwrap());
        let mut answer = String::new();
        if c.get_mut().write_all(b"{\"op\":\"queue\"}\n").await.is_ok()
            && c.read_line(&mut answer).await.is_ok()
            && answer.contains("\"ok\":true")
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "served after the exhaustion");
    drop(stdin);
    let failures: usize = line_with("accept failures ").parse().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "the child failed: {status}");
    assert!(failures >= 1, "the child's socket never ran out of descriptors, or said nothing");
    assert!(failures <= 12, "{failures} failed accepts in about 3 s out of descriptors");
}
