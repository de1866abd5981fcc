//! The storage backend seam (`spec/storage.md` §2): an ordered key-value store with named
//! tables and atomic, durable write transactions. [`RedbBackend`] is the embedded default; a
//! PostgreSQL backend implements the same three traits (one `bytea` table per [`Table`]).

use crate::StoreError;
use crate::fs::{OsFs, RedbFile, StoreFs, open_durably};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The tables of the store (`spec/storage.md` §3). Keys and values are opaque bytes to the
/// backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Account counters: quota, message count, next ids.
    Accounts,
    /// Keyed address tag → account id.
    Addresses,
    /// Wrapped keys: password, recovery and escrow wraps, keyring, directory entry.
    Keys,
    /// Mailboxes: encrypted name, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ.
    Mailboxes,
    /// Mailbox entries: (mailbox, UID) → message, MODSEQ, encrypted flags.
    Entries,
    /// Message records: size, arrival, key generation, digest, references.
    Messages,
    /// Message bodies: the sealed envelope bytes.
    Blobs,
    /// Outbound queue entries: their schedule.
    Queue,
    /// Outbound queue entries: their sealed transport, destination and payload.
    QueuePayload,
    /// Outbound queue index by next-attempt time.
    QueueDue,
    /// Resumable jobs (slot re-wrap progress).
    Jobs,
    /// Items found corrupt, moved aside.
    Quarantine,
    /// Per-account shredding keys (only in the key vault database).
    Vault,
    /// Key overlays beside stored messages: re-wrap and read-key overlays
    /// (`spec/storage.md` §6.5, §6.6).
    Overlays,
    /// Delivery status of outbound queue entries (`spec/storage.md` §7.1).
    Status,
    /// Delivery status index by time of the last change.
    StatusTime,
    /// The resolver's signet pins, by keyed address tag (`spec/storage.md` §7.2).
    Pins,
    /// Envelopes delivered within the replay window, by keyed tag: where each landed
    /// (`spec/storage.md` §4.2).
    Seen,
    /// The seen index by arrival time, for pruning.
    SeenTime,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 19] = [
        Table::Accounts,
        Table::Addresses,
        Table::Keys,
        Table::Mailboxes,
        Table::Entries,
        Table::Messages,
        Table::Blobs,
        Table::Queue,
        Table::QueueDue,
        Table::Jobs,
        Table::Quarantine,
        Table::Vault,
        Table::Overlays,
        Table::Status,
        Table::StatusTime,
        Table::Pins,
        Table::QueuePayload,
        Table::Seen,
        Table::SeenTime,
    ];

    /// The table's stable name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Accounts => "accounts",
            Table::Addresses => "addresses",
            Table::Keys => "keys",
            Table::Mailboxes => "mailboxes",
            Table::Entries => "entries",
            Table::Messages => "messages",
            Table::Blobs => "blobs",
            Table::Queue => "queue",
            Table::QueueDue => "queue_due",
            Table::Jobs => "jobs",
            Table::Quarantine => "quarantine",
            Table::Vault => "vault",
            Table::Overlays => "overlays",
            Table::Status => "delivery_status",
            Table::StatusTime => "delivery_status_time",
            Table::Pins => "pins",
            Table::QueuePayload => "queue_payload",
            Table::Seen => "seen",
            Table::SeenTime => "seen_time",
        }
    }

    /// A one-byte code, mixed into record checksums so a record copied into another table
    /// does not verify.
    pub fn code(self) -> u8 {
        match self {
            Table::Accounts => 1,
            Table::Addresses => 2,
            Table::Keys => 3,
            Table::Mailboxes => 4,
            Table::Entries => 5,
            Table::Messages => 6,
            Table::Blobs => 7,
            Table::Queue => 8,
            Table::QueueDue => 9,
            Table::Jobs => 10,
            Table::Quarantine => 11,
            Table::Vault => 12,
            Table::Overlays => 13,
            Table::Status => 14,
            Table::StatusTime => 15,
            Table::Pins => 16,
            Table::QueuePayload => 17,
            Table::Seen => 18,
            Table::SeenTime => 19,
        }
    }
}

/// A key-value pair read from a range.
pub type Pair = (Vec<u8>, Vec<u8>);

/// Reads inside a transaction.
pub trait ReadTxn {
    /// The value under `key`.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Up to `limit` pairs with `start <= key < end`, in key order.
    fn range(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Pair>, StoreError>;
    /// How many keys `table` holds (redb keeps the count in the table's header: no scan).
    fn len(&self, table: Table) -> Result<u64, StoreError>;
}

/// Reads and writes inside one atomic transaction.
pub trait WriteTxn: ReadTxn {
    /// Stores `value` under `key`.
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key`; returns whether it existed.
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, StoreError>;
}

/// A transactional ordered key-value store.
///
/// [`Backend::write`] runs `f` in one transaction and commits it durably (on stable storage
/// before it returns) when `f` returns `Ok`; on `Err` nothing of it is applied.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Runs `f` over a consistent snapshot.
    fn read(
        &self,
        f: &mut dyn FnMut(&dyn ReadTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Runs `f` in one atomic, durable write transaction.
    fn write(
        &self,
        f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Whether [`Backend::write_deferred`] defers durability. When it does, the store makes
    /// deliveries durable in its delivery log first (`spec/storage.md` §4.1).
    fn defers(&self) -> bool {
        false
    }

    /// Runs `f` in one atomic write transaction that is visible when this returns but durable
    /// only after the next [`Backend::write`] or [`Backend::checkpoint`]; a crash before then
    /// rolls it back, whole. The default is a durable [`Backend::write`].
    fn write_deferred(
        &self,
        f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.write(f)
    }

    /// Makes every deferred write durable.
    fn checkpoint(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Rewrites the stored data so that no file of the backend keeps the bytes of a removed
    /// record (`spec/storage.md` §12); returns whether it did. Reads go on meanwhile; writes
    /// wait until it is over. Every deferred write is durable when it returns `true`. The
    /// default does nothing and returns `false`: a backend that cannot promise it says so.
    fn compact(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
}

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

fn def(table: Table) -> Def {
    TableDefinition::new(table.name())
}

fn backend_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The embedded default backend: one redb database file. [`Backend::write`] commits with
/// `Durability::Immediate` (fsync before the commit returns); [`Backend::write_deferred`] with
/// `Durability::None`. [`Backend::compact`] copies the live records into a new file that
/// replaces the old one (`spec/storage.md` §12).
#[derive(Debug)]
pub struct RedbBackend {
    /// The open database; a compaction replaces it with its copy.
    db: Mutex<Arc<redb::Database>>,
    /// Held by every write transaction, and by a compaction for its whole copy: no write is
    /// lost between the copy and the switch to it.
    writers: Mutex<()>,
    /// The database's file, when it is the operating system's (only such a file is
    /// compacted: the copy is renamed over it).
    path: Option<PathBuf>,
}

/// redb's page cache for one database, octets. redb's own default (1 GiB) lets a long-running
/// server's memory grow with the mail it has stored; 64 MiB keeps it bounded (the DMTP bench
/// measured about 1.2× the stored bytes of growth with the default).
pub const REDB_CACHE_BYTES: usize = 64 * 1024 * 1024;

impl RedbBackend {
    /// Opens (or creates) the database at `path` with a [`REDB_CACHE_BYTES`] page cache and
    /// creates every table.
    pub fn open(path: &Path) -> Result<RedbBackend, StoreError> {
        RedbBackend::open_with_fs(&OsFs, path)
    }

    /// [`RedbBackend::open`] on the file system `fs` (a new file is made durable in its
    /// directory first). A file of the operating system goes to redb's own file backend, as
    /// `redb::Builder::create` does; any other through [`crate::StoreFile`].
    pub fn open_with_fs(fs: &dyn StoreFs, path: &Path) -> Result<RedbBackend, StoreError> {
        let file = open_durably(fs, path)?;
        let (db, os) = match file.into_os_file() {
            Ok(file) => {
                // A copy left by a compaction that did not finish: it may hold records
                // removed since (`spec/storage.md` §12).
                remove_leftover(&compaction_path(path))?;
                (open_os_file(file)?, true)
            }
            Err(file) => {
                (builder().create_with_backend(RedbFile(file)).map_err(backend_err)?, false)
            }
        };
        let txn = db.begin_write().map_err(backend_err)?;
        for t in Table::ALL {
            txn.open_table(def(t)).map_err(backend_err)?;
        }
        txn.commit().map_err(backend_err)?;
        Ok(RedbBackend {
            db: Mutex::new(Arc::new(db)),
            writers: Mutex::new(()),
            path: os.then(|| path.to_owned()),
        })
    }

    /// The database as it is now (a compaction may replace it after this returns; a
    /// transaction begun on this one stays on it).
    fn current(&self) -> Arc<redb::Database> {
        Arc::clone(&self.db.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Waits until no write transaction runs, and holds new ones back while the guard lives.
    fn writer(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data: a thread that panicked holding it left nothing half done.
        self.writers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`Backend::compact`]: copies every table of the database into `<file>.compact`, in
    /// key order, commits it durably, renames it over the database's file and syncs the
    /// directory, then serves from the copy. The old file's octets (free pages included) are
    /// in no file once its last reader ends. Writes wait meanwhile; reads go on, on the old
    /// file.
    fn compact_by_copy(&self, path: &Path) -> Result<bool, StoreError> {
        let _writing = self.writer();
        let old = self.current();
        let tmp = compaction_path(path);
        remove_leftover(&tmp)?;
        let copied = open_durably(&OsFs, &tmp).and_then(|file| {
            let file = file.into_os_file().map_err(|_| {
                StoreError::Backend("compaction: not an operating system file".into())
            })?;
            let new = open_os_file(file)?;
            copy_live(&old, &new)?;
            Ok(new)
        });
        let new = match copied {
            Ok(new) => new,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if let Err(e) = std::fs::rename(&tmp, path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(StoreError::Backend(format!("compaction: rename {}: {e}", path.display())));
        }
        // The path names the copy now: from here on every transaction goes to it (the old file
        // is unlinked), even if the directory's sync fails.
        *self.db.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(new);
        OsFs.sync_dir(dir).map_err(|e| {
            StoreError::Backend(format!("compaction: sync directory {}: {e}", dir.display()))
        })?;
        Ok(true)
    }
}

fn builder() -> redb::Builder {
    let mut builder = redb::Builder::new();
    builder.set_cache_size(REDB_CACHE_BYTES);
    builder
}

/// A database on a file of the operating system, through redb's own file backend (with its
/// locks against a second process), as `redb::Builder::create` does.
fn open_os_file(file: std::fs::File) -> Result<redb::Database, StoreError> {
    builder()
        .create_with_backend(redb::backends::FileBackend::new(file).map_err(backend_err)?)
        .map_err(backend_err)
}

/// Where a compaction of the database at `path` writes its copy.
fn compaction_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".compact");
    path.with_file_name(name)
}

fn remove_leftover(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(StoreError::Backend(format!("remove {}: {e}", path.display())))
        }
        _ => Ok(()),
    }
}

/// Octets of records one transaction of a compaction's copy carries, at most.
const COPY_CHUNK: usize = 16 * 1024 * 1024;

/// Copies every table of `from` (one snapshot) into the empty database `to`, in chunks of
/// [`COPY_CHUNK`] octets, and makes the copy durable.
fn copy_live(from: &redb::Database, to: &redb::Database) -> Result<(), StoreError> {
    let snapshot = from.begin_read().map_err(backend_err)?;
    for handle in snapshot.list_tables().map_err(backend_err)? {
        let name = handle.name().to_owned();
        let d = TableDefinition::<&[u8], &[u8]>::new(&name);
        let src = snapshot.open_table(d).map_err(backend_err)?;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let mut txn = to.begin_write().map_err(backend_err)?;
            txn.set_durability(redb::Durability::None).map_err(backend_err)?;
            let mut last = None;
            {
                let mut dst = txn.open_table(d).map_err(backend_err)?;
                let from_key = match &after {
                    Some(k) => Bound::Excluded(k.as_slice()),
                    None => Bound::Unbounded,
                };
                let mut octets = 0usize;
                for item in src.range::<&[u8]>((from_key, Bound::Unbounded)).map_err(backend_err)? {
                    let (k, v) = item.map_err(backend_err)?;
                    dst.insert(k.value(), v.value()).map_err(backend_err)?;
                    octets += k.value().len() + v.value().len();
                    if octets >= COPY_CHUNK {
                        last = Some(k.value().to_vec());
                        break;
                    }
                }
            }
            txn.commit().map_err(backend_err)?;
            match last {
                Some(k) => after = Some(k),
                None => break,
            }
        }
    }
    // An empty durable commit persists the copy's `Durability::None` commits.
    let txn = to.begin_write().map_err(backend_err)?;
    txn.commit().map_err(backend_err)
}

struct RedbRead(redb::ReadTransaction);

fn range_of<T: ReadableTable<&'static [u8], &'static [u8]>>(
    t: &T,
    start: &[u8],
    end: &[u8],
    limit: usize,
) -> Result<Vec<Pair>, StoreError> {
    let mut out = Vec::new();
    if start >= end {
        return Ok(out);
    }
    for item in t.range::<&[u8]>(start..end).map_err(backend_err)? {
        if out.len() >= limit {
            break;
        }
        let (k, v) = item.map_err(backend_err)?;
        out.push((k.value().to_vec(), v.value().to_vec()));
    }
    Ok(out)
}

impl ReadTxn for RedbRead {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.0.open_table(def(table)).map_err(backend_err)?;
        Ok(t.get(key).map_err(backend_err)?.map(|v| v.value().to_vec()))
    }
    fn range(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Pair>, StoreError> {
        let t = self.0.open_table(def(table)).map_err(backend_err)?;
        range_of(&t, start, end, limit)
    }
    fn len(&self, table: Table) -> Result<u64, StoreError> {
        let t = self.0.open_table(def(table)).map_err(backend_err)?;
        t.len().map_err(backend_err)
    }
}

/// A write transaction, each table opened once (at its first use) and kept open until the
/// transaction ends: opening a table looks it up in redb's table tree, and closing it writes
/// its root back, which per read or write cost about 3% of a delivery's CPU.
struct RedbWrite<'a> {
    txn: &'a redb::WriteTransaction,
    open: std::cell::RefCell<Vec<(Table, WriteTable<'a>)>>,
}

type WriteTable<'a> = redb::Table<'a, &'static [u8], &'static [u8]>;

impl<'a> RedbWrite<'a> {
    fn new(txn: &'a redb::WriteTransaction) -> RedbWrite<'a> {
        RedbWrite { txn, open: std::cell::RefCell::new(Vec::with_capacity(Table::ALL.len())) }
    }

    /// Runs `f` on `table`, opening it the first time.
    fn with<T>(
        &self,
        table: Table,
        f: impl FnOnce(&mut WriteTable<'a>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut open = self.open.borrow_mut();
        let i = match open.iter().position(|(t, _)| *t == table) {
            Some(i) => i,
            None => {
                open.push((table, self.txn.open_table(def(table)).map_err(backend_err)?));
                open.len() - 1
            }
        };
        f(&mut open[i].1)
    }
}

impl ReadTxn for RedbWrite<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(table, |t| Ok(t.get(key).map_err(backend_err)?.map(|v| v.value().to_vec())))
    }
    fn range(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<Pair>, StoreError> {
        self.with(table, |t| range_of(t, start, end, limit))
    }
    fn len(&self, table: Table) -> Result<u64, StoreError> {
        self.with(table, |t| t.len().map_err(backend_err))
    }
}

impl WriteTxn for RedbWrite<'_> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.with(table, |t| t.insert(key, value).map(|_| ()).map_err(backend_err))
    }
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        self.with(table, |t| Ok(t.remove(key).map_err(backend_err)?.is_some()))
    }
}

impl Backend for RedbBackend {
    fn read(
        &self,
        f: &mut dyn FnMut(&dyn ReadTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let txn = self.current().begin_read().map_err(backend_err)?;
        f(&RedbRead(txn))
    }

    fn write(
        &self,
        f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.write_with(redb::Durability::Immediate, f)
    }

    fn defers(&self) -> bool {
        true
    }

    fn write_deferred(
        &self,
        f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.write_with(redb::Durability::None, f)
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        // An empty durable commit persists every `Durability::None` commit before it.
        self.write_with(redb::Durability::Immediate, &mut |_| Ok(()))
    }

    fn compact(&self) -> Result<bool, StoreError> {
        match &self.path {
            Some(path) => self.compact_by_copy(path),
            None => Ok(false),
        }
    }
}

impl RedbBackend {
    fn write_with(
        &self,
        durability: redb::Durability,
        f: &mut dyn FnMut(&mut dyn WriteTxn) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let _writing = self.writer();
        let mut txn = self.current().begin_write().map_err(backend_err)?;
        txn.set_durability(durability).map_err(backend_err)?;
        let r = {
            let mut w = RedbWrite::new(&txn);
            f(&mut w)
            // The tables close here, before the commit.
        };
        match r {
            Ok(()) => txn.commit().map_err(backend_err),
            Err(e) => {
                txn.abort().map_err(backend_err)?;
                Err(e)
            }
        }
    }
}
