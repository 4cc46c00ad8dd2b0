# SPDX-License-Identifier: MIT
"""Archive then dissolve, one request: POST /v1/groups/{id}/dissolution with
`"archive": {"recipients": [age1...]}` leaves the group `active` (dissolution_state
`archiving`) until an export of the whole group is complete and its digest ledgered;
only then does the dissolution go on (here to `pending`), its ledger entry naming the
archive.  An export that fails — here the server's `export_quota_bytes` is smaller
than the archive — leaves the group `active` with nothing ledgered as requested or
dissolved; the failure shows in the status, the ledger and an event."""
import hashlib
import json
import os
import time

import pytest

from conftest import Server, expect, make_group, register, stop_clean
from test_14_events import Stream
from test_31_export import AGE, AGE_KEYGEN, keygen, open_archive, check_manifest

pytestmark = pytest.mark.skipif(not AGE or not AGE_KEYGEN, reason="Debian's age and age-keygen are needed")


def preview(owner, gid, **params):
    body = {"messages": "delete", **params}
    return expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", body), 200)["confirmation_token"]


def typed(owner, gid):
    """The group's name, typed back as a cli session must (policies/verification.json)."""
    return expect(owner.get(f"/v1/groups/{gid}"), 200)["name"]


def request(owner, gid, **params):
    token = preview(owner, gid, **params)
    return owner.post(f"/v1/groups/{gid}/dissolution", {"messages": "delete", "confirmation_token": token,
                                                        "typed_name": typed(owner, gid), **params})


def settle(owner, gid, timeout=30):
    """The dissolution status once it no longer waits for its archive."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = expect(owner.get(f"/v1/groups/{gid}/dissolution"), 200)
        if st["dissolution_state"] != "archiving":
            return st
        assert st["state"] == "active" and st["archive"]["state"] == "running"
        time.sleep(0.1)
    raise AssertionError("still archiving")


def history(owner, gid):
    return [json.loads(h["entry"]) | {"event": h["event"]}
            for h in expect(owner.get(f"/v1/groups/{gid}/history?limit=200"), 200)["items"]]


def seed(owner, members, gid, n=40):
    for i in range(n):
        expect(members[i % len(members)].post(f"/v1/groups/{gid}/messages",
                                               {"text": f"{i} " + os.urandom(48).hex()}), 201)


@pytest.fixture(scope="module")
def srv():
    s = Server(env={"QUN_TEST_CLOCK": "1"}).start()
    yield s
    stop_clean(s)


@pytest.fixture(scope="module")
def tight():
    """A server whose exports may write at most 4 KiB."""
    s = Server(env={"QUN_TEST_CLOCK": "1"}, extra=["--set", "export_quota_bytes=4096"]).start()
    yield s
    stop_clean(s)


def test_the_dissolution_waits_for_the_ledgered_archive(srv, tmp_path):
    owner, alice = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[alice], name="archive me")
    seed(owner, [owner, alice], gid)
    f = expect(alice.post(f"/v1/groups/{gid}/files?name=a.bin", raw=os.urandom(100000)), 201)
    key, recipient = keygen(tmp_path, "k.txt")
    archive = {"recipients": [recipient]}

    # The confirmation covers the archive too: a token previewed without it is refused.
    token = preview(owner, gid)
    expect(owner.post(f"/v1/groups/{gid}/dissolution", {"messages": "delete", "confirmation_token": token,
                                                        "typed_name": typed(owner, gid), "archive": archive}), 422,
           "CONFIRMATION_INVALID")

    st = expect(request(owner, gid, archive=archive), 202)
    assert st["state"] == "active" and st["dissolution_state"] == "archiving", st
    xid = st["archive"]["export"]
    assert xid.startswith("x_") and st["archive"]["state"] == "running"
    # While it archives, the group is as it was, and a second request is refused.
    expect(request(owner, gid), 409, "DISSOLUTION_PENDING")

    st = settle(owner, gid)
    assert st["dissolution_state"] == "pending" and st["state"] == "pending", st
    assert st["archive"]["state"] == "done" and st["archive"]["export"] == xid
    x = expect(owner.get(f"/v1/exports/{xid}"), 200)
    assert x["state"] == "done" and x["scope"] == "group"
    data = owner.get(f"/v1/exports/{xid}/download").content
    assert hashlib.sha256(data).hexdigest() == x["digest"] == st["archive"]["digest"]
    dest = open_archive(data, key, tmp_path / "out")
    m = check_manifest(dest)
    assert m["counts"]["messages"] == 40 + 1 and (dest / "files" / f["digest"]).exists()

    # The ledger: the archive first, then the request that names it.
    h = history(owner, gid)
    events = [e["event"] for e in h]
    made, req = events.index("export.made"), events.index("dissolution.requested")
    assert made < req and "dissolution.archive_failed" not in events
    assert h[req]["archive"] == {"export": xid, "digest": x["digest"], "ledger_index": x["ledger_index"]}
    assert h[made]["seq"] == x["ledger_index"] and h[req]["new_state"] == "pending"

    # It then dissolves as any dissolution does.
    expect(owner.post("/v1/test/clock", {"advance": 3 * 86400}), 200)
    deadline = time.time() + 15
    while expect(owner.get(f"/v1/groups/{gid}/dissolution"), 200)["state"] != "dissolved":
        assert time.time() < deadline
        time.sleep(0.1)


def test_bad_archive_parameters_spend_nothing(srv, tmp_path):
    owner = register(srv.url)
    gid = make_group(owner)
    _, recipient = keygen(tmp_path, "k.txt")
    for archive, status, code, field in [
            ({"recipients": ["age1nope"]}, 422, "AGE_KEY_INVALID", "archive.recipients[0]"),
            ({"recipients": []}, 422, "FIELD_INVALID", "archive.recipients"),
            ({}, 422, "FIELD_INVALID", "archive.recipients"),
            ({"recipients": [recipient], "to": "x"}, 422, "FIELD_UNKNOWN", "archive")]:
        token = preview(owner, gid, archive=archive)
        p = expect(owner.post(f"/v1/groups/{gid}/dissolution", {"messages": "delete", "confirmation_token": token,
                                                                "typed_name": typed(owner, gid), "archive": archive}),
                   status, code)
        assert p.get("field") == field, p
    p = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "delete", "archive": "age1x"}), 422,
               "FIELD_INVALID")
    assert p["field"] == "archive"
    st = expect(owner.get(f"/v1/groups/{gid}"), 200)
    assert st["state"] == "active"
    expect(owner.get(f"/v1/groups/{gid}/dissolution"), 404, "DISSOLUTION_NOT_FOUND")
    # A region whose policy forbids export cannot archive then dissolve.
    cn = expect(owner.post("/v1/groups", {"name": "z", "kind": "cross_border", "regions": ["eu", "cn"]}), 201)["id"]
    expect(request(owner, cn, archive={"recipients": [recipient]}), 403, "EXPORT_FORBIDDEN")
    assert expect(owner.get(f"/v1/groups/{cn}"), 200)["state"] == "active"


def test_a_failed_archive_leaves_the_group_active(tight, tmp_path):
    owner, alice = register(tight.url), register(tight.url)
    gid = make_group(owner, members=[alice], name="too big")
    seed(owner, [owner, alice], gid, n=200)  # ~20 KB of random hex: more than the 4 KiB quota
    before = history(owner, gid)
    _, recipient = keygen(tmp_path, "k.txt")
    stream = Stream(owner)
    try:
        st = expect(request(owner, gid, archive={"recipients": [recipient]}), 202)
        assert st["dissolution_state"] == "archiving" and st["state"] == "active"
        ev = stream.wait("dissolution.archive_failed", group=gid, timeout=30)
        assert ev["data"]["state"] == "active" and "EXPORT_QUOTA_EXCEEDED" in ev["data"]["error"]
    finally:
        stream.close()
    st = settle(owner, gid)
    assert st["state"] == "active" and st["dissolution_state"] == "failed", st
    assert st["archive"]["state"] == "failed" and "EXPORT_QUOTA_EXCEEDED" in st["archive"]["error"]
    assert st["due_at"] is None and st["dissolved_at"] is None and st["approvals"] == []
    x = expect(owner.get(f"/v1/exports/{st['archive']['export']}"), 200)
    assert x["state"] == "failed" and "export_quota_bytes" in x["error"]
    expect(owner.get(f"/v1/exports/{x['id']}/download"), 409, "EXPORT_NOT_READY")
    assert not [n for n in os.listdir(os.path.join(tight.data, "exports")) if n.startswith(x["id"])]

    # Nothing ledgered as requested or dissolved; the failure is.  (The archive's content
    # seal, export.content, is ledgered before its manifest is written, so before the
    # quota stops the .age file: docs/archive-format.md.)
    after = history(owner, gid)
    new = [e["event"] for e in after[len(before):]]
    assert [e for e in new if e != "export.content"] == ["dissolution.archive_failed"], new
    assert after[-1]["old_state"] == after[-1]["new_state"] == "active" and after[-1]["export"] == x["id"]

    # The group is exactly as usable as before: members post, and a plain request works.
    expect(alice.post(f"/v1/groups/{gid}/messages", {"text": "still here"}), 201)
    st = expect(request(owner, gid), 202)
    assert st["state"] == "pending" and "archive" not in st


def test_cancelling_while_archiving_leaves_the_group_active(srv, tmp_path):
    owner = register(srv.url)
    gid = make_group(owner, name="changed my mind")
    seed(owner, [owner], gid, n=20)
    _, recipient = keygen(tmp_path, "k.txt")
    st = expect(request(owner, gid, archive={"recipients": [recipient]}), 202)
    xid = st["archive"]["export"]
    # Cancelled while archiving or, if the export won the race, during the cooling-off:
    # either way the group ends active and nothing dissolves.
    st = expect(owner.delete(f"/v1/groups/{gid}/dissolution"), 200)
    assert st["state"] == "active" and st["dissolution_state"] == "cancelled"
    deadline = time.time() + 30
    while expect(owner.get(f"/v1/exports/{xid}"), 200)["state"] == "running":
        assert time.time() < deadline
        time.sleep(0.1)
    st = expect(owner.get(f"/v1/groups/{gid}/dissolution"), 200)
    assert st["state"] == "active" and st["dissolution_state"] == "cancelled"
    events = [e["event"] for e in history(owner, gid)]
    assert "dissolution.cancelled" in events and "group.dissolved" not in events
    assert events.count("dissolution.requested") <= 1  # only if the export finished first
