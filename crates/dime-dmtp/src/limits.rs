//! DMTP's named limits and deadlines (`spec/dmtp.md` §8). Each is tested at the limit and one
//! past it.

use std::time::Duration;

/// Largest frame payload (the protobuf message after the 4-octet length), in octets. A larger
/// declared length is refused before anything is allocated, and the stream is closed
/// (`spec/dmtp.md` §4, §8).
pub const MAX_FRAME_SIZE: usize = 256 * 1024;

/// Length of the frame header: a big-endian `u32` payload length (`spec/dmtp.md` §4).
pub const FRAME_HEADER_LEN: usize = 4;

/// Largest DATA body (a sealed envelope) a server accepts by default, in octets
/// (`spec/dmtp.md` §6.4, §8).
pub const MAX_MESSAGE_SIZE: u64 = 64 * 1024 * 1024;

/// Slowest a DATA body may arrive, on average, in octets per second (`spec/dmtp.md` §6.4): a
/// body must be complete within [`BODY_GRACE`] plus its declared size at this rate.
pub const MIN_BODY_RATE: u64 = 32 * 1024;

/// The time a body has beyond its size at [`MIN_BODY_RATE`] (`spec/dmtp.md` §6.4).
pub const BODY_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// A destination refuses an envelope whose origin signature is older than this, in seconds
/// (`spec/dmtp.md` §6.4.2): 7 days, beyond an origin's longest queue lifetime.
pub const REPLAY_WINDOW_SECS: u64 = 7 * 24 * 3600;

/// How far in the future a destination accepts an origin signature's time, in seconds
/// (`spec/dmtp.md` §6.4.2): the clocks of two servers may differ by this much.
pub const CLOCK_SKEW_SECS: u64 = 3600;

/// Body octets the client puts in one BODY frame (`spec/dmtp.md` §6.4).
pub const BODY_CHUNK_SIZE: usize = 64 * 1024;

/// Largest body the client sends right after its DATA (`body_follows`), without waiting for
/// the 354: one round trip less per message; a larger body waits, so that a refusal does not
/// cost its transfer (`spec/dmtp.md` §6.4.1, §8).
pub const BODY_FOLLOWS_MAX: usize = 256 * 1024;

/// RCPT commands per transaction: an envelope is sealed for exactly one destination
/// (`spec/envelope.md`), so one (`spec/dmtp.md` §6.3, §8).
pub const MAX_RECIPIENTS: usize = 1;

/// Transactions (DATA bodies accepted or refused) per stream: over TLS over TCP, per
/// connection. Over QUIC a stream carries one transaction and `dime-net` caps streams per
/// connection instead (`spec/dmtp.md` §8).
pub const MAX_TRANSACTIONS: u32 = 100;

/// Signet lookups (SGNT, VRFY, HIST) per stream (`spec/dmtp.md` §8).
pub const MAX_LOOKUPS: u32 = 64;

/// Frames refused as undecodable or out of sequence before the server closes the stream
/// (`spec/dmtp.md` §4.2, §8).
pub const MAX_ERRORS: u32 = 3;

/// Signets in one HIST reply (`spec/dmtp.md` §6.7, §8).
pub const MAX_HISTORY_SIGNETS: usize = 64;

/// Longest transaction id a server may return (`spec/dmtp.md` §6.4).
pub const MAX_TRANSACTION_ID_LEN: usize = 64;

/// Time from the stream's start to a complete HELLO (`spec/dmtp.md` §8).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest silence while the server waits for the client's next frame, and the client for a
/// reply (`spec/dmtp.md` §8).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Default DMTP port, for TLS over TCP and for QUIC over UDP (`spec/dmtp.md` §2).
pub const DMTP_PORT: u16 = 26;

/// The ALPN protocol id, for QUIC and for TLS over TCP (`spec/dmtp.md` §3).
pub const ALPN: &[u8] = b"dmtp/1";

/// The protocol version HELLO carries (`spec/dmtp.md` §6.1).
pub const VERSION: u32 = 1;
