//! A bounded cache with expiry, negative entries and coalesced concurrent lookups
//! (`spec/discovery.md` §8).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// Default number of entries per cache (`spec/discovery.md` §8).
pub const DEFAULT_CACHE_ENTRIES: usize = 10_000;

type Slot<V> = Arc<OnceCell<(V, Instant)>>;

/// A cache from names to values that expire. Values are whatever a lookup produces, positive
/// or negative; a lookup returns the lifetime of its value (zero: not kept beyond the
/// lookups waiting for it). Concurrent lookups of the same name share one fetch.
#[derive(Debug)]
pub struct Cache<V> {
    slots: Mutex<HashMap<String, Slot<V>>>,
    capacity: usize,
}

impl<V: Clone + Send + Sync> Cache<V> {
    /// A cache holding at most `capacity` names (at least 1).
    pub fn new(capacity: usize) -> Cache<V> {
        Cache { slots: Mutex::new(HashMap::new()), capacity: capacity.max(1) }
    }

    /// The live value for `key` at `now`, without fetching.
    pub fn get(&self, key: &str, now: Instant) -> Option<V> {
        let slots = self.slots.lock().ok()?;
        let (v, expires) = slots.get(key)?.get()?;
        (*expires > now).then(|| v.clone())
    }

    /// Number of names held (live, expired or being fetched).
    pub fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every name.
    pub fn clear(&self) {
        if let Ok(mut s) = self.slots.lock() {
            s.clear();
        }
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &str) {
        if let Ok(mut s) = self.slots.lock() {
            s.remove(key);
        }
    }

    /// The live value for `key`, or the result of `fetch` (shared with every concurrent caller
    /// for the same key), kept for the lifetime `fetch` returns.
    pub async fn get_or_fetch<F, Fut>(&self, key: &str, fetch: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = (V, Duration)>,
    {
        let now = Instant::now();
        let slot = {
            let Ok(mut slots) = self.slots.lock() else {
                return fetch().await.0;
            };
            match slots.get(key) {
                Some(s) if s.get().is_none_or(|(_, exp)| *exp > now) => s.clone(),
                _ => {
                    if slots.len() >= self.capacity && !slots.contains_key(key) {
                        slots.retain(|_, s| s.get().is_none_or(|(_, exp)| *exp > now));
                        if slots.len() >= self.capacity
                            && let Some(victim) = slots.keys().next().cloned()
                        {
                            slots.remove(&victim);
                        }
                    }
                    let s: Slot<V> = Arc::new(OnceCell::new());
                    slots.insert(key.to_owned(), s.clone());
                    s
                }
            }
        };
        let (v, _) = slot
            .get_or_init(|| async {
                let (v, ttl) = fetch().await;
                (v, Instant::now() + ttl)
            })
            .await;
        v.clone()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_lookups_of_one_name_are_coalesced() {
        let cache = Arc::new(Cache::<u32>::new(8));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (cache, calls) = (cache.clone(), calls.clone());
            set.spawn(async move {
                cache
                    .get_or_fetch("a", || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        (7, Duration::from_secs(60))
                    })
                    .await
            });
        }
        while let Some(v) = set.join_next().await {
            assert_eq!(v.unwrap(), 7);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn entries_expire_and_zero_lifetime_is_not_kept() {
        let cache = Cache::<&'static str>::new(8);
        let v = cache.get_or_fetch("k", || async { ("neg", Duration::from_millis(40)) }).await;
        assert_eq!(v, "neg");
        assert_eq!(cache.get("k", Instant::now()), Some("neg"));
        assert_eq!(cache.get("k", Instant::now() + Duration::from_millis(50)), None);
        let v = cache.get_or_fetch("z", || async { ("fail", Duration::ZERO) }).await;
        assert_eq!(v, "fail");
        assert_eq!(cache.get("z", Instant::now()), None);
        let v = cache.get_or_fetch("z", || async { ("ok", Duration::from_secs(5)) }).await;
        assert_eq!(v, "ok");
    }

    #[tokio::test]
    async fn size_is_bounded() {
        let cache = Cache::<usize>::new(4);
        for i in 0..20 {
            let _ = cache
                .get_or_fetch(&i.to_string(), || async move { (i, Duration::from_secs(60)) })
                .await;
            assert!(cache.len() <= 4);
        }
        assert_eq!(cache.get("19", Instant::now()), Some(19));
    }
}
