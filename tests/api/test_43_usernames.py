# SPDX-License-Identifier: MIT
"""Usernames as people read them (issue 13, item 13): one name whatever its case or
Unicode form (NFKC_Casefold: "Alice"/"alice", "STRASSE"/"straße", "ΣΑΣ"/"σας",
full-width letters, composed and decomposed accents), so registering another form is
409 USERNAME_TAKEN and logging in with any form works, while the name is shown as
registered; failed logins in every form count against one lock; and accounts that
collided before usernames had keys (rows written with the key column empty, as the
schema before migration 0020 left them) all keep logging in, with the collisions in
qund's log and at GET /v1/admin/username-collisions (qun admin username-collisions)."""
import json
import os
import sqlite3
import subprocess
import uuid

import pytest
import requests

from conftest import QUN, Client, Server, expect, register, stop_clean

PW = "correct horse"


def sfx():
    return uuid.uuid4().hex[:6]


def create(url, name, password=PW):
    return requests.post(url + "/v1/users", json={"username": name, "password": password}, timeout=30)


def login(url, name, password=PW):
    return requests.post(url + "/v1/sessions", json={"username": name, "password": password,
                                                    "device_id": "dev-" + sfx(), "platform": "cli"}, timeout=30)


# (registered, another form of the same name) pairs, each with a fresh suffix.
def variants():
    s = sfx()
    return [
        ("Alice_" + s, "alice_" + s),
        ("alice2_" + s, "ALICE2_" + s),
        ("straße_" + s, "STRASSE_" + s),
        ("STRASSE2_" + s, "straße2_" + s.upper()),
        ("ΣΑΣ_" + s, "σας_" + s),
        ("σας2_" + s, "ΣΑΣ2_" + s),
        ("ａｌｉｃｅ3_" + s, "Alice3_" + s),
        ("café_" + s, "cafe\u0301_" + s),
        ("Ｂｏｂ" + s, "bob" + s),
        ("ǅemal" + s, "DŽEMAL" + s),
    ]


def test_another_case_or_unicode_form_of_a_name_is_taken(url):
    for registered, other in variants():
        body = expect(create(url, registered), 201)
        assert body["username"] == registered  # kept as given
        p = expect(create(url, other, "another password"), 409, "USERNAME_TAKEN")
        assert p["field"] == "username", p
        # The exact name again is taken too, as before.
        expect(create(url, registered, "another password"), 409, "USERNAME_TAKEN")


def test_login_accepts_any_form_and_shows_the_name_as_registered(url):
    s = sfx()
    for registered, forms in [("Straße_" + s, ["STRASSE_" + s, "strasse_" + s.upper(), "ｓｔｒａｓｓｅ_" + s]),
                              ("Σοφία" + s, ["ΣΟΦΊΑ" + s, "σοφία" + s.upper()]),
                              ("café" + s, ["CAFE\u0301" + s, "Café" + s])]:
        opened = expect(create(url, registered), 201)
        for form in [registered] + forms:
            body = expect(login(url, form), 201)
            assert body["openid"] == opened["openid"], form
            me = expect(Client(url, body["token"]).get("/v1/me"), 200)
            assert me["username"] == registered, (form, me)
        # A wrong password in another form is the same answer as for any wrong password.
        expect(login(url, forms[0], "wrong password"), 401, "BAD_CREDENTIALS")
    expect(login(url, "nobody_" + s), 401, "BAD_CREDENTIALS")


def test_failed_logins_in_every_form_count_against_one_lock():
    s = Server(extra=["--set", "lockout_account_max=3"]).start()
    try:
        n = sfx()
        expect(create(s.url, "Mallory_" + n), 201)
        for form in ["MALLORY_" + n, "mallory_" + n, "ｍａｌｌｏｒｙ_" + n]:
            r = login(s.url, form, "wrong password")
            assert r.status_code in (401, 429), r.text
        # Locked: even the right password in yet another form is refused now.
        expect(login(s.url, "Mallory_" + n), 429, "LOCKED_OUT")
    finally:
        stop_clean(s)


def qun(url, token, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUN_")}
    env.update(HOME="/nonexistent", QUN_URL=url, QUN_TOKEN=token)
    r = subprocess.run([QUN, *args], capture_output=True, text=True, env=env, timeout=60)
    assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


def test_accounts_that_collided_before_keys_all_keep_logging_in():
    """A database written before usernames had keys: "carol", then "Carol" and "CAROL"
    (each with its own password) and an unrelated "dave", all with an empty key.  qund
    keys them at startup: the oldest, "carol", holds the name; "Carol" and "CAROL" keep
    logging in by their exact names, and the collisions are reported."""
    s = Server(extra=["--set", "admins=root"]).start()
    try:
        n = sfx()
        root = register(s.url, name="root")
        carol = expect(create(s.url, "carol" + n), 201)
        expect(create(s.url, "tmp1" + n, "second password"), 201)
        expect(create(s.url, "tmp2" + n, "third password"), 201)
        stop_clean(s)
        with sqlite3.connect(os.path.join(s.data, "qun.db"), timeout=10) as c:
            pw = {r[0]: r[1] for r in c.execute("SELECT username, pwhash FROM users WHERE username IN (?, ?)",
                                                ("tmp1" + n, "tmp2" + n)).fetchall()}
            rows = [("u_old1" + n, "Carol" + n, pw["tmp1" + n]), ("u_old2" + n, "CAROL" + n, pw["tmp2" + n]),
                    ("u_old3" + n, "Dave" + n, pw["tmp1" + n])]
            for openid, name, h in rows:
                c.execute("INSERT INTO users(openid, username, pwhash, password_changed_at, created_at) "
                          "VALUES (?, ?, ?, 1, 1)", (openid, name, h))
            c.execute("UPDATE users SET username_key = NULL")  # as the schema before 0020 left every row
        s.start()

        log = s.read_log()
        assert log.count("username collision") == 2, log[-3000:]
        assert f'"Carol{n}" and the older "carol{n}"' in log and f'"CAROL{n}" and the older "carol{n}"' in log
        assert "2 accounts share their username's key" in log

        # Nobody is lost or locked out: each logs in by its exact name with its own password.
        assert expect(login(s.url, "carol" + n), 201)["openid"] == carol["openid"]
        assert expect(login(s.url, "Carol" + n, "second password"), 201)["openid"] == "u_old1" + n
        assert expect(login(s.url, "CAROL" + n, "third password"), 201)["openid"] == "u_old2" + n
        assert expect(login(s.url, "Dave" + n, "second password"), 201)["openid"] == "u_old3" + n
        # Any other form is the oldest's name; the keyed "dave" answers every form too.
        assert expect(login(s.url, "cArOl" + n), 201)["openid"] == carol["openid"]
        expect(login(s.url, "cArOl" + n, "second password"), 401, "BAD_CREDENTIALS")
        assert expect(login(s.url, "DAVE" + n, "second password"), 201)["openid"] == "u_old3" + n
        # The names stay taken in every form.
        for name in ["cARol" + n, "ｃａｒｏｌ" + n, "dAVE" + n]:
            expect(create(s.url, name), 409, "USERNAME_TAKEN")

        # The report, for server admins only.
        items = expect(root.get("/v1/admin/username-collisions"), 200)["items"]
        assert [(i["user"]["username"], i["holder"]["username"], i["username_key"]) for i in items] == [
            ("Carol" + n, "carol" + n, "carol" + n), ("CAROL" + n, "carol" + n, "carol" + n)]
        assert items[0]["user"]["openid"] == "u_old1" + n and items[0]["holder"]["openid"] == carol["openid"]
        page = expect(root.get("/v1/admin/username-collisions?limit=1"), 200)
        assert len(page["items"]) == 1 and page["next_cursor"]
        rest = expect(root.get(f"/v1/admin/username-collisions?after={page['next_cursor']}"), 200)
        assert [i["user"]["username"] for i in rest["items"]] == ["CAROL" + n]
        other = Client(s.url, expect(login(s.url, "Carol" + n, "second password"), 201)["token"])
        expect(other.get("/v1/admin/username-collisions"), 403, "FORBIDDEN_ADMIN")
        r = qun(s.url, root.token, "--json", "admin", "username-collisions")
        assert r.returncode == 0, r.stderr
        assert [i["user"]["username"] for i in json.loads(r.stdout)["items"]] == ["Carol" + n, "CAROL" + n]
        r = qun(s.url, root.token, "admin", "username-collisions")
        assert r.returncode == 0 and f"Carol{n} (u_old1{n}) logs in by its exact name only" in r.stdout, r.stdout

        # A restart finds nothing new and reports the same collisions again, once.
        stop_clean(s)
        s.start()
        log = s.read_log()
        assert log.count("username collision") == 2 and log.count("2 accounts share their username's key") == 2
        assert expect(login(s.url, "CAROL" + n, "third password"), 201)["openid"] == "u_old2" + n
    finally:
        stop_clean(s)
