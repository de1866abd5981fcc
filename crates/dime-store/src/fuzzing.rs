//! Entry points for the fuzz targets (`fuzz/`), compiled only with the `fuzzing` feature: thin
//! wrappers that feed raw bytes to the crate's record codecs (`spec/storage.md` §3, §3.1,
//! §5-§5.3, §7, §7.1). Not an API: nothing here is stable, and no product crate enables the feature.
//!
//! Each decoder wrapper returns what decoding gave, re-encoded by the crate's own encoder, so a
//! target can check the round trip `encode(decode(b)) == b` (every record codec is canonical).

use crate::account::{load_account, save_account};
use crate::backend::{Backend, Pair, ReadTxn, Table, WriteTxn};
use crate::codec::{self, BlobDigest, Dec, Enc};
use crate::keys::{decode_keyring, encode_keyring};
use crate::mail::{EntryRec, MboxRec, MsgRec};
use crate::queue::QRec;
use crate::status::{load_status, put_status};
use crate::{AccountId, DeliveryStatus, Inner, PepperKeys, StoreError, gate};
use dime_core::crypto::{Argon2Params, CryptoProvider};
use dime_core::{CryptoRngCore, Secret};
use std::collections::BTreeMap;

/// Every table, in code order (`spec/storage.md` §3).
pub const TABLES: [Table; 19] = Table::ALL;

/// A record body with its checksum appended (`spec/storage.md` §3).
pub fn seal_record(p: &CryptoProvider, table: Table, key: &[u8], body: &[u8]) -> Vec<u8> {
    codec::seal_record(p, table, key, body.to_vec())
}

/// A stored value's body, its checksum checked and stripped.
pub fn open_record(
    p: &CryptoProvider,
    table: Table,
    key: &[u8],
    value: &[u8],
) -> Result<Vec<u8>, StoreError> {
    codec::open_record(p, table, key, value, "fuzzed record").map(<[u8]>::to_vec)
}

/// Reads `input` with the record decoder, one field per octet of `script` (its value modulo 6:
/// u8, u32, u64, 16-octet array, length-prefixed bytes, or `take` of the next script octet's
/// count), then requires the end; returns the fields re-encoded in the same order.
pub fn dec_script(script: &[u8], input: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut d = Dec::new(input, "fuzzed fields");
    let mut e = Enc::new();
    let mut ops = script.iter();
    while let Some(op) = ops.next() {
        e = match op % 6 {
            0 => e.u8(d.u8()?),
            1 => e.u32(d.u32()?),
            2 => e.u64(d.u64()?),
            3 => e.raw(&d.array::<16>()?),
            4 => e.bytes(d.bytes()?),
            _ => e.raw(d.take(usize::from(ops.next().copied().unwrap_or(0)))?),
        };
    }
    d.finish()?;
    Ok(e.finish())
}

/// A queue entry's schedule record (`spec/storage.md` §7), decoded and encoded again.
pub fn queue_record(body: &[u8]) -> Result<Vec<u8>, StoreError> {
    QRec::decode(body).map(|r| r.encode())
}

/// A delivery status record (`spec/storage.md` §7.1): its clear part checked and split from
/// the sealed part, then joined again.
pub fn status_record(body: &[u8]) -> Result<Vec<u8>, StoreError> {
    let (_, clear, sealed) = crate::status::decode(body)?;
    Ok(Enc::new().raw(clear).bytes(sealed).finish())
}

/// A mailbox record (`spec/storage.md` §5), decoded and encoded again.
pub fn mailbox_record(body: &[u8]) -> Result<Vec<u8>, StoreError> {
    MboxRec::decode(body).map(|r| r.encode())
}

/// A mailbox entry (index) record, decoded and encoded again.
pub fn entry_record(body: &[u8]) -> Result<Vec<u8>, StoreError> {
    EntryRec::decode(body).map(|r| r.encode())
}

/// A message record, decoded and encoded again.
pub fn message_record(body: &[u8]) -> Result<Vec<u8>, StoreError> {
    MsgRec::decode(body).map(|r| r.encode())
}

/// A mailbox's attribute plaintext (`spec/storage.md` §5.2), decoded and encoded again.
pub fn mailbox_attributes(body: &[u8]) -> Result<Vec<u8>, StoreError> {
    crate::imap::Attrs::decode(body).map(|a| a.encode())
}

/// A mailbox's tombstone record (`spec/storage.md` §5.3), decoded and encoded again.
pub fn tombstone_record(body: &[u8]) -> Result<Vec<u8>, StoreError> {
    crate::imap::Vanished::decode(body).map(|v| v.encode())
}

/// A keyring plaintext (`spec/storage.md` §6), decoded and encoded again.
pub fn keyring(body: &[u8]) -> Result<Vec<u8>, StoreError> {
    let ring = decode_keyring(body)?;
    encode_keyring(&ring).map(|z| z.to_vec())
}

/// A backend that holds nothing: the codecs below read and write one in-memory table map.
#[derive(Debug)]
struct NoBackend;

impl Backend for NoBackend {
    fn read(
        &self,
        _: &mut dyn FnMut(&dyn ReadTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Backend("no backend when fuzzing codecs".into()))
    }
    fn write(
        &self,
        _: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Backend("no backend when fuzzing codecs".into()))
    }
}

/// A transaction over an in-memory map, for the codecs that read through a [`ReadTxn`].
#[derive(Default)]
struct MapTxn(BTreeMap<(u8, Vec<u8>), Vec<u8>>);

impl ReadTxn for MapTxn {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.get(&(table.code(), key.to_vec())).cloned())
    }
    fn range(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Pair>, StoreError> {
        Ok(self
            .0
            .range((table.code(), start.to_vec())..(table.code(), end.to_vec()))
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
    fn len(&self, table: Table) -> Result<u64, StoreError> {
        Ok(self.0.keys().filter(|(t, _)| *t == table.code()).count() as u64)
    }
}

impl WriteTxn for MapTxn {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.0.insert((table.code(), key.to_vec()), value.to_vec());
        Ok(())
    }
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.0.remove(&(table.code(), key.to_vec())).is_some())
    }
}

/// The store's shared state over no backend, with a fixed pepper: enough for the codecs that
/// take the store's provider and pepper-derived keys.
fn inner(p: &'static CryptoProvider) -> Result<Inner, StoreError> {
    let pepper = [7u8; crate::MIN_PEPPER_LEN];
    Ok(Inner {
        backend: gate::Gated::new(Box::new(NoBackend)),
        vault: Box::new(NoBackend),
        p,
        blob_digest: BlobDigest::Plain,
        keys: PepperKeys::derive(p, &pepper)?,
        pepper: Secret::new(pepper.to_vec()),
        argon2: Argon2Params { m_kib: Argon2Params::MIN_M_KIB, t: 1, p: 1 },
        idle_timeout_secs: 900,
    })
}

/// An account record body (`spec/storage.md` §3.1), stored with a valid checksum, loaded as the
/// store loads it, and saved again: returns the body saved.
pub fn account_record(p: &'static CryptoProvider, body: &[u8]) -> Result<Vec<u8>, StoreError> {
    let inner = inner(p)?;
    let a = AccountId([1; 16]);
    let mut t = MapTxn::default();
    t.put(Table::Accounts, &a.0, &codec::seal_record(p, Table::Accounts, &a.0, body.to_vec()))?;
    let rec = load_account(&inner, &t, a)?;
    save_account(&inner, &mut t, a, &rec)?;
    let saved = t.get(Table::Accounts, &a.0)?.unwrap_or_default();
    open_record(p, Table::Accounts, &a.0, &saved)
}

/// A delivery status record body of entry `id`, stored with a valid checksum and opened as
/// the store opens it (its sealed part under the pepper's status key).
pub fn load_status_record(
    p: &'static CryptoProvider,
    id: u64,
    body: &[u8],
) -> Result<Option<DeliveryStatus>, StoreError> {
    let inner = inner(p)?;
    let k = id.to_be_bytes();
    let mut t = MapTxn::default();
    t.put(Table::Status, &k, &codec::seal_record(p, Table::Status, &k, body.to_vec()))?;
    load_status(&inner, &t, &inner.keys.status, id)
}

/// `s` written as the store writes a status and read back.
pub fn status_round_trip(
    p: &'static CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    s: &DeliveryStatus,
) -> Result<Option<DeliveryStatus>, StoreError> {
    let inner = inner(p)?;
    let mut t = MapTxn::default();
    put_status(&inner, &mut t, rng, &inner.keys.status, s)?;
    load_status(&inner, &t, &inner.keys.status, s.id.0)
}
