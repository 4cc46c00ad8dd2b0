# SPDX-License-Identifier: MIT
"""A full disk: qund's data folder on an 8 MiB tmpfs that the test fills.  Writes that do
not fit answer 507 STORAGE_FULL (problem+json, Retry-After) and keep nothing; reads go on;
everything acknowledged before is intact, also after kill -9; once space is freed, writes
succeed again without a restart.  Needs root (mount); skipped otherwise, with the reason."""
import os
import subprocess
import tempfile

import pytest

from conftest import PG, Server, expect, register, stop_clean

pytestmark = pytest.mark.skipif(PG, reason="the data folder's disk is PostgreSQL's, not qund's, there")


@pytest.fixture
def small_disk():
    mnt = tempfile.mkdtemp(prefix="qund-full-")
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", mnt], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.decode().strip())
    yield mnt
    subprocess.run(["umount", "-l", mnt])
    os.rmdir(mnt)


def messages(c, gid):
    out, after = [], None
    while True:
        page = expect(c.get(f"/v1/groups/{gid}/messages?limit=200" + (f"&after={after}" if after else "")), 200)
        out += [(m["seq"], m["text"]) for m in page["items"]]
        after = page["next_cursor"]
        if not after:
            return out


def test_a_full_disk_is_a_507_that_loses_nothing(small_disk):
    srv = Server(data=os.path.join(small_disk, "data")).start()
    try:
        owner = register(srv.url)
        gid = expect(owner.post("/v1/groups", {"name": "full"}), 201)["id"]
        # Leave the database most of the disk but not all: a filler that can be freed later.
        filler = os.path.join(small_disk, "filler")
        with open(filler, "wb") as f:
            f.write(os.urandom(1024 * 1024))
        acked, refused = [], None
        for i in range(3000):
            text = f"{i:05d} " + "x" * 2000
            r = owner.post(f"/v1/groups/{gid}/messages", {"text": text})
            if r.status_code != 201:
                refused = r
                break
            acked.append((r.json()["seq"], text))
        assert refused is not None, "3000 posts of 2 KB fit on an 8 MiB disk?"
        p = expect(refused, 507, "STORAGE_FULL")
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.headers["Retry-After"] == "5" and p["status"] == 507
        assert len(acked) > 20
        # An upload does not fit either; reads go on, and every acknowledged message is there.
        up = owner.post(f"/v1/groups/{gid}/files?name=big.bin", raw=os.urandom(256 * 1024),
                        headers={"Content-Type": "application/octet-stream"})
        expect(up, 507, "STORAGE_FULL")
        assert expect(owner.get(f"/v1/groups/{gid}/files"), 200)["items"] == []
        assert messages(owner, gid) == acked

        # Space comes back: writes succeed again, without a restart.
        os.unlink(filler)
        r = expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "after the cleanup"}), 201)
        acked.append((r["seq"], "after the cleanup"))
        assert r["seq"] == acked[-2][0] + 1, "the refused posts used no sequence number"
        srv.kill()
        srv.start()
        assert messages(owner, gid) == acked
    finally:
        stop_clean(srv)
