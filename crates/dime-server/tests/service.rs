//! The mail service (`dime_server::service`) and the local socket over it (`spec/dimed.md`
//! §4): a session logs in once and serves every later request of its connection; it ends at
//! logout, at a new login, at its idle timeout and at its longest life; mail composed by the
//! service is origin-signed at once and reads back verified; the socket answers requests
//! without a session with `not logged in`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NoDirectory, T0, domain, mailbox, p, side};

use dime_server::origin::parse_payload;
use dime_server::service::{
    Draft, LoginError, LoginPolicy, MailService, Password, ReadError, SessionError, Verification,
};
use dime_server::submission::{Response, Submission};
use dime_store::{
    Accounts, Deliveries, DeliveryState, MailboxId, Mailboxes, Queue, Timestamp, Uid,
};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const ALICE: &str = "alice@a.test";
const BOB: &str = "bob@a.test";

/// a.test with alice (password "pw") and bob (password "bob-pw"), without failure delays
/// (these tests log in right after a wrong password; tests/login_storm.rs tests the delays).
fn service(dir: &std::path::Path) -> MailService<NoDirectory> {
    let a = side(dir, "a.test", 1, ALICE);
    a.add_user(BOB, b"bob-pw");
    MailService::new(a.store, a.local, Arc::new(NoDirectory), p())
        .with_login_policy(LoginPolicy { failure_delay_secs: 0, ..LoginPolicy::default() })
}

fn pw(s: &str) -> Password {
    Password::from(s.to_owned())
}

fn at(secs: u64) -> Timestamp {
    Timestamp(T0.0 + secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_sends_and_reads_without_logging_in_again_and_ends_as_the_spec_says() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    assert!(matches!(svc.login(&mailbox(ALICE), pw("wrong"), T0).await, Err(LoginError::Failed)));
    assert!(matches!(
        svc.login(&mailbox("nobody@a.test"), pw("pw"), T0).await,
        Err(LoginError::Failed)
    ));
    let mut alice = svc.login(&mailbox(ALICE), pw("pw"), T0).await.unwrap();
    assert_eq!(alice.address(), &mailbox(ALICE));

    // Two messages to bob in one session; each is queued origin-signed.
    let mut ids = Vec::new();
    for (i, subject) in ["first", "second"].into_iter().enumerate() {
        let draft = Draft { to: mailbox(BOB), subject: subject.into(), body: format!("body {i}") };
        ids.push(svc.send(&mut alice, &draft, at(10 * i as u64)).await.unwrap());
    }
    let status = svc.status(&mut alice, ids[0], at(20)).unwrap();
    assert_eq!((status.state, status.destination.as_str()), (DeliveryState::Queued, "a.test"));
    // The destination's part, by hand: each queued envelope is delivered to bob as is.
    let queued = svc.store().queue_entries().unwrap();
    assert_eq!(queued.len(), 2);
    for e in &queued {
        let payload = parse_payload(p(), &e.payload).unwrap();
        svc.store().deliver(&mailbox(BOB), payload.envelope.bytes(), at(30)).unwrap();
    }

    let mut bob = svc.login(&mailbox(BOB), pw("bob-pw"), at(40)).await.unwrap();
    // Another user's queued message: not shown, as if it did not exist.
    assert!(svc.status(&mut bob, ids[0], at(40)).is_err());
    let listed = svc.list(&mut bob, MailboxId::INBOX, at(41)).await.unwrap();
    let subjects: Vec<(&str, &Verification)> =
        listed.iter().map(|l| (l.subject.as_str(), &l.verification)).collect();
    assert_eq!(subjects, [("first", &Verification::Verified), ("second", &Verification::Verified)]);
    assert!(listed.iter().all(|l| l.from == Some(mailbox(ALICE))));
    // The listing stored each verified message's summary (off the read path: wait for it);
    // the next listing shows the same from them.
    let mut keys = svc.store().login(&mailbox(BOB), b"bob-pw", at(41)).unwrap();
    for _ in 0..500 {
        let s = svc.store().list_summaries(&mut keys, MailboxId::INBOX, at(41)).unwrap();
        if s.iter().all(|(_, summary)| summary.is_some()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let s = svc.store().list_summaries(&mut keys, MailboxId::INBOX, at(41)).unwrap();
    assert!(s.iter().all(|(_, summary)| summary.is_some()), "summaries stored");
    // The same listing, from the records of the first (not fresh, the same signets).
    let again = svc.list(&mut bob, MailboxId::INBOX, at(41)).await.unwrap();
    for (l, first) in again.iter().zip(&listed) {
        let (now, then) = (l.provenance.clone().unwrap(), first.provenance.clone().unwrap());
        assert!(then.fresh && !now.fresh);
        assert_eq!(
            (now.author_signet, now.origin_signet),
            (then.author_signet, then.origin_signet)
        );
        let l = dime_server::service::Listed { provenance: None, ..l.clone() };
        assert_eq!(l, dime_server::service::Listed { provenance: None, ..first.clone() });
    }
    // Another user's session reads no summary of bob's (nor lists bob's mail).
    let mut alice_keys = svc.store().login(&mailbox(ALICE), b"pw", at(41)).unwrap();
    assert!(
        svc.store().list_summaries(&mut alice_keys, MailboxId::INBOX, at(41)).unwrap().is_empty()
    );
    let m = svc.read(&mut bob, MailboxId::INBOX, listed[1].uid, at(42)).await.unwrap();
    assert_eq!((m.from, m.to, m.origin), (mailbox(ALICE), mailbox(BOB), domain("a.test")));
    assert_eq!((m.subject.as_str(), m.body.as_str()), ("second", "body 1"));
    // A read writes nothing: no read overlay beside the message (the store's own open, which
    // would use one, still goes through the message's slots).
    let opened = svc
        .store()
        .open_message(
            &mut dime_testkit::seeded_rng(9),
            &mut keys,
            MailboxId::INBOX,
            listed[1].uid,
            at(42),
        )
        .unwrap();
    assert_ne!(opened.via, dime_store::OpenedVia::ReadOverlay, "the read wrote a read overlay");
    assert!(matches!(
        svc.read(&mut bob, MailboxId::INBOX, Uid(99), at(43)).await,
        Err(ReadError::NoSuchMessage)
    ));

    // Keeping the mailbox: a folder, flags, a move, an expunge.
    let archive = svc.create_mailbox(&mut bob, "Archive", at(44)).unwrap();
    let names: Vec<String> =
        svc.mailboxes(&mut bob, at(44)).unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["INBOX", "Archive"]);
    svc.set_flags(&mut bob, MailboxId::INBOX, listed[0].uid, &["\\Seen"], at(44)).unwrap();
    assert_eq!(svc.flags(&mut bob, MailboxId::INBOX, listed[0].uid, at(44)).unwrap(), ["\\Seen"]);
    let moved =
        svc.move_messages(&mut bob, MailboxId::INBOX, &[listed[0].uid], archive, at(44)).unwrap();
    assert_eq!(moved, [(listed[0].uid, Uid(1))]);
    let now_in = svc.list(&mut bob, archive, at(44)).await.unwrap();
    assert_eq!((now_in.len(), now_in[0].subject.as_str()), (1, "first"));
    assert_eq!(svc.flags(&mut bob, archive, Uid(1), at(44)).unwrap(), ["\\Seen"]);
    assert_eq!(svc.expunge(&mut bob, archive, &[Uid(1), Uid(2)], at(44)).unwrap(), 1);
    assert_eq!(svc.list(&mut bob, MailboxId::INBOX, at(44)).await.unwrap().len(), 1);
    // Idle past the store's timeout (900 s): expired, for good.
    assert!(matches!(
        svc.list(&mut bob, MailboxId::INBOX, at(44 + 901)).await,
        Err(ReadError::Session(SessionError::Expired))
    ));
    assert!(bob.touch(at(44 + 902)).is_err());
    assert!(svc.mailboxes(&mut bob, at(44 + 903)).is_err());
    // Active, but past its longest life.
    let svc = svc.with_session_max_secs(100);
    let mut s = svc.login(&mailbox(BOB), pw("bob-pw"), T0).await.unwrap();
    for t in (10..=100).step_by(10) {
        s.touch(at(t)).unwrap();
    }
    assert!(matches!(s.touch(at(101)), Err(SessionError::Expired)));
}

/// One request line on `conn`, its answer.
async fn ask(
    conn: &mut (tokio::net::unix::OwnedWriteHalf, BufReader<tokio::net::unix::OwnedReadHalf>),
    req: serde_json::Value,
) -> Response {
    let mut line = serde_json::to_vec(&req).unwrap();
    line.push(b'\n');
    conn.0.write_all(&line).await.unwrap();
    let mut answer = String::new();
    conn.1.read_line(&mut answer).await.unwrap();
    serde_json::from_str(&answer).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_keeps_one_session_per_connection_until_logout() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    let path = dir.path().join("dimed.sock");
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let server = dime_server::submission::serve(
        &path,
        Arc::new(Submission { service: Arc::new(svc) }),
        stop_rx,
    )
    .unwrap();
    let connect = || async {
        let (r, w) = tokio::net::UnixStream::connect(&path).await.unwrap().into_split();
        (w, BufReader::new(r))
    };
    let mut c = connect().await;
    let e = ask(&mut c, serde_json::json!({"op": "list"})).await;
    assert_eq!((e.ok, e.error.as_deref()), (false, Some("not logged in")));
    let e = ask(&mut c, serde_json::json!({"op": "login", "user": ALICE, "password": "no"})).await;
    assert_eq!(e.error.as_deref(), Some("login failed"));
    let ok = ask(&mut c, serde_json::json!({"op": "login", "user": ALICE, "password": "pw"})).await;
    assert!(ok.ok, "{:?}", ok.error);
    let sent =
        ask(&mut c, serde_json::json!({"op": "send", "to": BOB, "subject": "s", "body": "b"}))
            .await;
    let id = sent.queue_id.unwrap();
    let st = ask(&mut c, serde_json::json!({"op": "status", "queue_id": id})).await;
    assert_eq!(st.status.unwrap().state, "queued");
    let inbox = ask(&mut c, serde_json::json!({"op": "list"})).await;
    assert_eq!(inbox.messages.unwrap(), []);
    // Another connection has no session of its own.
    let mut other = connect().await;
    let e = ask(&mut other, serde_json::json!({"op": "status", "queue_id": id})).await;
    assert_eq!(e.error.as_deref(), Some("not logged in"));
    // Credentials in another request are refused (they belong in login).
    let e =
        ask(&mut other, serde_json::json!({"op": "list", "user": ALICE, "password": "pw"})).await;
    assert!(e.error.unwrap().starts_with("bad request"));
    // A failed login ends the connection's session too.
    let e = ask(&mut c, serde_json::json!({"op": "login", "user": BOB, "password": "no"})).await;
    assert!(!e.ok);
    let e = ask(&mut c, serde_json::json!({"op": "list"})).await;
    assert_eq!(e.error.as_deref(), Some("not logged in"));
    let ok =
        ask(&mut c, serde_json::json!({"op": "login", "user": BOB, "password": "bob-pw"})).await;
    assert!(ok.ok);
    assert!(ask(&mut c, serde_json::json!({"op": "logout"})).await.ok);
    let e = ask(&mut c, serde_json::json!({"op": "list"})).await;
    assert_eq!(e.error.as_deref(), Some("not logged in"));
    stop.send(true).unwrap();
    server.await.unwrap();
}

/// `who` seals a text to `to` with their own keys (a DIME-aware client).
fn sealed_by(svc: &MailService<NoDirectory>, who: &str, password: &[u8], to: &str) -> Vec<u8> {
    use dime_envelope::{
        ActorKeys, Addressing, Headers, Message, Part, PartInfo, PartKind, Signer, seal_message,
    };
    let store = svc.store();
    let mut keys = store.login(&mailbox(who), password, T0).unwrap();
    let (_, author) = store.signet(&mailbox(who)).unwrap();
    let (_, recipient) = store.signet(&mailbox(to)).unwrap();
    let org = ActorKeys::from_signet(&svc.local().org_signet).unwrap();
    let addressing = Addressing {
        author: mailbox(who),
        author_keys: ActorKeys::from_signet(&author).unwrap(),
        origin: domain("a.test"),
        origin_keys: org,
        destination: domain("a.test"),
        destination_keys: org,
        recipient: mailbox(to),
        recipient_keys: ActorKeys::from_signet(&recipient).unwrap(),
    };
    let message = Message {
        common_headers: Headers::from_pairs([("Subject", "client-sealed")]).unwrap(),
        other_headers: Headers::new(),
        parts: vec![Part {
            kind: PartKind::Display,
            info: PartInfo { content_type: "text/plain".into(), filename: String::new() },
            data: b"sealed by the client".to_vec(),
        }],
    };
    let seed = keys.current_keys().unwrap().signing_seed();
    let sealed = seal_message(
        p(),
        &mut dime_testkit::seeded_rng(7),
        &addressing,
        Signer::Author(seed),
        &message,
    )
    .unwrap();
    keys.expire();
    sealed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_sealed_by_the_sessions_user_is_origin_signed_and_queued_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    let mut alice = svc.login(&mailbox(ALICE), pw("pw"), T0).await.unwrap();
    // Sealed by alice: accepted in her session.
    let own = sealed_by(&svc, ALICE, b"pw", BOB);
    let (id, destination) = svc.submit_sealed(&mut alice, own.clone(), at(1)).await.unwrap();
    assert_eq!(destination, domain("a.test"));
    assert_eq!(svc.status(&mut alice, id, at(1)).unwrap().state, DeliveryState::Queued);
    // Sealed by bob, or not an envelope at all: refused in alice's session; nothing queued.
    let bobs = sealed_by(&svc, BOB, b"bob-pw", ALICE);
    for bad in [bobs, b"not an envelope".to_vec(), own[..own.len() - 1].to_vec()] {
        assert!(matches!(
            svc.submit_sealed(&mut alice, bad, at(2)).await,
            Err(dime_server::service::SubmitError::Envelope)
        ));
    }
    let queued = svc.store().queue_entries().unwrap();
    assert_eq!(queued.len(), 1);
    // What was queued is the envelope with the origin signature: bob reads it verified.
    let payload = parse_payload(p(), &queued[0].payload).unwrap();
    assert!(
        payload.envelope.bytes().starts_with(&own) && payload.envelope.bytes().len() > own.len()
    );
    svc.store().deliver(&mailbox(BOB), payload.envelope.bytes(), at(3)).unwrap();
    let mut bob = svc.login(&mailbox(BOB), pw("bob-pw"), at(4)).await.unwrap();
    let listed = svc.list(&mut bob, MailboxId::INBOX, at(4)).await.unwrap();
    assert_eq!((listed.len(), listed[0].subject.as_str()), (1, "client-sealed"));
    assert_eq!(listed[0].verification, Verification::Verified);
    // An ended session submits nothing.
    alice.touch(at(5)).unwrap();
    assert!(matches!(
        svc.submit_sealed(&mut alice, own, at(5 + 901)).await,
        Err(dime_server::service::SubmitError::Session(_))
    ));
}
