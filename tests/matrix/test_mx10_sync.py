# SPDX-License-Identifier: MIT
"""MATRIX.md 4.1 cases 4, 5 (second half), 6, 8, 9 (first half), 10-12 as far as
rendering goes, and 15: /sync, initial and incremental, its long-poll, and how roles,
kicks and dissolutions show in it; bad input never 5xx."""
import asyncio
import re
import threading
import time

import requests
from nio import SyncResponse
from nio.events import (PowerLevelsEvent, RoomCreateEvent, RoomMemberEvent, RoomMessageNotice,
                        RoomMessageText, RoomNameEvent, RoomUpgradeEvent)

from conftest import SERVER_NAME, expect, make_group, mxid, register, room_id

SYNC = "/_matrix/client/v3/sync"


def login(nio, user):
    n = nio(user)
    n.login()
    return n


def sync(n, **kw):
    r = n(n.c.sync(**kw))
    assert isinstance(r, SyncResponse), r
    return r


def raw_sync(url, token, **params):
    r = requests.get(url + SYNC, params=dict(params, access_token=token), timeout=40)
    assert r.status_code == 200, r.text[:400]
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    return r.json()


def post(c, gid, text):
    return expect(c.post(f"/v1/groups/{gid}/messages", {"text": text}), 201)


def texts(events):
    return [e.body for e in events if isinstance(e, (RoomMessageText, RoomMessageNotice))]


def test_initial_sync_renders_state_and_timeline(url, nio):
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob], name="book club")
    quiet = make_group(alice, members=[bob], name="quiet")  # no messages at all
    post(alice, gid, "hello bob")
    b = login(nio, bob)
    r = sync(b, full_state=True)
    assert isinstance(r.next_batch, str) and r.next_batch.startswith("s")
    room = r.rooms.join[room_id(gid)]
    state = room.state + room.timeline.events
    create = [e for e in state if isinstance(e, RoomCreateEvent)]
    assert create and create[0].creator == mxid(alice) and create[0].room_version == "10"
    pl = [e for e in state if isinstance(e, PowerLevelsEvent)][0]
    assert pl.power_levels.users[mxid(alice)] == 100
    assert pl.power_levels.defaults.ban == 101 and pl.power_levels.defaults.kick == 50
    assert [e.name for e in state if isinstance(e, RoomNameEvent)] == ["book club"]
    assert texts(room.timeline.events) == ["hello bob"]
    assert room.timeline.events, "a joined room's timeline is never empty"
    members = {e.state_key: e.membership for e in state if isinstance(e, RoomMemberEvent)}
    assert members == {mxid(alice): "join", mxid(bob): "join"}
    # A group without messages: the timeline holds its creation, not nothing.
    q = r.rooms.join[room_id(quiet)]
    assert any(isinstance(e, RoomCreateEvent) for e in q.timeline.events)
    assert q.summary.joined_member_count == 2 and mxid(alice) in q.summary.heroes
    # nio's room model agrees.
    assert b.c.rooms[room_id(gid)].power_levels.get_user_level(mxid(alice)) == 100
    assert b.c.rooms[room_id(gid)].name == "book club"
    # Raw shape: string tokens, event fields, the limit of a filter.
    for i in range(12):
        post(alice, gid, f"m{i}")
    body = raw_sync(url, b.c.access_token, filter='{"room":{"timeline":{"limit":5}}}')
    tl = body["rooms"]["join"][room_id(gid)]["timeline"]
    assert len(tl["events"]) == 5 and tl["limited"] is True and tl["prev_batch"].startswith("t")
    for e in tl["events"]:
        assert e["event_id"].startswith(f"${gid}.m") and e["sender"].endswith(":" + SERVER_NAME)
        assert e["origin_server_ts"] > 10**12 and e["type"] == "m.room.message"
    assert [e["content"]["body"] for e in tl["events"]] == [f"m{i}" for i in range(7, 12)]


def test_incremental_sync_sees_v1_posts(url, nio):
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    b = login(nio, bob)
    first = sync(b)
    post(alice, gid, "from v1")
    r = sync(b, since=first.next_batch)
    assert texts(r.rooms.join[room_id(gid)].timeline.events) == ["from v1"]
    again = sync(b, since=r.next_batch)
    assert room_id(gid) not in again.rooms.join
    # A group made after the first sync arrives whole.
    g2 = make_group(alice, members=[bob], name="later")
    r2 = sync(b, since=again.next_batch)
    later = r2.rooms.join[room_id(g2)]
    assert any(isinstance(e, RoomCreateEvent) for e in later.state + later.timeline.events)


def test_long_poll_wakes_and_times_out(url, nio, loop):
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    b = login(nio, bob)
    first = sync(b)

    async def poll_and_post():
        task = asyncio.ensure_future(b.c.sync(timeout=20000, since=first.next_batch))
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        await loop.run_in_executor(None, post, alice, gid, "wake up")
        r = await task
        return r, time.monotonic() - t0

    r, took = loop.run_until_complete(poll_and_post())
    assert isinstance(r, SyncResponse) and took < 2, took
    assert texts(r.rooms.join[room_id(gid)].timeline.events) == ["wake up"]
    t0 = time.monotonic()
    quiet = sync(b, timeout=3000, since=r.next_batch)
    took = time.monotonic() - t0
    assert 2.5 < took < 6, took
    assert isinstance(quiet.next_batch, str) and not quiet.rooms.join and not quiet.rooms.leave
    # Events of other people's groups do not wake it; the parked count shows in /metrics.
    carol = register(url)
    other = make_group(carol)

    async def poll_other():
        task = asyncio.ensure_future(b.c.sync(timeout=2000, since=quiet.next_batch))
        await asyncio.sleep(0.5)
        m = await loop.run_in_executor(None, lambda: requests.get(url + "/metrics").text)
        await loop.run_in_executor(None, post, carol, other, "not for bob")
        t0 = time.monotonic()
        res = await task
        return res, time.monotonic() - t0, m

    r3, rest, metrics = loop.run_until_complete(poll_other())
    assert rest > 0.8 and not r3.rooms.join
    assert "qun_mx_sync_parked 1" in metrics


def test_one_wake_answers_each_parked_sync_as_its_own(url, nio):
    """A post wakes every parked sync at once, and the answers of one wake share what
    they read alike (bench/README.md, "One snapshot per wake"): each still says what is
    its own.  Only the sending device's answers carry the transaction id; eight parked
    requests of four devices of two users make some share a loop with the sender's."""
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    rid = room_id(gid)
    devices = [login(nio, alice), login(nio, alice), login(nio, bob), login(nio, bob)]
    since = [sync(d).next_batch for d in devices]
    order = [0, 2, 1, 3, 0, 2, 0, 1]  # device of each parked request
    got = {}

    def park(i):
        d = order[i]
        got[i] = raw_sync(url, devices[d].c.access_token, since=since[d], timeout=20000)

    def parked():  # a counter: another test's sync that ends meanwhile does not lower it
        text = requests.get(url + "/metrics", timeout=10).text
        return int(re.search(r"^qun_mx_sync_parked_total (\d+)$", text, re.M).group(1))

    before = parked()
    threads = [threading.Thread(target=park, args=(i,)) for i in range(len(order))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while parked() < before + len(order):
        assert time.monotonic() < deadline, "the syncs did not park"
        time.sleep(0.05)
    tok = devices[0].c.access_token
    r = requests.put(f"{url}/_matrix/client/v3/rooms/{rid}/send/m.room.message/txn-wake-1",
                     params={"access_token": tok}, json={"msgtype": "m.text", "body": "one wake"}, timeout=10)
    assert r.status_code == 200, r.text
    event_id = r.json()["event_id"]
    for t in threads:
        t.join(30)
    assert len(got) == len(order)
    for i, d in enumerate(order):
        events = [e for e in got[i]["rooms"]["join"][rid]["timeline"]["events"] if e["event_id"] == event_id]
        assert len(events) == 1, (i, got[i])
        e = events[0]
        assert e["content"] == {"msgtype": "m.text", "body": "one wake"} and e["sender"] == mxid(alice)
        if d == 0:
            assert e["unsigned"].get("transaction_id") == "txn-wake-1", (i, e)
        else:
            assert "transaction_id" not in e["unsigned"], (i, d, e)


def test_role_change_shows_as_power_levels(url, nio):
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    b = login(nio, bob)
    first = sync(b)
    expect(alice.patch(f"/v1/groups/{gid}/members/{bob.openid}", {"role": "admin"}), 200)
    r = sync(b, since=first.next_batch)
    room = r.rooms.join[room_id(gid)]
    pls = [e for e in room.state + room.timeline.events if isinstance(e, PowerLevelsEvent)]
    assert pls and pls[-1].power_levels.users[mxid(bob)] == 50
    assert b.c.rooms[room_id(gid)].power_levels.get_user_level(mxid(bob)) == 50


def test_kick_shows_in_leave(url, nio):
    alice, carol = register(url), register(url)
    gid = make_group(alice, members=[carol])
    c = login(nio, carol)
    first = sync(c)
    r = alice.req("DELETE", f"/v1/groups/{gid}/members/{carol.openid}", {"reason": "spam"})
    assert r.status_code in (200, 204), r.text
    res = sync(c, since=first.next_batch)
    assert room_id(gid) in res.rooms.leave and room_id(gid) not in res.rooms.join
    last = res.rooms.leave[room_id(gid)].timeline.events[-1]
    assert isinstance(last, RoomMemberEvent) and last.membership == "leave"
    assert last.state_key == mxid(carol)
    assert last.sender == mxid(alice) and last.content.get("reason") == "spam"
    # Leaving by oneself: sender is the member, no reason.
    bob = register(url)
    expect(alice.post(f"/v1/groups/{gid}/members", {"openid": bob.openid}), 201)
    b = login(nio, bob)
    b0 = sync(b)
    r = bob.post(f"/v1/groups/{gid}/leave", {})
    assert r.status_code in (200, 204), r.text
    last = sync(b, since=b0.next_batch).rooms.leave[room_id(gid)].timeline.events[-1]
    assert last.membership == "leave" and last.sender == mxid(bob) and "reason" not in last.content


def test_bad_input_is_never_5xx(url, nio):
    alice = register(url)
    make_group(alice)  # something to say, so that no request here waits 30 s
    n = login(nio, alice)
    tok = n.c.access_token
    base = url + SYNC
    for params in ({"since": "garbage"}, {"since": "s99999999999"}, {"since": "t5"}, {"timeout": "-5"},
                   {"timeout": "99999999999999999999", "since": "s0"}, {"timeout": "abc"},
                   {"filter": "{not json"}, {"filter": "987654"}, {"filter": "abc"}, {"full_state": "yes"}):
        r = requests.get(base, params=dict(params, access_token=tok), timeout=40)
        assert r.status_code < 500, (params, r.status_code, r.text[:300])
        if r.status_code == 200:
            assert isinstance(r.json()["next_batch"], str)
        else:
            assert r.json()["errcode"].startswith("M_")
    # Garbage since: an initial sync, limited.
    body = raw_sync(url, tok, since="garbage")
    assert body["next_batch"].startswith("s")


def test_display_name_change_shows_as_member_event(url, nio):
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    a = login(nio, alice)
    first = sync(a)
    expect(bob.patch("/v1/me", {"display_name": "Bobby Tables"}), 200)
    r = sync(a, since=first.next_batch)
    ev = [e for e in r.rooms.join[room_id(gid)].timeline.events if isinstance(e, RoomMemberEvent)]
    assert ev and ev[-1].state_key == mxid(bob) and ev[-1].content["displayname"] == "Bobby Tables"
    assert ev[-1].membership == "join"
    jm = requests.get(url + f"/_matrix/client/v3/rooms/{room_id(gid)}/joined_members",
                      params={"access_token": a.c.access_token}, timeout=30).json()
    assert jm["joined"][mxid(bob)]["display_name"] == "Bobby Tables"


def test_invitations_show_in_invite_then_join_or_leave(url, nio):
    alice, bob = register(url), register(url)
    gid = make_group(alice, name="invited")
    other = make_group(alice, name="declined")
    a, b = login(nio, alice), login(nio, bob)
    a0, b0 = sync(a), sync(b)
    inv = expect(alice.post(f"/v1/groups/{gid}/invitations", {"openid": bob.openid}), 201)
    inv2 = expect(alice.post(f"/v1/groups/{other}/invitations", {"openid": bob.openid}), 201)
    r = sync(b, since=b0.next_batch)
    assert set(r.rooms.invite) == {room_id(gid), room_id(other)}
    st = r.rooms.invite[room_id(gid)].invite_state
    mine = [e for e in st if getattr(e, "state_key", None) == mxid(bob)]
    assert mine and mine[-1].membership == "invite" and mine[-1].sender == mxid(alice)
    assert b.c.invited_rooms[room_id(gid)].name == "invited"
    # The initial sync lists them too; the members see an invite member event.
    assert set(sync(b, full_state=True).rooms.invite) == {room_id(gid), room_id(other)}
    ra = sync(a, since=a0.next_batch)
    ev = [e for e in ra.rooms.join[room_id(gid)].timeline.events if isinstance(e, RoomMemberEvent)]
    assert ev and ev[-1].membership == "invite" and ev[-1].state_key == mxid(bob)
    expect(bob.post(f"/v1/invitations/{inv['id']}/accept", {}), 200)
    expect(bob.post(f"/v1/invitations/{inv2['id']}/decline", {}), 200)
    r2 = sync(b, since=r.next_batch)
    assert room_id(gid) in r2.rooms.join and not r2.rooms.invite
    assert room_id(other) in r2.rooms.leave
    last = r2.rooms.leave[room_id(other)].timeline.events[-1]
    assert isinstance(last, RoomMemberEvent) and last.membership == "leave" and last.state_key == mxid(bob)


def test_logout_ends_a_parked_sync(url, nio, loop):
    alice = register(url)
    make_group(alice)
    a = login(nio, alice)
    first = sync(a)
    tok = a.c.access_token

    async def park_then_logout():
        fut = loop.run_in_executor(None, lambda: requests.get(
            url + SYNC, params={"since": first.next_batch, "timeout": 20000, "access_token": tok}, timeout=30))
        await asyncio.sleep(0.5)
        await loop.run_in_executor(None, lambda: requests.post(
            url + "/_matrix/client/v3/logout", params={"access_token": tok}, json={}, timeout=10))
        t0 = time.monotonic()
        r = await fut
        return r, time.monotonic() - t0

    r, took = loop.run_until_complete(park_then_logout())
    assert r.status_code == 401 and r.json()["errcode"] == "M_UNKNOWN_TOKEN" and took < 2, (r.text, took)
