//! The resolver's [`SignetSource`] over DMTP (`spec/dmtp.md` §6.5, `spec/discovery.md` §6):
//! signets are fetched with SGNT and HIST from the domain's own delivery hosts, over QUIC with
//! TLS over TCP as the fallback, the server certificate checked by the resolver's verifier for
//! the domain's record. The record and the hosts are those the resolver hands over
//! ([`AuthenticatedDomain`]): nothing is looked up again here, and the roots of the WebPKI
//! checks are the shared [`WebPki`] loaded once.
//!
//! What comes back is not trusted for being fetched this way: the [`KeyResolver`] validates
//! every signet against the record's POKs (org) or the org signet (user) before use. The
//! channel's authentication only keeps an active attacker from making lookups fail quietly.
//!
//! [`KeyResolver`]: dime_resolver::KeyResolver

use crate::outbound::dmtp::{Transports, delivery_targets, record_verifier};
use dime_core::crypto::CryptoProvider;
use dime_core::{Domain, Fingerprint, Mailbox};
use dime_dmtp::SignetName;
use dime_net::{NetError, QuicPool, TlsConnection};
use dime_resolver::tls::WebPki;
use dime_resolver::{AuthenticatedDomain, SignetSource, SourceError};
use dime_signet::Signet;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// A server to ask for a domain's signets: the certificate name, an address, how to check it.
#[derive(Clone)]
pub struct SignetServer {
    /// The name the server's certificate is checked for.
    pub server_name: String,
    /// Its address and port.
    pub addr: SocketAddr,
    /// The client TLS configuration (certificate verifier, ALPN).
    pub tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for SignetServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignetServer")
            .field("server_name", &self.server_name)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// [`SignetSource`] over DMTP: SGNT/HIST to the domain's delivery hosts.
pub struct DmtpSignets {
    provider: &'static CryptoProvider,
    our_domain: Domain,
    webpki: WebPki,
    transports: Transports,
    /// Servers known without DNS (our own domain, configured peers).
    fixed: HashMap<Domain, SignetServer>,
    /// QUIC connections by server address, reused while live.
    /// QUIC connections by (domain, address): a connection's certificate was checked under one
    /// domain's record, so another domain at the same address gets its own.
    quic: QuicPool<(Domain, SocketAddr)>,
}

impl std::fmt::Debug for DmtpSignets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmtpSignets")
            .field("our_domain", &self.our_domain)
            .field("transports", &self.transports)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: &str) -> SourceError {
    SourceError::Unavailable(what.to_owned())
}

/// The time one signet request may take on one server and transport, connecting included; a
/// server that stops answering (a peer that crashed behind a cached QUIC connection) costs at
/// most this before the next transport or server is tried.
pub const SIGNET_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn within<T>(
    f: impl std::future::Future<Output = Result<T, NetError>>,
) -> Result<T, SourceError> {
    match tokio::time::timeout(SIGNET_REQUEST_TIMEOUT, f).await {
        Ok(r) => r.map_err(from_net),
        Err(_) => Err(timed_out()),
    }
}

fn timed_out() -> SourceError {
    unavailable("the signet server did not answer in time")
}

fn from_net(e: NetError) -> SourceError {
    match e {
        NetError::Refused { code, .. } if !code.is_temporary() => SourceError::NotFound,
        e => SourceError::Unavailable(e.to_string()),
    }
}

impl DmtpSignets {
    /// A source asking the delivery hosts of the domains the resolver hands it; `our_domain` is
    /// what HELLO names over TLS; `webpki` is the shared WebPKI verifier (its roots loaded
    /// once) for certificates the record's pins do not decide, and its rustls provider is the
    /// one the client configurations are built over.
    pub fn new(
        provider: &'static CryptoProvider,
        our_domain: Domain,
        webpki: WebPki,
        transports: Transports,
    ) -> DmtpSignets {
        DmtpSignets {
            quic: QuicPool::new(our_domain.clone()),
            provider,
            our_domain,
            webpki,
            transports,
            fixed: HashMap::new(),
        }
    }

    /// Asks `server` for `domain`'s signets instead of looking it up in DNS.
    pub fn with_fixed(mut self, domain: Domain, server: SignetServer) -> DmtpSignets {
        self.fixed.insert(domain, server);
        self
    }

    /// The servers to ask for `domain`'s signets, in order: a fixed one, else its delivery
    /// hosts under its authenticated record.
    async fn servers(
        &self,
        domain: &AuthenticatedDomain,
    ) -> Result<Vec<SignetServer>, SourceError> {
        if let Some(s) = self.fixed.get(domain.domain()) {
            return Ok(vec![s.clone()]);
        }
        let verifier = record_verifier(domain.record(), &self.webpki, self.provider);
        let tls = Arc::new(
            dime_net::client_tls_config(Arc::clone(self.webpki.provider()), verifier)
                .map_err(|_| unavailable("tls configuration unavailable"))?,
        );
        let out: Vec<SignetServer> = delivery_targets(domain)
            .await
            .into_iter()
            .flat_map(|t| {
                let tls = Arc::clone(&tls);
                t.addrs.into_iter().map(move |addr| SignetServer {
                    server_name: t.server_name.clone(),
                    addr,
                    tls: Arc::clone(&tls),
                })
            })
            .collect();
        if out.is_empty() {
            return Err(unavailable("no delivery host with a trustworthy address"));
        }
        Ok(out)
    }

    /// Runs `sgnt` (or HIST) against the servers of `domain` until one answers.
    async fn ask(
        &self,
        domain: &AuthenticatedDomain,
        req: &Request,
    ) -> Result<Vec<Vec<u8>>, SourceError> {
        let mut last = unavailable("no server answered");
        for s in self.servers(domain).await? {
            let key = (domain.domain().clone(), s.addr);
            if self.transports != Transports::TlsOnly {
                // A reply leaves the connection pooled; the pool drops one that failed, and
                // one that did not answer in time is dropped here.
                let r = tokio::time::timeout(
                    SIGNET_REQUEST_TIMEOUT,
                    self.quic.run(&key, s.addr, &s.server_name, &s.tls, |c| async move {
                        match req {
                            Request::Signet(name) => {
                                c.lookup_signet(name, None).await.map(|b| vec![b])
                            }
                            Request::History(name, from) => c.history(name, from).await,
                        }
                    }),
                )
                .await;
                match r {
                    Ok(Ok(v)) => return Ok(v),
                    Ok(Err(e)) => match from_net(e) {
                        SourceError::NotFound => return Err(SourceError::NotFound),
                        e => last = e,
                    },
                    Err(_) => {
                        self.quic.remove(&key);
                        last = timed_out();
                    }
                }
            }
            if self.transports != Transports::QuicOnly {
                let r = within(async {
                    let mut c = TlsConnection::connect(
                        s.addr,
                        &s.server_name,
                        Arc::clone(&s.tls),
                        &self.our_domain,
                    )
                    .await?;
                    let v = match req {
                        Request::Signet(name) => c.lookup_signet(name, None).await.map(|b| vec![b]),
                        Request::History(name, from) => c.history(name, from).await,
                    };
                    let _ = c.quit().await;
                    v
                })
                .await;
                match r {
                    Ok(v) => return Ok(v),
                    Err(SourceError::NotFound) => return Err(SourceError::NotFound),
                    Err(e) => last = e,
                }
            }
        }
        Err(last)
    }
}

enum Request {
    Signet(SignetName),
    History(SignetName, Fingerprint),
}

fn parse(bytes: &[u8]) -> Result<Signet, SourceError> {
    Signet::decode(bytes).map_err(|_| unavailable("the server sent a malformed signet"))
}

impl DmtpSignets {
    /// SGNT for the current signet of `name`, from `domain`'s servers.
    async fn current(
        &self,
        domain: &AuthenticatedDomain,
        name: SignetName,
    ) -> Result<Signet, SourceError> {
        let v = self.ask(domain, &Request::Signet(name)).await?;
        parse(v.first().map(Vec::as_slice).unwrap_or_default())
    }
}

impl SignetSource for DmtpSignets {
    async fn org_signet(&self, domain: &AuthenticatedDomain) -> Result<Signet, SourceError> {
        self.current(domain, SignetName { domain: domain.domain().clone(), mailbox: None }).await
    }

    async fn user_signet(
        &self,
        domain: &AuthenticatedDomain,
        mailbox: &Mailbox,
    ) -> Result<Signet, SourceError> {
        let name = SignetName { domain: mailbox.domain().clone(), mailbox: Some(mailbox.clone()) };
        self.current(domain, name).await
    }

    async fn user_history(
        &self,
        domain: &AuthenticatedDomain,
        mailbox: &Mailbox,
        since: &Fingerprint,
    ) -> Result<Vec<Signet>, SourceError> {
        let name = SignetName { domain: mailbox.domain().clone(), mailbox: Some(mailbox.clone()) };
        let v = self.ask(domain, &Request::History(name, *since)).await?;
        v.iter().map(|b| parse(b)).collect()
    }
}
