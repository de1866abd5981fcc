//! The DIME v1 (magma 2016-11) vectors of `spec/vectors/dime-v1/` parse, verify and
//! fingerprint exactly as that README states (`spec/signet.md` §11). The literal values below
//! are copied from the README, which comes from outside the project.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dime_core::crypto::default_provider;
use dime_signet::{
    EncryptionKey, FingerprintKind, Identifier, KeySet, Problem, Signet, SignetKind, SignetState,
    Verifier, keyfile,
};

fn vector(name: &str) -> Vec<u8> {
    let path = dime_testkit::vectors_dir().join("dime-v1").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    STANDARD.decode(text.split_whitespace().collect::<String>()).unwrap()
}

fn ids(s: &Signet) -> Vec<u8> {
    s.fields().map(|f| f.id).collect()
}

fn fp(s: &Signet, kind: FingerprintKind) -> String {
    s.fingerprint(default_provider(), kind).unwrap().to_string()
}

#[test]
fn org_signet_parses_verifies_and_fingerprints() {
    let bytes = vector("org-signet.b64");
    let org = Signet::decode(&bytes).unwrap();
    assert_eq!(org.kind(), SignetKind::Org);
    assert_eq!(org.payload().len(), 355);
    assert_eq!(ids(&org), [1, 3, 4, 16, 17, 19, 20, 21, 253, 254, 255]);
    assert_eq!(org.field(1).unwrap().data[0], 0x40);
    assert!(matches!(org.encryption_key().unwrap(), EncryptionKey::Secp256k1(_)));
    assert!(!org.is_v2());
    assert_eq!(org.field(16).unwrap().data, b"Example LLC");
    match org.identifier().unwrap() {
        Some(Identifier::Domain(d)) => assert_eq!(d.as_str(), "example.com"),
        other => panic!("{other:?}"),
    }
    let v = org.validate(default_provider(), &Verifier::new());
    assert_eq!(v.state(), SignetState::Id, "{v:?}");
    assert_eq!(v.signed_by(), Some(&org.signing_key().unwrap()));
    assert_eq!(
        org.signing_key().unwrap().to_string(),
        "POBPl5Z0Jtq3/8QK8FkWKAlkRyny2J0dXqY3xh0i3ms"
    );
    assert_eq!(
        fp(&org, FingerprintKind::Crypto),
        "EQBttXLIOm5wCdw0FqPENS19byUuDS33UBoyPacjC46c+esDpPgeh8w4tDJCn9s0Bp+HXodEWQ4V93E76ujstw"
    );
    assert_eq!(
        fp(&org, FingerprintKind::Full),
        "igZFFMMNT3vZagPOraIbONkKv0SqDwAAiOPLKGugN3NNu2uOCKLXPkPZ3x9MrO7uJgGVKBNAbOvywJHl5UOGXQ"
    );
    assert_eq!(
        fp(&org, FingerprintKind::Id),
        "vcBXnfrFk6UeAcGXV9IXqrReFHvYmdIaXeUeWjeCUlk+p9K48lWyWQ1o1bYVvM1n1OxU7aHG8z6sGH2KbGkmiw"
    );
    assert_eq!(org.to_bytes(), bytes);
    // A trusted POK from DNS that matches keeps the state; another one does not.
    let pok = [org.signing_key().unwrap()];
    assert_eq!(
        org.validate(default_provider(), &Verifier::new().trusted_poks(&pok)).state(),
        SignetState::Id
    );
    let other = [dime_core::crypto::Ed25519PublicKey([7; 32])];
    let v = org.validate(default_provider(), &Verifier::new().trusted_poks(&other));
    assert_eq!((v.state(), v.problem()), (SignetState::Invalid, Some(&Problem::UntrustedPok)));
}

#[test]
fn ssr_parses_and_verifies() {
    let bytes = vector("user-signing-request.b64");
    let ssr = Signet::decode(&bytes).unwrap();
    assert_eq!(ssr.kind(), SignetKind::Ssr);
    assert_eq!(ssr.payload().len(), 135);
    assert_eq!(ids(&ssr), [1, 2, 5]);
    let v = ssr.validate(default_provider(), &Verifier::new());
    assert_eq!(v.state(), SignetState::Ssr, "{v:?}");
    assert_eq!(ssr.to_bytes(), bytes);
}

#[test]
fn user_signet_parses_verifies_and_fingerprints() {
    let bytes = vector("user-signet.b64");
    let user = Signet::decode(&bytes).unwrap();
    let org = Signet::decode(&vector("org-signet.b64")).unwrap();
    let ssr = Signet::decode(&vector("user-signing-request.b64")).unwrap();
    assert_eq!(user.kind(), SignetKind::User);
    assert_eq!(user.payload().len(), 366);
    assert_eq!(ids(&user), [1, 2, 5, 6, 16, 253, 254, 255]);
    assert_eq!(&user.payload()[..135], ssr.payload());
    assert_eq!(user.ssr_part().unwrap(), ssr);
    assert_eq!(
        user.fingerprint(default_provider(), FingerprintKind::Ssr),
        ssr.fingerprint(default_provider(), FingerprintKind::Ssr)
    );
    match user.identifier().unwrap() {
        Some(Identifier::Mailbox(m)) => assert_eq!(m.to_string(), "user@example.com"),
        other => panic!("{other:?}"),
    }
    let v = user.validate(default_provider(), &Verifier::new().org(&org));
    assert_eq!(v.state(), SignetState::Id, "{v:?}");
    assert_eq!(v.signed_by(), Some(&org.signing_key().unwrap()));
    // Without the org, only the user's own signature can be checked.
    let v = user.validate(default_provider(), &Verifier::new());
    assert_eq!((v.state(), v.problem()), (SignetState::Ssr, Some(&Problem::OrgNotGiven)));
    // The POK from DNS alone is enough, too.
    let pok = [org.signing_key().unwrap()];
    assert_eq!(
        user.validate(default_provider(), &Verifier::new().trusted_poks(&pok)).state(),
        SignetState::Id
    );
    assert_eq!(
        fp(&user, FingerprintKind::Crypto),
        "JTqL9oUynQrFxge1Q0swRvEmKqVN7WyKlQPRYzR9k8z1xR8MxSjMZX0a3uc3llgsdyelWgBRrsXRdIYJJlAxNQ"
    );
    assert_eq!(
        fp(&user, FingerprintKind::Full),
        "p5z0bKY7Wrv8bVbkY5bBFmJ7q8rBSxYiW1+YaG+QSasqiOF1kdjdArypWNIWGEm1e19ggfI40jQVLkjmcGr1Cw"
    );
    assert_eq!(
        fp(&user, FingerprintKind::Id),
        "h4gsAKJRBwuJ2Vf6PKYcZvAH9A1/KVCu6AsxAzNEn7Y+W/+x8hbNderRfvOkqXtm5rgx52qAXACPBMpyXv9New"
    );
    assert_eq!(user.to_bytes(), bytes);
}

#[test]
fn a_flipped_bit_in_any_signed_byte_breaks_the_ladder() {
    let org = Signet::decode(&vector("org-signet.b64")).unwrap();
    let bytes = vector("user-signet.b64");
    // Flip one bit in the Name field's data (covered by 253 and 255, not by 5 or 6).
    let at = 5 + bytes.windows(16).position(|w| w == b"user@example.com").unwrap();
    let mut bad = bytes.clone();
    bad[at] ^= 0x01;
    let v = Signet::decode(&bad).unwrap().validate(default_provider(), &Verifier::new().org(&org));
    assert_eq!((v.state(), v.problem()), (SignetState::Invalid, Some(&Problem::BadSignature(253))));
}

#[test]
fn org_key_seed_gives_the_org_signets_pok() {
    let p = default_provider();
    let org = Signet::decode(&vector("org-signet.b64")).unwrap();
    let key_bytes = vector("org-key.b64");
    assert_eq!(key_bytes.len(), 5 + 68);
    let keys = keyfile::read_org(p, &key_bytes, None).unwrap();
    assert_eq!(keys.pok(p), org.signing_key().unwrap());
    assert!(!keys.encryption_secret().is_v2());
    // Written back in the v1 form, the file is byte-identical.
    assert_eq!(*keys.to_insecure_plaintext_bytes().unwrap(), key_bytes);
}

#[test]
fn user_key_file_reads_and_does_not_belong_to_the_user_signet() {
    let p = default_provider();
    let user = Signet::decode(&vector("user-signet.b64")).unwrap();
    let bytes = vector("user-key.b64");
    let KeySet::User(keys) = keyfile::read(p, &bytes, None).unwrap() else {
        panic!("not a user key")
    };
    assert_ne!(keys.signing_key(p), user.signing_key().unwrap());
    assert_eq!(*keys.to_insecure_plaintext_bytes().unwrap(), bytes);
}

#[test]
fn every_vector_armors_and_dearmors_byte_for_byte() {
    for name in [
        "org-signet.b64",
        "user-signet.b64",
        "user-signing-request.b64",
        "org-key.b64",
        "user-key.b64",
    ] {
        let bin = vector(name);
        let armored = dime_signet::armor::encode(&bin).unwrap();
        assert_eq!(dime_signet::armor::decode(&armored).unwrap(), bin, "{name}");
        let text = std::fs::read(dime_testkit::vectors_dir().join("dime-v1").join(name)).unwrap();
        assert_eq!(dime_signet::dearmor_any(&text).unwrap(), bin, "{name}");
        assert_eq!(dime_signet::dearmor_any(&bin).unwrap(), bin, "{name}");
    }
}
