//! Property tests of the two mappings between dime's `Message` and RFC 5322: a native
//! message renders to MIME that parses back into the same parts, deterministically, with
//! 7-bit headers and bounded lines; a legacy message renders to its original bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use dime_dmap::{
    LEGACY_CONTENT_TYPE, MimeTree, binary, header_values, legacy_message, render_message,
};
use dime_envelope::{Headers, Message, Part, PartInfo, PartKind};
use proptest::prelude::*;

const TYPES: &[&str] = &[
    "text/plain; charset=utf-8",
    "text/html",
    "application/pdf",
    "image/png",
    "application/octet-stream",
];

fn value() -> impl Strategy<Value = String> {
    // No leading blank (the parser drops it), no '?' (no accidental encoded word), no '"'.
    "[a-zA-Z0-9<>@.,;:()é漢ü -]{0,120}".prop_map(|s| s.trim_start().to_string())
}

fn part() -> impl Strategy<Value = Part> {
    (
        any::<bool>(),
        0..TYPES.len(),
        "[a-zA-Z0-9 ._é-]{0,40}",
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..600),
            "[a-zA-Z \r\n.é]{0,600}".prop_map(String::into_bytes),
            "[a-z]{990,1100}".prop_map(String::into_bytes),
        ],
    )
        .prop_map(|(attach, t, name, data)| Part {
            kind: if attach { PartKind::Attachment } else { PartKind::Display },
            info: PartInfo { content_type: TYPES[t].into(), filename: name },
            data,
        })
}

fn message() -> impl Strategy<Value = Message> {
    (proptest::collection::vec(value(), 5), value(), proptest::collection::vec(part(), 1..5))
        .prop_map(|(common, id, mut parts)| {
            let names = ["From", "To", "Subject", "Date", "References"];
            let mut h = Headers::new();
            for (n, v) in names.iter().zip(&common) {
                h.push(n, v).unwrap();
            }
            let mut o = Headers::new();
            o.push("Message-ID", &id).unwrap();
            parts.sort_by_key(|p| p.kind == PartKind::Attachment);
            Message { common_headers: h, other_headers: o, parts }
        })
}

fn filename(tree: &MimeTree, k: usize) -> String {
    let Some(d) = &tree.nodes[k].disposition else { return String::new() };
    for (n, v) in &d.params {
        if n == b"filename" {
            return String::from_utf8(v.clone()).unwrap();
        }
        if n == b"filename*" {
            let v = String::from_utf8(v.clone()).unwrap();
            let enc = v.strip_prefix("utf-8''").unwrap();
            let mut out = Vec::new();
            let b = enc.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' {
                    out.push(u8::from_str_radix(&enc[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            return String::from_utf8(out).unwrap();
        }
    }
    String::new()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn native_render_parses_back_into_the_same_parts(m in message()) {
        let raw = render_message(&m);
        prop_assert_eq!(&raw, &render_message(&m), "deterministic");
        let (head, _) = raw.split_at(raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap());
        prop_assert!(head.is_ascii(), "7-bit headers");
        for line in raw.split(|&b| b == b'\n') {
            prop_assert!(line.len() <= 999, "line of {} octets", line.len());
        }
        let tree = MimeTree::parse(&raw);
        for (n, v) in m.common_headers.fields().iter().chain(m.other_headers.fields()) {
            prop_assert_eq!(header_values(&raw, n), vec![v.clone()], "{}", n);
        }
        let single = m.parts.len() == 1 && m.parts[0].kind == PartKind::Display && m.parts[0].info.filename.is_empty();
        let nodes: Vec<usize> = if single { vec![0] } else { tree.root().children.clone() };
        prop_assert_eq!(nodes.len(), m.parts.len());
        for (k, (p, &node)) in m.parts.iter().zip(&nodes).enumerate() {
            let got = binary(&raw, &tree, &[k as u32 + 1]).unwrap();
            prop_assert_eq!(&got[..], &p.data[..], "part {}", k + 1);
            let n = &tree.nodes[node];
            let ct = format!("{}/{}", String::from_utf8_lossy(&n.media_type), String::from_utf8_lossy(&n.subtype));
            prop_assert!(p.info.content_type.starts_with(&ct), "{} vs {}", ct, p.info.content_type);
            prop_assert_eq!(filename(&tree, node), p.info.filename.clone());
            let attached = n.disposition.as_ref().is_some_and(|d| d.kind == b"attachment");
            prop_assert_eq!(attached, p.kind == PartKind::Attachment);
        }
    }

    #[test]
    fn legacy_round_trip_is_byte_exact(raw in proptest::collection::vec(any::<u8>(), 0..2000), head in "[ -~\t\u{80}-\u{ff}\r\n]{0,300}") {
        let mut bytes = format!("From: {head}\r\nSubject: {head}\r\nBcc: x@y\r\nMessage-ID: <{head}>\r\n\r\n").into_bytes();
        bytes.extend_from_slice(&raw);
        for input in [&raw[..], &bytes[..]] {
            let m = legacy_message(input).unwrap();
            prop_assert_eq!(m.parts.len(), 1);
            prop_assert_eq!(&m.parts[0].info.content_type, LEGACY_CONTENT_TYPE);
            prop_assert!(m.common_headers.get("Bcc").is_none());
            // The chunks re-check as a reader would.
            Headers::from_pairs(m.common_headers.fields().iter().map(|(n, v)| (n.as_str(), v.as_str()))).unwrap();
            prop_assert_eq!(&render_message(&m)[..], input);
        }
    }
}

#[test]
fn legacy_headers_are_copied_cleaned() {
    let raw = b"From: A <a@x>\r\nSubject: one\r\n two\x01\xff\r\nSubject: second\r\nBcc: b@x\r\nMessage-ID: <m@x>\r\nX-Other: o\r\n\r\nbody";
    let m = legacy_message(raw).unwrap();
    assert_eq!(
        m.common_headers.fields(),
        &[
            ("From".to_string(), "A <a@x>".to_string()),
            ("Subject".to_string(), "one two\u{fffd}\u{fffd}".to_string())
        ]
    );
    assert_eq!(m.other_headers.fields(), &[("Message-ID".to_string(), "<m@x>".to_string())]);
    let long = format!("Subject: {}\r\n\r\n", "é".repeat(40_000));
    let m = legacy_message(long.as_bytes()).unwrap();
    assert!(m.common_headers.get("subject").unwrap().len() <= 65535);
}

#[test]
fn native_render_shape() {
    let mut h = Headers::new();
    h.push("From", "Jürgen Müller <j@example.de>").unwrap();
    h.push("Subject", &"word ".repeat(40)).unwrap();
    let m = Message {
        common_headers: h,
        other_headers: Headers::new(),
        parts: vec![
            Part {
                kind: PartKind::Display,
                info: PartInfo {
                    content_type: "text/plain; charset=utf-8".into(),
                    filename: String::new(),
                },
                data: "café\r\n".into(),
            },
            Part {
                kind: PartKind::Attachment,
                info: PartInfo {
                    content_type: "application/pdf".into(),
                    filename: "résumé.pdf".into(),
                },
                data: vec![0, 1, 2],
            },
        ],
    };
    let raw = render_message(&m);
    let s = String::from_utf8(raw.to_vec()).unwrap();
    assert!(
        s.starts_with("From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <j@example.de>\r\nSubject: word"),
        "{s}"
    );
    assert!(
        s.contains(
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_dime_00000000\"\r\n"
        ),
        "{s}"
    );
    assert!(s.contains("Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n"), "{s}");
    assert!(
        s.contains("Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"),
        "{s}"
    );
    assert!(s.contains("Content-Transfer-Encoding: base64\r\n"), "{s}");
    assert!(s.lines().all(|l| l.len() <= 78), "{s}");
    // A part holding the first candidate boundary moves the choice on.
    let mut m2 = m.clone();
    m2.parts[0].data = b"--=_dime_00000000\r\n".to_vec();
    assert!(
        String::from_utf8(render_message(&m2).to_vec())
            .unwrap()
            .contains("boundary=\"=_dime_00000001\"")
    );
}

#[test]
fn a_message_without_parts_renders_an_empty_text_body() {
    let mut h = Headers::new();
    h.push("Subject", "empty").unwrap();
    let m = Message { common_headers: h, other_headers: Headers::new(), parts: vec![] };
    assert_eq!(
        &render_message(&m)[..],
        b"Subject: empty\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    );
}

#[test]
fn content_fields_in_the_header_chunks_are_not_rendered_twice() {
    let mut o = Headers::new();
    o.push("Content-Type", "text/html").unwrap();
    o.push("MIME-Version", "1.0").unwrap();
    o.push("X-Kept", "yes").unwrap();
    let m = Message {
        common_headers: Headers::new(),
        other_headers: o,
        parts: vec![Part {
            kind: PartKind::Display,
            info: PartInfo { content_type: "text/plain".into(), filename: String::new() },
            data: b"hi".to_vec(),
        }],
    };
    assert_eq!(
        &render_message(&m)[..],
        b"X-Kept: yes\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\nhi"
    );
}

/// A native message of every shape the renderer writes (encoded words, folding, 7bit,
/// quoted-printable, base64, RFC 2231 file names). Its rendering is kept in
/// `tests/mime/native_rendered.eml`, which the Dovecot golden test also reads; regenerate it
/// with `DIME_BLESS=1 cargo test -p dime-dmap --test mime_render` (then run `regen.py`).
fn native_fixture() -> Message {
    let mut h = Headers::new();
    h.push("From", "Jürgen Müller <j@example.de>").unwrap();
    h.push("To", "Åse <ase@example.no>, bob@example.net").unwrap();
    h.push("Date", "Mon, 7 Dec 2026 10:00:00 +0000").unwrap();
    h.push(
        "Subject",
        "Grüße aus Berlin: a subject long enough to need folding at a blank somewhere",
    )
    .unwrap();
    let mut o = Headers::new();
    o.push("Message-ID", "<native@example.de>").unwrap();
    let part = |kind, ct: &str, name: &str, data: &[u8]| Part {
        kind,
        info: PartInfo { content_type: ct.into(), filename: name.into() },
        data: data.to_vec(),
    };
    Message {
        common_headers: h,
        other_headers: o,
        parts: vec![
            part(PartKind::Display, "text/plain; charset=utf-8", "", b"Plain ASCII text.\r\n"),
            part(PartKind::Display, "text/html; charset=utf-8", "", "<p>Grüße</p>\r\n".as_bytes()),
            part(PartKind::Attachment, "application/pdf", "résumé.pdf", &[0, 1, 2, 255, 254]),
            part(PartKind::Attachment, "text/plain", "notes \"v2\".txt", b"notes\r\n"),
        ],
    }
}

#[test]
fn native_rendering_is_stable() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mime/native_rendered.eml");
    let raw = render_message(&native_fixture());
    if std::env::var_os("DIME_BLESS").is_some() {
        std::fs::write(&path, &raw[..]).unwrap();
    }
    assert_eq!(&raw[..], &std::fs::read(&path).unwrap()[..], "rendering changed");
}
