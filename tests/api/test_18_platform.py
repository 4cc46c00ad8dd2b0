# SPDX-License-Identifier: MIT
"""The confirmation method each platform must use for a destructive action is policy
(policies/verification.json) and the server enforces it: android presents the preview's
confirmation token, ios a device_key challenge signed by the phone, windows and web a qr
challenge approved from another device, cli the token plus the group's name typed back.
For each platform: success with the right proof, and refusal with a code naming the
required method when the proof is missing, of the wrong kind, foreign (another user's,
another group's, other parameters) or replayed.  Then bulk member removal: one
transaction, ledgered with counts, verification above the policy's threshold."""
import hashlib
import json
import os
import subprocess
import uuid

import pytest
import requests

from conftest import QUND, Server, expect, make_group, register, relogin, stop_clean
from test_15_verify import PASSWORD, Device, approve, login

DELETE = {"messages": "delete"}


def digest(params):
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def preview(c, gid, params=DELETE):
    return expect(c.post(f"/v1/groups/{gid}/dissolution/preview", params), 200)


def dissolve(c, gid, params=DELETE, **proof):
    return c.post(f"/v1/groups/{gid}/dissolution", {**params, **proof})


def state(c, gid):
    return expect(c.get(f"/v1/groups/{gid}"), 200)["state"]


def cancel(c, gid):
    expect(c.delete(f"/v1/groups/{gid}/dissolution"), 200)
    assert state(c, gid) == "active"


def two_devices(url, first, second):
    """One user with a session on each of two devices, both with a registered key.  The
    clock then moves 7 days on, so that neither device is new to the account (the risk
    engine's new-device rule would ask the second one for a step-up)."""
    name = "p" + uuid.uuid4().hex[:10]
    c1 = register(url, name=name, password=PASSWORD, platform=first, device=f"{name}-a")
    c2 = login(url, name, f"{name}-b", second)
    first = Device(c1, f"{name}-a")
    devices = first, Device(c2, f"{name}-b", approver=first)
    expect(requests.post(url + "/v1/test/clock", json={"advance": 7 * 86400 + 1}, timeout=10), 200)
    return devices


def challenge(dev, gid, method, params=DELETE, action="dissolve"):
    return expect(dev.c.post("/v1/challenges", {"action": action, "group": gid, "params_digest": digest(params),
                                                "method": method}), 201)


# ---- the preview says what the platform needs ----

def test_the_preview_names_the_platform_methods(url):
    want = {"android": ["confirm"], "ios": ["device_key"], "windows": ["qr"], "web": ["qr"],
            "cli": ["confirm", "typed_name"]}
    for platform, methods in want.items():
        c = register(url, platform=platform)
        gid = make_group(c, name=f"{platform} team")
        p = preview(c, gid)
        assert [r["method"] for r in p["requirements"]] == methods, (platform, p["requirements"])
        assert all(r["how"] for r in p["requirements"])
        assert p["platform"] == platform and p["params_digest"] == digest(DELETE)


# ---- android: confirm ----

def test_android_confirms_with_the_token(url):
    c = register(url, platform="android")
    gid, other = make_group(c), make_group(c)
    p = expect(dissolve(c, gid), 428, "CONFIRMATION_REQUIRED")
    assert "confirm" in [r["method"] for r in p["requirements"]]
    mallory = register(url, platform="android")
    theirs = preview(mallory, make_group(mallory))["confirmation_token"]
    expect(dissolve(c, gid, confirmation_token=theirs), 422, "CONFIRMATION_INVALID")       # foreign
    expect(dissolve(c, gid, confirmation_token=preview(c, other)["confirmation_token"]), 422,
           "CONFIRMATION_INVALID")                                                          # another group
    keep = preview(c, gid, {"messages": "keep"})["confirmation_token"]
    expect(dissolve(c, gid, confirmation_token=keep), 422, "CONFIRMATION_INVALID")          # other parameters
    assert state(c, gid) == "active"
    token = preview(c, gid)["confirmation_token"]
    st = expect(dissolve(c, gid, confirmation_token=token), 202)
    assert st["state"] == "pending"
    cancel(c, gid)
    p = expect(dissolve(c, gid, confirmation_token=token), 422, "CONFIRMATION_INVALID")     # replayed
    assert "already used" in p["detail"]


# ---- ios: device_key ----

def test_ios_signs_a_device_key_challenge(url):
    mallory, _ = two_devices(url, "ios", "web")
    phone, desk = two_devices(url, "ios", "web")
    c = phone.c
    gid, other = make_group(c), make_group(c)
    # Without a challenge, and with only the token the other platforms use.
    p = expect(dissolve(c, gid), 428, "DEVICE_KEY_REQUIRED")
    assert [r["method"] for r in p["requirements"]] == ["device_key"]
    assert p["params_digest"] == digest(DELETE) and p["group"] == gid and p["action"] == "dissolve"
    expect(dissolve(c, gid, confirmation_token=preview(c, gid)["confirmation_token"]), 428, "DEVICE_KEY_REQUIRED")
    # Not approved yet.
    ch = challenge(phone, gid, "device_key")
    expect(dissolve(c, gid, challenge_id=ch["id"]), 409, "CHALLENGE_NOT_APPROVED")
    # The wrong kind: a qr challenge approved from the desktop.
    qr = challenge(phone, gid, "qr")
    expect(approve(desk, qr), 200)
    p = expect(dissolve(c, gid, challenge_id=qr["id"]), 428, "DEVICE_KEY_REQUIRED")
    assert "device_key" in p["detail"]
    # Bound elsewhere: another group, other parameters.
    elsewhere = challenge(phone, other, "device_key")
    expect(approve(phone, elsewhere), 200)
    expect(dissolve(c, gid, challenge_id=elsewhere["id"]), 422, "CHALLENGE_MISMATCH")
    keep = challenge(phone, gid, "device_key", params={"messages": "keep"})
    expect(approve(phone, keep), 200)
    expect(dissolve(c, gid, challenge_id=keep["id"]), 422, "CHALLENGE_MISMATCH")
    # Another user's approved challenge is not found for this user.
    mg = make_group(mallory.c)
    theirs = challenge(mallory, mg, "device_key")
    expect(approve(mallory, theirs), 200)
    expect(dissolve(c, gid, challenge_id=theirs["id"]), 404, "CHALLENGE_NOT_FOUND")
    assert state(c, gid) == "active"
    # The right proof.
    expect(approve(phone, ch), 200)
    st = expect(dissolve(c, gid, challenge_id=ch["id"]), 202)
    assert st["state"] == "pending"
    entry = [json.loads(h["entry"]) for h in expect(c.get(f"/v1/groups/{gid}/history"), 200)["items"]
             if h["event"] == "dissolution.requested"][-1]
    assert entry["confirmation"] == "device_key" and entry["platform"] == "ios"
    # Replayed: the challenge was used.
    cancel(c, gid)
    expect(dissolve(c, gid, challenge_id=ch["id"]), 409, "CHALLENGE_USED")


# ---- windows and web: qr ----

@pytest.mark.parametrize("platform", ["windows", "web"])
def test_desktop_approves_a_qr_challenge_from_the_phone(url, platform):
    phone, desk = two_devices(url, "ios", platform)
    c = desk.c
    gid = make_group(c)
    p = expect(dissolve(c, gid), 428, "QR_REQUIRED")
    assert [r["method"] for r in p["requirements"]] == ["qr"]
    expect(dissolve(c, gid, confirmation_token=preview(c, gid)["confirmation_token"]), 428, "QR_REQUIRED")
    # The wrong kind: the desktop signs a device_key challenge with its own key.
    own = challenge(desk, gid, "device_key")
    expect(approve(desk, own), 200)
    expect(dissolve(c, gid, challenge_id=own["id"]), 428, "QR_REQUIRED")
    # A qr challenge of the phone's own session is not this session's.
    phones = challenge(phone, gid, "qr")
    expect(approve(desk, phones), 200)
    expect(dissolve(c, gid, challenge_id=phones["id"]), 422, "CHALLENGE_MISMATCH")
    # The desktop shows the QR code, the phone approves it.
    qr = challenge(desk, gid, "qr")
    assert expect(c.get(f"/v1/challenges/{qr['id']}"), 200)["state"] == "pending"
    assert c.get(f"/v1/challenges/{qr['id']}/qr.svg").status_code == 200
    expect(approve(phone, qr, client=phone.c), 200)
    assert expect(c.get(f"/v1/challenges/{qr['id']}"), 200)["state"] == "approved"
    st = expect(dissolve(c, gid, challenge_id=qr["id"]), 202)
    assert st["state"] == "pending"
    cancel(c, gid)
    expect(dissolve(c, gid, challenge_id=qr["id"]), 409, "CHALLENGE_USED")


# ---- cli: confirm + typed name ----

def test_cli_confirms_and_types_the_name(url):
    c = register(url, platform="cli")
    gid = make_group(c, name="Night Shift")
    token = preview(c, gid)["confirmation_token"]
    expect(dissolve(c, gid, typed_name="Night Shift"), 428, "CONFIRMATION_REQUIRED")
    p = expect(dissolve(c, gid, confirmation_token=token), 428, "TYPED_NAME_REQUIRED")
    assert [r["method"] for r in p["requirements"]] == ["typed_name"]
    for wrong in ["night shift", "Night Shift ", "Night"]:
        p = expect(dissolve(c, gid, confirmation_token=token, typed_name=wrong), 422, "TYPED_NAME_MISMATCH")
        assert p["field"] == "typed_name"
    # Refusals roll back: the token is still good.
    st = expect(dissolve(c, gid, confirmation_token=token, typed_name="Night Shift"), 202)
    assert st["state"] == "pending"
    cancel(c, gid)
    expect(dissolve(c, gid, confirmation_token=token, typed_name="Night Shift"), 422, "CONFIRMATION_INVALID")


def test_the_preview_refuses_proofs(url):
    c = register(url)
    gid = make_group(c)
    for field in ["typed_name", "step_up_challenge_id"]:
        p = expect(c.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "keep", field: "x"}), 422,
                   "FIELD_UNKNOWN")
        assert p["field"] == field


# ---- the methods are policy ----

def pack(tmp_path, **changes):
    pol = tmp_path / "policies"
    pol.mkdir()
    v = json.load(open(os.path.join(os.path.dirname(__file__), "../../policies/verification.json")))
    for k, val in changes.items():
        section, _, key = k.partition("__")
        v[section][key] = val
    (pol / "verification.json").write_text(json.dumps(v))
    return pol


def test_a_pack_decides_the_methods(tmp_path):
    pol = pack(tmp_path, platforms__android=["confirm", "typed_name"], bulk_remove__verify_above_members=1)
    s = Server(extra=["--set", f"policies={pol}"]).start()
    try:
        c = register(s.url, platform="android")
        gid = make_group(c, name="droid")
        p = preview(c, gid)
        assert [r["method"] for r in p["requirements"]] == ["confirm", "typed_name"]
        expect(dissolve(c, gid, confirmation_token=p["confirmation_token"]), 428, "TYPED_NAME_REQUIRED")
        expect(dissolve(c, gid, confirmation_token=p["confirmation_token"], typed_name="droid"), 202)
        # The bulk threshold too: two members are above 1.
        g2 = make_group(c, members=[register(s.url), register(s.url)])
        ids = [m["openid"] for m in expect(c.get(f"/v1/groups/{g2}/members"), 200)["items"] if m["role"] == "member"]
        expect(c.post(f"/v1/groups/{g2}/members/remove", {"openids": ids}), 428, "CONFIRMATION_REQUIRED")
    finally:
        stop_clean(s)


def test_a_broken_verification_pack_stops_qund(tmp_path):
    pol = pack(tmp_path, platforms__ios=["faceid"])
    p = subprocess.run([QUND, "--listen", "127.0.0.1:1", "--data", str(tmp_path / "d"), "--set", f"policies={pol}"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "verification.json" in p.stderr and "platforms.ios[0]" in p.stderr, p.stderr


# ---- bulk member removal ----

def bulk(c, gid, openids, **proof):
    return c.post(f"/v1/groups/{gid}/members/remove", {"openids": openids, **proof})


def roster(c, gid):
    return {m["openid"]: m["role"] for m in expect(c.get(f"/v1/groups/{gid}/members?limit=200"), 200)["items"]}


def test_bulk_removal_below_the_threshold(url):
    owner = register(url)
    admin, *people = [register(url) for _ in range(5)]
    gid = make_group(owner, admins=[admin], members=people)
    others = [p.openid for p in people]
    # All or nothing: one bad entry and nobody leaves.
    p = expect(bulk(owner, gid, others[:2] + [owner.openid]), 403, "FORBIDDEN_ROLE")
    assert p["field"] == "openids[2]"
    stranger = register(url)
    p = expect(bulk(owner, gid, others[:2] + [stranger.openid]), 404, "MEMBER_NOT_FOUND")
    assert p["field"] == "openids[2]"
    expect(bulk(owner, gid, [others[0], others[0]]), 422, "FIELD_INVALID")
    expect(bulk(owner, gid, []), 422, "FIELD_INVALID")
    expect(bulk(owner, gid, ["u_x"] * 65), 422, "FIELD_INVALID")
    expect(bulk(admin, gid, [admin.openid, others[0]]), 403, "FORBIDDEN_ROLE")   # admins remove members only
    expect(bulk(people[0], gid, [others[1]]), 403, "FORBIDDEN_ROLE")
    expect(bulk(stranger, gid, [others[1]]), 404, "GROUP_NOT_FOUND")
    assert len(roster(owner, gid)) == 6
    # An admin removes three members at once, without more proof.
    out = expect(bulk(admin, gid, others[:3]), 200)
    assert out == {"group": gid, "removed": 3, "admins": 0, "member_count": 3, "verification": "none"}
    assert set(roster(owner, gid)) == {owner.openid, admin.openid, *others[3:]}
    expect(people[0].get(f"/v1/groups/{gid}"), 404, "GROUP_NOT_FOUND")
    entry = [json.loads(h["entry"]) for h in expect(owner.get(f"/v1/groups/{gid}/history"), 200)["items"]
             if h["event"] == "members.removed"]
    assert len(entry) == 1 and entry[0]["removed"] == 3 and entry[0]["members"] == 3 and entry[0]["admins"] == 0
    assert entry[0]["member_count"] == 3 and entry[0]["request_digest"] == digest({"openids": others[:3]})


def test_bulk_removal_above_the_threshold_needs_the_platform_method(url):
    owner = register(url)  # cli
    people = [register(url) for _ in range(12)]
    gid = make_group(owner, name="big room", members=people)
    ids = [p.openid for p in people[:11]]
    p = expect(bulk(owner, gid, ids), 428, "CONFIRMATION_REQUIRED")
    assert p["params_digest"] == digest({"openids": ids})
    pv = expect(owner.post(f"/v1/groups/{gid}/members/remove/preview", {"openids": ids}), 200)
    assert pv["count"] == 11 and pv["verification_required"] is True and pv["members_after"] == 2
    assert [r["method"] for r in pv["requirements"]] == ["confirm", "typed_name"]
    expect(bulk(owner, gid, ids, confirmation_token=pv["confirmation_token"]), 428, "TYPED_NAME_REQUIRED")
    expect(bulk(owner, gid, ids, confirmation_token=pv["confirmation_token"], typed_name="big"), 422,
           "TYPED_NAME_MISMATCH")
    # The token is bound to the list.
    expect(bulk(owner, gid, ids[::-1], confirmation_token=pv["confirmation_token"], typed_name="big room"), 422,
           "CONFIRMATION_INVALID")
    assert len(roster(owner, gid)) == 13
    out = expect(bulk(owner, gid, ids, confirmation_token=pv["confirmation_token"], typed_name="big room"), 200)
    assert out["removed"] == 11 and out["member_count"] == 2 and out["verification"] == "confirm+typed_name"
    assert set(roster(owner, gid)) == {owner.openid, people[11].openid}
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["member_count"] == 2


def test_bulk_removals_count_over_a_rolling_day():
    """Six, then six more within a day: the second request crosses the threshold (10) and
    needs the platform's method; a day later six need nothing again."""
    s = Server(env={"QUN_TEST_CLOCK": "1"}).start()
    try:
        owner = register(s.url)  # cli
        people = [register(s.url) for _ in range(18)]
        gid = make_group(owner, name="hall", members=people)
        ids = [p.openid for p in people]
        assert expect(bulk(owner, gid, ids[:6]), 200)["verification"] == "none"
        pv = expect(owner.post(f"/v1/groups/{gid}/members/remove/preview", {"openids": ids[6:12]}), 200)
        assert pv["verification_required"] is True and pv["removed_last_day"] == 6
        expect(bulk(owner, gid, ids[6:12]), 428, "CONFIRMATION_REQUIRED")
        out = expect(bulk(owner, gid, ids[6:12], confirmation_token=pv["confirmation_token"], typed_name="hall"), 200)
        assert out["removed"] == 6 and out["verification"] == "confirm+typed_name"
        expect(requests.post(s.url + "/v1/test/clock", json={"advance": 86400 + 1}, timeout=10), 200)
        assert expect(bulk(owner, gid, ids[12:18]), 200)["verification"] == "none"
        assert len(roster(owner, gid)) == 1
    finally:
        stop_clean(s)


def test_bulk_removal_from_the_web_needs_a_qr_approval(url):
    phone, desk = two_devices(url, "ios", "web")
    people = [register(url) for _ in range(11)]
    gid = make_group(desk.c, members=people)
    ids = [p.openid for p in people]
    params = {"openids": ids}
    expect(bulk(desk.c, gid, ids), 428, "QR_REQUIRED")
    ch = challenge(desk, gid, "qr", params=params, action="dissolve")  # bound to another action
    expect(approve(phone, ch), 200)
    expect(bulk(desk.c, gid, ids, challenge_id=ch["id"]), 422, "CHALLENGE_MISMATCH")
    ch = challenge(desk, gid, "qr", params=params, action="bulk_remove")
    expect(approve(phone, ch), 200)
    out = expect(bulk(desk.c, gid, ids, challenge_id=ch["id"]), 200)
    assert out["removed"] == 11 and out["verification"] == "qr"


# ---- the platform's method and a risk step-up together ----

def test_web_at_risk_verify_needs_qr_and_a_step_up():
    s = Server(env={"QUN_TEST_CLOCK": "1"}).start()
    try:
        phone, desk = two_devices(s.url, "ios", "web")
        gids = [make_group(desk.c) for _ in range(4)]

        def qr_for(gid):
            ch = challenge(desk, gid, "qr")
            expect(approve(phone, ch), 200)
            return ch["id"]

        for g in gids[:3]:
            expect(dissolve(desk.c, g, challenge_id=qr_for(g)), 202)
        # The 4th in 24 h: the qr challenge alone is not enough.
        qr = qr_for(gids[3])
        p = expect(dissolve(desk.c, gids[3], challenge_id=qr), 428, "VERIFICATION_REQUIRED")
        assert p["requirements"]["all"] == ["qr"] and set(p["requirements"]["any_of"]) == {"device_key", "totp"}
        assert p["risk"]["level"] == "verify" and p["risk"]["reasons"][0]["rule"] == "frequency"
        # One challenge counts once.
        expect(dissolve(desk.c, gids[3], challenge_id=qr, step_up_challenge_id=qr), 409, "CHALLENGE_USED")
        # The desktop's own key signs the step-up.
        own = challenge(desk, gids[3], "device_key")
        expect(approve(desk, own), 200)
        st = expect(dissolve(desk.c, gids[3], challenge_id=qr, step_up_challenge_id=own["id"]), 202)
        assert st["state"] == "pending" and st["risk"]["level"] == "verify"
    finally:
        stop_clean(s)


# ---- the platform is a claim: devices are proved by their secret, proofs follow enrollment ----

def calm_server():
    """A test-clock server whose frequency rule stays out of the way of a handful of
    dissolutions by one user (the new-device rule stays on)."""
    return Server(env={"QUN_TEST_CLOCK": "1"},
                  extra=["--set", "risk_frequency_max=100", "--set", "risk_frequency_deny=1000"]).start()


def week_later(url):
    expect(requests.post(url + "/v1/test/clock", json={"advance": 7 * 86400 + 1}, timeout=10), 200)


def token_proof(c, gid, params=DELETE, cli=False):
    p = preview(c, gid, params)
    return {"confirmation_token": p["confirmation_token"], **({"typed_name": p["name"]} if cli else {})}


def test_a_known_device_id_without_its_secret_is_not_that_device():
    """Issue 13's attack: with the password, read the victim's device ids and log in
    claiming one of them as android.  The claim is refused, the device keeps its platform
    and first-seen time, and a dissolution from the attacker's session still needs more
    than a confirmation token.  The victim's own phone, proved by its secret, still
    dissolves with the token alone (android's intended experience)."""
    s = calm_server()
    try:
        name = "p" + uuid.uuid4().hex[:10]
        victim = register(s.url, name=name, password=PASSWORD, platform="android", device=f"{name}-phone")
        assert victim.device_secret.startswith("qds_")
        login(s.url, name, f"{name}-desk", "web")
        gid = make_group(victim)
        week_later(s.url)
        # The attacker, as the new device it is: the new-device rule asks for a step-up.
        evil = login(s.url, name, f"{name}-evil", "android")
        p = expect(dissolve(evil, gid, **token_proof(evil, gid)), 428, "VERIFICATION_REQUIRED")
        assert [r["rule"] for r in p["risk"]["reasons"]] == ["new_device"]
        # The victim's device ids are no secret...
        def devices(c):
            return {d["device_id"]: {k: v for k, v in d.items() if k != "current"}
                    for d in expect(c.get("/v1/me/devices"), 200)["items"]}

        before = devices(evil)
        assert {f"{name}-phone", f"{name}-desk"} <= set(before)
        # ...but naming one is not being it.
        for device, platform in [(f"{name}-phone", "android"), (f"{name}-desk", "android"), (f"{name}-phone", "ios")]:
            claim = {"username": name, "password": PASSWORD, "device_id": device, "platform": platform}
            p = expect(requests.post(s.url + "/v1/sessions", json=claim, timeout=30), 409, "DEVICE_SECRET_REQUIRED")
            assert p["field"] == "device_secret"
            expect(requests.post(s.url + "/v1/sessions", json={**claim, "device_secret": "qds_" + "A" * 43},
                                 timeout=30), 403, "DEVICE_SECRET_INVALID")
        # Not even the right secret changes a known device's platform.
        claim = {"username": name, "password": PASSWORD, "device_id": f"{name}-phone", "platform": "ios",
                 "device_secret": victim.device_secret}
        p = expect(requests.post(s.url + "/v1/sessions", json=claim, timeout=30), 409, "DEVICE_PLATFORM_MISMATCH")
        assert p["field"] == "platform" and "android" in p["detail"]
        after = devices(victim)
        assert after == before, (before, after)  # platform, first and last seen untouched
        assert after[f"{name}-desk"]["platform"] == "web" and after[f"{name}-phone"]["platform"] == "android"
        # So the attacker's session still cannot dissolve with a bare token.
        expect(dissolve(evil, gid, **token_proof(evil, gid)), 428, "VERIFICATION_REQUIRED")
        assert state(victim, gid) == "active"
        # The honest phone logs in again as itself: same device, not new, token alone.
        phone = relogin(victim, password=PASSWORD, platform="android")
        me = expect(phone.get("/v1/me"), 200)
        assert me["device_id"] == f"{name}-phone" and me["platform"] == "android"
        st = expect(dissolve(phone, gid, **token_proof(phone, gid)), 202)
        assert st["state"] == "pending" and st["risk"]["level"] in ("allow", "warn")
    finally:
        stop_clean(s)


def test_an_enrolled_device_key_is_needed_whatever_the_platform():
    """Once the account has a device key, android and cli sessions need a key's proof
    too: a qr approved from the phone when their own device has no key, a device_key
    signature when it has one.  web and ios already ask for one."""
    s = calm_server()
    try:
        name = "p" + uuid.uuid4().hex[:10]
        phone = Device(register(s.url, name=name, password=PASSWORD, platform="ios", device=f"{name}-phone"),
                       f"{name}-phone")
        bare = {pf: Device(login(s.url, name, f"{name}-{pf}", pf), f"{name}-{pf}", register_key=False)
                for pf in ("android", "cli", "web")}
        tablet = Device(login(s.url, name, f"{name}-tablet", "android"), f"{name}-tablet", approver=phone)
        week_later(s.url)
        want = {"android": ["confirm", "qr"], "cli": ["confirm", "qr", "typed_name"], "web": ["qr"]}
        for pf, dev in bare.items():
            c = dev.c
            gid = make_group(c, name=f"{pf} room")
            assert [r["method"] for r in preview(c, gid)["requirements"]] == want[pf]
            proof = token_proof(c, gid, cli=pf == "cli") if pf != "web" else {}
            p = expect(dissolve(c, gid, **proof), 428, "QR_REQUIRED")
            assert "qr" in [r["method"] for r in p["requirements"]]
            if pf != "web":
                assert "registered device key" in p["detail"]
            ch = challenge(dev, gid, "qr")
            expect(approve(phone, ch), 200)
            st = expect(dissolve(c, gid, challenge_id=ch["id"], **proof), 202)
            assert st["state"] == "pending"
            entry = [json.loads(h["entry"]) for h in expect(c.get(f"/v1/groups/{gid}/history"), 200)["items"]
                     if h["event"] == "dissolution.requested"][-1]
            assert entry["platform"] == pf and entry["confirmation"] == "+".join(want[pf])
        # An android device that holds a key signs with it.
        c = tablet.c
        gid = make_group(c, name="tablet room")
        assert [r["method"] for r in preview(c, gid)["requirements"]] == ["confirm", "device_key"]
        proof = token_proof(c, gid)
        expect(dissolve(c, gid, **proof), 428, "DEVICE_KEY_REQUIRED")
        ch = challenge(tablet, gid, "device_key")
        expect(approve(tablet, ch), 200)
        expect(dissolve(c, gid, challenge_id=ch["id"], **proof), 202)
    finally:
        stop_clean(s)


def test_transfer_and_bulk_removal_follow_the_enrolled_key():
    s = calm_server()
    try:
        name = "p" + uuid.uuid4().hex[:10]
        phone = Device(register(s.url, name=name, password=PASSWORD, platform="ios", device=f"{name}-phone"),
                       f"{name}-phone")
        droid = Device(login(s.url, name, f"{name}-droid", "android"), f"{name}-droid", register_key=False)
        people = [register(s.url) for _ in range(11)]
        heir = register(s.url)
        gid = make_group(droid.c, name="hall", members=people + [heir])
        week_later(s.url)
        c = droid.c
        # Ownership transfer from the android session: the token alone is not enough.
        to = {"to": heir.openid}
        pv = expect(c.post(f"/v1/groups/{gid}/transfer/preview", to), 200)
        assert [r["method"] for r in pv["requirements"]] == ["confirm", "qr"]
        expect(c.post(f"/v1/groups/{gid}/transfer", {**to, "confirmation_token": pv["confirmation_token"]}), 428,
               "QR_REQUIRED")
        # Bulk removal above the threshold: the same.
        ids = [p.openid for p in people]
        bv = expect(c.post(f"/v1/groups/{gid}/members/remove/preview", {"openids": ids}), 200)
        assert [r["method"] for r in bv["requirements"]] == ["confirm", "qr"]
        expect(bulk(c, gid, ids, confirmation_token=bv["confirmation_token"]), 428, "QR_REQUIRED")
        assert len(roster(c, gid)) == 13
        ch = challenge(droid, gid, "qr", params={"openids": ids}, action="bulk_remove")
        expect(approve(phone, ch), 200)
        out = expect(bulk(c, gid, ids, confirmation_token=bv["confirmation_token"], challenge_id=ch["id"]), 200)
        assert out["removed"] == 11 and out["verification"] == "confirm+qr"
        ch = challenge(droid, gid, "qr", params=to, action="transfer")
        expect(approve(phone, ch), 200)
        out = expect(c.post(f"/v1/groups/{gid}/transfer", {**to, "confirmation_token": pv["confirmation_token"],
                                                           "challenge_id": ch["id"]}), 202)
        assert out["verification"] == "confirm+qr"
    finally:
        stop_clean(s)
