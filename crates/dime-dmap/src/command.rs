//! The commands a client sends (RFC 9051 §6, and the extensions of `spec/dmap.md` §3), as the
//! parser produces them: owned values, every string already unquoted and every literal read.
//! Mailbox names are as sent on the wire (modified UTF-7 for an IMAP4rev1 client, UTF-8 once
//! IMAP4rev2 or UTF8=ACCEPT is enabled): the session decodes them.

use zeroize::Zeroizing;

/// A command tag: 1 to [`crate::limits::MAX_TAG_LEN`] ASTRING-CHARs other than `+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(pub String);

/// One command with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedCommand {
    /// The tag.
    pub tag: Tag,
    /// The command.
    pub command: Command,
}

/// A command (RFC 9051 §6 and the extensions in `spec/dmap.md` §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// CAPABILITY.
    Capability,
    /// NOOP.
    Noop,
    /// LOGOUT.
    Logout,
    /// STARTTLS.
    StartTls,
    /// AUTHENTICATE mechanism [initial-response] (RFC 4959 SASL-IR).
    Authenticate {
        /// The mechanism name, upper-cased.
        mechanism: String,
        /// The initial response, when given: `=` is an empty one.
        initial: Option<SaslData>,
    },
    /// LOGIN user password.
    Login {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// ENABLE capability..., each upper-cased.
    Enable(Vec<String>),
    /// SELECT (`read_only` false) or EXAMINE (true), with the CONDSTORE / QRESYNC parameters.
    Select {
        /// The mailbox.
        mailbox: String,
        /// EXAMINE.
        read_only: bool,
        /// The CONDSTORE select parameter (RFC 7162 §3.1.8).
        condstore: bool,
        /// The QRESYNC select parameter (RFC 7162 §3.2.5).
        qresync: Option<Qresync>,
    },
    /// CREATE mailbox [(USE (special-use...))] (RFC 6154 §3).
    Create {
        /// The mailbox.
        mailbox: String,
        /// Special-use attributes asked for, as sent (`\Sent`...).
        special_use: Vec<String>,
    },
    /// DELETE mailbox.
    Delete(String),
    /// RENAME from to.
    Rename {
        /// The existing name.
        from: String,
        /// The new name.
        to: String,
    },
    /// SUBSCRIBE mailbox.
    Subscribe(String),
    /// UNSUBSCRIBE mailbox.
    Unsubscribe(String),
    /// LIST, with the LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and SPECIAL-USE
    /// (RFC 6154) options.
    List(List),
    /// LSUB reference pattern (IMAP4rev1).
    Lsub {
        /// The reference name.
        reference: String,
        /// The pattern.
        pattern: String,
    },
    /// NAMESPACE.
    Namespace,
    /// STATUS mailbox (items).
    Status {
        /// The mailbox.
        mailbox: String,
        /// The items asked for.
        items: Vec<StatusItem>,
    },
    /// `APPEND mailbox [flags] [date-time] literal` (a `literal8` with `binary`).
    Append {
        /// The mailbox.
        mailbox: String,
        /// The flags to set.
        flags: Vec<Flag>,
        /// The internal date, when given.
        date: Option<DateTime>,
        /// The message.
        message: Zeroizing<Vec<u8>>,
        /// Sent as `~{n}` (RFC 3516 / RFC 9051 literal8).
        binary: bool,
    },
    /// IDLE (RFC 2177); the session then waits for `DONE`.
    Idle,
    /// CHECK (IMAP4rev1; a NOOP).
    Check,
    /// CLOSE.
    Close,
    /// UNSELECT.
    Unselect,
    /// EXPUNGE.
    Expunge,
    /// UID EXPUNGE set (RFC 4315).
    UidExpunge(SequenceSet),
    /// SEARCH / UID SEARCH.
    Search(Search),
    /// FETCH / UID FETCH.
    Fetch(Fetch),
    /// STORE / UID STORE.
    Store(Store),
    /// COPY / UID COPY (`is_move` false) or MOVE / UID MOVE (true).
    Copy {
        /// UID variant.
        uid: bool,
        /// The messages.
        set: SequenceSet,
        /// The destination mailbox.
        mailbox: String,
        /// MOVE rather than COPY.
        is_move: bool,
    },
    /// ID (RFC 2971): NIL or field-value pairs.
    Id(Option<Vec<(String, Option<String>)>>),
}

/// SASL data (decoded base64), kept secret: it carries a password for PLAIN.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslData(pub Zeroizing<Vec<u8>>);

impl std::fmt::Debug for SaslData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SaslData({} octets)", self.0.len())
    }
}

/// A secret string (a password), never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The QRESYNC select parameter (RFC 7162 §3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    /// The UIDVALIDITY the client knows.
    pub uid_validity: u32,
    /// The HIGHESTMODSEQ the client knows.
    pub modseq: u64,
    /// The UIDs the client knows, when sent.
    pub known_uids: Option<SequenceSet>,
    /// The sequence-number / UID match data, when sent.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// A LIST command (RFC 9051 §6.3.9, RFC 5258, RFC 5819, RFC 6154).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct List {
    /// The selection options.
    pub selection: ListSelection,
    /// The reference name.
    pub reference: String,
    /// The patterns (one unless the client sent a parenthesised list).
    pub patterns: Vec<String>,
    /// The RETURN options.
    pub returns: ListReturn,
}

/// LIST selection options (RFC 5258 §3.1, RFC 6154 §3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[allow(clippy::struct_excessive_bools)]
pub struct ListSelection {
    /// SUBSCRIBED.
    pub subscribed: bool,
    /// REMOTE (no remote mailboxes here: accepted and ignored).
    pub remote: bool,
    /// RECURSIVEMATCH.
    pub recursive_match: bool,
    /// SPECIAL-USE.
    pub special_use: bool,
}

/// LIST RETURN options (RFC 5258 §3.2, RFC 5819, RFC 6154).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListReturn {
    /// SUBSCRIBED.
    pub subscribed: bool,
    /// CHILDREN.
    pub children: bool,
    /// SPECIAL-USE.
    pub special_use: bool,
    /// STATUS (items), RFC 5819.
    pub status: Option<Vec<StatusItem>>,
}

/// A STATUS data item (RFC 9051 §6.3.11, RFC 7162, RFC 8438).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    /// MESSAGES.
    Messages,
    /// UIDNEXT.
    UidNext,
    /// UIDVALIDITY.
    UidValidity,
    /// UNSEEN.
    Unseen,
    /// DELETED.
    Deleted,
    /// SIZE (RFC 8438).
    Size,
    /// HIGHESTMODSEQ (RFC 7162).
    HighestModSeq,
    /// RECENT (IMAP4rev1 only).
    Recent,
    /// APPENDLIMIT (RFC 7889).
    AppendLimit,
}

/// A message flag (RFC 9051 §2.3.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    /// `\Seen`.
    Seen,
    /// `\Answered`.
    Answered,
    /// `\Flagged`.
    Flagged,
    /// `\Deleted`.
    Deleted,
    /// `\Draft`.
    Draft,
    /// `\Recent` (IMAP4rev1; never stored).
    Recent,
    /// Another `\`-flag, as sent (without the backslash).
    Extension(String),
    /// A keyword (an atom), as sent.
    Keyword(String),
}

/// A date-time (RFC 9051 `date-time`): seconds since the Unix epoch and the zone offset in
/// minutes east of UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub unix: i64,
    /// Zone offset, minutes east of UTC.
    pub offset_minutes: i16,
}

/// A calendar date (RFC 9051 `date`), for SEARCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// Year.
    pub year: u16,
    /// Month, 1 to 12.
    pub month: u8,
    /// Day, 1 to 31.
    pub day: u8,
}

/// One end of a sequence range: a number or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqBound {
    /// A number (never 0).
    Value(u32),
    /// `*`: the largest number in use.
    Star,
}

impl SeqBound {
    /// One range `a:b` as the inclusive `(low, high)` it names when `*` is `star` (RFC 9051
    /// §9: `a:b` and `b:a` are the same range).
    pub fn range(a: SeqBound, b: SeqBound, star: u32) -> (u32, u32) {
        let v = |x| match x {
            SeqBound::Value(n) => n,
            SeqBound::Star => star,
        };
        (v(a).min(v(b)), v(a).max(v(b)))
    }
}

/// A sequence set (RFC 9051 `sequence-set`), or `$` (RFC 5182 SEARCHRES: the saved result).
/// Ranges are kept as sent, unexpanded: `1:4294967295` costs one range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceSet {
    /// Ranges; a single number `n` is `(n, n)`.
    Ranges(Vec<(SeqBound, SeqBound)>),
    /// `$`.
    Saved,
}

/// SEARCH / UID SEARCH (RFC 9051 §6.4.4, ESEARCH RETURN options, SEARCHRES).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// UID variant.
    pub uid: bool,
    /// The RETURN options: `None` when absent (an IMAP4rev1 `* SEARCH` answer unless
    /// IMAP4rev2 is enabled); `Some(empty)` for `RETURN ()` (meaning ALL).
    pub returns: Option<Vec<SearchReturn>>,
    /// The CHARSET, when given (upper-cased).
    pub charset: Option<String>,
    /// The criteria, ANDed: one key (an [`SearchKey::And`] for several).
    pub key: SearchKey,
}

/// An ESEARCH RETURN option (RFC 4731, RFC 5182).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchReturn {
    /// MIN.
    Min,
    /// MAX.
    Max,
    /// ALL.
    All,
    /// COUNT.
    Count,
    /// SAVE (RFC 5182).
    Save,
}

/// A search key (RFC 9051 §6.4.4, RFC 7162 MODSEQ). Nesting is bounded by
/// [`crate::limits::MAX_SEARCH_DEPTH`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// Several keys, all of which must match (a parenthesised list, or the top level).
    And(Vec<SearchKey>),
    /// ALL.
    All,
    /// ANSWERED.
    Answered,
    /// BCC string.
    Bcc(String),
    /// BEFORE date (internal date).
    Before(Date),
    /// BODY string.
    Body(String),
    /// CC string.
    Cc(String),
    /// DELETED.
    Deleted,
    /// DRAFT.
    Draft,
    /// FLAGGED.
    Flagged,
    /// FROM string.
    From(String),
    /// HEADER field-name string.
    Header(String, String),
    /// KEYWORD flag.
    Keyword(String),
    /// LARGER n.
    Larger(u64),
    /// NEW (IMAP4rev1: RECENT UNSEEN).
    New,
    /// NOT key.
    Not(Box<SearchKey>),
    /// OLD (IMAP4rev1: NOT RECENT).
    Old,
    /// ON date.
    On(Date),
    /// OR key key.
    Or(Box<SearchKey>, Box<SearchKey>),
    /// RECENT (IMAP4rev1).
    Recent,
    /// SEEN.
    Seen,
    /// SENTBEFORE date.
    SentBefore(Date),
    /// SENTON date.
    SentOn(Date),
    /// SENTSINCE date.
    SentSince(Date),
    /// SINCE date.
    Since(Date),
    /// SMALLER n.
    Smaller(u64),
    /// SUBJECT string.
    Subject(String),
    /// TEXT string.
    Text(String),
    /// TO string.
    To(String),
    /// UID set.
    Uid(SequenceSet),
    /// UNANSWERED.
    Unanswered,
    /// UNDELETED.
    Undeleted,
    /// UNDRAFT.
    Undraft,
    /// UNFLAGGED.
    Unflagged,
    /// UNKEYWORD flag.
    Unkeyword(String),
    /// UNSEEN.
    Unseen,
    /// A message sequence set (or `$`).
    SequenceSet(SequenceSet),
    /// MODSEQ [entry-name entry-type] n (RFC 7162 §3.1.5): the entry name is ignored.
    ModSeq(u64),
}

/// FETCH / UID FETCH (RFC 9051 §6.4.5, RFC 7162 CHANGEDSINCE and VANISHED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// UID variant (UID is then always returned).
    pub uid: bool,
    /// The messages.
    pub set: SequenceSet,
    /// The items, macros (ALL, FAST, FULL) expanded, in the order sent.
    pub items: Vec<FetchItem>,
    /// CHANGEDSINCE modseq.
    pub changed_since: Option<u64>,
    /// VANISHED (UID FETCH with CHANGEDSINCE only).
    pub vanished: bool,
}

/// A FETCH data item (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    /// FLAGS.
    Flags,
    /// INTERNALDATE.
    InternalDate,
    /// RFC822.SIZE.
    Rfc822Size,
    /// ENVELOPE.
    Envelope,
    /// BODYSTRUCTURE.
    BodyStructure,
    /// BODY (the non-extensible structure).
    Body,
    /// `BODY[section]<partial>` or `BODY.PEEK[...]`.
    BodySection {
        /// BODY.PEEK: do not set `\Seen`.
        peek: bool,
        /// The section.
        section: Section,
        /// `<offset.count>`.
        partial: Option<(u32, u32)>,
    },
    /// `BINARY[part]<partial>` or `BINARY.PEEK[...]`.
    Binary {
        /// BINARY.PEEK.
        peek: bool,
        /// The part number (empty: the whole message).
        part: Vec<u32>,
        /// `<offset.count>`.
        partial: Option<(u32, u32)>,
    },
    /// `BINARY.SIZE[part]`.
    BinarySize(Vec<u32>),
    /// UID.
    Uid,
    /// MODSEQ (RFC 7162).
    ModSeq,
    /// RFC822 (IMAP4rev1: BODY[]).
    Rfc822,
    /// RFC822.HEADER (IMAP4rev1: `BODY.PEEK[HEADER]`).
    Rfc822Header,
    /// RFC822.TEXT (IMAP4rev1: `BODY[TEXT]`).
    Rfc822Text,
}

/// A body section (RFC 9051 `section`): a part path and what of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// The part numbers (empty: the whole message).
    pub part: Vec<u32>,
    /// What of the part: `None` for all of it.
    pub text: Option<SectionText>,
}

/// The text specifier of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// HEADER.
    Header,
    /// HEADER.FIELDS (names), names as sent.
    HeaderFields(Vec<String>),
    /// HEADER.FIELDS.NOT (names).
    HeaderFieldsNot(Vec<String>),
    /// TEXT.
    Text,
    /// MIME (only after a part number).
    Mime,
}

/// STORE / UID STORE (RFC 9051 §6.4.6, RFC 7162 UNCHANGEDSINCE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// UID variant.
    pub uid: bool,
    /// The messages.
    pub set: SequenceSet,
    /// UNCHANGEDSINCE modseq.
    pub unchanged_since: Option<u64>,
    /// FLAGS, +FLAGS or -FLAGS.
    pub mode: StoreMode,
    /// `.SILENT`.
    pub silent: bool,
    /// The flags.
    pub flags: Vec<Flag>,
}

/// How STORE changes the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// FLAGS: replace.
    Replace,
    /// +FLAGS: add.
    Add,
    /// -FLAGS: remove.
    Remove,
}
