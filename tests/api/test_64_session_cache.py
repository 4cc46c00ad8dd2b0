# SPDX-License-Identifier: MIT
"""A message post takes its caller from the loop's cache of sessions (src/http/actors.c)
and checks the session again in its own write.  Whatever happened to the session since
the loop cached it - revoked, expired, its account disabled, its password reset by an
admin, the poster removed from the group - the post answers exactly what it would have
answered without the cache, and writes nothing it should not.

Each test posts on one kept-alive connection (one loop) before and after the change, so
the later post finds its caller in that loop's cache."""
import uuid

import pytest
import requests

from conftest import Client, Server, all_items, expect, make_group, register, relogin, stop_clean


@pytest.fixture(scope="module")
def srv():
    s = Server(extra=["--set", "admins=root", "--set", "session_ttl=600"], env={"QUN_TEST_CLOCK": "1"}).start()
    yield s
    stop_clean(s)


@pytest.fixture(scope="module")
def root(srv):
    return register(srv.url, name="root")


def texts(reader, gid):
    return [m.get("text") for m in all_items(reader, f"/v1/groups/{gid}/messages")]


def post(c, gid, text):
    return c.post(f"/v1/groups/{gid}/messages", {"text": text})


def test_a_revoked_session_posts_no_more(srv):
    alice = register(srv.url)
    gid = make_group(alice)
    phone = relogin(alice)
    for i in range(3):
        expect(post(phone, gid, f"before {i}"), 201)
    expect(alice.delete(f"/v1/sessions/{expect(phone.get('/v1/me'), 200)['session_id']}"), 204)
    # Refused before the writer (a bad body), it answers as it would without the cache.
    expect(phone.post(f"/v1/groups/{gid}/messages", raw="{not json"), 401, "TOKEN_INVALID")
    expect(post(phone, gid, "after"), 401, "TOKEN_INVALID")
    expect(post(phone, gid, "again"), 401, "TOKEN_INVALID")
    expect(post(Client(srv.url, phone.token), gid, "new connection"), 401, "TOKEN_INVALID")
    assert texts(alice, gid) == ["before 0", "before 1", "before 2"]
    # Logging out ends the session the same way.
    expect(post(alice, gid, "mine"), 201)
    expect(alice.delete(f"/v1/sessions/{expect(alice.get('/v1/me'), 200)['session_id']}"), 204)
    expect(post(alice, gid, "after logout"), 401, "TOKEN_INVALID")


def test_a_disabled_account_posts_no_more_and_enabled_logs_in_again(srv, root):
    owner, bob = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[bob])
    expect(post(bob, gid, "hello"), 201)
    expect(root.post(f"/v1/admin/users/{bob.openid}/disable", {}), 200)
    expect(post(bob, gid, "still here?"), 401, "TOKEN_INVALID")
    expect(root.post(f"/v1/admin/users/{bob.openid}/enable", {}), 200)
    expect(post(bob, gid, "the old session stays ended"), 401, "TOKEN_INVALID")
    assert texts(owner, gid) == ["hello"]


def test_a_reset_password_revokes_and_the_code_session_must_change_it_first(srv, root):
    owner, carol = register(srv.url), register(srv.url)
    gid = make_group(owner, members=[carol])
    expect(post(carol, gid, "one"), 201)
    code = expect(root.post(f"/v1/admin/users/{carol.openid}/password-reset", {}), 200)["code"]
    expect(post(carol, gid, "two"), 401, "TOKEN_INVALID")
    r = requests.post(srv.url + "/v1/sessions", json={"username": carol.username, "password": code,
                                                     "device_id": carol.device_id,
                                                     "device_secret": carol.device_secret, "platform": "cli"},
                      timeout=30)
    c = Client(srv.url, expect(r, 201)["token"])
    for _ in range(2):  # the second finds nothing cached: such a session is never cached
        expect(post(c, gid, "three"), 403, "PASSWORD_CHANGE_REQUIRED")
    expect(c.post("/v1/me/password", {"old_password": code, "new_password": "a brand new one"}), 200)
    expect(post(c, gid, "four"), 201)
    expect(post(c, gid, "five"), 201)
    assert texts(owner, gid) == ["one", "four", "five"]


def test_an_expired_session_posts_no_more(srv):
    dave = register(srv.url)
    gid = make_group(dave)
    expect(post(dave, gid, "now"), 201)
    expect(requests.post(srv.url + "/v1/test/clock", json={"advance": 601}, timeout=10), 200)
    expect(post(dave, gid, "too late"), 401, "TOKEN_INVALID")
    fresh = relogin(dave)
    assert texts(fresh, gid) == ["now"]


def test_refusals_of_a_cached_caller_are_the_ones_a_fresh_caller_gets(srv):
    owner, member, outsider = register(srv.url), register(srv.url), register(srv.url)
    gid = make_group(owner, members=[member])
    expect(post(member, gid, "in"), 201)
    expect(post(outsider, gid, "knock"), 404, "GROUP_NOT_FOUND")
    # Cached by now, on both connections: the answers do not change.
    expect(post(outsider, gid, "knock again"), 404, "GROUP_NOT_FOUND")
    expect(post(member, "g_" + uuid.uuid4().hex[:22], "nowhere"), 404, "GROUP_NOT_FOUND")
    expect(member.post(f"/v1/groups/{gid}/messages", {"text": ""}), 422, "FIELD_INVALID")
    expect(member.post(f"/v1/groups/{gid}/messages", {"text": 7}), 422)
    expect(member.post(f"/v1/groups/{gid}/messages", raw="{not json"), 400, "BAD_JSON")
    expect(owner.delete(f"/v1/groups/{gid}/members/{member.openid}"), 204)
    removed = expect(post(member, gid, "still in?"), 404, "GROUP_NOT_FOUND")
    assert removed == expect(post(Client(srv.url, member.token), gid, "still in?"), 404, "GROUP_NOT_FOUND")
    expect(post(member, gid, "once more"), 404, "GROUP_NOT_FOUND")
    assert texts(owner, gid) == ["in"]


def test_many_callers_interleaved_each_post_under_their_own_name(srv):
    owner = register(srv.url)
    members = [register(srv.url) for _ in range(12)]
    gid = make_group(owner, members=members)
    for rnd in range(3):
        for i, m in enumerate(members):
            expect(post(m, gid, f"{rnd}:{i}"), 201)
    items = all_items(owner, f"/v1/groups/{gid}/messages")
    assert len(items) == 36
    for m in items:
        rnd, i = m["text"].split(":")
        assert m["author"] == members[int(i)].openid, m
