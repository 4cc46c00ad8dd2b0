# SPDX-License-Identifier: MIT
"""Unread counts and read positions on /v1 (docs/api.md "Read positions"): GET
/v1/groups carries `unread` and `read_seq`, POST /v1/groups/{id}/read marks a group
read (up to the newest message, or a given seq; positions only move forward), one's
own messages never count, a mark reaches the other members as a `receipt.read` event,
non-members get 404 and bad input a problem with a stable code."""
import json

import requests

from conftest import expect, make_group, register


def post(c, gid, text):
    return expect(c.post(f"/v1/groups/{gid}/messages", {"text": text}), 201)


def item(c, gid):
    return next(g for g in expect(c.get("/v1/groups"), 200)["items"] if g["id"] == gid)


def read(c, gid, body=None, status=200, code=None):
    return expect(c.post(f"/v1/groups/{gid}/read", body if body is not None else {}), status, code)


def test_unread_counts_and_marks(url):
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    assert item(bob, gid)["unread"] == 0 and item(bob, gid)["read_seq"] == 0
    for i in range(3):
        post(alice, gid, f"n{i}")
    post(bob, gid, "mine")
    got = item(bob, gid)
    assert got["unread"] == 3 and got["read_seq"] == 0
    assert item(alice, gid)["unread"] == 1
    assert read(bob, gid, {"seq": 2}) == {"read_seq": 2, "unread": 1}
    assert item(bob, gid) | {} == got | {"unread": 1, "read_seq": 2}
    # Backwards changes nothing; the default is the newest message.
    assert read(bob, gid, {"seq": 1}) == {"read_seq": 2, "unread": 1}
    assert read(bob, gid) == {"read_seq": 4, "unread": 0}
    post(alice, gid, "later")
    assert item(bob, gid)["unread"] == 1
    # A body-less POST is the same as {}.
    r = requests.post(f"{url}/v1/groups/{gid}/read", headers={"Authorization": "Bearer " + bob.token}, timeout=10)
    assert r.status_code == 200 and r.json() == {"read_seq": 5, "unread": 0}, r.text


def test_mark_reaches_the_members_as_an_event(url):
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    post(alice, gid, "hello")
    read(bob, gid)
    h = {"Authorization": "Bearer " + alice.token, "Accept": "text/event-stream", "Last-Event-ID": "0"}
    with requests.get(url + "/v1/events", headers=h, stream=True, timeout=10) as r:
        assert r.status_code == 200, r.text
        ev = {}
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("event:"):
                ev["event"] = line[6:].strip()
            elif line.startswith("data:"):
                ev["data"] = json.loads(line[5:])
            elif not line and ev:
                if ev.get("event") == "receipt.read":
                    assert ev["data"]["group"] == gid and ev["data"]["user"] == bob.openid
                    assert ev["data"]["seq"] == 1 and isinstance(ev["data"]["ts"], int)
                    break
                ev = {}


def test_bad_input_and_non_members(url):
    alice, bob, carol = register(url), register(url), register(url)
    gid = make_group(alice, members=[bob])
    post(alice, gid, "one")
    read(carol, gid, status=404, code="GROUP_NOT_FOUND")
    read(bob, "g_nosuchgroup", status=404, code="GROUP_NOT_FOUND")
    read(bob, gid, {"seq": 2}, status=422, code="READ_SEQ_INVALID")
    read(bob, gid, {"seq": -1}, status=422, code="FIELD_INVALID")
    read(bob, gid, {"seq": "1"}, status=422, code="FIELD_INVALID")
    read(bob, gid, {"sequence": 1}, status=422)
    r = requests.post(f"{url}/v1/groups/{gid}/read", data="[1]",
                      headers={"Authorization": "Bearer " + bob.token, "Content-Type": "application/json"},
                      timeout=10)
    assert r.status_code == 400 and r.json()["code"] == "BAD_JSON", r.text
    assert item(bob, gid)["read_seq"] == 0


def test_typing_reaches_the_members(url):
    alice, bob, carol = register(url), register(url), register(url)
    gid = make_group(alice, members=[bob])
    h = {"Authorization": "Bearer " + bob.token, "Accept": "text/event-stream"}
    seen = []
    with requests.get(url + "/v1/events", headers=h, stream=True, timeout=10) as r:
        assert r.status_code == 200, r.text
        lines = r.iter_lines(decode_unicode=True)
        next(lines)  # the stream is open
        expect(alice.req("PUT", f"/v1/groups/{gid}/typing", {"typing": True}), 204)
        expect(alice.req("PUT", f"/v1/groups/{gid}/typing", {"typing": False}), 204)
        ev = {}
        for line in lines:
            if line.startswith("id:"):
                ev["id"] = line
            elif line.startswith("event:"):
                ev["event"] = line[6:].strip()
            elif line.startswith("data:"):
                ev["data"] = json.loads(line[5:])
            elif not line and ev:
                if ev.get("event") == "member.typing":
                    assert "id" not in ev  # not a stored event: no id to resume from
                    assert ev["data"]["group"] == gid and ev["data"]["user"] == alice.openid
                    assert ev["data"]["display_name"]
                    seen.append(ev["data"]["typing"])
                    if len(seen) == 2:
                        break
                ev = {}
    assert seen == [True, False]
    expect(carol.req("PUT", f"/v1/groups/{gid}/typing", {"typing": True}), 404, "GROUP_NOT_FOUND")
    expect(alice.req("PUT", f"/v1/groups/{gid}/typing", {"typing": "yes"}), 422, "FIELD_INVALID")
    expect(alice.req("PUT", f"/v1/groups/{gid}/typing", {}), 422, "FIELD_MISSING")
