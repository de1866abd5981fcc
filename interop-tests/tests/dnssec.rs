//! Key discovery against a real authoritative server (knotd) with zones signed at test time,
//! cross-checked with a second validator (delv). `spec/discovery.md` §3 to §5; test-plan.md,
//! "Key discovery".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use dime_core::Domain;
use dime_interop_tests::knot::{DelvVerdict, Knot, Silent, Zone, ZoneKind};
use dime_resolver::{
    Decision, DeferReason, Dns, DnsConfig, DnssecProof, LocalPolicy, RecordOutcome,
    TemporaryFailure, TrustAnchor, decide, lookup_record,
};
use std::time::{Duration, Instant};

const POK: &str = "0EqyMnQrtKs6E2i9RhXk5tAiSrcaAWuvhSCjMsl3hzc";

fn dx(pol: &str) -> String {
    format!("ver=1 pok={POK} pol={pol}")
}

fn world() -> Knot {
    Knot::start(&[
        Zone::new("secure", ZoneKind::Signed).dx(&dx("mixed")).record("www A 127.0.0.1"),
        Zone::new("unsigned", ZoneKind::Unsigned).dx(&dx("mixed")),
        Zone::new("unsignedstrict", ZoneKind::Unsigned).dx(&dx("strict")),
        Zone::new("tampered", ZoneKind::TamperedRrsig).dx(&dx("mixed")),
        Zone::new("expired", ZoneKind::ExpiredRrsig).dx(&dx("mixed")),
        Zone::new("wrongds", ZoneKind::WrongDs).dx(&dx("mixed")),
        Zone::new("nodnskey", ZoneKind::MissingDnskey).dx(&dx("mixed")),
        Zone::new("relaxed", ZoneKind::Signed).dx(&format!("{} sub=relaxed", dx("strict"))),
        Zone::new("broken", ZoneKind::Signed).dx("ver=1 pol=mixed"),
    ])
}

fn dns(knot: &Knot) -> Dns {
    Dns::new(
        &DnsConfig::new(vec![knot.addr])
            .trust_anchor(TrustAnchor::File(knot.anchor_dnskey.clone()))
            .timeouts(Duration::from_secs(2), 1),
    )
    .unwrap()
}

fn d(s: &str) -> Domain {
    s.parse().unwrap()
}

/// Expected result of one case.
struct Case {
    domain: &'static str,
    proof: DnssecProof,
    decision: fn(&Decision) -> bool,
    delv: Option<DelvVerdict>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dns_case_has_the_expected_proof_decision_and_delv_verdict() {
    let knot = world();
    let dns = dns(&knot);
    let local = LocalPolicy::default();
    let cases = [
        Case {
            domain: "secure.test",
            proof: DnssecProof::Secure,
            decision: |d| matches!(d, Decision::UseDnssec(r) if r.published_by.as_str() == "secure.test"),
            delv: Some(DelvVerdict::Secure),
        },
        Case {
            domain: "unsigned.test",
            proof: DnssecProof::Insecure,
            decision: |d| matches!(d, Decision::UseWithCaTls(_)),
            delv: Some(DelvVerdict::Insecure),
        },
        Case {
            domain: "unsignedstrict.test",
            proof: DnssecProof::Insecure,
            decision: |d| matches!(d, Decision::Defer(DeferReason::InsecureStrict)),
            delv: Some(DelvVerdict::Insecure),
        },
        Case {
            domain: "tampered.test",
            proof: DnssecProof::Bogus,
            decision: |d| matches!(d, Decision::Defer(DeferReason::Bogus { .. })),
            delv: Some(DelvVerdict::Bogus),
        },
        Case {
            domain: "expired.test",
            proof: DnssecProof::Bogus,
            decision: |d| matches!(d, Decision::Defer(DeferReason::Bogus { .. })),
            delv: Some(DelvVerdict::Bogus),
        },
        Case {
            domain: "wrongds.test",
            proof: DnssecProof::Bogus,
            decision: |d| matches!(d, Decision::Defer(DeferReason::Bogus { .. })),
            delv: Some(DelvVerdict::Bogus),
        },
        Case {
            domain: "nodnskey.test",
            proof: DnssecProof::Bogus,
            decision: |d| matches!(d, Decision::Defer(DeferReason::Bogus { .. })),
            delv: Some(DelvVerdict::Bogus),
        },
        Case {
            // NXDOMAIN in the signed `test.`: a secure denial; not a DIME domain.
            domain: "absent.test",
            proof: DnssecProof::Secure,
            decision: |d| matches!(d, Decision::NotDime { proof: DnssecProof::Secure }),
            delv: Some(DelvVerdict::SecureAbsent),
        },
        Case {
            // A name under the secure zone with no `_dx` of its own, whose parent's record is
            // strict (the default): NXDOMAIN for its own name, no record applies.
            domain: "www.secure.test",
            proof: DnssecProof::Secure,
            decision: |d| matches!(d, Decision::NotDime { proof: DnssecProof::Secure }),
            delv: Some(DelvVerdict::SecureAbsent),
        },
        Case {
            // NXDOMAIN in the unsigned zone: an insecure denial; not a DIME domain.
            domain: "www.unsigned.test",
            proof: DnssecProof::Insecure,
            decision: |d| matches!(d, Decision::NotDime { proof: DnssecProof::Insecure }),
            delv: Some(DelvVerdict::InsecureAbsent),
        },
        Case {
            // Inherited from a relaxed parent (`spec/dns-record.md` §7.2 rule 3).
            domain: "mail.relaxed.test",
            proof: DnssecProof::Secure,
            decision: |d| matches!(d, Decision::UseDnssec(r) if r.published_by.as_str() == "relaxed.test"),
            delv: None,
        },
        Case {
            // A secure but unparsable record (no pok): unusable, deferred like bogus.
            domain: "broken.test",
            proof: DnssecProof::Secure,
            decision: |d| matches!(d, Decision::Defer(DeferReason::BrokenRecord { .. })),
            delv: Some(DelvVerdict::Secure),
        },
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let t0 = Instant::now();
        let lookup = lookup_record(&dns, &d(case.domain)).await;
        let decision = decide(&lookup, &local);
        let delv = case.delv.map(|_| knot.delv(&format!("_dx.{}", case.domain), "TXT"));
        eprintln!(
            "case {:<22} proof={:<13} decision={} ({} ms){}",
            case.domain,
            lookup.proof.as_str(),
            decision,
            t0.elapsed().as_millis(),
            delv.as_ref().map(|d| format!(" delv={:?}", d.verdict)).unwrap_or_default()
        );
        if lookup.proof != case.proof {
            failures.push(format!(
                "{}: proof {:?}, expected {:?}",
                case.domain, lookup.proof, case.proof
            ));
        }
        if !(case.decision)(&decision) {
            failures.push(format!("{}: unexpected decision {decision:?}", case.domain));
        }
        if let (Some(expected), Some(got)) = (case.delv, &delv)
            && got.verdict != expected
        {
            failures.push(format!(
                "{}: delv says {:?}, expected {expected:?}:\n{}",
                case.domain, got.verdict, got.text
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_strict_policy_refuses_the_ca_tls_stand_in() {
    let knot = world();
    let lookup = lookup_record(&dns(&knot), &d("unsigned.test")).await;
    assert_eq!(lookup.proof, DnssecProof::Insecure);
    let decision = decide(&lookup, &LocalPolicy::strict());
    assert!(matches!(decision, Decision::Unauthenticated { .. }), "{decision:?}");
    // A secure record is used whatever the local policy.
    let secure = lookup_record(&dns(&knot), &d("secure.test")).await;
    assert!(matches!(decide(&secure, &LocalPolicy::strict()), Decision::UseDnssec(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_is_a_temporary_failure_not_bogus() {
    let silent = Silent::start();
    let knot_anchor = ". IN DNSKEY 257 3 13 zPtE5KC6syOE2mIaNMVF3I0QTAR76hICWZnmLSDxxNM2lvAkh7wIy9EyhB5+8VgOfKp9LQctO9/ubItHC/mBTQ==\n";
    let dns = Dns::new(
        &DnsConfig::new(vec![silent.addr])
            .trust_anchor(TrustAnchor::Text(knot_anchor.into()))
            .timeouts(Duration::from_millis(300), 1),
    )
    .unwrap();
    let t0 = Instant::now();
    let lookup = lookup_record(&dns, &d("secure.test")).await;
    eprintln!(
        "silent server: proof={} outcome={:?} in {} ms",
        lookup.proof,
        lookup.outcome,
        t0.elapsed().as_millis()
    );
    assert!(
        matches!(lookup.outcome, RecordOutcome::Failed { reason: TemporaryFailure::Timeout, .. }),
        "{:?}",
        lookup.outcome
    );
    let decision = decide(&lookup, &LocalPolicy::default());
    assert!(decision.is_temporary_failure());
    assert!(matches!(decision, Decision::Defer(DeferReason::Lookup { .. })));
}
