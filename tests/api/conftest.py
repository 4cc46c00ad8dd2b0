# SPDX-License-Identifier: MIT
"""Fixtures for black-box API tests: a real qund on a free loopback port and a
temporary data directory, waited for on /readyz and stopped with TERM then KILL."""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

QUND = os.environ.get("QUND", os.path.join(os.path.dirname(__file__), "../../build/qund"))
QUN = os.environ.get("QUN", os.path.join(os.path.dirname(__file__), "../../build/qun"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running qund.  `start()` may be called again after `kill()` on the same data."""

    def __init__(self, data=None, extra=None, env=None):
        self.tmp = tempfile.mkdtemp(prefix="qund-test-")
        self.data = data or os.path.join(self.tmp, "data")
        self.extra = list(extra or [])
        self.env = dict(os.environ, **(env or {}))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.log_path = os.path.join(self.tmp, "qund.log")

    def start(self):
        args = [QUND, "--listen", f"127.0.0.1:{self.port}", "--data", self.data,
                "--set", "argon2_memlimit_kib=8192", "--set", "argon2_opslimit=1"] + self.extra
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"qund exited with {self.proc.returncode}: {self.read_log()[-2000:]}")
            try:
                if requests.get(self.url + "/readyz", timeout=0.5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("qund did not become ready: " + self.read_log()[-2000:])

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()


class Client:
    """A user's view of the API: keeps the bearer token, checks problem answers."""

    def __init__(self, url, token=None, openid=None, username=None):
        self.url, self.token, self.openid, self.username = url, token, openid, username
        self.s = requests.Session()

    def req(self, method, path, body=None, raw=None, headers=None, **kw):
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        return self.s.request(method, self.url + path, data=data, headers=h, timeout=30, **kw)

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.req("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.req("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.req("DELETE", path, **kw)


def expect(r, status, code=None):
    """Assert an answer's status, and for errors its problem+json shape and code."""
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:500]}"
    if status >= 400:
        assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers
        p = r.json()
        assert set(["type", "title", "status", "detail", "code"]) <= set(p), p
        assert p["status"] == status
        if code:
            assert p["code"] == code, p
        return p
    return r.json() if r.content and r.headers.get("Content-Type", "").startswith("application/json") else None


def register(url, name=None, password="correct horse", platform="cli", device=None):
    name = name or "u" + uuid.uuid4().hex[:10]
    r = requests.post(url + "/v1/users", json={"username": name, "password": password}, timeout=30)
    expect(r, 201)
    r = requests.post(url + "/v1/sessions", json={"username": name, "password": password,
                                                 "device_id": device or "dev-" + name, "platform": platform},
                      timeout=30)
    body = expect(r, 201)
    return Client(url, body["token"], body["openid"], name)


def make_group(owner, admins=(), members=(), name="team"):
    """A fresh group owned by owner, with the given admins and members; returns its id."""
    g = expect(owner.post("/v1/groups", {"name": name}), 201)
    for c in admins:
        expect(owner.post(f"/v1/groups/{g['id']}/members", {"openid": c.openid, "role": "admin"}), 201)
    for c in members:
        expect(owner.post(f"/v1/groups/{g['id']}/members", {"openid": c.openid}), 201)
    return g["id"]


def all_items(client, path, limit=200):
    """Every item of a cursor-paginated list, following next_cursor."""
    items, after = [], None
    sep = "&" if "?" in path else "?"
    while True:
        page = expect(client.get(f"{path}{sep}limit={limit}" + (f"&after={after}" if after else "")), 200)
        items += page["items"]
        after = page.get("next_cursor")
        if not after:
            return items


def stop_clean(s):
    """Stop a server and assert it exited 0 with no sanitizer report in its log and
    no error line (every 5xx answer logs one)."""
    rc = s.stop()
    log = s.read_log()
    assert "runtime error" not in log and "AddressSanitizer" not in log, log[-4000:]
    errors = [line for line in log.splitlines() if " error " in line[:40]]
    assert not errors, "\n".join(errors[:20])
    assert rc == 0, f"qund exited {rc}: {log[-2000:]}"


@pytest.fixture(scope="module")
def server():
    s = Server(env={"QUN_TEST_CLOCK": "1"}).start()
    yield s
    stop_clean(s)


@pytest.fixture
def own_server():
    """A server of the test's own, for tests that move the clock."""
    s = Server(env={"QUN_TEST_CLOCK": "1"}).start()
    yield s
    stop_clean(s)


@pytest.fixture
def url(server):
    return server.url


@pytest.fixture
def group(url):
    """An owner, an admin, a member and an outsider around one fresh group."""
    owner, admin, member, outsider = (register(url) for _ in range(4))
    g = expect(owner.post("/v1/groups", {"name": "team"}), 201)
    expect(owner.post(f"/v1/groups/{g['id']}/members", {"openid": admin.openid, "role": "admin"}), 201)
    expect(owner.post(f"/v1/groups/{g['id']}/members", {"openid": member.openid}), 201)
    return {"id": g["id"], "owner": owner, "admin": admin, "member": member, "outsider": outsider,
            "anon": Client(url)}
