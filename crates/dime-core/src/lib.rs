//! `dime-core`: the vocabulary every other dime crate shares.
//!
//! What it is: validated newtypes ([`Domain`], [`Mailbox`], [`Fingerprint`]), the named limits
//! of the wire formats ([`limits`]), [`Secret`] (zeroized on drop, redacted in `Debug`), and the
//! crypto provider seam ([`crypto::CryptoProvider`]) with its default RustCrypto/dalek provider.
//!
//! What it is not: a place for I/O. This crate opens no file or socket, reads no clock and draws
//! no ambient randomness; callers pass randomness in (`&mut dyn CryptoRngCore`).

pub mod crypto;
mod fingerprint;
pub mod limits;
mod names;
mod secret;

pub use fingerprint::{Fingerprint, FingerprintError};
pub use names::{Domain, Mailbox, NameError};
pub use secret::Secret;

/// Randomness source accepted by every operation that needs it (re-exported from `rand_core`).
pub use rand_core::{CryptoRng, CryptoRngCore, RngCore};
