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

/// A `dimed serve` started by a test: ready once its operator's socket (`admin`) answers;
/// stopped with SIGTERM by [`Serving::stop`] (which checks it stopped cleanly), or killed on
/// drop, so a test that fails leaves no dimed behind.
pub(crate) struct Serving(pub(crate) std::process::Child);

impl Serving {
    /// Runs `dimed` with `args` and waits up to 20 s for `admin` to answer.
    pub(crate) fn start(args: &[&str], admin: &Path) -> Serving {
        use std::process::{Command, Stdio};
        let child = Command::new(env!("CARGO_BIN_EXE_dimed"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut s = Serving(child);
        let t0 = std::time::Instant::now();
        while std::os::unix::net::UnixStream::connect(admin).is_err() {
            assert!(s.0.try_wait().unwrap().is_none(), "dimed exited");
            assert!(t0.elapsed() < std::time::Duration::from_secs(20), "dimed did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        s
    }

    /// SIGTERM, then waits: it must exit successfully.
    pub(crate) fn stop(mut self) {
        let _ = std::process::Command::new("kill").arg(self.0.id().to_string()).status();
        assert!(self.0.wait().unwrap().success(), "dimed did not stop cleanly");
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
