//! Content transfer encodings (RFC 2045 §6): base64 and quoted-printable, both ways. The
//! decoders are lenient, as IMAP servers are: they skip what they cannot read.

use super::header::hex;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_value(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes base64, skipping every octet outside the alphabet and stopping at `=`.
pub(crate) fn base64_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc = 0u32;
    let mut n = 0;
    for &b in s {
        if b == b'=' {
            break;
        }
        let Some(v) = b64_value(b) else { continue };
        acc = acc << 6 | v;
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
    out
}

/// Encodes base64 with padding; `line` > 0 breaks the output into lines of that length
/// joined by CRLF (no final line break).
pub(crate) fn base64_encode(data: &[u8], line: usize, out: &mut Vec<u8>) {
    let mut col = 0;
    let mut put = |out: &mut Vec<u8>, c: u8| {
        if line > 0 && col == line {
            out.extend_from_slice(b"\r\n");
            col = 0;
        }
        out.push(c);
        col += 1;
    };
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let v = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for k in 0..4 {
            let c = if k <= chunk.len() { B64[(v >> (18 - 6 * k) & 63) as usize] } else { b'=' };
            put(out, c);
        }
    }
}

/// Decodes quoted-printable: `=XX` octets, soft line breaks, blanks before a line break
/// dropped; a malformed `=` is kept as is.
pub(crate) fn qp_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        match b {
            b'=' => {
                if let (Some(h), Some(l)) =
                    (s.get(i + 1).and_then(|&c| hex(c)), s.get(i + 2).and_then(|&c| hex(c)))
                {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                // A soft line break: '=', optional blanks, then CRLF, LF or the end.
                let mut j = i + 1;
                while j < s.len() && matches!(s[j], b' ' | b'\t') {
                    j += 1;
                }
                if j == s.len() {
                    i = j;
                    continue;
                }
                if s[j] == b'\n' {
                    i = j + 1;
                    continue;
                }
                if s[j] == b'\r' && s.get(j + 1) == Some(&b'\n') {
                    i = j + 2;
                    continue;
                }
                out.push(b'=');
                i += 1;
            }
            b' ' | b'\t' => {
                // Trailing blanks before a line break are dropped (RFC 2045 §6.7 (3)).
                let mut j = i;
                while j < s.len() && matches!(s[j], b' ' | b'\t') {
                    j += 1;
                }
                let at_eol = j == s.len()
                    || s[j] == b'\n'
                    || (s[j] == b'\r' && s.get(j + 1) == Some(&b'\n'));
                if !at_eol {
                    out.extend_from_slice(&s[i..j]);
                }
                i = j;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Encodes quoted-printable with lines of at most 76 octets. Only CRLF is a hard line
/// break; a lone CR or LF is encoded, so decoding gives back the exact data.
pub(crate) fn qp_encode(data: &[u8], out: &mut Vec<u8>) {
    const MAX: usize = 76;
    let mut col = 0;
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if b == b'\r' && data.get(i + 1) == Some(&b'\n') {
            out.extend_from_slice(b"\r\n");
            col = 0;
            i += 2;
            continue;
        }
        let next_is_eol =
            i + 1 == data.len() || (data[i + 1] == b'\r' && data.get(i + 2) == Some(&b'\n'));
        let literal =
            (b == b' ' || b == b'\t') && !next_is_eol || (33..=126).contains(&b) && b != b'=';
        let width = if literal { 1 } else { 3 };
        // Leave room for a soft break '=' unless this octet ends the line.
        let room = if next_is_eol { MAX } else { MAX - 1 };
        if col + width > room {
            out.extend_from_slice(b"=\r\n");
            col = 0;
        }
        if literal {
            out.push(b);
        } else {
            out.extend_from_slice(format!("={b:02X}").as_bytes());
        }
        col += width;
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_skips_junk() {
        for n in 0..10 {
            let data: Vec<u8> = (0..n * 7).map(|k| (k * 37) as u8).collect();
            let mut e = Vec::new();
            base64_encode(&data, 76, &mut e);
            assert!(e.split(|&b| b == b'\n').all(|l| l.len() <= 77));
            assert_eq!(base64_decode(&e), data);
        }
        assert_eq!(base64_decode(b"aG k\r\n!="), b"hi");
    }

    #[test]
    fn qp_round_trips() {
        let cases: &[&[u8]] = &[
            b"",
            b"plain",
            b"trailing space \r\nnext\t",
            b"lone\ncr\rend=",
            "caf\u{e9} ".as_bytes(),
            &[b'x'; 300],
            &[0u8, 255, b' ', b'\r'],
        ];
        for c in cases {
            let mut e = Vec::new();
            qp_encode(c, &mut e);
            assert!(e.split(|&b| b == b'\n').all(|l| l.len() <= 77), "{e:?}");
            assert!(e.iter().all(|&b| b < 128));
            assert_eq!(qp_decode(&e), *c, "{:?}", String::from_utf8_lossy(&e));
        }
    }

    #[test]
    fn qp_decodes_soft_breaks_like_dovecot() {
        assert_eq!(qp_decode(b"Caf=C3=A9 =\r\nand more."), "Café and more.".as_bytes());
        assert_eq!(qp_decode(b"a = b=\nc =3D"), b"a = bc =");
    }
}
