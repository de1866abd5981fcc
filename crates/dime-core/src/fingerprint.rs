//! SHA-512 fingerprints in DIME's unpadded base64 text form.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use std::fmt;
use std::str::FromStr;

/// A SHA-512 fingerprint (`spec/signet.md` §7). Its text form is the 86-character unpadded
/// standard base64 of the 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 64]);

/// A fingerprint's text form was not 86 characters of unpadded base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fingerprint must be 86 characters of unpadded base64 (64 bytes)")]
pub struct FingerprintError;

impl Fingerprint {
    /// The 64 bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 86 {
            return Err(FingerprintError);
        }
        let v = STANDARD_NO_PAD.decode(s).map_err(|_| FingerprintError)?;
        let arr: [u8; 64] = v.try_into().map_err(|_| FingerprintError)?;
        Ok(Fingerprint(arr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let fp = Fingerprint([7u8; 64]);
        let s = fp.to_string();
        assert_eq!(s.len(), 86);
        assert_eq!(s.parse::<Fingerprint>().unwrap(), fp);
        assert!("abc".parse::<Fingerprint>().is_err());
        assert!(format!("{}=", &s[..85]).parse::<Fingerprint>().is_err());
    }
}
