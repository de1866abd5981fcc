//! The MIME structure of RFC 5322 bytes (RFC 2045, RFC 2046): a lenient, bounded splitter
//! that never fails. Offsets are byte-exact so sections are slices of the raw message.

use std::ops::Range;

use super::header::{self, Field, Params};
use crate::limits::{MAX_MIME_DEPTH, MAX_MIME_PARTS};

/// One MIME entity: a message, a part, or a nested message. Strings are the octets as
/// written (unfolded), not necessarily UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MimeNode {
    /// The header, with the empty line that ends it (when there is one).
    pub header: Range<usize>,
    /// The body.
    pub body: Range<usize>,
    /// The media type as written (`text` when absent or malformed).
    pub media_type: Vec<u8>,
    /// The subtype as written.
    pub subtype: Vec<u8>,
    /// Content-Type parameters, RFC 2231 continuations merged; `None` without any.
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    /// Whether the node had a usable Content-Type field.
    pub explicit_type: bool,
    /// Content-ID.
    pub id: Option<Vec<u8>>,
    /// Content-Description.
    pub description: Option<Vec<u8>>,
    /// Content-Transfer-Encoding as written (`None`: 7bit).
    pub encoding: Option<Vec<u8>>,
    /// Content-Disposition value and parameters.
    pub disposition: Option<Disposition>,
    /// Content-Language tags.
    pub language: Option<Vec<Vec<u8>>>,
    /// Content-Location.
    pub location: Option<Vec<u8>>,
    /// Content-MD5.
    pub md5: Option<Vec<u8>>,
    /// Line feeds in the body.
    pub lines: usize,
    /// The parts of a multipart, as indexes into [`MimeTree::nodes`].
    pub children: Vec<usize>,
    /// The nested message of a message/rfc822 or message/global part.
    pub message: Option<usize>,
}

impl MimeNode {
    /// Whether the media type is `ty`/`sub` (case-insensitive).
    pub fn is(&self, ty: &str, sub: &str) -> bool {
        self.media_type.eq_ignore_ascii_case(ty.as_bytes())
            && self.subtype.eq_ignore_ascii_case(sub.as_bytes())
    }

    /// Whether this is a multipart.
    pub fn is_multipart(&self) -> bool {
        self.media_type.eq_ignore_ascii_case(b"multipart")
    }

    /// Whether this is a text part.
    pub fn is_text(&self) -> bool {
        self.media_type.eq_ignore_ascii_case(b"text")
    }

    /// A Content-Type parameter by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| &v[..])
    }
}

/// A Content-Disposition (RFC 2183): its value and parameters, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    /// `inline`, `attachment`, ...
    pub kind: Vec<u8>,
    /// The parameters, RFC 2231 continuations merged.
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The MIME tree of a message: node 0 is the message itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MimeTree {
    /// Every node, parents before children.
    pub nodes: Vec<MimeNode>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Default {
    Text,
    Message,
}

impl MimeTree {
    /// Parses raw RFC 5322 bytes. Never fails: what is malformed reads as text/plain.
    /// Bounded by [`MAX_MIME_DEPTH`] levels and [`MAX_MIME_PARTS`] nodes; each level scans
    /// its own range once, so the time is linear in the size times the depth bound.
    pub fn parse(raw: &[u8]) -> MimeTree {
        let mut t = MimeTree { nodes: Vec::new() };
        t.part(raw, 0..raw.len(), 0, Default::Text);
        t
    }

    /// The message node.
    pub fn root(&self) -> &MimeNode {
        &self.nodes[0]
    }

    /// Parses one entity into the arena. Returns its index and whether it is a container
    /// whose content runs to the very end of `range`: a multipart closed there, a message
    /// whose body is one, or an encoded message (not parsed). Dovecot then counts the line
    /// break before the parent's next delimiter into that entity.
    fn part(
        &mut self,
        raw: &[u8],
        range: Range<usize>,
        depth: usize,
        def: Default,
    ) -> (usize, bool) {
        let (hdr, body) = header::split_header(raw, range.start, range.end);
        let fields = header::fields(raw, hdr.clone());
        let mut node = describe(raw, &fields, def);
        node.lines = raw[body.clone()].iter().filter(|&&b| b == b'\n').count();
        node.header = hdr;
        node.body = body.clone();
        let idx = self.nodes.len();
        let multipart = node.is_multipart();
        let message = node.is("message", "rfc822") || node.is("message", "global");
        let boundary = node.param("boundary").map(<[u8]>::to_vec);
        let digest = node.is("multipart", "digest");
        self.nodes.push(node);
        if depth + 1 >= MAX_MIME_DEPTH {
            return (idx, false);
        }
        if multipart {
            let Some(boundary) = boundary.filter(|b| !b.is_empty()) else { return (idx, false) };
            let child_def = if digest { Default::Message } else { Default::Text };
            let (parts, close_end) = split_multipart(raw, body.clone(), &boundary);
            for r in parts {
                if self.nodes.len() >= MAX_MIME_PARTS {
                    break;
                }
                let first = self.nodes.len();
                let (c, runs_to_end) = self.part(raw, r.clone(), depth + 1, child_def);
                self.nodes[idx].children.push(c);
                if runs_to_end {
                    self.extend_to_line_break(raw, first, r.end);
                }
            }
            return (idx, close_end == Some(range.end));
        }
        if message && self.nodes.len() < MAX_MIME_PARTS {
            let identity = self.nodes[idx].encoding.as_ref().is_none_or(|e| {
                [&b"7bit"[..], b"8bit", b"binary"].iter().any(|x| e.eq_ignore_ascii_case(x))
            });
            if !identity {
                return (idx, true);
            }
            let (m, runs_to_end) = self.part(raw, body, depth + 1, Default::Text);
            self.nodes[idx].message = Some(m);
            return (idx, runs_to_end);
        }
        (idx, false)
    }

    /// Extends over the line break at `end` every entity parsed from `first` on whose body
    /// ends there.
    fn extend_to_line_break(&mut self, raw: &[u8], first: usize, end: usize) {
        let lb = if raw[end..].starts_with(b"\r\n") {
            2
        } else {
            usize::from(raw[end..].starts_with(b"\n"))
        };
        for n in &mut self.nodes[first..] {
            if n.body.end == end {
                n.body.end += lb;
                n.lines += lb.min(1);
            }
        }
    }
}

/// The body ranges of the parts of a multipart body: between delimiter lines
/// (`--boundary` at the start of a line), the line break before a delimiter belonging to
/// it; an unclosed last part runs to the end.
/// Also returns where the close delimiter's line ends (before its line break), if found.
fn split_multipart(
    raw: &[u8],
    body: Range<usize>,
    boundary: &[u8],
) -> (Vec<Range<usize>>, Option<usize>) {
    let mut parts = Vec::new();
    let mut open: Option<usize> = None;
    let mut i = body.start;
    while i < body.end {
        let e = header::line_end(raw, i, body.end);
        let line = &raw[i..e];
        if line.len() >= 2 + boundary.len()
            && line.starts_with(b"--")
            && &line[2..2 + boundary.len()] == boundary
        {
            let mut before = i;
            if before > body.start && raw[before - 1] == b'\n' {
                before -= 1;
                if before > body.start && raw[before - 1] == b'\r' {
                    before -= 1;
                }
            }
            if let Some(s) = open.take() {
                parts.push(s..before.max(s));
            }
            if line[2 + boundary.len()..].starts_with(b"--") {
                let mut le = e;
                if le > i && raw[le - 1] == b'\n' {
                    le -= 1;
                    if le > i && raw[le - 1] == b'\r' {
                        le -= 1;
                    }
                }
                return (parts, Some(le));
            }
            open = Some(e);
        }
        i = e;
    }
    if let Some(s) = open {
        parts.push(s..body.end);
    }
    (parts, None)
}

fn text_of(raw: &[u8], f: &Field) -> Vec<u8> {
    header::unfold(&raw[f.value.clone()])
}

fn params_strings(p: Params) -> Vec<(Vec<u8>, Vec<u8>)> {
    p.0
}

/// The Content-* description of an entity from its header fields.
fn describe(raw: &[u8], fields: &[Field], def: Default) -> MimeNode {
    let mut n = MimeNode {
        header: 0..0,
        body: 0..0,
        media_type: Vec::new(),
        subtype: Vec::new(),
        params: Vec::new(),
        explicit_type: false,
        id: None,
        description: None,
        encoding: None,
        disposition: None,
        language: None,
        location: None,
        md5: None,
        lines: 0,
        children: Vec::new(),
        message: None,
    };
    if let Some(f) = header::find(raw, fields, "Content-Type") {
        // As Dovecot: a type without a subtype is kept, with an empty subtype.
        let v = &raw[f.value.clone()];
        let i = header::skip_cfws(v, 0);
        let (e, ty) = header::token(v, i);
        if !ty.is_empty() {
            let mut j = header::skip_cfws(v, e);
            let mut sub: &[u8] = b"";
            if v.get(j) == Some(&b'/') {
                let k = header::skip_cfws(v, j + 1);
                let (e2, st) = header::token(v, k);
                sub = st;
                j = e2;
            }
            n.media_type = ty.to_vec();
            n.subtype = sub.to_vec();
            n.params = params_strings(header::params(v, j));
            n.explicit_type = true;
        }
    }
    if !n.explicit_type {
        let (t, s) =
            if def == Default::Message { ("message", "rfc822") } else { ("text", "plain") };
        n.media_type = t.into();
        n.subtype = s.into();
    }
    if let Some(f) = header::find(raw, fields, "Content-Transfer-Encoding") {
        let v = &raw[f.value.clone()];
        let (_, t) = header::token(v, header::skip_cfws(v, 0));
        if !t.is_empty() {
            n.encoding = Some(t.to_vec());
        }
    }
    if let Some(f) = header::find(raw, fields, "Content-Disposition") {
        let v = &raw[f.value.clone()];
        let (e, t) = header::token(v, header::skip_cfws(v, 0));
        if !t.is_empty() {
            n.disposition = Some(Disposition {
                kind: t.to_vec(),
                params: params_strings(header::params(v, e)),
            });
        }
    }
    if let Some(f) = header::find(raw, fields, "Content-Language") {
        let v = &raw[f.value.clone()];
        let tags: Vec<Vec<u8>> = v
            .split(|&b| b == b',')
            .filter_map(|t| {
                let i = header::skip_cfws(t, 0);
                let (_, tok) = header::token(t, i);
                (!tok.is_empty()).then(|| tok.to_vec())
            })
            .collect();
        if !tags.is_empty() {
            n.language = Some(tags);
        }
    }
    n.id = header::find(raw, fields, "Content-ID").map(|f| text_of(raw, f));
    n.description = header::find(raw, fields, "Content-Description").map(|f| text_of(raw, f));
    n.location = header::find(raw, fields, "Content-Location").map(|f| text_of(raw, f));
    n.md5 = header::find(raw, fields, "Content-MD5").map(|f| text_of(raw, f));
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_parts_exclude_the_delimiter_line_break() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\n\r\none\r\n--b\r\nContent-Type: text/html\r\n\r\ntwo\r\n--b--\r\nepi";
        let t = MimeTree::parse(raw);
        let r = t.root();
        assert_eq!(r.children.len(), 2);
        let one = &t.nodes[r.children[0]];
        assert_eq!(&raw[one.body.clone()], b"one");
        let two = &t.nodes[r.children[1]];
        assert_eq!(&raw[two.body.clone()], b"two");
        assert!(two.is("text", "html"));
    }

    #[test]
    fn depth_and_part_count_are_bounded() {
        let mut raw = Vec::new();
        for _ in 0..100 {
            raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        let t = MimeTree::parse(&raw);
        assert_eq!(t.nodes.len(), MAX_MIME_DEPTH);
        let mut raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n".to_vec();
        for _ in 0..5000 {
            raw.extend_from_slice(b"--x\r\n\r\na\r\n");
        }
        let t = MimeTree::parse(&raw);
        assert_eq!(t.nodes.len(), MAX_MIME_PARTS);
    }
}
