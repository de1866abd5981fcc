//! [`PowerCutFs`]: an in-memory [`StoreFs`] that loses, in a power cut, what was never synced
//! (`spec/storage.md` §10). For tests.
//!
//! Each file keeps its *current* bytes (what reads see) apart from its *durable* bytes (what
//! the last completed [`StoreFile::sync_data`] saw), and the writes since then. Each entry
//! (file or directory) is durable once its directory was synced after it was created. One
//! mutex guards the whole file system, so an operation happens wholly before a cut or wholly
//! after it: a sync that returned before [`PowerCutFs::cut`] is kept, one that had not is lost
//! (it fails).

use crate::fs::{StoreFile, StoreFs};
use dime_core::RngCore;
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// The granularity of a torn cut ([`CutMode::Torn`]): each page of a file reaches the
/// disk whole or not at all, as a page cache writes it back.
pub const POWER_CUT_PAGE: u64 = 4096;

/// An in-memory file system whose power can be cut, for crash tests (`spec/storage.md` §10):
/// a store opened on it with [`crate::Store::open_with_fs`] keeps, after a cut, only what it
/// made durable.
///
/// What is durable:
/// - the contents and length of a file, as of the last [`StoreFile::sync_data`] (or
///   [`StoreFile::sync_all`]) that completed;
/// - an entry (file or directory): once its parent directory is synced
///   ([`StoreFs::sync_dir`]) after the entry was created; a file created and synced but whose
///   directory never was is lost in a cut, with its contents. Directories are entries like
///   files: a cut keeps an entry only if it keeps its parent too. The root is always there.
///
/// A cut ([`PowerCutFs::cut`], or one armed to come at a chosen operation,
/// [`PowerCutFs::arm_cut`]) is atomic: from that instant every operation on this file system,
/// and on every file opened from it, fails with an I/O error (so no thread still running
/// acknowledges anything it had not made durable before), and the file system it returns
/// holds what was durable ([`CutMode::Clean`]), or that and a random part of the rest
/// ([`CutMode::Torn`]). Nothing else is modelled: no rename, no removal, no file locks (redb
/// takes them as unsupported).
#[derive(Clone, Default)]
pub struct PowerCutFs {
    shared: Arc<Shared>,
}

impl fmt::Debug for PowerCutFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowerCutFs").finish_non_exhaustive()
    }
}

/// What a cut keeps of the writes made since the last sync.
pub enum CutMode {
    /// Nothing: only what was synced survives.
    Clean,
    /// A random part, as from a page cache flushed at random moments: each [`POWER_CUT_PAGE`]
    /// of a file holds its durable bytes with the first few (chosen by the generator, maybe
    /// none or all) of the writes since the last sync that touched it applied; a file's
    /// length is its length at one (random) moment since that sync; an entry whose directory
    /// was not synced survives or not. A write therefore reaches the disk torn, page by page.
    /// Within a page no byte outside a write changes ("powersafe overwrite"), which redb
    /// assumes.
    Torn(Box<dyn RngCore + Send>),
}

impl fmt::Debug for CutMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CutMode::Clean => "Clean",
            CutMode::Torn(_) => "Torn",
        })
    }
}

#[derive(Default)]
struct Shared {
    disk: Mutex<Disk>,
    /// Signalled when the cut comes.
    came: Condvar,
}

#[derive(Default)]
struct Disk {
    /// What the cut left, once it came: every operation fails from then on.
    after: Option<PowerCutFs>,
    /// An armed cut: how many changing operations are still let through, and its mode.
    armed: Option<(u64, CutMode)>,
    /// The paths of the files that had writes not yet synced when the cut that made this disk
    /// came.
    unsynced_at_cut: Vec<PathBuf>,
    /// Files and directories, by path.
    entries: BTreeMap<PathBuf, Entry>,
}

struct Entry {
    /// Whether its directory was synced since it was created.
    durable: bool,
    /// `None` for a directory.
    file: Option<Data>,
}

/// A file's bytes.
#[derive(Default)]
struct Data {
    /// What reads see.
    current: Vec<u8>,
    /// What the last completed sync saw.
    durable: Vec<u8>,
    /// What changed since that sync, in order: replayed onto `durable` by the next sync.
    pending: Vec<Op>,
}

enum Op {
    Write { at: u64, data: Vec<u8> },
    SetLen(u64),
}

impl Op {
    /// Applies this operation to `bytes`.
    fn apply(&self, bytes: &mut Vec<u8>) {
        match self {
            Op::Write { at, data } => {
                let at = *at as usize;
                let end = at + data.len();
                if bytes.len() < end {
                    bytes.resize(end, 0);
                }
                bytes[at..end].copy_from_slice(data);
            }
            Op::SetLen(len) => bytes.resize(*len as usize, 0),
        }
    }

    /// The file's length after this operation, from `len`.
    fn len_after(&self, len: u64) -> u64 {
        match self {
            Op::Write { at, data } => len.max(at + data.len() as u64),
            Op::SetLen(l) => *l,
        }
    }

    /// The octets this operation changes, from a file of `len` octets: a write's, or those a
    /// shrink cuts off (zeros if the file grows again).
    fn range(&self, len: u64) -> (u64, u64) {
        match self {
            Op::Write { at, data } => (*at, at + data.len() as u64),
            Op::SetLen(l) => (*l, len.max(*l)),
        }
    }

    /// Applies the part of this operation inside `[lo, hi)` to `bytes`, whose length covers it.
    fn apply_within(&self, len: u64, lo: u64, hi: u64, bytes: &mut [u8]) {
        let (s, e) = self.range(len);
        let (s, e) = (s.max(lo), e.min(hi));
        if s >= e {
            return;
        }
        match self {
            Op::Write { at, data } => bytes[s as usize..e as usize]
                .copy_from_slice(&data[(s - at) as usize..(e - at) as usize]),
            Op::SetLen(_) => bytes[s as usize..e as usize].fill(0),
        }
    }
}

impl Data {
    fn durable_only(bytes: Vec<u8>) -> Data {
        Data { current: bytes.clone(), durable: bytes, pending: Vec::new() }
    }

    fn change(&mut self, op: Op) {
        op.apply(&mut self.current);
        self.pending.push(op);
    }

    fn sync(&mut self) {
        for op in self.pending.drain(..) {
            op.apply(&mut self.durable);
        }
        debug_assert!(self.durable == self.current);
    }

    /// What a torn cut leaves: the durable bytes, each page of them with a random prefix of
    /// the pending operations that touched it applied, at the length after a random prefix of
    /// them.
    fn torn(&self, rng: &mut dyn RngCore) -> Vec<u8> {
        let mut lens = Vec::with_capacity(self.pending.len() + 1);
        let mut len = self.durable.len() as u64;
        lens.push(len);
        for op in &self.pending {
            len = op.len_after(len);
            lens.push(len);
        }
        let widest = lens.iter().copied().max().unwrap_or(0);
        let mut pages: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (i, op) in self.pending.iter().enumerate() {
            let (s, e) = op.range(lens[i]);
            if s < e {
                for page in s / POWER_CUT_PAGE..e.div_ceil(POWER_CUT_PAGE) {
                    pages.entry(page).or_default().push(i);
                }
            }
        }
        let mut image = self.durable.clone();
        image.resize(widest as usize, 0);
        for (page, ops) in pages {
            let (lo, hi) = (page * POWER_CUT_PAGE, ((page + 1) * POWER_CUT_PAGE).min(widest));
            let kept = pick(rng, ops.len() + 1);
            for &i in &ops[..kept] {
                self.pending[i].apply_within(lens[i], lo, hi, &mut image);
            }
        }
        image.truncate(lens[pick(rng, lens.len())] as usize);
        image
    }
}

/// A number below `n` (`n` > 0).
fn pick(rng: &mut dyn RngCore, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

fn cut_err() -> io::Error {
    io::Error::other("power cut: the device is gone")
}

/// Whether `path` is the root (always there, not an entry).
fn is_root(path: &Path) -> bool {
    path.parent().is_none() || path.as_os_str().is_empty()
}

/// The directory of `path`: the root when it has none.
fn dir_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("/"))
}

impl Disk {
    fn is_dir(&self, path: &Path) -> bool {
        is_root(path) || self.entries.get(path).is_some_and(|e| e.file.is_none())
    }

    fn file(&mut self, path: &Path) -> io::Result<&mut Data> {
        self.entries
            .get_mut(path)
            .and_then(|e| e.file.as_mut())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }

    /// Cuts the power now (unless the cut came already) and gives what it left.
    fn cut(&mut self, mut mode: CutMode) -> PowerCutFs {
        if let Some(after) = &self.after {
            return after.clone();
        }
        self.armed = None;
        let torn = match &mut mode {
            CutMode::Clean => None,
            CutMode::Torn(rng) => Some(&mut **rng as &mut dyn RngCore),
        };
        let after = PowerCutFs {
            shared: Arc::new(Shared {
                disk: Mutex::new(self.survivors(torn)),
                came: Condvar::new(),
            }),
        };
        self.after = Some(after.clone());
        after
    }

    /// What survives a cut now; `torn` keeps, besides, a random part of what was not synced.
    fn survivors(&self, mut torn: Option<&mut dyn RngCore>) -> Disk {
        let unsynced_at_cut = self
            .entries
            .iter()
            .filter(|(_, e)| e.file.as_ref().is_some_and(|d| !d.pending.is_empty()))
            .map(|(p, _)| p.clone())
            .collect();
        let mut out = Disk { unsynced_at_cut, ..Disk::default() };
        // A parent sorts before its children.
        for (path, e) in &self.entries {
            let kept = e.durable || torn.as_deref_mut().is_some_and(|r| pick(r, 2) == 0);
            if !kept || !out.is_dir(dir_of(path)) {
                continue;
            }
            let file = e.file.as_ref().map(|d| match torn.as_deref_mut() {
                Some(rng) => Data::durable_only(d.torn(rng)),
                None => Data::durable_only(d.durable.clone()),
            });
            out.entries.insert(path.clone(), Entry { durable: true, file });
        }
        out
    }
}

impl PowerCutFs {
    /// An empty file system (only the root directory).
    pub fn new() -> PowerCutFs {
        PowerCutFs::default()
    }

    fn disk(&self) -> MutexGuard<'_, Disk> {
        // A thread that panicked holding the lock left the disk as it was between two
        // operations: keep using it.
        self.shared.disk.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The disk, for an operation: an error once the power is cut.
    fn lock(&self) -> io::Result<MutexGuard<'_, Disk>> {
        let g = self.disk();
        if g.after.is_some() { Err(cut_err()) } else { Ok(g) }
    }

    /// The disk, for an operation that changes it (a write, a length, a sync, a creation):
    /// the armed cut comes instead of the operation it was armed for.
    fn lock_to_change(&self) -> io::Result<MutexGuard<'_, Disk>> {
        let mut g = self.lock()?;
        match &mut g.armed {
            Some((1, _)) => {
                if let Some((_, mode)) = g.armed.take() {
                    g.cut(mode);
                }
                self.shared.came.notify_all();
                Err(cut_err())
            }
            Some((left, _)) => {
                *left -= 1;
                Ok(g)
            }
            None => Ok(g),
        }
    }

    /// Cuts the power now, keeping what `mode` says: from now on every operation on this file
    /// system and its open files fails. Returns the file system as it comes back. If a cut
    /// came already (an armed one), returns what that one left.
    pub fn cut(&self, mode: CutMode) -> PowerCutFs {
        let after = self.disk().cut(mode);
        self.shared.came.notify_all();
        after
    }

    /// Arms a cut to come just before the `ops`-th operation from now that changes a file or
    /// a directory (a write, a length, a sync, a creation; not a read), which then fails as
    /// every later one does. So a cut can land anywhere in a sequence of writes and syncs,
    /// however fast they are. [`PowerCutFs::wait_cut`] waits for it.
    pub fn arm_cut(&self, ops: u64, mode: CutMode) {
        let mut g = self.disk();
        if g.after.is_none() {
            g.armed = Some((ops.max(1), mode));
        }
    }

    /// Waits up to `timeout` for the armed cut, then cuts the power if it has not come (with
    /// the armed mode, or [`CutMode::Clean`]); returns what the cut left.
    pub fn wait_cut(&self, timeout: Duration) -> PowerCutFs {
        let g = self.disk();
        let (mut g, _) = self
            .shared
            .came
            .wait_timeout_while(g, timeout, |d| d.after.is_none())
            .unwrap_or_else(|p| p.into_inner());
        let mode = g.armed.take().map_or(CutMode::Clean, |(_, m)| m);
        g.cut(mode)
    }

    /// The files that had writes not yet synced when the cut that returned this file system
    /// came (none for one made by [`PowerCutFs::new`]): what the cut lost, or tore.
    pub fn unsynced_at_cut(&self) -> Vec<PathBuf> {
        self.disk().unsynced_at_cut.clone()
    }

    /// The current bytes of the file at `path` (what a read sees), if it is one.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let g = self.lock().ok()?;
        g.entries.get(path)?.file.as_ref().map(|d| d.current.clone())
    }
}

impl StoreFs for PowerCutFs {
    fn exists(&self, path: &Path) -> io::Result<bool> {
        let g = self.lock()?;
        Ok(is_root(path) || g.entries.contains_key(path))
    }

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        let mut g = self.lock_to_change()?;
        if is_root(dir) || g.entries.contains_key(dir) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists already"));
        }
        if !g.is_dir(dir_of(dir)) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such parent directory"));
        }
        g.entries.insert(dir.to_path_buf(), Entry { durable: false, file: None });
        Ok(())
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn StoreFile>> {
        let mut g = if self.exists(path)? { self.lock()? } else { self.lock_to_change()? };
        match g.entries.get(path) {
            Some(e) if e.file.is_none() => {
                return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory"));
            }
            Some(_) => {}
            None if is_root(path) => {
                return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory"));
            }
            None if !g.is_dir(dir_of(path)) => {
                return Err(io::Error::new(io::ErrorKind::NotFound, "no such parent directory"));
            }
            None => {
                g.entries.insert(
                    path.to_path_buf(),
                    Entry { durable: false, file: Some(Data::default()) },
                );
            }
        }
        Ok(Box::new(PowerCutFile { fs: self.clone(), path: path.to_path_buf() }))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut g = self.lock_to_change()?;
        if !g.is_dir(dir) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
        }
        for (path, e) in g.entries.iter_mut() {
            if dir_of(path) == dir {
                e.durable = true;
            }
        }
        Ok(())
    }
}

/// A file of a [`PowerCutFs`].
struct PowerCutFile {
    fs: PowerCutFs,
    path: PathBuf,
}

impl fmt::Debug for PowerCutFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowerCutFile").field("path", &self.path).finish_non_exhaustive()
    }
}

impl PowerCutFile {
    /// Runs `f` on the file's data; `changes` says whether it changes the disk.
    fn with<T>(&self, changes: bool, f: impl FnOnce(&mut Data) -> T) -> io::Result<T> {
        let mut g = if changes { self.fs.lock_to_change()? } else { self.fs.lock()? };
        Ok(f(g.file(&self.path)?))
    }
}

impl StoreFile for PowerCutFile {
    fn len(&self) -> io::Result<u64> {
        self.with(false, |d| d.current.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with(true, |d| d.change(Op::SetLen(len)))
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.with(false, |d| {
            let src = usize::try_from(offset)
                .ok()
                .and_then(|at| d.current.get(at..at.checked_add(buf.len())?))
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the file")
                })?;
            buf.copy_from_slice(src);
            Ok(())
        })?
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.with(true, |d| d.change(Op::Write { at: offset, data: buf.to_vec() }))
    }

    fn sync_data(&self) -> io::Result<()> {
        self.with(true, Data::sync)
    }

    fn into_os_file(self: Box<Self>) -> Result<std::fs::File, Box<dyn StoreFile>> {
        Err(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn read_all(fs: &PowerCutFs, path: &str) -> Option<Vec<u8>> {
        fs.contents(Path::new(path))
    }

    #[test]
    fn a_cut_keeps_synced_bytes_and_loses_the_rest() {
        let fs = PowerCutFs::new();
        fs.create_dir(Path::new("/d")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        let f = fs.open(Path::new("/d/f")).unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        f.write_all_at(b"synced", 0).unwrap();
        f.sync_data().unwrap();
        f.write_all_at(b"SYNCED and more", 0).unwrap();
        assert_eq!(read_all(&fs, "/d/f").unwrap(), b"SYNCED and more");
        let after = fs.cut(CutMode::Clean);
        assert_eq!(read_all(&after, "/d/f").unwrap(), b"synced");
        assert_eq!(after.unsynced_at_cut(), [Path::new("/d/f")]);
        // The old file system is gone, with its open files.
        assert!(f.write_all_at(b"x", 0).is_err());
        assert!(f.sync_data().is_err());
        assert!(f.len().is_err());
        assert!(fs.exists(Path::new("/d")).is_err());
    }

    #[test]
    fn an_entry_is_durable_once_its_directory_is_synced() {
        let fs = PowerCutFs::new();
        fs.create_dir(Path::new("/d")).unwrap();
        let f = fs.open(Path::new("/d/f")).unwrap();
        f.write_all_at(b"data", 0).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        // "/d" itself was never made durable in "/": a cut loses it and its file.
        let after = fs.cut(CutMode::Clean);
        assert!(!after.exists(Path::new("/d")).unwrap());
        assert!(after.open(Path::new("/d/f")).is_err());

        let fs = PowerCutFs::new();
        fs.create_dir(Path::new("/d")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        fs.open(Path::new("/d/f")).unwrap().sync_data().unwrap();
        assert!(!fs.cut(CutMode::Clean).exists(Path::new("/d/f")).unwrap());
    }

    #[test]
    fn set_len_is_durable_only_after_a_sync() {
        let fs = PowerCutFs::new();
        let f = fs.open(Path::new("/f")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        f.write_all_at(&[1; 10], 0).unwrap();
        f.sync_data().unwrap();
        f.set_len(4).unwrap();
        f.set_len(8).unwrap();
        assert_eq!(read_all(&fs, "/f").unwrap(), [1, 1, 1, 1, 0, 0, 0, 0]);
        assert_eq!(read_all(&fs.cut(CutMode::Clean), "/f").unwrap(), [1; 10]);
    }

    #[test]
    fn a_torn_cut_keeps_whole_pages_of_each_write_in_order() {
        let page = POWER_CUT_PAGE as usize;
        let (mut kept, mut lost) = (false, false);
        for seed in 0..64 {
            let fs = PowerCutFs::new();
            let f = fs.open(Path::new("/f")).unwrap();
            fs.sync_dir(Path::new("/")).unwrap();
            f.write_all_at(&vec![1; 3 * page], 0).unwrap();
            f.sync_data().unwrap();
            f.write_all_at(&vec![2; 2 * page], page as u64 / 2).unwrap();
            f.write_all_at(&vec![3; page], 2 * page as u64).unwrap();
            let torn = CutMode::Torn(Box::new(dime_testkit::seeded_rng(seed)));
            let got = read_all(&fs.cut(torn), "/f").unwrap();
            assert_eq!(got.len(), 3 * page);
            // Each page holds one of its versions (the first k writes that touched it), never
            // a mix a page cache could not have written back.
            let half = page / 2;
            let versions = [
                vec![vec![1; page], [vec![1; half], vec![2; half]].concat()],
                vec![vec![1; page], vec![2; page]],
                vec![vec![1; page], [vec![2; half], vec![1; half]].concat(), vec![3; page]],
            ];
            for (p, v) in got.chunks(page).zip(&versions) {
                assert!(v.iter().any(|v| v == p), "page starting {:?}", &p[..4]);
            }
            kept |= got[2 * page] == 3;
            lost |= got[page] == 1;
        }
        assert!(kept && lost, "a torn cut keeps some unsynced writes and loses others");
    }

    #[test]
    fn an_armed_cut_comes_instead_of_the_chosen_change() {
        let fs = PowerCutFs::new();
        let f = fs.open(Path::new("/f")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        fs.arm_cut(3, CutMode::Clean);
        f.write_all_at(b"one", 0).unwrap();
        let mut buf = [0u8; 3];
        f.read_exact_at(&mut buf, 0).unwrap(); // reads do not count
        f.sync_data().unwrap();
        assert!(f.write_all_at(b"two", 0).is_err(), "the third change meets the cut");
        assert!(f.read_exact_at(&mut buf, 0).is_err());
        let after = fs.wait_cut(Duration::from_secs(5));
        assert_eq!(read_all(&after, "/f").unwrap(), b"one");
        assert!(Arc::ptr_eq(&after.shared, &fs.cut(CutMode::Clean).shared), "one cut");
        // Not reached: waiting cuts anyway.
        let fs = PowerCutFs::new();
        fs.arm_cut(100, CutMode::Clean);
        assert!(!fs.wait_cut(Duration::from_millis(1)).exists(Path::new("/f")).unwrap());
        assert!(fs.exists(Path::new("/")).is_err());
    }
}
