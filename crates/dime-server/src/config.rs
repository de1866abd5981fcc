//! `dimed`'s configuration: one TOML file (`spec/dimed.md` §2). Unknown keys are errors, so a
//! misspelt setting is never silently ignored; relative paths are relative to the file's
//! directory. [`Config::load`] checks every value once and hands out typed values (the
//! domain as a [`Domain`], the transports as [`Transports`]).

use crate::outbound::RetryPolicy;
use crate::outbound::dmtp::Transports;
use dime_core::Domain;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why: in the message, and not also a source (an error chain would say it twice).
        error: std::io::Error,
    },
    /// The file is not valid TOML for this schema (the message names the key and line).
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is out of its range or inconsistent with another.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The whole configuration, as [`Config::load`] checked it.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our domain.
    pub domain: Domain,
    /// The host name our certificate is for (the `dx=` host of our record).
    pub host: String,
    /// Where the store lives (`store.redb`).
    pub data_dir: PathBuf,
    /// Secrets kept out of data backups: `pepper`, `vault.redb`, the org key and its
    /// passphrase, the TLS key.
    pub config_dir: PathBuf,
    /// Listening addresses.
    pub listen: Listen,
    /// DNS and key discovery.
    pub dns: DnsSection,
    /// The outbound queue worker.
    pub outbound: Outbound,
    /// Limits of the DMTP listener.
    pub limits: Limits,
    /// The store's upkeep.
    pub store: StoreSection,
    /// The DMAP listeners' caps.
    pub imap: ImapSection,
    /// The Prometheus endpoint.
    pub metrics: MetricsSection,
    /// Refuse to start when a private directory or file (the store's, the key files) is open
    /// to other local users, rather than warn (`spec/dimed.md` §3).
    pub strict_permissions: bool,
}

/// The file as written, before [`RawConfig::check`] types and checks its values.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    domain: String,
    host: String,
    data_dir: PathBuf,
    config_dir: PathBuf,
    listen: Listen,
    #[serde(default)]
    dns: DnsSection,
    #[serde(default)]
    outbound: RawOutbound,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    imap: ImapSection,
    #[serde(default)]
    metrics: MetricsSection,
    #[serde(default)]
    strict_permissions: bool,
}

/// `[metrics]`: the Prometheus endpoint (`spec/dimed.md` §8); no `listen`, no endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Where `GET /metrics` is answered; a loopback address unless `allow_public`.
    pub listen: Option<SocketAddr>,
    /// Allow a `listen` address that is not loopback: the metrics tell traffic volumes, so
    /// this is a decision the operator states (then a firewall should stand in front).
    #[serde(default)]
    pub allow_public: bool,
}

/// The default of `[store] compact_interval_secs`: once a day.
pub const COMPACT_INTERVAL_SECS: u64 = 24 * 3600;

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// Seconds between two compactions of the running store (`spec/storage.md` §12), counted
    /// from the last one (the store records it); 0: never (then `dimed compact` on the stopped
    /// store, or `dime user purge --compact`, does it).
    pub compact_interval_secs: u64,
}

impl Default for StoreSection {
    fn default() -> StoreSection {
        StoreSection { compact_interval_secs: COMPACT_INTERVAL_SECS }
    }
}

/// `[listen]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// DMTP over QUIC (UDP).
    pub quic: Option<SocketAddr>,
    /// DMTP over TLS (TCP).
    pub tls: Option<SocketAddr>,
    /// The local submission socket (`spec/dimed.md` §4); default `dimed.sock` in the data
    /// directory.
    pub submission: Option<PathBuf>,
    /// The operator's socket (`spec/dimed.md` §5); default `dimed-admin.sock` in the data
    /// directory.
    pub admin: Option<PathBuf>,
    /// DMAP (IMAP4rev2) on implicit TLS, for mail clients (`spec/dmap.md` §2); usually port 993.
    pub imaps: Option<SocketAddr>,
    /// DMAP (IMAP4rev2) on plaintext with STARTTLS, no login before it (`spec/dmap.md` §2);
    /// usually port 143.
    pub imap: Option<SocketAddr>,
}

/// `[imap]`: the DMAP listeners' caps (`spec/dmap.md` §6); each absent value is the default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapSection {
    /// Connections at once on each listener, from every address.
    pub max_connections: Option<usize>,
    /// Connections at once from one IP address, on each listener.
    pub max_connections_per_ip: Option<usize>,
    /// Largest APPEND, octets (at most the store's largest envelope).
    pub append_limit: Option<u64>,
    /// Seconds one write may wait for the client to read (`spec/dmap.md` §6).
    pub write_timeout_secs: Option<u64>,
    /// Seconds a command may take to arrive beyond its literals' time (`spec/dmap.md` §6).
    pub command_timeout_secs: Option<u64>,
    /// Slowest rate a command's literals may arrive at, octets per second (`spec/dmap.md` §6).
    pub min_literal_rate: Option<u64>,
}

/// `[dns]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSection {
    /// Validating-resolver addresses (empty: the system's `/etc/resolv.conf` servers).
    #[serde(default)]
    pub servers: Vec<SocketAddr>,
    /// A trust anchor file (DNSKEY lines); default the IANA root.
    pub trust_anchor: Option<PathBuf>,
    /// Refuse the CA-TLS fallback for provably unsigned records.
    #[serde(default)]
    pub strict: bool,
    /// Refuse (rather than flag) a user signet not chained from the pinned one.
    #[serde(default)]
    pub refuse_unchained: bool,
    /// Extra PEM roots for WebPKI checks of peer certificates.
    pub extra_ca: Option<PathBuf>,
    /// Seconds per DNS query attempt.
    pub timeout_secs: Option<u64>,
}

/// `[outbound]`.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// How the origin connects (`quic-then-tls`, `quic` or `tls` in the file).
    pub transports: Transports,
    /// Milliseconds between the outbound worker's looks for due entries (and status pruning).
    pub interval_ms: u64,
    /// First retry delay, seconds.
    pub retry_base_secs: u64,
    /// Longest retry delay, seconds.
    pub max_backoff_secs: u64,
    /// Lifetime of a queued message before it bounces, seconds.
    pub max_lifetime_secs: u64,
    /// Attempts under way at once.
    pub in_flight: usize,
}

/// The longest queue lifetime `[outbound] max_lifetime_secs` may set: 6 days, a day inside a
/// destination's replay window (`spec/dmtp.md` §6.4.2, §11.2).
pub const MAX_LIFETIME_SECS: u64 = 6 * 24 * 3600;

/// `[outbound]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawOutbound {
    transports: String,
    interval_ms: u64,
    retry_base_secs: u64,
    max_backoff_secs: u64,
    max_lifetime_secs: u64,
    in_flight: usize,
}

impl Default for RawOutbound {
    fn default() -> RawOutbound {
        let r = RetryPolicy::default();
        RawOutbound {
            transports: "quic-then-tls".into(),
            interval_ms: 1000,
            retry_base_secs: r.base_secs,
            max_backoff_secs: r.max_backoff_secs,
            max_lifetime_secs: r.max_lifetime_secs,
            in_flight: r.in_flight,
        }
    }
}

/// `[limits]` (defaults: `spec/dmtp.md` §8).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest message, octets.
    pub max_message_size: Option<u64>,
    /// Transactions per stream.
    pub max_transactions: Option<u32>,
    /// Signet lookups per stream.
    pub max_lookups: Option<u32>,
    /// Connections at once on each DMTP listener (QUIC, TLS), from every address.
    pub max_connections: Option<usize>,
    /// Connections at once from one IP address.
    pub max_connections_per_ip: Option<usize>,
    /// Streams per QUIC connection.
    pub max_streams_per_connection: Option<u64>,
    /// Seconds for the TLS or QUIC handshake and for HELLO.
    pub handshake_timeout_secs: Option<u64>,
    /// Seconds a stream may stay silent.
    pub idle_timeout_secs: Option<u64>,
    /// Octets of DATA bodies held at once by the DMTP listeners (`spec/dmtp.md` §6.4).
    pub body_budget: Option<u64>,
    /// Slowest average rate of a DATA body, octets per second (`spec/dmtp.md` §6.4).
    pub min_body_rate: Option<u64>,
}

impl RawConfig {
    /// Checks every value and types the domain and the transports; the first wrong value is
    /// the error.
    fn check(self, path: &Path) -> Result<Config, ConfigError> {
        let bad = |key, message: &str| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            message: message.to_owned(),
        };
        let domain = Domain::parse(&self.domain).map_err(|_| bad("domain", "not a domain name"))?;
        Domain::parse(&self.host).map_err(|_| bad("host", "not a host name"))?;
        if self.listen.quic.is_none() && self.listen.tls.is_none() {
            return Err(bad("listen", "give quic, tls or both"));
        }
        let o = self.outbound;
        let transports = match o.transports.as_str() {
            "quic-then-tls" => Transports::QuicThenTls,
            "quic" => Transports::QuicOnly,
            "tls" => Transports::TlsOnly,
            _ => return Err(bad("outbound.transports", "must be quic-then-tls, quic or tls")),
        };
        if o.interval_ms == 0 || o.retry_base_secs == 0 {
            return Err(bad("outbound", "intervals must be positive"));
        }
        if o.in_flight == 0 {
            return Err(bad("outbound.in_flight", "0 would deliver nothing"));
        }
        if o.max_backoff_secs < o.retry_base_secs {
            return Err(bad("outbound.max_backoff_secs", "smaller than retry_base_secs"));
        }
        let l = &self.limits;
        let zero = [
            l.max_message_size.map(|v| v == 0),
            l.max_transactions.map(|v| v == 0),
            l.max_lookups.map(|v| v == 0),
            l.max_connections.map(|v| v == 0),
            l.max_connections_per_ip.map(|v| v == 0),
            l.max_streams_per_connection.map(|v| v == 0),
            l.handshake_timeout_secs.map(|v| v == 0),
            l.idle_timeout_secs.map(|v| v == 0),
            l.body_budget.map(|v| v == 0),
            l.min_body_rate.map(|v| v == 0),
        ];
        if zero.into_iter().flatten().any(|z| z) {
            return Err(bad("limits", "a limit of 0 would refuse everything"));
        }
        // `spec/dmtp.md` §6.4: a body of the largest size must fit one source's share of the
        // budget (a quarter), or it would be refused for ever.
        let largest = l.max_message_size.unwrap_or(dime_dmtp::limits::MAX_MESSAGE_SIZE);
        let share = |b: u64| b / dime_dmtp::budget::SOURCE_SHARE_DIVISOR;
        if l.body_budget.is_some_and(|b| share(b) < largest) {
            return Err(bad(
                "limits.body_budget",
                "a quarter of it (one source's share) is smaller than the largest message",
            ));
        }
        // `spec/dmtp.md` §6.4.2: a retry must reach the destination inside its replay window,
        // clock skew and a day of margin included.
        if o.max_lifetime_secs > MAX_LIFETIME_SECS {
            return Err(bad(
                "outbound.max_lifetime_secs",
                "at most 518400 (6 days): destinations refuse envelopes signed over 7 days ago",
            ));
        }
        if let Some(a) = self.metrics.listen
            && !a.ip().to_canonical().is_loopback()
            && !self.metrics.allow_public
        {
            return Err(bad(
                "metrics.listen",
                "not a loopback address: metrics tell traffic volumes; set metrics.allow_public \
                 = true to serve them there",
            ));
        }
        Ok(Config {
            domain,
            host: self.host,
            data_dir: self.data_dir,
            config_dir: self.config_dir,
            listen: self.listen,
            dns: self.dns,
            outbound: Outbound {
                transports,
                interval_ms: o.interval_ms,
                retry_base_secs: o.retry_base_secs,
                max_backoff_secs: o.max_backoff_secs,
                max_lifetime_secs: o.max_lifetime_secs,
                in_flight: o.in_flight,
            },
            limits: self.limits,
            store: self.store,
            imap: self.imap,
            metrics: self.metrics,
            strict_permissions: self.strict_permissions,
        })
    }
}

impl Config {
    /// Reads and checks `path`; relative paths in it are made relative to its directory.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, the key and what is wrong.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::Read { path: path.to_owned(), error })?;
        let raw: RawConfig = toml::from_str(&text)
            .map_err(|e| ConfigError::Syntax { path: path.to_owned(), message: e.to_string() })?;
        let mut c = raw.check(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        c.resolve(base);
        Ok(c)
    }

    fn resolve(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        fix(&mut self.config_dir);
        if let Some(p) = &mut self.listen.submission {
            fix(p);
        }
        if let Some(p) = &mut self.listen.admin {
            fix(p);
        }
        if let Some(p) = &mut self.dns.trust_anchor {
            fix(p);
        }
        if let Some(p) = &mut self.dns.extra_ca {
            fix(p);
        }
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base_secs: self.outbound.retry_base_secs,
            max_backoff_secs: self.outbound.max_backoff_secs,
            max_lifetime_secs: self.outbound.max_lifetime_secs,
            in_flight: self.outbound.in_flight,
            ..RetryPolicy::default()
        }
    }

    /// The submission socket's path.
    pub fn submission_socket(&self) -> PathBuf {
        self.listen.submission.clone().unwrap_or_else(|| self.data_dir.join("dimed.sock"))
    }

    /// The operator's socket's path.
    pub fn admin_socket(&self) -> PathBuf {
        self.listen.admin.clone().unwrap_or_else(|| self.data_dir.join("dimed-admin.sock"))
    }

    /// The DMTP listener options.
    pub fn server_options(
        &self,
        domain: Domain,
        provider: &'static dime_core::crypto::CryptoProvider,
    ) -> dime_net::ServerOptions {
        let mut o = dime_net::ServerOptions::new(domain, provider);
        let l = &self.limits;
        if let Some(v) = l.max_message_size {
            o.dmtp.max_message_size = v;
        }
        if let Some(v) = l.max_transactions {
            o.dmtp.max_transactions = v;
        }
        if let Some(v) = l.max_lookups {
            o.dmtp.max_lookups = v;
        }
        if let Some(v) = l.max_connections {
            o.max_connections = v;
        }
        if let Some(v) = l.max_connections_per_ip {
            o.max_connections_per_ip = v;
        }
        if let Some(v) = l.max_streams_per_connection {
            o.max_streams_per_connection = v;
        }
        if let Some(v) = l.handshake_timeout_secs {
            o.handshake_timeout = Duration::from_secs(v);
            o.dmtp.handshake_timeout = Duration::from_secs(v);
        }
        if let Some(v) = l.body_budget {
            o.dmtp.body_budget = dime_dmtp::budget::BodyBudget::new(v);
        }
        if let Some(v) = l.min_body_rate {
            o.dmtp.min_body_rate = v;
        }
        if let Some(v) = l.idle_timeout_secs {
            o.dmtp.idle_timeout = Duration::from_secs(v);
        }
        o
    }

    /// The DMAP listeners' options.
    pub fn dmap_options(&self) -> crate::dmap::DmapOptions {
        let mut o = crate::dmap::DmapOptions::default();
        if let Some(v) = self.imap.max_connections {
            o.max_connections = v;
        }
        if let Some(v) = self.imap.max_connections_per_ip {
            o.max_connections_per_ip = v;
        }
        if let Some(v) = self.imap.append_limit {
            o.append_limit = v.min(o.append_limit);
        }
        if let Some(v) = self.imap.write_timeout_secs {
            o.write_timeout = Duration::from_secs(v.max(1));
        }
        if let Some(v) = self.imap.command_timeout_secs {
            o.command_timeout = Duration::from_secs(v.max(1));
        }
        if let Some(v) = self.imap.min_literal_rate {
            o.min_literal_rate = v.max(1);
        }
        o
    }

    /// Files under the configuration directory.
    pub fn secret_path(&self, name: &str) -> PathBuf {
        self.config_dir.join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir()
            .map_err(|error| ConfigError::Read { path: PathBuf::from("tempdir"), error })?;
        let p = dir.path().join("dimed.toml");
        std::fs::write(&p, text).map_err(|error| ConfigError::Read { path: p.clone(), error })?;
        Config::load(&p)
    }

    const MINIMAL: &str = "domain = \"a.test\"\nhost = \"mx.a.test\"\ndata_dir = \"data\"\n\
                           config_dir = \"conf\"\n[listen]\nquic = \"127.0.0.1:2626\"\n";

    #[test]
    fn minimal_file_gets_defaults_and_relative_paths() -> Result<(), ConfigError> {
        let c = load(MINIMAL)?;
        assert!(c.data_dir.is_absolute() && c.data_dir.ends_with("data"));
        assert_eq!(c.outbound.transports, Transports::QuicThenTls);
        assert_eq!(c.retry_policy().base_secs, RetryPolicy::default().base_secs);
        assert!(c.submission_socket().ends_with("data/dimed.sock"));
        assert!(c.admin_socket().ends_with("data/dimed-admin.sock"));
        assert_eq!(c.store.compact_interval_secs, COMPACT_INTERVAL_SECS);
        let c = load(&format!("{MINIMAL}[store]\ncompact_interval_secs = 0\n"))?;
        assert_eq!(c.store.compact_interval_secs, 0);
        // Socket paths given relative are relative to the file too.
        let c = load(&format!("{MINIMAL}submission = \"s.sock\"\nadmin = \"run/a.sock\"\n"))?;
        assert!(c.submission_socket().is_absolute() && c.submission_socket().ends_with("s.sock"));
        assert!(c.admin_socket().is_absolute() && c.admin_socket().ends_with("run/a.sock"));
        Ok(())
    }

    #[test]
    fn unknown_keys_bad_values_and_missing_listeners_are_named() {
        let e = load(&format!("{MINIMAL}[outbound]\ntransport = \"quic\"\n")).err();
        assert!(
            matches!(&e, Some(ConfigError::Syntax { message, .. }) if message.contains("transport")),
            "{e:?}"
        );
        let e = load(&format!("{MINIMAL}[outbound]\ntransports = \"smtp\"\n")).err();
        assert!(matches!(e, Some(ConfigError::Invalid { key: "outbound.transports", .. })));
        let e = load(&MINIMAL.replace("quic = \"127.0.0.1:2626\"\n", "")).err();
        assert!(matches!(e, Some(ConfigError::Invalid { key: "listen", .. })));
        let e = load(&MINIMAL.replace("a.test\"", "a..test\"")).err();
        assert!(matches!(e, Some(ConfigError::Invalid { key: "domain", .. })));
        let e = load(&format!("{MINIMAL}[limits]\nmax_lookups = 0\n")).err();
        assert!(matches!(e, Some(ConfigError::Invalid { key: "limits", .. })));
        let e = load(&format!("{MINIMAL}[outbound]\nin_flight = 0\n")).err();
        assert!(matches!(e, Some(ConfigError::Invalid { key: "outbound.in_flight", .. })));
        // spec/dmtp.md §6.4.2: six days at most, one second more refused.
        let life = |secs: u64| load(&format!("{MINIMAL}[outbound]\nmax_lifetime_secs = {secs}\n"));
        assert!(life(MAX_LIFETIME_SECS).is_ok());
        let e = life(MAX_LIFETIME_SECS + 1).err();
        assert!(matches!(e, Some(ConfigError::Invalid { key: "outbound.max_lifetime_secs", .. })));
    }

    #[test]
    fn metrics_listen_only_on_loopback_unless_allowed() -> Result<(), ConfigError> {
        assert!(load(MINIMAL)?.metrics.listen.is_none());
        for addr in ["127.0.0.1:9464", "[::1]:9464", "[::ffff:127.0.0.1]:9464"] {
            let c = load(&format!("{MINIMAL}[metrics]\nlisten = \"{addr}\"\n"))?;
            assert_eq!(c.metrics.listen, Some(addr.parse().map_err(|_| bad_test(addr))?));
        }
        for addr in ["0.0.0.0:9464", "192.0.2.1:9464", "[::]:9464"] {
            let e = load(&format!("{MINIMAL}[metrics]\nlisten = \"{addr}\"\n")).err();
            assert!(
                matches!(&e, Some(ConfigError::Invalid { key: "metrics.listen", message, .. })
                    if message.contains("allow_public")),
                "{addr}: {e:?}"
            );
            let c =
                load(&format!("{MINIMAL}[metrics]\nlisten = \"{addr}\"\nallow_public = true\n"))?;
            assert!(c.metrics.allow_public && c.metrics.listen.is_some());
        }
        let e = load(&format!("{MINIMAL}[metrics]\nlisten_on = \"127.0.0.1:1\"\n")).err();
        assert!(
            matches!(&e, Some(ConfigError::Syntax { message, .. }) if message.contains("listen_on"))
        );
        Ok(())
    }

    fn bad_test(what: &str) -> ConfigError {
        ConfigError::Invalid { path: PathBuf::from("test"), key: "test", message: what.to_owned() }
    }

    #[test]
    fn strict_permissions_is_off_unless_set() -> Result<(), ConfigError> {
        assert!(!load(MINIMAL)?.strict_permissions);
        let strict = MINIMAL.replace("[listen]", "strict_permissions = true\n[listen]");
        assert!(load(&strict)?.strict_permissions);
        Ok(())
    }

    #[test]
    fn in_flight_reaches_the_retry_policy() -> Result<(), ConfigError> {
        assert_eq!(load(MINIMAL)?.retry_policy().in_flight, RetryPolicy::default().in_flight);
        let c = load(&format!("{MINIMAL}[outbound]\nin_flight = 1\n"))?;
        assert_eq!(c.retry_policy().in_flight, 1);
        Ok(())
    }

    #[test]
    fn domain_and_transports_come_typed() -> Result<(), ConfigError> {
        for (text, want) in [
            ("quic-then-tls", Transports::QuicThenTls),
            ("quic", Transports::QuicOnly),
            ("tls", Transports::TlsOnly),
        ] {
            let c = load(&format!("{MINIMAL}[outbound]\ntransports = \"{text}\"\n"))?;
            assert_eq!(c.outbound.transports, want);
            assert_eq!(c.domain.as_str(), "a.test");
        }
        Ok(())
    }

    #[test]
    fn limits_reach_the_listener_options() -> Result<(), ConfigError> {
        let p = dime_core::crypto::default_provider();
        let c = load(MINIMAL)?;
        let o = c.server_options(c.domain.clone(), p);
        assert_eq!(o.max_connections, dime_net::MAX_CONNECTIONS);
        let c = load(&format!(
            "{MINIMAL}[limits]\nmax_message_size = 4096\nmax_connections = 5\n\
             max_connections_per_ip = 3\nidle_timeout_secs = 7\n"
        ))?;
        let o = c.server_options(c.domain.clone(), p);
        assert_eq!(o.dmtp.max_message_size, 4096);
        assert_eq!(o.max_connections, 5);
        assert_eq!(o.max_connections_per_ip, 3);
        assert_eq!(o.dmtp.idle_timeout, Duration::from_secs(7));
        let zero = load(&format!("{MINIMAL}[limits]\nmax_connections = 0\n"));
        assert!(matches!(zero, Err(ConfigError::Invalid { key: "limits", .. })));
        // The body budget and rate reach the machine's configuration; a budget below the
        // largest message, a quarter of it each source's share, is refused, four times it taken.
        let c = load(&format!(
            "{MINIMAL}[limits]\nmax_message_size = 4096\nbody_budget = 16384\nmin_body_rate = 10\n"
        ))?;
        let o = c.server_options(c.domain.clone(), p);
        assert_eq!((o.dmtp.body_budget.capacity(), o.dmtp.min_body_rate), (16384, 10));
        let small =
            load(&format!("{MINIMAL}[limits]\nmax_message_size = 4096\nbody_budget = 16383\n"));
        assert!(matches!(small, Err(ConfigError::Invalid { key: "limits.body_budget", .. })));
        Ok(())
    }
}
