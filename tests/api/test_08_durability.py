# SPDX-License-Identifier: MIT
"""Durability: every write qund acknowledged survives kill -9, even with many
concurrent writers sharing group commits; idempotency keys live at least 24 h."""
import threading
import time

from conftest import Server, expect, register, stop_clean


def post_until_stopped(srv, owner, gid, writers=16, at_least=400):
    """Post from `writers` threads until `at_least` posts are acknowledged; returns the
    acknowledged {seq: text}, the stop event and the threads (still posting).  Answers
    other than 201 are kept in acked[None] as (status, code)."""
    from conftest import Client
    acked, lock, stop = {None: []}, threading.Lock(), threading.Event()

    def writer(n):
        c = Client(srv.url, owner.token)
        i = 0
        while not stop.is_set():
            try:
                r = c.post(f"/v1/groups/{gid}/messages", {"text": f"w{n}-{i}"})
            except Exception:
                return  # the server died under us: that request was never acknowledged
            with lock:
                if r.status_code == 201:
                    acked[r.json()["seq"]] = r.json()["text"]
                else:
                    ctype = r.headers.get("Content-Type", "")
                    code = r.json().get("code") if ctype.startswith("application/problem+json") else ctype
                    acked[None].append((r.status_code, code))
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    deadline = time.time() + 20
    while len(acked) <= at_least and time.time() < deadline:
        time.sleep(0.01)
    return acked, stop, threads


def check_all_there(srv, owner, gid, acked):
    srv.start()
    seen, after = {}, 0
    while True:
        page = expect(owner.get(f"/v1/groups/{gid}/messages?after={after}&limit=200"), 200)
        for m in page["items"]:
            seen[m["seq"]] = m["text"]
        if not page["next_cursor"]:
            break
        after = page["next_cursor"]
    missing = [s for s in acked if s is not None and seen.get(s) != acked[s]]
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {missing[:5]}"
    # Sequence numbers stay gap-free across the stop.
    assert sorted(seen) == list(range(1, len(seen) + 1))


def test_acknowledged_posts_survive_kill_9():
    srv = Server().start()
    owner = register(srv.url)
    gid = expect(owner.post("/v1/groups", {"name": "durable"}), 201)["id"]
    acked, stop, threads = post_until_stopped(srv, owner, gid)
    srv.kill()  # SIGKILL while writes are in flight
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) > 400
    check_all_there(srv, owner, gid, acked)
    srv.stop()


def test_a_stop_while_people_post_is_clean():
    """SIGTERM while 16 clients post: qund answers or drops each request, hands every
    queued write back to its loop before freeing the loops (a write finishing after the
    loops were freed was a use-after-free), exits 0 with a clean sanitizer log, and
    keeps every acknowledged message."""
    srv = Server().start()
    owner = register(srv.url)
    gid = expect(owner.post("/v1/groups", {"name": "stopping"}), 201)["id"]
    acked, stop, threads = post_until_stopped(srv, owner, gid)
    stop_clean(srv)  # within 10 s: a request that arrives during the stop is not waited for
    stop.set()
    for t in threads:
        t.join()
    # What reached a stopping server on a kept-alive connection was refused, "retry".
    assert all(a == (503, "UNAVAILABLE") for a in acked[None]), acked[None][:5]
    check_all_there(srv, owner, gid, acked)
    stop_clean(srv)


def test_idempotency_key_lives_at_least_a_day():
    srv = Server(env={"QUN_TEST_CLOCK": "1"}).start()
    u = register(srv.url)
    gid = expect(u.post("/v1/groups", {"name": "keys"}), 201)["id"]
    h = {"Idempotency-Key": "day-old-key"}
    first = expect(u.post(f"/v1/groups/{gid}/messages", {"text": "once"}, headers=h), 201)
    expect(u.post("/v1/test/clock", {"advance": 24 * 3600}), 200)
    again = u.post(f"/v1/groups/{gid}/messages", {"text": "once"}, headers=h)
    assert again.status_code == 201 and again.json() == first
    assert again.headers.get("Idempotent-Replayed") == "true"
    # Past the retention (48 h by default) the key is forgotten at once, whether or not
    # housekeeping has deleted it yet: the same request runs anew, and the key then
    # holds the new answer.
    expect(u.post("/v1/test/clock", {"advance": 25 * 3600}), 200)
    r = expect(u.post(f"/v1/groups/{gid}/messages", {"text": "once"}, headers=h), 201)
    assert r["seq"] == first["seq"] + 1
    replay = u.post(f"/v1/groups/{gid}/messages", {"text": "once"}, headers=h)
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.json() == r
    # A forgotten key may carry another request too.
    expect(u.post("/v1/test/clock", {"advance": 49 * 3600}), 200)
    other = expect(u.post(f"/v1/groups/{gid}/messages", {"text": "another"}, headers=h), 201)
    assert other["seq"] == first["seq"] + 2 and other["text"] == "another"
    srv.stop()
