//! The origin's queue worker (`spec/dmtp.md` §11.2). How it leases: one pass (`run_once`)
//! leases once, at most `batch` entries; a lease of 0 s is still tried; the worker leases again
//! at once after a full lease, unreadable entries included. When its store fails: one pass
//! gives the store's first error back; the worker logs it and goes on until shutdown. The
//! failing store runs on a file system whose power the test cuts ([`PowerCutFs`]): from then
//! on every write fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{AUTHOR, Side, T0, domain, mailbox, p, side_on, store_config};
use dime_core::Domain;
use dime_server::outbound::dmtp::{Dmtp, Route, RouteError, Routes, Transports};
use dime_server::outbound::{Outbound, RetryPolicy};
use dime_store::{Accounts, CutMode, PowerCutFs, Queue, Store, Transport};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
        Err(RouteError::Permanent("not a DIME domain".into()))
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

fn outbound(a: &Side, routes: &Arc<CutRoutes>) -> Outbound<Dmtp<CutRoutes>> {
    Outbound::new(
        Arc::clone(&a.store),
        Arc::clone(&a.local),
        Dmtp::new(
            Arc::clone(&a.local),
            Arc::clone(routes),
            Transports::TlsOnly,
            dime_testkit::tls_provider(),
        ),
        RetryPolicy::default(),
        p(),
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
async fn worker_outlives_the_error(out: Outbound<Dmtp<CutRoutes>>, ready: impl Fn() -> bool) {
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

/// Routes that say every domain is not a DIME domain (a permanent failure), counting lookups.
#[derive(Default)]
struct NotDime(AtomicUsize);

impl Routes for NotDime {
    async fn route(&self, _: &Domain) -> Result<Route, RouteError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(RouteError::Permanent("not a DIME domain".into()))
    }
}

/// a.test on a store in `dir`, with `n` entries queued to `n` domains (one lookup each).
fn queued(dir: &Path, n: usize) -> Side {
    let a = common::side(dir, "a.test", 1, AUTHOR);
    let author = a.store.account_of(&mailbox(AUTHOR)).unwrap();
    let mut rng = dime_testkit::seeded_rng(2);
    for i in 0..n {
        let mut payload = b"DQ1\0".to_vec();
        payload.extend_from_slice(&T0.0.to_be_bytes());
        payload.extend_from_slice(b"an origin-signed envelope");
        let to = format!("d{i}.test");
        a.store.enqueue(&mut rng, Transport::Dmtp, author, &to, &payload, T0).unwrap();
    }
    a
}

fn outbound_with<R: Routes>(a: &Side, routes: &Arc<R>, policy: RetryPolicy) -> Outbound<Dmtp<R>> {
    Outbound::new(
        Arc::clone(&a.store),
        Arc::clone(&a.local),
        Dmtp::new(
            Arc::clone(&a.local),
            Arc::clone(routes),
            Transports::TlsOnly,
            dime_testkit::tls_provider(),
        ),
        policy,
        p(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_leases_once_at_most_batch_entries() {
    let dir = tempfile::tempdir().unwrap();
    let a = queued(dir.path(), 3);
    let routes = Arc::new(NotDime::default());
    let out = outbound_with(&a, &routes, RetryPolicy { batch: 2, ..RetryPolicy::default() });
    let mut rng = dime_testkit::seeded_rng(3);
    assert_eq!(out.run_once(T0, &mut rng).await.unwrap().len(), 2);
    assert_eq!(routes.0.load(Ordering::SeqCst), 2);
    assert_eq!(out.run_once(T0, &mut rng).await.unwrap().len(), 1);
    assert!(a.store.queue_entries().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_leased_for_0_s_is_still_tried() {
    // spec/dmtp.md §11.2: the lease margin applies to leases longer than 0 s.
    let dir = tempfile::tempdir().unwrap();
    let a = queued(dir.path(), 1);
    let routes = Arc::new(NotDime::default());
    let out = outbound_with(&a, &routes, RetryPolicy { lease_secs: 0, ..RetryPolicy::default() });
    let mut rng = dime_testkit::seeded_rng(3);
    assert_eq!(out.run_once(T0, &mut rng).await.unwrap().len(), 1);
    assert_eq!(routes.0.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_full_lease_with_an_unreadable_entry_the_worker_leases_again_at_once() {
    // A lease of `batch` entries, one of them failed as unreadable, was full: the worker
    // leases the next at once, not at its next interval (an hour here). The entries are queued
    // once the worker has had its first interval, and it is woken once.
    let dir = tempfile::tempdir().unwrap();
    let a = queued(dir.path(), 0);
    let routes = Arc::new(NotDime::default());
    let wake = Arc::new(tokio::sync::Notify::new());
    let out = outbound_with(&a, &routes, RetryPolicy { batch: 2, ..RetryPolicy::default() })
        .with_wake(Arc::clone(&wake));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker =
        tokio::spawn(out.run(Duration::from_secs(3600), dime_testkit::seeded_rng(4), async {
            let _ = stopped.await;
        }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let author = a.store.account_of(&mailbox(AUTHOR)).unwrap();
    let mut rng = dime_testkit::seeded_rng(5);
    let early = dime_store::Timestamp(T0.0 - 10);
    a.store.enqueue(&mut rng, Transport::Dmtp, author, "x.test", b"DQ9", early).unwrap();
    for i in 0..2 {
        let mut payload = b"DQ1\0".to_vec();
        payload.extend_from_slice(&T0.0.to_be_bytes());
        payload.extend_from_slice(b"an origin-signed envelope");
        let to = format!("d{i}.test");
        a.store.enqueue(&mut rng, Transport::Dmtp, author, &to, &payload, T0).unwrap();
    }
    wake.notify_one();
    let mut left = usize::MAX;
    for _ in 0..3000 {
        left = a.store.queue_entries().unwrap().len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(left, 0, "every entry was leased and failed");
    assert_eq!(routes.0.load(Ordering::SeqCst), 2);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), worker).await.unwrap().unwrap();
}
