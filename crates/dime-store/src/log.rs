//! The delivery log (`spec/storage.md` §4.1): where a delivery becomes durable before the
//! backend's transaction does.
//!
//! A batch of deliveries is appended as records to `<data-dir>/deliveries.log` with one write
//! and one `fdatasync`; the batch is then applied to the backend with a deferred commit
//! (visible at once, durable at the next checkpoint). After a crash, the records whose sequence
//! number is above the one the backend last made durable are applied again, in order; a
//! delivery is deterministic given the state before it, so the replay lands every message
//! where it first landed, with the same UID.
//!
//! The file is zero-filled ahead of the records (a write into already-allocated blocks needs no
//! metadata update on `fdatasync`), and writing starts again at offset 0 after each checkpoint.
//! A record is valid when its header checksum holds, its sequence number is the one expected,
//! and its envelope matches the digest the header carries; the scan stops at the first record
//! that is not.

use crate::codec::{BlobDigest, CHECKSUM_LEN};
use crate::fs::{StoreFile, StoreFs, open_durably};
use crate::{AccountId, StoreError, Timestamp};
use dime_core::crypto::CryptoProvider;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// The file's name in the data directory.
pub(crate) const LOG_FILE: &str = "deliveries.log";
/// The magic of a delivery's record.
const MAGIC: &[u8; 4] = b"DLG1";
/// The magic of an APPEND's record: its payload is the APPEND as applied (`spec/storage.md`
/// §4.1), the envelope with its place and its sealed flags and summary.
const MAGIC_APPEND: &[u8; 4] = b"DLA1";
/// Octets of a record header: magic, u64 sequence, account id, u64 time, digest, u32 length,
/// checksum.
pub(crate) const HEADER_LEN: usize = 4 + 8 + 16 + 8 + CHECKSUM_LEN + 4 + CHECKSUM_LEN;
/// The file grows by zero-filled steps of this size.
const GROW_STEP: u64 = 1024 * 1024;
/// The committer checkpoints once the log holds this many octets (then writing restarts at
/// offset 0). A checkpoint writes every page the deferred commits left dirty, so its pause
/// grows with this bound (measured here: about 7 ms at 0.5 MiB, 12 ms at 1 MiB, 25 ms at
/// 4 MiB).
pub(crate) const WRAP_BYTES: u64 = 1024 * 1024;
/// Largest batch written through the log, octets of envelopes; a larger batch commits durably
/// in the backend instead (its bytes are written once, not twice, and the log file stays
/// small).
pub(crate) const MAX_LOGGED_BATCH: usize = 4 * 1024 * 1024;

/// One delivery (or APPEND) as the log keeps it.
pub(crate) struct Record<'a> {
    pub(crate) account: AccountId,
    pub(crate) now: Timestamp,
    /// The blob digest of `envelope`.
    pub(crate) digest: [u8; CHECKSUM_LEN],
    /// A delivery's envelope, or an APPEND's payload.
    pub(crate) envelope: &'a [u8],
    /// Whether it is an APPEND's.
    pub(crate) append: bool,
}

/// A record read back by [`DeliveryLog::open`].
pub(crate) struct Replayed {
    pub(crate) seq: u64,
    pub(crate) account: AccountId,
    pub(crate) now: Timestamp,
    pub(crate) digest: [u8; CHECKSUM_LEN],
    pub(crate) envelope: Vec<u8>,
    pub(crate) append: bool,
}

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("delivery log: {e}"))
}

fn header_checksum(p: &CryptoProvider, fields: &[u8]) -> [u8; CHECKSUM_LEN] {
    let d = p.hash.sha512(&[b"dime-store log record", fields]);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&d[..CHECKSUM_LEN]);
    out
}

fn encode(p: &CryptoProvider, seq: u64, r: &Record<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(if r.append { MAGIC_APPEND } else { MAGIC });
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&r.account.0);
    out.extend_from_slice(&r.now.0.to_be_bytes());
    out.extend_from_slice(&r.digest);
    out.extend_from_slice(&(r.envelope.len() as u32).to_be_bytes());
    let sum = header_checksum(p, &out[start..]);
    out.extend_from_slice(&sum);
    out.extend_from_slice(r.envelope);
}

/// A decoded header: (sequence, account, time, digest, envelope length, an APPEND's).
type Header = (u64, AccountId, Timestamp, [u8; CHECKSUM_LEN], usize, bool);

fn decode_header(p: &CryptoProvider, h: &[u8; HEADER_LEN]) -> Option<Header> {
    let (fields, sum) = h.split_at(HEADER_LEN - CHECKSUM_LEN);
    let append = &fields[..4] == MAGIC_APPEND;
    if (&fields[..4] != MAGIC && !append) || header_checksum(p, fields) != *sum {
        return None;
    }
    let seq = u64::from_be_bytes(fields[4..12].try_into().ok()?);
    let account = AccountId(fields[12..28].try_into().ok()?);
    let now = Timestamp(u64::from_be_bytes(fields[28..36].try_into().ok()?));
    let digest: [u8; CHECKSUM_LEN] = fields[36..52].try_into().ok()?;
    let len = u32::from_be_bytes(fields[52..56].try_into().ok()?) as usize;
    // An APPEND's payload adds its place and seals to the envelope.
    let max = crate::MAX_ENVELOPE_LEN + if append { 64 * 1024 } else { 0 };
    (len <= max).then_some((seq, account, now, digest, len, append))
}

/// Where a prepared batch goes in the log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    /// Its offset.
    pub(crate) at: u64,
    /// The sequence number of its first record.
    pub(crate) first: u64,
    /// How many records it holds.
    pub(crate) count: u64,
    /// The file's zero-filled length after it, when it grows the file.
    grow_to: Option<u64>,
}

impl Span {
    /// The sequence number of its last record.
    pub(crate) fn last(&self) -> u64 {
        self.first + self.count.saturating_sub(1)
    }
}

/// A batch encoded for the log, not yet written.
pub(crate) struct Batch {
    file: Arc<dyn StoreFile>,
    buf: Vec<u8>,
    pub(crate) span: Span,
    grow_from: Option<u64>,
}

impl Batch {
    /// Its length in octets.
    pub(crate) fn len(&self) -> u64 {
        self.buf.len() as u64
    }

    /// Writes the batch and `fdatasync`s the file: on success every record is on stable
    /// storage. On failure nothing of it is acknowledged, and what may have reached the disk is
    /// zeroed (best effort: the disk is failing already), so no scan finds part of it.
    pub(crate) fn write(&self) -> Result<(), StoreError> {
        if let (Some(from), Some(to)) = (self.grow_from, self.span.grow_to) {
            let zeros = vec![0u8; (to - from) as usize];
            self.file.write_all_at(&zeros, from).map_err(io_err)?;
        }
        let written =
            self.file.write_all_at(&self.buf, self.span.at).and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            let _ = self.file.write_all_at(&vec![0u8; self.buf.len()], self.span.at);
            let _ = self.file.sync_data();
            return Err(io_err(e));
        }
        Ok(())
    }
}

/// Reads a log file from the start, in order (under a `BufReader`, as large reads).
struct Scan<'a> {
    file: &'a dyn StoreFile,
    at: u64,
    size: u64,
}

impl Read for Scan<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.size.saturating_sub(self.at)).min(buf.len() as u64) as usize;
        self.file.read_exact_at(&mut buf[..n], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// The open log of one store.
pub(crate) struct DeliveryLog {
    file: Arc<dyn StoreFile>,
    p: &'static CryptoProvider,
    /// Where the next record goes.
    end: u64,
    /// Octets zero-filled (the file's length as this log knows it).
    size: u64,
    /// The next record's sequence number.
    next_seq: u64,
    /// Octets from offset 0 that may hold records (of any round): zeros beyond, up to the
    /// file's length. Unknown at open, so the file's whole length then.
    dirty: u64,
}

impl DeliveryLog {
    /// Opens (or creates, durably) the log at `path` on `fs` and reads every valid record with
    /// a sequence number above `durable` (the last one the backend holds durably), in order.
    pub(crate) fn open(
        fs: &dyn StoreFs,
        path: &Path,
        p: &'static CryptoProvider,
        blob_digest: BlobDigest,
        durable: u64,
    ) -> Result<(DeliveryLog, Vec<Replayed>), StoreError> {
        let file = open_durably(fs, path)?;
        let size = file.len().map_err(io_err)?;
        let mut replay = Vec::new();
        let mut expect: Option<u64> = None;
        // The scan reads no further than the file's end: a record cut by it reads short.
        let mut reader = std::io::BufReader::new(Scan { file: &*file, at: 0, size });
        loop {
            let mut h = [0u8; HEADER_LEN];
            if reader.read_exact(&mut h).is_err() {
                break;
            }
            let Some((seq, account, now, digest, len, append)) = decode_header(p, &h) else {
                break;
            };
            if expect.is_some_and(|e| e != seq) {
                break;
            }
            // Grown as the octets arrive: a length past the file's end allocates no more than
            // the file holds.
            let mut envelope = Vec::new();
            let read = (&mut reader).take(len as u64).read_to_end(&mut envelope);
            if read.ok() != Some(len) || blob_digest.of(p, &envelope) != digest {
                break;
            }
            expect = seq.checked_add(1);
            if seq > durable {
                replay.push(Replayed { seq, account, now, digest, envelope, append });
            }
        }
        let last = replay.last().map_or(durable, |r| r.seq);
        let log = DeliveryLog {
            file: Arc::from(file),
            p,
            end: 0,
            size,
            next_seq: last.saturating_add(1),
            dirty: size,
        };
        Ok((log, replay))
    }

    /// Octets written since the last [`DeliveryLog::restart`].
    pub(crate) fn used(&self) -> u64 {
        self.end
    }

    /// Encodes `records` as the next batch (no I/O): write it with [`Batch::write`], on any
    /// thread, then tell the log with [`DeliveryLog::written`].
    pub(crate) fn prepare(&self, records: &[Record<'_>]) -> Batch {
        let first = self.next_seq;
        let mut buf = Vec::with_capacity(
            records.iter().map(|r| HEADER_LEN + r.envelope.len()).sum::<usize>(),
        );
        for (i, r) in records.iter().enumerate() {
            encode(self.p, first + i as u64, r, &mut buf);
        }
        let need = self.end + buf.len() as u64;
        // Zero-fill ahead, so that later records overwrite allocated blocks.
        let grow = (need > self.size).then(|| (self.size, need.div_ceil(GROW_STEP) * GROW_STEP));
        Batch {
            file: Arc::clone(&self.file),
            buf,
            span: Span {
                at: self.end,
                first,
                count: records.len() as u64,
                grow_to: grow.map(|g| g.1),
            },
            grow_from: grow.map(|g| g.0),
        }
    }

    /// Records that `span` (prepared by [`DeliveryLog::prepare`]) is on stable storage.
    pub(crate) fn written(&mut self, span: &Span, len: u64) {
        self.end = span.at + len;
        self.dirty = self.dirty.max(self.end);
        self.next_seq = span.first + span.count;
        if let Some(to) = span.grow_to {
            self.size = self.size.max(to);
        }
    }

    /// Takes back the records appended after offset `end`, from sequence number `seq` on
    /// (their batch was not applied): they are overwritten with zeros.
    pub(crate) fn truncate_to(&mut self, end: u64, seq: u64) -> Result<(), StoreError> {
        let n = self.end.saturating_sub(end) as usize;
        let r = self.file.write_all_at(&vec![0u8; n], end).and_then(|()| self.file.sync_data());
        // Even when zeroing failed, the next batch overwrites the same place with the same
        // sequence numbers.
        self.end = end;
        self.next_seq = seq;
        r.map_err(io_err)
    }

    /// Writing starts again at offset 0: call only when the backend holds every record
    /// durably (after a checkpoint). Older records left behind carry lower sequence numbers,
    /// so a scan stops where the new ones end.
    pub(crate) fn restart(&mut self) {
        self.end = 0;
    }

    /// Overwrites every record in the file, of this round and of earlier ones, with zeros and
    /// `fdatasync`s it, then starts again at offset 0 (`spec/storage.md` §12): call only when
    /// the backend holds every record durably (after a checkpoint). The file keeps its
    /// length; sequence numbers go on.
    pub(crate) fn erase(&mut self) -> Result<(), StoreError> {
        const STEP: u64 = GROW_STEP;
        // The backend holds every record: writing may start again at 0 whatever happens here.
        self.end = 0;
        let zeros = vec![0u8; STEP.min(self.dirty) as usize];
        let mut at = 0;
        while at < self.dirty {
            let n = STEP.min(self.dirty - at) as usize;
            self.file.write_all_at(&zeros[..n], at).map_err(io_err)?;
            at += n as u64;
        }
        self.file.sync_data().map_err(io_err)?;
        self.dirty = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::OsFs;

    const P: fn() -> &'static CryptoProvider = dime_core::crypto::default_provider;
    const DIGEST: BlobDigest = BlobDigest::Plain;

    fn record(account: u8, envelope: &[u8]) -> Record<'_> {
        Record {
            account: AccountId([account; 16]),
            now: Timestamp(1_700_000_000 + u64::from(account)),
            digest: DIGEST.of(P(), envelope),
            envelope,
            append: false,
        }
    }

    /// Opens the log at `path`, replaying above `durable`: (the log, the replayed records'
    /// sequence numbers and accounts' first octets).
    fn open(path: &Path, durable: u64) -> (DeliveryLog, Vec<(u64, u8)>) {
        let (log, replay) = DeliveryLog::open(&OsFs, path, P(), DIGEST, durable).unwrap();
        (log, replay.iter().map(|r| (r.seq, r.account.0[0])).collect())
    }

    /// Appends `records` as one batch, as the committer does.
    fn append(log: &mut DeliveryLog, records: &[Record<'_>]) -> Span {
        let batch = log.prepare(records);
        batch.write().unwrap();
        log.written(&batch.span, batch.len());
        batch.span
    }

    fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    fn flip(path: &Path, at: u64) {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[at as usize] ^= 1;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_record_is_laid_out_as_the_spec_says() {
        // spec/storage.md §4.1: magic, u64 sequence, account id, u64 time, digest, u32 length,
        // the first 16 octets of SHA-512("dime-store log record" ‖ the 56 octets before), then
        // the envelope; all big-endian.
        let r = record(7, b"sealed");
        let mut out = Vec::new();
        encode(P(), 0x0102_0304_0506_0708, &r, &mut out);
        let mut fields = b"DLG1".to_vec();
        fields.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        fields.extend_from_slice(&[7; 16]);
        fields.extend_from_slice(&(1_700_000_007u64).to_be_bytes());
        fields.extend_from_slice(&r.digest);
        fields.extend_from_slice(&[0, 0, 0, 6]);
        assert_eq!(fields.len(), 56);
        let sum = P().hash.sha512(&[b"dime-store log record".as_slice(), &fields]);
        let mut want = fields;
        want.extend_from_slice(&sum[..16]);
        assert_eq!(want.len(), HEADER_LEN);
        want.extend_from_slice(b"sealed");
        assert_eq!(out, want);
        let header: [u8; HEADER_LEN] = out[..HEADER_LEN].try_into().unwrap();
        let (seq, account, now, digest, len, append) = decode_header(P(), &header).unwrap();
        assert_eq!(
            (seq, account, now, digest, len, append),
            (0x0102_0304_0506_0708, r.account, r.now, r.digest, 6, false)
        );
        // An APPEND's record differs only by its magic, `DLA1`.
        let a = Record { append: true, ..record(7, b"sealed") };
        let mut out_a = Vec::new();
        encode(P(), 0x0102_0304_0506_0708, &a, &mut out_a);
        assert_eq!(&out_a[..4], b"DLA1");
        assert_eq!(out_a[4..HEADER_LEN - CHECKSUM_LEN], out[4..HEADER_LEN - CHECKSUM_LEN]);
        let header: [u8; HEADER_LEN] = out_a[..HEADER_LEN].try_into().unwrap();
        assert!(decode_header(P(), &header).is_some_and(|h| h.5));
    }

    #[test]
    fn records_above_the_durable_mark_are_replayed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let (mut log, replay) = open(&path, 0);
        assert!(replay.is_empty());
        append(&mut log, &[record(1, b"one"), record(2, b"two")]);
        append(&mut log, &[record(3, b"three")]);
        drop(log);
        assert_eq!(open(&path, 0).1, [(1, 1), (2, 2), (3, 3)]);
        assert_eq!(open(&path, 2).1, [(3, 3)]);
        let (log, replay) = open(&path, 3);
        assert!(replay.is_empty());
        // Numbering goes on after the mark, never reusing one.
        assert_eq!(log.prepare(&[record(4, b"four")]).span.first, 4);
    }

    #[test]
    fn a_header_changed_after_it_was_written_stops_the_scan() {
        // The magic still holds; the checksum does not, so the changed record (and every one
        // after it) is not applied, though its envelope still matches its digest.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let (mut log, _) = open(&path, 0);
        append(&mut log, &[record(1, b"one"), record(2, b"two"), record(3, b"three")]);
        drop(log);
        let second = (HEADER_LEN + 3) as u64;
        flip(&path, second + 12); // the second record's account id
        assert_eq!(open(&path, 0).1, [(1, 1)]);
        flip(&path, second + 12);
        assert_eq!(open(&path, 0).1, [(1, 1), (2, 2), (3, 3)]);
        flip(&path, second + 4 + 8 + 16 + 8); // its envelope digest: now the envelope fails it
        assert_eq!(open(&path, 0).1, [(1, 1)]);
    }

    #[test]
    fn a_record_ending_exactly_at_the_end_of_the_file_is_valid_and_one_cut_by_it_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let mut bytes = Vec::new();
        encode(P(), 1, &record(1, &[9; 100]), &mut bytes);
        encode(P(), 2, &record(2, b""), &mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(open(&path, 0).1, [(1, 1), (2, 2)]);
        encode(P(), 3, &record(3, b"three"), &mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(open(&path, 0).1, [(1, 1), (2, 2), (3, 3)]);
        for cut in [1, 5, 6, HEADER_LEN + 5] {
            std::fs::write(&path, &bytes[..bytes.len() - cut]).unwrap();
            assert_eq!(open(&path, 0).1, [(1, 1), (2, 2)], "cut {cut}");
        }
    }

    #[test]
    fn a_record_out_of_sequence_stops_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let mut bytes = Vec::new();
        encode(P(), 5, &record(1, b"one"), &mut bytes);
        encode(P(), 7, &record(2, b"two"), &mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(open(&path, 0).1, [(5, 1)]);
        let (log, _) = open(&path, 0);
        assert_eq!(log.prepare(&[record(3, b"x")]).span.first, 6);
    }

    #[test]
    fn the_file_grows_in_zero_filled_steps_of_one_mebibyte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let (mut log, _) = open(&path, 0);
        assert_eq!(file_len(&path), 0);
        let span = append(&mut log, &[record(1, b"one")]);
        assert_eq!(span.grow_to, Some(1 << 20));
        assert_eq!(file_len(&path), 1 << 20);
        assert_eq!(log.used(), (HEADER_LEN + 3) as u64);
        // Inside the zero-filled length, a batch writes over allocated blocks only.
        let big = vec![3u8; (1 << 20) - 2 * HEADER_LEN - 3];
        assert_eq!(append(&mut log, &[record(2, &big)]).grow_to, None);
        assert_eq!(log.used(), 1 << 20);
        assert_eq!(file_len(&path), 1 << 20);
        // One octet past it grows the file by the next whole step.
        let span = append(&mut log, &[record(3, b"")]);
        assert_eq!(span.grow_to, Some(2 << 20));
        assert_eq!(file_len(&path), 2 << 20);
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes[(1 << 20) + HEADER_LEN..].iter().all(|&b| b == 0));
        assert_eq!(open(&path, 0).1, [(1, 1), (2, 2), (3, 3)]);
    }

    #[test]
    fn after_a_restart_records_go_to_offset_zero_and_older_ones_are_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let (mut log, _) = open(&path, 0);
        append(&mut log, &[record(1, b"one"), record(2, b"two"), record(3, b"six")]);
        log.restart();
        assert_eq!(log.used(), 0);
        let span = append(&mut log, &[record(4, b"own")]);
        assert_eq!((span.at, span.first), (0, 4));
        assert_eq!(log.used(), (HEADER_LEN + 3) as u64);
        drop(log);
        // Record 4 lies over record 1; record 2 follows it, but 2 is not 5.
        assert_eq!(open(&path, 3).1, [(4, 4)]);
        assert_eq!(open(&path, 0).1, [(4, 4)]);
    }

    #[test]
    fn an_erase_zeroes_the_records_of_every_round_and_numbering_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let (mut log, _) = open(&path, 0);
        append(&mut log, &[record(1, b"first round, one"), record(2, b"first round, two")]);
        log.restart();
        append(&mut log, &[record(3, b"second")]);
        // A restart leaves the first round's second record behind the second round's.
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.windows(16).any(|w| w == b"first round, two"));
        log.erase().unwrap();
        assert_eq!(log.used(), 0);
        assert!(std::fs::read(&path).unwrap().iter().all(|&b| b == 0));
        assert_eq!(file_len(&path), 1 << 20, "the file keeps its zero-filled length");
        let span = append(&mut log, &[record(4, b"after")]);
        assert_eq!((span.at, span.first), (0, 4));
        drop(log);
        assert_eq!(open(&path, 3).1, [(4, 4)]);
        // Opened again, a log erases what the file held before (its whole length).
        let (mut log, _) = open(&path, 4);
        log.erase().unwrap();
        assert!(std::fs::read(&path).unwrap().iter().all(|&b| b == 0));
    }

    #[test]
    fn records_taken_back_are_zeroed_and_their_numbers_given_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let (mut log, _) = open(&path, 0);
        append(&mut log, &[record(1, b"one")]);
        let span = append(&mut log, &[record(2, b"two"), record(3, b"three")]);
        log.truncate_to(span.at, span.first).unwrap();
        assert_eq!(log.used(), span.at);
        assert!(std::fs::read(&path).unwrap()[span.at as usize..].iter().all(|&b| b == 0));
        assert_eq!(open(&path, 0).1, [(1, 1)]);
        let again = append(&mut log, &[record(5, b"five")]);
        assert_eq!((again.at, again.first), (span.at, 2));
        assert_eq!(open(&path, 0).1, [(1, 1), (2, 5)]);
    }
}
