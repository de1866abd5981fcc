//! FETCH data over raw RFC 5322 bytes: BODYSTRUCTURE and BODY (RFC 9051 §7.5.2), ENVELOPE,
//! BODY[section] (RFC 9051 §6.4.5) and BINARY (RFC 3516), written as Dovecot 2.3 writes them.

use zeroize::Zeroizing;

use super::address::{self, Address};
use super::codec;
use super::header::{self, Field, for_humans, nstring};
use super::tree::{MimeNode, MimeTree};
use crate::command::{Section, SectionText};

/// Why a BINARY item cannot be served (RFC 3516 §4.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    /// The part's Content-Transfer-Encoding is not one the server decodes: the tagged NO
    /// carries `[UNKNOWN-CTE]`.
    #[error("unknown content-transfer-encoding")]
    UnknownCte,
    /// The part does not exist (Dovecot answers with an empty string).
    #[error("no such part")]
    NoSuchPart,
}

/// The answer Dovecot gives for a multipart without parts (`imap-bodystructure.c`).
const EMPTY_BODY: &[u8] = b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0";

fn s(out: &mut Vec<u8>, v: &[u8]) {
    nstring(out, Some(v));
}

fn ns(out: &mut Vec<u8>, v: Option<&Vec<u8>>) {
    nstring(out, v.map(|v| &v[..]));
}

fn param_list(out: &mut Vec<u8>, p: &[(Vec<u8>, Vec<u8>)]) {
    if p.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (k, (n, v)) in p.iter().enumerate() {
        if k > 0 {
            out.push(b' ');
        }
        s(out, n);
        out.push(b' ');
        s(out, v);
    }
    out.push(b')');
}

fn extension(out: &mut Vec<u8>, n: &MimeNode) {
    out.push(b' ');
    match &n.disposition {
        None => out.extend_from_slice(b"NIL"),
        Some(d) => {
            out.push(b'(');
            s(out, &d.kind);
            out.push(b' ');
            param_list(out, &d.params);
            out.push(b')');
        }
    }
    out.push(b' ');
    match &n.language {
        None => out.extend_from_slice(b"NIL"),
        Some(l) => {
            out.push(b'(');
            for (k, t) in l.iter().enumerate() {
                if k > 0 {
                    out.push(b' ');
                }
                s(out, t);
            }
            out.push(b')');
        }
    }
    out.push(b' ');
    ns(out, n.location.as_ref());
}

/// Appends the BODYSTRUCTURE (`extensible`) or BODY of the message to `out`, parentheses
/// included (RFC 9051 §7.5.2).
pub fn body_structure(raw: &[u8], tree: &MimeTree, extensible: bool, out: &mut Vec<u8>) {
    write_part(raw, tree, 0, extensible, out);
}

fn write_part(raw: &[u8], tree: &MimeTree, idx: usize, ext: bool, out: &mut Vec<u8>) {
    let n = &tree.nodes[idx];
    out.push(b'(');
    if n.is_multipart() {
        if n.children.is_empty() {
            out.extend_from_slice(EMPTY_BODY);
            if ext {
                out.extend_from_slice(b" NIL NIL NIL NIL");
            }
            out.push(b')');
        }
        for &c in &n.children {
            write_part(raw, tree, c, ext, out);
        }
        out.push(b' ');
        s(out, &n.subtype);
        if ext {
            out.push(b' ');
            param_list(out, &n.params);
            extension(out, n);
        }
        out.push(b')');
        return;
    }
    s(out, &n.media_type);
    out.push(b' ');
    s(out, &n.subtype);
    out.push(b' ');
    if n.is_text() && n.param("charset").is_none() {
        // As Dovecot: a text part without a charset says us-ascii.
        let mut p = n.params.clone();
        p.push((b"charset".to_vec(), b"us-ascii".to_vec()));
        param_list(out, &p);
    } else {
        param_list(out, &n.params);
    }
    out.push(b' ');
    ns(out, n.id.as_ref());
    out.push(b' ');
    ns(out, n.description.as_ref());
    out.push(b' ');
    s(out, n.encoding.as_deref().unwrap_or(b"7bit"));
    out.extend_from_slice(format!(" {}", n.body.len()).as_bytes());
    if n.is_text() {
        out.extend_from_slice(format!(" {}", n.lines).as_bytes());
    } else if n.is("message", "rfc822") || n.is("message", "global") {
        out.push(b' ');
        match n.message {
            Some(m) => {
                envelope_of(raw, tree.nodes[m].header.clone(), out);
                out.push(b' ');
                write_part(raw, tree, m, ext, out);
            }
            None => {
                out.extend_from_slice(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ");
                out.extend_from_slice(EMPTY_BODY);
                if ext {
                    out.extend_from_slice(b" NIL NIL NIL NIL");
                }
                out.push(b')');
            }
        }
        out.extend_from_slice(format!(" {}", n.lines).as_bytes());
    }
    if ext {
        out.push(b' ');
        ns(out, n.md5.as_ref());
        extension(out, n);
    }
    out.push(b')');
}

/// Appends the ENVELOPE of the message to `out`, parentheses included (RFC 9051 §7.5.2).
pub fn envelope(raw: &[u8], out: &mut Vec<u8>) {
    let (h, _) = header::split_header(raw, 0, raw.len());
    envelope_of(raw, h, out);
}

fn envelope_of(raw: &[u8], h: std::ops::Range<usize>, out: &mut Vec<u8>) {
    // As Dovecot: the last of repeated string fields, all of repeated address fields.
    let fields = header::fields(raw, h);
    let last = |name: &str| {
        fields.iter().rev().find(|f| header::is_named(raw, f, name)).map(|f| &raw[f.value.clone()])
    };
    let text = |name: &str| last(name).map(header::unfold);
    let addrs = |name: &str| {
        let l: Vec<Address> = fields
            .iter()
            .filter(|f| header::is_named(raw, f, name))
            .flat_map(|f| address::parse(&raw[f.value.clone()]))
            .collect();
        (!l.is_empty()).then_some(l)
    };
    out.push(b'(');
    nstring(out, text("Date").as_deref());
    out.push(b' ');
    match last("Subject") {
        Some(v) => for_humans(out, v),
        None => out.extend_from_slice(b"NIL"),
    }
    let from = addrs("From");
    let sender = addrs("Sender").or_else(|| from.clone());
    let reply_to = addrs("Reply-To").or_else(|| from.clone());
    for l in [&from, &sender, &reply_to, &addrs("To"), &addrs("Cc"), &addrs("Bcc")] {
        out.push(b' ');
        write_addresses(out, l.as_deref());
    }
    out.push(b' ');
    nstring(out, text("In-Reply-To").as_deref());
    out.push(b' ');
    nstring(out, text("Message-ID").as_deref());
    out.push(b')');
}

fn write_addresses(out: &mut Vec<u8>, l: Option<&[Address]>) {
    let Some(l) = l else {
        out.extend_from_slice(b"NIL");
        return;
    };
    out.push(b'(');
    for a in l {
        out.push(b'(');
        match &a.name {
            Some(n) => for_humans(out, n),
            None => out.extend_from_slice(b"NIL"),
        }
        out.push(b' ');
        nstring(out, a.route.as_deref());
        out.push(b' ');
        nstring(out, a.mailbox.as_deref());
        out.push(b' ');
        nstring(out, a.domain.as_deref());
        out.push(b')');
    }
    out.push(b')');
}

/// Resolves a part path (RFC 9051 §6.4.5): a multipart's parts are numbered from 1; a
/// message/rfc822 part's numbers address its nested message; part 1 of anything else is
/// the entity itself. `None` when the part does not exist.
pub(crate) fn resolve(tree: &MimeTree, path: &[u32]) -> Option<usize> {
    let mut cur = 0usize;
    let mut in_message = true;
    let mut root_leaf = false;
    for &n in path {
        let k = usize::try_from(n).ok()?.checked_sub(1)?;
        let node = &tree.nodes[cur];
        let target = if !in_message && !node.is_multipart() && node.message.is_some() {
            node.message?
        } else {
            cur
        };
        let t = &tree.nodes[target];
        if t.is_multipart() {
            cur = *t.children.get(k)?;
        } else if k == 0 && !root_leaf {
            cur = target;
            // Part 1 of a message that is one leaf is its body, with nothing below it
            // (Dovecot: `1.1` of a text/plain message is empty).
            root_leaf = in_message && tree.nodes[cur].message.is_none();
        } else {
            return None;
        }
        in_message = false;
    }
    Some(cur)
}

fn header_fields(raw: &[u8], h: std::ops::Range<usize>, names: &[String], not: bool) -> Vec<u8> {
    let fields: Vec<Field> = header::fields(raw, h.clone());
    let mut out = Vec::new();
    for f in &fields {
        let hit = names.iter().any(|n| header::is_named(raw, f, n));
        if hit != not {
            out.extend_from_slice(&raw[f.whole.clone()]);
        }
    }
    if not {
        // The empty line that ends the header, when there is one.
        let end = fields.last().map_or(h.start, |f| f.whole.end);
        out.extend_from_slice(&raw[end..h.end]);
    } else {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The bytes of a body section (RFC 9051 §6.4.5). `None` when the part does not exist or
/// has no such text (HEADER or TEXT of a part that is no message; MIME without a part):
/// Dovecot then answers with an empty string, and so should the server.
pub fn section(raw: &[u8], tree: &MimeTree, sec: &Section) -> Option<Zeroizing<Vec<u8>>> {
    let idx = resolve(tree, &sec.part)?;
    let node = &tree.nodes[idx];
    // The message whose HEADER/TEXT a specifier addresses.
    let msg = if sec.part.is_empty() { Some(idx) } else { node.message };
    let bytes = match &sec.text {
        None if sec.part.is_empty() => raw.to_vec(),
        None => raw[node.body.clone()].to_vec(),
        Some(SectionText::Mime) => {
            if sec.part.is_empty() {
                return None;
            }
            raw[node.header.clone()].to_vec()
        }
        Some(SectionText::Header) => raw[tree.nodes[msg?].header.clone()].to_vec(),
        Some(SectionText::Text) => raw[tree.nodes[msg?].body.clone()].to_vec(),
        Some(SectionText::HeaderFields(names)) => {
            header_fields(raw, tree.nodes[msg?].header.clone(), names, false)
        }
        Some(SectionText::HeaderFieldsNot(names)) => {
            header_fields(raw, tree.nodes[msg?].header.clone(), names, true)
        }
    };
    Some(Zeroizing::new(bytes))
}

/// How a node's body decodes.
enum Cte {
    Identity,
    Base64,
    QuotedPrintable,
}

fn cte(n: &MimeNode) -> Result<Cte, BinaryError> {
    let Some(e) = n.encoding.as_deref() else { return Ok(Cte::Identity) };
    if [&b"7bit"[..], b"8bit", b"binary"].iter().any(|x| e.eq_ignore_ascii_case(x)) {
        Ok(Cte::Identity)
    } else if e.eq_ignore_ascii_case(b"base64") {
        Ok(Cte::Base64)
    } else if e.eq_ignore_ascii_case(b"quoted-printable") {
        Ok(Cte::QuotedPrintable)
    } else {
        Err(BinaryError::UnknownCte)
    }
}

/// A node's body with its transfer encoding undone.
pub(crate) fn decoded_body(raw: &[u8], n: &MimeNode) -> Result<Vec<u8>, BinaryError> {
    let b = &raw[n.body.clone()];
    Ok(match cte(n)? {
        Cte::Identity => b.to_vec(),
        Cte::Base64 => codec::base64_decode(b),
        Cte::QuotedPrintable => codec::qp_decode(b),
    })
}

/// The decoded content of a part (RFC 3516 `BINARY[part]`; RFC 9051 §6.4.5). An empty path is
/// the whole message with every base64 or quoted-printable leaf decoded and its
/// Content-Transfer-Encoding field rewritten to `binary`, as Dovecot does.
pub fn binary(
    raw: &[u8],
    tree: &MimeTree,
    part: &[u32],
) -> Result<Zeroizing<Vec<u8>>, BinaryError> {
    if part.is_empty() {
        return rewrite_binary(raw, tree, 0..raw.len()).map(Zeroizing::new);
    }
    let idx = resolve(tree, part).ok_or(BinaryError::NoSuchPart)?;
    let n = &tree.nodes[idx];
    if n.children.is_empty() && n.message.is_none() {
        decoded_body(raw, n).map(Zeroizing::new)
    } else {
        // A multipart or a message: its body with the leaves inside decoded, as Dovecot does.
        rewrite_binary(raw, tree, n.body.clone()).map(Zeroizing::new)
    }
}

/// The size of [`binary`]'s answer (RFC 3516 BINARY.SIZE).
pub fn binary_size(raw: &[u8], tree: &MimeTree, part: &[u32]) -> Result<u64, BinaryError> {
    binary(raw, tree, part).map(|b| b.len() as u64)
}

/// `raw[range]` with every leaf inside it decoded and relabelled `binary`.
fn rewrite_binary(
    raw: &[u8],
    tree: &MimeTree,
    range: std::ops::Range<usize>,
) -> Result<Vec<u8>, BinaryError> {
    let mut edits: Vec<(std::ops::Range<usize>, Vec<u8>)> = Vec::new();
    for n in &tree.nodes {
        let inside = n.header.start >= range.start && n.body.end <= range.end;
        if !inside || !n.children.is_empty() || n.message.is_some() {
            continue;
        }
        match cte(n)? {
            Cte::Identity => {}
            _ => {
                let fields = header::fields(raw, n.header.clone());
                // Dovecot drops the field and adds one at the end of the header.
                if let Some(f) = header::find(raw, &fields, "Content-Transfer-Encoding") {
                    edits.push((f.whole.clone(), Vec::new()));
                }
                let end = fields.last().map_or(n.header.start, |f| f.whole.end);
                edits.push((end..end, b"Content-Transfer-Encoding: binary\r\n".to_vec()));
                edits.push((n.body.clone(), decoded_body(raw, n)?));
            }
        }
    }
    edits.sort_by_key(|e| e.0.start);
    let mut out = Vec::with_capacity(range.len());
    let mut at = range.start;
    for (r, b) in edits {
        if r.start < at {
            continue;
        }
        out.extend_from_slice(&raw[at..r.start]);
        out.extend_from_slice(&b);
        at = r.end;
    }
    out.extend_from_slice(&raw[at..range.end]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_of_one_leaf_has_nothing_below_part_1() {
        let raw = b"Subject: x\r\nContent-Type: text/plain\r\n\r\nbody\r\n";
        let tree = MimeTree::parse(raw);
        assert_eq!(resolve(&tree, &[1]), Some(0));
        assert_eq!(resolve(&tree, &[1, 1]), None);
        assert_eq!(resolve(&tree, &[2]), None);
        let raw = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner\r\n";
        let tree = MimeTree::parse(raw);
        assert!(resolve(&tree, &[1, 1]).is_some());
    }
}
