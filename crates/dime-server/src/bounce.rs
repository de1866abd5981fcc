//! The bounce (`spec/dmtp.md` §11.3): when a queued message fails for good, the origin tells
//! its author with a message built and signed by the origin server itself.
//!
//! The origin opens its queued envelope as the origin (it reads the author and the message id,
//! never the headers or the body), and seals a short plain-text notice from
//! `postmaster@<our domain>` to the author's current user signet. The notice is a trustful
//! message (`spec/envelope.md` §10, kind `02`): its author signatures are made with our POK, so
//! every reader sees that it was not signed by a person, and verifies it with our org key. It
//! also carries our origin signature (`spec/envelope.md` §7.3), so it verifies like any mail
//! that arrived over DMTP. It is delivered straight into the author's inbox; it never enters
//! the queue, so a bounce is never bounced.

use crate::LocalDomain;
use dime_core::crypto::CryptoProvider;
use dime_core::{CryptoRngCore, Domain, Mailbox};
use dime_envelope::{
    ActorKeys, Addressing, Headers, Message, Part, PartInfo, PartKind, Signer, open_as_origin,
    seal_message_origin_signed,
};
use dime_store::{AccountError, Accounts, QueueId, Store, Timestamp};

/// The local part the origin sends bounces from (`spec/dmtp.md` §11.3).
pub const BOUNCE_LOCAL_PART: &str = "postmaster";

/// Longest reason a bounce quotes, in characters (`spec/dmtp.md` §11.3).
pub const BOUNCE_REASON_MAX_CHARS: usize = 200;

/// Why a bounce could not be built. The messages name no local part.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BounceError {
    /// The queued envelope does not open with our org key.
    #[error("queued envelope does not open as the origin")]
    Open,
    /// The author is not of our domain.
    #[error("author is not a user of this domain")]
    NotOurUser,
    /// The author's signet could not be read (the account is gone).
    #[error("author signet unavailable: {0}")]
    Signet(AccountError),
    /// The author's or our signet has no usable envelope keys.
    #[error("signet has no usable envelope keys")]
    Keys,
    /// Sealing or origin-signing the bounce failed.
    #[error("bounce could not be sealed")]
    Seal,
}

/// What failed, for the notice.
#[derive(Debug)]
pub(crate) struct Failure<'a> {
    /// The queue entry.
    pub(crate) id: QueueId,
    /// The destination domain.
    pub(crate) destination: &'a Domain,
    /// Why it failed.
    pub(crate) reason: &'a str,
    /// When it was queued.
    pub(crate) queued: Timestamp,
    /// When the origin gave up.
    pub(crate) failed: Timestamp,
    /// Delivery attempts made.
    pub(crate) attempts: u32,
}

/// A sealed bounce and whom it goes to.
pub(crate) struct Bounce {
    /// The author of the failed message: a local user.
    pub(crate) author: Mailbox,
    /// The sealed, origin-signed notice.
    pub(crate) envelope: Vec<u8>,
}

impl std::fmt::Debug for Bounce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bounce").field("len", &self.envelope.len()).finish_non_exhaustive()
    }
}

/// Builds the bounce for the queued `envelope` (as [`crate::origin::submit`] queued it, with
/// our origin signature).
///
/// The author is taken from the envelope's origin chunk without verifying the author's
/// signatures again: the envelope was verified when it was submitted and has since been
/// sealed in the queue under our pepper-derived key (`spec/storage.md` §7), and the author may
/// have rotated keys since.
pub(crate) fn build(
    p: &CryptoProvider,
    rng: &mut dyn CryptoRngCore,
    local: &LocalDomain,
    store: &Store,
    envelope: &[u8],
    failure: &Failure<'_>,
) -> Result<Bounce, BounceError> {
    let opened = open_as_origin(p, envelope, &local.secret).map_err(|_| BounceError::Open)?;
    let author = opened.claimed_author().clone();
    let message_id = hex::encode(opened.message_id());
    if author.domain() != &local.domain {
        return Err(BounceError::NotOurUser);
    }
    let (_, signet) = store.signet(&author).map_err(BounceError::Signet)?;
    let author_keys = ActorKeys::from_signet(&signet).map_err(|_| BounceError::Keys)?;
    let org_keys = ActorKeys::from_signet(&local.org_signet).map_err(|_| BounceError::Keys)?;
    let sender = Mailbox::parse(&format!("{BOUNCE_LOCAL_PART}@{}", local.domain))
        .map_err(|_| BounceError::Seal)?;
    let message = notice(&local.domain, &sender, &author, &message_id, failure)?;
    // A server-built message: the origin is its author, origin and destination at once.
    let addressing = Addressing {
        author: sender,
        author_keys: org_keys,
        origin: local.domain.clone(),
        origin_keys: org_keys,
        destination: local.domain.clone(),
        destination_keys: org_keys,
        recipient: author.clone(),
        recipient_keys: author_keys,
    };
    // Sealed and origin-signed at once (`spec/envelope.md` §7.3): not opened again.
    let pok = local.keys().pok_seed();
    let sealed = seal_message_origin_signed(
        p,
        rng,
        &addressing,
        Signer::TrustfulServer(pok),
        pok,
        crate::now().0,
        &message,
    )
    .map_err(|_| BounceError::Seal)?;
    Ok(Bounce { author, envelope: sealed })
}

/// The notice: headers and one plain-text part. It quotes the destination domain, the reason,
/// the times and the message id; never the failed message's headers or body (the origin
/// cannot read them).
fn notice(
    ours: &Domain,
    sender: &Mailbox,
    author: &Mailbox,
    message_id: &str,
    f: &Failure<'_>,
) -> Result<Message, BounceError> {
    let reason = printable(f.reason);
    let subject = format!("Undelivered mail: could not deliver to {}", f.destination);
    let common = Headers::from_pairs([
        ("From", format!("Mail Delivery System <{sender}>").as_str()),
        ("To", author.to_string().as_str()),
        ("Subject", subject.as_str()),
        ("Date", rfc5322_date(f.failed).as_str()),
    ])
    .map_err(|_| BounceError::Seal)?;
    let other = Headers::from_pairs([
        ("Auto-Submitted", "auto-replied"),
        ("Dime-Bounce-Destination", f.destination.as_str()),
        ("Dime-Bounce-Reason", reason.as_str()),
        ("Dime-Bounce-Message-Id", message_id),
        ("Dime-Bounce-Queued", f.queued.0.to_string().as_str()),
        ("Dime-Bounce-Queue-Id", f.id.0.to_string().as_str()),
    ])
    .map_err(|_| BounceError::Seal)?;
    let text = format!(
        "This is the mail server of {ours}.\r\n\
         \r\n\
         Your message could not be delivered to the domain {dest}, and it will not be\r\n\
         retried.\r\n\
         \r\n\
         Reason:      {reason}\r\n\
         Queued:      {queued}\r\n\
         Given up:    {failed}\r\n\
         Attempts:    {attempts}\r\n\
         Message id:  {message_id}\r\n\
         \r\n\
         Your message is not attached: this server cannot read it. This notice was built and\r\n\
         signed by the mail server of {ours} (its organisational key), not by a person.\r\n",
        dest = f.destination,
        queued = rfc5322_date(f.queued),
        failed = rfc5322_date(f.failed),
        attempts = f.attempts,
    );
    Ok(Message {
        common_headers: common,
        other_headers: other,
        parts: vec![Part {
            kind: PartKind::Display,
            info: PartInfo {
                content_type: "text/plain; charset=us-ascii".into(),
                filename: String::new(),
            },
            data: text.into_bytes(),
        }],
    })
}

/// `s` as printable ASCII (others replaced by `?`), at most [`BOUNCE_REASON_MAX_CHARS`].
fn printable(s: &str) -> String {
    s.chars()
        .take(BOUNCE_REASON_MAX_CHARS)
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .collect()
}

/// An RFC 5322 date in UTC, e.g. `Tue, 14 Nov 2023 22:13:20 +0000`.
pub fn rfc5322_date(t: Timestamp) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = t.0 / 86_400;
    let secs = t.0 % 86_400;
    let (y, m, d) = civil_from_days(days);
    let wd = DAYS.get((days % 7) as usize).copied().unwrap_or("Thu");
    let mon = MONTHS.get((m as usize).saturating_sub(1)).copied().unwrap_or("Jan");
    format!(
        "{wd}, {d:02} {mon} {y} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// (year, month 1-12, day 1-31) of `days` since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc5322_in_utc() {
        assert_eq!(rfc5322_date(Timestamp(0)), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(Timestamp(1_700_000_000)), "Tue, 14 Nov 2023 22:13:20 +0000");
        assert_eq!(rfc5322_date(Timestamp(951_782_400)), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(rfc5322_date(Timestamp(4_102_444_799)), "Thu, 31 Dec 2099 23:59:59 +0000");
    }

    #[test]
    fn reasons_are_printable_and_bounded() {
        assert_eq!(printable("refused with 550\r\nX: y\u{7}é"), "refused with 550??X: y??");
        assert_eq!(printable(&"a".repeat(1000)).len(), BOUNCE_REASON_MAX_CHARS);
    }
}
