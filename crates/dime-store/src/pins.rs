//! The key resolver's signet pins (`spec/storage.md` §7.2): for each address whose signet the
//! server has validated, the pin record the resolver keeps (the pinned signet, its fingerprint,
//! the fingerprints it superseded), so that a restart does not forget which signet an address
//! had and a rollback or an unchained signet is still caught.
//!
//! Keyed by the address's keyed tag (the same pepper-derived tag as the address index, so no
//! address is in clear); the value is opaque to the store (the resolver's encoding), sealed
//! under a key derived from the pepper with the tag as associated data.

use crate::backend::{Backend, Table};
use crate::keys::{open, seal};
use crate::{BackendError, PinError, Pins, Store, quarantine};
use dime_core::{CryptoRngCore, Mailbox};

/// Largest pin record, octets (a signet and a bounded list of fingerprints).
pub const MAX_PIN_LEN: usize = 64 * 1024;

impl Pins for Store {
    fn pin(&self, address: &Mailbox) -> Result<Option<Vec<u8>>, PinError> {
        let inner = &*self.inner;
        let tag = inner.address_tag(address)?;
        let mut sealed = None;
        inner.backend.read(&mut |t| {
            sealed = t.get(Table::Pins, &tag)?;
            Ok(())
        })?;
        let Some(sealed) = sealed else { return Ok(None) };
        match open(inner.p, &inner.keys.pins, &tag, &sealed) {
            Ok(pt) => Ok(Some(pt.to_vec())),
            Err(_) => {
                quarantine(inner, Table::Pins, &tag);
                Err(BackendError::Corrupt { what: "signet pin" }.into())
            }
        }
    }

    fn set_pin(
        &self,
        rng: &mut dyn CryptoRngCore,
        address: &Mailbox,
        record: &[u8],
    ) -> Result<(), PinError> {
        if record.len() > MAX_PIN_LEN {
            return Err(PinError::TooLarge { what: "signet pin", limit: MAX_PIN_LEN });
        }
        let inner = &*self.inner;
        let tag = inner.address_tag(address)?;
        let sealed = seal(inner.p, rng, &inner.keys.pins, &tag, record);
        Ok(inner.backend.write(&mut |t| t.put(Table::Pins, &tag, &sealed))?)
    }
}
