//! The parsed signet: an owned object with a field index (`spec/signet.md` §2-§7).

use crate::codec::{self, DecodeError, EncodeError, Field, FieldData, Span};
use crate::fields::{Definition, SignetKind, field_info};
use crate::keys::{EncryptionKey, KeyFormatError, Sok, parse_signing_key};
use dime_core::crypto::{CryptoProvider, Ed25519PublicKey, Ed25519Signature};
use dime_core::limits::SIGNET_HEADER_LEN;
use dime_core::{Domain, Fingerprint, Mailbox, NameError};
use std::fmt;

/// Why a field's content is missing or not of its defined form (`spec/signet.md` §4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// A required field is absent.
    #[error("field {0} is missing")]
    Missing(u8),
    /// A key field is not of an accepted form.
    #[error("field {id}: {error}")]
    Key {
        /// The field id.
        id: u8,
        /// The rule broken: in the message, not also a source.
        error: KeyFormatError,
    },
    /// The identifier 254 is not a domain (org) or mailbox (user).
    #[error("field 254: signet identifier is not a valid {expected}: {error}")]
    Identifier {
        /// `domain` or `mailbox`.
        expected: &'static str,
        /// The rule broken: in the message, not also a source.
        error: NameError,
    },
    /// The identifier 254 is not UTF-8.
    #[error("field 254: signet identifier is not utf-8")]
    IdentifierNotUtf8,
}

/// What a signet's field 254 names (`spec/signet.md` §4.1, §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identifier {
    /// An org signet's domain.
    Domain(Domain),
    /// A user signet's mailbox.
    Mailbox(Mailbox),
}

/// The fingerprints of a signet (`spec/signet.md` §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FingerprintKind {
    /// The SSR part: an SSR's whole payload; a user signet's payload through field 5.
    Ssr,
    /// Through the crypto signature: org field 4, user field 6.
    Crypto,
    /// Through the full signature 253.
    Full,
    /// The whole payload of a signet that carries field 255.
    Id,
}

/// A decoded signet (SSR, org or user). It owns its bytes (header included) and an index of
/// its fields; every container rule of `spec/signet.md` §3 holds. Whether the content and
/// signatures are good is for [`Signet::validate`](crate::Signet::validate).
#[derive(Clone, PartialEq, Eq)]
pub struct Signet {
    kind: SignetKind,
    bytes: Vec<u8>,
    spans: Vec<Span>,
}

impl Signet {
    /// Decodes a binary signet of any kind. Allocates one copy of the input and an index of
    /// at most one entry per two payload bytes.
    pub fn decode(bytes: &[u8]) -> Result<Signet, DecodeError> {
        let (magic, payload) = codec::split_header(bytes)?;
        let kind = SignetKind::from_magic(magic).ok_or(DecodeError::UnknownMagic(magic))?;
        let spans = codec::index_fields(kind, payload)?;
        Ok(Signet { kind, bytes: bytes.to_vec(), spans })
    }

    /// Decodes a binary signet and checks that it is of `kind`.
    pub fn decode_kind(bytes: &[u8], kind: SignetKind) -> Result<Signet, DecodeError> {
        let s = Signet::decode(bytes)?;
        if s.kind != kind {
            return Err(DecodeError::WrongKind { expected: kind.name(), found: s.kind.name() });
        }
        Ok(s)
    }

    /// Decodes binary, bare base64 or armored text (`spec/signet.md` §8).
    pub fn decode_any(input: &[u8]) -> Result<Signet, crate::armor::ArmorError> {
        let bin = crate::armor::dearmor_any(input)?;
        Signet::decode(&bin).map_err(crate::armor::ArmorError::Object)
    }

    /// Builds a signet from fields, checking the container rules.
    pub fn from_fields(kind: SignetKind, fields: &[FieldData]) -> Result<Signet, EncodeError> {
        let bytes = codec::encode_signet(kind, fields)?;
        Signet::decode(&bytes).map_err(EncodeError::Rule)
    }

    /// The kind.
    pub fn kind(&self) -> SignetKind {
        self.kind
    }

    /// The whole binary object, header included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A copy of the whole binary object (byte-identical to what was decoded).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The payload (header excluded).
    pub fn payload(&self) -> &[u8] {
        self.bytes.get(SIGNET_HEADER_LEN..).unwrap_or(&[])
    }

    /// The fields, in order.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = Field<'_>> + '_ {
        let p = self.payload();
        self.spans.iter().map(move |s| s.field(p))
    }

    /// Owned copies of the fields.
    pub fn field_data(&self) -> Vec<FieldData> {
        self.fields().map(|f| f.to_owned_field()).collect()
    }

    /// The first field with `id`.
    pub fn field(&self, id: u8) -> Option<Field<'_>> {
        self.fields().find(|f| f.id == id)
    }

    /// Every field with `id`.
    pub fn fields_with_id(&self, id: u8) -> impl Iterator<Item = Field<'_>> + '_ {
        self.fields().filter(move |f| f.id == id)
    }

    /// Fields with an id the kind's table leaves undefined (carried and reported).
    pub fn undefined_fields(&self) -> impl Iterator<Item = Field<'_>> + '_ {
        let kind = self.kind;
        self.fields().filter(move |f| field_info(kind, f.id).definition == Definition::Undefined)
    }

    /// The signing key: org POK or user signing key (field 1).
    pub fn signing_key(&self) -> Result<Ed25519PublicKey, FieldError> {
        let f = self.field(1).ok_or(FieldError::Missing(1))?;
        parse_signing_key(f.data).map_err(|error| FieldError::Key { id: 1, error })
    }

    /// The encryption key: org field 3, user/SSR field 2.
    pub fn encryption_key(&self) -> Result<EncryptionKey, FieldError> {
        let id = if self.kind == SignetKind::Org { 3 } else { 2 };
        let f = self.field(id).ok_or(FieldError::Missing(id))?;
        EncryptionKey::parse(f.data).map_err(|error| FieldError::Key { id, error })
    }

    /// A user's alternate encryption keys (field 3); empty for an org signet.
    pub fn alternate_encryption_keys(&self) -> Result<Vec<EncryptionKey>, FieldError> {
        if self.kind == SignetKind::Org {
            return Ok(Vec::new());
        }
        self.fields_with_id(3)
            .map(|f| EncryptionKey::parse(f.data).map_err(|error| FieldError::Key { id: 3, error }))
            .collect()
    }

    /// An org signet's SOKs (field 2); empty for other kinds.
    pub fn soks(&self) -> Result<Vec<Sok>, FieldError> {
        if self.kind != SignetKind::Org {
            return Ok(Vec::new());
        }
        self.fields_with_id(2)
            .map(|f| Sok::parse(f.data).map_err(|error| FieldError::Key { id: 2, error }))
            .collect()
    }

    /// Whether the encryption key is a v2 X25519 key (`spec/signet.md` §4.3).
    pub fn is_v2(&self) -> bool {
        matches!(self.encryption_key(), Ok(EncryptionKey::X25519(_)))
    }

    /// The identifier (field 254): a domain for an org signet, a mailbox for a user signet.
    pub fn identifier(&self) -> Result<Option<Identifier>, FieldError> {
        let Some(f) = self.field(254) else { return Ok(None) };
        let text = std::str::from_utf8(f.data).map_err(|_| FieldError::IdentifierNotUtf8)?;
        match self.kind {
            SignetKind::Org => Domain::parse(text)
                .map(|d| Some(Identifier::Domain(d)))
                .map_err(|error| FieldError::Identifier { expected: "domain", error }),
            _ => Mailbox::parse(text)
                .map(|m| Some(Identifier::Mailbox(m)))
                .map_err(|error| FieldError::Identifier { expected: "mailbox", error }),
        }
    }

    /// The message a signature field covers and its signature: `payload[..offset of the
    /// field]` (`spec/signet.md` §5). `None` when the field is absent or not a signature.
    pub fn signed_part(&self, id: u8) -> Option<(&[u8], Ed25519Signature)> {
        if !crate::fields::is_signature_field(self.kind, id) {
            return None;
        }
        let f = self.field(id)?;
        let sig = Ed25519Signature::from_slice(f.data)?;
        Some((self.payload().get(..f.offset)?, sig))
    }

    /// The payload through the end of field `id` (its last occurrence).
    pub fn payload_through(&self, id: u8) -> Option<&[u8]> {
        let end = self.fields().filter(|f| f.id == id).last()?.end;
        self.payload().get(..end)
    }

    /// The bytes a fingerprint hashes, or `None` where the signet has no such fingerprint
    /// (`spec/signet.md` §7).
    pub fn fingerprint_input(&self, kind: FingerprintKind) -> Option<&[u8]> {
        match (kind, self.kind) {
            (FingerprintKind::Ssr, SignetKind::Ssr) => self.field(5).map(|_| self.payload()),
            (FingerprintKind::Ssr, SignetKind::User) => self.payload_through(5),
            (FingerprintKind::Crypto, k) => self.payload_through(k.crypto_signature_field()?),
            (FingerprintKind::Full, SignetKind::Org | SignetKind::User) => {
                self.payload_through(253)
            }
            (FingerprintKind::Id, SignetKind::Org | SignetKind::User) => {
                self.field(255).map(|_| self.payload())
            }
            _ => None,
        }
    }

    /// A fingerprint: SHA-512 of [`Signet::fingerprint_input`] (`spec/signet.md` §7).
    pub fn fingerprint(
        &self,
        provider: &CryptoProvider,
        kind: FingerprintKind,
    ) -> Option<Fingerprint> {
        self.fingerprint_input(kind).map(|m| Fingerprint(provider.hash.sha512(&[m])))
    }

    /// The fingerprint that names this signet in DMTP (MAIL, RCPT, VRFY) and in pins: its id
    /// fingerprint when it has one, else its full one, else its crypto one
    /// (`spec/dmtp.md` §6.2, `spec/discovery.md`).
    pub fn naming_fingerprint(&self, provider: &CryptoProvider) -> Option<Fingerprint> {
        [FingerprintKind::Id, FingerprintKind::Full, FingerprintKind::Crypto]
            .into_iter()
            .find_map(|k| self.fingerprint(provider, k))
    }

    /// The armored text form (`spec/signet.md` §8).
    pub fn to_armor(&self) -> String {
        // A decoded signet always has a signet magic, which always has a label.
        crate::armor::encode(&self.bytes).unwrap_or_default()
    }

    /// The SSR a user signet was made from: its fields 1-5 under the SSR magic.
    pub fn ssr_part(&self) -> Option<Signet> {
        if self.kind != SignetKind::User {
            return None;
        }
        let fields: Vec<FieldData> =
            self.fields().take_while(|f| f.id <= 5).map(|f| f.to_owned_field()).collect();
        Signet::from_fields(SignetKind::Ssr, &fields).ok()
    }
}

impl fmt::Debug for Signet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_struct("Signet");
        l.field("kind", &self.kind).field("len", &self.bytes.len());
        let ids: Vec<u8> = self.spans.iter().map(|s| s.id).collect();
        l.field("fields", &ids).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssr_fields() -> Vec<FieldData> {
        let mut k = vec![0x40];
        k.extend_from_slice(&[1u8; 32]);
        let mut e = vec![0x58];
        e.extend_from_slice(&[2u8; 32]);
        vec![FieldData::new(1, k), FieldData::new(2, e), FieldData::new(5, vec![0u8; 64])]
    }

    #[test]
    fn decode_reports_kind_keys_and_fingerprint_inputs() {
        let s = Signet::from_fields(SignetKind::Ssr, &ssr_fields()).unwrap();
        assert_eq!(s.kind(), SignetKind::Ssr);
        assert_eq!(s.signing_key().unwrap().0, [1u8; 32]);
        assert!(s.is_v2());
        assert_eq!(s.fingerprint_input(FingerprintKind::Ssr), Some(s.payload()));
        assert_eq!(s.fingerprint_input(FingerprintKind::Crypto), None);
        let (msg, _) = s.signed_part(5).unwrap();
        assert_eq!(msg.len(), 2 + 33 + 2 + 33);
        assert_eq!(Signet::decode(s.as_bytes()).unwrap(), s);
    }

    #[test]
    fn wrong_kind_is_refused() {
        let s = Signet::from_fields(SignetKind::Ssr, &ssr_fields()).unwrap();
        assert_eq!(
            Signet::decode_kind(s.as_bytes(), SignetKind::Org),
            Err(DecodeError::WrongKind { expected: "org", found: "ssr" })
        );
        assert_eq!(Signet::decode(&[0, 1, 0, 0, 0]), Err(DecodeError::UnknownMagic(1)));
    }
}
