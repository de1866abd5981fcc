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
/// The magic of a record.
const MAGIC: &[u8; 4] = b"DLG1";
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

/// One delivery as the log keeps it.
pub(crate) struct Record<'a> {
    pub(crate) account: AccountId,
    pub(crate) now: Timestamp,
    pub(crate) digest: [u8; CHECKSUM_LEN],
    pub(crate) envelope: &'a [u8],
}

/// A record read back by [`DeliveryLog::open`].
pub(crate) struct Replayed {
    pub(crate) seq: u64,
    pub(crate) account: AccountId,
    pub(crate) now: Timestamp,
    pub(crate) digest: [u8; CHECKSUM_LEN],
    pub(crate) envelope: Vec<u8>,
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
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&r.account.0);
    out.extend_from_slice(&r.now.0.to_be_bytes());
    out.extend_from_slice(&r.digest);
    out.extend_from_slice(&(r.envelope.len() as u32).to_be_bytes());
    let sum = header_checksum(p, &out[start..]);
    out.extend_from_slice(&sum);
    out.extend_from_slice(r.envelope);
}

/// A decoded header: (sequence, account, time, digest, envelope length).
type Header = (u64, AccountId, Timestamp, [u8; CHECKSUM_LEN], usize);

fn decode_header(p: &CryptoProvider, h: &[u8; HEADER_LEN]) -> Option<Header> {
    let (fields, sum) = h.split_at(HEADER_LEN - CHECKSUM_LEN);
    if &fields[..4] != MAGIC || header_checksum(p, fields) != *sum {
        return None;
    }
    let seq = u64::from_be_bytes(fields[4..12].try_into().ok()?);
    let account = AccountId(fields[12..28].try_into().ok()?);
    let now = Timestamp(u64::from_be_bytes(fields[28..36].try_into().ok()?));
    let digest: [u8; CHECKSUM_LEN] = fields[36..52].try_into().ok()?;
    let len = u32::from_be_bytes(fields[52..56].try_into().ok()?) as usize;
    (len <= crate::MAX_ENVELOPE_LEN).then_some((seq, account, now, digest, len))
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
        let mut off = 0u64;
        let mut expect: Option<u64> = None;
        let mut reader = std::io::BufReader::new(Scan { file: &*file, at: 0, size });
        loop {
            let mut h = [0u8; HEADER_LEN];
            if off + HEADER_LEN as u64 > size || reader.read_exact(&mut h).is_err() {
                break;
            }
            let Some((seq, account, now, digest, len)) = decode_header(p, &h) else { break };
            if expect.is_some_and(|e| e != seq) || off + (HEADER_LEN + len) as u64 > size {
                break;
            }
            let mut envelope = vec![0u8; len];
            if reader.read_exact(&mut envelope).is_err() || blob_digest.of(p, &envelope) != digest {
                break;
            }
            off += (HEADER_LEN + len) as u64;
            expect = seq.checked_add(1);
            if seq > durable {
                replay.push(Replayed { seq, account, now, digest, envelope });
            }
        }
        let last = replay.last().map_or(durable, |r| r.seq);
        let log = DeliveryLog {
            file: Arc::from(file),
            p,
            end: 0,
            size,
            next_seq: last.saturating_add(1),
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
}
