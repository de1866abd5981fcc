//! DMAP's named limits (`spec/dmap.md` §6). Each is tested at the limit and one past it.

/// Longest command tag, octets.
pub const MAX_TAG_LEN: usize = 64;

/// Deepest nesting of parenthesised search keys, NOT and OR (`spec/dmap.md` §6).
pub const MAX_SEARCH_DEPTH: usize = 32;
