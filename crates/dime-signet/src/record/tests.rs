//! Unit tests of the `_dx` record: each key and alias, case, each error.

use super::*;
use dime_core::crypto::{Ed25519Seed, default_provider};
use dime_core::limits::DX_RECORD_MAX_LEN;

fn pok(n: u8) -> Ed25519PublicKey {
    default_provider().signature.public_key(&Ed25519Seed::from_bytes([n; 32]))
}

fn pok_text(n: u8) -> String {
    pok(n).to_string()
}

fn pin(n: u8) -> TlsPin {
    tls_value(default_provider(), &Ed25519Seed::from_bytes([n; 32]), b"certificate")
}

fn minimal() -> String {
    format!("ver=1 pok={}", pok_text(1))
}

fn err(text: &str) -> RecordError {
    Record::parse(text).expect_err(text)
}

fn host(s: &str) -> Host {
    s.parse().unwrap()
}

#[test]
fn minimal_record_has_defaults() {
    let r = Record::parse(&minimal()).unwrap();
    assert_eq!(r, Record::new(vec![pok(1)]));
    assert_eq!(r.effective_policy(), Policy::Experimental);
    assert_eq!(r.effective_subdomain(), SubdomainPolicy::Strict);
    assert_eq!(r.cache_lifetime_secs(3600), 3600);
    assert_eq!(r.format(), minimal());
}

#[test]
fn every_key_parses_with_its_canonical_name() {
    let text = format!(
        "ver=1 pok={} pok={} tls={} pol=mixed syn=keys.example.net:8443 dx=mx1.example.com \
         dx=mx2.example.com:2600 exp=30 sub=relaxed",
        pok_text(1),
        pok_text(2),
        pin(1)
    );
    let r = Record::parse(&text).unwrap();
    assert_eq!(r.poks, vec![pok(1), pok(2)]);
    assert_eq!(r.tls, vec![pin(1)]);
    assert_eq!(r.policy, Some(Policy::Mixed));
    assert_eq!(r.syndicates, vec![host("keys.example.net:8443")]);
    assert_eq!(r.syndicates[0].port, Some(8443));
    assert_eq!(r.delivery_hosts, vec![host("mx1.example.com"), host("mx2.example.com:2600")]);
    assert_eq!(r.delivery_hosts[0].port, None);
    assert_eq!(r.expiry_days, Some(30));
    assert_eq!(r.subdomain, Some(SubdomainPolicy::Relaxed));
    assert!(r.unknown.is_empty());
    assert_eq!(r.format(), text);
}

#[test]
fn aliases_denote_the_same_keys() {
    let long = format!(
        "version=1 primary={} policy=strict syndicates=s.example.net deliver=mx.example.com \
         expiry=7 subdomain=explicit",
        pok_text(3)
    );
    let short = format!(
        "ver=1 pok={} pol=strict syn=s.example.net dx=mx.example.com exp=7 sub=explicit",
        pok_text(3)
    );
    let r = Record::parse(&long).unwrap();
    assert_eq!(r, Record::parse(&short).unwrap());
    assert_eq!(r.format(), short);
}

#[test]
fn keys_and_keyword_values_ignore_case() {
    let text =
        format!("VER=1 Pok={} POL=Strict SUB=ReLaXeD DX=MX.Example.COM Version=1", pok_text(1));
    // The duplicate version (under another name and case) is refused.
    assert_eq!(err(&text), RecordError::DuplicateKey { key: "ver" });
    let text = text.trim_end_matches(" Version=1");
    let r = Record::parse(text).unwrap();
    assert_eq!(r.policy, Some(Policy::Strict));
    assert_eq!(r.subdomain, Some(SubdomainPolicy::Relaxed));
    assert_eq!(r.delivery_hosts, vec![host("mx.example.com")]);
    // Base64 is case-sensitive: a case-flipped key is another key or invalid.
    let flipped = format!("ver=1 pok={}", pok_text(1).to_ascii_uppercase());
    assert_ne!(Record::parse(&flipped).ok().map(|r| r.poks), Some(vec![pok(1)]));
}

#[test]
fn separators_are_spaces_tabs_newlines_and_semicolons() {
    let text = format!("  ver=1;pok={}\t;; pol=mixed\r\n", pok_text(1));
    let r = Record::parse(&text).unwrap();
    assert_eq!(r.policy, Some(Policy::Mixed));
    assert_eq!(r.format(), format!("ver=1 pok={} pol=mixed", pok_text(1)));
}

#[test]
fn unknown_keys_are_kept_and_reported() {
    let text = format!("ver=1 pok={} Future=a=b x-y_z=1 future=again", pok_text(1));
    let r = Record::parse(&text).unwrap();
    assert_eq!(
        r.unknown,
        vec![
            ("future".to_owned(), "a=b".to_owned()),
            ("x-y_z".to_owned(), "1".to_owned()),
            ("future".to_owned(), "again".to_owned()),
        ]
    );
    assert_eq!(Record::parse(&r.format()).unwrap(), r);
}

#[test]
fn version_is_mandatory_first_and_one() {
    assert_eq!(err(&format!("pok={}", pok_text(1))), RecordError::VersionNotFirst);
    assert_eq!(err(&format!("pok={} ver=1", pok_text(1))), RecordError::VersionNotFirst);
    assert_eq!(err(&format!("ver=2 pok={}", pok_text(1))), RecordError::UnsupportedVersion);
    assert_eq!(err(&format!("ver=01 pok={}", pok_text(1))), RecordError::UnsupportedVersion);
    assert_eq!(
        err(&format!("ver=1 ver=1 pok={}", pok_text(1))),
        RecordError::DuplicateKey { key: "ver" }
    );
}

#[test]
fn pok_is_mandatory_and_well_formed() {
    assert_eq!(err("ver=1"), RecordError::MissingPok);
    assert_eq!(err("ver=1 pol=mixed"), RecordError::MissingPok);
    let good = pok_text(1);
    assert_eq!(good.len(), POK_TEXT_LEN);
    assert_eq!(err(&format!("ver=1 pok={good}=")), RecordError::BadPok, "padded");
    assert_eq!(err(&format!("ver=1 pok={}", &good[..42])), RecordError::BadPok, "short");
    assert_eq!(err(&format!("ver=1 pok={good}A")), RecordError::BadPok, "long");
    assert_eq!(err(&format!("ver=1 pok=*{}", &good[1..])), RecordError::BadPok, "alphabet");
    // 43 characters carry 258 bits: the last character's low 2 bits must be zero.
    let mut noncanonical = good.clone().into_bytes();
    let last = noncanonical.last_mut().unwrap();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let pos = alphabet.iter().position(|c| c == last).unwrap();
    *last = alphabet[pos | 1];
    let noncanonical = String::from_utf8(noncanonical).unwrap();
    assert_eq!(err(&format!("ver=1 pok={noncanonical}")), RecordError::BadPok);
}

#[test]
fn pok_repeats_up_to_its_limit() {
    let many: Vec<String> = (1..=MAX_POKS as u8).map(|n| format!("pok={}", pok_text(n))).collect();
    let r = Record::parse(&format!("ver=1 {}", many.join(" "))).unwrap();
    assert_eq!(r.poks.len(), MAX_POKS);
    let text = format!("ver=1 {} pok={}", many.join(" "), pok_text(99));
    assert_eq!(err(&text), RecordError::TooMany { key: "pok", max: MAX_POKS });
}

#[test]
fn weak_pok_is_refused_by_check_keys() {
    let identity = Ed25519PublicKey({
        let mut b = [0u8; 32];
        b[0] = 1;
        b
    });
    let text = format!("ver=1 pok={} pok={identity}", pok_text(1));
    let r = Record::parse(&text).unwrap();
    assert_eq!(r.check_keys(default_provider()), Err(RecordError::WeakPok { index: 1 }));
    assert_eq!(Record::parse(&minimal()).unwrap().check_keys(default_provider()), Ok(()));
}

#[test]
fn tls_values_are_86_characters() {
    let p = pin(1).to_string();
    assert_eq!(p.len(), TLS_TEXT_LEN);
    assert_eq!(p.parse::<TlsPin>(), Ok(pin(1)));
    let base = minimal();
    assert_eq!(err(&format!("{base} tls={}", &p[..85])), RecordError::BadTls);
    assert_eq!(err(&format!("{base} tls={p}==")), RecordError::BadTls);
    let many: Vec<String> = (0..=MAX_TLS_PINS).map(|_| format!("tls={p}")).collect();
    assert_eq!(
        err(&format!("{base} {}", many.join(" "))),
        RecordError::TooMany { key: "tls", max: MAX_TLS_PINS }
    );
}

#[test]
fn policy_values() {
    for (v, p) in [
        ("experimental", Policy::Experimental),
        ("mixed", Policy::Mixed),
        ("strict", Policy::Strict),
    ] {
        let r = Record::parse(&format!("{} pol={v}", minimal())).unwrap();
        assert_eq!(r.policy, Some(p));
        assert_eq!(r.effective_policy(), p);
    }
    assert_eq!(err(&format!("{} pol=lenient", minimal())), RecordError::BadPolicy);
    assert_eq!(
        err(&format!("{} pol=mixed policy=strict", minimal())),
        RecordError::DuplicateKey { key: "pol" }
    );
    assert_eq!(Policy::Experimental.legacy_fallback(), LegacyFallback::OnAnyDmtpFailure);
    assert_eq!(Policy::Mixed.legacy_fallback(), LegacyFallback::OnlyWithoutAuthenticatedPok);
    assert_eq!(Policy::Strict.legacy_fallback(), LegacyFallback::Never);
    assert!(Policy::Experimental.allows_ca_tls_fallback());
    assert!(Policy::Mixed.allows_ca_tls_fallback());
    assert!(!Policy::Strict.allows_ca_tls_fallback());
    assert!(Policy::Mixed.accepts_unsigned());
    assert!(!Policy::Strict.accepts_unsigned());
}

#[test]
fn subdomain_values() {
    for (v, s) in [
        ("strict", SubdomainPolicy::Strict),
        ("relaxed", SubdomainPolicy::Relaxed),
        ("explicit", SubdomainPolicy::Explicit),
    ] {
        let r = Record::parse(&format!("{} sub={v}", minimal())).unwrap();
        assert_eq!(r.subdomain, Some(s));
    }
    assert_eq!(err(&format!("{} sub=loose", minimal())), RecordError::BadSubdomain);
    assert_eq!(
        err(&format!("{} sub=strict sub=strict", minimal())),
        RecordError::DuplicateKey { key: "sub" }
    );
}

#[test]
fn expiry_is_one_to_365_days_and_caps_the_ttl() {
    for (v, d) in [("1", 1u16), ("30", 30), ("365", 365)] {
        let r = Record::parse(&format!("{} exp={v}", minimal())).unwrap();
        assert_eq!(r.expiry_days, Some(d));
    }
    for bad in ["0", "366", "007", "-1", "+5", "1d", "99999999999999999999", "1.5"] {
        assert_eq!(err(&format!("{} exp={bad}", minimal())), RecordError::BadExpiry, "{bad}");
    }
    assert_eq!(
        err(&format!("{} exp=1 expiry=2", minimal())),
        RecordError::DuplicateKey { key: "exp" }
    );
    let r = Record::parse(&format!("{} exp=2", minimal())).unwrap();
    assert_eq!(r.cache_lifetime_secs(3600), 3600);
    assert_eq!(r.cache_lifetime_secs(u32::MAX), 2 * 86_400);
}

#[test]
fn hosts_are_domain_names_with_optional_port() {
    let r = Record::parse(&format!("{} dx=MX.Example.com. syn=a.b:65535", minimal())).unwrap();
    assert_eq!(r.delivery_hosts[0].name.as_str(), "mx.example.com");
    assert_eq!(r.syndicates[0].port, Some(65535));
    for bad in [
        "mx..example.com",
        "-mx.example.com",
        "mx.example.com:0",
        "mx.example.com:65536",
        "mx.example.com:026",
        "mx.example.com:",
        ":26",
        "mx.example.com:26:27",
        "192.0.2.1",
        "[2001:db8::1]",
        "mx_ex@mple.com",
    ] {
        assert_eq!(
            err(&format!("{} dx={bad}", minimal())),
            RecordError::BadHost { key: "dx" },
            "{bad}"
        );
        assert_eq!(
            err(&format!("{} syn={bad}", minimal())),
            RecordError::BadHost { key: "syn" },
            "{bad}"
        );
    }
    let many: Vec<String> =
        (0..=MAX_DELIVERY_HOSTS).map(|i| format!("dx=mx{i}.example.com")).collect();
    assert_eq!(
        err(&format!("{} {}", minimal(), many.join(" "))),
        RecordError::TooMany { key: "dx", max: MAX_DELIVERY_HOSTS }
    );
    let many: Vec<String> = (0..=MAX_SYNDICATES).map(|i| format!("syn=s{i}.example.com")).collect();
    assert_eq!(
        err(&format!("{} {}", minimal(), many.join(" "))),
        RecordError::TooMany { key: "syn", max: MAX_SYNDICATES }
    );
}

#[test]
fn token_syntax_errors() {
    assert_eq!(err(""), RecordError::Empty);
    assert_eq!(err(" ;\t "), RecordError::Empty);
    assert_eq!(err(&format!("{} pol", minimal())), RecordError::MissingEquals { index: 2 });
    assert_eq!(err(&format!("{} =x", minimal())), RecordError::BadKey { index: 2 });
    assert_eq!(err(&format!("{} 1x=y", minimal())), RecordError::BadKey { index: 2 });
    assert_eq!(err(&format!("{} a.b=y", minimal())), RecordError::BadKey { index: 2 });
    let long_key = "k".repeat(KEY_MAX_LEN + 1);
    assert_eq!(err(&format!("{} {long_key}=y", minimal())), RecordError::BadKey { index: 2 });
    assert_eq!(err(&format!("{} pol=", minimal())), RecordError::EmptyValue { key: "pol" });
    assert_eq!(err(&format!("{} zz=", minimal())), RecordError::EmptyValue { key: "unknown" });
    assert_eq!(err("ver=1 pok=\u{e9}"), RecordError::BadCharacter { offset: 10 });
    assert_eq!(err("ver=1\0"), RecordError::BadCharacter { offset: 5 });
    assert_eq!(err("ver=1\x0b"), RecordError::BadCharacter { offset: 5 });
}

#[test]
fn unknown_keys_are_bounded() {
    let many: Vec<String> = (0..=MAX_UNKNOWN_KEYS).map(|i| format!("k{i}=v")).collect();
    assert_eq!(err(&format!("{} {}", minimal(), many.join(" "))), RecordError::TooManyUnknown);
}

#[test]
fn length_limits() {
    let pad = "x".repeat(DX_RECORD_MAX_LEN);
    assert_eq!(err(&format!("{} z={pad}", minimal())), RecordError::TooLong);
    let fits = format!("{} z=", minimal());
    let text = format!("{fits}{}", "y".repeat(DX_RECORD_MAX_LEN - fits.len()));
    assert_eq!(text.len(), DX_RECORD_MAX_LEN);
    assert!(Record::parse(&text).is_ok());
    let long = "a".repeat(TXT_STRING_MAX_LEN + 1);
    assert_eq!(
        Record::parse_strings(&[b"ver=1 ".as_slice(), long.as_bytes()]),
        Err(RecordError::StringTooLong { index: 1 })
    );
    let chunk = "a".repeat(TXT_STRING_MAX_LEN);
    let strings: Vec<&str> = std::iter::repeat_n(chunk.as_str(), 17).collect();
    assert_eq!(Record::parse_strings(&strings), Err(RecordError::TooLong));
}

#[test]
fn strings_join_without_separator() {
    let text = minimal();
    let (a, b) = text.split_at(20);
    assert_eq!(Record::parse_strings(&[a, b]).unwrap(), Record::parse(&text).unwrap());
    // Two strings written as if they were joined with a space are one token.
    let split = ["ver=1 pok=".to_owned() + &pok_text(1), "pol=mixed".to_owned()];
    assert_eq!(Record::parse_strings(&split), Err(RecordError::BadPok));
}

#[test]
fn to_strings_splits_at_token_boundaries() {
    let mut r = Record::new((1..=MAX_POKS as u8).map(pok).collect());
    r.tls = (1..=4).map(pin).collect();
    r.delivery_hosts = vec![host("mx.example.com")];
    let strings = r.to_strings();
    assert!(strings.len() > 1);
    for (i, s) in strings.iter().enumerate() {
        assert!(s.len() <= TXT_STRING_MAX_LEN);
        if i + 1 < strings.len() {
            assert!(s.ends_with(' '), "string {i} ends at a token boundary");
        }
    }
    assert_eq!(strings.concat(), r.format());
    assert_eq!(Record::parse_strings(&strings).unwrap(), r);
    assert_eq!(Record::new(vec![pok(1)]).to_strings(), vec![minimal()]);
    let zone = Record::new(vec![pok(1)]).to_zone_text();
    assert_eq!(zone, format!("\"{}\"", minimal()));
}

#[test]
fn to_strings_cuts_a_token_longer_than_a_string() {
    let mut r = Record::new(vec![pok(1)]);
    r.unknown.push(("blob".to_owned(), "b".repeat(600)));
    let strings = r.to_strings();
    assert!(strings.iter().all(|s| s.len() <= TXT_STRING_MAX_LEN));
    assert_eq!(Record::parse_strings(&strings).unwrap(), r);
}

#[test]
fn rrset_selection() {
    let dime = vec![minimal().into_bytes()];
    let other = vec![b"v=spf1 -all".to_vec()];
    let no_version = vec![format!("pok={}", pok_text(1)).into_bytes()];
    let split_key = vec![b"  VERS".to_vec(), b"ION=1 pok=".to_vec(), pok_text(2).into_bytes()];
    assert_eq!(Record::parse_rrset(std::slice::from_ref(&other)), Ok(None));
    assert_eq!(Record::parse_rrset::<Vec<Vec<u8>>, Vec<u8>>(&[]), Ok(None));
    assert_eq!(Record::parse_rrset(&[other.clone(), no_version]), Ok(None));
    assert_eq!(
        Record::parse_rrset(&[other.clone(), dime.clone()]).unwrap().unwrap().poks,
        vec![pok(1)]
    );
    assert_eq!(
        Record::parse_rrset(std::slice::from_ref(&split_key)).unwrap().unwrap().poks,
        vec![pok(2)]
    );
    assert_eq!(Record::parse_rrset(&[dime, other, split_key]), Err(RecordError::MultipleRecords));
    // A selected record is parsed in full: its errors are reported.
    let bad = vec![b"ver=2 pok=x".to_vec()];
    assert_eq!(Record::parse_rrset(&[bad]), Err(RecordError::UnsupportedVersion));
}

#[test]
fn validate_catches_hand_built_mistakes() {
    assert_eq!(Record::new(vec![]).validate(), Err(RecordError::MissingPok));
    assert_eq!(Record::new(vec![pok(1)]).validate(), Ok(()));
    let mut r = Record::new(vec![pok(1)]);
    r.expiry_days = Some(0);
    assert_eq!(r.validate(), Err(RecordError::BadExpiry));
    let mut r = Record::new(vec![pok(1)]);
    r.delivery_hosts
        .push(Host { name: dime_core::Domain::parse("mx.example").unwrap(), port: Some(0) });
    assert_eq!(r.validate(), Err(RecordError::BadHost { key: "dx" }));
    let mut r = Record::new(vec![pok(1)]);
    r.syndicates.push(Host::new(dime_core::Domain::parse("10.0.0.1").unwrap()));
    assert_eq!(r.validate(), Err(RecordError::BadHost { key: "syn" }));
    let mut r = Record::new(vec![pok(1)]);
    r.unknown.push(("policy".to_owned(), "x".to_owned()));
    assert_eq!(r.validate(), Err(RecordError::UnknownShadowsKnown { key: "pol" }));
    let mut r = Record::new(vec![pok(1)]);
    r.unknown.push(("Up".to_owned(), "x".to_owned()));
    assert_eq!(r.validate(), Err(RecordError::BadKey { index: 2 }));
    let mut r = Record::new(vec![pok(1)]);
    r.unknown.push(("k".to_owned(), "a b".to_owned()));
    // The offending octet is the space inside the value, the last space of the text.
    let offset = r.format().rfind(' ').unwrap();
    assert_eq!(r.validate(), Err(RecordError::BadCharacter { offset }));
    let mut r = Record::new(vec![pok(1)]);
    r.unknown.push(("k".to_owned(), String::new()));
    assert_eq!(r.validate(), Err(RecordError::EmptyValue { key: "unknown" }));
    let mut r = Record::new(vec![pok(1)]);
    r.unknown.push(("k".to_owned(), "v".repeat(DX_RECORD_MAX_LEN)));
    assert_eq!(r.validate(), Err(RecordError::TooLong));
    let mut r = Record::new(vec![pok(1); MAX_POKS + 1]);
    assert_eq!(r.validate(), Err(RecordError::TooMany { key: "pok", max: MAX_POKS }));
    r.poks.truncate(MAX_POKS);
    assert_eq!(r.validate(), Ok(()));
}

#[test]
fn tls_pin_verifies_under_the_right_pok_only() {
    let p = default_provider();
    let seed = Ed25519Seed::from_bytes([5; 32]);
    let cert = b"a DER certificate".as_slice();
    let mut r = Record::new(vec![pok(4), p.signature.public_key(&seed)]);
    assert_eq!(check_tls(p, &r, cert), Err(TlsCheckError::NoPins));
    r.tls = vec![pin(9), tls_value(p, &seed, cert)];
    assert_eq!(check_tls(p, &r, cert), Ok(TlsMatch { tls_index: 1, pok_index: 1 }));
    assert_eq!(check_tls(p, &r, b"another certificate"), Err(TlsCheckError::NoMatch));
    r.poks.remove(1);
    assert_eq!(check_tls(p, &r, cert), Err(TlsCheckError::NoMatch));
}

#[test]
fn error_codes_are_distinct() {
    let all = [
        RecordError::StringTooLong { index: 0 },
        RecordError::TooLong,
        RecordError::MultipleRecords,
        RecordError::BadCharacter { offset: 0 },
        RecordError::Empty,
        RecordError::MissingEquals { index: 0 },
        RecordError::BadKey { index: 0 },
        RecordError::EmptyValue { key: "pol" },
        RecordError::VersionNotFirst,
        RecordError::UnsupportedVersion,
        RecordError::DuplicateKey { key: "pol" },
        RecordError::MissingPok,
        RecordError::BadPok,
        RecordError::WeakPok { index: 0 },
        RecordError::BadTls,
        RecordError::BadPolicy,
        RecordError::BadHost { key: "dx" },
        RecordError::BadExpiry,
        RecordError::BadSubdomain,
        RecordError::TooMany { key: "pok", max: 1 },
        RecordError::TooManyUnknown,
        RecordError::UnknownShadowsKnown { key: "pol" },
    ];
    let mut codes: Vec<&str> = all.iter().map(RecordError::code).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
    for e in &all {
        let msg = e.to_string();
        assert!(!msg.ends_with('.'), "{msg}");
        assert_eq!(msg.chars().next().map(|c| c.is_lowercase()), Some(true), "{msg}");
    }
}

#[test]
fn subdomain_rule() {
    let d = |s: &str| dime_core::Domain::parse(s).unwrap();
    let with_sub = |s: Option<SubdomainPolicy>| {
        let mut r = Record::new(vec![pok(1)]);
        r.subdomain = s;
        r
    };
    assert_eq!(
        ancestors_to_query(&d("a.b.example.com")),
        vec![d("b.example.com"), d("example.com")]
    );
    assert!(ancestors_to_query(&d("example.com")).is_empty());
    assert!(ancestors_to_query(&d("com")).is_empty());
    let deep = d(&vec!["x"; 20].join("."));
    assert_eq!(ancestors_to_query(&deep).len(), SUBDOMAIN_MAX_WALK);

    let own = with_sub(None);
    let strict = with_sub(Some(SubdomainPolicy::Strict));
    let relaxed = with_sub(Some(SubdomainPolicy::Relaxed));
    let explicit = with_sub(Some(SubdomainPolicy::Explicit));
    let none_relaxed = [(d("b.example.com"), None), (d("example.com"), Some(relaxed.clone()))];
    let strict_relaxed =
        [(d("b.example.com"), Some(strict.clone())), (d("example.com"), Some(relaxed.clone()))];
    let explicit_top =
        [(d("b.example.com"), Some(explicit.clone())), (d("example.com"), Some(explicit.clone()))];
    let defaulted = [(d("b.example.com"), None), (d("example.com"), Some(own.clone()))];

    assert_eq!(applicable_record(Some(&own), &none_relaxed), Applicable::Own(&own));
    assert_eq!(
        applicable_record(None, &none_relaxed),
        Applicable::Inherited { from: &none_relaxed[1].0, record: &relaxed }
    );
    assert_eq!(applicable_record(None, &strict_relaxed), Applicable::None);
    assert_eq!(applicable_record(None, &defaulted), Applicable::None);
    assert_eq!(applicable_record(None, &[]), Applicable::None);
    // explicit: the farthest explicit ancestor wins, even over the domain's own record.
    assert_eq!(
        applicable_record(Some(&own), &explicit_top),
        Applicable::Inherited { from: &explicit_top[1].0, record: &explicit }
    );
}
