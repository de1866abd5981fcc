//! Moving an account to another host keeps its history readable (issue 27 item 2;
//! `spec/storage.md` §8, `spec/dimed.md` §4.3): the archive carries each message's
//! verification record with the signets that verified it and the account's signet history;
//! the importing host gives the account its own address and a new user signet chained to the
//! old keys, refuses an address outside its domain unless the new one is named, and shows the
//! moved mail verified, with its provenance, and addressed to the former address.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NoDirectory, T0, mailbox, p, side};

use dime_core::{Domain, Mailbox};
use dime_envelope::author_signing_keys;
use dime_server::origin::parse_payload;
use dime_server::service::{Directory, Draft, LoginPolicy, MailService, Password, Verification};
use dime_signet::{FingerprintKind, Signet, Verifier};
use dime_store::{
    Accounts, Archive, ArchiveError, Deliveries, ImportTarget, MailboxId, Mailboxes, Queue,
    Timestamp,
};
use std::sync::Arc;

const ALICE: &str = "alice@a.test";
const BOB: &str = "bob@a.test";
const MOVED: &str = "alice@b.test";

fn at(secs: u64) -> Timestamp {
    Timestamp(T0.0 + secs)
}

fn pw(s: &str) -> Password {
    Password::from(s.to_owned())
}

fn service(s: common::Side) -> MailService<NoDirectory> {
    service_with(s, NoDirectory)
}

fn service_with<D: Directory>(s: common::Side, d: D) -> MailService<D> {
    MailService::new(s.store, s.local, Arc::new(d), p())
        .with_login_policy(LoginPolicy { failure_delay_secs: 0, ..LoginPolicy::default() })
}

/// a.test as b.test finds it by discovery: its org signet and bob's current signet.
struct ATest {
    org: Signet,
    bob: Signet,
}

impl Directory for ATest {
    async fn user_signets(
        &self,
        user: &Mailbox,
    ) -> Result<(Signet, Signet), dime_resolver::DiscoveryError> {
        if *user == mailbox(BOB) {
            Ok((self.bob.clone(), self.org.clone()))
        } else {
            Err(not_found(user.domain()))
        }
    }
    async fn org_signet(&self, d: &Domain) -> Result<Signet, dime_resolver::DiscoveryError> {
        if d.as_str() == "a.test" { Ok(self.org.clone()) } else { Err(not_found(d)) }
    }
    async fn user_history(
        &self,
        _user: &Mailbox,
        _since: &dime_core::Fingerprint,
    ) -> Result<Vec<Signet>, dime_resolver::DiscoveryError> {
        Ok(Vec::new())
    }
}

fn not_found(d: &Domain) -> dime_resolver::DiscoveryError {
    dime_resolver::DiscoveryError::NotUsable(dime_resolver::Decision::Defer(
        dime_resolver::DeferReason::Bogus { at: d.clone() },
    ))
}

/// `who` sends `subject` to `to` on `svc`'s host; the envelope is delivered to `to` there.
async fn send(svc: &MailService<NoDirectory>, who: &str, password: &str, to: &str, subject: &str) {
    let mut s = svc.login(&mailbox(who), pw(password), at(1)).await.unwrap();
    let draft = Draft { to: mailbox(to), subject: subject.into(), body: subject.into() };
    svc.send(&mut s, &draft, at(1)).await.unwrap();
    for e in svc.store().queue_entries().unwrap() {
        let payload = parse_payload(p(), &e.payload).unwrap();
        svc.store().deliver(&mailbox(to), payload.envelope.bytes(), at(1)).unwrap();
        svc.store().complete(e.id).unwrap();
    }
}

/// a.test with alice and bob in `dir`: alice's inbox holds mail from bob and her own note to
/// herself; then she rotates her keys once (her chain has two signets when she leaves).
async fn a_test(dir: &std::path::Path) -> MailService<NoDirectory> {
    let a = side(&dir.join("a"), "a.test", 1, ALICE);
    a.add_user(BOB, b"bob-pw");
    let a = service(a);
    send(&a, BOB, "bob-pw", ALICE, "from bob").await;
    send(&a, ALICE, "pw", ALICE, "note to self").await;
    let mut s = a.store().login(&mailbox(ALICE), b"pw", at(2)).unwrap();
    a.store()
        .rotate_keys(&mut dime_testkit::seeded_rng(5), &mut s, a.local().keys(), at(2))
        .unwrap();
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_account_reads_its_old_mail_verified_with_its_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let a = a_test(dir.path()).await;
    send(&a, BOB, "bob-pw", ALICE, "after the rotation").await;

    // The export verifies every message first: the archive carries their records.
    let mut alice = a.login(&mailbox(ALICE), pw("pw"), at(3)).await.unwrap();
    let archive = a.export(&mut alice, b"archive pw", at(3)).await.unwrap();
    let a_blobs: Vec<Vec<u8>> = (1..=3)
        .map(|u| a.store().fetch(alice.account(), MailboxId::INBOX, dime_store::Uid(u)).unwrap())
        .collect();

    // b.test: its own pepper and organisation, and no way to look a.test up.
    let b = side(&dir.path().join("b"), "b.test", 2, "someone@b.test");
    let b_org_signet = b.local.org_signet.clone();
    let b = service(b);
    let target =
        |address| ImportTarget { domain: &b.local().domain, org: b.local().keys(), address };
    let mut rng = dime_testkit::seeded_rng(9);
    // An address of another domain is refused unless the new one is named; a named one of
    // another domain too.
    assert_eq!(
        b.store().import_to(&mut rng, &archive, b"archive pw", b"new pw", &target(None), at(4)),
        Err(ArchiveError::Refused(
            "the archive's address is not of this host's domain: name the new address"
        ))
    );
    let elsewhere = mailbox("alice@c.test");
    assert!(
        b.store()
            .import_to(
                &mut rng,
                &archive,
                b"archive pw",
                b"new pw",
                &target(Some(&elsewhere)),
                at(4)
            )
            .is_err()
    );
    assert!(b.store().login(&mailbox(ALICE), b"new pw", at(4)).is_err(), "nothing imported");
    let (_, moved) = b
        .store()
        .import_to(
            &mut rng,
            &archive,
            b"archive pw",
            b"new pw",
            &target(Some(&mailbox(MOVED))),
            at(4),
        )
        .unwrap();
    assert_eq!(moved, mailbox(MOVED));

    // The account's directory record: the new address, the old one as former, and a chain of
    // three signets (two of a.test, one of b.test chained to the last by custody).
    let d = b.store().directory(&mailbox(MOVED)).unwrap();
    assert_eq!(d.former, [mailbox(ALICE)]);
    let chain = d.chain();
    assert_eq!(chain.len(), 3);
    assert!(
        chain[2]
            .validate(p(), &Verifier::new().org(&b_org_signet))
            .is_at_least(dime_signet::SignetState::Crypto)
    );
    assert_eq!(author_signing_keys(p(), &chain).unwrap().len(), 3, "custody holds across the move");

    // Alice logs in on b.test with her new password: every message reads verified from its
    // record (no lookup of a.test is possible here), addressed to her former address.
    let mut alice = b.login(&mailbox(MOVED), pw("new pw"), at(5)).await.unwrap();
    let listed = b.list(&mut alice, MailboxId::INBOX, at(5)).await.unwrap();
    assert_eq!(listed.len(), 3);
    let former = format!("addressed to {ALICE}, this account's address before it moved");
    for (l, subject) in listed.iter().zip(["from bob", "note to self", "after the rotation"]) {
        assert_eq!((l.subject.as_str(), &l.verification), (subject, &Verification::Verified));
        assert!(l.warnings.contains(&former), "{:?}", l.warnings);
        let m = b.read(&mut alice, MailboxId::INBOX, l.uid, at(5)).await.unwrap();
        assert!(!m.provenance.fresh);
        assert_eq!(m.provenance.recorded_at, at(3));
        assert!(m.warnings.contains(&former), "{:?}", m.warnings);
        let blob = b.store().fetch(alice.account(), MailboxId::INBOX, l.uid).unwrap();
        assert!(a_blobs.contains(&blob), "the envelopes move byte-identical");
    }
    let by_self = &listed[1];
    let m = b.read(&mut alice, MailboxId::INBOX, by_self.uid, at(5)).await.unwrap();
    let first = a.store().directory(&mailbox(ALICE)).unwrap().chain()[0]
        .fingerprint(p(), FingerprintKind::Full);
    assert_eq!(m.provenance.author_signet, first, "signed with her first keys");
    // A fresh check needs a.test (unreachable from here): the message is not shown afresh,
    // and its record still is.
    assert!(b.recheck(&mut alice, MailboxId::INBOX, by_self.uid, at(6)).await.is_err());
    assert!(b.read(&mut alice, MailboxId::INBOX, by_self.uid, at(6)).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_moved_without_records_verifies_afresh_on_the_new_host() {
    let dir = tempfile::tempdir().unwrap();
    let a = a_test(dir.path()).await;
    // The store's own export (`dime user export`, no mail service): nothing was read, so the
    // archive carries no record.
    let mut keys = a.store().login(&mailbox(ALICE), b"pw", at(3)).unwrap();
    let archive = a
        .store()
        .export(&mut dime_testkit::seeded_rng(6), &mut keys, b"archive pw", at(3))
        .unwrap();

    // b.test reaches a.test (discovery): its org signet, and bob, who stays there.
    let (_, bob) = a.store().signet(&mailbox(BOB)).unwrap();
    let a_test = ATest { org: a.local().org_signet.clone(), bob };
    let b = service_with(side(&dir.path().join("b"), "b.test", 2, "someone@b.test"), a_test);
    let target = ImportTarget {
        domain: &b.local().domain,
        org: b.local().keys(),
        address: Some(&mailbox(MOVED)),
    };
    b.store()
        .import_to(
            &mut dime_testkit::seeded_rng(9),
            &archive,
            b"archive pw",
            b"new pw",
            &target,
            at(4),
        )
        .unwrap();
    let mut alice = b.login(&mailbox(MOVED), pw("new pw"), at(5)).await.unwrap();
    // Bob's mail verifies with his signet from a.test; alice's own note, signed by her
    // first a.test key, with her own chain, which moved with her (a.test no longer has her).
    let listed = b.list(&mut alice, MailboxId::INBOX, at(5)).await.unwrap();
    let got: Vec<(&str, &Verification, bool)> = listed
        .iter()
        .map(|l| {
            (l.subject.as_str(), &l.verification, l.provenance.as_ref().is_some_and(|p| p.fresh))
        })
        .collect();
    assert_eq!(
        got,
        [
            ("from bob", &Verification::Verified, true),
            ("note to self", &Verification::Verified, true)
        ]
    );
}
