//! What a reader of a mailbox says of a message that does not open or verify
//! (`spec/envelope.md` §14, `spec/dimed.md` §4.3; issue 19 item 10): the class and nothing
//! more, the same through the service's listing and read and through the socket. A framing
//! error names its rule; a broken tag, a slot no key of the account opens and a signature that
//! does not verify are all the one "message does not authenticate". A message that does not
//! open is listed like any other: the rest of the mailbox is listed all the same.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NoDirectory, T0, mailbox, p, side};

use dime_core::crypto::Ed25519Seed;
use dime_envelope::{
    ActorKeys, Addressing, ChunkType, Headers, Message, Part, PartInfo, PartKind,
    SignatureState as S, Signer, inspect, seal_message_origin_signed,
};
use dime_server::service::{MailService, Password, ReadError, Verification};
use dime_server::submission::{Response, Submission};
use dime_store::{Accounts, Deliveries, MailboxId, Timestamp, Uid};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const ALICE: &str = "alice@a.test";
const BOB: &str = "bob@a.test";

fn at(secs: u64) -> Timestamp {
    Timestamp(T0.0 + secs)
}

/// The signing seed of a user of the store.
fn seed(svc: &MailService<NoDirectory>, user: &str, pw: &[u8]) -> Ed25519Seed {
    let mut keys = svc.store().login(&mailbox(user), pw, T0).unwrap();
    let seed = keys.current_keys().unwrap().signing_seed().duplicate();
    keys.expire();
    seed
}

/// How a test message is broken.
#[derive(Clone, Copy)]
enum Break {
    None,
    /// The version octet is 3 (framing `version`, §2).
    Version,
    /// The message ends inside its last chunk (framing `truncated`).
    Truncated,
    /// The display chunk's last octet (its last segment's tag) flipped.
    Tag,
    /// Its recipient slots are sealed to alice's key, not bob's: no key of bob's opens it.
    NotForBob,
    /// Signed by bob's key while it names alice as its author.
    Signature,
}

/// alice's message to bob, sealed and origin-signed as a.test seals it, broken as `b`
/// says, delivered into bob's inbox.
fn deliver(svc: &MailService<NoDirectory>, b: Break, n: u64) -> Uid {
    let store = svc.store();
    let a_org = ActorKeys::from_signet(&svc.local().org_signet).unwrap();
    let pok = svc.local().keys().pok_seed();
    let (_, alice) = store.signet(&mailbox(ALICE)).unwrap();
    let (_, bob) = store.signet(&mailbox(BOB)).unwrap();
    let addressing = Addressing {
        author: mailbox(ALICE),
        author_keys: ActorKeys::from_signet(&alice).unwrap(),
        origin: common::domain("a.test"),
        origin_keys: a_org,
        destination: common::domain("a.test"),
        destination_keys: a_org,
        recipient: mailbox(BOB),
        recipient_keys: ActorKeys::from_signet(if matches!(b, Break::NotForBob) {
            &alice
        } else {
            &bob
        })
        .unwrap(),
    };
    let message = Message {
        common_headers: Headers::from_pairs([("To", BOB), ("Subject", "hello")]).unwrap(),
        other_headers: Headers::new(),
        parts: vec![Part {
            kind: PartKind::Display,
            info: PartInfo { content_type: "text/plain".into(), filename: String::new() },
            data: b"text".to_vec(),
        }],
    };
    let seed = match b {
        Break::Signature => seed(svc, BOB, b"bob-pw"),
        _ => seed(svc, ALICE, b"pw"),
    };
    let mut rng = dime_testkit::seeded_rng(100 + n);
    let mut sealed = seal_message_origin_signed(
        p(),
        &mut rng,
        &addressing,
        Signer::Author(&seed),
        pok,
        dime_server::now().0,
        &message,
    )
    .unwrap();
    match b {
        Break::Version => sealed[7] = 3,
        Break::Truncated => {
            let len = sealed.len();
            sealed.truncate(len - 10);
        }
        Break::Tag => {
            let c = inspect(p(), &sealed, None)
                .chunks
                .into_iter()
                .find(|c| c.chunk_type == ChunkType::Display)
                .unwrap();
            let last = usize::try_from(c.offset + c.size).unwrap() - 1;
            sealed[last] ^= 1;
        }
        Break::None | Break::NotForBob | Break::Signature => {}
    }
    store.deliver(&mailbox(BOB), &sealed, at(1)).unwrap().uid
}

const UNAUTHENTIC: &str = "message does not authenticate";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_does_not_open_or_verify_is_reported_by_its_class() {
    let dir = tempfile::tempdir().unwrap();
    let a = side(&dir.path().join("a"), "a.test", 1, ALICE);
    a.add_user(BOB, b"bob-pw");
    let svc = MailService::new(a.store, a.local, Arc::new(NoDirectory), p());
    // Each message, the reason §14 gives (None: verified), and whether it opens (a message
    // that does not open has no claimed author to list).
    let cases: Vec<(Uid, Option<&str>, bool)> = vec![
        (deliver(&svc, Break::None, 0), None, true),
        (deliver(&svc, Break::Version, 1), Some("malformed message (version)"), false),
        (deliver(&svc, Break::Truncated, 2), Some("malformed message (truncated)"), false),
        (deliver(&svc, Break::Tag, 3), Some(UNAUTHENTIC), false),
        (deliver(&svc, Break::NotForBob, 4), Some(UNAUTHENTIC), false),
        (deliver(&svc, Break::Signature, 5), Some(UNAUTHENTIC), true),
    ];

    let mut bob =
        svc.login(&mailbox(BOB), Password::from("bob-pw".to_owned()), at(2)).await.unwrap();
    // The listing lists every message, the broken ones by their class.
    let listed = svc.list(&mut bob, MailboxId::INBOX, at(3)).await.unwrap();
    assert_eq!(listed.len(), cases.len());
    for (l, (uid, why, opens)) in listed.iter().zip(&cases) {
        assert_eq!(l.uid, *uid);
        match why {
            None => assert_eq!(l.verification, Verification::Verified, "uid {uid:?}"),
            Some(why) => {
                assert_eq!(l.verification, Verification::NotVerified((*why).to_owned()));
                assert!(l.subject.is_empty() && l.warnings.is_empty(), "uid {uid:?}");
                assert_eq!(l.from, opens.then(|| mailbox(ALICE)), "uid {uid:?}");
                let sigs =
                    [l.signatures.author_tree, l.signatures.author_full, l.signatures.origin];
                assert!(!sigs.contains(&S::Verified), "uid {uid:?}: {sigs:?}");
                let e = svc.read(&mut bob, MailboxId::INBOX, *uid, at(4)).await.unwrap_err();
                let ReadError::NotShown(reason) = e else { panic!("uid {uid:?}: {e}") };
                assert_eq!(reason, *why, "uid {uid:?}");
            }
        }
    }
    // A message whose tag is broken still shows what its structure carries.
    let tag = &listed[3].signatures;
    assert_eq!(
        (tag.author_tree, tag.author_full, tag.origin),
        (S::Present, S::Present, S::Present)
    );
    drop(bob);

    // The socket answers the same.
    let path = dir.path().join("dimed.sock");
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let server = dime_server::submission::serve(
        &path,
        Arc::new(Submission { service: Arc::new(svc) }),
        stop_rx,
    )
    .unwrap();
    let (r, w) = tokio::net::UnixStream::connect(&path).await.unwrap().into_split();
    let mut c = (w, BufReader::new(r));
    let mut ask = async |req: serde_json::Value| -> Response {
        let mut line = serde_json::to_vec(&req).unwrap();
        line.push(b'\n');
        c.0.write_all(&line).await.unwrap();
        let mut answer = String::new();
        c.1.read_line(&mut answer).await.unwrap();
        serde_json::from_str(&answer).unwrap()
    };
    assert!(ask(serde_json::json!({"op": "login", "user": BOB, "password": "bob-pw"})).await.ok);
    let list = ask(serde_json::json!({"op": "list"})).await;
    let list = list.messages.expect("the listing is answered");
    assert_eq!(list.len(), cases.len());
    for (m, (uid, why, opens)) in list.iter().zip(&cases) {
        assert_eq!(m.uid, uid.0);
        let Some(why) = why else {
            assert!(m.verified);
            continue;
        };
        assert!(!m.verified);
        assert_eq!(m.subject, format!("(not verified: {why})"));
        assert_eq!(m.from, if *opens { ALICE } else { "" });
        let e = ask(serde_json::json!({"op": "read", "uid": uid.0})).await;
        assert!(!e.ok);
        assert_eq!(e.error.unwrap(), format!("message not shown: {why}"), "uid {uid:?}");
    }
    stop.send(true).unwrap();
    server.await.unwrap();
}
