# SPDX-License-Identifier: MIT
"""POST /v1/events/ticket and GET /v1/events?ticket=: the browser's way to open the event
stream (an EventSource cannot send an Authorization header).  A ticket is short-lived,
good once, bound to the session that asked for it, authenticates nothing but the event
stream, and never appears in the request log."""
import hashlib
import json
import socket
import sqlite3
import time

import pytest
import requests

from conftest import Client, Server, expect, make_group, register, stop_clean


def open_stream(url, query, headers=()):
    """GET /v1/events<query> over a plain socket: (status, socket, file).  The caller
    closes the socket."""
    host, port = url.split("//")[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = [f"GET /v1/events{query} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream", *headers]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    f = sock.makefile("rb")
    status = int(f.readline().split()[1])
    return status, sock, f


def read_body(f):
    """Headers then the problem+json body of a non-streaming answer."""
    length = 0
    while True:
        line = f.readline().decode().strip()
        if not line:
            break
        k, _, v = line.partition(":")
        if k.lower() == "content-length":
            length = int(v)
    return json.loads(f.read(length))


def read_events(f, want, timeout=5):
    """Read SSE frames until an event of type want arrives; every event seen as (type, data)."""
    f.raw._sock.settimeout(timeout)
    seen, ev = [], {}
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = f.readline().decode().rstrip("\r\n")
        if line.startswith("event: "):
            ev["event"] = line[7:]
        elif line.startswith("data: "):
            ev["data"] = json.loads(line[6:])
            seen.append((ev.get("event"), ev["data"]))
            if ev.get("event") == want:
                return seen
            ev = {}
    raise AssertionError(f"no {want} within {timeout}s; saw {seen}")


def refused(url, t, why):
    """Opening the stream with ticket t is 401 TICKET_INVALID, saying why."""
    status, sock, f = open_stream(url, "?ticket=" + t)
    try:
        assert status == 401
        p = read_body(f)
        assert p["code"] == "TICKET_INVALID" and why in p["detail"], p
    finally:
        sock.close()


def ticket(c):
    body = expect(c.post("/v1/events/ticket"), 201)
    assert body["ticket"].startswith("et_") and len(body["ticket"]) == 46, body
    return body


@pytest.fixture(scope="module")
def srv():
    s = Server(env={"QUN_TEST_CLOCK": "1"}, extra=["--set", "log_requests=1"]).start()
    yield s
    stop_clean(s)


def test_ticket_opens_the_stream_once_and_delivers_the_callers_events(srv):
    owner, member, outsider = (register(srv.url) for _ in range(3))
    gid = make_group(owner, members=[member])
    t = ticket(member)
    assert 0 < t["expires_at"] - expect(requests.post(srv.url + "/v1/test/clock", json={"advance": 0}), 200)["now"] <= 30
    status, sock, f = open_stream(srv.url, "?ticket=" + t["ticket"])
    assert status == 200
    try:
        expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "live over a ticket"}), 201)
        seen = read_events(f, "message.created")
        assert seen[-1][1]["text"] == "live over a ticket" and seen[-1][1]["group"] == gid
    finally:
        sock.close()
    refused(srv.url, t["ticket"], "already used")  # the same ticket again: spent
    # The outsider's ticket opens the outsider's stream: the group's messages do not reach it.
    t2 = ticket(outsider)
    status, sock, f = open_stream(srv.url, "?ticket=" + t2["ticket"])
    try:
        assert status == 200
        expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "not for outsiders"}), 201)
        og = expect(outsider.post("/v1/groups", {"name": "own"}), 201)["id"]
        seen = read_events(f, "group.created")
        assert all(d.get("group") != gid for _, d in seen) and seen[-1][1]["group"] == og, seen
    finally:
        sock.close()


def retry_of(f):
    """The stream's `retry:` field, read after the response headers."""
    while f.readline().strip():
        pass
    for _ in range(10):
        line = f.readline().decode()
        if line.startswith("retry: "):
            return int(line[7:])
    raise AssertionError("no retry field")


def test_a_ticket_stream_tells_the_browser_not_to_reconnect_by_itself(srv):
    """EventSource would reconnect with the same, spent ticket after `retry` ms: a page too
    busy to close the source within 3 s would log a 401.  A ticket stream asks for a day;
    a bearer stream, whose reconnects work, keeps 3 s."""
    c = register(srv.url)
    status, sock, f = open_stream(srv.url, "?ticket=" + ticket(c)["ticket"])
    try:
        assert status == 200 and retry_of(f) == 86400000
    finally:
        sock.close()
    status, sock, f = open_stream(srv.url, "", [f"Authorization: Bearer {c.token}"])
    try:
        assert status == 200 and retry_of(f) == 3000
    finally:
        sock.close()


def test_ticket_expires(srv):
    c = register(srv.url)
    t = ticket(c)
    expect(requests.post(srv.url + "/v1/test/clock", json={"advance": 31}), 200)
    refused(srv.url, t["ticket"], "expired")


def test_foreign_and_forged_tickets(srv):
    c = register(srv.url)
    # Made up, too long, empty.
    for bad in ("et_" + "A" * 43, "x" * 300, ""):
        r = requests.get(srv.url + "/v1/events", params={"ticket": bad}, timeout=10, stream=True)
        expect(r, 401, "TICKET_INVALID")
    # A ticket authenticates the event stream only, not any other route.
    t = ticket(c)
    r = requests.get(srv.url + "/v1/me", params={"ticket": t["ticket"]}, timeout=10)
    expect(r, 401, "UNAUTHENTICATED")
    r = requests.post(srv.url + "/v1/events/ticket", params={"ticket": t["ticket"]}, timeout=10)
    expect(r, 401, "UNAUTHENTICATED")
    # A ticket is bound to its session: signing out spends its unused tickets.
    me = expect(c.get("/v1/me"), 200)
    expect(c.delete("/v1/sessions/" + me["session_id"]), 204)
    r = requests.get(srv.url + "/v1/events", params={"ticket": t["ticket"]}, timeout=10, stream=True)
    p = expect(r, 401, "TICKET_INVALID")
    assert "session" in p["detail"], p
    # Asking for a ticket needs a bearer token; a ticket cannot mint another.
    expect(Client(srv.url).post("/v1/events/ticket"), 401, "UNAUTHENTICATED")


def test_stored_hashed_and_never_logged(srv):
    c = register(srv.url)
    t = ticket(c)
    status, sock, f = open_stream(srv.url, "?last_event_id=0&ticket=" + t["ticket"])
    sock.close()
    assert status == 200
    expect(requests.get(srv.url + "/v1/events", params={"ticket": t["ticket"]}, timeout=10, stream=True),
           401, "TICKET_INVALID")
    deadline = time.time() + 5
    while "ticket=***" not in srv.read_log() and time.time() < deadline:
        time.sleep(0.1)
    log = srv.read_log()
    assert 'route=/v1/events status=200 code=- ' in log
    assert 'uri="/v1/events?last_event_id=0&ticket=***"' in log
    assert t["ticket"] not in log and t["ticket"][3:] not in log
    db = sqlite3.connect(srv.data + "/qun.db")  # conftest points this at PostgreSQL there
    rows = db.execute("SELECT token_hash, CASE WHEN used_at IS NULL THEN 0 ELSE 1 END FROM event_tickets").fetchall()
    db.close()
    assert (hashlib.sha256(t["ticket"].encode()).hexdigest(), 1) in rows
    assert all(t["ticket"] not in h for h, _ in rows)


def ends_within(f, reason, t0, within=1.0):
    """The stream on f ends within `within` seconds of t0 with session.ended (reason), and
    the server closes the connection; every event seen before it as (type, data)."""
    seen = read_events(f, "session.ended", timeout=max(0.05, t0 + within - time.time()))
    assert seen[-1][1] == {"reason": reason}, seen
    f.raw._sock.settimeout(2)
    assert f.read().endswith(b"\r\n0\r\n\r\n"), "the response does not end with the stream"  # then EOF
    return seen[:-1]


def test_a_ticket_stream_ends_with_the_session_that_asked_for_it(srv):
    """Issue 13 item 2: a stream opened with a ticket belongs to the session that asked for
    the ticket, and ends when that session is signed out or revoked by a password change."""
    owner, member = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[member])
    # Signing out the session that asked for the ticket.
    status, sock, f = open_stream(srv.url, "?ticket=" + ticket(member)["ticket"])
    try:
        assert status == 200
        expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "before"}), 201)
        read_events(f, "message.created")
        t0 = time.time()
        expect(member.delete("/v1/sessions/" + expect(member.get("/v1/me"), 200)["session_id"]), 204)
        assert ends_within(f, "revoked", t0) == []
    finally:
        sock.close()
    # A password change on another session of the account.
    body = expect(requests.post(srv.url + "/v1/sessions", json={"username": member.username, "password": "correct horse",
                                                               "device_id": "phone", "platform": "android"},
                                timeout=10), 201)
    phone = Client(srv.url, body["token"], body["openid"], member.username)
    body = expect(requests.post(srv.url + "/v1/sessions", json={"username": member.username, "password": "correct horse",
                                                               "device_id": "browser", "platform": "web"},
                                timeout=10), 201)
    browser = Client(srv.url, body["token"], body["openid"], member.username)
    status, sock, f = open_stream(srv.url, "?ticket=" + ticket(browser)["ticket"])
    try:
        assert status == 200
        t0 = time.time()
        expect(phone.post("/v1/me/password", {"old_password": "correct horse", "new_password": "battery staple"}), 200)
        assert ends_within(f, "password_changed", t0) == []
    finally:
        sock.close()
