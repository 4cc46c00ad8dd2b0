# SPDX-License-Identifier: MIT
"""Crash test of reclamation: a purge of a group with 100k messages and 1k files is
killed with SIGKILL midway; after a restart it completes exactly once and nothing of
any other group is touched.

The bulk of the rows is written straight into the SQLite file while qund is stopped
(the API path for them is covered elsewhere); a part goes through the API so both
kinds are purged alike."""
import hashlib
import os
import sqlite3
import time

import pytest

from conftest import Server, expect, register

MESSAGES = 100_000
FILES = 1_000


def seed(db_path, data_dir, gid, uid_openid, start_seq, nfiles_done):
    con = sqlite3.connect(db_path)
    cur = con.cursor()
    gid_row, next_seq = cur.execute("SELECT id, next_seq FROM groups WHERE gid = ?", (gid,)).fetchone()
    uid = cur.execute("SELECT id FROM users WHERE openid = ?", (uid_openid,)).fetchone()[0]
    n = MESSAGES - (next_seq - 1)
    now = int(time.time())
    cur.executemany(
        "INSERT INTO messages(group_id, seq, author_id, body, created_at) VALUES (?, ?, ?, ?, ?)",
        ((gid_row, next_seq + i, uid, f"bulk message {i}", now) for i in range(n)))
    cur.execute("UPDATE groups SET next_seq = ? WHERE id = ?", (next_seq + n, gid_row))
    files = []
    for i in range(FILES - nfiles_done):
        data = f"bulk file {gid} {i}".encode()
        sha = hashlib.sha256(data).hexdigest()
        d = os.path.join(data_dir, "blobs", sha[:2])
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, sha), "wb") as f:
            f.write(data)
        files.append((i, sha, len(data)))
    # Each batch at once (under PostgreSQL one psql for all its rows, not one per row).
    cur.executemany("INSERT INTO blobs(sha256, size, refcount, created_at) VALUES (?, ?, 1, ?)",
                    ((sha, size, now) for _, sha, size in files))
    cur.executemany("INSERT INTO group_files(group_id, sha256, name, content_type, size, uploader_id, created_at)"
                    " VALUES (?, ?, ?, 'text/plain', ?, ?, ?)",
                    ((gid_row, sha, f"f{i}.txt", size, uid, now) for i, sha, size in files))
    con.commit()
    con.close()


def status(owner, gid):
    return expect(owner.get(f"/v1/groups/{gid}/dissolution"), 200)


@pytest.mark.slow
def test_purge_survives_kill_9():
    srv = Server(extra=["--set", "purge_batch=500", "--set", "purge_pause_ms=30",
                        "--set", "cooling_off=0", "--set", "purge_grace=0"]).start()
    url = srv.url
    owner, member = register(url), register(url)
    doomed = expect(owner.post("/v1/groups", {"name": "doomed"}), 201)["id"]
    other = expect(owner.post("/v1/groups", {"name": "survivor"}), 201)["id"]
    for g in (doomed, other):
        expect(owner.post(f"/v1/groups/{g}/members", {"openid": member.openid}), 201)
        for i in range(50):
            expect(member.post(f"/v1/groups/{g}/messages", {"text": f"api {i}"}), 201)
    # One file shared by both groups: its bytes must survive the purge.
    shared = b"shared between the two groups"
    shared_sha = hashlib.sha256(shared).hexdigest()
    for g in (doomed, other):
        expect(owner.post(f"/v1/groups/{g}/files?name=shared.txt", raw=shared), 201)
    expect(owner.post(f"/v1/groups/{other}/files?name=own.txt", raw=b"only the survivor"), 201)
    srv.stop()

    db_path = os.path.join(srv.data, "qun.db")
    seed(db_path, srv.data, doomed, member.openid, 51, 1)
    con = sqlite3.connect(db_path)
    before_other = con.execute("SELECT COUNT(*) FROM messages m JOIN groups g ON g.id = m.group_id "
                               "WHERE g.gid = ?", (other,)).fetchone()[0]
    bills_before = con.execute("SELECT COUNT(*) FROM bill_lines").fetchone()[0]
    con.close()
    assert before_other == 50 + 2  # and the file messages of its two uploads

    srv.start()
    preview = expect(owner.post(f"/v1/groups/{doomed}/dissolution/preview", {"messages": "delete"}), 200)
    assert preview["impact"]["messages"]["count"] == MESSAGES
    assert preview["impact"]["files"]["count"] == FILES
    expect(owner.post(f"/v1/groups/{doomed}/dissolution",
                      {"messages": "delete", "confirmation_token": preview["confirmation_token"],
                       "typed_name": preview["name"]}), 202)

    # Kill qund while the purge is in the middle of the messages.
    deadline = time.time() + 60
    while time.time() < deadline:
        jobs = status(owner, doomed)["jobs"]  # queued when the (zero) cooling-off ends
        if jobs and jobs[0]["progress"].get("messages_deleted", 0) >= 5_000:
            break
        time.sleep(0.02)
    srv.kill()
    con = sqlite3.connect(db_path)
    left = con.execute("SELECT COUNT(*) FROM messages m JOIN groups g ON g.id = m.group_id WHERE g.gid = ?",
                       (doomed,)).fetchone()[0]
    progress_at_kill = con.execute("SELECT progress FROM jobs WHERE kind = 'purge_group'").fetchone()[0]
    con.close()
    total = MESSAGES + 2  # the pending and dissolved notices are system messages of the group
    assert 0 < left < total, "the kill must land mid-purge"
    # What the job has counted is exactly what is gone: progress and deletions commit together.
    import json
    assert json.loads(progress_at_kill)["messages_deleted"] == total - left

    srv.start()
    deadline = time.time() + 120
    while time.time() < deadline:
        st = status(owner, doomed)
        if st["state"] == "purged":
            break
        time.sleep(0.1)
    assert st["state"] == "purged", st
    receipt = st["receipt"]
    assert receipt["messages_deleted"] == total
    assert receipt["files_removed"] == FILES
    assert receipt["blobs_released"] == FILES - 1  # the shared blob is still referenced
    assert receipt["cdn_purges_queued"] == FILES - 1
    assert receipt["members_removed"] == 2

    con = sqlite3.connect(db_path)
    q = lambda sql, *a: con.execute(sql, a).fetchone()[0]
    assert q("SELECT COUNT(*) FROM messages m JOIN groups g ON g.id = m.group_id WHERE g.gid = ?", doomed) == 0
    assert q("SELECT COUNT(*) FROM messages m JOIN groups g ON g.id = m.group_id WHERE g.gid = ?", other) == 50 + 2
    assert q("SELECT COUNT(*) FROM outbox WHERE topic = 'cdn.purge'") == FILES - 1
    assert q("SELECT COUNT(DISTINCT payload) FROM outbox WHERE topic = 'cdn.purge'") == FILES - 1
    assert q("SELECT COUNT(*) FROM unlink_queue") == 0
    assert q("SELECT refcount FROM blobs WHERE sha256 = ?", shared_sha) == 1
    assert q("SELECT COUNT(*) FROM bill_lines") == bills_before
    assert q("SELECT state FROM jobs WHERE kind = 'purge_group'") == "done"
    con.close()
    # Blob files: only the survivor's remain on disk.
    on_disk = sum(len(files) for _, _, files in os.walk(os.path.join(srv.data, "blobs")))
    assert on_disk == 2
    # The survivor is intact and usable.
    r = member.get(f"/v1/groups/{other}/files/{shared_sha}")
    assert r.status_code == 200 and r.content == shared
    page = expect(member.get(f"/v1/groups/{other}/messages?limit=200"), 200)
    assert len(page["items"]) == 50 + 2
    expect(member.get(f"/v1/groups/{doomed}/messages"), 410, "GROUP_GONE")
    assert srv.stop() == 0
