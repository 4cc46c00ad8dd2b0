# SPDX-License-Identifier: MIT
"""Names beyond the username (issue 14): a Unicode display name set at registration
or with PATCH /v1/me, shown beside the openid wherever a person appears, and a
member.display_name_changed event in every group of the person; and the persistent
Matrix localpart (users.mx_localpart): the username lower-cased when free, otherwise
the Matrix spec's escape ("Alice" -> "_alice"), then ".2", ".3"..., given once by
migration 0023 or at registration and never recomputed."""
import json
import os
import sqlite3
import subprocess
import uuid

import pytest
import requests

from conftest import QUN, Client, Server, expect, make_group, stop_clean

PW = "correct horse"


def sfx():
    return uuid.uuid4().hex[:6]


def create(url, name, display_name=None, **extra):
    body = {"username": name, "password": PW, **extra}
    if display_name is not None:
        body["display_name"] = display_name
    return requests.post(url + "/v1/users", json=body, timeout=30)


def login(url, name):
    body = expect(requests.post(url + "/v1/sessions", json={"username": name, "password": PW,
                                                            "device_id": "dev-" + sfx(), "platform": "cli"},
                                timeout=30), 201)
    return Client(url, body["token"], body["openid"], name)


def person(url, display_name=None):
    name = "n" + uuid.uuid4().hex[:10]
    expect(create(url, name, display_name), 201)
    return login(url, name)


def test_register_with_a_chinese_display_name_shown_everywhere(url):
    name = "Wang" + sfx()
    made = expect(create(url, name, "王小明"), 201)
    assert made["display_name"] == "王小明" and made["mx_localpart"] == name.lower(), made
    wang = login(url, name)
    me = expect(wang.get("/v1/me"), 200)
    assert me["display_name"] == "王小明" and me["username"] == name, me
    assert me["mx_localpart"] == name.lower()

    plain = person(url)  # no display name: null, clients show the username
    assert expect(plain.get("/v1/me"), 200)["display_name"] is None

    gid = make_group(wang, members=[plain], name="家庭")
    g = expect(wang.get(f"/v1/groups/{gid}"), 200)
    assert g["owner"] == wang.openid and g["owner_display_name"] == "王小明", g
    members = {m["openid"]: m for m in expect(wang.get(f"/v1/groups/{gid}/members"), 200)["items"]}
    assert members[wang.openid]["display_name"] == "王小明"
    assert members[plain.openid]["display_name"] is None and members[plain.openid]["username"] == plain.username

    posted = expect(wang.post(f"/v1/groups/{gid}/messages", {"text": "你好"}), 201)
    assert posted["author"] == wang.openid and posted["author_display_name"] == "王小明", posted
    expect(plain.post(f"/v1/groups/{gid}/messages", {"text": "hi"}), 201)
    items = expect(plain.get(f"/v1/groups/{gid}/messages"), 200)["items"]
    by = {m["text"]: m for m in items}
    assert by["你好"]["author_display_name"] == "王小明" and by["hi"]["author_display_name"] is None, items


def test_patch_me_sets_changes_and_clears_the_display_name():
    s = Server().start()
    try:
        ann = person(s.url)
        bob = person(s.url, "Bob")
        gid = make_group(ann, members=[bob])
        other = make_group(bob)
        lp = expect(bob.get("/v1/me"), 200)["mx_localpart"]

        me = expect(bob.patch("/v1/me", {"display_name": "  Bob Smith\u3000"}), 200)  # trimmed, ideographic space too
        assert me["display_name"] == "Bob Smith" and me["mx_localpart"] == lp and me["openid"] == bob.openid, me
        members = {m["openid"]: m for m in expect(ann.get(f"/v1/groups/{gid}/members"), 200)["items"]}
        assert members[bob.openid]["display_name"] == "Bob Smith"
        # NFC: a decomposed accent is stored composed.
        me = expect(bob.patch("/v1/me", {"display_name": "Rene\u0301"}), 200)
        assert me["display_name"] == "Ren\u00e9", me
        # The same name again changes nothing and tells nobody.
        expect(bob.patch("/v1/me", {"display_name": "Ren\u00e9"}), 200)
        # 64 characters is the most; Chinese counts characters, not bytes.
        me = expect(bob.patch("/v1/me", {"display_name": "王" * 64}), 200)
        assert me["display_name"] == "王" * 64
        me = expect(bob.patch("/v1/me", {"display_name": None}), 200)
        assert me["display_name"] is None and me["mx_localpart"] == lp
        assert expect(bob.get("/v1/me"), 200)["display_name"] is None

        # One member.display_name_changed per change and group Bob is in, in order.
        with sqlite3.connect(os.path.join(s.data, "qun.db")) as c:
            rows = c.execute("SELECT payload FROM events WHERE topic = 'member.display_name_changed' "
                             "ORDER BY id").fetchall()
        payloads = [json.loads(r[0]) for r in rows]
        names = ["Bob Smith", "Ren\u00e9", "王" * 64, None]
        seen = [(p["group"], p["display_name"]) for p in payloads]
        assert sorted(seen, key=str) == sorted([(g, nm) for nm in names for g in (gid, other)], key=str), seen
        order = [p["display_name"] for p in payloads]
        assert [x for i, x in enumerate(order) if i == 0 or order[i - 1] != x] == names, order
        assert all(p["openid"] == bob.openid for p in payloads)
    finally:
        stop_clean(s)


@pytest.mark.parametrize("bad", ["", "   ", "x" * 65, "王" * 65, "a\x07b", "tab\there", "line\nbreak",
                                 "zero\u200bwidth", "rtl\u202eoverride", 42, True, ["a"], {"a": 1}])
def test_invalid_display_names_are_refused(url, bad):
    p = expect(create(url, "bad" + sfx(), bad), 422, "FIELD_INVALID")
    assert p["field"] == "display_name", p
    c = person(url, "Good")
    p = expect(c.patch("/v1/me", {"display_name": bad}), 422, "FIELD_INVALID")
    assert p["field"] == "display_name", p
    assert expect(c.get("/v1/me"), 200)["display_name"] == "Good"


def test_patch_me_needs_the_field_and_nothing_else(url):
    c = person(url)
    expect(c.patch("/v1/me", {}), 422, "FIELD_MISSING")
    expect(c.patch("/v1/me", {"display_name": "A", "username": "x"}), 422, "FIELD_UNKNOWN")
    expect(requests.patch(url + "/v1/me", json={"display_name": "A"}, timeout=30), 401, "UNAUTHENTICATED")


def test_localparts_lowercase_escape_and_stay():
    """Accounts from before migration 0023: "alice" and then "Alice" (case-insensitive
    usernames came later), "王小明", "Bob_Jones".  The migration gives "alice", "_alice",
    the escape "=e7=8e=8b=e5=b0=8f=e6=98=8e" and "bob_jones"; a "_alice" registered
    afterwards finds its lower case taken and gets its escape "__alice"; a display-name change
    changes none of them."""
    s = Server().start()
    try:
        n = sfx()
        alice = person(s.url)
        expect(create(s.url, "alice" + n), 201)
        stop_clean(s)
        db = os.path.join(s.data, "qun.db")
        with sqlite3.connect(db) as c:
            h = c.execute("SELECT pwhash FROM users WHERE username = ?", ("alice" + n,)).fetchone()[0]
            # Back to the schema before 0023, then accounts the schema of then allowed.
            c.execute("DROP INDEX users_by_mx_localpart")
            c.execute("ALTER TABLE users DROP COLUMN mx_localpart")
            c.execute("ALTER TABLE users DROP COLUMN display_name")
            c.execute("DELETE FROM schema_migrations WHERE version = 23")
            for openid, name in [("u_old1" + n, "Alice" + n), ("u_old2" + n, "王小明" + n),
                                 ("u_old3" + n, "Bob_Jones" + n)]:
                c.execute("INSERT INTO users(openid, username, username_key, pwhash, password_changed_at, "
                          "created_at) VALUES (?, ?, ?, ?, 1, 1)", (openid, name, openid, h))
        s.start()
        with sqlite3.connect(db) as c:
            lp = dict(c.execute("SELECT username, mx_localpart FROM users").fetchall())
        assert lp["alice" + n] == "alice" + n
        assert lp["Alice" + n] == "_alice" + n
        assert lp["王小明" + n] == "=e7=8e=8b=e5=b0=8f=e6=98=8e" + n
        assert lp["Bob_Jones" + n] == "bob_jones" + n
        assert lp[alice.username] == alice.username.lower()

        made = expect(create(s.url, "_alice" + n), 201)
        assert made["mx_localpart"] == "__alice" + n, made
        later = login(s.url, "_alice" + n)
        for name in ["Someone", "别人", None]:
            assert expect(later.patch("/v1/me", {"display_name": name}), 200)["mx_localpart"] == "__alice" + n
        assert expect(later.get("/v1/me"), 200)["mx_localpart"] == "__alice" + n
        # A restart recomputes nothing.
        stop_clean(s)
        s.start()
        with sqlite3.connect(db) as c:
            assert dict(c.execute("SELECT username, mx_localpart FROM users").fetchall()) == \
                dict(lp, **{"_alice" + n: "__alice" + n})
    finally:
        stop_clean(s)


def qun(url, token, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUN_")}
    env.update(HOME="/nonexistent", QUN_URL=url, QUN_TOKEN=token)
    r = subprocess.run([QUN, *args], capture_output=True, text=True, env=env, timeout=60)
    assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


def test_cli_shows_and_sets_display_names(url):
    n = sfx()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUN_")}
    env.update(HOME="/nonexistent", QUN_URL=url, QUN_PASSWORD=PW)
    r = subprocess.run([QUN, "register", "li" + n, "--display-name", "李雷"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0 and f'li{n} "李雷"' in r.stdout, r.stdout + r.stderr
    li = login(url, "li" + n)
    han = person(url)
    who = qun(url, li.token, "whoami").stdout
    assert who.splitlines()[0] == "li" + n and "name:     李雷" in who and f"matrix:   @li{n}" in who, who
    gid = make_group(li, members=[han])
    expect(li.post(f"/v1/groups/{gid}/messages", {"text": "早上好"}), 201)
    assert "李雷: 早上好" in qun(url, han.token, "history", gid).stdout
    members = qun(url, li.token, "group", "members", gid).stdout
    assert "NAME" in members.splitlines()[0] and "李雷" in members, members
    assert f"{li.openid} (李雷)" in qun(url, han.token, "group", "show", gid).stdout

    r = qun(url, han.token, "display-name", "韩梅梅")
    assert r.returncode == 0 and "韩梅梅" in r.stdout, r.stdout + r.stderr
    assert expect(han.get("/v1/me"), 200)["display_name"] == "韩梅梅"
    r = qun(url, han.token, "display-name", "--clear")
    assert r.returncode == 0 and han.username in r.stdout, r.stdout + r.stderr
    assert expect(han.get("/v1/me"), 200)["display_name"] is None
    r = qun(url, han.token, "display-name", "a\x07b")
    assert r.returncode == 1 and "(FIELD_INVALID)" in r.stderr, r.stderr
    assert qun(url, han.token, "display-name").returncode == 2


def test_owners_add_people_by_the_name_they_sign_in_with(url):
    """People know each other's usernames, not openids: POST /members takes either,
    finds the username as login does (case folded), refuses both or neither, and
    says USER_NOT_FOUND only to those who may add members to the group."""
    owner, bob, carol, outsider = person(url), person(url, "鲍勃"), person(url), person(url)
    gid = make_group(owner)
    m = expect(owner.post(f"/v1/groups/{gid}/members", {"username": bob.username.upper()}), 201)
    assert m["openid"] == bob.openid and m["display_name"] == "鲍勃" and m["role"] == "member"
    m = expect(owner.post(f"/v1/groups/{gid}/members", {"username": carol.username, "role": "admin"}), 201)
    assert m["openid"] == carol.openid and m["role"] == "admin"
    expect(owner.post(f"/v1/groups/{gid}/members", {"username": "nobody-" + sfx()}), 404, "USER_NOT_FOUND")
    expect(owner.post(f"/v1/groups/{gid}/members", {"username": bob.username, "openid": bob.openid}), 422,
           "FIELD_INVALID")
    expect(owner.post(f"/v1/groups/{gid}/members", {}), 422, "FIELD_MISSING")
    expect(owner.post(f"/v1/groups/{gid}/members", {"username": 7}), 422)
    # A member who may not add people learns nothing about which names exist.
    r = bob.post(f"/v1/groups/{gid}/members", {"username": "nobody-" + sfx()})
    assert r.status_code == 403 and r.json()["code"] != "USER_NOT_FOUND", r.text
    r = outsider.post(f"/v1/groups/{gid}/members", {"username": bob.username})
    assert r.status_code == 404 and r.json()["code"] != "USER_NOT_FOUND", r.text
    names = {x["openid"] for x in expect(owner.get(f"/v1/groups/{gid}/members"), 200)["items"]}
    assert names == {owner.openid, bob.openid, carol.openid}
