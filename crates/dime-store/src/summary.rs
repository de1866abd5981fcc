//! Summary overlays (`spec/storage.md` §6.7): what a listing shows of a message (its author,
//! subject, ...: bytes the mail service defines), stored beside the message sealed under the
//! account's read key, so that a listing reads one small record per message and opens no
//! message. The service makes a summary when it first opens and verifies a message; it seals
//! it inside the session ([`Mailboxes::seal_summaries`](crate::Mailboxes::seal_summaries)) and may store it later, off the read
//! path ([`Mailboxes::put_summaries`](crate::Mailboxes::put_summaries)).

use crate::account::{get_body, put_body};
use crate::backend::{Backend, Table};
use crate::codec::{Enc, open_record};
use crate::keys::{Session, open, seal};
use crate::mail::{EntryInfo, EntryRec, entry_key, msg_key};
use crate::rewrap::overlay_key;
use crate::{AccountId, MailboxId, Store, StoreError, Timestamp, Uid};
use dime_core::CryptoRngCore;
use zeroize::Zeroizing;

/// Overlay kind octet of a summary overlay.
pub(crate) const OVERLAY_SUMMARY: u8 = 3;
/// Largest summary, octets.
pub const MAX_SUMMARY_LEN: usize = 16 * 1024;

pub(crate) fn summary_aad(msg_key: &[u8]) -> Vec<u8> {
    Enc::new().raw(b"dime-store summary").raw(msg_key).finish()
}

/// Summaries sealed in a session, to store with [`Mailboxes::put_summaries`](crate::Mailboxes::put_summaries) (no key needed).
#[derive(Debug)]
pub struct SealedSummaries {
    account: AccountId,
    mailbox: MailboxId,
    /// (UID, the message's sequence number when sealed, the seal).
    sealed: Vec<(Uid, u64, Vec<u8>)>,
}

impl SealedSummaries {
    /// How many summaries it holds.
    pub fn len(&self) -> usize {
        self.sealed.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.sealed.is_empty()
    }
}

impl Store {
    /// The body of [`Mailboxes::list_summaries`](crate::Mailboxes::list_summaries), with the store's low-level error.
    #[allow(clippy::type_complexity)]
    pub(crate) fn list_summaries_inner(
        &self,
        s: &mut Session,
        m: MailboxId,
        now: Timestamp,
    ) -> Result<Vec<(EntryInfo, Option<Zeroizing<Vec<u8>>>)>, StoreError> {
        s.touch(now)?;
        let inner = &*self.inner;
        let entries = self.list_with_seqs(s.account, m)?;
        let mut out = Vec::with_capacity(entries.len());
        inner.backend.read(&mut |t| {
            out.clear();
            for (e, seq) in &entries {
                let mk = msg_key(s.account, *seq);
                let k = overlay_key(&mk, OVERLAY_SUMMARY);
                // A corrupt or stale summary is as good as none: the service makes it again.
                let summary = t.get(Table::Overlays, &k)?.and_then(|v| {
                    let body = open_record(inner.p, Table::Overlays, &k, &v, "summary").ok()?;
                    open(inner.p, &s.read_key, &summary_aad(&mk), body).ok()
                });
                out.push((*e, summary));
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The body of [`Mailboxes::summary`](crate::Mailboxes::summary), with the store's
    /// low-level error.
    pub(crate) fn summary_inner(
        &self,
        s: &mut Session,
        m: MailboxId,
        uid: Uid,
        now: Timestamp,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        s.touch(now)?;
        let inner = &*self.inner;
        let a = s.account;
        let mut out = None;
        inner.backend.read(&mut |t| {
            let ek = entry_key(a, m.0, uid.0);
            let e = get_body(inner, t, Table::Entries, &ek, "index record")?
                .ok_or(StoreError::NoSuchMessage)?;
            let mk = msg_key(a, EntryRec::decode(&e)?.seq);
            let k = overlay_key(&mk, OVERLAY_SUMMARY);
            // A corrupt or stale summary is as good as none.
            out = t.get(Table::Overlays, &k)?.and_then(|v| {
                let body = open_record(inner.p, Table::Overlays, &k, &v, "summary").ok()?;
                open(inner.p, &s.read_key, &summary_aad(&mk), body).ok()
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// The body of [`Mailboxes::seal_summaries`](crate::Mailboxes::seal_summaries), with the store's low-level error.
    pub(crate) fn seal_summaries_inner(
        &self,
        rng: &mut dyn CryptoRngCore,
        s: &mut Session,
        m: MailboxId,
        summaries: &[(Uid, &[u8])],
        now: Timestamp,
    ) -> Result<SealedSummaries, StoreError> {
        s.touch(now)?;
        let inner = &*self.inner;
        if summaries.iter().any(|(_, b)| b.len() > MAX_SUMMARY_LEN) {
            return Err(StoreError::TooLarge { what: "summary", limit: MAX_SUMMARY_LEN });
        }
        // Each seal is bound to its message's key: the messages' sequence numbers first.
        let a = s.account;
        let mut seqs = Vec::with_capacity(summaries.len());
        inner.backend.read(&mut |t| {
            seqs.clear();
            for (uid, _) in summaries {
                let ek = entry_key(a, m.0, uid.0);
                let seq = match get_body(inner, t, Table::Entries, &ek, "index record") {
                    Ok(Some(e)) => EntryRec::decode(&e).ok().map(|e| e.seq),
                    _ => None,
                };
                seqs.push(seq);
            }
            Ok(())
        })?;
        let mut done = Vec::with_capacity(summaries.len());
        for ((uid, bytes), seq) in summaries.iter().zip(seqs) {
            // A message gone meanwhile gets no summary.
            let Some(seq) = seq else { continue };
            let aad = summary_aad(&msg_key(a, seq));
            done.push((*uid, seq, seal(inner.p, rng, &s.read_key, &aad, bytes)));
        }
        Ok(SealedSummaries { account: a, mailbox: m, sealed: done })
    }

    /// The body of [`Mailboxes::put_summaries`](crate::Mailboxes::put_summaries), with the store's low-level error.
    pub(crate) fn put_summaries_inner(
        &self,
        summaries: &SealedSummaries,
    ) -> Result<usize, StoreError> {
        let inner = &*self.inner;
        let (a, m) = (summaries.account, summaries.mailbox);
        let mut stored = 0;
        inner.backend.write(&mut |t| {
            stored = 0;
            for (uid, seq, sealed) in &summaries.sealed {
                let ek = entry_key(a, m.0, uid.0);
                let Some(e) = get_body(inner, &*t, Table::Entries, &ek, "index record")? else {
                    continue;
                };
                // Only beside the message it was made for, if it is still there.
                let mk = msg_key(a, *seq);
                if EntryRec::decode(&e)?.seq == *seq && t.get(Table::Blobs, &mk)?.is_some() {
                    put_body(
                        inner,
                        t,
                        Table::Overlays,
                        &overlay_key(&mk, OVERLAY_SUMMARY),
                        sealed.clone(),
                    )?;
                    stored += 1;
                }
            }
            Ok(())
        })?;
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing::open_store;
    use crate::{Accounts, Deliveries, MailboxError, Mailboxes};

    const T0: Timestamp = Timestamp(1_700_000_000);

    fn overlays(store: &Store) -> usize {
        let mut n = 0;
        store
            .inner
            .backend
            .read(&mut |t| {
                n = t.range(Table::Overlays, &[], &[0xff; 64], usize::MAX)?.len();
                Ok(())
            })
            .unwrap();
        n
    }

    #[test]
    fn summaries_are_read_back_with_the_sessions_key_beside_their_own_messages_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path());
        let mut rng = dime_testkit::seeded_rng(1);
        let alice = crate::testing::add_alice(&store, &mut rng, T0);
        let uids: Vec<Uid> =
            (0..3u8).map(|i| store.deliver(&alice, &[i; 40], T0).unwrap().uid).collect();
        let mut s = store.login(&alice, b"pw", T0).unwrap();
        let listed = store.list_summaries(&mut s, MailboxId::INBOX, T0).unwrap();
        assert_eq!(listed.len(), 3);
        assert!(listed.iter().all(|(_, summary)| summary.is_none()));

        let items: Vec<(Uid, &[u8])> =
            vec![(uids[0], b"canary-summary-zero"), (uids[2], b"two"), (Uid(99), b"none")];
        let sealed = store.seal_summaries(&mut rng, &mut s, MailboxId::INBOX, &items, T0).unwrap();
        assert_eq!(sealed.len(), 2, "no message with UID 99");
        // The message with UID 2 goes before the summaries are stored: its own is not.
        assert_eq!(store.expunge(s.account(), MailboxId::INBOX, &[uids[2]]).unwrap(), 1);
        assert_eq!(store.put_summaries(&sealed).unwrap(), 1);
        let listed = store.list_summaries(&mut s, MailboxId::INBOX, T0).unwrap();
        let got: Vec<Option<&[u8]>> =
            listed.iter().map(|(_, b)| b.as_deref().map(|v| &v[..])).collect();
        assert_eq!(got, [Some(&b"canary-summary-zero"[..]), None]);
        // A new session of the same account reads them; the summaries hold no clear text.
        let mut again = store.login(&alice, b"pw", T0).unwrap();
        assert!(store.list_summaries(&mut again, MailboxId::INBOX, T0).unwrap()[0].1.is_some());
        assert!(!crate::testing::any_file_contains(dir.path(), b"canary-summary-zero"));
        // Too large a summary is refused; an expunged message takes its summary with it.
        let big = vec![0u8; MAX_SUMMARY_LEN + 1];
        assert!(
            store
                .seal_summaries(&mut rng, &mut s, MailboxId::INBOX, &[(uids[1], &big)], T0)
                .is_err()
        );
        let before = overlays(&store);
        store.expunge(s.account(), MailboxId::INBOX, &[uids[0]]).unwrap();
        assert_eq!(overlays(&store), before - 1);
        // An expired session reads nothing.
        assert_eq!(
            store.list_summaries(&mut s, MailboxId::INBOX, Timestamp(T0.0 + 10_000)).unwrap_err(),
            MailboxError::SessionExpired
        );
    }
}
