# SPDX-License-Identifier: MIT
"""After a dissolution, account basics and CLI polish (issue 17): what a GROUP_GONE answer
tells someone who was in the group (name, dates, what became of their data, the
successor), the pending notice's `export_code`, the cancel notice, the minor flag told
only to the school's admins and the child's guardians, and the CLI's readable notices,
successor names, lifecycle hints and `qun password`."""
import json
import os
import re
import subprocess
import time

import pytest
import requests

from conftest import QUN, Server, expect, make_group, register, relogin, stop_clean

H = 3600


@pytest.fixture(scope="module")
def srv():
    s = Server(env={"QUN_TEST_CLOCK": "1"}, extra=["--set", "admins=root"]).start()
    yield s
    stop_clean(s)


def advance(c, seconds):
    expect(c.post("/v1/test/clock", {"advance": seconds}), 200)


def wait_state(c, gid, state, timeout=10):
    deadline = time.time() + timeout
    while True:
        st = expect(c.get(f"/v1/groups/{gid}/dissolution"), 200)
        if st["state"] == state:
            return st
        assert time.time() < deadline, f"never reached {state}: {st}"
        time.sleep(0.05)


def request(owner, gid, messages="keep", **extra):
    p = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": messages, **extra}), 200)
    return owner.post(f"/v1/groups/{gid}/dissolution", {"messages": messages, "confirmation_token": p["confirmation_token"],
                                                        "typed_name": p["name"], **extra})


def notices(c, gid):
    out = []
    for m in expect(c.get(f"/v1/groups/{gid}/messages?limit=200"), 200)["items"]:
        if m["kind"] == "system":
            out.append(json.loads(m["text"]))
    return out


def qun(url, client, *args, stdin=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUN_")}
    env.update(HOME="/nonexistent", XDG_CONFIG_HOME="/nonexistent/cfg", QUN_URL=url, TZ="UTC")
    if client:
        env["QUN_TOKEN"] = client.token
    r = subprocess.run([QUN, *args], capture_output=True, text=True, env=env, timeout=60, input=stdin,
                       stdin=None if stdin is not None else subprocess.DEVNULL)
    assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


def test_gone_tells_a_member_what_happened(srv):
    owner, member, stranger = register(srv.url), register(srv.url), register(srv.url)
    gid = make_group(owner, members=[member], name="book club")
    expect(request(owner, gid, successor_name="book club 2"), 202)
    advance(owner, 48 * H + 1)
    st = wait_state(owner, gid, "dissolved")
    p = expect(member.get(f"/v1/groups/{gid}"), 410, "GROUP_GONE")
    assert p["successor"] == st["successor"]
    gone = p["gone"]
    assert gone["name"] == "book club" and gone["state"] == "dissolved"
    assert gone["dissolved_at"] == st["dissolved_at"] and gone["purge_after"] == st["grace_until"]
    assert gone["messages"] == "keep" and gone["successor_name"] == "book club 2" and gone["held"] is False
    assert {"what": "messages", "why": "owner_read_only"} in gone["kept"]
    assert {"what": "bill_lines", "why": "personal_record"} in gone["kept"]
    # Every route under the group says the same; someone never in the group learns nothing more.
    assert expect(member.get(f"/v1/groups/{gid}/messages"), 410, "GROUP_GONE")["gone"]["name"] == "book club"
    assert "gone" not in expect(stranger.get(f"/v1/groups/{gid}"), 410, "GROUP_GONE")
    # The owner restores within the grace: the password first (428), then done.
    expect(owner.post(f"/v1/groups/{gid}/restore", {}), 428, "STEP_UP_REQUIRED")
    expect(owner.post(f"/v1/groups/{gid}/restore", {"password": "correct horse"}), 200)
    assert expect(member.get(f"/v1/groups/{gid}"), 200)["state"] == "active"


def test_pending_notice_carries_an_export_code_and_cancel_a_notice(srv):
    owner, member = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[member])
    expect(request(owner, gid), 202)
    pending = [n for n in notices(member, gid) if n["notice"] == "dissolution.pending"][-1]
    assert pending["export_code"] == "SELF_EXPORT_UNTIL_DUE" and isinstance(pending["dissolves_at"], int)
    assert "export" in pending  # the old sentence stays for older clients
    expect(owner.delete(f"/v1/groups/{gid}/dissolution"), 200)
    last = notices(member, gid)[-1]
    assert last["notice"] == "dissolution.cancelled" and last["by"] == owner.openid
    # Who did it by name too, for readers who no longer see the members list.
    assert last["by_name"] == owner.username and pending["by_name"] == owner.username
    assert expect(member.get(f"/v1/groups/{gid}"), 200)["state"] == "active"


def test_minor_flag_only_for_school_admins_and_guardians(srv):
    principal, teacher, kid, parent, other = (register(srv.url) for _ in range(5))
    school = expect(principal.post("/v1/orgs", {"name": "school", "kind": "school"}), 201)["id"]
    expect(principal.post(f"/v1/orgs/{school}/admins", {"openid": teacher.openid}), 204)
    expect(principal.post(f"/v1/orgs/{school}/guardians", {"minor": kid.openid, "guardian": parent.openid}), 204)
    gid = expect(teacher.post("/v1/groups", {"name": "class 4", "kind": "education", "org": school}), 201)["id"]
    for who in (kid, parent, other):
        expect(teacher.post(f"/v1/groups/{gid}/members", {"openid": who.openid}), 201)

    def seen_by(c):
        return {m["openid"]: m.get("minor") for m in expect(c.get(f"/v1/groups/{gid}/members"), 200)["items"]}
    assert seen_by(teacher)[kid.openid] is True      # the school's admin
    assert seen_by(parent)[kid.openid] is True       # the child's guardian
    assert seen_by(kid)[kid.openid] is True          # the child itself
    assert seen_by(other)[kid.openid] is None        # another member: not told
    assert seen_by(other)[other.openid] is False     # one's own flag is one's own
    assert expect(kid.get("/v1/me"), 200)["minor"] is True


def streams_opened(url):
    """qund's count of event streams opened so far (/metrics)."""
    text = requests.get(url + "/metrics", timeout=10).text
    return int(re.search(r"^qun_events_streams_opened_total (\d+)$", text, re.M).group(1))


def test_cli_notices_events_gone_and_hints(srv, tmp_path):
    owner, member = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[member], name="book club")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUN_")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path), QUN_URL=srv.url, QUN_TOKEN=member.token, TZ="UTC")
    opened = streams_opened(srv.url)
    ev = subprocess.Popen([QUN, "events"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        # The stream starts at the present: the first event goes once it is open.
        deadline = time.time() + 10
        while streams_opened(srv.url) == opened and time.time() < deadline:
            time.sleep(0.05)
        expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "hello club"}), 201)
        p = expect(owner.post(f"/v1/groups/{gid}/payments", {"amount": 500, "shares": 2, "memo": "tea"}), 201)
        expect(member.post(f"/v1/groups/{gid}/payments/{p['id']}/claim", {}), 201)
        oops = expect(member.post(f"/v1/groups/{gid}/messages", {"text": "oops"}), 201)["seq"]
        expect(member.delete(f"/v1/groups/{gid}/messages/{oops}"), 200)
        rude = expect(member.post(f"/v1/groups/{gid}/messages", {"text": "rude"}), 201)["seq"]
        expect(owner.delete(f"/v1/groups/{gid}/messages/{rude}", body={"reason": "off topic"}), 200)
        expect(request(owner, gid), 202)
        # The owner's hint names the group, not <gid>.
        r = qun(srv.url, owner, "transfer", "book club", member.username)
        assert r.returncode != 0 and "LIFECYCLE_CONFLICT" in r.stderr, r.stderr
        assert "qun cancel 'book club'" in r.stderr and "<gid>" not in r.stderr, r.stderr
        # History: notices as sentences naming people, what can still be undone and until when.
        out = qun(srv.url, member, "history", "book club").stdout
        assert "hello club" in out and '{"notice"' not in out, out
        assert "the owner can still cancel until then" in out, out
        expect(owner.delete(f"/v1/groups/{gid}/dissolution"), 200)
        assert f"the dissolution was cancelled by {owner.username}" in qun(srv.url, member, "history", "book club").stdout
        expect(request(owner, gid, successor_name="book club 2"), 202)
        advance(owner, 48 * H + 1)
        wait_state(owner, gid, "dissolved")
        time.sleep(1.0)
    finally:
        ev.kill()
        seen = ev.communicate(timeout=10)[0].decode()
    lines = seen.splitlines()
    assert any("book club" in ln and f"{owner.username}: hello club" in ln for ln in lines), seen
    assert any("the dissolution was cancelled by " + owner.username in ln for ln in lines), seen
    assert any(f"{owner.username} sent a red packet of ¥5.00 in 2 shares (“tea”)" in ln for ln in lines), seen
    assert any(f"{member.username} claimed ¥2.50 from a red packet (1 of 2 shares taken)" in ln for ln in lines), seen
    assert any(f"{member.username} recalled message #{oops}" in ln for ln in lines), seen
    assert any(f"{owner.username} removed {member.username}'s message #{rude}" in ln and "off topic" in ln
               for ln in lines), seen
    assert any("notification: a group will be dissolved (“book club”)" in ln for ln in lines), seen
    # Every event the stream brought became a sentence: none fell through to its code.
    assert "event:" not in seen and "data:" not in seen and "something changed" not in seen, seen
    assert any("the group was dissolved" in ln and "continued in “book club 2”" in ln for ln in lines), seen
    # GROUP_GONE names the successor group by name.
    r = qun(srv.url, member, "history", gid)
    assert r.returncode != 0 and "GROUP_GONE" in r.stderr, r.stderr
    assert "dissolved; continued in “book club 2”" in r.stderr, r.stderr
    assert "restore it until" in r.stderr, r.stderr


def test_cli_password_from_stdin(srv):
    alice = register(srv.url)
    r = qun(srv.url, alice, "password", "--stdin", stdin="wrong password\nnew secret 123\n")
    assert r.returncode != 0 and "BAD_CREDENTIALS" in r.stderr, r.stderr
    r = qun(srv.url, alice, "password", "--stdin", stdin="correct horse\nshort\n")
    assert r.returncode != 0 and "8 characters" in r.stderr, r.stderr
    r = qun(srv.url, alice, "password", "--stdin", stdin="correct horse\nnew secret 123\n")
    assert r.returncode == 0 and "password is changed" in r.stdout, (r.stdout, r.stderr)
    relogin(alice, password="new secret 123")
    assert "password [--stdin]" in qun(srv.url, None, "help", "password").stdout


def test_cli_preview_says_what_can_be_undone_and_until_when(srv):
    owner = register(srv.url)
    make_group(owner, name="undo club")
    r = qun(srv.url, owner, "dissolve", "undo club", "--messages", "delete", "--confirm-name", "undo club", "--no-wait")
    assert r.returncode == 0, (r.stdout, r.stderr)
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("Undo:"))
    assert "the owner can cancel until the group dissolves (about 20" in line, line
    assert "then restore it for" in line and "purged for good" in line, line
