//! The operator's socket (`spec/dimed.md` §5) on a real Unix socket: its mode, the queue
//! listing page by page, bad requests and the length limit.
#![allow(clippy::unwrap_used)]

mod common;
use common::{T0, p, store_config};
use dime_server::admin::{Admin, MAX_ADMIN_REQUEST_LEN, serve};
use dime_store::{AccountId, Queue, Store, Timestamp, Transport};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::watch;

async fn ask(lines: &mut BufReader<tokio::net::UnixStream>, req: &[u8]) -> serde_json::Value {
    lines.get_mut().write_all(req).await.unwrap();
    let mut answer = String::new();
    lines.read_line(&mut answer).await.unwrap();
    serde_json::from_str(&answer).unwrap()
}

#[tokio::test]
async fn the_queue_is_listed_page_by_page_on_a_socket_only_its_owner_may_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(store_config(dir.path(), 3), p()).unwrap());
    let mut rng = dime_testkit::seeded_rng(1);
    let t0 = T0;
    let ids: Vec<_> = (0..3)
        .map(|_| store.enqueue(&mut rng, Transport::Dmtp, AccountId([1; 16]), "b.test", b"e", t0))
        .collect::<Result<_, _>>()
        .unwrap();
    store.defer(&mut rng, ids[1], Timestamp(t0.0 + 60), "connect: refused", t0).unwrap();

    let path = dir.path().join("admin.sock");
    let (stop, stop_rx) = watch::channel(false);
    let served = serve(&path, Arc::new(Admin { store, local: None }), stop_rx).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let mut c = BufReader::new(tokio::net::UnixStream::connect(&path).await.unwrap());

    let page = ask(&mut c, b"{\"op\":\"queue\",\"max\":2}\n").await;
    let e = page["entries"].as_array().unwrap();
    assert_eq!(
        (e.len(), &e[0]["queue_id"], &e[1]["queue_id"]),
        (2, &ids[0].0.into(), &ids[1].0.into())
    );
    assert_eq!(e[0]["status"]["state"], "queued");
    assert_eq!(e[1]["status"]["state"], "deferred");
    assert_eq!(e[1]["status"]["reason"], "connect: refused");
    assert_eq!(e[1]["status"]["destination"], "b.test");
    assert_eq!((&e[1]["attempts"], &e[1]["due"]), (&1.into(), &(t0.0 + 60).into()));
    let after = format!("{{\"op\":\"queue\",\"after\":{},\"max\":2}}\n", ids[1].0);
    let page = ask(&mut c, after.as_bytes()).await;
    let e = page["entries"].as_array().unwrap();
    assert_eq!((e.len(), &e[0]["queue_id"]), (1, &ids[2].0.into()));
    // The default page is the whole queue here.
    let page = ask(&mut c, b"{\"op\":\"queue\"}\n").await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 3);

    // Bad requests are errors on the same connection; a line over the limit closes it.
    let bad = ask(&mut c, b"{\"op\":\"flush\"}\n").await;
    assert_eq!(bad["ok"], false);
    assert!(bad["error"].as_str().unwrap().starts_with("bad request"), "{bad}");
    let mut long = vec![b' '; MAX_ADMIN_REQUEST_LEN + 1];
    long.push(b'\n');
    let too_long = ask(&mut c, &long).await;
    assert_eq!(too_long["error"], "request too long");
    let mut rest = String::new();
    assert_eq!(c.read_line(&mut rest).await.unwrap(), 0, "closed after a request too long");

    stop.send(true).unwrap();
    served.await.unwrap();
}
