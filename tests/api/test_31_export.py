# SPDX-License-Identifier: MIT
"""Group exports (docs/archive-format.md): POST /v1/groups/{id}/exports runs an
export_group job; the .age file it makes is opened with Debian's age, zstd and tar;
the manifest's digests match the member files, the members, the 300 messages in order
with their authors, the files byte for byte and the payment are there; the ledger has
an export.made entry with the SHA-256 of the downloaded file.  Refusals: not the
owner, a bad recipient, a policy that forbids export.  A finance group's archive is
masked; with two recipients both identities open it."""
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time

import pytest

from conftest import Server, expect, make_group, register

AGE = shutil.which("age")
AGE_KEYGEN = shutil.which("age-keygen")
pytestmark = pytest.mark.skipif(not AGE or not AGE_KEYGEN or not shutil.which("zstd"),
                                reason="Debian's age, age-keygen and zstd are needed")


@pytest.fixture(scope="module")
def srv():
    s = Server().start()
    yield s
    s.stop()


def run(*args, input=None):
    r = subprocess.run(list(args), input=input, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout


def keygen(tmp, name):
    path = tmp / name
    run(AGE_KEYGEN, "-o", str(path))
    return path, run(AGE_KEYGEN, "-y", str(path)).decode().strip()


def wait_done(client, xid, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        x = expect(client.get(f"/v1/exports/{xid}"), 200)
        assert x["id"] == xid and {"messages", "files", "bytes"} <= set(x["progress"])
        if x["state"] != "running":
            return x
        time.sleep(0.2)
    raise AssertionError(f"export {xid} still running")


def open_archive(data, key, dest):
    """age -d -i key | zstd -d | tar x into dest."""
    plain = run(AGE, "-d", "-i", str(key), input=data)
    tar = run("zstd", "-d", "-c", input=plain)
    os.makedirs(dest, exist_ok=True)
    run("tar", "-x", "-C", str(dest), input=tar)
    return dest


def is_digest(name):
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def check_manifest(dest):
    m = json.loads((dest / "manifest.json").read_text())
    assert m["format"] == "qun-group-archive" and m["format_version"] == 1
    on_disk = set()
    for root, _, files in os.walk(dest):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), dest)
            # The human-readable views are not listed: the transcript, and the files
            # under their original names (hard links to files/<sha256>).
            if rel == "messages.html" or (rel.startswith("files/") and not is_digest(rel[6:])):
                continue
            if rel != "manifest.json":
                on_disk.add(rel)
    assert set(m["digests"]) == on_disk, (set(m["digests"]) ^ on_disk)
    for name, digest in m["digests"].items():
        assert hashlib.sha256((dest / name).read_bytes()).hexdigest() == digest, name
    return m


def export(client, gid, recipients):
    x = expect(client.post(f"/v1/groups/{gid}/exports", {"recipients": recipients}), 202)
    assert x["id"].startswith("x_") and x["state"] == "running" and x["group"] == gid
    assert x["progress"] == {"messages": 0, "files": 0, "bytes": 0}
    return wait_done(client, x["id"])


def test_export_round_trip(srv, tmp_path):
    owner, alice, bob = register(srv.url), register(srv.url), register(srv.url)
    gid = make_group(owner, admins=[alice], members=[bob], name="export me")
    authors = [owner, alice, bob]
    texts = []
    for i in range(300):
        t = f"message {i} from {authors[i % 3].username} ✓"
        texts.append(t)
        expect(authors[i % 3].post(f"/v1/groups/{gid}/messages", {"text": t}), 201)
    blobs = {}
    for i, size in enumerate([1, 65536, 300000]):
        data = os.urandom(size)
        f = expect(alice.post(f"/v1/groups/{gid}/files?name=f{i}.bin", raw=data), 201)
        blobs[f["digest"]] = data
    p = expect(owner.post(f"/v1/groups/{gid}/payments", {"amount": 300, "shares": 3, "memo": "lunch"}), 201)
    expect(bob.post(f"/v1/groups/{gid}/payments/{p['id']}/claim", {}), 201)

    key, recipient = keygen(tmp_path, "k.txt")
    x = export(owner, gid, [recipient])
    assert x["state"] == "done", x
    assert x["progress"]["messages"] == 303 and x["progress"]["files"] == 3 and x["progress"]["bytes"] == x["size"]
    r = owner.get(f"/v1/exports/{x['id']}/download")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/age"
    data = r.content
    assert len(data) == x["size"] and hashlib.sha256(data).hexdigest() == x["digest"]

    dest = open_archive(data, key, tmp_path / "out")
    m = check_manifest(dest)
    assert m["group"] == {"id": gid, "name": "export me", "kind": "standard"}
    assert m["counts"] == {"members": 3, "messages": 303, "files": 3, "file_bytes": 365537, "payments": 1}
    assert m["export"] == x["id"] and m["desensitized"] is False
    members = json.loads((dest / "members.json").read_text())
    assert {(mm["openid"], mm["role"]) for mm in members} == {
        (owner.openid, "owner"), (alice.openid, "admin"), (bob.openid, "member")}
    lines = [json.loads(l) for l in (dest / "messages.jsonl").read_text().splitlines()]
    assert len(lines) == 303
    # The uploads came last: their file messages name the files.
    assert [l["text"] for l in lines[300:]] == ["f0.bin", "f1.bin", "f2.bin"]
    lines = lines[:300]
    assert [l["seq"] for l in lines] == sorted(l["seq"] for l in lines)
    assert [l["text"] for l in lines] == texts
    assert [l["author"] for l in lines] == [authors[i % 3].openid for i in range(300)]
    assert all(l["kind"] == "text" and l["created_at"] > 0 for l in lines)
    for digest, content in blobs.items():
        assert (dest / "files" / digest).read_bytes() == content
    index = [json.loads(l) for l in (dest / "files.jsonl").read_text().splitlines()]
    assert sorted(f["name"] for f in index) == ["f0.bin", "f1.bin", "f2.bin"]
    assert all(f["uploader"] == alice.openid for f in index)
    pays = [json.loads(l) for l in (dest / "payments.jsonl").read_text().splitlines()]
    assert len(pays) == 1 and pays[0]["id"] == p["id"] and pays[0]["amount"] == 300
    assert pays[0]["memo"] == "lunch" and pays[0]["creator"] == owner.openid
    assert [c["openid"] for c in pays[0]["claims"]] == [bob.openid]

    # The ledger has the export, with the digest of the file downloaded.
    hist = expect(owner.get(f"/v1/groups/{gid}/history?limit=200"), 200)["items"]
    made = [json.loads(h["entry"]) for h in hist if h["event"] == "export.made"]
    assert len(made) == 1
    e = made[0]
    assert e["digest"] == hashlib.sha256(data).hexdigest() and e["export"] == x["id"]
    assert e["actor"] == owner.openid and e["recipients"] == 1 and e["counts"]["messages"] == 303
    assert e["seq"] == x["ledger_index"]

    # Only its requester sees or downloads it; only the owner exports.
    expect(alice.get(f"/v1/exports/{x['id']}"), 404, "EXPORT_NOT_FOUND")
    expect(alice.get(f"/v1/exports/{x['id']}/download"), 404, "EXPORT_NOT_FOUND")
    expect(alice.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient]}), 403, "FORBIDDEN_ROLE")
    outsider = register(srv.url)
    expect(outsider.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient]}), 404, "GROUP_NOT_FOUND")
    expect(owner.get("/v1/exports/x_nosuchexport"), 404, "EXPORT_NOT_FOUND")


def test_bad_requests(srv, tmp_path):
    owner = register(srv.url)
    gid = make_group(owner)
    _, recipient = keygen(tmp_path, "k.txt")
    p = expect(owner.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient, "age1notarecipient"]}), 422,
               "AGE_KEY_INVALID")
    assert p["field"] == "recipients[1]"
    # An identity is not a recipient.
    ident = [l for l in (tmp_path / "k.txt").read_text().splitlines() if l.startswith("AGE-SECRET-KEY-")][0]
    expect(owner.post(f"/v1/groups/{gid}/exports", {"recipients": [ident]}), 422, "AGE_KEY_INVALID")
    expect(owner.post(f"/v1/groups/{gid}/exports", {"recipients": []}), 422, "FIELD_INVALID")
    expect(owner.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient] * 17}), 422, "FIELD_INVALID")
    expect(owner.post(f"/v1/groups/{gid}/exports", {}), 422, "FIELD_MISSING")
    expect(owner.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient], "x": 1}), 422, "FIELD_UNKNOWN")
    # A region whose policy forbids export.
    cn = expect(owner.post("/v1/groups", {"name": "z", "kind": "cross_border", "regions": ["eu", "cn"]}), 201)["id"]
    p = expect(owner.post(f"/v1/groups/{cn}/exports", {"recipients": [recipient]}), 403, "EXPORT_FORBIDDEN")
    assert "region:cn" in p["detail"]


def test_finance_group_is_masked_and_two_recipients(srv, tmp_path):
    owner, member = register(srv.url), register(srv.url)
    g = expect(owner.post("/v1/groups", {"name": "desk", "kind": "finance"}), 201)["id"]
    expect(owner.post(f"/v1/groups/{g}/members", {"openid": member.openid}), 201)
    expect(member.post(f"/v1/groups/{g}/messages", {"text": "call me at 13812345678"}), 201)
    expect(owner.post(f"/v1/groups/{g}/messages", {"text": "card 4111111111111111 ok"}), 201)
    expect(owner.post(f"/v1/groups/{g}/messages", {"text": "nothing to hide"}), 201)
    k1, r1 = keygen(tmp_path, "a.txt")
    k2, r2 = keygen(tmp_path, "b.txt")
    x = export(owner, g, [r1, r2])
    assert x["state"] == "done" and x["desensitized"] is True, x
    data = expect_bytes(owner.get(f"/v1/exports/{x['id']}/download"))
    outs = []
    for k in (k1, k2):
        dest = open_archive(data, k, tmp_path / ("out-" + k.name))
        check_manifest(dest)
        outs.append((dest / "messages.jsonl").read_text())
    assert outs[0] == outs[1]
    texts = [json.loads(l)["text"] for l in outs[0].splitlines()]
    assert "13812345678" not in outs[0] and "4111111111111111" not in outs[0]
    assert texts[2] == "nothing to hide" and "*" in texts[0] and "*" in texts[1]
    assert len(texts[0]) == len("call me at 13812345678")
    m = json.loads((tmp_path / "out-a.txt" / "manifest.json").read_text())
    assert m["desensitized"] is True
    assert m["counts"]["masked"] == {"phones": 1, "national_ids": 0, "bank_cards": 1}
    hist = expect(owner.get(f"/v1/groups/{g}/history"), 200)["items"]
    e = [json.loads(h["entry"]) for h in hist if h["event"] == "export.made"][0]
    assert e["counts"]["masked"] == {"phones": 1, "national_ids": 0, "bank_cards": 1}
    assert e["recipients"] == 2 and e["digest"] == hashlib.sha256(data).hexdigest()
    # A third identity opens nothing.
    k3, _ = keygen(tmp_path, "c.txt")
    r = subprocess.run([AGE, "-d", "-i", str(k3)], input=data, capture_output=True, timeout=60)
    assert r.returncode != 0


def test_failed_export_and_download_before_done(srv, tmp_path):
    """A file missing from the store fails the export with an error; nothing is ledgered."""
    owner = register(srv.url)
    gid = make_group(owner)
    f = expect(owner.post(f"/v1/groups/{gid}/files?name=gone.bin", raw=b"vanishing bytes " * 10), 201)
    path = os.path.join(srv.data, "blobs", f["digest"][:2], f["digest"])
    assert os.path.exists(path)
    os.unlink(path)
    _, recipient = keygen(tmp_path, "k.txt")
    x = expect(owner.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient]}), 202)
    expect(owner.get(f"/v1/exports/{x['id']}/download"), 409, "EXPORT_NOT_READY")  # running or failed
    x = wait_done(owner, x["id"])
    assert x["state"] == "failed" and "missing" in x["error"] and "digest" not in x
    expect(owner.get(f"/v1/exports/{x['id']}/download"), 409, "EXPORT_NOT_READY")
    hist = expect(owner.get(f"/v1/groups/{gid}/history"), 200)["items"]
    assert not [h for h in hist if h["event"] == "export.made"]
    assert not [n for n in os.listdir(os.path.join(srv.data, "exports")) if n.startswith(x["id"])]


def expect_bytes(r):
    assert r.status_code == 200, r.text[:300]
    return r.content


def test_cli_export(srv, tmp_path):
    """qun export follows the job and saves the archive after checking its digest."""
    from conftest import QUN
    owner, other = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[other])
    for i in range(5):
        expect(owner.post(f"/v1/groups/{gid}/messages", {"text": f"m{i}"}), 201)
    k1, r1 = keygen(tmp_path, "a.txt")
    k2, r2 = keygen(tmp_path, "b.txt")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "cfg"), HOME=str(tmp_path), QUN_URL=srv.url,
               QUN_TOKEN=owner.token)
    out = tmp_path / "g.age"
    r = subprocess.run([QUN, "export", gid, "--to", f"{r1},{r2}", "-o", str(out)], capture_output=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert b"verified" in r.stdout
    data = out.read_bytes()
    for k in (k1, k2):
        dest = open_archive(data, k, tmp_path / ("cli-" + k.name))
        assert check_manifest(dest)["counts"]["messages"] == 5
    hist = expect(owner.get(f"/v1/groups/{gid}/history"), 200)["items"]
    e = [json.loads(h["entry"]) for h in hist if h["event"] == "export.made"][0]
    assert e["digest"] == hashlib.sha256(data).hexdigest()
    # A member cannot; nothing is written.
    env["QUN_TOKEN"] = other.token
    r = subprocess.run([QUN, "export", gid, "--to", r1, "-o", str(tmp_path / "no.age")], capture_output=True, env=env,
                       timeout=60)
    assert r.returncode == 1 and b"FORBIDDEN_ROLE" in r.stderr
    assert not (tmp_path / "no.age").exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".qun-export-")]


def export_threads(pid):
    """(policy, nice) of each of pid's threads named qun-export, from /proc."""
    seen = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        comm, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if comm == "qun-export":
            seen.append((int(rest[38]), int(rest[16])))  # fields 41 (policy) and 19 (nice)
    return seen


@pytest.mark.sqlite_only
def test_an_export_is_not_left_to_idle_time(tmp_path):
    """Background work runs at SCHED_IDLE, so requests take the cores first; an export
    is somebody waiting for their archive, and on cores busy with requests an idle
    thread gets almost nothing.  Its threads run at the normal policy, niced to 10."""
    s = Server().start()
    try:
        owner = register(s.url)
        gid = make_group(owner, name="long export")
        s.stop()
        con = sqlite3.connect(os.path.join(s.data, "qun.db"))
        row, nxt = con.execute("SELECT id, next_seq FROM groups WHERE gid = ?", (gid,)).fetchone()
        uid = con.execute("SELECT id FROM users WHERE openid = ?", (owner.openid,)).fetchone()[0]
        n = 200000
        con.executemany("INSERT INTO messages(group_id, seq, author_id, body, created_at) VALUES (?, ?, ?, ?, ?)",
                        ((row, nxt + i, uid, f"line {i} of a long year", 1700000000) for i in range(n)))
        con.execute("UPDATE groups SET next_seq = ? WHERE id = ?", (nxt + n, row))
        con.commit()
        con.close()
        s.start()
        _, recipient = keygen(tmp_path, "k.txt")
        x = expect(owner.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient]}), 202)
        seen = []
        deadline = time.time() + 120
        while time.time() < deadline:
            seen += export_threads(s.proc.pid)
            if expect(owner.get(f"/v1/exports/{x['id']}"), 200)["state"] != "running":
                break
            time.sleep(0.002)
        assert expect(owner.get(f"/v1/exports/{x['id']}"), 200)["state"] == "done"
        assert seen, "no export thread was seen running"
        assert set(seen) == {(0, 10)}, f"(policy, nice) of the export's threads: {sorted(set(seen))}"
    finally:
        s.stop()


def test_photos_past_the_quota_fail_the_export_cleanly(tmp_path):
    """Files that do not compress go into the archive as they are (raw zstd frames); when
    the archive outgrows export_quota_bytes in the middle of one, the export fails with
    EXPORT_QUOTA_EXCEEDED, leaves no file behind, and the next export under the limit works."""
    s = Server(extra=["--set", "export_quota_bytes=262144"]).start()
    try:
        owner = register(s.url)
        gid = make_group(owner, name="photos")
        for i in range(3):
            expect(owner.post(f"/v1/groups/{gid}/files?name=p{i}.jpg", raw=os.urandom(200000),
                              headers={"Content-Type": "image/jpeg"}), 201)
        _, recipient = keygen(tmp_path, "k.txt")
        x = export(owner, gid, [recipient])
        assert x["state"] == "failed" and "EXPORT_QUOTA_EXCEEDED" in x["error"], x
        expect(owner.get(f"/v1/exports/{x['id']}/download"), 409, "EXPORT_NOT_READY")
        assert not [n for n in os.listdir(os.path.join(s.data, "exports")) if n.startswith(x["id"])]
        small = make_group(owner, name="one photo")
        expect(owner.post(f"/v1/groups/{small}/files?name=p.jpg", raw=os.urandom(100000)), 201)
        assert export(owner, small, [recipient])["state"] == "done"
    finally:
        s.stop()
