# SPDX-License-Identifier: MIT
"""The dissolution lifecycle of docs/design.md section 3 with its timers (moved by the test
clock), approvals, legal holds, restore, successor groups, and a ledger entry for
every transition."""
import json
import time

import pytest
import requests

from conftest import Client, Server, expect, make_group, register, stop_clean

H = 3600


@pytest.fixture(scope="module")
def srv():
    s = Server(env={"QUN_TEST_CLOCK": "1"},
               extra=["--set", "admins=root", "--set", "compliance=judge", "--set", "notice_threshold=5"]).start()
    yield s
    stop_clean(s)


def advance(c, seconds):
    expect(c.post("/v1/test/clock", {"advance": seconds}), 200)


def status(c, gid):
    return expect(c.get(f"/v1/groups/{gid}/dissolution"), 200)


def wait_state(c, gid, state, timeout=10):
    deadline = time.time() + timeout
    while True:
        st = status(c, gid)
        if st["state"] == state:
            return st
        assert time.time() < deadline, f"never reached {state}: {st}"
        time.sleep(0.05)


def request(owner, gid, messages="delete", **extra):
    params = {"messages": messages, **{k: v for k, v in extra.items() if k != "password"}}
    p = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", params), 200)
    return owner.post(f"/v1/groups/{gid}/dissolution", {"messages": messages, "confirmation_token": p["confirmation_token"],
                                                        "typed_name": p["name"], **extra})


def history(c, gid):
    return [json.loads(h["entry"]) for h in expect(c.get(f"/v1/groups/{gid}/history"), 200)["items"]]


def dump(c, gid):
    """Everything a member can read of a group."""
    g = f"/v1/groups/{gid}"
    out = {k: expect(c.get(g + p), 200) for k, p in
           [("group", ""), ("members", "/members?limit=200"), ("files", "/files?limit=200"), ("payments", "/payments")]}
    out["messages"] = [m for m in expect(c.get(g + "/messages?limit=200"), 200)["items"] if m["kind"] != "system"]
    out["group"].pop("updated_at")
    out["group"].pop("last_seq")
    return out


def test_cooling_off_then_dissolved_then_purged_after_grace(srv):
    owner, member = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[member])
    expect(member.post(f"/v1/groups/{gid}/messages", {"text": "hello"}), 201)
    st = expect(request(owner, gid), 202)
    assert st["state"] == "pending" and 48 * H - 2 <= st["seconds_left"] <= 48 * H
    assert [r["rule"] for r in st["timing"]["delay_reasons"]] == ["cooling_off"]
    # The members are told, in the group itself, and keep access meanwhile.
    notice = expect(member.get(f"/v1/groups/{gid}/messages"), 200)["items"][-1]
    assert notice["kind"] == "system" and json.loads(notice["text"])["dissolves_at"] == st["due_at"]
    # Two members get no advance notice: the 48 h delay is the cooling-off, under its own field.
    body = json.loads(notice["text"])
    assert body["notice_seconds"] == 0 and body["cooling_off_seconds"] == 48 * H
    assert 48 * H - 2 <= body["delay_seconds"] <= 48 * H
    expect(member.post(f"/v1/groups/{gid}/messages", {"text": "still here"}), 201)
    expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "delete"}), 409, "DISSOLUTION_PENDING")
    advance(owner, 48 * H - 10)
    time.sleep(0.6)
    assert status(owner, gid)["state"] == "pending"
    advance(owner, 11)
    st = wait_state(owner, gid, "dissolved")
    expect(member.get(f"/v1/groups/{gid}"), 410, "GROUP_GONE")
    assert st["grace_until"] == st["dissolved_at"] + 7 * 86400
    assert {j["kind"]: j["state"] for j in st["jobs"]} == {"purge_group": "queued", "purge_payments": "queued"}
    advance(owner, 7 * 86400 + 1)
    st = wait_state(owner, gid, "purged")
    assert st["receipt"]["messages_deleted"] == 4  # + the pending and dissolved notices
    events = [(e["event"], e["old_state"], e["new_state"]) for e in history(owner, gid)
              if e["event"] != "group.payments_purged"]  # due at the same time, after the grace
    assert events == [("group.created", None, "active"), ("dissolution.requested", "active", "pending"),
                      ("group.dissolved", "pending", "dissolved"), ("group.purging", "dissolved", "purging"),
                      ("group.purged", "purging", "purged")]


def test_cancel_during_cooling_off(srv):
    owner, member = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[member])
    expect(request(owner, gid), 202)
    expect(member.delete(f"/v1/groups/{gid}/dissolution"), 403, "FORBIDDEN_ROLE")
    st = expect(owner.delete(f"/v1/groups/{gid}/dissolution"), 200)
    assert st["state"] == "active" and st["dissolution_state"] == "cancelled"
    expect(owner.delete(f"/v1/groups/{gid}/dissolution"), 404, "DISSOLUTION_NOT_FOUND")
    advance(owner, 49 * H)
    time.sleep(0.6)
    assert expect(member.get(f"/v1/groups/{gid}"), 200)["state"] == "active"  # the timer did nothing
    h = history(owner, gid)
    assert h[-1]["event"] == "dissolution.cancelled" and h[-1]["actor"] == owner.openid
    assert (h[-1]["old_state"], h[-1]["new_state"]) == ("pending", "active")
    # A new request works after a cancel.
    assert expect(request(owner, gid), 202)["state"] == "pending"


def test_large_group_gets_the_longer_notice(srv):
    owner = register(srv.url)
    members = [register(srv.url) for _ in range(5)]
    gid = make_group(owner, members=members)  # 6 members > notice_threshold 5
    st = expect(request(owner, gid), 202)
    assert 72 * H - 2 <= st["seconds_left"] <= 72 * H
    assert [r["rule"] for r in st["timing"]["delay_reasons"]] == ["cooling_off", "notice"]
    for m in members:
        items = expect(m.get(f"/v1/groups/{gid}/messages"), 200)["items"]
        body = json.loads(items[-1]["text"])
        assert body["notice_seconds"] == 72 * H and body["cooling_off_seconds"] == 48 * H
        assert 72 * H - 2 <= body["delay_seconds"] <= 72 * H
    # Past the cooling-off, within the notice: still pending, and the owner may still cancel.
    advance(owner, 48 * H + 60)
    time.sleep(0.6)
    assert status(owner, gid)["state"] == "pending"
    assert expect(owner.delete(f"/v1/groups/{gid}/dissolution"), 200)["dissolution_state"] == "cancelled"


def test_protected_enterprise_group_waits_for_the_org_admin(srv):
    boss, owner, outsider = register(srv.url), register(srv.url), register(srv.url)
    org = expect(boss.post("/v1/orgs", {"name": "acme", "kind": "enterprise"}), 201)
    assert org["dissolve_protection"] is True
    expect(boss.post(f"/v1/orgs/{org['id']}/admins", {"openid": owner.openid}), 204)
    gid = expect(owner.post("/v1/groups", {"name": "team", "kind": "enterprise", "org": org["id"]}), 201)["id"]
    for i in range(3):
        expect(owner.post(f"/v1/groups/{gid}/messages", {"text": f"m{i}"}), 201)
    expect(owner.post(f"/v1/groups/{gid}/files?name=a.txt", raw=b"0123456789"), 201)
    preview = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "keep"}), 200)
    assert [a["kind"] for a in preview["approvals"]] == ["org_admin"]
    # Who decides, as a code clients put in words (the pinned `from` stays English).
    a = preview["approvals"][0]
    assert a["from"] == "any admin of the org"
    assert a["from_code"] == "org_admins" and a["from_params"] == {"org": "acme"}
    st = expect(request(owner, gid, "keep"), 202)
    assert st["state"] == "review" and st["approvals"][0]["state"] == "pending"
    assert st["approvals"][0]["org_name"] == "acme"  # who decides, by the org's name
    inbox = expect(boss.get("/v1/approvals"), 200)["items"]
    mine = [a for a in inbox if a["group"] == gid][0]
    aid = mine["id"]
    # The approver decides on names and figures, not ids.
    assert mine["group_name"] == "team" and mine["messages"] == "keep" and mine["org_name"] == "acme"
    # Messages: the three texts, the file's message and the dissolution's notice.
    assert mine["impact"] == {"members": 1, "messages": 5, "files": 1, "file_bytes": 10, "payments": 0}
    assert expect(outsider.get("/v1/approvals"), 200)["items"] == []
    expect(outsider.post(f"/v1/approvals/{aid}/approve", {}), 404, "APPROVAL_NOT_FOUND")
    # The owner is an org admin too, but nobody approves their own request, nor finds it
    # in their inbox.
    assert [a for a in expect(owner.get("/v1/approvals"), 200)["items"] if a["group"] == gid] == []
    expect(owner.post(f"/v1/approvals/{aid}/approve", {}), 403, "FORBIDDEN_APPROVER")
    expect(boss.post(f"/v1/approvals/{aid}/reject", {}), 422, "FIELD_MISSING")
    a = expect(boss.post(f"/v1/approvals/{aid}/reject", {"reason": "not now"}), 200)
    assert a["state"] == "rejected"
    st = status(owner, gid)
    assert st["state"] == "active" and st["dissolution_state"] == "rejected"
    expect(boss.post(f"/v1/approvals/{aid}/approve", {}), 409, "APPROVAL_CLOSED")
    # Again, approved this time: on to the cooling-off.
    expect(request(owner, gid, "keep"), 202)
    aid = [a for a in expect(boss.get("/v1/approvals"), 200)["items"] if a["group"] == gid][0]["id"]
    expect(boss.post(f"/v1/approvals/{aid}/approve", {"reason": "ok"}), 200)
    st = status(owner, gid)
    assert st["state"] == "pending" and 48 * H - 2 <= st["seconds_left"] <= 48 * H
    events = [e["event"] for e in history(owner, gid)]
    assert events[-3:] == ["dissolution.requested", "approval.approved", "dissolution.approved"]
    # Switching protection off is ledgered and takes effect for new requests.
    expect(owner.delete(f"/v1/groups/{gid}/dissolution"), 200)
    expect(outsider.post(f"/v1/orgs/{org['id']}/protection", {"enabled": False}), 403, "FORBIDDEN_ORG")
    assert expect(boss.post(f"/v1/orgs/{org['id']}/protection", {"enabled": False}), 200)["dissolve_protection"] is False
    assert expect(request(owner, gid, "keep"), 202)["state"] == "pending"


def test_protection_switched_off_leaves_an_open_review_as_it_is(srv):
    boss, owner = register(srv.url), register(srv.url)
    org = expect(boss.post("/v1/orgs", {"name": "acme2", "kind": "enterprise"}), 201)
    expect(boss.post(f"/v1/orgs/{org['id']}/admins", {"openid": owner.openid}), 204)
    gid = expect(owner.post("/v1/groups", {"name": "team2", "kind": "enterprise", "org": org["id"]}), 201)["id"]
    assert expect(request(owner, gid, "keep"), 202)["state"] == "review"
    # The switch applies to requests made after it: the open one keeps its org-admin approval.
    assert expect(boss.post(f"/v1/orgs/{org['id']}/protection", {"enabled": False}), 200)["dissolve_protection"] is False
    st = status(owner, gid)
    assert st["state"] == "review" and [(a["kind"], a["state"]) for a in st["approvals"]] == [("org_admin", "pending")]
    aid = [a for a in expect(boss.get("/v1/approvals"), 200)["items"] if a["group"] == gid][0]["id"]
    expect(boss.post(f"/v1/approvals/{aid}/approve", {}), 200)
    assert status(owner, gid)["state"] == "pending"


def test_education_group_needs_step_up_school_admin_and_every_guardian(srv):
    principal, teacher = register(srv.url), register(srv.url)
    kids = [register(srv.url) for _ in range(2)]
    parents = [register(srv.url) for _ in range(3)]
    school = expect(principal.post("/v1/orgs", {"name": "school", "kind": "school"}), 201)["id"]
    expect(principal.post(f"/v1/orgs/{school}/admins", {"openid": teacher.openid}), 204)
    links = [(kids[0], parents[0]), (kids[0], parents[1]), (kids[1], parents[2])]
    for kid, parent in links:
        expect(principal.post(f"/v1/orgs/{school}/guardians", {"minor": kid.openid, "guardian": parent.openid}), 204)
    gid = expect(teacher.post("/v1/groups", {"name": "class 3", "kind": "education", "org": school}), 201)["id"]
    for kid in kids:
        expect(teacher.post(f"/v1/groups/{gid}/members", {"openid": kid.openid}), 201)
    p = expect(teacher.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "delete"}), 200)
    assert sorted(a["kind"] for a in p["approvals"]) == ["guardian"] * 3 + ["school_admin"]
    # Clients show names, not openids: each guardian entry names the guardian and the child.
    names = {(a["from_name"], a["for_minor_name"]) for a in p["approvals"] if a["kind"] == "guardian"}
    assert names == {(parent.username, kid.username) for kid, parent in links}
    coded = {(a["from_code"], a["from_params"]["guardian"], a["from_params"]["minor"]) for a in p["approvals"]
             if a["kind"] == "guardian"}
    assert coded == {("guardian", parent.username, kid.username) for kid, parent in links}
    assert [(a["from_code"], a["from_params"]) for a in p["approvals"] if a["kind"] == "school_admin"] == [
        ("school_admins", {"org": "school"})]
    assert any(r["method"] == "password" for r in p["requirements"])
    token = p["confirmation_token"]
    r = expect(teacher.post(f"/v1/groups/{gid}/dissolution", {"messages": "delete", "confirmation_token": token}),
               428, "STEP_UP_REQUIRED")
    assert r["requirements"][0]["method"] == "password"
    expect(teacher.post(f"/v1/groups/{gid}/dissolution", {"messages": "delete", "confirmation_token": token,
                                                          "password": "wrong password"}), 401, "BAD_CREDENTIALS")
    st = expect(teacher.post(f"/v1/groups/{gid}/dissolution", {"messages": "delete", "confirmation_token": token,
                                                               "password": "correct horse", "typed_name": p["name"]}),
                202)
    assert st["state"] == "review" and len(st["approvals"]) == 4
    minors = {a["subject_name"] for a in status(teacher, gid)["approvals"] if a["kind"] == "guardian"}
    assert minors == {kid.username for kid in kids}
    for parent in parents:
        mine = [a for a in expect(parent.get("/v1/approvals"), 200)["items"] if a["group"] == gid]
        assert len(mine) == 1 and mine[0]["kind"] == "guardian"
        expect(parent.post(f"/v1/approvals/{mine[0]['id']}/approve", {}), 200)
        assert status(teacher, gid)["state"] == "review"  # still the school admin to go
    aid = [a for a in expect(principal.get("/v1/approvals"), 200)["items"] if a["group"] == gid][0]["id"]
    expect(principal.post(f"/v1/approvals/{aid}/approve", {}), 200)
    assert status(teacher, gid)["state"] == "pending"


def test_approvals_expire(srv):
    boss, owner = register(srv.url), register(srv.url)
    org = expect(boss.post("/v1/orgs", {"name": "slow", "kind": "enterprise"}), 201)["id"]
    expect(boss.post(f"/v1/orgs/{org}/admins", {"openid": owner.openid}), 204)
    gid = expect(owner.post("/v1/groups", {"name": "t", "kind": "enterprise", "org": org}), 201)["id"]
    expect(request(owner, gid), 202)
    advance(owner, 7 * 86400 + 1)
    st = wait_state(owner, gid, "active")
    assert st["dissolution_state"] == "expired" and st["approvals"][0]["state"] == "expired"


def test_legal_hold_blocks_purge_until_release(srv):
    owner, judge = register(srv.url), register(srv.url, name="judge")
    gid = make_group(owner)
    expect(owner.post(f"/v1/groups/{gid}/holds", {"reason": "x"}), 403, "FORBIDDEN_COMPLIANCE")
    hold = expect(judge.post(f"/v1/groups/{gid}/holds", {"reason": "case 42"}), 201)
    assert hold["placed_by"] == judge.openid and hold["placed_by_name"] == "judge"
    assert hold["released_by"] is None and hold["released_by_name"] is None
    listed = expect(judge.get(f"/v1/groups/{gid}/holds"), 200)
    name = expect(owner.get(f"/v1/groups/{gid}"), 200)["name"]
    assert listed["group"] == gid and listed["group_name"] == name  # names for the console, not ids
    assert [h["placed_by_name"] for h in listed["items"]] == ["judge"]
    expect(request(owner, gid), 202)
    advance(owner, 48 * H + 1)
    wait_state(owner, gid, "dissolved")
    advance(owner, 7 * 86400 + 1)
    time.sleep(1)
    st = status(owner, gid)
    assert st["state"] == "dissolved" and st["held"] is True  # past the grace, but held
    expect(judge.delete(f"/v1/groups/{gid}/holds/nope"), 404, "HOLD_NOT_FOUND")
    released = expect(judge.delete(f"/v1/groups/{gid}/holds/{hold['id']}"), 200)
    assert released["released_by"] == judge.openid and released["released_by_name"] == "judge"
    wait_state(owner, gid, "purged")
    events = [e["event"] for e in history(owner, gid)]
    assert "hold.placed" in events and "hold.released" in events


def test_restore_within_grace_gives_back_the_same_group(srv):
    owner, admin, member = register(srv.url), register(srv.url), register(srv.url)
    gid = make_group(owner, admins=[admin], members=[member])
    g = f"/v1/groups/{gid}"
    for i in range(5):
        expect(member.post(g + "/messages", {"text": f"m{i}"}), 201)
    expect(admin.post(g + "/files?name=a.txt", raw=b"file bytes"), 201)
    p = expect(owner.post(g + "/payments", {"amount": 10, "shares": 2}), 201)
    expect(member.post(g + f"/payments/{p['id']}/claim"), 201)
    before = dump(member, gid)
    expect(request(owner, gid), 202)
    advance(owner, 48 * H + 1)
    wait_state(owner, gid, "dissolved")
    expect(member.post(g + "/restore", {}), 410, "GROUP_GONE")
    r = expect(owner.post(g + "/restore", {}), 428, "STEP_UP_REQUIRED")
    assert r["requirements"][0]["method"] == "password"
    restored = expect(owner.post(g + "/restore", {"password": "correct horse"}), 200)
    assert restored["state"] == "active"
    assert dump(member, gid) == before
    assert member.get(g + "/files/" + before["files"]["items"][0]["digest"]).content == b"file bytes"
    # The purge that was queued does nothing later.
    advance(owner, 8 * 86400)
    time.sleep(0.8)
    assert dump(member, gid) == before
    h = history(owner, gid)[-1]
    assert (h["event"], h["old_state"], h["new_state"], h["actor"]) == ("group.restored", "dissolved", "active", owner.openid)
    expect(owner.post(g + "/restore", {"password": "correct horse"}), 409, "NOT_RESTORABLE")


def test_server_admin_restores_and_grace_ends_restorability(srv):
    owner, root = register(srv.url), register(srv.url, name="root")
    gid = make_group(owner)
    expect(request(owner, gid), 202)
    advance(owner, 48 * H + 1)
    wait_state(owner, gid, "dissolved")
    expect(root.post(f"/v1/groups/{gid}/restore", {}), 200)
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["state"] == "active"
    expect(request(owner, gid), 202)
    advance(owner, 48 * H + 1)
    wait_state(owner, gid, "dissolved")
    advance(owner, 7 * 86400 + 1)
    wait_state(owner, gid, "purged")
    expect(root.post(f"/v1/groups/{gid}/restore", {}), 409, "NOT_RESTORABLE")


def test_successor_group_gets_the_members(srv):
    owner, admin, member = register(srv.url), register(srv.url), register(srv.url)
    gid = make_group(owner, admins=[admin], members=[member])
    expect(request(owner, gid, successor_name="team v2"), 202)
    advance(owner, 48 * H + 1)
    st = wait_state(owner, gid, "dissolved")
    succ = st["successor"]
    assert succ and st["successor_name"] == "team v2"
    r = expect(member.get(f"/v1/groups/{gid}"), 410, "GROUP_GONE")
    assert r.get("successor") == succ
    g2 = expect(member.get(f"/v1/groups/{succ}"), 200)
    assert g2["name"] == "team v2" and g2["owner"] == owner.openid and g2["member_count"] == 3
    roles = {m["openid"]: m["role"] for m in expect(member.get(f"/v1/groups/{succ}/members"), 200)["items"]}
    assert roles == {owner.openid: "owner", admin.openid: "admin", member.openid: "member"}


def test_timer_due_across_kill_9_marks_exactly_once():
    s = Server(extra=["--set", "cooling_off=2", "--set", "purge_grace=3600"]).start()
    try:
        owners = [register(s.url) for _ in range(6)]
        gids = [make_group(o) for o in owners]
        for o, g in zip(owners, gids):
            expect(request(o, g), 202)
        time.sleep(1.9)  # the timers fall due around the kill
        s.kill()
        time.sleep(0.5)
        s.start()  # down when they were due: they fire after the restart
        for o, g in zip(owners, gids):
            wait_state(o, g, "dissolved")
        for o, g in zip(owners, gids):
            events = [e["event"] for e in history(o, g)]
            assert events.count("group.dissolved") == 1, events
            st = status(o, g)
            assert sorted(j["kind"] for j in st["jobs"]) == ["purge_group", "purge_payments"]
    finally:
        stop_clean(s)


def test_tombstone_answers_gone_then_not_found(srv):
    owner, member = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[member])
    expect(request(owner, gid), 202)
    advance(owner, 48 * H + 1)
    st = wait_state(owner, gid, "dissolved")
    assert st["tombstone_until"] == st["grace_until"] + 31 * 86400
    advance(owner, 7 * 86400 + 1)
    wait_state(owner, gid, "purged")
    expect(member.get(f"/v1/groups/{gid}"), 410, "GROUP_GONE")
    advance(owner, 31 * 86400)
    for c in (owner, member):  # 38 days on, the sessions have expired: log in again
        c.token = expect(requests.post(srv.url + "/v1/sessions", json={
            "username": c.username, "password": "correct horse", "device_id": "d", "platform": "cli"}), 201)["token"]
    expect(member.get(f"/v1/groups/{gid}"), 404, "GROUP_NOT_FOUND")
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["state"] == "purged"  # the owner's record stays
