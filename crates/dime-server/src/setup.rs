//! Creating a domain for `dimed` (`spec/dimed.md` §3): org keys and signet, a TLS key and
//! self-signed certificate for the delivery host, the pepper, the `_dx` record to publish
//! (its `tls=` pin signed by the POK), and `dimed.toml`.

use crate::config::Config;
use dime_core::crypto::{Argon2Params, CryptoProvider};
use dime_core::{CryptoRngCore, Domain};
use dime_signet::record::{Host, Record, tls_value};
use dime_signet::{OrgKeys, Profile, Signet, create_org_signet, keyfile};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The files of a domain under its configuration directory.
pub mod files {
    /// The org key file, encrypted under the passphrase in [`ORG_PASSPHRASE`].
    pub const ORG_KEY: &str = "org.key";
    /// The org key file's passphrase (mode 0600).
    pub const ORG_PASSPHRASE: &str = "org.pass";
    /// The org signet (armored).
    pub const ORG_SIGNET: &str = "org.signet";
    /// The server pepper (mode 0600).
    pub const PEPPER: &str = "pepper";
    /// The key vault of the store.
    pub const VAULT: &str = "vault.redb";
    /// The TLS certificate (PEM).
    pub const TLS_CERT: &str = "tls.crt";
    /// The TLS private key (PEM, mode 0600).
    pub const TLS_KEY: &str = "tls.key";
    /// The `_dx` record's text (one line, `Record::format`).
    pub const RECORD: &str = "dx-record.txt";
    /// The `_dx` record as a zone-file line.
    pub const RECORD_ZONE: &str = "dx-record.zone";
}

/// Why a domain could not be created.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A file or directory could not be written.
    #[error("cannot write {path}: {error}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why: in the message, not also a source (a chain would say it twice).
        error: std::io::Error,
    },
    /// Something already exists where a new file would be written.
    #[error("{0} exists already: refusing to overwrite it")]
    Exists(PathBuf),
    /// Key, signet, certificate or record creation failed.
    #[error("{0}")]
    Create(String),
}

/// What to create.
#[derive(Debug, Clone)]
pub struct NewDomain {
    /// The domain.
    pub domain: Domain,
    /// The delivery host name (certificate name, `dx=` host).
    pub host: Domain,
    /// Where DMTP listens (QUIC and TLS share the address).
    pub listen: SocketAddr,
    /// The port published in `dx=` (the listen port unless a proxy maps it).
    pub published_port: u16,
    /// The directory to create; `dimed.toml` goes in it, with `data/` and `config/`.
    pub dir: PathBuf,
    /// Where DMAP listens on implicit TLS and with STARTTLS (`spec/dmap.md` §2), if at all.
    pub imap: Option<(SocketAddr, SocketAddr)>,
}

/// What was created.
#[derive(Debug, Clone)]
pub struct CreatedDomain {
    /// `dimed.toml`.
    pub config_file: PathBuf,
    /// The org signet.
    pub org_signet: Signet,
    /// The record to publish.
    pub record: Record,
    /// The delivery host name (the certificate's name).
    pub host: Domain,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SetupError + '_ {
    move |source| SetupError::Io { path: path.to_owned(), error: source }
}

/// Writes a new file (never replacing one); `secret` files get mode 0600.
pub fn write_new(path: &Path, data: &[u8], secret: bool) -> Result<(), SetupError> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = o.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            SetupError::Exists(path.to_owned())
        } else {
            SetupError::Io { path: path.to_owned(), error: e }
        }
    })?;
    f.write_all(data).and_then(|()| f.sync_all()).map_err(io(path))
}

/// Creates the domain's keys, certificate, record and configuration under `new.dir`.
///
/// # Errors
/// [`SetupError`]; nothing is overwritten.
pub fn create_domain(
    p: &CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    new: &NewDomain,
) -> Result<CreatedDomain, SetupError> {
    let config_file = new.dir.join("dimed.toml");
    if config_file.exists() {
        return Err(SetupError::Exists(config_file));
    }
    let (data, conf) = (new.dir.join("data"), new.dir.join("config"));
    for d in [&new.dir, &data, &conf] {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    // The store's and the secrets' directories are their owner's only (`spec/dimed.md` §3),
    // set whatever the umask.
    #[cfg(unix)]
    for d in [&data, &conf] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(dime_store::OsFs::DIR_MODE))
            .map_err(io(d))?;
    }
    let keys = OrgKeys::generate(rng);
    let signet = create_org_signet(p, &keys, &new.domain, &Profile::new())
        .map_err(|e| SetupError::Create(format!("org signet: {e}")))?;
    let mut raw = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(raw.as_mut_slice());
    let pass = zeroize::Zeroizing::new(hex::encode(raw.as_slice()));
    let key_file = keys
        .to_encrypted_bytes(p, rng, pass.as_bytes(), &Argon2Params::DEFAULT)
        .map_err(|e| SetupError::Create(format!("org key file: {e}")))?;
    let mut pepper = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(&mut pepper[..]);

    let cert = rcgen::generate_simple_self_signed(vec![new.host.as_str().to_owned()])
        .map_err(|e| SetupError::Create(format!("certificate: {e}")))?;
    let cert_der = cert.cert.der().to_vec();
    let mut record = Record::new(vec![keys.pok(p)]);
    let mut host = Host::new(new.host.clone());
    if new.published_port != crate::outbound::dmtp::DMTP_PORT {
        host.port = Some(new.published_port);
    }
    record.delivery_hosts.push(host);
    record.tls.push(tls_value(p, keys.pok_seed(), &cert_der));
    record.validate().map_err(|e| SetupError::Create(format!("record: {e}")))?;

    let f = |n: &str| conf.join(n);
    write_new(&f(files::ORG_KEY), &key_file, true)?;
    write_new(&f(files::ORG_PASSPHRASE), pass.as_bytes(), true)?;
    write_new(&f(files::ORG_SIGNET), signet.to_armor().as_bytes(), false)?;
    write_new(&f(files::PEPPER), &pepper[..], true)?;
    write_new(&f(files::TLS_CERT), cert.cert.pem().as_bytes(), false)?;
    write_new(&f(files::TLS_KEY), cert.signing_key.serialize_pem().as_bytes(), true)?;
    write_new(&f(files::RECORD), format!("{}\n", record.format()).as_bytes(), false)?;
    let zone = format!("{}. IN TXT {}\n", new.domain.dx_record_name(), record.to_zone_text());
    write_new(&f(files::RECORD_ZONE), zone.as_bytes(), false)?;

    let toml = format!(
        "# dimed configuration (spec/dimed.md). Relative paths are relative to this file.\n\
         domain = \"{domain}\"\n\
         host = \"{host}\"\n\
         data_dir = \"data\"\n\
         config_dir = \"config\"\n\
         \n\
         [listen]\n\
         quic = \"{listen}\"\n\
         tls = \"{listen}\"\n\
         submission = \"data/dimed.sock\"\n\
         {imap}\
         \n\
         [dns]\n\
         # servers = [\"127.0.0.1:53\"]   # validating resolvers; default: /etc/resolv.conf\n\
         # trust_anchor = \"anchor.dnskey\" # default: the IANA root\n\
         \n\
         [outbound]\n\
         transports = \"quic-then-tls\"\n",
        domain = new.domain.as_str(),
        host = new.host.as_str(),
        listen = new.listen,
        imap = match new.imap {
            Some((tls, starttls)) => format!("imaps = \"{tls}\"\nimap = \"{starttls}\"\n"),
            None => String::new(),
        },
    );
    write_new(&config_file, toml.as_bytes(), false)?;
    Ok(CreatedDomain { config_file, org_signet: signet, record, host: new.host.clone() })
}

/// Reads the org keys of `config` (the key file under its passphrase file, or under
/// `passphrase` when given).
///
/// # Errors
/// A readable message.
pub fn read_org_keys(
    p: &CryptoProvider,
    config: &Config,
    passphrase: Option<&[u8]>,
) -> Result<OrgKeys, String> {
    let key_path = config.secret_path(files::ORG_KEY);
    let bytes =
        std::fs::read(&key_path).map_err(|e| format!("cannot read {}: {e}", key_path.display()))?;
    let stored;
    let pass = match passphrase {
        Some(p) => Some(p),
        None => {
            let pp = config.secret_path(files::ORG_PASSPHRASE);
            match std::fs::read(&pp) {
                Ok(b) => {
                    stored = zeroize::Zeroizing::new(b);
                    Some(&stored[..])
                }
                Err(_) => None,
            }
        }
    };
    keyfile::read_org(p, &bytes, pass)
        .map_err(|e| format!("cannot read the org key {}: {e}", key_path.display()))
}
