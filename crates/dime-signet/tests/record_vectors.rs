//! The `_dx` record vectors of `spec/vectors/record/` (`spec/dns-record.md`).
// Tests read the vector files; the file-I/O ban of clippy.toml is for the library code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use dime_core::crypto::{Ed25519Seed, default_provider};
use dime_signet::record::{Record, TlsCheckError, TlsMatch, TlsPin, check_tls, tls_value};
use std::collections::BTreeMap;

/// One `[name]` block: its fields in file order (a field may repeat).
struct Vector {
    name: String,
    fields: Vec<(String, String)>,
}

impl Vector {
    fn all(&self, key: &str) -> Vec<&str> {
        self.fields.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }
    fn one(&self, key: &str) -> Option<&str> {
        let all = self.all(key);
        assert!(all.len() <= 1, "{}: {key} repeated", self.name);
        all.first().copied()
    }
}

fn unquote(v: &str) -> &str {
    let (start, end) = (v.find('"').unwrap(), v.rfind('"').unwrap());
    assert!(end > start, "value must be quoted: {v}");
    &v[start + 1..end]
}

fn read_vectors(file: &str) -> Vec<Vector> {
    let path = dime_testkit::vectors_dir().join("record").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out: Vec<Vector> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            out.push(Vector { name: name.trim_end_matches(']').to_owned(), fields: Vec::new() });
            continue;
        }
        let (k, v) = line.split_once(" = ").unwrap_or_else(|| panic!("bad line: {line}"));
        out.last_mut()
            .expect("field before the first [name]")
            .fields
            .push((k.to_owned(), v.to_owned()));
    }
    out
}

fn read_fields(file: &str) -> BTreeMap<String, String> {
    let path = dime_testkit::vectors_dir().join("record").join(file);
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once(" = ").unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The text forms of a list of values.
fn texts<T: ToString>(list: &[T]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

#[test]
fn record_vectors_parse_as_specified() {
    let vectors = read_vectors("records.txt");
    assert!(vectors.len() >= 25, "expected the full vector set");
    let (mut ok, mut errors) = (0, 0);
    for v in &vectors {
        let input: Vec<&str> = v.all("string").into_iter().map(unquote).collect();
        assert!(!input.is_empty(), "{}: no string", v.name);
        let parsed = Record::parse_strings(&input);
        let expect = v.one("expect").unwrap();
        if let Some(code) = expect.strip_prefix("error ") {
            let e = parsed.expect_err(&v.name);
            assert_eq!(e.code(), code, "{}: {e}", v.name);
            errors += 1;
            continue;
        }
        assert_eq!(expect, "ok", "{}", v.name);
        let r = parsed.unwrap_or_else(|e| panic!("{}: {e}", v.name));
        let name = &v.name;
        assert_eq!(texts(&r.poks), v.all("pok"), "{name}");
        assert_eq!(texts(&r.tls), v.all("tls"), "{name}");
        assert_eq!(r.policy.map(|p| p.to_string()).as_deref(), v.one("pol"), "{name}");
        assert_eq!(texts(&r.syndicates), v.all("syn"), "{name}");
        assert_eq!(texts(&r.delivery_hosts), v.all("dx"), "{name}");
        assert_eq!(r.expiry_days.map(|d| d.to_string()).as_deref(), v.one("exp"), "{name}");
        assert_eq!(r.subdomain.map(|s| s.to_string()).as_deref(), v.one("sub"), "{name}");
        let unknown: Vec<String> = r.unknown.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(unknown, v.all("unknown"), "{name}");

        let canonical = unquote(v.one("canonical").unwrap());
        assert_eq!(r.format(), canonical, "{name}");
        assert_eq!(Record::parse(canonical).unwrap(), r, "{name}: canonical form parses back");
        assert_eq!(Record::parse_strings(&r.to_strings()).unwrap(), r, "{name}");

        let check = r.check_keys(default_provider()).err().map(|e| e.code());
        assert_eq!(check.unwrap_or("ok"), v.one("check").unwrap_or("ok"), "{name}");
        ok += 1;
    }
    assert!(ok >= 5 && errors >= 15, "ok {ok}, errors {errors}");
}

#[test]
fn tls_vector_matches_an_independent_computation() {
    let f = read_fields("tls.txt");
    let p = default_provider();
    let dir = dime_testkit::vectors_dir().join("record");
    let cert = std::fs::read(dir.join(&f["cert"])).unwrap();
    let other = std::fs::read(dir.join(&f["other-cert"])).unwrap();
    let seed: [u8; 32] = hex::decode(&f["seed"]).unwrap().try_into().unwrap();
    let seed = Ed25519Seed::from_bytes(seed);

    assert_eq!(p.signature.public_key(&seed).to_string(), f["pok"]);
    assert_eq!(hex::encode(p.hash.sha512(&[&cert])), f["sha512"]);
    let pin = tls_value(p, &seed, &cert);
    assert_eq!(pin.to_string(), f["tls"]);
    assert_eq!(f["tls"].parse::<TlsPin>().unwrap(), pin);
    assert_eq!(tls_value(p, &seed, &other).to_string(), f["other-tls"]);

    // A record carrying the pin accepts the certificate and refuses the other one.
    let text = format!("ver=1 pok={} tls={}", f["pok"], f["tls"]);
    let record = Record::parse(&text).unwrap();
    assert_eq!(check_tls(p, &record, &cert), Ok(TlsMatch { tls_index: 0, pok_index: 0 }));
    assert_eq!(check_tls(p, &record, &other), Err(TlsCheckError::NoMatch));
    // One flipped bit of the certificate breaks the match.
    let mut tampered = cert.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(check_tls(p, &record, &tampered), Err(TlsCheckError::NoMatch));
    // Under another POK listed first, the pin still matches its own POK.
    let other_pok = p.signature.public_key(&Ed25519Seed::from_bytes([0x22; 32]));
    let text = format!("ver=1 pok={other_pok} pok={} tls={}", f["pok"], f["tls"]);
    let record = Record::parse(&text).unwrap();
    assert_eq!(check_tls(p, &record, &cert), Ok(TlsMatch { tls_index: 0, pok_index: 1 }));
}
