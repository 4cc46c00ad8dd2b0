# SPDX-License-Identifier: MIT
"""Bad input on every route, driven by docs/openapi.yaml so that a new route is swept the
day it is documented (test_90 makes sure every route is).  For each operation: path
parameters that name nothing (or are absurd), each documented body member set to each
value of the wrong shape, malformed and non-object bodies, and each documented query
parameter set to nonsense — as a server admin who owns one group, so handlers get past
"not found" to their validation.  Every answer must be below 500 (a 503 or 507 would
also be a bug here: the machine is idle and its disk is not full), every 4xx must be
problem+json with a code errors.def knows, and the server's log must stay clean."""
import json
import os
import re

import pytest
import requests
import yaml

from conftest import Server, expect, register, stop_clean
from test_90_openapi import errors_def, resolve

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "../.."))
METHODS = ("get", "post", "put", "patch", "delete")
SKIP = {("GET", "/v1/events")}  # a stream that does not end; test_14 covers its bad input
BAD_VALUES = [None, True, -1, 0, 2 ** 63, 1.5, 1e308, "", "x" * 5000, "\u0000", "é" * 300, [], [1, "a"],
              {}, {"a": {"b": [None]}}]
BAD_IDS = ["nope", "0", "-1", "x" * 400, "%FF%FE", "..%2F..%2Fetc", "g_" + "0" * 32, "%00"]
BAD_QUERY = ["", "-1", "99999999999999999999", "abc", "%FF", "x" * 2000]


@pytest.fixture(scope="module")
def doc():
    with open(os.path.join(ROOT, "docs/openapi.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def codes():
    return set(errors_def())


@pytest.fixture(scope="module")
def srv():
    s = Server(extra=["--set", "admins=sweeper", "--set", "compliance=sweeper"]).start()
    yield s
    stop_clean(s)


def operations(doc):
    for path, item in doc["paths"].items():
        for m in METHODS:
            if m in item and (m.upper(), path) not in SKIP and path.startswith("/v1/"):
                yield m.upper(), path, item[m]


def check(r, codes, where):
    assert r.status_code < 500, f"{where}: {r.status_code} {r.text[:300]}"
    if r.status_code >= 400:
        assert r.headers.get("Content-Type") == "application/problem+json", f"{where}: {r.headers}"
        p = r.json()
        assert p.get("code") in codes and p.get("status") == r.status_code, f"{where}: {p}"


def test_every_route_refuses_bad_input_with_a_problem(srv, doc, codes):
    me = register(srv.url, name="sweeper")
    gid = expect(me.post("/v1/groups", {"name": "swept"}), 201)["id"]
    s = requests.Session()
    auth = {"Authorization": "Bearer " + me.token}
    sent = 0

    def send(method, path, **kw):
        nonlocal sent
        sent += 1
        h = dict(auth, **kw.pop("headers", {}))
        return s.request(method, srv.url + path, headers=h, timeout=30, allow_redirects=False, **kw)

    for method, path, op in operations(doc):
        names = re.findall(r"\{([^}]+)\}", path)
        # 1. Path parameters that name nothing, then the real group (when the first is a group) with junk after it.
        for bad in BAD_IDS:
            concrete = re.sub(r"\{[^}]+\}", bad, path)
            check(send(method, concrete, json={}), codes, f"{method} {concrete}")
        concrete = path
        for i, n in enumerate(names):
            concrete = concrete.replace("{" + n + "}", gid if i == 0 and path.startswith("/v1/groups/") else "nope", 1)
        body = (op.get("requestBody") or {}).get("content", {}).get("application/json")
        # 2. Each documented member with each value of the wrong shape.
        if body:
            props = resolve(doc, body["schema"]).get("properties", {})
            for prop in props:
                for v in BAD_VALUES:
                    check(send(method, concrete, data=json.dumps({prop: v})), codes, f"{method} {concrete} {prop}={v!r:.40}")
            for raw in [b"{", b"[]", b"\"x\"", b"null", b"{\"a\":1}", b"\xff\xfe", b"{" * 5000]:
                check(send(method, concrete, data=raw, headers={"Content-Type": "application/json"}), codes,
                      f"{method} {concrete} {raw[:20]!r}")
        # 3. Each documented query parameter with nonsense.
        for p in op.get("parameters", []):
            p = resolve(doc, p)
            if p["in"] == "query":
                for v in BAD_QUERY:
                    check(send(method, concrete, params={p["name"]: v}), codes, f"{method} {concrete}?{p['name']}={v:.20}")
    print(f"sweep: {sent} requests")
    assert sent > 1000
    # Still answering, and the group is still there (nothing in the sweep could confirm a dissolution).
    assert expect(me.get(f"/v1/groups/{gid}"), 200)["state"] == "active"
    expect(requests.get(srv.url + "/readyz", timeout=5), 200)
