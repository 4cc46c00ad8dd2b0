# SPDX-License-Identifier: MIT
"""Passkeys (WebAuthn) as the browser form of a device key.  The test is its own
authenticator: P-256 keys from python3-cryptography, the attestation object encoded by
the small CBOR encoder below (fmt "none"), assertions signed over authenticatorData ||
SHA-256(clientDataJSON).  Registration, list and removal; a passkey approving the
device_key challenge of an ios dissolution and the qr challenge a desktop shows; and
refusals, each a 4xx problem with a stable code and reason: wrong origin, wrong RP id
hash, wrong type, replayed assertion, lowered or repeated sign count, the user-verified
or user-present flag cleared, a bad signature, another user's or an unknown credential,
and malformed base64, JSON and CBOR of every kind."""
import base64
import hashlib
import json
import os
import struct
import uuid

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import expect, make_group, register
from test_15_verify import PASSWORD, login
from test_18_platform import DELETE, digest, dissolve, state

ORIGIN = "http://localhost:8080"
RP_ID = "localhost"
UP, UV, AT = 0x01, 0x04, 0x40


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# ---- a CBOR encoder for the few types an attestation object holds (RFC 8949) ----

def _head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for extra, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | extra]) + struct.pack(fmt, n)
    raise ValueError(n)


def cbor(v):
    if isinstance(v, bool):
        return b"\xf5" if v else b"\xf4"
    if isinstance(v, int):
        return _head(0, v) if v >= 0 else _head(1, -1 - v)
    if isinstance(v, bytes):
        return _head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return _head(3, len(b)) + b
    if isinstance(v, list):
        return _head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict):
        return _head(5, len(v)) + b"".join(cbor(k) + cbor(x) for k, x in v.items())
    raise TypeError(v)


def test_cbor_encoder_matches_rfc8949_appendix_a():
    assert cbor(0) == bytes.fromhex("00") and cbor(23) == bytes.fromhex("17") and cbor(24) == bytes.fromhex("1818")
    assert cbor(1000) == bytes.fromhex("1903e8") and cbor(-1) == bytes.fromhex("20") and cbor(-7) == bytes.fromhex("26")
    assert cbor(b"\x01\x02\x03\x04") == bytes.fromhex("4401020304") and cbor("IETF") == bytes.fromhex("6449455446")
    assert cbor({1: 2, 3: 4}) == bytes.fromhex("a201020304") and cbor([1, [2, 3]]) == bytes.fromhex("8201820203")


class Authenticator:
    """One passkey: a P-256 key, a credential id and a signature counter."""

    def __init__(self, count=0):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cred_id = os.urandom(16)
        self.count = count

    def cose_key(self):
        n = self.key.public_key().public_numbers()
        return cbor({1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")})

    @staticmethod
    def client_data(kind, challenge, origin=ORIGIN, **extra):
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False,
                           **extra}).encode()

    def registration(self, options, origin=ORIGIN, rp_id=RP_ID, flags=UP | UV | AT, kind="webauthn.create",
                     fmt="none", att_stmt=None, cose=None, raw_id=None, att_obj=None, label="phone"):
        """The PublicKeyCredential JSON navigator.credentials.create would answer."""
        auth = (hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", self.count) +
                bytes(16) + struct.pack(">H", len(self.cred_id)) + self.cred_id + (cose or self.cose_key()))
        if att_obj is None:
            att_obj = cbor({"fmt": fmt, "attStmt": att_stmt or {}, "authData": auth})
        cd = self.client_data(kind, options["publicKey"]["challenge"], origin)
        rid = b64u(raw_id or self.cred_id)
        body = {"id": rid, "rawId": rid, "type": "public-key", "authenticatorAttachment": "platform",
                "clientExtensionResults": {},
                "response": {"clientDataJSON": b64u(cd), "attestationObject": b64u(att_obj),
                             "transports": ["internal"]}}
        if label is not None:
            body["label"] = label
        return body

    def assertion(self, challenge, count=None, flags=UP | UV, origin=ORIGIN, rp_id=RP_ID, kind="webauthn.get",
                  signer=None, cred_id=None):
        """The PublicKeyCredential JSON navigator.credentials.get would answer; the
        counter moves on by one unless count is given."""
        if count is None:
            self.count += 1
            count = self.count
        auth = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", count)
        cd = self.client_data(kind, challenge, origin)
        sig = (signer or self.key).sign(auth + hashlib.sha256(cd).digest(), ec.ECDSA(hashes.SHA256()))
        rid = b64u(cred_id or self.cred_id)
        return {"id": rid, "rawId": rid, "type": "public-key", "clientExtensionResults": {},
                "response": {"clientDataJSON": b64u(cd), "authenticatorData": b64u(auth), "signature": b64u(sig),
                             "userHandle": None}}


def options(c):
    return expect(c.post("/v1/me/passkeys/options", {}), 201)


def enroll(c, auth=None, **kw):
    auth = auth or Authenticator()
    body = expect(c.post("/v1/me/passkeys", auth.registration(options(c), **kw)), 201)
    assert body["credential_id"] == b64u(auth.cred_id)
    return auth, body


def refused(r, reason, status=422, code="PASSKEY_INVALID"):
    p = expect(r, status, code)
    assert p.get("reason") == reason, p
    return p


def challenge(c, gid, method="device_key", params=DELETE, action="dissolve"):
    return expect(c.post("/v1/challenges", {"action": action, "group": gid, "params_digest": digest(params),
                                            "method": method}), 201)


def webauthn_challenge(c, ch):
    """The options of navigator.credentials.get for ch: the SHA-256 of its signed message."""
    o = expect(c.post(f"/v1/challenges/{ch['id']}/passkey/options", {}), 200)
    msg = "\n".join(["qun-challenge:v1", ch["id"], ch["nonce"], ch["action"], ch.get("group") or "",
                     ch.get("params_digest") or ""]).encode()
    assert o["publicKey"]["challenge"] == b64u(hashlib.sha256(msg).digest())
    assert o["publicKey"]["userVerification"] == "required" and o["publicKey"]["rpId"] == RP_ID
    return o["publicKey"]["challenge"]


def approve(c, ch, body):
    return c.post(f"/v1/challenges/{ch['id']}/passkey", body)


def user(url, platform="ios", device=None):
    name = "k" + uuid.uuid4().hex[:10]
    return register(url, name=name, password=PASSWORD, platform=platform, device=device or f"{name}-phone")


# ---- registration ----

def test_register_list_and_remove(url):
    c = user(url)
    o = options(c)
    pk = o["publicKey"]
    assert pk["rp"] == {"id": RP_ID, "name": "qun"} and pk["attestation"] == "none"
    assert pk["pubKeyCredParams"] == [{"type": "public-key", "alg": -7}]
    assert pk["authenticatorSelection"]["userVerification"] == "required"
    assert len(unb64u(pk["challenge"])) == 32 and len(unb64u(pk["user"]["id"])) == 32
    assert pk["user"]["name"] == c.username and pk["excludeCredentials"] == []
    auth = Authenticator(count=7)
    body = expect(c.post("/v1/me/passkeys", auth.registration(o)), 201)
    assert body["label"] == "phone" and body["current"] and body["sign_count"] == 7
    assert body["device_id"] == c.device_id and body["last_used_at"] is None
    # The same ceremony again: its challenge was used.
    refused(c.post("/v1/me/passkeys", auth.registration(o)), "challenge")
    # The same credential in a new ceremony.
    expect(c.post("/v1/me/passkeys", auth.registration(options(c))), 409, "PASSKEY_EXISTS")
    assert options(c)["publicKey"]["excludeCredentials"] == [{"type": "public-key", "id": b64u(auth.cred_id)}]
    items = expect(c.get("/v1/me/passkeys"), 200)["items"]
    assert [i["id"] for i in items] == [body["id"]]
    # Another user sees none of it and cannot remove it.
    other = user(url)
    assert expect(other.get("/v1/me/passkeys"), 200)["items"] == []
    expect(other.req("DELETE", f"/v1/me/passkeys/{body['id']}", {"password": PASSWORD}), 404, "PASSKEY_NOT_FOUND")
    expect(c.req("DELETE", f"/v1/me/passkeys/{body['id']}", {"password": PASSWORD}), 200)
    expect(c.req("DELETE", f"/v1/me/passkeys/{body['id']}", {"password": PASSWORD}), 404, "PASSKEY_NOT_FOUND")
    assert expect(c.get("/v1/me/passkeys"), 200)["items"] == []


def test_registration_refusals(url):
    c = user(url)
    a = Authenticator()
    post = lambda body: c.post("/v1/me/passkeys", body)  # noqa: E731
    refused(post(a.registration(options(c), origin="http://evil.example")), "origin")
    refused(post(a.registration(options(c), origin="http://localhost:8081")), "origin")
    refused(post(a.registration(options(c), kind="webauthn.get")), "type")
    refused(post(a.registration(options(c), rp_id="evil.example")), "rp_id")
    refused(post(a.registration(options(c), flags=UP | AT)), "user_verified")
    refused(post(a.registration(options(c), flags=UV | AT)), "user_present")
    refused(post(a.registration(options(c), fmt="packed", att_stmt={"alg": -7, "sig": b"x"})), "attestation")
    refused(post(a.registration(options(c), att_stmt={"x": 1})), "attestation")
    ed25519 = cbor({1: 1, 3: -8, -1: 6, -2: bytes(32)})
    refused(post(a.registration(options(c), cose=ed25519)), "algorithm")
    refused(post(a.registration(options(c), raw_id=b"another id")), "malformed")
    # A challenge of another session (another user's options) is not this session's.
    refused(post(a.registration(options(user(url)))), "challenge")
    # A made-up challenge.
    refused(post(a.registration({"publicKey": {"challenge": b64u(os.urandom(32))}})), "challenge")
    # Nothing was registered by any of these, and the ceremonies left are still good.
    assert expect(c.get("/v1/me/passkeys"), 200)["items"] == []
    enroll(c, a)


def malformed_registrations(a, o):
    """Registration bodies broken in every way the test could think of: (body, field)."""
    good = a.registration(o)
    r = good["response"]
    att = unb64u(r["attestationObject"])
    cd = unb64u(r["clientDataJSON"])
    out = []

    def with_response(**kw):
        return {**good, "response": {**r, **kw}}

    out += [({**good, "rawId": "***"}, "rawId"), ({**good, "rawId": ""}, "rawId"), ({**good, "rawId": 5}, "rawId"),
            ({**good, "id": b64u(b"x"), "rawId": good["rawId"]}, "id"), ({**good, "type": "password"}, "type"),
            ({**good, "response": "x"}, "response"), ({k: v for k, v in good.items() if k != "response"}, "response"),
            (with_response(clientDataJSON="%%%"), "response.clientDataJSON"),
            (with_response(clientDataJSON=None), "response.clientDataJSON"),
            (with_response(clientDataJSON=b64u(b"not json")), "response.clientDataJSON"),
            (with_response(clientDataJSON=b64u(b"[1,2]")), "response.clientDataJSON"),
            (with_response(clientDataJSON=b64u(cd[:-1])), "response.clientDataJSON"),
            (with_response(clientDataJSON=b64u(cd.replace(b'"challenge"', b'"chall"'))), "response.clientDataJSON"),
            (with_response(clientDataJSON=b64u(cd.replace(b'"challenge": "', b'"challenge": "@@'))),
             "response.clientDataJSON"),
            (with_response(attestationObject="?"), "response.attestationObject"),
            (with_response(attestationObject=[]), "response.attestationObject"),
            (with_response(attestationObject=b64u(b"\xff")), "response.attestationObject"),
            (with_response(attestationObject=b64u(att[:-5])), "response.attestationObject"),
            (with_response(attestationObject=b64u(att + b"\x00")), "response.attestationObject"),
            (with_response(attestationObject=b64u(cbor([1, 2]))), "response.attestationObject"),
            (with_response(attestationObject=b64u(cbor({"fmt": "none", "attStmt": {}}))), "response.attestationObject"),
            (with_response(attestationObject=b64u(cbor({"fmt": "none", "attStmt": {}, "authData": "text"}))),
             "response.attestationObject"),
            (with_response(attestationObject=b64u(cbor({"fmt": 1, "attStmt": {}, "authData": b"x" * 40}))),
             "response.attestationObject"),
            (with_response(attestationObject=b64u(cbor({"fmt": "none", "attStmt": {}, "authData": b"x" * 10}))),
             "response.attestationObject"),
            (with_response(attestationObject=b64u(cbor({"fmt": "none", "attStmt": {}, "authData": b"x" * 40,
                                                        "extra": 1}))), "response.attestationObject"),
            (with_response(attestationObject=b64u(b"\xbf\x63fmt\x64none\xff")), "response.attestationObject")]
    return out


def test_malformed_registrations_are_4xx(url):
    c = user(url)
    a = Authenticator()
    for body, field in malformed_registrations(a, options(c)):
        r = c.post("/v1/me/passkeys", body)
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
        p = expect(r, r.status_code)
        assert p["code"] in ("PASSKEY_INVALID", "FIELD_INVALID", "FIELD_MISSING"), p
    for raw in [b"", b"{", b"[]", b'"x"', b"\xff\xfe", b'{"a":1,"a":2}']:
        r = c.post("/v1/me/passkeys", raw=raw, headers={"Content-Type": "application/json"})
        assert 400 <= r.status_code < 500, (raw, r.status_code, r.text)
    for body in [{"label": 5}, {"label": "x" * 65}, {"challenge_id": ""}, {"challenge_id": 3}]:
        p = expect(c.post("/v1/me/passkeys", {**a.registration(options(c)), **body}), 422, "FIELD_INVALID")
    expect(c.post("/v1/me/passkeys/options", {"x": 1}), 422, "FIELD_UNKNOWN")
    assert expect(c.get("/v1/me/passkeys"), 200)["items"] == []


# ---- assertions: a passkey approves challenges ----

def test_a_passkey_approves_the_device_key_challenge_of_an_ios_dissolution(url):
    c = user(url, "ios")
    gid = make_group(c)
    p = expect(dissolve(c, gid), 428, "DEVICE_KEY_REQUIRED")
    assert [r["method"] for r in p["requirements"]] == ["device_key"]
    # Without a key or a passkey nothing could approve a challenge.
    expect(c.post("/v1/challenges", {"action": "dissolve", "method": "device_key"}), 403, "DEVICE_NOT_TRUSTED")
    expect(c.post("/v1/challenges/c_none/passkey/options", {}), 404, "CHALLENGE_NOT_FOUND")
    a, _ = enroll(c)
    ch = challenge(c, gid)
    wc = webauthn_challenge(c, ch)
    good = a.assertion(wc)
    body = expect(approve(c, ch, good), 200)
    assert body["state"] == "approved" and body["approved_by"] == c.device_id
    # Replayed: the challenge is approved once.
    expect(approve(c, ch, good), 409, "CHALLENGE_ALREADY_APPROVED")
    st = expect(dissolve(c, gid, challenge_id=ch["id"]), 202)
    assert st["state"] == "pending"
    entry = [json.loads(h["entry"]) for h in expect(c.get(f"/v1/groups/{gid}/history"), 200)["items"]
             if h["event"] == "dissolution.requested"][-1]
    assert entry["confirmation"] == "device_key"
    expect(approve(c, ch, good), 409, "CHALLENGE_USED")
    listed = expect(c.get("/v1/me/passkeys"), 200)["items"][0]
    assert listed["sign_count"] == a.count and listed["last_used_at"]


def test_assertion_refusals(url):
    c = user(url, "ios")
    gid = make_group(c)
    a, _ = enroll(c, Authenticator(count=10))
    ch = challenge(c, gid)
    wc = webauthn_challenge(c, ch)
    # The same assertion sent for another challenge answers the wrong one.
    other = challenge(c, gid, params={"messages": "keep"})
    refused(approve(c, other, a.assertion(wc)), "challenge")
    refused(approve(c, ch, a.assertion(wc, origin="https://evil.example")), "origin")
    refused(approve(c, ch, a.assertion(wc, rp_id="evil.example")), "rp_id")
    refused(approve(c, ch, a.assertion(wc, kind="webauthn.create")), "type")
    refused(approve(c, ch, a.assertion(wc, flags=UP)), "user_verified")
    refused(approve(c, ch, a.assertion(wc, flags=UV)), "user_present")
    refused(approve(c, ch, a.assertion(wc, signer=ec.generate_private_key(ec.SECP256R1()))), "signature")
    refused(approve(c, ch, a.assertion(b64u(os.urandom(32)))), "challenge")
    # Lowered and repeated counters (the stored one is 10).
    refused(approve(c, ch, a.assertion(wc, count=3)), "sign_count")
    refused(approve(c, ch, a.assertion(wc, count=10)), "sign_count")
    refused(approve(c, ch, a.assertion(wc, count=0)), "sign_count")
    # A bit flipped after signing.
    bad = a.assertion(wc)
    ad = bytearray(unb64u(bad["response"]["authenticatorData"]))
    ad[-1] ^= 1
    bad["response"]["authenticatorData"] = b64u(bytes(ad))
    refused(approve(c, ch, bad), "signature")
    # Unknown credentials, and another user's passkey.
    expect(approve(c, ch, a.assertion(wc, cred_id=os.urandom(16))), 404, "PASSKEY_NOT_FOUND")
    m = user(url, "ios")
    mallory, _ = enroll(m)
    expect(approve(c, ch, mallory.assertion(wc)), 404, "PASSKEY_NOT_FOUND")
    # Every refusal left the challenge pending; the right answer approves it.
    assert expect(c.get(f"/v1/challenges/{ch['id']}"), 200)["state"] == "pending"
    expect(approve(c, ch, a.assertion(wc)), 200)
    # A removed passkey approves nothing, and then nothing can.
    ch2 = challenge(c, gid)
    wc2 = webauthn_challenge(c, ch2)
    pid = expect(c.get("/v1/me/passkeys"), 200)["items"][0]["id"]
    expect(c.req("DELETE", f"/v1/me/passkeys/{pid}", {"password": PASSWORD}), 200)
    expect(approve(c, ch2, a.assertion(wc2)), 404, "PASSKEY_NOT_FOUND")
    expect(c.post("/v1/challenges", {"action": "dissolve", "method": "device_key"}), 403, "DEVICE_NOT_TRUSTED")
    expect(c.post(f"/v1/challenges/{ch2['id']}/passkey/options", {}), 404, "PASSKEY_NOT_FOUND")
    expect(approve(c, ch2, a.assertion(b64u(os.urandom(32)))), 404, "PASSKEY_NOT_FOUND")


def test_a_counter_of_zero_stays_zero(url):
    """Authenticators that keep no counter (most synced passkeys) always say 0."""
    c = user(url, "ios")
    gid = make_group(c)
    a, _ = enroll(c)
    for _ in range(2):
        ch = challenge(c, gid)
        expect(approve(c, ch, a.assertion(webauthn_challenge(c, ch), count=0)), 200)
    ch = challenge(c, gid)
    expect(approve(c, ch, a.assertion(webauthn_challenge(c, ch), count=1)), 200)
    ch = challenge(c, gid)
    refused(approve(c, ch, a.assertion(webauthn_challenge(c, ch), count=0)), "sign_count")


def test_malformed_assertions_are_4xx(url):
    c = user(url, "ios")
    gid = make_group(c)
    a, _ = enroll(c)
    ch = challenge(c, gid)
    wc = webauthn_challenge(c, ch)
    good = a.assertion(wc)
    r = good["response"]
    bodies = [{}, {"rawId": good["rawId"]}, {**good, "response": []}, {**good, "rawId": "!!"},
              {**good, "type": "x"}, {**good, "response": {**r, "signature": "***"}},
              {**good, "response": {**r, "signature": ""}}, {**good, "response": {**r, "signature": 1}},
              {**good, "response": {**r, "signature": b64u(b"\x30\x02\x01")}},
              {**good, "response": {**r, "authenticatorData": b64u(b"short")}},
              {**good, "response": {**r, "authenticatorData": None}},
              {**good, "response": {**r, "clientDataJSON": b64u(b"{]")}},
              {**good, "response": {**r, "clientDataJSON": b64u(b'{"type":"webauthn.get","challenge":5}')}},
              {**good, "response": {**r, "clientDataJSON": b64u(b"x" * 20000)}}]
    for body in bodies:
        resp = approve(c, ch, body)
        assert 400 <= resp.status_code < 500, (body, resp.status_code, resp.text)
        expect(resp, resp.status_code)
    for raw in [b"", b"{", b"[1]", b"null"]:
        resp = c.post(f"/v1/challenges/{ch['id']}/passkey", raw=raw, headers={"Content-Type": "application/json"})
        assert 400 <= resp.status_code < 500, (raw, resp.status_code, resp.text)
    expect(c.post(f"/v1/challenges/{ch['id']}/passkey/options", {"x": 1}), 422, "FIELD_UNKNOWN")
    expect(approve(c, ch, a.assertion(wc)), 200)


def test_the_phone_passkey_approves_the_qr_code_a_desktop_shows(url):
    name = "q" + uuid.uuid4().hex[:10]
    phone = register(url, name=name, password=PASSWORD, platform="ios", device=f"{name}-phone")
    desk = login(url, name, f"{name}-desk", "web")
    a, _ = enroll(phone)
    expect(requests.post(url + "/v1/test/clock", json={"advance": 7 * 86400 + 1}, timeout=10), 200)
    gid = make_group(desk)
    expect(dissolve(desk, gid), 428, "QR_REQUIRED")
    qr = challenge(desk, gid, "qr")
    # The desktop cannot approve its own QR code, whatever passkey it holds.
    expect(desk.post(f"/v1/challenges/{qr['id']}/passkey/options", {}), 403, "QR_SAME_DEVICE")
    expect(approve(desk, qr, a.assertion(b64u(os.urandom(32)))), 403, "QR_SAME_DEVICE")
    wc = webauthn_challenge(phone, qr)
    expect(approve(phone, qr, a.assertion(wc)), 200)
    assert expect(desk.get(f"/v1/challenges/{qr['id']}"), 200)["state"] == "approved"
    expect(dissolve(desk, gid, challenge_id=qr["id"]), 202)
    assert state(desk, gid) == "pending"


def test_a_second_devices_passkey_needs_the_approval_of_a_keyed_device(url):
    name = "r" + uuid.uuid4().hex[:10]
    phone = register(url, name=name, password=PASSWORD, platform="ios", device=f"{name}-phone")
    desk = login(url, name, f"{name}-desk", "web")
    pa, _ = enroll(phone)
    da = Authenticator()
    body = da.registration(options(desk))
    p = expect(desk.post("/v1/me/passkeys", body), 428, "QR_REQUIRED")
    assert p["action"] == "register_passkey" and [r["method"] for r in p["requirements"]] == ["qr"]
    assert p["params_digest"] == digest({"credential_id": b64u(da.cred_id)})
    ch = expect(desk.post("/v1/challenges", {"method": "qr", "action": p["action"],
                                             "params_digest": p["params_digest"]}), 201)
    expect(desk.post("/v1/me/passkeys", {**body, "challenge_id": ch["id"]}), 409, "CHALLENGE_NOT_APPROVED")
    expect(approve(phone, ch, pa.assertion(webauthn_challenge(phone, ch))), 200)
    # The refused attempts did not use up the registration ceremony.
    created = expect(desk.post("/v1/me/passkeys", {**body, "challenge_id": ch["id"]}), 201)
    assert created["device_id"] == f"{name}-desk"
    # The phone's own second passkey needs nothing: the phone already holds a key.
    enroll(phone)


@pytest.mark.parametrize("setting", ["webauthn_rp_id=https://x", "webauthn_rp_id=", "webauthn_origin=localhost",
                                     "webauthn_origin=http://localhost:8080/app"])
def test_bad_settings_stop_qund(setting):
    from conftest import Server
    s = Server(extra=["--set", setting])
    with pytest.raises(RuntimeError):
        s.start()
    s.stop()
