# SPDX-License-Identifier: MIT
"""User administration by server admins (the `admins` setting; docs/admin.md): list and
search accounts, see one account's groups, disable and enable an account (its sessions,
Matrix ones too, are revoked at once: its event stream ends and its parked sync wakes),
and reset a password to a one-time code the user must replace before anything else.
Every change is a ledger entry; everyone else gets FORBIDDEN_ADMIN."""
import json
import os
import threading
import time
import uuid

import pytest
import requests

from conftest import PG, QUN, Client, PgAsSqlite, Server, expect, make_group, register, stop_clean

import sqlite3
import subprocess

PW = "correct horse"


@pytest.fixture(scope="module")
def srv():
    s = Server(extra=["--set", "admins=root", "--set", "matrix=on", "--set", "matrix_server_name=qun.test"]).start()
    yield s
    stop_clean(s)


@pytest.fixture(scope="module")
def root(srv):
    return register(srv.url, name="root")


def login(url, name, password=PW, device=None, platform="cli"):
    return requests.post(url + "/v1/sessions", json={"username": name, "password": password,
                                                     "device_id": device or "d" + uuid.uuid4().hex[:8],
                                                     "platform": platform}, timeout=30)


def mx_login(url, name, password=PW):
    return requests.post(url + "/_matrix/client/v3/login",
                         json={"type": "m.login.password", "identifier": {"type": "m.id.user", "user": name},
                               "password": password}, timeout=30)


def ledger(root, event):
    entries = expect(root.get("/v1/ledger/entries?start=0"), 200)
    items = entries.get("items", entries.get("entries", []))
    return [e for e in items if event in json.dumps(e)]


def qun(url, token, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUN_")}
    env.update(HOME="/nonexistent", QUN_URL=url, QUN_TOKEN=token)
    r = subprocess.run([QUN, *args], capture_output=True, text=True, env=env, timeout=60)
    assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


def db(srv):
    return PgAsSqlite(srv.store) if PG else sqlite3.connect(os.path.join(srv.data, "qun.db"), timeout=10)


def test_non_admins_get_forbidden_admin(srv, root):
    alice = register(srv.url)
    for method, path in [("GET", "/v1/admin/users"), ("GET", f"/v1/admin/users/{root.openid}"),
                         ("POST", f"/v1/admin/users/{root.openid}/disable"),
                         ("POST", f"/v1/admin/users/{root.openid}/enable"),
                         ("POST", f"/v1/admin/users/{root.openid}/password-reset")]:
        expect(alice.req(method, path, {} if method == "POST" else None), 403, "FORBIDDEN_ADMIN")
    expect(requests.get(srv.url + "/v1/admin/users", timeout=10), 401)
    r = qun(srv.url, alice.token, "admin", "users")
    assert r.returncode != 0 and "FORBIDDEN_ADMIN" in r.stderr + r.stdout


def test_list_search_paginate_and_show_groups(srv, root):
    tag = uuid.uuid4().hex[:6]
    a = register(srv.url, name=f"Zed{tag}a")
    b = register(srv.url, name=f"zed{tag}b")
    expect(a.patch("/v1/me", {"display_name": "Zed A"}), 200)
    gid = make_group(a, members=[b], name="Reading club")

    items = expect(root.get(f"/v1/admin/users?prefix=Zed{tag}"), 200)["items"]
    # The exact prefix, and its lower case against the folded names: both accounts.
    assert [u["username"] for u in items] == [f"Zed{tag}a", f"zed{tag}b"]
    first = items[0]
    assert first["display_name"] == "Zed A" and first["openid"] == a.openid
    assert first["disabled"] is False and first["disabled_at"] is None
    assert first["created_at"] > 0 and first["last_seen"] >= first["created_at"]
    assert first["password_change_required"] is False
    assert [u["username"] for u in expect(root.get(f"/v1/admin/users?prefix=zed{tag}b"), 200)["items"]] == [
        f"zed{tag}b"]
    assert expect(root.get("/v1/admin/users?prefix=nobody-" + tag), 200)["items"] == []

    page = expect(root.get(f"/v1/admin/users?prefix=zed{tag}&limit=1"), 200)
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = expect(root.get(f"/v1/admin/users?prefix=zed{tag}&limit=1&after={page['next_cursor']}"), 200)
    assert [u["username"] for u in rest["items"]] == [f"zed{tag}b"]
    expect(root.get("/v1/admin/users?prefix=" + "x" * 65), 422, "FIELD_INVALID")

    one = expect(root.get(f"/v1/admin/users/{b.openid}"), 200)
    assert one["username"] == f"zed{tag}b"
    assert one["groups"] == [{"id": gid, "name": "Reading club", "role": "member", "state": "active"}]
    expect(root.get("/v1/admin/users/u_nobody"), 404, "USER_NOT_FOUND")

    r = qun(srv.url, root.token, "admin", "users", f"zed{tag}")
    assert r.returncode == 0 and f"Zed{tag}a" in r.stdout and "Zed A" in r.stdout and "active" in r.stdout, r.stdout
    r = qun(srv.url, root.token, "--json", "admin", "users", f"zed{tag}")
    assert [u["username"] for u in json.loads(r.stdout)["items"]] == [f"Zed{tag}a", f"zed{tag}b"]
    r = qun(srv.url, root.token, "admin", "user", f"zed{tag}b")
    assert r.returncode == 0 and "Reading club" in r.stdout and "member" in r.stdout, r.stdout
    r = qun(srv.url, root.token, "admin", "user", f"nobody{tag}")
    assert r.returncode != 0 and "USER_NOT_FOUND" in r.stderr + r.stdout


def test_disable_revokes_every_session_and_login_then_enable(srv, root):
    bob = register(srv.url)
    other = Client(srv.url, expect(login(srv.url, bob.username), 201)["token"])
    mx = expect(mx_login(srv.url, bob.username), 200)
    mxc = Client(srv.url, mx["access_token"])
    expect(mxc.get("/_matrix/client/v3/account/whoami"), 200)

    # An open event stream (through a ticket, as the console opens it) and a parked sync.
    t = expect(bob.post("/v1/events/ticket", {}), 201)
    stream = requests.get(srv.url + "/v1/events", params={"ticket": t["ticket"]}, timeout=30, stream=True)
    assert stream.status_code == 200
    first = expect(mxc.get("/_matrix/client/v3/sync?timeout=0"), 200)
    parked = {}

    def park():
        t0 = time.time()
        parked["r"] = mxc.get(f"/_matrix/client/v3/sync?timeout=25000&since={first['next_batch']}")
        parked["s"] = time.time() - t0

    th = threading.Thread(target=park)
    th.start()
    time.sleep(1.0)

    out = expect(root.post(f"/v1/admin/users/{bob.openid}/disable", {}), 200)
    assert out["disabled"] is True and out["disabled_at"] and out["sessions_revoked"] == 3

    # The stream ends: reading it returns within a few seconds, not at its timeout.
    t0 = time.time()
    for _ in stream.iter_content(chunk_size=None):
        if time.time() - t0 > 10:
            break
    assert time.time() - t0 < 10
    th.join(15)
    assert not th.is_alive() and parked["s"] < 15, parked

    for c in (bob, other):
        expect(c.get("/v1/me"), 401, "TOKEN_INVALID")
    assert mxc.get("/_matrix/client/v3/account/whoami").status_code == 401
    expect(login(srv.url, bob.username), 403, "ACCOUNT_DISABLED")
    assert mx_login(srv.url, bob.username).status_code == 403
    expect(login(srv.url, bob.username, "wrong password"), 401, "BAD_CREDENTIALS")
    listed = expect(root.get(f"/v1/admin/users?prefix={bob.username}"), 200)["items"]
    assert listed[0]["disabled"] is True

    # Asking again changes nothing and writes nothing.
    n = len(ledger(root, "user.disabled"))
    again = expect(root.post(f"/v1/admin/users/{bob.openid}/disable", {}), 200)
    assert again["disabled"] is True and again["sessions_revoked"] == 0
    hits = ledger(root, "user.disabled")
    assert len(hits) == n and bob.openid in json.dumps(hits[-1])

    expect(root.post(f"/v1/admin/users/{bob.openid}/enable", {}), 200)
    assert bob.openid in json.dumps(ledger(root, "user.enabled")[-1])
    expect(login(srv.url, bob.username), 201)

    expect(root.post(f"/v1/admin/users/{root.openid}/disable", {}), 409, "ADMIN_SELF")
    expect(root.post(f"/v1/admin/users/{bob.openid}/disable", {"why": 1}), 422, "FIELD_UNKNOWN")
    expect(root.post("/v1/admin/users/u_nobody/disable", {}), 404, "USER_NOT_FOUND")

    # The CLI, by username.
    r = qun(srv.url, root.token, "admin", "disable", bob.username)
    assert r.returncode == 0 and "disabled" in r.stdout, r.stdout + r.stderr
    expect(login(srv.url, bob.username), 403, "ACCOUNT_DISABLED")
    r = qun(srv.url, root.token, "admin", "enable", bob.username)
    assert r.returncode == 0 and "active" in r.stdout, r.stdout + r.stderr
    expect(login(srv.url, bob.username), 201)


def test_reset_password_one_time_code_then_a_new_password(srv, root):
    carol = register(srv.url)
    out = expect(root.post(f"/v1/admin/users/{carol.openid}/password-reset", {}), 200)
    code = out["code"]
    assert len(code) == 14 and out["password_change_required"] is True and out["sessions_revoked"] == 1
    expect(carol.get("/v1/me"), 401, "TOKEN_INVALID")
    assert carol.openid in json.dumps(ledger(root, "user.password_reset")[-1])
    assert code not in json.dumps(ledger(root, "user.password_reset"))
    # Stored hashed: neither the ledger nor the users row holds the code.
    with db(srv) as c:
        (pwhash,) = c.execute("SELECT pwhash FROM users WHERE openid = ?", (carol.openid,)).fetchone()
    assert pwhash.startswith("$argon2id$") and code not in pwhash

    expect(login(srv.url, carol.username), 401, "BAD_CREDENTIALS")  # the old password is gone
    s = expect(login(srv.url, carol.username, code), 201)
    assert s["password_change_required"] is True
    c = Client(srv.url, s["token"])
    expect(c.get("/v1/groups"), 403, "PASSWORD_CHANGE_REQUIRED")
    expect(c.post("/v1/groups", {"name": "x"}), 403, "PASSWORD_CHANGE_REQUIRED")
    expect(c.post("/v1/events/ticket", {}), 403, "PASSWORD_CHANGE_REQUIRED")
    assert expect(c.get("/v1/me"), 200)["password_change_required"] is True
    # The code logs in once.
    expect(login(srv.url, carol.username, code), 401, "RESET_CODE_USED")
    expect(c.post("/v1/me/password", {"old_password": code, "new_password": "a brand new one"}), 200)
    assert expect(c.get("/v1/me"), 200)["password_change_required"] is False
    expect(c.get("/v1/groups"), 200)
    expect(login(srv.url, carol.username, code), 401, "BAD_CREDENTIALS")
    expect(login(srv.url, carol.username, "a brand new one"), 201)

    # The CLI shows the code once, and the admin's own password-reset idempotency is off.
    r = qun(srv.url, root.token, "admin", "reset-password", carol.username)
    assert r.returncode == 0 and "one-time code" in r.stdout, r.stdout + r.stderr
    code2 = r.stdout.split("shown once): ")[1].split()[0]
    assert expect(login(srv.url, carol.username, code2), 201)["password_change_required"] is True
