//! Properties of the `_dx` record (`spec/dns-record.md`): round trips, canonical form, and no
//! panic on any input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dime_core::Domain;
use dime_core::crypto::{Ed25519PublicKey, Ed25519Signature};
use dime_core::limits::DX_RECORD_MAX_LEN;
use dime_signet::record::{
    Host, MAX_POKS, Policy, Record, SubdomainPolicy, TXT_STRING_MAX_LEN, TlsPin,
};
use proptest::prelude::*;

const KNOWN: &[&str] = &[
    "ver",
    "version",
    "pok",
    "primary",
    "tls",
    "pol",
    "policy",
    "syn",
    "syndicates",
    "dx",
    "deliver",
    "exp",
    "expiry",
    "sub",
    "subdomain",
];

fn arb_host() -> impl Strategy<Value = Host> {
    (
        prop::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 0..3),
        "[a-z][a-z0-9]{0,5}",
        prop::option::of(1u16..=u16::MAX),
    )
        .prop_map(|(mut labels, last, port)| {
            labels.push(last);
            Host { name: Domain::parse(&labels.join(".")).unwrap(), port }
        })
}

fn arb_unknown() -> impl Strategy<Value = (String, String)> {
    ("[a-z][a-z0-9_-]{0,12}", "[!-:<-~]{1,24}")
        .prop_filter("not a known key", |(k, _)| !KNOWN.contains(&k.as_str()))
}

fn arb_record() -> impl Strategy<Value = Record> {
    (
        prop::collection::vec(any::<[u8; 32]>(), 1..=MAX_POKS),
        prop::collection::vec(prop::array::uniform32(any::<u8>()), 0..4),
        prop::option::of(prop_oneof![
            Just(Policy::Experimental),
            Just(Policy::Mixed),
            Just(Policy::Strict)
        ]),
        prop::collection::vec(arb_host(), 0..3),
        prop::collection::vec(arb_host(), 0..5),
        prop::option::of(1u16..=365),
        prop::option::of(prop_oneof![
            Just(SubdomainPolicy::Strict),
            Just(SubdomainPolicy::Relaxed),
            Just(SubdomainPolicy::Explicit)
        ]),
        prop::collection::vec(arb_unknown(), 0..4),
    )
        .prop_map(
            |(poks, tls, policy, syndicates, delivery_hosts, expiry_days, subdomain, unknown)| {
                Record {
                    poks: poks.into_iter().map(Ed25519PublicKey).collect(),
                    tls: tls
                        .into_iter()
                        .map(|half| {
                            let mut sig = [0u8; 64];
                            sig[..32].copy_from_slice(&half);
                            sig[32..].copy_from_slice(&half.map(|b| b ^ 0x5A));
                            TlsPin(Ed25519Signature(sig))
                        })
                        .collect(),
                    policy,
                    syndicates,
                    delivery_hosts,
                    expiry_days,
                    subdomain,
                    unknown,
                }
            },
        )
}

/// A token from a vocabulary mixing valid and invalid keys and values, in random case.
fn arb_token() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        prop::sample::select(KNOWN).prop_map(str::to_owned),
        "[A-Za-z][A-Za-z0-9_-]{0,4}",
        "[ -~]{0,4}",
    ];
    let value = prop_oneof![
        Just("1".to_owned()),
        Just("0EqyMnQrtKs6E2i9RhXk5tAiSrcaAWuvhSCjMsl3hzc".to_owned()),
        prop::sample::select(&["mixed", "STRICT", "relaxed", "explicit", "experimental"][..])
            .prop_map(str::to_owned),
        "[a-z]{1,5}\\.[a-z]{2,3}(:[0-9]{1,6})?",
        "[0-9]{1,4}",
        "[A-Za-z0-9+/=]{40,90}",
        "[ -~]{0,8}",
    ];
    (key, prop::option::of(value)).prop_map(|(k, v)| match v {
        Some(v) => format!("{k}={v}"),
        None => k,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn format_then_parse_is_identity(r in arb_record()) {
        prop_assert_eq!(r.validate(), Ok(()));
        let text = r.format();
        prop_assert!(text.len() <= DX_RECORD_MAX_LEN);
        prop_assert_eq!(Record::parse(&text), Ok(r.clone()));
        let strings = r.to_strings();
        prop_assert!(strings.iter().all(|s| s.len() <= TXT_STRING_MAX_LEN));
        prop_assert_eq!(strings.concat(), text);
        prop_assert_eq!(Record::parse_strings(&strings), Ok(r.clone()));
        prop_assert_eq!(Record::parse_rrset(&[strings]), Ok(Some(r)));
    }

    #[test]
    fn any_text_never_panics(s in "\\PC{0,300}") {
        let _ = Record::parse(&s);
    }

    #[test]
    fn any_octets_never_panic(strings in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20)) {
        let _ = Record::parse_strings(&strings);
        let _ = Record::parse_rrset(&[strings.clone(), strings]);
    }

    #[test]
    fn token_soup_parses_canonically_or_fails_cleanly(tokens in prop::collection::vec(arb_token(), 0..24), seps in prop::collection::vec(prop::sample::select(&[" ", "  ", "\t", ";", " ; "][..]), 24)) {
        let mut text = String::from("ver=1");
        for (t, s) in tokens.iter().zip(&seps) {
            text.push_str(s);
            text.push_str(t);
        }
        if let Ok(r) = Record::parse(&text) {
            prop_assert_eq!(r.validate(), Ok(()));
            let canonical = r.format();
            prop_assert_eq!(Record::parse(&canonical), Ok(r.clone()));
            prop_assert_eq!(Record::parse(&canonical).unwrap().format(), canonical);
        }
    }

    #[test]
    fn mutated_records_never_panic_and_reparse_canonically(r in arb_record(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)) {
        let mut bytes = r.format().into_bytes();
        for (at, b, op) in edits {
            match op {
                0 if !bytes.is_empty() => { let i = at.index(bytes.len()); bytes[i] = b; }
                1 => { let i = at.index(bytes.len() + 1); bytes.insert(i, b); }
                _ if !bytes.is_empty() => { let i = at.index(bytes.len()); bytes.remove(i); }
                _ => {}
            }
        }
        if let Ok(parsed) = Record::parse_strings(&[&bytes[..bytes.len().min(255)], &bytes[bytes.len().min(255)..]]) {
            prop_assert_eq!(Record::parse(&parsed.format()), Ok(parsed));
        }
    }
}
