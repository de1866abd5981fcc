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
    let served = serve(&path, Arc::new(Admin::new(store)), stop_rx).unwrap();
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

/// An entry the worker leased is listed in flight, and the operator's hold and retry of it
/// are refused until its attempt ends (`spec/dimed.md` §5, `spec/storage.md` §7.3); another
/// entry is held, listed held, and released.
#[tokio::test]
async fn an_entry_under_way_is_listed_in_flight_and_not_held_behind_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(store_config(dir.path(), 3), p()).unwrap());
    let mut rng = dime_testkit::seeded_rng(1);
    let now = dime_server::now();
    let mut queue = || {
        store.enqueue(&mut rng, Transport::Dmtp, AccountId([1; 16]), "b.test", b"e", now).unwrap()
    };
    let (busy, waiting) = (queue(), queue());
    // As the worker leases (`Outbound::run`): the first entry, for five minutes.
    let leased = store.lease(Transport::Dmtp, now, 300, 1).unwrap();
    assert_eq!(leased[0].entry.id, busy);

    let path = dir.path().join("admin.sock");
    let (stop, stop_rx) = watch::channel(false);
    let served = serve(&path, Arc::new(Admin::new(Arc::clone(&store))), stop_rx).unwrap();
    let mut c = BufReader::new(tokio::net::UnixStream::connect(&path).await.unwrap());
    let listed = ask(&mut c, b"{\"op\":\"queue\"}\n").await;
    let e = listed["entries"].as_array().unwrap();
    assert_eq!((&e[0]["in_flight"], &e[1]["in_flight"]), (&true.into(), &false.into()), "{e:?}");
    for op in ["queue_hold", "queue_retry", "queue_release"] {
        let r = ask(&mut c, format!("{{\"op\":\"{op}\",\"id\":{}}}\n", busy.0).as_bytes()).await;
        assert_eq!(r["ok"], false, "{op}");
        assert!(r["error"].as_str().unwrap().contains("under way"), "{op}: {r}");
    }
    let hold = format!("{{\"op\":\"queue_hold\",\"id\":{}}}\n", waiting.0);
    assert_eq!(ask(&mut c, hold.as_bytes()).await["ok"], true);
    let listed = ask(&mut c, b"{\"op\":\"queue\"}\n").await;
    assert_eq!(listed["entries"][1]["held"], true);
    assert!(store.lease(Transport::Dmtp, now, 300, 10).unwrap().is_empty(), "held: not leased");
    let release = format!("{{\"op\":\"queue_release\",\"id\":{}}}\n", waiting.0);
    assert_eq!(ask(&mut c, release.as_bytes()).await["ok"], true);
    let listed = ask(&mut c, b"{\"op\":\"queue\"}\n").await;
    assert_eq!(listed["entries"][1]["held"], false);
    // Deleting needs the served domain (its bounce); this socket has none.
    let delete = format!("{{\"op\":\"queue_delete\",\"id\":{}}}\n", waiting.0);
    let r = ask(&mut c, delete.as_bytes()).await;
    assert_eq!(
        (&r["ok"], &r["error"]),
        (&false.into(), &"queue entries are not deleted on this socket".into())
    );
    stop.send(true).unwrap();
    served.await.unwrap();
}
