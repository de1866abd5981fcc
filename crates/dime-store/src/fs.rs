//! The file layer under a store (`spec/storage.md` §2, §10): the few file operations the store
//! does, behind [`StoreFs`] and [`StoreFile`], so that a test can put the store on a file system
//! that loses what was never synced ([`crate::PowerCutFs`]).
//!
//! The store touches files in three places: its directories (the data directory, the key
//! vault's), the delivery log (`spec/storage.md` §4.1: opened or created, scanned, then one
//! positional write and one `fdatasync` per batch) and the two redb databases (`store.redb`
//! and the key vault), which redb reads and writes through its `StorageBackend`. [`OsFs`] is
//! the real file system: the log's file is a [`std::fs::File`], and a database file is handed
//! to redb's own file backend (with its locks against a second process), exactly as
//! `redb::Builder::create` does. Any other layer's files reach redb through an adapter.
//!
//! A file or directory the store creates is made durable in its directory (the directory is
//! synced) before the store relies on it, so a power cut never loses a file whose contents were
//! synced.

use crate::StoreError;
use std::fmt;
use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A file system the store can live on: the operations it does on paths.
///
/// [`OsFs`] is the real one. Implementations for tests model what a crash keeps: an entry
/// (file or directory) created in a directory is durable once that directory is synced
/// ([`StoreFs::sync_dir`]), a file's contents once the file is synced
/// ([`StoreFile::sync_data`]).
pub trait StoreFs: Send + Sync + fmt::Debug {
    /// Whether a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Creates the directory `dir`, whose parent exists.
    fn create_dir(&self, dir: &Path) -> io::Result<()>;
    /// Opens the file at `path` for reading and writing, creating it empty when it is missing
    /// (never truncating it).
    fn open(&self, path: &Path) -> io::Result<Box<dyn StoreFile>>;
    /// Makes the entries of the directory `dir` durable (`fsync` of the directory): the files
    /// and directories created in it survive a crash from then on.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// An open file of a [`StoreFs`]: positional reads and writes, its length, and syncs.
pub trait StoreFile: Send + Sync + fmt::Debug {
    /// The file's length in octets.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Sets the file's length; octets added read as zeros.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Fills `buf` from `offset`; an error if the file ends before.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`, growing the file (with zeros) when it is shorter.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the file's contents and length durable (`fdatasync`): once this returns, a crash
    /// keeps every write before it.
    fn sync_data(&self) -> io::Result<()>;
    /// [`StoreFile::sync_data`], and the file's other metadata too (`fsync`).
    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }
    /// The operating system's file, when this is one: a database on it uses redb's own file
    /// backend (with its file locks). Other files give themselves back.
    fn into_os_file(self: Box<Self>) -> Result<File, Box<dyn StoreFile>>;
}

/// The store proper's database file in the data directory.
pub(crate) const STORE_FILE: &str = "store.redb";

/// The real file system (the default of [`crate::Store::open`]).
///
/// What it creates is private (`spec/dimed.md` §3): directories [`OsFs::DIR_MODE`], files
/// [`OsFs::FILE_MODE`], set explicitly whatever the process's umask. A directory or file that
/// exists already keeps its mode (`dimed` warns of a loose one at start).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsFs;

impl OsFs {
    /// The mode of a directory the store creates: its owner's only.
    pub const DIR_MODE: u32 = 0o700;
    /// The mode of a file the store creates (`store.redb`, the delivery log, the key vault).
    pub const FILE_MODE: u32 = 0o600;

    /// The directories and files of the store with the data directory `data_dir` and the key
    /// vault `vault_path` ([`crate::StoreConfig`]), each with whether it is a directory: the
    /// data directory, `store.redb`, the delivery log, the key vault's directory and the key
    /// vault. Each is private: [`OsFs::DIR_MODE`], [`OsFs::FILE_MODE`].
    pub fn private_paths(data_dir: &Path, vault_path: &Path) -> Vec<(PathBuf, bool)> {
        let mut paths = vec![
            (data_dir.to_owned(), true),
            (data_dir.join(STORE_FILE), false),
            (data_dir.join(crate::log::LOG_FILE), false),
        ];
        if let Some(dir) = vault_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            paths.push((dir.to_owned(), true));
        }
        paths.push((vault_path.to_owned(), false));
        paths
    }
}

impl StoreFs for OsFs {
    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        // Created private (never wider than DIR_MODE, whatever the umask), then set to exactly
        // DIR_MODE: a stricter umask must not leave a directory its owner cannot use.
        std::fs::DirBuilder::new().mode(OsFs::DIR_MODE).create(dir)?;
        std::fs::set_permissions(dir, Permissions::from_mode(OsFs::DIR_MODE))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn StoreFile>> {
        let mut new = OpenOptions::new();
        new.read(true).write(true).create_new(true).mode(OsFs::FILE_MODE);
        let file = match new.open(path) {
            Ok(file) => {
                // Exactly FILE_MODE on the open file, whatever the umask left.
                file.set_permissions(Permissions::from_mode(OsFs::FILE_MODE))?;
                file
            }
            // An existing file keeps its mode (dimed warns of a loose one at start).
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                OpenOptions::new().read(true).write(true).open(path)?
            }
            Err(e) => return Err(e),
        };
        Ok(Box::new(OsFile(file)))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// A file of [`OsFs`].
#[derive(Debug)]
struct OsFile(File);

impl StoreFile for OsFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(&self.0, buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(&self.0, buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn into_os_file(self: Box<Self>) -> Result<File, Box<dyn StoreFile>> {
        Ok(self.0)
    }
}

/// The directory a path is in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn fs_err(what: &str, path: &Path, e: io::Error) -> StoreError {
    StoreError::Backend(format!("{what} {}: {e}", path.display()))
}

/// Creates `dir` and its missing parents, each made durable in its parent directory.
pub(crate) fn create_dir_durably(fs: &dyn StoreFs, dir: &Path) -> Result<(), StoreError> {
    if dir.as_os_str().is_empty() || fs.exists(dir).map_err(|e| fs_err("stat", dir, e))? {
        return Ok(());
    }
    let parent = parent_of(dir);
    if parent != dir {
        create_dir_durably(fs, parent)?;
    }
    match fs.create_dir(dir) {
        // Another process made it meanwhile; it syncs its parent.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(fs_err("create directory", dir, e)),
        Ok(()) => fs.sync_dir(parent).map_err(|e| fs_err("sync directory", parent, e)),
    }
}

/// Opens (or creates) the file at `path`; a new file is synced and made durable in its
/// directory before this returns.
pub(crate) fn open_durably(
    fs: &dyn StoreFs,
    path: &Path,
) -> Result<Box<dyn StoreFile>, StoreError> {
    let created = !fs.exists(path).map_err(|e| fs_err("stat", path, e))?;
    let file = fs.open(path).map_err(|e| fs_err("open", path, e))?;
    if created {
        file.sync_all().map_err(|e| fs_err("sync", path, e))?;
        let dir = parent_of(path);
        fs.sync_dir(dir).map_err(|e| fs_err("sync directory", dir, e))?;
    }
    Ok(file)
}

/// A [`StoreFile`] as redb's storage: how a database reaches a file that is not the
/// operating system's (redb takes whole-file locks as unsupported, which its default
/// exclusive-writer mode allows).
#[derive(Debug)]
pub(crate) struct RedbFile(pub(crate) Box<dyn StoreFile>);

impl redb::StorageBackend for RedbFile {
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.0.read_exact_at(out, offset)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_all_at(data, offset)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn os_fs_creates_directories_and_files_durably() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/c");
        create_dir_durably(&OsFs, &dir).unwrap();
        create_dir_durably(&OsFs, &dir).unwrap();
        assert!(dir.is_dir());
        let path = dir.join("f");
        assert!(!OsFs.exists(&path).unwrap());
        let f = open_durably(&OsFs, &path).unwrap();
        assert!(OsFs.exists(&path).unwrap() && f.is_empty().unwrap());
        f.write_all_at(b"hello", 3).unwrap();
        f.sync_data().unwrap();
        assert_eq!(f.len().unwrap(), 8);
        let mut buf = [0u8; 8];
        f.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"\0\0\0hello");
        assert!(f.read_exact_at(&mut buf, 1).is_err(), "reading past the end fails");
        drop(f);
        let f = open_durably(&OsFs, &path).unwrap();
        assert_eq!(f.len().unwrap(), 8);
        assert!(f.into_os_file().is_ok());
    }
}
