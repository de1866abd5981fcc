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
    /// A decoded field breaks its rule (§8).
    #[error("{0}")]
    Field(&'static str),
    /// Padding is not canonical: not zero, not after the content, or not the Padme bucket (§3.4).
    #[error("padding is not canonical (zero octets to the padme bucket)")]
    Padding,
    /// The author tree signature chunk's tree does not list exactly the `t` chunks before it
    /// (`t` its index), or its content is not `2 + 67 t + 64` octets (§7.1).
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
    /// character (C0, DEL or C1, §8.4).
    #[error("part info must be UTF-8 without control characters, within its length")]
    PartInfo,
    /// A mandatory chunk is missing (§5).
    #[error("mandatory {0} chunk is missing")]
    MissingChunk(&'static str),
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
