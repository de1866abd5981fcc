//! Fuzzes opening a store whose data directory holds an arbitrary delivery log
//! (`<data>/deliveries.log`, `spec/storage.md` §4.1): the scan and the replay run exactly as at
//! a real open ([`Store::open_with_fs`]), on an in-memory [`PowerCutFs`], with the insecure
//! provider and the cheapest Argon2id parameters.
//!
//! Every iteration starts from the same files: a store with one account (made once, its files
//! copied into a fresh file system), plus the log written from the input. Input: byte 0 `0xff`
//! writes the rest as the log, raw. Otherwise the rest is a list of records, each one octet of
//! flags, one of envelope length, then the envelope's octets; the target encodes each record
//! validly (magic `DLG1`, consecutive sequence numbers from 1, the account, a time, the blob
//! digest, the length and the header checksum) and then, as the flags say, breaks it: bit 0
//! the magic, bit 1 the checksum, bit 2 the sequence, bit 3 the digest, bit 4 another account,
//! bit 5 a cut envelope (it ends the log), bit 6 zeros after it (the file's zero-filled
//! growth), bit 7 an APPEND's record (magic `DLA1`, the octets its payload, which the replay
//! decodes). Byte 0 sets the first sequence number (0 to 3).
//!
//! Properties: no input panics; opening succeeds or gives a `StoreError`; an open store
//! replays no more deliveries than the log holds valid records above the store's mark.
#![no_main]

use dime_core::Secret;
use dime_core::crypto::{Argon2Params, CryptoProvider};
use dime_signet::OrgKeys;
use dime_store::{
    AccountId, Accounts, Deliveries, NewAccount, PowerCutFs, Recovery, Store, StoreConfig, StoreFs,
    Timestamp,
};
use dime_testkit::insecure_provider;
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const ROOT: &str = "/fuzz";

fn config() -> StoreConfig {
    StoreConfig {
        data_dir: Path::new(ROOT).join("data"),
        vault_path: Path::new(ROOT).join("vault").join("vault.redb"),
        pepper: Secret::new(vec![7; 32]),
        argon2: Argon2Params { m_kib: Argon2Params::MIN_M_KIB, t: 1, p: 1 },
        idle_timeout_secs: 900,
    }
}

/// The template: its account, and every file of its store with its bytes.
struct Template {
    account: AccountId,
    files: Vec<(PathBuf, Vec<u8>)>,
}

fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| {
        let fs = PowerCutFs::new();
        let store = Store::open_with_fs(config(), insecure_provider(), &fs).expect("template");
        let mut rng = dime_testkit::seeded_rng(7);
        let org = OrgKeys::generate(&mut rng);
        let address = dime_core::Mailbox::parse("alice@example.org").expect("constant");
        let created = store
            .create_account(
                &mut rng,
                &org,
                &NewAccount {
                    address: &address,
                    password: b"fuzz password",
                    recovery: Recovery::None,
                    quota_bytes: 1 << 20,
                },
                Timestamp(1),
            )
            .expect("template account");
        drop(store);
        let c = config();
        let files = [c.data_dir.join("store.redb"), c.vault_path.clone()]
            .into_iter()
            .map(|p| {
                let bytes = fs.contents(&p).expect("template file");
                (p, bytes)
            })
            .collect();
        Template { account: created.account, files }
    })
}

fn write(fs: &PowerCutFs, path: &Path, bytes: &[u8]) {
    let f = fs.open(path).expect("in-memory open");
    f.write_all_at(bytes, 0).expect("in-memory write");
    f.sync_all().expect("in-memory sync");
}

fn checksum16(p: &CryptoProvider, parts: &[&[u8]]) -> [u8; 16] {
    let d = p.hash.sha512(parts);
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// The log the input describes, and how many of its records are valid (an upper bound on
/// what an open may replay).
fn log_of(p: &CryptoProvider, account: AccountId, data: &[u8]) -> (Vec<u8>, u64) {
    let (&first, mut rest) = data.split_first().unwrap_or((&0, &[]));
    if first == 0xff {
        return (rest.to_vec(), u64::MAX);
    }
    let mut seq = u64::from(first % 4);
    let mut log = Vec::new();
    let mut valid = 0;
    let mut broken = false;
    while let [flags, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (envelope, tail) = tail.split_at(n);
        rest = tail;
        let start = log.len();
        // Bit 7: an APPEND's record (`DLA1`), its payload the octets as given.
        let magic = match (flags & 1, flags & 128) {
            (0, 0) => b"DLG1",
            (0, _) => b"DLA1",
            _ => b"DLG2",
        };
        log.extend_from_slice(magic);
        let s = if flags & 4 == 0 { seq } else { seq.wrapping_add(2) };
        log.extend_from_slice(&s.to_be_bytes());
        let a = if flags & 16 == 0 { account } else { AccountId([flags & 0xe0; 16]) };
        log.extend_from_slice(&a.0);
        log.extend_from_slice(&u64::from(*len).to_be_bytes());
        let mut digest = checksum16(p, &[envelope]);
        if flags & 8 != 0 {
            digest[0] ^= 1;
        }
        log.extend_from_slice(&digest);
        log.extend_from_slice(&(envelope.len() as u32).to_be_bytes());
        let mut sum = checksum16(p, &[b"dime-store log record", &log[start..]]);
        if flags & 2 != 0 {
            sum[15] ^= 0x80;
        }
        log.extend_from_slice(&sum);
        // A sequence jump breaks the chain only after the first record (the scan takes the
        // first record's number as it comes).
        let jump = flags & 4 != 0 && start > 0;
        // Half of an empty envelope is all of it: not a cut.
        let cut = flags & 32 != 0 && !envelope.is_empty();
        if flags & 0x0b == 0 && !jump && !cut && !broken {
            valid += 1;
        } else {
            broken = true;
        }
        seq = s.wrapping_add(1);
        if flags & 32 != 0 {
            log.extend_from_slice(&envelope[..envelope.len() / 2]);
            break;
        }
        log.extend_from_slice(envelope);
        if flags & 64 != 0 {
            log.extend_from_slice(&[0; 80]);
        }
    }
    (log, valid)
}

fuzz_target!(|data: &[u8]| {
    let p = insecure_provider();
    let t = template();
    let fs = PowerCutFs::new();
    let c = config();
    for dir in [Path::new(ROOT), &c.data_dir, c.vault_path.parent().expect("has a parent")] {
        fs.create_dir(dir).expect("in-memory dir");
    }
    for (path, bytes) in &t.files {
        write(&fs, path, bytes);
    }
    let (log, valid) = log_of(p, t.account, data);
    write(&fs, &c.data_dir.join("deliveries.log"), &log);
    for dir in [Path::new("/"), Path::new(ROOT), &c.data_dir, c.vault_path.parent().expect("dir")] {
        fs.sync_dir(dir).expect("in-memory sync");
    }
    if let Ok(store) = Store::open_with_fs(c, p, &fs) {
        assert!(store.replayed_deliveries() as u64 <= valid, "replayed more than the log holds");
    }
});
