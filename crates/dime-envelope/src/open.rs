//! Opening a message as each actor, and verifying its signatures (`spec/envelope.md` §6, §7).
//!
//! Opening is two-phase. `open_as_*` decodes, unwraps this actor's slots and opens its chunks
//! (every tag verified), and returns an [`Unverified`] view that exposes only the claimed
//! identities needed to find the signers' keys. `verify` checks the signatures with those
//! keys and returns a [`Verified`] view. Each view type has only the fields its actor may
//! read: an [`OriginView`] has no body, a [`DestinationView`] no author.

use crate::ActorSecret;
use crate::codec::{
    Headers, decode_destination, decode_origin, decode_origin_sig, decode_sig, decode_tree_sig,
};
use crate::engine::{CollectSink, DiscardSink, Engine, Mode, PartSink};
use crate::error::{DecodeError, OpenError};
use crate::format::{
    ChunkType, Header, MESSAGE_ID_LEN, MessageKind, Role, SIG_ALG_ED25519, TreeEntry,
    full_sig_input, origin_sig_input, transit_kek, tree_sig_input,
};
use crate::seal::{ChunkSealer, HashWriter, Message, Part};
use dime_core::crypto::{CryptoProvider, Ed25519PublicKey, Ed25519Seed};
use dime_core::{CryptoRngCore, Domain, Mailbox};
use std::io::Read;
use zeroize::Zeroizing;

/// What the signatures of a message prove (`spec/envelope.md` §7, §10).
#[derive(Debug)]
pub(crate) struct Evidence {
    header: Header,
    tree: Vec<TreeEntry>,
    /// Chunks a light client left out (all false for every other open).
    omitted: Vec<bool>,
    /// Opened by a light client: the full digest is not computed.
    light: bool,
    full_digest: Option<[u8; 64]>,
    tree_sig: Option<Vec<u8>>,
    full_sig: Option<Vec<u8>>,
    origin_sig: Option<Vec<u8>>,
    /// The origin signature's time, once it verified.
    signed_at: Option<u64>,
    /// The keys under which the author signatures and the origin signature verified.
    author_key: Option<Ed25519PublicKey>,
    origin_key: Option<Ed25519PublicKey>,
    transit: Option<Zeroizing<[u8; 32]>>,
    /// What this reader's checks found so far.
    checked: Signatures,
}

/// One signature of a message, as a reader's checks left it (`spec/envelope.md` §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureState {
    /// Present and verified.
    Verified,
    /// Present, not verified by this reader: it cannot check it (the destination and the
    /// author signatures, the origin and the origin signature, a light client and the author
    /// full signature), or the message did not verify.
    Present,
    /// The message does not carry it.
    Absent,
}

impl SignatureState {
    /// `verified`, `present` or `absent`: the words the front ends show.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureState::Verified => "verified",
            SignatureState::Present => "present",
            SignatureState::Absent => "absent",
        }
    }
}

/// Which signatures a message carries and which this reader verified (`spec/envelope.md`
/// §7.4). The format has no destination signature: the destination domain is bound by the
/// author tree and origin signatures (§9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signatures {
    /// The author tree signature (§7.1): the origin's for a trustful message (§10).
    pub author_tree: SignatureState,
    /// The author full signature (§7.2).
    pub author_full: SignatureState,
    /// The origin signature (§7.3).
    pub origin: SignatureState,
}

impl Evidence {
    fn from_engine(e: &mut Engine<'_>) -> Result<Self, OpenError> {
        let header = e.header.ok_or(DecodeError::Truncated)?;
        let tree = e.tree();
        let origin = if tree.iter().any(|t| t.chunk_type == ChunkType::OriginSig) {
            SignatureState::Present
        } else {
            SignatureState::Absent
        };
        Ok(Evidence {
            header,
            tree,
            omitted: e.omitted(),
            light: false,
            full_digest: e.full_digest,
            tree_sig: e.content(ChunkType::AuthorTreeSig).map(<[u8]>::to_vec),
            full_sig: e.content(ChunkType::AuthorFullSig).map(<[u8]>::to_vec),
            origin_sig: e.content(ChunkType::OriginSig).map(<[u8]>::to_vec),
            signed_at: None,
            author_key: None,
            origin_key: None,
            transit: e.transit.take(),
            checked: Signatures {
                author_tree: SignatureState::Present,
                author_full: SignatureState::Present,
                origin,
            },
        })
    }

    /// Verifies the author tree and full signatures (§7.1, §7.2). For a light client
    /// (omitted chunks), the full signature cannot be checked and the hashes of omitted
    /// chunks are taken from the verified tree; `self.tree` is updated with them.
    fn verify_author(
        &mut self,
        p: &CryptoProvider,
        destination: &Domain,
        keys: &dyn SignerKeys,
    ) -> Result<(), OpenError> {
        let (listed, sig) =
            decode_tree_sig(self.tree_sig.as_deref().ok_or(OpenError::Unauthentic)?)?;
        let pos = self
            .tree
            .iter()
            .position(|e| e.chunk_type == ChunkType::AuthorTreeSig)
            .ok_or(DecodeError::MissingChunk("author tree signature"))?;
        if listed.len() != pos {
            // The engine refused it as the chunk opened (§7.1); kept for every path.
            return Err(DecodeError::TreeCount.into());
        }
        for (i, l) in listed.iter().enumerate() {
            let (Some(have), Some(omitted)) = (self.tree.get(i), self.omitted.get(i)) else {
                return Err(OpenError::Unauthentic);
            };
            let same = if *omitted {
                have.chunk_type == l.chunk_type && have.index == l.index
            } else {
                have == l
            };
            if !same {
                return Err(OpenError::Unauthentic);
            }
        }
        let input = tree_sig_input(SIG_ALG_ED25519, &self.header, destination.as_str(), &listed);
        // §7.6: the first key of the set that verifies; the full signature must verify under
        // the same key.
        let key = verify_any(p, keys, &input, &sig)?;
        self.author_key = Some(*key);
        // The tree verified: it now vouches for the omitted chunks' hashes.
        for (have, l) in self.tree.iter_mut().zip(&listed) {
            *have = *l;
        }
        self.checked.author_tree = SignatureState::Verified;
        if self.light {
            return Ok(());
        }
        let sig = decode_sig(self.full_sig.as_deref().ok_or(OpenError::Unauthentic)?)?;
        let digest = self.full_digest.ok_or(OpenError::Unauthentic)?;
        p.signature
            .verify(key, &full_sig_input(SIG_ALG_ED25519, &self.header, &digest), &sig)
            .map_err(|_| OpenError::Unauthentic)?;
        self.checked.author_full = SignatureState::Verified;
        Ok(())
    }

    /// Whether the message carries an origin signature chunk.
    fn origin_signed(&self) -> bool {
        self.tree.iter().any(|e| e.chunk_type == ChunkType::OriginSig)
    }

    /// Verifies the origin signature (§7.3) with `key`. A key for a message without an
    /// origin signature, or no key for a message with one, is
    /// [`OpenError::OriginSignature`]; no key and no signature is fine.
    fn verify_origin(
        &mut self,
        p: &CryptoProvider,
        origin: &Domain,
        destination: &Domain,
        keys: Option<&dyn SignerKeys>,
    ) -> Result<(), OpenError> {
        let keys = match (self.origin_signed(), keys) {
            (true, Some(k)) => k,
            (false, None) => return Ok(()),
            _ => return Err(OpenError::OriginSignature),
        };
        let (signed_at, sig) =
            decode_origin_sig(self.origin_sig.as_deref().ok_or(OpenError::OriginSignature)?)?;
        let pos = self
            .tree
            .iter()
            .position(|e| e.chunk_type == ChunkType::OriginSig)
            .ok_or(OpenError::OriginSignature)?;
        let tree = self.tree.get(..pos).ok_or(OpenError::Unauthentic)?;
        let input = origin_sig_input(
            SIG_ALG_ED25519,
            &self.header,
            signed_at,
            origin.as_str(),
            destination.as_str(),
            tree,
        );
        self.origin_key = Some(*verify_any(p, keys, &input, &sig)?);
        self.signed_at = Some(signed_at);
        self.checked.origin = SignatureState::Verified;
        Ok(())
    }
}

/// The keys a signer may have signed with (`spec/envelope.md` §7.6): one key
/// (`&Ed25519PublicKey`) or a set (a slice or `Vec`), of which at most
/// [`MAX_SIGNER_KEYS`](crate::format::MAX_SIGNER_KEYS), the first ones, are tried.
pub trait SignerKeys {
    /// The keys, in the order to try them.
    fn keys(&self) -> &[Ed25519PublicKey];
}

impl SignerKeys for Ed25519PublicKey {
    fn keys(&self) -> &[Ed25519PublicKey] {
        std::slice::from_ref(self)
    }
}

impl SignerKeys for [Ed25519PublicKey] {
    fn keys(&self) -> &[Ed25519PublicKey] {
        self
    }
}

impl SignerKeys for Vec<Ed25519PublicKey> {
    fn keys(&self) -> &[Ed25519PublicKey] {
        self
    }
}

impl<T: SignerKeys + ?Sized> SignerKeys for &T {
    fn keys(&self) -> &[Ed25519PublicKey] {
        (**self).keys()
    }
}

/// The first of (at most [`MAX_SIGNER_KEYS`](crate::format::MAX_SIGNER_KEYS) of) `keys`
/// under which `sig` of `input` verifies (`spec/envelope.md` §7.6).
fn verify_any<'k>(
    p: &CryptoProvider,
    keys: &'k dyn SignerKeys,
    input: &[u8],
    sig: &dime_core::crypto::Ed25519Signature,
) -> Result<&'k Ed25519PublicKey, OpenError> {
    keys.keys()
        .iter()
        .take(crate::format::MAX_SIGNER_KEYS)
        .find(|k| p.signature.verify(k, input, sig).is_ok())
        .ok_or(OpenError::Unauthentic)
}

/// A view whose tags verified but whose signatures are not checked yet. Only the claimed
/// identities (to look the signers' keys up) are readable; call `verify`.
#[must_use = "an unverified view proves nothing until verify succeeds"]
#[derive(Debug)]
pub struct Unverified<V> {
    view: V,
    ev: Evidence,
}

/// A view whose signatures verified.
#[must_use]
#[derive(Debug)]
pub struct Verified<V> {
    view: V,
    ev: Evidence,
}

impl<V> Verified<V> {
    /// The verified view.
    pub fn view(&self) -> &V {
        &self.view
    }

    /// The verified view, by value.
    pub fn into_view(self) -> V {
        self.view
    }

    /// Authored or trustful: a trustful message was signed by the origin server on a legacy
    /// sender's behalf, not by its author (`spec/envelope.md` §10).
    pub fn kind(&self) -> MessageKind {
        self.ev.header.kind
    }

    /// The message id.
    pub fn message_id(&self) -> &[u8; MESSAGE_ID_LEN] {
        &self.ev.header.message_id
    }

    /// Which signatures the message carries and which this open verified
    /// (`spec/envelope.md` §7.4): a front end shows them, and a reader of delivered mail
    /// requires the origin's ([`Unverified::<FullView>::verify_delivered`]).
    pub fn signatures(&self) -> Signatures {
        self.ev.checked
    }

    /// When the origin signed the message (`spec/envelope.md` §7.3: seconds since the Unix
    /// epoch), when this open verified its origin signature.
    pub fn origin_signed_at(&self) -> Option<u64> {
        self.ev.signed_at
    }

    /// The key of the set given (`spec/envelope.md` §7.6) under which the author signatures
    /// verified: a reader records which signet it was.
    pub fn author_key(&self) -> Option<&Ed25519PublicKey> {
        self.ev.author_key.as_ref()
    }

    /// The key of the set given under which the origin signature verified, when it did.
    pub fn origin_key(&self) -> Option<&Ed25519PublicKey> {
        self.ev.origin_key.as_ref()
    }
}

impl<V> std::ops::Deref for Verified<V> {
    type Target = V;
    fn deref(&self) -> &V {
        &self.view
    }
}

/// What the author and the recipient read: everything (`spec/envelope.md` §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullView {
    /// The author's mailbox.
    pub author: Mailbox,
    /// The origin domain.
    pub origin: Domain,
    /// The destination domain.
    pub destination: Domain,
    /// The recipient's mailbox.
    pub recipient: Mailbox,
    /// Headers and parts (with a streaming sink, part data went to the sink).
    pub message: Message,
    /// Whether the message carries the origin's signature.
    pub origin_signed: bool,
}

/// What the origin server reads: the author and the destination domain
/// (`spec/envelope.md` §6). It has no headers and no body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginView {
    /// The author's mailbox.
    pub author: Mailbox,
    /// The destination domain.
    pub destination: Domain,
    /// Whether the message already carries an origin signature.
    pub origin_signed: bool,
}

/// What the destination server reads: the recipient and the origin domain
/// (`spec/envelope.md` §6). It has no author, headers or body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationView {
    /// The recipient's mailbox.
    pub recipient: Mailbox,
    /// The origin domain.
    pub origin: Domain,
}

/// Decodes a whole message as `role` with `secret` ([`Mode::Open`]: a slot of `role` that
/// fails to unwrap refuses the message, `spec/envelope.md` §6).
fn run_engine<'a, R: Read>(
    p: &'a CryptoProvider,
    mut reader: R,
    secret: &'a ActorSecret,
    role: Role,
    sink: &mut dyn PartSink,
) -> Result<Engine<'a>, OpenError> {
    let mut engine = Engine::new(p, Some(secret), &[role], Mode::Open);
    engine.run(&mut reader, sink)?;
    Ok(engine)
}

pub(crate) fn full_view(
    engine: &mut Engine<'_>,
    parts: Vec<Part>,
) -> Result<Unverified<FullView>, OpenError> {
    let (author, destination) =
        decode_origin(engine.content(ChunkType::Origin).ok_or(OpenError::Unauthentic)?)?;
    let (recipient, origin) =
        decode_destination(engine.content(ChunkType::Destination).ok_or(OpenError::Unauthentic)?)?;
    let common_headers =
        Headers::decode(engine.content(ChunkType::CommonHeaders).ok_or(OpenError::Unauthentic)?)?;
    let other_headers =
        Headers::decode(engine.content(ChunkType::OtherHeaders).ok_or(OpenError::Unauthentic)?)?;
    let ev = Evidence::from_engine(engine)?;
    let view = FullView {
        author,
        origin,
        destination,
        recipient,
        message: Message { common_headers, other_headers, parts },
        origin_signed: ev.origin_signed(),
    };
    Ok(Unverified { view, ev })
}

/// Opens a message as its recipient, in memory (`spec/envelope.md` §6).
pub fn open_as_recipient(
    p: &CryptoProvider,
    message: &[u8],
    secret: &ActorSecret,
) -> Result<Unverified<FullView>, OpenError> {
    let mut sink = CollectSink::default();
    let mut engine = run_engine(p, message, secret, Role::Recipient, &mut sink)?;
    full_view(&mut engine, sink.parts)
}

/// Opens a message as its author (its sent copy), in memory (`spec/envelope.md` §6).
pub fn open_as_author(
    p: &CryptoProvider,
    message: &[u8],
    secret: &ActorSecret,
) -> Result<Unverified<FullView>, OpenError> {
    let mut sink = CollectSink::default();
    let mut engine = run_engine(p, message, secret, Role::Author, &mut sink)?;
    full_view(&mut engine, sink.parts)
}

/// Opens a message as its recipient (`Role::Recipient`) or author (`Role::Author`) from a
/// stream: part data goes to `sink` segment by segment, each after its tag verifies, and the
/// view's parts carry no data. Memory stays bounded by one segment. If this returns an
/// error, or `verify` fails, discard what the sink received.
pub fn open_streaming<R: Read>(
    p: &CryptoProvider,
    reader: R,
    secret: &ActorSecret,
    role: ReaderRole,
    sink: &mut dyn PartSink,
) -> Result<Unverified<FullView>, OpenError> {
    let role = match role {
        ReaderRole::Author => Role::Author,
        ReaderRole::Recipient => Role::Recipient,
    };
    let mut parts = PartsSink { inner: sink, parts: Vec::new() };
    let mut engine = run_engine(p, reader, secret, role, &mut parts)?;
    full_view(&mut engine, parts.parts)
}

/// The actors that read a whole message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderRole {
    /// The author.
    Author,
    /// The recipient.
    Recipient,
}

/// Forwards to the caller's sink, keeping each part's kind and info for the view.
struct PartsSink<'s> {
    inner: &'s mut dyn PartSink,
    parts: Vec<Part>,
}

impl PartSink for PartsSink<'_> {
    fn begin(&mut self, kind: crate::PartKind, info: &crate::PartInfo) -> std::io::Result<()> {
        self.parts.push(Part { kind, info: info.clone(), data: Vec::new() });
        self.inner.begin(kind, info)
    }
    fn data(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.data(bytes)
    }
    fn end(&mut self) -> std::io::Result<()> {
        self.inner.end()
    }
}

/// Opens a message as the origin server (`spec/envelope.md` §6). Reads the message as a
/// stream; pass `&bytes[..]` for a message in memory.
pub fn open_as_origin<R: Read>(
    p: &CryptoProvider,
    reader: R,
    secret: &ActorSecret,
) -> Result<Unverified<OriginView>, OpenError> {
    let mut engine = run_engine(p, reader, secret, Role::Origin, &mut DiscardSink)?;
    let (author, destination) =
        decode_origin(engine.content(ChunkType::Origin).ok_or(OpenError::Unauthentic)?)?;
    let ev = Evidence::from_engine(&mut engine)?;
    let view = OriginView { author, destination, origin_signed: ev.origin_signed() };
    Ok(Unverified { view, ev })
}

/// Opens a message as the destination server (`spec/envelope.md` §6). Reads the message as
/// a stream; pass `&bytes[..]` for a message in memory.
pub fn open_as_destination<R: Read>(
    p: &CryptoProvider,
    reader: R,
    secret: &ActorSecret,
) -> Result<Unverified<DestinationView>, OpenError> {
    let mut engine = run_engine(p, reader, secret, Role::Destination, &mut DiscardSink)?;
    let (recipient, origin) =
        decode_destination(engine.content(ChunkType::Destination).ok_or(OpenError::Unauthentic)?)?;
    let ev = Evidence::from_engine(&mut engine)?;
    Ok(Unverified { view: DestinationView { recipient, origin }, ev })
}

impl<V> Unverified<V> {
    /// Authored or trustful (`spec/envelope.md` §10): for a trustful message, the author
    /// signatures are the origin server's, so `verify` takes the origin's key as the author key.
    pub fn kind(&self) -> MessageKind {
        self.ev.header.kind
    }

    /// The message id.
    pub fn message_id(&self) -> &[u8; MESSAGE_ID_LEN] {
        &self.ev.header.message_id
    }

    /// Whether the message carries an origin signature.
    pub fn origin_signed(&self) -> bool {
        self.ev.origin_signed()
    }

    /// Which signatures the message carries; none is verified yet (each present one is
    /// [`SignatureState::Present`]).
    pub fn signatures(&self) -> Signatures {
        self.ev.checked
    }
}

impl Unverified<FullView> {
    /// The author the message claims (look up its signing key; for a trustful message, the
    /// origin's).
    pub fn claimed_author(&self) -> &Mailbox {
        &self.view.author
    }

    /// The origin domain the message claims.
    pub fn claimed_origin(&self) -> &Domain {
        &self.view.origin
    }

    /// The view, without verifying any signature: only for a reader that holds the record of
    /// an earlier verification of this very message, kept where only the recipient's keys
    /// reach it (`spec/dmap.md` §5.2: an IMAP FETCH does not check the signatures again on
    /// every read). Every other reader calls [`Self::verify`].
    pub fn into_unverified_view(self) -> FullView {
        self.view
    }

    /// Verifies the author signatures with `author` (the origin's key for a trustful message)
    /// and, when the message carries one, the origin signature with `origin`
    /// (`spec/envelope.md` §7). An origin key for a message without an origin signature, or
    /// the reverse, is [`OpenError::OriginSignature`].
    pub fn verify(
        self,
        p: &CryptoProvider,
        author: &dyn SignerKeys,
        origin: Option<&dyn SignerKeys>,
    ) -> Result<Verified<FullView>, OpenError> {
        let Unverified { view, mut ev } = self;
        ev.verify_author(p, &view.destination, author)?;
        ev.verify_origin(p, &view.origin, &view.destination, origin)?;
        Ok(Verified { view, ev })
    }

    /// Verifies a message that arrived over DMTP, as a reader of a mailbox does
    /// (`spec/envelope.md` §7.4): as [`Self::verify`], and the origin signature must be
    /// present and verify with `origin`. A message without one is
    /// [`OpenError::OriginSignature`]: whoever held it may have removed it.
    pub fn verify_delivered(
        self,
        p: &CryptoProvider,
        author: &dyn SignerKeys,
        origin: &dyn SignerKeys,
    ) -> Result<Verified<FullView>, OpenError> {
        if !self.ev.origin_signed() {
            return Err(OpenError::OriginSignature);
        }
        self.verify(p, author, Some(origin))
    }
}

impl Unverified<OriginView> {
    /// The author the message claims.
    pub fn claimed_author(&self) -> &Mailbox {
        &self.view.author
    }

    /// Verifies the author tree and full signatures (`spec/envelope.md` §7.1, §7.2) with the
    /// author's key (the origin's own key for a trustful message).
    pub fn verify(
        self,
        p: &CryptoProvider,
        author: &dyn SignerKeys,
    ) -> Result<Verified<OriginView>, OpenError> {
        let Unverified { view, mut ev } = self;
        ev.verify_author(p, &view.destination, author)?;
        Ok(Verified { view, ev })
    }
}

impl Verified<OriginView> {
    /// The origin's signature chunk (`spec/envelope.md` §7.3), to append to the message as
    /// it was opened. It covers the tree of every chunk, both domains and `signed_at` (now, in
    /// seconds since the Unix epoch), so the message cannot be replayed to another destination
    /// domain, nor to its own after the window of `spec/dmtp.md` §6.4.2.
    pub fn origin_signature_chunk(
        &self,
        p: &CryptoProvider,
        rng: &mut dyn CryptoRngCore,
        origin_seed: &Ed25519Seed,
        origin_domain: &Domain,
        signed_at: u64,
    ) -> Result<Vec<u8>, OpenError> {
        if self.ev.origin_signed() {
            return Err(OpenError::AlreadyOriginSigned);
        }
        let transit = self.ev.transit.as_ref().ok_or(OpenError::Unauthentic)?;
        let kek = transit_kek(p, &self.ev.header, transit).map_err(|_| OpenError::Unauthentic)?;
        let keks = [(Role::Transit, kek)];
        let input = origin_sig_input(
            SIG_ALG_ED25519,
            &self.ev.header,
            signed_at,
            origin_domain.as_str(),
            self.view.destination.as_str(),
            &self.ev.tree,
        );
        let sig = p.signature.sign(origin_seed, &input);
        let sig = crate::codec::encode_origin_sig(signed_at, SIG_ALG_ED25519, &sig);
        let index = u16::try_from(self.ev.tree.len())
            .map_err(|_| DecodeError::TooMany("chunks", crate::limits::MAX_CHUNKS))?;
        let mut cs = ChunkSealer { p, header: self.ev.header, keks: &keks, rng };
        let mut w = HashWriter::new(p, Vec::new(), false);
        // From 73 octets in memory to a Vec: no I/O error can occur here.
        cs.write_chunk(
            &mut w,
            ChunkType::OriginSig,
            index,
            &mut &sig[..],
            crate::format::ORIGIN_SIG_CONTENT_LEN as u64,
        )
        .map_err(|_| OpenError::Unauthentic)?;
        Ok(w.into_inner())
    }
}

impl Unverified<DestinationView> {
    /// The origin domain the message claims (look up its organisational key).
    pub fn claimed_origin(&self) -> &Domain {
        &self.view.origin
    }

    /// Verifies the origin signature with the origin's key, for `my_domain`: a message
    /// signed for another destination domain fails (`spec/envelope.md` §7.3, §9).
    pub fn verify(
        self,
        p: &CryptoProvider,
        origin: &dyn SignerKeys,
        my_domain: &Domain,
    ) -> Result<Verified<DestinationView>, OpenError> {
        let Unverified { view, mut ev } = self;
        ev.verify_origin(p, &view.origin, my_domain, Some(origin))?;
        Ok(Verified { view, ev })
    }
}

/// One chunk handed to a light client's open: its bytes, or, for a display or attachment
/// chunk it did not download, only its type (`spec/envelope.md` §7.1).
#[derive(Debug, Clone, Copy)]
pub enum LightChunk<'a> {
    /// The chunk's bytes as sent.
    Present(&'a [u8]),
    /// A display or attachment chunk left out.
    Omitted(ChunkType),
}

/// What a light client verified: the recipient's view without the omitted parts, and the
/// tree entries (hashes) of the omitted chunks, vouched for by the author tree signature, to
/// check them against when they are downloaded ([`chunk_hash`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LightView {
    /// Everything but the omitted parts.
    pub view: FullView,
    /// The verified tree entries of the omitted chunks.
    pub omitted: Vec<TreeEntry>,
}

/// SHA-512 of a chunk's bytes as sent: compare with a [`LightView::omitted`] entry.
pub fn chunk_hash(p: &CryptoProvider, chunk: &[u8]) -> [u8; 64] {
    p.hash.sha512(&[chunk])
}

/// Opens a message as its recipient from its header (42 octets) and its chunks, some display
/// or attachment chunks omitted (`spec/envelope.md` §7.1). `verify` checks authorship from the
/// tree hashes (the author full signature, which needs every octet, is not checked) and the
/// origin signature.
pub fn open_light(
    p: &CryptoProvider,
    header: &[u8],
    chunks: &[LightChunk<'_>],
    secret: &ActorSecret,
) -> Result<Unverified<LightView>, OpenError> {
    let mut sink = CollectSink::default();
    let mut engine = Engine::new(p, Some(secret), &[Role::Recipient], Mode::Open);
    engine.run_light(header, chunks, &mut sink)?;
    let mut u = full_view(&mut engine, sink.parts)?;
    u.ev.light = true;
    Ok(Unverified { view: LightView { view: u.view, omitted: Vec::new() }, ev: u.ev })
}

impl Unverified<LightView> {
    /// The author the message claims.
    pub fn claimed_author(&self) -> &Mailbox {
        &self.view.view.author
    }

    /// Verifies the author tree signature (not the full one) and the origin signature, as
    /// [`Unverified::<FullView>::verify`] does.
    pub fn verify(
        self,
        p: &CryptoProvider,
        author: &dyn SignerKeys,
        origin: Option<&dyn SignerKeys>,
    ) -> Result<Verified<LightView>, OpenError> {
        let Unverified { mut view, mut ev } = self;
        ev.verify_author(p, &view.view.destination, author)?;
        ev.verify_origin(p, &view.view.origin, &view.view.destination, origin)?;
        view.omitted =
            ev.tree.iter().zip(&ev.omitted).filter(|(_, o)| **o).map(|(e, _)| *e).collect();
        Ok(Verified { view, ev })
    }
}
