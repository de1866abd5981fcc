//! Fuzzes the text parsers of `dime-core`: `Domain`, `Mailbox` and `Fingerprint`.
//!
//! Properties: no input panics; whatever parses is canonical, so its text form parses back
//! to an equal value; a parsed name respects its named limits.
#![no_main]

use dime_core::limits::{DOMAIN_MAX_LEN, LOCAL_PART_MAX_LEN};
use dime_core::{Domain, Fingerprint, Mailbox};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(domain) = Domain::parse(text) {
        assert!(domain.as_str().len() <= DOMAIN_MAX_LEN);
        let again = Domain::parse(domain.as_str()).expect("a canonical domain parses again");
        assert_eq!(again, domain);
    }

    if let Ok(mailbox) = Mailbox::parse(text) {
        assert!(mailbox.local_part().len() <= LOCAL_PART_MAX_LEN);
        let again = Mailbox::parse(&mailbox.to_string()).expect("a mailbox's text parses again");
        assert_eq!(again, mailbox);
    }

    if let Ok(fingerprint) = text.parse::<Fingerprint>() {
        let shown = fingerprint.to_string();
        assert_eq!(shown.len(), 86);
        assert_eq!(shown.parse::<Fingerprint>().ok(), Some(fingerprint));
    }
});
