//! The selected mailbox as one session sees it (RFC 9051 §2.3.1, §7.4; RFC 7162): the map
//! between message sequence numbers and UIDs, the flags and MODSEQ the session last told its
//! client, and the untagged updates owed when the mailbox changed under it (another session,
//! a delivery). Sans-IO: the driver gives it snapshots of the mailbox and writes out the
//! responses it makes.
//!
//! Sequence numbers change only where the client may see them change: an expunge is reported
//! (and the numbers shift) only at a point where RFC 9051 §7.4.1 allows an EXPUNGE response
//! (not during FETCH, STORE or SEARCH); until then the message stays in the map as a ghost
//! that no command returns.

use crate::command::{SeqBound, SequenceSet};

/// One message of a snapshot: its UID, MODSEQ and flags (as stored, e.g. `\Seen`, `$Junk`),
/// sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// The UID.
    pub uid: u32,
    /// The MODSEQ.
    pub modseq: u64,
    /// The flags, sorted and without duplicates.
    pub flags: Vec<String>,
}

/// An untagged update owed to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// `* n EXPUNGE` (sequence number before the removal).
    Expunge(u32),
    /// `* VANISHED uids` (QRESYNC enabled), the UIDs sorted.
    Vanished(Vec<u32>),
    /// `* n EXISTS`.
    Exists(u32),
    /// `* n FETCH (UID u FLAGS (...) [MODSEQ (m)])`.
    Flags {
        /// Sequence number.
        seq: u32,
        /// UID.
        uid: u32,
        /// The flags.
        flags: Vec<String>,
        /// The MODSEQ.
        modseq: u64,
    },
}

/// The selected mailbox of one session: 4 octets per message (its UID), so that a thousand
/// sessions idling in large mailboxes stay small (`spec/dmap.md` §6). Flags and MODSEQs are
/// not kept: a change is found by MODSEQ (every flag change moves a message's MODSEQ above
/// the highest the session has seen), and a command that shows flags reads them.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The UIDs the client sees, in sequence order, ghosts included.
    uids: Vec<u32>,
    /// The UIDs removed from the mailbox and not yet told (sorted).
    ghosts: Vec<u32>,
    /// Changes the session made itself and told already: (UID, MODSEQ).
    own: Vec<(u32, u64)>,
    /// EXAMINE, or SELECT.
    pub read_only: bool,
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// The mailbox's store id, for the driver.
    pub id: u64,
    /// The highest MODSEQ of the messages the client was told of.
    pub highest_modseq: u64,
    /// The saved search result (RFC 5182), UIDs, sorted.
    pub saved: Vec<u32>,
}

impl Selected {
    /// A mailbox selected with this snapshot (UIDs ascending).
    pub fn new(id: u64, uid_validity: u32, read_only: bool, snapshot: &[SnapshotEntry]) -> Self {
        Selected {
            uids: snapshot.iter().map(|e| e.uid).collect(),
            ghosts: Vec::new(),
            own: Vec::new(),
            read_only,
            uid_validity,
            id,
            highest_modseq: snapshot.iter().map(|e| e.modseq).max().unwrap_or(0),
            saved: Vec::new(),
        }
    }

    /// Number of messages the client sees (EXISTS), ghosts included.
    pub fn exists(&self) -> u32 {
        u32::try_from(self.uids.len()).unwrap_or(u32::MAX)
    }

    /// The UIDs the client sees, in sequence order (ghosts included).
    pub fn uids(&self) -> impl Iterator<Item = u32> + '_ {
        self.uids.iter().copied()
    }

    /// Whether a removed message waits to be told (a ghost).
    pub fn has_ghosts(&self) -> bool {
        !self.ghosts.is_empty()
    }

    /// The largest UID the client sees (0 for an empty mailbox).
    pub fn max_uid(&self) -> u32 {
        self.uids.last().copied().unwrap_or(0)
    }

    fn is_ghost(&self, uid: u32) -> bool {
        self.ghosts.binary_search(&uid).is_ok()
    }

    /// The sequence number of `uid`, when the client sees it and it is not a ghost.
    pub fn seq_of(&self, uid: u32) -> Option<u32> {
        let i = self.uids.binary_search(&uid).ok()?;
        if self.is_ghost(uid) {
            return None;
        }
        u32::try_from(i + 1).ok()
    }

    /// Records a change the session made and told itself (its own STORE, its FETCH setting
    /// `\Seen`): no update is owed for it.
    pub fn note_own(&mut self, uid: u32, modseq: u64) {
        self.own.push((uid, modseq));
    }

    /// The (sequence number, UID) pairs `set` names, in ascending order, without ghosts. In
    /// UID mode a range names the UIDs that exist within it (`1:4294967295` costs the
    /// mailbox's size, not the range's); `*` is the largest number in use; `$` is the saved
    /// result. Numbers that name nothing are left out.
    pub fn resolve(&self, set: &SequenceSet, uid_mode: bool) -> Vec<(u32, u32)> {
        let ranges: Vec<(u32, u32)> = match set {
            SequenceSet::Saved => self.saved.iter().map(|&u| (u, u)).collect(),
            SequenceSet::Ranges(r) => {
                let star = if uid_mode { self.max_uid() } else { self.exists() };
                r.iter().map(|&(a, b)| SeqBound::range(a, b, star)).collect()
            }
        };
        let uid_mode = uid_mode || matches!(set, SequenceSet::Saved);
        let mut hit = vec![false; self.uids.len()];
        for (lo, hi) in ranges {
            if uid_mode {
                let start = self.uids.partition_point(|&u| u < lo);
                let end = self.uids.partition_point(|&u| u <= hi);
                for h in &mut hit[start..end] {
                    *h = true;
                }
            } else {
                let lo = (lo.max(1) as usize).min(self.uids.len() + 1);
                let hi = (hi as usize).min(self.uids.len());
                if lo <= hi {
                    for h in &mut hit[lo - 1..hi] {
                        *h = true;
                    }
                }
            }
        }
        hit.iter()
            .enumerate()
            .filter(|(i, h)| **h && !self.is_ghost(self.uids[*i]))
            .map(|(i, _)| (u32::try_from(i + 1).unwrap_or(u32::MAX), self.uids[i]))
            .collect()
    }

    /// Compares a fresh snapshot of the mailbox (UIDs ascending) with what the client knows
    /// and returns the updates owed, in the order they must be sent: expunges (or VANISHED
    /// with `qresync`) when `allow_expunge`, then EXISTS when messages arrived, then FETCH
    /// FLAGS for known messages whose MODSEQ passed the highest told (a change by another
    /// session; the session's own are skipped). With `allow_expunge` false, removed messages
    /// stay as ghosts until a later call allows them.
    pub fn sync(
        &mut self,
        snapshot: &[SnapshotEntry],
        allow_expunge: bool,
        qresync: bool,
    ) -> Vec<Update> {
        let mut out = Vec::new();
        // Removed messages become ghosts.
        let mut j = 0;
        for &u in &self.uids {
            while j < snapshot.len() && snapshot[j].uid < u {
                j += 1;
            }
            if (j >= snapshot.len() || snapshot[j].uid != u)
                && let Err(at) = self.ghosts.binary_search(&u)
            {
                self.ghosts.insert(at, u);
            }
        }
        if allow_expunge && !self.ghosts.is_empty() {
            if qresync {
                out.push(Update::Vanished(self.ghosts.clone()));
            } else {
                // Highest sequence number first, so that no report shifts another's number.
                for i in (0..self.uids.len()).rev() {
                    if self.ghosts.binary_search(&self.uids[i]).is_ok() {
                        out.push(Update::Expunge(u32::try_from(i + 1).unwrap_or(u32::MAX)));
                    }
                }
            }
            let ghosts = std::mem::take(&mut self.ghosts);
            self.uids.retain(|u| ghosts.binary_search(u).is_err());
        }
        // Flag changes of messages the client knows.
        let top = self.max_uid();
        let mut changed = Vec::new();
        for s in snapshot.iter().filter(|s| s.modseq > self.highest_modseq && s.uid <= top) {
            if self.own.contains(&(s.uid, s.modseq)) {
                continue;
            }
            if let Some(seq) = self.seq_of(s.uid) {
                changed.push(Update::Flags {
                    seq,
                    uid: s.uid,
                    flags: s.flags.clone(),
                    modseq: s.modseq,
                });
            }
        }
        // New messages: UIDs above the highest known.
        let before = self.uids.len();
        self.uids.extend(snapshot.iter().filter(|s| s.uid > top).map(|s| s.uid));
        if self.uids.len() != before {
            out.push(Update::Exists(self.exists()));
        }
        out.extend(changed);
        if let Some(m) = snapshot.iter().map(|e| e.modseq).max() {
            self.highest_modseq = self.highest_modseq.max(m);
        }
        self.own.clear();
        out
    }
}

/// The parts of the UID ranges `ranges` (inclusive, any order) that lie in `set` (UIDs; `*`
/// is `star`; `$` is `saved`), as sorted, merged ranges, without expanding either: the cost
/// is the product of the two range counts, never of the UIDs they span.
pub fn clip_uid_ranges(
    ranges: &[(u32, u32)],
    set: &SequenceSet,
    star: u32,
    saved: &[u32],
) -> Vec<(u32, u32)> {
    let bounds: Vec<(u32, u32)> = match set {
        SequenceSet::Saved => saved.iter().map(|&u| (u, u)).collect(),
        SequenceSet::Ranges(r) => r.iter().map(|&(a, b)| SeqBound::range(a, b, star)).collect(),
    };
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &(a, b) in ranges {
        for &(lo, hi) in &bounds {
            let (x, y) = (a.max(lo), b.min(hi));
            if x <= y {
                out.push((x, y));
            }
        }
    }
    out.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(out.len());
    for (a, b) in out {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(uid: u32, flags: &[&str]) -> SnapshotEntry {
        SnapshotEntry {
            uid,
            modseq: u64::from(uid),
            flags: flags.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn set(r: &[(SeqBound, SeqBound)]) -> SequenceSet {
        SequenceSet::Ranges(r.to_vec())
    }

    #[test]
    fn resolve_uid_ranges_cost_the_mailbox_not_the_range() {
        let s = Selected::new(1, 7, false, &[e(3, &[]), e(5, &[]), e(9, &[])]);
        let all = set(&[(SeqBound::Value(1), SeqBound::Value(u32::MAX))]);
        assert_eq!(s.resolve(&all, true), vec![(1, 3), (2, 5), (3, 9)]);
        // `n:*` with n above the largest UID names the largest (RFC 9051 §6.4.8).
        let above = set(&[(SeqBound::Value(20), SeqBound::Star)]);
        assert_eq!(s.resolve(&above, true), vec![(3, 9)]);
        let seqs = set(&[(SeqBound::Value(2), SeqBound::Star)]);
        assert_eq!(s.resolve(&seqs, false), vec![(2, 5), (3, 9)]);
        let none = set(&[(SeqBound::Value(4), SeqBound::Value(4))]);
        assert!(s.resolve(&none, false).is_empty());
    }

    #[test]
    fn expunges_wait_for_a_point_that_allows_them() {
        let mut s = Selected::new(1, 7, false, &[e(3, &[]), e(5, &[]), e(9, &[])]);
        // Message 9's flags changed (its MODSEQ moved past the highest told), 10 arrived.
        let mut seen = e(9, &["\\Seen"]);
        seen.modseq = 12;
        let after = vec![e(3, &[]), seen, e(10, &[])];
        let u = s.sync(&after, false, false);
        assert_eq!(
            u,
            vec![
                Update::Exists(4),
                Update::Flags { seq: 3, uid: 9, flags: vec!["\\Seen".into()], modseq: 12 }
            ]
        );
        assert_eq!(s.highest_modseq, 12);
        // The ghost keeps its number but is named by no command.
        assert_eq!(s.seq_of(5), None);
        assert_eq!(s.seq_of(9), Some(3));
        let u = s.sync(&after, true, false);
        assert_eq!(u, vec![Update::Expunge(2)]);
        assert_eq!(s.seq_of(9), Some(2));
        assert_eq!(s.exists(), 3);
    }

    #[test]
    fn qresync_reports_vanished_uids() {
        let mut s = Selected::new(1, 7, false, &[e(3, &[]), e(5, &[]), e(9, &[])]);
        let u = s.sync(&[e(5, &[])], true, true);
        assert_eq!(u, vec![Update::Vanished(vec![3, 9])]);
        assert_eq!(s.exists(), 1);
    }

    #[test]
    fn a_sessions_own_changes_are_not_told_again_and_others_are() {
        let mut s = Selected::new(1, 7, false, &[e(1, &[]), e(2, &[])]);
        s.note_own(1, 5);
        let mut mine = e(1, &["\\Flagged"]);
        mine.modseq = 5;
        let mut theirs = e(2, &["\\Seen"]);
        theirs.modseq = 6;
        let u = s.sync(&[mine.clone(), theirs], true, false);
        assert_eq!(
            u,
            vec![Update::Flags { seq: 2, uid: 2, flags: vec!["\\Seen".into()], modseq: 6 }]
        );
        // Nothing moved since: nothing owed.
        let mut theirs = e(2, &["\\Seen"]);
        theirs.modseq = 6;
        assert!(s.sync(&[mine, theirs], true, false).is_empty());
    }

    #[test]
    fn clipped_ranges_never_expand_either_side() {
        let all = set(&[(SeqBound::Value(1), SeqBound::Star)]);
        assert_eq!(
            clip_uid_ranges(&[(5, 9), (1, 2), (10, 4_000_000_000)], &all, u32::MAX, &[]),
            vec![(1, 2), (5, 4_000_000_000)]
        );
        let some = set(&[
            (SeqBound::Value(3), SeqBound::Value(6)),
            (SeqBound::Value(8), SeqBound::Value(8)),
        ]);
        assert_eq!(clip_uid_ranges(&[(1, 10)], &some, 10, &[]), vec![(3, 6), (8, 8)]);
        assert_eq!(clip_uid_ranges(&[(1, 10)], &SequenceSet::Saved, 10, &[2, 11]), vec![(2, 2)]);
    }

    #[test]
    fn expunges_are_reported_highest_first() {
        let mut s = Selected::new(1, 7, false, &[e(1, &[]), e(2, &[]), e(3, &[]), e(4, &[])]);
        let u = s.sync(&[e(2, &[]), e(4, &[])], true, false);
        assert_eq!(u, vec![Update::Expunge(3), Update::Expunge(1)]);
    }
}
