//! `dime-signet`: DIME signets and the `_dx` DNS management record.
//!
//! What it is: the signet container and TLV codec (byte-compatible with DIME's magma 2016-11
//! dialect, plus v2 signets with X25519 encryption keys), the validation ladder, fingerprints,
//! armor with the OpenPGP CRC-24, creation and signing of org signets, SSRs and user signets
//! (with SOKs and key rotation), and private key files (v1 read, v2 written encrypted). The
//! normative description is `spec/signet.md`; the `record` module implements
//! `spec/dns-record.md`.
//!
//! What it is not: a resolver or a store. It performs no I/O, reads no clock and draws no
//! ambient randomness: every crypto operation goes through a caller's
//! [`CryptoProvider`](dime_core::crypto::CryptoProvider), and randomness is an
//! `rng: &mut dyn CryptoRngCore` parameter.
//!
//! ```
//! use dime_signet::{create_org_signet, OrgKeys, Profile, SignetState, Verifier};
//! let provider = dime_core::crypto::default_provider();
//! # let mut rng = dime_testkit::seeded_rng(7);
//! let keys = OrgKeys::generate(&mut rng);
//! let domain = "example.com".parse().unwrap();
//! let signet = create_org_signet(provider, &keys, &domain, &Profile::new()).unwrap();
//! let v = signet.validate(provider, &Verifier::new());
//! assert_eq!(v.state(), SignetState::Id);
//! ```

pub mod armor;
pub mod codec;
mod create;
pub mod fields;
pub mod keyfile;
mod keys;
pub mod record;
mod signet;
mod validate;

pub use armor::{ArmorError, dearmor_any};
pub use codec::{DecodeError, EncodeError, Field, FieldData};
pub use create::{
    CreateError, OrgSigner, Profile, create_org_signet, create_rotation_ssr, create_ssr,
    sign_user_signet,
};
pub use fields::{FieldInfo, SignetKind};
pub use keyfile::{KeyFileError, KeySet};
pub use keys::{
    ED25519_KEY_FORMAT, EncryptionKey, EncryptionSecret, KeyFormatError, OrgKeys, Sok,
    SokPermissions, SokSecret, UserKeys, X25519_KEY_FORMAT, encode_signing_key, parse_signing_key,
};
pub use signet::{FieldError, FingerprintKind, Identifier, Signet};
pub use validate::{Problem, SignetState, Validation, Verifier, validate_bytes};

/// Magic of a signet signing request (`spec/signet.md` §2).
pub const MAGIC_SSR: u16 = 1215;
/// Magic of an organizational signet (`spec/signet.md` §2).
pub const MAGIC_ORG_SIGNET: u16 = 1776;
/// Magic of a user signet (`spec/signet.md` §2).
pub const MAGIC_USER_SIGNET: u16 = 1789;
/// Magic of a v1 (libdime) plaintext org key file (`spec/signet.md` §9.1).
pub const MAGIC_ORG_KEY: u16 = 1952;
/// Magic of a v1 (libdime) plaintext user key file (`spec/signet.md` §9.1).
pub const MAGIC_USER_KEY: u16 = 2013;
/// Magic of a libdime encrypted org key file: recognised, not supported (`spec/signet.md` §9.1).
pub const MAGIC_ENCRYPTED_ORG_KEY: u16 = 1947;
/// Magic of a libdime encrypted user key file: recognised, not supported (`spec/signet.md` §9.1).
pub const MAGIC_ENCRYPTED_USER_KEY: u16 = 1976;
/// Magic of a v2 plaintext org key file, 0x0801 (`spec/signet.md` §9.2).
pub const MAGIC_ORG_KEY_V2: u16 = 2049;
/// Magic of a v2 plaintext user key file, 0x0802 (`spec/signet.md` §9.2).
pub const MAGIC_USER_KEY_V2: u16 = 2050;
/// Magic of a v2 encrypted org key file, 0x0811 (`spec/signet.md` §9.3).
pub const MAGIC_ENCRYPTED_ORG_KEY_V2: u16 = 2065;
/// Magic of a v2 encrypted user key file, 0x0812 (`spec/signet.md` §9.3).
pub const MAGIC_ENCRYPTED_USER_KEY_V2: u16 = 2066;

/// Any object this crate reads: a signet or a key file (`spec/signet.md` §8).
#[derive(Debug)]
pub enum Object {
    /// A signet (SSR, org, user).
    Signet(Signet),
    /// A plaintext key file (v1 or v2); call [`keyfile::read`] for the keys.
    KeyFile(Vec<u8>),
    /// An encrypted key file; call [`keyfile::read`] with a passphrase.
    EncryptedKeyFile(Vec<u8>),
}

/// Why [`decode_any`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnyError {
    /// Not binary, base64 or armor of a known object.
    #[error("{0}")]
    Armor(#[from] ArmorError),
    /// A signet whose container is broken.
    #[error("{0}")]
    Signet(#[from] DecodeError),
}

/// Decodes binary, bare base64 or armored input of any known object (`spec/signet.md` §8).
/// A key file is returned as bytes (its magic and header are checked); nothing is decrypted.
pub fn decode_any(input: &[u8]) -> Result<Object, AnyError> {
    let bin = dearmor_any(input)?;
    let (magic, _) = codec::split_header(&bin)?;
    Ok(match magic {
        MAGIC_SSR | MAGIC_ORG_SIGNET | MAGIC_USER_SIGNET => Object::Signet(Signet::decode(&bin)?),
        MAGIC_ENCRYPTED_ORG_KEY
        | MAGIC_ENCRYPTED_USER_KEY
        | MAGIC_ENCRYPTED_ORG_KEY_V2
        | MAGIC_ENCRYPTED_USER_KEY_V2 => Object::EncryptedKeyFile(bin),
        _ => Object::KeyFile(bin),
    })
}
