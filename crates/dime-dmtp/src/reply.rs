//! Reply codes and the errors that map to them (`spec/dmtp.md` §5).

use std::fmt;

/// A DMTP reply code (`spec/dmtp.md` §5.1): three digits; the first says the class (2 success,
/// 3 continue, 4 temporary failure, 5 permanent failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(pub u16);

impl ReplyCode {
    /// 221: closing the stream (QUIT).
    pub const CLOSING: ReplyCode = ReplyCode(221);
    /// 250: done.
    pub const OK: ReplyCode = ReplyCode(250);
    /// 354: send the DATA body.
    pub const START_BODY: ReplyCode = ReplyCode(354);
    /// 421: service closing the stream (deadline, too many errors, shutdown).
    pub const SERVICE_CLOSING: ReplyCode = ReplyCode(421);
    /// 450: temporarily unavailable (a lookup that may succeed later).
    pub const TEMPORARY: ReplyCode = ReplyCode(450);
    /// 451: local error (the store failed).
    pub const LOCAL_ERROR: ReplyCode = ReplyCode(451);
    /// 452: a per-stream count is exhausted (recipients, transactions, lookups).
    pub const TOO_MANY: ReplyCode = ReplyCode(452);
    /// 500: syntax error (frame undecodable, too large, or no command).
    pub const SYNTAX: ReplyCode = ReplyCode(500);
    /// 501: bad arguments (a domain, fingerprint, size or hash that is not valid).
    pub const BAD_ARGUMENTS: ReplyCode = ReplyCode(501);
    /// 503: bad sequence of commands.
    pub const BAD_SEQUENCE: ReplyCode = ReplyCode(503);
    /// 504: version or mode not supported.
    pub const UNSUPPORTED: ReplyCode = ReplyCode(504);
    /// 550: not found (destination not served here, signet unknown).
    pub const NOT_FOUND: ReplyCode = ReplyCode(550);
    /// 551: the fingerprint is not the current signet's (refresh with VRFY/HIST).
    pub const STALE_FINGERPRINT: ReplyCode = ReplyCode(551);
    /// 552: too large (declared size over the limit, or body longer than declared).
    pub const TOO_LARGE: ReplyCode = ReplyCode(552);
    /// 553: the origin could not be verified (its signet is not the one named).
    pub const ORIGIN_NOT_VERIFIED: ReplyCode = ReplyCode(553);
    /// 554: the body does not match its declared SHA-512.
    pub const HASH_MISMATCH: ReplyCode = ReplyCode(554);
    /// 555: the message's origin signature does not verify.
    pub const BAD_SIGNATURE: ReplyCode = ReplyCode(555);
    /// 556: refused by policy.
    pub const POLICY: ReplyCode = ReplyCode(556);

    /// Every code this version defines, in order.
    pub const ALL: &'static [ReplyCode] = &[
        Self::CLOSING,
        Self::OK,
        Self::START_BODY,
        Self::SERVICE_CLOSING,
        Self::TEMPORARY,
        Self::LOCAL_ERROR,
        Self::TOO_MANY,
        Self::SYNTAX,
        Self::BAD_ARGUMENTS,
        Self::BAD_SEQUENCE,
        Self::UNSUPPORTED,
        Self::NOT_FOUND,
        Self::STALE_FINGERPRINT,
        Self::TOO_LARGE,
        Self::ORIGIN_NOT_VERIFIED,
        Self::HASH_MISMATCH,
        Self::BAD_SIGNATURE,
        Self::POLICY,
    ];

    /// Whether this version defines the code.
    pub fn is_known(self) -> bool {
        Self::ALL.contains(&self)
    }

    /// 2xx.
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }

    /// 4xx: the same request may succeed later.
    pub fn is_temporary(self) -> bool {
        (400..500).contains(&self.0)
    }

    /// 5xx: the same request will fail again.
    pub fn is_permanent(self) -> bool {
        (500..600).contains(&self.0)
    }

    /// The fixed reply text for the code. Replies never carry client input
    /// (`spec/dmtp.md` §10).
    pub fn text(self) -> &'static str {
        match self.0 {
            221 => "closing",
            250 => "ok",
            354 => "send the body",
            421 => "service closing",
            450 => "temporarily unavailable",
            451 => "local error",
            452 => "too many",
            500 => "syntax error",
            501 => "bad arguments",
            503 => "bad sequence of commands",
            504 => "not supported",
            550 => "not found",
            551 => "fingerprint is not current",
            552 => "too large",
            553 => "origin not verified",
            554 => "body does not match its hash",
            555 => "origin signature does not verify",
            556 => "refused by policy",
            _ => "",
        }
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A driver's refusal of a request the machine handed it (`spec/dmtp.md` §5.2): each maps to
/// one reply code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The destination domain is not served here, or the signet asked for is unknown.
    #[error("not found")]
    NotFound,
    /// The fingerprint named is not the current signet of that domain.
    #[error("fingerprint is not current")]
    StaleFingerprint,
    /// The origin's signet could not be authenticated as the one named.
    #[error("origin not verified")]
    OriginNotVerified,
    /// The message's origin signature does not verify.
    #[error("origin signature does not verify")]
    BadSignature,
    /// Local policy refuses it.
    #[error("refused by policy")]
    Policy,
    /// A lookup that may succeed later (DNS indeterminate, upstream down).
    #[error("temporarily unavailable")]
    Temporary,
    /// The store could not make the message durable.
    #[error("local error")]
    StoreFailed,
}

impl Refusal {
    /// The reply code sent for it.
    pub fn code(self) -> ReplyCode {
        match self {
            Refusal::NotFound => ReplyCode::NOT_FOUND,
            Refusal::StaleFingerprint => ReplyCode::STALE_FINGERPRINT,
            Refusal::OriginNotVerified => ReplyCode::ORIGIN_NOT_VERIFIED,
            Refusal::BadSignature => ReplyCode::BAD_SIGNATURE,
            Refusal::Policy => ReplyCode::POLICY,
            Refusal::Temporary => ReplyCode::TEMPORARY,
            Refusal::StoreFailed => ReplyCode::LOCAL_ERROR,
        }
    }
}

/// Something the peer did wrong (`spec/dmtp.md` §5.3). Each maps to the reply code the server
/// sends; some also close the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A frame's declared length is over [`crate::limits::MAX_FRAME_SIZE`].
    #[error("frame length over MAX_FRAME_SIZE")]
    FrameTooLarge,
    /// A frame's payload is not a valid protobuf message of the expected type.
    #[error("frame does not decode")]
    Undecodable,
    /// A frame with no command.
    #[error("frame carries no command")]
    NoCommand,
    /// An argument breaks its rule (the rule is named).
    #[error("bad argument: {0}")]
    BadArgument(&'static str),
    /// A command that the current state does not allow.
    #[error("command out of sequence")]
    BadSequence,
    /// HELLO names a version this implementation does not speak.
    #[error("unsupported protocol version")]
    UnsupportedVersion,
    /// HELLO names no mode or an unknown one, or the mode forbids the command.
    #[error("unsupported mode")]
    UnsupportedMode,
    /// More RCPTs than [`crate::limits::MAX_RECIPIENTS`].
    #[error("more recipients than MAX_RECIPIENTS")]
    TooManyRecipients,
    /// More transactions than the stream allows.
    #[error("more transactions than MAX_TRANSACTIONS")]
    TooManyTransactions,
    /// More lookups than the stream allows.
    #[error("more lookups than MAX_LOOKUPS")]
    TooManyLookups,
    /// DATA declares a size over the server's maximum message size.
    #[error("declared size over the maximum message size")]
    MessageTooLarge,
    /// The body goes past its declared size.
    #[error("body longer than its declared size")]
    BodyOverrun,
    /// The body's SHA-512 is not the one DATA declared.
    #[error("body does not match its declared sha-512")]
    BodyHashMismatch,
    /// No complete HELLO within the handshake deadline.
    #[error("no hello within HANDSHAKE_TIMEOUT")]
    HandshakeTimeout,
    /// No frame within the idle deadline.
    #[error("no frame within IDLE_TIMEOUT")]
    IdleTimeout,
    /// A body not complete within its deadline: [`crate::limits::BODY_GRACE`] plus its
    /// declared size at [`crate::limits::MIN_BODY_RATE`].
    #[error("body slower than MIN_BODY_RATE")]
    BodyTooSlow,
    /// More refused frames than [`crate::limits::MAX_ERRORS`].
    #[error("more errors than MAX_ERRORS")]
    TooManyErrors,
    /// The peer closed its side in the middle of a frame or a body.
    #[error("stream ended inside a frame or body")]
    UnexpectedEnd,
}

impl ProtocolError {
    /// The reply code sent for it.
    pub fn code(self) -> ReplyCode {
        use ProtocolError::*;
        match self {
            FrameTooLarge | Undecodable | NoCommand => ReplyCode::SYNTAX,
            BadArgument(_) => ReplyCode::BAD_ARGUMENTS,
            BadSequence => ReplyCode::BAD_SEQUENCE,
            UnsupportedVersion | UnsupportedMode => ReplyCode::UNSUPPORTED,
            TooManyRecipients | TooManyTransactions | TooManyLookups => ReplyCode::TOO_MANY,
            MessageTooLarge | BodyOverrun => ReplyCode::TOO_LARGE,
            BodyHashMismatch => ReplyCode::HASH_MISMATCH,
            HandshakeTimeout | IdleTimeout | BodyTooSlow | TooManyErrors | UnexpectedEnd => {
                ReplyCode::SERVICE_CLOSING
            }
        }
    }

    /// Whether the server closes the stream after replying (`spec/dmtp.md` §4.2): the frame
    /// boundary can no longer be trusted, the body was not what was declared, or the peer is
    /// out of time or chances.
    pub fn closes(self) -> bool {
        use ProtocolError::*;
        matches!(
            self,
            FrameTooLarge
                | BodyOverrun
                | HandshakeTimeout
                | IdleTimeout
                | BodyTooSlow
                | TooManyErrors
                | UnexpectedEnd
                | UnsupportedVersion
                | TooManyTransactions
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_has_text_and_a_class() {
        for code in ReplyCode::ALL {
            assert!(!code.text().is_empty(), "{code}");
            assert!(
                code.is_success() || code.is_temporary() || code.is_permanent() || code.0 == 354
            );
        }
        assert!(!ReplyCode(299).is_known());
    }

    #[test]
    fn refusals_and_errors_map_to_known_codes() {
        use Refusal::*;
        for r in [
            NotFound,
            StaleFingerprint,
            OriginNotVerified,
            BadSignature,
            Policy,
            Temporary,
            StoreFailed,
        ] {
            assert!(r.code().is_known() && !r.code().is_success());
        }
        assert!(Temporary.code().is_temporary() && StoreFailed.code().is_temporary());
        assert_ne!(ProtocolError::BodyOverrun.code(), ProtocolError::BodyHashMismatch.code());
        assert_eq!(ProtocolError::FrameTooLarge.code(), ReplyCode::SYNTAX);
    }
}
