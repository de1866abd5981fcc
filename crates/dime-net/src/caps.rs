//! Per-IP connection caps (`spec/dmtp.md` §8).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Default connections at once from one IP address.
pub const MAX_CONNECTIONS_PER_IP: usize = 16;

/// Counts open connections per peer IP; a [`ConnectionSlot`] holds one until dropped.
#[derive(Debug, Clone)]
pub struct ConnectionCaps {
    per_ip: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection's place in [`ConnectionCaps`]; released on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ConnectionCaps {
    /// At most `per_ip` connections at once from one address.
    pub fn new(per_ip: usize) -> ConnectionCaps {
        ConnectionCaps { per_ip, open: Arc::default() }
    }

    /// A slot for a connection from `ip`, or `None` when `ip` has `per_ip` open already.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.per_ip {
            return None;
        }
        *n += 1;
        Some(ConnectionSlot { ip, open: Arc::clone(&self.open) })
    }

    /// Connections open from `ip`.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_at_the_limit_and_one_past_and_release() {
        let caps = ConnectionCaps::new(MAX_CONNECTIONS_PER_IP);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let slots: Vec<_> =
            (0..MAX_CONNECTIONS_PER_IP).map(|_| caps.try_acquire(ip).unwrap()).collect();
        assert!(caps.try_acquire(ip).is_none());
        assert!(caps.try_acquire("192.0.2.2".parse().unwrap()).is_some());
        drop(slots);
        assert_eq!(caps.open_from(ip), 0);
        assert!(caps.try_acquire(ip).is_some());
    }
}
