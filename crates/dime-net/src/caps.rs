//! Per-source connection caps (`spec/dmtp.md` §8): per IP address, and per IPv6 /64.
//!
//! One IPv6 host, or one customer of a provider, commonly holds a whole /64 (2^64 addresses),
//! so a per-address cap alone does not bound what one peer may open over IPv6: its /64 has its
//! own cap. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket reports
//! for an IPv4 peer) is counted as the IPv4 address it is.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// Default connections at once from one IP address (`spec/dmtp.md` §8).
pub const MAX_CONNECTIONS_PER_IP: usize = 16;

/// Default connections at once from one IPv6 /64, whatever its addresses (`spec/dmtp.md` §8):
/// twice the per-address cap, so that a /64 with a few hosts behind it (a small site) is not
/// held to one host's share, while one peer cannot take the listener by spreading over its
/// /64.
pub const MAX_CONNECTIONS_PER_PREFIX: usize = 2 * MAX_CONNECTIONS_PER_IP;

/// What a peer's address counts against: the address itself (an IPv4-mapped IPv6 address as
/// its IPv4 address), and for IPv6 its /64.
fn keys(ip: IpAddr) -> (IpAddr, Option<IpAddr>) {
    let ip = ip.to_canonical();
    match ip {
        IpAddr::V4(_) => (ip, None),
        IpAddr::V6(v6) => (ip, Some(IpAddr::V6(prefix64(v6)))),
    }
}

fn prefix64(ip: Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(ip) & !((1u128 << 64) - 1))
}

/// The source a peer's address belongs to, for the limits kept per source (the lookup rate,
/// the log lines; `spec/dmtp.md` §8): an IPv4 address (an IPv4-mapped IPv6 address as its
/// IPv4 address), or an IPv6 address's /64 (its last 64 bits zero).
pub fn source_of(ip: IpAddr) -> IpAddr {
    let (ip, prefix) = keys(ip);
    prefix.unwrap_or(ip)
}

/// Why [`ConnectionCaps`] refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapExceeded {
    /// The address has its most connections open.
    Ip,
    /// The address's IPv6 /64 has its most connections open.
    Prefix,
}

#[derive(Debug, Default)]
struct Open {
    per_ip: HashMap<IpAddr, usize>,
    per_prefix: HashMap<IpAddr, usize>,
}

/// Counts open connections per peer IP and per IPv6 /64; a [`ConnectionSlot`] holds one
/// until dropped. The tables hold only sources with a connection open, so they are as large
/// as the connections at most.
#[derive(Debug, Clone)]
pub struct ConnectionCaps {
    per_ip: usize,
    per_prefix: usize,
    open: Arc<Mutex<Open>>,
}

/// One open connection's place in [`ConnectionCaps`]; released on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    ip: IpAddr,
    prefix: Option<IpAddr>,
    open: Arc<Mutex<Open>>,
}

fn release(table: &mut HashMap<IpAddr, usize>, key: IpAddr) {
    if let Some(n) = table.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            table.remove(&key);
        }
    }
}

impl ConnectionCaps {
    /// At most `per_ip` connections at once from one address, and
    /// [`MAX_CONNECTIONS_PER_PREFIX`] (or `per_ip`, when larger) from one IPv6 /64.
    pub fn new(per_ip: usize) -> ConnectionCaps {
        ConnectionCaps::with_prefix(per_ip, MAX_CONNECTIONS_PER_PREFIX.max(per_ip))
    }

    /// At most `per_ip` connections at once from one address and `per_prefix` from one IPv6
    /// /64.
    pub fn with_prefix(per_ip: usize, per_prefix: usize) -> ConnectionCaps {
        ConnectionCaps { per_ip, per_prefix, open: Arc::default() }
    }

    /// A slot for a connection from `ip`, or which cap it would pass.
    ///
    /// # Errors
    /// [`CapExceeded`].
    pub fn acquire(&self, ip: IpAddr) -> Result<ConnectionSlot, CapExceeded> {
        let (ip, prefix) = keys(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.per_ip.get(&ip).is_some_and(|&n| n >= self.per_ip) {
            return Err(CapExceeded::Ip);
        }
        if let Some(p) = prefix
            && open.per_prefix.get(&p).is_some_and(|&n| n >= self.per_prefix)
        {
            return Err(CapExceeded::Prefix);
        }
        *open.per_ip.entry(ip).or_insert(0) += 1;
        if let Some(p) = prefix {
            *open.per_prefix.entry(p).or_insert(0) += 1;
        }
        Ok(ConnectionSlot { ip, prefix, open: Arc::clone(&self.open) })
    }

    /// A slot for a connection from `ip`, or `None` when a cap is reached.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<ConnectionSlot> {
        self.acquire(ip).ok()
    }

    /// Connections open from `ip` (an IPv4-mapped address counted as its IPv4 address).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.per_ip.get(&ip.to_canonical()).copied().unwrap_or(0)
    }

    /// Connections open from the IPv6 /64 of `ip` (0 for an IPv4 address).
    pub fn open_from_prefix(&self, ip: IpAddr) -> usize {
        let Some(p) = keys(ip).1 else { return 0 };
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.per_prefix.get(&p).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        release(&mut open.per_ip, self.ip);
        if let Some(p) = self.prefix {
            release(&mut open.per_prefix, p);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cap_at_the_limit_and_one_past_and_release() {
        let caps = ConnectionCaps::new(MAX_CONNECTIONS_PER_IP);
        let a = ip("192.0.2.1");
        let slots: Vec<_> =
            (0..MAX_CONNECTIONS_PER_IP).map(|_| caps.try_acquire(a).unwrap()).collect();
        assert!(caps.try_acquire(a).is_none());
        assert!(caps.try_acquire(ip("192.0.2.2")).is_some());
        drop(slots);
        assert_eq!(caps.open_from(a), 0);
        assert!(caps.try_acquire(a).is_some());
    }

    #[test]
    fn one_ipv6_64_is_capped_whatever_its_addresses() {
        let caps = ConnectionCaps::with_prefix(2, 3);
        // Three addresses of one /64: the third connection fills the prefix.
        let held: Vec<_> = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"]
            .iter()
            .map(|s| caps.acquire(ip(s)).unwrap())
            .collect();
        assert_eq!(caps.acquire(ip("2001:db8:1:2::77")).unwrap_err(), CapExceeded::Prefix);
        assert_eq!(caps.open_from_prefix(ip("2001:db8:1:2::abcd")), 3);
        // Another /64 has its own count; an address is still capped alone.
        let other = ip("2001:db8:1:3::1");
        let o = [caps.acquire(other).unwrap(), caps.acquire(other).unwrap()];
        assert_eq!(caps.acquire(other).unwrap_err(), CapExceeded::Ip);
        drop(held);
        assert_eq!(caps.open_from_prefix(ip("2001:db8:1:2::1")), 0);
        assert!(caps.acquire(ip("2001:db8:1:2::77")).is_ok());
        drop(o);
    }

    #[test]
    fn an_ipv4_mapped_address_counts_as_its_ipv4_address() {
        let caps = ConnectionCaps::with_prefix(2, 100);
        let v4 = ip("192.0.2.7");
        let mapped = ip("::ffff:192.0.2.7");
        let a = caps.acquire(v4).unwrap();
        let b = caps.acquire(mapped).unwrap();
        assert_eq!(caps.acquire(v4).unwrap_err(), CapExceeded::Ip);
        assert_eq!(caps.acquire(mapped).unwrap_err(), CapExceeded::Ip);
        assert_eq!(caps.open_from(mapped), 2);
        // Mapped IPv4 addresses are not one IPv6 /64.
        assert_eq!(caps.open_from_prefix(mapped), 0);
        let c = caps.acquire(ip("::ffff:192.0.2.8")).unwrap();
        drop((a, b, c));
        assert_eq!(caps.open_from(v4), 0);
    }

    #[test]
    fn the_source_is_the_ipv4_address_or_the_ipv6_64() {
        assert_eq!(source_of(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(source_of(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(source_of(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(source_of(ip("::1")), ip("::"));
    }
}
