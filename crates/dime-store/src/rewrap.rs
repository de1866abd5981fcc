//! Key overlays beside stored messages (`spec/storage.md` §6.5, §6.6, `spec/envelope.md` §16):
//! re-wrap after a key rotation, and the read-key fast path.
//!
//! A stored envelope is never changed: its author signatures cover its key slots. After a
//! rotation, [`Mailboxes::rewrap_slots`](crate::Mailboxes::rewrap_slots) writes for each older message a *re-wrap overlay* (its
//! recipient chunk keys sealed to the new X25519 key) and moves the message's key generation
//! forward, both in one transaction per batch. A crash loses at most the batch in flight; the
//! next run skips every message already at the current generation.
//!
//! [`Mailboxes::open_message`](crate::Mailboxes::open_message) opens a message with the session's keys: through its *read
//! overlay* (chunk keys sealed under a read key derived from the account key: one HKDF and one
//! AEAD unwrap) when it has one; otherwise through its re-wrap overlay or its own slots (one
//! X25519), after which it stores the read overlay for the next open.

use crate::account::{get_body, load_account, prefix_end, put_body};
use crate::backend::{Backend, Table, WriteTxn};
use crate::codec::open_record;
use crate::keys::{Session, open};
use crate::mail::{EntryRec, MsgRec, entry_key, msg_key};
use crate::{AccountId, MailboxId, Store, StoreError, Timestamp, Uid};
use dime_core::CryptoRngCore;
use dime_core::crypto::{CryptoProvider, X25519PublicKey};
use dime_envelope::{
    ActorSecret, ChunkKeys, ErrorClass, FullView, OpenError, OverlayKey, Unverified,
    open_as_recipient_with_keys, open_overlay, recipient_chunk_keys,
};
use dime_signet::{EncryptionSecret, UserKeys};
use zeroize::Zeroizing;

/// Overlay kind octet of a re-wrap overlay (X25519 form, sealed to the key of the message's
/// recorded generation), `spec/storage.md` §6.5.
pub(crate) const OVERLAY_REWRAP: u8 = 1;
/// Overlay kind octet of a read overlay (read-key form), `spec/storage.md` §6.6.
pub(crate) const OVERLAY_READ: u8 = 2;

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

/// Which key opened a message ([`Mailboxes::open_message`](crate::Mailboxes::open_message)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenedVia {
    /// The read overlay: one AEAD unwrap, no X25519.
    ReadOverlay,
    /// The re-wrap overlay sealed to the key of the message's generation (one X25519).
    RewrapOverlay,
    /// The message's own recipient slots, with the key of this generation (one X25519 per
    /// generation tried).
    Slots(u32),
}

/// A message opened by the store with the session's keys. Its signatures are not checked:
/// look up the claimed author's (and origin's) keys and call `message.verify`.
#[derive(Debug)]
pub struct Opened {
    /// The recipient's view, to verify.
    pub message: Unverified<FullView>,
    /// How it was opened.
    pub via: OpenedVia,
}

/// A message opened for display only ([`Mailboxes::open_for_display`](crate::Mailboxes::open_for_display)):
/// its view and kind, without what it would take to verify its signatures, and its summary.
pub struct Displayed {
    /// What the recipient reads.
    pub view: dime_envelope::FullView,
    /// Authored or trustful.
    pub kind: dime_envelope::MessageKind,
    /// Its summary, when it has one that opens with the session's read key.
    pub summary: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Displayed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Displayed").field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// What the display path found of one message.
pub(crate) enum Found {
    /// Not in the mailbox.
    Missing,
    /// There, but not for the display path (no read overlay, or it did not open).
    NotShown,
    /// Opened for display.
    Shown(Box<Displayed>),
}

pub(crate) fn overlay_key(msg_key: &[u8], kind: u8) -> Vec<u8> {
    let mut k = msg_key.to_vec();
    k.push(kind);
    k
}

/// Deletes both overlays of a message (with the message).
pub(crate) fn delete_overlays(t: &mut dyn WriteTxn, msg_key: &[u8]) -> Result<(), StoreError> {
    for kind in [OVERLAY_REWRAP, OVERLAY_READ, crate::summary::OVERLAY_SUMMARY] {
        t.delete(Table::Overlays, &overlay_key(msg_key, kind))?;
    }
    Ok(())
}

fn actor_secret(p: &CryptoProvider, keys: &UserKeys) -> Option<ActorSecret> {
    match keys.encryption_secret() {
        EncryptionSecret::X25519(x) => Some(ActorSecret::new(p, x.duplicate())),
        EncryptionSecret::Secp256k1(_) => None,
    }
}

/// The recipient chunk keys of a stored message with the session's keyring: its re-wrap
/// overlay with the key of its generation, else its own slots with each generation's key
/// (its generation first, then newest to oldest).
fn chunk_keys_slow(
    p: &CryptoProvider,
    s: &Session,
    key_gen: u32,
    blob: &[u8],
    rewrap_overlay: Option<&[u8]>,
) -> Result<(ChunkKeys, OpenedVia), StoreError> {
    if let Some(ov) = rewrap_overlay
        && let Some(me) = s.keys_for_generation(key_gen).and_then(|k| actor_secret(p, k))
        && let Ok(keys) = open_overlay(p, blob, ov, OverlayKey::X25519(&me))
    {
        return Ok((keys, OpenedVia::RewrapOverlay));
    }
    // No key opens it: "does not authenticate" (§14), unless a key met a framing error (the
    // structure is the same for every key; a content rule is met only by the key that opens).
    let mut why = ErrorClass::Unauthentic;
    let mut gens: Vec<u32> = vec![key_gen];
    gens.extend(s.keyring.iter().rev().map(|k| k.generation).filter(|g| *g != key_gen));
    for g in gens {
        let Some(me) = s.keys_for_generation(g).and_then(|k| actor_secret(p, k)) else {
            continue;
        };
        match recipient_chunk_keys(p, blob, &me) {
            Ok(keys) => return Ok((keys, OpenedVia::Slots(g))),
            Err(e @ OpenError::Decode(_)) => why = e.class(),
            Err(_) => {}
        }
    }
    Err(StoreError::Unopenable(why))
}

struct Stored {
    key: Vec<u8>,
    msg: MsgRec,
    blob: Vec<u8>,
    rewrap: Option<Vec<u8>>,
    read: Option<Vec<u8>>,
}

impl Store {
    /// A message with its record and overlays, read in one transaction, its digest checked
    /// (a corrupt message is quarantined as by [`Mailboxes::fetch`](crate::Mailboxes::fetch)).
    fn stored(&self, a: AccountId, m: MailboxId, uid: Uid) -> Result<Stored, StoreError> {
        let p = self.inner.p;
        let f = self.fetch_with(a, m, uid, |t, key| {
            let ov = |kind| -> Result<Option<Vec<u8>>, StoreError> {
                let k = overlay_key(key, kind);
                // A corrupt overlay is as good as none: the slow path rebuilds it.
                Ok(t.get(Table::Overlays, &k)?.and_then(|v| {
                    open_record(p, Table::Overlays, &k, &v, "overlay").ok().map(<[u8]>::to_vec)
                }))
            };
            Ok((ov(OVERLAY_REWRAP)?, ov(OVERLAY_READ)?))
        })?;
        let (rewrap, read) = f.beside;
        Ok(Stored { key: msg_key(a, f.seq), msg: f.msg, blob: f.blob, rewrap, read })
    }

    /// The body of [`Mailboxes::open_message`](crate::Mailboxes::open_message), with the store's low-level error.
    pub(crate) fn open_message_inner(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Opened, StoreError> {
        s.touch(now)?;
        let p = self.inner.p;
        let st = self.stored(s.account, m, uid)?;
        if let Some(ov) = &st.read
            && let Ok(keys) = open_overlay(p, &st.blob, ov, OverlayKey::Read(s.read_key.expose()))
            && let Ok(message) = open_as_recipient_with_keys(p, &st.blob, &keys)
        {
            return Ok(Opened { message, via: OpenedVia::ReadOverlay });
        }
        let (keys, via) = chunk_keys_slow(p, s, st.msg.key_gen, &st.blob, st.rewrap.as_deref())?;
        let message = open_as_recipient_with_keys(p, &st.blob, &keys)
            .map_err(|e| StoreError::Unopenable(e.class()))?;
        let sealed = keys
            .seal_with_read_key(p, rng, s.read_key.expose())
            .map_err(|_| StoreError::Unopenable(ErrorClass::Unauthentic))?;
        let inner = &*self.inner;
        let ok = overlay_key(&st.key, OVERLAY_READ);
        // A cache: visible at once, durable with the next durable commit; lost to a crash, it
        // is made again at the next open (`spec/storage.md` §6.6). A durable commit here cost
        // one fsync per message at the first FETCH of a mailbox.
        inner.backend.write_deferred(&mut |t| {
            // Only beside the message it was made for, if it is still there.
            if t.get(Table::Blobs, &st.key)?.is_some() {
                put_body(inner, t, Table::Overlays, &ok, sealed.clone())?;
            }
            Ok(())
        })?;
        Ok(Opened { message, via })
    }

    /// The body of [`Mailboxes::open_for_display`](crate::Mailboxes::open_for_display), with
    /// the store's low-level error.
    pub(crate) fn open_for_display_inner(
        &self,
        s: &mut Session,
        m: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Option<Displayed>, StoreError> {
        let k = s.display_key(now)?;
        let mut one = self.open_for_display_many_inner(&k, m, &[uid], usize::MAX)?;
        match one.pop() {
            Some((_, Found::Shown(d))) => Ok(Some(*d)),
            Some((_, Found::NotShown)) => Ok(None),
            Some((_, Found::Missing)) | None => Err(StoreError::NoSuchMessage),
        }
    }

    /// The body of [`Mailboxes::open_for_display_many`](crate::Mailboxes::open_for_display_many),
    /// with the store's low-level error: one read transaction for every message read.
    pub(crate) fn open_for_display_many_inner(
        &self,
        s: &crate::DisplayKey,
        m: MailboxId,
        uids: &[Uid],
        budget: usize,
    ) -> Result<Vec<(Uid, Found)>, StoreError> {
        let inner = &*self.inner;
        let p = inner.p;
        let a = s.account;
        // Each message's envelope, read overlay and summary (none for a message not there).
        type Read = (Uid, Option<(Vec<u8>, Option<Vec<u8>>, Option<Zeroizing<Vec<u8>>>)>);
        let mut got: Vec<Read> = Vec::new();
        inner.backend.read(&mut |t| {
            got.clear();
            let mut used = 0usize;
            for &uid in uids {
                if used >= budget {
                    break;
                }
                let ek = entry_key(a, m.0, uid.0);
                let Some(e) = get_body(inner, t, Table::Entries, &ek, "index record")? else {
                    got.push((uid, None));
                    continue;
                };
                let mk = msg_key(a, EntryRec::decode(&e)?.seq);
                let Some(blob) = t.get(Table::Blobs, &mk)? else {
                    got.push((uid, None));
                    continue;
                };
                let rk = overlay_key(&mk, OVERLAY_READ);
                let read = t.get(Table::Overlays, &rk)?.and_then(|v| {
                    open_record(p, Table::Overlays, &rk, &v, "overlay").ok().map(<[u8]>::to_vec)
                });
                let sk = overlay_key(&mk, crate::summary::OVERLAY_SUMMARY);
                let summary = t.get(Table::Overlays, &sk)?.and_then(|v| {
                    let body = open_record(p, Table::Overlays, &sk, &v, "summary").ok()?;
                    open(p, &s.read_key, &crate::summary::summary_aad(&mk), body).ok()
                });
                used = used.saturating_add(blob.len());
                got.push((uid, Some((blob, read, summary))));
            }
            Ok(())
        })?;
        let mut out = Vec::with_capacity(got.len());
        for (uid, item) in got {
            let Some(item) = item else {
                out.push((uid, Found::Missing));
                continue;
            };
            let shown = Some(item).and_then(|(blob, read, summary)| {
                // Anything that does not open here (a corrupt octet included) goes the
                // checked way.
                let keys =
                    open_overlay(p, &blob, &read?, OverlayKey::Read(s.read_key.expose())).ok()?;
                let (view, kind) =
                    dime_envelope::open_as_recipient_with_keys_unverified(p, &blob, &keys).ok()?;
                Some(Displayed { view, kind, summary })
            });
            out.push((uid, shown.map_or(Found::NotShown, |d| Found::Shown(Box::new(d)))));
        }
        Ok(out)
    }

    /// The body of [`Mailboxes::open_message_uncached`](crate::Mailboxes::open_message_uncached), with the store's low-level error.
    pub(crate) fn open_message_uncached_inner(
        &self,
        s: &mut Session,
        m: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Opened, StoreError> {
        s.touch(now)?;
        let p = self.inner.p;
        let st = self.stored(s.account, m, uid)?;
        let (keys, via) = chunk_keys_slow(p, s, st.msg.key_gen, &st.blob, st.rewrap.as_deref())?;
        let message = open_as_recipient_with_keys(p, &st.blob, &keys)
            .map_err(|e| StoreError::Unopenable(e.class()))?;
        Ok(Opened { message, via })
    }

    /// The body of [`Mailboxes::rewrap_slots`](crate::Mailboxes::rewrap_slots), with the store's low-level error.
    pub(crate) fn rewrap_slots_inner(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        batch: usize,
        now: Timestamp,
        progress: &mut dyn FnMut(RewrapProgress),
    ) -> Result<RewrapProgress, StoreError> {
        s.touch(now)?;
        let inner = &*self.inner;
        let p = inner.p;
        let a = s.account;
        let batch = batch.max(1);
        let current = s.current_generation().ok_or(StoreError::SessionExpired)?;
        let new_public: X25519PublicKey = match s.current_keys().map(|k| k.encryption_secret()) {
            Some(EncryptionSecret::X25519(x)) => p.key_agreement.public_key(x),
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
                if let Ok(m) =
                    open_record(p, Table::Messages, k, v, "message record").and_then(MsgRec::decode)
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
                        let Ok(m) = open_record(p, Table::Messages, &k, &v, "message record")
                            .and_then(MsgRec::decode)
                        else {
                            continue;
                        };
                        if m.key_gen < current {
                            let blob = t.get(Table::Blobs, &k)?.unwrap_or_default();
                            let ok = overlay_key(&k, OVERLAY_REWRAP);
                            let ov = t.get(Table::Overlays, &ok)?.and_then(|v| {
                                open_record(p, Table::Overlays, &ok, &v, "overlay")
                                    .ok()
                                    .map(<[u8]>::to_vec)
                            });
                            page.push((k, m, blob, ov));
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
            for (k, m, blob, ov) in page {
                if inner.blob_digest.of(p, &blob) != m.digest {
                    prog.failed += 1;
                    continue;
                }
                let Ok((keys, _)) = chunk_keys_slow(p, s, m.key_gen, &blob, ov.as_deref()) else {
                    prog.failed += 1;
                    continue;
                };
                match keys.seal_to_x25519(p, rng, &new_public) {
                    Ok(overlay) => updates.push((k, m, overlay)),
                    Err(_) => prog.failed += 1,
                }
            }
            let n = updates.len() as u64;
            inner.backend.write(&mut |t| {
                load_account(inner, t, a)?;
                for (k, old, overlay) in &updates {
                    // Re-read inside the transaction: skip a message expunged meanwhile.
                    let Some(b) = get_body(inner, t, Table::Messages, k, "message record")? else {
                        continue;
                    };
                    let mut m = MsgRec::decode(&b)?;
                    if m.digest != old.digest || m.key_gen != old.key_gen {
                        continue;
                    }
                    m.key_gen = current;
                    put_body(
                        inner,
                        t,
                        Table::Overlays,
                        &overlay_key(k, OVERLAY_REWRAP),
                        overlay.clone(),
                    )?;
                    put_body(inner, t, Table::Messages, k, m.encode())?;
                }
                Ok(())
            })?;
            prog.done += n;
            progress(prog);
        }
    }
}
