//! Key-discovery latency against a local knotd (`spec/discovery.md` §8; issue "Key
//! discovery", benchmark): a cold secure lookup (a new resolver per iteration, so the `_dx`
//! answer and the whole DNSKEY/DS chain from the anchor are fetched and validated again), the
//! same after `KeyResolver::clear_cache`, and the cached lookup, in the same run. Prints one JSON object per line; asserts no
//! timing (the target for the cached p50 is < 2 µs).
//!
//! Run: `cargo bench -p dime-interop-tests --bench discovery` (needs knotd and ldnsutils).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use dime_core::Domain;
use dime_core::crypto::default_provider;
use dime_interop_tests::knot::{Knot, Zone, ZoneKind};
use dime_resolver::{
    Decision, Dns, DnsConfig, KeyResolver, LocalPolicy, MemoryPinStore, MemorySource, TrustAnchor,
};
use dime_signet::record::{Policy, Record};
use dime_signet::{OrgKeys, Profile, create_org_signet};
use std::time::{Duration, Instant};

const COLD_ITERS: usize = 50;
const CACHED_ITERS: usize = 20_000;

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let q = |f: f64| {
        let i = ((samples.len() as f64 - 1.0) * f).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_nanos() as f64 / 1000.0)
    };
    println!(
        "{{\"bench\":\"{name}\",\"iterations\":{},\"p50_us\":{:.3},\"p90_us\":{:.3},\"p99_us\":{:.3},\"min_us\":{:.3},\"max_us\":{:.3}}}",
        samples.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.0),
        q(1.0)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it with no argument: then
    // only a smoke pass.
    let full = std::env::args().any(|a| a == "--bench");
    let (cold_iters, cached_iters) = if full { (COLD_ITERS, CACHED_ITERS) } else { (2, 100) };
    let p = default_provider();
    let keys = OrgKeys::generate(&mut dime_testkit::seeded_rng(80));
    let mut record = Record::new(vec![keys.pok(p)]);
    record.policy = Some(Policy::Mixed);
    let knot = Knot::start(&[Zone::new("secure", ZoneKind::Signed).dx(&record.format())]);
    let domain: Domain = "secure.test".parse().unwrap();
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let resolver = || {
            let dns = Dns::new(
                &DnsConfig::new(vec![knot.addr])
                    .trust_anchor(TrustAnchor::File(knot.anchor_dnskey.clone()))
                    .timeouts(Duration::from_secs(2), 1),
            )
            .unwrap();
            let source = MemorySource::new(p);
            let org = create_org_signet(p, &keys, &domain, &Profile::new()).unwrap();
            source.publish_org(&domain, org);
            KeyResolver::new(dns, source, MemoryPinStore::default(), LocalPolicy::default(), p)
        };

        // Cold: a new resolver per iteration (empty answer, validation and domain caches).
        let mut cold = Vec::with_capacity(cold_iters);
        let mut cold_org = Vec::with_capacity(cold_iters);
        for _ in 0..cold_iters {
            let fresh = resolver();
            let t0 = Instant::now();
            let disc = fresh.discover_domain(&domain).await;
            cold.push(t0.elapsed());
            assert!(matches!(disc.decision, Decision::UseDnssec(_)), "{:?}", disc.decision);
            let fresh = resolver();
            let t0 = Instant::now();
            let _ = fresh.org_key(&domain).await.unwrap();
            cold_org.push(t0.elapsed());
        }
        report("cold_secure_discover_domain", cold);
        report("cold_secure_org_key", cold_org);

        // Flushed: `KeyResolver::clear_cache` before each lookup (hickory keeps its RRSIG
        // verification cache).
        let resolver = resolver();
        let mut flushed = Vec::with_capacity(cold_iters);
        for _ in 0..cold_iters {
            resolver.clear_cache();
            let t0 = Instant::now();
            let _ = resolver.discover_domain(&domain).await;
            flushed.push(t0.elapsed());
        }
        report("flushed_secure_discover_domain", flushed);
        let _ = resolver.discover_domain(&domain).await;
        let mut cached = Vec::with_capacity(cached_iters);
        for _ in 0..cached_iters {
            let t0 = Instant::now();
            let disc = resolver.discover_domain(std::hint::black_box(&domain)).await;
            cached.push(t0.elapsed());
            let _ = std::hint::black_box(disc);
        }
        report("cached_discover_domain", cached);
        let mut cached_org = Vec::with_capacity(cached_iters / 10);
        for _ in 0..cached_iters / 10 {
            let t0 = Instant::now();
            let key = resolver.org_key(std::hint::black_box(&domain)).await.unwrap();
            cached_org.push(t0.elapsed());
            let _ = std::hint::black_box(key);
        }
        report("cached_record_org_key_validated", cached_org);
    });
}
