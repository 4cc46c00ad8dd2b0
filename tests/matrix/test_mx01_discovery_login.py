# SPDX-License-Identifier: MIT
"""MATRIX.md 4.1 cases 1 and 2: discovery, CORS, login (nio and the legacy form), the
token in the query, whoami, logout, lockout; and a Matrix session's limits on /v1."""
import requests
from nio import LoginError, LoginResponse
from nio.responses import WhoamiResponse

from conftest import SERVER_NAME, api, expect, mxid, register

CORS = {"Access-Control-Allow-Origin": "*"}


def mx(r, status, errcode=None):
    """Assert a Matrix answer: status, CORS, and for errors the errcode shape."""
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:400]}"
    assert r.headers.get("Access-Control-Allow-Origin") == "*", r.headers
    if status >= 400:
        assert r.headers["Content-Type"].startswith("application/json")
        body = r.json()
        assert body["errcode"].startswith("M_") and isinstance(body["error"], str), body
        if errcode:
            assert body["errcode"] == errcode, body
        return body
    return r.json() if r.content else None


def test_discovery_versions_and_cors(url):
    v = mx(requests.get(url + "/_matrix/client/versions"), 200)
    assert "r0.6.1" in v["versions"] and "v1.11" in v["versions"]
    wk = mx(requests.get(url + "/.well-known/matrix/client"), 200)
    assert wk["m.homeserver"]["base_url"].startswith("http://")
    for path in ("/_matrix/client/v3/sync", "/_matrix/client/r0/login", "/_matrix/media/v3/upload"):
        r = requests.options(url + path, headers={"Origin": "https://app.example",
                                                  "Access-Control-Request-Method": "POST"})
        assert r.status_code == 204, (path, r.status_code)
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    # Unknown Matrix paths and E2EE routes: JSON M_UNRECOGNIZED, with CORS headers.
    for path in ("/_matrix/client/v3/nonsense", "/_matrix/client/v3/keys/upload",
                 "/_matrix/client/unstable/org.matrix.msc2697.v2/dehydrated_device"):
        mx(requests.post(url + path, json={}), 404, "M_UNRECOGNIZED")
    flows = mx(requests.get(url + "/_matrix/client/r0/login"), 200)
    assert {"type": "m.login.password"} in flows["flows"]
    # The rest of qun is untouched: /v1 still answers problem+json.
    expect(requests.get(url + "/v1/me"), 401, "UNAUTHENTICATED")


def test_lenient_query_strings_as_hydrogen_sends_them(url):
    """hydrogen adds `&_cacheBuster=…` to a URL that may have no query yet, so its GETs and
    their CORS preflights carry `?&_cacheBuster=…` (an empty pair).  The Matrix routes drop
    empty pairs and read a bare key as empty; /v1 keeps refusing such a query."""
    alice = register(url)
    mx(requests.get(url + "/_matrix/client/versions?&_cacheBuster=1234"), 200)
    r = requests.options(url + "/_matrix/client/unstable/org.matrix.msc2697.v2/dehydrated_device?&_cacheBuster=5",
                         headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
    assert r.status_code == 204 and r.headers["Access-Control-Allow-Origin"] == "*"
    tok = mx(requests.post(url + "/_matrix/client/v3/login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": alice.username},
        "password": "correct horse"}), 200)["access_token"]
    for q in (f"?&access_token={tok}&_cacheBuster=1", f"?access_token={tok}&&flag&=x&", f"?flag&access_token={tok}"):
        who = mx(requests.get(url + "/_matrix/client/v3/account/whoami" + q), 200)
        assert who["user_id"] == mxid(alice), q
    mx(requests.get(url + "/_matrix/client/v3/account/whoami?&_cacheBuster=1"), 401, "M_MISSING_TOKEN")
    expect(requests.get(url + "/v1/groups?&limit=5", headers={"Authorization": "Bearer " + alice.token}), 400)


def test_login_with_nio_and_whoami(url, nio):
    alice = register(url)
    n = nio(alice)
    resp = n.login()
    assert isinstance(resp, LoginResponse), resp
    assert resp.user_id == mxid(alice) and resp.device_id and resp.access_token
    who = n(n.c.whoami())
    assert isinstance(who, WhoamiResponse) and who.user_id == mxid(alice)
    # The Matrix token is a qun session of platform matrix, good on /v1 too.
    me = expect(requests.get(url + "/v1/me", headers={"Authorization": "Bearer " + resp.access_token}), 200)
    assert me["openid"] == alice.openid and me["platform"] == "matrix"


def test_login_forms_wrong_password_and_lockout(url, nio):
    bob = register(url)
    # matrix-js-sdk's legacy top-level `user`, with the full user id.
    r = requests.post(url + "/_matrix/client/v3/login", json={
        "type": "m.login.password", "user": mxid(bob), "password": "correct horse"})
    body = mx(r, 200)
    assert body["user_id"] == mxid(bob) and body["access_token"].startswith("qun_")
    # The token in the query (matrix-nio's only way), and never in the request log.
    mx(requests.get(url + "/_matrix/client/v3/account/whoami", params={"access_token": body["access_token"]}), 200)
    # Another server's user id, a wrong password, an unknown user: 403 M_FORBIDDEN.
    for user in ("@" + bob.username.lower() + ":elsewhere.example", bob.username, "nobody-here"):
        pw = "wrong password" if user == bob.username else "correct horse"
        r = requests.post(url + "/_matrix/client/v3/login", json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": pw})
        mx(r, 403, "M_FORBIDDEN")
    resp = nio(bob, password="not the password").login()
    assert isinstance(resp, LoginError) and resp.status_code == "M_FORBIDDEN"
    mx(requests.post(url + "/_matrix/client/v3/login", json={"type": "m.login.token", "token": "x"}), 400)
    # Ten failures lock the account: M_LIMIT_EXCEEDED with retry_after_ms.
    carol = register(url)
    last = None
    for _ in range(11):
        last = requests.post(url + "/_matrix/client/v3/login", json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": carol.username},
            "password": "wrong password"})
    body = mx(last, 429, "M_LIMIT_EXCEEDED")
    assert body["retry_after_ms"] > 0


def test_logout_revokes_everywhere(url, nio):
    dave = register(url)
    n = nio(dave)
    token = n.login().access_token
    n(n.c.logout())
    r = requests.get(url + "/_matrix/client/v3/account/whoami", headers={"Authorization": "Bearer " + token})
    body = mx(r, 401, "M_UNKNOWN_TOKEN")
    assert body["soft_logout"] is False
    expect(requests.get(url + "/v1/me", headers={"Authorization": "Bearer " + token}), 401, "TOKEN_INVALID")
    mx(requests.get(url + "/_matrix/client/v3/account/whoami"), 401, "M_MISSING_TOKEN")


def test_same_device_logs_in_again_but_never_as_another_platform(url):
    erin = register(url)  # erin's qun device is dev-<name> on platform cli
    login = {"type": "m.login.password", "user": erin.username, "password": "correct horse"}
    first = mx(requests.post(url + "/_matrix/client/v3/login", json=dict(login, device_id="PHONE1")), 200)
    again = mx(requests.post(url + "/_matrix/client/v3/login", json=dict(login, device_id="PHONE1")), 200)
    assert first["device_id"] == again["device_id"] == "PHONE1"
    mx(requests.post(url + "/_matrix/client/v3/login", json=dict(login, device_id=erin.device_id)), 403,
       "M_FORBIDDEN")


def test_matrix_session_cannot_dissolve_through_v1(url):
    frank = register(url)
    gid = api.make_group(frank)
    body = mx(requests.post(url + "/_matrix/client/v3/login", json={
        "type": "m.login.password", "user": frank.username, "password": "correct horse"}), 200)
    h = {"Authorization": "Bearer " + body["access_token"]}
    r = requests.post(url + f"/v1/groups/{gid}/dissolution/preview", json={"messages": "keep"}, headers=h)
    expect(r, 403, "MATRIX_FORBIDDEN")


def test_account_data_filters_profile_devices(url, nio):
    gina = register(url)
    body = mx(requests.post(url + "/_matrix/client/v3/login", json={
        "type": "m.login.password", "user": gina.username, "password": "correct horse"}), 200)
    h = {"Authorization": "Bearer " + body["access_token"]}
    me = body["user_id"]
    base = url + "/_matrix/client/v3"
    f = mx(requests.post(f"{base}/user/{me}/filter", json={"room": {"timeline": {"limit": 5}}}, headers=h), 200)
    got = mx(requests.get(f"{base}/user/{me}/filter/{f['filter_id']}", headers=h), 200)
    assert got == {"room": {"timeline": {"limit": 5}}}
    mx(requests.get(f"{base}/user/{me}/filter/999999", headers=h), 404, "M_NOT_FOUND")
    mx(requests.put(f"{base}/user/{me}/account_data/im.vector.setting", json={"theme": "dark"}, headers=h), 200)
    assert mx(requests.get(f"{base}/user/{me}/account_data/im.vector.setting", headers=h), 200) == {"theme": "dark"}
    mx(requests.get(f"{base}/user/{me}/account_data/m.unset", headers=h), 404, "M_NOT_FOUND")
    other = mxid(register(url))
    mx(requests.put(f"{base}/user/{other}/account_data/x", json={}, headers=h), 403, "M_FORBIDDEN")
    mx(requests.put(f"{base}/user/{me}/account_data/x", data="[1,2]", headers=h), 400)
    mx(requests.put(f"{base}/user/{me}/account_data/x", data="{bad", headers=h), 400, "M_NOT_JSON")
    mx(requests.get(f"{base}/pushrules/", headers=h), 200)["global"]
    caps = mx(requests.get(f"{base}/capabilities", headers=h), 200)["capabilities"]
    assert caps["m.room_versions"]["default"] == "10"
    assert mx(requests.get(f"{base}/profile/{me}", headers=h), 200)["displayname"]
    mx(requests.get(f"{base}/profile/{other}", headers=h), 404, "M_NOT_FOUND")  # shares no group
    devs = mx(requests.get(f"{base}/devices", headers=h), 200)["devices"]
    assert body["device_id"] in [d["device_id"] for d in devs]
    mx(requests.post(f"{base}/register", json={}), 403, "M_FORBIDDEN")
