//! The commands of an authenticated DMAP session, carried out against the mail service
//! (`spec/dmap.md` §4): each maps the service's answers and errors to IMAP responses.

use super::conn::{Conn, End};
use crate::service::{Directory, MailboxError, ReadError, Rendered, SessionError};
use dime_dmap::response::{self, FetchWriter};
use dime_dmap::{
    Command, Flag, List, Selected, SequenceSet, State, Status, StatusItem, Tag, TaggedCommand,
};
use dime_store::{MailboxId, MailboxInfo, SpecialUse, Timestamp, Uid};
use std::sync::Arc;

/// What went wrong in a command.
pub(super) enum Fail {
    /// Tagged NO with a response code.
    No(&'static str, String),
    /// Tagged BAD.
    Bad(String),
    /// The session ended: BYE and close.
    Expired,
    /// The connection is gone.
    End(End),
}

impl From<End> for Fail {
    fn from(e: End) -> Fail {
        Fail::End(e)
    }
}

impl From<SessionError> for Fail {
    fn from(_: SessionError) -> Fail {
        Fail::Expired
    }
}

impl From<MailboxError> for Fail {
    fn from(e: MailboxError) -> Fail {
        match e {
            MailboxError::Session(_) => Fail::Expired,
            MailboxError::Store(e) => store_fail(e),
        }
    }
}

impl From<ReadError> for Fail {
    fn from(e: ReadError) -> Fail {
        match e {
            ReadError::Session(_) => Fail::Expired,
            ReadError::NoSuchMessage => Fail::No("NONEXISTENT", "no such message".into()),
            ReadError::NotShown(w) => Fail::No("UNAVAILABLE", w),
            ReadError::Store(e) => store_fail(e),
        }
    }
}

/// The store's refusals as IMAP response codes (RFC 5530).
fn store_fail(e: dime_store::MailboxError) -> Fail {
    use dime_store::MailboxError as E;
    match e {
        E::SessionExpired => Fail::Expired,
        E::NoSuchMailbox => Fail::No("NONEXISTENT", "no such mailbox".into()),
        E::NoSuchMessage => Fail::No("NONEXISTENT", "no such message".into()),
        E::InboxIsFixed => Fail::No("CANNOT", "the inbox cannot be deleted or renamed".into()),
        E::MailboxExists => Fail::No("ALREADYEXISTS", "mailbox exists already".into()),
        E::SpecialUseTaken { .. } => {
            Fail::No("USEATTR", "another mailbox has that special use".into())
        }
        E::OverQuota { .. } => Fail::No("OVERQUOTA", "quota exceeded".into()),
        E::TooLarge { what, limit } => Fail::No("LIMIT", format!("{what} over {limit} octets")),
        e => {
            tracing::warn!(error = %e, "imap: store failed");
            Fail::No("SERVERBUG", "internal error".into())
        }
    }
}

pub(super) fn now() -> Timestamp {
    crate::now()
}

/// A flag as stored (`\Seen`, or the keyword as sent).
pub(super) fn flag_name(f: &Flag) -> Option<String> {
    Some(match f {
        Flag::Seen => "\\Seen".into(),
        Flag::Answered => "\\Answered".into(),
        Flag::Flagged => "\\Flagged".into(),
        Flag::Deleted => "\\Deleted".into(),
        Flag::Draft => "\\Draft".into(),
        Flag::Recent | Flag::Extension(_) => return None,
        Flag::Keyword(k) => k.clone(),
    })
}

fn special_use_of(attr: &str) -> Option<SpecialUse> {
    SpecialUse::ALL.into_iter().find(|u| u.attribute().eq_ignore_ascii_case(attr))
}

/// Whether `name` matches the LIST pattern (`*` anything, `%` anything but the delimiter).
pub(super) fn pattern_matches(pattern: &[u8], name: &[u8]) -> bool {
    // reach[n]: the pattern read so far matches name[..n]; one pass over `reach` per pattern
    // byte (every wildcard tried at every place: backtracking to the last one alone missed
    // "a/b/c" for "*/%"). Each literal takes one byte of the name, so a pattern with more
    // literals than the name has bytes cannot match, and a run of wildcards takes at most two
    // passes (as "%*"): at most 3 × name + 2 passes of name + 1 steps, names being under 1 KiB.
    if pattern.iter().filter(|c| **c != b'*' && **c != b'%').count() > name.len() {
        return false;
    }
    let mut reach = vec![false; name.len() + 1];
    reach[0] = true;
    let mut previous = 0u8;
    for &c in pattern {
        match c {
            b'*' | b'%' if previous == b'*' => {}
            b'%' if previous == b'%' => {}
            b'*' => {
                for n in 1..=name.len() {
                    reach[n] = reach[n] || reach[n - 1];
                }
            }
            b'%' => {
                for n in 1..=name.len() {
                    reach[n] = reach[n] || (reach[n - 1] && name[n - 1] != b'/');
                }
            }
            _ => {
                for n in (1..=name.len()).rev() {
                    reach[n] = reach[n - 1] && name[n - 1] == c;
                }
                reach[0] = false;
            }
        }
        // "%*" is "*": a star after a percent widens what the percent reached.
        previous = if c == b'%' && previous == b'*' { b'*' } else { c };
    }
    reach[name.len()]
}

impl<D: Directory> Conn<D> {
    /// Carries out one command and answers it.
    pub(super) async fn execute(&mut self, c: TaggedCommand) -> Result<(), End> {
        let TaggedCommand { tag, command } = c;
        let idle = matches!(command, Command::Idle);
        let r = self.run_command(&tag, command).await;
        match r {
            Ok(Some(text)) => self.server.tagged(&tag, Status::Ok, None, &text),
            Ok(None) => {}
            Err(Fail::No(code, text)) => self.server.tagged(&tag, Status::No, Some(code), &text),
            Err(Fail::Bad(text)) => self.server.tagged(&tag, Status::Bad, None, &text),
            Err(Fail::Expired) => {
                self.session = None;
                self.server.bye("session expired: log in again");
            }
            Err(Fail::End(e)) => return Err(e),
        }
        let _ = idle;
        Ok(())
    }

    pub(super) fn session(&mut self) -> Result<&mut crate::service::UserSession, Fail> {
        self.session.as_mut().ok_or(Fail::Expired)
    }

    pub(super) fn utf8(&self) -> bool {
        self.server.enabled().utf8_names()
    }

    /// A mailbox name as the client sent it, in UTF-8; `INBOX` in any case is the inbox.
    pub(super) fn decode_name(&self, raw: &str) -> Result<String, Fail> {
        let name = if self.utf8() {
            raw.to_owned()
        } else {
            dime_dmap::decode_mutf7(raw.as_bytes())
                .map_err(|_| Fail::Bad("mailbox name is not valid modified UTF-7".into()))?
        };
        let name = name.trim_end_matches('/').to_owned();
        if name.eq_ignore_ascii_case("INBOX") {
            return Ok("INBOX".into());
        }
        if let Some(rest) = name.get(..6)
            && rest.eq_ignore_ascii_case("INBOX/")
        {
            return Ok(format!("INBOX/{}", &name[6..]));
        }
        Ok(name)
    }

    pub(super) fn mailboxes(&mut self) -> Result<Vec<MailboxInfo>, Fail> {
        let now = now();
        let service = Arc::clone(&self.service);
        Ok(service.mailboxes(self.session()?, now)?)
    }

    /// The mailbox named `raw`: the same answer for one that does not exist and one that is
    /// not the user's (there is no other user's mailbox to name).
    pub(super) fn find(&mut self, raw: &str) -> Result<MailboxInfo, Fail> {
        let name = self.decode_name(raw)?;
        self.mailboxes()?
            .into_iter()
            .find(|m| m.name == name)
            .ok_or_else(|| Fail::No("NONEXISTENT", "no such mailbox".into()))
    }

    pub(super) fn selected(&mut self) -> Result<&mut Selected, Fail> {
        self.selected.as_mut().ok_or_else(|| Fail::Bad("no mailbox selected".into()))
    }

    /// Sends the updates owed for the selected mailbox (`allow_expunge`: EXPUNGE or VANISHED
    /// may be sent now).
    pub(super) async fn send_updates(&mut self, allow_expunge: bool) {
        let Some(id) = self.selected.as_ref().map(|s| s.id) else { return };
        let now = now();
        let service = Arc::clone(&self.service);
        let Some(session) = self.session.as_mut() else { return };
        let m = MailboxId(id as u32);
        // Every change of a mailbox moves its UIDNEXT, HIGHESTMODSEQ or message count: when
        // none moved since the last look and no removal waits to be told, nothing is owed,
        // and the flags of every message are not read again.
        let state = match service.mailbox(session, m, now) {
            Ok(i) => (i.uid_next, i.highest_modseq, i.messages),
            Err(MailboxError::Session(_)) => {
                self.session = None;
                self.server.bye("session expired: log in again");
                return;
            }
            Err(_) => return,
        };
        let ghosts = self.selected.as_ref().is_some_and(Selected::has_ghosts);
        if self.seen_state == Some((id, state)) && !(allow_expunge && ghosts) {
            return;
        }
        let snapshot = match service.snapshot(session, m, now) {
            Ok(s) => s,
            Err(MailboxError::Session(_)) => {
                self.session = None;
                self.server.bye("session expired: log in again");
                return;
            }
            Err(_) => return,
        };
        self.seen_state = Some((id, state));
        let enabled = self.server.enabled();
        let Some(sel) = self.selected.as_mut() else { return };
        let updates = sel.sync(&snapshot, allow_expunge, enabled.qresync);
        response::updates(self.server.output(), &updates, enabled.condstore);
    }

    async fn run_command(&mut self, tag: &Tag, command: Command) -> Result<Option<String>, Fail> {
        match command {
            Command::Noop | Command::Check => {
                self.send_updates(true).await;
                let check = matches!(command, Command::Check);
                Ok(Some(if check { "CHECK completed" } else { "NOOP completed" }.into()))
            }
            Command::Idle => {
                // The client waits in IDLE: what is owed now goes out at once, the rest as
                // changes come (the connection loop).
                self.send_updates(true).await;
                Ok(None)
            }
            Command::Select { mailbox, read_only, condstore, qresync } => {
                self.select(&mailbox, read_only, condstore, qresync).await
            }
            Command::Close | Command::Unselect => {
                let close = matches!(command, Command::Close);
                if let Some(sel) = self.selected.take()
                    && close
                    && !sel.read_only
                {
                    self.expunge_deleted(&sel, None)?;
                }
                self.cache.clear();
                self.server.set_state(State::Authenticated);
                Ok(Some(if close { "CLOSE completed" } else { "UNSELECT completed" }.into()))
            }
            Command::Create { mailbox, special_use } => {
                let name = self.decode_name(&mailbox)?;
                if name == "INBOX" {
                    return Err(Fail::No("ALREADYEXISTS", "the inbox exists".into()));
                }
                if name.is_empty() {
                    return Err(Fail::Bad("empty mailbox name".into()));
                }
                let role = match special_use.as_slice() {
                    [] => None,
                    [one] => Some(
                        special_use_of(one)
                            .ok_or_else(|| Fail::No("USEATTR", "unknown special use".into()))?,
                    ),
                    _ => return Err(Fail::No("USEATTR", "one special use per mailbox".into())),
                };
                let now = now();
                let service = Arc::clone(&self.service);
                service.create_mailbox_with(self.session()?, &name, role, now)?;
                Ok(Some("CREATE completed".into()))
            }
            Command::Delete(mailbox) => {
                let m = self.find(&mailbox)?;
                if m.id == MailboxId::INBOX {
                    return Err(Fail::No("CANNOT", "the inbox cannot be deleted".into()));
                }
                if self.selected.as_ref().is_some_and(|s| s.id == u64::from(m.id.0)) {
                    self.selected = None;
                    self.server.set_state(State::Authenticated);
                }
                let now = now();
                let service = Arc::clone(&self.service);
                service.delete_mailbox(self.session()?, m.id, now)?;
                Ok(Some("DELETE completed".into()))
            }
            Command::Rename { from, to } => {
                let m = self.find(&from)?;
                let to = self.decode_name(&to)?;
                let now = now();
                let service = Arc::clone(&self.service);
                if m.id == MailboxId::INBOX {
                    // RFC 9051 §6.3.6: the inbox's messages move to the new mailbox, and the
                    // inbox stays, empty.
                    let session = self.session()?;
                    let new = service.create_mailbox_with(session, &to, None, now)?;
                    let uids: Vec<Uid> =
                        service.entries(session, m.id, now)?.iter().map(|e| e.uid).collect();
                    if !uids.is_empty() {
                        service.copy_notify(session, m.id, &uids, new, true, now)?;
                    }
                } else {
                    let children: Vec<MailboxInfo> = self
                        .mailboxes()?
                        .into_iter()
                        .filter(|c| c.name.starts_with(&format!("{}/", m.name)))
                        .collect();
                    // The mailbox, then its children, in one transaction.
                    let news: Vec<(MailboxId, String)> = std::iter::once((m.id, to.clone()))
                        .chain(
                            children
                                .iter()
                                .map(|c| (c.id, format!("{to}{}", &c.name[m.name.len()..]))),
                        )
                        .collect();
                    let renames: Vec<(MailboxId, &str)> =
                        news.iter().map(|(id, n)| (*id, n.as_str())).collect();
                    service.rename_mailbox(self.session()?, &renames, now)?;
                }
                Ok(Some("RENAME completed".into()))
            }
            Command::Subscribe(mailbox) => self.subscribe(&mailbox, true),
            Command::Unsubscribe(mailbox) => self.subscribe(&mailbox, false),
            Command::List(list) => self.list(list, "LIST").await,
            Command::Lsub { reference, pattern } => {
                let mut list = List { reference, patterns: vec![pattern], ..List::default() };
                list.selection.subscribed = true;
                self.list(list, "LSUB").await
            }
            Command::Namespace => {
                self.server.output().extend_from_slice(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
                Ok(Some("NAMESPACE completed".into()))
            }
            Command::Status { mailbox, items } => {
                let m = self.find(&mailbox)?;
                let values = self.status_values(&m, &items).await?;
                let name = m.name.clone();
                let utf8 = self.utf8();
                response::status(self.server.output(), &name, utf8, &values);
                Ok(Some("STATUS completed".into()))
            }
            Command::Append { mailbox, flags, date, message, binary: _ } => {
                let m = match self.find(&mailbox) {
                    Ok(m) => m,
                    Err(Fail::No(_, _)) => {
                        return Err(Fail::No("TRYCREATE", "no such mailbox".into()));
                    }
                    Err(e) => return Err(e),
                };
                if message.len() as u64 > self.options.append_limit {
                    return Err(Fail::No("TOOBIG", "message over the append limit".into()));
                }
                let flags: Vec<String> = flags.iter().filter_map(flag_name).collect();
                let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
                let date = date.map(|d| Timestamp(u64::try_from(d.unix).unwrap_or(0)));
                let now = now();
                let service = Arc::clone(&self.service);
                let appended = service
                    .append(self.session()?, m.id, &message, &flags, date, now)
                    .map_err(|e| match e {
                    crate::service::AppendError::Session(_) => Fail::Expired,
                    crate::service::AppendError::Refused(w) => Fail::No("CANNOT", w),
                    crate::service::AppendError::Store(e) => store_fail(e),
                })?;
                if self.selected.as_ref().is_some_and(|s| s.id == u64::from(m.id.0)) {
                    self.send_updates(true).await;
                }
                self.server.tagged(
                    tag,
                    Status::Ok,
                    Some(&format!("APPENDUID {} {}", appended.uid_validity, appended.uid.0)),
                    "APPEND completed",
                );
                Ok(None)
            }
            Command::Expunge | Command::UidExpunge(_) => {
                let only = match &command {
                    Command::UidExpunge(set) => Some(set.clone()),
                    _ => None,
                };
                let sel = self.selected()?.clone();
                if sel.read_only {
                    return Err(Fail::No("READ-ONLY", "mailbox is read-only".into()));
                }
                self.expunge_deleted(&sel, only.as_ref())?;
                self.send_updates(true).await;
                Ok(Some("EXPUNGE completed".into()))
            }
            Command::Search(s) => self.search(tag, s).await,
            Command::Fetch(f) => self.fetch(f).await,
            Command::Store(s) => self.store(tag, s).await,
            Command::Copy { uid, set, mailbox, is_move } => {
                self.copy(tag, uid, &set, &mailbox, is_move).await
            }
            // The machine answers these itself.
            Command::Capability
            | Command::Logout
            | Command::StartTls
            | Command::Authenticate { .. }
            | Command::Login { .. }
            | Command::Enable(_)
            | Command::Id(_) => Err(Fail::Bad("unexpected command".into())),
        }
    }
}

impl<D: Directory> Conn<D> {
    fn subscribe(&mut self, mailbox: &str, on: bool) -> Result<Option<String>, Fail> {
        let m = self.find(mailbox)?;
        let now = now();
        let service = Arc::clone(&self.service);
        service.set_subscribed(self.session()?, m.id, on, now)?;
        Ok(Some(if on { "SUBSCRIBE completed" } else { "UNSUBSCRIBE completed" }.into()))
    }

    /// Expunges the messages of `sel` flagged `\Deleted` now (within `only` when given):
    /// CLOSE, EXPUNGE and UID EXPUNGE.
    fn expunge_deleted(&mut self, sel: &Selected, only: Option<&SequenceSet>) -> Result<(), Fail> {
        let deleted = self.deleted_uids(sel, only)?;
        if !deleted.is_empty() {
            let now = now();
            let service = Arc::clone(&self.service);
            service.expunge_notify(self.session()?, MailboxId(sel.id as u32), &deleted, now)?;
        }
        Ok(())
    }

    /// The UIDs of `sel` flagged `\Deleted` now (within `only` when given).
    fn deleted_uids(
        &mut self,
        sel: &Selected,
        only: Option<&SequenceSet>,
    ) -> Result<Vec<Uid>, Fail> {
        let now = now();
        let service = Arc::clone(&self.service);
        let snapshot = service.snapshot(self.session()?, MailboxId(sel.id as u32), now)?;
        let allowed: Option<Vec<u32>> =
            only.map(|set| sel.resolve(set, true).into_iter().map(|(_, u)| u).collect());
        Ok(snapshot
            .iter()
            .filter(|e| e.flags.iter().any(|f| f == "\\Deleted"))
            .filter(|e| allowed.as_ref().is_none_or(|a| a.binary_search(&e.uid).is_ok()))
            .map(|e| Uid(e.uid))
            .collect())
    }

    async fn select(
        &mut self,
        raw: &str,
        read_only: bool,
        condstore: bool,
        qresync: Option<dime_dmap::Qresync>,
    ) -> Result<Option<String>, Fail> {
        if self.selected.take().is_some() {
            // RFC 7162 §3.2.11 / RFC 9051 §6.3.2: the previous mailbox is closed first.
            self.server.output().extend_from_slice(b"* OK [CLOSED] previous mailbox closed\r\n");
            self.server.set_state(State::Authenticated);
            self.cache.clear();
        }
        if qresync.is_some() && !self.server.enabled().qresync {
            return Err(Fail::Bad("QRESYNC is not enabled".into()));
        }
        if condstore {
            self.server.enable_condstore();
        }
        let m = self.find(raw)?;
        let now = now();
        let service = Arc::clone(&self.service);
        let snapshot = service.snapshot(self.session()?, m.id, now)?;
        let info = service.mailbox(self.session()?, m.id, now)?;
        let sel = Selected::new(u64::from(m.id.0), info.uid_validity, read_only, &snapshot);
        let enabled = self.server.enabled();
        let mut keywords: Vec<String> = snapshot
            .iter()
            .flat_map(|e| e.flags.iter())
            .filter(|f| !f.starts_with('\\'))
            .cloned()
            .collect();
        keywords.sort();
        keywords.dedup();
        let out = self.server.output();
        response::mailbox_flags(out, &keywords, read_only);
        out.extend_from_slice(format!("* {} EXISTS\r\n", sel.exists()).as_bytes());
        if !enabled.rev2 {
            out.extend_from_slice(b"* 0 RECENT\r\n");
            if let Some(i) = snapshot.iter().position(|e| !e.flags.iter().any(|f| f == "\\Seen")) {
                out.extend_from_slice(
                    format!("* OK [UNSEEN {}] first unseen\r\n", i + 1).as_bytes(),
                );
            }
        }
        out.extend_from_slice(
            format!("* OK [UIDVALIDITY {}] UIDs valid\r\n", info.uid_validity).as_bytes(),
        );
        out.extend_from_slice(
            format!("* OK [UIDNEXT {}] predicted next UID\r\n", info.uid_next).as_bytes(),
        );
        let highest = info.highest_modseq.max(1);
        if enabled.condstore || condstore {
            out.extend_from_slice(format!("* OK [HIGHESTMODSEQ {highest}] highest\r\n").as_bytes());
        }
        if enabled.rev2 {
            let utf8 = enabled.utf8_names();
            response::list(out, "LIST", &[], &info.name, utf8, None);
        }
        // QRESYNC: what changed since the client's state (RFC 7162 §3.2.5).
        if let Some(q) = qresync
            && q.uid_validity == info.uid_validity
        {
            let vanished = service.vanished_since(self.session()?, m.id, q.modseq, now)?;
            let ranges: Vec<(u32, u32)> = vanished.iter().map(|(a, b)| (a.0, b.0)).collect();
            // Only UIDs the client says it knows, when it says (RFC 7162 §3.2.5.1).
            let all = dime_dmap::SequenceSet::Ranges(vec![(
                dime_dmap::SeqBound::Value(1),
                dime_dmap::SeqBound::Star,
            )]);
            let known = q.known_uids.as_ref().unwrap_or(&all);
            let v =
                dime_dmap::clip_uid_ranges(&ranges, known, info.uid_next.saturating_sub(1), &[]);
            let out = self.server.output();
            response::vanished_earlier(out, &v);
            for e in snapshot.iter().filter(|e| e.modseq > q.modseq) {
                if let Some(seq) = sel.seq_of(e.uid) {
                    let mut w = FetchWriter::new(out, seq);
                    w.uid(e.uid);
                    w.flags(&e.flags);
                    w.modseq(e.modseq);
                    w.finish();
                }
            }
        }
        self.selected = Some(sel);
        self.server.set_state(State::Selected);
        let code = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        Ok(Some(format!("[{code}] {} completed", if read_only { "EXAMINE" } else { "SELECT" })))
    }

    async fn list(&mut self, list: List, verb: &str) -> Result<Option<String>, Fail> {
        let utf8 = self.utf8();
        if list.patterns.len() == 1 && list.patterns[0].is_empty() && verb == "LIST" {
            // The hierarchy delimiter and root (RFC 9051 §6.3.9).
            self.server.output().extend_from_slice(b"* LIST (\\Noselect) \"/\" \"\"\r\n");
            return Ok(Some("LIST completed".into()));
        }
        let all = self.mailboxes()?;
        let reference = self.decode_name(&list.reference).unwrap_or_default();
        let mut patterns = Vec::new();
        for p in &list.patterns {
            let p = if utf8 {
                p.clone()
            } else {
                dime_dmap::decode_mutf7(p.as_bytes())
                    .map_err(|_| Fail::Bad("pattern is not valid modified UTF-7".into()))?
            };
            let full = if reference.is_empty() || p.starts_with('/') {
                p
            } else {
                format!("{reference}/{p}")
            };
            patterns.push(full);
        }
        let matches = |name: &str| {
            patterns.iter().any(|p| {
                let inbox_p = p.eq_ignore_ascii_case("inbox");
                (inbox_p && name == "INBOX") || pattern_matches(p.as_bytes(), name.as_bytes())
            })
        };
        let sel = &list.selection;
        let ret = &list.returns;
        let mut lines: Vec<(Vec<&'static str>, MailboxInfo)> = Vec::new();
        for m in &all {
            if !matches(&m.name) {
                continue;
            }
            if sel.subscribed && !m.subscribed {
                continue;
            }
            if sel.special_use && m.special_use.is_none() {
                continue;
            }
            let children = all.iter().any(|c| c.name.starts_with(&format!("{}/", m.name)));
            let mut attrs: Vec<&'static str> = Vec::new();
            if verb == "LIST" || ret.children {
                attrs.push(if children { "\\HasChildren" } else { "\\HasNoChildren" });
            }
            if (sel.subscribed || ret.subscribed) && m.subscribed && verb == "LIST" {
                attrs.push("\\Subscribed");
            }
            if let Some(u) = m.special_use {
                attrs.push(u.attribute());
            }
            lines.push((attrs, m.clone()));
        }
        // A level of hierarchy that is no mailbox itself ("a" of "a/b") is listed \Noselect
        // where a pattern matches it (RFC 9051 §6.3.9, as Dovecot does): clients browse with
        // `LIST "" "%"` and would otherwise never reach what is below it. LSUB likewise lists
        // \Noselect a level that is not subscribed above a subscribed mailbox the pattern
        // misses ("a" of "a/b" for "%", RFC 3501 §6.3.9); LIST (SUBSCRIBED RECURSIVEMATCH)
        // lists it with CHILDINFO (RFC 5258 §3.5; neomutt's browser of subscribed folders).
        let lsub = verb == "LSUB";
        let recursive = verb == "LIST" && sel.subscribed && sel.recursive_match;
        let plain = verb == "LIST" && !sel.subscribed;
        if (lsub || recursive || plain) && !sel.special_use {
            let mut implied: Vec<(&str, bool)> = Vec::new();
            for m in &all {
                // (Only for a subscribed mailbox the pattern misses, as Dovecot does.)
                if !plain && (!m.subscribed || matches(&m.name)) {
                    continue;
                }
                for (i, _) in m.name.match_indices('/') {
                    let level = &m.name[..i];
                    let existing = all.iter().find(|x| x.name == level);
                    if !level.is_empty()
                        && !implied.iter().any(|(l, _)| *l == level)
                        && existing.is_none_or(|x| !plain && !x.subscribed)
                        && matches(level)
                    {
                        implied.push((level, existing.is_some()));
                    }
                }
            }
            for (level, exists) in implied {
                let (attrs, extended): (&[&str], _) = if lsub {
                    (&["\\Noselect"], None)
                } else if recursive {
                    let attrs: &[&str] = if exists {
                        &["\\HasChildren"]
                    } else {
                        &["\\NonExistent", "\\HasChildren"]
                    };
                    (attrs, Some("(\"CHILDINFO\" (\"SUBSCRIBED\"))"))
                } else {
                    (&["\\Noselect", "\\HasChildren"], None)
                };
                response::list(self.server.output(), verb, attrs, level, utf8, extended);
            }
        }
        for (attrs, m) in lines {
            response::list(self.server.output(), verb, &attrs, &m.name, utf8, None);
            if let Some(items) = &ret.status {
                let values = self.status_values(&m, items).await?;
                response::status(self.server.output(), &m.name, utf8, &values);
            }
        }
        Ok(Some(format!("{verb} completed")))
    }

    async fn status_values(
        &mut self,
        m: &MailboxInfo,
        items: &[StatusItem],
    ) -> Result<Vec<(StatusItem, u64)>, Fail> {
        let now = now();
        let service = Arc::clone(&self.service);
        let needs_flags =
            items.iter().any(|i| matches!(i, StatusItem::Unseen | StatusItem::Deleted));
        let snapshot =
            if needs_flags { service.snapshot(self.session()?, m.id, now)? } else { Vec::new() };
        let mut out = Vec::new();
        for i in items {
            let v = match i {
                StatusItem::Messages => u64::from(m.messages),
                StatusItem::UidNext => u64::from(m.uid_next),
                StatusItem::UidValidity => u64::from(m.uid_validity),
                StatusItem::Unseen => {
                    snapshot.iter().filter(|e| !e.flags.iter().any(|f| f == "\\Seen")).count()
                        as u64
                }
                StatusItem::Deleted => {
                    snapshot.iter().filter(|e| e.flags.iter().any(|f| f == "\\Deleted")).count()
                        as u64
                }
                StatusItem::Size => {
                    let uids: Vec<Uid> = service
                        .entries(self.session()?, m.id, now)?
                        .iter()
                        .map(|e| e.uid)
                        .collect();
                    let mut total = 0u64;
                    for u in uids {
                        total += self.rendered(m.id, u).await?.bytes.len() as u64;
                    }
                    total
                }
                StatusItem::HighestModSeq => m.highest_modseq.max(1),
                StatusItem::Recent => 0,
                StatusItem::AppendLimit => self.options.append_limit,
            };
            out.push((*i, v));
        }
        Ok(out)
    }

    async fn copy(
        &mut self,
        tag: &Tag,
        uid: bool,
        set: &SequenceSet,
        mailbox: &str,
        is_move: bool,
    ) -> Result<Option<String>, Fail> {
        let sel = self.selected()?.clone();
        if is_move && sel.read_only {
            return Err(Fail::No("READ-ONLY", "mailbox is read-only".into()));
        }
        let dest = match self.find(mailbox) {
            Ok(m) => m,
            Err(Fail::No(_, _)) => return Err(Fail::No("TRYCREATE", "no such mailbox".into())),
            Err(e) => return Err(e),
        };
        let uids: Vec<Uid> = sel.resolve(set, uid).into_iter().map(|(_, u)| Uid(u)).collect();
        if uids.is_empty() {
            return Ok(Some(format!("{} completed", if is_move { "MOVE" } else { "COPY" })));
        }
        let now = now();
        let service = Arc::clone(&self.service);
        let pairs = service.copy_notify(
            self.session()?,
            MailboxId(sel.id as u32),
            &uids,
            dest.id,
            is_move,
            now,
        )?;
        let src: Vec<u32> = pairs.iter().map(|(a, _)| a.0).collect();
        let dst: Vec<u32> = pairs.iter().map(|(_, b)| b.0).collect();
        let mut code = format!("COPYUID {} ", dest.uid_validity);
        let mut v = Vec::new();
        dime_dmap::encode_uid_set(&mut v, &src);
        code.push_str(&String::from_utf8_lossy(&v));
        code.push(' ');
        v.clear();
        // Destination UIDs in the order of the source UIDs (RFC 4315 §3): not compressed.
        code.push_str(&dst.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
        if is_move {
            self.server.output().extend_from_slice(format!("* OK [{code}] moved\r\n").as_bytes());
            self.send_updates(true).await;
            self.server.tagged(tag, Status::Ok, None, "MOVE completed");
        } else {
            if u64::from(dest.id.0) == sel.id {
                // Copied into the selected mailbox: its EXISTS now, as after an APPEND.
                self.send_updates(true).await;
            }
            self.server.tagged(tag, Status::Ok, Some(&code), "COPY completed");
        }
        Ok(None)
    }

    /// Message `uid` of mailbox `m` rendered, from the session's cache or the service.
    pub(super) async fn rendered(&mut self, m: MailboxId, uid: Uid) -> Result<Arc<Rendered>, Fail> {
        if let Some(r) = self.cache.get(m.0, uid.0) {
            return Ok(r);
        }
        let now = now();
        let service = Arc::clone(&self.service);
        let r = Arc::new(service.render(self.session()?, m, uid, now).await?);
        self.cache.put(m.0, uid.0, Arc::clone(&r));
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::pattern_matches;

    #[test]
    fn list_patterns() {
        let m = |p: &str, n: &str| pattern_matches(p.as_bytes(), n.as_bytes());
        // Before: only the last wildcard was ever extended, so "*/%" missed "a/b/c".
        assert!(m("*/%", "a/b/c"));
        assert!(m("*/%", "a/b"));
        assert!(!m("*/%", "a"));
        assert!(m("%/*", "a/b/c"));
        assert!(m("a/%/c", "a/b/c"));
        assert!(!m("a/%", "a/b/c"));
        assert!(m("%", "Work"));
        assert!(!m("%", "a/b"));
        assert!(m("*", "a/b"));
        assert!(m("%*", "a/b"));
        assert!(m("*%", "a/b"));
        assert!(m("%%", "ab"));
        assert!(!m("%%", "a/b"));
        assert!(m("*b*", "a/b/c"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(!m("abc", "ab"));
        assert!(m("a*c*e", "abcde"));
        assert!(!m("a*c*e", "abcdef"));
        assert!(m("Entw\u{fc}rfe", "Entw\u{fc}rfe"));
        // The worst a client can ask: a long name, a pattern of alternating wildcards.
        let name = "x/".repeat(512);
        assert!(m(&"%*".repeat(4000), &name));
        assert!(!m(&format!("{}y", "*x".repeat(511)), &name));
    }
}
