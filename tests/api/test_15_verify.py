# SPDX-License-Identifier: MIT
"""Verification methods over HTTP: device keys registered from Python (Ed25519 from
python3-cryptography), device_key and qr challenges approved by signature and consumed
once, refused when signed with a wrong nonce, by another user's device, by the wrong
device, or after expiry (test clock); the QR renders as SVG and PNG; TOTP enrollment
with codes computed here (RFC 6238, hmac) accepted once and refused on replay."""
import base64
import hashlib
import hmac
import struct
import uuid
import zlib

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conftest import Client, expect, make_group, register

PASSWORD = "correct horse"
DIGEST = hashlib.sha256(b'{"messages":"delete"}').hexdigest()


def login(url, name, device, platform):
    body = expect(requests.post(url + "/v1/sessions", json={"username": name, "password": PASSWORD,
                                                            "device_id": device, "platform": platform},
                                timeout=30), 201)
    return Client(url, body["token"], body["openid"], name)


class Device:
    """A device of a user: a session on it and an Ed25519 key registered for it.  The
    account's first key registers as is; a later device's key is vouched for by
    approver, a device of the user that already has one (a qr challenge)."""

    def __init__(self, client, device_id, register_key=True, approver=None):
        self.c, self.device_id = client, device_id
        self.key = Ed25519PrivateKey.generate()
        if register_key:
            body = {"public_key": self.public_key()}
            if approver:
                body["challenge_id"] = vouch(self, approver)["id"]
            body = expect(client.post("/v1/me/devices/key", body), 201)
            assert body["device_id"] == device_id

    def public_key(self):
        return base64.b64encode(self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()

    def sign(self, ch, nonce=None):
        msg = "\n".join(["qun-challenge:v1", ch["id"], nonce or ch["nonce"], ch["action"], ch.get("group") or "",
                         ch.get("params_digest") or ""]).encode()
        return base64.b64encode(self.key.sign(msg)).decode()


def vouch(dev, approver):
    """The approved qr challenge that lets dev register its key: asked without one, the
    server answers 428 QR_REQUIRED naming the action and the key's params_digest."""
    p = expect(dev.c.post("/v1/me/devices/key", {"public_key": dev.public_key()}), 428, "QR_REQUIRED")
    assert p["action"] == "register_device_key" and [r["method"] for r in p["requirements"]] == ["qr"]
    ch = expect(dev.c.post("/v1/challenges", {"method": "qr", "action": p["action"],
                                              "params_digest": p["params_digest"]}), 201)
    expect(approve(approver, ch), 200)
    return ch


def user_with_devices(url, first=("phone", "ios"), second=("desktop", "web")):
    name = "v" + uuid.uuid4().hex[:10]
    c1 = register(url, name=name, password=PASSWORD, platform=first[1], device=f"{name}-{first[0]}")
    c2 = login(url, name, f"{name}-{second[0]}", second[1])
    one = Device(c1, f"{name}-{first[0]}")
    return one, Device(c2, f"{name}-{second[0]}", approver=one)


def approve(dev, ch, device_id=None, sig=None, client=None):
    return (client or dev.c).post(f"/v1/challenges/{ch['id']}/approve",
                                  {"device_id": device_id or dev.device_id, "signature": sig or dev.sign(ch)})


def test_devices_and_keys(url):
    phone, desk = user_with_devices(url)
    items = expect(phone.c.get("/v1/me/devices"), 200)["items"]
    assert {(d["device_id"], d["platform"], d["has_key"]) for d in items} == {
        (phone.device_id, "ios", True), (desk.device_id, "web", True)}
    assert all(isinstance(d["first_seen"], int) for d in items)
    assert [d["current"] for d in items if d["device_id"] == phone.device_id] == [True]
    # The same key again is fine; another key for a device that has one is refused.
    pk = phone.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    expect(phone.c.post("/v1/me/devices/key", {"public_key": base64.b64encode(pk).decode()}), 201)
    other = base64.b64encode(Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    expect(phone.c.post("/v1/me/devices/key", {"public_key": other.decode()}), 409, "DEVICE_KEY_EXISTS")
    expect(phone.c.post("/v1/me/devices/key", {"public_key": "c2hvcnQ="}), 422, "FIELD_INVALID")
    expect(Client(url).get("/v1/me/devices"), 401, "UNAUTHENTICATED")


def test_device_key_challenge_approved_and_consumed_once(url):
    phone, desk = user_with_devices(url)
    g = make_group(phone.c)
    ch = expect(phone.c.post("/v1/challenges", {"action": "dissolve", "group": g, "params_digest": DIGEST,
                                                "method": "device_key"}), 201)
    assert ch["method"] == "device_key" and ch["state"] == "pending" and len(ch["nonce"]) == 43
    assert ch["group"] == g and ch["params_digest"] == DIGEST and ch["expires_at"] - ch["created_at"] == 120
    expect(phone.c.post(f"/v1/challenges/{ch['id']}/consume", {"action": "dissolve", "group": g,
                                                                "params_digest": DIGEST}), 409, "CHALLENGE_NOT_APPROVED")
    # Wrong nonce, wrong device (desktop key for a device_key challenge), another user.
    expect(approve(phone, ch, sig=phone.sign(ch, nonce="A" * 43)), 403, "SIGNATURE_INVALID")
    expect(approve(phone, ch, sig=desk.sign(ch)), 403, "SIGNATURE_INVALID")
    expect(approve(desk, ch), 422, "CHALLENGE_MISMATCH")
    mallory, _ = user_with_devices(url)
    expect(approve(mallory, ch), 404, "CHALLENGE_NOT_FOUND")
    expect(approve(phone, ch, device_id=mallory.device_id, sig=mallory.sign(ch)), 403, "DEVICE_NOT_TRUSTED")
    expect(mallory.c.get(f"/v1/challenges/{ch['id']}"), 404, "CHALLENGE_NOT_FOUND")
    expect(approve(phone, ch, sig="!!"), 422, "FIELD_INVALID")
    assert expect(phone.c.get(f"/v1/challenges/{ch['id']}"), 200)["state"] == "pending"

    ok = expect(approve(phone, ch), 200)
    assert ok["state"] == "approved" and ok["approved_by"] == phone.device_id
    expect(approve(phone, ch), 409, "CHALLENGE_ALREADY_APPROVED")
    st = expect(phone.c.get(f"/v1/challenges/{ch['id']}"), 200)
    assert st["state"] == "approved" and "nonce" not in st

    consume = f"/v1/challenges/{ch['id']}/consume"
    expect(phone.c.post(consume, {"action": "dissolve", "group": g, "params_digest": "0" * 64}), 422, "CHALLENGE_MISMATCH")
    expect(phone.c.post(consume, {"action": "transfer", "group": g, "params_digest": DIGEST}), 422, "CHALLENGE_MISMATCH")
    expect(phone.c.post(consume, {"action": "dissolve", "group": "g_other", "params_digest": DIGEST}), 422,
           "CHALLENGE_MISMATCH")
    expect(desk.c.post(consume, {"action": "dissolve", "group": g, "params_digest": DIGEST}), 422, "CHALLENGE_MISMATCH")
    body = expect(phone.c.post(consume, {"action": "dissolve", "group": g, "params_digest": DIGEST}), 200)
    assert body == {"id": ch["id"], "state": "used", "method": "device_key"}
    expect(phone.c.post(consume, {"action": "dissolve", "group": g, "params_digest": DIGEST}), 409, "CHALLENGE_USED")
    assert expect(phone.c.get(f"/v1/challenges/{ch['id']}"), 200)["state"] == "used"
    expect(approve(phone, ch), 409, "CHALLENGE_USED")


def test_challenge_input(url):
    phone, _ = user_with_devices(url)
    lone = register(url, platform="ios")
    expect(lone.post("/v1/challenges", {"action": "dissolve", "method": "device_key"}), 403, "DEVICE_NOT_TRUSTED")
    expect(phone.c.post("/v1/challenges", {"action": "dissolve", "method": "sms"}), 422, "FIELD_INVALID")
    expect(phone.c.post("/v1/challenges", {"action": "Dissolve!", "method": "qr"}), 422, "FIELD_INVALID")
    expect(phone.c.post("/v1/challenges", {"action": "dissolve", "method": "qr", "params_digest": "xy" * 32}), 422,
           "FIELD_INVALID")
    expect(phone.c.post("/v1/challenges", {"method": "qr"}), 422, "FIELD_MISSING")
    expect(phone.c.post("/v1/challenges", {"action": "dissolve", "method": "qr", "extra": 1}), 422, "FIELD_UNKNOWN")
    expect(phone.c.get("/v1/challenges/c_nope"), 404, "CHALLENGE_NOT_FOUND")


def test_qr_flow_with_two_sessions(url):
    phone, desk = user_with_devices(url)
    ch = expect(desk.c.post("/v1/challenges", {"action": "dissolve", "group": "g_x", "method": "qr"}), 201)
    svg = desk.c.get(f"/v1/challenges/{ch['id']}/qr.svg")
    assert svg.status_code == 200 and svg.headers["Content-Type"] == "image/svg+xml", svg.text[:200]
    assert svg.text.startswith("<?xml") and "<svg xmlns=\"http://www.w3.org/2000/svg\"" in svg.text
    assert "<path" in svg.text and svg.text.rstrip().endswith("</svg>")
    png = desk.c.get(f"/v1/challenges/{ch['id']}/qr.png")
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    check_png(png.content)
    expect(phone.c.get(f"/v1/challenges/{ch['id']}/qr.svg"), 200)  # same account: may render it too
    # The desktop itself cannot approve what it shows.
    expect(approve(desk, ch), 403, "QR_SAME_DEVICE")
    # The phone scans the code (id and nonce) and signs.
    st = expect(approve(phone, ch), 200)
    assert st["state"] == "approved" and st["method"] == "qr"
    assert expect(desk.c.get(f"/v1/challenges/{ch['id']}"), 200)["state"] == "approved"
    expect(desk.c.get(f"/v1/challenges/{ch['id']}/qr.svg"), 409, "CHALLENGE_ALREADY_APPROVED")
    # The phone's session did not ask: it cannot spend the desktop's approval.
    expect(phone.c.post(f"/v1/challenges/{ch['id']}/consume", {"action": "dissolve", "group": "g_x"}), 422,
           "CHALLENGE_MISMATCH")
    body = expect(desk.c.post(f"/v1/challenges/{ch['id']}/consume", {"action": "dissolve", "group": "g_x"}), 200)
    assert body["method"] == "qr"
    expect(desk.c.post(f"/v1/challenges/{ch['id']}/consume", {"action": "dissolve", "group": "g_x"}), 409,
           "CHALLENGE_USED")


def check_png(data):
    """Parse the PNG: signature, chunk CRCs, IHDR, and a zlib stream that inflates to the rows."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, chunks, idat = 8, [], b""
    while at < len(data):
        n, kind = struct.unpack(">I4s", data[at:at + 8])
        payload = data[at + 8:at + 8 + n]
        assert struct.unpack(">I", data[at + 8 + n:at + 12 + n])[0] == zlib.crc32(kind + payload)
        chunks.append(kind)
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", payload[:10])
        if kind == b"IDAT":
            idat += payload
        at += 12 + n
    assert chunks == [b"IHDR", b"IDAT", b"IEND"]
    assert w == h and depth == 1 and color == 0
    raw = zlib.decompress(idat)
    assert len(raw) == h * (1 + (w + 7) // 8)


def test_challenge_expires(own_server):
    url = own_server.url
    phone, desk = user_with_devices(url)
    ch = expect(phone.c.post("/v1/challenges", {"action": "dissolve", "method": "device_key"}), 201)
    ch2 = expect(desk.c.post("/v1/challenges", {"action": "dissolve", "method": "qr"}), 201)
    expect(approve(phone, ch2), 200)
    expect(requests.post(url + "/v1/test/clock", json={"advance": 121}, timeout=10), 200)
    expect(approve(phone, ch), 410, "CHALLENGE_EXPIRED")
    assert expect(phone.c.get(f"/v1/challenges/{ch['id']}"), 200)["state"] == "expired"
    expect(phone.c.get(f"/v1/challenges/{ch['id']}/qr.svg"), 410, "CHALLENGE_EXPIRED")
    # Approved in time, but presented too late.
    expect(desk.c.post(f"/v1/challenges/{ch2['id']}/consume", {"action": "dissolve"}), 410, "CHALLENGE_EXPIRED")


def totp(secret_b32, t, step=30, digits=6):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", t // step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return str((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 10 ** digits).zfill(digits)


def test_totp_python_matches_rfc6238():
    # RFC 6238 appendix B, SHA-1, truncated to 8 digits.
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp(secret, 59, digits=8) == "94287082"
    assert totp(secret, 1111111109, digits=8) == "07081804"
    assert totp(secret, 20000000000, digits=8) == "65353130"


def server_now(url):
    return expect(requests.post(url + "/v1/test/clock", json={"advance": 0}, timeout=10), 200)["now"]


def test_totp_enroll_confirm_and_replay(own_server):
    url = own_server.url
    c = register(url, platform="android")
    expect(c.post("/v1/me/totp/verify", {"code": "123456"}), 409, "TOTP_NOT_ENROLLED")
    # Start at the beginning of a time step so a step boundary cannot fall inside the test.
    expect(requests.post(url + "/v1/test/clock", json={"advance": 30 - server_now(url) % 30}, timeout=10), 200)
    e = expect(c.post("/v1/me/totp"), 201)
    assert e["otpauth_uri"].startswith(f"otpauth://totp/qun:{c.username}?secret={e['secret']}&issuer=qun")
    assert "<svg" in e["qr_svg"] and e["digits"] == 6 and e["period"] == 30
    e = expect(c.post("/v1/me/totp", headers={"Idempotency-Key": "k1"}), 201)  # restart while pending: new secret
    e2 = expect(c.post("/v1/me/totp", headers={"Idempotency-Key": "k1"}), 201)  # never replayed: a secret
    assert e2["secret"] != e["secret"]
    secret = e2["secret"]
    now = server_now(url)
    code = totp(secret, now)
    expect(c.post("/v1/me/totp/verify", {"code": code}), 409, "TOTP_NOT_ENROLLED")  # not confirmed yet
    expect(c.post("/v1/me/totp/confirm", {"code": totp(e["secret"], now)}), 422, "TOTP_INVALID")  # the old secret
    assert expect(c.post("/v1/me/totp/confirm", {"code": code}), 200) == {"state": "active"}
    expect(c.post("/v1/me/totp"), 409, "TOTP_ALREADY_ACTIVE")
    expect(c.post("/v1/me/totp/verify", {"code": code}), 422, "TOTP_REPLAYED")
    wrong = "000000" if code != "000000" else "111111"
    expect(c.post("/v1/me/totp/verify", {"code": wrong}), 422, "TOTP_INVALID")
    expect(c.post("/v1/me/totp/verify", {"code": totp(secret, now + 90)}), 422, "TOTP_INVALID")  # beyond ±1 step
    nxt = totp(secret, now + 30)  # one step of drift ahead
    assert expect(c.post("/v1/me/totp/verify", {"code": nxt}), 200) == {"verified": True}
    expect(c.post("/v1/me/totp/verify", {"code": nxt}), 422, "TOTP_REPLAYED")
    expect(requests.post(url + "/v1/test/clock", json={"advance": 60}, timeout=10), 200)
    fresh = totp(secret, server_now(url))
    expect(c.post("/v1/me/totp/verify", {"code": fresh}), 200)
    expect(c.post("/v1/me/totp/verify", {"code": fresh}), 422, "TOTP_REPLAYED")
    expect(c.post("/v1/me/totp/verify", {"code": "12"}), 422, "TOTP_INVALID")


def test_risk_evaluation_lookup(url):
    c = register(url)
    expect(c.get("/v1/risk/evaluations/r_nope"), 404, "RISK_NOT_FOUND")


def test_a_second_devices_key_needs_the_approval_of_a_keyed_device(url):
    """Whoever learned the password cannot enroll a key of their own to sign the proofs
    an account with a device key needs: once one device holds a key, another device's
    key registers only with a qr challenge approved from a device that has one."""
    phone, desk = user_with_devices(url)
    evil = Device(login(url, phone.c.username, "evil-" + uuid.uuid4().hex[:6], "android"), None,
                  register_key=False)
    key = {"public_key": evil.public_key()}
    p = expect(evil.c.post("/v1/me/devices/key", key), 428, "QR_REQUIRED")
    assert "already has a device key" in p["detail"]
    # Its own device cannot sign for it (it has no key), and a challenge proves nothing
    # until a keyed device approves it, for this very key.
    expect(evil.c.post("/v1/challenges", {"method": "device_key", "action": p["action"],
                                          "params_digest": p["params_digest"]}), 403, "DEVICE_NOT_TRUSTED")
    ch = expect(evil.c.post("/v1/challenges", {"method": "qr", "action": p["action"],
                                               "params_digest": p["params_digest"]}), 201)
    expect(evil.c.post("/v1/me/devices/key", {**key, "challenge_id": ch["id"]}), 409, "CHALLENGE_NOT_APPROVED")
    other = expect(evil.c.post("/v1/challenges", {"method": "qr", "action": p["action"], "params_digest": "0" * 64}),
                   201)
    expect(approve(phone, other), 200)
    expect(evil.c.post("/v1/me/devices/key", {**key, "challenge_id": other["id"]}), 422, "CHALLENGE_MISMATCH")
    mine = [d for d in expect(phone.c.get("/v1/me/devices"), 200)["items"] if d["platform"] == "android"]
    assert [d["has_key"] for d in mine] == [False]
    # The owner's phone approves, and then the key is registered.
    expect(approve(phone, ch), 200)
    assert expect(evil.c.post("/v1/me/devices/key", {**key, "challenge_id": ch["id"]}), 201)["public_key"] == key["public_key"]
