# SPDX-License-Identifier: MIT
"""Import and rebuild (docs/archive-format.md): an archive exported by this server,
decrypted locally by `qun import` and uploaded to POST /v1/imports, becomes a new group
owned by the importer with the same members, every message (author, time, text, seq
order), every file byte for byte and the payments; the manifest carries the ledger
inclusion proof of the export's content digest, which the test also verifies itself.

Refusals, each with its code and with nothing imported (the importer's group count and
the ledger's size unchanged): a flipped byte in the age header, in a middle chunk and in
the last chunk, a file truncated after a chunk boundary and a wrong identity (refused by
the CLI before anything is uploaded); and on the server, a member re-packed with other
bytes (IMPORT_DIGEST_MISMATCH), a re-packed archive whose manifest lists the new digests
(IMPORT_PROOF_INVALID: the ledger committed to the old ones), a forged proof, a cut or
garbage plaintext (IMPORT_ARCHIVE_INVALID), and importers who are not an owner or admin
in the archive (IMPORT_FORBIDDEN)."""
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time

import pytest

from conftest import QUN, Server, all_items, expect, make_group, register

CHUNK = 64 * 1024
pytestmark = pytest.mark.skipif(not shutil.which("zstd"), reason="the zstd tool is needed to re-pack archives")


@pytest.fixture(scope="module")
def srv():
    s = Server(env={"QUN_TEST_CLOCK": "1"}).start()
    yield s
    s.stop()
    assert "Sanitizer" not in s.read_log()


def cli(srv, client, *args, tmp):
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "cfg"), HOME=str(tmp), QUN_URL=srv.url, QUN_TOKEN=client.token)
    return subprocess.run([QUN, *args], capture_output=True, env=env, timeout=120)


def keygen(srv, tmp, name):
    path = tmp / name
    r = subprocess.run([QUN, "age", "keygen", "-o", str(path)], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    rcpt = [l.split(": ")[1] for l in path.read_text().splitlines() if l.startswith("# public key: ")][0]
    return path, rcpt


def tree_size(client):
    r = client.get("/v1/ledger/checkpoint")
    assert r.status_code == 200
    return int(r.text.splitlines()[1])


def group_count(client):
    return len(all_items(client, "/v1/groups"))


def leaf_hash(entry):
    return hashlib.sha256(b"\x00" + entry.encode()).digest()


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 section 2.1.3.2."""
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def advance(srv, seconds):
    import requests
    assert requests.post(srv.url + "/v1/test/clock", json={"advance": seconds}, timeout=10).status_code == 200


@pytest.fixture(scope="module")
def world(srv, tmp_path_factory):
    """A group of 4 with 400 messages over several days (and 4 more, the uploads' file
    messages), 4 files (two incompressible,
    so the archive spans many 64 KiB chunks) and a claimed payment, exported."""
    tmp = tmp_path_factory.mktemp("import")
    owner, alice, bob, carol = (register(srv.url) for _ in range(4))
    gid = make_group(owner, admins=[alice], members=[bob, carol], name="rebuild me ✓")
    authors = [owner, alice, bob, carol]
    for i in range(400):
        if i % 100 == 0:
            advance(srv, 86400)
        last = expect(authors[i % 4].post(f"/v1/groups/{gid}/messages", {"text": f"line {i} by {authors[i % 4].username} — é"}), 201)
    # The last line recalled by its author (carol), the one before removed by the owner.
    expect(carol.req("DELETE", f"/v1/groups/{gid}/messages/{last['seq']}"), 200)
    expect(owner.req("DELETE", f"/v1/groups/{gid}/messages/{last['seq'] - 1}", {"reason": "spam"}), 200)
    blobs = {}
    for i, size in enumerate([1, 65536, 300000, 200000]):
        data = os.urandom(size)
        f = expect([alice, bob][i % 2].post(f"/v1/groups/{gid}/files?name=f{i}.bin", raw=data,
                                           headers={"Content-Type": "application/x-test"}), 201)
        blobs[f["digest"]] = data
    p = expect(owner.post(f"/v1/groups/{gid}/payments", {"amount": 900, "shares": 3, "memo": "dinner"}), 201)
    expect(bob.post(f"/v1/groups/{gid}/payments/{p['id']}/claim", {}), 201)
    expect(carol.post(f"/v1/groups/{gid}/payments/{p['id']}/claim", {}), 201)

    key, rcpt = keygen(srv, tmp, "key.txt")
    x = expect(owner.post(f"/v1/groups/{gid}/exports", {"recipients": [rcpt]}), 202)
    deadline = time.time() + 60
    while x["state"] == "running" and time.time() < deadline:
        time.sleep(0.2)
        x = expect(owner.get(f"/v1/exports/{x['id']}"), 200)
    assert x["state"] == "done", x
    data = owner.get(f"/v1/exports/{x['id']}/download").content
    assert hashlib.sha256(data).hexdigest() == x["digest"]
    assert len(data) > 6 * CHUNK  # several chunks, so "middle" and "last" differ
    path = tmp / "g.age"
    path.write_bytes(data)
    r = subprocess.run([QUN, "age", "decrypt", "-i", str(key), str(path)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    plain = r.stdout
    tar = subprocess.run(["zstd", "-d", "-c"], input=plain, capture_output=True, check=True).stdout
    advance(srv, 86400)  # an import happens later; the history keeps its own times
    return dict(tmp=tmp, owner=owner, alice=alice, bob=bob, carol=carol, gid=gid, blobs=blobs, payment=p,
                key=key, export=x, data=data, path=path, plain=plain, tar=tar)


def members_of(tar):
    """(TarInfo, bytes) of every member, in archive order."""
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        return [(m, t.extractfile(m).read()) for m in t.getmembers()]


def repack(members, edit):
    """A zstd-compressed tar of members with edit(name, bytes) -> bytes applied."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for info, content in members:
            if info.islnk():  # a file under its own name: a hard link, kept as one
                t.addfile(info)
                continue
            content = edit(info.name, content)
            info = tarfile.TarInfo(info.name)
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            t.addfile(info, io.BytesIO(content))
    return subprocess.run(["zstd", "-c", "-q"], input=buf.getvalue(), capture_output=True, check=True).stdout


def test_manifest_carries_the_ledger_proof(world):
    m = json.loads(dict((i.name, c) for i, c in members_of(world["tar"]))["manifest.json"])
    lg = m["ledger"]
    e = json.loads(lg["entry"])
    assert lg["event"] == e["event"] == "export.content"
    assert e["export"] == m["export"] == world["export"]["id"] and e["group"] == world["gid"]
    assert e["actor"] == world["owner"].openid
    # The content digest is SHA-256 over "<sha256>  <name>\n" of every other member, in archive order.
    listing = "".join(f"{d}  {n}\n" for n, d in m["digests"].items())
    assert hashlib.sha256(listing.encode()).hexdigest() == m["content_digest"] == e["content_digest"]
    assert lg["tree_size"] == lg["index"] + 1 and lg["leaf_hash"] == leaf_hash(lg["entry"]).hex()
    assert verify_inclusion(leaf_hash(lg["entry"]), lg["index"], lg["tree_size"],
                            [bytes.fromhex(h) for h in lg["proof"]], bytes.fromhex(lg["root"]))
    # The same entry is in the server's ledger, and export.made points back at it.
    owner = world["owner"]
    got = expect(owner.get(f"/v1/ledger/entries?start={lg['index']}&end={lg['index'] + 1}"), 200)["items"][0]
    assert got["entry"] == lg["entry"]
    made = [json.loads(h["entry"]) for h in expect(owner.get(f"/v1/groups/{world['gid']}/history?limit=200"), 200)["items"]
            if h["event"] == "export.made"]
    assert made[0]["content_index"] == lg["index"] and made[0]["content_digest"] == m["content_digest"]


def check_rebuilt(world, importer, new):
    """The new group reproduces the original, seen by the importer."""
    old, gid = world["owner"], world["gid"]
    assert new != gid
    g = expect(importer.get(f"/v1/groups/{new}"), 200)
    assert g["name"] == "rebuild me ✓" and g["state"] == "active"
    old_members = {m["openid"]: m for m in all_items(old, f"/v1/groups/{gid}/members")}
    new_members = {m["openid"]: m for m in all_items(importer, f"/v1/groups/{new}/members")}
    assert set(new_members) == set(old_members)
    for openid, m in new_members.items():
        # Today's rules for adding members: the owner gives back each current role; an
        # admin appoints no admins, so in an admin's copy everyone else is a member.
        by_owner = old_members[importer.openid]["role"] == "owner"
        want = "owner" if openid == importer.openid else (old_members[openid]["role"] if by_owner else "member")
        assert m["role"] == want, (openid, m)
        assert m["joined_at"] == old_members[openid]["joined_at"]
    want = all_items(old, f"/v1/groups/{gid}/messages")
    got = all_items(importer, f"/v1/groups/{new}/messages")
    assert len(got) == 404
    key = lambda m: (m["seq"], m["author"], m["created_at"], m.get("text"), m["kind"], m.get("recalled"), m.get("removed"))
    assert [key(m) for m in got] == [key(m) for m in want]
    # Recalled and removed messages come back so, without text; the archive names no remover.
    gone = {m["seq"]: m for m in got if m.get("recalled")}
    assert len(gone) == 2, gone
    recalled, removed = gone[max(gone)], gone[min(gone)]
    assert not recalled["removed"] and recalled["by"] == world["carol"].openid
    assert removed["removed"] and removed["by"] is None and "text" not in removed
    assert len({m["created_at"] for m in got}) > 1
    files = all_items(importer, f"/v1/groups/{new}/files")
    old_files = {f["digest"]: f for f in all_items(old, f"/v1/groups/{gid}/files")}
    assert {f["digest"] for f in files} == set(world["blobs"])
    for f in files:
        o = old_files[f["digest"]]
        assert (f["name"], f["content_type"], f["size"], f["uploader"], f["created_at"]) == \
               (o["name"], o["content_type"], o["size"], o["uploader"], o["created_at"])
        r = importer.get(f"/v1/groups/{new}/files/{f['digest']}")
        assert r.status_code == 200 and r.content == world["blobs"][f["digest"]]
    pays = expect(importer.get(f"/v1/groups/{new}/payments"), 200)["items"]
    old_pays = expect(old.get(f"/v1/groups/{gid}/payments"), 200)["items"]
    assert len(pays) == 1 and pays[0]["id"] != old_pays[0]["id"]
    fields = ("kind", "creator", "amount", "shares", "claimed_amount", "claimed_shares", "memo", "created_at")
    assert [pays[0][k] for k in fields] == [old_pays[0][k] for k in fields]
    # The new group takes new messages after the restored ones.
    m = expect(importer.post(f"/v1/groups/{new}/messages", {"text": "after the import"}), 201)
    assert m["seq"] == want[-1]["seq"] + 1
    # The import is ledgered in the new group's history, naming its source.
    hist = expect(importer.get(f"/v1/groups/{new}/history?limit=200"), 200)["items"]
    made = [json.loads(h["entry"]) for h in hist if h["event"] == "import.made"]
    assert len(made) == 1 and made[0]["actor"] == importer.openid
    assert made[0]["source"]["export"] == world["export"]["id"] and made[0]["source"]["group"] == gid
    assert made[0]["counts"] == {"members": 4, "messages": 404, "files": 4, "payments": 1}
    return made[0]


def test_cli_round_trip(srv, world):
    owner = world["owner"]
    before = tree_size(owner)
    r = cli(srv, owner, "--json", "import", str(world["path"]), "--identity", str(world["key"]), tmp=world["tmp"])
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["counts"] == {"members": 4, "messages": 404, "files": 4, "payments": 1}
    assert out["skipped_members"] == [] and out["source"]["export"] == world["export"]["id"]
    made = check_rebuilt(world, owner, out["group"])
    assert made["seq"] == out["ledger_index"]
    # group.created + import.made (+ nothing else).
    assert tree_size(owner) == before + 2
    # Without --json: one human line.
    r = cli(srv, owner, "import", str(world["path"]), "-i", str(world["key"]), tmp=world["tmp"])
    assert r.returncode == 0 and b"imported group g_" in r.stdout and b"404 messages" in r.stdout, r.stderr


def test_api_import_by_an_admin(world):
    """An admin of the archived group may import too; as an admin adds members today,
    everyone else (the owner too) joins the copy as a member."""
    alice = world["alice"]
    r = alice.post("/v1/imports", raw=world["plain"], headers={"Content-Type": "application/zstd"})
    out = expect(r, 201)
    check_rebuilt(world, alice, out["group"])


def refused_by_cli(srv, world, data, code, name, key=None):
    owner = world["owner"]
    groups, size = group_count(owner), tree_size(owner)
    path = world["tmp"] / name
    path.write_bytes(data)
    r = cli(srv, owner, "import", str(path), "--identity", str(key or world["key"]), tmp=world["tmp"])
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert f"({code})".encode() in r.stderr, r.stderr
    assert group_count(owner) == groups and tree_size(owner) == size


def header_len(data):
    return data.index(b"\n---") + data[data.index(b"\n---") + 1:].index(b"\n") + 2


def test_cli_refuses_a_damaged_or_foreign_archive(srv, world):
    data = world["data"]
    hl = header_len(data)
    payload = hl + 16  # the payload nonce, then chunks of 64 KiB + 16 tag bytes
    # Header: a different character in the MAC.
    mac_at = data.index(b"\n--- ") + 5
    flipped = bytearray(data)
    flipped[mac_at + 3] = ord("A") if flipped[mac_at + 3] != ord("A") else ord("B")
    refused_by_cli(srv, world, bytes(flipped), "AGE_HMAC_INVALID", "header.age")
    # A flipped byte in a middle chunk and in the last chunk.
    for name, at in (("middle.age", payload + 2 * (CHUNK + 16) + 1000), ("last.age", len(data) - 5)):
        flipped = bytearray(data)
        flipped[at] ^= 0x01
        refused_by_cli(srv, world, bytes(flipped), "AGE_PAYLOAD_INVALID", name)
    # Cut right after the third chunk.
    refused_by_cli(srv, world, data[:payload + 3 * (CHUNK + 16)], "AGE_PAYLOAD_INVALID", "cut.age")
    # Someone else's identity.
    other, _ = keygen(srv, world["tmp"], "other.txt")
    refused_by_cli(srv, world, data, "AGE_NO_MATCH", "foreign.age", key=other)


def refused_by_server(world, client, body, status, code):
    owner = world["owner"]
    groups, size = group_count(client), tree_size(owner)
    p = expect(client.post("/v1/imports", raw=body, headers={"Content-Type": "application/zstd"}), status, code)
    assert group_count(client) == groups and tree_size(owner) == size
    return p


def test_server_refuses_tampered_content(world):
    owner = world["owner"]
    members = members_of(world["tar"])
    names = [i.name for i, _ in members]
    assert names[0] == "members.json" and names[-1] == "manifest.json"

    def other_text(name, content):
        return content.replace(b"line 7 by", b"line 8 by", 1) if name == "messages.jsonl" else content

    # A member with other bytes than the manifest lists.
    p = refused_by_server(world, owner, repack(members, other_text), 422, "IMPORT_DIGEST_MISMATCH")
    assert "messages.jsonl" in p["detail"]
    # A file whose bytes no longer match its name.
    blob = [n for n in names if n.startswith("files/")][0]
    p = refused_by_server(world, owner, repack(members, lambda n, c: c + b"x" if n == blob else c), 422,
                          "IMPORT_DIGEST_MISMATCH")
    assert blob in p["detail"]
    # The same, with the manifest's digests updated to match: the ledger committed to the old ones.
    new_digest = hashlib.sha256(other_text("messages.jsonl", dict((i.name, c) for i, c in members)["messages.jsonl"])).hexdigest()

    def consistent(name, content):
        if name == "manifest.json":
            m = json.loads(content)
            m["digests"]["messages.jsonl"] = new_digest
            listing = "".join(f"{d}  {n}\n" for n, d in m["digests"].items())
            m["content_digest"] = hashlib.sha256(listing.encode()).hexdigest()
            return json.dumps(m).encode()
        return other_text(name, content)

    refused_by_server(world, owner, repack(members, consistent), 422, "IMPORT_PROOF_INVALID")

    # A forged proof around an untouched content.
    def forged(name, content):
        if name == "manifest.json":
            m = json.loads(content)
            m["ledger"]["root"] = hashlib.sha256(b"forged").hexdigest()
            return json.dumps(m).encode()
        return content

    refused_by_server(world, owner, repack(members, forged), 422, "IMPORT_PROOF_INVALID")
    # A missing member the manifest lists.
    refused_by_server(world, owner, repack([(i, c) for i, c in members if i.name != blob], lambda n, c: c), 422,
                      "IMPORT_DIGEST_MISMATCH")
    # The untouched re-pack is accepted (the check is on content, not on tar bytes).
    out = expect(owner.post("/v1/imports", raw=repack(members, lambda n, c: c)), 201)
    assert out["counts"]["messages"] == 404


def test_server_refuses_broken_plaintext_and_outsiders(srv, world):
    owner, plain = world["owner"], world["plain"]
    refused_by_server(world, owner, plain[:len(plain) // 2], 422, "IMPORT_ARCHIVE_INVALID")
    refused_by_server(world, owner, plain[:-3], 422, "IMPORT_ARCHIVE_INVALID")
    refused_by_server(world, owner, b"not an archive at all" * 100, 422, "IMPORT_ARCHIVE_INVALID")
    refused_by_server(world, owner, world["data"], 422, "IMPORT_ARCHIVE_INVALID")  # still encrypted
    p = refused_by_server(world, owner, b"", 422, "FIELD_INVALID")
    assert p["field"] == "body"
    # Not an owner or admin of the archived group.
    refused_by_server(world, world["bob"], plain, 403, "IMPORT_FORBIDDEN")
    refused_by_server(world, register(srv.url), plain, 403, "IMPORT_FORBIDDEN")
    expect(Client_anonymous(srv).post("/v1/imports", raw=plain), 401)


def Client_anonymous(srv):
    from conftest import Client
    return Client(srv.url)


def test_archive_of_another_server_is_refused(world, tmp_path):
    """A second server has its own ledger: the proof does not hold there."""
    other = Server().start()
    try:
        u = register(other.url)
        before = tree_size(u)
        expect(u.post("/v1/imports", raw=world["plain"]), 422, "IMPORT_PROOF_INVALID")
        assert tree_size(u) == before and group_count(u) == 0
    finally:
        other.stop()


def test_import_limit_bounds_what_an_archive_expands_to(world):
    """A few KiB of zstd that expand to 10 MiB, and the real archive, on a server whose
    import_limit is 100 kB: 413 IMPORT_TOO_LARGE while reading, nothing kept."""
    small = Server(extra=["--set", "import_limit=100000"]).start()
    try:
        u = register(small.url)
        before = tree_size(u)
        zeros = b"\0" * (10 << 20)
        bomb = repack([(tarfile.TarInfo("messages.jsonl"), zeros)], lambda n, c: c)
        assert len(bomb) < 4096
        p = expect(u.post("/v1/imports", raw=bomb), 413, "IMPORT_TOO_LARGE")
        assert "import_limit" in p["detail"]
        expect(u.post("/v1/imports", raw=world["plain"]), 413, "IMPORT_TOO_LARGE")
        assert tree_size(u) == before and group_count(u) == 0
        imports = os.path.join(small.data, "imports")
        assert not os.path.isdir(imports) or os.listdir(imports) == []
    finally:
        small.stop()


def test_a_members_own_copy_does_not_rebuild_the_group(srv, world, tmp_path):
    """A scope "self" export (here the owner's own copy) holds only its requester's payment
    lines: the server refuses to rebuild a group from it.  The scope it trusts is the one in
    its own ledger entry, not the manifest's, which the content digest does not cover."""
    owner, gid = world["owner"], world["gid"]
    key, rcpt = keygen(srv, tmp_path, "own.txt")
    x = expect(owner.post(f"/v1/groups/{gid}/exports", {"recipients": [rcpt], "scope": "self"}), 202)
    deadline = time.time() + 60
    while x["state"] == "running" and time.time() < deadline:
        time.sleep(0.2)
        x = expect(owner.get(f"/v1/exports/{x['id']}"), 200)
    assert x["state"] == "done", x
    path = tmp_path / "own.age"
    path.write_bytes(owner.get(f"/v1/exports/{x['id']}/download").content)
    r = subprocess.run([QUN, "age", "decrypt", "-i", str(key), str(path)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    p = refused_by_server(world, owner, r.stdout, 422, "IMPORT_ARCHIVE_INVALID")
    assert "own copy" in p["detail"]
