# SPDX-License-Identifier: MIT
"""Read receipts, read markers, unread counts and typing (MATRIX.md 1.4 rows 34-35; docs/matrix.md
"Receipts, unread counts and typing"): m.read moves the reader's position and is shown to
the other members as m.receipt in ephemeral, m.read.private moves it unseen, m.fully_read
is room account data, notification_count counts the other members' messages after the
position, and a receipt wakes the other members' parked syncs.  Typing shows as m.typing,
wakes parked syncs, and ends at its timeout.  The positions are /v1's
too (POST /v1/groups/{id}/read, GET /v1/groups)."""
import threading
import time
from urllib.parse import quote

import requests
from nio import LoginResponse

from conftest import expect, make_group, mxid, register, room_id

V3 = "/_matrix/client/v3"


def login(nio, user):
    n = nio(user)
    assert isinstance(n.login(), LoginResponse)
    return n


def token(n):
    return n.c.access_token


def mx(url, tok, method, path, body=None, status=200, errcode=None, **params):
    r = requests.request(method, url + V3 + path, params=dict(params, access_token=tok), json=body, timeout=40)
    assert r.status_code == status, (method, path, r.status_code, r.text[:400])
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    if errcode:
        assert r.json()["errcode"] == errcode, r.text
    return r.json()


def sync(url, tok, **params):
    return mx(url, tok, "GET", "/sync", **params)


def post(c, gid, text):
    return expect(c.post(f"/v1/groups/{gid}/messages", {"text": text}), 201)


def receipt(url, tok, gid, eid, rtype="m.read", status=200, errcode=None, body=None):
    return mx(url, tok, "POST", f"/rooms/{quote(room_id(gid))}/receipt/{rtype}/{quote(eid)}", body or {},
              status=status, errcode=errcode)


def joined(s, gid):
    return s["rooms"]["join"][room_id(gid)]


def unread(s, gid):
    return joined(s, gid)["unread_notifications"]["notification_count"]


def receipts(room):
    out = {}
    for e in room.get("ephemeral", {}).get("events", []):
        if e["type"] == "m.receipt":
            for eid, types in e["content"].items():
                for rtype, users in types.items():
                    for u in users:
                        out[(rtype, u)] = eid
    return out


def test_unread_count_falls_and_rises(url, nio):
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    for i in range(3):
        post(alice, gid, f"n{i}")
    post(bob, gid, "mine")
    tb = token(login(nio, bob))
    s = sync(url, tb)
    assert unread(s, gid) == 3  # bob's own message does not count
    assert joined(s, gid)["unread_notifications"]["highlight_count"] == 0
    receipt(url, tb, gid, f"${gid}.m4")
    s2 = sync(url, tb, since=s["next_batch"])
    assert unread(s2, gid) == 0
    assert receipts(joined(s2, gid))[("m.read", mxid(bob))] == f"${gid}.m4"
    post(alice, gid, "new")
    s3 = sync(url, tb, since=s2["next_batch"])
    assert unread(s3, gid) == 1
    post(bob, gid, "my own")
    s4 = sync(url, tb, since=s3["next_batch"])
    assert unread(s4, gid) == 1
    assert unread(sync(url, tb), gid) == 1
    # /v1 shows the same position and count, and its mark is Matrix's too.
    item = next(g for g in expect(bob.get("/v1/groups"), 200)["items"] if g["id"] == gid)
    assert item["unread"] == 1 and item["read_seq"] == 4
    assert expect(bob.post(f"/v1/groups/{gid}/read", {}), 200) == {"read_seq": 6, "unread": 0}
    assert unread(sync(url, tb, since=s4["next_batch"]), gid) == 0


def test_receipts_seen_by_others_private_ones_not(url, nio):
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    post(alice, gid, "one")
    post(alice, gid, "two")
    ta, tb = token(login(nio, alice)), token(login(nio, bob))
    sa = sync(url, ta)
    receipt(url, tb, gid, f"${gid}.m1")
    sa2 = sync(url, ta, since=sa["next_batch"])
    assert receipts(joined(sa2, gid)) == {("m.read", mxid(bob)): f"${gid}.m1"}
    # A private receipt moves bob's own count but is not shown to alice.
    receipt(url, tb, gid, f"${gid}.m2", "m.read.private")
    sa3 = sync(url, ta, since=sa2["next_batch"], timeout=500)
    assert room_id(gid) not in sa3["rooms"]["join"] or not receipts(joined(sa3, gid))
    full = receipts(joined(sync(url, ta), gid))
    assert full == {("m.read", mxid(bob)): f"${gid}.m1"}
    sb = sync(url, tb)
    assert unread(sb, gid) == 0
    mine = receipts(joined(sb, gid))
    assert mine[("m.read.private", mxid(bob))] == f"${gid}.m2"
    # Positions only move forward: an older receipt changes nothing.
    receipt(url, tb, gid, f"${gid}.m1")
    assert receipts(joined(sync(url, ta), gid)) == {("m.read", mxid(bob)): f"${gid}.m1"}


def test_receipt_wakes_the_other_members_parked_sync(url, nio):
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    post(alice, gid, "hello")
    ta, tb = token(login(nio, alice)), token(login(nio, bob))
    sa = sync(url, ta)
    got = {}

    def poll():
        t0 = time.monotonic()
        got["s"] = sync(url, ta, since=sa["next_batch"], timeout=20000)
        got["took"] = time.monotonic() - t0

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.7)
    t0 = time.monotonic()
    receipt(url, tb, gid, f"${gid}.m1")
    t.join(30)
    assert got["took"] - (time.monotonic() - t0) < 3 and got["took"] < 5, got.get("took")
    assert receipts(joined(got["s"], gid)) == {("m.read", mxid(bob)): f"${gid}.m1"}


def test_read_markers_and_fully_read(url, nio):
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    post(alice, gid, "one")
    post(alice, gid, "two")
    tb = token(login(nio, bob))
    s = sync(url, tb)
    mx(url, tb, "POST", f"/rooms/{quote(room_id(gid))}/read_markers",
       {"m.fully_read": f"${gid}.m1", "m.read": f"${gid}.m2"})
    s2 = sync(url, tb, since=s["next_batch"])
    room = joined(s2, gid)
    assert unread(s2, gid) == 0
    data = {e["type"]: e["content"] for e in room["account_data"]["events"]}
    assert data["m.fully_read"] == {"event_id": f"${gid}.m1"}
    got = mx(url, tb, "GET", f"/user/{quote(mxid(bob))}/rooms/{quote(room_id(gid))}/account_data/m.fully_read")
    assert got == {"event_id": f"${gid}.m1"}
    # A receipt on a state change counts the messages before it as read.
    expect(alice.patch(f"/v1/groups/{gid}", {"name": "renamed"}), 200)
    post(alice, gid, "three")
    s3 = sync(url, tb, since=s2["next_batch"])
    rename = next(e["event_id"] for e in joined(s3, gid)["timeline"]["events"] if e["type"] == "m.room.name")
    receipt(url, tb, gid, rename)
    assert unread(sync(url, tb), gid) == 1


def test_bad_receipts_are_4xx(url, nio):
    alice, bob, carol = register(url), register(url), register(url)
    gid = make_group(alice, members=[bob])
    post(alice, gid, "one")
    tb, tc = token(login(nio, bob)), token(login(nio, carol))
    receipt(url, tb, gid, f"${gid}.m9", status=404, errcode="M_NOT_FOUND")
    receipt(url, tb, gid, "$g_other.m1", status=404, errcode="M_NOT_FOUND")
    receipt(url, tb, gid, "$nonsense", status=404, errcode="M_NOT_FOUND")
    receipt(url, tb, gid, f"${gid}.m1", "m.bogus", status=400, errcode="M_INVALID_PARAM")
    receipt(url, tb, gid, f"${gid}.m1", body={"thread_id": 5}, status=400, errcode="M_BAD_JSON")
    receipt(url, tc, gid, f"${gid}.m1", status=403, errcode="M_FORBIDDEN")
    receipt(url, tb, "g_nosuch", "$g_nosuch.m1", status=403, errcode="M_FORBIDDEN")
    path = f"/rooms/{quote(room_id(gid))}/read_markers"
    mx(url, tb, "POST", path, {"m.read": 7}, status=400, errcode="M_BAD_JSON")
    mx(url, tb, "POST", path, {"m.fully_read": f"${gid}.m5"}, status=404, errcode="M_NOT_FOUND")
    r = requests.post(url + V3 + path, params={"access_token": tb}, data="{not json", timeout=10)
    assert r.status_code == 400 and r.json()["errcode"] == "M_NOT_JSON", r.text


def typing(url, tok, gid, user, body, status=200, errcode=None):
    return mx(url, tok, "PUT", f"/rooms/{quote(room_id(gid))}/typing/{quote(user)}", body, status=status,
              errcode=errcode)


def typists(room):
    for e in room.get("ephemeral", {}).get("events", []):
        if e["type"] == "m.typing":
            return e["content"]["user_ids"]
    return None


def test_typing_is_seen_then_expires(url, nio):
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    ta, tb = token(login(nio, alice)), token(login(nio, bob))
    sb = sync(url, tb)
    got = {}

    def poll():
        t0 = time.monotonic()
        got["s"] = sync(url, tb, since=sb["next_batch"], timeout=20000)
        got["took"] = time.monotonic() - t0

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.7)
    typing(url, ta, gid, mxid(alice), {"typing": True, "timeout": 1500})
    t.join(30)
    assert got["took"] < 5, got["took"]
    assert typists(joined(got["s"], gid)) == [mxid(alice)]
    # The full sync shows who types now too.
    assert typists(joined(sync(url, tb), gid)) == [mxid(alice)]
    # The timeout ends it, and the parked sync hears of it.
    s2 = sync(url, tb, since=got["s"]["next_batch"], timeout=10000)
    assert typists(joined(s2, gid)) == []
    # A stop is told at once.
    typing(url, ta, gid, mxid(alice), {"typing": True})
    s3 = sync(url, tb, since=s2["next_batch"])
    assert typists(joined(s3, gid)) == [mxid(alice)]
    typing(url, ta, gid, mxid(alice), {"typing": False})
    s4 = sync(url, tb, since=s3["next_batch"])
    assert typists(joined(s4, gid)) == []
    # A sync token with the typing serial still pages /messages.
    assert "_" in s4["next_batch"]
    mx(url, tb, "GET", f"/rooms/{quote(room_id(gid))}/messages", **{"from": s4["next_batch"], "dir": "b"})


def test_bad_typing_is_4xx(url, nio):
    alice, bob, carol = register(url), register(url), register(url)
    gid = make_group(alice, members=[bob])
    ta, tc = token(login(nio, alice)), token(login(nio, carol))
    typing(url, ta, gid, mxid(bob), {"typing": True}, status=403, errcode="M_FORBIDDEN")
    typing(url, ta, gid, mxid(alice), {"typing": "yes"}, status=400, errcode="M_BAD_JSON")
    typing(url, ta, gid, mxid(alice), {}, status=400, errcode="M_MISSING_PARAM")
    typing(url, ta, gid, mxid(alice), {"typing": True, "timeout": "soon"}, status=400, errcode="M_BAD_JSON")
    typing(url, tc, gid, mxid(carol), {"typing": True}, status=403, errcode="M_FORBIDDEN")
    r = requests.put(url + V3 + f"/rooms/{quote(room_id(gid))}/typing/{quote(mxid(alice))}",
                     params={"access_token": ta}, data="{nope", timeout=10)
    assert r.status_code == 400 and r.json()["errcode"] == "M_NOT_JSON", r.text
