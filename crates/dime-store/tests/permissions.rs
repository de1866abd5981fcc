//! The store's files are private (`spec/dimed.md` §3): the directories it creates are mode
//! 0700 and its files (`store.redb`, the delivery log `deliveries.log`, the key vault) 0600,
//! whatever the process's umask, so no other local user can read a stored envelope.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use dime_store::{OsFs, Store};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Set by [`fresh_store_is_private_whatever_the_umask`] for the copy of this binary it runs
/// under another umask: the directory to open a store in.
const CHILD_DIR: &str = "DIME_STORE_PERMISSIONS_CHILD_DIR";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Every directory and file of a store opened in `dir`, with the mode it must have.
fn expected(dir: &Path) -> Vec<(PathBuf, u32)> {
    let c = common::config(dir);
    let data = c.data_dir.clone();
    let vault_dir = c.vault_path.parent().unwrap().to_owned();
    vec![
        (data.clone(), 0o700),
        (data.join("store.redb"), 0o600),
        (data.join("deliveries.log"), 0o600),
        (vault_dir, 0o700),
        (c.vault_path, 0o600),
    ]
}

fn assert_private(dir: &Path) {
    for (path, want) in expected(dir) {
        assert_eq!(mode(&path), want, "{} is mode {:o}", path.display(), mode(&path));
    }
}

#[test]
fn a_fresh_store_has_private_directories_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let store = common::open(tmp.path());
    assert_private(tmp.path());
    // Opened again: still private, and the modes the store names are those.
    drop(store);
    let _again = common::open(tmp.path());
    assert_private(tmp.path());
    assert_eq!((OsFs::DIR_MODE, OsFs::FILE_MODE), (0o700, 0o600));
    let c = common::config(tmp.path());
    let listed: Vec<PathBuf> =
        OsFs::private_paths(&c.data_dir, &c.vault_path).into_iter().map(|(p, _)| p).collect();
    let want: Vec<PathBuf> = expected(tmp.path()).into_iter().map(|(p, _)| p).collect();
    assert_eq!(listed, want, "private_paths names every directory and file of the store");
}

#[test]
fn missing_parents_of_the_data_directory_are_private_too() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = common::config(tmp.path());
    c.data_dir = tmp.path().join("var").join("dimed").join("data");
    let _store = Store::open(c, dime_core::crypto::default_provider()).unwrap();
    for d in ["var", "var/dimed", "var/dimed/data"] {
        assert_eq!(mode(&tmp.path().join(d)), 0o700, "{d}");
    }
}

/// Opens a store in [`CHILD_DIR`] when it is set (this binary run again by the test below);
/// else does nothing.
#[test]
fn open_a_store_for_the_umask_test() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        drop(common::open(Path::new(&dir)));
    }
}

/// The modes are set, not left to the umask: a umask of 000 would give 0777 and 0666, one of
/// 0277 0500 and 0400 (a store its own process could not write on its next start).
#[test]
fn fresh_store_is_private_whatever_the_umask() {
    let exe = std::env::current_exe().unwrap();
    for umask in ["000", "022", "277"] {
        let tmp = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" --exact open_a_store_for_the_umask_test"))
            .arg(&exe)
            .env(CHILD_DIR, tmp.path())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "umask {umask}: the store opened");
        assert_private(tmp.path());
    }
}
