//! Private key files (`spec/signet.md` §9): v1 plaintext files are read; v2 files are written
//! encrypted under a passphrase (Argon2id + XChaCha20-Poly1305). A plaintext v2 file is only
//! written by the functions named `insecure`.

use crate::armor::{ArmorError, dearmor_any};
use crate::codec::{DecodeError, split_header, write_header};
use crate::keys::{EncryptionSecret, OrgKeys, SokPermissions, SokSecret, UserKeys};
use crate::*;
use dime_core::crypto::{
    AEAD_NONCE_LEN, AEAD_TAG_LEN, AeadKey, Argon2Params, CryptoError, CryptoProvider, Ed25519Seed,
    X25519Secret,
};
use dime_core::limits::{PASSPHRASE_MAX_LEN, SIGNET_HEADER_LEN};
use dime_core::{CryptoRngCore, Secret};
use zeroize::Zeroizing;

/// Largest key file payload accepted or written (`spec/signet.md` §9.4).
pub const KEYFILE_MAX_PAYLOAD: usize = 64 * 1024;

/// Length of the Argon2id salt of an encrypted key file (`spec/signet.md` §9.3).
pub const KEYFILE_SALT_LEN: usize = 16;

/// Format byte of an encrypted v2 key file: Argon2id (v1.3) then XChaCha20-Poly1305
/// (`spec/signet.md` §9.3).
pub const KEYFILE_FORMAT_ARGON2ID_XCHACHA20POLY1305: u8 = 0x01;

/// Bytes of an encrypted v2 payload before the ciphertext: format, m, t, p, salt, nonce.
pub const KEYFILE_ENCRYPTED_PREFIX_LEN: usize = 1 + 4 + 4 + 4 + KEYFILE_SALT_LEN + AEAD_NONCE_LEN;

/// Why a key file cannot be read or written (`spec/signet.md` §9).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// The input is not binary, base64 or armor of a known object.
    #[error("{0}")]
    Armor(#[from] ArmorError),
    /// The header is broken.
    #[error("{0}")]
    Object(DecodeError),
    /// The magic is not a key file's.
    #[error("magic {0} is not a key file (1952, 2013, 2049, 2050, 2065, 2066)")]
    NotAKeyFile(u16),
    /// A libdime encrypted key file (1947, 1976): its format is not supported.
    #[error(
        "libdime encrypted key files (magic {0}) are not supported; decrypt with libdime first"
    )]
    UnsupportedV1Encrypted(u16),
    /// The payload is larger than [`KEYFILE_MAX_PAYLOAD`].
    #[error("key file payload is larger than {KEYFILE_MAX_PAYLOAD} bytes")]
    TooLarge,
    /// The plaintext layout is broken.
    #[error("key file layout: {0}")]
    Layout(&'static str),
    /// The file is encrypted and no passphrase was given.
    #[error("key file is encrypted: a passphrase is required")]
    PassphraseRequired,
    /// The passphrase is empty or longer than [`PASSPHRASE_MAX_LEN`].
    #[error("passphrase must be 1 to {PASSPHRASE_MAX_LEN} bytes")]
    PassphraseLength,
    /// Unknown format byte of an encrypted file.
    #[error("unknown encrypted key file format {0:#04x}")]
    UnknownFormat(u8),
    /// The stored Argon2id parameters are outside the fixed bounds.
    #[error("{0}")]
    Kdf(CryptoError),
    /// Wrong passphrase, or the file was altered.
    #[error("key file does not decrypt: wrong passphrase or altered file")]
    Decrypt,
    /// An org key file where a user key file was expected, or the reverse.
    #[error("expected a {expected} key file")]
    WrongOwner {
        /// `org` or `user`.
        expected: &'static str,
    },
    /// These keys have no representation in the requested format.
    #[error("keys cannot be written: {0}")]
    NotRepresentable(&'static str),
}

/// The keys a key file holds.
#[derive(Debug)]
pub enum KeySet {
    /// An organisation's keys.
    Org(OrgKeys),
    /// A user's keys.
    User(UserKeys),
}

/// Whether an object (binary, base64 or armor) is an encrypted key file.
pub fn is_encrypted(input: &[u8]) -> Result<bool, KeyFileError> {
    let bin = Zeroizing::new(dearmor_any(input)?);
    let (magic, _) = split_header(&bin).map_err(KeyFileError::Object)?;
    Ok(matches!(
        magic,
        MAGIC_ENCRYPTED_ORG_KEY_V2
            | MAGIC_ENCRYPTED_USER_KEY_V2
            | MAGIC_ENCRYPTED_ORG_KEY
            | MAGIC_ENCRYPTED_USER_KEY
    ))
}

/// Reads a key file of any accepted form (binary, base64, armor; v1 plaintext, v2 plaintext,
/// v2 encrypted). `passphrase` is needed only for an encrypted file.
pub fn read(
    provider: &CryptoProvider,
    input: &[u8],
    passphrase: Option<&[u8]>,
) -> Result<KeySet, KeyFileError> {
    let bin = Zeroizing::new(dearmor_any(input)?);
    let (magic, payload) = split_header(&bin).map_err(KeyFileError::Object)?;
    if payload.len() > KEYFILE_MAX_PAYLOAD {
        return Err(KeyFileError::TooLarge);
    }
    match magic {
        MAGIC_ORG_KEY | MAGIC_ORG_KEY_V2 | MAGIC_USER_KEY | MAGIC_USER_KEY_V2 => {
            parse_plaintext(magic, payload)
        }
        MAGIC_ENCRYPTED_ORG_KEY_V2 | MAGIC_ENCRYPTED_USER_KEY_V2 => {
            let pass = passphrase.ok_or(KeyFileError::PassphraseRequired)?;
            let inner = decrypt(provider, &bin, pass)?;
            let (inner_magic, inner_payload) =
                split_header(&inner).map_err(KeyFileError::Object)?;
            let owner_ok = match magic {
                MAGIC_ENCRYPTED_ORG_KEY_V2 => {
                    matches!(inner_magic, MAGIC_ORG_KEY | MAGIC_ORG_KEY_V2)
                }
                _ => matches!(inner_magic, MAGIC_USER_KEY | MAGIC_USER_KEY_V2),
            };
            if !owner_ok {
                return Err(KeyFileError::Layout("inner key file does not match the outer magic"));
            }
            parse_plaintext(inner_magic, inner_payload)
        }
        MAGIC_ENCRYPTED_ORG_KEY | MAGIC_ENCRYPTED_USER_KEY => {
            Err(KeyFileError::UnsupportedV1Encrypted(magic))
        }
        m => Err(KeyFileError::NotAKeyFile(m)),
    }
}

/// Reads an organisation's key file (see [`read`]).
pub fn read_org(
    provider: &CryptoProvider,
    input: &[u8],
    passphrase: Option<&[u8]>,
) -> Result<OrgKeys, KeyFileError> {
    match read(provider, input, passphrase)? {
        KeySet::Org(k) => Ok(k),
        KeySet::User(_) => Err(KeyFileError::WrongOwner { expected: "org" }),
    }
}

/// Reads a user's key file (see [`read`]).
pub fn read_user(
    provider: &CryptoProvider,
    input: &[u8],
    passphrase: Option<&[u8]>,
) -> Result<UserKeys, KeyFileError> {
    match read(provider, input, passphrase)? {
        KeySet::User(k) => Ok(k),
        KeySet::Org(_) => Err(KeyFileError::WrongOwner { expected: "user" }),
    }
}

/// Splits `[id][len u8][data]` fields; ids must not decrease.
fn tlv8(payload: &[u8]) -> Result<Vec<(u8, &[u8])>, KeyFileError> {
    let mut out = Vec::new();
    let mut rest = payload;
    while let [id, len, tail @ ..] = rest {
        let len = usize::from(*len);
        if tail.len() < len {
            return Err(KeyFileError::Layout("a field runs past the end of the payload"));
        }
        if out.last().is_some_and(|&(prev, _)| prev > *id) {
            return Err(KeyFileError::Layout("field ids must ascend"));
        }
        out.push((*id, &tail[..len]));
        rest = &tail[len..];
    }
    if !rest.is_empty() {
        return Err(KeyFileError::Layout("a field runs past the end of the payload"));
    }
    Ok(out)
}

fn key32(data: &[u8], what: &'static str) -> Result<[u8; 32], KeyFileError> {
    data.try_into().map_err(|_| KeyFileError::Layout(what))
}

fn parse_plaintext(magic: u16, payload: &[u8]) -> Result<KeySet, KeyFileError> {
    let fields = tlv8(payload)?;
    let v2 = matches!(magic, MAGIC_ORG_KEY_V2 | MAGIC_USER_KEY_V2);
    let enc = |data: &[u8]| -> Result<EncryptionSecret, KeyFileError> {
        let k = key32(data, "encryption key must be 32 bytes")?;
        Ok(if v2 {
            EncryptionSecret::X25519(X25519Secret::from_bytes(k))
        } else {
            EncryptionSecret::Secp256k1(Secret::new(k))
        })
    };
    let mut it = fields.into_iter();
    let Some((1, seed)) = it.next() else {
        return Err(KeyFileError::Layout("field 1 (signing key seed) must come first"));
    };
    let seed = Ed25519Seed::from_bytes(key32(seed, "signing key seed must be 32 bytes")?);
    let is_org = matches!(magic, MAGIC_ORG_KEY | MAGIC_ORG_KEY_V2);
    if is_org {
        let mut soks = Vec::new();
        let mut encryption = None;
        for (id, data) in it {
            match (id, &encryption) {
                (2, None) if v2 => {
                    let [perm, rest @ ..] = data else {
                        return Err(KeyFileError::Layout("sok field must be 33 bytes"));
                    };
                    let s = key32(rest, "sok field must be 33 bytes")?;
                    soks.push(SokSecret {
                        permissions: SokPermissions(*perm),
                        seed: Ed25519Seed::from_bytes(s),
                    });
                }
                (3, None) => encryption = Some(enc(data)?),
                _ => {
                    return Err(KeyFileError::Layout(
                        "org key file holds fields 1, 2 (v2 only), 3",
                    ));
                }
            }
        }
        let encryption =
            encryption.ok_or(KeyFileError::Layout("field 3 (encryption key) is missing"))?;
        Ok(KeySet::Org(OrgKeys::from_parts(seed, soks, encryption)))
    } else {
        match (it.next(), it.next()) {
            (Some((2, data)), None) => Ok(KeySet::User(UserKeys::from_parts(seed, enc(data)?))),
            _ => Err(KeyFileError::Layout("user key file holds exactly fields 1 and 2")),
        }
    }
}

fn push_field(out: &mut Vec<u8>, id: u8, parts: &[&[u8]]) {
    out.push(id);
    // Every field written here is 32 or 33 bytes.
    out.push(parts.iter().map(|p| p.len()).sum::<usize>() as u8);
    for p in parts {
        out.extend_from_slice(p);
    }
}

fn finish(magic: u16, payload: Zeroizing<Vec<u8>>) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    if payload.len() > KEYFILE_MAX_PAYLOAD {
        return Err(KeyFileError::TooLarge);
    }
    let mut out = Zeroizing::new(Vec::with_capacity(SIGNET_HEADER_LEN + payload.len()));
    write_header(&mut out, magic, payload.len()).map_err(|_| KeyFileError::TooLarge)?;
    out.extend_from_slice(&payload);
    Ok(out)
}

impl OrgKeys {
    /// The plaintext key file: v2 (magic 2049) for X25519 keys, v1 (1952) for a v1 key set.
    /// **Insecure**: the private keys are written in the clear (`spec/signet.md` §9.2).
    pub fn to_insecure_plaintext_bytes(&self) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
        let v2 = self.encryption_secret().is_v2();
        if !v2 && !self.soks().is_empty() {
            return Err(KeyFileError::NotRepresentable("a v1 org key file cannot hold soks"));
        }
        let mut p = Zeroizing::new(Vec::new());
        push_field(&mut p, 1, &[self.pok_seed().expose()]);
        for s in self.soks() {
            push_field(&mut p, 2, &[&[s.permissions.0], s.seed.expose()]);
        }
        push_field(&mut p, 3, &[self.encryption_secret().expose()]);
        finish(if v2 { MAGIC_ORG_KEY_V2 } else { MAGIC_ORG_KEY }, p)
    }

    /// The encrypted v2 key file (magic 2065) under `passphrase` (`spec/signet.md` §9.3).
    pub fn to_encrypted_bytes(
        &self,
        provider: &CryptoProvider,
        rng: &mut dyn CryptoRngCore,
        passphrase: &[u8],
        params: &Argon2Params,
    ) -> Result<Vec<u8>, KeyFileError> {
        let inner = self.to_insecure_plaintext_bytes()?;
        encrypt(provider, rng, MAGIC_ENCRYPTED_ORG_KEY_V2, &inner, passphrase, params)
    }
}

impl UserKeys {
    /// The plaintext key file: v2 (magic 2050) for X25519 keys, v1 (2013) for a v1 key set.
    /// **Insecure**: the private keys are written in the clear (`spec/signet.md` §9.2).
    pub fn to_insecure_plaintext_bytes(&self) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
        let v2 = self.encryption_secret().is_v2();
        let mut p = Zeroizing::new(Vec::new());
        push_field(&mut p, 1, &[self.signing_seed().expose()]);
        push_field(&mut p, 2, &[self.encryption_secret().expose()]);
        finish(if v2 { MAGIC_USER_KEY_V2 } else { MAGIC_USER_KEY }, p)
    }

    /// The encrypted v2 key file (magic 2066) under `passphrase` (`spec/signet.md` §9.3).
    pub fn to_encrypted_bytes(
        &self,
        provider: &CryptoProvider,
        rng: &mut dyn CryptoRngCore,
        passphrase: &[u8],
        params: &Argon2Params,
    ) -> Result<Vec<u8>, KeyFileError> {
        let inner = self.to_insecure_plaintext_bytes()?;
        encrypt(provider, rng, MAGIC_ENCRYPTED_USER_KEY_V2, &inner, passphrase, params)
    }
}

fn check_passphrase(p: &[u8]) -> Result<(), KeyFileError> {
    if p.is_empty() || p.len() > PASSPHRASE_MAX_LEN {
        return Err(KeyFileError::PassphraseLength);
    }
    Ok(())
}

fn derive_key(
    provider: &CryptoProvider,
    passphrase: &[u8],
    salt: &[u8],
    params: &Argon2Params,
) -> Result<AeadKey, KeyFileError> {
    check_passphrase(passphrase)?;
    params.check().map_err(KeyFileError::Kdf)?;
    let mut k = Secret::new([0u8; 32]);
    provider
        .password_kdf
        .argon2id(passphrase, salt, params, k.expose_mut())
        .map_err(KeyFileError::Kdf)?;
    Ok(AeadKey::from_bytes(*k.expose()))
}

fn encrypt(
    provider: &CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    magic: u16,
    inner: &[u8],
    passphrase: &[u8],
    params: &Argon2Params,
) -> Result<Vec<u8>, KeyFileError> {
    let mut salt = [0u8; KEYFILE_SALT_LEN];
    rng.fill_bytes(&mut salt);
    let mut nonce = [0u8; AEAD_NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let key = derive_key(provider, passphrase, &salt, params)?;
    let payload_len = KEYFILE_ENCRYPTED_PREFIX_LEN + inner.len() + AEAD_TAG_LEN;
    if payload_len > KEYFILE_MAX_PAYLOAD {
        return Err(KeyFileError::TooLarge);
    }
    let mut out = Vec::with_capacity(SIGNET_HEADER_LEN + payload_len);
    write_header(&mut out, magic, payload_len).map_err(|_| KeyFileError::TooLarge)?;
    out.push(KEYFILE_FORMAT_ARGON2ID_XCHACHA20POLY1305);
    for v in [params.m_kib, params.t, params.p] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let mut buf = inner.to_vec();
    provider.aead.seal(&key, &nonce, &out, &mut buf);
    out.extend_from_slice(&buf);
    Ok(out)
}

fn be32(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |acc, &x| acc << 8 | u32::from(x))
}

/// Decrypts a whole encrypted v2 key file (header included) into the inner plaintext file.
fn decrypt(
    provider: &CryptoProvider,
    file: &[u8],
    passphrase: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let aad_len = SIGNET_HEADER_LEN + KEYFILE_ENCRYPTED_PREFIX_LEN;
    if file.len() < aad_len + AEAD_TAG_LEN {
        return Err(KeyFileError::Layout("encrypted key file is shorter than its fixed part"));
    }
    let (aad, ct) = file.split_at(aad_len);
    let prefix = &aad[SIGNET_HEADER_LEN..];
    if prefix[0] != KEYFILE_FORMAT_ARGON2ID_XCHACHA20POLY1305 {
        return Err(KeyFileError::UnknownFormat(prefix[0]));
    }
    let params = Argon2Params {
        m_kib: be32(&prefix[1..5]),
        t: be32(&prefix[5..9]),
        p: be32(&prefix[9..13]),
    };
    let salt = &prefix[13..13 + KEYFILE_SALT_LEN];
    let mut nonce = [0u8; AEAD_NONCE_LEN];
    nonce.copy_from_slice(&prefix[13 + KEYFILE_SALT_LEN..]);
    let key = derive_key(provider, passphrase, salt, &params)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    provider.aead.open(&key, &nonce, aad, &mut buf).map_err(|_| KeyFileError::Decrypt)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dime_testkit::{insecure_provider, seeded_rng};

    const PASS: &[u8] = b"correct horse battery staple";

    #[test]
    fn user_keys_round_trip_encrypted_and_plain() {
        let p = insecure_provider();
        let mut rng = seeded_rng(1);
        let keys = UserKeys::generate(&mut rng);
        let enc = keys.to_encrypted_bytes(p, &mut rng, PASS, &Argon2Params::DEFAULT).unwrap();
        assert_eq!(&enc[..2], &MAGIC_ENCRYPTED_USER_KEY_V2.to_be_bytes());
        assert!(is_encrypted(&enc).unwrap());
        let back = read_user(p, &enc, Some(PASS)).unwrap();
        assert_eq!(back.signing_seed().expose(), keys.signing_seed().expose());
        assert_eq!(back.encryption_secret().expose(), keys.encryption_secret().expose());
        assert_eq!(read(p, &enc, None).unwrap_err(), KeyFileError::PassphraseRequired);
        assert_eq!(read(p, &enc, Some(b"wrong")).unwrap_err(), KeyFileError::Decrypt);
        assert_eq!(
            read_org(p, &enc, Some(PASS)).unwrap_err(),
            KeyFileError::WrongOwner { expected: "org" }
        );
        let plain = keys.to_insecure_plaintext_bytes().unwrap();
        assert_eq!(plain.len(), 5 + 68);
        assert!(!is_encrypted(&plain).unwrap());
        assert!(read_user(p, &plain, None).unwrap().encryption_secret().is_v2());
    }

    #[test]
    fn org_keys_with_soks_round_trip() {
        let p = insecure_provider();
        let mut rng = seeded_rng(2);
        let mut keys = OrgKeys::generate(&mut rng);
        keys.add_sok(&mut rng, SokPermissions::SIGNET | SokPermissions::TLS);
        let armored = crate::armor::encode(
            &keys.to_encrypted_bytes(p, &mut rng, PASS, &Argon2Params::DEFAULT).unwrap(),
        )
        .unwrap();
        assert!(armored.starts_with("-----BEGIN ENCRYPTED ORGANIZATIONAL KEY-----"));
        let back = read_org(p, armored.as_bytes(), Some(PASS)).unwrap();
        assert_eq!(back.soks().len(), 1);
        assert_eq!(back.soks()[0].permissions, SokPermissions(5));
        assert_eq!(back.pok(p), keys.pok(p));
    }

    #[test]
    fn tampering_and_hostile_params_are_refused() {
        let p = insecure_provider();
        let mut rng = seeded_rng(3);
        let keys = UserKeys::generate(&mut rng);
        let enc = keys.to_encrypted_bytes(p, &mut rng, PASS, &Argon2Params::DEFAULT).unwrap();
        let mut flipped = enc.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(read(p, &flipped, Some(PASS)).unwrap_err(), KeyFileError::Decrypt);
        let mut huge = enc.clone();
        huge[6..10].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(read(p, &huge, Some(PASS)).unwrap_err(), KeyFileError::Kdf(_)));
        let mut fmt = enc.clone();
        fmt[5] = 9;
        assert_eq!(read(p, &fmt, Some(PASS)).unwrap_err(), KeyFileError::UnknownFormat(9));
        assert_eq!(
            keys.to_encrypted_bytes(p, &mut rng, b"", &Argon2Params::DEFAULT).unwrap_err(),
            KeyFileError::PassphraseLength
        );
        assert_eq!(
            read(p, &[0x07, 0x9B, 0, 0, 0], None).unwrap_err(),
            KeyFileError::UnsupportedV1Encrypted(1947)
        );
    }

    #[test]
    fn plaintext_layout_errors() {
        let mut f = vec![0x08, 0x02, 0, 0, 34, 1, 32];
        f.extend([1u8; 32]);
        assert!(matches!(read(insecure_provider(), &f, None), Err(KeyFileError::Layout(_))));
        let short = [0x08, 0x02, 0, 0, 3, 1, 32, 0];
        assert!(matches!(read(insecure_provider(), &short, None), Err(KeyFileError::Layout(_))));
    }
}
