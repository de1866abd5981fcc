//! The client side of one DMTP stream (`spec/dmtp.md` §7.2).

use crate::frame::{Frame, Split, decode_payload, encode_frame, split_frame};
use crate::limits::{
    BODY_CHUNK_SIZE, BODY_FOLLOWS_MAX, IDLE_TIMEOUT, MAX_HISTORY_SIGNETS, VERSION,
};
use crate::reply::{ProtocolError, ReplyCode};
use crate::types::{
    Greeting, Mode, SignetName, TransactionId, VerifyAnswer, parse_domain, parse_fingerprint,
};
use dime_core::crypto::{Bytes, Hashed};
use dime_core::{Domain, Fingerprint};
use dime_wire::dmtp::{self, ClientFrame, client_frame::Command, reply::Detail};
use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

/// The commands, as named in events (`spec/dmtp.md` §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// HELLO.
    Hello,
    /// MAIL.
    Mail,
    /// RCPT.
    Rcpt,
    /// DATA (the command and its body).
    Data,
    /// SGNT.
    Sgnt,
    /// VRFY.
    Vrfy,
    /// HIST.
    Hist,
    /// NOOP.
    Noop,
    /// RSET.
    Rset,
    /// QUIT.
    Quit,
}

/// A message to send (`spec/dmtp.md` §6.2-§6.4).
#[derive(Clone)]
pub struct Outgoing {
    /// The origin domain (ours).
    pub origin: Domain,
    /// Our organisational signet's fingerprint.
    pub origin_fingerprint: Fingerprint,
    /// The destination domain.
    pub destination: Domain,
    /// The destination signet's fingerprint the envelope is sealed to.
    pub destination_fingerprint: Fingerprint,
    /// The sealed envelope, hashed once (by the origin when it queued it): its SHA-512 is the
    /// DATA commitment.
    pub body: Hashed,
}

impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("origin", &self.origin)
            .field("destination", &self.destination)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A local handle for one transaction started with [`Client::send_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxnHandle(pub u64);

/// What the client machine tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The server answered HELLO.
    Greeted(Greeting),
    /// The server stored the message durably under `id`.
    Delivered {
        /// Which transaction.
        txn: TxnHandle,
        /// The server's transaction id.
        id: TransactionId,
    },
    /// A command was refused with `code`; for a transaction, only its first refusal is
    /// reported and the transaction is over.
    Refused {
        /// The transaction, if the command was part of one.
        txn: Option<TxnHandle>,
        /// The command refused.
        command: CommandKind,
        /// The server's code.
        code: ReplyCode,
        /// The server's text: printable ASCII, at most [`MAX_REFUSAL_TEXT_LEN`] octets (its
        /// other characters `?`); empty when the client itself refused.
        text: String,
    },
    /// SGNT's answer: a signet's canonical bytes, not yet validated.
    Signet(Vec<u8>),
    /// VRFY's answer.
    Verified(VerifyAnswer),
    /// HIST's answer: signets oldest first, not yet validated.
    History(Vec<Vec<u8>>),
    /// NOOP or RSET done.
    Done(CommandKind),
    /// The server answered QUIT; the stream is over.
    Closed,
    /// The server broke the protocol or went silent; the stream is over.
    Failed(ClientError),
}

/// How a server broke the protocol (`spec/dmtp.md` §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// A reply frame broke the framing rules.
    #[error("reply framing: {0}")]
    Framing(ProtocolError),
    /// A reply code this version does not define.
    #[error("reply code not defined by this version")]
    UnknownCode,
    /// A reply with no command waiting for it.
    #[error("reply without a command")]
    UnexpectedReply,
    /// A success reply without the detail its command needs, or with a bad one.
    #[error("reply detail missing or invalid")]
    BadDetail,
    /// The server closed the service (421).
    #[error("server closed the service")]
    ServiceClosing,
    /// No reply within the idle deadline.
    #[error("no reply within IDLE_TIMEOUT")]
    Timeout,
    /// The server ended the stream with commands unanswered.
    #[error("stream ended with commands unanswered")]
    UnexpectedEnd,
}

/// What a reply answers.
#[derive(Debug)]
enum Pending {
    Hello,
    Mail(TxnHandle),
    Rcpt(TxnHandle),
    Data(TxnHandle, Bytes),
    Body(TxnHandle),
    Sgnt,
    Vrfy,
    Hist,
    Noop,
    Rset,
    Quit,
}

/// The client side of one DMTP stream, sans-IO (`spec/dmtp.md` §7.2). It sends HELLO on
/// creation; commands may be pipelined. A body of at most [`BODY_FOLLOWS_MAX`] octets follows
/// its DATA at once (`body_follows`); after a DATA with a larger body nothing is sent until the
/// server's 354 (the body goes first).
///
/// Polling order, after every input (a command call, `handle_input`, `handle_end`,
/// `handle_timeout`): drain [`Client::poll_transmit`] to the stream, drain
/// [`Client::poll_event`], re-arm the timer with [`Client::poll_timeout`]. When
/// [`Client::is_closed`], close the stream.
pub struct Client {
    inbuf: Vec<u8>,
    /// Frames to write; `true` marks a DATA frame.
    out: VecDeque<(Frame, bool)>,
    /// Set when a DATA frame has been handed out: nothing more until its reply.
    held: bool,
    pending: VecDeque<Pending>,
    events: VecDeque<ClientEvent>,
    deadline: Option<Instant>,
    failed: Option<TxnHandle>,
    /// A transaction was refused since the last RSET: the server may still hold its MAIL, so
    /// the next transaction starts with RSET (`spec/dmtp.md` §6.9).
    reset_due: bool,
    next_txn: u64,
    closed: bool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("pending", &self.pending.len()).finish_non_exhaustive()
    }
}

impl Client {
    /// A new stream: queues HELLO for `domain` (ours; may be `None` in lookup mode).
    pub fn new(domain: Option<&Domain>, mode: Mode, now: Instant) -> Client {
        let mut c = Client {
            inbuf: Vec::new(),
            out: VecDeque::new(),
            held: false,
            pending: VecDeque::new(),
            events: VecDeque::new(),
            deadline: None,
            failed: None,
            reset_due: false,
            next_txn: 0,
            closed: false,
        };
        let hello = dmtp::Hello {
            version: VERSION,
            domain: domain.map(|d| d.as_str().to_owned()).unwrap_or_default(),
            mode: mode.to_wire().into(),
        };
        c.send(Command::Hello(hello), Pending::Hello, now);
        c
    }

    /// Starts a transaction: MAIL, RCPT, DATA, then the body after 354. After a refused
    /// transaction, RSET goes first, in the same flight (`spec/dmtp.md` §6.9).
    pub fn send_message(&mut self, msg: Outgoing, now: Instant) -> TxnHandle {
        if self.reset_due {
            self.rset(now);
        }
        let txn = TxnHandle(self.next_txn);
        self.next_txn += 1;
        let mail = dmtp::Mail {
            origin: msg.origin.as_str().to_owned(),
            fingerprint: msg.origin_fingerprint.0.to_vec(),
        };
        self.send(Command::Mail(mail), Pending::Mail(txn), now);
        let rcpt = dmtp::Rcpt {
            destination: msg.destination.as_str().to_owned(),
            fingerprint: msg.destination_fingerprint.0.to_vec(),
        };
        self.send(Command::Rcpt(rcpt), Pending::Rcpt(txn), now);
        // A body up to BODY_FOLLOWS_MAX goes right after DATA (one round trip less); a larger
        // one waits for the 354, so a refusal does not cost its transfer (spec/dmtp.md §6.4.1).
        let follows = msg.body.len() <= BODY_FOLLOWS_MAX;
        let data = dmtp::Data {
            size: msg.body.len() as u64,
            sha512: msg.body.sha512().to_vec(),
            body_follows: follows,
        };
        if follows {
            self.send(Command::Data(data), Pending::Data(txn, Bytes::new()), now);
            if !self.closed {
                self.out.extend(body_frames(&msg.body.shared()).into_iter().map(|f| (f, false)));
            }
        } else {
            self.send(Command::Data(data), Pending::Data(txn, msg.body.into_bytes()), now);
        }
        txn
    }

    /// SGNT: fetches `name`'s signet, the current one or the one pinned.
    pub fn lookup_signet(&mut self, name: &SignetName, pin: Option<&Fingerprint>, now: Instant) {
        let sgnt = dmtp::Sgnt {
            name: Some(name.to_wire()),
            fingerprint: pin.map(|f| f.0.to_vec()).unwrap_or_default(),
        };
        self.send(Command::Sgnt(sgnt), Pending::Sgnt, now);
    }

    /// VRFY: asks whether `fingerprint` is `name`'s current signet.
    pub fn verify(&mut self, name: &SignetName, fingerprint: &Fingerprint, now: Instant) {
        let vrfy = dmtp::Vrfy { name: Some(name.to_wire()), fingerprint: fingerprint.0.to_vec() };
        self.send(Command::Vrfy(vrfy), Pending::Vrfy, now);
    }

    /// HIST: asks for the chain of custody from `from` to `name`'s current signet.
    pub fn history(&mut self, name: &SignetName, from: &Fingerprint, now: Instant) {
        let hist = dmtp::Hist { name: Some(name.to_wire()), from: from.0.to_vec() };
        self.send(Command::Hist(hist), Pending::Hist, now);
    }

    /// NOOP.
    pub fn noop(&mut self, now: Instant) {
        self.send(Command::Noop(dmtp::Noop {}), Pending::Noop, now);
    }

    /// RSET.
    pub fn rset(&mut self, now: Instant) {
        self.reset_due = false;
        self.send(Command::Rset(dmtp::Rset {}), Pending::Rset, now);
    }

    /// QUIT.
    pub fn quit(&mut self, now: Instant) {
        self.send(Command::Quit(dmtp::Quit {}), Pending::Quit, now);
    }

    /// Bytes read from the stream.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if self.closed {
            return;
        }
        self.inbuf.extend_from_slice(bytes);
        while !self.closed {
            let (reply, consumed) = match split_frame(&self.inbuf) {
                Ok(Split::Incomplete) => break,
                Err(e) => return self.fail(ClientError::Framing(e)),
                Ok(Split::Frame { payload, consumed }) => {
                    (decode_payload::<dmtp::Reply>(payload), consumed)
                }
            };
            self.inbuf.drain(..consumed);
            match reply {
                Ok(r) => self.reply(r, now),
                Err(e) => self.fail(ClientError::Framing(e)),
            }
        }
        self.deadline =
            if self.pending.is_empty() || self.closed { None } else { Some(now + IDLE_TIMEOUT) };
    }

    /// The server finished its side of the stream.
    pub fn handle_end(&mut self) {
        if !self.closed {
            if self.pending.is_empty() {
                self.closed = true;
                self.events.push_back(ClientEvent::Closed);
            } else {
                self.fail(ClientError::UnexpectedEnd);
            }
        }
    }

    /// The timer from [`Client::poll_timeout`] fired.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            self.fail(ClientError::Timeout);
        }
    }

    /// The next frame to write.
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        if self.held || self.closed {
            return None;
        }
        let (frame, is_data) = self.out.pop_front()?;
        self.held = is_data;
        Some(frame)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`Client::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the stream is over.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether every frame of the commands given so far has been handed out and none waits
    /// on a reply (a body held for its 354): a driver whose stream carries no further command
    /// may end its sending side now (`spec/dmtp.md` §2).
    pub fn all_sent(&self) -> bool {
        self.out.is_empty() && !self.held
    }

    /// Commands sent or queued and not yet answered.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn send(&mut self, cmd: Command, pending: Pending, now: Instant) {
        if self.closed {
            return;
        }
        // Nothing follows a DATA whose body waits for the 354.
        let is_data = matches!(&pending, Pending::Data(_, body) if !body.is_empty());
        match encode_frame(&ClientFrame { command: Some(cmd) }) {
            Ok(frame) => {
                self.out.push_back((Frame::whole(frame), is_data));
                self.pending.push_back(pending);
                if self.deadline.is_none() {
                    self.deadline = Some(now + IDLE_TIMEOUT);
                }
            }
            // Only a command built from over-long caller values can exceed a frame; the
            // server would refuse it anyway.
            Err(_) => self.events.push_back(ClientEvent::Refused {
                txn: txn_of(&pending),
                command: kind_of(&pending),
                code: ReplyCode::SYNTAX,
                text: String::new(),
            }),
        }
    }

    fn fail(&mut self, err: ClientError) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.deadline = None;
        self.out.clear();
        self.inbuf = Vec::new();
        self.events.push_back(ClientEvent::Failed(err));
    }

    /// Reports a refusal once per transaction.
    fn refused(&mut self, pending: &Pending, code: ReplyCode, text: &str) {
        let txn = txn_of(pending);
        if txn.is_some() && txn == self.failed {
            return;
        }
        self.failed = txn;
        self.reset_due |= txn.is_some();
        let text = refusal_text(text);
        self.events.push_back(ClientEvent::Refused { txn, command: kind_of(pending), code, text });
    }

    fn reply(&mut self, r: dmtp::Reply, _now: Instant) {
        let Some(code) = u16::try_from(r.code).ok().map(ReplyCode).filter(|c| c.is_known()) else {
            return self.fail(ClientError::UnknownCode);
        };
        if code == ReplyCode::SERVICE_CLOSING {
            return self.fail(ClientError::ServiceClosing);
        }
        let Some(pending) = self.pending.pop_front() else {
            return self.fail(ClientError::UnexpectedReply);
        };
        let ok = code == ReplyCode::OK;
        match (pending, r.detail) {
            (Pending::Hello, Some(Detail::Greeting(g))) if ok => match greeting(&g) {
                Some(g) => self.events.push_back(ClientEvent::Greeted(g)),
                None => self.fail(ClientError::BadDetail),
            },
            (p @ (Pending::Mail(_) | Pending::Rcpt(_)), _) if ok => drop(p),
            (Pending::Data(txn, body), _) if code == ReplyCode::START_BODY => {
                self.held = false;
                if self.failed == Some(txn) {
                    // An earlier refusal in this transaction and still a 354: a broken server.
                    return self.fail(ClientError::UnexpectedReply);
                }
                // The body goes before anything queued after DATA (when it did not follow DATA
                // at once: then it is empty here).
                for f in body_frames(&body).into_iter().rev() {
                    self.out.push_front((f, false));
                }
                self.pending.push_front(Pending::Body(txn));
            }
            (Pending::Body(txn), Some(Detail::Accepted(a))) if ok => {
                match TransactionId::new(&a.transaction_id) {
                    Ok(id) => self.events.push_back(ClientEvent::Delivered { txn, id }),
                    Err(_) => self.fail(ClientError::BadDetail),
                }
            }
            (Pending::Sgnt, Some(Detail::Signet(s))) if ok => {
                self.events.push_back(ClientEvent::Signet(s.signet));
            }
            (Pending::Vrfy, Some(Detail::Verify(v))) if ok => match verify_answer(&v) {
                Some(a) => self.events.push_back(ClientEvent::Verified(a)),
                None => self.fail(ClientError::BadDetail),
            },
            (Pending::Hist, Some(Detail::History(h))) if ok => {
                if h.signets.len() > MAX_HISTORY_SIGNETS {
                    return self.fail(ClientError::BadDetail);
                }
                self.events.push_back(ClientEvent::History(h.signets));
            }
            (p @ (Pending::Noop | Pending::Rset), _) if ok => {
                self.events.push_back(ClientEvent::Done(kind_of(&p)));
            }
            (Pending::Quit, _) if code == ReplyCode::CLOSING => {
                self.closed = true;
                self.deadline = None;
                self.events.push_back(ClientEvent::Closed);
            }
            (pending, _) if !code.is_success() && code != ReplyCode::START_BODY => {
                if matches!(pending, Pending::Data(..)) {
                    self.held = false;
                }
                let closes = matches!(pending, Pending::Hello);
                self.refused(&pending, code, &r.text);
                if closes {
                    self.closed = true;
                    self.deadline = None;
                }
            }
            // A success code with a missing or foreign detail, or 354 to anything but DATA.
            _ => self.fail(ClientError::BadDetail),
        }
    }
}

/// The BODY frames of `body`, `BODY_CHUNK_SIZE` octets each, each chunk a slice of `body`
/// (not copied).
fn body_frames(body: &Bytes) -> Vec<Frame> {
    (0..body.len())
        .step_by(BODY_CHUNK_SIZE)
        .filter_map(|at| Frame::body(body.slice(at..body.len().min(at + BODY_CHUNK_SIZE))).ok())
        .collect()
}

fn kind_of(p: &Pending) -> CommandKind {
    match p {
        Pending::Hello => CommandKind::Hello,
        Pending::Mail(_) => CommandKind::Mail,
        Pending::Rcpt(_) => CommandKind::Rcpt,
        Pending::Data(..) | Pending::Body(_) => CommandKind::Data,
        Pending::Sgnt => CommandKind::Sgnt,
        Pending::Vrfy => CommandKind::Vrfy,
        Pending::Hist => CommandKind::Hist,
        Pending::Noop => CommandKind::Noop,
        Pending::Rset => CommandKind::Rset,
        Pending::Quit => CommandKind::Quit,
    }
}

fn txn_of(p: &Pending) -> Option<TxnHandle> {
    match p {
        Pending::Mail(t) | Pending::Rcpt(t) | Pending::Data(t, _) | Pending::Body(t) => Some(*t),
        _ => None,
    }
}

fn greeting(g: &dmtp::Greeting) -> Option<Greeting> {
    if g.version != VERSION {
        return None;
    }
    Some(Greeting {
        domain: parse_domain(&g.domain).ok()?,
        max_message_size: g.max_message_size,
        max_recipients: g.max_recipients,
        max_frame_size: g.max_frame_size,
    })
}

fn verify_answer(v: &dmtp::VerifyReply) -> Option<VerifyAnswer> {
    use dmtp::verify_reply::Status;
    match Status::try_from(v.status).ok()? {
        Status::Current => Some(VerifyAnswer::Current),
        Status::Updated => parse_fingerprint(&v.current).ok().map(VerifyAnswer::Updated),
        Status::Unspecified => None,
    }
}

/// Longest refusal text a [`ClientEvent::Refused`] carries, octets.
pub const MAX_REFUSAL_TEXT_LEN: usize = 128;

/// A server's reply text as a refusal carries it: printable ASCII (any other character `?`),
/// cut to [`MAX_REFUSAL_TEXT_LEN`].
fn refusal_text(text: &str) -> String {
    text.chars()
        .take(MAX_REFUSAL_TEXT_LEN)
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .collect()
}
