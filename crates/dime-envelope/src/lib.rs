//! `dime-envelope`: the layered DIME message, format v2 (`spec/envelope.md`).
//!
//! What it is: the codec and the cryptography of one message. The author seals it
//! ([`seal`], [`seal_message`]) for four actors (author, origin, destination, recipient);
//! each chunk has its own key, wrapped in a key slot for exactly the actors of the matrix
//! (`spec/envelope.md` §6). Each actor opens its view ([`open_as_recipient`],
//! [`open_as_origin`], [`open_as_destination`], [`open_as_author`], [`open_streaming`]) and
//! verifies the signatures it can see (a light client: [`open_light`], without attachment
//! bodies); the origin appends its signature chunk
//! ([`Verified::origin_signature_chunk`]). [`inspect`] describes a message's structure.
//! A store keeps a *key overlay* beside a message ([`recipient_chunk_keys`],
//! [`ChunkKeys::seal_to_x25519`], [`ChunkKeys::seal_with_read_key`],
//! [`open_as_recipient_with_overlay`]) to re-wrap it after a key rotation or to open it
//! without an X25519, the message itself unchanged (`spec/envelope.md` §16).
//!
//! What it is not: a place for I/O, clocks or ambient randomness. Every crypto operation goes
//! through a `&CryptoProvider`; randomness is a `&mut dyn CryptoRngCore` parameter; streams
//! are caller-provided `std::io::Read`/`Write` values. Key lookup (signets, DNS) is the
//! caller's: opening is two-phase ([`Unverified`] then [`Verified`]) so the caller can look
//! up the claimed signers' keys in between.

mod codec;
mod engine;
mod error;
pub mod format;
mod inspect;
pub mod limits;
#[cfg(test)]
mod negative;
mod open;
mod overlay;
mod seal;
mod signets;

pub use codec::{Headers, PartInfo, PartKind};
pub use engine::{CollectSink, DiscardSink, PartSink};
pub use error::{DecodeError, ErrorClass, OpenError, SealError};
pub use format::{ChunkType, MAX_SIGNER_KEYS, MessageKind, Role, TreeEntry, padded_len};
pub use inspect::{ChunkSummary, Inspection, inspect};
pub use open::{
    DestinationView, FullView, LightChunk, LightView, OriginView, ReaderRole, SignatureState,
    Signatures, SignerKeys, Unverified, Verified, chunk_hash, open_as_author, open_as_destination,
    open_as_origin, open_as_recipient, open_light, open_streaming,
};
pub use overlay::{
    ChunkKeys, OVERLAY_AAD_LABEL, OVERLAY_ENTRY_LEN, OVERLAY_MAGIC, OVERLAY_MAX_LEN,
    OVERLAY_READ_LABEL, OVERLAY_VERSION, OVERLAY_X25519_LABEL, OverlayForm, OverlayKey,
    open_as_recipient_with_keys, open_as_recipient_with_keys_unverified,
    open_as_recipient_with_overlay, open_overlay, recipient_chunk_keys,
};
pub use seal::{
    ActorKeys, ActorSecret, Addressing, Content, Message, Part, PartSource, Signer, seal,
    seal_message, seal_message_origin_signed,
};
pub use signets::{ActorKeyError, author_signing_keys, origin_signing_keys};
