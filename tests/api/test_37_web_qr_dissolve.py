# SPDX-License-Identifier: MIT
"""The web console's dissolve flow over HTTP: the owner's browser session (platform web)
asks for a `qr` challenge bound to the dissolution's parameters, another trusted device
of the owner (the phone) signs it, and the request carries it as `challenge_id`.  A
presented challenge is always checked and spent, even when the risk engine does not
ask for one: unapproved, bound to other parameters, or used already, it is refused."""
import hashlib
import json
import uuid


from conftest import expect, register
from test_15_verify import PASSWORD, Device, approve, login


def digest(params):
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_web_dissolution_with_a_qr_challenge(url):
    name = "w" + uuid.uuid4().hex[:10]
    phone = Device(register(url, name=name, password=PASSWORD, platform="ios", device=name + "-phone"), name + "-phone")
    web = login(url, name, name + "-browser", "web")
    gid = expect(web.post("/v1/groups", {"name": "club"}), 201)["id"]
    preview = expect(web.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "keep"}), 200)
    assert preview["params"] == {"messages": "keep"}

    def challenge(params):
        return expect(web.post("/v1/challenges", {"action": "dissolve", "group": gid, "method": "qr",
                                                  "params_digest": digest(params)}), 201)

    def request(ch):
        return web.post(f"/v1/groups/{gid}/dissolution", {"messages": "keep", "challenge_id": ch["id"],
                                                          "confirmation_token": preview["confirmation_token"]})

    ch = challenge({"messages": "keep"})
    expect(request(ch), 409, "CHALLENGE_NOT_APPROVED")  # shown, not yet approved on the phone
    other = challenge({"messages": "delete"})
    expect(approve(phone, other), 200)
    expect(request(other), 422, "CHALLENGE_MISMATCH")  # approved, but for deleting the messages
    expect(approve(phone, ch), 200)
    assert expect(web.get(f"/v1/challenges/{ch['id']}"), 200)["state"] == "approved"
    status = expect(request(ch), 202)  # the refusals above rolled back: the token is still good
    assert status["state"] == "pending"
    assert expect(web.get(f"/v1/challenges/{ch['id']}"), 200)["state"] == "used"
    expect(web.delete(f"/v1/groups/{gid}/dissolution"), 200)
    preview = expect(web.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "keep"}), 200)
    expect(request(ch), 409, "CHALLENGE_USED")
