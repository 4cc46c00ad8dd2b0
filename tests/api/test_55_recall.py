# SPDX-License-Identifier: MIT
"""Recall and removal (DELETE /v1/groups/{id}/messages/{seq}, core/message.c): the
author recalls within the policy's recall_window_seconds (120 by default), an owner or
an admin removes a lower-ranked member's message with a reason.  The text is deleted
from the database (the row's body is '' and its copies in the message.created event and
the post's stored Idempotency-Key answer are rewritten), the list keeps the message as
{"seq", "recalled": true, "by", ...}, an export writes it without text, the dissolution
preview counts it, and a `message.recalled` event is appended.  Refusals: after the
window (RECALL_WINDOW_PASSED), a member on someone else's (FORBIDDEN_ROLE), an admin on
the owner's, a removal without a reason, non-members (404 like other group routes),
unknown seqs (MESSAGE_NOT_FOUND) and bad bodies (problem+json 4xx)."""
import json
import shutil
import sqlite3

import pytest
import requests

from conftest import expect, register

SECRET = "recall-me-7f3a"


def post(c, gid, text, headers=None):
    return expect(c.req("POST", f"/v1/groups/{gid}/messages", {"text": text}, headers=headers), 201)


def recall(c, gid, seq, body=None, raw=None):
    return c.req("DELETE", f"/v1/groups/{gid}/messages/{seq}", body, raw=raw)


def rows(server, sql, *params):
    db = sqlite3.connect(f"file:{server.data}/qun.db?mode=ro", uri=True)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def listed(c, gid):
    return {m["seq"]: m for m in expect(c.get(f"/v1/groups/{gid}/messages?limit=200"), 200)["items"]}


def test_author_recalls_within_the_window(server, group):
    gid, member, owner = group["id"], group["member"], group["owner"]
    key = {"Idempotency-Key": "recall-post-1"}
    m = post(member, gid, SECRET, key)
    keep = post(member, gid, "stays")
    out = expect(recall(member, gid, m["seq"]), 200)
    assert out["seq"] == m["seq"] and out["recalled"] is True and out["removed"] is False
    assert out["by"] == member.openid and out["by_username"] == member.username
    assert "text" not in out and "reason" not in out and out["group"] == gid
    # Recalling again answers the same recalled state.
    again = expect(recall(member, gid, m["seq"]), 200)
    assert again == out
    # The list keeps it, without text, for everyone.
    for who in (member, owner):
        items = listed(who, gid)
        r = items[m["seq"]]
        assert r["recalled"] is True and "text" not in r and r["author"] == member.openid
        assert r["created_at"] == m["created_at"] and r["by"] == member.openid
        assert items[keep["seq"]]["text"] == "stays"
    # Deleted, not hidden: the row's text, the event copy and the stored answer.
    (body, by, at), = rows(server, "SELECT body, recalled_by, recalled_at FROM messages m JOIN groups g "
                                   "ON g.id = m.group_id WHERE g.gid = ? AND m.seq = ?", gid, m["seq"])
    assert body == "" and by and at
    payloads = [p for (p,) in rows(server, "SELECT payload FROM events")]
    assert not [p for p in payloads if SECRET in p]
    assert not [b for (b,) in rows(server, "SELECT body FROM idempotency") if SECRET in b]
    recalled = [json.loads(p) for (t, p) in rows(server, "SELECT topic, payload FROM events")
                if t == "message.recalled"]
    assert any(p["seq"] == m["seq"] and p["group"] == gid for p in recalled)
    # A replay of the post returns the recalled form, not the text.
    replay = member.req("POST", f"/v1/groups/{gid}/messages", {"text": SECRET}, headers=key)
    assert replay.status_code == 201 and SECRET not in replay.text


def test_window_passed_and_ranks(server, group):
    gid, owner, admin, member = group["id"], group["owner"], group["admin"], group["member"]
    # Clients learn the window from the group, to stop offering Recall when it has passed.
    assert expect(member.get(f"/v1/groups/{gid}"), 200)["recall_window_seconds"] == 120
    old = post(member, gid, "old news")
    own_admin = post(admin, gid, "admin's words")
    by_owner = post(owner, gid, "owner's words")
    expect(requests.post(server.url + "/v1/test/clock", json={"advance": 121}, timeout=10), 200)
    p = expect(recall(member, gid, old["seq"]), 403, "RECALL_WINDOW_PASSED")
    assert "text" not in json.dumps(p) or "old news" not in json.dumps(p)
    # A member cannot take down someone else's message, nor an admin the owner's.
    expect(recall(member, gid, own_admin["seq"], {"reason": "no"}), 403, "FORBIDDEN_ROLE")
    expect(recall(admin, gid, by_owner["seq"], {"reason": "no"}), 403, "FORBIDDEN_ROLE")
    # A removal needs a reason.
    expect(recall(admin, gid, old["seq"]), 422, "FIELD_MISSING")
    out = expect(recall(admin, gid, old["seq"], {"reason": "off topic 话题不符"}), 200)
    assert out["removed"] is True and out["by"] == admin.openid and out["reason"] == "off topic 话题不符"
    r = listed(member, gid)[old["seq"]]
    assert r["recalled"] and r["removed"] and r["reason"] == "off topic 话题不符" and "text" not in r
    # The owner removes an admin's message; an admin or owner their own at any time.
    expect(recall(owner, gid, own_admin["seq"], {"reason": "spam"}), 200)
    mine = expect(recall(owner, gid, by_owner["seq"]), 200)
    assert mine["removed"] is False
    (n,), = rows(server, "SELECT length(body) FROM messages m JOIN groups g ON g.id = m.group_id "
                         "WHERE g.gid = ? AND m.seq = ?", gid, old["seq"])
    assert int(n) == 0


def test_not_found_and_bad_input(server, group):
    gid, member, outsider, anon = group["id"], group["member"], group["outsider"], group["anon"]
    m = post(member, gid, "hello")
    expect(recall(outsider, gid, m["seq"]), 404, "GROUP_NOT_FOUND")
    expect(recall(anon, gid, m["seq"]), 401)
    expect(recall(member, "g_nosuchgroup", m["seq"]), 404, "GROUP_NOT_FOUND")
    for seq in ("999999", "0", "-1", "abc", "1e3", "99999999999999999999999"):
        expect(recall(member, gid, seq), 404, "MESSAGE_NOT_FOUND")
    expect(recall(member, gid, m["seq"], {"reason": "x" * 501}), 422, "FIELD_INVALID")
    expect(recall(member, gid, m["seq"], {"reason": ""}), 422, "FIELD_INVALID")
    for bad in ({"reason": 5}, {"reason": True}, {"reason": ["a"]}, {"reason": {"a": 1}}):
        expect(recall(member, gid, m["seq"], bad), 422)
    expect(recall(member, gid, m["seq"], {"text": "x"}), 422, "FIELD_UNKNOWN")
    expect(recall(member, gid, m["seq"], raw="{not json"), 400, "BAD_JSON")
    expect(recall(member, gid, m["seq"], raw="[1]"), 400, "BAD_JSON")
    # Nothing was recalled by the refusals.
    assert listed(member, gid)[m["seq"]]["text"] == "hello"


def test_dissolved_group_answers_gone(server):
    owner, member = register(server.url), register(server.url)
    g = expect(owner.post("/v1/groups", {"name": "brief"}), 201)["id"]
    expect(owner.post(f"/v1/groups/{g}/members", {"openid": member.openid}), 201)
    m = post(member, g, "hi")
    pv = expect(owner.post(f"/v1/groups/{g}/dissolution/preview", {"messages": "keep"}), 200)
    assert pv["impact"]["messages"]["recalled"] == 0
    expect(recall(member, g, m["seq"]), 200)
    pv = expect(owner.post(f"/v1/groups/{g}/dissolution/preview", {"messages": "keep"}), 200)
    assert pv["impact"]["messages"]["recalled"] == 1 and pv["impact"]["messages"]["count"] == 1


AGE, AGE_KEYGEN = shutil.which("age"), shutil.which("age-keygen")


@pytest.mark.skipif(not AGE or not AGE_KEYGEN or not shutil.which("zstd"), reason="age and zstd are needed")
def test_export_has_no_recalled_text(server, group, tmp_path):
    from test_31_export import export, keygen, open_archive
    gid, owner, member = group["id"], group["owner"], group["member"]
    m = post(member, gid, SECRET + " export")
    post(member, gid, "kept")
    expect(recall(member, gid, m["seq"]), 200)
    key, recipient = keygen(tmp_path, "k.txt")
    x = export(owner, gid, [recipient])
    assert x["state"] == "done", x
    data = owner.get(f"/v1/exports/{x['id']}/download").content
    dest = open_archive(data, key, tmp_path / "out")
    text = (dest / "messages.jsonl").read_text()
    assert SECRET not in text
    lines = [json.loads(l) for l in text.splitlines()]
    r = [l for l in lines if l["seq"] == m["seq"]][0]
    assert r["recalled"] is True and r["text"] == ""
    assert [l["text"] for l in lines if l["seq"] != m["seq"]] == ["kept"]


def test_cli_recall_and_history(server):
    from test_54_cli_names import qun
    owner, member = register(server.url), register(server.url)
    g = expect(owner.post("/v1/groups", {"name": "读书会 recall"}), 201)["id"]
    expect(owner.post(f"/v1/groups/{g}/members", {"openid": member.openid}), 201)
    a = post(member, g, "typo here")
    b = post(member, g, "rude words")
    r = qun(server.url, member, "recall", "读书会 recall", str(a["seq"]))
    assert r.returncode == 0 and f"recalled #{a['seq']}" in r.stdout, r.stderr
    r = qun(server.url, owner, "recall", "读书会 recall", str(b["seq"]))
    assert r.returncode != 0 and "reason" in r.stderr
    r = qun(server.url, owner, "recall", "读书会 recall", str(b["seq"]), "--reason", "be kind")
    assert r.returncode == 0 and f"removed #{b['seq']}" in r.stdout, r.stderr
    r = qun(server.url, member, "recall", "读书会 recall", "x1")
    assert r.returncode != 0
    out = qun(server.url, member, "history", "读书会 recall").stdout
    assert "typo here" not in out and "rude words" not in out
    assert "(recalled)" in out and f"removed by {owner.username}: be kind" in out, out
