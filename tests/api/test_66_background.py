# SPDX-License-Identifier: MIT
"""Background work gives way on the CPU: the job thread runs at SCHED_IDLE, and the
writer goes there only for batches of background work (a purge's steps), so the HTTP
loops answer first when the cores are busy (docs/architecture.md, "Background work").
What an operator sees: the threads' names and classes in `ps -L -o comm,cls`, the
`qun_background_yields` gauge, and `background_priority=normal` to turn it off."""
import os
import resource
import subprocess


from conftest import QUND, Server, expect, metric, register

SCHED_OTHER, SCHED_IDLE = 0, 5


def may_leave_idle():
    """Whether this process may return a thread from SCHED_IDLE (the kernel's rule)."""
    return os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_NICE)[0] >= 20


def threads(pid):
    """{thread name: {scheduling policy}} from /proc (field 41 of stat is the policy)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            policy = int(open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()[38])
        except FileNotFoundError:
            continue
        out.setdefault(name, set()).add(policy)
    return out


def test_the_job_thread_gives_way_and_the_loops_do_not():
    srv = Server().start()
    try:
        owner = register(srv.url)
        gid = expect(owner.post("/v1/groups", json={"name": "g"}), 201)["id"]
        expect(owner.post(f"/v1/groups/{gid}/messages", json={"text": "hello"}), 201)
        t = threads(srv.proc.pid)
        assert {"qun-writer", "qun-jobs", "qun-loop"} <= set(t), t
        yields = may_leave_idle()
        assert t["qun-jobs"] == {SCHED_IDLE if yields else SCHED_OTHER}
        assert t["qun-loop"] == {SCHED_OTHER}
        assert metric(srv.url, "qun_background_yields") == int(yields)
        # The writer answers a foreground write at normal priority whatever it ran before.
        expect(owner.post(f"/v1/groups/{gid}/messages", json={"text": "again"}), 201)
    finally:
        srv.stop()


def test_background_priority_normal_keeps_every_thread_normal():
    srv = Server(extra=["--set", "background_priority=normal"]).start()
    try:
        t = threads(srv.proc.pid)
        assert all(p == {SCHED_OTHER} for p in t.values()), t
        assert metric(srv.url, "qun_background_yields") == 0
    finally:
        srv.stop()


def test_an_unknown_background_priority_stops_qund(tmp_path):
    p = subprocess.run([QUND, "--listen", "127.0.0.1:1", "--data", str(tmp_path / "d"),
                        "--set", "background_priority=lowest"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "background_priority" in p.stderr and "idle or normal" in p.stderr, p.stderr
