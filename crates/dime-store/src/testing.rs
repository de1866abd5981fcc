//! Shared set-up for the unit tests.
#![allow(clippy::unwrap_used)]

use crate::{Accounts, NewAccount, Recovery, Store, StoreConfig, Timestamp};
use dime_core::crypto::{Argon2Params, default_provider};
use dime_core::{CryptoRngCore, Mailbox, Secret};
use std::path::Path;

/// A store in `dir` with the cheapest Argon2id parameters.
pub(crate) fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        data_dir: dir.join("data"),
        vault_path: dir.join("vault.redb"),
        pepper: Secret::new(vec![7; 32]),
        argon2: Argon2Params { m_kib: Argon2Params::MIN_M_KIB, t: 1, p: 1 },
        idle_timeout_secs: 900,
    }
}

/// Opens [`config`]'s store.
pub(crate) fn open_store(dir: &Path) -> Store {
    Store::open(config(dir), default_provider()).unwrap()
}

/// Whether any file under `dir` holds `needle`.
pub(crate) fn any_file_contains(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let path = e.unwrap().path();
        if path.is_dir() {
            any_file_contains(&path, needle)
        } else {
            std::fs::read(&path).unwrap().windows(needle.len()).any(|w| w == needle)
        }
    })
}

/// Creates `alice@example.org` (password `pw`, no recovery, 1 MiB) in `store`, her user signet
/// signed by an organisation made from `rng`.
pub(crate) fn add_alice(store: &Store, rng: &mut dyn CryptoRngCore, now: Timestamp) -> Mailbox {
    let org = dime_signet::OrgKeys::generate(rng);
    let alice = Mailbox::parse("alice@example.org").unwrap();
    let new = NewAccount {
        address: &alice,
        password: b"pw",
        recovery: Recovery::None,
        quota_bytes: 1 << 20,
    };
    store.create_account(rng, &org, &new, now).unwrap();
    alice
}
