#!/usr/bin/env python3
"""Independent computation of the key and pin values in tls.txt (Python `cryptography`, which
uses OpenSSL). Run from this directory: `python3 generate.py`. It prints the values; the vector
files were written from its output, by hand, with the expected parses worked out from
spec/dns-record.md."""
import base64, hashlib
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

def b64(b):
    return base64.b64encode(b).decode().rstrip("=")

def pub(seed):
    k = Ed25519PrivateKey.from_private_bytes(seed)
    return k, k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

for n in (0x11, 0x22, 0x33):
    _, p = pub(bytes([n]) * 32)
    print(f"pok seed {n:02x}x32 = {b64(p)}")

k, p = pub(bytes([0x11]) * 32)
der = open("example-cert.der", "rb").read()
digest = hashlib.sha512(der).digest()
print("sha512(example-cert.der) =", digest.hex())
print("tls =", b64(k.sign(digest)))
other = hashlib.sha512(open("other-cert.der", "rb").read()).digest()
print("tls(other-cert.der) =", b64(k.sign(other)))
