#!/usr/bin/env python3
"""Writes the committed seeds of the fuzz targets store_codecs, delivery_log_replay,
queue_payload and key_files (fuzz/seeds/<target>/), in the input forms their doc comments
describe. Standard library only, plus the `openssl` command for the TLS seeds of key_files.
The dmtp_client seeds come from crates/dime-dmtp/tests/transcripts.rs instead.

Run from anywhere: `python3 fuzz/seeds/generate.py`; it rewrites the files it owns (the TLS key
and certificate are new each run, so only regenerate when a form changes).
"""
import base64
import hashlib
import os
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "..", "spec", "vectors")


def put(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def u8(v):
    return struct.pack(">B", v)


def u32(v):
    return struct.pack(">I", v)


def u64(v):
    return struct.pack(">Q", v)


def lp(b):
    return u32(len(b)) + b


# store_codecs: byte 0 picks the codec (see fuzz_targets/store_codecs.rs).
account = u8(1) + u8(0) + u64(1 << 30) + u64(4096) + u64(3) + u64(7) + u32(2) + u32(1)
put("store_codecs", "account", u8(0) + account)
put("store_codecs", "queue", u8(1) + u64(1700000000) + u32(2) + u64(1700000600) + lp(b""))
status = u8(2) + u8(2) + u64(1700000000) + u64(1700000300) + u32(1) + u64(1700000600)
put("store_codecs", "status", u8(2) + status + lp(b"\x00" * 24 + b"sealed" + b"\x00" * 16))
put("store_codecs", "mailbox", u8(3) + lp(b"sealed name") + u32(1700000000) + u32(5) + u64(9) + u32(4))
put("store_codecs", "entry", u8(4) + u64(3) + u64(9) + lp(b"sealed flags"))
put("store_codecs", "message", u8(5) + u64(1234) + u64(1700000000) + u32(1) + b"\x11" * 16
    + u32(2) + u32(0) + u32(1) + u32(3) + u32(1))
put("store_codecs", "keyring", u8(6) + u32(2) + u32(0) + b"\x01" * 64 + u32(1) + b"\x02" * 64)
put("store_codecs", "fields", u8(7) + u8(5) + bytes([0, 1, 2, 3, 4]) + u8(9) + u32(1) + u64(2)
    + b"\x03" * 16 + lp(b"bytes"))
put("store_codecs", "sealed", u8(8) + u8(0) + b"k" * 16 + b"body" + b"\x00" * 16)
put("store_codecs", "load-status", u8(9) + u64(5) + status + lp(b"\x00" * 40))
put("store_codecs", "status-round-trip", u8(10) + u8(1) + u8(2) + u64(1700000000) + u8(1)
    + u64(42) + u64(1699999000) + b"example.org\x00connection refused")


# delivery_log_replay: byte 0 the first sequence number (0xff: raw log), then records of
# flags, envelope length, envelope.
def records(first, recs):
    return u8(first) + b"".join(u8(f) + u8(len(e)) + e for f, e in recs)


put("delivery_log_replay", "one", records(1, [(0, b"sealed envelope one")]))
put("delivery_log_replay", "three", records(1, [(0, b"a" * 40), (0, b"b" * 200), (0, b"c")]))
put("delivery_log_replay", "cut-second", records(1, [(0, b"first"), (32, b"second, cut")]))
put("delivery_log_replay", "bad-checksum", records(1, [(0, b"x" * 30), (2, b"y" * 30), (0, b"z")]))
put("delivery_log_replay", "seq-gap", records(1, [(0, b"one"), (4, b"two"), (0, b"three")]))
put("delivery_log_replay", "other-account", records(1, [(16, b"nobody's"), (0, b"alice's")]))
put("delivery_log_replay", "zero-fill", records(1, [(64, b"then zeros"), (0, b"unreached")]))
put("delivery_log_replay", "below-mark", records(0, [(0, b"seq zero"), (0, b"seq one")]))
put("delivery_log_replay", "raw", b"\xffDLG1" + b"\x00" * 68)

# queue_payload: DQ2 (magic, time, SHA-512, envelope) and the older DQ1 (magic, time, envelope).
env = b"sealed envelope and its origin signature chunk"
put("queue_payload", "dq2", b"DQ2\x00" + u64(1700000000) + hashlib.sha512(env).digest() + env)
put("queue_payload", "dq1", b"DQ1\x00" + u64(1700000000) + env)
put("queue_payload", "dq2-empty", b"DQ2\x00" + u64(0) + hashlib.sha512(b"").digest())

# key_files: byte 0 picks the file (0 TLS, 1 org key, 2 user key).
for name, which in [
    ("dime-v1/org-key.b64", 1),
    ("signet/org-key-encrypted.b64", 1),
    ("signet/org-key-sok-encrypted.b64", 1),
    ("dime-v1/user-key.b64", 2),
    ("signet/user-key-plaintext.b64", 2),
    ("signet/user-key-encrypted.b64", 2),
]:
    with open(os.path.join(VECTORS, name), "rb") as f:
        text = f.read()
    stem = name.replace("/", "-").removesuffix(".b64")
    put("key_files", stem + ".b64", u8(which) + text)
    put("key_files", stem + ".bin", u8(which) + base64.b64decode(b"".join(text.split())))
with tempfile.TemporaryDirectory() as t:
    key, crt = os.path.join(t, "tls.key"), os.path.join(t, "tls.crt")
    for algo, opts in [("ed25519", []), ("ec", ["-pkeyopt", "ec_paramgen_curve:P-256"])]:
        subprocess.run(["openssl", "genpkey", "-algorithm", algo, *opts, "-out", key],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "req", "-new", "-x509", "-key", key, "-out", crt, "-days", "1",
                        "-subj", "/CN=mx.example.org"], check=True, capture_output=True)
        with open(crt, "rb") as c, open(key, "rb") as k:
            put("key_files", "tls-" + algo, u8(0) + c.read() + b"\x00" + k.read())
