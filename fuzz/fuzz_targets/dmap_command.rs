//! Fuzzes DMAP framing and command parsing (`spec/dmap.md` §3, §6; `dime_dmap::Framer`,
//! `dime_dmap::parse_command`).
//!
//! The first octet picks how the input is cut into reads and whether a frame switches the
//! framer to line mode (as AUTHENTICATE and IDLE do); the rest is client input, framed with
//! small limits. Properties: no input panics; no frame exceeds its limit; every command frame
//! and every line goes through the parsers; a parse error carries no client bytes but the tag.
#![no_main]

use dime_dmap::{
    Command, Frame, FrameLimits, FrameMode, Framer, is_idle_done, parse_command,
    parse_sasl_response,
};
use libfuzzer_sys::fuzz_target;

const LIMITS: FrameLimits =
    FrameLimits { max_line: 64, max_command: 256, max_append: 1024, max_literals: 4 };

fn drain(f: &mut Framer) {
    while let Some(frame) = f.poll_frame() {
        match frame {
            Frame::Command(c) => {
                assert!(c.len() <= LIMITS.max_command + LIMITS.max_append);
                match parse_command(&c) {
                    Ok(t) => {
                        if matches!(
                            t.command,
                            Command::Idle | Command::Authenticate { initial: None, .. }
                        ) {
                            f.set_mode(FrameMode::Line);
                        }
                    }
                    Err(e) => {
                        if let Some(tag) = &e.tag {
                            assert!(c.starts_with(tag.0.as_bytes()));
                        }
                        assert!(e.reason.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()));
                    }
                }
            }
            Frame::Line(l) => {
                assert!(l.len() <= LIMITS.max_line);
                let _ = parse_sasl_response(&l);
                let _ = is_idle_done(&l);
                f.set_mode(FrameMode::Command);
            }
            Frame::ContinueLiteral | Frame::LineTooLong { .. } | Frame::LiteralTooLarge { .. } => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(control % 17) + 1;
    let mut f = Framer::new(LIMITS);
    for piece in input.chunks(chunk) {
        f.handle_input(piece);
        drain(&mut f);
    }
    let _ = parse_command(input);
    let _ = parse_sasl_response(input);
});
