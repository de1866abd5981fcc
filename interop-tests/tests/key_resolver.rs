//! `KeyResolver` end to end against knotd: real DNSSEC for the `_dx` record, signets from the
//! in-process `MemorySource`, and the provenance recorded for each key
//! (`spec/discovery.md` §5 to §7).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use dime_core::crypto::default_provider;
use dime_core::{Domain, Mailbox};
use dime_interop_tests::knot::{Knot, Zone, ZoneKind};
use dime_resolver::{
    ChainStatus, Decision, DeferReason, DiscoveryError, Dns, DnsConfig, DnssecProof, HostSource,
    KeyResolver, LocalPolicy, MemoryPinStore, MemorySource, SignetError, TrustAnchor, UserSigner,
};
use dime_signet::record::{Host, Policy, Record};
use dime_signet::{
    OrgKeys, OrgSigner, Profile, Signet, UserKeys, create_org_signet, create_rotation_ssr,
    create_ssr, sign_user_signet,
};
use std::net::IpAddr;
use std::time::Duration;

fn d(s: &str) -> Domain {
    s.parse().unwrap()
}

fn record(keys: &OrgKeys, dx: &[&str]) -> Record {
    let mut r = Record::new(vec![keys.pok(default_provider())]);
    r.policy = Some(Policy::Mixed);
    r.delivery_hosts = dx.iter().map(|h| h.parse::<Host>().unwrap()).collect();
    r
}

fn org_signet(keys: &OrgKeys, domain: &str) -> Signet {
    create_org_signet(default_provider(), keys, &d(domain), &Profile::new()).unwrap()
}

fn user_signet(
    org: &OrgKeys,
    mailbox: &Mailbox,
    keys: &UserKeys,
    prev: Option<&UserKeys>,
) -> Signet {
    let p = default_provider();
    let ssr = match prev {
        Some(prev) => create_rotation_ssr(p, keys, prev).unwrap(),
        None => create_ssr(p, keys).unwrap(),
    };
    sign_user_signet(p, org, OrgSigner::Pok, &ssr, mailbox, &Profile::new()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_authenticated_through_real_dnssec_with_their_provenance() {
    let p = default_provider();
    let mut rng = dime_testkit::seeded_rng(40);
    let (secure_org, plain_org, forged_org, other_org, bogus_org) = (
        OrgKeys::generate(&mut rng),
        OrgKeys::generate(&mut rng),
        OrgKeys::generate(&mut rng),
        OrgKeys::generate(&mut rng),
        OrgKeys::generate(&mut rng),
    );
    let secure_record = record(&secure_org, &["mx.secure.test:2525"]);
    let knot = Knot::start(&[
        Zone::new("secure", ZoneKind::Signed)
            .dx(&secure_record.format())
            .record("mx 300 IN A 127.0.0.2")
            .record("mx 300 IN AAAA ::2"),
        Zone::new("mxonly", ZoneKind::Signed)
            .dx(&record(&other_org, &[]).format())
            .record("@ 300 IN MX 10 mail")
            .record("mail 300 IN A 127.0.0.3"),
        Zone::new("plain", ZoneKind::Unsigned)
            .dx(&record(&plain_org, &[]).format())
            .record("@ 300 IN A 127.0.0.4"),
        // The record names other_org's POK; the org signet served is forged_org's.
        Zone::new("forged", ZoneKind::Signed).dx(&record(&other_org, &[]).format()),
        Zone::new("tampered", ZoneKind::TamperedRrsig).dx(&record(&bogus_org, &[]).format()),
    ]);
    let dns = Dns::new(
        &DnsConfig::new(vec![knot.addr])
            .trust_anchor(TrustAnchor::File(knot.anchor_dnskey.clone()))
            .timeouts(Duration::from_secs(2), 1),
    )
    .unwrap();
    let source = MemorySource::new(p);
    for (keys, domain) in [
        (&secure_org, "secure.test"),
        (&plain_org, "plain.test"),
        (&forged_org, "forged.test"),
        (&bogus_org, "tampered.test"),
    ] {
        source.publish_org(&d(domain), org_signet(keys, domain));
    }
    let alice: Mailbox = "alice@secure.test".parse().unwrap();
    let mut urng = dime_testkit::seeded_rng(41);
    let (k1, k2, k3) = (
        UserKeys::generate(&mut urng),
        UserKeys::generate(&mut urng),
        UserKeys::generate(&mut urng),
    );
    let (s1, s2, s3) = (
        user_signet(&secure_org, &alice, &k1, None),
        user_signet(&secure_org, &alice, &k2, Some(&k1)),
        user_signet(&secure_org, &alice, &k3, Some(&k2)),
    );
    source.publish_user(&alice, s1.clone());
    let resolver =
        KeyResolver::new(dns, source, MemoryPinStore::default(), LocalPolicy::default(), p);

    // 1. Secure zone: the org signet's POK is the record's; alice's first signet validates.
    let org = resolver.org_key(&d("secure.test")).await.unwrap();
    eprintln!("secure org: {}", org.provenance);
    assert_eq!(org.provenance.record_proof, DnssecProof::Secure);
    assert!(!org.provenance.ca_tls_required);
    assert_eq!(org.provenance.record_from.as_str(), "secure.test");
    assert_eq!(org.provenance.pok_index, 0);
    assert_eq!(org.org.pok, secure_org.pok(p));
    let first = resolver.user_key(&alice).await.unwrap();
    eprintln!("alice first: {}", first.provenance);
    assert_eq!(
        first.provenance.user,
        Some((first.user.fingerprint, UserSigner::Pok, ChainStatus::First))
    );
    assert!(first.provenance.to_string().contains("dnssec=secure channel=dnssec pok=0"));
    assert!(first.provenance.to_string().ends_with("signed-by=pok chain=first-seen"));
    let again = resolver.user_key(&alice).await.unwrap();
    assert_eq!(again.user.chain, ChainStatus::Same);

    // 2. Two rotations published at once: s3 is followed back to s1 through the history.
    resolver_source_publish(&resolver, &alice, [&s2, &s3]);
    let rotated = resolver.user_key(&alice).await.unwrap();
    eprintln!("alice rotated: {}", rotated.provenance);
    assert_eq!(rotated.user.chain, ChainStatus::Rotated { steps: 2 });
    assert!(rotated.provenance.to_string().ends_with("chain=rotated steps=2"));
    assert_ne!(rotated.user.fingerprint, first.user.fingerprint);

    // 3. Serving s1 again is a rollback: refused, not temporary.
    resolver.source().set_user_history(&alice, vec![s1.clone()]);
    let err = resolver.user_key(&alice).await.unwrap_err();
    eprintln!("alice rollback: {err}");
    assert_eq!(err, DiscoveryError::Signet(SignetError::Rollback));
    assert!(!err.is_temporary());

    // 4. An org signet whose POK is not in the (secure) record is refused.
    let err = resolver.org_key(&d("forged.test")).await.unwrap_err();
    eprintln!("forged org: {err}");
    assert!(matches!(err, DiscoveryError::Signet(SignetError::Invalid { .. })), "{err:?}");

    // 5. The unsigned zone, pol=mixed: used with the CA-TLS stand-in, and recorded so.
    let plain = resolver.org_key(&d("plain.test")).await.unwrap();
    eprintln!("plain org: {}", plain.provenance);
    assert_eq!(plain.provenance.record_proof, DnssecProof::Insecure);
    assert!(plain.provenance.ca_tls_required);
    assert!(plain.provenance.to_string().contains("dnssec=insecure channel=ca-tls"));

    // 6. A bogus zone defers (temporary), whatever signet is on offer.
    let err = resolver.org_key(&d("tampered.test")).await.unwrap_err();
    eprintln!("tampered org: {err}");
    assert!(
        matches!(&err, DiscoveryError::NotUsable(Decision::Defer(DeferReason::Bogus { .. }))),
        "{err:?}"
    );
    assert!(err.is_temporary());

    // 7. Delivery hosts: dx= (port kept), MX, the domain itself; addresses with their proof.
    let hosts = resolver.delivery_hosts(&d("secure.test"), &org.record).await;
    eprintln!("secure hosts: {hosts:?}");
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].host.to_string(), "mx.secure.test:2525");
    assert_eq!(hosts[0].source, HostSource::Dx);
    assert_eq!(
        hosts[0].trusted_addresses(),
        Some(&["127.0.0.2".parse::<IpAddr>().unwrap(), "::2".parse().unwrap()][..])
    );
    assert_eq!(hosts[0].proof(), DnssecProof::Secure);
    let hosts = resolver.delivery_hosts(&d("mxonly.test"), &record(&other_org, &[])).await;
    eprintln!("mxonly hosts: {hosts:?}");
    assert_eq!(hosts.len(), 1);
    assert_eq!(
        (hosts[0].host.to_string().as_str(), hosts[0].source),
        ("mail.mxonly.test", HostSource::Mx)
    );
    assert_eq!(hosts[0].trusted_addresses(), Some(&["127.0.0.3".parse::<IpAddr>().unwrap()][..]));
    assert_eq!(hosts[0].proof(), DnssecProof::Secure);
    let hosts = resolver.delivery_hosts(&d("plain.test"), &plain.record).await;
    eprintln!("plain hosts: {hosts:?}");
    assert_eq!(hosts.len(), 1);
    assert_eq!(
        (hosts[0].host.to_string().as_str(), hosts[0].source),
        ("plain.test", HostSource::Domain)
    );
    assert_eq!(hosts[0].trusted_addresses(), Some(&["127.0.0.4".parse::<IpAddr>().unwrap()][..]));
    assert_eq!(hosts[0].proof(), DnssecProof::Insecure);
}

fn resolver_source_publish<'a>(
    resolver: &KeyResolver<MemorySource, MemoryPinStore>,
    mailbox: &Mailbox,
    signets: impl IntoIterator<Item = &'a Signet>,
) {
    for s in signets {
        resolver.source().publish_user(mailbox, s.clone());
    }
}
