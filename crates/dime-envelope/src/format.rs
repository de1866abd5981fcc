//! Constants and byte builders of the envelope format: magic, chunk types, roles, the actor
//! matrix, nonces, associated data, KDF labels, padding and signature inputs
//! (`spec/envelope.md` §2-§9).

use crate::error::DecodeError;
use dime_core::crypto::{AEAD_NONCE_LEN, AeadKey, CryptoError, CryptoProvider, X25519PublicKey};

/// The first seven octets of every v2 message: `DIMEMSG` (`spec/envelope.md` §2). A libdime
/// message starts with the u16 magic 1837 or 1847 (`07 2d` / `07 37`), never with `D`.
pub const MAGIC: [u8; 7] = *b"DIMEMSG";
/// The format version that follows the magic (`spec/envelope.md` §2). The associated data
/// carry `dime/v2/` labels, not this octet: a reader binds the version by refusing any other
/// value ([`DecodeError::UnsupportedVersion`]) before any key agreement, KDF or AEAD.
pub const VERSION: u8 = 2;
/// Length of a message id (`spec/envelope.md` §2).
pub const MESSAGE_ID_LEN: usize = 32;
/// Length of the message header: magic, version, kind, flags, message id (`spec/envelope.md` §2).
pub const HEADER_LEN: usize = 7 + 1 + 1 + 1 + MESSAGE_ID_LEN;
/// Length of a key slot: role, algorithm, wrapped chunk key, tag (`spec/envelope.md` §4).
pub const SLOT_LEN: usize = 1 + 1 + 32 + 16;
/// Key-slot algorithm `x25519`: an actor role's KEK from the ephemeral X25519 key
/// (`spec/envelope.md` §4.1).
pub const SLOT_ALG_X25519: u8 = 0x01;
/// Key-slot algorithm `transit`: the transit role's KEK from the transit key
/// (`spec/envelope.md` §4.1).
pub const SLOT_ALG_TRANSIT: u8 = 0x02;
/// Signature algorithm `ed25519` (`spec/envelope.md` §4.1, §7).
pub const SIG_ALG_ED25519: u8 = 0x01;
/// Length of a signature as carried in a signature chunk: the algorithm octet and the Ed25519
/// signature (`spec/envelope.md` §7).
pub const SIGNATURE_FIELD_LEN: usize = 1 + 64;
/// Length of the origin signature chunk's content: the time it was signed (u64 seconds since
/// the Unix epoch), then the signature (`spec/envelope.md` §7.3).
pub const ORIGIN_SIG_CONTENT_LEN: usize = 8 + SIGNATURE_FIELD_LEN;
/// At most this many keys are tried for one signer (`spec/envelope.md` §7.6).
pub const MAX_SIGNER_KEYS: usize = 8;
/// Length of one tree entry: type, index, SHA-512 (`spec/envelope.md` §7.1).
pub const TREE_ENTRY_LEN: usize = 1 + 2 + 64;
/// Octets a segment adds to its payload: the content-length field and the tag
/// (`spec/envelope.md` §3.3).
pub const SEGMENT_OVERHEAD: usize = 4 + 16;

/// Who wrote the author signatures (`spec/envelope.md` §2, §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Signed by the author's own key.
    Authored,
    /// Built by a server on a legacy sender's behalf ("naked", trustful mode): the author
    /// signatures are the origin server's, not the author's.
    Trustful,
}

impl MessageKind {
    /// The kind octet.
    pub fn code(self) -> u8 {
        match self {
            MessageKind::Authored => 1,
            MessageKind::Trustful => 2,
        }
    }

    /// The kind of an octet, if defined.
    pub fn from_code(b: u8) -> Option<Self> {
        match b {
            1 => Some(MessageKind::Authored),
            2 => Some(MessageKind::Trustful),
            _ => None,
        }
    }
}

/// The chunk types, in the order they must appear (`spec/envelope.md` §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChunkType {
    /// The ephemeral X25519 public key, in the clear.
    Ephemeral,
    /// The transit key that opens the origin's signature chunk (A, O, D, R).
    Transit,
    /// Author address and destination domain (A, O, R).
    Origin,
    /// Recipient address and origin domain (A, D, R).
    Destination,
    /// Common headers (A, R).
    CommonHeaders,
    /// Other headers (A, R).
    OtherHeaders,
    /// A display (body) part (A, R), repeatable.
    Display,
    /// An attachment part (A, R), repeatable.
    Attachment,
    /// The author tree signature and its tree (A, O, R).
    AuthorTreeSig,
    /// The author full signature (A, O, R).
    AuthorFullSig,
    /// The origin signature (all four, through the transit key).
    OriginSig,
}

impl ChunkType {
    /// Every chunk type, in wire order.
    pub const ALL: [ChunkType; 11] = [
        ChunkType::Ephemeral,
        ChunkType::Transit,
        ChunkType::Origin,
        ChunkType::Destination,
        ChunkType::CommonHeaders,
        ChunkType::OtherHeaders,
        ChunkType::Display,
        ChunkType::Attachment,
        ChunkType::AuthorTreeSig,
        ChunkType::AuthorFullSig,
        ChunkType::OriginSig,
    ];

    /// The type octet (`spec/envelope.md` §5).
    pub fn code(self) -> u8 {
        match self {
            ChunkType::Ephemeral => 0x01,
            ChunkType::Transit => 0x02,
            ChunkType::Origin => 0x03,
            ChunkType::Destination => 0x04,
            ChunkType::CommonHeaders => 0x21,
            ChunkType::OtherHeaders => 0x22,
            ChunkType::Display => 0x23,
            ChunkType::Attachment => 0x24,
            ChunkType::AuthorTreeSig => 0x41,
            ChunkType::AuthorFullSig => 0x42,
            ChunkType::OriginSig => 0x61,
        }
    }

    /// The chunk type of an octet, if defined.
    pub fn from_code(b: u8) -> Option<Self> {
        ChunkType::ALL.into_iter().find(|t| t.code() == b)
    }

    /// The roles that hold a key slot for this type, in slot order: the actor matrix
    /// (`spec/envelope.md` §6). Empty for the clear ephemeral chunk.
    pub fn slot_roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            ChunkType::Ephemeral => &[],
            ChunkType::Transit => &[Author, Origin, Destination, Recipient],
            ChunkType::Origin => &[Author, Origin, Recipient],
            ChunkType::Destination => &[Author, Destination, Recipient],
            ChunkType::CommonHeaders
            | ChunkType::OtherHeaders
            | ChunkType::Display
            | ChunkType::Attachment => &[Author, Recipient],
            ChunkType::AuthorTreeSig | ChunkType::AuthorFullSig => &[Author, Origin, Recipient],
            ChunkType::OriginSig => &[Transit],
        }
    }

    /// Whether the plaintext is padded to a Padme bucket (`spec/envelope.md` §3.4).
    pub fn is_padded(self) -> bool {
        matches!(
            self,
            ChunkType::Origin
                | ChunkType::Destination
                | ChunkType::CommonHeaders
                | ChunkType::OtherHeaders
                | ChunkType::Display
                | ChunkType::Attachment
        )
    }

    /// Whether the chunk is a display or attachment part.
    pub fn is_part(self) -> bool {
        matches!(self, ChunkType::Display | ChunkType::Attachment)
    }
}

/// A key-slot role (`spec/envelope.md` §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The author (A).
    Author,
    /// The origin server (O).
    Origin,
    /// The destination server (D).
    Destination,
    /// The recipient (R).
    Recipient,
    /// Whoever holds the message's transit key (A, O, D and R).
    Transit,
}

impl Role {
    /// The four actor roles.
    pub const ACTORS: [Role; 4] = [Role::Author, Role::Origin, Role::Destination, Role::Recipient];

    /// The role octet.
    pub fn code(self) -> u8 {
        match self {
            Role::Author => 1,
            Role::Origin => 2,
            Role::Destination => 3,
            Role::Recipient => 4,
            Role::Transit => 5,
        }
    }

    /// The role of an octet, if defined.
    pub fn from_code(b: u8) -> Option<Self> {
        match b {
            1 => Some(Role::Author),
            2 => Some(Role::Origin),
            3 => Some(Role::Destination),
            4 => Some(Role::Recipient),
            5 => Some(Role::Transit),
            _ => None,
        }
    }

    /// The key-slot algorithm of this role's slots (`spec/envelope.md` §4.1).
    pub fn slot_alg(self) -> u8 {
        match self {
            Role::Transit => SLOT_ALG_TRANSIT,
            _ => SLOT_ALG_X25519,
        }
    }

    /// The HKDF info label of this role's key-encryption key (`spec/envelope.md` §4).
    pub fn kek_label(self) -> &'static [u8] {
        match self {
            Role::Author => b"dime/v2/kek/author",
            Role::Origin => b"dime/v2/kek/origin",
            Role::Destination => b"dime/v2/kek/destination",
            Role::Recipient => b"dime/v2/kek/recipient",
            Role::Transit => b"dime/v2/kek/transit",
        }
    }
}

/// Label of chunk associated data (`spec/envelope.md` §3.3).
pub const CHUNK_AAD_LABEL: &[u8] = b"dime/v2/chunk\0";
/// Label of slot associated data (`spec/envelope.md` §4).
pub const SLOT_AAD_LABEL: &[u8] = b"dime/v2/slot\0";
/// Label of the author tree signature input (`spec/envelope.md` §7.1).
pub const TREE_SIG_LABEL: &[u8] = b"dime/v2/sig/author-tree\0";
/// Label of the author full signature input (`spec/envelope.md` §7.2).
pub const FULL_SIG_LABEL: &[u8] = b"dime/v2/sig/author-full\0";
/// Label of the origin signature input (`spec/envelope.md` §7.3).
pub const ORIGIN_SIG_LABEL: &[u8] = b"dime/v2/sig/origin\0";

/// The 42-octet message header (`spec/envelope.md` §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Authored or trustful.
    pub kind: MessageKind,
    /// The random message id.
    pub message_id: [u8; MESSAGE_ID_LEN],
}

impl Header {
    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..7].copy_from_slice(&MAGIC);
        b[7] = VERSION;
        b[8] = self.kind.code();
        b[9] = 0;
        b[10..].copy_from_slice(&self.message_id);
        b
    }

    /// Parses and checks a header: magic, version, kind and the reserved flags octet
    /// (`spec/envelope.md` §2).
    pub fn from_bytes(b: &[u8; HEADER_LEN]) -> Result<Header, DecodeError> {
        if b[..7] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        if b[7] != VERSION {
            return Err(DecodeError::UnsupportedVersion(b[7]));
        }
        let kind = MessageKind::from_code(b[8]).ok_or(DecodeError::UnknownKind(b[8]))?;
        if b[9] != 0 {
            return Err(DecodeError::ReservedBits);
        }
        let mut message_id = [0u8; MESSAGE_ID_LEN];
        message_id.copy_from_slice(&b[10..]);
        Ok(Header { kind, message_id })
    }
}

/// The nonce of segment `segment` of a chunk (`spec/envelope.md` §3.3).
pub(crate) fn segment_nonce(segment: u32, last: bool) -> [u8; AEAD_NONCE_LEN] {
    let mut n = [0u8; AEAD_NONCE_LEN];
    n[0] = u8::from(last);
    n[20..].copy_from_slice(&segment.to_be_bytes());
    n
}

/// The associated data of one segment (`spec/envelope.md` §3.3).
pub(crate) fn segment_aad(
    header: &Header,
    ty: ChunkType,
    flags: u8,
    index: u16,
    segment: u32,
    last: bool,
) -> [u8; 14 + 32 + 1 + 1 + 1 + 2 + 4 + 1] {
    let mut a = [0u8; 14 + 32 + 1 + 1 + 1 + 2 + 4 + 1];
    a[..14].copy_from_slice(CHUNK_AAD_LABEL);
    a[14..46].copy_from_slice(&header.message_id);
    a[46] = header.kind.code();
    a[47] = ty.code();
    a[48] = flags;
    a[49..51].copy_from_slice(&index.to_be_bytes());
    a[51..55].copy_from_slice(&segment.to_be_bytes());
    a[55] = u8::from(last);
    a
}

/// The nonce of a key slot (`spec/envelope.md` §4).
pub(crate) fn slot_nonce(role: Role, index: u16) -> [u8; AEAD_NONCE_LEN] {
    let mut n = [0u8; AEAD_NONCE_LEN];
    n[0] = role.code();
    n[22..].copy_from_slice(&index.to_be_bytes());
    n
}

/// The associated data of a key slot (`spec/envelope.md` §4).
pub(crate) fn slot_aad(
    header: &Header,
    ty: ChunkType,
    index: u16,
    role: Role,
    alg: u8,
) -> [u8; 13 + 32 + 1 + 1 + 2 + 1 + 1] {
    let mut a = [0u8; 13 + 32 + 1 + 1 + 2 + 1 + 1];
    a[..13].copy_from_slice(SLOT_AAD_LABEL);
    a[13..45].copy_from_slice(&header.message_id);
    a[45] = header.kind.code();
    a[46] = ty.code();
    a[47..49].copy_from_slice(&index.to_be_bytes());
    a[49] = role.code();
    a[50] = alg;
    a
}

/// An actor's key-encryption key from the X25519 shared secret (`spec/envelope.md` §4). The
/// provider refuses a non-contributory shared secret before HKDF sees it.
pub(crate) fn actor_kek(
    p: &CryptoProvider,
    shared: &dime_core::crypto::SharedSecret,
    eph_pub: &X25519PublicKey,
    actor_pub: &X25519PublicKey,
    role: Role,
) -> Result<AeadKey, CryptoError> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(&eph_pub.0);
    salt[32..].copy_from_slice(&actor_pub.0);
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    p.kdf.hkdf_sha512(&salt, shared.expose(), role.kek_label(), out.as_mut())?;
    Ok(AeadKey::from_bytes(*out))
}

/// The transit key-encryption key (`spec/envelope.md` §4).
pub(crate) fn transit_kek(
    p: &CryptoProvider,
    header: &Header,
    transit: &[u8; 32],
) -> Result<AeadKey, CryptoError> {
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    p.kdf.hkdf_sha512(&header.message_id, transit, Role::Transit.kek_label(), out.as_mut())?;
    Ok(AeadKey::from_bytes(*out))
}

/// The Padme bucket of `len` octets, at least [`crate::limits::PAD_MIN`]
/// (`spec/envelope.md` §3.4).
pub fn padded_len(len: u64) -> u64 {
    let l = len.max(crate::limits::PAD_MIN as u64);
    // l >= 256, so ilog2 is defined and e >= 8.
    let e = u64::from(l.ilog2());
    let s = u64::from(e.ilog2()) + 1;
    let last_bits = e - s;
    let mask = (1u64 << last_bits) - 1;
    l.saturating_add(mask) & !mask
}

/// One entry of a tree: a chunk's type, index and SHA-512 as sent (`spec/envelope.md` §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeEntry {
    /// The chunk type.
    pub chunk_type: ChunkType,
    /// The chunk's index.
    pub index: u16,
    /// SHA-512 of the chunk's bytes as sent, key slots included.
    pub hash: [u8; 64],
}

impl TreeEntry {
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(self.chunk_type.code());
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.hash);
    }
}

fn push_name(out: &mut Vec<u8>, s: &str) {
    // Domains are at most 253 octets (dime_core::limits::DOMAIN_MAX_LEN).
    out.push(u8::try_from(s.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(s.as_bytes());
}

fn push_tree(out: &mut Vec<u8>, tree: &[TreeEntry]) {
    out.extend_from_slice(&u16::try_from(tree.len()).unwrap_or(u16::MAX).to_be_bytes());
    for e in tree {
        e.write(out);
    }
}

/// The author tree signature input (`spec/envelope.md` §7.1).
pub(crate) fn tree_sig_input(
    alg: u8,
    header: &Header,
    destination: &str,
    tree: &[TreeEntry],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(80 + destination.len() + tree.len() * TREE_ENTRY_LEN);
    v.extend_from_slice(TREE_SIG_LABEL);
    v.push(alg);
    v.extend_from_slice(&header.to_bytes());
    push_name(&mut v, destination);
    push_tree(&mut v, tree);
    v
}

/// The author full signature input (`spec/envelope.md` §7.2).
pub(crate) fn full_sig_input(alg: u8, header: &Header, digest: &[u8; 64]) -> Vec<u8> {
    let mut v = Vec::with_capacity(FULL_SIG_LABEL.len() + 1 + HEADER_LEN + 64);
    v.extend_from_slice(FULL_SIG_LABEL);
    v.push(alg);
    v.extend_from_slice(&header.to_bytes());
    v.extend_from_slice(digest);
    v
}

/// The origin signature input (`spec/envelope.md` §7.3).
pub(crate) fn origin_sig_input(
    alg: u8,
    header: &Header,
    signed_at: u64,
    origin: &str,
    destination: &str,
    tree: &[TreeEntry],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(80 + 2 * 256 + tree.len() * TREE_ENTRY_LEN);
    v.extend_from_slice(ORIGIN_SIG_LABEL);
    v.push(alg);
    v.extend_from_slice(&header.to_bytes());
    v.extend_from_slice(&signed_at.to_be_bytes());
    push_name(&mut v, origin);
    push_name(&mut v, destination);
    push_tree(&mut v, tree);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padme_buckets_match_the_spec_table() {
        // spec/envelope.md §3.4
        assert_eq!(padded_len(0), 256);
        assert_eq!(padded_len(256), 256);
        assert_eq!(padded_len(257), 272);
        assert_eq!(padded_len(1000), 1024);
        assert_eq!(padded_len(4096), 4096);
        assert_eq!(padded_len(4097), 4352);
        assert_eq!(padded_len(1 << 32), 1 << 32);
        assert_eq!(padded_len(u64::MAX), !((1u64 << 57) - 1));
        for l in [300u64, 5000, 70_000, 1 << 20, 100 << 20] {
            let p = padded_len(l);
            assert!(p >= l);
            // Padme overhead is at most 12 % for these sizes.
            assert!((p - l) * 100 <= l * 12, "{l} -> {p}");
        }
    }

    #[test]
    fn type_and_role_codes_round_trip() {
        for t in ChunkType::ALL {
            assert_eq!(ChunkType::from_code(t.code()), Some(t));
        }
        for r in [Role::Author, Role::Origin, Role::Destination, Role::Recipient, Role::Transit] {
            assert_eq!(Role::from_code(r.code()), Some(r));
        }
        assert_eq!(ChunkType::from_code(0), None);
        assert_eq!(Role::from_code(0), None);
    }

    #[test]
    fn magic_is_not_libdime() {
        let h = Header { kind: MessageKind::Authored, message_id: [0; 32] }.to_bytes();
        // libdime: u16 big-endian 1837 (0x072d) or 1847 (0x0737).
        assert_ne!(&h[..2], &1837u16.to_be_bytes());
        assert_ne!(&h[..2], &1847u16.to_be_bytes());
        assert_eq!(&h[..8], b"DIMEMSG\x02");
    }
}
