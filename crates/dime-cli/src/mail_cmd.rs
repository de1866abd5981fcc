//! `dime send|inbox|read|status`: a user's mail through `dimed`'s local submission socket
//! (`spec/dimed.md` §4).

use anyhow::{Context, bail};
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
    /// The text body (else read from standard input).
    #[arg(long)]
    pub(crate) body: Option<String>,
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

/// Logs in on a new connection to the socket, then sends `req` on it: the answer to `req`.
fn call(a: &SocketArgs, req: serde_json::Value) -> anyhow::Result<Response> {
    let password = crate::store_cmd::secret(
        a.password_file.as_deref(),
        "DIME_USER_PASSWORD",
        "account password: ",
    )?;
    #[derive(serde::Serialize)]
    struct Login<'a> {
        op: &'static str,
        user: &'a str,
        password: &'a str,
    }
    let login = Login { op: "login", user: &a.user, password: password.as_str() };
    let mut line = zeroize::Zeroizing::new(serde_json::to_vec(&login)?);
    line.push(b'\n');
    let s = UnixStream::connect(&a.socket).with_context(|| {
        format!("cannot reach dimed at {} (is it running?)", a.socket.display())
    })?;
    let mut w = &s;
    let mut r = BufReader::new(&s);
    let mut answer = |line: &[u8]| -> anyhow::Result<Response> {
        w.write_all(line)?;
        let mut resp = String::new();
        r.read_line(&mut resp).context("dimed closed the connection")?;
        let r: Response = serde_json::from_str(&resp).context("dimed sent a malformed answer")?;
        if !r.ok {
            bail!("{}", r.error.unwrap_or_else(|| "refused".into()));
        }
        Ok(r)
    };
    answer(&line)?;
    let mut line = serde_json::to_vec(&req)?;
    line.push(b'\n');
    answer(&line)
}

pub(crate) fn send(a: SendArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let body = match a.body {
        Some(b) => b,
        None => std::io::read_to_string(std::io::stdin()).context("reading the body")?,
    };
    let r = call(&a.socket, json!({"op": "send", "to": a.to, "subject": a.subject, "body": body}))?;
    writeln!(out, "queued as {}", r.queue_id.unwrap_or_default())?;
    Ok(())
}

pub(crate) fn inbox(a: InboxArgs, out: &mut dyn Write) -> anyhow::Result<()> {
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
    let r = call(&a.socket, json!({"op": "read", "uid": a.uid}))?;
    let m = r.message.context("dimed sent no message")?;
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
    for w in &m.warnings {
        writeln!(out, "X-Dime-Warning: {w}")?;
    }
    writeln!(out)?;
    writeln!(out, "{}", m.body)?;
    Ok(())
}

pub(crate) fn status(a: StatusArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let r = call(&a.socket, json!({"op": "status", "queue_id": a.queue_id}))?;
    let s = r.status.context("dimed sent no status")?;
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
