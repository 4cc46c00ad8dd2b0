# SPDX-License-Identifier: MIT
"""What the qun CLI says is in the user's language: a user whose locale is Chinese
(LANG=zh_CN.UTF-8) reads every sentence of a day's commands in Simplified Chinese (what
was done, the client's own errors, labels and table headers, history's marks, the
approvals inbox, qun help), and the same commands under LANG=C still say it in English,
word for word.  The real binary runs against a real qund; the expected text is written
out here, not read from src/qun/words.def, so a row translated wrongly or lost fails."""
import hashlib
import os
import re
import unicodedata

import pytest

from conftest import Client, age_sessions, expect

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")

# Words that nearly every English sentence holds and no command line or name here does.
STOPWORDS = {"the", "a", "an", "is", "are", "was", "were", "of", "to", "in", "on", "no", "not", "your", "you",
             "with", "for", "and", "or", "by", "this", "that", "it", "its", "be", "can", "cannot", "has", "have",
             "from", "at", "as", "there", "will", "give", "see"}


def english_sentences(text):
    """Runs of three or more ASCII words that hold an English function word: what is left
    of an English sentence.  Command lines (qun group list), flags, ids and names have none."""
    word = r"(?<![\w./:-])[A-Za-z']+(?![\w./:-])"  # not part of a flag, id, path or URL
    runs = re.findall(word + r"(?:[ ,;:]+" + word + r"){2,}", text)
    return [r for r in runs if STOPWORDS & {w.lower() for w in re.findall(r"[A-Za-z']+", r)}]


def columns(text):
    """Display columns of text: CJK wide and fullwidth characters count two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def at(line, cell):
    """The display column at which the cell cell (a whole word of line, or a pattern) starts."""
    m = re.search(r"(?:^|(?<= ))(?:" + cell + r")(?= |$)", line)
    assert m, (cell, line)
    return columns(line[:m.start()])


def test_every_client_error_is_a_words_row():
    """qun_cli_fail only passes words through ("%s"); a sentence of its own would be English
    under every locale.  The client's own errors use qun_failw and a row of words.def."""
    english = []
    for name in sorted(os.listdir(os.path.join(ROOT, "src/qun"))):
        if name.endswith(".c"):
            with open(os.path.join(ROOT, "src/qun", name), encoding="utf-8") as f:
                src = f.read()
            for fmt in re.findall(r'qun_cli_fail\(\s*[^,()]+,\s*(?:[^,()]|\([^()]*\))+,\s*("(?:[^"\\]|\\.)*")', src):
                if fmt != '"%s"':
                    english.append(f"{name}: {fmt}")
    assert not english, english


def test_the_english_finder_finds_english():
    assert english_sentences("qun: none of your 1 groups is named \"x\"; see: qun group list (GROUP_NOT_FOUND)")
    assert not english_sentences("qun: 你的 1 个群中没有叫“x”的群；请查看：qun group list (GROUP_NOT_FOUND)")
    assert not english_sentences("用法：qun history <group> [--after N] [--limit N]")
    assert not english_sentences("示例：qun approvals approve a_0123456789abcdef; qun admin migrate --from sqlite:PATH")


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

    def fails(self, code, *args, exit=1):
        """The one error format on stderr, nothing on stdout; returns stderr."""
        r = self.u.fails(code, *args, exit=exit, env=self.env())
        assert r.stdout == "", r.stdout
        return r.stderr

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


def times(text):
    """text with every time ("2026-12-04 10:50") as T, so whole lines can be compared."""
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "T", text)


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_clients_own_words_in_the_users_language(server, tmp_path, lang):
    """A parent who types a wrong group name, an ambiguous name or a bad option, reads who
    they are, a group, a history with a recalled and a removed message, the approvals
    inbox and qun help: in Chinese under LANG=zh_CN.UTF-8 (no English sentence left),
    in the English of before under LANG=C; tables aligned by display width."""
    zh = lang == "zh"

    def say(en, cn):
        return cn if zh else en

    alice, bob, carol, boss = (Speaker(server, tmp_path, lang) for _ in range(4))
    seen = []  # everything the zh user read, checked for English at the end
    for u in (alice, bob, carol, boss):
        u.ok("register", u.name, "--password", "correct horse")
        u.ok("login", u.name, env={"QUN_PASSWORD": "correct horse"})
        u.openid = u.u.openid = u.json("whoami")["openid"]
    bob.ok("display-name", "王小明")
    carol.ok("display-name", "王小明")

    def ok(u, *args):
        out = u.ok(*args)
        seen.append(out)
        return out

    def fails(u, code, *args, exit=1):
        err = u.fails(code, *args, exit=exit)
        seen.append(err)
        return err

    # whoami: the labels, padded by display width.
    out = times(ok(bob, "whoami"))
    sid = bob.json("whoami")["session_id"]
    device = bob.json("whoami")["device_id"]
    assert out == say(f"{bob.name}\n"
                      f"  openid:   {bob.openid}\n"
                      f"  name:     王小明\n"
                      f"  matrix:   @{bob.name}\n"
                      f"  session:  {sid} (cli, device {device})\n"
                      f"  since:    T\n"
                      f"  server:   {server.url}\n",
                      f"{bob.name}\n"
                      f"  OpenID：   {bob.openid}\n"
                      f"  显示名称： 王小明\n"
                      f"  Matrix：   @{bob.name}\n"
                      f"  会话：     {sid}（cli，设备 {device}）\n"
                      f"  注册于：   T\n"
                      f"  服务器：   {server.url}\n"), out

    # A group shown by name; a wrong name.
    gid = alice.json("group", "create", "茶话会")["id"]
    out = times(ok(alice, "group", "show", "茶话会"))
    assert out == say(f"  id:       {gid}\n"
                      f"  name:     茶话会\n"
                      f"  kind:     standard\n"
                      f"  state:    active\n"
                      f"  owner:    {alice.openid}\n"
                      f"  members:  1\n"
                      f"  my role:  owner\n"
                      f"  messages: 0\n"
                      f"  created:  T\n",
                      f"  ID：       {gid}\n"
                      f"  名称：     茶话会\n"
                      f"  类型：     standard\n"
                      f"  状态：     active\n"
                      f"  群主：     {alice.openid}\n"
                      f"  成员数：   1\n"
                      f"  我的角色： owner\n"
                      f"  消息数：   0\n"
                      f"  创建于：   T\n"), out
    assert fails(alice, "GROUP_NOT_FOUND", "group", "show", "茶话汇") == say(
        'qun: none of your 1 groups is named "茶话汇"; see: qun group list (GROUP_NOT_FOUND)\n',
        "qun: 你的 1 个群中没有叫“茶话汇”的群；请查看：qun group list (GROUP_NOT_FOUND)\n")

    # Two members called 王小明: the name is ambiguous, the username is not.
    alice.ok("group", "add", gid, bob.name)
    alice.ok("group", "add", gid, carol.name)
    assert fails(alice, "MEMBER_AMBIGUOUS", "group", "role", gid, "王小明", "admin") == say(
        'qun: 2 members are called "王小明"; give the username (MEMBER_AMBIGUOUS)\n',
        "qun: 有 2 名成员都叫“王小明”；请给出用户名 (MEMBER_AMBIGUOUS)\n")
    assert fails(alice, "MEMBER_NOT_FOUND", "group", "role", gid, "小明", "admin") == say(
        'qun: no member of the group has the username or display name "小明"; see: qun group members '
        "(MEMBER_NOT_FOUND)\n",
        "qun: 本群没有用户名或显示名称为“小明”的成员；请查看：qun group members (MEMBER_NOT_FOUND)\n")

    # Usage errors keep the synopsis as it is typed.
    assert fails(alice, "USAGE", "history", gid, "--limit", "many", exit=2) == say(
        "qun: --after and --limit take whole numbers; usage: qun history <group> [--after N] [--limit N] (USAGE)\n",
        "qun: --after 和 --limit 需要整数；用法：qun history <group> [--after N] [--limit N] (USAGE)\n")
    assert fails(alice, "USAGE", "history", gid, "--since", "1", exit=2) == say(
        "qun: unknown option --since; usage: qun history <group> [--after N] [--limit N] (USAGE)\n",
        "qun: 无法识别的选项 --since；用法：qun history <group> [--after N] [--limit N] (USAGE)\n")
    assert fails(alice, "USAGE", "frobnicate", exit=2) == say(
        "qun: unknown command frobnicate; see: qun help (USAGE)\n",
        "qun: 没有命令 frobnicate；参见：qun help (USAGE)\n")
    assert fails(alice, "IO", "upload", gid, str(alice.home / "missing.txt")) == say(
        f"qun: cannot open {alice.home}/missing.txt: No such file or directory (IO)\n",
        f"qun: 无法打开 {alice.home}/missing.txt：没有这个文件或目录 (IO)\n")
    err = fails(alice, "NETWORK", "--url", "http://127.0.0.1:1", "group", "list")
    assert err.startswith(say("qun: cannot reach http://127.0.0.1:1: ", "qun: 无法连接 http://127.0.0.1:1：")), err
    if zh:
        assert err == "qun: 无法连接 http://127.0.0.1:1：连接被拒绝（服务器没有运行，或地址、端口有误） (NETWORK)\n"

    # Members and the group list: CJK cells padded by display width under their headers.
    out = ok(alice, "group", "members", gid)
    head, *rows = out.splitlines()
    assert head.split() == say(["OPENID", "USERNAME", "ROLE", "JOINED", "NAME"],
                               ["OpenID", "用户名", "角色", "入群时间", "显示名称"])
    for row in rows:
        assert at(row, r"\d{4}-\d\d-\d\d") == at(head, say("JOINED", "入群时间")), out
    assert at(rows[1], "王小明") == at(head, say("NAME", "显示名称")), out
    out = ok(alice, "group", "list")
    head, row = out.splitlines()
    assert at(row, "standard") == at(head, say("KIND", "类型")) and at(row, "owner") == at(head, say("ROLE", "角色"))

    # History: a message removed by the owner with a reason, one recalled by its author.
    alice.ok("post", gid, "早上好")
    bob.ok("post", gid, "hello all")
    bob.ok("post", gid, "发错了")
    alice.ok("recall", gid, "2", "--reason", "跑题")
    bob.ok("recall", gid, "3")
    out = times(ok(alice, "history", gid))
    assert out == say(f"#1    T  {alice.name}: 早上好\n"
                      f"#2    T  王小明: (recalled) removed by {alice.name}: 跑题\n"
                      f"#3    T  王小明: (recalled)\n",
                      f"#1    T  {alice.name}: 早上好\n"
                      f"#2    T  王小明: （已被 {alice.name} 删除：跑题）\n"
                      f"#3    T  王小明: （已撤回）\n"), out

    # The approvals inbox: an enterprise group's dissolution waits for the org's admin.
    api = Client(boss.url, boss.u.token(), boss.openid, boss.name)
    org = expect(api.post("/v1/orgs", {"name": "acme", "kind": "enterprise"}), 201)["id"]
    expect(api.post(f"/v1/orgs/{org}/admins", {"openid": alice.openid}), 204)
    team = alice.json("group", "create", "团队", "--kind", "enterprise", "--org", org)["id"]
    out = ok(alice, "dissolve", team, "--messages", "keep", "--confirm-name", "团队", "--no-wait")
    assert out.startswith(say(f'Dissolving group "团队" ({team}), messages: keep\nImpact:\n',
                              f"解散群“团队”（{team}），消息：保留\n影响：\n")), out
    assert say("Approvals needed:\n", "需要的审批：\n") in out
    aid = boss.json("approvals", "list")["items"][0]["id"]
    out = times(ok(boss, "approvals", "list"))
    assert out == say(f"{aid} an admin of the group's organization [pending] {team} \"团队\" (enterprise) "
                      f"by {alice.name}, expires T\n"
                      "  It affects 1 members, 1 messages, 0 files (0 B) and 0 payments. "
                      "The messages are kept read-only for the owner.\n"
                      "decide with: qun approvals approve <id> [--reason R] | qun approvals reject <id> --reason R\n",
                      f"{aid} 群所属组织的管理员 [pending] {team}“团队”（enterprise），发起人 {alice.name}，截止 T\n"
                      "  涉及 1 名成员、1 条消息、0 个文件（0 B）和 0 笔收付款。 消息将只读保留，仅群主可见。\n"
                      "处理方式：qun approvals approve <id> [--reason R] | qun approvals reject <id> --reason R\n"), out
    assert fails(boss, "USAGE", "approvals", "reject", aid, exit=2) == say(
        "qun: a rejection needs a reason; usage: qun approvals reject <aid> --reason R (USAGE)\n",
        "qun: 驳回需要说明理由；用法：qun approvals reject <aid> --reason R (USAGE)\n")
    out = times(ok(alice, "status", team))
    assert out.startswith(say(f"group {team}: review\n  messages:   keep\n  requested:  T by {alice.name}\n",
                              f"群 {team}：review\n  消息：      保留\n  申请于：    T，申请人 {alice.name}\n")), out
    alice.ok("cancel", team)

    # qun help <command>: summaries, arguments and the example in words; the synopsis as typed.
    out = ok(alice, "help", "leave")
    synopsis = "  qun " + "leave <group>".ljust(60) + " "
    assert out == say("usage:\n" + synopsis + "leave a group\n\n"
                      "arguments:\n  <group>  a group id (g_...) or the name of one of your groups\n\n"
                      "example:\n  qun leave \"book club\"\n\nsee docs/cli.md for details.\n",
                      "用法：\n" + synopsis + "退出群\n\n"
                      "参数：\n  <group>  群 ID（g_...）或你所在的某个群的名称\n\n"
                      "示例：\n  qun leave 读书会\n\n详见 docs/cli.md。\n"), out
    for command in ("history", "dissolve", "approvals", "group", "file"):
        ok(alice, "help", command)
    ok(alice, "--help")

    left = [s for text in seen for s in english_sentences(text)]
    if zh:
        assert not left, left
    else:  # the finder is not blind: the same commands in English are full of sentences
        assert len(left) > 20, left
