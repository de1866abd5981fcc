//! The reader's rules for mail in a mailbox (`spec/envelope.md` §7.4, §7.5; `spec/dimed.md`
//! §4.3): a message is shown as verified only with a verified origin signature (it arrived
//! over DMTP: a removed one is reported, issue 19 item 7) and when its addresses agree with
//! each other and with the reading account (issue 19 item 6); another addressee or a Bcc copy
//! is shown with a warning; the listing, the read and the socket's answers say which
//! signatures were present and verified; a version 1 summary is recomputed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{T0, mailbox, p, side};

use dime_core::crypto::Ed25519Seed;
use dime_core::{Domain, Mailbox};
use dime_envelope::{
    ActorKeys, Addressing, Headers, Message, Part, PartInfo, PartKind, SignatureState as S,
    Signatures, Signer, inspect, seal_message_origin_signed,
};
use dime_server::service::{Directory, MailService, Password, ReadError, Verification};
use dime_server::submission::{Response, Submission};
use dime_signet::Signet;
use dime_store::{Accounts, Deliveries, MailboxId, Mailboxes, Timestamp, Uid};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const ALICE: &str = "alice@a.test";
const BOB: &str = "bob@a.test";
const CAROL: &str = "carol@c.test";

/// Other domains' signets known in advance.
#[derive(Default)]
struct Known {
    users: HashMap<Mailbox, (Signet, Signet)>,
    orgs: HashMap<Domain, Signet>,
}

fn unknown(d: &Domain) -> dime_resolver::DiscoveryError {
    dime_resolver::DiscoveryError::NotUsable(dime_resolver::Decision::Defer(
        dime_resolver::DeferReason::Bogus { at: d.clone() },
    ))
}

impl Directory for Known {
    async fn user_signets(
        &self,
        user: &Mailbox,
    ) -> Result<(Signet, Signet), dime_resolver::DiscoveryError> {
        self.users.get(user).cloned().ok_or_else(|| unknown(user.domain()))
    }
    async fn org_signet(&self, d: &Domain) -> Result<Signet, dime_resolver::DiscoveryError> {
        self.orgs.get(d).cloned().ok_or_else(|| unknown(d))
    }
    async fn user_history(
        &self,
        _user: &Mailbox,
        _since: &dime_core::Fingerprint,
    ) -> Result<Vec<Signet>, dime_resolver::DiscoveryError> {
        Ok(Vec::new())
    }
}

fn at(secs: u64) -> Timestamp {
    Timestamp(T0.0 + secs)
}

fn d(s: &str) -> Domain {
    Domain::parse(s).unwrap()
}

struct Fixture {
    svc: MailService<Known>,
    /// c.test's org keys and carol's signet and seed.
    c_org: ActorKeys,
    carol: (ActorKeys, Ed25519Seed),
    _dir: tempfile::TempDir,
}

/// a.test with alice and bob; c.test with carol, known to a.test's directory.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let a = side(&dir.path().join("a"), "a.test", 1, ALICE);
    let c = side(&dir.path().join("c"), "c.test", 3, CAROL);
    a.add_user(BOB, b"bob-pw");
    let (_, carol_signet) = c.store.signet(&mailbox(CAROL)).unwrap();
    let mut keys = c.store.login(&mailbox(CAROL), b"pw", T0).unwrap();
    let carol_seed = keys.current_keys().unwrap().signing_seed().duplicate();
    keys.expire();
    let mut known = Known::default();
    known.users.insert(mailbox(CAROL), (carol_signet.clone(), c.local.org_signet.clone()));
    known.orgs.insert(d("c.test"), c.local.org_signet.clone());
    Fixture {
        svc: MailService::new(a.store, a.local, Arc::new(known), p()),
        c_org: ActorKeys::from_signet(&c.local.org_signet).unwrap(),
        carol: (ActorKeys::from_signet(&carol_signet).unwrap(), carol_seed),
        _dir: dir,
    }
}

/// What one test message says.
struct Mail<'a> {
    author: &'a str,
    destination: &'a str,
    recipient: &'a str,
    to: &'a str,
    subject: &'a str,
    trustful: bool,
}

const GOOD: Mail<'static> = Mail {
    author: ALICE,
    destination: "a.test",
    recipient: BOB,
    to: BOB,
    subject: "good",
    trustful: false,
};

impl Fixture {
    /// `m` sealed as a.test's origin seals it (origin-signed), for bob's keys whatever the
    /// recipient mailbox says, delivered into bob's inbox as it is.
    fn deliver(&self, m: &Mail<'_>, strip_origin_signature: bool) -> Uid {
        let svc = &self.svc;
        let store = svc.store();
        let a_org = ActorKeys::from_signet(&svc.local().org_signet).unwrap();
        let pok = svc.local().keys().pok_seed();
        let (_, bob) = store.signet(&mailbox(BOB)).unwrap();
        let (author_keys, seed) = if m.trustful {
            (a_org, pok.duplicate())
        } else if m.author == CAROL {
            (self.carol.0, self.carol.1.duplicate())
        } else {
            let (_, s) = store.signet(&mailbox(m.author)).unwrap();
            let mut keys = store.login(&mailbox(m.author), b"pw", T0).unwrap();
            let seed = keys.current_keys().unwrap().signing_seed().duplicate();
            keys.expire();
            (ActorKeys::from_signet(&s).unwrap(), seed)
        };
        let addressing = Addressing {
            author: mailbox(m.author),
            author_keys,
            origin: d("a.test"),
            origin_keys: a_org,
            destination: d(m.destination),
            destination_keys: if m.destination == "c.test" { self.c_org } else { a_org },
            recipient: mailbox(m.recipient),
            recipient_keys: ActorKeys::from_signet(&bob).unwrap(),
        };
        let message = Message {
            common_headers: Headers::from_pairs([("To", m.to), ("Subject", m.subject)]).unwrap(),
            other_headers: Headers::new(),
            parts: vec![Part {
                kind: PartKind::Display,
                info: PartInfo { content_type: "text/plain".into(), filename: String::new() },
                data: b"text".to_vec(),
            }],
        };
        let signer = if m.trustful { Signer::TrustfulServer(&seed) } else { Signer::Author(&seed) };
        let mut rng = dime_testkit::seeded_rng(u64::from(m.subject.len() as u8) + 40);
        let mut sealed = seal_message_origin_signed(
            p(),
            &mut rng,
            &addressing,
            signer,
            pok,
            dime_server::now().0,
            &message,
        )
        .unwrap();
        if strip_origin_signature {
            let last = inspect(p(), &sealed, None).chunks.last().unwrap().offset;
            sealed.truncate(usize::try_from(last).unwrap());
        }
        store.deliver(&mailbox(BOB), &sealed, at(1)).unwrap().uid
    }
}

const ALL: Signatures =
    Signatures { author_tree: S::Verified, author_full: S::Verified, origin: S::Verified };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_mail_needs_its_origin_signature_and_consistent_addresses() {
    let f = fixture();
    let svc = &f.svc;
    // Each message, and what bob's listing and read make of it: Ok(warnings) shown verified,
    // Err(part of the reason) not shown.
    let cases: Vec<(Uid, Result<Vec<&str>, &str>)> = vec![
        (f.deliver(&GOOD, false), Ok(vec![])),
        // Item 7: the origin signature chunk removed by whoever held the message.
        (
            f.deliver(&Mail { subject: "stripped", ..GOOD }, true),
            Err("not verified (no-origin-signature)"),
        ),
        // Item 6, refused: an authored message whose author is not of the origin domain
        // (carol of c.test, signed with carol's own key, origin-signed by a.test).
        (
            f.deliver(&Mail { author: CAROL, subject: "carol via a", ..GOOD }, false),
            Err(
                "not verified (author-domain): the author carol@c.test is not of the origin domain a.test",
            ),
        ),
        // A recipient mailbox not of the destination domain the author signed.
        (
            f.deliver(&Mail { recipient: "bob@c.test", subject: "other recipient", ..GOOD }, false),
            Err(
                "not verified (recipient-domain): the recipient bob@c.test is not of the destination domain a.test",
            ),
        ),
        // Addressed (and origin-signed) to another destination domain, found in bob's inbox.
        (
            f.deliver(
                &Mail {
                    destination: "c.test",
                    recipient: "bob@c.test",
                    to: "bob@c.test",
                    subject: "for c.test",
                    ..GOOD
                },
                false,
            ),
            Err("not verified (destination-domain): addressed to the domain c.test"),
        ),
        // Item 6, warnings: another addressee of this domain; a Bcc copy.
        (
            f.deliver(&Mail { recipient: ALICE, to: ALICE, subject: "alice's", ..GOOD }, false),
            Ok(vec!["addressed to alice@a.test, not to this account"]),
        ),
        (
            f.deliver(
                &Mail { to: "Alice <alice@a.test>, carol@c.test", subject: "bcc", ..GOOD },
                false,
            ),
            Ok(vec!["bob@a.test is not in To or Cc (a Bcc copy)"]),
        ),
        // A trustful message's author is a legacy sender of any domain; To lists bob.
        (
            f.deliver(
                &Mail {
                    author: "legacy@elsewhere.test",
                    to: "\"Bob\" <bob@A.TEST>",
                    subject: "legacy",
                    trustful: true,
                    ..GOOD
                },
                false,
            ),
            Ok(vec![]),
        ),
    ];
    // A version 1 summary (made under the old rules) of the stripped message is not trusted.
    let mut keys = svc.store().login(&mailbox(BOB), b"bob-pw", at(2)).unwrap();
    let v1 =
        [&[1u8, 1][..], &(ALICE.len() as u32).to_be_bytes(), ALICE.as_bytes(), &0u32.to_be_bytes()]
            .concat();
    let sealed = svc
        .store()
        .seal_summaries(
            &mut dime_testkit::seeded_rng(3),
            &mut keys,
            MailboxId::INBOX,
            &[(cases[1].0, &v1)],
            at(2),
        )
        .unwrap();
    assert_eq!(svc.store().put_summaries(&sealed).unwrap(), 1);

    let mut bob =
        svc.login(&mailbox(BOB), Password::from("bob-pw".to_owned()), at(3)).await.unwrap();
    let listed = svc.list(&mut bob, MailboxId::INBOX, at(3)).await.unwrap();
    assert_eq!(listed.len(), cases.len());
    for (l, (uid, want)) in listed.iter().zip(&cases) {
        assert_eq!(l.uid, *uid);
        match want {
            Ok(warnings) => {
                assert_eq!(l.verification, Verification::Verified, "uid {uid:?}");
                assert_eq!(l.signatures, ALL, "uid {uid:?}");
                assert_eq!(&l.warnings, warnings, "uid {uid:?}");
                let m = svc.read(&mut bob, MailboxId::INBOX, *uid, at(4)).await.unwrap();
                assert_eq!((m.signatures, &m.warnings), (ALL, &l.warnings), "uid {uid:?}");
            }
            Err(why) => {
                let Verification::NotVerified(reason) = &l.verification else {
                    panic!("uid {uid:?} listed as verified");
                };
                assert!(reason.contains(why), "uid {uid:?}: {reason}");
                assert!(l.subject.is_empty() && l.warnings.is_empty(), "uid {uid:?}");
                let e = svc.read(&mut bob, MailboxId::INBOX, *uid, at(4)).await.unwrap_err();
                let ReadError::NotShown(reason) = e else { panic!("uid {uid:?}: {e}") };
                assert!(reason.contains(why), "uid {uid:?}: {reason}");
            }
        }
    }
    let stripped = &listed[1].signatures;
    assert_eq!(
        (stripped.author_tree, stripped.author_full, stripped.origin),
        (S::Present, S::Present, S::Absent),
        "the listing says which signature is missing"
    );
    // Wait for the records the listing stored.
    for _ in 0..500 {
        let s = svc.store().list_summaries(&mut keys, MailboxId::INBOX, at(5)).unwrap();
        let have = s.iter().filter(|(_, summary)| summary.is_some()).count();
        if have == 1 + cases.iter().filter(|c| c.1.is_ok()).count() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The records (version 3) give the same listing, warnings included; what differs is
    // where the verification comes from: the record of the first check, not a fresh one.
    let again = svc.list(&mut bob, MailboxId::INBOX, at(5)).await.unwrap();
    let without = |l: &[dime_server::service::Listed]| -> Vec<dime_server::service::Listed> {
        l.iter().map(|l| dime_server::service::Listed { provenance: None, ..l.clone() }).collect()
    };
    assert_eq!(without(&again), without(&listed));
    for (l, first) in again.iter().zip(&listed) {
        assert_eq!(l.provenance.is_some(), first.provenance.is_some());
        if let (Some(now), Some(then)) = (&l.provenance, &first.provenance) {
            assert!(then.fresh && !now.fresh, "uid {:?}", l.uid);
            assert_eq!(
                (&now.author_signet, &now.origin_signet),
                (&then.author_signet, &then.origin_signet)
            );
        }
    }
    drop(bob);

    // The socket's answers carry the signatures and the warnings.
    let svc = Arc::new(f.svc);
    let path = f._dir.path().join("dimed.sock");
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let server =
        dime_server::submission::serve(&path, Arc::new(Submission { service: svc }), stop_rx)
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
    let ok = ask(serde_json::json!({"op": "login", "user": BOB, "password": "bob-pw"})).await;
    assert!(ok.ok);
    let list = ask(serde_json::json!({"op": "list"})).await.messages.unwrap();
    let s = |m: &dime_server::submission::SignatureStates| {
        [m.author_tree.clone(), m.author_full.clone(), m.origin.clone()]
    };
    assert_eq!(s(&list[0].signatures), ["verified", "verified", "verified"]);
    assert_eq!(s(&list[1].signatures), ["present", "present", "absent"]);
    assert!(!list[1].verified && list[1].subject.contains("no origin signature"), "{list:?}");
    assert_eq!(list[6].warnings, ["bob@a.test is not in To or Cc (a Bcc copy)"]);
    let read = ask(serde_json::json!({"op": "read", "uid": cases[5].0.0})).await;
    let m = read.message.unwrap();
    assert_eq!(s(&m.signatures), ["verified", "verified", "verified"]);
    assert_eq!(m.warnings, ["addressed to alice@a.test, not to this account"]);
    let e = ask(serde_json::json!({"op": "read", "uid": cases[1].0.0})).await;
    assert!(e.error.unwrap().contains("no origin signature"));
    stop.send(true).unwrap();
    server.await.unwrap();
}
