# SPDX-License-Identifier: MIT
"""Notifications that reach people: the in-app inbox (each kind to the right people only,
live over the event stream), mail addresses verified by a code, and notification mail
sent from the outbox to a real SMTP server on loopback (Debian's python3-aiosmtpd, saving
into a Maildir): the approval requests of a school admin and a guardian, a dissolution's
notice to the members that have an address, a relay that is down (mail waits, requests
do not), and invitations by mail for people with no account yet."""
import email
import email.policy
import json
import mailbox
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

from conftest import Client, Server, age_sessions, expect, free_port, make_group, register, stop_clean, transfer
from test_14_events import Stream

H = 3600


class Smtp:
    """aiosmtpd on 127.0.0.1:port, saving every message into a Maildir."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="qun-smtp-")
        self.maildir = os.path.join(self.dir, "Maildir")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}",
             "-c", "aiosmtpd.handlers.Mailbox", self.maildir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("aiosmtpd did not start")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def messages(self):
        if not os.path.isdir(self.maildir):
            return []
        out = []
        for key in mailbox.Maildir(self.maildir, create=False).keys():
            with open(os.path.join(self.maildir, "new", key) if os.path.exists(
                    os.path.join(self.maildir, "new", key)) else os.path.join(self.maildir, "cur", key), "rb") as f:
                out.append(email.message_from_binary_file(f, policy=email.policy.default))
        return out

    def to(self, address, kind=None):
        return [m for m in self.messages()
                if address in str(m["To"]) and (kind is None or m["X-Qun-Kind"] == kind)]

    def wait(self, address, kind, n=1, timeout=15):
        deadline = time.time() + timeout
        while True:
            got = self.to(address, kind)
            if len(got) >= n:
                return got
            assert time.time() < deadline, f"no {kind} mail to {address}; have {[(m['To'], m['X-Qun-Kind']) for m in self.messages()]}"
            time.sleep(0.1)


def body(m):
    return m.get_body(("plain",)).get_content()


@pytest.fixture(scope="module")
def smtp():
    s = Smtp().start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def srv(smtp):
    s = Server(env={"QUN_TEST_CLOCK": "1"},
               extra=["--set", f"smtp_url=smtp://127.0.0.1:{smtp.port}", "--set", "smtp_from=qun@example.test",
                      "--set", "console_url=http://chat.example.test", "--set", "smtp_backoff_base=1"]).start()
    yield s
    stop_clean(s)


def address_of(c):
    return f"{c.username.lower()}@example.test"


def verify_address(c, smtp, lang_header=None):
    """Add c's address and type back the code the mail brought; returns the mail."""
    headers = {"Accept-Language": lang_header} if lang_header else None
    a = expect(c.req("POST", "/v1/me/email", {"address": address_of(c)}, headers=headers), 202)
    assert a["verified"] is False and a["code_expires_at"] > time.time() - 5
    m = smtp.wait(address_of(c), "email.verify")[-1]
    code = re.search(r"\b(\d{8})\b", str(m["Subject"])).group(1)
    assert code in body(m)
    got = expect(c.post("/v1/me/email/verify", {"code": code}), 200)
    assert got["address"] == address_of(c) and got["verified"] is True
    return m


def inbox(c, **q):
    qs = "&".join(f"{k}={v}" for k, v in q.items())
    return expect(c.get("/v1/me/notifications" + (f"?{qs}" if qs else "")), 200)


def kinds(c):
    return [n["kind"] for n in inbox(c, limit=200)["items"]]


def request(owner, gid, messages="delete", **extra):
    p = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": messages}), 200)
    return owner.post(f"/v1/groups/{gid}/dissolution", {"messages": messages, "confirmation_token": p["confirmation_token"],
                                                        "typed_name": p["name"], **extra})


def school_with_class(url, name="class 3b"):
    """A school (principal: its first admin, teacher: a second admin), a kid with a parent
    as guardian, and an education group the teacher owns with the kid in it."""
    principal, teacher, kid, parent = (register(url) for _ in range(4))
    school = expect(principal.post("/v1/orgs", {"name": "Riverside School", "kind": "school"}), 201)["id"]
    expect(principal.post(f"/v1/orgs/{school}/admins", {"openid": teacher.openid}), 204)
    expect(principal.post(f"/v1/orgs/{school}/guardians", {"minor": kid.openid, "guardian": parent.openid}), 204)
    gid = expect(teacher.post("/v1/groups", {"name": name, "kind": "education", "org": school}), 201)["id"]
    expect(teacher.post(f"/v1/groups/{gid}/members", {"openid": kid.openid}), 201)
    return principal, teacher, kid, parent, school, gid


def ask_to_dissolve_education(teacher, gid):
    return expect(request(teacher, gid, password="correct horse"), 202)


# ---- addresses ----

def test_an_address_is_verified_by_the_code_mailed_to_it(srv, smtp):
    ann = register(srv.url)
    assert expect(ann.get("/v1/me/email"), 200) == {"address": None}
    expect(ann.post("/v1/me/email/verify", {"code": "12345678"}), 404, "EMAIL_NOT_FOUND")
    expect(ann.post("/v1/me/email", {"address": "not an address"}), 422, "FIELD_INVALID")
    expect(ann.post("/v1/me/email", {"address": "a@b.c", "x": 1}), 422, "FIELD_UNKNOWN")
    expect(ann.post("/v1/me/email", {}), 422, "FIELD_MISSING")
    expect(ann.post("/v1/me/email", {"address": address_of(ann)}), 202)
    # A second code within the minute is refused; the first one is still the one to type.
    expect(ann.post("/v1/me/email", {"address": address_of(ann)}), 429, "EMAIL_CODE_TOO_SOON")
    # Nor to another address: an account cannot make the server mail a stream of strangers.
    expect(ann.post("/v1/me/email", {"address": "stranger@example.test"}), 429, "EMAIL_CODE_TOO_SOON")
    m = smtp.wait(address_of(ann), "email.verify")[0]
    assert m["From"].addresses[0].addr_spec == "qun@example.test"
    assert m["Message-ID"].endswith("@example.test>")
    code = re.search(r"\b(\d{8})\b", str(m["Subject"])).group(1)
    assert f"Hello {ann.username}" in body(m) and address_of(ann) in body(m)
    wrong = "0" * 8 if code != "0" * 8 else "1" * 8
    expect(ann.post("/v1/me/email/verify", {"code": wrong}), 422, "EMAIL_CODE_INVALID")
    expect(ann.post("/v1/me/email/verify", {"code": "abc"}), 422, "EMAIL_CODE_INVALID")
    # The database keeps neither the code nor anything a code can be matched with unsalted.
    db = sqlite3.connect(os.path.join(srv.data, "qun.db"))
    rows = db.execute("SELECT address, code_salt, code_hash FROM email_addresses e JOIN users u ON u.id = e.user_id "
                      "WHERE u.username = ?", (ann.username,)).fetchall()
    db.close()
    assert rows and all(code not in str(v) for v in rows[0])
    got = expect(ann.post("/v1/me/email/verify", {"code": code}), 200)
    assert got["verified"] is True and got["verified_at"] > 0
    expect(ann.post("/v1/me/email/verify", {"code": code}), 409, "EMAIL_CODE_EXPIRED")
    assert expect(ann.get("/v1/me/email"), 200)["verified"] is True
    # Setting the same verified address again changes nothing and sends nothing.
    assert expect(ann.post("/v1/me/email", {"address": address_of(ann)}), 200)["verified"] is True
    time.sleep(0.5)
    assert len(smtp.to(address_of(ann), "email.verify")) == 1
    # The code mail's secret is gone from the outbox once it was sent.
    db = sqlite3.connect(os.path.join(srv.data, "qun.db"))
    params = db.execute("SELECT params FROM mail_outbox WHERE to_addr = ? AND kind = 'email.verify'",
                        (address_of(ann),)).fetchall()
    db.close()
    assert params == [("{}",)]
    assert expect(ann.delete("/v1/me/email"), 200) == {"deleted": True}
    expect(ann.delete("/v1/me/email"), 404, "EMAIL_NOT_FOUND")


def test_an_account_has_at_most_ten_codes_a_day_whatever_the_address(srv, smtp):
    eve = register(srv.url)
    for i in range(10):
        expect(eve.post("/v1/me/email", {"address": f"target{i}@example.test"}), 202)
        smtp.wait(f"target{i}@example.test", "email.verify")  # a change drops mail not yet sent
        expect(eve.post("/v1/test/clock", {"advance": 61}), 200)
    # Removing the address does not reset the count.
    assert expect(eve.delete("/v1/me/email"), 200) == {"deleted": True}
    expect(eve.post("/v1/me/email", {"address": "target10@example.test"}), 429, "EMAIL_CODE_LIMIT")
    assert not smtp.to("target10@example.test")
    expect(eve.post("/v1/test/clock", {"advance": 86400}), 200)
    expect(eve.post("/v1/me/email", {"address": "target10@example.test"}), 202)
    smtp.wait("target10@example.test", "email.verify")


def test_wrong_codes_lock_the_account_like_wrong_passwords(srv, smtp):
    bob = register(srv.url)
    expect(bob.post("/v1/me/email", {"address": address_of(bob)}), 202)
    m = smtp.wait(address_of(bob), "email.verify")[0]
    code = re.search(r"\b(\d{8})\b", str(m["Subject"])).group(1)
    wrong = "0" * 8 if code != "0" * 8 else "1" * 8
    answers = [bob.post("/v1/me/email/verify", {"code": wrong}).status_code for _ in range(10)]
    assert answers[:9] == [422] * 9 and answers[9] == 429
    # Locked: even the right code is refused until the lock ends.
    expect(bob.post("/v1/me/email/verify", {"code": code}), 429, "LOCKED_OUT")
    assert expect(bob.get("/v1/me/email"), 200)["verified"] is False


def test_the_language_follows_accept_language_until_chosen(srv, smtp):
    li = register(srv.url)
    assert expect(li.get("/v1/me/language", headers={"Accept-Language": "zh-CN,zh;q=0.9"}), 200) == {
        "lang": "zh-CN", "chosen": False}
    m = verify_address(li, smtp, lang_header="zh-CN,zh;q=0.9")
    assert str(m["Subject"]).startswith("你的 qun 验证码") and "你好" in body(m)
    assert expect(li.get("/v1/me/language"), 200) == {"lang": "zh-CN", "chosen": True}
    assert expect(li.post("/v1/me/language", {"lang": "en"}), 200) == {"lang": "en", "chosen": True}
    expect(li.post("/v1/me/language", {"lang": "fr"}), 422, "FIELD_INVALID")
    expect(li.post("/v1/me/language", {}), 422, "FIELD_MISSING")


# ---- the inbox ----

def test_each_kind_reaches_the_right_people_only(srv, smtp):
    owner, ann, bob, outsider = (register(srv.url) for _ in range(4))
    gid = expect(owner.post("/v1/groups", {"name": "Book club 读书会"}), 201)["id"]
    expect(owner.post(f"/v1/groups/{gid}/members", {"openid": ann.openid}), 201)
    # An invitation: to the invitee, with the group's and the inviter's names.
    inv = expect(owner.post(f"/v1/groups/{gid}/invitations", {"username": bob.username}), 201)
    n = inbox(bob)["items"][0]
    assert n["kind"] == "invitation.received" and n["read"] is False
    assert n["params"]["group_name"] == "Book club 读书会" and n["params"]["invitation"] == inv["id"]
    assert n["params"]["by"]["username"] == owner.username and n["params"]["role"] == "member"
    expect(bob.post(f"/v1/invitations/{inv['id']}/accept", {}), 200)
    # A transfer offer: to the new owner only.
    age_sessions(srv.url)
    expect(transfer(owner, gid, ann.openid), 202)
    n = inbox(ann)["items"][0]
    assert n["kind"] == "transfer.offered" and n["params"]["from"]["username"] == owner.username
    assert n["params"]["group"] == gid and n["params"]["group_name"] == "Book club 读书会"
    expect(ann.post(f"/v1/groups/{gid}/transfer/decline", {}), 200)
    # A dissolution notice, its cancellation: every member but the owner who did it.
    st = expect(request(owner, gid), 202)
    for m in (ann, bob):
        n = inbox(m)["items"][0]
        assert n["kind"] == "dissolution.pending" and n["params"]["dissolves_at"] == st["due_at"]
        assert n["params"]["by"]["username"] == owner.username and n["params"]["messages"] == "delete"
    expect(owner.delete(f"/v1/groups/{gid}/dissolution"), 200)
    assert [kinds(m)[0] for m in (ann, bob)] == ["dissolution.cancelled"] * 2
    # Completion by the timer reaches everyone, the owner too; the restore every member but the owner.
    expect(request(owner, gid), 202)
    expect(owner.post("/v1/test/clock", {"advance": 49 * H}), 200)
    deadline = time.time() + 10
    while "dissolution.dissolved" not in kinds(owner):
        assert time.time() < deadline, kinds(owner)
        time.sleep(0.1)
    assert all(kinds(m)[0] == "dissolution.dissolved" for m in (ann, bob))
    expect(owner.post(f"/v1/groups/{gid}/restore", {"password": "correct horse"}), 200)
    assert [kinds(m)[0] for m in (ann, bob)] == ["dissolution.restored"] * 2
    assert kinds(owner) == ["dissolution.dissolved"]
    assert kinds(ann) == ["dissolution.restored", "dissolution.dissolved", "dissolution.pending",
                          "dissolution.cancelled", "dissolution.pending", "transfer.offered"]
    assert kinds(bob) == ["dissolution.restored", "dissolution.dissolved", "dissolution.pending",
                          "dissolution.cancelled", "dissolution.pending", "invitation.received"]
    assert inbox(outsider)["items"] == [] and inbox(outsider)["unread"] == 0


def test_a_large_groups_notice_reaches_every_member_after_the_answer(srv, smtp):
    """Above 64 members the notices are written by a job after the request's commit, a
    slice per transaction: the answer does not wait for them, and still every member gets
    each notice once, live and by mail, and the one who acted gets none."""
    owner, ann, bob = (register(srv.url) for _ in range(3))
    verify_address(ann, smtp)
    gid = make_group(owner, members=[ann, bob], name="Parents 家长群")
    for i in range(100):
        name = f"p{uuid.uuid4().hex[:10]}"
        u = expect(requests.post(srv.url + "/v1/users", json={"username": name, "password": "correct horse"},
                                 timeout=30), 201)
        expect(owner.post(f"/v1/groups/{gid}/members", {"openid": u["openid"]}), 201)
    sa = Stream(ann)
    try:
        st = expect(request(owner, gid), 202)
        ev = sa.wait("notification.created", timeout=10)
        assert ev["data"]["kind"] == "dissolution.pending" and ev["data"]["params"]["group_name"] == "Parents 家长群"
        assert ev["data"]["params"]["dissolves_at"] == st["due_at"]
        assert ev["data"]["params"]["by"]["username"] == owner.username
        assert ev["data"] == inbox(ann)["items"][0]
        m = smtp.wait(address_of(ann), "dissolution.pending")
        assert len(m) == 1 and "Parents 家长群" in str(m[0]["Subject"])
        expect(owner.delete(f"/v1/groups/{gid}/dissolution"), 200)
        assert sa.wait("notification.created", timeout=10)["data"]["kind"] == "dissolution.cancelled"
    finally:
        sa.close()

    def per_member(kind):
        db = sqlite3.connect(os.path.join(srv.data, "qun.db"))
        try:
            return db.execute(
                "SELECT COUNT(*), COUNT(DISTINCT n.user_id), SUM(CASE WHEN u.username = ? THEN 1 ELSE 0 END) "
                "FROM notifications n JOIN users u ON u.id = n.user_id WHERE n.kind = ? AND n.params LIKE ?",
                (owner.username, kind, f'%"group":"{gid}"%')).fetchone()
        finally:
            db.close()

    deadline = time.time() + 15
    while per_member("dissolution.cancelled")[0] < 102:
        assert time.time() < deadline, per_member("dissolution.cancelled")
        time.sleep(0.1)
    for kind in ("dissolution.pending", "dissolution.cancelled"):
        assert tuple(per_member(kind)) == (102, 102, 0), kind
    assert kinds(bob)[:2] == ["dissolution.cancelled", "dissolution.pending"]
    assert "dissolution.pending" not in kinds(owner)
    db = sqlite3.connect(os.path.join(srv.data, "qun.db"))
    try:
        assert db.execute("SELECT COUNT(*) FROM notice_fanouts").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM jobs WHERE kind = 'notify_fanout' AND state != 'done'").fetchone()[0] == 0
    finally:
        db.close()


@pytest.mark.slow
def test_a_purge_at_once_waits_for_the_notices_to_a_large_group():
    """With no cooling-off and no grace the purge starts with the notices: it removes the
    memberships only after the last slice of `dissolution.dissolved` (here twelve slices
    of 512, more than the purge has steps before it reaches the members) is written, so every
    member is told, the owner too, and nobody twice."""
    s = Server(env={"QUN_TEST_CLOCK": "1"},
               extra=["--set", "cooling_off=0", "--set", "purge_grace=0", "--set", "notice=0"]).start()
    try:
        owner, ann = register(s.url), register(s.url)
        gid = make_group(owner, members=[ann], name="School run 接送")
        db = sqlite3.connect(os.path.join(s.data, "qun.db"))
        try:
            tag = uuid.uuid4().hex[:8]
            db.executemany("INSERT INTO users(openid, username, username_key, pwhash, password_changed_at, created_at) "
                           "VALUES (?, ?, ?, 'x', 1, 1)",
                           [(f"u_{tag}{i:05d}", f"k{tag}{i:05d}", f"k{tag}{i:05d}") for i in range(6000)])
            row = db.execute("SELECT id FROM groups WHERE gid = ?", (gid,)).fetchone()[0]
            ids = [r[0] for r in db.execute("SELECT id FROM users WHERE username LIKE ?", (f"k{tag}%",))]
            db.executemany("INSERT INTO members(group_id, user_id, role, joined_at) VALUES (?, ?, 'member', 1)",
                           [(row, i) for i in ids])
            db.execute("UPDATE groups SET member_count = member_count + 6000 WHERE id = ?", (row,))
            db.commit()
        finally:
            db.close()
        expect(request(owner, gid), 202)
        # How soon is benchmark 9's question; this one waits for the outcome: 10 s alone
        # here, over 30 s once on PostgreSQL with three suites and the browsers beside it.
        deadline = time.time() + 120
        while True:
            st = expect(owner.get(f"/v1/groups/{gid}/dissolution"), 200)
            if st["state"] == "purged":
                break
            assert time.time() < deadline, st
            time.sleep(0.1)
        assert st["receipt"]["members_removed"] == 6002
        db = sqlite3.connect(os.path.join(s.data, "qun.db"))
        try:
            for kind, want in (("dissolution.pending", 6001), ("dissolution.dissolved", 6002)):
                got = db.execute("SELECT COUNT(*), COUNT(DISTINCT user_id) FROM notifications WHERE kind = ? "
                                 "AND params LIKE ?", (kind, f'%"group":"{gid}"%')).fetchone()
                assert tuple(got) == (want, want), kind
            assert db.execute("SELECT COUNT(*) FROM notice_fanouts").fetchone()[0] == 0
        finally:
            db.close()
        assert kinds(ann)[:2] == ["dissolution.dissolved", "dissolution.pending"]
        assert kinds(owner)[0] == "dissolution.dissolved"
    finally:
        stop_clean(s)


def test_paging_reading_and_bad_input(srv):
    owner, ann = register(srv.url), register(srv.url)
    for i in range(3):
        g = expect(owner.post("/v1/groups", {"name": f"g{i}"}), 201)["id"]
        expect(owner.post(f"/v1/groups/{g}/invitations", {"username": ann.username}), 201)
    page = inbox(ann, limit=2)
    assert [n["params"]["group_name"] for n in page["items"]] == ["g2", "g1"] and page["unread"] == 3
    rest = inbox(ann, limit=2, after=page["next_cursor"])
    assert [n["params"]["group_name"] for n in rest["items"]] == ["g0"] and rest.get("next_cursor") is None
    assert expect(ann.get("/v1/me/notifications/unread"), 200) == {"unread": 3}
    upto = page["items"][1]["seq"]
    assert expect(ann.post("/v1/me/notifications/read", {"upto": upto}), 200) == {"read": 2, "unread": 1}
    assert [n["read"] for n in inbox(ann)["items"]] == [False, True, True]  # up to a seq: the older ones
    assert expect(ann.post("/v1/me/notifications/read", {}), 200) == {"read": 1, "unread": 0}
    # Reading marks only the caller's own notifications.
    assert expect(owner.post("/v1/me/notifications/read", {"upto": upto}), 200) == {"read": 0, "unread": 0}
    for body_, code in [({"upto": 0}, "FIELD_INVALID"), ({"upto": "7"}, "FIELD_INVALID"),
                        ({"upto": -1}, "FIELD_INVALID"), ({"all": True}, "FIELD_UNKNOWN")]:
        expect(ann.post("/v1/me/notifications/read", body_), 422, code)
    expect(ann.req("POST", "/v1/me/notifications/read", raw="[1]"), 400, "BAD_JSON")
    expect(ann.get("/v1/me/notifications?limit=0"), 422, "FIELD_INVALID")
    expect(ann.get("/v1/me/notifications?after=x"), 400, "CURSOR_INVALID")
    expect(Client(srv.url).get("/v1/me/notifications"), 401, "UNAUTHENTICATED")
    expect(Client(srv.url, token="qun_nope").post("/v1/me/notifications/read", {}), 401, "TOKEN_INVALID")
    expect(ann.delete("/v1/me/notifications"), 405, "METHOD_NOT_ALLOWED")


def test_notification_created_is_live_for_its_person_only(srv):
    owner, ann, other = register(srv.url), register(srv.url), register(srv.url)
    gid = make_group(owner, members=[other])
    sa, so = Stream(ann), Stream(other)
    try:
        expect(owner.post(f"/v1/groups/{gid}/invitations", {"username": ann.username}), 201)
        ev = sa.wait("notification.created", timeout=10)
        assert ev["data"]["kind"] == "invitation.received" and ev["data"]["params"]["group_name"] == "team"
        assert ev["data"] == inbox(ann)["items"][0]
        assert [e for e in so.quiet(0.5) if e["event"] == "notification.created"] == []
    finally:
        sa.close()
        so.close()


# ---- mail ----

def test_approval_requests_reach_a_school_admin_and_a_guardian_by_mail(srv, smtp):
    principal, teacher, kid, parent, school, gid = school_with_class(srv.url)
    verify_address(principal, smtp)
    verify_address(parent, smtp, lang_header="zh-CN")
    expect(teacher.post(f"/v1/groups/{gid}/messages", {"text": "homework"}), 201)
    ask_to_dissolve_education(teacher, gid)
    # In the inbox: the impact figures and names, never ids alone.
    n = [x for x in inbox(principal)["items"] if x["kind"] == "approval.requested"][0]["params"]
    assert n["approval_kind"] == "school_admin" and n["group_name"] == "class 3b"
    assert n["org_name"] == "Riverside School" and n["requested_by"]["username"] == teacher.username
    assert n["impact"] == {"members": 2, "messages": 1, "files": 0, "messages_rule": "delete"}
    g = [x for x in inbox(parent)["items"] if x["kind"] == "approval.requested"][0]["params"]
    assert g["approval_kind"] == "guardian" and g["subject"]["username"] == kid.username
    # The teacher, an admin of the school too, is not asked to approve their own request.
    assert "approval.requested" not in kinds(teacher)
    # By mail: the school admin in English, the guardian in Chinese (the language they asked in).
    m = smtp.wait(address_of(principal), "approval.requested")[0]
    assert str(m["Subject"]) == "Your approval is needed: dissolve “class 3b”"
    text = body(m)
    assert teacher.username in text and "an admin of the school “Riverside School”" in text
    assert "2 members, 1 messages (to be deleted), 0 files" in text
    assert "http://chat.example.test/#/approvals" in text
    m = smtp.wait(address_of(parent), "approval.requested")[0]
    assert str(m["Subject"]) == "需要你的批准：解散群组「class 3b」"
    assert f"{kid.username} 的监护人" in body(m) and m["Content-Language"] == "zh-CN"
    assert not smtp.to(address_of(teacher))


def test_a_dissolution_notice_reaches_the_members_with_addresses(srv, smtp):
    owner, ann, bob = (register(srv.url) for _ in range(3))
    verify_address(ann, smtp)
    verify_address(owner, smtp)
    gid = make_group(owner, members=[ann, bob], name="Hiking 徒步")
    st = expect(request(owner, gid, messages="keep"), 202)
    m = smtp.wait(address_of(ann), "dissolution.pending")
    assert len(m) == 1
    assert str(m[0]["Subject"]).startswith("“Hiking 徒步” will be dissolved on ")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(st["due_at"]))
    assert when in body(m[0]) and owner.username in body(m[0]) and "readable by the owner only" in body(m[0])
    time.sleep(1)
    # bob has no address; the owner, who asked for it, is not told.
    assert smtp.to(address_of(owner), "dissolution.pending") == []
    assert kinds(bob)[0] == "dissolution.pending"


def test_an_smtp_server_that_is_down_delays_mail_without_losing_it_or_slowing_requests():
    down = Smtp()  # nothing listens on its port yet
    s = Server(env={"QUN_TEST_CLOCK": "1"},
               extra=["--set", f"smtp_url=smtp://127.0.0.1:{down.port}", "--set", "smtp_from=qun@example.test",
                      "--set", "smtp_backoff_base=1"]).start()
    try:
        owner, ann = register(s.url), register(s.url)
        gid = make_group(owner, members=[ann])
        t0 = time.time()
        expect(ann.post("/v1/me/email", {"address": address_of(ann)}), 202)
        took = [time.time() - t0]
        for i in range(10):
            t0 = time.time()
            expect(owner.post(f"/v1/groups/{gid}/messages", {"text": f"m{i}"}), 201)
            took.append(time.time() - t0)
        assert max(took) < 1.0, took
        deadline = time.time() + 10
        while "not sent" not in s.read_log():
            assert time.time() < deadline, s.read_log()[-2000:]
            time.sleep(0.1)
        db = sqlite3.connect(os.path.join(s.data, "qun.db"))
        row = db.execute("SELECT state, attempts FROM mail_outbox WHERE to_addr = ?", (address_of(ann),)).fetchone()
        db.close()
        assert row[0] == "pending" and row[1] >= 1
        # The relay comes back: the waiting mail arrives, once.
        down.start()
        expect(owner.post("/v1/test/clock", {"advance": 120}), 200)  # past any backoff, within the code's life
        m = down.wait(address_of(ann), "email.verify", timeout=20)
        code = re.search(r"\b(\d{8})\b", str(m[0]["Subject"])).group(1)
        expect(ann.post("/v1/me/email/verify", {"code": code}), 200)
        expect(request(owner, gid), 202)
        down.wait(address_of(ann), "dissolution.pending")
        time.sleep(1)
        assert len(down.to(address_of(ann), "email.verify")) == 1
        metrics = requests.get(s.url + "/metrics", timeout=10).text
        sent = int(re.search(r"^qun_mail_sent_total (\d+)$", metrics, re.M).group(1))
        failed = int(re.search(r"^qun_mail_failures_total (\d+)$", metrics, re.M).group(1))
        assert sent == 2 and failed >= 1, metrics
    finally:
        stop_clean(s)
        down.stop()


def test_mail_that_runs_out_of_attempts_goes_dead_and_a_new_code_can_be_asked():
    down = Smtp()  # nothing listens on its port until the end
    s = Server(env={"QUN_TEST_CLOCK": "1"},
               extra=["--set", f"smtp_url=smtp://127.0.0.1:{down.port}", "--set", "smtp_from=qun@example.test",
                      "--set", "smtp_backoff_base=1", "--set", "smtp_max_attempts=2"]).start()
    try:
        ann = register(s.url)
        expect(ann.post("/v1/me/email", {"address": address_of(ann)}), 202)

        def outbox():
            db = sqlite3.connect(os.path.join(s.data, "qun.db"))
            try:
                return db.execute("SELECT state, attempts FROM mail_outbox WHERE to_addr = ? ORDER BY id",
                                  (address_of(ann),)).fetchall()
            finally:
                db.close()

        deadline = time.time() + 20
        while outbox()[0][0] != "dead":
            assert time.time() < deadline, (outbox(), s.read_log()[-2000:])
            expect(ann.post("/v1/test/clock", {"advance": 30}), 200)  # past the backoff
            time.sleep(0.2)
        assert outbox() == [("dead", 2)]
        metrics = requests.get(s.url + "/metrics", timeout=10).text
        assert re.search(r"^qun_mail_dead_total 1$", metrics, re.M), metrics
        assert int(re.search(r"^qun_mail_failures_total (\d+)$", metrics, re.M).group(1)) == 2, metrics
        # The relay comes back: the dead mail stays dead, and asking again sends a new code.
        down.start()
        expect(ann.post("/v1/test/clock", {"advance": 120}), 200)
        expect(ann.post("/v1/me/email", {"address": address_of(ann)}), 202)
        m = down.wait(address_of(ann), "email.verify", timeout=20)
        time.sleep(1)
        assert len(down.to(address_of(ann), "email.verify")) == 1
        assert [r[0] for r in outbox()] == ["dead", "sent"]
        code = re.search(r"\b(\d{8})\b", str(m[0]["Subject"])).group(1)
        expect(ann.post("/v1/me/email/verify", {"code": code}), 200)
    finally:
        stop_clean(s)
        down.stop()


def test_mail_settings_are_checked_at_startup():
    s = Server(extra=["--set", "smtp_url=http://127.0.0.1:25", "--set", "smtp_from=qun@example.test"])
    with pytest.raises(RuntimeError, match="smtp_url"):
        s.start()
    s = Server(extra=["--set", "smtp_url=smtp://127.0.0.1:25"])
    with pytest.raises(RuntimeError, match="smtp_from"):
        s.start()


def test_without_smtp_addresses_and_invitations_by_mail_are_refused(url):
    ann = register(url)
    expect(ann.post("/v1/me/email", {"address": address_of(ann)}), 409, "MAIL_DISABLED")
    org = expect(ann.post("/v1/orgs", {"name": "acme", "kind": "enterprise"}), 201)["id"]
    expect(ann.post(f"/v1/orgs/{org}/email-invites", {"address": "x@example.test", "role": "admin"}), 409,
           "MAIL_DISABLED")


# ---- invitations by mail ----

def test_a_guardian_with_no_account_is_invited_by_mail_to_approve(srv, smtp):
    principal, teacher, kid, parent, school, gid = school_with_class(srv.url, name="class 4a")
    ask_to_dissolve_education(teacher, gid)
    mum = f"mum-{kid.username.lower()}@example.test"
    bad = [({"address": mum, "role": "guardian"}, 422, "FIELD_MISSING"),
           ({"address": mum, "role": "owner", "minor": kid.openid}, 422, "FIELD_INVALID"),
           ({"address": "nope", "role": "guardian", "minor": kid.openid}, 422, "FIELD_INVALID"),
           ({"address": mum, "role": "guardian", "minor": "u_nobody"}, 404, "USER_NOT_FOUND")]
    for b, status, code in bad:
        expect(principal.post(f"/v1/orgs/{school}/email-invites", b), status, code)
    expect(parent.post(f"/v1/orgs/{school}/email-invites", {"address": mum, "role": "guardian", "minor": kid.openid}),
           403, "FORBIDDEN_ORG")
    inv = expect(principal.post(f"/v1/orgs/{school}/email-invites",
                                {"address": mum, "role": "guardian", "minor": kid.openid}), 201)
    assert inv["address"] == mum and inv["role"] == "guardian"
    m = smtp.wait(mum, "email.invite")[0]
    text = body(m)
    assert principal.username in str(m["Subject"]) and "Riverside School" in text and kid.username in text
    link = re.search(r"http://chat\.example\.test/#/invite/(qei_[0-9a-f]{64})", text)
    assert link, text
    # Only its hash is stored.
    db = sqlite3.connect(os.path.join(srv.data, "qun.db"))
    assert db.execute("SELECT COUNT(*) FROM email_invites WHERE token_hash = ?", (link.group(1),)).fetchone()[0] == 0
    db.close()
    # She signs up and redeems the link: she is the kid's guardian and is asked to approve.
    mother = register(srv.url)
    expect(mother.post("/v1/email-invites/redeem", {"token": "qei_" + "0" * 64}), 404, "EMAIL_INVITE_INVALID")
    got = expect(mother.post("/v1/email-invites/redeem", {"token": link.group(1)}), 200)
    assert got["role"] == "guardian" and got["org_name"] == "Riverside School" and len(got["approvals"]) == 1
    assert got["minor"]["username"] == kid.username
    mine = expect(mother.get("/v1/approvals"), 200)["items"]
    assert [a["id"] for a in mine] == got["approvals"] and mine[0]["group_name"] == "class 4a"
    assert expect(mother.get("/v1/me/email"), 200)["verified"] is True
    assert kinds(mother) == ["approval.requested"]
    expect(mother.post("/v1/email-invites/redeem", {"token": link.group(1)}), 404, "EMAIL_INVITE_INVALID")
    expect(mother.post(f"/v1/approvals/{got['approvals'][0]}/approve", {}), 200)


def test_an_org_admin_with_no_account_is_invited_by_mail(srv, smtp):
    boss, owner = register(srv.url), register(srv.url)
    org = expect(boss.post("/v1/orgs", {"name": "Acme 公司", "kind": "enterprise"}), 201)["id"]
    expect(boss.post(f"/v1/orgs/{org}/admins", {"openid": owner.openid}), 204)
    gid = expect(owner.post("/v1/groups", {"name": "ops", "kind": "enterprise", "org": org}), 201)["id"]
    expect(request(owner, gid), 202)
    addr = f"cfo-{boss.username.lower()}@example.test"
    expect(boss.post(f"/v1/orgs/{org}/email-invites", {"address": addr, "role": "admin", "minor": owner.openid}),
           422, "FIELD_INVALID")
    expect(boss.post(f"/v1/orgs/{org}/email-invites", {"address": addr, "role": "guardian", "minor": owner.openid}),
           403, "FORBIDDEN_ORG")
    expect(boss.post(f"/v1/orgs/{org}/email-invites", {"address": addr, "role": "admin", "lang": "zh-CN"}), 201)
    m = smtp.wait(addr, "email.invite")[0]
    assert "Acme 公司" in body(m) and "管理员" in body(m)
    token = re.search(r"#/invite/(qei_[0-9a-f]{64})", body(m)).group(1)
    cfo = register(srv.url)
    got = expect(cfo.post("/v1/email-invites/redeem", {"token": token}), 200)
    assert got["role"] == "admin" and len(got["approvals"]) == 1
    expect(cfo.post(f"/v1/approvals/{got['approvals'][0]}/approve", {}), 200)
