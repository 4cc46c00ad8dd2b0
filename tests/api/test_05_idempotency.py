# SPDX-License-Identifier: MIT
"""Idempotency-Key on POST: a retry gets the first answer again and creates nothing
twice; a key cannot be reused for another request; keys belong to their user; racing
retries still create one thing; malformed keys are refused."""
import threading
import uuid

import requests

from conftest import Client, all_items, expect, make_group, register


def key():
    return "k-" + uuid.uuid4().hex


def idem(k):
    return {"Idempotency-Key": k}


def same_answer(first, again):
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.headers["Content-Type"] == first.headers["Content-Type"]


def test_retried_message_is_posted_once(group):
    gid, m = group["id"], group["member"]
    k = key()
    first = m.post(f"/v1/groups/{gid}/messages", {"text": "once"}, headers=idem(k))
    expect(first, 201)
    assert first.headers.get("Idempotent-Replayed") is None
    for _ in range(3):
        same_answer(first, m.post(f"/v1/groups/{gid}/messages", {"text": "once"}, headers=idem(k)))
    msgs = all_items(m, f"/v1/groups/{gid}/messages")
    assert [x["text"] for x in msgs] == ["once"]
    # A new key is a new message.
    expect(m.post(f"/v1/groups/{gid}/messages", {"text": "once"}, headers=idem(key())), 201)
    assert len(all_items(m, f"/v1/groups/{gid}/messages")) == 2


def test_retried_member_add_is_not_already_member(group, url):
    gid, owner = group["id"], group["owner"]
    newcomer = register(url)
    k = key()
    first = owner.post(f"/v1/groups/{gid}/members", {"openid": newcomer.openid}, headers=idem(k))
    expect(first, 201)
    same_answer(first, owner.post(f"/v1/groups/{gid}/members", {"openid": newcomer.openid}, headers=idem(k)))
    members = all_items(owner, f"/v1/groups/{gid}/members")
    assert [x["openid"] for x in members].count(newcomer.openid) == 1
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["member_count"] == len(members) == 4
    # Without the key the same request is a conflict, as it should be.
    expect(owner.post(f"/v1/groups/{gid}/members", {"openid": newcomer.openid}), 409, "ALREADY_MEMBER")


def test_retried_payment_and_claim(group):
    gid, owner, member = group["id"], group["owner"], group["member"]
    k = key()
    first = owner.post(f"/v1/groups/{gid}/payments", {"amount": 90, "shares": 3}, headers=idem(k))
    pay = expect(first, 201)
    same_answer(first, owner.post(f"/v1/groups/{gid}/payments", {"amount": 90, "shares": 3}, headers=idem(k)))
    assert [p["id"] for p in expect(owner.get(f"/v1/groups/{gid}/payments"), 200)["items"]] == [pay["id"]]
    bill = all_items(owner, "/v1/me/bill")
    assert [(b["payment"], b["amount"]) for b in bill] == [(pay["id"], -90)]

    kc = key()
    claim = member.post(f"/v1/groups/{gid}/payments/{pay['id']}/claim", headers=idem(kc))
    assert expect(claim, 201)["amount"] == 30
    same_answer(claim, member.post(f"/v1/groups/{gid}/payments/{pay['id']}/claim", headers=idem(kc)))
    assert [(b["payment"], b["amount"]) for b in all_items(member, "/v1/me/bill")] == [(pay["id"], 30)]
    p = expect(owner.get(f"/v1/groups/{gid}/payments"), 200)["items"][0]
    assert (p["claimed_shares"], p["claimed_amount"]) == (1, 30)
    expect(member.post(f"/v1/groups/{gid}/payments/{pay['id']}/claim", headers=idem(key())), 409, "ALREADY_CLAIMED")


def test_retried_group_creation_and_registration(url):
    u = register(url)
    k = key()
    first = u.post("/v1/groups", {"name": "only one"}, headers=idem(k))
    expect(first, 201)
    same_answer(first, u.post("/v1/groups", {"name": "only one"}, headers=idem(k)))
    assert [g["name"] for g in all_items(u, "/v1/groups")] == ["only one"]

    name, k = "u" + uuid.uuid4().hex[:10], key()
    first = requests.post(url + "/v1/users", json={"username": name, "password": "long enough"}, headers=idem(k))
    expect(first, 201)
    again = requests.post(url + "/v1/users", json={"username": name, "password": "long enough"}, headers=idem(k))
    same_answer(first, again)


def test_same_key_different_request_is_refused(group):
    gid, m = group["id"], group["member"]
    k = key()
    expect(m.post(f"/v1/groups/{gid}/messages", {"text": "original"}, headers=idem(k)), 201)
    expect(m.post(f"/v1/groups/{gid}/messages", {"text": "changed"}, headers=idem(k)), 422, "IDEMPOTENCY_KEY_REUSED")
    # Another endpoint with the same key is another request too.
    expect(m.post(f"/v1/groups/{gid}/payments", {"amount": 5, "shares": 1}, headers=idem(k)),
           422, "IDEMPOTENCY_KEY_REUSED")
    expect(m.post("/v1/groups", {"name": "original"}, headers=idem(k)), 422, "IDEMPOTENCY_KEY_REUSED")
    assert [x["text"] for x in all_items(m, f"/v1/groups/{gid}/messages")] == ["original"]
    assert expect(m.get(f"/v1/groups/{gid}/payments"), 200)["items"] == []
    assert [g["id"] for g in all_items(m, "/v1/groups")] == [gid]


def test_keys_belong_to_their_user(group):
    gid, a, b = group["id"], group["member"], group["admin"]
    k = key()
    ra = a.post(f"/v1/groups/{gid}/messages", {"text": "same"}, headers=idem(k))
    rb = b.post(f"/v1/groups/{gid}/messages", {"text": "same"}, headers=idem(k))
    expect(ra, 201), expect(rb, 201)
    assert rb.headers.get("Idempotent-Replayed") is None
    assert ra.json()["author"] == a.openid and rb.json()["author"] == b.openid
    assert ra.json()["seq"] != rb.json()["seq"]
    # And b reusing the key for something else is b's business, not a conflict with a.
    expect(group["owner"].post(f"/v1/groups/{gid}/messages", {"text": "different"}, headers=idem(k)), 201)
    assert len(all_items(a, f"/v1/groups/{gid}/messages")) == 3


def test_a_refused_request_does_not_burn_its_key(group, url):
    gid, owner = group["id"], group["owner"]
    late = register(url)
    k = key()
    expect(late.post(f"/v1/groups/{gid}/messages", {"text": "let me in"}, headers=idem(k)), 404, "GROUP_NOT_FOUND")
    expect(owner.post(f"/v1/groups/{gid}/members", {"openid": late.openid}), 201)
    r = late.post(f"/v1/groups/{gid}/messages", {"text": "let me in"}, headers=idem(k))
    expect(r, 201)
    assert r.headers.get("Idempotent-Replayed") is None
    same_answer(r, late.post(f"/v1/groups/{gid}/messages", {"text": "let me in"}, headers=idem(k)))


def test_concurrent_retries_create_one_message(group, url):
    gid, m = group["id"], group["member"]
    k = key()
    answers, errors = [], []
    start = threading.Barrier(20)

    def go():
        c = Client(url, m.token)
        try:
            start.wait()
            r = c.post(f"/v1/groups/{gid}/messages", {"text": "racing"}, headers=idem(k))
            answers.append((r.status_code, r.content, r.headers.get("Idempotent-Replayed")))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=go) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(answers) == 20
    assert {(s, c) for s, c, _ in answers} == {answers[0][:2]} and answers[0][0] == 201
    assert sum(rep is None for _, _, rep in answers) == 1  # exactly one did the work
    assert [x["text"] for x in all_items(m, f"/v1/groups/{gid}/messages")] == ["racing"]


def test_invalid_keys(group):
    gid, m = group["id"], group["member"]
    for bad in ["k" * 129, "", "a b", "tab\there", "a\x01b", "del\x7f", b"caf\xc3\xa9", b"\xff"]:
        expect(m.post(f"/v1/groups/{gid}/messages", {"text": "never"}, headers=idem(bad)),
               400, "IDEMPOTENCY_KEY_INVALID")
    # The longest valid key, and every printable character.
    expect(m.post(f"/v1/groups/{gid}/messages", {"text": "long key"}, headers=idem("k" * 128)), 201)
    printable = "".join(chr(c) for c in range(0x21, 0x7f))
    expect(m.post(f"/v1/groups/{gid}/messages", {"text": "odd key"}, headers=idem(printable)), 201)
    same_answer(m.post(f"/v1/groups/{gid}/messages", {"text": "odd key"}, headers=idem(printable)),
                m.post(f"/v1/groups/{gid}/messages", {"text": "odd key"}, headers=idem(printable)))
    assert [x["text"] for x in all_items(m, f"/v1/groups/{gid}/messages")] == ["long key", "odd key"]


def test_secrets_are_never_replayed(group):
    """Answers holding a secret (login tokens, confirmation tokens) ignore the key."""
    gid, owner = group["id"], group["owner"]
    k = key()
    a = expect(owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "keep"}, headers=idem(k)), 200)
    r = owner.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "keep"}, headers=idem(k))
    b = expect(r, 200)
    assert r.headers.get("Idempotent-Replayed") is None
    assert a["confirmation_token"] != b["confirmation_token"]
