//! Creation and the ladder's signer rules (`spec/signet.md` §5, §6), with the default provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dime_core::crypto::{Ed25519Seed, default_provider};
use dime_signet::{
    CreateError, FieldData, OrgKeys, OrgSigner, Problem, Profile, Signet, SignetKind, SignetState,
    SokPermissions, SokSecret, UserKeys, Verifier, create_org_signet, create_ssr, sign_user_signet,
};

fn seed_copy(s: &Ed25519Seed) -> Ed25519Seed {
    s.duplicate()
}

#[test]
fn a_sok_without_the_signet_bit_neither_signs_nor_validates() {
    let p = default_provider();
    let mut rng = dime_testkit::seeded_rng(11);
    let mut keys = OrgKeys::generate(&mut rng);
    keys.add_sok(&mut rng, SokPermissions::SIGNET);
    let domain = "example.com".parse().unwrap();
    let user = UserKeys::generate(&mut rng);
    let ssr = create_ssr(p, &user).unwrap();
    let mailbox = "u@example.com".parse().unwrap();
    let signed =
        sign_user_signet(p, &keys, OrgSigner::Sok(0), &ssr, &mailbox, &Profile::new()).unwrap();
    let org = create_org_signet(p, &keys, &domain, &Profile::new()).unwrap();
    assert_eq!(signed.validate(p, &Verifier::new().org(&org)).state(), SignetState::Id);

    // The same SOK published with the message bit only: its signatures are not accepted.
    let sok = &keys.soks()[0];
    let (pok, _, encryption) = keys.duplicate().into_parts();
    let demoted = OrgKeys::from_parts(
        pok,
        vec![SokSecret { permissions: SokPermissions::MESSAGE, seed: seed_copy(&sok.seed) }],
        encryption,
    );
    let demoted_org = create_org_signet(p, &demoted, &domain, &Profile::new()).unwrap();
    let v = signed.validate(p, &Verifier::new().org(&demoted_org));
    assert_eq!((v.state(), v.problem()), (SignetState::Invalid, Some(&Problem::BadSignature(6))));
    let e = sign_user_signet(p, &demoted, OrgSigner::Sok(0), &ssr, &mailbox, &Profile::new());
    assert_eq!(e.unwrap_err(), CreateError::SokLacksSignetPermission(0));
    let e = sign_user_signet(p, &demoted, OrgSigner::Sok(5), &ssr, &mailbox, &Profile::new());
    assert_eq!(e.unwrap_err(), CreateError::NoSuchSok(5));
}

#[test]
fn an_org_signet_with_a_malformed_sok_lends_no_sok_its_trust() {
    let p = default_provider();
    let mut rng = dime_testkit::seeded_rng(14);
    let mut keys = OrgKeys::generate(&mut rng);
    keys.add_sok(&mut rng, SokPermissions::SIGNET);
    let ssr = create_ssr(p, &UserKeys::generate(&mut rng)).unwrap();
    let mailbox = "u@example.com".parse().unwrap();
    let signed =
        sign_user_signet(p, &keys, OrgSigner::Sok(0), &ssr, &mailbox, &Profile::new()).unwrap();
    let org =
        create_org_signet(p, &keys, &"example.com".parse().unwrap(), &Profile::new()).unwrap();
    // A second field 2 that is not a SOK: the org signet is malformed (its `soks()` fails),
    // so the well-formed SOK beside it does not count as a signer either.
    let mut fields = org.field_data();
    let at = fields.iter().rposition(|f| f.id == 2).unwrap() + 1;
    fields.insert(at, FieldData::new(2, vec![1u8; 5]));
    let bad_org = Signet::from_fields(SignetKind::Org, &fields).unwrap();
    assert!(bad_org.soks().is_err());
    let v = signed.validate(p, &Verifier::new().org(&bad_org));
    assert_eq!((v.state(), v.problem()), (SignetState::Invalid, Some(&Problem::BadSignature(6))));
}

#[test]
fn user_domain_must_match_org_domain() {
    let p = default_provider();
    let mut rng = dime_testkit::seeded_rng(12);
    let keys = OrgKeys::generate(&mut rng);
    let org =
        create_org_signet(p, &keys, &"example.com".parse().unwrap(), &Profile::new()).unwrap();
    let ssr = create_ssr(p, &UserKeys::generate(&mut rng)).unwrap();
    let elsewhere = "u@example.net".parse().unwrap();
    let user =
        sign_user_signet(p, &keys, OrgSigner::Pok, &ssr, &elsewhere, &Profile::new()).unwrap();
    let v = user.validate(p, &Verifier::new().org(&org));
    assert_eq!((v.state(), v.problem()), (SignetState::Invalid, Some(&Problem::DomainMismatch)));
}

#[test]
fn an_ssr_with_a_bad_self_signature_is_not_signed() {
    let p = default_provider();
    let mut rng = dime_testkit::seeded_rng(13);
    let keys = OrgKeys::generate(&mut rng);
    let ssr = create_ssr(p, &UserKeys::generate(&mut rng)).unwrap();
    let mut bytes = ssr.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    let bad = dime_signet::Signet::decode(&bytes).unwrap();
    assert_eq!(bad.validate(p, &Verifier::new()).state(), SignetState::Invalid);
    let mailbox = "u@example.com".parse().unwrap();
    let e = sign_user_signet(p, &keys, OrgSigner::Pok, &bad, &mailbox, &Profile::new());
    assert!(matches!(e, Err(CreateError::InvalidSsr(_))));
}

#[test]
fn new_signets_are_v2_and_emit_the_0x40_key_form() {
    let p = default_provider();
    let mut rng = dime_testkit::seeded_rng(14);
    let keys = OrgKeys::generate(&mut rng);
    let org =
        create_org_signet(p, &keys, &"example.com".parse().unwrap(), &Profile::new()).unwrap();
    assert!(org.is_v2());
    assert_eq!(org.field(1).unwrap().data.len(), 33);
    assert_eq!(org.field(1).unwrap().data[0], 0x40);
    assert_eq!(org.field(3).unwrap().data[0], 0x58);
    assert_eq!(org.signing_key().unwrap(), keys.pok(p));
}
