//! Creating and signing signets (`spec/signet.md` §5): org signets, SSRs, user signets and
//! rotations. Every signature goes through the caller's [`CryptoProvider`].

use crate::codec::{EncodeError, FieldData, encode_payload};
use crate::fields::{Definition, SignetKind, field_info};
use crate::keys::{OrgKeys, SokPermissions, UserKeys, encode_signing_key};
use crate::signet::Signet;
use crate::validate::{SignetState, Validation, Verifier};
use dime_core::crypto::{CryptoProvider, Ed25519Seed};
use dime_core::{Domain, Mailbox};

/// Why a signet could not be created (`spec/signet.md` §5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The fields break a container rule (e.g. a profile value too long for its width).
    #[error("{0}")]
    Encode(#[from] EncodeError),
    /// A profile field id is not a profile field of this kind (16-252, not reserved).
    #[error("field {0} is not a profile field of this signet kind")]
    NotAProfileField(u8),
    /// A key set has no v2 (X25519) encryption key: new signets are v2.
    #[error("new signets are v2: the key set has no x25519 encryption key")]
    NotV2,
    /// The chosen SOK does not exist.
    #[error("no secondary organizational key with index {0}")]
    NoSuchSok(usize),
    /// The chosen SOK lacks the signet permission.
    #[error("secondary organizational key {0} lacks the signet permission (bit 1)")]
    SokLacksSignetPermission(usize),
    /// The SSR to sign is not a valid SSR.
    #[error("signing request is not valid: state {:?}", .0.state())]
    InvalidSsr(Validation),
}

/// Optional profile fields (ids 16-252) for a new signet (`spec/signet.md` §4). Fields are
/// kept in ascending id order; equal ids keep the order they were added in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    fields: Vec<FieldData>,
}

impl Profile {
    /// No profile fields.
    pub fn new() -> Profile {
        Profile::default()
    }

    /// Adds field `id` with `data` (a profile field: 16-250 or 252).
    pub fn with(mut self, id: u8, data: impl Into<Vec<u8>>) -> Profile {
        self.fields.push(FieldData::new(id, data));
        self
    }

    /// Adds a named field 251.
    pub fn with_named(mut self, name: impl Into<Vec<u8>>, data: impl Into<Vec<u8>>) -> Profile {
        self.fields.push(FieldData::named(name, data));
        self
    }

    /// The fields, sorted by id.
    pub fn fields(&self) -> Vec<FieldData> {
        let mut f = self.fields.clone();
        f.sort_by_key(|f| f.id);
        f
    }

    fn checked(&self, kind: SignetKind) -> Result<Vec<FieldData>, CreateError> {
        let fields = self.fields();
        for f in &fields {
            let reserved = field_info(kind, f.id).definition == Definition::Reserved;
            if !(16..=252).contains(&f.id) || reserved {
                return Err(CreateError::NotAProfileField(f.id));
            }
        }
        Ok(fields)
    }
}

/// Appends signature field `id` by `seed` over the payload so far.
fn push_signature(
    provider: &CryptoProvider,
    kind: SignetKind,
    fields: &mut Vec<FieldData>,
    id: u8,
    seed: &Ed25519Seed,
) -> Result<(), CreateError> {
    let msg = encode_payload(kind, fields)?;
    let sig = provider.signature.sign(seed, &msg);
    fields.push(FieldData::new(id, sig.0.to_vec()));
    Ok(())
}

fn v2_encryption_field(
    provider: &CryptoProvider,
    secret: &crate::keys::EncryptionSecret,
    id: u8,
) -> Result<FieldData, CreateError> {
    if !secret.is_v2() {
        return Err(CreateError::NotV2);
    }
    let key = secret.public_key(provider).ok_or(CreateError::NotV2)?;
    Ok(FieldData::new(id, key.to_bytes().to_vec()))
}

/// Creates a v2 org signet: fields 1 (POK), 2 (each SOK), 3 (X25519 key), 4, the profile,
/// 253, 254 (`domain`), 255; every signature by the POK (`spec/signet.md` §5.1).
pub fn create_org_signet(
    provider: &CryptoProvider,
    keys: &OrgKeys,
    domain: &Domain,
    profile: &Profile,
) -> Result<Signet, CreateError> {
    let kind = SignetKind::Org;
    let mut fields = vec![FieldData::new(1, encode_signing_key(&keys.pok(provider)).to_vec())];
    for sok in keys.public_soks(provider) {
        fields.push(FieldData::new(2, sok.to_bytes().to_vec()));
    }
    fields.push(v2_encryption_field(provider, keys.encryption_secret(), 3)?);
    push_signature(provider, kind, &mut fields, 4, keys.pok_seed())?;
    fields.extend(profile.checked(kind)?);
    push_signature(provider, kind, &mut fields, 253, keys.pok_seed())?;
    fields.push(FieldData::new(254, domain.as_str().as_bytes().to_vec()));
    push_signature(provider, kind, &mut fields, 255, keys.pok_seed())?;
    Ok(Signet::from_fields(kind, &fields)?)
}

/// Creates a v2 SSR: fields 1, 2 and 5 (by the user's own key) (`spec/signet.md` §5.2).
pub fn create_ssr(provider: &CryptoProvider, keys: &UserKeys) -> Result<Signet, CreateError> {
    ssr_with_custody(provider, keys, None)
}

/// Creates a rotation SSR for `new_keys`: fields 1, 2, 4 (custody: signed by the previous
/// signing key over fields 1-2) and 5 (`spec/signet.md` §5.4).
pub fn create_rotation_ssr(
    provider: &CryptoProvider,
    new_keys: &UserKeys,
    previous: &UserKeys,
) -> Result<Signet, CreateError> {
    ssr_with_custody(provider, new_keys, Some(previous))
}

fn ssr_with_custody(
    provider: &CryptoProvider,
    keys: &UserKeys,
    previous: Option<&UserKeys>,
) -> Result<Signet, CreateError> {
    let kind = SignetKind::Ssr;
    let mut fields = vec![
        FieldData::new(1, encode_signing_key(&keys.signing_key(provider)).to_vec()),
        v2_encryption_field(provider, keys.encryption_secret(), 2)?,
    ];
    if let Some(prev) = previous {
        push_signature(provider, kind, &mut fields, 4, prev.signing_seed())?;
    }
    push_signature(provider, kind, &mut fields, 5, keys.signing_seed())?;
    Ok(Signet::from_fields(kind, &fields)?)
}

/// Which org key signs a user signet (`spec/signet.md` §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgSigner {
    /// The POK.
    Pok,
    /// The SOK at this index of [`OrgKeys::soks`]; it must have the signet permission.
    Sok(usize),
}

/// The organisation signs an SSR into a user signet: the SSR's fields 1-5, then 6, the
/// profile, 253, 254 (`mailbox`) and 255, each by the chosen org key (`spec/signet.md` §5.3).
/// The SSR must validate as an SSR first.
pub fn sign_user_signet(
    provider: &CryptoProvider,
    org: &OrgKeys,
    signer: OrgSigner,
    ssr: &Signet,
    mailbox: &Mailbox,
    profile: &Profile,
) -> Result<Signet, CreateError> {
    let seed = match signer {
        OrgSigner::Pok => org.pok_seed(),
        OrgSigner::Sok(i) => {
            let sok = org.soks().get(i).ok_or(CreateError::NoSuchSok(i))?;
            if !sok.permissions.contains(SokPermissions::SIGNET) {
                return Err(CreateError::SokLacksSignetPermission(i));
            }
            &sok.seed
        }
    };
    if ssr.kind() != SignetKind::Ssr {
        return Err(CreateError::InvalidSsr(Validation::from_decode_error(
            crate::codec::DecodeError::WrongKind { expected: "ssr", found: ssr.kind().name() },
        )));
    }
    let v = ssr.validate(provider, &Verifier::new());
    if v.state() != SignetState::Ssr {
        return Err(CreateError::InvalidSsr(v));
    }
    let kind = SignetKind::User;
    let mut fields = ssr.field_data();
    push_signature(provider, kind, &mut fields, 6, seed)?;
    fields.extend(profile.checked(kind)?);
    push_signature(provider, kind, &mut fields, 253, seed)?;
    fields.push(FieldData::new(254, mailbox.to_string().into_bytes()));
    push_signature(provider, kind, &mut fields, 255, seed)?;
    Ok(Signet::from_fields(kind, &fields)?)
}
