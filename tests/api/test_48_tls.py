# SPDX-License-Identifier: MIT
"""HTTPS served by qund itself (settings tls_cert and tls_key): a self-signed
certificate made here with `openssl req -x509` for 127.0.0.1, then login, an event
stream that receives a message, a file upload and download, a Matrix /sync long-poll
woken by a message, and keep-alive reuse, all over TLS.  SIGHUP loads the pair again:
a new connection sees the second certificate, and a broken pair on reload leaves the
current one serving.  A missing or mismatched pair refuses to start."""
import hashlib
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest
import requests

from conftest import QUND, Server, expect, make_group, register, stop_clean


def make_cert(path, name):
    """A self-signed certificate for 127.0.0.1 and localhost: (cert, key) paths."""
    cert, key = os.path.join(path, name + ".crt"), os.path.join(path, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=qun test " + name,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


def fingerprint(port, bundle):
    """The SHA-256 of the certificate a new TLS connection to port is shown."""
    ctx = ssl.create_default_context(cafile=bundle)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def der_digest(cert):
    pem = open(cert).read()
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


class TlsServer(Server):
    def __init__(self, cert, key, extra=()):
        super().__init__(extra=["--set", "tls_cert=" + cert, "--set", "tls_key=" + key, "--set", "matrix=on",
                                "--set", "log_requests=1", *extra])
        self.url = f"https://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tls"))
    one, two = make_cert(d, "one"), make_cert(d, "two")
    bundle = os.path.join(d, "bundle.pem")
    with open(bundle, "w") as f:
        f.write(open(one[0]).read() + open(two[0]).read())
    # Every requests call of the helpers (register, Client...) verifies against the bundle.
    old = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = bundle
    live = os.path.join(d, "live")
    os.mkdir(live)
    cert, key = os.path.join(live, "qund.crt"), os.path.join(live, "qund.key")
    for src, dst in zip(one, (cert, key)):
        open(dst, "w").write(open(src).read())
    s = TlsServer(cert, key).start()
    yield {"srv": s, "one": one, "two": two, "bundle": bundle, "cert": cert, "key": key, "dir": d}
    stop_clean(s)
    if old is None:
        del os.environ["REQUESTS_CA_BUNDLE"]
    else:
        os.environ["REQUESTS_CA_BUNDLE"] = old


def test_plain_http_is_not_answered_as_http(tls):
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{tls['srv'].port}/readyz", timeout=5)


def test_login_upload_download_keepalive(tls):
    url = tls["srv"].url
    owner = register(url)
    assert owner.url.startswith("https://")
    gid = make_group(owner)
    data = os.urandom(300_000)
    f = expect(owner.post(f"/v1/groups/{gid}/files?name=blob.bin", raw=data), 201)
    got = owner.get(f"/v1/groups/{gid}/files/{f['digest']}")
    assert got.status_code == 200 and got.content == data
    # The session kept one TLS connection for all of that (HTTP/1.1 keep-alive).
    pool = owner.s.get_adapter(url).poolmanager.connection_from_url(url)
    assert pool.num_connections == 1 and pool.num_requests >= 3


def test_tls_defaults(tls):
    port = tls["srv"].port
    ctx = ssl.create_default_context(cafile=tls["bundle"])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    ctx = ssl.create_default_context(cafile=tls["bundle"])
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.version() == "TLSv1.2" and s.compression() is None


def read_until(sock, needle, timeout=10):
    sock.settimeout(timeout)
    got, deadline = b"", time.time() + timeout
    while needle not in got and time.time() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_event_stream_over_tls(tls):
    url, port = tls["srv"].url, tls["srv"].port
    owner, member = register(url), register(url)
    gid = make_group(owner, members=[member])
    ctx = ssl.create_default_context(cafile=tls["bundle"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(("GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                       f"Authorization: Bearer {member.token}\r\n\r\n").encode())
            head = read_until(s, b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head
            expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "over tls"}), 201)
            got = read_until(s, b"over tls", timeout=5)
            assert b"event: message.created" in got and b"over tls" in got


def test_matrix_long_poll_over_tls(tls):
    url = tls["srv"].url
    owner, member = register(url), register(url)
    gid = make_group(owner, members=[member])
    # Without matrix_base_url, the one clients are pointed at is the https:// one.
    wk = expect(requests.get(url + "/.well-known/matrix/client", timeout=10), 200)
    assert wk["m.homeserver"]["base_url"] == url
    login = expect(requests.post(url + "/_matrix/client/v3/login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": member.username},
        "password": "correct horse"}, timeout=30), 200)
    auth = {"Authorization": "Bearer " + login["access_token"]}
    first = expect(requests.get(url + "/_matrix/client/v3/sync", headers=auth, timeout=30), 200)
    t0 = time.time()
    with requests.Session() as s:
        import threading
        out = {}
        t = threading.Thread(target=lambda: out.update(r=s.get(
            url + "/_matrix/client/v3/sync", params={"since": first["next_batch"], "timeout": 20000},
            headers=auth, timeout=30)))
        t.start()
        time.sleep(0.5)
        expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "long poll over tls"}), 201)
        t.join(25)
    assert time.time() - t0 < 15  # woken by the message, not by the timeout
    assert "long poll over tls" in out["r"].text
    # A token in the query (matrix-nio sends it so) is masked in the request log, which
    # names the user instead.
    token = login["access_token"]
    expect(requests.get(url + "/_matrix/client/v3/account/whoami", params={"access_token": token}, timeout=10), 200)
    log = tls["srv"].read_log()
    line = [ln for ln in log.splitlines() if "route=/_matrix/client/v3/account/whoami" in ln][-1]
    assert f"user={member.username} " in line and 'uri="/_matrix/client/v3/account/whoami?access_token=***"' in line
    assert token not in log


def test_sighup_swaps_the_certificate(tls):
    srv = tls["srv"]
    assert fingerprint(srv.port, tls["bundle"]) == der_digest(tls["one"][0])
    c = register(srv.url)
    # A broken pair (the second key with the first certificate) is refused on reload.
    open(tls["key"], "w").write(open(tls["two"][1]).read())
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while "keeping the current certificate" not in srv.read_log() and time.time() < deadline:
        time.sleep(0.1)
    assert "does not match" in srv.read_log()
    assert fingerprint(srv.port, tls["bundle"]) == der_digest(tls["one"][0])
    expect(c.get("/v1/me"), 200)
    # The whole second pair is taken: new connections see it.
    open(tls["cert"], "w").write(open(tls["two"][0]).read())
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while fingerprint(srv.port, tls["bundle"]) != der_digest(tls["two"][0]) and time.time() < deadline:
        time.sleep(0.1)
    assert fingerprint(srv.port, tls["bundle"]) == der_digest(tls["two"][0])
    expect(register(srv.url).get("/v1/me"), 200)
    expect(c.get("/v1/me"), 200)


@pytest.mark.parametrize("case", ["missing", "mismatched", "half"])
def test_bad_pair_refuses_to_start(tls, case):
    one, two = tls["one"], tls["two"]
    pair = {"missing": ["--set", "tls_cert=" + tls["dir"] + "/nope.crt", "--set", "tls_key=" + one[1]],
            "mismatched": ["--set", "tls_cert=" + one[0], "--set", "tls_key=" + two[1]],
            "half": ["--set", "tls_cert=" + one[0]]}[case]
    s = Server()
    r = subprocess.run([QUND, "--listen", f"127.0.0.1:{s.port}", "--data", s.data, *pair],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    want = {"missing": "cannot load the certificate (tls_cert)", "mismatched": "does not match the certificate",
            "half": "needs both tls_cert and tls_key"}[case]
    assert want in r.stderr, r.stderr
