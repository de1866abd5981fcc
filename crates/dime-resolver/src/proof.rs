//! DNSSEC proofs (`spec/discovery.md` §3).

use std::fmt;

/// The DNSSEC status of one answer (RFC 4033 §5, RFC 4035 §4.3; `spec/discovery.md` §3).
///
/// A trust result: it says how far the answer it is attached to may be believed. The order is
/// from weakest to strongest *trust*, except that [`DnssecProof::Bogus`] is never trusted at
/// all: combine proofs with [`DnssecProof::weakest`], never with `min`/`max`.
#[must_use = "a proof says whether the answer may be used"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DnssecProof {
    /// A chain of signed DNSKEY and DS records leads from a trust anchor to the answer (or to
    /// the denial of its existence).
    Secure,
    /// The answer lies in a zone that is provably unsigned: a secure denial of the DS record at
    /// a delegation above it.
    Insecure,
    /// Validation failed: bad or expired signatures, a DS that matches no DNSKEY, missing
    /// DNSSEC records. Never used.
    Bogus,
    /// No status could be established (no answer, or nothing to validate).
    Indeterminate,
}

impl DnssecProof {
    /// The proof of a result built from two answers: bogus if either is bogus, else
    /// indeterminate if either is, else insecure if either is, else secure
    /// (`spec/dns-record.md` §7.1).
    pub fn weakest(self, other: DnssecProof) -> DnssecProof {
        use DnssecProof::{Bogus, Indeterminate, Insecure, Secure};
        match (self, other) {
            (Bogus, _) | (_, Bogus) => Bogus,
            (Indeterminate, _) | (_, Indeterminate) => Indeterminate,
            (Insecure, _) | (_, Insecure) => Insecure,
            (Secure, Secure) => Secure,
        }
    }

    /// The lower-case name used in logs and per-message records.
    pub fn as_str(self) -> &'static str {
        match self {
            DnssecProof::Secure => "secure",
            DnssecProof::Insecure => "insecure",
            DnssecProof::Bogus => "bogus",
            DnssecProof::Indeterminate => "indeterminate",
        }
    }

    /// Whether the answer is DNSSEC-validated.
    pub fn is_secure(self) -> bool {
        self == DnssecProof::Secure
    }

    pub(crate) fn from_hickory(p: hickory_resolver::proto::dnssec::Proof) -> DnssecProof {
        use hickory_resolver::proto::dnssec::Proof;
        match p {
            Proof::Secure => DnssecProof::Secure,
            Proof::Insecure => DnssecProof::Insecure,
            Proof::Bogus => DnssecProof::Bogus,
            Proof::Indeterminate => DnssecProof::Indeterminate,
        }
    }
}

impl fmt::Display for DnssecProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::DnssecProof::*;

    #[test]
    fn weakest_is_commutative_and_bogus_dominates() {
        let all = [Secure, Insecure, Bogus, Indeterminate];
        for a in all {
            for b in all {
                assert_eq!(a.weakest(b), b.weakest(a));
            }
            assert_eq!(a.weakest(Bogus), Bogus);
            assert_eq!(a.weakest(Secure), a);
        }
        assert_eq!(Insecure.weakest(Indeterminate), Indeterminate);
    }

    #[test]
    fn names_are_lower_case() {
        let names = ["secure", "insecure", "bogus", "indeterminate"];
        for (p, name) in [Secure, Insecure, Bogus, Indeterminate].into_iter().zip(names) {
            assert_eq!(p.as_str(), name);
            assert_eq!(p.to_string(), name);
        }
    }

    #[test]
    fn only_secure_is_secure() {
        assert!(Secure.is_secure());
        for p in [Insecure, Bogus, Indeterminate] {
            assert!(!p.is_secure(), "{p}");
        }
    }
}
