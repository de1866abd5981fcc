//! `dime record parse|format`.

use crate::cli::{RecordFormatArgs, RecordParseArgs};
use anyhow::{Context, bail};
use dime_signet::record::{Host, Policy, Record, SubdomainPolicy, TlsPin};
use std::io::Write;

/// Splits zone-file presentation text into its quoted character-strings; text without quotes
/// is one string.
fn strings_of(text: &str) -> anyhow::Result<Vec<String>> {
    let text = text.trim();
    if !text.contains('"') {
        return Ok(vec![text.to_owned()]);
    }
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { bail!("unterminated quoted string in record") };
        out.push(after[..end].to_owned());
        rest = &after[end + 1..];
    }
    Ok(out)
}

pub(crate) fn parse(a: RecordParseArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let strings = match &a.file {
        Some(f) => strings_of(&crate::files::read_text(f)?)?,
        None if a.text.len() == 1 => strings_of(&a.text[0])?,
        None => a.text.clone(),
    };
    let record = Record::parse_strings(&strings).context("record does not parse")?;
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&record_json(&record))?)?;
        return Ok(());
    }
    writeln!(out, "canonical: {}", record.format())?;
    for (i, k) in record.poks.iter().enumerate() {
        writeln!(out, "pok[{i}]: {k}")?;
    }
    for (i, t) in record.tls.iter().enumerate() {
        writeln!(out, "tls[{i}]: {t}")?;
    }
    writeln!(out, "policy: {}{}", record.effective_policy(), absent(record.policy.is_none()))?;
    for h in &record.syndicates {
        writeln!(out, "syndicate: {h}")?;
    }
    if record.delivery_hosts.is_empty() {
        writeln!(out, "delivery: the domain's MX hosts (no dx=)")?;
    }
    for h in &record.delivery_hosts {
        writeln!(out, "delivery: {h}")?;
    }
    match record.expiry_days {
        Some(d) => writeln!(out, "expiry: {d} days")?,
        None => writeln!(out, "expiry: the DNS TTL (no exp=)")?,
    }
    writeln!(
        out,
        "subdomain: {}{}",
        record.effective_subdomain(),
        absent(record.subdomain.is_none())
    )?;
    for (k, v) in &record.unknown {
        writeln!(out, "unknown key ignored: {k}={v}")?;
    }
    Ok(())
}

fn absent(is_default: bool) -> &'static str {
    if is_default { " (default)" } else { "" }
}

pub(crate) fn record_json(r: &Record) -> serde_json::Value {
    serde_json::json!({
        "canonical": r.format(),
        "strings": r.to_strings(),
        "pok": r.poks.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
        "tls": r.tls.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        "policy": r.effective_policy().as_str(),
        "policy_given": r.policy.is_some(),
        "syndicates": r.syndicates.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
        "delivery_hosts": r.delivery_hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
        "expiry_days": r.expiry_days,
        "subdomain": r.effective_subdomain().as_str(),
        "subdomain_given": r.subdomain.is_some(),
        "unknown": r.unknown.iter().map(|(k, v)| serde_json::json!([k, v])).collect::<Vec<_>>(),
    })
}

pub(crate) fn format(a: RecordFormatArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut poks = Vec::new();
    for p in &a.poks {
        poks.push(parse_pok(p)?);
    }
    let mut r = Record::new(poks);
    for t in &a.tls {
        r.tls.push(t.parse::<TlsPin>().with_context(|| format!("bad --tls value {t:?}"))?);
    }
    r.policy = a.policy.as_deref().map(parse_policy).transpose()?;
    r.subdomain = a
        .subdomain
        .as_deref()
        .map(|s| {
            SubdomainPolicy::parse(s)
                .with_context(|| format!("--sub must be strict, relaxed or explicit, not {s:?}"))
        })
        .transpose()?;
    for h in &a.syndicates {
        r.syndicates.push(h.parse::<Host>().with_context(|| format!("bad --syn host {h:?}"))?);
    }
    for h in &a.delivery_hosts {
        r.delivery_hosts.push(h.parse::<Host>().with_context(|| format!("bad --dx host {h:?}"))?);
    }
    r.expiry_days = a.expiry_days;
    r.validate().context("record is not valid")?;
    if a.zone {
        writeln!(out, "{}", r.to_zone_text())?;
    } else {
        writeln!(out, "{}", r.format())?;
    }
    Ok(())
}

pub(crate) fn parse_policy(s: &str) -> anyhow::Result<Policy> {
    Policy::parse(s)
        .with_context(|| format!("policy must be experimental, mixed or strict, not {s:?}"))
}

fn parse_pok(s: &str) -> anyhow::Result<dime_core::crypto::Ed25519PublicKey> {
    // The record parser owns the pok= syntax: parse a one-key record to reuse it.
    let r = Record::parse(&format!("ver=1 pok={s}")).with_context(|| format!("bad --pok {s:?}"))?;
    r.poks.first().copied().context("no pok parsed")
}
