//! Signet validation (the full ladder) against raw Ed25519 verifications of the same count.
//!
//! One run measures, with criterion:
//! - `validate/org`: an org signet (fields 4, 253, 255 verified under its POK);
//! - `validate/user`: a user signet checked against its org signet (5 under the user key,
//!   6, 253, 255 under the POK);
//! - `raw/org`, `raw/user`: `verify_strict` of exactly the (key, message, signature) triples
//!   the validation verified, recorded by a counting provider.
//!
//! Then it prints one JSON line per case with the ratio validate/raw (target: <= 1.2).
//! Run: `cargo bench -p dime-signet --bench validate`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use criterion::{Criterion, black_box};
use dime_core::crypto::{
    CryptoError, CryptoProvider, Ed25519PublicKey, Ed25519Seed, Ed25519Signature,
    SignatureAlgorithm, default_provider,
};
use dime_signet::{
    OrgKeys, OrgSigner, Profile, Signet, SignetState, UserKeys, Verifier, create_org_signet,
    create_ssr, sign_user_signet,
};
use std::sync::Mutex;
use std::time::Duration;

type Triple = (Ed25519PublicKey, Vec<u8>, Ed25519Signature);

/// Records every verification the default provider is asked for.
#[derive(Debug)]
struct Recording(Mutex<Vec<Triple>>);

impl SignatureAlgorithm for Recording {
    fn public_key(&self, seed: &Ed25519Seed) -> Ed25519PublicKey {
        default_provider().signature.public_key(seed)
    }
    fn sign(&self, seed: &Ed25519Seed, msg: &[u8]) -> Ed25519Signature {
        default_provider().signature.sign(seed, msg)
    }
    fn verify(
        &self,
        key: &Ed25519PublicKey,
        msg: &[u8],
        sig: &Ed25519Signature,
    ) -> Result<(), CryptoError> {
        self.0.lock().unwrap().push((*key, msg.to_vec(), *sig));
        default_provider().signature.verify(key, msg, sig)
    }
    fn check_public_key(&self, key: &Ed25519PublicKey) -> Result<(), CryptoError> {
        default_provider().signature.check_public_key(key)
    }
}

fn recorded(f: impl FnOnce(&CryptoProvider)) -> Vec<Triple> {
    let rec: &'static Recording = Box::leak(Box::new(Recording(Mutex::new(Vec::new()))));
    let provider = CryptoProvider { signature: rec, ..*default_provider() };
    f(&provider);
    rec.0.lock().unwrap().clone()
}

/// The raw cost: ed25519-dalek's `verify_strict` on the same triples, no dime code in between.
fn raw_verify(triples: &[Triple]) {
    for (k, m, s) in triples {
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&k.0).unwrap();
        let sig = ed25519_dalek::Signature::from_bytes(&s.0);
        vk.verify_strict(black_box(m), &sig).unwrap();
    }
}

fn main() {
    let p = default_provider();
    let mut rng = dime_testkit::seeded_rng(1);
    let org_keys = OrgKeys::generate(&mut rng);
    let domain = "example.com".parse().unwrap();
    let profile = Profile::new().with(16, b"Example Org".to_vec());
    let org = create_org_signet(p, &org_keys, &domain, &profile).unwrap();
    let user_keys = UserKeys::generate(&mut rng);
    let ssr = create_ssr(p, &user_keys).unwrap();
    let mailbox = "alice@example.com".parse().unwrap();
    let user =
        sign_user_signet(p, &org_keys, OrgSigner::Pok, &ssr, &mailbox, &Profile::new()).unwrap();
    let org_bytes = org.to_bytes();
    let user_bytes = user.to_bytes();

    // The full ladder from bytes: decode, then validate.
    let validate_org = |p: &CryptoProvider| {
        let s = Signet::decode(black_box(&org_bytes)).unwrap();
        assert_eq!(s.validate(p, &Verifier::new()).state(), SignetState::Id);
    };
    let validate_user = |p: &CryptoProvider| {
        let s = Signet::decode(black_box(&user_bytes)).unwrap();
        assert_eq!(s.validate(p, &Verifier::new().org(&org)).state(), SignetState::Id);
    };
    let org_triples = recorded(validate_org);
    let user_triples = recorded(validate_user);

    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    c.bench_function("validate/org", |b| b.iter(|| validate_org(p)));
    c.bench_function("raw/org", |b| b.iter(|| raw_verify(&org_triples)));
    c.bench_function("validate/user", |b| b.iter(|| validate_user(p)));
    c.bench_function("raw/user", |b| b.iter(|| raw_verify(&user_triples)));
    c.final_summary();

    for (case, n) in [("org", org_triples.len()), ("user", user_triples.len())] {
        let v = mean_ns(&format!("validate_{case}"));
        let r = mean_ns(&format!("raw_{case}"));
        if let (Some(v), Some(r)) = (v, r) {
            println!(
                "{{\"bench\":\"signet_validate\",\"case\":\"{case}\",\"verifications\":{n},\"validate_ns\":{v:.0},\"raw_ns\":{r:.0},\"validations_per_s\":{:.0},\"ratio\":{:.3},\"target\":1.2}}",
                1e9 / v,
                v / r
            );
        }
    }
}

/// Criterion's mean estimate for a benchmark of this run, in nanoseconds.
fn mean_ns(id: &str) -> Option<f64> {
    let dir =
        std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target")
        });
    let path = dir.join("criterion").join(id).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}
