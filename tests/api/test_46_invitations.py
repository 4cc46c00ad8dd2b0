# SPDX-License-Identifier: MIT
"""Invitations with consent: an owner or admin invites by username or openid, the
invitee accepts (a member with the invited role) or declines (never a member); the
rights of a direct add hold at invitation and again at acceptance (a group with a
dissolution open or dissolved refuses); a policy pack asking consent turns the direct
add into INVITATION_REQUIRED; other users' invitations do not exist for them; replays
answer the same; bad input is a problem; a purge deletes the group's invitations and
counts them in its receipt."""
import json
import os
import time

import pytest

from conftest import Client, Server, all_items, expect, make_group, register, stop_clean


@pytest.fixture(scope="module")
def srv():
    s = Server(env={"QUN_TEST_CLOCK": "1"}).start()
    yield s
    stop_clean(s)


def invite(by, gid, status=201, code=None, **body):
    return expect(by.post(f"/v1/groups/{gid}/invitations", body), status, code)


def member_ids(c, gid):
    return {m["openid"]: m["role"] for m in all_items(c, f"/v1/groups/{gid}/members")}


def my_groups(c):
    return {g["id"] for g in all_items(c, "/v1/groups")}


def test_invite_by_username_then_decline_is_never_a_member(srv):
    owner, alice = register(srv.url), register(srv.url)
    gid = make_group(owner)
    inv = invite(owner, gid, username=alice.username)
    assert inv["state"] == "pending" and inv["id"].startswith("i_")
    assert inv["group"] == gid and inv["invitee"] == alice.openid and inv["role"] == "member"
    assert inv["inviter"] == owner.openid and inv["inviter_username"] == owner.username
    # A second invitation answers the pending one.
    assert invite(owner, gid, openid=alice.openid)["id"] == inv["id"]
    mine = expect(alice.get("/v1/me/invitations"), 200)["items"]
    assert [(i["id"], i["group_name"], i["inviter_username"]) for i in mine] == [(inv["id"], "team", owner.username)]
    # Not a member until accepted.
    assert alice.openid not in member_ids(owner, gid)
    expect(alice.get(f"/v1/groups/{gid}"), 404, "GROUP_NOT_FOUND")
    out = expect(alice.post(f"/v1/invitations/{inv['id']}/decline"), 200)
    assert out["state"] == "declined" and out["decided_at"]
    assert alice.openid not in member_ids(owner, gid)
    assert gid not in my_groups(alice)
    assert expect(alice.get("/v1/me/invitations"), 200)["items"] == []
    # A replay answers the same; accepting a declined one is refused.
    assert expect(alice.post(f"/v1/invitations/{inv['id']}/decline"), 200)["state"] == "declined"
    expect(alice.post(f"/v1/invitations/{inv['id']}/accept"), 409, "INVITATION_CLOSED")
    assert alice.openid not in member_ids(owner, gid)


def test_invite_by_openid_then_accept_gives_the_invited_role(srv):
    owner, bob = register(srv.url), register(srv.url)
    gid = make_group(owner)
    inv = invite(owner, gid, openid=bob.openid, role="admin")
    assert inv["role"] == "admin"
    out = expect(bob.post(f"/v1/invitations/{inv['id']}/accept"), 200)
    assert out["state"] == "accepted"
    assert member_ids(owner, gid)[bob.openid] == "admin"
    assert gid in my_groups(bob)
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["member_count"] == 2
    # The replay is a stable answer, and adds nobody twice.
    again = expect(bob.post(f"/v1/invitations/{inv['id']}/accept"), 200)
    assert again["state"] == "accepted" and again["id"] == inv["id"]
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["member_count"] == 2
    expect(bob.post(f"/v1/invitations/{inv['id']}/decline"), 409, "INVITATION_CLOSED")
    invite(owner, gid, 409, "ALREADY_MEMBER", openid=bob.openid)


def test_roles_decide_who_invites_whom(srv):
    owner, admin, member, x, y = (register(srv.url) for _ in range(5))
    gid = make_group(owner, admins=[admin], members=[member])
    invite(member, gid, 403, "FORBIDDEN_ROLE", username=x.username)
    invite(admin, gid, 403, "FORBIDDEN_ROLE", username=x.username, role="admin")  # as for direct adds
    invite(x, gid, 404, "GROUP_NOT_FOUND", username=y.username)
    inv = invite(admin, gid, username=x.username)
    # Demoted before x answers: the invitation no longer holds.
    expect(owner.patch(f"/v1/groups/{gid}/members/{admin.openid}", {"role": "member"}), 200)
    expect(x.post(f"/v1/invitations/{inv['id']}/accept"), 409, "INVITATION_STALE")
    assert x.openid not in member_ids(owner, gid)


def test_revoke(srv):
    owner, admin, member, x = (register(srv.url) for _ in range(4))
    gid = make_group(owner, admins=[admin], members=[member])
    inv = invite(admin, gid, username=x.username)
    expect(member.delete(f"/v1/invitations/{inv['id']}"), 404, "INVITATION_NOT_FOUND")
    assert expect(owner.delete(f"/v1/invitations/{inv['id']}"), 200)["state"] == "revoked"
    expect(x.post(f"/v1/invitations/{inv['id']}/accept"), 409, "INVITATION_CLOSED")
    assert expect(x.get("/v1/me/invitations"), 200)["items"] == []


def test_other_users_invitations_do_not_exist(srv):
    owner, alice, eve = (register(srv.url) for _ in range(3))
    gid = make_group(owner)
    inv = invite(owner, gid, username=alice.username)
    p1 = expect(eve.post(f"/v1/invitations/{inv['id']}/accept"), 404, "INVITATION_NOT_FOUND")
    p2 = expect(eve.post("/v1/invitations/i_AAAAAAAAAAAAAAAAAAAAAA/accept"), 404, "INVITATION_NOT_FOUND")
    assert p1["title"] == p2["title"]
    expect(owner.post(f"/v1/invitations/{inv['id']}/decline"), 404, "INVITATION_NOT_FOUND")
    expect(eve.delete(f"/v1/invitations/{inv['id']}"), 404, "INVITATION_NOT_FOUND")
    assert eve.openid not in member_ids(owner, gid)
    assert expect(eve.get("/v1/me/invitations"), 200)["items"] == []
    assert expect(alice.post(f"/v1/invitations/{inv['id']}/accept"), 200)["state"] == "accepted"


def test_bad_input(srv):
    owner, alice = register(srv.url), register(srv.url)
    gid = make_group(owner)
    expect(owner.post(f"/v1/groups/{gid}/invitations", {"username": 7}), 422, "FIELD_INVALID")
    expect(owner.post(f"/v1/groups/{gid}/invitations", {"openid": ["x"]}), 422, "FIELD_INVALID")
    expect(owner.post(f"/v1/groups/{gid}/invitations", {"username": alice.username, "openid": alice.openid}), 422,
           "FIELD_INVALID")
    expect(owner.post(f"/v1/groups/{gid}/invitations", {}), 422, "FIELD_MISSING")
    expect(owner.post(f"/v1/groups/{gid}/invitations", {"username": alice.username, "role": "owner"}), 422,
           "FIELD_INVALID")
    expect(owner.post(f"/v1/groups/{gid}/invitations", {"username": alice.username, "colour": "red"}), 422,
           "FIELD_UNKNOWN")
    expect(owner.post(f"/v1/groups/{gid}/invitations", {"username": "no-such-user-here"}), 404, "USER_NOT_FOUND")
    expect(owner.post(f"/v1/groups/{gid}/invitations", raw="{not json"), 400, "BAD_JSON")
    inv = invite(owner, gid, username=alice.username)
    expect(alice.post(f"/v1/invitations/{inv['id']}/accept", {"now": True}), 422, "FIELD_UNKNOWN")
    expect(Client(srv.url).get("/v1/me/invitations"), 401, "UNAUTHENTICATED")
    expect(Client(srv.url).post(f"/v1/invitations/{inv['id']}/accept"), 401, "UNAUTHENTICATED")


def dissolve(owner, gid):
    p = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "delete"}), 200)
    return expect(owner.post(f"/v1/groups/{gid}/dissolution", {"messages": "delete", "typed_name": p["name"],
                                                                "confirmation_token": p["confirmation_token"]}),
                  202)


def test_acceptance_is_refused_while_a_dissolution_is_open(srv):
    owner, alice, bob = (register(srv.url) for _ in range(3))
    gid = make_group(owner)
    inv = invite(owner, gid, username=alice.username)
    assert dissolve(owner, gid)["state"] == "pending"  # the cooling-off runs
    expect(alice.post(f"/v1/invitations/{inv['id']}/accept"), 409, "GROUP_NOT_ACTIVE")
    assert alice.openid not in member_ids(owner, gid)
    invite(owner, gid, 409, "GROUP_NOT_ACTIVE", username=bob.username)
    # Cancelled: the group is active again and the invitation holds.
    expect(owner.delete(f"/v1/groups/{gid}/dissolution"), 200)
    assert expect(alice.post(f"/v1/invitations/{inv['id']}/accept"), 200)["state"] == "accepted"


def wait_dissolution(owner, gid, state, timeout=15):
    deadline = time.time() + timeout
    while True:
        st = expect(owner.get(f"/v1/groups/{gid}/dissolution"), 200)
        if st["state"] == state:
            return st
        assert time.time() < deadline, st
        time.sleep(0.1)


def test_purge_deletes_and_counts_invitations():
    s = Server(env={"QUN_TEST_CLOCK": "1"}, extra=["--set", "cooling_off=0", "--set", "purge_grace=0"]).start()
    try:
        owner, a, b, c = (register(s.url) for _ in range(4))
        gid = make_group(owner)
        ia = invite(owner, gid, username=a.username)
        ib = invite(owner, gid, username=b.username)
        ic = invite(owner, gid, username=c.username)
        expect(a.post(f"/v1/invitations/{ia['id']}/accept"), 200)
        expect(b.post(f"/v1/invitations/{ib['id']}/decline"), 200)
        dissolve(owner, gid)
        st = wait_dissolution(owner, gid, "purged")
        assert st["receipt"]["invitations_deleted"] == 3
        assert st["receipt"]["members_removed"] == 2
        assert expect(c.get("/v1/me/invitations"), 200)["items"] == []
        expect(c.post(f"/v1/invitations/{ic['id']}/accept"), 404, "INVITATION_NOT_FOUND")
    finally:
        stop_clean(s)


def test_consent_policy_turns_a_direct_add_into_an_invitation(tmp_path):
    pol = tmp_path / "policies"
    pol.mkdir()
    here = os.path.join(os.path.dirname(__file__), "../../policies")
    for name in ("kinds.json", "regions.json"):
        (pol / name).write_text(open(os.path.join(here, name)).read())
    v = json.load(open(os.path.join(here, "verification.json")))
    v["invitations"] = {"require_consent_kinds": ["finance"], "require_consent_above_members": 2}
    (pol / "verification.json").write_text(json.dumps(v))
    s = Server(env={"QUN_TEST_CLOCK": "1"}, extra=["--set", f"policies={pol}"]).start()
    try:
        owner, a, b, c, d = (register(s.url) for _ in range(5))
        fin = expect(owner.post("/v1/groups", {"name": "money", "kind": "finance"}), 201)["id"]
        p = expect(owner.post(f"/v1/groups/{fin}/members", {"openid": a.openid}), 409, "INVITATION_REQUIRED")
        assert f"POST /v1/groups/{fin}/invitations" in p["detail"]
        assert a.openid not in member_ids(owner, fin)
        inv = invite(owner, fin, openid=a.openid)
        expect(a.post(f"/v1/invitations/{inv['id']}/accept"), 200)
        assert member_ids(owner, fin)[a.openid] == "member"
        # A standard group: direct adds up to 2 members, consent above.
        gid = expect(owner.post("/v1/groups", {"name": "club"}), 201)["id"]
        expect(owner.post(f"/v1/groups/{gid}/members", {"openid": b.openid}), 201)
        expect(owner.post(f"/v1/groups/{gid}/members", {"openid": c.openid}), 201)  # 2 members: no consent yet
        expect(owner.post(f"/v1/groups/{gid}/members", {"openid": d.openid}), 409, "INVITATION_REQUIRED")
    finally:
        stop_clean(s)


def test_cli_invite_list_accept_decline(srv, tmp_path):
    from test_20_cli import User
    owner, alice, bob = (User(srv, tmp_path).signup() for _ in range(3))
    gid = owner.json("group", "create", "Class 3")["id"]
    out = owner.ok("invite", gid, alice.name, "--role", "admin").stdout
    assert f'invited {alice.name} to "Class 3"' in out and "as admin" in out and "pending" in out
    inv_b = owner.json("invite", gid, bob.name)["id"]
    listing = alice.ok("invitations").stdout
    assert "Class 3" in listing and owner.name in listing and "admin" in listing
    inv_a = alice.json("invitations")["items"][0]["id"]
    assert alice.ok("invitation", "accept", inv_a).stdout.strip() == f'joined "Class 3" ({gid}) as admin'
    assert "declined" in bob.ok("invitation", "decline", inv_b).stdout
    assert bob.ok("invitations").stdout.strip() == "no pending invitations"
    alice.fails("INVITATION_NOT_FOUND", "invitation", "accept", inv_b)
    roles = {m["username"]: m["role"] for m in owner.json("group", "members", gid)["items"]}
    assert roles == {owner.name: "owner", alice.name: "admin"}
