# SPDX-License-Identifier: MIT
"""Two qund on one PostgreSQL database (and one data directory, so both sign with the
same ledger key and see the same file bytes): dissolutions requested on both, their
timers and purge jobs drained by both job threads at once.  Every group ends purged
exactly once, and the ledger stays one sequence with each transition recorded once.
Run by tests/pg/run.sh (QUN_STORE=postgres)."""
import collections
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api"))
from conftest import PG, Server, expect, register, stop_clean  # noqa: E402
import merkle_ref as ref  # noqa: E402

pytestmark = pytest.mark.skipif(not PG, reason="needs QUN_STORE=postgres (tests/pg/run.sh)")

SETTINGS = ["--set", "admins=root", "--set", "cooling_off=0", "--set", "purge_grace=0",
            "--set", "purge_batch=5", "--set", "purge_pause_ms=0",
            "--set", "risk_frequency_max=1000", "--set", "risk_frequency_deny=1000"]


def entries(client):
    items, start = [], 0
    while True:
        page = expect(client.get(f"/v1/ledger/entries?start={start}"), 200)
        items += page["items"]
        if page["end"] >= page["tree_size"]:
            return items, page["tree_size"]
        start = page["end"]


@pytest.mark.slow
def test_two_instances_drain_jobs_once_and_keep_one_ledger():
    a = Server(extra=SETTINGS).start()
    b = Server(data=a.data, extra=SETTINGS).start()
    try:
        root = register(a.url, name="root")
        owners = [register(a.url if i % 2 else b.url) for i in range(6)]
        groups = []
        for i in range(60):
            o = owners[i % len(owners)]
            g = expect(o.post("/v1/groups", {"name": f"g{i}"}), 201)["id"]
            for k in range(12):  # a few purge batches each
                expect(o.post(f"/v1/groups/{g}/messages", {"text": f"m{k}"}), 201)
            groups.append((o, g))
        # Requests alternate between the instances; each owner's client talks to the
        # instance it registered on, so switch the URL for every other group.
        for i, (o, g) in enumerate(groups):
            o.url = a.url if i % 2 else b.url
            p = expect(o.post(f"/v1/groups/{g}/dissolution/preview", {"messages": "delete"}), 200)
            expect(o.post(f"/v1/groups/{g}/dissolution", {"messages": "delete", "typed_name": p["name"],
                                                          "confirmation_token": p["confirmation_token"]}), 202)
        deadline = time.time() + 120
        for i, (o, g) in enumerate(groups):
            o.url = b.url if i % 2 else a.url  # read through the other instance
            while expect(o.get(f"/v1/groups/{g}/dissolution"), 200)["state"] != "purged":
                assert time.time() < deadline, f"group {g} not purged"
                time.sleep(0.05)
        root_b = type(root)(b.url, root.token)
        items, size = entries(root_b)
        assert [e["index"] for e in items] == list(range(size))
        for e in items:  # every entry hashes to its leaf
            assert ref.leaf(e["entry"].encode()).hex() == e["leaf_hash"]
        per_group = collections.Counter((e["group"], e["event"]) for e in items if e.get("group"))
        twice = {k: n for k, n in per_group.items() if n != 1}
        assert not twice, twice
        for _, g in groups:
            assert any(k[0] == g and "purge" in k[1] for k in per_group), (g, per_group)
        # Both instances answer the same checkpoint.
        ca = expect(type(root)(a.url, root.token).get("/v1/ledger/checkpoint"), 200)
        cb = expect(root_b.get("/v1/ledger/checkpoint"), 200)
        assert ca == cb
    finally:
        b.stop()
        a.stop()
    for s in (a, b):
        stop_clean(s)
