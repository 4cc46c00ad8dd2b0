# SPDX-License-Identifier: MIT
"""Smoke scenario: register, log in, create a group, talk, and read it back."""
from conftest import expect, register


def test_health_and_ready(server, url):
    import requests
    assert requests.get(url + "/healthz").json() == {"status": "ok"}
    r = requests.get(url + "/readyz").json()
    assert r["status"] == "ready" and r["schema"] >= 1


def test_message_roundtrip(group):
    gid, member = group["id"], group["member"]
    for i in range(3):
        m = expect(member.post(f"/v1/groups/{gid}/messages", {"text": f"hello {i}"}), 201)
        assert m["seq"] == i + 1 and m["author"] == member.openid
    page = expect(group["owner"].get(f"/v1/groups/{gid}/messages?limit=2"), 200)
    assert [m["text"] for m in page["items"]] == ["hello 0", "hello 1"]
    rest = expect(group["owner"].get(f"/v1/groups/{gid}/messages?after={page['next_cursor']}"), 200)
    assert [m["seq"] for m in rest["items"]] == [3] and rest["next_cursor"] is None


def test_a_second_qund_cannot_share_the_port(server, tmp_path):
    import subprocess
    from conftest import QUND
    p = subprocess.run([QUND, "--listen", f"127.0.0.1:{server.port}", "--data", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "already in use" in p.stderr
