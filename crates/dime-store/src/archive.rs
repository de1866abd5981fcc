//! Account export and import (`spec/storage.md` §8): a portable archive, still encrypted.
//!
//! The archive holds the account's records as stored (mail, names and flags stay sealed under
//! the account's keys) and the account key wrapped under Argon2id(archive password) alone: no
//! pepper, so another server can import it. The whole body is sealed once more under that key.

use crate::account::{
    AccountRec, DirectoryRec, KIND_DIRECTORY, KIND_KEYRING, KIND_PASSWORD, MAX_FORMER_ADDRESSES,
    MAX_SIGNET_HISTORY, get_body, key_key, load_account, prefix_end, put_body, save_account,
};
use crate::backend::{Backend, Table};
use crate::codec::{BlobDigest, Dec, Enc, open_record, seal_record};
use crate::keys::{
    KeyringEntry, SALT_LEN, Session, account_subkey, decode_keyring, derive, encode_keyring, open,
    seal,
};
use crate::mail::MsgRec;
use crate::{AccountId, Archive, ArchiveError, Store, StoreError, Timestamp};
use dime_core::crypto::Argon2Params;
use dime_core::{CryptoRngCore, Domain, Mailbox, Secret};
use dime_signet::{OrgKeys, OrgSigner, Profile, Signet, UserKeys};
use zeroize::Zeroizing;

/// The archive format this code writes (`spec/storage.md` §8): version 2 carries the
/// account's signet history and former addresses after its records.
const MAGIC: &[u8] = b"DIME-STORE-ARCHIVE\x00\x02";
/// Version 1: no history, no former address; still imported.
const MAGIC_V1: &[u8] = b"DIME-STORE-ARCHIVE\x00\x01";
const TABLES: [Table; 6] =
    [Table::Keys, Table::Mailboxes, Table::Entries, Table::Messages, Table::Blobs, Table::Overlays];

/// Where an imported account lands ([`Archive::import_to`](crate::Archive::import_to),
/// `spec/storage.md` §8.3).
pub struct ImportTarget<'a> {
    /// This host's domain: the account's address must be of it.
    pub domain: &'a Domain,
    /// This host's organisation keys: they sign the account's new user signet.
    pub org: &'a OrgKeys,
    /// The account's address here, when not the archive's (a move to another domain).
    pub address: Option<&'a Mailbox>,
}

impl std::fmt::Debug for ImportTarget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportTarget")
            .field("domain", &self.domain)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

fn archive_key(
    p: &dime_core::crypto::CryptoProvider,
    password: &[u8],
    params: &Argon2Params,
    salt: &[u8],
) -> Result<dime_core::crypto::AeadKey, StoreError> {
    params.check().map_err(StoreError::HostileParams)?;
    let mut st = Secret::new([0u8; 32]);
    p.password_kdf.argon2id(password, salt, params, st.expose_mut())?;
    derive(p, b"dime-store archive", st.expose(), &[b"dime-store archive key"])
}

fn header(magic: &[u8], params: &Argon2Params, salt: &[u8]) -> Vec<u8> {
    Enc::new().raw(magic).u32(params.m_kib).u32(params.t).u32(params.p).raw(salt).finish()
}

/// An archive opened with its password and checked record by record.
struct Opened {
    a: AccountId,
    ak: Secret<[u8; 32]>,
    dir: DirectoryRec,
    quota: u64,
    next_msg: u64,
    next_mbox: u32,
    key_gen: u32,
    used: u64,
    count: u64,
    records: Vec<(Table, Vec<u8>, Vec<u8>)>,
}

impl Archive for Store {
    fn export_with_progress(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        archive_password: &[u8],
        now: Timestamp,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Vec<u8>, ArchiveError> {
        s.touch(now)?;
        let inner = &*self.inner;
        let a = s.account;
        let dir = inner.directory(a)?;
        let mut records = Vec::new();
        let mut acc = None;
        inner.backend.read(&mut |t| {
            records.clear();
            acc = Some(load_account(inner, t, a)?);
            for table in TABLES {
                for (k, v) in t.range(table, &a.0, &prefix_end(&a.0), usize::MAX)? {
                    if table == Table::Keys && k != key_key(a, KIND_KEYRING) {
                        continue;
                    }
                    records.push((table.code(), k, v));
                }
            }
            Ok(())
        })?;
        let acc = acc.ok_or(StoreError::UnknownAccount)?;
        let mut body = Enc::new()
            .raw(&a.0)
            .raw(s.account_key.expose())
            .bytes(s.address.to_string().as_bytes())
            .u32(dir.generation)
            .bytes(dir.signet.as_bytes())
            .u64(acc.quota)
            .u64(acc.next_msg)
            .u32(acc.next_mbox)
            .u32(acc.key_gen)
            .u32(
                u32::try_from(records.len())
                    .map_err(|_| StoreError::BadArchive("too many records"))?,
            );
        let total = records.len() as u64;
        progress(0, total);
        for (i, (code, k, v)) in records.iter().enumerate() {
            body = body.u8(*code).bytes(k).bytes(v);
            progress(i as u64 + 1, total);
        }
        // Version 2: what reading the account's mail elsewhere needs (`spec/storage.md` §8).
        body = body.u32(u32::try_from(dir.history.len()).unwrap_or(u32::MAX));
        for h in &dir.history {
            body = body.bytes(h.as_bytes());
        }
        body = body.u32(u32::try_from(dir.former.len()).unwrap_or(u32::MAX));
        for f in &dir.former {
            body = body.bytes(f.to_string().as_bytes());
        }
        let body = Zeroizing::new(body.finish());
        let params = inner.argon2;
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let key = archive_key(inner.p, archive_password, &params, &salt)?;
        let mut out = header(MAGIC, &params, &salt);
        let sealed = seal(inner.p, rng, &key, &out, &body);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn archive_address(
        &self,
        archive: &[u8],
        archive_password: &[u8],
    ) -> Result<Mailbox, ArchiveError> {
        Ok(self.open_archive(archive, archive_password, &mut |_, _| {})?.dir.address)
    }

    #[allow(clippy::too_many_arguments)]
    fn import_with_progress(
        &self,
        rng: &mut dyn CryptoRngCore,
        archive: &[u8],
        archive_password: &[u8],
        new_password: &[u8],
        target: Option<&ImportTarget<'_>>,
        now: Timestamp,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(AccountId, Mailbox), ArchiveError> {
        let _ = now;
        let inner = &*self.inner;
        let mut o = self.open_archive(archive, archive_password, progress)?;
        if let Some(t) = target {
            self.move_here(rng, &mut o, t)?;
        }
        let address = o.dir.address.clone();
        if inner.account_of(&address).is_ok() {
            return Err(ArchiveError::AccountExists);
        }
        let a = o.a;
        let mut shred = Secret::new([0u8; 32]);
        rng.fill_bytes(shred.expose_mut());
        // Wrap under this server's pepper and the fresh shredding key. The vault takes it only
        // under an id it does not hold yet: an existing account's shredding key is never
        // replaced (that would shred it), whatever the archive claims.
        inner.vault.write(&mut |t| {
            if t.get(Table::Vault, &a.0)?.is_some() {
                return Err(StoreError::AccountExists);
            }
            put_body(inner, t, Table::Vault, &a.0, shred.expose().to_vec())
        })?;
        let written = self.write_imported(rng, &shred, new_password, &o);
        if let Err(e) = written {
            // Refused (or failed) after the vault took the key: the key goes, nothing is left.
            let _ = inner.vault.write(&mut |t| t.delete(Table::Vault, &a.0).map(|_| ()));
            return Err(e.into());
        }
        Ok((a, address))
    }
}

impl Store {
    /// Opens `archive` with `archive_password` and checks every record (nothing written).
    fn open_archive(
        &self,
        archive: &[u8],
        archive_password: &[u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Opened, ArchiveError> {
        let inner = &*self.inner;
        let p = inner.p;
        let mut d = Dec::new(archive, "archive");
        let magic =
            d.take(MAGIC.len()).map_err(|_| StoreError::BadArchive("not a dime store archive"))?;
        if magic != MAGIC && magic != MAGIC_V1 {
            return Err(ArchiveError::Refused("not a dime store archive"));
        }
        let v2 = magic == MAGIC;
        let bad = |_| StoreError::BadArchive("truncated header");
        let params = Argon2Params {
            m_kib: d.u32().map_err(bad)?,
            t: d.u32().map_err(bad)?,
            p: d.u32().map_err(bad)?,
        };
        let salt = d.array::<SALT_LEN>().map_err(bad)?;
        let hdr = header(magic, &params, &salt);
        let sealed = archive.get(hdr.len()..).ok_or(StoreError::BadArchive("truncated header"))?;
        let key = archive_key(p, archive_password, &params, &salt)?;
        let body = open(p, &key, &hdr, sealed)
            .map_err(|_| StoreError::BadArchive("wrong password or damaged archive"))?;
        let bad = |_| StoreError::BadArchive("malformed body");
        let mut d = Dec::new(&body, "archive");
        let a = AccountId(d.array::<16>().map_err(bad)?);
        let ak = Secret::new(d.array::<32>().map_err(bad)?);
        let address = std::str::from_utf8(d.bytes().map_err(bad)?)
            .ok()
            .and_then(|s| Mailbox::parse(s).ok())
            .ok_or(StoreError::BadArchive("bad address"))?;
        let generation = d.u32().map_err(bad)?;
        let signet = Signet::decode(d.bytes().map_err(bad)?)
            .map_err(|_| StoreError::BadArchive("bad signet"))?;
        let quota = d.u64().map_err(bad)?;
        let next_msg = d.u64().map_err(bad)?;
        let next_mbox = d.u32().map_err(bad)?;
        let key_gen = d.u32().map_err(bad)?;
        let n = d.u32().map_err(bad)?;
        let mut records = Vec::new();
        let mut used = 0u64;
        let mut count = 0u64;
        progress(0, u64::from(n));
        for i in 0..n {
            let code = d.u8().map_err(bad)?;
            let table = TABLES
                .into_iter()
                .find(|t| t.code() == code)
                .ok_or(StoreError::BadArchive("unknown table"))?;
            let k = d.bytes().map_err(bad)?;
            let v = d.bytes().map_err(bad)?;
            if !k.starts_with(&a.0) {
                return Err(ArchiveError::Refused("record of another account"));
            }
            if table == Table::Keys && k != key_key(a, KIND_KEYRING).as_slice() {
                return Err(ArchiveError::Refused("unexpected key record"));
            }
            if table != Table::Blobs {
                open_record(p, table, k, v, "archive record")
                    .map_err(|_| StoreError::BadArchive("record checksum"))?;
            } else {
                used += v.len() as u64;
                count += 1;
            }
            records.push((table, k.to_vec(), v.to_vec()));
            progress(u64::from(i) + 1, u64::from(n));
        }
        let (mut history, mut former) = (Vec::new(), Vec::new());
        if v2 {
            let h = d.u32().map_err(bad)? as usize;
            if h > MAX_SIGNET_HISTORY {
                return Err(ArchiveError::Refused("too long a signet history"));
            }
            for _ in 0..h {
                history.push(
                    Signet::decode(d.bytes().map_err(bad)?)
                        .map_err(|_| StoreError::BadArchive("bad signet"))?,
                );
            }
            let f = d.u32().map_err(bad)? as usize;
            if f > MAX_FORMER_ADDRESSES {
                return Err(ArchiveError::Refused("too many former addresses"));
            }
            for _ in 0..f {
                former.push(
                    std::str::from_utf8(d.bytes().map_err(bad)?)
                        .ok()
                        .and_then(|s| Mailbox::parse(s).ok())
                        .ok_or(StoreError::BadArchive("bad address"))?,
                );
            }
        }
        d.finish().map_err(bad)?;
        // The account key must open the keyring the archive carries, or the account could
        // never log in.
        if self.archived_keyring(a, &ak, &records).is_none() {
            return Err(ArchiveError::Refused(
                "the keyring does not open with the archive's account key",
            ));
        }
        in_this_format(inner, &mut records)?;
        let dir = DirectoryRec { address, generation, signet, history, former };
        Ok(Opened { a, ak, dir, quota, next_msg, next_mbox, key_gen, used, count, records })
    }

    /// The keyring among `records`, opened with the account key `ak`.
    fn archived_keyring(
        &self,
        a: AccountId,
        ak: &Secret<[u8; 32]>,
        records: &[(Table, Vec<u8>, Vec<u8>)],
    ) -> Option<Vec<KeyringEntry>> {
        let p = self.inner.p;
        let kk = key_key(a, KIND_KEYRING);
        let ring = records.iter().find(|(t, k, _)| *t == Table::Keys && *k == kk)?;
        let ring = open_record(p, Table::Keys, &kk, &ring.2, "archive record").ok()?;
        let rk = account_subkey(p, ak, a, b"keyring").ok()?;
        open(p, &rk, &kk, ring).ok().and_then(|pt| decode_keyring(&pt).ok())
    }

    /// Makes an opened archive's account one of this host's (`spec/storage.md` §8.3): its
    /// address here (of `t.domain`), a new generation of keys signed into a user signet by
    /// this host's organisation with a custody signature by the account's current keys, the
    /// archive's signet joining the history and a changed address the former ones.
    fn move_here(
        &self,
        rng: &mut dyn CryptoRngCore,
        o: &mut Opened,
        t: &ImportTarget<'_>,
    ) -> Result<(), ArchiveError> {
        let p = self.inner.p;
        let address = t.address.unwrap_or(&o.dir.address).clone();
        if address.domain() != t.domain {
            return Err(ArchiveError::Refused(if t.address.is_some() {
                "the new address is not of this host's domain"
            } else {
                "the archive's address is not of this host's domain: name the new address"
            }));
        }
        let mut ring = self.archived_keyring(o.a, &o.ak, &o.records).ok_or(
            ArchiveError::Refused("the keyring does not open with the archive's account key"),
        )?;
        let current = ring
            .iter()
            .max_by_key(|k| k.generation)
            .ok_or(StoreError::Corrupt { what: "keyring" })?;
        let generation = current.generation.checked_add(1).ok_or(StoreError::NotV2Keys)?;
        let new_keys = UserKeys::generate(rng);
        let ssr = dime_signet::create_rotation_ssr(p, &new_keys, &current.keys)
            .map_err(|e| StoreError::Signet(e.to_string()))?;
        let signet = dime_signet::sign_user_signet(
            p,
            t.org,
            OrgSigner::Pok,
            &ssr,
            &address,
            &Profile::new(),
        )
        .map_err(|e| StoreError::Signet(e.to_string()))?;
        ring.push(KeyringEntry { generation, keys: new_keys });
        if ring.len() > crate::keys::MAX_KEYRING as usize {
            return Err(ArchiveError::Refused("too many key generations"));
        }
        let kk = key_key(o.a, KIND_KEYRING);
        let rk = account_subkey(p, &o.ak, o.a, b"keyring")?;
        let sealed =
            seal_record(p, Table::Keys, &kk, seal(p, rng, &rk, &kk, &encode_keyring(&ring)?));
        for r in &mut o.records {
            if r.0 == Table::Keys && r.1 == kk {
                r.2.clone_from(&sealed);
            }
        }
        let mut dir = o.dir.rotated(generation, signet);
        if address != o.dir.address {
            dir.former.push(o.dir.address.clone());
            let over = dir.former.len().saturating_sub(MAX_FORMER_ADDRESSES);
            dir.former.drain(..over);
            dir.address = address;
        }
        o.dir = dir;
        o.key_gen = generation;
        Ok(())
    }

    /// Writes an imported account's records (its wraps made with the new `shred`), refused when
    /// its address or its id is taken.
    fn write_imported(
        &self,
        rng: &mut dyn CryptoRngCore,
        shred: &Secret<[u8; 32]>,
        new_password: &[u8],
        o: &Opened,
    ) -> Result<(), StoreError> {
        let inner = &*self.inner;
        let a = o.a;
        let rec = AccountRec {
            recovery: 0,
            quota: o.quota,
            used: o.used,
            count: o.count,
            next_msg: o.next_msg,
            next_mbox: o.next_mbox,
            key_gen: o.key_gen,
        };
        let pw = inner.password_body(rng, a, shred, new_password, &o.ak)?;
        let dir = inner.directory_body(rng, a, shred, &o.dir)?;
        let tag = inner.address_tag(&o.dir.address)?;
        inner.backend.write(&mut |t| {
            if t.get(Table::Addresses, &tag)?.is_some()
                || get_body(inner, t, Table::Accounts, &a.0, "account record")?.is_some()
            {
                return Err(StoreError::AccountExists);
            }
            put_body(inner, t, Table::Addresses, &tag, a.0.to_vec())?;
            save_account(inner, t, a, &rec)?;
            put_body(inner, t, Table::Keys, &key_key(a, KIND_PASSWORD), pw.clone())?;
            put_body(inner, t, Table::Keys, &key_key(a, KIND_DIRECTORY), dir.clone())?;
            for (table, k, v) in &o.records {
                t.put(*table, k, v)?;
            }
            Ok(())
        })
    }
}

/// Gives the message records of an archive the blob digests of this store's format: an archive
/// made by a store of another format (`spec/storage.md` §2.1) carries that format's digests. A
/// digest that matches its envelope under no format is kept, so the damage still reads as
/// corrupt here.
fn in_this_format(
    inner: &crate::Inner,
    records: &mut [(Table, Vec<u8>, Vec<u8>)],
) -> Result<(), StoreError> {
    let p = inner.p;
    let blobs: std::collections::HashMap<&[u8], &[u8]> = records
        .iter()
        .filter(|(t, _, _)| *t == Table::Blobs)
        .map(|(_, k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    let mut rewritten = Vec::new();
    for (i, (table, k, v)) in records.iter().enumerate() {
        if *table != Table::Messages {
            continue;
        }
        let Some(blob) = blobs.get(k.as_slice()) else { continue };
        let mut m = MsgRec::decode(open_record(p, *table, k, v, "archive record")?)?;
        let ours = inner.blob_digest.of(p, blob);
        let other = BlobDigest::ALL
            .into_iter()
            .any(|f| f != inner.blob_digest && f.of(p, blob) == m.digest);
        if m.digest != ours && other {
            m.digest = ours;
            rewritten.push((i, seal_record(p, *table, k, m.encode())));
        }
    }
    for (i, v) in rewritten {
        if let Some(r) = records.get_mut(i) {
            r.2 = v;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing::open_store;
    use crate::{Accounts, NewAccount, Recovery};
    use dime_core::crypto::default_provider;

    const T0: Timestamp = Timestamp(1_700_000_000);

    #[test]
    fn an_archive_whose_keyring_does_not_open_with_its_account_key_is_refused() {
        let p = default_provider();
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let alice = Mailbox::parse("alice@example.org").unwrap();
        let org = dime_signet::OrgKeys::generate(&mut dime_testkit::seeded_rng(1));
        let new = NewAccount {
            address: &alice,
            password: b"pw",
            recovery: Recovery::None,
            quota_bytes: 1 << 20,
        };
        let mut rng = dime_testkit::seeded_rng(2);
        store.create_account(&mut rng, &org, &new, T0).unwrap();
        let mut s = store.login(&alice, b"pw", T0).unwrap();
        let archive = store.export(&mut rng, &mut s, b"archive pw", T0).unwrap();
        // The same archive, well formed and sealed under the same password, with another
        // account key in it (after the account id, 16 octets).
        let mut d = Dec::new(&archive, "archive");
        d.take(MAGIC.len()).unwrap();
        let params =
            Argon2Params { m_kib: d.u32().unwrap(), t: d.u32().unwrap(), p: d.u32().unwrap() };
        let salt = d.array::<SALT_LEN>().unwrap();
        let hdr = header(MAGIC, &params, &salt);
        let key = archive_key(p, b"archive pw", &params, &salt).unwrap();
        let mut body = open(p, &key, &hdr, &archive[hdr.len()..]).unwrap();
        body[16..48].copy_from_slice(&[0x42; 32]);
        let forged = [hdr.clone(), seal(p, &mut rng, &key, &hdr, &body)].concat();

        let dir2 = tempfile::tempdir().unwrap();
        let other = open_store(dir2.path());
        assert_eq!(
            other.import(&mut rng, &forged, b"archive pw", b"new pw", T0).unwrap_err(),
            ArchiveError::Refused("the keyring does not open with the archive's account key")
        );
        assert!(other.login(&alice, b"new pw", T0).is_err(), "no account was made");
        // The archive as exported imports, and its account logs in.
        other.import(&mut rng, &archive, b"archive pw", b"new pw", T0).unwrap();
        other.login(&alice, b"new pw", T0).unwrap();
    }
}
