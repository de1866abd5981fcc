//! Key and signature types.

use crate::secret::Secret;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand_core::CryptoRngCore;
use std::fmt;

macro_rules! public_bytes {
    ($(#[$m:meta])* $name:ident, $len:expr) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
            /// From a slice of exactly the right length.
            pub fn from_slice(s: &[u8]) -> Option<Self> {
                Some($name(s.try_into().ok()?))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), STANDARD_NO_PAD.encode(self.0))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&STANDARD_NO_PAD.encode(self.0))
            }
        }
    };
}

public_bytes!(
    /// An Ed25519 public key (32 bytes, RFC 8032 encoding).
    Ed25519PublicKey,
    32
);
public_bytes!(
    /// An Ed25519 signature (64 bytes).
    Ed25519Signature,
    64
);
public_bytes!(
    /// An X25519 public key (32 bytes, RFC 7748).
    X25519PublicKey,
    32
);

macro_rules! secret_bytes {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug)]
        pub struct $name(Secret<[u8; 32]>);

        impl $name {
            /// Wraps 32 secret bytes.
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                $name(Secret::new(bytes))
            }
            /// Draws 32 fresh bytes from `rng`.
            pub fn generate(rng: &mut dyn CryptoRngCore) -> Self {
                let mut s = Secret::new([0u8; 32]);
                rng.fill_bytes(s.expose_mut());
                $name(s)
            }
            /// Borrows the secret bytes. Never format them.
            pub fn expose(&self) -> &[u8; 32] {
                self.0.expose()
            }
            /// An explicit copy.
            pub fn duplicate(&self) -> Self {
                $name(self.0.duplicate())
            }
        }
    };
}

secret_bytes!(
    /// An Ed25519 private key seed (32 bytes, RFC 8032 §5.1.5).
    Ed25519Seed
);
secret_bytes!(
    /// An X25519 private scalar (32 bytes; clamped by the primitive).
    X25519Secret
);
secret_bytes!(
    /// An X25519 shared secret: never all-zero (checked by [`super::KeyAgreement::agree`]).
    SharedSecret
);
secret_bytes!(
    /// A 32-byte AEAD key.
    AeadKey
);
