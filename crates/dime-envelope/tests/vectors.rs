//! Worked vectors (`spec/envelope.md` §15): generated deterministically with the default
//! provider and a seeded RNG, compared with `spec/vectors/envelope/`, and opened as every
//! actor. `DIME_REGEN_VECTORS=1` rewrites them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dime_core::crypto::{CryptoProvider, default_provider};
use dime_envelope::*;
use dime_testkit::{seeded_rng, vectors_dir};
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    description: &'static str,
    seed: u64,
    kind: MessageKind,
    attachment_len: usize,
}

const CASES: [Case; 3] = [
    Case {
        name: "authored",
        description: "authored message, one display part and a small attachment, origin-signed",
        seed: 1001,
        kind: MessageKind::Authored,
        attachment_len: 300,
    },
    Case {
        name: "trustful",
        description: "trustful message: author signatures by the origin server's key",
        seed: 1002,
        kind: MessageKind::Trustful,
        attachment_len: 10,
    },
    Case {
        name: "spanning",
        description: "authored message whose attachment spans two segments (70000 octets)",
        seed: 1003,
        kind: MessageKind::Authored,
        attachment_len: 70_000,
    },
];

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
    let m = sample_message(case.attachment_len);
    let mut rng = seeded_rng(case.seed);
    let signer = match case.kind {
        MessageKind::Authored => Signer::Author(&w.author.sign),
        MessageKind::Trustful => Signer::TrustfulServer(&w.origin.sign),
    };
    let mut msg = seal_message(p, &mut rng, &w.addressing, signer, &m).unwrap();
    let author_key = match case.kind {
        MessageKind::Authored => w.author.keys.signing,
        MessageKind::Trustful => w.origin.keys.signing,
    };
    let o = open_as_origin(p, &msg[..], &w.origin.enc).unwrap().verify(p, &author_key).unwrap();
    msg.extend(
        o.origin_signature_chunk(p, &mut rng, &w.origin.sign, &w.addressing.origin, SIGNED_AT)
            .unwrap(),
    );
    let ins = inspect(p, &msg, None);
    let headers = |h: &Headers| -> Value {
        h.fields().iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>().into()
    };
    // What each role sees (§6, §7.4): the fields of its view, the chunks its key opens, and
    // the state of each signature after its verification.
    let full = json!({
        "author": w.addressing.author.to_string(),
        "origin_domain": w.addressing.origin.as_str(),
        "destination_domain": w.addressing.destination.as_str(),
        "recipient": w.addressing.recipient.to_string(),
        "common_headers": headers(&m.common_headers),
        "other_headers": headers(&m.other_headers),
        "parts": m.parts.iter().map(|pt| json!({
            "kind": match pt.kind { PartKind::Display => "display", PartKind::Attachment => "attachment" },
            "content_type": pt.info.content_type,
            "filename": pt.info.filename,
            "sha512": hex::encode(p.hash.sha512(&[&pt.data])),
            "len": pt.data.len(),
        })).collect::<Vec<_>>(),
    });
    let origin_key = &w.origin.keys.signing;
    let mut views = serde_json::Map::new();
    for (role, secret) in [
        ("author", &w.author.enc),
        ("origin", &w.origin.enc),
        ("destination", &w.dest.enc),
        ("recipient", &w.recip.enc),
    ] {
        let (mut view, sigs) = match role {
            "author" => (
                full.clone(),
                open_as_author(p, &msg, secret)
                    .unwrap()
                    .verify(p, &author_key, Some(origin_key))
                    .unwrap()
                    .signatures(),
            ),
            "recipient" => (
                full.clone(),
                open_as_recipient(p, &msg, secret)
                    .unwrap()
                    .verify_delivered(p, &author_key, origin_key)
                    .unwrap()
                    .signatures(),
            ),
            "origin" => (
                json!({ "author": w.addressing.author.to_string(), "destination_domain": w.addressing.destination.as_str() }),
                open_as_origin(p, &msg[..], secret)
                    .unwrap()
                    .verify(p, &author_key)
                    .unwrap()
                    .signatures(),
            ),
            _ => (
                json!({ "recipient": w.addressing.recipient.to_string(), "origin_domain": w.addressing.origin.as_str() }),
                open_as_destination(p, &msg[..], secret)
                    .unwrap()
                    .verify(p, origin_key, &w.addressing.destination)
                    .unwrap()
                    .signatures(),
            ),
        };
        view["opens"] = opened_chunks(p, &msg, secret);
        view["signatures"] = signatures_json(sigs);
        views.insert(role.to_owned(), view);
    }
    json!({
        "description": case.description,
        "spec": "spec/envelope.md",
        "provider": p.name,
        "rng_seed": case.seed,
        "kind": match case.kind { MessageKind::Authored => "authored", MessageKind::Trustful => "trustful" },
        "origin_signed_at": SIGNED_AT,
        "actors": {
            "author": actor_json(p, &w.author, &w.addressing.author.to_string()),
            "origin": actor_json(p, &w.origin, w.addressing.origin.as_str()),
            "destination": actor_json(p, &w.dest, w.addressing.destination.as_str()),
            "recipient": actor_json(p, &w.recip, &w.addressing.recipient.to_string()),
        },
        "author_signing_key": match case.kind { MessageKind::Authored => "author", MessageKind::Trustful => "origin" },
        "destination_domain": w.addressing.destination.as_str(),
        "chunks": ins.chunks.iter().map(|c| json!({
            "type": format!("{:#04x}", c.chunk_type.code()),
            "index": c.index,
            "offset": c.offset,
            "size": c.size,
            "segments": c.segments,
        })).collect::<Vec<_>>(),
        "views": views,
        "message_hex": hex::encode(&msg),
    })
}

/// The (type, index) of every chunk `secret` opens, the origin signature chunk included
/// (through the transit key), in message order.
fn opened_chunks(p: &CryptoProvider, msg: &[u8], secret: &ActorSecret) -> Value {
    inspect(p, msg, Some(secret))
        .chunks
        .iter()
        .filter(|c| c.opened_as.is_some())
        .map(|c| json!({ "type": format!("{:#04x}", c.chunk_type.code()), "index": c.index }))
        .collect::<Vec<_>>()
        .into()
}

fn signatures_json(s: Signatures) -> Value {
    json!({
        "author_tree": s.author_tree.as_str(),
        "author_full": s.author_full.as_str(),
        "origin": s.origin.as_str(),
    })
}

/// The overlay vector (`spec/envelope.md` §16): both overlay forms of the authored vector's
/// message, with the holder's X25519 key, the read key and the expected chunk keys.
fn build_overlay(p: &CryptoProvider, msg: &[u8]) -> Value {
    let w = world(p);
    let mut rng = seeded_rng(1004);
    let holder = ActorSecret::new(p, dime_core::crypto::X25519Secret::generate(&mut rng));
    let mut read_key = [0u8; 32];
    dime_core::RngCore::fill_bytes(&mut rng, &mut read_key);
    let keys = recipient_chunk_keys(p, msg, &w.recip.enc).unwrap();
    let x = keys.seal_to_x25519(p, &mut rng, holder.public()).unwrap();
    let r = keys.seal_with_read_key(p, &mut rng, &read_key).unwrap();
    let opened = open_overlay(p, msg, &r, OverlayKey::Read(&read_key)).unwrap();
    json!({
        "vector": "overlay",
        "description": "key overlays (X25519 form and read-key form) of authored.json's message, for its recipient",
        "spec": "spec/envelope.md §16",
        "provider": p.name,
        "rng_seed": 1004,
        "message_vector": "authored.json",
        "holder_x25519_secret": hex::encode(holder.secret().expose()),
        "holder_x25519_public": hex::encode(holder.public().0),
        "read_key": hex::encode(read_key),
        "overlay_x25519_hex": hex::encode(&x),
        "overlay_read_hex": hex::encode(&r),
        "expected_chunks": opened.chunks().map(|(t, i)| json!({
            "type": format!("{:#04x}", t.code()),
            "index": i,
        })).collect::<Vec<_>>(),
    })
}

#[allow(clippy::disallowed_methods)]
fn write(path: &std::path::Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn vectors_are_up_to_date() {
    let p = default_provider();
    let dir = vectors_dir().join("envelope");
    let regen = std::env::var("DIME_REGEN_VECTORS").is_ok_and(|v| v == "1");
    for case in &CASES {
        let text = serde_json::to_string_pretty(&build(p, case)).unwrap() + "\n";
        let path = dir.join(format!("{}.json", case.name));
        if regen {
            write(&path, &text);
        }
        let stored = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with DIME_REGEN_VECTORS=1)", path.display()));
        assert!(stored == text, "{} is stale: run with DIME_REGEN_VECTORS=1", path.display());
    }
    let authored = build(p, &CASES[0]);
    let msg = hex::decode(authored["message_hex"].as_str().unwrap()).unwrap();
    let text = serde_json::to_string_pretty(&build_overlay(p, &msg)).unwrap() + "\n";
    let path = dir.join("overlay.json");
    if regen {
        write(&path, &text);
    }
    let stored = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with DIME_REGEN_VECTORS=1)", path.display()));
    assert!(stored == text, "{} is stale: run with DIME_REGEN_VECTORS=1", path.display());
}

#[test]
fn stored_overlay_vector_opens_and_verifies() {
    let p = default_provider();
    let w = world(p);
    let dir = vectors_dir().join("envelope");
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("overlay.json")).unwrap()).unwrap();
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(v["message_vector"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let msg = hex::decode(m["message_hex"].as_str().unwrap()).unwrap();
    let secret: [u8; 32] =
        hex::decode(v["holder_x25519_secret"].as_str().unwrap()).unwrap().try_into().unwrap();
    let holder = ActorSecret::new(p, dime_core::crypto::X25519Secret::from_bytes(secret));
    let read_key: [u8; 32] =
        hex::decode(v["read_key"].as_str().unwrap()).unwrap().try_into().unwrap();
    let direct = open_as_recipient(p, &msg, &w.recip.enc)
        .unwrap()
        .verify(p, &w.author.keys.signing, Some(&w.origin.keys.signing))
        .unwrap();
    for (field, key) in [
        ("overlay_x25519_hex", OverlayKey::X25519(&holder)),
        ("overlay_read_hex", OverlayKey::Read(&read_key)),
    ] {
        let overlay = hex::decode(v[field].as_str().unwrap()).unwrap();
        let keys = open_overlay(p, &msg, &overlay, key).unwrap();
        let listed: Vec<(String, u64)> = v["expected_chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["type"].as_str().unwrap().to_owned(), c["index"].as_u64().unwrap()))
            .collect();
        let got: Vec<(String, u64)> =
            keys.chunks().map(|(t, i)| (format!("{:#04x}", t.code()), u64::from(i))).collect();
        assert_eq!(got, listed);
        let via = open_as_recipient_with_overlay(p, &msg, &overlay, key)
            .unwrap()
            .verify(p, &w.author.keys.signing, Some(&w.origin.keys.signing))
            .unwrap();
        assert_eq!(via.view(), direct.view(), "{field}");
    }
}

#[test]
fn stored_vectors_open_as_every_actor() {
    // Independent of regeneration: read the files and check every role's open against the
    // view the file gives for it (§15).
    let p = default_provider();
    let w = world(p);
    for case in &CASES {
        let path = vectors_dir().join("envelope").join(format!("{}.json", case.name));
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let msg = hex::decode(v["message_hex"].as_str().unwrap()).unwrap();
        let author_key = if v["author_signing_key"] == "origin" {
            w.origin.keys.signing
        } else {
            w.author.keys.signing
        };
        let o = &w.origin.keys.signing;
        let views = &v["views"];
        for (role, secret) in [("author", &w.author.enc), ("recipient", &w.recip.enc)] {
            let u = if role == "author" {
                open_as_author(p, &msg, secret).unwrap()
            } else {
                open_as_recipient(p, &msg, secret).unwrap()
            };
            let r = u.verify_delivered(p, &author_key, o).unwrap();
            let e = &views[role];
            assert_eq!(r.author.to_string(), e["author"], "{role}");
            assert_eq!(r.origin.as_str(), e["origin_domain"], "{role}");
            assert_eq!(r.destination.as_str(), e["destination_domain"], "{role}");
            assert_eq!(r.recipient.to_string(), e["recipient"], "{role}");
            let fields = |h: &Headers| -> Value {
                h.fields().iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>().into()
            };
            assert_eq!(fields(&r.message.common_headers), e["common_headers"], "{role}");
            assert_eq!(fields(&r.message.other_headers), e["other_headers"], "{role}");
            let parts = e["parts"].as_array().unwrap();
            assert_eq!(r.message.parts.len(), parts.len());
            for (pt, ep) in r.message.parts.iter().zip(parts) {
                assert_eq!(hex::encode(p.hash.sha512(&[&pt.data])), ep["sha512"]);
                assert_eq!(pt.data.len() as u64, ep["len"].as_u64().unwrap());
                assert_eq!(pt.info.content_type, ep["content_type"].as_str().unwrap());
                assert_eq!(pt.info.filename, ep["filename"].as_str().unwrap());
            }
            assert_eq!(signatures_json(r.signatures()), e["signatures"], "{role}");
            assert_eq!(opened_chunks(p, &msg, secret), e["opens"], "{role}");
            assert_eq!(r.origin_signed_at(), v["origin_signed_at"].as_u64(), "{role}");
        }
        let d = open_as_destination(p, &msg[..], &w.dest.enc)
            .unwrap()
            .verify(p, o, &w.addressing.destination)
            .unwrap();
        let e = &views["destination"];
        assert_eq!(d.recipient.to_string(), e["recipient"]);
        assert_eq!(d.origin.as_str(), e["origin_domain"]);
        assert_eq!(signatures_json(d.signatures()), e["signatures"]);
        assert_eq!(opened_chunks(p, &msg, &w.dest.enc), e["opens"]);
        assert_eq!(d.origin_signed_at(), v["origin_signed_at"].as_u64());
        let g = open_as_origin(p, &msg[..], &w.origin.enc).unwrap().verify(p, &author_key).unwrap();
        let e = &views["origin"];
        assert_eq!(g.author.to_string(), e["author"]);
        assert_eq!(g.destination.as_str(), e["destination_domain"]);
        assert_eq!(signatures_json(g.signatures()), e["signatures"]);
        assert_eq!(opened_chunks(p, &msg, &w.origin.enc), e["opens"]);
        // The layout: every chunk, as inspection reads it without a key.
        let ins = inspect(p, &msg, None);
        assert_eq!(ins.chunks.len(), v["chunks"].as_array().unwrap().len());
        for (c, ec) in ins.chunks.iter().zip(v["chunks"].as_array().unwrap()) {
            assert_eq!(format!("{:#04x}", c.chunk_type.code()), ec["type"]);
            assert_eq!(
                (c.offset, c.size),
                (ec["offset"].as_u64().unwrap(), ec["size"].as_u64().unwrap())
            );
        }
    }
}

/// Writes seeds for the envelope fuzz targets (`fuzz/seeds/envelope_*/`): messages sealed
/// with the insecure provider and the fuzz targets' fixed keys. Run with `--ignored`.
#[test]
#[ignore = "writes fuzz seeds; run by hand with --ignored"]
fn write_fuzz_seeds() {
    let p = dime_testkit::insecure_provider();
    let w = world(p);
    let root = vectors_dir().join("../../fuzz/seeds");
    for (name, m) in [("small", sample_message(40)), ("spanning", sample_message(66_000))] {
        let msg = delivered(p, &mut seeded_rng(7), &w, &m);
        for target in ["envelope_decode", "envelope_open"] {
            write(&root.join(target).join(format!("{name}.bin")), "");
            #[allow(clippy::disallowed_methods)]
            std::fs::write(root.join(target).join(format!("{name}.bin")), &msg).unwrap();
        }
    }
}
