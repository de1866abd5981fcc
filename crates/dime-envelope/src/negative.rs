//! Negative vectors (`spec/envelope.md` §15): messages that break exactly one rule of the
//! spec, each with the error class every reader must return. The sealer's test-only quirks
//! (`crate::seal::quirks`) make the forbidden encodings and sign what they write, so a reader
//! without the rule would accept the message. Generated deterministically, compared with
//! `spec/vectors/envelope/negative-*.json` (`DIME_REGEN_VECTORS=1` rewrites them), and opened
//! as every role they list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::seal::quirks::{self, Quirks};
use crate::*;
use dime_core::crypto::{AeadKey, CryptoProvider, Ed25519Seed, X25519Secret, default_provider};
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
    /// Seal with changed addresses (the origin signs them: §7.5 is not the sealer's).
    Addressing(fn(&mut Addressing)),
    /// Seal as the author does, without the origin signature chunk (§7.3, §7.4).
    NoOriginSignature,
    /// The message is sound; the key overlay of its recipient chunks beside it breaks a rule
    /// of §16 (or, for `changed_message`, the overlay is sound and the message was changed
    /// by the overlay's holder).
    Overlay(OverlayBreak),
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
    /// The roles that must refuse it (for an overlay case: the recipient opening through
    /// the overlay).
    refused_by: &'static [&'static str],
    /// The roles that must open and verify it (§7.4, §7.5) without an error (each with its
    /// own slots); a role in neither list is not pinned.
    accepted_by: &'static [&'static str],
    /// `framing` (a named rule, §14), `unauthentic`, or `unverified` (a named rule of §7.4 or
    /// §7.5 that refuses a message whose every tag and signature is valid).
    class: &'static str,
    /// The rule's name, for the framing and unverified classes.
    rule: &'static str,
}

fn cases() -> Vec<Case> {
    let mut v = vec![
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
            accepted_by: &[],
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
            accepted_by: &["destination"],
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
            accepted_by: &["origin", "destination"],
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
            accepted_by: &["origin", "destination"],
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
            accepted_by: &["origin", "destination"],
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
            accepted_by: &["origin", "destination"],
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
            accepted_by: &["origin", "destination"],
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
            accepted_by: &["origin"],
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
            accepted_by: &["origin", "destination"],
            class: "framing",
            rule: "part-info",
        },
        Case {
            name: "negative-no-origin-signature",
            description: "the message as its author sealed it, without the origin signature \
                      chunk (or with it cut off by whoever held the message); both author \
                      signatures are valid",
            spec: "spec/envelope.md §7.4, §7.5 rule 3",
            seed: 2010,
            attachment_len: 300,
            breakage: Breakage::NoOriginSignature,
            // The author's own copy and the origin (before it signs) read it as it is.
            refused_by: &["destination", "recipient"],
            accepted_by: &["author", "origin"],
            class: "unverified",
            rule: "no-origin-signature",
        },
        Case {
            name: "negative-author-domain",
            description: "an authored message whose author mailbox (alice@example.net) is not \
                      of the origin domain (example.com) that signed it; every signature is \
                      valid",
            spec: "spec/envelope.md §7.5 (origin, rule 4)",
            seed: 2011,
            attachment_len: 300,
            breakage: Breakage::Addressing(|a| {
                a.author = Mailbox::parse("alice@example.net").unwrap();
            }),
            // The destination cannot see the author (§6).
            refused_by: &["origin", "recipient"],
            accepted_by: &["destination"],
            class: "unverified",
            rule: "author-domain",
        },
        Case {
            name: "negative-recipient-domain",
            description: "the destination chunk names the recipient bob@example.net, not of \
                      the destination domain (example.org) the author and the origin signed; \
                      every signature is valid",
            spec: "spec/envelope.md §7.5 rules 1 and 5",
            seed: 2012,
            attachment_len: 300,
            breakage: Breakage::Addressing(|a| {
                a.recipient = Mailbox::parse("bob@example.net").unwrap();
            }),
            // The origin cannot see the recipient (§6).
            refused_by: &["destination", "recipient"],
            accepted_by: &["origin"],
            class: "unverified",
            rule: "recipient-domain",
        },
        Case {
            name: "negative-slot-algorithm",
            description: "the recipient slot of the display chunk has key-encryption algorithm \
                      03 (reserved for a hybrid, not defined by this version), sealed under \
                      the recipient's KEK with 03 in its associated data; every other slot, \
                      tag and signature is valid",
            spec: "spec/envelope.md §4.1",
            seed: 2013,
            attachment_len: 300,
            breakage: Breakage::Quirks(Quirks {
                slot_alg: Some((ChunkType::Display, Role::Recipient, 0x03)),
                ..Quirks::default()
            }),
            // Every reader checks every slot's id, its own or not (§4.1).
            refused_by: &["author", "origin", "destination", "recipient"],
            accepted_by: &[],
            class: "framing",
            rule: "algorithm",
        },
        Case {
            name: "negative-slot-algorithm-role",
            description: "the author slot of the transit chunk has key-encryption algorithm 02 \
                      (transit, the transit role's), sealed under the author's KEK with 02 in \
                      its associated data",
            spec: "spec/envelope.md §4.1",
            seed: 2014,
            attachment_len: 300,
            breakage: Breakage::Quirks(Quirks {
                slot_alg: Some((ChunkType::Transit, Role::Author, 0x02)),
                ..Quirks::default()
            }),
            refused_by: &["author", "origin", "destination", "recipient"],
            accepted_by: &[],
            class: "framing",
            rule: "algorithm",
        },
        Case {
            name: "negative-signature-algorithm",
            description: "the author full signature carries algorithm id 02 (reserved, not \
                      defined by this version), the Ed25519 signature made over the input \
                      with 02 as its algorithm octet",
            spec: "spec/envelope.md §4.1, §7",
            seed: 2015,
            attachment_len: 300,
            breakage: Breakage::Quirks(Quirks { full_sig_alg: Some(0x02), ..Quirks::default() }),
            // The destination cannot open the full signature chunk (§6).
            refused_by: &["author", "origin", "recipient"],
            accepted_by: &["destination"],
            class: "framing",
            rule: "algorithm",
        },
    ];
    v.extend(overlay_cases());
    v
}

/// When the vectors' origin signs (`spec/envelope.md` §7.3): 2028-01-15.
const SIGNED_AT: u64 = 1_831_593_600;

/// The holder of the overlays of the overlay cases: its X25519 secret and its read key.
const HOLDER_SECRET: [u8; 32] = [5; 32];
const READ_KEY: [u8; 32] = [6; 32];

/// The parts of a key overlay (§16.1-§16.4), each of which an overlay case may change before
/// it is sealed. Written here from the spec, not with the sealer of `overlay.rs`.
struct Ov {
    magic: [u8; 7],
    version: u8,
    form: u8,
    /// The KEK is form 01's (to `holder_secret`'s public key), else form 02's (`read_key`).
    x25519: bool,
    /// Form 01 with the all-zero point as `E`: the KEK is derived from the all-zero `Z`.
    low_order_e: bool,
    holder_secret: [u8; 32],
    read_key: [u8; 32],
    /// The message id of the form 02 KEK's salt.
    kek_mid: [u8; 32],
    ad_form: u8,
    ad_mid: [u8; 32],
    /// The 42 octets whose SHA-512 the associated data carry.
    ad_header: [u8; 42],
    /// The count written (`None`: the number of entries).
    count: Option<u16>,
    entries: Vec<(u8, u16, [u8; 32])>,
    trailing: Vec<u8>,
}

impl Ov {
    /// The sound read-key overlay of the message whose header is `h`, with `keys`.
    fn sound(h: [u8; 42], keys: &ChunkKeys) -> Ov {
        let mid: [u8; 32] = h[10..42].try_into().unwrap();
        let entries =
            keys.chunks().map(|(t, i)| (t.code(), i, *keys.key_for(t, i).unwrap())).collect();
        Ov {
            magic: OVERLAY_MAGIC,
            version: OVERLAY_VERSION,
            form: 2,
            x25519: false,
            low_order_e: false,
            holder_secret: HOLDER_SECRET,
            read_key: READ_KEY,
            kek_mid: mid,
            ad_form: 2,
            ad_mid: mid,
            ad_header: h,
            count: None,
            entries,
            trailing: Vec::new(),
        }
    }

    /// Form 01, sealed to the holder's X25519 key.
    fn x25519(&mut self) {
        (self.form, self.ad_form, self.x25519) = (1, 1, true);
    }

    /// The index of the first entry of type `t`.
    fn find(&self, t: ChunkType) -> usize {
        self.entries.iter().position(|e| e.0 == t.code()).unwrap()
    }

    fn seal(&self, p: &CryptoProvider, rng: &mut dyn dime_core::CryptoRngCore) -> Vec<u8> {
        let hkdf = |salt: &[u8], ikm: &[u8], info: &[u8]| {
            let mut k = [0u8; 32];
            p.kdf.hkdf_sha512(salt, ikm, info, &mut k).unwrap();
            AeadKey::from_bytes(k)
        };
        let mut out = self.magic.to_vec();
        out.extend([self.version, self.form]);
        let kek = if self.x25519 {
            let holder = p.key_agreement.public_key(&X25519Secret::from_bytes(self.holder_secret));
            let (e, z) = if self.low_order_e {
                ([0u8; 32], [0u8; 32])
            } else {
                let e = X25519Secret::generate(rng);
                let z = *p.key_agreement.agree(&e, &holder).unwrap().expose();
                (p.key_agreement.public_key(&e).0, z)
            };
            out.extend(e);
            hkdf(&[e, holder.0].concat(), &z, OVERLAY_X25519_LABEL)
        } else {
            hkdf(&self.kek_mid, &self.read_key, OVERLAY_READ_LABEL)
        };
        let count = self.count.unwrap_or(u16::try_from(self.entries.len()).unwrap());
        let mut body = count.to_be_bytes().to_vec();
        for (t, i, k) in &self.entries {
            body.push(*t);
            body.extend(i.to_be_bytes());
            body.extend(k);
        }
        body.extend(&self.trailing);
        let mut ad = OVERLAY_AAD_LABEL.to_vec();
        ad.push(self.ad_form);
        ad.extend(self.ad_mid);
        ad.extend(p.hash.sha512(&[&self.ad_header]));
        let mut nonce = [0u8; 24];
        rng.fill_bytes(&mut nonce);
        p.aead.seal(&kek, &nonce, &ad, &mut body);
        out.extend(nonce);
        out.extend(body);
        out
    }
}

/// How an overlay case breaks §16.
#[derive(Clone, Copy)]
enum OverlayBreak {
    /// Change the overlay's parts before sealing.
    Parts(fn(&mut Ov)),
    /// Change the sealed overlay's octets.
    Octets(fn(&mut Vec<u8>)),
    /// A sound overlay of another message (another id and header).
    OtherMessage,
    /// The overlay is sound; the holder, who has the chunk keys, re-encrypted the display
    /// chunk's segment with another text (every tag valid, no signature).
    ChangedMessage,
}

fn overlay_case(
    name: &'static str,
    description: &'static str,
    spec: &'static str,
    seed: u64,
    brk: OverlayBreak,
) -> Case {
    Case {
        name,
        description,
        spec,
        seed,
        attachment_len: 300,
        breakage: Breakage::Overlay(brk),
        refused_by: &["recipient"],
        accepted_by: if matches!(brk, OverlayBreak::ChangedMessage) {
            &[]
        } else {
            &["author", "origin", "destination", "recipient"]
        },
        class: "unauthentic",
        rule: "",
    }
}

/// The refusals of §16 (key overlays), each a sound message with an overlay that breaks one
/// rule; all are the single "message does not authenticate" (§16.6).
fn overlay_cases() -> Vec<Case> {
    use OverlayBreak::{ChangedMessage, Octets, OtherMessage, Parts};
    let c = overlay_case;
    vec![
        c(
            "negative-overlay-magic",
            "the overlay starts with DIMEOVX, not DIMEOVL",
            "spec/envelope.md §16.1",
            2101,
            Parts(|o| o.magic = *b"DIMEOVX"),
        ),
        c(
            "negative-overlay-version",
            "the overlay's version octet is 02 (only 01 is defined; the version is in no associated data, so only this check refuses it)",
            "spec/envelope.md §16.1",
            2102,
            Parts(|o| o.version = 2),
        ),
        c(
            "negative-overlay-unknown-form",
            "form 03 (undefined), sealed under the read-key KEK with 03 in its associated data",
            "spec/envelope.md §16.1",
            2103,
            Parts(|o| (o.form, o.ad_form) = (3, 3)),
        ),
        c(
            "negative-overlay-form-mismatch",
            "form octet 02 and read-key KEK, but its associated data names form 01",
            "spec/envelope.md §16.3",
            2104,
            Parts(|o| o.ad_form = 1),
        ),
        c(
            "negative-overlay-wrong-read-key",
            "form 02 sealed under another read key than the holder's",
            "spec/envelope.md §16.2, §16.6",
            2105,
            Parts(|o| o.read_key = [7; 32]),
        ),
        c(
            "negative-overlay-wrong-x25519-key",
            "form 01 sealed to another X25519 key than the holder's",
            "spec/envelope.md §16.2, §16.6",
            2106,
            Parts(|o| {
                o.x25519();
                o.holder_secret = [8; 32];
            }),
        ),
        c(
            "negative-overlay-low-order",
            "form 01 whose ephemeral key E is the all-zero point: Z is all zero, and the body is sealed under the KEK HKDF derives from that Z",
            "spec/envelope.md §16.2",
            2107,
            Parts(|o| {
                o.x25519();
                o.low_order_e = true;
            }),
        ),
        c(
            "negative-overlay-message-id",
            "the associated data carry another message id (one bit flipped), SHA-512(H) and the KEK the message's own",
            "spec/envelope.md §16.3",
            2108,
            Parts(|o| o.ad_mid[0] ^= 1),
        ),
        c(
            "negative-overlay-header-hash",
            "the associated data carry SHA-512 of the message's header with kind 02 (trustful) instead of its own; message id and KEK its own",
            "spec/envelope.md §16.3",
            2109,
            Parts(|o| o.ad_header[8] = 2),
        ),
        c(
            "negative-overlay-other-message",
            "a sound read-key overlay of another message (its id, header and chunk keys) beside this one",
            "spec/envelope.md §16.3, §16.6",
            2110,
            OtherMessage,
        ),
        c(
            "negative-overlay-flipped",
            "the overlay's last octet (in the tag) flipped",
            "spec/envelope.md §16.6",
            2111,
            Octets(|v| {
                let n = v.len() - 1;
                v[n] ^= 1;
            }),
        ),
        c(
            "negative-overlay-truncated",
            "the overlay without its last octet",
            "spec/envelope.md §16.6",
            2112,
            Octets(|v| {
                v.pop();
            }),
        ),
        c(
            "negative-overlay-extended",
            "the overlay with one zero octet appended",
            "spec/envelope.md §16.6",
            2113,
            Octets(|v| v.push(0)),
        ),
        c(
            "negative-overlay-too-long",
            "a body of 1035 entries (more than MAX_CHUNKS): OVERLAY_MAX_LEN + 3 octets, to be refused before it is copied",
            "spec/envelope.md §16.1, §16.4",
            2114,
            Parts(|o| {
                let n = u16::try_from(o.entries.len()).unwrap();
                o.entries.extend((n..1035).map(|i| (0x24, 100 + i, [0; 32])));
            }),
        ),
        c(
            "negative-overlay-count-zero",
            "a body of count 0 and no entry",
            "spec/envelope.md §16.4",
            2115,
            Parts(|o| o.entries.clear()),
        ),
        c(
            "negative-overlay-count",
            "the count says one entry more than the body holds",
            "spec/envelope.md §16.4",
            2116,
            Parts(|o| o.count = Some(u16::try_from(o.entries.len() + 1).unwrap())),
        ),
        c(
            "negative-overlay-trailing-octet",
            "one zero octet after the last entry, inside the sealed body",
            "spec/envelope.md §16.4",
            2117,
            Parts(|o| o.trailing = vec![0]),
        ),
        c(
            "negative-overlay-missing-key",
            "no entry for the attachment chunk",
            "spec/envelope.md §16.5",
            2118,
            Parts(|o| {
                let i = o.find(ChunkType::Attachment);
                o.entries.remove(i);
            }),
        ),
        c(
            "negative-overlay-extra-entry",
            "an extra entry (type 24, index 999) after the last: no such chunk",
            "spec/envelope.md §16.5",
            2119,
            Parts(|o| o.entries.push((0x24, 999, [0x42; 32]))),
        ),
        c(
            "negative-overlay-origin-signature-entry",
            "an extra entry for the origin signature chunk (type 61, its index), which has no recipient slot and no entry",
            "spec/envelope.md §16.4",
            2120,
            Parts(|o| {
                let i = o.entries.last().unwrap().1 + 1;
                o.entries.push((0x61, i, [0x42; 32]));
            }),
        ),
        c(
            "negative-overlay-wrong-type",
            "the attachment chunk's entry says type 23 (display), with its right index and key",
            "spec/envelope.md §16.5",
            2121,
            Parts(|o| {
                let i = o.find(ChunkType::Attachment);
                o.entries[i].0 = 0x23;
            }),
        ),
        c(
            "negative-overlay-order",
            "the entries of the two header chunks swapped: every key right, not in increasing index order",
            "spec/envelope.md §16.4",
            2122,
            Parts(|o| {
                let i = o.find(ChunkType::CommonHeaders);
                o.entries.swap(i, i + 1);
            }),
        ),
        c(
            "negative-overlay-duplicate",
            "the common headers chunk's entry written twice",
            "spec/envelope.md §16.4",
            2123,
            Parts(|o| {
                let i = o.find(ChunkType::CommonHeaders);
                let e = o.entries[i];
                o.entries.insert(i, e);
            }),
        ),
        c(
            "negative-overlay-wrong-chunk-key",
            "the display chunk's entry carries the attachment chunk's key",
            "spec/envelope.md §16.5",
            2124,
            Parts(|o| {
                let (d, a) = (o.find(ChunkType::Display), o.find(ChunkType::Attachment));
                o.entries[d].2 = o.entries[a].2;
            }),
        ),
        c(
            "negative-overlay-changed-message",
            "a sound overlay; the message's display chunk was re-encrypted by the overlay's holder with the chunk key the overlay gives (\"Hello Bob!\" for \"Hello Bob.\"): every tag verifies, the author and origin signatures do not",
            "spec/envelope.md §16.5",
            2125,
            ChangedMessage,
        ),
    ]
}

/// `msg` with its display chunk's only segment re-encrypted under its own key `k`, with the
/// last content octet changed: what the holder of an overlay can do (§16.5).
fn reencrypt_display(p: &CryptoProvider, msg: &mut [u8], keys: &ChunkKeys) {
    let ins = inspect(p, msg, None);
    let c = ins.chunks.iter().find(|c| c.chunk_type == ChunkType::Display).unwrap();
    assert_eq!(c.segments, 1);
    let at = usize::try_from(c.offset).unwrap() + 4 + 1 + 2 * crate::format::SLOT_LEN;
    let len = u32::from_be_bytes(msg[at + 1..at + 5].try_into().unwrap()) as usize;
    let key = AeadKey::from_bytes(*keys.key_for(ChunkType::Display, c.index).unwrap());
    let mut nonce = [0u8; 24];
    nonce[0] = 1;
    let mut ad = crate::format::CHUNK_AAD_LABEL.to_vec();
    ad.extend(&msg[10..42]);
    ad.extend([msg[8], ChunkType::Display.code(), 0]);
    ad.extend(c.index.to_be_bytes());
    ad.extend([0, 0, 0, 0, 1]);
    let mut buf = msg[at + 5..at + 5 + len].to_vec();
    p.aead.open(&key, &nonce, &ad, &mut buf).unwrap();
    let clen = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
    assert_eq!(buf[4 + clen - 1], b'.');
    buf[4 + clen - 1] = b'!';
    p.aead.seal(&key, &nonce, &ad, &mut buf);
    msg[at + 5..at + 5 + len].copy_from_slice(&buf);
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
    let seal = |rng: &mut dyn dime_core::CryptoRngCore, a: &Addressing, m: &Message| {
        seal_message_origin_signed(
            p,
            rng,
            a,
            Signer::Author(&w.author.sign),
            &w.origin.sign,
            SIGNED_AT,
            m,
        )
        .unwrap()
    };
    let mut msg = match &case.breakage {
        Breakage::Headers(change) | Breakage::PartInfo(change) => {
            change(&mut m);
            let q = Quirks {
                unchecked_part_info: matches!(case.breakage, Breakage::PartInfo(_)),
                ..Quirks::default()
            };
            quirks::with(q, || seal(&mut rng, &w.addressing, &m))
        }
        Breakage::Quirks(q) => quirks::with(*q, || seal(&mut rng, &w.addressing, &m)),
        Breakage::Addressing(change) => {
            let mut a = w.addressing.clone();
            change(&mut a);
            seal(&mut rng, &a, &m)
        }
        Breakage::NoOriginSignature => {
            seal_message(p, &mut rng, &w.addressing, Signer::Author(&w.author.sign), &m).unwrap()
        }
        Breakage::Overlay(_) => seal(&mut rng, &w.addressing, &m),
    };
    let mut overlay = None;
    if let Breakage::Overlay(brk) = case.breakage {
        let keys = recipient_chunk_keys(p, &msg, &w.recip.enc).unwrap();
        let h: [u8; 42] = msg[..42].try_into().unwrap();
        let bytes = match brk {
            OverlayBreak::Parts(change) => {
                let mut o = Ov::sound(h, &keys);
                change(&mut o);
                o.seal(p, &mut rng)
            }
            OverlayBreak::Octets(change) => {
                let mut v = Ov::sound(h, &keys).seal(p, &mut rng);
                change(&mut v);
                v
            }
            OverlayBreak::OtherMessage => {
                let other = seal(&mut rng, &w.addressing, &m);
                let other_keys = recipient_chunk_keys(p, &other, &w.recip.enc).unwrap();
                Ov::sound(other[..42].try_into().unwrap(), &other_keys).seal(p, &mut rng)
            }
            OverlayBreak::ChangedMessage => {
                let v = Ov::sound(h, &keys).seal(p, &mut rng);
                reencrypt_display(p, &mut msg, &keys);
                v
            }
        };
        let holder = ActorSecret::new(p, X25519Secret::from_bytes(HOLDER_SECRET));
        overlay = Some(json!({
            "holder_x25519_secret": hex::encode(HOLDER_SECRET),
            "holder_x25519_public": hex::encode(holder.public().0),
            "read_key": hex::encode(READ_KEY),
            "overlay_hex": hex::encode(&bytes),
        }));
    }
    let error = match case.class {
        "framing" | "unverified" => json!({ "class": case.class, "rule": case.rule }),
        _ => json!({ "class": case.class }),
    };
    let mut v = json!({
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
        "accepted_by": case.accepted_by,
        "error": error,
        "message_hex": hex::encode(&msg),
    });
    if let Some(o) = overlay {
        v["overlay"] = o;
    }
    v
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

/// Why a role refused a message: an open or verify error, or a rule of §7.5 (the library
/// leaves those to its caller, `dime-server`; this applies them as §7.5 says).
#[derive(Debug)]
enum Refusal {
    Open(OpenError),
    Rule(&'static str),
}

impl From<OpenError> for Refusal {
    fn from(e: OpenError) -> Self {
        Refusal::Open(e)
    }
}

/// Whether `e` is the error a vector names (§14, §15): the class and rule tokens of the
/// library's [`ErrorClass`] (a framing error naming its rule, the single "does not
/// authenticate", "not verified" naming its rule of §7.4), or an address rule of §7.5 this test
/// applied ("not verified" naming it).
fn is_expected(e: &Refusal, class: &str, rule: &str) -> bool {
    let got = match e {
        Refusal::Open(e) => e.class(),
        Refusal::Rule(r) => ErrorClass::Unverified(r),
    };
    got.token() == class && got.rule().unwrap_or_default() == rule
}

/// Opens `msg` as `role` with its own slots and verifies what that role can (§7.4): the author
/// the origin signature when present, the destination and the recipient (a reader of mailbox
/// mail) always; then the address rules of §7.5 that one message shows: the origin's (its
/// author is of its domain), the destination's rule 1 and the reader's rules 4 to 6 (the
/// reading account is the world's recipient).
fn open_and_verify(p: &CryptoProvider, w: &World, msg: &[u8], role: &str) -> Result<(), Refusal> {
    let (a, o) = (&w.author.keys.signing, &w.origin.keys.signing);
    let authored_elsewhere = |kind: MessageKind, author: &Mailbox, origin: &Domain| {
        kind == MessageKind::Authored && author.domain() != origin
    };
    match role {
        "author" => {
            let u = open_as_author(p, msg, &w.author.enc)?;
            let o = u.origin_signed().then_some(o as &dyn SignerKeys);
            let _ = u.verify(p, a, o)?;
        }
        "origin" => {
            let u = open_as_origin(p, msg, &w.origin.enc)?;
            if authored_elsewhere(u.kind(), u.claimed_author(), &w.addressing.origin) {
                return Err(Refusal::Rule("author-domain"));
            }
            let _ = u.verify(p, a)?;
        }
        "destination" => {
            let mine = &w.addressing.destination;
            let v = open_as_destination(p, msg, &w.dest.enc)?.verify(p, o, mine)?;
            if v.recipient.domain() != mine {
                return Err(Refusal::Rule("recipient-domain"));
            }
        }
        "recipient" => {
            let u = open_as_recipient(p, msg, &w.recip.enc)?;
            if authored_elsewhere(u.kind(), u.claimed_author(), u.claimed_origin()) {
                return Err(Refusal::Rule("author-domain"));
            }
            let v = u.verify_delivered(p, a, o)?;
            if v.recipient.domain() != &v.destination {
                return Err(Refusal::Rule("recipient-domain"));
            }
            if &v.destination != w.addressing.recipient.domain() {
                return Err(Refusal::Rule("destination-domain"));
            }
        }
        other => panic!("unknown role {other}"),
    }
    Ok(())
}

/// Opens `msg` as its recipient through `overlay` with `key`, and verifies it as a reader of
/// mailbox mail (§16.5).
fn open_with_overlay(
    p: &CryptoProvider,
    w: &World,
    msg: &[u8],
    overlay: &[u8],
    key: OverlayKey<'_>,
) -> Result<(), OpenError> {
    let (a, o) = (&w.author.keys.signing, &w.origin.keys.signing);
    open_as_recipient_with_overlay(p, msg, overlay, key)?.verify_delivered(p, a, o).map(|_| ())
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
        let roles = |field: &str| -> Vec<String> {
            v[field].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect()
        };
        for role in roles("accepted_by") {
            if let Err(e) = open_and_verify(p, &w, &msg, &role) {
                panic!("{}: the {role} refused it: {e:?}", path.display());
            }
        }
        if let Some(ov) = v.get("overlay") {
            // The recipient opening through the overlay, with either key it holds.
            assert_eq!(roles("refused_by"), ["recipient"], "{}", path.display());
            let bytes = |f: &str| hex::decode(ov[f].as_str().unwrap()).unwrap();
            let overlay = bytes("overlay_hex");
            let secret: [u8; 32] = bytes("holder_x25519_secret").try_into().unwrap();
            let holder = ActorSecret::new(p, X25519Secret::from_bytes(secret));
            let read_key: [u8; 32] = bytes("read_key").try_into().unwrap();
            for key in [OverlayKey::X25519(&holder), OverlayKey::Read(&read_key)] {
                match open_with_overlay(p, &w, &msg, &overlay, key) {
                    Ok(()) => panic!("{}: accepted through the overlay", path.display()),
                    Err(e) => assert!(
                        is_expected(&Refusal::Open(e), class, rule),
                        "{}: the overlay's holder got an error other than {class}",
                        path.display()
                    ),
                }
            }
            continue;
        }
        for role in roles("refused_by") {
            match open_and_verify(p, &w, &msg, &role) {
                Ok(()) => panic!("{}: accepted by the {role}", path.display()),
                Err(e) => assert!(
                    is_expected(&e, class, rule),
                    "{}: the {role} returned {e:?}, expected {class} {rule}",
                    path.display()
                ),
            }
        }
        // Inspection with the recipient's key reports a framing error (and refuses nothing,
        // §12); it decodes no content, so a content rule of §8 is not its to report, and the
        // rules of §7.4 and §7.5 are not framing. A signature's algorithm id is content too
        // (inside the signature chunk); a slot's is structure.
        let ins = inspect(p, &msg, Some(&w.recip.enc));
        let content = CONTENT_RULES.contains(&rule)
            || path.file_name().is_some_and(|f| f == "negative-signature-algorithm.json");
        if class == "framing" && !content {
            assert!(ins.error.is_some(), "{}: inspect reports no error", path.display());
        }
    }
    assert_eq!(seen, cases().len(), "one stored file per negative case");
}
