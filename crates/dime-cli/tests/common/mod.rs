//! Helpers shared by the `dime-cli` tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// The canary audit: panics, naming the file and the canary, when any of `needles` is in any
/// file under `dirs` or in `logs` (the audit of zero-access, `../shared/design/test-plan.md`).
pub(crate) fn audit(what: &str, dirs: &[&Path], logs: &[&Path], needles: &[&str]) {
    let mut files = Vec::new();
    let mut stack: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.extend(logs.iter().map(|l| l.to_path_buf()));
    assert!(files.len() > 5, "{what}: nothing to audit");
    for f in &files {
        let Ok(bytes) = std::fs::read(f) else { continue };
        for n in needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n.as_bytes()),
                "{what}: {n:?} found in {}",
                f.display()
            );
        }
    }
}
