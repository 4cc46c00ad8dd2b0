# SPDX-License-Identifier: MIT
"""An upload through /v1 appears in the group's history as a file message (issue 17):
POST /v1/groups/{id}/files adds the file and, in the same transaction, a message whose
`file` names it and whose msgtype follows the content type; the upload's answer keeps
its shape and adds `message_seq`.  The message reaches the event stream like any other,
and a refused upload leaves no message behind."""
import hashlib

from conftest import expect, register
from test_14_events import Stream


def group_of_two(url):
    owner, bob = register(url), register(url)
    expect(owner.patch("/v1/me", {"display_name": "王小明"}), 200)
    gid = expect(owner.post("/v1/groups", {"name": "photos"}), 201)["id"]
    expect(owner.post(f"/v1/groups/{gid}/members", {"openid": bob.openid}), 201)
    return gid, owner, bob


def messages(client, gid):
    return expect(client.get(f"/v1/groups/{gid}/messages?limit=200"), 200)["items"]


PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a5f6b0e00000000049454e44ae426082")


def test_upload_posts_a_file_message(url):
    gid, owner, bob = group_of_two(url)
    before = expect(owner.get(f"/v1/groups/{gid}"), 200).get("last_seq") or 0
    f = expect(owner.post(f"/v1/groups/{gid}/files?name=dot.png", raw=PNG,
                          headers={"Content-Type": "image/png"}), 201)
    # The answer keeps its fields and adds the message's seq.
    assert {"digest", "name", "content_type", "size", "uploader", "uploader_display_name",
            "created_at"} <= set(f), f
    assert f["digest"] == hashlib.sha256(PNG).hexdigest() and f["name"] == "dot.png"
    assert f["message_seq"] == before + 1, f
    m = messages(bob, gid)[-1]
    assert m["seq"] == f["message_seq"] and m["author"] == owner.openid
    assert m["author_display_name"] == "王小明" and m["text"] == "dot.png" and m["msgtype"] == "m.image"
    assert m["file"] == {"sha256": f["digest"], "name": "dot.png", "content_type": "image/png",
                         "size": len(PNG)}, m
    # The group's last message is the upload.
    assert expect(bob.get(f"/v1/groups/{gid}"), 200)["last_seq"] == f["message_seq"]


def test_msgtype_follows_the_content_type(url):
    gid, owner, bob = group_of_two(url)
    for name, ctype, want in [("a.mp3", "audio/mpeg", "m.audio"), ("v.mp4", "video/mp4", "m.video"),
                              ("notes.pdf", "application/pdf", "m.file")]:
        f = expect(bob.post(f"/v1/groups/{gid}/files?name={name}", raw=name.encode() * 3,
                            headers={"Content-Type": ctype}), 201)
        m = messages(owner, gid)[-1]
        assert m["seq"] == f["message_seq"] and m["msgtype"] == want and m["file"]["name"] == name, m
        assert m["author"] == bob.openid


def test_same_bytes_again_is_shared_again_under_the_groups_name(url):
    gid, owner, bob = group_of_two(url)
    data = b"minutes of the meeting\n"
    first = expect(owner.post(f"/v1/groups/{gid}/files?name=minutes.txt", raw=data,
                              headers={"Content-Type": "text/plain"}), 201)
    again = expect(bob.post(f"/v1/groups/{gid}/files?name=copy.txt", raw=data,
                            headers={"Content-Type": "text/plain"}), 201)
    assert again["digest"] == first["digest"] and again["name"] == "minutes.txt"
    assert again["message_seq"] == first["message_seq"] + 1
    files = expect(owner.get(f"/v1/groups/{gid}/files"), 200)["items"]
    assert len(files) == 1  # one file, two messages sharing it
    last = messages(owner, gid)[-2:]
    assert [m["file"]["name"] for m in last] == ["minutes.txt", "minutes.txt"]
    assert [m["author"] for m in last] == [owner.openid, bob.openid]


def test_refused_upload_posts_nothing(url):
    gid, owner, bob = group_of_two(url)
    stranger = register(url)
    expect(stranger.post(f"/v1/groups/{gid}/files?name=x.bin", raw=b"x"), 404, "GROUP_NOT_FOUND")
    expect(owner.post(f"/v1/groups/{gid}/files?name=", raw=b"x"), 422, "FIELD_INVALID")
    expect(owner.post(f"/v1/groups/{gid}/files?name=empty.bin", raw=b""), 422, "FIELD_INVALID")
    assert messages(owner, gid) == []


def test_file_message_reaches_the_event_stream(url):
    gid, owner, bob = group_of_two(url)
    stream = Stream(bob)
    try:
        f = expect(owner.post(f"/v1/groups/{gid}/files?name=dot.png", raw=PNG,
                              headers={"Content-Type": "image/png"}), 201)
        ev = stream.wait("message.created", timeout=5, group=gid)
        assert ev["data"]["seq"] == f["message_seq"] and ev["data"]["msgtype"] == "m.image"
        assert ev["data"]["file"]["sha256"] == f["digest"]
    finally:
        stream.close()


def test_cli_bill_is_a_readable_table(url):
    """`qun bill`: when, the group's name, what happened and the amount in yuan, aligned
    by display width, with a total; no ids."""
    from test_54_cli_names import ok, width

    owner, bob = register(url), register(url)
    assert ok(url, bob, "bill").stdout.strip() == "your bill is empty"
    expect(owner.patch("/v1/me", {"display_name": "王小明"}), 200)
    lunch = expect(owner.post("/v1/groups", {"name": "午餐群"}), 201)["id"]
    team = expect(owner.post("/v1/groups", {"name": "team"}), 201)["id"]
    for gid in (lunch, team):
        expect(owner.post(f"/v1/groups/{gid}/members", {"openid": bob.openid}), 201)
    p1 = expect(owner.post(f"/v1/groups/{lunch}/payments", {"amount": 1000, "shares": 4}), 201)["id"]
    p2 = expect(owner.post(f"/v1/groups/{team}/payments", {"amount": 5, "shares": 1}), 201)["id"]
    expect(bob.post(f"/v1/groups/{lunch}/payments/{p1}/claim", {}), 201)
    expect(bob.post(f"/v1/groups/{team}/payments/{p2}/claim", {}), 201)
    out = ok(url, bob, "bill").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["WHEN", "GROUP", "WHAT", "AMOUNT"], out
    a = next(line for line in lines if "午餐群" in line)
    b = next(line for line in lines if "team" in line)
    assert "claimed from a red packet" in a and a.endswith("+¥2.50"), out
    assert b.endswith("+¥0.05"), out
    assert lines[-1].startswith("total") and lines[-1].endswith("+¥2.55"), out
    # Columns line up by display width, Chinese names included.
    assert {width(a), width(b), width(lines[-1])} == {width(lines[0])}, out
    assert width(a[:a.index("claimed")]) == width(b[:b.index("claimed")]), out
    assert "p_" not in out and "g_" not in out and "u_" not in out, out
    mine = ok(url, owner, "bill").stdout
    assert "sent a red packet" in mine and "-¥10.00" in mine and mine.splitlines()[-1].endswith("-¥10.05"), mine
    assert "qun bill" in ok(url, None, "help", "bill").stdout
