//! Key overlays: a message's recipient chunk keys sealed to another key, kept beside the
//! unchanged message (`spec/envelope.md` §16).
//!
//! The author's tree signature covers every chunk as sent, key slots included (§7), so a
//! store cannot rewrite a stored message's slots after a key rotation without breaking
//! authorship. Instead it keeps an overlay next to the message: the chunk keys of every chunk
//! the recipient may open, sealed either to a new X25519 key (rotation) or under a symmetric
//! read key (opening at plaintext speed). Opening through an overlay decrypts the unchanged
//! message with those keys and then runs exactly the verification of [`open_as_recipient`].
//!
//! [`open_as_recipient`]: crate::open_as_recipient

use crate::engine::{CollectSink, Engine, Mode};
use crate::error::{DecodeError, OpenError, SealError};
use crate::format::{ChunkType, Header, MESSAGE_ID_LEN, Role};
use crate::limits::MAX_CHUNKS;
use crate::open::{FullView, Unverified, full_view};
use crate::seal::ActorSecret;
use dime_core::CryptoRngCore;
use dime_core::crypto::{
    AEAD_NONCE_LEN, AEAD_TAG_LEN, AeadKey, CryptoProvider, X25519PublicKey, X25519Secret,
};
use zeroize::Zeroizing;

/// The first seven octets of every key overlay (`spec/envelope.md` §16.1).
pub const OVERLAY_MAGIC: [u8; 7] = *b"DIMEOVL";
/// The overlay format version (`spec/envelope.md` §16.1).
pub const OVERLAY_VERSION: u8 = 1;
/// HKDF info of an overlay sealed to an X25519 key (`spec/envelope.md` §16.2).
pub const OVERLAY_X25519_LABEL: &[u8] = b"dime/v2/overlay/x25519";
/// HKDF info of an overlay sealed under a read key (`spec/envelope.md` §16.2).
pub const OVERLAY_READ_LABEL: &[u8] = b"dime/v2/overlay/read";
/// Label of an overlay's associated data (`spec/envelope.md` §16.3).
pub const OVERLAY_AAD_LABEL: &[u8] = b"dime/v2/overlay\0";
/// Octets of one overlay entry: type, index, chunk key (`spec/envelope.md` §16.4).
pub const OVERLAY_ENTRY_LEN: usize = 1 + 2 + 32;
/// Largest overlay, in octets: the X25519 form with an entry for every possible chunk
/// (`spec/envelope.md` §16.1). A decoder refuses anything longer before it copies.
pub const OVERLAY_MAX_LEN: usize =
    7 + 1 + 1 + 32 + AEAD_NONCE_LEN + 2 + MAX_CHUNKS * OVERLAY_ENTRY_LEN + AEAD_TAG_LEN;

/// The form octet of an overlay (`spec/envelope.md` §16.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayForm {
    /// Sealed to an X25519 public key with a fresh ephemeral key (`01`).
    X25519,
    /// Sealed under a symmetric 32-octet read key (`02`).
    Read,
}

impl OverlayForm {
    /// The form octet.
    pub fn code(self) -> u8 {
        match self {
            OverlayForm::X25519 => 1,
            OverlayForm::Read => 2,
        }
    }
}

/// The key that opens an overlay.
#[derive(Debug, Clone, Copy)]
pub enum OverlayKey<'a> {
    /// The X25519 key pair the overlay was sealed to (form `01`).
    X25519(&'a ActorSecret),
    /// The 32-octet read key (form `02`).
    Read(&'a [u8; 32]),
}

/// The recipient chunk keys of one message: every chunk with a recipient slot, with its type
/// and index (`spec/envelope.md` §16.4). Each key is zeroized when this is dropped.
pub struct ChunkKeys {
    header: Header,
    entries: Vec<(ChunkType, u16, Zeroizing<[u8; 32]>)>,
}

impl std::fmt::Debug for ChunkKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkKeys")
            .field("message_id", &self.header.message_id)
            .field("chunks", &self.entries.iter().map(|(t, i, _)| (*t, *i)).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ChunkKeys {
    /// The message id these keys belong to.
    pub fn message_id(&self) -> &[u8; MESSAGE_ID_LEN] {
        &self.header.message_id
    }

    /// The number of chunk keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no key (never the case for a message that opened).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The (type, index) of each chunk with a key, in message order.
    pub fn chunks(&self) -> impl Iterator<Item = (ChunkType, u16)> + '_ {
        self.entries.iter().map(|(t, i, _)| (*t, *i))
    }

    /// The key of chunk `index` of type `ty`.
    pub(crate) fn key_for(&self, ty: ChunkType, index: u16) -> Option<&[u8; 32]> {
        self.entries.iter().find(|(t, i, _)| *t == ty && *i == index).map(|(_, _, k)| &**k)
    }

    /// Drops the key of chunk `index` (tests of the missing-key refusal).
    #[doc(hidden)]
    pub fn remove_chunk(&mut self, index: u16) {
        self.entries.retain(|(_, i, _)| *i != index);
    }

    /// The overlay plaintext: `u16 count || count × (u8 type || u16 index || key)` (§16.4).
    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        let mut v = Zeroizing::new(Vec::with_capacity(2 + self.entries.len() * OVERLAY_ENTRY_LEN));
        let count = u16::try_from(self.entries.len()).unwrap_or(u16::MAX);
        v.extend_from_slice(&count.to_be_bytes());
        for (t, i, k) in &self.entries {
            v.push(t.code());
            v.extend_from_slice(&i.to_be_bytes());
            v.extend_from_slice(&k[..]);
        }
        v
    }

    /// Seals these keys to an X25519 public key (form `01`, `spec/envelope.md` §16.2): a
    /// fresh ephemeral key per overlay. Used when re-wrapping after a key rotation.
    pub fn seal_to_x25519(
        &self,
        p: &CryptoProvider,
        rng: &mut dyn CryptoRngCore,
        to: &X25519PublicKey,
    ) -> Result<Vec<u8>, SealError> {
        let eph = X25519Secret::generate(rng);
        let eph_pub = p.key_agreement.public_key(&eph);
        let kek = x25519_kek(p, &eph, &eph_pub, to, true)
            .map_err(|_| SealError::BadActorKey(Role::Recipient))?;
        let mut out = head(OverlayForm::X25519);
        out.extend_from_slice(&eph_pub.0);
        self.seal_body(p, rng, &kek, OverlayForm::X25519, out)
    }

    /// Seals these keys under a 32-octet read key (form `02`, `spec/envelope.md` §16.2):
    /// opening the message then costs one AEAD unwrap instead of one X25519.
    pub fn seal_with_read_key(
        &self,
        p: &CryptoProvider,
        rng: &mut dyn CryptoRngCore,
        read_key: &[u8; 32],
    ) -> Result<Vec<u8>, SealError> {
        let kek = read_kek(p, &self.header, read_key)
            .map_err(|_| SealError::BadActorKey(Role::Recipient))?;
        self.seal_body(p, rng, &kek, OverlayForm::Read, head(OverlayForm::Read))
    }

    fn seal_body(
        &self,
        p: &CryptoProvider,
        rng: &mut dyn CryptoRngCore,
        kek: &AeadKey,
        form: OverlayForm,
        mut out: Vec<u8>,
    ) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; AEAD_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut body = self.plaintext().to_vec();
        p.aead.seal(kek, &nonce, &overlay_aad(p, &self.header, form), &mut body);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }
}

fn head(form: OverlayForm) -> Vec<u8> {
    let mut v = Vec::with_capacity(OVERLAY_MAX_LEN.min(4096));
    v.extend_from_slice(&OVERLAY_MAGIC);
    v.push(OVERLAY_VERSION);
    v.push(form.code());
    v
}

/// `KEK = HKDF(salt = E || P, ikm = X25519(e, P), info = "dime/v2/overlay/x25519")`
/// (§16.2). `sealing`: `secret` is the ephemeral `e` and `other` the holder's key `P`;
/// otherwise `secret` is the holder's and `other` the ephemeral public key.
fn x25519_kek(
    p: &CryptoProvider,
    secret: &X25519Secret,
    my_pub: &X25519PublicKey,
    other: &X25519PublicKey,
    sealing: bool,
) -> Result<AeadKey, dime_core::crypto::CryptoError> {
    let shared = p.key_agreement.agree(secret, other)?;
    let (e, holder) = if sealing { (my_pub, other) } else { (other, my_pub) };
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(&e.0);
    salt[32..].copy_from_slice(&holder.0);
    let mut out = Zeroizing::new([0u8; 32]);
    p.kdf.hkdf_sha512(&salt, shared.expose(), OVERLAY_X25519_LABEL, out.as_mut())?;
    Ok(AeadKey::from_bytes(*out))
}

/// `KEK = HKDF(salt = message id, ikm = read key, info = "dime/v2/overlay/read")` (§16.2).
fn read_kek(
    p: &CryptoProvider,
    header: &Header,
    read_key: &[u8; 32],
) -> Result<AeadKey, dime_core::crypto::CryptoError> {
    let mut out = Zeroizing::new([0u8; 32]);
    p.kdf.hkdf_sha512(&header.message_id, read_key, OVERLAY_READ_LABEL, out.as_mut())?;
    Ok(AeadKey::from_bytes(*out))
}

/// `ad = "dime/v2/overlay\0" || u8 form || message id || SHA-512(H)` (§16.3).
fn overlay_aad(p: &CryptoProvider, header: &Header, form: OverlayForm) -> Vec<u8> {
    let h = header.to_bytes();
    let mut a = Vec::with_capacity(OVERLAY_AAD_LABEL.len() + 1 + MESSAGE_ID_LEN + 64);
    a.extend_from_slice(OVERLAY_AAD_LABEL);
    a.push(form.code());
    a.extend_from_slice(&header.message_id);
    a.extend_from_slice(&p.hash.sha512(&[&h]));
    a
}

/// The header `H` (§2) at the start of `msg`, checked.
fn message_header(msg: &[u8]) -> Result<Header, OpenError> {
    Ok(Header::from_bytes(msg.first_chunk().ok_or(DecodeError::Truncated)?)?)
}

/// The recipient chunk keys of `message`: unwraps only the recipient slots with `secret`
/// and verifies nothing else (no segment is opened, no signature checked). The framing is
/// decoded as for every open. Seal the result into an overlay (`spec/envelope.md` §16).
pub fn recipient_chunk_keys(
    p: &CryptoProvider,
    message: &[u8],
    secret: &ActorSecret,
) -> Result<ChunkKeys, OpenError> {
    let mut engine = Engine::new(p, Some(secret), &[Role::Recipient], Mode::Open);
    engine.collect_keys = true;
    let mut reader = message;
    engine.run(&mut reader, &mut crate::DiscardSink)?;
    let header = engine.header.ok_or(DecodeError::Truncated)?;
    let entries = std::mem::take(&mut engine.collected);
    if entries.is_empty() {
        return Err(OpenError::Unauthentic);
    }
    Ok(ChunkKeys { header, entries })
}

/// Opens an overlay of `message` with `key` (`spec/envelope.md` §16). Every failure (wrong
/// key, flipped octet, an overlay of another message, a malformed body) is the generic
/// [`OpenError::Unauthentic`]. The keys are not checked against the chunks here: opening the
/// message with them is ([`open_as_recipient_with_keys`]).
pub fn open_overlay(
    p: &CryptoProvider,
    message: &[u8],
    overlay: &[u8],
    key: OverlayKey<'_>,
) -> Result<ChunkKeys, OpenError> {
    let header = message_header(message)?;
    open_overlay_for(p, &header, overlay, key).ok_or(OpenError::Unauthentic)
}

fn open_overlay_for(
    p: &CryptoProvider,
    header: &Header,
    overlay: &[u8],
    key: OverlayKey<'_>,
) -> Option<ChunkKeys> {
    if overlay.len() > OVERLAY_MAX_LEN
        || overlay.get(..7)? != OVERLAY_MAGIC
        || *overlay.get(7)? != OVERLAY_VERSION
    {
        return None;
    }
    let form_code = *overlay.get(8)?;
    let (form, kek, rest) = match (form_code, key) {
        (1, OverlayKey::X25519(me)) => {
            let eph = X25519PublicKey::from_slice(overlay.get(9..41)?)?;
            let kek = x25519_kek(p, me.secret(), me.public(), &eph, false).ok()?;
            (OverlayForm::X25519, kek, overlay.get(41..)?)
        }
        (2, OverlayKey::Read(rk)) => {
            (OverlayForm::Read, read_kek(p, header, rk).ok()?, overlay.get(9..)?)
        }
        _ => return None,
    };
    let (nonce, ct) = rest.split_at_checked(AEAD_NONCE_LEN)?;
    let nonce: [u8; AEAD_NONCE_LEN] = nonce.try_into().ok()?;
    let mut body = Zeroizing::new(ct.to_vec());
    p.aead.open(&kek, &nonce, &overlay_aad(p, header, form), &mut body).ok()?;
    let (count, mut entries_bytes) = body.split_at_checked(2)?;
    let count = usize::from(u16::from_be_bytes(count.try_into().ok()?));
    if count == 0 || count > MAX_CHUNKS || entries_bytes.len() != count * OVERLAY_ENTRY_LEN {
        return None;
    }
    let mut entries = Vec::with_capacity(count);
    let mut prev: Option<u16> = None;
    while let Some((e, rest)) = entries_bytes.split_at_checked(OVERLAY_ENTRY_LEN) {
        entries_bytes = rest;
        let ty = ChunkType::from_code(*e.first()?)?;
        let index = u16::from_be_bytes(e.get(1..3)?.try_into().ok()?);
        if prev.is_some_and(|p| index <= p) || !ty.slot_roles().contains(&Role::Recipient) {
            return None;
        }
        prev = Some(index);
        let k: [u8; 32] = e.get(3..)?.try_into().ok()?;
        entries.push((ty, index, Zeroizing::new(k)));
    }
    Some(ChunkKeys { header: *header, entries })
}

/// Opens `message` as its recipient with chunk keys from an overlay: every recipient chunk
/// must have exactly its key (a missing or extra key refuses), every tag is checked, and the
/// returned view's `verify` runs exactly the checks of [`crate::open_as_recipient`] (author
/// tree and full signatures, origin signature) over the unchanged octets.
pub fn open_as_recipient_with_keys(
    p: &CryptoProvider,
    message: &[u8],
    keys: &ChunkKeys,
) -> Result<Unverified<FullView>, OpenError> {
    let header = message_header(message)?;
    if header != keys.header {
        return Err(OpenError::Unauthentic);
    }
    let mut sink = CollectSink::default();
    let mut engine = Engine::new(p, None, &[Role::Recipient], Mode::Open);
    engine.preset = Some(keys);
    let mut reader = message;
    engine.run(&mut reader, &mut sink)?;
    if engine.preset_used != keys.len() {
        return Err(OpenError::Unauthentic);
    }
    full_view(&mut engine, sink.parts)
}

/// [`open_as_recipient_with_keys`] for a reader that verifies nothing: no chunk is hashed
/// for the signatures (the hashing is most of the cost of an open), so the result is the view
/// and the message's kind, never something that could be verified. Only for a reader that
/// holds the record of an earlier verification of this very message (`spec/dmap.md` §5.2);
/// every chunk is still opened and authenticated with its key.
///
/// # Errors
/// As [`open_as_recipient_with_keys`].
pub fn open_as_recipient_with_keys_unverified(
    p: &CryptoProvider,
    message: &[u8],
    keys: &ChunkKeys,
) -> Result<(FullView, crate::MessageKind), OpenError> {
    let header = message_header(message)?;
    if header != keys.header {
        return Err(OpenError::Unauthentic);
    }
    let mut sink = CollectSink::default();
    let mut engine = Engine::new(p, None, &[Role::Recipient], Mode::Open);
    engine.preset = Some(keys);
    engine.hashing = false;
    let mut reader = message;
    engine.run(&mut reader, &mut sink)?;
    if engine.preset_used != keys.len() {
        return Err(OpenError::Unauthentic);
    }
    let u = full_view(&mut engine, sink.parts)?;
    let kind = u.kind();
    Ok((u.into_unverified_view(), kind))
}

/// Opens `message` as its recipient through a key overlay (`spec/envelope.md` §16): the
/// overlay's keys open the chunks, then `verify` checks the author and origin signatures over
/// the unchanged octets, exactly as for [`crate::open_as_recipient`].
pub fn open_as_recipient_with_overlay(
    p: &CryptoProvider,
    message: &[u8],
    overlay: &[u8],
    key: OverlayKey<'_>,
) -> Result<Unverified<FullView>, OpenError> {
    let keys = open_overlay(p, message, overlay, key)?;
    open_as_recipient_with_keys(p, message, &keys)
}
