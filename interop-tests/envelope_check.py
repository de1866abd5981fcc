#!/usr/bin/env python3
"""Independent check of the dime envelope v2 vectors, written from spec/envelope.md alone.

Opens every spec/vectors/envelope/*.json message as recipient, author, origin and destination
with `cryptography` (X25519, Ed25519, HKDF-SHA-512, SHA-512) and PyNaCl (XChaCha20-Poly1305),
checks framing, padding, the actor matrix and the algorithm ids of every key slot and signature
(§4.1: a slot's id fitting its role, checked as the slots are read, before any AEAD; a
signature's as its chunk is decoded, before any signature check), enforces the reader's
content rules of spec §8 (canonical names, header names and values, no Bcc field, part info),
verifies the author tree, author full and origin signatures (the origin's required by the
destination and the recipient, §7.4) under any key of the signer's set (§7.6: a vector's
`ed25519_public` is one key or a list), applies the address rules of §7.5 that one message
shows, and compares what each role sees with the vector's view for it (`views`, §15) and the
layout with `chunks`. Also checks that a flipped octet, a changed key-slot algorithm id and a
low-order ephemeral key are refused.
Opens the key-overlay vector (overlay.json, spec §16) in both forms, opens its message with the
overlay's chunk keys and verifies it as the recipient; checks that a flipped overlay octet, an
overlay of another message and an overlay missing a chunk key are refused. Checks that every
negative vector (negative-*.json, spec §15) is refused by each role it lists, with the framing
rule (`algorithm` among them, §4.1) or the "does not authenticate" class it names.

Requires: python3-cryptography, PyNaCl (`pip install pynacl`). Exit status 0 on success.
"""

import hashlib
import json
import pathlib
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import (crypto_aead_xchacha20poly1305_ietf_decrypt,
                           crypto_aead_xchacha20poly1305_ietf_encrypt)
from nacl.exceptions import CryptoError

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "spec" / "vectors" / "envelope"

MAGIC = b"DIMEMSG"
SEG = 65536
# spec §5: code -> (name, slot roles)
A, O, D, R, T = 1, 2, 3, 4, 5
TYPES = {
    0x01: ("ephemeral", []),
    0x02: ("transit", [A, O, D, R]),
    0x03: ("origin", [A, O, R]),
    0x04: ("destination", [A, D, R]),
    0x21: ("common-headers", [A, R]),
    0x22: ("other-headers", [A, R]),
    0x23: ("display", [A, R]),
    0x24: ("attachment", [A, R]),
    0x41: ("author-tree-sig", [A, O, R]),
    0x42: ("author-full-sig", [A, O, R]),
    0x61: ("origin-sig", [T]),
}
PADDED = {0x03, 0x04, 0x21, 0x22, 0x23, 0x24}
ORDER = [0x01, 0x02, 0x03, 0x04, 0x21, 0x22]
ROLE_NAME = {A: b"author", O: b"origin", D: b"destination", R: b"recipient"}
# §4.1: the key-slot algorithm each role's slot must carry (`01` x25519 for the actor roles,
# `02` transit for the transit role), and the signature algorithms (`01` Ed25519, 64 octets).
SLOT_ALG = {A: 1, O: 1, D: 1, R: 1, T: 2}
SIG_LEN = {1: 64}
MAX_SIGNER_KEYS = 8  # §11, §7.6


class Refused(Exception):
    """A reader refuses the message: "message does not authenticate" (spec §14) unless it is
    a Framing error."""


class Unverified(Refused):
    """Not verified (spec §14): every tag and signature the reader checked holds, but a rule of
    §7.4 or §7.5 leaves the message not verified (a destination refuses it, a reader does not
    show it). `rule` is the rule's token: `no-origin-signature`, `author-domain`,
    `recipient-domain` or `destination-domain`."""

    def __init__(self, rule):
        super().__init__(rule)
        self.cls, self.rule = "unverified", rule


class Framing(Refused):
    """A framing error naming the rule broken (spec §14): `rule` is the rule's name as the
    negative vectors give it (`error.rule`)."""

    def __init__(self, rule):
        super().__init__(rule)
        self.rule = rule


def u16(b):
    return int.from_bytes(b, "big")


def hkdf(salt, ikm, info):
    return HKDF(algorithm=hashes.SHA512(), length=32, salt=salt, info=info).derive(ikm)


def padme(n):
    length = max(n, 256)
    e = length.bit_length() - 1
    s = e.bit_length()  # floor(log2 e) + 1
    z = e - s
    return -(-length // (1 << z)) * (1 << z)


def aead_open(key, nonce, aad, ct):
    try:
        return crypto_aead_xchacha20poly1305_ietf_decrypt(ct, aad, nonce, key)
    except CryptoError:
        raise Refused("aead")


def parse(msg):
    """Framing (§2, §3): returns header fields and a list of chunk dicts."""
    if len(msg) >= 42 and msg[:7] == MAGIC and msg[7] != 2:
        # Refused before any key agreement or AEAD: the ADs name version 2 by their labels (§2).
        raise Framing("version")
    if len(msg) < 42 or msg[:7] != MAGIC or msg[8] not in (1, 2) or msg[9] != 0:
        raise Refused("header")
    header = msg[:42]
    pos = 42
    chunks = []
    while pos < len(msg):
        start = pos
        ctype, flags, index = msg[pos], msg[pos + 1], u16(msg[pos + 2:pos + 4])
        if ctype not in TYPES or flags != 0 or index != len(chunks):
            raise Refused("chunk head")
        pos += 4
        c = {"type": ctype, "index": index, "slots": {}, "segments": []}
        if ctype == 0x01:
            if u16(msg[pos:pos + 2]) != 32:
                raise Refused("clear length")
            c["clear"] = msg[pos + 2:pos + 34]
            pos += 34
        else:
            roles = TYPES[ctype][1]
            if msg[pos] != len(roles):
                raise Refused("slot count")
            pos += 1
            for role in roles:
                # u8 role || u8 alg || AEAD(KEK, nonce_k, ad_k, K) (§4): 50 octets.
                slot = msg[pos:pos + 50]
                if len(slot) != 50 or slot[0] != role:
                    raise Refused("slot roles")
                # §4.1: every slot's id is checked as the slots are read, before any key
                # agreement, KDF or AEAD (parse runs before them all, for every chunk).
                if slot[1] != SLOT_ALG[role]:
                    raise Framing("algorithm")
                c["slots"][role] = (slot[1], slot[2:])
                pos += 50
            c["head_end"] = pos
            while True:
                sflags = msg[pos]
                length = int.from_bytes(msg[pos + 1:pos + 5], "big")
                last = sflags == 1
                if sflags not in (0, 1) or length < 20 or length > SEG + 20 or (not last and length != SEG + 20):
                    raise Framing("segment-length")
                if last and length == 20 and c["segments"]:
                    # An empty last segment only as the chunk's only segment (P = 0, §3.3).
                    raise Framing("segment-length")
                ct = msg[pos + 5:pos + 5 + length]
                if len(ct) != length:
                    raise Refused("truncated")
                c["segments"].append((last, ct))
                pos += 5 + length
                if last:
                    break
        c["bytes"] = msg[start:pos]
        c["end"] = pos
        chunks.append(c)
    order = [c["type"] for c in chunks]
    if order[:6] != ORDER:
        raise Refused("order")
    rest = order[6:]
    i = 0
    while i < len(rest) and rest[i] == 0x23:
        i += 1
    while i < len(rest) and rest[i] == 0x24:
        i += 1
    if rest[i:] not in ([0x41, 0x42], [0x41, 0x42, 0x61]):
        raise Refused("order")
    return header, chunks


def open_chunk(header, c, key):
    """Decrypts a chunk's segments (§3.3) and checks its padding (§3.4)."""
    mid, kind = header[10:42], header[8]
    content, payload_total, done = b"", 0, False
    for s, (last, ct) in enumerate(c["segments"]):
        nonce = bytes([int(last)]) + bytes(19) + s.to_bytes(4, "big")
        aad = (b"dime/v2/chunk\0" + mid + bytes([kind, c["type"], 0]) + c["index"].to_bytes(2, "big")
               + s.to_bytes(4, "big") + bytes([int(last)]))
        pt = aead_open(key, nonce, aad, ct)
        clen = int.from_bytes(pt[:4], "big")
        data = pt[4:]
        if clen > len(data) or (done and clen) or any(data[clen:]):
            raise Refused("padding")
        if clen < len(data):
            done = True
        content += data[:clen]
        payload_total += len(data)
    want = padme(len(content)) if c["type"] in PADDED else len(content)
    if payload_total != want:
        raise Refused("padding size")
    return content


def unwrap(header, c, role, kek):
    mid, kind = header[10:42], header[8]
    nonce = bytes([role]) + bytes(21) + c["index"].to_bytes(2, "big")
    alg, ct = c["slots"][role]
    aad = (b"dime/v2/slot\0" + mid + bytes([kind, c["type"]]) + c["index"].to_bytes(2, "big")
           + bytes([role, alg]))
    return aead_open(kek, nonce, aad, ct)


def entry(c):
    return bytes([c["type"]]) + c["index"].to_bytes(2, "big") + hashlib.sha512(c["bytes"]).digest()


def tree(chunks):
    return len(chunks).to_bytes(2, "big") + b"".join(entry(c) for c in chunks)


def name(s):
    b = s.encode()
    return bytes([len(b)]) + b


def str16s(b):
    out, pos = [], 0
    while pos < len(b):
        n = u16(b[pos:pos + 2])
        try:
            out.append(b[pos + 2:pos + 2 + n].decode())
        except UnicodeDecodeError:
            raise Framing("name")
        pos += 2 + n
    return out


def is_control(ch):
    """A control character (spec §8.3): general category Cc, C0 U+0000-U+001F, DEL U+007F and
    C1 U+0080-U+009F."""
    return ord(ch) < 0x20 or 0x7f <= ord(ch) <= 0x9f


LDH = set(b"abcdefghijklmnopqrstuvwxyz0123456789-_")


def canonical_domain(d):
    """Spec §8.1: ASCII lower case, 1 to 253 octets, labels of 1 to 63 octets of a-z, 0-9, `-`
    and `_`, no label starting or ending with `-`, no final dot."""
    b = d.encode()
    if not 1 <= len(b) <= 253:
        return False
    return all(1 <= len(lb) <= 63 and set(lb) <= LDH and lb[:1] != b"-" and lb[-1:] != b"-"
               for lb in b.split(b"."))


def canonical_mailbox(m):
    """Spec §8.1: local "@" domain, split at the last "@"; the local part 1 to 64 octets, no
    control or white-space character, none of <>()[]\\,;:@" , no leading, trailing or double
    dot; the domain canonical."""
    local, at, domain = m.rpartition("@")
    if not at or not local or not 1 <= len(local.encode()) <= 64:
        return False
    if any(is_control(c) or c.isspace() or c in '<>()[]\\,;:@"' for c in local):
        return False
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    return canonical_domain(domain)


def names(b):
    """The origin or destination chunk (spec §8.1, §8.2): a mailbox and a domain, each exactly
    canonical, and nothing after them."""
    got = str16s(b)
    if len(got) != 2 or not canonical_mailbox(got[0]) or not canonical_domain(got[1]):
        raise Framing("name")
    return got


def headers(b):
    """A header chunk (spec §8.3) with the reader's rules: names of 1 to 128 octets 33-126 but
    ":", never Bcc or Resent-Bcc; values UTF-8 without a control character but HTAB."""
    count, pos, out = u16(b[:2]), 2, []
    for _ in range(count):
        n = b[pos]
        nb = b[pos + 1:pos + 1 + n]
        if not nb or any(o < 33 or o > 126 or o == ord(":") for o in nb):
            raise Framing("header-name")
        nm = nb.decode()
        if nm.lower() in ("bcc", "resent-bcc"):
            raise Framing("bcc-header")
        pos += 1 + n
        vl = u16(b[pos:pos + 2])
        try:
            value = b[pos + 2:pos + 2 + vl].decode()
        except UnicodeDecodeError:
            raise Framing("header-value")
        if any(is_control(c) and c != "\t" for c in value):
            raise Framing("header-value")
        out.append([nm, value])
        pos += 2 + vl
    if pos != len(b):
        raise Refused("header trailing")
    return out


def part_info(b):
    """A part's info (spec §8.4): content type and file name, UTF-8 without a control
    character (HTAB included), the file name at most 1024 octets."""
    cl = b[0]
    fl = u16(b[1 + cl:3 + cl])
    try:
        ctype, fname = b[1:1 + cl].decode(), b[3 + cl:3 + cl + fl].decode()
    except UnicodeDecodeError:
        raise Framing("part-info")
    if fl > 1024 or any(is_control(c) for c in ctype + fname):
        raise Framing("part-info")
    return ctype, fname, 3 + cl + fl


def signature(b):
    """A signature `u8 alg || sig` (§7, §4.1), decoded as its chunk is: an unknown id is the
    framing error `algorithm`, before any signature check. Returns (alg, sig)."""
    if not b:
        raise Framing("truncated")
    if b[0] not in SIG_LEN:
        raise Framing("algorithm")
    if len(b) != 1 + SIG_LEN[b[0]]:
        raise Framing("truncated" if len(b) < 1 + SIG_LEN[b[0]] else "trailing")
    return b[0], b[1:]


def tree_signature(b, t):
    """The author tree signature chunk (§7.1): `u16 count || entries || u8 alg || sig`, count
    exactly `t`, `2 + 67 t + 65` octets for Ed25519. Returns (listed tree, alg, sig)."""
    end = 2 + 67 * t
    if u16(b[:2]) != t or len(b) <= end:
        raise Framing("tree-count")
    if b[end] not in SIG_LEN:
        raise Framing("algorithm")
    if len(b) != end + 1 + SIG_LEN[b[end]]:
        raise Framing("tree-count")
    return (b[:end],) + signature(b[end:])


def verify(pubs, sig, data):
    """Accepts a signature under any key of the signer's set (§7.6): `pubs` is one key (hex)
    or a list of them, at most MAX_SIGNER_KEYS tried, the first that verifies wins."""
    for pub_hex in ([pubs] if isinstance(pubs, str) else pubs)[:MAX_SIGNER_KEYS]:
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(pub_hex)).verify(sig, data)
            return
        except InvalidSignature:
            pass
    raise Refused("signature")


def open_as(vec, msg, role, chunk_keys=None):
    """Opens as `role` (A, O, D or R) and verifies what that actor can (§7.4). With
    `chunk_keys` ({index: (type, key)} from a key overlay, §16), the recipient's chunks open
    with those keys instead of their slots."""
    header, chunks = parse(msg)
    actor = vec["actors"][{A: "author", O: "origin", D: "destination", R: "recipient"}[role]]
    if chunk_keys is None:
        sk = X25519PrivateKey.from_private_bytes(bytes.fromhex(actor["x25519_secret"]))
        my_pub = bytes.fromhex(actor["x25519_public"])
        eph = chunks[0]["clear"]
        try:
            z = sk.exchange(X25519PublicKey.from_public_bytes(eph))  # refuses all-zero output
        except ValueError:
            raise Refused("low order")
        if z == bytes(32):
            raise Refused("low order")
        keks = {role: hkdf(eph + my_pub, z, b"dime/v2/kek/" + ROLE_NAME[role])}
    else:
        keks = {}
        wanted = {c["index"]: c["type"] for c in chunks[1:] if R in c["slots"]}
        if {i: t for i, (t, _) in chunk_keys.items()} != wanted:
            raise Refused("overlay keys do not match the recipient chunks")
    opened = {}
    for c in chunks[1:]:
        if chunk_keys is not None and c["index"] in chunk_keys:
            opened[c["index"]] = open_chunk(header, c, chunk_keys[c["index"]][1])
            if c["type"] == 0x02:
                keks[T] = hkdf(header[10:42], opened[c["index"]], b"dime/v2/kek/transit")
            continue
        for r, kek in list(keks.items()):
            if r in c["slots"]:
                key = unwrap(header, c, r, kek)
                opened[c["index"]] = open_chunk(header, c, key)
                if c["type"] == 0x02:
                    keks[T] = hkdf(header[10:42], opened[c["index"]], b"dime/v2/kek/transit")
                break
    expected_roles = {c["index"] for c in chunks[1:] if role in TYPES[c["type"]][1] or c["type"] == 0x61}
    if set(opened) != expected_roles:
        raise Refused("matrix")
    by_type = {}
    for c in chunks:
        by_type.setdefault(c["type"], []).append(c)
    out = {"opens": [{"type": f"{c['type']:#04x}", "index": c["index"]} for c in chunks if c["index"] in opened]}
    author_pub = vec["actors"][vec["author_signing_key"]]["ed25519_public"]
    origin_pub = vec["actors"]["origin"]["ed25519_public"]
    # The content rules of §8 hold for every chunk this role opens, checked as it is decoded,
    # before any signature (§8, §14).
    if role in (A, O, R):
        author, dst = names(opened[2])
    if role in (A, D, R):
        recipient, org = names(opened[3])
    if role in (A, R):
        out["common_headers"] = headers(opened[4])
        out["other_headers"] = headers(opened[5])
        parts = []
        for c in chunks:
            if c["type"] in (0x23, 0x24):
                b = opened[c["index"]]
                ctype, fname, used = part_info(b)
                data = b[used:]
                parts.append({"kind": "display" if c["type"] == 0x23 else "attachment",
                              "content_type": ctype, "filename": fname,
                              "sha512": hashlib.sha512(data).hexdigest(), "len": len(data)})
        out["parts"] = parts
    # The signature chunks this role opens are decoded with the others: the tree's count and
    # length (§7.1) and every signature's algorithm id (§4.1), before any signature check.
    sigs = {}
    for c in chunks:
        if c["index"] in opened and c["type"] == 0x41:
            sigs[0x41] = tree_signature(opened[c["index"]], c["index"])
        elif c["index"] in opened and c["type"] == 0x42:
            sigs[0x42] = signature(opened[c["index"]])
        elif c["index"] in opened and c["type"] == 0x61:
            # §7.3: `u64 signed_at || u8 alg || sig`.
            b = opened[c["index"]]
            if len(b) < 8:
                raise Framing("truncated")
            sigs[0x61] = (b[:8],) + signature(b[8:])
    kind = header[8]
    # §7.5: the origin signs only for its own users (checked before it signs), and a reader
    # refuses an authored message whose author is not of the origin domain before it looks up
    # any key. A trustful message's author is a legacy sender of any domain (§10).
    if role == O and kind == 1 and author.rpartition("@")[2] != vec["actors"]["origin"]["id"]:
        raise Unverified("author-domain")
    if role == R and kind == 1 and author.rpartition("@")[2] != org:
        raise Unverified("author-domain")
    # §7.4: the destination and a reader of mailbox mail require the origin signature; the
    # author's own copy may lack it (then the reader says it is absent).
    if role in (D, R) and 0x61 not in by_type:
        raise Unverified("no-origin-signature")
    if role in (A, O, R):
        out["author"], out["destination_domain"] = author, dst
        t = by_type[0x41][0]
        # The tree lists exactly the t chunks before it (§7.1), checked as it was decoded above.
        listed, alg, sig = sigs[0x41]
        if listed != tree(chunks[:t["index"]]):
            raise Refused("tree")
        verify(author_pub, sig, b"dime/v2/sig/author-tree\0" + bytes([alg]) + header + name(dst) + listed)
        f = by_type[0x42][0]
        m = msg[:f["head_end"]]
        alg, sig = sigs[0x42]
        verify(author_pub, sig, b"dime/v2/sig/author-full\0" + bytes([alg]) + header + hashlib.sha512(m).digest())
    if role in (A, D, R):
        out["recipient"], out["origin_domain"] = recipient, org
        dst = vec["destination_domain"] if role == D else out["destination_domain"]
        if 0x61 in by_type:
            osig = by_type[0x61][0]
            signed_at, alg, sig = sigs[0x61]
            verify(origin_pub, sig, b"dime/v2/sig/origin\0" + bytes([alg]) + header + signed_at + name(org)
                   + name(dst) + tree(chunks[:osig["index"]]))
            if "origin_signed_at" in vec and int.from_bytes(signed_at, "big") != vec["origin_signed_at"]:
                raise Refused("origin_signed_at differs from the vector's")
    # §7.5 rules 1 (the destination: the recipient is of its own domain), 5 (the reader: the
    # recipient is of the destination domain) and 6 (the destination domain is the reading
    # account's, `actors.recipient.id`).
    # What each role says of each signature (§7.4): verified, present (carried, not its to
    # verify) or absent.
    origin_state = "absent" if 0x61 not in by_type else "present" if role == O else "verified"
    author_state = "present" if role == D else "verified"
    out["signatures"] = {"author_tree": author_state, "author_full": author_state, "origin": origin_state}
    if role == D and recipient.rpartition("@")[2] != dst:
        raise Unverified("recipient-domain")
    if role == R:
        if recipient.rpartition("@")[2] != out["destination_domain"]:
            raise Unverified("recipient-domain")
        if out["destination_domain"] != vec["actors"]["recipient"]["id"].rpartition("@")[2]:
            raise Unverified("destination-domain")
    return out


def check(path):
    vec = json.loads(path.read_text())
    msg = bytes.fromhex(vec["message_hex"])
    failures = []
    # The layout (§15 `chunks`): every chunk's type, index, offset, size and segment count.
    _, chunks = parse(msg)
    layout = [{"type": f"{c['type']:#04x}", "index": c["index"], "offset": c["end"] - len(c["bytes"]),
               "size": len(c["bytes"]), "segments": len(c["segments"])} for c in chunks]
    if layout != vec["chunks"]:
        failures.append("chunks: the layout differs")
    # Every role sees exactly its view (§6, §7.4, §15 `views`): the author opens with
    # `actors.author`'s key, the key the author slots are sealed to, the user's own for a
    # trustful message too (§10).
    for role in (R, A, O, D):
        name = {A: "author", O: "origin", D: "destination", R: "recipient"}[role]
        want = vec["views"][name]
        got = open_as(vec, msg, role)
        if set(got) != set(want):
            failures.append(f"{name}: sees {sorted(got)}, expected {sorted(want)}")
        for k in want:
            if got.get(k) != want[k]:
                failures.append(f"{name}: {k} = {got.get(k)!r}, expected {want[k]!r}")
    # Tampering: a flipped octet in every chunk, and low-order ephemeral keys, are refused.
    _, chunks = parse(msg)
    for c in chunks:
        bad = bytearray(msg)
        bad[c["end"] - 1] ^= 1
        for role in (R, D):
            try:
                open_as(vec, bytes(bad), role)
                failures.append(f"flip in chunk {c['index']} accepted by role {role}")
            except Refused:
                pass
    # A changed version octet is refused by every role, as a framing error (§2).
    for v in (0, 1, 3, 0xff):
        for role in (A, O, D, R):
            try:
                open_as(vec, msg[:7] + bytes([v]) + msg[8:], role)
                failures.append(f"version {v} accepted by role {role}")
            except Framing as exc:
                if exc.rule != "version":
                    failures.append(f"version {v}: role {role} refused it as {exc.rule}")
            except Refused as exc:
                failures.append(f"version {v}: role {role} refused it as unauthentic ({exc})")
    # A key slot's algorithm id that is unknown, or another role's, is refused by every role as
    # the framing error `algorithm` (§4.1), whichever chunk it is in: the ids are checked as
    # the slots are read, before any AEAD, so a changed id is never met as a bad tag.
    for c in chunks:
        start = c["end"] - len(c["bytes"])
        for k, r in enumerate(c["slots"]):
            at = start + 5 + 50 * k + 1
            for alg in (0, 3, 0xff, SLOT_ALG[r] ^ 3):
                bad = msg[:at] + bytes([alg]) + msg[at + 1:]
                what = f"slot id {alg} of role {r} in chunk {c['index']}"
                for role in (A, O, D, R):
                    try:
                        open_as(vec, bad, role)
                        failures.append(f"{what} accepted by role {role}")
                    except Framing as exc:
                        if exc.rule != "algorithm":
                            failures.append(f"{what}: role {role} refused it as {exc.rule}")
                    except Refused as exc:
                        failures.append(f"{what}: role {role} refused it as unauthentic ({exc})")
    for low in (bytes(32), bytes([1]) + bytes(31)):
        bad = msg[:48] + low + msg[80:]
        try:
            open_as(vec, bad, R)
            failures.append("low-order ephemeral accepted")
        except Refused:
            pass
    return failures


OVERLAY_AAD = b"dime/v2/overlay\0"
MAX_CHUNKS = 1034
# §16.1: 9 + 32 + 24 + 2 + 1034 × 35 + 16 octets, the X25519 form with every possible entry.
OVERLAY_MAX_LEN = 9 + 32 + 24 + 2 + MAX_CHUNKS * 35 + 16


def overlay_open(msg, overlay, holder_secret=None, read_key=None):
    """Opens a key overlay of `msg` (§16) into {index: (type, key)}."""
    header = msg[:42]
    if len(overlay) > OVERLAY_MAX_LEN:
        raise Refused("overlay too long")  # before it is copied or opened
    if len(overlay) < 9 or overlay[:7] != b"DIMEOVL" or overlay[7] != 1:
        raise Refused("overlay head")
    form = overlay[8]
    if form == 1 and holder_secret is not None:
        sk = X25519PrivateKey.from_private_bytes(holder_secret)
        holder = sk.public_key().public_bytes_raw()
        e = overlay[9:41]
        if len(e) != 32:
            raise Refused("overlay truncated")
        try:
            z = sk.exchange(X25519PublicKey.from_public_bytes(e))
        except ValueError:
            raise Refused("low order")
        kek = hkdf(e + holder, z, b"dime/v2/overlay/x25519")
        rest = overlay[41:]
    elif form == 2 and read_key is not None:
        kek = hkdf(header[10:42], read_key, b"dime/v2/overlay/read")
        rest = overlay[9:]
    else:
        raise Refused("overlay form")
    aad = OVERLAY_AAD + bytes([form]) + header[10:42] + hashlib.sha512(header).digest()
    pt = aead_open(kek, rest[:24], aad, rest[24:])
    count = u16(pt[:2])
    if not 1 <= count <= MAX_CHUNKS or len(pt) != 2 + 35 * count:
        raise Refused("overlay count")
    keys, prev = {}, -1
    for i in range(count):
        e = pt[2 + 35 * i:2 + 35 * (i + 1)]
        t, index = e[0], u16(e[1:3])
        if t not in TYPES or R not in TYPES[t][1] or index <= prev:
            raise Refused("overlay entry")
        prev = index
        keys[index] = (t, e[3:])
    return keys


def seal_read_overlay(msg, keys, read_key, nonce):
    """Builds a read-key overlay (§16) from {index: (type, key)}: used to test a missing key."""
    header = msg[:42]
    pt = len(keys).to_bytes(2, "big") + b"".join(
        bytes([t]) + i.to_bytes(2, "big") + k for i, (t, k) in sorted(keys.items()))
    kek = hkdf(header[10:42], read_key, b"dime/v2/overlay/read")
    aad = OVERLAY_AAD + b"\x02" + header[10:42] + hashlib.sha512(header).digest()
    return b"DIMEOVL\x01\x02" + nonce + crypto_aead_xchacha20poly1305_ietf_encrypt(pt, aad, nonce, kek)


def check_overlay(path):
    ov = json.loads(path.read_text())
    vec = json.loads((VECTORS / ov["message_vector"]).read_text())
    msg = bytes.fromhex(vec["message_hex"])
    e = vec["views"]["recipient"]
    secret = bytes.fromhex(ov["holder_x25519_secret"])
    read_key = bytes.fromhex(ov["read_key"])
    failures = []
    forms = (("overlay_x25519_hex", {"holder_secret": secret}), ("overlay_read_hex", {"read_key": read_key}))
    keys = None
    for field, kw in forms:
        overlay = bytes.fromhex(ov[field])
        keys = overlay_open(msg, overlay, **kw)
        listed = [(c["type"], c["index"]) for c in ov["expected_chunks"]]
        if [(f"{t:#04x}", i) for i, (t, _) in sorted(keys.items())] != listed:
            failures.append(f"{field}: chunk list differs")
        got = open_as(vec, msg, R, chunk_keys=keys)
        for k in e:
            if got.get(k) != e[k]:
                failures.append(f"{field}: {k} = {got.get(k)!r}, expected {e[k]!r}")
        for i in range(len(overlay)):
            bad = bytearray(overlay)
            bad[i] ^= 1
            try:
                open_as(vec, msg, R, chunk_keys=overlay_open(msg, bytes(bad), **kw))
                failures.append(f"{field}: flipped octet {i} accepted")
            except Refused:
                pass
        for other in sorted(VECTORS.glob("*.json")):
            o = json.loads(other.read_text())
            if "message_hex" not in o or other.name == ov["message_vector"]:
                continue
            try:
                overlay_open(bytes.fromhex(o["message_hex"]), overlay, **kw)
                failures.append(f"{field}: opened for {other.name}")
            except Refused:
                pass
    for drop in sorted(keys):
        partial = {i: k for i, k in keys.items() if i != drop}
        bad = seal_read_overlay(msg, partial, read_key, bytes(24))
        try:
            open_as(vec, msg, R, chunk_keys=overlay_open(msg, bad, read_key=read_key))
            failures.append(f"overlay without the key of chunk {drop} accepted")
        except Refused:
            pass
    # The builder matches the spec: with every key it opens.
    open_as(vec, msg, R, chunk_keys=overlay_open(msg, seal_read_overlay(msg, keys, read_key, bytes(24)),
                                                   read_key=read_key))
    return failures


ROLES = {"author": A, "origin": O, "destination": D, "recipient": R}


def check_negative(path):
    """A negative vector (spec §15): every role in `refused_by` refuses the message with the
    error the vector names (`framing` with its rule, or `unauthentic`)."""
    vec = json.loads(path.read_text())
    msg = bytes.fromhex(vec["message_hex"])
    cls, rule = vec["error"]["class"], vec["error"].get("rule")
    failures = []
    # The roles that must open and verify it (§7.4, §7.5) with their own slots.
    for name in vec["accepted_by"]:
        try:
            open_as(vec, msg, ROLES[name])
        except Refused as exc:
            failures.append(f"the {name} refused it ({type(exc).__name__} {exc})")

    def expect(who, attempt):
        try:
            attempt()
            failures.append(f"accepted by {who}")
        except Framing as exc:
            if cls != "framing" or exc.rule != rule:
                failures.append(f"{who} refused it as framing {exc.rule}, expected {cls} {rule}")
        except Unverified as exc:
            if cls != exc.cls or exc.rule != rule:
                failures.append(f"{who} refused it as {exc}, expected {cls} {rule}")
        except Refused as exc:
            if cls != "unauthentic":
                failures.append(f"{who} refused it as unauthentic ({exc}), expected {cls} {rule}")

    ov = vec.get("overlay")
    if ov is not None:
        # A key-overlay vector (§16): the recipient opens the message through the overlay, with
        # the X25519 key, the read key, or both (the form octet picks), and refuses it.
        overlay = bytes.fromhex(ov["overlay_hex"])
        secret, read_key = bytes.fromhex(ov["holder_x25519_secret"]), bytes.fromhex(ov["read_key"])
        if vec["refused_by"] != ["recipient"]:
            failures.append("an overlay vector is refused by the recipient through its overlay only")
        for label, kw in (("X25519 key", {"holder_secret": secret}), ("read key", {"read_key": read_key}),
                          ("both keys", {"holder_secret": secret, "read_key": read_key})):
            expect(f"the recipient through the overlay with the {label}",
                   lambda kw=kw: open_as(vec, msg, R, chunk_keys=overlay_open(msg, overlay, **kw)))
        return failures
    for name in vec["refused_by"]:
        expect(f"the {name}", lambda name=name: open_as(vec, msg, ROLES[name]))
    return failures


def main():
    files = sorted(VECTORS.glob("*.json"))
    if not files:
        print(f"no vectors in {VECTORS}", file=sys.stderr)
        return 1
    bad = 0
    for f in files:
        try:
            kind = json.loads(f.read_text()).get("vector")
            if kind == "overlay":
                failures = check_overlay(f)
            elif kind == "negative":
                failures = check_negative(f)
            else:
                failures = check(f)
        except Refused as exc:
            failures = [f"refused: {exc}"]
        status = "ok" if not failures else "FAIL"
        print(f"envelope {f.name}: {status}")
        for msg in failures:
            print(f"  {msg}")
        bad += bool(failures)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
