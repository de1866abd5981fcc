//! What the store keeps for IMAP4rev2 and the extensions of issue 21 (`spec/storage.md` §5.1-
//! §5.4): APPEND into any mailbox, flags in bulk with CONDSTORE's `UNCHANGEDSINCE`, expunge
//! tombstones for QRESYNC's `VANISHED`, mailbox attributes (subscription, SPECIAL-USE), RENAME,
//! and one mailbox's counters.
//!
//! Two records sit beside a mailbox's record in the `mailboxes` table, under its key and one
//! more octet: `0x01` its tombstones (clear: UIDs and MODSEQs only), `0x02` its attributes
//! (sealed under the meta key, as its name). A mailbox with neither reads as subscribed, with
//! no special use and no removal tracked, so records written before them read unchanged.

use crate::account::{get_body, load_account, prefix_end, put_body, save_account};
use crate::backend::{Backend, ReadTxn, Table, WriteTxn};
use crate::codec::{CHECKSUM_LEN, Dec, Enc, open_record};
use crate::keys::{Session, open, seal, seal_with_nonce};
use crate::mail::{
    EntryRec, MailboxInfo, MboxRec, MsgRec, entry_key, flags_aad, load_mbox, mbox_key, msg_key,
    name_aad, new_mailbox_rec, parse_flags,
};
use crate::rewrap::overlay_key;
use crate::summary::{OVERLAY_SUMMARY, summary_aad};
use crate::{
    AccountId, Inner, MAX_ENVELOPE_LEN, MAX_FLAGS_LEN, MAX_MAILBOX_NAME_LEN, MAX_SUMMARY_LEN,
    MailboxId, Store, StoreError, Timestamp, Uid,
};
use dime_core::CryptoRngCore;
use dime_core::crypto::{AEAD_NONCE_LEN, AeadKey};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Most tombstone runs one mailbox keeps (`spec/storage.md` §5.3): a run is a range of UIDs
/// removed one after another, with the MODSEQ of the last removal. Past it the oldest run is
/// dropped and the mailbox's tombstone floor rises to its MODSEQ.
pub const MAX_TOMBSTONES: usize = 1024;

/// Key suffix of a mailbox's tombstone record.
const SUFFIX_VANISHED: u8 = 0x01;
/// Key suffix of a mailbox's attribute record.
const SUFFIX_ATTRS: u8 = 0x02;
/// Version octet of the attribute plaintext.
const ATTRS_VERSION: u8 = 1;
/// The `jobs` key suffix (after the account id) of the last UIDVALIDITY given to a mailbox.
const LAST_UID_VALIDITY: &[u8] = b"last uidvalidity";

/// A mailbox's special use (RFC 6154), at most one mailbox per role in an account
/// (`spec/storage.md` §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpecialUse {
    /// `\All`: every message of the account.
    All,
    /// `\Archive`.
    Archive,
    /// `\Drafts`.
    Drafts,
    /// `\Flagged`: the flagged messages.
    Flagged,
    /// `\Junk`.
    Junk,
    /// `\Sent`.
    Sent,
    /// `\Trash`.
    Trash,
}

impl SpecialUse {
    /// Every role, in code order.
    pub const ALL: [SpecialUse; 7] = [
        SpecialUse::All,
        SpecialUse::Archive,
        SpecialUse::Drafts,
        SpecialUse::Flagged,
        SpecialUse::Junk,
        SpecialUse::Sent,
        SpecialUse::Trash,
    ];

    /// Its code in the attribute record (`spec/storage.md` §5.2): 1 to 7, in the order of
    /// [`SpecialUse::ALL`]; 0 is none.
    pub fn code(self) -> u8 {
        match self {
            SpecialUse::All => 1,
            SpecialUse::Archive => 2,
            SpecialUse::Drafts => 3,
            SpecialUse::Flagged => 4,
            SpecialUse::Junk => 5,
            SpecialUse::Sent => 6,
            SpecialUse::Trash => 7,
        }
    }

    /// The role of a code, if it is one.
    pub fn from_code(code: u8) -> Option<SpecialUse> {
        SpecialUse::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Its IMAP attribute (RFC 6154 §2), `\Sent` and so on.
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
        }
    }
}

/// Where an appended message landed ([`crate::Mailboxes::append`]; RFC 4315's `APPENDUID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Its UID.
    pub uid: Uid,
    /// Its entry's MODSEQ (the mailbox's new HIGHESTMODSEQ).
    pub modseq: u64,
    /// The mailbox's UIDVALIDITY.
    pub uid_validity: u32,
}

/// What [`crate::Mailboxes::store_flags`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagsStored {
    /// The entries that now hold the flags asked for, with their MODSEQ: a new one when their
    /// flags changed, their old one when they already held those flags.
    pub applied: Vec<(Uid, u64)>,
    /// The entries left as they were because their MODSEQ was above `unchanged_since`
    /// (RFC 7162 §3.1.3: the `MODIFIED` response code).
    pub modified: Vec<Uid>,
}

/// A mailbox's attributes, sealed beside its name (`spec/storage.md` §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attrs {
    pub(crate) subscribed: bool,
    pub(crate) special_use: Option<SpecialUse>,
}

impl Default for Attrs {
    /// What a mailbox without an attribute record has: subscribed, no special use.
    fn default() -> Attrs {
        Attrs { subscribed: true, special_use: None }
    }
}

impl Attrs {
    /// The plaintext: u8 version (1), u8 subscribed (0 or 1), u8 special use (0 none, else
    /// [`SpecialUse::code`]).
    pub(crate) fn encode(&self) -> Vec<u8> {
        Enc::new()
            .u8(ATTRS_VERSION)
            .u8(u8::from(self.subscribed))
            .u8(self.special_use.map_or(0, SpecialUse::code))
            .finish()
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Attrs, StoreError> {
        let bad = StoreError::Corrupt { what: "mailbox attributes" };
        let mut d = Dec::new(b, "mailbox attributes");
        if d.u8()? != ATTRS_VERSION {
            return Err(bad);
        }
        let subscribed = match d.u8()? {
            0 => false,
            1 => true,
            _ => return Err(bad),
        };
        let special_use = match d.u8()? {
            0 => None,
            c => Some(SpecialUse::from_code(c).ok_or(bad)?),
        };
        d.finish()?;
        Ok(Attrs { subscribed, special_use })
    }
}

/// A mailbox's tombstones (`spec/storage.md` §5.3): runs of removed UIDs, oldest first, and
/// the floor below which removals are no longer told apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Vanished {
    /// Removals at or below this MODSEQ may be missing from `runs`.
    pub(crate) floor: u64,
    /// (first UID, last UID, MODSEQ of the last removal in the run), in the order recorded.
    pub(crate) runs: Vec<(u32, u32, u64)>,
}

impl Vanished {
    /// u64 floor, u32 n (at most [`MAX_TOMBSTONES`]), n × (u32 first, u32 last, u64 modseq).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Enc::new().u64(self.floor).u32(self.runs.len() as u32);
        for (first, last, modseq) in &self.runs {
            e = e.u32(*first).u32(*last).u64(*modseq);
        }
        e.finish()
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Vanished, StoreError> {
        let bad = StoreError::Corrupt { what: "tombstone record" };
        let mut d = Dec::new(b, "tombstone record");
        let floor = d.u64()?;
        let n = d.u32()? as usize;
        if n > MAX_TOMBSTONES {
            return Err(bad);
        }
        let mut runs = Vec::with_capacity(n);
        for _ in 0..n {
            let (first, last, modseq) = (d.u32()?, d.u32()?, d.u64()?);
            if first > last {
                return Err(bad);
            }
            runs.push((first, last, modseq));
        }
        d.finish()?;
        Ok(Vanished { floor, runs })
    }

    /// Records the removal of `uid` at `modseq`: it joins the last run when it extends it at
    /// either end, else starts one; past [`MAX_TOMBSTONES`] runs, the oldest goes and the floor
    /// rises to its MODSEQ.
    pub(crate) fn add(&mut self, uid: u32, modseq: u64) {
        match self.runs.last_mut() {
            Some(run) if run.1.checked_add(1) == Some(uid) => *run = (run.0, uid, modseq),
            Some(run) if uid.checked_add(1) == Some(run.0) => *run = (uid, run.1, modseq),
            _ => self.runs.push((uid, uid, modseq)),
        }
        while self.runs.len() > MAX_TOMBSTONES {
            let old = self.runs.remove(0);
            self.floor = self.floor.max(old.2);
        }
    }
}

/// The key of a record beside mailbox `m`'s.
fn beside_key(a: AccountId, m: MailboxId, suffix: u8) -> Vec<u8> {
    let mut k = mbox_key(a, m);
    k.push(suffix);
    k
}

fn attrs_aad(a: AccountId, m: MailboxId) -> Vec<u8> {
    Enc::new().raw(b"dime-store mailbox attributes").raw(&a.0).u32(m.0).finish()
}

/// UIDs removed inside one write transaction, recorded as tombstones at its end.
#[derive(Default)]
pub(crate) struct Gone(Vec<(u32, u32, u64)>);

impl Gone {
    /// Remembers that `uid` left mailbox `m` at `modseq`.
    pub(crate) fn push(&mut self, m: MailboxId, uid: u32, modseq: u64) {
        self.0.push((m.0, uid, modseq));
    }

    /// Writes the tombstones of every mailbox still there, one record each.
    pub(crate) fn record(
        self,
        inner: &Inner,
        t: &mut dyn WriteTxn,
        a: AccountId,
    ) -> Result<(), StoreError> {
        let mut by_box: BTreeMap<u32, Vec<(u32, u64)>> = BTreeMap::new();
        for (m, uid, modseq) in self.0 {
            by_box.entry(m).or_default().push((uid, modseq));
        }
        for (m, removed) in by_box {
            let m = MailboxId(m);
            if get_body(inner, t, Table::Mailboxes, &mbox_key(a, m), "mailbox record")?.is_none() {
                continue;
            }
            let k = beside_key(a, m, SUFFIX_VANISHED);
            let mut v = match get_body(inner, t, Table::Mailboxes, &k, "tombstone record")? {
                Some(b) => Vanished::decode(&b)?,
                // Removals before the first one recorded are not told apart (§5.3).
                None => Vanished {
                    floor: removed.iter().map(|r| r.1).min().unwrap_or(1).saturating_sub(1),
                    runs: Vec::new(),
                },
            };
            for (uid, modseq) in removed {
                v.add(uid, modseq);
            }
            put_body(inner, t, Table::Mailboxes, &k, v.encode())?;
        }
        Ok(())
    }
}

/// Deletes the records beside mailbox `m`'s (with the mailbox).
pub(crate) fn delete_beside(
    t: &mut dyn WriteTxn,
    a: AccountId,
    m: MailboxId,
) -> Result<(), StoreError> {
    for suffix in [SUFFIX_VANISHED, SUFFIX_ATTRS] {
        t.delete(Table::Mailboxes, &beside_key(a, m, suffix))?;
    }
    Ok(())
}

/// Whether two mailbox names name the same mailbox: equal octets, or both `INBOX` in any case
/// (RFC 9051 §5.1).
pub(crate) fn same_name(x: &str, y: &str) -> bool {
    x == y || (x.eq_ignore_ascii_case("INBOX") && y.eq_ignore_ascii_case("INBOX"))
}

fn check_name(name: &str) -> Result<(), StoreError> {
    if name.len() > MAX_MAILBOX_NAME_LEN {
        return Err(StoreError::TooLarge { what: "mailbox name", limit: MAX_MAILBOX_NAME_LEN });
    }
    Ok(())
}

/// The mailboxes of the session's account as one transaction reads them: (id, record,
/// attributes). A record that fails its checksum or does not decode is left out (and named in
/// `bad`, for the caller to quarantine); a name or attribute seal that does not open is
/// [`StoreError::Corrupt`].
fn read_all(
    inner: &Inner,
    t: &dyn ReadTxn,
    s: &Session,
    bad: &mut Vec<Vec<u8>>,
) -> Result<Vec<(MailboxId, MboxRec, String, Attrs)>, StoreError> {
    let a = s.account;
    let mut out: Vec<(MailboxId, MboxRec, String, Attrs)> = Vec::new();
    for (k, v) in t.range(Table::Mailboxes, &a.0, &prefix_end(&a.0), usize::MAX)? {
        let Some(id) = k.get(16..20).and_then(|s| s.try_into().ok()).map(u32::from_be_bytes) else {
            continue;
        };
        let id = MailboxId(id);
        match k.len() {
            20 => {
                let Ok(r) = open_record(inner.p, Table::Mailboxes, &k, &v, "mailbox record")
                    .and_then(MboxRec::decode)
                else {
                    bad.push(k);
                    continue;
                };
                let name = open(inner.p, &s.meta_key, &name_aad(a, id), &r.name)
                    .map_err(|_| StoreError::Corrupt { what: "mailbox name" })?;
                let name = String::from_utf8_lossy(&name).into_owned();
                out.push((id, r, name, Attrs::default()));
            }
            21 if k[20] == SUFFIX_ATTRS => {
                // Its mailbox's record comes just before it, in key order.
                let Some(last) = out.last_mut().filter(|m| m.0 == id) else { continue };
                let Ok(body) = open_record(inner.p, Table::Mailboxes, &k, &v, "mailbox attributes")
                else {
                    bad.push(k);
                    continue;
                };
                let plain = open(inner.p, &s.meta_key, &attrs_aad(a, id), body)
                    .map_err(|_| StoreError::Corrupt { what: "mailbox attributes" })?;
                last.3 = Attrs::decode(&plain)?;
            }
            _ => {}
        }
    }
    Ok(out)
}

fn info(id: MailboxId, r: &MboxRec, name: String, attrs: Attrs) -> MailboxInfo {
    MailboxInfo {
        id,
        name,
        uid_validity: r.uid_validity,
        uid_next: r.uid_next,
        highest_modseq: r.modseq,
        messages: r.count,
        subscribed: attrs.subscribed,
        special_use: attrs.special_use,
    }
}

/// Refuses `name` when another mailbox than `except` has it ([`StoreError::MailboxExists`]),
/// and `role` when another mailbox than `except` has it ([`StoreError::SpecialUseTaken`]).
fn check_free(
    inner: &Inner,
    t: &dyn ReadTxn,
    s: &Session,
    name: Option<&str>,
    role: Option<SpecialUse>,
    except: Option<MailboxId>,
) -> Result<(), StoreError> {
    let mut bad = Vec::new();
    for (id, _, other, attrs) in read_all(inner, t, s, &mut bad)? {
        if Some(id) == except {
            continue;
        }
        if name.is_some_and(|n| same_name(n, &other)) {
            return Err(StoreError::MailboxExists);
        }
        if let Some(role) = role
            && attrs.special_use == Some(role)
        {
            return Err(StoreError::SpecialUseTaken { role, by: id });
        }
    }
    Ok(())
}

fn load_attrs(
    inner: &Inner,
    t: &dyn ReadTxn,
    s: &Session,
    m: MailboxId,
) -> Result<Attrs, StoreError> {
    let k = beside_key(s.account, m, SUFFIX_ATTRS);
    match get_body(inner, t, Table::Mailboxes, &k, "mailbox attributes")? {
        None => Ok(Attrs::default()),
        Some(b) => {
            let plain = open(inner.p, &s.meta_key, &attrs_aad(s.account, m), &b)
                .map_err(|_| StoreError::Corrupt { what: "mailbox attributes" })?;
            Attrs::decode(&plain)
        }
    }
}

fn put_attrs(
    inner: &Inner,
    t: &mut dyn WriteTxn,
    rng: &mut dyn CryptoRngCore,
    s: &Session,
    m: MailboxId,
    attrs: &Attrs,
) -> Result<(), StoreError> {
    let sealed = seal(inner.p, rng, &s.meta_key, &attrs_aad(s.account, m), &attrs.encode());
    put_body(inner, t, Table::Mailboxes, &beside_key(s.account, m, SUFFIX_ATTRS), sealed)
}

/// The flags of an entry, opened (none when never set).
fn entry_flags(inner: &Inner, s: &Session, e: &EntryRec) -> Result<Vec<String>, StoreError> {
    if e.flags.is_empty() {
        return Ok(Vec::new());
    }
    let pt = open(inner.p, &s.meta_key, &flags_aad(s.account, e.seq), &e.flags)
        .map_err(|_| StoreError::Corrupt { what: "flags" })?;
    Ok(parse_flags(&pt))
}

fn flags_plain(flags: &[impl AsRef<str>]) -> Result<String, StoreError> {
    let plain = flags.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ");
    if plain.len() > MAX_FLAGS_LEN {
        return Err(StoreError::TooLarge { what: "flags", limit: MAX_FLAGS_LEN });
    }
    Ok(plain)
}

/// An APPEND handed to the committer (`spec/storage.md` §4.1, §5.1): what it seals in its
/// transaction, once the message number the seals are bound to is known. The plaintext and
/// the keys are zeroized when it is dropped.
pub(crate) struct AppendJob {
    pub(crate) mailbox: MailboxId,
    pub(crate) internal_date: Timestamp,
    /// The flags, space-separated (empty for none).
    pub(crate) flags: Zeroizing<Vec<u8>>,
    pub(crate) summary: Option<Zeroizing<Vec<u8>>>,
    pub(crate) meta_key: AeadKey,
    pub(crate) read_key: AeadKey,
    /// The nonces of the flags' and the summary's seals, drawn by the caller.
    pub(crate) nonces: [[u8; AEAD_NONCE_LEN]; 2],
}

/// An APPEND's seals: its flags (empty for none) and its summary.
type Seals = (Vec<u8>, Option<Vec<u8>>);

/// Writes one new message inside a transaction (an APPEND, and a delivery, which is one to the
/// inbox without flags or summary); every check comes before the first write. `seals` gives
/// the sealed flags and summary once the message number is known. Returns where it landed,
/// its message number and its seals.
#[allow(clippy::too_many_arguments)]
pub(crate) fn append_write(
    inner: &Inner,
    t: &mut dyn WriteTxn,
    a: AccountId,
    m: MailboxId,
    internal_date: Timestamp,
    digest: &[u8; CHECKSUM_LEN],
    envelope: &[u8],
    seals: &mut dyn FnMut(u64) -> Result<Seals, StoreError>,
) -> Result<(crate::Appended, u64, Seals), StoreError> {
    let size = envelope.len() as u64;
    let mut acc = load_account(inner, t, a)?;
    let mut mb = load_mbox(inner, t, a, m)?;
    if acc.used.saturating_add(size) > acc.quota {
        return Err(StoreError::OverQuota { used: acc.used, limit: acc.quota, size });
    }
    let uid = mb.uid_next;
    mb.uid_next =
        uid.checked_add(1).ok_or(StoreError::TooLarge { what: "uid", limit: u32::MAX as usize })?;
    mb.modseq += 1;
    mb.count += 1;
    let seq = acc.next_msg;
    // The seals are bound to the message number, known only here.
    let (sealed_flags, sealed_summary) = seals(seq)?;
    acc.next_msg += 1;
    acc.used += size;
    acc.count += 1;
    let msg = MsgRec {
        size,
        arrival: internal_date.0,
        key_gen: acc.key_gen,
        digest: *digest,
        refs: vec![(m.0, uid)],
    };
    let mk = msg_key(a, seq);
    t.put(Table::Blobs, &mk, envelope)?;
    put_body(inner, t, Table::Messages, &mk, msg.encode())?;
    let e = EntryRec { seq, modseq: mb.modseq, flags: sealed_flags.clone() };
    put_body(inner, t, Table::Entries, &entry_key(a, m.0, uid), e.encode())?;
    if let Some(sealed) = &sealed_summary {
        put_body(inner, t, Table::Overlays, &overlay_key(&mk, OVERLAY_SUMMARY), sealed.clone())?;
    }
    put_body(inner, t, Table::Mailboxes, &mbox_key(a, m), mb.encode())?;
    save_account(inner, t, a, &acc)?;
    let done = crate::Appended { uid: Uid(uid), modseq: mb.modseq, uid_validity: mb.uid_validity };
    Ok((done, seq, (sealed_flags, sealed_summary)))
}

/// Applies `job` in the committer's transaction: sealed with the job's keys and nonces.
/// Returns where it landed and its delivery log payload (`spec/storage.md` §4.1): u32 mailbox,
/// u64 message number, u64 internal date, the envelope's 16-octet blob digest, the sealed
/// flags and the sealed summary (each u32 length ‖ octets; a summary of length 0 is none),
/// then the envelope.
pub(crate) fn append_one(
    inner: &Inner,
    t: &mut dyn WriteTxn,
    a: AccountId,
    envelope: &[u8],
    digest: &[u8; CHECKSUM_LEN],
    job: &AppendJob,
) -> Result<(crate::Appended, Vec<u8>), StoreError> {
    let p = inner.p;
    let (done, seq, (flags, summary)) =
        append_write(inner, t, a, job.mailbox, job.internal_date, digest, envelope, &mut |seq| {
            let flags = if job.flags.is_empty() {
                Vec::new()
            } else {
                seal_with_nonce(p, &job.nonces[0], &job.meta_key, &flags_aad(a, seq), &job.flags)
            };
            let aad = summary_aad(&msg_key(a, seq));
            let summary = job
                .summary
                .as_ref()
                .map(|b| seal_with_nonce(p, &job.nonces[1], &job.read_key, &aad, b));
            Ok((flags, summary))
        })?;
    let payload = Enc::new()
        .u32(job.mailbox.0)
        .u64(seq)
        .u64(job.internal_date.0)
        .raw(digest)
        .bytes(&flags)
        .bytes(summary.as_deref().unwrap_or_default())
        .raw(envelope)
        .finish();
    Ok((done, payload))
}

/// Applies an APPEND's delivery log payload again (the replay of `spec/storage.md` §4.1): the
/// same message number, the same seals.
pub(crate) fn replay_append(
    inner: &Inner,
    t: &mut dyn WriteTxn,
    a: AccountId,
    payload: &[u8],
) -> Result<crate::Appended, StoreError> {
    let what = "delivery log APPEND record";
    let mut d = Dec::new(payload, what);
    let m = MailboxId(d.u32()?);
    let seq = d.u64()?;
    let date = Timestamp(d.u64()?);
    let digest: [u8; CHECKSUM_LEN] = d.array()?;
    let flags = d.bytes()?;
    let summary = d.bytes()?;
    let envelope = d.rest();
    let summary = (!summary.is_empty()).then_some(summary);
    let (done, _, _) = append_write(inner, t, a, m, date, &digest, envelope, &mut |s| {
        if s == seq {
            Ok((flags.to_vec(), summary.map(<[u8]>::to_vec)))
        } else {
            // Replay is deterministic: an acknowledged APPEND that would land elsewhere is
            // never dropped silently; the store does not open.
            Err(StoreError::Backend(format!("{what}: message {seq} would replay as {s}")))
        }
    })?;
    Ok(done)
}

fn same_set(x: &[String], y: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().filter(|f| !f.is_empty()).cloned().collect();
        v.sort();
        v.dedup();
        v
    };
    norm(x) == norm(y)
}

impl Store {
    /// The body of [`Mailboxes::append`](crate::Mailboxes::append): checked and sealed
    /// (what can be) here, then written by the committer with the deliveries, through the
    /// delivery log (`spec/storage.md` §4.1, §5.1): durable when this returns.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append_inner(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        envelope: &[u8],
        flags: &[&str],
        internal_date: Timestamp,
        summary: Option<&[u8]>,
        now: Timestamp,
    ) -> Result<crate::Appended, StoreError> {
        s.touch(now)?;
        if envelope.len() > MAX_ENVELOPE_LEN {
            return Err(StoreError::TooLarge { what: "envelope", limit: MAX_ENVELOPE_LEN });
        }
        if summary.is_some_and(|b| b.len() > MAX_SUMMARY_LEN) {
            return Err(StoreError::TooLarge { what: "summary", limit: MAX_SUMMARY_LEN });
        }
        let plain = flags_plain(flags)?;
        let inner = &*self.inner;
        let digest = inner.blob_digest.of(inner.p, envelope);
        let mut nonces = [[0u8; AEAD_NONCE_LEN]; 2];
        for n in &mut nonces {
            rng.fill_bytes(n);
        }
        let job = AppendJob {
            mailbox: m,
            internal_date,
            flags: Zeroizing::new(plain.into_bytes()),
            summary: summary.map(|b| Zeroizing::new(b.to_vec())),
            meta_key: s.meta_key.duplicate(),
            read_key: s.read_key.duplicate(),
            nonces,
        };
        self.append_through_committer(s.account, envelope, digest, now, job)
    }

    /// The body of [`Mailboxes::flags_all`](crate::Mailboxes::flags_all).
    #[allow(clippy::type_complexity)]
    ///
    /// With `only`, the entries of those UIDs alone (each looked up, for a command that names
    /// a few messages of a large mailbox), in UID order; a UID with no entry is left out.
    pub(crate) fn flags_all_inner(
        &self,
        s: &mut Session,
        m: MailboxId,
        only: Option<&[Uid]>,
        now: Timestamp,
    ) -> Result<Vec<(Uid, u64, Vec<String>)>, StoreError> {
        s.touch(now)?;
        let inner = &*self.inner;
        let a = s.account;
        let mut out = Vec::new();
        let mut bad = Vec::new();
        let mut wanted: Option<Vec<Uid>> = only.map(<[Uid]>::to_vec);
        if let Some(w) = wanted.as_mut() {
            w.sort_unstable_by_key(|u| u.0);
            w.dedup();
        }
        inner.backend.read(&mut |t| {
            out.clear();
            bad.clear();
            load_mbox(inner, t, a, m)?;
            let prefix = mbox_key(a, m);
            let entries: Vec<(Vec<u8>, Vec<u8>)> = match &wanted {
                None => t.range(Table::Entries, &prefix, &prefix_end(&prefix), usize::MAX)?,
                Some(w) => {
                    let mut v = Vec::with_capacity(w.len());
                    for u in w {
                        let k = entry_key(a, m.0, u.0);
                        if let Some(val) = t.get(Table::Entries, &k)? {
                            v.push((k, val));
                        }
                    }
                    v
                }
            };
            for (k, v) in entries {
                let uid = k.get(20..24).and_then(|s| s.try_into().ok()).map(u32::from_be_bytes);
                let e = open_record(inner.p, Table::Entries, &k, &v, "index record")
                    .and_then(EntryRec::decode);
                let (Some(uid), Ok(e)) = (uid, e) else {
                    bad.push(k);
                    continue;
                };
                out.push((Uid(uid), e.modseq, entry_flags(inner, s, &e)?));
            }
            Ok(())
        })?;
        for k in &bad {
            crate::quarantine(inner, Table::Entries, k);
        }
        Ok(out)
    }

    /// The body of [`Mailboxes::store_flags`](crate::Mailboxes::store_flags).
    pub(crate) fn store_flags_inner(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        changes: &[(Uid, Vec<String>)],
        unchanged_since: Option<u64>,
        now: Timestamp,
    ) -> Result<FlagsStored, StoreError> {
        s.touch(now)?;
        let plains = changes.iter().map(|(_, f)| flags_plain(f)).collect::<Result<Vec<_>, _>>()?;
        let inner = &*self.inner;
        let a = s.account;
        let mut out = FlagsStored::default();
        inner.backend.write(&mut |t| {
            out = FlagsStored::default();
            let mut mb = load_mbox(inner, t, a, m)?;
            let before = mb.modseq;
            for ((uid, flags), plain) in changes.iter().zip(&plains) {
                let ek = entry_key(a, m.0, uid.0);
                let Some(b) = get_body(inner, t, Table::Entries, &ek, "index record")? else {
                    continue;
                };
                let mut e = EntryRec::decode(&b)?;
                if unchanged_since.is_some_and(|since| e.modseq > since) {
                    out.modified.push(*uid);
                    continue;
                }
                if same_set(&entry_flags(inner, s, &e)?, flags) {
                    out.applied.push((*uid, e.modseq));
                    continue;
                }
                mb.modseq += 1;
                e.modseq = mb.modseq;
                e.flags =
                    seal(inner.p, &mut *rng, &s.meta_key, &flags_aad(a, e.seq), plain.as_bytes());
                put_body(inner, t, Table::Entries, &ek, e.encode())?;
                out.applied.push((*uid, e.modseq));
            }
            if mb.modseq != before {
                put_body(inner, t, Table::Mailboxes, &mbox_key(a, m), mb.encode())?;
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The body of [`Mailboxes::vanished_ranges_since`](crate::Mailboxes::vanished_ranges_since).
    pub(crate) fn vanished_inner(
        &self,
        a: AccountId,
        m: MailboxId,
        since: u64,
    ) -> Result<Vec<(Uid, Uid)>, StoreError> {
        let inner = &*self.inner;
        let mut out = Vec::new();
        inner.backend.read(&mut |t| {
            out.clear();
            let mb = load_mbox(inner, t, a, m)?;
            if since >= mb.modseq {
                return Ok(());
            }
            let k = beside_key(a, m, SUFFIX_VANISHED);
            let v = match get_body(inner, t, Table::Mailboxes, &k, "tombstone record")? {
                Some(b) => Vanished::decode(&b)?,
                // Nothing recorded: every removal, if any, is at or below the current MODSEQ.
                None => Vanished { floor: mb.modseq, runs: Vec::new() },
            };
            if since < v.floor {
                // Not told apart: every UID below UIDNEXT that is not there (RFC 7162 §3.2.5.1
                // lets the server report more than was removed since).
                let prefix = mbox_key(a, m);
                let mut next = 1u32;
                for (k, _) in t.range(Table::Entries, &prefix, &prefix_end(&prefix), usize::MAX)? {
                    let Some(uid) =
                        k.get(20..24).and_then(|s| s.try_into().ok()).map(u32::from_be_bytes)
                    else {
                        continue;
                    };
                    if uid > next {
                        out.push((Uid(next), Uid(uid - 1)));
                    }
                    next = next.max(uid.saturating_add(1));
                }
                if mb.uid_next > next {
                    out.push((Uid(next), Uid(mb.uid_next - 1)));
                }
                return Ok(());
            }
            let mut runs: Vec<(u32, u32)> =
                v.runs.iter().filter(|r| r.2 > since).map(|r| (r.0, r.1)).collect();
            runs.sort_unstable();
            for (first, last) in runs {
                match out.last_mut() {
                    Some((_, end)) if end.0.saturating_add(1) >= first => {
                        end.0 = end.0.max(last);
                    }
                    _ => out.push((Uid(first), Uid(last))),
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The body of [`Mailboxes::create_mailbox_with`](crate::Mailboxes::create_mailbox_with).
    pub(crate) fn create_mailbox_inner(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        name: &str,
        special_use: Option<SpecialUse>,
        now: Timestamp,
    ) -> Result<MailboxId, StoreError> {
        s.touch(now)?;
        check_name(name)?;
        let inner = &*self.inner;
        let a = s.account;
        let mut id = MailboxId(0);
        let last_key = Enc::new().raw(&a.0).raw(LAST_UID_VALIDITY).finish();
        inner.backend.write(&mut |t| {
            check_free(inner, t, s, Some(name), special_use, None)?;
            let mut acc = load_account(inner, t, a)?;
            id = MailboxId(acc.next_mbox);
            acc.next_mbox = acc
                .next_mbox
                .checked_add(1)
                .ok_or(StoreError::TooLarge { what: "mailbox ids", limit: u32::MAX as usize })?;
            // Above every UIDVALIDITY given before in this account, so that a mailbox deleted
            // and created again under its name never shows old UIDs as valid (§5.4).
            let last = match get_body(inner, t, Table::Jobs, &last_key, "last uidvalidity")? {
                Some(b) => {
                    let mut d = Dec::new(&b, "last uidvalidity");
                    let v = d.u32()?;
                    d.finish()?;
                    v
                }
                None => 0,
            };
            let mut rec = new_mailbox_rec(inner.p, &mut *rng, &s.meta_key, a, id, name, now)?;
            if let Some(above) = last.checked_add(1) {
                rec.uid_validity = rec.uid_validity.max(above);
            }
            put_body(inner, t, Table::Jobs, &last_key, rec.uid_validity.to_be_bytes().to_vec())?;
            put_body(inner, t, Table::Mailboxes, &mbox_key(a, id), rec.encode())?;
            if special_use.is_some() {
                put_attrs(inner, t, &mut *rng, s, id, &Attrs { subscribed: true, special_use })?;
            }
            save_account(inner, t, a, &acc)
        })?;
        Ok(id)
    }

    /// The body of [`Mailboxes::rename_mailbox`](crate::Mailboxes::rename_mailbox).
    pub(crate) fn rename_mailbox_inner(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        renames: &[(MailboxId, &str)],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        s.touch(now)?;
        for (m, new_name) in renames {
            if *m == MailboxId::INBOX {
                return Err(StoreError::InboxIsFixed);
            }
            check_name(new_name)?;
        }
        let inner = &*self.inner;
        let a = s.account;
        // One transaction: a hierarchy is renamed whole or not at all. Each new name must be
        // free when its turn comes, in the order given.
        inner.backend.write(&mut |t| {
            for (m, new_name) in renames {
                let mut mb = load_mbox(inner, t, a, *m)?;
                check_free(inner, t, s, Some(new_name), None, None)?;
                let aad = name_aad(a, *m);
                mb.name = seal(inner.p, &mut *rng, &s.meta_key, &aad, new_name.as_bytes());
                put_body(inner, t, Table::Mailboxes, &mbox_key(a, *m), mb.encode())?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// The body of [`Mailboxes::set_subscribed`](crate::Mailboxes::set_subscribed) and
    /// [`Mailboxes::set_special_use`](crate::Mailboxes::set_special_use).
    pub(crate) fn set_attrs_inner(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        change: &dyn Fn(&mut Attrs),
        now: Timestamp,
    ) -> Result<(), StoreError> {
        s.touch(now)?;
        let inner = &*self.inner;
        let a = s.account;
        inner.backend.write(&mut |t| {
            load_mbox(inner, t, a, m)?;
            let mut attrs = load_attrs(inner, t, s, m)?;
            let was = attrs;
            change(&mut attrs);
            if attrs == was {
                return Ok(());
            }
            if let Some(role) = attrs.special_use.filter(|r| was.special_use != Some(*r)) {
                check_free(inner, t, s, None, Some(role), Some(m))?;
            }
            put_attrs(inner, t, &mut *rng, s, m, &attrs)
        })?;
        Ok(())
    }

    /// The body of [`Mailboxes::mailbox`](crate::Mailboxes::mailbox).
    pub(crate) fn mailbox_inner(
        &self,
        s: &mut Session,
        m: MailboxId,
        now: Timestamp,
    ) -> Result<MailboxInfo, StoreError> {
        s.touch(now)?;
        let inner = &*self.inner;
        let a = s.account;
        let mut out = None;
        inner.backend.read(&mut |t| {
            let r = load_mbox(inner, t, a, m)?;
            let name = open(inner.p, &s.meta_key, &name_aad(a, m), &r.name)
                .map_err(|_| StoreError::Corrupt { what: "mailbox name" })?;
            let attrs = load_attrs(inner, t, s, m)?;
            out = Some(info(m, &r, String::from_utf8_lossy(&name).into_owned(), attrs));
            Ok(())
        })?;
        out.ok_or(StoreError::NoSuchMailbox)
    }

    /// The body of [`Mailboxes::mailboxes`](crate::Mailboxes::mailboxes).
    pub(crate) fn mailboxes_inner(
        &self,
        s: &mut Session,
        now: Timestamp,
    ) -> Result<Vec<MailboxInfo>, StoreError> {
        s.touch(now)?;
        let inner = &*self.inner;
        let mut all = Vec::new();
        let mut bad = Vec::new();
        inner.backend.read(&mut |t| {
            bad.clear();
            all = read_all(inner, t, s, &mut bad)?;
            Ok(())
        })?;
        for k in &bad {
            crate::quarantine(inner, Table::Mailboxes, k);
        }
        Ok(all.into_iter().map(|(id, r, name, attrs)| info(id, &r, name, attrs)).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn attributes_round_trip_and_refuse_unknown_codes() {
        for subscribed in [false, true] {
            for special_use in SpecialUse::ALL.into_iter().map(Some).chain([None]) {
                let a = Attrs { subscribed, special_use };
                assert_eq!(Attrs::decode(&a.encode()).unwrap(), a);
            }
        }
        for bad in [&[1u8, 2, 0][..], &[1, 1, 8], &[2, 1, 0], &[1, 1], &[1, 1, 0, 0]] {
            assert!(Attrs::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tombstones_run_together_and_keep_at_most_max_tombstones_runs() {
        let mut v = Vanished::default();
        for uid in 1..=10 {
            v.add(uid, 100 + u64::from(uid));
        }
        v.add(20, 200);
        v.add(19, 201);
        assert_eq!(v.runs, [(1, 10, 110), (19, 20, 201)]);
        assert_eq!(Vanished::decode(&v.encode()).unwrap(), v);

        // Exactly MAX_TOMBSTONES runs are kept; one more drops the oldest and raises the floor.
        let mut v = Vanished::default();
        for i in 0..MAX_TOMBSTONES as u32 {
            v.add(2 * i + 1, u64::from(i) + 1);
        }
        assert_eq!((v.runs.len(), v.floor), (MAX_TOMBSTONES, 0));
        assert!(Vanished::decode(&v.encode()).is_ok());
        let mut past = v.clone();
        past.runs.push((u32::MAX, u32::MAX, u64::MAX));
        assert!(Vanished::decode(&past.encode()).is_err(), "a record of one run too many");
        v.add(u32::MAX - 1, 5000);
        assert_eq!((v.runs.len(), v.floor), (MAX_TOMBSTONES, 1));
        assert_eq!(v.runs[0], (3, 3, 2));
        assert!(Vanished::decode(&Enc::new().u64(0).u32(1).u32(5).u32(4).u64(1).finish()).is_err());
    }

    const T0: Timestamp = Timestamp(1_700_000_000);

    fn raw(store: &Store, k: &[u8]) -> Option<Vec<u8>> {
        let mut v = None;
        store
            .inner
            .backend
            .read(&mut |t| {
                v = t.get(Table::Mailboxes, k)?;
                Ok(())
            })
            .unwrap();
        v
    }

    #[test]
    fn a_mailbox_from_before_tombstones_reports_every_missing_uid_and_reads_subscribed() {
        use crate::{Accounts, Deliveries, Mailboxes};
        let dir = tempfile::tempdir().unwrap();
        let store = crate::testing::open_store(dir.path());
        let mut rng = dime_testkit::seeded_rng(1);
        let alice = crate::testing::add_alice(&store, &mut rng, T0);
        for i in 0..5u8 {
            store.deliver(&alice, &[i; 20], T0).unwrap();
        }
        let mut s = store.login(&alice, b"pw", T0).unwrap();
        let (a, inbox) = (s.account(), MailboxId::INBOX);
        store.expunge(a, inbox, &[Uid(2), Uid(4)]).unwrap();
        // As an older store left it: removals made, no tombstone record.
        let k = beside_key(a, inbox, SUFFIX_VANISHED);
        assert!(raw(&store, &k).is_some());
        store.inner.backend.write(&mut |t| t.delete(Table::Mailboxes, &k).map(|_| ())).unwrap();
        let highest = store.mailbox(&mut s, inbox, T0).unwrap().highest_modseq;
        assert_eq!(store.vanished_since(a, inbox, 0).unwrap(), [Uid(2), Uid(4)]);
        assert_eq!(store.vanished_since(a, inbox, highest - 1).unwrap(), [Uid(2), Uid(4)]);
        assert!(store.vanished_since(a, inbox, highest).unwrap().is_empty());
        // The next removal starts the record; what came before stays below its floor.
        store.expunge(a, inbox, &[Uid(5)]).unwrap();
        assert_eq!(store.vanished_since(a, inbox, highest).unwrap(), [Uid(5)]);
        assert_eq!(store.vanished_since(a, inbox, 1).unwrap(), [Uid(2), Uid(4), Uid(5)]);
        // No attribute record: subscribed, no special use; the record, once written, is a
        // seal of the same length for every value, new each time.
        let info = store.mailbox(&mut s, inbox, T0).unwrap();
        assert_eq!((info.subscribed, info.special_use), (true, None));
        let ak = beside_key(a, inbox, SUFFIX_ATTRS);
        assert!(raw(&store, &ak).is_none());
        let mut seen = Vec::new();
        // Setting what it already is writes nothing.
        store.set_subscribed(&mut rng, &mut s, inbox, true, T0).unwrap();
        assert!(raw(&store, &ak).is_none());
        let changes =
            [(Some(SpecialUse::Trash), false), (None, true), (Some(SpecialUse::Sent), true)];
        for (role, subscribed) in changes {
            store.set_special_use(&mut rng, &mut s, inbox, role, T0).unwrap();
            store.set_subscribed(&mut rng, &mut s, inbox, subscribed, T0).unwrap();
            let info = store.mailbox(&mut s, inbox, T0).unwrap();
            assert_eq!((info.subscribed, info.special_use), (subscribed, role));
            let v = raw(&store, &ak).unwrap();
            assert_eq!(v.len(), 3 + 40 + crate::codec::CHECKSUM_LEN);
            assert!(!seen.contains(&v));
            seen.push(v);
        }
    }

    #[test]
    fn inbox_is_the_same_name_in_any_case_and_other_names_are_case_sensitive() {
        assert!(same_name("INBOX", "inbox"));
        assert!(same_name("Inbox", "iNbOx"));
        assert!(!same_name("Sent", "sent"));
        assert!(same_name("Sent", "Sent"));
    }
}
