# SPDX-License-Identifier: MIT
"""`qun audit` against a real qund whose database the test tampers with directly:
one changed byte in an entry, a deleted last entry (with the tree nodes it completed),
and two entries swapped together with their leaf hashes.  `verify` must pass on the
honest ledger and fail on each tampering naming the first bad index; `prove` and
`check` make and verify offline proof bundles, and a corrupted bundle is refused."""
import json
import os
import sqlite3
import subprocess
import uuid

import pytest

from conftest import QUN, Server, expect, register, stop_clean

N_GROUPS = 30


@pytest.fixture(scope="module")
def srv():
    s = Server(extra=["--set", "admins=root"]).start()
    yield s
    stop_clean(s)


@pytest.fixture(scope="module")
def root(srv):
    r = register(srv.url, name="root")
    r.gids = [expect(r.post("/v1/groups", {"name": f"t{i}"}), 201)["id"] for i in range(N_GROUPS)]
    return r


def qun(srv, client, *args, tmp=None, url=None):
    """Run qun with client's token (None: no token) in a throwaway config directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUN_")}
    home = tmp or "/nonexistent"
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home) + "/cfg", QUN_URL=url or srv.url)
    if client:
        env["QUN_TOKEN"] = client.token
    r = subprocess.run([QUN, *args], capture_output=True, text=True, env=env, timeout=60)
    assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


def db(srv):
    return sqlite3.connect(os.path.join(srv.data, "qun.db"), timeout=10)


def verify(srv, client, key, tmp, *extra):
    """Run verify twice, for text and JSON; return (exit, stderr, json)."""
    r = qun(srv, client, "audit", "verify", "--key", key, *extra, tmp=tmp)
    j = qun(srv, client, "--json", "audit", "verify", "--key", key, *extra, tmp=tmp)
    assert j.returncode == r.returncode, (r.stderr, j.stderr)
    return r.returncode, r.stderr, json.loads(j.stdout)


def assert_fails_at(result, index, words):
    rc, err, j = result
    assert rc == 1, err
    assert j["ok"] is False and j["first_bad_index"] == index, j
    assert any(words in p["problem"] for p in j["problems"]), j["problems"]
    first = [l for l in err.splitlines() if l.startswith("qun: ") and l.endswith("(LEDGER_INVALID)")]
    assert first and words in "\n".join(first), err
    assert f"first bad index: {index}" in err


@pytest.mark.slow
def test_verify_passes_then_catches_each_tampering(srv, root, tmp_path):
    key = qun(srv, root, "audit", "key").stdout.strip()
    assert key == expect(root.get("/v1/ledger/key"), 200)["verifier_key"]
    saved = tmp_path / "checkpoint.txt"
    rc, err, j = verify(srv, root, key, tmp_path, "--save", str(saved))
    assert rc == 0, err
    size = j["tree_size"]
    assert j["ok"] and size >= N_GROUPS and j["entries_checked"] == size and j["root_matches"]
    assert saved.read_text() == root.get("/v1/ledger/checkpoint").text
    text = qun(srv, root, "audit", "verify", "--key", key, "--checkpoint-file", str(saved), tmp=tmp_path).stdout
    assert "OK" in text and "consistent" in text

    # (1) One byte of entry 5 changed in the database.
    with db(srv) as c:
        original = c.execute("SELECT entry FROM ledger_entries WHERE idx = 5").fetchone()[0]
        b = bytearray(original.encode())
        b[original.index('"name":"') + 8] ^= 1
        c.execute("UPDATE ledger_entries SET entry = ? WHERE idx = 5", (b.decode(),))
    assert_fails_at(verify(srv, root, key, tmp_path), 5, "entry 5: text does not hash to its leaf hash")
    assert_fails_at(verify(srv, root, key, tmp_path, "--checkpoint-file", str(saved)), 5, "entry 5: text")
    # A failed verify does not save its checkpoint.
    bad_save = tmp_path / "not-saved.txt"
    assert verify(srv, root, key, tmp_path, "--save", str(bad_save))[0] == 1 and not bad_save.exists()
    with db(srv) as c:
        c.execute("UPDATE ledger_entries SET entry = ? WHERE idx = 5", (original,))
    assert verify(srv, root, key, tmp_path, "--checkpoint-file", str(saved))[0] == 0

    # (2) The last entry deleted with its leaf and the parents it completed: the
    # server's own checkpoint is consistent, but the saved one shows the tree shrank.
    last = size - 1
    with db(srv) as c:
        entry_row = c.execute("SELECT * FROM ledger_entries WHERE idx = (SELECT MAX(idx) FROM ledger_entries)").fetchone()
        assert entry_row[0] == last
        nodes = [(0, last)] + [(lvl + 1, last >> (lvl + 1)) for lvl in range(64) if all((last >> k) & 1 for k in range(lvl + 1))]
        node_rows = [c.execute("SELECT level, idx, hash FROM ledger_nodes WHERE level = ? AND idx = ?", n).fetchone()
                     for n in nodes]
        assert all(node_rows)
        c.execute("DELETE FROM ledger_entries WHERE idx = (SELECT MAX(idx) FROM ledger_entries)")
        for n in nodes:
            c.execute("DELETE FROM ledger_nodes WHERE level = ? AND idx = ?", n)
    rc, err, j = verify(srv, root, key, tmp_path)
    assert rc == 0 and j["tree_size"] == size - 1, err  # a smaller log is still a log
    assert_fails_at(verify(srv, root, key, tmp_path, "--checkpoint-file", str(saved)), last,
                    f"tree shrank from {size} to {size - 1}")
    with db(srv) as c:
        c.execute(f"INSERT INTO ledger_entries VALUES ({','.join('?' * len(entry_row))})", entry_row)
        c.executemany("INSERT INTO ledger_nodes(level, idx, hash) VALUES (?, ?, ?)", node_rows)
    assert verify(srv, root, key, tmp_path, "--checkpoint-file", str(saved))[0] == 0

    # (3) Entries 3 and 4 swapped together with their leaf hashes: every text still
    # hashes to the leaf hash listed beside it, but entry 3 says it is entry 4 and the
    # leaf hashes no longer produce the signed root.
    with db(srv) as c:
        e = dict(c.execute("SELECT idx, entry FROM ledger_entries WHERE idx IN (3, 4)").fetchall())
        h = dict(c.execute("SELECT idx, hash FROM ledger_nodes WHERE level = 0 AND idx IN (3, 4)").fetchall())
        for i, j in ((3, 4), (4, 3)):
            c.execute("UPDATE ledger_entries SET entry = ? WHERE idx = ?", (e[j], i))
            c.execute("UPDATE ledger_nodes SET hash = ? WHERE level = 0 AND idx = ?", (h[j], i))
    result = verify(srv, root, key, tmp_path)
    assert_fails_at(result, 3, "entry 3: it says it is entry 4")
    assert any("do not produce the signed root" in p["problem"] for p in result[2]["problems"])
    assert_fails_at(verify(srv, root, key, tmp_path, "--checkpoint-file", str(saved)), 3, "entry 3")
    with db(srv) as c:
        for i in (3, 4):
            c.execute("UPDATE ledger_entries SET entry = ? WHERE idx = ?", (e[i], i))
            c.execute("UPDATE ledger_nodes SET hash = ? WHERE level = 0 AND idx = ?", (h[i], i))
    rc, err, j = verify(srv, root, key, tmp_path, "--checkpoint-file", str(saved))
    assert rc == 0 and j["saved_checkpoint"]["consistent"], err


def test_verify_refuses_a_wrong_key_and_a_forged_checkpoint(srv, root, tmp_path):
    key = qun(srv, root, "audit", "key").stdout.strip()
    r = qun(srv, root, "audit", "verify", tmp=tmp_path)
    assert r.returncode == 2 and "(USAGE)" in r.stderr  # no key: nothing to trust
    r = qun(srv, root, "audit", "verify", "--key", key[:-4] + "AAAA", tmp=tmp_path)
    assert r.returncode == 2 and "(USAGE)" in r.stderr
    # A saved checkpoint with its size edited no longer carries a valid signature.
    saved = tmp_path / "cp.txt"
    assert qun(srv, root, "audit", "verify", "--key", key, "--save", str(saved), tmp=tmp_path).returncode == 0
    lines = saved.read_text().split("\n")
    lines[1] = str(int(lines[1]) - 1)
    saved.write_text("\n".join(lines))
    r = qun(srv, root, "audit", "verify", "--key", key, "--checkpoint-file", str(saved), tmp=tmp_path)
    assert r.returncode == 1 and "saved checkpoint" in r.stderr and "(LEDGER_INVALID)" in r.stderr


def test_verify_as_a_member_checks_what_it_may_read(srv, root, tmp_path):
    user = register(srv.url)
    expect(user.post("/v1/groups", {"name": "mine"}), 201)
    key = qun(srv, user, "audit", "key").stdout.strip()
    rc, err, j = verify(srv, user, key, tmp_path)
    assert rc == 0, err
    assert j["entries_checked"] == 1 and j["entries_hidden"] == j["tree_size"] - 1 and j["root_matches"]


def test_prove_and_check_round_trip_offline(srv, root, tmp_path):
    key = qun(srv, root, "audit", "key").stdout.strip()
    gid = root.gids[7]
    bundle_path = tmp_path / "proof.json"
    r = qun(srv, root, "audit", "prove", gid, "--key", key, "-o", str(bundle_path), tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    bundle = json.loads(bundle_path.read_text())
    history = expect(root.get(f"/v1/groups/{gid}/history"), 200)["items"]
    assert bundle["index"] == history[-1]["index"] and bundle["entry"] == history[-1]["entry"]
    assert bundle["verifier_key"] == key and bundle["group"] == gid
    tlog = bundle["tlog_proof"].split("\n")
    assert tlog[0] == "c2sp.org/tlog-proof@v1" and tlog[1] == f"index {bundle['index']}"
    assert "\n\nqun.local/ledger/" in bundle["tlog_proof"]  # the proof lines, an empty line, the checkpoint
    # stdout gives the same kind of bundle; --index picks an entry of the group's history.
    out = qun(srv, root, "audit", "prove", gid, "--index", str(bundle["index"]), tmp=tmp_path)
    assert out.returncode == 0 and json.loads(out.stdout)["index"] == bundle["index"]
    r = qun(srv, root, "audit", "prove", gid, "--index", "0", tmp=tmp_path)
    assert r.returncode == 1 and "(ENTRY_NOT_FOUND)" in r.stderr

    # check needs no server and no token: point it at a closed port.
    offline = "http://127.0.0.1:9"
    r = qun(srv, None, "audit", "check", str(bundle_path), "--key", key, tmp=tmp_path, url=offline)
    assert r.returncode == 0, r.stderr
    assert f"OK: entry {bundle['index']}" in r.stdout and gid in r.stdout
    r = qun(srv, None, "--json", "audit", "check", str(bundle_path), tmp=tmp_path, url=offline)
    assert r.returncode == 0 and "key inside the bundle" in r.stderr
    facts = json.loads(r.stdout)
    assert facts["ok"] and facts["group"] == gid and facts["entry"]["event"] == "group.created"

    def refused(mutate, words):
        b = json.loads(bundle_path.read_text())
        mutate(b)
        p = tmp_path / f"bad-{uuid.uuid4().hex[:6]}.json"
        p.write_text(json.dumps(b))
        r = qun(srv, None, "audit", "check", str(p), "--key", key, tmp=tmp_path, url=offline)
        assert r.returncode == 1 and "(PROOF_INVALID)" in r.stderr, r.stderr
        assert words in r.stderr, r.stderr

    def flip_proof_hash(b):
        lines = b["tlog_proof"].split("\n")
        lines[2] = ("A" if lines[2][0] != "A" else "B") + lines[2][1:]
        b["tlog_proof"] = "\n".join(lines)

    def reindex(b):
        b["index"] += 1
        b["tlog_proof"] = b["tlog_proof"].replace(f"index {b['index'] - 1}\n", f"index {b['index']}\n", 1)

    refused(lambda b: b.update(entry=b["entry"].replace('"name":"t7"', '"name":"t8"')), "do not lead to the signed root")
    refused(flip_proof_hash, "do not lead to the signed root")
    refused(reindex, "seq differs")
    refused(lambda b: b.update(index=b["index"] + 1), "its tlog_proof says")
    refused(lambda b: b.update(tlog_proof=b["tlog_proof"].replace("\n— ", "\n— x")), "checkpoint:")
    refused(lambda b: b.update(tlog_proof=b["tlog_proof"].replace("c2sp.org/tlog-proof@v1", "tlog-proof")), "tlog_proof:")
    refused(lambda b: b.update(group=root.gids[8]), "not about group")
    not_json = tmp_path / "not.json"
    not_json.write_text("c2sp.org/tlog-proof@v1\n")
    r = qun(srv, None, "audit", "check", str(not_json), "--key", key, tmp=tmp_path, url=offline)
    assert r.returncode == 1 and "(PROOF_INVALID)" in r.stderr


def test_verify_names_a_damaged_interior_node_and_the_api_shows_only_hashed_facts(tmp_path):
    """Issue 13, item 9: a stored interior node edited offline (the server then serves
    proofs that fail while every entry and leaf looks right) is named by verify; the
    unhashed side columns of an entry, edited offline, change nothing the API shows."""
    import merkle_ref as ref
    s = Server(extra=["--set", "admins=root"]).start()
    try:
        admin = register(s.url, name="root")
        owner, other = register(s.url), register(s.url)
        gids = [expect(owner.post("/v1/groups", {"name": f"n{i}"}), 201)["id"] for i in range(8)]
        theirs = expect(other.post("/v1/groups", {"name": "theirs"}), 201)["id"]
        key = qun(s, admin, "audit", "key").stdout.strip()
        rc, err, j = verify(s, admin, key, tmp_path)
        assert rc == 0 and j["nodes_checked"] >= 4, err
        size = j["tree_size"]
        entries = expect(admin.get("/v1/ledger/entries"), 200)["items"]
        e5 = json.loads(entries[5]["entry"])
        assert e5["event"] == "group.created" and e5["group"] == gids[5]
        stop_clean(s)

        # Offline, with qund stopped: node (level 1, index 1) = H(leaf 2, leaf 3) gets
        # one bit flipped, and entry 5's side columns say something its text does not.
        with db(s) as c:
            h = bytearray(c.execute("SELECT hash FROM ledger_nodes WHERE level = 1 AND idx = 1").fetchone()[0])
            h[0] ^= 1
            c.execute("UPDATE ledger_nodes SET hash = ? WHERE level = 1 AND idx = 1", (bytes(h),))
            c.execute("UPDATE ledger_entries SET event = 'group.dissolved', group_openid = ?, actor_openid = ? "
                      "WHERE idx = 5", (theirs, other.openid))
        s.start()

        # The damage is real: the proof for entry 0 goes through node (1, 1) and fails.
        _, _, signed_root = ref.verify_checkpoint(admin.get("/v1/ledger/checkpoint").text, key)
        proof = expect(admin.get(f"/v1/ledger/proof/inclusion?index=0&size={size}"), 200)
        assert not ref.verify_inclusion(bytes.fromhex(proof["leaf_hash"]), 0, size,
                                        [bytes.fromhex(p) for p in proof["proof"]], signed_root)

        rc, err, j = verify(s, admin, key, tmp_path)
        assert rc == 1 and j["ok"] is False, err
        words = "ledger node (level 1, index 1) over entries 2 to 3 is damaged"
        assert any(words in p["problem"] for p in j["problems"]), j["problems"]
        assert words in err and "(LEDGER_INVALID)" in err

        # What the API shows of entry 5 is its hashed text: the event and group it logged.
        items = expect(admin.get("/v1/ledger/entries"), 200)["items"]
        assert items[5]["event"] == "group.created" and items[5]["group"] == gids[5]
        # The group_openid column only indexes the history: the edit hides the entry from
        # it (verify, which lists every entry, still checks it), but cannot move it.
        assert expect(owner.get(f"/v1/groups/{gids[5]}/history"), 200)["items"] == []
        # The edited columns point at another user's group and name them as the actor,
        # yet they do not hand that user the entry's text or put it in their history.
        mine = expect(other.get("/v1/ledger/entries"), 200)["items"]
        assert "entry" not in mine[5] and "event" not in mine[5]
        assert all(h["index"] != 5 for h in expect(other.get(f"/v1/groups/{theirs}/history"), 200)["items"])
        # The owner still sees the leaf hash; its text went to admins only (its columns lie).
        assert "entry" not in expect(owner.get("/v1/ledger/entries"), 200)["items"][5]

        # Put the node back: verify passes again (the side columns are not hashed).
        stop_clean(s)
        with db(s) as c:
            h[0] ^= 1
            c.execute("UPDATE ledger_nodes SET hash = ? WHERE level = 1 AND idx = 1", (bytes(h),))
        s.start()
        rc, err, j = verify(s, admin, key, tmp_path)
        assert rc == 0, err
    finally:
        stop_clean(s)
