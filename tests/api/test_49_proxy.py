# SPDX-License-Identifier: MIT
"""qund behind a real reverse proxy: Debian's nginx, started here on a loopback port
with its own configuration in a temporary prefix (no daemon, a pid file, stopped by
PID), in front of qund with trusted_proxies=127.0.0.1/32 (nginx connects from there).

Two clients reach nginx from two networks (Linux routes all of 127.0.0.0/8 to the
loopback, so 127.0.1.1 and 127.0.2.1 are two /24s).  Failed logins from one lock out
that network only; the request log names each client's own address, never the
proxy's, even when the client sends a forged X-Forwarded-For of its own.  A forged
X-Forwarded-For sent straight to a qund that trusts some other proxy is ignored.  An
event stream through nginx, with proxy buffering off, delivers at once.

The nginx location block here is the one docs/deploy.md gives."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

from conftest import Server, expect, free_port, make_group, register, stop_clean

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (scripts/deps.sh installs nginx-light)")

PW = "correct horse"
NETWORK_MAX = 3
NET_A, NET_B = "127.0.1.1", "127.0.2.1"

# What docs/deploy.md calls the tested configuration: the upstream and location.
SITE = """
    upstream qund {
        server 127.0.0.1:%(qund_port)d;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:%(port)d;
        client_max_body_size 64m;
        location / {
            proxy_pass http://qund;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
    }
"""


class Nginx:
    """nginx in the foreground with everything under its own prefix directory."""

    def __init__(self, qund_port):
        self.dir = tempfile.mkdtemp(prefix="nginx-test-")
        os.chmod(self.dir, 0o755)  # workers run as nobody when the test runs as root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("daemon off;\nworker_processes 1;\npid %(d)s/nginx.pid;\nerror_log %(d)s/error.log;\n"
                    "events { worker_connections 256; }\nhttp {\n    access_log %(d)s/access.log;\n"
                    "    client_body_temp_path %(d)s/body;\n    proxy_temp_path %(d)s/proxy;\n"
                    "    fastcgi_temp_path %(d)s/fastcgi;\n    uwsgi_temp_path %(d)s/uwsgi;\n"
                    "    scgi_temp_path %(d)s/scgi;\n" % {"d": self.dir})
            f.write(SITE % {"qund_port": qund_port, "port": self.port})
            f.write("}\n")
        self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr.log"), "wb"))
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited: " + self.log())
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("nginx did not come up: " + self.log())

    def log(self):
        out = ""
        for name in ("stderr.log", "error.log"):
            p = os.path.join(self.dir, name)
            if os.path.exists(p):
                out += open(p, errors="replace").read()
        return out

    def stop(self):
        pid = int(open(os.path.join(self.dir, "nginx.pid")).read())
        assert pid == self.proc.pid
        os.kill(pid, signal.SIGQUIT)  # graceful: finish open requests, then exit
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class SourceAdapter(requests.adapters.HTTPAdapter):
    """Connections from a chosen local address."""

    def __init__(self, ip):
        self.ip = ip
        super().__init__()

    def init_poolmanager(self, *a, **kw):
        kw["source_address"] = (self.ip, 0)
        return super().init_poolmanager(*a, **kw)


def session_from(ip):
    s = requests.Session()
    s.mount("http://", SourceAdapter(ip))
    return s


def login(s, url, name, password, **headers):
    return s.post(url + "/v1/sessions", json={"username": name, "password": password, "device_id": "d-" + name,
                                              "platform": "cli"}, headers=headers, timeout=30)


def request_lines(srv):
    """The JSON request lines of srv's log."""
    out = []
    for line in srv.read_log().splitlines():
        if line.startswith("{"):
            j = json.loads(line)
            if j.get("msg") == "request":
                out.append(j)
    return out


def settings(extra):
    return ["--set", "log_format=json", "--set", "log_requests=1", "--set", "lockout_account_max=0",
            "--set", f"lockout_network_max={NETWORK_MAX}", "--set", "lockout_window=600"] + extra


@pytest.fixture(scope="module")
def proxied():
    s = Server(extra=settings(["--set", "trusted_proxies=127.0.0.1/32, ::1/128"])).start()
    n = Nginx(s.port)
    yield s, n
    n.stop()
    stop_clean(s)


def test_lockout_is_per_forwarded_client_and_the_log_names_it(proxied):
    srv, nginx = proxied
    victim = "v" + uuid.uuid4().hex[:10]
    expect(requests.post(nginx.url + "/v1/users", json={"username": victim, "password": PW}, timeout=30), 201)
    a, b = session_from(NET_A), session_from(NET_B)
    # Client A guesses, sending forged X-Forwarded-For fields of its own: nginx appends
    # A's real address, and qund reads from the right.
    for i in range(NETWORK_MAX - 1):
        expect(login(a, nginx.url, victim, "wrong", **{"X-Forwarded-For": f"198.51.100.{i + 1}"}), 401,
               "BAD_CREDENTIALS")
    assert expect(login(a, nginx.url, victim, "wrong"), 429, "LOCKED_OUT")["scope"] == "network"
    assert expect(login(a, nginx.url, victim, PW), 429, "LOCKED_OUT")["scope"] == "network"
    # Client B, on another network behind the same proxy, is not locked out.
    expect(login(b, nginx.url, victim, PW), 201)

    lines = [j for j in request_lines(srv) if j["route"] == "/v1/sessions"]
    fails = [j for j in lines if j["status"] == 401]
    assert len(fails) == NETWORK_MAX - 1 and {j["client"] for j in fails} == {NET_A}
    assert all(j["code"] == "BAD_CREDENTIALS" and j["method"] == "POST" for j in fails)
    assert [j["client"] for j in lines if j["status"] == 429] == [NET_A, NET_A]
    assert {j["client"] for j in lines if j["status"] == 201} == {NET_B}
    assert not any(j["client"].startswith("198.51.100.") for j in request_lines(srv))
    assert all(isinstance(j["ms"], int) and j["user"] == "-" for j in lines)
    # An authenticated request is logged with the user's name, never the token.
    c = register(nginx.url)
    expect(c.get("/v1/me"), 200)
    me = [j for j in request_lines(srv) if j["route"] == "/v1/me"]
    assert me and me[-1]["user"] == c.username and me[-1]["client"] == "127.0.0.1"
    assert c.token not in srv.read_log()


def test_event_stream_through_nginx_is_not_buffered(proxied):
    srv, nginx = proxied
    owner, member = register(nginx.url), register(nginx.url)
    gid = make_group(owner, members=[member])
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=10) as s:
        s.sendall(("GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                   f"Authorization: Bearer {member.token}\r\n\r\n").encode())
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(4096)
        assert got.startswith(b"HTTP/1.1 200") and b"text/event-stream" in got
        time.sleep(0.3)
        t0 = time.time()
        expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "through nginx"}), 201)
        s.settimeout(10)
        while b"through nginx" not in got:
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
        assert time.time() - t0 < 10, "the event waited in a buffer"
        assert b"event: message.created" in got


def test_upload_through_nginx(proxied):
    srv, nginx = proxied
    owner = register(nginx.url)
    gid = make_group(owner)
    data = os.urandom(2_000_000)
    f = expect(owner.post(f"/v1/groups/{gid}/files?name=big.bin", raw=data), 201)
    assert owner.get(f"/v1/groups/{gid}/files/{f['digest']}").content == data


def test_forged_forwarded_for_from_an_untrusted_peer_is_ignored():
    # qund trusts only a proxy at 127.0.0.2; the test connects from 127.0.0.1.
    srv = Server(extra=settings(["--set", "trusted_proxies=127.0.0.2/32"])).start()
    try:
        victim = "v" + uuid.uuid4().hex[:10]
        expect(requests.post(srv.url + "/v1/users", json={"username": victim, "password": PW}, timeout=30), 201)
        # Had the fields been believed, each guess would have come from a fresh network.
        for i in range(NETWORK_MAX):
            forged = {"X-Forwarded-For": f"203.0.{i}.1", "Forwarded": f"for=198.51.{i}.1"}
            r = login(requests, srv.url, victim, "wrong", **forged)
            expect(r, 401, "BAD_CREDENTIALS") if i < NETWORK_MAX - 1 else expect(r, 429, "LOCKED_OUT")
        p = expect(login(requests, srv.url, victim, PW, **{"X-Forwarded-For": "203.0.113.200"}), 429,
                   "LOCKED_OUT")
        assert p["scope"] == "network"
        lines = [j for j in request_lines(srv) if j["route"] == "/v1/sessions"]
        assert len(lines) == NETWORK_MAX + 1 and {j["client"] for j in lines} == {"127.0.0.1"}
        assert "203.0." not in srv.read_log() and "198.51." not in srv.read_log()
    finally:
        stop_clean(srv)


def test_startup_refuses_a_bad_cidr_and_lists_settings():
    srv = Server(extra=["--set", "trusted_proxies=203.0.113.0/24,203.0.113.300/24"])
    with pytest.raises(RuntimeError) as e:
        srv.start()
    assert "trusted_proxies" in str(e.value) and "203.0.113.300/24" in str(e.value)
    srv.log.close()
    srv = Server(extra=["--set", "trusted_proxies=203.0.113.0/24", "--set", "webhook_url=http://u:pw@127.0.0.1:9/x",
                        "--set", "webhook_secret=0123456789abcdef-secret", "--set", "threads=2",
                        "--set", "upload_limit=1000000"]).start()
    try:
        head = [line for line in srv.read_log().splitlines() if "settings that differ" in line]
        assert len(head) == 1, srv.read_log()
        line = head[0]
        assert "trusted_proxies=203.0.113.0/24" in line and "upload_limit=1000000" in line
        assert "threads=" not in line  # 2 is the default
        assert "webhook_secret=***" in line and "0123456789abcdef" not in line
        assert "webhook_url=http://u:***@127.0.0.1:9/x" in line and "pw@" not in line
    finally:
        stop_clean(srv)
