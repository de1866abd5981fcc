//! Signet fetch and validation, rotation and pinning (`spec/discovery.md` §6).

use crate::discovery::UnchainedSignet;
use crate::resolver::AuthenticatedDomain;
use dime_core::crypto::{CryptoProvider, Ed25519PublicKey};
use dime_core::{Domain, Fingerprint, Mailbox};
use dime_signet::record::Record;
use dime_signet::{FingerprintKind, Identifier, Signet, SignetKind, SignetState, Verifier};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

/// Most signets of a user's history followed in one rotation walk (`spec/discovery.md` §6).
pub const MAX_ROTATION_WALK: usize = 64;

/// Most superseded fingerprints kept per pin, newest kept (`spec/discovery.md` §6).
pub const MAX_SUPERSEDED: usize = 64;

/// Why a source gave no signet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The source has no such signet.
    #[error("no signet published for this name")]
    NotFound,
    /// The source could not be reached or failed: a temporary failure.
    #[error("signet source unavailable: {0}")]
    Unavailable(String),
}

/// Where signets come from: DMTP's `SGNT`/`HIST` (`dime_server::signets::DmtpSignets`), an
/// in-process map in tests (`spec/discovery.md` §6.2).
///
/// The resolver calls a source only for a domain whose record it has authenticated, and hands
/// it that [`AuthenticatedDomain`]: a source that needs the domain's servers takes them from
/// it ([`AuthenticatedDomain::delivery_hosts`]) instead of looking the record up again. What a
/// source returns is validated by the resolver all the same.
pub trait SignetSource: Send + Sync {
    /// The organisation signet of `domain`.
    fn org_signet(
        &self,
        domain: &AuthenticatedDomain,
    ) -> impl Future<Output = Result<Signet, SourceError>> + Send;
    /// The current user signet of `mailbox`, an address of `domain`.
    fn user_signet(
        &self,
        domain: &AuthenticatedDomain,
        mailbox: &Mailbox,
    ) -> impl Future<Output = Result<Signet, SourceError>> + Send;
    /// The user signets of `mailbox` (an address of `domain`) published after the one whose
    /// crypto fingerprint is `since`, oldest first (at most [`MAX_ROTATION_WALK`] are used).
    fn user_history(
        &self,
        domain: &AuthenticatedDomain,
        mailbox: &Mailbox,
        since: &Fingerprint,
    ) -> impl Future<Output = Result<Vec<Signet>, SourceError>> + Send;
}

/// An in-process [`SignetSource`] for tests and tools.
#[derive(Debug, Default)]
pub struct MemorySource {
    orgs: Mutex<HashMap<String, Signet>>,
    users: Mutex<HashMap<String, Vec<Signet>>>,
    crypto: Option<&'static CryptoProvider>,
}

impl MemorySource {
    /// An empty source; `crypto` computes fingerprints for [`MemorySource::history`].
    pub fn new(crypto: &'static CryptoProvider) -> MemorySource {
        MemorySource { crypto: Some(crypto), ..MemorySource::default() }
    }

    /// Publishes (replaces) the org signet of `domain`.
    pub fn publish_org(&self, domain: &Domain, signet: Signet) {
        if let Ok(mut m) = self.orgs.lock() {
            m.insert(domain.as_str().to_owned(), signet);
        }
    }

    /// Publishes a new current user signet for `mailbox` (older ones stay in its history).
    pub fn publish_user(&self, mailbox: &Mailbox, signet: Signet) {
        if let Ok(mut m) = self.users.lock() {
            m.entry(mailbox.to_string()).or_default().push(signet);
        }
    }

    /// Replaces the whole history of `mailbox` (oldest first), e.g. to serve an old signet.
    pub fn set_user_history(&self, mailbox: &Mailbox, history: Vec<Signet>) {
        if let Ok(mut m) = self.users.lock() {
            m.insert(mailbox.to_string(), history);
        }
    }

    /// The published org signet of `domain`.
    pub fn org(&self, domain: &Domain) -> Result<Signet, SourceError> {
        let m = self.orgs.lock().map_err(|_| SourceError::Unavailable("poisoned".into()))?;
        m.get(domain.as_str()).cloned().ok_or(SourceError::NotFound)
    }

    /// The current user signet of `mailbox`.
    pub fn user(&self, mailbox: &Mailbox) -> Result<Signet, SourceError> {
        let m = self.users.lock().map_err(|_| SourceError::Unavailable("poisoned".into()))?;
        m.get(&mailbox.to_string()).and_then(|h| h.last().cloned()).ok_or(SourceError::NotFound)
    }

    /// The user signets of `mailbox` published after the one whose crypto fingerprint is
    /// `since`, oldest first (empty when `since` is not in its history).
    pub fn history(
        &self,
        mailbox: &Mailbox,
        since: &Fingerprint,
    ) -> Result<Vec<Signet>, SourceError> {
        let crypto = self.crypto.ok_or(SourceError::Unavailable("no crypto provider".into()))?;
        let m = self.users.lock().map_err(|_| SourceError::Unavailable("poisoned".into()))?;
        let h = m.get(&mailbox.to_string()).ok_or(SourceError::NotFound)?;
        let pos = h
            .iter()
            .position(|s| s.fingerprint(crypto, FingerprintKind::Crypto).as_ref() == Some(since));
        Ok(pos.map(|p| h.iter().skip(p + 1).cloned().collect()).unwrap_or_default())
    }
}

impl SignetSource for MemorySource {
    async fn org_signet(&self, domain: &AuthenticatedDomain) -> Result<Signet, SourceError> {
        self.org(domain.domain())
    }

    async fn user_signet(
        &self,
        _domain: &AuthenticatedDomain,
        mailbox: &Mailbox,
    ) -> Result<Signet, SourceError> {
        self.user(mailbox)
    }

    async fn user_history(
        &self,
        _domain: &AuthenticatedDomain,
        mailbox: &Mailbox,
        since: &Fingerprint,
    ) -> Result<Vec<Signet>, SourceError> {
        self.history(mailbox, since)
    }
}

/// The last user signet seen for an address, and those it superseded
/// (`spec/discovery.md` §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The pinned signet.
    pub signet: Signet,
    /// Its crypto fingerprint.
    pub fingerprint: Fingerprint,
    /// Crypto fingerprints of the signets it replaced: serving one of them again is a
    /// rollback.
    pub superseded: Vec<Fingerprint>,
}

/// Where pins live: [`MemoryPinStore`] here; `dimed` keeps them in its store (`dime_server::pins`).
pub trait PinStore: Send + Sync {
    /// The pin of `mailbox`, if any.
    fn pin(&self, mailbox: &Mailbox) -> Option<Pin>;
    /// Replaces the pin of `mailbox`.
    fn set_pin(&self, mailbox: &Mailbox, pin: Pin);
}

/// An in-memory [`PinStore`].
#[derive(Debug, Default)]
pub struct MemoryPinStore {
    pins: Mutex<HashMap<String, Pin>>,
}

impl PinStore for MemoryPinStore {
    fn pin(&self, mailbox: &Mailbox) -> Option<Pin> {
        self.pins.lock().ok().and_then(|m| m.get(&mailbox.to_string()).cloned())
    }
    fn set_pin(&self, mailbox: &Mailbox, pin: Pin) {
        if let Ok(mut m) = self.pins.lock() {
            m.insert(mailbox.to_string(), pin);
        }
    }
}

/// How a user signet relates to the pinned one (`spec/discovery.md` §6).
#[must_use = "a chain status says whether the signet may replace the pinned one"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainStatus {
    /// No signet was pinned for the address: trust on first use.
    First,
    /// The pinned signet itself.
    Same,
    /// A rotation chained from the pinned signet by custody signatures, over `steps` signets.
    Rotated {
        /// Signets walked (1: the fetched signet is signed by the pinned one directly).
        steps: usize,
    },
    /// Not chained from the pinned signet: flagged (or refused, per local policy).
    Unchained,
    /// A signet the pinned one superseded: always refused.
    Rollback,
}

impl ChainStatus {
    /// The lower-case name used in per-message records.
    pub fn as_str(self) -> &'static str {
        match self {
            ChainStatus::First => "first-seen",
            ChainStatus::Same => "pinned",
            ChainStatus::Rotated { .. } => "rotated",
            ChainStatus::Unchained => "unchained",
            ChainStatus::Rollback => "rollback",
        }
    }
}

/// Why a signet was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignetError {
    /// The source had none or failed.
    #[error("{0}")]
    Source(#[from] SourceError),
    /// The signet is of the wrong kind.
    #[error("expected a {expected} signet")]
    WrongKind {
        /// What was expected.
        expected: &'static str,
    },
    /// The org signet's POK is not a `pok=` of the record, or a signature fails.
    #[error("signet does not validate (state {state:?}): {problem}")]
    Invalid {
        /// The ladder state reached.
        state: SignetState,
        /// Why.
        problem: String,
    },
    /// The signet names another domain or mailbox.
    #[error("signet identifier names another domain or address")]
    WrongIdentifier,
    /// A previously superseded signet was served again.
    #[error("rollback to a superseded user signet refused")]
    Rollback,
    /// The signet is not chained from the pinned one and local policy refuses it.
    #[error("user signet not chained from the pinned one: refused by local policy")]
    Unchained,
}

/// Who signed a user signet's crypto signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSigner {
    /// The organisation's POK.
    Pok,
    /// A secondary organisational key with the signet permission.
    Sok,
}

/// A validated organisation signet.
#[must_use = "a validated signet carries how it was proven"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidOrg {
    /// The signet.
    pub signet: Signet,
    /// Its ladder state (at least crypto).
    pub state: SignetState,
    /// The POK (one of the record's).
    pub pok: Ed25519PublicKey,
    /// Index of the POK in the record.
    pub pok_index: usize,
    /// Full fingerprint (or crypto if it has no 253).
    pub fingerprint: Fingerprint,
}

/// A validated user signet.
#[must_use = "a validated signet carries how it was proven"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidUser {
    /// The signet.
    pub signet: Signet,
    /// Its ladder state (at least crypto).
    pub state: SignetState,
    /// Who signed it.
    pub signer: UserSigner,
    /// Relation to the pinned signet.
    pub chain: ChainStatus,
    /// Crypto fingerprint (what pins hold).
    pub fingerprint: Fingerprint,
}

/// Validates an org signet against the record: its POK must be a `pok=` of the record and its
/// signatures must verify (at least the crypto state); a field 254 must name `domain`.
pub fn validate_org(
    crypto: &CryptoProvider,
    record: &Record,
    domain: &Domain,
    signet: Signet,
) -> Result<ValidOrg, SignetError> {
    if signet.kind() != SignetKind::Org {
        return Err(SignetError::WrongKind { expected: "org" });
    }
    let v = signet.validate(crypto, &Verifier::new().trusted_poks(&record.poks));
    if !v.is_at_least(SignetState::Crypto) {
        return Err(SignetError::Invalid {
            state: v.state(),
            problem: v.problem().map(|p| p.to_string()).unwrap_or_default(),
        });
    }
    match signet.identifier() {
        Ok(None) => {}
        Ok(Some(Identifier::Domain(d))) if &d == domain => {}
        _ => return Err(SignetError::WrongIdentifier),
    }
    let pok = *v
        .signed_by()
        .ok_or(SignetError::Invalid { state: v.state(), problem: "no signing key".into() })?;
    let pok_index = record.poks.iter().position(|k| k == &pok).unwrap_or(0);
    let fingerprint = signet
        .naming_fingerprint(crypto)
        .ok_or(SignetError::Invalid { state: v.state(), problem: "no fingerprint".into() })?;
    Ok(ValidOrg { state: v.state(), signet, pok, pok_index, fingerprint })
}

/// Validates a user signet under the org (its POK, or a SOK with the signet permission); a
/// field 254 must name `mailbox`. The chain is not checked here: see [`check_chain`].
pub fn validate_user(
    crypto: &CryptoProvider,
    org: &ValidOrg,
    mailbox: &Mailbox,
    signet: &Signet,
) -> Result<(SignetState, UserSigner, Fingerprint), SignetError> {
    if signet.kind() != SignetKind::User {
        return Err(SignetError::WrongKind { expected: "user" });
    }
    let v = signet.validate(crypto, &Verifier::new().org(&org.signet));
    if !v.is_at_least(SignetState::Crypto) {
        return Err(SignetError::Invalid {
            state: v.state(),
            problem: v.problem().map(|p| p.to_string()).unwrap_or_default(),
        });
    }
    match signet.identifier() {
        Ok(None) => {}
        Ok(Some(Identifier::Mailbox(m))) if &m == mailbox => {}
        _ => return Err(SignetError::WrongIdentifier),
    }
    let signer = if v.signed_by() == Some(&org.pok) { UserSigner::Pok } else { UserSigner::Sok };
    let fp = signet
        .fingerprint(crypto, FingerprintKind::Crypto)
        .ok_or(SignetError::Invalid { state: v.state(), problem: "no fingerprint".into() })?;
    Ok((v.state(), signer, fp))
}

/// How `fetched` (crypto fingerprint `fp`) relates to `pin`, given the signets published
/// after the pinned one (`history`, oldest first) (`spec/discovery.md` §6).
pub fn check_chain(
    crypto: &CryptoProvider,
    pin: Option<&Pin>,
    fetched: &Signet,
    fp: &Fingerprint,
    history: &[Signet],
) -> ChainStatus {
    let Some(pin) = pin else { return ChainStatus::First };
    if &pin.fingerprint == fp {
        return ChainStatus::Same;
    }
    if pin.superseded.contains(fp) {
        return ChainStatus::Rollback;
    }
    let chained = |s: &Signet, prev: &Signet| {
        s.validate(crypto, &Verifier::new().previous(prev)).custody_checked()
    };
    if chained(fetched, &pin.signet) {
        return ChainStatus::Rotated { steps: 1 };
    }
    let mut prev = &pin.signet;
    for (i, s) in history.iter().take(MAX_ROTATION_WALK).enumerate() {
        if !chained(s, prev) {
            break;
        }
        if s.fingerprint(crypto, FingerprintKind::Crypto).as_ref() == Some(fp) {
            return ChainStatus::Rotated { steps: i + 1 };
        }
        prev = s;
    }
    ChainStatus::Unchained
}

/// Applies the chain status under local policy and updates the pin (`spec/discovery.md` §6):
/// a rollback is always refused; an unchained signet is refused or flagged. `old` is the pin
/// `chain` was checked against (as read from `pins`).
pub fn apply_pin(
    pins: &dyn PinStore,
    mailbox: &Mailbox,
    old: Option<Pin>,
    signet: &Signet,
    fp: Fingerprint,
    chain: ChainStatus,
    policy: UnchainedSignet,
) -> Result<(), SignetError> {
    match chain {
        ChainStatus::Rollback => return Err(SignetError::Rollback),
        ChainStatus::Unchained if policy == UnchainedSignet::Refuse => {
            return Err(SignetError::Unchained);
        }
        ChainStatus::Same => return Ok(()),
        _ => {}
    }
    let mut superseded = old.as_ref().map(|p| p.superseded.clone()).unwrap_or_default();
    if let Some(p) = old {
        superseded.push(p.fingerprint);
    }
    let excess = superseded.len().saturating_sub(MAX_SUPERSEDED);
    superseded.drain(..excess);
    pins.set_pin(mailbox, Pin { signet: signet.clone(), fingerprint: fp, superseded });
    Ok(())
}
