# SPDX-License-Identifier: MIT
"""The verification commands of the qun CLI against a real qund: `device key register`,
`approve` (a second device of the same user signs what a QR challenge of the first
session shows, and the first session's dissolution then goes through), `totp enroll`,
`risk explain` and the manual risk review queue (`review list|approve|reject`).  Each
device runs the real binary with its own temporary XDG_CONFIG_HOME.

The server runs with risk_frequency_max=0, so every dissolution asks for step-up
verification (level verify) and the challenge is what satisfies it."""
import base64
import hashlib
import json
import os
import stat
import subprocess
import uuid

import pytest
import requests

from conftest import QUN, Client, Server, expect, register, stop_clean
from test_15_verify import server_now, totp
from test_22_cli_governance import User

PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def srv():
    s = Server(env={"QUN_TEST_CLOCK": "1"},
               extra=["--set", "admins=root", "--set", "risk_frequency_max=0"]).start()
    yield s
    stop_clean(s)


class Device(User):
    """One device of a user: a config directory of its own, logged in through qun
    (run, ok, json and fails come from test_22's User)."""

    def __init__(self, server, tmp_path, name, register_first=False, platform="cli"):
        self.name = name
        self.home = tmp_path / (name + "-" + uuid.uuid4().hex[:6])
        self.home.mkdir()
        self.url = server.url
        if register_first:
            self.ok("register", name, "--password", PASSWORD)
        self.ok("login", name, "--platform", platform, env={"QUN_PASSWORD": PASSWORD})
        me = self.json("whoami")
        self.openid = me["openid"]
        self.api = Client(self.url, (self.home / "cfg" / "qun" / "token").read_text().strip(), self.openid, name)
        self.device_id = (self.home / "cfg" / "qun" / "device_id").read_text().strip()


def digest(params):
    return hashlib.sha256(json.dumps(params, separators=(",", ":"), sort_keys=True).encode()).hexdigest()


def dissolve(client, gid, **proof):
    tok = expect(client.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "delete"}), 200)
    return client.post(f"/v1/groups/{gid}/dissolution",
                       {"messages": "delete", "confirmation_token": tok["confirmation_token"],
                        "typed_name": tok["name"], **proof})


def test_device_key_register_writes_a_private_key_file(srv, tmp_path):
    name = "k" + uuid.uuid4().hex[:8]
    d = Device(srv, tmp_path, name, register_first=True)
    out = d.json("device", "key", "register")
    path = d.home / "cfg" / "qun" / "device_key"
    assert out["key_file"] == str(path) and out["device_id"] == d.device_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = json.loads(path.read_text())
    assert key["device_id"] == d.device_id and key["public_key"] == out["public_key"]
    # The file's secret key signs for the registered public key.
    sk = base64.b64decode(key["secret_key"])
    assert len(sk) == 64 and sk[32:] == base64.b64decode(out["public_key"])
    devs = expect(d.api.get("/v1/me/devices"), 200)["items"]
    assert [x["has_key"] for x in devs if x["device_id"] == d.device_id] == [True]
    # Running it again reuses the file: the same key registers again.
    again = d.json("device", "key", "register")
    assert again["public_key"] == out["public_key"]
    # A key file of another device is refused; usage errors exit 2.
    other = Device(srv, tmp_path, name)
    other.fails("KEY_FILE", "device", "key", "register", "--key", str(path))
    other.fails("USAGE", "device", "key", "frobnicate", exit=2)


@pytest.fixture(scope="module")
def calm():
    """A server whose risk engine has no reason to step in: the platform's method alone."""
    s = Server(env={"QUN_TEST_CLOCK": "1"}).start()
    yield s
    stop_clean(s)


def test_qr_challenge_approved_by_the_other_device_lets_the_dissolution_through(calm, tmp_path):
    name = "q" + uuid.uuid4().hex[:8]
    desk = Device(calm, tmp_path, name, register_first=True, platform="web")  # session A: shows the QR code
    phone = Device(calm, tmp_path, name, platform="ios")                       # session B: the trusted phone
    assert phone.device_id != desk.device_id
    keyfile = str(phone.home / "phone.key")
    phone.ok("device", "key", "register", "--key", keyfile)
    gid = expect(desk.api.post("/v1/groups", {"name": "to go"}), 201)["id"]

    # Without a proof, the web platform's method is asked for: a QR challenge.
    p = expect(dissolve(desk.api, gid), 428, "QR_REQUIRED")
    assert p["risk"]["level"] == "allow"

    ch = expect(desk.api.post("/v1/challenges", {"action": "dissolve", "group": gid,
                                                 "params_digest": digest({"messages": "delete"}), "method": "qr"}), 201)
    uri = f"qun://challenge/{ch['id']}?n={ch['nonce']}"
    # The phone needs the nonce the QR code shows; a wrong one does not verify.
    phone.fails("USAGE", "approve", ch["id"], "--key", keyfile, exit=2)
    phone.fails("SIGNATURE_INVALID", "approve", ch["id"], "--nonce", "A" * 43, "--key", keyfile)
    # The desk's own key may not approve its own QR challenge.  Registering it needs the
    # phone's approval first: the account already has a key (the phone's).
    desk_key = str(desk.home / "desk.key")
    r = desk.fails("QR_REQUIRED", "device", "key", "register", "--key", desk_key)
    assert "/app/approve?c=" in r.stdout and "--challenge" in r.stdout
    r = desk.fails("QR_REQUIRED", "--json", "device", "key", "register", "--key", desk_key)
    vouch = json.loads(r.stdout)
    # The URI is the console's approval page (the challenge's approve_url).
    assert f"/app/approve?c={vouch['challenge_id']}&n=" in vouch["uri"]
    assert vouch["uri"].startswith(("http://", "https://"))
    desk.fails("CHALLENGE_NOT_APPROVED", "device", "key", "register", "--key", desk_key,
               "--challenge", vouch["challenge_id"])
    phone.ok("approve", vouch["uri"], "--key", keyfile)
    desk.ok("device", "key", "register", "--key", desk_key, "--challenge", vouch["challenge_id"])
    desk.fails("QR_SAME_DEVICE", "approve", uri, "--key", desk_key)
    assert expect(desk.api.get(f"/v1/challenges/{ch['id']}"), 200)["state"] == "pending"

    r = phone.ok("approve", uri, "--key", keyfile)
    assert f"approved {ch['id']}" in r.stdout
    assert "dissolve" in r.stderr and gid in r.stderr  # it showed what it approves
    st = expect(desk.api.get(f"/v1/challenges/{ch['id']}"), 200)
    assert st["state"] == "approved" and st["approved_by"] == phone.device_id
    phone.fails("CHALLENGE_ALREADY_APPROVED", "approve", uri, "--key", keyfile)

    st = expect(dissolve(desk.api, gid, challenge_id=ch["id"]), 202)
    assert st["state"] == "pending" and st["risk"]["level"] == "allow"
    assert expect(desk.api.get(f"/v1/challenges/{ch['id']}"), 200)["state"] == "used"
    # Spent: the same approved challenge does not confirm a second request.
    expect(desk.api.delete(f"/v1/groups/{gid}/dissolution"), 200)
    expect(dissolve(desk.api, gid, challenge_id=ch["id"]), 409, "CHALLENGE_USED")


def test_risk_explain_lists_each_reason(srv, tmp_path):
    name = "r" + uuid.uuid4().hex[:8]
    desk = Device(srv, tmp_path, name, register_first=True)
    gid = expect(desk.api.post("/v1/groups", {"name": "to go"}), 201)["id"]
    # Without a step-up, the risk engine (frequency threshold 0 here) asks for one.
    p = expect(dissolve(desk.api, gid), 428, "VERIFICATION_REQUIRED")
    assert p["risk"]["level"] == "verify"
    st = expect(dissolve_with_totp(srv, desk.api, gid), 202)
    assert st["state"] == "pending" and st["risk"]["level"] == "verify"

    # risk explain by group and by evaluation id: level, score and each reason.
    out = desk.ok("risk", "explain", gid).stdout
    assert f"risk {st['risk']['id']}: level verify, score {st['risk']['score']}" in out
    assert "frequency" in out and "verify" in out
    j = desk.json("risk", "explain", st["risk"]["id"])
    assert j["level"] == "verify" and j["reasons"][0]["rule"] == "frequency" and j["reasons"][0]["detail"]
    desk.fails("RISK_NOT_FOUND", "risk", "explain", "r_doesnotexist")
    desk.fails("USAGE", "risk", "explain", "x_what", exit=2)


def test_totp_enroll_shows_the_uri_and_qr_and_confirms_with_a_code(srv, tmp_path):
    d = Device(srv, tmp_path, "t" + uuid.uuid4().hex[:8], register_first=True)
    # Begin at the start of a time step, so the code typed stays current.
    expect(requests.post(srv.url + "/v1/test/clock", json={"advance": 30 - server_now(srv.url) % 30}), 200)
    e = {k: v for k, v in os.environ.items() if not k.startswith("QUN_")}
    e.update(HOME=str(d.home), XDG_CONFIG_HOME=str(d.home / "cfg"), QUN_URL=d.url)
    p = subprocess.Popen([QUN, "totp", "enroll"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=e)
    lines = []
    while True:
        line = p.stdout.readline()
        assert line, "qun totp enroll ended before printing the otpauth URI"
        lines.append(line)
        if line.startswith("otpauth://"):
            break
    uri = line.strip()
    assert uri.startswith(f"otpauth://totp/qun:{d.name}?secret=")
    secret = uri.split("secret=")[1].split("&")[0]
    assert sum("\u2588" in l or "\u2580" in l or "\u2584" in l for l in lines) >= 10  # the QR as UTF-8 blocks
    out, err = p.communicate(totp(secret, server_now(srv.url)) + "\n", timeout=60)
    assert p.returncode == 0, err
    assert "TOTP is active" in out
    assert "AddressSanitizer" not in err and "runtime error" not in err
    expect(d.api.post("/v1/me/totp"), 409, "TOTP_ALREADY_ACTIVE")

    # With --code and a wrong code the confirmation fails; at end of input it waits.
    d2 = Device(srv, tmp_path, "t" + uuid.uuid4().hex[:8], register_first=True)
    d2.fails("TOTP_INVALID", "totp", "enroll", "--code", "12")
    r = d2.ok("totp", "enroll", input="")
    assert "qun totp confirm" in r.stderr
    secret = r.stdout.split("secret=")[1].split("&")[0]
    assert "TOTP is active" in d2.ok("totp", "confirm", totp(secret, server_now(srv.url))).stdout


@pytest.fixture(scope="module")
def root(srv, tmp_path_factory):
    """The server admin's CLI device."""
    expect(requests.post(srv.url + "/v1/users", json={"username": "root", "password": PASSWORD}, timeout=30), 201)
    return Device(srv, tmp_path_factory.mktemp("root"), "root")


def test_review_queue_lists_reasons_and_needs_a_reason_to_reject(srv, tmp_path, root):
    # Six accounts sharing one device id are linked; the 5th and 6th dissolution within
    # the hour go to manual review.
    shared = "shared-" + uuid.uuid4().hex[:6]
    owners = [register(srv.url, device=shared) for _ in range(6)]
    gids = [expect(o.post("/v1/groups", {"name": f"g{i}"}), 201)["id"] for i, o in enumerate(owners)]
    states = [expect(dissolve_with_totp(srv, o, g), 202) for o, g in zip(owners, gids)]
    assert [s["state"] for s in states] == ["pending"] * 4 + ["review"] * 2
    assert states[4]["risk"]["level"] == "review"

    queue = root.json("review", "list")["items"]
    mine = {q["group"]: q for q in queue if q["group"] in gids}
    assert set(mine) == set(gids[4:]), queue
    assert mine[gids[4]]["risk"]["level"] == "review"
    assert "linked" in [r["rule"] for r in mine[gids[4]]["risk"]["reasons"]]
    text = root.ok("review", "list").stdout
    assert mine[gids[4]]["id"] in text and "linked" in text and "level review" in text

    # The owner reads the same reasons.
    owner4 = owners[4]
    j = json.loads(subprocess.run([QUN, "--json", "risk", "explain", gids[4]], capture_output=True, text=True,
                                  env=dict({k: v for k, v in os.environ.items() if not k.startswith("QUN_")},
                                           QUN_URL=srv.url, QUN_TOKEN=owner4.token, HOME=str(tmp_path)),
                                  check=True).stdout)
    assert j["level"] == "review" and j["id"] == mine[gids[4]]["risk"]["id"]

    root.fails("USAGE", "review", "reject", mine[gids[4]]["id"], exit=2)
    r = root.ok("review", "reject", mine[gids[4]]["id"], "--reason", "looks like a takeover")
    assert "rejected" in r.stdout
    assert expect(owner4.get(f"/v1/groups/{gids[4]}"), 200)["state"] == "active"
    root.ok("review", "approve", mine[gids[5]]["id"], "--reason", "checked with the owner")
    assert expect(owners[5].get(f"/v1/groups/{gids[5]}"), 200)["state"] == "pending"
    left = [q for q in root.json("review", "list")["items"] if q["group"] in gids]
    assert left == []
    # Non-admins see an empty queue.
    assert "no dissolution is waiting" in Device(srv, tmp_path, owners[0].username).ok("review", "list").stdout


def test_locks_list_and_clear_for_admins(srv, tmp_path, root):
    victim = register(srv.url)
    for i in range(10):  # the default lockout_account_max
        r = requests.post(srv.url + "/v1/sessions", json={"username": victim.username, "password": f"guess {i}",
                                                          "device_id": "d", "platform": "cli"}, timeout=30)
    expect(r, 429, "LOCKED_OUT")
    locks = [l for l in root.json("locks", "list")["items"] if l["subject"] == victim.username]
    assert len(locks) == 1 and locks[0]["state"] == "active" and locks[0]["failures"] == 10
    text = root.ok("locks", "list").stdout
    assert locks[0]["id"] in text and victim.username in text and "account" in text
    Device(srv, tmp_path, "x" + uuid.uuid4().hex[:8], register_first=True).fails("FORBIDDEN_ADMIN", "locks", "list")
    assert "cleared" in root.ok("locks", "clear", locks[0]["id"]).stdout
    expect(requests.post(srv.url + "/v1/sessions", json={"username": victim.username, "password": "correct horse",
                                                         "device_id": "d", "platform": "cli"}, timeout=30), 201)
    assert [l for l in root.json("locks", "list")["items"] if l["subject"] == victim.username] == []
    every = [l for l in root.json("locks", "list", "--all")["items"] if l["subject"] == victim.username]
    assert [l["state"] for l in every] == ["cleared"] and every[0]["cleared_by"] == root.openid
    root.fails("LOCK_NOT_FOUND", "locks", "clear", "l_nosuchlock")
    root.fails("USAGE", "locks", exit=2)


def dissolve_with_totp(srv, owner, gid):
    """A dissolution of owner's group past the frequency step-up: enrol TOTP once and
    present a fresh code."""
    if not getattr(owner, "totp_secret", None):
        owner.totp_secret = expect(owner.post("/v1/me/totp"), 201)["secret"]
        expect(owner.post("/v1/me/totp/confirm", {"code": totp(owner.totp_secret, server_now(srv.url))}), 200)
        expect(requests.post(srv.url + "/v1/test/clock", json={"advance": 30}), 200)
    return dissolve(owner, gid, totp_code=totp(owner.totp_secret, server_now(srv.url)))
