//! Actor keys from signets and key sets (`spec/envelope.md` §4, `spec/signet.md` §4.3).
//!
//! These adapters read keys; they do not judge trust. Give [`ActorKeys::from_signet`] only a
//! signet that has been validated (`Signet::validate`) and authenticated (key discovery).

use crate::format::MAX_SIGNER_KEYS;
use crate::seal::{ActorKeys, ActorSecret};
use dime_core::crypto::{CryptoProvider, Ed25519PublicKey};
use dime_signet::{
    EncryptionKey, EncryptionSecret, FieldError, OrgKeys, Signet, SokPermissions, UserKeys,
    Verifier,
};

/// Why a signet or key set cannot serve as an actor's envelope keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActorKeyError {
    /// The signet's signing key (field 1) is missing or malformed.
    #[error("signet has no usable signing key: {0}")]
    SigningKey(FieldError),
    /// The signet's encryption key (org field 3, user field 2) is missing or malformed.
    #[error("signet has no usable encryption key: {0}")]
    EncryptionKey(FieldError),
    /// A v1 (secp256k1) encryption key: carried by DIME v1 signets, never used to encrypt.
    #[error("a v1 (secp256k1) encryption key cannot seal v2 envelopes")]
    V1EncryptionKey,
}

impl ActorKeys {
    /// The actor keys a (validated) org or user signet publishes: field 1 verifies the actor's
    /// signatures, the X25519 encryption key receives its key slots.
    pub fn from_signet(signet: &Signet) -> Result<ActorKeys, ActorKeyError> {
        let signing = signet.signing_key().map_err(ActorKeyError::SigningKey)?;
        match signet.encryption_key().map_err(ActorKeyError::EncryptionKey)? {
            EncryptionKey::X25519(encryption) => Ok(ActorKeys { encryption, signing }),
            EncryptionKey::Secp256k1(_) => Err(ActorKeyError::V1EncryptionKey),
        }
    }
}

/// The keys that may make an origin's signatures (`spec/envelope.md` §7.6): the org signet's
/// POK, then each secondary organisational key whose permissions allow messages (bit 1), in
/// field order, at most [`MAX_SIGNER_KEYS`] in all. Give it a validated, authenticated org
/// signet. A malformed SOK field leaves the set at the POK (such a signet is malformed).
pub fn origin_signing_keys(org: &Signet) -> Result<Vec<Ed25519PublicKey>, ActorKeyError> {
    let mut keys = vec![org.signing_key().map_err(ActorKeyError::SigningKey)?];
    let soks = org.soks().unwrap_or_default();
    keys.extend(
        soks.iter()
            .filter(|s| s.permissions.contains(SokPermissions::MESSAGE))
            .map(|s| s.key)
            .take(MAX_SIGNER_KEYS - 1),
    );
    Ok(keys)
}

/// The keys that may have made an author's signatures (`spec/envelope.md` §7.6): `chain` is
/// the author's signets, oldest first, the current one last, each already validated as a user
/// signet of the author's organisation. The set is the current signet's key then, walking
/// back, each earlier signet's key while the next signet's custody signature (field 4)
/// verifies under it (`spec/signet.md` §5.4, §6 step 4); it stops at the first break (a signet
/// without a custody signature, or one that does not verify), and keeps at most
/// [`MAX_SIGNER_KEYS`], newest first. An empty chain gives an empty set.
pub fn author_signing_keys(
    p: &CryptoProvider,
    chain: &[Signet],
) -> Result<Vec<Ed25519PublicKey>, ActorKeyError> {
    let Some(current) = chain.last() else {
        return Ok(Vec::new());
    };
    let mut keys = vec![current.signing_key().map_err(ActorKeyError::SigningKey)?];
    for pair in chain.windows(2).rev() {
        let [previous, next] = pair else { break };
        if keys.len() == MAX_SIGNER_KEYS {
            break;
        }
        // Step 4 of the ladder alone decides: the signets were validated by the caller.
        if !next.validate(p, &Verifier::new().previous(previous)).custody_checked() {
            break;
        }
        let Ok(key) = previous.signing_key() else { break };
        keys.push(key);
    }
    Ok(keys)
}

fn secret_of(p: &CryptoProvider, s: &EncryptionSecret) -> Result<ActorSecret, ActorKeyError> {
    match s {
        EncryptionSecret::X25519(x) => Ok(ActorSecret::new(p, x.duplicate())),
        EncryptionSecret::Secp256k1(_) => Err(ActorKeyError::V1EncryptionKey),
    }
}

impl ActorSecret {
    /// The opening key of a user's key set (its X25519 encryption secret).
    pub fn from_user_keys(
        p: &CryptoProvider,
        keys: &UserKeys,
    ) -> Result<ActorSecret, ActorKeyError> {
        secret_of(p, keys.encryption_secret())
    }

    /// The opening key of an organisation's key set: the origin's or destination's key.
    pub fn from_org_keys(p: &CryptoProvider, keys: &OrgKeys) -> Result<ActorSecret, ActorKeyError> {
        secret_of(p, keys.encryption_secret())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dime_core::crypto::default_provider;
    use dime_signet::{OrgSigner, Profile, create_org_signet, create_ssr, sign_user_signet};

    #[test]
    fn signet_keys_match_key_sets() {
        let p = default_provider();
        let mut rng = dime_testkit::seeded_rng(9);
        let org = OrgKeys::generate(&mut rng);
        let org_signet =
            create_org_signet(p, &org, &"example.com".parse().unwrap(), &Profile::new()).unwrap();
        let user = UserKeys::generate(&mut rng);
        let ssr = create_ssr(p, &user).unwrap();
        let mailbox = "a@example.com".parse().unwrap();
        let user_signet =
            sign_user_signet(p, &org, OrgSigner::Pok, &ssr, &mailbox, &Profile::new()).unwrap();

        let ok = ActorKeys::from_signet(&org_signet).unwrap();
        assert_eq!(ok.signing, org.pok(p));
        assert_eq!(&ok.encryption, ActorSecret::from_org_keys(p, &org).unwrap().public());
        let uk = ActorKeys::from_signet(&user_signet).unwrap();
        assert_eq!(uk.signing, user.signing_key(p));
        assert_eq!(&uk.encryption, ActorSecret::from_user_keys(p, &user).unwrap().public());
        assert_eq!(ActorKeys::from_signet(&ssr).unwrap(), uk);
    }

    #[test]
    fn v1_signets_cannot_seal() {
        let b64 = include_str!("../../../spec/vectors/dime-v1/org-signet.b64");
        let v1 = Signet::decode_any(b64.trim().as_bytes()).unwrap();
        assert_eq!(ActorKeys::from_signet(&v1), Err(ActorKeyError::V1EncryptionKey));
    }
}
