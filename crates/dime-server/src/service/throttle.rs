//! Login throttling (`spec/dimed.md`, Logins), shared by every front end through the
//! service's login:
//!
//! - **Slots.** At most [`LoginPolicy::concurrent`] password checks run at once (Argon2id is
//!   19 MiB and ~20 ms of one core each); each slot owns one reusable Argon2id working memory,
//!   so that the memory of logins is bounded by the slots, not by the connections. A login that
//!   waits longer than [`LoginPolicy::queue_deadline`] for a slot is refused as busy.
//! - **Failure delays.** After a failed password check, the account (by its
//!   [`dime_store::Store::login_tag`]) and the source ([`LoginSource`]) are each refused for a
//!   delay that starts at [`LoginPolicy::failure_delay_secs`] and doubles with each further
//!   failure up to [`LoginPolicy::max_failure_delay_secs`]; a refused attempt checks no
//!   password and does not lengthen the delay. A success clears its account's delay (not its
//!   source's). Each table remembers at most [`LoginPolicy::max_tracked`] keys, evicting the
//!   least recently failed.
//! - **Audit.** Every failed check is one `tracing` line of target `dimed::auth` (account tag,
//!   source, reason class), never the address or the password.
//!
//! The failure tables are sans-IO: they take the time (a [`Timestamp`]) as a parameter.

use dime_core::crypto::Argon2Memory;
use dime_store::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The `tracing` target of the login audit lines (`spec/dimed.md`, Logins).
pub const AUDIT_TARGET: &str = "dimed::auth";

/// How logins are throttled (`spec/dimed.md`, Logins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Password checks at once (default: the cores).
    pub concurrent: usize,
    /// Longest wait for a slot; a login still waiting then is refused as busy (default 5 s).
    pub queue_deadline: Duration,
    /// Refusal after the first failure, seconds (default 2; 0 turns the delays off).
    pub failure_delay_secs: u64,
    /// Longest refusal, seconds (default 30).
    pub max_failure_delay_secs: u64,
    /// A key with no failure for this long starts again from the first delay (default 900).
    pub forget_after_secs: u64,
    /// Keys remembered per table, accounts and sources (default 16,384).
    pub max_tracked: usize,
}

impl Default for LoginPolicy {
    fn default() -> LoginPolicy {
        LoginPolicy {
            concurrent: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            queue_deadline: Duration::from_secs(5),
            failure_delay_secs: 2,
            max_failure_delay_secs: 30,
            forget_after_secs: 900,
            max_tracked: 16_384,
        }
    }
}

/// Where a login comes from, as its front end knows it: failures are counted per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginSource {
    /// A network peer, counted per address (an IPv6 address per /64 prefix).
    Ip(IpAddr),
    /// A local socket connection: counted per uid when the peer's is known, else per
    /// connection (the socket's file mode is its access control).
    Local {
        /// The peer's uid, when the socket tells it.
        uid: Option<u32>,
        /// The connection's number, unique in the process.
        connection: u64,
    },
    /// No source (a tool or test in the process): counted per account only.
    Unspecified,
}

impl LoginSource {
    /// The key failures of this source are counted under, if any.
    fn key(&self) -> Option<SourceKey> {
        Some(match *self {
            LoginSource::Ip(ip) => match ip.to_canonical() {
                IpAddr::V4(v4) => SourceKey::V4(v4.to_bits()),
                IpAddr::V6(v6) => SourceKey::V6Prefix((v6.to_bits() >> 64) as u64),
            },
            LoginSource::Local { uid: Some(uid), .. } => SourceKey::Uid(uid),
            LoginSource::Local { uid: None, connection } => SourceKey::Connection(connection),
            LoginSource::Unspecified => return None,
        })
    }
}

/// As the audit lines show it: an address as is (for fail2ban's `<HOST>`), a local source as
/// `local:uid=N` or `local:conn=N`, none as `-`.
impl fmt::Display for LoginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginSource::Ip(ip) => write!(f, "{}", ip.to_canonical()),
            LoginSource::Local { uid: Some(uid), .. } => write!(f, "local:uid={uid}"),
            LoginSource::Local { uid: None, connection } => write!(f, "local:conn={connection}"),
            LoginSource::Unspecified => f.write_str("-"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SourceKey {
    V4(u32),
    V6Prefix(u64),
    Uid(u32),
    Connection(u64),
}

/// An address's [`dime_store::Store::login_tag`], shown as 16 hex digits: what throttling and
/// audit lines know of an account (whether it exists or not).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountTag(pub [u8; 8]);

impl fmt::Display for AccountTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for AccountTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountTag({self})")
    }
}

/// Why a failed check failed, as the audit line classes it (`spec/dimed.md`, Logins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureClass {
    /// A wrong password for an account.
    Password,
    /// No account has the address.
    Unknown,
    /// The account was deleted.
    Deleted,
}

impl FailureClass {
    fn as_str(self) -> &'static str {
        match self {
            FailureClass::Password => "password",
            FailureClass::Unknown => "unknown_user",
            FailureClass::Deleted => "deleted",
        }
    }
}

/// One key's failures.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// Refused before this second.
    until: u64,
    /// The last failure's second.
    last: u64,
    /// Its place in the eviction order.
    generation: u64,
}

/// Failures per key, at most `max` keys, the least recently failed evicted first.
#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Failures>,
    /// Keys in the order of their last failure; a key's older positions are stale (their
    /// generation is not the entry's) and skipped.
    order: VecDeque<(K, u64)>,
    next_generation: u64,
}

impl<K: Copy + Eq + Hash> Table<K> {
    fn new() -> Table<K> {
        Table { entries: HashMap::new(), order: VecDeque::new(), next_generation: 0 }
    }

    /// Seconds `key` is still refused at `now`, if any.
    fn refused(&self, key: &K, now: u64, policy: &LoginPolicy) -> Option<u64> {
        let f = self.entries.get(key)?;
        let left = f.until.checked_sub(now).filter(|left| *left > 0)?;
        // A clock stepped back must not refuse for longer than the longest delay.
        Some(left.min(policy.max_failure_delay_secs))
    }

    fn failed(&mut self, key: K, now: u64, policy: &LoginPolicy) {
        let generation = self.next_generation;
        self.next_generation += 1;
        let previous = self
            .entries
            .get(&key)
            .filter(|f| now < f.last.saturating_add(policy.forget_after_secs))
            .map_or(0, |f| f.count);
        let count = previous.saturating_add(1);
        let doubling = 1u64.checked_shl(count - 1).unwrap_or(u64::MAX);
        let delay =
            policy.failure_delay_secs.saturating_mul(doubling).min(policy.max_failure_delay_secs);
        let f = Failures { count, until: now.saturating_add(delay), last: now, generation };
        self.entries.insert(key, f);
        self.order.push_back((key, generation));
        while self.entries.len() > policy.max_tracked.max(1) {
            self.evict_oldest();
        }
        // Stale positions are at most as many as the live ones before a compaction.
        if self.order.len() > 2 * self.entries.len() + 16 {
            self.order.retain(|(k, g)| self.entries.get(k).is_some_and(|f| f.generation == *g));
        }
    }

    fn evict_oldest(&mut self) {
        while let Some((k, g)) = self.order.pop_front() {
            if self.entries.get(&k).is_some_and(|f| f.generation == g) {
                self.entries.remove(&k);
                return;
            }
        }
    }

    fn clear(&mut self, key: &K) {
        self.entries.remove(key);
    }
}

/// Why a login was refused before its password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The account or the source is within its failure delay: seconds left.
    Delayed(u64),
    /// No slot came free within the queue deadline.
    Busy,
}

/// The service's login throttle: slots and failure delays (see the module's doc).
pub(crate) struct LoginThrottle {
    policy: LoginPolicy,
    slots: Arc<Semaphore>,
    memories: Arc<Mutex<Vec<Argon2Memory>>>,
    failures: Mutex<(Table<AccountTag>, Table<SourceKey>)>,
}

impl fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginThrottle").field("policy", &self.policy).finish_non_exhaustive()
    }
}

/// A slot for one password check: its permit and its Argon2id working memory, both given back
/// when it is dropped (after the check, wherever it ran).
pub(crate) struct Slot {
    memory: Option<Argon2Memory>,
    pool: Arc<Mutex<Vec<Argon2Memory>>>,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    /// The slot's Argon2id working memory.
    pub(crate) fn memory(&mut self) -> &mut Argon2Memory {
        self.memory.get_or_insert_with(Argon2Memory::new)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(m) = self.memory.take() {
            lock(&self.pool).push(m);
        }
    }
}

/// A poisoned lock still holds consistent data here (every update is one assignment).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LoginThrottle {
    pub(crate) fn new(policy: LoginPolicy) -> LoginThrottle {
        LoginThrottle {
            slots: Arc::new(Semaphore::new(policy.concurrent.max(1))),
            memories: Arc::new(Mutex::new(Vec::new())),
            failures: Mutex::new((Table::new(), Table::new())),
            policy,
        }
    }

    /// Refuses a login of `account` from `source` at `now` while either is in its delay.
    pub(crate) fn admit(
        &self,
        account: AccountTag,
        source: &LoginSource,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        let (accounts, sources) = &*lock(&self.failures);
        let by_account = accounts.refused(&account, now.0, &self.policy);
        let by_source = source.key().and_then(|k| sources.refused(&k, now.0, &self.policy));
        match by_account.max(by_source) {
            Some(left) => Err(Refusal::Delayed(left)),
            None => Ok(()),
        }
    }

    /// A slot, waiting at most the queue deadline.
    pub(crate) async fn slot(&self) -> Result<Slot, Refusal> {
        let acquire = Arc::clone(&self.slots).acquire_owned();
        let permit = match tokio::time::timeout(self.policy.queue_deadline, acquire).await {
            Ok(Ok(permit)) => permit,
            // Timed out (the semaphore is never closed).
            Ok(Err(_)) | Err(_) => return Err(Refusal::Busy),
        };
        let memory = lock(&self.memories).pop();
        Ok(Slot { memory, pool: Arc::clone(&self.memories), _permit: permit })
    }

    /// Records a failed check of `account` from `source` at `now`, and logs it.
    pub(crate) fn failed(
        &self,
        account: AccountTag,
        source: &LoginSource,
        now: Timestamp,
        class: FailureClass,
    ) {
        {
            let (accounts, sources) = &mut *lock(&self.failures);
            accounts.failed(account, now.0, &self.policy);
            if let Some(k) = source.key() {
                sources.failed(k, now.0, &self.policy);
            }
        }
        crate::metrics::login_failed(source, class.as_str());
        tracing::warn!(
            target: AUDIT_TARGET,
            account = %account,
            source = %source,
            reason = %class.as_str(),
            "login failed"
        );
    }

    /// Records a successful login: its account's delay is cleared.
    pub(crate) fn succeeded(&self, account: AccountTag, source: &LoginSource) {
        lock(&self.failures).0.clear(&account);
        tracing::info!(target: AUDIT_TARGET, account = %account, source = %source, "login");
    }

    /// Logs a refusal.
    pub(crate) fn refused(&self, account: AccountTag, source: &LoginSource, why: Refusal) {
        let reason = if matches!(why, Refusal::Busy) { "busy" } else { "delayed" };
        crate::metrics::login_failed(source, reason);
        match why {
            Refusal::Delayed(left) => tracing::debug!(
                target: AUDIT_TARGET,
                account = %account,
                source = %source,
                reason = %"delayed",
                retry_after = left,
                "login refused"
            ),
            Refusal::Busy => tracing::warn!(
                target: AUDIT_TARGET,
                account = %account,
                source = %source,
                reason = %"busy",
                "login refused"
            ),
        }
    }

    /// Keys remembered: (accounts, sources).
    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        let (a, s) = &*lock(&self.failures);
        (a.entries.len(), s.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn policy() -> LoginPolicy {
        LoginPolicy { max_tracked: 4, ..LoginPolicy::default() }
    }

    const ALICE: AccountTag = AccountTag([1; 8]);
    const BOB: AccountTag = AccountTag([2; 8]);

    fn ip(s: &str) -> LoginSource {
        LoginSource::Ip(s.parse().unwrap())
    }

    #[test]
    fn a_failure_refuses_the_account_and_the_source_for_a_delay_that_doubles_to_its_cap() {
        let t = LoginThrottle::new(policy());
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        assert_eq!(t.admit(ALICE, &a, Timestamp(100)), Ok(()));
        let mut now = 100;
        for delay in [2, 4, 8, 16, 30, 30, 30] {
            t.failed(ALICE, &a, Timestamp(now), FailureClass::Password);
            // The account from another source, and another account from this source.
            assert_eq!(t.admit(ALICE, &b, Timestamp(now)), Err(Refusal::Delayed(delay)));
            assert_eq!(t.admit(BOB, &a, Timestamp(now)), Err(Refusal::Delayed(delay)));
            assert_eq!(t.admit(ALICE, &a, Timestamp(now + delay - 1)), Err(Refusal::Delayed(1)));
            now += delay;
            assert_eq!(t.admit(ALICE, &a, Timestamp(now)), Ok(()), "at {now}");
        }
        assert_eq!(t.admit(BOB, &b, Timestamp(100)), Ok(()));
    }

    #[test]
    fn a_success_clears_its_account_but_not_its_source() {
        let t = LoginThrottle::new(policy());
        let a = ip("192.0.2.1");
        t.failed(ALICE, &a, Timestamp(100), FailureClass::Password);
        t.failed(ALICE, &a, Timestamp(102), FailureClass::Password);
        t.succeeded(ALICE, &a);
        assert_eq!(t.admit(ALICE, &LoginSource::Unspecified, Timestamp(102)), Ok(()));
        assert_eq!(t.admit(ALICE, &a, Timestamp(102)), Err(Refusal::Delayed(4)));
        // The account starts again from the first delay.
        t.failed(ALICE, &LoginSource::Unspecified, Timestamp(110), FailureClass::Password);
        assert_eq!(
            t.admit(ALICE, &LoginSource::Unspecified, Timestamp(110)),
            Err(Refusal::Delayed(2))
        );
    }

    #[test]
    fn failures_older_than_the_forget_time_start_again_from_the_first_delay() {
        let t = LoginThrottle::new(policy());
        let s = LoginSource::Unspecified;
        for now in [100, 102, 106] {
            t.failed(ALICE, &s, Timestamp(now), FailureClass::Password);
        }
        assert_eq!(t.admit(ALICE, &s, Timestamp(106)), Err(Refusal::Delayed(8)));
        t.failed(ALICE, &s, Timestamp(106 + 899), FailureClass::Password);
        assert_eq!(t.admit(ALICE, &s, Timestamp(1005)), Err(Refusal::Delayed(16)));
        t.failed(ALICE, &s, Timestamp(1005 + 900), FailureClass::Password);
        assert_eq!(t.admit(ALICE, &s, Timestamp(1905)), Err(Refusal::Delayed(2)));
    }

    #[test]
    fn a_clock_stepped_back_refuses_no_longer_than_the_longest_delay() {
        let t = LoginThrottle::new(policy());
        let s = LoginSource::Unspecified;
        t.failed(ALICE, &s, Timestamp(1_000_000), FailureClass::Password);
        assert_eq!(t.admit(ALICE, &s, Timestamp(1)), Err(Refusal::Delayed(30)));
    }

    #[test]
    fn no_delay_when_the_policy_turns_them_off() {
        let t = LoginThrottle::new(LoginPolicy { failure_delay_secs: 0, ..policy() });
        let a = ip("192.0.2.1");
        for _ in 0..100 {
            t.failed(ALICE, &a, Timestamp(100), FailureClass::Password);
        }
        assert_eq!(t.admit(ALICE, &a, Timestamp(100)), Ok(()));
    }

    #[test]
    fn the_tables_keep_at_most_their_cap_evicting_the_least_recently_failed() {
        let t = LoginThrottle::new(policy());
        for i in 0..100u8 {
            let s = LoginSource::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)));
            t.failed(AccountTag([i; 8]), &s, Timestamp(100), FailureClass::Unknown);
            assert!(t.tracked().0 <= 4 && t.tracked().1 <= 4);
            let order = lock(&t.failures).0.order.len();
            assert!(order <= 2 * 4 + 16, "the eviction order is bounded too: {order}");
        }
        // The newest four are still refused; an older one was evicted.
        let s = LoginSource::Unspecified;
        assert!(t.admit(AccountTag([99; 8]), &s, Timestamp(100)).is_err());
        assert!(t.admit(AccountTag([96; 8]), &s, Timestamp(100)).is_err());
        assert_eq!(t.admit(AccountTag([95; 8]), &s, Timestamp(100)), Ok(()));
        // A key failing again moves to the back: it outlives keys that failed after it first.
        let t = LoginThrottle::new(policy());
        for i in [1u8, 2, 3, 4, 1, 5] {
            t.failed(AccountTag([i; 8]), &s, Timestamp(100), FailureClass::Unknown);
        }
        assert!(t.admit(AccountTag([1; 8]), &s, Timestamp(100)).is_err());
        assert_eq!(t.admit(AccountTag([2; 8]), &s, Timestamp(100)), Ok(()));
    }

    #[test]
    fn sources_are_counted_per_ipv4_address_per_ipv6_slash_64_and_per_local_uid() {
        let t = LoginThrottle::new(LoginPolicy { max_tracked: 100, ..policy() });
        let failed = |s: &LoginSource| t.failed(ALICE, s, Timestamp(100), FailureClass::Password);
        let refused = |s: &LoginSource| t.admit(BOB, s, Timestamp(100)).is_err();
        failed(&ip("2001:db8:1:2::7"));
        assert!(refused(&ip("2001:db8:1:2:ffff::1")), "same /64");
        assert!(!refused(&ip("2001:db8:1:3::7")), "another /64");
        failed(&ip("::ffff:192.0.2.9"));
        assert!(refused(&ip("192.0.2.9")), "an IPv4-mapped address is the IPv4 address");
        assert!(!refused(&ip("192.0.2.10")));
        failed(&LoginSource::Local { uid: Some(1000), connection: 1 });
        assert!(refused(&LoginSource::Local { uid: Some(1000), connection: 2 }));
        assert!(!refused(&LoginSource::Local { uid: Some(1001), connection: 1 }));
        failed(&LoginSource::Local { uid: None, connection: 7 });
        assert!(refused(&LoginSource::Local { uid: None, connection: 7 }));
        assert!(!refused(&LoginSource::Local { uid: None, connection: 8 }));
        assert!(!refused(&LoginSource::Unspecified));
        let v6 = LoginSource::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(v6.to_string(), "::1");
        assert_eq!(ip("::ffff:192.0.2.9").to_string(), "192.0.2.9");
        assert_eq!(LoginSource::Local { uid: Some(5), connection: 1 }.to_string(), "local:uid=5");
        assert_eq!(LoginSource::Local { uid: None, connection: 3 }.to_string(), "local:conn=3");
        assert_eq!(LoginSource::Unspecified.to_string(), "-");
        assert_eq!(AccountTag([0xab; 8]).to_string(), "abababababababab");
    }

    #[tokio::test]
    async fn slots_are_bounded_and_a_login_waiting_past_the_deadline_is_busy() {
        let t = LoginThrottle::new(LoginPolicy {
            concurrent: 2,
            queue_deadline: Duration::from_millis(50),
            ..policy()
        });
        let params = dime_core::crypto::Argon2Params { m_kib: 8192, t: 1, p: 1 };
        let mut one = t.slot().await.unwrap();
        let mut two = t.slot().await.unwrap();
        assert!(matches!(t.slot().await, Err(Refusal::Busy)));
        *one.memory() = Argon2Memory::for_params(&params);
        drop(one);
        // The freed slot is taken, with the memory the first one used.
        let mut three = t.slot().await.unwrap();
        assert_eq!(three.memory().kib(), 8192, "the memory is reused");
        two.memory();
        drop((two, three));
        assert_eq!(lock(&t.memories).len(), 2, "one memory per slot");
        let (four, five) = (t.slot().await.unwrap(), t.slot().await.unwrap());
        assert_eq!(lock(&t.memories).len(), 0, "each slot took one");
        drop((four, five));
        assert_eq!(lock(&t.memories).len(), 2, "and no more are made");
    }
}
