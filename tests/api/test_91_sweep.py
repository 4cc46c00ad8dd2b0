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
import time

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


@pytest.mark.slow
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


# ---- raw-socket framing (RFC 9112 §6.3): nothing ambiguous reaches the router ----

def raw_exchange(port, data, timeout=5):
    """Send data on a fresh connection; return (answers, closed): every HTTP answer read
    (status, headers, body) until the server closes or goes quiet, and whether it closed."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.sendall(data)
        buf, closed = b"", False
        try:
            while True:
                x = c.recv(65536)
                if not x:
                    closed = True
                    break
                buf += x
                if b"\r\n\r\n" in buf and not complete_answers(buf)[1]:
                    c.settimeout(0.5)  # all answers so far are whole: wait briefly for more or the close
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed = True
    return complete_answers(buf)[0], closed


def complete_answers(buf):
    """Split buf into answers; the second item is the unparsed rest."""
    answers = []
    while b"\r\n\r\n" in buf:
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        n = int(headers.get("content-length", "0"))
        if len(rest) < n:
            break
        answers.append((status, headers, rest[:n]))
        buf = rest[n:]
    return answers, buf


def smuggle(name):
    """A request that would create user name, hidden after the case's bytes."""
    body = json.dumps({"username": name, "password": "correct horse"}).encode()
    return (b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


H = b"Host: x\r\n"
FRAMING_CASES = [  # (name, bytes before the smuggled request, status, code)
    ("two Content-Length", b"POST /v1/users HTTP/1.1\r\n" + H + b"Content-Length: 2\r\nContent-Length: 300\r\n\r\n{}", 400, "FRAMING_INVALID"),
    ("equal Content-Length twice", b"POST /v1/users HTTP/1.1\r\n" + H + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 400, "FRAMING_INVALID"),
    ("Content-Length list", b"POST /v1/users HTTP/1.1\r\n" + H + b"Content-Length: 2, 2\r\n\r\n{}", 400, "FRAMING_INVALID"),
    ("Content-Length +2", b"POST /v1/users HTTP/1.1\r\n" + H + b"Content-Length: +2\r\n\r\n{}", 400, "FRAMING_INVALID"),
    ("Content-Length negative", b"POST /v1/users HTTP/1.1\r\n" + H + b"Content-Length: -5\r\n\r\n", 400, "FRAMING_INVALID"),
    ("Content-Length hex", b"POST /v1/users HTTP/1.1\r\n" + H + b"Content-Length: 0x2\r\n\r\n{}", 400, "FRAMING_INVALID"),
    ("Content-Length 20 digits", b"POST /v1/users HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999\r\n\r\n", 400, "FRAMING_INVALID"),
    ("Content-Length huge", b"POST /v1/users HTTP/1.1\r\n" + H + b"Content-Length: 999999999999999999\r\n\r\n", 413, "BODY_TOO_LARGE"),
    ("Content-Length folded", b"POST /v1/users HTTP/1.1\r\n" + H + b"Content-Length: 2\r\n 300\r\n\r\n{}", 400, "REQUEST_INVALID"),
    ("space before colon", b"POST /v1/users HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\nContent-Length: 2\r\n\r\n{}", 400, "REQUEST_INVALID"),
    ("Content-Length with chunked", b"POST /v1/users HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "FRAMING_INVALID"),
    ("chunked with Content-Length", b"POST /v1/users HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400, "FRAMING_INVALID"),
    ("chunked not last", b"POST /v1/users HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400, "FRAMING_INVALID"),
    ("unknown coding", b"POST /v1/users HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400, "FRAMING_INVALID"),
    ("chunked twice", b"POST /v1/users HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "FRAMING_INVALID"),
    ("xchunked", b"POST /v1/users HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\nContent-Length: 2\r\n\r\n{}", 400, "FRAMING_INVALID"),
    ("chunked in HTTP/1.0", b"POST /v1/users HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "FRAMING_INVALID"),
    ("body on HEAD", b"HEAD /healthz HTTP/1.1\r\n" + H + b"Content-Length: 40\r\n\r\n", 400, "FRAMING_INVALID"),
    ("body on an unknown method", b"BREW /v1/me HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\n", 400, "FRAMING_INVALID"),
    ("chunk size 0x", b"POST /v1/users HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n", 400, "FRAMING_INVALID"),
    ("chunk size +", b"POST /v1/users HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n+2\r\n{}\r\n0\r\n\r\n", 400, "FRAMING_INVALID"),
    ("chunk size negative", b"POST /v1/users HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n-1\r\n{}\r\n0\r\n\r\n", 400, "FRAMING_INVALID"),
    ("chunk size overflow", b"POST /v1/users HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + b"f" * 17 + b"\r\n{}\r\n0\r\n\r\n", 400, "FRAMING_INVALID"),
    ("chunk size huge", b"POST /v1/users HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nffffffffffff\r\n{}\r\n0\r\n\r\n", 413, "BODY_TOO_LARGE"),
    ("chunk without CRLF", b"POST /v1/users HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", 400, "FRAMING_INVALID"),
    ("bad trailer", b"POST /v1/users HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nContent-Length : 9\r\n\r\n", 400, "FRAMING_INVALID"),
    ("bare LF", b"POST /v1/users HTTP/1.1\n" + H + b"Content-Length: 2\n\n{}", 400, "REQUEST_INVALID"),
    ("NUL in a value", b"POST /v1/users HTTP/1.1\r\n" + H + b"Content-Length: 2\x00 300\r\n\r\n{}", 400, "REQUEST_INVALID"),
    ("two Host", b"POST /v1/users HTTP/1.1\r\n" + H + H + b"Content-Length: 2\r\n\r\n{}", 400, "REQUEST_INVALID"),
    ("reserved field", b"POST /v1/users HTTP/1.1\r\n" + H + b"Qun-Gate-Refusal: 1\r\nContent-Length: 2\r\n\r\n{}", 400, "REQUEST_INVALID"),
    ("HTTP/0.9", b"GET /healthz\r\n", 400, "REQUEST_INVALID"),
    ("one-letter method", b"A / HTTP/1.1\r\n" + H + b"\r\n", 400, "REQUEST_INVALID"),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "REQUEST_INVALID"),
    ("absolute-form target", b"POST http://x/v1/users HTTP/1.1\r\n" + H + b"Content-Length: 2\r\n\r\n{}", 400, "REQUEST_INVALID"),
    ("CONNECT", b"CONNECT x:443 HTTP/1.1\r\n" + H + b"\r\n", 400, "REQUEST_INVALID"),
    ("headers over 64 KiB", b"GET /v1/me HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n", 431, "HEADERS_TOO_LARGE"),
    ("20000 headers", b"GET /v1/me HTTP/1.1\r\n" + H + b"X-A: b\r\n" * 20000 + b"\r\n", 431, "HEADERS_TOO_LARGE"),
    ("101 headers", b"GET /v1/me HTTP/1.1\r\n" + H + b"X-A: b\r\n" * 100 + b"\r\n", 431, "HEADERS_TOO_LARGE"),
    ("Expect other", b"POST /v1/users HTTP/1.1\r\n" + H + b"Expect: 200-ok\r\nContent-Length: 2\r\n\r\n{}", 417, "EXPECTATION_FAILED"),
]


def test_raw_framing_is_refused_with_a_problem_and_a_close(srv, codes):
    """Each ambiguous request: one 4xx problem+json answer with its code, the connection
    closed, and the request hidden behind it never run (its user does not exist)."""
    names = {}
    for i, (what, data, status, code) in enumerate(FRAMING_CASES):
        name = f"smuggled{i}"
        names[name] = what
        answers, closed = raw_exchange(srv.port, data + smuggle(name))
        assert len(answers) == 1, f"{what}: {answers}"
        st, headers, body = answers[0]
        assert (st, headers.get("content-type")) == (status, "application/problem+json"), f"{what}: {st} {headers} {body[:200]}"
        p = json.loads(body)
        assert p["code"] == code and p["status"] == status and p["code"] in codes, f"{what}: {p}"
        assert headers.get("connection") == "close" and closed, f"{what}: connection left open"
    for name, what in names.items():  # the smuggled POSTs created nothing
        expect(requests.post(srv.url + "/v1/users", json={"username": name, "password": "correct horse"}, timeout=10), 201)
    expect(requests.get(srv.url + "/readyz", timeout=5), 200)


def test_sound_framing_still_works(srv):
    """Pipelined requests, chunked bodies with extensions and trailers, leading empty
    lines, Expect: 100-continue and unknown methods are served as before."""
    two = b"GET /healthz HTTP/1.1\r\n" + H + b"\r\n"
    answers, _ = raw_exchange(srv.port, two + two + b"GET /healthz HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    assert [a[0] for a in answers] == [200, 200, 200]
    body = json.dumps({"username": "chunky", "password": "correct horse"}).encode()
    chunked = (b"POST /v1/users HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
               + b"%x;note=1\r\n%s\r\n" % (10, body[:10]) + b"%X\r\n%s\r\n" % (len(body) - 10, body[10:])
               + b"0\r\nX-Trailer: dropped\r\n\r\n")
    answers, _ = raw_exchange(srv.port, b"\r\n" + chunked + two)
    assert [a[0] for a in answers] == [201, 200], answers
    assert json.loads(answers[0][2])["username"] == "chunky"
    answers, _ = raw_exchange(srv.port, b"POST /v1/users HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n{}")
    assert [a[0] for a in answers] == [100, 422] or [a[0] for a in answers] == [422], answers
    answers, closed = raw_exchange(srv.port, b"BREW /v1/me HTTP/1.1\r\n" + H + b"\r\n" + two)
    assert [a[0] for a in answers] == [405, 200], answers
    assert json.loads(answers[0][2])["code"] == "METHOD_NOT_ALLOWED" and "GET" in answers[0][1]["allow"]
    answers, _ = raw_exchange(srv.port, b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n")
    assert answers[0][0] < 500 and answers[0][1]["content-type"] == "application/problem+json"


def test_framing_split_across_reads(srv):
    """A head and a chunked body that arrive a few bytes at a time are read as one request."""
    import socket
    body = json.dumps({"username": "trickle", "password": "correct horse"}).encode()
    data = (b"POST /v1/users HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
            + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) + b"GET /healthz HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(data), 7):
            c.sendall(data[i:i + 7])
            time.sleep(0.002)
        buf = b""
        while True:
            x = c.recv(65536)
            if not x:
                break
            buf += x
    answers, rest = complete_answers(buf)
    assert [a[0] for a in answers] == [201, 200] and not rest, buf[:500]
