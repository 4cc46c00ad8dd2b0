# SPDX-License-Identifier: MIT
"""Bad input on every Matrix route, driven by src/http/matrix_routes.def so that a new
route is swept the day it is added: path parameters that name nothing (other servers'
ids, absurd or badly encoded ones), malformed and wrong-shaped bodies, and nonsense
query parameters, as a user who owns one room so handlers get past "not in this room"
to their validation.  Every answer must be below 500, every error a Matrix error
({errcode, error}) with CORS headers, and the server's log must stay clean (the
module's server fixture checks it on the way out)."""
import json
import os
import re

import requests

from conftest import SERVER_NAME, api, expect, register

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "../.."))
ROUTE = re.compile(r'^ROUTE\("(\w+)",\s*"([^"]+)"', re.M)
BAD_IDS = ["nope", "!g_x:elsewhere.example", "@someone:elsewhere.example", "%FF%FE", "%00", "x" * 300,
           "!%3A", "$g_x.m99999", "$g_x.e-1", "..%2F..", "@:" + SERVER_NAME, "!g_" + "0" * 28 + ":" + SERVER_NAME]
BAD_BODIES = [b"{", b"[]", b"\"x\"", b"null", b"\xff\xfe", b"{" * 5000, b'{"a":' * 3000,
              json.dumps({"x": "y" * 70000}).encode()]
BAD_MEMBERS = {"name": [1, None, [], {}], "invite": ["@a:b", [1], None], "user_id": [1, [], "nope"],
               "reason": [1, {}], "body": [1, None], "msgtype": [1, "m.unknown"], "users": [[], "x", {"@a": "b"}],
               "room_version": [10, "11"], "type": [1, "m.login.token"], "password": [1], "identifier": ["x", []],
               "creation_content": ["x"], "initial_state": [{}, [1]], "preset": [1]}
BAD_QUERY = {"since": ["", "s-1", "t5", "s99999999999999999999", "x" * 2000], "timeout": ["-1", "abc", "9" * 30],
             "filter": ["{", "[]", "999999", "{\"room\":{\"timeline\":{\"limit\":-5}}}"], "limit": ["-1", "x", "0"],
             "dir": ["x", ""], "from": ["t-1", "s", "zzz"], "full_state": ["maybe"]}


def routes():
    """Every Matrix route; logouts last, since they end the sweeping session."""
    with open(os.path.join(ROOT, "src/http/matrix_routes.def"), encoding="utf-8") as f:
        return sorted(ROUTE.findall(f.read()), key=lambda r: "/logout" in r[1])


def check(r, where):
    assert r.status_code < 500, f"{where}: {r.status_code} {r.text[:300]}"
    assert r.headers.get("Access-Control-Allow-Origin") == "*", f"{where}: no CORS"
    if r.status_code >= 400:
        body = r.json()
        assert body["errcode"].startswith("M_") and isinstance(body.get("error"), str), f"{where}: {body}"


def test_every_matrix_route_refuses_bad_input(server):
    url = server.url
    me = register(url)
    gid = api.make_group(me)
    login = requests.post(url + "/_matrix/client/v3/login", json={
        "type": "m.login.password", "user": me.username, "password": "correct horse"}, timeout=30).json()
    token, mxid = login["access_token"], login["user_id"]
    room = f"!{gid}:{SERVER_NAME}"
    s = requests.Session()
    h = {"Authorization": "Bearer " + token}
    sent = 0

    def send(method, path, **kw):
        nonlocal sent
        sent += 1
        params = dict(kw.pop("params", {}))
        if path.endswith("/sync"):
            params.setdefault("timeout", "0")
        return s.request(method, url + path, headers=dict(h, **kw.pop("headers", {})), params=params,
                         timeout=60, allow_redirects=False, **kw)

    for method, pattern in routes():
        if pattern.endswith("/*"):
            pattern = pattern[:-1] + "global/override/x"
        segs = pattern.split("/")
        # 1. Parameters that name nothing.
        for bad in BAD_IDS:
            concrete = "/".join(bad if p == ":" else p for p in segs)
            check(send(method, concrete, data=b"{}"), f"{method} {concrete}")
        # Our own room and user where they fit, so validation is reached.
        concrete = "/".join(
            (room if "rooms" in segs[i - 1] or segs[i - 1] == "join" else mxid if segs[i - 1] in ("user", "profile", "presence") else "x")
            if p == ":" else p for i, p in enumerate(segs))
        if method in ("POST", "PUT"):
            for raw in BAD_BODIES:
                check(send(method, concrete, data=raw, headers={"Content-Type": "application/json"}),
                      f"{method} {concrete} {raw[:20]!r}")
            for member, values in BAD_MEMBERS.items():
                for v in values:
                    check(send(method, concrete, data=json.dumps({member: v})), f"{method} {concrete} {member}={v!r:.30}")
        for q, values in BAD_QUERY.items():
            for v in values:
                check(send(method, concrete, params={q: v}), f"{method} {concrete}?{q}={v:.20}")
    print(f"matrix sweep: {sent} requests")
    assert sent > 500
    # Still answering, and the room is still there.
    assert expect(me.get(f"/v1/groups/{gid}"), 200)["state"] == "active"
