# SPDX-License-Identifier: MIT
"""A 600-member group under the shipped default policy: the dissolution waits for the
72 h advance notice (longer than the 48 h cooling-off) because the group has more than
500 members, and every one of the 600 members, each holding an open event stream,
gets the notice, the pending state and finally the dissolution.  At exactly 500 members
the notice does not apply.  All 600 streams are read by one selector thread."""
import json
import resource
import selectors
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import Server, expect, register, stop_clean

H = 3600
N = 600


@pytest.fixture(scope="module")
def srv():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * N:  # 600 client sockets here, 600 in qund (which inherits the limit)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8 * N), hard))
    s = Server(env={"QUN_TEST_CLOCK": "1"}).start()  # no overrides: policies/ defaults
    yield s
    stop_clean(s)


class Streams:
    """One GET /v1/events per client, all read on one thread; collects (event, data) per client."""

    def __init__(self, clients):
        self.sel = selectors.DefaultSelector()
        self.got = {c.openid: [] for c in clients}
        self.lock = threading.Lock()
        self.stop = False
        for c in clients:
            host, port = c.url.split("//")[1].split(":")
            s = socket.create_connection((host, int(port)), timeout=10)
            s.sendall(f"GET /v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {c.token}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(4096)
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, [c.openid, head.split(b"\r\n\r\n", 1)[1]])
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            for key, _ in self.sel.select(0.1):
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    self.sel.unregister(key.fileobj)
                    continue
                st = key.data
                st[1] += data
                # Chunk-size lines stay in the text; frames are found by their own lines.
                while b"\n\n" in st[1]:
                    frame, st[1] = st[1].split(b"\n\n", 1)
                    lines = frame.decode().splitlines()
                    ev = dict(x.split(": ", 1) for x in lines if x.startswith(("event: ", "data: ")))
                    if "event" in ev and "data" in ev:
                        with self.lock:
                            self.got[st[0]].append((ev["event"], json.loads(ev["data"])))

    def wait_every(self, event, timeout=60, **match):
        """Each client's first event of this type with the given data members."""
        deadline = time.time() + timeout
        while True:
            with self.lock:
                found = {o: next((d for e, d in evs if e == event and all(d.get(k) == v for k, v in match.items())),
                                 None) for o, evs in self.got.items()}
            missing = [o for o, d in found.items() if d is None]
            if not missing:
                return found
            assert time.time() < deadline, f"{len(missing)} of {len(found)} streams never got {event} {match}"
            time.sleep(0.05)

    def close(self):
        self.stop = True
        self.t.join(5)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()


def request(owner, gid):
    p = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "keep"}), 200)
    return expect(owner.post(f"/v1/groups/{gid}/dissolution", {"messages": "keep", "confirmation_token": p["confirmation_token"],
                                                               "typed_name": p["name"]}), 202)


@pytest.mark.slow
def test_600_members_get_the_72h_notice_and_every_member_every_event(srv):
    owner = register(srv.url)
    gid = expect(owner.post("/v1/groups", {"name": "town hall"}), 201)["id"]
    with ThreadPoolExecutor(8) as ex:
        members = list(ex.map(lambda _: register(srv.url), range(N - 1)))
        for r in ex.map(lambda m: owner.post(f"/v1/groups/{gid}/members", {"openid": m.openid}), members):
            expect(r, 201)
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["member_count"] == N
    everyone = [owner] + members

    # At exactly 500 members the notice does not apply: the 48 h cooling-off alone.
    # A hundred removals in a day need the owner's proofs, whichever route they take:
    # two bulk removals with the cli's confirmation token and typed name.
    for k in range(499, len(members), 50):
        ids = [m.openid for m in members[k:k + 50]]
        pv = expect(owner.post(f"/v1/groups/{gid}/members/remove/preview", {"openids": ids}), 200)
        expect(owner.post(f"/v1/groups/{gid}/members/remove", {"openids": ids, "confirmation_token": pv["confirmation_token"],
                                                               "typed_name": pv["name"]}), 200)
    st = request(owner, gid)
    assert 48 * H - 2 <= st["seconds_left"] <= 48 * H
    assert [r["rule"] for r in st["timing"]["delay_reasons"]] == ["cooling_off"]
    expect(owner.delete(f"/v1/groups/{gid}/dissolution"), 200)
    with ThreadPoolExecutor(8) as ex:
        for r in ex.map(lambda m: owner.post(f"/v1/groups/{gid}/members", {"openid": m.openid}), members[499:]):
            expect(r, 201)

    streams = Streams(everyone)
    try:
        st = request(owner, gid)
        assert 72 * H - 2 <= st["seconds_left"] <= 72 * H
        reasons = {r["rule"]: r for r in st["timing"]["delay_reasons"]}
        assert reasons["notice"]["seconds"] == 72 * H and reasons["cooling_off"]["seconds"] == 48 * H
        # Every member: the system notice posted into the group, and the pending state.
        notices = streams.wait_every("message.created", group=gid, kind="system")
        for d in notices.values():
            body = json.loads(d["text"])
            assert body["notice_seconds"] == 72 * H and body["dissolves_at"] == st["due_at"]
        for d in streams.wait_every("dissolution.pending", group=gid).values():
            assert d["dissolves_at"] == st["due_at"]
        # Still active after the cooling-off alone: the notice is the longer delay.
        expect(owner.post("/v1/test/clock", {"advance": 48 * H + 60}), 200)
        time.sleep(0.6)
        assert expect(members[0].get(f"/v1/groups/{gid}/dissolution"), 200)["state"] == "pending"
        expect(owner.post("/v1/test/clock", {"advance": 24 * H}), 200)
        for d in streams.wait_every("group.dissolved", group=gid, timeout=90).values():
            assert d["state"] == "dissolved"
    finally:
        streams.close()
    assert expect(owner.get(f"/v1/groups/{gid}/dissolution"), 200)["state"] in ("dissolved", "purging", "purged")
