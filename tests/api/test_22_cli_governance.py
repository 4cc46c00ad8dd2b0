# SPDX-License-Identifier: MIT
"""The governance commands of the qun CLI against a real qund: dissolve with its timing,
approvals, step-up and successor; cancel; the approvals inbox; legal holds; org dissolve
protection; restore with a password.  Each user runs the real binary with their own
temporary XDG_CONFIG_HOME; the server's clock is moved with POST /v1/test/clock."""
import json
import os
import re
import subprocess
import time
import uuid

import pytest

from conftest import QUN, Client, Server, expect, stop_clean

PASSWORD = "correct horse"
H = 3600


@pytest.fixture(scope="module")
def srv():
    s = Server(env={"QUN_TEST_CLOCK": "1"},
               extra=["--set", "admins=root", "--set", "compliance=judge"]).start()
    yield s
    stop_clean(s)


class User:
    """One CLI user with a config directory of their own, logged in through qun."""

    def __init__(self, server, tmp_path, name=None):
        self.name = name or "g" + uuid.uuid4().hex[:10]
        self.home = tmp_path / self.name
        self.home.mkdir()
        self.url = server.url
        self.run("register", self.name, "--password", PASSWORD)
        self.ok("login", self.name, env={"QUN_PASSWORD": PASSWORD})
        self.openid = self.json("whoami")["openid"]
        self.api = Client(self.url, (self.home / "cfg" / "qun" / "token").read_text().strip(), self.openid, self.name)

    def run(self, *args, input="", env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("QUN_")}
        e.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / "cfg"), QUN_URL=self.url, **(env or {}))
        r = subprocess.run([QUN, *args], input=input, capture_output=True, text=True, env=e, cwd=self.home,
                           timeout=60)
        assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
        return r

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"qun {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def json(self, *args, **kw):
        return json.loads(self.ok("--json", *args, **kw).stdout)

    def fails(self, code, *args, exit=1, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == exit, f"qun {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
        assert any(l.startswith("qun: ") and l.endswith(f"({code})") for l in r.stderr.splitlines()), r.stderr
        return r


@pytest.fixture
def mk(srv, tmp_path):
    return lambda name=None: User(srv, tmp_path, name)


def advance(user, seconds):
    expect(user.api.post("/v1/test/clock", {"advance": seconds}), 200)


def wait_state(user, gid, state, timeout=10):
    deadline = time.time() + timeout
    while True:
        st = user.json("status", gid)
        if st["state"] == state:
            return st
        assert time.time() < deadline, f"never reached {state}: {st}"
        time.sleep(0.1)


def test_dissolve_shows_timing_then_cancel(mk):
    owner = mk()
    gid = owner.json("group", "create", "team")["id"]
    r = owner.ok("dissolve", gid, "--messages", "delete", "--confirm-name", "team", "--no-wait")
    # The preview's timing, then the state with its countdown.
    assert "Timing: the group dissolves 48h after the request" in r.stdout
    assert "Cooling-off period" in r.stdout  # the delay rule in words, not its code
    assert f"group {gid}: pending" in r.stdout and "(in 48h)" in r.stdout
    assert f"cancel with: qun cancel {gid}" in r.stdout
    st = owner.json("status", gid)
    assert st["state"] == "pending" and 48 * H - 2 <= st["seconds_left"] <= 48 * H
    assert "pending" in owner.ok("status", gid).stdout
    r = owner.ok("cancel", gid)
    assert "cancelled the dissolution" in r.stdout and "active" in r.stdout
    owner.fails("DISSOLUTION_NOT_FOUND", "cancel", gid)
    assert owner.json("group", "show", gid)["state"] == "active"
    # --json: the request's answer with the timing and the countdown.
    st = owner.json("dissolve", gid, "--messages", "keep", "--confirm-name", "team", "--no-wait")
    assert st["state"] == "pending" and 48 * H - 2 <= st["seconds_left"] <= 48 * H
    assert [x["rule"] for x in st["timing"]["delay_reasons"]] == ["cooling_off"]
    assert owner.json("cancel", gid)["dissolution_state"] == "cancelled"
    owner.fails("USAGE", "cancel", exit=2)


def test_successor_is_sent_in_preview_and_request(mk):
    owner, member = mk(), mk()
    gid = owner.json("group", "create", "team")["id"]
    owner.ok("group", "add", gid, member.openid)
    r = owner.ok("dissolve", gid, "--messages", "delete", "--successor", "team v2", "--confirm-name", "team",
                 "--no-wait")
    assert 'successor group "team v2"' in r.stdout
    st = owner.json("status", gid)
    assert st["state"] == "pending" and st["successor_name"] == "team v2"
    owner.ok("cancel", gid)


def test_approvals_list_reject_approve_and_org_protection(mk):
    boss, owner, outsider = mk(), mk(), mk()
    org = expect(boss.api.post("/v1/orgs", {"name": "acme", "kind": "enterprise"}), 201)["id"]
    expect(boss.api.post(f"/v1/orgs/{org}/admins", {"openid": owner.openid}), 204)
    gid = owner.json("group", "create", "team", "--kind", "enterprise", "--org", org)["id"]
    r = owner.ok("dissolve", gid, "--messages", "keep", "--confirm-name", "team", "--no-wait")
    assert "Approvals needed:" in r.stdout and "an admin of the group's organization" in r.stdout
    assert f"group {gid}: review" in r.stdout and "waiting for approvals" in r.stdout
    # The inbox: the boss sees it, an outsider does not.
    assert "no approvals are waiting" in outsider.ok("approvals", "list").stdout
    assert outsider.json("approvals", "list")["items"] == []
    inbox = boss.json("approvals", "list")["items"]
    aid = [a for a in inbox if a["group"] == gid][0]["id"]
    listed = boss.ok("approvals", "list").stdout
    assert aid in listed and "an admin of the group's organization" in listed and owner.name in listed
    assert owner.openid not in listed
    # What is decided on, in figures and words, in both languages.
    assert "It affects 1 members, 1 messages, 0 files (0 B) and 0 payments." in listed
    assert "The messages are kept read-only for the owner." in listed
    zh = boss.ok("approvals", "list", env={"LANG": "zh_CN.UTF-8"}).stdout
    assert "涉及 1 名成员、1 条消息、0 个文件（0 B）和 0 笔收付款。" in zh and "消息将只读保留" in zh
    # A rejection needs a reason; the owner cannot decide on their own request.
    boss.fails("USAGE", "approvals", "reject", aid, exit=2)
    owner.fails("FORBIDDEN_APPROVER", "approvals", "approve", aid)
    outsider.fails("APPROVAL_NOT_FOUND", "approvals", "approve", aid)
    r = boss.ok("approvals", "reject", aid, "--reason", "not now")
    assert f"rejected {aid}" in r.stdout
    st = owner.json("status", gid)
    assert st["state"] == "active" and st["dissolution_state"] == "rejected"
    boss.fails("APPROVAL_CLOSED", "approvals", "approve", aid)
    # Again, approved this time: on to the cooling-off.
    owner.ok("dissolve", gid, "--messages", "keep", "--confirm-name", "team", "--no-wait")
    aid = [a for a in boss.json("approvals", "list")["items"] if a["group"] == gid][0]["id"]
    a = boss.json("approvals", "approve", aid, "--reason", "ok")
    assert a["state"] == "approved" and a["reason"] == "ok"
    st = owner.json("status", gid)
    assert st["state"] == "pending" and 48 * H - 2 <= st["seconds_left"] <= 48 * H
    owner.ok("cancel", gid)
    # Protection off: a new request skips the review.
    outsider.fails("FORBIDDEN_ORG", "org", "protection", org, "off")
    boss.fails("USAGE", "org", "protection", org, "maybe", exit=2)
    assert "is off" in boss.ok("org", "protection", org, "off").stdout
    st = owner.json("dissolve", gid, "--messages", "keep", "--confirm-name", "team", "--no-wait")
    assert st["state"] == "pending"
    owner.ok("cancel", gid)
    assert boss.json("org", "protection", org, "on")["dissolve_protection"] is True


def test_education_dissolve_asks_for_the_password(mk):
    principal, teacher, kid = mk(), mk(), mk()
    school = expect(principal.api.post("/v1/orgs", {"name": "school", "kind": "school"}), 201)["id"]
    expect(principal.api.post(f"/v1/orgs/{school}/admins", {"openid": teacher.openid}), 204)
    gid = teacher.json("group", "create", "class 3", "--kind", "education", "--org", school)["id"]
    teacher.ok("group", "add", gid, kid.openid)
    args = ("dissolve", gid, "--messages", "delete", "--confirm-name", "class 3", "--no-wait")
    # No password and no terminal: nothing is sent, the group stays active.
    r = teacher.fails("USAGE", *args, exit=2)
    assert "step-up" in r.stdout
    assert teacher.json("group", "show", gid)["state"] == "active"
    teacher.fails("BAD_CREDENTIALS", *args, "--password", "wrong password")
    assert teacher.json("group", "show", gid)["state"] == "active"
    r = teacher.ok(*args, env={"QUN_PASSWORD": PASSWORD})
    assert f"group {gid}: review" in r.stdout and "an admin of the school" in r.stdout
    aid = [a for a in principal.json("approvals")["items"] if a["group"] == gid][0]["id"]
    principal.ok("approvals", "approve", aid)
    assert teacher.json("status", gid)["state"] == "pending"
    teacher.ok("cancel", gid)


def test_legal_hold_place_list_release(mk):
    owner = mk()
    judge = mk("judge")
    gid = owner.json("group", "create", "team")["id"]
    owner.fails("FORBIDDEN_COMPLIANCE", "hold", "place", gid, "--reason", "x")
    judge.fails("USAGE", "hold", "place", gid, exit=2)
    hold = judge.json("hold", "place", gid, "--reason", "case 42")
    assert hold["reason"] == "case 42" and hold["placed_by"] == judge.openid
    listed = judge.ok("hold", "list", gid).stdout
    assert hold["id"] in listed and "active" in listed and "case 42" in listed
    owner.ok("dissolve", gid, "--messages", "delete", "--confirm-name", "team", "--no-wait")
    st = owner.json("status", gid)
    assert st["held"] is True
    assert "legal hold" in owner.ok("status", gid).stdout
    judge.fails("HOLD_NOT_FOUND", "hold", "release", gid, "h_nope")
    r = judge.ok("hold", "release", gid, hold["id"])
    assert f"released hold {hold['id']}" in r.stdout
    items = judge.json("hold", "list", gid)["items"]
    assert items[0]["released_by"] == judge.openid
    assert "released" in judge.ok("hold", "list", gid).stdout
    judge.fails("HOLD_NOT_FOUND", "hold", "release", gid, hold["id"])
    owner.ok("cancel", gid)


def test_restore_with_password_and_by_server_admin(mk):
    owner, member = mk(), mk()
    root = mk("root")
    gids = []
    for name in ("one", "two"):
        gid = owner.json("group", "create", name)["id"]
        owner.ok("group", "add", gid, member.openid)
        owner.ok("post", gid, "still here")
        owner.ok("dissolve", gid, "--messages", "keep", "--confirm-name", name, "--no-wait")
        gids.append(gid)
    advance(owner, 48 * H + 1)
    for gid in gids:
        st = wait_state(owner, gid, "dissolved")
        assert "restorable until" in owner.ok("status", gid).stdout
        assert st["grace_until"] > st["dissolved_at"]
    one, two = gids
    member.fails("GROUP_GONE", "restore", one, "--password", PASSWORD)
    # The owner needs the password; without one and without a terminal nothing happens.
    r = owner.fails("USAGE", "restore", one, exit=2)
    assert "password again" in r.stderr
    owner.fails("BAD_CREDENTIALS", "restore", one, "--password", "wrong password")
    r = owner.ok("restore", one, env={"QUN_PASSWORD": PASSWORD})
    assert f"restored group {one}" in r.stdout and "active" in r.stdout
    assert member.json("group", "show", one)["state"] == "active"
    assert "still here" in member.ok("history", one).stdout
    owner.fails("NOT_RESTORABLE", "restore", one, "--password", PASSWORD)
    # A server admin restores without a step-up.
    g = root.json("restore", two)
    assert g["id"] == two and g["state"] == "active"
    assert member.json("group", "show", two)["state"] == "active"


def test_status_of_a_purged_group_reads_its_receipt_in_words(mk):
    """Once the purge ran, `qun status` gives its receipt as words and counts in the
    reader's language, never as the API's keys."""
    owner, member = mk(), mk()
    gid = owner.json("group", "create", "purged team")["id"]
    owner.ok("group", "add", gid, member.openid)
    owner.ok("post", gid, "gone soon")
    owner.ok("dissolve", gid, "--messages", "delete", "--confirm-name", "purged team", "--no-wait")
    advance(owner, 48 * H + 1)
    wait_state(owner, gid, "dissolved")
    advance(owner, 7 * 24 * H + 1)  # the grace of the standard pack
    receipt = wait_state(owner, gid, "purged")["receipt"]
    assert receipt["messages_deleted"] >= 1 and receipt["members_removed"] == 2
    en = owner.ok("status", gid, env={"LANG": "C", "LC_ALL": ""}).stdout
    line = next(l for l in en.splitlines() if "receipt:" in l)
    # The messages, files and memberships first, then only what the purge had any of.
    assert f"receipt:    messages deleted {receipt['messages_deleted']}, files removed 0, memberships removed 2" \
        in line and " 0," not in line.split("memberships removed 2")[1], line
    zh = owner.ok("status", gid, env={"LANG": "zh_CN.UTF-8", "LC_ALL": ""}).stdout
    line = next(l for l in zh.splitlines() if "回执：" in l)
    assert f"删除的消息 {receipt['messages_deleted']}，移除的文件 0，移除的成员关系 2" in line, line
    for text in (en, zh):
        assert not re.search(r"[a-z]+_[a-z_]+=", text), text  # no key=value of the API left


def test_events_follows_the_stream(tmp_path):
    """qun events prints live events as the server sends them."""
    import subprocess
    import time as _time
    from conftest import QUN, Server, register, make_group, expect, stop_clean
    s = Server().start()
    try:
        alice, bob = register(s.url), register(s.url)
        gid = make_group(alice, members=[bob])
        env = dict(os.environ, QUN_URL=s.url, QUN_TOKEN=bob.token, XDG_CONFIG_HOME=str(tmp_path))
        p = subprocess.Popen([QUN, "events", "--raw"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        import select
        seen = ""

        def read_until(what, seconds):
            nonlocal seen
            deadline = _time.time() + seconds
            while what not in seen and _time.time() < deadline:
                r, _, _ = select.select([p.stdout], [], [], 0.5)
                if r:  # raw reads: a buffered reader would hide data from select
                    seen += os.read(p.stdout.fileno(), 65536).decode()

        # The stream starts at the present: post once it is open (a fixed sleep was once
        # too short, and the post went before the stream).
        read_until(": stream open", 10)
        assert ": stream open" in seen, seen
        expect(alice.post(f"/v1/groups/{gid}/messages", {"text": "hello from alice"}), 201)
        read_until("hello from alice", 10)
        p.kill()
        p.wait()
        assert "event: message.created" in seen and "hello from alice" in seen, seen
    finally:
        stop_clean(s)
