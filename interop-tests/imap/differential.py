"""Differential test of dime's DMAP against Dovecot 2.3 (issue 21), in IMAP4rev1 mode.

Both servers get the same seeded mailbox (every message of the corpus APPENDed with flags and
an explicit internal date), then the same random commands from a seeded generator. Every
response is parsed (strings, literals and lists become values, so quoting does not matter) and
normalised for what may differ by RFC (UIDVALIDITY values, MODSEQ, capability lists, texts
after the status and code, order of untagged responses, how FETCH data is split over
responses, how a set of expunges is numbered); the allowed differences (ALLOWED below, each
with its reason) are applied to both sides. Any other difference fails with the seed, the
command and both responses.

Driven by interop-tests/tests/imap_vs_dovecot.rs. Only the standard library.
"""

import argparse
import calendar
import os
import random
import re
import socket
import ssl
import sys
import time


# ---------------------------------------------------------------------------------------------
# A raw IMAP client: one command at a time, literals read by their announced length.


class Imap:
    def __init__(self, name, hostport, cert=None):
        self.name = name
        host, port = hostport.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=30)
        if cert:
            ctx = ssl.create_default_context(cafile=cert)
            ctx.check_hostname = False
            s = ctx.wrap_socket(s)
        self.sock = s
        self.buf = b""
        self.n = 0
        self.greeting = self.read_response_line()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError(f"{self.name}: connection closed")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n") + 2
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response_line(self):
        """One response with its literals inline (`{n}\\r\\n` + n octets)."""
        out = b""
        while True:
            line = self._line()
            out += line
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if not m:
                return out
            out += self._exact(int(m.group(1)))

    def command(self, text, literals=()):
        """Sends `tag text` (each `{n}` of text followed by the next literal, synchronising),
        returns the list of responses, the tagged one last."""
        self.n += 1
        tag = b"t%d" % self.n
        parts = re.split(rb"(\{\d+\}\r\n)", text)
        if not parts[-1].endswith(b"\r\n"):
            parts[-1] += b"\r\n"
        lits = list(literals)
        out = []
        self.sock.sendall(tag + b" " + parts[0])
        for i in range(1, len(parts), 2):
            self.sock.sendall(parts[i])
            r = self.read_response_line()
            if not r.startswith(b"+"):
                out.append(r)
                return tag, out
            self.sock.sendall(lits.pop(0) + parts[i + 1])
        while True:
            r = self.read_response_line()
            out.append(r)
            if r.startswith(tag + b" "):
                return tag, out


# ---------------------------------------------------------------------------------------------
# Parsing responses into values.


class Lit(bytes):
    """A string (quoted or literal): compared by value."""


def tokenize(data, pos=0, depth=0):
    """Parses a sequence of IMAP values up to `)` or the end: atoms (str), strings (Lit),
    NIL (None), lists (list). `BODY[...]<n>` style atoms keep their brackets."""
    out = []
    n = len(data)
    while pos < n:
        c = data[pos : pos + 1]
        if c in (b" ", b"\r", b"\n"):
            pos += 1
        elif c == b"(":
            sub, pos = tokenize(data, pos + 1, depth + 1)
            out.append(sub)
        elif c == b")":
            return out, pos + 1
        elif c == b'"':
            pos += 1
            s = b""
            while data[pos : pos + 1] != b'"':
                if data[pos : pos + 1] == b"\\":
                    pos += 1
                s += data[pos : pos + 1]
                pos += 1
            out.append(Lit(s))
            pos += 1
        elif c == b"{":
            m = re.match(rb"\{(\d+)\+?\}\r\n", data[pos:])
            k = int(m.group(1))
            start = pos + m.end()
            out.append(Lit(data[start : start + k]))
            pos = start + k
        elif c == b"~" and data[pos + 1 : pos + 2] == b"{":
            pos += 1
        else:
            start = pos
            while pos < n and data[pos : pos + 1] not in (b" ", b"(", b")", b"\r", b"["):
                pos += 1
            if data[pos : pos + 1] == b"[":
                d = 0
                while pos < n:
                    ch = data[pos : pos + 1]
                    d += ch == b"["
                    d -= ch == b"]"
                    pos += 1
                    if d == 0:
                        break
                while pos < n and data[pos : pos + 1] not in (b" ", b"(", b")", b"\r"):
                    pos += 1
            atom = data[start:pos].decode("latin-1")
            out.append(None if atom.upper() == "NIL" else atom)
    return out, pos


def freeze(v):
    if isinstance(v, list):
        return tuple(freeze(x) for x in v)
    return v


MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}


def date_epoch(s):
    """An INTERNALDATE as seconds since the epoch (the same instant may be written in any zone)."""
    m = re.match(r"\s*(\d+)-(\w+)-(\d+) (\d+):(\d+):(\d+) ([+-])(\d\d)(\d\d)", s.decode())
    d, mon, y, hh, mm, ss, sign, zh, zm = m.groups()
    t = calendar.timegm((int(y), MONTHS[mon.capitalize()], int(d), int(hh), int(mm), int(ss)))
    off = (int(zh) * 60 + int(zm)) * 60
    return t - off if sign == "+" else t + off


STATUS_KINDS = {"OK", "NO", "BAD", "BYE", "PREAUTH"}


def parse_code(rest):
    """`[CODE args] text` -> (CODE, args...) or None; the text is dropped."""
    if not rest.startswith(b"["):
        return None
    end = rest.index(b"]")
    toks, _ = tokenize(rest[1:end])
    return (toks[0].upper(),) + tuple(freeze(t) for t in toks[1:])


def parse(resp):
    """One response line (with literals) -> a normalised value."""
    if resp.startswith(b"+"):
        return ("+",)
    sp = resp.index(b" ")
    tag, rest = resp[:sp], resp[sp + 1 :]
    word = rest.split(b" ", 1)[0].rstrip(b"\r\n").upper().decode()
    if word in STATUS_KINDS:
        after = rest[len(word) :].lstrip(b" ")
        return ("status", word, parse_code(after))
    toks, _ = tokenize(rest)
    if toks and isinstance(toks[0], str) and toks[0].isdigit() and len(toks) >= 2:
        num, kind = int(toks[0]), toks[1].upper()
        if kind == "FETCH":
            items = toks[2]
            d = {}
            for i in range(0, len(items), 2):
                d[items[i].upper()] = items[i + 1]
            return ("FETCH", num, d)
        return (kind, num)
    kind = toks[0].upper()
    return (kind,) + tuple(freeze(t) for t in toks[1:])


# ---------------------------------------------------------------------------------------------
# Normalisation of one command's responses, and the allowed differences.


def flags_norm(fl, stats):
    out = []
    for f in fl:
        if f.upper() == "\\RECENT":
            stats["recent"] += 1
            continue
        out.append(f.lower() if f.startswith("\\") else f)
    return tuple(sorted(out, key=str.lower))


def fetch_norm(d, stats, sel):
    out = {}
    for k, v in d.items():
        if k == "MODSEQ":
            continue
        if k == "FLAGS":
            v = flags_norm(v, stats)
        elif k == "INTERNALDATE":
            v = date_epoch(v)
        elif k in ("BODYSTRUCTURE", "BODY") and isinstance(v, list):
            v = body_norm(v, stats)
        else:
            v = freeze(v)
        out[k] = v
    return out


def body_norm(v, stats):
    """A BODY/BODYSTRUCTURE: type, subtype and parameter names compared without case."""
    def low(x):
        return Lit(x.lower()) if isinstance(x, bytes) else x

    def norm(b):
        if b and isinstance(b[0], list):  # multipart
            i = 0
            parts = []
            while i < len(b) and isinstance(b[i], list):
                parts.append(norm(b[i]))
                i += 1
            rest = list(b[i:])
            rest[0] = low(rest[0])
            if len(rest) > 1 and isinstance(rest[1], list):
                rest[1] = [low(x) if j % 2 == 0 else x for j, x in enumerate(rest[1])]
            return ("multi", tuple(parts), freeze(rest))
        b = list(b)
        b[0], b[1] = low(b[0]), low(b[1])
        if isinstance(b[2], list):
            b[2] = [low(x) if j % 2 == 0 else x for j, x in enumerate(b[2])]
        if isinstance(b[5], bytes):
            b[5] = low(b[5])
        if b[0] == b"message" and b[1] == b"rfc822" and len(b) > 8:
            b[8] = norm(b[8])
        return freeze(b)

    return norm(v)


def normalise(responses, stats, sel):
    """-> (tagged status, untagged multiset, expunged original numbers, fetch by number)."""
    tagged = None
    untagged = []
    expunged = []
    orig = list(range(1, 10001))
    fetches = {}
    for r in responses:
        p = parse(r)
        if p[0] == "status" and not r.startswith(b"* "):
            code = p[2]
            tagged = (p[1], code_norm(code))
            continue
        if p[0] == "status":
            code = code_norm(p[2])
            if code is None and p[1] == "OK":
                continue  # an untagged OK with text only
            if code and code[0] in ("HIGHESTMODSEQ", "NOMODSEQ", "CAPABILITY"):
                continue
            untagged.append(("status", p[1], code))
        elif p[0] == "EXPUNGE":
            expunged.append(orig.pop(p[1] - 1))
        elif p[0] == "FETCH":
            d = fetches.setdefault(p[1], {})
            d.update(fetch_norm(p[2], stats, sel))
        elif p[0] == "CAPABILITY":
            continue
        elif p[0] == "RECENT":
            stats["recent"] += 1
            continue
        elif p[0] == "FLAGS":
            untagged.append(("FLAGS", flags_norm(p[1], stats)))
        elif p[0] == "SEARCH":
            untagged.append(("SEARCH",) + tuple(sorted(int(x) for x in p[1:])))
        elif p[0] == "STATUS":
            items = p[2]
            d = {}
            for i in range(0, len(items), 2):
                key = items[i].upper()
                if key == "RECENT":
                    stats["recent"] += 1
                    continue
                if key in ("UIDVALIDITY", "HIGHESTMODSEQ"):
                    continue
                d[key] = items[i + 1]
            untagged.append(("STATUS", mbox(p[1]), tuple(sorted(d.items()))))
        elif p[0] in ("LIST", "LSUB"):
            attrs = tuple(sorted(a.lower() for a in p[1]))
            untagged.append((p[0], attrs, p[2], mbox(p[3])))
        else:
            untagged.append(p)
    fetch = {k: tuple(sorted(v.items())) for k, v in fetches.items()}
    return (tagged, tuple(sorted(untagged, key=repr)), tuple(sorted(expunged)), fetch)


def mbox(name):
    n = name.decode("latin-1") if isinstance(name, bytes) else name
    return "INBOX" if n.upper() == "INBOX" else n


def expand(uidset):
    """A UID set as the list of its UIDs in order (`2:3` and `2,3` are one set)."""
    out = []
    for part in uidset.split(","):
        a, _, b = part.partition(":")
        lo, hi = int(a), int(b or a)
        out.extend(range(lo, hi + 1) if lo <= hi else range(lo, hi - 1, -1))
    return tuple(out)


def code_norm(code):
    if code is None:
        return None
    name = code[0]
    if name == "UIDVALIDITY":
        return (name,)
    if name in ("APPENDUID", "COPYUID"):
        return (name,) + tuple(expand(x) for x in code[2:])
    if name in ("HIGHESTMODSEQ",):
        return None
    if name == "PERMANENTFLAGS":
        return (name, tuple(sorted((f.lower() if f.startswith("\\") else f) for f in code[1])))
    return code


# ---------------------------------------------------------------------------------------------
# The allowed differences. Each is a rule over one command's two normalised results (dime,
# dovecot) that returns the pair rewritten, or None when it does not apply.

ALLOWED = []


def allowed(name, reason):
    def deco(fn):
        ALLOWED.append((name, reason, fn))
        return fn

    return deco


def verb_of(line):
    w = line.rstrip(b"\r\n").split(b" ")
    v = w[0].upper().decode()
    return "UID " + w[1].upper().decode() if v == "UID" else v


@allowed("read-only",
         "STORE or EXPUNGE in an EXAMINEd mailbox: Dovecot answers OK (\"Store ignored\", or an "
         "EXPUNGE of nothing) and may announce keywords in FLAGS, dime NO [READ-ONLY] "
         "(RFC 9051 §6.4.6, §6.4.3); neither changes anything")
def _(line, d, v):
    if verb_of(line).endswith(("STORE", "EXPUNGE")) and d[0] == ("NO", ("READ-ONLY",)) \
            and v[0][0] == "OK" and not v[3] and not v[2] and not d[1]:
        return d, d
    return None


@allowed("rename-to-itself",
         "RENAME of a name to itself: both NO; Dovecot says [ALREADYEXISTS] before it checks "
         "that the mailbox exists, dime [NONEXISTENT] when it does not")
def _(line, d, v):
    w = re.findall(rb'"([^"]*)"', line)
    if verb_of(line) == "RENAME" and len(w) == 2 and w[0] == w[1] and d[0][0] == v[0][0] == "NO":
        return d, d
    return None


def _flag_lists(untagged):
    """The untagged FLAGS and PERMANENTFLAGS lists -> (the rest, keywords, system lists)."""
    rest, keywords, system = [], set(), []
    for u in untagged:
        if u[0] == "FLAGS":
            fl = u[1]
        elif u[0] == "status" and u[2] and u[2][0] == "PERMANENTFLAGS":
            fl = u[2][1]
        else:
            rest.append(u)
            continue
        keywords |= {f for f in fl if not f.startswith("\\")}
        system.append((u[0], tuple(f for f in fl if f.startswith("\\"))))
    return rest, keywords, system


@allowed("keyword-lists",
         "FLAGS and PERMANENTFLAGS: Dovecot's keyword list of a mailbox only grows (a keyword "
         "once named, even by an ignored STORE, stays listed) and it announces new ones with an "
         "untagged FLAGS; dime lists the keywords in use. The system flags must agree, and "
         "every keyword dime lists must be in Dovecot's list")
def _(line, d, v):
    rd, kd, sd = _flag_lists(d[1])
    rv, kv, sv = _flag_lists(v[1])
    if rd != rv or not kd <= kv:
        return None
    if sd != sv and (verb_of(line) in ("SELECT", "EXAMINE") or sd):
        return None
    d = (d[0], tuple(rd), d[2], d[3])
    return d, (v[0], tuple(rv), v[2], v[3])


@allowed("dovecot-no-code",
         "a NO where Dovecot gives no response code and dime a more precise one (RFC 5530 "
         "codes are optional): Dovecot's SELECT/EXAMINE of a missing mailbox has no [NONEXISTENT]")
def _(line, d, v):
    if d[0][0] == v[0][0] == "NO" and v[0][1] is None and d[0][1] is not None \
            and d[0][1][0] in ("NONEXISTENT",) and d[1:] == v[1:]:
        return d, d
    return None


@allowed("store-unchanged",
         "STORE: Dovecot sends FETCH FLAGS only for the messages whose flags changed, dime for "
         "every message named; those Dovecot sends must agree (the state is compared by the "
         "FETCH FLAGS that follow)")
def _(line, d, v):
    if not verb_of(line).endswith("STORE") or not set(v[3]) <= set(d[3]):
        return None
    fd = {k: x for k, x in d[3].items() if k in v[3]}
    return (d[0], d[1], d[2], fd), v


@allowed("clientbug-hint",
         "Dovecot adds [CLIENTBUG] to the OK of a STATUS of the selected mailbox (a hint, "
         "RFC 5530 §3; RFC 9051 §6.3.11 only advises against it)")
def _(line, d, v):
    if verb_of(line) == "STATUS" and v[0] == ("OK", ("CLIENTBUG",)) and d[0] == ("OK", None):
        return d, (d[0],) + v[1:]
    return None


@allowed("copy-of-nothing",
         "UID COPY/MOVE of a set that names no message to a missing mailbox: Dovecot answers OK "
         "(\"No messages found\") without looking at the destination, dime NO [TRYCREATE]")
def _(line, d, v):
    if verb_of(line) in ("UID COPY", "UID MOVE") and d[0] == ("NO", ("TRYCREATE",)) \
            and v[0] == ("OK", None) and not v[1] and not v[2]:
        return d, d
    return None


ENCODED_MESSAGE = re.compile(
    rb"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: binary\r\n\r\n[A-Za-z0-9+/=\r\n]+\r\n--")


@allowed("binary-encoded-message",
         "BINARY[] of a message with a base64 message/rfc822 part: Dovecot leaves the part "
         "encoded while relabelling it binary and writes the next part's header twice (a "
         "Dovecot bug, also in crates/dime-dmap/tests/mime_golden.rs); dime decodes it")
def _(line, d, v):
    fd = dict(d[3])
    changed = False
    for k, items in v[3].items():
        vi, di = dict(items), dict(fd.get(k, ()))
        for key in [x for x in vi if x.startswith("BINARY[]")]:
            if vi[key] != di.get(key) and ENCODED_MESSAGE.search(vi[key] or b""):
                di[key] = vi[key]
                changed = True
        fd[k] = tuple(sorted(di.items()))
    return ((d[0], d[1], d[2], fd), v) if changed else None


@allowed("binary-size-unknown-cte",
         "BINARY.SIZE[1] when another part has an unknown encoding: Dovecot fails the FETCH "
         "with NO [UNKNOWN-CTE] although part 1 decodes (and BINARY[1] succeeds); dime answers "
         "the size (also in mime_golden.rs)")
def _(line, d, v):
    if b"BINARY.SIZE[" in line and v[0] == ("NO", ("UNKNOWN-CTE",)) and d[0][0] == "OK":
        return d, d
    return None


GEN = None  # the running generator: the rules below read its view of the mailboxes


@allowed("subscriptions-of-gone-names",
         "LSUB after a DELETE or RENAME: a dime subscription is an attribute of the mailbox and "
         "goes with it (spec/storage.md), Dovecot keeps the old name subscribed (RFC 3501 "
         "§6.3.9 lets it); the subscriptions of existing mailboxes must agree")
def _(line, d, v):
    if verb_of(line) != "LSUB" or GEN is None:
        return None

    def keep(r):
        lsub = tuple(u for u in r[1] if u[0] != "LSUB" or u[3] in GEN.mailboxes)
        return (r[0], lsub) + r[2:]

    return keep(d), keep(v)


@allowed("marked",
         "LIST: Dovecot adds \\Marked or \\UnMarked (optional hints, RFC 3501 §7.2.2); dime "
         "sends neither")
def _(line, d, v):
    def strip(r):
        out = []
        for u in r[1]:
            if u[0] in ("LIST", "LSUB"):
                u = (u[0], tuple(a for a in u[1] if a not in ("\\marked", "\\unmarked"))) + u[2:]
            out.append(u)
        return (r[0], tuple(sorted(out, key=repr))) + r[2:]

    return strip(d), strip(v)


@allowed("partial-of-empty-header-fields",
         "BODY[HEADER.FIELDS (...)]<1.n> when no field matches (the answer is the CRLF alone): "
         "Dovecot returns \\r for the octet at offset 1, which is \\n")
def _(line, d, v):
    fd = dict(d[3])
    changed = False
    for k, items in v[3].items():
        vi, di = dict(items), dict(fd.get(k, ()))
        for key in [x for x in vi if "HEADER.FIELDS" in x and ">" in x]:
            if vi[key] != di.get(key) and vi[key] == b"\r" and di.get(key) == b"\n":
                di[key] = vi[key]
                changed = True
        fd[k] = tuple(sorted(di.items()))
    return ((d[0], d[1], d[2], fd), v) if changed else None


@allowed("failed-fetch",
         "a FETCH both answer NO with the same code (BINARY of an unknown encoding): RFC 3516 "
         "fails the command; Dovecot sends the data of the messages before the failing one, "
         "dime stops at the first message that fails: only the tagged answers are compared")
def _(line, d, v):
    if verb_of(line).endswith("FETCH") and d[0] == v[0] and d[0][0] == "NO":
        return (d[0], d[1], d[2], {}), (v[0], v[1], v[2], {})
    return None


CLIENTS = {}  # "dime" -> Imap: for the rules that look at a message


def date_of(uid_mode, n):
    """The Date field of message n at dime (parsed), or None when it has none that parses."""
    import email.utils

    verb = b"UID FETCH" if uid_mode else b"FETCH"
    _, rs = CLIENTS["dime"].command(verb + b" %d (BODY.PEEK[HEADER.FIELDS (DATE)])\r\n" % n)
    for r in rs:
        m = re.search(rb"Date:([^\r\n]*)", r, re.I)
        if m:
            return email.utils.parsedate_tz(m.group(1).decode("latin-1").strip())
    return None


@allowed("sent-without-date",
         "SENTBEFORE/SENTON/SENTSINCE over a message without a Date field that parses: Dovecot "
         "reads it as the epoch (matched by SENTBEFORE), dime matches no SENT* key (RFC 3501 "
         "says nothing); every message they disagree on must lack such a Date")
def _(line, d, v):
    if b"SENT" not in line.upper() or not verb_of(line).endswith("SEARCH") or d[0] != v[0]:
        return None
    sd = [u for u in d[1] if u[0] == "SEARCH"]
    sv = [u for u in v[1] if u[0] == "SEARCH"]
    if len(sd) != 1 or len(sv) != 1:
        return None
    diff = set(sd[0][1:]) ^ set(sv[0][1:])
    uid_mode = verb_of(line).startswith("UID")
    if all(date_of(uid_mode, n) is None for n in diff):
        return d, (v[0], d[1]) + v[2:]
    return None


# What the generator leaves out because the two differ in a way that would make every later
# answer differ too (the reason for each).
NOT_EXERCISED = [
    ("RENAME INBOX", "Dovecot's Maildir refuses it (NO [CANNOT]); RFC 9051 §6.3.6 moves the "
     "messages to the new name, as dime does"),
    ("\\Recent, RECENT/NEW/OLD search keys", "dime never sets \\Recent (RFC 9051 dropped it; "
     "spec/dmap.md §4.3); Dovecot does: \\Recent is removed from FLAGS and RECENT counts are "
     "not compared"),
    ("RENAME or DELETE of the selected mailbox", "RFC 9051 leaves the selected state after it to "
     "the server; Dovecot's session then fails with internal errors"),
    ("MOVE from an EXAMINEd mailbox", "Dovecot moves the messages (expunging them from a "
     "read-only mailbox); dime answers NO [READ-ONLY]"),
    ("DELETE of a mailbox with children", "dime keeps the name as \\Noselect (RFC 3501 "
     "§6.3.4), Dovecot's Maildir++ keeps an empty selectable mailbox"),
    ("RENAME of a name that exists only as a parent (\\Noselect)", "Dovecot renames its "
     "children, dime answers NO [NONEXISTENT]"),
    ("BODY and TEXT with words that occur in MIME structure", "dime's BODY also searches the "
     "header of an encapsulated message/rfc822 and epilogues (BODY \"Mallory\", \"boundary\", "
     "\"inner\" match nested_rfc822, nested_close, nested_epilogue), Dovecot's only the leaf "
     "parts' text; Dovecot's TEXT also searches every MIME part's header (TEXT \"plain\" matches "
     "Content-Type: text/plain of a part), dime's only the message header and the bodies; "
     "Dovecot folds diacritics (\"a\" matches \"å\" of eightbit.eml), dime does not. "
     "RFC 3501 leaves the scope open; BODY/TEXT use words outside MIME structure"),
    ("a CREATE or RENAME alone", "dime subscribes a mailbox when it creates it (spec/dmap.md "
     "§4.2) and its subscriptions move with a RENAME, Dovecot does neither: Dovecot gets a "
     "SUBSCRIBE after each CREATE it accepts, and one for each name dime has subscribed under "
     "the new name after each RENAME"),
    ("internal dates in the future", "Dovecot stores the time of arrival instead"),
]


# ---------------------------------------------------------------------------------------------
# The seeded generator.

FLAGS = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]
KEYWORDS = ["$Forwarded", "$Junk", "$NotJunk", "Work", "todo"]
NAMES = ["Archive2", "Projects", "Projects/Alpha", "Projects/Beta", "Old", "Entw&APw-rfe", "Neu", "a b"]
HEADER_SECTIONS = [
    "HEADER",
    "TEXT",
    "HEADER.FIELDS (From Subject)",
    "HEADER.FIELDS (DATE MESSAGE-ID X-Missing)",
    "HEADER.FIELDS.NOT (From To Received)",
    "MIME",
]
SIMPLE_ITEMS = [
    "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY", "UID",
    "RFC822.HEADER",
]
# Words for FROM/TO/CC/SUBJECT; BODY and TEXT take only the first ones (NOT_EXERCISED).
BODY_WORDS = ["hello", "Berlin", "Grüße", "canary", "xyz-nothing", "judy", "QP", "Hallo",
              "report", "body"]
SEARCH_WORDS = BODY_WORDS + ["inner", "example", "plain", "html", "boundary", "Mallory"]


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Gen:
    def __init__(self, seed, corpus):
        self.r = random.Random(seed)
        self.corpus = corpus
        self.mailboxes = {"INBOX"}
        self.selected = None
        self.read_only = False
        self.noselect = set()
        self.exists = 0
        self.uidnext = 1

    def seqset(self):
        r = self.r
        n = max(self.exists, 1)
        c = r.random()
        if c < 0.15:
            return "1:*"
        if c < 0.25:
            return "*"
        a = r.randint(1, n)
        b = r.randint(a, n)
        if c < 0.6:
            return str(a)
        if c < 0.8:
            return f"{a}:{b}"
        return f"{a},{b}" if a != b else f"{a}:*"

    def uidset(self):
        r = self.r
        hi = self.uidnext + 2
        c = r.random()
        if c < 0.2:
            return "1:*"
        a = r.randint(1, hi)
        b = r.randint(a, hi + 3)
        return str(a) if c < 0.5 else f"{a}:{b}" if c < 0.8 else f"{b},{a}"

    def section(self):
        r = self.r
        c = r.random()
        if c < 0.3:
            s = r.choice(["", "HEADER", "TEXT", "HEADER.FIELDS (Subject)"])
        else:
            part = str(r.randint(1, 3))
            if r.random() < 0.4:
                part += "." + str(r.randint(1, 2))
            tail = r.choice(["", "", ".MIME", ".HEADER", ".TEXT"])
            s = part + tail
        return s

    def fetch_items(self):
        r = self.r
        c = r.random()
        if c < 0.08:
            return r.choice(["ALL", "FAST", "FULL"])
        items = r.sample(SIMPLE_ITEMS, r.randint(1, 3))
        for _ in range(r.randint(0, 2)):
            peek = "BODY.PEEK" if (r.random() < 0.7) else "BODY"
            sec = self.section() if r.random() < 0.5 else r.choice(HEADER_SECTIONS)
            if sec == "MIME":
                sec = "1.MIME"
            partial = ""
            if r.random() < 0.3:
                partial = f"<{r.choice([0, 1, 10, 100, 5000])}.{r.choice([1, 7, 100, 100000])}>"
            items.append(f"{peek}[{sec}]{partial}")
        if r.random() < 0.1:
            items.append(r.choice(["RFC822", "RFC822.TEXT"]))
        # BINARY may fail the FETCH (NO [UNKNOWN-CTE]): then only with items that set no flag,
        # since which \Seen a failed FETCH leaves set differs (see "failed-fetch").
        peek_only = not any(i.startswith(("BODY[", "RFC822")) and i != "RFC822.HEADER"
                            and i != "RFC822.SIZE" for i in items)
        if r.random() < 0.1 and peek_only:
            items.append(r.choice(["BINARY.PEEK[1]", "BINARY.SIZE[1]", "BINARY.PEEK[]"]))
        return "(" + " ".join(items) + ")"

    def search_key(self, depth=0):
        r = self.r
        c = r.randint(0, 24)
        if depth < 2 and c == 0:
            return f"NOT {self.search_key(depth + 1)}"
        if depth < 2 and c == 1:
            return f"OR {self.search_key(depth + 1)} {self.search_key(depth + 1)}"
        if depth < 2 and c == 2:
            return f"({self.search_key(depth + 1)} {self.search_key(depth + 1)})"
        if c <= 6:
            return r.choice(["ALL", "ANSWERED", "DELETED", "FLAGGED", "SEEN", "UNSEEN", "DRAFT",
                             "UNANSWERED", "UNDELETED", "UNFLAGGED", "UNDRAFT"])
        if c == 7:
            return f"KEYWORD {r.choice(KEYWORDS)}"
        if c == 8:
            return f"UNKEYWORD {r.choice(KEYWORDS)}"
        if c <= 12:
            key = r.choice(["FROM", "TO", "CC", "SUBJECT", "BODY", "TEXT", "BCC"])
            words = BODY_WORDS if key in ("BODY", "TEXT") else SEARCH_WORDS
            return f"{key} {quote(r.choice(words))}"
        if c == 13:
            h = r.choice(["Message-ID", "Content-Type", "X-Missing", "Subject"])
            return f"HEADER {h} {quote(r.choice(['example', 'multipart', '', 'inner']))}"
        if c == 14:
            return f"{r.choice(['LARGER', 'SMALLER'])} {r.choice([100, 300, 500, 700, 5000])}"
        if c <= 16:
            key = r.choice(["BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"])
            return f"{key} {r.randint(1, 28)}-{r.choice(['Nov', 'Dec'])}-2026"
        if c == 17:
            return f"UID {self.uidset()}"
        if c == 18:
            return self.seqset()
        return r.choice(["ALL", "SEEN", "FLAGGED"])

    def append(self, box=None):
        r = self.r
        msg = r.choice(self.corpus)
        fl = " ".join(r.sample(FLAGS[:3] + KEYWORDS[:2], r.randint(0, 2)))
        # Dates in the past: Dovecot takes the time of arrival for a date in the future.
        day = r.randint(1, 28)
        date = f'"{day:2d}-Nov-2026 {r.randint(0, 23):02d}:{r.randint(0, 59):02d}:07 +0000"'
        box = box or r.choice(sorted(self.mailboxes))
        return (f"APPEND {quote(box)} ({fl}) {date} {{{len(msg)}}}\r\n".encode(), [msg])

    def next(self):
        """One command: (line bytes, literals)."""
        r = self.r
        c = r.random()
        boxes = sorted(self.mailboxes)
        if self.selected is None or c < 0.06:
            verb = "SELECT" if r.random() < 0.75 else "EXAMINE"
            return (f"{verb} {quote(r.choice(boxes))}\r\n".encode(), [])
        if self.exists == 0 and c < 0.7:
            return self.append(self.selected) if r.random() < 0.8 else (b"NOOP\r\n", [])
        uid = "UID " if r.random() < 0.4 else ""
        sset = self.uidset() if uid else self.seqset()
        if c < 0.40:
            return (f"{uid}FETCH {sset} {self.fetch_items()}\r\n".encode(), [])
        if c < 0.52:
            op = r.choice(["+FLAGS", "-FLAGS", "FLAGS", "+FLAGS.SILENT", "-FLAGS.SILENT"])
            fl = " ".join(r.sample(FLAGS + KEYWORDS, r.randint(1, 3)))
            return (f"{uid}STORE {sset} {op} ({fl})\r\n".encode(), [])
        if c < 0.64:
            keys = " ".join(self.search_key() for _ in range(r.randint(1, 3)))
            cs = "CHARSET UTF-8 " if r.random() < 0.1 else ""
            return (f"{uid}SEARCH {cs}{keys}\r\n".encode(), [])
        if c < 0.70:
            verb = r.choice(["COPY", "COPY", "MOVE"] if not self.read_only else ["COPY"])
            dest = r.choice(boxes + ["Nowhere"])
            return (f"{uid}{verb} {sset} {quote(dest)}\r\n".encode(), [])
        if c < 0.73:
            return (b"EXPUNGE\r\n", [])
        if c < 0.76:
            name = r.choice(NAMES)
            return (f"CREATE {quote(name)}\r\n".encode(), [])
        if c < 0.80:
            # Never the selected mailbox nor a parent of it: RFC 9051 leaves the selected state
            # after that to the server (Dovecot's session fails on NOOP with an internal error).
            a, b = r.choice(NAMES), r.choice(NAMES)
            if a == self.selected or self.selected.startswith(a + "/"):
                return (b"UNSELECT\r\n", [])
            parent_only = a not in self.mailboxes and any(
                m.startswith(a + "/") for m in self.mailboxes)
            if a in self.noselect or parent_only:
                return (b"NOOP\r\n", [])
            if c < 0.78:
                return (f"RENAME {quote(a)} {quote(b)}\r\n".encode(), [])
            if any(m.startswith(a + "/") for m in self.mailboxes):
                return (f"DELETE {quote(a + '/' + 'Nothing')}\r\n".encode(), [])
            return (f"DELETE {quote(a)}\r\n".encode(), [])
        if c < 0.84:
            items = " ".join(r.sample(["MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"], r.randint(1, 4)))
            return (f"STATUS {quote(r.choice(boxes + ['Nowhere']))} ({items})\r\n".encode(), [])
        if c < 0.88:
            pat = r.choice(['"" "*"', '"" "%"', '"" "Projects/%"', '"" "INBOX"', '"" ""', '"" "P*"'])
            verb = "LIST" if r.random() < 0.8 else "LSUB"
            return (f"{verb} {pat}\r\n".encode(), [])
        if c < 0.90:
            verb = r.choice(["SUBSCRIBE", "UNSUBSCRIBE"])
            return (f"{verb} {quote(r.choice(boxes))}\r\n".encode(), [])
        if c < 0.94:
            return self.append()
        if c < 0.96:
            return (r.choice([b"CLOSE\r\n", b"UNSELECT\r\n", b"CHECK\r\n"]), [])
        return (b"NOOP\r\n", [])

    def observe(self, line, dovecot_responses):
        """Keeps the generator's view (from Dovecot's answers) of the mailbox state."""
        verb = line.rstrip(b"\r\n").split(b" ")[0].upper()
        tagged = dovecot_responses[-1].split(b" ", 2)
        ok = tagged[1].upper() == b"OK"
        if verb in (b"SELECT", b"EXAMINE"):
            self.selected = line.split(b" ", 1)[1].strip().strip(b'"').decode() if ok else None
            self.exists = 0
            self.read_only = verb == b"EXAMINE"
        if verb in (b"CLOSE", b"UNSELECT") and ok:
            self.selected = None
        for r in dovecot_responses:
            m = re.match(rb"\* (\d+) (EXISTS|EXPUNGE)", r)
            if m and m.group(2) == b"EXISTS":
                self.exists = int(m.group(1))
            elif m:
                self.exists -= 1
            m = re.search(rb"\[(?:APPENDUID|UIDNEXT) \d* ?(\d+)\]", r)
            if m:
                self.uidnext = max(self.uidnext, int(m.group(1)) + 1)
            m = re.search(rb"FETCH \(.*[( ]UID (\d+)", r)
            if m:
                self.uidnext = max(self.uidnext, int(m.group(1)) + 1)
        names = re.findall(rb'"([^"]*)"', line)
        if ok and verb == b"CREATE":
            self.mailboxes.add(names[0].decode())
        if ok and verb == b"DELETE":
            self.mailboxes.discard(names[0].decode())
        if ok and verb == b"RENAME":
            a, b = names[0].decode(), names[1].decode()
            for m in list(self.mailboxes):
                if m == a or m.startswith(a + "/"):
                    if a.upper() != "INBOX":
                        self.mailboxes.discard(m)
                    self.mailboxes.add(b + m[len(a):])
            if a.upper() == "INBOX":
                self.mailboxes.add("INBOX")
        if verb in (b"LIST",) and ok:
            names, noselect = set(), set()
            for r in dovecot_responses[:-1]:
                p = parse(r)
                if p[0] == "LIST":
                    names.add(mbox(p[3]))
                    if any(a.lower() == "\\noselect" for a in p[1]):
                        noselect.add(mbox(p[3]))
            if line.endswith(b'"" "*"\r\n'):
                self.mailboxes = names | {"INBOX"}
                self.noselect = noselect


# ---------------------------------------------------------------------------------------------


def load_corpus(path):
    out = []
    for name in sorted(os.listdir(path)):
        if name.endswith(".eml"):
            data = open(os.path.join(path, name), "rb").read()
            data = re.sub(rb"(?<!\r)\n", b"\r\n", data)
            out.append(data)
    return out


def describe(nd, nv):
    """Where two normalised results differ."""
    out = []
    if nd[0] != nv[0]:
        out.append(f"  tagged: dime {nd[0]!r}, dovecot {nv[0]!r}")
    only_d = [u for u in nd[1] if u not in nv[1]]
    only_v = [u for u in nv[1] if u not in nd[1]]
    if only_d or only_v:
        out.append(f"  untagged only from dime: {only_d!r}\n  untagged only from dovecot: {only_v!r}")
    if nd[2] != nv[2]:
        out.append(f"  expunged: dime {nd[2]!r}, dovecot {nv[2]!r}")
    for k in sorted(set(nd[3]) | set(nv[3])):
        a, b = dict(nd[3].get(k, ())), dict(nv[3].get(k, ()))
        for item in sorted(set(a) | set(b)):
            if a.get(item) != b.get(item):
                out.append(f"  message {k} {item}:\n    dime:    {a.get(item)!r}\n    dovecot: {b.get(item)!r}")
    return "\n".join(out)


def show(responses):
    return "\n".join("    " + r.decode("utf-8", "replace").rstrip("\r\n")[:600] for r in responses)


def run(args, seed):
    corpus = load_corpus(args.corpus)
    dime = Imap("dime", args.dime, args.dime_cert)
    dove = Imap("dovecot", args.dovecot)
    CLIENTS["dime"] = dime
    stats = {"recent": 0, "commands": 0}
    fired = {name: 0 for name, _, _ in ALLOWED}
    for c in (dime, dove):
        _, resp = c.command(f"LOGIN {quote(args.user)} {quote(args.password)}\r\n".encode())
        assert parse(resp[-1])[1] == "OK", (c.name, resp)
    global GEN
    gen = GEN = Gen(seed, corpus)
    script = []
    # The seeded mailbox: every message of the corpus in the INBOX, a few twice. A new dime
    # account has its INBOX subscribed, a new Dovecot user not: the same start for both.
    script.append((b"SUBSCRIBE INBOX\r\n", []))
    for i, msg in enumerate(corpus + corpus[:5]):
        fl = ["()", "(\\Seen)", "(\\Flagged $Forwarded)", "(\\Answered \\Seen)"][i % 4]
        date = f'"{1 + i % 28:2d}-Nov-2026 1{i % 10}:3{i % 6}:00 +0000"'
        script.append((f"APPEND INBOX {fl} {date} {{{len(msg)}}}\r\n".encode(), [msg]))
    for i in range(args.commands):
        if i < len(script):
            line, lits = script[i]
        else:
            line, lits = gen.next()
        stats["commands"] += 1
        _, rd = dime.command(line, lits)
        _, rv = dove.command(line, lits)
        if verb_of(line) == "CREATE" and parse(rv[-1])[1] == "OK":
            # dime subscribes a mailbox when it creates it (spec/dmap.md §4.2); Dovecot is told.
            dove.command(b"SUBSCRIBE " + line.split(b" ", 1)[1])
        if verb_of(line) == "RENAME" and parse(rv[-1])[1] == "OK":
            # dime's subscriptions move with the mailboxes; Dovecot's stay on the old names:
            # Dovecot is told what dime has subscribed under the new name.
            new = re.findall(rb'"([^"]*)"', line)[1]
            for pat in (new, new + b"/*"):
                _, subs = dime.command(b'LSUB "" "' + pat + b'"\r\n')
                for u in subs[:-1]:
                    p = parse(u)
                    if p[0] == "LSUB":
                        dove.command(b"SUBSCRIBE " + quote(mbox(p[3])).encode() + b"\r\n")
        gen.observe(line, rv)
        sel = gen.selected
        nd, nv = normalise(rd, stats, sel), normalise(rv, stats, sel)
        if nd != nv:
            for name, _, fn in ALLOWED:
                got = fn(line, nd, nv)
                if got is not None:
                    fired[name] += 1
                    nd, nv = got
                    if nd == nv:
                        break
        if args.verbose:
            print(f"C: {line.decode('utf-8', 'replace').rstrip()}")
            print("  dime:\n" + show(rd))
            if nd != nv:
                print("  dovecot:\n" + show(rv))
        if nd != nv:
            print(f"DIFFERENCE at seed {seed}, command {i}: {line.decode('utf-8', 'replace').rstrip()}")
            if len(b"".join(rd + rv)) < 4000:
                print("  dime:\n" + show(rd))
                print("  dovecot:\n" + show(rv))
            print(describe(nd, nv))
            return False, stats, fired
    return True, stats, fired


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dime", required=True)
    ap.add_argument("--dime-cert", required=True)
    ap.add_argument("--dovecot", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--commands", type=int, default=400)
    ap.add_argument("--verbose", action="store_true", default=os.environ.get("DIME_DIFF_VERBOSE") == "1")
    args = ap.parse_args()
    t = time.time()
    ok, stats, fired = run(args, args.seed)
    print(f"seed {args.seed}: {stats['commands']} commands in {time.time() - t:.1f} s, "
          f"{'equal' if ok else 'DIFFERENT'}")
    for name, reason in NOT_EXERCISED:
        print(f"  not exercised: {name}: {reason}")
    for name, reason, _ in ALLOWED:
        if fired[name]:
            print(f"  allowed {name} x{fired[name]}: {reason}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
