//! `inspect`: a message's structure and what a key can open (`spec/envelope.md` §12), for
//! `dime message inspect FILE [--key KEYFILE]`.

use crate::ActorSecret;
use crate::engine::{DiscardSink, Engine, Mode};
use crate::format::{ChunkType, MessageKind, Role};
use dime_core::crypto::CryptoProvider;

/// One chunk as `inspect` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkSummary {
    /// Its position.
    pub index: u16,
    /// Its type.
    pub chunk_type: ChunkType,
    /// Offset of its first octet in the message.
    pub offset: u64,
    /// Its size on the wire, slots and tags included.
    pub size: u64,
    /// Number of segments (0 for the clear ephemeral chunk).
    pub segments: u64,
    /// The roles holding a key slot.
    pub slots: Vec<Role>,
    /// The role under which the given key opened it, if any.
    pub opened_as: Option<Role>,
    /// Its padded plaintext size, when the key opened it.
    pub padded_size: Option<u64>,
}

/// What `inspect` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The message kind, if the header decoded.
    pub kind: Option<MessageKind>,
    /// The message id, if the header decoded.
    pub message_id: Option<[u8; 32]>,
    /// Octets read.
    pub size: u64,
    /// The chunks decoded, in order (up to an error).
    pub chunks: Vec<ChunkSummary>,
    /// The roles whose slots the given key opened.
    pub key_roles: Vec<Role>,
    /// The first framing or authentication error, if any.
    pub error: Option<String>,
}

/// Describes `message`: header, chunks, sizes, and, with `key`, which roles' slots that
/// key opens (it is tried as every actor). Never fails: an error is reported in
/// [`Inspection::error`] with the structure read up to it.
pub fn inspect(p: &CryptoProvider, message: &[u8], key: Option<&ActorSecret>) -> Inspection {
    let roles: &[Role] = if key.is_some() { &Role::ACTORS } else { &[] };
    let mut engine = Engine::new(p, key, roles, Mode::Inspect);
    let mut src = message;
    let error = engine.run(&mut src, &mut DiscardSink).err().map(|e| e.to_string());
    let mut key_roles: Vec<Role> = Vec::new();
    let chunks = engine
        .chunks
        .iter()
        .map(|c| {
            if let Some(r) = c.opened_by
                && r != Role::Transit
                && !key_roles.contains(&r)
            {
                key_roles.push(r);
            }
            ChunkSummary {
                index: c.entry.index,
                chunk_type: c.entry.chunk_type,
                offset: c.offset,
                size: c.len,
                segments: c.segments,
                slots: c.slots.clone(),
                opened_as: c.opened_by,
                padded_size: c.padded_len,
            }
        })
        .collect();
    key_roles.sort();
    Inspection {
        kind: engine.header.map(|h| h.kind),
        message_id: engine.header.map(|h| h.message_id),
        size: engine.total_len,
        chunks,
        key_roles,
        error,
    }
}
