# SPDX-License-Identifier: MIT
"""Retention of derived data, on the test clock (QUN_TEST_CLOCK): a finished export's
file is deleted export_retention after it was done (30 days by default; the row stays
and a download answers EXPORT_PURGED); housekeeping also forgets idempotency keys,
confirmation tokens and event tickets, unlinks blob files no row references, and removes
staged imports a crash left behind, each counted in /metrics
(qun_housekeeping_deleted_total{kind})."""
import os
import re
import shutil
import subprocess
import time

import pytest
import requests

from conftest import QUN, Server, expect, register, stop_clean

pytestmark = pytest.mark.skipif(not shutil.which("zstd"), reason="the zstd tool is needed by exports")


def advance(url, seconds):
    expect(requests.post(url + "/v1/test/clock", json={"advance": seconds}, timeout=10), 200)


def swept(url):
    text = requests.get(url + "/metrics", timeout=10).text
    return {m.group(1): int(m.group(2)) for m in re.finditer(r'qun_housekeeping_deleted_total\{kind="(\w+)"\} (\d+)', text)}


def wait_for(pred, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(what)


def test_exports_expire_and_housekeeping_sweeps_with_metrics(tmp_path):
    srv = Server(extra=["--set", "session_ttl=315360000", "--set", "cooling_off=0", "--set", "purge_grace=0"],
                 env={"QUN_TEST_CLOCK": "1"}).start()
    try:
        owner = register(srv.url)
        gid = expect(owner.post("/v1/groups", {"name": "kept"}), 201)["id"]
        expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "hello"}), 201)
        key = tmp_path / "k.txt"
        r = subprocess.run([QUN, "age", "keygen", "-o", str(key)], capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        recipient = [l.split(": ")[1] for l in key.read_text().splitlines() if l.startswith("# public key: ")][0]
        x = expect(owner.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient], "scope": "group"}), 202)
        x = wait_for(lambda: (lambda y: y if y["state"] == "done" else None)(
            expect(owner.get(f"/v1/exports/{x['id']}"), 200)), "the export finishes")
        path = os.path.join(srv.data, "exports", x["id"] + ".age")
        assert os.path.exists(path)

        # What housekeeping forgets: an idempotency key, a confirmation token, an event
        # ticket, a staged import left by a crash, and (through a purge) a blob file.
        expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "once"}, headers={"Idempotency-Key": "k-1"}), 201)
        doomed = expect(owner.post("/v1/groups", {"name": "doomed"}), 201)["id"]
        expect(owner.post(f"/v1/groups/{doomed}/files?name=a.txt", raw=b"a file only the doomed group has"), 201)
        p = expect(owner.post(f"/v1/groups/{doomed}/dissolution/preview", {"messages": "delete"}), 200)
        expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "delete"}), 200)  # left unused
        expect(owner.post(f"/v1/groups/{doomed}/dissolution", {"messages": "delete", "confirmation_token":
                                                                p["confirmation_token"], "typed_name": p["name"]}), 202)
        expect(owner.post("/v1/events/ticket", {}), 201)
        os.makedirs(os.path.join(srv.data, "imports", "i_left_by_a_crash"))
        open(os.path.join(srv.data, "imports", "i_left_by_a_crash", "part"), "wb").write(b"x")
        wait_for(lambda: expect(owner.get(f"/v1/groups/{doomed}/dissolution"), 200)["state"] == "purged",
                 "the purge ends", 60)
        wait_for(lambda: swept(srv.url).get("blob", 0) >= 1, "the purge's blob is unlinked and counted")

        before = swept(srv.url)
        assert set(before) == {"idempotency_key", "confirm_token", "event_ticket", "export", "blob", "staged_import",
                           "matrix_media"}

        # 29 days on: everything short-lived is gone, the export is still there.
        advance(srv.url, 29 * 86400)
        # The staged import is the last thing a housekeeping round sweeps.
        after = wait_for(lambda: (lambda s: s if s["staged_import"] > before["staged_import"] else None)(
            swept(srv.url)), "housekeeping runs after the clock moves")
        for kind in ("idempotency_key", "confirm_token", "event_ticket", "staged_import"):
            assert after[kind] > before[kind], (kind, before, after)
        assert not os.path.exists(os.path.join(srv.data, "imports", "i_left_by_a_crash"))
        assert after["export"] == before["export"] and os.path.exists(path)
        assert owner.get(f"/v1/exports/{x['id']}/download").status_code == 200

        # 31 days after it was done: the file is deleted, the row says when.
        advance(srv.url, 2 * 86400)
        wait_for(lambda: swept(srv.url)["export"] > before["export"], "the export expires")
        assert not os.path.exists(path)
        assert expect(owner.get(f"/v1/exports/{x['id']}"), 200)["purged_at"]
        expect(owner.get(f"/v1/exports/{x['id']}/download"), 410, "EXPORT_PURGED")
        # The messages themselves are no derived data: they stay.
        assert expect(owner.get(f"/v1/groups/{gid}/messages"), 200)["items"]
    finally:
        stop_clean(srv)
