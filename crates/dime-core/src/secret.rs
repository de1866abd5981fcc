//! Secret values: zeroized on drop, never printed.

use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret value. Its memory is zeroized when it is dropped, and its `Debug` output is
/// `Secret(<redacted>)`: a secret never reaches logs or traces through formatting.
///
/// It deliberately implements neither `Display`, `Clone` (use [`Secret::duplicate`], which is
/// explicit), nor `PartialEq` (compare with [`Secret::ct_eq`], which runs in constant time).
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// Borrows the secret value. Keep the borrow short and never format it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Mutably borrows the secret value (to fill it in place).
    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Zeroize + Clone> Secret<T> {
    /// An explicit copy of the secret (both copies are zeroized on drop).
    pub fn duplicate(&self) -> Self {
        Secret(self.0.clone())
    }
}

impl<T: Zeroize + AsRef<[u8]>> Secret<T> {
    /// Constant-time equality of the secret bytes.
    pub fn ct_eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_ref().ct_eq(other.0.as_ref()).into()
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> ZeroizeOnDrop for Secret<T> {}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl<T: Zeroize + Default> Default for Secret<T> {
    fn default() -> Self {
        Secret(T::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new([0x41u8; 32]);
        let shown = format!("{s:?} {:#?}", s);
        assert!(!shown.contains("65"), "{shown}");
        assert!(!shown.contains('A'), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn ct_eq_compares_bytes() {
        let a = Secret::new(vec![1u8, 2, 3]);
        assert!(a.ct_eq(&a.duplicate()));
        assert!(!a.ct_eq(&Secret::new(vec![1u8, 2, 4])));
    }
}
