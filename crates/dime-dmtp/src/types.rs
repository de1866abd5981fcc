//! Validated values carried by DMTP commands and replies (`spec/dmtp.md` §6).

use crate::limits::MAX_TRANSACTION_ID_LEN;
use crate::reply::ProtocolError;
use dime_core::{Domain, Fingerprint, Mailbox};
use dime_wire::dmtp;
use std::fmt;

/// What a stream is for (`spec/dmtp.md` §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Message transfer (MAIL, RCPT, DATA) and lookups.
    Transfer,
    /// Signet lookups only (SGNT, VRFY, HIST).
    Lookup,
}

impl Mode {
    pub(crate) fn to_wire(self) -> dmtp::Mode {
        match self {
            Mode::Transfer => dmtp::Mode::Transfer,
            Mode::Lookup => dmtp::Mode::Lookup,
        }
    }

    pub(crate) fn from_wire(v: i32) -> Result<Mode, ProtocolError> {
        match dmtp::Mode::try_from(v) {
            Ok(dmtp::Mode::Transfer) => Ok(Mode::Transfer),
            Ok(dmtp::Mode::Lookup) => Ok(Mode::Lookup),
            _ => Err(ProtocolError::UnsupportedMode),
        }
    }
}

/// Which signet a lookup names (`spec/dmtp.md` §6.5): an organisation's, or one of its users'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignetName {
    /// The organisation's domain.
    pub domain: Domain,
    /// A user of that domain; `None` for the organisational signet.
    pub mailbox: Option<Mailbox>,
}

impl SignetName {
    pub(crate) fn to_wire(&self) -> dmtp::SignetName {
        dmtp::SignetName {
            domain: self.domain.as_str().to_owned(),
            mailbox: self.mailbox.as_ref().map(|m| m.to_string()).unwrap_or_default(),
        }
    }

    pub(crate) fn from_wire(name: Option<&dmtp::SignetName>) -> Result<SignetName, ProtocolError> {
        let name = name.ok_or(ProtocolError::BadArgument("signet name missing"))?;
        let domain = parse_domain(&name.domain)?;
        let mailbox = if name.mailbox.is_empty() {
            None
        } else {
            let m = Mailbox::parse(&name.mailbox)
                .map_err(|_| ProtocolError::BadArgument("mailbox is not a valid address"))?;
            if m.domain() != &domain {
                return Err(ProtocolError::BadArgument("mailbox is not in the domain named"));
            }
            Some(m)
        };
        Ok(SignetName { domain, mailbox })
    }
}

/// A transaction id the destination's store gives an accepted message (`spec/dmtp.md` §6.4):
/// 1 to [`MAX_TRANSACTION_ID_LEN`] characters of `A-Z a-z 0-9 . _ -`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TransactionId(String);

/// A transaction id that breaks the rule of [`TransactionId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("transaction id is not 1 to MAX_TRANSACTION_ID_LEN characters of A-Z a-z 0-9 . _ -")]
pub struct TransactionIdError;

impl TransactionId {
    /// Validates `s`.
    ///
    /// # Errors
    /// [`TransactionIdError`] when `s` breaks the rule.
    pub fn new(s: &str) -> Result<TransactionId, TransactionIdError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_TRANSACTION_ID_LEN
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok { Ok(TransactionId(s.to_owned())) } else { Err(TransactionIdError) }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransactionId({})", self.0)
    }
}

/// The answer to VRFY (`spec/dmtp.md` §6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyAnswer {
    /// The fingerprint asked about is the current signet's.
    Current,
    /// A newer signet exists, with this fingerprint.
    Updated(Fingerprint),
}

/// What the server says about itself in its reply to HELLO (`spec/dmtp.md` §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The server's domain.
    pub domain: Domain,
    /// The largest DATA body it accepts.
    pub max_message_size: u64,
    /// RCPTs per transaction.
    pub max_recipients: u32,
    /// Largest frame payload.
    pub max_frame_size: u32,
}

pub(crate) fn parse_domain(s: &str) -> Result<Domain, ProtocolError> {
    Domain::parse(s).map_err(|_| ProtocolError::BadArgument("domain is not a valid domain name"))
}

pub(crate) fn parse_fingerprint(b: &[u8]) -> Result<Fingerprint, ProtocolError> {
    <[u8; 64]>::try_from(b)
        .map(Fingerprint)
        .map_err(|_| ProtocolError::BadArgument("fingerprint is not 64 octets"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_id_at_the_length_limit_and_one_past() {
        assert!(TransactionId::new(&"a".repeat(MAX_TRANSACTION_ID_LEN)).is_ok());
        assert!(TransactionId::new(&"a".repeat(MAX_TRANSACTION_ID_LEN + 1)).is_err());
        assert!(TransactionId::new("").is_err());
        assert!(TransactionId::new("tx 1").is_err());
        assert!(TransactionId::new("tx-1.a_b").is_ok());
    }

    #[test]
    fn user_signet_name_must_be_in_its_domain() {
        let wire = dmtp::SignetName { domain: "b.test".into(), mailbox: "bob@a.test".into() };
        assert!(SignetName::from_wire(Some(&wire)).is_err());
        let wire = dmtp::SignetName { domain: "b.test".into(), mailbox: "bob@b.test".into() };
        let name = SignetName::from_wire(Some(&wire)).unwrap();
        assert_eq!(name.to_wire(), wire);
    }
}
