//! The commands' grammar (RFC 9051 §6, §9 and the extensions named on each), over the
//! lexical rules of the parent module.

use zeroize::Zeroizing;

use super::{Parser, R, decode_base64, upper, utf8};
use crate::command::{
    Command, Fetch, FetchItem, List, ListReturn, ListSelection, Qresync, SaslData, Search,
    SearchKey, SearchReturn, Secret, Section, SectionText, SequenceSet, StatusItem, Store,
    StoreMode,
};
use crate::limits::{MAX_ID_FIELD_LEN, MAX_ID_PAIRS, MAX_ID_VALUE_LEN, MAX_SEARCH_DEPTH};

impl Parser<'_> {
    fn status_items(&mut self) -> R<Vec<StatusItem>> {
        self.open()?;
        let mut items = Vec::new();
        loop {
            items.push(match self.keyword()?.as_str() {
                "MESSAGES" => StatusItem::Messages,
                "UIDNEXT" => StatusItem::UidNext,
                "UIDVALIDITY" => StatusItem::UidValidity,
                "UNSEEN" => StatusItem::Unseen,
                "DELETED" => StatusItem::Deleted,
                "SIZE" => StatusItem::Size,
                "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
                "RECENT" => StatusItem::Recent,
                "APPENDLIMIT" => StatusItem::AppendLimit,
                _ => return Err("unknown status item"),
            });
            if !self.eat(b' ') {
                break;
            }
        }
        self.close()?;
        Ok(items)
    }

    pub(super) fn command(&mut self) -> R<Command> {
        let name = self.keyword()?;
        Ok(match name.as_str() {
            "CAPABILITY" => Command::Capability,
            "NOOP" => Command::Noop,
            "LOGOUT" => Command::Logout,
            "STARTTLS" => Command::StartTls,
            "NAMESPACE" => Command::Namespace,
            "IDLE" => Command::Idle,
            "CHECK" => Command::Check,
            "CLOSE" => Command::Close,
            "UNSELECT" => Command::Unselect,
            "EXPUNGE" => Command::Expunge,
            "AUTHENTICATE" => self.authenticate()?,
            "LOGIN" => {
                self.sp()?;
                let username = self.astring_utf8()?;
                self.sp()?;
                let password = Secret(Zeroizing::new(self.astring()?));
                Command::Login { username, password }
            }
            "ENABLE" => {
                let mut caps = Vec::new();
                while self.eat(b' ') {
                    caps.push(upper(self.atom()?));
                }
                if caps.is_empty() {
                    return Err("enable needs a capability");
                }
                Command::Enable(caps)
            }
            "SELECT" => self.select(false)?,
            "EXAMINE" => self.select(true)?,
            "CREATE" => self.create()?,
            "DELETE" => {
                self.sp()?;
                Command::Delete(self.mailbox()?)
            }
            "RENAME" => {
                self.sp()?;
                let from = self.mailbox()?;
                self.sp()?;
                let to = self.mailbox()?;
                Command::Rename { from, to }
            }
            "SUBSCRIBE" => {
                self.sp()?;
                Command::Subscribe(self.mailbox()?)
            }
            "UNSUBSCRIBE" => {
                self.sp()?;
                Command::Unsubscribe(self.mailbox()?)
            }
            "LIST" => Command::List(self.list()?),
            "LSUB" => {
                self.sp()?;
                let reference = self.astring_utf8()?;
                self.sp()?;
                let pattern = self.list_mailbox()?;
                Command::Lsub { reference, pattern }
            }
            "STATUS" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                self.sp()?;
                let items = self.status_items()?;
                Command::Status { mailbox, items }
            }
            "APPEND" => self.append()?,
            "SEARCH" => Command::Search(self.search(false)?),
            "FETCH" => Command::Fetch(self.fetch(false)?),
            "STORE" => Command::Store(self.store(false)?),
            "COPY" => self.copy(false, false)?,
            "MOVE" => self.copy(false, true)?,
            "UID" => {
                self.sp()?;
                match self.keyword()?.as_str() {
                    "SEARCH" => Command::Search(self.search(true)?),
                    "FETCH" => Command::Fetch(self.fetch(true)?),
                    "STORE" => Command::Store(self.store(true)?),
                    "COPY" => self.copy(true, false)?,
                    "MOVE" => self.copy(true, true)?,
                    "EXPUNGE" => {
                        self.sp()?;
                        Command::UidExpunge(self.sequence_set()?)
                    }
                    _ => return Err("unknown uid command"),
                }
            }
            "ID" => self.id()?,
            _ => return Err("unknown command"),
        })
    }

    /// AUTHENTICATE mechanism [SP (base64 / "=")] (RFC 9051 §6.2.2, RFC 4959).
    fn authenticate(&mut self) -> R<Command> {
        self.sp()?;
        let mechanism = upper(self.atom()?);
        let initial = if self.eat(b' ') {
            if self.eat(b'=') {
                Some(SaslData(Zeroizing::new(Vec::new())))
            } else {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
                {
                    self.i += 1;
                }
                if self.i == start {
                    return Err("expected an initial response");
                }
                let data = decode_base64(&self.b[start..self.i])
                    .ok_or("initial response is not base64")?;
                Some(SaslData(data))
            }
        } else {
            None
        };
        Ok(Command::Authenticate { mechanism, initial })
    }

    /// SELECT / EXAMINE mailbox [SP (select-param...)] (RFC 7162 §3.1.8, §3.2.5).
    fn select(&mut self, read_only: bool) -> R<Command> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut condstore = false;
        let mut qresync = None;
        if self.eat(b' ') {
            self.open()?;
            loop {
                match self.keyword()?.as_str() {
                    "CONDSTORE" => condstore = true,
                    "QRESYNC" => {
                        self.sp()?;
                        qresync = Some(self.qresync()?);
                    }
                    _ => return Err("unknown select parameter"),
                }
                if !self.eat(b' ') {
                    break;
                }
            }
            self.close()?;
        }
        Ok(Command::Select { mailbox, read_only, condstore, qresync })
    }

    /// `"(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"`
    /// (RFC 7162 §7).
    fn qresync(&mut self) -> R<Qresync> {
        self.open()?;
        let uid_validity = self.nz_number()?;
        self.sp()?;
        let modseq = self.modseq()?;
        let mut known_uids = None;
        let mut seq_match = None;
        if self.eat(b' ') {
            if self.peek() != Some(b'(') {
                known_uids = Some(self.sequence_set()?);
                if self.eat(b' ') {
                    seq_match = Some(self.seq_match()?);
                }
            } else {
                seq_match = Some(self.seq_match()?);
            }
        }
        self.close()?;
        Ok(Qresync { uid_validity, modseq, known_uids, seq_match })
    }

    fn seq_match(&mut self) -> R<(SequenceSet, SequenceSet)> {
        self.open()?;
        let seqs = self.sequence_set()?;
        self.sp()?;
        let uids = self.sequence_set()?;
        self.close()?;
        Ok((seqs, uids))
    }

    /// CREATE mailbox [SP "(" "USE" SP "(" use-attr... ")" ")"] (RFC 6154 §3).
    fn create(&mut self) -> R<Command> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        let mut special_use = Vec::new();
        if self.eat(b' ') {
            self.open()?;
            if self.keyword()? != "USE" {
                return Err("unknown create parameter");
            }
            self.sp()?;
            self.open()?;
            loop {
                self.expect(b'\\', "expected a special-use attribute")?;
                let a = self.atom()?;
                special_use.push(format!("\\{}", utf8(a.to_vec())?));
                if !self.eat(b' ') {
                    break;
                }
            }
            self.close()?;
            self.close()?;
        }
        Ok(Command::Create { mailbox, special_use })
    }

    /// LIST [SP (sel-opts)] SP ref SP (pattern / (patterns)) [SP RETURN (opts)] (RFC 5258 §6).
    fn list(&mut self) -> R<List> {
        self.sp()?;
        let mut list = List::default();
        if self.peek() == Some(b'(') {
            list.selection = self.list_selection()?;
            self.sp()?;
        }
        list.reference = self.astring_utf8()?;
        self.sp()?;
        if self.eat(b'(') {
            loop {
                list.patterns.push(self.list_mailbox()?);
                if !self.eat(b' ') {
                    break;
                }
            }
            self.close()?;
        } else {
            list.patterns.push(self.list_mailbox()?);
        }
        if self.eat(b' ') {
            if !self.eat_keyword("RETURN") {
                return Err("expected return options");
            }
            self.sp()?;
            list.returns = self.list_return()?;
        }
        Ok(list)
    }

    fn list_selection(&mut self) -> R<ListSelection> {
        self.open()?;
        let mut sel = ListSelection::default();
        if self.eat(b')') {
            return Ok(sel);
        }
        loop {
            match self.keyword()?.as_str() {
                "SUBSCRIBED" => sel.subscribed = true,
                "REMOTE" => sel.remote = true,
                "RECURSIVEMATCH" => sel.recursive_match = true,
                "SPECIAL-USE" => sel.special_use = true,
                _ => return Err("unknown list selection option"),
            }
            if !self.eat(b' ') {
                break;
            }
        }
        self.close()?;
        // RFC 5258 §3.1: RECURSIVEMATCH modifies a base option and never stands alone.
        if sel.recursive_match && !sel.subscribed && !sel.special_use {
            return Err("recursivematch needs a base selection option");
        }
        Ok(sel)
    }

    fn list_return(&mut self) -> R<ListReturn> {
        self.open()?;
        let mut ret = ListReturn::default();
        if self.eat(b')') {
            return Ok(ret);
        }
        loop {
            match self.keyword()?.as_str() {
                "SUBSCRIBED" => ret.subscribed = true,
                "CHILDREN" => ret.children = true,
                "SPECIAL-USE" => ret.special_use = true,
                "STATUS" => {
                    self.sp()?;
                    ret.status = Some(self.status_items()?);
                }
                _ => return Err("unknown list return option"),
            }
            if !self.eat(b' ') {
                break;
            }
        }
        self.close()?;
        Ok(ret)
    }

    /// APPEND mailbox [SP flag-list] [SP date-time] SP (literal / literal8) (RFC 9051
    /// §6.3.12, RFC 3516): one message (no MULTIAPPEND).
    fn append(&mut self) -> R<Command> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        let mut flags = Vec::new();
        if self.peek() == Some(b'(') {
            flags = self.flag_list()?;
            self.sp()?;
        }
        let mut date = None;
        if self.peek() == Some(b'"') {
            date = Some(self.date_time()?);
            self.sp()?;
        }
        let (message, binary) = self.literal(true)?;
        if self.peek() == Some(b' ') {
            return Err("multiappend not supported");
        }
        Ok(Command::Append {
            mailbox,
            flags,
            date,
            message: Zeroizing::new(message.to_vec()),
            binary,
        })
    }

    /// COPY / MOVE set mailbox (RFC 9051 §6.4.7, RFC 6851).
    fn copy(&mut self, uid: bool, is_move: bool) -> R<Command> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mailbox = self.mailbox()?;
        Ok(Command::Copy { uid, set, mailbox, is_move })
    }

    /// ID (NIL / "(" [string SP nstring *(SP string SP nstring)] ")") (RFC 2971 §4).
    fn id(&mut self) -> R<Command> {
        self.sp()?;
        if self.is_nil() {
            self.i += 3;
            return Ok(Command::Id(None));
        }
        self.open()?;
        let mut pairs = Vec::new();
        if !self.eat(b')') {
            loop {
                let k = utf8(self.string()?)?;
                self.sp()?;
                let v = self.nstring()?.map(utf8).transpose()?;
                // RFC 2971 §3.3's limits.
                if pairs.len() >= MAX_ID_PAIRS
                    || k.len() > MAX_ID_FIELD_LEN
                    || v.as_ref().is_some_and(|v| v.len() > MAX_ID_VALUE_LEN)
                {
                    return Err(
                        "ID over its limits (30 pairs, fields of 30 octets, values of 1024)",
                    );
                }
                pairs.push((k, v));
                if !self.eat(b' ') {
                    break;
                }
            }
            self.close()?;
        }
        Ok(Command::Id(Some(pairs)))
    }

    /// SEARCH [RETURN (opts)] [CHARSET astring] keys (RFC 9051 §6.4.4, RFC 4731, RFC 5182).
    fn search(&mut self, uid: bool) -> R<Search> {
        self.sp()?;
        let mut returns = None;
        if self.eat_keyword("RETURN") {
            self.sp()?;
            self.open()?;
            let mut opts = Vec::new();
            if !self.eat(b')') {
                loop {
                    opts.push(match self.keyword()?.as_str() {
                        "MIN" => SearchReturn::Min,
                        "MAX" => SearchReturn::Max,
                        "ALL" => SearchReturn::All,
                        "COUNT" => SearchReturn::Count,
                        "SAVE" => SearchReturn::Save,
                        _ => return Err("unknown search return option"),
                    });
                    if !self.eat(b' ') {
                        break;
                    }
                }
                self.close()?;
            }
            returns = Some(opts);
            self.sp()?;
        }
        let mut charset = None;
        if self.eat_keyword("CHARSET") {
            self.sp()?;
            let c = self.astring_utf8()?.to_ascii_uppercase();
            self.sp()?;
            if !matches!(c.as_str(), "UTF-8" | "US-ASCII") {
                // The keys are octets of a charset this server does not read: left unparsed,
                // for the server's NO [BADCHARSET] (RFC 9051 §6.4.4), not a BAD.
                let tail = if self.b.ends_with(b"\r\n") { 2 } else { 1 };
                self.i = self.b.len().saturating_sub(tail);
                return Ok(Search { uid, returns, charset: Some(c), key: SearchKey::All });
            }
            charset = Some(c);
        }
        let mut keys = vec![self.search_key(0)?];
        while self.eat(b' ') {
            keys.push(self.search_key(0)?);
        }
        let key = if keys.len() == 1 {
            keys.pop().unwrap_or(SearchKey::All)
        } else {
            SearchKey::And(keys)
        };
        Ok(Search { uid, returns, charset, key })
    }

    /// `search-key` (RFC 9051 §6.4.4, §9; RFC 7162 §3.1.5). `depth` is the number of
    /// enclosing parentheses, NOTs and ORs, at most [`MAX_SEARCH_DEPTH`].
    fn search_key(&mut self, depth: usize) -> R<SearchKey> {
        let nested = || {
            if depth >= MAX_SEARCH_DEPTH {
                Err("search keys nested too deep")
            } else {
                Ok(depth + 1)
            }
        };
        match self.peek() {
            Some(b'(') => {
                let d = nested()?;
                self.i += 1;
                let mut keys = vec![self.search_key(d)?];
                while self.eat(b' ') {
                    keys.push(self.search_key(d)?);
                }
                self.close()?;
                return Ok(SearchKey::And(keys));
            }
            Some(b'0'..=b'9' | b'*' | b'$') => {
                return self.sequence_set().map(SearchKey::SequenceSet);
            }
            _ => {}
        }
        let kw = self.keyword()?;
        Ok(match kw.as_str() {
            "ALL" => SearchKey::All,
            "ANSWERED" => SearchKey::Answered,
            "DELETED" => SearchKey::Deleted,
            "DRAFT" => SearchKey::Draft,
            "FLAGGED" => SearchKey::Flagged,
            "NEW" => SearchKey::New,
            "OLD" => SearchKey::Old,
            "RECENT" => SearchKey::Recent,
            "SEEN" => SearchKey::Seen,
            "UNANSWERED" => SearchKey::Unanswered,
            "UNDELETED" => SearchKey::Undeleted,
            "UNDRAFT" => SearchKey::Undraft,
            "UNFLAGGED" => SearchKey::Unflagged,
            "UNSEEN" => SearchKey::Unseen,
            "BCC" | "BODY" | "CC" | "FROM" | "SUBJECT" | "TEXT" | "TO" => {
                self.sp()?;
                let s = self.astring_utf8()?;
                match kw.as_str() {
                    "BCC" => SearchKey::Bcc(s),
                    "BODY" => SearchKey::Body(s),
                    "CC" => SearchKey::Cc(s),
                    "FROM" => SearchKey::From(s),
                    "SUBJECT" => SearchKey::Subject(s),
                    "TEXT" => SearchKey::Text(s),
                    _ => SearchKey::To(s),
                }
            }
            "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" => {
                self.sp()?;
                let d = self.date()?;
                match kw.as_str() {
                    "BEFORE" => SearchKey::Before(d),
                    "ON" => SearchKey::On(d),
                    "SINCE" => SearchKey::Since(d),
                    "SENTBEFORE" => SearchKey::SentBefore(d),
                    "SENTON" => SearchKey::SentOn(d),
                    _ => SearchKey::SentSince(d),
                }
            }
            "HEADER" => {
                self.sp()?;
                let name = self.astring_utf8()?;
                self.sp()?;
                SearchKey::Header(name, self.astring_utf8()?)
            }
            "KEYWORD" | "UNKEYWORD" => {
                self.sp()?;
                let k = utf8(self.atom()?.to_vec())?;
                if kw == "KEYWORD" { SearchKey::Keyword(k) } else { SearchKey::Unkeyword(k) }
            }
            "LARGER" => {
                self.sp()?;
                SearchKey::Larger(self.number64()?)
            }
            "SMALLER" => {
                self.sp()?;
                SearchKey::Smaller(self.number64()?)
            }
            "UID" => {
                self.sp()?;
                SearchKey::Uid(self.sequence_set()?)
            }
            "NOT" => {
                let d = nested()?;
                self.sp()?;
                SearchKey::Not(Box::new(self.search_key(d)?))
            }
            "OR" => {
                let d = nested()?;
                self.sp()?;
                let a = self.search_key(d)?;
                self.sp()?;
                let b = self.search_key(d)?;
                SearchKey::Or(Box::new(a), Box::new(b))
            }
            "MODSEQ" => {
                self.sp()?;
                if self.peek() == Some(b'"') {
                    // entry-name SP entry-type-req (RFC 7162 §3.1.5): read and ignored.
                    self.quoted()?;
                    self.sp()?;
                    if !matches!(self.keyword()?.as_str(), "PRIV" | "SHARED" | "ALL") {
                        return Err("bad modseq entry type");
                    }
                    self.sp()?;
                }
                // mod-sequence-valzer: zero allowed.
                SearchKey::ModSeq(self.number64()?)
            }
            _ => return Err("unknown search key"),
        })
    }

    /// FETCH set (items / macro) [SP (modifiers)] (RFC 9051 §6.4.5, RFC 7162 §3.1.4, §3.2.6).
    fn fetch(&mut self, uid: bool) -> R<Fetch> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut items = Vec::new();
        if self.eat(b'(') {
            loop {
                let name = self.keyword()?;
                items.push(self.fetch_att(&name)?);
                if !self.eat(b' ') {
                    break;
                }
            }
            self.close()?;
        } else {
            let name = self.keyword()?;
            let base = [FetchItem::Flags, FetchItem::InternalDate, FetchItem::Rfc822Size];
            match name.as_str() {
                "FAST" => items.extend(base),
                "ALL" => {
                    items.extend(base);
                    items.push(FetchItem::Envelope);
                }
                "FULL" => {
                    items.extend(base);
                    items.extend([FetchItem::Envelope, FetchItem::Body]);
                }
                _ => items.push(self.fetch_att(&name)?),
            }
        }
        let mut changed_since = None;
        let mut vanished = false;
        if self.eat(b' ') {
            self.open()?;
            loop {
                match self.keyword()?.as_str() {
                    "CHANGEDSINCE" => {
                        self.sp()?;
                        changed_since = Some(self.modseq()?);
                    }
                    "VANISHED" => vanished = true,
                    _ => return Err("unknown fetch modifier"),
                }
                if !self.eat(b' ') {
                    break;
                }
            }
            self.close()?;
        }
        // RFC 7162 §3.2.6: VANISHED only in UID FETCH, and only with CHANGEDSINCE.
        if vanished && (!uid || changed_since.is_none()) {
            return Err("vanished needs uid fetch and changedsince");
        }
        Ok(Fetch { uid, set, items, changed_since, vanished })
    }

    fn fetch_att(&mut self, name: &str) -> R<FetchItem> {
        Ok(match name {
            "ENVELOPE" => FetchItem::Envelope,
            "FLAGS" => FetchItem::Flags,
            "INTERNALDATE" => FetchItem::InternalDate,
            "RFC822.SIZE" => FetchItem::Rfc822Size,
            "RFC822" => FetchItem::Rfc822,
            "RFC822.HEADER" => FetchItem::Rfc822Header,
            "RFC822.TEXT" => FetchItem::Rfc822Text,
            "BODYSTRUCTURE" => FetchItem::BodyStructure,
            "UID" => FetchItem::Uid,
            "MODSEQ" => FetchItem::ModSeq,
            "BODY" if self.peek() != Some(b'[') => FetchItem::Body,
            "BODY" | "BODY.PEEK" => {
                let section = self.section()?;
                let partial = self.partial()?;
                FetchItem::BodySection { peek: name == "BODY.PEEK", section, partial }
            }
            "BINARY" | "BINARY.PEEK" => {
                let part = self.section_binary()?;
                let partial = self.partial()?;
                FetchItem::Binary { peek: name == "BINARY.PEEK", part, partial }
            }
            "BINARY.SIZE" => FetchItem::BinarySize(self.section_binary()?),
            _ => return Err("unknown fetch item"),
        })
    }

    /// `section` (RFC 9051 §9).
    fn section(&mut self) -> R<Section> {
        self.expect(b'[', "expected a section")?;
        let mut section = Section::default();
        if self.eat(b']') {
            return Ok(section);
        }
        if self.peek().is_some_and(|c| c.is_ascii_digit()) {
            section.part.push(self.nz_number()?);
            while self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
                section.part.push(self.nz_number()?);
            }
            if self.eat(b'.') {
                section.text = Some(self.section_text(true)?);
            }
        } else {
            section.text = Some(self.section_text(false)?);
        }
        self.expect(b']', "expected the end of the section")?;
        Ok(section)
    }

    fn section_text(&mut self, after_part: bool) -> R<SectionText> {
        Ok(match self.keyword()?.as_str() {
            "HEADER" => SectionText::Header,
            "TEXT" => SectionText::Text,
            "MIME" if after_part => SectionText::Mime,
            name @ ("HEADER.FIELDS" | "HEADER.FIELDS.NOT") => {
                let not = name == "HEADER.FIELDS.NOT";
                self.sp()?;
                self.open()?;
                let mut names = Vec::new();
                loop {
                    names.push(self.astring_utf8()?);
                    if !self.eat(b' ') {
                        break;
                    }
                }
                self.close()?;
                if not {
                    SectionText::HeaderFieldsNot(names)
                } else {
                    SectionText::HeaderFields(names)
                }
            }
            _ => return Err("bad section text"),
        })
    }

    /// `section-binary` (RFC 3516 §4.4): `[` [part] `]`.
    fn section_binary(&mut self) -> R<Vec<u32>> {
        self.expect(b'[', "expected a section")?;
        let mut part = Vec::new();
        if !self.eat(b']') {
            loop {
                part.push(self.nz_number()?);
                if !self.eat(b'.') {
                    break;
                }
            }
            self.expect(b']', "expected the end of the section")?;
        }
        Ok(part)
    }

    /// `partial` (RFC 9051 §9): `<offset.count>`, the count nonzero.
    fn partial(&mut self) -> R<Option<(u32, u32)>> {
        if !self.eat(b'<') {
            return Ok(None);
        }
        let offset = self.number()?;
        self.expect(b'.', "bad partial")?;
        let count = self.nz_number()?;
        self.expect(b'>', "bad partial")?;
        Ok(Some((offset, count)))
    }

    /// STORE set [SP (UNCHANGEDSINCE n)] SP [+-]FLAGS[.SILENT] SP flags (RFC 9051 §6.4.6,
    /// RFC 7162 §3.1.3).
    fn store(&mut self, uid: bool) -> R<Store> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut unchanged_since = None;
        if self.eat(b'(') {
            if self.keyword()? != "UNCHANGEDSINCE" {
                return Err("unknown store modifier");
            }
            self.sp()?;
            // mod-sequence-valzer: zero allowed (RFC 7162 §3.1.3).
            unchanged_since = Some(self.number64()?);
            self.close()?;
            self.sp()?;
        }
        let mode = if self.eat(b'+') {
            StoreMode::Add
        } else if self.eat(b'-') {
            StoreMode::Remove
        } else {
            StoreMode::Replace
        };
        let silent = match self.keyword()?.as_str() {
            "FLAGS" => false,
            "FLAGS.SILENT" => true,
            _ => return Err("expected flags, +flags or -flags"),
        };
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.flag_list()?
        } else {
            let mut flags = vec![self.flag()?];
            while self.eat(b' ') {
                flags.push(self.flag()?);
            }
            flags
        };
        Ok(Store { uid, set, unchanged_since, mode, silent, flags })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, ok, s, set};
    use super::*;
    use crate::command::{Date, DateTime, Flag, SeqBound, Tag};
    use crate::parse::parse_command;

    #[test]
    fn simple_commands_rfc9051_6() {
        let table = [
            ("a CAPABILITY", Command::Capability),
            ("a noop", Command::Noop),
            ("a Logout", Command::Logout),
            ("a STARTTLS", Command::StartTls),
            ("a NAMESPACE", Command::Namespace),
            ("a IDLE", Command::Idle),
            ("a CHECK", Command::Check),
            ("a CLOSE", Command::Close),
            ("a UNSELECT", Command::Unselect),
            ("a EXPUNGE", Command::Expunge),
            ("a UID EXPUNGE 3000:3002", Command::UidExpunge(set(&[(3000, 3002)]))),
            ("a DELETE blurdybloop", Command::Delete(s("blurdybloop"))),
            ("a delete inbox", Command::Delete(s("INBOX"))),
            ("a SUBSCRIBE #news.comp.mail.mime", Command::Subscribe(s("#news.comp.mail.mime"))),
            ("a UNSUBSCRIBE \"a b\"", Command::Unsubscribe(s("a b"))),
            (
                "a RENAME blurdybloop sarasoop",
                Command::Rename { from: s("blurdybloop"), to: s("sarasoop") },
            ),
            (
                "a ENABLE utf8=accept CONDSTORE",
                Command::Enable(vec![s("UTF8=ACCEPT"), s("CONDSTORE")]),
            ),
            (
                "a LSUB \"#news.\" \"comp.mail.*\"",
                Command::Lsub { reference: s("#news."), pattern: s("comp.mail.*") },
            ),
            (
                "a CREATE owatagusiam/",
                Command::Create { mailbox: s("owatagusiam/"), special_use: vec![] },
            ),
            // RFC 6154 §5.2.
            (
                "t1 CREATE \"Important Messages\" (USE (\\Important))",
                Command::Create {
                    mailbox: s("Important Messages"),
                    special_use: vec![s("\\Important")],
                },
            ),
            (
                "a COPY 2:4 MEETING",
                Command::Copy {
                    uid: false,
                    set: set(&[(2, 4)]),
                    mailbox: s("MEETING"),
                    is_move: false,
                },
            ),
            (
                "a UID MOVE 42:69 foo",
                Command::Copy {
                    uid: true,
                    set: set(&[(42, 69)]),
                    mailbox: s("foo"),
                    is_move: true,
                },
            ),
            // RFC 2971 §3.1.
            ("a023 ID NIL", Command::Id(None)),
            (
                "a023 ID (\"name\" \"sodr\" \"version\" NIL)",
                Command::Id(Some(vec![(s("name"), Some(s("sodr"))), (s("version"), None)])),
            ),
            ("a ID ()", Command::Id(Some(vec![]))),
        ];
        for (input, want) in table {
            assert_eq!(ok(input), want, "{input}");
        }
    }

    #[test]
    fn login_and_authenticate_rfc9051_6_2() {
        let Command::Login { username, password } = ok("a001 LOGIN SMITH SESAME") else { panic!() };
        assert_eq!((username.as_str(), &password.0[..]), ("SMITH", &b"SESAME"[..]));
        let c = parse_command(b"a LOGIN {4+}\r\nfred \"p\\\"w\\\\\"\r\n").unwrap().command;
        let Command::Login { username, password } = c else { panic!() };
        assert_eq!((username.as_str(), &password.0[..]), ("fred", &b"p\"w\\"[..]));
        // RFC 4959 §3.
        assert_eq!(
            ok("a AUTHENTICATE plain dGVzdAB0ZXN0AHRlc3Q="),
            Command::Authenticate {
                mechanism: s("PLAIN"),
                initial: Some(SaslData(Zeroizing::new(b"test\0test\0test".to_vec())))
            }
        );
        assert_eq!(
            ok("a AUTHENTICATE EXTERNAL ="),
            Command::Authenticate {
                mechanism: s("EXTERNAL"),
                initial: Some(SaslData(Zeroizing::new(vec![])))
            }
        );
        assert_eq!(
            ok("a AUTHENTICATE GSSAPI"),
            Command::Authenticate { mechanism: s("GSSAPI"), initial: None }
        );
        assert_eq!(err(b"a AUTHENTICATE PLAIN dGVzdA=").reason, "initial response is not base64");
    }

    /// RFC 9051 §6.3.2 and RFC 7162 §3.1.8, §3.2.5.1 examples.
    #[test]
    fn select_with_condstore_and_qresync() {
        assert_eq!(
            ok("A142 SELECT INBOX"),
            Command::Select {
                mailbox: s("INBOX"),
                read_only: false,
                condstore: false,
                qresync: None
            }
        );
        assert_eq!(
            ok("a EXAMINE blurdybloop (CONDSTORE)"),
            Command::Select {
                mailbox: s("blurdybloop"),
                read_only: true,
                condstore: true,
                qresync: None
            }
        );
        assert_eq!(
            ok("A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"),
            Command::Select {
                mailbox: s("INBOX"),
                read_only: false,
                condstore: false,
                qresync: Some(Qresync {
                    uid_validity: 67_890_007,
                    modseq: 20_050_715_194_045_000,
                    known_uids: Some(set(&[(41, 41), (43, 211), (214, 541)])),
                    seq_match: None,
                }),
            }
        );
        let Command::Select { qresync: Some(q), .. } = ok(
            "B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))",
        ) else {
            panic!()
        };
        assert_eq!(q.known_uids, Some(set(&[(1, 29997)])));
        let (seqs, uids) = q.seq_match.unwrap();
        assert_eq!(seqs, set(&[(5000, 5000), (7500, 7500), (9000, 9000), (9990, 9999)]));
        assert!(matches!(uids, SequenceSet::Ranges(r) if r.len() == 13));
        assert_eq!(err(b"a SELECT INBOX (QRESYNC (0 1))").reason, "expected a nonzero number");
        assert_eq!(err(b"a SELECT INBOX (FOO)").reason, "unknown select parameter");
    }

    /// RFC 5258 §5 examples, RFC 5819 §4, RFC 6154 §5.
    #[test]
    fn list_extended_rfc5258_5() {
        assert_eq!(
            ok("A101 LIST \"\" \"\""),
            Command::List(List { patterns: vec![s("")], ..List::default() })
        );
        assert_eq!(
            ok("A102 LIST #news.comp.mail.misc ]%"),
            Command::List(List {
                reference: s("#news.comp.mail.misc"),
                patterns: vec![s("]%")],
                ..List::default()
            })
        );
        let Command::List(l) =
            ok("A01 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (% foo/*) RETURN (CHILDREN)")
        else {
            panic!()
        };
        assert!(l.selection.subscribed && l.selection.recursive_match && !l.selection.remote);
        assert_eq!(l.patterns, vec![s("%"), s("foo/*")]);
        assert!(l.returns.children && !l.returns.subscribed);
        let Command::List(l) = ok(
            "A10 LIST (special-use remote) \"\" * RETURN (SUBSCRIBED SPECIAL-USE STATUS (MESSAGES UNSEEN))",
        ) else {
            panic!()
        };
        assert!(l.selection.special_use && l.selection.remote);
        assert!(l.returns.subscribed && l.returns.special_use);
        assert_eq!(l.returns.status, Some(vec![StatusItem::Messages, StatusItem::Unseen]));
        let Command::List(l) = ok("A1 LIST () \"\" % RETURN ()") else { panic!() };
        assert_eq!(l, List { patterns: vec![s("%")], ..List::default() });
        assert_eq!(
            err(b"A LIST (RECURSIVEMATCH) \"\" %").reason,
            "recursivematch needs a base selection option"
        );
        assert_eq!(err(b"A LIST (BOGUS) \"\" %").reason, "unknown list selection option");
        assert_eq!(err(b"A LIST \"\" % RETURN (BOGUS)").reason, "unknown list return option");
    }

    #[test]
    fn status_items_rfc9051_6_3_11() {
        assert_eq!(
            ok(
                "A042 STATUS blurdybloop (UIDNEXT MESSAGES size highestmodseq DELETED APPENDLIMIT UIDVALIDITY UNSEEN RECENT)"
            ),
            Command::Status {
                mailbox: s("blurdybloop"),
                items: vec![
                    StatusItem::UidNext,
                    StatusItem::Messages,
                    StatusItem::Size,
                    StatusItem::HighestModSeq,
                    StatusItem::Deleted,
                    StatusItem::AppendLimit,
                    StatusItem::UidValidity,
                    StatusItem::Unseen,
                    StatusItem::Recent
                ]
            }
        );
        assert_eq!(err(b"a STATUS x ()").reason, "expected a keyword");
    }

    /// RFC 9051 §6.3.12 example; RFC 3516 §4.3 literal8.
    #[test]
    fn append_rfc9051_6_3_12() {
        let msg = b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\r\nHello Joe\r\n";
        let mut input = format!(
            "A003 APPEND saved-messages (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {{{}}}\r\n",
            msg.len()
        )
        .into_bytes();
        input.extend_from_slice(msg);
        input.extend_from_slice(b"\r\n");
        let Command::Append { mailbox, flags, date, message, binary } =
            parse_command(&input).unwrap().command
        else {
            panic!()
        };
        assert_eq!(mailbox, "saved-messages");
        assert_eq!(flags, vec![Flag::Seen]);
        // 1994-02-08T05:52:25Z.
        assert_eq!(date, Some(DateTime { unix: 760_686_745, offset_minutes: -480 }));
        assert_eq!(&message[..], &msg[..]);
        assert!(!binary);
        let c = parse_command(b"a APPEND INBOX ~{3}\r\n\0\x01\xff\r\n").unwrap().command;
        assert!(
            matches!(c, Command::Append { binary: true, ref message, .. } if message[..] == [0, 1, 0xff])
        );
        assert_eq!(
            parse_command(b"a APPEND INBOX {1}\r\n\0\r\n").unwrap_err().reason,
            "nul in literal"
        );
        assert_eq!(
            parse_command(b"a APPEND INBOX {1}\r\nx {1}\r\ny\r\n").unwrap_err().reason,
            "multiappend not supported"
        );
        assert_eq!(
            parse_command(b"a APPEND INBOX {5}\r\nx\r\n").unwrap_err().reason,
            "literal shorter than announced"
        );
    }

    /// RFC 9051 §6.4.4 examples, RFC 4731 §3, RFC 5182 §2.4, RFC 7162 §3.1.5.
    #[test]
    fn search_keys_and_returns() {
        let search = |input: &str| match ok(input) {
            Command::Search(s) => s,
            c => panic!("{c:?}"),
        };
        let d = |year, month, day| Date { year, month, day };
        let q = search("A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"");
        assert_eq!(
            q,
            Search {
                uid: false,
                returns: None,
                charset: None,
                key: SearchKey::And(vec![
                    SearchKey::Flagged,
                    SearchKey::Since(d(1994, 2, 1)),
                    SearchKey::Not(Box::new(SearchKey::From(s("Smith"))))
                ])
            }
        );
        // A charset this server does not read: the keys (octets of that charset, not UTF-8)
        // are left unparsed, for the server's NO [BADCHARSET] (RFC 9051 §6.4.4).
        let latin1 = parse_command(b"A9 SEARCH CHARSET ISO-8859-1 TEXT {3+}\r\n\xe9t\xe9\r\n");
        match latin1.map(|c| c.command) {
            Ok(Command::Search(q)) => assert_eq!(q.charset.as_deref(), Some("ISO-8859-1")),
            other => panic!("{other:?}"),
        }
        let q = search("A283 SEARCH TEXT \"string not in mailbox\"");
        assert_eq!(q.key, SearchKey::Text(s("string not in mailbox")));
        let q = search("A284 SEARCH CHARSET UTF-8 TEXT {14+}\r\nмедведь");
        assert_eq!((q.charset.as_deref(), q.key), (Some("UTF-8"), SearchKey::Text(s("медведь"))));
        // RFC 4731 §3 example.
        let q =
            search("A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"");
        assert_eq!(q.returns, Some(vec![SearchReturn::Min, SearchReturn::Count]));
        assert!(matches!(q.key, SearchKey::And(ref k) if k.len() == 3));
        let q = search("A285 UID SEARCH RETURN (MIN COUNT) OR (FROM a TO b) 1:*");
        assert!(q.uid);
        assert_eq!(q.returns, Some(vec![SearchReturn::Min, SearchReturn::Count]));
        assert_eq!(
            q.key,
            SearchKey::Or(
                Box::new(SearchKey::And(vec![SearchKey::From(s("a")), SearchKey::To(s("b"))])),
                Box::new(SearchKey::SequenceSet(SequenceSet::Ranges(vec![(
                    SeqBound::Value(1),
                    SeqBound::Star
                )])))
            )
        );
        assert_eq!(search("a SEARCH RETURN () ALL").returns, Some(vec![]));
        let q = search("a UID SEARCH RETURN (SAVE ALL MAX) UID $ KEYWORD $Forwarded UNKEYWORD x");
        assert_eq!(
            q.key,
            SearchKey::And(vec![
                SearchKey::Uid(SequenceSet::Saved),
                SearchKey::Keyword(s("$Forwarded")),
                SearchKey::Unkeyword(s("x"))
            ])
        );
        assert_eq!(search("a SEARCH $").key, SearchKey::SequenceSet(SequenceSet::Saved));
        assert_eq!(
            search("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338").key,
            SearchKey::ModSeq(620_162_338)
        );
        assert_eq!(search("a SEARCH MODSEQ 0").key, SearchKey::ModSeq(0));
        let all = "a SEARCH ALL ANSWERED BCC x BEFORE 01-Feb-1994 BODY x CC x DELETED DRAFT FLAGGED FROM x \
                   HEADER Message-ID \"<x>\" KEYWORD k LARGER 4294967296 NEW NOT SEEN OLD ON \"1-Feb-1994\" \
                   OR SEEN UNSEEN RECENT SEEN SENTBEFORE 1-Feb-1994 SENTON 1-Feb-1994 SENTSINCE 1-Feb-1994 \
                   SINCE 1-Feb-1994 SMALLER 1 SUBJECT x TEXT x TO x UID 1 UNANSWERED UNDELETED UNDRAFT \
                   UNFLAGGED UNKEYWORD k UNSEEN 1,2 MODSEQ 5";
        let SearchKey::And(keys) = search(all).key else { panic!() };
        assert_eq!(keys.len(), 37);
        assert_eq!(keys[12], SearchKey::Larger(4_294_967_296));
        assert_eq!(keys[10], SearchKey::Header(s("Message-ID"), s("<x>")));
        assert_eq!(err(b"a SEARCH FOO").reason, "unknown search key");
        assert_eq!(err(b"a SEARCH SINCE 30-Feb-2020").reason, "day out of range");
        assert_eq!(err(b"a SEARCH RETURN (BOGUS) ALL").reason, "unknown search return option");
        assert_eq!(err(b"a SEARCH").reason, "expected a space");
    }

    /// `spec/dmap.md` §6: ID's limits (RFC 2971 §3.3), each at the limit and one past.
    #[test]
    fn id_limits_at_and_past() {
        let pairs = |n: usize| {
            let p: Vec<String> = (0..n).map(|i| format!("\"f{i}\" \"v\"")).collect();
            format!("a ID ({})", p.join(" "))
        };
        assert!(
            matches!(ok(&pairs(MAX_ID_PAIRS)), Command::Id(Some(p)) if p.len() == MAX_ID_PAIRS)
        );
        err(pairs(MAX_ID_PAIRS + 1).as_bytes());
        let field = |n: usize| format!("a ID (\"{}\" NIL)", "f".repeat(n));
        assert!(matches!(ok(&field(MAX_ID_FIELD_LEN)), Command::Id(Some(_))));
        err(field(MAX_ID_FIELD_LEN + 1).as_bytes());
        let value = |n: usize| format!("a ID (\"name\" \"{}\")", "v".repeat(n));
        assert!(matches!(ok(&value(MAX_ID_VALUE_LEN)), Command::Id(Some(_))));
        err(value(MAX_ID_VALUE_LEN + 1).as_bytes());
    }

    /// `spec/dmap.md` §6: MAX_SEARCH_DEPTH at the limit and one past, for NOT, OR and lists.
    #[test]
    fn search_depth_at_and_past() {
        for (open, close) in [("NOT ", ""), ("(", ")"), ("OR ALL ", "")] {
            let at = format!(
                "a SEARCH {}ALL{}",
                open.repeat(MAX_SEARCH_DEPTH),
                close.repeat(MAX_SEARCH_DEPTH)
            );
            assert!(matches!(ok(&at), Command::Search(_)), "{open}");
            let past = format!(
                "a SEARCH {}ALL{}",
                open.repeat(MAX_SEARCH_DEPTH + 1),
                close.repeat(MAX_SEARCH_DEPTH + 1)
            );
            let e = err(past.as_bytes());
            assert_eq!(
                (e.tag, e.reason),
                (Some(Tag(s("a"))), "search keys nested too deep"),
                "{open}"
            );
        }
        // Deep input is refused without deep recursion.
        let deep = format!("a SEARCH {}ALL", "NOT ".repeat(100_000));
        assert_eq!(err(deep.as_bytes()).reason, "search keys nested too deep");
    }

    /// RFC 9051 §6.4.5 examples and macros; RFC 3516; RFC 7162 §3.1.4.1, §3.2.6.
    #[test]
    fn fetch_items_and_macros() {
        let fetch = |input: &str| match ok(input) {
            Command::Fetch(f) => f,
            c => panic!("{c:?}"),
        };
        let f = fetch("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])");
        assert_eq!(
            f.items,
            vec![
                FetchItem::Flags,
                FetchItem::BodySection {
                    peek: false,
                    section: Section {
                        part: vec![],
                        text: Some(SectionText::HeaderFields(vec![s("DATE"), s("FROM")]))
                    },
                    partial: None
                }
            ]
        );
        use FetchItem as I;
        assert_eq!(fetch("a FETCH 1 FAST").items, vec![I::Flags, I::InternalDate, I::Rfc822Size]);
        assert_eq!(
            fetch("a FETCH 1 all").items,
            vec![I::Flags, I::InternalDate, I::Rfc822Size, I::Envelope]
        );
        assert_eq!(
            fetch("a FETCH 1 FULL").items,
            vec![I::Flags, I::InternalDate, I::Rfc822Size, I::Envelope, I::Body]
        );
        assert_eq!(err(b"a FETCH 1 (FAST)").reason, "unknown fetch item");
        let f = fetch(
            "a FETCH * (ENVELOPE RFC822 RFC822.HEADER RFC822.TEXT RFC822.SIZE BODY BODYSTRUCTURE UID MODSEQ \
             INTERNALDATE BODY.PEEK[1.2.MIME]<0.1024> BODY[] BINARY.PEEK[1.2]<5.10> BINARY[] BINARY.SIZE[3] \
             BODY[3.HEADER.FIELDS.NOT (X-A \"X-B\")] BODY[2.TEXT] BODY.PEEK[TEXT] BODY[4.1])",
        );
        assert_eq!(f.items.len(), 19);
        assert_eq!(
            f.items[10],
            I::BodySection {
                peek: true,
                section: Section { part: vec![1, 2], text: Some(SectionText::Mime) },
                partial: Some((0, 1024))
            }
        );
        assert_eq!(f.items[12], I::Binary { peek: true, part: vec![1, 2], partial: Some((5, 10)) });
        assert_eq!(f.items[14], I::BinarySize(vec![3]));
        assert_eq!(
            f.items[15],
            I::BodySection {
                peek: false,
                section: Section {
                    part: vec![3],
                    text: Some(SectionText::HeaderFieldsNot(vec![s("X-A"), s("X-B")]))
                },
                partial: None
            }
        );
        assert_eq!(
            f.items[18],
            I::BodySection {
                peek: false,
                section: Section { part: vec![4, 1], text: None },
                partial: None
            }
        );
        let f = fetch("s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)");
        assert!(f.uid && f.vanished);
        assert_eq!(f.changed_since, Some(12345));
        assert_eq!(
            err(b"a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)").reason,
            "vanished needs uid fetch and changedsince"
        );
        assert_eq!(
            err(b"a UID FETCH 1 FLAGS (VANISHED)").reason,
            "vanished needs uid fetch and changedsince"
        );
        assert_eq!(err(b"a FETCH 1 BODY[MIME]").reason, "bad section text");
        assert_eq!(err(b"a FETCH 1 BODY[1]<0.0>").reason, "expected a nonzero number");
        assert_eq!(err(b"a FETCH 1 BODY.PEEK").reason, "expected a section");
    }

    /// RFC 9051 §6.4.6 examples, RFC 7162 §3.1.3.
    #[test]
    fn store_rfc9051_6_4_6() {
        // RFC 7162 §3.1.3 example.
        assert_eq!(
            ok("d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)"),
            Command::Store(Store {
                uid: false,
                set: set(&[(7, 7), (5, 5), (9, 9)]),
                unchanged_since: Some(320_162_338),
                mode: StoreMode::Add,
                silent: true,
                flags: vec![Flag::Deleted]
            })
        );
        assert_eq!(
            ok("A003 STORE 2:4 +FLAGS (\\Deleted)"),
            Command::Store(Store {
                uid: false,
                set: set(&[(2, 4)]),
                unchanged_since: None,
                mode: StoreMode::Add,
                silent: false,
                flags: vec![Flag::Deleted]
            })
        );
        assert_eq!(
            ok("a UID STORE 1 (UNCHANGEDSINCE 0) -flags.silent \\Seen $Junk \\X-Ext"),
            Command::Store(Store {
                uid: true,
                set: set(&[(1, 1)]),
                unchanged_since: Some(0),
                mode: StoreMode::Remove,
                silent: true,
                flags: vec![Flag::Seen, Flag::Keyword(s("$Junk")), Flag::Extension(s("X-Ext"))]
            })
        );
        let Command::Store(st) = ok("a STORE $ FLAGS ()") else { panic!() };
        assert_eq!((st.set, st.mode, st.flags), (SequenceSet::Saved, StoreMode::Replace, vec![]));
        assert_eq!(err(b"a STORE 1 FLAGS").reason, "expected a space");
        assert_eq!(err(b"a STORE 1 +FLAGS \\*").reason, "bad flag");
    }
}
