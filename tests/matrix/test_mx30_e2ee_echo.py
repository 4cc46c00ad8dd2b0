# SPDX-License-Identifier: MIT
"""MATRIX.md 4.1 case 14 (a client that wants end-to-end encryption still works: its key
upload fails as a response, not an exception, and it keeps syncing) and the second half
of case 5 (a sent message's echo carries unsigned.transaction_id in the sending device's
sync only)."""
import tempfile

from nio import KeysUploadError, LoginResponse, RoomSendResponse, SyncResponse

from conftest import expect, make_group, register, room_id


def test_an_olm_client_survives_the_missing_key_routes(url, nio):
    carol = register(url)
    gid = make_group(carol, name="no e2ee here")
    n = nio(carol, encryption=True, store=tempfile.mkdtemp(prefix="qun-nio-store-"))
    assert isinstance(n.login(), LoginResponse)
    up = n(n.c.keys_upload())
    assert isinstance(up, KeysUploadError), up
    s = n(n.c.sync(timeout=0, full_state=True))
    assert isinstance(s, SyncResponse) and room_id(gid) in s.rooms.join
    expect(carol.post(f"/v1/groups/{gid}/messages", {"text": "plain text still flows"}), 201)
    s2 = n(n.c.sync(timeout=3000, since=s.next_batch))
    assert isinstance(s2, SyncResponse)
    bodies = [getattr(e, "body", None) for e in s2.rooms.join[room_id(gid)].timeline.events]
    assert "plain text still flows" in bodies


def test_the_echo_carries_the_txn_id_only_for_the_sending_device(url, nio):
    dan = register(url)
    gid = make_group(dan, name="two phones")
    rid = room_id(gid)
    one, two = nio(dan), nio(dan)
    assert isinstance(one.login("phone one"), LoginResponse) and isinstance(two.login("phone two"), LoginResponse)
    assert one.c.device_id != two.c.device_id
    s1, s2 = one(one.c.sync(timeout=0)), two(two.c.sync(timeout=0))
    sent = one(one.c.room_send(rid, "m.room.message", {"msgtype": "m.text", "body": "from phone one"},
                               tx_id="txn-echo-1"))
    assert isinstance(sent, RoomSendResponse)
    e1 = [e for e in one(one.c.sync(timeout=3000, since=s1.next_batch)).rooms.join[rid].timeline.events
          if e.event_id == sent.event_id]
    e2 = [e for e in two(two.c.sync(timeout=3000, since=s2.next_batch)).rooms.join[rid].timeline.events
          if e.event_id == sent.event_id]
    assert e1 and e1[0].source.get("unsigned", {}).get("transaction_id") == "txn-echo-1"
    assert e2 and "transaction_id" not in e2[0].source.get("unsigned", {})
