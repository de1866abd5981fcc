//! Replays the `C:`/`S:` transcripts of `spec/dmtp.md` §9 through the server machine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use dime_core::crypto::{Hashed, default_provider};
use dime_core::{Domain, Fingerprint, Mailbox};
use dime_dmtp::frame::{Split, encode_frame, split_frame};
use dime_dmtp::{Event, Refusal, Server, ServerConfig, SignetName, TransactionId, VerifyAnswer};
use dime_wire::Message;
use dime_wire::dmtp::{self, ClientFrame, client_frame::Command, reply::Detail};
use std::time::{Duration, Instant};

fn spec() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/dmtp.md")).unwrap()
}

/// Every ```dmtp block, with the heading it sits under.
fn transcripts() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut block: Option<Vec<String>> = None;
    for line in spec().lines() {
        if line.starts_with('#') {
            heading = line.to_owned();
        } else if line == "```dmtp" {
            block = Some(Vec::new());
        } else if line == "```" {
            if let Some(b) = block.take() {
                out.push((heading.clone(), b));
            }
        } else if let Some(b) = block.as_mut() {
            b.push(line.to_owned());
        }
    }
    out
}

fn fp(s: &str) -> Fingerprint {
    let c = s.strip_prefix("fp:").expect("fingerprint is fp:X");
    assert_eq!(c.len(), 1);
    Fingerprint([c.as_bytes()[0]; 64])
}

fn opt_fp(s: &str) -> Option<Fingerprint> {
    (s != "-").then(|| fp(s))
}

fn name(domain: &str, mailbox: &str) -> SignetName {
    SignetName {
        domain: Domain::parse(domain).unwrap(),
        mailbox: (mailbox != "-").then(|| Mailbox::parse(mailbox).unwrap()),
    }
}

fn wire_name(domain: &str, mailbox: &str) -> Option<dmtp::SignetName> {
    Some(dmtp::SignetName {
        domain: domain.to_owned(),
        mailbox: if mailbox == "-" { String::new() } else { mailbox.to_owned() },
    })
}

fn frame(cmd: Command) -> Vec<u8> {
    encode_frame(&ClientFrame { command: Some(cmd) }).unwrap()
}

/// `word rest`: the first word and everything after the single space that follows it.
fn split1(s: &str) -> (&str, &str) {
    s.split_once(' ').unwrap_or((s, ""))
}

fn client_bytes(line: &str) -> Vec<u8> {
    let (cmd, rest) = split1(line);
    let a: Vec<&str> = rest.split(' ').collect();
    match cmd {
        "HELLO" => {
            let mode = match a[2] {
                "TRANSFER" => dmtp::Mode::Transfer,
                "LOOKUP" => dmtp::Mode::Lookup,
                _ => dmtp::Mode::Unspecified,
            };
            frame(Command::Hello(dmtp::Hello {
                version: a[0].parse().unwrap(),
                domain: if a[1] == "-" { String::new() } else { a[1].to_owned() },
                mode: mode.into(),
            }))
        }
        "MAIL" => frame(Command::Mail(dmtp::Mail {
            origin: a[0].into(),
            fingerprint: fp(a[1]).0.to_vec(),
        })),
        "RCPT" => frame(Command::Rcpt(dmtp::Rcpt {
            destination: a[0].into(),
            fingerprint: fp(a[1]).0.to_vec(),
        })),
        "DATA" | "DATA+" => {
            let (size, hash) = split1(rest);
            let text = hash.strip_prefix("sha512:").unwrap();
            frame(Command::Data(dmtp::Data {
                size: size.parse().unwrap(),
                sha512: default_provider().hash.sha512(&[text.as_bytes()]).to_vec(),
                body_follows: cmd == "DATA+",
            }))
        }
        "BODY" => frame(Command::Body(dmtp::Body { chunk: rest.as_bytes().to_vec() })),
        "SGNT" => frame(Command::Sgnt(dmtp::Sgnt {
            name: wire_name(a[0], a[1]),
            fingerprint: opt_fp(a[2]).map(|f| f.0.to_vec()).unwrap_or_default(),
        })),
        "VRFY" => frame(Command::Vrfy(dmtp::Vrfy {
            name: wire_name(a[0], a[1]),
            fingerprint: fp(a[2]).0.to_vec(),
        })),
        "HIST" => frame(Command::Hist(dmtp::Hist {
            name: wire_name(a[0], a[1]),
            from: fp(a[2]).0.to_vec(),
        })),
        "NOOP" => frame(Command::Noop(dmtp::Noop {})),
        "RSET" => frame(Command::Rset(dmtp::Rset {})),
        "QUIT" => frame(Command::Quit(dmtp::Quit {})),
        "EMPTY" => encode_frame(&ClientFrame { command: None }).unwrap(),
        "JUNK" => vec![0, 0, 0, 2, 0xff, 0xff],
        "RAW" => format!("{rest}\r\n").into_bytes(),
        other => panic!("unknown client line {other}"),
    }
}

fn refusal(s: &str) -> Refusal {
    match s {
        "NotFound" => Refusal::NotFound,
        "StaleFingerprint" => Refusal::StaleFingerprint,
        "OriginNotVerified" => Refusal::OriginNotVerified,
        "BadSignature" => Refusal::BadSignature,
        "Policy" => Refusal::Policy,
        "Temporary" => Refusal::Temporary,
        "StoreFailed" => Refusal::StoreFailed,
        other => panic!("unknown refusal {other}"),
    }
}

fn expected_event(line: &str) -> Event {
    let (kind, rest) = split1(line);
    let a: Vec<&str> = rest.split(' ').collect();
    let d = |s: &str| Domain::parse(s).unwrap();
    match kind {
        "NeedVerifyOrigin" => Event::NeedVerifyOrigin { origin: d(a[0]), fingerprint: fp(a[1]) },
        "NeedRecipient" => Event::NeedRecipient { destination: d(a[0]), fingerprint: fp(a[1]) },
        "MessageReceived" => {
            let (origin, rest) = split1(rest);
            let (dest, body) = split1(rest);
            Event::MessageReceived(Box::new(dime_dmtp::Delivery {
                origin: d(origin),
                origin_fingerprint: fp("fp:A"),
                destination: d(dest),
                destination_fingerprint: fp("fp:B"),
                body: Hashed::new(default_provider(), body.as_bytes().to_vec()),
            }))
        }
        "NeedSignet" => Event::NeedSignet { name: name(a[0], a[1]), pin: opt_fp(a[2]) },
        "NeedVerify" => Event::NeedVerify { name: name(a[0], a[1]), fingerprint: fp(a[2]) },
        "NeedHistory" => Event::NeedHistory { name: name(a[0], a[1]), from: fp(a[2]) },
        other => panic!("unknown event {other}"),
    }
}

fn decide(server: &mut Server, line: &str, now: Instant) {
    let (what, rest) = split1(line);
    let r = match what {
        "accept_mail" => server.accept_mail(now),
        "reject_mail" => server.reject_mail(refusal(rest), now),
        "accept_recipient" => server.accept_recipient(now),
        "reject_recipient" => server.reject_recipient(refusal(rest), now),
        "data_stored" => server.data_stored(TransactionId::new(rest).unwrap(), now),
        "data_failed" => server.data_failed(refusal(rest), now),
        "provide_signet" => server.provide_signet(rest.as_bytes().to_vec(), now),
        "provide_verify" => {
            let (status, f) = split1(rest);
            let answer = if status == "current" {
                VerifyAnswer::Current
            } else {
                VerifyAnswer::Updated(fp(f))
            };
            server.provide_verify(answer, now)
        }
        "provide_history" => {
            server.provide_history(rest.split(',').map(|s| s.as_bytes().to_vec()).collect(), now)
        }
        "lookup_failed" => server.lookup_failed(refusal(rest), now),
        other => panic!("unknown decision {other}"),
    };
    r.unwrap();
}

fn next_reply(server: &mut Server) -> Option<dmtp::Reply> {
    let bytes = server.poll_transmit()?;
    let Ok(Split::Frame { payload, consumed }) = split_frame(&bytes) else { panic!("bad frame") };
    assert_eq!(consumed, bytes.len(), "one frame per transmit");
    Some(dmtp::Reply::decode(payload).unwrap())
}

fn check_reply(reply: &dmtp::Reply, want: &str, client_sent: &[u8]) {
    let (code, detail) = split1(want);
    assert_eq!(reply.code.to_string(), code, "reply code");
    // Never an echo of client input (spec/dmtp.md §10).
    if client_sent.len() >= 4 {
        assert!(!reply.text.as_bytes().windows(4).any(|w| {
            client_sent.windows(4).any(|c| c == w && !w.iter().all(u8::is_ascii_lowercase))
        }));
    }
    let (kind, arg) = split1(detail);
    match (kind, &reply.detail) {
        ("", None) => {}
        ("GREETING", Some(Detail::Greeting(g))) => assert_eq!(g.domain, arg),
        ("TXID", Some(Detail::Accepted(a))) => assert_eq!(a.transaction_id, arg),
        ("SIGNET", Some(Detail::Signet(s))) => assert_eq!(s.signet, arg.as_bytes()),
        ("VERIFY", Some(Detail::Verify(v))) => {
            let (status, f) = split1(arg);
            match status {
                "CURRENT" => assert_eq!(v.status, dmtp::verify_reply::Status::Current as i32),
                _ => {
                    assert_eq!(v.status, dmtp::verify_reply::Status::Updated as i32);
                    assert_eq!(v.current, fp(f).0.to_vec());
                }
            }
        }
        ("HISTORY", Some(Detail::History(h))) => assert_eq!(h.signets.len().to_string(), arg),
        (k, d) => panic!("detail {k} expected, got {d:?}"),
    }
}

fn replay(heading: &str, lines: &[String]) {
    let start = Instant::now();
    let mut now = start;
    let mut config = ServerConfig::new(Domain::parse("b.test").unwrap());
    for line in lines.iter().filter_map(|l| l.strip_prefix("X: ")) {
        match line.split_once(' ') {
            Some(("body_budget", v)) => {
                config.body_budget = dime_dmtp::budget::BodyBudget::new(v.parse().unwrap());
            }
            _ => panic!("{heading}: unknown setting {line}"),
        }
    }
    let mut server = Server::new(*default_provider(), config, now);
    let mut sent = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let ctx = format!("{heading}, line {}: {line}", n + 1);
        let (tag, body) = line.split_at(3);
        match tag {
            "C: " => {
                let bytes = client_bytes(body);
                sent.extend_from_slice(&bytes);
                server.handle_input(&bytes, now);
            }
            "E: " => {
                let got = server.poll_event();
                if body == "Closed" {
                    assert!(matches!(got, Some(Event::Closed(_))), "{ctx}: got {got:?}");
                } else {
                    assert_eq!(got, Some(expected_event(body)), "{ctx}");
                }
            }
            "D: " => {
                // The body's reply is the driver's decision: nothing may precede it.
                if body.starts_with("data_") {
                    assert!(server.poll_transmit().is_none(), "{ctx}: a reply before the decision");
                }
                decide(&mut server, body, now)
            }
            "S: " if body == "CLOSE" => {
                assert!(server.is_closed(), "{ctx}: not closed");
                assert!(server.poll_transmit().is_none(), "{ctx}: more output after close");
                assert!(!server.wants_input(), "{ctx}");
            }
            "S: " => {
                let reply = next_reply(&mut server).unwrap_or_else(|| panic!("{ctx}: no reply"));
                check_reply(&reply, body, &sent);
            }
            "X: " => {}
            "T: " => {
                let secs: u64 = body.strip_prefix('+').unwrap().parse().unwrap();
                now += Duration::from_secs(secs);
                server.handle_timeout(now);
            }
            _ => panic!("{ctx}: unknown line"),
        }
    }
    assert!(server.poll_transmit().is_none(), "{heading}: replies left over");
    assert_eq!(server.poll_event(), None, "{heading}: events left over");
}

#[test]
fn spec_transcripts_replay_through_the_server() {
    let all = transcripts();
    assert!(all.len() >= 15, "spec/dmtp.md §9 has {} transcripts", all.len());
    for (heading, lines) in &all {
        replay(heading, lines);
    }
}

/// The client byte stream of every transcript is a fuzz seed (`fuzz/seeds/dmtp_server/`, with
/// the two policy bytes "accept everything, 7-octet chunks", and `fuzz/seeds/dmtp_frame_decode/`).
/// `DIME_REGENERATE=1` rewrites them; otherwise a missing or different seed fails.
#[test]
fn fuzz_seeds_are_the_transcripts_client_streams() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds"));
    let regenerate = std::env::var_os("DIME_REGENERATE").is_some();
    let mut stale = Vec::new();
    for (i, (_, lines)) in transcripts().iter().enumerate() {
        let stream: Vec<u8> =
            lines.iter().filter_map(|l| l.strip_prefix("C: ")).flat_map(client_bytes).collect();
        let server_seed = [&[0u8, 6][..], &stream].concat();
        for (dir, bytes) in [("dmtp_server", server_seed), ("dmtp_frame_decode", stream)] {
            let path = root.join(dir).join(format!("transcript-{i:02}.bin"));
            if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
                if regenerate {
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(&path, &bytes).unwrap();
                } else {
                    stale.push(path.display().to_string());
                }
            }
        }
    }
    assert!(stale.is_empty(), "stale fuzz seeds {stale:?}: run with DIME_REGENERATE=1 and commit");
}

/// Every ```dmtp-client block (`spec/dmtp.md` §9.14).
fn client_transcripts() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut block: Option<Vec<String>> = None;
    for line in spec().lines() {
        if line == "```dmtp-client" {
            block = Some(Vec::new());
        } else if line == "```" {
            if let Some(b) = block.take() {
                out.push(b);
            }
        } else if let Some(b) = block.as_mut() {
            b.push(line.to_owned());
        }
    }
    out
}

/// A server reply from `<code> [detail]` (the `S:` syntax).
fn reply_bytes(line: &str) -> Vec<u8> {
    let (code, detail) = split1(line);
    let (kind, arg) = split1(detail);
    let detail = match kind {
        "" => None,
        "GREETING" => Some(Detail::Greeting(dmtp::Greeting {
            version: 1,
            domain: arg.to_owned(),
            max_message_size: dime_dmtp::limits::MAX_MESSAGE_SIZE,
            max_recipients: 1,
            max_frame_size: dime_dmtp::limits::MAX_FRAME_SIZE as u32,
        })),
        "TXID" => Some(Detail::Accepted(dmtp::Accepted { transaction_id: arg.to_owned() })),
        "SIGNET" => Some(Detail::Signet(dmtp::SignetReply { signet: arg.as_bytes().to_vec() })),
        other => panic!("unknown reply detail {other}"),
    };
    let code: u32 = code.parse().unwrap();
    encode_frame(&dmtp::Reply { code, text: "x".into(), detail }).unwrap()
}

fn client_event_text(ev: &dime_dmtp::ClientEvent) -> String {
    use dime_dmtp::ClientEvent::*;
    match ev {
        Greeted(g) => format!("Greeted {}", g.domain.as_str()),
        Delivered { txn, id } => format!("Delivered {} {id}", txn.0),
        Refused { txn, command, code, .. } => {
            let t = txn.map_or("-".to_owned(), |t| t.0.to_string());
            format!("Refused {t} {command:?} {code}")
        }
        Signet(s) => format!("Signet {}", String::from_utf8_lossy(s)),
        Verified(a) => format!("Verified {a:?}"),
        History(h) => format!("History {}", h.len()),
        Done(c) => format!("Done {c:?}"),
        Closed => "Closed".to_owned(),
        Failed(e) => format!("Failed {e:?}"),
    }
}

#[test]
fn spec_client_transcripts_replay_through_the_client() {
    use dime_dmtp::{Client, Mode, Outgoing};
    let all = client_transcripts();
    assert!(all.len() >= 6, "spec/dmtp.md §9.14 has {} client transcripts", all.len());
    for (b, lines) in all.iter().enumerate() {
        let now = Instant::now();
        let mut client: Option<Client> = None;
        for (n, line) in lines.iter().enumerate() {
            let ctx = format!("client transcript {b}, line {}: {line}", n + 1);
            let (tag, body) = line.split_at(3);
            match tag {
                "A: " => {
                    let (call, rest) = split1(body);
                    let a: Vec<&str> = rest.splitn(5, ' ').collect();
                    if call == "new" {
                        let d = (a[0] != "-").then(|| Domain::parse(a[0]).unwrap());
                        let mode = if a[1] == "LOOKUP" { Mode::Lookup } else { Mode::Transfer };
                        client = Some(Client::new(d.as_ref(), mode, now));
                        continue;
                    }
                    let c = client.as_mut().unwrap();
                    match call {
                        "send" => {
                            c.send_message(
                                Outgoing {
                                    origin: Domain::parse(a[0]).unwrap(),
                                    origin_fingerprint: fp(a[1]),
                                    destination: Domain::parse(a[2]).unwrap(),
                                    destination_fingerprint: fp(a[3]),
                                    body: Hashed::new(default_provider(), a[4].as_bytes().to_vec()),
                                },
                                now,
                            );
                        }
                        "sgnt" => c.lookup_signet(&name(a[0], a[1]), opt_fp(a[2]).as_ref(), now),
                        "noop" => c.noop(now),
                        "quit" => c.quit(now),
                        other => panic!("{ctx}: unknown call {other}"),
                    }
                }
                "C: " => {
                    let got = client.as_mut().unwrap().poll_transmit();
                    assert_eq!(got.map(|f| f.to_vec()), Some(client_bytes(body)), "{ctx}");
                }
                "S: " => client.as_mut().unwrap().handle_input(&reply_bytes(body), now),
                "E: " => {
                    let got = client.as_mut().unwrap().poll_event();
                    assert_eq!(got.as_ref().map(client_event_text).as_deref(), Some(body), "{ctx}");
                }
                _ => panic!("{ctx}: unknown line"),
            }
        }
        let c = client.as_mut().unwrap();
        assert_eq!(c.poll_transmit(), None, "client transcript {b}: frames left over");
        assert_eq!(c.poll_event(), None, "client transcript {b}: events left over");
    }
}

/// The client transcripts as seeds of the `dmtp_client` fuzz target (`fuzz/seeds/dmtp_client/`),
/// in its input form (`fuzz/fuzz_targets/dmtp_client.rs`): the set-up octet from `new`, one op
/// per call (`send` with its body's length, `sgnt` with or without a pin, `noop`, `quit`) and
/// each server reply as input steps of at most 255 octets. `DIME_REGENERATE=1` rewrites them;
/// otherwise a missing or different seed fails.
#[test]
fn fuzz_seeds_are_the_client_transcripts() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds"));
    let regenerate = std::env::var_os("DIME_REGENERATE").is_some();
    let mut stale = Vec::new();
    for (i, lines) in client_transcripts().iter().enumerate() {
        let mut seed = Vec::new();
        for line in lines {
            let (tag, body) = line.split_at(3);
            let (call, rest) = split1(body);
            let a: Vec<&str> = rest.splitn(5, ' ').collect();
            match (tag, call) {
                ("A: ", "new") => {
                    seed.push(u8::from(a[0] == "-") | (u8::from(a[1] == "LOOKUP") << 1));
                }
                ("A: ", "send") => seed.extend([3, u8::try_from(a[4].len()).unwrap()]),
                ("A: ", "sgnt") => seed.push(if a[2] == "-" { 5 } else { 17 }),
                ("A: ", "noop") => seed.push(8),
                ("A: ", "quit") => seed.push(10),
                ("A: ", other) => panic!("no fuzz op for the call {other}"),
                ("S: ", _) => {
                    for piece in reply_bytes(body).chunks(255) {
                        seed.extend([0, u8::try_from(piece.len()).unwrap()]);
                        seed.extend_from_slice(piece);
                    }
                }
                _ => {}
            }
        }
        let path = root.join("dmtp_client").join(format!("client-transcript-{i:02}.bin"));
        if std::fs::read(&path).ok().as_deref() != Some(&seed[..]) {
            if regenerate {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &seed).unwrap();
            } else {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(stale.is_empty(), "stale fuzz seeds {stale:?}: run with DIME_REGENERATE=1 and commit");
}
