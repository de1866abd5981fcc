//! Fuzzes the envelope decoder (`spec/envelope.md` §2-§5) through `inspect`, without a key and
//! with a key tried as every actor, using the insecure provider so tags and slots can be
//! satisfied.
//!
//! Properties: no input panics; every chunk reported lies inside the input; indexes are the
//! chunk positions; the size read never exceeds the input.
#![no_main]

use dime_core::crypto::X25519Secret;
use dime_envelope::{ActorSecret, inspect};
use dime_testkit::insecure_provider;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = insecure_provider();
    let key = ActorSecret::new(p, X25519Secret::from_bytes([4; 32]));
    for ins in [inspect(p, data, None), inspect(p, data, Some(&key))] {
        assert!(ins.size <= data.len() as u64);
        for (i, c) in ins.chunks.iter().enumerate() {
            assert_eq!(usize::from(c.index), i);
            assert!(c.offset + c.size <= data.len() as u64);
        }
        if ins.error.is_none() {
            assert_eq!(ins.size, data.len() as u64);
        }
    }
});
