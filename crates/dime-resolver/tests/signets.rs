//! User-signet validation, rotation, rollback and pinning (`spec/discovery.md` §6).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dime_core::crypto::default_provider;
use dime_core::{Domain, Mailbox};
use dime_resolver::signets::{
    ChainStatus, MemoryPinStore, MemorySource, PinStore, SignetError, SignetSource, apply_pin,
    check_chain, validate_org, validate_user,
};
use dime_resolver::{AuthenticatedDomain, AuthenticatedRecord, DnssecProof, UnchainedSignet};
use dime_signet::record::Record;
use dime_signet::{
    OrgKeys, OrgSigner, Profile, Signet, UserKeys, create_org_signet, create_rotation_ssr,
    create_ssr, sign_user_signet,
};

struct World {
    org_keys: OrgKeys,
    org: Signet,
    record: Record,
    domain: Domain,
    mailbox: Mailbox,
}

fn world(seed: u64) -> World {
    let p = default_provider();
    let mut rng = dime_testkit::seeded_rng(seed);
    let org_keys = OrgKeys::generate(&mut rng);
    let domain: Domain = "example.test".parse().unwrap();
    let org = create_org_signet(p, &org_keys, &domain, &Profile::new()).unwrap();
    let record = Record::new(vec![org_keys.pok(p)]);
    World { org_keys, org, record, domain, mailbox: "alice@example.test".parse().unwrap() }
}

fn user(w: &World, keys: &UserKeys, previous: Option<&UserKeys>) -> Signet {
    let p = default_provider();
    let ssr = match previous {
        Some(prev) => create_rotation_ssr(p, keys, prev).unwrap(),
        None => create_ssr(p, keys).unwrap(),
    };
    sign_user_signet(p, &w.org_keys, OrgSigner::Pok, &ssr, &w.mailbox, &Profile::new()).unwrap()
}

#[test]
fn org_signet_must_carry_a_pok_of_the_record() {
    let p = default_provider();
    let w = world(1);
    assert!(validate_org(p, &w.record, &w.domain, w.org.clone()).is_ok());
    let other = world(2);
    let err = validate_org(p, &other.record, &w.domain, w.org.clone()).unwrap_err();
    assert!(matches!(err, SignetError::Invalid { .. }), "{err:?}");
    let elsewhere: Domain = "other.test".parse().unwrap();
    assert_eq!(
        validate_org(p, &w.record, &elsewhere, w.org.clone()).unwrap_err(),
        SignetError::WrongIdentifier
    );
}

#[test]
fn user_signet_from_another_org_is_refused() {
    let p = default_provider();
    let w = world(3);
    let org = validate_org(p, &w.record, &w.domain, w.org.clone()).unwrap();
    let other = world(4);
    let keys = UserKeys::generate(&mut dime_testkit::seeded_rng(5));
    let forged = user(&other, &keys, None);
    assert!(validate_user(p, &org, &w.mailbox, &forged).is_err());
    let good = user(&w, &keys, None);
    assert!(validate_user(p, &org, &w.mailbox, &good).is_ok());
}

#[tokio::test]
async fn rotation_is_followed_rollback_refused_unchained_flagged_or_refused() {
    let p = default_provider();
    let w = world(6);
    let org = validate_org(p, &w.record, &w.domain, w.org.clone()).unwrap();
    let mut rng = dime_testkit::seeded_rng(7);
    let (k1, k2, k3, kx) = (
        UserKeys::generate(&mut rng),
        UserKeys::generate(&mut rng),
        UserKeys::generate(&mut rng),
        UserKeys::generate(&mut rng),
    );
    let (s1, s2, s3) = (user(&w, &k1, None), user(&w, &k2, Some(&k1)), user(&w, &k3, Some(&k2)));
    let unchained = user(&w, &kx, None);
    let source = MemorySource::new(p);
    let pins = MemoryPinStore::default();
    let step = |s: &Signet, history: &[Signet], policy| {
        let (_, _, fp) = validate_user(p, &org, &w.mailbox, s).unwrap();
        let pin = pins.pin(&w.mailbox);
        let chain = check_chain(p, pin.as_ref(), s, &fp, history);
        (chain, apply_pin(&pins, &w.mailbox, pin, s, fp, chain, policy))
    };
    assert_eq!(step(&s1, &[], UnchainedSignet::Refuse), (ChainStatus::First, Ok(())));
    assert_eq!(step(&s1, &[], UnchainedSignet::Refuse), (ChainStatus::Same, Ok(())));
    // Two rotations at once: s3 is chained to s1 only through s2, from the history.
    for s in [&s1, &s2, &s3] {
        source.publish_user(&w.mailbox, (*s).clone());
    }
    let since = pins.pin(&w.mailbox).unwrap().fingerprint;
    let domain = AuthenticatedDomain::with_hosts(
        w.domain.clone(),
        AuthenticatedRecord {
            record: std::sync::Arc::new(w.record.clone()),
            published_by: w.domain.clone(),
            proof: DnssecProof::Secure,
            lifetime_secs: 3600,
        },
        Vec::new(),
    );
    let history = source.user_history(&domain, &w.mailbox, &since).await.unwrap();
    assert_eq!(source.user_signet(&domain, &w.mailbox).await.unwrap(), s3);
    assert_eq!(history.len(), 2);
    assert_eq!(step(&s3, &[], UnchainedSignet::Refuse).0, ChainStatus::Unchained);
    assert_eq!(
        step(&s3, &history, UnchainedSignet::Refuse),
        (ChainStatus::Rotated { steps: 2 }, Ok(()))
    );
    // Serving s1 again is a rollback, whatever the policy.
    assert_eq!(
        step(&s1, &[], UnchainedSignet::Flag),
        (ChainStatus::Rollback, Err(SignetError::Rollback))
    );
    // A signet with no custody from s3: refused under Refuse, flagged and pinned under Flag.
    assert_eq!(
        step(&unchained, &[], UnchainedSignet::Refuse),
        (ChainStatus::Unchained, Err(SignetError::Unchained))
    );
    assert_eq!(step(&unchained, &[], UnchainedSignet::Flag), (ChainStatus::Unchained, Ok(())));
    assert_eq!(step(&unchained, &[], UnchainedSignet::Refuse), (ChainStatus::Same, Ok(())));
    assert_eq!(pins.pin(&w.mailbox).unwrap().superseded.len(), 2);
}

#[test]
fn user_signet_by_a_sok_needs_the_signet_permission() {
    use dime_signet::{SokPermissions, SokSecret};
    let p = default_provider();
    let mut rng = dime_testkit::seeded_rng(8);
    let mut org_keys = OrgKeys::generate(&mut rng);
    org_keys.add_sok(&mut rng, SokPermissions::SIGNET);
    let domain: Domain = "example.test".parse().unwrap();
    let mailbox: Mailbox = "bob@example.test".parse().unwrap();
    let record = Record::new(vec![org_keys.pok(p)]);
    let org_signet = create_org_signet(p, &org_keys, &domain, &Profile::new()).unwrap();
    let org = validate_org(p, &record, &domain, org_signet).unwrap();
    let ssr = create_ssr(p, &UserKeys::generate(&mut rng)).unwrap();
    let by_sok =
        sign_user_signet(p, &org_keys, OrgSigner::Sok(0), &ssr, &mailbox, &Profile::new()).unwrap();
    let (_, signer, _) = validate_user(p, &org, &mailbox, &by_sok).unwrap();
    assert_eq!(signer, dime_resolver::UserSigner::Sok);

    // The same SOK published with the message permission only: its user signets are refused.
    let seed = org_keys.soks()[0].seed.duplicate();
    let (pok, _, encryption) = org_keys.duplicate().into_parts();
    let demoted = OrgKeys::from_parts(
        pok,
        vec![SokSecret { permissions: SokPermissions::MESSAGE, seed }],
        encryption,
    );
    let demoted_signet = create_org_signet(p, &demoted, &domain, &Profile::new()).unwrap();
    let demoted_org = validate_org(p, &record, &domain, demoted_signet).unwrap();
    let err = validate_user(p, &demoted_org, &mailbox, &by_sok).unwrap_err();
    assert!(matches!(err, SignetError::Invalid { .. }), "{err:?}");
}
