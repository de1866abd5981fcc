//! The outbox (`spec/storage.md` §7.2, `spec/dmtp.md` §11.1): origin-signed envelopes queued
//! durably for their destination, the queue payload format, and the delivery status shown to
//! the message's author.

use super::compose::{ComposeError, Composed, Draft};
use super::session::{SessionError, UserSession};
use super::{Directory, MailService, blocking};
use dime_core::Domain;
use dime_core::crypto::{Bytes, CryptoProvider, Hashed};
use dime_envelope::open_as_origin;
use dime_store::{
    AccountId, DeliveryStatus, Queue, QueueError, QueueId, Store, Timestamp, Transport,
};
use std::sync::Arc;

/// The first octets of a DMTP queue payload.
pub const PAYLOAD_MAGIC: &[u8; 4] = b"DQ2\0";
/// The first octets of a payload queued before the envelope's SHA-512 was kept in it: the
/// time, then the envelope (read, never written).
const PAYLOAD_MAGIC_V1: &[u8; 4] = b"DQ1\0";
/// Where a payload's envelope starts: after the magic, the time of queueing and the hash.
const ENVELOPE_AT: usize = PAYLOAD_MAGIC.len() + 8 + 64;

/// A queue payload, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// When the entry was queued.
    pub queued: Timestamp,
    /// The origin-signed envelope, with its SHA-512.
    pub envelope: Hashed,
}

/// The payload of an origin-signed envelope made of `parts` (concatenated), queued at `now`:
/// [`PAYLOAD_MAGIC`], the time (u64, big-endian seconds), the envelope's SHA-512 (each
/// attempt's DATA commitment, computed once) and the envelope.
pub fn encode_payload(p: &CryptoProvider, now: Timestamp, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|b| b.len()).sum();
    let mut payload = Vec::with_capacity(ENVELOPE_AT + len);
    payload.extend_from_slice(PAYLOAD_MAGIC);
    payload.extend_from_slice(&now.0.to_be_bytes());
    payload.extend_from_slice(&p.hash.sha512(parts));
    for b in parts {
        payload.extend_from_slice(b);
    }
    payload
}

/// Reads a queue payload; its envelope shares `payload`'s bytes (no copy). One queued before
/// the hash was kept (`DQ1`) has its envelope hashed here.
pub fn parse_payload(p: &CryptoProvider, payload: &Bytes) -> Option<Payload> {
    let time = |t: &[u8]| Some(Timestamp(u64::from_be_bytes(t.try_into().ok()?)));
    if let Some(rest) = payload.strip_prefix(PAYLOAD_MAGIC_V1) {
        let (t, env) = rest.split_at_checked(8)?;
        let env = payload.slice_ref(env);
        return Some(Payload { queued: time(t)?, envelope: Hashed::new(p, env) });
    }
    let rest = payload.strip_prefix(PAYLOAD_MAGIC)?;
    let (t, rest) = rest.split_at_checked(8)?;
    let (sha512, env) = rest.split_at_checked(64)?;
    let sha512 = <[u8; 64]>::try_from(sha512).ok()?;
    let env = payload.slice_ref(env);
    Some(Payload { queued: time(t)?, envelope: Hashed::from_parts(env, sha512) })
}

/// Queues the origin-signed envelope made of `parts` durably for `destination`, as `author`'s.
///
/// # Errors
/// The store's.
pub fn queue_envelope(
    p: &CryptoProvider,
    rng: &mut dyn dime_core::CryptoRngCore,
    store: &Store,
    author: AccountId,
    destination: &dime_core::Domain,
    parts: &[&[u8]],
    now: Timestamp,
) -> Result<QueueId, QueueError> {
    Ok(queue_envelope_once(p, rng, store, author, destination, parts, None, now)?.0)
}

/// [`queue_envelope`], once per submission `key` when one is given (`spec/storage.md` §7.4):
/// a retry answers the first entry's id and `false`.
///
/// # Errors
/// The store's.
#[allow(clippy::too_many_arguments)]
pub fn queue_envelope_once(
    p: &CryptoProvider,
    rng: &mut dyn dime_core::CryptoRngCore,
    store: &Store,
    author: AccountId,
    destination: &dime_core::Domain,
    parts: &[&[u8]],
    key: Option<&[u8]>,
    now: Timestamp,
) -> Result<(QueueId, bool), QueueError> {
    let payload = encode_payload(p, now, parts);
    let (id, fresh) = match key {
        Some(k) => store.enqueue_once(
            rng,
            Transport::Dmtp,
            author,
            destination.as_str(),
            &payload,
            k,
            now,
        )?,
        None => (
            store.enqueue(rng, Transport::Dmtp, author, destination.as_str(), &payload, now)?,
            true,
        ),
    };
    if fresh {
        tracing::info!(destination = %destination, queue_id = id.0, "message queued");
    } else {
        tracing::info!(queue_id = id.0, "a retried submission: queued before");
    }
    Ok((id, fresh))
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// It could not be composed.
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// It could not be queued.
    #[error("queue: {0}")]
    Store(#[from] QueueError),
}

/// Why an envelope from a client was not signed as the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotSigned {
    /// It does not open with our org key, or its author signatures do not verify.
    Envelope,
    /// It names another author than the one who submitted it.
    OtherAuthor,
}

/// Checks an envelope `author` submitted as the origin (`spec/envelope.md` §7.3): it opens
/// with our org key, its author signatures verify under `author_key`, and it names `author`.
/// Returns the origin signature chunk to append and the destination domain.
pub(crate) fn origin_sign(
    p: &CryptoProvider,
    rng: &mut dyn dime_core::CryptoRngCore,
    local: &crate::LocalDomain,
    author: &dime_core::Mailbox,
    author_key: &dime_core::crypto::Ed25519PublicKey,
    envelope: &[u8],
) -> Result<(Vec<u8>, Domain), NotSigned> {
    let verified = open_as_origin(p, envelope, &local.secret)
        .and_then(|u| u.verify(p, author_key))
        .map_err(|_| NotSigned::Envelope)?;
    if &verified.view().author != author {
        return Err(NotSigned::OtherAuthor);
    }
    let chunk = verified
        .origin_signature_chunk(p, rng, local.keys().pok_seed(), &local.domain, crate::now().0)
        .map_err(|_| NotSigned::Envelope)?;
    Ok((chunk, verified.view().destination.clone()))
}

/// Why a sealed envelope was not accepted for sending.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The session ended.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// It does not open with our org key, its author signatures do not verify under the
    /// session's current key, or it names another author.
    #[error("envelope does not open as the origin, or is not signed by the session's user")]
    Envelope,
    /// It could not be queued.
    #[error("queue: {0}")]
    Store(#[from] QueueError),
}

/// Why a delivery status is not shown.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The session ended.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// Not the user's, or not (or no longer) known: the same for both, so that nobody learns
    /// of another user's mail.
    #[error("no such queued message")]
    NoSuchEntry,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] QueueError),
}

impl<D: Directory> MailService<D> {
    /// Queues `composed` (from [`MailService::compose`]) durably as the session's user's:
    /// returned once it is on stable storage.
    ///
    /// # Errors
    /// [`SendError::Store`]; [`SendError::Compose`] when the session ended.
    pub async fn queue(
        &self,
        session: &mut UserSession,
        composed: Composed,
        now: Timestamp,
    ) -> Result<QueueId, SendError> {
        Ok(self.queue_once(session, composed, None, now).await?.0)
    }

    /// [`MailService::queue`] once per submission `key` (`spec/storage.md` §7.4): `false`
    /// with the first entry's id when the key was queued before.
    ///
    /// # Errors
    /// As [`MailService::queue`].
    pub async fn queue_once(
        &self,
        session: &mut UserSession,
        composed: Composed,
        key: Option<String>,
        now: Timestamp,
    ) -> Result<(QueueId, bool), SendError> {
        session.touch(now).map_err(ComposeError::from)?;
        let (p, store, author) = (self.provider, Arc::clone(&self.store), session.account());
        let queued = blocking(move || {
            let parts = [composed.envelope.as_slice()];
            queue_envelope_once(
                p,
                &mut rand_core::OsRng,
                &store,
                author,
                &composed.destination,
                &parts,
                key.as_deref().map(str::as_bytes),
                now,
            )
        })
        .await?;
        if let Some(w) = self.wake.as_ref().filter(|_| queued.1) {
            w.notify_one();
        }
        Ok(queued)
    }

    /// Submits an envelope the session's user sealed (a DIME-aware client): opened as the
    /// origin, its author signatures verified under the session's current key and its author
    /// checked to be the session's user, then origin-signed and queued durably. Returns the
    /// queue entry and the destination domain.
    ///
    /// # Errors
    /// [`SubmitError`].
    pub async fn submit_sealed(
        &self,
        session: &mut UserSession,
        envelope: Vec<u8>,
        now: Timestamp,
    ) -> Result<(QueueId, Domain), SubmitError> {
        let p = self.provider;
        let keys = session.keys(now)?;
        let author_key = keys.current_keys().ok_or(SessionError::Expired)?.signing_key(p);
        let (author, account) = (session.address().clone(), session.account());
        let (store, local) = (Arc::clone(&self.store), Arc::clone(&self.local));
        let queued = blocking(move || {
            let mut rng = rand_core::OsRng;
            let (chunk, destination) =
                origin_sign(p, &mut rng, &local, &author, &author_key, &envelope)
                    .map_err(|_| SubmitError::Envelope)?;
            let parts = [envelope.as_slice(), chunk.as_slice()];
            let id = queue_envelope(p, &mut rng, &store, account, &destination, &parts, now)?;
            Ok::<_, SubmitError>((id, destination))
        })
        .await?;
        if let Some(w) = &self.wake {
            w.notify_one();
        }
        Ok(queued)
    }

    /// Composes `draft` and queues it: [`MailService::compose`], then [`MailService::queue`].
    ///
    /// # Errors
    /// [`SendError`].
    pub async fn send(
        &self,
        session: &mut UserSession,
        draft: &Draft,
        now: Timestamp,
    ) -> Result<QueueId, SendError> {
        let composed = self.compose(session, draft, now).await?;
        self.queue(session, composed, now).await
    }

    /// [`MailService::send`] with a client-made Message-ID that is also the submission key
    /// (`spec/dimed.md` §4.2): a retry with the same one queues nothing and answers the first
    /// entry's id and `false` (nothing is composed for it).
    ///
    /// # Errors
    /// [`SendError`] ([`ComposeError::Header`] for a malformed Message-ID).
    pub async fn send_once(
        &self,
        session: &mut UserSession,
        draft: &Draft,
        message_id: &str,
        now: Timestamp,
    ) -> Result<(QueueId, bool), SendError> {
        session.touch(now).map_err(ComposeError::from)?;
        super::compose::check_message_id(message_id)?;
        if let Some(id) = self.store.submitted(session.account(), message_id.as_bytes())? {
            return Ok((id, false));
        }
        let composed = self.compose_as(session, draft, Some(message_id), now).await?;
        self.queue_once(session, composed, Some(message_id.to_owned()), now).await
    }

    /// The delivery status of `id`, when the session's user queued it.
    ///
    /// # Errors
    /// [`StatusError`].
    pub fn status(
        &self,
        session: &mut UserSession,
        id: QueueId,
        now: Timestamp,
    ) -> Result<DeliveryStatus, StatusError> {
        session.touch(now)?;
        match self.store.delivery_status(id)? {
            Some(s) if s.author == Some(session.account()) => Ok(s),
            _ => Err(StatusError::NoSuchEntry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dime_core::crypto::default_provider;

    #[test]
    fn payloads_of_both_versions_read_with_the_envelopes_hash() {
        let p = default_provider();
        let envelope = b"an origin-signed envelope".to_vec();
        let want =
            Some(Payload { queued: Timestamp(7), envelope: Hashed::new(p, envelope.clone()) });
        let mut v2 = PAYLOAD_MAGIC.to_vec();
        v2.extend_from_slice(&7u64.to_be_bytes());
        v2.extend_from_slice(&p.hash.sha512(&[&envelope]));
        v2.extend_from_slice(&envelope);
        let b = |v: &[u8]| Bytes::copy_from_slice(v);
        let parsed = parse_payload(p, &b(&v2));
        assert_eq!(parsed, want);
        // The envelope shares the payload's bytes.
        let payload = b(&v2);
        let envelope_at = parse_payload(p, &payload).unwrap().envelope.bytes().as_ptr();
        assert_eq!(envelope_at, payload[ENVELOPE_AT..].as_ptr(), "not copied");
        // What is written: the same octets, from the envelope in one part or several.
        assert_eq!(encode_payload(p, Timestamp(7), &[&envelope]), v2);
        assert_eq!(encode_payload(p, Timestamp(7), &[&envelope[..5], b"", &envelope[5..]]), v2);
        let mut v1 = PAYLOAD_MAGIC_V1.to_vec();
        v1.extend_from_slice(&7u64.to_be_bytes());
        v1.extend_from_slice(&envelope);
        assert_eq!(parse_payload(p, &b(&v1)), want, "a DQ1 payload's envelope is hashed when read");
        assert_eq!(parse_payload(p, &b(&v2[..ENVELOPE_AT - 1])), None, "cut inside the hash");
        assert_eq!(parse_payload(p, &b(&v1[..11])), None, "cut inside the time");
        assert_eq!(parse_payload(p, &b(b"DQ3\0\0\0\0\0\0\0\0\x07")), None);
    }
}
