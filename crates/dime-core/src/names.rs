//! Domain names and mailbox addresses.

use crate::limits::{DOMAIN_MAX_LEN, LABEL_MAX_LEN, LOCAL_PART_MAX_LEN};
use std::fmt;
use std::str::FromStr;

/// Why a domain or mailbox was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("name is empty")]
    Empty,
    /// The domain is longer than [`DOMAIN_MAX_LEN`].
    #[error("domain is longer than {DOMAIN_MAX_LEN} octets")]
    DomainTooLong,
    /// A label is empty or longer than [`LABEL_MAX_LEN`].
    #[error("domain label is empty or longer than {LABEL_MAX_LEN} octets")]
    BadLabelLength,
    /// A label holds a character outside letters, digits and hyphen, or starts or ends with a hyphen.
    #[error("domain label must be letters, digits and inner hyphens (A-labels for IDN)")]
    BadLabelChar,
    /// A mailbox has no `@`, or an empty side.
    #[error("mailbox must be local-part@domain")]
    NotAMailbox,
    /// The local part is longer than [`LOCAL_PART_MAX_LEN`].
    #[error("mailbox local part is longer than {LOCAL_PART_MAX_LEN} octets")]
    LocalPartTooLong,
    /// The local part holds a control character, space, or one of `<>()[]\,;:@"`.
    #[error("mailbox local part holds a control, space or special character")]
    BadLocalPartChar,
}

/// A DNS domain name in canonical form: ASCII (IDNs in A-label form), lower case, without a
/// final dot, at most [`DOMAIN_MAX_LEN`] octets, labels of letters, digits and inner hyphens
/// (`_` is also allowed, for service labels such as `_dx`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Parses and canonicalises a domain name (lower case; one final dot removed).
    pub fn parse(s: &str) -> Result<Domain, NameError> {
        let s = s.strip_suffix('.').unwrap_or(s);
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > DOMAIN_MAX_LEN {
            return Err(NameError::DomainTooLong);
        }
        for label in s.split('.') {
            if label.is_empty() || label.len() > LABEL_MAX_LEN {
                return Err(NameError::BadLabelLength);
            }
            let ok_chars =
                label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok_chars || label.starts_with('-') || label.ends_with('-') {
                return Err(NameError::BadLabelChar);
            }
        }
        Ok(Domain(s.to_ascii_lowercase()))
    }

    /// The canonical text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of this domain's DIME management record: `_dx.<domain>`.
    pub fn dx_record_name(&self) -> String {
        format!("_dx.{}", self.0)
    }
}

impl FromStr for Domain {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Domain::parse(s)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Domain({})", self.0)
    }
}

/// A mailbox address `local@domain`. The domain is canonical ([`Domain`]); the local part is
/// kept as given (local parts are case-sensitive, RFC 5321 §2.4): dot-atom characters and
/// UTF-8 (RFC 6531), no quoting.
///
/// `Debug` shows only the domain: local parts are personal data and must not reach logs.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mailbox {
    local: String,
    domain: Domain,
}

impl Mailbox {
    /// Parses `local@domain`; the last `@` splits the two sides.
    pub fn parse(s: &str) -> Result<Mailbox, NameError> {
        let (local, domain) = s.rsplit_once('@').ok_or(NameError::NotAMailbox)?;
        if local.is_empty() || domain.is_empty() {
            return Err(NameError::NotAMailbox);
        }
        if local.len() > LOCAL_PART_MAX_LEN {
            return Err(NameError::LocalPartTooLong);
        }
        let bad = |c: char| c.is_control() || c.is_whitespace() || "<>()[]\\,;:@\"".contains(c);
        if local.chars().any(bad)
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return Err(NameError::BadLocalPartChar);
        }
        Ok(Mailbox { local: local.to_owned(), domain: Domain::parse(domain)? })
    }

    /// The local part.
    pub fn local_part(&self) -> &str {
        &self.local
    }

    /// The domain.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }
}

impl FromStr for Mailbox {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mailbox::parse(s)
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mailbox(<local>@{})", self.domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_is_canonical() {
        assert_eq!(Domain::parse("Example.COM.").unwrap().as_str(), "example.com");
        assert_eq!(Domain::parse("example.com").unwrap().dx_record_name(), "_dx.example.com");
    }

    #[test]
    fn domain_rejects_bad_names() {
        assert_eq!(Domain::parse(""), Err(NameError::Empty));
        assert_eq!(Domain::parse("a..b"), Err(NameError::BadLabelLength));
        assert_eq!(Domain::parse("-a.b"), Err(NameError::BadLabelChar));
        assert_eq!(Domain::parse("a b.c"), Err(NameError::BadLabelChar));
        assert_eq!(Domain::parse(&"a".repeat(64)), Err(NameError::BadLabelLength));
        let long = vec!["a".repeat(60); 5].join(".");
        assert_eq!(Domain::parse(&long), Err(NameError::DomainTooLong));
    }

    #[test]
    fn mailbox_parses_and_hides_local_part_in_debug() {
        let m = Mailbox::parse("User.Name@Example.com").unwrap();
        assert_eq!(m.local_part(), "User.Name");
        assert_eq!(m.domain().as_str(), "example.com");
        assert_eq!(m.to_string(), "User.Name@example.com");
        assert!(!format!("{m:?}").contains("User"));
    }

    #[test]
    fn mailbox_rejects_bad_addresses() {
        assert_eq!(Mailbox::parse("nobody"), Err(NameError::NotAMailbox));
        assert_eq!(Mailbox::parse("@a.b"), Err(NameError::NotAMailbox));
        assert_eq!(Mailbox::parse("a b@c.d"), Err(NameError::BadLocalPartChar));
        assert_eq!(Mailbox::parse("a\r\n@c.d"), Err(NameError::BadLocalPartChar));
        assert_eq!(
            Mailbox::parse(&format!("{}@c.d", "x".repeat(65))),
            Err(NameError::LocalPartTooLong)
        );
    }
}
