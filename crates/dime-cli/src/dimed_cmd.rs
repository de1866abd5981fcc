//! `dimed`: the server (`spec/dimed.md`). `dimed init` creates a domain, `dimed serve` runs
//! it from its `dimed.toml`, `dimed quickstart` does both on loopback with one user,
//! `dimed queue` lists the running server's outbound queue through its operator's socket, and
//! `dimed compact` compacts the store of a stopped server.

use anyhow::Context;
use clap::{Parser, Subcommand};
use dime_core::crypto::default_provider;
use dime_core::{Domain, Mailbox, Secret};
use dime_server::config::Config;
use dime_server::setup::{NewDomain, create_domain, files, read_org_keys};
use dime_store::{Accounts, NewAccount, Recovery, Store};
use rand_core::{OsRng, RngCore};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

/// dimed: the dime mail server: DMTP over QUIC and TLS, IMAP for mail clients, the
/// zero-access store.
#[derive(Debug, Parser)]
#[command(name = "dimed", version)]
struct Dimed {
    /// Log level: error, warn, info, debug, trace or off (default: `DIMED_LOG`, else info).
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Log format on standard error: text, or json (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: DimedCommand,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (`message` and the
    /// event's fields).
    Json,
}

#[derive(Debug, Subcommand)]
enum DimedCommand {
    /// Create a domain: org keys and signet, TLS key and certificate, pepper, the `_dx`
    /// record to publish, and `dimed.toml`, under DIR.
    Init {
        /// The directory to create (`dimed.toml`, `data/`, `config/`).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The mail domain.
        #[arg(long)]
        domain: String,
        /// The delivery host name (default: `mx.` + the domain).
        #[arg(long)]
        host: Option<String>,
        /// Where DMTP listens (QUIC and TLS).
        #[arg(long, default_value = "127.0.0.1:2626")]
        listen: SocketAddr,
        /// The port to publish in the record (default: the listen port).
        #[arg(long)]
        published_port: Option<u16>,
        /// Where DMAP (IMAP) listens on implicit TLS, for mail clients (none by default).
        #[arg(long)]
        imaps: Option<SocketAddr>,
        /// Where DMAP (IMAP) listens with STARTTLS (needs --imaps).
        #[arg(long, requires = "imaps")]
        imap: Option<SocketAddr>,
    },
    /// Run the server of a `dimed.toml`.
    /// Write dimed's man pages (`DIR/man/`) and shell completions for bash, zsh and fish
    /// (`DIR/completions/`).
    Docs(crate::cli::DocsArgs),
    Serve {
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Start an empty store when `data_dir` does not exist (else that is an error).
        #[arg(long)]
        create: bool,
        /// The org key's passphrase, from this file's first line, for a domain whose
        /// `org.pass` was removed (e.g. a systemd credential); without it and without
        /// `org.pass`, dimed asks on its terminal.
        #[arg(long, value_name = "FILE")]
        org_passphrase_file: Option<PathBuf>,
    },
    /// Create a local domain with one user (unless DIR has one), then serve it on loopback.
    Quickstart {
        /// The directory for the domain (created).
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// The domain.
        #[arg(long, default_value = "example.test")]
        domain: String,
        /// The user to create (local part).
        #[arg(long, default_value = "alice")]
        user: String,
        /// Where DMTP listens [default: 127.0.0.1:2626; on a rerun, the domain's dimed.toml].
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Where DMAP (IMAP) listens on implicit TLS, for mail clients [default:
        /// 127.0.0.1:9930; on a rerun, the domain's dimed.toml].
        #[arg(long)]
        imaps: Option<SocketAddr>,
        /// Where DMAP (IMAP) listens with STARTTLS [default: 127.0.0.1:1430; on a rerun, the
        /// domain's dimed.toml].
        #[arg(long)]
        imap: Option<SocketAddr>,
        /// Create the domain and user, print how to use them, and exit without serving.
        #[arg(long)]
        no_serve: bool,
    },
    /// List the outbound queue of the running server of a `dimed.toml` (its operator's
    /// socket): each entry's state, attempts, due time, destination domain and last reason.
    ///
    /// With an action, acts on it (`spec/dimed.md` §5): an entry under way is refused until
    /// its attempt ends.
    Queue {
        /// The configuration file.
        #[arg(long, value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        /// Print JSON (one array of every entry).
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<QueueAction>,
    },
    /// Make the running dimed of a `dimed.toml` re-read its certificate and key (a renewed
    /// certificate), through its operator's socket; SIGHUP does the same. Connections open
    /// keep the certificate they began with.
    Reload {
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Compact the store of a `dimed.toml` while dimed is stopped: the store's database and
    /// the key vault are rewritten with their live records only, and the delivery log is
    /// zeroed, so no file keeps an octet of purged or deleted mail (`spec/storage.md` §12).
    /// A running dimed does it itself every `[store] compact_interval_secs`.
    Compact {
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Check the domain of a `dimed.toml` (`spec/dimed.md` §7): the published `_dx` record
    /// against the org key and the certificate, DNSSEC, the delivery hosts over QUIC and TLS,
    /// the certificate's expiry, the store and free disk; one line per check (ok, warn, fail,
    /// skip) with what to do; a non-zero exit status when a check fails.
    Doctor {
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Print JSON (one array of {check, status, detail}).
        #[arg(long)]
        json: bool,
    },
}

/// What `dimed queue` does to the queue.
#[derive(Debug, Subcommand)]
enum QueueAction {
    /// Make every waiting entry (not held, not under way) due now.
    Flush,
    /// Try entry ID now (a held one too).
    Retry {
        /// The queue id (`dimed queue` lists them).
        id: u64,
    },
    /// Hold entry ID: it is not tried until released.
    Hold {
        /// The queue id.
        id: u64,
    },
    /// Release held entry ID: due at its scheduled attempt (now when that is past).
    Release {
        /// The queue id.
        id: u64,
    },
    /// Delete entry ID: its author gets a bounce ("deleted by the operator") unless --silent;
    /// its status reads bounced or failed.
    Delete {
        /// The queue id.
        id: u64,
        /// No bounce: the status alone says it failed.
        #[arg(long)]
        silent: bool,
    },
}

/// Runs `dimed` with the process's arguments.
pub fn dimed_main() -> ExitCode {
    let cli = match crate::start::<Dimed>("dimed") {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(e) = init_logging(cli.log_level.as_deref(), cli.log_format) {
        let _ = writeln!(std::io::stderr(), "error: {e:#}");
        return ExitCode::FAILURE;
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to standard error at `level` (else `DIMED_LOG`, else info), as `format` says
/// (`spec/dimed.md` §2).
///
/// # Errors
/// An unknown level, naming the levels.
fn init_logging(level: Option<&str>, format: LogFormat) -> anyhow::Result<()> {
    use tracing_subscriber::filter::LevelFilter;
    let given = match level {
        Some(l) => Some(l.to_owned()),
        None => std::env::var("DIMED_LOG").ok().filter(|l| !l.is_empty()),
    };
    let level = match given {
        None => LevelFilter::INFO,
        Some(l) => l.parse::<LevelFilter>().map_err(|_| {
            anyhow::anyhow!(
                "unknown log level {l:?} (give one of error, warn, info, debug, trace, off)"
            )
        })?,
    };
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false);
    let registry = tracing_subscriber::registry().with(log_filter(level));
    let _ = match format {
        LogFormat::Text => registry.with(layer).try_init(),
        LogFormat::Json => registry.with(layer.json()).try_init(),
    };
    Ok(())
}

/// The libraries whose debug events are dumps (hickory's whole DNS messages over many lines,
/// QUIC and TLS packet traces): shown at `info` and above unless the level is `trace`.
const NOISY_DEPENDENCIES: &[&str] =
    &["hickory_proto", "hickory_resolver", "quinn", "quinn_proto", "quinn_udp", "rustls"];

/// dimed's events at `level`; the [`NOISY_DEPENDENCIES`] at `info` at most, unless `level` is
/// `trace` (`spec/dimed.md` §2).
fn log_filter(
    level: tracing_subscriber::filter::LevelFilter,
) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    let dependencies =
        if level == LevelFilter::TRACE { level } else { level.min(LevelFilter::INFO) };
    NOISY_DEPENDENCIES
        .iter()
        .fold(Targets::new().with_default(level), |t, d| t.with_target(*d, dependencies))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("tokio runtime")
}

fn run(cli: Dimed) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        DimedCommand::Init { dir, domain, host, listen, published_port, imaps, imap } => {
            let imap = imaps.map(|t| (t, imap.unwrap_or(SocketAddr::new(t.ip(), 143))));
            let created = init(&dir, &domain, host.as_deref(), listen, published_port, imap)?;
            print_created(&mut out, &created, &dir)?;
            print_next_steps(&mut out, &created, &domain, &dir, listen)?;
            Ok(())
        }
        DimedCommand::Docs(a) => {
            crate::write_docs(<Dimed as clap::CommandFactory>::command(), "dimed", &a.out, &mut out)
        }
        DimedCommand::Serve { config, create, org_passphrase_file } => {
            serve(&config, create, org_passphrase_file.as_deref(), &Listen::default())
        }
        DimedCommand::Quickstart { data_dir, domain, user, listen, imaps, imap, no_serve } => {
            let config = data_dir.join("dimed.toml");
            let rerun = config.exists();
            let given = Listen { dmtp: listen, imaps, imap };
            if rerun {
                writeln!(out, "using the existing domain in {}", data_dir.display())?;
            } else {
                let listen = listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 2626)));
                let imaps = imaps.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9930)));
                let imap = imap.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 1430)));
                // Nothing is created when dimed could not serve it.
                if !no_serve {
                    can_bind(listen, imaps, imap)?;
                }
                let created = init(&data_dir, &domain, None, listen, None, Some((imaps, imap)))?;
                print_created(&mut out, &created, &data_dir)?;
                let address = format!("{user}@{domain}");
                let password = add_user(&config, &address)?;
                print_quickstart(&mut out, &created, &data_dir, &address, &password, imaps, imap)?;
            }
            out.flush()?;
            drop(out);
            if no_serve { Ok(()) } else { serve(&config, false, None, &given) }
        }
        DimedCommand::Queue { config, json, action } => {
            let Some(config) = config else { anyhow::bail!("give --config FILE (dimed.toml)") };
            match action {
                None => queue(&config, json, &mut out),
                Some(a) => queue_action(&config, a, &mut out),
            }
        }
        DimedCommand::Compact { config } => compact(&config, &mut out),
        DimedCommand::Reload { config } => {
            let r = admin_request(&config, &serde_json::json!({"op": "reload"}))?;
            writeln!(out, "{}", r.reloaded.unwrap_or_else(|| "reloaded".into()))?;
            Ok(())
        }
        DimedCommand::Doctor { config, json } => {
            crate::doctor::dimed_doctor(&config, json, &mut out)
        }
    }
}

/// `dimed compact`: opens the store of `config` (refused while dimed runs: the store is
/// opened exclusively) and compacts it.
fn compact(config: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let c = Config::load(config)?;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let db = c.data_dir.join("store.redb");
    let before = size(&db);
    let store = open_store(&c)?;
    if !store.compact(dime_server::now()).context("cannot compact the store")? {
        anyhow::bail!("the store was not compacted: its backend does not compact");
    }
    drop(store);
    writeln!(out, "compacted {}: {before} -> {} octets", db.display(), size(&db))?;
    Ok(())
}

/// Opens the store of `config` (dimed must not be running: the store is opened exclusively).
fn open_store(c: &Config) -> anyhow::Result<Store> {
    crate::store_cmd::open_configured(c).context("is dimed running? (it holds the store open)")
}

/// `dimed queue`: every entry, a page at a time, from the operator's socket; each page is
/// printed as it comes (a queue of any length takes one page of memory).
/// One request on the operator's socket of the running dimed of `config`.
fn admin_request(
    config: &Path,
    req: &serde_json::Value,
) -> anyhow::Result<dime_server::admin::AdminResponse> {
    crate::store_cmd::admin_request(&Config::load(config)?.admin_socket(), req)
}

/// `dimed queue flush|retry|hold|release|delete`.
fn queue_action(config: &Path, action: QueueAction, out: &mut dyn Write) -> anyhow::Result<()> {
    use serde_json::json;
    match action {
        QueueAction::Flush => {
            let r = admin_request(config, &json!({"op": "queue_flush"}))?;
            writeln!(out, "{} entries due now", r.count.unwrap_or(0))?;
        }
        QueueAction::Retry { id } => {
            admin_request(config, &json!({"op": "queue_retry", "id": id}))?;
            writeln!(out, "entry {id} due now")?;
        }
        QueueAction::Hold { id } => {
            admin_request(config, &json!({"op": "queue_hold", "id": id}))?;
            writeln!(out, "entry {id} held")?;
        }
        QueueAction::Release { id } => {
            admin_request(config, &json!({"op": "queue_release", "id": id}))?;
            writeln!(out, "entry {id} released")?;
        }
        QueueAction::Delete { id, silent } => {
            let r =
                admin_request(config, &json!({"op": "queue_delete", "id": id, "silent": silent}))?;
            if r.bounced == Some(true) {
                writeln!(out, "entry {id} deleted; its author got a bounce")?;
            } else {
                writeln!(out, "entry {id} deleted; its status reads failed (no bounce)")?;
            }
        }
    }
    Ok(())
}

fn queue(config: &Path, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    use dime_server::admin::MAX_LISTED;
    // The configuration read once, not for each page.
    let socket = Config::load(config)?.admin_socket();
    let (mut after, mut listed) = (0, 0_u64);
    if json {
        write!(out, "[")?;
    }
    loop {
        let req = serde_json::json!({"op": "queue", "after": after, "max": MAX_LISTED});
        let r = crate::store_cmd::admin_request(&socket, &req)?;
        let page = r.entries.unwrap_or_default();
        for e in &page {
            if json {
                let comma = if listed == 0 { "" } else { "," };
                write!(out, "{comma}{}", serde_json::to_string(e)?)?;
            } else {
                let date = |t: u64| dime_server::rfc5322_date(dime_store::Timestamp(t));
                let (state, destination, reason) = match &e.status {
                    Some(s) => (s.state.as_str(), s.destination.as_str(), s.reason.as_deref()),
                    None => ("unknown", "?", None),
                };
                // What the entry is doing now: held, under way, or waiting for its attempt.
                let (state, when) = if e.held {
                    ("held", "until released".to_owned())
                } else if e.in_flight {
                    ("in flight", format!("attempt under way, lease ends {}", date(e.due)))
                } else {
                    (state, format!("due {}", date(e.due)))
                };
                write!(
                    out,
                    "{:>8}  {state:<9} {:>3} attempts  {when}  {destination}",
                    e.queue_id, e.attempts
                )?;
                match reason {
                    Some(r) => writeln!(out, "  ({r})")?,
                    None => writeln!(out)?,
                }
            }
            listed += 1;
        }
        match page.last() {
            Some(e) if page.len() == MAX_LISTED => after = e.queue_id,
            _ => break,
        }
    }
    if json {
        writeln!(out, "]")?;
    } else if listed == 0 {
        writeln!(out, "the queue is empty")?;
    } else {
        writeln!(out, "{listed} entries")?;
    }
    Ok(())
}

fn init(
    dir: &Path,
    domain: &str,
    host: Option<&str>,
    listen: SocketAddr,
    published_port: Option<u16>,
    imap: Option<(SocketAddr, SocketAddr)>,
) -> anyhow::Result<dime_server::setup::CreatedDomain> {
    let domain = Domain::parse(domain).with_context(|| format!("{domain:?} is not a domain"))?;
    let host = match host {
        Some(h) => Domain::parse(h).with_context(|| format!("{h:?} is not a host name"))?,
        None => Domain::parse(&format!("mx.{}", domain.as_str()))
            .context("mx.<domain> is not a host name")?,
    };
    let new = NewDomain {
        domain,
        host,
        listen,
        published_port: published_port.unwrap_or(listen.port()),
        dir: dir.to_owned(),
        imap,
    };
    Ok(create_domain(default_provider(), &mut OsRng, &new)?)
}

fn print_created(
    out: &mut dyn Write,
    created: &dime_server::setup::CreatedDomain,
    dir: &Path,
) -> anyhow::Result<()> {
    writeln!(out, "created {}", created.config_file.display())?;
    writeln!(
        out,
        "publish this DNS record (DNSSEC-signed zone), also in {}:",
        dir.join("config").join(files::RECORD_ZONE).display()
    )?;
    let zone = std::fs::read_to_string(dir.join("config").join(files::RECORD_ZONE))?;
    write!(out, "{zone}")?;
    Ok(())
}

/// What an operator does after `dimed init` (`spec/dimed.md` §3): publish the record and the
/// delivery host's address, point the resolver at a private root if there is one, add users,
/// start.
fn print_next_steps(
    out: &mut dyn Write,
    created: &dime_server::setup::CreatedDomain,
    domain: &str,
    dir: &Path,
    listen: SocketAddr,
) -> anyhow::Result<()> {
    let config = dir.join("dimed.toml");
    let (kind, address) = match listen.ip() {
        ip if ip.is_unspecified() => {
            (if ip.is_ipv4() { "A" } else { "AAAA" }, "<this machine's public address>".into())
        }
        std::net::IpAddr::V4(ip) => ("A", ip.to_string()),
        std::net::IpAddr::V6(ip) => ("AAAA", ip.to_string()),
    };
    let loopback = if listen.ip().is_loopback() {
        " (a loopback address: only this machine reaches it)"
    } else {
        ""
    };
    writeln!(out, "\nnext steps:")?;
    writeln!(out, "  1. publish the _dx.{domain} record above, in a zone signed with DNSSEC")?;
    writeln!(out, "  2. publish the address of the delivery host{loopback}:")?;
    writeln!(out, "       {}. IN {kind} {address}", created.host)?;
    writeln!(
        out,
        "  3. with a private DNS root (a test network), set dns.servers = [\"IP:PORT\"] and \
         dns.trust_anchor = \"FILE\" in {}",
        config.display()
    )?;
    writeln!(
        out,
        "  4. add users, dimed stopped or running (it asks for each one's password twice): \
         dime user add --config {} --address USER@{domain}",
        config.display()
    )?;
    writeln!(out, "  5. start it: dimed serve --config {}", config.display())?;
    Ok(())
}

/// Creates `address` in the store of `config` (dimed must not be running: the store is
/// opened exclusively); returns the generated password.
fn add_user(config: &Path, address: &str) -> anyhow::Result<Secret<String>> {
    let p = default_provider();
    let c = Config::load(config)?;
    let address =
        Mailbox::parse(address).with_context(|| format!("{address:?} is not an address"))?;
    let keys = read_org_keys(p, &c, None).map_err(anyhow::Error::msg)?;
    let store = open_store(&c)?;
    let password = match std::env::var("DIME_USER_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            let mut b = [0u8; 12];
            OsRng.fill_bytes(&mut b);
            hex::encode(b)
        }
    };
    store.create_account(
        &mut OsRng,
        &keys,
        &NewAccount {
            address: &address,
            password: password.as_bytes(),
            recovery: Recovery::None,
            quota_bytes: 1 << 30,
        },
        dime_server::now(),
    )?;
    Ok(Secret::new(password))
}

/// The org key's passphrase when `org.pass` is gone (`spec/dimed.md` §3): from `file`, else
/// asked on the terminal; `None` while `org.pass` exists.
fn org_passphrase(c: &Config, file: Option<&Path>) -> anyhow::Result<Option<Zeroizing<String>>> {
    if let Some(f) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?,
        );
        return Ok(Some(Zeroizing::new(text.lines().next().unwrap_or("").to_owned())));
    }
    let pass = c.secret_path(files::ORG_PASSPHRASE);
    // With org.pass, or without an org key (the start names what is missing), nothing to ask.
    if pass.exists() || !c.secret_path(files::ORG_KEY).exists() {
        return Ok(None);
    }
    let asked = rpassword::prompt_password("org key passphrase: ").map_err(|_| {
        anyhow::anyhow!(
            "{} is absent: give the org key's passphrase with --org-passphrase-file, or start \
             dimed on a terminal to type it",
            pass.display()
        )
    })?;
    Ok(Some(Zeroizing::new(asked)))
}

/// Listening addresses given on the command line, over those of `dimed.toml`.
#[derive(Debug, Default)]
struct Listen {
    dmtp: Option<SocketAddr>,
    imaps: Option<SocketAddr>,
    imap: Option<SocketAddr>,
}

/// Binds (and releases) each address dimed will serve, so that quickstart creates nothing
/// that cannot be served.
fn can_bind(dmtp: SocketAddr, imaps: SocketAddr, imap: SocketAddr) -> anyhow::Result<()> {
    let taken = |what: &str, flag: &str, a: SocketAddr, e: std::io::Error| {
        anyhow::anyhow!("cannot listen for {what} on {a} ({e}): choose another with {flag} ADDR")
    };
    std::net::UdpSocket::bind(dmtp).map_err(|e| taken("DMTP over QUIC", "--listen", dmtp, e))?;
    std::net::TcpListener::bind(dmtp).map_err(|e| taken("DMTP over TLS", "--listen", dmtp, e))?;
    std::net::TcpListener::bind(imaps).map_err(|e| taken("IMAP over TLS", "--imaps", imaps, e))?;
    std::net::TcpListener::bind(imap).map_err(|e| taken("IMAP", "--imap", imap, e))?;
    Ok(())
}

/// The `dime` command as the operator can type it: `cargo run` when dimed itself was started
/// by cargo, else the `dime` beside this dimed, else `dime` from the PATH.
fn dime_command() -> String {
    if std::env::var_os("CARGO").is_some() {
        return "cargo run -q -p dime-cli --bin dime --".into();
    }
    match std::env::current_exe().map(|e| e.with_file_name("dime")) {
        Ok(d) if d.exists() => shell_quote(&d.display().to_string()),
        _ => "dime".into(),
    }
}

/// `s` as one shell word.
fn shell_quote(s: &str) -> String {
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-@:=+,".contains(&b)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// What quickstart prints once it created the domain: the user, commands that work as printed
/// (`spec/dimed.md` §3), and a mail client's settings.
fn print_quickstart(
    out: &mut dyn Write,
    created: &dime_server::setup::CreatedDomain,
    dir: &Path,
    address: &str,
    password: &Secret<String>,
    imaps: SocketAddr,
    imap: SocketAddr,
) -> anyhow::Result<()> {
    let dime = dime_command();
    let sock = shell_quote(&dir.join("data").join("dimed.sock").display().to_string());
    let cert = shell_quote(&dir.join("config").join(files::TLS_CERT).display().to_string());
    writeln!(out, "\nuser {address} created; password (shown once): {}", password.expose())?;
    writeln!(out, "try, in another terminal while dimed runs:")?;
    writeln!(out, "  export DIME_USER_PASSWORD={}", shell_quote(password.expose()))?;
    writeln!(
        out,
        "  {dime} send --socket {sock} --user {address} --to {address} --subject hello --body \
         'first dime mail'"
    )?;
    writeln!(out, "  {dime} inbox --socket {sock} --user {address}")?;
    writeln!(out, "  {dime} read 1 --socket {sock} --user {address}")?;
    writeln!(
        out,
        "mail clients (IMAP), while dimed runs:\n  server {host}, user {address}, the password \
         above\n  IMAP over TLS: {ip} port {tls_port}; or STARTTLS: port {starttls_port}\n  the \
         server's certificate (self-signed, for {host}; trust this file in the client): \
         {cert}\n  e.g. curl --cacert {cert} --resolve {host}:{tls_port}:{ip} -u {address} \
         'imaps://{host}:{tls_port}/INBOX;UID=1'",
        host = created.host,
        ip = imaps.ip(),
        tls_port = imaps.port(),
        starttls_port = imap.port(),
    )?;
    Ok(())
}

fn serve(
    config: &Path,
    create: bool,
    passphrase_file: Option<&Path>,
    given: &Listen,
) -> anyhow::Result<()> {
    let mut c = Config::load(config)?;
    if let Some(a) = given.dmtp {
        (c.listen.quic, c.listen.tls) = (Some(a), Some(a));
    }
    if given.imaps.is_some() {
        c.listen.imaps = given.imaps;
    }
    if given.imap.is_some() {
        c.listen.imap = given.imap;
    }
    let passphrase = org_passphrase(&c, passphrase_file)?;
    // A typo in `data_dir` must not start an empty store (spec/dimed.md §2).
    if !create && !c.data_dir.exists() {
        anyhow::bail!(
            "data_dir {} does not exist: check `data_dir` in {}, or give --create to start an \
             empty store there",
            c.data_dir.display(),
            config.display()
        );
    }
    let rt = runtime()?;
    rt.block_on(async {
        let pass = passphrase.as_ref().map(|p| p.as_bytes());
        let running =
            dime_server::daemon::start_with(&c, default_provider(), crate::tls_provider(), pass)
                .await
                .with_context(|| format!("cannot start dimed from {}", config.display()))?;
        // The handlers first: a signal sent once "dimed serving" is out stops dimed cleanly.
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("signal handler")?;
        let mut int = signal(SignalKind::interrupt()).context("signal handler")?;
        let mut hup = signal(SignalKind::hangup()).context("signal handler")?;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "dimed serving {} (quic {}, tls {}, imaps {}, imap {}, submission {})",
            running.local.domain,
            running.quic_addr.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
            running.tls_addr.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
            running.imaps_addr.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
            running.imap_addr.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
            running.submission.display()
        )?;
        out.flush()?;
        drop(out);
        loop {
            tokio::select! {
                _ = int.recv() => break,
                _ = term.recv() => break,
                _ = hup.recv() => match running.reload() {
                    Ok(what) => tracing::info!("SIGHUP: {what}"),
                    Err(e) => tracing::error!("SIGHUP: reload refused: {e}"),
                },
            }
        }
        tracing::info!("dimed stopping");
        running.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::filter::LevelFilter;

    #[test]
    fn debug_leaves_out_the_dependencies_dumps_and_trace_keeps_them() {
        use tracing::Level;
        let debug = log_filter(LevelFilter::DEBUG);
        assert!(debug.would_enable("dime_server::outbound", &Level::DEBUG));
        assert!(!debug.would_enable("hickory_proto::udp::udp_client_stream", &Level::DEBUG));
        assert!(!debug.would_enable("quinn_proto::connection", &Level::DEBUG));
        assert!(debug.would_enable("hickory_proto::xfer", &Level::WARN));
        let trace = log_filter(LevelFilter::TRACE);
        assert!(trace.would_enable("hickory_proto::udp", &Level::TRACE));
        let warn = log_filter(LevelFilter::WARN);
        assert!(!warn.would_enable("hickory_proto::udp", &Level::INFO), "never above the level");
        assert!(!warn.would_enable("dime_server", &Level::INFO));
    }
}
