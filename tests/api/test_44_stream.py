# SPDX-License-Identifier: MIT
"""The core changes under the Matrix adapter's /sync (issue 14, MATRIX.md 2.2 and 2.5):
messages take their place in the global event order (messages.stream_id), removals say
who and why, renames and role changes are events, every dissolution stage posts a
system notice, and housekeeping keeps group state while the replay answers `expired`
below the explicit horizon."""
import json
import sqlite3
import time

import pytest
import requests

from conftest import Server, age_sessions, expect, make_group, register, stop_clean, transfer
from test_14_events import Stream

CLOCK = {"QUN_TEST_CLOCK": "1"}
BASE = ["--set", "risk_frequency_max=1000000", "--set", "risk_frequency_deny=1000000", "--set", "cooling_off=60",
        "--set", "purge_grace=3600"]


@pytest.fixture(scope="module")
def srv():
    s = Server(env=CLOCK, extra=BASE).start()
    yield s
    stop_clean(s)


def advance(srv, seconds):
    expect(requests.post(srv.url + "/v1/test/clock", json={"advance": seconds}, timeout=10), 200)


def notices(c, gid):
    items = expect(c.get(f"/v1/groups/{gid}/messages?limit=200"), 200)["items"]
    return [json.loads(m["text"]) for m in items if m["kind"] == "system"]


def dissolve(owner, gid):
    p = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "keep"}), 200)
    return expect(owner.post(f"/v1/groups/{gid}/dissolution", {"messages": "keep", "typed_name": p["name"],
                                                                "confirmation_token": p["confirmation_token"]}), 202)


def wait_state(owner, gid, state, timeout=10):
    deadline = time.time() + timeout
    while True:
        st = expect(owner.get(f"/v1/groups/{gid}/dissolution"), 200)
        if st["state"] == state:
            return st
        assert time.time() < deadline, st
        time.sleep(0.1)


def test_messages_take_their_place_in_the_event_order(srv):
    owner, member = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[member])
    s = Stream(member)
    try:
        for t in ("a", "b", "c"):
            expect(owner.post(f"/v1/groups/{gid}/messages", {"text": t}), 201)
        got = [s.wait("message.created", text=t) for t in ("a", "b", "c")]
    finally:
        s.close()
    ids, seqs = [e["id"] for e in got], [e["data"]["seq"] for e in got]
    assert ids == sorted(ids) and seqs == sorted(seqs) and "msgtype" not in got[0]["data"]
    # The stored stream_id is exactly the id the feed delivered.
    db = sqlite3.connect(f"file:{srv.data}/qun.db?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT m.seq, m.stream_id, m.session_id IS NOT NULL FROM messages m JOIN groups g "
                          "ON g.id = m.group_id WHERE g.gid = ? ORDER BY m.seq", (gid,)).fetchall()
    finally:
        db.close()
    assert [(r[0], r[1]) for r in rows] == list(zip(seqs, ids)) and all(r[2] for r in rows)
    items = expect(member.get(f"/v1/groups/{gid}/messages"), 200)["items"]
    assert all("msgtype" not in m for m in items)


def test_member_removed_says_by_whom_and_why(srv):
    owner, kicked, leaver, a, b = (register(srv.url) for _ in range(5))
    gid = make_group(owner, members=[kicked, leaver, a, b])
    s = Stream(owner)
    try:
        expect(owner.delete(f"/v1/groups/{gid}/members/{kicked.openid}", body={"reason": "spam"}), 204)
        ev = s.wait("member.removed", openid=kicked.openid)
        assert ev["data"]["by"] == owner.openid and ev["data"]["reason"] == "spam"
        expect(leaver.post(f"/v1/groups/{gid}/leave", {"reason": "bye"}), 204)
        ev = s.wait("member.removed", openid=leaver.openid)
        assert ev["data"]["by"] == leaver.openid and ev["data"]["reason"] == "bye"
        p = expect(owner.post(f"/v1/groups/{gid}/members/remove/preview", {"openids": [a.openid]}), 200)
        expect(owner.post(f"/v1/groups/{gid}/members/remove", {"openids": [a.openid], "reason": "tidy",
                                                               "confirmation_token": p["confirmation_token"],
                                                               "typed_name": p["name"]}), 200)
        ev = s.wait("member.removed", openid=a.openid)
        assert ev["data"]["by"] == owner.openid and ev["data"]["reason"] == "tidy"
        expect(owner.delete(f"/v1/groups/{gid}/members/{b.openid}"), 204)  # no body, no reason
        ev = s.wait("member.removed", openid=b.openid)
        assert ev["data"]["by"] == owner.openid and "reason" not in ev["data"]
    finally:
        s.close()
    expect(owner.delete(f"/v1/groups/{gid}/members/{owner.openid}", body={"reason": "x" * 501}), 422, "FIELD_INVALID")
    expect(owner.post(f"/v1/groups/{gid}/leave", {"reason": 5}), 422, "FIELD_INVALID")


def test_renamed_and_role_changed_including_a_transfer(srv):
    owner, heir = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[heir], name="old")
    s = Stream(heir)
    try:
        expect(owner.patch(f"/v1/groups/{gid}", {"name": "new"}), 200)
        ev = s.wait("group.renamed")
        assert ev["data"] == {"group": gid, "name": "new", "old_name": "old", "by": owner.openid}
        expect(owner.patch(f"/v1/groups/{gid}/members/{heir.openid}", {"role": "admin"}), 200)
        ev = s.wait("member.role_changed", openid=heir.openid)
        assert (ev["data"]["role"], ev["data"]["old_role"], ev["data"]["by"]) == ("admin", "member", owner.openid)
        age_sessions(srv.url)
        expect(transfer(owner, gid, heir.openid), 202)
        expect(heir.post(f"/v1/groups/{gid}/transfer/accept", {}), 200)
        first = s.wait("member.role_changed", openid=heir.openid)
        second = s.wait("member.role_changed", openid=owner.openid)
    finally:
        s.close()
    assert (first["data"]["role"], first["data"]["old_role"]) == ("owner", "admin")
    assert (second["data"]["role"], second["data"]["old_role"]) == ("admin", "owner")
    assert first["id"] < second["id"] and first["data"]["by"] == heir.openid


def test_every_reachable_dissolution_stage_posts_a_notice(srv):
    owner, member = register(srv.url), register(srv.url)
    age_sessions(srv.url)
    # pending, then cancelled
    gid = make_group(owner, members=[member])
    assert dissolve(owner, gid)["state"] == "pending"
    expect(owner.delete(f"/v1/groups/{gid}/dissolution"), 200)
    got = notices(member, gid)
    assert [n["notice"] for n in got] == ["dissolution.pending", "dissolution.cancelled"]
    assert got[0]["group"] == gid and got[0]["by"] == owner.openid and got[0]["messages"] == "keep"
    assert got[0]["dissolves_at"] > 0 and got[1]["by"] == owner.openid
    # pending, dissolved (the members' last message), restored
    gid = make_group(owner, members=[member])
    dissolve(owner, gid)
    advance(srv, 61)
    wait_state(owner, gid, "dissolved")
    got = notices(owner, gid)
    assert [n["notice"] for n in got] == ["dissolution.pending", "dissolution.dissolved"]
    assert got[1]["restorable_until"] > 0 and got[1]["messages"] == "keep" and "successor" not in got[1]
    expect(owner.post(f"/v1/groups/{gid}/restore", {"password": "correct horse"}), 200)
    got = notices(member, gid)
    assert [n["notice"] for n in got][-1] == "dissolution.restored" and got[-1]["by"] == owner.openid
    # review (approvals wanted), then cancelled
    boss = register(srv.url)
    org = expect(boss.post("/v1/orgs", {"name": "acme", "kind": "enterprise"}), 201)
    expect(boss.post(f"/v1/orgs/{org['id']}/admins", {"openid": owner.openid}), 204)
    gid = expect(owner.post("/v1/groups", {"name": "crew", "kind": "enterprise", "org": org["id"]}), 201)["id"]
    expect(owner.post(f"/v1/groups/{gid}/members", {"openid": member.openid}), 201)
    assert dissolve(owner, gid)["state"] == "review"
    expect(owner.delete(f"/v1/groups/{gid}/dissolution"), 200)
    got = notices(member, gid)
    assert [n["notice"] for n in got] == ["dissolution.review", "dissolution.cancelled"]
    assert got[0]["approvals"] >= 1 and got[0]["by"] == owner.openid


def test_housekeeping_keeps_group_state_and_replay_expires_below_the_horizon(srv):
    owner, member = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[member])
    s = Stream(member)
    try:
        expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "old"}), 201)
        old = s.wait("message.created", text="old")["id"]
    finally:
        s.close()
    advance(srv, 86400 + 601)  # past the 24 h, and past the housekeeping period
    db_path = f"file:{srv.data}/qun.db?mode=ro"
    deadline = time.time() + 10
    while True:
        db = sqlite3.connect(db_path, uri=True)
        try:
            horizon = db.execute("SELECT COALESCE(MAX(id), 0) FROM event_horizon").fetchone()[0]
            kept = db.execute("SELECT COUNT(*) FROM events e JOIN groups g ON g.id = e.group_id WHERE g.gid = ? "
                              "AND e.topic IN ('group.created', 'member.added')", (gid,)).fetchone()[0]
            msgs = db.execute("SELECT COUNT(*) FROM events WHERE id = ?", (old,)).fetchone()[0]
        finally:
            db.close()
        if horizon >= old:
            break
        assert time.time() < deadline, "housekeeping did not run"
        time.sleep(0.2)
    assert kept == 2 and msgs == 0
    s = Stream(member, last_event_id=old - 1)
    try:
        ev = s.next()
        assert ev["event"] == "stream.resync" and ev["data"] == {"reason": "expired"}
    finally:
        s.close()
    # From the horizon on, nothing is lost: a normal (empty) replay.
    s = Stream(member, last_event_id=horizon)
    try:
        assert [e for e in s.quiet(0.4) if e["event"] == "stream.resync"] == []
    finally:
        s.close()
