//! The origin and destination roles over real loopback sockets: a user of a.test submits, the
//! origin's worker delivers to b.test over QUIC and over TLS, the message lands sealed in the
//! recipient's store and opens after login; refusals take their documented codes; the retry
//! schedule backs off and gives up after the maximum lifetime.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{AUTHOR, RECIPIENT, StaticRoutes, T0, World, contains, domain, mailbox, p, world};
use dime_core::Fingerprint;
use dime_core::crypto::{Ed25519Seed, Hashed};
use dime_dmtp::{Delivery, Refusal, SignetName, VerifyAnswer};
use dime_envelope::{ActorSecret, open_as_origin};
use dime_net::Handler;
use dime_server::origin::submit;
use dime_server::outbound::dmtp::{Dmtp, Transports};
use dime_server::outbound::{Outbound, Outcome, RetryPolicy, backoff};
use dime_server::{Destination, StaticOrigins};
use dime_signet::FingerprintKind;
use dime_store::{Accounts, DeliveryState, MailboxId, Mailboxes, Queue, Timestamp, Transport};
use std::net::SocketAddr;
use std::sync::Arc;

const SUBJECT: &str = "canary-subject-7f3a";
const BODY: &str = "canary-body-91c2 hello";

impl World {
    /// Submits, runs one pass, and returns the outcomes.
    async fn deliver_over(&self, addr: SocketAddr, transports: Transports, seed: u64) -> Outcome {
        let sealed = self.seal(seed, "b.test");
        let mut rng = dime_testkit::seeded_rng(seed + 100);
        let (_, dest) =
            submit(p(), &mut rng, &self.a.store, &self.a.local, &mailbox(AUTHOR), &sealed, T0)
                .unwrap();
        assert_eq!(dest, domain("b.test"));
        let out = self.outbound(addr, transports);
        let mut outcomes = out.run_once(T0, &mut rng).await.unwrap();
        assert_eq!(outcomes.len(), 1, "{outcomes:?}");
        outcomes.remove(0)
    }

    /// The recipient logs in and opens every message in the inbox; checks each.
    fn recipient_reads(&self) -> usize {
        let store = &self.b.store;
        let mut s = store.login(&mailbox(RECIPIENT), b"pw", T0).unwrap();
        let entries = store.list(s.account(), MailboxId::INBOX).unwrap();
        let author_key = self.a.store.signet(&mailbox(AUTHOR)).unwrap().1.signing_key().unwrap();
        let origin_key = self.a.local.org_signet.signing_key().unwrap();
        for e in &entries {
            let mut rng = dime_testkit::seeded_rng(9);
            let opened = store.open_message(&mut rng, &mut s, MailboxId::INBOX, e.uid, T0).unwrap();
            let v = opened.message.verify(p(), &author_key, Some(&origin_key)).unwrap();
            let view = v.view();
            assert_eq!(view.author, mailbox(AUTHOR));
            assert_eq!(view.recipient, mailbox(RECIPIENT));
            assert_eq!(view.message.parts[0].data, BODY.as_bytes());
        }
        entries.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_over_quic_and_tls_and_the_recipient_opens_it() {
    let w = world(SUBJECT, BODY).await;
    let o = w.deliver_over(w.quic.local_addr, Transports::QuicOnly, 1).await;
    assert!(matches!(o, Outcome::Delivered { .. }), "{o:?}");
    let o = w.deliver_over(w.tls.local_addr, Transports::TlsOnly, 2).await;
    assert!(matches!(o, Outcome::Delivered { .. }), "{o:?}");
    // QUIC to a TCP-only port gets no answer: the worker falls back to TLS over TCP.
    let o = w.deliver_over(w.tls.local_addr, Transports::QuicThenTls, 3).await;
    assert!(matches!(o, Outcome::Delivered { .. }), "{o:?}");
    assert_eq!(w.recipient_reads(), 3);
    assert!(w.a.store.queue_entries().unwrap().is_empty());
    // Canary audit of both data directories.
    let root = w.dir.path();
    assert!(!contains(&root.join("a"), "canaryrcpt"), "origin data holds the recipient");
    for canary in ["canaryauthor", SUBJECT, "canary-body-91c2"] {
        assert!(!contains(&root.join("b"), canary), "destination data holds {canary}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_delivers_its_entries_at_once_up_to_in_flight() {
    for transports in [Transports::QuicOnly, Transports::TlsOnly] {
        let w = world(SUBJECT, BODY).await;
        let addr = match transports {
            Transports::QuicOnly => w.quic.local_addr,
            _ => w.tls.local_addr,
        };
        w.handler.hold_ms.store(50, std::sync::atomic::Ordering::SeqCst);
        let mut rng = dime_testkit::seeded_rng(40);
        for seed in 0..12 {
            let sealed = w.seal(40 + seed, "b.test");
            submit(p(), &mut rng, &w.a.store, &w.a.local, &mailbox(AUTHOR), &sealed, T0).unwrap();
        }
        let policy = RetryPolicy { in_flight: 5, ..RetryPolicy::default() };
        let out = w.outbound_with(addr, transports, policy);
        let o = out.run_once(T0, &mut rng).await.unwrap();
        assert_eq!(o.len(), 12);
        assert!(o.iter().all(|o| matches!(o, Outcome::Delivered { .. })), "{o:?}");
        // Before, a pass made its attempts one after the other: never more than 1 at once.
        let most = w.handler.most.load(std::sync::atomic::Ordering::SeqCst);
        assert!((2..=5).contains(&most), "{transports:?}: {most} deliveries at once");
        assert_eq!(w.recipient_reads(), 12);
        assert!(w.a.store.queue_entries().unwrap().is_empty());
        // Outcomes that ended together are recorded together; each status says delivered,
        // with the transaction id the destination gave.
        for o in &o {
            let Outcome::Delivered { id, txid } = o else { unreachable!() };
            let s = w.a.store.delivery_status(*id).unwrap().unwrap();
            assert_eq!(s.state, DeliveryState::Delivered { txid: txid.as_str().to_owned() });
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_drains_without_waiting_for_the_interval() {
    let w = world(SUBJECT, BODY).await;
    let mut rng = dime_testkit::seeded_rng(60);
    for seed in 0..10 {
        let sealed = w.seal(60 + seed, "b.test");
        submit(p(), &mut rng, &w.a.store, &w.a.local, &mailbox(AUTHOR), &sealed, T0).unwrap();
    }
    // Four a lease and an hour between ticks: only a worker that leases again after a full
    // lease delivers all ten (three leases) before the deadline.
    let policy = RetryPolicy { batch: 4, ..RetryPolicy::default() };
    let out = w.outbound_with(w.quic.local_addr, Transports::QuicOnly, policy);
    let worker = Worker::start(out, std::time::Duration::from_secs(3600), 61);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !w.a.store.queue_entries().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the backlog did not drain");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    worker.stop().await;
    assert_eq!(w.recipient_reads(), 10);
}

/// An outbound worker ([`Outbound::run`]) on its own task.
struct Worker {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// Runs `out` with `interval` between its looks for due entries.
    fn start(
        out: Outbound<Dmtp<StaticRoutes>>,
        interval: std::time::Duration,
        seed: u64,
    ) -> Worker {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(out.run(interval, dime_testkit::seeded_rng(seed), shutdown));
        Worker { stop, task }
    }

    /// Shuts it down and waits for it to end.
    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap();
    }
}

/// Waits (up to 20 s) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}: not within 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_starts_new_mail_while_an_earlier_attempt_is_under_way() {
    let w = world(SUBJECT, BODY).await;
    // Each delivery takes 1.5 s at the destination.
    w.handler.hold_ms.store(1500, std::sync::atomic::Ordering::SeqCst);
    let mut rng = dime_testkit::seeded_rng(70);
    let wake = Arc::new(tokio::sync::Notify::new());
    let policy = RetryPolicy { in_flight: 4, ..RetryPolicy::default() };
    let out = w
        .outbound_with(w.quic.local_addr, Transports::QuicOnly, policy)
        .with_wake(Arc::clone(&wake));
    let first = w.seal(70, "b.test");
    submit(p(), &mut rng, &w.a.store, &w.a.local, &mailbox(AUTHOR), &first, T0).unwrap();
    let worker = Worker::start(out, std::time::Duration::from_secs(3600), 71);
    until("the first delivery starts", || w.handler.under_way() == 1).await;
    // Submitted while the first is under way: it starts at once, beside it (a worker that went
    // by passes started it only once the first had ended).
    let second = w.seal(71, "b.test");
    submit(p(), &mut rng, &w.a.store, &w.a.local, &mailbox(AUTHOR), &second, T0).unwrap();
    wake.notify_one();
    until("both delivered", || w.a.store.queue_entries().unwrap().is_empty()).await;
    assert_eq!(w.handler.most.load(std::sync::atomic::Ordering::SeqCst), 2);
    worker.stop().await;
    assert_eq!(w.recipient_reads(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_shutdown_the_worker_ends_its_attempts_and_hands_back_what_it_did_not_try() {
    let w = world(SUBJECT, BODY).await;
    w.handler.hold_ms.store(500, std::sync::atomic::Ordering::SeqCst);
    let mut rng = dime_testkit::seeded_rng(80);
    let mut ids = Vec::new();
    for seed in 0..3 {
        let sealed = w.seal(80 + seed, "b.test");
        let (id, _) =
            submit(p(), &mut rng, &w.a.store, &w.a.local, &mailbox(AUTHOR), &sealed, T0).unwrap();
        ids.push(id);
    }
    // One at a time: the first is under way, the other two wait, leased.
    let policy = RetryPolicy { in_flight: 1, ..RetryPolicy::default() };
    let out = w.outbound_with(w.quic.local_addr, Transports::QuicOnly, policy);
    let worker = Worker::start(out, std::time::Duration::from_secs(3600), 81);
    until("the first delivery starts", || w.handler.under_way() == 1).await;
    worker.stop().await;
    // The attempt under way ended and was recorded; the other two are due at once: the one
    // leased and not tried was handed back, not left leased until its lease ends.
    let status = w.a.store.delivery_status(ids[0]).unwrap().unwrap();
    assert!(matches!(status.state, DeliveryState::Delivered { .. }), "{status:?}");
    let now = dime_server::now();
    let mut again: Vec<_> =
        w.a.store.lease(Transport::Dmtp, now, 60, 10).unwrap().iter().map(|l| l.entry.id).collect();
    again.sort();
    assert_eq!(again, ids[1..].to_vec());
    assert_eq!(w.recipient_reads(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_whose_lease_runs_out_while_it_waits_is_not_tried_twice() {
    let w = world(SUBJECT, BODY).await;
    // Each delivery takes 3.5 s; one at a time; leases of 4 s (a margin of 1 s).
    w.handler.hold_ms.store(3500, std::sync::atomic::Ordering::SeqCst);
    let mut rng = dime_testkit::seeded_rng(90);
    let mut ids = Vec::new();
    for seed in 0..2 {
        let sealed = w.seal(90 + seed, "b.test");
        let (id, _) =
            submit(p(), &mut rng, &w.a.store, &w.a.local, &mailbox(AUTHOR), &sealed, T0).unwrap();
        ids.push(id);
    }
    let policy = RetryPolicy { in_flight: 1, lease_secs: 4, ..RetryPolicy::default() };
    let out = w.outbound_with(w.quic.local_addr, Transports::QuicOnly, policy);
    let worker = Worker::start(out, std::time::Duration::from_millis(500), 91);
    // The second waited 3.5 s of its 4 s lease: it is left, leased again once due, and tried
    // once. Started as it was, it would also have been leased again and delivered twice.
    until("both delivered", || w.a.store.queue_entries().unwrap().is_empty()).await;
    worker.stop().await;
    assert_eq!(w.recipient_reads(), 2);
    for id in ids {
        assert_eq!(w.a.store.delivery_status(id).unwrap().unwrap().attempts, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_destination_defers_with_backoff_then_gives_up() {
    let w = world(SUBJECT, BODY).await;
    let sealed = w.seal(5, "b.test");
    let mut rng = dime_testkit::seeded_rng(5);
    submit(p(), &mut rng, &w.a.store, &w.a.local, &mailbox(AUTHOR), &sealed, T0).unwrap();
    // A TCP port with nothing listening: refused at once.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = w.outbound(dead, Transports::TlsOnly);
    let o = out.run_once(T0, &mut rng).await.unwrap();
    let Outcome::Deferred { next, .. } = o[0] else { panic!("{o:?}") };
    assert!(next.0 >= T0.0 + 30 && next.0 <= T0.0 + 60, "first retry within [base/2, base]");
    assert!(out.run_once(T0, &mut rng).await.unwrap().is_empty(), "not due before its time");
    let late = Timestamp(T0.0 + RetryPolicy::default().max_lifetime_secs);
    let o = out.run_once(late, &mut rng).await.unwrap();
    assert!(matches!(o[0], Outcome::Failed { .. }), "{o:?}");
    assert!(w.a.store.queue_entries().unwrap().is_empty());
}

#[test]
fn backoff_doubles_with_jitter_and_caps() {
    let policy = RetryPolicy::default();
    let mut rng = dime_testkit::seeded_rng(1);
    for attempts in 0..40 {
        let exp = (policy.base_secs << attempts.min(32)).min(policy.max_backoff_secs);
        for _ in 0..20 {
            let d = backoff(&policy, attempts, &mut rng);
            assert!(
                d >= exp / 2 && d <= exp,
                "attempt {attempts}: {d} outside [{}, {exp}]",
                exp / 2
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_refusals_and_signet_service() {
    let w = world(SUBJECT, BODY).await;
    let h = Destination::new(
        Arc::clone(&w.b.local),
        Arc::clone(&w.b.store),
        Arc::new(StaticOrigins::default()),
        p(),
    );
    assert_eq!(
        h.verify_origin(domain("a.test"), w.a.local.org_fingerprint).await,
        Err(Refusal::OriginNotVerified)
    );
    assert_eq!(
        h.check_recipient(domain("c.test"), w.b.local.org_fingerprint).await,
        Err(Refusal::NotFound)
    );
    assert_eq!(
        h.check_recipient(domain("b.test"), Fingerprint([7; 64])).await,
        Err(Refusal::StaleFingerprint)
    );
    assert_eq!(h.check_recipient(domain("b.test"), w.b.local.org_fingerprint).await, Ok(()));
    // SGNT: the org signet and a user's; unknown user and other domains are 550.
    let org = SignetName { domain: domain("b.test"), mailbox: None };
    assert_eq!(h.signet(org.clone(), None).await.unwrap(), w.b.local.org_signet.to_bytes());
    let user = SignetName { domain: domain("b.test"), mailbox: Some(mailbox(RECIPIENT)) };
    let (_, us) = w.b.store.signet(&mailbox(RECIPIENT)).unwrap();
    assert_eq!(h.signet(user.clone(), None).await.unwrap(), us.to_bytes());
    let nobody = SignetName { domain: domain("b.test"), mailbox: Some(mailbox("nobody@b.test")) };
    assert_eq!(h.signet(nobody, None).await, Err(Refusal::NotFound));
    let other = SignetName { domain: domain("a.test"), mailbox: None };
    assert_eq!(h.signet(other, None).await, Err(Refusal::NotFound));
    assert_eq!(h.signet(org.clone(), Some(Fingerprint([1; 64]))).await, Err(Refusal::NotFound));
    // Pinned to its own fingerprint, of any kind, the signet is given.
    for kind in [FingerprintKind::Id, FingerprintKind::Full, FingerprintKind::Crypto] {
        let Some(fp) = w.b.local.org_signet.fingerprint(p(), kind) else { continue };
        assert_eq!(
            h.signet(org.clone(), Some(fp)).await.unwrap(),
            w.b.local.org_signet.to_bytes(),
            "{kind:?}"
        );
        assert_eq!(h.verify(org.clone(), fp).await, Ok(VerifyAnswer::Current), "{kind:?}");
    }
    assert_eq!(
        h.signet(user.clone(), Some(us.naming_fingerprint(p()).unwrap())).await.unwrap(),
        us.to_bytes()
    );
    // VRFY and HIST.
    assert_eq!(h.verify(org.clone(), w.b.local.org_fingerprint).await, Ok(VerifyAnswer::Current));
    assert_eq!(
        h.verify(org.clone(), Fingerprint([1; 64])).await,
        Ok(VerifyAnswer::Updated(w.b.local.org_fingerprint))
    );
    assert!(h.history(org.clone(), w.b.local.org_fingerprint).await.unwrap().is_empty());
    assert_eq!(h.history(org, Fingerprint([1; 64])).await.unwrap().len(), 1);
    // A user's HIST is the chain after `from` (`spec/dmtp.md` §6.7): two rotations later, from
    // the first signet both later ones, oldest first; from the second the current one; from
    // the current none; from a fingerprint not in the chain the current one alone.
    let mut s = w.b.store.login(&mailbox(RECIPIENT), b"pw", T0).unwrap();
    let mut rng = dime_testkit::seeded_rng(31);
    let s1 = w.b.store.rotate_keys(&mut rng, &mut s, w.b.local.keys(), T0).unwrap();
    let s2 = w.b.store.rotate_keys(&mut rng, &mut s, w.b.local.keys(), T0).unwrap();
    let crypto = |s: &dime_signet::Signet| s.fingerprint(p(), FingerprintKind::Crypto).unwrap();
    let full = |s: &dime_signet::Signet| s.fingerprint(p(), FingerprintKind::Full).unwrap();
    let chain = |from| h.history(user.clone(), from);
    assert_eq!(chain(crypto(&us)).await.unwrap(), [s1.to_bytes(), s2.to_bytes()]);
    assert_eq!(chain(full(&us)).await.unwrap(), [s1.to_bytes(), s2.to_bytes()]);
    assert_eq!(chain(crypto(&s1)).await.unwrap(), [s2.to_bytes()]);
    assert!(chain(crypto(&s2)).await.unwrap().is_empty());
    assert_eq!(chain(Fingerprint([1; 64])).await.unwrap(), [s2.to_bytes()]);
    let nobody = SignetName { domain: domain("b.test"), mailbox: Some(mailbox("nobody@b.test")) };
    assert_eq!(h.history(nobody, crypto(&us)).await, Err(Refusal::NotFound));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_recipient_fails_permanently() {
    let w = world(SUBJECT, BODY).await;
    let sealed = w.seal(11, "b.test");
    let mut rng = dime_testkit::seeded_rng(11);
    submit(p(), &mut rng, &w.a.store, &w.a.local, &mailbox(AUTHOR), &sealed, T0).unwrap();
    // The recipient is gone from b.test: 550 after the body, a permanent failure.
    w.b.store.delete_account(&mailbox(RECIPIENT)).unwrap();
    let out = w.outbound(w.tls.local_addr, Transports::TlsOnly);
    let o = out.run_once(T0, &mut rng).await.unwrap();
    let Outcome::Failed { reason, .. } = &o[0] else { panic!("{o:?}") };
    assert!(reason.contains("550"), "{reason}");
}

/// The destination checks the origin's signature before it stores anything: a body with no
/// origin signature, one signed with another key, one signed for another destination domain,
/// or one whose signed origin is not the domain MAIL named is refused with 554 and not
/// stored; one whose recipient is of another domain is refused as an unknown recipient; the
/// rightly signed body is stored (`spec/dmtp.md` §6, `spec/envelope.md` §7.3, §7.5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_destination_refuses_a_body_without_the_origin_signature() {
    let w = world(SUBJECT, BODY).await;
    let a_key = w.a.local.org_signet.signing_key().unwrap();
    let mut origins = std::collections::HashMap::new();
    origins.insert(domain("a.test"), (w.a.local.org_fingerprint, a_key));
    // c.test is vouched for with a.test's own key: only the signed origin domain differs.
    origins.insert(domain("c.test"), (w.a.local.org_fingerprint, a_key));
    let h = Destination::new(
        Arc::clone(&w.b.local),
        Arc::clone(&w.b.store),
        Arc::new(StaticOrigins(origins)),
        p(),
    );
    // MAIL's check: the origin's org signet must be the one named, by its fingerprint.
    // It gives the origin's signing key, which the transaction's body is verified with.
    assert_eq!(h.verify_origin(domain("a.test"), w.a.local.org_fingerprint).await, Ok(vec![a_key]));
    assert_eq!(
        h.verify_origin(domain("a.test"), w.b.local.org_fingerprint).await,
        Err(Refusal::OriginNotVerified)
    );
    assert_eq!(
        h.verify_origin(domain("d.test"), w.a.local.org_fingerprint).await,
        Err(Refusal::OriginNotVerified)
    );
    let author_key = w.a.store.signet(&mailbox(AUTHOR)).unwrap().1.signing_key().unwrap();
    let a_secret = ActorSecret::from_org_keys(p(), w.a.local.keys()).unwrap();
    let signed_at = |sealed: &[u8], seed: &Ed25519Seed, at: u64| -> Vec<u8> {
        let v = open_as_origin(p(), sealed, &a_secret).unwrap().verify(p(), &author_key).unwrap();
        let mut rng = dime_testkit::seeded_rng(31);
        let chunk = v.origin_signature_chunk(p(), &mut rng, seed, &domain("a.test"), at).unwrap();
        [sealed, &chunk].concat()
    };
    let origin_signed =
        |sealed: &[u8], seed: &Ed25519Seed| signed_at(sealed, seed, dime_server::now().0);
    let delivery = |origin: &str, body: Vec<u8>| Delivery {
        origin: domain(origin),
        origin_fingerprint: w.a.local.org_fingerprint,
        destination: domain("b.test"),
        destination_fingerprint: w.b.local.org_fingerprint,
        body: Hashed::new(p(), body),
    };
    let account = w.b.store.account_of(&mailbox(RECIPIENT)).unwrap();
    let stored = || w.b.store.list(account, MailboxId::INBOX).unwrap().len();

    let sealed = w.seal(30, "b.test");
    let a_seed = w.a.local.keys().pok_seed();
    let b_seed = w.b.local.keys().pok_seed();
    let for_c = origin_signed(&w.seal(32, "c.test"), a_seed);
    let refused = [
        ("no origin signature", delivery("a.test", sealed.clone())),
        ("signed with another key", delivery("a.test", origin_signed(&sealed, b_seed))),
        ("signed for another destination", delivery("a.test", for_c)),
        ("MAIL named another origin", delivery("c.test", origin_signed(&sealed, a_seed))),
    ];
    for (what, d) in refused {
        // The key MAIL's check gave for the origin it named.
        let key = h.verify_origin(d.origin.clone(), d.origin_fingerprint).await.unwrap();
        assert_eq!(h.deliver(d, &key).await, Err(Refusal::BadSignature), "{what}");
        assert_eq!(stored(), 0, "{what}: nothing stored");
    }
    // A recipient mailbox of another domain (c.test) in a message the author addressed, and
    // a.test origin-signed, for b.test: every signature holds, and b.test refuses it as an
    // unknown recipient (`spec/envelope.md` §7.5 rule 1).
    let elsewhere = origin_signed(&w.seal_to(33, "b.test", "canaryrcpt@c.test"), a_seed);
    assert_eq!(
        h.deliver(delivery("a.test", elsewhere), &vec![a_key]).await,
        Err(Refusal::NotFound)
    );
    assert_eq!(stored(), 0, "a recipient of another domain: nothing stored");
    let signed = origin_signed(&sealed, a_seed);
    let first = h.deliver(delivery("a.test", signed.clone()), &vec![a_key]).await.unwrap();
    assert_eq!(stored(), 1);
    // `spec/dmtp.md` §6.4.2: the same envelope again (an origin's retry after a lost reply,
    // or a replay by whoever holds a copy) gets the first transaction id; nothing more stored.
    for _ in 0..3 {
        let again = h.deliver(delivery("a.test", signed.clone()), &vec![a_key]).await.unwrap();
        assert_eq!(again, first);
    }
    assert_eq!(stored(), 1, "a resend is stored once");
    // An origin signature older than the window is refused for good; one from beyond the
    // clock skew, for now; one within both is delivered.
    let now = dime_server::now().0;
    let (window, skew) =
        (dime_dmtp::limits::REPLAY_WINDOW_SECS, dime_dmtp::limits::CLOCK_SKEW_SECS);
    let old = signed_at(&w.seal(34, "b.test"), a_seed, now - window - 60);
    assert_eq!(h.deliver(delivery("a.test", old), &vec![a_key]).await, Err(Refusal::Policy));
    let ahead = signed_at(&w.seal(35, "b.test"), a_seed, now + skew + 600);
    assert_eq!(h.deliver(delivery("a.test", ahead), &vec![a_key]).await, Err(Refusal::Temporary));
    assert_eq!(stored(), 1, "too old or too new: nothing stored");
    let late = signed_at(&w.seal(36, "b.test"), a_seed, now - window + 600);
    h.deliver(delivery("a.test", late), &vec![a_key]).await.unwrap();
    let early = signed_at(&w.seal(37, "b.test"), a_seed, now + skew - 600);
    h.deliver(delivery("a.test", early), &vec![a_key]).await.unwrap();
    assert_eq!(stored(), 3);
}

/// The lifetime ends at queueing plus `max_lifetime`: a next attempt due exactly then is
/// still made; one due a second later fails the entry instead (`spec/dmtp.md` §11.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_due_exactly_at_the_end_of_the_lifetime_is_still_made() {
    let w = world(SUBJECT, BODY).await;
    let sealed = w.seal(6, "b.test");
    // Every jitter draw is 0: the shortest delay.
    let mut rng = dime_testkit::FixedDraws::new(0, 6);
    submit(p(), &mut rng, &w.a.store, &w.a.local, &mailbox(AUTHOR), &sealed, T0).unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // e = 100 s whatever the attempt, so the shortest delay is 50 s.
    let policy = RetryPolicy {
        base_secs: 100,
        max_backoff_secs: 100,
        max_lifetime_secs: 1000,
        ..RetryPolicy::default()
    };
    let out = w.outbound_with(dead, Transports::TlsOnly, policy);
    let at = |s: u64| Timestamp(T0.0 + s);
    let o = out.run_once(at(950), &mut rng).await.unwrap();
    assert!(matches!(o[0], Outcome::Deferred { next, .. } if next == at(1000)), "{o:?}");
    let o = out.run_once(at(1000), &mut rng).await.unwrap();
    let Outcome::Failed { reason, .. } = &o[0] else { panic!("{o:?}") };
    assert!(reason.starts_with("maximum lifetime reached"), "{reason}");
}
