# SPDX-License-Identifier: MIT
"""Who may do what, table-driven: every mutating group endpoint against each of
owner, admin, member, non-member and anonymous, following docs/design.md section 2.
Non-members learn nothing (404 GROUP_NOT_FOUND), anonymous callers are asked to
authenticate (401), an insufficient role is 403 FORBIDDEN_ROLE.  Every row runs on
a fresh group; a refused request must leave the group exactly as it was.
Then: ids of other people's groups, sessions, payments and files never leak."""
import hashlib
import uuid

import pytest

from conftest import Client, age_sessions, all_items, expect, make_group, register, transfer

ROLES = ["owner", "admin", "member", "outsider", "anon"]
FORBIDDEN = (403, "FORBIDDEN_ROLE")


@pytest.fixture(scope="module")
def people(server):
    url = server.url
    p = {k: register(url) for k in ["owner", "admin", "admin2", "member", "member2", "outsider", "newcomer"]}
    p["anon"] = Client(url)
    age_sessions(url)  # transfers need sessions and passwords older than 24 h
    return p


class Ctx:
    def __init__(self, people):
        self.p = people
        self.owner = people["owner"]
        self.gid = make_group(self.owner, admins=[people["admin"], people["admin2"]],
                              members=[people["member"], people["member2"]])
        self.g = f"/v1/groups/{self.gid}"
        self.pid = None
        self.token = None

    def roles(self):
        return {m["openid"]: m["role"] for m in all_items(self.owner, self.g + "/members")}

    def snapshot(self):
        """What the owner sees of the group: enough to notice any change."""
        g = expect(self.owner.get(self.g), 200)
        return {
            "group": {k: g[k] for k in ["name", "owner", "state", "member_count", "last_seq"]},
            "roles": self.roles(),
            "files": [f["digest"] for f in all_items(self.owner, self.g + "/files")],
            "payments": [(x["id"], x["claimed_shares"]) for x in
                         expect(self.owner.get(self.g + "/payments"), 200)["items"]],
            "dissolution": self.owner.get(self.g + "/dissolution").status_code,
        }


# ---- setups: run as the owner before the actor acts ----

def propose_to_actor(c, role):
    """A pending transfer to the actor when the actor could accept one, else to member2."""
    to = c.p[role] if role in ("admin", "member") else c.p["member2"]
    expect(transfer(c.owner, c.gid, to.openid), 202)


def create_payment(c, role):
    c.pid = expect(c.owner.post(c.g + "/payments", {"amount": 50, "shares": 5}), 201)["id"]


def preview(c, role):
    p = expect(c.owner.post(c.g + "/dissolution/preview", {"messages": "keep"}), 200)
    c.token, c.name = p["confirmation_token"], p["name"]


# ---- checks of an allowed action's effect ----

def renamed(c, a, body):
    assert expect(c.owner.get(c.g), 200)["name"] == "renamed"


def has_role(who, role):
    def check(c, a, body):
        assert c.roles().get(c.p[who].openid) == role
    return check


def gone(who):
    def check(c, a, body):
        assert c.p[who].openid not in c.roles()
        assert expect(c.owner.get(c.g), 200)["member_count"] == 4
    return check


def actor_left(c, a, body):
    assert a.openid not in c.roles()
    expect(a.get(c.g), 404, "GROUP_NOT_FOUND")


def transfer_proposed(c, a, body):
    assert body["state"] == "proposed" and body["to"] == c.p["member2"].openid
    expect(c.p["member2"].post(c.g + "/transfer/accept"), 200)
    assert expect(c.owner.get(c.g), 200)["owner"] == c.p["member2"].openid


def accepted(c, a, body):
    roles = c.roles()
    assert roles[a.openid] == "owner" and roles[c.owner.openid] == "admin"
    assert expect(a.get(c.g), 200)["owner"] == a.openid


def declined(c, a, body):
    roles = c.roles()
    assert roles[c.owner.openid] == "owner" and roles[a.openid] != "owner"
    expect(a.post(c.g + "/transfer/accept"), 404, "TRANSFER_NOT_FOUND")


def posted(c, a, body):
    assert expect(c.owner.get(c.g), 200)["last_seq"] == 1
    assert [m["author"] for m in all_items(c.owner, c.g + "/messages")] == [a.openid]


def uploaded(c, a, body):
    assert body["digest"] == hashlib.sha256(FILE_BYTES).hexdigest()
    assert [f["digest"] for f in all_items(c.owner, c.g + "/files")] == [body["digest"]]


def paid(c, a, body):
    items = expect(c.owner.get(c.g + "/payments"), 200)["items"]
    assert [(x["id"], x["creator"]) for x in items] == [(body["id"], a.openid)]


def claimed(c, a, body):
    assert body["amount"] == 10 and body["claimer"] == a.openid
    items = expect(c.owner.get(c.g + "/payments"), 200)["items"]
    assert items[0]["claimed_shares"] == 1


def previewed(c, a, body):
    assert body["confirmation_token"] and body["impact"]["members"]["count"] == 5


def dissolved(c, a, body):
    # The request starts the cooling-off: the group is pending, members still in.
    assert body["state"] == "pending" and body["seconds_left"] > 0
    assert expect(c.p["member"].get(c.g), 200)["state"] == "pending"


FILE_BYTES = b"authz test file\n"

# action: (setup, do, {role: expected status or (status, code)}, check of the allowed effect)
ACTIONS = {
    "rename": (None, lambda c, a: a.patch(c.g, {"name": "renamed"}),
               {"owner": 200, "admin": 200, "member": FORBIDDEN}, renamed),
    "add member": (None, lambda c, a: a.post(c.g + "/members", {"openid": c.p["newcomer"].openid}),
                   {"owner": 201, "admin": 201, "member": FORBIDDEN}, has_role("newcomer", "member")),
    "add admin": (None, lambda c, a: a.post(c.g + "/members", {"openid": c.p["newcomer"].openid, "role": "admin"}),
                  {"owner": 201, "admin": FORBIDDEN, "member": FORBIDDEN}, has_role("newcomer", "admin")),
    "change role": (None, lambda c, a: a.patch(c.g + "/members/" + c.p["member2"].openid, {"role": "admin"}),
                    {"owner": 200, "admin": FORBIDDEN, "member": FORBIDDEN}, has_role("member2", "admin")),
    "demote admin": (None, lambda c, a: a.patch(c.g + "/members/" + c.p["admin2"].openid, {"role": "member"}),
                     {"owner": 200, "admin": FORBIDDEN, "member": FORBIDDEN}, has_role("admin2", "member")),
    "remove member": (None, lambda c, a: a.delete(c.g + "/members/" + c.p["member2"].openid),
                      {"owner": 204, "admin": 204, "member": FORBIDDEN}, gone("member2")),
    "remove admin": (None, lambda c, a: a.delete(c.g + "/members/" + c.p["admin2"].openid),
                     {"owner": 204, "admin": FORBIDDEN, "member": FORBIDDEN}, gone("admin2")),
    "remove owner": (None, lambda c, a: a.delete(c.g + "/members/" + c.owner.openid),
                     {"owner": FORBIDDEN, "admin": FORBIDDEN, "member": FORBIDDEN}, None),
    "leave": (None, lambda c, a: a.post(c.g + "/leave"),
              {"owner": (409, "OWNER_MUST_TRANSFER"), "admin": 204, "member": 204}, actor_left),
    "transfer": (None, lambda c, a: transfer(a, c.gid, c.p["member2"].openid),
                 {"owner": 202, "admin": FORBIDDEN, "member": FORBIDDEN}, transfer_proposed),
    "transfer accept": (propose_to_actor, lambda c, a: a.post(c.g + "/transfer/accept"),
                        {"owner": (404, "TRANSFER_NOT_FOUND"), "admin": 200, "member": 200}, accepted),
    "transfer decline": (propose_to_actor, lambda c, a: a.post(c.g + "/transfer/decline"),
                         {"owner": (404, "TRANSFER_NOT_FOUND"), "admin": 200, "member": 200}, declined),
    "post message": (None, lambda c, a: a.post(c.g + "/messages", {"text": "hello"}),
                     {"owner": 201, "admin": 201, "member": 201}, posted),
    "upload file": (None, lambda c, a: a.post(c.g + "/files?name=a.txt", raw=FILE_BYTES,
                                              headers={"Content-Type": "text/plain"}),
                    {"owner": 201, "admin": 201, "member": 201}, uploaded),
    "create payment": (None, lambda c, a: a.post(c.g + "/payments", {"amount": 10, "shares": 2}),
                       {"owner": 201, "admin": 201, "member": 201}, paid),
    "claim": (create_payment, lambda c, a: a.post(c.g + f"/payments/{c.pid}/claim"),
              {"owner": 201, "admin": 201, "member": 201}, claimed),
    "dissolution preview": (None, lambda c, a: a.post(c.g + "/dissolution/preview", {"messages": "keep"}),
                            {"owner": 200, "admin": FORBIDDEN, "member": FORBIDDEN}, previewed),
    # Non-owners present the owner's valid token: the role is still wrong.
    "dissolution request": (preview, lambda c, a: a.post(c.g + "/dissolution", {"messages": "keep", "typed_name": c.name,
                                                                                "confirmation_token": c.token}),
                            {"owner": 202, "admin": FORBIDDEN, "member": FORBIDDEN}, dissolved),
    # The owner may cancel, but an active group has no dissolution to cancel.
    "cancel dissolution": (None, lambda c, a: a.delete(c.g + "/dissolution"),
                           {"owner": (404, "DISSOLUTION_NOT_FOUND"), "admin": FORBIDDEN,
                            "member": FORBIDDEN}, None),
}

CASES = [(action, role) for action in ACTIONS for role in ROLES]


@pytest.mark.parametrize("action,role", CASES, ids=[f"{a}-{r}" for a, r in CASES])
def test_permission(people, action, role):
    setup, do, table, check = ACTIONS[action]
    want = {"outsider": (404, "GROUP_NOT_FOUND"), "anon": (401, "UNAUTHENTICATED"), **table}[role]
    status, code = want if isinstance(want, tuple) else (want, None)
    c = Ctx(people)
    if setup:
        setup(c, role)
    before = c.snapshot()
    actor = people[role]
    r = do(c, actor)
    body = expect(r, status, code)
    if status >= 400:
        assert c.snapshot() == before, f"{action} by {role} was refused but changed the group"
    elif check:
        check(c, actor, body)


# ---- foreign ids ----

def test_a_foreign_group_looks_like_no_group(server, people):
    c = Ctx(people)
    expect(c.owner.post(c.g + "/messages", {"text": "secret plans"}), 201)
    stranger = people["outsider"]
    ghost = "g_" + uuid.uuid4().hex[:22]
    for path in ["", "/members", "/messages", "/files", "/payments", "/dissolution"]:
        real = expect(stranger.get(c.g + path), 404, "GROUP_NOT_FOUND")
        fake = expect(stranger.get(f"/v1/groups/{ghost}{path}"), 404, "GROUP_NOT_FOUND")
        assert real["title"] == fake["title"] and real.keys() == fake.keys()
        assert real["detail"].replace(c.gid, ghost) == fake["detail"]
        assert "team" not in real["detail"].replace(c.gid, "") and "secret" not in str(real)
    assert c.gid not in str(expect(stranger.get("/v1/groups"), 200))


def test_foreign_payment_cannot_be_claimed_through_my_group(people):
    theirs, mine = Ctx(people), Ctx(people)
    pid = expect(theirs.owner.post(theirs.g + "/payments", {"amount": 30, "shares": 3}), 201)["id"]
    # The outsider owns a group of their own and tries the foreign payment id there.
    stranger = people["outsider"]
    sg = make_group(stranger)
    expect(stranger.post(f"/v1/groups/{sg}/payments/{pid}/claim"), 404, "PAYMENT_NOT_FOUND")
    expect(stranger.post(f"/v1/groups/{theirs.gid}/payments/{pid}/claim"), 404, "GROUP_NOT_FOUND")
    # A member of both groups cannot claim group A's payment through group B either.
    both = people["member"]
    expect(both.post(f"{mine.g}/payments/{pid}/claim"), 404, "PAYMENT_NOT_FOUND")
    items = expect(theirs.owner.get(theirs.g + "/payments"), 200)["items"]
    assert items[0]["claimed_shares"] == 0
    assert all(line["payment"] != pid for line in expect(stranger.get("/v1/me/bill"), 200)["items"])
    assert pid not in str(expect(mine.owner.get(mine.g + "/payments"), 200))


def test_foreign_file_cannot_be_downloaded_through_my_group(people):
    theirs = Ctx(people)
    data = b"confidential " + uuid.uuid4().bytes
    digest = expect(theirs.owner.post(theirs.g + "/files?name=c.bin", raw=data), 201)["digest"]
    stranger = people["outsider"]
    sg = make_group(stranger)
    # The digest is public knowledge (it is just a hash); the bytes stay in their group.
    expect(stranger.get(f"/v1/groups/{sg}/files/{digest}"), 404, "FILE_NOT_FOUND")
    expect(stranger.get(f"/v1/groups/{theirs.gid}/files/{digest}"), 404, "GROUP_NOT_FOUND")
    assert digest not in str(expect(stranger.get(f"/v1/groups/{sg}/files"), 200))


def test_foreign_members_and_sessions(people):
    c = Ctx(people)
    stranger = people["outsider"]
    sg = make_group(stranger)
    # Someone who is in c's group but not in the stranger's group.
    target = people["member2"].openid
    expect(stranger.patch(f"/v1/groups/{sg}/members/{target}", {"role": "admin"}), 404, "MEMBER_NOT_FOUND")
    expect(stranger.delete(f"/v1/groups/{sg}/members/{target}"), 404, "MEMBER_NOT_FOUND")
    expect(stranger.post(f"/v1/groups/{sg}/transfer", {"to": target}), 404, "MEMBER_NOT_FOUND")
    assert c.roles()[target] == "member"
    sid = expect(people["member2"].get("/v1/me"), 200)["session_id"]
    expect(stranger.delete(f"/v1/sessions/{sid}"), 404, "SESSION_NOT_FOUND")
    expect(people["member2"].get("/v1/me"), 200)
