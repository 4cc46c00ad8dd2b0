# SPDX-License-Identifier: MIT
"""Several qund on one PostgreSQL database (docs/postgres.md, "Several instances"):
a cancel on A racing the timer on B ends one way and is ledgered once; 1000 due purge
jobs drained by two instances each run once; an SSE client on A sees a dissolution
done on B at once; posts through both instances to the same groups all land, numbered
without gaps; a session ended on B posts no more on A, whose loops cached it; an
Idempotency-Key raced across instances runs once; PostgreSQL
restarted under load loses nothing acknowledged and answers 503 STORE_UNAVAILABLE
meanwhile; Matrix syncs parked through a PostgreSQL crash are each answered with the next post; `qun admin migrate` moves a SQLite installation with the same ledger root
and every row; proofs served by B, which caches the hashes of complete subtrees, stay
right while A appends past the subtrees B read incomplete.  Run by tests/pg/run.sh (QUN_STORE=postgres); every wait is bounded."""
import collections
import concurrent.futures as cf
import json
import os
import queue
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api"))
from conftest import PG, PG_URL, PSQL, QUN, Client, Server, expect, make_group, pg_sql, register, stop_clean  # noqa: E402
from test_14_events import Stream, assert_ended, login, session_id  # noqa: E402
from test_60_passkeys import enroll  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from test_two_instances import entries  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api"))
import merkle_ref as ref  # noqa: E402

pytestmark = pytest.mark.skipif(not PG, reason="needs QUN_STORE=postgres (tests/pg/run.sh)")

BASE = ["--set", "admins=root", "--set", "risk_frequency_max=1000000", "--set", "risk_frequency_deny=1000000",
        "--set", "purge_pause_ms=0"]
CLOCK = {"QUN_TEST_CLOCK": "1"}


def pair(extra, env=None):
    """Two instances on one database and one data directory (same ledger key)."""
    a = Server(extra=BASE + extra, env=env).start()
    try:
        b = Server(data=a.data, extra=BASE + extra, env=env).start()
    except Exception:
        a.stop()
        raise
    return a, b


def on(client, url):
    return Client(url, client.token, client.openid, client.username)


def ledger(client):
    return entries(client)[0]


def dissolve(owner, gid):
    p = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "delete"}), 200)
    return expect(owner.post(f"/v1/groups/{gid}/dissolution",
                             {"messages": "delete", "confirmation_token": p["confirmation_token"],
                              "typed_name": p["name"]}), 202)


def wait_for(what, pred, timeout):
    deadline = time.time() + timeout
    while not pred():
        assert time.time() < deadline, f"{what} within {timeout}s"
        time.sleep(0.05)


def test_cancel_on_a_races_timer_on_b_one_outcome_ledgered_once():
    a, b = pair(["--set", "cooling_off=3600", "--set", "purge_grace=864000"], CLOCK)
    try:
        root = register(a.url, name="root")
        owner = register(a.url)
        groups = [make_group(owner, name=f"race{i}") for i in range(24)]
        for g in groups:
            assert dissolve(owner, g)["state"] == "pending"
        # A's cancels and B's timers (B's clock jumps past every cooling-off) at once.
        with cf.ThreadPoolExecutor(8) as pool:
            jump = pool.submit(requests.post, b.url + "/v1/test/clock", json={"advance": 3601}, timeout=30)
            cancels = list(pool.map(lambda g: owner.delete(f"/v1/groups/{g}/dissolution"), groups))
            expect(jump.result(), 200)
        wait_for("B's timers done", lambda: pg_sql(b, "SELECT count(*) FROM jobs WHERE kind = 'dissolve_due' "
                                                     "AND state IN ('queued', 'running')") == [["0"]], 30)
        per_group = collections.Counter((e["group"], e["event"]) for e in ledger(on(root, b.url)) if e.get("group"))
        outcomes = collections.Counter()
        for g, r in zip(groups, cancels):
            state = expect(on(owner, b.url).get(f"/v1/groups/{g}/dissolution"), 200)["state"]
            cancelled, dissolved = per_group[(g, "dissolution.cancelled")], per_group[(g, "group.dissolved")]
            assert cancelled + dissolved == 1, (g, r.status_code, state, per_group)
            if r.status_code == 200:
                assert cancelled == 1 and state != "dissolved", (g, state)
                outcomes["cancelled"] += 1
            else:
                expect(r, 409, "DISSOLUTION_NOT_CANCELLABLE")
                assert dissolved == 1 and state == "dissolved", (g, state)
                outcomes["dissolved"] += 1
        assert sum(outcomes.values()) == len(groups), outcomes
    finally:
        b.stop()
        a.stop()
    for s in (a, b):
        stop_clean(s)


@pytest.mark.slow
def test_1000_due_purge_jobs_drained_by_two_instances_each_once():
    n = 1000
    extra = ["--set", "cooling_off=0", "--set", "purge_grace=3600", "--set", "purge_batch=50"]
    a = Server(extra=BASE + extra, env=CLOCK).start()
    try:
        owners = [register(a.url) for _ in range(8)]
        with cf.ThreadPoolExecutor(8) as pool:
            gids = list(pool.map(lambda i: make_group(owners[i % 8], name=f"p{i}"), range(n)))
            for r in pool.map(lambda i: dissolve(owners[i % 8], gids[i]), range(n)):
                assert r["state"] in ("pending", "dissolved"), r
        wait_for("every group dissolved",
                 lambda: pg_sql(a, "SELECT count(*) FROM groups WHERE state = 'dissolved'") == [[str(n)]], 120)
    finally:
        a.stop()
    stop_clean(a)
    assert pg_sql(a, "SELECT count(*) FROM jobs WHERE kind = 'purge_group' AND state = 'queued'") == [[str(n)]]
    # Both instances start with the purges not yet due; both clocks then jump past the
    # grace together, and both job threads drain the same 1000 jobs.
    a.proc = None
    a2 = Server(data=a.data, extra=BASE + extra + ["--set", "instance=A"], env=CLOCK).start()
    b = Server(data=a.data, extra=BASE + extra + ["--set", "instance=B"], env=CLOCK).start()
    try:
        with cf.ThreadPoolExecutor(2) as pool:
            for r in pool.map(lambda s: requests.post(s.url + "/v1/test/clock", json={"advance": 3601}, timeout=30),
                              (a2, b)):
                expect(r, 200)
        wait_for("every group purged",
                 lambda: pg_sql(b, "SELECT count(*) FROM groups WHERE state = 'purged'") == [[str(n)]], 300)
        jobs = pg_sql(b, "SELECT state, claimed_by, count(*) FROM jobs WHERE kind = 'purge_group' "
                         "GROUP BY 1, 2 ORDER BY 2")
        assert {r[0] for r in jobs} == {"done"}, jobs
        by = {r[1]: int(r[2]) for r in jobs}
        assert set(by) == {"A", "B"} and sum(by.values()) == n, by  # both drained, each job once
        twice = pg_sql(b, "SELECT group_id, count(*) FROM events WHERE topic = 'group.purged' "
                          "GROUP BY 1 HAVING count(*) != 1")
        assert twice == [], twice
        assert pg_sql(b, "SELECT count(*) FROM events WHERE topic = 'group.purged'") == [[str(n)]]
        root = register(b.url, name="root")  # an admin reads the entries' fields
        purged = collections.Counter(e["group"] for e in ledger(root) if e["event"] == "group.purged")
        assert len(purged) == n and set(purged.values()) == {1}
    finally:
        b.stop()
        a2.stop()
    for s in (a2, b):
        stop_clean(s)


def test_sse_on_a_sees_a_dissolution_on_b():
    a, b = pair(["--set", "cooling_off=0", "--set", "purge_grace=864000"])
    try:
        owner, member = register(b.url), register(a.url)
        g = make_group(owner, members=[member])
        s = Stream(member)  # on A
        try:
            t0 = time.time()
            dissolve(owner, g)  # on B; A's writer commits nothing meanwhile
            ev = s.wait("group.dissolved", timeout=5, group=g)
            assert time.time() - t0 < 3, "woken by B's NOTIFY, not by a later local commit"
            assert ev["data"]["state"] == "dissolved"
            ids = [e["id"] for e in s.seen]
            assert ids == sorted(ids) and len(set(ids)) == len(ids)
        finally:
            s.sock.close()
    finally:
        b.stop()
        a.stop()
    for s_ in (a, b):
        stop_clean(s_)


def test_revocation_on_b_ends_the_stream_on_a_and_removal_filters_it():
    """Issue 13 item 2 across instances: the streams of a session signed out (or revoked
    by a password change) on B end on A within a second; a member removed on B gets no
    more of that group's events on A."""
    a, b = pair([])
    try:
        owner, member, other = register(b.url), register(a.url), register(a.url)
        g = make_group(owner, members=[member, other])
        kept = make_group(owner, members=[other])
        phone = login(a.url, member, device="phone")
        laptop = login(a.url, member, device="laptop")
        streams = [Stream(member), Stream(phone), Stream(laptop), Stream(other)]  # all on A
        mine, on_phone, on_laptop, others = streams
        try:
            # Logout through B, of the session whose stream is on A.
            t0 = time.time()
            expect(on(member, b.url).delete(f"/v1/sessions/{session_id(member)}"), 204)
            assert_ended(mine, "revoked", t0)
            # A password change through B: the other sessions' streams on A end.
            t0 = time.time()
            expect(on(phone, b.url).post("/v1/me/password", {"old_password": "correct horse",
                                                             "new_password": "battery staple"}), 200)
            assert_ended(on_laptop, "password_changed", t0)
            # Removal through B: the removed member's stream on A hears of it, then nothing more.
            expect(owner.delete(f"/v1/groups/{g}/members/{other.openid}"), 204)
            others.wait("member.removed", group=g, openid=other.openid)
            expect(owner.post(f"/v1/groups/{g}/messages", {"text": "after"}), 201)
            expect(owner.post(f"/v1/groups/{kept}/messages", {"text": "still yours"}), 201)
            on_phone.wait("message.created", group=g, text="after")  # the session that changed it lives on
            others.wait("message.created", group=kept, text="still yours")
            assert [e for e in others.seen + others.quiet(0.3) if e["data"].get("group") == g
                    and e["event"] == "message.created"] == []
            assert mine.q.empty() and on_laptop.q.empty()
        finally:
            for st in streams:
                st.close()
    finally:
        b.stop()
        a.stop()
    for s_ in (a, b):
        stop_clean(s_)


def test_a_session_ended_on_b_posts_no_more_on_a():
    """A's loops cache the sessions they authenticated for message posts; a logout, a
    disabled account or a password reset done through B is still refused on A's next
    post on the same connection, and nothing more is written."""
    a, b = pair([])
    try:
        root, owner = register(b.url, name="root"), register(a.url)
        users = [register(a.url) for _ in range(3)]
        g = make_group(owner, members=users)
        logout, disabled, reset = users
        for u in users:
            expect(u.post(f"/v1/groups/{g}/messages", {"text": "hi " + u.username}), 201)
        expect(on(logout, b.url).delete(f"/v1/sessions/{session_id(logout)}"), 204)
        expect(root.post(f"/v1/admin/users/{disabled.openid}/disable", {}), 200)
        expect(root.post(f"/v1/admin/users/{reset.openid}/password-reset", {}), 200)
        for u in users:
            expect(u.post(f"/v1/groups/{g}/messages", {"text": "again"}), 401, "TOKEN_INVALID")
        texts = [m["text"] for m in expect(owner.get(f"/v1/groups/{g}/messages"), 200)["items"]]
        assert texts == ["hi " + u.username for u in users]
    finally:
        b.stop()
        a.stop()
    for s_ in (a, b):
        stop_clean(s_)


def test_posts_to_shared_groups_through_both_instances_all_land_in_order():
    """Both instances post to the same groups at once.  Batches of posts alone run side by
    side on the two instances (BEGIN SHARED) and lock their groups' rows in one order,
    so two batches never wait on each other in a circle (PostgreSQL would kill one:
    503).  Every post is answered 201 and every group numbers its messages without gaps
    or repeats."""
    a, b = pair([])
    try:
        owner = register(a.url)
        members = [register(a.url) for _ in range(8)]
        groups = [make_group(owner, members=members, name=f"shared{i}") for i in range(4)]
        plan = [(m, url, groups[(i + k) % 4]) for k in range(6) for i, m in enumerate(members)
                for url in (a.url, b.url)]

        def send(item):
            m, url, g = item
            return on(m, url).post(f"/v1/groups/{g}/messages", {"text": f"{m.username} via {url}"})

        with cf.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(send, plan))
        per_group = collections.Counter()
        for (m, url, g), r in zip(plan, answers):
            expect(r, 201)
            per_group[g] += 1
        for g in groups:
            seqs = [x["seq"] for x in expect(owner.get(f"/v1/groups/{g}/messages?limit=200"), 200)["items"]]
            assert seqs == list(range(1, per_group[g] + 1)), g
    finally:
        b.stop()
        a.stop()
    for s_ in (a, b):
        stop_clean(s_)



def test_streams_on_both_instances_miss_no_post_while_both_post():
    """Two instances commit event ids out of order (neither waits for the other's
    batch): a stream on each must still get every post of both, once, in id order,
    with nothing skipped while a lower id was still in flight on the other instance
    (docs/architecture.md, "The event frontier")."""
    a, b = pair([])
    try:
        owner = register(a.url)
        members = [register(a.url) for _ in range(6)]
        groups = [make_group(owner, members=members, name=f"feed{i}") for i in range(3)]
        watch_a, watch_b = Stream(owner), Stream(on(members[0], b.url))
        try:
            plan = [(m, url, groups[(i + k) % 3], f"{k}.{i}.{url[-5:]}") for k in range(10)
                    for i, m in enumerate(members) for url in (a.url, b.url)]

            def send(item):
                m, url, g, text = item
                return on(m, url).post(f"/v1/groups/{g}/messages", {"text": text})

            with cf.ThreadPoolExecutor(12) as pool:
                answers = list(pool.map(send, plan))
            for r in answers:
                expect(r, 201)
            want = {text for (_, _, _, text) in plan}
            for st in (watch_a, watch_b):
                deadline = time.time() + 10
                while time.time() < deadline:
                    got = [e for e in st.seen if e["event"] == "message.created"]
                    if {e["data"]["text"] for e in got} >= want:
                        break
                    try:
                        st.next(timeout=max(0.05, deadline - time.time()))
                    except queue.Empty:
                        break
                got = [e for e in st.seen if e["event"] == "message.created"]
                texts = [e["data"]["text"] for e in got]
                assert set(texts) == want and len(texts) == len(want), (len(texts), len(want))
                ids = [e["id"] for e in st.seen]
                assert ids == sorted(ids) and len(set(ids)) == len(ids)
        finally:
            watch_a.sock.close()
            watch_b.sock.close()
    finally:
        b.stop()
        a.stop()
    for s_ in (a, b):
        stop_clean(s_)

def test_idempotency_key_raced_across_instances_runs_once():
    a, b = pair([])
    try:
        u = register(a.url)
        g = make_group(u)
        clients = [u, on(u, b.url)]
        keys = [f"race-{i}" for i in range(40)]
        barrier = threading.Barrier(2)

        def post(args):
            key, c = args
            try:
                barrier.wait(timeout=10)
            except threading.BrokenBarrierError:
                pass
            return key, c.post(f"/v1/groups/{g}/messages", {"text": key}, headers={"Idempotency-Key": key})

        answers = collections.defaultdict(list)
        with cf.ThreadPoolExecutor(2) as pool:
            for key in keys:
                for k, r in pool.map(post, [(key, clients[0]), (key, clients[1])]):
                    answers[k].append(r)
        for key, rs in answers.items():
            for r in rs:
                assert r.status_code in (201, 409), (key, r.status_code, r.text)
                if r.status_code == 409:
                    expect(r, 409, "IDEMPOTENCY_KEY_IN_FLIGHT")
            ok = [r for r in rs if r.status_code == 201]
            assert ok, key
            assert len({r.json()["seq"] for r in ok}) == 1, key  # a replay answers the first run
        texts = collections.Counter(m["text"] for m in expect(u.get(f"/v1/groups/{g}/messages?limit=200"),
                                                              200)["items"])
        assert texts == collections.Counter({k: 1 for k in keys}), texts
    finally:
        b.stop()
        a.stop()
    for s in (a, b):
        stop_clean(s)


PG_DIR, PG_PORT = os.environ.get("QUN_PG_DIR"), os.environ.get("QUN_PG_PORT")
CLUSTER = os.path.join(os.path.dirname(__file__), "cluster.sh")


@pytest.mark.cluster
@pytest.mark.skipif(not PG_DIR, reason="needs the cluster of tests/pg/run.sh (QUN_PG_DIR)")
def test_postgres_restart_mid_run_loses_nothing_acknowledged():
    a, b = pair([])
    stopped, stop = False, threading.Event()
    try:
        u = register(a.url)
        g = make_group(u)
        clients = [u, on(u, b.url)]
        acked, statuses = [], collections.Counter()
        lock = threading.Lock()

        def writer(w):
            c, i = Client(clients[w % 2].url, u.token), 0
            while not stop.is_set():
                text = f"w{w}-{i}"
                try:
                    r = c.post(f"/v1/groups/{g}/messages", {"text": text})
                except requests.RequestException as e:  # never: qund answers
                    with lock:
                        statuses["exception " + type(e).__name__] += 1
                    time.sleep(0.05)
                    continue
                with lock:
                    statuses[r.status_code] += 1
                if r.status_code == 201:
                    with lock:
                        acked.append(text)
                else:
                    p = expect(r, 503)
                    assert p["code"] == "STORE_UNAVAILABLE", p
                    assert r.headers.get("Retry-After") == "1", r.headers
                    with lock:
                        statuses[p["code"]] += 1
                    time.sleep(0.05)
                i += 1

        # The suite before this test writes gigabytes of WAL (4 MB per qund's database),
        # up to max_wal_size of it since the last checkpoint: a checkpoint first, so that
        # the restart replays this test's writes, not those.
        subprocess.run([PSQL, PG_URL + "/postgres", "-qAtc", "CHECKPOINT"], check=True, timeout=120,
                       capture_output=True)
        threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(6)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        # Immediate shutdown, as a crash: quick on a loaded machine (no shutdown
        # checkpoint), and recovery at the start must bring back every commit.
        subprocess.run(["sh", CLUSTER, "crash", PG_DIR], check=True, timeout=60)
        stopped = True
        time.sleep(1.0)
        down = expect(u.get(f"/v1/groups/{g}"), 503, "STORE_UNAVAILABLE")
        assert down["status"] == 503
        subprocess.run(["sh", CLUSTER, "start", PG_DIR, PG_PORT], check=True, timeout=300,
                       capture_output=True)
        stopped = False
        before = len(acked)
        wait_for("writes succeed again", lambda: len(acked) > before + 20, 30)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert statuses["STORE_UNAVAILABLE"] > 0, statuses  # the outage was seen
        assert not [k for k in statuses if str(k).startswith("exception")], statuses
        for c in clients:  # both instances serve reads again (a connection may wait out its backoff)
            deadline = time.time() + 10
            while (r := c.get(f"/v1/groups/{g}")).status_code == 503 and time.time() < deadline:
                expect(r, 503, "STORE_UNAVAILABLE")
                time.sleep(int(r.headers["Retry-After"]))
            expect(r, 200)
        stored = collections.Counter()
        after = 0
        while True:
            page = expect(u.get(f"/v1/groups/{g}/messages?limit=200&after={after}"), 200)["items"]
            if not page:
                break
            stored.update(m["text"] for m in page)
            after = page[-1]["seq"]
        missing = [t for t in acked if t not in stored]
        assert not missing, f"{len(missing)} acknowledged messages lost: {missing[:5]}"
        assert all(v == 1 for v in stored.values())
    finally:
        stop.set()  # a failure above must not leave the writers posting to stopped servers
        if stopped:
            subprocess.run(["sh", CLUSTER, "start", PG_DIR, PG_PORT], timeout=300, capture_output=True)
        b.stop()
        a.stop()
    for s in (a, b):  # exit 0 and no sanitizer report; error lines of the outage are expected
        log = s.read_log()
        assert "AddressSanitizer" not in log and "runtime error" not in log, log[-3000:]
        assert s.proc.returncode == 0, log[-2000:]


def mx_token(c):
    """A Matrix access token of c's user: a session of its own, as a Matrix app logs in."""
    r = requests.post(c.url + "/_matrix/client/v3/login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": c.username},
        "password": "correct horse"}, timeout=30)
    assert r.status_code == 200, r.text[:300]
    return r.json()["access_token"]


@pytest.mark.cluster
@pytest.mark.skipif(not PG_DIR, reason="needs the cluster of tests/pg/run.sh (QUN_PG_DIR)")
def test_parked_syncs_outlive_a_postgres_crash():
    """Matrix apps keep a /sync parked on each loop.  PostgreSQL crashes and comes back
    while they wait: the loops' connections die with it, their reads fail through the
    outage (the parked syncs must neither be answered with an error nor forgotten), and
    the loops connect again.  Every parked sync is answered with the first post that
    succeeds, and the next post reaches the syncs that parked again."""
    a = Server(extra=BASE + ["--set", "matrix=on", "--set", "matrix_server_name=pg.test"]).start()
    stopped = False
    try:
        alice, bob = register(a.url), register(a.url)
        gid = make_group(alice, members=[bob])
        tokens = [mx_token(alice), mx_token(bob), mx_token(bob)] * 2  # six parked syncs, both loops
        got, errors = {}, []

        def sync(i, since):
            try:
                r = requests.get(a.url + "/_matrix/client/v3/sync",
                                 params={"access_token": tokens[i], "since": since, "timeout": 30000}, timeout=60)
                got[i] = (r.status_code, r.json())
            except Exception as e:  # noqa: BLE001 - recorded, asserted below
                errors.append(repr(e))

        def bodies(answer):
            return [e["content"].get("body") for room in answer.get("rooms", {}).get("join", {}).values()
                    for e in room["timeline"]["events"] if e["type"] == "m.room.message"]

        since = {}
        for i, t in enumerate(tokens):
            r = requests.get(a.url + "/_matrix/client/v3/sync", params={"access_token": t}, timeout=30)
            assert r.status_code == 200, r.text[:300]
            since[i] = r.json()["next_batch"]
        for round_ in ("after the crash", "once more"):
            got.clear()

            def parked():
                text = requests.get(a.url + "/metrics", timeout=10).text
                return int(next(l for l in text.splitlines() if l.startswith("qun_mx_sync_parked ")).split()[1])

            threads = [threading.Thread(target=sync, args=(i, since[i])) for i in range(len(tokens))]
            for t in threads:
                t.start()
            wait_for("the syncs parked", lambda: parked() >= len(tokens), 15)
            if round_ == "after the crash":
                subprocess.run(["sh", CLUSTER, "crash", PG_DIR], check=True, timeout=60)
                stopped = True
                subprocess.run(["sh", CLUSTER, "start", PG_DIR, PG_PORT], check=True, timeout=300,
                               capture_output=True)
                stopped = False
            text = f"{round_}: {uuid.uuid4().hex[:8]}"
            deadline = time.time() + 30
            while (r := alice.post(f"/v1/groups/{gid}/messages", {"text": text})).status_code == 503:
                expect(r, 503, "STORE_UNAVAILABLE")  # the writer's connection, until it is back
                assert time.time() < deadline, "posts succeed again within 30 s"
                time.sleep(0.2)
            expect(r, 201)
            for t in threads:
                t.join(45)
            assert not errors, errors
            assert sorted(got) == list(range(len(tokens))), got
            for i, (status, answer) in got.items():
                assert status == 200, (round_, i, answer)
                assert text in bodies(answer), (round_, i, answer)
                since[i] = answer["next_batch"]
    finally:
        if stopped:
            subprocess.run(["sh", CLUSTER, "start", PG_DIR, PG_PORT], timeout=300, capture_output=True)
        a.stop()
    log = a.read_log()
    assert "AddressSanitizer" not in log and "runtime error" not in log, log[-3000:]
    assert a.proc.returncode == 0, log[-2000:]


def sqlite_tables(path):
    with sqlite3.connect(path) as db:
        # Virtual tables and their shadow tables (the FTS5 search index) and the index's
        # queues are derived: not moved.
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master t WHERE type = 'table' "
                                          "AND name NOT LIKE 'sqlite_%' AND name NOT IN "
                                          "('schema_migrations', 'search_pending', 'search_gone', 'search_state') "
                                          "AND NOT EXISTS "
                                          "(SELECT 1 FROM sqlite_master v WHERE v.sql LIKE 'CREATE VIRTUAL TABLE%' "
                                          "AND (t.name = v.name OR t.name LIKE v.name || '\\_%' ESCAPE '\\'))")]
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in names}


def test_migrate_sqlite_to_postgres_same_ledger_root_and_every_row():
    extra = BASE + ["--set", "cooling_off=0", "--set", "purge_grace=0", "--set", "purge_batch=7",
                    "--set", "matrix=on", "--set", "matrix_server_name=qun.test"]
    data = None
    s = Server(extra=extra)
    dbfile = os.path.join(s.data, "qun.db")
    s.extra += ["--set", "store=sqlite:" + dbfile]
    s.start()
    try:
        root = register(s.url, name="root")
        owner, member = register(s.url), register(s.url)
        expect(member.patch("/v1/me", {"display_name": "王小明"}), 200)  # users' newer columns move too
        keep = make_group(owner, members=[member], name="kept")
        for i in range(30):
            expect((owner if i % 2 else member).post(f"/v1/groups/{keep}/messages", {"text": f"m{i}"}), 201)
        f = expect(owner.post(f"/v1/groups/{keep}/files?name=a.bin", raw=b"\x00\x01bytes\xff" * 50), 201)
        pid = expect(owner.post(f"/v1/groups/{keep}/payments", {"amount": 50, "shares": 5}), 201)["id"]
        expect(member.post(f"/v1/groups/{keep}/payments/{pid}/claim", {}), 201)
        # Invitations (migration 0024): one accepted, one pending.
        invited, pending = register(s.url), register(s.url)
        inv = expect(owner.post(f"/v1/groups/{keep}/invitations", {"username": invited.username}), 201)
        expect(invited.post(f"/v1/invitations/{inv['id']}/accept"), 200)
        expect(owner.post(f"/v1/groups/{keep}/invitations", {"openid": pending.openid}), 201)
        # Matrix media (migration 0025): one sent to the group, one staged.
        mx = requests.post(s.url + "/_matrix/client/v3/login", json={
            "type": "m.login.password", "user": owner.username, "password": "correct horse"}, timeout=30).json()
        mh = {"Authorization": "Bearer " + mx["access_token"]}
        uris = [requests.post(s.url + "/_matrix/media/v3/upload?filename=p.png", data=body, timeout=30,
                              headers=dict(mh, **{"Content-Type": "image/png"})).json()["content_uri"]
                for body in (b"png-ish", b"staged")]
        r = requests.put(s.url + f"/_matrix/client/v3/rooms/!{keep}:qun.test/send/m.room.message/t1", headers=mh,
                         json={"msgtype": "m.image", "body": "p.png", "url": uris[0]}, timeout=30)
        assert r.status_code == 200, r.text
        expect(member.post(f"/v1/groups/{keep}/read", {"seq": 20}), 200)  # read positions (migration 0026)
        enroll(member)  # a passkey and its used registration challenge (migration 0034, bytea columns)
        gone = make_group(owner, name="gone")
        for i in range(20):
            expect(owner.post(f"/v1/groups/{gone}/messages", {"text": f"x{i}"}), 201)
        dissolve(owner, gone)
        wait_for("purged", lambda: expect(owner.get(f"/v1/groups/{gone}/dissolution"), 200)["state"] == "purged", 30)
        checkpoint = root.get("/v1/ledger/checkpoint")
        assert checkpoint.status_code == 200
        entries = ledger(root)
        data = s.data
    finally:
        s.stop()
    stop_clean(s)
    counts = sqlite_tables(dbfile)
    assert counts["messages"] >= 30 and counts["ledger_entries"] == len(entries) and counts["ledger_nodes"]
    assert counts["invitations"] == 2 and counts["read_marks"] == 1
    assert counts["mx_media"] == 2 and counts["mx_media_links"] == 1
    assert counts["passkeys"] == 1 and counts["passkey_options"] == 1
    target = Server(data=data, extra=extra)  # its PostgreSQL database: new, empty
    r = subprocess.run([QUN, "--json", "admin", "migrate", "--from", "sqlite:" + dbfile, "--to", target.store],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["tables"] == counts and report["rows"] == sum(counts.values())
    for t, n in counts.items():  # every row is there
        assert pg_sql(target, f"SELECT count(*) FROM {t}") == [[str(n)]], t
    with sqlite3.connect(dbfile) as db:  # and holds the same values (spot check: messages, ledger)
        msgs = [list(map(str, r)) for r in db.execute("SELECT group_id, seq, body FROM messages ORDER BY id")]
    assert pg_sql(target, "SELECT group_id, seq, body FROM messages ORDER BY id") == msgs
    with sqlite3.connect(dbfile) as db:
        names = [[r[0], r[1], r[2] or ""] for r in
                 db.execute("SELECT username, mx_localpart, display_name FROM users ORDER BY id")]
    with sqlite3.connect(dbfile) as db:
        keys = [[r[0].hex(), r[1].hex()] for r in db.execute("SELECT credential_id, public_key FROM passkeys")]
    assert pg_sql(target, "SELECT encode(credential_id, 'hex'), encode(public_key, 'hex') FROM passkeys") == keys
    assert ["王小明"] == [n[2] for n in names if n[2]]
    assert pg_sql(target, "SELECT username, mx_localpart, COALESCE(display_name, '') FROM users ORDER BY id") == names
    # A second run refuses: the target is no longer empty, and nothing changes.
    again = subprocess.run([QUN, "admin", "migrate", "--from", "sqlite:" + dbfile, "--to", target.store],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "not empty" in again.stderr, again.stderr
    target.start()
    try:
        r2 = on(root, target.url)
        assert r2.get("/v1/ledger/checkpoint").text == checkpoint.text  # same size and root, same signature
        assert ledger(r2) == entries
        o2 = on(owner, target.url)
        assert [m["text"] for m in expect(o2.get(f"/v1/groups/{keep}/messages?limit=100"), 200)["items"]] == \
            [f"m{i}" for i in range(30)] + ["a.bin", "p.png"]  # the upload is a file message too
        for uri, body in zip(uris, (b"png-ish", b"staged")):  # the media rows moved: both still download
            r = o2.get("/_matrix/client/v1/media/download/" + uri[len("mxc://"):])
            assert r.status_code == 200 and r.content == body, r.text
        assert o2.get(f"/v1/groups/{keep}/files/{f['digest']}").content == b"\x00\x01bytes\xff" * 50
        # The search index is PostgreSQL's own, built as the rows arrived.
        found = expect(o2.get(f"/v1/groups/{keep}/messages/search?q=m2"), 200)["items"]
        assert [m["text"] for m in found] == ["m29", "m28", "m27", "m26", "m25", "m24", "m23", "m22", "m21", "m20", "m2"]
        assert expect(o2.get(f"/v1/groups/{gone}"), 200)["state"] == "purged"
        me = expect(on(member, target.url).get("/v1/me"), 200)
        assert me["display_name"] == "王小明" and me["mx_localpart"] == member.username.lower()
        # Sequences moved on: new rows get new ids, and the ledger grows from where it was.
        expect(o2.post(f"/v1/groups/{keep}/messages", {"text": "after"}), 201)
        g3 = make_group(o2, name="new")
        assert g3 and len(ledger(r2)) > len(entries)
    finally:
        target.stop()
    stop_clean(target)


def test_proofs_on_b_stay_right_while_a_appends():
    """B's read connections keep the hashes of complete subtrees of 256 entries and more
    (docs/ledger.md); A's appends complete more of them.  Every proof B serves, before and
    after, checks against roots computed here from the entries."""
    a, b = pair([])
    try:
        root = register(a.url, name="root")
        owner = register(a.url)
        rb = on(root, b.url)

        def grow_to(n):
            while entries(root)[1] < n:
                for _ in range(50):
                    expect(owner.post("/v1/groups", {"name": "c"}), 201)

        def check(size_at_least):
            items, size = entries(rb)
            assert size >= size_at_least
            leaves = [ref.leaf(e["entry"].encode()) for e in items]
            roots = {n: ref.mth(leaves[:n]) for n in {size, 255, 256, 257, 300, 511, 512, size - 1} if 0 < n <= size}
            for n in sorted(roots):
                for i in sorted({0, 200, 255, 256, 300, 511, n // 2, n - 1}):
                    if i >= n:
                        continue
                    p = expect(rb.get(f"/v1/ledger/proof/inclusion?index={i}&size={n}"), 200)
                    assert ref.verify_inclusion(leaves[i], i, n, [bytes.fromhex(h) for h in p["proof"]], roots[n]), (i, n)
                for old in sorted(roots):
                    if old <= n:
                        p = expect(rb.get(f"/v1/ledger/proof/consistency?old={old}&new={n}"), 200)
                        assert ref.verify_consistency(old, n, roots[old], roots[n],
                                                      [bytes.fromhex(h) for h in p["proof"]]), (old, n)
            return size

        grow_to(300)  # (8, 0) complete, (8, 1) not yet
        first = check(300)
        grow_to(first + 260)  # A completes (8, 1) and, past 512, (9, 0)
        assert check(first + 260) >= 560
    finally:
        stop_clean(a)
        stop_clean(b)
