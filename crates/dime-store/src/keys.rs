//! Key wrapping and sessions (`spec/storage.md` §6).

use crate::codec::{Dec, Enc};
use crate::{AccountId, SessionExpired, StoreError, Timestamp};
use dime_core::crypto::Ed25519Seed;
use dime_core::crypto::{AEAD_NONCE_LEN, AeadKey, CryptoProvider, X25519Secret};
use dime_core::{CryptoRngCore, Mailbox, Secret};
use dime_signet::{EncryptionSecret, UserKeys};
use zeroize::Zeroizing;

/// Octets of an Argon2id salt.
pub(crate) const SALT_LEN: usize = 16;

/// HKDF-SHA-512 of `ikm` into a 32-octet AEAD key, salted with `salt`, `info` concatenated.
pub(crate) fn derive(
    p: &CryptoProvider,
    salt: &[u8],
    ikm: &[u8],
    info: &[&[u8]],
) -> Result<AeadKey, StoreError> {
    let info: Vec<u8> = info.concat();
    let mut out = Secret::new([0u8; 32]);
    p.kdf.hkdf_sha512(salt, ikm, &info, out.expose_mut())?;
    Ok(AeadKey::from_bytes(*out.expose()))
}

/// The salt of every key-encryption key bound to this server: pepper ‖ shredding key.
pub(crate) fn server_salt(pepper: &[u8], shred: &[u8; 32]) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(Vec::with_capacity(pepper.len() + 32));
    v.extend_from_slice(pepper);
    v.extend_from_slice(shred);
    v
}

/// AEAD-seals `plaintext`: nonce ‖ ciphertext ‖ tag.
pub(crate) fn seal(
    p: &CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    key: &AeadKey,
    aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let mut nonce = [0u8; AEAD_NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    seal_with_nonce(p, &nonce, key, aad, plaintext)
}

/// [`seal`] with a nonce drawn before (by the caller that holds the randomness).
pub(crate) fn seal_with_nonce(
    p: &CryptoProvider,
    nonce: &[u8; AEAD_NONCE_LEN],
    key: &AeadKey,
    aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let mut buf = plaintext.to_vec();
    p.aead.seal(key, nonce, aad, &mut buf);
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    buf.iter_mut().for_each(|b| *b = 0);
    out
}

/// Opens what [`seal`] made.
pub(crate) fn open(
    p: &CryptoProvider,
    key: &AeadKey,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let (n, ct) = sealed
        .split_at_checked(AEAD_NONCE_LEN)
        .ok_or(StoreError::Crypto(dime_core::crypto::CryptoError::Decrypt))?;
    let nonce: [u8; AEAD_NONCE_LEN] =
        n.try_into().map_err(|_| StoreError::Crypto(dime_core::crypto::CryptoError::Decrypt))?;
    let mut buf = Zeroizing::new(ct.to_vec());
    p.aead.open(key, &nonce, aad, &mut buf)?;
    Ok(buf)
}

/// Purposes of keys derived from the account key.
pub(crate) fn account_subkey(
    p: &CryptoProvider,
    account_key: &Secret<[u8; 32]>,
    account: AccountId,
    purpose: &[u8],
) -> Result<AeadKey, StoreError> {
    derive(p, b"dime-store account", account_key.expose(), &[purpose, &account.0])
}

/// One generation of a user's keys.
#[derive(Debug)]
pub(crate) struct KeyringEntry {
    pub(crate) generation: u32,
    pub(crate) keys: UserKeys,
}

/// The keyring plaintext: u32 count, then (u32 generation, 32-octet Ed25519 seed, 32-octet
/// X25519 secret) per entry, oldest first.
pub(crate) fn encode_keyring(ring: &[KeyringEntry]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let mut e = Enc::new().u32(u32::try_from(ring.len()).unwrap_or(u32::MAX));
    for k in ring {
        let EncryptionSecret::X25519(x) = k.keys.encryption_secret() else {
            return Err(StoreError::NotV2Keys);
        };
        e = e.u32(k.generation).raw(k.keys.signing_seed().expose()).raw(x.expose());
    }
    Ok(Zeroizing::new(e.finish()))
}

/// Most generations a keyring holds.
pub(crate) const MAX_KEYRING: u32 = 4096;

pub(crate) fn decode_keyring(b: &[u8]) -> Result<Vec<KeyringEntry>, StoreError> {
    let mut d = Dec::new(b, "keyring");
    let n = d.u32()?;
    if n == 0 || n > MAX_KEYRING {
        return Err(StoreError::Corrupt { what: "keyring" });
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let generation = d.u32()?;
        let seed = Ed25519Seed::from_bytes(d.array::<32>()?);
        let x = X25519Secret::from_bytes(d.array::<32>()?);
        out.push(KeyringEntry {
            generation,
            keys: UserKeys::from_parts(seed, EncryptionSecret::X25519(x)),
        });
    }
    d.finish()?;
    Ok(out)
}

/// A login session: the unwrapped account key and the keyring, in memory only.
///
/// Everything secret in it is zeroized when it is dropped or when it expires. Every operation
/// that uses it first calls [`Session::touch`] with the current time: a session idle longer
/// than the store's idle timeout is expired for good.
pub struct Session {
    pub(crate) account: AccountId,
    pub(crate) address: Mailbox,
    pub(crate) account_key: Secret<[u8; 32]>,
    pub(crate) meta_key: AeadKey,
    /// Seals read-key overlays (`spec/storage.md` §6.6).
    pub(crate) read_key: AeadKey,
    pub(crate) keyring: Vec<KeyringEntry>,
    pub(crate) last_active: Timestamp,
    pub(crate) idle_timeout_secs: u64,
    pub(crate) expired: bool,
}

/// What opening messages for display takes from a session (`spec/storage.md` §6.6): its
/// account and a copy of its read key, zeroized on drop. Taken for one command with
/// [`Session::display_key`], so that several threads open the messages of a FETCH at once while
/// the session stays with its connection; it checks no idle timeout of its own.
pub struct DisplayKey {
    pub(crate) account: AccountId,
    pub(crate) read_key: AeadKey,
}

impl DisplayKey {
    /// An explicit copy, for another thread.
    pub fn duplicate(&self) -> DisplayKey {
        DisplayKey { account: self.account, read_key: self.read_key.duplicate() }
    }
}

impl std::fmt::Debug for DisplayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DisplayKey").field("account", &self.account).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("account", &self.account)
            .field("generations", &self.keyring.len())
            .field("expired", &self.expired)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The account this session opened.
    pub fn account(&self) -> AccountId {
        self.account
    }

    /// The account's address.
    pub fn address(&self) -> &Mailbox {
        &self.address
    }

    /// The key to open this session's messages for display with, after
    /// [`Session::touch`] at `now`.
    ///
    /// # Errors
    /// [`SessionExpired`] as [`Session::touch`].
    pub fn display_key(&mut self, now: Timestamp) -> Result<DisplayKey, SessionExpired> {
        self.touch(now)?;
        Ok(DisplayKey { account: self.account, read_key: self.read_key.duplicate() })
    }

    /// Marks activity at `now`; fails (and wipes the keys) once the session has been idle
    /// longer than the idle timeout.
    pub fn touch(&mut self, now: Timestamp) -> Result<(), SessionExpired> {
        if self.expired || now.0.saturating_sub(self.last_active.0) > self.idle_timeout_secs {
            self.expire();
            return Err(SessionExpired);
        }
        self.last_active = self.last_active.max(now);
        Ok(())
    }

    /// Ends the session now: the keys are zeroized.
    pub fn expire(&mut self) {
        self.expired = true;
        self.keyring.clear();
        *self.account_key.expose_mut() = [0u8; 32];
        self.meta_key = AeadKey::from_bytes([0u8; 32]);
        self.read_key = AeadKey::from_bytes([0u8; 32]);
    }

    /// The current (newest) keys.
    pub fn current_keys(&self) -> Option<&UserKeys> {
        self.keyring.last().map(|k| &k.keys)
    }

    /// The current key generation.
    pub fn current_generation(&self) -> Option<u32> {
        self.keyring.last().map(|k| k.generation)
    }

    /// The keys of one generation (older generations open older mail).
    pub fn keys_for_generation(&self, generation: u32) -> Option<&UserKeys> {
        self.keyring.iter().find(|k| k.generation == generation).map(|k| &k.keys)
    }

    /// Every generation's keys, oldest first.
    pub fn keyring(&self) -> impl Iterator<Item = (u32, &UserKeys)> + '_ {
        self.keyring.iter().map(|k| (k.generation, &k.keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_round_trips_and_refuses_empty() {
        let mut rng = dime_testkit::seeded_rng(1);
        let ring = vec![
            KeyringEntry { generation: 0, keys: UserKeys::generate(&mut rng) },
            KeyringEntry { generation: 1, keys: UserKeys::generate(&mut rng) },
        ];
        let b = encode_keyring(&ring).unwrap();
        let back = decode_keyring(&b).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].keys.signing_seed().expose(), ring[1].keys.signing_seed().expose());
        assert!(decode_keyring(&0u32.to_be_bytes()).is_err());
        // At most MAX_KEYRING generations.
        let most: Vec<KeyringEntry> = (0..MAX_KEYRING)
            .map(|g| KeyringEntry {
                generation: g,
                keys: UserKeys::from_parts(
                    Ed25519Seed::from_bytes([1; 32]),
                    EncryptionSecret::X25519(X25519Secret::from_bytes([2; 32])),
                ),
            })
            .collect();
        let b = encode_keyring(&most).unwrap();
        assert_eq!(decode_keyring(&b).unwrap().len(), MAX_KEYRING as usize);
        let mut over = b.to_vec();
        over[..4].copy_from_slice(&(MAX_KEYRING + 1).to_be_bytes());
        over.extend_from_slice(&b[4..4 + 68]);
        assert!(decode_keyring(&over).is_err());
        assert!(decode_keyring(&b[..b.len() - 1]).is_err());
    }

    #[test]
    fn seal_open_binds_aad() {
        let p = dime_core::crypto::default_provider();
        let mut rng = dime_testkit::seeded_rng(2);
        let k = AeadKey::from_bytes([7; 32]);
        let s = seal(p, &mut rng, &k, b"a", b"secret");
        assert_eq!(&open(p, &k, b"a", &s).unwrap()[..], b"secret");
        assert!(open(p, &k, b"b", &s).is_err());
        assert!(open(p, &k, b"a", &s[..10]).is_err());
    }
}
