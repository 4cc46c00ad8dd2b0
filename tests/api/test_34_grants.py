# SPDX-License-Identifier: MIT
"""Storage grants: the owner issues a token (POST /v1/groups/{id}/grants) that lets
another application list and download that group's finished exports with
`Authorization: Bearer qgr_...` and no user session.  It expires and can be revoked;
issuing, each download and the revocation are ledgered.  Wrong, expired, revoked and
other groups' tokens get clear 4xx codes; members' own copies are not covered; the
store keeps only a hash of the secret.  `qun grant export|list|revoke` drive it."""
import hashlib
import json
import os
import sqlite3
import time

import pytest
import requests

from conftest import PG, expect, make_group, register, pg_sql
from test_20_cli import User
from test_31_export import AGE, AGE_KEYGEN, keygen, wait_done

pytestmark = pytest.mark.skipif(not AGE or not AGE_KEYGEN, reason="Debian's age and age-keygen are needed")


@pytest.fixture(scope="module")
def srv(server):
    return server


def app(url, token, path):
    """The third-party application: no session, just the grant."""
    h = {"Authorization": "Bearer " + token} if token is not None else {}
    return requests.get(url + path, headers=h, timeout=30)


def exported(owner, gid, recipient, scope="group"):
    x = expect(owner.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient], "scope": scope}), 202)
    return wait_done(owner, x["id"])


def events(owner, gid):
    return [(h["event"], json.loads(h["entry"]))
            for h in expect(owner.get(f"/v1/groups/{gid}/history?limit=200"), 200)["items"]]


def test_a_grant_downloads_the_groups_exports_until_revoked(srv, tmp_path):
    owner, alice = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[alice])
    expect(alice.post(f"/v1/groups/{gid}/messages", {"text": "hello"}), 201)
    _, recipient = keygen(tmp_path, "k.txt")
    x = exported(owner, gid, recipient)
    own = exported(owner, gid, recipient, scope="self")

    # Only the owner issues; the token is shown once.
    expect(alice.post(f"/v1/groups/{gid}/grants", {"expires_in": 3600}), 403, "FORBIDDEN_ROLE")
    g = expect(owner.post(f"/v1/groups/{gid}/grants", {"expires_in": 7 * 86400, "label": "backup vendor"}), 201)
    assert g["id"].startswith("gr_") and g["token"].startswith("qgr_" + g["id"] + "_")
    assert g["scope"] == "exports" and g["state"] == "active" and g["group"] == gid
    listed = expect(owner.get(f"/v1/groups/{gid}/grants"), 200)["items"]
    assert [i["id"] for i in listed] == [g["id"]] and "token" not in listed[0] and listed[0]["uses"] == 0
    expect(alice.get(f"/v1/groups/{gid}/grants"), 403, "FORBIDDEN_ROLE")
    tok = g["token"]

    # The application lists and downloads with the grant alone.
    lst = app(srv.url, tok, "/v1/grant/exports")
    assert lst.status_code == 200, lst.text
    assert lst.json()["group"] == gid and [i["id"] for i in lst.json()["items"]] == [x["id"]]  # not the self copy
    r = app(srv.url, tok, f"/v1/grant/exports/{x['id']}/download")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/age"
    assert hashlib.sha256(r.content).hexdigest() == x["digest"]
    expect(app(srv.url, tok, f"/v1/grant/exports/{own['id']}/download"), 404, "EXPORT_NOT_FOUND")
    expect(app(srv.url, tok, "/v1/grant/exports/x_nosuch/download"), 404, "EXPORT_NOT_FOUND")
    # A grant is not a session, and a session is not a grant.
    expect(app(srv.url, tok, "/v1/me"), 401, "TOKEN_INVALID")
    expect(app(srv.url, owner.token, f"/v1/grant/exports/{x['id']}/download"), 401, "GRANT_INVALID")
    expect(app(srv.url, None, "/v1/grant/exports"), 401, "GRANT_INVALID")
    # A wrong secret with the right id is refused the same way as garbage.
    forged = tok[:-8] + ("0" * 8 if not tok.endswith("0" * 8) else "1" * 8)
    expect(app(srv.url, forged, "/v1/grant/exports"), 401, "GRANT_INVALID")
    expect(app(srv.url, "qgr_x", "/v1/grant/exports"), 401, "GRANT_INVALID")

    # Another group's export is out of scope, and answered exactly as an id that never
    # existed: the grant holder cannot tell that it exists.
    other = make_group(owner, name="other")
    y = exported(owner, other, recipient)
    foreign = app(srv.url, tok, f"/v1/grant/exports/{y['id']}/download")
    unknown = app(srv.url, tok, "/v1/grant/exports/x_AAAAAAAAAAAAAAAAAAAAAA/download")
    for r in (foreign, unknown):
        expect(r, 404, "EXPORT_NOT_FOUND")
    strip = lambda r, xid: {k: v.replace(xid, "ID") if isinstance(v, str) else v for k, v in r.json().items()}
    assert strip(foreign, y["id"]) == strip(unknown, "x_AAAAAAAAAAAAAAAAAAAAAA")
    expect(owner.delete(f"/v1/groups/{other}/grants/{g['id']}"), 404, "GRANT_NOT_FOUND")

    assert expect(owner.get(f"/v1/groups/{gid}/grants"), 200)["items"][0]["uses"] == 1
    revoked = expect(owner.delete(f"/v1/groups/{gid}/grants/{g['id']}"), 200)
    assert revoked["state"] == "revoked" and revoked["revoked_at"] > 0
    expect(owner.delete(f"/v1/groups/{gid}/grants/{g['id']}"), 200)  # again: the same answer, ledgered once
    expect(app(srv.url, tok, f"/v1/grant/exports/{x['id']}/download"), 401, "GRANT_REVOKED")
    expect(app(srv.url, tok, "/v1/grant/exports"), 401, "GRANT_REVOKED")

    # Issuing, the one download and the revocation are in the ledger.
    ev = [(e, f) for e, f in events(owner, gid) if e.startswith("grant.")]
    assert [e for e, _ in ev] == ["grant.issued", "grant.used", "grant.revoked"]
    assert all(f["grant"] == g["id"] for _, f in ev)
    assert ev[0][1]["actor"] == owner.openid and ev[0][1]["expires_at"] == g["expires_at"]
    assert ev[1][1]["export"] == x["id"] and ev[1][1]["digest"] == x["digest"]

    # Only a hash of the secret is stored.
    secret = tok.rsplit("_", 1)[1]
    if PG:
        rows = pg_sql(srv, "SELECT secret_hash FROM export_grants")
    else:
        with sqlite3.connect(os.path.join(srv.data, "qun.db")) as db:
            rows = db.execute("SELECT secret_hash FROM export_grants").fetchall()
    stored = [r[0] for r in rows]
    assert hashlib.sha256(secret.encode()).hexdigest() in stored and secret not in stored


def test_a_grant_expires(srv, tmp_path):
    owner = register(srv.url)
    gid = make_group(owner)
    _, recipient = keygen(tmp_path, "k.txt")
    x = exported(owner, gid, recipient)
    g = expect(owner.post(f"/v1/groups/{gid}/grants", {"expires_in": 3600}), 201)
    assert app(srv.url, g["token"], f"/v1/grant/exports/{x['id']}/download").status_code == 200
    expect(owner.post("/v1/test/clock", {"advance": 3601}), 200)
    expect(app(srv.url, g["token"], f"/v1/grant/exports/{x['id']}/download"), 401, "GRANT_EXPIRED")
    assert expect(owner.get(f"/v1/groups/{gid}/grants"), 200)["items"][0]["state"] == "expired"
    for bad in [{"expires_in": 59}, {"expires_in": 400 * 86400}, {}, {"expires_in": 3600, "scope": "messages"}]:
        expect(owner.post(f"/v1/groups/{gid}/grants", bad), 422)


def test_cli_grant_export_list_revoke(srv, tmp_path):
    u = User(srv, tmp_path).signup()
    gid = u.json("group", "create", "vault")["id"]
    g = u.json("grant", "export", gid, "--expires", "7d", "--label", "s3 mirror")
    assert g["token"].startswith("qgr_") and g["label"] == "s3 mirror"
    assert g["expires_at"] - g["created_at"] == 7 * 86400
    assert app(srv.url, g["token"], "/v1/grant/exports").json()["items"] == []
    out = u.ok("grant", "export", gid, "--expires", "12h").stdout
    assert "qgr_" in out
    listed = u.ok("grant", "list", gid).stdout
    assert g["id"] in listed and "active" in listed and "qgr_" not in listed
    assert [i["id"] for i in u.json("grant", "list", gid)["items"]][0] == g["id"]
    u.ok("grant", "revoke", gid, g["id"])
    expect(app(srv.url, g["token"], "/v1/grant/exports"), 401, "GRANT_REVOKED")
    u.fails("USAGE", "grant", "export", gid, "--expires", "7 weeks", exit=2)
    u.fails("GRANT_NOT_FOUND", "grant", "revoke", gid, "gr_nosuchgrant")
