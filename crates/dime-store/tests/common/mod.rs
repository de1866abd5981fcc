//! Shared helpers of the store's integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use dime_core::crypto::{Argon2Params, default_provider};
use dime_core::{Mailbox, Secret};
use dime_signet::OrgKeys;
use dime_store::Accounts;
use dime_store::{AccountId, Created, NewAccount, Recovery, Store, StoreConfig, Timestamp};
use std::path::Path;

pub mod after_crash;

/// Cheapest Argon2id parameters the bounds accept: tests stay fast.
pub const FAST: Argon2Params = Argon2Params { m_kib: Argon2Params::MIN_M_KIB, t: 1, p: 1 };
pub const PEPPER: [u8; 32] = [0x5a; 32];
pub const T0: Timestamp = Timestamp(1_700_000_000);
/// The account that queues the outbound entries of the tests.
#[allow(dead_code)]
pub const AUTHOR: AccountId = AccountId([0x5a; 16]);

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

/// The other three actors of a real envelope (author, origin, destination) with fixed keys.
pub struct Sender {
    pub author: (dime_core::crypto::Ed25519Seed, dime_envelope::ActorSecret),
    pub origin: (dime_core::crypto::Ed25519Seed, dime_envelope::ActorSecret),
    pub dest: dime_envelope::ActorSecret,
}

impl Sender {
    pub fn new() -> Sender {
        use dime_core::crypto::{Ed25519Seed, X25519Secret};
        let p = default_provider();
        let s = |n: u8| dime_envelope::ActorSecret::new(p, X25519Secret::from_bytes([n; 32]));
        Sender {
            author: (Ed25519Seed::from_bytes([101; 32]), s(1)),
            origin: (Ed25519Seed::from_bytes([102; 32]), s(2)),
            dest: s(3),
        }
    }

    pub fn author_key(&self) -> dime_core::crypto::Ed25519PublicKey {
        default_provider().signature.public_key(&self.author.0)
    }

    pub fn origin_key(&self) -> dime_core::crypto::Ed25519PublicKey {
        default_provider().signature.public_key(&self.origin.0)
    }

    /// A real envelope (origin-signed) to `to`, sealed to its current signet's key, whose
    /// subject and body carry `text`.
    pub fn seal(&self, store: &Store, to: &Mailbox, text: &str, seed: u64) -> Vec<u8> {
        self.seal_body(store, to, text, text.as_bytes(), seed)
    }

    /// A real envelope (origin-signed) to `to`, sealed to its current signet's key, with this
    /// subject and a `text/plain` display part holding `body`.
    pub fn seal_body(
        &self,
        store: &Store,
        to: &Mailbox,
        subject: &str,
        body: &[u8],
        seed: u64,
    ) -> Vec<u8> {
        use dime_envelope::*;
        let p = default_provider();
        let keys = |seed: &dime_core::crypto::Ed25519Seed, enc: &ActorSecret| ActorKeys {
            encryption: *enc.public(),
            signing: p.signature.public_key(seed),
        };
        let (_, signet) = store.signet(to).unwrap();
        let addressing = Addressing {
            author: Mailbox::parse("sender@example.com").unwrap(),
            author_keys: keys(&self.author.0, &self.author.1),
            origin: dime_core::Domain::parse("example.com").unwrap(),
            origin_keys: keys(&self.origin.0, &self.origin.1),
            destination: to.domain().clone(),
            destination_keys: ActorKeys {
                encryption: *self.dest.public(),
                signing: p.signature.public_key(&self.origin.0),
            },
            recipient: to.clone(),
            recipient_keys: ActorKeys::from_signet(&signet).unwrap(),
        };
        let m = Message {
            common_headers: Headers::from_pairs([("Subject", subject)]).unwrap(),
            other_headers: Headers::from_pairs([("X-Test", "1")]).unwrap(),
            parts: vec![Part {
                kind: PartKind::Display,
                info: PartInfo { content_type: "text/plain".into(), filename: String::new() },
                data: body.to_vec(),
            }],
        };
        let mut rng = dime_testkit::seeded_rng(seed);
        let mut sealed =
            seal_message(p, &mut rng, &addressing, Signer::Author(&self.author.0), &m).unwrap();
        let v = open_as_origin(p, &sealed[..], &self.origin.1)
            .unwrap()
            .verify(p, &self.author_key())
            .unwrap();
        sealed.extend(
            v.origin_signature_chunk(p, &mut rng, &self.origin.0, &addressing.origin, T0.0)
                .unwrap(),
        );
        sealed
    }

    /// Verifies an opened message and returns its display text.
    pub fn verify(&self, o: dime_store::Opened) -> String {
        let v = o
            .message
            .verify(default_provider(), &self.author_key(), Some(&self.origin_key()))
            .unwrap();
        String::from_utf8(v.view().message.parts[0].data.clone()).unwrap()
    }
}
