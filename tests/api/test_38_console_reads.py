# SPDX-License-Identifier: MIT
"""The small read routes the web console's admin pages need: GET /v1/orgs (the orgs the
caller administers; a server admin sees all) and the server-wide roles in GET /v1/me."""
import pytest

from conftest import Server, all_items, expect, register, stop_clean


@pytest.fixture(scope="module")
def srv():
    s = Server(extra=["--set", "admins=root38", "--set", "compliance=law38"]).start()
    yield s
    stop_clean(s)


def test_orgs_listed_to_their_admins_and_to_server_admins(srv):
    ann, bob, root = register(srv.url), register(srv.url), register(srv.url, name="root38")
    a1 = expect(ann.post("/v1/orgs", {"name": "Acme", "kind": "enterprise"}), 201)["id"]
    a2 = expect(ann.post("/v1/orgs", {"name": "Acme school", "kind": "school"}), 201)["id"]
    b1 = expect(bob.post("/v1/orgs", {"name": "Bobco", "kind": "enterprise"}), 201)["id"]
    mine = all_items(ann, "/v1/orgs", limit=1)  # one per page: the cursor is followed
    assert [o["id"] for o in mine] == [a1, a2]
    assert mine[0]["dissolve_protection"] is True and mine[1]["kind"] == "school"
    assert mine[0]["admins"] == [ann.openid]
    assert [o["id"] for o in expect(bob.get("/v1/orgs"), 200)["items"]] == [b1]
    expect(bob.post(f"/v1/orgs/{b1}/protection", {"enabled": False}), 200)
    every = {o["id"]: o for o in all_items(root, "/v1/orgs")}
    assert {a1, a2, b1} <= set(every) and every[b1]["dissolve_protection"] is False
    assert expect(register(srv.url).get("/v1/orgs"), 200) == {"items": [], "next_cursor": None}
    expect(ann.get("/v1/orgs?limit=0"), 422, "FIELD_INVALID")
    assert expect(root.get("/v1/me"), 200)["server_admin"] is True


def test_me_says_which_server_roles_the_user_holds(srv):
    law, plain = register(srv.url, name="law38"), register(srv.url)
    me = expect(plain.get("/v1/me"), 200)
    assert me["server_admin"] is False and me["compliance"] is False
    me = expect(law.get("/v1/me"), 200)
    assert me["compliance"] is True and me["server_admin"] is False
