//! `dime-dmap`: DMAP, dime's access protocol, sans-IO (`spec/dmap.md`). Part 1 is IMAP4rev2
//! (RFC 9051) with IMAP4rev1 compatibility, for ordinary mail clients.
//!
//! What it is: the framing of client input (lines and literals, each refused over its limit
//! before anything is allocated), the command parser ([`Command`]), the response encoder, and
//! the rendering of a stored message as RFC 5322 with its BODYSTRUCTURE and ENVELOPE.
//!
//! What it is not: a transport, a store or a policy. It opens no socket, reads no clock and
//! draws no randomness; the driver (`dime-server`) feeds bytes in, carries out each command
//! against the mail service and writes the responses out.

mod command;
mod encode;
mod frame;
pub mod limits;
mod mime;
mod mutf7;
mod parse;
pub mod response;
mod selected;
mod server;

pub use command::*;
pub use encode::{
    encode_astring, encode_date_time, encode_flag, encode_flags, encode_literal, encode_literal8,
    encode_mailbox, encode_nstring, encode_quoted, encode_string, encode_uid_set,
};
pub use frame::{Frame, FrameLimits, FrameMode, Framer};
pub use mime::{
    BinaryError, Disposition, LEGACY_CONTENT_TYPE, LegacyError, MimeNode, MimeTree, TextScope,
    binary, binary_size, body_structure, contains_text, envelope, header_values, legacy_message,
    render_message, section, sent_date,
};
pub use mutf7::{Mutf7Error, decode_mutf7, encode_mutf7};
pub use parse::{ParseError, SaslResponse, is_idle_done, parse_command, parse_sasl_response};
pub use selected::{Selected, SnapshotEntry, Update, clip_uid_ranges};
pub use server::{Enabled, Event, Server, ServerConfig, State, Status};
