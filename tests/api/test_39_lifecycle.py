# SPDX-License-Identifier: MIT
"""An ownership transfer offer and a dissolution are never open at once (issue 13 item 4):
an offer is refused while a dissolution is in review or pending, a dissolution (and its
preview) while an offer waits for its answer, and an acceptance while a dissolution is
open, each with 409 LIFECYCLE_CONFLICT; the owner can withdraw an offer.  Offers and
dissolutions fired at the same moment (on two instances sharing one database under
PostgreSQL) never both go through.  Then issue 13 item 7: single removals count against
the bulk removals' rolling day per actor and group, and past the threshold ask for the
same proof."""
import json
import sqlite3
import threading

import pytest
import requests

from conftest import PG, Client, Server, age_sessions, expect, make_group, register, stop_clean, transfer

BASE = ["--set", "risk_frequency_max=1000000", "--set", "risk_frequency_deny=1000000"]
CLOCK = {"QUN_TEST_CLOCK": "1"}


@pytest.fixture(scope="module")
def srv():
    s = Server(env=CLOCK, extra=BASE + ["--set", "admins=root"]).start()
    yield s
    stop_clean(s)


def dpreview(owner, gid):
    return owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "keep"})


def dissolve_with(owner, gid, p):
    return owner.post(f"/v1/groups/{gid}/dissolution", {"messages": "keep", "confirmation_token": p["confirmation_token"],
                                                        "typed_name": p["name"]})


def dissolve(owner, gid):
    return dissolve_with(owner, gid, expect(dpreview(owner, gid), 200))


def history(c, gid):
    return [h["event"] for h in expect(c.get(f"/v1/groups/{gid}/history"), 200)["items"]]


def pair_of(srv_url):
    owner, heir = register(srv_url), register(srv_url)
    return owner, heir, make_group(owner, name="den", members=[heir])


def test_no_offer_while_a_dissolution_is_pending(srv):
    owner, heir, gid = pair_of(srv.url)
    age_sessions(srv.url)
    assert expect(dissolve(owner, gid), 202)["state"] == "pending"
    p = expect(owner.post(f"/v1/groups/{gid}/transfer/preview", {"to": heir.openid}), 409, "LIFECYCLE_CONFLICT")
    assert p["open"] == "dissolution" and p["dissolution_state"] == "pending"
    p = expect(owner.post(f"/v1/groups/{gid}/transfer", {"to": heir.openid}), 409, "LIFECYCLE_CONFLICT")
    assert p["dissolution_state"] == "pending"
    # Cancelled, the group's ownership may be offered again.
    expect(owner.delete(f"/v1/groups/{gid}/dissolution"), 200)
    expect(transfer(owner, gid, heir.openid), 202)


def test_no_offer_while_a_dissolution_is_in_review(srv):
    boss, owner, heir = register(srv.url), register(srv.url), register(srv.url)
    org = expect(boss.post("/v1/orgs", {"name": "acme", "kind": "enterprise"}), 201)
    expect(boss.post(f"/v1/orgs/{org['id']}/admins", {"openid": owner.openid}), 204)
    gid = expect(owner.post("/v1/groups", {"name": "crew", "kind": "enterprise", "org": org["id"]}), 201)["id"]
    expect(owner.post(f"/v1/groups/{gid}/members", {"openid": heir.openid}), 201)
    age_sessions(srv.url)
    assert expect(dissolve(owner, gid), 202)["state"] == "review"
    p = expect(transfer(owner, gid, heir.openid), 409, "LIFECYCLE_CONFLICT")
    assert p["dissolution_state"] == "review"


def test_no_dissolution_while_an_offer_is_open_until_declined_or_withdrawn(srv):
    owner, heir, gid = pair_of(srv.url)
    age_sessions(srv.url)
    expect(transfer(owner, gid, heir.openid), 202)
    expect(dpreview(owner, gid), 409, "LIFECYCLE_CONFLICT")
    # A preview obtained before the offer does not get around it either.
    expect(heir.post(f"/v1/groups/{gid}/transfer/decline"), 200)
    p = expect(dpreview(owner, gid), 200)
    expect(transfer(owner, gid, heir.openid), 202)
    refused = expect(dissolve_with(owner, gid, p), 409, "LIFECYCLE_CONFLICT")
    assert refused["open"] == "transfer" and refused["transfer_to"] == heir.openid
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["state"] == "active"
    # The owner withdraws the offer: only the owner, only an open one.
    expect(heir.delete(f"/v1/groups/{gid}/transfer"), 403, "FORBIDDEN_ROLE")
    out = expect(owner.delete(f"/v1/groups/{gid}/transfer"), 200)
    assert out == {"group": gid, "to": heir.openid, "to_display_name": None, "state": "withdrawn"}
    expect(owner.delete(f"/v1/groups/{gid}/transfer"), 404, "TRANSFER_NOT_FOUND")
    expect(heir.post(f"/v1/groups/{gid}/transfer/accept"), 404, "TRANSFER_NOT_FOUND")
    assert "transfer.withdrawn" in history(owner, gid)
    # The refused request spent nothing: the same preview's token dissolves now.
    assert expect(dissolve_with(owner, gid, p), 202)["state"] == "pending"


def test_an_offer_left_open_cannot_be_accepted_while_a_dissolution_is_open(srv):
    """An offer made before this rule existed (put in the database directly) and a
    dissolution requested since: accepting is refused, the offer stays, declining works,
    and the old owner can still cancel."""
    owner, heir, gid = pair_of(srv.url)
    age_sessions(srv.url)
    expect(dissolve(owner, gid), 202)
    db = sqlite3.connect(f"{srv.data}/qun.db", timeout=30)
    db.execute("INSERT INTO transfers(group_id, from_id, to_id, created_at) VALUES ("
               "(SELECT id FROM groups WHERE gid = ?), (SELECT id FROM users WHERE openid = ?), "
               "(SELECT id FROM users WHERE openid = ?), 1)", (gid, owner.openid, heir.openid))
    db.commit()
    db.close()
    expect(heir.post(f"/v1/groups/{gid}/transfer/accept"), 409, "LIFECYCLE_CONFLICT")
    g = expect(owner.get(f"/v1/groups/{gid}"), 200)
    assert g["owner"] == owner.openid and g["state"] == "pending"
    assert expect(heir.post(f"/v1/groups/{gid}/transfer/decline"), 200)["state"] == "declined"
    expect(owner.delete(f"/v1/groups/{gid}/dissolution"), 200)
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["state"] == "active"


# ---- both at once ----

def fire(*calls):
    """Run the calls at the same moment; their answers in order."""
    out = [None] * len(calls)
    gate = threading.Barrier(len(calls))

    def run(i):
        gate.wait()
        out[i] = calls[i]()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def on(c, url):
    return Client(url, c.token, c.openid, c.username)


@pytest.fixture
def two():
    """Two servers sharing one database under PostgreSQL (one server under SQLite, where
    a single writer serializes every write), both on a moved clock."""
    a = Server(env=CLOCK, extra=BASE).start()
    b = Server(data=a.data, env=CLOCK, extra=BASE).start() if PG else a
    yield a, b
    if b is not a:
        stop_clean(b)
    stop_clean(a)


ROUNDS = 25


def test_offer_and_dissolution_fired_together_never_both_pass(two):
    a, b = two
    owner = register(a.url)
    for s in {a, b}:
        age_sessions(s.url)
    both = 0
    for i in range(ROUNDS):
        heir = register(a.url)  # a new owner receives at most 5 groups a day
        gid = make_group(owner, name=f"race {i}", members=[heir])
        tp = expect(owner.post(f"/v1/groups/{gid}/transfer/preview", {"to": heir.openid}), 200)
        dp = expect(dpreview(owner, gid), 200)
        offer = lambda: on(owner, a.url).post(f"/v1/groups/{gid}/transfer", {  # noqa: E731
            "to": heir.openid, "confirmation_token": tp["confirmation_token"], "typed_name": tp["name"]})
        diss = lambda: dissolve_with(on(owner, b.url), gid, dp)  # noqa: E731
        r1, r2 = fire(offer, diss) if i % 2 else fire(diss, offer)[::-1]
        codes = sorted([r1.status_code, r2.status_code])
        assert codes == [202, 409], (r1.text, r2.text)
        loser = r1 if r1.status_code == 409 else r2
        assert loser.json()["code"] == "LIFECYCLE_CONFLICT", loser.text
        both += 1
        g = expect(owner.get(f"/v1/groups/{gid}"), 200)
        accept = heir.post(f"/v1/groups/{gid}/transfer/accept")
        if g["state"] == "pending":
            # The dissolution won: no offer is left for the heir to accept.
            expect(accept, 404, "TRANSFER_NOT_FOUND")
        else:
            assert g["state"] == "active"
            expect(accept, 200)
    assert both == ROUNDS


def test_accept_and_dissolution_fired_together_never_both_pass(two):
    a, b = two
    owner = register(a.url)
    for s in {a, b}:
        age_sessions(s.url)
    for i in range(ROUNDS):
        heir = register(a.url)  # a new owner receives at most 5 groups a day
        gid = make_group(owner, name=f"race {i}", members=[heir])
        dp = expect(dpreview(owner, gid), 200)
        expect(transfer(owner, gid, heir.openid), 202)
        acc = lambda: on(heir, a.url).post(f"/v1/groups/{gid}/transfer/accept")  # noqa: E731
        diss = lambda: dissolve_with(on(owner, b.url), gid, dp)  # noqa: E731
        r_acc, r_diss = fire(acc, diss) if i % 2 else fire(diss, acc)[::-1]
        assert r_acc.status_code == 200, r_acc.text
        # Refused whichever came first: the offer was open, or the owner no longer is.
        assert r_diss.status_code in (403, 409), r_diss.text
        assert r_diss.json()["code"] in ("LIFECYCLE_CONFLICT", "FORBIDDEN_ROLE"), r_diss.text
        g = expect(heir.get(f"/v1/groups/{gid}"), 200)
        assert g["owner"] == heir.openid and g["state"] == "active"


# ---- item 7: single removals count against the bulk removals' window ----

def bulk(c, gid, openids, **proof):
    return c.post(f"/v1/groups/{gid}/members/remove", {"openids": openids, **proof})


def test_single_removals_share_the_bulk_window_and_its_proof(srv):
    owner, admin = register(srv.url), register(srv.url)
    people = [register(srv.url) for _ in range(16)]
    gid = make_group(owner, name="yard", admins=[admin], members=people)
    ids = [p.openid for p in people]
    # A bulk removal of eleven is refused pending its proof ...
    expect(bulk(owner, gid, ids[:11]), 428, "CONFIRMATION_REQUIRED")
    # ... and single removals do not get around it: ten go through (the threshold) ...
    for o in ids[:10]:
        expect(owner.delete(f"/v1/groups/{gid}/members/{o}"), 204)
    # ... the eleventh asks for the same proof, bound to a bulk removal of that one member.
    p = expect(owner.delete(f"/v1/groups/{gid}/members/{ids[10]}"), 428, "CONFIRMATION_REQUIRED")
    assert [r["method"] for r in p["requirements"]] == ["confirm", "typed_name"]
    assert p["action"] == "bulk_remove" and p["params"] == {"openids": [ids[10]]}
    assert p["removed_last_day"] == 10
    pv = expect(owner.post(f"/v1/groups/{gid}/members/remove/preview", {"openids": [ids[10]]}), 200)
    assert pv["verification_required"] is True and pv["removed_last_day"] == 10
    assert pv["params_digest"] == p["params_digest"]
    expect(owner.req("DELETE", f"/v1/groups/{gid}/members/{ids[10]}", {"confirmation_token": pv["confirmation_token"]}),
           428, "TYPED_NAME_REQUIRED")
    expect(owner.req("DELETE", f"/v1/groups/{gid}/members/{ids[10]}",
                     {"confirmation_token": pv["confirmation_token"], "typed_name": "yard"}), 204)
    # A bulk removal counts the single ones too.
    expect(bulk(owner, gid, ids[11:12]), 428, "CONFIRMATION_REQUIRED")
    # Every removal is in the ledger, by either route.
    entries = [json.loads(h["entry"]) for h in expect(owner.get(f"/v1/groups/{gid}/history?limit=200"), 200)["items"]
               if h["event"] == "members.removed"]
    assert [e["removed"] for e in entries] == [1] * 11
    assert entries[-1]["verification"] == "confirm+typed_name" and entries[0]["verification"] == "none"
    # The window is per actor: the admin's own removals start from nothing.
    expect(admin.delete(f"/v1/groups/{gid}/members/{ids[11]}"), 204)
    # Leaving is not a removal by anyone.
    expect(people[12].post(f"/v1/groups/{gid}/leave"), 204)
    # A day later the owner removes without proof again.
    expect(requests.post(srv.url + "/v1/test/clock", json={"advance": 86400 + 1}, timeout=10), 200)
    expect(owner.delete(f"/v1/groups/{gid}/members/{ids[13]}"), 204)


def test_single_removal_from_the_web_past_the_threshold_needs_a_qr_approval(srv):
    from test_15_verify import approve
    from test_18_platform import challenge, digest, two_devices
    phone, desk = two_devices(srv.url, "ios", "web")
    people = [register(srv.url) for _ in range(11)]
    gid = make_group(desk.c, members=people)
    ids = [p.openid for p in people]
    for o in ids[:10]:
        expect(desk.c.delete(f"/v1/groups/{gid}/members/{o}"), 204)
    p = expect(desk.c.delete(f"/v1/groups/{gid}/members/{ids[10]}"), 428, "QR_REQUIRED")
    ch = challenge(desk, gid, "qr", params={"openids": [ids[10]]}, action="bulk_remove")
    assert p["params_digest"] == digest({"openids": [ids[10]]})
    expect(approve(phone, ch), 200)
    expect(desk.c.req("DELETE", f"/v1/groups/{gid}/members/{ids[10]}", {"challenge_id": ch["id"]}), 204)


# ---- the CLI ----

def test_cli_names_the_conflict_withdraws_and_confirms_a_removal_past_the_threshold(srv, tmp_path):
    from test_22_cli_governance import User
    owner, heir = User(srv, tmp_path), User(srv, tmp_path)
    people = [register(srv.url) for _ in range(11)]
    gid = make_group(owner.api, name="porch", members=[heir.api, *people])
    age_sessions(srv.url)
    owner.ok("transfer", gid, heir.openid, "--confirm-name", "porch")
    r = owner.fails("LIFECYCLE_CONFLICT", "dissolve", gid, "--messages", "keep", "--confirm-name", "porch", "--no-wait")
    assert "qun transfer withdraw porch" in r.stderr and "<gid>" not in r.stderr, r.stderr
    assert "withdrew the offer" in owner.ok("transfer", "withdraw", gid).stdout
    heir.fails("TRANSFER_NOT_FOUND", "transfer", "accept", gid)
    # Ten removals a day go through; the eleventh asks for the group's name.
    for p in people[:10]:
        owner.ok("group", "remove", gid, p.openid)
    owner.fails("CONFIRMATION_MISMATCH", "group", "remove", gid, people[10].openid, input="porc\n")
    r = owner.ok("group", "remove", gid, people[10].openid, input="porch\n")
    assert "removed" in r.stdout and "needs your confirmation" in r.stderr
    members = {m["openid"] for m in expect(owner.api.get(f"/v1/groups/{gid}/members"), 200)["items"]}
    assert members == {owner.openid, heir.openid}
