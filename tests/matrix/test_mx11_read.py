# SPDX-License-Identifier: MIT
"""MATRIX.md 4.1 case 7 and the room read routes (1.4 rows 25-32): /messages pagination
with t<seq> and sync tokens, /state, /members, /joined_members, /joined_rooms, /event,
/context; who may read; and cases 10-12 and 15 through /sync: dissolution with and
without a successor, cancel, restore, and the SSE stream seeing the same sequence."""
import socket
import time
from urllib.parse import quote

import pytest
import requests
from nio import (JoinedMembersResponse, JoinedRoomsResponse, RoomGetStateResponse, RoomMessagesError,
                 RoomMessagesResponse, SyncResponse)
from nio.events import (PowerLevelsEvent, RoomCreateEvent, RoomMemberEvent, RoomMessageNotice,
                        RoomMessageText, RoomUpgradeEvent)

from conftest import SERVER_NAME, Nio, expect, make_group, mxid, register, room_id

V3 = "/_matrix/client/v3"


def login(nio, user):
    n = nio(user)
    n.login()
    return n


def sync(n, **kw):
    r = n(n.c.sync(**kw))
    assert isinstance(r, SyncResponse), r
    return r


def mxget(url, token, path, status=200, **params):
    r = requests.get(url + V3 + path, params=dict(params, access_token=token), timeout=30)
    assert r.status_code == status, (path, r.status_code, r.text[:400])
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    return r.json()


def post(c, gid, text):
    return expect(c.post(f"/v1/groups/{gid}/messages", {"text": text}), 201)


def test_pagination_walks_every_message_once(url, nio):
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    for i in range(120):
        post(alice, gid, f"n{i}")
    b = login(nio, bob)
    r = sync(b)
    room = r.rooms.join[room_id(gid)]
    assert room.timeline.limited and room.timeline.prev_batch
    seen = [e.event_id for e in room.timeline.events if isinstance(e, RoomMessageText)]
    token, pages = room.timeline.prev_batch, 0
    while True:
        page = b(b.c.room_messages(room_id(gid), start=token, limit=50))
        assert isinstance(page, RoomMessagesResponse), page
        seen = [e.event_id for e in page.chunk if isinstance(e, RoomMessageText)][::-1] + seen
        pages += 1
        if not page.end:
            break
        token = page.end
    assert pages == 3
    assert len(seen) == 120 and len(set(seen)) == 120
    assert seen == [f"${gid}.m{i}" for i in range(1, 121)]
    # The start of the room ends the history with its creation.
    assert any(isinstance(e, RoomCreateEvent) for e in page.chunk)
    # A sync token works as `from`, both directions.
    page = b(b.c.room_messages(room_id(gid), start=r.next_batch, limit=3))
    assert [e.body for e in page.chunk if isinstance(e, RoomMessageText)] == ["n119", "n118", "n117"]
    body = mxget(url, b.c.access_token, f"/rooms/{room_id(gid)}/messages", dir="f", limit=2, **{"from": "t0"})
    assert [e["content"]["body"] for e in body["chunk"] if e["type"] == "m.room.message"] == ["n0", "n1"]
    assert body["end"] == "t2"
    body = mxget(url, b.c.access_token, f"/rooms/{room_id(gid)}/messages", dir="f", **{"from": "t120"})
    assert body["chunk"] == [] and "end" not in body and body["start"] == "t120"
    mxget(url, b.c.access_token, f"/rooms/{room_id(gid)}/messages", 400, dir="x")
    mxget(url, b.c.access_token, f"/rooms/{room_id(gid)}/messages", 400, dir="b", **{"from": "zz"})


def test_state_members_event_and_context(url, nio):
    alice, bob, eve = register(url), register(url), register(url)
    gid = make_group(alice, admins=[bob], name="readers")
    m = post(alice, gid, "first")
    post(bob, gid, "second")
    b = login(nio, bob)
    rid = room_id(gid)
    st = b(b.c.room_get_state(rid))
    assert isinstance(st, RoomGetStateResponse), st
    types = {e["type"] for e in st.events}
    assert {"m.room.create", "m.room.power_levels", "m.room.name", "m.room.member", "m.room.join_rules",
            "m.room.history_visibility", "org.qun.group"} <= types
    tok = b.c.access_token
    assert mxget(url, tok, f"/rooms/{rid}/state/m.room.name/") == {"name": "readers"}
    assert mxget(url, tok, f"/rooms/{rid}/state/m.room.name") == {"name": "readers"}
    pl = mxget(url, tok, f"/rooms/{rid}/state/m.room.power_levels/")
    assert pl["users"] == {mxid(alice): 100, mxid(bob): 50} and pl["events"]["m.room.tombstone"] == 101
    me = mxget(url, tok, f"/rooms/{rid}/state/m.room.member/{mxid(bob)}")
    assert me["membership"] == "join"
    mxget(url, tok, f"/rooms/{rid}/state/m.room.tombstone/", 404)
    members = mxget(url, tok, f"/rooms/{rid}/members")["chunk"]
    assert sorted(e["state_key"] for e in members) == sorted([mxid(alice), mxid(bob)])
    jm = b(b.c.joined_members(rid))
    assert isinstance(jm, JoinedMembersResponse), jm
    assert sorted(x.user_id for x in jm.members) == sorted([mxid(alice), mxid(bob)])
    raw = mxget(url, tok, f"/rooms/{rid}/joined_members")
    assert raw["joined"][mxid(alice)] == {"display_name": alice.username, "avatar_url": None}
    jr = b(b.c.joined_rooms())
    assert isinstance(jr, JoinedRoomsResponse) and rid in jr.rooms
    ev = mxget(url, tok, f"/rooms/{rid}/event/{quote('$' + gid + '.m' + str(m['seq']))}")
    assert ev["content"]["body"] == "first" and ev["sender"] == mxid(alice)
    assert mxget(url, tok, f"/rooms/{rid}/event/${gid}.create")["type"] == "m.room.create"
    mxget(url, tok, f"/rooms/{rid}/event/${gid}.m999", 404)
    mxget(url, tok, f"/rooms/{rid}/event/$g_other.m1", 404)
    ctx = mxget(url, tok, f"/rooms/{rid}/context/${gid}.m2", limit=4)
    assert ctx["event"]["content"]["body"] == "second"
    assert [e["content"]["body"] for e in ctx["events_before"]] == ["first"] and ctx["events_after"] == []
    assert ctx["start"] == "t0" and ctx["end"] == "t2" and ctx["state"]
    # Not a member, unknown rooms, other servers, mangled ids: 403 "not in this room".
    e = login(nio, eve)
    for room in (rid, room_id("g_nosuchgroup"), f"!{gid}:elsewhere.example", "garbage", "!:qun.test"):
        for path in ("/messages", "/state", "/members", "/joined_members", "/state/m.room.name/"):
            body = mxget(url, e.c.access_token, f"/rooms/{quote(room)}{path}", 403)
            assert body["errcode"] == "M_FORBIDDEN", body
    assert isinstance(e(e.c.room_messages(rid, start="t0")), RoomMessagesError)
    # Percent-encoded and raw room ids read the same.
    assert mxget(url, tok, f"/rooms/{quote(rid, safe='')}/state/m.room.name/") == {"name": "readers"}
    assert mxget(url, tok, f"/rooms/{rid}/joined_members")["joined"]


def dissolve(owner, gid, **extra):
    p = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "keep", **extra}), 200)
    return owner.post(f"/v1/groups/{gid}/dissolution", {"messages": "keep", "confirmation_token": p["confirmation_token"],
                                                        "typed_name": p["name"], **extra})


def advance(url, seconds):
    expect(requests.post(url + "/v1/test/clock", json={"advance": seconds}, timeout=10), 200)


def wait_state(owner, gid, state, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        g = owner.get(f"/v1/groups/{gid}")
        if g.status_code == 200 and g.json()["state"] == state:
            return
        time.sleep(0.2)
    raise AssertionError(f"{gid} never became {state}")


def kinds(events):
    return [type(e).__name__ for e in events if isinstance(e, (RoomMessageNotice, RoomUpgradeEvent, RoomMemberEvent))]


def sse_replay(client, after, wait=1.0):
    """The events GET /v1/events replays after id `after` (Last-Event-ID), read for `wait` s."""
    host, port = client.url.split("//")[1].split(":")
    s = socket.create_connection((host, int(port)), timeout=wait)
    s.sendall((f"GET /v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {client.token}\r\n"
               f"Last-Event-ID: {after}\r\n\r\n").encode())
    data = b""
    try:
        while True:
            got = s.recv(65536)
            if not got:
                break
            data += got
    except socket.timeout:
        pass
    s.close()
    return [line[7:] for line in data.decode(errors="replace").split("\n") if line.startswith("event: ")]


@pytest.fixture
def own_nio(own_server, loop):
    """nio clients of the test's own server, closed at the end."""
    made = []

    def make(user):
        n = Nio(loop, own_server.url, user.username)
        made.append(n)
        return n

    yield make
    for n in made:
        n.close()


def test_dissolution_with_successor_then_restore(own_server, own_nio):
    url, nio = own_server.url, own_nio
    alice, bob = register(url), register(url)
    gid = make_group(alice, admins=[bob], name="book club")
    rid = room_id(gid)
    post(alice, gid, "before")
    b, a = login(nio, bob), login(nio, alice)
    s0, a0 = sync(b), sync(a)
    sse0 = int(s0.next_batch[1:])
    expect(dissolve(alice, gid, successor_name="book club 2"), 202)
    r1 = sync(b, since=s0.next_batch)
    notices = [e for e in r1.rooms.join[rid].timeline.events if isinstance(e, RoomMessageNotice)]
    assert notices and "dissolved on" in notices[-1].body
    assert notices[-1].source["content"]["org.qun.dissolution"]["dissolves_at"] > 0
    post(bob, gid, "still here")  # full access while pending
    advance(url, 61)
    wait_state(alice, gid, "dissolved")
    r2 = sync(b, since=r1.next_batch)
    assert rid in r2.rooms.leave and rid not in r2.rooms.join
    tl = r2.rooms.leave[rid].timeline.events
    ups = [e for e in tl if isinstance(e, RoomUpgradeEvent)]
    assert ups and ups[0].replacement_room.startswith("!g_")
    succ = ups[0].replacement_room
    last = tl[-1]
    assert isinstance(last, RoomMemberEvent) and last.membership == "leave" and last.state_key == mxid(bob)
    assert last.sender == mxid(alice) and "dissolved" in last.content["reason"]
    assert kinds(tl)[-2:] == ["RoomUpgradeEvent", "RoomMemberEvent"]
    new = r2.rooms.join[succ]
    create = [e for e in new.state + new.timeline.events if isinstance(e, RoomCreateEvent)][0]
    assert create.source["content"]["predecessor"]["room_id"] == rid
    pl = [e for e in new.state + new.timeline.events if isinstance(e, PowerLevelsEvent)][0]
    assert pl.power_levels.users[mxid(bob)] == 50
    # Members lose the old room; the owner keeps a locked, read-only view.
    gone = b(b.c.room_messages(rid, start="t0"))
    assert isinstance(gone, RoomMessagesError) and gone.status_code == "M_FORBIDDEN"
    body = mxget(url, b.c.access_token, f"/rooms/{rid}/messages", 403)
    assert body["org.qun.code"] == "GROUP_GONE" and body["org.qun.successor"] == succ
    ra = sync(a, since=a0.next_batch)
    assert rid in ra.rooms.join
    assert a.c.rooms[rid].replacement_room == succ
    locked = mxget(url, a.c.access_token, f"/rooms/{rid}/state/m.room.power_levels/")
    assert locked["events_default"] == 101 and locked["kick"] == 101
    assert len(mxget(url, a.c.access_token, f"/rooms/{rid}/messages")["chunk"]) >= 2
    # The SSE stream saw the same sequence.
    seen = sse_replay(bob, sse0)
    assert "message.created" in seen and "dissolution.pending" in seen and "group.dissolved" in seen
    assert seen.index("dissolution.pending") < seen.index("group.dissolved")
    # Restore within the grace: the room is back in join.
    expect(alice.post(f"/v1/groups/{gid}/restore", {"password": "correct horse"}), 200)
    r3 = sync(b, since=r2.next_batch)
    assert rid in r3.rooms.join
    back = r3.rooms.join[rid]
    joins = [e for e in back.timeline.events if isinstance(e, RoomMemberEvent) and e.state_key == mxid(bob)]
    assert joins and joins[-1].membership == "join"
    post(bob, gid, "back again")
    r4 = sync(b, since=r3.next_batch)
    assert [e.body for e in r4.rooms.join[rid].timeline.events if isinstance(e, RoomMessageText)] == ["back again"]


def test_dissolution_without_successor_and_cancel(own_server, own_nio):
    url, nio = own_server.url, own_nio
    alice, bob = register(url), register(url)
    keep = make_group(alice, members=[bob], name="kept")
    gone = make_group(alice, members=[bob], name="gone")
    b = login(nio, bob)
    s0 = sync(b)
    expect(dissolve(alice, keep), 202)
    r1 = sync(b, since=s0.next_batch)
    assert [e for e in r1.rooms.join[room_id(keep)].timeline.events if isinstance(e, RoomMessageNotice)]
    expect(alice.delete(f"/v1/groups/{keep}/dissolution"), 200)
    r2 = sync(b, since=r1.next_batch)
    assert room_id(keep) in r2.rooms.join and room_id(keep) not in r2.rooms.leave
    expect(dissolve(alice, gone), 202)
    advance(url, 61)
    wait_state(alice, gone, "dissolved")
    r3 = sync(b, since=r2.next_batch)
    tl = r3.rooms.leave[room_id(gone)].timeline.events
    assert not [e for e in tl if isinstance(e, RoomUpgradeEvent)]
    last = tl[-1]
    assert isinstance(last, RoomMemberEvent) and last.membership == "leave" and last.sender == mxid(alice)
    assert room_id(keep) in b(b.c.joined_rooms()).rooms
    assert room_id(gone) not in b(b.c.joined_rooms()).rooms
    assert SERVER_NAME in last.sender


def test_a_since_below_the_horizon_starts_over(own_server, own_nio):
    url, nio = own_server.url, own_nio
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    b = login(nio, bob)
    s0 = sync(b)
    post(alice, gid, "old")
    s1 = sync(b, since=s0.next_batch)
    old = int(s0.next_batch[1:])
    advance(url, 86400 + 601)  # past the 24 h retention and a housekeeping period
    deadline = time.monotonic() + 15
    while "stream.resync" not in sse_replay(bob, old, wait=0.5):
        assert time.monotonic() < deadline, "housekeeping did not run"
    # The old position is past the horizon: an initial sync, limited, with the room whole.
    r = sync(b, since=s0.next_batch)
    room = r.rooms.join[room_id(gid)]
    assert room.timeline.limited
    assert any(isinstance(e, RoomCreateEvent) for e in room.state + room.timeline.events)
    assert [e.body for e in room.timeline.events if isinstance(e, RoomMessageText)] == ["old"]
    # A recent position still gives a plain incremental answer.
    post(alice, gid, "new")
    r2 = sync(b, since=r.next_batch)
    assert [e.body for e in r2.rooms.join[room_id(gid)].timeline.events
            if isinstance(e, RoomMessageText)] == ["new"]
    assert s1.next_batch != r2.next_batch


def test_messages_merge_state_changes_by_position(url, nio):
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob], name="before")
    post(alice, gid, "a")
    expect(alice.patch(f"/v1/groups/{gid}", {"name": "after"}), 200)
    expect(alice.patch(f"/v1/groups/{gid}/members/{bob.openid}", {"role": "admin"}), 200)
    post(alice, gid, "b")
    b = login(nio, bob)
    tok = b.c.access_token
    chunk = mxget(url, tok, f"/rooms/{room_id(gid)}/messages", dir="b", limit=10)["chunk"]
    kinds = [e["type"] for e in chunk]
    assert kinds[:4] == ["m.room.message", "m.room.power_levels", "m.room.name", "m.room.message"], kinds
    assert chunk[2]["content"] == {"name": "after"} and chunk[1]["content"]["users"][mxid(bob)] == 50
    # Paged one message at a time, each change shows once.
    seen, token = [], None
    while True:
        params = {"dir": "b", "limit": 1}
        if token:
            params["from"] = token
        page = mxget(url, tok, f"/rooms/{room_id(gid)}/messages", **params)
        seen += [e["event_id"] for e in page["chunk"]]
        if "end" not in page:
            break
        token = page["end"]
    assert len(seen) == len(set(seen))
    assert [e for e in seen if ".e" in e and e.endswith(tuple("0123456789"))]
    fwd = mxget(url, tok, f"/rooms/{room_id(gid)}/messages", dir="f", limit=10, **{"from": "t0"})["chunk"]
    assert [e["type"] for e in fwd] == ["m.room.member", "m.room.member", "m.room.message", "m.room.name",
                                        "m.room.power_levels", "m.room.message"]
