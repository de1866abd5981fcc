//! Fuzzes importing an account archive (`spec/storage.md` §8, [`Store::import`]) into a store
//! opened on an in-memory [`PowerCutFs`], with the insecure provider (its AEAD round-trips, so
//! a body sealed here opens) and the cheapest Argon2id parameters.
//!
//! The template, made once: a store with one account holding two messages, exported with the
//! archive password; its body is opened again here (the archive key as the spec derives it) so
//! that inputs can start from a real body. Every iteration imports into a fresh copy of an
//! empty store. Input: byte 0 picks the mode, the rest is its input:
//! - 0: the rest is the whole archive, raw (the header and the outer seal);
//! - 1: the rest is the body, sealed here under a valid version 2 header;
//! - 2: the template's body (version 2), edited by the rest as triples (u16 offset modulo the
//!   length, one octet XORed in); a last odd octet cuts the body to that fraction of its
//!   length;
//! - 3: the rest is the body, sealed here under a valid version 1 header (no trailer).
//!
//! Properties: no input panics; an import succeeds or gives an `ArchiveError`.
#![no_main]

use dime_core::Secret;
use dime_core::crypto::{AEAD_NONCE_LEN, AeadKey, Argon2Params, CryptoProvider};
use dime_signet::OrgKeys;
use dime_store::{
    Accounts, Archive, Deliveries, NewAccount, PowerCutFs, Recovery, Store, StoreConfig, StoreFs,
    Timestamp,
};
use dime_testkit::insecure_provider;
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const ROOT: &str = "/fuzz";
const ARCHIVE_PASSWORD: &[u8] = b"archive password";
/// The version this store writes (2: the signet history and former addresses after the
/// records) and the one it still reads (1).
const MAGIC: &[u8] = b"DIME-STORE-ARCHIVE\x00\x02";
const MAGIC_V1: &[u8] = b"DIME-STORE-ARCHIVE\x00\x01";
const PARAMS: Argon2Params = Argon2Params { m_kib: Argon2Params::MIN_M_KIB, t: 1, p: 1 };

fn config() -> StoreConfig {
    StoreConfig {
        data_dir: Path::new(ROOT).join("data"),
        vault_path: Path::new(ROOT).join("vault").join("vault.redb"),
        pepper: Secret::new(vec![7; 32]),
        argon2: PARAMS,
        idle_timeout_secs: 900,
    }
}

struct Template {
    /// The files of an empty store.
    empty: Vec<(PathBuf, Vec<u8>)>,
    /// The body of a real archive.
    body: Vec<u8>,
}

fn files(fs: &PowerCutFs) -> Vec<(PathBuf, Vec<u8>)> {
    let c = config();
    [c.data_dir.join("store.redb"), c.vault_path.clone()]
        .into_iter()
        .map(|p| {
            let bytes = fs.contents(&p).expect("template file");
            (p, bytes)
        })
        .collect()
}

/// The archive key of `spec/storage.md` §8: Argon2id(password, salt), then HKDF.
fn archive_key(p: &CryptoProvider, salt: &[u8]) -> AeadKey {
    let mut stretched = [0u8; 32];
    p.password_kdf.argon2id(ARCHIVE_PASSWORD, salt, &PARAMS, &mut stretched).expect("kdf");
    let mut key = [0u8; 32];
    p.kdf
        .hkdf_sha512(b"dime-store archive", &stretched, b"dime-store archive key", &mut key)
        .expect("hkdf");
    AeadKey::from_bytes(key)
}

fn header(magic: &[u8], salt: &[u8]) -> Vec<u8> {
    let mut h = magic.to_vec();
    for v in [PARAMS.m_kib, PARAMS.t, PARAMS.p] {
        h.extend_from_slice(&v.to_be_bytes());
    }
    h.extend_from_slice(salt);
    h
}

/// An archive of `body`, sealed under a valid header.
fn archive_of(p: &CryptoProvider, magic: &[u8], body: &[u8]) -> Vec<u8> {
    let salt = [3u8; 16];
    let hdr = header(magic, &salt);
    let nonce = [5u8; AEAD_NONCE_LEN];
    let mut sealed = body.to_vec();
    p.aead.seal(&archive_key(p, &salt), &nonce, &hdr, &mut sealed);
    let mut out = hdr;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| {
        let p = insecure_provider();
        let empty_fs = PowerCutFs::new();
        drop(Store::open_with_fs(config(), p, &empty_fs).expect("empty store"));
        let fs = PowerCutFs::new();
        let store = Store::open_with_fs(config(), p, &fs).expect("template store");
        let mut rng = dime_testkit::seeded_rng(7);
        let org = OrgKeys::generate(&mut rng);
        let address = dime_core::Mailbox::parse("alice@example.org").expect("constant");
        let new = NewAccount {
            address: &address,
            password: b"pw",
            recovery: Recovery::None,
            quota_bytes: 1 << 20,
        };
        store.create_account(&mut rng, &org, &new, Timestamp(1)).expect("account");
        for i in 0..2u8 {
            store.deliver(&address, &[i; 64], Timestamp(2)).expect("delivery");
        }
        let mut session = store.login(&address, b"pw", Timestamp(3)).expect("login");
        let archive =
            store.export(&mut rng, &mut session, ARCHIVE_PASSWORD, Timestamp(3)).expect("export");
        // Open the body again, as an importer does.
        let salt = &archive[MAGIC.len() + 12..MAGIC.len() + 28];
        let hdr = header(MAGIC, salt);
        let sealed = &archive[hdr.len()..];
        let (nonce, ct) = sealed.split_at(AEAD_NONCE_LEN);
        let mut body = ct.to_vec();
        p.aead
            .open(&archive_key(p, salt), nonce.try_into().expect("nonce"), &hdr, &mut body)
            .expect("the template's body opens");
        Template { empty: files(&empty_fs), body }
    })
}

fuzz_target!(|data: &[u8]| {
    let p = insecure_provider();
    let t = template();
    let (&mode, rest) = data.split_first().unwrap_or((&0, &[]));
    let archive = match mode % 4 {
        0 => rest.to_vec(),
        1 => archive_of(p, MAGIC, rest),
        3 => archive_of(p, MAGIC_V1, rest),
        _ => {
            let mut body = t.body.clone();
            let mut edits = rest.chunks_exact(3);
            for e in edits.by_ref() {
                let at = usize::from(u16::from_be_bytes([e[0], e[1]])) % body.len();
                body[at] ^= e[2];
            }
            if let [cut] = edits.remainder() {
                body.truncate(body.len() * usize::from(*cut) / 256);
            }
            archive_of(p, MAGIC, &body)
        }
    };
    let fs = PowerCutFs::new();
    let c = config();
    for dir in [Path::new(ROOT), &c.data_dir, c.vault_path.parent().expect("has a parent")] {
        fs.create_dir(dir).expect("in-memory dir");
    }
    for (path, bytes) in &t.empty {
        let f = fs.open(path).expect("in-memory open");
        f.write_all_at(bytes, 0).expect("in-memory write");
        f.sync_all().expect("in-memory sync");
    }
    for dir in [Path::new("/"), Path::new(ROOT), &c.data_dir, c.vault_path.parent().expect("dir")] {
        fs.sync_dir(dir).expect("in-memory sync");
    }
    let store = Store::open_with_fs(config(), p, &fs).expect("a copy of the empty store opens");
    let mut rng = dime_testkit::seeded_rng(9);
    let _ = store.import(&mut rng, &archive, ARCHIVE_PASSWORD, b"new password", Timestamp(4));
});
