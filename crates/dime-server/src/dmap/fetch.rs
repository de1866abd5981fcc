//! FETCH, STORE and SEARCH over the selected mailbox (`spec/dmap.md` §4.3, §5.2): each
//! message rendered only when an item or key needs its content, the output written as it is
//! made (backpressure), `\Seen` set in one durable write per command.

use super::conn::Conn;
use super::exec::{Fail, flag_name, now};
use super::search;
use crate::service::Directory;
use dime_dmap::response::{self, Esearch, FetchWriter};
use dime_dmap::{
    DateTime, Fetch, FetchItem, MimeTree, SearchReturn, Section, SectionText, Status, Store,
    StoreMode, Tag,
};
use dime_store::{MailboxId, Uid};
use std::sync::Arc;

/// Messages a FETCH renders in one pass on the blocking pool.
const FETCH_BATCH: usize = 64;
/// Octets a FETCH renders in one pass at most (then the rest of the batch one by one).
const FETCH_BATCH_OCTETS: usize = 2 * 1024 * 1024;

/// Batches of one FETCH rendering at once on the blocking pool while the connection writes the
/// one before them: the machine's cores, at most 4 (so a FETCH holds at most 5 batches,
/// 10 MiB of renderings, beside the session's cache).
fn render_ahead() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4))
}

/// The UIDs whose flags a command reads one by one instead of the whole mailbox's: when it
/// names at most this many, or under a quarter of the mailbox.
const FEW_UIDS: usize = 256;

/// The UIDs of `targets` to look up alone, or `None` to read the whole mailbox's flags (a
/// command that names most of it).
fn few(targets: &[(u32, u32)], mailbox_len: usize) -> Option<Vec<Uid>> {
    (targets.len() <= FEW_UIDS || targets.len() < mailbox_len / 4)
        .then(|| targets.iter().map(|(_, u)| Uid(*u)).collect())
}

/// A batch of messages rendered the fast way.
type Batch = Vec<(Uid, crate::service::Rendered)>;
/// A batch rendering on the blocking pool.
type Pending = tokio::task::JoinHandle<Result<Batch, crate::service::ReadError>>;

/// Whether a FETCH item needs the message rendered.
fn needs_content(i: &FetchItem) -> bool {
    !matches!(i, FetchItem::Flags | FetchItem::Uid | FetchItem::ModSeq | FetchItem::InternalDate)
}

/// Whether a FETCH item sets `\Seen` (RFC 9051 §6.4.5).
fn sets_seen(i: &FetchItem) -> bool {
    matches!(
        i,
        FetchItem::BodySection { peek: false, .. }
            | FetchItem::Binary { peek: false, .. }
            | FetchItem::Rfc822
            | FetchItem::Rfc822Text
    )
}

/// A section as the response names it: `BODY[1.HEADER.FIELDS (From)]`.
fn section_label(s: &Section) -> String {
    let mut out: Vec<String> = s.part.iter().map(u32::to_string).collect();
    if let Some(t) = &s.text {
        out.push(match t {
            SectionText::Header => "HEADER".into(),
            SectionText::Text => "TEXT".into(),
            SectionText::Mime => "MIME".into(),
            SectionText::HeaderFields(f) => format!("HEADER.FIELDS ({})", quote_fields(f)),
            SectionText::HeaderFieldsNot(f) => {
                format!("HEADER.FIELDS.NOT ({})", quote_fields(f))
            }
        });
    }
    out.join(".")
}

fn quote_fields(f: &[String]) -> String {
    f.iter()
        .map(|n| {
            let mut v = Vec::new();
            dime_dmap::encode_astring(&mut v, n.as_bytes());
            String::from_utf8_lossy(&v).into_owned()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn partial_of(data: &[u8], partial: Option<(u32, u32)>) -> &[u8] {
    match partial {
        None => data,
        Some((off, len)) => {
            let start = (off as usize).min(data.len());
            let end = start.saturating_add(len as usize).min(data.len());
            &data[start..end]
        }
    }
}

fn part_label(part: &[u32]) -> String {
    part.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
}

impl<D: Directory> Conn<D> {
    /// The UIDs of `chunk` whose rendering the session's cache does not hold.
    fn not_cached(&self, m: MailboxId, chunk: &[(u32, u32)]) -> Vec<Uid> {
        chunk
            .iter()
            .filter(|(_, u)| self.cache.get(m.0, *u).is_none())
            .map(|(_, u)| Uid(*u))
            .collect()
    }

    pub(super) async fn store(&mut self, tag: &Tag, s: Store) -> Result<Option<String>, Fail> {
        let sel = self.selected()?.clone();
        if sel.read_only {
            return Err(Fail::No("READ-ONLY", "mailbox is read-only".into()));
        }
        if s.unchanged_since.is_some() {
            self.server.enable_condstore();
        }
        let targets = sel.resolve(&s.set, s.uid);
        let now = now();
        let service = Arc::clone(&self.service);
        let only = few(&targets, sel.exists() as usize);
        let m = MailboxId(sel.id as u32);
        let snapshot = service.snapshot_of(self.session()?, m, only.as_deref(), now)?;
        let given: Vec<String> = s.flags.iter().filter_map(flag_name).collect();
        let mut changes: Vec<(Uid, Vec<String>)> = Vec::new();
        let mut unchanged: Vec<(u32, u32, Vec<String>, u64)> = Vec::new();
        for (seq, uid) in &targets {
            let Ok(i) = snapshot.binary_search_by_key(uid, |e| e.uid) else { continue };
            let cur = &snapshot[i].flags;
            let mut new: Vec<String> = match s.mode {
                StoreMode::Replace => given.clone(),
                StoreMode::Add => cur.iter().chain(given.iter()).cloned().collect(),
                StoreMode::Remove => cur.iter().filter(|f| !given.contains(f)).cloned().collect(),
            };
            new.sort();
            new.dedup();
            if &new == cur && s.unchanged_since.is_none() {
                unchanged.push((*seq, *uid, new, snapshot[i].modseq));
                continue;
            }
            changes.push((Uid(*uid), new));
        }
        let stored = if changes.is_empty() {
            dime_store::FlagsStored { applied: Vec::new(), modified: Vec::new() }
        } else {
            service.store_flags(
                self.session()?,
                MailboxId(sel.id as u32),
                &changes,
                s.unchanged_since,
                now,
            )?
        };
        let condstore = self.server.enabled().condstore;
        let Some(selm) = self.selected.as_mut() else { return Err(Fail::Expired) };
        let mut answers: Vec<(u32, u32, Vec<String>, u64)> = unchanged;
        for (uid, modseq) in &stored.applied {
            if let Some((_, flags)) = changes.iter().find(|(u, _)| u == uid) {
                selm.note_own(uid.0, *modseq);
                if let Some(seq) = selm.seq_of(uid.0) {
                    answers.push((seq, uid.0, flags.clone(), *modseq));
                }
            }
        }
        answers.sort_by_key(|a| a.0);
        let out = self.server.output();
        for (seq, uid, flags, modseq) in answers {
            // .SILENT still reports MODSEQ under UNCHANGEDSINCE (RFC 7162 §3.1.3).
            if s.silent && s.unchanged_since.is_none() {
                continue;
            }
            let mut w = FetchWriter::new(out, seq);
            if s.uid {
                w.uid(uid);
            }
            if !s.silent {
                w.flags(&flags);
            }
            if condstore {
                w.modseq(modseq);
            }
            w.finish();
        }
        self.send_updates(false).await;
        if stored.modified.is_empty() {
            Ok(Some("STORE completed".into()))
        } else {
            let nums: Vec<u32> = if s.uid {
                stored.modified.iter().map(|u| u.0).collect()
            } else {
                let sel = self.selected()?;
                stored.modified.iter().filter_map(|u| sel.seq_of(u.0)).collect()
            };
            let mut v = Vec::new();
            dime_dmap::encode_uid_set(&mut v, &nums);
            self.server.tagged(
                tag,
                Status::Ok,
                Some(&format!("MODIFIED {}", String::from_utf8_lossy(&v))),
                "conditional STORE failed for some",
            );
            Ok(None)
        }
    }

    pub(super) async fn fetch(&mut self, f: Fetch) -> Result<Option<String>, Fail> {
        let sel = self.selected()?.clone();
        if f.changed_since.is_some() {
            self.server.enable_condstore();
        }
        let enabled = self.server.enabled();
        let targets = sel.resolve(&f.set, f.uid);
        let m = MailboxId(sel.id as u32);
        let now = now();
        let service = Arc::clone(&self.service);
        if f.vanished {
            if !(f.uid && enabled.qresync && f.changed_since.is_some()) {
                return Err(Fail::Bad("VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE".into()));
            }
            let since = f.changed_since.unwrap_or(0);
            let gone = service.vanished_since(self.session()?, m, since, now)?;
            let ranges: Vec<(u32, u32)> = gone.iter().map(|(a, b)| (a.0, b.0)).collect();
            // `*` reaches past the largest UID still there: a removed last message is reported
            // too (reporting more is allowed, RFC 7162 §3.2.6).
            let v = dime_dmap::clip_uid_ranges(&ranges, &f.set, u32::MAX, &sel.saved);
            response::vanished_earlier(self.server.output(), &v);
        }
        let content = f.items.iter().any(needs_content);
        let wants_date = f.items.iter().any(|i| matches!(i, FetchItem::InternalDate));
        let entries =
            if wants_date { service.entries(self.session()?, m, now)? } else { Vec::new() };
        let seen = !sel.read_only && f.items.iter().any(sets_seen);
        // Whether an item needs the message's MIME structure (BODY[] and RFC822 do not).
        let parse = f.items.iter().any(|i| match i {
            FetchItem::BodySection { section, .. } => {
                !(section.part.is_empty() && section.text.is_none())
            }
            FetchItem::BodyStructure
            | FetchItem::Body
            | FetchItem::Binary { .. }
            | FetchItem::BinarySize(_)
            | FetchItem::Rfc822Header
            | FetchItem::Rfc822Text => true,
            _ => false,
        });
        // Flags and MODSEQs as they are now, read once when an item, CHANGEDSINCE, CONDSTORE
        // or `\Seen` needs them (the session keeps only UIDs).
        let needs_state = seen
            || enabled.condstore
            || f.changed_since.is_some()
            || f.items.iter().any(|i| matches!(i, FetchItem::Flags | FetchItem::ModSeq));
        let state = if needs_state {
            let only = few(&targets, sel.exists() as usize);
            service.snapshot_of(self.session()?, m, only.as_deref(), now)?
        } else {
            Vec::new()
        };
        let mut seen_changes: Vec<(Uid, Vec<String>)> = Vec::new();
        let chunks: Vec<&[(u32, u32)]> = targets.chunks(FETCH_BATCH).collect();
        // The chunks' messages with a record and a read overlay are rendered in batches off
        // the async workers (one hand-off per chunk, not per message), the next `ahead` chunks
        // at once on the blocking pool while this one is written, each with its copy of the
        // session's display key.
        let key = if content { Some(self.session()?.display_key(now)?) } else { None };
        let ahead = if crate::multi_threaded() { render_ahead() } else { 0 };
        let mut pending: std::collections::VecDeque<Option<Pending>> =
            std::collections::VecDeque::new();
        let mut spawned = 0;
        for (i, chunk) in chunks.iter().enumerate() {
            let mut pre: std::collections::HashMap<u32, Arc<crate::service::Rendered>> =
                std::collections::HashMap::new();
            if let Some(key) = &key {
                let got = if ahead == 0 {
                    let need = self.not_cached(m, chunk);
                    if need.is_empty() {
                        Vec::new()
                    } else {
                        crate::in_place(|| {
                            service.render_recorded(key, m, &need, FETCH_BATCH_OCTETS)
                        })?
                    }
                } else {
                    while spawned < chunks.len() && spawned <= i + ahead {
                        let need = self.not_cached(m, chunks[spawned]);
                        pending.push_back((!need.is_empty()).then(|| {
                            let svc = Arc::clone(&service);
                            let key = key.duplicate();
                            tokio::task::spawn_blocking(move || {
                                svc.render_recorded(&key, m, &need, FETCH_BATCH_OCTETS)
                            })
                        }));
                        spawned += 1;
                    }
                    match pending.pop_front().flatten() {
                        Some(h) => h.await.map_err(|_| Fail::Expired)??,
                        None => Vec::new(),
                    }
                };
                pre = got.into_iter().map(|(u, r)| (u.0, Arc::new(r))).collect();
            }
            for &(seq, uid) in chunk.iter() {
                let now_state = state.binary_search_by_key(&uid, |e| e.uid).ok().map(|i| &state[i]);
                if needs_state && now_state.is_none() {
                    // Removed since the last update: a ghost until it may be told.
                    continue;
                }
                let modseq = now_state.map_or(0, |e| e.modseq);
                if let Some(cs) = f.changed_since
                    && modseq <= cs
                {
                    continue;
                }
                let rendered = if let Some(r) = pre.remove(&uid) {
                    self.cache.put(m.0, uid, Arc::clone(&r));
                    Some(r)
                } else if content {
                    match self.rendered(m, Uid(uid)).await {
                        Ok(r) => Some(r),
                        // Expunged by another session since this one's last update: no data for
                        // it (RFC 9051 §7.4.1 lets the server send none).
                        Err(Fail::No("NONEXISTENT", _)) => continue,
                        Err(e) => return Err(e),
                    }
                } else {
                    None
                };
                let mut flags: Vec<String> = now_state.map(|e| e.flags.clone()).unwrap_or_default();
                let mut flags_changed = false;
                if seen && !flags.iter().any(|x| x == "\\Seen") {
                    flags.push("\\Seen".into());
                    flags.sort();
                    seen_changes.push((Uid(uid), flags.clone()));
                    flags_changed = true;
                }
                let tree =
                    if parse { rendered.as_ref().map(|r| MimeTree::parse(&r.bytes)) } else { None };
                let out = self.server.output();
                let mut w = FetchWriter::new(out, seq);
                let asks_uid = f.items.iter().any(|i| matches!(i, FetchItem::Uid));
                if f.uid || asks_uid {
                    w.uid(uid);
                }
                let mut said_flags = false;
                let mut said_modseq = false;
                for item in &f.items {
                    match item {
                        FetchItem::Uid => {}
                        FetchItem::Flags => {
                            w.flags(&flags);
                            said_flags = true;
                        }
                        FetchItem::ModSeq => {
                            w.modseq(modseq);
                            said_modseq = true;
                        }
                        FetchItem::InternalDate => {
                            let arrival =
                                entries.iter().find(|e| e.uid.0 == uid).map_or(0, |e| e.arrival.0);
                            w.internal_date(DateTime {
                                unix: i64::try_from(arrival).unwrap_or(0),
                                offset_minutes: 0,
                            });
                        }
                        FetchItem::Rfc822Size => {
                            w.size(rendered.as_ref().map_or(0, |r| r.bytes.len() as u64));
                        }
                        FetchItem::Envelope => {
                            if let Some(r) = &rendered {
                                let mut v = Vec::new();
                                dime_dmap::envelope(&r.bytes, &mut v);
                                w.encoded("ENVELOPE", &v);
                            }
                        }
                        FetchItem::BodyStructure | FetchItem::Body => {
                            if let (Some(r), Some(t)) = (&rendered, &tree) {
                                let ext = matches!(item, FetchItem::BodyStructure);
                                let mut v = Vec::new();
                                dime_dmap::body_structure(&r.bytes, t, ext, &mut v);
                                w.encoded(if ext { "BODYSTRUCTURE" } else { "BODY" }, &v);
                            }
                        }
                        FetchItem::BodySection { section, partial, .. }
                            if section.part.is_empty() && section.text.is_none() =>
                        {
                            // The whole message: no structure to parse.
                            if let Some(r) = &rendered {
                                let label = match partial {
                                    Some((o, _)) => format!("BODY[]<{o}>"),
                                    None => "BODY[]".to_owned(),
                                };
                                w.string(&label, Some(partial_of(&r.bytes, *partial)));
                            }
                        }
                        FetchItem::BodySection { section, partial, .. } => {
                            if let (Some(r), Some(t)) = (&rendered, &tree) {
                                let data = dime_dmap::section(&r.bytes, t, section);
                                let label = match partial {
                                    Some((o, _)) => {
                                        format!("BODY[{}]<{o}>", section_label(section))
                                    }
                                    None => format!("BODY[{}]", section_label(section)),
                                };
                                let d = data.as_deref().map(|d| partial_of(d, *partial));
                                w.string(&label, Some(d.unwrap_or(b"")));
                            }
                        }
                        FetchItem::Binary { part, partial, .. } => {
                            if let (Some(r), Some(t)) = (&rendered, &tree) {
                                // A part that does not exist is empty, as in BODY[...].
                                let data = match dime_dmap::binary(&r.bytes, t, part) {
                                    Err(dime_dmap::BinaryError::NoSuchPart) => {
                                        Ok(zeroize::Zeroizing::new(Vec::new()))
                                    }
                                    other => other,
                                };
                                match data {
                                    Ok(d) => {
                                        let label = match partial {
                                            Some((o, _)) => {
                                                format!("BINARY[{}]<{o}>", part_label(part))
                                            }
                                            None => format!("BINARY[{}]", part_label(part)),
                                        };
                                        let d = partial_of(&d, *partial);
                                        if d.contains(&0) {
                                            w.binary(&label, d);
                                        } else {
                                            w.string(&label, Some(d));
                                        }
                                    }
                                    Err(_) => {
                                        w.finish();
                                        return Err(Fail::No(
                                            "UNKNOWN-CTE",
                                            "unknown content transfer encoding".into(),
                                        ));
                                    }
                                }
                            }
                        }
                        FetchItem::BinarySize(part) => {
                            if let (Some(r), Some(t)) = (&rendered, &tree) {
                                let n = match dime_dmap::binary(&r.bytes, t, part) {
                                    Ok(d) => d.len(),
                                    Err(dime_dmap::BinaryError::NoSuchPart) => 0,
                                    Err(dime_dmap::BinaryError::UnknownCte) => {
                                        w.finish();
                                        return Err(Fail::No(
                                            "UNKNOWN-CTE",
                                            "unknown content transfer encoding".into(),
                                        ));
                                    }
                                };
                                w.encoded(
                                    &format!("BINARY.SIZE[{}]", part_label(part)),
                                    n.to_string().as_bytes(),
                                );
                            }
                        }
                        FetchItem::Rfc822 => {
                            if let Some(r) = &rendered {
                                w.string("RFC822", Some(&r.bytes));
                            }
                        }
                        FetchItem::Rfc822Header => {
                            if let (Some(r), Some(t)) = (&rendered, &tree) {
                                let s =
                                    Section { part: Vec::new(), text: Some(SectionText::Header) };
                                let d = dime_dmap::section(&r.bytes, t, &s);
                                w.string(
                                    "RFC822.HEADER",
                                    Some(d.as_deref().map_or(&[][..], |v| &v[..])),
                                );
                            }
                        }
                        FetchItem::Rfc822Text => {
                            if let (Some(r), Some(t)) = (&rendered, &tree) {
                                let s = Section { part: Vec::new(), text: Some(SectionText::Text) };
                                let d = dime_dmap::section(&r.bytes, t, &s);
                                w.string(
                                    "RFC822.TEXT",
                                    Some(d.as_deref().map_or(&[][..], |v| &v[..])),
                                );
                            }
                        }
                    }
                }
                if flags_changed && !said_flags {
                    w.flags(&flags);
                }
                if enabled.condstore
                    && !said_modseq
                    && (said_flags || flags_changed || f.changed_since.is_some())
                {
                    w.modseq(modseq);
                }
                w.finish();
                self.flush_if_full().await?;
            }
        }
        if !seen_changes.is_empty() {
            let stored = service.store_flags(self.session()?, m, &seen_changes, None, now)?;
            if let Some(selm) = self.selected.as_mut() {
                for (uid, modseq) in stored.applied {
                    selm.note_own(uid.0, modseq);
                }
            }
        }
        self.send_updates(false).await;
        Ok(Some("FETCH completed".into()))
    }

    pub(super) async fn search(
        &mut self,
        tag: &Tag,
        s: dime_dmap::Search,
    ) -> Result<Option<String>, Fail> {
        let sel = self.selected()?.clone();
        if let Some(c) = &s.charset
            && !matches!(c.as_str(), "UTF-8" | "US-ASCII")
        {
            return Err(Fail::No("BADCHARSET (UTF-8 US-ASCII)", "charset not supported".into()));
        }
        let m = MailboxId(sel.id as u32);
        let now = now();
        let service = Arc::clone(&self.service);
        let snapshot = service.snapshot(self.session()?, m, now)?;
        let entries = service.entries(self.session()?, m, now)?;
        let content = search::needs_content(&s.key);
        let mut hits: Vec<(u32, u32, u64)> = Vec::new();
        for e in &snapshot {
            let Some(seq) = sel.seq_of(e.uid) else { continue };
            let arrival = entries.iter().find(|x| x.uid.0 == e.uid).map_or(0, |x| x.arrival.0);
            let rendered = if content { Some(self.rendered(m, Uid(e.uid)).await?) } else { None };
            let tree = rendered.as_ref().map(|r| MimeTree::parse(&r.bytes));
            let ctx = search::Message {
                seq,
                uid: e.uid,
                flags: &e.flags,
                modseq: e.modseq,
                arrival,
                raw: rendered.as_ref().map(|r| r.bytes.as_slice()),
                tree: tree.as_ref(),
            };
            if search::matches(&s.key, &ctx, &sel) {
                hits.push((seq, e.uid, e.modseq));
            }
        }
        let nums: Vec<u32> = hits.iter().map(|h| if s.uid { h.1 } else { h.0 }).collect();
        let modseq = search::uses_modseq(&s.key).then(|| hits.iter().map(|h| h.2).max()).flatten();
        if modseq.is_some() {
            self.server.enable_condstore();
        }
        let rev2 = self.server.enabled().rev2;
        match &s.returns {
            None if !rev2 => response::search(self.server.output(), &nums, modseq),
            returns => {
                let opts: Vec<SearchReturn> = match returns {
                    Some(r) if !r.is_empty() => r.clone(),
                    _ => vec![SearchReturn::All],
                };
                if opts.contains(&SearchReturn::Save) {
                    let uids: Vec<u32> = hits.iter().map(|h| h.1).collect();
                    if let Some(selm) = self.selected.as_mut() {
                        selm.saved = uids;
                    }
                }
                let only_save = opts.iter().all(|o| *o == SearchReturn::Save);
                if !only_save || returns.is_none() {
                    let r = Esearch {
                        min: opts
                            .contains(&SearchReturn::Min)
                            .then(|| nums.first().copied())
                            .flatten(),
                        max: opts
                            .contains(&SearchReturn::Max)
                            .then(|| nums.last().copied())
                            .flatten(),
                        all: opts.contains(&SearchReturn::All).then(|| nums.clone()),
                        count: opts
                            .contains(&SearchReturn::Count)
                            .then(|| u32::try_from(nums.len()).unwrap_or(u32::MAX)),
                        modseq,
                    };
                    response::esearch(self.server.output(), &tag.0, s.uid, &r);
                }
            }
        }
        self.send_updates(false).await;
        Ok(Some("SEARCH completed".into()))
    }
}
