# SPDX-License-Identifier: MIT
"""What the qun CLI says about what it did is in the user's language: a user whose locale
is Chinese (LANG=zh_CN.UTF-8) reads every sentence of a day's commands in Simplified
Chinese, and the same commands under LANG=C still say it in English, word for word.
The real binary runs against a real qund; the expected sentences are written out here,
not read from src/qun/words.def, so a row translated wrongly or lost fails."""
import hashlib
import os
import re

import pytest

from conftest import age_sessions

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_every_cli_key_the_commands_use_has_words():
    """qun_w(key) shows the key itself when the table has no row: a typo would reach the screen."""
    used = set()
    for name in os.listdir(os.path.join(ROOT, "src/qun")):
        if name.endswith(".c"):
            with open(os.path.join(ROOT, "src/qun", name), encoding="utf-8") as f:
                used |= set(re.findall(r'"(cli\.[\w.]+)"', f.read()))
    with open(os.path.join(ROOT, "src/qun/words.def"), encoding="utf-8") as f:
        rows = set(re.findall(r'^W\("(cli\.[\w.]+)"', f.read(), re.M))
    assert {"cli.posted", "cli.logged_in", "cli.transfer_offered"} <= used
    assert not used - rows, sorted(used - rows)


class Speaker:
    """A CLI user whose every command runs under one locale."""

    def __init__(self, server, tmp_path, lang):
        from test_20_cli import User
        self.u = User(server, tmp_path)
        self.lang = lang

    def env(self, extra=None):
        e = {"LANG": "zh_CN.UTF-8" if self.lang == "zh" else "C", "LC_ALL": "", "LC_MESSAGES": ""}
        e.update(extra or {})
        return e

    def ok(self, *args, **kw):
        return self.u.ok(*args, env=self.env(kw.pop("env", None)), **kw).stdout

    def json(self, *args):
        return self.u.json(*args, env=self.env())

    def __getattr__(self, name):
        return getattr(self.u, name)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_day_of_commands_in_the_users_language(server, tmp_path, lang):
    zh = lang == "zh"

    def say(en, cn):
        return cn if zh else en

    alice, bob = Speaker(server, tmp_path, lang), Speaker(server, tmp_path, lang)
    for u in (alice, bob):
        out = u.ok("register", u.name, "--password", "correct horse")
        u.openid = u.u.openid = re.search(r"openid ([\w-]+)", out).group(1)
        assert out == say(f"registered {u.name} (openid {u.openid})\nnext: qun login {u.name}\n",
                          f"已注册 {u.name}（openid {u.openid}）\n下一步：qun login {u.name}\n")
        out = u.ok("login", u.name, env={"QUN_PASSWORD": "correct horse"})
        assert out.startswith(say(f"logged in as {u.name} (openid {u.openid}, session ",
                                  f"已登录为 {u.name}（openid {u.openid}，会话 ")), out

    # Groups and messages.
    assert alice.ok("group", "list") == say("no groups yet; create one with: qun group create <name>\n",
                                            "还没有群；用 qun group create <群名称> 创建一个\n")
    out = alice.ok("group", "create", "茶话会")
    gid = alice.json("group", "list")["items"][0]["id"]
    assert out.splitlines()[0] == say(f'created group {gid} "茶话会"', f"已创建群 {gid}“茶话会”")
    assert alice.ok("history", gid) == say("no messages\n", "没有消息\n")
    assert alice.ok("post", gid, "早上好") == say(f"posted #1 to {gid}\n", f"已发送 #1 到 {gid}\n")
    alice.ok("post", gid, "second")
    more = alice.ok("history", gid, "--limit", "1").splitlines()[-1]
    assert more.startswith(say(f"more: qun history {gid} --after ", f"查看更多：qun history {gid} --after "))
    assert more.endswith(" --limit 1"), more
    assert alice.ok("recall", gid, "1") == say(f"recalled #1 in {gid}\n", f"已撤回 #1（{gid}）\n")
    assert alice.ok("search", gid, "zzzz") == say("no messages found\n", "没有找到消息\n")

    # Files.
    assert alice.ok("files", gid) == say(f"no files in {gid} yet; add one with: qun upload {gid} <path>\n",
                                         f"{gid} 还没有文件；用 qun upload {gid} <路径> 上传\n")
    (alice.home / "note.txt").write_bytes(b"hello")
    digest = hashlib.sha256(b"hello").hexdigest()
    first, second = alice.ok("upload", gid, str(alice.home / "note.txt")).splitlines()
    assert first.startswith(say("uploaded note.txt (5 bytes, ", "已上传 note.txt（5 字节，")), first
    assert first.endswith(say(f") to {gid}", f"）到 {gid}")), first
    assert second == say(f"digest: {digest}", f"摘要：{digest}")

    # An invitation, answered.
    assert bob.ok("invitations") == say("no pending invitations\n", "没有待处理的邀请\n")
    alice.ok("invite", gid, bob.name)
    inv = bob.json("invitations")["items"][0]["id"]
    assert bob.ok("invitation", "accept", inv) == say(f'joined "茶话会" ({gid}) as member\n',
                                                     f"已加入“茶话会”（{gid}），角色：member\n")

    # A red packet, claimed; the bill before and after.
    assert bob.ok("bill") == say("your bill is empty\n", "你的账单是空的\n")
    assert alice.ok("payments", gid) == say(f"no red packets in {gid} yet; send one with: qun pay\n",
                                            f"{gid} 还没有红包；用 qun pay 发一个\n")
    out = alice.ok("pay", gid, "1", "4", "--memo", "面条")
    pid = alice.json("payments", gid)["items"][0]["id"]
    assert out == say(f'red packet {pid}: ¥1.00 in 4 shares ("面条")\nmembers claim with: qun claim {gid} {pid}\n',
                      f"红包 {pid}：¥1.00，共 4 份（“面条”）\n成员用 qun claim {gid} {pid} 领取\n")
    assert bob.ok("claim", gid, pid) == say(f"claimed ¥0.25 from {pid}\n", f"领取了 ¥0.25（红包 {pid}）\n")
    assert say("claimed from a red packet", "领红包") in bob.ok("bill")

    # Governance: an empty inbox, an ownership offer and its withdrawal.
    assert bob.ok("approvals", "list") == say("no approvals are waiting for you\n", "没有等待你处理的审批\n")
    age_sessions(alice.url)
    out = alice.ok("transfer", gid, bob.name, "--confirm-name", "茶话会")
    assert out == say(f"offered ownership of {gid} to {bob.name}; they accept with: qun transfer accept {gid}\n",
                      f"已提出将 {gid} 的群主身份转让给 {bob.name}；对方用 qun transfer accept {gid} 接受\n")
    assert alice.ok("transfer", "withdraw", gid).startswith(say(f"withdrew the offer of {gid} to ",
                                                                f"已撤回将 {gid} 转让给 "))

    # Logging out names the session it ended.
    sid = alice.json("whoami")["session_id"]
    assert alice.ok("logout") == say(f"logged out {alice.name} (session {sid} revoked)\n",
                                     f"{alice.name} 已退出登录（会话 {sid} 已注销）\n")
