# SPDX-License-Identifier: MIT
"""Accounts and sessions as a user sees them: registering, logging in on several
devices, listing and revoking sessions, opaque ids, and tokens that a stolen
database file does not give away."""
import glob
import os
import sqlite3
import uuid

import requests

from conftest import Client, expect, register, relogin

PW = "correct horse"


def new_name():
    return "u" + uuid.uuid4().hex[:10]


def login(url, name, password=PW, device="dev-1", platform="cli", secret=None):
    body = {"username": name, "password": password, "device_id": device, "platform": platform}
    if secret:
        body["device_secret"] = secret
    return requests.post(url + "/v1/sessions", json=body, timeout=30)


def test_register_answers_openid_and_username(url):
    name = new_name()
    body = expect(requests.post(url + "/v1/users", json={"username": name, "password": PW}), 201)
    assert body["username"] == name
    assert isinstance(body["openid"], str) and body["openid"]


def test_duplicate_username_is_refused_and_keeps_the_first_password(url):
    name = new_name()
    expect(requests.post(url + "/v1/users", json={"username": name, "password": PW}), 201)
    p = expect(requests.post(url + "/v1/users", json={"username": name, "password": "another password"}),
               409, "USERNAME_TAKEN")
    assert p.get("field") == "username"
    expect(login(url, name, "another password"), 401, "BAD_CREDENTIALS")
    expect(login(url, name, PW), 201)


def test_bad_usernames_are_refused(url):
    for bad in ["ab", "a" * 33, "é" * 17, "has space", "semi;colon", "slash/name", "tab\tname",
                "new\nline", "", "quote\"d", "zero\u200bwidth", "\u0301accent", "smile\U0001F600", "ﬀ\u00a0x"]:
        p = expect(requests.post(url + "/v1/users", json={"username": bad, "password": PW}), 422,
                   "FIELD_INVALID")
        assert p["field"] == "username", (bad, p)
    for bad in [123, None, ["abc"], {"a": 1}, True]:
        p = expect(requests.post(url + "/v1/users", json={"username": bad, "password": PW}), 422,
                   "FIELD_INVALID")
        assert p["field"] == "username"
    # The bounds themselves are allowed.
    for ok in ["abc", "a" * 32, "A.b-c_9", "ünïcode" + uuid.uuid4().hex[:6], "张伟" + uuid.uuid4().hex[:4]]:
        expect(requests.post(url + "/v1/users", json={"username": ok, "password": PW}), 201)


def test_short_or_missing_passwords_are_refused(url):
    name = new_name()
    for bad in ["", "1234567"]:
        p = expect(requests.post(url + "/v1/users", json={"username": name, "password": bad}), 422,
                   "FIELD_INVALID")
        assert p["field"] == "password"
    p = expect(requests.post(url + "/v1/users", json={"username": name}), 422, "FIELD_MISSING")
    assert p["field"] == "password"
    p = expect(requests.post(url + "/v1/users", json={"password": PW}), 422, "FIELD_MISSING")
    assert p["field"] == "username"
    # None of these created the account.
    expect(login(url, name, "1234567"), 401, "BAD_CREDENTIALS")
    expect(requests.post(url + "/v1/users", json={"username": name, "password": "12345678"}), 201)
    expect(login(url, name, "12345678"), 201)


def test_wrong_password_and_unknown_user_look_the_same(url):
    name = new_name()
    expect(requests.post(url + "/v1/users", json={"username": name, "password": PW}), 201)
    wrong = expect(login(url, name, "wrong horse"), 401, "BAD_CREDENTIALS")
    unknown = expect(login(url, new_name(), PW), 401, "BAD_CREDENTIALS")
    # Nothing in the answer tells an attacker which usernames exist.
    assert wrong == unknown
    assert name not in wrong["detail"]


def test_login_checks_its_fields(url):
    name = new_name()
    expect(requests.post(url + "/v1/users", json={"username": name, "password": PW}), 201)
    expect(login(url, name, platform="amiga"), 422, "FIELD_INVALID")
    expect(login(url, name, device=""), 422, "FIELD_INVALID")
    p = expect(requests.post(url + "/v1/sessions", json={"username": name, "password": PW,
                                                         "platform": "cli"}), 422, "FIELD_MISSING")
    assert p["field"] == "device_id"


def test_sessions_are_bound_to_devices(url):
    name = new_name()
    expect(requests.post(url + "/v1/users", json={"username": name, "password": PW}), 201)
    phone = expect(login(url, name, device="phone-1", platform="ios"), 201)
    assert phone["device_id"] == "phone-1" and phone["platform"] == "ios"
    first_seen = phone["device_first_seen"]
    assert isinstance(first_seen, int) and first_seen > 0
    assert phone["token"] and phone["session_id"] and phone["openid"]

    # Ten seconds later the same phone logs in again: a new session, same device.
    expect(requests.post(url + "/v1/test/clock", json={"advance": 10}), 200)
    assert phone["new_device"] is True and phone["device_secret"].startswith("qds_")
    again = expect(login(url, name, device="phone-1", platform="ios", secret=phone["device_secret"]), 201)
    assert again["new_device"] is False and "device_secret" not in again
    assert again["device_first_seen"] == first_seen
    assert again["session_id"] != phone["session_id"] and again["token"] != phone["token"]
    laptop = expect(login(url, name, device="laptop-7", platform="windows"), 201)
    assert laptop["device_first_seen"] >= first_seen + 10

    me = expect(Client(url, phone["token"]).get("/v1/me"), 200)
    assert me["username"] == name and me["openid"] == phone["openid"]
    assert me["device_id"] == "phone-1" and me["platform"] == "ios"
    assert me["session_id"] == phone["session_id"]
    me = expect(Client(url, laptop["token"]).get("/v1/me"), 200)
    assert me["device_id"] == "laptop-7" and me["platform"] == "windows"
    assert me["session_id"] == laptop["session_id"]


def test_list_own_sessions(url):
    name = new_name()
    expect(requests.post(url + "/v1/users", json={"username": name, "password": PW}), 201)
    a = expect(login(url, name, device="phone", platform="android"), 201)
    b = expect(login(url, name, device="browser", platform="web"), 201)
    other = register(url)  # someone else's sessions must not show up
    items = expect(Client(url, a["token"]).get("/v1/me/sessions"), 200)["items"]
    assert {s["session_id"] for s in items} == {a["session_id"], b["session_id"]}
    by_id = {s["session_id"]: s for s in items}
    assert by_id[a["session_id"]]["current"] is True and by_id[b["session_id"]]["current"] is False
    assert by_id[b["session_id"]]["device_id"] == "browser" and by_id[b["session_id"]]["platform"] == "web"
    assert by_id[a["session_id"]]["device_first_seen"] == a["device_first_seen"]
    for s in items:
        assert "token" not in s and not any(a["token"] in str(v) for v in s.values())
    mine = expect(other.get("/v1/me/sessions"), 200)["items"]
    assert len(mine) == 1 and mine[0]["current"] is True
    assert mine[0]["session_id"] not in by_id


def test_revoke_a_session(url):
    name = new_name()
    expect(requests.post(url + "/v1/users", json={"username": name, "password": PW}), 201)
    a = expect(login(url, name, device="phone"), 201)
    b = expect(login(url, name, device="tablet"), 201)
    ca, cb = Client(url, a["token"]), Client(url, b["token"])
    r = ca.delete(f"/v1/sessions/{b['session_id']}")
    assert r.status_code == 204, r.text
    expect(cb.get("/v1/me"), 401, "TOKEN_INVALID")
    expect(cb.get("/v1/me/sessions"), 401, "TOKEN_INVALID")
    expect(cb.post("/v1/groups", {"name": "x"}), 401, "TOKEN_INVALID")
    expect(ca.get("/v1/me"), 200)
    items = expect(ca.get("/v1/me/sessions"), 200)["items"]
    assert [s["session_id"] for s in items] == [a["session_id"]]
    # Revoking it again, or an id that never existed.
    expect(ca.delete(f"/v1/sessions/{b['session_id']}"), 404, "SESSION_NOT_FOUND")
    expect(ca.delete("/v1/sessions/s_doesnotexist"), 404, "SESSION_NOT_FOUND")
    # Logging out: revoking the current session.
    r = ca.delete(f"/v1/sessions/{a['session_id']}")
    assert r.status_code == 204, r.text
    expect(ca.get("/v1/me"), 401, "TOKEN_INVALID")


def test_revoking_someone_elses_session_is_not_found(url):
    alice, bob = register(url), register(url)
    bob_sid = expect(bob.get("/v1/me"), 200)["session_id"]
    p = expect(alice.delete(f"/v1/sessions/{bob_sid}"), 404, "SESSION_NOT_FOUND")
    ghost = expect(alice.delete("/v1/sessions/s_AAAAAAAAAAAAAAAAAAAAAA"), 404, "SESSION_NOT_FOUND")
    assert p["title"] == ghost["title"]
    expect(bob.get("/v1/me"), 200)  # still logged in


def test_openids_are_opaque(url):
    users = [register(url, name=f"user{i}x{uuid.uuid4().hex[:6]}") for i in range(3)]
    ids = [u.openid for u in users]
    assert len(set(ids)) == 3
    for u in users:
        assert u.username not in u.openid and u.username.lower() not in u.openid.lower()
        # The random part follows the "u_" prefix; base64url may itself contain "_".
        assert u.openid.startswith("u_") and not u.openid[2:].isdigit()
        assert len(u.openid) >= 16
        sid = expect(u.get("/v1/me"), 200)["session_id"]
        assert not sid.isdigit() and not sid.split("_", 1)[-1].isdigit() and len(sid) >= 16
    # Consecutive registrations do not yield consecutive or similar ids.
    a, b = ids[0][2:], ids[1][2:]
    assert sum(x == y for x, y in zip(a, b)) < len(a) // 2


def test_tokens_and_passwords_are_not_stored_in_plaintext(server, url):
    name = new_name()
    password = "plaintext-" + uuid.uuid4().hex
    expect(requests.post(url + "/v1/users", json={"username": name, "password": password}), 201)
    # Even with an Idempotency-Key the login answer (it holds the token) is not kept.
    r = requests.post(url + "/v1/sessions", json={"username": name, "password": password,
                                                 "device_id": "d", "platform": "cli"},
                      headers={"Idempotency-Key": "login-" + name}, timeout=30)
    first = expect(r, 201)
    r = requests.post(url + "/v1/sessions", json={"username": name, "password": password,
                                                 "device_id": "d", "platform": "cli",
                                                 "device_secret": first["device_secret"]},
                      headers={"Idempotency-Key": "login-" + name}, timeout=30)
    second = expect(r, 201)
    assert r.headers.get("Idempotent-Replayed") is None
    assert second["token"] != first["token"]
    tokens = [first["token"], second["token"]]
    for t in tokens:
        expect(Client(url, t).get("/v1/me"), 200)
    # The device secret is kept as a hash, like the tokens.
    tokens.append(first["device_secret"])

    db = sqlite3.connect(f"file:{server.data}/qun.db?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT * FROM sessions").fetchall()
        assert rows
        dump = "\n".join(map(repr, rows))
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for t in tables:
            dump += "\n".join(map(repr, db.execute(f'SELECT * FROM "{t}"').fetchall()))
    finally:
        db.close()
    for t in tokens:
        assert t not in dump and t[4:] not in dump
    assert password not in dump
    # Nor in the raw bytes of the database files (write-ahead log included).
    paths = glob.glob(os.path.join(server.data, "qun.db*"))
    assert os.path.join(server.data, "qun.db") in paths
    for path in paths:
        raw = open(path, "rb").read()
        for t in tokens:
            assert t.encode() not in raw, path
        assert password.encode() not in raw, path


def test_sessions_expire(own_server):
    u = register(own_server.url)
    expect(u.get("/v1/me"), 200)
    expect(requests.post(own_server.url + "/v1/test/clock", json={"advance": 30 * 86400 + 1}), 200)
    expect(u.get("/v1/me"), 401, "TOKEN_INVALID")
    # Logging in again works.
    expect(relogin(u).get("/v1/me"), 200)
