//! The `_dx` record with its proof, the subdomain walk, and the decision it leads to
//! (`spec/discovery.md` §4, §5; `spec/dns-record.md` §6, §7).

use crate::dns::{Answer, Dns, TemporaryFailure};
use crate::proof::DnssecProof;
use dime_core::Domain;
use dime_signet::record::{
    Applicable, Policy, Record, RecordError, ancestors_to_query, applicable_record,
};
use std::fmt;
use std::sync::Arc;

/// What one `_dx` query established (`spec/discovery.md` §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DxOutcome {
    /// A DIME record was selected and parsed.
    Record {
        /// The record.
        record: Arc<Record>,
        /// TTL of the TXT RRset, seconds.
        ttl: u32,
    },
    /// No DIME record at the name (NXDOMAIN, NODATA, or no TXT starting with `ver=`).
    NoRecord {
        /// Negative TTL, seconds.
        ttl: u32,
    },
    /// The selected record does not parse, or more than one was found: unusable, treated as
    /// bogus (`spec/dns-record.md` §10).
    Broken(RecordError),
    /// DNSSEC validation failed.
    Bogus,
    /// No answer for now.
    Failed(TemporaryFailure),
}

/// One `_dx` query: its name, outcome and proof.
#[must_use = "a queried name carries the proof of its answer"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DxQuery {
    /// The domain whose `_dx` was queried.
    pub domain: Domain,
    /// What it established.
    pub outcome: DxOutcome,
    /// The answer's DNSSEC proof.
    pub proof: DnssecProof,
}

/// Queries `_dx.<domain>` and selects the DIME record (`spec/dns-record.md` §2).
pub async fn query_dx(dns: &Dns, domain: &Domain) -> DxQuery {
    let answer = dns.txt(&domain.dx_record_name()).await;
    let proof = answer.proof();
    let outcome = match answer {
        Answer::Found { value, ttl, .. } => match Record::parse_rrset(&value) {
            Ok(Some(record)) => DxOutcome::Record { record: Arc::new(record), ttl },
            Ok(None) => DxOutcome::NoRecord { ttl },
            Err(e) => DxOutcome::Broken(e),
        },
        Answer::Absent { ttl, .. } => DxOutcome::NoRecord { ttl },
        Answer::Bogus => DxOutcome::Bogus,
        Answer::Failed(e) => DxOutcome::Failed(e),
    };
    DxQuery { domain: domain.clone(), outcome, proof }
}

/// The record that applies to a mail domain, after the subdomain walk
/// (`spec/dns-record.md` §7).
#[must_use = "a record lookup says whether and how far the record may be trusted"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLookup {
    /// The mail domain asked about.
    pub domain: Domain,
    /// What applies.
    pub outcome: RecordOutcome,
    /// The weakest proof among every answer consulted (`spec/dns-record.md` §7.1).
    pub proof: DnssecProof,
    /// Every query made, nearest first: the domain's own, then its ancestors'.
    pub consulted: Vec<DxQuery>,
}

/// What applies to the mail domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// A record applies.
    Record {
        /// The record.
        record: Arc<Record>,
        /// The domain that publishes it (the mail domain, or the ancestor it is inherited
        /// from).
        published_by: Domain,
        /// How long it may be cached: min(TTL, `exp`) over the answers used, seconds.
        lifetime_secs: u32,
    },
    /// No record applies: the domain is not a DIME domain.
    NoRecord {
        /// Smallest negative TTL among the answers, seconds.
        lifetime_secs: u32,
    },
    /// An answer was bogus (or a selected record was broken) at this domain's `_dx`.
    Bogus {
        /// Where.
        at: Domain,
        /// The parse error when the record was broken rather than DNSSEC-bogus.
        broken: Option<RecordError>,
    },
    /// A query had no answer at this domain's `_dx`.
    Failed {
        /// Where.
        at: Domain,
        /// Why.
        reason: TemporaryFailure,
    },
}

/// Looks up the record that applies to `domain`: `_dx.<domain>` and the ancestors of
/// `spec/dns-record.md` §7.1, concurrently; any bogus answer makes the result bogus, any
/// failure makes it a temporary failure.
pub async fn lookup_record(dns: &Dns, domain: &Domain) -> RecordLookup {
    let mut names = vec![domain.clone()];
    names.extend(ancestors_to_query(domain));
    let mut set = tokio::task::JoinSet::new();
    for (i, name) in names.iter().cloned().enumerate() {
        let dns = dns.clone();
        set.spawn(async move { (i, query_dx(&dns, &name).await) });
    }
    let mut results: Vec<Option<DxQuery>> = vec![None; names.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((i, q)) = joined
            && let Some(slot) = results.get_mut(i)
        {
            *slot = Some(q);
        }
    }
    let consulted: Vec<DxQuery> = names
        .iter()
        .zip(results)
        .map(|(name, q)| {
            q.unwrap_or_else(|| DxQuery {
                domain: name.clone(),
                outcome: DxOutcome::Failed(TemporaryFailure::Other("lookup task failed".into())),
                proof: DnssecProof::Indeterminate,
            })
        })
        .collect();
    decide_record(domain.clone(), consulted)
}

/// Combines the answers of the subdomain walk (`spec/dns-record.md` §7). `consulted` is the
/// domain's own query first, then its ancestors' from the nearest.
pub fn decide_record(domain: Domain, consulted: Vec<DxQuery>) -> RecordLookup {
    let proof = consulted.iter().map(|q| q.proof).fold(DnssecProof::Secure, DnssecProof::weakest);
    let done = |outcome, proof| RecordLookup {
        domain: domain.clone(),
        outcome,
        proof,
        consulted: consulted.clone(),
    };
    for q in &consulted {
        match &q.outcome {
            DxOutcome::Bogus => {
                return done(
                    RecordOutcome::Bogus { at: q.domain.clone(), broken: None },
                    DnssecProof::Bogus,
                );
            }
            DxOutcome::Broken(e) => {
                return done(
                    RecordOutcome::Bogus { at: q.domain.clone(), broken: Some(e.clone()) },
                    proof,
                );
            }
            _ => {}
        }
    }
    for q in &consulted {
        if let DxOutcome::Failed(reason) = &q.outcome {
            return done(
                RecordOutcome::Failed { at: q.domain.clone(), reason: reason.clone() },
                proof,
            );
        }
    }
    let ttl_of = |q: &DxQuery| match &q.outcome {
        DxOutcome::Record { record, ttl } => record.cache_lifetime_secs(*ttl),
        DxOutcome::NoRecord { ttl } => *ttl,
        _ => 0,
    };
    let lifetime_secs = consulted.iter().map(ttl_of).min().unwrap_or(0);
    let as_record = |q: &DxQuery| match &q.outcome {
        DxOutcome::Record { record, .. } => Some((**record).clone()),
        _ => None,
    };
    let own = consulted.first().and_then(as_record);
    let ancestors: Vec<(Domain, Option<Record>)> =
        consulted.iter().skip(1).map(|q| (q.domain.clone(), as_record(q))).collect();
    let outcome = match applicable_record(own.as_ref(), &ancestors) {
        Applicable::Own(_) => {
            find(&consulted, &domain).map_or(RecordOutcome::NoRecord { lifetime_secs }, |record| {
                RecordOutcome::Record { record, published_by: domain.clone(), lifetime_secs }
            })
        }
        Applicable::Inherited { from, .. } => {
            find(&consulted, from).map_or(RecordOutcome::NoRecord { lifetime_secs }, |record| {
                RecordOutcome::Record { record, published_by: from.clone(), lifetime_secs }
            })
        }
        Applicable::None => RecordOutcome::NoRecord { lifetime_secs },
    };
    done(outcome, proof)
}

fn find(consulted: &[DxQuery], at: &Domain) -> Option<Arc<Record>> {
    consulted.iter().find(|q| &q.domain == at).and_then(|q| match &q.outcome {
        DxOutcome::Record { record, .. } => Some(record.clone()),
        _ => None,
    })
}

/// The sender's local policy (`spec/discovery.md` §5). The stricter of it and the record's
/// `pol` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalPolicy {
    /// Whether CA-validated TLS may stand in for DNSSEC when the record is provably insecure
    /// (`spec/dns-record.md` §6, row C). Default: allowed.
    pub allow_ca_tls: bool,
    /// What to do with a user signet that is not chained from the last one seen for its
    /// address (`spec/discovery.md` §6).
    pub unchained_signet: UnchainedSignet,
}

/// How a user signet not chained from the pinned one is treated (`spec/discovery.md` §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnchainedSignet {
    /// Use it, flag it in the per-message record, and pin the new one.
    Flag,
    /// Refuse it (the lookup fails) until the pin is reset by an operator.
    Refuse,
}

impl Default for LocalPolicy {
    fn default() -> LocalPolicy {
        LocalPolicy { allow_ca_tls: true, unchained_signet: UnchainedSignet::Flag }
    }
}

impl LocalPolicy {
    /// The strict setting: no CA-TLS stand-in, unchained signets refused.
    pub fn strict() -> LocalPolicy {
        LocalPolicy { allow_ca_tls: false, unchained_signet: UnchainedSignet::Refuse }
    }
}

/// Why delivery must wait (a temporary failure, retried; `spec/dns-record.md` §6.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeferReason {
    /// DNSSEC validation failed for `_dx.<at>`.
    #[error("bogus dnssec answer for _dx.{at}")]
    Bogus {
        /// Where.
        at: Domain,
    },
    /// The selected record at `_dx.<at>` is broken.
    #[error("broken _dx record at _dx.{at}: {error}")]
    BrokenRecord {
        /// Where.
        at: Domain,
        /// The parse error.
        error: RecordError,
    },
    /// A lookup had no answer.
    #[error("lookup of _dx.{at} failed: {reason}")]
    Lookup {
        /// Where.
        at: Domain,
        /// Why.
        reason: TemporaryFailure,
    },
    /// An insecure record says `pol=strict`: it authenticates nothing (row C, strict).
    #[error("insecure _dx record says pol=strict: dnssec required")]
    InsecureStrict,
    /// An answer had no DNSSEC status at all.
    #[error("no dnssec status could be established for the _dx lookup")]
    Indeterminate,
}

/// The resolver's decision about a domain's record (`spec/discovery.md` §5).
#[must_use = "a decision says whether the domain's keys may be used"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The record is DNSSEC-secure: its POKs are authenticated. Certificates are checked
    /// against its pins, else by the WebPKI (`spec/dns-record.md` §8.3).
    UseDnssec(AuthenticatedRecord),
    /// The record is provably insecure and both the record's `pol` and local policy allow
    /// CA-TLS: its POKs are usable only over a connection whose certificate is CA-valid for
    /// the host (and matches a pin when the record has any). The downgrade is recorded.
    UseWithCaTls(AuthenticatedRecord),
    /// Temporary failure: defer and retry; never downgrade.
    Defer(DeferReason),
    /// The record is insecure and local policy refuses CA-TLS: the POK cannot be
    /// authenticated. Row D of the record's policy says whether legacy SMTP may be used.
    Unauthenticated {
        /// The unauthenticated record.
        record: Arc<Record>,
        /// Its (unauthenticated) policy.
        policy: Policy,
    },
    /// No record applies: not a DIME domain (with the proof of that absence).
    NotDime {
        /// The proof of absence.
        proof: DnssecProof,
    },
}

/// A record that may be used, and how it was authenticated (`spec/discovery.md` §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedRecord {
    /// The record.
    pub record: Arc<Record>,
    /// The domain that publishes it.
    pub published_by: Domain,
    /// The record's DNSSEC proof: secure, or insecure (then CA-TLS is required).
    pub proof: DnssecProof,
    /// How long it may be cached, seconds.
    pub lifetime_secs: u32,
}

impl Decision {
    /// Whether the failure is temporary (defer and retry).
    pub fn is_temporary_failure(&self) -> bool {
        matches!(self, Decision::Defer(_))
    }

    /// The record, when it may be used (with or without CA-TLS).
    pub fn usable_record(&self) -> Option<&AuthenticatedRecord> {
        match self {
            Decision::UseDnssec(r) | Decision::UseWithCaTls(r) => Some(r),
            _ => None,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::UseDnssec(r) => {
                write!(f, "use (dnssec secure, record of {})", r.published_by)
            }
            Decision::UseWithCaTls(r) => {
                write!(f, "use with ca-tls (dnssec insecure, record of {})", r.published_by)
            }
            Decision::Defer(reason) => write!(f, "defer (temporary failure: {reason})"),
            Decision::Unauthenticated { policy, .. } => {
                write!(f, "unauthenticated (insecure, ca-tls refused locally; record pol={policy})")
            }
            Decision::NotDime { proof } => write!(f, "not a dime domain ({proof} absence)"),
        }
    }
}

/// Turns a record lookup into a decision under local policy (`spec/discovery.md` §5).
pub fn decide(lookup: &RecordLookup, local: &LocalPolicy) -> Decision {
    match &lookup.outcome {
        RecordOutcome::Bogus { at, broken: None } => {
            Decision::Defer(DeferReason::Bogus { at: at.clone() })
        }
        RecordOutcome::Bogus { at, broken: Some(error) } => {
            Decision::Defer(DeferReason::BrokenRecord { at: at.clone(), error: error.clone() })
        }
        RecordOutcome::Failed { at, reason } => {
            Decision::Defer(DeferReason::Lookup { at: at.clone(), reason: reason.clone() })
        }
        RecordOutcome::NoRecord { .. } => match lookup.proof {
            DnssecProof::Secure | DnssecProof::Insecure => {
                Decision::NotDime { proof: lookup.proof }
            }
            DnssecProof::Bogus => Decision::Defer(DeferReason::Bogus { at: lookup.domain.clone() }),
            DnssecProof::Indeterminate => Decision::Defer(DeferReason::Indeterminate),
        },
        RecordOutcome::Record { record, published_by, lifetime_secs } => {
            let auth = AuthenticatedRecord {
                record: record.clone(),
                published_by: published_by.clone(),
                proof: lookup.proof,
                lifetime_secs: *lifetime_secs,
            };
            let policy = record.effective_policy();
            match lookup.proof {
                DnssecProof::Secure => Decision::UseDnssec(auth),
                DnssecProof::Insecure if !policy.allows_ca_tls_fallback() => {
                    Decision::Defer(DeferReason::InsecureStrict)
                }
                DnssecProof::Insecure if local.allow_ca_tls => Decision::UseWithCaTls(auth),
                DnssecProof::Insecure => {
                    Decision::Unauthenticated { record: record.clone(), policy }
                }
                DnssecProof::Bogus => {
                    Decision::Defer(DeferReason::Bogus { at: published_by.clone() })
                }
                DnssecProof::Indeterminate => Decision::Defer(DeferReason::Indeterminate),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! `decide` and `decide_record` over every proof, outcome and policy, written from the
    //! table of `spec/discovery.md` §5 (not from the code): a bogus or indeterminate answer
    //! anywhere in the walk defers, and nothing else ever leads to a usable key without a
    //! secure proof or the CA-TLS row.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use DnssecProof::{Bogus, Indeterminate, Insecure, Secure};

    const POK: &str = "0EqyMnQrtKs6E2i9RhXk5tAiSrcaAWuvhSCjMsl3hzc";
    const ALL_PROOFS: [DnssecProof; 4] = [Secure, Insecure, Bogus, Indeterminate];

    fn d(s: &str) -> Domain {
        Domain::parse(s).unwrap()
    }

    fn record(extra: &str) -> Arc<Record> {
        let text = format!("ver=1 pok={POK}{extra}");
        Arc::new(Record::parse_rrset(&[vec![text.into_bytes()]]).unwrap().unwrap())
    }

    fn lookup(outcome: RecordOutcome, proof: DnssecProof) -> RecordLookup {
        RecordLookup { domain: d("mail.test"), outcome, proof, consulted: Vec::new() }
    }

    fn policies() -> [LocalPolicy; 2] {
        [
            LocalPolicy { allow_ca_tls: true, ..LocalPolicy::default() },
            LocalPolicy { allow_ca_tls: false, ..LocalPolicy::default() },
        ]
    }

    fn auth(record: &Arc<Record>, proof: DnssecProof) -> AuthenticatedRecord {
        AuthenticatedRecord {
            record: Arc::clone(record),
            published_by: d("mail.test"),
            proof,
            lifetime_secs: 300,
        }
    }

    #[test]
    fn a_record_is_decided_by_its_proof_its_policy_and_ours() {
        for (pol, extra) in [
            (Policy::Experimental, ""),
            (Policy::Experimental, " pol=experimental"),
            (Policy::Mixed, " pol=mixed"),
            (Policy::Strict, " pol=strict"),
        ] {
            let r = record(extra);
            assert_eq!(r.effective_policy(), pol);
            for local in policies() {
                for proof in ALL_PROOFS {
                    let l = lookup(
                        RecordOutcome::Record {
                            record: Arc::clone(&r),
                            published_by: d("mail.test"),
                            lifetime_secs: 300,
                        },
                        proof,
                    );
                    let want = match (proof, pol, local.allow_ca_tls) {
                        (Secure, _, _) => Decision::UseDnssec(auth(&r, Secure)),
                        (Insecure, Policy::Strict, _) => {
                            Decision::Defer(DeferReason::InsecureStrict)
                        }
                        (Insecure, _, true) => Decision::UseWithCaTls(auth(&r, Insecure)),
                        (Insecure, _, false) => {
                            Decision::Unauthenticated { record: Arc::clone(&r), policy: pol }
                        }
                        (Bogus, _, _) => Decision::Defer(DeferReason::Bogus { at: d("mail.test") }),
                        (Indeterminate, _, _) => Decision::Defer(DeferReason::Indeterminate),
                    };
                    let got = decide(&l, &local);
                    assert_eq!(got, want, "{proof} pol={pol:?} local={local:?}");
                    assert_eq!(got.is_temporary_failure(), matches!(want, Decision::Defer(_)));
                    if matches!(proof, Bogus | Indeterminate) {
                        assert!(got.is_temporary_failure(), "{proof} never downgrades");
                    }
                }
            }
        }
    }

    #[test]
    fn the_strict_local_policy_refuses_the_ca_tls_stand_in_and_unchained_signets() {
        let strict = LocalPolicy::strict();
        assert!(!strict.allow_ca_tls);
        assert_eq!(strict.unchained_signet, UnchainedSignet::Refuse);
        let default = LocalPolicy::default();
        assert!(default.allow_ca_tls);
        assert_eq!(default.unchained_signet, UnchainedSignet::Flag);
    }

    #[test]
    fn no_record_is_not_dime_only_with_a_proof_of_absence() {
        for local in policies() {
            for proof in ALL_PROOFS {
                let got =
                    decide(&lookup(RecordOutcome::NoRecord { lifetime_secs: 60 }, proof), &local);
                let want = match proof {
                    Secure | Insecure => Decision::NotDime { proof },
                    Bogus => Decision::Defer(DeferReason::Bogus { at: d("mail.test") }),
                    Indeterminate => Decision::Defer(DeferReason::Indeterminate),
                };
                assert_eq!(got, want, "{proof}");
            }
        }
    }

    #[test]
    fn bogus_broken_and_failed_lookups_defer_whatever_the_proof() {
        let broken = RecordError::MultipleRecords;
        for local in policies() {
            for proof in ALL_PROOFS {
                let cases = [
                    (
                        RecordOutcome::Bogus { at: d("test"), broken: None },
                        DeferReason::Bogus { at: d("test") },
                    ),
                    (
                        RecordOutcome::Bogus { at: d("test"), broken: Some(broken.clone()) },
                        DeferReason::BrokenRecord { at: d("test"), error: broken.clone() },
                    ),
                    (
                        RecordOutcome::Failed { at: d("test"), reason: TemporaryFailure::Timeout },
                        DeferReason::Lookup { at: d("test"), reason: TemporaryFailure::Timeout },
                    ),
                ];
                for (outcome, reason) in cases {
                    assert_eq!(decide(&lookup(outcome, proof), &local), Decision::Defer(reason));
                }
            }
        }
    }

    fn query(domain: &str, outcome: DxOutcome, proof: DnssecProof) -> DxQuery {
        DxQuery { domain: d(domain), outcome, proof }
    }

    #[test]
    fn one_bogus_answer_anywhere_in_the_walk_makes_the_lookup_bogus() {
        // The domain's own record is secure and usable; an ancestor's answer is bogus (or
        // broken, or failed): the walk's result is never the record alone.
        let own =
            || query("a.mail.test", DxOutcome::Record { record: record(""), ttl: 300 }, Secure);
        let cases = [
            (query("mail.test", DxOutcome::Bogus, Bogus), "bogus"),
            (query("mail.test", DxOutcome::NoRecord { ttl: 60 }, Bogus), "bogus proof"),
            (query("mail.test", DxOutcome::Broken(RecordError::MultipleRecords), Secure), "broken"),
            (
                query("mail.test", DxOutcome::Failed(TemporaryFailure::Timeout), Indeterminate),
                "failed",
            ),
        ];
        for (ancestor, what) in cases {
            let l = decide_record(d("a.mail.test"), vec![own(), ancestor.clone()]);
            let want = match &ancestor.outcome {
                DxOutcome::Bogus => RecordOutcome::Bogus { at: d("mail.test"), broken: None },
                DxOutcome::Broken(e) => {
                    RecordOutcome::Bogus { at: d("mail.test"), broken: Some(e.clone()) }
                }
                DxOutcome::Failed(reason) => {
                    RecordOutcome::Failed { at: d("mail.test"), reason: reason.clone() }
                }
                // A bogus proof of absence: the record outcome stands, the proof is bogus.
                _ => l.outcome.clone(),
            };
            assert_eq!(l.outcome, want, "{what}");
            assert_eq!(l.consulted, vec![own(), ancestor.clone()]);
            for local in policies() {
                let got = decide(&l, &local);
                assert!(got.is_temporary_failure(), "{what}: {got:?}");
            }
        }
        // A record whose own answer carries a bogus proof (hickory may hand one back as an
        // answer rather than an error) is bogus too, never insecure.
        let l = decide_record(
            d("mail.test"),
            vec![query("mail.test", DxOutcome::Record { record: record(""), ttl: 300 }, Bogus)],
        );
        assert_eq!(l.proof, Bogus);
        for local in policies() {
            assert_eq!(
                decide(&l, &local),
                Decision::Defer(DeferReason::Bogus { at: d("mail.test") })
            );
        }
        // All secure: the record is used, cached no longer than the shortest TTL consulted.
        let l = decide_record(
            d("a.mail.test"),
            vec![own(), query("mail.test", DxOutcome::NoRecord { ttl: 60 }, Secure)],
        );
        assert_eq!(
            l.outcome,
            RecordOutcome::Record {
                record: record(""),
                published_by: d("a.mail.test"),
                lifetime_secs: 60
            }
        );
        assert!(matches!(decide(&l, &LocalPolicy::default()), Decision::UseDnssec(_)));
        let l = decide_record(
            d("a.mail.test"),
            vec![
                query("a.mail.test", DxOutcome::Record { record: record(""), ttl: 40 }, Secure),
                query("mail.test", DxOutcome::NoRecord { ttl: 60 }, Secure),
            ],
        );
        assert!(matches!(l.outcome, RecordOutcome::Record { lifetime_secs: 40, .. }));
        // No record anywhere: not DIME, for the shortest negative TTL.
        let l = decide_record(
            d("a.mail.test"),
            vec![
                query("a.mail.test", DxOutcome::NoRecord { ttl: 90 }, Secure),
                query("mail.test", DxOutcome::NoRecord { ttl: 30 }, Secure),
            ],
        );
        assert_eq!(l.outcome, RecordOutcome::NoRecord { lifetime_secs: 30 });
        // One insecure ancestor answer makes the whole lookup insecure: CA-TLS at best.
        let l = decide_record(
            d("a.mail.test"),
            vec![own(), query("mail.test", DxOutcome::NoRecord { ttl: 60 }, Insecure)],
        );
        assert_eq!(l.proof, Insecure);
        assert!(matches!(decide(&l, &LocalPolicy::default()), Decision::UseWithCaTls(_)));
    }
}
