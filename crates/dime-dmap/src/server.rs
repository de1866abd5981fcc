//! The server side of one DMAP/IMAP connection, sans-IO (`spec/dmap.md` §2, §4): framing,
//! parsing, the connection's state (RFC 9051 §3), what each state allows, the capabilities it
//! advertises, STARTTLS, the AUTHENTICATE PLAIN exchange, ENABLE, ID, IDLE's continuation and
//! `DONE`, LOGOUT, and the answers to bad input. Everything that needs the mail service (a
//! login, a mailbox, a message) comes out as an [`Event`] for the driver, which answers it
//! through [`Server::output`] and [`Server::tagged`].
//!
//! # Polling order
//! 1. Write out [`Server::take_output`] (the greeting first).
//! 2. Take each [`Server::poll_event`] and carry it out; the next command is parsed only after
//!    the driver answered the previous one with [`Server::tagged`] (commands run one at a
//!    time, in order).
//! 3. When no event is left and [`Server::is_closed`] is false, read more input and give it to
//!    [`Server::handle_input`].
//!
//! After [`Event::StartTls`] the driver writes the output, performs the TLS handshake and calls
//! [`Server::tls_started`]; input buffered before the handshake is discarded (a plaintext
//! prefix must not be read as sent under TLS).

use crate::command::{Command, Secret, Tag, TaggedCommand};
use crate::frame::{Frame, FrameLimits, FrameMode, Framer};
use crate::limits::MAX_BAD_COMMANDS;
use crate::parse::{SaslResponse, is_idle_done, parse_command, parse_sasl_response};
use std::collections::VecDeque;
use zeroize::Zeroizing;

/// The connection's state (RFC 9051 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Before a login.
    NotAuthenticated,
    /// Logged in, no mailbox selected.
    Authenticated,
    /// A mailbox selected.
    Selected,
    /// LOGOUT said, or the connection is being closed.
    Logout,
}

/// Extensions the client turned on with ENABLE (RFC 5161).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(clippy::struct_excessive_bools)]
pub struct Enabled {
    /// IMAP4rev2 (RFC 9051).
    pub rev2: bool,
    /// CONDSTORE (RFC 7162), also turned on by any CONDSTORE-aware command.
    pub condstore: bool,
    /// QRESYNC (RFC 7162).
    pub qresync: bool,
    /// UTF8=ACCEPT (RFC 6855): mailbox names in UTF-8.
    pub utf8: bool,
}

impl Enabled {
    /// Whether mailbox names travel as UTF-8 (IMAP4rev2 or UTF8=ACCEPT), else modified UTF-7.
    pub fn utf8_names(&self) -> bool {
        self.rev2 || self.utf8
    }
}

/// A tagged response's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// OK.
    Ok,
    /// NO.
    No,
    /// BAD.
    Bad,
}

/// What the driver must do.
#[derive(Debug)]
pub enum Event {
    /// Check a password (LOGIN, or AUTHENTICATE PLAIN): then answer with [`Server::tagged`]
    /// and, on success, [`Server::set_state`] to [`State::Authenticated`].
    Login {
        /// The tag to answer.
        tag: Tag,
        /// The user name as sent.
        username: String,
        /// The password.
        password: Secret,
    },
    /// A command for the mail service, already checked against the state (RFC 9051 §6).
    Command(TaggedCommand),
    /// IDLE's `DONE` arrived: send what is still owed, then answer the IDLE tag.
    IdleDone {
        /// The IDLE command's tag.
        tag: Tag,
    },
    /// STARTTLS was accepted: write the output, run the handshake, call
    /// [`Server::tls_started`].
    StartTls,
    /// Write the output, then close the connection.
    Close,
}

/// The configuration of one connection.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Whether the connection is under TLS already (implicit TLS, port 993).
    pub tls: bool,
    /// Whether STARTTLS may be offered (a TLS configuration exists).
    pub starttls: bool,
    /// Largest APPEND message, octets (APPENDLIMIT, RFC 7889).
    pub append_limit: u64,
    /// The framing limits.
    pub frame: FrameLimits,
}

#[derive(Debug)]
enum Waiting {
    /// Ready for the next command.
    Command,
    /// The driver carries out a command (or a login).
    Driver,
    /// AUTHENTICATE PLAIN waits for the client's response line.
    Sasl(Tag),
    /// IDLE waits for `DONE`.
    Idle(Tag),
}

/// One connection's protocol state.
#[derive(Debug)]
pub struct Server {
    framer: Framer,
    state: State,
    config: ServerConfig,
    enabled: Enabled,
    waiting: Waiting,
    out: Vec<u8>,
    events: VecDeque<Event>,
    closed: bool,
    /// BAD answers in a row ([`MAX_BAD_COMMANDS`]).
    bad_in_a_row: usize,
}

/// The server's name in the greeting and ID.
const SERVER_NAME: &str = "dime";

impl Server {
    /// A new connection: the greeting is queued.
    pub fn new(config: ServerConfig) -> Server {
        let mut s = Server {
            framer: Framer::new(config.frame),
            state: State::NotAuthenticated,
            config,
            enabled: Enabled::default(),
            waiting: Waiting::Command,
            out: Vec::new(),
            events: VecDeque::new(),
            closed: false,
            bad_in_a_row: 0,
        };
        // Before a login an APPEND is framed like any command (`spec/dmap.md` §6).
        s.framer.set_append_allowed(false);
        let caps = s.capabilities();
        s.out.extend_from_slice(
            format!("* OK [CAPABILITY {caps}] {SERVER_NAME} ready\r\n").as_bytes(),
        );
        s
    }

    /// The capabilities for the current state (RFC 9051 §7.2.2).
    pub fn capabilities(&self) -> String {
        let mut c = vec!["IMAP4rev1", "IMAP4rev2"];
        let tls = self.config.tls;
        if self.state == State::NotAuthenticated {
            if !tls && self.config.starttls {
                c.push("STARTTLS");
            }
            if tls {
                c.push("AUTH=PLAIN");
            } else {
                c.push("LOGINDISABLED");
            }
            c.extend(["SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE"]);
            return c.join(" ");
        }
        c.extend([
            "LITERAL+",
            "ENABLE",
            "IDLE",
            "ID",
            "NAMESPACE",
            "UNSELECT",
            "UIDPLUS",
            "MOVE",
            "CHILDREN",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "SPECIAL-USE",
            "CREATE-SPECIAL-USE",
            "STATUS=SIZE",
            "ESEARCH",
            "SEARCHRES",
            "CONDSTORE",
            "QRESYNC",
            "BINARY",
            "UTF8=ACCEPT",
        ]);
        let mut s = c.join(" ");
        s.push_str(&format!(" APPENDLIMIT={}", self.config.append_limit));
        s
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// What the client enabled.
    pub fn enabled(&self) -> Enabled {
        self.enabled
    }

    /// Turns CONDSTORE on (RFC 7162 §3.1: the first CONDSTORE-aware command does).
    pub fn enable_condstore(&mut self) {
        self.enabled.condstore = true;
    }

    /// Whether the connection is under TLS.
    pub fn tls(&self) -> bool {
        self.config.tls
    }

    /// Sets the state after a command the driver carried out (a login, SELECT, CLOSE...).
    pub fn set_state(&mut self, state: State) {
        self.state = state;
        self.framer.set_append_allowed(matches!(state, State::Authenticated | State::Selected));
    }

    /// When a command (or a line) has begun to arrive and is not whole yet: its number and
    /// the octets it announced so far, literals included ([`Framer::partial`]); the driver
    /// bounds the time it may take (`spec/dmap.md` §6).
    pub fn partial_command(&self) -> Option<(u64, u64)> {
        self.framer.partial()
    }

    /// Whether the connection is to be closed once the output is written.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether the connection is in IDLE (the driver then sends updates as they come).
    pub fn idling(&self) -> bool {
        matches!(self.waiting, Waiting::Idle(_))
    }

    /// The output buffer, for the driver's untagged responses.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Takes what is to be written.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Octets waiting to be written.
    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    /// Gives input read from the connection.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if !self.closed {
            self.framer.handle_input(bytes);
        }
    }

    /// The TLS handshake after STARTTLS succeeded.
    pub fn tls_started(&mut self) {
        self.config.tls = true;
        self.waiting = Waiting::Command;
        self.framer = Framer::new(self.config.frame);
        self.framer.set_append_allowed(false);
    }

    /// Answers the command `tag` (the driver's, after [`Event::Command`] or [`Event::Login`]);
    /// the next command may then be parsed.
    pub fn tagged(&mut self, tag: &Tag, status: Status, code: Option<&str>, text: &str) {
        let s = match status {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        };
        self.out.extend_from_slice(tag.0.as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(s.as_bytes());
        self.out.push(b' ');
        if let Some(c) = code {
            self.out.push(b'[');
            self.out.extend_from_slice(c.as_bytes());
            self.out.extend_from_slice(b"] ");
        }
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        if matches!(self.waiting, Waiting::Driver | Waiting::Idle(_)) {
            self.waiting = Waiting::Command;
            self.framer.set_mode(FrameMode::Command);
        }
        self.count_answer(status == Status::Bad);
    }

    /// Counts BAD answers in a row; at [`MAX_BAD_COMMANDS`] the connection is closed with
    /// `* BYE` (`spec/dmap.md` §6). Any other tagged answer starts the count again.
    fn count_answer(&mut self, bad: bool) {
        if !bad {
            self.bad_in_a_row = 0;
            return;
        }
        self.bad_in_a_row += 1;
        if self.bad_in_a_row >= MAX_BAD_COMMANDS {
            self.bye("too many bad commands");
        }
    }

    /// Closes with an untagged BYE (a server shutdown, an expired session).
    pub fn bye(&mut self, text: &str) {
        self.out.extend_from_slice(format!("* BYE {text}\r\n").as_bytes());
        self.close();
    }

    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.state = State::Logout;
            self.events.push_back(Event::Close);
        }
    }

    /// The next thing for the driver to do.
    pub fn poll_event(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            if self.closed || matches!(self.waiting, Waiting::Driver) {
                return None;
            }
            let frame = self.framer.poll_frame()?;
            self.handle_frame(frame);
        }
    }

    fn untagged_bad(&mut self, tag: Option<&Tag>, text: &str) {
        match tag {
            Some(t) => {
                self.out.extend_from_slice(format!("{} BAD {text}\r\n", t.0).as_bytes());
            }
            None => self.out.extend_from_slice(format!("* BAD {text}\r\n").as_bytes()),
        }
        self.count_answer(true);
    }

    fn handle_frame(&mut self, frame: Frame) {
        match frame {
            Frame::ContinueLiteral => self.out.extend_from_slice(b"+ Ready for literal data\r\n"),
            Frame::LineTooLong { tag } => {
                self.untagged_bad(tag.as_ref(), "line too long");
            }
            Frame::LiteralTooLarge { tag, synchronizing: true, .. } => match tag {
                Some(t) => self.tagged_now(&t, "NO [TOOBIG] literal too large"),
                None => self.untagged_bad(None, "literal too large"),
            },
            Frame::LiteralTooLarge { synchronizing: false, .. } => {
                self.bye("non-synchronizing literal too large");
            }
            Frame::Line(line) => {
                // A SASL response carries a password.
                let line = Zeroizing::new(line);
                self.handle_line(&line);
            }
            Frame::Command(bytes) => {
                let bytes = Zeroizing::new(bytes);
                match parse_command(&bytes) {
                    Ok(c) => self.handle_command(c),
                    Err(e) => self.untagged_bad(e.tag.as_ref(), &e.to_string()),
                }
            }
        }
    }

    fn tagged_now(&mut self, tag: &Tag, rest: &str) {
        self.out.extend_from_slice(format!("{} {rest}\r\n", tag.0).as_bytes());
        self.count_answer(rest.starts_with("BAD"));
    }

    fn handle_line(&mut self, line: &[u8]) {
        match std::mem::replace(&mut self.waiting, Waiting::Command) {
            Waiting::Sasl(tag) => {
                self.framer.set_mode(FrameMode::Command);
                match parse_sasl_response(line) {
                    Ok(SaslResponse::Cancel) => {
                        self.tagged_now(&tag, "BAD authentication cancelled");
                    }
                    Ok(SaslResponse::Data(d)) => self.plain(tag, &d.0),
                    Err(_) => self.tagged_now(&tag, "BAD invalid base64 in the response"),
                }
            }
            Waiting::Idle(tag) => {
                if is_idle_done(line) {
                    self.waiting = Waiting::Driver;
                    self.events.push_back(Event::IdleDone { tag });
                } else {
                    self.waiting = Waiting::Idle(tag);
                    self.out.extend_from_slice(b"* BAD expected DONE\r\n");
                    self.count_answer(true);
                }
            }
            w => {
                self.waiting = w;
                self.untagged_bad(None, "unexpected line");
            }
        }
    }

    /// SASL PLAIN (RFC 4616): `authzid NUL authcid NUL password`; an authzid other than
    /// empty or the authcid itself is refused (no proxy logins).
    fn plain(&mut self, tag: Tag, data: &[u8]) {
        let mut parts = data.split(|&b| b == 0);
        let (Some(authz), Some(authc), Some(pass), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            self.tagged_now(&tag, "BAD malformed PLAIN response");
            return;
        };
        let (Ok(authz), Ok(authc)) = (std::str::from_utf8(authz), std::str::from_utf8(authc))
        else {
            self.tagged_now(&tag, "BAD malformed PLAIN response");
            return;
        };
        if !authz.is_empty() && authz != authc {
            self.tagged_now(&tag, "NO [AUTHORIZATIONFAILED] no proxy login");
            return;
        }
        self.waiting = Waiting::Driver;
        self.events.push_back(Event::Login {
            tag,
            username: authc.to_owned(),
            password: Secret(Zeroizing::new(pass.to_vec())),
        });
    }

    fn handle_command(&mut self, c: TaggedCommand) {
        let TaggedCommand { tag, command } = c;
        let state = self.state;
        let authed = matches!(state, State::Authenticated | State::Selected);
        match command {
            Command::Capability => {
                let caps = self.capabilities();
                self.out.extend_from_slice(format!("* CAPABILITY {caps}\r\n").as_bytes());
                self.tagged_now(&tag, "OK CAPABILITY completed");
            }
            Command::Logout => {
                self.out.extend_from_slice(b"* BYE logging out\r\n");
                self.tagged_now(&tag, "OK LOGOUT completed");
                self.close();
            }
            Command::Noop if !authed => self.tagged_now(&tag, "OK NOOP completed"),
            Command::Id(_) => {
                self.out.extend_from_slice(
                    format!("* ID (\"name\" \"{SERVER_NAME}\" \"vendor\" \"dime\")\r\n").as_bytes(),
                );
                self.tagged_now(&tag, "OK ID completed");
            }
            Command::StartTls => {
                if state != State::NotAuthenticated || self.config.tls || !self.config.starttls {
                    self.tagged_now(&tag, "BAD STARTTLS not available");
                } else {
                    self.tagged_now(&tag, "OK begin TLS negotiation now");
                    // Nothing more is parsed until the handshake: what follows in the buffer
                    // was sent in plaintext and is dropped by `tls_started`.
                    self.waiting = Waiting::Driver;
                    self.events.push_back(Event::StartTls);
                }
            }
            Command::Login { username, password } => {
                if state != State::NotAuthenticated {
                    self.tagged_now(&tag, "BAD already logged in");
                } else if !self.config.tls {
                    self.tagged_now(&tag, "NO [PRIVACYREQUIRED] LOGIN is disabled before TLS");
                } else {
                    self.waiting = Waiting::Driver;
                    self.events.push_back(Event::Login { tag, username, password });
                }
            }
            Command::Authenticate { mechanism, initial } => {
                if state != State::NotAuthenticated {
                    self.tagged_now(&tag, "BAD already logged in");
                } else if mechanism != "PLAIN" {
                    self.tagged_now(&tag, "NO unsupported authentication mechanism");
                } else if !self.config.tls {
                    self.tagged_now(
                        &tag,
                        "NO [PRIVACYREQUIRED] authentication is disabled before TLS",
                    );
                } else {
                    match initial {
                        Some(d) => self.plain(tag, &d.0),
                        None => {
                            self.out.extend_from_slice(b"+ \r\n");
                            self.framer.set_mode(FrameMode::Line);
                            self.waiting = Waiting::Sasl(tag);
                        }
                    }
                }
            }
            Command::Enable(caps) => {
                if !authed {
                    self.tagged_now(&tag, "BAD ENABLE needs a login");
                    return;
                }
                let mut done = Vec::new();
                for c in caps {
                    let c = c.to_ascii_uppercase();
                    let flag = match c.as_str() {
                        "IMAP4REV2" => &mut self.enabled.rev2,
                        "CONDSTORE" => &mut self.enabled.condstore,
                        "QRESYNC" => {
                            self.enabled.condstore = true;
                            &mut self.enabled.qresync
                        }
                        "UTF8=ACCEPT" => &mut self.enabled.utf8,
                        _ => continue,
                    };
                    if !*flag {
                        *flag = true;
                        done.push(c);
                    }
                }
                if done.is_empty() {
                    self.out.extend_from_slice(b"* ENABLED\r\n");
                } else {
                    self.out
                        .extend_from_slice(format!("* ENABLED {}\r\n", done.join(" ")).as_bytes());
                }
                self.tagged_now(&tag, "OK ENABLE completed");
            }
            command => {
                if !authed {
                    self.tagged_now(&tag, "BAD command needs a login");
                    return;
                }
                if needs_selected(&command) && state != State::Selected {
                    self.tagged_now(&tag, "BAD no mailbox selected");
                    return;
                }
                if matches!(command, Command::Idle) {
                    self.out.extend_from_slice(b"+ idling\r\n");
                    self.framer.set_mode(FrameMode::Line);
                    self.waiting = Waiting::Idle(tag.clone());
                } else {
                    self.waiting = Waiting::Driver;
                }
                self.events.push_back(Event::Command(TaggedCommand { tag, command }));
            }
        }
    }
}

/// Whether a command needs the selected state (RFC 9051 §6.4).
fn needs_selected(c: &Command) -> bool {
    matches!(
        c,
        Command::Check
            | Command::Close
            | Command::Unselect
            | Command::Expunge
            | Command::UidExpunge(_)
            | Command::Search(_)
            | Command::Fetch(_)
            | Command::Store(_)
            | Command::Copy { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(tls: bool) -> Server {
        Server::new(ServerConfig {
            tls,
            starttls: true,
            append_limit: 1024,
            frame: FrameLimits::default(),
        })
    }

    fn out(s: &mut Server) -> String {
        String::from_utf8(s.take_output()).unwrap()
    }

    fn events(s: &mut Server) -> Vec<Event> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    #[test]
    fn greeting_and_capabilities_before_tls_disable_logins() {
        let mut s = server(false);
        let g = out(&mut s);
        assert!(
            g.starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 STARTTLS LOGINDISABLED"),
            "{g}"
        );
        assert!(!g.contains("AUTH="), "{g}");
        s.handle_input(b"a LOGIN alice secret\r\nb AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n");
        assert!(events(&mut s).is_empty());
        let o = out(&mut s);
        assert!(o.contains("a NO [PRIVACYREQUIRED]"), "{o}");
        assert!(o.contains("b NO [PRIVACYREQUIRED]"), "{o}");
        assert!(!o.contains("secret"), "{o}");
    }

    #[test]
    fn input_pipelined_behind_starttls_is_discarded() {
        let mut s = server(false);
        out(&mut s);
        // RFC 9051 §11.1 / CVE-2011-0411: a command sent with STARTTLS in one packet is not run
        // after the handshake.
        s.handle_input(b"a STARTTLS\r\nb LOGIN alice secret\r\n");
        let e = events(&mut s);
        assert!(matches!(e.as_slice(), [Event::StartTls]), "{e:?}");
        let o = out(&mut s);
        assert!(o.contains("a OK") && !o.contains("b "), "nothing answered to b: {o}");
        s.tls_started();
        assert!(events(&mut s).is_empty());
        s.handle_input(b"c CAPABILITY\r\n");
        assert!(events(&mut s).is_empty());
        let o = out(&mut s);
        assert!(o.contains("AUTH=PLAIN") && !o.contains("STARTTLS") && o.contains("c OK"), "{o}");
    }

    #[test]
    fn authenticate_plain_with_a_continuation_and_with_sasl_ir() {
        let mut s = server(true);
        out(&mut s);
        s.handle_input(b"a AUTHENTICATE PLAIN\r\n");
        assert!(events(&mut s).is_empty());
        assert_eq!(out(&mut s), "+ \r\n");
        s.handle_input(b"AGFsaWNlAHNlY3JldA==\r\n");
        let e = events(&mut s);
        match e.as_slice() {
            [Event::Login { tag, username, password }] => {
                assert_eq!((tag.0.as_str(), username.as_str()), ("a", "alice"));
                assert_eq!(&password.0[..], b"secret");
            }
            e => panic!("{e:?}"),
        }
        // The next command waits for the driver's answer.
        s.handle_input(b"b NOOP\r\n");
        assert!(events(&mut s).is_empty());
        s.tagged(&Tag("a".into()), Status::Ok, None, "logged in");
        s.set_state(State::Authenticated);
        let e = events(&mut s);
        assert!(matches!(e.as_slice(), [Event::Command(c)] if c.command == Command::Noop), "{e:?}");
        // A proxy login and a cancelled exchange.
        let mut s = server(true);
        s.handle_input(
            b"c AUTHENTICATE PLAIN Ym9iAGFsaWNlAHNlY3JldA==\r\nd AUTHENTICATE PLAIN\r\n*\r\n",
        );
        assert!(events(&mut s).is_empty());
        let o = out(&mut s);
        assert!(o.contains("c NO [AUTHORIZATIONFAILED]") && o.contains("d BAD"), "{o}");
    }

    #[test]
    fn commands_are_checked_against_the_state() {
        let mut s = server(true);
        out(&mut s);
        s.handle_input(b"a SELECT INBOX\r\nb FETCH 1 FLAGS\r\nc ENABLE IMAP4rev2\r\n");
        assert!(events(&mut s).is_empty());
        let o = out(&mut s);
        assert!(o.contains("a BAD") && o.contains("b BAD") && o.contains("c BAD"), "{o}");
        s.set_state(State::Authenticated);
        // CHECK is of the selected state (RFC 3501 §6.4.1), as Dovecot answers.
        s.handle_input(b"f CHECK\r\n");
        assert!(events(&mut s).is_empty());
        assert!(out(&mut s).contains("f BAD"));
        s.handle_input(b"d FETCH 1 FLAGS\r\ne ENABLE IMAP4rev2 QRESYNC\r\n");
        assert!(events(&mut s).is_empty());
        let o = out(&mut s);
        assert!(o.contains("d BAD [") || o.contains("d BAD no mailbox selected"), "{o}");
        assert!(o.contains("* ENABLED IMAP4REV2 QRESYNC"), "{o}");
        let en = s.enabled();
        assert!(en.rev2 && en.qresync && en.condstore && en.utf8_names());
    }

    #[test]
    fn idle_waits_for_done_then_the_driver_answers() {
        let mut s = server(true);
        s.set_state(State::Authenticated);
        out(&mut s);
        s.handle_input(b"a IDLE\r\n");
        let e = events(&mut s);
        assert!(matches!(e.as_slice(), [Event::Command(c)] if c.command == Command::Idle), "{e:?}");
        assert!(s.idling());
        assert_eq!(out(&mut s), "+ idling\r\n");
        s.handle_input(b"NOOP\r\n");
        assert!(events(&mut s).is_empty());
        assert!(out(&mut s).contains("* BAD expected DONE"));
        s.handle_input(b"done\r\n");
        let e = events(&mut s);
        assert!(matches!(e.as_slice(), [Event::IdleDone { tag }] if tag.0 == "a"), "{e:?}");
        s.tagged(&Tag("a".into()), Status::Ok, None, "IDLE terminated");
        assert!(!s.idling());
    }

    #[test]
    fn bad_input_is_answered_without_echoing_it() {
        let mut s = server(true);
        out(&mut s);
        s.handle_input(b"GET /<script> HTTP/1.1\r\n\x01\x02\xff\r\nt1 FROB <evil>\r\n");
        assert!(events(&mut s).is_empty());
        let o = out(&mut s);
        assert!(o.contains("* BAD") || o.contains("GET BAD"), "{o}");
        assert!(!o.contains("<script>") && !o.contains("<evil>"), "{o}");
        assert!(o.contains("t1 BAD"), "{o}");
    }

    #[test]
    fn logout_says_bye_and_closes() {
        let mut s = server(true);
        out(&mut s);
        s.handle_input(b"z LOGOUT\r\nq NOOP\r\n");
        let e = events(&mut s);
        assert!(matches!(e.as_slice(), [Event::Close]), "{e:?}");
        assert!(s.is_closed());
        let o = out(&mut s);
        assert!(o.contains("* BYE") && o.contains("z OK") && !o.contains("q OK"), "{o}");
    }
}
