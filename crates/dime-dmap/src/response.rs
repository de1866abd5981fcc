//! Untagged responses (RFC 9051 §7), written into the connection's output buffer: the
//! driver calls these with what the mail service answered. Strings are quoted, or sent as
//! literals when they cannot be quoted; mailbox names in UTF-8 or modified UTF-7 as the
//! client enabled.

use crate::command::{DateTime, StatusItem};
use crate::encode;
use crate::selected::Update;

/// `* FLAGS (...)` and `* OK [PERMANENTFLAGS (...)]` for a selected mailbox.
pub fn mailbox_flags(out: &mut Vec<u8>, keywords: &[String], read_only: bool) {
    let mut all = String::from("\\Answered \\Flagged \\Deleted \\Seen \\Draft");
    for k in keywords {
        all.push(' ');
        all.push_str(k);
    }
    out.extend_from_slice(format!("* FLAGS ({all})\r\n").as_bytes());
    if read_only {
        out.extend_from_slice(b"* OK [PERMANENTFLAGS ()] read-only mailbox\r\n");
    } else {
        out.extend_from_slice(
            format!("* OK [PERMANENTFLAGS ({all} \\*)] flags permitted\r\n").as_bytes(),
        );
    }
}

/// `* LIST (attributes) "/" name [extended]`.
pub fn list(
    out: &mut Vec<u8>,
    verb: &str,
    attributes: &[&str],
    name: &str,
    utf8: bool,
    extended: Option<&str>,
) {
    out.extend_from_slice(format!("* {verb} ({}) \"/\" ", attributes.join(" ")).as_bytes());
    encode::encode_mailbox(out, name, utf8);
    if let Some(x) = extended {
        out.push(b' ');
        out.extend_from_slice(x.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// The name of a STATUS item.
pub fn status_item_name(i: StatusItem) -> &'static str {
    match i {
        StatusItem::Messages => "MESSAGES",
        StatusItem::UidNext => "UIDNEXT",
        StatusItem::UidValidity => "UIDVALIDITY",
        StatusItem::Unseen => "UNSEEN",
        StatusItem::Deleted => "DELETED",
        StatusItem::Size => "SIZE",
        StatusItem::HighestModSeq => "HIGHESTMODSEQ",
        StatusItem::Recent => "RECENT",
        StatusItem::AppendLimit => "APPENDLIMIT",
    }
}

/// `* STATUS name (item value ...)`.
pub fn status(out: &mut Vec<u8>, name: &str, utf8: bool, items: &[(StatusItem, u64)]) {
    out.extend_from_slice(b"* STATUS ");
    encode::encode_mailbox(out, name, utf8);
    let parts: Vec<String> =
        items.iter().map(|(i, v)| format!("{} {v}", status_item_name(*i))).collect();
    out.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
}

/// `* SEARCH n...` (IMAP4rev1), with `(MODSEQ m)` when given.
pub fn search(out: &mut Vec<u8>, numbers: &[u32], modseq: Option<u64>) {
    out.extend_from_slice(b"* SEARCH");
    for n in numbers {
        out.extend_from_slice(format!(" {n}").as_bytes());
    }
    if let Some(m) = modseq {
        out.extend_from_slice(format!(" (MODSEQ {m})").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// What an ESEARCH response carries (RFC 4731).
#[derive(Debug, Clone, Default)]
pub struct Esearch {
    /// MIN.
    pub min: Option<u32>,
    /// MAX.
    pub max: Option<u32>,
    /// ALL (sorted numbers; empty answers nothing).
    pub all: Option<Vec<u32>>,
    /// COUNT.
    pub count: Option<u32>,
    /// MODSEQ (RFC 7162 §3.1.5).
    pub modseq: Option<u64>,
}

/// `* ESEARCH (TAG "t") [UID] ...`.
pub fn esearch(out: &mut Vec<u8>, tag: &str, uid: bool, r: &Esearch) {
    out.extend_from_slice(b"* ESEARCH (TAG ");
    encode::encode_quoted(out, tag.as_bytes());
    out.push(b')');
    if uid {
        out.extend_from_slice(b" UID");
    }
    if let Some(v) = r.min {
        out.extend_from_slice(format!(" MIN {v}").as_bytes());
    }
    if let Some(v) = r.max {
        out.extend_from_slice(format!(" MAX {v}").as_bytes());
    }
    if let Some(all) = &r.all
        && !all.is_empty()
    {
        out.extend_from_slice(b" ALL ");
        encode::encode_uid_set(out, all);
    }
    if let Some(v) = r.count {
        out.extend_from_slice(format!(" COUNT {v}").as_bytes());
    }
    if let Some(v) = r.modseq {
        out.extend_from_slice(format!(" MODSEQ {v}").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes the untagged updates of [`crate::Selected::sync`].
pub fn updates(out: &mut Vec<u8>, updates: &[Update], condstore: bool) {
    for u in updates {
        match u {
            Update::Expunge(n) => out.extend_from_slice(format!("* {n} EXPUNGE\r\n").as_bytes()),
            Update::Vanished(uids) => {
                out.extend_from_slice(b"* VANISHED ");
                encode::encode_uid_set(out, uids);
                out.extend_from_slice(b"\r\n");
            }
            Update::Exists(n) => out.extend_from_slice(format!("* {n} EXISTS\r\n").as_bytes()),
            Update::Flags { seq, uid, flags, modseq } => {
                let mut w = FetchWriter::new(out, *seq);
                w.uid(*uid);
                w.flags(flags);
                if condstore {
                    w.modseq(*modseq);
                }
                w.finish();
            }
        }
    }
}

/// `* VANISHED (EARLIER) a:b,c` (RFC 7162 §3.2.10), of sorted, merged UID ranges; nothing
/// when there are none.
pub fn vanished_earlier(out: &mut Vec<u8>, ranges: &[(u32, u32)]) {
    if ranges.is_empty() {
        return;
    }
    out.extend_from_slice(b"* VANISHED (EARLIER) ");
    for (i, (a, b)) in ranges.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if a == b {
            out.extend_from_slice(a.to_string().as_bytes());
        } else {
            out.extend_from_slice(format!("{a}:{b}").as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// One `* n FETCH (...)` response, item by item.
pub struct FetchWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    start: usize,
}

impl<'a> FetchWriter<'a> {
    /// Starts the response for message `seq`.
    pub fn new(out: &'a mut Vec<u8>, seq: u32) -> FetchWriter<'a> {
        let start = out.len();
        out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
        FetchWriter { out, first: true, start }
    }

    fn sep(&mut self) {
        if !self.first {
            self.out.push(b' ');
        }
        self.first = false;
    }

    /// `UID n`.
    pub fn uid(&mut self, uid: u32) {
        self.sep();
        self.out.extend_from_slice(format!("UID {uid}").as_bytes());
    }

    /// `FLAGS (...)`: flags as stored (`\Seen`, keywords).
    pub fn flags(&mut self, flags: &[String]) {
        self.sep();
        self.out.extend_from_slice(format!("FLAGS ({})", flags.join(" ")).as_bytes());
    }

    /// `MODSEQ (n)`.
    pub fn modseq(&mut self, m: u64) {
        self.sep();
        self.out.extend_from_slice(format!("MODSEQ ({m})").as_bytes());
    }

    /// `INTERNALDATE "..."`.
    pub fn internal_date(&mut self, d: DateTime) {
        self.sep();
        self.out.extend_from_slice(b"INTERNALDATE ");
        encode::encode_date_time(self.out, d);
    }

    /// `RFC822.SIZE n`.
    pub fn size(&mut self, n: u64) {
        self.sep();
        self.out.extend_from_slice(format!("RFC822.SIZE {n}").as_bytes());
    }

    /// An item whose value is already encoded (`ENVELOPE (...)`, `BODYSTRUCTURE (...)`).
    pub fn encoded(&mut self, name: &str, value: &[u8]) {
        self.sep();
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(value);
    }

    /// An item with a string value: `name literal` (`BODY[1]<0> {n}...`), or `name NIL`.
    pub fn string(&mut self, name: &str, value: Option<&[u8]>) {
        self.sep();
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b' ');
        match value {
            Some(v) => encode::encode_literal(self.out, v),
            None => self.out.extend_from_slice(b"NIL"),
        }
    }

    /// `name ~{n}...`: a literal8 (BINARY, RFC 3516).
    pub fn binary(&mut self, name: &str, value: &[u8]) {
        self.sep();
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(format!(" ~{{{}}}\r\n", value.len()).as_bytes());
        self.out.extend_from_slice(value);
    }

    /// Ends the response; one without any item is not sent at all (`msg-att` has at least one).
    pub fn finish(self) {
        if self.first {
            self.out.truncate(self.start);
        } else {
            self.out.extend_from_slice(b")\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FetchWriter;

    #[test]
    fn a_fetch_response_without_items_is_not_sent() {
        let mut out = b"* 1 FETCH (UID 1)\r\n".to_vec();
        FetchWriter::new(&mut out, 2).finish();
        assert_eq!(out, b"* 1 FETCH (UID 1)\r\n");
        let mut w = FetchWriter::new(&mut out, 3);
        w.uid(7);
        w.finish();
        assert_eq!(out, b"* 1 FETCH (UID 1)\r\n* 3 FETCH (UID 7)\r\n");
    }
}
