//! `dime-resolver`: DIME key discovery.
//!
//! What it is: the layer-4 crate that finds and authenticates a domain's keys. It looks up the
//! `_dx.<domain>` record with DNSSEC validation (hickory-resolver), attaches a
//! [`DnssecProof`] to every answer, turns the proofs and the record's policy into a typed
//! [`Decision`], verifies DMTP server certificates against `tls=` pins or the WebPKI
//! ([`tls::DimeCertVerifier`]), fetches and validates signets through a [`SignetSource`],
//! follows user-signet rotation with a [`PinStore`], and caches it all. The normative text is
//! `spec/discovery.md`.
//!
//! What it is not: a DMTP client (`dime-server`'s `DmtpSignets` implements [`SignetSource`]
//! over DMTP) or a recursive resolver: it asks configured resolvers and validates what they
//! return.

pub mod cache;
pub mod discovery;
pub mod dns;
pub mod proof;
pub mod resolver;
pub mod signets;
pub mod tls;

pub use discovery::{
    AuthenticatedRecord, Decision, DeferReason, DxOutcome, DxQuery, LocalPolicy, RecordLookup,
    RecordOutcome, UnchainedSignet, decide, decide_record, lookup_record, query_dx,
};
pub use dns::{Answer, ConfigError, Dns, DnsConfig, TemporaryFailure, TrustAnchor};
pub use proof::DnssecProof;
pub use resolver::{
    AuthenticatedDomain, DNS_PROOFS_METRIC, DeliveryHost, DiscoveryError, DomainDiscovery,
    HostSource, KeyResolver, OrgKey, Provenance, UserKey, delivery_hosts,
};
pub use signets::{
    ChainStatus, MemoryPinStore, MemorySource, Pin, PinStore, SignetError, SignetSource,
    SourceError, UserSigner,
};
