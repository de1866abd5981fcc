//! Framing of client input (RFC 9051 §2.2, §4.3; `spec/dmap.md` §6): splits the byte stream
//! into whole commands (lines and the literals they announce) before any detailed parse, each
//! refused over its limit before anything is allocated for it.

use std::collections::VecDeque;
use zeroize::Zeroize;

use crate::command::Tag;
use crate::limits::{
    MAX_APPEND_LEN, MAX_COMMAND_LEN, MAX_LINE_LEN, MAX_LITERALS_PER_COMMAND, MAX_TAG_LEN,
};

/// The limits a [`Framer`] enforces (`spec/dmap.md` §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Longest line segment, octets without its CRLF ([`MAX_LINE_LEN`]).
    pub max_line: usize,
    /// Largest whole command other than APPEND, lines and literals ([`MAX_COMMAND_LEN`]).
    pub max_command: usize,
    /// Largest literal of an APPEND command: the APPENDLIMIT ([`MAX_APPEND_LEN`]). An APPEND
    /// as a whole may be this plus `max_command`.
    pub max_append: usize,
    /// Most literals in one command ([`MAX_LITERALS_PER_COMMAND`]).
    pub max_literals: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        Self {
            max_line: MAX_LINE_LEN,
            max_command: MAX_COMMAND_LEN,
            max_append: MAX_APPEND_LEN,
            max_literals: MAX_LITERALS_PER_COMMAND,
        }
    }
}

/// What the framer reads next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameMode {
    /// Tagged commands with literals.
    #[default]
    Command,
    /// Single lines without literals, at most `max_line` octets: an AUTHENTICATE response
    /// (RFC 9051 §6.2.2) or IDLE's `DONE` (RFC 2177).
    Line,
}

/// One unit of framed input, or a refusal the driver must answer.
#[derive(Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete command as on the wire: its lines, the literals they announce and the final
    /// CRLF (or LF), for [`crate::parse_command`].
    Command(Vec<u8>),
    /// A synchronizing literal was announced within the limits: the driver writes
    /// `+ Ready for literal data\r\n` (RFC 9051 §7.5).
    ContinueLiteral,
    /// A line, or a command other than APPEND with its literals, exceeded its limit (or a
    /// synchronizing literal went past [`FrameLimits::max_literals`]): the driver answers
    /// `tag BAD` (or `* BAD` without a tag). The partial command is dropped and the framer
    /// resyncs at the next line end (for a literal: the end of the line announcing it, so the
    /// client, which waits for a continuation, sends nothing more of that command).
    LineTooLong {
        /// The command's tag, when it could be read.
        tag: Option<Tag>,
    },
    /// A literal was announced over its limit (`spec/dmap.md` §6), and the partial command
    /// is dropped. Synchronizing: only for an APPEND's message over
    /// [`FrameLimits::max_append`]; the driver answers `tag NO [TOOBIG]` and the client sends
    /// no literal. Non-synchronizing (RFC 7888 §4), any literal over its limit or past
    /// [`FrameLimits::max_literals`]: the octets that follow cannot be framed; the driver
    /// sends `* BYE` and closes, and the framer reads nothing more.
    LiteralTooLarge {
        /// The command's tag, when it could be read.
        tag: Option<Tag>,
        /// The size announced, saturated at `u64::MAX`.
        size: u64,
        /// `{n}` rather than `{n+}`.
        synchronizing: bool,
    },
    /// A line read in [`FrameMode::Line`], without its CRLF.
    Line(Vec<u8>),
}

impl std::fmt::Debug for Frame {
    // Commands and lines may carry passwords and SASL data: only their lengths are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Command(b) => write!(f, "Command({} octets)", b.len()),
            Self::ContinueLiteral => f.write_str("ContinueLiteral"),
            Self::LineTooLong { tag } => f.debug_struct("LineTooLong").field("tag", tag).finish(),
            Self::LiteralTooLarge { tag, size, synchronizing } => f
                .debug_struct("LiteralTooLarge")
                .field("tag", tag)
                .field("size", size)
                .field("synchronizing", synchronizing)
                .finish(),
            Self::Line(b) => write!(f, "Line({} octets)", b.len()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a line segment.
    Line,
    /// Reading the octets of a literal.
    Literal { remaining: usize },
    /// Dropping input through the next LF (after [`Frame::LineTooLong`]).
    Discard,
    /// Dropping all input (after a non-synchronizing [`Frame::LiteralTooLarge`]).
    Closed,
}

/// Splits client input into [`Frame`]s, sans-IO.
///
/// Polling order: after each [`Framer::handle_input`], call [`Framer::poll_frame`] until it
/// returns `None`, answering each frame as it comes. A frame after which the client sends
/// something other than commands (AUTHENTICATE without an initial response, IDLE) is followed,
/// before the next poll, by [`Framer::set_mode`]`(FrameMode::Line)`, and the line that ends it
/// by `set_mode(FrameMode::Command)`: framing stops after each complete command or line until
/// it is polled, so a mode change applies to exactly the input after it.
///
/// Memory: the framer holds the current frame, never more than its limit (a literal is
/// refused from its announcement, before any of it is read, and no buffer is sized from a
/// declared length), plus input given and not yet framed, which is at most the last read when
/// the driver polls as above. Each input octet is examined a bounded number of times.
pub struct Framer {
    limits: FrameLimits,
    mode: FrameMode,
    /// Input not yet framed: `input[pos..]`.
    input: Vec<u8>,
    pos: usize,
    /// The frame being read.
    frame: Vec<u8>,
    /// Where the current line segment starts in `frame`.
    seg_start: usize,
    /// Literals announced so far in the frame.
    literals: usize,
    /// Whether the frame is an APPEND (known from its first literal on).
    append: bool,
    /// Whether an APPEND may carry [`FrameLimits::max_append`] (after a login); else it is
    /// framed like any other command.
    append_allowed: bool,
    /// Frames ended so far (read whole, or dropped over a limit): numbers the current one.
    ended: u64,
    state: State,
    ready: VecDeque<Frame>,
}

// Input may carry passwords (LOGIN, AUTHENTICATE): only lengths are shown, and what was read
// is zeroed once framed or dropped.
impl std::fmt::Debug for Framer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framer")
            .field("mode", &self.mode)
            .field("unframed", &(self.input.len() - self.pos))
            .field("partial", &self.frame.len())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Drop for Framer {
    fn drop(&mut self) {
        self.input.zeroize();
        self.frame.zeroize();
    }
}

impl Framer {
    /// A framer in [`FrameMode::Command`].
    #[must_use]
    pub fn new(limits: FrameLimits) -> Self {
        Self {
            limits,
            mode: FrameMode::Command,
            input: Vec::new(),
            pos: 0,
            frame: Vec::new(),
            seg_start: 0,
            literals: 0,
            append: false,
            append_allowed: true,
            ended: 0,
            state: State::Line,
            ready: VecDeque::new(),
        }
    }

    /// Whether an APPEND's literal may be as large as [`FrameLimits::max_append`] (the
    /// default); when not (before a login, `spec/dmap.md` §6), an APPEND is held to
    /// [`FrameLimits::max_command`] like any command. Applies from the next frame.
    pub fn set_append_allowed(&mut self, allowed: bool) {
        self.append_allowed = allowed;
    }

    /// When a command or line has begun and is not whole yet (including input being dropped
    /// up to a line end): its number (frames ended before it) and the octets it has announced
    /// so far, its literals' included. `None` between commands. The driver bounds the time a
    /// command takes to arrive by it.
    #[must_use]
    pub fn partial(&self) -> Option<(u64, u64)> {
        let remaining = match self.state {
            State::Literal { remaining } => remaining,
            State::Discard => 0,
            State::Line if !self.frame.is_empty() => 0,
            State::Line | State::Closed => return None,
        };
        Some((self.ended, self.frame.len() as u64 + remaining as u64))
    }

    /// The current mode.
    #[must_use]
    pub fn mode(&self) -> FrameMode {
        self.mode
    }

    /// Switches between commands and single lines; applies to the input after the last frame
    /// polled (see the polling order on [`Framer`]).
    pub fn set_mode(&mut self, mode: FrameMode) {
        self.mode = mode;
    }

    /// Whether the framer has stopped reading (after a non-synchronizing literal over its
    /// limit): the driver closes the connection.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Feeds input read from the client.
    pub fn handle_input(&mut self, data: &[u8]) {
        if self.state == State::Closed {
            return;
        }
        if self.pos == self.input.len() {
            self.input.zeroize();
            self.pos = 0;
        } else if self.pos > 0 && self.pos >= self.input.len() / 2 {
            self.input[..self.pos].zeroize();
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        self.input.extend_from_slice(data);
        self.advance();
    }

    /// The next frame, if one is complete.
    pub fn poll_frame(&mut self) -> Option<Frame> {
        if self.ready.is_empty() {
            self.advance();
        }
        self.ready.pop_front()
    }

    fn reset_frame(&mut self) {
        self.ended += 1;
        self.frame.clear();
        self.seg_start = 0;
        self.literals = 0;
        self.append = false;
    }

    /// The largest the current frame may grow, octets.
    fn frame_limit(&self) -> usize {
        if self.append {
            self.limits.max_command.saturating_add(self.limits.max_append)
        } else {
            self.limits.max_command
        }
    }

    fn advance(&mut self) {
        loop {
            match self.state {
                State::Closed => {
                    self.input.zeroize();
                    self.input = Vec::new();
                    self.pos = 0;
                    return;
                }
                State::Discard => {
                    let rest = &self.input[self.pos..];
                    match rest.iter().position(|&b| b == b'\n') {
                        Some(k) => {
                            self.pos += k + 1;
                            self.state = State::Line;
                        }
                        None => {
                            self.pos = self.input.len();
                            return;
                        }
                    }
                }
                // A frame awaits polling: the mode may change before the next one.
                _ if !self.ready.is_empty() => return,
                State::Literal { remaining } => {
                    let avail = self.input.len() - self.pos;
                    if avail == 0 {
                        return;
                    }
                    let n = remaining.min(avail);
                    self.frame.extend_from_slice(&self.input[self.pos..self.pos + n]);
                    self.pos += n;
                    if n == remaining {
                        self.state = State::Line;
                        self.seg_start = self.frame.len();
                    } else {
                        self.state = State::Literal { remaining: remaining - n };
                    }
                }
                State::Line => {
                    if self.pos == self.input.len() {
                        return;
                    }
                    self.read_line();
                }
            }
        }
    }

    /// Reads from `input[pos..]` up to and including the next LF, or all of it.
    fn read_line(&mut self) {
        let rest = &self.input[self.pos..];
        let lf = rest.iter().position(|&b| b == b'\n');
        let take = lf.map_or(rest.len(), |k| k + 1);
        let seg_len = self.frame.len() - self.seg_start + take;
        let max_line = self.limits.max_line;
        let frame_limit = match self.mode {
            FrameMode::Command => self.frame_limit(),
            FrameMode::Line => usize::MAX,
        };
        // Checked before copying: a segment longer than the line plus CRLF never lands.
        if seg_len > max_line.saturating_add(2)
            || self.frame.len().saturating_add(take) > frame_limit
        {
            self.line_too_long(lf);
            return;
        }
        self.frame.extend_from_slice(&rest[..take]);
        self.pos += take;
        let seg = &self.frame[self.seg_start..];
        let content = if lf.is_some() {
            strip_eol(seg).len()
        } else {
            // A CR at the end may be the start of the CRLF.
            seg.len() - usize::from(seg.last() == Some(&b'\r'))
        };
        if content > max_line || (lf.is_some() && self.frame.len() > frame_limit) {
            self.line_too_long(None);
            if lf.is_some() {
                self.state = State::Line;
            }
            return;
        }
        if lf.is_none() {
            return;
        }
        match self.mode {
            FrameMode::Line => {
                let mut line = std::mem::take(&mut self.frame);
                let n = strip_eol(&line).len();
                line.truncate(n);
                self.reset_frame();
                self.ready.push_back(Frame::Line(line));
            }
            FrameMode::Command => {
                match literal_announcement(strip_eol(&self.frame[self.seg_start..])) {
                    None => {
                        let cmd = std::mem::take(&mut self.frame);
                        self.reset_frame();
                        self.ready.push_back(Frame::Command(cmd));
                    }
                    Some(lit) => self.announce(lit),
                }
            }
        }
    }

    /// Reports [`Frame::LineTooLong`] and drops the frame; `lf` is where the line ends in
    /// `input[pos..]`, when it does.
    fn line_too_long(&mut self, lf: Option<usize>) {
        let tag = match self.mode {
            FrameMode::Command => {
                let mut head: Vec<u8> = self.frame.iter().take(MAX_TAG_LEN + 1).copied().collect();
                let need = (MAX_TAG_LEN + 1).saturating_sub(head.len());
                head.extend(self.input[self.pos..].iter().take(need));
                tag_of(&head)
            }
            FrameMode::Line => None,
        };
        self.reset_frame();
        self.ready.push_back(Frame::LineTooLong { tag });
        match lf {
            Some(k) => {
                self.pos += k + 1;
                self.state = State::Line;
            }
            None => {
                self.pos = self.input.len();
                self.state = State::Discard;
            }
        }
    }

    fn announce(&mut self, lit: Announcement) {
        self.literals += 1;
        if self.literals == 1 {
            self.append = self.append_allowed && is_append(&self.frame);
        }
        let max_literal =
            if self.append { self.limits.max_append } else { self.limits.max_command };
        let too_many = self.literals > self.limits.max_literals;
        // At least a CRLF follows the literal.
        let total = (self.frame.len() as u64 + 2).saturating_add(lit.size);
        let too_big = lit.size > max_literal as u64 || total > self.frame_limit() as u64;
        if too_many || too_big {
            let tag = tag_of(&self.frame);
            let append = self.append;
            self.reset_frame();
            if !lit.synchronizing {
                // The client sends the octets anyway: they cannot be framed (RFC 7888 §4).
                self.ready.push_back(Frame::LiteralTooLarge {
                    tag,
                    size: lit.size,
                    synchronizing: false,
                });
                self.state = State::Closed;
                self.input = Vec::new();
                self.pos = 0;
            } else if append && !too_many {
                // An APPEND's message over the limit: NO [TOOBIG] (`spec/dmap.md` §6).
                self.ready.push_back(Frame::LiteralTooLarge {
                    tag,
                    size: lit.size,
                    synchronizing: true,
                });
            } else {
                // Any other command over its limit: BAD, resynced at the line end just read.
                self.ready.push_back(Frame::LineTooLong { tag });
            }
            return;
        }
        if lit.synchronizing {
            self.ready.push_back(Frame::ContinueLiteral);
        }
        // Within `frame_limit`, itself a usize: the conversion cannot fail.
        let remaining = usize::try_from(lit.size).unwrap_or(usize::MAX);
        if remaining == 0 {
            self.seg_start = self.frame.len();
        } else {
            self.state = State::Literal { remaining };
        }
    }
}

/// A line without its LF or CRLF.
pub(crate) fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Announcement {
    size: u64,
    synchronizing: bool,
}

/// The literal a line segment (without CRLF) announces at its end: `{n}`, `{n+}`, `~{n}`,
/// `~{n+}` (RFC 9051 `literal`, `literal8`; RFC 7888 LITERAL+). The size saturates.
fn literal_announcement(seg: &[u8]) -> Option<Announcement> {
    let body = seg.strip_suffix(b"}")?;
    let (body, synchronizing) = match body.strip_suffix(b"+") {
        Some(b) => (b, false),
        None => (body, true),
    };
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size =
        digits.iter().fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(d - b'0')));
    Some(Announcement { size, synchronizing })
}

/// Whether a command's first line names APPEND after its tag.
fn is_append(frame: &[u8]) -> bool {
    let Some(sp) = frame.iter().position(|&b| b == b' ') else {
        return false;
    };
    let rest = &frame[sp + 1..];
    rest.len() > 6 && rest[..6].eq_ignore_ascii_case(b"APPEND") && rest[6] == b' '
}

/// The tag at the start of a command, when it is a valid one.
pub(crate) fn tag_of(head: &[u8]) -> Option<Tag> {
    let end = head.iter().position(|&b| b == b' ')?;
    let tag = &head[..end];
    if tag.is_empty() || tag.len() > MAX_TAG_LEN || !tag.iter().all(|&b| is_tag_char(b)) {
        return None;
    }
    // Tag characters are ASCII.
    String::from_utf8(tag.to_vec()).ok().map(Tag)
}

/// ATOM-CHAR (RFC 9051 §9): CHAR other than atom-specials.
pub(crate) fn is_atom_char(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// ASTRING-CHAR (RFC 9051 §9): ATOM-CHAR or `]`.
pub(crate) fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// A tag character (RFC 9051 `tag`): ASTRING-CHAR other than `+`.
pub(crate) fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn debug_shows_no_input_octets() {
        let mut f = Framer::new(FrameLimits::default());
        f.handle_input(b"a LOGIN alice hunter2-secret");
        let shown = format!("{f:?}");
        // Neither as text nor as the octets' numbers ("hun" is 104, 117, 110).
        assert!(!shown.contains("hunter2") && !shown.contains("104, 117, 110"), "{shown}");
        f.handle_input(b"\r\n");
        assert!(matches!(f.poll_frame(), Some(Frame::Command(_))));
        assert!(!format!("{f:?}").contains("hunter2"));
    }

    fn small() -> FrameLimits {
        FrameLimits { max_line: 32, max_command: 64, max_append: 200, max_literals: 3 }
    }

    fn frames(f: &mut Framer, input: &[u8]) -> Vec<Frame> {
        f.handle_input(input);
        std::iter::from_fn(|| f.poll_frame()).collect()
    }

    fn cmd(b: &[u8]) -> Frame {
        Frame::Command(b.to_vec())
    }

    fn tag(t: &str) -> Option<Tag> {
        Some(Tag(t.into()))
    }

    #[test]
    fn splits_lines_crlf_and_bare_lf() {
        let mut f = Framer::new(FrameLimits::default());
        assert_eq!(
            frames(&mut f, b"a NOOP\r\nb NOOP\nc NO"),
            vec![cmd(b"a NOOP\r\n"), cmd(b"b NOOP\n")]
        );
        assert_eq!(frames(&mut f, b"OP\r"), vec![]);
        assert_eq!(frames(&mut f, b"\n"), vec![cmd(b"c NOOP\r\n")]);
    }

    /// RFC 9051 §7.5 (synchronizing), RFC 7888 (LITERAL+), RFC 3516 (literal8).
    #[test]
    fn literals_of_each_kind_rfc9051_4_3() {
        let mut f = Framer::new(FrameLimits::default());
        assert_eq!(frames(&mut f, b"a LOGIN {3}\r\n"), vec![Frame::ContinueLiteral]);
        assert_eq!(frames(&mut f, b"b\r\n {4+}\r\npw\n"), vec![]);
        assert_eq!(frames(&mut f, b"d\r\n"), vec![cmd(b"a LOGIN {3}\r\nb\r\n {4+}\r\npw\nd\r\n")]);
        let input = b"a APPEND x ~{3}\r\n\0\n\0\r\n";
        assert_eq!(frames(&mut f, input), vec![Frame::ContinueLiteral, cmd(input)]);
        assert_eq!(
            frames(&mut f, b"z X {0}\r\n\r\n"),
            vec![Frame::ContinueLiteral, cmd(b"z X {0}\r\n\r\n")]
        );
    }

    #[test]
    fn byte_at_a_time_gives_the_same_frames() {
        let input: &[u8] =
            b"a LOGIN {3+}\r\nb\r\n \"p\"\r\nb SELECT INBOX\nc APPEND x {2}\r\nhi\r\n";
        let mut whole = Framer::new(FrameLimits::default());
        let expect = frames(&mut whole, input);
        let mut f = Framer::new(FrameLimits::default());
        let mut got = Vec::new();
        for b in input {
            got.extend(frames(&mut f, &[*b]));
        }
        assert_eq!(got, expect);
        assert_eq!(expect.len(), 4);
    }

    /// `spec/dmap.md` §6: MAX_LINE_LEN at the limit and one past; resync after the CRLF.
    #[test]
    fn line_limit_at_and_past() {
        for split in [false, true] {
            let mut f = Framer::new(small());
            let at = format!("t1 {}\r\n", "x".repeat(32 - 3));
            let past = format!("t2 {}\r\n", "x".repeat(32 - 2));
            let mut input = at.clone().into_bytes();
            input.extend_from_slice(past.as_bytes());
            input.extend_from_slice(b"t3 NOOP\r\n");
            let got = if split {
                input.iter().flat_map(|b| frames(&mut f, &[*b])).collect()
            } else {
                frames(&mut f, &input)
            };
            assert_eq!(
                got,
                vec![
                    cmd(at.as_bytes()),
                    Frame::LineTooLong { tag: tag("t2") },
                    cmd(b"t3 NOOP\r\n")
                ],
                "split {split}"
            );
        }
    }

    #[test]
    fn huge_line_is_discarded_without_buffering() {
        let mut f = Framer::new(FrameLimits::default());
        assert_eq!(frames(&mut f, b"t1 "), vec![]);
        let chunk = vec![b'x'; 100_000];
        assert_eq!(frames(&mut f, &chunk), vec![Frame::LineTooLong { tag: tag("t1") }]);
        for _ in 0..10 {
            f.handle_input(&chunk);
            assert!(f.input.len() <= chunk.len() && f.frame.is_empty());
        }
        assert_eq!(frames(&mut f, b"\r\nt2 NOOP\r\n"), vec![cmd(b"t2 NOOP\r\n")]);
        let mut f = Framer::new(FrameLimits::default());
        assert_eq!(frames(&mut f, &chunk), vec![Frame::LineTooLong { tag: None }]);
    }

    /// `spec/dmap.md` §6: MAX_COMMAND_LEN for a whole command, at the limit and one past.
    #[test]
    fn command_literal_limit_at_and_past() {
        // "t LOGIN {n}\r\n" is 14 octets for 10 <= n < 100, then n octets, then "\r\n".
        let mut f = Framer::new(small());
        let at = 64 - 14 - 2;
        let got = frames(&mut f, format!("t LOGIN {{{at}}}\r\n").as_bytes());
        assert_eq!(got, vec![Frame::ContinueLiteral]);
        let body = format!("{}\r\n", "p".repeat(at));
        assert!(
            matches!(&frames(&mut f, body.as_bytes())[..], [Frame::Command(c)] if c.len() == 64)
        );
        let mut f = Framer::new(small());
        let got = frames(&mut f, format!("t LOGIN {{{}}}\r\nu NOOP\r\n", at + 1).as_bytes());
        assert_eq!(got, vec![Frame::LineTooLong { tag: tag("t") }, cmd(b"u NOOP\r\n")]);
    }

    /// RFC 7888 §4: a non-synchronizing literal over the limit is fatal.
    #[test]
    fn non_synchronizing_too_large_closes() {
        let mut f = Framer::new(FrameLimits::default());
        let got = frames(&mut f, b"t LOGIN {99999999999999999999+}\r\nxxxx\r\nu NOOP\r\n");
        assert_eq!(
            got,
            vec![Frame::LiteralTooLarge { tag: tag("t"), size: u64::MAX, synchronizing: false }]
        );
        assert!(f.is_closed());
        assert_eq!(frames(&mut f, b"v NOOP\r\n"), vec![]);
    }

    #[test]
    fn enormous_announcements_are_refused_without_allocation() {
        for (lit, size) in
            [("{4294967295}", 4_294_967_295u64), ("~{99999999999999999999}", u64::MAX)]
        {
            let mut f = Framer::new(FrameLimits::default());
            let got = frames(&mut f, format!("t APPEND x {lit}\r\n").as_bytes());
            assert_eq!(
                got,
                vec![Frame::LiteralTooLarge { tag: tag("t"), size, synchronizing: true }]
            );
            assert!(f.frame.capacity() < 1024);
        }
    }

    /// `spec/dmap.md` §6: only an APPEND's literal may reach the APPEND limit.
    #[test]
    fn append_limit_at_and_past() {
        let mut f = Framer::new(small());
        let got = frames(&mut f, b"t APPEND x {200}\r\n");
        assert_eq!(got, vec![Frame::ContinueLiteral]);
        let mut body = vec![b'm'; 200];
        body.extend_from_slice(b"\r\n");
        let got = frames(&mut f, &body);
        assert!(matches!(&got[..], [Frame::Command(c)] if c.len() == 18 + 202));
        let got = frames(&mut f, b"t append x {201}\r\n");
        assert_eq!(
            got,
            vec![Frame::LiteralTooLarge { tag: tag("t"), size: 201, synchronizing: true }]
        );
        // Not an APPEND: the command limit applies.
        let got = frames(&mut f, b"t APPENDX x {200}\r\n");
        assert_eq!(got, vec![Frame::LineTooLong { tag: tag("t") }]);
    }

    /// `spec/dmap.md` §6: MAX_LITERALS_PER_COMMAND at the limit and one past.
    #[test]
    fn literal_count_at_and_past() {
        let mut f = Framer::new(small());
        let got = frames(&mut f, b"t X {1+}\r\na {1+}\r\nb {1+}\r\nc\r\n");
        assert_eq!(got, vec![cmd(b"t X {1+}\r\na {1+}\r\nb {1+}\r\nc\r\n")]);
        let got = frames(&mut f, b"t X {1}\r\na {1}\r\nb {1}\r\nc {1}\r\n");
        assert_eq!(
            got,
            vec![
                Frame::ContinueLiteral,
                Frame::ContinueLiteral,
                Frame::ContinueLiteral,
                Frame::LineTooLong { tag: tag("t") }
            ]
        );
        let got = frames(&mut f, b"t X {1+}\r\na {1+}\r\nb {1+}\r\nc {1+}\r\nd\r\n");
        assert_eq!(
            got,
            vec![Frame::LiteralTooLarge { tag: tag("t"), size: 1, synchronizing: false }]
        );
        assert!(f.is_closed());
    }

    /// `spec/dmap.md` §6: before a login an APPEND is held to the command limit.
    #[test]
    fn append_not_allowed_is_any_command() {
        let mut f = Framer::new(small());
        f.set_append_allowed(false);
        assert_eq!(
            frames(&mut f, b"t APPEND x {65}\r\n"),
            vec![Frame::LineTooLong { tag: tag("t") }]
        );
        assert_eq!(frames(&mut f, b"t APPEND x {40}\r\n"), vec![Frame::ContinueLiteral]);
        f.handle_input(&[b'x'; 40]);
        assert_eq!(frames(&mut f, b"\r\n").len(), 1);
        f.set_append_allowed(true);
        assert_eq!(frames(&mut f, b"t APPEND x {200}\r\n"), vec![Frame::ContinueLiteral]);
    }

    /// What a command in progress has announced, for the driver's command deadline.
    #[test]
    fn partial_counts_the_announced_octets() {
        let mut f = Framer::new(small());
        assert_eq!(f.partial(), None);
        assert!(frames(&mut f, b"t NO").is_empty());
        assert_eq!(f.partial(), Some((0, 4)));
        // The next command, begun in the same input: another number.
        assert_eq!(frames(&mut f, b"OP\r\nu NO"), vec![cmd(b"t NOOP\r\n")]);
        assert_eq!(f.partial(), Some((1, 4)));
        assert_eq!(frames(&mut f, b"OP\r\n"), vec![cmd(b"u NOOP\r\n")]);
        assert_eq!(f.partial(), None);
        assert_eq!(frames(&mut f, b"t APPEND x {100}\r\nabc"), vec![Frame::ContinueLiteral]);
        assert_eq!(f.partial(), Some((2, 18 + 100)));
        // A line too long is dropped up to its end: still a command in progress.
        let mut f = Framer::new(small());
        assert_eq!(frames(&mut f, &[b'x'; 40]), vec![Frame::LineTooLong { tag: None }]);
        assert_eq!(f.partial(), Some((1, 0)));
        assert!(frames(&mut f, b"x\r\n").is_empty());
        assert_eq!(f.partial(), None);
    }

    /// RFC 9051 §6.2.2 and RFC 2177: line mode reads one line, no literals.
    #[test]
    fn line_mode_for_authenticate_and_idle() {
        let mut f = Framer::new(small());
        f.handle_input(b"a AUTHENTICATE PLAIN\r\ndGVzdA== {3}\r\nb NOOP\r\n");
        assert_eq!(f.poll_frame(), Some(cmd(b"a AUTHENTICATE PLAIN\r\n")));
        f.set_mode(FrameMode::Line);
        assert_eq!(f.poll_frame(), Some(Frame::Line(b"dGVzdA== {3}".to_vec())));
        f.set_mode(FrameMode::Command);
        assert_eq!(f.poll_frame(), Some(cmd(b"b NOOP\r\n")));
        f.set_mode(FrameMode::Line);
        let long = format!("{}\r\nDONE\r\n", "x".repeat(33));
        assert_eq!(
            frames(&mut f, long.as_bytes()),
            vec![Frame::LineTooLong { tag: None }, Frame::Line(b"DONE".to_vec())]
        );
    }

    proptest! {
        #[test]
        fn no_input_panics_or_exceeds_limits(
            chunks in proptest::collection::vec(proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'{'), Just(b'}'), Just(b'+'), Just(b'1'), Just(b' '), any::<u8>()],
                0..80), 0..8),
            line_mode in any::<bool>(),
        ) {
            let limits = small();
            let mut f = Framer::new(limits);
            if line_mode {
                f.set_mode(FrameMode::Line);
            }
            for c in &chunks {
                f.handle_input(c);
                prop_assert!(f.frame.len() <= limits.max_append + limits.max_command + 2);
                while let Some(fr) = f.poll_frame() {
                    match fr {
                        Frame::Command(c) => prop_assert!(c.len() <= limits.max_append + limits.max_command + 2),
                        Frame::Line(l) => prop_assert!(l.len() <= limits.max_line),
                        _ => {}
                    }
                }
            }
        }
    }
}
