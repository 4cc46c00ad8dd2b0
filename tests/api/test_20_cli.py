# SPDX-License-Identifier: MIT
"""The qun CLI driven as a user would: the real binary against a real qund, each user
with their own temporary XDG_CONFIG_HOME.  Assertions are about what a user notices:
files written, text shown, exit statuses, error codes and the server's state."""
import hashlib
import json
import os
import stat
import subprocess
import uuid

import pytest
import requests

from conftest import QUN, Client, age_sessions, expect

PASSWORD = "correct horse"


class User:
    """One CLI user: a config directory and a way to run qun with it."""

    def __init__(self, server, tmp_path, name=None):
        self.name = name or "c" + uuid.uuid4().hex[:10]
        self.home = tmp_path / self.name
        self.cfg = self.home / "cfg"
        self.home.mkdir()
        self.url = server.url
        self.openid = None

    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUN_")}
        env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.cfg), QUN_URL=self.url)
        env.update(extra or {})
        return env

    def run(self, *args, input=None, env=None, cwd=None):
        return subprocess.run([QUN, *args], input=input, capture_output=True, text=True,
                              env=self.env(env), cwd=cwd or self.home, timeout=60)

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"qun {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
        assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
        return r

    def json(self, *args, **kw):
        return json.loads(self.ok("--json", *args, **kw).stdout)

    def fails(self, code, *args, exit=1, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == exit, f"qun {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
        # The one error format: "qun: <detail> (<CODE>)" on a line of stderr.
        assert any(l.startswith("qun: ") and l.endswith(f"({code})") for l in r.stderr.splitlines()), r.stderr
        return r

    @property
    def token_path(self):
        return self.cfg / "qun" / "token"

    def token(self):
        return self.token_path.read_text().strip()

    def signup(self):
        self.ok("register", self.name, "--password", PASSWORD)
        self.ok("login", self.name, env={"QUN_PASSWORD": PASSWORD})
        self.openid = self.json("whoami")["openid"]
        return self


@pytest.fixture
def alice(server, tmp_path):
    return User(server, tmp_path).signup()


@pytest.fixture
def bob(server, tmp_path):
    return User(server, tmp_path).signup()


def test_register_login_writes_private_token(server, tmp_path):
    u = User(server, tmp_path)
    r = u.ok("register", u.name, "--password", PASSWORD)
    assert u.name in r.stdout
    assert not u.token_path.exists()
    r = u.ok("login", u.name, "--password", PASSWORD)
    assert "logged in as " + u.name in r.stdout
    assert stat.S_IMODE(u.token_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(u.token_path.parent.stat().st_mode) == 0o700
    assert u.token().startswith("qun_")
    assert u.token() not in r.stdout  # the secret stays in the file
    who = u.ok("whoami").stdout
    assert who.splitlines()[0] == u.name
    # The device id is created once and reused by the next login, which proves the
    # device with the secret the first login was given (kept private, never printed).
    device = (u.cfg / "qun" / "device_id").read_text().strip()
    secrets = u.cfg / "qun" / "device_secrets"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    secret = json.loads(secrets.read_text())[f"{u.url} {u.name.lower()} {device}"]
    assert secret.startswith("qds_") and secret not in r.stdout
    r = u.ok("login", u.name, "--password", PASSWORD)
    assert secret not in r.stdout
    sessions = u.json("sessions")["items"]
    assert len(sessions) == 2 and all(s["device_id"] == device for s in sessions)
    assert len(expect(Client(u.url, u.token()).get("/v1/me/devices"), 200)["items"]) == 1
    assert "*" in u.ok("sessions").stdout  # the current session is marked


def test_wrong_password_and_usage_errors(server, tmp_path, alice):
    alice.fails("BAD_CREDENTIALS", "login", alice.name, "--password", "not the password")
    alice.fails("USAGE", "login", exit=2)
    alice.fails("USAGE", "frobnicate", exit=2)
    alice.fails("USAGE", "history", "g_x", "--limit", "lots", exit=2)
    alice.fails("USAGE", "group", "show", exit=2)
    # Without a password source and without a terminal, register fails fast.
    nobody = User(server, tmp_path)
    nobody.fails("USAGE", "register", nobody.name, input="", exit=2)
    nobody.fails("NOT_LOGGED_IN", "whoami")


def test_group_create_list_show(alice, bob):
    g = alice.json("group", "create", "book club")
    assert g["name"] == "book club" and g["my_role"] == "owner" and g["state"] == "active"
    listed = alice.ok("group", "list").stdout
    assert g["id"] in listed and "book club" in listed
    shown = alice.ok("group", "show", g["id"]).stdout
    assert "book club" in shown and "owner" in shown
    alice.ok("group", "add", g["id"], bob.openid)
    alice.ok("group", "role", g["id"], bob.openid, "admin")
    members = alice.json("group", "members", g["id"])["items"]
    assert {m["username"]: m["role"] for m in members} == {alice.name: "owner", bob.name: "admin"}
    assert bob.json("group", "rename", g["id"], "book club 2")["name"] == "book club 2"
    assert g["id"] in bob.ok("group", "list").stdout
    alice.ok("group", "remove", g["id"], bob.openid)
    bob.fails("GROUP_NOT_FOUND", "group", "show", g["id"])


def test_unknown_group_is_an_api_error(alice):
    r = alice.fails("GROUP_NOT_FOUND", "group", "show", "g_doesnotexist")
    assert r.stdout == ""
    alice.fails("GROUP_NOT_FOUND", "post", "g_doesnotexist", "hello")


def test_post_and_history_roundtrip(server, alice, bob):
    gid = alice.json("group", "create", "chat")["id"]
    alice.ok("group", "add", gid, bob.openid)
    assert alice.json("post", gid, "hello", "there")["seq"] == 1
    bob.ok("post", gid, "-", input="from stdin\n")
    out = alice.ok("history", gid).stdout
    assert f"{alice.name}: hello there" in out and f"{bob.name}: from stdin" in out
    page = alice.json("history", gid, "--limit", "1")
    assert [m["text"] for m in page["items"]] == ["hello there"] and page["next_cursor"] == "1"
    rest = alice.json("history", gid, "--after", "1")
    assert [m["text"] for m in rest["items"]] == ["from stdin"]
    # More than one server page (200): history without --limit follows next_cursor.
    s = requests.Session()
    h = {"Authorization": "Bearer " + alice.token()}
    for i in range(210):
        expect(s.post(f"{server.url}/v1/groups/{gid}/messages", json={"text": f"bulk {i}"}, headers=h), 201)
    items = alice.json("history", gid)["items"]
    assert [m["seq"] for m in items] == list(range(1, 213))
    assert alice.ok("history", gid).stdout.count("bulk ") == 210


def test_upload_download_identical(alice, tmp_path):
    gid = alice.json("group", "create", "files")["id"]
    data = os.urandom(300_000) + b"end"
    src = alice.home / "photo.bin"
    src.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    up = alice.json("upload", gid, str(src))
    assert up["digest"] == digest and up["size"] == len(data) and up["name"] == "photo.bin"
    assert digest in alice.ok("upload", gid, str(src)).stdout  # human output names the digest
    out = alice.home / "copy.bin"
    r = alice.ok("download", gid, digest, "-o", str(out))
    assert out.read_bytes() == data and "verified" in r.stdout
    # Without -o the server's file name is used, and an existing file is never replaced.
    d = alice.home / "dl"
    d.mkdir()
    alice.ok("download", gid, digest, cwd=d)
    assert (d / "photo.bin").read_bytes() == data
    alice.fails("FILE_EXISTS", "download", gid, digest, cwd=d)
    alice.fails("FILE_NOT_FOUND", "download", gid, "0" * 64, "-o", str(alice.home / "nothing"))
    assert not (alice.home / "nothing").exists()
    assert [p.name for p in d.iterdir()] == ["photo.bin"]  # no temporary files left behind


def test_payments_and_bill(alice, bob):
    gid = alice.json("group", "create", "lunch")["id"]
    alice.ok("group", "add", gid, bob.openid)
    p = alice.json("pay", gid, "1", "4", "--memo", "noodles")  # one yuan: 100 fen
    assert p["amount"] == 100 and p["shares"] == 4 and p["memo"] == "noodles"
    assert bob.json("claim", gid, p["id"])["amount"] == 25
    bob.fails("ALREADY_CLAIMED", "claim", gid, p["id"])
    bill = bob.ok("bill").stdout
    assert "claimed from a red packet" in bill and "+¥0.25" in bill and "lunch" in bill
    assert [l["amount"] for l in alice.json("bill")["items"]] == [-100]


def test_transfer_and_leave(alice, bob):
    gid = alice.json("group", "create", "handover")["id"]
    alice.ok("group", "add", gid, bob.openid)
    alice.fails("OWNER_MUST_TRANSFER", "leave", gid)
    # A session younger than 24 h may not give a group away; a day later, with the name typed.
    alice.fails("SESSION_TOO_NEW", "transfer", gid, bob.openid, "--confirm-name", "handover")
    age_sessions(alice.url)
    alice.fails("CONFIRMATION_MISMATCH", "transfer", gid, bob.openid, input="hand over\n")
    alice.ok("transfer", gid, bob.openid, "--confirm-name", "handover")
    assert bob.json("transfer", "accept", gid)["owner"] == bob.openid
    alice.ok("leave", gid)
    assert bob.json("group", "show", gid)["member_count"] == 1


def group_state(user, gid):
    r = requests.get(f"{user.url}/v1/groups/{gid}", headers={"Authorization": "Bearer " + user.token()},
                     timeout=30)
    return expect(r, 200)["state"]


def test_dissolve_needs_the_exact_name(alice, bob):
    gid = alice.json("group", "create", "Old Team")["id"]
    alice.ok("group", "add", gid, bob.openid)
    alice.ok("post", gid, "last words")
    # A wrong or missing name sends nothing: the group stays active with no dissolution.
    r = alice.fails("CONFIRMATION_MISMATCH", "dissolve", gid, "--messages", "keep", input="old team\n")
    assert "Old Team" in r.stdout and "members:" in r.stdout and "bill lines:" in r.stdout
    assert "kept read-only" in r.stdout  # the rule for messages is shown
    alice.fails("CONFIRMATION_MISMATCH", "dissolve", gid, "--messages", "keep", input="")
    alice.fails("CONFIRMATION_MISMATCH", "dissolve", gid, "--messages", "keep", "--confirm-name", "Old")
    assert group_state(alice, gid) == "active"
    r = requests.get(f"{alice.url}/v1/groups/{gid}/dissolution",
                     headers={"Authorization": "Bearer " + alice.token()}, timeout=30)
    expect(r, 404, "DISSOLUTION_NOT_FOUND")
    alice.fails("USAGE", "dissolve", gid, exit=2)  # the messages rule must be chosen
    bob.fails("FORBIDDEN_ROLE", "dissolve", gid, "--messages", "keep", input="Old Team\n")
    # The right name, typed on stdin, dissolves it.
    r = alice.ok("dissolve", gid, "--messages", "keep", input="Old Team\n")
    assert group_state(alice, gid) == "pending"  # the 48 h cooling-off has begun
    assert gid in r.stdout and "cancel with: qun cancel" in r.stdout
    # During the cooling-off the members are still in, and they see the notice.
    history = bob.ok("history", gid).stdout
    # The notice reads as a sentence, never as its JSON.
    assert "last words" in history and "will be dissolved at" in history and "dissolves_at" not in history
    assert alice.run("status", gid).returncode == 0


def test_dissolve_non_interactive_json(alice):
    gid = alice.json("group", "create", "scripted")["id"]
    r = alice.ok("--json", "dissolve", gid, "--messages", "delete", "--confirm-name", "scripted")
    assert "scripted" in r.stderr  # the preview still goes to a person, on stderr
    out = json.loads(r.stdout)
    assert out["group"] == gid and out["state"] == "pending" and out["seconds_left"] > 0
    assert group_state(alice, gid) == "pending"  # the 48 h cooling-off has begun


def test_url_from_config_file(server, tmp_path):
    u = User(server, tmp_path)
    (u.cfg / "qun").mkdir(parents=True)
    (u.cfg / "qun" / "config").write_text(f"# qun settings\nurl = {server.url}/\n")
    r = subprocess.run([QUN, "register", u.name, "--password", PASSWORD], capture_output=True, text=True,
                       env={k: v for k, v in u.env().items() if k != "QUN_URL"}, timeout=60)
    assert r.returncode == 0, r.stderr
    # --url wins over QUN_URL and the file.
    u.fails("NETWORK", "--url", "http://127.0.0.1:1", "login", u.name, "--password", PASSWORD)


def test_logout_revokes_the_token(alice):
    old = alice.token()
    r = alice.ok("logout")
    assert "revoked" in r.stdout
    assert not alice.token_path.exists()
    me = requests.get(alice.url + "/v1/me", headers={"Authorization": "Bearer " + old}, timeout=30)
    expect(me, 401, "TOKEN_INVALID")
    alice.fails("NOT_LOGGED_IN", "whoami")
    alice.fails("TOKEN_INVALID", "whoami", env={"QUN_TOKEN": old})


def test_version_and_help(alice):
    assert alice.ok("--version").stdout.startswith("qun ")
    h = alice.ok("help").stdout
    for cmd in ("register", "login", "logout", "whoami", "sessions", "group create", "post", "history",
                "upload", "download", "transfer", "leave", "pay", "claim", "bill", "dissolve", "status"):
        assert cmd in h, cmd
    assert alice.run().returncode == 2


class FakeServer:
    """A stand-in server on loopback: answer(path, headers) gives each POST's (status,
    Content-Type, body bytes)."""

    def __init__(self, answer):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, ctype, body = answer(self.path, self.headers)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeQund(FakeServer):
    """A stand-in server that answers the first `fail` POSTs with 503, then 201, and
    records each request's Idempotency-Key, to observe the client's retry."""

    def __init__(self, fail):
        self.keys, self.fail = [], fail
        super().__init__(self.answer)

    def answer(self, path, headers):
        self.keys.append(headers.get("Idempotency-Key"))
        if len(self.keys) <= self.fail:
            return 503, "application/problem+json", b'{"code":"UNAVAILABLE","detail":"busy","status":503}'
        return 201, "application/json", b'{"group":"g_1","seq":7,"text":"x"}'


@pytest.mark.parametrize("fail", [1, 2])
def test_post_retries_once_with_the_same_idempotency_key(server, tmp_path, fail):
    fake = FakeQund(fail)
    try:
        u = User(server, tmp_path)
        r = u.run("--url", fake.url, "post", "g_1", "x", env={"QUN_TOKEN": "qun_test"})
    finally:
        fake.close()
    assert len(fake.keys) == 2 and fake.keys[0] and fake.keys[0] == fake.keys[1]
    if fail == 1:
        assert r.returncode == 0 and "#7" in r.stdout, r.stderr
    else:  # one retry only, then the server's problem is reported
        assert r.returncode == 1 and "qun: The server is busy; try again shortly. (UNAVAILABLE)" in r.stderr


def test_each_post_gets_a_fresh_key_and_double_dash_ends_options(alice):
    gid = alice.json("group", "create", "dashes")["id"]
    alice.ok("post", gid, "--", "--not-an-option")
    alice.ok("post", gid, "--", "--not-an-option")  # a reused key would replay, not post
    texts = [m["text"] for m in alice.json("history", gid)["items"]]
    assert texts == ["--not-an-option", "--not-an-option"]


def test_dissolve_preview_says_who_approves_in_the_users_language(alice, bob):
    """The preview's approver comes from from_code with the org's name, in English and in
    Chinese (LC_ALL), never as the server's pinned English `from`."""
    token = {"Authorization": "Bearer " + alice.token()}
    org = expect(requests.post(f"{alice.url}/v1/orgs", json={"name": "Acme 艾克米", "kind": "enterprise"},
                               headers=token, timeout=30), 201)
    gid = expect(requests.post(f"{alice.url}/v1/groups", json={"name": "Team", "kind": "enterprise", "org": org["id"]},
                               headers=token, timeout=30), 201)["id"]
    r = alice.fails("CONFIRMATION_MISMATCH", "dissolve", gid, "--messages", "keep", input="",
                    env={"LC_ALL": "C.UTF-8"})
    assert "any admin of Acme 艾克米" in r.stdout and "any admin of the org" not in r.stdout
    r = alice.fails("CONFIRMATION_MISMATCH", "dissolve", gid, "--messages", "keep", input="",
                    env={"LC_ALL": "zh_CN.UTF-8"})
    assert "“Acme 艾克米”的任意一位管理员" in r.stdout
