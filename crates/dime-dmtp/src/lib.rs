//! `dime-dmtp`: DMTP, the DIME Mail Transfer Protocol, sans-IO (`spec/dmtp.md`).
//!
//! What it is: the framing ([`frame`]: a 4-octet length and a protobuf message, refused over
//! [`limits::MAX_FRAME_SIZE`] before anything is buffered), and the two state machines of one
//! DMTP stream: [`Server`] and [`Client`]. Bytes and decisions go in (`handle_input`,
//! `handle_timeout`, `accept_mail`, `provide_signet`, `data_stored`...); frames, events and
//! deadlines come out (`poll_transmit`, `poll_event`, `poll_timeout`). Every protocol error maps
//! to a reply code ([`ReplyCode`], [`ProtocolError`], [`Refusal`]).
//!
//! What it is not: a transport or a policy. It opens no socket, reads no clock (time is an
//! `Instant` parameter) and draws no randomness; it verifies no signature and stores nothing:
//! the driver (`dime-net`, `dime-server`) does that when an event asks, and feeds the decision
//! back. On the wire there are domains and fingerprints only, never a local part of a
//! transfer's author or recipient.

pub mod budget;
mod client;
pub mod frame;
pub mod limits;
mod reply;
mod server;
mod types;

pub use client::{
    Client, ClientError, ClientEvent, CommandKind, MAX_REFUSAL_TEXT_LEN, Outgoing, TxnHandle,
};
pub use reply::{ProtocolError, Refusal, ReplyCode};
pub use server::{Delivery, Event, Misuse, Server, ServerConfig};
pub use types::{Greeting, Mode, SignetName, TransactionId, TransactionIdError, VerifyAnswer};
