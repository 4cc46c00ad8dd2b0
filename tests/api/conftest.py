# SPDX-License-Identifier: MIT
"""Fixtures for black-box API tests: a real qund on a free loopback port and a
temporary data directory, waited for on /readyz and stopped with TERM then KILL.

With QUN_STORE=postgres and QUN_PG_URL=postgres://user@host:port (tests/pg/run.sh sets
both), every qund runs on PostgreSQL instead: one database per data directory, so a
server restarted on the same data finds its rows again."""
import atexit
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # also when loaded by path
from free_port import free_port  # noqa: E402

QUND = os.environ.get("QUND", os.path.join(os.path.dirname(__file__), "../../build/qund"))
QUN = os.environ.get("QUN", os.path.join(os.path.dirname(__file__), "../../build/qun"))


# Every temporary file of a run (the servers' data and logs, the tools' configuration)
# goes into one directory of the run's own: qund, qun and the other tools inherit TMPDIR.
# A run that passes removes it at exit (after pytest's own tmp_path cleanup there); one
# that fails keeps it, and says where, for a look.
RUN_TMP = tempfile.mkdtemp(prefix="qun-tests-")
os.environ["TMPDIR"] = tempfile.tempdir = RUN_TMP
_run = {"passed": False}


def pytest_sessionfinish(session, exitstatus):
    _run["passed"] = exitstatus == 0
    if not _run["passed"]:
        print(f"\nthis run's servers, logs and files are kept in {RUN_TMP}")


# Servers started and not stopped since: a test or fixture that fails before its stop()
# would leave its qund running past the run, busy with its jobs beside the next suites.
_live = set()


def pytest_unconfigure(config):
    """A test that fails halfway may leave a thread of its own running (a writer looping
    on a stopped server), and Python waits for such threads at exit, for ever: CI once
    spent an hour there.  Ten seconds for them to end, then name them and exit failed.
    Servers still running are killed first."""
    for s in list(_live):
        if s.proc and s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
    _live.clear()
    deadline = time.monotonic() + 10
    left = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    for t in left:
        t.join(max(0.0, deadline - time.monotonic()))
    left = [t.name for t in left if t.is_alive()]
    if left:
        sys.stdout.flush()
        sys.stderr.write(f"\ntests left threads running: {', '.join(left)}; "
                         f"their run's files are kept in {RUN_TMP}\n")
        sys.stderr.flush()
        os._exit(1)


@atexit.register
def _remove_run_tmp():
    if _run["passed"]:
        shutil.rmtree(RUN_TMP, ignore_errors=True)


def pytest_collection_modifyitems(items):
    """The modules with a test marked slow first, each whole (fixtures are module-scoped),
    the rest in their order: with -n the long tests start early, instead of running alone
    at the end while the other workers idle."""
    slow = {item.module for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module not in slow)


STORE = os.environ.get("QUN_STORE", "sqlite")
# background_priority for every server that does not set its own: normal.  At qund's
# default, idle, the job thread and the writer's background batches get next to no CPU
# while other processes keep the cores busy, and every suite shares them (four pytest
# workers and their servers, the browsers beside the PostgreSQL lane): with two busy loops
# beside this suite, 7 tests that wait for purges, the search index or a backup ran out of
# time at idle (2026-12-07).  tests/api/test_66_background.py asks for idle and checks it;
# QUN_TEST_BACKGROUND=idle runs everything at the default.
BACKGROUND = os.environ.get("QUN_TEST_BACKGROUND", "normal")
PG_URL = os.environ.get("QUN_PG_URL", "")
PG = STORE == "postgres"
# Debian's psql is a Perl wrapper that picks a version: 40 ms of the 80 ms a call takes,
# and the PostgreSQL lane makes hundreds of calls.  The newest installed psql itself.
PSQL = max(glob.glob("/usr/lib/postgresql/*/bin/psql"),
           key=lambda p: int(re.sub(r"\D", "", p.split("/")[-3]) or 0), default="psql")


_template = {}


def _migrate_once(data, extra):
    """Start a qund on data, wait until it listens (its store migrated before, its signal
    handlers set), and stop it cleanly; its log is qund.log beside data."""
    log_path = os.path.join(os.path.dirname(data), "qund.log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([QUND, "--listen", f"127.0.0.1:{free_port()}", "--data", data] + extra,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 30
            while True:
                with open(log_path, "rb") as f:
                    if b"info qund listening on " in f.read():  # after the migrations
                        break
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"the template's qund did not migrate; see {log_path}")
                time.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"the template's qund exited with {proc.returncode}; see {log_path}")


def pg_template():
    """This process's template database: an empty one that a qund has migrated, from which
    every server's database is copied.  So the suite runs the migrations once per process
    instead of once per server: 0.45 s of DDL on PostgreSQL each time, hundreds of times."""
    if "name" in _template:
        return _template["name"]
    name = "qun_tpl_" + hashlib.sha256(RUN_TMP.encode()).hexdigest()[:16]
    subprocess.run([PSQL, PG_URL + "/postgres", "-qAtc", f"CREATE DATABASE {name}"],
                   capture_output=True, text=True, check=True)
    _migrate_once(os.path.join(tempfile.mkdtemp(prefix="qund-template-"), "data"),
                  ["--set", f"store={PG_URL}/{name}"])
    _template["name"] = name
    return name


def sqlite_seed(data):
    """Give a new data directory the SQLite file of one that a qund has migrated (made once
    per process), as pg_database does on PostgreSQL: a fresh ASan qund spends 0.3 s of CPU
    on its migrations, and a run starts hundreds.  A directory that has a qun.db already (a
    restart, or a test's own file) is left alone."""
    if os.path.exists(os.path.join(data, "qun.db")):
        return
    if "sqlite" not in _template:
        tpl = os.path.join(tempfile.mkdtemp(prefix="qund-template-"), "data")
        _migrate_once(tpl, [])
        _template["sqlite"] = tpl
    os.makedirs(data, mode=0o700, exist_ok=True)  # as qund makes it
    # One file: the template's qund exited 0, and its last close folded the WAL in.
    shutil.copyfile(os.path.join(_template["sqlite"], "qun.db"), os.path.join(data, "qun.db"))


def pg_database(data):
    """The PostgreSQL database of a data directory, created on first use, a copy of
    pg_template()."""
    name = "qun_" + hashlib.sha256(os.path.abspath(data).encode()).hexdigest()[:20]
    r = subprocess.run([PSQL, PG_URL + "/postgres", "-qAtc", f"CREATE DATABASE {name} TEMPLATE {pg_template()}"],
                       capture_output=True, text=True)
    if r.returncode != 0 and "already exists" not in r.stderr:
        raise RuntimeError("createdb failed: " + r.stderr)
    return PG_URL + "/" + name


def pg_sql(server, sql):
    """Run sql on a server's PostgreSQL database; the rows as lists of strings."""
    r = subprocess.run([PSQL, server.store, "-qAt", "-F", "\t", "-c", sql],
                       capture_output=True, text=True, check=True)
    return [line.split("\t") for line in r.stdout.splitlines()]


class _PgCursor:
    def __init__(self, rows):
        self.rows = rows

    def fetchone(self):
        return self.rows.pop(0) if self.rows else None

    def fetchall(self):
        rows, self.rows = self.rows, []
        return rows

    def __iter__(self):
        return iter(self.fetchall())


class PgAsSqlite:
    """Enough of a sqlite3 connection, over psql, for the tests that read or tamper with
    `<data>/qun.db` directly: under PostgreSQL they reach the server's database instead.
    `?` parameters become literals; integers come back as int, bytea as bytes; each
    statement commits on its own."""

    def __init__(self, url):
        self.url = url

    @staticmethod
    def literal(v):
        if v is None:
            return "NULL"
        if isinstance(v, bool):
            return str(int(v))
        if isinstance(v, int):
            return str(v)
        if isinstance(v, (bytes, bytearray, memoryview)):
            return "'\\x" + bytes(v).hex() + "'::bytea"
        return "'" + str(v).replace("'", "''") + "'"

    def bind(self, sql, params):
        out, it, quote = [], iter(params or ()), False
        for ch in sql:
            if ch == "'":
                quote = not quote
            out.append(self.literal(next(it)) if ch == "?" and not quote else ch)
        return "".join(out)

    @staticmethod
    def value(v):
        if v == "\x01":
            return None
        if re.fullmatch(r"-?[0-9]+", v):
            return int(v)
        if re.fullmatch(r"\\x([0-9a-f]{2})*", v):
            return bytes.fromhex(v[2:])
        return v

    def run(self, script):
        r = subprocess.run([PSQL, self.url, "-qAt", "-X", "-v", "ON_ERROR_STOP=1", "-F", "\x1f", "-R", "\x1e",
                            "-P", "null=\x01", "-f", "-"], input=script, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"psql: {r.stderr.strip()} in {script[:300]}")
        out = r.stdout[:-1] if r.stdout.endswith("\n") else r.stdout  # psql ends with a newline
        return [tuple(self.value(v) for v in rec.split("\x1f")) for rec in out.split("\x1e") if rec]

    def execute(self, sql, params=()):
        return _PgCursor(self.run(self.bind(sql, params) + ";\n"))

    def executemany(self, sql, seq):
        self.run("BEGIN;\n" + "".join(self.bind(sql, p) + ";\n" for p in seq) + "COMMIT;\n")
        return _PgCursor([])

    def cursor(self):
        return self

    def commit(self):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture(autouse=True)
def sqlite_file_on_postgres(monkeypatch, request):
    """Under PostgreSQL, point the tests' direct reads of <data>/qun.db at the server's
    database; tests that inspect the SQLite files themselves are SQLite-only."""
    if not PG:
        return
    if request.node.get_closest_marker("sqlite_only") or request.node.name in SQLITE_ONLY:
        pytest.skip(SQLITE_ONLY.get(request.node.name, "reads the SQLite file itself"))

    def connect(path, *a, **kw):
        path = str(path)
        if path.startswith("file:"):
            path = path[5:].split("?")[0]
        return PgAsSqlite(pg_database(os.path.dirname(path)))

    monkeypatch.setattr(sqlite3, "connect", connect)


# Tests that look at SQLite itself, not at the rows: skipped under PostgreSQL.
SQLITE_ONLY = {
    "test_tokens_and_passwords_are_not_stored_in_plaintext":
        "reads sqlite_master and the raw bytes of qun.db and its WAL (SQLite files)",
}


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
        self.store = pg_database(self.data) if PG else None

    def start(self):
        args = [QUND, "--listen", f"127.0.0.1:{self.port}", "--data", self.data,
                "--set", "argon2_memlimit_kib=64", "--set", "argon2_opslimit=1"] + self.extra
        if BACKGROUND and not any(a.startswith("background_priority=") for a in self.extra):
            args += ["--set", "background_priority=" + BACKGROUND]
        if self.store and not any(a.startswith("store=") for a in self.extra):
            args += ["--set", "store=" + self.store]
        elif not self.store and not any(a.startswith("store=") or a == "--config" for a in self.extra):
            sqlite_seed(self.data)  # not for a store (or a config naming one) of the test's own
        self.log = open(self.log_path, "ab")
        since = self.log.tell()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        _live.add(self)
        # Ready when this qund says it listens (so a 200 from anything else that held the
        # port a moment ago is not taken for it) and answers /readyz.
        listening = f"listening on 127.0.0.1:{self.port} ".encode()
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"qund exited with {self.proc.returncode}: {self.read_log()[-2000:]}")
            try:
                with open(self.log_path, "rb") as f:
                    f.seek(since)
                    if listening in f.read() and requests.get(self.url + "/readyz", timeout=0.5).status_code == 200:
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
        _live.discard(self)
        return self.proc.returncode

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()
        _live.discard(self)


class Client:
    """A user's view of the API: keeps the bearer token, checks problem answers."""

    def __init__(self, url, token=None, openid=None, username=None, device_id=None, device_secret=None):
        self.url, self.token, self.openid, self.username = url, token, openid, username
        # The device this session is on and the secret the server gave it at its first
        # login: an honest client sends it back to log in as the same device again.
        self.device_id, self.device_secret = device_id, device_secret
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


def metric(url, name):
    """The value of an unlabelled counter or gauge in qund's /metrics."""
    for line in requests.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError(name + " missing from /metrics")


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
    return Client(url, body["token"], body["openid"], name, body["device_id"], body["device_secret"])


def relogin(c, password="correct horse", platform="cli"):
    """A new session for c's user on c's own device, as an honest client does it: the
    device secret it was given at the device's first login proves the device."""
    r = requests.post(c.url + "/v1/sessions", json={"username": c.username, "password": password,
                                                   "device_id": c.device_id, "device_secret": c.device_secret,
                                                   "platform": platform}, timeout=30)
    body = expect(r, 201)
    assert "device_secret" not in body  # issued once, at the device's first login
    return Client(c.url, body["token"], body["openid"], c.username, c.device_id, c.device_secret)


def make_group(owner, admins=(), members=(), name="team"):
    """A fresh group owned by owner, with the given admins and members; returns its id."""
    g = expect(owner.post("/v1/groups", {"name": name}), 201)
    for c in admins:
        expect(owner.post(f"/v1/groups/{g['id']}/members", {"openid": c.openid, "role": "admin"}), 201)
    for c in members:
        expect(owner.post(f"/v1/groups/{g['id']}/members", {"openid": c.openid}), 201)
    return g["id"]


def transfer(owner, gid, to_openid):
    """Offer gid's ownership to a member with what a cli session's verification policy asks
    (policies/verification.json): the preview's confirmation token and the group's name typed
    back.  A refused preview is the answer, as the offer would be refused the same way."""
    p = owner.post(f"/v1/groups/{gid}/transfer/preview", {"to": to_openid})
    if p.status_code != 200:
        return p
    p = p.json()
    return owner.post(f"/v1/groups/{gid}/transfer", {"to": to_openid, "confirmation_token": p["confirmation_token"],
                                                     "typed_name": p["name"]})


def age_sessions(url, seconds=24 * 3600 + 1):
    """Move a test-clock server past the 24 h a session and a password must have lived
    before they may offer an ownership transfer (the default transfer policy)."""
    expect(requests.post(url + "/v1/test/clock", json={"advance": seconds}, timeout=10), 200)


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
