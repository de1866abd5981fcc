//! The doctor (`spec/dimed.md` §7): `dimed doctor --config dimed.toml` checks a domain from
//! its server's side (the configuration, the published record against the org key and the
//! certificate, DNSSEC, the delivery hosts over QUIC and TLS, the certificate's expiry, the
//! store, free disk); `dime doctor DOMAIN` checks what a sender sees of it from outside. Each
//! check is one line with its status (`ok`, `warn`, `fail`, `skip`) and, when it is not ok,
//! what to do; the exit status is non-zero when a check failed.

use anyhow::Context as _;
use dime_core::Domain;
use dime_core::crypto::{CryptoProvider, default_provider};
use dime_dmtp::SignetName;
use dime_net::{NetError, QuicClient, TlsConnection, TlsProvider};
use dime_resolver::signets::validate_org;
use dime_resolver::tls::{CertPolicy, DimeCertVerifier, WebPki};
use dime_resolver::{
    Answer, DeliveryHost, Dns, DnsConfig, DnssecProof, RecordLookup, RecordOutcome, TrustAnchor,
    delivery_hosts, lookup_record,
};
use dime_server::config::Config;
use dime_server::outbound::dmtp::DMTP_PORT;
use dime_server::setup::{files, read_org_keys};
use dime_signet::Signet;
use dime_signet::record::{Record, TlsCheckError, check_tls, tls_value};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde::Serialize;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest a probe of one delivery host over one transport may take, connecting, the
/// handshake and SGNT included (`spec/dimed.md` §7).
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// A certificate expiring sooner than this is a warning (`spec/dimed.md` §7).
pub(crate) const CERT_WARN_DAYS: i64 = 30;
/// Free space on the data directory's file system under this is a warning
/// (`spec/dimed.md` §7).
pub(crate) const DISK_WARN_BELOW: u64 = 1 << 30;
/// Free space under this is a failure (`spec/dimed.md` §7).
pub(crate) const DISK_FAIL_BELOW: u64 = 100 << 20;

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// As it should be.
    Ok,
    /// Works, but needs attention.
    Warn,
    /// Broken: the exit status is non-zero.
    Fail,
    /// Not checked: an earlier check it depends on failed.
    Skip,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Finding {
    /// The check's name (`resolver`, `dnssec`, `record`, ...).
    pub(crate) check: &'static str,
    /// Its outcome.
    pub(crate) status: Status,
    /// What was found and, when not ok, what to do.
    pub(crate) detail: String,
}

#[derive(Debug, Default)]
struct Report {
    findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, check: &'static str, status: Status, detail: impl Into<String>) {
        self.findings.push(Finding { check, status, detail: detail.into() });
    }
    fn ok(&mut self, check: &'static str, detail: impl Into<String>) {
        self.add(check, Status::Ok, detail);
    }
    fn warn(&mut self, check: &'static str, detail: impl Into<String>) {
        self.add(check, Status::Warn, detail);
    }
    fn fail(&mut self, check: &'static str, detail: impl Into<String>) {
        self.add(check, Status::Fail, detail);
    }
    fn skip(&mut self, check: &'static str, detail: impl Into<String>) {
        self.add(check, Status::Skip, detail);
    }

    /// Prints the report (text lines, or one JSON array) and gives the error that makes the
    /// exit status non-zero when a check failed.
    fn finish(self, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
        if json {
            writeln!(out, "{}", serde_json::to_string(&self.findings)?)?;
        } else {
            for f in &self.findings {
                writeln!(out, "{:<4}  {:<11} {}", f.status.as_str(), f.check, f.detail)?;
            }
        }
        out.flush()?;
        let failed = self.findings.iter().filter(|f| f.status == Status::Fail).count();
        if failed > 0 {
            anyhow::bail!("doctor: {failed} of {} checks failed", self.findings.len());
        }
        Ok(())
    }
}

/// `dimed doctor --config FILE [--json]`.
pub(crate) fn dimed_doctor(config: &Path, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut r = Report::default();
    let c = match Config::load(config) {
        Ok(c) => {
            r.ok("config", format!("{} read: domain {}", config.display(), c.domain));
            c
        }
        Err(e) => {
            r.fail("config", format!("{e}: fix the file (spec/dimed.md §2)"));
            return r.finish(json, out);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(server_checks(&mut r, &c))?;
    store_check(&mut r, &c);
    disk_check(&mut r, &c.data_dir);
    r.finish(json, out)
}

/// `dime doctor DOMAIN`.
pub(crate) fn dime_doctor(a: crate::cli::DoctorArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let domain: Domain = a.domain.parse().context("not a valid domain")?;
    let servers = match a.resolver {
        Some(s) => vec![s],
        None => DnsConfig::system_servers(),
    };
    let anchor = a.trust_anchor.map_or(TrustAnchor::IanaRoot, TrustAnchor::File);
    let mut r = Report::default();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let Some(dns) = resolver_check(&mut r, servers, anchor, None).await else {
            return anyhow::Ok(());
        };
        let Some(record) = record_checks(&mut r, &dns, &domain, a.strict).await else {
            return Ok(());
        };
        let webpki = WebPki::load(crate::tls_provider(), None).context("the webpki roots")?;
        let probe = Prober {
            crypto: default_provider(),
            tls_provider: crate::tls_provider(),
            webpki,
            domain: domain.clone(),
            record,
            quic: true,
            tls: true,
            from_outside: true,
        };
        let seen = host_checks(&mut r, &dns, &probe).await;
        if seen.is_empty() {
            r.skip("certificate", "not checked: no delivery host answered");
        }
        for (host, der) in seen {
            expiry_check(&mut r, &format!("{host}'s certificate"), &der, now_secs());
        }
        Ok(())
    })?;
    r.finish(a.json, out)
}

/// The checks of `dimed doctor` that need DNS and the network.
async fn server_checks(r: &mut Report, c: &Config) -> anyhow::Result<()> {
    let p = default_provider();
    let servers =
        if c.dns.servers.is_empty() { DnsConfig::system_servers() } else { c.dns.servers.clone() };
    let anchor = c.dns.trust_anchor.clone().map_or(TrustAnchor::IanaRoot, TrustAnchor::File);
    let cert_path = c.secret_path(files::TLS_CERT);
    let cert = read_cert(&cert_path);
    let dns = resolver_check(r, servers, anchor, c.dns.timeout_secs).await;
    let record = match &dns {
        Some(dns) => record_checks(r, dns, &c.domain, c.dns.strict).await,
        None => None,
    };
    match &record {
        Some(record) => {
            org_key_check(r, p, c, &record.record);
            match &cert {
                Ok(der) => pin_check(r, p, c, &record.record, &cert_path, der),
                Err(e) => r.fail("tls-pin", format!("{e:#}: dimed init writes it")),
            }
        }
        None => {
            r.skip("org-key", "not checked: no usable _dx record (see above)");
            r.skip("tls-pin", "not checked: no usable _dx record (see above)");
        }
    }
    match (&dns, record) {
        (Some(dns), Some(record)) => {
            let webpki = WebPki::load(crate::tls_provider(), c.dns.extra_ca.as_deref())
                .context("dns.extra_ca")?;
            let probe = Prober {
                crypto: p,
                tls_provider: crate::tls_provider(),
                webpki,
                domain: c.domain.clone(),
                record,
                quic: c.listen.quic.is_some(),
                tls: c.listen.tls.is_some(),
                from_outside: false,
            };
            host_checks(r, dns, &probe).await;
        }
        _ => r.skip("host", "not checked: no usable _dx record (see above)"),
    }
    match &cert {
        Ok(der) => expiry_check(r, &cert_path.display().to_string(), der, now_secs()),
        Err(e) => r.fail("certificate", format!("{e:#}: dimed init writes it")),
    }
    Ok(())
}

/// Seconds since the Unix epoch, now.
fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Builds the validating client and checks that its servers validate at all: the root zone's
/// answer must be secure under the trust anchor. A resolver that strips DNSSEC records, or a
/// trust anchor that is not the root's key, makes every answer bogus; said here, it is not
/// blamed on the domain's zone. `None` when nothing further can be checked.
async fn resolver_check(
    r: &mut Report,
    servers: Vec<SocketAddr>,
    anchor: TrustAnchor,
    timeout_secs: Option<u64>,
) -> Option<Dns> {
    let shown = servers.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(" ");
    let anchor_shown = match &anchor {
        TrustAnchor::IanaRoot => "the iana root keys".to_owned(),
        TrustAnchor::File(p) => p.display().to_string(),
        TrustAnchor::Text(_) => "the given keys".to_owned(),
    };
    let mut config = DnsConfig::new(servers).trust_anchor(anchor);
    if let Some(t) = timeout_secs {
        config = config.timeouts(Duration::from_secs(t.max(1)), 2);
    }
    let dns = match Dns::new(&config) {
        Ok(d) => d,
        Err(e) => {
            r.fail(
                "resolver",
                format!("{e}: name a resolver (dns.servers, or --resolver) and its trust anchor"),
            );
            return None;
        }
    };
    let root = dns.txt(".").await;
    let fix = "use a DNSSEC-aware resolver in dns.servers (one that returns signatures), and a \
               trust anchor that holds the root zone's key";
    match root {
        Answer::Failed(e) => {
            r.fail("resolver", format!("{shown}: {e}: check that dns.servers answer"));
            return None;
        }
        _ if root.proof() == DnssecProof::Secure => r.ok(
            "resolver",
            format!("{shown} validates: the root zone is dnssec-secure under {anchor_shown}"),
        ),
        _ => {
            r.fail(
                "resolver",
                format!(
                    "{shown} does not validate: the root zone's answer is {} under \
                     {anchor_shown}, so every answer would be: {fix}",
                    root.proof()
                ),
            );
            r.skip("dnssec", "not checked: the resolver does not validate (see resolver)");
            return None;
        }
    }
    Some(dns)
}

/// The `_dx` record of `domain` and its DNSSEC proof. Gives the record and how it was
/// proven when senders may use it (secure, or insecure: the CA-TLS stand-in).
async fn record_checks(
    r: &mut Report,
    dns: &Dns,
    domain: &Domain,
    strict: bool,
) -> Option<ProvenRecord> {
    let lookup: RecordLookup = lookup_record(dns, domain).await;
    match &lookup.outcome {
        RecordOutcome::Record { record, published_by, .. } => {
            let name = format!("_dx.{published_by}");
            match lookup.proof {
                DnssecProof::Secure => {
                    r.ok("dnssec", format!("{name} is dnssec-secure"));
                }
                DnssecProof::Insecure => {
                    let detail = format!(
                        "{name} is in an unsigned zone (insecure: provably unsigned): sign the zone and \
                         publish its DS in the parent; until then senders trust the record only \
                         over a CA-valid certificate, and strict senders refuse it"
                    );
                    if strict {
                        r.fail("dnssec", format!("{detail} (dns.strict is set)"));
                    } else {
                        r.warn("dnssec", detail);
                    }
                }
                p => {
                    r.fail("dnssec", format!("{name}: no dnssec status ({p}): check the zone"));
                    r.skip("record", "not checked: no dnssec status");
                    return None;
                }
            }
            r.ok("record", format!("{name} is published: {record}"));
            Some(ProvenRecord { record: record.clone(), proof: lookup.proof })
        }
        RecordOutcome::NoRecord { .. } => {
            r.ok("dnssec", format!("the absence of _dx.{domain} is {}", lookup.proof));
            r.fail(
                "record",
                format!(
                    "no _dx record for {domain}: publish the record of dimed init \
                     (config/{}) in the zone",
                    files::RECORD_ZONE
                ),
            );
            None
        }
        RecordOutcome::Bogus { at, broken: None } => {
            r.fail(
                "dnssec",
                format!(
                    "bogus: the answer for _dx.{at} fails DNSSEC validation (a bad or expired \
                     signature, or a DS in the parent that matches no key of the zone): \
                     re-sign the zone of {at} and check its DS; senders defer until it \
                     validates"
                ),
            );
            r.skip("record", "not checked: the answer is bogus");
            None
        }
        RecordOutcome::Bogus { at, broken: Some(e) } => {
            r.ok("dnssec", format!("_dx.{at} is {}", lookup.proof));
            r.fail(
                "record",
                format!(
                    "the record at _dx.{at} is broken ({e}): publish the record of dimed init \
                     (config/{})",
                    files::RECORD_ZONE
                ),
            );
            None
        }
        RecordOutcome::Failed { at, reason } => {
            r.fail(
                "dnssec",
                format!("no answer for _dx.{at}: {reason}: check the zone's name servers"),
            );
            r.skip("record", "not checked: no answer");
            None
        }
    }
}

/// A published record and its proof.
#[derive(Debug, Clone)]
struct ProvenRecord {
    record: Arc<Record>,
    proof: DnssecProof,
}

/// The published record names the org key: `config/org.signet` validates under one of its
/// POKs; a record that differs from `config/dx-record.txt` is a warning.
fn org_key_check(r: &mut Report, p: &CryptoProvider, c: &Config, published: &Record) {
    let path = c.secret_path(files::ORG_SIGNET);
    let signet = match std::fs::read(&path)
        .with_context(|| format!("cannot read {}", path.display()))
        .and_then(|b| Signet::decode_any(&b).with_context(|| path.display().to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            r.fail("org-key", format!("{e:#}: dimed init writes it"));
            return;
        }
    };
    match validate_org(p, published, &c.domain, signet) {
        Ok(v) => {
            let local = c.secret_path(files::RECORD);
            let same = std::fs::read_to_string(&local)
                .ok()
                .and_then(|t| Record::parse(t.trim()).ok())
                .is_some_and(|l| &l == published);
            let detail = format!(
                "the published record names the org key (pok {} of the record; org signet {})",
                v.pok_index, v.fingerprint
            );
            if same {
                r.ok("org-key", detail);
            } else {
                r.warn(
                    "org-key",
                    format!(
                        "{detail}, but it differs from {}: publish that file's record, or \
                         update the file",
                        local.display()
                    ),
                );
            }
        }
        Err(e) => r.fail(
            "org-key",
            format!(
                "{} does not validate under the published record ({e}): the record names \
                 another org key; publish config/{}",
                path.display(),
                files::RECORD_ZONE
            ),
        ),
    }
}

/// The certificate dimed serves matches a `tls=` pin of the published record.
fn pin_check(
    r: &mut Report,
    p: &CryptoProvider,
    c: &Config,
    published: &Record,
    cert_path: &Path,
    der: &[u8],
) {
    match check_tls(p, published, der) {
        Ok(m) => r.ok(
            "tls-pin",
            format!(
                "{} matches tls= pin {} of the published record (signed by pok {})",
                cert_path.display(),
                m.tls_index,
                m.pok_index
            ),
        ),
        Err(TlsCheckError::NoPins) => r.warn(
            "tls-pin",
            format!(
                "the published record has no tls= pin: senders then need a CA-valid \
                 certificate for {}; publish a record with the pin of {}",
                c.host,
                cert_path.display()
            ),
        ),
        Err(TlsCheckError::NoMatch) => {
            let published_pins =
                published.tls.iter().map(|t| format!("tls={t}")).collect::<Vec<_>>().join(" ");
            // The pin to publish, when the org key can be read without asking.
            let fix = match read_org_keys(p, c, None) {
                Ok(keys) => format!("publish tls={}", tls_value(p, keys.pok_seed(), der)),
                Err(_) => "publish a tls= pin of it signed by the org key".to_owned(),
            };
            r.fail(
                "tls-pin",
                format!(
                    "{} matches no tls= pin of the published record ({published_pins}): the \
                     pin is stale (another certificate); {fix}",
                    cert_path.display()
                ),
            );
        }
    }
}

/// The first certificate of a PEM file, DER.
fn read_cert(path: &Path) -> anyhow::Result<Vec<u8>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let cert = CertificateDer::pem_slice_iter(&pem)
        .next()
        .with_context(|| format!("{} holds no certificate", path.display()))?
        .with_context(|| format!("{} is not a pem certificate", path.display()))?;
    Ok(cert.to_vec())
}

/// The certificate's expiry: fail when expired, warn under [`CERT_WARN_DAYS`].
fn expiry_check(r: &mut Report, what: &str, der: &[u8], now: i64) {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let not_after = cert.validity().not_after;
            let (status, detail) = expiry_status(not_after.timestamp(), now);
            r.add("certificate", status, format!("{what} {detail} ({not_after})"));
        }
        Err(e) => r.fail("certificate", format!("{what} does not parse as x.509: {e}")),
    }
}

/// The status of a certificate valid until `not_after`, at `now` (both Unix seconds).
fn expiry_status(not_after: i64, now: i64) -> (Status, String) {
    let days = not_after.saturating_sub(now).div_euclid(86_400);
    if not_after <= now {
        (
            Status::Fail,
            "has expired: renew it and publish the new certificate's tls= pin".to_owned(),
        )
    } else if days < CERT_WARN_DAYS {
        (
            Status::Warn,
            format!(
                "expires in {days} days: renew it and publish the new tls= pin beside the old \
                 one before then"
            ),
        )
    } else {
        (Status::Ok, format!("is valid for {days} more days"))
    }
}

/// Probes the delivery hosts of a record.
struct Prober {
    crypto: &'static CryptoProvider,
    tls_provider: TlsProvider,
    webpki: WebPki,
    domain: Domain,
    record: ProvenRecord,
    /// Probe over QUIC.
    quic: bool,
    /// Probe over TLS.
    tls: bool,
    /// A transport that does not answer where the other does is a warning (a sender falls
    /// back), not a failure; from inside, every configured listener must answer.
    from_outside: bool,
}

/// A certificate verifier that keeps the certificate it was shown, and lets the record's
/// verifier decide.
#[derive(Debug)]
struct Keeping {
    inner: Arc<DimeCertVerifier>,
    seen: Mutex<Option<Vec<u8>>>,
}

impl ServerCertVerifier for Keeping {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut g) = self.seen.lock() {
            *g = Some(end_entity.to_vec());
        }
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Quic,
    Tls,
}

impl Transport {
    fn check(self) -> &'static str {
        match self {
            Transport::Quic => "quic",
            Transport::Tls => "tls",
        }
    }
}

impl Prober {
    /// A client configuration whose verifier is the record's (its pins when the record is
    /// secure, the WebPKI and the pins when it is insecure: what a sender uses) and keeps the
    /// certificate.
    fn client_config(&self) -> anyhow::Result<(rustls::ClientConfig, Arc<Keeping>)> {
        let policy = if self.record.proof == DnssecProof::Secure {
            CertPolicy::SecureRecord(self.record.record.clone())
        } else {
            CertPolicy::InsecureRecordCaTls(self.record.record.clone())
        };
        let keeping = Arc::new(Keeping {
            inner: Arc::new(DimeCertVerifier::new(policy, &self.webpki, self.crypto)),
            seen: Mutex::new(None),
        });
        let config = dime_net::client_tls_config(Arc::clone(&self.tls_provider), keeping.clone())?;
        Ok((config, keeping))
    }

    /// One probe: the handshake (the certificate checked as a sender checks it), then SGNT for
    /// the org signet, which must validate under the record; the connection closed cleanly.
    async fn probe(
        &self,
        transport: Transport,
        server_name: &str,
        addr: SocketAddr,
    ) -> (Result<String, String>, Option<Vec<u8>>) {
        let (config, keeping) = match self.client_config() {
            Ok(c) => c,
            Err(e) => return (Err(format!("{e:#}")), None),
        };
        let name = SignetName { domain: self.domain.clone(), mailbox: None };
        let run = async {
            match transport {
                Transport::Quic => {
                    let client = QuicClient::for_peer(addr, config, self.domain.clone())?;
                    let conn = client.connect(addr, server_name).await?;
                    let r = conn.lookup_signet(&name, None).await;
                    conn.close();
                    r
                }
                Transport::Tls => {
                    let mut conn =
                        TlsConnection::connect(addr, server_name, Arc::new(config), &self.domain)
                            .await?;
                    let r = conn.lookup_signet(&name, None).await;
                    let _ = conn.quit().await;
                    r
                }
            }
        };
        let answer: Result<Vec<u8>, String> = match tokio::time::timeout(PROBE_TIMEOUT, run).await {
            Ok(Ok(b)) => Ok(b),
            Ok(Err(e)) => Err(explain(&e, self.record.proof)),
            Err(_) => Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
        };
        let seen = keeping.seen.lock().ok().and_then(|g| g.clone());
        let result = answer.and_then(|bytes| {
            let signet = Signet::decode_any(&bytes)
                .map_err(|e| format!("it answered SGNT with a signet that does not parse: {e}"))?;
            let v = validate_org(self.crypto, &self.record.record, &self.domain, signet).map_err(
                |e| {
                    format!(
                        "its org signet does not validate under the published record ({e}): \
                         publish the record of this org key"
                    )
                },
            )?;
            Ok(format!(
                "answers DMTP: the certificate is the record's, the org signet {} validates \
                 under pok {}",
                v.fingerprint, v.pok_index
            ))
        });
        (result, seen)
    }
}

/// What a failed probe means and what to do.
fn explain(e: &NetError, record_proof: DnssecProof) -> String {
    let text = e.to_string();
    if text.contains("tls= pin") {
        format!(
            "{text}: the certificate it serves is not the one the record pins; publish its tls= \
             pin (or serve the pinned certificate)"
        )
    } else if text.contains("certificate") && record_proof != DnssecProof::Secure {
        format!(
            "{text}: senders refuse the certificate it serves: with an unsigned zone a sender \
             needs a CA-valid certificate for the host; sign the zone (then the tls= pin \
             suffices) or serve a CA-issued certificate"
        )
    } else if text.contains("certificate") {
        format!("{text}: senders refuse the certificate it serves")
    } else if matches!(e, NetError::HandshakeTimeout) {
        format!("{text}: no answer; is dimed running, and the port open?")
    } else if matches!(e, NetError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused) {
        format!("{text}: nothing listens there; is dimed running?")
    } else {
        text
    }
}

/// The delivery hosts resolve and answer DMTP over QUIC and TLS. Gives, for each host that
/// answered, the certificate it showed.
async fn host_checks(r: &mut Report, dns: &Dns, probe: &Prober) -> Vec<(String, Vec<u8>)> {
    let hosts: Vec<DeliveryHost> = delivery_hosts(dns, &probe.domain, &probe.record.record).await;
    let mut seen = Vec::new();
    for h in hosts {
        let port = h.host.port.unwrap_or(DMTP_PORT);
        let name = format!("{}:{port} (from {})", h.host.name, h.source.as_str());
        let addrs = match h.trusted_addresses() {
            Some([]) => {
                r.fail("host", format!("{name} has no address: publish its A or AAAA record"));
                continue;
            }
            Some(a) => a.to_vec(),
            None => {
                r.fail(
                    "host",
                    format!(
                        "{name}: its address is {} (not trustworthy): publish its A or AAAA \
                         record in a zone that validates",
                        h.proof()
                    ),
                );
                continue;
            }
        };
        let shown = addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ");
        r.ok("host", format!("{name} resolves to {shown} ({})", h.proof()));
        let mut kept: Option<Vec<u8>> = None;
        for ip in addrs {
            let addr = SocketAddr::new(ip, port);
            let mut results = Vec::new();
            for (on, t) in [(probe.quic, Transport::Quic), (probe.tls, Transport::Tls)] {
                if !on {
                    r.skip(t.check(), format!("{addr}: no {} listener configured", t.check()));
                    continue;
                }
                let (res, cert) = probe.probe(t, h.host.name.as_str(), addr).await;
                if kept.is_none() {
                    kept = cert;
                }
                results.push((t, res));
            }
            let any_ok = results.iter().any(|(_, res)| res.is_ok());
            for (t, res) in results {
                match res {
                    Ok(d) => r.ok(t.check(), format!("{} {addr} {d}", h.host.name)),
                    Err(d) if probe.from_outside && any_ok => r.warn(
                        t.check(),
                        format!(
                            "{} {addr}: {d} (senders fall back to the other transport)",
                            h.host.name
                        ),
                    ),
                    Err(d) => r.fail(t.check(), format!("{} {addr}: {d}", h.host.name)),
                }
            }
        }
        if let Some(der) = kept {
            seen.push((h.host.name.as_str().to_owned(), der));
        }
    }
    seen
}

/// The store: in use by the running dimed (its operator's socket answers), else it opens and
/// its format is read.
fn store_check(r: &mut Report, c: &Config) {
    let admin = c.admin_socket();
    if std::os::unix::net::UnixStream::connect(&admin).is_ok() {
        r.ok(
            "store",
            format!(
                "in use by the running dimed (its operator's socket {} answers); its format \
                 is read when dimed is stopped",
                admin.display()
            ),
        );
        return;
    }
    if !c.data_dir.exists() {
        r.fail(
            "store",
            format!(
                "data_dir {} does not exist: check data_dir, or start dimed serve --create",
                c.data_dir.display()
            ),
        );
        return;
    }
    match open_store(c) {
        Ok(store) => {
            let f = store.format();
            drop(store);
            if f >= dime_store::STORE_FORMAT {
                r.ok("store", format!("opens; format {f} (the current one)"));
            } else {
                r.warn(
                    "store",
                    format!(
                        "opens; format {f}, older than the current {}: it works (each delivery \
                         hashes once more); an export and import moves accounts to the current \
                         format",
                        dime_store::STORE_FORMAT
                    ),
                );
            }
        }
        Err(e) => r.fail("store", format!("{e:#}")),
    }
}

/// Opens the store of `c` for a moment (dimed is not running).
fn open_store(c: &Config) -> anyhow::Result<dime_store::Store> {
    crate::store_cmd::open_configured(c)
}

/// Free space on the file system of the data directory.
fn disk_check(r: &mut Report, data_dir: &Path) {
    let at = if data_dir.exists() { data_dir } else { data_dir.parent().unwrap_or(data_dir) };
    match rustix::fs::statvfs(at) {
        Ok(s) => {
            let free = s.f_bavail.saturating_mul(s.f_frsize);
            let total = s.f_blocks.saturating_mul(s.f_frsize);
            let (status, detail) = disk_status(free, total);
            r.add("disk", status, format!("{}: {detail}", at.display()));
        }
        Err(e) => r.fail("disk", format!("cannot read the free space of {}: {e}", at.display())),
    }
}

/// The status of a file system with `free` of `total` octets available.
fn disk_status(free: u64, total: u64) -> (Status, String) {
    let mib = |n: u64| n >> 20;
    let shown = format!("{} MiB free of {} MiB", mib(free), mib(total));
    if free < DISK_FAIL_BELOW {
        (
            Status::Fail,
            format!(
                "{shown}: under {} MiB, deliveries will be refused; free space now",
                mib(DISK_FAIL_BELOW)
            ),
        )
    } else if free < DISK_WARN_BELOW {
        (Status::Warn, format!("{shown}: under {} MiB; free space soon", mib(DISK_WARN_BELOW)))
    } else {
        (Status::Ok, shown)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DAY: i64 = 86_400;

    /// A self-signed certificate valid until the Unix time `not_after`.
    fn cert_until(year: i32, month: u8, day: u8) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["mx.doctor.test".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(year, month, day);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn expiry_fails_when_expired_warns_under_thirty_days_and_is_ok_after() {
        let now = 1_800_000_000;
        assert_eq!(expiry_status(now - 1, now).0, Status::Fail);
        assert_eq!(expiry_status(now, now).0, Status::Fail);
        assert_eq!(expiry_status(now + 1, now).0, Status::Warn);
        assert_eq!(expiry_status(now + CERT_WARN_DAYS * DAY - 1, now).0, Status::Warn);
        assert_eq!(expiry_status(now + CERT_WARN_DAYS * DAY, now).0, Status::Ok);
        assert!(expiry_status(now + 40 * DAY, now).1.contains("40 more days"));
    }

    #[test]
    fn expiry_reads_the_certificates_not_after() {
        // 2030-01-01 is 1_893_456_000.
        let der = cert_until(2030, 1, 1);
        let line = |now| {
            let mut r = Report::default();
            expiry_check(&mut r, "tls.crt", &der, now);
            r.findings.pop().unwrap()
        };
        assert_eq!(line(1_893_456_000 + 1).status, Status::Fail);
        assert_eq!(line(1_893_456_000 - 10 * DAY).status, Status::Warn);
        assert_eq!(line(1_893_456_000 - 100 * DAY).status, Status::Ok);
        assert!(line(1_893_456_000 - 100 * DAY).detail.contains("100 more days"));
        let mut r = Report::default();
        expiry_check(&mut r, "junk", b"not a certificate", 0);
        assert_eq!(r.findings[0].status, Status::Fail);
    }

    #[test]
    fn disk_fails_under_the_floor_and_warns_under_a_gib() {
        let total = 100 << 30;
        assert_eq!(disk_status(0, total).0, Status::Fail);
        assert_eq!(disk_status(DISK_FAIL_BELOW - 1, total).0, Status::Fail);
        assert_eq!(disk_status(DISK_FAIL_BELOW, total).0, Status::Warn);
        assert_eq!(disk_status(DISK_WARN_BELOW - 1, total).0, Status::Warn);
        assert_eq!(disk_status(DISK_WARN_BELOW, total).0, Status::Ok);
        assert!(disk_status(5 << 30, total).1.starts_with("5120 MiB free of 102400 MiB"));
    }

    #[test]
    fn a_report_with_a_failure_is_an_error_and_json_is_one_array() {
        let mut r = Report::default();
        r.ok("a", "fine");
        r.warn("b", "hmm");
        r.skip("c", "later");
        let mut out = Vec::new();
        r.finish(true, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[1], serde_json::json!({"check": "b", "status": "warn", "detail": "hmm"}));
        let mut r = Report::default();
        r.ok("a", "fine");
        r.fail("b", "broken");
        let mut out = Vec::new();
        let e = r.finish(false, &mut out).unwrap_err();
        assert_eq!(e.to_string(), "doctor: 1 of 2 checks failed");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ok    a           fine\nfail  b           broken\n"
        );
    }
}
