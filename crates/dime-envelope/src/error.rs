//! Errors of decoding, opening and sealing.

use crate::format::Role;

/// The bytes break a framing or encoding rule of `spec/envelope.md`. These name the rule; a
/// failed cryptographic check is never one of these but [`OpenError::Unauthentic`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message does not start with `DIMEMSG` (§2).
    #[error("not a dime v2 message (magic must be DIMEMSG)")]
    BadMagic,
    /// The version octet is not 2 (§2).
    #[error("unsupported envelope version {0} (expected 2)")]
    UnsupportedVersion(u8),
    /// The kind octet is not defined (§2).
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// A reserved flag bit is set (§2, §3).
    #[error("reserved flag bits must be zero")]
    ReservedBits,
    /// A chunk type octet is not defined (§5).
    #[error("unknown chunk type {0:#04x}")]
    UnknownChunkType(u8),
    /// A chunk appears out of the order of §5, or more often than allowed.
    #[error("chunk type {0:#04x} is out of order or repeated")]
    ChunkOrder(u8),
    /// A chunk's index is not its position (§3.1).
    #[error("chunk index must equal its position in the message")]
    IndexMismatch,
    /// The key slots are not exactly the roles of the actor matrix, in order (§4, §6).
    #[error("key slots must be exactly the roles of the actor matrix, in order")]
    SlotRoles,
    /// A key slot's or a signature's algorithm identifier is not one of §4.1, or a slot's
    /// does not fit its role.
    #[error("unknown algorithm identifier {0:#04x} (or not one of this slot's role)")]
    Algorithm(u8),
    /// A clear chunk's length is not the length its type requires (§3.2).
    #[error("clear chunk length must be 32")]
    ClearLength,
    /// A segment's declared length exceeds `SEGMENT_MAX_CIPHERTEXT` or breaks §3.3.
    #[error("segment length breaks the segment rule (at most 65556 octets, full unless last)")]
    SegmentLength,
    /// A chunk has more segments than its type allows (§11).
    #[error("chunk has more segments than its type allows")]
    TooManySegments,
    /// A count exceeds its named limit (§11).
    #[error("too many {0} (limit {1})")]
    TooMany(&'static str, usize),
    /// The input ends inside a structure.
    #[error("message is truncated")]
    Truncated,
    /// Bytes follow the end of a structure.
    #[error("trailing bytes after the end of a structure")]
    TrailingBytes,
    /// A light client's open omitted a chunk other than a display or attachment chunk.
    #[error("only display and attachment chunks may be omitted")]
    NotOmittable,
    /// The transit chunk's content is not the 32-octet transit key (§8.5).
    #[error("transit key must be 32 octets")]
    TransitKey,
    /// A tree entry names a chunk type that is not defined (§7, §5).
    #[error("tree names an unknown chunk type")]
    TreeEntry,
    /// Padding is not canonical: not zero, not after the content, or not the Padme bucket (§3.4).
    #[error("padding is not canonical (zero octets to the padme bucket)")]
    Padding,
    /// The author tree signature chunk's tree does not list exactly the `t` chunks before it
    /// (`t` its index), or its content is not `2 + 67 t + 65` octets (§7.1).
    #[error("the author tree must list exactly the chunks before it")]
    TreeCount,
    /// A mailbox or domain of the origin or destination chunk is not exactly its canonical
    /// form (§8.1, §8.2).
    #[error("address is not a canonical mailbox or domain")]
    Name,
    /// A header name is not 1 to 128 octets of printable ASCII (33-126) without `:` (§8.3).
    #[error("header name must be 1-128 printable ASCII octets without ':'")]
    HeaderName,
    /// A header value is not UTF-8, is longer than 65535 octets, or holds a control
    /// character other than HTAB (C0, DEL or C1, §8.3).
    #[error("header value must be UTF-8 without control characters (HTAB aside)")]
    HeaderValue,
    /// A header field named Bcc or Resent-Bcc, in any case (§8.3, §13).
    #[error("a message never carries a Bcc header")]
    BccHeader,
    /// A part's content type or file name is not UTF-8, too long, or holds a control
    /// character (C0, DEL or C1, §8.4), or a part chunk has no part info.
    #[error("part info must be UTF-8 without control characters, within its length")]
    PartInfo,
    /// A mandatory chunk is missing (§5).
    #[error("mandatory {0} chunk is missing")]
    MissingChunk(&'static str),
}

impl DecodeError {
    /// The token of the rule broken (`spec/envelope.md` §14), which the framing class names.
    #[must_use]
    pub fn rule(&self) -> &'static str {
        match self {
            DecodeError::BadMagic => "magic",
            DecodeError::UnsupportedVersion(_) => "version",
            DecodeError::UnknownKind(_) => "kind",
            DecodeError::ReservedBits => "flags",
            DecodeError::UnknownChunkType(_) => "chunk-type",
            DecodeError::ChunkOrder(_) | DecodeError::MissingChunk(_) => "order",
            DecodeError::NotOmittable => "omitted",
            DecodeError::IndexMismatch => "index",
            DecodeError::SlotRoles => "slot-roles",
            DecodeError::Algorithm(_) => "algorithm",
            DecodeError::ClearLength => "clear-length",
            DecodeError::SegmentLength => "segment-length",
            DecodeError::TooManySegments | DecodeError::TooMany(..) => "limit",
            DecodeError::Truncated => "truncated",
            DecodeError::TrailingBytes => "trailing",
            DecodeError::Padding => "padding",
            DecodeError::TreeCount => "tree-count",
            DecodeError::TreeEntry => "tree-entry",
            DecodeError::TransitKey => "transit-key",
            DecodeError::Name => "name",
            DecodeError::HeaderName => "header-name",
            DecodeError::HeaderValue => "header-value",
            DecodeError::BccHeader => "bcc-header",
            DecodeError::PartInfo => "part-info",
        }
    }
}

/// The error classes every reader returns (`spec/envelope.md` §14): what a reader may say of
/// a message that does not open or verify, and nothing more. Every failed cryptographic check
/// is the one class [`ErrorClass::Unauthentic`], so no one learns which check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// A framing or content rule is broken; the rule's token (§14).
    Framing(&'static str),
    /// A key agreement, a key slot (none of the reader's keys opens it), a tag, a tree hash or
    /// a signature failed: "message does not authenticate".
    Unauthentic,
    /// Every tag and signature the reader checked holds, but the message breaks a rule of
    /// §7.4 or §7.5 that leaves it not verified; the rule's token (§14): `no-origin-signature`
    /// (this crate's; an origin signature a reader requires is absent), and the address rules
    /// `author-domain`, `recipient-domain`, `destination-domain`, which the reader applies.
    Unverified(&'static str),
    /// Reading the message or writing a part failed: nothing is known of the message.
    Io,
}

impl ErrorClass {
    /// The class's token (§14): `framing`, `unauthentic`, `unverified` or `io`.
    #[must_use]
    pub fn token(self) -> &'static str {
        match self {
            ErrorClass::Framing(_) => "framing",
            ErrorClass::Unauthentic => "unauthentic",
            ErrorClass::Unverified(_) => "unverified",
            ErrorClass::Io => "io",
        }
    }

    /// The rule's token, for the framing and unverified classes.
    #[must_use]
    pub fn rule(self) -> Option<&'static str> {
        match self {
            ErrorClass::Framing(r) | ErrorClass::Unverified(r) => Some(r),
            ErrorClass::Unauthentic | ErrorClass::Io => None,
        }
    }
}

/// The text every reader shows for the class (§14).
impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorClass::Framing(rule) => write!(f, "malformed message ({rule})"),
            ErrorClass::Unauthentic => f.write_str("message does not authenticate"),
            ErrorClass::Unverified(rule) => write!(f, "not verified ({rule})"),
            ErrorClass::Io => f.write_str("message could not be read"),
        }
    }
}

impl From<&DecodeError> for ErrorClass {
    fn from(e: &DecodeError) -> ErrorClass {
        ErrorClass::Framing(e.rule())
    }
}

/// Why a message could not be opened or verified.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The bytes break a framing rule of the spec (blame: the peer's encoder).
    #[error("invalid message: {0}")]
    Decode(#[from] DecodeError),
    /// A cryptographic check failed: key agreement, a key slot, a chunk tag, a tree hash or a
    /// signature. Deliberately one variant: it does not say which.
    #[error("message does not authenticate")]
    Unauthentic,
    /// The caller supplied an origin key but the message carries no origin signature, or the
    /// reverse (§7.3).
    #[error("origin signature presence does not match the request")]
    OriginSignature,
    /// The origin tried to sign a message that already carries an origin signature (§7.3).
    #[error("message already carries an origin signature")]
    AlreadyOriginSigned,
    /// Reading the message or writing a part to its sink failed.
    #[error("i/o error while streaming: {0}")]
    Io(#[from] std::io::Error),
}

impl OpenError {
    /// The class of §14 this error is: what a reader reports of the message.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        match self {
            OpenError::Decode(d) => d.into(),
            OpenError::Unauthentic => ErrorClass::Unauthentic,
            // A verifier given an origin key finds no origin signature (the reverse, a
            // signature and no key, is the caller's mistake and reads the same).
            OpenError::OriginSignature => ErrorClass::Unverified("no-origin-signature"),
            // Signing it again would make a second origin signature chunk (§5).
            OpenError::AlreadyOriginSigned => ErrorClass::Framing("order"),
            OpenError::Io(_) => ErrorClass::Io,
        }
    }
}

/// Why a message could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// An actor's X25519 key gives a non-contributory shared secret (low order or zero).
    #[error("{0:?} encryption key is low-order or zero")]
    BadActorKey(Role),
    /// A header, part info or address breaks its rule (§8).
    #[error("invalid content: {0}")]
    Content(#[from] DecodeError),
    /// A part or the number of parts exceeds its limit (§11).
    #[error("{0} exceeds its limit")]
    TooLarge(&'static str),
    /// Reading a part source or writing the message failed.
    #[error("i/o error while sealing: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_one_class_of_section_14() {
        let framing = [
            (DecodeError::BadMagic, "magic"),
            (DecodeError::UnsupportedVersion(3), "version"),
            (DecodeError::UnknownKind(9), "kind"),
            (DecodeError::ReservedBits, "flags"),
            (DecodeError::UnknownChunkType(0x77), "chunk-type"),
            (DecodeError::ChunkOrder(0x10), "order"),
            (DecodeError::MissingChunk("origin"), "order"),
            (DecodeError::NotOmittable, "omitted"),
            (DecodeError::IndexMismatch, "index"),
            (DecodeError::SlotRoles, "slot-roles"),
            (DecodeError::Algorithm(3), "algorithm"),
            (DecodeError::ClearLength, "clear-length"),
            (DecodeError::SegmentLength, "segment-length"),
            (DecodeError::TooManySegments, "limit"),
            (DecodeError::TooMany("chunks", 1034), "limit"),
            (DecodeError::Truncated, "truncated"),
            (DecodeError::TrailingBytes, "trailing"),
            (DecodeError::Padding, "padding"),
            (DecodeError::TreeCount, "tree-count"),
            (DecodeError::TreeEntry, "tree-entry"),
            (DecodeError::TransitKey, "transit-key"),
            (DecodeError::Name, "name"),
            (DecodeError::HeaderName, "header-name"),
            (DecodeError::HeaderValue, "header-value"),
            (DecodeError::BccHeader, "bcc-header"),
            (DecodeError::PartInfo, "part-info"),
        ];
        for (d, rule) in framing {
            assert_eq!(d.rule(), rule, "{d:?}");
            let c = OpenError::Decode(d).class();
            assert_eq!(c, ErrorClass::Framing(rule));
            assert_eq!((c.token(), c.rule()), ("framing", Some(rule)));
            assert_eq!(c.to_string(), format!("malformed message ({rule})"));
        }
        let c = OpenError::Unauthentic.class();
        assert_eq!((c, c.token(), c.rule()), (ErrorClass::Unauthentic, "unauthentic", None));
        assert_eq!(c.to_string(), "message does not authenticate");
        let c = OpenError::OriginSignature.class();
        assert_eq!(c, ErrorClass::Unverified("no-origin-signature"));
        assert_eq!((c.token(), c.rule()), ("unverified", Some("no-origin-signature")));
        assert_eq!(c.to_string(), "not verified (no-origin-signature)");
        assert_eq!(OpenError::AlreadyOriginSigned.class(), ErrorClass::Framing("order"));
        let io = OpenError::Io(std::io::Error::other("disk"));
        assert_eq!((io.class(), io.class().token()), (ErrorClass::Io, "io"));
    }
}
