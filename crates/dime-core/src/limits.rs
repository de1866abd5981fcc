//! Named limits of dime's wire formats. Every decoder checks a declared length against one of
//! these before it allocates (design promise 5). Each constant cites the spec section that
//! fixes it.

/// Largest signet payload: the header's length is a u24 (`spec/signet.md` §2).
pub const SIGNET_MAX_PAYLOAD: usize = 0x00FF_FFFF;

/// Size of the signet and key-file header: u16 magic, u24 payload length (`spec/signet.md` §2).
pub const SIGNET_HEADER_LEN: usize = 5;

/// Largest armored object accepted, in characters (`spec/signet.md` §8): the base64 of a
/// largest signet plus line breaks and armor lines.
pub const ARMOR_MAX_CHARS: usize =
    (SIGNET_MAX_PAYLOAD + SIGNET_HEADER_LEN).div_ceil(3) * 4 * 65 / 64 + 1024;

/// Longest domain name, in octets, without the final dot (RFC 1035 §2.3.4).
pub const DOMAIN_MAX_LEN: usize = 253;

/// Longest DNS label, in octets (RFC 1035 §2.3.4).
pub const LABEL_MAX_LEN: usize = 63;

/// Longest mailbox local part, in octets (RFC 5321 §4.5.3.1.1).
pub const LOCAL_PART_MAX_LEN: usize = 64;

/// Longest `_dx` record accepted, all its strings joined, in octets (`spec/dns-record.md` §2).
pub const DX_RECORD_MAX_LEN: usize = 4096;

/// Longest passphrase accepted for a key file, in octets (`spec/signet.md` §9).
pub const PASSPHRASE_MAX_LEN: usize = 4096;
