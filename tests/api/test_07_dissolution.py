# SPDX-License-Identifier: MIT
"""Dissolution as the owner and the members live it: an owner-only impact preview,
a confirmation token bound to owner, group and parameters, single use and short
lived; immediate loss of access; a purge that ends with an exact receipt; kept
messages for the owner; file bytes released only when no group needs them; payment
records kept for the retention window while personal bills stay untouched."""
import glob
import hashlib
import os
import sqlite3
import threading
import time

import pytest
import requests

from conftest import Client, Server, all_items, expect, make_group, register, stop_clean

RETENTION = 72 * 3600
# These tests are about tokens and reclamation, so the timers are zero: the dissolution
# is marked as soon as the timer job runs and the purge starts at once.  The timers
# themselves are tested in test_13_governance.py.
FAST = ["--set", "cooling_off=0", "--set", "purge_grace=0"]


@pytest.fixture(scope="module")
def server():
    s = Server(env={"QUN_TEST_CLOCK": "1"}, extra=FAST).start()
    yield s
    stop_clean(s)


class Scene:
    """A group with known content: 4 members, messages, files and paid red packets."""

    def __init__(self, server, n_messages=7):
        url = server.url
        self.server = server
        self.owner, self.admin, self.member, self.member2 = (register(url) for _ in range(4))
        self.gid = make_group(self.owner, admins=[self.admin], members=[self.member, self.member2])
        self.g = f"/v1/groups/{self.gid}"
        self.people = [self.owner, self.admin, self.member, self.member2]
        for i in range(n_messages):
            expect(self.people[i % 4].post(self.g + "/messages", {"text": f"secret message {i}"}), 201)
        self.n_messages = n_messages + 3  # each upload below posts a file message
        # Two files only this group has, and one shared with another group.
        self.own_data = [os.urandom(1000), os.urandom(2345)]
        self.shared_data = b"shared between two groups " + os.urandom(16)
        self.own = [expect(self.member.post(self.g + f"/files?name=f{i}", raw=d), 201)["digest"]
                    for i, d in enumerate(self.own_data)]
        self.shared = expect(self.admin.post(self.g + "/files?name=s", raw=self.shared_data), 201)["digest"]
        self.other = register(url)
        self.other_gid = make_group(self.other)
        expect(self.other.post(f"/v1/groups/{self.other_gid}/files?name=s", raw=self.shared_data), 201)
        # Two red packets, three claims.
        p1 = expect(self.owner.post(self.g + "/payments", {"amount": 100, "shares": 2}), 201)["id"]
        p2 = expect(self.member.post(self.g + "/payments", {"amount": 9, "shares": 3}), 201)["id"]
        expect(self.admin.post(self.g + f"/payments/{p1}/claim"), 201)
        expect(self.member2.post(self.g + f"/payments/{p1}/claim"), 201)
        expect(self.owner.post(self.g + f"/payments/{p2}/claim"), 201)
        self.payments = [p1, p2]
        self.bills = self.all_bills()

    def all_bills(self):
        return {c.openid: all_items(c, "/v1/me/bill") for c in self.people}

    def bytes_total(self):
        return sum(map(len, self.own_data)) + len(self.shared_data)

    def preview(self, messages="delete", who=None):
        return expect((who or self.owner).post(self.g + "/dissolution/preview", {"messages": messages}), 200)

    def dissolve(self, messages="delete"):
        """Request, then wait for the (zero) cooling-off to end: the group is dissolved."""
        p = self.preview(messages)
        out = expect(self.owner.post(self.g + "/dissolution", {"messages": messages, "typed_name": p["name"],
                                                               "confirmation_token": p["confirmation_token"]}), 202)
        assert out["state"] == "pending"
        return wait_for(self.owner, self.gid, lambda st: st["state"] != "pending")

    def blob(self, digest):
        return os.path.exists(os.path.join(self.server.data, "blobs", digest[:2], digest))

    def db_count(self, sql):
        db = sqlite3.connect(f"file:{self.server.data}/qun.db?mode=ro", uri=True)
        try:
            return db.execute(sql, (self.gid,)).fetchone()[0]
        finally:
            db.close()

    def payment_rows(self):
        return self.db_count("SELECT COUNT(*) FROM payments p JOIN groups g ON g.id = p.group_id WHERE g.gid = ?")


def wait_for(owner, gid, pred, timeout=10):
    deadline = time.time() + timeout
    while True:
        st = expect(owner.get(f"/v1/groups/{gid}/dissolution"), 200)
        if pred(st):
            return st
        assert time.time() < deadline, f"dissolution did not get there in {timeout} s: {st}"
        time.sleep(0.1)


def purged(st):
    return st["state"] == "purged"


def test_preview_is_for_the_owner_and_counts_what_is_there(server):
    s = Scene(server)
    expect(s.admin.post(s.g + "/dissolution/preview", {"messages": "delete"}), 403, "FORBIDDEN_ROLE")
    expect(s.member.post(s.g + "/dissolution/preview", {"messages": "delete"}), 403, "FORBIDDEN_ROLE")
    expect(s.other.post(s.g + "/dissolution/preview", {"messages": "delete"}), 404, "GROUP_NOT_FOUND")
    p = s.preview("delete")
    imp = p["impact"]
    assert imp["members"]["count"] == 4
    assert imp["messages"]["count"] == s.n_messages
    assert imp["files"]["count"] == 3 and imp["files"]["bytes"] == s.bytes_total()
    assert imp["payments"]["count"] == 2 and imp["payments"]["retention_seconds"] == RETENTION
    assert imp["bill_lines"]["count"] == 2 + 3
    assert "purged" in imp["messages"]["rule"]
    assert p["params"] == {"messages": "delete"} and p["group"] == s.gid and p["state"] == "active"
    assert p["confirmation_token"] and p["expires_at"] > 0
    keep = s.preview("keep")
    assert "owner" in keep["impact"]["messages"]["rule"]
    assert keep["confirmation_token"] != p["confirmation_token"]
    # Previewing changes nothing.
    assert expect(s.member.get(s.g), 200)["state"] == "active"
    expect(s.member.post(s.g + "/messages", {"text": "still alive"}), 201)


def test_a_request_needs_the_right_token(server):
    s = Scene(server, n_messages=1)
    p = expect(s.owner.post(s.g + "/dissolution", {"messages": "delete"}), 428, "CONFIRMATION_REQUIRED")
    reqs = p["requirements"]
    assert isinstance(reqs, list) and reqs and all(r.get("method") for r in reqs)
    assert "confirm" in [r["method"] for r in reqs]
    # A token for other parameters.
    keep_token = s.preview("keep")["confirmation_token"]
    p = expect(s.owner.post(s.g + "/dissolution", {"messages": "delete", "confirmation_token": keep_token}),
               422, "CONFIRMATION_INVALID")
    assert p["field"] == "confirmation_token"
    # Another owner's token, even one for their own group.
    theirs = expect(s.other.post(f"/v1/groups/{s.other_gid}/dissolution/preview", {"messages": "delete"}),
                    200)["confirmation_token"]
    expect(s.owner.post(s.g + "/dissolution", {"messages": "delete", "confirmation_token": theirs}),
           422, "CONFIRMATION_INVALID")
    # A token of this owner for another of their groups.
    mine_elsewhere = make_group(s.owner)
    elsewhere = expect(s.owner.post(f"/v1/groups/{mine_elsewhere}/dissolution/preview", {"messages": "delete"}),
                       200)["confirmation_token"]
    expect(s.owner.post(s.g + "/dissolution", {"messages": "delete", "confirmation_token": elsewhere}),
           422, "CONFIRMATION_INVALID")
    # Made-up tokens.
    for fake in ["qct_" + "A" * 43, "x", keep_token + "x"]:
        expect(s.owner.post(s.g + "/dissolution", {"messages": "delete", "confirmation_token": fake}),
               422, "CONFIRMATION_INVALID")
    # None of that dissolved anything.
    assert expect(s.member.get(s.g), 200)["state"] == "active"
    expect(s.owner.get(s.g + "/dissolution"), 404, "DISSOLUTION_NOT_FOUND")
    # The other owner's group is untouched and their token still works there.
    expect(s.other.post(f"/v1/groups/{s.other_gid}/dissolution", {"messages": "delete", "typed_name": "team",
                                                                  "confirmation_token": theirs}), 202)


def test_a_used_token_is_worthless(server):
    s = Scene(server, n_messages=1)
    token = s.preview("keep")["confirmation_token"]
    expect(s.owner.post(s.g + "/dissolution", {"messages": "keep", "confirmation_token": token, "typed_name": "team"}), 202)
    wait_for(s.owner, s.gid, lambda st: st["state"] != "pending")
    # Again on the same group: it is gone.  On another group of the same owner: invalid.
    expect(s.owner.post(s.g + "/dissolution", {"messages": "keep", "confirmation_token": token}), 410, "GROUP_GONE")
    g2 = make_group(s.owner)
    expect(s.owner.post(f"/v1/groups/{g2}/dissolution", {"messages": "keep", "confirmation_token": token}),
           422, "CONFIRMATION_INVALID")
    assert expect(s.owner.get(f"/v1/groups/{g2}"), 200)["state"] == "active"
    expect(s.owner.post(s.g + "/dissolution/preview", {"messages": "keep"}), 410, "GROUP_GONE")


def test_racing_requests_with_one_token_dissolve_once(server):
    s = Scene(server, n_messages=1)
    p = s.preview("delete")
    token = p["confirmation_token"]
    answers = []

    def go():
        c = Client(server.url, s.owner.token)
        r = c.post(s.g + "/dissolution", {"messages": "delete", "confirmation_token": token, "typed_name": p["name"]})
        answers.append((r.status_code, r.json().get("code")))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # One wins; the others find it pending (or, if the zero timer already ran, gone).
    assert sorted(answers, key=str)[0] == (202, None)
    assert all(a in ((409, "DISSOLUTION_PENDING"), (410, "GROUP_GONE")) for a in answers[1:] if a != (202, None))
    assert [a[0] for a in answers].count(202) == 1
    st = wait_for(s.owner, s.gid, purged)
    assert st["receipt"]["members_removed"] == 4


def test_an_expired_token_is_refused():
    srv = Server(env={"QUN_TEST_CLOCK": "1"}, extra=FAST).start()
    try:
        s = Scene(srv, n_messages=1)
        token = s.preview("delete")["confirmation_token"]
        expect(requests.post(srv.url + "/v1/test/clock", json={"advance": 601}), 200)
        p = expect(s.owner.post(s.g + "/dissolution", {"messages": "delete", "confirmation_token": token}),
                   422, "CONFIRMATION_INVALID")
        assert "expired" in p["detail"]
        assert expect(s.member.get(s.g), 200)["state"] == "active"
        # A fresh preview works.
        s.dissolve("delete")
    finally:
        stop_clean(srv)


def test_members_lose_access_at_once(server):
    s = Scene(server, n_messages=3)
    out = s.dissolve("delete")
    assert out["state"] in ("dissolved", "purging", "purged") and out["messages"] == "delete"
    assert out["requested_by"] == s.owner.openid and out["dissolved_at"] > 0
    for c in (s.admin, s.member, s.member2):
        for method, path, body in [("GET", "", None), ("GET", "/messages", None), ("GET", "/members", None),
                                   ("GET", "/files", None), ("GET", f"/files/{s.own[0]}", None),
                                   ("GET", "/payments", None), ("GET", "/dissolution", None),
                                   ("POST", "/messages", {"text": "hello?"}),
                                   ("POST", "/payments", {"amount": 1, "shares": 1}),
                                   ("POST", f"/payments/{s.payments[1]}/claim", None),
                                   ("POST", "/leave", None), ("PATCH", "", {"name": "mine now"})]:
            r = c.req(method, s.g + path, body)
            expect(r, 410, "GROUP_GONE")
            assert "secret message" not in r.text
        expect(c.post(s.g + "/files?name=x", raw=b"late upload"), 410, "GROUP_GONE")
    # The owner sees the outcome but cannot use the group either.
    assert expect(s.owner.get(s.g), 200)["state"] in ("dissolved", "purging", "purged")
    expect(s.owner.post(s.g + "/messages", {"text": "hello?"}), 410, "GROUP_GONE")
    expect(s.owner.post(s.g + "/members", {"openid": s.other.openid}), 410, "GROUP_GONE")
    expect(s.owner.post(s.g + "/transfer", {"to": s.admin.openid}), 410, "GROUP_GONE")
    expect(s.owner.delete(s.g + "/dissolution"), 409, "DISSOLUTION_NOT_CANCELLABLE")


def test_without_cooling_off_the_group_is_gone_when_the_owner_is_answered(server):
    """Cooling-off 0 and no notice: the group is marked dissolved in the commit of the
    request itself, so the 202 (which still tells the state the request left) comes
    after the members lost the group, not one scheduler round before."""
    for _ in range(3):  # each time, not by luck of timing
        s = Scene(server, n_messages=1)
        p = s.preview("keep")
        out = expect(s.owner.post(s.g + "/dissolution", {"messages": "keep", "typed_name": p["name"],
                                                         "confirmation_token": p["confirmation_token"]}), 202)
        assert out["state"] == "pending"
        st = expect(s.owner.get(s.g + "/dissolution"), 200)
        assert st["state"] in ("dissolved", "purging", "purged") and st["dissolved_at"] > 0, st
        expect(s.member.get(s.g + "/messages"), 410, "GROUP_GONE")


def test_purge_receipt_with_messages_deleted(server):
    s = Scene(server, n_messages=9)
    s.dissolve("delete")
    st = wait_for(s.owner, s.gid, purged)
    assert st["purged_at"] >= st["dissolved_at"]
    r = st["receipt"]
    assert r["messages_deleted"] == 9 + 3 + 2  # the file messages, the pending and dissolved notices
    assert r["files_removed"] == 3
    assert r["blobs_released"] == 2 and r["cdn_purges_queued"] == 2
    assert r["members_removed"] == 4
    assert "payments_deleted" not in r
    assert expect(s.owner.get(s.g), 200)["state"] == "purged"
    assert expect(s.owner.get(s.g + "/messages"), 200)["items"] == []
    # Bytes only this group had are gone; the shared bytes serve the other group.
    assert not any(s.blob(d) for d in s.own)
    assert s.blob(s.shared)
    r = s.other.get(f"/v1/groups/{s.other_gid}/files/{s.shared}")
    assert r.status_code == 200 and r.content == s.shared_data
    # Payments wait for their retention; bills are untouched.
    assert s.payment_rows() == 2
    jobs = {j["kind"]: j for j in st["jobs"]}
    assert jobs["purge_group"]["state"] == "done"
    assert jobs["purge_payments"]["state"] == "queued"
    assert jobs["purge_payments"]["due_at"] == st["dissolved_at"] + RETENTION
    assert s.all_bills() == s.bills


def test_purge_keeps_messages_for_the_owner(server):
    s = Scene(server, n_messages=5)
    before = all_items(s.owner, s.g + "/messages")
    s.dissolve("keep")
    st = wait_for(s.owner, s.gid, purged)
    assert st["messages"] == "keep"
    assert st["receipt"]["messages_deleted"] == 0 and st["receipt"]["members_removed"] == 4
    kept = all_items(s.owner, s.g + "/messages")
    # A file message no longer shows its file once the purge took the file.
    assert [m for m in kept if m["kind"] != "system"] == [{k: v for k, v in m.items() if k != "file"} for m in before]
    assert [m["kind"] for m in kept[len(before):]] == ["system", "system"]  # the pending and dissolved notices
    assert [m["text"] for m in before] == [f"secret message {i}" for i in range(5)] + ["f0", "f1", "s"]
    # With the memberships gone the owner still reads who wrote what: by username.
    names = {c.openid: c.username for c in s.people}
    assert [m["author_username"] for m in kept[:5]] == [names[s.people[i % 4].openid] for i in range(5)]
    for c in (s.admin, s.member):
        expect(c.get(s.g + "/messages"), 410, "GROUP_GONE")
    expect(s.owner.post(s.g + "/messages", {"text": "read-only"}), 410, "GROUP_GONE")
    # The files still go.
    assert not any(s.blob(d) for d in s.own)


def test_reuploading_released_bytes_elsewhere_works(server):
    s = Scene(server, n_messages=1)
    s.dissolve("delete")
    wait_for(s.owner, s.gid, purged)
    assert not s.blob(s.own[0])
    r = expect(s.other.post(f"/v1/groups/{s.other_gid}/files?name=again", raw=s.own_data[0]), 201)
    assert r["digest"] == s.own[0] and s.blob(s.own[0])
    assert s.other.get(f"/v1/groups/{s.other_gid}/files/{s.own[0]}").content == s.own_data[0]


def test_group_payments_are_purged_after_the_retention():
    srv = Server(env={"QUN_TEST_CLOCK": "1"}, extra=FAST).start()
    try:
        s = Scene(srv, n_messages=2)
        s.dissolve("delete")
        st = wait_for(s.owner, s.gid, purged)
        assert s.payment_rows() == 2
        # A minute short of the retention nothing happens (the margin absorbs slow runs).
        expect(requests.post(srv.url + "/v1/test/clock", json={"advance": RETENTION - 60}), 200)
        time.sleep(0.6)
        st = expect(s.owner.get(s.g + "/dissolution"), 200)
        assert "payments_deleted" not in st["receipt"] and s.payment_rows() == 2
        expect(requests.post(srv.url + "/v1/test/clock", json={"advance": 61}), 200)
        st = wait_for(s.owner, s.gid, lambda x: "payments_deleted" in x["receipt"])
        assert st["receipt"]["payments_deleted"] == 2
        # The earlier counts survive in the receipt.
        assert st["receipt"]["messages_deleted"] == 2 + 3 + 2 and st["receipt"]["members_removed"] == 4
        assert {j["kind"]: j["state"] for j in st["jobs"]} == {"purge_group": "done", "purge_payments": "done"}
        assert s.payment_rows() == 0
        assert s.db_count("SELECT COUNT(*) FROM payment_claims c JOIN payments p ON p.id = c.payment_id "
                          "JOIN groups g ON g.id = p.group_id WHERE g.gid = ?") == 0
        # Personal bill lines are never purged.
        assert s.all_bills() == s.bills
        assert [b["amount"] for b in s.bills[s.owner.openid]] == [-100, 3]
    finally:
        stop_clean(srv)


def test_test_clock_is_off_without_the_variable():
    srv = Server()
    srv.env.pop("QUN_TEST_CLOCK", None)
    srv.start()
    try:
        expect(requests.post(srv.url + "/v1/test/clock", json={"advance": 601}), 404, "TEST_CLOCK_DISABLED")
        u = register(srv.url)
        expect(u.post("/v1/test/clock", {"advance": 1}), 404, "TEST_CLOCK_DISABLED")
        # Time did not move: a fresh session is still valid well inside its lifetime.
        expect(u.get("/v1/me"), 200)
    finally:
        stop_clean(srv)


def test_a_group_larger_than_a_purge_batch_goes_in_several_steps():
    """purge_batch bounds every step, the people of a group included (a 100 000-member
    group's memberships, read marks and events once went in one statement, holding every
    write queued behind it): with 2 rows a step, 9 members, their read marks and the
    group's events all go, the receipt counts each, and no other group loses a row."""
    srv = Server(extra=FAST + ["--set", "purge_batch=2", "--set", "purge_pause_ms=100"]).start()
    try:
        people = [register(srv.url) for _ in range(9)]
        owner = people[0]
        gid = make_group(owner, members=people[1:])
        keep = make_group(people[1], members=[owner, people[2]])
        for i, c in enumerate(people):
            expect(c.post(f"/v1/groups/{gid}/messages", {"text": f"hello {i}"}), 201)
            expect(c.post(f"/v1/groups/{gid}/read", {}), 200)
        expect(people[2].post(f"/v1/groups/{keep}/messages", {"text": "stays"}), 201)
        expect(people[2].post(f"/v1/groups/{keep}/read", {}), 200)
        p = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "delete"}), 200)
        expect(owner.post(f"/v1/groups/{gid}/dissolution", {"messages": "delete", "typed_name": p["name"],
                                                            "confirmation_token": p["confirmation_token"]}), 202)
        seen = set()  # members_removed as the purge's progress showed it, step by step

        def steps(st):
            for j in st["jobs"]:
                if j["kind"] == "purge_group":
                    seen.add(j["progress"].get("members_removed"))
            return purged(st)

        deadline = time.time() + 30
        while not steps(st := expect(owner.get(f"/v1/groups/{gid}/dissolution"), 200)):
            assert time.time() < deadline, st
            time.sleep(0.02)
        receipt = st["receipt"]
        assert len({v for v in seen if v and 0 < v < 9}) >= 3, seen  # 2 a step, not all at once
        assert receipt["members_removed"] == 9
        assert receipt["read_marks_deleted"] == 9
        assert receipt["messages_deleted"] >= 9
        con = sqlite3.connect(os.path.join(srv.data, "qun.db")) if not srv.store else None
        if con:  # what is left of the purged group, straight from the file
            row = con.execute("SELECT id FROM groups WHERE gid = ?", (gid,)).fetchone()[0]
            for table in ("members", "read_marks", "messages"):
                assert con.execute(f"SELECT COUNT(*) FROM {table} WHERE group_id = ?", (row,)).fetchone()[0] == 0
            assert con.execute("SELECT COUNT(*) FROM events WHERE group_id = ? AND topic != 'group.purged'",
                               (row,)).fetchone()[0] == 0
            con.close()
        g = expect(people[2].get(f"/v1/groups/{keep}"), 200)
        assert g["member_count"] == 3
        msgs = all_items(people[2], f"/v1/groups/{keep}/messages")
        assert [m["text"] for m in msgs if m.get("text")] == ["stays"]
    finally:
        stop_clean(srv)


def test_a_purge_takes_short_steps_while_people_write():
    """While people post (a write queued to the writer in the last second), a purge step
    deletes purge_batch_busy rows instead of purge_batch, so a post waits behind a short
    step; the purge still completes with an exact receipt."""
    srv = Server(extra=FAST + ["--set", "purge_batch=50", "--set", "purge_batch_busy=5",
                               "--set", "purge_pause_ms=40"]).start()
    try:
        owner, other = register(srv.url), register(srv.url)
        gid = make_group(owner)
        busy = make_group(other)
        for i in range(120):
            expect(owner.post(f"/v1/groups/{gid}/messages", {"text": f"old {i}"}), 201)
        stop = threading.Event()

        def keep_posting():
            c = Client(srv.url, other.token)
            while not stop.is_set():
                expect(c.post(f"/v1/groups/{busy}/messages", {"text": "still here"}), 201)
                time.sleep(0.02)

        poster = threading.Thread(target=keep_posting)
        poster.start()
        try:
            time.sleep(0.2)
            p = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "delete"}), 200)
            expect(owner.post(f"/v1/groups/{gid}/dissolution", {"messages": "delete", "typed_name": p["name"],
                                                                "confirmation_token": p["confirmation_token"]}), 202)
            seen, deadline = set(), time.time() + 30
            while True:
                st = expect(owner.get(f"/v1/groups/{gid}/dissolution"), 200)
                for j in st["jobs"]:
                    if j["kind"] == "purge_group":
                        seen.add(j["progress"].get("messages_deleted"))
                if purged(st):
                    break
                assert time.time() < deadline, st
                time.sleep(0.01)
        finally:
            stop.set()
            poster.join()
        steps = sorted(v for v in seen if v)
        assert len([v for v in steps if v < 100]) >= 5, steps  # 5 at a time; 50 would show 50 alone
        assert st["receipt"]["messages_deleted"] >= 120
    finally:
        stop_clean(srv)
