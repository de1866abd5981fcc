"""A scripted IMAP session for the real-client tests (imap_real_clients.rs).

    python3 ops.py HOST PORT CERT USER PASSWORD 'JSON list of operations'

Logs in over implicit TLS (trusting CERT, no host name check: the tests dial 127.0.0.1) and
runs each operation in order, failing (exit 1) on any response that is not OK:

    ["create", MAILBOX]
    ["unsubscribe", MAILBOX]
    ["append", MAILBOX, FLAGS, FILE]        FLAGS like "\\Seen \\Flagged" or ""
    ["store", MAILBOX, UID, ITEM, FLAGS]    ITEM like "+FLAGS.SILENT"
    ["delete_uid", MAILBOX, UID]            \\Deleted, then UID EXPUNGE of that UID
    ["dump", MAILBOX]                       prints "status<TAB>MAILBOX<TAB>(MESSAGES n UIDNEXT n
                                            HIGHESTMODSEQ n)", then one line per message in UID
                                            order: "MAILBOX<TAB>UID<TAB>FLAGS<TAB>BODY-HEX", FLAGS
                                            sorted and separated by spaces
"""

import imaplib
import json
import re
import ssl
import sys


def ok(result):
    typ, data = result
    if typ != "OK":
        raise SystemExit(f"IMAP error: {typ} {data!r}")
    return data


def quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    host, port, cert, user, password, ops = sys.argv[1:7]
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx, timeout=30)
    ok(m.login(user, password))
    for op in json.loads(ops):
        kind = op[0]
        if kind == "create":
            ok(m.create(quote(op[1])))
        elif kind == "unsubscribe":
            ok(m.unsubscribe(quote(op[1])))
        elif kind == "append":
            _, mailbox, flags, path = op
            with open(path, "rb") as f:
                body = f.read()
            ok(m.append(quote(mailbox), f"({flags})" if flags else None, None, body))
        elif kind == "store":
            _, mailbox, uid, item, flags = op
            ok(m.select(quote(mailbox)))
            ok(m.uid("STORE", str(uid), item, f"({flags})"))
        elif kind == "delete_uid":
            _, mailbox, uid = op
            ok(m.select(quote(mailbox)))
            ok(m.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)"))
            ok(m.uid("EXPUNGE", str(uid)))
        elif kind == "dump":
            mailbox = op[1]
            status = ok(m.status(quote(mailbox), "(MESSAGES UIDNEXT HIGHESTMODSEQ)"))
            status = status[0].decode()
            print(f"status\t{mailbox}\t{status[status.index('('):]}")
            ok(m.select(quote(mailbox), readonly=True))
            data = ok(m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])"))
            messages = []
            for i, item in enumerate(data):
                if not isinstance(item, tuple):
                    continue
                head, body = item
                # The items after the literal (if the server put any there) come next.
                tail = data[i + 1] if i + 1 < len(data) else b""
                head = head.decode() + (tail.decode() if isinstance(tail, bytes) else "")
                uid = int(re.search(r"UID (\d+)", head).group(1))
                flags = re.search(r"FLAGS \(([^)]*)\)", head).group(1).split()
                messages.append((uid, " ".join(sorted(flags)), body.hex()))
            for uid, flags, body in sorted(messages):
                print(f"{mailbox}\t{uid}\t{flags}\t{body}")
        else:
            raise SystemExit(f"unknown operation {op!r}")
    m.logout()


if __name__ == "__main__":
    main()
