//! Shared helpers of the store's integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use dime_core::crypto::{Argon2Params, default_provider};
use dime_core::{Mailbox, Secret};
use dime_signet::OrgKeys;
use dime_store::{Created, NewAccount, Recovery, Store, StoreConfig, Timestamp};
use std::path::Path;

/// Cheapest Argon2id parameters the bounds accept: tests stay fast.
pub const FAST: Argon2Params = Argon2Params { m_kib: Argon2Params::MIN_M_KIB, t: 1, p: 1 };
pub const PEPPER: [u8; 32] = [0x5a; 32];
pub const T0: Timestamp = Timestamp(1_700_000_000);

pub fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        data_dir: dir.join("data"),
        vault_path: dir.join("vault").join("vault.redb"),
        pepper: Secret::new(PEPPER.to_vec()),
        argon2: FAST,
        idle_timeout_secs: 900,
    }
}

pub fn open(dir: &Path) -> Store {
    Store::open(config(dir), default_provider()).unwrap()
}

pub fn org(seed: u64) -> OrgKeys {
    OrgKeys::generate(&mut dime_testkit::seeded_rng(seed))
}

pub fn mailbox(s: &str) -> Mailbox {
    Mailbox::parse(s).unwrap()
}

pub fn create(
    store: &Store,
    org: &OrgKeys,
    addr: &Mailbox,
    password: &[u8],
    recovery: Recovery,
) -> Created {
    let mut rng = dime_testkit::seeded_rng(addr.to_string().len() as u64 + password.len() as u64);
    store
        .create_account(
            &mut rng,
            org,
            &NewAccount { address: addr, password, recovery, quota_bytes: 1 << 30 },
            T0,
        )
        .unwrap()
}

/// Every file under `dir`, recursively.
pub fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest)
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}
