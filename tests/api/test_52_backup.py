# SPDX-License-Identifier: MIT
"""qun admin backup and restore (docs/admin.md): an online backup of a SQLite data
directory taken while qund serves, under load (a thread posting messages and a group's
purge running), restored into a new data directory on which a new qund starts: the
ledger has the same origin and verifies against a checkpoint taken before the backup
(`qun audit verify`), its root at the backed-up size is the manifest's, and every
message acknowledged before the backup started is there.  A backup with one byte of a
blob changed is refused, and nothing is restored."""
import hashlib
import json
import os
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import PG, QUN, Server, expect, register, stop_clean

pytestmark = pytest.mark.skipif(PG, reason="the SQLite backup; on PostgreSQL the database is pg_dump's (docs/admin.md)")

DOOMED_MESSAGES = 20_000
DOOMED_FILES = 200


def qun(*args, token=None, url=None, tmp="/nonexistent"):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUN_")}
    env.update(HOME=tmp, XDG_CONFIG_HOME=tmp + "/cfg")
    if url:
        env["QUN_URL"] = url
    if token:
        env["QUN_TOKEN"] = token
    r = subprocess.run([QUN, *args], capture_output=True, text=True, env=env, timeout=300)
    assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


def seed(data, gid, author_openid):
    """Many messages and files in gid, written while qund is stopped."""
    con = sqlite3.connect(os.path.join(data, "qun.db"))
    gid_row, next_seq = con.execute("SELECT id, next_seq FROM groups WHERE gid = ?", (gid,)).fetchone()
    uid = con.execute("SELECT id FROM users WHERE openid = ?", (author_openid,)).fetchone()[0]
    now = int(time.time())
    con.executemany("INSERT INTO messages(group_id, seq, author_id, body, created_at) VALUES (?, ?, ?, ?, ?)",
                    ((gid_row, next_seq + i, uid, f"bulk {i}", now) for i in range(DOOMED_MESSAGES)))
    con.execute("UPDATE groups SET next_seq = ? WHERE id = ?", (next_seq + DOOMED_MESSAGES, gid_row))
    for i in range(DOOMED_FILES):
        body = f"doomed file {i}".encode()
        sha = hashlib.sha256(body).hexdigest()
        os.makedirs(os.path.join(data, "blobs", sha[:2]), exist_ok=True)
        with open(os.path.join(data, "blobs", sha[:2], sha), "wb") as f:
            f.write(body)
        con.execute("INSERT INTO blobs(sha256, size, refcount, created_at) VALUES (?, ?, 1, ?)", (sha, len(body), now))
        con.execute("INSERT INTO group_files(group_id, sha256, name, content_type, size, uploader_id, created_at)"
                    " VALUES (?, ?, ?, 'text/plain', ?, ?, ?)", (gid_row, sha, f"d{i}.txt", len(body), uid, now))
    con.commit()
    con.close()


def test_backup_under_load_restores_everything_acknowledged(tmp_path):
    srv = Server(extra=["--set", "admins=root", "--set", "purge_batch=200", "--set", "purge_pause_ms=20",
                        "--set", "cooling_off=0", "--set", "purge_grace=0"]).start()
    restored = None
    try:
        root = register(srv.url, name="root")
        poster = register(srv.url)
        live = expect(root.post("/v1/groups", {"name": "live"}), 201)["id"]
        doomed = expect(root.post("/v1/groups", {"name": "doomed"}), 201)["id"]
        expect(root.post(f"/v1/groups/{live}/members", {"openid": poster.openid}), 201)
        kept = expect(root.post(f"/v1/groups/{live}/files?name=kept.txt", raw=b"a file that stays"), 201)
        kept["sha256"] = hashlib.sha256(b"a file that stays").hexdigest()
        srv.stop()
        seed(srv.data, doomed, root.openid)
        srv.start()
        key = expect(root.get("/v1/ledger/key"), 200)
        saved = tmp_path / "checkpoint.txt"
        saved.write_text(root.get("/v1/ledger/checkpoint").text)

        # Load: a thread posting, and the doomed group's purge.
        acked, stop = [], threading.Event()

        def post():
            i = 0
            while not stop.is_set():
                r = poster.post(f"/v1/groups/{live}/messages", {"text": f"live {i}"})
                if r.status_code == 201:
                    acked.append((time.time(), r.json()["seq"]))
                i += 1

        th = threading.Thread(target=post)
        th.start()
        preview = expect(root.post(f"/v1/groups/{doomed}/dissolution/preview", {"messages": "delete"}), 200)
        expect(root.post(f"/v1/groups/{doomed}/dissolution",
                         {"messages": "delete", "confirmation_token": preview["confirmation_token"],
                          "typed_name": preview["name"]}), 202)
        deadline = time.time() + 60
        while time.time() < deadline:
            jobs = expect(root.get(f"/v1/groups/{doomed}/dissolution"), 200)["jobs"]
            if jobs and jobs[0]["progress"].get("messages_deleted", 0) > 0:
                break
            time.sleep(0.05)
        time.sleep(0.5)

        backup = str(tmp_path / "backup")
        conf = tmp_path / "qund.conf"
        conf.write_text("# the operator's settings\n")
        started = time.time()
        r = qun("--json", "admin", "backup", backup, "--data", srv.data, "--config", str(conf))
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        time.sleep(0.3)
        stop.set()
        th.join(30)
        purge_state = expect(root.get(f"/v1/groups/{doomed}/dissolution"), 200)
        before = [seq for t, seq in acked if t < started]
        assert len(before) > 5, "the poster ran before the backup"

        manifest = json.load(open(os.path.join(backup, "manifest.json")))
        paths = {f["path"] for f in manifest["files"]}
        assert {"qun.db", "ledger.key", "qund.conf"} <= paths
        assert not os.path.exists(os.path.join(backup, "qun.db-wal"))  # one self-contained file
        assert f"blobs/{kept['sha256'][:2]}/{kept['sha256']}" in paths
        assert manifest["ledger"] == out["ledger"] and manifest["ledger"]["size"] > 0
        # Every copied file is what the manifest says.
        for f in manifest["files"]:
            body = open(os.path.join(backup, f["path"]), "rb").read()
            assert len(body) == f["size"] and hashlib.sha256(body).hexdigest() == f["sha256"], f["path"]
        # Again, into a directory in use: refused.
        r = qun("admin", "backup", backup, "--data", srv.data)
        assert r.returncode != 0 and "BACKUP_DIR_NOT_EMPTY" in r.stderr, r.stderr

        # Restore into a new data directory and start a qund on it.
        data2 = str(tmp_path / "data2")
        r = qun("admin", "restore", backup, data2)
        assert r.returncode == 0, r.stderr
        assert open(os.path.join(data2, "qund.conf")).read() == "# the operator's settings\n"
        r = qun("admin", "restore", backup, data2)
        assert r.returncode != 0 and "DATA_DIR_NOT_EMPTY" in r.stderr, r.stderr
        stop_clean(srv)
        srv = None
        restored = Server(data=data2, extra=["--set", "admins=root", "--set", "cooling_off=0",
                                             "--set", "purge_grace=0"]).start()
        assert expect(root.__class__(restored.url, root.token).get("/v1/ledger/key"), 200) == key
        again = root.__class__(restored.url, root.token)  # the sessions were backed up too
        r = qun("audit", "verify", "--key", key["verifier_key"], "--checkpoint-file", str(saved),
                token=again.token, url=restored.url, tmp=str(tmp_path))
        assert r.returncode == 0, r.stdout + r.stderr
        con = sqlite3.connect(os.path.join(backup, "qun.db"))
        size = con.execute("SELECT COUNT(*) FROM ledger_entries").fetchone()[0] if con.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'ledger_entries'").fetchone() else None
        con.close()
        if size is not None:
            assert size == manifest["ledger"]["size"]
        seqs = set()
        after = None
        while True:
            page = expect(again.get(f"/v1/groups/{live}/messages?limit=200" + (f"&after={after}" if after else "")),
                          200)
            seqs |= {m["seq"] for m in page["items"]}
            after = page.get("next_cursor")
            if not after:
                break
        missing = [s for s in before if s not in seqs]
        assert not missing, f"{len(missing)} acknowledged messages are missing: {missing[:10]}"
        got = again.get(f"/v1/groups/{live}/files/{kept['digest']}")
        assert got.status_code == 200 and got.content == b"a file that stays"
        # The purge that was running finishes on the restored installation.
        deadline = time.time() + 120
        while time.time() < deadline:
            st = expect(again.get(f"/v1/groups/{doomed}/dissolution"), 200)
            if st["state"] == "purged":
                break
            time.sleep(0.2)
        assert st["state"] == "purged", (st, purge_state)
    finally:
        if srv:
            stop_clean(srv)
        if restored:
            stop_clean(restored)


def test_a_tampered_backup_is_refused(tmp_path):
    srv = Server().start()
    try:
        c = register(srv.url)
        g = expect(c.post("/v1/groups", {"name": "g"}), 201)["id"]
        f = expect(c.post(f"/v1/groups/{g}/files?name=x.txt", raw=b"the original bytes"), 201)
        f["sha256"] = hashlib.sha256(b"the original bytes").hexdigest()
        backup = str(tmp_path / "b")
        r = qun("admin", "backup", backup, "--data", srv.data)
        assert r.returncode == 0, r.stderr
        assert "backed up" in r.stdout
    finally:
        stop_clean(srv)
    blob = os.path.join(backup, "blobs", f["sha256"][:2], f["sha256"])
    body = bytearray(open(blob, "rb").read())
    body[3] ^= 0x01
    open(blob, "wb").write(bytes(body))
    data2 = str(tmp_path / "d2")
    r = qun("admin", "restore", backup, data2)
    assert r.returncode != 0, r.stdout
    assert "BACKUP_DIGEST_MISMATCH" in r.stderr and f["sha256"] in r.stderr and "nothing was restored" in r.stderr
    assert not os.path.exists(data2)
    # A directory that is no backup at all.
    r = qun("admin", "restore", str(tmp_path), data2)
    assert r.returncode != 0 and "BACKUP_INVALID" in r.stderr
    r = qun("admin", "backup", str(tmp_path / "c"), "--data", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "NO_DATA_DIR" in r.stderr
