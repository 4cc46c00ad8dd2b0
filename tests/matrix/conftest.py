# SPDX-License-Identifier: MIT
"""Fixtures for the Matrix tests: a real qund with the Matrix adapter on (server name
qun.test, the test clock on), driven by Debian's matrix-nio (python3-matrix-nio) and by
plain requests.  The qund fixture and helpers are tests/api's, loaded from its conftest;
the store follows QUN_STORE like the API tests (tests/pg/run.sh runs these too)."""
import asyncio
import importlib.util
import os

import pytest

_spec = importlib.util.spec_from_file_location(
    "qun_api_conftest", os.path.join(os.path.dirname(__file__), "../api/conftest.py"))
api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api)

from nio import AsyncClient, AsyncClientConfig  # noqa: E402

SERVER_NAME = "qun.test"
MATRIX = ["--set", "matrix=on", "--set", "matrix_server_name=" + SERVER_NAME,
          "--set", "cooling_off=60", "--set", "purge_grace=3600"]

expect, register, make_group, stop_clean = api.expect, api.register, api.make_group, api.stop_clean
pytest_sessionfinish = api.pytest_sessionfinish  # removes the run's temporary files
pytest_unconfigure = api.pytest_unconfigure  # never hangs on a thread a test left running


def start_server():
    return api.Server(extra=MATRIX, env={"QUN_TEST_CLOCK": "1"}).start()


@pytest.fixture(scope="module")
def server():
    s = start_server()
    yield s
    stop_clean(s)


@pytest.fixture
def own_server():
    """A server of the test's own, for tests that move the clock."""
    s = start_server()
    yield s
    stop_clean(s)


@pytest.fixture
def url(server):
    return server.url


@pytest.fixture
def loop():
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def mxid(client):
    """The Matrix user id of a tests/api Client (its username in lower case)."""
    return f"@{client.username.lower()}:{SERVER_NAME}"


def room_id(gid):
    return f"!{gid}:{SERVER_NAME}"


class Nio:
    """A matrix-nio AsyncClient for one qun user, run step by step on the test's loop:
    every call is explicit (no sync_forever), so each step is deterministic."""

    def __init__(self, loop, url, user, password="correct horse", encryption=False, store=None):
        self.loop = loop
        cfg = AsyncClientConfig(encryption_enabled=encryption, store_sync_tokens=False)
        self.c = AsyncClient(url, user, config=cfg, store_path=store or "")
        self.password = password

    def __call__(self, coro):
        return self.loop.run_until_complete(coro)

    def login(self, device_name="qun test"):
        return self(self.c.login(self.password, device_name=device_name))

    def close(self):
        self(self.c.close())


@pytest.fixture
def nio(loop, url):
    made = []

    def make(user, **kw):
        n = Nio(loop, url, user if isinstance(user, str) else user.username, **kw)
        made.append(n)
        return n

    yield make
    for n in made:
        n.close()
