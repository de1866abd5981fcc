//! RFC 5322 address lists, read leniently as Dovecot's `message_address_parse` reads them
//! for ENVELOPE: groups as a start and an end entry, a missing mailbox or domain filled in
//! as `MISSING_MAILBOX` / `MISSING_DOMAIN`, a comment as the name of a bare address.

use super::header::{quoted, skip_comment};

/// One ENVELOPE address: a mailbox, or a group start (`mailbox` = group name, no domain) or
/// end (all `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Address {
    pub(crate) name: Option<Vec<u8>>,
    pub(crate) route: Option<Vec<u8>>,
    pub(crate) mailbox: Option<Vec<u8>>,
    pub(crate) domain: Option<Vec<u8>>,
}

const SPECIALS: &[u8] = b"()<>@,;:\\\".[]";

struct P<'a> {
    v: &'a [u8],
    i: usize,
    comment: Option<Vec<u8>>,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.v.len() {
            match self.v[self.i] {
                b' ' | b'\t' | b'\r' | b'\n' => self.i += 1,
                b'(' => {
                    let (e, t) = skip_comment(self.v, self.i);
                    self.i = e;
                    self.comment = Some(t);
                }
                _ => break,
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.v.get(self.i).copied()
    }

    /// Words (atoms, dots, quoted strings) up to a special other than '.': (spaced, joined).
    fn phrase(&mut self) -> (Vec<u8>, Vec<u8>) {
        let mut spaced = Vec::new();
        let mut joined = Vec::new();
        loop {
            let before = self.i;
            self.ws();
            let Some(c) = self.peek() else { break };
            let word = if c == b'"' {
                let (e, s) = quoted(self.v, self.i);
                self.i = e;
                s
            } else if c == b'.' {
                self.i += 1;
                b".".to_vec()
            } else if SPECIALS.contains(&c) {
                break;
            } else {
                let s = self.i;
                while self.i < self.v.len()
                    && !SPECIALS.contains(&self.v[self.i])
                    && !matches!(self.v[self.i], b' ' | b'\t' | b'\r' | b'\n')
                {
                    self.i += 1;
                }
                self.v[s..self.i].to_vec()
            };
            if !spaced.is_empty() && self.i > before && word != b"." && spaced.last() != Some(&b'.')
            {
                spaced.push(b' ');
            }
            spaced.extend_from_slice(&word);
            joined.extend_from_slice(&word);
        }
        (spaced, joined)
    }

    /// A domain (atoms, dots, literals) up to ',', ';', '>' or the end.
    fn domain(&mut self) -> Vec<u8> {
        let mut d = Vec::new();
        loop {
            self.ws();
            match self.peek() {
                None | Some(b',' | b';' | b'>' | b'<' | b':') => break,
                Some(b'[') => {
                    let s = self.i;
                    while self.i < self.v.len() && self.v[self.i] != b']' {
                        self.i += 1;
                    }
                    self.i = (self.i + 1).min(self.v.len());
                    d.extend_from_slice(&self.v[s..self.i]);
                }
                Some(b'(' | b'"' | b'@' | b')' | b'\\' | b']') => self.i += 1,
                Some(c) => {
                    d.push(c);
                    self.i += 1;
                }
            }
        }
        d
    }

    fn mailbox(&mut self, out: &mut Vec<Address>) {
        self.comment = None;
        let (spaced, joined) = self.phrase();
        self.ws();
        let mut a = Address { name: None, route: None, mailbox: None, domain: None };
        if self.peek() == Some(b'<') {
            self.i += 1;
            a.name = (!spaced.is_empty()).then_some(spaced);
            self.ws();
            if self.peek() == Some(b'@') {
                // An obsolete route: @a,@b:
                let s = self.i;
                while self.i < self.v.len() && !matches!(self.v[self.i], b':' | b'>') {
                    self.i += 1;
                }
                a.route = Some(self.v[s..self.i].to_vec());
                if self.peek() == Some(b':') {
                    self.i += 1;
                }
            }
            let (_, local) = self.phrase();
            a.mailbox = Some(local);
            self.ws();
            if self.peek() == Some(b'@') {
                self.i += 1;
                a.domain = Some(self.domain());
            }
            while self.i < self.v.len() && self.v[self.i] != b'>' {
                self.i += 1;
            }
            self.i = (self.i + 1).min(self.v.len());
            self.ws();
        } else {
            a.mailbox = Some(joined);
            if self.peek() == Some(b'@') {
                self.i += 1;
                a.domain = Some(self.domain());
            }
            self.ws();
            a.name = self.comment.take();
        }
        if a.mailbox.as_ref().is_none_or(Vec::is_empty) {
            a.mailbox = Some(b"MISSING_MAILBOX".to_vec());
        }
        if a.domain.as_ref().is_none_or(Vec::is_empty) {
            a.domain = Some(b"MISSING_DOMAIN".to_vec());
        }
        out.push(a);
    }
}

/// Parses an address-list header value (folds allowed).
pub(crate) fn parse(v: &[u8]) -> Vec<Address> {
    let mut p = P { v, i: 0, comment: None };
    let mut out = Vec::new();
    let mut in_group = false;
    // Whether an element was read since the last comma: an empty element before a comma
    // reads as a missing address (Dovecot).
    let mut element = false;
    loop {
        p.ws();
        let Some(c) = p.peek() else { break };
        match c {
            b',' => {
                p.i += 1;
                if !element {
                    out.push(Address {
                        name: None,
                        route: None,
                        mailbox: Some(b"MISSING_MAILBOX".to_vec()),
                        domain: Some(b"MISSING_DOMAIN".to_vec()),
                    });
                }
                element = false;
                continue;
            }
            b';' => {
                p.i += 1;
                if in_group {
                    out.push(Address { name: None, route: None, mailbox: None, domain: None });
                    in_group = false;
                }
                continue;
            }
            _ => {}
        }
        let start = p.i;
        let (spaced, _) = p.phrase();
        p.ws();
        if p.peek() == Some(b':') && !in_group {
            p.i += 1;
            out.push(Address { name: None, route: None, mailbox: Some(spaced), domain: None });
            in_group = true;
            element = true;
            continue;
        }
        element = true;
        p.i = start;
        let before = p.i;
        p.mailbox(&mut out);
        if p.i == before {
            // No progress on a stray special: skip it.
            p.i += 1;
        }
    }
    if in_group {
        out.push(Address { name: None, route: None, mailbox: None, domain: None });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parts<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, Option<&'a [u8]>);

    fn m(a: &Address) -> Parts<'_> {
        (a.name.as_deref(), a.mailbox.as_deref(), a.domain.as_deref())
    }

    #[test]
    fn lists_groups_and_missing_parts() {
        let l = parse(b"Friends: w@x.net, \"Xena X\" <xena@x.net>;, y@x.net");
        assert_eq!(l.len(), 5);
        assert_eq!(m(&l[0]), (None, Some(&b"Friends"[..]), None));
        assert_eq!(m(&l[2]), (Some(&b"Xena X"[..]), Some(&b"xena"[..]), Some(&b"x.net"[..])));
        assert_eq!(m(&l[3]), (None, None, None));
        let l = parse(b"bob (Bob Comment), <>");
        assert_eq!(
            m(&l[0]),
            (Some(&b"Bob Comment"[..]), Some(&b"bob"[..]), Some(&b"MISSING_DOMAIN"[..]))
        );
        assert_eq!(m(&l[1]), (None, Some(&b"MISSING_MAILBOX"[..]), Some(&b"MISSING_DOMAIN"[..])));
        let l = parse(b"Name Only <@route.example:x@y.example>");
        assert_eq!(l[0].route.as_deref(), Some(&b"@route.example"[..]));
        assert!(parse(b"").is_empty());
        let _ = parse(b"<<<>>>@@@;;;:::\"");
    }
}
