//! The validation ladder (`spec/signet.md` §6).

use crate::codec::DecodeError;
use crate::fields::SignetKind;
use crate::keys::SokPermissions;
use crate::signet::{FieldError, Identifier, Signet};
use dime_core::crypto::{CryptoProvider, Ed25519PublicKey};

/// The states of the validation ladder, weakest first (`spec/signet.md` §6). Compare them:
/// `state >= SignetState::Crypto` means "at least a verified crypto signet".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignetState {
    /// A container, field or content rule is broken.
    Malformed,
    /// A length runs past the end of the object.
    Overflow,
    /// A required field is missing, or fields are not covered by a signature.
    Incomplete,
    /// A rotation's custody signature (field 4) is missing or does not verify under the
    /// previous signing key.
    BrokenChainOfCustody,
    /// A signature does not verify.
    Invalid,
    /// A valid signing request (or a user signet whose organisation was not checked).
    Ssr,
    /// Valid through the crypto signature (org 4, user 6).
    Crypto,
    /// Valid through the full signature 253.
    Full,
    /// Valid through the identifiable signature 255: the strongest state.
    Id,
}

/// Why a signet stopped where it did on the ladder (`spec/signet.md` §6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The bytes are not a signet container.
    #[error("{0}")]
    Decode(DecodeError),
    /// A field's content is not of its defined form.
    #[error("{0}")]
    Field(FieldError),
    /// Fields follow the last signature and no signature covers them.
    #[error("fields after field {after} are not covered by a signature")]
    Unsigned {
        /// The last signature field present (or 0 if none).
        after: u8,
    },
    /// Field 254 and 255 must come together.
    #[error("identifier 254 and identifiable signature 255 must both be present")]
    IdentifierWithoutSignature,
    /// A previous signet was given but this one carries no custody signature 4.
    #[error("rotation has no custody signature (field 4)")]
    NoCustodySignature,
    /// The custody signature 4 does not verify under the previous signing key.
    #[error("custody signature (field 4) does not verify under the previous signing key")]
    CustodyFails,
    /// A signature field does not verify under any key allowed to make it.
    #[error("signature field {0} does not verify under an allowed key")]
    BadSignature(u8),
    /// An org signet's POK is not among the trusted POKs given (e.g. from DNS).
    #[error("primary organizational key is not among the trusted keys")]
    UntrustedPok,
    /// A user signet's mailbox domain differs from its org signet's domain.
    #[error("user signet domain differs from the org signet domain")]
    DomainMismatch,
    /// No org signet or key was given, so the org signatures of a user signet were not
    /// checked: the state stops at `Ssr`.
    #[error("no organisation key given: org signatures 6, 253 and 255 not checked")]
    OrgNotGiven,
}

/// The result of validating a signet: its state on the ladder and, below the state it could
/// have reached, the reason. A trust result: it must be looked at.
#[must_use = "a validation result says whether the signet can be trusted"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    state: SignetState,
    problem: Option<Problem>,
    signed_by: Option<Ed25519PublicKey>,
    custody_checked: bool,
}

impl Validation {
    fn fail(state: SignetState, problem: Problem) -> Validation {
        Validation { state, problem: Some(problem), signed_by: None, custody_checked: false }
    }

    /// The ladder state reached.
    pub fn state(&self) -> SignetState {
        self.state
    }

    /// Why the ladder stopped below `Id` (if it was not simply the signet's own level).
    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    /// Whether the state is at least `min`.
    pub fn is_at_least(&self, min: SignetState) -> bool {
        self.state >= min
    }

    /// The key whose signatures were verified: an org signet's POK; for a user signet, the
    /// org POK or SOK that made 6 (and 253/255).
    pub fn signed_by(&self) -> Option<&Ed25519PublicKey> {
        self.signed_by.as_ref()
    }

    /// Whether a custody signature 4 was checked against a previous signet.
    pub fn custody_checked(&self) -> bool {
        self.custody_checked
    }

    /// The validation of bytes that failed to decode: `Overflow` for a length that runs past
    /// the data, `Malformed` otherwise.
    pub fn from_decode_error(e: DecodeError) -> Validation {
        let state = if e.is_overflow() { SignetState::Overflow } else { SignetState::Malformed };
        Validation::fail(state, Problem::Decode(e))
    }
}

/// What a validation is checked against (`spec/signet.md` §6). Empty by default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Verifier<'a> {
    org: Option<&'a Signet>,
    trusted_poks: Option<&'a [Ed25519PublicKey]>,
    previous: Option<&'a Signet>,
}

impl<'a> Verifier<'a> {
    /// Checks nothing beyond the signet itself.
    pub fn new() -> Verifier<'a> {
        Verifier::default()
    }

    /// For a user signet: the org signet whose POK, and SOKs with the signet permission, may
    /// make fields 6, 253 and 255.
    pub fn org(mut self, org: &'a Signet) -> Verifier<'a> {
        self.org = Some(org);
        self
    }

    /// Trusted POKs (e.g. from the `_dx` record): an org signet's field 1 must be one of
    /// them; for a user signet they may make fields 6, 253 and 255.
    pub fn trusted_poks(mut self, poks: &'a [Ed25519PublicKey]) -> Verifier<'a> {
        self.trusted_poks = Some(poks);
        self
    }

    /// The previous signet (SSR or user signet) of a rotation: field 4 must verify under its
    /// signing key.
    pub fn previous(mut self, previous: &'a Signet) -> Verifier<'a> {
        self.previous = Some(previous);
        self
    }

    /// The keys allowed to make a user signet's 6, 253, 255; `None` if nothing was given.
    fn user_signers(&self) -> Option<Vec<Ed25519PublicKey>> {
        if self.org.is_none() && self.trusted_poks.is_none() {
            return None;
        }
        let mut keys = Vec::new();
        if let Some(org) = self.org {
            keys.extend(org.signing_key().ok());
            // An org signet with a malformed SOK is itself malformed: none of its SOKs count.
            let soks = org.soks().unwrap_or_default();
            keys.extend(
                soks.iter()
                    .filter(|s| s.permissions.contains(SokPermissions::SIGNET))
                    .map(|s| s.key),
            );
        }
        keys.extend(self.trusted_poks.unwrap_or(&[]).iter().copied());
        Some(keys)
    }
}

/// Decodes and validates bytes in one step: decode errors become `Malformed` or `Overflow`.
pub fn validate_bytes(
    provider: &CryptoProvider,
    bytes: &[u8],
    verifier: &Verifier<'_>,
) -> Validation {
    match Signet::decode(bytes) {
        Ok(s) => s.validate(provider, verifier),
        Err(e) => Validation::from_decode_error(e),
    }
}

fn verifies(provider: &CryptoProvider, s: &Signet, id: u8, key: &Ed25519PublicKey) -> bool {
    s.signed_part(id).is_some_and(|(msg, sig)| provider.signature.verify(key, msg, &sig).is_ok())
}

impl Signet {
    /// Validates content, completeness, custody and signatures, in that order, and returns
    /// the state reached (`spec/signet.md` §6).
    pub fn validate(&self, provider: &CryptoProvider, verifier: &Verifier<'_>) -> Validation {
        use SignetState as S;
        // 1. Content: every key and the identifier are of their defined form.
        if let Err(p) = self.check_content() {
            return Validation::fail(S::Malformed, Problem::Field(p));
        }
        // 2. Completeness.
        let kind = self.kind();
        let required: &[u8] = match kind {
            SignetKind::Org => &[1, 3, 4],
            SignetKind::User => &[1, 2, 5, 6],
            SignetKind::Ssr => &[1, 2, 5],
        };
        if let Some(&id) = required.iter().find(|&&id| self.field(id).is_none()) {
            return Validation::fail(S::Incomplete, Problem::Field(FieldError::Missing(id)));
        }
        let has = |id| self.field(id).is_some();
        if kind != SignetKind::Ssr {
            let crypto = kind.crypto_signature_field().unwrap_or(0);
            let last = self.fields().last().map_or(0, |f| f.id);
            if has(254) != has(255) {
                return Validation::fail(S::Incomplete, Problem::IdentifierWithoutSignature);
            }
            if !has(253) && last > crypto {
                return Validation::fail(S::Incomplete, Problem::Unsigned { after: crypto });
            }
        }
        // 3. Chain of custody.
        let mut custody_checked = false;
        if kind != SignetKind::Org
            && let Some(prev) = verifier.previous
        {
            let Ok(prev_key) = prev.signing_key() else {
                return Validation::fail(S::BrokenChainOfCustody, Problem::CustodyFails);
            };
            if !has(4) {
                return Validation::fail(S::BrokenChainOfCustody, Problem::NoCustodySignature);
            }
            if !verifies(provider, self, 4, &prev_key) {
                return Validation::fail(S::BrokenChainOfCustody, Problem::CustodyFails);
            }
            custody_checked = true;
        }
        // 4. Signatures. signing_key() cannot fail here: check_content parsed it.
        let Ok(own) = self.signing_key() else {
            return Validation::fail(S::Malformed, Problem::Field(FieldError::Missing(1)));
        };
        let top = |s: &Signet| {
            if s.field(255).is_some() {
                S::Id
            } else if s.field(253).is_some() {
                S::Full
            } else {
                S::Crypto
            }
        };
        let done =
            |state, problem, signed_by| Validation { state, problem, signed_by, custody_checked };
        match kind {
            SignetKind::Ssr => {
                if !verifies(provider, self, 5, &own) {
                    return Validation::fail(S::Invalid, Problem::BadSignature(5));
                }
                done(S::Ssr, None, None)
            }
            SignetKind::Org => {
                if let Some(poks) = verifier.trusted_poks
                    && !poks.contains(&own)
                {
                    return Validation::fail(S::Invalid, Problem::UntrustedPok);
                }
                for id in [4u8, 253, 255] {
                    if has(id) && !verifies(provider, self, id, &own) {
                        return Validation::fail(S::Invalid, Problem::BadSignature(id));
                    }
                }
                done(top(self), None, Some(own))
            }
            SignetKind::User => {
                if !verifies(provider, self, 5, &own) {
                    return Validation::fail(S::Invalid, Problem::BadSignature(5));
                }
                let Some(signers) = verifier.user_signers() else {
                    return done(S::Ssr, Some(Problem::OrgNotGiven), None);
                };
                let mut signed_by = None;
                for id in [6u8, 253, 255] {
                    if !has(id) {
                        continue;
                    }
                    match signers.iter().find(|k| verifies(provider, self, id, k)) {
                        Some(k) => signed_by = signed_by.or(Some(*k)),
                        None => return Validation::fail(S::Invalid, Problem::BadSignature(id)),
                    }
                }
                if let (Some(org), Ok(Some(Identifier::Mailbox(m)))) =
                    (verifier.org, self.identifier())
                    && let Ok(Some(Identifier::Domain(d))) = org.identifier()
                    && m.domain() != &d
                {
                    return Validation::fail(S::Invalid, Problem::DomainMismatch);
                }
                done(top(self), None, signed_by)
            }
        }
    }

    fn check_content(&self) -> Result<(), FieldError> {
        if self.field(1).is_some() {
            self.signing_key()?;
        }
        let enc_id = if self.kind() == SignetKind::Org { 3 } else { 2 };
        if self.field(enc_id).is_some() {
            self.encryption_key()?;
        }
        self.alternate_encryption_keys()?;
        self.soks()?;
        self.identifier()?;
        Ok(())
    }
}
