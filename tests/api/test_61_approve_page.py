# SPDX-License-Identifier: MIT
"""The phone approval page's server side (docs/verification.md, "The approval page"):
every challenge answer carries `approve_url`, the console's /app/approve page on the
configured origin (with the nonce only where the nonce is shown: the creating answer
and the QR code); the page reads what it approves (the group's name, the asking
device's platform, the impact counts); the outcome reaches the waiting session as a
`challenge.approved` or `challenge.declined` event; a declined challenge can never be
approved or used; a passkey on the asking phone itself stands in for the web's `qr`
(no second device needed), an Ed25519 key does not; and removing a passkey needs the
password again."""
import uuid

import requests

from conftest import expect, make_group, register
from test_14_events import Stream
from test_15_verify import PASSWORD, login
from test_18_platform import dissolve, state
from test_60_passkeys import ORIGIN, approve, challenge, enroll, webauthn_challenge


def clock(url, seconds):
    expect(requests.post(url + "/v1/test/clock", json={"advance": seconds}, timeout=10), 200)


def phone_and_desk(url):
    """A user with a passkey on the phone (ios) and an established web desktop."""
    name = "a" + uuid.uuid4().hex[:10]
    phone = register(url, name=name, password=PASSWORD, platform="ios", device=f"{name}-phone")
    desk = login(url, name, f"{name}-desk", "web")
    auth, _ = enroll(phone)
    clock(url, 7 * 86400 + 1)  # the desktop is no longer a new device
    return phone, desk, auth


def test_the_approve_url_opens_the_page_that_shows_what_is_approved(url):
    phone, desk, auth = phone_and_desk(url)
    gid = make_group(desk, name="Class 3B parents")
    expect(desk.post(f"/v1/groups/{gid}/messages", {"text": "hello"}), 201)
    qr = challenge(desk, gid, "qr")
    assert qr["approve_url"] == f"{ORIGIN}/app/approve?c={qr['id']}&n={qr['nonce']}"
    # The page the URL opens is the console itself.
    page = requests.get(url + f"/app/approve?c={qr['id']}&n={qr['nonce']}", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<script type="module" src="/app/js/main.js">' in page.text
    # What the phone reads: no nonce, but the group by name, the asking device, counts.
    seen = expect(phone.get(f"/v1/challenges/{qr['id']}"), 200)
    assert seen["approve_url"] == f"{ORIGIN}/app/approve?c={qr['id']}" and "nonce" not in seen
    assert seen["state"] == "pending" and seen["action"] == "dissolve" and seen["method"] == "qr"
    assert seen["group_name"] == "Class 3B parents" and seen["member_count"] == 1
    assert seen["requested_by"] == {"device_id": desk.username + "-desk", "platform": "web", "current": False}
    assert seen["impact"]["members"] == 1 and seen["impact"]["messages"] == 1
    assert seen["approved_with"] is None and seen["declined_at"] is None
    # The phone's passkey is its device's key in the device list too.
    devices = {d["device_id"]: d for d in expect(desk.get("/v1/me/devices"), 200)["items"]}
    assert devices[desk.username + "-phone"]["has_key"] and not devices[desk.username + "-desk"]["has_key"]
    # Another user's challenge stays unknown; a group the asker is not in stays an id.
    stranger = register(url)
    expect(stranger.get(f"/v1/challenges/{qr['id']}"), 404, "CHALLENGE_NOT_FOUND")
    other_gid = make_group(stranger)
    odd = expect(desk.post("/v1/challenges", {"action": "dissolve", "group": other_gid, "method": "qr"}), 201)
    assert "group_name" not in expect(phone.get(f"/v1/challenges/{odd['id']}"), 200)

    # The desktop waits on its event stream; the phone approves with its passkey.
    s = Stream(desk)
    try:
        expect(approve(phone, qr, auth.assertion(webauthn_challenge(phone, qr))), 200)
        ev = s.wait("challenge.approved", id=qr["id"])
        assert ev["data"]["state"] == "approved" and ev["data"]["approved_with"] == "passkey"
        assert ev["data"]["group"] == gid and ev["data"]["action"] == "dissolve"
    finally:
        s.close()
    expect(desk.get(f"/v1/challenges/{qr['id']}/qr.svg"), 409, "CHALLENGE_ALREADY_APPROVED")
    expect(phone.post(f"/v1/challenges/{qr['id']}/decline", {}), 409, "CHALLENGE_ALREADY_APPROVED")
    expect(dissolve(desk, gid, challenge_id=qr["id"]), 202)
    assert state(desk, gid) == "pending"


def test_a_declined_challenge_is_never_approved_or_used(url):
    phone, desk, auth = phone_and_desk(url)
    gid = make_group(desk)
    qr = challenge(desk, gid, "qr")
    wc = webauthn_challenge(phone, qr)
    s = Stream(desk)
    try:
        d = expect(phone.post(f"/v1/challenges/{qr['id']}/decline", {}), 200)
        assert d["state"] == "declined" and d["declined_at"]
        ev = s.wait("challenge.declined", id=qr["id"])
        assert ev["data"]["state"] == "declined"
    finally:
        s.close()
    expect(phone.post(f"/v1/challenges/{qr['id']}/decline", {}), 409, "CHALLENGE_DECLINED")
    expect(approve(phone, qr, auth.assertion(wc)), 409, "CHALLENGE_DECLINED")
    expect(phone.post(f"/v1/challenges/{qr['id']}/passkey/options", {}), 409, "CHALLENGE_DECLINED")
    expect(desk.get(f"/v1/challenges/{qr['id']}/qr.png"), 409, "CHALLENGE_DECLINED")
    expect(dissolve(desk, gid, challenge_id=qr["id"]), 409, "CHALLENGE_DECLINED")
    assert expect(desk.get(f"/v1/challenges/{qr['id']}"), 200)["state"] == "declined"
    assert state(desk, gid) == "active"
    # Bad input: a body with members, another user's challenge, an unknown one.
    qr2 = challenge(desk, gid, "qr")
    expect(phone.post(f"/v1/challenges/{qr2['id']}/decline", {"why": 1}), 422, "FIELD_UNKNOWN")
    expect(register(url).post(f"/v1/challenges/{qr2['id']}/decline", {}), 404, "CHALLENGE_NOT_FOUND")
    expect(phone.post("/v1/challenges/c_nope/decline", {}), 404, "CHALLENGE_NOT_FOUND")
    clock(url, 121)
    expect(phone.post(f"/v1/challenges/{qr2['id']}/decline", {}), 410, "CHALLENGE_EXPIRED")


def test_a_phone_with_no_second_device_approves_on_itself_with_its_passkey(url):
    name = "s" + uuid.uuid4().hex[:10]
    phone = register(url, name=name, password=PASSWORD, platform="web", device=f"{name}-phone")
    gid = make_group(phone)
    # No key anywhere: the web's QR cannot be approved by anything.
    expect(dissolve(phone, gid), 428, "QR_REQUIRED")
    expect(phone.post("/v1/challenges", {"action": "dissolve", "group": gid, "method": "qr"}), 403,
           "DEVICE_NOT_TRUSTED")
    auth, _ = enroll(phone)
    own = challenge(phone, gid, "device_key")
    expect(approve(phone, own, auth.assertion(webauthn_challenge(phone, own))), 200)
    assert expect(phone.get(f"/v1/challenges/{own['id']}"), 200)["approved_with"] == "passkey"
    st = expect(dissolve(phone, gid, challenge_id=own["id"]), 202)
    assert st["state"] == "pending"


def test_removing_a_passkey_needs_the_password_again(url):
    c = register(url, name="p" + uuid.uuid4().hex[:10], password=PASSWORD, platform="web")
    _, body = enroll(c)
    path = f"/v1/me/passkeys/{body['id']}"
    p = expect(c.delete(path), 428, "STEP_UP_REQUIRED")
    assert [r["method"] for r in p["requirements"]] == ["password"] and p.get("field") == "password"
    expect(c.req("DELETE", path, {"password": "wrong horse"}), 401, "BAD_CREDENTIALS")
    expect(c.req("DELETE", path, {"password": 5}), 422, "FIELD_INVALID")
    expect(c.req("DELETE", path, raw="{"), 400, "BAD_JSON")
    assert len(expect(c.get("/v1/me/passkeys"), 200)["items"]) == 1
    expect(c.req("DELETE", path, {"password": PASSWORD}), 200)
    assert expect(c.get("/v1/me/passkeys"), 200)["items"] == []
