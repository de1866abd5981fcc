//! Mail stays readable after key rotations (issue 27 item 1; `spec/envelope.md` §7.6,
//! `spec/dimed.md` §4.3): a message is verified against its author's chain of custody, not
//! the current signet alone; the first verification of a message is recorded, sealed, with the
//! signets it used, and later reads show that record; a fresh check walks the author's
//! history from the recorded signet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{T0, domain, mailbox, p, side};

use dime_core::{Domain, Fingerprint, Mailbox};
use dime_envelope::{
    ActorKeys, Addressing, Headers, Message, Part, PartInfo, PartKind, Signer,
    seal_message_origin_signed,
};
use dime_server::origin::parse_payload;
use dime_server::service::{
    Directory, Draft, LoginPolicy, MailService, Password, Provenance, Verification,
};
use dime_signet::{FingerprintKind, Signet};
use dime_store::{Accounts, Deliveries, MailboxId, Mailboxes, Queue, Timestamp, Uid};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const ALICE: &str = "alice@a.test";
const BOB: &str = "bob@a.test";
const CAROL: &str = "carol@c.test";

fn at(secs: u64) -> Timestamp {
    Timestamp(T0.0 + secs)
}

fn pw(s: &str) -> Password {
    Password::from(s.to_owned())
}

/// Other domains' signets as their servers publish them: each user's history, oldest first;
/// `history` off serves the current signet only (a domain that keeps no history).
#[derive(Default)]
struct Published {
    users: Mutex<HashMap<Mailbox, Vec<Signet>>>,
    orgs: HashMap<Domain, Signet>,
    history: std::sync::atomic::AtomicBool,
}

fn unknown(d: &Domain) -> dime_resolver::DiscoveryError {
    dime_resolver::DiscoveryError::NotUsable(dime_resolver::Decision::Defer(
        dime_resolver::DeferReason::Bogus { at: d.clone() },
    ))
}

impl Directory for Published {
    async fn user_signets(
        &self,
        user: &Mailbox,
    ) -> Result<(Signet, Signet), dime_resolver::DiscoveryError> {
        let users = self.users.lock().unwrap();
        let current =
            users.get(user).and_then(|h| h.last()).ok_or_else(|| unknown(user.domain()))?;
        Ok((current.clone(), self.orgs[user.domain()].clone()))
    }
    async fn org_signet(&self, d: &Domain) -> Result<Signet, dime_resolver::DiscoveryError> {
        self.orgs.get(d).cloned().ok_or_else(|| unknown(d))
    }
    async fn user_history(
        &self,
        user: &Mailbox,
        since: &Fingerprint,
    ) -> Result<Vec<Signet>, dime_resolver::DiscoveryError> {
        if !self.history.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(Vec::new());
        }
        let users = self.users.lock().unwrap();
        let h = users.get(user).ok_or_else(|| unknown(user.domain()))?;
        let pos = h
            .iter()
            .position(|s| s.fingerprint(p(), FingerprintKind::Crypto).as_ref() == Some(since));
        Ok(pos.map(|i| h[i + 1..].to_vec()).unwrap_or_default())
    }
}

struct World {
    svc: MailService<Published>,
    published: Arc<Published>,
    c: common::Side,
    _dir: tempfile::TempDir,
}

/// a.test with alice and bob (a's service, reading); c.test with carol, published to a.test's
/// directory.
fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let a = side(&dir.path().join("a"), "a.test", 1, ALICE);
    a.add_user(BOB, b"bob-pw");
    let c = side(&dir.path().join("c"), "c.test", 3, CAROL);
    let (_, carol) = c.store.signet(&mailbox(CAROL)).unwrap();
    let published = Arc::new(Published::default());
    published.users.lock().unwrap().insert(mailbox(CAROL), vec![carol]);
    let published = Arc::new(Published {
        users: Mutex::new(std::mem::take(&mut *published.users.lock().unwrap())),
        orgs: [(domain("c.test"), c.local.org_signet.clone())].into(),
        history: true.into(),
    });
    let svc = MailService::new(a.store, a.local, Arc::clone(&published), p())
        .with_login_policy(LoginPolicy { failure_delay_secs: 0, ..LoginPolicy::default() });
    World { svc, published, c, _dir: dir }
}

impl World {
    /// `who` (of a.test) sends `subject` to each of `to`; the queued envelopes are delivered
    /// into the recipients' inboxes as the destination would.
    async fn send(&self, who: &str, password: &str, to: &[&str], subject: &str, t: u64) {
        let svc = &self.svc;
        let mut s = svc.login(&mailbox(who), pw(password), at(t)).await.unwrap();
        for r in to {
            let draft = Draft { to: mailbox(r), subject: subject.into(), body: subject.into() };
            svc.send(&mut s, &draft, at(t)).await.unwrap();
            for e in svc.store().queue_entries().unwrap() {
                let payload = parse_payload(p(), &e.payload).unwrap();
                svc.store().deliver(&mailbox(r), payload.envelope.bytes(), at(t)).unwrap();
                svc.store().complete(e.id).unwrap();
            }
        }
    }

    /// Rotates `who`'s keys on a.test (the chain of custody kept).
    fn rotate(&self, who: &str, password: &[u8], t: u64) {
        let store = self.svc.store();
        let mut s = store.login(&mailbox(who), password, at(t)).unwrap();
        store
            .rotate_keys(&mut dime_testkit::seeded_rng(t), &mut s, self.svc.local().keys(), at(t))
            .unwrap();
    }

    /// Carol (c.test) seals `subject` to bob, origin-signed by c.test, delivered to bob.
    fn carol_sends(&self, subject: &str, t: u64) -> Uid {
        let c = &self.c;
        let store = self.svc.store();
        let (_, carol) = c.store.signet(&mailbox(CAROL)).unwrap();
        let (_, bob) = store.signet(&mailbox(BOB)).unwrap();
        let mut keys = c.store.login(&mailbox(CAROL), b"pw", at(t)).unwrap();
        let seed = keys.current_keys().unwrap().signing_seed().duplicate();
        keys.expire();
        let c_org = ActorKeys::from_signet(&c.local.org_signet).unwrap();
        let a_org = ActorKeys::from_signet(&self.svc.local().org_signet).unwrap();
        let addressing = Addressing {
            author: mailbox(CAROL),
            author_keys: ActorKeys::from_signet(&carol).unwrap(),
            origin: domain("c.test"),
            origin_keys: c_org,
            destination: domain("a.test"),
            destination_keys: a_org,
            recipient: mailbox(BOB),
            recipient_keys: ActorKeys::from_signet(&bob).unwrap(),
        };
        let message = Message {
            common_headers: Headers::from_pairs([("To", BOB), ("Subject", subject)]).unwrap(),
            other_headers: Headers::new(),
            parts: vec![Part {
                kind: PartKind::Display,
                info: PartInfo { content_type: "text/plain".into(), filename: String::new() },
                data: subject.as_bytes().to_vec(),
            }],
        };
        let sealed = seal_message_origin_signed(
            p(),
            &mut dime_testkit::seeded_rng(t),
            &addressing,
            Signer::Author(&seed),
            c.local.keys().pok_seed(),
            dime_server::now().0,
            &message,
        )
        .unwrap();
        store.deliver(&mailbox(BOB), &sealed, at(t)).unwrap().uid
    }

    /// Carol rotates on c.test; c.test publishes the new signet (its history kept).
    fn rotate_carol(&self, t: u64) {
        let mut s = self.c.store.login(&mailbox(CAROL), b"pw", at(t)).unwrap();
        let new = self
            .c
            .store
            .rotate_keys(&mut dime_testkit::seeded_rng(t), &mut s, self.c.local.keys(), at(t))
            .unwrap();
        self.published.users.lock().unwrap().get_mut(&mailbox(CAROL)).unwrap().push(new);
    }

    /// Every message of `who`'s inbox, read: (subject, verified or why not).
    async fn read_all(&self, who: &str, password: &str, t: u64) -> Vec<(String, Verification)> {
        let svc = &self.svc;
        let mut s = svc.login(&mailbox(who), pw(password), at(t)).await.unwrap();
        let keys = svc.store().list_summaries(
            &mut svc.store().login(&mailbox(who), password.as_bytes(), at(t)).unwrap(),
            MailboxId::INBOX,
            at(t),
        );
        let mut out = Vec::new();
        for (e, _) in keys.unwrap() {
            match svc.read(&mut s, MailboxId::INBOX, e.uid, at(t)).await {
                Ok(m) => out.push((m.subject, Verification::Verified)),
                Err(e) => out.push((String::new(), Verification::NotVerified(e.to_string()))),
            }
        }
        out
    }
}

fn verified(subjects: &[&str]) -> Vec<(String, Verification)> {
    subjects.iter().map(|s| ((*s).to_owned(), Verification::Verified)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_of_three_key_generations_reads_verified_after_the_authors_rotations() {
    let w = world();
    // Alice writes to bob and to herself with each of three generations of keys.
    for g in 0..3u64 {
        w.send(ALICE, "pw", &[BOB, ALICE], &format!("generation {g}"), 10 * g).await;
        if g < 2 {
            w.rotate(ALICE, b"pw", 10 * g + 5);
        }
    }
    let (generation, _) = w.svc.store().signet(&mailbox(ALICE)).unwrap();
    assert_eq!(generation, 2);
    // Read for the first time after both rotations (no record yet): a fresh check against
    // alice's chain of custody, kept by the store.
    let want = verified(&["generation 0", "generation 1", "generation 2"]);
    assert_eq!(w.read_all(BOB, "bob-pw", 40).await, want);
    assert_eq!(w.read_all(ALICE, "pw", 41).await, want);
    // The store keeps the chain, oldest first: what HIST answers from any of its signets.
    let chain = w.svc.store().directory(&mailbox(ALICE)).unwrap().chain();
    assert_eq!(chain.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_rotating_keeps_its_mail_readable() {
    let w = world();
    w.send(ALICE, "pw", &[BOB], "before bob rotates", 0).await;
    w.rotate(BOB, b"bob-pw", 5);
    w.send(ALICE, "pw", &[BOB], "after bob rotates", 10).await;
    // Bob's own mail to himself, from both of his generations.
    w.send(BOB, "bob-pw", &[BOB], "bob to bob", 12).await;
    w.rotate(BOB, b"bob-pw", 15);
    assert_eq!(
        w.read_all(BOB, "bob-pw", 20).await,
        verified(&["before bob rotates", "after bob rotates", "bob to bob"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_verification_outlives_the_authors_rotation_and_a_fresh_check_walks_history() {
    let w = world();
    let first = w.carol_sends("read before carol rotates", 1);
    let second = w.carol_sends("unread when carol rotates", 2);
    let svc = &w.svc;
    let mut bob = svc.login(&mailbox(BOB), pw("bob-pw"), at(3)).await.unwrap();
    // Bob reads the first message: verified, and the verification recorded with carol's
    // signet and c.test's org signet.
    let m = svc.read(&mut bob, MailboxId::INBOX, first, at(3)).await.unwrap();
    let Provenance { recorded_at, author_signet, origin_signet, fresh } = m.provenance.clone();
    assert!(fresh, "the first read checks");
    let carol_fp = w.published.users.lock().unwrap()[&mailbox(CAROL)][0]
        .fingerprint(p(), FingerprintKind::Full)
        .unwrap();
    assert_eq!(author_signet, Some(carol_fp));
    assert_eq!(
        origin_signet,
        w.c.local.org_signet.fingerprint(p(), FingerprintKind::Full).unwrap()
    );
    assert_eq!(recorded_at, at(3));
    // Wait for the record (stored off the read path) of the first only.
    let store = svc.store();
    let mut keys = store.login(&mailbox(BOB), b"bob-pw", at(3)).unwrap();
    for _ in 0..500 {
        let s = store.list_summaries(&mut keys, MailboxId::INBOX, at(3)).unwrap();
        if s.iter().any(|(e, summary)| e.uid == first && summary.is_some()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // Carol rotates; c.test serves no history (the worst case).
    w.rotate_carol(4);
    w.published.history.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut bob = svc.login(&mailbox(BOB), pw("bob-pw"), at(5)).await.unwrap();
    // The recorded message reads verified from its record, and says when it was checked.
    let m = svc.read(&mut bob, MailboxId::INBOX, first, at(5)).await.unwrap();
    assert_eq!((m.provenance.fresh, m.provenance.recorded_at), (false, at(3)));
    // The unread one: its author's current key did not sign it and no history is served.
    assert!(svc.read(&mut bob, MailboxId::INBOX, second, at(5)).await.is_err());
    // A fresh check of the recorded one needs the history as well.
    assert!(svc.recheck(&mut bob, MailboxId::INBOX, first, at(5)).await.is_err());
    // With c.test's history (HIST from the recorded signet), both verify afresh.
    w.published.history.store(true, std::sync::atomic::Ordering::Relaxed);
    let m = svc.recheck(&mut bob, MailboxId::INBOX, first, at(6)).await.unwrap();
    assert!(m.provenance.fresh);
    // The unread one has no record to start the walk from: it stays unverified (its author
    // signet is unknown to this reader), and says why.
    let e = svc.read(&mut bob, MailboxId::INBOX, second, at(6)).await.unwrap_err();
    assert!(e.to_string().contains("does not authenticate"), "{e}");
    // The listing shows the recorded one verified from its record.
    let listed = svc.list(&mut bob, MailboxId::INBOX, at(7)).await.unwrap();
    assert_eq!(listed[0].verification, Verification::Verified);
}
