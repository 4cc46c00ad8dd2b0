# SPDX-License-Identifier: MIT
"""Posts that arrive together share the writer's transaction; on PostgreSQL their access
reads are sent ahead together, each taking the group's next number only when the post is
allowed.  Whatever mix arrives at once - members of several groups, outsiders, a removed
member, a revoked session, an empty text - every accepted post gets the next number of
its own group, numbers have no gaps and no repeats, each answer names the number stored,
and the refused ones are answered as alone.  Some posts carry an Idempotency-Key: a batch
holding one takes numbers post by post, a batch of posts alone (on PostgreSQL) writes each
group's number once, and the numbers run on across both kinds."""
import concurrent.futures as cf
import itertools
import json
import os
import sqlite3

from conftest import Client, all_items, expect, make_group, register


def test_a_crowd_of_posts_numbers_each_group_without_gaps(server):
    url = server.url
    owner = register(url)
    members = [register(url) for _ in range(6)]
    outsider, removed, revoked = register(url), register(url), register(url)
    groups = [make_group(owner, members=members + [removed, revoked], name=f"crowd{i}") for i in range(3)]
    for g in groups:
        expect(owner.delete(f"/v1/groups/{g}/members/{removed.openid}"), 204)
    expect(revoked.post(f"/v1/groups/{groups[0]}/messages", {"text": "before"}), 201)
    expect(revoked.delete(f"/v1/sessions/{expect(revoked.get('/v1/me'), 200)['session_id']}"), 204)

    plan = []  # (client, group, text, expected status)
    for rnd, (g, m) in enumerate(itertools.product(groups, members)):
        plan.append((m, g, f"{rnd} {m.username}", 201))
        if rnd % 3 == 0:
            plan.append((outsider, g, "let me in", 404))
        if rnd % 4 == 1:
            plan.append((removed, g, "still here", 404))
        if rnd % 5 == 2:
            plan.append((revoked, g, "after logout", 401))
        if rnd % 6 == 3:
            plan.append((m, g, "", 422))
    plan = plan * 3

    def send(item):
        c, g, text, status = item
        keyed = status == 201 and sum(map(ord, text)) % 4 == 0
        headers = {"Idempotency-Key": f"crowd-{os.urandom(8).hex()}"} if keyed else None
        return Client(c.url, c.token).post(f"/v1/groups/{g}/messages", {"text": text}, headers=headers)

    with cf.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(send, plan))
    accepted = {g: [] for g in groups}
    for (c, g, text, status), r in zip(plan, answers):
        if status == 201:
            body = expect(r, 201)
            assert body["group"] == g and body["text"] == text and body["author"] == c.openid
            accepted[g].append(body["seq"])
        else:
            expect(r, status)
    for g in groups:
        stored = all_items(owner, f"/v1/groups/{g}/messages")
        first = 2 if g == groups[0] else 1  # "before", posted by the session later revoked
        assert [m["seq"] for m in stored] == list(range(1, first + len(accepted[g]))), g
        assert sorted(accepted[g]) == list(range(first, first + len(accepted[g])))
        by_seq = {m["seq"]: m for m in stored}
        for (c, gg, text, status), r in zip(plan, answers):
            if status == 201 and gg == g:
                seq = r.json()["seq"]
                assert by_seq[seq]["text"] == text and by_seq[seq]["author"] == c.openid
        assert expect(owner.get(f"/v1/groups/{g}"), 200)["last_seq"] == first - 1 + len(accepted[g])
    # Each message's live event (the one SSE and Matrix sync deliver it by, its stream
    # position) carries that message: written in one statement on PostgreSQL.
    con = sqlite3.connect(os.path.join(server.data, "qun.db"))
    rows = con.execute("SELECT m.seq, m.body, e.payload, e.topic FROM messages m JOIN groups g ON g.id = m.group_id "
                       "LEFT JOIN events e ON e.id = m.stream_id WHERE g.name LIKE 'crowd%'").fetchall()
    con.close()
    assert len(rows) == sum(len(v) for v in accepted.values()) + 1
    for seq, body, payload, topic in rows:
        assert topic == "message.created", (seq, body)
        event = json.loads(payload)
        assert (event["seq"], event["text"]) == (seq, body)
