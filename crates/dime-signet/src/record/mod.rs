//! The `_dx` DNS management record (`spec/dns-record.md`).
//!
//! A domain that runs DIME publishes one TXT record at `_dx.<domain>`: whitespace-separated
//! `key=value` tokens naming the record version, the organisation's primary keys (POKs),
//! signatures over the delivery hosts' TLS certificates, the message policy, signet
//! syndicates, delivery hosts, a cache lifetime and a subdomain rule.
//!
//! What this module is: a pure parser and formatter ([`Record::parse`],
//! [`Record::parse_strings`], [`Record::parse_rrset`], [`Record::format`],
//! [`Record::to_strings`]), a key check ([`Record::check_keys`]), the `tls=` computation
//! ([`tls_value`], [`check_tls`]) and the subdomain rule ([`applicable_record`]).
//!
//! What it is not: a resolver. It performs no DNS query and knows nothing of DNSSEC; the
//! caller says how the record was obtained, and must call [`Record::check_keys`] before it
//! trusts a POK (parsing checks syntax only).

mod error;
mod format;
mod parse;
mod subdomain;
mod tls;

pub use error::{RecordError, TlsCheckError};
pub use subdomain::{Applicable, SUBDOMAIN_MAX_WALK, ancestors_to_query, applicable_record};
pub use tls::{TlsMatch, check_tls, tls_value};

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use dime_core::Domain;
use dime_core::crypto::{Ed25519PublicKey, Ed25519Signature};
use std::fmt;
use std::str::FromStr;

/// The only record version this module understands: the value of `ver=` (`spec/dns-record.md`
/// §5.1).
pub const RECORD_VERSION: u8 = 1;

/// Longest DNS character-string, in octets (RFC 1035 §3.3; `spec/dns-record.md` §2).
pub const TXT_STRING_MAX_LEN: usize = 255;

/// Most `pok=` keys in one record (`spec/dns-record.md` §9).
pub const MAX_POKS: usize = 8;

/// Most `tls=` pins in one record (`spec/dns-record.md` §9).
pub const MAX_TLS_PINS: usize = 16;

/// Most `dx=` delivery hosts in one record (`spec/dns-record.md` §9).
pub const MAX_DELIVERY_HOSTS: usize = 16;

/// Most `syn=` syndicates in one record (`spec/dns-record.md` §9).
pub const MAX_SYNDICATES: usize = 16;

/// Most unknown `key=value` tokens kept from one record (`spec/dns-record.md` §9).
pub const MAX_UNKNOWN_KEYS: usize = 32;

/// Longest key, in octets (`spec/dns-record.md` §3).
pub const KEY_MAX_LEN: usize = 32;

/// Smallest `exp=` value, in days (`spec/dns-record.md` §5.7).
pub const EXPIRY_MIN_DAYS: u16 = 1;

/// Largest `exp=` value, in days (`spec/dns-record.md` §5.7).
pub const EXPIRY_MAX_DAYS: u16 = 365;

/// Length of a `pok=` value: 43 characters of unpadded base64 (32 octets).
pub const POK_TEXT_LEN: usize = 43;

/// Length of a `tls=` value: 86 characters of unpadded base64 (64 octets).
pub const TLS_TEXT_LEN: usize = 86;

/// The message policy, `pol=` (`spec/dns-record.md` §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Policy {
    /// `experimental`: DIME on trial; senders may fall back to legacy SMTP (the default).
    Experimental,
    /// `mixed`: DIME in production beside legacy mail; DIME senders do not downgrade once the
    /// POK is authenticated.
    Mixed,
    /// `strict`: DIME only; no downgrade, no CA-TLS stand-in, no legacy or server-signed mail.
    Strict,
}

impl Policy {
    /// The canonical (lower-case) value.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Experimental => "experimental",
            Policy::Mixed => "mixed",
            Policy::Strict => "strict",
        }
    }

    /// Parses a value, ignoring ASCII case.
    pub fn parse(s: &str) -> Option<Policy> {
        [Policy::Experimental, Policy::Mixed, Policy::Strict]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }

    /// When a DIME sender may fall back to legacy SMTP (`spec/dns-record.md` §6, row D).
    pub fn legacy_fallback(self) -> LegacyFallback {
        match self {
            Policy::Experimental => LegacyFallback::OnAnyDmtpFailure,
            Policy::Mixed => LegacyFallback::OnlyWithoutAuthenticatedPok,
            Policy::Strict => LegacyFallback::Never,
        }
    }

    /// Whether a CA-validated TLS certificate may stand in for DNSSEC when the zone is provably
    /// unsigned, where local policy also allows it (`spec/dns-record.md` §6, row C).
    pub fn allows_ca_tls_fallback(self) -> bool {
        self != Policy::Strict
    }

    /// Whether the domain accepts mail that is not author-signed: legacy SMTP mail and DIME
    /// messages signed by a server on a legacy sender's behalf (`spec/dns-record.md` §6, rows
    /// A and B).
    pub fn accepts_unsigned(self) -> bool {
        self != Policy::Strict
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a DIME sender may deliver by legacy SMTP instead of DMTP (`spec/dns-record.md` §6,
/// row D). Whatever the value, a bogus record never leads to a fallback (§6.2), and every
/// fallback is logged and recorded with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegacyFallback {
    /// `experimental`: after any failure to deliver by DMTP.
    OnAnyDmtpFailure,
    /// `mixed`: only when the POK cannot be authenticated at all (insecure zone and CA-TLS
    /// refused by local policy, or no acceptable certificate); never once it is authenticated.
    OnlyWithoutAuthenticatedPok,
    /// `strict`: never.
    Never,
}

/// The subdomain rule, `sub=` (`spec/dns-record.md` §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubdomainPolicy {
    /// `strict`: the record covers its own domain only (the default).
    Strict,
    /// `relaxed`: subdomains without a record of their own inherit this one.
    Relaxed,
    /// `explicit`: this record covers every subdomain; their own records are ignored.
    Explicit,
}

impl SubdomainPolicy {
    /// The canonical (lower-case) value.
    pub fn as_str(self) -> &'static str {
        match self {
            SubdomainPolicy::Strict => "strict",
            SubdomainPolicy::Relaxed => "relaxed",
            SubdomainPolicy::Explicit => "explicit",
        }
    }

    /// Parses a value, ignoring ASCII case.
    pub fn parse(s: &str) -> Option<SubdomainPolicy> {
        [SubdomainPolicy::Strict, SubdomainPolicy::Relaxed, SubdomainPolicy::Explicit]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for SubdomainPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host named by `dx=` or `syn=`: a domain name and an optional port (`spec/dns-record.md`
/// §5.5). Without a port, the service's default port applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Host {
    /// The host name, canonical (lower case, no final dot).
    pub name: Domain,
    /// The port, if the record names one (1 to 65535).
    pub port: Option<u16>,
}

impl Host {
    /// A host on the service's default port.
    pub fn new(name: Domain) -> Host {
        Host { name, port: None }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

impl FromStr for Host {
    type Err = RecordError;
    /// Parses `name[:port]` as a `dx=` value would be.
    fn from_str(s: &str) -> Result<Host, RecordError> {
        parse::parse_host(parse::Key::Dx, s)
    }
}

/// A `tls=` value: the POK's Ed25519 signature over SHA-512 of a delivery host's DER
/// certificate (`spec/dns-record.md` §8). Its text form is 86 characters of unpadded base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TlsPin(pub Ed25519Signature);

impl fmt::Display for TlsPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD_NO_PAD.encode(self.0.0))
    }
}

impl FromStr for TlsPin {
    type Err = RecordError;
    /// Parses 86 characters of unpadded standard base64.
    fn from_str(s: &str) -> Result<TlsPin, RecordError> {
        parse::parse_tls(s)
    }
}

/// A parsed `_dx` management record (`spec/dns-record.md` §5). The version is implied: only
/// version [`RECORD_VERSION`] parses, and [`Record::format`] always writes `ver=1`.
///
/// `Option` fields are `None` when the key is absent; the `effective_*` methods apply the
/// defaults. A record built by hand should pass [`Record::validate`] before it is formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `pok=`: the primary organisational keys, in record order (at least one).
    pub poks: Vec<Ed25519PublicKey>,
    /// `tls=`: signatures over the delivery hosts' certificates, in record order.
    pub tls: Vec<TlsPin>,
    /// `pol=`: the message policy.
    pub policy: Option<Policy>,
    /// `syn=`: syndicates, other hosts that serve this domain's signets, in record order.
    pub syndicates: Vec<Host>,
    /// `dx=`: the DMTP delivery hosts, in preference order (empty: use the MX hosts).
    pub delivery_hosts: Vec<Host>,
    /// `exp=`: the longest time a resolver may cache the record, in days.
    pub expiry_days: Option<u16>,
    /// `sub=`: the subdomain rule.
    pub subdomain: Option<SubdomainPolicy>,
    /// Tokens with keys this version does not know: (key in lower case, value), in record
    /// order. Ignored by this version, kept for forward compatibility and reporting.
    pub unknown: Vec<(String, String)>,
}

impl Record {
    /// A record with the given POKs and every optional key absent.
    pub fn new(poks: Vec<Ed25519PublicKey>) -> Record {
        Record {
            poks,
            tls: Vec::new(),
            policy: None,
            syndicates: Vec::new(),
            delivery_hosts: Vec::new(),
            expiry_days: None,
            subdomain: None,
            unknown: Vec::new(),
        }
    }

    /// The message policy, defaulting to [`Policy::Experimental`] (`spec/dns-record.md` §5.4).
    pub fn effective_policy(&self) -> Policy {
        self.policy.unwrap_or(Policy::Experimental)
    }

    /// The subdomain rule, defaulting to [`SubdomainPolicy::Strict`] (`spec/dns-record.md`
    /// §5.8).
    pub fn effective_subdomain(&self) -> SubdomainPolicy {
        self.subdomain.unwrap_or(SubdomainPolicy::Strict)
    }

    /// How long a resolver may cache this record, in seconds: the smaller of the DNS TTL and
    /// `exp=` days (`spec/dns-record.md` §5.7). Without `exp=`, the TTL alone.
    pub fn cache_lifetime_secs(&self, dns_ttl_secs: u32) -> u32 {
        match self.expiry_days {
            Some(d) => dns_ttl_secs.min(u32::from(d).saturating_mul(86_400)),
            None => dns_ttl_secs,
        }
    }

    /// Checks the rules that [`Record::parse`] enforces on text against a record built by hand:
    /// at least one POK, the per-key counts, `exp=` in range, unknown keys well formed and not
    /// shadowing a known key, and the formatted length within
    /// [`dime_core::limits::DX_RECORD_MAX_LEN`].
    pub fn validate(&self) -> Result<(), RecordError> {
        format::validate(self)
    }

    /// Checks every POK is a valid Ed25519 point of large order (`spec/dns-record.md` §5.2).
    /// Parsing checks syntax only: call this before trusting any POK.
    pub fn check_keys(
        &self,
        provider: &dime_core::crypto::CryptoProvider,
    ) -> Result<(), RecordError> {
        for (index, key) in self.poks.iter().enumerate() {
            provider.signature.check_public_key(key).map_err(|_| RecordError::WeakPok { index })?;
        }
        Ok(())
    }

    /// Parses the record text (all character-strings already joined; `spec/dns-record.md` §3).
    pub fn parse(text: &str) -> Result<Record, RecordError> {
        parse::parse_text(text.as_bytes())
    }

    /// Parses the character-strings of one TXT resource record: each at most
    /// [`TXT_STRING_MAX_LEN`] octets, joined without separator (`spec/dns-record.md` §2).
    pub fn parse_strings<S: AsRef<[u8]>>(strings: &[S]) -> Result<Record, RecordError> {
        let joined = parse::join_strings(strings)?;
        parse::parse_text(&joined)
    }

    /// Picks and parses the DIME record among all TXT resource records at `_dx.<domain>`
    /// (`spec/dns-record.md` §2): `Ok(None)` when none starts with a version token, an error
    /// when more than one does.
    pub fn parse_rrset<R: AsRef<[S]>, S: AsRef<[u8]>>(
        rrset: &[R],
    ) -> Result<Option<Record>, RecordError> {
        parse::parse_rrset(rrset)
    }

    /// The canonical text (`spec/dns-record.md` §4): `ver=1`, then `pok`, `tls`, `pol`, `syn`,
    /// `dx`, `exp`, `sub` and the unknown tokens, in that order, canonical key names, one
    /// space between tokens. For a record that passes [`Record::validate`],
    /// `Record::parse(&r.format()) == Ok(r)`.
    pub fn format(&self) -> String {
        format::format(self)
    }

    /// The canonical text split into character-strings of at most [`TXT_STRING_MAX_LEN`]
    /// octets, at token boundaries where possible (`spec/dns-record.md` §4).
    pub fn to_strings(&self) -> Vec<String> {
        format::split_strings(&self.format())
    }

    /// The character-strings in zone-file presentation form: each in double quotes, separated
    /// by one space (the record text holds no `"` or `\`).
    pub fn to_zone_text(&self) -> String {
        let quoted: Vec<String> = self.to_strings().iter().map(|s| format!("\"{s}\"")).collect();
        quoted.join(" ")
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format())
    }
}

impl FromStr for Record {
    type Err = RecordError;
    fn from_str(s: &str) -> Result<Record, RecordError> {
        Record::parse(s)
    }
}

#[cfg(test)]
mod tests;
