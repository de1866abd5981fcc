//! Key forms inside signets, SOKs, and the private key sets of organisations and users
//! (`spec/signet.md` §4.3, §4.4, §9).

use dime_core::crypto::{
    CryptoProvider, Ed25519PublicKey, Ed25519Seed, X25519PublicKey, X25519Secret,
};
use dime_core::{CryptoRngCore, Secret};

/// Format byte of an Ed25519 public key in a signet: `0x40 || key` (`spec/signet.md` §4.3).
pub const ED25519_KEY_FORMAT: u8 = 0x40;

/// Format byte of a v2 X25519 encryption key: `0x58 || key` ('X'; never a SEC1 prefix)
/// (`spec/signet.md` §4.3).
pub const X25519_KEY_FORMAT: u8 = 0x58;

/// Why a key field's data is not a key of an accepted form (`spec/signet.md` §4.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    /// A signing key is neither `0x40 || 32 bytes` nor 32 bytes.
    #[error("signing key must be 0x40 followed by 32 bytes, or 32 bytes")]
    SigningKey,
    /// An encryption key is neither a compressed secp256k1 point nor `0x58 || 32 bytes`.
    #[error(
        "encryption key must be 33 bytes: 02/03 (secp256k1, v1) or 0x58 (x25519, v2) then the key"
    )]
    EncryptionKey,
    /// A SOK is not `[permissions][0x40][32 bytes]` (or `[permissions][32 bytes]`).
    #[error("secondary organizational key must be a permissions byte then a signing key")]
    Sok,
}

/// Parses a signing key field: `0x40 || key` (v1 and v2), or a bare 32-byte key (a later
/// dialect, accepted but never emitted) (`spec/signet.md` §4.3).
pub fn parse_signing_key(data: &[u8]) -> Result<Ed25519PublicKey, KeyFormatError> {
    match data {
        [ED25519_KEY_FORMAT, rest @ ..] if rest.len() == 32 => {
            Ed25519PublicKey::from_slice(rest).ok_or(KeyFormatError::SigningKey)
        }
        _ if data.len() == 32 => {
            Ed25519PublicKey::from_slice(data).ok_or(KeyFormatError::SigningKey)
        }
        _ => Err(KeyFormatError::SigningKey),
    }
}

/// The emitted form of a signing key: `0x40 || key` (`spec/signet.md` §4.3).
pub fn encode_signing_key(key: &Ed25519PublicKey) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = ED25519_KEY_FORMAT;
    out[1..].copy_from_slice(key.as_bytes());
    out
}

/// A public encryption key carried in a signet (`spec/signet.md` §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncryptionKey {
    /// A v1 compressed secp256k1 point (`02`/`03` prefix): carried, never used to encrypt.
    Secp256k1([u8; 33]),
    /// A v2 X25519 key (written `0x58 || key`).
    X25519(X25519PublicKey),
}

impl EncryptionKey {
    /// Parses an encryption key field.
    pub fn parse(data: &[u8]) -> Result<EncryptionKey, KeyFormatError> {
        let arr: [u8; 33] = data.try_into().map_err(|_| KeyFormatError::EncryptionKey)?;
        match arr[0] {
            0x02 | 0x03 => Ok(EncryptionKey::Secp256k1(arr)),
            X25519_KEY_FORMAT => X25519PublicKey::from_slice(&arr[1..])
                .map(EncryptionKey::X25519)
                .ok_or(KeyFormatError::EncryptionKey),
            _ => Err(KeyFormatError::EncryptionKey),
        }
    }

    /// The field data (33 bytes).
    pub fn to_bytes(&self) -> [u8; 33] {
        match self {
            EncryptionKey::Secp256k1(b) => *b,
            EncryptionKey::X25519(k) => {
                let mut out = [0u8; 33];
                out[0] = X25519_KEY_FORMAT;
                out[1..].copy_from_slice(k.as_bytes());
                out
            }
        }
    }

    /// The X25519 key of a v2 signet; `None` for a v1 secp256k1 key.
    pub fn x25519(&self) -> Option<&X25519PublicKey> {
        match self {
            EncryptionKey::X25519(k) => Some(k),
            EncryptionKey::Secp256k1(_) => None,
        }
    }
}

/// Permission bits of a secondary organizational key (`spec/signet.md` §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SokPermissions(pub u8);

impl SokPermissions {
    /// May sign user signets.
    pub const SIGNET: SokPermissions = SokPermissions(1);
    /// May sign messages.
    pub const MESSAGE: SokPermissions = SokPermissions(2);
    /// May sign TLS certificates.
    pub const TLS: SokPermissions = SokPermissions(4);
    /// May sign software.
    pub const SOFTWARE: SokPermissions = SokPermissions(8);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: SokPermissions) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for SokPermissions {
    type Output = SokPermissions;
    fn bitor(self, rhs: SokPermissions) -> SokPermissions {
        SokPermissions(self.0 | rhs.0)
    }
}

/// A secondary organizational key as carried in org field 2 (`spec/signet.md` §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sok {
    /// What the key may sign.
    pub permissions: SokPermissions,
    /// The Ed25519 key.
    pub key: Ed25519PublicKey,
}

impl Sok {
    /// Parses `[permissions][0x40][32 bytes]` (or `[permissions][32 bytes]`).
    pub fn parse(data: &[u8]) -> Result<Sok, KeyFormatError> {
        let (&perm, rest) = data.split_first().ok_or(KeyFormatError::Sok)?;
        let key = parse_signing_key(rest).map_err(|_| KeyFormatError::Sok)?;
        Ok(Sok { permissions: SokPermissions(perm), key })
    }

    /// The field data: `[permissions][0x40][32 bytes]`.
    pub fn to_bytes(&self) -> [u8; 34] {
        let mut out = [0u8; 34];
        out[0] = self.permissions.0;
        out[1..].copy_from_slice(&encode_signing_key(&self.key));
        out
    }
}

/// A private encryption key (`spec/signet.md` §9).
#[derive(Debug)]
pub enum EncryptionSecret {
    /// A v1 secp256k1 scalar: carried from a v1 key file, never used.
    Secp256k1(Secret<[u8; 32]>),
    /// A v2 X25519 secret.
    X25519(X25519Secret),
}

impl EncryptionSecret {
    /// The 32 secret bytes. Never format them.
    pub fn expose(&self) -> &[u8; 32] {
        match self {
            EncryptionSecret::Secp256k1(s) => s.expose(),
            EncryptionSecret::X25519(s) => s.expose(),
        }
    }

    /// The public key, for an X25519 secret. A secp256k1 scalar has none here: this crate
    /// does no secp256k1 arithmetic.
    pub fn public_key(&self, provider: &CryptoProvider) -> Option<EncryptionKey> {
        match self {
            EncryptionSecret::X25519(s) => {
                Some(EncryptionKey::X25519(provider.key_agreement.public_key(s)))
            }
            EncryptionSecret::Secp256k1(_) => None,
        }
    }

    /// Whether this is a v2 (X25519) secret.
    pub fn is_v2(&self) -> bool {
        matches!(self, EncryptionSecret::X25519(_))
    }

    fn duplicate(&self) -> EncryptionSecret {
        match self {
            EncryptionSecret::Secp256k1(s) => EncryptionSecret::Secp256k1(s.duplicate()),
            EncryptionSecret::X25519(s) => EncryptionSecret::X25519(s.duplicate()),
        }
    }
}

/// A private secondary organizational key.
#[derive(Debug)]
pub struct SokSecret {
    /// What it may sign.
    pub permissions: SokPermissions,
    /// The Ed25519 seed.
    pub seed: Ed25519Seed,
}

/// An organisation's private keys: the POK, its SOKs and the encryption key
/// (`spec/signet.md` §9). `Debug` never shows key material.
#[derive(Debug)]
pub struct OrgKeys {
    pok: Ed25519Seed,
    soks: Vec<SokSecret>,
    encryption: EncryptionSecret,
}

impl OrgKeys {
    /// Fresh v2 keys: an Ed25519 POK and an X25519 encryption key, no SOK.
    pub fn generate(rng: &mut dyn CryptoRngCore) -> OrgKeys {
        OrgKeys {
            pok: Ed25519Seed::generate(rng),
            soks: Vec::new(),
            encryption: EncryptionSecret::X25519(X25519Secret::generate(rng)),
        }
    }

    /// Keys from their parts.
    pub fn from_parts(
        pok: Ed25519Seed,
        soks: Vec<SokSecret>,
        encryption: EncryptionSecret,
    ) -> OrgKeys {
        OrgKeys { pok, soks, encryption }
    }

    /// The parts: POK seed, SOKs, encryption secret.
    pub fn into_parts(self) -> (Ed25519Seed, Vec<SokSecret>, EncryptionSecret) {
        (self.pok, self.soks, self.encryption)
    }

    /// Adds a fresh SOK with `permissions` and returns its index.
    pub fn add_sok(&mut self, rng: &mut dyn CryptoRngCore, permissions: SokPermissions) -> usize {
        self.soks.push(SokSecret { permissions, seed: Ed25519Seed::generate(rng) });
        self.soks.len() - 1
    }

    /// The POK seed. Never format it.
    pub fn pok_seed(&self) -> &Ed25519Seed {
        &self.pok
    }

    /// The POK public key.
    pub fn pok(&self, provider: &CryptoProvider) -> Ed25519PublicKey {
        provider.signature.public_key(&self.pok)
    }

    /// The SOKs.
    pub fn soks(&self) -> &[SokSecret] {
        &self.soks
    }

    /// The public SOKs, as they go into org field 2.
    pub fn public_soks(&self, provider: &CryptoProvider) -> Vec<Sok> {
        self.soks
            .iter()
            .map(|s| Sok {
                permissions: s.permissions,
                key: provider.signature.public_key(&s.seed),
            })
            .collect()
    }

    /// The private encryption key.
    pub fn encryption_secret(&self) -> &EncryptionSecret {
        &self.encryption
    }

    /// An explicit copy.
    pub fn duplicate(&self) -> OrgKeys {
        OrgKeys {
            pok: self.pok.duplicate(),
            soks: self
                .soks
                .iter()
                .map(|s| SokSecret { permissions: s.permissions, seed: s.seed.duplicate() })
                .collect(),
            encryption: self.encryption.duplicate(),
        }
    }
}

/// A user's private keys: signing and encryption (`spec/signet.md` §9). `Debug` never shows
/// key material.
#[derive(Debug)]
pub struct UserKeys {
    signing: Ed25519Seed,
    encryption: EncryptionSecret,
}

impl UserKeys {
    /// Fresh v2 keys: Ed25519 signing and X25519 encryption.
    pub fn generate(rng: &mut dyn CryptoRngCore) -> UserKeys {
        UserKeys {
            signing: Ed25519Seed::generate(rng),
            encryption: EncryptionSecret::X25519(X25519Secret::generate(rng)),
        }
    }

    /// Keys from their parts.
    pub fn from_parts(signing: Ed25519Seed, encryption: EncryptionSecret) -> UserKeys {
        UserKeys { signing, encryption }
    }

    /// The parts: signing seed, encryption secret.
    pub fn into_parts(self) -> (Ed25519Seed, EncryptionSecret) {
        (self.signing, self.encryption)
    }

    /// The signing seed. Never format it.
    pub fn signing_seed(&self) -> &Ed25519Seed {
        &self.signing
    }

    /// The signing public key.
    pub fn signing_key(&self, provider: &CryptoProvider) -> Ed25519PublicKey {
        provider.signature.public_key(&self.signing)
    }

    /// The private encryption key.
    pub fn encryption_secret(&self) -> &EncryptionSecret {
        &self.encryption
    }

    /// An explicit copy.
    pub fn duplicate(&self) -> UserKeys {
        UserKeys { signing: self.signing.duplicate(), encryption: self.encryption.duplicate() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_key_forms() {
        let mut v1 = vec![0x40];
        v1.extend_from_slice(&[9u8; 32]);
        assert_eq!(parse_signing_key(&v1).unwrap().0, [9u8; 32]);
        assert_eq!(parse_signing_key(&[9u8; 32]).unwrap().0, [9u8; 32]);
        assert!(parse_signing_key(&[0x41; 33]).is_err());
        assert!(parse_signing_key(&[9u8; 31]).is_err());
        assert_eq!(encode_signing_key(&Ed25519PublicKey([9u8; 32]))[..], v1[..]);
    }

    #[test]
    fn encryption_key_forms_never_collide_with_sec1() {
        for prefix in [0x00u8, 0x04, 0x06, 0x07] {
            let mut k = [1u8; 33];
            k[0] = prefix;
            assert_eq!(EncryptionKey::parse(&k), Err(KeyFormatError::EncryptionKey));
        }
        let mut k = [1u8; 33];
        k[0] = 0x03;
        assert!(matches!(EncryptionKey::parse(&k), Ok(EncryptionKey::Secp256k1(_))));
        k[0] = X25519_KEY_FORMAT;
        let parsed = EncryptionKey::parse(&k).unwrap();
        assert_eq!(parsed.x25519().unwrap().0, [1u8; 32]);
        assert_eq!(parsed.to_bytes(), k);
        assert!(EncryptionKey::parse(&k[..32]).is_err());
    }

    #[test]
    fn sok_layout_and_bits() {
        let sok = Sok {
            permissions: SokPermissions::SIGNET | SokPermissions::TLS,
            key: Ed25519PublicKey([5; 32]),
        };
        let b = sok.to_bytes();
        assert_eq!(b[0], 5);
        assert_eq!(b[1], 0x40);
        assert_eq!(Sok::parse(&b).unwrap(), sok);
        assert!(sok.permissions.contains(SokPermissions::SIGNET));
        assert!(!sok.permissions.contains(SokPermissions::MESSAGE));
        assert!(Sok::parse(&b[..20]).is_err());
        // A bare 32-byte key is accepted too (later dialect).
        assert_eq!(Sok::parse(&[&[1u8][..], &[5u8; 32][..]].concat()).unwrap().key.0, [5u8; 32]);
    }

    #[test]
    fn debug_hides_private_keys() {
        let keys = UserKeys::from_parts(
            Ed25519Seed::from_bytes([0x41; 32]),
            EncryptionSecret::X25519(X25519Secret::from_bytes([0x42; 32])),
        );
        let shown = format!("{keys:?}");
        assert!(!shown.contains("65") && !shown.contains("66") && !shown.contains('A'), "{shown}");
    }
}
