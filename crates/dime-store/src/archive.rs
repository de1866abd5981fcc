//! Account export and import (`spec/storage.md` §8): a portable archive, still encrypted.
//!
//! The archive holds the account's records as stored (mail, names and flags stay sealed under
//! the account's keys) and the account key wrapped under Argon2id(archive password) alone: no
//! pepper, so another server can import it. The whole body is sealed once more under that key.

use crate::account::{
    AccountRec, KIND_DIRECTORY, KIND_KEYRING, KIND_PASSWORD, get_body, key_key, load_account,
    prefix_end, put_body, save_account,
};
use crate::backend::{Backend, Table};
use crate::codec::{BlobDigest, Dec, Enc, open_record, seal_record};
use crate::keys::{SALT_LEN, Session, account_subkey, decode_keyring, derive, open, seal};
use crate::mail::MsgRec;
use crate::{AccountId, Accounts, Archive, ArchiveError, Store, StoreError, Timestamp};
use dime_core::crypto::Argon2Params;
use dime_core::{CryptoRngCore, Mailbox, Secret};
use dime_signet::Signet;
use zeroize::Zeroizing;

const MAGIC: &[u8] = b"DIME-STORE-ARCHIVE\x00\x01";
const TABLES: [Table; 6] =
    [Table::Keys, Table::Mailboxes, Table::Entries, Table::Messages, Table::Blobs, Table::Overlays];

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

fn header(params: &Argon2Params, salt: &[u8]) -> Vec<u8> {
    Enc::new().raw(MAGIC).u32(params.m_kib).u32(params.t).u32(params.p).raw(salt).finish()
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
        let (generation, signet) = self.signet(&s.address).map_err(StoreError::from)?;
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
            .u32(generation)
            .bytes(signet.as_bytes())
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
        let body = Zeroizing::new(body.finish());
        let params = inner.argon2;
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let key = archive_key(inner.p, archive_password, &params, &salt)?;
        let mut out = header(&params, &salt);
        let sealed = seal(inner.p, rng, &key, &out, &body);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn import_with_progress(
        &self,
        rng: &mut dyn CryptoRngCore,
        archive: &[u8],
        archive_password: &[u8],
        new_password: &[u8],
        now: Timestamp,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(AccountId, Mailbox), ArchiveError> {
        let _ = now;
        let inner = &*self.inner;
        let p = inner.p;
        let mut d = Dec::new(archive, "archive");
        if d.take(MAGIC.len()).map_err(|_| StoreError::BadArchive("not a dime store archive"))?
            != MAGIC
        {
            return Err(ArchiveError::Refused("not a dime store archive"));
        }
        let bad = |_| StoreError::BadArchive("truncated header");
        let params = Argon2Params {
            m_kib: d.u32().map_err(bad)?,
            t: d.u32().map_err(bad)?,
            p: d.u32().map_err(bad)?,
        };
        let salt = d.array::<SALT_LEN>().map_err(bad)?;
        let hdr = header(&params, &salt);
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
        d.finish().map_err(bad)?;
        // The account key must open the keyring the archive carries, or the account could
        // never log in.
        let kk = key_key(a, KIND_KEYRING);
        let ring = records
            .iter()
            .find(|(t, k, _)| *t == Table::Keys && *k == kk)
            .ok_or(ArchiveError::Refused("the archive has no keyring"))?;
        let ring = open_record(p, Table::Keys, &kk, &ring.2, "archive record")?;
        let rk = account_subkey(p, &ak, a, b"keyring")?;
        if open(p, &rk, &kk, ring).ok().and_then(|pt| decode_keyring(&pt).ok()).is_none() {
            return Err(ArchiveError::Refused(
                "the keyring does not open with the archive's account key",
            ));
        }
        in_this_format(inner, &mut records)?;
        if inner.account_of(&address).is_ok() {
            return Err(ArchiveError::AccountExists);
        }
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
        let rec = AccountRec { recovery: 0, quota, used, count, next_msg, next_mbox, key_gen };
        let written = self.write_imported(
            rng,
            a,
            &shred,
            &ak,
            new_password,
            &address,
            generation,
            &signet,
            &rec,
            &records,
        );
        if let Err(e) = written {
            // Refused (or failed) after the vault took the key: the key goes, nothing is left.
            let _ = inner.vault.write(&mut |t| t.delete(Table::Vault, &a.0).map(|_| ()));
            return Err(e.into());
        }
        Ok((a, address))
    }
}

impl Store {
    /// Writes an imported account's records (its wraps made with the new `shred`), refused when
    /// its address or its id is taken.
    #[allow(clippy::too_many_arguments)]
    fn write_imported(
        &self,
        rng: &mut dyn CryptoRngCore,
        a: AccountId,
        shred: &Secret<[u8; 32]>,
        ak: &Secret<[u8; 32]>,
        new_password: &[u8],
        address: &Mailbox,
        generation: u32,
        signet: &Signet,
        rec: &AccountRec,
        records: &[(Table, Vec<u8>, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let inner = &*self.inner;
        let pw = inner.password_body(rng, a, shred, new_password, ak)?;
        let dir = inner.directory_body(rng, a, shred, address, generation, signet)?;
        let tag = inner.address_tag(address)?;
        inner.backend.write(&mut |t| {
            if t.get(Table::Addresses, &tag)?.is_some()
                || get_body(inner, t, Table::Accounts, &a.0, "account record")?.is_some()
            {
                return Err(StoreError::AccountExists);
            }
            put_body(inner, t, Table::Addresses, &tag, a.0.to_vec())?;
            save_account(inner, t, a, rec)?;
            put_body(inner, t, Table::Keys, &key_key(a, KIND_PASSWORD), pw.clone())?;
            put_body(inner, t, Table::Keys, &key_key(a, KIND_DIRECTORY), dir.clone())?;
            for (table, k, v) in records {
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
    use crate::{NewAccount, Recovery};
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
        let hdr = header(&params, &salt);
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
