//! Named limits of the envelope format. Every decoder checks a declared length against one of
//! these before it allocates (`spec/envelope.md` §11).

/// Largest payload of one segment, in octets; every segment but a chunk's last carries exactly
/// this much (`spec/envelope.md` §3.3, §11).
pub const SEGMENT_PAYLOAD: usize = 64 * 1024;

/// Largest ciphertext of one segment: payload, content-length field and tag
/// (`spec/envelope.md` §3.3, §11).
pub const SEGMENT_MAX_CIPHERTEXT: usize = SEGMENT_PAYLOAD + crate::format::SEGMENT_OVERHEAD;

/// Smallest padded plaintext of a padded chunk (`spec/envelope.md` §3.4).
pub const PAD_MIN: usize = 256;

/// Largest content of a display or attachment part, part info included, before padding
/// (`spec/envelope.md` §11). Padme keeps 4 GiB at 4 GiB.
pub const PART_MAX_LEN: u64 = 1 << 32;

/// Largest content of a header chunk, or of the origin or destination chunk
/// (`spec/envelope.md` §11).
pub const HEADERS_MAX_LEN: usize = 1 << 20;

/// Largest number of headers in one header chunk (`spec/envelope.md` §8.3).
pub const HEADERS_MAX_COUNT: usize = 4096;

/// Longest header name, in octets (`spec/envelope.md` §8.3).
pub const HEADER_NAME_MAX_LEN: usize = 128;

/// Longest header value, in octets (`spec/envelope.md` §8.3).
pub const HEADER_VALUE_MAX_LEN: usize = 64 * 1024 - 1;

/// Longest part content type, in octets (`spec/envelope.md` §8.4).
pub const CONTENT_TYPE_MAX_LEN: usize = 255;

/// Longest part file name, in octets (`spec/envelope.md` §8.4).
pub const FILENAME_MAX_LEN: usize = 1024;

/// Largest number of display and attachment parts in one message (`spec/envelope.md` §11).
pub const MAX_PARTS: usize = 1024;

/// Largest number of chunks in one message: the fixed chunks plus [`MAX_PARTS`]
/// (`spec/envelope.md` §11).
pub const MAX_CHUNKS: usize = MAX_PARTS + 10;

/// Largest number of segments of one chunk (`spec/envelope.md` §11).
pub const MAX_SEGMENTS: u64 = PART_MAX_LEN.div_ceil(SEGMENT_PAYLOAD as u64);

/// Largest number of tree entries a tree signature chunk may list (`spec/envelope.md` §7.1).
pub const MAX_TREE_ENTRIES: usize = MAX_CHUNKS;
