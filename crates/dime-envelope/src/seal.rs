//! Sealing a message as its author (`spec/envelope.md` §5-§7, §10), streaming: parts are
//! read from `Read` sources and the message is written to a `Write` sink, one segment at a
//! time, so memory stays bounded by two segments whatever the part sizes.

use crate::codec::{
    Headers, PartInfo, PartKind, encode_destination, encode_origin, encode_origin_sig, encode_sig,
    encode_tree_sig,
};
use crate::error::{DecodeError, SealError};
use crate::format::{
    ChunkType, Header, MESSAGE_ID_LEN, MessageKind, ORIGIN_SIG_CONTENT_LEN, Role, SIG_ALG_ED25519,
    SIGNATURE_FIELD_LEN, TreeEntry, actor_kek, full_sig_input, origin_sig_input, padded_len,
    segment_aad, segment_nonce, slot_aad, slot_nonce, transit_kek, tree_sig_input,
};
use crate::limits::{HEADERS_MAX_LEN, MAX_PARTS, PART_MAX_LEN, SEGMENT_PAYLOAD};
use dime_core::crypto::{
    AeadKey, CryptoProvider, Ed25519PublicKey, Ed25519Seed, HashContext, X25519PublicKey,
    X25519Secret,
};
use dime_core::{CryptoRngCore, Domain, Mailbox};
use std::io::{Read, Write};
use zeroize::Zeroizing;

/// The public keys of one actor, as its signet publishes them. An adapter from
/// `dime-signet` signets comes with that crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActorKeys {
    /// The X25519 key that key slots are sealed to.
    pub encryption: X25519PublicKey,
    /// The Ed25519 key that verifies the actor's signatures.
    pub signing: Ed25519PublicKey,
}

/// An actor's X25519 key pair, for opening: the secret and its public key, computed once
/// (the key-encryption key's salt needs the public key; opening then costs one X25519).
#[derive(Debug)]
pub struct ActorSecret {
    secret: X25519Secret,
    public: X25519PublicKey,
}

impl ActorSecret {
    /// Wraps a secret and computes its public key.
    pub fn new(p: &CryptoProvider, secret: X25519Secret) -> Self {
        let public = p.key_agreement.public_key(&secret);
        ActorSecret { secret, public }
    }

    /// The secret.
    pub fn secret(&self) -> &X25519Secret {
        &self.secret
    }

    /// The public key.
    pub fn public(&self) -> &X25519PublicKey {
        &self.public
    }
}

/// Who a message is sealed for: the four actors' identities and keys (`spec/envelope.md` §6).
/// For a trustful message (`spec/envelope.md` §10) the author keys are those of whoever is to
/// reopen it as its author: the sender's own when it has a dime key, else the origin server's;
/// the author signatures are the origin's either way ([`Signer::TrustfulServer`]).
#[derive(Debug, Clone)]
pub struct Addressing {
    /// The author's mailbox (origin chunk).
    pub author: Mailbox,
    /// The author's keys.
    pub author_keys: ActorKeys,
    /// The origin domain (destination chunk).
    pub origin: Domain,
    /// The origin server's keys (its organisational signet).
    pub origin_keys: ActorKeys,
    /// The destination domain (origin chunk; bound by every signature).
    pub destination: Domain,
    /// The destination server's keys.
    pub destination_keys: ActorKeys,
    /// The recipient's mailbox (destination chunk).
    pub recipient: Mailbox,
    /// The recipient's keys.
    pub recipient_keys: ActorKeys,
}

impl Addressing {
    fn keys(&self, role: Role) -> &ActorKeys {
        match role {
            Role::Author | Role::Transit => &self.author_keys,
            Role::Origin => &self.origin_keys,
            Role::Destination => &self.destination_keys,
            Role::Recipient => &self.recipient_keys,
        }
    }
}

/// Who signs the author signatures, which sets the message kind (`spec/envelope.md` §2, §10).
#[derive(Debug, Clone, Copy)]
pub enum Signer<'a> {
    /// The author's own signing key: an authored message.
    Author(&'a Ed25519Seed),
    /// The origin server's key, signing on a legacy sender's behalf: a trustful ("naked")
    /// message. Every reader sees that the author did not sign it.
    TrustfulServer(&'a Ed25519Seed),
}

impl Signer<'_> {
    fn kind(&self) -> MessageKind {
        match self {
            Signer::Author(_) => MessageKind::Authored,
            Signer::TrustfulServer(_) => MessageKind::Trustful,
        }
    }
    fn seed(&self) -> &Ed25519Seed {
        match self {
            Signer::Author(s) | Signer::TrustfulServer(s) => s,
        }
    }
}

/// A part to seal, read from a stream (`spec/envelope.md` §8.4).
pub struct PartSource<'a> {
    /// Display or attachment.
    pub kind: PartKind,
    /// Content type and file name.
    pub info: PartInfo,
    /// The part's data, read to its end.
    pub data: &'a mut dyn Read,
}

impl std::fmt::Debug for PartSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartSource").field("kind", &self.kind).field("info", &self.info).finish()
    }
}

/// What a message says, with streamed parts. Display parts come before attachments.
#[derive(Debug)]
pub struct Content<'a> {
    /// Common headers (From, To, Cc, Date, Subject...).
    pub common_headers: &'a Headers,
    /// Every other header.
    pub other_headers: &'a Headers,
    /// Display parts, then attachments.
    pub parts: Vec<PartSource<'a>>,
}

/// A part held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Display or attachment.
    pub kind: PartKind,
    /// Content type and file name.
    pub info: PartInfo,
    /// The data (empty in a view opened with a streaming sink: the sink received it).
    pub data: Vec<u8>,
}

/// A whole message held in memory: what the author wrote and what author and recipient read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Common headers.
    pub common_headers: Headers,
    /// Other headers.
    pub other_headers: Headers,
    /// Display parts, then attachments.
    pub parts: Vec<Part>,
}

/// Seals an in-memory message (see [`seal`]).
pub fn seal_message(
    p: &CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    addressing: &Addressing,
    signer: Signer<'_>,
    message: &Message,
) -> Result<Vec<u8>, SealError> {
    seal_in_memory(p, rng, addressing, signer, None, message)
}

/// [`seal_message`] by an origin server for its own user (or, with
/// [`Signer::TrustfulServer`], for a legacy sender), with the origin signature (§7.3, made
/// with `origin_seed`, the key of `addressing.origin`, at `signed_at`, seconds since the Unix
/// epoch) appended at once: the message as an origin sends it, without opening it again. The bytes are those of [`seal_message`] followed
/// by the chunk [`crate::Verified::origin_signature_chunk`] makes.
///
/// # Errors
/// [`SealError`], as [`seal_message`].
pub fn seal_message_origin_signed(
    p: &CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    addressing: &Addressing,
    signer: Signer<'_>,
    origin_seed: &Ed25519Seed,
    signed_at: u64,
    message: &Message,
) -> Result<Vec<u8>, SealError> {
    seal_in_memory(p, rng, addressing, signer, Some((origin_seed, signed_at)), message)
}

fn seal_in_memory(
    p: &CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    addressing: &Addressing,
    signer: Signer<'_>,
    origin_seed: Option<(&Ed25519Seed, u64)>,
    message: &Message,
) -> Result<Vec<u8>, SealError> {
    let mut readers: Vec<&[u8]> = message.parts.iter().map(|p| p.data.as_slice()).collect();
    let parts = message
        .parts
        .iter()
        .zip(readers.iter_mut())
        .map(|(part, r)| PartSource { kind: part.kind, info: part.info.clone(), data: r })
        .collect();
    let content = Content {
        common_headers: &message.common_headers,
        other_headers: &message.other_headers,
        parts,
    };
    // Padme adds at most 12 %; segments, slots and the fixed chunks add a few KiB.
    let data: usize = message.parts.iter().map(|p| p.data.len()).sum();
    let estimate = data.saturating_add(data / 8).saturating_add(16 * 1024);
    let out = Vec::with_capacity(estimate);
    seal_signed(p, rng, addressing, signer, origin_seed, content, out)
}

/// Seals a message for its author, origin, destination and recipient and writes it to `out`
/// (`spec/envelope.md` §5-§7). Parts are streamed: memory stays bounded by two segments.
/// Returns `out`.
pub fn seal<W: Write>(
    p: &CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    addressing: &Addressing,
    signer: Signer<'_>,
    content: Content<'_>,
    out: W,
) -> Result<W, SealError> {
    seal_signed(p, rng, addressing, signer, None, content, out)
}

/// [`seal`], and with `origin_seed` the origin signature appended (§7.3), made at its time.
fn seal_signed<W: Write>(
    p: &CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    addressing: &Addressing,
    signer: Signer<'_>,
    origin_seed: Option<(&Ed25519Seed, u64)>,
    content: Content<'_>,
    out: W,
) -> Result<W, SealError> {
    if content.parts.len() > MAX_PARTS {
        return Err(SealError::TooLarge("number of parts"));
    }
    let mut seen_attachment = false;
    for part in &content.parts {
        // Test only: part info the writer would refuse, for the negative vector.
        #[cfg(test)]
        let unchecked = quirks::get().unchecked_part_info;
        #[cfg(not(test))]
        let unchecked = false;
        if !unchecked {
            part.info.check()?;
        }
        match part.kind {
            PartKind::Attachment => seen_attachment = true,
            PartKind::Display if seen_attachment => {
                return Err(DecodeError::ChunkOrder(ChunkType::Display.code()).into());
            }
            PartKind::Display => {}
        }
    }

    let mut message_id = [0u8; MESSAGE_ID_LEN];
    rng.fill_bytes(&mut message_id);
    let header = Header { kind: signer.kind(), message_id };

    // One ephemeral key per message; one key-encryption key per actor (§4).
    let eph = X25519Secret::generate(rng);
    let eph_pub = p.key_agreement.public_key(&eph);
    let mut keks = Vec::with_capacity(5);
    // Actors with the same key (a trustful message: the origin is the destination, and an
    // APPEND's author is its recipient) share one X25519: the same ephemeral and the same key
    // give the same shared secret. Their key-encryption keys still differ by role (§4).
    let mut agreed: Vec<(X25519PublicKey, dime_core::crypto::SharedSecret)> = Vec::new();
    for role in Role::ACTORS {
        let actor = addressing.keys(role).encryption;
        let shared = match agreed.iter().find(|(k, _)| *k == actor) {
            Some((_, s)) => s.duplicate(),
            None => {
                let s = p
                    .key_agreement
                    .agree(&eph, &actor)
                    .map_err(|_| SealError::BadActorKey(role))?;
                agreed.push((actor, s.duplicate()));
                s
            }
        };
        let kek = actor_kek(p, &shared, &eph_pub, &actor, role)
            .map_err(|_| SealError::BadActorKey(role))?;
        keks.push((role, kek));
    }
    let mut transit = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(transit.as_mut());
    // HKDF with a 32-octet output cannot fail.
    let tkek =
        transit_kek(p, &header, &transit).map_err(|_| SealError::BadActorKey(Role::Transit))?;
    keks.push((Role::Transit, tkek));

    let mut w = HashWriter::new(p, out, true);
    w.write_raw(&header.to_bytes())?;
    let mut tree: Vec<TreeEntry> = Vec::new();

    // 0: the ephemeral key, in the clear (§3.2).
    w.start_chunk();
    let mut eph_chunk = vec![ChunkType::Ephemeral.code(), 0, 0, 0, 0, 32];
    eph_chunk.extend_from_slice(&eph_pub.0);
    w.write_raw(&eph_chunk)?;
    tree.push(w.end_chunk(ChunkType::Ephemeral, 0));

    let mut cs = ChunkSealer { p, header, keks: &keks, rng };
    let mut index: u16 = 1;
    let mut next = |cs: &mut ChunkSealer<'_, '_>,
                    w: &mut HashWriter<'_, W>,
                    tree: &mut Vec<TreeEntry>,
                    ty: ChunkType,
                    src: &mut dyn Read,
                    limit: u64|
     -> Result<(), SealError> {
        let e = cs.write_chunk(w, ty, index, src, limit)?;
        tree.push(e);
        index += 1;
        Ok(())
    };

    next(&mut cs, &mut w, &mut tree, ChunkType::Transit, &mut &transit[..], 32)?;
    let origin = encode_origin(&addressing.author, &addressing.destination);
    next(
        &mut cs,
        &mut w,
        &mut tree,
        ChunkType::Origin,
        &mut origin.as_slice(),
        HEADERS_MAX_LEN as u64,
    )?;
    let dest = encode_destination(&addressing.recipient, &addressing.origin);
    // Test only: a recipient mailbox not in canonical form, for the negative vector.
    #[cfg(test)]
    let dest = if quirks::get().noncanonical_recipient {
        let r = &addressing.recipient;
        let upper = format!("{}@{}", r.local_part(), r.domain().as_str().to_ascii_uppercase());
        crate::codec::encode_names_unchecked(&upper, addressing.origin.as_str())
    } else {
        dest
    };
    next(
        &mut cs,
        &mut w,
        &mut tree,
        ChunkType::Destination,
        &mut dest.as_slice(),
        HEADERS_MAX_LEN as u64,
    )?;
    let ch = content.common_headers.encode();
    next(
        &mut cs,
        &mut w,
        &mut tree,
        ChunkType::CommonHeaders,
        &mut ch.as_slice(),
        HEADERS_MAX_LEN as u64,
    )?;
    let oh = content.other_headers.encode();
    next(
        &mut cs,
        &mut w,
        &mut tree,
        ChunkType::OtherHeaders,
        &mut oh.as_slice(),
        HEADERS_MAX_LEN as u64,
    )?;
    for part in content.parts {
        let info = part.info.encode();
        let mut src = info.as_slice().chain(part.data);
        next(&mut cs, &mut w, &mut tree, part.kind.chunk_type(), &mut src, PART_MAX_LEN)?;
    }

    // The author tree signature (§7.1) and full signature (§7.2).
    let listed = &tree[..];
    // Test only: a tree without its last entry (count t - 1), for the negative vector.
    #[cfg(test)]
    let listed = if quirks::get().short_tree { &tree[..tree.len() - 1] } else { listed };
    let input = tree_sig_input(SIG_ALG_ED25519, &header, addressing.destination.as_str(), listed);
    let sig = p.signature.sign(signer.seed(), &input);
    let tree_content = encode_tree_sig(listed, SIG_ALG_ED25519, &sig);
    let limit = tree_content.len() as u64;
    next(
        &mut cs,
        &mut w,
        &mut tree,
        ChunkType::AuthorTreeSig,
        &mut tree_content.as_slice(),
        limit,
    )?;
    // The full signature covers every octet up to its own chunk's key slots (§7.2).
    let key = cs.write_head(&mut w, ChunkType::AuthorFullSig, index)?;
    let digest = w.finish_full();
    // Test only: another algorithm id, signed as such, for the negative vector (§4.1).
    #[cfg(test)]
    let full_alg = quirks::get().full_sig_alg.unwrap_or(SIG_ALG_ED25519);
    #[cfg(not(test))]
    let full_alg = SIG_ALG_ED25519;
    let sig = p.signature.sign(signer.seed(), &full_sig_input(full_alg, &header, &digest));
    let sig = encode_sig(full_alg, &sig);
    let full = cs.write_segments(
        &mut w,
        &key,
        ChunkType::AuthorFullSig,
        index,
        &mut &sig[..],
        SIGNATURE_FIELD_LEN as u64,
    )?;
    if let Some((seed, signed_at)) = origin_seed {
        // The origin signature covers the tree of every chunk before it and both domains.
        tree.push(full);
        let input = origin_sig_input(
            SIG_ALG_ED25519,
            &header,
            signed_at,
            addressing.origin.as_str(),
            addressing.destination.as_str(),
            &tree,
        );
        let sig = p.signature.sign(seed, &input);
        let sig = encode_origin_sig(signed_at, SIG_ALG_ED25519, &sig);
        let index = u16::try_from(tree.len())
            .map_err(|_| DecodeError::TooMany("chunks", crate::limits::MAX_CHUNKS))?;
        cs.write_chunk(
            &mut w,
            ChunkType::OriginSig,
            index,
            &mut &sig[..],
            ORIGIN_SIG_CONTENT_LEN as u64,
        )?;
    }
    w.flush()?;
    Ok(w.into_inner())
}

/// A writer that hashes what it writes: the current chunk, and the message up to the full
/// signature chunk.
pub(crate) struct HashWriter<'p, W: Write> {
    p: &'p CryptoProvider,
    w: W,
    full: Option<Box<dyn HashContext>>,
    chunk: Option<Box<dyn HashContext>>,
}

impl<'p, W: Write> HashWriter<'p, W> {
    pub(crate) fn new(p: &'p CryptoProvider, w: W, full: bool) -> Self {
        HashWriter { p, w, full: full.then(|| p.hash.start()), chunk: None }
    }

    pub(crate) fn write_raw(&mut self, b: &[u8]) -> std::io::Result<()> {
        if let Some(h) = self.full.as_mut() {
            h.update(b);
        }
        if let Some(h) = self.chunk.as_mut() {
            h.update(b);
        }
        self.w.write_all(b)
    }

    pub(crate) fn start_chunk(&mut self) {
        self.chunk = Some(self.p.hash.start());
    }

    pub(crate) fn end_chunk(&mut self, chunk_type: ChunkType, index: u16) -> TreeEntry {
        let hash = match self.chunk.take() {
            Some(h) => h.finish(),
            None => self.p.hash.sha512(&[]),
        };
        TreeEntry { chunk_type, index, hash }
    }

    fn finish_full(&mut self) -> [u8; 64] {
        match self.full.take() {
            Some(h) => h.finish(),
            None => self.p.hash.sha512(&[]),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }

    pub(crate) fn into_inner(self) -> W {
        self.w
    }
}

/// Seals chunks: a fresh chunk key, one slot per role of the matrix, then segments.
pub(crate) struct ChunkSealer<'k, 'r> {
    pub(crate) p: &'k CryptoProvider,
    pub(crate) header: Header,
    pub(crate) keks: &'k [(Role, AeadKey)],
    pub(crate) rng: &'r mut dyn CryptoRngCore,
}

impl ChunkSealer<'_, '_> {
    /// Writes one encrypted chunk whose content is read from `src` (at most `limit` octets).
    pub(crate) fn write_chunk<W: Write>(
        &mut self,
        w: &mut HashWriter<'_, W>,
        ty: ChunkType,
        index: u16,
        src: &mut dyn Read,
        limit: u64,
    ) -> Result<TreeEntry, SealError> {
        let key = self.write_head(w, ty, index)?;
        self.write_segments(w, &key, ty, index, src, limit)
    }

    /// Writes a chunk's head: type, flags, index and key slots (§3.1, §4). Returns the
    /// chunk key.
    pub(crate) fn write_head<W: Write>(
        &mut self,
        w: &mut HashWriter<'_, W>,
        ty: ChunkType,
        index: u16,
    ) -> Result<AeadKey, SealError> {
        let p = self.p;
        let key = AeadKey::generate(self.rng);
        w.start_chunk();
        let roles = ty.slot_roles();
        let mut head = Vec::with_capacity(5 + roles.len() * crate::format::SLOT_LEN);
        head.push(ty.code());
        head.push(0);
        head.extend_from_slice(&index.to_be_bytes());
        head.push(u8::try_from(roles.len()).unwrap_or(u8::MAX));
        for &role in roles {
            let kek = self
                .keks
                .iter()
                .find(|(r, _)| *r == role)
                .map(|(_, k)| k)
                .ok_or(SealError::BadActorKey(role))?;
            let alg = role.slot_alg();
            // Test only: another algorithm id in one slot, sealed as such (§4.1).
            #[cfg(test)]
            let alg = match quirks::get().slot_alg {
                Some((t, r, a)) if t == ty && r == role => a,
                _ => alg,
            };
            let mut wrapped = key.expose().to_vec();
            p.aead.seal(
                kek,
                &slot_nonce(role, index),
                &slot_aad(&self.header, ty, index, role, alg),
                &mut wrapped,
            );
            head.push(role.code());
            head.push(alg);
            head.extend_from_slice(&wrapped);
        }
        w.write_raw(&head)?;
        Ok(key)
    }

    /// Writes a chunk's segments, reading the content from `src` (at most `limit` octets),
    /// and ends the chunk.
    pub(crate) fn write_segments<W: Write>(
        &mut self,
        w: &mut HashWriter<'_, W>,
        key: &AeadKey,
        ty: ChunkType,
        index: u16,
        src: &mut dyn Read,
        limit: u64,
    ) -> Result<TreeEntry, SealError> {
        // Segments (§3.3), with one segment of look-ahead so the last one is known. The
        // buffers grow to the content actually read (at most one segment each): a small
        // chunk costs a small buffer to fill and to zeroize.
        let seg = SEGMENT_PAYLOAD;
        let mut cur = Zeroizing::new(vec![0u8; 4]);
        let mut next = Zeroizing::new(Vec::new());
        let mut cur_n = read_up_to(src, &mut cur, seg)?;
        let mut total = cur_n as u64;
        let mut segment: u32 = 0;
        let check = |total: u64| {
            if total > limit { Err(SealError::TooLarge(chunk_name(ty))) } else { Ok(()) }
        };
        check(total)?;
        while cur_n == seg {
            next.clear();
            next.extend_from_slice(&[0u8; 4]);
            let next_n = read_up_to(src, &mut next, seg)?;
            if next_n == 0 {
                break;
            }
            total += next_n as u64;
            check(total)?;
            self.emit(w, key, ty, index, segment, false, &mut cur, seg, seg)?;
            segment += 1;
            std::mem::swap(&mut cur, &mut next);
            cur_n = next_n;
        }
        let target = if ty.is_padded() { padded_len(total) } else { total };
        let mut remaining = target - u64::from(segment) * seg as u64;
        let mut content = cur_n;
        loop {
            let payload = usize::try_from(remaining.min(seg as u64)).unwrap_or(seg);
            cur.truncate(4 + content);
            cur.resize(4 + payload, 0);
            let last = remaining == payload as u64;
            // Test only: the encoding §3.3 forbids (a full last segment followed by an empty
            // one), for the negative vector.
            #[cfg(test)]
            let last = last && !(payload == seg && quirks::get().empty_last_segment);
            self.emit(w, key, ty, index, segment, last, &mut cur, content, payload)?;
            if last {
                break;
            }
            remaining -= payload as u64;
            segment += 1;
            content = 0;
        }
        Ok(w.end_chunk(ty, index))
    }

    #[allow(clippy::too_many_arguments)]
    fn emit<W: Write>(
        &self,
        w: &mut HashWriter<'_, W>,
        key: &AeadKey,
        ty: ChunkType,
        index: u16,
        segment: u32,
        last: bool,
        buf: &mut [u8],
        content: usize,
        payload: usize,
    ) -> Result<(), SealError> {
        let Some(pt) = buf.get_mut(..4 + payload) else {
            return Err(SealError::TooLarge("segment"));
        };
        pt[..4].copy_from_slice(&u32::try_from(content).unwrap_or(u32::MAX).to_be_bytes());
        let tag = self.p.aead.seal_detached(
            key,
            &segment_nonce(segment, last),
            &segment_aad(&self.header, ty, 0, index, segment, last),
            pt,
        );
        let ct_len = u32::try_from(pt.len() + 16).unwrap_or(u32::MAX);
        let mut frame = [0u8; 5];
        frame[0] = u8::from(last);
        frame[1..].copy_from_slice(&ct_len.to_be_bytes());
        w.write_raw(&frame)?;
        w.write_raw(pt)?;
        w.write_raw(&tag)?;
        Ok(())
    }
}

fn chunk_name(ty: ChunkType) -> &'static str {
    match ty {
        ChunkType::Display | ChunkType::Attachment => "part size (PART_MAX_LEN)",
        ChunkType::CommonHeaders | ChunkType::OtherHeaders => "header size (HEADERS_MAX_LEN)",
        _ => "chunk content",
    }
}

/// Appends up to `max` octets from `src` to `buf`, stopping early only at the end of the
/// source; returns the number of octets appended.
fn read_up_to(src: &mut dyn Read, buf: &mut Vec<u8>, max: usize) -> std::io::Result<usize> {
    let start = buf.len();
    let mut n = 0;
    while n < max {
        let want = (max - n).min(16 * 1024);
        buf.resize(start + n + want, 0);
        let Some(rest) = buf.get_mut(start + n..) else { break };
        match src.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k.min(want),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(start + n);
                return Err(e);
            }
        }
    }
    buf.truncate(start + n);
    Ok(n)
}

/// Test only: ways to make the sealer break one rule of the spec while signing what it
/// writes, to build negative vectors (`crate::negative`). Per thread, off by default.
#[cfg(test)]
pub(crate) mod quirks {
    use std::cell::Cell;

    /// The rules the sealer can be told to break.
    #[derive(Debug, Clone, Copy, Default)]
    pub(crate) struct Quirks {
        /// End a chunk whose payload fills its last segment with an extra empty segment
        /// (§3.3 forbids it).
        pub(crate) empty_last_segment: bool,
        /// List and sign a tree without its last entry, so its count is not `t` (§7.1).
        pub(crate) short_tree: bool,
        /// Write the recipient mailbox of the destination chunk with an upper-case domain,
        /// not in its canonical form (§8.2).
        pub(crate) noncanonical_recipient: bool,
        /// Write part info without checking it (§8.4).
        pub(crate) unchecked_part_info: bool,
        /// Write this algorithm id in the slot of this role of the chunk of this type, in its
        /// associated data too, under the role's own KEK (§4.1).
        pub(crate) slot_alg: Option<(crate::format::ChunkType, crate::format::Role, u8)>,
        /// Write and sign the author full signature with this algorithm id (§4.1, §7).
        pub(crate) full_sig_alg: Option<u8>,
    }

    thread_local! {
        static QUIRKS: Cell<Quirks> = const { Cell::new(Quirks {
            empty_last_segment: false,
            short_tree: false,
            noncanonical_recipient: false,
            unchecked_part_info: false,
            slot_alg: None,
            full_sig_alg: None,
        }) };
    }

    pub(crate) fn get() -> Quirks {
        QUIRKS.with(Cell::get)
    }

    /// Runs `f` with `q` in force on this thread.
    pub(crate) fn with<T>(q: Quirks, f: impl FnOnce() -> T) -> T {
        QUIRKS.with(|c| c.set(q));
        let out = f();
        QUIRKS.with(|c| c.set(Quirks::default()));
        out
    }
}
