//! Round trips and hostile input (`spec/signet.md` §3, §10): decode(encode(x)) == x for random
//! field sets; random and mutated bytes never panic and always give a typed answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dime_signet::fields::{Definition, Width, field_info};
use dime_signet::{
    DecodeError, FieldData, Profile, Signet, SignetKind, SignetState, Verifier, armor, decode_any,
    keyfile, validate_bytes,
};
use proptest::prelude::*;

fn kind_strategy() -> impl Strategy<Value = SignetKind> {
    prop_oneof![Just(SignetKind::Ssr), Just(SignetKind::Org), Just(SignetKind::User)]
}

/// Turns arbitrary (id, name, data) triples into a field set that obeys every container rule
/// of `kind`: defined or undefined ids only, ascending, unique ids once, data fitting widths.
fn normalise(kind: SignetKind, raw: Vec<(u8, Vec<u8>, Vec<u8>)>) -> Vec<FieldData> {
    let mut fields: Vec<FieldData> = raw
        .into_iter()
        .filter(|(id, _, _)| field_info(kind, *id).definition != Definition::Reserved)
        .map(|(id, mut name, mut data)| {
            let width = field_info(kind, id).width;
            match width {
                Width::Signature => data.resize(64, 0xAB),
                Width::U8 => data.truncate(255),
                _ => {}
            }
            if width == Width::Named {
                name.truncate(255);
                if name.is_empty() {
                    name.push(b'x');
                }
                FieldData { id, name: Some(name), data }
            } else {
                FieldData::new(id, data)
            }
        })
        .collect();
    fields.sort_by_key(|f| f.id);
    fields.dedup_by(|b, a| a.id == b.id && field_info(kind, a.id).unique);
    fields
}

fn raw_fields() -> impl Strategy<Value = Vec<(u8, Vec<u8>, Vec<u8>)>> {
    prop::collection::vec(
        (
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..8),
            prop::collection::vec(any::<u8>(), 0..300),
        ),
        0..24,
    )
}

fn vector(name: &str) -> Vec<u8> {
    let t = std::fs::read_to_string(dime_testkit::vectors_dir().join(name)).unwrap();
    STANDARD.decode(t.trim()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn decode_of_encode_is_identity(kind in kind_strategy(), raw in raw_fields()) {
        let fields = normalise(kind, raw);
        let bytes = dime_signet::codec::encode_signet(kind, &fields).unwrap();
        let s = Signet::decode(&bytes).unwrap();
        prop_assert_eq!(s.kind(), kind);
        prop_assert_eq!(s.field_data(), fields);
        prop_assert_eq!(s.as_bytes(), &bytes[..]);
        // Through armor and bare base64 too.
        let armored = s.to_armor();
        prop_assert_eq!(Signet::decode_any(armored.as_bytes()).unwrap(), s.clone());
        prop_assert_eq!(Signet::decode_any(STANDARD.encode(&bytes).as_bytes()).unwrap(), s);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let p = dime_testkit::insecure_provider();
        let _ = Signet::decode(&bytes);
        let _ = decode_any(&bytes);
        let _ = validate_bytes(p, &bytes, &Verifier::new());
        let _ = keyfile::read(p, &bytes, Some(b"pass"));
        let _ = armor::dearmor_any(&bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = armor::decode(text);
        }
    }

    #[test]
    fn random_payloads_behind_a_valid_header_never_panic(
        magic in prop_oneof![Just(1215u16), Just(1776), Just(1789), Just(1952), Just(2013), Just(2049), Just(2050), Just(2065), Just(2066)],
        payload in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let p = dime_testkit::insecure_provider();
        let mut bytes = magic.to_be_bytes().to_vec();
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        bytes.extend_from_slice(&payload);
        if let Ok(s) = Signet::decode(&bytes) {
            let _ = s.validate(p, &Verifier::new().org(&s).previous(&s));
            for k in [dime_signet::FingerprintKind::Ssr, dime_signet::FingerprintKind::Crypto,
                      dime_signet::FingerprintKind::Full, dime_signet::FingerprintKind::Id] {
                let _ = s.fingerprint(p, k);
            }
            let _ = (s.identifier(), s.soks(), s.encryption_key(), s.alternate_encryption_keys());
        }
        let _ = keyfile::read(p, &bytes, Some(b"pass"));
    }

    #[test]
    fn mutated_v1_vectors_never_panic_and_never_validate_higher(
        which in 0usize..3, at in any::<prop::sample::Index>(), xor in 1u8..=255,
    ) {
        let p = dime_core::crypto::default_provider();
        let name = ["dime-v1/org-signet.b64", "dime-v1/user-signet.b64", "dime-v1/user-signing-request.b64"][which];
        let org = Signet::decode(&vector("dime-v1/org-signet.b64")).unwrap();
        let mut bytes = vector(name);
        let i = at.index(bytes.len());
        bytes[i] ^= xor;
        let v = validate_bytes(p, &bytes, &Verifier::new().org(&org));
        // A changed byte anywhere breaks the header, a field, or a signature.
        prop_assert!(v.state() < SignetState::Ssr || i < 5, "{:?} at {}", v, i);
    }
}

#[test]
fn header_claiming_16_mib_is_a_typed_error() {
    let e = Signet::decode(&[0x06, 0xF0, 0xFF, 0xFF, 0xFF]).unwrap_err();
    assert_eq!(e, DecodeError::Truncated { declared: 0xFF_FFFF, available: 0 });
    assert!(e.is_overflow());
    let v = validate_bytes(
        dime_testkit::insecure_provider(),
        &[0x06, 0xF0, 0xFF, 0xFF, 0xFF],
        &Verifier::new(),
    );
    assert_eq!(v.state(), SignetState::Overflow);
    assert!(v.problem().unwrap().to_string().contains("declares 16777215 payload bytes"));
}

#[test]
fn every_truncation_of_a_vector_is_a_typed_error() {
    let bytes = vector("dime-v1/user-signet.b64");
    for n in 0..bytes.len() {
        assert!(Signet::decode(&bytes[..n]).is_err(), "{n}");
        // A header fixed to the truncated length: the field walk stops with FieldTruncated
        // or the signet decodes with fewer fields and fails completeness.
        if n > 5 {
            let mut fixed = bytes[..n].to_vec();
            let len = (n - 5) as u32;
            fixed[2..5].copy_from_slice(&len.to_be_bytes()[1..]);
            let v = validate_bytes(dime_testkit::insecure_provider(), &fixed, &Verifier::new());
            assert!(
                v.state() <= SignetState::Invalid || v.state() == SignetState::Ssr,
                "{n} {v:?}"
            );
        }
    }
}

#[test]
fn undefined_ids_are_carried_and_reported_reserved_ids_refused() {
    let p = dime_core::crypto::default_provider();
    let keys = dime_signet::OrgKeys::generate(&mut dime_testkit::seeded_rng(9));
    let domain = "example.net".parse().unwrap();
    let profile =
        Profile::new().with(28, "custom").with(212, "wide custom").with_named("X-Thing", "v");
    let org = dime_signet::create_org_signet(p, &keys, &domain, &profile).unwrap();
    assert_eq!(org.validate(p, &Verifier::new()).state(), SignetState::Id);
    let undefined: Vec<u8> = org.undefined_fields().map(|f| f.id).collect();
    assert_eq!(undefined, [28, 212]);
    assert_eq!(org.field(251).unwrap().name, Some(&b"X-Thing"[..]));
    let bad = Profile::new().with(7, "reserved");
    assert!(dime_signet::create_org_signet(p, &keys, &domain, &bad).is_err());
    // Reserved ids in bytes are a typed decode error naming the rule.
    let mut bytes = vec![0x06, 0xF0, 0, 0, 2, 9, 0];
    assert!(matches!(Signet::decode(&bytes), Err(DecodeError::ReservedField { id: 9, .. })));
    bytes[5] = 0;
    assert!(matches!(Signet::decode(&bytes), Err(DecodeError::ReservedField { id: 0, .. })));
}

#[test]
fn missing_and_unsigned_fields_are_incomplete() {
    let p = dime_testkit::insecure_provider();
    let org = Signet::decode(&vector("dime-v1/org-signet.b64")).unwrap();
    // Drop field 255 only: 254 without 255.
    let fields: Vec<FieldData> = org.field_data().into_iter().filter(|f| f.id != 255).collect();
    let s = Signet::from_fields(SignetKind::Org, &fields).unwrap();
    assert_eq!(s.validate(p, &Verifier::new()).state(), SignetState::Incomplete);
    // Drop 253, 254, 255: profile fields are then unsigned.
    let fields: Vec<FieldData> = org.field_data().into_iter().filter(|f| f.id < 253).collect();
    let s = Signet::from_fields(SignetKind::Org, &fields).unwrap();
    assert_eq!(s.validate(p, &Verifier::new()).state(), SignetState::Incomplete);
    // Keep 1, 3, 4 only: a crypto signet.
    let fields: Vec<FieldData> = org.field_data().into_iter().filter(|f| f.id <= 4).collect();
    let s = Signet::from_fields(SignetKind::Org, &fields).unwrap();
    let v = s.validate(dime_core::crypto::default_provider(), &Verifier::new());
    assert_eq!(v.state(), SignetState::Crypto);
    // Drop field 3.
    let fields: Vec<FieldData> = org.field_data().into_iter().filter(|f| f.id != 3).collect();
    let s = Signet::from_fields(SignetKind::Org, &fields).unwrap();
    assert_eq!(s.validate(p, &Verifier::new()).state(), SignetState::Incomplete);
    // A bad key form is malformed.
    let mut fields = org.field_data();
    fields[0].data[0] = 0x41;
    let s = Signet::from_fields(SignetKind::Org, &fields).unwrap();
    assert_eq!(s.validate(p, &Verifier::new()).state(), SignetState::Malformed);
}
