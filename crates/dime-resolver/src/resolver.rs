//! The key resolver: record, decision, signets, pins and caches together
//! (`spec/discovery.md` §4 to §8).

use crate::cache::{Cache, DEFAULT_CACHE_ENTRIES};
use crate::discovery::{
    AuthenticatedRecord, Decision, LocalPolicy, RecordLookup, decide, lookup_record,
};
use crate::dns::{Answer, Dns};
use crate::proof::DnssecProof;
use crate::signets::{
    ChainStatus, MAX_ROTATION_WALK, PinStore, SignetError, SignetSource, SourceError, UserSigner,
    ValidOrg, ValidUser, apply_pin, check_chain, validate_org, validate_user,
};
use dime_core::crypto::CryptoProvider;
use dime_core::{Domain, Fingerprint, Mailbox};
use dime_signet::Signet;
use dime_signet::record::{Host, Record};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// How long a temporary failure is remembered before the next lookup retries, seconds
/// (`spec/discovery.md` §8).
pub const FAILURE_CACHE_SECS: u64 = 5;

/// The counter of `_dx` record lookups by the proof of their answers (`proof`: `secure`,
/// `insecure`, `bogus`, `indeterminate`; `spec/dimed.md` §8): one per lookup made, none for an
/// answer from the cache. Kept through the `metrics` facade, so nothing unless the process
/// installed a recorder.
pub const DNS_PROOFS_METRIC: &str = "dime_dns_proofs_total";

/// A domain's record lookup and the decision it leads to.
#[must_use = "a discovery says whether and how the domain's keys may be used"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDiscovery {
    /// The lookup, with every answer and proof.
    pub lookup: RecordLookup,
    /// The decision under local policy.
    pub decision: Decision,
}

/// Why keys could not be discovered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// The decision is not to use the record (defer, unauthenticated, not DIME).
    #[error("record not usable: {0}")]
    NotUsable(Decision),
    /// A signet was refused or not found.
    #[error("{0}")]
    Signet(#[from] SignetError),
}

impl DiscoveryError {
    /// Whether to defer and retry rather than give up.
    pub fn is_temporary(&self) -> bool {
        match self {
            DiscoveryError::NotUsable(d) => d.is_temporary_failure(),
            DiscoveryError::Signet(SignetError::Source(
                crate::signets::SourceError::Unavailable(_),
            )) => true,
            DiscoveryError::Signet(_) => false,
        }
    }
}

/// How a key was authenticated: what is recorded with each message (`spec/discovery.md` §7).
#[must_use = "a provenance is what is recorded with the message"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The mail domain.
    pub domain: Domain,
    /// The domain whose `_dx` record was used.
    pub record_from: Domain,
    /// The record's proof (secure, or insecure with CA-TLS required).
    pub record_proof: DnssecProof,
    /// Whether the POK still needs a CA-valid TLS connection to stand in for DNSSEC.
    pub ca_tls_required: bool,
    /// Index of the record's `pok=` that signed the org signet.
    pub pok_index: usize,
    /// The org signet's fingerprint.
    pub org_fingerprint: Fingerprint,
    /// For a user key: its crypto fingerprint, signer and chain status.
    pub user: Option<(Fingerprint, UserSigner, ChainStatus)>,
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "domain={} record=_dx.{} dnssec={} channel={} pok={} org={}",
            self.domain,
            self.record_from,
            self.record_proof,
            if self.ca_tls_required { "ca-tls" } else { "dnssec" },
            self.pok_index,
            self.org_fingerprint
        )?;
        if let Some((fp, signer, chain)) = &self.user {
            let signer = match signer {
                UserSigner::Pok => "pok",
                UserSigner::Sok => "sok",
            };
            write!(f, " user={fp} signed-by={signer} chain={}", chain.as_str())?;
            if let ChainStatus::Rotated { steps } = chain {
                write!(f, " steps={steps}")?;
            }
        }
        Ok(())
    }
}

/// A domain's authenticated org signet.
#[must_use = "an authenticated key carries how it was proven"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgKey {
    /// The record it was checked against.
    pub record: Arc<Record>,
    /// The validated signet.
    pub org: ValidOrg,
    /// How.
    pub provenance: Provenance,
}

/// A user's authenticated signet.
#[must_use = "an authenticated key carries how it was proven"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKey {
    /// The org key it was checked under.
    pub org: OrgKey,
    /// The validated signet.
    pub user: ValidUser,
    /// How.
    pub provenance: Provenance,
}

/// Where a delivery host's name came from (`spec/dns-record.md` §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostSource {
    /// A `dx=` value of the record (the record's proof applies to the name).
    Dx,
    /// The domain's MX RRset.
    Mx,
    /// The domain itself: no `dx=` and no MX.
    Domain,
}

impl HostSource {
    /// The lower-case name used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            HostSource::Dx => "dx",
            HostSource::Mx => "mx",
            HostSource::Domain => "domain",
        }
    }
}

/// One delivery host and its addresses (`spec/dns-record.md` §5.5).
#[must_use = "a delivery host carries the proof of its addresses"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryHost {
    /// The host and its port (the `dx=` port when the record names one, else `None`: the
    /// DMTP default ports).
    pub host: Host,
    /// Where the name came from.
    pub source: HostSource,
    /// Its IPv4 then IPv6 addresses (empty when the lookup found none, was bogus or failed):
    /// reachable only through the proof ([`DeliveryHost::trusted_addresses`]).
    addresses: Vec<IpAddr>,
    /// The weakest proof of the answers that led to the addresses: the A/AAAA answers, and
    /// for an MX host (or the domain itself) the MX answer too. Bogus when the MX answer was
    /// bogus, indeterminate when it failed: then delivery defers.
    proof: DnssecProof,
}

impl DeliveryHost {
    /// A host with its addresses and the weakest proof of the answers that led to them.
    pub fn new(
        host: Host,
        source: HostSource,
        addresses: Vec<IpAddr>,
        proof: DnssecProof,
    ) -> DeliveryHost {
        DeliveryHost { host, source, addresses, proof }
    }

    /// The addresses to deliver to: those of a secure or provably insecure answer (the
    /// record's own proof decides the rest), none when an answer was bogus or indeterminate
    /// (delivery then defers: `spec/discovery.md` §4.1). The one way to the addresses for
    /// connecting, so that no caller can forget the check.
    pub fn trusted_addresses(&self) -> Option<&[IpAddr]> {
        match self.proof {
            DnssecProof::Secure | DnssecProof::Insecure => Some(&self.addresses),
            DnssecProof::Bogus | DnssecProof::Indeterminate => None,
        }
    }

    /// The weakest proof of the answers that led to the addresses.
    pub fn proof(&self) -> DnssecProof {
        self.proof
    }

    /// Every address found, whatever its proof: to show (`dime lookup`), never to connect to.
    pub fn addresses_to_show(&self) -> &[IpAddr] {
        &self.addresses
    }
}

/// A domain whose `_dx` record the resolver has authenticated (`spec/discovery.md` §5): what a
/// [`SignetSource`] is given, so that it never looks the record up again. Its delivery hosts
/// (`spec/discovery.md` §4.1) are looked up on the first [`AuthenticatedDomain::delivery_hosts`]
/// and kept, so the fetches of one resolver operation (org signet, user signet, history) and
/// the route built from it share one lookup.
#[derive(Debug)]
pub struct AuthenticatedDomain {
    domain: Domain,
    record: AuthenticatedRecord,
    dns: Option<Dns>,
    hosts: OnceCell<Vec<DeliveryHost>>,
}

impl AuthenticatedDomain {
    /// `domain` under its usable `record`; the delivery hosts are looked up through `dns` when
    /// first asked for.
    pub fn new(domain: Domain, record: AuthenticatedRecord, dns: Dns) -> AuthenticatedDomain {
        AuthenticatedDomain { domain, record, dns: Some(dns), hosts: OnceCell::new() }
    }

    /// `domain` under its usable `record`, with delivery hosts already known (tests, tools).
    pub fn with_hosts(
        domain: Domain,
        record: AuthenticatedRecord,
        hosts: Vec<DeliveryHost>,
    ) -> AuthenticatedDomain {
        AuthenticatedDomain { domain, record, dns: None, hosts: OnceCell::new_with(Some(hosts)) }
    }

    /// The mail domain.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// Its usable record and how it was authenticated.
    pub fn record(&self) -> &AuthenticatedRecord {
        &self.record
    }

    /// Whether the record's POKs count only over a CA-valid TLS connection (the record is
    /// DNSSEC-insecure: `Decision::UseWithCaTls`).
    pub fn ca_tls_required(&self) -> bool {
        self.record.proof != DnssecProof::Secure
    }

    /// The delivery hosts under the record ([`delivery_hosts`]), looked up once.
    pub async fn delivery_hosts(&self) -> &[DeliveryHost] {
        self.hosts
            .get_or_init(|| async {
                match &self.dns {
                    Some(dns) => delivery_hosts(dns, &self.domain, &self.record.record).await,
                    None => Vec::new(),
                }
            })
            .await
    }
}

/// The key resolver (`spec/discovery.md`): one per process, shared.
#[derive(Debug)]
pub struct KeyResolver<S, P> {
    dns: Dns,
    source: S,
    pins: P,
    local: LocalPolicy,
    crypto: &'static CryptoProvider,
    domains: Cache<Arc<DomainDiscovery>>,
    /// Validated org keys by mail domain, each with the record it was validated against: an
    /// entry counts only while that record is still the live one in `domains`.
    org_keys: Cache<(Arc<Record>, Result<OrgKey, DiscoveryError>)>,
}

impl<S: SignetSource, P: PinStore> KeyResolver<S, P> {
    /// A resolver over `dns`, fetching signets from `source` and pinning in `pins`.
    pub fn new(
        dns: Dns,
        source: S,
        pins: P,
        local: LocalPolicy,
        crypto: &'static CryptoProvider,
    ) -> KeyResolver<S, P> {
        KeyResolver {
            dns,
            source,
            pins,
            local,
            crypto,
            domains: Cache::new(DEFAULT_CACHE_ENTRIES),
            org_keys: Cache::new(DEFAULT_CACHE_ENTRIES),
        }
    }

    /// The DNS client.
    pub fn dns(&self) -> &Dns {
        &self.dns
    }

    /// The signet source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The pin store.
    pub fn pins(&self) -> &P {
        &self.pins
    }

    /// The domain's record and decision, cached for min(TTL, `exp`) (negative answers for
    /// their negative TTL, temporary failures for [`FAILURE_CACHE_SECS`]); concurrent lookups
    /// of one domain share one query.
    pub async fn discover_domain(&self, domain: &Domain) -> Arc<DomainDiscovery> {
        let (dns, local) = (&self.dns, self.local);
        self.domains
            .get_or_fetch(domain.as_str(), || async move {
                let lookup = lookup_record(dns, domain).await;
                metrics::counter!(DNS_PROOFS_METRIC, "proof" => lookup.proof.as_str()).increment(1);
                let decision = decide(&lookup, &local);
                let ttl = match &decision {
                    Decision::Defer(_) => FAILURE_CACHE_SECS,
                    _ => match &lookup.outcome {
                        crate::discovery::RecordOutcome::Record { lifetime_secs, .. }
                        | crate::discovery::RecordOutcome::NoRecord { lifetime_secs } => {
                            u64::from(*lifetime_secs)
                        }
                        _ => FAILURE_CACHE_SECS,
                    },
                };
                (Arc::new(DomainDiscovery { lookup, decision }), Duration::from_secs(ttl))
            })
            .await
    }

    /// The domain with its usable record, as a [`SignetSource`] is given it: the record from
    /// [`KeyResolver::discover_domain`] (cached), its delivery hosts looked up on first use.
    ///
    /// # Errors
    /// [`DiscoveryError::NotUsable`] when the decision is not to use the record.
    pub async fn authenticated_domain(
        &self,
        domain: &Domain,
    ) -> Result<AuthenticatedDomain, DiscoveryError> {
        let disc = self.discover_domain(domain).await;
        let Some(auth) = disc.decision.usable_record() else {
            return Err(DiscoveryError::NotUsable(disc.decision.clone()));
        };
        Ok(AuthenticatedDomain::new(domain.clone(), auth.clone(), self.dns.clone()))
    }

    /// The domain's org signet, validated against a usable record; cached with the record
    /// ([`KeyResolver::org_key_for`]).
    pub async fn org_key(&self, domain: &Domain) -> Result<OrgKey, DiscoveryError> {
        let domain = self.authenticated_domain(domain).await?;
        self.org_key_for(&domain).await
    }

    /// The org signet of a domain whose record is already authenticated
    /// ([`KeyResolver::authenticated_domain`]), validated against that record. A caller that
    /// also needs the delivery hosts reads them from `domain` afterwards: a source that
    /// fetched the signet from them has looked them up already.
    ///
    /// The validated key is cached while `domain`'s record is the live cached record of the
    /// domain ([`KeyResolver::discover_domain`]): when that entry expires or the record
    /// changes, the signet is fetched and validated again. Failures are not cached; concurrent
    /// calls for one domain share one fetch (`spec/discovery.md` §8).
    pub async fn org_key_for(
        &self,
        domain: &AuthenticatedDomain,
    ) -> Result<OrgKey, DiscoveryError> {
        let name = domain.domain().as_str();
        let record = &domain.record().record;
        let now = Instant::now();
        if !self.is_live_record(name, record, now) {
            // Not (or no longer) the cached record: nothing to keep the key under.
            return self.fetch_org_key(domain).await;
        }
        if self.org_keys.get(name, now).is_some_and(|(r, _)| !Arc::ptr_eq(&r, record)) {
            // Validated against a record that has since been replaced.
            self.org_keys.remove(name);
        }
        let lifetime = Duration::from_secs(u64::from(domain.record().lifetime_secs));
        let (validated_against, key) = self
            .org_keys
            .get_or_fetch(name, || async {
                let key = self.fetch_org_key(domain).await;
                let ttl = if key.is_ok() { lifetime } else { Duration::ZERO };
                ((record.clone(), key), ttl)
            })
            .await;
        if Arc::ptr_eq(&validated_against, record) {
            key
        } else {
            // A concurrent fetch under another record answered: validate under ours.
            self.fetch_org_key(domain).await
        }
    }

    /// Whether `record` is the live cached record of `name` at `now`.
    fn is_live_record(&self, name: &str, record: &Arc<Record>, now: Instant) -> bool {
        self.domains.get(name, now).is_some_and(|d| {
            d.decision.usable_record().is_some_and(|a| Arc::ptr_eq(&a.record, record))
        })
    }

    /// Fetches the org signet of `domain` and validates it against `domain`'s record.
    async fn fetch_org_key(&self, domain: &AuthenticatedDomain) -> Result<OrgKey, DiscoveryError> {
        let auth = domain.record();
        let signet = self.source.org_signet(domain).await.map_err(SignetError::from)?;
        let org = validate_org(self.crypto, &auth.record, domain.domain(), signet)?;
        let provenance = Provenance {
            domain: domain.domain().clone(),
            record_from: auth.published_by.clone(),
            record_proof: auth.proof,
            ca_tls_required: domain.ca_tls_required(),
            pok_index: org.pok_index,
            org_fingerprint: org.fingerprint,
            user: None,
        };
        Ok(OrgKey { record: auth.record.clone(), org, provenance })
    }

    /// The user's signet: validated under the org, chained from the pinned one (rotation
    /// followed, rollback refused, unchained flagged or refused), and pinned.
    pub async fn user_key(&self, mailbox: &Mailbox) -> Result<UserKey, DiscoveryError> {
        let domain = self.authenticated_domain(mailbox.domain()).await?;
        let org = self.org_key_for(&domain).await?;
        let signet = self.source.user_signet(&domain, mailbox).await.map_err(SignetError::from)?;
        let (state, signer, fp) = validate_user(self.crypto, &org.org, mailbox, &signet)?;
        let pin = self.pins.pin(mailbox);
        let mut chain = check_chain(self.crypto, pin.as_ref(), &signet, &fp, &[]);
        if chain == ChainStatus::Unchained
            && let Some(p) = &pin
        {
            // An unreachable history is a temporary failure, not a reason to flag a rotation
            // as unchained; a history that does not know the pinned signet is empty.
            let history = match self.source.user_history(&domain, mailbox, &p.fingerprint).await {
                Ok(h) => h,
                Err(SourceError::NotFound) => Vec::new(),
                Err(e) => return Err(SignetError::from(e).into()),
            };
            chain = check_chain(self.crypto, pin.as_ref(), &signet, &fp, &history);
        }
        apply_pin(&self.pins, mailbox, pin, &signet, fp, chain, self.local.unchained_signet)?;
        let mut provenance = org.provenance.clone();
        provenance.user = Some((fp, signer, chain));
        let user = ValidUser { signet, state, signer, chain, fingerprint: fp };
        Ok(UserKey { org, user, provenance })
    }

    /// The user signets of `mailbox` published after the one whose crypto fingerprint is
    /// `since`, oldest first (HIST, `spec/dmtp.md` §6.7), each validated as a user signet of
    /// the mailbox under its organisation's current signet. A signet that does not validate
    /// ends the history there: only those after it are given (`spec/envelope.md` §7.6: keys
    /// before a break are not accepted). A source that does not know `since` gives none.
    ///
    /// # Errors
    /// [`DiscoveryError`] of the domain, its org signet, or the source.
    pub async fn user_history(
        &self,
        mailbox: &Mailbox,
        since: &Fingerprint,
    ) -> Result<Vec<Signet>, DiscoveryError> {
        let domain = self.authenticated_domain(mailbox.domain()).await?;
        let org = self.org_key_for(&domain).await?;
        let history = match self.source.user_history(&domain, mailbox, since).await {
            Ok(h) => h,
            Err(SourceError::NotFound) => Vec::new(),
            Err(e) => return Err(SignetError::from(e).into()),
        };
        let valid = history
            .iter()
            .rposition(|s| validate_user(self.crypto, &org.org, mailbox, s).is_err())
            .map_or(0, |i| i + 1);
        Ok(history.into_iter().skip(valid).take(MAX_ROTATION_WALK).collect())
    }

    /// Forgets every cached domain result and validated org key, and the DNS client's cached
    /// answers ([`Dns::clear_cache`]): the next lookup asks the servers again (an operator's
    /// flush).
    pub fn clear_cache(&self) {
        self.domains.clear();
        self.org_keys.clear();
        self.dns.clear_cache();
    }

    /// Delivery hosts of `domain` under `record` ([`delivery_hosts`] over this resolver's DNS).
    pub async fn delivery_hosts(&self, domain: &Domain, record: &Record) -> Vec<DeliveryHost> {
        delivery_hosts(&self.dns, domain, record).await
    }
}

/// Delivery hosts: the record's `dx=` hosts (ports kept), else the MX hosts in preference
/// order, else the domain itself, each with its addresses and their proof
/// (`spec/dns-record.md` §5.5). A bogus or failed MX answer is not taken for "no MX": it
/// gives the domain itself with no address and that proof, so the caller defers.
pub async fn delivery_hosts(dns: &Dns, domain: &Domain, record: &Record) -> Vec<DeliveryHost> {
    let (hosts, source, names_proof): (Vec<Host>, HostSource, DnssecProof) =
        if !record.delivery_hosts.is_empty() {
            (record.delivery_hosts.clone(), HostSource::Dx, DnssecProof::Secure)
        } else {
            let mx = dns.mx(domain).await;
            let proof = mx.proof();
            match mx {
                Answer::Found { value, .. } if !value.is_empty() => {
                    (value.into_iter().map(|(_, d)| Host::new(d)).collect(), HostSource::Mx, proof)
                }
                Answer::Found { .. } | Answer::Absent { .. } => {
                    (vec![Host::new(domain.clone())], HostSource::Domain, proof)
                }
                Answer::Bogus | Answer::Failed(_) => {
                    return vec![DeliveryHost {
                        host: Host::new(domain.clone()),
                        source: HostSource::Domain,
                        addresses: Vec::new(),
                        proof,
                    }];
                }
            }
        };
    let mut out = Vec::with_capacity(hosts.len());
    for host in hosts {
        let ans = dns.addresses(&host.name).await;
        let proof = ans.proof().weakest(names_proof);
        let addresses = match ans {
            Answer::Found { value, .. } => value,
            _ => Vec::new(),
        };
        out.push(DeliveryHost { host, source, addresses, proof });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::discovery::RecordOutcome;
    use crate::dns::DnsConfig;
    use crate::signets::{MemoryPinStore, MemorySource};
    use dime_core::crypto::default_provider;
    use dime_signet::{OrgKeys, Profile, Signet, create_org_signet};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_delivery_hosts_addresses_are_given_only_under_a_trustworthy_proof() {
        let addrs: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        for (proof, trusted) in [
            (DnssecProof::Secure, true),
            (DnssecProof::Insecure, true),
            (DnssecProof::Bogus, false),
            (DnssecProof::Indeterminate, false),
        ] {
            let h = DeliveryHost::new(
                Host::new("mx.test".parse().unwrap()),
                HostSource::Mx,
                addrs.clone(),
                proof,
            );
            assert_eq!(h.trusted_addresses(), trusted.then_some(&addrs[..]), "{proof:?}");
            assert_eq!((h.proof(), h.addresses_to_show()), (proof, &addrs[..]));
        }
    }

    /// A [`MemorySource`] that counts org signet fetches.
    #[derive(Debug)]
    struct Counting {
        inner: MemorySource,
        org_fetches: AtomicUsize,
    }

    impl Counting {
        fn fetches(&self) -> usize {
            self.org_fetches.load(Ordering::SeqCst)
        }
    }

    impl SignetSource for Counting {
        async fn org_signet(&self, domain: &AuthenticatedDomain) -> Result<Signet, SourceError> {
            self.org_fetches.fetch_add(1, Ordering::SeqCst);
            self.inner.org_signet(domain).await
        }

        async fn user_signet(
            &self,
            domain: &AuthenticatedDomain,
            mailbox: &Mailbox,
        ) -> Result<Signet, SourceError> {
            self.inner.user_signet(domain, mailbox).await
        }

        async fn user_history(
            &self,
            domain: &AuthenticatedDomain,
            mailbox: &Mailbox,
            since: &Fingerprint,
        ) -> Result<Vec<Signet>, SourceError> {
            self.inner.user_history(domain, mailbox, since).await
        }
    }

    type Resolver = KeyResolver<Counting, MemoryPinStore>;

    struct World {
        resolver: Resolver,
        domain: Domain,
        record: Record,
        org: Signet,
    }

    /// A resolver whose DNS is never asked (every lookup is answered from the record cache,
    /// seeded by [`seed`]), and an org whose signet is not yet published.
    fn world(seed: u64) -> World {
        let p = default_provider();
        let org_keys = OrgKeys::generate(&mut dime_testkit::seeded_rng(seed));
        let domain: Domain = "example.test".parse().unwrap();
        let org = create_org_signet(p, &org_keys, &domain, &Profile::new()).unwrap();
        let record = Record::new(vec![org_keys.pok(p)]);
        let config = DnsConfig::new(vec!["127.0.0.1:9".parse().unwrap()])
            .timeouts(Duration::from_millis(100), 1);
        let source = Counting { inner: MemorySource::new(p), org_fetches: AtomicUsize::new(0) };
        let resolver = KeyResolver::new(
            Dns::new(&config).unwrap(),
            source,
            MemoryPinStore::default(),
            LocalPolicy::default(),
            p,
        );
        World { resolver, domain, record, org }
    }

    /// Caches `record` as the domain's usable record for `ttl`, as a lookup would (a record
    /// lookup makes a new `Arc` each time), unless a live entry is there.
    async fn seed(w: &World, record: Arc<Record>, ttl: Duration) -> Arc<DomainDiscovery> {
        let auth = AuthenticatedRecord {
            record: record.clone(),
            published_by: w.domain.clone(),
            proof: DnssecProof::Secure,
            lifetime_secs: 3600,
        };
        let lookup = RecordLookup {
            domain: w.domain.clone(),
            outcome: RecordOutcome::Record {
                record,
                published_by: w.domain.clone(),
                lifetime_secs: 3600,
            },
            proof: DnssecProof::Secure,
            consulted: Vec::new(),
        };
        let disc = DomainDiscovery { lookup, decision: Decision::UseDnssec(auth) };
        w.resolver
            .domains
            .get_or_fetch(w.domain.as_str(), || async move { (Arc::new(disc), ttl) })
            .await
    }

    #[tokio::test]
    async fn org_key_is_fetched_once_while_the_record_is_cached() {
        let w = world(1);
        w.resolver.source().inner.publish_org(&w.domain, w.org.clone());
        seed(&w, Arc::new(w.record.clone()), Duration::from_secs(60)).await;
        let first = w.resolver.org_key(&w.domain).await.unwrap();
        let second = w.resolver.org_key(&w.domain).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(w.resolver.source().fetches(), 1);
        // The resolver's other paths share it.
        let domain = w.resolver.authenticated_domain(&w.domain).await.unwrap();
        assert_eq!(w.resolver.org_key_for(&domain).await.unwrap(), first);
        assert_eq!(w.resolver.source().fetches(), 1);
    }

    #[tokio::test]
    async fn org_key_is_fetched_again_when_the_record_entry_expires_or_changes() {
        let w = world(2);
        w.resolver.source().inner.publish_org(&w.domain, w.org.clone());
        seed(&w, Arc::new(w.record.clone()), Duration::from_millis(150)).await;
        let _ = w.resolver.org_key(&w.domain).await.unwrap();
        let stale = w.resolver.authenticated_domain(&w.domain).await.unwrap();
        let _ = w.resolver.org_key(&w.domain).await.unwrap();
        assert_eq!(w.resolver.source().fetches(), 1);

        tokio::time::sleep(Duration::from_millis(200)).await;
        // The record entry has expired: the record is looked up again (here: re-seeded, the
        // same record under a new lookup), and the org signet fetched and validated again.
        seed(&w, Arc::new(w.record.clone()), Duration::from_secs(60)).await;
        let _ = w.resolver.org_key(&w.domain).await.unwrap();
        assert_eq!(w.resolver.source().fetches(), 2);
        let _ = w.resolver.org_key(&w.domain).await.unwrap();
        assert_eq!(w.resolver.source().fetches(), 2);
        // A caller still holding the expired record is not answered from the cache.
        let _ = w.resolver.org_key_for(&stale).await.unwrap();
        assert_eq!(w.resolver.source().fetches(), 3);
        let _ = w.resolver.org_key(&w.domain).await.unwrap();
        assert_eq!(w.resolver.source().fetches(), 3);

        // The record changes (another POK): the cached key does not count for it.
        let other = world(3);
        w.resolver.domains.remove(w.domain.as_str());
        seed(&w, Arc::new(other.record.clone()), Duration::from_secs(60)).await;
        let err = w.resolver.org_key(&w.domain).await.unwrap_err();
        assert!(matches!(err, DiscoveryError::Signet(SignetError::Invalid { .. })), "{err:?}");
        assert_eq!(w.resolver.source().fetches(), 4);
    }

    #[tokio::test]
    async fn clear_cache_forgets_org_keys() {
        let w = world(4);
        w.resolver.source().inner.publish_org(&w.domain, w.org.clone());
        let record = Arc::new(w.record.clone());
        seed(&w, record.clone(), Duration::from_secs(60)).await;
        let _ = w.resolver.org_key(&w.domain).await.unwrap();
        assert_eq!(w.resolver.source().fetches(), 1);
        w.resolver.clear_cache();
        assert!(w.resolver.org_keys.is_empty());
        // The very same record cached again: only the cleared org key cache makes it fetch.
        seed(&w, record, Duration::from_secs(60)).await;
        let _ = w.resolver.org_key(&w.domain).await.unwrap();
        assert_eq!(w.resolver.source().fetches(), 2);
    }

    #[tokio::test]
    async fn failures_are_not_cached() {
        let w = world(5);
        seed(&w, Arc::new(w.record.clone()), Duration::from_secs(60)).await;
        for n in 1..=2 {
            let err = w.resolver.org_key(&w.domain).await.unwrap_err();
            assert_eq!(err, DiscoveryError::Signet(SignetError::Source(SourceError::NotFound)));
            assert_eq!(w.resolver.source().fetches(), n);
        }
        w.resolver.source().inner.publish_org(&w.domain, w.org.clone());
        let _ = w.resolver.org_key(&w.domain).await.unwrap();
        let _ = w.resolver.org_key(&w.domain).await.unwrap();
        assert_eq!(w.resolver.source().fetches(), 3);
    }
}
