# SPDX-License-Identifier: MIT
"""The ledger's origin (`ledger_origin`): named at the first start and kept in ledger.key's
name; a later start with another origin is refused with a message naming the stored origin
and docs/ledger.md's key-rotation steps; without the setting the stored origin (qun.local
for installations older than the setting) keeps working."""
import os
import subprocess

from conftest import QUND, Server, expect, register, stop_clean


def origin_of(url):
    u = register(url)
    return expect(u.get("/v1/ledger/key"), 200)["origin"]


def test_origin_is_fixed_at_first_start():
    s = Server(extra=["--set", "ledger_origin=chat.example.org"]).start()
    first = origin_of(s.url)
    assert first.startswith("chat.example.org/ledger/"), first
    stop_clean(s)

    # The same origin again: fine, the same key.
    s.extra = ["--set", "ledger_origin=chat.example.org"]
    s.start()
    assert origin_of(s.url) == first
    stop_clean(s)

    # Without the setting: the stored origin stays.
    s.extra = []
    s.start()
    assert origin_of(s.url) == first
    stop_clean(s)

    # Another origin: qund refuses to start, naming both and the documented steps.
    p = subprocess.run([QUND, "--listen", f"127.0.0.1:{s.port}", "--data", s.data,
                        "--set", "ledger_origin=other.example.org"] +
                       (["--set", "store=" + s.store] if s.store else []),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p.stderr
    msg = p.stderr
    assert 'ledger_origin is "other.example.org"' in msg, msg
    assert '"chat.example.org"' in msg and "docs/ledger.md" in msg and "key-rotation" in msg, msg
    assert os.path.exists(os.path.join(s.data, "ledger.key"))

    # The documented steps: keep the old key aside, start under the new origin: a new key
    # signs checkpoints of the same tree.
    os.rename(os.path.join(s.data, "ledger.key"), os.path.join(s.data, "ledger.key.chat.example.org"))
    s.extra = ["--set", "ledger_origin=other.example.org"]
    s.start()
    assert origin_of(s.url).startswith("other.example.org/ledger/")
    stop_clean(s)


def test_default_origin_keeps_qun_local():
    s = Server().start()
    first = origin_of(s.url)
    assert first.startswith("qun.local/ledger/"), first
    stop_clean(s)
    # An existing installation of qun.local names it explicitly: still the same log.
    s.extra = ["--set", "ledger_origin=qun.local"]
    s.start()
    assert origin_of(s.url) == first
    stop_clean(s)


def test_default_origin_is_the_public_host_name():
    s = Server(extra=["--set", "matrix_server_name=chat.example.net"]).start()
    assert origin_of(s.url).startswith("chat.example.net/ledger/")
    stop_clean(s)


def test_bad_origin_is_refused():
    p = subprocess.run([QUND, "--set", "ledger_origin=two words"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "ledger_origin: expected a host name" in p.stderr, p.stderr
