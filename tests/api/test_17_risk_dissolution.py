# SPDX-License-Identifier: MIT
"""The risk engine in phase 1 of a dissolution: a 4th request by one user in 24 h asks
for step-up (428 VERIFICATION_REQUIRED naming the methods and the reasons); a TOTP code
satisfies it; every request's evaluation is in the status and the ledger; past the deny
limit the request is refused."""
import json

import requests

from conftest import Server, expect, make_group, register, stop_clean
from test_15_verify import server_now, totp


def request(owner, gid, **proof):
    p = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "delete"}), 200)
    return owner.post(f"/v1/groups/{gid}/dissolution", {"messages": "delete", "confirmation_token": p["confirmation_token"],
                                                        "typed_name": p["name"], **proof})


def test_frequency_asks_for_step_up_and_totp_satisfies_it():
    s = Server(env={"QUN_TEST_CLOCK": "1"}, extra=["--set", "risk_frequency_deny=5"]).start()
    try:
        owner = register(s.url, platform="android")
        gids = [make_group(owner) for _ in range(7)]
        for g in gids[:3]:
            st = expect(request(owner, g), 202)
            assert st["risk"]["level"] in ("allow", "warn")
        p = expect(request(owner, gids[3]), 428, "VERIFICATION_REQUIRED")
        assert set(p["requirements"]["any_of"]) == {"device_key", "totp"}
        assert p["risk"]["level"] == "verify" and p["risk"]["reasons"][0]["rule"] == "frequency"
        assert expect(owner.get(f"/v1/groups/{gids[3]}"), 200)["state"] == "active"  # nothing happened
        # Enrol TOTP and present a code.
        expect(requests.post(s.url + "/v1/test/clock", json={"advance": 30 - server_now(s.url) % 30}), 200)
        secret = expect(owner.post("/v1/me/totp"), 201)["secret"]
        now = server_now(s.url)
        expect(owner.post("/v1/me/totp/confirm", {"code": totp(secret, now)}), 200)
        expect(request(owner, gids[3], totp_code="000000" if totp(secret, now + 30) != "000000" else "111111"),
               422, "TOTP_INVALID")
        st = expect(request(owner, gids[3], totp_code=totp(secret, now + 30)), 202)
        assert st["state"] == "pending" and st["risk"]["level"] == "verify"
        entry = [json.loads(h["entry"]) for h in expect(owner.get(f"/v1/groups/{gids[3]}/history"), 200)["items"]
                 if h["event"] == "dissolution.requested"][0]
        assert entry["risk"]["level"] == "verify" and entry["risk"]["reasons"][0]["rule"] == "frequency"
        # Far beyond the limit the engine refuses outright.
        expect(requests.post(s.url + "/v1/test/clock", json={"advance": 60}), 200)
        expect(request(owner, gids[4], totp_code=totp(secret, server_now(s.url))), 202)
        p = expect(request(owner, gids[5]), 403, "RISK_DENIED")
        assert p["risk"]["level"] == "deny"
    finally:
        stop_clean(s)
