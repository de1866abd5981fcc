//! The origin role's submission (`spec/dmtp.md` §2, §5.1): an author's envelope checked,
//! origin-signed and queued durably for its destination. The worker that delivers the queue is
//! [`crate::outbound`]; the queue payload is the outbox's ([`crate::service::outbox`]).

use crate::LocalDomain;
use crate::service::outbox::{NotSigned, origin_sign, queue_envelope};
use dime_core::crypto::{CryptoProvider, Ed25519PublicKey};
use dime_core::{CryptoRngCore, Domain, Mailbox};
use dime_store::{AccountError, Accounts, QueueError, QueueId, Store, Timestamp};

pub use crate::bounce::{BOUNCE_LOCAL_PART, BOUNCE_REASON_MAX_CHARS};
pub use crate::service::outbox::{PAYLOAD_MAGIC, Payload, parse_payload};

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The envelope does not open for our org key, or its author signature does not verify.
    #[error("envelope does not open as the origin or its author signature does not verify")]
    Envelope,
    /// The author is not one of our users.
    #[error("author is not a user of this domain")]
    NotOurUser,
    /// The author's account refused (unknown, deleted) or could not be read.
    #[error("author: {0}")]
    Author(#[from] AccountError),
    /// The queue refused or failed.
    #[error("queue: {0}")]
    Store(#[from] QueueError),
}

/// Checks an envelope submitted by `author` (authenticated by the caller: a login session) as
/// the origin: it opens with our org key, `author` is ours, signed it and is the author it
/// names. Then appends the origin signature and queues it durably for its destination.
/// (`dime-envelope`'s `Unverified<OriginView>` exposes no claimed author, so the caller names
/// the author and the verified view must agree.) The author's signing key is that of their
/// current signet in `store`; a caller already holding it uses [`submit_signed_by`].
///
/// # Errors
/// [`SubmitError`].
pub fn submit(
    p: &CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    store: &Store,
    local: &LocalDomain,
    author: &Mailbox,
    envelope: &[u8],
    now: Timestamp,
) -> Result<(QueueId, Domain), SubmitError> {
    if author.domain() != &local.domain {
        return Err(SubmitError::NotOurUser);
    }
    let (_, signet) = store.signet(author)?;
    let key = signet.signing_key().map_err(|_| SubmitError::Envelope)?;
    submit_signed_by(p, rng, store, local, author, &key, envelope, now)
}

/// [`submit`] with the author's signing key from the caller: the key of `author`'s current
/// signet in `store`, read by the caller (one read per submission, not two).
///
/// # Errors
/// [`SubmitError`].
#[allow(clippy::too_many_arguments)]
pub fn submit_signed_by(
    p: &CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    store: &Store,
    local: &LocalDomain,
    author: &Mailbox,
    author_key: &Ed25519PublicKey,
    envelope: &[u8],
    now: Timestamp,
) -> Result<(QueueId, Domain), SubmitError> {
    if author.domain() != &local.domain {
        return Err(SubmitError::NotOurUser);
    }
    let (chunk, destination) =
        origin_sign(p, rng, local, author, author_key, envelope).map_err(|e| match e {
            NotSigned::Envelope => SubmitError::Envelope,
            NotSigned::OtherAuthor => SubmitError::NotOurUser,
        })?;
    let account = store.account_of(author)?;
    let id = queue_envelope(p, rng, store, account, &destination, &[envelope, &chunk], now)?;
    Ok((id, destination))
}
