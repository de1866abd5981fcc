//! The memory a server gives to DATA bodies at once (`spec/dmtp.md` §6.4, §8): one budget
//! shared by every stream of a listener, reserved at DATA for the declared size and given back
//! when the body's transaction ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Octets of DATA bodies a server holds at once, by default (`spec/dmtp.md` §8): four bodies
/// of `MAX_MESSAGE_SIZE`, or thousands of ordinary ones.
pub const BODY_BUDGET: u64 = 256 * 1024 * 1024;

/// The octets of bodies in flight, shared by the streams whose [`crate::ServerConfig`] are
/// clones of one another. Cloning shares it; [`BodyBudget::new`] makes another.
#[derive(Debug, Clone)]
pub struct BodyBudget(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    capacity: u64,
    used: AtomicU64,
}

/// Octets reserved from a [`BodyBudget`]; given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<Inner>,
    octets: u64,
}

impl BodyBudget {
    /// A budget of `capacity` octets.
    pub fn new(capacity: u64) -> BodyBudget {
        BodyBudget(Arc::new(Inner { capacity, used: AtomicU64::new(0) }))
    }

    /// Its capacity, in octets.
    pub fn capacity(&self) -> u64 {
        self.0.capacity
    }

    /// Octets reserved now.
    pub fn in_use(&self) -> u64 {
        self.0.used.load(Ordering::Acquire)
    }

    /// Reserves `octets`, or `None` when they do not fit beside what is reserved.
    pub(crate) fn try_reserve(&self, octets: u64) -> Option<Reservation> {
        let inner = &self.0;
        inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(octets).filter(|&total| total <= inner.capacity)
            })
            .ok()?;
        Some(Reservation { budget: Arc::clone(inner), octets })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.octets, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_the_capacity_exactly_and_are_given_back_on_drop() {
        let b = BodyBudget::new(100);
        let shared = b.clone();
        let first = b.try_reserve(60).expect("fits");
        assert!(shared.try_reserve(41).is_none(), "one octet over");
        let second = shared.try_reserve(40).expect("fits exactly");
        assert_eq!(b.in_use(), 100);
        assert!(b.try_reserve(1).is_none());
        drop(first);
        assert_eq!(shared.in_use(), 40);
        drop(second);
        assert_eq!(b.in_use(), 0);
        assert!(BodyBudget::new(10).try_reserve(u64::MAX).is_none());
    }
}
