//! The server side of one DMTP stream (`spec/dmtp.md` §7.1).

use crate::budget::{BODY_BUDGET, BodyBudget, Reservation};
use crate::frame::{Split, decode_payload, encode_frame, split_frame};
use crate::limits::{
    BODY_GRACE, HANDSHAKE_TIMEOUT, IDLE_TIMEOUT, MAX_ERRORS, MAX_FRAME_SIZE, MAX_HISTORY_SIGNETS,
    MAX_LOOKUPS, MAX_MESSAGE_SIZE, MAX_RECIPIENTS, MAX_TRANSACTIONS, MIN_BODY_RATE, VERSION,
};
use crate::reply::{ProtocolError, Refusal, ReplyCode};
use crate::types::{
    Mode, SignetName, TransactionId, VerifyAnswer, parse_domain, parse_fingerprint,
};
use dime_core::crypto::{CryptoProvider, Hashed, HashingBuffer};
use dime_core::{Domain, Fingerprint};
use dime_wire::dmtp::{self, ClientFrame, client_frame::Command, reply::Detail};
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// A server's limits and identity (`spec/dmtp.md` §8). [`ServerConfig::new`] uses the named
/// limits of [`crate::limits`]; a server may lower them (tests do).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The server's domain, sent in the greeting.
    pub domain: Domain,
    /// Largest DATA body accepted.
    pub max_message_size: u64,
    /// Transactions per stream.
    pub max_transactions: u32,
    /// Signet lookups per stream.
    pub max_lookups: u32,
    /// Time from the stream's start to a complete HELLO.
    pub handshake_timeout: Duration,
    /// Longest wait for the client's next frame.
    pub idle_timeout: Duration,
    /// Octets of bodies held at once, shared with every clone of this configuration.
    pub body_budget: BodyBudget,
    /// Slowest average rate of a body, octets per second (0: no minimum).
    pub min_body_rate: u64,
    /// The stream's peer, when the driver knows it: its bodies count against its source's
    /// share of [`ServerConfig::body_budget`].
    pub peer: Option<std::net::IpAddr>,
}

impl ServerConfig {
    /// The defaults of `spec/dmtp.md` §8 for `domain`.
    pub fn new(domain: Domain) -> ServerConfig {
        ServerConfig {
            domain,
            max_message_size: MAX_MESSAGE_SIZE,
            max_transactions: MAX_TRANSACTIONS,
            max_lookups: MAX_LOOKUPS,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            body_budget: BodyBudget::new(BODY_BUDGET),
            min_body_rate: MIN_BODY_RATE,
            peer: None,
        }
    }
}

/// What the server machine asks of its driver, or tells it (`spec/dmtp.md` §7.1). Every
/// `Need*` event is answered by exactly one decision call before the machine reads on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// MAIL: authenticate `origin`'s organisational signet as `fingerprint` (through the
    /// resolver). Answer [`Server::accept_mail`] or [`Server::reject_mail`].
    NeedVerifyOrigin {
        /// The origin domain.
        origin: Domain,
        /// The fingerprint the client names for the origin's signet.
        fingerprint: Fingerprint,
    },
    /// RCPT: is `destination` served here, with `fingerprint` its current signet? Answer
    /// [`Server::accept_recipient`] or [`Server::reject_recipient`].
    NeedRecipient {
        /// The destination domain.
        destination: Domain,
        /// The destination signet's fingerprint the message is sealed to.
        fingerprint: Fingerprint,
    },
    /// A complete DATA body whose size and SHA-512 match what DATA declared. Open, verify and
    /// store it durably, then answer [`Server::data_stored`] or [`Server::data_failed`].
    MessageReceived(Box<Delivery>),
    /// SGNT: the signet `name` (pinned to `pin` if given). Answer [`Server::provide_signet`]
    /// or [`Server::lookup_failed`].
    NeedSignet {
        /// The signet asked for.
        name: SignetName,
        /// The fingerprint it must have; `None` for the current signet.
        pin: Option<Fingerprint>,
    },
    /// VRFY: is `fingerprint` current for `name`? Answer [`Server::provide_verify`] or
    /// [`Server::lookup_failed`].
    NeedVerify {
        /// The signet asked about.
        name: SignetName,
        /// The fingerprint the client holds.
        fingerprint: Fingerprint,
    },
    /// HIST: the chain from `from` to the current signet of `name`. Answer
    /// [`Server::provide_history`] or [`Server::lookup_failed`].
    NeedHistory {
        /// The signet asked about.
        name: SignetName,
        /// The fingerprint the client trusts.
        from: Fingerprint,
    },
    /// The stream was closed because of the peer (the reply has been queued).
    Closed(ProtocolError),
}

/// A received message (`Event::MessageReceived`).
#[derive(Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The origin domain named by MAIL and accepted by the driver.
    pub origin: Domain,
    /// The origin signet's fingerprint named by MAIL.
    pub origin_fingerprint: Fingerprint,
    /// The destination domain named by RCPT.
    pub destination: Domain,
    /// The destination signet's fingerprint named by RCPT.
    pub destination_fingerprint: Fingerprint,
    /// The sealed envelope, exactly as declared, with the SHA-512 that matched the DATA
    /// commitment.
    pub body: Hashed,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("origin", &self.origin)
            .field("destination", &self.destination)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A decision call made when the machine was not waiting for it: the driver's bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("decision {0} made while the machine does not wait for it")]
pub struct Misuse(pub &'static str);

/// Which decision the machine waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Mail,
    Recipient,
    Store,
    Signet,
    Verify,
    History,
}

/// A DATA body being received.
struct BodyIn {
    declared: u64,
    expected: [u8; 64],
    body: HashingBuffer,
    /// The declared size, reserved from the body budget until the transaction ends.
    reserved: Reservation,
    /// When the whole body must have arrived (set as the DATA is read).
    deadline: Option<Instant>,
}

/// The states, each named for what it waits for (`spec/dmtp.md` §7.1).
enum State {
    /// The first frame: HELLO.
    ExpectHello,
    /// A command: MAIL, RCPT, DATA or a lookup, as the transaction allows.
    ExpectCommand,
    /// BODY frames until the declared size.
    ExpectBody(BodyIn),
    /// BODY frames of a refused DATA with `body_follows`, read and dropped until this many
    /// octets have gone (`spec/dmtp.md` §6.4.1).
    DiscardBody(u64),
    /// A driver decision.
    Await(Awaiting),
    /// Nothing more: flush the output, then the driver closes the stream.
    Closed,
}

/// The transaction in progress (MAIL, then RCPT, then DATA).
#[derive(Default)]
struct Transaction {
    mail: Option<(Domain, Fingerprint)>,
    pending_rcpt: Option<(Domain, Fingerprint)>,
    /// The one destination (an envelope is sealed for one destination domain, so a
    /// transaction has at most [`MAX_RECIPIENTS`] = 1).
    rcpt: Option<(Domain, Fingerprint)>,
}

/// The server side of one DMTP stream, sans-IO (`spec/dmtp.md` §7.1).
///
/// Polling order, after every input (`handle_input`, `handle_end`, `handle_timeout` or a
/// decision): drain [`Server::poll_event`] (answer each `Need*` with its decision), drain
/// [`Server::poll_transmit`] to the stream, re-arm the timer with [`Server::poll_timeout`],
/// and read more only while [`Server::wants_input`]. When [`Server::is_closed`] and
/// `poll_transmit` is empty, finish and close the stream.
pub struct Server {
    provider: CryptoProvider,
    config: ServerConfig,
    state: State,
    mode: Mode,
    inbuf: Vec<u8>,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    deadline: Option<Instant>,
    errors: u32,
    transactions: u32,
    lookups: u32,
    txn: Transaction,
    /// HELLO's domain in transfer mode: the only origin MAIL may name (`spec/dmtp.md` §6.2).
    hello_domain: Option<Domain>,
    /// The budget reserved for the body handed to the driver, until its decision.
    delivering: Option<Reservation>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server").field("domain", &self.config.domain).finish_non_exhaustive()
    }
}

impl Server {
    /// A new stream, started at `now` (the handshake deadline runs from it).
    pub fn new(provider: CryptoProvider, config: ServerConfig, now: Instant) -> Server {
        let deadline = Some(now + config.handshake_timeout);
        Server {
            provider,
            config,
            state: State::ExpectHello,
            mode: Mode::Lookup,
            inbuf: Vec::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            deadline,
            errors: 0,
            transactions: 0,
            lookups: 0,
            txn: Transaction::default(),
            hello_domain: None,
            delivering: None,
        }
    }

    /// Bytes read from the stream.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if matches!(self.state, State::Closed) {
            return;
        }
        self.inbuf.extend_from_slice(bytes);
        self.process(now);
    }

    /// The client finished its side of the stream.
    pub fn handle_end(&mut self, now: Instant) {
        self.process(now);
        if matches!(self.state, State::Closed) {
            return;
        }
        let mid = !self.inbuf.is_empty()
            || matches!(self.state, State::ExpectBody(_) | State::DiscardBody(_));
        if mid {
            self.fail(ProtocolError::UnexpectedEnd);
        } else if !matches!(self.state, State::Await(_)) {
            self.state = State::Closed;
        }
    }

    /// The timer from [`Server::poll_timeout`] fired (or any time at or after it).
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(deadline) = self.deadline
            && now >= deadline
        {
            let err = match &self.state {
                State::ExpectHello => ProtocolError::HandshakeTimeout,
                State::ExpectBody(b) if b.deadline.is_some_and(|d| now >= d) => {
                    ProtocolError::BodyTooSlow
                }
                _ => ProtocolError::IdleTimeout,
            };
            self.fail(err);
        }
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next frame to write to the stream.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// When [`Server::handle_timeout`] must be called; `None` while a decision is pending or
    /// the stream is closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether a transaction is under way (`spec/dmtp.md` §8): from its accepted MAIL until
    /// the reply to its body, or until the RSET, refusal or error that ends it; a refused
    /// DATA's body still arriving counts. A driver that stops lets such a stream go on to its
    /// reply and closes the others when they next wait for the client.
    pub fn in_transaction(&self) -> bool {
        match self.state {
            State::ExpectBody(_) | State::DiscardBody(_) | State::Await(Awaiting::Store) => true,
            State::Await(Awaiting::Mail) | State::Closed | State::ExpectHello => false,
            State::ExpectCommand
            | State::Await(
                Awaiting::Recipient | Awaiting::Signet | Awaiting::Verify | Awaiting::History,
            ) => self.txn.mail.is_some(),
        }
    }

    /// Whether the driver should read more from the stream: not while a decision is pending,
    /// not when a complete frame is already buffered, not after close.
    pub fn wants_input(&self) -> bool {
        match self.state {
            State::Closed | State::Await(_) => false,
            _ => !matches!(split_frame(&self.inbuf), Ok(Split::Frame { .. }) | Err(_)),
        }
    }

    /// Whether the stream is finished: after the queued frames are written, close it.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Accepts the origin named by MAIL.
    ///
    /// # Errors
    /// [`Misuse`] when the machine does not wait for this decision.
    pub fn accept_mail(&mut self, now: Instant) -> Result<(), Misuse> {
        self.decide(Awaiting::Mail, "accept_mail", now)?;
        self.reply(ReplyCode::OK, None);
        self.resume(now);
        Ok(())
    }

    /// Refuses the origin named by MAIL.
    ///
    /// # Errors
    /// [`Misuse`] when the machine does not wait for this decision.
    pub fn reject_mail(&mut self, why: Refusal, now: Instant) -> Result<(), Misuse> {
        self.decide(Awaiting::Mail, "reject_mail", now)?;
        self.txn.mail = None;
        self.reply(why.code(), None);
        self.resume(now);
        Ok(())
    }

    /// Accepts the destination named by RCPT.
    ///
    /// # Errors
    /// [`Misuse`] when the machine does not wait for this decision.
    pub fn accept_recipient(&mut self, now: Instant) -> Result<(), Misuse> {
        self.decide(Awaiting::Recipient, "accept_recipient", now)?;
        if let Some(r) = self.txn.pending_rcpt.take() {
            self.txn.rcpt = Some(r);
        }
        self.reply(ReplyCode::OK, None);
        self.resume(now);
        Ok(())
    }

    /// Refuses the destination named by RCPT.
    ///
    /// # Errors
    /// [`Misuse`] when the machine does not wait for this decision.
    pub fn reject_recipient(&mut self, why: Refusal, now: Instant) -> Result<(), Misuse> {
        self.decide(Awaiting::Recipient, "reject_recipient", now)?;
        self.txn.pending_rcpt = None;
        self.reply(why.code(), None);
        self.resume(now);
        Ok(())
    }

    /// The message of the last `MessageReceived` is durable, under `txid`.
    ///
    /// # Errors
    /// [`Misuse`] when the machine does not wait for this decision.
    pub fn data_stored(&mut self, txid: TransactionId, now: Instant) -> Result<(), Misuse> {
        self.decide(Awaiting::Store, "data_stored", now)?;
        self.txn = Transaction::default();
        self.delivering = None;
        let detail = Detail::Accepted(dmtp::Accepted { transaction_id: txid.as_str().to_owned() });
        self.reply(ReplyCode::OK, Some(detail));
        self.resume(now);
        Ok(())
    }

    /// The message of the last `MessageReceived` was refused or could not be stored.
    ///
    /// # Errors
    /// [`Misuse`] when the machine does not wait for this decision.
    pub fn data_failed(&mut self, why: Refusal, now: Instant) -> Result<(), Misuse> {
        self.decide(Awaiting::Store, "data_failed", now)?;
        self.txn = Transaction::default();
        self.delivering = None;
        self.reply(why.code(), None);
        self.resume(now);
        Ok(())
    }

    /// The signet asked for by SGNT: its canonical bytes.
    ///
    /// # Errors
    /// [`Misuse`] when the machine does not wait for this decision.
    pub fn provide_signet(&mut self, signet: Vec<u8>, now: Instant) -> Result<(), Misuse> {
        self.decide(Awaiting::Signet, "provide_signet", now)?;
        self.reply(ReplyCode::OK, Some(Detail::Signet(dmtp::SignetReply { signet })));
        self.resume(now);
        Ok(())
    }

    /// The answer to VRFY.
    ///
    /// # Errors
    /// [`Misuse`] when the machine does not wait for this decision.
    pub fn provide_verify(&mut self, answer: VerifyAnswer, now: Instant) -> Result<(), Misuse> {
        self.decide(Awaiting::Verify, "provide_verify", now)?;
        let verify = match answer {
            VerifyAnswer::Current => dmtp::VerifyReply {
                status: dmtp::verify_reply::Status::Current.into(),
                current: Vec::new(),
            },
            VerifyAnswer::Updated(fp) => dmtp::VerifyReply {
                status: dmtp::verify_reply::Status::Updated.into(),
                current: fp.0.to_vec(),
            },
        };
        self.reply(ReplyCode::OK, Some(Detail::Verify(verify)));
        self.resume(now);
        Ok(())
    }

    /// The answer to HIST: signets oldest first, at most [`MAX_HISTORY_SIGNETS`] (the newest
    /// are kept when there are more; the client asks again from the last it received).
    ///
    /// # Errors
    /// [`Misuse`] when the machine does not wait for this decision.
    pub fn provide_history(
        &mut self,
        mut signets: Vec<Vec<u8>>,
        now: Instant,
    ) -> Result<(), Misuse> {
        self.decide(Awaiting::History, "provide_history", now)?;
        signets.drain(..signets.len().saturating_sub(MAX_HISTORY_SIGNETS));
        self.reply(ReplyCode::OK, Some(Detail::History(dmtp::HistoryReply { signets })));
        self.resume(now);
        Ok(())
    }

    /// A lookup (SGNT, VRFY, HIST) failed.
    ///
    /// # Errors
    /// [`Misuse`] when the machine does not wait for a lookup decision.
    pub fn lookup_failed(&mut self, why: Refusal, now: Instant) -> Result<(), Misuse> {
        match self.state {
            State::Await(Awaiting::Signet | Awaiting::Verify | Awaiting::History) => {}
            _ => return Err(Misuse("lookup_failed")),
        }
        self.state = State::ExpectCommand;
        self.reply(why.code(), None);
        self.resume(now);
        Ok(())
    }

    fn decide(&mut self, want: Awaiting, name: &'static str, now: Instant) -> Result<(), Misuse> {
        match self.state {
            State::Await(a) if a == want => {
                self.state = State::ExpectCommand;
                self.deadline = Some(now + self.config.idle_timeout);
                Ok(())
            }
            _ => Err(Misuse(name)),
        }
    }

    fn resume(&mut self, now: Instant) {
        self.process(now);
    }

    fn reply(&mut self, code: ReplyCode, detail: Option<Detail>) {
        let reply = dmtp::Reply { code: u32::from(code.0), text: code.text().to_owned(), detail };
        match encode_frame(&reply) {
            Ok(frame) => self.out.push_back(frame),
            Err(_) => self.reply(ReplyCode::LOCAL_ERROR, None),
        }
    }

    /// Replies with the error's code; closes when the error closes or errors are exhausted.
    fn fail(&mut self, err: ProtocolError) {
        if matches!(self.state, State::Closed) {
            return;
        }
        self.reply(err.code(), None);
        let counted = !matches!(err, ProtocolError::HandshakeTimeout | ProtocolError::IdleTimeout);
        if counted {
            self.errors += 1;
        }
        if err.closes() || matches!(self.state, State::ExpectHello) {
            // Before a valid HELLO the peer may not be a DMTP client at all: one reply, then
            // close (spec/dmtp.md §10).
            self.close(err);
        } else if self.errors >= MAX_ERRORS {
            self.reply(ReplyCode::SERVICE_CLOSING, None);
            self.close(ProtocolError::TooManyErrors);
        } else if matches!(self.state, State::ExpectBody(_) | State::DiscardBody(_)) {
            // An error inside a body: the transaction is abandoned and the stream closed, so
            // no body byte is ever read as a command (spec/dmtp.md §6.4).
            self.close(err);
        }
    }

    fn close(&mut self, err: ProtocolError) {
        self.state = State::Closed;
        self.deadline = None;
        self.inbuf = Vec::new();
        self.txn = Transaction::default();
        self.events.push_back(Event::Closed(err));
    }

    /// Reads frames while the state allows.
    fn process(&mut self, now: Instant) {
        loop {
            if matches!(self.state, State::Closed | State::Await(_)) {
                break;
            }
            let (frame, consumed) = match split_frame(&self.inbuf) {
                // An incomplete frame is shorter than FRAME_HEADER_LEN + MAX_FRAME_SIZE:
                // `split_frame` refuses a larger length as soon as the header is in.
                Ok(Split::Incomplete) => break,
                Err(e) => {
                    self.fail(e);
                    break;
                }
                Ok(Split::Frame { payload, consumed }) => {
                    (decode_payload::<ClientFrame>(payload), consumed)
                }
            };
            self.inbuf.drain(..consumed);
            match frame {
                Ok(ClientFrame { command: Some(cmd) }) => {
                    if let Err(e) = self.command(cmd) {
                        self.fail(e);
                    }
                }
                Ok(ClientFrame { command: None }) => self.fail(ProtocolError::NoCommand),
                Err(e) => self.fail(e),
            }
            let idle = now + self.config.idle_timeout;
            self.deadline = match &mut self.state {
                State::ExpectHello => self.deadline,
                State::Await(_) | State::Closed => None,
                State::ExpectCommand | State::DiscardBody(_) => Some(idle),
                // §6.4: the whole body within its grace plus its size at the minimum rate.
                State::ExpectBody(b) => {
                    let rate = self.config.min_body_rate;
                    let whole = *b.deadline.get_or_insert_with(|| match rate {
                        0 => now + Duration::from_secs(u64::from(u32::MAX)),
                        r => now + BODY_GRACE + Duration::from_secs(b.declared / r),
                    });
                    Some(idle.min(whole))
                }
            };
        }
    }

    fn command(&mut self, cmd: Command) -> Result<(), ProtocolError> {
        if let State::ExpectBody(_) = self.state {
            return match cmd {
                Command::Body(b) => self.body(&b.chunk),
                _ => Err(ProtocolError::BadSequence),
            };
        }
        if let State::DiscardBody(left) = self.state {
            return match cmd {
                Command::Body(b) => {
                    let n = b.chunk.len() as u64;
                    if n > left {
                        return Err(ProtocolError::BodyOverrun);
                    }
                    self.state =
                        if n == left { State::ExpectCommand } else { State::DiscardBody(left - n) };
                    Ok(())
                }
                _ => Err(ProtocolError::BadSequence),
            };
        }
        if let State::ExpectHello = self.state {
            return match cmd {
                Command::Hello(h) => self.hello(&h),
                // Anything else first is not a DMTP client: close without more.
                _ => {
                    self.reply(ProtocolError::BadSequence.code(), None);
                    self.close(ProtocolError::BadSequence);
                    Ok(())
                }
            };
        }
        match cmd {
            Command::Hello(_) | Command::Body(_) => Err(ProtocolError::BadSequence),
            Command::Mail(m) => self.mail(&m),
            Command::Rcpt(r) => self.rcpt(&r),
            Command::Data(d) => {
                let refused = self.data(&d);
                match refused {
                    Err(e) if d.body_follows => {
                        self.refuse_following_body(e, d.size);
                        Ok(())
                    }
                    r => r,
                }
            }
            Command::Sgnt(s) => {
                let name = SignetName::from_wire(s.name.as_ref())?;
                let pin = if s.fingerprint.is_empty() {
                    None
                } else {
                    Some(parse_fingerprint(&s.fingerprint)?)
                };
                self.lookup(Awaiting::Signet, Event::NeedSignet { name, pin })
            }
            Command::Vrfy(v) => {
                let name = SignetName::from_wire(v.name.as_ref())?;
                let fingerprint = parse_fingerprint(&v.fingerprint)?;
                self.lookup(Awaiting::Verify, Event::NeedVerify { name, fingerprint })
            }
            Command::Hist(h) => {
                let name = SignetName::from_wire(h.name.as_ref())?;
                let from = parse_fingerprint(&h.from)?;
                self.lookup(Awaiting::History, Event::NeedHistory { name, from })
            }
            Command::Noop(_) => {
                self.reply(ReplyCode::OK, None);
                Ok(())
            }
            Command::Rset(_) => {
                self.txn = Transaction::default();
                self.reply(ReplyCode::OK, None);
                Ok(())
            }
            Command::Quit(_) => {
                self.reply(ReplyCode::CLOSING, None);
                self.state = State::Closed;
                self.deadline = None;
                self.inbuf = Vec::new();
                Ok(())
            }
        }
    }

    fn hello(&mut self, h: &dmtp::Hello) -> Result<(), ProtocolError> {
        if h.version != VERSION {
            return Err(ProtocolError::UnsupportedVersion);
        }
        let mode = Mode::from_wire(h.mode)?;
        if mode == Mode::Transfer || !h.domain.is_empty() {
            let domain = parse_domain(&h.domain)?;
            if mode == Mode::Transfer {
                self.hello_domain = Some(domain);
            }
        }
        self.mode = mode;
        self.state = State::ExpectCommand;
        let greeting = dmtp::Greeting {
            version: VERSION,
            domain: self.config.domain.as_str().to_owned(),
            max_message_size: self.config.max_message_size,
            max_recipients: MAX_RECIPIENTS as u32,
            // MAX_FRAME_SIZE fits in u32 (256 KiB).
            max_frame_size: MAX_FRAME_SIZE as u32,
        };
        self.reply(ReplyCode::OK, Some(Detail::Greeting(greeting)));
        Ok(())
    }

    fn require_transfer(&self) -> Result<(), ProtocolError> {
        if self.mode == Mode::Transfer { Ok(()) } else { Err(ProtocolError::UnsupportedMode) }
    }

    fn mail(&mut self, m: &dmtp::Mail) -> Result<(), ProtocolError> {
        self.require_transfer()?;
        if self.txn.mail.is_some() {
            return Err(ProtocolError::BadSequence);
        }
        if self.transactions >= self.config.max_transactions {
            return Err(ProtocolError::TooManyTransactions);
        }
        let origin = parse_domain(&m.origin)?;
        let fingerprint = parse_fingerprint(&m.fingerprint)?;
        if self.hello_domain.as_ref() != Some(&origin) {
            // §6.2: a client speaks for the domain it said HELLO as, and only for it. Refused
            // without asking the driver, as an origin that is not verified.
            self.reply(Refusal::OriginNotVerified.code(), None);
            return Ok(());
        }
        self.txn.mail = Some((origin.clone(), fingerprint));
        self.state = State::Await(Awaiting::Mail);
        self.events.push_back(Event::NeedVerifyOrigin { origin, fingerprint });
        Ok(())
    }

    fn rcpt(&mut self, r: &dmtp::Rcpt) -> Result<(), ProtocolError> {
        self.require_transfer()?;
        if self.txn.mail.is_none() {
            return Err(ProtocolError::BadSequence);
        }
        if self.txn.rcpt.is_some() {
            return Err(ProtocolError::TooManyRecipients);
        }
        let destination = parse_domain(&r.destination)?;
        let fingerprint = parse_fingerprint(&r.fingerprint)?;
        self.txn.pending_rcpt = Some((destination.clone(), fingerprint));
        self.state = State::Await(Awaiting::Recipient);
        self.events.push_back(Event::NeedRecipient { destination, fingerprint });
        Ok(())
    }

    fn data(&mut self, d: &dmtp::Data) -> Result<(), ProtocolError> {
        self.require_transfer()?;
        if self.txn.mail.is_none() || self.txn.rcpt.is_none() {
            return Err(ProtocolError::BadSequence);
        }
        if d.size == 0 {
            return Err(ProtocolError::BadArgument("declared size is zero"));
        }
        let expected = <[u8; 64]>::try_from(d.sha512.as_slice())
            .map_err(|_| ProtocolError::BadArgument("sha512 is not 64 octets"))?;
        if d.size > self.config.max_message_size {
            self.txn = Transaction::default();
            self.transactions += 1;
            return Err(ProtocolError::MessageTooLarge);
        }
        // §6.4: the declared size must fit the memory the server gives bodies at once; if it
        // does not, the origin tries again later (452, the transaction ends, no error counted).
        let Some(reserved) = self.config.body_budget.try_reserve(self.config.peer, d.size) else {
            self.txn = Transaction::default();
            self.reply(ReplyCode::TOO_MANY, None);
            if d.body_follows {
                self.state = State::DiscardBody(d.size);
            }
            return Ok(());
        };
        // Allocated as the body arrives, never from the declared size alone.
        self.state = State::ExpectBody(BodyIn {
            declared: d.size,
            expected,
            body: HashingBuffer::new(&self.provider),
            reserved,
            deadline: None,
        });
        self.reply(ReplyCode::START_BODY, None);
        Ok(())
    }

    /// A DATA with `body_follows` was refused with `err`: its reply goes out, then its body is
    /// read and dropped, or, when the declared size is over the limit, the stream is closed
    /// rather than read that far (`spec/dmtp.md` §6.4.1).
    fn refuse_following_body(&mut self, err: ProtocolError, size: u64) {
        let too_large = size > self.config.max_message_size;
        self.fail(err);
        if matches!(self.state, State::Closed) {
            return;
        }
        if too_large {
            self.close(ProtocolError::MessageTooLarge);
        } else if size > 0 {
            self.state = State::DiscardBody(size);
        }
    }

    fn body(&mut self, chunk: &[u8]) -> Result<(), ProtocolError> {
        let State::ExpectBody(body) = &mut self.state else {
            return Err(ProtocolError::BadSequence);
        };
        let total = body.body.len() as u64 + chunk.len() as u64;
        if total > body.declared {
            return Err(ProtocolError::BodyOverrun);
        }
        body.body.extend(chunk);
        if total < body.declared {
            return Ok(());
        }
        let State::ExpectBody(body) = std::mem::replace(&mut self.state, State::ExpectCommand)
        else {
            return Err(ProtocolError::BadSequence);
        };
        self.transactions += 1;
        let received = body.body.finish();
        let txn = std::mem::take(&mut self.txn);
        if *received.sha512() != body.expected {
            return Err(ProtocolError::BodyHashMismatch);
        }
        let (Some((origin, origin_fingerprint)), Some((destination, destination_fingerprint))) =
            (txn.mail, txn.rcpt)
        else {
            return Err(ProtocolError::BadSequence);
        };
        self.state = State::Await(Awaiting::Store);
        // The body's octets stay counted until the driver's decision on them.
        self.delivering = Some(body.reserved);
        self.events.push_back(Event::MessageReceived(Box::new(Delivery {
            origin,
            origin_fingerprint,
            destination,
            destination_fingerprint,
            body: received,
        })));
        Ok(())
    }

    fn lookup(&mut self, wait: Awaiting, event: Event) -> Result<(), ProtocolError> {
        if self.lookups >= self.config.max_lookups {
            return Err(ProtocolError::TooManyLookups);
        }
        self.lookups += 1;
        self.state = State::Await(wait);
        self.events.push_back(event);
        Ok(())
    }
}
