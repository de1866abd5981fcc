//! `dime lookup` against a real DNSSEC world (knotd on loopback, the interop-tests fixture):
//! the record, its proof, the signets, their fingerprints and how each was authenticated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dime_core::crypto::default_provider;
use dime_core::{Domain, Mailbox};
use dime_interop_tests::knot::{Knot, Zone, ZoneKind};
use dime_signet::record::{Policy, Record};
use dime_signet::{
    FingerprintKind, OrgKeys, OrgSigner, Profile, UserKeys, create_org_signet, create_ssr,
    sign_user_signet,
};
use std::process::{Command, Output};

fn dime(knot: &Knot, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dime"))
        .arg("lookup")
        .args(args)
        .arg("--resolver")
        .arg(knot.addr.to_string())
        .arg("--trust-anchor")
        .arg(&knot.anchor_dnskey)
        .output()
        .expect("run dime")
}

fn ok(knot: &Knot, args: &[&str]) -> String {
    let o = dime(knot, args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "dime lookup {args:?} failed: {err}");
    String::from_utf8(o.stdout).unwrap()
}

fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in:\n{out}"))
}

#[test]
fn lookup_prints_record_proof_signets_and_how_each_was_authenticated() {
    let p = default_provider();
    let mut rng = dime_testkit::seeded_rng(60);
    let (org_keys, plain_keys) = (OrgKeys::generate(&mut rng), OrgKeys::generate(&mut rng));
    let mut record = Record::new(vec![org_keys.pok(p)]);
    record.policy = Some(Policy::Mixed);
    record.delivery_hosts = vec!["mx.secure.test:2525".parse().unwrap()];
    let mut plain_record = Record::new(vec![plain_keys.pok(p)]);
    plain_record.policy = Some(Policy::Mixed);
    let knot = Knot::start(&[
        Zone::new("secure", ZoneKind::Signed).dx(&record.format()).record("mx 300 IN A 127.0.0.2"),
        Zone::new("plain", ZoneKind::Unsigned).dx(&plain_record.format()),
        Zone::new("tampered", ZoneKind::TamperedRrsig).dx(&record.format()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let domain: Domain = "secure.test".parse().unwrap();
    let alice: Mailbox = "alice@secure.test".parse().unwrap();
    let org = create_org_signet(p, &org_keys, &domain, &Profile::new()).unwrap();
    let user_keys = UserKeys::generate(&mut rng);
    let ssr = create_ssr(p, &user_keys).unwrap();
    let user =
        sign_user_signet(p, &org_keys, OrgSigner::Pok, &ssr, &alice, &Profile::new()).unwrap();
    let (org_file, user_file) = (dir.path().join("org.signet"), dir.path().join("user.signet"));
    std::fs::write(&org_file, org.to_armor()).unwrap();
    std::fs::write(&user_file, user.to_armor()).unwrap();
    let org_fp = org
        .fingerprint(p, FingerprintKind::Id)
        .or_else(|| org.fingerprint(p, FingerprintKind::Full))
        .unwrap();
    let user_fp = user.fingerprint(p, FingerprintKind::Crypto).unwrap();

    // An address on the secure zone, with both signets.
    let out = ok(
        &knot,
        &[
            "alice@secure.test",
            "--org-signet",
            org_file.to_str().unwrap(),
            "--user-signet",
            user_file.to_str().unwrap(),
        ],
    );
    eprintln!("{out}");
    assert_eq!(
        line(&out, "query: _dx.secure.test"),
        "query: _dx.secure.test secure (record (ttl 300))"
    );
    assert_eq!(line(&out, "proof:"), "proof: secure");
    assert_eq!(line(&out, "record:"), format!("record: {record}"));
    assert!(line(&out, "record authenticated:").contains("dnssec secure"));
    assert_eq!(
        line(&out, "delivery host:"),
        "delivery host: mx.secure.test:2525 (from dx) [127.0.0.2] (secure)"
    );
    let org_line = line(&out, "org signet:");
    assert!(org_line.contains(&format!("fingerprint={org_fp}")), "{org_line}");
    assert!(org_line.ends_with("authenticated: pok=0 of _dx.secure.test (secure)"), "{org_line}");
    let user_line = line(&out, "user signet:");
    assert!(user_line.contains(&format!("fingerprint={user_fp}")), "{user_line}");
    assert!(user_line.ends_with("authenticated: signed-by=pok chain=first-seen"), "{user_line}");
    assert_eq!(
        line(&out, "provenance:"),
        format!(
            "provenance: domain=secure.test record=_dx.secure.test dnssec=secure channel=dnssec \
             pok=0 org={org_fp} user={user_fp} signed-by=pok chain=first-seen"
        )
    );

    // The unsigned zone: the CA-TLS stand-in, said so.
    let out = ok(&knot, &["plain.test"]);
    eprintln!("{out}");
    assert_eq!(line(&out, "proof:"), "proof: insecure");
    assert!(line(&out, "decision:").contains("use with ca-tls"));
    assert!(line(&out, "record authenticated:").contains("ca-validated tls"));

    // A signet whose POK is not the record's: refused with a clear error.
    let o = dime(&knot, &["plain.test", "--org-signet", org_file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.starts_with("error:") && err.contains("not among the trusted keys"), "{err}");

    // A bogus zone: non-zero, a one-line reason, no panic text.
    let o = dime(&knot, &["tampered.test"]);
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("{err}");
    assert!(!o.status.success());
    assert!(err.starts_with("error: tampered.test: temporary failure"), "{err}");
    assert!(err.contains("bogus dnssec answer for _dx.tampered.test"), "{err}");
    assert!(!err.contains("panicked") && !err.contains("internal error"), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("proof: bogus"));
}
