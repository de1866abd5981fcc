//! Fuzzes the signet decoders of `dime-signet` (`spec/signet.md` §2-§8): the binary container
//! ([`Signet::decode`]), binary/base64/armor detection ([`dime_signet::decode_any`]) and the
//! validation ladder with the insecure provider (so signatures can be satisfied).
//!
//! Properties: no input panics; a decoded signet keeps exactly the input bytes and decodes
//! again to an equal value; its armor decodes back to the same signet; validation of any
//! decoded signet returns a verdict.
#![no_main]

use dime_signet::{Signet, Verifier, armor};
use dime_testkit::insecure_provider;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dime_signet::decode_any(data);

    let Ok(signet) = Signet::decode(data) else {
        return;
    };
    assert_eq!(signet.as_bytes(), data, "a signet keeps the bytes it was decoded from");
    assert_eq!(Signet::decode(&signet.to_bytes()).as_ref(), Ok(&signet));
    assert!(signet.fields().len() <= signet.payload().len());

    let armored = armor::encode(signet.as_bytes()).expect("every decoded signet can be armored");
    assert_eq!(armor::decode(&armored).as_deref(), Ok(data));
    assert_eq!(Signet::decode_any(armored.as_bytes()).as_ref(), Ok(&signet));

    let _ = signet.validate(insecure_provider(), &Verifier::new());
});
