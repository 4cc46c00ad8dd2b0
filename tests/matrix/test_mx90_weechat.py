# SPDX-License-Identifier: MIT
"""weechat-matrix (Debian's weechat-matrix 0.3, on matrix-nio) logs in, joins a room it
was invited to, and shows a message posted through /v1: the real terminal client, driven
in tmux.  It speaks only HTTPS, so it reaches qund through a loopback TLS proxy, as it
would reach a production qund through the operator's reverse proxy."""
import glob
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import SERVER_NAME, api, expect, register
from tlsproxy import TlsProxy

pytestmark = pytest.mark.skipif(not shutil.which("tmux") or not os.path.exists(
    "/usr/share/weechat/python/matrix.py"), reason="needs tmux and weechat-matrix (scripts/deps.sh installs them)")


def tmux(*args):
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=20)


def screen(session):
    return tmux("capture-pane", "-p", "-J", "-t", session).stdout


def logs(home):
    text = ""
    for path in glob.glob(os.path.join(home, "**", "*.weechatlog"), recursive=True):
        with open(path, encoding="utf-8", errors="replace") as f:
            text += f.read()
    return text


def wait_for(what, probe, seconds=30, seen=None):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if probe():
            return True
        time.sleep(0.3)
    home, session, proxy = seen
    raise AssertionError(f"weechat never showed {what}\n--- screen\n{screen(session)}"
                         f"\n--- its logs (end)\n{logs(home)[-3000:]}"
                         f"\n--- through the proxy\n" + "\n".join(proxy.trace[-40:]))


def test_weechat_logs_in_joins_and_shows_a_v1_message(server):
    alice, bob = register(server.url), register(server.url)
    gid = api.make_group(alice, name="weechat club")
    invite = expect(alice.post(f"/v1/groups/{gid}/invitations", {"username": bob.username}), 201)
    assert invite["state"] == "pending"
    tmp = tempfile.mkdtemp(prefix="qun-weechat-")
    proxy = TlsProxy(tmp, server.port)
    home = os.path.join(tmp, "home")
    session = "qun-weechat-" + bob.username
    cmds = ";".join([
        "/set logger.file.flush_delay 0",
        # Two commands typed back to back can arrive in one read: weechat then takes them
        # for a paste and waits for a "yes" (a screen once showed "Paste 2 lines?").
        "/set weechat.look.paste_max_lines -1",
        "/python load /usr/share/weechat/python/matrix.py",
        f"/matrix server add qun 127.0.0.1:{proxy.port}",
        f"/set matrix.server.qun.username {bob.username}",
        "/set matrix.server.qun.password correct horse",
        "/set matrix.server.qun.ssl_verify off",
        "/matrix connect qun",
    ])
    try:
        r = tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "50", f"weechat -d {home} -r '{cmds}'")
        assert r.returncode == 0, r.stderr
        seen = (home, session, proxy)
        me = f"@{bob.username.lower()}:{SERVER_NAME}"
        wait_for("the login", lambda: f"Logged in as {me}" in logs(home) + screen(session), seen=seen)
        # As a person would, join once the first sync has shown the invitation.
        wait_for("the invitation", lambda: "You have been invited to weechat club" in logs(home),
                 seen=seen)
        tmux("send-keys", "-t", session, "/buffer server.qun", "Enter")
        tmux("send-keys", "-t", session, f"/join !{gid}:{SERVER_NAME}", "Enter")
        # The join accepted the invitation: bob is a member in qun's own answer.
        wait_for("the join", lambda: any(m["openid"] == bob.openid for m in api.all_items(
            alice, f"/v1/groups/{gid}/members")), seen=seen)
        text = "hello from qun, 你好 " + bob.username
        expect(alice.post(f"/v1/groups/{gid}/messages", {"text": text}), 201)
        wait_for("the message in its log", lambda: text in logs(home), seen=seen)
        # And on screen, in the room's buffer.
        tmux("send-keys", "-t", session, "/buffer weechat club", "Enter")
        wait_for("the message on screen", lambda: "hello from qun" in screen(session), seen=seen)
    finally:
        tmux("send-keys", "-t", session, "/quit", "Enter")
        time.sleep(0.5)
        tmux("kill-session", "-t", session)
        proxy.close()
        shutil.rmtree(tmp, ignore_errors=True)
