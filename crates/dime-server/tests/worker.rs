//! The origin's queue worker when its store fails (`spec/dmtp.md` §11.2): one pass
//! (`run_once`) gives the store's first error back; the worker (`run`) logs it and goes on
//! until shutdown. The store runs on a file system whose power the test cuts
//! ([`PowerCutFs`]): from then on every write fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{AUTHOR, Side, T0, domain, mailbox, p, side_on, store_config};
use dime_core::Domain;
use dime_server::origin::{Outbound, RetryPolicy, Route, RouteError, Routes, Transports};
use dime_store::{CutMode, PowerCutFs, Store, Transport};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Routes whose lookup cuts the origin store's power, then says the domain is not a DIME
/// domain (a permanent failure, whose recording needs the store).
struct CutRoutes {
    fs: PowerCutFs,
    looked_up: AtomicBool,
}

impl Routes for CutRoutes {
    async fn route(&self, _: &Domain) -> Result<Route, RouteError> {
        self.fs.cut(CutMode::Clean);
        self.looked_up.store(true, Ordering::SeqCst);
        Err(RouteError::Permanent("not a DIME domain"))
    }
}

/// a.test on a store on `fs`, with one entry queued to b.test (a payload of the first
/// version: the time, then the envelope, which no attempt gets to send).
fn origin(fs: &PowerCutFs) -> (Side, Arc<CutRoutes>) {
    let store = Store::open_with_fs(store_config(Path::new("/origin"), 1), p(), fs).unwrap();
    let a = side_on(store, "a.test", 1, AUTHOR);
    let mut payload = b"DQ1\0".to_vec();
    payload.extend_from_slice(&T0.0.to_be_bytes());
    payload.extend_from_slice(b"an origin-signed envelope");
    let author = a.store.account_of(&mailbox(AUTHOR)).unwrap();
    let mut rng = dime_testkit::seeded_rng(2);
    a.store.enqueue(&mut rng, Transport::Dmtp, author, "b.test", &payload, T0).unwrap();
    let routes = Arc::new(CutRoutes { fs: fs.clone(), looked_up: AtomicBool::new(false) });
    (a, routes)
}

fn outbound(a: &Side, routes: &Arc<CutRoutes>) -> Outbound<CutRoutes> {
    Outbound::new(
        Arc::clone(&a.store),
        Arc::clone(&a.local),
        Arc::clone(routes),
        RetryPolicy::default(),
        Transports::TlsOnly,
        p(),
        dime_testkit::tls_provider(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_gives_back_the_stores_error_when_the_lease_fails() {
    let fs = PowerCutFs::new();
    let (a, routes) = origin(&fs);
    fs.cut(CutMode::Clean);
    let out = outbound(&a, &routes);
    let mut rng = dime_testkit::seeded_rng(3);
    assert!(out.run_once(T0, &mut rng).await.is_err(), "the lease failed");
    assert!(!routes.looked_up.load(Ordering::SeqCst), "nothing was leased");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_gives_back_the_stores_error_when_an_outcome_cannot_be_recorded() {
    let fs = PowerCutFs::new();
    let (a, routes) = origin(&fs);
    let out = outbound(&a, &routes);
    let mut rng = dime_testkit::seeded_rng(3);
    let r = out.run_once(T0, &mut rng).await;
    assert!(routes.looked_up.load(Ordering::SeqCst), "the entry was leased and tried");
    assert!(r.is_err(), "the permanent failure was not recorded: {r:?}");
}

/// Runs the worker on `out` until the test lets it stop; checks that it is still running
/// once `ready` holds and a few intervals have passed, and that it stops when told.
async fn worker_outlives_the_error(out: Outbound<CutRoutes>, ready: impl Fn() -> bool) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker =
        tokio::spawn(out.run(Duration::from_millis(10), dime_testkit::seeded_rng(4), async {
            let _ = stopped.await;
        }));
    for _ in 0..500 {
        if ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(ready(), "the store failed");
    // Twenty intervals, each a lease that fails.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!worker.is_finished(), "the worker ended on a store error");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), worker).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_goes_on_after_a_failed_lease() {
    let fs = PowerCutFs::new();
    let (a, routes) = origin(&fs);
    fs.cut(CutMode::Clean);
    worker_outlives_the_error(outbound(&a, &routes), || true).await;
    assert!(!routes.looked_up.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_goes_on_after_an_outcome_it_could_not_record() {
    let fs = PowerCutFs::new();
    let (a, routes) = origin(&fs);
    let looked_up = Arc::clone(&routes);
    worker_outlives_the_error(outbound(&a, &routes), move || {
        looked_up.looked_up.load(Ordering::SeqCst)
    })
    .await;
}

#[test]
fn the_queued_entry_is_to_b_test() {
    // The setup's own check: the entry the tests lease is there, due, to b.test.
    let fs = PowerCutFs::new();
    let (a, _) = origin(&fs);
    let e = a.store.queue_entries().unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].destination, domain("b.test").as_str());
}
