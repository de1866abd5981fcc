import imaplib, ssl, sys
host, port, cert, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=cert)
ctx.check_hostname = False
imaplib.Debug = 4
m = imaplib.IMAP4_SSL(host, port, ssl_context=ctx)
print(m.capabilities)
print(m.login(user, pw))
print(m.list())
print(m.select("INBOX"))
msg = b"From: Bob <bob@example.org>\r\nTo: alice@example.test\r\nSubject: hello\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nHello canary body\r\n"
print(m.append("INBOX", "(\\Flagged)", None, msg))
print(m.fetch("1", "(UID FLAGS RFC822.SIZE BODY.PEEK[] ENVELOPE BODYSTRUCTURE)"))
print(m.logout())
