//! `dime user add|list|passwd|recover|delete|rotate|export|import|purge`: accounts in the
//! zero-access store (`spec/storage.md`). With `--config dimed.toml` they act on the store,
//! pepper and org key of that server, through its operator's socket while it runs
//! (`spec/dimed.md` §5) and directly on its store while it is stopped.

use crate::cli::PassphraseArgs;
use crate::files::{read_bytes, read_text, write_new};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use dime_core::crypto::{Argon2Params, default_provider};
use dime_core::{Mailbox, Secret};
use dime_server::admin::{AccountView, AdminResponse, MAX_LISTED};
use dime_server::config::Config;
use dime_server::setup::files;
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
    /// The server's configuration file (`dimed.toml`, as `dimed serve` reads it): its store,
    /// pepper, org key and domain. While dimed runs the command goes through its operator's
    /// socket; while it is stopped, to its store directly.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "data_dir",
        conflicts_with_all = ["data_dir", "config_dir", "pepper_file"]
    )]
    pub(crate) config: Option<PathBuf>,
    /// A store without a `dimed.toml`: its data directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// With --data-dir: the configuration directory holding `pepper` and the key vault
    /// `vault.redb` (default: the data directory's path with `-config` appended). Keep it out
    /// of data backups.
    #[arg(long, value_name = "DIR")]
    pub(crate) config_dir: Option<PathBuf>,
    /// With --data-dir: the pepper file (default: `pepper` in the configuration directory).
    #[arg(long, value_name = "FILE")]
    pub(crate) pepper_file: Option<PathBuf>,
}

/// The strength zxcvbn must give a new password (its score, 0 to 4), unless
/// `--allow-weak-password` or `DIME_ALLOW_WEAK_PASSWORD=1` (for tests) says otherwise.
pub(crate) const MIN_PASSWORD_SCORE: u8 = 3;

/// Checks for a new password: its strength.
#[derive(Debug, Args)]
pub(crate) struct StrengthArgs {
    /// Accept a new password that the strength estimator (zxcvbn) scores under 3 of 4 (also
    /// `DIME_ALLOW_WEAK_PASSWORD=1`). For tests and throw-away accounts.
    #[arg(long)]
    pub(crate) allow_weak_password: bool,
}

impl StrengthArgs {
    /// Refuses `password` when zxcvbn scores it under [`MIN_PASSWORD_SCORE`], with its
    /// feedback; `hints` (the address) count as known to an attacker.
    pub(crate) fn check(&self, password: &str, hints: &[&str]) -> anyhow::Result<()> {
        if self.allow_weak_password
            || std::env::var("DIME_ALLOW_WEAK_PASSWORD").is_ok_and(|v| v == "1")
        {
            return Ok(());
        }
        let e = zxcvbn::zxcvbn(password, hints);
        let score = u8::from(e.score());
        if score >= MIN_PASSWORD_SCORE {
            return Ok(());
        }
        let mut why = String::new();
        if let Some(f) = e.feedback() {
            if let Some(w) = f.warning() {
                why.push_str(&format!(" {w}."));
            }
            for s in f.suggestions() {
                why.push_str(&format!(" {s}"));
            }
        }
        bail!(
            "the password is too weak: strength {score} of 4, at least {MIN_PASSWORD_SCORE} \
             needed.{why} (--allow-weak-password accepts it anyway)"
        )
    }
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

    /// The password of a new account: asked twice at a prompt, and checked for strength.
    fn read_new(
        &self,
        strength: &StrengthArgs,
        hints: &[&str],
    ) -> anyhow::Result<Zeroizing<String>> {
        new_secret(
            self.password_file.as_deref(),
            "DIME_USER_PASSWORD",
            "account password: ",
            strength,
            hints,
        )
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
    /// The new password: asked twice at a prompt, and checked for strength.
    fn read(&self, strength: &StrengthArgs, hints: &[&str]) -> anyhow::Result<Zeroizing<String>> {
        new_secret(
            self.new_password_file.as_deref(),
            "DIME_NEW_PASSWORD",
            "new account password: ",
            strength,
            hints,
        )
    }
}

/// A new secret from a file's first line, an environment variable, or a terminal prompt
/// (asked twice, the two must match); refused when weak (`strength`).
pub(crate) fn new_secret(
    file: Option<&Path>,
    env: &str,
    prompt: &str,
    strength: &StrengthArgs,
    hints: &[&str],
) -> anyhow::Result<Zeroizing<String>> {
    let prompted = file.is_none() && std::env::var_os(env).is_none();
    let s = secret(file, env, prompt)?;
    if prompted {
        let again = Zeroizing::new(
            rpassword::prompt_password("the same again: ").context("cannot read the password")?,
        );
        if *again != *s {
            bail!("the two passwords differ");
        }
    }
    strength.check(&s, hints)?;
    Ok(s)
}

/// Accounts of the zero-access store.
#[derive(Debug, Subcommand)]
pub(crate) enum UserStoreCommand {
    /// Create an account: keys, a user signet signed by the organisation, the wrapped keys.
    ///
    /// The password is asked twice (or read from --password-file or `DIME_USER_PASSWORD`)
    /// and refused when the strength estimator scores it under 3 of 4.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        password: PasswordArgs,
        #[command(flatten)]
        strength: StrengthArgs,
        /// The account's address (with --config: of the server's domain).
        #[arg(long)]
        address: String,
        /// The organisation's key file (signs the user signet; with --config: the server's,
        /// by default).
        #[arg(long, value_name = "FILE", required_unless_present = "config")]
        org_key: Option<PathBuf>,
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
    /// List the accounts: address, key generation, recovery, use and quota.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Print JSON (one array of every account).
        #[arg(long)]
        json: bool,
    },
    /// Change an account's password (re-wraps one key).
    Passwd {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        password: PasswordArgs,
        #[command(flatten)]
        new_password: NewPasswordArgs,
        #[command(flatten)]
        strength: StrengthArgs,
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
        #[command(flatten)]
        strength: StrengthArgs,
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
        #[arg(long, value_name = "FILE", required_unless_present_any = ["resume_rewrap", "config"])]
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
        #[command(flatten)]
        strength: StrengthArgs,
        /// The archive.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The archive password from this file's first line (else `DIME_ARCHIVE_PASSWORD`,
        /// else a prompt). It is checked before the new account password is asked for.
        #[arg(long, value_name = "FILE")]
        archive_password_file: Option<PathBuf>,
        /// This host's domain (with --config: the server's, by default).
        #[arg(long, required_unless_present = "config")]
        domain: Option<String>,
        /// This host's organisation key file (signs the account's new user signet; with
        /// --config: the server's, by default).
        #[arg(long, value_name = "FILE", required_unless_present = "config")]
        org_key: Option<PathBuf>,
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

fn config_dir(a: &StoreArgs, data_dir: &Path) -> PathBuf {
    a.config_dir.clone().unwrap_or_else(|| {
        let mut s = data_dir.as_os_str().to_owned();
        s.push("-config");
        PathBuf::from(s)
    })
}

/// Where a `dime user` command acts.
enum Target {
    /// The running dimed of a `dimed.toml`, through its operator's socket.
    Running {
        /// The operator's socket.
        socket: PathBuf,
        /// The configuration.
        config: Config,
    },
    /// The store itself: dimed is stopped, or the store has no `dimed.toml`.
    Store {
        /// The store.
        store: Store,
        /// Its configuration, with --config.
        config: Option<Config>,
    },
}

impl Target {
    fn config(&self) -> Option<&Config> {
        match self {
            Target::Running { config, .. } => Some(config),
            Target::Store { config, .. } => config.as_ref(),
        }
    }

    /// The store, for the commands that do not go through the operator's socket.
    fn stopped(self, command: &str) -> anyhow::Result<(Store, Option<Config>)> {
        match self {
            Target::Store { store, config } => Ok((store, config)),
            Target::Running { socket, .. } => bail!(
                "dimed is running (its operator's socket {} answers): stop it to run `dime user \
                 {command}` (add, list, passwd and delete work while it runs)",
                socket.display()
            ),
        }
    }

    /// Refuses an address outside the configured domain (with --config).
    fn check_domain(&self, m: &Mailbox) -> anyhow::Result<()> {
        match self.config() {
            Some(c) if m.domain() != &c.domain => {
                bail!("{m} is not of this server's domain {}", c.domain)
            }
            _ => Ok(()),
        }
    }
}

/// Opens what `a` names; a store without a `dimed.toml` gets a new pepper file (32 random
/// octets, mode 0600) when `create` and it has none, and only while the store has no data.
fn target(a: &StoreArgs, create: bool) -> anyhow::Result<Target> {
    let Some(path) = &a.config else {
        return Ok(Target::Store { store: open_store(a, create)?, config: None });
    };
    let c = Config::load(path)?;
    let socket = c.admin_socket();
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return Ok(Target::Running { socket, config: c });
    }
    let pepper_path = c.secret_path(files::PEPPER);
    if !pepper_path.exists() {
        bail!(
            "no pepper at {}: {} is not a domain made by `dimed init`, or its config_dir moved",
            pepper_path.display(),
            path.display()
        );
    }
    if !c.data_dir.exists() {
        bail!(
            "data_dir {} does not exist: check `data_dir` in {} (`dimed serve --create` starts \
             an empty store)",
            c.data_dir.display(),
            path.display()
        );
    }
    let store = store_at(&c.data_dir, &c.config_dir, &pepper_path).with_context(|| {
        format!("is dimed running? its operator's socket {} does not answer", socket.display())
    })?;
    Ok(Target::Store { store, config: Some(c) })
}

/// Opens a store without a `dimed.toml` (--data-dir); its pepper file is created when `create`
/// and the store holds no data yet (a second pepper would make every account unusable).
fn open_store(a: &StoreArgs, create: bool) -> anyhow::Result<Store> {
    let Some(data_dir) = &a.data_dir else { bail!("give --config or --data-dir") };
    let cfg = config_dir(a, data_dir);
    let pepper_path = a.pepper_file.clone().unwrap_or_else(|| cfg.join("pepper"));
    if !pepper_path.exists() {
        // `dimed init` puts the data directory beside its dimed.toml, the pepper elsewhere.
        let beside = data_dir.parent().map(|d| d.join("dimed.toml")).filter(|c| c.exists());
        if let Some(c) = beside {
            bail!(
                "no pepper at {}, and {} is beside this data directory: give --config {} (a new \
                 pepper would make an account that dimed cannot open)",
                pepper_path.display(),
                c.display(),
                c.display()
            );
        }
        if data_dir.join(STORE_FILE).exists() {
            bail!(
                "the store in {} exists, but its pepper is not at {}: give the configuration \
                 directory that holds it (--config-dir), or --config with the server's \
                 dimed.toml (a new pepper would open nothing of this store)",
                data_dir.display(),
                pepper_path.display()
            );
        }
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
    store_at(data_dir, &cfg, &pepper_path)
}

/// The store's database file in its data directory (`spec/storage.md` §2).
const STORE_FILE: &str = "store.redb";

/// The store of a `dimed.toml` (dimed must not be running: the store is opened exclusively).
pub(crate) fn open_configured(c: &Config) -> anyhow::Result<Store> {
    store_at(&c.data_dir, &c.config_dir, &c.secret_path(files::PEPPER))
}

fn store_at(data_dir: &Path, config_dir: &Path, pepper_path: &Path) -> anyhow::Result<Store> {
    let pepper = Zeroizing::new(read_bytes(pepper_path)?);
    let config = StoreConfig {
        data_dir: data_dir.to_owned(),
        vault_path: config_dir.join(files::VAULT),
        pepper: Secret::new(pepper.to_vec()),
        argon2: Argon2Params::DEFAULT,
        idle_timeout_secs: 900,
    };
    Store::open(config, default_provider()).context("cannot open the store")
}

/// The org keys: `--org-key` when given, else the configured server's (its `org.pass`, else
/// the passphrase of `pass`).
fn org_keys_of(
    key: Option<&Path>,
    config: Option<&Config>,
    pass: &PassphraseArgs,
) -> anyhow::Result<dime_signet::OrgKeys> {
    match (key, config) {
        (Some(k), _) => org_keys(k, pass),
        // Its org.pass first; without one, the passphrase given (or asked for).
        (None, Some(c)) => dime_server::setup::read_org_keys(default_provider(), c, None)
            .or_else(|_| org_keys(&c.secret_path(files::ORG_KEY), pass))
            .context("cannot read the server's org key"),
        (None, None) => bail!("give --org-key"),
    }
}

/// One request on the operator's socket of a running dimed (the request line is zeroized:
/// it may hold passwords).
pub(crate) fn admin_request(
    socket: &Path,
    req: &impl serde::Serialize,
) -> anyhow::Result<AdminResponse> {
    use std::io::{BufRead, BufReader};
    let mut line = Zeroizing::new(serde_json::to_vec(req)?);
    line.push(b'\n');
    let mut s = std::os::unix::net::UnixStream::connect(socket).with_context(|| {
        format!("cannot reach dimed's operator socket {} (is it running?)", socket.display())
    })?;
    s.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).context("dimed closed the connection")?;
    let r: AdminResponse =
        serde_json::from_str(&answer).context("dimed sent a malformed answer")?;
    if !r.ok {
        bail!("{}", r.error.unwrap_or_else(|| "refused".into()));
    }
    Ok(r)
}

/// Every account, a page at a time.
fn list_accounts(t: &Target) -> anyhow::Result<Vec<AccountView>> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = match t {
            Target::Running { socket, .. } => {
                let req = serde_json::json!({"op": "user_list", "after": after, "max": MAX_LISTED});
                admin_request(socket, &req)?.accounts.unwrap_or_default()
            }
            Target::Store { store, .. } => {
                let after = match &after {
                    Some(h) => {
                        let mut id = [0; 16];
                        hex::decode_to_slice(h, &mut id).context("account id")?;
                        Some(dime_store::AccountId(id))
                    }
                    None => None,
                };
                store.accounts(after, MAX_LISTED)?.into_iter().map(AccountView::from).collect()
            }
        };
        let full = page.len() == MAX_LISTED;
        after = page.last().map(|a| a.id.clone());
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

fn print_created(
    out: &mut dyn Write,
    mailbox: &Mailbox,
    code: Option<&str>,
    recovery: &str,
) -> anyhow::Result<()> {
    writeln!(out, "created {mailbox}")?;
    match (code, recovery) {
        (Some(code), _) => writeln!(out, "recovery code (shown once, keep it offline): {code}")?,
        (None, "none") => {
            writeln!(out, "high security: no recovery. If the password is lost, the mail is lost.")?
        }
        (None, _) => writeln!(out, "recovery: the organisation's escrow key")?,
    }
    Ok(())
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
            strength,
            address: addr,
            org_key,
            recovery,
            quota_mib,
            signet_out,
            passphrase,
        } => {
            let mailbox = address(&addr)?;
            if !matches!(recovery.as_str(), "none" | "code" | "escrow") {
                bail!("unknown recovery {recovery:?}: use none, code or escrow");
            }
            let t = target(&store, true)?;
            t.check_domain(&mailbox)?;
            let (st, config) = match t {
                Target::Running { socket, .. } => {
                    if org_key.is_some() || signet_out.is_some() {
                        bail!(
                            "dimed is running: it signs the user signet with its own org key \
                             (leave out --org-key), and --signet-out needs it stopped"
                        );
                    }
                    let pw = password.read_new(&strength, &[&addr])?;
                    let req = serde_json::json!({
                        "op": "user_add",
                        "address": mailbox.to_string(),
                        "password": pw.as_str(),
                        "recovery": recovery,
                        "quota_mib": quota_mib,
                    });
                    let r = admin_request(&socket, &req);
                    let r = r?;
                    print_created(out, &mailbox, r.recovery_code.as_deref(), &recovery)?;
                    return Ok(());
                }
                Target::Store { store, config } => (store, config),
            };
            let org = org_keys_of(org_key.as_deref(), config.as_ref(), &passphrase)?;
            let recovery_kind = match recovery.as_str() {
                "code" => Recovery::Code,
                "escrow" => match org.encryption_secret() {
                    EncryptionSecret::X25519(x) => Recovery::Escrow(p.key_agreement.public_key(x)),
                    EncryptionSecret::Secp256k1(_) => {
                        bail!("the org key has no x25519 key for escrow")
                    }
                },
                _ => Recovery::None,
            };
            let pw = password.read_new(&strength, &[&addr])?;
            let created = st
                .create_account(
                    &mut OsRng,
                    &org,
                    &NewAccount {
                        address: &mailbox,
                        password: pw.as_bytes(),
                        recovery: recovery_kind,
                        quota_bytes: quota_mib.saturating_mul(1024 * 1024),
                    },
                    now(),
                )
                .context("cannot create the account")?;
            if let Some(path) = signet_out {
                write_new(&path, created.signet.to_armor().as_bytes(), false)?;
            }
            let code = created.recovery_code.as_ref().map(|c| c.expose());
            print_created(out, &mailbox, code, &recovery)?;
        }
        UserStoreCommand::List { store, json } => {
            let t = target(&store, false)?;
            let accounts = list_accounts(&t)?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&accounts)?)?;
                return Ok(());
            }
            for a in &accounts {
                let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
                writeln!(
                    out,
                    "{}  generation {}  recovery {}  {} messages  {:.1} of {:.0} MiB",
                    a.address.as_deref().unwrap_or("(damaged record)"),
                    a.generation,
                    a.recovery,
                    a.messages,
                    mib(a.used_bytes),
                    mib(a.quota_bytes)
                )?;
            }
            writeln!(out, "{} accounts", accounts.len())?;
        }
        UserStoreCommand::Passwd { store, password, new_password, strength, address: addr } => {
            let mailbox = address(&addr)?;
            let t = target(&store, false)?;
            t.check_domain(&mailbox)?;
            match t {
                Target::Running { socket, .. } => {
                    let old = password.read()?;
                    let new = new_password.read(&strength, &[&addr])?;
                    let req = serde_json::json!({
                        "op": "user_passwd",
                        "address": mailbox.to_string(),
                        "password": old.as_str(),
                        "new_password": new.as_str(),
                    });
                    admin_request(&socket, &req)?;
                }
                Target::Store { store: st, .. } => {
                    let old = password.read()?;
                    let mut s =
                        st.login(&mailbox, old.as_bytes(), now()).context("cannot log in")?;
                    let new = new_password.read(&strength, &[&addr])?;
                    st.change_password(&mut OsRng, &mut s, new.as_bytes(), now())?;
                }
            }
            writeln!(out, "password changed for {mailbox}")?;
        }
        UserStoreCommand::Recover {
            store,
            new_password,
            strength,
            address: addr,
            code_file,
            org_key,
            passphrase,
        } => {
            let mailbox = address(&addr)?;
            let t = target(&store, false)?;
            t.check_domain(&mailbox)?;
            let (st, _) = t.stopped("recover")?;
            let new = new_password.read(&strength, &[&addr])?;
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
            let t = target(&store, false)?;
            t.check_domain(&mailbox)?;
            match t {
                Target::Running { socket, .. } => {
                    let req = serde_json::json!({
                        "op": "user_delete",
                        "address": mailbox.to_string(),
                    });
                    admin_request(&socket, &req)?;
                }
                Target::Store { store: st, .. } => st.delete_account(&mailbox)?,
            }
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
            let t = target(&store, false)?;
            t.check_domain(&mailbox)?;
            let (st, config) = t.stopped("rotate")?;
            let org = if resume_rewrap {
                None
            } else {
                Some(org_keys_of(org_key.as_deref(), config.as_ref(), &passphrase)?)
            };
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
            let (st, _) = target(&store, false)?.stopped("export")?;
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
            strength,
            file,
            archive_password_file,
            domain,
            org_key,
            address: new_address,
            passphrase,
        } => {
            let new_address = new_address.as_deref().map(address).transpose()?;
            let (st, config) = target(&store, true)?.stopped("import")?;
            let domain = match (&domain, &config) {
                (Some(d), _) => dime_core::Domain::parse(d)
                    .with_context(|| format!("{d:?} is not a domain name"))?,
                (None, Some(c)) => c.domain.clone(),
                (None, None) => bail!("give --domain"),
            };
            if let Some(c) = config.as_ref().filter(|c| c.domain != domain) {
                bail!("--domain {domain} is not this server's domain {}", c.domain);
            }
            let org = org_keys_of(org_key.as_deref(), config.as_ref(), &passphrase)?;
            let archive =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
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
            let new = new_password.read(&strength, &[&here.to_string()])?;
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
            let (st, _) = target(&store, false)?.stopped("purge")?;
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
