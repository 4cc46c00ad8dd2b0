# SPDX-License-Identifier: MIT
"""MATRIX.md 1.6 and 4.1 case 13: Matrix media.  Upload through nio, send an m.image,
the file in /v1's files, messages and exports, rendered in /sync, /messages, /event and
/context; download through the authenticated v1 route (nio 0.20's download() sends no
token) as a member, refused to others and after dissolution; the legacy routes need a
token; thumbnails, config, CORS; staged media expire after a day; a purge leaves no
row and no orphan blob, and media another group holds stay downloadable there; bad
input is a Matrix 4xx."""
import hashlib
import os
import shutil
import sqlite3
import subprocess
import time
from urllib.parse import quote

import pytest
import requests
from nio import DownloadError, RoomSendResponse, SyncResponse, UploadResponse
from nio.events import RoomMessageFile, RoomMessageImage

from conftest import MATRIX, SERVER_NAME, Nio, api, expect, make_group, register, room_id

V3 = "/_matrix/client/v3"
MEDIA = "/_matrix/client/v1/media"
# A 1x1 PNG.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000100ffff03000006000557bfabd40000000049454e44ae426082")


def login(nio, user):
    n = nio(user)
    n.login()
    return n


def upload(n, data, ctype="image/png", name="cat.png"):
    r, _ = n(n.c.upload(lambda *_: data, content_type=ctype, filename=name, filesize=len(data)))
    assert isinstance(r, UploadResponse), r
    assert r.content_uri.startswith(f"mxc://{SERVER_NAME}/")
    return r.content_uri


def send_media(n, gid, uri, msgtype="m.image", body="cat.png"):
    content = {"msgtype": msgtype, "body": body, "url": uri, "info": {"mimetype": "image/png"}}
    r = n(n.c.room_send(room_id(gid), "m.room.message", content))
    assert isinstance(r, RoomSendResponse), r
    return r.event_id


def h(n):
    return {"Authorization": "Bearer " + n.c.access_token}


def media_id(uri):
    return uri.rsplit("/", 1)[1]


def get(url, path, headers=None, **params):
    r = requests.get(url + path, headers=headers or {}, params=params, timeout=30)
    assert r.status_code < 500, (path, r.status_code, r.text[:300])
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    return r


def mxerr(r, status, errcode):
    assert r.status_code == status, (r.request.url, r.status_code, r.text[:300])
    assert r.json()["errcode"] == errcode, r.text
    return r.json()


def blobs(server):
    out = set()
    for _, _, files in os.walk(os.path.join(server.data, "blobs")):
        out.update(f for f in files if ".tmp." not in f)
    return out


def db_rows(server, sql):
    """Rows of sql on the server's database, SQLite or PostgreSQL."""
    if api.PG:
        return api.PgAsSqlite(server.store).execute(sql).fetchall()
    with sqlite3.connect(os.path.join(server.data, "qun.db")) as db:
        return db.execute(sql).fetchall()


def advance(url, seconds):
    expect(requests.post(url + "/v1/test/clock", json={"advance": seconds}, timeout=10), 200)


def dissolve(owner, gid):
    p = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "keep"}), 200)
    expect(owner.post(f"/v1/groups/{gid}/dissolution", {"messages": "keep", "confirmation_token": p["confirmation_token"],
                                                       "typed_name": p["name"]}), 202)
    return p


def wait_for(what, probe, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        v = probe()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen")


def test_upload_send_render_and_download(server, nio):
    url = server.url
    alice, bob, carol = register(url), register(url), register(url)
    gid = make_group(alice, members=[bob], name="pictures")
    a, b, c = login(nio, alice), login(nio, bob), login(nio, carol)
    uri = upload(a, PNG)
    mid = media_id(uri)
    digest = hashlib.sha256(PNG).hexdigest()
    assert len(mid) >= 24 and mid not in digest
    # The uploader reads its staged media; nobody else does, not even a future member.
    assert get(url, f"{MEDIA}/download/{SERVER_NAME}/{mid}", h(a)).content == PNG
    mxerr(get(url, f"{MEDIA}/download/{SERVER_NAME}/{mid}", h(b)), 404, "M_NOT_FOUND")
    event = send_media(a, gid, uri)
    assert event.startswith(f"${gid}.m")

    # The file is the group's, as a /v1 upload would be.
    files = expect(bob.get(f"/v1/groups/{gid}/files"), 200)["items"]
    assert [(f["digest"], f["name"], f["content_type"], f["size"]) for f in files] == \
        [(digest, "cat.png", "image/png", len(PNG))]
    msg = expect(bob.get(f"/v1/groups/{gid}/messages"), 200)["items"][-1]
    assert msg["text"] == "cat.png" and msg["msgtype"] == "m.image"
    assert msg["file"] == {"sha256": digest, "name": "cat.png", "content_type": "image/png", "size": len(PNG)}
    assert expect(bob.get(f"/v1/groups/{gid}/files/{digest}"), 200) is None  # raw bytes

    # Rendered from the stored rows in /sync, /messages, /event and /context.
    r = b(b.c.sync(timeout=0))
    assert isinstance(r, SyncResponse)
    imgs = [e for e in r.rooms.join[room_id(gid)].timeline.events if isinstance(e, RoomMessageImage)]
    assert [(e.url, e.body) for e in imgs] == [(uri, "cat.png")]
    content = imgs[0].source["content"]
    assert content["info"] == {"mimetype": "image/png", "size": len(PNG)}
    rid = quote(room_id(gid), safe="")
    ev = get(url, f"{V3}/rooms/{rid}/event/{quote(event, safe='')}", h(b)).json()
    assert ev["content"] == content
    ctx = get(url, f"{V3}/rooms/{rid}/context/{quote(event, safe='')}", h(b)).json()
    assert ctx["event"]["content"]["url"] == uri
    page = get(url, f"{V3}/rooms/{rid}/messages", h(b), dir="b", limit="5").json()
    assert any(e.get("content", {}).get("url") == uri for e in page["chunk"])

    # Download as a member through the authenticated route.
    d = get(url, f"{MEDIA}/download/{SERVER_NAME}/{mid}", h(b))
    assert d.status_code == 200 and d.content == PNG
    assert d.headers["Content-Type"] == "image/png"
    assert d.headers["Content-Disposition"] == 'inline; filename="cat.png"'
    assert d.headers["Content-Security-Policy"].startswith("sandbox; default-src 'none'; script-src 'none';")
    assert d.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    odd = quote('猫 "x".png')
    named = get(url, f"{MEDIA}/download/{SERVER_NAME}/{mid}/{odd}", h(b))
    assert named.status_code == 200
    disp = named.headers["Content-Disposition"]
    assert disp.startswith('inline; filename="') and "filename*=UTF-8''" in disp and '\\' not in disp
    assert get(url, f"{MEDIA}/download/{SERVER_NAME}/{mid}", {}, access_token=b.c.access_token).content == PNG
    # Not to someone outside the group, nor without a token.
    mxerr(get(url, f"{MEDIA}/download/{SERVER_NAME}/{mid}", h(c)), 404, "M_NOT_FOUND")
    mxerr(get(url, f"{MEDIA}/download/{SERVER_NAME}/{mid}"), 401, "M_MISSING_TOKEN")
    # The legacy routes (what nio's download() calls) need a token too.
    for legacy in ("/_matrix/media/r0", "/_matrix/media/v3"):
        mxerr(get(url, f"{legacy}/download/{SERVER_NAME}/{mid}"), 401, "M_MISSING_TOKEN")
        mxerr(get(url, f"{legacy}/thumbnail/{SERVER_NAME}/{mid}", width="32", height="32"), 401, "M_MISSING_TOKEN")
        assert get(url, f"{legacy}/download/{SERVER_NAME}/{mid}", {}, access_token=b.c.access_token).content == PNG
        assert get(url, f"{legacy}/download/{SERVER_NAME}/{mid}", h(b)).content == PNG
    assert isinstance(b(b.c.download(SERVER_NAME, mid)), DownloadError)
    # Thumbnail: the original for an image.
    t = get(url, f"{MEDIA}/thumbnail/{SERVER_NAME}/{mid}", h(b), width="64", height="64", method="scale")
    assert t.status_code == 200 and t.content == PNG and t.headers["Content-Type"] == "image/png"
    # Config on both paths.
    limit = get(url, f"{MEDIA}/config", h(b)).json()["m.upload.size"]
    assert limit > 0 and get(url, "/_matrix/media/v3/config", h(b)).json() == {"m.upload.size": limit}
    assert get(url, "/_matrix/media/r0/config", h(b)).json() == {"m.upload.size": limit}
    # hydrogen's service worker sends Authorization: the preflight must allow it.
    p = requests.options(url + f"{MEDIA}/download/{SERVER_NAME}/{mid}", timeout=10, headers={
        "Origin": "http://127.0.0.1:1", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert p.status_code == 204 and p.headers["Access-Control-Allow-Origin"] == "*"
    assert "authorization" in p.headers["Access-Control-Allow-Headers"].lower()


def test_files_that_are_not_images(server, nio):
    url = server.url
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    a = login(nio, alice)
    data = b"<script>alert(1)</script>" * 10
    uri = upload(a, data, ctype="text/html", name="page.html")
    mid = media_id(uri)
    mxerr(get(url, f"{MEDIA}/thumbnail/{SERVER_NAME}/{mid}", h(a)), 404, "M_NOT_FOUND")
    # An empty body takes the file's name.
    r = a(a.c.room_send(room_id(gid), "m.room.message", {"msgtype": "m.file", "body": "", "url": uri}))
    assert isinstance(r, RoomSendResponse), r
    b = login(nio, bob)
    d = get(url, f"{MEDIA}/download/{SERVER_NAME}/{mid}", h(b))
    assert d.content == data and d.headers["Content-Disposition"] == 'attachment; filename="page.html"'
    assert "sandbox" in d.headers["Content-Security-Policy"]
    s = b(b.c.sync(timeout=0))
    files = [e for e in s.rooms.join[room_id(gid)].timeline.events if isinstance(e, RoomMessageFile)]
    assert [(e.body, e.url) for e in files] == [("page.html", uri)]
    # The same bytes sent twice to a group are one file; other members may forward it.
    uri2 = upload(a, data, ctype="text/html", name="again.html")
    assert media_id(uri2) != mid
    send_media(a, gid, uri2, msgtype="m.file", body="again")
    send_media(b, gid, uri, msgtype="m.file", body="forwarded")
    assert len(expect(bob.get(f"/v1/groups/{gid}/files"), 200)["items"]) == 1


def test_bad_input_is_a_matrix_4xx(server, nio):
    url = server.url
    alice, bob = register(url), register(url)
    gid = make_group(alice, members=[bob])
    a, b = login(nio, alice), login(nio, bob)
    mine = upload(a, PNG)
    theirs = upload(b, b"bob's bytes", ctype="application/octet-stream", name="b.bin")
    rid = quote(room_id(gid), safe="")

    def send(content, txn):
        return requests.put(url + f"{V3}/rooms/{rid}/send/m.room.message/{txn}", json=content, headers=h(a),
                            timeout=30)

    base = {"msgtype": "m.image", "body": "x"}
    mxerr(send(dict(base, url=f"mxc://elsewhere.example/{media_id(mine)}"), "t1"), 403, "M_FORBIDDEN")
    mxerr(send(dict(base, url=f"mxc://{SERVER_NAME}/nope"), "t2"), 404, "M_NOT_FOUND")
    mxerr(send(dict(base, url=f"mxc://{SERVER_NAME}/{'%' * 10}"), "t3"), 404, "M_NOT_FOUND")
    mxerr(send(dict(base, url=f"mxc://{SERVER_NAME}/{'x' * 300}"), "t4"), 404, "M_NOT_FOUND")
    mxerr(send(dict(base, url=theirs), "t5"), 404, "M_NOT_FOUND")  # someone else's staged media
    mxerr(send(base, "t6"), 400, "M_INVALID_PARAM")
    mxerr(send(dict(base, url="https://example.com/x.png"), "t7"), 400, "M_INVALID_PARAM")
    mxerr(send(dict(base, url=5), "t8"), 400, "M_BAD_JSON")
    mxerr(send(dict(base, url=f"mxc://{SERVER_NAME}"), "t9"), 400, "M_INVALID_PARAM")
    # Nothing reached the group.
    assert expect(alice.get(f"/v1/groups/{gid}/files"), 200)["items"] == []
    # Downloads of what is not there, or not ours.
    for path in (f"{MEDIA}/download/elsewhere.example/{media_id(mine)}", f"{MEDIA}/download/{SERVER_NAME}/nope",
                 f"{MEDIA}/download/{SERVER_NAME}/{'x' * 300}", f"{MEDIA}/download/{SERVER_NAME}/%FF",
                 f"{MEDIA}/thumbnail/{SERVER_NAME}/..%2F..", f"{MEDIA}/download/{SERVER_NAME}/{media_id(theirs)}"):
        r = get(url, path, h(a))
        assert 400 <= r.status_code < 500 and r.json()["errcode"].startswith("M_"), (path, r.text)
    up = url + "/_matrix/media/v3/upload"
    mxerr(requests.post(up, data=b"", headers=h(a), timeout=30), 400, "M_INVALID_PARAM")
    mxerr(requests.post(up + "?filename=%FF", data=b"x", headers=h(a), timeout=30), 400, "M_INVALID_PARAM")
    mxerr(requests.post(up, data=b"x", headers=dict(h(a), **{"Content-Type": "a\x01b"}), timeout=30), 400,
          "M_INVALID_PARAM")
    mxerr(requests.post(up, data=b"x", timeout=30), 401, "M_MISSING_TOKEN")
    # Odd names are kept safe, not refused.
    r = requests.post(up + "?filename=" + quote('a"b\\c/d.txt'), data=b"x", headers=h(a), timeout=30)
    assert r.status_code == 200, r.text
    assert get(url, f"{MEDIA}/download/{SERVER_NAME}/{media_id(r.json()['content_uri'])}", h(a)).headers[
        "Content-Disposition"] == 'attachment; filename="a_b_c_d.txt"'


def test_upload_limit():
    s = api.Server(extra=MATRIX + ["--set", "upload_limit=65536"], env={"QUN_TEST_CLOCK": "1"}).start()
    try:
        alice = register(s.url)
        token = requests.post(s.url + V3 + "/login", json={"type": "m.login.password", "user": alice.username,
                                                             "password": "correct horse"}, timeout=30).json()["access_token"]
        hd = {"Authorization": "Bearer " + token}
        assert requests.get(s.url + MEDIA + "/config", headers=hd, timeout=10).json() == {"m.upload.size": 65536}
        ok = requests.post(s.url + "/_matrix/media/v3/upload?filename=a", data=os.urandom(65536), headers=hd, timeout=30)
        assert ok.status_code == 200, ok.text
        big = requests.post(s.url + "/_matrix/media/v3/upload?filename=a", data=os.urandom(65537), headers=hd,
                            timeout=30)
        assert big.status_code == 413
    finally:
        api.stop_clean(s)


@pytest.fixture
def own(own_server):
    return own_server


@pytest.fixture
def own_nio(own_server, loop):
    """nio clients of the test's own server (it moves the clock), closed at the end."""
    made = []

    def make(user):
        n = Nio(loop, own_server.url, user.username)
        made.append(n)
        return n

    yield make
    for n in made:
        n.close()


def test_dissolution_export_expiry_and_purge(own, own_nio):
    url, nio = own.url, own_nio
    alice, bob, carol = register(url), register(url), register(url)
    gone = make_group(alice, members=[bob], name="to dissolve")
    stays = make_group(alice, members=[carol], name="stays")
    a, b, c = login(nio, alice), login(nio, bob), login(nio, carol)
    shared = upload(a, PNG)
    only = upload(a, b"only in the dissolved group", ctype="text/plain", name="only.txt")
    send_media(a, gone, shared)
    send_media(a, stays, shared)  # a second group: its own link and its own file row
    send_media(a, gone, only, msgtype="m.file", body="only.txt")
    staged = upload(a, b"never sent", ctype="text/plain", name="staged.txt")
    only_digest = hashlib.sha256(b"only in the dissolved group").hexdigest()
    staged_digest = hashlib.sha256(b"never sent").hexdigest()
    assert {only_digest, staged_digest, hashlib.sha256(PNG).hexdigest()} <= blobs(own)
    assert len(expect(carol.get(f"/v1/groups/{stays}/files"), 200)["items"]) == 1

    # Exports carry the files.
    keygen = shutil.which("age-keygen")
    if keygen:
        key = subprocess.run([keygen], capture_output=True, text=True, check=True).stdout
        recipient = [ln.split(": ")[1] for ln in key.splitlines() if ln.startswith("# public key: ")][0]
        x = expect(alice.post(f"/v1/groups/{gone}/exports", {"recipients": [recipient]}), 202)
        x = wait_for("export", lambda: (lambda y: y if y["state"] != "running" else None)(
            expect(alice.get(f"/v1/exports/{x['id']}"), 200)))
        assert x["state"] == "done" and x["progress"]["files"] == 2, x

    # The dissolution's impact counts them.
    p = dissolve(alice, gone)
    assert p["impact"]["files"]["count"] == 2
    assert p["impact"]["files"]["bytes"] == len(PNG) + len(b"only in the dissolved group")
    advance(url, 61)  # past cooling_off: dissolved
    wait_for("dissolved", lambda: expect(alice.get(f"/v1/groups/{gone}/dissolution"), 200)["state"] == "dissolved")
    # Members lose access (the owner too, as with /v1's file download); the other
    # group's members keep it.
    for mid in (media_id(shared), media_id(only)):
        mxerr(get(url, f"{MEDIA}/download/{SERVER_NAME}/{mid}", h(b)), 404, "M_NOT_FOUND")
    mxerr(get(url, f"{MEDIA}/download/{SERVER_NAME}/{media_id(only)}", h(a)), 404, "M_NOT_FOUND")
    for n in (a, c):
        assert get(url, f"{MEDIA}/download/{SERVER_NAME}/{media_id(shared)}", h(n)).content == PNG

    # A day on: the staged upload expired (row and bytes); the purge ran (grace 3600).
    advance(url, 86400 + 601)
    st = wait_for("purged", lambda: (lambda d: d if d["state"] == "purged" else None)(
        expect(alice.get(f"/v1/groups/{gone}/dissolution"), 200)), 30)
    rcpt = st["receipt"]
    assert rcpt["media_links_deleted"] == 2 and rcpt["media_deleted"] == 1, rcpt
    assert rcpt["files_removed"] == 2 and rcpt["blobs_released"] == 1 and rcpt["cdn_purges_queued"] == 1, rcpt
    wait_for("unlinks", lambda: only_digest not in blobs(own) and staged_digest not in blobs(own))
    mxerr(get(url, f"{MEDIA}/download/{SERVER_NAME}/{media_id(staged)}", h(a)), 404, "M_NOT_FOUND")
    assert hashlib.sha256(PNG).hexdigest() in blobs(own)
    assert get(url, f"{MEDIA}/download/{SERVER_NAME}/{media_id(shared)}", h(c)).content == PNG
    gid_row = db_rows(own, f"SELECT id FROM groups WHERE gid = '{gone}'")[0][0]
    assert db_rows(own, f"SELECT COUNT(*) FROM mx_media_links WHERE group_id = {gid_row}")[0][0] == 0
    assert [r[0] for r in db_rows(own, "SELECT media_id FROM mx_media ORDER BY media_id")] == [media_id(shared)]
    outbox = [r[0] for r in db_rows(own, "SELECT payload FROM outbox WHERE topic = 'cdn.purge'")]
    assert any(only_digest in p for p in outbox) and not any(staged_digest in p for p in outbox)
