//! Errors of the `_dx` record (`spec/dns-record.md` §10).

use super::{
    EXPIRY_MAX_DAYS, EXPIRY_MIN_DAYS, KEY_MAX_LEN, MAX_UNKNOWN_KEYS, POK_TEXT_LEN, TLS_TEXT_LEN,
    TXT_STRING_MAX_LEN,
};
use dime_core::limits::DX_RECORD_MAX_LEN;

/// Why a `_dx` record was refused. Each variant names the rule of `spec/dns-record.md` it
/// enforces; [`RecordError::code`] gives a stable short name (used by the test vectors and
/// tools). All of them blame the record's publisher (invalid record), except
/// [`RecordError::WeakPok`], which is found by [`super::Record::check_keys`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// §2: a character-string is longer than 255 octets.
    #[error("txt character-string {index} is longer than {TXT_STRING_MAX_LEN} octets")]
    StringTooLong {
        /// Position of the string in the resource record, from 0.
        index: usize,
    },
    /// §2, §9: the joined record is longer than the limit.
    #[error("record is longer than {DX_RECORD_MAX_LEN} octets")]
    TooLong,
    /// §2: more than one TXT record at the name starts with a version token.
    #[error("more than one dime record at the name")]
    MultipleRecords,
    /// §3: an octet outside printable ASCII, space, tab and `;`.
    #[error("octet {offset} is not printable ascii, space or tab")]
    BadCharacter {
        /// Offset of the octet in the joined record, from 0.
        offset: usize,
    },
    /// §3: the record holds no token.
    #[error("record is empty")]
    Empty,
    /// §3: a token has no `=`.
    #[error("token {index} has no '='")]
    MissingEquals {
        /// Position of the token, from 0.
        index: usize,
    },
    /// §3: a key is empty, too long, or not a letter followed by letters, digits, `-` or `_`.
    #[error(
        "token {index}: key must be a letter then letters, digits, '-' or '_', at most {KEY_MAX_LEN} octets"
    )]
    BadKey {
        /// Position of the token, from 0.
        index: usize,
    },
    /// §3: a value is empty.
    #[error("key {key} has an empty value")]
    EmptyValue {
        /// The canonical key name, or `"unknown"` for a key this version does not know.
        key: &'static str,
    },
    /// §5.1: the first token is not the version.
    #[error("the first token must be ver=1")]
    VersionNotFirst,
    /// §5.1: the version is not 1.
    #[error("unsupported record version (must be ver=1)")]
    UnsupportedVersion,
    /// §3: a key that may appear once appears twice (under any of its names).
    #[error("key {key} appears more than once")]
    DuplicateKey {
        /// The canonical key name.
        key: &'static str,
    },
    /// §5.2: no `pok=`.
    #[error("record has no pok (at least one is mandatory)")]
    MissingPok,
    /// §5.2: a `pok=` value is not 43 characters of canonical unpadded base64.
    #[error("pok must be {POK_TEXT_LEN} characters of unpadded base64 (32 octets)")]
    BadPok,
    /// §5.2: a POK is not a valid Ed25519 point of large order.
    #[error("pok {index} is not a valid ed25519 key (invalid point or small order)")]
    WeakPok {
        /// Position of the key among the POKs, from 0.
        index: usize,
    },
    /// §5.3: a `tls=` value is not 86 characters of canonical unpadded base64.
    #[error("tls must be {TLS_TEXT_LEN} characters of unpadded base64 (64 octets)")]
    BadTls,
    /// §5.4: `pol=` is not experimental, mixed or strict.
    #[error("pol must be experimental, mixed or strict")]
    BadPolicy,
    /// §5.5: a `dx=` or `syn=` value is not `host[:port]`.
    #[error("{key} must be a host name with an optional :port (1 to 65535)")]
    BadHost {
        /// The canonical key name.
        key: &'static str,
    },
    /// §5.7: `exp=` is not a decimal number of days in range.
    #[error("exp must be a decimal number of days from {EXPIRY_MIN_DAYS} to {EXPIRY_MAX_DAYS}")]
    BadExpiry,
    /// §5.8: `sub=` is not strict, relaxed or explicit.
    #[error("sub must be strict, relaxed or explicit")]
    BadSubdomain,
    /// §9: a repeatable key appears more often than its limit.
    #[error("more than {max} {key} values")]
    TooMany {
        /// The canonical key name.
        key: &'static str,
        /// The limit.
        max: usize,
    },
    /// §9: more unknown keys than the limit.
    #[error("more than {MAX_UNKNOWN_KEYS} unknown keys")]
    TooManyUnknown,
    /// Built by hand (§4): an unknown entry uses the name of a known key.
    #[error("unknown entry uses the known key name {key}")]
    UnknownShadowsKnown {
        /// The known key name it uses.
        key: &'static str,
    },
}

impl RecordError {
    /// A stable short name for the broken rule (kebab case), as the test vectors spell it.
    pub fn code(&self) -> &'static str {
        match self {
            RecordError::StringTooLong { .. } => "string-too-long",
            RecordError::TooLong => "too-long",
            RecordError::MultipleRecords => "multiple-records",
            RecordError::BadCharacter { .. } => "bad-character",
            RecordError::Empty => "empty",
            RecordError::MissingEquals { .. } => "missing-equals",
            RecordError::BadKey { .. } => "bad-key",
            RecordError::EmptyValue { .. } => "empty-value",
            RecordError::VersionNotFirst => "version-not-first",
            RecordError::UnsupportedVersion => "unsupported-version",
            RecordError::DuplicateKey { .. } => "duplicate-key",
            RecordError::MissingPok => "missing-pok",
            RecordError::BadPok => "bad-pok",
            RecordError::WeakPok { .. } => "weak-pok",
            RecordError::BadTls => "bad-tls",
            RecordError::BadPolicy => "bad-policy",
            RecordError::BadHost { .. } => "bad-host",
            RecordError::BadExpiry => "bad-expiry",
            RecordError::BadSubdomain => "bad-subdomain",
            RecordError::TooMany { .. } => "too-many",
            RecordError::TooManyUnknown => "too-many-unknown",
            RecordError::UnknownShadowsKnown { .. } => "unknown-shadows-known",
        }
    }
}

/// Why a served certificate did not match the record's `tls=` pins (`spec/dns-record.md` §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlsCheckError {
    /// The record has no `tls=` pin, so no certificate can match one.
    #[error("record has no tls pin")]
    NoPins,
    /// No pin verifies, under any POK, over the certificate's SHA-512.
    #[error("certificate matches no tls pin under any pok")]
    NoMatch,
}
