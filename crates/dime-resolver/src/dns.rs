//! DNS lookups with DNSSEC validation through hickory-resolver (`spec/discovery.md` §2, §3).

use crate::proof::DnssecProof;
use dime_core::Domain;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::TrustAnchors;
use hickory_resolver::proto::rr::{RData, Record as RR, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Default time for one query attempt before it counts as lost (`spec/discovery.md` §2).
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(3);
/// Default number of attempts per query (`spec/discovery.md` §2).
pub const DEFAULT_QUERY_ATTEMPTS: usize = 2;
/// Largest trust-anchor file read, in octets (`spec/discovery.md` §2).
pub const TRUST_ANCHOR_FILE_MAX_LEN: u64 = 64 * 1024;

/// Where DNSSEC validation starts (`spec/discovery.md` §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustAnchor {
    /// The IANA root keys built into hickory-resolver (the default).
    IanaRoot,
    /// A file of DNSKEY lines, one per line, `;` comments (hickory's anchor format). Tests and
    /// private deployments use it for their own root.
    File(PathBuf),
    /// The same format, as text.
    Text(String),
}

/// The resolver's DNS configuration (`spec/discovery.md` §2).
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Recursive resolvers (or, in tests, an authoritative server) to query, in order. Queries
    /// go over UDP, with TCP on truncation.
    pub servers: Vec<SocketAddr>,
    /// The trust anchor. Validation is always on.
    pub trust_anchor: TrustAnchor,
    /// Time for one attempt.
    pub timeout: Duration,
    /// Attempts per query.
    pub attempts: usize,
}

impl DnsConfig {
    /// Queries `servers` with the IANA root anchor and default timeouts.
    pub fn new(servers: Vec<SocketAddr>) -> DnsConfig {
        DnsConfig {
            servers,
            trust_anchor: TrustAnchor::IanaRoot,
            timeout: DEFAULT_QUERY_TIMEOUT,
            attempts: DEFAULT_QUERY_ATTEMPTS,
        }
    }

    /// The system's DNS servers: the `nameserver` lines of `/etc/resolv.conf`, in order, each
    /// on port 53. Empty when the file cannot be read or names no server (the caller chooses
    /// the fallback: [`Dns::new`] refuses an empty list).
    pub fn system_servers() -> Vec<SocketAddr> {
        resolv_conf_servers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
    }

    /// Replaces the trust anchor.
    pub fn trust_anchor(mut self, anchor: TrustAnchor) -> DnsConfig {
        self.trust_anchor = anchor;
        self
    }

    /// Replaces the per-attempt timeout and the number of attempts.
    pub fn timeouts(mut self, timeout: Duration, attempts: usize) -> DnsConfig {
        self.timeout = timeout;
        self.attempts = attempts.max(1);
        self
    }
}

/// The `nameserver` addresses of a `resolv.conf` text, port 53; lines that do not parse are
/// skipped.
fn resolv_conf_servers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// A configuration error: the resolver cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No server address was given.
    #[error("no dns server configured")]
    NoServers,
    /// The trust-anchor file could not be read.
    #[error("cannot read trust anchor file {path}: {error}")]
    AnchorIo {
        /// The file.
        path: PathBuf,
        /// The error: in the message, not also a source (a chain would say it twice).
        error: std::io::Error,
    },
    /// The trust-anchor file is larger than [`TRUST_ANCHOR_FILE_MAX_LEN`].
    #[error("trust anchor file is over {TRUST_ANCHOR_FILE_MAX_LEN} octets")]
    AnchorTooLarge,
    /// The trust anchor does not parse as DNSKEY lines.
    #[error("trust anchor is not a list of dnskey lines: {0}")]
    AnchorSyntax(String),
    /// The trust anchor holds no key.
    #[error("trust anchor holds no dnskey")]
    AnchorEmpty,
    /// hickory refused the configuration.
    #[error("dns resolver configuration refused: {0}")]
    Resolver(String),
}

/// Why a lookup gave no usable answer for now: a temporary failure, retried later
/// (`spec/dns-record.md` §6.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemporaryFailure {
    /// No server answered in time.
    #[error("dns lookup timed out")]
    Timeout,
    /// A server answered with an error code (SERVFAIL, REFUSED, ...).
    #[error("dns server answered {0}")]
    ServerError(String),
    /// A transport or protocol error.
    #[error("dns lookup failed: {0}")]
    Other(String),
}

/// The answer to one query, with its proof (`spec/discovery.md` §3).
#[must_use = "an answer carries the proof that decides whether it may be used"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    /// Records of the asked type exist.
    Found {
        /// The records' data.
        value: T,
        /// Their DNSSEC status: the weakest among the records and the CNAMEs that led to
        /// them; never [`DnssecProof::Bogus`] (a bogus answer is [`Answer::Bogus`]).
        proof: DnssecProof,
        /// The smallest TTL among them, in seconds.
        ttl: u32,
    },
    /// No record of the asked type: NXDOMAIN (`nxdomain`) or NODATA.
    Absent {
        /// Whether the name does not exist at all.
        nxdomain: bool,
        /// The DNSSEC status of the denial (the proof of the authority records: NSEC, NSEC3,
        /// SOA), [`DnssecProof::Indeterminate`] when the answer carried none.
        proof: DnssecProof,
        /// The negative TTL (RFC 2308), in seconds.
        ttl: u32,
    },
    /// DNSSEC validation failed. Never used; a temporary failure.
    Bogus,
    /// No answer for now (timeout, server failure).
    Failed(TemporaryFailure),
}

impl<T> Answer<T> {
    /// The proof of this answer: bogus for [`Answer::Bogus`], indeterminate for a failure.
    pub fn proof(&self) -> DnssecProof {
        match self {
            Answer::Found { proof, .. } | Answer::Absent { proof, .. } => *proof,
            Answer::Bogus => DnssecProof::Bogus,
            Answer::Failed(_) => DnssecProof::Indeterminate,
        }
    }

    /// Maps the value of a [`Answer::Found`].
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        match self {
            Answer::Found { value, proof, ttl } => Answer::Found { value: f(value), proof, ttl },
            Answer::Absent { nxdomain, proof, ttl } => Answer::Absent { nxdomain, proof, ttl },
            Answer::Bogus => Answer::Bogus,
            Answer::Failed(e) => Answer::Failed(e),
        }
    }
}

/// The character-strings of each TXT record of an RRset.
pub type TxtRrset = Vec<Vec<Vec<u8>>>;

/// A validating DNS client: every answer comes back as an [`Answer`] with its proof.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns").finish_non_exhaustive()
    }
}

fn load_anchor(anchor: &TrustAnchor) -> Result<Option<TrustAnchors>, ConfigError> {
    let text = match anchor {
        TrustAnchor::IanaRoot => return Ok(None),
        TrustAnchor::Text(t) => t.clone(),
        TrustAnchor::File(path) => {
            let io = |error| ConfigError::AnchorIo { path: path.clone(), error };
            let len = std::fs::metadata(path).map_err(io)?.len();
            if len > TRUST_ANCHOR_FILE_MAX_LEN {
                return Err(ConfigError::AnchorTooLarge);
            }
            std::fs::read_to_string(path).map_err(io)?
        }
    };
    let anchors: TrustAnchors =
        text.parse().map_err(|e| ConfigError::AnchorSyntax(format!("{e}")))?;
    if anchors.is_empty() {
        return Err(ConfigError::AnchorEmpty);
    }
    Ok(Some(anchors))
}

impl Dns {
    /// Builds the client. Must be called within a tokio runtime.
    pub fn new(config: &DnsConfig) -> Result<Dns, ConfigError> {
        if config.servers.is_empty() {
            return Err(ConfigError::NoServers);
        }
        let servers = config
            .servers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = s.port();
                NameServerConfig::new(s.ip(), true, vec![udp, tcp])
            })
            .collect();
        let mut opts = ResolverOpts::default();
        opts.timeout = config.timeout;
        opts.attempts = config.attempts.max(1);
        opts.validate = true;
        opts.ndots = 0;
        opts.cache_size = 1024;
        let mut builder = Resolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
        .with_options(opts);
        if let Some(anchors) = load_anchor(&config.trust_anchor)? {
            builder = builder.with_trust_anchor(Arc::new(anchors));
        }
        let resolver = builder.build().map_err(|e| ConfigError::Resolver(e.to_string()))?;
        Ok(Dns { resolver })
    }

    /// Forgets every cached answer (hickory's response cache), so the next lookups go to the
    /// servers again. hickory's cache of RRSIG verifications stays: a fully cold client is a
    /// new [`Dns`].
    pub fn clear_cache(&self) {
        self.resolver.clear_cache();
    }

    async fn query(&self, name: &str, rtype: RecordType) -> Answer<Vec<RR>> {
        let fqdn = if name.ends_with('.') { name.to_owned() } else { format!("{name}.") };
        match self.resolver.lookup(fqdn.as_str(), rtype).await {
            Ok(lookup) => answer_of(lookup.answers(), rtype),
            Err(e) => classify_error(&e),
        }
    }

    /// The TXT RRset at `name` (absolute or not: a final dot is added).
    pub async fn txt(&self, name: &str) -> Answer<TxtRrset> {
        self.query(name, RecordType::TXT).await.map(|records| {
            records
                .into_iter()
                .filter_map(|r| match r.data {
                    RData::TXT(t) => Some(t.txt_data.iter().map(|s| s.to_vec()).collect()),
                    _ => None,
                })
                .collect()
        })
    }

    /// The MX RRset of `domain`, sorted by preference; hosts that are not valid domain names
    /// (and the null MX `.`, RFC 7505) are dropped.
    pub async fn mx(&self, domain: &Domain) -> Answer<Vec<(u16, Domain)>> {
        self.query(domain.as_str(), RecordType::MX).await.map(|records| {
            let mut v: Vec<(u16, Domain)> = records
                .into_iter()
                .filter_map(|r| match r.data {
                    RData::MX(mx) => Domain::parse(mx.exchange.to_ascii().trim_end_matches('.'))
                        .ok()
                        .map(|d| (mx.preference, d)),
                    _ => None,
                })
                .collect();
            v.sort_by_key(|(p, _)| *p);
            v
        })
    }

    /// The IPv4 then IPv6 addresses of `host`: found if either query finds any; the proof is
    /// the weakest of the two answers.
    pub async fn addresses(&self, host: &Domain) -> Answer<Vec<IpAddr>> {
        let a = self.query(host.as_str(), RecordType::A).await;
        let aaaa = self.query(host.as_str(), RecordType::AAAA).await;
        let ips = |ans: &Answer<Vec<RR>>| -> Vec<IpAddr> {
            match ans {
                Answer::Found { value, .. } => value
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            }
        };
        match (&a, &aaaa) {
            (Answer::Bogus, _) | (_, Answer::Bogus) => Answer::Bogus,
            (Answer::Failed(e), _) | (_, Answer::Failed(e)) => Answer::Failed(e.clone()),
            _ => {
                let mut value = ips(&a);
                value.extend(ips(&aaaa));
                let proof = a.proof().weakest(aaaa.proof());
                if value.is_empty() {
                    let nxdomain = matches!(a, Answer::Absent { nxdomain: true, .. });
                    Answer::Absent { nxdomain, proof, ttl: 0 }
                } else {
                    let ttl = [&a, &aaaa]
                        .iter()
                        .filter_map(|x| match x {
                            Answer::Found { ttl, .. } => Some(*ttl),
                            _ => None,
                        })
                        .min()
                        .unwrap_or(0);
                    Answer::Found { value, proof, ttl }
                }
            }
        }
    }
}

/// The answer a successful lookup gives for `rtype`: its records with their weakest proof. A
/// bogus proof on any record (hickory may hand one back inside an answer rather than as an
/// error) makes the whole answer [`Answer::Bogus`], as a bogus error does: a bogus answer is
/// never used, whatever path it took (`spec/discovery.md` §3).
fn answer_of(answers: &[RR], rtype: RecordType) -> Answer<Vec<RR>> {
    let records: Vec<RR> = answers.iter().filter(|r| r.record_type() == rtype).cloned().collect();
    // Every record of the answer counts, CNAMEs leading to the records included.
    let proof = weakest_of(answers.iter().map(|r| r.proof));
    if proof == DnssecProof::Bogus {
        return Answer::Bogus;
    }
    if records.is_empty() {
        // Only CNAMEs (or nothing) answered: no record of this type.
        return Answer::Absent { nxdomain: false, proof, ttl: 0 };
    }
    let ttl = records.iter().map(|r| r.ttl).min().unwrap_or(0);
    Answer::Found { value: records, proof, ttl }
}

fn weakest_of(proofs: impl Iterator<Item = hickory_resolver::proto::dnssec::Proof>) -> DnssecProof {
    let mut out: Option<DnssecProof> = None;
    for p in proofs {
        let p = DnssecProof::from_hickory(p);
        out = Some(out.map_or(p, |o| o.weakest(p)));
    }
    out.unwrap_or(DnssecProof::Indeterminate)
}

fn classify_error<T>(e: &NetError) -> Answer<T> {
    match e {
        NetError::Dns(DnsError::DnssecBogus) => Answer::Bogus,
        NetError::Dns(DnsError::NoRecordsFound(nr)) => {
            let proof = match &nr.authorities {
                Some(auth) if !auth.is_empty() => weakest_of(auth.iter().map(|r| r.proof)),
                _ => DnssecProof::Indeterminate,
            };
            if proof == DnssecProof::Bogus {
                return Answer::Bogus;
            }
            Answer::Absent { nxdomain: e.is_nx_domain(), proof, ttl: nr.negative_ttl.unwrap_or(0) }
        }
        NetError::Dns(DnsError::Nsec { response, proof, .. }) => {
            let proof = DnssecProof::from_hickory(*proof);
            if proof == DnssecProof::Bogus {
                return Answer::Bogus;
            }
            let nxdomain =
                response.response_code == hickory_resolver::proto::op::ResponseCode::NXDomain;
            Answer::Absent { nxdomain, proof, ttl: 0 }
        }
        NetError::Dns(DnsError::ResponseCode(code)) => {
            Answer::Failed(TemporaryFailure::ServerError(code.to_string()))
        }
        NetError::Timeout => Answer::Failed(TemporaryFailure::Timeout),
        NetError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            Answer::Failed(TemporaryFailure::Timeout)
        }
        other => {
            let text = other.to_string();
            if text.contains("timed out") || text.contains("timeout") {
                Answer::Failed(TemporaryFailure::Timeout)
            } else {
                Answer::Failed(TemporaryFailure::Other(text))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::dnssec::Proof;
    use hickory_resolver::proto::rr::Name;
    use hickory_resolver::proto::rr::RecordType::TXT;

    #[test]
    fn resolv_conf_nameservers_in_order_on_port_53() {
        let text = "# comment\nsearch example.test\nnameserver 192.0.2.1\n  nameserver  2001:db8::53 \n\
                    nameserver not-an-address\noptions edns0\nnameserver 192.0.2.2\n";
        let want: Vec<SocketAddr> = ["192.0.2.1:53", "[2001:db8::53]:53", "192.0.2.2:53"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(resolv_conf_servers(text), want);
        assert!(resolv_conf_servers("search example.test\n").is_empty());
    }

    fn txt(name: &str, ttl: u32, proof: Proof) -> RR {
        let rdata = RData::TXT(hickory_resolver::proto::rr::rdata::TXT::new(vec!["ver=1".into()]));
        let mut r = RR::from_rdata(Name::from_ascii(name).unwrap(), ttl, rdata);
        r.proof = proof;
        r
    }

    fn cname(name: &str, to: &str, proof: Proof) -> RR {
        let target = Name::from_ascii(to).unwrap();
        let rdata = RData::CNAME(hickory_resolver::proto::rr::rdata::CNAME(target));
        let mut r = RR::from_rdata(Name::from_ascii(name).unwrap(), 60, rdata);
        r.proof = proof;
        r
    }

    #[test]
    fn hickory_proofs_map_one_to_one() {
        for (h, ours) in [
            (Proof::Secure, DnssecProof::Secure),
            (Proof::Insecure, DnssecProof::Insecure),
            (Proof::Bogus, DnssecProof::Bogus),
            (Proof::Indeterminate, DnssecProof::Indeterminate),
        ] {
            assert_eq!(DnssecProof::from_hickory(h), ours);
            assert_eq!(weakest_of([h].into_iter()), ours);
        }
        assert_eq!(weakest_of(std::iter::empty()), DnssecProof::Indeterminate);
        assert_eq!(weakest_of([Proof::Secure, Proof::Insecure].into_iter()), DnssecProof::Insecure);
        assert_eq!(weakest_of([Proof::Bogus, Proof::Secure].into_iter()), DnssecProof::Bogus);
    }

    #[test]
    fn an_answer_with_any_bogus_record_is_bogus_never_insecure() {
        let n = "_dx.mail.test.";
        let secure = answer_of(&[txt(n, 300, Proof::Secure), txt(n, 100, Proof::Secure)], TXT);
        assert!(matches!(secure, Answer::Found { proof: DnssecProof::Secure, ttl: 100, .. }));
        let mixed = answer_of(&[txt(n, 300, Proof::Secure), txt(n, 300, Proof::Insecure)], TXT);
        assert_eq!(mixed.proof(), DnssecProof::Insecure);
        for bogus in [
            vec![txt(n, 300, Proof::Secure), txt(n, 300, Proof::Bogus)],
            vec![txt(n, 300, Proof::Bogus)],
            // A secure record reached through a bogus CNAME.
            vec![cname("_dx.a.test.", n, Proof::Bogus), txt(n, 300, Proof::Secure)],
            // Only a bogus CNAME: not a proof of absence.
            vec![cname("_dx.a.test.", n, Proof::Bogus)],
        ] {
            assert!(matches!(answer_of(&bogus, TXT), Answer::Bogus));
        }
        let absent = answer_of(&[cname("_dx.a.test.", n, Proof::Insecure)], TXT);
        assert!(matches!(absent, Answer::Absent { proof: DnssecProof::Insecure, .. }));
    }
}
