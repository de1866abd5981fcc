//! Fuzzes the `_dx` record parser of `dime_signet::record` (`spec/dns-record.md`).
//!
//! The input is read three ways: as record text ([`Record::parse`]); as the character-strings
//! of one TXT record, split at `\n` ([`Record::parse_strings`]); and as a whole RRset, records
//! split at NUL and strings at `\n` ([`Record::parse_rrset`]).
//!
//! Properties: no input panics; a parsed record passes [`Record::validate`]; its canonical text
//! is within the record limit, parses back to an equal record and is a fixed point of
//! formatting; its character-strings respect the TXT string limit and parse back too.
#![no_main]

use dime_core::limits::DX_RECORD_MAX_LEN;
use dime_signet::record::{Record, TXT_STRING_MAX_LEN};
use libfuzzer_sys::fuzz_target;

fn check_round_trip(record: &Record) {
    record.validate().expect("a parsed record passes validate");

    let text = record.format();
    assert!(text.len() <= DX_RECORD_MAX_LEN, "canonical text is {} octets", text.len());
    let again = Record::parse(&text).expect("canonical text parses");
    assert_eq!(&again, record);
    assert_eq!(again.format(), text, "canonical text is a fixed point");

    let strings = record.to_strings();
    assert!(strings.iter().all(|s| s.len() <= TXT_STRING_MAX_LEN));
    assert_eq!(strings.concat(), text, "character-strings join to the canonical text");
    let from_strings = Record::parse_strings(&strings).expect("canonical strings parse");
    assert_eq!(&from_strings, record);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(record) = Record::parse(text) {
            check_round_trip(&record);
        }
    }

    let strings: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if let Ok(record) = Record::parse_strings(&strings) {
        check_round_trip(&record);
    }

    let rrset: Vec<Vec<&[u8]>> =
        data.split(|&b| b == 0).map(|rr| rr.split(|&b| b == b'\n').collect()).collect();
    if let Ok(Some(record)) = Record::parse_rrset(&rrset) {
        check_round_trip(&record);
    }
});
