//! The streaming decoder shared by every open and by `inspect` (`spec/envelope.md` §3-§6).
//!
//! It reads a message from a `Read` source one segment at a time, checks the framing and the
//! chunk order, hashes every chunk as sent, unwraps the slots it holds a key-encryption key
//! for, and opens those chunks' segments. A segment's plaintext is released (to a
//! [`PartSink`] or an internal buffer) only after its tag verifies and its padding is checked.

use crate::codec::{PartInfo, PartKind};
use crate::error::{DecodeError, OpenError};
use crate::format::{
    ChunkType, HEADER_LEN, Header, Role, SIGNATURE_FIELD_LEN, SLOT_LEN, TreeEntry, actor_kek,
    padded_len, segment_aad, segment_nonce, slot_aad, slot_nonce, transit_kek,
};
use crate::limits::{
    HEADERS_MAX_LEN, MAX_CHUNKS, MAX_PARTS, MAX_SEGMENTS, MAX_TREE_ENTRIES, SEGMENT_PAYLOAD,
};
use dime_core::crypto::{AEAD_TAG_LEN, AeadKey, CryptoProvider, HashContext, X25519PublicKey};
use std::io::Read;
use zeroize::Zeroizing;

// The part info always fits in a part's first segment (spec/envelope.md §8.4).
const _: () = assert!(PartInfo::MAX_ENCODED < SEGMENT_PAYLOAD);

/// Receives the data of display and attachment parts as they are opened. Each call carries
/// plaintext whose tag has already verified. A part whose later segment fails leaves the
/// sink with a prefix and the open returns an error: discard what the sink holds.
pub trait PartSink {
    /// A part begins.
    fn begin(&mut self, kind: PartKind, info: &PartInfo) -> std::io::Result<()>;
    /// The next verified bytes of the current part.
    fn data(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// The current part ended.
    fn end(&mut self) -> std::io::Result<()>;
}

/// A sink that drops part data.
#[derive(Debug, Default)]
pub struct DiscardSink;

impl PartSink for DiscardSink {
    fn begin(&mut self, _: PartKind, _: &PartInfo) -> std::io::Result<()> {
        Ok(())
    }
    fn data(&mut self, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
    fn end(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A sink that keeps every part in memory.
#[derive(Debug, Default)]
pub struct CollectSink {
    /// The parts received so far.
    pub parts: Vec<crate::Part>,
}

impl PartSink for CollectSink {
    fn begin(&mut self, kind: PartKind, info: &PartInfo) -> std::io::Result<()> {
        self.parts.push(crate::Part { kind, info: info.clone(), data: Vec::new() });
        Ok(())
    }
    fn data(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(p) = self.parts.last_mut() {
            p.data.extend_from_slice(bytes);
        }
        Ok(())
    }
    fn end(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the decoder learnt about one chunk.
#[derive(Debug, Clone)]
pub(crate) struct ChunkRecord {
    pub(crate) entry: TreeEntry,
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) segments: u64,
    pub(crate) slots: Vec<Role>,
    /// The role whose slot opened the chunk, if any.
    pub(crate) opened_by: Option<Role>,
    /// Padded plaintext length, when opened.
    pub(crate) padded_len: Option<u64>,
    /// Content of a non-part chunk, when opened.
    pub(crate) content: Option<Zeroizing<Vec<u8>>>,
    /// Left out by a light client (its hash is unknown here).
    pub(crate) omitted: bool,
}

/// Chunk order and counts while decoding (§5, §11).
#[derive(Default)]
struct LoopState {
    prev: Option<ChunkType>,
    parts: usize,
}

impl LoopState {
    fn admit(&mut self, ty: ChunkType, count: usize) -> Result<(), OpenError> {
        if !may_follow(self.prev, ty) {
            return Err(DecodeError::ChunkOrder(ty.code()).into());
        }
        if count >= MAX_CHUNKS {
            return Err(DecodeError::TooMany("chunks", MAX_CHUNKS).into());
        }
        if ty.is_part() {
            self.parts += 1;
            if self.parts > MAX_PARTS {
                return Err(DecodeError::TooMany("parts", MAX_PARTS).into());
            }
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), OpenError> {
        match self.prev {
            Some(ChunkType::AuthorFullSig | ChunkType::OriginSig) => Ok(()),
            None => Err(DecodeError::MissingChunk("ephemeral").into()),
            Some(_) => Err(DecodeError::Truncated.into()),
        }
    }
}

/// Whether the decoder opens a message as an actor or inspects it (`spec/envelope.md` §6,
/// §12). There is no third way: every open refuses what inspection reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// An actor's open (every `open_*`, the chunk keys of an overlay): a failed key agreement
    /// or a slot of one of its roles that does not open refuses the message
    /// ([`OpenError::Unauthentic`]), as does every framing error.
    Open,
    /// Inspection: a slot that does not open, or a failed key agreement, leaves the chunk
    /// unopened and is not an error; a framing error ends the walk and is reported.
    Inspect,
}

/// The decoder's state; after `run` (successful or not) it holds what was read.
pub(crate) struct Engine<'a> {
    p: &'a CryptoProvider,
    secret: Option<&'a crate::ActorSecret>,
    roles: Vec<Role>,
    /// Opening (a slot of one of `roles` that fails to unwrap refuses) or inspecting.
    mode: Mode,
    pub(crate) header: Option<Header>,
    pub(crate) eph_pub: Option<X25519PublicKey>,
    keks: Vec<(Role, AeadKey)>,
    pub(crate) transit: Option<Zeroizing<[u8; 32]>>,
    pub(crate) chunks: Vec<ChunkRecord>,
    /// SHA-512 of every octet up to the key slots of the author full signature chunk.
    pub(crate) full_digest: Option<[u8; 64]>,
    pub(crate) total_len: u64,
    /// Chunk keys given by a key overlay (`spec/envelope.md` §16): the recipient's chunks
    /// open with these instead of their slots.
    pub(crate) preset: Option<&'a crate::overlay::ChunkKeys>,
    /// How many preset keys were used.
    pub(crate) preset_used: usize,
    /// Collect the recipient's unwrapped chunk keys and open no segment.
    pub(crate) collect_keys: bool,
    /// The keys collected (type, index, key).
    pub(crate) collected: Vec<(ChunkType, u16, Zeroizing<[u8; 32]>)>,
    /// Whether the signatures can be verified afterwards: chunks hashed, the transit and
    /// signature chunks opened. Off only for a reader that displays and verifies nothing (its
    /// evidence then has zero hashes and no signatures, and must never be verified).
    pub(crate) hashing: bool,
}

struct Src<'r, R: Read> {
    r: &'r mut R,
    full: Option<Box<dyn HashContext>>,
    chunk: Option<Box<dyn HashContext>>,
    pos: u64,
}

impl<R: Read> Src<'_, R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), OpenError> {
        let mut n = 0;
        while n < buf.len() {
            let Some(rest) = buf.get_mut(n..) else { break };
            match self.r.read(rest) {
                Ok(0) => return Err(DecodeError::Truncated.into()),
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.absorb(buf);
        Ok(())
    }

    fn absorb(&mut self, buf: &[u8]) {
        if let Some(h) = self.full.as_mut() {
            h.update(buf);
        }
        if let Some(h) = self.chunk.as_mut() {
            h.update(buf);
        }
        self.pos += buf.len() as u64;
    }

    /// The next octet, unhashed, or `None` at the end of input.
    fn peek_byte(&mut self) -> Result<Option<u8>, OpenError> {
        let mut b = [0u8; 1];
        loop {
            match self.r.read(&mut b) {
                Ok(0) => return Ok(None),
                Ok(_) => return Ok(Some(b[0])),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn u8(&mut self) -> Result<u8, OpenError> {
        let mut b = [0u8; 1];
        self.read_exact(&mut b)?;
        Ok(b[0])
    }

    fn u16(&mut self) -> Result<u16, OpenError> {
        let mut b = [0u8; 2];
        self.read_exact(&mut b)?;
        Ok(u16::from_be_bytes(b))
    }

    fn u32(&mut self) -> Result<u32, OpenError> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }
}

/// The largest content a non-part chunk of this type may hold (§11).
fn content_limit(ty: ChunkType) -> usize {
    match ty {
        ChunkType::Transit => 32,
        ChunkType::AuthorFullSig => SIGNATURE_FIELD_LEN,
        ChunkType::OriginSig => crate::format::ORIGIN_SIG_CONTENT_LEN,
        ChunkType::AuthorTreeSig => {
            2 + MAX_TREE_ENTRIES * crate::format::TREE_ENTRY_LEN + SIGNATURE_FIELD_LEN
        }
        _ => HEADERS_MAX_LEN,
    }
}

/// The author tree signature chunk at index `t` lists exactly the `t` chunks before it: its
/// count is `t` and its content `2 + 67 t + 65` octets (§7.1). Checked as the chunk opens,
/// before any signature.
fn check_tree_count(content: &[u8], t: u16) -> Result<(), DecodeError> {
    let want = 2 + usize::from(t) * crate::format::TREE_ENTRY_LEN + SIGNATURE_FIELD_LEN;
    match content.first_chunk::<2>() {
        Some(count) if u16::from_be_bytes(*count) == t && content.len() == want => Ok(()),
        _ => Err(DecodeError::TreeCount),
    }
}

/// Whether `next` may follow `prev` (§5).
fn may_follow(prev: Option<ChunkType>, next: ChunkType) -> bool {
    use ChunkType::*;
    match prev {
        None => next == Ephemeral,
        Some(Ephemeral) => next == Transit,
        Some(Transit) => next == Origin,
        Some(Origin) => next == Destination,
        Some(Destination) => next == CommonHeaders,
        Some(CommonHeaders) => next == OtherHeaders,
        Some(OtherHeaders) | Some(Display) => matches!(next, Display | Attachment | AuthorTreeSig),
        Some(Attachment) => matches!(next, Attachment | AuthorTreeSig),
        Some(AuthorTreeSig) => next == AuthorFullSig,
        Some(AuthorFullSig) => next == OriginSig,
        Some(OriginSig) => false,
    }
}

impl<'a> Engine<'a> {
    pub(crate) fn new(
        p: &'a CryptoProvider,
        secret: Option<&'a crate::ActorSecret>,
        roles: &[Role],
        mode: Mode,
    ) -> Self {
        Engine {
            p,
            secret,
            roles: roles.to_vec(),
            mode,
            header: None,
            eph_pub: None,
            keks: Vec::new(),
            transit: None,
            chunks: Vec::new(),
            full_digest: None,
            total_len: 0,
            preset: None,
            preset_used: 0,
            collect_keys: false,
            collected: Vec::new(),
            hashing: true,
        }
    }

    /// Decodes the whole message.
    pub(crate) fn run<R: Read>(
        &mut self,
        r: &mut R,
        sink: &mut dyn PartSink,
    ) -> Result<(), OpenError> {
        // Only the readers of the full signature chunk (A, O, R) need the full digest (§7.2).
        let needs_full =
            self.roles.iter().any(|r| ChunkType::AuthorFullSig.slot_roles().contains(r));
        let full = (needs_full && self.hashing).then(|| self.p.hash.start());
        let mut src = Src { r, full, chunk: None, pos: 0 };
        let result = self.run_inner(&mut src, sink);
        self.total_len = src.pos;
        result
    }

    fn run_inner<R: Read>(
        &mut self,
        src: &mut Src<'_, R>,
        sink: &mut dyn PartSink,
    ) -> Result<(), OpenError> {
        let header = self.read_header(src)?;
        let mut st = LoopState::default();
        let mut buf = Zeroizing::new(Vec::new());
        while let Some(code) = src.peek_byte()? {
            self.one_chunk(src, &header, code, &mut st, sink, &mut buf)?;
        }
        st.finish()
    }

    /// Decodes a message given as its header and its chunks one by one, some display or
    /// attachment chunks omitted (a light client, `spec/envelope.md` §7.1). Omitted chunks
    /// are recorded with a zero hash and `omitted` set.
    pub(crate) fn run_light(
        &mut self,
        header: &[u8],
        chunks: &[crate::LightChunk<'_>],
        sink: &mut dyn PartSink,
    ) -> Result<(), OpenError> {
        let mut h = header;
        let mut src = Src { r: &mut h, full: None, chunk: None, pos: 0 };
        let hdr = self.read_header(&mut src)?;
        if !h.is_empty() {
            return Err(DecodeError::TrailingBytes.into());
        }
        let mut st = LoopState::default();
        let mut buf = Zeroizing::new(Vec::new());
        for c in chunks {
            match c {
                crate::LightChunk::Present(bytes) => {
                    let mut r: &[u8] = bytes;
                    let mut src = Src { r: &mut r, full: None, chunk: None, pos: 0 };
                    let code = src.peek_byte()?.ok_or(DecodeError::Truncated)?;
                    self.one_chunk(&mut src, &hdr, code, &mut st, sink, &mut buf)?;
                    if !r.is_empty() {
                        return Err(DecodeError::TrailingBytes.into());
                    }
                }
                crate::LightChunk::Omitted(ty) => {
                    if !ty.is_part() {
                        return Err(DecodeError::NotOmittable.into());
                    }
                    st.admit(*ty, self.chunks.len())?;
                    let index = u16::try_from(self.chunks.len()).unwrap_or(u16::MAX);
                    self.chunks.push(ChunkRecord {
                        entry: TreeEntry { chunk_type: *ty, index, hash: [0; 64] },
                        offset: 0,
                        len: 0,
                        segments: 0,
                        slots: Vec::new(),
                        opened_by: None,
                        padded_len: None,
                        content: None,
                        omitted: true,
                    });
                    st.prev = Some(*ty);
                }
            }
        }
        st.finish()
    }

    fn read_header<R: Read>(&mut self, src: &mut Src<'_, R>) -> Result<Header, OpenError> {
        let mut hb = [0u8; HEADER_LEN];
        src.read_exact(&mut hb)?;
        let header = Header::from_bytes(&hb)?;
        self.header = Some(header);
        Ok(header)
    }

    fn one_chunk<R: Read>(
        &mut self,
        src: &mut Src<'_, R>,
        header: &Header,
        code: u8,
        st: &mut LoopState,
        sink: &mut dyn PartSink,
        buf: &mut Vec<u8>,
    ) -> Result<(), OpenError> {
        let ty = ChunkType::from_code(code).ok_or(DecodeError::UnknownChunkType(code))?;
        st.admit(ty, self.chunks.len())?;
        let offset = src.pos;
        src.chunk = self.hashing.then(|| self.p.hash.start());
        src.absorb(&[code]);
        self.chunk(src, header, ty, sink, buf)?;
        let hash = src.chunk.take().map(|h| h.finish()).unwrap_or([0u8; 64]);
        if let Some(rec) = self.chunks.last_mut() {
            rec.entry.hash = hash;
            rec.len = src.pos - offset;
            rec.offset = offset;
        }
        st.prev = Some(ty);
        Ok(())
    }

    fn chunk<R: Read>(
        &mut self,
        src: &mut Src<'_, R>,
        header: &Header,
        ty: ChunkType,
        sink: &mut dyn PartSink,
        buf: &mut Vec<u8>,
    ) -> Result<(), OpenError> {
        let index_expected = u16::try_from(self.chunks.len()).unwrap_or(u16::MAX);
        let flags = src.u8()?;
        if flags != 0 {
            return Err(DecodeError::ReservedBits.into());
        }
        let index = src.u16()?;
        if index != index_expected {
            return Err(DecodeError::IndexMismatch.into());
        }
        let mut rec = ChunkRecord {
            entry: TreeEntry { chunk_type: ty, index, hash: [0; 64] },
            offset: 0,
            len: 0,
            segments: 0,
            slots: Vec::new(),
            opened_by: None,
            padded_len: None,
            content: None,
            omitted: false,
        };

        if ty == ChunkType::Ephemeral {
            if src.u16()? != 32 {
                return Err(DecodeError::ClearLength.into());
            }
            let mut k = [0u8; 32];
            src.read_exact(&mut k)?;
            let eph = X25519PublicKey(k);
            self.eph_pub = Some(eph);
            self.derive_keks(&eph)?;
            self.chunks.push(rec);
            return Ok(());
        }

        // Slots (§4): exactly the matrix's roles, in order.
        let roles = ty.slot_roles();
        if usize::from(src.u8()?) != roles.len() {
            return Err(DecodeError::SlotRoles.into());
        }
        let mut key: Option<(Role, AeadKey)> = None;
        let mut slot_failed = false;
        for &role in roles {
            let mut slot = [0u8; SLOT_LEN];
            src.read_exact(&mut slot)?;
            if slot[0] != role.code() {
                return Err(DecodeError::SlotRoles.into());
            }
            // §4.1: every slot's algorithm is checked, the reader's own or not.
            if slot[1] != role.slot_alg() {
                return Err(DecodeError::Algorithm(slot[1]).into());
            }
            rec.slots.push(role);
            if key.is_some() {
                continue;
            }
            if let Some((_, kek)) = self.keks.iter().find(|(r, _)| *r == role) {
                let mut wrapped = Zeroizing::new(slot[2..].to_vec());
                let ok = self
                    .p
                    .aead
                    .open(
                        kek,
                        &slot_nonce(role, index),
                        &slot_aad(header, ty, index, role, slot[1]),
                        &mut wrapped,
                    )
                    .is_ok();
                let arr: Option<[u8; 32]> = wrapped.as_slice().try_into().ok();
                match (ok, arr) {
                    (true, Some(k)) => {
                        if self.collect_keys && role == Role::Recipient {
                            self.collected.push((ty, index, Zeroizing::new(k)));
                        }
                        key = Some((role, AeadKey::from_bytes(k)));
                    }
                    _ => slot_failed = true,
                }
            }
        }
        if ty == ChunkType::AuthorFullSig {
            // The full signature covers every octet up to here (§7.2).
            self.full_digest = src.full.take().map(|h| h.finish());
        }
        if slot_failed && self.mode == Mode::Open {
            return Err(OpenError::Unauthentic);
        }
        if let Some(preset) = self.preset
            && roles.contains(&Role::Recipient)
        {
            // A key overlay stands in for the recipient slot (§16); a missing key refuses.
            let k = preset.key_for(ty, index).ok_or(OpenError::Unauthentic)?;
            self.preset_used += 1;
            key = Some((Role::Recipient, AeadKey::from_bytes(*k)));
        }
        if self.collect_keys {
            // Collecting keys verifies nothing else: no segment is opened.
            key = None;
        }
        if !self.hashing
            && matches!(
                ty,
                ChunkType::Transit
                    | ChunkType::AuthorTreeSig
                    | ChunkType::AuthorFullSig
                    | ChunkType::OriginSig
            )
        {
            // A display verifies no signature: these chunks are read past, not opened.
            key = None;
        }
        rec.opened_by = key.as_ref().map(|(r, _)| *r);

        // Segments (§3.3).
        let mut segment: u32 = 0;
        let mut payload_total: u64 = 0;
        let mut content_total: u64 = 0;
        let mut content_done = false;
        let mut content: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
        let mut part_started = false;
        loop {
            if u64::from(segment) >= MAX_SEGMENTS {
                return Err(DecodeError::TooManySegments.into());
            }
            let seg_flags = src.u8()?;
            if seg_flags & !1 != 0 {
                return Err(DecodeError::ReservedBits.into());
            }
            let last = seg_flags & 1 == 1;
            let ct_len = src.u32()? as usize;
            let full = SEGMENT_PAYLOAD + crate::format::SEGMENT_OVERHEAD;
            // Every segment but the last is full; an empty last segment is the chunk's only
            // one (P = 0): a content has one encoding (§3.3).
            let empty = ct_len == crate::format::SEGMENT_OVERHEAD;
            if ct_len > full
                || ct_len < crate::format::SEGMENT_OVERHEAD
                || (!last && ct_len != full)
                || (last && empty && segment > 0)
            {
                return Err(DecodeError::SegmentLength.into());
            }
            buf.clear();
            buf.resize(ct_len, 0);
            src.read_exact(buf)?;
            let payload = ct_len - crate::format::SEGMENT_OVERHEAD;
            payload_total += payload as u64;
            rec.segments += 1;
            if let Some((_, k)) = key.as_ref() {
                let (body, tag) = buf.split_at_mut(ct_len - AEAD_TAG_LEN);
                let mut t = [0u8; AEAD_TAG_LEN];
                t.copy_from_slice(tag);
                self.p
                    .aead
                    .open_detached(
                        k,
                        &segment_nonce(segment, last),
                        &segment_aad(header, ty, 0, index, segment, last),
                        body,
                        &t,
                    )
                    .map_err(|_| OpenError::Unauthentic)?;
                let mut cl = [0u8; 4];
                cl.copy_from_slice(&body[..4]);
                let clen = u32::from_be_bytes(cl) as usize;
                let data = &body[4..];
                if clen > payload || (content_done && clen > 0) {
                    return Err(DecodeError::Padding.into());
                }
                let (c, pad) = data.split_at(clen);
                if pad.iter().any(|&b| b != 0) {
                    return Err(DecodeError::Padding.into());
                }
                if clen < payload {
                    content_done = true;
                }
                content_total += clen as u64;
                if ty.is_part() {
                    let mut c = c;
                    if !part_started {
                        let (info, used) = PartInfo::decode_prefix(c)?;
                        let kind = if ty == ChunkType::Display {
                            PartKind::Display
                        } else {
                            PartKind::Attachment
                        };
                        sink.begin(kind, &info)?;
                        part_started = true;
                        c = c.get(used..).unwrap_or_default();
                    }
                    if !c.is_empty() {
                        sink.data(c)?;
                    }
                } else {
                    if content.len() + c.len() > content_limit(ty) {
                        return Err(
                            DecodeError::TooMany("content octets", content_limit(ty)).into()
                        );
                    }
                    content.extend_from_slice(c);
                }
            }
            segment += 1;
            if last {
                break;
            }
        }
        if key.is_some() {
            let target = if ty.is_padded() { padded_len(content_total) } else { content_total };
            if payload_total != target {
                return Err(DecodeError::Padding.into());
            }
            if ty.is_part() {
                if !part_started {
                    return Err(DecodeError::PartInfo.into());
                }
                sink.end()?;
            }
            rec.padded_len = Some(payload_total);
            if ty == ChunkType::AuthorTreeSig {
                check_tree_count(&content, index)?;
            }
            if ty == ChunkType::Transit {
                let t: [u8; 32] =
                    content.as_slice().try_into().map_err(|_| DecodeError::TransitKey)?;
                let t = Zeroizing::new(t);
                let kek = transit_kek(self.p, header, &t).map_err(|_| OpenError::Unauthentic)?;
                self.keks.push((Role::Transit, kek));
                self.transit = Some(t);
            }
            if !ty.is_part() {
                rec.content = Some(content);
            }
        }
        self.chunks.push(rec);
        Ok(())
    }

    /// Derives the key-encryption keys of our roles. The provider refuses a
    /// non-contributory X25519 result (low-order or zero ephemeral key) before any KDF.
    fn derive_keks(&mut self, eph: &X25519PublicKey) -> Result<(), OpenError> {
        let Some(secret) = self.secret else { return Ok(()) };
        if self.roles.is_empty() {
            return Ok(());
        }
        let shared = match self.p.key_agreement.agree(secret.secret(), eph) {
            Ok(s) => s,
            Err(_) if self.mode == Mode::Inspect => return Ok(()),
            Err(_) => return Err(OpenError::Unauthentic),
        };
        let me = *secret.public();
        for &role in &self.roles {
            let kek =
                actor_kek(self.p, &shared, eph, &me, role).map_err(|_| OpenError::Unauthentic)?;
            self.keks.push((role, kek));
        }
        Ok(())
    }

    /// Which chunks a light client omitted.
    pub(crate) fn omitted(&self) -> Vec<bool> {
        self.chunks.iter().map(|c| c.omitted).collect()
    }

    /// The tree entries of every chunk read.
    pub(crate) fn tree(&self) -> Vec<TreeEntry> {
        self.chunks.iter().map(|c| c.entry).collect()
    }

    /// The content of the first opened chunk of a type.
    pub(crate) fn content(&self, ty: ChunkType) -> Option<&[u8]> {
        self.chunks
            .iter()
            .find(|c| c.entry.chunk_type == ty)
            .and_then(|c| c.content.as_ref())
            .map(|c| c.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_lists_exactly_the_chunks_before_it() {
        // spec/envelope.md §7.1: count t, content 2 + 67 t + 65 octets.
        let tree = |count: u16, entries: usize| {
            let mut v = count.to_be_bytes().to_vec();
            v.resize(2 + entries * crate::format::TREE_ENTRY_LEN + SIGNATURE_FIELD_LEN, 0);
            v
        };
        assert_eq!(check_tree_count(&tree(8, 8), 8), Ok(()));
        for (content, t) in [
            (tree(7, 7), 8),
            (tree(9, 9), 8),
            (tree(7, 8), 8),
            (tree(8, 7), 8),
            (tree(8, 9), 8),
            (vec![0], 0),
            (Vec::new(), 0),
        ] {
            assert_eq!(check_tree_count(&content, t), Err(DecodeError::TreeCount), "{t}");
        }
        assert_eq!(check_tree_count(&tree(0, 0), 0), Ok(()));
    }
}
