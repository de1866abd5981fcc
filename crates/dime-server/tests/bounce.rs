//! The origin's queue behaviour (`spec/dmtp.md` §11) over real loopback sockets: a permanent
//! refusal or the maximum lifetime bounces the message to its author with a notice signed by
//! the origin's org key (a trustful message, not author-signed); each entry's delivery status
//! (queued, deferred, delivered, failed, bounced) is kept durably, survives reopening the
//! store, and neither it, the bounce nor the logs show a local part, subject or body in clear.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    AUTHOR, RECIPIENT, Side, T0, World, contains, domain, mailbox, p, store_config, world,
};
use dime_envelope::{Headers, MessageKind, inspect};
use dime_server::origin::{BOUNCE_LOCAL_PART, submit};
use dime_server::outbound::dmtp::Transports;
use dime_server::outbound::{Outcome, RetryPolicy};
use dime_store::{Accounts, DeliveryState, MailboxId, Mailboxes, Queue, QueueId, Store, Timestamp};
use std::sync::{Arc, Mutex};

const SUBJECT: &str = "canary-subject-5d1e";
const BODY: &str = "canary-body-8b40 hello";

impl World {
    /// Seals and submits a message; returns its queue id and message id.
    fn submit(&self, seed: u64, to_domain: &str) -> (QueueId, [u8; 32]) {
        let sealed = self.seal(seed, to_domain);
        let message_id = inspect(p(), &sealed, None).message_id.unwrap();
        let mut rng = dime_testkit::seeded_rng(seed + 1000);
        let (id, dest) =
            submit(p(), &mut rng, &self.a.store, &self.a.local, &mailbox(AUTHOR), &sealed, T0)
                .unwrap();
        assert_eq!(dest, domain(to_domain));
        (id, message_id)
    }

    /// The author logs in at `now`, finds exactly `count` messages in the inbox, opens the
    /// last one and checks it is a bounce from the origin: a trustful message (not signed
    /// by a person) whose author and origin signatures verify with a.test's POK and not with
    /// the author's own key. Returns its headers and text.
    fn author_reads_bounce(&self, now: Timestamp, count: usize) -> (Headers, Headers, String) {
        let store = &self.a.store;
        let mut s = store.login(&mailbox(AUTHOR), b"pw", now).unwrap();
        let entries = store.list(s.account(), MailboxId::INBOX).unwrap();
        assert_eq!(entries.len(), count);
        let uid = entries.last().unwrap().uid;
        let pok = self.a.local.org_signet.signing_key().unwrap();
        let author_key = store.signet(&mailbox(AUTHOR)).unwrap().1.signing_key().unwrap();
        let mut rng = dime_testkit::seeded_rng(9);
        let opened = store.open_message(&mut rng, &mut s, MailboxId::INBOX, uid, now).unwrap();
        assert_eq!(opened.message.kind(), MessageKind::Trustful, "marked not author-signed");
        let again = store.open_message(&mut rng, &mut s, MailboxId::INBOX, uid, now).unwrap();
        assert!(
            again.message.verify(p(), &author_key, Some(&pok)).is_err(),
            "the author's own key does not verify a bounce"
        );
        let verified = opened.message.verify(p(), &pok, Some(&pok)).unwrap();
        assert_eq!(verified.kind(), MessageKind::Trustful);
        let view = verified.into_view();
        assert_eq!(view.author, mailbox(&format!("{BOUNCE_LOCAL_PART}@a.test")));
        assert_eq!(view.origin, domain("a.test"));
        assert_eq!(view.recipient, mailbox(AUTHOR));
        assert!(view.origin_signed);
        assert_eq!(view.message.parts.len(), 1);
        let text = String::from_utf8(view.message.parts[0].data.clone()).unwrap();
        assert!(!text.contains("canary-body") && !text.contains(SUBJECT), "{text}");
        (view.message.common_headers, view.message.other_headers, text)
    }
}

/// Records every tracing event and span field of this test binary (every test, every
/// thread), as `name=value` text.
struct Capture(Arc<Mutex<String>>);

/// The log of this test binary so far; installs the capturing subscriber on first use.
fn captured_log() -> Arc<Mutex<String>> {
    static LOG: std::sync::OnceLock<Arc<Mutex<String>>> = std::sync::OnceLock::new();
    Arc::clone(LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(String::new()));
        tracing::subscriber::set_global_default(Capture(Arc::clone(&log))).unwrap();
        log
    }))
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        span.record(&mut Fields(&mut self.0.lock().unwrap()));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut log = self.0.lock().unwrap();
        event.record(&mut Fields(&mut log));
        log.push('\n');
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_recipient_is_bounced_to_the_author_signed_by_the_origin() {
    let log = captured_log();
    let w = world(SUBJECT, BODY).await;
    let (id, message_id) = w.submit(11, "b.test");
    let s = w.a.store.delivery_status(id).unwrap().unwrap();
    assert_eq!((s.state, s.destination.as_str(), s.queued), (DeliveryState::Queued, "b.test", T0));
    // The recipient is gone from b.test: 550 after the body, a permanent failure.
    w.b.store.delete_account(&mailbox(RECIPIENT)).unwrap();
    let out = w.outbound(w.tls.local_addr, Transports::TlsOnly);
    let mut rng = dime_testkit::seeded_rng(11);
    let now = Timestamp(T0.0 + 5);
    let o = out.run_once(now, &mut rng).await.unwrap();
    let Outcome::Failed { reason, bounced: true, .. } = &o[0] else { panic!("{o:?}") };
    assert!(reason.contains("550"), "{reason}");
    assert!(w.a.store.queue_entries().unwrap().is_empty());

    let (common, other, text) = w.author_reads_bounce(now, 1);
    assert_eq!(common.get("To"), Some(AUTHOR));
    assert_eq!(common.get("From"), Some("Mail Delivery System <postmaster@a.test>"));
    assert!(common.get("Subject").unwrap().contains("b.test"));
    assert_eq!(common.get("Date"), Some("Tue, 14 Nov 2023 22:13:25 +0000"));
    assert_eq!(other.get("Auto-Submitted"), Some("auto-replied"));
    assert_eq!(other.get("Dime-Bounce-Destination"), Some("b.test"));
    assert_eq!(other.get("Dime-Bounce-Reason"), Some(reason.as_str()));
    assert_eq!(other.get("Dime-Bounce-Message-Id"), Some(hex::encode(message_id).as_str()));
    assert_eq!(other.get("Dime-Bounce-Queued"), Some(T0.0.to_string().as_str()));
    assert_eq!(other.get("Dime-Bounce-Queue-Id"), Some(id.0.to_string().as_str()));
    for want in
        ["b.test", reason.as_str(), &hex::encode(message_id), "Tue, 14 Nov 2023 22:13:20 +0000"]
    {
        assert!(text.contains(want), "{want} not in {text}");
    }

    let s = w.a.store.delivery_status(id).unwrap().unwrap();
    assert_eq!(s.state, DeliveryState::Bounced { reason: reason.clone() });
    assert_eq!((s.queued, s.updated, s.attempts), (T0, now, 1));

    // Nothing in a.test's data or in the logs shows a local part, the subject or the body.
    let log = log.lock().unwrap().clone();
    assert!(log.contains("delivery failed") && log.contains("bounced=true"), "{log}");
    let a_dir = w.dir.path().join("a");
    for canary in ["canaryrcpt", "canaryauthor", SUBJECT, "canary-body"] {
        assert!(!contains(&a_dir, canary), "origin data holds {canary}");
        assert!(!log.contains(canary), "the log holds {canary}: {log}");
    }
    assert!(!format!("{s:?} {o:?}").contains("canary"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_destination_is_deferred_then_bounced_after_the_maximum_lifetime() {
    let _log = captured_log();
    let w = world(SUBJECT, BODY).await;
    let (id, message_id) = w.submit(5, "b.test");
    // A TCP port with nothing listening: refused at once, a temporary failure.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = w.outbound(dead, Transports::TlsOnly);
    let mut rng = dime_testkit::seeded_rng(5);
    let o = out.run_once(T0, &mut rng).await.unwrap();
    let Outcome::Deferred { next, reason, .. } = &o[0] else { panic!("{o:?}") };
    let s = w.a.store.delivery_status(id).unwrap().unwrap();
    assert_eq!(
        s.state,
        DeliveryState::Deferred { next_attempt: *next, reason: reason.clone() },
        "deferred with its next attempt"
    );
    assert_eq!((s.attempts, s.updated), (1, T0));
    let o = out.run_once(*next, &mut rng).await.unwrap();
    let Outcome::Deferred { next, .. } = &o[0] else { panic!("{o:?}") };
    let s = w.a.store.delivery_status(id).unwrap().unwrap();
    assert_eq!(s.attempts, 2);
    assert!(
        matches!(s.state, DeliveryState::Deferred { next_attempt, .. } if next_attempt == *next)
    );

    let late = Timestamp(T0.0 + RetryPolicy::default().max_lifetime_secs);
    let o = out.run_once(late, &mut rng).await.unwrap();
    let Outcome::Failed { reason, bounced: true, .. } = &o[0] else { panic!("{o:?}") };
    assert!(reason.starts_with("maximum lifetime reached"), "{reason}");
    let s = w.a.store.delivery_status(id).unwrap().unwrap();
    assert_eq!(s.state, DeliveryState::Bounced { reason: reason.clone() });
    assert_eq!((s.attempts, s.updated, s.queued), (3, late, T0));

    let (_, other, text) = w.author_reads_bounce(late, 1);
    assert_eq!(other.get("Dime-Bounce-Destination"), Some("b.test"));
    assert!(other.get("Dime-Bounce-Reason").unwrap().starts_with("maximum lifetime reached"));
    assert_eq!(other.get("Dime-Bounce-Message-Id"), Some(hex::encode(message_id).as_str()));
    assert!(text.contains("Attempts:    3"), "{text}");
    assert!(out.run_once(late, &mut rng).await.unwrap().is_empty(), "bounced once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_dime_domain_fails_and_an_author_without_an_account_gets_no_bounce() {
    let _log = captured_log();
    let w = world(SUBJECT, BODY).await;
    // c.test is not a DIME domain: a permanent route failure, bounced.
    let (first, _) = w.submit(21, "c.test");
    let out = w.outbound(w.tls.local_addr, Transports::TlsOnly);
    let mut rng = dime_testkit::seeded_rng(21);
    let o = out.run_once(T0, &mut rng).await.unwrap();
    assert!(matches!(o[0], Outcome::Failed { bounced: true, .. }), "{o:?}");
    assert!(matches!(
        w.a.store.delivery_status(first).unwrap().unwrap().state,
        DeliveryState::Bounced { .. }
    ));
    // The author's account is deleted before the worker gives up: the entry fails, status
    // failed, and nothing is bounced (or bounced again).
    let (second, _) = w.submit(22, "c.test");
    w.a.store.delete_account(&mailbox(AUTHOR)).unwrap();
    let o = out.run_once(T0, &mut rng).await.unwrap();
    let Outcome::Failed { reason, bounced: false, .. } = &o[0] else { panic!("{o:?}") };
    let s = w.a.store.delivery_status(second).unwrap().unwrap();
    assert_eq!(s.state, DeliveryState::Failed { reason: reason.clone() });
    assert!(w.a.store.queue_entries().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_status_keeps_the_transaction_id_and_survives_reopening_the_store() {
    let _log = captured_log();
    let w = world(SUBJECT, BODY).await;
    let (id, _) = w.submit(31, "b.test");
    let out = w.outbound(w.tls.local_addr, Transports::TlsOnly);
    let mut rng = dime_testkit::seeded_rng(31);
    let now = Timestamp(T0.0 + 2);
    let o = out.run_once(now, &mut rng).await.unwrap();
    let Outcome::Delivered { txid, .. } = &o[0] else { panic!("{o:?}") };
    let want = DeliveryState::Delivered { txid: txid.as_str().to_owned() };
    let s = w.a.store.delivery_status(id).unwrap().unwrap();
    assert_eq!((&s.state, s.attempts, s.updated), (&want, 1, now));
    assert_eq!(w.a.store.delivery_statuses(T0, 10).unwrap(), std::slice::from_ref(&s));

    // Reopen a.test's store: the status is still there.
    let World { dir, a, b: _b, quic: _quic, tls: _tls, .. } = w;
    drop(out);
    let Side { store, local: _ } = a;
    drop(Arc::into_inner(store).expect("the only reference"));
    let store = Store::open(store_config(&dir.path().join("a"), 1), p()).unwrap();
    assert_eq!(store.delivery_status(id).unwrap().unwrap(), s);
    // Pruned once the retention has passed, not before.
    assert_eq!(store.prune_delivery_statuses(now).unwrap(), 0);
    assert_eq!(store.prune_delivery_statuses(Timestamp(now.0 + 1)).unwrap(), 1);
    assert_eq!(store.delivery_status(id).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_pass_prunes_statuses_older_than_the_retention() {
    let _log = captured_log();
    let w = world(SUBJECT, BODY).await;
    let (id, _) = w.submit(41, "b.test");
    let out = w.outbound(w.tls.local_addr, Transports::TlsOnly).with_status_retention(3600);
    let mut rng = dime_testkit::seeded_rng(41);
    let o = out.run_once(T0, &mut rng).await.unwrap();
    assert!(matches!(o[0], Outcome::Delivered { .. }), "{o:?}");
    assert!(out.run_once(Timestamp(T0.0 + 3600), &mut rng).await.unwrap().is_empty());
    assert!(w.a.store.delivery_status(id).unwrap().is_some(), "kept for the retention");
    assert!(out.run_once(Timestamp(T0.0 + 3601), &mut rng).await.unwrap().is_empty());
    assert_eq!(w.a.store.delivery_status(id).unwrap(), None, "pruned after it");
}
