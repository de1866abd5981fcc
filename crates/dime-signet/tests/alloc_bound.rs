//! Allocation stays bounded by the input size, whatever the lengths claim
//! (`spec/signet.md` §10). dhat counts every allocation made while decoding hostile input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dime_signet::{Verifier, armor, decode_any, keyfile, validate_bytes};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Bytes allocated (in total, not just at the peak) while `f` runs: the least of three runs.
/// dhat counts the whole process, and the test harness's own threads allocate now and then
/// (a CI run under load once counted 144 bytes for a decoder that allocates none): a
/// decoder's own allocations happen on every run, another thread's not on all three.
fn allocated_by(f: impl Fn()) -> u64 {
    (0..3)
        .map(|_| {
            let before = dhat::HeapStats::get().total_bytes;
            f();
            dhat::HeapStats::get().total_bytes - before
        })
        .min()
        .unwrap_or(0)
}

fn header(magic: u16, len: u32) -> Vec<u8> {
    let mut h = magic.to_be_bytes().to_vec();
    h.extend_from_slice(&len.to_be_bytes()[1..]);
    h
}

#[test]
fn hostile_length_claims_allocate_at_most_twice_the_input() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let provider = dime_testkit::insecure_provider();

    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // A 5-byte header claiming a 16 MiB payload, for every object kind.
    for magic in [1215u16, 1776, 1789, 1952, 2013, 2049, 2050, 2065, 2066] {
        cases.push(("header claims 16 MiB", header(magic, 0xFF_FFFF)));
    }
    // A well-formed header whose field 252 claims 16 MiB.
    let mut photo = header(1776, 4);
    photo.extend_from_slice(&[252, 0xFF, 0xFF, 0xFF]);
    cases.push(("field 252 claims 16 MiB", photo));
    // Field 160 (2-byte length) claims 64 KiB with 1 byte of data.
    let mut website = header(1789, 4);
    website.extend_from_slice(&[160, 0xFF, 0xFF, 0]);
    cases.push(("field 160 claims 64 KiB", website));
    // Bare base64 and armor of a header claiming 16 MiB.
    cases.push(("base64 header claims 16 MiB", b"BvD///8=".to_vec()));
    let arm = "-----BEGIN ORGANIZATIONAL SIGNET-----\nBvD///8=\n=AAAA\n-----END ORGANIZATIONAL SIGNET-----\n";
    cases.push(("armor header claims 16 MiB", arm.as_bytes().to_vec()));

    for (what, input) in &cases {
        let len = input.len() as u64;
        let measured = [
            ("decode_any", allocated_by(|| assert!(decode_any(input).is_err(), "{what}"))),
            (
                "validate_bytes",
                allocated_by(|| {
                    let v = validate_bytes(provider, input, &Verifier::new());
                    assert!(v.problem().is_some(), "{what}");
                }),
            ),
            ("dearmor_any", allocated_by(|| drop(armor::dearmor_any(input)))),
            (
                "keyfile::read",
                allocated_by(|| assert!(keyfile::read(provider, input, Some(b"pass")).is_err())),
            ),
        ];
        for (decoder, n) in measured {
            // At most one copy of the input and one of its decoded form, plus a small constant.
            assert!(n <= 2 * len + 64, "{what}, {decoder}: {n} bytes allocated for {len} bytes");
            eprintln!("{what}, {decoder}: {n} bytes allocated for {len} bytes of input");
        }
    }
}
