# SPDX-License-Identifier: MIT
"""Brute-force protection: a bounded run of wrong logins, step-ups and challenge
signatures against a real qund on loopback.  Failures are counted per account and per
network (/24); reaching a threshold locks that account or network (429 LOCKED_OUT with
Retry-After) until the lock expires on the test clock or an admin clears it.  During a
lock the right password fails too.  Other accounts and networks are unaffected.

Clients pick their network by binding the source address: Linux routes all of
127.0.0.0/8 to the loopback interface, so 127.0.0.1 and 127.0.1.1 are two /24s."""
import base64
import uuid

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conftest import Client, Server, expect, stop_clean

PW = "correct horse"
ACCOUNT_MAX, NETWORK_MAX, DURATION = 5, 60, 300
NET_A, NET_B, NET_C = "127.0.0.1", "127.0.1.1", "127.0.2.1"


class SourceAdapter(requests.adapters.HTTPAdapter):
    """Connections from a chosen local address."""

    def __init__(self, ip):
        self.ip = ip
        super().__init__()

    def init_poolmanager(self, *a, **kw):
        kw["source_address"] = (self.ip, 0)
        return super().init_poolmanager(*a, **kw)


def session_from(ip):
    s = requests.Session()
    s.mount("http://", SourceAdapter(ip))
    return s


@pytest.fixture(scope="module")
def srv():
    s = Server(env={"QUN_TEST_CLOCK": "1"},
               extra=["--set", "admins=root", "--set", f"lockout_account_max={ACCOUNT_MAX}",
                      "--set", f"lockout_network_max={NETWORK_MAX}", "--set", "lockout_window=600",
                      "--set", f"lockout_duration={DURATION}"]).start()
    yield s
    stop_clean(s)


class Net:
    """Requests from one source address; counts the failures it caused."""

    def __init__(self, url, ip):
        self.url, self.ip, self.s, self.failures = url, ip, session_from(ip), 0

    # The device secret each user's device "d-<name>" was given: one laptop that moves
    # between networks, and logs in as the same device from each.
    secrets = {}

    def login(self, name, password):
        body = {"username": name, "password": password, "device_id": "d-" + name, "platform": "cli"}
        if name in Net.secrets:
            body["device_secret"] = Net.secrets[name]
        r = self.s.post(self.url + "/v1/sessions", json=body, timeout=30)
        if r.status_code == 401:
            self.failures += 1
        if r.status_code == 201 and "device_secret" in r.json():
            Net.secrets[name] = r.json()["device_secret"]
        return r

    def client(self, name):
        body = expect(self.login(name, PW), 201)
        c = Client(self.url, body["token"], body["openid"], name)
        c.s = self.s
        return c

    def user(self):
        name = "u" + uuid.uuid4().hex[:10]
        expect(self.s.post(self.url + "/v1/users", json={"username": name, "password": PW}, timeout=30), 201)
        return name


@pytest.fixture(scope="module")
def root(srv):
    """The server admin, logged in from a network of its own."""
    expect(requests.post(srv.url + "/v1/users", json={"username": "root", "password": PW}, timeout=30), 201)
    return Net(srv.url, NET_C).client("root")


def locked(r, scope):
    p = expect(r, 429, "LOCKED_OUT")
    assert p["scope"] == scope, p
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= DURATION and p["retry_after"] == retry, (r.headers, p)
    return p


def advance(srv, seconds):
    expect(requests.post(srv.url + "/v1/test/clock", json={"advance": seconds}, timeout=10), 200)


def test_brute_force_locks_accounts_and_networks_until_expiry(srv, root):
    a, b = Net(srv.url, NET_A), Net(srv.url, NET_B)
    victim, bystander = a.user(), a.user()

    # Step 1: guessing one account's password: the fifth failure engages the lock.
    for i in range(ACCOUNT_MAX - 1):
        expect(a.login(victim, f"guess {i}"), 401, "BAD_CREDENTIALS")
    first = locked(a.login(victim, "guess last"), "account")
    # No oracle: while locked, the right password gets the same answer as a wrong one,
    # from any network.
    right = locked(a.login(victim, PW), "account")
    wrong = locked(a.login(victim, "another guess"), "account")
    assert {k: right[k] for k in ("code", "status", "scope")} == {k: wrong[k] for k in ("code", "status", "scope")}
    locked(b.login(victim, PW), "account")
    assert right["locked_until"] == first["locked_until"]
    # Another account on the same network is unaffected.
    a.client(bystander)

    # Step 2: spraying unknown usernames from one network locks the network: exactly at
    # the NETWORK_MAX-th failure counted from it.
    assert a.failures == ACCOUNT_MAX - 1  # 401s; the attempt that locked counted too
    counted, attempts = ACCOUNT_MAX, 0
    while counted < NETWORK_MAX - 1:
        expect(a.login("nobody" + uuid.uuid4().hex[:8], "spray"), 401, "BAD_CREDENTIALS")
        counted += 1
        attempts += 1
        assert attempts < 200
    net_lock = locked(a.login("nobody-last", "spray"), "network")
    # Now every login from that network fails, right password or not; other networks work.
    locked(a.login(bystander, PW), "network")
    b.client(bystander)
    locked(b.login(victim, PW), "account")  # the account lock holds from every network

    # Step 3: admins see both locks; others may not look.
    expect(Net(srv.url, NET_C).client(bystander).get("/v1/admin/locks"), 403, "FORBIDDEN_ADMIN")
    mine = (victim, "127.0.0.0/24")  # the other tests lock other subjects
    locks = [l for l in expect(root.get("/v1/admin/locks"), 200)["items"] if l["subject"] in mine]
    by_scope = {l["scope"]: l for l in locks}
    assert set(by_scope) == {"account", "network"}, locks
    assert by_scope["account"]["subject"] == victim and by_scope["account"]["state"] == "active"
    assert by_scope["account"]["failures"] == ACCOUNT_MAX and by_scope["account"]["kind"] == "login"
    assert by_scope["network"]["subject"] == "127.0.0.0/24"
    assert by_scope["network"]["locked_until"] == net_lock["locked_until"]

    # Step 4: the lock expires on the (test) clock; counting starts afresh.
    advance(srv, DURATION + 1)
    a.client(bystander)
    a.client(victim)
    assert [l for l in expect(root.get("/v1/admin/locks"), 200)["items"] if l["subject"] in mine] == []
    every = [l for l in expect(root.get("/v1/admin/locks?state=all"), 200)["items"] if l["subject"] in mine]
    assert sorted(l["state"] for l in every) == ["expired", "expired"]
    expect(a.login(victim, "one more guess"), 401, "BAD_CREDENTIALS")


def test_admin_clears_a_lock_and_the_clearing_is_ledgered(srv, root):
    c = Net(srv.url, "127.0.3.1")
    name = c.user()
    for i in range(ACCOUNT_MAX - 1):
        expect(c.login(name, f"guess {i}"), 401, "BAD_CREDENTIALS")
    locked(c.login(name, "guess"), "account")
    lock = next(l for l in expect(root.get("/v1/admin/locks"), 200)["items"] if l["subject"] == name)
    expect(Net(srv.url, NET_C).client(Net(srv.url, NET_C).user()).delete(f"/v1/admin/locks/{lock['id']}"), 403,
           "FORBIDDEN_ADMIN")
    expect(root.delete("/v1/admin/locks/l_nosuchlock"), 404, "LOCK_NOT_FOUND")
    cleared = expect(root.delete(f"/v1/admin/locks/{lock['id']}"), 200)
    assert cleared["state"] == "cleared" and cleared["cleared_by"] == root.openid
    c.client(name)  # the right password works again at once
    entries = expect(root.get("/v1/ledger/entries?start=0"), 200)
    items = entries.get("items", entries.get("entries", []))
    hit = [e for e in items if "lockout.cleared" in str(e)]
    assert hit and lock["id"] in str(hit[-1]) and name not in str(hit[-1]), hit


def test_failed_step_ups_and_signatures_lock_the_account(srv, root):
    n = Net(srv.url, "127.0.4.1")
    # Wrong step-up passwords (restore asks for the password before anything else).
    name = n.user()
    u = n.client(name)
    g = expect(u.post("/v1/groups", {"name": "team"}), 201)["id"]
    for i in range(ACCOUNT_MAX - 1):
        expect(u.post(f"/v1/groups/{g}/restore", {"password": f"guess {i}"}), 401, "BAD_CREDENTIALS")
    locked(u.post(f"/v1/groups/{g}/restore", {"password": "guess"}), "account")
    p = locked(u.post(f"/v1/groups/{g}/restore", {"password": PW}), "account")
    assert p["code"] == "LOCKED_OUT"
    # A request without a secret is not a guess: it is not refused.
    expect(u.get("/v1/me"), 200)

    # Wrong TOTP codes.
    t = n.client(n.user())
    expect(t.post("/v1/me/totp"), 201)
    for i in range(ACCOUNT_MAX - 1):  # codes too short to ever be right
        expect(t.post("/v1/me/totp/confirm", {"code": "1" * (i + 1)}), 422, "TOTP_INVALID")
    locked(t.post("/v1/me/totp/confirm", {"code": "99"}), "account")

    # Wrong challenge signatures from the user's other device.
    name = n.user()
    desk = n.client(name)
    body = expect(n.s.post(srv.url + "/v1/sessions", json={"username": name, "password": PW,
                                                          "device_id": "phone-" + name, "platform": "ios"},
                           timeout=30), 201)
    phone = Client(srv.url, body["token"], body["openid"], name)
    phone.s = n.s
    key = Ed25519PrivateKey.generate()
    pk = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    expect(phone.post("/v1/me/devices/key", {"public_key": base64.b64encode(pk).decode()}), 201)
    ch = expect(desk.post("/v1/challenges", {"action": "dissolve", "method": "qr"}), 201)
    bad = base64.b64encode(key.sign(b"not the challenge")).decode()
    for _ in range(ACCOUNT_MAX - 1):
        expect(phone.post(f"/v1/challenges/{ch['id']}/approve", {"device_id": "phone-" + name, "signature": bad}),
               403, "SIGNATURE_INVALID")
    locked(phone.post(f"/v1/challenges/{ch['id']}/approve", {"device_id": "phone-" + name, "signature": bad}),
           "account")
    st = expect(desk.get(f"/v1/challenges/{ch['id']}"), 200)
    assert st["state"] == "pending"
    kinds = {l["subject"]: l["kind"] for l in expect(root.get("/v1/admin/locks"), 200)["items"]}
    assert kinds.get(name) == "signature" and kinds.get(t.username) == "totp" and kinds.get(u.username) == "password"


def test_wrong_old_passwords_on_a_password_change_lock_the_account(srv, root):
    n = Net(srv.url, "127.0.5.1")
    u = n.client(n.user())
    for i in range(ACCOUNT_MAX - 1):
        expect(u.post("/v1/me/password", {"old_password": f"guess {i}", "new_password": "a new secret"}), 401,
               "BAD_CREDENTIALS")
    locked(u.post("/v1/me/password", {"old_password": "guess", "new_password": "a new secret"}), "account")
    # The right old password fails too while the lock lasts.
    locked(u.post("/v1/me/password", {"old_password": PW, "new_password": "a new secret"}), "account")
    expect(u.get("/v1/me"), 200)
