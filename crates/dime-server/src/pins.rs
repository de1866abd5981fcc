//! The resolver's signet pins kept in the store (`spec/storage.md` §7.2), so that a restart
//! does not forget which signet an address had: a rollback or an unchained signet is caught
//! across restarts too.
//!
//! Record (version 1): `0x01`, the signet's length (u32, big-endian) and canonical bytes, its
//! crypto fingerprint (64 octets), the number of superseded fingerprints (u16, big-endian, at
//! most [`MAX_SUPERSEDED`]) and each (64 octets). A record that does not decode is treated as
//! no pin and logged.

use dime_core::{Fingerprint, Mailbox};
use dime_resolver::{Pin, PinStore};
use dime_signet::Signet;
use dime_store::{Pins, Store};
use std::sync::Arc;

/// Most superseded fingerprints a pin keeps (the oldest are dropped first).
pub const MAX_SUPERSEDED: usize = 64;

const VERSION: u8 = 1;

/// [`PinStore`] over the store.
#[derive(Debug, Clone)]
pub struct StorePins {
    store: Arc<Store>,
}

impl StorePins {
    /// Pins kept in `store`.
    pub fn new(store: Arc<Store>) -> StorePins {
        StorePins { store }
    }
}

/// Encodes a pin record.
pub fn encode(pin: &Pin) -> Vec<u8> {
    let signet = pin.signet.to_bytes();
    let superseded = &pin.superseded[pin.superseded.len().saturating_sub(MAX_SUPERSEDED)..];
    let mut out = Vec::with_capacity(1 + 4 + signet.len() + 64 + 2 + 64 * superseded.len());
    out.push(VERSION);
    out.extend_from_slice(&u32::try_from(signet.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&signet);
    out.extend_from_slice(pin.fingerprint.as_bytes());
    out.extend_from_slice(&u16::try_from(superseded.len()).unwrap_or(0).to_be_bytes());
    for f in superseded {
        out.extend_from_slice(f.as_bytes());
    }
    out
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, rest) = b.split_at_checked(n)?;
    *b = rest;
    Some(head)
}

fn fingerprint(b: &mut &[u8]) -> Option<Fingerprint> {
    Some(Fingerprint(take(b, 64)?.try_into().ok()?))
}

/// Decodes a pin record; `None` when it is not one.
pub fn decode(mut b: &[u8]) -> Option<Pin> {
    let b = &mut b;
    if take(b, 1)? != [VERSION] {
        return None;
    }
    let len = u32::from_be_bytes(take(b, 4)?.try_into().ok()?) as usize;
    let signet = Signet::decode(take(b, len)?).ok()?;
    let fp = fingerprint(b)?;
    let n = u16::from_be_bytes(take(b, 2)?.try_into().ok()?) as usize;
    if n > MAX_SUPERSEDED {
        return None;
    }
    let superseded = (0..n).map(|_| fingerprint(b)).collect::<Option<Vec<_>>>()?;
    b.is_empty().then_some(Pin { signet, fingerprint: fp, superseded })
}

impl PinStore for StorePins {
    fn pin(&self, mailbox: &Mailbox) -> Option<Pin> {
        match self.store.pin(mailbox) {
            Ok(Some(r)) => {
                let pin = decode(&r);
                if pin.is_none() {
                    tracing::warn!("a stored signet pin does not decode; treated as no pin");
                }
                pin
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "signet pin unreadable; treated as no pin");
                None
            }
        }
    }

    fn set_pin(&self, mailbox: &Mailbox, pin: Pin) {
        if let Err(e) = self.store.set_pin(&mut rand_core::OsRng, mailbox, &encode(&pin)) {
            tracing::error!(error = %e, "signet pin could not be stored");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dime_core::crypto::default_provider;
    use dime_signet::{OrgKeys, Profile, create_org_signet};

    #[test]
    fn records_round_trip_and_malformed_ones_are_refused() {
        let p = default_provider();
        let keys = OrgKeys::generate(&mut dime_testkit::seeded_rng(5));
        let d = dime_core::Domain::parse("a.test").unwrap_or_else(|_| unreachable!());
        let Ok(signet) = create_org_signet(p, &keys, &d, &Profile::new()) else {
            unreachable!("org signet")
        };
        let pin = Pin {
            signet,
            fingerprint: Fingerprint([7; 64]),
            superseded: vec![Fingerprint([1; 64]), Fingerprint([2; 64])],
        };
        let r = encode(&pin);
        let back = decode(&r).map(|b| (b.signet.to_bytes(), b.fingerprint, b.superseded));
        assert_eq!(back, Some((pin.signet.to_bytes(), pin.fingerprint, pin.superseded.clone())));
        for cut in 0..r.len() {
            assert!(decode(&r[..cut]).is_none(), "truncated at {cut}");
        }
        let mut extra = r.clone();
        extra.push(0);
        assert!(decode(&extra).is_none());
        let mut v2 = r.clone();
        v2[0] = 2;
        assert!(decode(&v2).is_none());
        let many = Pin { superseded: vec![Fingerprint([3; 64]); 100], ..pin };
        let kept = decode(&encode(&many)).map(|p| p.superseded.len());
        assert_eq!(kept, Some(MAX_SUPERSEDED));
    }
}
