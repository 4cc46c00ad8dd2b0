# SPDX-License-Identifier: MIT
"""Group life as members see it: roles and memberships, leaving, ownership
transfer, message order and paging, files stored once and returned byte for byte,
and red packets whose shares add up."""
import glob
import hashlib
import os

from conftest import age_sessions, all_items, expect, make_group, register, transfer


def roles(client, gid):
    return {m["openid"]: m["role"] for m in all_items(client, f"/v1/groups/{gid}/members")}


# ---- memberships and roles ----

def test_owner_appoints_and_demotes_admins(group, url):
    gid, owner, member = group["id"], group["owner"], group["member"]
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["my_role"] == "owner"
    body = expect(owner.patch(f"/v1/groups/{gid}/members/{member.openid}", {"role": "admin"}), 200)
    assert body["role"] == "admin" and body["openid"] == member.openid
    assert expect(member.get(f"/v1/groups/{gid}"), 200)["my_role"] == "admin"
    # The new admin can now add members.
    newcomer = register(url)
    expect(member.post(f"/v1/groups/{gid}/members", {"openid": newcomer.openid}), 201)
    expect(owner.patch(f"/v1/groups/{gid}/members/{member.openid}", {"role": "member"}), 200)
    assert roles(owner, gid)[member.openid] == "member"
    expect(member.post(f"/v1/groups/{gid}/members", {"openid": register(url).openid}), 403, "FORBIDDEN_ROLE")
    # Nobody makes someone owner by a role change.
    expect(owner.patch(f"/v1/groups/{gid}/members/{member.openid}", {"role": "owner"}), 422, "FIELD_INVALID")
    expect(owner.patch(f"/v1/groups/{gid}/members/{owner.openid}", {"role": "member"}), 403, "FORBIDDEN_ROLE")
    assert roles(owner, gid)[owner.openid] == "owner"


def test_admins_manage_members_but_not_admins(group, url):
    gid, owner, admin, member = group["id"], group["owner"], group["admin"], group["member"]
    other_admin = register(url)
    expect(owner.post(f"/v1/groups/{gid}/members", {"openid": other_admin.openid, "role": "admin"}), 201)
    joiner = register(url)
    body = expect(admin.post(f"/v1/groups/{gid}/members", {"openid": joiner.openid}), 201)
    assert body["role"] == "member"
    expect(admin.post(f"/v1/groups/{gid}/members", {"openid": joiner.openid}), 409, "ALREADY_MEMBER")
    assert expect(joiner.get(f"/v1/groups/{gid}"), 200)["my_role"] == "member"
    assert gid in [g["id"] for g in all_items(joiner, "/v1/groups")]
    assert expect(admin.delete(f"/v1/groups/{gid}/members/{joiner.openid}"), 204) is None
    expect(joiner.get(f"/v1/groups/{gid}"), 404, "GROUP_NOT_FOUND")
    assert gid not in [g["id"] for g in all_items(joiner, "/v1/groups")]
    expect(admin.delete(f"/v1/groups/{gid}/members/{joiner.openid}"), 404, "MEMBER_NOT_FOUND")
    # Admins are the owner's business.
    expect(admin.delete(f"/v1/groups/{gid}/members/{other_admin.openid}"), 403, "FORBIDDEN_ROLE")
    expect(admin.post(f"/v1/groups/{gid}/members", {"openid": register(url).openid, "role": "admin"}),
           403, "FORBIDDEN_ROLE")
    expect(admin.patch(f"/v1/groups/{gid}/members/{member.openid}", {"role": "admin"}), 403, "FORBIDDEN_ROLE")
    expect(admin.delete(f"/v1/groups/{gid}/members/{owner.openid}"), 403, "FORBIDDEN_ROLE")
    assert roles(owner, gid) == {owner.openid: "owner", admin.openid: "admin", member.openid: "member",
                                 other_admin.openid: "admin"}
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["member_count"] == 4


def test_members_leave_and_the_owner_must_transfer_first(group):
    gid, owner, admin, member = group["id"], group["owner"], group["admin"], group["member"]
    p = expect(owner.post(f"/v1/groups/{gid}/leave"), 409, "OWNER_MUST_TRANSFER")
    assert "transfer" in p["detail"] and f"/v1/groups/{gid}/transfer" in p["detail"]
    assert roles(owner, gid)[owner.openid] == "owner"
    expect(member.post(f"/v1/groups/{gid}/leave"), 204)
    expect(admin.post(f"/v1/groups/{gid}/leave"), 204)
    expect(member.post(f"/v1/groups/{gid}/leave"), 404, "GROUP_NOT_FOUND")
    expect(member.post(f"/v1/groups/{gid}/messages", {"text": "still here?"}), 404, "GROUP_NOT_FOUND")
    assert roles(owner, gid) == {owner.openid: "owner"}
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["member_count"] == 1


def test_transfer_accepted(group, url):
    gid, owner, admin, member = group["id"], group["owner"], group["admin"], group["member"]
    age_sessions(url)
    body = expect(transfer(owner, gid, member.openid), 202)
    assert body["state"] == "proposed" and body["from"] == owner.openid and body["to"] == member.openid
    # Until accepted nothing changes.
    assert roles(owner, gid)[owner.openid] == "owner"
    expect(admin.post(f"/v1/groups/{gid}/transfer/accept"), 404, "TRANSFER_NOT_FOUND")
    body = expect(member.post(f"/v1/groups/{gid}/transfer/accept"), 200)
    assert body["state"] == "accepted" and body["owner"] == member.openid
    assert roles(member, gid) == {owner.openid: "admin", admin.openid: "admin", member.openid: "owner"}
    g = expect(owner.get(f"/v1/groups/{gid}"), 200)
    assert g["owner"] == member.openid and g["my_role"] == "admin"
    # The roles really moved: the old owner may leave now, the new one may not.
    expect(member.post(f"/v1/groups/{gid}/leave"), 409, "OWNER_MUST_TRANSFER")
    expect(owner.post(f"/v1/groups/{gid}/transfer", {"to": admin.openid}), 403, "FORBIDDEN_ROLE")
    expect(member.post(f"/v1/groups/{gid}/dissolution/preview", {"messages": "keep"}), 200)
    expect(member.post(f"/v1/groups/{gid}/transfer/accept"), 404, "TRANSFER_NOT_FOUND")
    expect(owner.post(f"/v1/groups/{gid}/leave"), 204)


def test_transfer_declined_and_pending(group, url):
    gid, owner, admin, member = group["id"], group["owner"], group["admin"], group["member"]
    age_sessions(url)
    expect(transfer(owner, gid, member.openid), 202)
    p = expect(owner.post(f"/v1/groups/{gid}/transfer", {"to": admin.openid}), 409, "TRANSFER_PENDING")
    assert p["status"] == 409
    expect(admin.post(f"/v1/groups/{gid}/transfer/accept"), 404, "TRANSFER_NOT_FOUND")
    assert expect(member.post(f"/v1/groups/{gid}/transfer/decline"), 200)["state"] == "declined"
    assert roles(owner, gid) == {owner.openid: "owner", admin.openid: "admin", member.openid: "member"}
    expect(member.post(f"/v1/groups/{gid}/transfer/accept"), 404, "TRANSFER_NOT_FOUND")
    # After a decline a new proposal may go to someone else.
    expect(transfer(owner, gid, admin.openid), 202)
    expect(admin.post(f"/v1/groups/{gid}/transfer/accept"), 200)
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["owner"] == admin.openid
    # Nobody transfers to an outsider or to themselves.
    expect(admin.post(f"/v1/groups/{gid}/transfer", {"to": register(url).openid}), 404, "MEMBER_NOT_FOUND")
    expect(admin.post(f"/v1/groups/{gid}/transfer", {"to": admin.openid}), 404, "MEMBER_NOT_FOUND")


def test_a_removed_member_loses_a_pending_transfer(group, url):
    gid, owner, member = group["id"], group["owner"], group["member"]
    age_sessions(url)
    expect(transfer(owner, gid, member.openid), 202)
    expect(owner.delete(f"/v1/groups/{gid}/members/{member.openid}"), 204)
    expect(owner.post(f"/v1/groups/{gid}/members", {"openid": member.openid}), 201)
    expect(member.post(f"/v1/groups/{gid}/transfer/accept"), 404, "TRANSFER_NOT_FOUND")
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["owner"] == owner.openid


# ---- messages ----

def test_message_sequence_and_cursor_pages(group):
    gid, owner, admin, member = group["id"], group["owner"], group["admin"], group["member"]
    writers = [owner, admin, member]
    for i in range(120):
        m = expect(writers[i % 3].post(f"/v1/groups/{gid}/messages", {"text": f"m{i}"}), 201)
        assert m["seq"] == i + 1 and m["author"] == writers[i % 3].openid
    assert expect(owner.get(f"/v1/groups/{gid}"), 200)["last_seq"] == 120
    seen, after, pages = [], None, 0
    while True:
        q = "?limit=50" + (f"&after={after}" if after else "")
        page = expect(member.get(f"/v1/groups/{gid}/messages{q}"), 200)
        pages += 1
        seen += page["items"]
        after = page["next_cursor"]
        if after is None:
            break
    assert pages == 3
    assert [m["seq"] for m in seen] == list(range(1, 121))
    assert [m["text"] for m in seen] == [f"m{i}" for i in range(120)]
    assert [m["author"] for m in seen] == [writers[i % 3].openid for i in range(120)]
    # The default page is 50; a cursor resumes exactly after what was read.
    assert len(expect(member.get(f"/v1/groups/{gid}/messages"), 200)["items"]) == 50
    tail = expect(member.get(f"/v1/groups/{gid}/messages?after=117"), 200)
    assert [m["seq"] for m in tail["items"]] == [118, 119, 120] and tail["next_cursor"] is None
    assert expect(member.get(f"/v1/groups/{gid}/messages?after=120"), 200)["items"] == []
    # A new message shows up after the last cursor.
    expect(admin.post(f"/v1/groups/{gid}/messages", {"text": "late"}), 201)
    assert [m["text"] for m in expect(member.get(f"/v1/groups/{gid}/messages?after=120"), 200)["items"]] == ["late"]


def test_sequences_are_per_group(url):
    u = register(url)
    a, b = make_group(u), make_group(u)
    for i in range(3):
        assert expect(u.post(f"/v1/groups/{a}/messages", {"text": "a"}), 201)["seq"] == i + 1
    assert expect(u.post(f"/v1/groups/{b}/messages", {"text": "b"}), 201)["seq"] == 1
    assert [m["text"] for m in all_items(u, f"/v1/groups/{b}/messages")] == ["b"]


def test_unicode_text_round_trips(group):
    gid, member = group["id"], group["member"]
    text = "你好，世界 👋 — ‮ «quotes» \"and\" \\ back\nslash\t\u00e9"
    expect(member.post(f"/v1/groups/{gid}/messages", {"text": text}), 201)
    assert all_items(member, f"/v1/groups/{gid}/messages")[0]["text"] == text


# ---- files ----

def blob_files(server, digest):
    return glob.glob(os.path.join(server.data, "blobs", "*", digest))


def test_file_upload_and_download(server, group):
    gid, member, owner = group["id"], group["member"], group["owner"]
    data = bytes(range(256)) * 4096 + b"\x00tail"  # 1 MiB and change, all byte values
    digest = hashlib.sha256(data).hexdigest()
    f = expect(member.post(f"/v1/groups/{gid}/files?name=report.bin", raw=data,
                           headers={"Content-Type": "application/x-test"}), 201)
    assert f["digest"] == digest and f["size"] == len(data) and f["name"] == "report.bin"
    assert f["uploader"] == member.openid and f["content_type"] == "application/x-test"
    r = owner.get(f"/v1/groups/{gid}/files/{digest}")
    assert r.status_code == 200 and r.content == data
    assert hashlib.sha256(r.content).hexdigest() == digest
    assert r.headers["Content-Type"] == "application/x-test"
    assert "report.bin" in r.headers["Content-Disposition"]
    listed = all_items(owner, f"/v1/groups/{gid}/files")
    assert [x["digest"] for x in listed] == [digest]
    # Stored under its digest, exactly those bytes, no temporary left behind.
    paths = blob_files(server, digest)
    assert paths == [os.path.join(server.data, "blobs", digest[:2], digest)]
    assert open(paths[0], "rb").read() == data
    assert not glob.glob(os.path.join(server.data, "blobs", "*", "*.tmp.*"))


def test_same_bytes_in_two_groups_are_stored_once(server, url):
    u, v = register(url), register(url)
    a, b = make_group(u), make_group(v)
    data = os.urandom(70000)
    digest = hashlib.sha256(data).hexdigest()
    fa = expect(u.post(f"/v1/groups/{a}/files?name=one.bin", raw=data), 201)
    fb = expect(v.post(f"/v1/groups/{b}/files?name=two.bin", raw=data), 201)
    assert fa["digest"] == fb["digest"] == digest
    assert fa["name"] == "one.bin" and fb["name"] == "two.bin"
    assert len(blob_files(server, digest)) == 1
    # The same upload again in one group is the same file, not a second one.
    expect(u.post(f"/v1/groups/{a}/files?name=one.bin", raw=data), 201)
    assert len(all_items(u, f"/v1/groups/{a}/files")) == 1
    assert u.get(f"/v1/groups/{a}/files/{digest}").content == data
    assert v.get(f"/v1/groups/{b}/files/{digest}").content == data
    assert len(blob_files(server, digest)) == 1


def test_non_members_cannot_download(group, url):
    gid, member, outsider = group["id"], group["member"], group["outsider"]
    data = b"members only"
    digest = expect(member.post(f"/v1/groups/{gid}/files?name=m.txt", raw=data), 201)["digest"]
    expect(outsider.get(f"/v1/groups/{gid}/files/{digest}"), 404, "GROUP_NOT_FOUND")
    expect(outsider.get(f"/v1/groups/{gid}/files"), 404, "GROUP_NOT_FOUND")
    expect(group["anon"].get(f"/v1/groups/{gid}/files/{digest}"), 401, "UNAUTHENTICATED")
    # Leaving ends access too.
    expect(member.post(f"/v1/groups/{gid}/leave"), 204)
    r = member.get(f"/v1/groups/{gid}/files/{digest}")
    expect(r, 404, "GROUP_NOT_FOUND")
    assert data not in r.content


# ---- payments ----

def test_red_packet_shares_add_up(group, url):
    gid, owner, admin, member = group["id"], group["owner"], group["admin"], group["member"]
    third = register(url)
    fourth = register(url)
    for c in (third, fourth):
        expect(owner.post(f"/v1/groups/{gid}/members", {"openid": c.openid}), 201)
    pay = expect(owner.post(f"/v1/groups/{gid}/payments", {"amount": 100, "shares": 3, "memo": "lunch"}), 201)
    assert (pay["amount"], pay["shares"], pay["claimed_amount"], pay["claimed_shares"]) == (100, 3, 0, 0)
    assert pay["creator"] == owner.openid and pay["memo"] == "lunch" and pay["kind"] == "red_packet"
    claim = f"/v1/groups/{gid}/payments/{pay['id']}/claim"
    got = []
    for i, c in enumerate([admin, member, third]):
        body = expect(c.post(claim), 201)
        assert body["claimer"] == c.openid and body["payment"] == pay["id"]
        got.append(body["amount"])
        if i == 0:
            expect(c.post(claim), 409, "ALREADY_CLAIMED")
    assert got == [33, 33, 34] and sum(got) == 100
    expect(fourth.post(claim), 409, "PAYMENT_EXHAUSTED")
    p = expect(owner.get(f"/v1/groups/{gid}/payments"), 200)["items"][0]
    assert (p["claimed_amount"], p["claimed_shares"]) == (100, 3)
    # Who claimed what, by name, in the order they claimed.
    assert [(x["claimer"], x["claimer_username"], x["amount"]) for x in p["claims"]] == \
        [(c.openid, c.username, a) for c, a in zip([admin, member, third], got)]

    sender = [(b["payment"], b["kind"], b["amount"]) for b in all_items(owner, "/v1/me/bill")]
    assert sender == [(pay["id"], "red_packet_sent", -100)]
    for c, amount in zip([admin, member, third], got):
        lines = all_items(c, "/v1/me/bill")
        assert [(b["payment"], b["kind"], b["amount"], b["group"]) for b in lines] == \
            [(pay["id"], "red_packet_received", amount, gid)]
    assert all_items(fourth, "/v1/me/bill") == []


def test_payment_rules(group):
    gid, owner, outsider = group["id"], group["owner"], group["outsider"]
    expect(owner.post(f"/v1/groups/{gid}/payments", {"amount": 2, "shares": 3}), 422, "FIELD_INVALID")
    one = expect(owner.post(f"/v1/groups/{gid}/payments", {"amount": 7, "shares": 1}), 201)
    assert expect(group["member"].post(f"/v1/groups/{gid}/payments/{one['id']}/claim"), 201)["amount"] == 7
    expect(outsider.post(f"/v1/groups/{gid}/payments/{one['id']}/claim"), 404, "GROUP_NOT_FOUND")
    assert sum(b["amount"] for b in all_items(owner, "/v1/me/bill")) == -7
