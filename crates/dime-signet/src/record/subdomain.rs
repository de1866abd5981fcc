//! The subdomain rule, `sub=` (`spec/dns-record.md` §7): which record applies to a domain.

use super::{Record, SubdomainPolicy};
use dime_core::Domain;

/// Most ancestors a resolver consults for one domain (`spec/dns-record.md` §7).
pub const SUBDOMAIN_MAX_WALK: usize = 8;

/// The ancestors of `domain` whose `_dx` records decide, with the domain's own, which record
/// applies (`spec/dns-record.md` §7.1): nearest first, never a single-label name (a top-level
/// domain), at most [`SUBDOMAIN_MAX_WALK`].
pub fn ancestors_to_query(domain: &Domain) -> Vec<Domain> {
    let mut out = Vec::new();
    let mut rest = domain.as_str();
    while let Some((_, parent)) = rest.split_once('.') {
        if !parent.contains('.') || out.len() == SUBDOMAIN_MAX_WALK {
            break;
        }
        // A suffix of a valid domain is a valid domain; skip it rather than panic if not.
        if let Ok(d) = Domain::parse(parent) {
            out.push(d);
        }
        rest = parent;
    }
    out
}

/// The record that applies to a domain, and where it was published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applicable<'a> {
    /// The domain's own record.
    Own(&'a Record),
    /// An ancestor's record, by `sub=relaxed` or `sub=explicit`.
    Inherited {
        /// The ancestor that published it.
        from: &'a Domain,
        /// Its record.
        record: &'a Record,
    },
    /// No record applies: the domain is not a DIME domain.
    None,
}

/// Applies the subdomain rule (`spec/dns-record.md` §7.2). `own` is the record at
/// `_dx.<domain>`; `ancestors` holds one entry per name of [`ancestors_to_query`], in the same
/// order (nearest first), with the record found there, if any.
///
/// Every lookup must have completed with a usable answer (a record, or a proof that there is
/// none) before this is called: a bogus answer or a timeout on any of them makes the whole
/// resolution fail as that lookup failed (§7.2), since the missing answer might have been the
/// deciding one.
pub fn applicable_record<'a>(
    own: Option<&'a Record>,
    ancestors: &'a [(Domain, Option<Record>)],
) -> Applicable<'a> {
    // 1. The farthest ancestor with sub=explicit governs its whole subtree.
    let explicit = ancestors.iter().rev().find_map(|(d, r)| {
        r.as_ref().filter(|r| r.effective_subdomain() == SubdomainPolicy::Explicit).map(|r| (d, r))
    });
    if let Some((from, record)) = explicit {
        return Applicable::Inherited { from, record };
    }
    // 2. Otherwise the domain's own record.
    if let Some(r) = own {
        return Applicable::Own(r);
    }
    // 3. Otherwise the nearest ancestor's record, if it lets subdomains inherit.
    match ancestors.iter().find_map(|(d, r)| r.as_ref().map(|r| (d, r))) {
        Some((from, record)) if record.effective_subdomain() == SubdomainPolicy::Relaxed => {
            Applicable::Inherited { from, record }
        }
        _ => Applicable::None,
    }
}
