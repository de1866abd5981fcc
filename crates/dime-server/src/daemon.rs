//! `dimed` put together (`spec/dimed.md`): the store, the org keys, the key resolver with the
//! DMTP signet source, the DMTP listeners (QUIC and TLS over TCP) with the destination
//! handler, the outbound worker, and the local submission socket.

use crate::config::Config;
use crate::outbound::Outbound;
use crate::outbound::dmtp::{Dmtp, ResolverRoutes, Route, RouteError, Routes, Target};
use crate::pins::StorePins;
use crate::setup::{files, read_org_keys};
use crate::signets::{DmtpSignets, SignetServer};
use crate::{Destination, LocalDomain, OriginKeys, StaticOrigins};
use dime_core::crypto::{CryptoProvider, Ed25519PublicKey};
use dime_core::{Domain, Fingerprint, Secret};
use dime_dmtp::Refusal;
use dime_net::TlsProvider;
use dime_resolver::Dns;
use dime_resolver::tls::{CertPolicy, DimeCertVerifier, WebPki};
use dime_resolver::{DnsConfig, KeyResolver, LocalPolicy, TrustAnchor, UnchainedSignet};
use dime_signet::record::Record;
use dime_signet::{Signet, SignetKind};
use dime_store::{Deliveries, OsFs, Store, StoreConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The resolver `dimed` uses.
pub type Resolver = KeyResolver<DmtpSignets, StorePins>;

/// Longest wait at shutdown for the QUIC listeners' connection closes to be sent: a peer that
/// never hears of the close keeps using a dead connection until its idle timeout.
const QUIC_CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Why `dimed` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A file, key or setting is wrong (the message says which).
    #[error("{0}")]
    Setup(String),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] dime_store::StoreError),
    /// A listener could not be started.
    #[error("listener: {0}")]
    Net(#[from] dime_net::NetError),
    /// A socket could not be bound.
    #[error("cannot bind {what}: {error}")]
    Bind {
        /// Which socket.
        what: String,
        /// Why: in the message, not also a source (a chain would say it twice).
        error: std::io::Error,
    },
}

fn setup<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> StartError + '_ {
    move |e| StartError::Setup(format!("{what}: {e}"))
}

/// Origin keys: our own domain from memory, every other through the resolver.
pub struct Origins {
    local: StaticOrigins,
    resolver: Arc<Resolver>,
}

impl OriginKeys for Origins {
    async fn origin_key(
        &self,
        origin: &Domain,
        fingerprint: &Fingerprint,
    ) -> Result<Vec<Ed25519PublicKey>, Refusal> {
        if self.local.0.contains_key(origin) {
            return self.local.origin_key(origin, fingerprint).await;
        }
        self.resolver.origin_key(origin, fingerprint).await
    }
}

/// Routes: our own domain to our own listener (its certificate pinned by our record), every
/// other through the resolver.
pub struct DimedRoutes {
    local: (Domain, Route),
    resolver: ResolverRoutes<DmtpSignets, StorePins>,
}

impl Routes for DimedRoutes {
    async fn route(&self, destination: &Domain) -> Result<Route, RouteError> {
        if *destination == self.local.0 {
            return Ok(self.local.1.clone());
        }
        self.resolver.route(destination).await
    }
}

/// What `dimed reload` (SIGHUP, or the operator's socket) re-reads (`spec/dimed.md` §5.2).
pub struct Reloader {
    config: Config,
    certs: Arc<dime_net::ReloadableCert>,
}

impl Reloader {
    /// Reads the certificate and key again and serves them; answers what was reloaded, or
    /// why nothing was.
    ///
    /// # Errors
    /// The files cannot be read, or do not make a certificate and its key.
    pub fn reload(&self) -> Result<String, String> {
        let cert = self.config.secret_path(files::TLS_CERT);
        let key = self.config.secret_path(files::TLS_KEY);
        let chain =
            std::fs::read(&cert).map_err(|e| format!("cannot read {}: {e}", cert.display()))?;
        let pem = zeroize::Zeroizing::new(
            std::fs::read(&key).map_err(|e| format!("cannot read {}: {e}", key.display()))?,
        );
        self.certs.replace(&chain, &pem).map_err(|e| {
            format!(
                "{} and {}: {e}; the certificate served is unchanged",
                cert.display(),
                key.display()
            )
        })?;
        tracing::info!("certificate reloaded");
        Ok(format!("certificate reloaded from {}", cert.display()))
    }
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

/// The certificate and key of `config`.
fn read_certs(
    config: &Config,
    tls_provider: &TlsProvider,
) -> Result<dime_net::ReloadableCert, String> {
    let cert = read(&config.secret_path(files::TLS_CERT)).map_err(|e| e.to_string())?;
    let key = zeroize::Zeroizing::new(
        read(&config.secret_path(files::TLS_KEY)).map_err(|e| e.to_string())?,
    );
    dime_net::ReloadableCert::from_pem(Arc::clone(tls_provider), &cert, &key)
        .map_err(|e| e.to_string())
}

/// A running `dimed`: stop it with [`Running::shutdown`].
pub struct Running {
    /// Where QUIC listens.
    pub quic_addr: Option<SocketAddr>,
    /// Where TLS listens.
    pub tls_addr: Option<SocketAddr>,
    /// The submission socket.
    pub submission: std::path::PathBuf,
    /// The operator's socket.
    pub admin: std::path::PathBuf,
    /// Our domain.
    pub local: Arc<LocalDomain>,
    /// The store.
    pub store: Arc<Store>,
    /// The resolver.
    pub resolver: Arc<Resolver>,
    /// Where DMAP listens on implicit TLS.
    pub imaps_addr: Option<SocketAddr>,
    /// Where DMAP listens with STARTTLS.
    pub imap_addr: Option<SocketAddr>,
    dmap: Vec<crate::dmap::DmapHandle>,
    reloader: Arc<Reloader>,
    stop: watch::Sender<bool>,
    listeners: Vec<dime_net::ServerHandle>,
    quic_endpoints: Vec<quinn::Endpoint>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("domain", &self.local.domain)
            .field("quic", &self.quic_addr)
            .field("tls", &self.tls_addr)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Re-reads what a running dimed can take without a restart (`spec/dimed.md` §5.2): the
    /// certificate and key, served from the next handshake on every listener. Answers what
    /// was reloaded; on an error nothing changed.
    ///
    /// # Errors
    /// What could not be read, named.
    pub fn reload(&self) -> Result<String, String> {
        self.reloader.reload()
    }

    /// Stops: the DMTP listeners accept no more connections and let the transactions under
    /// way finish for up to [`dime_net::SHUTDOWN_GRACE`], then close the rest (the QUIC
    /// closes sent to the peers); the local sockets do likewise; the outbound attempts under
    /// way end (the entries leased and not tried are handed back); the store is closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for d in self.dmap {
            d.shutdown().await;
        }
        // Every listener stops now; their graces run side by side with the tasks' ends.
        let listeners: Vec<_> =
            self.listeners.into_iter().map(|l| l.shutdown(dime_net::SHUTDOWN_GRACE)).collect();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        for l in listeners {
            let closed = l.await;
            if closed > 0 {
                tracing::warn!(closed, "dmtp connections closed at shutdown mid-transaction");
            }
        }
        for ep in self.quic_endpoints {
            let _ = tokio::time::timeout(QUIC_CLOSE_WAIT, ep.wait_idle()).await;
        }
        let _ = std::fs::remove_file(&self.submission);
        let _ = std::fs::remove_file(&self.admin);
    }
}

/// A private directory or file open to other local users (`spec/dimed.md` §3): a
/// directory should be [`OsFs::DIR_MODE`] (0700), a file [`OsFs::FILE_MODE`] (0600).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LooseMode {
    /// The directory or file.
    pub path: std::path::PathBuf,
    /// Its mode (the permission bits).
    pub mode: u32,
    /// Whether it is a directory.
    pub dir: bool,
}

impl LooseMode {
    /// The mode it should have.
    pub fn wanted(&self) -> u32 {
        if self.dir { OsFs::DIR_MODE } else { OsFs::FILE_MODE }
    }
}

impl std::fmt::Display for LooseMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.dir { "directory" } else { "file" };
        write!(
            f,
            "private {what} {} is mode {:04o}, open to other local users: chmod {:o} {}",
            self.path.display(),
            self.mode,
            self.wanted(),
            self.path.display()
        )
    }
}

/// The private directories and files of `config` (`spec/dimed.md` §3) whose mode gives any
/// permission to the group or to others: the store's (the data directory, `store.redb`, the
/// delivery log, the key vault and its directory), the configuration directory and the
/// secret files in it (`pepper`, `org.key`, `org.pass`, `tls.key`). One missing is not listed
/// (the store creates its own private; a missing key is an error of its own).
pub fn loose_permissions(config: &Config) -> Vec<LooseMode> {
    use std::os::unix::fs::PermissionsExt;
    let vault = config.secret_path(files::VAULT);
    let mut paths = OsFs::private_paths(&config.data_dir, &vault);
    paths.push((config.config_dir.clone(), true));
    for f in [files::PEPPER, files::ORG_KEY, files::ORG_PASSPHRASE, files::TLS_KEY] {
        paths.push((config.secret_path(f), false));
    }
    let mut seen = std::collections::HashSet::new();
    paths
        .into_iter()
        .filter(|(path, _)| seen.insert(path.clone()))
        .filter_map(|(path, dir)| {
            let mode = std::fs::metadata(&path).ok()?.permissions().mode() & 0o7777;
            (mode & 0o077 != 0).then_some(LooseMode { path, mode, dir })
        })
        .collect()
}

/// Warns of each loose private directory or file ([`loose_permissions`]), naming its path,
/// its mode and the `chmod` that fixes it; with `strict_permissions`, refuses to start.
fn check_permissions(config: &Config) -> Result<(), StartError> {
    let loose = loose_permissions(config);
    if loose.is_empty() {
        return Ok(());
    }
    if config.strict_permissions {
        let all: Vec<String> = loose.iter().map(ToString::to_string).collect();
        return Err(StartError::Setup(format!(
            "refusing to start (strict_permissions): {}",
            all.join("; ")
        )));
    }
    for l in &loose {
        tracing::warn!(
            path = %l.path.display(),
            mode = format_args!("{:04o}", l.mode),
            fix = format_args!("chmod {:o} {}", l.wanted(), l.path.display()),
            "{l}"
        );
    }
    Ok(())
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, StartError> {
    std::fs::read(path)
        .map_err(|e| StartError::Setup(format!("cannot read {}: {e}", path.display())))
}

/// Compacts the store every `every` until `stop` (`spec/storage.md` §12), counted from the
/// last compaction, which the store records (a restart does not put one off); after a failure,
/// the next try is `every` later. The store goes on serving meanwhile (its writes wait for
/// the copy).
async fn compact_every(every: Duration, store: Arc<Store>, mut stop: watch::Receiver<bool>) {
    loop {
        let s = Arc::clone(&store);
        let now = crate::now();
        let wait = match tokio::task::spawn_blocking(move || s.compaction_due(every.as_secs(), now))
            .await
        {
            Ok(Ok(due)) => Duration::from_secs(due.0.saturating_sub(now.0)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "store: cannot read the compaction schedule");
                every
            }
            Err(e) => {
                tracing::warn!(error = %e, "store: cannot read the compaction schedule");
                every
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let s = Arc::clone(&store);
        let started = std::time::Instant::now();
        let failed = match tokio::task::spawn_blocking(move || s.compact(crate::now())).await {
            Ok(Ok(done)) => {
                tracing::info!(
                    rewritten = done,
                    millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "store compacted"
                );
                false
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "store compaction failed");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "store compaction stopped");
                true
            }
        };
        if failed {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

/// Starts `dimed` from `config` (inside a tokio runtime): DIME's primitives from `provider`,
/// every TLS and QUIC configuration and certificate check over `tls_provider` (the binary's
/// one rustls provider).
///
/// # Errors
/// [`StartError`] saying what is missing or wrong.
pub async fn start(
    config: &Config,
    provider: &'static CryptoProvider,
    tls_provider: TlsProvider,
) -> Result<Running, StartError> {
    start_with(config, provider, tls_provider, None).await
}

/// [`start`], the org key's passphrase given (for a domain whose `org.pass` was removed:
/// `spec/dimed.md` §3); `None` reads `org.pass`.
///
/// # Errors
/// [`StartError`] saying what is missing or wrong.
pub async fn start_with(
    config: &Config,
    provider: &'static CryptoProvider,
    tls_provider: TlsProvider,
    org_passphrase: Option<&[u8]>,
) -> Result<Running, StartError> {
    check_permissions(config)?;
    let p = provider;
    let domain = config.domain.clone();
    let keys = read_org_keys(p, config, org_passphrase).map_err(StartError::Setup)?;
    let signet_text = read(&config.secret_path(files::ORG_SIGNET))?;
    let org_signet = Signet::decode_any(&signet_text).map_err(setup("org signet"))?;
    if org_signet.kind() != SignetKind::Org {
        return Err(StartError::Setup("org.signet is not an org signet".into()));
    }
    let record_text =
        String::from_utf8_lossy(&read(&config.secret_path(files::RECORD))?).trim().to_owned();
    let record = Record::parse(&record_text).map_err(setup("dx-record.txt"))?;
    let local =
        Arc::new(LocalDomain::new(p, domain.clone(), keys, org_signet).map_err(setup("org keys"))?);
    let pok = local.keys().pok(p);
    if !record.poks.contains(&pok) {
        return Err(StartError::Setup("dx-record.txt does not name our POK".into()));
    }

    let pepper = read(&config.secret_path(files::PEPPER))?;
    let store = Arc::new(Store::open(
        StoreConfig {
            data_dir: config.data_dir.clone(),
            vault_path: config.secret_path(files::VAULT),
            pepper: Secret::new(pepper),
            argon2: dime_core::crypto::Argon2Params::DEFAULT,
            // A session's idle timeout is the submission socket's for a logged-in
            // connection: both end together (spec/dimed.md §4).
            idle_timeout_secs: crate::LOCAL_SESSION_IDLE_TIMEOUT.as_secs(),
        },
        p,
    )?);
    if store.format() < dime_store::STORE_FORMAT {
        tracing::info!(
            format = store.format(),
            current = dime_store::STORE_FORMAT,
            "store: an older format, kept; each delivery hashes its envelope once more \
             (an export and import moves an account to the current format)"
        );
    }
    if store.replayed_deliveries() > 0 {
        // Acknowledged before an unclean stop, made durable again from the delivery log.
        tracing::warn!(
            deliveries = store.replayed_deliveries(),
            "store: the delivery log gave back deliveries after an unclean stop"
        );
    }

    // TLS material: one certificate for every listener, replaced by `reload`.
    let certs = Arc::new(
        read_certs(config, &tls_provider).map_err(|e| StartError::Setup(format!("tls: {e}")))?,
    );
    let dmap_tls =
        crate::dmap::tls_config_reloadable(Arc::clone(&tls_provider), Arc::clone(&certs))
            .map_err(setup("imap tls"))?;
    let server_tls =
        dime_net::server_tls_config_reloadable(Arc::clone(&tls_provider), Arc::clone(&certs))?;

    // The resolver, with our own domain answered without DNS.
    let transports = config.outbound.transports;
    let mut dns_config = DnsConfig::new(if config.dns.servers.is_empty() {
        DnsConfig::system_servers()
    } else {
        config.dns.servers.clone()
    });
    if let Some(a) = &config.dns.trust_anchor {
        dns_config = dns_config.trust_anchor(TrustAnchor::File(a.clone()));
    }
    if let Some(t) = config.dns.timeout_secs {
        dns_config = dns_config.timeouts(Duration::from_secs(t.max(1)), 2);
    }
    let dns = Dns::new(&dns_config).map_err(setup("dns"))?;
    let policy = LocalPolicy {
        allow_ca_tls: !config.dns.strict,
        unchained_signet: if config.dns.refuse_unchained {
            UnchainedSignet::Refuse
        } else {
            UnchainedSignet::Flag
        },
    };
    // The WebPKI roots (with `dns.extra_ca`), read once and shared by every verifier.
    let webpki = WebPki::load(Arc::clone(&tls_provider), config.dns.extra_ca.as_deref())
        .map_err(setup("dns.extra_ca"))?;
    let own_record = Arc::new(record);
    let own_verifier: Arc<DimeCertVerifier> =
        Arc::new(DimeCertVerifier::new(CertPolicy::SecureRecord(own_record), &webpki, p));
    // Bind first, so that our own signet server and route name the bound addresses (a
    // configured port 0 becomes the port the system chose).
    let quic_endpoint = match config.listen.quic {
        Some(a) => Some(
            quinn::Endpoint::server(dime_net::quic_server_config(server_tls.clone())?, a)
                .map_err(|error| StartError::Bind { what: format!("quic {a}"), error })?,
        ),
        None => None,
    };
    let tcp_listener = match config.listen.tls {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .map_err(|error| StartError::Bind { what: format!("tls {a}"), error })?,
        ),
        None => None,
    };
    let quic_addr = quic_endpoint.as_ref().and_then(|ep| ep.local_addr().ok());
    let tls_addr = tcp_listener.as_ref().and_then(|l| l.local_addr().ok());
    let own_addr = quic_addr.or(tls_addr).ok_or_else(|| StartError::Setup("no listener".into()))?;
    let own_server = SignetServer {
        server_name: config.host.clone(),
        addr: own_addr,
        tls: Arc::new(dime_net::client_tls_config(
            Arc::clone(&tls_provider),
            own_verifier.clone(),
        )?),
    };
    let source = DmtpSignets::new(p, domain.clone(), webpki.clone(), transports)
        .with_fixed(domain.clone(), own_server);
    let resolver =
        Arc::new(KeyResolver::new(dns, source, StorePins::new(Arc::clone(&store)), policy, p));

    // Listeners.
    let options = dime_net::fit_to_fd_limit(
        config.server_options(domain.clone(), p),
        usize::from(tcp_listener.is_some()),
    );
    let mut statics = StaticOrigins::default();
    statics.0.insert(domain.clone(), (local.org_fingerprint, pok));
    let origins = Arc::new(Origins { local: statics, resolver: Arc::clone(&resolver) });
    let changes = Arc::new(crate::service::Changes::default());
    let handler = Arc::new(
        Destination::new(Arc::clone(&local), Arc::clone(&store), origins, p)
            .with_changes(Arc::clone(&changes)),
    );
    let mut listeners = Vec::new();
    let mut quic_endpoints = Vec::new();
    if let Some(ep) = quic_endpoint {
        quic_endpoints.push(ep.clone());
        listeners.push(dime_net::spawn_quic(ep, Arc::clone(&handler), options.clone())?);
    }
    if let Some(l) = tcp_listener {
        listeners.push(dime_net::spawn_tls(
            l,
            server_tls.clone(),
            Arc::clone(&handler),
            options.clone(),
        )?);
    }

    // The outbound worker; our own domain is delivered to our own listener.
    let local_route = Route {
        destination_fingerprint: local.org_fingerprint,
        targets: vec![Target { server_name: config.host.clone(), addrs: vec![own_addr] }],
        verifier: own_verifier,
    };
    let routes = Arc::new(DimedRoutes {
        local: (domain.clone(), local_route),
        resolver: ResolverRoutes::new(Arc::clone(&resolver), p, webpki),
    });
    let wake = Arc::new(tokio::sync::Notify::new());
    let dmtp = Dmtp::new(Arc::clone(&local), routes, transports, tls_provider);
    let worker =
        Outbound::new(Arc::clone(&store), Arc::clone(&local), dmtp, config.retry_policy(), p)
            .with_wake(Arc::clone(&wake));
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let interval = Duration::from_millis(config.outbound.interval_ms);
    let mut rx = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        let shutdown = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        worker.run(interval, rand_core::OsRng, shutdown).await;
    }));
    if config.store.compact_interval_secs > 0 {
        let every = Duration::from_secs(config.store.compact_interval_secs);
        tasks.push(tokio::spawn(compact_every(every, Arc::clone(&store), stop_rx.clone())));
    }

    // Local submission.
    let submission = config.submission_socket();
    let service = crate::service::MailService::new(
        Arc::clone(&store),
        Arc::clone(&local),
        Arc::clone(&resolver),
        p,
    )
    .with_wake(Arc::clone(&wake))
    .with_changes(changes);
    let service = Arc::new(service);
    let mut dmap = Vec::new();
    for (addr, security) in [
        (config.listen.imaps, crate::dmap::Security::ImplicitTls),
        (config.listen.imap, crate::dmap::Security::StartTls),
    ] {
        let Some(addr) = addr else { continue };
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|error| StartError::Bind { what: format!("imap {addr}"), error })?;
        dmap.push(
            crate::dmap::spawn(
                l,
                security,
                Arc::clone(&dmap_tls),
                Arc::clone(&service),
                config.dmap_options(),
            )
            .map_err(|error| StartError::Bind { what: format!("imap {addr}"), error })?,
        );
    }
    let imaps_addr = config.listen.imaps.and(dmap.first().map(|d| d.addr));
    let imap_addr = config.listen.imap.and(dmap.last().map(|d| d.addr));
    let sub = crate::submission::Submission { service: Arc::clone(&service) };
    tasks.push(
        crate::submission::serve(&submission, Arc::new(sub), stop_rx.clone())
            .map_err(|error| StartError::Bind { what: submission.display().to_string(), error })?,
    );
    if let Some(addr) = config.metrics.listen {
        tasks.push(crate::metrics::serve(addr, Arc::clone(&store), stop_rx.clone()).await?.1);
    }
    let admin = config.admin_socket();
    let reloader = Arc::new(Reloader { config: config.clone(), certs });
    let a = Arc::new(crate::admin::Admin {
        store: Arc::clone(&store),
        local: Some(Arc::clone(&local)),
        wake: Some(wake),
        reload: Some(Arc::clone(&reloader)),
    });
    tasks.push(
        crate::admin::serve(&admin, a, stop_rx)
            .map_err(|error| StartError::Bind { what: admin.display().to_string(), error })?,
    );

    tracing::info!(
        domain = %domain,
        quic = ?quic_addr,
        tls = ?tls_addr,
        imaps = ?imaps_addr,
        imap = ?imap_addr,
        "dimed started"
    );
    Ok(Running {
        quic_addr,
        tls_addr,
        submission,
        admin,
        local,
        store,
        resolver,
        imaps_addr,
        imap_addr,
        dmap,
        reloader,
        stop,
        listeners,
        quic_endpoints,
        tasks,
    })
}
