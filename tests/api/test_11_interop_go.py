# SPDX-License-Identifier: MIT
"""The audit ledger against Go's reference transparency-log code: tests/interop/verify.go,
built offline from Debian's golang.org/x/mod, checks qund's signed checkpoints with
sumdb/note and its leaf hashes, roots and proofs with sumdb/tlog.  It must accept what
qund serves and reject a re-sized checkpoint, a corrupted inclusion proof and a
consistency proof against the wrong old root; the log must also stay provable across
a rotation of the signing key."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import Server, expect, register

HERE = os.path.dirname(os.path.abspath(__file__))
VERIFY_SRC = os.path.join(HERE, "..", "interop", "verify.go")
GOPATH = "/usr/share/gocode"  # Debian's golang-golang-x-mod-dev installs x/mod here


@pytest.fixture(scope="module")
def verifier():
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed (scripts/deps.sh installs golang-go and golang-golang-x-mod-dev)")
    tmp = tempfile.mkdtemp(prefix="qun-interop-")
    out = os.path.join(tmp, "verify")
    # GOPATH mode against the Debian sources, a private build cache, and no proxy:
    # the build must work offline on a clean machine.
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOPROXY="off", GOFLAGS="",
               GOCACHE=os.path.join(tmp, "gocache"), CGO_ENABLED="0")
    r = subprocess.run([go, "build", "-o", out, VERIFY_SRC], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, f"go build failed (is golang-golang-x-mod-dev installed?):\n{r.stderr}"
    yield out
    shutil.rmtree(tmp, ignore_errors=True)


def run(verifier, doc):
    """Run the Go verifier on one input document; return (exit status, output lines)."""
    r = subprocess.run([verifier], input=json.dumps(doc), capture_output=True, text=True, timeout=30)
    assert r.returncode in (0, 1), f"verify could not read its input ({r.returncode}): {r.stderr}"
    return r.returncode, r.stdout.splitlines()


def failures(lines):
    return [l for l in lines if l.startswith("FAIL")]


@pytest.fixture(scope="module")
def log():
    srv = Server(extra=["--set", "admins=root"]).start()
    root = register(srv.url, name="root")
    alice = register(srv.url)
    cps = {}

    def checkpoint():
        r = root.get("/v1/ledger/checkpoint")
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain"), r.text
        size = int(r.text.split("\n")[1])
        cps[size] = r.text
        return size

    # Keep checkpoints along the way, as a client watching the log would: empty, one
    # entry, a power of two, and sizes that are not.
    assert checkpoint() == 0
    n = 0
    for target in (1, 12, 16, 25, 42):
        while n < target:
            who = root if n % 3 else alice
            expect(who.post("/v1/groups", {"name": f"interop-{n}"}), 201)
            n += 1
        assert checkpoint() == n
    key = expect(root.get("/v1/ledger/key"), 200)
    yield {"srv": srv, "root": root, "cps": cps, "size": n, "key": key}
    rc = srv.stop()
    out = srv.read_log()
    assert "runtime error" not in out and "AddressSanitizer" not in out, out[-4000:]
    assert rc == 0, f"qund exited {rc}: {out[-2000:]}"


def entries(client, size):
    items, start = [], 0
    while start < size:
        page = expect(client.get(f"/v1/ledger/entries?start={start}&end={size}"), 200)
        items += [{k: e[k] for k in ("index", "leaf_hash", "entry") if k in e} for e in page["items"]]
        start = page["end"]
    return items


def inclusion(client, index, size):
    p = expect(client.get(f"/v1/ledger/proof/inclusion?index={index}&size={size}"), 200)
    return {k: p[k] for k in ("index", "tree_size", "leaf_hash", "proof")}


def consistency(client, old, new):
    p = expect(client.get(f"/v1/ledger/proof/consistency?old={old}&new={new}"), 200)
    return {k: p[k] for k in ("old", "new", "proof")}


def root_of(note):
    return note.split("\n")[2]


INCLUSION = [(0, 42), (41, 42), (0, 1), (5, 12), (11, 12), (15, 16), (20, 25), (24, 25), (17, 42), (31, 32)]
CONSISTENCY = [(1, 42), (12, 42), (16, 42), (25, 42), (41, 42), (42, 42), (1, 12), (12, 25), (16, 25), (7, 9)]


def test_go_accepts_the_ledger(log, verifier):
    root, size = log["root"], log["size"]
    assert size == 42
    with open(os.path.join(log["srv"].data, "ledger.key")) as f:
        signer = f.read()
    doc = {"verifier_key": log["key"]["verifier_key"], "signer_key": signer,
           "checkpoints": [log["cps"][s] for s in sorted(log["cps"])],
           "entries": entries(root, size),
           "inclusion": [inclusion(root, i, n) for i, n in INCLUSION],
           "consistency": [consistency(root, m, n) for m, n in CONSISTENCY]}
    assert all("entry" in e for e in doc["entries"])  # root is an admin
    rc, lines = run(verifier, doc)
    out = "\n".join(lines)
    assert rc == 0 and not failures(lines), out
    assert lines[-1] == f"summary: {len([l for l in lines if l.startswith('ok')])} checks, 0 failed", out
    # Every claim was checked by the Go code named in its line, not skipped.
    assert sum("signature verified by note.Open" in l for l in lines) == len(log["cps"]), out
    assert sum("note.Sign reproduces it byte for byte" in l for l in lines) == len(log["cps"]), out
    assert sum("tlog.RecordHash of the text equals the leaf hash" in l for l in lines) == size, out
    assert sum("tlog.TreeHash over the leaf hashes equals the signed root" in l for l in lines) == \
        len(log["cps"]) - 1, out
    assert "root is SHA-256(\"\")" in out
    assert sum("tlog.CheckRecord accepts" in l for l in lines) == len(INCLUSION), out
    assert sum("identical to tlog.ProveRecord's proof" in l for l in lines) == len(INCLUSION), out
    assert sum("tlog.CheckTree accepts" in l for l in lines) == len(CONSISTENCY), out
    assert sum("identical to tlog.ProveTree's proof" in l for l in lines) == len(CONSISTENCY), out
    # Proofs between kept checkpoints are checked against signed roots on both ends.
    assert "consistency of 12 with 42: tlog.CheckTree accepts the" in out
    assert [l for l in lines if l.startswith("ok   consistency of 12 with 42: tlog.CheckTree")][0].endswith(
        "(old: signed root, new: signed root)"), out


def test_go_rejects_a_resized_checkpoint(log, verifier):
    note = log["cps"][42]
    lines = note.split("\n")
    for forged_size in ("43", "41", "042"):
        forged = "\n".join([lines[0], forged_size] + lines[2:])
        rc, out = run(verifier, {"verifier_key": log["key"]["verifier_key"], "checkpoints": [forged]})
        assert rc == 1 and len(failures(out)) == 1, out
        assert "note.Open: invalid signature for key" in failures(out)[0], out
    # The genuine note still passes on its own, so the failures above are the edits'.
    rc, out = run(verifier, {"verifier_key": log["key"]["verifier_key"], "checkpoints": [note]})
    assert rc == 0, out


def test_go_rejects_a_checkpoint_under_another_key(log, verifier):
    other = Server().start()
    try:
        key = expect(register(other.url).get("/v1/ledger/key"), 200)["verifier_key"]
    finally:
        other.stop()
    rc, out = run(verifier, {"verifier_key": key, "checkpoints": [log["cps"][42]]})
    assert rc == 1 and "note.Open: note has no verifiable signatures" in failures(out)[0], out


def flip(hexhash, at=10):
    c = hexhash[at]
    return hexhash[:at] + ("0" if c != "0" else "1") + hexhash[at + 1:]


def test_go_rejects_a_corrupted_inclusion_proof(log, verifier):
    root = log["root"]
    # Each item corrupts a different hash of the proof; the root is the signed one.
    good = inclusion(root, 17, 42)
    assert len(good["proof"]) >= 5
    bad = []
    for i in range(len(good["proof"])):
        p = dict(good, proof=list(good["proof"]))
        p["proof"][i] = flip(p["proof"][i])
        bad.append(p)
    bad.append(dict(good, proof=good["proof"][:-1]))                 # one hash short
    bad.append(dict(good, index=16))                                  # right proof, wrong position
    bad.append(dict(good, leaf_hash=flip(good["leaf_hash"])))         # wrong leaf
    doc = {"verifier_key": log["key"]["verifier_key"], "checkpoints": [log["cps"][42]], "inclusion": bad}
    rc, out = run(verifier, doc)
    assert rc == 1 and len(failures(out)) == len(bad), "\n".join(out)
    assert all("tlog.CheckRecord against the signed root" in l for l in failures(out)), "\n".join(out)
    rc, out = run(verifier, dict(doc, inclusion=[good]))
    assert rc == 0, out


def test_go_rejects_consistency_with_a_wrong_old_root(log, verifier):
    root, cps, key = log["root"], log["cps"], log["key"]["verifier_key"]
    good = consistency(root, 12, 42)
    base = {"verifier_key": key, "checkpoints": [cps[12], cps[42]]}
    rc, out = run(verifier, dict(base, consistency=[good]))
    assert rc == 0, out
    bad = [dict(good, old_root=root_of(cps[16])),    # a genuine root, but of another size
           dict(good, old_root=root_of(cps[42])),    # the new root posing as the old one
           dict(good, proof=[flip(h) for h in good["proof"][:1]] + good["proof"][1:])]
    # The proof for 12 is not a proof for 13 (no checkpoint: the root must be given).
    bad.append(dict(good, old=13, old_root=root_of(cps[12])))
    rc, out = run(verifier, dict(base, consistency=bad))
    assert rc == 1 and len(failures(out)) == len(bad), "\n".join(out)
    assert all("tlog.CheckTree" in l for l in failures(out)), "\n".join(out)


def test_go_rejects_an_edited_entry(log, verifier):
    items = entries(log["root"], log["size"])
    items[7]["entry"] = items[7]["entry"].replace("interop-", "interop+")
    rc, out = run(verifier, {"verifier_key": log["key"]["verifier_key"], "entries": items})
    assert rc == 1 and len(failures(out)) == 1 and failures(out)[0].startswith("FAIL entry 7: tlog.RecordHash"), out


def test_key_rotation_keeps_the_log_provable(log, verifier):
    """The operator's rotation (docs/ledger.md): stop qund, move ledger.key aside,
    start again.  The new key has a new origin; the log is the same, so a consistency
    proof links a checkpoint signed by the old key to one signed by the new key."""
    srv, root, cps = log["srv"], log["root"], log["cps"]
    old_key = log["key"]
    assert srv.stop() == 0
    os.rename(os.path.join(srv.data, "ledger.key"), os.path.join(srv.tmp, "ledger.key.old"))
    srv.start()
    new_key = expect(root.get("/v1/ledger/key"), 200)
    assert new_key["origin"] != old_key["origin"] and new_key["verifier_key"] != old_key["verifier_key"]
    for i in range(3):
        expect(root.post("/v1/groups", {"name": f"after-rotation-{i}"}), 201)
    new_note = root.get("/v1/ledger/checkpoint").text
    size = int(new_note.split("\n")[1])
    assert size == log["size"] + 3 and new_note.startswith(new_key["origin"] + "\n")
    doc = {"verifier_key": new_key["verifier_key"], "verifier_keys": [old_key["verifier_key"]],
           "checkpoints": [cps[12], cps[42], new_note],
           "consistency": [consistency(root, 12, size), consistency(root, 42, size)],
           "inclusion": [inclusion(root, 41, size), inclusion(root, size - 1, size)]}
    rc, out = run(verifier, doc)
    assert rc == 0 and not failures(out), "\n".join(out)
    assert sum("(old: signed root, new: signed root)" in l for l in out) == 2, "\n".join(out)
    # The old checkpoints need the old key: with only the new one they are unverifiable.
    rc, out = run(verifier, {"verifier_key": new_key["verifier_key"], "checkpoints": [cps[42]]})
    assert rc == 1, out
    # The old key does not vouch for the new checkpoint.
    rc, out = run(verifier, {"verifier_key": old_key["verifier_key"], "checkpoints": [new_note]})
    assert rc == 1, out
