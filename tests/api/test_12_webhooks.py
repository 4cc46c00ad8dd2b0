# SPDX-License-Identifier: MIT
"""Webhook delivery of the outbox: a receiver on a loopback port checks every request's
HMAC signature and timestamp and records event ids and bodies.  Scenarios: every purged
file's cdn.purge event arrives exactly once and signed; a receiver failing its first tries
gets the event later under the same id; a receiver that always fails produces a dead
letter that admins (only) see and requeue; kill -9 with deliveries in flight re-sends
them after the restart with the same id and the same body."""
import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import Server, expect, metric, register

SECRET = "test-secret-0123456789abcdef"
NO_PROXY = {"QUN_TEST_CLOCK": "1", "no_proxy": "*", "NO_PROXY": "*"}


class Receiver:
    """A webhook endpoint.  `fail_first` answers 500 to that many requests; `fail_always`
    to every one; `hang` seconds are slept before answering; `clock_offset` is what the
    test clock was advanced by, for the timestamp check."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []   # (event id, body bytes, answered status) of cdn.purge events
        self.others = []     # topics of the other events
        self.bad = []        # problems found in requests
        self.fail_first = 0
        self.fail_always = False
        self.hang = 0.0
        self.clock_offset = 0
        recv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recv.check(self.headers, body)
                if json.loads(body).get("topic") != "cdn.purge":
                    # These tests follow the CDN purges; other reclamation events
                    # (group.dissolved) are accepted and not counted.
                    recv.others.append(json.loads(body)["topic"])
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with recv.lock:
                    n = len(recv.requests)
                    status = 500 if recv.fail_always or n < recv.fail_first else 200
                    recv.requests.append((self.headers.get("Qun-Event-Id"), body, status))
                    hang = recv.hang
                if hang:
                    time.sleep(hang)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the sender gave up (timeout) or died
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def check(self, headers, body):
        """The documented verification recipe (docs/webhooks.md)."""
        ts, sig, eid = headers.get("Qun-Timestamp"), headers.get("Qun-Signature", ""), headers.get("Qun-Event-Id")
        problems = []
        if headers.get("Content-Type") != "application/json":
            problems.append("content type " + str(headers.get("Content-Type")))
        want = "v1=" + hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(sig, want):
            problems.append("bad signature")
        if abs(int(ts) - (time.time() + self.clock_offset)) > 300:
            problems.append(f"stale timestamp {ts}")
        doc = json.loads(body)
        if doc.get("id") != eid or set(doc) != {"id", "topic", "created_at", "payload"}:
            problems.append(f"body {doc} vs id {eid}")
        if problems:
            with self.lock:
                self.bad.append(problems)

    def ids(self, status=None):
        with self.lock:
            return [e for e, _, s in self.requests if status is None or s == status]

    def wait(self, pred, timeout=20, what="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}: {self.requests[-5:]}")

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()
    assert not r.bad, r.bad


def start(receiver, *settings):
    # Zero timers: the dissolution is marked and purged at once (timers: test_13).
    extra = ["--set", "cooling_off=0", "--set", "purge_grace=0",
             "--set", f"webhook_url={receiver.url}", "--set", f"webhook_secret={SECRET}",
             "--set", "admins=root"]
    for s in settings:
        extra += ["--set", s]
    return Server(extra=extra, env=NO_PROXY).start()


def finish(srv):
    rc = srv.stop()
    log = srv.read_log()
    assert "runtime error" not in log and "AddressSanitizer" not in log, log[-4000:]
    assert rc == 0, log[-2000:]


def dissolve_with_files(url, k, tag="x"):
    """A group with k distinct files, dissolved with messages deleted; returns the digests."""
    owner = register(url)
    gid = expect(owner.post("/v1/groups", {"name": "doomed"}), 201)["id"]
    digests = set()
    for i in range(k):
        data = f"file {tag} {i} {gid}".encode()
        expect(owner.post(f"/v1/groups/{gid}/files?name=f{i}.txt", raw=data), 201)
        digests.add(hashlib.sha256(data).hexdigest())
    p = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "delete"}), 200)
    expect(owner.post(f"/v1/groups/{gid}/dissolution", {"messages": "delete", "confirmation_token": p["confirmation_token"],
                                                        "typed_name": p["name"]}), 202)
    return digests


def advance(srv, receiver, seconds):
    expect(requests.post(srv.url + "/v1/test/clock", json={"advance": seconds}, timeout=10), 200)
    receiver.clock_offset += seconds


def test_refuses_a_url_without_secret():
    srv = Server(extra=["--set", "webhook_url=http://127.0.0.1:9/hook"])
    with pytest.raises(RuntimeError, match="webhook_secret"):
        srv.start()
    srv = Server(extra=["--set", "webhook_url=ftp://example.org/", "--set", f"webhook_secret={SECRET}"])
    with pytest.raises(RuntimeError, match="webhook_url"):
        srv.start()


def test_each_purged_file_is_delivered_once_and_signed(receiver):
    srv = start(receiver)
    try:
        k = 7
        digests = dissolve_with_files(srv.url, k)
        receiver.wait(lambda: len(receiver.ids()) >= k, what=f"{k} deliveries")
        time.sleep(0.6)  # nothing more may come
        ids = receiver.ids()
        assert len(ids) == k and len(set(ids)) == k, ids
        bodies = [json.loads(b) for _, b, _ in receiver.requests]
        assert {b["topic"] for b in bodies} == {"cdn.purge"}
        assert {b["payload"]["digest"] for b in bodies} == digests
        assert all(b["payload"]["reason"] == "dissolution" and b["id"].startswith("ev_") for b in bodies)
        assert metric(srv.url, "qun_webhook_deliveries_total") == k + 1  # and the group.dissolved event
        assert receiver.others == ["group.dissolved"]
        assert metric(srv.url, "qun_webhook_failures_total") == 0
    finally:
        finish(srv)


def test_failing_receiver_gets_the_same_id_later(receiver):
    receiver.fail_first = 3
    srv = start(receiver, "webhook_backoff_base=600")
    try:
        dissolve_with_files(srv.url, 1, "retry")
        for n in (1, 2, 3):
            receiver.wait(lambda: len(receiver.ids()) >= n, what=f"attempt {n}")
            time.sleep(0.3)
            assert len(receiver.ids()) == n, "a retry came before its backoff"
            advance(srv, receiver, 3600)  # past any backoff of the first retries
        receiver.wait(lambda: receiver.ids(200), what="the delivery")
        ids = receiver.ids()
        assert len(ids) == 4 and len(set(ids)) == 1, receiver.requests
        assert len({b for _, b, _ in receiver.requests}) == 1, "the body changed between attempts"
        assert metric(srv.url, "qun_webhook_failures_total") == 3
    finally:
        finish(srv)


def test_dead_letter_is_listed_and_requeued(receiver):
    receiver.fail_always = True
    srv = start(receiver, "webhook_backoff_base=1", "webhook_max_attempts=3")
    try:
        admin, user = register(srv.url, "root"), register(srv.url)
        dissolve_with_files(srv.url, 1, "dead")
        for n in (1, 2, 3):
            receiver.wait(lambda: len(receiver.ids()) >= n, what=f"attempt {n}")
            time.sleep(0.3)  # let qund record the failure before the clock moves
            advance(srv, receiver, 100)
        time.sleep(0.6)
        assert len(receiver.ids()) == 3, "attempts went on past webhook_max_attempts"
        eid = receiver.ids()[0]

        expect(user.get("/v1/admin/outbox/dead"), 403, "FORBIDDEN_ADMIN")
        expect(user.post(f"/v1/admin/outbox/{eid}/retry"), 403, "FORBIDDEN_ADMIN")
        dead = expect(admin.get("/v1/admin/outbox/dead"), 200)
        assert [d["id"] for d in dead["items"]] == [eid] and dead["next_cursor"] is None, dead
        d = dead["items"][0]
        assert d["attempts"] == 3 and d["last_status"] == 500 and d["url"] == receiver.url, d
        assert d["topic"] == "cdn.purge" and "digest" in d["payload"] and d["last_error"] == "HTTP 500", d
        assert metric(srv.url, "qun_webhook_dead_total") == 1

        expect(admin.post("/v1/admin/outbox/ev_nope/retry"), 404, "DEAD_LETTER_NOT_FOUND")
        receiver.fail_always = False
        r = expect(admin.post(f"/v1/admin/outbox/{eid}/retry", headers={"Idempotency-Key": "retry-1"}), 200)
        assert r == {"id": eid, "requeued": 1}
        receiver.wait(lambda: receiver.ids(200) == [eid], what="the requeued delivery")
        assert expect(admin.get("/v1/admin/outbox/dead"), 200)["items"] == []
        expect(admin.post(f"/v1/admin/outbox/{eid}/retry"), 404, "DEAD_LETTER_NOT_FOUND")
    finally:
        finish(srv)


def test_timeout_counts_as_a_failure(receiver):
    receiver.hang = 2.0
    srv = start(receiver, "webhook_timeout_ms=300", "webhook_backoff_base=1")
    try:
        dissolve_with_files(srv.url, 1, "hang")
        receiver.wait(lambda: len(receiver.ids()) >= 1, what="the first attempt")
        receiver.hang = 0
        advance(srv, receiver, 100)
        receiver.wait(lambda: len(receiver.ids()) >= 2, what="the retry after the timeout")
        receiver.wait(lambda: metric(srv.url, "qun_webhook_deliveries_total") == 2, what="delivered")  # + group.dissolved
        ids = receiver.ids()
        assert len(set(ids)) == 1 and metric(srv.url, "qun_webhook_failures_total") >= 1, ids
    finally:
        finish(srv)


def test_kill_9_in_flight_redelivers_with_same_id_and_body(receiver):
    receiver.hang = 5.0  # every answer comes too late for qund to record it
    srv = start(receiver, "webhook_timeout_ms=20000")
    k = 20
    digests = dissolve_with_files(srv.url, k, "crash")
    receiver.wait(lambda: len(receiver.ids()) >= 4, what="deliveries in flight")
    srv.kill()
    in_flight = set(receiver.ids())
    receiver.hang = 0
    srv.start()
    try:
        def all_delivered():
            with receiver.lock:
                return {json.loads(b)["payload"]["digest"] for _, b, _ in receiver.requests} == digests
        receiver.wait(all_delivered, timeout=30, what="every event")
        time.sleep(0.6)
        with receiver.lock:
            bodies = {}
            for eid, body, _ in receiver.requests:
                bodies.setdefault(eid, set()).add(body)
        assert len(bodies) == k, sorted(bodies)
        assert all(len(b) == 1 for b in bodies.values()), "an event changed its body between attempts"
        repeated = [e for e in in_flight if receiver.ids().count(e) >= 2]
        assert repeated, "nothing in flight at the kill was re-sent"
        assert set(repeated) <= in_flight
    finally:
        finish(srv)
