//! DMAP's named limits (`spec/dmap.md` §6). Each is tested at the limit and one past it.

/// Longest command tag, octets.
pub const MAX_TAG_LEN: usize = 64;

/// Deepest nesting of parenthesised search keys, NOT and OR (`spec/dmap.md` §6).
pub const MAX_SEARCH_DEPTH: usize = 32;

/// Longest line segment of a command, octets without its CRLF: a line, or the text between two
/// literals (`spec/dmap.md` §6). Also the limit of a line in line mode (an AUTHENTICATE
/// response, IDLE's `DONE`).
pub const MAX_LINE_LEN: usize = 8 * 1024;

/// Largest whole command other than APPEND, octets: its lines and literals together
/// (`spec/dmap.md` §6).
pub const MAX_COMMAND_LEN: usize = 64 * 1024;

/// Largest message an APPEND may carry, octets: the default of the APPENDLIMIT the framer is
/// given (`spec/dmap.md` §6). Only an APPEND's literal may be this large.
pub const MAX_APPEND_LEN: usize = 64 * 1024 * 1024;

/// Most literals in one command (`spec/dmap.md` §6).
pub const MAX_LITERALS_PER_COMMAND: usize = 64;

/// Most ranges in one sequence set, `1,3:5,7:*` being three (`spec/dmap.md` §6). Clients send
/// long UID lists for a scattered selection (a COPY or STORE of many messages); a command of
/// [`MAX_COMMAND_LEN`] holds at most about 32,000 ranges, and a range costs 16 octets parsed.
pub const MAX_SEQUENCE_RANGES: usize = 16_384;

/// ID (RFC 2971 §3.3): most field-value pairs, longest field name and longest value, octets
/// (`spec/dmap.md` §6).
pub const MAX_ID_PAIRS: usize = 30;
/// See [`MAX_ID_PAIRS`].
pub const MAX_ID_FIELD_LEN: usize = 30;
/// See [`MAX_ID_PAIRS`].
pub const MAX_ID_VALUE_LEN: usize = 1024;

/// Deepest MIME nesting parsed (multiparts and nested messages); deeper entities read as
/// opaque leaves (`spec/dmap.md` §6).
pub const MAX_MIME_DEPTH: usize = 16;

/// Most MIME entities parsed in one message; later parts are not split out (`spec/dmap.md` §6).
pub const MAX_MIME_PARTS: usize = 1000;

/// BAD answers in a row after which the connection is closed with `* BYE` (`spec/dmap.md` §6):
/// a client that speaks no IMAP (a scanner, an HTTP request, binary garbage) is not answered
/// for ever. Any OK or NO answer starts the count again.
pub const MAX_BAD_COMMANDS: usize = 20;
