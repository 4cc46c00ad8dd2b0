# SPDX-License-Identifier: MIT
"""What survives a dissolution, and who may rebuild a group from an archive.

- A purge (messages: delete) takes the group's exports and storage grants with it: the
  receipt counts them, the owner's download answers 410 EXPORT_PURGED, the grant holder's
  token no longer works, an archive of the group no longer rebuilds it, and no file under
  the data directory holds a message's text, a file's bytes, an export of the group or a
  blob of its files (the test walks the whole directory, the SQLite database and its WAL
  included).
- Import judges the importer on the group as it is now: an admin removed since the export
  cannot import, and the rebuilt group gets only people who are members now, with the
  roles the importer may give today.
- An uncompressed tar is refused with 415 IMPORT_NOT_ZSTD; the grant download route
  answers another group's export exactly as an id that never existed."""
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid

import pytest
import requests

from conftest import PG, QUN, Server, all_items, expect, make_group, register, stop_clean
# Zero timers and the test clock: the dissolution is marked as soon as its timer job runs,
# and the purge follows at once.
from test_07_dissolution import server as srv  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(not shutil.which("zstd"), reason="the zstd tool is needed to unpack archives")

def keygen(tmp, name):
    path = tmp / name
    r = subprocess.run([QUN, "age", "keygen", "-o", str(path)], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return path, [l.split(": ")[1] for l in path.read_text().splitlines() if l.startswith("# public key: ")][0]


def exported(client, gid, recipient, scope="group"):
    x = expect(client.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient], "scope": scope}), 202)
    deadline = time.time() + 60
    while x["state"] == "running" and time.time() < deadline:
        time.sleep(0.1)
        x = expect(client.get(f"/v1/exports/{x['id']}"), 200)
    assert x["state"] == "done", x
    return x


def plaintext(client, x, key, tmp):
    """The archive's plaintext (the zstd-compressed tar), as `qun import` uploads it."""
    path = tmp / (x["id"] + ".age")
    r = client.get(f"/v1/exports/{x['id']}/download")
    assert r.status_code == 200
    path.write_bytes(r.content)
    r = subprocess.run([QUN, "age", "decrypt", "-i", str(key), str(path)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def tree_size(client):
    return int(expect_text(client.get("/v1/ledger/checkpoint")).splitlines()[1])


def expect_text(r):
    assert r.status_code == 200, r.text
    return r.text


def group_ids(client):
    return {g["id"] for g in all_items(client, "/v1/groups")}


def grant_app(url, token, path):
    return requests.get(url + path, headers={"Authorization": "Bearer " + token}, timeout=30)


def wait_state(owner, gid, state, timeout=20):
    deadline = time.time() + timeout
    while True:
        st = expect(owner.get(f"/v1/groups/{gid}/dissolution"), 200)
        if st["state"] == state:
            return st
        assert time.time() < deadline, f"still {st['state']}: {st}"
        time.sleep(0.1)


def files_holding(root, needles):
    """The files under root whose bytes contain any of needles, with the needle found."""
    found = []
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            try:
                with open(p, "rb") as f:
                    data = f.read()
            except FileNotFoundError:  # a staging file that came and went
                continue
            found += [(os.path.relpath(p, root), needle[:24]) for needle in needles if needle in data]
    return found


def test_the_purge_takes_exports_grants_and_every_copy_of_the_content(srv, tmp_path):
    owner, alice, bob = (register(srv.url) for _ in range(3))
    gid = make_group(owner, admins=[alice], members=[bob], name="purge me")
    people = [owner, alice, bob]
    texts = [f"purge-secret-{uuid.uuid4().hex}-{i}" for i in range(30)]
    for i, t in enumerate(texts):
        expect(people[i % 3].post(f"/v1/groups/{gid}/messages", {"text": t}), 201)
    contents = [os.urandom(5000), os.urandom(70000)]
    digests = [expect(alice.post(f"/v1/groups/{gid}/files?name=f{i}.bin", raw=c), 201)["digest"]
               for i, c in enumerate(contents)]
    key, rcpt = keygen(tmp_path, "k.txt")
    whole = exported(owner, gid, rcpt)
    own = exported(owner, gid, rcpt, scope="self")
    plain = plaintext(owner, whole, key, tmp_path)  # downloaded before the purge: the owner's to keep
    grant = expect(owner.post(f"/v1/groups/{gid}/grants", {"expires_in": 86400, "label": "vendor"}), 201)
    assert grant_app(srv.url, grant["token"], f"/v1/grant/exports/{whole['id']}/download").status_code == 200
    exports_dir = os.path.join(srv.data, "exports")
    assert {whole["id"] + ".age", own["id"] + ".age"} <= set(os.listdir(exports_dir))
    # The walk finds the content before the purge (so it can find it after).
    needles = [t.encode() for t in texts] + [c[1000:1064] for c in contents]
    if not PG:
        assert {n for _, n in files_holding(srv.data, needles)} >= {texts[0].encode()[:24]}

    # The preview says what happens to the exports and the grant.
    p = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "delete"}), 200)
    imp = p["impact"]
    assert imp["exports"]["count"] == 2 and imp["exports"]["bytes"] == whole["size"] + own["size"]
    assert imp["exports"]["kept_by"] == "none" and imp["exports"]["held"] is False
    assert "deleted with the purge" in imp["exports"]["rule"]
    assert imp["grants"]["count"] == 1 and "deleted with the purge" in imp["grants"]["rule"]
    expect(owner.post(f"/v1/groups/{gid}/dissolution", {"messages": "delete", "typed_name": p["name"],
                                                        "confirmation_token": p["confirmation_token"]}), 202)
    st = wait_state(owner, gid, "purged")
    r = st["receipt"]
    assert r["messages_deleted"] == 30 + 2 + 2  # the file messages, the pending and dissolved notices
    assert r["exports_deleted"] == 2 and r["export_bytes_deleted"] == whole["size"] + own["size"]
    assert r["grants_deleted"] == 1 and r["message_events_deleted"] >= 30
    assert r["files_removed"] == 2 and r["blobs_released"] == 2
    # The ledger's receipt is the same.
    hist = expect(owner.get(f"/v1/groups/{gid}/history?limit=200"), 200)["items"]
    ledgered = [json.loads(h["entry"]) for h in hist if h["event"] == "group.purged"][0]["receipt"]
    assert ledgered["exports_deleted"] == 2 and ledgered["grants_deleted"] == 1

    # Nobody downloads the server copies any more.
    for x in (whole, own):
        got = expect(owner.get(f"/v1/exports/{x['id']}"), 200)
        assert got["purged_at"] >= st["dissolved_at"]
        expect(owner.get(f"/v1/exports/{x['id']}/download"), 410, "EXPORT_PURGED")
    expect(grant_app(srv.url, grant["token"], f"/v1/grant/exports/{whole['id']}/download"), 401, "GRANT_INVALID")
    expect(grant_app(srv.url, grant["token"], "/v1/grant/exports"), 401, "GRANT_INVALID")
    # The copy the owner downloaded does not rebuild the purged group.
    size, groups = tree_size(owner), group_ids(owner)
    p = expect(owner.post("/v1/imports", raw=plain, headers={"Content-Type": "application/zstd"}), 410,
               "IMPORT_SOURCE_GONE")
    assert "purged" in p["detail"]
    assert tree_size(owner) == size and group_ids(owner) == groups

    # No file under the data directory holds the group's content.  (SQLite truncates its
    # WAL right after the purge's last step: allow it a moment.)
    left = [n for n in os.listdir(exports_dir) if n.startswith((whole["id"], own["id"]))]
    assert left == []
    for d in digests:
        assert not os.path.exists(os.path.join(srv.data, "blobs", d[:2], d))
    deadline = time.time() + 10
    while (found := files_holding(srv.data, needles)) and time.time() < deadline:
        time.sleep(0.2)
    assert found == []


def test_import_judges_the_importer_and_the_members_as_they_are_now(srv, tmp_path):
    owner, alice, bob, carol, dave = (register(srv.url) for _ in range(5))
    gid = make_group(owner, admins=[alice], members=[bob, carol], name="old team")
    expect(bob.post(f"/v1/groups/{gid}/messages", {"text": "before the export"}), 201)
    key, rcpt = keygen(tmp_path, "k.txt")
    x = exported(owner, gid, rcpt)
    plain = plaintext(owner, x, key, tmp_path)

    # Since the export: alice (an admin) was removed, bob left, carol became an admin and
    # dave joined.
    expect(owner.delete(f"/v1/groups/{gid}/members/{alice.openid}"), 204)
    expect(bob.post(f"/v1/groups/{gid}/leave"), 204)
    expect(owner.patch(f"/v1/groups/{gid}/members/{carol.openid}", {"role": "admin"}), 200)
    expect(owner.post(f"/v1/groups/{gid}/members", {"openid": dave.openid}), 201)

    # The removed admin holds an archive that names her admin: it gives her nothing.
    size = tree_size(owner)
    p = expect(alice.post("/v1/imports", raw=plain), 403, "IMPORT_FORBIDDEN")
    assert "not a member" in p["detail"]
    expect(bob.post("/v1/imports", raw=plain), 403, "IMPORT_FORBIDDEN")
    expect(dave.post("/v1/imports", raw=plain), 403, "IMPORT_FORBIDDEN")  # a member now, not in charge
    assert tree_size(owner) == size and group_ids(alice) == set() and group_ids(bob) == set()

    def members(client, new):
        return {m["openid"]: m["role"] for m in all_items(client, f"/v1/groups/{new}/members")}

    # The owner's copy: the people who are members now, with their roles now.  Nobody
    # who left or was removed is put back; dave joined after the export, so he is not in it.
    out = expect(owner.post("/v1/imports", raw=plain), 201)
    assert members(owner, out["group"]) == {owner.openid: "owner", carol.openid: "admin"}
    assert sorted(out["skipped_members"]) == sorted([alice.openid, bob.openid])
    assert sorted((s["openid"], s["reason"]) for s in out["skipped"]) == sorted(
        [(alice.openid, "not_a_member_now"), (bob.openid, "not_a_member_now")])
    assert out["counts"]["members"] == 2 and out["counts"]["messages"] == 1
    assert out["group"] not in group_ids(alice) | group_ids(bob)

    # `qun import` says who was not added and why.
    env = dict(os.environ, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"), QUN_URL=srv.url,
               QUN_TOKEN=owner.token)
    r = subprocess.run([QUN, "import", str(tmp_path / (x["id"] + ".age")), "-i", str(key)], capture_output=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"not added: {alice.openid} (no longer a member of the archived group)".encode() in r.stdout, r.stdout

    # An admin's copy: an admin adds members only, so the owner joins it as a member.
    out = expect(carol.post("/v1/imports", raw=plain), 201)
    assert members(carol, out["group"]) == {carol.openid: "owner", owner.openid: "member"}

    # While a dissolution is open only the owner, who could cancel it, may rebuild.
    srv2 = Server(env={"QUN_TEST_CLOCK": "1"}).start()
    try:
        o, a = register(srv2.url), register(srv2.url)
        g2 = make_group(o, admins=[a])
        k2, r2 = keygen(tmp_path, "k2.txt")
        plain2 = plaintext(o, exported(o, g2, r2), k2, tmp_path)
        pv = expect(o.post(f"/v1/groups/{g2}/dissolution/preview", {"messages": "delete"}), 200)
        expect(o.post(f"/v1/groups/{g2}/dissolution", {"messages": "delete", "typed_name": pv["name"],
                                                       "confirmation_token": pv["confirmation_token"]}), 202)
        p = expect(a.post("/v1/imports", raw=plain2), 403, "IMPORT_FORBIDDEN")
        assert "pending" in p["detail"]
        expect(o.post("/v1/imports", raw=plain2), 201)
    finally:
        stop_clean(srv2)


def test_an_uncompressed_tar_is_refused(srv, tmp_path):
    owner = register(srv.url)
    gid = make_group(owner, name="tarball")
    key, rcpt = keygen(tmp_path, "k.txt")
    plain = plaintext(owner, exported(owner, gid, rcpt), key, tmp_path)
    tar = subprocess.run(["zstd", "-d", "-c"], input=plain, capture_output=True, check=True).stdout
    assert tar[257:262] == b"ustar"  # a valid tar, only not compressed
    size, groups = tree_size(owner), group_ids(owner)
    p = expect(owner.post("/v1/imports", raw=tar, headers={"Content-Type": "application/x-tar"}), 415,
               "IMPORT_NOT_ZSTD")
    assert "zstd" in p["detail"]
    assert tree_size(owner) == size and group_ids(owner) == groups
    imports = os.path.join(srv.data, "imports")
    assert not os.path.isdir(imports) or os.listdir(imports) == []
    expect(owner.post("/v1/imports", raw=plain), 201)  # the same archive, compressed, is fine


def test_the_grant_route_answers_foreign_and_unknown_exports_alike(srv, tmp_path):
    owner, other = register(srv.url), register(srv.url)
    gid, theirs = make_group(owner, name="mine"), make_group(other, name="theirs")
    _, rcpt = keygen(tmp_path, "k.txt")
    exported(owner, gid, rcpt)
    foreign = exported(other, theirs, rcpt)
    token = expect(owner.post(f"/v1/groups/{gid}/grants", {"expires_in": 3600}), 201)["token"]
    fake = "x_" + "A" * len(foreign["id"][2:])
    answers = [grant_app(srv.url, token, f"/v1/grant/exports/{xid}/download") for xid in (foreign["id"], fake)]
    bodies = []
    for r, xid in zip(answers, (foreign["id"], fake)):
        p = expect(r, 404, "EXPORT_NOT_FOUND")
        bodies.append(json.dumps({k: (v.replace(xid, "X") if isinstance(v, str) else v) for k, v in p.items()},
                                 sort_keys=True))
    assert bodies[0] == bodies[1]
    assert dict(answers[0].headers).keys() == dict(answers[1].headers).keys()
