//! Change notices per account (`spec/dmap.md` §5.4): every write to an account's mailboxes
//! (a delivery, an APPEND, a flag change, an expunge, a move) bumps the account's counter, and
//! every session of that account waiting in IDLE wakes and compares its mailbox with the store.
//! Only the counter crosses: what changed is read from the store by each session with its own
//! keys.

use dime_store::AccountId;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// The change counters of every account with a session watching.
#[derive(Debug, Default)]
pub struct Changes {
    accounts: Mutex<HashMap<AccountId, watch::Sender<u64>>>,
}

impl Changes {
    /// A receiver that sees each later change of `account`'s mailboxes.
    pub fn watch(&self, account: AccountId) -> watch::Receiver<u64> {
        let mut map = self.accounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(account).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    /// Tells every session of `account` that its mailboxes changed. Accounts nobody watches
    /// any more are forgotten here.
    pub fn changed(&self, account: AccountId) {
        let mut map = self.accounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tx) = map.get(&account) {
            if tx.receiver_count() == 0 {
                map.remove(&account);
            } else {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    /// How many accounts are watched (for tests and metrics).
    pub fn watched(&self) -> usize {
        self.accounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_wakes_every_watcher_of_the_account_only() {
        let c = Changes::default();
        let a = AccountId([1; 16]);
        let mut w1 = c.watch(a);
        let mut w2 = c.watch(a);
        let mut other = c.watch(AccountId([2; 16]));
        c.changed(a);
        assert!(w1.has_changed().unwrap_or(false));
        assert!(w2.has_changed().unwrap_or(false));
        assert!(!other.has_changed().unwrap_or(true));
        w1.mark_unchanged();
        w2.mark_unchanged();
        other.mark_unchanged();
        drop((w1, w2));
        c.changed(a);
        assert_eq!(c.watched(), 1);
    }
}
