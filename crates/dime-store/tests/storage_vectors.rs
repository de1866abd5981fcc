//! The archive vectors of `spec/storage.md` §8: `spec/vectors/storage/archive-2.json` (the
//! version the store writes) and `archive-1.json` (version 1, still imported).
//!
//! A deterministic account (seeded randomness, fixed times) with two key generations, two
//! mailboxes, two real envelopes (one copied, one flagged), a re-wrap overlay, a read overlay
//! and a summary is exported under a known password with the cheapest Argon2id parameters the
//! store accepts. The test opens that archive the way `spec/storage.md` §6 and §8 say, with
//! the bare primitives (Argon2id, HKDF-SHA-512, XChaCha20-Poly1305, SHA-512) and none of the
//! store's own codecs, decodes every record and the version 2 trailer (signet history, former
//! addresses), imports the archive into a second store and checks that what that store shows
//! (quota, mailboxes, flags, keyring, signet, directory history and former addresses, raw
//! records, opened mail) is what the decoding found. That account then moves: a second host
//! imports it under another address (`Archive::import_to`), which gives it a third key
//! generation, and exports it again; that archive, with two history signets and one former
//! address, is the version 2 vector: the archive with its password and the expected contents.
//!
//! Version 1: the committed `archive-1.json` (made before version 2) still opens by the spec,
//! renders exactly as committed, and imports with an empty history and no former address.
//!
//! `DIME_REGENERATE=1 cargo test -p dime-store --test storage_vectors` rewrites the committed
//! version 2 file; without it a difference fails the test. Nothing rewrites `archive-1.json`.
// This test, not the library, writes files: it regenerates the committed vector on request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use common::{FAST, Sender, T0, mailbox, open, org};
use dime_core::crypto::{AeadKey, Argon2Params, default_provider};
use dime_signet::EncryptionSecret;
use dime_store::{
    Accounts, Archive, ArchiveError, Deliveries, ImportTarget, MailboxId, Mailboxes, NewAccount,
    Recovery, Table, Timestamp, Uid,
};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const ADDRESS: &str = "alice@example.org";
/// The account's address after its move to a second host.
const MOVED: &str = "alice@example.net";
const ARCHIVE_PASSWORD: &[u8] = b"archive password 19";
const QUOTA: u64 = 1 << 20;

/// `spec/vectors/storage/archive-<version>.json`.
fn vector_path(version: u8) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../spec/vectors/storage/archive-{version}.json"))
}

fn at(secs: u64) -> Timestamp {
    Timestamp(T0.0 + secs)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|o| format!("{o:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The string value of the top-level `"name": "..."` of a vector file (no escapes in it).
fn string_field(json: &str, name: &str) -> String {
    let key = format!("\n  \"{name}\": \"");
    let start = json.find(&key).unwrap_or_else(|| panic!("no {name}")) + key.len();
    let len = json[start..].find('"').unwrap();
    let v = &json[start..start + len];
    assert!(!v.contains('\\'));
    v.to_string()
}

/// Builds the account and exports it. Every input is fixed, so the archive is too.
fn export(dir: &Path) -> Vec<u8> {
    let store = open(dir);
    let org = org(19);
    let alice = mailbox(ADDRESS);
    let mut rng = dime_testkit::seeded_rng(1912);
    let new = NewAccount {
        address: &alice,
        password: b"pw",
        recovery: Recovery::None,
        quota_bytes: QUOTA,
    };
    let a = store.create_account(&mut rng, &org, &new, T0).unwrap().account;
    let sender = Sender::new();
    let first = sender.seal_body(&store, &alice, "first", b"the first message", 1);
    store.deliver(&alice, &first, at(10)).unwrap();
    let mut s = store.login(&alice, b"pw", at(20)).unwrap();
    store.rotate_keys(&mut rng, &mut s, &org, at(30)).unwrap();
    let done = store.rewrap_slots(&mut rng, &mut s, 10, at(40), &mut |_| {}).unwrap();
    assert_eq!((done.done, done.failed), (1, 0));
    let second = sender.seal_body(&store, &alice, "second", b"the second message", 2);
    store.deliver(&alice, &second, at(50)).unwrap();
    let archive = store.create_mailbox(&mut rng, &mut s, "Archive", at(60)).unwrap();
    store.copy(a, MailboxId::INBOX, &[Uid(1)], archive).unwrap();
    store
        .set_flags(&mut rng, &mut s, MailboxId::INBOX, Uid(1), &["\\Seen", "\\Flagged"], at(70))
        .unwrap();
    let opened = store.open_message(&mut rng, &mut s, MailboxId::INBOX, Uid(2), at(80)).unwrap();
    assert_eq!(sender.verify(opened), "the second message");
    let sums = store
        .seal_summaries(&mut rng, &mut s, MailboxId::INBOX, &[(Uid(1), b"summary one")], at(90))
        .unwrap();
    assert_eq!(store.put_summaries(&sums).unwrap(), 1);
    store.export(&mut rng, &mut s, ARCHIVE_PASSWORD, at(100)).unwrap()
}

/// A second host (domain example.net, its own organisation) imports `archive` as [`MOVED`]
/// (`Archive::import_to`: a new key generation chained by custody, the archive's signet
/// joining the history, its address the former ones) and exports it again. Fixed inputs too.
fn move_and_export(archive: &[u8], dir: &Path) -> Vec<u8> {
    let store = open(dir);
    let org = org(20);
    let domain = dime_core::Domain::parse("example.net").unwrap();
    let moved = mailbox(MOVED);
    let target = ImportTarget { domain: &domain, org: &org, address: Some(&moved) };
    let mut rng = dime_testkit::seeded_rng(2020);
    let (_, address) =
        store.import_to(&mut rng, archive, ARCHIVE_PASSWORD, b"pw", &target, at(150)).unwrap();
    assert_eq!(address, moved);
    let mut s = store.login(&moved, b"pw", at(160)).unwrap();
    store.export(&mut rng, &mut s, ARCHIVE_PASSWORD, at(170)).unwrap()
}

/// A reader of the big-endian encodings of `spec/storage.md` §3.
struct R<'a>(&'a [u8]);

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(self.0.len() >= n, "truncated");
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take(8).try_into().unwrap())
    }
    fn bytes(&mut self) -> &'a [u8] {
        let n = self.u32() as usize;
        assert!(n <= 64 << 20);
        self.take(n)
    }
    fn end(&self) {
        assert!(self.0.is_empty(), "{} octets left over", self.0.len());
    }
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> [u8; 32] {
    let mut out = [0u8; 32];
    default_provider().kdf.hkdf_sha512(salt, ikm, &info.concat(), &mut out).unwrap();
    out
}

/// Opens `nonce (24) ‖ ciphertext ‖ tag (16)` with XChaCha20-Poly1305.
fn aead_open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    let (nonce, ct) = sealed.split_at_checked(24)?;
    let mut buf = ct.to_vec();
    let key = AeadKey::from_bytes(*key);
    default_provider().aead.open(&key, nonce.try_into().unwrap(), aad, &mut buf).ok()?;
    Some(buf)
}

/// Strips and checks a record's checksum (`spec/storage.md` §3).
fn record_body<'v>(table: u8, key: &[u8], value: &'v [u8]) -> &'v [u8] {
    let (body, sum) = value.split_at(value.len() - 16);
    let len = (key.len() as u64).to_be_bytes();
    let d = default_provider().hash.sha512(&[b"dime-store record", &[table], &len, key, body]);
    assert_eq!(sum, &d[..16], "checksum of a record of table {table}");
    body
}

struct KeyringEntry {
    generation: u32,
    seed: [u8; 32],
    x25519: [u8; 32],
}

struct MailboxRec {
    id: u32,
    name: String,
    uid_validity: u32,
    uid_next: u32,
    modseq: u64,
    count: u32,
}

struct EntryRec {
    mailbox: u32,
    uid: u32,
    message: u64,
    modseq: u64,
    flags: Option<String>,
}

struct MessageRec {
    number: u64,
    size: u64,
    arrival: u64,
    key_generation: u32,
    digest: [u8; 16],
    refs: Vec<(u32, u32)>,
}

/// The archive as `spec/storage.md` §8 reads it, every record decoded.
struct Opened {
    /// The archive version, the magic's last octet (1 or 2).
    version: u8,
    params: Argon2Params,
    salt: [u8; 16],
    stretched: [u8; 32],
    archive_key: [u8; 32],
    nonce: [u8; 24],
    account: [u8; 16],
    account_key: [u8; 32],
    address: String,
    generation: u32,
    signet: Vec<u8>,
    quota: u64,
    next_message: u64,
    next_mailbox: u32,
    key_generation: u32,
    records: Vec<(u8, Vec<u8>, Vec<u8>)>,
    /// Version 2's trailer: the earlier user signets, oldest first (empty in version 1).
    history: Vec<Vec<u8>>,
    /// Version 2's trailer: the former addresses, oldest first (empty in version 1).
    former: Vec<String>,
    keyring_key: [u8; 32],
    meta_key: [u8; 32],
    read_key: [u8; 32],
    keyring: Vec<KeyringEntry>,
    mailboxes: Vec<MailboxRec>,
    entries: Vec<EntryRec>,
    messages: Vec<MessageRec>,
    /// (message number, kind, the overlay's bytes; for a summary, its plaintext).
    overlays: Vec<(u64, u8, Vec<u8>)>,
    used: u64,
    count: u64,
}

/// The magic of version 2, the version the store writes (`spec/storage.md` §8.1).
const MAGIC: &[u8] = b"DIME-STORE-ARCHIVE\x00\x02";
/// The magic of version 1: no trailer.
const MAGIC_V1: &[u8] = b"DIME-STORE-ARCHIVE\x00\x01";
/// At most this many history signets and former addresses in the trailer (§8.2).
const MAX_HISTORY: u32 = 64;
const MAX_FORMER: u32 = 16;

/// Opens an archive from the spec alone: no code of `dime-store`.
fn open_by_spec(archive: &[u8], password: &[u8]) -> Option<Opened> {
    let p = default_provider();
    let mut r = R(archive);
    let magic = r.take(MAGIC.len());
    let version = match magic {
        m if m == MAGIC => 2,
        m if m == MAGIC_V1 => 1,
        m => panic!("not a dime store archive: {}", hex(m)),
    };
    let params = Argon2Params { m_kib: r.u32(), t: r.u32(), p: r.u32() };
    params.check().unwrap();
    let salt: [u8; 16] = r.take(16).try_into().unwrap();
    let header = &archive[..archive.len() - r.0.len()];
    assert_eq!(header.len(), 48);
    let sealed = r.0;
    let mut stretched = [0u8; 32];
    p.password_kdf.argon2id(password, &salt, &params, &mut stretched).unwrap();
    let archive_key = hkdf(b"dime-store archive", &stretched, &[b"dime-store archive key"]);
    let body = aead_open(&archive_key, header, sealed)?;
    let nonce: [u8; 24] = sealed[..24].try_into().unwrap();

    let mut r = R(&body);
    let account: [u8; 16] = r.take(16).try_into().unwrap();
    let account_key: [u8; 32] = r.take(32).try_into().unwrap();
    let address = String::from_utf8(r.bytes().to_vec()).unwrap();
    let generation = r.u32();
    let signet = r.bytes().to_vec();
    let quota = r.u64();
    let next_message = r.u64();
    let next_mailbox = r.u32();
    let key_generation = r.u32();
    let n = r.u32();
    let mut records = Vec::new();
    for _ in 0..n {
        let table = r.u8();
        let key = r.bytes().to_vec();
        let value = r.bytes().to_vec();
        records.push((table, key, value));
    }
    let (mut history, mut former) = (Vec::new(), Vec::new());
    if version == 2 {
        let n = r.u32();
        assert!(n <= MAX_HISTORY, "too long a signet history");
        for _ in 0..n {
            history.push(r.bytes().to_vec());
        }
        let m = r.u32();
        assert!(m <= MAX_FORMER, "too many former addresses");
        for _ in 0..m {
            former.push(String::from_utf8(r.bytes().to_vec()).unwrap());
        }
    }
    r.end();

    let sub = |purpose: &[u8]| hkdf(b"dime-store account", &account_key, &[purpose, &account]);
    let (keyring_key, meta_key, read_key) = (sub(b"keyring"), sub(b"meta"), sub(b"read"));
    let mut o = Opened {
        version,
        params,
        salt,
        stretched,
        archive_key,
        nonce,
        account,
        account_key,
        address,
        generation,
        signet,
        quota,
        next_message,
        next_mailbox,
        key_generation,
        records: Vec::new(),
        history,
        former,
        keyring_key,
        meta_key,
        read_key,
        keyring: Vec::new(),
        mailboxes: Vec::new(),
        entries: Vec::new(),
        messages: Vec::new(),
        overlays: Vec::new(),
        used: 0,
        count: 0,
    };
    let mut blobs = std::collections::BTreeMap::new();
    let mut last: Option<(u8, Vec<u8>)> = None;
    for (table, key, value) in &records {
        // In table order (keys 3, mailboxes 4, entries 5, messages 6, blobs 7, overlays 13),
        // each table's records in key order, every key under the account id.
        if let Some((t, k)) = &last {
            assert!((*t, k) < (*table, key), "records in order");
        }
        last = Some((*table, key.clone()));
        assert_eq!(&key[..16], &account, "every record is the account's");
        let rest = &key[16..];
        match table {
            3 => {
                assert_eq!(rest, [4], "the one key record is the keyring");
                let body = record_body(3, key, value);
                let plain = aead_open(&keyring_key, key, body).expect("keyring opens");
                let mut k = R(&plain);
                let n = k.u32();
                assert!((1..=4096).contains(&n));
                for _ in 0..n {
                    o.keyring.push(KeyringEntry {
                        generation: k.u32(),
                        seed: k.take(32).try_into().unwrap(),
                        x25519: k.take(32).try_into().unwrap(),
                    });
                }
                k.end();
            }
            // Beside a mailbox's record (`spec/storage.md` §5.2, §5.3): its tombstones (clear)
            // and its attributes (sealed under the meta key).
            4 if rest.len() == 5 && rest[4] == 1 => {
                let mut v = R(record_body(4, key, value));
                let _floor = v.u64();
                let n = v.u32();
                assert!(n as usize <= dime_store::MAX_TOMBSTONES);
                for _ in 0..n {
                    let (first, last, _modseq) = (v.u32(), v.u32(), v.u64());
                    assert!(first <= last);
                }
                v.end();
            }
            4 if rest.len() == 5 && rest[4] == 2 => {
                let aad = [&b"dime-store mailbox attributes"[..], &account, &rest[..4]].concat();
                let plain = aead_open(&meta_key, &aad, record_body(4, key, value))
                    .expect("mailbox attributes open");
                assert!(plain.len() == 3 && plain[0] == 1 && plain[1] <= 1 && plain[2] <= 7);
            }
            4 => {
                let id = u32::from_be_bytes(rest.try_into().unwrap());
                let mut m = R(record_body(4, key, value));
                let name = m.bytes();
                let aad = [&b"dime-store mailbox name"[..], &account, &id.to_be_bytes()].concat();
                let name = aead_open(&meta_key, &aad, name).expect("mailbox name opens");
                o.mailboxes.push(MailboxRec {
                    id,
                    name: String::from_utf8(name).unwrap(),
                    uid_validity: m.u32(),
                    uid_next: m.u32(),
                    modseq: m.u64(),
                    count: m.u32(),
                });
                m.end();
            }
            5 => {
                let mut k = R(rest);
                let (mailbox, uid) = (k.u32(), k.u32());
                k.end();
                let mut e = R(record_body(5, key, value));
                let message = e.u64();
                let modseq = e.u64();
                let sealed = e.bytes();
                e.end();
                let flags = (!sealed.is_empty()).then(|| {
                    let aad = [&b"dime-store flags"[..], &account, &message.to_be_bytes()].concat();
                    String::from_utf8(aead_open(&meta_key, &aad, sealed).expect("flags open"))
                        .unwrap()
                });
                o.entries.push(EntryRec { mailbox, uid, message, modseq, flags });
            }
            6 => {
                let number = u64::from_be_bytes(rest.try_into().unwrap());
                let mut m = R(record_body(6, key, value));
                let (size, arrival, key_generation) = (m.u64(), m.u64(), m.u32());
                let digest = m.take(16).try_into().unwrap();
                let n = m.u32();
                let refs = (0..n).map(|_| (m.u32(), m.u32())).collect();
                m.end();
                o.messages.push(MessageRec { number, size, arrival, key_generation, digest, refs });
            }
            7 => {
                let number = u64::from_be_bytes(rest.try_into().unwrap());
                o.used += value.len() as u64;
                o.count += 1;
                blobs.insert(number, value.clone());
            }
            13 => {
                let number = u64::from_be_bytes(rest[..8].try_into().unwrap());
                let kind = rest[8];
                assert_eq!(rest.len(), 9);
                let body = record_body(13, key, value);
                let bytes = if kind == 3 {
                    let aad =
                        [&b"dime-store summary"[..], &account, &number.to_be_bytes()].concat();
                    aead_open(&read_key, &aad, body).expect("summary opens")
                } else {
                    body.to_vec()
                };
                o.overlays.push((number, kind, bytes));
            }
            other => panic!("table {other} in an archive"),
        }
    }
    for m in &o.messages {
        let blob = &blobs[&m.number];
        assert_eq!(m.size, blob.len() as u64);
        assert_eq!(m.digest[..], p.hash.sha512(&[blob])[..16], "format 2 digest");
    }
    o.records = records;
    Some(o)
}

/// The vector file of archive `o` (opened by the spec from `archive`, under `password`). A
/// version 1 archive renders as `archive-1.json` was made: no `history`, no `former`.
fn render(archive: &[u8], password: &[u8], o: &Opened) -> String {
    let p = default_provider();
    let mut j = String::new();
    let w = &mut j;
    let name = |code: u8| {
        Table::ALL.into_iter().find(|t| t.code() == code).map(|t| t.name()).unwrap_or("?")
    };
    writeln!(w, "{{").unwrap();
    if o.version == 1 {
        writeln!(
            w,
            "  \"description\": \"An account exported by dime-store (spec/storage.md §8), with the archive password, the Argon2id parameters (the least the store accepts), the intermediate keys and the expected contents. Made by crates/dime-store/tests/storage_vectors.rs; checked from the spec alone by interop-tests/storage_check.py.\","
        )
        .unwrap();
    } else {
        writeln!(
            w,
            "  \"description\": \"An account exported by dime-store in archive version {} (spec/storage.md §8): rotated once, then moved (imported by a second host under a new address, with a new key generation), so its trailer holds two history signets and one former address. With the archive password, the Argon2id parameters (the least the store accepts), the intermediate keys and the expected contents. Made by crates/dime-store/tests/storage_vectors.rs; checked from the spec alone by interop-tests/storage_check.py.\",",
            o.version
        )
        .unwrap();
    }
    writeln!(w, "  \"archive_password\": \"{}\",", std::str::from_utf8(password).unwrap()).unwrap();
    writeln!(
        w,
        "  \"argon2id\": {{\"m_kib\": {}, \"t\": {}, \"p\": {}, \"salt\": \"{}\"}},",
        o.params.m_kib,
        o.params.t,
        o.params.p,
        hex(&o.salt)
    )
    .unwrap();
    writeln!(w, "  \"intermediate\": {{").unwrap();
    writeln!(w, "    \"header\": \"{}\",", hex(&archive[..48])).unwrap();
    writeln!(w, "    \"argon2id_output\": \"{}\",", hex(&o.stretched)).unwrap();
    writeln!(w, "    \"archive_key\": \"{}\",", hex(&o.archive_key)).unwrap();
    writeln!(w, "    \"nonce\": \"{}\",", hex(&o.nonce)).unwrap();
    writeln!(w, "    \"plaintext_len\": {},", archive.len() - 48 - 24 - 16).unwrap();
    writeln!(w, "    \"keyring_key\": \"{}\",", hex(&o.keyring_key)).unwrap();
    writeln!(w, "    \"meta_key\": \"{}\",", hex(&o.meta_key)).unwrap();
    writeln!(w, "    \"read_key\": \"{}\"", hex(&o.read_key)).unwrap();
    writeln!(w, "  }},").unwrap();
    writeln!(w, "  \"expected\": {{").unwrap();
    writeln!(w, "    \"account_id\": \"{}\",", hex(&o.account)).unwrap();
    writeln!(w, "    \"account_key\": \"{}\",", hex(&o.account_key)).unwrap();
    writeln!(w, "    \"address\": \"{}\",", o.address).unwrap();
    writeln!(w, "    \"generation\": {},", o.generation).unwrap();
    writeln!(w, "    \"signet\": \"{}\",", hex(&o.signet)).unwrap();
    if o.version >= 2 {
        let history: Vec<String> = o.history.iter().map(|h| format!("\"{}\"", hex(h))).collect();
        writeln!(w, "    \"history\": [{}],", history.join(", ")).unwrap();
        let former: Vec<String> = o.former.iter().map(|f| format!("\"{f}\"")).collect();
        writeln!(w, "    \"former\": [{}],", former.join(", ")).unwrap();
    }
    writeln!(w, "    \"quota\": {},", o.quota).unwrap();
    writeln!(w, "    \"next_message_number\": {},", o.next_message).unwrap();
    writeln!(w, "    \"next_mailbox_id\": {},", o.next_mailbox).unwrap();
    writeln!(w, "    \"key_generation\": {},", o.key_generation).unwrap();
    writeln!(w, "    \"used\": {},", o.used).unwrap();
    writeln!(w, "    \"message_count\": {},", o.count).unwrap();
    writeln!(w, "    \"keyring\": [").unwrap();
    for (i, k) in o.keyring.iter().enumerate() {
        let sign = p.signature.public_key(&dime_core::crypto::Ed25519Seed::from_bytes(k.seed));
        let x = p.key_agreement.public_key(&dime_core::crypto::X25519Secret::from_bytes(k.x25519));
        writeln!(
            w,
            "      {{\"generation\": {}, \"ed25519_seed\": \"{}\", \"ed25519_public\": \"{}\", \"x25519_secret\": \"{}\", \"x25519_public\": \"{}\"}}{}",
            k.generation,
            hex(&k.seed),
            hex(sign.as_bytes()),
            hex(&k.x25519),
            hex(x.as_bytes()),
            if i + 1 < o.keyring.len() { "," } else { "" }
        )
        .unwrap();
    }
    writeln!(w, "    ],").unwrap();
    writeln!(w, "    \"mailboxes\": [").unwrap();
    for (i, m) in o.mailboxes.iter().enumerate() {
        writeln!(
            w,
            "      {{\"id\": {}, \"name\": \"{}\", \"uid_validity\": {}, \"uid_next\": {}, \"highest_modseq\": {}, \"messages\": {}}}{}",
            m.id,
            m.name,
            m.uid_validity,
            m.uid_next,
            m.modseq,
            m.count,
            if i + 1 < o.mailboxes.len() { "," } else { "" }
        )
        .unwrap();
    }
    writeln!(w, "    ],").unwrap();
    writeln!(w, "    \"entries\": [").unwrap();
    for (i, e) in o.entries.iter().enumerate() {
        let flags = match &e.flags {
            None => "null".to_string(),
            Some(f) => format!("\"{}\"", f.replace('\\', "\\\\")),
        };
        writeln!(
            w,
            "      {{\"mailbox\": {}, \"uid\": {}, \"message\": {}, \"modseq\": {}, \"flags\": {}}}{}",
            e.mailbox,
            e.uid,
            e.message,
            e.modseq,
            flags,
            if i + 1 < o.entries.len() { "," } else { "" }
        )
        .unwrap();
    }
    writeln!(w, "    ],").unwrap();
    writeln!(w, "    \"messages\": [").unwrap();
    for (i, m) in o.messages.iter().enumerate() {
        let refs: Vec<String> = m.refs.iter().map(|(b, u)| format!("[{b}, {u}]")).collect();
        writeln!(
            w,
            "      {{\"number\": {}, \"size\": {}, \"arrival\": {}, \"key_generation\": {}, \"digest\": \"{}\", \"refs\": [{}]}}{}",
            m.number,
            m.size,
            m.arrival,
            m.key_generation,
            hex(&m.digest),
            refs.join(", "),
            if i + 1 < o.messages.len() { "," } else { "" }
        )
        .unwrap();
    }
    writeln!(w, "    ],").unwrap();
    writeln!(w, "    \"overlays\": [").unwrap();
    for (i, (n, kind, bytes)) in o.overlays.iter().enumerate() {
        let what = match kind {
            1 => "overlay",
            2 => "overlay",
            _ => "summary",
        };
        writeln!(
            w,
            "      {{\"message\": {n}, \"kind\": {kind}, \"{what}\": \"{}\"}}{}",
            hex(bytes),
            if i + 1 < o.overlays.len() { "," } else { "" }
        )
        .unwrap();
    }
    writeln!(w, "    ],").unwrap();
    writeln!(w, "    \"records\": [").unwrap();
    for (i, (t, k, v)) in o.records.iter().enumerate() {
        writeln!(
            w,
            "      {{\"table\": {t}, \"table_name\": \"{}\", \"key\": \"{}\", \"value\": \"{}\"}}{}",
            name(*t),
            hex(k),
            hex(v),
            if i + 1 < o.records.len() { "," } else { "" }
        )
        .unwrap();
    }
    writeln!(w, "    ]").unwrap();
    writeln!(w, "  }},").unwrap();
    writeln!(w, "  \"archive\": \"{}\"", hex(archive)).unwrap();
    writeln!(w, "}}").unwrap();
    j
}

/// Imports the archive into a fresh store and checks that it shows what the spec's decoding
/// found.
fn import_matches(archive: &[u8], password: &[u8], o: &Opened, dir: &Path) {
    let store = open(dir);
    let mut rng = dime_testkit::seeded_rng(7);
    let (a, address) = store.import(&mut rng, archive, password, b"new pw", at(200)).unwrap();
    assert_eq!(a.0, o.account);
    assert_eq!(address.to_string(), o.address);
    let q = store.quota(a).unwrap();
    assert_eq!((q.used, q.limit, q.messages), (o.used, o.quota, o.count));
    let (generation, signet) = store.signet(&address).unwrap();
    assert_eq!(generation, o.generation);
    assert_eq!(signet.as_bytes(), &o.signet[..]);
    // The directory record holds the trailer's history and former addresses, in its order
    // (version 1: none).
    let d = store.directory(&address).unwrap();
    let history: Vec<&[u8]> = d.history.iter().map(|h| h.as_bytes()).collect();
    let want: Vec<&[u8]> = o.history.iter().map(Vec::as_slice).collect();
    assert_eq!(history, want, "the store's signet history is the trailer's");
    let former: Vec<String> = d.former.iter().map(ToString::to_string).collect();
    assert_eq!(former, o.former, "the store's former addresses are the trailer's");
    assert_eq!((d.generation, d.signet.as_bytes()), (o.generation, &o.signet[..]));

    let mut s = store.login(&address, b"new pw", at(210)).unwrap();
    let ring: Vec<(u32, [u8; 32], [u8; 32])> = s
        .keyring()
        .map(|(g, k)| {
            let EncryptionSecret::X25519(x) = k.encryption_secret() else { panic!("v2 keys") };
            (g, *k.signing_seed().expose(), *x.expose())
        })
        .collect();
    let want: Vec<_> = o.keyring.iter().map(|k| (k.generation, k.seed, k.x25519)).collect();
    assert_eq!(ring, want, "the keyring the store opened is the one the spec's decoding found");
    assert_eq!(s.current_generation(), Some(o.key_generation));

    let boxes = store.mailboxes(&mut s, at(220)).unwrap();
    let got: Vec<_> = boxes
        .iter()
        .map(|b| (b.id.0, b.name.clone(), b.uid_validity, b.uid_next, b.highest_modseq, b.messages))
        .collect();
    let want: Vec<_> = o
        .mailboxes
        .iter()
        .map(|m| (m.id, m.name.clone(), m.uid_validity, m.uid_next, m.modseq, m.count))
        .collect();
    assert_eq!(got, want);
    for e in &o.entries {
        let flags = store.flags(&mut s, MailboxId(e.mailbox), Uid(e.uid), at(230)).unwrap();
        let want: Vec<String> = e
            .flags
            .as_deref()
            .map(|f| f.split(' ').map(str::to_owned).collect())
            .unwrap_or_default();
        assert_eq!(flags, want);
        let m = o.messages.iter().find(|m| m.number == e.message).unwrap();
        let listed = store.list(a, MailboxId(e.mailbox)).unwrap();
        let l = listed.iter().find(|l| l.uid.0 == e.uid).unwrap();
        assert_eq!(
            (l.modseq, l.size, l.arrival.0, l.key_generation),
            (e.modseq, m.size, m.arrival, m.key_generation)
        );
    }
    // Every record is stored as the archive carried it (this store is format 2, as was the
    // exporting one: no digest is rewritten).
    let mut stored = Vec::new();
    store
        .backend()
        .read(&mut |t| {
            stored.clear();
            for table in [
                Table::Keys,
                Table::Mailboxes,
                Table::Entries,
                Table::Messages,
                Table::Blobs,
                Table::Overlays,
            ] {
                let end = [&o.account[..], &[0xff; 32]].concat();
                for (k, v) in t.range(table, &o.account, &end, usize::MAX)? {
                    if table == Table::Keys && k != [&o.account[..], &[4]].concat() {
                        continue;
                    }
                    stored.push((table.code(), k, v));
                }
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(stored, o.records);
    // The mail opens with the imported keys: the first through its re-wrap overlay, the
    // second through its read overlay.
    let sender = Sender::new();
    for (uid, text) in [(1, "the first message"), (2, "the second message")] {
        let opened = store.open_message(&mut rng, &mut s, MailboxId::INBOX, Uid(uid), at(240));
        assert_eq!(sender.verify(opened.unwrap()), text);
    }
    let summaries = store.list_summaries(&mut s, MailboxId::INBOX, at(250)).unwrap();
    assert!(
        summaries.iter().any(|(_, sum)| sum.as_ref().map(|v| &v[..]) == Some(&b"summary one"[..]))
    );
}

/// Whether `signet` carries the public keys of keyring generation `k` (`spec/storage.md` §8.2:
/// a history signet is the one of an earlier generation).
fn carries(signet: &[u8], k: &KeyringEntry) -> bool {
    let p = default_provider();
    let sign = p.signature.public_key(&dime_core::crypto::Ed25519Seed::from_bytes(k.seed));
    let x = p.key_agreement.public_key(&dime_core::crypto::X25519Secret::from_bytes(k.x25519));
    [sign.as_bytes(), x.as_bytes()].iter().all(|key| signet.windows(key.len()).any(|w| w == *key))
}

/// The archive's plaintext, opened by the spec with `o`'s archive key.
fn plaintext(archive: &[u8], o: &Opened) -> Vec<u8> {
    let (header, sealed) = archive.split_at(48);
    aead_open(&o.archive_key, header, sealed).unwrap()
}

/// `plain` sealed again under `o`'s archive key, behind `header`.
fn reseal(header: &[u8], plain: &[u8], o: &Opened) -> Vec<u8> {
    let mut buf = plain.to_vec();
    let nonce = [7u8; 24];
    default_provider().aead.seal(&AeadKey::from_bytes(o.archive_key), &nonce, header, &mut buf);
    [header, &nonce, &buf].concat()
}

/// The length of the version 2 trailer at the end of `o`'s plaintext.
fn trailer_len(o: &Opened) -> usize {
    8 + o.history.iter().map(|h| 4 + h.len()).sum::<usize>()
        + o.former.iter().map(|f| 4 + f.len()).sum::<usize>()
}

#[test]
fn the_archive_vector_opens_by_the_spec_and_imports() {
    let dir = tempfile::tempdir().unwrap();
    let first = export(&dir.path().join("export"));
    assert_eq!(&first[..20], MAGIC, "the store writes version 2");
    let o = open_by_spec(&first, ARCHIVE_PASSWORD).expect("the archive opens by the spec");
    assert_eq!(o.version, 2);
    assert_eq!(o.params, FAST, "the vector uses the cheapest parameters");
    assert!(open_by_spec(&first, b"wrong password").is_none());
    let mut header_flip = first.clone();
    header_flip[47] ^= 1; // the last salt octet: another key, and other associated data
    assert!(open_by_spec(&header_flip, ARCHIVE_PASSWORD).is_none());
    assert_eq!(o.keyring.len(), 2);
    assert_eq!(o.key_generation, 1);
    assert_eq!(o.mailboxes.len(), 2);
    assert_eq!(o.overlays.iter().map(|(_, k, _)| *k).collect::<Vec<_>>(), [1, 3, 2]);
    // Rotated once: the signet of generation 0 is the history, no former address.
    assert_eq!(o.history.len(), 1);
    assert!(carries(&o.history[0], &o.keyring[0]) && carries(&o.signet, &o.keyring[1]));
    assert!(o.former.is_empty());
    import_matches(&first, ARCHIVE_PASSWORD, &o, &dir.path().join("import"));

    // Moved to example.net: a third generation; the first host's signets are the history, its
    // address the former one.
    let archive = move_and_export(&first, &dir.path().join("moved"));
    assert_eq!(&archive[..20], MAGIC);
    let m = open_by_spec(&archive, ARCHIVE_PASSWORD).expect("the moved archive opens by the spec");
    assert_eq!((m.version, m.account), (2, o.account));
    assert_eq!(m.address, MOVED);
    assert_eq!((m.key_generation, m.generation, m.keyring.len()), (2, 2, 3));
    assert_eq!(m.history, [o.history[0].clone(), o.signet.clone()]);
    assert_eq!(m.former, [ADDRESS]);
    for (h, k) in m.history.iter().zip(&m.keyring) {
        assert!(carries(h, k), "history signet of generation {}", k.generation);
    }
    assert!(carries(&m.signet, &m.keyring[2]));
    import_matches(&archive, ARCHIVE_PASSWORD, &m, &dir.path().join("import moved"));

    // Refused: a version 1 magic on a version 2 archive (the header is the seal's associated
    // data: it does not open, by the spec or by the store), and a version 2 archive whose
    // trailer is cut, sealed again under the right key (it opens; its plaintext is short).
    let mut as_v1 = archive.clone();
    as_v1[..20].copy_from_slice(MAGIC_V1);
    assert!(open_by_spec(&as_v1, ARCHIVE_PASSWORD).is_none(), "v1 magic on a v2 archive");
    let refuse = |bad: &[u8], why: &'static str| {
        let d = tempfile::tempdir().unwrap();
        let store = open(d.path());
        let mut rng = dime_testkit::seeded_rng(8);
        let got = store.import(&mut rng, bad, ARCHIVE_PASSWORD, b"new pw", at(200));
        assert_eq!(got.unwrap_err(), ArchiveError::Refused(why));
        assert!(store.login(&mailbox(MOVED), b"new pw", at(200)).is_err(), "nothing imported");
    };
    refuse(&as_v1, "wrong password or damaged archive");
    let plain = plaintext(&archive, &m);
    let cut = trailer_len(&m);
    for keep in [0, 4, cut - 1] {
        let short = &plain[..plain.len() - cut + keep];
        refuse(&reseal(&archive[..48], short, &m), "malformed body");
    }
    // The same plaintext under a version 1 header: octets after the last record.
    let v1_header = [MAGIC_V1, &archive[20..48]].concat();
    refuse(&reseal(&v1_header, &plain, &m), "malformed body");
    // And resealed as it was, it imports: the refusals above are the cut and the magic.
    let resealed = reseal(&archive[..48], &plain, &m);
    open(&dir.path().join("resealed"))
        .import(&mut dime_testkit::seeded_rng(8), &resealed, ARCHIVE_PASSWORD, b"pw", at(200))
        .unwrap();

    let fresh = render(&archive, ARCHIVE_PASSWORD, &m);
    let path = vector_path(2);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if fresh != committed {
        if std::env::var_os("DIME_REGENERATE").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &fresh).unwrap();
        } else {
            panic!(
                "{} is stale; run `DIME_REGENERATE=1 cargo test -p dime-store --test storage_vectors` and commit",
                path.display()
            );
        }
    }
}

/// `spec/storage.md` §8: the committed version 1 vector (made before version 2, never
/// regenerated) still opens by the spec, with no trailer, reads exactly as the file says, and
/// imports with an empty signet history and no former address.
#[test]
fn the_version_1_vector_still_opens_by_the_spec_and_imports() {
    let committed = std::fs::read_to_string(vector_path(1)).unwrap();
    let archive = unhex(&string_field(&committed, "archive"));
    let password = string_field(&committed, "archive_password");
    assert_eq!(&archive[..20], MAGIC_V1);
    let o = open_by_spec(&archive, password.as_bytes()).expect("version 1 opens by the spec");
    assert_eq!(o.version, 1);
    assert!(o.history.is_empty() && o.former.is_empty());
    assert_eq!(o.keyring.len(), 2);
    assert_eq!(o.address, ADDRESS);
    assert_eq!(
        render(&archive, password.as_bytes(), &o),
        committed,
        "archive-1.json reads by the spec as it was made"
    );
    // A version 2 magic on it does not open: the header is the seal's associated data.
    let mut as_v2 = archive.clone();
    as_v2[..20].copy_from_slice(MAGIC);
    assert!(open_by_spec(&as_v2, password.as_bytes()).is_none());
    let dir = tempfile::tempdir().unwrap();
    import_matches(&archive, password.as_bytes(), &o, dir.path());
}

/// `spec/storage.md` §8.3: an archive refused because its account id is already in the store
/// writes nothing. (It failed before the importer's vault write checked the id: the fresh
/// shredding key replaced the existing account's, and its password no longer opened it.)
#[test]
fn a_refused_import_of_a_taken_account_id_leaves_that_account_as_it_was() {
    let p = default_provider();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let alice = mailbox(ADDRESS);
    let mut rng = dime_testkit::seeded_rng(5);
    let new = NewAccount {
        address: &alice,
        password: b"pw",
        recovery: Recovery::None,
        quota_bytes: QUOTA,
    };
    store.create_account(&mut rng, &org(1), &new, T0).unwrap();
    let mut s = store.login(&alice, b"pw", T0).unwrap();
    let archive = store.export(&mut rng, &mut s, ARCHIVE_PASSWORD, T0).unwrap();
    assert_eq!(&archive[..20], MAGIC, "version 2");
    // The same archive under another address (the plaintext's third field), sealed again.
    let o = open_by_spec(&archive, ARCHIVE_PASSWORD).unwrap();
    let (header, sealed) = archive.split_at(48);
    let mut plain = aead_open(&o.archive_key, header, sealed).unwrap();
    let len = u32::from_be_bytes(plain[48..52].try_into().unwrap()) as usize;
    let other = b"mallory@example.org";
    let len_field = u32::try_from(other.len()).unwrap().to_be_bytes();
    plain.splice(48..52 + len, [&len_field[..], other].concat());
    let nonce = [9u8; 24];
    p.aead.seal(&AeadKey::from_bytes(o.archive_key), &nonce, header, &mut plain);
    let forged = [header, &nonce, &plain].concat();
    assert_eq!(
        store.import(&mut rng, &forged, ARCHIVE_PASSWORD, b"new pw", T0).unwrap_err(),
        dime_store::ArchiveError::AccountExists
    );
    store.login(&alice, b"pw", T0).expect("the existing account still opens");
}
