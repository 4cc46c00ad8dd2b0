# SPDX-License-Identifier: MIT
"""Search within a group's messages (GET /v1/groups/{id}/messages/search?q=): Chinese
phrases of two characters and of more, English words whatever their case, newest first
and paged with the cursor of GET .../messages; members only; a bad query is a 400
problem; a purge takes the group's text out of the index with its rows."""
import os
import random
import sqlite3
import subprocess
import time
import urllib.parse

import pytest
import requests

from conftest import PG, QUN, Server, expect, make_group, metric, pg_sql, register, stop_clean
from test_07_dissolution import FAST, Scene, purged, wait_for

TEXTS = ["今天的作业很多", "Meeting at NOON in the library", "作业交了吗？", "明天见", "noon is lunch time",
         "我们的作业本丢了", "nothing here"]


@pytest.fixture(scope="module", params=[1024] if PG else [1, 1024], ids=lambda b: f"batch{b}")
def server(request):
    """Zero timers, so purges run at once. On SQLite, new messages wait above the index's
    watermark until `search_batch` of them gather: with 1 each post's COMMIT indexes it, with the
    default 1024 these tests' messages are all found while they wait."""
    s = Server(env={"QUN_TEST_CLOCK": "1"}, extra=FAST + ["--set", f"search_batch={request.param}"]).start()
    s.search_batch = request.param
    yield s
    stop_clean(s)


# Messages the SQLite index has not taken in yet: above its watermark, or queued.
WAITING = ("SELECT (SELECT max(id) FROM messages) - indexed_to + (SELECT count(*) FROM search_pending) "
           "FROM search_state")


def search(c, gid, q, **params):
    qs = urllib.parse.urlencode(dict(q=q, **params))
    return c.get(f"/v1/groups/{gid}/messages/search?{qs}")


def indexed(server, *terms, sql=None):
    """How many messages the SQLite FTS5 index holds any of terms (trigrams) for, read
    through an fts5vocab table; or the integer sql answers."""
    db = sqlite3.connect(f"{server.data}/qun.db", timeout=10)
    try:
        if sql is None:
            db.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, messages_fts, row)")
            sql = "SELECT coalesce(sum(doc), 0) FROM temp.vocab WHERE term IN (%s)" % ",".join("?" * len(terms))
        return db.execute(sql, terms).fetchone()[0]
    finally:
        db.close()


def texts(page):
    return [m["text"] for m in page["items"]]


def chat(server):
    owner, member, outsider = (register(server.url) for _ in range(3))
    expect(member.patch("/v1/me", {"display_name": "王小明"}), 200)
    gid = make_group(owner, members=[member], name="search")
    for i, t in enumerate(TEXTS):
        expect((owner if i % 2 else member).post(f"/v1/groups/{gid}/messages", {"text": t}), 201)
    return owner, member, outsider, gid


def test_chinese_two_characters_inside_a_sentence(server):
    owner, member, _, gid = chat(server)
    page = expect(search(owner, gid, "作业"), 200)
    assert texts(page) == ["我们的作业本丢了", "作业交了吗？", "今天的作业很多"]  # newest first
    assert page["next_cursor"] is None
    first = page["items"][-1]
    # The item is a message as GET .../messages shows it, author's name included.
    listed = expect(owner.get(f"/v1/groups/{gid}/messages"), 200)["items"]
    assert first == next(m for m in listed if m["seq"] == first["seq"])
    assert first["author"] == member.openid and first["author_display_name"] == "王小明"
    # One character, and three or more (the trigram index on SQLite).
    assert texts(expect(search(owner, gid, "见"), 200)) == ["明天见"]
    assert texts(expect(search(member, gid, "的作业"), 200)) == ["我们的作业本丢了", "今天的作业很多"]
    assert texts(expect(search(member, gid, "今天的作业很多"), 200)) == ["今天的作业很多"]


def test_english_word_case_insensitively(server):
    owner, member, _, gid = chat(server)
    for q in ("noon", "NOON", "Noon", " noon "):
        assert texts(expect(search(member, gid, q), 200)) == ["noon is lunch time", "Meeting at NOON in the library"]
    assert texts(expect(search(member, gid, "LIBRARY"), 200)) == ["Meeting at NOON in the library"]
    assert texts(expect(search(member, gid, "no"), 200)) == ["nothing here", "noon is lunch time",
                                                              "Meeting at NOON in the library"]


def test_not_found_and_query_characters_are_not_syntax(server):
    owner, _, _, gid = chat(server)
    for q in ("作文", "homework", "x", '"noon"', "noon OR 明天", "%", "_", "a*", "NEAR(noon)", "\\"):
        page = expect(search(owner, gid, q), 200)
        assert page["items"] == [] and page["next_cursor"] is None, q
    expect(owner.post(f"/v1/groups/{gid}/messages", {"text": '100% "done" a_b'}), 201)
    assert texts(expect(search(owner, gid, '% "done"'), 200)) == ['100% "done" a_b']
    assert texts(expect(search(owner, gid, "_"), 200)) == ['100% "done" a_b']


def test_members_only(server):
    owner, _, outsider, gid = chat(server)
    expect(search(outsider, gid, "作业"), 404, "GROUP_NOT_FOUND")
    expect(search(outsider, gid, ""), 404, "GROUP_NOT_FOUND")  # no hint that the group exists
    expect(search(outsider, "nosuchgroup", "作业"), 404, "GROUP_NOT_FOUND")
    expect(requests.get(f"{server.url}/v1/groups/{gid}/messages/search?q=x", timeout=30), 401)
    # Only text messages are found, never the other groups' ones.
    other = make_group(outsider, name="other")
    expect(outsider.post(f"/v1/groups/{other}/messages", {"text": "今天的作业很多"}), 201)
    assert len(expect(search(owner, gid, "今天的作业"), 200)["items"]) == 1
    assert len(expect(search(outsider, other, "作业"), 200)["items"]) == 1


def test_paging_with_the_cursor(server):
    owner, member, _, gid = chat(server)
    for i in range(25):
        expect(owner.post(f"/v1/groups/{gid}/messages", {"text": f"第{i}次作业 homework {i}"}), 201)
    for q in ("作业", "homework", "次作业"):
        got, after = [], None
        for _ in range(20):
            page = expect(search(member, gid, q, limit=4, **({"after": after} if after else {})), 200)
            assert len(page["items"]) <= 4
            got += page["items"]
            after = page["next_cursor"]
            if not after:
                break
        seqs = [m["seq"] for m in got]
        assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs)
        want = 25 + (3 if q == "作业" else 0)
        assert len(got) == want, q
    expect(search(member, gid, "作业", limit=0), 422, "FIELD_INVALID")
    expect(search(member, gid, "作业", limit=201), 422, "FIELD_INVALID")
    expect(search(member, gid, "作业", after="x"), 400, "CURSOR_INVALID")


def test_bad_queries_are_problems(server):
    owner, _, _, gid = chat(server)
    g = f"/v1/groups/{gid}/messages/search"
    for bad in ("", "q=", "q=%20%20", "q=" + "a" * 201, "q=" + "作" * 201, "q=a%0Ab", "q=%FF%FE", "q=%C0%AF"):
        expect(owner.get(g + ("?" + bad if bad else "")), 400, "SEARCH_QUERY_INVALID")
    assert expect(owner.get(g + "?q=" + "作" * 200), 200)["items"] == []
    # The route is literal: "search" is not a message seq, and other methods are refused.
    assert owner.delete(g).status_code in (404, 405)
    assert owner.post(g, {}).status_code == 405


def test_purge_takes_the_text_out_of_the_index(server):
    s = Scene(server, n_messages=3)
    expect(s.member.post(s.g + "/messages", {"text": "期末作业 purgeable words"}), 201)
    assert len(expect(search(s.member, s.gid, "purgeable"), 200)["items"]) == 1
    s.dissolve("delete")
    wait_for(s.owner, s.gid, purged)
    expect(search(s.member, s.gid, "作业"), 410, "GROUP_GONE")
    for q in ("purgeable", "作业", "期末作业"):
        assert expect(search(s.owner, s.gid, q), 200)["items"] == []
    if PG:
        assert pg_sql(server, "SELECT count(*) FROM messages WHERE body LIKE '%purgeable%'") == [["0"]]
        assert pg_sql(server, "SELECT count(*) FROM message_search WHERE body LIKE '%purgeable%'") == [["0"]]
    else:
        # Not one trigram of the purged text is left, and nothing of it waits to be indexed.
        assert indexed(server, "pur", "gea", "期末作") == 0
        assert indexed(server, sql="SELECT count(*) FROM search_pending p "
                                   "WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = p.id)") == 0
        assert indexed(server, sql="SELECT count(*) FROM search_gone") == 0


def test_recalled_text_is_not_found_and_leaves_the_index(server):
    owner, member, _, gid = chat(server)
    m = expect(member.post(f"/v1/groups/{gid}/messages", {"text": "秘密计划 secret plan"}), 201)
    r = expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "rude remark 跑题"}), 201)
    assert texts(expect(search(owner, gid, "秘密计划"), 200)) == ["秘密计划 secret plan"]
    if not PG and server.search_batch == 1:  # indexed by the post's own COMMIT, nothing left pending
        assert indexed(server, "秘密计") == 1
        assert indexed(server, sql=WAITING) == 0
    elif not PG:  # waiting to be indexed, found all the same
        assert indexed(server, "秘密计") == 0
        assert indexed(server, sql=WAITING) > 0
    else:  # copied for the index beside the post (the jobs thread, within a second)
        copied(server, "SELECT count(*) FROM message_search WHERE body LIKE '%秘密%'", 1)
    expect(member.delete(f"/v1/groups/{gid}/messages/{m['seq']}"), 200)  # the author recalls
    expect(owner.delete(f"/v1/groups/{gid}/messages/{r['seq']}", body={"reason": "off topic"}), 200)
    for q in ("秘密计划", "秘密", "secret plan", "sec", "rude remark", "跑题"):
        assert expect(search(member, gid, q), 200)["items"] == [], q
    # The other messages are still found.
    assert texts(expect(search(member, gid, "作业"), 200)) == ["我们的作业本丢了", "作业交了吗？", "今天的作业很多"]
    if PG:
        assert pg_sql(server, "SELECT count(*) FROM messages WHERE body LIKE '%秘密%'") == [["0"]]
        assert pg_sql(server, "SELECT count(*) FROM message_search WHERE body LIKE '%秘密%'") == [["0"]]
    else:
        assert indexed(server, "秘密计", "sec", "rud") == 0


def copied(server, sql, want, timeout=10):
    """Wait until sql (an integer) answers want on the server's PostgreSQL database."""
    deadline = time.time() + timeout
    while (got := int(pg_sql(server, sql)[0][0])) != want:
        assert time.time() < deadline, f"{sql}: {got}, not {want}"
        time.sleep(0.05)


@pytest.mark.skipif(not PG, reason="PostgreSQL's copies for its trigram index")
def test_posts_are_copied_for_the_index_and_the_watermark_passes_them(server):
    """On PostgreSQL the text the trigram index holds is a copy, made by the jobs thread
    beside the writer: a new message is found at once (read directly), then copied, a step
    a second, and the watermark under which search trusts the copies raised over it;
    every copy holds its message's text, and only text messages have one; a row another
    tool writes while nobody posts is copied as well."""
    owner, member, _, gid = chat(server)
    for i in range(5):
        expect(member.post(f"/v1/groups/{gid}/messages", {"text": f"长颈鹿 giraffe {i}"}), 201)
    assert len(expect(search(owner, gid, "giraffe"), 200)["items"]) == 5
    top = "(SELECT max(id) FROM messages)"
    copied(server, "SELECT count(*) FROM message_search WHERE body LIKE '%giraffe%'", 5)
    copied(server, f"SELECT ((SELECT indexed_to FROM search_state) >= {top})::int", 1)
    assert texts(expect(search(owner, gid, "长颈鹿"), 200)) == [f"长颈鹿 giraffe {i}" for i in range(4, -1, -1)]
    assert pg_sql(server, "SELECT count(*) FROM message_search s JOIN messages m USING (id) "
                          "WHERE m.kind <> 'text' OR s.body <> m.body") == [["0"]]
    # A row another tool writes while nobody posts is copied too, and found all the while.
    pg_sql(server, "INSERT INTO messages(group_id, seq, author_id, body, created_at) "
                   "SELECT group_id, seq + 1, author_id, '长颈鹿 from a tool', created_at FROM messages "
                   "ORDER BY id DESC LIMIT 1")
    assert texts(expect(search(owner, gid, "长颈鹿"), 200))[0] == "长颈鹿 from a tool"
    copied(server, "SELECT count(*) FROM message_search WHERE body = '长颈鹿 from a tool'", 1)
    copied(server, f"SELECT ((SELECT indexed_to FROM search_state) >= {top})::int", 1)


# Rare characters, three bytes each in UTF-8: what is left of a trigram in FTS5's pages
# (the whole term, or what follows the prefix it shares with the term before) is at least
# two of them, six bytes no other data in the files repeats by chance.
RARE = "龘靐齉麤爩驫鱻羴犇骉飝厵"


def secret():
    return "".join(random.sample(RARE, 8))


def left_in_files(server, text):
    """The pairs of adjacent characters of text still somewhere in qun.db or its WAL."""
    data = b""
    for name in ("qun.db", "qun.db-wal"):
        path = os.path.join(server.data, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                data += f.read()
    return [text[i:i + 2] for i in range(len(text) - 1) if text[i:i + 2].encode() in data]


@pytest.mark.sqlite_only
def test_a_purge_leaves_no_trigram_of_the_text_in_the_files(server):
    """FTS5's 'delete' only hides an entry behind a tombstone; the purge's last phase
    rewrites the index so that the trigrams leave the file too."""
    s = Scene(server, n_messages=3)
    words = secret()
    expect(s.member.post(s.g + "/messages", {"text": f"密码 {words} 请勿外传"}), 201)
    assert len(expect(search(s.member, s.gid, words[2:6]), 200)["items"]) == 1
    if server.search_batch == 1:  # in the index's own pages, not only in the message row
        assert indexed(server, words[:3]) == 1
    s.dissolve("delete")
    wait_for(s.owner, s.gid, purged)
    # Purged means the files hold no copy: the WAL was truncated before the last step.
    assert left_in_files(server, words) == []


@pytest.mark.sqlite_only
def test_recalled_text_leaves_the_files_after_the_index_is_rewritten(server):
    """The jobs thread rewrites the index when text left it, and truncates the WAL, where
    the old rows' page images were: with search_batch 1024 the text was never in FTS5's
    pages, and only the WAL held it."""
    owner, member, _, gid = chat(server)
    words = secret()
    m = expect(member.post(f"/v1/groups/{gid}/messages", {"text": f"{words} 发错群了"}), 201)
    assert indexed(server, words[:3]) == (1 if server.search_batch == 1 else 0)
    expect(member.delete(f"/v1/groups/{gid}/messages/{m['seq']}"), 200)
    assert expect(search(member, gid, words[:4]), 200)["items"] == []
    # A rewrite for recalls begins at most every 15 minutes, a scrub of the WAL every
    # minute: past any earlier test's.
    expect(requests.post(server.url + "/v1/test/clock", json={"advance": 901}, timeout=10), 200)
    deadline = time.time() + 15
    while (left_in_files(server, words) or metric(server.url, "qun_search_hidden_commits")) \
            and time.time() < deadline:
        time.sleep(0.2)
    assert left_in_files(server, words) == []
    assert metric(server.url, "qun_search_hidden_commits") == 0
    # The rewritten index still finds everything else.
    assert texts(expect(search(member, gid, "作业"), 200)) == ["我们的作业本丢了", "作业交了吗？", "今天的作业很多"]
    db = sqlite3.connect(f"{server.data}/qun.db", timeout=10)
    try:
        # Against the messages too where every one is indexed (not while some wait).
        db.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', ?)",
                   (1 if server.search_batch == 1 else 0,))
    finally:
        db.close()


@pytest.mark.sqlite_only
def test_a_reader_in_the_way_of_the_wal_scrub_holds_up_no_post(server):
    """A TRUNCATE checkpoint waits for readers with the write lock held: with a busy
    handler, one export's long read stalled every write for seconds a try.  The scrub
    gives up at once instead and tries again later."""
    owner, member, _, gid = chat(server)
    words = secret()
    m = expect(member.post(f"/v1/groups/{gid}/messages", {"text": f"{words} 撤回"}), 201)
    reader = sqlite3.connect(f"{server.data}/qun.db", timeout=10, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM messages").fetchone()  # a snapshot from before the recall
        expect(member.delete(f"/v1/groups/{gid}/messages/{m['seq']}"), 200)  # asks for a scrub
        expect(requests.post(server.url + "/v1/test/clock", json={"advance": 901}, timeout=10), 200)
        worst, end = 0.0, time.time() + 3
        while time.time() < end:
            t0 = time.time()
            expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "还在吗"}), 201)
            worst = max(worst, time.time() - t0)
        assert worst < 1.0, f"a post waited {worst:.1f} s behind the WAL scrub"
    finally:
        reader.rollback()
        reader.close()
    # The reader gone, a later try truncates the WAL.
    expect(requests.post(server.url + "/v1/test/clock", json={"advance": 61}, timeout=10), 200)
    deadline = time.time() + 15
    while left_in_files(server, words) and time.time() < deadline:
        time.sleep(0.2)
    assert left_in_files(server, words) == []


def log_end(server):
    """Where qund's log ends now, for log_since."""
    with open(server.log_path, "rb") as f:
        return f.seek(0, 2)


def log_since(server, offset):
    with open(server.log_path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def old_snapshot(server):
    """A connection that keeps reading the database as it is now (a stuck backup, a
    forgotten sqlite3 shell): no WAL truncation can finish while it is open."""
    reader = sqlite3.connect(f"{server.data}/qun.db", timeout=10, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM messages").fetchone()
    return reader


@pytest.mark.sqlite_only
def test_a_reader_that_never_lets_go_does_not_hold_a_purge_forever(server):
    """A purge reads `purged` once the WAL was truncated.  A reader that keeps an old
    snapshot (a stuck backup, a forgotten sqlite3 shell) makes every truncation fail:
    after 30 steps that could not truncate, the purge ends all the same, and the log
    tells the operator; the reader gone, the next scrub truncates the WAL."""
    if server.search_batch != 1024:
        pytest.skip("a minute of tries; the index's batching plays no part")
    s = Scene(server, n_messages=3)
    words = secret()
    expect(s.member.post(s.g + "/messages", {"text": f"{words} 请勿外传"}), 201)
    since = log_end(server)
    reader = old_snapshot(server)
    try:
        s.dissolve("delete")
        # Each try waits a second for readers to go (20 times 50 ms), then the step
        # pauses as long: about a minute for the 30 tries.
        t0 = time.time()
        wait_for(s.owner, s.gid, purged, timeout=120)
        assert time.time() - t0 > 20, "purged although the WAL could not be truncated"
        log = log_since(server, since)
        assert "the WAL could not be truncated" in log, log[-2000:]
        assert left_in_files(server, words) != []  # the reader still sees them: nothing could go
    finally:
        reader.rollback()
        reader.close()
    # The reader gone, a recall's scrub (at most once a minute) truncates the WAL.
    other = make_group(s.owner, name="after")
    m = expect(s.owner.post(f"/v1/groups/{other}/messages", {"text": "再见"}), 201)
    expect(s.owner.delete(f"/v1/groups/{other}/messages/{m['seq']}"), 200)
    expect(requests.post(server.url + "/v1/test/clock", json={"advance": 61}, timeout=10), 200)
    deadline = time.time() + 15
    while left_in_files(server, words) and time.time() < deadline:
        time.sleep(0.2)
    assert left_in_files(server, words) == []


def export_time(owner, gid, recipient):
    """Seconds from an export request to its archive being ready."""
    t0 = time.monotonic()
    x = expect(owner.post(f"/v1/groups/{gid}/exports", {"recipients": [recipient]}), 202)
    while (state := expect(owner.get(f"/v1/exports/{x['id']}"), 200)["state"]) == "running":
        assert time.monotonic() - t0 < 10, "no archive in 10 s"
        time.sleep(0.01)
    assert state == "done", state
    return time.monotonic() - t0


@pytest.mark.sqlite_only
def test_a_purge_waiting_for_a_reader_does_not_hold_up_other_jobs(server):
    """A purge that cannot truncate the WAL (a reader keeps an old snapshot) tries again
    and again, on the jobs thread that also starts every other job.  Its tries give way
    to a job that falls due: an export asked for meanwhile is ready within a fraction of
    a second, not after the second of tries under way."""
    if server.search_batch != 1024:
        pytest.skip("the index's batching plays no part")
    keygen = subprocess.run(["age-keygen"], capture_output=True, text=True, timeout=30, check=True)
    recipient = next(line.split(": ")[1] for line in keygen.stderr.splitlines() + keygen.stdout.splitlines()
                     if line.startswith("# public key: "))
    s = Scene(server, n_messages=3)
    words = secret()
    expect(s.member.post(s.g + "/messages", {"text": f"{words} 请勿外传"}), 201)
    other = make_group(s.owner, members=[s.member], name="other")
    expect(s.owner.post(f"/v1/groups/{other}/messages", {"text": "留下"}), 201)
    since = log_end(server)
    reader = old_snapshot(server)
    try:
        s.dissolve("delete")
        deadline = time.time() + 30
        while "cannot scrub the database files" not in log_since(server, since):  # the purge's tries
            assert time.time() < deadline, "the purge never tried to truncate the WAL"
            time.sleep(0.05)
        # A try takes up to a second and the purge's next step follows a pause of a
        # quarter: exports 0.3 s apart meet the tries at every point of them.
        took = []
        for _ in range(8):
            took.append(export_time(s.owner, other, recipient))
            time.sleep(0.3)
        assert expect(s.owner.get(s.g + "/dissolution"), 200)["state"] != "purged"  # still trying
        assert max(took) < 0.5, took
    finally:
        reader.rollback()
        reader.close()
    wait_for(s.owner, s.gid, purged, timeout=60)
    assert left_in_files(server, words) == []


def test_cli_search_by_group_name(server):
    owner, member, _, gid = chat(server)
    env = {"QUN_URL": server.url, "QUN_TOKEN": member.token}
    r = subprocess.run([QUN, "search", "search", "作业"], capture_output=True, text=True, timeout=30,
                       env=dict(__import__("os").environ, **env))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 3 and "王小明" in lines[-1] and lines[-1].endswith("今天的作业很多"), r.stdout
    r = subprocess.run([QUN, "search", "search", "homework"], capture_output=True, text=True, timeout=30,
                       env=dict(__import__("os").environ, **env))
    assert r.returncode == 0 and r.stdout.strip() != "", r


@pytest.mark.skipif(PG, reason="SQLite's index: PostgreSQL's copies are made apart, tested above")
def test_a_bulk_load_is_indexed_in_slices_while_posts_go_on():
    """Rows written while qund was down (an import, a restore, another tool) wait above the
    index's watermark: qund takes them in a slice per COMMIT, its jobs thread committing
    while nobody posts, so no post waits for the whole load, and search finds them all
    the while."""
    s = Server(env={"QUN_TEST_CLOCK": "1"}).start()
    try:
        owner = register(s.url)
        gid = make_group(owner, name="bulk")
        s.stop()
        n = 60000
        with sqlite3.connect(f"{s.data}/qun.db") as db:
            row, nxt = db.execute("SELECT id, next_seq FROM groups WHERE gid = ?", (gid,)).fetchone()
            author = db.execute("SELECT id FROM users WHERE openid = ?", (owner.openid,)).fetchone()[0]
            db.execute("WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < ? - 1) "
                       "INSERT INTO messages(group_id, seq, author_id, body, created_at) "
                       "SELECT ?, ? + i, ?, CASE WHEN i % 10000 = 0 THEN '长城 wall ' ELSE 'bulk ' END || i, 0 "
                       "FROM c", (n, row, nxt, author))
            db.execute("UPDATE groups SET next_seq = ? WHERE id = ?", (nxt + n, row))
        s.start()
        # Found while they wait, newest first.
        assert [m["text"] for m in expect(search(owner, gid, "长城 wall"), 200)["items"]] == \
            [f"长城 wall {i}" for i in range(50000, -1, -10000)]
        # The index catches up by itself, a slice of at most 4096 ids per COMMIT: the
        # count of waiting messages is seen going down in steps.
        seen, deadline = [], time.time() + 60
        while (not seen or seen[-1] > 0) and time.time() < deadline:
            seen.append(indexed(s, sql=WAITING))
            time.sleep(0.02)
        assert seen[-1] == 0, seen
        assert any(0 < n < 60000 - 4096 for n in seen), seen
        assert indexed(s, "城 w") == 6
        assert texts(expect(search(owner, gid, "长城 wall"), 200))[-1] == "长城 wall 0"
        expect(owner.post(f"/v1/groups/{gid}/messages", {"text": "after the load"}), 201)
    finally:
        stop_clean(s)
