//! Negative vectors (`spec/envelope.md` §15): messages that break exactly one rule of the
//! spec, each with the error class every reader must return. The sealer's test-only quirks
//! (`crate::seal::quirks`) make the forbidden encodings and sign what they write, so a reader
//! without the rule would accept the message. Generated deterministically, compared with
//! `spec/vectors/envelope/negative-*.json` (`DIME_REGEN_VECTORS=1` rewrites them), and opened
//! as every role they list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::seal::quirks::{self, Quirks};
use crate::*;
use dime_core::crypto::{CryptoProvider, Ed25519Seed, X25519Secret, default_provider};
use dime_core::{Domain, Mailbox};
use dime_testkit::{seeded_rng, vectors_dir};
use serde_json::{Value, json};

struct Actor {
    enc: ActorSecret,
    sign: Ed25519Seed,
    keys: ActorKeys,
}

/// The actors of `tests/common` (the positive vectors' keys).
fn actor(p: &CryptoProvider, n: u8) -> Actor {
    let enc = ActorSecret::new(p, X25519Secret::from_bytes([n; 32]));
    let sign = Ed25519Seed::from_bytes([n.wrapping_add(100); 32]);
    let keys = ActorKeys { encryption: *enc.public(), signing: p.signature.public_key(&sign) };
    Actor { enc, sign, keys }
}

struct World {
    author: Actor,
    origin: Actor,
    dest: Actor,
    recip: Actor,
    addressing: Addressing,
}

fn world(p: &CryptoProvider) -> World {
    let (author, origin, dest, recip) = (actor(p, 1), actor(p, 2), actor(p, 3), actor(p, 4));
    let addressing = Addressing {
        author: Mailbox::parse("alice@example.com").unwrap(),
        author_keys: author.keys,
        origin: Domain::parse("example.com").unwrap(),
        origin_keys: origin.keys,
        destination: Domain::parse("example.org").unwrap(),
        destination_keys: dest.keys,
        recipient: Mailbox::parse("bob@example.org").unwrap(),
        recipient_keys: recip.keys,
    };
    World { author, origin, dest, recip, addressing }
}

/// One display part and an attachment of `attachment_len` octets.
fn message(attachment_len: usize) -> Message {
    Message {
        common_headers: Headers::from_pairs([
            ("From", "Alice <alice@example.com>"),
            ("To", "Bob <bob@example.org>"),
            ("Subject", "negative vector"),
        ])
        .unwrap(),
        other_headers: Headers::new(),
        parts: vec![
            Part {
                kind: PartKind::Display,
                info: PartInfo { content_type: "text/plain".into(), filename: String::new() },
                data: b"Hello Bob.".to_vec(),
            },
            Part {
                kind: PartKind::Attachment,
                info: PartInfo {
                    content_type: "application/octet-stream".into(),
                    filename: "a.bin".into(),
                },
                data: (0..attachment_len).map(|i| (i * 7 % 251) as u8).collect(),
            },
        ],
    }
}

/// How a message is made wrong.
enum Breakage {
    /// Seal with these sealer quirks (signatures valid over what is written).
    Quirks(Quirks),
    /// Seal a changed message whose header fields the writer did not check (§8.3).
    Headers(fn(&mut Message)),
    /// Seal a changed message whose part info the writer did not check (§8.4).
    PartInfo(fn(&mut Message)),
}

/// The common headers of [`message`] with one field's value replaced, unchecked.
fn subject(m: &mut Message, value: &'static str) {
    m.common_headers = Headers::unchecked(&[
        ("From", "Alice <alice@example.com>"),
        ("To", "Bob <bob@example.org>"),
        ("Subject", value),
    ]);
}

/// The rules of chunk contents (§8): a reader refuses them as it decodes a content it opened;
/// inspection decodes no content, so it does not report them (§12).
const CONTENT_RULES: [&str; 5] = ["name", "header-name", "header-value", "bcc-header", "part-info"];

struct Case {
    name: &'static str,
    description: &'static str,
    spec: &'static str,
    seed: u64,
    attachment_len: usize,
    breakage: Breakage,
    /// The roles that must refuse it.
    refused_by: &'static [&'static str],
    /// `framing` (a named rule, §14) or `unauthentic`.
    class: &'static str,
    /// The rule's name, for the framing class.
    rule: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "negative-empty-last-segment",
            description: "the attachment chunk's padded payload is exactly one segment (65536 \
                      octets), encoded as a full segment followed by an empty last segment \
                      instead of one full last segment; every signature is valid",
            spec: "spec/envelope.md §3.3",
            seed: 2001,
            // Part info (32 octets) + 65000 = 65032: padme gives P = 65536 = SEG.
            attachment_len: 65_000,
            breakage: Breakage::Quirks(Quirks { empty_last_segment: true, ..Quirks::default() }),
            refused_by: &["author", "origin", "destination", "recipient"],
            class: "framing",
            rule: "segment-length",
        },
        Case {
            name: "negative-tree-count",
            description: "the author tree signature chunk (index t) lists and signs a tree of t - 1 \
                      entries, leaving out the attachment chunk just before it; every tag and \
                      signature is valid, the origin signature included",
            spec: "spec/envelope.md §7.1",
            seed: 2002,
            attachment_len: 300,
            breakage: Breakage::Quirks(Quirks { short_tree: true, ..Quirks::default() }),
            // The destination cannot open the tree signature chunk (§6).
            refused_by: &["author", "origin", "recipient"],
            class: "framing",
            rule: "tree-count",
        },
        Case {
            name: "negative-header-value-c0",
            description: "the Subject value holds ESC (U+001B, a C0 control character other \
                      than CR, LF and NUL) followed by a terminal colour sequence",
            spec: "spec/envelope.md §8.3",
            seed: 2003,
            attachment_len: 300,
            breakage: Breakage::Headers(|m| subject(m, "negative \u{1b}[31mvector")),
            refused_by: &["author", "recipient"],
            class: "framing",
            rule: "header-value",
        },
        Case {
            name: "negative-header-value-del",
            description: "the Subject value holds DEL (U+007F)",
            spec: "spec/envelope.md §8.3",
            seed: 2004,
            attachment_len: 300,
            breakage: Breakage::Headers(|m| subject(m, "negative\u{7f} vector")),
            refused_by: &["author", "recipient"],
            class: "framing",
            rule: "header-value",
        },
        Case {
            name: "negative-header-value-c1",
            description: "the Subject value holds CSI (U+009B, a C1 control character, UTF-8 \
                      c2 9b) followed by a terminal colour sequence",
            spec: "spec/envelope.md §8.3",
            seed: 2005,
            attachment_len: 300,
            breakage: Breakage::Headers(|m| subject(m, "negative \u{9b}31mvector")),
            refused_by: &["author", "recipient"],
            class: "framing",
            rule: "header-value",
        },
        Case {
            name: "negative-header-name",
            description: "an other-headers field is named \"X Mailer\" (a space, octet 32, is \
                      not a name octet)",
            spec: "spec/envelope.md §8.3",
            seed: 2006,
            attachment_len: 300,
            breakage: Breakage::Headers(|m| {
                m.other_headers = Headers::unchecked(&[("X Mailer", "negative")]);
            }),
            refused_by: &["author", "recipient"],
            class: "framing",
            rule: "header-name",
        },
        Case {
            name: "negative-bcc-header",
            description: "the common headers carry a Bcc field naming another recipient",
            spec: "spec/envelope.md §8.3, §13",
            seed: 2007,
            attachment_len: 300,
            breakage: Breakage::Headers(|m| {
                m.common_headers = Headers::unchecked(&[
                    ("From", "Alice <alice@example.com>"),
                    ("To", "Bob <bob@example.org>"),
                    ("Bcc", "Carol <carol@example.net>"),
                    ("Subject", "negative vector"),
                ]);
            }),
            refused_by: &["author", "recipient"],
            class: "framing",
            rule: "bcc-header",
        },
        Case {
            name: "negative-noncanonical-mailbox",
            description: "the destination chunk names the recipient bob@EXAMPLE.ORG, not its \
                      canonical form bob@example.org; the signatures bind the canonical \
                      destination domain",
            spec: "spec/envelope.md §8.2",
            seed: 2008,
            attachment_len: 300,
            breakage: Breakage::Quirks(Quirks {
                noncanonical_recipient: true,
                ..Quirks::default()
            }),
            refused_by: &["author", "destination", "recipient"],
            class: "framing",
            rule: "name",
        },
        Case {
            name: "negative-part-info",
            description: "the attachment's file name holds HTAB (U+0009): part info allows no \
                      control character, HTAB included",
            spec: "spec/envelope.md §8.4",
            seed: 2009,
            attachment_len: 300,
            breakage: Breakage::PartInfo(|m| m.parts[1].info.filename = "a\tb.bin".into()),
            refused_by: &["author", "recipient"],
            class: "framing",
            rule: "part-info",
        },
    ]
}

fn actor_json(p: &CryptoProvider, a: &Actor, id: &str) -> Value {
    json!({
        "id": id,
        "x25519_secret": hex::encode(a.enc.secret().expose()),
        "x25519_public": hex::encode(a.keys.encryption.0),
        "ed25519_public": hex::encode(p.signature.public_key(&a.sign).0),
    })
}

fn build(p: &CryptoProvider, case: &Case) -> Value {
    let w = world(p);
    let mut m = message(case.attachment_len);
    let mut rng = seeded_rng(case.seed);
    let msg = match &case.breakage {
        Breakage::Headers(change) | Breakage::PartInfo(change) => {
            change(&mut m);
            let q = Quirks {
                unchecked_part_info: matches!(case.breakage, Breakage::PartInfo(_)),
                ..Quirks::default()
            };
            quirks::with(q, || {
                seal_message_origin_signed(
                    p,
                    &mut rng,
                    &w.addressing,
                    Signer::Author(&w.author.sign),
                    &w.origin.sign,
                    &m,
                )
                .unwrap()
            })
        }
        Breakage::Quirks(q) => quirks::with(*q, || {
            seal_message_origin_signed(
                p,
                &mut rng,
                &w.addressing,
                Signer::Author(&w.author.sign),
                &w.origin.sign,
                &m,
            )
            .unwrap()
        }),
    };
    json!({
        "vector": "negative",
        "description": case.description,
        "spec": case.spec,
        "provider": p.name,
        "rng_seed": case.seed,
        "kind": "authored",
        "actors": {
            "author": actor_json(p, &w.author, &w.addressing.author.to_string()),
            "origin": actor_json(p, &w.origin, w.addressing.origin.as_str()),
            "destination": actor_json(p, &w.dest, w.addressing.destination.as_str()),
            "recipient": actor_json(p, &w.recip, &w.addressing.recipient.to_string()),
        },
        "author_signing_key": "author",
        "destination_domain": w.addressing.destination.as_str(),
        "refused_by": case.refused_by,
        "error": { "class": case.class, "rule": case.rule },
        "message_hex": hex::encode(&msg),
    })
}

#[allow(clippy::disallowed_methods)]
fn write(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn negative_vectors_are_up_to_date() {
    let p = default_provider();
    let dir = vectors_dir().join("envelope");
    let regen = std::env::var("DIME_REGEN_VECTORS").is_ok_and(|v| v == "1");
    for case in &cases() {
        let text = serde_json::to_string_pretty(&build(p, case)).unwrap() + "\n";
        let path = dir.join(format!("{}.json", case.name));
        if regen {
            write(&path, &text);
        }
        let stored = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with DIME_REGEN_VECTORS=1)", path.display()));
        assert!(stored == text, "{} is stale: run with DIME_REGEN_VECTORS=1", path.display());
    }
}

/// Whether `e` is the error a vector names (§14): a framing error naming its rule, or the
/// single "does not authenticate".
fn is_expected(e: &OpenError, class: &str, rule: &str) -> bool {
    match (class, e) {
        ("unauthentic", OpenError::Unauthentic) => true,
        ("framing", OpenError::Decode(d)) => match rule {
            "segment-length" => *d == DecodeError::SegmentLength,
            "version" => matches!(d, DecodeError::UnsupportedVersion(_)),
            "tree-count" => *d == DecodeError::TreeCount,
            "name" => *d == DecodeError::Name,
            "header-name" => *d == DecodeError::HeaderName,
            "header-value" => *d == DecodeError::HeaderValue,
            "bcc-header" => *d == DecodeError::BccHeader,
            "part-info" => *d == DecodeError::PartInfo,
            _ => false,
        },
        _ => false,
    }
}

/// Opens `msg` as `role` and verifies what that role can (§7.4).
fn open_and_verify(p: &CryptoProvider, w: &World, msg: &[u8], role: &str) -> Result<(), OpenError> {
    let (a, o) = (&w.author.keys.signing, &w.origin.keys.signing);
    match role {
        "author" => open_as_author(p, msg, &w.author.enc)?.verify(p, a, Some(o)).map(|_| ()),
        "origin" => open_as_origin(p, msg, &w.origin.enc)?.verify(p, a).map(|_| ()),
        "destination" => open_as_destination(p, msg, &w.dest.enc)?
            .verify(p, o, &w.addressing.destination)
            .map(|_| ()),
        "recipient" => open_as_recipient(p, msg, &w.recip.enc)?.verify(p, a, Some(o)).map(|_| ()),
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn negative_vectors_are_refused_with_their_error() {
    let p = default_provider();
    let w = world(p);
    let dir = vectors_dir().join("envelope");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if v["vector"] != "negative" {
            continue;
        }
        seen += 1;
        let msg = hex::decode(v["message_hex"].as_str().unwrap()).unwrap();
        let class = v["error"]["class"].as_str().unwrap();
        let rule = v["error"]["rule"].as_str().unwrap_or_default();
        for role in v["refused_by"].as_array().unwrap() {
            let role = role.as_str().unwrap();
            match open_and_verify(p, &w, &msg, role) {
                Ok(()) => panic!("{}: accepted by the {role}", path.display()),
                Err(e) => assert!(
                    is_expected(&e, class, rule),
                    "{}: the {role} returned {e:?}, expected {class} {rule}",
                    path.display()
                ),
            }
        }
        // Inspection with the recipient's key reports a framing error (and refuses nothing,
        // §12); it decodes no content, so a content rule of §8 is not its to report.
        let ins = inspect(p, &msg, Some(&w.recip.enc));
        if !CONTENT_RULES.contains(&rule) {
            assert!(ins.error.is_some(), "{}: inspect reports no error", path.display());
        }
    }
    assert_eq!(seen, cases().len(), "one stored file per negative case");
}
