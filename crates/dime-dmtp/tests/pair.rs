//! Client and server machines wired back to back in memory, with a driver that decides; the
//! limits of `spec/dmtp.md` §8 at the limit and one past it; hostile replies to the client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use dime_core::crypto::{Hashed, default_provider};
use dime_core::{Domain, Fingerprint};
use dime_dmtp::frame::{Split, encode_frame, split_frame};
use dime_dmtp::limits::*;
use dime_dmtp::*;
use dime_wire::Message;
use dime_wire::dmtp::{self, ClientFrame, client_frame::Command, reply::Detail};
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn domain(s: &str) -> Domain {
    Domain::parse(s).unwrap()
}

fn outgoing(body: Vec<u8>) -> Outgoing {
    Outgoing {
        origin: domain("a.test"),
        origin_fingerprint: Fingerprint([1; 64]),
        destination: domain("b.test"),
        destination_fingerprint: Fingerprint([2; 64]),
        body: Hashed::new(default_provider(), body),
    }
}

/// A pair with an accepting driver that keeps what it stores.
struct Pair {
    client: Client,
    server: Server,
    now: Instant,
    stored: Vec<Delivery>,
    client_events: Vec<ClientEvent>,
}

impl Pair {
    fn new(config: ServerConfig) -> Pair {
        let now = Instant::now();
        let p = *default_provider();
        Pair {
            client: Client::new(Some(&domain("a.test")), Mode::Transfer, now),
            server: Server::new(p, config, now),
            now,
            stored: Vec::new(),
            client_events: Vec::new(),
        }
    }

    fn default() -> Pair {
        Pair::new(ServerConfig::new(domain("b.test")))
    }

    /// Runs until neither side has anything to say.
    fn drive(&mut self) {
        loop {
            let mut progress = false;
            while let Some(f) = self.client.poll_transmit() {
                self.server.handle_input(&f.to_vec(), self.now);
                progress = true;
            }
            while let Some(ev) = self.server.poll_event() {
                progress = true;
                let now = self.now;
                match ev {
                    Event::NeedVerifyOrigin { .. } => self.server.accept_mail(now).unwrap(),
                    Event::NeedRecipient { .. } => self.server.accept_recipient(now).unwrap(),
                    Event::MessageReceived(d) => {
                        self.stored.push(*d);
                        let id = TransactionId::new(&format!("tx{}", self.stored.len())).unwrap();
                        self.server.data_stored(id, now).unwrap();
                    }
                    Event::NeedSignet { .. } => {
                        self.server.provide_signet(vec![7; 10], now).unwrap()
                    }
                    Event::NeedVerify { .. } => {
                        self.server.provide_verify(VerifyAnswer::Current, now).unwrap()
                    }
                    Event::NeedHistory { .. } => self
                        .server
                        .provide_history(vec![vec![1]; MAX_HISTORY_SIGNETS + 1], now)
                        .unwrap(),
                    Event::Closed(_) => {}
                }
            }
            while let Some(f) = self.server.poll_transmit() {
                self.client.handle_input(&f, self.now);
                progress = true;
            }
            while let Some(ev) = self.client.poll_event() {
                self.client_events.push(ev);
                progress = true;
            }
            if !progress {
                break;
            }
        }
    }

    fn refused_codes(&self) -> Vec<u16> {
        self.client_events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Refused { code, .. } => Some(code.0),
                _ => None,
            })
            .collect()
    }

    fn delivered(&self) -> usize {
        self.client_events.iter().filter(|e| matches!(e, ClientEvent::Delivered { .. })).count()
    }
}

#[test]
fn client_delivers_a_multi_frame_body_through_the_server() {
    let mut pair = Pair::default();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let txn = pair.client.send_message(outgoing(body.clone()), pair.now);
    pair.drive();
    assert!(
        matches!(&pair.client_events[0], ClientEvent::Greeted(g) if g.domain == domain("b.test"))
    );
    assert!(
        matches!(&pair.client_events[1], ClientEvent::Delivered { txn: t, id } if *t == txn && id.as_str() == "tx1")
    );
    assert_eq!(pair.stored.len(), 1);
    assert_eq!(pair.stored[0].body.bytes(), &body[..]);
    assert_eq!(pair.stored[0].body.sha512(), &default_provider().hash.sha512(&[&body]));
    assert_eq!(pair.stored[0].origin, domain("a.test"));
    assert_eq!(pair.stored[0].destination_fingerprint, Fingerprint([2; 64]));
}

#[test]
fn pipelined_transactions_and_lookups_on_one_stream() {
    let mut pair = Pair::default();
    for i in 0..5u8 {
        pair.client.send_message(outgoing(vec![i; 100 + usize::from(i)]), pair.now);
    }
    let name = SignetName { domain: domain("b.test"), mailbox: None };
    pair.client.lookup_signet(&name, None, pair.now);
    pair.client.verify(&name, &Fingerprint([3; 64]), pair.now);
    pair.client.noop(pair.now);
    pair.client.quit(pair.now);
    pair.drive();
    assert_eq!(pair.delivered(), 5);
    assert_eq!(
        pair.stored.iter().map(|d| d.body.len()).collect::<Vec<_>>(),
        [100, 101, 102, 103, 104]
    );
    assert!(pair.client_events.contains(&ClientEvent::Signet(vec![7; 10])));
    assert!(pair.client_events.contains(&ClientEvent::Verified(VerifyAnswer::Current)));
    assert_eq!(pair.client_events.last(), Some(&ClientEvent::Closed));
    assert!(pair.server.is_closed() && pair.client.is_closed());
}

#[test]
fn a_body_at_the_follow_limit_goes_at_once_and_one_past_waits_for_354() {
    let frames_of = |len: usize| {
        let now = Instant::now();
        let mut c = Client::new(Some(&domain("a.test")), Mode::Transfer, now);
        c.send_message(outgoing(vec![1; len]), now);
        c.noop(now);
        std::iter::from_fn(|| c.poll_transmit()).count()
    };
    let body_frames = BODY_FOLLOWS_MAX.div_ceil(BODY_CHUNK_SIZE);
    // HELLO, MAIL, RCPT, DATA, the body, NOOP: nothing waits.
    assert_eq!(frames_of(BODY_FOLLOWS_MAX), 4 + body_frames + 1);
    // HELLO, MAIL, RCPT, DATA; the body and the NOOP wait for the 354.
    assert_eq!(frames_of(BODY_FOLLOWS_MAX + 1), 4);
}

#[test]
fn all_sent_holds_once_the_last_frame_is_out_and_not_while_a_body_waits_for_354() {
    // At the follow limit: every frame goes at once, and only then is everything sent.
    let mut pair = Pair::default();
    pair.client.send_message(outgoing(vec![1; BODY_FOLLOWS_MAX]), pair.now);
    assert!(!pair.client.all_sent());
    let frames = std::iter::from_fn(|| pair.client.poll_transmit()).count();
    assert_eq!(frames, 4 + BODY_FOLLOWS_MAX.div_ceil(BODY_CHUNK_SIZE));
    assert!(pair.client.all_sent());

    // One past: DATA goes, and the body waits for the 354, so not everything is sent until the
    // server has answered and the body has gone too.
    let mut pair = Pair::default();
    pair.client.send_message(outgoing(vec![1; BODY_FOLLOWS_MAX + 1]), pair.now);
    let mut first = Vec::new();
    while let Some(f) = pair.client.poll_transmit() {
        first.push(f);
    }
    assert_eq!(first.len(), 4);
    assert!(!pair.client.all_sent());
    for f in &first {
        pair.server.handle_input(&f.to_vec(), pair.now);
    }
    while let Some(ev) = pair.server.poll_event() {
        match ev {
            Event::NeedVerifyOrigin { .. } => pair.server.accept_mail(pair.now).unwrap(),
            Event::NeedRecipient { .. } => pair.server.accept_recipient(pair.now).unwrap(),
            other => panic!("unexpected event {other:?}"),
        }
    }
    while let Some(f) = pair.server.poll_transmit() {
        pair.client.handle_input(&f, pair.now);
    }
    assert!(!pair.client.all_sent(), "the body is queued after the 354, not yet handed out");
    assert!(pair.client.poll_transmit().is_some());
    while pair.client.poll_transmit().is_some() {}
    assert!(pair.client.all_sent());
}

/// A server after HELLO, MAIL (accepted or refused) and RCPT (accepted, after an accepted
/// MAIL), its replies not yet read.
fn server_at_data(now: Instant, accept_mail: bool) -> Server {
    let mut s = server_with_mail(now, accept_mail);
    s.handle_input(&rcpt(), now);
    if accept_mail {
        assert!(matches!(s.poll_event(), Some(Event::NeedRecipient { .. })));
        s.accept_recipient(now).unwrap();
    }
    s
}

fn data_following(size: u64) -> Vec<u8> {
    frame(Command::Data(dmtp::Data { size, sha512: vec![0; 64], body_follows: true }))
}

fn body(chunk: &[u8]) -> Vec<u8> {
    frame(Command::Body(dmtp::Body { chunk: chunk.to_vec() }))
}

#[test]
fn a_refused_data_with_its_body_following_drops_exactly_that_body() {
    let now = Instant::now();
    let mut s = server_at_data(now, false);
    // The greeting, MAIL 553, RCPT 503 (no MAIL), DATA 503 (no MAIL): no reply for the body,
    // which is read
    // and dropped, never as commands; then the stream goes on.
    let mut input = data_following(7);
    input.extend(body(b"abc"));
    input.extend(body(b"defg"));
    input.extend(frame(Command::Noop(dmtp::Noop {})));
    s.handle_input(&input, now);
    assert_eq!(codes(&mut s), [250, 553, 503, 503, 250]);
    assert_eq!(s.poll_event(), None);
    assert!(!s.is_closed());
}

#[test]
fn a_dropped_body_one_octet_past_its_size_closes_the_stream() {
    let now = Instant::now();
    let mut s = server_at_data(now, false);
    let mut input = data_following(7);
    input.extend(body(b"abcdefgh"));
    s.handle_input(&input, now);
    assert_eq!(codes(&mut s), [250, 553, 503, 503, 552]);
    assert!(s.is_closed());
}

#[test]
fn a_following_body_over_the_size_limit_is_not_read_the_stream_closes() {
    // After a refused MAIL too: at the limit the body would be dropped, one past it closes.
    for (size, closed) in [(MAX_MESSAGE_SIZE, false), (MAX_MESSAGE_SIZE + 1, true)] {
        let now = Instant::now();
        let mut s = server_at_data(now, false);
        s.handle_input(&data_following(size), now);
        assert_eq!(s.is_closed(), closed, "size {size}");
    }
}

#[test]
fn message_size_at_the_limit_gets_354_and_one_past_gets_552() {
    // With the body waiting for the 354 or following at once: the same replies, and a size
    // over the limit closes the stream only when its body would follow.
    for body_follows in [false, true] {
        for (size, code) in [(MAX_MESSAGE_SIZE, 354), (MAX_MESSAGE_SIZE + 1, 552)] {
            let now = Instant::now();
            let mut s = server_at_data(now, true);
            s.handle_input(
                &frame(Command::Data(dmtp::Data { size, sha512: vec![0; 64], body_follows })),
                now,
            );
            assert_eq!(codes(&mut s), [250, 250, 250, code], "size {size}");
            assert_eq!(s.is_closed(), body_follows && code == 552, "size {size}");
        }
    }
}

#[test]
fn smaller_configured_message_size_at_the_limit_and_one_past() {
    let mut config = ServerConfig::new(domain("b.test"));
    config.max_message_size = 1000;
    let mut pair = Pair::new(config);
    pair.client.send_message(outgoing(vec![1; 1000]), pair.now);
    pair.client.send_message(outgoing(vec![1; 1001]), pair.now);
    pair.drive();
    assert_eq!(pair.delivered(), 1);
    assert_eq!(pair.refused_codes(), [552]);
}

fn reply_of(frame: &[u8]) -> dmtp::Reply {
    let Ok(Split::Frame { payload, .. }) = split_frame(frame) else { panic!() };
    dmtp::Reply::decode(payload).unwrap()
}

/// A server after HELLO and MAIL, waiting for the MAIL decision, its replies not yet read.
fn server_asking_mail(now: Instant) -> Server {
    let mut s = Server::new(*default_provider(), ServerConfig::new(domain("b.test")), now);
    s.handle_input(
        &frame(Command::Hello(dmtp::Hello { version: 1, domain: "a.test".into(), mode: 1 })),
        now,
    );
    s.handle_input(
        &frame(Command::Mail(dmtp::Mail { origin: "a.test".into(), fingerprint: vec![1; 64] })),
        now,
    );
    assert!(matches!(s.poll_event(), Some(Event::NeedVerifyOrigin { .. })));
    s
}

/// A server after HELLO and MAIL, accepted or refused, its replies not yet read.
fn server_with_mail(now: Instant, accept: bool) -> Server {
    let mut s = server_asking_mail(now);
    if accept {
        s.accept_mail(now).unwrap();
    } else {
        s.reject_mail(Refusal::OriginNotVerified, now).unwrap();
    }
    s
}

/// A server after HELLO and an accepted MAIL, its replies read.
fn server_after_mail(now: Instant) -> Server {
    let mut s = server_with_mail(now, true);
    while s.poll_transmit().is_some() {}
    s
}

fn frame(c: Command) -> Vec<u8> {
    encode_frame(&ClientFrame { command: Some(c) }).unwrap()
}

/// RCPT for b.test.
fn rcpt() -> Vec<u8> {
    frame(Command::Rcpt(dmtp::Rcpt { destination: "b.test".into(), fingerprint: vec![2; 64] }))
}

fn codes(s: &mut Server) -> Vec<u32> {
    std::iter::from_fn(|| s.poll_transmit()).map(|f| reply_of(&f).code).collect()
}

#[test]
fn recipients_at_the_limit_and_one_past() {
    let now = Instant::now();
    let mut s = server_after_mail(now);
    let rcpt = || {
        frame(Command::Rcpt(dmtp::Rcpt { destination: "b.test".into(), fingerprint: vec![2; 64] }))
    };
    for _ in 0..MAX_RECIPIENTS {
        s.handle_input(&rcpt(), now);
        assert!(matches!(s.poll_event(), Some(Event::NeedRecipient { .. })));
        s.accept_recipient(now).unwrap();
    }
    s.handle_input(&rcpt(), now);
    assert_eq!(s.poll_event(), None, "no lookup for a recipient over the limit");
    assert_eq!(codes(&mut s), [vec![250; MAX_RECIPIENTS], vec![452]].concat());
}

#[test]
fn transactions_at_the_limit_and_one_past() {
    let mut pair = Pair::default();
    for _ in 0..MAX_TRANSACTIONS {
        pair.client.send_message(outgoing(vec![5; 8]), pair.now);
    }
    pair.drive();
    assert_eq!(pair.delivered(), MAX_TRANSACTIONS as usize);
    pair.client.send_message(outgoing(vec![5; 8]), pair.now);
    pair.drive();
    assert_eq!(pair.refused_codes(), [452]);
    assert!(pair.server.is_closed());
}

#[test]
fn lookups_at_the_limit_and_one_past() {
    let mut pair = Pair::default();
    let name = SignetName { domain: domain("b.test"), mailbox: None };
    for _ in 0..=MAX_LOOKUPS {
        pair.client.lookup_signet(&name, None, pair.now);
    }
    pair.drive();
    let signets = pair.client_events.iter().filter(|e| matches!(e, ClientEvent::Signet(_))).count();
    assert_eq!(signets, MAX_LOOKUPS as usize);
    assert_eq!(pair.refused_codes(), [452]);
}

#[test]
fn errors_at_the_limit_close_and_one_fewer_does_not() {
    let now = Instant::now();
    let mut s = Server::new(*default_provider(), ServerConfig::new(domain("b.test")), now);
    s.handle_input(
        &frame(Command::Hello(dmtp::Hello { version: 1, domain: "a.test".into(), mode: 1 })),
        now,
    );
    for _ in 0..MAX_ERRORS - 1 {
        s.handle_input(&[0, 0, 0, 1, 0xff], now);
    }
    assert!(!s.is_closed());
    s.handle_input(&[0, 0, 0, 1, 0xff], now);
    assert!(s.is_closed());
    let c = codes(&mut s);
    assert_eq!(c.last(), Some(&421));
}

#[test]
fn frame_at_the_limit_is_read_and_one_past_is_refused_and_closes() {
    let now = Instant::now();
    let mut s = server_after_mail(now);
    // A frame of exactly MAX_FRAME_SIZE whose payload does not decode: read (500), stream open.
    let mut at = (MAX_FRAME_SIZE as u32).to_be_bytes().to_vec();
    at.resize(FRAME_HEADER_LEN + MAX_FRAME_SIZE, 0xff);
    s.handle_input(&at, now);
    assert_eq!(codes(&mut s), [500]);
    assert!(!s.is_closed());
    s.handle_input(&((MAX_FRAME_SIZE + 1) as u32).to_be_bytes(), now);
    assert_eq!(codes(&mut s), [500]);
    assert!(s.is_closed());
    assert!(matches!(s.poll_event(), Some(Event::Closed(ProtocolError::FrameTooLarge))));
}

#[test]
fn handshake_deadline_at_the_limit_and_one_before() {
    let now = Instant::now();
    let mut s = Server::new(*default_provider(), ServerConfig::new(domain("b.test")), now);
    assert_eq!(s.poll_timeout(), Some(now + HANDSHAKE_TIMEOUT));
    s.handle_timeout(now + HANDSHAKE_TIMEOUT - Duration::from_nanos(1));
    assert!(!s.is_closed());
    s.handle_timeout(now + HANDSHAKE_TIMEOUT);
    assert!(s.is_closed());
    assert_eq!(codes(&mut s), [421]);
}

#[test]
fn idle_deadline_at_the_limit_and_one_before_and_none_while_deciding() {
    let now = Instant::now();
    let mut s = server_after_mail(now);
    assert_eq!(s.poll_timeout(), Some(now + IDLE_TIMEOUT));
    s.handle_input(&rcpt(), now);
    assert_eq!(s.poll_timeout(), None, "no deadline while the driver decides");
    let later = now + Duration::from_secs(3600);
    s.accept_recipient(later).unwrap();
    s.handle_timeout(later + IDLE_TIMEOUT - Duration::from_nanos(1));
    assert!(!s.is_closed());
    s.handle_timeout(later + IDLE_TIMEOUT);
    assert!(s.is_closed());
}

#[test]
fn history_is_capped_by_the_server_and_the_client_refuses_more() {
    let mut pair = Pair::default();
    let name = SignetName { domain: domain("b.test"), mailbox: None };
    pair.client.history(&name, &Fingerprint([1; 64]), pair.now);
    pair.drive();
    assert!(
        pair.client_events
            .iter()
            .any(|e| matches!(e, ClientEvent::History(h) if h.len() == MAX_HISTORY_SIGNETS))
    );

    let now = Instant::now();
    let mut c = Client::new(None, Mode::Lookup, now);
    c.history(&name, &Fingerprint([1; 64]), now);
    c.handle_input(&greeting_frame(), now);
    let over = dmtp::Reply {
        code: 250,
        text: String::new(),
        detail: Some(Detail::History(dmtp::HistoryReply {
            signets: vec![vec![1]; MAX_HISTORY_SIGNETS + 1],
        })),
    };
    c.handle_input(&encode_frame(&over).unwrap(), now);
    let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert_eq!(events.last(), Some(&ClientEvent::Failed(ClientError::BadDetail)));
}

fn greeting_frame() -> Vec<u8> {
    encode_frame(&dmtp::Reply {
        code: 250,
        text: "ok".into(),
        detail: Some(Detail::Greeting(dmtp::Greeting {
            version: 1,
            domain: "b.test".into(),
            max_message_size: 10,
            max_recipients: 1,
            max_frame_size: 10,
        })),
    })
    .unwrap()
}

fn client_after(replies: &[Vec<u8>]) -> Vec<ClientEvent> {
    let now = Instant::now();
    let mut c = Client::new(Some(&domain("a.test")), Mode::Transfer, now);
    c.noop(now);
    for r in replies {
        c.handle_input(r, now);
    }
    let events = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(c.is_closed());
    events
}

#[test]
fn hostile_replies_close_the_client() {
    let reply =
        |code: u32| encode_frame(&dmtp::Reply { code, text: "x".into(), detail: None }).unwrap();
    let last = |events: Vec<ClientEvent>| events.last().cloned().unwrap();
    // Unknown code.
    assert_eq!(
        last(client_after(&[greeting_frame(), reply(299)])),
        ClientEvent::Failed(ClientError::UnknownCode)
    );
    // Endless continuation: more replies than commands.
    assert_eq!(
        last(client_after(&[greeting_frame(), reply(250), reply(250)])),
        ClientEvent::Failed(ClientError::UnexpectedReply)
    );
    // 250 to HELLO without a greeting.
    assert_eq!(last(client_after(&[reply(250)])), ClientEvent::Failed(ClientError::BadDetail));
    // A reply frame over the limit.
    assert_eq!(
        last(client_after(&[((MAX_FRAME_SIZE + 1) as u32).to_be_bytes().to_vec()])),
        ClientEvent::Failed(ClientError::Framing(ProtocolError::FrameTooLarge))
    );
    // 354 to NOOP.
    assert_eq!(
        last(client_after(&[greeting_frame(), reply(354)])),
        ClientEvent::Failed(ClientError::BadDetail)
    );
    // 421.
    assert_eq!(last(client_after(&[reply(421)])), ClientEvent::Failed(ClientError::ServiceClosing));
}

#[test]
fn client_times_out_waiting_for_a_reply() {
    let now = Instant::now();
    let mut c = Client::new(Some(&domain("a.test")), Mode::Transfer, now);
    let deadline = c.poll_timeout().unwrap();
    c.handle_timeout(deadline - Duration::from_nanos(1));
    assert!(!c.is_closed());
    c.handle_timeout(deadline);
    assert_eq!(c.poll_event(), Some(ClientEvent::Failed(ClientError::Timeout)));
}

#[test]
fn misuse_is_reported_not_panicked() {
    let now = Instant::now();
    let mut s = Server::new(*default_provider(), ServerConfig::new(domain("b.test")), now);
    assert_eq!(s.accept_mail(now), Err(Misuse("accept_mail")));
    assert!(s.data_stored(TransactionId::new("t").unwrap(), now).is_err());
    assert!(s.lookup_failed(Refusal::NotFound, now).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn server_survives_any_input(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
        let now = Instant::now();
        let mut s = Server::new(*default_provider(), ServerConfig::new(domain("b.test")), now);
        let mut out = 0usize;
        for c in &chunks {
            s.handle_input(c, now);
            while let Some(ev) = s.poll_event() {
                match ev {
                    Event::NeedVerifyOrigin { .. } => s.accept_mail(now).unwrap(),
                    Event::NeedRecipient { .. } => s.accept_recipient(now).unwrap(),
                    Event::MessageReceived(_) => s.data_stored(TransactionId::new("t").unwrap(), now).unwrap(),
                    Event::NeedSignet { .. } | Event::NeedVerify { .. } | Event::NeedHistory { .. } => {
                        s.lookup_failed(Refusal::NotFound, now).unwrap()
                    }
                    Event::Closed(_) => {}
                }
            }
            while let Some(f) = s.poll_transmit() {
                out += f.len();
            }
        }
        // Replies are small and fixed: never more than a few per input frame.
        prop_assert!(out <= 64 * (chunks.len() + 2) * 8);
    }

    #[test]
    fn client_survives_any_input(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let now = Instant::now();
        let mut c = Client::new(Some(&domain("a.test")), Mode::Transfer, now);
        c.send_message(outgoing(vec![1; 10]), now);
        c.handle_input(&bytes, now);
        while c.poll_event().is_some() {}
    }

    #[test]
    fn client_frames_round_trip(size in any::<u64>(), body in proptest::collection::vec(any::<u8>(), 0..256)) {
        for cmd in [
            Command::Data(dmtp::Data { size, sha512: body.clone(), body_follows: false }),
            Command::Body(dmtp::Body { chunk: body.clone() }),
        ] {
            let f = ClientFrame { command: Some(cmd) };
            let bytes = encode_frame(&f).unwrap();
            let Ok(Split::Frame { payload, consumed }) = split_frame(&bytes) else { panic!() };
            prop_assert_eq!(consumed, bytes.len());
            prop_assert_eq!(ClientFrame::decode(payload).unwrap(), f);
        }
    }
}

/// The reply to a body is the driver's decision, never the machine's: after the body has
/// arrived whole, nothing is sent (not even for commands pipelined behind it), however long
/// the driver takes, until `data_stored` (250 with the transaction id) or `data_failed` (its
/// refusal's code); then exactly one reply for the body, and the pipelined command's after
/// it (`spec/dmtp.md` §5, §6.3: a 250 only once the message is durable).
#[test]
fn no_reply_to_a_body_before_the_driver_decides() {
    for stored in [true, false] {
        let now = Instant::now();
        let mut s = server_at_data(now, true);
        assert_eq!(codes(&mut s), [250, 250, 250], "greeting, MAIL, RCPT");
        let payload = b"sealed envelope".to_vec();
        let sha512 = default_provider().hash.sha512(&[&payload]).to_vec();
        let data = dmtp::Data { size: payload.len() as u64, sha512, body_follows: true };
        s.handle_input(&frame(Command::Data(data)), now);
        assert_eq!(codes(&mut s), [354], "DATA");
        let mut input = body(&payload);
        input.extend(frame(Command::Noop(dmtp::Noop {})));
        s.handle_input(&input, now);
        let Some(Event::MessageReceived(d)) = s.poll_event() else { panic!("no delivery") };
        assert_eq!(&d.body[..], &payload[..]);
        assert_eq!(s.poll_transmit(), None, "a reply before the driver decided");
        // Time passes while the store works: still nothing, and the stream stays open.
        let later = now + Duration::from_secs(3600);
        s.handle_timeout(later);
        assert_eq!(s.poll_transmit(), None, "a reply before the driver decided");
        assert!(!s.is_closed());
        assert_eq!(s.poll_event(), None, "the pipelined NOOP waits behind the body");
        if stored {
            s.data_stored(TransactionId::new("txid-1").unwrap(), later).unwrap();
            let r = reply_of(&s.poll_transmit().unwrap());
            assert_eq!(r.code, 250);
            let Some(Detail::Accepted(a)) = r.detail else { panic!("{r:?}") };
            assert_eq!(a.transaction_id, "txid-1");
        } else {
            s.data_failed(Refusal::StoreFailed, later).unwrap();
            assert_eq!(reply_of(&s.poll_transmit().unwrap()).code, 451);
        }
        assert_eq!(codes(&mut s), [250], "the NOOP's reply, after the body's");
        assert_eq!(s.poll_event(), None);
    }
}

/// The end of the client's stream: between commands it closes the session quietly (no reply,
/// no error); in the middle of a frame or of a body, kept or dropped, it is an error
/// (`UnexpectedEnd`: its reply, then closed); while the driver decides, the session stays
/// open for the decision's reply (`spec/dmtp.md` §7.1).
#[test]
fn the_end_of_the_stream_is_quiet_between_commands_and_an_error_mid_frame_or_mid_body() {
    let now = Instant::now();
    let ended = |s: &mut Server| {
        s.handle_end(now);
        assert!(s.is_closed());
        assert!(!s.wants_input());
        (codes(s), std::iter::from_fn(|| s.poll_event()).collect::<Vec<_>>())
    };
    let unexpected = (
        vec![u32::from(ProtocolError::UnexpectedEnd.code().0)],
        vec![Event::Closed(ProtocolError::UnexpectedEnd)],
    );

    let mut s = server_after_mail(now);
    assert_eq!(ended(&mut s), (vec![], vec![]), "between commands");

    let mut s = server_after_mail(now);
    let noop = frame(Command::Noop(dmtp::Noop {}));
    s.handle_input(&noop[..noop.len() - 1], now);
    assert_eq!(ended(&mut s), unexpected, "mid-frame");

    for accepted in [true, false] {
        let mut s = server_at_data(now, accepted);
        let _ = codes(&mut s);
        let mut input = data_following(7);
        input.extend(body(b"abc"));
        s.handle_input(&input, now);
        let _ = codes(&mut s);
        assert_eq!(ended(&mut s), unexpected, "mid-body, body kept: {accepted}");
    }

    // MAIL waits for the driver: the end of input does not close the session before the
    // decision is answered.
    let mut s = server_asking_mail(now);
    s.handle_end(now);
    assert!(!s.is_closed(), "closed before the decision");
    s.accept_mail(now).unwrap();
    assert_eq!(codes(&mut s), [250, 250], "greeting, then MAIL's reply");
    assert_eq!(s.poll_event(), None);
}

/// The driver reads while the machine can use input: not while a decision is pending (even
/// with a frame buffered behind it), and not after close.
#[test]
fn wants_input_only_when_it_can_use_it() {
    let now = Instant::now();
    let mut s = Server::new(*default_provider(), ServerConfig::new(domain("b.test")), now);
    assert!(s.wants_input(), "a new stream");
    let hello = frame(Command::Hello(dmtp::Hello { version: 1, domain: "a.test".into(), mode: 1 }));
    s.handle_input(&hello[..3], now);
    assert!(s.wants_input(), "half a header");
    s.handle_input(&hello[3..], now);
    assert!(s.wants_input(), "after HELLO");
    let mut input =
        frame(Command::Mail(dmtp::Mail { origin: "a.test".into(), fingerprint: vec![1; 64] }));
    input.extend(frame(Command::Noop(dmtp::Noop {})));
    s.handle_input(&input, now);
    assert!(matches!(s.poll_event(), Some(Event::NeedVerifyOrigin { .. })));
    assert!(!s.wants_input(), "a decision pending, a NOOP buffered");
    s.accept_mail(now).unwrap();
    assert!(s.wants_input(), "the NOOP was read");
    assert_eq!(codes(&mut s), [250, 250, 250]);
    s.handle_input(&[0xff; 4], now);
    assert!(s.is_closed());
    assert!(!s.wants_input(), "closed");
}

/// A decision answers the question asked, and only that one: any other is misuse, and the
/// machine keeps waiting for the right one.
#[test]
fn a_decision_for_another_question_is_misuse() {
    let now = Instant::now();
    let mut s = server_with_mail(now, true);
    let _ = codes(&mut s);
    s.handle_input(&rcpt(), now);
    assert!(matches!(s.poll_event(), Some(Event::NeedRecipient { .. })));
    assert_eq!(s.accept_mail(now), Err(Misuse("accept_mail")));
    assert_eq!(s.reject_mail(Refusal::Policy, now), Err(Misuse("reject_mail")));
    assert_eq!(s.data_stored(TransactionId::new("t").unwrap(), now), Err(Misuse("data_stored")));
    assert_eq!(s.data_failed(Refusal::StoreFailed, now), Err(Misuse("data_failed")));
    assert_eq!(s.provide_signet(vec![1], now), Err(Misuse("provide_signet")));
    assert_eq!(s.provide_verify(VerifyAnswer::Current, now), Err(Misuse("provide_verify")));
    assert_eq!(s.provide_history(vec![], now), Err(Misuse("provide_history")));
    assert_eq!(s.lookup_failed(Refusal::NotFound, now), Err(Misuse("lookup_failed")));
    assert_eq!(codes(&mut s), Vec::<u32>::new(), "no reply for a misused decision");
    s.accept_recipient(now).unwrap();
    assert_eq!(codes(&mut s), [250]);
}

/// HIST gives at most MAX_HISTORY_SIGNETS signets, the newest, however many the driver has.
#[test]
fn history_keeps_the_newest_signets() {
    let now = Instant::now();
    for n in [0, 1, MAX_HISTORY_SIGNETS, MAX_HISTORY_SIGNETS + 1, 2 * MAX_HISTORY_SIGNETS + 3] {
        let mut s = Server::new(*default_provider(), ServerConfig::new(domain("b.test")), now);
        s.handle_input(
            &frame(Command::Hello(dmtp::Hello { version: 1, domain: String::new(), mode: 2 })),
            now,
        );
        s.handle_input(
            &frame(Command::Hist(dmtp::Hist {
                name: Some(dmtp::SignetName { domain: "b.test".into(), mailbox: String::new() }),
                from: vec![1; 64],
            })),
            now,
        );
        assert!(matches!(s.poll_event(), Some(Event::NeedHistory { .. })));
        let all: Vec<Vec<u8>> = (0..n).map(|i| (i as u32).to_be_bytes().to_vec()).collect();
        s.provide_history(all.clone(), now).unwrap();
        let replies: Vec<_> = std::iter::from_fn(|| s.poll_transmit()).collect();
        let Some(Detail::History(h)) = reply_of(replies.last().unwrap()).detail else {
            panic!("no history")
        };
        let keep = n.min(MAX_HISTORY_SIGNETS);
        assert_eq!(h.signets, all[n - keep..], "{n} signets");
    }
}

/// HELLO: a transfer session names a valid origin domain; a lookup session may name none,
/// and a domain it names must be valid.
#[test]
fn hello_needs_a_valid_domain_for_transfer_and_none_for_lookup() {
    let now = Instant::now();
    for (domain_text, mode, ok) in [
        ("a.test", 1, true),
        ("", 1, false),
        ("not a domain", 1, false),
        ("", 2, true),
        ("a.test", 2, true),
        ("not a domain", 2, false),
    ] {
        let mut s = Server::new(*default_provider(), ServerConfig::new(domain("b.test")), now);
        let hello = dmtp::Hello { version: 1, domain: domain_text.into(), mode };
        s.handle_input(&frame(Command::Hello(hello)), now);
        let got = codes(&mut s);
        assert_eq!(got.first() == Some(&250), ok, "{domain_text:?} mode {mode}: {got:?}");
        assert_eq!(s.is_closed(), !ok, "{domain_text:?} mode {mode}");
    }
}

/// DATA needs both MAIL and RCPT accepted.
#[test]
fn data_without_rcpt_is_out_of_sequence() {
    let now = Instant::now();
    let mut s = server_after_mail(now);
    s.handle_input(
        &frame(Command::Data(dmtp::Data { size: 7, sha512: vec![0; 64], body_follows: false })),
        now,
    );
    assert_eq!(codes(&mut s), [503]);
    assert_eq!(s.poll_event(), None);
    assert!(!s.is_closed());
}

/// A DATA refused as too large still counts as one of the stream's transactions.
#[test]
fn a_data_refused_as_too_large_counts_as_a_transaction() {
    let now = Instant::now();
    let mut config = ServerConfig::new(domain("b.test"));
    config.max_message_size = 100;
    config.max_transactions = 2;
    let mut s = Server::new(*default_provider(), config, now);
    s.handle_input(
        &frame(Command::Hello(dmtp::Hello { version: 1, domain: "a.test".into(), mode: 1 })),
        now,
    );
    let mail =
        || frame(Command::Mail(dmtp::Mail { origin: "a.test".into(), fingerprint: vec![1; 64] }));
    for _ in 0..2 {
        s.handle_input(&mail(), now);
        assert!(matches!(s.poll_event(), Some(Event::NeedVerifyOrigin { .. })));
        s.accept_mail(now).unwrap();
        s.handle_input(&rcpt(), now);
        assert!(matches!(s.poll_event(), Some(Event::NeedRecipient { .. })));
        s.accept_recipient(now).unwrap();
        s.handle_input(
            &frame(Command::Data(dmtp::Data {
                size: 101,
                sha512: vec![0; 64],
                body_follows: false,
            })),
            now,
        );
    }
    s.handle_input(&mail(), now);
    assert_eq!(s.poll_event(), Some(Event::Closed(ProtocolError::TooManyTransactions)));
    assert_eq!(*codes(&mut s).last().unwrap(), 452, "no third transaction");
}

/// A refused DATA whose body follows: at the size limit the body is read and dropped and the
/// stream goes on; one octet past it, the stream closes rather than read it.
#[test]
fn a_refused_following_body_at_the_size_limit_is_dropped_and_one_past_closes() {
    let now = Instant::now();
    for (size, closes) in [(100u64, false), (101, true)] {
        let mut config = ServerConfig::new(domain("b.test"));
        config.max_message_size = 100;
        let mut s = Server::new(*default_provider(), config, now);
        s.handle_input(
            &frame(Command::Hello(dmtp::Hello { version: 1, domain: "a.test".into(), mode: 1 })),
            now,
        );
        // No MAIL: the DATA is refused (503) with its body following.
        let mut input = data_following(size);
        if !closes {
            input.extend(body(&vec![7; size as usize]));
            input.extend(frame(Command::Noop(dmtp::Noop {})));
        }
        s.handle_input(&input, now);
        assert_eq!(s.is_closed(), closes, "size {size}");
        if !closes {
            assert_eq!(codes(&mut s), [250, 503, 250], "the body dropped, the NOOP read");
        }
    }
}

/// A refused DATA that declares an empty body following has no body to drop: the next frame
/// is a command (`spec/dmtp.md` §7.1).
#[test]
fn a_refused_following_body_of_zero_octets_drops_nothing() {
    let now = Instant::now();
    for accept_mail in [true, false] {
        let mut s = server_at_data(now, accept_mail);
        let _ = codes(&mut s);
        let mut input = data_following(0);
        input.extend(frame(Command::Noop(dmtp::Noop {})));
        s.handle_input(&input, now);
        let got = codes(&mut s);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_ne!(got[0], 354);
        assert_eq!(got[1], 250, "the NOOP is read as a command");
        assert!(!s.is_closed());
    }
}

/// Feeds `frames` to `s`, one at a time, and gives the events.
fn feed(s: &mut Server, frames: &[Vec<u8>], now: Instant) -> Vec<Event> {
    for f in frames {
        s.handle_input(f, now);
    }
    std::iter::from_fn(|| s.poll_event()).collect()
}

#[test]
fn a_transaction_is_under_way_from_its_accepted_mail_to_the_reply_to_its_body_or_its_end() {
    let now = Instant::now();
    let mut s = Server::new(*default_provider(), ServerConfig::new(domain("b.test")), now);
    let mut c = Client::new(Some(&domain("a.test")), Mode::Transfer, now);
    let next = |c: &mut Client| c.poll_transmit().unwrap().to_vec();
    let hello = next(&mut c);
    assert!(feed(&mut s, &[hello], now).is_empty());
    assert!(!s.in_transaction(), "after HELLO");
    // One delivered: MAIL, RCPT, DATA and its body (which follows at once).
    c.send_message(outgoing(vec![5; 100]), now);
    let (mail, rcpt, data, body) = (next(&mut c), next(&mut c), next(&mut c), next(&mut c));
    let ev = feed(&mut s, std::slice::from_ref(&mail), now);
    assert!(matches!(ev[..], [Event::NeedVerifyOrigin { .. }]));
    assert!(!s.in_transaction(), "a MAIL being decided");
    s.accept_mail(now).unwrap();
    assert!(s.in_transaction(), "an accepted MAIL");
    assert!(matches!(feed(&mut s, &[rcpt], now)[..], [Event::NeedRecipient { .. }]));
    assert!(s.in_transaction());
    s.accept_recipient(now).unwrap();
    assert!(s.in_transaction());
    assert!(feed(&mut s, &[data], now).is_empty());
    assert!(s.in_transaction(), "a body arriving");
    assert!(matches!(feed(&mut s, &[body], now)[..], [Event::MessageReceived(_)]));
    assert!(s.in_transaction(), "a body being stored");
    s.data_stored(TransactionId::new("tx1").unwrap(), now).unwrap();
    assert!(!s.in_transaction(), "answered");
    // Ended by RSET.
    assert!(matches!(
        feed(&mut s, std::slice::from_ref(&mail), now)[..],
        [Event::NeedVerifyOrigin { .. }]
    ));
    s.accept_mail(now).unwrap();
    assert!(s.in_transaction());
    c.rset(now);
    let rset = next(&mut c);
    assert!(feed(&mut s, &[rset], now).is_empty());
    assert!(!s.in_transaction(), "after RSET");
    // A refused MAIL starts none.
    assert!(matches!(feed(&mut s, &[mail], now)[..], [Event::NeedVerifyOrigin { .. }]));
    s.reject_mail(Refusal::Temporary, now).unwrap();
    assert!(!s.in_transaction(), "a refused MAIL");
}
