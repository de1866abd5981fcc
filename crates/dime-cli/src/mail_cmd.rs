//! `dime send|inbox|read|status`: a user's mail through `dimed`'s local submission socket
//! (`spec/dimed.md` §4).

use clap::Args;
use dime_server::submission::Response;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// Where `dimed` is and who is asking.
#[derive(Debug, Args)]
pub(crate) struct SocketArgs {
    /// `dimed`'s submission socket (`data/dimed.sock` under the server's directory).
    #[arg(long, value_name = "PATH")]
    pub(crate) socket: PathBuf,
    /// The user's address.
    #[arg(long)]
    pub(crate) user: String,
    /// The password from this file's first line (else `DIME_USER_PASSWORD`, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
}

/// `dime send`.
///
/// The message, as one request (recipient, subject and body, JSON-encoded), is at most 16 MiB
/// (16777216 octets), the submission socket's limit: a larger one is refused before anything
/// is sent.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub(crate) socket: SocketArgs,
    /// The recipient.
    #[arg(long)]
    pub(crate) to: String,
    /// The subject.
    #[arg(long, default_value = "")]
    pub(crate) subject: String,
    /// The text body (else read from standard input). At most 16 MiB with the rest of the
    /// request.
    #[arg(long)]
    pub(crate) body: Option<String>,
    /// The message's Message-ID, `<left@right>`, made by you: also its idempotency key, so
    /// the same command run again (a retry after a lost answer) prints the first queue id
    /// and sends nothing.
    #[arg(long, value_name = "<LEFT@RIGHT>")]
    pub(crate) message_id: Option<String>,
    /// Print JSON: `{"queue_id":N,"duplicate":B}` (`duplicate`: queued before, under this
    /// Message-ID), or an error object.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `dime inbox`.
#[derive(Debug, Args)]
pub(crate) struct InboxArgs {
    #[command(flatten)]
    pub(crate) socket: SocketArgs,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `dime read`.
#[derive(Debug, Args)]
pub(crate) struct ReadArgs {
    #[command(flatten)]
    pub(crate) socket: SocketArgs,
    /// The message's UID (from `dime inbox`).
    pub(crate) uid: u32,
    /// Verify it afresh: the signers' signets looked up now, the author's chain of custody
    /// walked from the signet recorded at its first check (default: under the signets of that
    /// record, which a key rotation or a move does not change).
    #[arg(long)]
    pub(crate) recheck: bool,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `dime status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) socket: SocketArgs,
    /// The queue id `dime send` printed.
    pub(crate) queue_id: u64,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// What kind of failure a call to `dimed` met: the `class` of a `--json` error
/// (`spec/dimed.md` §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// The password could not be read (file, variable or prompt): dimed was not asked.
    Input,
    /// The socket could not be reached.
    Unreachable,
    /// dimed is too busy (`busy`, `server busy: ...`): retry later.
    Busy,
    /// The login was refused (`login failed`, `too many failed logins: retry in N s`).
    Login,
    /// The session is gone (`not logged in`, `session expired`).
    Session,
    /// No message with that UID (`no such message`).
    NoSuchMessage,
    /// The message does not verify and is not shown (`message not shown: REASON`).
    NotShown,
    /// dimed closed the connection or sent something that is not an answer.
    Protocol,
    /// The message is over the submission socket's request limit: dimed was not asked.
    TooLarge,
    /// Any other error answer of dimed.
    Server,
}

impl Class {
    fn as_str(self) -> &'static str {
        match self {
            Class::Input => "input",
            Class::Unreachable => "unreachable",
            Class::Busy => "busy",
            Class::Login => "login",
            Class::Session => "session",
            Class::NoSuchMessage => "no-such-message",
            Class::NotShown => "not-shown",
            Class::Protocol => "protocol",
            Class::TooLarge => "too-large",
            Class::Server => "server",
        }
    }
}

/// A failed call to `dimed`, with its class; displays as its text alone.
#[derive(Debug)]
struct CallError {
    class: Class,
    text: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for CallError {}

fn failed(class: Class, text: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(CallError { class, text: text.into() })
}

/// The class of dimed's error answer `text` (`spec/dimed.md` §4.1, §4.3) to a `login`
/// (`login`) or to a later request.
fn refused(login: bool, text: &str) -> Class {
    if text == "busy" || text.starts_with("server busy") {
        Class::Busy
    } else if login {
        Class::Login
    } else if text == "not logged in" || text == "session expired" {
        Class::Session
    } else if text == "no such message" {
        Class::NoSuchMessage
    } else if text.starts_with("message not shown: ") {
        Class::NotShown
    } else {
        Class::Server
    }
}

/// An error as `--json` prints it (`spec/dimed.md` §4.5), its members in this order.
#[derive(serde::Serialize)]
struct ErrorJson<'a> {
    /// The text of the `error:` line.
    error: String,
    /// The step that failed ([`Class`]), or `local`: an error that is no call's (writing the
    /// output).
    class: &'static str,
    /// For a message not shown: the class of `spec/envelope.md` §14, as the socket gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

fn error_json(e: &anyhow::Error) -> ErrorJson<'_> {
    let error = format!("{e:#}");
    match e.downcast_ref::<CallError>() {
        Some(c) => ErrorJson {
            error,
            class: c.class.as_str(),
            reason: match c.class {
                Class::NotShown => c.text.strip_prefix("message not shown: "),
                _ => None,
            },
        },
        None => ErrorJson { error, class: "local", reason: None },
    }
}

/// Runs a command's body; with `json`, its error is also printed on `out` as one JSON object
/// ([`error_json`]), and is still returned (a non-zero exit; `error: ...` on standard error).
fn with_json_errors(
    json: bool,
    out: &mut dyn Write,
    body: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let r = body(out);
    if let (true, Err(e)) = (json, &r) {
        writeln!(out, "{}", serde_json::to_string(&error_json(e))?)?;
    }
    r
}

/// Logs in on a new connection to the socket, then sends `req` on it: the answer to `req`.
/// Its errors are [`CallError`]s.
fn call(a: &SocketArgs, req: serde_json::Value) -> anyhow::Result<Response> {
    let password = crate::store_cmd::secret(
        a.password_file.as_deref(),
        "DIME_USER_PASSWORD",
        "account password: ",
    )
    .map_err(|e| failed(Class::Input, format!("{e:#}")))?;
    #[derive(serde::Serialize)]
    struct Login<'a> {
        op: &'static str,
        user: &'a str,
        password: &'a str,
    }
    let login = Login { op: "login", user: &a.user, password: password.as_str() };
    let mut line = zeroize::Zeroizing::new(serde_json::to_vec(&login)?);
    line.push(b'\n');
    let s = UnixStream::connect(&a.socket).map_err(|e| {
        let at = a.socket.display();
        failed(Class::Unreachable, format!("cannot reach dimed at {at} (is it running?): {e}"))
    })?;
    let mut w = &s;
    let mut r = BufReader::new(&s);
    let mut answer = |line: &[u8], login: bool| -> anyhow::Result<Response> {
        let closed = |e: std::io::Error| {
            failed(Class::Protocol, format!("dimed closed the connection: {e}"))
        };
        w.write_all(line).map_err(closed)?;
        let mut resp = String::new();
        if r.read_line(&mut resp).map_err(closed)? == 0 {
            return Err(failed(Class::Protocol, "dimed closed the connection"));
        }
        let r: Response = serde_json::from_str(&resp)
            .map_err(|e| failed(Class::Protocol, format!("dimed sent a malformed answer: {e}")))?;
        if !r.ok {
            let text = r.error.unwrap_or_else(|| "refused".into());
            return Err(failed(refused(login, &text), text));
        }
        Ok(r)
    };
    answer(&line, true)?;
    let mut line = serde_json::to_vec(&req)?;
    line.push(b'\n');
    answer(&line, false)
}

pub(crate) fn send(a: SendArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    with_json_errors(a.json, out, |out| send_one(&a, out))
}

fn send_one(a: &SendArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let body = match &a.body {
        Some(b) => b.clone(),
        None => std::io::read_to_string(std::io::stdin())
            .map_err(|e| failed(Class::Input, format!("reading the body: {e}")))?,
    };
    let mut req = json!({"op": "send", "to": a.to, "subject": a.subject, "body": body});
    if let Some(m) = &a.message_id {
        req["message_id"] = json!(m);
    }
    // Refused here rather than by dimed, which would close the connection mid-request.
    let len = serde_json::to_vec(&req)?.len() + 1;
    let limit = dime_server::submission::MAX_REQUEST_LEN;
    if len > limit {
        return Err(failed(
            Class::TooLarge,
            format!(
                "the message is {len} octets as a request, over the submission socket's limit \
                 of {limit} octets (16 MiB): send a smaller body"
            ),
        ));
    }
    let r = call(&a.socket, req)?;
    let (id, duplicate) = (r.queue_id.unwrap_or_default(), r.duplicate.unwrap_or(false));
    if a.json {
        writeln!(out, "{}", json!({"queue_id": id, "duplicate": duplicate}))?;
    } else if duplicate {
        writeln!(out, "queued as {id} before (this Message-ID): nothing sent again")?;
    } else {
        writeln!(out, "queued as {id}")?;
    }
    Ok(())
}

pub(crate) fn inbox(a: InboxArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    with_json_errors(a.json, out, |out| list(&a, out))
}

fn list(a: &InboxArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let r = call(&a.socket, json!({"op": "list"}))?;
    let msgs = r.messages.unwrap_or_default();
    if a.json {
        writeln!(out, "{}", serde_json::to_string(&msgs)?)?;
        return Ok(());
    }
    // `!`: not verified (the subject gives why: a class of `spec/envelope.md` §14, an address
    // rule or the signers' keys not found); `?`: verified, with warnings.
    for m in msgs {
        // A message that does not open names no author.
        let from = if m.from.is_empty() { "(unknown)" } else { m.from.as_str() };
        let mark = match (m.verified, m.warnings.is_empty()) {
            (false, _) => '!',
            (true, false) => '?',
            (true, true) => ' ',
        };
        writeln!(out, "{:>5}{mark} {from:<32} {:>8}  {}", m.uid, m.size, m.subject)?;
        let s = &m.signatures;
        writeln!(
            out,
            "       signatures: author tree {}, author full {}, origin {}",
            s.author_tree, s.author_full, s.origin
        )?;
        for w in &m.warnings {
            writeln!(out, "       warning: {w}")?;
        }
    }
    Ok(())
}

pub(crate) fn read(a: ReadArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    with_json_errors(a.json, out, |out| read_message(&a, out))
}

fn read_message(a: &ReadArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let r = call(&a.socket, json!({"op": "read", "uid": a.uid, "recheck": a.recheck}))?;
    let m = r.message.ok_or_else(|| failed(Class::Protocol, "dimed sent no message"))?;
    if a.json {
        writeln!(out, "{}", serde_json::to_string(&m)?)?;
        return Ok(());
    }
    writeln!(out, "From: {}\nTo: {}\nSubject: {}", m.from, m.to, m.subject)?;
    writeln!(out, "X-Dime: {} via {}, signatures verified", m.kind, m.origin)?;
    let s = &m.signatures;
    writeln!(
        out,
        "X-Dime-Signatures: author tree {}, author full {}, origin {}",
        s.author_tree, s.author_full, s.origin
    )?;
    if let Some(p) = &m.provenance {
        let when = dime_server::rfc5322_date(dime_store::Timestamp(p.recorded_at));
        writeln!(
            out,
            "X-Dime-Verified: {} {when}; author signet {}; origin signet {}",
            if p.fresh { "afresh at" } else { "as recorded at" },
            p.author_signet.as_deref().unwrap_or("none (trustful)"),
            p.origin_signet
        )?;
    }
    for w in &m.warnings {
        writeln!(out, "X-Dime-Warning: {w}")?;
    }
    writeln!(out)?;
    writeln!(out, "{}", m.body)?;
    Ok(())
}

pub(crate) fn status(a: StatusArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    with_json_errors(a.json, out, |out| show_status(&a, out))
}

fn show_status(a: &StatusArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let r = call(&a.socket, json!({"op": "status", "queue_id": a.queue_id}))?;
    let s = r.status.ok_or_else(|| failed(Class::Protocol, "dimed sent no status"))?;
    if a.json {
        writeln!(out, "{}", serde_json::to_string(&s)?)?;
        return Ok(());
    }
    let date = |t: u64| dime_server::rfc5322_date(dime_store::Timestamp(t));
    let plural = if s.attempts == 1 { "" } else { "s" };
    writeln!(out, "{} to {}: {}", s.queue_id, s.destination, s.state)?;
    writeln!(out, "queued:   {}", date(s.queued))?;
    writeln!(out, "updated:  {} ({} attempt{plural})", date(s.updated), s.attempts)?;
    if let Some(t) = s.next_attempt {
        writeln!(out, "next:     {}", date(t))?;
    }
    if let Some(r) = &s.reason {
        writeln!(out, "reason:   {r}")?;
    }
    if let Some(id) = &s.txid {
        writeln!(out, "txid:     {id}")?;
    }
    Ok(())
}
