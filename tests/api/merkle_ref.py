# SPDX-License-Identifier: MIT
"""An independent RFC 6962 / RFC 9162 implementation for the tests, written from the
RFC's definitions with hashlib, and a C2SP signed-note checkpoint verifier using
Debian's python3-cryptography for Ed25519."""
import base64
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def leaf(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node(l: bytes, r: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + l + r).digest()


def mth(leaves):
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(leaf_hash, index, size, proof, root):
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old, new, old_root, new_root, proof):
    if old < 1 or old > new:
        return False
    if old == new:
        return not proof and old_root == new_root
    proof = list(proof)
    if old & (old - 1) == 0:
        proof.insert(0, old_root)
    if not proof:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def parse_verifier(vkey: str):
    name, keyid_hex, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64)
    assert raw[0] == 1 and len(raw) == 33
    pk = raw[1:]
    want = hashlib.sha256(name.encode() + b"\n" + b"\x01" + pk).digest()[:4]
    assert want.hex() == keyid_hex, "key id is SHA-256(name || 0x0A || 0x01 || key)[:4]"
    return name, want, pk


def verify_checkpoint(note: str, vkey: str):
    """Return (origin, size, root) of a C2SP checkpoint signed by vkey, or raise."""
    name, keyid, pk = parse_verifier(vkey)
    text, sep, sigs = note.rpartition("\n\n")
    assert sep, "signed note has a blank line before its signatures"
    text += "\n"
    for line in sigs.splitlines():
        assert line.startswith("\u2014 "), line
        who, b64 = line[2:].split(" ")
        sig = base64.b64decode(b64)
        if who == name and sig[:4] == keyid:
            Ed25519PublicKey.from_public_bytes(pk).verify(sig[4:], text.encode())
            origin, size, root = text.splitlines()[:3]
            assert origin == name
            return origin, int(size), base64.b64decode(root)
    raise AssertionError("no signature by the verifier key")
