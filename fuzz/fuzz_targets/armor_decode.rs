//! Fuzzes the text forms of `dime-signet` (`spec/signet.md` §8, §9): armor decoding of any
//! text, the binary/base64/armor detector, and key-file reading (plaintext and encrypted, with
//! the insecure provider so the AEAD and the password KDF are cheap and can be satisfied).
//!
//! Properties: no input panics; whatever armor decodes re-armors to text that decodes to the
//! same bytes (a round trip through the canonical armor); the detector agrees with the armor
//! decoder on armored input.
#![no_main]

use dime_signet::{armor, dearmor_any, keyfile};
use dime_testkit::insecure_provider;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(bin) = armor::decode(text) {
            let again = armor::encode(&bin).expect("decoded armor re-encodes");
            assert_eq!(armor::decode(&again).as_deref(), Ok(&bin[..]), "armor round trip");
            assert_eq!(dearmor_any(again.as_bytes()).as_deref(), Ok(&bin[..]));
        }
    }
    let _ = dearmor_any(data);
    let _ = keyfile::is_encrypted(data);
    let _ = keyfile::read(insecure_provider(), data, None);
    let _ = keyfile::read(insecure_provider(), data, Some(b"fuzz passphrase"));
});
