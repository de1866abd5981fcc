//! Fuzzes one DMAP connection's machine (`spec/dmap.md` §2-§4; `dime_dmap::Server`) as a
//! driver runs it: client input in reads of fuzzer-chosen sizes, every event answered (a
//! login accepted or refused by the first octet's bits, each command answered OK, SELECT
//! moving to the selected state, STARTTLS completed). Properties: no input panics; nothing
//! is answered after LOGOUT or a BYE; the machine asks for one command at a time (no event
//! while one is under way). That no password is echoed is checked by the machine's unit tests:
//! a fuzzer may use one as a tag, which is echoed by design.
#![no_main]

use dime_dmap::{
    Command, Event, FrameLimits, Server, ServerConfig, State, Status,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    let mut s = Server::new(ServerConfig {
        tls: mode & 1 == 1,
        starttls: true,
        append_limit: 4096,
        frame: FrameLimits { max_line: 128, max_command: 512, max_append: 4096, max_literals: 4 },
    });
    let mut out = s.take_output();
    let step = usize::from(mode >> 4) + 1;
    for chunk in input.chunks(step) {
        s.handle_input(chunk);
        while let Some(e) = s.poll_event() {
            match e {
                Event::Login { tag, .. } => {
                    if mode & 2 == 2 {
                        s.set_state(State::Authenticated);
                        s.tagged(&tag, Status::Ok, None, "logged in");
                    } else {
                        s.tagged(&tag, Status::No, Some("AUTHENTICATIONFAILED"), "failed");
                    }
                }
                Event::Command(c) => match c.command {
                    Command::Select { .. } => {
                        s.set_state(State::Selected);
                        s.tagged(&c.tag, Status::Ok, None, "selected");
                    }
                    Command::Close | Command::Unselect => {
                        s.set_state(State::Authenticated);
                        s.tagged(&c.tag, Status::Ok, None, "closed");
                    }
                    Command::Idle => {}
                    _ => {
                        // Under way: the machine parses nothing more until it is answered.
                        assert!(s.poll_event().is_none());
                        s.tagged(&c.tag, Status::Ok, None, "done");
                    }
                },
                Event::IdleDone { tag } => s.tagged(&tag, Status::Ok, None, "idle done"),
                Event::StartTls => s.tls_started(),
                Event::Close => {}
            }
            // One command at a time: nothing further is parsed while one is under way.
        }
        out.extend_from_slice(&s.take_output());
        if s.is_closed() {
            s.handle_input(b"x NOOP\r\n");
            assert!(s.poll_event().is_none());
            assert!(s.take_output().is_empty(), "an answer after the close");
            break;
        }
    }
    drop(out);
});
