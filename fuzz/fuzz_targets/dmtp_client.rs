//! Fuzzes the DMTP client machine (`spec/dmtp.md` §7.2) with server bytes at every state, with
//! the insecure test provider (for the body hashes).
//!
//! Input: byte 0 sets the stream up (bit 0: our domain or none; bit 1: lookup or transfer
//! mode); then steps, each an op octet (its value modulo 12): 0 reads the next octet as a
//! length and feeds that many following octets as server bytes; 1 ends the server's side;
//! 2 lets the idle timeout pass; 3 sends a message whose body length is the next octet; 4 sends
//! one over `BODY_FOLLOWS_MAX` (it waits for 354); 5 SGNT, 6 VRFY, 7 HIST, 8 NOOP, 9 RSET,
//! 10 QUIT; 11 lets one second pass. After every step the driver drains the transmits and the
//! events, as the polling order on `Client` says. The seeds are the client transcripts of
//! `spec/dmtp.md` §9.14 in this form (`crates/dime-dmtp/tests/transcripts.rs`).
//!
//! Properties: no input panics; every transmit is exactly one client frame that decodes; once
//! the stream is over (closed, failed, or HELLO refused) no frame and no event comes out; a
//! stream reports at most one `Closed` or `Failed`; no more commands are pending than were
//! given.
#![no_main]

use dime_core::crypto::Hashed;
use dime_core::{Domain, Fingerprint};
use dime_dmtp::frame::{Split, split_frame};
use dime_dmtp::limits::{BODY_FOLLOWS_MAX, IDLE_TIMEOUT};
use dime_dmtp::{Client, ClientEvent, Mode, Outgoing, SignetName};
use dime_wire::Message;
use dime_wire::dmtp::ClientFrame;
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Some((&setup, mut rest)) = data.split_first() else {
        return;
    };
    let p = dime_testkit::insecure_provider();
    let ours = Domain::parse("a.test").expect("constant domain");
    let theirs = Domain::parse("b.test").expect("constant domain");
    let name = SignetName { domain: theirs.clone(), mailbox: None };
    let fp = Fingerprint([3; 64]);
    let mode = if setup & 2 == 0 { Mode::Transfer } else { Mode::Lookup };
    let mut now = Instant::now();
    let mut client = Client::new((setup & 1 == 0).then_some(&ours), mode, now);
    let mut commands = 1usize;
    let mut ends = 0usize;
    let mut over = false;
    let mut large_sent = false;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let message = |len: usize| Outgoing {
            origin: ours.clone(),
            origin_fingerprint: Fingerprint([1; 64]),
            destination: theirs.clone(),
            destination_fingerprint: Fingerprint([2; 64]),
            body: Hashed::new(p, vec![0x5a; len]),
        };
        match op % 12 {
            0 => {
                let (&n, tail) = rest.split_first().unwrap_or((&0, &[]));
                let (bytes, tail) = tail.split_at(usize::from(n).min(tail.len()));
                rest = tail;
                client.handle_input(bytes, now);
            }
            1 => client.handle_end(),
            2 => {
                now += IDLE_TIMEOUT;
                client.handle_timeout(now);
            }
            3 => {
                let (&n, tail) = rest.split_first().unwrap_or((&0, &[]));
                rest = tail;
                client.send_message(message(usize::from(n)), now);
            }
            // One large body per input: its hash and its frames are the slow part.
            4 if !large_sent => {
                large_sent = true;
                client.send_message(message(BODY_FOLLOWS_MAX + 1), now);
            }
            4 => client.noop(now),
            5 => client.lookup_signet(&name, (op & 16 != 0).then_some(&fp), now),
            6 => client.verify(&name, &fp, now),
            7 => client.history(&name, &fp, now),
            8 => client.noop(now),
            9 => client.rset(now),
            10 => client.quit(now),
            _ => {
                now += Duration::from_secs(1);
                client.handle_timeout(now);
            }
        }
        // A step gives at most four commands (RSET, MAIL, RCPT, DATA).
        commands += 4;
        assert!(client.pending() <= commands, "more pending than given");

        while let Some(frame) = client.poll_transmit() {
            assert!(!over, "a frame after the stream was over");
            let frame = frame.to_vec();
            let Ok(Split::Frame { payload, consumed }) = split_frame(&frame) else {
                panic!("a transmit is one frame");
            };
            assert_eq!(consumed, frame.len());
            ClientFrame::decode(payload).expect("client frames decode");
        }
        while let Some(ev) = client.poll_event() {
            assert!(!over, "an event after the stream was over: {ev:?}");
            if matches!(ev, ClientEvent::Closed | ClientEvent::Failed(_)) {
                ends += 1;
            }
        }
        assert!(ends <= 1, "one end per stream");
        if client.is_closed() {
            over = true;
            assert_eq!(client.poll_timeout(), None, "no timer once closed");
        }
    }
});
