"""A scripted IMAP session against dimed covering every command of spec/dmap.md §4, with
Python's imaplib (and imapclient for IDLE). Exits non-zero at the first check that fails,
naming it. Usage: session.py HOST IMAPS_PORT IMAP_PORT CAFILE USER PASSWORD USER2 PASSWORD2"""

import base64
import imaplib
import re
import socket
import ssl
import sys
import threading
import time

host, imaps_port, imap_port, cafile, user, pw, user2, pw2, submission = sys.argv[1:10]
imaps_port, imap_port = int(imaps_port), int(imap_port)

ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False

step = "start"


def check(cond, what):
    if not cond:
        print(f"FAILED at {step}: {what}", file=sys.stderr)
        sys.exit(1)


def ok(resp, what=""):
    typ, data = resp
    check(typ == "OK", f"{what} answered {typ} {data!r}")
    return data


def no(fn, *args):
    try:
        typ, data = fn(*args)
    except imaplib.IMAP4.error as e:
        return str(e)
    check(typ == "NO", f"expected NO, got {typ} {data!r}")
    return data


def until_not_delayed(fn, *args):
    """Runs a login until it is not refused by the failure delay of spec/dimed.md Logins."""
    deadline = time.time() + 60
    while True:
        try:
            r = fn(*args)
        except imaplib.IMAP4.error as e:
            if "UNAVAILABLE" in str(e) and time.time() < deadline:
                time.sleep(0.5)
                continue
            return str(e)
        if r[0] == "NO" and b"UNAVAILABLE" in b"".join(r[1]) and time.time() < deadline:
            time.sleep(0.5)
            continue
        return r


def raw(m, cmd, *args):
    """A command imaplib does not know, its untagged responses gathered."""
    tag = m._new_tag()
    m.send(tag + b" " + cmd.encode() + b"".join(b" " + a.encode() for a in args) + b"\r\n")
    lines = []
    while True:
        line = m._get_line()
        if line.startswith(tag + b" "):
            return line[len(tag) + 1 :].decode(), lines
        # A literal: read it and the rest of its line.
        mo = re.search(rb"\{(\d+)\}$", line)
        while mo:
            data = m.read(int(mo.group(1)))
            rest = m._get_line()
            line = line + b"\r\n" + data + rest
            mo = re.search(rb"\{(\d+)\}$", rest)
        lines.append(line)


def msg(n, subject, body, frm="Bob <bob@example.org>", extra=b""):
    return (
        f"From: {frm}\r\nTo: {user}\r\nSubject: {subject}\r\n"
        f"Date: Mon, {n} Dec 2026 10:00:00 +0000\r\nMessage-ID: <{n}@example.org>\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


MIXED = (
    b"From: Carol <carol@example.net>\r\nTo: alice@example.test\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\n"
    b"Date: Tue, 8 Dec 2026 11:00:00 +0100\r\nMessage-ID: <mixed@example.net>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\npreamble\r\n--b1\r\n'
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"caf=C3=A9 canary-mixed\r\n--b1\r\nContent-Type: application/octet-stream\r\n"
    b'Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="a.bin"\r\n\r\n'
    b"AAECAwQFBgcICQ==\r\n--b1--\r\n"
)

# --- before TLS: STARTTLS port ---------------------------------------------------------
step = "plaintext port: LOGINDISABLED, STARTTLS"
p = imaplib.IMAP4(host, imap_port)
check("LOGINDISABLED" in p.capabilities, f"capabilities {p.capabilities}")
check("STARTTLS" in p.capabilities, "STARTTLS offered")
check(not any(c.startswith("AUTH=") for c in p.capabilities), "no AUTH= before TLS")
try:
    p.login(user, pw)
    check(False, "LOGIN before TLS accepted")
except imaplib.IMAP4.error as e:
    check("PRIVACYREQUIRED" in str(e), f"LOGIN before TLS: {e}")
ok(p.starttls(ssl_context=ctx), "STARTTLS")
ok(p.capability(), "CAPABILITY after TLS")
check("AUTH=PLAIN" in p.capabilities, f"AUTH=PLAIN after TLS: {p.capabilities}")
ok(p.login(user, pw), "LOGIN after STARTTLS")
check(p.logout()[0] == "BYE", "LOGOUT")

# --- logins ------------------------------------------------------------------------------
step = "logins"
m = imaplib.IMAP4_SSL(host, imaps_port, ssl_context=ctx)
bad = str(until_not_delayed(m.login, user, "wrong password"))
unknown = str(until_not_delayed(imaplib.IMAP4_SSL(host, imaps_port, ssl_context=ctx).login, "nobody@example.test", "x"))
check("AUTHENTICATIONFAILED" in bad and "AUTHENTICATIONFAILED" in unknown, f"{bad} / {unknown}")
check(bad == unknown, f"same text for wrong password and unknown user: {bad!r} {unknown!r}")
m = imaplib.IMAP4_SSL(host, imaps_port, ssl_context=ctx)
# AUTHENTICATE PLAIN, with the SASL-IR initial response (imaplib sends it when offered).
r = until_not_delayed(m.authenticate, "PLAIN", lambda _: f"\0{user}\0{pw}".encode())
check(not isinstance(r, str) and r[0] == "OK", f"AUTHENTICATE PLAIN {r}")
ok(m.noop(), "NOOP")
typ, lines = raw(m, "ID", '("name" "session.py")')
check(typ.startswith("OK") and any(b"* ID" in l for l in lines), f"ID {typ} {lines}")
typ, lines = raw(m, "ENABLE", "CONDSTORE", "QRESYNC")
check(typ.startswith("OK") and any(b"ENABLED" in l for l in lines), f"ENABLE {typ} {lines}")
typ, lines = raw(m, "NAMESPACE")
check(any(b'NAMESPACE (("" "/"))' in l for l in lines), f"NAMESPACE {lines}")

# --- mailboxes ---------------------------------------------------------------------------
step = "mailboxes"
ok(m.create("Work"), "CREATE Work")
ok(m.create("Work/Reports"), "CREATE Work/Reports")
typ, lines = raw(m, "CREATE", "Sent", "(USE (\\Sent))")
check(typ.startswith("OK"), f"CREATE-SPECIAL-USE {typ}")
typ, lines = raw(m, "CREATE", "Sent2", "(USE (\\Sent))")
check("USEATTR" in typ, f"second \\Sent: {typ}")
check("ALREADYEXISTS" in str(no(m.create, "Work")), "CREATE existing")
ok(m.create("Trash"), "CREATE Trash")
ok(m.rename("Trash", "Bin"), "RENAME")
ok(m.delete("Bin"), "DELETE")
check("NONEXISTENT" in str(no(m.delete, "Bin")), "DELETE missing")
check("CANNOT" in str(no(m.delete, "INBOX")), "DELETE INBOX")
# A mailbox is subscribed when it is created (spec/dmap.md §4.2).
ok(m.unsubscribe("Work/Reports"), "UNSUBSCRIBE")
ok(m.subscribe("Work"), "SUBSCRIBE")
typ, data = m.list()
names = [d.decode() for d in data]
check(any("INBOX" in n for n in names) and any('"Work/Reports"' in n or "Work/Reports" in n for n in names), f"LIST {names}")
check(any("\\HasChildren" in n and "Work" in n and "Reports" not in n for n in names), f"\\HasChildren {names}")
check(any("\\Sent" in n for n in names), f"special use in LIST {names}")
typ, lines = raw(m, "LIST", "(SUBSCRIBED)", '""', '"*"')
check(any(b"Work" in l and b"\\Subscribed" in l for l in lines), f"LIST (SUBSCRIBED) {lines}")
check(not any(b"Reports" in l for l in lines), f"LIST (SUBSCRIBED) only subscribed {lines}")
typ, lines = raw(m, "LIST", '""', '"*"', "RETURN", "(STATUS (MESSAGES UIDNEXT))")
check(any(b"* STATUS" in l for l in lines), f"LIST-STATUS {lines}")
typ, lines = raw(m, "LIST", "(SPECIAL-USE)", '""', '"*"')
check(len(lines) == 1 and b"\\Sent" in lines[0], f"LIST (SPECIAL-USE) {lines}")
typ, data = m.lsub()
check(any(b"Work" in d for d in data), f"LSUB {data}")
ok(m.unsubscribe("Work"), "UNSUBSCRIBE")
typ, data = m.list('""', "%")
check(not any(b"Reports" in d for d in data), f"LIST % {data}")
typ, data = m.list('""', '""')
check(any(b'"/"' in d for d in data), f"LIST delimiter {data}")

# --- APPEND, STATUS -------------------------------------------------------------------------
step = "append"
bodies = [msg(1, "first", b"one canary-1\r\n"), msg(2, "second", b"two\r\n"), MIXED]
uids = []
for i, b in enumerate(bodies):
    typ, data = m.append("INBOX", "(\\Seen)" if i == 1 else None, imaplib.Time2Internaldate(1796000000 + i), b)
    check(typ == "OK", f"APPEND {data}")
    mo = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
    check(mo, f"APPENDUID {data}")
    uids.append(int(mo.group(2)))
check(uids == sorted(uids) and len(set(uids)) == 3, f"UIDs increase {uids}")
check("TRYCREATE" in str(no(m.append, "Nowhere", None, None, bodies[0])), "APPEND to a missing mailbox")
typ, data = m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE HIGHESTMODSEQ DELETED)")
s = data[0].decode()
check("MESSAGES 3" in s and f"UIDNEXT {uids[-1] + 1}" in s and "UNSEEN 2" in s, f"STATUS {s}")
size = sum(len(b) for b in bodies)
check(f"SIZE {size}" in s, f"STATUS SIZE {s} vs {size}")

# --- SELECT, FETCH -------------------------------------------------------------------------
step = "select and fetch"
typ, data = m.select("INBOX")
check(typ == "OK" and data[0] == b"3", f"SELECT {typ} {data}")
typ, lines = raw(m, "SELECT", "INBOX")
check("[READ-WRITE]" in typ, f"SELECT answers READ-WRITE: {typ}")
typ, data = m.fetch("1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE)")
check(len([d for d in data if d]) == 3, f"FETCH 1:* {data}")
check(all(b"RFC822.SIZE" in d for d in data), f"sizes {data}")
check(str(len(bodies[0])).encode() in data[0], f"RFC822.SIZE {data[0]} vs {len(bodies[0])}")
typ, data = m.uid("FETCH", str(uids[0]), "(BODY.PEEK[])")
check(data[0][1] == bodies[0], f"BODY.PEEK[] byte-identical {data}")
typ, data = m.fetch("1", "(FLAGS)")
check(b"\\Seen" not in data[0], f"PEEK left \\Seen unset {data}")
typ, data = m.fetch("1", "(BODY[TEXT])")
check(data[0][1] == b"one canary-1\r\n", f"BODY[TEXT] {data}")
typ, data = m.fetch("1", "(FLAGS)")
check(b"\\Seen" in data[0], f"BODY[] set \\Seen {data}")
typ, data = m.fetch("3", "(BODYSTRUCTURE ENVELOPE BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BINARY.PEEK[2] BINARY.SIZE[2] BODY.PEEK[]<0.10>)")
joined = b"".join(x if isinstance(x, bytes) else x[0] + x[1] for x in data)
check(b'"mixed"' in joined.lower() or b'"MIXED"' in joined, f"BODYSTRUCTURE multipart {joined[:300]}")
check(b"caf=C3=A9 canary-mixed" in joined, f"BODY[1] {joined[:400]}")
check(b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09" in joined, f"BINARY[2] decoded {joined[:600]}")
check(b"BINARY.SIZE[2] 10" in joined, f"BINARY.SIZE {joined}")
check(b"From: Caro" in joined, f"partial {joined}")
typ, data = m.fetch("2", "(ENVELOPE)")
check(b'"second"' in data[0], f"ENVELOPE {data}")
typ, data = m.fetch("1", "(MODSEQ)")
check(b"MODSEQ (" in data[0], f"MODSEQ {data}")

# --- STORE, SEARCH ------------------------------------------------------------------------
step = "store and search"
typ, data = m.store("1", "+FLAGS", "(\\Flagged $Important)")
check(b"\\Flagged" in data[0] and b"$Important" in data[0], f"STORE +FLAGS {data}")
typ, data = m.store("1", "-FLAGS.SILENT", "($Important)")
check(typ == "OK", f"STORE .SILENT {typ} {data}")
typ, data = m.fetch("1", "(FLAGS)")
check(b"$Important" not in data[0] and b"\\Flagged" in data[0], f"after -FLAGS {data}")
typ, data = m.fetch("1", "(MODSEQ)")
modseq = int(re.search(rb"MODSEQ \((\d+)\)", data[0]).group(1))
typ, lines = raw(m, "STORE", "1", f"(UNCHANGEDSINCE {modseq - 1})", "+FLAGS", "(\\Answered)")
check("MODIFIED" in typ, f"UNCHANGEDSINCE refuses a changed message: {typ}")
typ, lines = raw(m, "STORE", "1", f"(UNCHANGEDSINCE {modseq})", "+FLAGS", "(\\Answered)")
check(typ.startswith("OK"), f"UNCHANGEDSINCE current: {typ}")
typ, data = m.search(None, "FLAGGED")
check(data[0].split() == [b"1"], f"SEARCH FLAGGED {data}")
typ, data = m.search(None, "OR", "SUBJECT", "second", "BODY", "canary-mixed")
check(sorted(data[0].split()) == [b"2", b"3"], f"SEARCH OR {data}")
typ, data = m.uid("SEARCH", None, "TEXT", "canary-1")
check(data[0].split() == [str(uids[0]).encode()], f"UID SEARCH TEXT {data}")
typ, data = m.search(None, "NOT", "SEEN")
check(data[0].split() == [b"3"], f"SEARCH NOT SEEN {data}")
typ, data = m.search(None, "FROM", "carol", "SINCE", "1-Jan-2020")
check(data[0].split() == [b"3"], f"SEARCH FROM SINCE {data}")
typ, data = m.search(None, "LARGER", "300")
check(b"3" in data[0].split(), f"SEARCH LARGER {data}")
typ, lines = raw(m, "SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "ALL")
check(any(b"ESEARCH" in l and b"MIN 1" in l and b"MAX 3" in l and b"COUNT 3" in l and b"ALL 1:3" in l for l in lines), f"ESEARCH {lines}")
typ, lines = raw(m, "SEARCH", "RETURN", "(SAVE)", "FLAGGED")
check(typ.startswith("OK"), f"SEARCH SAVE {typ}")
typ, lines = raw(m, "FETCH", "$", "(UID)")
check(len(lines) == 1 and lines[0].startswith(b"* 1 FETCH"), f"FETCH $ {lines}")
typ, lines = raw(m, "SEARCH", "MODSEQ", "1")
check(any(b"MODSEQ" in l for l in lines), f"SEARCH MODSEQ {lines}")
typ, data = m.search("UTF-8", "SUBJECT", "first")
check(data[0].split() == [b"1"], f"SEARCH CHARSET {data}")

# --- COPY, MOVE, EXPUNGE --------------------------------------------------------------------
step = "copy, move, expunge"
typ, lines = raw(m, "COPY", "1", "Work")
check(typ.startswith("OK [COPYUID "), f"COPY answers COPYUID: {typ}")
typ, lines = raw(m, "UID", "COPY", str(uids[1]), "Work")
check("COPYUID" in typ, f"UID COPY COPYUID {typ}")
typ, lines = raw(m, "MOVE", "2", "Work/Reports")
check(typ.startswith("OK") and any(b"COPYUID" in l for l in lines), f"MOVE {typ} {lines}")
check(any(b"VANISHED" in l or b"EXPUNGE" in l for l in lines), f"MOVE expunges {lines}")
typ, data = m.status("Work", "(MESSAGES)")
check(b"MESSAGES 2" in data[0], f"STATUS Work {data}")
m.store("1", "+FLAGS", "(\\Deleted)")
typ, lines = raw(m, "UID", "EXPUNGE", str(uids[2]))
check(typ.startswith("OK") and not any(b"VANISHED" in l or b"EXPUNGE" in l for l in lines), f"UID EXPUNGE of an undeleted message {lines}")
typ, lines = raw(m, "EXPUNGE")
check(any(b"VANISHED" in l for l in lines), f"EXPUNGE with QRESYNC: VANISHED {lines}")
typ, data = m.status("INBOX", "(MESSAGES)")
check(b"MESSAGES 1" in data[0], f"after EXPUNGE {data}")

# --- EXAMINE, QRESYNC, CLOSE, UNSELECT --------------------------------------------------------
step = "examine, qresync, close"
typ, lines = raw(m, "EXAMINE", "Work")
check("READ-ONLY" in typ, f"EXAMINE {typ}")
typ, lines = raw(m, "STORE", "1", "+FLAGS", "(\\Seen)")
check(typ.startswith("NO [READ-ONLY]"), f"STORE in EXAMINE: {typ}")
typ, lines = raw(m, "UNSELECT")
check(typ.startswith("OK"), f"UNSELECT {typ}")
typ, lines = raw(m, "SELECT", "INBOX")
validity = int(re.search(rb"UIDVALIDITY (\d+)", b"".join(lines)).group(1))
typ, lines = raw(m, "SELECT", "INBOX", f"(QRESYNC ({validity} 1))")
check(any(b"VANISHED (EARLIER)" in l for l in lines), f"SELECT QRESYNC {lines}")
typ, lines = raw(m, "UID", "FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE 1 VANISHED)")
check(any(b"VANISHED (EARLIER)" in l for l in lines), f"UID FETCH VANISHED {lines}")
typ, lines = raw(m, "CLOSE")
check(typ.startswith("OK"), f"CLOSE {typ}")

# --- a FETCH of many messages: batches rendered ahead while earlier ones are written ------------
step = "bulk fetch"
m.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # APPEND's literal at once
ok(m.create("Bulk"), "CREATE Bulk")
bulk = [msg(i % 28 + 1, f"bulk {i}", f"bulk body {i} ".encode() * (i % 50 + 1) + b"\r\n") for i in range(150)]
for b in bulk:
    ok(m.append("Bulk", None, None, b), "APPEND Bulk")
typ, lines = raw(m, "SELECT", "Bulk")
check(typ.startswith("OK"), f"SELECT Bulk {typ}")
# The first FETCH opens each message the slow way (it makes the read overlays), the second
# through them in batches: both give every message, in order, byte for byte.
for attempt in range(2):
    typ, data = m.fetch("1:*", "(BODY.PEEK[])")
    got = [d[1] for d in data if isinstance(d, tuple)]
    check(got == bulk, f"bulk FETCH pass {attempt}: {len(got)} messages, in order and equal")

# --- IDLE: a delivery by another session arrives within 1 s ----------------------------------
step = "idle"
from imapclient import IMAPClient

c = IMAPClient(host, port=imaps_port, ssl=True, ssl_context=ctx)
c.login(user, pw)
c.select_folder("INBOX")
other = imaplib.IMAP4_SSL(host, imaps_port, ssl_context=ctx)
other.login(user, pw)
c.idle()
# From the other session's tagged OK (the message is stored) to the EXISTS in IDLE: within
# 1 s (issue 21).
other.append("INBOX", None, None, msg(9, "idle", b"idle canary\r\n"))
t0 = time.time()
responses = c.idle_check(timeout=5)
dt = time.time() - t0
check(any(r[1] == b"EXISTS" for r in responses), f"IDLE EXISTS {responses}")
check(dt < 1.0, f"IDLE saw the APPEND {dt:.3f} s after it was stored")
print(f"idle: EXISTS {dt * 1000:.1f} ms after the APPEND's OK")
other.select("INBOX")
other.store("1", "+FLAGS", "(\\Flagged)")
t0 = time.time()
responses = c.idle_check(timeout=5)
dt = time.time() - t0
check(any(r[1] == b"FETCH" for r in responses), f"IDLE FETCH FLAGS {responses}")
check(dt < 1.0, f"IDLE saw the STORE {dt:.3f} s after it was stored")
print(f"idle: FETCH FLAGS {dt * 1000:.1f} ms after the STORE's OK")

# An expunge by another session: EXPUNGE in this IDLE (no QRESYNC), VANISHED in the IDLE of a
# session that enabled QRESYNC, each within 1 s of the EXPUNGE's tagged OK (RFC 7162 §3.2.10).
q = IMAPClient(host, port=imaps_port, ssl=True, ssl_context=ctx)
q.login(user, pw)
q.enable("QRESYNC")
q.select_folder("INBOX")
q.idle()
other.append("INBOX", None, None, msg(10, "idle expunge", b"to be expunged\r\n"))
check(any(r[1] == b"EXISTS" for r in q.idle_check(timeout=5)), "QRESYNC IDLE sees the APPEND")
check(any(r[1] == b"EXISTS" for r in c.idle_check(timeout=5)), "IDLE sees the APPEND")
gone = other.search(None, "SUBJECT", "\"idle expunge\"")[1][0].split()[-1]
other.store(gone, "+FLAGS", "(\\Deleted)")
q.idle_check(timeout=0.3)
c.idle_check(timeout=0.3)
ok(other.expunge(), "expunge")
t0 = time.time()
responses = c.idle_check(timeout=5)
dt = time.time() - t0
check(any(r[1] == b"EXPUNGE" and r[0] == int(gone) for r in responses), f"IDLE EXPUNGE {responses}")
check(dt < 1.0, f"IDLE saw the EXPUNGE {dt:.3f} s after it was done")
print(f"idle: EXPUNGE {dt * 1000:.1f} ms after the EXPUNGE's OK")
t0 = time.time()
responses = q.idle_check(timeout=5)
dt = time.time() - t0
check(any(b"VANISHED" in repr(r).encode() for r in responses), f"QRESYNC IDLE VANISHED {responses}")
check(not any(len(r) > 1 and r[1] == b"EXPUNGE" for r in responses), f"no EXPUNGE under QRESYNC {responses}")
check(dt < 1.0, f"QRESYNC IDLE saw the expunge {dt:.3f} s after it was done")
print(f"idle: VANISHED {dt * 1000:.1f} ms after the EXPUNGE's OK ({responses})")
q.idle_done()
q.logout()
c.idle_done()

# A message over DMTP (sent through the submission socket to the user itself): IDLE sees it
# within 1 s of its storing, and FETCH renders it from its chunks, verified (spec/dmap.md §5.2).
step = "idle sees a DMTP delivery"
import json

sub = socket.socket(socket.AF_UNIX)
sub.connect(submission)
subf = sub.makefile("rwb")


def call(req):
    subf.write(json.dumps(req).encode() + b"\n")
    subf.flush()
    return json.loads(subf.readline())


check(call({"op": "login", "user": user, "password": pw})["ok"], "submission login")
c.idle()
t0 = time.time()
r = call({"op": "send", "to": user, "subject": "over dmtp", "body": "dmtp canary body"})
check(r["ok"], f"send {r}")
responses = c.idle_check(timeout=10)
dt = time.time() - t0
check(any(r[1] == b"EXISTS" for r in responses), f"IDLE EXISTS after a DMTP delivery {responses}")
check(dt < 1.0, f"IDLE saw the DMTP delivery {dt:.3f} s after the send (stored before)")
print(f"idle: EXISTS {dt * 1000:.1f} ms after a DMTP send (queue, DMTP, storing and IDLE)")
c.idle_done()
n = max(r[0] for r in responses if r[1] == b"EXISTS")
c.use_uid = False
fetched = c.fetch([n], ["BODY.PEEK[]", "ENVELOPE"])
raw_msg = fetched[n][b"BODY[]"]
check(b"dmtp canary body" in raw_msg and b"Subject: over dmtp" in raw_msg, f"native rendering {raw_msg!r}")
check(fetched[n][b"ENVELOPE"].subject == b"over dmtp", f"ENVELOPE {fetched[n][b'ENVELOPE']}")
# The composer gives every message a Message-ID of the origin's domain (clients thread and
# de-duplicate by it), and ENVELOPE reports it.
mid = fetched[n][b"ENVELOPE"].message_id
check(mid is not None and mid.startswith(b"<") and mid.endswith(b"@example.test>"), f"Message-ID {mid!r}")
check(b"\r\nMessage-ID: " + mid + b"\r\n" in raw_msg, f"Message-ID in the rendering {raw_msg!r}")
sub.close()
c.logout()
other.logout()

# --- another user's mailboxes cannot be named ---------------------------------------------
step = "cross-user"
b = imaplib.IMAP4_SSL(host, imaps_port, ssl_context=ctx)
ok(b.login(user2, pw2), "second user")
for name in ["Work", "../alice/Work", "alice@example.test/Work", "#users/alice/Work", "INBOX/../Work"]:
    r = b.select(name)
    check(r[0] == "NO" and b"NONEXISTENT" in str(r[1]).encode() or r[0] == "NO", f"SELECT {name!r} {r}")
typ, data = b.list('""', "*")
check(all(b"Work" not in d for d in data), f"other user's LIST {data}")
b.logout()

typ, lines = raw(m, "LOGOUT")
check(typ.startswith("OK") and any(b"BYE" in l for l in lines), f"LOGOUT {typ}")
print("all checks passed")
