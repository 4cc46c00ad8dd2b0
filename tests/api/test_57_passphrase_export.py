# SPDX-License-Identifier: MIT
"""Archives people can open (issue 17): an export asked for with a `passphrase`
instead of age `recipients` is encrypted to age's scrypt stanza and opens with
Debian's `age -d`, which asks for the passphrase on the terminal (typed here through
a pty).  Inside, beside the JSON lines, messages.html lists every message with its
author's name and local time, and files/ holds each file under its original name
(made safe and unique).  The passphrase is never stored in the clear nor logged, and
the sealed copy is gone once the job ends."""
import glob
import os
import sqlite3
import subprocess

import pytest

import terminal
from conftest import expect, make_group, register
from test_31_export import AGE, check_manifest, wait_done
from test_45_names import person

pytestmark = pytest.mark.skipif(not AGE, reason="Debian's age is needed")

PASS = "plum-kettle-orbit-92 七月"


def on_pty(argv, answer, env=None, prompts=1):
    """Run argv on a new pty and type answer (or answer[i], given a list) at each of
    its first `prompts` prompts that mention a passphrase, in English or Chinese (age and
    qun read it from /dev/tty).  Returns (exit code, what it wrote to the terminal)."""
    answers = answer if isinstance(answer, list) else [answer] * prompts
    prompt = r"(?i)(passphrase|口令)[^\n]*[:：] ?$"  # the prompt itself, the last thing shown
    return terminal.on_pty(argv, [(prompt, a) for a in answers], env=env, timeout=120, enter="\r")


def age_decrypt(data, passphrase, tmp_path, name="a"):
    """age -d on the file, the passphrase typed at its /dev/tty prompt through a pty.
    Returns (exit code, plaintext bytes)."""
    src, out = tmp_path / f"{name}.age", tmp_path / f"{name}.tar.zst"
    src.write_bytes(data)
    if out.exists():
        out.unlink()
    rc, _ = on_pty([AGE, "-d", "-o", str(out), str(src)], passphrase)
    return rc, (out.read_bytes() if rc == 0 and out.exists() else b"")


def untar(plain, dest):
    tar = subprocess.run(["zstd", "-d", "-c"], input=plain, capture_output=True, check=True).stdout
    os.makedirs(dest, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, capture_output=True, check=True)
    return dest


def test_passphrase_archive_opens_with_age_and_reads_as_a_transcript(server, tmp_path):
    owner = person(server.url, "王小明")
    alice = person(server.url, "Alice <Admin>")
    bob = register(server.url)  # no display name: the username stands in
    gid = make_group(owner, members=[alice, bob], name="Book club 读书会")
    texts = [(owner, "hello 大家好"), (alice, "<script>alert('x')</script> & more"), (bob, "line one\nline two"),
             (owner, "last one")]
    for who, text in texts:
        expect(who.post(f"/v1/groups/{gid}/messages", {"text": text}), 201)
    up = {}
    for who, name, body in [(alice, "notes.txt", b"alice's notes\n"), (bob, "notes.txt", b"bob's notes\n"),
                            (bob, "../x", b"dot dot\n"), (owner, "/etc/passwd", b"not really\n")]:
        up[body] = expect(who.post(f"/v1/groups/{gid}/files?name={name}", raw=body), 201)

    x = expect(owner.post(f"/v1/groups/{gid}/exports", {"passphrase": PASS, "lang": "zh-CN", "tz_offset": 480}),
               202)
    assert x["protection"] == "passphrase"
    done = wait_done(owner, x["id"], timeout=120)
    assert done["state"] == "done", done
    assert done["recipients"] == [] and done["protection"] == "passphrase" and done["lang"] == "zh-CN"
    data = owner.get(f"/v1/exports/{x['id']}/download").content
    header = data[:200].split(b"\n")
    assert header[0] == b"age-encryption.org/v1" and header[1].startswith(b"-> scrypt ") and header[1].endswith(b" 18")
    assert header[3].startswith(b"--- ")  # the scrypt stanza is the only one

    # A wrong passphrase does not open it; the right one does, with Debian's age.
    rc, _ = age_decrypt(data, "plum-kettle-orbit-93 七月", tmp_path, "wrong")
    assert rc != 0
    rc, plain = age_decrypt(data, PASS, tmp_path)
    assert rc == 0 and plain
    dest = untar(plain, tmp_path / "x")
    check_manifest(dest)

    html = (dest / "messages.html").read_text()
    assert '<html lang="zh-CN">' in html and "Book club 读书会 的聊天记录" in html
    assert "时间为 UTC+08:00" in html
    for who, text in texts:
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;")
        assert escaped in html, text
    assert "<script>" not in html
    assert "<b>王小明</b>" in html and "<b>Alice &lt;Admin&gt;</b>" in html and f"<b>{bob.username}</b>" in html
    assert owner.openid not in html and alice.openid not in html
    # Every message is listed, in order.
    assert html.count("<li id=\"m") == len(expect(owner.get(f"/v1/groups/{gid}/messages?limit=200"), 200)["items"])

    files = sorted(os.listdir(dest / "files"))
    named = {f: (dest / "files" / f).read_bytes() for f in files if len(f) != 64}
    assert named == {"notes.txt": b"alice's notes\n", "notes (2).txt": b"bob's notes\n",
                     "_.._x": b"dot dot\n", "_etc_passwd": b"not really\n"}, named
    assert not os.path.exists(tmp_path / "x.txt") and not os.path.exists(tmp_path / "etc")
    for f in named:
        assert f'href="files/{f}"' in html

    # The passphrase is in neither the log nor the database, and no sealed copy is left.
    needle = PASS.encode()
    assert PASS not in server.read_log()
    for path in glob.glob(os.path.join(server.data, "*")):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                assert needle not in f.read(), path
    db = sqlite3.connect(os.path.join(server.data, "qun.db"))  # PostgreSQL's rows under pg (conftest)
    assert db.execute("SELECT COUNT(*) FROM exports WHERE passphrase_sealed IS NOT NULL").fetchone()[0] == 0


def test_english_transcript_in_utc_and_the_self_copy(server, tmp_path):
    owner = person(server.url, "Olivia")
    gid = make_group(owner, name="plain")
    expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "hi"}), 201)
    oops = expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "sent by mistake"}), 201)
    expect(owner.delete(f"/v1/groups/{gid}/messages/{oops['seq']}"), 200)
    x = expect(owner.post(f"/v1/groups/{gid}/exports", {"passphrase": PASS, "scope": "self"}), 202)
    assert wait_done(owner, x["id"], timeout=120)["state"] == "done"
    rc, plain = age_decrypt(owner.get(f"/v1/exports/{x['id']}/download").content, PASS, tmp_path)
    assert rc == 0
    html = (untar(plain, tmp_path / "x") / "messages.html").read_text()
    assert '<html lang="en">' in html and "Messages of plain" in html and "Times are in UTC." in html
    assert "<b>Olivia</b>: <span class=\"text\">hi</span>" in html
    # A recalled message keeps its place and says so; its text is in no file of the archive.
    assert "<b>Olivia</b>: <span class=\"gone\">message recalled</span>" in html
    assert b"sent by mistake" not in plain


def test_passphrase_bad_requests(server, tmp_path):
    owner = register(server.url)
    gid = make_group(owner, name="bad")
    url = f"/v1/groups/{gid}/exports"
    rec = "age1" + "q" * 58
    expect(owner.post(url, {"passphrase": PASS, "recipients": [rec]}), 422, "EXPORT_PROTECTION_CONFLICT")
    expect(owner.post(url, {"passphrase": "short"}), 422, "PASSPHRASE_TOO_SHORT")
    expect(owner.post(url, {"passphrase": "九个字符的密码不够"}), 422, "PASSPHRASE_TOO_SHORT")
    expect(owner.post(url, {"passphrase": "long enough\nbut two lines"}), 422, "FIELD_INVALID")
    expect(owner.post(url, {"passphrase": "x" * 1025}), 422, "FIELD_INVALID")
    expect(owner.post(url, {"passphrase": 12345678901}), 422, "FIELD_INVALID")
    expect(owner.post(url, {"passphrase": None}), 422, "FIELD_MISSING")  # null is absent
    expect(owner.post(url, {}), 422, "FIELD_MISSING")
    expect(owner.post(url, {"passphrase": PASS, "lang": "fr"}), 422, "FIELD_INVALID")
    expect(owner.post(url, {"passphrase": PASS, "tz_offset": 100000}), 422, "FIELD_INVALID")
    expect(owner.post(url, {"passphrase": PASS, "tz_offset": "+8"}), 422, "FIELD_INVALID")
    # A wrong length is refused whatever the group, and no export row was made.
    expect(owner.post("/v1/groups/nosuch/exports", {"passphrase": "short"}), 422, "PASSPHRASE_TOO_SHORT")
    assert needle_absent(server, "long enough")


@pytest.mark.slow
def test_cli_export_with_a_passphrase(server, tmp_path):
    from conftest import QUN
    owner = person(server.url, "陈老师")
    gid = make_group(owner, name="班级群")
    expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "明天见"}), 201)
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "cfg"), HOME=str(tmp_path), QUN_URL=server.url,
               QUN_TOKEN=owner.token, LANG="zh_CN.UTF-8")
    env.pop("QUN_PASSPHRASE", None)
    # Asked twice on the terminal.
    out = tmp_path / "tty.age"
    rc, screen = on_pty([QUN, "export", gid, "--passphrase", "-o", str(out)], PASS, env=env, prompts=2)
    assert rc == 0, screen
    # The prompts in the user's language (LANG=zh_CN.UTF-8).
    assert screen.decode().count("口令") >= 2 and b"age -d" in screen, screen
    rc, plain = age_decrypt(out.read_bytes(), PASS, tmp_path, "tty")
    assert rc == 0
    html = (untar(plain, tmp_path / "tty") / "messages.html").read_text()
    assert "班级群 的聊天记录" in html and "<b>陈老师</b>" in html and "明天见" in html
    # Two different answers: nothing is asked of the server.
    rc, screen = on_pty([QUN, "export", gid, "--passphrase", "-o", str(tmp_path / "no.age")],
                        [PASS, PASS + "!"], env=env)
    assert rc != 0 and not (tmp_path / "no.age").exists()
    # From QUN_PASSPHRASE, for scripts; --to and --passphrase together is a usage error.
    r = subprocess.run([QUN, "export", gid, "--passphrase", "-o", str(tmp_path / "env.age")], capture_output=True,
                       env=dict(env, QUN_PASSPHRASE=PASS), timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert age_decrypt((tmp_path / "env.age").read_bytes(), PASS, tmp_path, "env")[0] == 0
    r = subprocess.run([QUN, "export", gid, "--passphrase", "--to", "age1x", "-o", str(tmp_path / "b.age")],
                       capture_output=True, env=dict(env, QUN_PASSPHRASE=PASS), timeout=60)
    assert r.returncode == 2, r.stderr
    r = subprocess.run([QUN, "export", gid, "--passphrase", "-o", str(tmp_path / "s.age")], capture_output=True,
                       env=dict(env, QUN_PASSPHRASE="short"), timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode != 0 and b"PASSPHRASE_TOO_SHORT" in r.stderr


def needle_absent(server, text):
    return text not in server.read_log()
