//! `dime lookup`: key discovery for a domain or an address (`spec/discovery.md`).

use crate::cli::LookupArgs;
use crate::files::read_bytes;
use anyhow::Context as _;
use dime_core::crypto::default_provider;
use dime_core::{Domain, Mailbox};
use dime_resolver::{
    Decision, Dns, DnsConfig, DxOutcome, KeyResolver, LocalPolicy, MemoryPinStore, MemorySource,
    TrustAnchor,
};
use dime_signet::Signet;
use std::io::Write;
use std::net::SocketAddr;

/// The first server of `/etc/resolv.conf` ([`DnsConfig::system_servers`]).
fn system_resolver() -> anyhow::Result<SocketAddr> {
    DnsConfig::system_servers()
        .into_iter()
        .next()
        .context("no --resolver given and no nameserver in /etc/resolv.conf")
}

fn read_signet(path: &std::path::Path) -> anyhow::Result<Signet> {
    Signet::decode_any(&read_bytes(path)?).with_context(|| format!("{}", path.display()))
}

pub(crate) fn lookup(a: LookupArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let (domain, mailbox): (Domain, Option<Mailbox>) = if a.target.contains('@') {
        let m: Mailbox = a.target.parse().context("not a valid address")?;
        (m.domain().clone(), Some(m))
    } else {
        (a.target.parse().context("not a valid domain")?, None)
    };
    let server = match a.resolver {
        Some(s) => s,
        None => system_resolver()?,
    };
    let anchor = a.trust_anchor.map_or(TrustAnchor::IanaRoot, TrustAnchor::File);
    let local = if a.strict { LocalPolicy::strict() } else { LocalPolicy::default() };
    let crypto = default_provider();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let dns = Dns::new(&DnsConfig::new(vec![server]).trust_anchor(anchor))?;
        let source = MemorySource::new(crypto);
        if let Some(p) = &a.org_signet {
            source.publish_org(&domain, read_signet(p)?);
        }
        if let (Some(p), Some(m)) = (&a.user_signet, &mailbox) {
            source.publish_user(m, read_signet(p)?);
        }
        let resolver = KeyResolver::new(dns, source, MemoryPinStore::default(), local, crypto);
        let disc = resolver.discover_domain(&domain).await;
        writeln!(out, "domain: {domain}")?;
        for q in &disc.lookup.consulted {
            let what = match &q.outcome {
                DxOutcome::Record { ttl, .. } => format!("record (ttl {ttl})"),
                DxOutcome::NoRecord { .. } => "no record".to_owned(),
                DxOutcome::Broken(e) => format!("broken record: {e}"),
                DxOutcome::Bogus => "bogus".to_owned(),
                DxOutcome::Failed(e) => format!("failed: {e}"),
            };
            writeln!(out, "query: _dx.{} {} ({})", q.domain, q.proof, what)?;
        }
        writeln!(out, "proof: {}", disc.lookup.proof)?;
        writeln!(out, "decision: {}", disc.decision)?;
        let auth = match &disc.decision {
            Decision::Defer(reason) => {
                anyhow::bail!("{domain}: temporary failure, delivery would defer: {reason}")
            }
            Decision::Unauthenticated { record, .. } => {
                writeln!(out, "record (unauthenticated): {record}")?;
                return Ok(());
            }
            Decision::NotDime { .. } => return Ok(()),
            Decision::UseDnssec(auth) | Decision::UseWithCaTls(auth) => auth,
        };
        writeln!(out, "record: {}", auth.record)?;
        writeln!(out, "record from: _dx.{}", auth.published_by)?;
        let how = match &disc.decision {
            Decision::UseWithCaTls(_) => {
                "dnssec insecure: the poks count only over a ca-validated tls connection"
            }
            _ => "dnssec secure: the poks are authenticated by dnssec",
        };
        writeln!(out, "record authenticated: {how}")?;
        writeln!(out, "cache lifetime: {} s", auth.lifetime_secs)?;
        for h in resolver.delivery_hosts(&domain, &auth.record).await {
            let addrs: Vec<String> = h.addresses_to_show().iter().map(|a| a.to_string()).collect();
            writeln!(
                out,
                "delivery host: {} (from {}) [{}] ({})",
                h.host,
                h.source.as_str(),
                addrs.join(" "),
                h.proof()
            )?;
        }
        if a.org_signet.is_none() {
            writeln!(out, "signets: not fetched (give --org-signet/--user-signet files; DMTP SGNT comes later)")?;
            return Ok(());
        }
        let org_line = |key: &dime_resolver::OrgKey| {
            format!(
                "org signet: state={:?} fingerprint={} authenticated: pok={} of _dx.{} ({})",
                key.org.state,
                key.org.fingerprint,
                key.org.pok_index,
                key.provenance.record_from,
                key.provenance.record_proof
            )
        };
        match &mailbox {
            Some(m) if a.user_signet.is_some() => {
                let key = resolver.user_key(m).await?;
                writeln!(out, "{}", org_line(&key.org))?;
                let signer = match key.user.signer {
                    dime_resolver::UserSigner::Pok => "pok",
                    dime_resolver::UserSigner::Sok => "sok",
                };
                writeln!(
                    out,
                    "user signet: state={:?} fingerprint={} authenticated: signed-by={signer} chain={}",
                    key.user.state,
                    key.user.fingerprint,
                    key.user.chain.as_str()
                )?;
                writeln!(out, "provenance: {}", key.provenance)?;
            }
            _ => {
                let key = resolver.org_key(&domain).await?;
                writeln!(out, "{}", org_line(&key))?;
                writeln!(out, "provenance: {}", key.provenance)?;
            }
        }
        anyhow::Ok(())
    })
}
