//! Cached lookup latency (`spec/discovery.md` §8): a warm `Cache::get_or_fetch` hit, as
//! `KeyResolver::discover_domain` does it, and a bare `Cache::get`. Target: p50 < 2 µs.
//! The cold secure lookup against a local knotd is measured by
//! `interop-tests/benches/discovery.rs`, together with the cached `discover_domain` p50.
// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use dime_resolver::cache::Cache;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cached(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let cache: Cache<Arc<String>> = Cache::new(10_000);
    for i in 0..5_000 {
        let key = format!("d{i}.example.com");
        let value = Arc::new(key.clone());
        rt.block_on(cache.get_or_fetch(&key, || async move { (value, Duration::from_secs(3600)) }));
    }
    c.bench_function("cache_hit_get_or_fetch", |b| {
        b.iter(|| {
            rt.block_on(cache.get_or_fetch(black_box("d1234.example.com"), || async {
                (Arc::new(String::new()), Duration::ZERO)
            }))
        })
    });
    c.bench_function("cache_hit_get", |b| {
        b.iter(|| cache.get(black_box("d1234.example.com"), Instant::now()))
    });
}

criterion_group!(benches, cached);
criterion_main!(benches);
