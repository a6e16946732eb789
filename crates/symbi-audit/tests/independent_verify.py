#!/usr/bin/env python3
"""Independent verifier of a symbi audit log, written from docs/audit-format.md alone.

It shares no code with the Rust implementation: framing, CRC-32C, RFC 8785 canonical JSON,
the hash chain, Ed25519 signatures (PyPI `cryptography`), key rotations, the RFC 9162
Merkle tree and the C2SP checkpoints are all re-implemented here.

Usage:
  independent_verify.py log DIR [VKEY]        verify the log in DIR (the audit directory);
                                              VKEY pins the trust anchor (default: first
                                              line of DIR/pubkeys)
  independent_verify.py proof FILE [VKEY]     check a proof printed by `symbi audit prove`
  independent_verify.py path DIR INDEX SIZE   print the inclusion path of leaf INDEX in the
                                              tree of SIZE events, computed independently
  independent_verify.py consistency DIR M N   print the consistency path between sizes M, N

Prints one JSON object; exit status 0 when everything verifies, 1 otherwise.
"""

import base64
import hashlib
import json
import math
import os
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SEGMENT_MAGIC = b"SYMAUD01"
EVENT_PREFIX = b"symbi-audit/event/v1\n"
ROTATION_PREFIX = b"symbi-audit/key-rotation/v1\n"
BODY_KEYS = ["agent_id", "agent_name", "details", "event_type", "execution_id", "id", "key_id", "seq", "timestamp", "v"]


class Bad(Exception):
    """A verification failure: kind, sequence number, message."""

    def __init__(self, kind, seq, msg):
        super().__init__(f"{kind} at event {seq}: {msg}")
        self.kind, self.seq, self.msg = kind, seq, msg


# ---------------------------------------------------------------- CRC-32C (Castagnoli)
_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


# ---------------------------------------------------------------- RFC 8785 (JCS)
def _es_number(x):
    """ECMAScript Number.prototype.toString for finite doubles (RFC 8785 §3.2.2.3)."""
    if isinstance(x, bool):
        raise ValueError("bool is not a number")
    if isinstance(x, int):
        if abs(x) > 2**53:
            x = float(x)
        else:
            return str(x)
    if not math.isfinite(x):
        raise ValueError("NaN and infinities are not JSON")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # Shortest round-trip digits and exponent from Python's repr.
    r = repr(abs(x))
    if "e" in r:
        mant, exp = r.split("e")
        exp = int(exp)
    else:
        mant, exp = r, 0
    if "." in mant:
        ip, fp = mant.split(".")
    else:
        ip, fp = mant, ""
    digits = (ip + fp).lstrip("0")
    lead_zeros = len(ip + fp) - len((ip + fp).lstrip("0"))
    n = len(ip) + exp - lead_zeros  # position of the decimal point relative to digits
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    es = ("+" if e >= 0 else "-") + str(abs(e))
    if k == 1:
        return sign + digits + "e" + es
    return sign + digits[0] + "." + digits[1:] + "e" + es


def _es_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def jcs(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return _es_number(v)
    if isinstance(v, str):
        return _es_string(v)
    if isinstance(v, list):
        return "[" + ",".join(jcs(x) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v.keys(), key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(_es_string(k) + ":" + jcs(v[k]) for k in keys) + "}"
    raise ValueError(f"not JSON: {v!r}")


# ---------------------------------------------------------------- keys and notes
def key_id(name, pk):
    return hashlib.sha256(name.encode() + b"\n" + b"\x01" + pk).digest()[:4]


def parse_vkey(s):
    name, kid, b64 = s.strip().split("+", 2)
    raw = base64.b64decode(b64)
    if len(raw) != 33 or raw[0] != 1:
        raise ValueError("not an Ed25519 verifier key")
    pk = raw[1:]
    if key_id(name, pk).hex() != kid:
        raise ValueError("key id does not match")
    return {"name": name, "pk": pk, "id": kid}


def ed25519_ok(pk, msg, sig):
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
        return True
    except InvalidSignature:
        return False


def verify_note(note, key):
    """Returns the checkpoint fields if `key` signed the note."""
    i = note.rfind("\n\n")
    if i < 0:
        raise ValueError("no blank line before signatures")
    text, sigs = note[: i + 1], note[i + 2 :]
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            raise ValueError("bad signature line")
        name, b64 = line[2:].rsplit(" ", 1)
        blob = base64.b64decode(b64)
        if name == key["name"] and blob[:4].hex() == key["id"]:
            if not ed25519_ok(key["pk"], text.encode(), blob[4:]):
                raise ValueError("checkpoint signature does not verify")
            lines = text[:-1].split("\n")
            if lines[0] != key["name"]:
                raise ValueError("origin differs from key name")
            if not lines[3].startswith("timestamp ") or not lines[4].startswith("chain "):
                raise ValueError("missing timestamp/chain extension lines")
            return {
                "origin": lines[0],
                "size": int(lines[1]),
                "root": base64.b64decode(lines[2]),
                "timestamp_ms": int(lines[3][len("timestamp ") :]),
                "chain": base64.b64decode(lines[4][len("chain ") :]),
            }
    raise ValueError(f"not signed by key {key['id']}")


# ---------------------------------------------------------------- RFC 9162 Merkle tree
def leaf_hash(entry):
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(l, r):
    return hashlib.sha256(b"\x01" + l + r).digest()


def _k(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves):
    """MTH(D[n]) over leaf hashes, straight from the RFC's recursive definition."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = _k(n)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m, leaves):
    n = len(leaves)
    if n <= 1:
        return []
    k = _k(n)
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m, leaves, b):
    n = len(leaves)
    if m == n:
        return [] if b else [mth(leaves)]
    k = _k(n)
    if m <= k:
        return subproof(m, leaves[:k], b) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def verify_inclusion(leaf, index, size, proof, root):
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(m, n, old_root, new_root, proof):
    if m == n:
        return not proof and old_root == new_root
    if m == 0:
        return not proof
    if not proof:
        return False
    if m & (m - 1) == 0:
        proof = [old_root] + proof
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


# ---------------------------------------------------------------- files
def frames(buf, start):
    """Yields (offset, payload) for each frame; raises at the first damaged one, except a
    damaged frame with nothing intact after it (a torn tail), which ends the iteration."""
    off = start
    while off < len(buf):
        if len(buf) - off < 8:
            return
        ln, crc = struct.unpack(">II", buf[off : off + 8])
        payload = buf[off + 8 : off + 8 + ln]
        if ln == 0 or len(payload) != ln or crc32c(payload) != crc:
            yield off, None
            return
        yield off, payload
        off += 8 + ln


def read_segments(audit_dir):
    sdir = os.path.join(audit_dir, "segments")
    names = sorted(n for n in os.listdir(sdir) if n.endswith(".seg") and len(n) == 24)
    for name in names:
        with open(os.path.join(sdir, name), "rb") as f:
            yield name, int(name[:20]), f.read()


def read_checkpoints(audit_dir):
    p = os.path.join(audit_dir, "checkpoints.log")
    if not os.path.exists(p):
        return []
    buf = open(p, "rb").read()
    out = []
    for _, payload in frames(buf, 0):
        if payload is None:
            break
        out.append(payload.decode())
    return out


def verify_log(audit_dir, anchor_vkey=None):
    keys = [l for l in open(os.path.join(audit_dir, "pubkeys")).read().splitlines() if l.strip() and not l.startswith("#")]
    key = parse_vkey(anchor_vkey or keys[0])
    key_ids = [key["id"]]
    checkpoints = read_checkpoints(audit_dir)
    cp_i = 0
    chain = b"\x00" * 32
    leaves = []
    last_ts = None
    last_cp_ts = -1
    cps_checked = 0
    uncovered = None  # (first seq, leaves and chain before it) of a run of unsigned records

    def check_checkpoints():
        nonlocal cp_i, last_cp_ts, cps_checked
        while cp_i < len(checkpoints):
            size = int(checkpoints[cp_i].split("\n")[1])
            if size > len(leaves):
                return  # checked when the events reach its size
            if size < len(leaves):
                raise Bad("checkpoint_order", size, "checkpoint sizes must not decrease")
            try:
                fields = verify_note(checkpoints[cp_i], key)  # signed by the key in effect
            except ValueError as e:
                raise Bad("checkpoint_signature", size, str(e))
            if mth(leaves) != fields["root"]:
                raise Bad("checkpoint_root", fields["size"], "Merkle root differs from the signed checkpoint")
            if fields["chain"] != chain:
                raise Bad("checkpoint_chain", fields["size"], "chain hash differs from the signed checkpoint")
            if fields["timestamp_ms"] <= last_cp_ts:
                raise Bad("checkpoint_order", fields["size"], "checkpoint timestamps must increase")
            last_cp_ts = fields["timestamp_ms"]
            cp_i += 1
            cps_checked += 1

    check_checkpoints()
    segs = list(read_segments(audit_dir))
    for si, (name, first, buf) in enumerate(segs):
        if buf[:8] != SEGMENT_MAGIC or struct.unpack(">Q", buf[8:16])[0] != first:
            raise Bad("segment_header", first, f"{name}: bad header")
        if first > len(leaves):
            raise Bad("segment_missing", len(leaves), f"{name} starts at {first}")
        for off, payload in frames(buf, 16):
            seq = len(leaves)
            if payload is None:
                if si == len(segs) - 1:
                    break  # torn tail: never acknowledged
                raise Bad("frame", seq, f"{name} offset {off}: damaged record")
            if payload[0] == 1:  # signed record
                stored_chain, sig, body = payload[1:33], payload[33:97], payload[97:]
            elif payload[0] == 2:  # covered by the next signed record's signature
                stored_chain, sig, body = payload[1:33], None, payload[33:]
            else:
                raise Bad("record", seq, "unknown record version")
            try:
                ev = json.loads(body.decode("utf-8"))
            except ValueError as e:
                raise Bad("body", seq, f"not JSON: {e}")
            if sorted(ev.keys()) != BODY_KEYS or ev["v"] != 1:
                raise Bad("body", seq, "wrong keys or version")
            if jcs(ev).encode("utf-8") != body:
                raise Bad("body", seq, "body is not RFC 8785 canonical JSON")
            if ev["seq"] != seq:
                raise Bad("sequence", seq, f"record has sequence {ev['seq']}")
            ts = ev["timestamp"]
            if len(ts) != 30 or not ts.endswith("Z") or (last_ts is not None and ts < last_ts):
                raise Bad("timestamp", seq, f"bad or decreasing timestamp {ts}")
            last_ts = ts
            computed = hashlib.sha256(chain + body).digest()
            if computed != stored_chain:
                raise Bad("chain", seq, "stored chain hash differs from SHA-256(prev ‖ body)")
            if ev["key_id"] != key["id"]:
                raise Bad("key", seq, f"signed by {ev['key_id']}, key in effect is {key['id']}")
            if sig is None:
                if ev["event_type"] == "key_rotation":
                    raise Bad("signature", seq, "a key_rotation event must carry its own signature")
                if uncovered is None:
                    uncovered = (seq, list(leaves), chain)
            else:
                if not ed25519_ok(key["pk"], EVENT_PREFIX + computed, sig):
                    raise Bad("signature", seq, "Ed25519 signature does not verify")
                uncovered = None  # this signature vouches for the covered run before it
            if ev["event_type"] == "key_rotation":
                d = ev["details"]
                new_pk = base64.b64decode(d["new_public_key"])
                if d["old_key_id"] != key["id"] or key_id(key["name"], new_pk).hex() != d["new_key_id"]:
                    raise Bad("rotation", seq, "rotation names the wrong keys")
                if not ed25519_ok(new_pk, ROTATION_PREFIX + key["pk"] + new_pk, base64.b64decode(d["new_key_signature"])):
                    raise Bad("rotation", seq, "new key's signature does not verify")
                key = {"name": key["name"], "pk": new_pk, "id": d["new_key_id"]}
                key_ids.append(key["id"])
            chain = computed
            leaves.append(leaf_hash(body))
            check_checkpoints()
        if uncovered is not None and si < len(segs) - 1:
            raise Bad("signature", uncovered[0], f"{name} ends with records that no signature covers")
    if uncovered is not None:
        # A batch never sealed by its signed record (a crash): never acknowledged, not verified.
        first, leaves_before, chain_before = uncovered
        if cps_checked and cp_i > 0 and int(checkpoints[cp_i - 1].split("\n")[1]) > first:
            raise Bad("signature", first, "a checkpoint covers records that no signature covers")
        leaves, chain = leaves_before, chain_before
    if cp_i < len(checkpoints):
        size = int(checkpoints[cp_i].split("\n")[1])
        raise Bad("truncated", len(leaves), f"a checkpoint covers {size} events, the log holds {len(leaves)}")
    return {
        "ok": True,
        "events": len(leaves),
        "root": mth(leaves).hex(),
        "chain": chain.hex(),
        "checkpoints": cps_checked,
        "keys": key_ids,
    }


def leaf_hashes(audit_dir):
    out = []
    for _, _, buf in read_segments(audit_dir):
        for _, payload in frames(buf, 16):
            if payload is None:
                break
            out.append(leaf_hash(payload[97:]))
    return out


def check_proof(pf, vkey=None):
    p = json.load(open(pf))
    keys = [parse_vkey(vkey)] if vkey else [parse_vkey(k) for k in p["verifier_keys"]]

    def note(n):
        errs = []
        for k in keys:
            try:
                return verify_note(n, k)
            except ValueError as e:
                errs.append(str(e))
        raise Bad("checkpoint", None, "; ".join(errs))

    if p["type"] == "inclusion":
        cp = note(p["checkpoint"])
        leaf = leaf_hash(p["entry"].encode())
        ok = cp["size"] == p["tree_size"] and leaf.hex() == p["leaf_hash"] and verify_inclusion(
            leaf, p["leaf_index"], p["tree_size"], [bytes.fromhex(h) for h in p["path"]], cp["root"]
        )
        ok = ok and json.loads(p["entry"])["seq"] == p["leaf_index"]
    elif p["type"] == "consistency":
        old, new = note(p["old_checkpoint"]), note(p["new_checkpoint"])
        ok = (old["size"], new["size"]) == (p["old_size"], p["new_size"]) and verify_consistency(
            p["old_size"], p["new_size"], old["root"], new["root"], [bytes.fromhex(h) for h in p["path"]]
        )
    else:
        ok = False
    if not ok:
        raise Bad("proof", None, "the proof does not verify")
    return {"ok": True, "type": p["type"]}


def main(argv):
    try:
        if argv[1] == "log":
            out = verify_log(argv[2], argv[3] if len(argv) > 3 else None)
        elif argv[1] == "proof":
            out = check_proof(argv[2], argv[3] if len(argv) > 3 else None)
        elif argv[1] == "path":
            leaves = leaf_hashes(argv[2])
            m, n = int(argv[3]), int(argv[4])
            out = {"ok": True, "path": [h.hex() for h in path(m, leaves[:n])], "root": mth(leaves[:n]).hex()}
        elif argv[1] == "consistency":
            leaves = leaf_hashes(argv[2])
            m, n = int(argv[3]), int(argv[4])
            out = {"ok": True, "path": [h.hex() for h in subproof(m, leaves[:n], True)] if 0 < m < n else []}
        elif argv[1] == "jcs":
            out = {"ok": True, "canonical": jcs(json.loads(argv[2]))}
        else:
            raise SystemExit(__doc__)
    except Bad as e:
        out = {"ok": False, "kind": e.kind, "sequence": e.seq, "message": e.msg}
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
