# SPDX-License-Identifier: MIT
"""Member self-export (`"scope": "self"` on POST /v1/groups/{id}/exports): while a
dissolution is pending any member exports their own copy — every message, the
group's files, and only the payments they made or claimed from, with only their own
claims — ledgered as export.made with scope "self".  Before a dissolution only the
owner may; the whole-group scope stays the owner's."""
import hashlib
import json
import time

import pytest

from conftest import expect, make_group, register
from test_31_export import AGE, AGE_KEYGEN, keygen, open_archive, check_manifest, wait_done

pytestmark = pytest.mark.skipif(not AGE or not AGE_KEYGEN, reason="Debian's age and age-keygen are needed")


@pytest.fixture(scope="module")
def srv(server):
    return server


def self_export(client, gid, recipient):
    x = expect(client.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient], "scope": "self"}), 202)
    assert x["scope"] == "self" and x["state"] == "running"
    return wait_done(client, x["id"])


def test_a_member_exports_their_own_copy_during_the_notice(srv, tmp_path):
    owner, alice, bob, carol = (register(srv.url) for _ in range(4))
    gid = make_group(owner, members=[alice, bob], name="leaving soon")
    texts = []
    for i, who in enumerate([owner, alice, bob] * 5):
        texts.append(f"m{i} by {who.username}")
        if i == 4:  # every character class the JSON lines must escape, and some that pass through
            texts[-1] += ' "quoted" back\\slash\nnew line\ttab\x01\x1f\x7f/é✓😀'
        expect(who.post(f"/v1/groups/{gid}/messages", {"text": texts[-1]}), 201)
    f = expect(bob.post(f"/v1/groups/{gid}/files?name=notes.txt", raw=b"bob's notes\n"), 201)
    # p1: owner pays, alice and bob claim; p2: bob pays, nobody claims; p3: alice pays.
    p1 = expect(owner.post(f"/v1/groups/{gid}/payments", {"amount": 90, "shares": 3, "memo": "p1"}), 201)
    expect(alice.post(f"/v1/groups/{gid}/payments/{p1['id']}/claim", {}), 201)
    expect(bob.post(f"/v1/groups/{gid}/payments/{p1['id']}/claim", {}), 201)
    p2 = expect(bob.post(f"/v1/groups/{gid}/payments", {"amount": 50, "shares": 1, "memo": "p2"}), 201)
    p3 = expect(alice.post(f"/v1/groups/{gid}/payments", {"amount": 20, "shares": 2, "memo": "p3"}), 201)
    key, recipient = keygen(tmp_path, "alice.txt")

    # Before any dissolution: members may not, the owner may; the group scope stays the owner's.
    p = expect(alice.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient], "scope": "self"}), 409,
               "SELF_EXPORT_CLOSED")
    assert "pending" in p["detail"]
    expect(alice.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient]}), 403, "FORBIDDEN_ROLE")
    expect(alice.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient], "scope": "all"}), 422, "FIELD_INVALID")
    expect(carol.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient], "scope": "self"}), 404,
           "GROUP_NOT_FOUND")
    mine = self_export(owner, gid, recipient)
    assert mine["state"] == "done" and mine["scope"] == "self", mine

    # The owner asks for the dissolution: the 48 h cooling-off is the members' notice.
    pv = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "delete"}), 200)
    st = expect(owner.post(f"/v1/groups/{gid}/dissolution", {"messages": "delete", "confirmation_token": pv["confirmation_token"],
                                                             "typed_name": pv["name"]}), 202)
    assert st["state"] == "pending"

    x = self_export(alice, gid, recipient)
    assert x["state"] == "done", x
    data = alice.get(f"/v1/exports/{x['id']}/download").content
    assert hashlib.sha256(data).hexdigest() == x["digest"]
    dest = open_archive(data, key, tmp_path / "alice")
    check_manifest(dest)
    lines = [json.loads(l) for l in (dest / "messages.jsonl").read_text().splitlines()]
    user_texts = [l["text"] for l in lines if l["kind"] == "text"]
    assert user_texts == texts + ["notes.txt"]  # the upload's file message last
    assert any(l["kind"] == "system" for l in lines)  # the notice itself
    assert (dest / "files" / f["digest"]).read_bytes() == b"bob's notes\n"
    pays = {p["id"]: p for p in (json.loads(l) for l in (dest / "payments.jsonl").read_text().splitlines())}
    assert set(pays) == {p1["id"], p3["id"]} and p2["id"] not in pays
    assert [c["openid"] for c in pays[p1["id"]]["claims"]] == [alice.openid]  # not bob's claim
    assert pays[p3["id"]]["claims"] == []
    members = {m["openid"] for m in json.loads((dest / "members.json").read_text())}
    assert members == {owner.openid, alice.openid, bob.openid}

    # Ledgered with its scope and its requester; only alice sees it.
    hist = expect(owner.get(f"/v1/groups/{gid}/history?limit=200"), 200)["items"]
    made = [json.loads(h["entry"]) for h in hist if h["event"] == "export.made"]
    assert [(e["actor"], e["scope"]) for e in made] == [(owner.openid, "self"), (alice.openid, "self")]
    assert made[1]["digest"] == x["digest"] and made[1]["seq"] == x["ledger_index"]
    expect(bob.get(f"/v1/exports/{x['id']}"), 404, "EXPORT_NOT_FOUND")
    expect(owner.get(f"/v1/exports/{x['id']}/download"), 404, "EXPORT_NOT_FOUND")

    # Bob's copy has his payments: p1 (his claim only) and p2.
    bkey, brec = keygen(tmp_path, "bob.txt")
    y = self_export(bob, gid, brec)
    dest = open_archive(bob.get(f"/v1/exports/{y['id']}/download").content, bkey, tmp_path / "bob")
    pays = {p["id"]: p for p in (json.loads(l) for l in (dest / "payments.jsonl").read_text().splitlines())}
    assert set(pays) == {p1["id"], p2["id"]}
    assert [c["openid"] for c in pays[p1["id"]]["claims"]] == [bob.openid]

    # Once the group is dissolved the notice is over: members are out.
    expect(owner.post("/v1/test/clock", {"advance": 3 * 86400}), 200)
    for _ in range(100):
        if expect(owner.get(f"/v1/groups/{gid}/dissolution"), 200)["state"] == "dissolved":
            break
        time.sleep(0.1)
    expect(alice.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient], "scope": "self"}), 410, "GROUP_GONE")


def test_self_export_respects_the_export_policy(srv, tmp_path):
    owner = register(srv.url)
    _, recipient = keygen(tmp_path, "k.txt")
    cn = expect(owner.post("/v1/groups", {"name": "z", "kind": "cross_border", "regions": ["eu", "cn"]}), 201)["id"]
    expect(owner.post(f"/v1/groups/{cn}/exports", {"recipients": [recipient], "scope": "self"}), 403,
           "EXPORT_FORBIDDEN")


def test_cli_export_self_with_a_progress_bar(srv, tmp_path):
    from test_20_cli import User
    owner, member = User(srv, tmp_path).signup(), User(srv, tmp_path).signup()
    gid = owner.json("group", "create", "cli")["id"]
    owner.ok("group", "add", gid, member.openid)
    for i in range(30):
        member.ok("post", gid, f"line {i}")
    key, recipient = keygen(tmp_path, "m.txt")
    out = tmp_path / "mine.age"
    member.fails("SELF_EXPORT_CLOSED", "export", gid, "--to", recipient, "-o", str(out), "--self")
    r = owner.ok("export", gid, "--to", recipient, "-o", str(out), "--progress")
    bar = r.stderr.split("\r")[-1]
    assert "[" + "#" * 30 + "] 100%" in bar and "30/30 messages" in bar, r.stderr
    assert "verified" in r.stdout and out.exists()
