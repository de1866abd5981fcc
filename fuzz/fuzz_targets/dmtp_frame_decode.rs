//! Fuzzes DMTP framing and frame decoding (`spec/dmtp.md` §4, `dime_dmtp::frame`).
//!
//! The input is read as a stream of frames: each is split ([`split_frame`]) and decoded both as
//! a client frame and as a reply. Properties: no input panics; a split frame never exceeds
//! `MAX_FRAME_SIZE`; a decoded message re-encodes into one frame that splits and decodes back to
//! the same message.
#![no_main]

use dime_dmtp::frame::{Split, decode_payload, encode_frame, split_frame};
use dime_dmtp::limits::{FRAME_HEADER_LEN, MAX_FRAME_SIZE};
use dime_wire::dmtp::{ClientFrame, Reply};
use libfuzzer_sys::fuzz_target;

fn round_trip<M: dime_wire::Message + Default + PartialEq + std::fmt::Debug>(m: &M) {
    let Ok(frame) = encode_frame(m) else {
        // Decoding can widen a message (defaults written back are never larger, but
        // re-encoding unknown-field-free messages is at most the input size); over the limit
        // it is refused, not truncated.
        return;
    };
    let Ok(Split::Frame { payload, consumed }) = split_frame(&frame) else {
        panic!("an encoded frame splits");
    };
    assert_eq!(consumed, frame.len());
    let back: M = decode_payload(payload).expect("an encoded frame decodes");
    assert_eq!(&back, m);
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Split::Frame { payload, consumed }) = split_frame(rest) {
        assert!(payload.len() <= MAX_FRAME_SIZE);
        assert_eq!(consumed, FRAME_HEADER_LEN + payload.len());
        if let Ok(frame) = decode_payload::<ClientFrame>(payload) {
            round_trip(&frame);
        }
        if let Ok(reply) = decode_payload::<Reply>(payload) {
            round_trip(&reply);
        }
        rest = &rest[consumed..];
    }
});
