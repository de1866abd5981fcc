//! File and passphrase handling for the CLI.

use crate::cli::PassphraseArgs;
use anyhow::{Context, bail};
use std::path::Path;
use zeroize::Zeroizing;

/// Largest input file the CLI reads: a largest signet, armored, with room to spare.
const MAX_INPUT_FILE: u64 = 32 * 1024 * 1024;

/// Reads a whole file, refusing files larger than [`MAX_INPUT_FILE`].
pub(crate) fn read_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > MAX_INPUT_FILE {
        bail!("{} is larger than {} bytes", path.display(), MAX_INPUT_FILE);
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads a UTF-8 text file.
pub(crate) fn read_text(path: &Path) -> anyhow::Result<String> {
    String::from_utf8(read_bytes(path)?)
        .with_context(|| format!("{} is not UTF-8 text", path.display()))
}

/// Writes a new file; never overwrites. Private files get mode 0600 (`dimed init`'s writer).
pub(crate) fn write_new(path: &Path, data: &[u8], private: bool) -> anyhow::Result<()> {
    Ok(dime_server::setup::write_new(path, data, private)?)
}

/// Creates a directory (and parents) if missing.
pub(crate) fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    // Private, as `dimed` wants the directories of keys and the pepper (`spec/dimed.md` §3):
    // the directories it creates are 0700 whatever the umask; an existing one keeps its mode.
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).with_context(|| format!("cannot create directory {}", dir.display()))
}

/// The passphrase for a key file, or `None` with `--insecure-plaintext`. Sources, in order:
/// `--passphrase-file`, the `DIME_PASSPHRASE` environment variable, a terminal prompt.
pub(crate) fn passphrase(
    a: &PassphraseArgs,
    confirm: bool,
) -> anyhow::Result<Option<Zeroizing<String>>> {
    if a.insecure_plaintext {
        return Ok(None);
    }
    let p = if let Some(f) = &a.passphrase_file {
        let text = Zeroizing::new(read_text(f)?);
        Zeroizing::new(text.lines().next().unwrap_or("").to_owned())
    } else if let Ok(v) = std::env::var("DIME_PASSPHRASE") {
        Zeroizing::new(v)
    } else {
        let first = Zeroizing::new(rpassword::prompt_password("key passphrase: ").context(
            "no passphrase: give --passphrase-file, set DIME_PASSPHRASE, or run on a terminal",
        )?);
        if confirm {
            let again = Zeroizing::new(rpassword::prompt_password("again: ")?);
            if *first != *again {
                bail!("the two passphrases differ");
            }
        }
        first
    };
    if p.is_empty() {
        bail!("the passphrase is empty");
    }
    if p.len() > dime_core::limits::PASSPHRASE_MAX_LEN {
        bail!("the passphrase is longer than {} bytes", dime_core::limits::PASSPHRASE_MAX_LEN);
    }
    Ok(Some(p))
}
