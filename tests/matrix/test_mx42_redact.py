# SPDX-License-Identifier: MIT
"""Redactions (docs/matrix.md): PUT /rooms/{room}/redact/{event}/{txn} recalls or
removes a message through the same core call as DELETE /v1/groups/{id}/messages/{seq}
(core/message.c), so the window and the ranks hold; /sync and /messages carry the
m.room.redaction and the message with its content emptied, never the text."""
import json

import requests
from nio import RoomRedactResponse, RoomSendResponse, SyncResponse

from conftest import expect, make_group, register, room_id
from test_mx20_rooms import login, mx

SECRET = "redact-me-5c1e"


def test_redact_through_nio_and_sync(url, nio):
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    rid = room_id(gid)
    nb, na = login(nio, bob), login(nio, alice)
    first = na(na.c.sync(timeout=0, full_state=True))
    assert isinstance(first, SyncResponse), first
    sent = nb(nb.c.room_send(rid, "m.room.message", {"msgtype": "m.text", "body": SECRET}, tx_id="s1"))
    other = nb(nb.c.room_send(rid, "m.room.message", {"msgtype": "m.text", "body": "stays"}, tx_id="s2"))
    assert isinstance(sent, RoomSendResponse) and isinstance(other, RoomSendResponse)
    # The author redacts their own message within the window.
    r = nb(nb.c.room_redact(rid, sent.event_id, reason=None, tx_id="r1"))
    assert isinstance(r, RoomRedactResponse), r
    assert r.event_id == f"${gid}.r{sent.event_id.split('.m')[1]}"
    again = nb(nb.c.room_redact(rid, sent.event_id, tx_id="r2"))
    assert isinstance(again, RoomRedactResponse) and again.event_id == r.event_id
    # A member cannot redact the owner's message or another's; only messages redact.
    h = {"Authorization": "Bearer " + nb.c.access_token}
    v3 = url + "/_matrix/client/v3"
    mine = na(na.c.room_send(rid, "m.room.message", {"msgtype": "m.text", "body": "owner"}, tx_id="o1"))
    mx(requests.put(f"{v3}/rooms/{rid}/redact/{mine.event_id}/x1", json={"reason": "no"}, headers=h), 403,
       "M_FORBIDDEN")
    mx(requests.put(f"{v3}/rooms/{rid}/redact/${gid}.m999/x2", json={}, headers=h), 404, "M_NOT_FOUND")
    mx(requests.put(f"{v3}/rooms/{rid}/redact/${gid}.create/x3", json={}, headers=h), 403, "M_FORBIDDEN")
    mx(requests.put(f"{v3}/rooms/{rid}/redact/{other.event_id}/x4", json={"reason": 5}, headers=h), 400)
    # The owner removes bob's other message with a reason (r0 prefix, as nio's older path).
    ha = {"Authorization": "Bearer " + na.c.access_token}
    mx(requests.put(f"{url}/_matrix/client/r0/rooms/{rid}/redact/{other.event_id}/a1", json={"reason": "spam"},
                    headers=ha), 200)
    # The owner's incremental sync: the redactions, and no text anywhere.
    s = na(na.c.sync(timeout=0, since=first.next_batch))
    assert isinstance(s, SyncResponse), s
    raw = requests.get(f"{v3}/sync", params={"since": first.next_batch, "timeout": 0}, headers=ha).json()
    assert SECRET not in json.dumps(raw)
    events = raw["rooms"]["join"][rid]["timeline"]["events"]
    reds = [e for e in events if e["type"] == "m.room.redaction"]
    assert {e["redacts"] for e in reds} == {sent.event_id, other.event_id}, reds
    assert [e["content"].get("reason") for e in reds if e["redacts"] == other.event_id] == ["spam"]
    msgs = {e["event_id"]: e for e in events if e["type"] == "m.room.message"}
    assert msgs[sent.event_id]["content"] == {} and msgs[other.event_id]["content"] == {}
    assert msgs[sent.event_id]["unsigned"]["redacted_because"]["event_id"] == r.event_id
    # /messages from the end: the same.
    page = requests.get(f"{v3}/rooms/{rid}/messages", params={"dir": "b", "limit": 50}, headers=ha).json()
    assert SECRET not in json.dumps(page) and "stays" not in json.dumps(page)
    # And /v1 lists them as recalled.
    items = {m["seq"]: m for m in expect(alice.get(f"/v1/groups/{gid}/messages"), 200)["items"]}
    assert items[1]["recalled"] and not items[1]["removed"] and items[2]["removed"]
    assert items[2]["reason"] == "spam"
