//! `dime user add|passwd|recover|delete|rotate|export|import|purge`: accounts in the
//! zero-access store (`spec/storage.md`).

use crate::cli::PassphraseArgs;
use crate::files::{read_bytes, read_text, write_new};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use dime_core::crypto::{Argon2Params, default_provider};
use dime_core::{Mailbox, Secret};
use dime_signet::{EncryptionSecret, keyfile};
use dime_store::{
    Accounts, Archive, ImportTarget, Mailboxes, NewAccount, Recovery, RecoveryCode, Store,
    StoreConfig, Timestamp,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand_core::{OsRng, RngCore};
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where the store and its configuration are: every `dime user` store command takes these,
/// and only the commands that read a password take [`PasswordArgs`] or [`NewPasswordArgs`].
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// The store's data directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: PathBuf,
    /// The configuration directory holding `pepper` and the key vault `vault.redb` (default:
    /// the data directory's path with `-config` appended). Keep it out of data backups.
    #[arg(long, value_name = "DIR")]
    pub(crate) config_dir: Option<PathBuf>,
    /// The pepper file (default: `pepper` in the configuration directory).
    #[arg(long, value_name = "FILE")]
    pub(crate) pepper_file: Option<PathBuf>,
}

/// The account's password, for the commands that read it.
#[derive(Debug, Args)]
pub(crate) struct PasswordArgs {
    /// The account password from this file's first line (else `DIME_USER_PASSWORD`, else a
    /// prompt).
    #[arg(long, value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
}

impl PasswordArgs {
    fn read(&self) -> anyhow::Result<Zeroizing<String>> {
        secret(self.password_file.as_deref(), "DIME_USER_PASSWORD", "account password: ")
    }
}

/// The account's new password, for the commands that set one.
#[derive(Debug, Args)]
pub(crate) struct NewPasswordArgs {
    /// The new password from this file's first line (else `DIME_NEW_PASSWORD`, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub(crate) new_password_file: Option<PathBuf>,
}

impl NewPasswordArgs {
    fn read(&self) -> anyhow::Result<Zeroizing<String>> {
        secret(self.new_password_file.as_deref(), "DIME_NEW_PASSWORD", "new account password: ")
    }
}

/// Accounts of the zero-access store.
#[derive(Debug, Subcommand)]
pub(crate) enum UserStoreCommand {
    /// Create an account: keys, a user signet signed by the organisation, the wrapped keys.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        password: PasswordArgs,
        /// The account's address.
        #[arg(long)]
        address: String,
        /// The organisation's key file (signs the user signet).
        #[arg(long, value_name = "FILE")]
        org_key: PathBuf,
        /// Recovery: none (a lost password loses the mail), code (shown once) or escrow (the
        /// organisation's key).
        #[arg(long, default_value = "code")]
        recovery: String,
        /// Quota in MiB.
        #[arg(long, default_value_t = 1024)]
        quota_mib: u64,
        /// Write the user signet (armored) here.
        #[arg(long, value_name = "FILE")]
        signet_out: Option<PathBuf>,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Change an account's password (re-wraps one key).
    Passwd {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        password: PasswordArgs,
        #[command(flatten)]
        new_password: NewPasswordArgs,
        /// The account's address.
        #[arg(long)]
        address: String,
    },
    /// Set a new password with the recovery code or the organisation's escrow key.
    ///
    /// A recovery code works once: the recovery replaces it with a new code, printed once
    /// (keep it offline), and the code used no longer works. The escrow key (the
    /// organisation's) stays as it is and recovers again.
    Recover {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        new_password: NewPasswordArgs,
        /// The account's address.
        #[arg(long)]
        address: String,
        /// A file holding the recovery code (single use: a new code is printed once).
        #[arg(long, value_name = "FILE")]
        code_file: Option<PathBuf>,
        /// The organisation's key file (escrow recovery; the escrow stays).
        #[arg(long, value_name = "FILE")]
        org_key: Option<PathBuf>,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Delete an account and shred its keys.
    Delete {
        #[command(flatten)]
        store: StoreArgs,
        /// The account's address.
        #[arg(long)]
        address: String,
        /// Confirm: the keys and mail are destroyed for good.
        #[arg(long)]
        yes: bool,
    },
    /// Rotate an account's keys (chain-of-custody signature; old keys stay in the keyring).
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        password: PasswordArgs,
        /// The account's address.
        #[arg(long)]
        address: String,
        /// The organisation's key file (signs the new user signet).
        #[arg(long, value_name = "FILE", required_unless_present = "resume_rewrap")]
        org_key: Option<PathBuf>,
        /// After rotating, re-wrap the stored mail to the new key (key overlays beside the
        /// unchanged messages; no body is re-encrypted), with a progress bar.
        #[arg(long)]
        rewrap: bool,
        /// Do not rotate: finish an interrupted re-wrap to the current key.
        #[arg(long, conflicts_with_all = ["org_key", "rewrap"])]
        resume_rewrap: bool,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Export an account to an encrypted archive (archive password: `DIME_ARCHIVE_PASSWORD`).
    Export {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        password: PasswordArgs,
        /// The account's address.
        #[arg(long)]
        address: String,
        /// The archive to write (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Import an account from an archive made by `dime user export` (here or on another host)
    /// as an account of this host: its address must be of `--domain` (name the new one with
    /// `--address` when it moves from another domain); it gets a new user signet signed by
    /// `--org-key`, chained to its old keys, and keeps its mail and its history.
    Import {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        new_password: NewPasswordArgs,
        /// The archive.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The archive password from this file's first line (else `DIME_ARCHIVE_PASSWORD`,
        /// else a prompt). It is checked before the new account password is asked for.
        #[arg(long, value_name = "FILE")]
        archive_password_file: Option<PathBuf>,
        /// This host's domain.
        #[arg(long)]
        domain: String,
        /// This host's organisation key file (signs the account's new user signet).
        #[arg(long, value_name = "FILE")]
        org_key: PathBuf,
        /// The account's address here, when it moves from another domain (the old one is kept
        /// in its history, and mail to it stays readable).
        #[arg(long)]
        address: Option<String>,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Remove an account's mail older than N days.
    Purge {
        #[command(flatten)]
        store: StoreArgs,
        /// The account's address.
        #[arg(long)]
        address: String,
        /// Age limit in days.
        #[arg(long, value_name = "DAYS")]
        older_than_days: u64,
        /// Then compact the store: no file of it keeps an octet of the purged mail
        /// (`spec/storage.md` §12).
        #[arg(long)]
        compact: bool,
    },
}

fn now() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

fn config_dir(a: &StoreArgs) -> PathBuf {
    a.config_dir.clone().unwrap_or_else(|| {
        let mut s = a.data_dir.clone().into_os_string();
        s.push("-config");
        PathBuf::from(s)
    })
}

/// Opens the store; the pepper file is created (32 random octets, mode 0600) when `create`.
fn open_store(a: &StoreArgs, create: bool) -> anyhow::Result<Store> {
    let cfg = config_dir(a);
    let pepper_path = a.pepper_file.clone().unwrap_or_else(|| cfg.join("pepper"));
    if !pepper_path.exists() {
        if !create {
            bail!(
                "no pepper at {}: create an account first, or give --pepper-file",
                pepper_path.display()
            );
        }
        crate::files::ensure_dir(pepper_path.parent().unwrap_or(Path::new(".")))?;
        let mut p = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut p[..]);
        write_new(&pepper_path, &p[..], true)?;
    }
    let pepper = Zeroizing::new(read_bytes(&pepper_path)?);
    let config = StoreConfig {
        data_dir: a.data_dir.clone(),
        vault_path: cfg.join("vault.redb"),
        pepper: Secret::new(pepper.to_vec()),
        argon2: Argon2Params::DEFAULT,
        idle_timeout_secs: 900,
    };
    Store::open(config, default_provider()).context("cannot open the store")
}

/// A secret from a file's first line, an environment variable, or a terminal prompt.
pub(crate) fn secret(
    file: Option<&Path>,
    env: &str,
    prompt: &str,
) -> anyhow::Result<Zeroizing<String>> {
    let s =
        if let Some(f) = file {
            let t = Zeroizing::new(read_text(f)?);
            Zeroizing::new(t.lines().next().unwrap_or("").to_owned())
        } else if let Ok(v) = std::env::var(env) {
            Zeroizing::new(v)
        } else {
            Zeroizing::new(rpassword::prompt_password(prompt).with_context(|| {
                format!("no {prompt} give a file, set {env}, or run on a terminal")
            })?)
        };
    if s.is_empty() {
        bail!("the {} is empty", prompt.trim_end_matches([':', ' ']));
    }
    Ok(s)
}

fn address(s: &str) -> anyhow::Result<Mailbox> {
    Mailbox::parse(s).with_context(|| format!("{s:?} is not a mail address"))
}

fn org_keys(path: &Path, pass: &PassphraseArgs) -> anyhow::Result<dime_signet::OrgKeys> {
    match crate::org::read_keys(default_provider(), path, pass)? {
        keyfile::KeySet::Org(k) => Ok(k),
        keyfile::KeySet::User(_) => {
            bail!("{} is a user key file, not an org key file", path.display())
        }
    }
}

/// A progress bar on standard error (drawn only on a terminal): `what [====>   ] 12/40`.
fn progress_bar(what: &'static str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{msg:12} [{bar:40}] {pos}/{len} ({elapsed}, eta {eta})")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what);
    pb
}

/// Progress callback of a (done, total) operation, drawing on `pb`.
fn tick(pb: &ProgressBar) -> impl FnMut(u64, u64) + '_ {
    move |done, total| {
        pb.set_length(total);
        pb.set_position(done);
    }
}

pub(crate) fn run(cmd: UserStoreCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let p = default_provider();
    match cmd {
        UserStoreCommand::Add {
            store,
            password,
            address: addr,
            org_key,
            recovery,
            quota_mib,
            signet_out,
            passphrase,
        } => {
            let mailbox = address(&addr)?;
            let org = org_keys(&org_key, &passphrase)?;
            let recovery = match recovery.as_str() {
                "none" => Recovery::None,
                "code" => Recovery::Code,
                "escrow" => match org.encryption_secret() {
                    EncryptionSecret::X25519(x) => Recovery::Escrow(p.key_agreement.public_key(x)),
                    EncryptionSecret::Secp256k1(_) => {
                        bail!("the org key has no x25519 key for escrow")
                    }
                },
                other => bail!("unknown recovery {other:?}: use none, code or escrow"),
            };
            let pw = password.read()?;
            let st = open_store(&store, true)?;
            let created = st
                .create_account(
                    &mut OsRng,
                    &org,
                    &NewAccount {
                        address: &mailbox,
                        password: pw.as_bytes(),
                        recovery,
                        quota_bytes: quota_mib.saturating_mul(1024 * 1024),
                    },
                    now(),
                )
                .context("cannot create the account")?;
            if let Some(path) = signet_out {
                write_new(&path, created.signet.to_armor().as_bytes(), false)?;
            }
            writeln!(out, "created {mailbox}")?;
            match (&created.recovery_code, recovery) {
                (Some(code), _) => {
                    writeln!(out, "recovery code (shown once, keep it offline): {}", code.expose())?
                }
                (None, Recovery::None) => writeln!(
                    out,
                    "high security: no recovery. If the password is lost, the mail is lost."
                )?,
                (None, _) => writeln!(out, "recovery: the organisation's escrow key")?,
            }
        }
        UserStoreCommand::Passwd { store, password, new_password, address: addr } => {
            let mailbox = address(&addr)?;
            let st = open_store(&store, false)?;
            let old = password.read()?;
            let mut s = st.login(&mailbox, old.as_bytes(), now()).context("cannot log in")?;
            let new = new_password.read()?;
            st.change_password(&mut OsRng, &mut s, new.as_bytes(), now())?;
            writeln!(out, "password changed for {mailbox}")?;
        }
        UserStoreCommand::Recover {
            store,
            new_password,
            address: addr,
            code_file,
            org_key,
            passphrase,
        } => {
            let mailbox = address(&addr)?;
            let st = open_store(&store, false)?;
            let new = new_password.read()?;
            let mut new_code = None;
            match (code_file, org_key) {
                (Some(f), None) => {
                    let text = Zeroizing::new(read_text(&f)?);
                    let code =
                        RecoveryCode::parse(text.trim()).context("that is not a recovery code")?;
                    let (_, next) =
                        st.recover_with_code(&mut OsRng, &mailbox, &code, new.as_bytes(), now())?;
                    new_code = Some(next);
                }
                (None, Some(k)) => {
                    let org = org_keys(&k, &passphrase)?;
                    let EncryptionSecret::X25519(x) = org.encryption_secret() else {
                        bail!("the org key has no x25519 key");
                    };
                    st.recover_with_escrow(&mut OsRng, &mailbox, x, new.as_bytes(), now())?;
                }
                _ => bail!("give exactly one of --code-file and --org-key"),
            }
            writeln!(out, "recovered {mailbox}: new password set")?;
            if let Some(code) = new_code {
                writeln!(
                    out,
                    "new recovery code (shown once, keep it offline; the code used no longer \
                     works): {}",
                    code.expose()
                )?;
            }
        }
        UserStoreCommand::Delete { store, address: addr, yes } => {
            if !yes {
                bail!("deleting an account destroys its keys and mail for good: add --yes");
            }
            let mailbox = address(&addr)?;
            open_store(&store, false)?.delete_account(&mailbox)?;
            writeln!(out, "deleted {mailbox}: its keys are shredded")?;
        }
        UserStoreCommand::Rotate {
            store,
            password,
            address: addr,
            org_key,
            rewrap,
            resume_rewrap,
            passphrase,
        } => {
            let mailbox = address(&addr)?;
            let org = match &org_key {
                Some(k) if !resume_rewrap => Some(org_keys(k, &passphrase)?),
                _ => None,
            };
            let st = open_store(&store, false)?;
            let pw = password.read()?;
            let mut s = st.login(&mailbox, pw.as_bytes(), now()).context("cannot log in")?;
            if let Some(org) = &org {
                st.rotate_keys(&mut OsRng, &mut s, org, now())
                    .with_context(|| format!("cannot rotate the keys of {mailbox}"))?;
                writeln!(
                    out,
                    "rotated keys of {mailbox}: generation {}",
                    s.current_generation().unwrap_or(0)
                )?;
            }
            if rewrap || resume_rewrap {
                let pb = progress_bar("re-wrapping");
                let mut draw = tick(&pb);
                let r = st.rewrap_slots(&mut OsRng, &mut s, 64, now(), &mut |p| {
                    draw(p.done + p.failed, p.total)
                });
                pb.finish_and_clear();
                let p = r.with_context(|| {
                    format!(
                        "re-wrap of {mailbox} interrupted (what is done is kept): run `dime user \
                         rotate --resume-rewrap` to finish"
                    )
                })?;
                writeln!(
                    out,
                    "re-wrapped {} of {} messages of {mailbox} to generation {}",
                    p.done,
                    p.total,
                    s.current_generation().unwrap_or(0)
                )?;
                if p.failed > 0 {
                    writeln!(
                        out,
                        "{} messages do not open with this account's keys and were left as they \
                         are",
                        p.failed
                    )?;
                }
            } else {
                writeln!(
                    out,
                    "old mail still opens through the keyring; `dime user rotate \
                     --resume-rewrap` moves it to the new key"
                )?;
            }
        }
        UserStoreCommand::Export { store, password, address: addr, out: path } => {
            let mailbox = address(&addr)?;
            let st = open_store(&store, false)?;
            let pw = password.read()?;
            let mut s = st.login(&mailbox, pw.as_bytes(), now()).context("cannot log in")?;
            let ap = secret(None, "DIME_ARCHIVE_PASSWORD", "archive password: ")?;
            let pb = progress_bar("exporting");
            let archive =
                st.export_with_progress(&mut OsRng, &mut s, ap.as_bytes(), now(), &mut tick(&pb));
            pb.finish_and_clear();
            let archive = archive.with_context(|| format!("cannot export {mailbox}"))?;
            write_new(&path, &archive, true)?;
            writeln!(
                out,
                "exported {mailbox} to {} ({} bytes, encrypted)",
                path.display(),
                archive.len()
            )?;
        }
        UserStoreCommand::Import {
            store,
            new_password,
            file,
            archive_password_file,
            domain,
            org_key,
            address: new_address,
            passphrase,
        } => {
            let domain = dime_core::Domain::parse(&domain)
                .with_context(|| format!("{domain:?} is not a domain name"))?;
            let new_address = new_address.as_deref().map(address).transpose()?;
            let org = org_keys(&org_key, &passphrase)?;
            let archive =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let st = open_store(&store, true)?;
            let ap = secret(
                archive_password_file.as_deref(),
                "DIME_ARCHIVE_PASSWORD",
                "archive password: ",
            )?;
            // The archive password first: nothing else is asked for an archive that does not
            // open, or whose address this host would refuse.
            let old = st
                .archive_address(&archive, ap.as_bytes())
                .with_context(|| format!("cannot open {}", file.display()))?;
            let here = new_address.clone().unwrap_or_else(|| old.clone());
            if here.domain() != &domain {
                bail!(
                    "{here} is not of this host's domain {domain}: name its address here with \
                     --address"
                );
            }
            let new = new_password.read()?;
            let pb = progress_bar("importing");
            let target = ImportTarget { domain: &domain, org: &org, address: new_address.as_ref() };
            let r = st.import_with_progress(
                &mut OsRng,
                &archive,
                ap.as_bytes(),
                new.as_bytes(),
                Some(&target),
                now(),
                &mut tick(&pb),
            );
            pb.finish_and_clear();
            let (_, mailbox) = r.with_context(|| format!("cannot import {}", file.display()))?;
            if mailbox == old {
                writeln!(out, "imported {mailbox}: new keys signed by {domain}, old mail kept")?;
            } else {
                writeln!(
                    out,
                    "imported {old} as {mailbox}: new keys signed by {domain}; mail to {old} \
                     stays readable"
                )?;
            }
        }
        UserStoreCommand::Purge { store, address: addr, older_than_days, compact } => {
            let mailbox = address(&addr)?;
            let st = open_store(&store, false)?;
            let a = st.account_of(&mailbox)?;
            let n = st.purge_older_than(a, older_than_days, now())?;
            writeln!(out, "purged {n} messages older than {older_than_days} days from {mailbox}")?;
            if compact {
                if !st.compact(now()).context("cannot compact the store")? {
                    bail!("the store was not compacted: its backend does not compact");
                }
                writeln!(out, "compacted the store")?;
            }
        }
    }
    Ok(())
}
