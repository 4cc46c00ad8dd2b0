# SPDX-License-Identifier: MIT
"""The CLI takes names, not ids (issue 17): a group by its name among the caller's
groups and a person by username; `qun files` and `qun file get` by name or digest
prefix; `qun payments`; `qun help <command>` for every command; tables aligned by
display width when they hold CJK text."""
import hashlib
import os
import re
import subprocess
import unicodedata

import pytest

from conftest import QUN, expect, register


def qun(url, client, *args, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUN_")}
    env.update(HOME="/nonexistent", XDG_CONFIG_HOME="/nonexistent/cfg", QUN_URL=url, TZ="UTC")
    if client:
        env["QUN_TOKEN"] = client.token
    r = subprocess.run([QUN, *args], capture_output=True, text=True, env=env, timeout=60, cwd=cwd)
    assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


def ok(url, client, *args, cwd=None):
    r = qun(url, client, *args, cwd=cwd)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def width(s):
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def column_of(line, text):
    """The display column where text starts in line."""
    return width(line[:line.index(text)])


def members(owner, gid):
    return {m["username"]: m for m in expect(owner.get(f"/v1/groups/{gid}/members"), 200)["items"]}


def test_group_add_by_group_name_and_username(url):
    owner, bob = register(url), register(url)
    gid = expect(owner.post("/v1/groups", {"name": "book club"}), 201)["id"]
    r = ok(url, owner, "group", "add", "book club", bob.username)
    assert "added " + bob.username in r.stdout, r.stdout
    assert members(owner, gid)[bob.username]["role"] == "member"
    # Case is ignored; a role change and a removal find the member by username.
    ok(url, owner, "group", "role", "Book Club", bob.username, "admin")
    assert members(owner, gid)[bob.username]["role"] == "admin"
    ok(url, owner, "post", "book club", "hello", "all")
    assert "hello all" in ok(url, owner, "history", "book club").stdout
    ok(url, owner, "group", "remove", "book club", bob.username)
    assert bob.username not in members(owner, gid)


def test_unknown_and_ambiguous_group_names(url):
    owner = register(url)
    r = qun(url, owner, "group", "show", "no such club")
    assert r.returncode == 1 and "GROUP_NOT_FOUND" in r.stderr and '"no such club"' in r.stderr, r.stderr
    a = expect(owner.post("/v1/groups", {"name": "twins"}), 201)["id"]
    b = expect(owner.post("/v1/groups", {"name": "Twins"}), 201)["id"]
    r = qun(url, owner, "group", "show", "twins")
    assert r.returncode == 1 and "GROUP_AMBIGUOUS" in r.stderr, r.stderr
    assert a in r.stderr and b in r.stderr and "created" in r.stderr, r.stderr
    assert a in ok(url, owner, "group", "show", a).stdout  # the id still works
    # Another person's group of that name is not among the caller's.
    other = register(url)
    assert qun(url, other, "group", "show", "twins").returncode == 1
    r = qun(url, owner, "group", "add", a, "nobody" + owner.username)
    assert r.returncode == 1 and "USER_NOT_FOUND" in r.stderr, r.stderr


def test_files_list_and_get_by_name_and_digest_prefix(url, tmp_path):
    owner = register(url)
    expect(owner.patch("/v1/me", {"display_name": "王小明"}), 200)
    expect(owner.post("/v1/groups", {"name": "读书会"}), 201)
    src = tmp_path / "src"
    src.mkdir()
    (src / "报告.txt").write_bytes("第一章\n".encode() * 200)
    (src / "a.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    ok(url, owner, "upload", "读书会", str(src / "报告.txt"))
    ok(url, owner, "upload", "读书会", str(src / "a.bin"))
    out = ok(url, owner, "files", "读书会").stdout.splitlines()
    assert out[0].startswith("NAME"), out
    rows = {line.split()[0]: line for line in out[1:]}
    assert "3.0 MiB" in rows["a.bin"] and "王小明" in rows["a.bin"], out
    assert "KiB" in rows["报告.txt"] and "text/plain" in rows["报告.txt"], out
    # The columns after a CJK name start where they start after an ASCII one.
    assert column_of(rows["报告.txt"], "text/plain") == column_of(rows["a.bin"], "application/octet-stream")
    assert column_of(rows["报告.txt"], "王小明") == column_of(rows["a.bin"], "王小明")

    dst = tmp_path / "dst"
    dst.mkdir()
    r = ok(url, owner, "file", "get", "读书会", "报告.txt", cwd=dst)
    assert (dst / "报告.txt").read_bytes() == (src / "报告.txt").read_bytes(), r.stdout
    r = qun(url, owner, "file", "get", "读书会", "报告.txt", cwd=dst)
    assert r.returncode == 1 and "FILE_EXISTS" in r.stderr and "--force" in r.stderr, r.stderr
    ok(url, owner, "file", "get", "读书会", "报告.txt", "--force", cwd=dst)
    digest = hashlib.sha256((src / "a.bin").read_bytes()).hexdigest()
    ok(url, owner, "file", "get", "读书会", digest[:8], "-o", str(dst / "copy.bin"))
    assert (dst / "copy.bin").read_bytes() == (src / "a.bin").read_bytes()
    r = qun(url, owner, "file", "get", "读书会", digest[:8], "-o", str(dst / "copy.bin"))
    assert r.returncode == 1 and "FILE_EXISTS" in r.stderr, r.stderr
    r = qun(url, owner, "file", "get", "读书会", "", "-o", str(dst / "x"))
    assert r.returncode == 1 and "FILE_NOT_FOUND" in r.stderr, r.stderr
    r = qun(url, owner, "file", "get", "读书会", "zzzz")
    assert r.returncode == 1 and "FILE_NOT_FOUND" in r.stderr, r.stderr


def test_file_get_ambiguous_digest_prefix_lists_candidates(url, tmp_path):
    owner = register(url)
    expect(owner.post("/v1/groups", {"name": "many"}), 201)
    digests = []
    for i in range(20):  # 20 digests: two share a first hex digit
        p = tmp_path / f"f{i}.txt"
        p.write_text(f"file {i}\n")
        ok(url, owner, "upload", "many", str(p))
        digests.append(hashlib.sha256(p.read_bytes()).hexdigest())
    first = next(d[0] for d in digests if sum(x[0] == d[0] for x in digests) > 1)
    r = qun(url, owner, "file", "get", "many", first, cwd=tmp_path)
    assert r.returncode == 1 and "FILE_AMBIGUOUS" in r.stderr, r.stderr
    for d in digests:
        if d[0] == first:
            assert d in r.stderr, r.stderr


def test_payments_listing(url):
    owner, bob = register(url), register(url)
    expect(owner.patch("/v1/me", {"display_name": "王小明"}), 200)
    gid = expect(owner.post("/v1/groups", {"name": "红包群"}), 201)["id"]
    ok(url, owner, "group", "add", "红包群", bob.username)
    said = ok(url, owner, "pay", "红包群", "5", "5", "--memo", "新年快乐").stdout
    assert "¥5.00 in 5 shares" in said, said
    ok(url, owner, "pay", "红包群", "¥0.3", "3", "--memo", "tea")
    pid = expect(owner.get(f"/v1/groups/{gid}/payments"), 200)["items"][0]["id"]
    assert "claimed ¥0.10" in ok(url, bob, "claim", "红包群", pid).stdout
    out = ok(url, owner, "payments", "红包群").stdout.splitlines()
    assert out[0].startswith("WHEN"), out
    tea = next(line for line in out if "tea" in line)
    ny = next(line for line in out if "新年快乐" in line)
    assert "1 of 3 (¥0.10)" in tea and "0 of 5 (¥0.00)" in ny and "王小明" in tea, out
    assert column_of(tea, "tea") == column_of(ny, "新年快乐"), out
    assert column_of(tea, "¥0.30") + len("¥0.30") == column_of(ny, "¥5.00") + len("¥5.00"), out  # right-aligned
    assert column_of(tea, pid) == column_of(out[0], "ID"), out
    for bad in ("5.555", "5.", "five", "¥", "12345678901", "5-"):  # yuan, two decimals at most
        r = qun(url, owner, "pay", "红包群", bad, "2")
        assert r.returncode == 2 and "yuan" in r.stderr, (bad, r.stderr)
    assert qun(url, owner, "pay", "红包群", "-5", "2").returncode == 2  # not a negative packet
    assert len(expect(owner.get(f"/v1/groups/{gid}/payments"), 200)["items"]) == 2
    assert '"items"' in ok(url, owner, "--json", "payments", gid).stdout
    assert ok(url, bob, "bill").stdout.strip()


@pytest.mark.slow
def test_help_for_every_command(url):
    listing = ok(url, None, "help").stdout
    names = sorted(set(re.findall(r"^  ([a-z][a-z-]*) ", listing, re.M)) - {"help"})
    assert {"files", "file", "payments", "bill", "group", "invite"} <= set(names), names
    for name in names:
        r = ok(url, None, "help", name)
        assert r.stdout.startswith("usage:") and f"qun {name}" in r.stdout, (name, r.stdout)
        assert "arguments:" in r.stdout and "example:" in r.stdout, (name, r.stdout)
    assert qun(url, None, "help", "nonsense").returncode == 2


def test_group_list_aligns_cjk_names(url):
    owner = register(url)
    expect(owner.post("/v1/groups", {"name": "家庭群"}), 201)
    expect(owner.post("/v1/groups", {"name": "family"}), 201)
    out = ok(url, owner, "group", "list").stdout.splitlines()
    cjk = next(line for line in out if "家庭群" in line)
    asc = next(line for line in out if "family" in line)
    assert column_of(cjk, "standard") == column_of(asc, "standard"), out
