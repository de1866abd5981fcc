//! The process's open-file limit and the connection caps that fit under it (`spec/dmtp.md` §8).
//!
//! Every TCP connection holds a file descriptor (a QUIC connection does not: a QUIC endpoint's
//! connections share its one UDP socket). With the common soft limit of 1024 descriptors, a
//! thousand connections exhaust it: the accept loops then fail (`EMFILE`), and so does
//! everything else that opens a file (the store, DNS, outbound connections). So `dimed`
//! raises the soft limit to the hard limit at start ([`raise_fd_limit`]), and keeps each TCP
//! listener's connection cap below what is left once a reserve is set aside
//! ([`FdLimit::connection_cap`], applied by [`fit_to_fd_limit`]).

use crate::ServerOptions;

/// Descriptors set aside for everything but the TCP listeners' connections: the store's
/// files, the resolver's sockets, outbound connections, the local sockets' connections
/// (`spec/dimed.md` §4), the listening sockets themselves (`spec/dmtp.md` §8). A quarter of
/// the soft limit when that is less.
pub const FD_RESERVE: u64 = 512;

/// The soft limit asked for when the hard limit is unlimited.
const FD_UNLIMITED_TARGET: u64 = 1 << 20;

/// The process's limit on open files (`RLIMIT_NOFILE`) as [`raise_fd_limit`] left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit before the raise (`None`: unlimited).
    pub before: Option<u64>,
    /// The soft limit in force (`None`: unlimited).
    pub soft: Option<u64>,
    /// The hard limit (`None`: unlimited).
    pub hard: Option<u64>,
}

impl FdLimit {
    /// The limit in force now, without changing it.
    pub fn current() -> FdLimit {
        let l = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        FdLimit { before: l.current, soft: l.current, hard: l.maximum }
    }

    /// The most connections each of `tcp_listeners` TCP listeners may hold at once so that,
    /// together, they stay below the soft limit less its reserve ([`FD_RESERVE`], or a quarter
    /// of the limit when less): `min(configured, (soft - reserve) / tcp_listeners)`, at least
    /// 1. `configured` itself with no TCP listener or no limit.
    pub fn connection_cap(&self, configured: usize, tcp_listeners: usize) -> usize {
        let (Some(soft), Ok(n @ 1..)) = (self.soft, u64::try_from(tcp_listeners)) else {
            return configured;
        };
        let reserve = FD_RESERVE.min(soft / 4);
        let share = soft.saturating_sub(reserve) / n;
        usize::try_from(share).map_or(configured, |s| configured.min(s)).max(1)
    }
}

/// Raises the soft limit on open files to the hard limit (to 2^20 when the hard limit is
/// unlimited) and logs the result; a raise the system refuses is logged and the limit left as
/// it was. `dimed` calls it once at start, before its listeners bind (through
/// [`fit_to_fd_limit`]).
pub fn raise_fd_limit() -> FdLimit {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    let target = l.maximum.unwrap_or(FD_UNLIMITED_TARGET);
    let mut limit = FdLimit { before: l.current, soft: l.current, hard: l.maximum };
    if l.current.is_some_and(|c| c < target) {
        match setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum: l.maximum }) {
            Ok(()) => limit.soft = Some(target),
            Err(e) => tracing::warn!(
                error = %e,
                soft = ?l.current,
                hard = ?l.maximum,
                "open-file limit not raised"
            ),
        }
    }
    tracing::info!(
        before = ?limit.before,
        soft = ?limit.soft,
        hard = ?limit.hard,
        "open-file limit"
    );
    limit
}

/// `dimed`'s start: [`raise_fd_limit`], then `options` with its connection cap kept below the
/// limit for `tcp_listeners` TCP listeners on these options ([`FdLimit::connection_cap`];
/// QUIC connections hold no descriptor). A lowered cap is logged.
pub fn fit_to_fd_limit(mut options: ServerOptions, tcp_listeners: usize) -> ServerOptions {
    let limit = raise_fd_limit();
    let cap = limit.connection_cap(options.max_connections, tcp_listeners);
    if cap < options.max_connections {
        tracing::warn!(
            configured = options.max_connections,
            cap,
            soft = ?limit.soft,
            "connection cap lowered to fit the open-file limit"
        );
        options.max_connections = cap;
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(soft: Option<u64>) -> FdLimit {
        FdLimit { before: soft, soft, hard: soft }
    }

    #[test]
    fn the_connection_cap_leaves_the_reserve_free_under_the_soft_limit() {
        // The common 1024: a quarter kept back, the rest shared by the TCP listeners.
        assert_eq!(limit(Some(1024)).connection_cap(1024, 1), 768);
        assert_eq!(limit(Some(1024)).connection_cap(1024, 2), 384);
        assert_eq!(limit(Some(1024)).connection_cap(100, 1), 100);
        // A raised limit keeps the configured cap.
        assert_eq!(limit(Some(1 << 20)).connection_cap(1024, 3), 1024);
        assert_eq!(limit(Some(4096)).connection_cap(8192, 1), 4096 - FD_RESERVE as usize);
        // No limit, or no TCP listener: what was configured.
        assert_eq!(limit(None).connection_cap(1024, 1), 1024);
        assert_eq!(limit(Some(64)).connection_cap(1024, 0), 1024);
        // Never none at all.
        assert_eq!(limit(Some(2)).connection_cap(1024, 4), 1);
    }

    #[test]
    fn the_raise_leaves_the_soft_limit_at_the_hard_limit() {
        // This process's own limit: raising is idempotent and never lowers it.
        let raised = raise_fd_limit();
        assert!(raised.soft >= raised.before || raised.soft.is_none());
        let now = FdLimit::current();
        assert_eq!(now.soft, raised.soft);
        if raised.hard.is_some() {
            assert_eq!(now.soft, now.hard);
        }
    }
}
