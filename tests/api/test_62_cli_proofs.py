# SPDX-License-Identifier: MIT
"""The CLI answers every requirement of a 428 itself (src/qun/proofs.c), and shows the
server's codes in words, in English or Chinese by the locale.

- `qun totp enrol` shows the QR code and the secret, and confirms with a code read from
  stdin; a dissolution at risk level verify then asks for a TOTP code, read from stdin
  (a code computed here with hmac), from --totp-code or from QUN_TOTP_CODE.
- With this device's key file the step-up is a challenge signed by the key; with a key
  the account needs a key's proof on every action, and a second round asks for TOTP.
- A password step-up (an education group) is asked for on the terminal (a pty here) and
  is not echoed; so is a TOTP code typed on a terminal.
- `qun passkeys` lists the passkeys registered in the console and `passkeys remove`
  removes one; refusals are words from their codes (PASSKEY_NOT_FOUND) in en and zh.
- An answer whose requirements this qun does not know is said so, and nothing is sent.

Each device runs the real binary with its own XDG_CONFIG_HOME (test_23's Device)."""
import json
import subprocess
import os
import time
import uuid

import pytest
import requests

from conftest import QUN, Server, expect, stop_clean
from test_15_verify import server_now, totp
from test_20_cli import FakeServer
from test_23_cli_verify import PASSWORD, Device
from test_60_passkeys import enroll
from terminal import on_pty


@pytest.fixture(scope="module")
def srv():
    """Every dissolution is at risk level verify: it needs a step-up (device_key or totp)."""
    s = Server(env={"QUN_TEST_CLOCK": "1"}, extra=["--set", "risk_frequency_max=0"]).start()
    yield s
    stop_clean(s)


@pytest.fixture(scope="module")
def calm():
    """No risk rule fires: only the platform's and the group kind's own proofs."""
    s = Server(env={"QUN_TEST_CLOCK": "1"}, extra=["--set", "risk_rules=0"]).start()
    yield s
    stop_clean(s)


def fresh(server, tmp_path):
    return Device(server, tmp_path, "p" + uuid.uuid4().hex[:8], register_first=True)


def at_step_start(server):
    """Move the clock to the start of a TOTP time step, so a code stays current."""
    expect(requests.post(server.url + "/v1/test/clock", json={"advance": 30 - server_now(server.url) % 30},
                         timeout=10), 200)


def enrol_totp(server, d):
    """qun totp enrol, confirmed with a code on stdin; returns the secret."""
    at_step_start(server)
    r = d.run("totp", "enrol", input="")  # at end of input it waits for qun totp confirm
    assert r.returncode == 0, r.stderr
    secret = r.stdout.split("secret=")[1].split("&")[0]
    assert secret in r.stdout.splitlines()[0]  # the secret as text, for typing it in
    assert sum("\u2588" in l or "\u2580" in l or "\u2584" in l for l in r.stdout.splitlines()) >= 10
    assert "qun totp confirm" in r.stderr
    # enrol again (the pending secret is replaced), confirmed with a code from stdin
    r = d.run("totp", "enrol")
    secret = r.stdout.split("secret=")[1].split("&")[0]
    r = d.ok("totp", "confirm", totp(secret, server_now(server.url)))
    assert "TOTP is active" in r.stdout
    return secret


def group(d, name):
    return d.json("group", "create", name)["id"]


def next_step(server):
    """The next time step: a code is good once."""
    expect(requests.post(server.url + "/v1/test/clock", json={"advance": 30}, timeout=10), 200)


def test_totp_enrol_then_dissolve_answers_the_totp_step_up_from_stdin(srv, tmp_path):
    d = fresh(srv, tmp_path)
    # Before TOTP is set up the step-up can only be refused: the code is checked.
    gid = group(d, "book club")
    r = d.fails("TOTP_NOT_ENROLLED", "dissolve", gid, "--messages", "delete", "--confirm-name", "book club",
                "--no-wait", input="123456\n")
    assert "authenticator app" in r.stderr  # it asked for the code
    secret = enrol_totp(srv, d)
    next_step(srv)
    # A wrong code: refused in words, nothing dissolved.
    r = d.fails("TOTP_INVALID", "dissolve", gid, "--messages", "delete", "--confirm-name", "book club",
                "--no-wait", input="000000\n")
    assert "The code from the authenticator app is wrong." in r.stderr
    assert d.json("group", "show", gid)["state"] == "active"
    # The right code, read from stdin.
    r = d.ok("dissolve", gid, "--messages", "delete", "--confirm-name", "book club", "--no-wait",
             input=totp(secret, server_now(srv.url)) + "\n")
    assert "Code from your authenticator app" in r.stderr
    assert f"group {gid}: pending" in r.stdout
    st = d.json("status", gid)
    assert st["state"] == "pending" and st["risk"]["level"] == "verify"
    assert st["requested_by_username"] == d.name
    shown = d.ok("status", gid).stdout
    assert f"by {d.name}" in shown and d.openid not in shown  # a name, not an openid
    # --totp-code and QUN_TOTP_CODE are the same answer for scripts.
    next_step(srv)
    g2 = group(d, "two")
    d.ok("dissolve", g2, "--messages", "keep", "--confirm-name", "two", "--no-wait",
         "--totp-code", totp(secret, server_now(srv.url)))
    next_step(srv)
    g3 = group(d, "three")
    d.ok("dissolve", g3, "--messages", "keep", "--confirm-name", "three", "--no-wait",
         env={"QUN_TOTP_CODE": totp(secret, server_now(srv.url))})
    assert d.json("group", "show", g3)["state"] == "pending"
    # A code used once is refused the second time (in Chinese with a Chinese locale).
    code = totp(secret, server_now(srv.url))
    g4 = group(d, "four")
    r = d.fails("TOTP_REPLAYED", "dissolve", g4, "--messages", "keep", "--confirm-name", "four", "--no-wait",
                "--totp-code", code, env={"LANG": "zh_CN.UTF-8"})
    assert "该验证码已使用过" in r.stderr and "already used" not in r.stderr


def test_a_device_key_file_answers_device_key_and_totp_the_second_round(srv, tmp_path):
    d = fresh(srv, tmp_path)
    secret = enrol_totp(srv, d)
    d.ok("device", "key", "register")
    next_step(srv)
    gid = group(d, "keyed")
    # With a key the account needs the key's proof (signed from the key file), and the
    # risk step-up beyond it is the other method: a TOTP code.
    r = d.ok("dissolve", gid, "--messages", "delete", "--confirm-name", "keyed", "--no-wait",
             input=totp(secret, server_now(srv.url)) + "\n")
    assert "signed with this device's key" in r.stderr and "authenticator app" in r.stderr
    st = d.json("status", gid)
    assert st["state"] == "pending"
    # Without the key file the CLI says how to make one, and nothing is dissolved.
    os.rename(d.home / "cfg" / "qun" / "device_key", d.home / "key.json")
    g2 = group(d, "keyless")
    r = d.fails("DEVICE_KEY_REQUIRED", "dissolve", g2, "--messages", "delete", "--confirm-name", "keyless",
                "--no-wait")
    assert "qun device key register" in r.stderr
    assert d.json("group", "show", g2)["state"] == "active"
    # --key names it.
    next_step(srv)
    d.ok("dissolve", g2, "--messages", "delete", "--confirm-name", "keyless", "--no-wait",
         "--key", str(d.home / "key.json"), "--totp-code", totp(secret, server_now(srv.url)))
    assert d.json("group", "show", g2)["state"] == "pending"


def run_on_pty(d, args, answers, env=None):
    """Run qun on a terminal as device d; answer each (prompt, text) once.
    Returns (exit status, everything the terminal showed)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("QUN_")}
    e.update(HOME=str(d.home), XDG_CONFIG_HOME=str(d.home / "cfg"), QUN_URL=d.url, **(env or {}))
    rc, shown = on_pty([QUN, *args], answers, env=e)
    return rc, shown.decode(errors="replace")


def test_password_and_totp_asked_on_a_terminal_without_echo(srv, tmp_path):
    d = fresh(srv, tmp_path)
    secret = enrol_totp(srv, d)
    school = expect(d.api.post("/v1/orgs", {"name": "school", "kind": "school"}), 201)["id"]
    gid = d.json("group", "create", "class 3", "--kind", "education", "--org", school)["id"]
    next_step(srv)
    code = totp(secret, server_now(srv.url))
    rc, shown = run_on_pty(d, ["dissolve", gid, "--messages", "delete", "--no-wait"],
                           [("Type the group's name.* to confirm: $", "class 3"), ("Password: $", PASSWORD),
                            ("authenticator app: $", code)])
    assert rc == 0, shown
    assert "Password:" in shown and "authenticator app" in shown
    assert PASSWORD not in shown and code not in shown  # neither secret was echoed
    assert "class 3" in shown  # the typed name is no secret: it shows
    assert d.json("group", "show", gid)["state"] == "review"


def test_a_wrong_password_on_a_terminal_is_refused_in_chinese(calm, tmp_path):
    d = fresh(calm, tmp_path)
    school = expect(d.api.post("/v1/orgs", {"name": "school", "kind": "school"}), 201)["id"]
    gid = d.json("group", "create", "class 4", "--kind", "education", "--org", school)["id"]
    rc, shown = run_on_pty(d, ["dissolve", gid, "--messages", "delete", "--confirm-name", "class 4", "--no-wait"],
                           [("密码：$", "not the password")], env={"LC_ALL": "zh_CN.UTF-8"})
    assert rc == 1 and "用户名或密码错误。 (BAD_CREDENTIALS)" in shown, shown
    assert "not the password" not in shown
    assert d.json("group", "show", gid)["state"] == "active"
    rc, shown = run_on_pty(d, ["dissolve", gid, "--messages", "delete", "--confirm-name", "class 4", "--no-wait"],
                           [("Password: $", PASSWORD)])
    assert rc == 0 and PASSWORD not in shown, shown
    assert d.json("group", "show", gid)["state"] == "review"


def test_passkeys_list_and_remove(calm, tmp_path):
    d = fresh(calm, tmp_path)
    assert "no passkeys" in d.ok("passkeys").stdout
    _, pk = enroll(d.api)
    listed = d.ok("passkeys").stdout
    assert pk["id"] in listed and "(this device)" in listed and d.device_id in listed and "never" in listed
    assert [p["id"] for p in d.json("passkeys", "list")["items"]] == [pk["id"]]
    # Removing takes away a way to approve: the password again, refused when wrong.
    d.fails("BAD_CREDENTIALS", "passkeys", "remove", pk["id"], "--password", "wrong horse")
    assert [p["id"] for p in d.json("passkeys", "list")["items"]] == [pk["id"]]
    assert f"removed the passkey {pk['id']}" in d.ok("passkeys", "remove", pk["id"],
                                                     env={"QUN_PASSWORD": PASSWORD}).stdout
    assert d.json("passkeys")["items"] == []
    r = d.fails("PASSKEY_NOT_FOUND", "passkeys", "remove", pk["id"], "--password", PASSWORD)
    assert "That passkey does not exist" in r.stderr
    r = d.fails("PASSKEY_NOT_FOUND", "passkeys", "remove", pk["id"], "--password", PASSWORD,
                env={"LANG": "zh_CN.UTF-8"})
    assert "该通行密钥不存在" in r.stderr
    d.fails("USAGE", "passkeys", "forget", exit=2)


class FakeQund(FakeServer):
    """A server whose dissolution answers a 428 with requirements of a shape no qun knows."""

    def __init__(self, requirements):
        self.posts, self.requirements = 0, requirements
        super().__init__(self.answer)

    def answer(self, path, headers):
        self.posts += 1
        if path.endswith("/preview"):
            body = {"group": "g_1", "name": "x", "confirmation_token": "qct_1", "expires_at": 2000000000}
            return 200, "application/json", json.dumps(body).encode()
        body = {"code": "VERIFICATION_REQUIRED", "status": 428, "detail": "english",
                "requirements": self.requirements}
        return 428, "application/problem+json", json.dumps(body).encode()


@pytest.mark.parametrize("reqs", [{"all": ["retina_scan"]}, [{"method": "carrier_pigeon"}], "sign here",
                                  {"any_of": "totp"}])
def test_an_unknown_requirement_is_said_so_and_nothing_is_sent(calm, tmp_path, reqs):
    d = fresh(calm, tmp_path)
    fake = FakeQund(reqs)
    try:
        r = d.run("--url", fake.url, "dissolve", "g_1", "--messages", "keep", "--confirm-name", "x", "--no-wait",
                  env={"QUN_TOKEN": "qun_test"})
    finally:
        fake.close()
    assert r.returncode == 1, r.stderr
    assert "in a form this qun does not know" in r.stderr and "english" not in r.stderr
    assert fake.posts == 2  # the preview and the one request: no proof was sent after it


def test_qr_shown_by_one_device_is_approved_by_the_other_and_the_first_goes_on(calm, tmp_path):
    name = "q" + uuid.uuid4().hex[:8]
    phone = Device(calm, tmp_path, name, register_first=True)
    phone.ok("device", "key", "register")
    desk = Device(calm, tmp_path, name)  # a second device of the same user: its own config directory
    assert desk.device_id != phone.device_id
    gid = desk.json("group", "create", "qr club")["id"]
    e = {k: v for k, v in os.environ.items() if not k.startswith("QUN_")}
    e.update(HOME=str(desk.home), XDG_CONFIG_HOME=str(desk.home / "cfg"), QUN_URL=desk.url)
    p = subprocess.Popen([QUN, "dissolve", gid, "--messages", "keep", "--confirm-name", "qr club", "--no-wait"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
    try:
        uri = None
        deadline = time.time() + 60
        while uri is None and time.time() < deadline:
            line = p.stderr.readline()
            assert line, "qun dissolve ended before showing the QR code"
            if "qun approve '" in line:
                uri = line.split("qun approve '")[1].split("'")[0]
        assert uri and uri.startswith("qun://challenge/")
        r = phone.ok("approve", uri, "--key", str(phone.home / "cfg" / "qun" / "device_key"))
        assert "approved" in r.stdout
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert "\u2588" in out or "\u2580" in out  # the QR code was drawn
    assert f"group {gid}: pending" in out
    assert "AddressSanitizer" not in err and "runtime error" not in err


def test_a_removal_past_the_threshold_is_signed_with_the_key_file(calm, tmp_path):
    """group remove, the eleventh in a day: the preview's token, the typed name and, for an
    account with a device key, the key's signature, all collected by the CLI."""
    owner = fresh(calm, tmp_path)
    owner.ok("device", "key", "register")
    gid = group(owner, "big club")
    people = [expect(requests.post(calm.url + "/v1/users", json={"username": "m" + uuid.uuid4().hex[:10],
                                                                  "password": PASSWORD}, timeout=30), 201)
              for _ in range(11)]
    for p in people:
        expect(owner.api.post(f"/v1/groups/{gid}/members", {"openid": p["openid"]}), 201)
    for p in people[:10]:
        owner.ok("group", "remove", gid, p["openid"])
    last = people[10]["openid"]
    r = owner.ok("group", "remove", gid, last, "--confirm-name", "big club")
    assert "signed with this device's key" in r.stderr
    members = [m["openid"] for m in expect(owner.api.get(f"/v1/groups/{gid}/members"), 200)["items"]]
    assert last not in members and len(members) == 1
