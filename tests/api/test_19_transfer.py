# SPDX-License-Identifier: MIT
"""Ownership transfer safety with the default policy (policies/verification.json), on a
server whose clock the tests move: a transfer from a session younger than 24 h or within
24 h of a password change is refused; at most 3 transfers per group in 90 days and 5 per
new owner in a day (checked at the proposal and again at the acceptance); the new owner
must accept; and the proposal asks for the verification of the session's platform."""
import json

import pytest
import requests

from conftest import Client, Server, age_sessions, expect, make_group, register, stop_clean, transfer
from test_15_verify import PASSWORD, approve, login
from test_18_platform import challenge, digest, two_devices

DAY = 86400


@pytest.fixture(scope="module")
def srv():
    s = Server(env={"QUN_TEST_CLOCK": "1"}).start()
    yield s
    stop_clean(s)


def now(url):
    return expect(requests.post(url + "/v1/test/clock", json={"advance": 0}, timeout=10), 200)["now"]


def offer(owner, gid, to, **proof):
    return owner.post(f"/v1/groups/{gid}/transfer", {"to": to.openid, **proof})


def tpreview(owner, gid, to):
    return owner.post(f"/v1/groups/{gid}/transfer/preview", {"to": to.openid})


def history(c, gid):
    return [(h["event"], json.loads(h["entry"])) for h in expect(c.get(f"/v1/groups/{gid}/history"), 200)["items"]]


def test_a_fresh_session_may_not_transfer(srv):
    owner, heir = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[heir])
    t0 = now(srv.url)
    p = expect(offer(owner, gid, heir), 403, "SESSION_TOO_NEW")
    assert p["min_session_age_seconds"] == DAY and t0 < p["retry_at"] <= t0 + DAY
    expect(tpreview(owner, gid, heir), 403, "SESSION_TOO_NEW")
    age_sessions(srv.url, DAY - 120)
    expect(offer(owner, gid, heir), 403, "SESSION_TOO_NEW")
    age_sessions(srv.url, 121)
    # Old enough: now the platform's verification is what is missing (cli: token + name).
    expect(offer(owner, gid, heir), 428, "CONFIRMATION_REQUIRED")
    # A new login is a new session: younger than 24 h again.
    again = login(srv.url, owner.username, "dev-other", "cli")
    expect(offer(again, gid, heir), 403, "SESSION_TOO_NEW")


def test_cli_transfer_needs_the_token_and_the_name_and_the_heir_accepts(srv):
    owner, heir, other = register(srv.url), register(srv.url), register(srv.url)
    gid = make_group(owner, name="Attic", members=[heir, other])
    age_sessions(srv.url)
    pv = expect(tpreview(owner, gid, heir), 200)
    assert pv["name"] == "Attic" and pv["params"] == {"to": heir.openid}
    assert pv["params_digest"] == digest({"to": heir.openid})
    assert [r["method"] for r in pv["requirements"]] == ["confirm", "typed_name"]
    tok = pv["confirmation_token"]
    expect(offer(owner, gid, heir, typed_name="Attic"), 428, "CONFIRMATION_REQUIRED")
    expect(offer(owner, gid, heir, confirmation_token=tok), 428, "TYPED_NAME_REQUIRED")
    expect(offer(owner, gid, heir, confirmation_token=tok, typed_name="attic"), 422, "TYPED_NAME_MISMATCH")
    # The token is bound to the new owner.
    expect(offer(owner, gid, other, confirmation_token=tok, typed_name="Attic"), 422, "CONFIRMATION_INVALID")
    body = expect(offer(owner, gid, heir, confirmation_token=tok, typed_name="Attic"), 202)
    assert body["state"] == "proposed" and body["verification"] == "confirm+typed_name"
    expect(offer(owner, gid, other, confirmation_token=tok, typed_name="Attic"), 409, "TRANSFER_PENDING")
    # Nothing changes until the heir accepts.
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["owner"] == owner.openid
    expect(other.post(f"/v1/groups/{gid}/transfer/accept"), 404, "TRANSFER_NOT_FOUND")
    assert expect(heir.post(f"/v1/groups/{gid}/transfer/accept"), 200)["owner"] == heir.openid
    events = history(heir, gid)
    proposed = [e for ev, e in events if ev == "transfer.proposed"]
    assert proposed and proposed[0]["verification"] == "confirm+typed_name" and proposed[0]["to"] == heir.openid
    assert [ev for ev, _ in events][-1] == "group.ownership_transferred"
    # A used token does not transfer again.
    expect(offer(heir, gid, owner, confirmation_token=tok, typed_name="Attic"), 422, "CONFIRMATION_INVALID")


def test_declines_are_ledgered(srv):
    owner, heir = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[heir])
    age_sessions(srv.url)
    expect(transfer(owner, gid, heir.openid), 202)
    # The open offer shows on the group to its two people, by name, and to nobody else.
    for c in (owner, heir):
        t = expect(c.get(f"/v1/groups/{gid}"), 200)["transfer"]
        assert (t["from"], t["from_username"], t["to"], t["to_username"]) == (
            owner.openid, owner.username, heir.openid, heir.username)
        assert t["to_display_name"] is None and isinstance(t["created_at"], int)
    bystander = register(srv.url)
    expect(owner.post(f"/v1/groups/{gid}/members", {"openid": bystander.openid}), 201)
    assert "transfer" not in expect(bystander.get(f"/v1/groups/{gid}"), 200)
    assert expect(heir.post(f"/v1/groups/{gid}/transfer/decline"), 200)["state"] == "declined"
    assert "transfer" not in expect(owner.get(f"/v1/groups/{gid}"), 200)
    assert [ev for ev, _ in history(owner, gid)][-2:] == ["transfer.proposed", "transfer.declined"]
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["owner"] == owner.openid


def test_a_password_change_waits_24_hours_and_logs_out_the_other_sessions(srv):
    owner, heir = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[heir])
    elsewhere = login(srv.url, owner.username, "dev-laptop", "cli")
    age_sessions(srv.url)
    path = "/v1/me/password"
    expect(owner.post(path, {"old_password": "wrong one", "new_password": "battery staple"}), 401, "BAD_CREDENTIALS")
    expect(owner.post(path, {"old_password": PASSWORD, "new_password": PASSWORD}), 422, "FIELD_INVALID")
    expect(owner.post(path, {"old_password": PASSWORD, "new_password": "short"}), 422, "FIELD_INVALID")
    expect(Client(srv.url).post(path, {"old_password": PASSWORD, "new_password": "battery staple"}), 401,
           "UNAUTHENTICATED")
    before = now(srv.url)  # the server's clock may pass a second during the change
    out = expect(owner.post(path, {"old_password": PASSWORD, "new_password": "battery staple"}), 200)
    assert out["sessions_revoked"] == 1 and before <= out["password_changed_at"] <= now(srv.url)
    expect(elsewhere.get("/v1/me"), 401, "TOKEN_INVALID")
    expect(owner.get("/v1/me"), 200)
    expect(requests.post(srv.url + "/v1/sessions", json={"username": owner.username, "password": PASSWORD,
                                                         "device_id": "d", "platform": "cli"}), 401, "BAD_CREDENTIALS")
    # The session is old, the password is not.
    p = expect(transfer(owner, gid, heir.openid), 403, "PASSWORD_TOO_RECENT")
    assert p["retry_at"] == out["password_changed_at"] + DAY
    age_sessions(srv.url)
    expect(transfer(owner, gid, heir.openid), 202)


def test_at_most_three_transfers_per_group_in_90_days(srv):
    a, b = register(srv.url), register(srv.url)
    gid = make_group(a, members=[b])
    age_sessions(srv.url)
    for giver, taker in [(a, b), (b, a), (a, b)]:
        expect(transfer(giver, gid, taker.openid), 202)
        expect(taker.post(f"/v1/groups/{gid}/transfer/accept"), 200)
    p = expect(transfer(b, gid, a.openid), 429, "TRANSFER_LIMIT_GROUP")
    assert p["limit"] == 3 and p["window_seconds"] == 90 * DAY
    # Ninety days later the oldest transfer has left the window (sessions last 30 days:
    # log in again, and wait the 24 h a new session needs).
    age_sessions(srv.url, p["retry_at"] - now(srv.url) + 1)
    b = login(srv.url, b.username, "dev-b2", "cli")
    age_sessions(srv.url)
    expect(transfer(b, gid, a.openid), 202)


def test_at_most_five_groups_per_new_owner_in_a_day(srv):
    owners = [register(srv.url) for _ in range(2)]
    heir = register(srv.url)
    gids = [make_group(owners[i % 2], members=[heir]) for i in range(7)]
    age_sessions(srv.url)
    # Six proposals while nothing is accepted yet: all fine.
    for i, g in enumerate(gids[:6]):
        expect(transfer(owners[i % 2], g, heir.openid), 202)
    for g in gids[:5]:
        expect(heir.post(f"/v1/groups/{g}/transfer/accept"), 200)
    # The sixth acceptance and a seventh proposal exceed the cap; the sixth stays pending.
    expect(heir.post(f"/v1/groups/{gids[5]}/transfer/accept"), 429, "TRANSFER_LIMIT_OWNER")
    p = expect(transfer(owners[0], gids[6], heir.openid), 429, "TRANSFER_LIMIT_OWNER")
    assert p["limit"] == 5 and p["window_seconds"] == DAY
    assert expect(heir.get(f"/v1/groups/{gids[5]}"), 200)["owner"] == owners[1].openid
    age_sessions(srv.url, p["retry_at"] - now(srv.url) + 1)
    assert expect(heir.post(f"/v1/groups/{gids[5]}/transfer/accept"), 200)["owner"] == heir.openid


def test_ios_and_web_transfers_use_their_challenges(srv):
    phone, desk = two_devices(srv.url, "ios", "web")
    heir = register(srv.url)
    g1, g2 = make_group(phone.c, members=[heir]), make_group(desk.c, members=[heir])
    age_sessions(srv.url)
    params = {"to": heir.openid}
    # ios: the phone signs a device_key challenge bound to action transfer and {"to"}.
    expect(offer(phone.c, g1, heir), 428, "DEVICE_KEY_REQUIRED")
    wrong = challenge(phone, g1, "device_key", params=params, action="dissolve")
    expect(approve(phone, wrong), 200)
    expect(offer(phone.c, g1, heir, challenge_id=wrong["id"]), 422, "CHALLENGE_MISMATCH")
    ch = challenge(phone, g1, "device_key", params=params, action="transfer")
    expect(approve(phone, ch), 200)
    assert expect(offer(phone.c, g1, heir, challenge_id=ch["id"]), 202)["verification"] == "device_key"
    # web: the desktop's qr challenge, approved by the phone.
    expect(offer(desk.c, g2, heir), 428, "QR_REQUIRED")
    ch = challenge(desk, g2, "qr", params=params, action="transfer")
    expect(approve(phone, ch), 200)
    assert expect(offer(desk.c, g2, heir, challenge_id=ch["id"]), 202)["verification"] == "qr"
    for g in (g1, g2):
        expect(heir.post(f"/v1/groups/{g}/transfer/accept"), 200)
