//! Re-wrapping stored messages' recipient slots after a key rotation (`spec/storage.md` §6.5).
//!
//! Only the recipient key slots change, never the bodies: the envelope codec does the slot
//! surgery through [`SlotRewrap`]; the store drives it in batches, one transaction per batch,
//! each message's new bytes, digest and key generation written together. A crash loses at most
//! the batch in flight; the next run skips every message already at the current generation.

use crate::account::{get_body, load_account, prefix_end, put_body, save_account};
use crate::backend::Table;
use crate::codec::{blob_digest, open_record};
use crate::keys::Session;
use crate::mail::{MsgRec, msg_key};
use crate::{Store, StoreError, Timestamp};
use dime_core::crypto::{X25519PublicKey, X25519Secret};

/// The envelope codec's part of a re-wrap: re-encrypt the recipient slots of `envelope` from
/// `old` to `new_public`, leaving every chunk body as it is.
pub trait SlotRewrap {
    /// The re-wrapped envelope, or why it cannot be re-wrapped.
    fn rewrap(
        &self,
        envelope: &[u8],
        old: &X25519Secret,
        new_public: &X25519PublicKey,
    ) -> Result<Vec<u8>, String>;
}

/// How far a re-wrap has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RewrapProgress {
    /// Messages re-wrapped so far in this run.
    pub done: u64,
    /// Messages that could not be re-wrapped (left at their generation; retried next run).
    pub failed: u64,
    /// Messages that were behind the current generation when the run started.
    pub total: u64,
}

impl Store {
    /// Re-wraps every message delivered under an older key generation to the session's
    /// current key, `batch` messages per transaction, calling `progress` after each batch.
    /// Safe to interrupt and run again.
    pub fn rewrap_slots(
        &self,
        s: &mut Session,
        rewrapper: &dyn SlotRewrap,
        batch: usize,
        now: Timestamp,
        progress: &mut dyn FnMut(RewrapProgress),
    ) -> Result<RewrapProgress, StoreError> {
        s.touch(now)?;
        let inner = &*self.inner;
        let a = s.account;
        let batch = batch.max(1);
        let current = s.current_generation().ok_or(StoreError::SessionExpired)?;
        let new_public = match s.current_keys().map(|k| k.encryption_secret()) {
            Some(dime_signet::EncryptionSecret::X25519(x)) => inner.p.key_agreement.public_key(x),
            _ => return Err(StoreError::NotV2Keys),
        };
        let end = prefix_end(&a.0);
        let mut prog = RewrapProgress::default();
        // Count what is behind.
        let mut start = msg_key(a, 0);
        loop {
            let mut page = Vec::new();
            inner.backend.read(&mut |t| {
                page = t.range(Table::Messages, &start, &end, 4096)?;
                Ok(())
            })?;
            for (k, v) in &page {
                if let Ok(m) = open_record(inner.p, Table::Messages, k, v, "message record")
                    .and_then(MsgRec::decode)
                    && m.key_gen < current
                {
                    prog.total += 1;
                }
            }
            match page.last() {
                Some((k, _)) if page.len() == 4096 => {
                    start = k.clone();
                    start.push(0);
                }
                _ => break,
            }
        }
        progress(prog);
        let mut start = msg_key(a, 0);
        loop {
            s.touch(now)?;
            let mut page = Vec::new();
            inner.backend.read(&mut |t| {
                page.clear();
                let mut from = start.clone();
                while page.len() < batch {
                    let got = t.range(Table::Messages, &from, &end, batch)?;
                    let more = got.len() == batch;
                    for (k, v) in got {
                        from = k.clone();
                        from.push(0);
                        let Ok(m) = open_record(inner.p, Table::Messages, &k, &v, "message record")
                            .and_then(MsgRec::decode)
                        else {
                            continue;
                        };
                        if m.key_gen < current {
                            let blob = t.get(Table::Blobs, &k)?.unwrap_or_default();
                            page.push((k, m, blob));
                        }
                    }
                    if !more {
                        break;
                    }
                }
                start = from;
                Ok(())
            })?;
            if page.is_empty() {
                return Ok(prog);
            }
            let mut updates = Vec::new();
            for (k, m, blob) in page {
                if blob_digest(inner.p, &blob) != m.digest {
                    prog.failed += 1;
                    continue;
                }
                let Some(dime_signet::EncryptionSecret::X25519(old)) =
                    s.keys_for_generation(m.key_gen).map(|k| k.encryption_secret())
                else {
                    prog.failed += 1;
                    continue;
                };
                match rewrapper.rewrap(&blob, old, &new_public) {
                    Ok(new_blob) => updates.push((k, m, new_blob)),
                    Err(_) => prog.failed += 1,
                }
            }
            let n = updates.len() as u64;
            inner.backend.write(&mut |t| {
                let mut acc = load_account(inner, t, a)?;
                for (k, old, new_blob) in &updates {
                    // Re-read inside the transaction: skip a message expunged meanwhile.
                    let Some(b) = get_body(inner, t, Table::Messages, k, "message record")? else {
                        continue;
                    };
                    let mut m = MsgRec::decode(&b)?;
                    if m.digest != old.digest {
                        continue;
                    }
                    acc.used =
                        acc.used.saturating_sub(m.size).saturating_add(new_blob.len() as u64);
                    m.size = new_blob.len() as u64;
                    m.digest = blob_digest(inner.p, new_blob);
                    m.key_gen = current;
                    t.put(Table::Blobs, k, new_blob)?;
                    put_body(inner, t, Table::Messages, k, m.encode())?;
                }
                save_account(inner, t, a, &acc)
            })?;
            prog.done += n;
            progress(prog);
        }
    }
}
