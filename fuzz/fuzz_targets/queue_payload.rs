//! Fuzzes the origin's queue payload reader, `dime_server::origin::parse_payload`
//! (`DQ2\0` ‖ queued time ‖ SHA-512 ‖ envelope, and the older `DQ1\0` ‖ time ‖ envelope).
//!
//! Properties: no input panics; a `DQ2` payload that parses is exactly its magic, time, hash
//! and envelope again; a `DQ1` payload's envelope comes out hashed; and a payload built from
//! the input (its first 8 octets as the time, the rest as the envelope) parses back to the same
//! queued time and envelope, with the envelope's SHA-512.
#![no_main]

use dime_server::origin::{PAYLOAD_MAGIC, parse_payload};
use dime_core::crypto::Bytes;
use dime_store::Timestamp;
use dime_testkit::insecure_provider;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = insecure_provider();
    if let Some(parsed) = parse_payload(p, &Bytes::copy_from_slice(data)) {
        let env = parsed.envelope.bytes();
        if data.starts_with(PAYLOAD_MAGIC) {
            let again =
                [&PAYLOAD_MAGIC[..], &parsed.queued.0.to_be_bytes(), parsed.envelope.sha512(), env]
                    .concat();
            assert_eq!(again, data, "a DQ2 payload is its parts again");
        } else {
            assert_eq!(data.get(..4), Some(&b"DQ1\0"[..]));
            assert_eq!(data.get(12..), Some(env));
            assert_eq!(parsed.envelope.sha512(), &p.hash.sha512(&[env]));
        }
    }

    let (time, envelope) = data.split_at(data.len().min(8));
    let mut t = [0u8; 8];
    t[..time.len()].copy_from_slice(time);
    let queued = Timestamp(u64::from_be_bytes(t));
    let sha512 = p.hash.sha512(&[envelope]);
    let built = [&PAYLOAD_MAGIC[..], &t, &sha512, envelope].concat();
    let parsed = parse_payload(p, &Bytes::from(built)).expect("a built payload parses");
    assert_eq!(parsed.queued, queued);
    assert_eq!(parsed.envelope.bytes(), envelope);
    assert_eq!(parsed.envelope.sha512(), &sha512);
});
