#!/usr/bin/env python3
"""Independent check of the signet vectors, written from spec/signet.md alone.

Reads spec/vectors/signet/ (dime v2: vectors.json, README.md) and spec/vectors/dime-v1/
(README.md) and, from the text of spec/signet.md only (no Rust source was read):

- parses every object (header §2, field order and widths §3, key forms §4.3/§4.4,
  identifiers §4.5) and re-encodes it byte for byte;
- runs the validation ladder of §6 (strict Ed25519 of §1) and compares the state;
- verifies every signature (§5), including the SOK permission rule and the chain of custody;
- computes every fingerprint of §7;
- checks the CRC-24 of §8.2 (check value; no vector is armored);
- decrypts the v2 encrypted key files (§9.3, Argon2id parameters read from the file) and
  checks that every private key gives the public key of its signet (§9.1, §9.2);
- runs negative checks (a flipped signature byte, a wrong passphrase, a flipped nonce byte).

Requires (pip): cryptography>=44 (Ed25519, X25519, SHA-512 via hashlib, secp256k1,
Argon2id with explicit lanes), pynacl (XChaCha20-Poly1305, and a libsodium cross-check of
Argon2id when p = 1):  pip install 'cryptography>=44' pynacl
Run: python3 interop-tests/signet_check.py   (exit status 0 on success)
"""

import base64
import hashlib
import json
import pathlib
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt
from nacl.exceptions import CryptoError
import nacl.pwhash

ROOT = pathlib.Path(__file__).resolve().parent.parent
V2 = ROOT / "spec" / "vectors" / "signet"
V1 = ROOT / "spec" / "vectors" / "dime-v1"

RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw

# ---------------------------------------------------------------- reporting

PASSED = 0
FAILED = 0


def check(name, ok, detail=""):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"PASS {name}")
    else:
        FAILED += 1
        print(f"FAIL {name}{': ' + detail if detail else ''}")
    return ok


def b64u(b):
    """Unpadded standard base64 (§1)."""
    return base64.b64encode(b).decode().rstrip("=")


def load_b64(path):
    return base64.b64decode("".join(path.read_text().split()), validate=True)


# ---------------------------------------------------------------- §2 header and magics

MAGIC_SSR, MAGIC_ORG, MAGIC_USER = 1215, 1776, 1789
KIND = {MAGIC_SSR: "ssr", MAGIC_ORG: "org", MAGIC_USER: "user"}
KEYFILE_MAGICS = {1952: ("org", "v1"), 2013: ("user", "v1"), 2049: ("org", "v2"),
                  2050: ("user", "v2"), 2065: ("org", "enc"), 2066: ("user", "enc"),
                  1947: ("org", "libdime-enc"), 1976: ("user", "libdime-enc")}
KEYFILE_MAX_PAYLOAD = 65536


class DecodeError(Exception):
    def __init__(self, state, msg):
        super().__init__(msg)
        self.state = state  # "Overflow" or "Malformed"


def split_object(data):
    if len(data) < 5:
        raise DecodeError("Overflow", "short header")
    magic = int.from_bytes(data[0:2], "big")
    length = int.from_bytes(data[2:5], "big")
    if len(data) - 5 < length:
        raise DecodeError("Overflow", f"header declares {length} payload bytes but only {len(data) - 5} follow")
    if len(data) - 5 > length:
        raise DecodeError("Malformed", "trailing bytes")
    if magic not in KIND and magic not in KEYFILE_MAGICS:
        raise DecodeError("Malformed", f"unknown magic {magic}")
    return magic, data[5:]


def header(magic, payload):
    return magic.to_bytes(2, "big") + len(payload).to_bytes(3, "big")


# ---------------------------------------------------------------- §3 fields

SIG_IDS = {"org": {4, 253, 255}, "user": {4, 5, 6, 253, 255}, "ssr": {4, 5, 6, 253, 255}}
REPEATABLE = {"org": {2, 21, 251}, "user": {3, 21, 202, 251}, "ssr": {3}}


def reserved(kind, fid):
    if fid == 0:
        return True
    if kind == "org":
        return 5 <= fid <= 15
    if kind == "user":
        return 7 <= fid <= 15
    return not 1 <= fid <= 5  # ssr


def width(kind, fid):
    """Length-prefix class of §3.2: 'sig', 1, 2, 'named', 3."""
    if fid in SIG_IDS[kind]:
        return "sig"
    if 1 <= fid <= 159 or fid == 254:
        return 1
    if 160 <= fid <= 250:
        return 2
    if fid == 251:
        return "named"
    return 3  # 252


class Field:
    def __init__(self, fid, start, end, data, name=None):
        self.id, self.start, self.end, self.data, self.name = fid, start, end, data, name


def parse_fields(kind, payload):
    fields = []
    o = 0
    n = len(payload)

    def need(k, what):
        if o + k > n:
            raise DecodeError("Overflow", f"{what} at offset {o} runs past the payload")

    while o < n:
        start = o
        fid = payload[o]
        if reserved(kind, fid):
            raise DecodeError("Malformed", f"reserved field id {fid} at offset {o}")
        if fields:
            prev = fields[-1].id
            if fid < prev:
                raise DecodeError("Malformed", f"field {fid} at offset {o} out of order")
            if fid == prev and fid not in REPEATABLE[kind]:
                raise DecodeError("Malformed", f"field {fid} at offset {o} is unique but appears again")
        o += 1
        w = width(kind, fid)
        name = None
        if w == "sig":
            need(64, f"signature {fid}")
            data = payload[o:o + 64]
            o += 64
        elif w == "named":
            need(1, "name length")
            nlen = payload[o]
            o += 1
            if nlen == 0:
                raise DecodeError("Malformed", "named field with an empty name")
            need(nlen, "name")
            name = payload[o:o + nlen]
            o += nlen
            need(2, "data length")
            dlen = int.from_bytes(payload[o:o + 2], "big")
            o += 2
            need(dlen, "data")
            data = payload[o:o + dlen]
            o += dlen
        else:
            need(w, f"field {fid} length")
            dlen = int.from_bytes(payload[o:o + w], "big")
            o += w
            need(dlen, f"field {fid} data")
            data = payload[o:o + dlen]
            o += dlen
        fields.append(Field(fid, start, o, bytes(data), None if name is None else bytes(name)))
    return fields


def encode_fields(kind, fields):
    out = bytearray()
    for f in fields:
        out.append(f.id)
        w = width(kind, f.id)
        if w == "sig":
            assert len(f.data) == 64
            out += f.data
        elif w == "named":
            out.append(len(f.name))
            out += f.name
            out += len(f.data).to_bytes(2, "big")
            out += f.data
        else:
            out += len(f.data).to_bytes(w, "big")
            out += f.data
    return bytes(out)


def first(fields, fid):
    for f in fields:
        if f.id == fid:
            return f
    return None


# ---------------------------------------------------------------- §1 strict Ed25519

P = 2 ** 255 - 19
L = 2 ** 252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def decompress(enc):
    """Edwards point (x, y) of a 32-byte encoding, or None when it does not decompress."""
    if len(enc) != 32:
        return None
    y = int.from_bytes(enc, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    y %= P
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if x == 0 and sign:
        return None
    if (x & 1) != sign:
        x = P - x
    return x, y


def edwards_add(p1, p2):
    x1, y1 = p1
    x2, y2 = p2
    t = D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P
    return x3, y3


def small_order(pt):
    q = pt
    for _ in range(3):
        q = edwards_add(q, q)
    return q == (0, 1)


def verify_strict(pub32, msg, sig):
    """§1: RFC 8032 Ed25519, S < L, A and R not of small order, points must decompress."""
    if len(pub32) != 32 or len(sig) != 64:
        return False
    a = decompress(pub32)
    r = decompress(sig[:32])
    if a is None or r is None or small_order(a) or small_order(r):
        return False
    if int.from_bytes(sig[32:], "little") >= L:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(pub32).verify(sig, msg)
        return True
    except (InvalidSignature, ValueError):
        return False


# ---------------------------------------------------------------- §4.3-§4.5 content


def ed_key(data):
    """§4.3: 0x40 || key (33) or the bare key (32); returns the 32-byte key or None."""
    if len(data) == 33 and data[0] == 0x40:
        return data[1:]
    if len(data) == 32:
        return data
    return None


def enc_key_ok(data):
    return len(data) == 33 and data[0] in (0x02, 0x03, 0x58)


def sok(data):
    """§4.4: permissions || 0x40 || key (34) or permissions || key (33)."""
    if len(data) not in (33, 34):
        return None
    k = ed_key(data[1:])
    return None if k is None else (data[0], k)


LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def domain_ok(s):
    if not s.isascii():
        return False
    if s.endswith("."):
        s = s[:-1]
    if not s or len(s) > 253:
        return False
    return all(LABEL.match(lab) for lab in s.split("."))


def canon_domain(s):
    s = s.lower()
    return s[:-1] if s.endswith(".") else s


def mailbox_ok(s):
    if "@" not in s:
        return False
    local, dom = s.rsplit("@", 1)
    lb = local.encode()
    if not 1 <= len(lb) <= 64:
        return False
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c.isspace() or c in '<>()[]\\,;:@"' for c in local):
        return False
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    return domain_ok(dom)


def identifier(kind, data):
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    ok = domain_ok(s) if kind == "org" else mailbox_ok(s)
    return s if ok else None


# ---------------------------------------------------------------- §6 ladder


class Signet:
    def __init__(self, label, data):
        self.label = label
        self.data = data
        self.magic, self.payload = split_object(data)
        if self.magic not in KIND:
            raise DecodeError("Malformed", f"magic {self.magic} is not a signet")
        self.kind = KIND[self.magic]
        self.fields = parse_fields(self.kind, self.payload)

    def f(self, fid):
        return first(self.fields, fid)

    def signing_key(self):
        f = self.f(1)
        return None if f is None else ed_key(f.data)

    def soks(self):
        return [sok(f.data) for f in self.fields if f.id == 2] if self.kind == "org" else []

    def ident(self):
        f = self.f(254)
        return None if f is None else identifier(self.kind, f.data)

    def signed_msg(self, fid):
        f = self.f(fid)
        return self.payload[:f.start], f.data


def ladder(data, org=None, previous=None, trusted_poks=None, label=""):
    """Returns (state, reason) per §6."""
    try:
        s = Signet(label, data)
    except DecodeError as e:
        return e.state, str(e)
    kind, fs = s.kind, s.fields
    ids = [f.id for f in fs]
    # 2. content
    if 1 in ids and s.signing_key() is None:
        return "Malformed", "field 1 is not an Ed25519 key"
    enc_id = 3 if kind == "org" else 2
    for f in fs:
        if f.id == enc_id and not enc_key_ok(f.data):
            return "Malformed", f"field {enc_id} is not an encryption key"
        if kind != "org" and f.id == 3 and not enc_key_ok(f.data):
            return "Malformed", "field 3 is not an encryption key"
        if kind == "org" and f.id == 2 and sok(f.data) is None:
            return "Malformed", "field 2 is not an SOK"
    if 254 in ids and s.ident() is None:
        return "Malformed", "field 254 is not a valid identifier"
    # 3. completeness
    required = {"org": [1, 3, 4], "user": [1, 2, 5, 6], "ssr": [1, 2, 5]}[kind]
    for r in required:
        if r not in ids:
            return "Incomplete", f"field {r} missing"
    if kind != "ssr":
        if (254 in ids) != (255 in ids):
            return "Incomplete", "254 present without 255 or the reverse"
        crypto = 4 if kind == "org" else 6
        if 253 not in ids and ids[-1] != crypto:
            return "Incomplete", "unsigned fields after the crypto signature"
    # 4. chain of custody
    if kind != "org" and previous is not None:
        pk = previous.signing_key()
        if pk is None:
            return "BrokenChainOfCustody", "previous signet has no valid key"
        if 4 not in ids:
            return "BrokenChainOfCustody", "field 4 missing"
        msg, sig = s.signed_msg(4)
        if not verify_strict(pk, msg, sig):
            return "BrokenChainOfCustody", "field 4 does not verify under the previous key"
    # 5. signatures
    if kind == "ssr":
        msg, sig = s.signed_msg(5)
        if not verify_strict(s.signing_key(), msg, sig):
            return "Invalid", "field 5"
        return "Ssr", ""
    if kind == "org":
        pok = s.signing_key()
        if trusted_poks is not None and pok not in trusted_poks:
            return "Invalid", "POK not trusted"
        for fid in (4, 253, 255):
            if fid in ids:
                msg, sig = s.signed_msg(fid)
                if not verify_strict(pok, msg, sig):
                    return "Invalid", f"field {fid}"
    else:
        msg, sig = s.signed_msg(5)
        if not verify_strict(s.signing_key(), msg, sig):
            return "Invalid", "field 5"
        auth = []
        if org is not None:
            auth.append(org.signing_key())
            auth += [k for perm, k in org.soks() if perm & 1]
        if trusted_poks:
            auth += list(trusted_poks)
        if org is None and trusted_poks is None:
            return "Ssr", "organisation not given"
        for fid in (6, 253, 255):
            if fid in ids:
                msg, sig = s.signed_msg(fid)
                if not any(verify_strict(k, msg, sig) for k in auth):
                    return "Invalid", f"field {fid}"
        if org is not None and s.ident() is not None and org.ident() is not None:
            if canon_domain(s.ident().rsplit("@", 1)[1]) != canon_domain(org.ident()):
                return "Invalid", "mailbox domain differs from the org domain"
    # 6.
    if 255 in ids:
        return "Id", ""
    if 253 in ids:
        return "Full", ""
    return "Crypto", ""


# ---------------------------------------------------------------- §7 fingerprints


def fingerprints(s):
    def through(fid):
        f = [x for x in s.fields if x.id == fid]
        return None if not f else b64u(hashlib.sha512(s.payload[:f[-1].end]).digest())

    whole = b64u(hashlib.sha512(s.payload).digest())
    out = {}
    if s.kind == "ssr":
        out["ssr"] = whole
    else:
        if s.kind == "user":
            out["ssr"] = through(5)
        out["crypto"] = through(4 if s.kind == "org" else 6)
        out["full"] = through(253)
        out["id"] = whole if s.f(255) is not None else None
    return {k: v for k, v in out.items() if v is not None}


# ---------------------------------------------------------------- §8.2 CRC-24


def crc24(data):
    crc = 0xB704CE
    for b in data:
        crc ^= b << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


# ---------------------------------------------------------------- §9 key files


def parse_plain_keyfile(data):
    """§9.1 / §9.2: returns dict(kind, version, ed, soks, enc)."""
    magic, payload = split_object(data)
    if len(payload) > KEYFILE_MAX_PAYLOAD:
        raise ValueError("key file payload too large")
    kind, ver = KEYFILE_MAGICS[magic]
    if ver not in ("v1", "v2"):
        raise ValueError(f"magic {magic} is not a plaintext key file")
    o, items = 0, []
    while o < len(payload):
        if o + 2 > len(payload):
            raise ValueError("truncated field")
        fid, ln = payload[o], payload[o + 1]
        if o + 2 + ln > len(payload):
            raise ValueError("truncated field data")
        items.append((fid, payload[o + 2:o + 2 + ln]))
        o += 2 + ln
    ids = [i for i, _ in items]
    if ids != sorted(ids):
        raise ValueError("ids not ascending")
    out = {"kind": kind, "version": ver, "magic": magic, "soks": []}
    enc_id = 3 if kind == "org" else 2
    if ids[0] != 1 or ids[-1] != enc_id:
        raise ValueError(f"fields {ids}")
    middle = ids[1:-1]
    if middle and not (ver == "v2" and kind == "org" and set(middle) == {2}):
        raise ValueError(f"unexpected fields {ids}")
    for fid, d in items:
        if fid == 1:
            if len(d) != 32:
                raise ValueError("seed length")
            out["ed"] = d
        elif fid == 2 and kind == "org":
            if len(d) != 33:
                raise ValueError("SOK length")
            out["soks"].append((d[0], d[1:]))
        else:
            if len(d) != 32:
                raise ValueError("encryption secret length")
            out["enc"] = d
    # re-encode
    re_payload = b"".join(bytes([fid, len(d)]) + d for fid, d in items)
    out["reencoded"] = header(magic, re_payload) + re_payload
    return out


def kdf(passphrase, salt, m, t, p):
    return Argon2id(salt=salt, length=32, iterations=t, lanes=p, memory_cost=m).derive(passphrase)


def decrypt_keyfile(data, passphrase):
    """§9.3: returns (params, inner plaintext file)."""
    magic, payload = split_object(data)
    if len(payload) > KEYFILE_MAX_PAYLOAD:
        raise ValueError("key file payload too large")
    kind, ver = KEYFILE_MAGICS[magic]
    if ver != "enc":
        raise ValueError(f"magic {magic} is not a v2 encrypted key file")
    if len(payload) < 53 + 16:
        raise ValueError("short payload")
    if payload[0] != 1:
        raise ValueError(f"format {payload[0]}")
    m, t, p = (int.from_bytes(payload[i:i + 4], "big") for i in (1, 5, 9))
    if not (8192 <= m <= 2097152 and 1 <= t <= 16 and 1 <= p <= 8 and m >= 8 * p):
        raise ValueError(f"parameters out of range m={m} t={t} p={p}")
    if not 1 <= len(passphrase) <= 4096:
        raise ValueError("passphrase length")
    salt, nonce = payload[13:29], payload[29:53]
    key = kdf(passphrase, salt, m, t, p)
    aad = data[:5] + payload[:53]
    inner = crypto_aead_xchacha20poly1305_ietf_decrypt(payload[53:], aad, nonce, key)
    return {"m": m, "t": t, "p": p, "salt": salt, "key": key}, inner, kind


def ed_pub(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(*RAW)


def x25519_pub(secret):
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(*RAW)


def secp256k1_pub(scalar):
    k = ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256K1())
    return k.public_key().public_bytes(serialization.Encoding.X962,
                                       serialization.PublicFormat.CompressedPoint)


def keys_match(tag, keys, signet):
    """Private keys of a key file against the public keys of its signet."""
    check(f"{tag}: Ed25519 seed gives the signet's field 1", ed_pub(keys["ed"]) == signet.signing_key())
    enc_id = 3 if signet.kind == "org" else 2
    enc = signet.f(enc_id).data
    if keys["version"] == "v1":
        check(f"{tag}: secp256k1 scalar gives the signet's field {enc_id}", secp256k1_pub(keys["enc"]) == enc)
    else:
        check(f"{tag}: X25519 secret gives the signet's field {enc_id} (0x58 form)",
              enc == b"\x58" + x25519_pub(keys["enc"]))
    if signet.kind == "org":
        want = signet.soks()
        got = [(perm, ed_pub(seed)) for perm, seed in keys["soks"]]
        check(f"{tag}: {len(got)} SOK seed(s) and permissions match the signet's field 2 in order",
              got == want, f"{got} vs {want}")


# ---------------------------------------------------------------- the checks


def check_signet_structure(tag, s):
    re_payload = encode_fields(s.kind, s.fields)
    check(f"{tag}: re-encodes byte for byte", header(s.magic, re_payload) + re_payload == s.data)


def check_prefix(tag, user, ssr):
    check(f"{tag}: payload starts with the SSR's payload (§5.3)",
          user.payload[:len(ssr.payload)] == ssr.payload and user.f(6).start == len(ssr.payload))


def run_v2():
    meta = json.loads((V2 / "vectors.json").read_text())
    signets = {}
    for v in meta["signets"]:
        name = v["file"]
        tag = f"v2 {name}"
        data = load_b64(V2 / name)
        try:
            s = Signet(name, data)
        except DecodeError as e:
            check(f"{tag}: parses", False, str(e))
            continue
        check(f"{tag}: parses ({s.kind}, {len(s.fields)} fields)", True)
        signets[name] = s
        check(f"{tag}: magic {v['magic']}", s.magic == v["magic"], str(s.magic))
        check(f"{tag}: payload length {v['payload_len']}", len(s.payload) == v["payload_len"], str(len(s.payload)))
        ids = [f.id for f in s.fields]
        check(f"{tag}: field ids {ids}", ids == v["field_ids"], f"json {v['field_ids']}")
        check_signet_structure(tag, s)
        check(f"{tag}: signing key (field 1, 0x40 form) = json signing_key",
              s.f(1).data[0] == 0x40 and len(s.f(1).data) == 33 and b64u(s.signing_key()) == v["signing_key"])
        enc = s.f(3 if s.kind == "org" else 2).data
        check(f"{tag}: encryption key is v2 (0x58) and = json", enc[0] == 0x58 and enc.hex() == v["encryption_key_hex"])
    for v in meta["signets"]:
        name = v["file"]
        tag = f"v2 {name}"
        s = signets.get(name)
        if s is None:
            continue
        org = signets.get(v["verify_with_org"]) if v["verify_with_org"] else None
        prev = signets.get(v["verify_with_previous"]) if v["verify_with_previous"] else None
        state, why = ladder(s.data, org=org, previous=prev, label=name)
        check(f"{tag}: ladder state {v['state']} (org={v['verify_with_org']}, previous={v['verify_with_previous']})",
              state == v["state"], f"{state} {why}")
        # each signature individually, and with which key
        sk = s.signing_key()
        if s.kind == "org":
            for fid in (4, 253, 255):
                if s.f(fid):
                    check(f"{tag}: signature {fid} verifies under the POK", verify_strict(sk, *s.signed_msg(fid)))
            for i, (perm, k) in enumerate(s.soks()):
                check(f"{tag}: SOK {i} permissions {perm:#04x} (reserved bits 4-7 zero)", perm & 0xF0 == 0)
        else:
            check(f"{tag}: signature 5 verifies under its own field 1", verify_strict(sk, *s.signed_msg(5)))
            if s.f(4) is not None:
                if prev is None:
                    check(f"{tag}: field 4 present but json names no previous signet", False)
                else:
                    check(f"{tag}: custody signature 4 verifies under {v['verify_with_previous']}'s field 1",
                          verify_strict(prev.signing_key(), *s.signed_msg(4)))
                    check(f"{tag}: custody signature 4 does not verify under the new key",
                          not verify_strict(sk, *s.signed_msg(4)))
            if s.kind == "user":
                if org is None:
                    check(f"{tag}: user signet without an org signet in vectors.json", False)
                else:
                    for fid in (6, 253, 255):
                        if not s.f(fid):
                            continue
                        msg, sig = s.signed_msg(fid)
                        signers = []
                        if verify_strict(org.signing_key(), msg, sig):
                            signers.append("POK")
                        for i, (perm, k) in enumerate(org.soks()):
                            if verify_strict(k, msg, sig):
                                signers.append(f"SOK{i}(perm {perm}{', signets' if perm & 1 else ', NO signet bit'})")
                        ok = any(x == "POK" or "signets" in x for x in signers)
                        check(f"{tag}: signature {fid} by {v['verify_with_org']}: {', '.join(signers) or 'nobody'}", ok)
                    check(f"{tag}: identifier {s.ident()!r} in domain {org.ident()!r}",
                          canon_domain(s.ident().rsplit('@', 1)[1]) == canon_domain(org.ident()))
        fps = fingerprints(s)
        check(f"{tag}: defined fingerprints {sorted(fps)} = json's", sorted(fps) == sorted(v["fingerprints"]))
        for k, want in sorted(v["fingerprints"].items()):
            check(f"{tag}: fingerprint {k}", fps.get(k) == want, f"{fps.get(k)} vs {want}")
    # user signets begin with their SSR (matched through the ssr fingerprint)
    for name, s in signets.items():
        if s.kind != "user":
            continue
        ssrs = [x for x in signets.values() if x.kind == "ssr" and fingerprints(x)["ssr"] == fingerprints(s)["ssr"]]
        if ssrs:
            check_prefix(f"v2 {name} vs {ssrs[0].label}", s, ssrs[0])
    # rotated SSR without its previous signet: field 4 not checked, still Ssr (§6.4)
    if "user-ssr-rotated.b64" in signets:
        st, _ = ladder(signets["user-ssr-rotated.b64"].data)
        check("v2 user-ssr-rotated.b64: without a previous signet the state is Ssr", st == "Ssr", st)
        st, why = ladder(signets["user-ssr-rotated.b64"].data, previous=signets["user-ssr-rotated.b64"])
        check("v2 user-ssr-rotated.b64: with itself as previous: BrokenChainOfCustody",
              st == "BrokenChainOfCustody", f"{st} {why}")
    if "user-signet.b64" in signets:
        st, why = ladder(signets["user-signet.b64"].data)
        check("v2 user-signet.b64: without the org signet the state is Ssr", st == "Ssr", f"{st} {why}")
    if "user-signet-sok.b64" in signets and "org-signet.b64" in signets:
        st, why = ladder(signets["user-signet-sok.b64"].data, org=signets["org-signet.b64"])
        check("v2 user-signet-sok.b64 with the wrong org signet: Invalid", st == "Invalid", f"{st} {why}")

    # negative: one flipped signature byte
    s = signets.get("user-signet.b64")
    if s is not None:
        f255 = s.f(255)
        bad = bytearray(s.data)
        bad[5 + f255.start + 1 + 40] ^= 0x01
        bad = bytes(bad)
        bs = Signet("tampered", bad)
        org = signets["org-signet.b64"]
        check("negative: flipped byte in signature 255 of user-signet: no authorised key verifies it",
              not any(verify_strict(k, *bs.signed_msg(255)) for k in [org.signing_key()]))
        st, why = ladder(bad, org=org)
        check("negative: flipped byte in signature 255 of user-signet: ladder Invalid", st == "Invalid", f"{st} {why}")
        bad = bytearray(s.data)
        bad[5 + s.f(5).start + 1] ^= 0x80
        st, why = ladder(bytes(bad), org=org)
        check("negative: flipped byte in signature 5 of user-signet: ladder Invalid", st == "Invalid", f"{st} {why}")

    # key files
    for k in meta["key_files"]:
        name = k["file"]
        tag = f"v2 {name}"
        data = load_b64(V2 / name)
        signet = signets.get(k["signet"])
        try:
            magic, payload = split_object(data)
        except DecodeError as e:
            check(f"{tag}: parses", False, str(e))
            continue
        check(f"{tag}: magic {k['magic']}", magic == k["magic"], str(magic))
        if k["passphrase"] is None:
            try:
                keys = parse_plain_keyfile(data)
            except ValueError as e:
                check(f"{tag}: parses as a plaintext key file", False, str(e))
                continue
            check(f"{tag}: parses as a {keys['version']} {keys['kind']} key file", True)
            check(f"{tag}: re-encodes byte for byte", keys["reencoded"] == data)
        else:
            pw = k["passphrase"].encode()
            try:
                params, inner, kind = decrypt_keyfile(data, pw)
            except (ValueError, CryptoError) as e:
                check(f"{tag}: decrypts with the passphrase", False, repr(e))
                continue
            check(f"{tag}: decrypts with the passphrase (Argon2id m={params['m']} t={params['t']} p={params['p']})", True)
            a = k["argon2id"]
            check(f"{tag}: stored Argon2id parameters = json", (params["m"], params["t"], params["p"]) == (a["m_kib"], a["t"], a["p"]))
            if params["p"] == 1:
                ref = nacl.pwhash.argon2id.kdf(32, pw, params["salt"], opslimit=params["t"], memlimit=params["m"] * 1024)
                check(f"{tag}: Argon2id key equals libsodium's (lanes 1)", ref == params["key"])
            try:
                keys = parse_plain_keyfile(inner)
            except (ValueError, DecodeError) as e:
                check(f"{tag}: inner plaintext is a key file", False, str(e))
                continue
            allowed = {2065: (2049, 1952), 2066: (2050, 2013)}[magic]
            check(f"{tag}: inner key file magic {keys['magic']} allowed for {magic}", keys["magic"] in allowed)
            check(f"{tag}: inner key file re-encodes byte for byte", keys["reencoded"] == inner)
            if name == "user-key-encrypted.b64":
                plain = load_b64(V2 / "user-key-plaintext.b64")
                check(f"{tag}: same keys as user-key-plaintext.b64 (README)", parse_plain_keyfile(plain)["reencoded"] == inner)
            # negatives
            try:
                decrypt_keyfile(data, pw + b"x")
                check(f"negative: {name} with a wrong passphrase is refused", False)
            except CryptoError:
                check(f"negative: {name} with a wrong passphrase is refused", True)
            bad = bytearray(data)
            bad[5 + 40] ^= 1  # a nonce byte: authenticated
            try:
                decrypt_keyfile(bytes(bad), pw)
                check(f"negative: {name} with a flipped nonce byte is refused", False)
            except CryptoError:
                check(f"negative: {name} with a flipped nonce byte is refused", True)
        if signet is None:
            check(f"{tag}: signet {k['signet']} found", False)
            continue
        keys_match(f"{tag} vs {k['signet']}", keys, signet)


def run_v1():
    readme = (V1 / "README.md").read_text()
    table = {m.group(1): (int(m.group(2)), int(m.group(3)))
             for m in re.finditer(r"^\| (\S+\.b64) \| (\d+) [^|]*\| (\d+) \|", readme, re.M)}
    fps = {}
    for m in re.finditer(r"^\| (org signet|user signet) \| (\S+) [^|]*\| `([^`]+)` \|", readme, re.M):
        fps.setdefault(m.group(1), {})[m.group(2)] = m.group(3)
    check("v1 README: 5 objects and 7 fingerprints listed", len(table) == 5 and sum(map(len, fps.values())) == 7,
          f"{table} {fps}")
    # expectations copied from the README's prose
    expected_ids = {"org-signet.b64": [1, 3, 4, 16, 17, 19, 20, 21, 253, 254, 255],
                    "user-signing-request.b64": [1, 2, 5],
                    "user-signet.b64": [1, 2, 5, 6, 16, 253, 254, 255]}
    objs = {}
    for name, (magic, plen) in sorted(table.items()):
        tag = f"v1 {name}"
        data = load_b64(V1 / name)
        try:
            m, payload = split_object(data)
        except DecodeError as e:
            check(f"{tag}: parses", False, str(e))
            continue
        check(f"{tag}: magic {magic}, payload {plen} bytes", (m, len(payload)) == (magic, plen), f"{m} {len(payload)}")
        if m in KIND:
            s = Signet(name, data)
            objs[name] = s
            ids = [f.id for f in s.fields]
            check(f"{tag}: field ids {ids}", ids == expected_ids[name])
            check_signet_structure(tag, s)
        else:
            try:
                keys = parse_plain_keyfile(data)
            except ValueError as e:
                check(f"{tag}: parses as a v1 key file", False, str(e))
                continue
            objs[name] = keys
            check(f"{tag}: parses as a {keys['version']} {keys['kind']} key file", keys["version"] == "v1")
            check(f"{tag}: re-encodes byte for byte", keys["reencoded"] == data)
    org, ssr, user = objs.get("org-signet.b64"), objs.get("user-signing-request.b64"), objs.get("user-signet.b64")
    if org:
        check("v1 org-signet.b64: field 16 'Example LLC', 254 'example.com'",
              org.f(16).data == b"Example LLC" and org.f(254).data == b"example.com")
        check("v1 org-signet.b64: field 3 is a compressed secp256k1 point", org.f(3).data[0] in (2, 3))
        st, why = ladder(org.data)
        check("v1 org-signet.b64: ladder state Id", st == "Id", f"{st} {why}")
        for fid in (4, 253, 255):
            check(f"v1 org-signet.b64: signature {fid} verifies under the POK", verify_strict(org.signing_key(), *org.signed_msg(fid)))
        check("v1 org-signet.b64: pok= form", b64u(org.signing_key()) == fps["org signet"]["POK"])
        got = fingerprints(org)
        for k in ("crypto", "full", "id"):
            check(f"v1 org-signet.b64: fingerprint {k}", got.get(k) == fps["org signet"][k], f"{got.get(k)}")
    if ssr:
        st, why = ladder(ssr.data)
        check("v1 user-signing-request.b64: ladder state Ssr", st == "Ssr", f"{st} {why}")
        check("v1 user-signing-request.b64: signature 5 verifies under field 1", verify_strict(ssr.signing_key(), *ssr.signed_msg(5)))
    if user and org:
        st, why = ladder(user.data, org=org)
        check("v1 user-signet.b64 with the org signet: ladder state Id", st == "Id", f"{st} {why}")
        check("v1 user-signet.b64: field 254 'user@example.com'", user.f(254).data == b"user@example.com")
        check("v1 user-signet.b64: signature 5 verifies under the user key", verify_strict(user.signing_key(), *user.signed_msg(5)))
        for fid in (6, 253, 255):
            check(f"v1 user-signet.b64: signature {fid} verifies under the org POK", verify_strict(org.signing_key(), *user.signed_msg(fid)))
        got = fingerprints(user)
        for k in ("crypto", "full", "id"):
            check(f"v1 user-signet.b64: fingerprint {k}", got.get(k) == fps["user signet"][k], f"{got.get(k)}")
        if ssr:
            check_prefix("v1 user-signet.b64 vs user-signing-request.b64", user, ssr)
            check("v1 user-signet.b64: ssr fingerprint = SSR's", got["ssr"] == fingerprints(ssr)["ssr"])
        # negative: flipped signature byte
        bad = bytearray(user.data)
        bad[5 + user.f(6).start + 1 + 5] ^= 0x04
        bs = Signet("tampered", bytes(bad))
        check("negative: v1 user-signet with a flipped byte in signature 6 does not verify",
              not verify_strict(org.signing_key(), *bs.signed_msg(6)))
    okey = objs.get("org-key.b64")
    if okey and org:
        keys_match("v1 org-key.b64 vs org-signet.b64", okey, org)
    ukey = objs.get("user-key.b64")
    if ukey and user:
        check("v1 user-key.b64: does NOT belong to user-signet (README)", ed_pub(ukey["ed"]) != user.signing_key())


def main():
    check("CRC-24 check value of '123456789' is 0x21CF02 (§8.2)", crc24(b"123456789") == 0x21CF02)
    armored = [p.name for d in (V1, V2) for p in d.glob("*") if "-----BEGIN " in p.read_text(errors="replace")]
    print(f"note: armored vectors: {armored or 'none'} (armor CRC checked on the check value only)")
    run_v2()
    run_v1()
    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED or not PASSED else 0


if __name__ == "__main__":
    sys.exit(main())
