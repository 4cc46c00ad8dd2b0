# SPDX-License-Identifier: MIT
"""Password checks (argon2id, slow by design) and uploads' bytes run off the HTTP loops,
on pools of their own (src/http/slow.c): while one person signs in, everyone else on the
same loop is still answered.  The server here has one loop and the highest password cost
qund allows (over a second here; the tests need half of one), so a sign-in held on the loop
would hold every other request for as long."""
import os
import threading
import time
import uuid

import pytest
import requests

from conftest import Server, expect, metric, register, stop_clean

HEAVY = ["--threads", "1", "--set", "argon2_opslimit=10", "--set", "argon2_memlimit_kib=262144",
         "--set", "argon2_queue=1", "--set", "matrix=on", "--set", "matrix_server_name=qun.test"]


@pytest.fixture(scope="module")
def slow():
    s = Server(extra=HEAVY).start()
    yield s
    stop_clean(s)


@pytest.fixture(scope="module")
def people(slow):
    """Someone who reads and someone who signs in (each costs two checks to set up)."""
    return register(slow.url), register(slow.url)


def in_background(fn):
    """Run fn in a thread; returns (thread, box) with box["r"], box["t"] (when it answered)."""
    box = {}

    def run():
        box["r"] = fn()
        box["t"] = time.monotonic()
    t = threading.Thread(target=run)
    t.start()
    return t, box


def sign_in(url, name, password="correct horse"):
    return requests.post(url + "/v1/sessions", json={"username": name, "password": password,
                                                     "device_id": "dev-" + uuid.uuid4().hex[:8], "platform": "cli"},
                         timeout=60)


def sign_up(url, name):
    return requests.post(url + "/v1/users", json={"username": name, "password": "correct horse"}, timeout=60)


def matrix_login(url, name):
    return requests.post(url + "/_matrix/client/v3/login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": name},
        "password": "correct horse"}, timeout=60)


@pytest.mark.parametrize("route", ["sign-in", "wrong password", "unknown user", "sign-up", "matrix login",
                                   "password change"])
def test_others_are_answered_while_a_password_is_checked(slow, people, route):
    reader, someone = people
    changer = register(slow.url) if route == "password change" else None
    call = {"sign-in": lambda: sign_in(slow.url, someone.username),
            "password change": lambda: changer.post("/v1/me/password", {"old_password": "correct horse",
                                                                        "new_password": "battery staple"}),
            "wrong password": lambda: sign_in(slow.url, someone.username, "not the password"),
            "unknown user": lambda: sign_in(slow.url, "nobody" + uuid.uuid4().hex[:8]),
            "sign-up": lambda: sign_up(slow.url, "new" + uuid.uuid4().hex[:8]),
            "matrix login": lambda: matrix_login(slow.url, someone.username)}[route]
    started = time.monotonic()
    t, box = in_background(call)
    time.sleep(0.2)  # the check has begun: it takes over half a second here
    answered = []
    for _ in range(5):
        expect(reader.get("/v1/me"), 200)
        answered.append(time.monotonic())
    t.join()
    want = {"sign-in": 201, "wrong password": 401, "unknown user": 401, "sign-up": 201, "matrix login": 200,
            "password change": 200}[route]
    assert box["r"].status_code == want, box["r"].text
    assert box["t"] - started > 0.5, "the password check was not as slow as this test needs"
    # Every read was answered while the password was still being checked.
    assert max(answered) < box["t"], (route, [a - started for a in answered], box["t"] - started)
    if changer:  # the new password is the one that works now
        expect(sign_in(slow.url, changer.username, "battery staple"), 201)


def test_a_full_queue_is_answered_at_once_with_retry_after(slow, people):
    someone = people[1]
    refused0 = metric(slow.url, "qun_password_checks_refused_total")
    first, a = in_background(lambda: sign_in(slow.url, someone.username))
    time.sleep(0.2)  # being checked
    second, b = in_background(lambda: sign_in(slow.url, someone.username))
    time.sleep(0.2)  # waiting: argon2_queue=1 is full
    sent = time.monotonic()
    r = sign_in(slow.url, someone.username)
    took = time.monotonic() - sent
    p = expect(r, 503, "UNAVAILABLE")
    assert r.headers["Retry-After"] == "1", r.headers
    assert p["detail"]
    first.join()
    second.join()
    expect(a["r"], 201)
    expect(b["r"], 201)
    assert took < a["t"] - sent, "the refusal waited for the check before it"
    assert metric(slow.url, "qun_password_checks_refused_total") == refused0 + 1


def test_a_stop_answers_what_waits_and_exits_clean():
    s = Server(extra=HEAVY).start()
    someone = register(s.url)
    first, a = in_background(lambda: sign_in(s.url, someone.username))
    time.sleep(0.2)
    second, b = in_background(lambda: sign_in(s.url, someone.username))
    time.sleep(0.2)
    stop_clean(s)  # SIGTERM: exits 0, no error line
    first.join()
    second.join()
    expect(a["r"], 201)  # the check under way finished, and its session was stored
    expect(b["r"], 503, "UNAVAILABLE")  # the one waiting was not started
    s.start()
    token = a["r"].json()["token"]
    expect(requests.get(s.url + "/v1/me", headers={"Authorization": "Bearer " + token}, timeout=30), 200)
    stop_clean(s)


def test_uploads_are_stored_by_the_file_threads(slow, people):
    someone = people[1]
    gid = expect(someone.post("/v1/groups", {"name": "photos"}), 201)["id"]
    before = metric(slow.url, "qun_file_writes_total")
    photo, clip = os.urandom(3 << 20), os.urandom(1 << 20)
    f = expect(someone.post(f"/v1/groups/{gid}/files?name=photo.jpg", raw=photo,
                            headers={"Content-Type": "image/jpeg"}), 201)
    got = someone.get(f"/v1/groups/{gid}/files/{f['digest']}")
    assert got.status_code == 200 and got.content == photo
    token = matrix_login(slow.url, someone.username).json()["access_token"]
    hd = {"Authorization": "Bearer " + token, "Content-Type": "video/mp4"}
    up = requests.post(slow.url + "/_matrix/media/v3/upload?filename=clip.mp4", data=clip, headers=hd, timeout=30)
    assert up.status_code == 200, up.text
    server, media = up.json()["content_uri"][len("mxc://"):].split("/")
    down = requests.get(f"{slow.url}/_matrix/client/v1/media/download/{server}/{media}", headers=hd, timeout=30)
    assert down.status_code == 200 and down.content == clip
    assert metric(slow.url, "qun_file_writes_total") == before + 2
    assert metric(slow.url, "qun_file_writes_refused_total") == 0
