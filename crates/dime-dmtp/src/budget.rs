//! The memory a server gives to DATA bodies at once (`spec/dmtp.md` §6.4): one budget shared
//! by every stream of a listener, reserved at DATA for the declared size and given back when
//! the body's transaction ends; one source (an IPv4 address, an IPv6 /64) may hold at most a
//! share of it, so that a few slow peers cannot take it all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Octets of DATA bodies a server holds at once, by default (`spec/dmtp.md` §8): four bodies
/// of `MAX_MESSAGE_SIZE`, or thousands of ordinary ones.
pub const BODY_BUDGET: u64 = 256 * 1024 * 1024;

/// The part of the budget one source may hold: a quarter, one body of `MAX_MESSAGE_SIZE` at
/// the default budget (`spec/dmtp.md` §6.4).
pub const SOURCE_SHARE_DIVISOR: u64 = 4;

/// The octets of bodies in flight, shared by the streams whose [`crate::ServerConfig`] are
/// clones of one another. Cloning shares it; [`BodyBudget::new`] makes another.
#[derive(Debug, Clone)]
pub struct BodyBudget(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    capacity: u64,
    per_source: u64,
    used: AtomicU64,
    /// Octets held per source; a source is removed when it holds none.
    by_source: Mutex<HashMap<u128, u64>>,
}

/// Octets reserved from a [`BodyBudget`]; given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<Inner>,
    source: Option<u128>,
    octets: u64,
}

/// The key a source is counted under: an IPv4 address (an IPv4-mapped IPv6 address as the
/// IPv4 one), or an IPv6 address's /64 prefix.
fn source_key(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => (u128::from(v6) & !u128::from(u64::MAX)) | 1,
    }
}

impl BodyBudget {
    /// A budget of `capacity` octets, of which one source may hold a quarter (and at least
    /// one octet).
    pub fn new(capacity: u64) -> BodyBudget {
        let per_source = (capacity / SOURCE_SHARE_DIVISOR).max(1);
        BodyBudget(Arc::new(Inner {
            capacity,
            per_source,
            used: AtomicU64::new(0),
            by_source: Mutex::new(HashMap::new()),
        }))
    }

    /// Its capacity, in octets.
    pub fn capacity(&self) -> u64 {
        self.0.capacity
    }

    /// The most one source may hold, in octets.
    pub fn per_source(&self) -> u64 {
        self.0.per_source
    }

    /// Octets reserved now.
    pub fn in_use(&self) -> u64 {
        self.0.used.load(Ordering::Acquire)
    }

    /// Reserves `octets` for a body from `source` (none: a stream whose peer is unknown,
    /// counted in the total only), or `None` when they do not fit the total or the source's
    /// share beside what is reserved.
    pub(crate) fn try_reserve(&self, source: Option<IpAddr>, octets: u64) -> Option<Reservation> {
        let inner = &self.0;
        let source = source.map(source_key);
        let mut by_source = inner.by_source.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = source {
            let held = by_source.get(&k).copied().unwrap_or(0);
            if held.checked_add(octets).is_none_or(|t| t > inner.per_source) {
                return None;
            }
        }
        inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(octets).filter(|&total| total <= inner.capacity)
            })
            .ok()?;
        if let Some(k) = source {
            *by_source.entry(k).or_insert(0) += octets;
        }
        Some(Reservation { budget: Arc::clone(inner), source, octets })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let inner = &self.budget;
        if let Some(k) = self.source {
            let mut by_source = inner.by_source.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(held) = by_source.get_mut(&k) {
                *held = held.saturating_sub(self.octets);
                if *held == 0 {
                    by_source.remove(&k);
                }
            }
        }
        inner.used.fetch_sub(self.octets, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn reservations_fit_the_capacity_exactly_and_are_given_back_on_drop() {
        let b = BodyBudget::new(100);
        let shared = b.clone();
        let first = b.try_reserve(None, 60).expect("fits");
        assert!(shared.try_reserve(None, 41).is_none(), "one octet over");
        let second = shared.try_reserve(None, 40).expect("fits exactly");
        assert_eq!(b.in_use(), 100);
        assert!(b.try_reserve(None, 1).is_none());
        drop(first);
        assert_eq!(shared.in_use(), 40);
        drop(second);
        assert_eq!(b.in_use(), 0);
        assert!(BodyBudget::new(10).try_reserve(None, u64::MAX).is_none());
    }

    #[test]
    fn one_source_holds_at_most_a_quarter_and_an_ipv6_64_is_one_source() {
        let b = BodyBudget::new(400);
        assert_eq!(b.per_source(), 100);
        let a1 = b.try_reserve(ip("192.0.2.1"), 60).expect("fits the share");
        let a2 = b.try_reserve(ip("::ffff:192.0.2.1"), 40).expect("the same source, exactly");
        assert!(b.try_reserve(ip("192.0.2.1"), 1).is_none(), "one octet past the share");
        // Another source has its own share.
        let other = b.try_reserve(ip("192.0.2.2"), 100).expect("its own share");
        // Two addresses of one /64 are one source; another /64 is another.
        let v6 = b.try_reserve(ip("2001:db8:0:1::1"), 100).expect("fits");
        assert!(b.try_reserve(ip("2001:db8:0:1::ffff"), 1).is_none(), "the same /64");
        let fourth = b.try_reserve(ip("198.51.100.1"), 100).expect("fits");
        // The total is full now (400): another source finds no room.
        assert!(b.try_reserve(ip("2001:db8:0:2::1"), 1).is_none(), "the total");
        drop(a1);
        let again = b.try_reserve(ip("2001:db8:0:2::1"), 60).expect("room again");
        assert!(b.try_reserve(ip("192.0.2.1"), 61).is_none(), "40 still held");
        drop((a2, other, v6, fourth, again));
        assert_eq!(b.in_use(), 0);
        assert!(b.0.by_source.lock().unwrap().is_empty(), "no source kept once empty");
    }
}
