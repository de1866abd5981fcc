//! DMTP's [`Deliver`] (`spec/dmtp.md` §2, §11): the route to a DIME domain from the resolver
//! (its org signet, its delivery hosts, its certificate policy), and each delivery over QUIC
//! first and TLS over TCP when QUIC gets no answer, on pooled connections.

use super::{Deliver, DeliverError};
use crate::LocalDomain;
use dime_core::crypto::{CryptoProvider, Hashed};
use dime_core::{Domain, Fingerprint};
use dime_dmtp::{Outgoing, TransactionId};
use dime_net::{NetError, QuicPool, TlsPool, TlsProvider, is_temporary};
use dime_resolver::tls::{CertPolicy, DimeCertVerifier, WebPki};
use dime_resolver::{
    AuthenticatedDomain, AuthenticatedRecord, DiscoveryError, DnssecProof, KeyResolver, PinStore,
    SignetSource,
};
use dime_store::Transport;
use rustls::client::danger::ServerCertVerifier;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// The DMTP port when the record names none (`spec/dmtp.md` §2).
pub const DMTP_PORT: u16 = 26;

/// One server to try: the name its certificate is checked for, and its addresses.
#[derive(Debug, Clone)]
pub struct Target {
    /// The host name (the certificate's name).
    pub server_name: String,
    /// Addresses with ports, in order.
    pub addrs: Vec<SocketAddr>,
}

/// Where and how to deliver to a destination domain.
#[derive(Clone)]
pub struct Route {
    /// The destination's current org signet fingerprint (RCPT, `spec/dmtp.md` §6.3).
    pub destination_fingerprint: Fingerprint,
    /// Its delivery hosts in order.
    pub targets: Vec<Target>,
    /// The certificate verifier for its servers (the resolver's pinning verifier).
    pub verifier: Arc<dyn ServerCertVerifier>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route").field("targets", &self.targets).finish_non_exhaustive()
    }
}

/// Why a route could not be found.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    /// It may work later (DNS indeterminate or bogus, fetch failed): defer.
    #[error("{0}")]
    Temporary(String),
    /// It will not work (not a DIME domain, signet refused): fail.
    #[error("{0}")]
    Permanent(String),
}

/// Resolves a destination domain to a [`Route`].
pub trait Routes: Send + Sync + 'static {
    /// The route to `destination`.
    fn route(&self, destination: &Domain)
    -> impl Future<Output = Result<Route, RouteError>> + Send;
}

/// [`Routes`] through the [`KeyResolver`]: the org signet's fingerprint, the delivery hosts
/// (`spec/dns-record.md` §5.5) and a [`DimeCertVerifier`] for the record's pins. The record
/// and the hosts are those the resolver used for the org signet, not looked up again.
#[derive(Debug)]
pub struct ResolverRoutes<S, P> {
    resolver: Arc<KeyResolver<S, P>>,
    provider: &'static CryptoProvider,
    webpki: WebPki,
}

impl<S, P> ResolverRoutes<S, P> {
    /// Routes through `resolver`; `webpki` is the shared WebPKI verifier (its roots loaded
    /// once) for certificates the record's pins do not decide.
    pub fn new(
        resolver: Arc<KeyResolver<S, P>>,
        provider: &'static CryptoProvider,
        webpki: WebPki,
    ) -> ResolverRoutes<S, P> {
        ResolverRoutes { resolver, provider, webpki }
    }
}

/// What the status of an entry to `destination` says when its keys could not be found: the
/// resolver's own reason (a bogus answer and where, a failed lookup, an unsigned zone under a
/// strict policy, a signet refused), so that each reads differently (`spec/dmtp.md` §11.2).
fn route_error(destination: &Domain, e: &DiscoveryError) -> RouteError {
    if e.is_temporary() {
        RouteError::Temporary(format!("keys of {destination} not found for now: {e}"))
    } else {
        RouteError::Permanent(format!("keys of {destination} refused: {e}"))
    }
}

/// Why `domain` has no delivery host to connect to: each host with why it has no trustworthy
/// address (its answer's proof, or no address).
async fn no_target_reason(domain: &AuthenticatedDomain) -> String {
    let hosts = domain.delivery_hosts().await;
    let each: Vec<String> = hosts
        .iter()
        .map(|h| {
            let why = match (h.proof(), h.addresses_to_show().is_empty()) {
                (DnssecProof::Bogus, _) => "bogus DNSSEC answer",
                (DnssecProof::Indeterminate, _) => "lookup failed",
                (_, true) => "no address",
                (_, false) => "no usable address",
            };
            format!("{}: {why}", h.host.name)
        })
        .collect();
    if each.is_empty() {
        "no delivery host in the record".to_owned()
    } else {
        format!("no delivery host with a trustworthy address ({})", each.join("; "))
    }
}

impl<S, P> Routes for ResolverRoutes<S, P>
where
    S: SignetSource + 'static,
    P: PinStore + 'static,
{
    async fn route(&self, destination: &Domain) -> Result<Route, RouteError> {
        let domain = self
            .resolver
            .authenticated_domain(destination)
            .await
            .map_err(|e| route_error(destination, &e))?;
        let org =
            self.resolver.org_key_for(&domain).await.map_err(|e| route_error(destination, &e))?;
        let targets = delivery_targets(&domain).await;
        if targets.is_empty() {
            return Err(RouteError::Temporary(no_target_reason(&domain).await));
        }
        let verifier = record_verifier(domain.record(), &self.webpki, self.provider);
        Ok(Route { destination_fingerprint: org.org.fingerprint, targets, verifier })
    }
}

/// The delivery hosts of an authenticated `domain` whose addresses can be trusted (bogus or
/// indeterminate answers are skipped), with their ports (`spec/dns-record.md` §5.5). The hosts
/// are looked up once per [`AuthenticatedDomain`].
pub async fn delivery_targets(domain: &AuthenticatedDomain) -> Vec<Target> {
    domain
        .delivery_hosts()
        .await
        .iter()
        .filter_map(|h| {
            let port = h.host.port.unwrap_or(DMTP_PORT);
            Some(Target {
                server_name: h.host.name.as_str().to_owned(),
                addrs: h.trusted_addresses()?.iter().map(|a| SocketAddr::new(*a, port)).collect(),
            })
        })
        .filter(|t| !t.addrs.is_empty())
        .collect()
}

/// The certificate verifier for a domain's servers under its usable `record`: its `tls=` pins
/// (secure record) or the WebPKI (CA-TLS) through the shared `webpki`. Cheap: no file is read
/// and no root store built.
pub fn record_verifier(
    record: &AuthenticatedRecord,
    webpki: &WebPki,
    provider: &'static CryptoProvider,
) -> Arc<DimeCertVerifier> {
    Arc::new(DimeCertVerifier::new(CertPolicy::for_record(record), webpki, provider))
}

/// Which transports the worker tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transports {
    /// QUIC first, TLS over TCP when QUIC gets no answer (`spec/dmtp.md` §2).
    QuicThenTls,
    /// QUIC only.
    QuicOnly,
    /// TLS over TCP only.
    TlsOnly,
}

/// The one mapping of a delivery's failure, over QUIC or TLS, on a new or a reused connection
/// alike (`spec/dmtp.md` §11.2): a 4xx and transport failures are temporary, a 5xx and local
/// configuration or misuse errors permanent.
fn classify(e: NetError) -> DeliverError {
    if is_temporary(&e) {
        DeliverError::Temporary(e.to_string())
    } else {
        DeliverError::Permanent(e.to_string())
    }
}

impl From<RouteError> for DeliverError {
    fn from(e: RouteError) -> DeliverError {
        match e {
            RouteError::Temporary(r) => DeliverError::Temporary(r),
            RouteError::Permanent(r) => DeliverError::Permanent(r),
        }
    }
}

/// DMTP delivery: routes from `R`, connections pooled per destination and address.
pub struct Dmtp<R> {
    local: Arc<LocalDomain>,
    routes: Arc<R>,
    transports: Transports,
    /// The rustls provider every client configuration is built over.
    tls_provider: TlsProvider,
    /// QUIC connections by destination and address, reused while live.
    quic: QuicPool<(Domain, SocketAddr)>,
    /// TLS connections by destination and address, idle between transactions.
    tls: TlsPool<(Domain, SocketAddr)>,
}

impl<R> std::fmt::Debug for Dmtp<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dmtp")
            .field("domain", &self.local.domain)
            .field("transports", &self.transports)
            .finish_non_exhaustive()
    }
}

impl<R: Routes> Dmtp<R> {
    /// Delivery for `local` along `routes` over `transports`; its TLS and QUIC client
    /// configurations over `tls_provider`.
    pub fn new(
        local: Arc<LocalDomain>,
        routes: Arc<R>,
        transports: Transports,
        tls_provider: TlsProvider,
    ) -> Dmtp<R> {
        Dmtp {
            quic: QuicPool::new(local.domain.clone()),
            tls: TlsPool::new(local.domain.clone()),
            local,
            routes,
            transports,
            tls_provider,
        }
    }

    async fn send(
        &self,
        destination: &Domain,
        route: &Route,
        envelope: &Hashed,
    ) -> Result<TransactionId, DeliverError> {
        let msg = Outgoing {
            origin: self.local.domain.clone(),
            origin_fingerprint: self.local.org_fingerprint,
            destination: destination.clone(),
            destination_fingerprint: route.destination_fingerprint,
            body: envelope.clone(),
        };
        // One TLS configuration for every address of the route.
        let tls = Arc::new(
            dime_net::client_tls_config(
                Arc::clone(&self.tls_provider),
                Arc::clone(&route.verifier),
            )
            .map_err(|e| DeliverError::Temporary(e.to_string()))?,
        );
        // (Without QUIC no connection is live.)
        let addrs = attempt_order(&route.targets, |a| self.quic.is_live(&(destination.clone(), a)));
        let mut last = DeliverError::Temporary("no address answered".into());
        for (t, addr) in addrs {
            match self.try_addr(destination, &tls, t, addr, &msg).await {
                Ok(id) => return Ok(id),
                Err(DeliverError::Permanent(r)) => return Err(DeliverError::Permanent(r)),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// One address: QUIC (a live pooled connection, else a new one), then TLS over TCP (an
    /// idle pooled connection, else a new one) when QUIC failed without a reply. A reply is
    /// the server's answer on either transport.
    async fn try_addr(
        &self,
        destination: &Domain,
        tls: &Arc<rustls::ClientConfig>,
        target: &Target,
        addr: SocketAddr,
        msg: &Outgoing,
    ) -> Result<TransactionId, DeliverError> {
        let mut last = DeliverError::Temporary("no transport tried".into());
        if self.transports != Transports::TlsOnly {
            let key = (destination.clone(), addr);
            let sent = self
                .quic
                .run(&key, addr, &target.server_name, tls, |c| {
                    let msg = msg.clone();
                    async move { c.send(msg).await }
                })
                .await;
            match sent {
                Ok(id) => return Ok(id),
                Err(e @ NetError::Refused { .. }) => return Err(classify(e)),
                Err(e) => {
                    tracing::debug!(destination = %destination, error = %e, "quic failed");
                    last = classify(e);
                }
            }
        }
        if self.transports != Transports::QuicOnly {
            let key = (destination.clone(), addr);
            return self
                .tls
                .send(&key, addr, &target.server_name, tls, msg)
                .await
                .map_err(classify);
        }
        Err(last)
    }
}

impl<R: Routes> Deliver for Dmtp<R> {
    const TRANSPORT: Transport = Transport::Dmtp;
    type Route = Route;

    async fn route(&self, destination: &Domain) -> Result<Route, DeliverError> {
        Ok(self.routes.route(destination).await?)
    }

    async fn deliver(
        &self,
        destination: &Domain,
        route: &Route,
        envelope: &Hashed,
    ) -> Result<String, DeliverError> {
        self.send(destination, route, envelope).await.map(|id| id.as_str().to_owned())
    }

    fn housekeeping(&self) {
        self.tls.close_idle();
    }
}

/// The order in which a route's addresses are tried: every address of every host, in the
/// route's order, except that those with a live QUIC connection (`live`) come first.
fn attempt_order(
    targets: &[Target],
    live: impl Fn(SocketAddr) -> bool,
) -> Vec<(&Target, SocketAddr)> {
    let mut addrs: Vec<(&Target, SocketAddr)> =
        targets.iter().flat_map(|t| t.addrs.iter().map(move |a| (t, *a))).collect();
    addrs.sort_by_cached_key(|(_, a)| !live(*a));
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;
    use dime_core::crypto::default_provider;
    use dime_resolver::{DeliveryHost, DnssecProof};

    #[tokio::test]
    async fn only_hosts_with_a_trustworthy_proof_and_an_address_are_targets() {
        use dime_resolver::HostSource;
        use dime_signet::record::Host;
        let host = |name: &str, port, proof, addresses: &[&str]| {
            DeliveryHost::new(
                Host { name: name.parse().unwrap(), port },
                HostSource::Dx,
                addresses.iter().map(|a| a.parse().unwrap()).collect(),
                proof,
            )
        };
        let hosts = [
            host("secure.test", None, DnssecProof::Secure, &["192.0.2.1", "2001:db8::1"]),
            host("insecure.test", Some(2600), DnssecProof::Insecure, &["192.0.2.2"]),
            host("bogus.test", None, DnssecProof::Bogus, &["192.0.2.3"]),
            host("unknown.test", None, DnssecProof::Indeterminate, &["192.0.2.4"]),
            host("empty.test", None, DnssecProof::Secure, &[]),
        ];
        let keys = dime_signet::OrgKeys::generate(&mut dime_testkit::seeded_rng(3));
        let record = AuthenticatedRecord {
            record: Arc::new(dime_signet::record::Record::new(vec![keys.pok(default_provider())])),
            published_by: "mail.test".parse().unwrap(),
            proof: DnssecProof::Secure,
            lifetime_secs: 300,
        };
        let domain =
            AuthenticatedDomain::with_hosts("mail.test".parse().unwrap(), record, hosts.to_vec());
        let got: Vec<(String, Vec<SocketAddr>)> =
            delivery_targets(&domain).await.into_iter().map(|t| (t.server_name, t.addrs)).collect();
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            got,
            [
                ("secure.test".to_owned(), vec![addr("192.0.2.1:26"), addr("[2001:db8::1]:26")]),
                ("insecure.test".to_owned(), vec![addr("192.0.2.2:2600")]),
            ]
        );
    }

    #[test]
    fn addresses_are_tried_in_route_order_with_live_quic_connections_first() {
        let a = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let targets = [
            Target { server_name: "mx1.b.test".into(), addrs: vec![a(1), a(2)] },
            Target { server_name: "mx2.b.test".into(), addrs: vec![] },
            Target { server_name: "mx3.b.test".into(), addrs: vec![a(3), a(4)] },
        ];
        let order = |live: &[u16]| -> Vec<(String, u16)> {
            attempt_order(&targets, |addr| live.contains(&addr.port()))
                .into_iter()
                .map(|(t, addr)| (t.server_name.clone(), addr.port()))
                .collect()
        };
        let named = |v: &[(&str, u16)]| -> Vec<(String, u16)> {
            v.iter().map(|(n, p)| (format!("{n}.b.test"), *p)).collect()
        };
        let in_order = named(&[("mx1", 1), ("mx1", 2), ("mx3", 3), ("mx3", 4)]);
        assert_eq!(order(&[]), in_order);
        assert_eq!(order(&[1, 2, 3, 4]), in_order, "a stable order among the live");
        assert_eq!(order(&[4]), named(&[("mx3", 4), ("mx1", 1), ("mx1", 2), ("mx3", 3)]));
        assert_eq!(order(&[2, 3]), named(&[("mx1", 2), ("mx3", 3), ("mx1", 1), ("mx3", 4)]));
    }

    #[test]
    fn the_port_is_the_specs() {
        assert_eq!(DMTP_PORT, 26);
    }
}
