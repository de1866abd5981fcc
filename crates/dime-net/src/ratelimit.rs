//! Limits kept per source (an IPv4 address or an IPv6 /64: [`crate::source_of`]) across a
//! listener's connections, and per connection (`spec/dmtp.md` §8):
//!
//! - [`SourceRate`]: a token bucket per source (the DMTP lookups SGNT, VRFY and HIST: signets
//!   are public, but one source may not harvest local parts in bulk);
//! - [`LogLimiter`]: at most so many log lines per source per interval, then one summary of
//!   how many were suppressed (a peer whose every DATA is refused cannot fill the log);
//! - [`ErrorDelay`]: after errors on a connection, the server waits before its next refusal
//!   or before it closes, longer with each error (Postfix's `smtpd_error_sleep_time`);
//! - [`peer`] and [`log_allowed`]: the source of the connection the current task serves, so a
//!   [`crate::Handler`] may limit its own log lines per source without being told the peer.
//!
//! Each table is bounded: past its most sources it first forgets those whose state has run
//! back to the start (a full bucket, an ended interval), and the sources that still do not fit
//! share one entry.

use crate::caps::source_of;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sources tracked at once by a [`SourceRate`] or a [`LogLimiter`]; past it, entries that have
/// run back to the start are forgotten, and new sources that still do not fit share one entry.
pub const MAX_TRACKED_SOURCES: usize = 16_384;

/// Default lookups (SGNT, VRFY, HIST) a source may make per second, over every connection and
/// stream of a listener (and of the listeners sharing its [`crate::ServerOptions`]), once its
/// burst is spent (`spec/dmtp.md` §8).
pub const LOOKUP_RATE: u32 = 10;
/// Default lookups a source may make at once before [`LOOKUP_RATE`] applies.
pub const LOOKUP_BURST: u32 = 64;

/// A token bucket per source: `burst` at once, then `rate` per second.
#[derive(Debug)]
pub struct SourceRate {
    rate: f64,
    burst: f64,
    buckets: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    by_source: HashMap<IpAddr, Bucket>,
    /// The bucket shared by the sources that did not fit in `by_source`.
    overflow: Option<Bucket>,
    /// When a full table was last swept.
    swept: Option<Instant>,
}

/// How often at most a full table is swept for entries to forget: a sweep reads every entry,
/// so a flood of new sources does not pay for one per request.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

fn sweep_due(swept: Option<Instant>, now: Instant) -> bool {
    swept.is_none_or(|t| now.saturating_duration_since(t) >= SWEEP_EVERY)
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(burst);
        self.at = now;
    }

    fn take(&mut self) -> bool {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl SourceRate {
    /// `burst` at once from a source, then `per_second`.
    pub fn new(per_second: u32, burst: u32) -> SourceRate {
        SourceRate {
            rate: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// The defaults for lookups: [`LOOKUP_RATE`] per second, [`LOOKUP_BURST`] at once.
    pub fn lookups() -> SourceRate {
        SourceRate::new(LOOKUP_RATE, LOOKUP_BURST)
    }

    /// Whether `ip`'s source may act once more at `now` (it then spends a token).
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let (rate, burst) = (self.rate, self.burst);
        let full = Bucket { tokens: burst, at: now };
        let key = source_of(ip);
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !b.by_source.contains_key(&key)
            && b.by_source.len() >= MAX_TRACKED_SOURCES
            && sweep_due(b.swept, now)
        {
            b.swept = Some(now);
            // Forget the buckets that are full again: they are as a new source's.
            b.by_source.retain(|_, v| {
                v.refill(rate, burst, now);
                v.tokens < burst
            });
        }
        let bucket = if b.by_source.len() < MAX_TRACKED_SOURCES || b.by_source.contains_key(&key) {
            b.by_source.entry(key).or_insert(full)
        } else {
            b.overflow.get_or_insert(full)
        };
        bucket.refill(rate, burst, now);
        bucket.take()
    }
}

impl Default for SourceRate {
    fn default() -> SourceRate {
        SourceRate::lookups()
    }
}

/// Default log lines a [`LogLimiter`] lets through per source per [`LOG_INTERVAL`].
pub const LOG_LINES: u32 = 10;
/// Default interval of a [`LogLimiter`].
pub const LOG_INTERVAL: Duration = Duration::from_secs(60);

/// At most `lines` log lines per source per `interval`: past them a line is suppressed, and
/// once the interval is over, the next check of that source (or the table's upkeep, at most
/// an interval later as long as anything is logged) logs one summary: `log lines suppressed`
/// with the source and the count.
#[derive(Debug)]
pub struct LogLimiter {
    lines: u32,
    interval: Duration,
    windows: Mutex<Windows>,
}

#[derive(Debug)]
struct Windows {
    by_source: HashMap<IpAddr, Window>,
    overflow: Option<Window>,
    swept: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    lines: u32,
    suppressed: u64,
}

/// What a [`LogLimiter`] says about one more line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogVerdict {
    /// Log it.
    Emit,
    /// Do not log it: the source has had its lines this interval.
    Suppress,
}

fn summarize(source: Option<IpAddr>, w: &Window) {
    if w.suppressed > 0 {
        tracing::info!(
            source = ?source,
            suppressed = w.suppressed,
            "log lines suppressed"
        );
    }
}

impl LogLimiter {
    /// At most `lines` per source per `interval`.
    pub fn new(lines: u32, interval: Duration) -> LogLimiter {
        LogLimiter {
            lines,
            interval,
            windows: Mutex::new(Windows {
                by_source: HashMap::new(),
                overflow: None,
                swept: Instant::now(),
            }),
        }
    }

    /// Whether a line about `ip`'s source may be logged at `now`; logs the summary of an
    /// interval that is over first.
    pub fn check(&self, ip: IpAddr, now: Instant) -> LogVerdict {
        let key = source_of(ip);
        let interval = self.interval;
        let fresh = Window { start: now, lines: 0, suppressed: 0 };
        let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let over = |v: &Window| now.saturating_duration_since(v.start) >= interval;
        let full = !w.by_source.contains_key(&key) && w.by_source.len() >= MAX_TRACKED_SOURCES;
        let since = now.saturating_duration_since(w.swept);
        if (full && since >= SWEEP_EVERY) || since >= interval {
            w.swept = now;
            w.by_source.retain(|s, v| {
                if over(v) {
                    summarize(Some(*s), v);
                    false
                } else {
                    true
                }
            });
        }
        let (source, window) =
            if w.by_source.len() < MAX_TRACKED_SOURCES || w.by_source.contains_key(&key) {
                (Some(key), w.by_source.entry(key).or_insert(fresh))
            } else {
                (None, w.overflow.get_or_insert(fresh))
            };
        if over(window) {
            summarize(source, window);
            *window = fresh;
        }
        if window.lines < self.lines {
            window.lines += 1;
            LogVerdict::Emit
        } else {
            window.suppressed += 1;
            LogVerdict::Suppress
        }
    }
}

impl Default for LogLimiter {
    fn default() -> LogLimiter {
        LogLimiter::new(LOG_LINES, LOG_INTERVAL)
    }
}

/// Errors on a connection before the server starts to wait ([`ErrorDelay`]).
pub const ERROR_DELAY_FREE: u32 = 3;
/// The wait added per error past [`ERROR_DELAY_FREE`].
pub const ERROR_DELAY_STEP: Duration = Duration::from_secs(1);
/// The longest wait for one error.
pub const ERROR_DELAY_MAX: Duration = Duration::from_secs(5);
/// Errors on a connection after which the server closes it rather than answer (Postfix's
/// `smtpd_hard_error_limit`): with the delays above, a connection whose every command fails is
/// held at most 25 s.
pub const ERROR_LIMIT: u32 = 10;

/// Postfix-style error delays (`smtpd_error_sleep_time`, `smtpd_soft_error_limit`): the
/// first `free` errors on a connection are answered at once; the next ones wait
/// `step` × (errors − `free`), at most `max`, before the server answers (or closes). An honest
/// peer's occasional refusal costs nothing; a peer whose every command fails is slowed to one
/// answer per `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorDelay {
    /// Errors answered without waiting.
    pub free: u32,
    /// The wait added per error past `free`.
    pub step: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Errors after which the connection is closed instead of answered.
    pub limit: u32,
}

impl ErrorDelay {
    /// No delay at all.
    pub const NONE: ErrorDelay =
        ErrorDelay { free: u32::MAX, step: Duration::ZERO, max: Duration::ZERO, limit: u32::MAX };

    /// The wait before answering a connection's `errors`-th error (counting from 1).
    pub fn after(&self, errors: u32) -> Duration {
        let past = errors.saturating_sub(self.free);
        self.step.saturating_mul(past).min(self.max)
    }
}

impl Default for ErrorDelay {
    fn default() -> ErrorDelay {
        ErrorDelay {
            free: ERROR_DELAY_FREE,
            step: ERROR_DELAY_STEP,
            max: ERROR_DELAY_MAX,
            limit: ERROR_LIMIT,
        }
    }
}

/// What the driver knows of the connection the current task serves.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) ip: IpAddr,
    pub(crate) log: Arc<LogLimiter>,
}

tokio::task_local! {
    static PEER: Peer;
}

/// Runs `f` with `peer` as the connection the task serves ([`peer`], [`log_allowed`]).
pub(crate) async fn with_peer<F: Future>(peer: Option<Peer>, f: F) -> F::Output {
    match peer {
        Some(p) => PEER.scope(p, f).await,
        None => f.await,
    }
}

/// The IP address of the peer whose connection the current task serves: set by the DMTP
/// server drivers around every call to a [`crate::Handler`]; `None` elsewhere.
pub fn peer() -> Option<IpAddr> {
    PEER.try_with(|p| p.ip).ok()
}

/// Whether a log line about the peer the current task serves may be logged now: the
/// listener's [`LogLimiter`] (its [`crate::ServerOptions::log_limiter`]) per the peer's
/// source; `true` outside a connection. A [`crate::Handler`] wraps its per-request lines in
/// it: `if dime_net::log_allowed() { tracing::info!(..) }`.
pub fn log_allowed() -> bool {
    PEER.try_with(|p| p.log.check(p.ip, Instant::now()) == LogVerdict::Emit).unwrap_or(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let r = SourceRate::new(2, 3);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        assert!((0..3).all(|_| r.allow(a, t0)));
        assert!(!r.allow(a, t0));
        // Another source has its own bucket; so does another /64, not another address in it.
        assert!(r.allow(ip("192.0.2.2"), t0));
        assert!((0..3).all(|_| r.allow(ip("2001:db8::1"), t0)));
        assert!(!r.allow(ip("2001:db8::ffff"), t0));
        assert!(r.allow(ip("2001:db8:0:1::1"), t0));
        // Half a second gives one token back at 2/s, and no more.
        let t1 = t0 + Duration::from_millis(500);
        assert!(r.allow(a, t1));
        assert!(!r.allow(a, t1));
        // A long silence fills the bucket to its burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..10).filter(|_| r.allow(a, t2)).count(), 3);
    }

    #[test]
    fn the_bucket_table_stays_bounded_and_late_sources_share_one() {
        let r = SourceRate::new(1, 1);
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED_SOURCES as u32 {
            assert!(r.allow(IpAddr::from((0x0a00_0000u32 + i).to_be_bytes()), t0));
        }
        // Every bucket is spent: the next sources share the overflow bucket.
        assert!(r.allow(ip("192.0.2.1"), t0));
        assert!(!r.allow(ip("192.0.2.2"), t0));
        assert_eq!(r.buckets.lock().unwrap().by_source.len(), MAX_TRACKED_SOURCES);
        // Once they are full again they are forgotten, and a new source has its own.
        let t1 = t0 + Duration::from_secs(2);
        assert!(r.allow(ip("192.0.2.3"), t1));
        assert_eq!(r.buckets.lock().unwrap().by_source.len(), 1);
    }

    #[test]
    fn log_lines_are_limited_per_source_and_come_back_after_the_interval() {
        let l = LogLimiter::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        let verdicts: Vec<_> = (0..5).map(|_| l.check(a, t0)).collect();
        use LogVerdict::*;
        assert_eq!(verdicts, [Emit, Emit, Suppress, Suppress, Suppress]);
        assert_eq!(l.check(ip("192.0.2.2"), t0), Emit);
        assert_eq!(l.windows.lock().unwrap().by_source[&a].suppressed, 3);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(l.check(a, t1), Emit);
        assert_eq!(l.windows.lock().unwrap().by_source[&a].suppressed, 0);
    }

    #[test]
    fn the_log_table_stays_bounded_and_late_sources_share_one() {
        let l = LogLimiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED_SOURCES as u32 {
            assert_eq!(
                l.check(IpAddr::from((0x0a00_0000u32 + i).to_be_bytes()), t0),
                LogVerdict::Emit
            );
        }
        assert_eq!(l.check(ip("192.0.2.1"), t0), LogVerdict::Emit);
        assert_eq!(l.check(ip("192.0.2.2"), t0), LogVerdict::Suppress);
        assert_eq!(l.windows.lock().unwrap().by_source.len(), MAX_TRACKED_SOURCES);
        // Once their interval is over they are summarized and forgotten.
        let t1 = t0 + Duration::from_secs(60);
        assert_eq!(l.check(ip("192.0.2.3"), t1), LogVerdict::Emit);
        assert_eq!(l.windows.lock().unwrap().by_source.len(), 1);
    }

    #[test]
    fn the_error_delay_is_free_at_first_then_grows_to_its_cap() {
        let d = ErrorDelay {
            free: 2,
            step: Duration::from_millis(100),
            max: Duration::from_millis(250),
            limit: 6,
        };
        let waits: Vec<u128> = (1..=6).map(|n| d.after(n).as_millis()).collect();
        assert_eq!(waits, [0, 0, 100, 200, 250, 250]);
        assert_eq!(ErrorDelay::NONE.after(u32::MAX), Duration::ZERO);
        let p = ErrorDelay::default();
        assert_eq!(p.after(ERROR_DELAY_FREE), Duration::ZERO);
        assert_eq!(p.after(ERROR_DELAY_FREE + 1), ERROR_DELAY_STEP);
        assert_eq!(p.after(1000), ERROR_DELAY_MAX);
    }

    #[tokio::test]
    async fn a_handler_sees_the_peer_and_its_log_limit_inside_the_scope_only() {
        assert_eq!(peer(), None);
        assert!(log_allowed());
        let log = Arc::new(LogLimiter::new(1, Duration::from_secs(3600)));
        let p = Peer { ip: ip("192.0.2.9"), log };
        let seen = with_peer(Some(p), async { (peer(), log_allowed(), log_allowed()) }).await;
        assert_eq!(seen, (Some(ip("192.0.2.9")), true, false));
        assert!(log_allowed());
    }
}
