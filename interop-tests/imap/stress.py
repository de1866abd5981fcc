"""Concurrent model-based stress of dimed's IMAP server (test-plan.md, DMAP/IMAP): several
clients of one account APPEND, STORE, EXPUNGE and FETCH at random in two mailboxes for a while;
then, from a fresh session: every acknowledged APPEND that no client expunged is there, with
its body; no UID was given twice (APPENDUIDs and COPYUIDs all distinct per mailbox); what a
FETCH returned for a UID never changed; UIDs in each mailbox only ever increased.

Usage: stress.py HOST PORT CAFILE USER PASSWORD SECONDS CLIENTS SEED"""

import imaplib
import random
import re
import ssl
import sys
import threading
import time

host, port, cafile, user, pw, seconds, clients, seed = sys.argv[1:9]
port, seconds, clients, seed = int(port), float(seconds), int(clients), int(seed)
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
MAILBOXES = ["INBOX", "Stress"]

lock = threading.Lock()
appended = {}  # (mailbox, uid) -> body
expunged = set()  # (mailbox, uid), as far as a client knows it asked
seen_bodies = {}  # (mailbox, uid) -> body a FETCH returned
failures = []
ops = {"append": 0, "store": 0, "expunge": 0, "fetch": 0, "copy": 0}


def fail(what):
    with lock:
        failures.append(what)


def connect():
    m = imaplib.IMAP4_SSL(host, port, ssl_context=ctx)
    m.login(user, pw)
    return m


def worker(n):
    rnd = random.Random(seed * 1000 + n)
    m = connect()
    end = time.time() + seconds
    i = 0
    while time.time() < end and not failures:
        i += 1
        box = rnd.choice(MAILBOXES)
        op = rnd.choices(["append", "store", "expunge", "fetch", "copy"], [4, 3, 1, 3, 1])[0]
        try:
            if op == "append":
                body = (
                    f"From: s{n}@example.org\r\nSubject: stress {n}.{i}\r\n"
                    f"Message-ID: <{seed}.{n}.{i}@stress>\r\n\r\nbody {n}.{i} {rnd.random()}\r\n"
                ).encode()
                typ, data = m.append(box, None, None, body)
                if typ != "OK":
                    fail(f"APPEND {typ} {data}")
                    continue
                mo = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
                uid = int(mo.group(2))
                with lock:
                    if (box, uid) in appended:
                        fail(f"UID {uid} of {box} given twice")
                    appended[(box, uid)] = body
            else:
                typ, _ = m.select(box)
                if typ != "OK":
                    fail(f"SELECT {box} {typ}")
                    continue
                typ, data = m.uid("SEARCH", None, "ALL")
                uids = [int(u) for u in data[0].split()]
                if uids != sorted(uids):
                    fail(f"UIDs out of order in {box}: {uids}")
                if not uids:
                    continue
                pick = rnd.choice(uids)
                if op == "store":
                    flag = rnd.choice(["\\Flagged", "\\Seen", "$Stress"])
                    m.uid("STORE", str(pick), rnd.choice(["+FLAGS", "-FLAGS"]), f"({flag})")
                elif op == "expunge":
                    m.uid("STORE", str(pick), "+FLAGS", "(\\Deleted)")
                    typ, _ = m.uid("EXPUNGE", str(pick))
                    if typ == "OK":
                        with lock:
                            expunged.add((box, pick))
                elif op == "fetch":
                    typ, data = m.uid("FETCH", str(pick), "(BODY.PEEK[])")
                    if typ == "OK" and data and isinstance(data[0], tuple):
                        body = data[0][1]
                        with lock:
                            old = seen_bodies.setdefault((box, pick), body)
                            if old != body:
                                fail(f"UID {pick} of {box} changed content")
                elif op == "copy":
                    other = MAILBOXES[1 - MAILBOXES.index(box)]
                    typ, data = m.uid("COPY", str(pick), other)
                    if typ != "OK":
                        fail(f"UID COPY {typ} {data}")
                if rnd.random() < 0.3:
                    m.close()
            with lock:
                ops[op] += 1
        except imaplib.IMAP4.error as e:
            # A message expunged by another client between SEARCH and the command: allowed.
            if "NONEXISTENT" not in str(e):
                fail(f"{op}: {e}")
        except Exception as e:  # noqa: BLE001
            fail(f"{op}: {type(e).__name__} {e}")
    try:
        m.logout()
    except Exception:  # noqa: BLE001
        pass


m = connect()
m.create("Stress")
m.logout()
threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()

m = connect()
for box in MAILBOXES:
    m.select(box, readonly=True)
    typ, data = m.uid("SEARCH", None, "ALL")
    present = {int(u) for u in data[0].split()}
    for (b, uid), body in appended.items():
        if b != box or (b, uid) in expunged:
            continue
        if uid not in present:
            fail(f"acknowledged APPEND {box}/{uid} lost")
            continue
        typ, d = m.uid("FETCH", str(uid), "(BODY.PEEK[])")
        if d[0][1] != body:
            fail(f"{box}/{uid} has another body")
m.logout()

print(f"{ops} appended {len(appended)} expunged {len(expunged)}")
if failures:
    print("FAILED:", *failures[:10], sep="\n  ", file=sys.stderr)
    sys.exit(1)
print("stress ok")
