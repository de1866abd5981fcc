//! Mailboxes, entries and messages (`spec/storage.md` §5).

use crate::account::{get_body, load_account, prefix_end, put_body, save_account};
use crate::backend::{Backend, ReadTxn, Table, WriteTxn};
use crate::codec::{Dec, Enc};
use crate::imap::{Gone, delete_beside};
use crate::keys::{Session, open, seal};
use crate::{
    AccountId, Appended, FlagsStored, Inner, MAX_FLAGS_LEN, MAX_MAILBOX_NAME_LEN, MailboxError,
    MailboxId, Mailboxes, Opened, RewrapProgress, SealedSummaries, SpecialUse, Store, StoreError,
    Timestamp, Uid, quarantine, quarantine_in,
};
use dime_core::CryptoRngCore;
use dime_core::crypto::{AeadKey, CryptoProvider};
use zeroize::Zeroizing;

/// Most mailbox entries one message may have (copies), `spec/storage.md` §5.
pub(crate) const MAX_REFS: u32 = 65_536;
const DAY: u64 = 86_400;
const BATCH: usize = 1000;

/// A mailbox as a session sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// Its id.
    pub id: MailboxId,
    /// Its name (decrypted).
    pub name: String,
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// The next UID to be assigned.
    pub uid_next: u32,
    /// HIGHESTMODSEQ (RFC 7162).
    pub highest_modseq: u64,
    /// Number of messages.
    pub messages: u32,
    /// Whether the mailbox is subscribed (`spec/storage.md` §5.2; a mailbox is, until it is
    /// unsubscribed).
    pub subscribed: bool,
    /// Its special use (RFC 6154), if it has one.
    pub special_use: Option<crate::SpecialUse>,
}

/// One message of a mailbox, as the store sees it without any key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryInfo {
    /// The UID.
    pub uid: Uid,
    /// The entry's MODSEQ.
    pub modseq: u64,
    /// The sealed envelope's size in octets.
    pub size: u64,
    /// Arrival time.
    pub arrival: Timestamp,
    /// Key generation the message was delivered under (or re-wrapped to).
    pub key_generation: u32,
    /// Whether flags were ever set (their values are encrypted).
    pub has_flags: bool,
}

/// An account's quota use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Octets stored.
    pub used: u64,
    /// The limit.
    pub limit: u64,
    /// Messages stored.
    pub messages: u64,
}

pub(crate) struct MboxRec {
    pub(crate) name: Vec<u8>,
    pub(crate) uid_validity: u32,
    pub(crate) uid_next: u32,
    pub(crate) modseq: u64,
    pub(crate) count: u32,
}

impl MboxRec {
    pub(crate) fn encode(&self) -> Vec<u8> {
        Enc::new()
            .bytes(&self.name)
            .u32(self.uid_validity)
            .u32(self.uid_next)
            .u64(self.modseq)
            .u32(self.count)
            .finish()
    }
    pub(crate) fn decode(b: &[u8]) -> Result<MboxRec, StoreError> {
        let mut d = Dec::new(b, "mailbox record");
        let r = MboxRec {
            name: d.bytes()?.to_vec(),
            uid_validity: d.u32()?,
            uid_next: d.u32()?,
            modseq: d.u64()?,
            count: d.u32()?,
        };
        d.finish()?;
        Ok(r)
    }
}

pub(crate) struct EntryRec {
    pub(crate) seq: u64,
    pub(crate) modseq: u64,
    pub(crate) flags: Vec<u8>,
}

impl EntryRec {
    pub(crate) fn encode(&self) -> Vec<u8> {
        Enc::new().u64(self.seq).u64(self.modseq).bytes(&self.flags).finish()
    }
    pub(crate) fn decode(b: &[u8]) -> Result<EntryRec, StoreError> {
        let mut d = Dec::new(b, "index record");
        let r = EntryRec { seq: d.u64()?, modseq: d.u64()?, flags: d.bytes()?.to_vec() };
        d.finish()?;
        Ok(r)
    }
}

pub(crate) struct MsgRec {
    pub(crate) size: u64,
    pub(crate) arrival: u64,
    pub(crate) key_gen: u32,
    pub(crate) digest: [u8; 16],
    pub(crate) refs: Vec<(u32, u32)>,
}

impl MsgRec {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Enc::new()
            .u64(self.size)
            .u64(self.arrival)
            .u32(self.key_gen)
            .raw(&self.digest)
            .u32(u32::try_from(self.refs.len()).unwrap_or(u32::MAX));
        for (m, u) in &self.refs {
            e = e.u32(*m).u32(*u);
        }
        e.finish()
    }
    pub(crate) fn decode(b: &[u8]) -> Result<MsgRec, StoreError> {
        let mut d = Dec::new(b, "message record");
        let size = d.u64()?;
        let arrival = d.u64()?;
        let key_gen = d.u32()?;
        let digest = d.array::<16>()?;
        let n = d.u32()?;
        if n > MAX_REFS {
            return Err(StoreError::Corrupt { what: "message record" });
        }
        let mut refs = Vec::with_capacity(n as usize);
        for _ in 0..n {
            refs.push((d.u32()?, d.u32()?));
        }
        d.finish()?;
        Ok(MsgRec { size, arrival, key_gen, digest, refs })
    }
}

/// A message as one read transaction saw it, its blob checked against its digest
/// ([`Store::fetch_with`]).
pub(crate) struct Fetched<T> {
    /// Its message number.
    pub(crate) seq: u64,
    pub(crate) msg: MsgRec,
    pub(crate) blob: Vec<u8>,
    /// What the caller read beside it, in the same transaction.
    pub(crate) beside: T,
}

pub(crate) fn mbox_key(a: AccountId, m: MailboxId) -> Vec<u8> {
    Enc::new().raw(&a.0).u32(m.0).finish()
}
pub(crate) fn entry_key(a: AccountId, m: u32, uid: u32) -> Vec<u8> {
    Enc::new().raw(&a.0).u32(m).u32(uid).finish()
}
pub(crate) fn msg_key(a: AccountId, seq: u64) -> Vec<u8> {
    Enc::new().raw(&a.0).u64(seq).finish()
}

pub(crate) fn name_aad(a: AccountId, m: MailboxId) -> Vec<u8> {
    Enc::new().raw(b"dime-store mailbox name").raw(&a.0).u32(m.0).finish()
}
pub(crate) fn flags_aad(a: AccountId, seq: u64) -> Vec<u8> {
    Enc::new().raw(b"dime-store flags").raw(&a.0).u64(seq).finish()
}

pub(crate) fn new_mailbox_body(
    p: &CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    meta: &AeadKey,
    a: AccountId,
    id: MailboxId,
    name: &str,
    now: Timestamp,
) -> Result<Vec<u8>, StoreError> {
    Ok(new_mailbox_rec(p, rng, meta, a, id, name, now)?.encode())
}

/// A new mailbox's record: its name sealed, UIDVALIDITY from `now` and its id (§5).
pub(crate) fn new_mailbox_rec(
    p: &CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    meta: &AeadKey,
    a: AccountId,
    id: MailboxId,
    name: &str,
    now: Timestamp,
) -> Result<MboxRec, StoreError> {
    if name.len() > MAX_MAILBOX_NAME_LEN {
        return Err(StoreError::TooLarge { what: "mailbox name", limit: MAX_MAILBOX_NAME_LEN });
    }
    let uid_validity = ((now.0 as u32).wrapping_add(id.0)).max(1);
    Ok(MboxRec {
        name: seal(p, rng, meta, &name_aad(a, id), name.as_bytes()),
        uid_validity,
        uid_next: 1,
        modseq: 1,
        count: 0,
    })
}

/// Flags as their plaintext holds them: joined by single spaces (§8.2).
pub(crate) fn parse_flags(plain: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(plain).split(' ').filter(|f| !f.is_empty()).map(str::to_owned).collect()
}

pub(crate) fn load_mbox(
    inner: &Inner,
    t: &dyn ReadTxn,
    a: AccountId,
    m: MailboxId,
) -> Result<MboxRec, StoreError> {
    let b = get_body(inner, t, Table::Mailboxes, &mbox_key(a, m), "mailbox record")?
        .ok_or(StoreError::NoSuchMailbox)?;
    MboxRec::decode(&b)
}

pub(crate) fn load_msg(
    inner: &Inner,
    t: &dyn ReadTxn,
    a: AccountId,
    seq: u64,
) -> Result<Option<MsgRec>, StoreError> {
    match get_body(inner, t, Table::Messages, &msg_key(a, seq), "message record")? {
        Some(b) => Ok(Some(MsgRec::decode(&b)?)),
        None => Ok(None),
    }
}

/// Removes one mailbox entry; the message goes when its last entry goes. The removal is
/// remembered in `gone`, for the mailbox's tombstones (§5.3).
pub(crate) fn remove_entry(
    inner: &Inner,
    t: &mut dyn WriteTxn,
    a: AccountId,
    m: MailboxId,
    uid: u32,
    gone: &mut Gone,
) -> Result<bool, StoreError> {
    let ek = entry_key(a, m.0, uid);
    let Some(b) = get_body(inner, t, Table::Entries, &ek, "index record")? else {
        return Ok(false);
    };
    let e = EntryRec::decode(&b)?;
    t.delete(Table::Entries, &ek)?;
    let mut mb = load_mbox(inner, t, a, m)?;
    mb.count = mb.count.saturating_sub(1);
    mb.modseq += 1;
    gone.push(m, uid, mb.modseq);
    put_body(inner, t, Table::Mailboxes, &mbox_key(a, m), mb.encode())?;
    if let Some(mut msg) = load_msg(inner, t, a, e.seq)? {
        msg.refs.retain(|r| *r != (m.0, uid));
        if msg.refs.is_empty() {
            drop_message(inner, t, a, e.seq, msg.size)?;
        } else {
            put_body(inner, t, Table::Messages, &msg_key(a, e.seq), msg.encode())?;
        }
    }
    Ok(true)
}

fn drop_message(
    inner: &Inner,
    t: &mut dyn WriteTxn,
    a: AccountId,
    seq: u64,
    size: u64,
) -> Result<(), StoreError> {
    let k = msg_key(a, seq);
    t.delete(Table::Messages, &k)?;
    t.delete(Table::Blobs, &k)?;
    crate::rewrap::delete_overlays(t, &k)?;
    let mut acc = load_account(inner, t, a)?;
    acc.used = acc.used.saturating_sub(size);
    acc.count = acc.count.saturating_sub(1);
    save_account(inner, t, a, &acc)
}

impl Mailboxes for Store {
    fn quota(&self, a: AccountId) -> Result<Quota, MailboxError> {
        let inner = &*self.inner;
        let mut q = None;
        inner.backend.read(&mut |t| {
            let r = load_account(inner, t, a)?;
            q = Some(Quota { used: r.used, limit: r.quota, messages: r.count });
            Ok(())
        })?;
        q.ok_or(MailboxError::UnknownAccount)
    }

    fn list(&self, a: AccountId, m: MailboxId) -> Result<Vec<EntryInfo>, MailboxError> {
        Ok(self.list_with_seqs(a, m)?.into_iter().map(|(e, _)| e).collect())
    }

    fn fetch(&self, a: AccountId, m: MailboxId, uid: Uid) -> Result<Vec<u8>, MailboxError> {
        Ok(self.fetch_with(a, m, uid, |_, _| Ok(()))?.blob)
    }

    fn expunge(&self, a: AccountId, m: MailboxId, uids: &[Uid]) -> Result<usize, MailboxError> {
        let inner = &*self.inner;
        let mut n = 0;
        inner.backend.write(&mut |t| {
            n = 0;
            let mut gone = Gone::default();
            for uid in uids {
                if remove_entry(inner, t, a, m, uid.0, &mut gone)? {
                    n += 1;
                }
            }
            gone.record(inner, t, a)
        })?;
        Ok(n)
    }

    fn copy(
        &self,
        a: AccountId,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
    ) -> Result<Vec<(Uid, Uid)>, MailboxError> {
        Ok(self.copy_or_move(a, src, uids, dst, false)?)
    }

    fn move_messages(
        &self,
        a: AccountId,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
    ) -> Result<Vec<(Uid, Uid)>, MailboxError> {
        Ok(self.copy_or_move(a, src, uids, dst, true)?)
    }

    fn purge_older_than(
        &self,
        a: AccountId,
        days: u64,
        now: Timestamp,
    ) -> Result<u64, MailboxError> {
        let inner = &*self.inner;
        let cutoff = now.0.saturating_sub(days.saturating_mul(DAY));
        let mut total = 0u64;
        let mut start = msg_key(a, 0);
        let end = prefix_end(&a.0);
        loop {
            let mut done = false;
            let mut n = 0u64;
            inner.backend.write(&mut |t| {
                n = 0;
                let mut gone = Gone::default();
                let page = t.range(Table::Messages, &start, &end, BATCH)?;
                done = page.len() < BATCH;
                for (k, v) in &page {
                    let Ok(body) =
                        crate::codec::open_record(inner.p, Table::Messages, k, v, "message record")
                    else {
                        continue;
                    };
                    let msg = MsgRec::decode(body)?;
                    if msg.arrival < cutoff {
                        for (mb, uid) in &msg.refs {
                            remove_entry(inner, t, a, MailboxId(*mb), *uid, &mut gone)?;
                        }
                        n += 1;
                    }
                }
                if let Some((k, _)) = page.last() {
                    start = k.clone();
                    start.push(0);
                }
                gone.record(inner, t, a)
            })?;
            total += n;
            if done {
                if total > 0 {
                    // The purged envelopes leave the delivery log too (`spec/storage.md` §12).
                    self.committer.erase_log()?;
                }
                return Ok(total);
            }
        }
    }

    fn mailboxes(&self, s: &mut Session, now: Timestamp) -> Result<Vec<MailboxInfo>, MailboxError> {
        Ok(self.mailboxes_inner(s, now)?)
    }

    fn create_mailbox(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        name: &str,
        now: Timestamp,
    ) -> Result<MailboxId, MailboxError> {
        Ok(self.create_mailbox_inner(rng, s, name, None, now)?)
    }

    fn delete_mailbox(
        &self,
        s: &mut Session,
        m: MailboxId,
        now: Timestamp,
    ) -> Result<(), MailboxError> {
        s.touch(now)?;
        if m == MailboxId::INBOX {
            return Err(MailboxError::InboxIsFixed);
        }
        let inner = &*self.inner;
        let a = s.account;
        Ok(inner.backend.write(&mut |t| {
            load_mbox(inner, t, a, m)?;
            let prefix = mbox_key(a, m);
            // The mailbox goes with its tombstones: nothing is recorded.
            let mut gone = Gone::default();
            for (k, _) in t.range(Table::Entries, &prefix, &prefix_end(&prefix), usize::MAX)? {
                if let Some(uid) =
                    k.get(20..24).and_then(|s| s.try_into().ok()).map(u32::from_be_bytes)
                {
                    remove_entry(inner, t, a, m, uid, &mut gone)?;
                }
            }
            t.delete(Table::Mailboxes, &prefix)?;
            delete_beside(t, a, m)
        })?)
    }

    fn set_flags(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        uid: Uid,
        flags: &[&str],
        now: Timestamp,
    ) -> Result<u64, MailboxError> {
        s.touch(now)?;
        let inner = &*self.inner;
        let a = s.account;
        let plain = flags.join(" ");
        if plain.len() > MAX_FLAGS_LEN {
            return Err(MailboxError::TooLarge { what: "flags", limit: MAX_FLAGS_LEN });
        }
        let mut modseq = 0;
        inner.backend.write(&mut |t| {
            let ek = entry_key(a, m.0, uid.0);
            let b = get_body(inner, t, Table::Entries, &ek, "index record")?
                .ok_or(StoreError::NoSuchMessage)?;
            let mut e = EntryRec::decode(&b)?;
            let mut mb = load_mbox(inner, t, a, m)?;
            mb.modseq += 1;
            modseq = mb.modseq;
            e.modseq = mb.modseq;
            e.flags = seal(inner.p, &mut *rng, &s.meta_key, &flags_aad(a, e.seq), plain.as_bytes());
            put_body(inner, t, Table::Entries, &ek, e.encode())?;
            put_body(inner, t, Table::Mailboxes, &mbox_key(a, m), mb.encode())
        })?;
        Ok(modseq)
    }

    fn flags(
        &self,
        s: &mut Session,
        m: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Vec<String>, MailboxError> {
        s.touch(now)?;
        let inner = &*self.inner;
        let a = s.account;
        let mut e = None;
        inner.backend.read(&mut |t| {
            e = get_body(inner, t, Table::Entries, &entry_key(a, m.0, uid.0), "index record")?;
            Ok(())
        })?;
        let e = EntryRec::decode(&e.ok_or(StoreError::NoSuchMessage)?)?;
        if e.flags.is_empty() {
            return Ok(Vec::new());
        }
        let pt = open(inner.p, &s.meta_key, &flags_aad(a, e.seq), &e.flags)
            .map_err(|_| StoreError::Corrupt { what: "flags" })?;
        Ok(parse_flags(&pt))
    }

    fn list_summaries(
        &self,
        s: &mut Session,
        m: MailboxId,
        now: Timestamp,
    ) -> Result<Vec<(EntryInfo, Option<Zeroizing<Vec<u8>>>)>, MailboxError> {
        Ok(self.list_summaries_inner(s, m, now)?)
    }

    fn summary(
        &self,
        s: &mut Session,
        m: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, MailboxError> {
        Ok(self.summary_inner(s, m, uid, now)?)
    }

    fn seal_summaries(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        summaries: &[(Uid, &[u8])],
        now: Timestamp,
    ) -> Result<SealedSummaries, MailboxError> {
        Ok(self.seal_summaries_inner(rng, s, m, summaries, now)?)
    }

    fn put_summaries(&self, summaries: &SealedSummaries) -> Result<usize, MailboxError> {
        Ok(self.put_summaries_inner(summaries)?)
    }

    fn open_message(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Opened, MailboxError> {
        Ok(self.open_message_inner(rng, s, m, uid, now)?)
    }

    fn open_for_display(
        &self,
        s: &mut Session,
        m: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Option<crate::Displayed>, MailboxError> {
        Ok(self.open_for_display_inner(s, m, uid, now)?)
    }

    fn open_for_display_many(
        &self,
        k: &crate::DisplayKey,
        m: MailboxId,
        uids: &[Uid],
        budget: usize,
    ) -> Result<Vec<(Uid, Option<crate::Displayed>)>, MailboxError> {
        Ok(self
            .open_for_display_many_inner(k, m, uids, budget)?
            .into_iter()
            .map(|(u, f)| match f {
                crate::rewrap::Found::Shown(d) => (u, Some(*d)),
                _ => (u, None),
            })
            .collect())
    }

    fn open_message_uncached(
        &self,
        s: &mut Session,
        m: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Opened, MailboxError> {
        Ok(self.open_message_uncached_inner(s, m, uid, now)?)
    }

    fn rewrap_slots(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        batch: usize,
        now: Timestamp,
        progress: &mut dyn FnMut(RewrapProgress),
    ) -> Result<RewrapProgress, MailboxError> {
        Ok(self.rewrap_slots_inner(rng, s, batch, now, progress)?)
    }

    fn append(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        envelope: &[u8],
        flags: &[&str],
        internal_date: Timestamp,
        summary: Option<&[u8]>,
        now: Timestamp,
    ) -> Result<Appended, MailboxError> {
        Ok(self.append_inner(rng, s, m, envelope, flags, internal_date, summary, now)?)
    }

    fn flags_all(
        &self,
        s: &mut Session,
        m: MailboxId,
        now: Timestamp,
    ) -> Result<Vec<(Uid, u64, Vec<String>)>, MailboxError> {
        Ok(self.flags_all_inner(s, m, None, now)?)
    }

    fn flags_of(
        &self,
        s: &mut Session,
        m: MailboxId,
        uids: &[Uid],
        now: Timestamp,
    ) -> Result<Vec<(Uid, u64, Vec<String>)>, MailboxError> {
        Ok(self.flags_all_inner(s, m, Some(uids), now)?)
    }

    fn store_flags(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        changes: &[(Uid, Vec<String>)],
        unchanged_since: Option<u64>,
        now: Timestamp,
    ) -> Result<FlagsStored, MailboxError> {
        Ok(self.store_flags_inner(rng, s, m, changes, unchanged_since, now)?)
    }

    fn vanished_ranges_since(
        &self,
        a: AccountId,
        m: MailboxId,
        modseq: u64,
    ) -> Result<Vec<(Uid, Uid)>, MailboxError> {
        Ok(self.vanished_inner(a, m, modseq)?)
    }

    fn create_mailbox_with(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        name: &str,
        special_use: Option<SpecialUse>,
        now: Timestamp,
    ) -> Result<MailboxId, MailboxError> {
        Ok(self.create_mailbox_inner(rng, s, name, special_use, now)?)
    }

    fn rename_mailbox(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        new_name: &str,
        now: Timestamp,
    ) -> Result<(), MailboxError> {
        Ok(self.rename_mailbox_inner(rng, s, &[(m, new_name)], now)?)
    }

    fn rename_mailboxes(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        renames: &[(MailboxId, &str)],
        now: Timestamp,
    ) -> Result<(), MailboxError> {
        Ok(self.rename_mailbox_inner(rng, s, renames, now)?)
    }

    fn set_subscribed(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        subscribed: bool,
        now: Timestamp,
    ) -> Result<(), MailboxError> {
        Ok(self.set_attrs_inner(rng, s, m, &|a| a.subscribed = subscribed, now)?)
    }

    fn set_special_use(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        special_use: Option<SpecialUse>,
        now: Timestamp,
    ) -> Result<(), MailboxError> {
        Ok(self.set_attrs_inner(rng, s, m, &|a| a.special_use = special_use, now)?)
    }

    fn mailbox(
        &self,
        s: &mut Session,
        m: MailboxId,
        now: Timestamp,
    ) -> Result<MailboxInfo, MailboxError> {
        Ok(self.mailbox_inner(s, m, now)?)
    }
}

impl Store {
    /// [`Mailboxes::list`](crate::Mailboxes::list), each entry with its message's sequence number.
    pub(crate) fn list_with_seqs(
        &self,
        a: AccountId,
        m: MailboxId,
    ) -> Result<Vec<(EntryInfo, u64)>, StoreError> {
        let inner = &*self.inner;
        let mut out = Vec::new();
        let mut bad = Vec::new();
        inner.backend.read(&mut |t| {
            out.clear();
            bad.clear();
            load_mbox(inner, t, a, m)?;
            let prefix = mbox_key(a, m);
            for (k, v) in t.range(Table::Entries, &prefix, &prefix_end(&prefix), usize::MAX)? {
                let Some(uid) =
                    k.get(20..24).and_then(|s| s.try_into().ok()).map(u32::from_be_bytes)
                else {
                    bad.push((Table::Entries, k));
                    continue;
                };
                let e = match crate::codec::open_record(
                    inner.p,
                    Table::Entries,
                    &k,
                    &v,
                    "index record",
                )
                .and_then(EntryRec::decode)
                {
                    Ok(e) => e,
                    Err(_) => {
                        bad.push((Table::Entries, k));
                        continue;
                    }
                };
                let msg = match load_msg(inner, t, a, e.seq) {
                    Ok(Some(msg)) => msg,
                    Ok(None) => continue,
                    Err(StoreError::Corrupt { .. }) => {
                        bad.push((Table::Messages, msg_key(a, e.seq)));
                        continue;
                    }
                    Err(other) => return Err(other),
                };
                out.push((
                    EntryInfo {
                        uid: Uid(uid),
                        modseq: e.modseq,
                        size: msg.size,
                        arrival: Timestamp(msg.arrival),
                        key_generation: msg.key_gen,
                        has_flags: !e.flags.is_empty(),
                    },
                    e.seq,
                ));
            }
            Ok(())
        })?;
        for (table, k) in &bad {
            quarantine(inner, *table, k);
        }
        Ok(out)
    }

    /// [`Mailboxes::fetch`](crate::Mailboxes::fetch) with its record, reading in the same read transaction what `beside`
    /// reads given the message key (it reports only backend errors: a corrupt item it reads
    /// is its own to handle). The blob's digest is checked once.
    pub(crate) fn fetch_with<T>(
        &self,
        a: AccountId,
        m: MailboxId,
        uid: Uid,
        mut beside: impl FnMut(&dyn ReadTxn, &[u8]) -> Result<T, StoreError>,
    ) -> Result<Fetched<T>, StoreError> {
        let inner = &*self.inner;
        let mut found: Option<(u64, Result<Fetched<T>, StoreError>)> = None;
        let ek = entry_key(a, m.0, uid.0);
        let r = inner.backend.read(&mut |t| {
            let e = get_body(inner, t, Table::Entries, &ek, "index record")?
                .ok_or(StoreError::NoSuchMessage)?;
            let e = EntryRec::decode(&e)?;
            let got = (|| {
                let key = msg_key(a, e.seq);
                let msg = load_msg(inner, t, a, e.seq)?.ok_or(StoreError::NoSuchMessage)?;
                let blob =
                    t.get(Table::Blobs, &key)?.ok_or(StoreError::Corrupt { what: "message" })?;
                Ok(Fetched { seq: e.seq, msg, blob, beside: beside(t, &key)? })
            })();
            found = Some((e.seq, got));
            Ok(())
        });
        if let Err(StoreError::Corrupt { what }) = r {
            quarantine(inner, Table::Entries, &ek);
            return Err(StoreError::Corrupt { what });
        }
        r?;
        let Some((seq, got)) = found else { return Err(StoreError::NoSuchMessage) };
        match got {
            Ok(f) if inner.blob_digest.of(inner.p, &f.blob) == f.msg.digest => Ok(f),
            Ok(_) | Err(StoreError::Corrupt { .. }) => {
                self.quarantine_message(a, seq)?;
                Err(StoreError::Corrupt { what: "message" })
            }
            Err(e) => Err(e),
        }
    }

    fn quarantine_message(&self, a: AccountId, seq: u64) -> Result<(), StoreError> {
        let inner = &*self.inner;
        let k = msg_key(a, seq);
        inner.backend.write(&mut |t| {
            let msg = load_msg(inner, t, a, seq).ok().flatten();
            for table in [Table::Blobs, Table::Messages] {
                quarantine_in(t, table, &k)?;
            }
            crate::rewrap::delete_overlays(t, &k)?;
            if let Some(msg) = msg {
                let mut gone = Gone::default();
                for (mb, uid) in &msg.refs {
                    if t.delete(Table::Entries, &entry_key(a, *mb, *uid))?
                        && let Ok(mut r) = load_mbox(inner, t, a, MailboxId(*mb))
                    {
                        {
                            r.count = r.count.saturating_sub(1);
                            r.modseq += 1;
                            gone.push(MailboxId(*mb), *uid, r.modseq);
                            put_body(
                                inner,
                                t,
                                Table::Mailboxes,
                                &mbox_key(a, MailboxId(*mb)),
                                r.encode(),
                            )?;
                        }
                    }
                }
                gone.record(inner, t, a)?;
                let mut acc = load_account(inner, t, a)?;
                acc.used = acc.used.saturating_sub(msg.size);
                acc.count = acc.count.saturating_sub(1);
                save_account(inner, t, a, &acc)?;
            }
            Ok(())
        })
    }

    fn copy_or_move(
        &self,
        a: AccountId,
        src: MailboxId,
        uids: &[Uid],
        dst: MailboxId,
        remove: bool,
    ) -> Result<Vec<(Uid, Uid)>, StoreError> {
        let inner = &*self.inner;
        let mut out = Vec::new();
        inner.backend.write(&mut |t| {
            out.clear();
            let mut gone = Gone::default();
            for uid in uids {
                let Some(b) = get_body(
                    inner,
                    t,
                    Table::Entries,
                    &entry_key(a, src.0, uid.0),
                    "index record",
                )?
                else {
                    continue;
                };
                let e = EntryRec::decode(&b)?;
                let mut mb = load_mbox(inner, t, a, dst)?;
                let new_uid = mb.uid_next;
                mb.uid_next = mb
                    .uid_next
                    .checked_add(1)
                    .ok_or(StoreError::TooLarge { what: "uid", limit: u32::MAX as usize })?;
                mb.modseq += 1;
                mb.count += 1;
                let ne = EntryRec { seq: e.seq, modseq: mb.modseq, flags: e.flags.clone() };
                put_body(inner, t, Table::Entries, &entry_key(a, dst.0, new_uid), ne.encode())?;
                put_body(inner, t, Table::Mailboxes, &mbox_key(a, dst), mb.encode())?;
                let mut msg = load_msg(inner, t, a, e.seq)?.ok_or(StoreError::NoSuchMessage)?;
                if msg.refs.len() as u32 >= MAX_REFS {
                    return Err(StoreError::TooLarge {
                        what: "copies of one message",
                        limit: MAX_REFS as usize,
                    });
                }
                msg.refs.push((dst.0, new_uid));
                put_body(inner, t, Table::Messages, &msg_key(a, e.seq), msg.encode())?;
                if remove {
                    remove_entry(inner, t, a, src, uid.0, &mut gone)?;
                }
                out.push((*uid, Uid(new_uid)));
            }
            gone.record(inner, t, a)
        })?;
        Ok(out)
    }
}
