# SPDX-License-Identifier: MIT
"""The audit ledger against an independent implementation (merkle_ref.py): every
root for tree sizes 1..N, consistency proofs from every size, inclusion proofs at
every size, the signed checkpoint, per-user visibility, and tamper detection."""
import hashlib
import json
import os
import sqlite3

import pytest

import merkle_ref as ref
from conftest import Server, age_sessions, expect, register, transfer


@pytest.fixture(scope="module")
def ledger():
    srv = Server(env={"QUN_TEST_CLOCK": "1"}, extra=["--set", "admins=root", "--set", "cooling_off=0", "--set", "purge_grace=0",
                        "--set", "risk_frequency_max=1000", "--set", "risk_frequency_deny=1000"]).start()
    root = register(srv.url, name="root")
    alice, bob = register(srv.url), register(srv.url)
    groups = []
    for i in range(150):
        who = alice if i % 2 == 0 else bob
        groups.append((who, expect(who.post("/v1/groups", {"name": f"g{i}"}), 201)["id"]))
    # Ownership transfers and a dissolution add other event kinds.
    gid = groups[0][1]
    expect(alice.post(f"/v1/groups/{gid}/members", {"openid": bob.openid}), 201)
    age_sessions(srv.url)
    expect(transfer(alice, gid, bob.openid), 202)
    expect(bob.post(f"/v1/groups/{gid}/transfer/accept", {}), 200)
    for who, g in groups[1:80]:
        p = expect(who.post(f"/v1/groups/{g}/dissolution/preview", {"messages": "delete"}), 200)
        expect(who.post(f"/v1/groups/{g}/dissolution", {"messages": "delete", "typed_name": p["name"],
                                                         "confirmation_token": p["confirmation_token"]}), 202)
    # Let the purge jobs finish: they append to the ledger too.  (Under a second alone;
    # the bound is for a hang, on a host shared with the browsers and other servers.)
    import time
    deadline = time.time() + 180
    for who, g in groups[1:80]:
        while expect(who.get(f"/v1/groups/{g}/dissolution"), 200)["state"] != "purged":
            assert time.time() < deadline, f"group {g} not purged within 180 s"
            time.sleep(0.05)
    yield {"srv": srv, "root": root, "alice": alice, "bob": bob, "groups": groups}
    srv.stop()


def all_entries(client):
    items, start = [], 0
    while True:
        page = expect(client.get(f"/v1/ledger/entries?start={start}"), 200)
        items += page["items"]
        if page["end"] >= page["tree_size"]:
            return items, page["tree_size"]
        start = page["end"]


@pytest.mark.slow
def test_roots_and_proofs_match_an_independent_implementation(ledger):
    admin = ledger["root"]
    entries, size = all_entries(admin)
    assert size >= 300 and [e["index"] for e in entries] == list(range(size))
    leaves = []
    for e in entries:
        h = ref.leaf(e["entry"].encode())
        assert h.hex() == e["leaf_hash"], e["index"]
        body = json.loads(e["entry"])
        assert body["seq"] == e["index"]
        # Canonical JSON: sorted keys, no insignificant whitespace.
        assert e["entry"] == json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        leaves.append(h)

    vkey = expect(admin.get("/v1/ledger/key"), 200)["verifier_key"]
    note = admin.get("/v1/ledger/checkpoint")
    assert note.headers["Content-Type"].startswith("text/plain")
    origin, csize, croot = ref.verify_checkpoint(note.text, vkey)
    assert csize == size and croot == ref.mth(leaves)

    roots = [None] + [ref.mth(leaves[:n]) for n in range(1, size + 1)]
    for n in range(1, size + 1):
        p = expect(admin.get(f"/v1/ledger/proof/consistency?old={n}&new={size}"), 200)
        proof = [bytes.fromhex(h) for h in p["proof"]]
        assert ref.verify_consistency(n, size, roots[n], roots[size], proof), n
        assert n == size or not ref.verify_consistency(n, size, roots[size], roots[size], proof)
        for i in sorted({0, n - 1, (n * 7) % n}):
            p = expect(admin.get(f"/v1/ledger/proof/inclusion?index={i}&size={n}"), 200)
            proof = [bytes.fromhex(h) for h in p["proof"]]
            assert p["leaf_hash"] == leaves[i].hex()
            assert ref.verify_inclusion(leaves[i], i, n, proof, roots[n]), (i, n)

    # Every stored subtree hash, level by level, is the one the leaves give.
    level, below = 0, leaves
    while len(below) > 1:
        level += 1
        below = [ref.node(below[2 * i], below[2 * i + 1]) for i in range(len(below) // 2)]
        got = expect(admin.get(f"/v1/ledger/nodes?level={level}"), 200)
        assert got["tree_size"] == size and got["end"] == len(below)
        assert [(it["index"], it["hash"]) for it in got["items"]] == [(i, h.hex()) for i, h in enumerate(below)]
    assert expect(admin.get("/v1/ledger/nodes?level=0&start=3&end=5"), 200)["items"][1]["hash"] == leaves[4].hex()


def test_visibility_and_history(ledger):
    alice, bob = ledger["alice"], ledger["bob"]
    entries, size = all_entries(alice)
    assert len(entries) == size and all("leaf_hash" in e for e in entries)
    visible = [json.loads(e["entry"]) for e in entries if "entry" in e]
    hidden = [e for e in entries if "entry" not in e]
    assert visible and hidden
    # Alice sees her groups' events and nothing of Bob's own groups.
    bob_only = {g for who, g in ledger["groups"] if who is bob}
    assert not any(v["group"] in bob_only and v["actor"] != alice.openid for v in visible)
    gid = ledger["groups"][0][1]
    hist = expect(bob.get(f"/v1/groups/{gid}/history"), 200)["items"]
    assert [h["event"] for h in hist] == ["group.created", "transfer.proposed", "group.ownership_transferred"]
    t = json.loads(hist[2]["entry"])
    assert t["from"] == alice.openid and t["to"] == bob.openid
    # Each entry names who acted, so the console shows a name rather than an openid.
    assert hist[0]["actor_username"] == alice.username
    # A dissolved group's history shows request, mark and purge, for its owner.
    owner, g = ledger["groups"][1]
    events = [h["event"] for h in expect(owner.get(f"/v1/groups/{g}/history"), 200)["items"]]
    assert events[:3] == ["group.created", "dissolution.requested", "group.dissolved"]
    # Outsiders get nothing.
    expect(register(ledger["srv"].url).get(f"/v1/groups/{gid}/history"), 404, "GROUP_NOT_FOUND")


def test_bad_ledger_queries(ledger):
    c = ledger["alice"]
    for q in ["/v1/ledger/proof/inclusion", "/v1/ledger/proof/inclusion?index=999999",
              "/v1/ledger/proof/inclusion?index=-1", "/v1/ledger/proof/inclusion?index=x",
              "/v1/ledger/proof/consistency?old=0", "/v1/ledger/proof/consistency?old=5&new=4",
              "/v1/ledger/proof/consistency?old=1&new=99999999", "/v1/ledger/entries?start=5&end=2",
              "/v1/ledger/entries?start=0&end=5000", "/v1/ledger/nodes", "/v1/ledger/nodes?level=63",
              "/v1/ledger/nodes?level=-1", "/v1/ledger/nodes?level=1&end=99999", "/v1/ledger/nodes?level=60&end=1",
              "/v1/ledger/nodes?level=0&start=4&end=2"]:
        r = c.get(q)
        assert 400 <= r.status_code < 500, (q, r.status_code)
        expect(r, r.status_code)
    expect(ledger["root"].__class__(ledger["srv"].url).get("/v1/ledger/checkpoint"), 401, "UNAUTHENTICATED")


def test_tampering_is_detected(ledger):
    srv, admin = ledger["srv"], ledger["root"]
    before, size = all_entries(admin)
    con = sqlite3.connect(os.path.join(srv.data, "qun.db"))
    forged = before[5]["entry"].replace("group.created", "group.renamed")
    con.execute("UPDATE ledger_entries SET entry = ? WHERE idx = 5", (forged,))
    con.commit()
    con.close()
    after, _ = all_entries(admin)
    bad = [e["index"] for e in after if ref.leaf(e["entry"].encode()).hex() != e["leaf_hash"]]
    assert bad == [5]
