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

#[derive(Debug, Clone)]
struct Known {
    uid: u32,
    modseq: u64,
    flags: Vec<String>,
    /// Removed from the mailbox, not yet reported.
    ghost: bool,
}

/// The selected mailbox of one session.
#[derive(Debug, Clone)]
pub struct Selected {
    known: Vec<Known>,
    /// EXAMINE, or SELECT.
    pub read_only: bool,
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// The mailbox's store id, for the driver.
    pub id: u64,
    /// The highest MODSEQ told to the client.
    pub highest_modseq: u64,
    /// The saved search result (RFC 5182), UIDs.
    pub saved: Vec<u32>,
}

impl Selected {
    /// A mailbox selected with this snapshot (UIDs ascending).
    pub fn new(id: u64, uid_validity: u32, read_only: bool, snapshot: Vec<SnapshotEntry>) -> Self {
        let highest_modseq = snapshot.iter().map(|e| e.modseq).max().unwrap_or(0);
        Selected {
            known: snapshot
                .into_iter()
                .map(|e| Known { uid: e.uid, modseq: e.modseq, flags: e.flags, ghost: false })
                .collect(),
            read_only,
            uid_validity,
            id,
            highest_modseq,
            saved: Vec::new(),
        }
    }

    /// Number of messages the client sees (EXISTS), ghosts included.
    pub fn exists(&self) -> u32 {
        u32::try_from(self.known.len()).unwrap_or(u32::MAX)
    }

    /// Whether a removed message waits to be told (a ghost).
    pub fn has_ghosts(&self) -> bool {
        self.known.iter().any(|k| k.ghost)
    }

    /// The largest UID the client sees (0 for an empty mailbox).
    pub fn max_uid(&self) -> u32 {
        self.known.last().map_or(0, |k| k.uid)
    }

    /// The UIDs the client sees, in sequence order (ghosts included).
    pub fn uids(&self) -> impl Iterator<Item = u32> + '_ {
        self.known.iter().map(|k| k.uid)
    }

    /// The sequence number of `uid`, when the client sees it and it is not a ghost.
    pub fn seq_of(&self, uid: u32) -> Option<u32> {
        let i = self.known.binary_search_by_key(&uid, |k| k.uid).ok()?;
        if self.known[i].ghost {
            return None;
        }
        u32::try_from(i + 1).ok()
    }

    /// The flags the client was last told for `uid`.
    pub fn flags_of(&self, uid: u32) -> Option<&[String]> {
        let i = self.known.binary_search_by_key(&uid, |k| k.uid).ok()?;
        Some(&self.known[i].flags)
    }

    /// The MODSEQ the client was last told for `uid`.
    pub fn modseq_of(&self, uid: u32) -> Option<u64> {
        let i = self.known.binary_search_by_key(&uid, |k| k.uid).ok()?;
        Some(self.known[i].modseq)
    }

    /// Records what the session itself changed (its own STORE): no update is owed for it.
    pub fn note_flags(&mut self, uid: u32, flags: Vec<String>, modseq: u64) {
        if let Ok(i) = self.known.binary_search_by_key(&uid, |k| k.uid) {
            self.known[i].flags = flags;
            self.known[i].modseq = modseq;
            self.highest_modseq = self.highest_modseq.max(modseq);
        }
    }

    /// The (sequence number, UID) pairs `set` names, in ascending order, without ghosts. In
    /// UID mode a range names the UIDs that exist within it (`1:4294967295` costs the
    /// mailbox's size, not the range's); `*` is the largest number in use; `$` is the saved
    /// result. Numbers that name nothing are left out.
    pub fn resolve(&self, set: &SequenceSet, uid_mode: bool) -> Vec<(u32, u32)> {
        let ranges: Vec<(u32, u32)> = match set {
            SequenceSet::Saved => self.saved.iter().map(|&u| (u, u)).collect(),
            SequenceSet::Ranges(r) => {
                let star =
                    if uid_mode { self.known.last().map_or(0, |k| k.uid) } else { self.exists() };
                r.iter()
                    .map(|&(a, b)| {
                        let v = |x: SeqBound| match x {
                            SeqBound::Value(n) => n,
                            SeqBound::Star => star,
                        };
                        let (a, b) = (v(a), v(b));
                        (a.min(b), a.max(b))
                    })
                    .collect()
            }
        };
        let uid_mode = uid_mode || matches!(set, SequenceSet::Saved);
        let mut hit = vec![false; self.known.len()];
        for (lo, hi) in ranges {
            if uid_mode {
                let start = self.known.partition_point(|k| k.uid < lo);
                let end = self.known.partition_point(|k| k.uid <= hi);
                for h in &mut hit[start..end] {
                    *h = true;
                }
            } else {
                let lo = (lo.max(1) as usize).min(self.known.len() + 1);
                let hi = (hi as usize).min(self.known.len());
                if lo <= hi {
                    for h in &mut hit[lo - 1..hi] {
                        *h = true;
                    }
                }
            }
        }
        hit.iter()
            .enumerate()
            .filter(|(i, h)| **h && !self.known[*i].ghost)
            .map(|(i, _)| (u32::try_from(i + 1).unwrap_or(u32::MAX), self.known[i].uid))
            .collect()
    }

    /// Compares a fresh snapshot of the mailbox (UIDs ascending) with what the client knows
    /// and returns the updates owed, in the order they must be sent: expunges (or VANISHED
    /// with `qresync`) when `allow_expunge`, then EXISTS when messages arrived, then FETCH
    /// FLAGS for messages whose flags changed. With `allow_expunge` false, removed messages
    /// stay as ghosts until a later call allows them.
    pub fn sync(
        &mut self,
        snapshot: &[SnapshotEntry],
        allow_expunge: bool,
        qresync: bool,
    ) -> Vec<Update> {
        let mut out = Vec::new();
        // Mark removed messages as ghosts.
        let mut j = 0;
        for k in &mut self.known {
            while j < snapshot.len() && snapshot[j].uid < k.uid {
                j += 1;
            }
            if j >= snapshot.len() || snapshot[j].uid != k.uid {
                k.ghost = true;
            }
        }
        if allow_expunge && self.known.iter().any(|k| k.ghost) {
            if qresync {
                let gone: Vec<u32> = self.known.iter().filter(|k| k.ghost).map(|k| k.uid).collect();
                out.push(Update::Vanished(gone));
            } else {
                // Highest sequence number first, so that no report shifts another's number.
                for i in (0..self.known.len()).rev() {
                    if self.known[i].ghost {
                        out.push(Update::Expunge(u32::try_from(i + 1).unwrap_or(u32::MAX)));
                    }
                }
            }
            self.known.retain(|k| !k.ghost);
        }
        // Flag changes of messages the client knows.
        let mut changed = Vec::new();
        let mut j = 0;
        for (i, k) in self.known.iter_mut().enumerate() {
            while j < snapshot.len() && snapshot[j].uid < k.uid {
                j += 1;
            }
            if j < snapshot.len() && snapshot[j].uid == k.uid && !k.ghost {
                let s = &snapshot[j];
                if s.flags != k.flags || s.modseq != k.modseq {
                    let flags_changed = s.flags != k.flags;
                    k.flags = s.flags.clone();
                    k.modseq = s.modseq;
                    if flags_changed {
                        changed.push(Update::Flags {
                            seq: u32::try_from(i + 1).unwrap_or(u32::MAX),
                            uid: k.uid,
                            flags: k.flags.clone(),
                            modseq: k.modseq,
                        });
                    }
                }
            }
        }
        // New messages: UIDs above the highest known.
        let top = self.known.last().map_or(0, |k| k.uid);
        let before = self.known.len();
        for s in snapshot.iter().filter(|s| s.uid > top) {
            self.known.push(Known {
                uid: s.uid,
                modseq: s.modseq,
                flags: s.flags.clone(),
                ghost: false,
            });
        }
        if self.known.len() != before {
            out.push(Update::Exists(self.exists()));
        }
        out.extend(changed);
        if let Some(m) = snapshot.iter().map(|e| e.modseq).max() {
            self.highest_modseq = self.highest_modseq.max(m);
        }
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
        SequenceSet::Ranges(r) => r
            .iter()
            .map(|&(a, b)| {
                let v = |x: SeqBound| match x {
                    SeqBound::Value(n) => n,
                    SeqBound::Star => star,
                };
                (v(a).min(v(b)), v(a).max(v(b)))
            })
            .collect(),
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
        let s = Selected::new(1, 7, false, vec![e(3, &[]), e(5, &[]), e(9, &[])]);
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
        let mut s = Selected::new(1, 7, false, vec![e(3, &[]), e(5, &[]), e(9, &[])]);
        let after = vec![e(3, &[]), e(9, &["\\Seen"]), e(10, &[])];
        let u = s.sync(&after, false, false);
        assert_eq!(
            u,
            vec![
                Update::Exists(4),
                Update::Flags { seq: 3, uid: 9, flags: vec!["\\Seen".into()], modseq: 9 }
            ]
        );
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
        let mut s = Selected::new(1, 7, false, vec![e(3, &[]), e(5, &[]), e(9, &[])]);
        let u = s.sync(&[e(5, &[])], true, true);
        assert_eq!(u, vec![Update::Vanished(vec![3, 9])]);
        assert_eq!(s.exists(), 1);
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
        let mut s = Selected::new(1, 7, false, vec![e(1, &[]), e(2, &[]), e(3, &[]), e(4, &[])]);
        let u = s.sync(&[e(2, &[]), e(4, &[])], true, false);
        assert_eq!(u, vec![Update::Expunge(3), Update::Expunge(1)]);
    }
}
