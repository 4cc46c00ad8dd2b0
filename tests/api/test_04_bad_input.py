# SPDX-License-Identifier: MIT
"""Bad input of every kind gets a 4xx problem+json answer with a stable code, never a
5xx; the server keeps answering; and a rejected request creates nothing."""
import json
import socket
import uuid

import pytest
import requests

from conftest import Client, all_items, expect, make_group, register


class World:
    """One group with content, and what it looked like before the bad requests."""

    def __init__(self, url):
        self.url = url
        self.owner, self.member = register(url), register(url)
        self.gid = make_group(self.owner, members=[self.member])
        self.g = f"/v1/groups/{self.gid}"
        expect(self.owner.post(self.g + "/messages", {"text": "first"}), 201)
        self.pid = expect(self.owner.post(self.g + "/payments", {"amount": 10, "shares": 2}), 201)["id"]
        self.before = self.state()

    def state(self):
        o = self.owner
        return {
            "groups": [x["id"] for x in all_items(o, "/v1/groups")],
            "member_groups": [x["id"] for x in all_items(self.member, "/v1/groups")],
            "group": expect(o.get(self.g), 200),
            "members": all_items(o, self.g + "/members"),
            "messages": all_items(o, self.g + "/messages"),
            "files": all_items(o, self.g + "/files"),
            "payments": expect(o.get(self.g + "/payments"), 200)["items"],
            "bill": all_items(o, "/v1/me/bill"),
            "member_bill": all_items(self.member, "/v1/me/bill"),
            "sessions": len(expect(o.get("/v1/me/sessions"), 200)["items"]),
            "passkeys": expect(o.get("/v1/me/passkeys"), 200)["items"],
        }

    def assert_unchanged(self):
        assert self.state() == self.before


@pytest.fixture(scope="module")
def w(server):
    return World(server.url)


def healthy(url):
    assert requests.get(url + "/healthz", timeout=5).json() == {"status": "ok"}


def refused(r, status, code, field=None):
    assert r.status_code < 500
    p = expect(r, status, code)
    if field is not None:
        assert p.get("field") == field, p
    return p


def post_raw(client, path, raw, headers=None):
    return client.post(path, raw=raw, headers=dict({"Content-Type": "application/json"}, **(headers or {})))


# A registration or assertion body whose members have the right shapes (and say nothing).
PASSKEY = {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}
# Routes of the caller's own account: sent as the group's owner.
OWN = ("/v1/groups", "/v1/me/passkeys", "/v1/me/passkeys/options", "/v1/challenges/c_nothing/passkey")

MALFORMED = [b"{", b"}", b"{'text': 'single quotes'}", b'{text: "a"}', b'{"text": "a",}', b'{"text" "a"}',
             b'{"text": "a"} {"text": "b"}', b'{"text": "unterminated}', b"\xef\xbb\xbf{\"text\": \"bom\"}",
             b'{"text": "a", "text": "b"}', b'{"text": NaN}', b"<xml/>", b"   \n  ", b"nul", b"{\"text\": 01}"]
NOT_OBJECTS = [b"null", b"1", b"-2.5", b'"text"', b"[]", b'[{"text": "a"}]', b"true", b"false"]


@pytest.mark.parametrize("path", ["/messages", "/payments", "", "/members", "/dissolution/preview"])
def test_malformed_json_and_non_objects(w, path):
    method = "PATCH" if path == "" else "POST"
    for raw in MALFORMED + NOT_OBJECTS:
        r = w.owner.req(method, w.g + path, raw=raw, headers={"Content-Type": "application/json"})
        refused(r, 400, "BAD_JSON")
    for raw in MALFORMED + NOT_OBJECTS:
        refused(requests.post(w.url + "/v1/users", data=raw), 400, "BAD_JSON")
    healthy(w.url)
    w.assert_unchanged()


# endpoint (method, path template), a valid body, and per field the wrong values.
WRONG_TYPES = [
    ("POST", "/v1/users", {"username": "fresh_user", "password": "long enough"},
     {"username": [1, 1.5, True, None, [], {}, ["a"]], "password": [12345678, False, None, {"a": "b"}]}),
    ("POST", "/v1/sessions", {"username": "x", "password": "y", "device_id": "d", "platform": "cli"},
     {"device_id": [1, [], None], "platform": [1, "CLI", "linux", None, ["cli"]]}),
    ("POST", "{g}/messages", {"text": "hi"},
     {"text": [1, 0, -1, 1.0, True, None, [], ["hi"], {"text": "hi"}]}),
    ("POST", "/v1/groups", {"name": "n"},
     {"name": [1, None, [], {}], "kind": [1, "private", "STANDARD", ""], "regions": ["cn", [1, 2], {}]}),
    ("PATCH", "{g}", {"name": "n"}, {"name": [1, None, False, ["n"]]}),
    ("POST", "{g}/members", {"openid": "u_x"},
     {"openid": [1, None, [], {}], "role": ["owner", "guest", 1, "ADMIN"]}),
    ("PATCH", "{g}/members/{member}", {"role": "admin"}, {"role": ["owner", "", 2, None, ["admin"]]}),
    ("POST", "{g}/payments", {"amount": 10, "shares": 2},
     {"amount": ["10", 10.5, 1e3, 0, -10, True, None, [10], 100000001],
      "shares": ["2", 2.0, 0, -1, 1001, False, None], "kind": ["gift", 1], "memo": [1, [], {}]}),
    ("POST", "{g}/transfer", {"to": "u_x"}, {"to": [1, None, [], {}]}),
    ("POST", "{g}/dissolution/preview", {"messages": "keep"},
     {"messages": ["KEEP", "archive", "", 1, True, None, ["keep"]]}),
    ("POST", "{g}/dissolution", {"messages": "keep"},
     {"messages": ["maybe", 0], "confirmation_token": [1, [], {}, ""]}),
    ("POST", "/v1/test/clock", {"advance": 1}, {"advance": ["1", 1.5, -1, None, True]}),
    ("DELETE", "{g}/messages/1", {"reason": "r"}, {"reason": [1, 0.5, True, [], ["r"], {}, "", "x" * 501]}),
    # A passphrase export (test_57 has the rest: too short, both, neither).
    ("POST", "{g}/exports", {"passphrase": "long enough passphrase", "scope": "self"},
     {"passphrase": [1, True, [], {}, "", "x" * 1025, "two\nlines here", "tab\there long"],
      "recipients": [1, "age1x", {}, True], "lang": ["fr", "EN", 1, ""], "tz_offset": ["8", 841, -841, 1.5, True, []]}),
    ("POST", "/v1/me/passkeys", PASSKEY,
     {"id": [1, None, [], ""], "rawId": [1, None, {}, "x" * 1401], "type": ["password", 1, None],
      "response": ["x", 1, [], None], "authenticatorAttachment": ["usb", 1], "clientExtensionResults": [1, "x", []],
      "label": [1, [], "x" * 65], "challenge_id": [1, "", {}]}),
    ("POST", "/v1/challenges/c_nothing/passkey", PASSKEY,
     {"rawId": [1, None], "type": ["", "Public-Key"], "response": [[], "{}"]}),
]


def fill(w, path):
    return path.format(g=w.g, member=w.member.openid)


@pytest.mark.parametrize("method,path,body,bad", WRONG_TYPES, ids=[f"{m} {p}" for m, p, _, _ in WRONG_TYPES])
def test_wrong_types_for_every_field(w, method, path, body, bad):
    client = w.owner if "{" in path or path in OWN else Client(w.url)
    for field, values in bad.items():
        for v in values:
            r = client.req(method, fill(w, path), dict(body, **{field: v}))
            refused(r, 422, "FIELD_INVALID", field)
    healthy(w.url)
    w.assert_unchanged()


UNKNOWN = [
    ("POST", "/v1/users", {"username": "fresh_user2", "password": "long enough"}),
    ("POST", "{g}/messages", {"text": "hi"}),
    ("POST", "/v1/groups", {"name": "n"}),
    ("PATCH", "{g}", {"name": "n"}),
    ("POST", "{g}/members", {"openid": "u_x"}),
    ("POST", "{g}/payments", {"amount": 10, "shares": 2}),
    ("POST", "{g}/payments/{pid}/claim", {}),
    ("POST", "{g}/leave", {}),
    ("POST", "{g}/transfer/accept", {}),
    ("POST", "{g}/dissolution/preview", {"messages": "keep"}),
    ("DELETE", "{g}/messages/1", {}),
    ("POST", "{g}/exports", {"passphrase": "long enough passphrase", "scope": "self"}),
    ("POST", "/v1/me/passkeys/options", {}),
    ("POST", "/v1/me/passkeys", PASSKEY),
    ("POST", "/v1/challenges/c_nothing/passkey", PASSKEY),
]


@pytest.mark.parametrize("method,path,body", UNKNOWN, ids=[f"{m} {p}" for m, p, _ in UNKNOWN])
def test_unknown_fields(w, method, path, body):
    client = w.member if path.startswith("{g}") else (w.owner if path == "/v1/groups" else Client(w.url))
    if path in ("{g}", "{g}/dissolution/preview") or path in OWN:
        client = w.owner
    p = path.replace("{pid}", w.pid)
    for extra in ["admin", "is_owner", "Text", "", "x" * 200, "role\u00e9", "a" + "\u00e9" * 40, "\u5b57" * 30]:
        r = client.req(method, fill(w, p), dict(body, **{extra: True}))
        got = refused(r, 422, "FIELD_UNKNOWN")
        assert len(got["detail"]) < 300
        if extra:  # long names may be cut, but the answer still names the field
            assert got["field"] and extra.startswith(got["field"]), got
    w.assert_unchanged()


def test_preview_does_not_accept_a_token(w):
    refused(w.owner.post(w.g + "/dissolution/preview", {"messages": "keep", "confirmation_token": "qct_x"}),
            422, "FIELD_UNKNOWN", "confirmation_token")
    w.assert_unchanged()


MISSING = [
    ("POST", "/v1/users", {"username": "fresh_user3", "password": "long enough"}),
    ("POST", "/v1/sessions", {"username": "x", "password": "y", "device_id": "d", "platform": "cli"}),
    ("POST", "{g}/messages", {"text": "hi"}),
    ("POST", "/v1/groups", {"name": "n"}),
    ("PATCH", "{g}", {"name": "n"}),
    ("POST", "{g}/members", {"openid": "u_x"}),
    ("PATCH", "{g}/members/{member}", {"role": "admin"}),
    ("POST", "{g}/payments", {"amount": 10, "shares": 2}),
    ("POST", "{g}/transfer", {"to": "u_x"}),
    ("POST", "{g}/dissolution/preview", {"messages": "keep"}),
    ("POST", "/v1/me/passkeys", PASSKEY),
    ("POST", "/v1/challenges/c_nothing/passkey", PASSKEY),
]


@pytest.mark.parametrize("method,path,body", MISSING, ids=[f"{m} {p}" for m, p, _ in MISSING])
def test_missing_fields(w, method, path, body):
    client = w.owner if "{" in path or path in OWN else Client(w.url)
    for field in body:
        partial = {k: v for k, v in body.items() if k != field}
        refused(client.req(method, fill(w, path), partial), 422, "FIELD_MISSING", field)
    # An empty body reads as {}: the first required field is reported.
    refused(client.req(method, fill(w, path), raw=b""), 422, "FIELD_MISSING")
    w.assert_unchanged()


def test_strings_too_long(w):
    o = w.owner
    refused(o.post(w.g + "/messages", {"text": "x" * 16385}), 422, "FIELD_INVALID", "text")
    refused(o.post(w.g + "/messages", {"text": ""}), 422, "FIELD_INVALID", "text")
    # Limits are in bytes of UTF-8, and the answer says so.
    p = refused(o.post(w.g + "/messages", {"text": "字" * 5462}), 422, "FIELD_INVALID", "text")
    assert "bytes" in p["detail"]
    refused(o.patch(w.g, {"name": "n" * 129}), 422, "FIELD_INVALID", "name")
    refused(o.post("/v1/groups", {"name": "n" * 129}), 422, "FIELD_INVALID", "name")
    refused(o.post(w.g + "/payments", {"amount": 10, "shares": 2, "memo": "m" * 201}), 422, "FIELD_INVALID", "memo")
    refused(o.post(w.g + "/members", {"openid": "u" * 65}), 422, "FIELD_INVALID", "openid")
    refused(requests.post(w.url + "/v1/users", json={"username": "u" * 33, "password": "long enough"}),
            422, "FIELD_INVALID", "username")
    refused(requests.post(w.url + "/v1/users", json={"username": "fine_name", "password": "p" * 257}),
            422, "FIELD_INVALID", "password")
    refused(requests.post(w.url + "/v1/sessions", json={"username": "x", "password": "y", "device_id": "d" * 65,
                                                        "platform": "cli"}), 422, "FIELD_INVALID", "device_id")
    refused(o.post(w.g + "/files?name=" + "f" * 129, raw=b"data"), 422, "FIELD_INVALID", "name")
    healthy(w.url)
    w.assert_unchanged()
    # The names refused above are still free.
    expect(requests.post(w.url + "/v1/users", json={"username": "fine_name", "password": "long enough"}), 201)


def test_limits_themselves_are_accepted(server):
    u = register(server.url)
    gid = make_group(u, name="n" * 128)
    m = expect(u.post(f"/v1/groups/{gid}/messages", {"text": "x" * 16384}), 201)
    assert len(m["text"]) == 16384
    m = expect(u.post(f"/v1/groups/{gid}/messages", {"text": "字" * 5461}), 201)
    assert m["text"] == "字" * 5461
    # A body of exactly 1 MiB is within the cap.
    raw = b'{"text": "ok"}'
    raw += b" " * ((1 << 20) - len(raw))
    expect(u.post(f"/v1/groups/{gid}/messages", raw=raw), 201)


def test_two_mebibyte_bodies(w):
    big = json.dumps({"text": "a" * (2 << 20)}).encode()
    refused(post_raw(w.owner, w.g + "/messages", big), 413, "BODY_TOO_LARGE")
    refused(requests.post(w.url + "/v1/users", data=big), 413, "BODY_TOO_LARGE")
    refused(w.owner.req("PATCH", w.g, raw=json.dumps({"name": "x" * (2 << 20)}).encode()), 413, "BODY_TOO_LARGE")
    # One byte over the cap.
    raw = b'{"text": "ok"}'
    raw += b" " * ((1 << 20) + 1 - len(raw))
    refused(post_raw(w.owner, w.g + "/messages", raw), 413, "BODY_TOO_LARGE")
    healthy(w.url)
    w.assert_unchanged()


def test_deeply_nested_json(w):
    for depth in [3000, 100000]:
        refused(post_raw(w.owner, w.g + "/messages", b"[" * depth + b"]" * depth), 400, "BAD_JSON")
        refused(post_raw(w.owner, w.g + "/messages", b'{"a":' * depth + b"1" + b"}" * depth), 400, "BAD_JSON")
        refused(post_raw(w.owner, w.g + "/messages", b"[" * depth), 400, "BAD_JSON")
    # Nesting the parser accepts still is the wrong type for the field.
    refused(post_raw(w.owner, w.g + "/messages", b'{"text": ' + b"[" * 500 + b"]" * 500 + b"}"),
            422, "FIELD_INVALID", "text")
    healthy(w.url)
    w.assert_unchanged()


def test_invalid_utf8_and_nul_bytes(w):
    bodies = [b'{"text": "\xff\xfe"}', b'{"text": "\xc0\xaf"}', b'{"text": "\xed\xa0\x80"}', b'{"text": "caf\xe9"}',
              b'{"te\xffxt": "a"}', b'{"text": "\\ud800"}', b'{"text": "a\x00b"}', b'{"text": "a\\u0000b"}',
              b'{"text": "ok"}\x00', b'\x00{"text": "ok"}', b'{"text"\x00: "ok"}']
    for raw in bodies:
        refused(post_raw(w.owner, w.g + "/messages", raw), 400, "BAD_JSON")
        refused(requests.post(w.url + "/v1/users", data=raw.replace(b"text", b"username")), 400, "BAD_JSON")
    refused(w.owner.post(w.g + "/files?name=a%01b", raw=b"bytes"), 422, "FIELD_INVALID", "name")
    refused(w.owner.post(w.g + "/files?name=x", raw=b"bytes", headers={"Content-Type": "text/plain\x01"}),
            422, "FIELD_INVALID")
    healthy(w.url)
    w.assert_unchanged()


def test_unknown_ids(w):
    o, ghost = w.owner, "g_" + uuid.uuid4().hex[:22]
    for method, path, body in [("GET", "", None), ("PATCH", "", {"name": "x"}), ("POST", "/messages", {"text": "x"}),
                               ("GET", "/messages", None), ("POST", "/members", {"openid": w.member.openid}),
                               ("POST", "/leave", None), ("POST", "/payments", {"amount": 1, "shares": 1}),
                               ("POST", "/dissolution/preview", {"messages": "keep"}),
                               ("GET", "/files/" + "0" * 64, None)]:
        refused(o.req(method, f"/v1/groups/{ghost}{path}", body), 404, "GROUP_NOT_FOUND")
    refused(o.post(w.g + "/members", {"openid": "u_" + uuid.uuid4().hex}), 404, "USER_NOT_FOUND", "openid")
    refused(o.patch(w.g + "/members/u_nobody", {"role": "admin"}), 404, "USER_NOT_FOUND")
    refused(o.delete(w.g + "/members/u_nobody"), 404, "USER_NOT_FOUND")
    refused(o.post(w.g + "/transfer", {"to": "u_nobody"}), 404, "USER_NOT_FOUND")
    refused(o.post(w.g + "/payments/p_nothing/claim"), 404, "PAYMENT_NOT_FOUND")
    refused(o.get(w.g + "/files/" + "0" * 64), 404, "FILE_NOT_FOUND")
    refused(o.get(w.g + "/files/" + "A" * 64), 404, "FILE_NOT_FOUND")
    refused(o.get(w.g + "/files/..%2f..%2fqun.db"), 404, "FILE_NOT_FOUND")
    refused(o.get(w.g + "/files/short"), 404, "FILE_NOT_FOUND")
    refused(o.delete("/v1/sessions/s_nothing"), 404, "SESSION_NOT_FOUND")
    refused(o.get(w.g + "/dissolution"), 404, "DISSOLUTION_NOT_FOUND")
    refused(o.post(w.g + "/transfer/accept"), 404, "TRANSFER_NOT_FOUND")
    refused(o.delete("/v1/me/passkeys/pk_nothing"), 404, "PASSKEY_NOT_FOUND")
    refused(o.delete("/v1/me/passkeys/" + "x" * 300), 404, "NOT_FOUND")
    refused(o.post("/v1/challenges/c_nothing/passkey/options", {}), 404, "CHALLENGE_NOT_FOUND")
    refused(o.post("/v1/challenges/c_nothing/passkey", PASSKEY), 404, "CHALLENGE_NOT_FOUND")
    healthy(w.url)
    w.assert_unchanged()


LISTS = ["/v1/groups", "{g}/messages", "{g}/members", "{g}/files", "/v1/me/bill"]


@pytest.mark.parametrize("path", LISTS)
def test_bad_cursors(w, path):
    p = fill(w, path)
    for after in ["abc", "-1", "", "1e3", "0x10", "1.5", "99999999999999999999", "%00", "1%202"]:
        refused(w.owner.get(f"{p}?after={after}"), 400, "CURSOR_INVALID", "after")
    for limit in ["0", "10000", "201", "-5", "abc", "", "1.5"]:
        refused(w.owner.get(f"{p}?limit={limit}"), 422, "FIELD_INVALID", "limit")
    # The bounds work.
    expect(w.owner.get(f"{p}?limit=1"), 200)
    expect(w.owner.get(f"{p}?limit=200&after=0"), 200)
    healthy(w.url)


def test_unknown_routes_and_wrong_methods(w):
    for path in ["/index.html", "/v1", "/v1/nope", "/v2/groups", "/v1/groups/" + w.gid + "/nope",
                 "/v1/groups//members", "/v1/groups/" + "x" * 5000, "/v1/users/", "/V1/USERS",
                 "/v1/groups/a/members/b/c", "/v1/test/clock/x"]:
        refused(w.owner.get(path), 404, "NOT_FOUND")
    for method, path, allow in [("PUT", "/v1/groups", "GET, HEAD, POST"), ("DELETE", "/v1/users", "POST"),
                                ("GET", "/v1/sessions/s_x", "DELETE"), ("GET", w.g + "/leave", "POST"),
                                ("PUT", w.g + "/members/u_x", "PATCH, DELETE"),
                                ("DELETE", "/v1/me", "GET, HEAD, PATCH"), ("PATCH", "/v1/test/clock", "POST"),
                                ("OPTIONS", "/v1/groups", "GET, HEAD, POST")]:
        r = w.owner.req(method, path)
        refused(r, 405, "METHOD_NOT_ALLOWED")
        assert r.headers.get("Allow") == allow, (method, path, r.headers)
    healthy(w.url)
    w.assert_unchanged()


def test_garbage_authorization(w):
    cases = ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer x", "Bearer " + "x" * 300, "Token " + w.owner.token,
             "Bearer qun_" + "A" * 43, "Bearer " + w.owner.token[:-1], "Bearer " + w.owner.token + "x",
             "Bearer  " + w.owner.token, w.owner.token, "Bearer\t" + w.owner.token, "Bearer %00"]
    for h in cases:
        for method, path, body in [("GET", "/v1/me", None), ("POST", w.g + "/messages", {"text": "sneaky"}),
                                   ("DELETE", w.g + "/members/" + w.member.openid, None)]:
            r = requests.request(method, w.url + path, json=body, headers={"Authorization": h})
            refused(r, 401, "TOKEN_INVALID")
    r = requests.get(w.url + "/v1/me", headers={"Authorization": b"Bearer \xff\xfe\x80"})
    refused(r, 401, "TOKEN_INVALID")
    refused(requests.get(w.url + "/v1/me"), 401, "UNAUTHENTICATED")
    # The scheme is case-insensitive (RFC 9110).
    r = requests.get(w.url + "/v1/me", headers={"Authorization": "bearer " + w.owner.token})
    assert expect(r, 200)["openid"] == w.owner.openid
    healthy(w.url)
    w.assert_unchanged()


def test_garbage_http(server, w):
    for payload in [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"\x00\x01\x02\x03\r\n\r\n",
                    b"GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\x01\r\n\r\n",
                    b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                    b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n"]:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as c:
            c.sendall(payload)
            try:
                head = c.recv(200)
            except socket.timeout:
                head = b""
            if head:
                status = int(head.split(b" ")[1])
                assert 400 <= status < 500, head
    healthy(w.url)
    w.assert_unchanged()


def test_search_queries(w):
    """GET .../messages/search: a missing, blank, too long, control-laden or non-UTF-8 q is a
    400 SEARCH_QUERY_INVALID naming the field; a bad cursor or limit is refused as on the list."""
    o, s = w.owner, w.g + "/messages/search"
    for q in ("", "?q=", "?q=%20", "?q=" + "x" * 201, "?q=" + "字" * 201, "?q=a%01b", "?q=%0A", "?q=%7F",
              "?q=%FF", "?q=%C0%AF", "?q=%ED%A0%80", "?q=%E5%AD", "?q=%C2%85"):
        refused(o.get(s + q), 400, "SEARCH_QUERY_INVALID", "q")
    refused(o.get(s + "?q=first&after=-1"), 400, "CURSOR_INVALID", "after")
    refused(o.get(s + "?q=first&limit=0"), 422, "FIELD_INVALID", "limit")
    refused(o.get(s + "?q=first&limit=abc"), 422, "FIELD_INVALID", "limit")
    assert expect(o.get(s + "?q=" + "字" * 200), 200)["items"] == []
    assert [m["text"] for m in expect(o.get(s + "?q=FIRST"), 200)["items"]] == ["first"]
    refused(o.get(f"/v1/groups/g_{uuid.uuid4().hex[:22]}/messages/search?q=x"), 404, "GROUP_NOT_FOUND")
    refused(o.post(s + "?q=x", {}), 405, "METHOD_NOT_ALLOWED")
    healthy(w.url)
    w.assert_unchanged()
