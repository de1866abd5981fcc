//! Fuzzes dime-dmap's MIME module over arbitrary message bytes: the tree, BODYSTRUCTURE and
//! BODY, ENVELOPE, sections, BINARY, the search helpers and the legacy mapping.
//!
//! Properties: no input panics; the tree respects its limits and its ranges lie in the
//! input; a section of the whole message is the input; the legacy mapping renders back
//! byte-exact.
#![no_main]

use dime_dmap::limits::{MAX_MIME_DEPTH, MAX_MIME_PARTS};
use dime_dmap::{
    MimeTree, Section, SectionText, TextScope, binary, binary_size, body_structure, contains_text,
    envelope, header_values, legacy_message, render_message, section, sent_date,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tree = MimeTree::parse(data);
    assert!(tree.nodes.len() <= MAX_MIME_PARTS);
    let _ = MAX_MIME_DEPTH;
    for n in &tree.nodes {
        assert!(n.header.start <= n.header.end && n.header.end <= n.body.start);
        assert!(n.body.end <= data.len());
    }
    let mut out = Vec::new();
    body_structure(data, &tree, true, &mut out);
    out.clear();
    body_structure(data, &tree, false, &mut out);
    out.clear();
    envelope(data, &mut out);

    let whole = section(data, &tree, &Section::default()).expect("the whole message");
    assert_eq!(&whole[..], data);
    let names = vec!["From".to_string(), "Subject".to_string()];
    let texts = [
        None,
        Some(SectionText::Header),
        Some(SectionText::Text),
        Some(SectionText::Mime),
        Some(SectionText::HeaderFields(names.clone())),
        Some(SectionText::HeaderFieldsNot(names)),
    ];
    let paths: [&[u32]; 6] = [&[], &[1], &[2], &[1, 1], &[2, 1], &[1, 2, 3]];
    for part in paths {
        for text in &texts {
            let _ = section(data, &tree, &Section { part: part.to_vec(), text: text.clone() });
        }
        let _ = binary(data, &tree, part);
        let _ = binary_size(data, &tree, part);
    }
    let _ = header_values(data, "subject");
    let _ = sent_date(data);
    let _ = contains_text(data, &tree, "abc", TextScope::Text);
    let _ = contains_text(data, &tree, "é", TextScope::Body);

    let m = legacy_message(data).expect("within the part limit");
    assert_eq!(&render_message(&m)[..], data);
});
