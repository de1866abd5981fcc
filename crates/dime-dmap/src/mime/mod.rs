//! MIME over stored messages (RFC 2045-2047, RFC 9051 §6.4.5 and §7.5.2, RFC 3516): the
//! structure of RFC 5322 bytes ([`MimeTree`]), BODYSTRUCTURE, ENVELOPE, sections, BINARY,
//! what SEARCH needs, and the two mappings between dime's envelope `Message` and RFC 5322
//! (legacy: the original bytes kept; native: rendered). The output follows Dovecot 2.3,
//! which the golden tests (`tests/mime/`) compare against.

mod address;
mod codec;
mod fetch;
mod header;
mod render;
mod search;
mod tree;

pub use fetch::{BinaryError, binary, binary_size, body_structure, envelope, section};
pub use render::{LEGACY_CONTENT_TYPE, LegacyError, legacy_message, render_message};
pub use search::{TextScope, contains_text, header_values, sent_date};
pub use tree::{Disposition, MimeNode, MimeTree};
