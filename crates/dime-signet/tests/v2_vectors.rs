//! Deterministic v2 vectors (`spec/vectors/signet/`, `spec/signet.md` §11): regenerated from
//! `seeded_rng` with the default provider and compared byte for byte with the committed files.
//! `DIME_REGEN_VECTORS=1 cargo test -p dime-signet --test v2_vectors` rewrites them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dime_core::crypto::{Argon2Params, default_provider};
use dime_signet::{
    FingerprintKind, OrgKeys, OrgSigner, Profile, Signet, SignetState, SokPermissions, UserKeys,
    Verifier, create_org_signet, create_rotation_ssr, create_ssr, keyfile, sign_user_signet,
};
use serde_json::{Value, json};
use std::path::PathBuf;

/// The passphrase of the encrypted key file vectors.
const PASSPHRASE: &str = "dime v2 test vector passphrase";
/// Small (the minimum) Argon2id parameters so that the vectors regenerate quickly.
const PARAMS: Argon2Params = Argon2Params { m_kib: 8 * 1024, t: 1, p: 1 };

struct Vectors {
    files: Vec<(String, Vec<u8>)>,
    index: Value,
}

fn signet_entry(
    name: &str,
    s: &Signet,
    state: SignetState,
    org: Option<&str>,
    previous: Option<&str>,
) -> Value {
    let p = default_provider();
    let fps: serde_json::Map<String, Value> = [
        ("ssr", FingerprintKind::Ssr),
        ("crypto", FingerprintKind::Crypto),
        ("full", FingerprintKind::Full),
        ("id", FingerprintKind::Id),
    ]
    .into_iter()
    .filter_map(|(n, k)| s.fingerprint(p, k).map(|f| (n.to_owned(), json!(f.to_string()))))
    .collect();
    json!({
        "file": format!("{name}.b64"),
        "magic": s.kind().magic(),
        "payload_len": s.payload().len(),
        "field_ids": s.fields().map(|f| f.id).collect::<Vec<_>>(),
        "signing_key": s.signing_key().unwrap().to_string(),
        "encryption_key_hex": hex::encode(s.encryption_key().unwrap().to_bytes()),
        "state": format!("{state:?}"),
        "verify_with_org": org.map(|o| format!("{o}.b64")),
        "verify_with_previous": previous.map(|o| format!("{o}.b64")),
        "fingerprints": fps,
    })
}

fn generate() -> Vectors {
    let p = default_provider();
    let mut rng = dime_testkit::seeded_rng(0x5167_0002);
    let mut files = Vec::new();
    let mut entries = Vec::new();

    // An org with its POK only.
    let org_keys = OrgKeys::generate(&mut rng);
    let domain = "example.org".parse().unwrap();
    let profile = Profile::new()
        .with(16, "Example Org")
        .with(19, "Nowhere")
        .with(160, "https://example.org/");
    let org = create_org_signet(p, &org_keys, &domain, &profile).unwrap();
    let state = org.validate(p, &Verifier::new());
    assert_eq!(state.state(), SignetState::Id);

    // An org with an SOK allowed to sign user signets.
    let mut sok_org_keys = OrgKeys::generate(&mut rng);
    sok_org_keys.add_sok(&mut rng, SokPermissions::SIGNET | SokPermissions::MESSAGE);
    let sok_domain = "sok.example.org".parse().unwrap();
    let sok_org = create_org_signet(p, &sok_org_keys, &sok_domain, &Profile::new()).unwrap();
    assert_eq!(sok_org.validate(p, &Verifier::new()).state(), SignetState::Id);

    // A user: SSR, then the user signet signed by the org's POK.
    let user_keys = UserKeys::generate(&mut rng);
    let ssr = create_ssr(p, &user_keys).unwrap();
    assert_eq!(ssr.validate(p, &Verifier::new()).state(), SignetState::Ssr);
    let mailbox = "alice@example.org".parse().unwrap();
    let user_profile = Profile::new().with(16, "Alice");
    let user =
        sign_user_signet(p, &org_keys, OrgSigner::Pok, &ssr, &mailbox, &user_profile).unwrap();
    assert_eq!(user.validate(p, &Verifier::new().org(&org)).state(), SignetState::Id);

    // A user of the SOK org, signed by the SOK.
    let bob_keys = UserKeys::generate(&mut rng);
    let bob_ssr = create_ssr(p, &bob_keys).unwrap();
    let bob_mailbox = "bob@sok.example.org".parse().unwrap();
    let bob = sign_user_signet(
        p,
        &sok_org_keys,
        OrgSigner::Sok(0),
        &bob_ssr,
        &bob_mailbox,
        &Profile::new(),
    )
    .unwrap();
    let v = bob.validate(p, &Verifier::new().org(&sok_org));
    assert_eq!(v.state(), SignetState::Id);
    assert_eq!(v.signed_by(), Some(&sok_org.soks().unwrap()[0].key));

    // Alice rotates her keys: a custody signature by her previous key.
    let rotated_keys = UserKeys::generate(&mut rng);
    let rotated_ssr = create_rotation_ssr(p, &rotated_keys, &user_keys).unwrap();
    let rotated =
        sign_user_signet(p, &org_keys, OrgSigner::Pok, &rotated_ssr, &mailbox, &user_profile)
            .unwrap();
    let v = rotated.validate(p, &Verifier::new().org(&org).previous(&user));
    assert_eq!(v.state(), SignetState::Id);
    assert!(v.custody_checked());

    entries.push(signet_entry("org-signet", &org, SignetState::Id, None, None));
    entries.push(signet_entry("org-signet-sok", &sok_org, SignetState::Id, None, None));
    entries.push(signet_entry("user-ssr", &ssr, SignetState::Ssr, None, None));
    entries.push(signet_entry("user-signet", &user, SignetState::Id, Some("org-signet"), None));
    entries.push(signet_entry(
        "user-signet-sok",
        &bob,
        SignetState::Id,
        Some("org-signet-sok"),
        None,
    ));
    entries.push(signet_entry(
        "user-ssr-rotated",
        &rotated_ssr,
        SignetState::Ssr,
        None,
        Some("user-signet"),
    ));
    entries.push(signet_entry(
        "user-signet-rotated",
        &rotated,
        SignetState::Id,
        Some("org-signet"),
        Some("user-signet"),
    ));
    for (name, s) in [
        ("org-signet", &org),
        ("org-signet-sok", &sok_org),
        ("user-ssr", &ssr),
        ("user-signet", &user),
        ("user-signet-sok", &bob),
        ("user-ssr-rotated", &rotated_ssr),
        ("user-signet-rotated", &rotated),
    ] {
        files.push((format!("{name}.b64"), s.to_bytes()));
    }

    // Key files: encrypted (the default), and one insecure plaintext file.
    let pass = PASSPHRASE.as_bytes();
    let org_key_file = org_keys.to_encrypted_bytes(p, &mut rng, pass, &PARAMS).unwrap();
    let sok_key_file = sok_org_keys.to_encrypted_bytes(p, &mut rng, pass, &PARAMS).unwrap();
    let user_key_file = user_keys.to_encrypted_bytes(p, &mut rng, pass, &PARAMS).unwrap();
    let user_plain = user_keys.to_insecure_plaintext_bytes().unwrap().to_vec();
    let mut keys = Vec::new();
    for (name, bytes, signet) in [
        ("org-key-encrypted", &org_key_file, "org-signet"),
        ("org-key-sok-encrypted", &sok_key_file, "org-signet-sok"),
        ("user-key-encrypted", &user_key_file, "user-signet"),
        ("user-key-plaintext", &user_plain, "user-signet"),
    ] {
        files.push((format!("{name}.b64"), bytes.clone()));
        keys.push(json!({
            "file": format!("{name}.b64"),
            "magic": u16::from_be_bytes([bytes[0], bytes[1]]),
            "passphrase": if name.ends_with("plaintext") { Value::Null } else { json!(PASSPHRASE) },
            "argon2id": if name.ends_with("plaintext") { Value::Null } else {
                json!({"m_kib": PARAMS.m_kib, "t": PARAMS.t, "p": PARAMS.p})
            },
            "signet": format!("{signet}.b64"),
        }));
    }
    let index = json!({
        "about": "dime v2 signet vectors; see spec/signet.md §11 and README.md beside this file",
        "signets": entries,
        "key_files": keys,
    });
    Vectors { files, index }
}

fn dir() -> PathBuf {
    dime_testkit::vectors_dir().join("signet")
}

#[test]
fn v2_vectors_regenerate_byte_identical() {
    let v = generate();
    let index = serde_json::to_string_pretty(&v.index).unwrap() + "\n";
    if std::env::var_os("DIME_REGEN_VECTORS").is_some_and(|x| x == "1") {
        std::fs::create_dir_all(dir()).unwrap();
        for (name, bytes) in &v.files {
            std::fs::write(dir().join(name), STANDARD.encode(bytes) + "\n").unwrap();
        }
        std::fs::write(dir().join("vectors.json"), &index).unwrap();
    }
    for (name, bytes) in &v.files {
        let committed = std::fs::read_to_string(dir().join(name)).unwrap();
        assert_eq!(
            STANDARD.decode(committed.trim()).unwrap(),
            *bytes,
            "{name} differs: regenerate?"
        );
    }
    assert_eq!(std::fs::read_to_string(dir().join("vectors.json")).unwrap(), index);
}

#[test]
fn committed_v2_vectors_validate_as_listed() {
    let p = default_provider();
    let text = std::fs::read_to_string(dir().join("vectors.json")).unwrap();
    let index: Value = serde_json::from_str(&text).unwrap();
    let load = |file: &str| {
        let t = std::fs::read(dir().join(file)).unwrap();
        Signet::decode_any(&t).unwrap()
    };
    for e in index["signets"].as_array().unwrap() {
        let s = load(e["file"].as_str().unwrap());
        let org = e["verify_with_org"].as_str().map(load);
        let prev = e["verify_with_previous"].as_str().map(load);
        let mut verifier = Verifier::new();
        if let Some(o) = &org {
            verifier = verifier.org(o);
        }
        if let Some(pr) = &prev {
            verifier = verifier.previous(pr);
        }
        let v = s.validate(p, &verifier);
        assert_eq!(format!("{:?}", v.state()), e["state"].as_str().unwrap(), "{e}");
        assert!(s.is_v2());
        for (kind, name) in [
            (FingerprintKind::Ssr, "ssr"),
            (FingerprintKind::Crypto, "crypto"),
            (FingerprintKind::Full, "full"),
            (FingerprintKind::Id, "id"),
        ] {
            let got = s.fingerprint(p, kind).map(|f| f.to_string());
            assert_eq!(got.as_deref(), e["fingerprints"][name].as_str(), "{e} {name}");
        }
    }
    for k in index["key_files"].as_array().unwrap() {
        let bytes = std::fs::read(dir().join(k["file"].as_str().unwrap())).unwrap();
        let signet = load(k["signet"].as_str().unwrap());
        let pass = k["passphrase"].as_str().map(str::as_bytes);
        let key = match keyfile::read(p, &bytes, pass).unwrap() {
            keyfile::KeySet::Org(o) => o.pok(p),
            keyfile::KeySet::User(u) => u.signing_key(p),
        };
        assert_eq!(key, signet.signing_key().unwrap(), "{k}");
    }
}

#[test]
fn rotation_without_or_with_a_wrong_custody_signature_is_broken() {
    let p = default_provider();
    let dir = dir();
    let load = |f: &str| Signet::decode_any(&std::fs::read(dir.join(f)).unwrap()).unwrap();
    let org = load("org-signet.b64");
    let old = load("user-signet.b64");
    let rotated = load("user-signet-rotated.b64");
    let bob = load("user-signet-sok.b64");
    // The custody signature is checked under the PREVIOUS key, not the new one.
    let v = rotated.validate(p, &Verifier::new().org(&org).previous(&bob));
    assert_eq!(v.state(), SignetState::BrokenChainOfCustody);
    // A signet without field 4 presented as a rotation is broken.
    let v = old.validate(p, &Verifier::new().org(&org).previous(&rotated));
    assert_eq!(v.state(), SignetState::BrokenChainOfCustody);
    // A user signet checked against the wrong org is invalid.
    let other_org = load("org-signet-sok.b64");
    let v = rotated.validate(p, &Verifier::new().org(&other_org));
    assert_eq!(v.state(), SignetState::Invalid);
}
