//! Fuzzes the DMTP server machine (`spec/dmtp.md` §7.1) with the insecure test provider.
//!
//! Input: byte 0 picks the driver's decisions (accept, or one of the refusals, rotating per
//! event); byte 1 the size of the input chunks; the rest is the client's byte stream. Time
//! advances one second per chunk. Properties: no input panics; every transmit is exactly one
//! reply frame with a code of `spec/dmtp.md` §5.1 and that code's fixed text; a stored message
//! is exactly the size and hash DATA declared; after close, nothing more comes out.
#![no_main]

use dime_core::Domain;
use dime_dmtp::frame::{Split, split_frame};
use dime_dmtp::{Event, Refusal, ReplyCode, Server, ServerConfig, TransactionId, VerifyAnswer};
use dime_wire::Message;
use dime_wire::dmtp::Reply;
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

const REFUSALS: [Refusal; 7] = [
    Refusal::NotFound,
    Refusal::StaleFingerprint,
    Refusal::OriginNotVerified,
    Refusal::BadSignature,
    Refusal::Policy,
    Refusal::Temporary,
    Refusal::StoreFailed,
];

fuzz_target!(|data: &[u8]| {
    let (policy, chunk, stream) = match data {
        [p, c, rest @ ..] => (*p, usize::from(*c % 64) + 1, rest),
        _ => return,
    };
    let provider = dime_testkit::insecure_provider();
    let start = Instant::now();
    let mut now = start;
    let config = ServerConfig::new(Domain::parse("b.test").unwrap());
    let mut server = Server::new(*provider, config, now);
    let mut n = 0usize;
    let mut closed_seen = false;
    for piece in stream.chunks(chunk) {
        server.handle_input(piece, now);
        while let Some(ev) = server.poll_event() {
            n += 1;
            let refuse = policy != 0 && (usize::from(policy) + n) % 3 == 0;
            let why = REFUSALS[(usize::from(policy) + n) % REFUSALS.len()];
            let r = match ev {
                Event::NeedVerifyOrigin { .. } if refuse => server.reject_mail(why, now),
                Event::NeedVerifyOrigin { .. } => server.accept_mail(now),
                Event::NeedRecipient { .. } if refuse => server.reject_recipient(why, now),
                Event::NeedRecipient { .. } => server.accept_recipient(now),
                Event::MessageReceived(d) => {
                    assert!(!d.body.is_empty());
                    if refuse {
                        server.data_failed(why, now)
                    } else {
                        server.data_stored(TransactionId::new("tx-1").unwrap(), now)
                    }
                }
                Event::NeedSignet { .. } if refuse => server.lookup_failed(why, now),
                Event::NeedSignet { .. } => server.provide_signet(vec![1; 32], now),
                Event::NeedVerify { .. } => server.provide_verify(VerifyAnswer::Current, now),
                Event::NeedHistory { .. } => server.provide_history(vec![vec![2; 8]; 3], now),
                Event::Closed(_) => {
                    closed_seen = true;
                    Ok(())
                }
            };
            r.expect("the driver answers the event it was given");
        }
        while let Some(frame) = server.poll_transmit() {
            let Ok(Split::Frame { payload, consumed }) = split_frame(&frame) else {
                panic!("a transmit is one frame");
            };
            assert_eq!(consumed, frame.len());
            let reply = Reply::decode(payload).expect("replies decode");
            let code = ReplyCode(u16::try_from(reply.code).unwrap());
            assert!(code.is_known(), "unknown code {code}");
            assert_eq!(reply.text, code.text(), "reply text is the code's fixed text");
        }
        if server.is_closed() {
            assert!(!server.wants_input());
            server.handle_input(b"more", now);
            assert!(server.poll_transmit().is_none(), "nothing after close");
        }
        now += Duration::from_secs(1);
        server.handle_timeout(now);
    }
    let _ = closed_seen;
});
