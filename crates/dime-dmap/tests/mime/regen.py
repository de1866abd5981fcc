#!/usr/bin/env python3
"""Regenerates the Dovecot golden answers for dime-dmap's MIME tests.

Starts a throwaway Dovecot 2.3 (`apt-get install dovecot-imapd`) on a loopback port with a
temporary configuration and maildir, APPENDs every `*.eml` of this directory and stores
Dovecot's answer to each FETCH item in `<name>.expected`. The Rust test
(`tests/mime_golden.rs`) compares dime's output with these files; Dovecot is not needed at
test time.

Format of `<name>.expected`: one record per item, `<item> <kind> <length>\n<bytes>\n`, where
kind is `raw` (the item's value as Dovecot wrote it, literals inline), `data` (the content of
the string or literal returned for a section), `nil` (NIL) or `no` (a tagged NO; the bytes
are its text).

Run as root: `python3 crates/dime-dmap/tests/mime/regen.py`.
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

ITEMS = [
    "BODYSTRUCTURE",
    "BODY",
    "ENVELOPE",
    "RFC822.SIZE",
    "BODY.PEEK[]",
    "BODY.PEEK[HEADER]",
    "BODY.PEEK[TEXT]",
    "BODY.PEEK[HEADER.FIELDS (From Subject)]",
    "BODY.PEEK[HEADER.FIELDS.NOT (Subject Date)]",
    "BODY.PEEK[1]",
    "BODY.PEEK[1.MIME]",
    "BODY.PEEK[2]",
    "BODY.PEEK[2.MIME]",
    "BODY.PEEK[2.HEADER]",
    "BODY.PEEK[2.TEXT]",
    "BODY.PEEK[2.1]",
    "BODY.PEEK[2.2]",
    "BODY.PEEK[2.1.MIME]",
    "BODY.PEEK[1.1]",
    "BODY.PEEK[1.2]",
    "BODY.PEEK[1.HEADER]",
    "BODY.PEEK[1.TEXT]",
    "BODY.PEEK[3]",
    "BODY.PEEK[5]",
    "BINARY.PEEK[1]",
    "BINARY.PEEK[2]",
    "BINARY.PEEK[]",
    "BINARY.SIZE[1]",
    "BINARY.SIZE[2]",
]

CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
passdb {{
  driver = static
  args = password=pw
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={d}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
}}
service anvil {{
  chroot =
}}
"""


class Imap:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.n = 0
        self.line()  # greeting

    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        i = self.buf.index(b"\r\n") + 2
        l, self.buf = self.buf[:i], self.buf[i:]
        return l

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def response(self):
        """One response with its literals inline."""
        out = b""
        while True:
            l = self.line()
            out += l
            m = re.search(rb"~?\{(\d+)\}\r\n$", l)
            if not m:
                return out
            out += self.take(int(m.group(1)))

    def cmd(self, text, literal=None):
        self.n += 1
        tag = b"a%d" % self.n
        if literal is None:
            self.s.sendall(tag + b" " + text + b"\r\n")
        else:
            self.s.sendall(tag + b" " + text + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        untagged = []
        while True:
            r = self.response()
            if r.startswith(tag + b" "):
                return untagged, r
            untagged.append(r)


def value(item, untagged, tagged):
    if not tagged.split(b" ")[1].startswith(b"OK"):
        # Without Dovecot's timing suffix " (0.001 + 0.000 secs).".
        return "no", re.sub(rb" \([0-9.]+ \+ [0-9.]+ secs\)\.$", b"", tagged.split(b" ", 2)[2].rstrip(b"\r\n"))
    fetch = [u for u in untagged if re.match(rb"\* \d+ FETCH ", u)]
    assert len(fetch) == 1, (item, untagged)
    r = fetch[0]
    body = r[r.index(b"(") + 1:]
    assert body.endswith(b")\r\n"), body
    body = body[:-3]
    # The item name as echoed: up to the first space outside brackets.
    depth = 0
    for i, c in enumerate(body):
        if c == ord("["):
            depth += 1
        elif c == ord("]"):
            depth -= 1
        elif c == ord(" ") and depth == 0:
            break
    v = body[i + 1:]
    if "[" not in item or item.startswith("BINARY.SIZE"):
        return "raw", v
    if v == b"NIL":
        return "nil", b""
    m = re.match(rb"~?\{(\d+)\}\r\n", v)
    if m:
        return "data", v[m.end():]
    if v.startswith(b'"'):
        return "data", re.sub(rb'\\(.)', rb"\1", v[1:-1])
    raise ValueError((item, v))


def main():
    d = tempfile.mkdtemp(prefix="dime-dovecot-")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    os.chmod(d, 0o755)
    os.makedirs(os.path.join(d, "mail"))
    shutil.chown(os.path.join(d, "mail"), "dovecot", "dovecot")
    with open(os.path.join(d, "dovecot.conf"), "w") as f:
        f.write(CONF.format(d=d, port=port))
    p = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", os.path.join(d, "dovecot.conf")])
    try:
        for _ in range(100):
            try:
                c = Imap(port)
                break
            except (OSError, EOFError):
                time.sleep(0.1)
        else:
            print(open(os.path.join(d, "log")).read())
            raise SystemExit("dovecot did not answer")
        c.cmd(b"LOGIN u pw")
        names = sorted(n[:-4] for n in os.listdir(HERE) if n.endswith(".eml"))
        for name in names:
            with open(os.path.join(HERE, name + ".eml"), "rb") as f:
                raw = f.read()
            c.cmd(b"CREATE " + name.encode())
            c.cmd(b"APPEND " + name.encode(), raw)
            c.cmd(b"SELECT " + name.encode())
            out = b""
            for item in ITEMS:
                u, t = c.cmd(b"FETCH 1 (" + item.encode() + b")")
                kind, v = value(item, u, t)
                out += b"%s %s %d\n" % (item.encode(), kind.encode(), len(v)) + v + b"\n"
            with open(os.path.join(HERE, name + ".expected"), "wb") as f:
                f.write(out)
            print(name)
        c.cmd(b"LOGOUT")
    finally:
        p.terminate()
        p.wait()
        if os.environ.get("KEEP"):
            print(d)
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
