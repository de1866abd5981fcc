//! Golden tests: dime-dmap's MIME output against Dovecot 2.3's answers, recorded by
//! `tests/mime/regen.py` from a throwaway Dovecot (no Dovecot at test time).
//!
//! Differences from Dovecot kept on purpose (each listed in `KNOWN` below, with its reason):
//! - A part that does not exist, or HEADER/TEXT of a part that is no message: `section`
//!   returns `None` and `binary` `BinaryError::NoSuchPart`; Dovecot answers with an empty
//!   string, and so does the server when it gets `None`. The test reads `None` as "".
//! - `BINARY.SIZE[1]` of `malformed_boundary.eml`: Dovecot answers NO [UNKNOWN-CTE] because
//!   part 2 has an unknown encoding, although part 1 is 7bit (and BINARY[1] succeeds); dime
//!   answers 10, the size BINARY[1] returns.
//! - `BINARY[]` of `oddtypes.eml`: Dovecot leaves the base64 message/rfc822 part encoded while
//!   relabelling it `binary`, and writes the header of the following part twice (a Dovecot
//!   bug); dime decodes the part and writes each header once.
//!
//! Differences not in the corpus (no answer recorded, so nothing to compare):
//! - Content-* values (type, parameters, id, description, language, location, md5) holding
//!   8-bit octets that are not UTF-8 are read as UTF-8 with U+FFFD replacements; Dovecot
//!   writes the raw octets in a literal. ENVELOPE and sections use the raw octets, as Dovecot.
//! - A message with bare LF line ends is served as stored (legacy messages are byte-exact);
//!   Dovecot serves CRLF and counts sizes over CRLF.
//! - Nesting deeper than `MAX_MIME_DEPTH` or more than `MAX_MIME_PARTS` entities: the rest
//!   reads as opaque leaves (Dovecot has its own, different bounds).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::path::Path;

use dime_dmap::{
    BinaryError, MimeTree, Section, SectionText, binary, binary_size, body_structure, envelope,
    section,
};

/// (message, item) pairs where dime differs from Dovecot on purpose (see the module doc).
const KNOWN: &[(&str, &str)] =
    &[("malformed_boundary", "BINARY.SIZE[1]"), ("oddtypes", "BINARY.PEEK[]")];

struct Record {
    item: String,
    kind: String,
    value: Vec<u8>,
}

fn records(b: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let nl = i + b[i..].iter().position(|&c| c == b'\n').unwrap();
        let head = std::str::from_utf8(&b[i..nl]).unwrap();
        let mut w: Vec<&str> = head.rsplitn(3, ' ').collect();
        w.reverse();
        let n: usize = w[2].parse().unwrap();
        out.push(Record {
            item: w[0].into(),
            kind: w[1].into(),
            value: b[nl + 1..nl + 1 + n].to_vec(),
        });
        i = nl + 2 + n;
    }
    out
}

fn parse_section(spec: &str) -> Section {
    let mut part = Vec::new();
    let mut rest = spec;
    while let Some(d) = rest.find(|c: char| !c.is_ascii_digit()).or(Some(rest.len())) {
        if d == 0 {
            break;
        }
        part.push(rest[..d].parse().unwrap());
        rest = rest[d..].strip_prefix('.').unwrap_or(&rest[d..]);
    }
    let names = |s: &str| -> Vec<String> {
        s.trim_start_matches(' ')
            .trim_start_matches('(')
            .trim_end_matches(')')
            .split(' ')
            .map(String::from)
            .collect()
    };
    let text = if rest.is_empty() {
        None
    } else if let Some(n) = rest.strip_prefix("HEADER.FIELDS.NOT") {
        Some(SectionText::HeaderFieldsNot(names(n)))
    } else if let Some(n) = rest.strip_prefix("HEADER.FIELDS") {
        Some(SectionText::HeaderFields(names(n)))
    } else {
        Some(match rest {
            "HEADER" => SectionText::Header,
            "TEXT" => SectionText::Text,
            "MIME" => SectionText::Mime,
            o => panic!("section {o}"),
        })
    };
    Section { part, text }
}

fn part_of(spec: &str) -> Vec<u32> {
    if spec.is_empty() { Vec::new() } else { spec.split('.').map(|p| p.parse().unwrap()).collect() }
}

/// Our answer in the record's form: (kind, value).
fn ours(raw: &[u8], tree: &MimeTree, item: &str) -> (String, Vec<u8>) {
    let inner = |p: &str| item[item.find('[').unwrap() + 1..item.len() - 1].to_string() + p;
    let mut out = Vec::new();
    match item {
        "BODYSTRUCTURE" => body_structure(raw, tree, true, &mut out),
        "BODY" => body_structure(raw, tree, false, &mut out),
        "ENVELOPE" => envelope(raw, &mut out),
        "RFC822.SIZE" => out = raw.len().to_string().into_bytes(),
        i if i.starts_with("BODY.PEEK[") => {
            let v = section(raw, tree, &parse_section(&inner("")));
            return ("data".into(), v.map(|v| v.to_vec()).unwrap_or_default());
        }
        i if i.starts_with("BINARY.PEEK[") => {
            return match binary(raw, tree, &part_of(&inner(""))) {
                Ok(v) => ("data".into(), v.to_vec()),
                Err(BinaryError::NoSuchPart) => ("data".into(), Vec::new()),
                Err(BinaryError::UnknownCte) => ("no".into(), b"[UNKNOWN-CTE]".to_vec()),
            };
        }
        i if i.starts_with("BINARY.SIZE[") => {
            return match binary_size(raw, tree, &part_of(&inner(""))) {
                Ok(n) => ("raw".into(), n.to_string().into_bytes()),
                Err(BinaryError::NoSuchPart) => ("raw".into(), b"0".to_vec()),
                Err(BinaryError::UnknownCte) => ("no".into(), b"[UNKNOWN-CTE]".to_vec()),
            };
        }
        o => panic!("item {o}"),
    }
    ("raw".into(), out)
}

#[test]
fn mime_output_matches_dovecot() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mime");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            e.unwrap().file_name().into_string().ok()?.strip_suffix(".eml").map(String::from)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 10);
    let mut failures = Vec::new();
    let mut compared = 0;
    for name in &names {
        let raw = std::fs::read(dir.join(format!("{name}.eml"))).unwrap();
        let expected = std::fs::read(dir.join(format!("{name}.expected"))).unwrap();
        let tree = MimeTree::parse(&raw);
        for r in records(&expected) {
            let (kind, value) = ours(&raw, &tree, &r.item);
            compared += 1;
            let same = if r.kind == "no" {
                kind == "no" && r.value.starts_with(&value)
            } else {
                let k = if r.kind == "nil" { "data" } else { r.kind.as_str() };
                kind == k && value == r.value
            };
            if !same && !KNOWN.contains(&(name.as_str(), r.item.as_str())) {
                failures.push(format!(
                    "{name} {}:\n  dovecot {} {:?}\n  dime    {kind} {:?}",
                    r.item,
                    r.kind,
                    String::from_utf8_lossy(&r.value),
                    String::from_utf8_lossy(&value)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
