#!/usr/bin/env python3
"""Independent check of the store archive vectors, written from spec/storage.md alone.

Opens every spec/vectors/storage/archive-*.json archive with its password as spec/storage.md
§6 and §8 say, with PyNaCl (Argon2id through libsodium's crypto_pwhash, XChaCha20-Poly1305)
and `cryptography` (HKDF-SHA-512, X25519, Ed25519): the header, Argon2id, the archive key, the
seal, the plaintext field by field, every record (order, account prefix, checksum, encoding),
the keyring under the account key's keyring key, mailbox names and flags under the meta key,
summaries under the read key, message records against their blobs, and the key overlays
(spec/envelope.md §16: the re-wrap overlay with the keyring's X25519 secret, the read overlay
with the read key). Version 2 (magic ending 0x00 0x02; version 1, 0x00 0x01, has no trailer and
is still read): the trailer after the records, the signet history and the former addresses,
each checked against the vector's `history` and `former` and against the keyring (each history
signet carries an earlier generation's public keys). Compares everything with the vector's
expected contents, then checks that a wrong password, a changed header octet, a changed
ciphertext octet, a truncated archive, out-of-bounds Argon2id parameters and the other
version's magic on the archive are refused; for version 2 also a trailer cut (resealed under
the archive key, so the seal opens and the plaintext is short), a trailer over its limits, and
a version 2 plaintext resealed under a version 1 header.

libsodium's Argon2id has one lane: a vector with p != 1 is reported, not checked.

Requires: python3-cryptography, PyNaCl (`pip install pynacl`). Exit status 0 on success.
"""

import hashlib
import json
import pathlib
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import (crypto_aead_xchacha20poly1305_ietf_decrypt,
                           crypto_aead_xchacha20poly1305_ietf_encrypt)
from nacl.exceptions import CryptoError
import nacl.pwhash.argon2id

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "spec" / "vectors" / "storage"

# spec/storage.md §8.1: the magic's last octet is the archive version
MAGICS = {1: b"DIME-STORE-ARCHIVE\x00\x01", 2: b"DIME-STORE-ARCHIVE\x00\x02"}
# §8.2: the version 2 trailer's limits
MAX_HISTORY, MAX_FORMER = 64, 16
HEADER_LEN = 48
NONCE_LEN, TAG_LEN = 24, 16
# §6: Argon2Params::check
M_MIN, M_MAX, T_MAX, P_MAX = 8192, 2 * 1024 * 1024, 16, 8
# §3 table codes; §8.2 the six exported, in this order
KEYS, MAILBOXES, ENTRIES, MESSAGES, BLOBS, OVERLAYS = 3, 4, 5, 6, 7, 13
EXPORTED = [KEYS, MAILBOXES, ENTRIES, MESSAGES, BLOBS, OVERLAYS]
MAX_FIELD = 64 * 1024 * 1024
MAX_KEYRING = 4096
MAX_REFS = 65536


class Refused(Exception):
    pass


class Reader:
    """§3: big-endian integers, byte strings with a u32 length prefix (at most 64 MiB)."""

    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, n):
        if self.i + n > len(self.b):
            raise Refused("truncated")
        out = self.b[self.i:self.i + n]
        self.i += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u32(self):
        return int.from_bytes(self.take(4), "big")

    def u64(self):
        return int.from_bytes(self.take(8), "big")

    def bytes(self):
        n = self.u32()
        if n > MAX_FIELD:
            raise Refused("field too long")
        return self.take(n)

    def end(self):
        if self.i != len(self.b):
            raise Refused("octets after the end")


def hkdf(salt, ikm, info):
    """§6: HKDF-SHA-512, 32 octets."""
    return HKDF(algorithm=hashes.SHA512(), length=32, salt=salt, info=info).derive(ikm)


def seal_open(key, aad, sealed):
    """§6: nonce (24) ‖ ciphertext ‖ tag (16), XChaCha20-Poly1305."""
    if len(sealed) < NONCE_LEN + TAG_LEN:
        raise Refused("seal too short")
    try:
        return crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed[NONCE_LEN:], aad, sealed[:NONCE_LEN], key)
    except CryptoError:
        raise Refused("seal does not open")


def argon2id(password, salt, m, t, p):
    """§6: Argon2id v1.3, 32 octets, no secret or associated data."""
    if not (M_MIN <= m <= M_MAX and 1 <= t <= T_MAX and 1 <= p <= P_MAX):
        raise Refused("argon2id parameters out of bounds")
    if p != 1:
        raise NotImplementedError("libsodium's Argon2id has one lane")
    return nacl.pwhash.argon2id.kdf(32, password, salt, opslimit=t, memlimit=m * 1024)


def record_body(table, key, value):
    """§3: a record ends with the first 16 octets of
    SHA-512("dime-store record" ‖ u8 table ‖ u64 key length ‖ key ‖ body)."""
    if len(value) < 16:
        raise Refused("record too short")
    body, total = value[:-16], value[-16:]
    want = hashlib.sha512(b"dime-store record" + bytes([table]) + len(key).to_bytes(8, "big")
                          + key + body).digest()[:16]
    if total != want:
        raise Refused(f"checksum of a record of table {table}")
    return body


def open_archive(archive, password):
    """§8.1: the header, the keys and the plaintext."""
    version = next((v for v, m in MAGICS.items() if archive[:20] == m), None)
    if len(archive) < HEADER_LEN or version is None:
        raise Refused("not a dime store archive")
    header = archive[:HEADER_LEN]
    h = Reader(header)
    h.take(20)
    m, t, p = h.u32(), h.u32(), h.u32()
    salt = h.take(16)
    stretched = argon2id(password, salt, m, t, p)
    key = hkdf(b"dime-store archive", stretched, b"dime-store archive key")
    plain = seal_open(key, header, archive[HEADER_LEN:])
    return {"version": version, "header": header, "m": m, "t": t, "p": p, "salt": salt,
            "stretched": stretched,
            "archive_key": key, "nonce": archive[HEADER_LEN:HEADER_LEN + NONCE_LEN],
            "plaintext": plain}


def parse_plaintext(plain, version):
    """§8.2; version 2 has the trailer after the records."""
    r = Reader(plain)
    out = {
        "account_id": r.take(16),
        "account_key": r.take(32),
        "address": r.bytes().decode("utf-8"),
        "generation": r.u32(),
        "signet": r.bytes(),
        "quota": r.u64(),
        "next_message_number": r.u64(),
        "next_mailbox_id": r.u32(),
        "key_generation": r.u32(),
    }
    records = []
    for _ in range(r.u32()):
        table = r.u8()
        key = r.bytes()
        value = r.bytes()
        records.append((table, key, value))
    out["records"] = records
    history, former = [], []
    if version == 2:
        n = r.u32()
        if n > MAX_HISTORY:
            raise Refused("too long a signet history")
        history = [r.bytes() for _ in range(n)]
        m = r.u32()
        if m > MAX_FORMER:
            raise Refused("too many former addresses")
        for _ in range(m):
            f = r.bytes().decode("utf-8")
            local, at, domain = f.rpartition("@")
            if not (at and local and domain):
                raise Refused("bad former address")
            former.append(f)
    r.end()
    out["history"], out["former"] = history, former
    return out


def reseal(key, header, plain):
    """`plain` sealed again under `key` behind `header` (the header is the associated data)."""
    nonce = bytes(range(NONCE_LEN))
    return header + nonce + crypto_aead_xchacha20poly1305_ietf_encrypt(plain, header, nonce, key)


def overlay_open(envelope, overlay, holder_secret=None, read_key=None):
    """A key overlay of `envelope` (spec/envelope.md §16) into {chunk index: (type, key)}."""
    header = envelope[:42]
    if len(overlay) < 9 or overlay[:7] != b"DIMEOVL" or overlay[7] != 1:
        raise Refused("overlay head")
    form = overlay[8]
    if form == 1 and holder_secret is not None:
        sk = X25519PrivateKey.from_private_bytes(holder_secret)
        holder = sk.public_key().public_bytes_raw()
        e = overlay[9:41]
        z = sk.exchange(X25519PublicKey.from_public_bytes(e))
        kek = hkdf(e + holder, z, b"dime/v2/overlay/x25519")
        rest = overlay[41:]
    elif form == 2 and read_key is not None:
        kek = hkdf(header[10:42], read_key, b"dime/v2/overlay/read")
        rest = overlay[9:]
    else:
        raise Refused("overlay form")
    aad = b"dime/v2/overlay\0" + bytes([form]) + header[10:42] + hashlib.sha512(header).digest()
    pt = seal_open(kek, aad, rest)
    count = int.from_bytes(pt[:2], "big")
    if count == 0 or len(pt) != 2 + 35 * count:
        raise Refused("overlay count")
    return {int.from_bytes(pt[3 + 35 * i:5 + 35 * i], "big"): (pt[2 + 35 * i], pt[5 + 35 * i:37 + 35 * i])
            for i in range(count)}


def decode(o):
    """§6 and §8.2: every record of the plaintext, decoded and opened."""
    a = o["account_id"]
    sub = lambda purpose: hkdf(b"dime-store account", o["account_key"], purpose + a)
    keys = {"keyring_key": sub(b"keyring"), "meta_key": sub(b"meta"), "read_key": sub(b"read")}
    d = {"keyring": [], "mailboxes": [], "entries": [], "messages": [], "overlays": [],
         "blobs": {}, "keys": keys}
    last = None
    for table, key, value in o["records"]:
        if table not in EXPORTED:
            raise Refused(f"table {table} in an archive")
        if last is not None and (EXPORTED.index(last[0]), last[1]) >= (EXPORTED.index(table), key):
            raise Refused("records out of order")
        last = (table, key)
        if key[:16] != a:
            raise Refused("record of another account")
        rest = key[16:]
        if table == BLOBS:
            d["blobs"][int.from_bytes(rest, "big")] = value
            continue
        body = record_body(table, key, value)
        if table == KEYS:
            if rest != b"\x04":
                raise Refused("a key record other than the keyring")
            r = Reader(seal_open(keys["keyring_key"], key, body))
            n = r.u32()
            if not 1 <= n <= MAX_KEYRING:
                raise Refused("keyring count")
            for _ in range(n):
                g, seed, x = r.u32(), r.take(32), r.take(32)
                d["keyring"].append({
                    "generation": g, "ed25519_seed": seed.hex(), "x25519_secret": x.hex(),
                    "ed25519_public": Ed25519PrivateKey.from_private_bytes(seed).public_key()
                    .public_bytes_raw().hex(),
                    "x25519_public": X25519PrivateKey.from_private_bytes(x).public_key()
                    .public_bytes_raw().hex()})
            r.end()
        elif table == MAILBOXES:
            mid = Reader(rest).u32()
            r = Reader(body)
            name = seal_open(keys["meta_key"],
                             b"dime-store mailbox name" + a + mid.to_bytes(4, "big"), r.bytes())
            d["mailboxes"].append({"id": mid, "name": name.decode("utf-8"), "uid_validity": r.u32(),
                                   "uid_next": r.u32(), "highest_modseq": r.u64(),
                                   "messages": r.u32()})
            r.end()
        elif table == ENTRIES:
            k = Reader(rest)
            mailbox, uid = k.u32(), k.u32()
            k.end()
            r = Reader(body)
            number, modseq, sealed = r.u64(), r.u64(), r.bytes()
            r.end()
            flags = None
            if sealed:
                flags = seal_open(keys["meta_key"], b"dime-store flags" + a + number.to_bytes(8, "big"),
                                  sealed).decode("utf-8")
            d["entries"].append({"mailbox": mailbox, "uid": uid, "message": number,
                                 "modseq": modseq, "flags": flags})
        elif table == MESSAGES:
            number = Reader(rest).u64()
            r = Reader(body)
            size, arrival, gen, digest = r.u64(), r.u64(), r.u32(), r.take(16)
            n = r.u32()
            if n > MAX_REFS:
                raise Refused("too many references")
            refs = [[r.u32(), r.u32()] for _ in range(n)]
            r.end()
            d["messages"].append({"number": number, "size": size, "arrival": arrival,
                                  "key_generation": gen, "digest": digest.hex(), "refs": refs})
        elif table == OVERLAYS:
            if len(rest) != 9:
                raise Refused("overlay key")
            number, kind = int.from_bytes(rest[:8], "big"), rest[8]
            if kind == 3:
                text = seal_open(keys["read_key"], b"dime-store summary" + a + rest[:8], body)
                d["overlays"].append({"message": number, "kind": kind, "summary": text.hex()})
            else:
                d["overlays"].append({"message": number, "kind": kind, "overlay": body.hex()})
    return d


def check(path):
    vec = json.loads(path.read_text())
    e, mid = vec["expected"], vec["intermediate"]
    password = vec["archive_password"].encode("utf-8")
    archive = bytes.fromhex(vec["archive"])
    failures, checked = [], []

    def same(what, got, want):
        if got != want:
            failures.append(f"{what}: got {got!r}, expected {want!r}")

    a2 = vec["argon2id"]
    if a2["p"] != 1:
        return [f"skipped: p = {a2['p']} (libsodium's Argon2id has one lane)"], checked
    o = open_archive(archive, password)
    version = o["version"]
    # archive-<version>.json holds an archive of that version.
    same("version (the magic's last octet)", version, int(path.stem.split("-")[1]))
    checked.append(f"version {version}: header, Argon2id, archive key, nonce, seal")
    same("header", o["header"].hex(), mid["header"])
    same("argon2id parameters", [o["m"], o["t"], o["p"], o["salt"].hex()],
         [a2["m_kib"], a2["t"], a2["p"], a2["salt"]])
    same("argon2id output", o["stretched"].hex(), mid["argon2id_output"])
    same("archive key", o["archive_key"].hex(), mid["archive_key"])
    same("nonce", o["nonce"].hex(), mid["nonce"])
    same("plaintext length", len(o["plaintext"]), mid["plaintext_len"])
    p = parse_plaintext(o["plaintext"], version)
    for k in ("address", "generation", "quota", "next_message_number", "next_mailbox_id",
              "key_generation"):
        same(k, p[k], e[k])
    for k in ("account_id", "account_key", "signet"):
        same(k, p[k].hex(), e[k])
    same("records", [[t, k.hex(), v.hex()] for t, k, v in p["records"]],
         [[r["table"], r["key"], r["value"]] for r in e["records"]])
    checked.append(f"plaintext fields and {len(p['records'])} records")
    # §8.2 version 2 trailer: every history signet (a u32-length-prefixed blob, read whole by
    # the parser) and former address, in order, is the vector's; version 1 has none, and its
    # vector claims none.
    if version == 2:
        if "history" not in e or "former" not in e:
            failures.append("a version 2 vector without expected history and former")
    same("history", [h.hex() for h in p["history"]], e.get("history", []))
    same("former", p["former"], e.get("former", []))
    if version == 1 and (p["history"] or p["former"] or e.get("history") or e.get("former")):
        failures.append("version 1 has no history and no former address")
    checked.append(f"trailer: {len(p['history'])} history signets, "
                   f"{len(p['former'])} former addresses" if version == 2
                   else "no trailer (version 1): empty history and former")
    d = decode(p)
    for k, v in d["keys"].items():
        same(k, v.hex(), mid[k])
    for k in ("keyring", "mailboxes", "entries", "messages", "overlays"):
        same(k, d[k], e[k])
    blobs = d["blobs"]
    same("used", sum(len(b) for b in blobs.values()), e["used"])
    same("message_count", len(blobs), e["message_count"])

    # Consistency a second implementation can rely on (§6, §8.2).
    ring = d["keyring"]
    same("current generation", ring[-1]["generation"] if ring else None, p["key_generation"])
    same("directory generation", p["generation"], p["key_generation"])
    for k in ("ed25519_public", "x25519_public"):
        if bytes.fromhex(ring[-1][k]) not in p["signet"]:
            failures.append(f"the signet does not carry the current {k}")
    # The history is the signets of the generations before the current one, oldest first:
    # the last history signet is the previous generation's, and so on back.
    if len(p["history"]) >= len(ring):
        failures.append("more history signets than earlier key generations")
    for i, h in enumerate(reversed(p["history"])):
        g = ring[-2 - i] if i + 2 <= len(ring) else None
        if g is None or any(bytes.fromhex(g[k]) not in h
                            for k in ("ed25519_public", "x25519_public")):
            failures.append(f"history signet {len(p['history']) - 1 - i} does not carry the keys"
                            f" of generation {g and g['generation']}")
        if h == p["signet"]:
            failures.append("a history signet is the current signet")
    if p["address"] in p["former"]:
        failures.append("the current address is among the former ones")
    if p["history"]:
        checked.append("each history signet carries the public keys of the generation before "
                       "the next (the last: the previous generation's)")
    entries = {(x["mailbox"], x["uid"]): x["message"] for x in d["entries"]}
    for msg in d["messages"]:
        blob = blobs.get(msg["number"])
        if blob is None:
            failures.append(f"message {msg['number']} has no blob")
            continue
        same(f"message {msg['number']} size", msg["size"], len(blob))
        same(f"message {msg['number']} digest (format 2)", msg["digest"],
             hashlib.sha512(blob).digest()[:16].hex())
        for ref in msg["refs"]:
            same(f"message {msg['number']} reference {ref}", entries.get(tuple(ref)), msg["number"])
    same("every entry's message is referenced",
         sorted(entries.items()),
         sorted(((m, u), x["number"]) for x in d["messages"] for m, u in x["refs"]))
    for mb in d["mailboxes"]:
        same(f"mailbox {mb['id']} count", mb["messages"],
             sum(1 for (m, _) in entries if m == mb["id"]))
    # The overlays open with the archive's keys (spec/envelope.md §16).
    gens = {k["generation"]: bytes.fromhex(k["x25519_secret"]) for k in ring}
    msgs = {x["number"]: x for x in d["messages"]}
    for ov in d["overlays"]:
        n, kind = ov["message"], ov["kind"]
        blob = blobs[n]
        try:
            if kind == 1:
                overlay_open(blob, bytes.fromhex(ov["overlay"]),
                             holder_secret=gens[msgs[n]["key_generation"]])
            elif kind == 2:
                overlay_open(blob, bytes.fromhex(ov["overlay"]), read_key=d["keys"]["read_key"])
        except Refused as exc:
            failures.append(f"overlay kind {kind} of message {n}: {exc}")
    checked.append(f"keyring ({len(ring)} generations), {len(d['mailboxes'])} mailboxes, "
                   f"{len(d['entries'])} entries, {len(d['messages'])} messages, "
                   f"{len(d['overlays'])} overlays")

    # Refusals. `reason`, when given, is the refusal expected: the check fails on another.
    def refused(what, data, pw=password, reason=None):
        try:
            q = open_archive(data, pw)
            parse_plaintext(q["plaintext"], q["version"])
        except Refused as exc:
            if reason is not None and str(exc) != reason:
                failures.append(f"{what} was refused as {exc!r}, not as {reason!r}")
            else:
                checked.append(f"refused: {what} ({exc})")
            return
        failures.append(f"{what} was not refused")

    refused("a wrong password", archive, b"wrong password")
    for i in (19, 27, 47):  # the version octet, the last octet of t, the last of the salt
        bad = bytearray(archive)
        bad[i] ^= 1
        refused(f"header octet {i} changed", bytes(bad))
    bad = bytearray(archive)
    bad[HEADER_LEN + NONCE_LEN + 5] ^= 0x80
    refused("a ciphertext octet changed", bytes(bad))
    refused("a truncated archive", archive[:-1])
    low = bytearray(archive)
    low[20:24] = (M_MIN - 1).to_bytes(4, "big")
    refused("m below 8 MiB", bytes(low))
    # The other version's magic: the header is the seal's associated data, so the seal does
    # not open (it is not read as the other version).
    other = 1 if version == 2 else 2
    refused(f"a version {other} magic on a version {version} archive",
            MAGICS[other] + archive[20:], reason="seal does not open")

    # Plaintexts changed and sealed again under the archive key: the seal opens, the plaintext
    # is refused. First the plaintext as it is, which must open and parse (so a refusal below
    # is the change's).
    key, header, plain = o["archive_key"], o["header"], o["plaintext"]
    try:
        q = open_archive(reseal(key, header, plain), password)
        same("resealed as it is", parse_plaintext(q["plaintext"], version)["history"],
             p["history"])
    except Refused as exc:
        failures.append(f"the plaintext resealed as it is was refused: {exc}")
    if version == 2:
        trailer = 8 + sum(4 + len(h) for h in p["history"]) + \
            sum(4 + len(f.encode("utf-8")) for f in p["former"])
        body = plain[:len(plain) - trailer]
        for keep, what in ((0, "a version 2 archive without its trailer"),
                           (4, "a version 2 trailer cut after its history count"),
                           (trailer - 1, "a version 2 trailer without its last octet")):
            refused(what, reseal(key, header, body + plain[len(body):len(body) + keep]),
                    reason="truncated")
        v1_header = MAGICS[1] + header[20:]
        refused("a version 2 plaintext sealed under a version 1 header",
                reseal(key, v1_header, plain), reason="octets after the end")
        signet = p["signet"]
        blob = len(signet).to_bytes(4, "big") + signet
        for n, what in ((MAX_HISTORY, None), (MAX_HISTORY + 1, "too long a signet history")):
            over = body + n.to_bytes(4, "big") + blob * n + (0).to_bytes(4, "big")
            if what is None:
                try:
                    q = open_archive(reseal(key, header, over), password)
                    same(f"{n} history signets", len(parse_plaintext(q["plaintext"], 2)["history"]), n)
                except Refused as exc:
                    failures.append(f"{n} history signets (the limit) were refused: {exc}")
            else:
                refused(f"{n} history signets", reseal(key, header, over), reason=what)
        addr = p["address"].encode("utf-8")
        addr = len(addr).to_bytes(4, "big") + addr
        for n, what in ((MAX_FORMER, None), (MAX_FORMER + 1, "too many former addresses")):
            over = body + (0).to_bytes(4, "big") + n.to_bytes(4, "big") + addr * n
            if what is None:
                try:
                    q = open_archive(reseal(key, header, over), password)
                    same(f"{n} former addresses", len(parse_plaintext(q["plaintext"], 2)["former"]), n)
                except Refused as exc:
                    failures.append(f"{n} former addresses (the limit) were refused: {exc}")
            else:
                refused(f"{n} former addresses", reseal(key, header, over), reason=what)
    return failures, checked


def main():
    files = sorted(VECTORS.glob("archive-*.json"))
    if not files:
        print(f"no vectors in {VECTORS}", file=sys.stderr)
        return 1
    bad = 0
    for f in files:
        checked = []
        try:
            failures, checked = check(f)
        except Refused as exc:
            failures = [f"refused: {exc}"]
        status = "ok" if not failures else "FAIL"
        print(f"storage {f.name}: {status}")
        for msg in checked:
            print(f"  checked: {msg}")
        for msg in failures:
            print(f"  {msg}")
        bad += bool(failures)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
