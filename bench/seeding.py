# SPDX-License-Identifier: MIT
"""What the benchmarks that write rows straight into qund's SQLite file do after it.

qund indexes a message's text for search at the COMMIT that stores it (in batches above a
watermark, store/search.c).  Rows written behind its back wait above that watermark, and
qund takes them in 4 096 per COMMIT once it starts, which would land in the middle of
what a benchmark measures.  index_seeded() leaves the file as posting those messages
through qund would have: every text message in the index, the watermark at the top."""


def index_seeded(con):
    """Index every message above the watermark of the open sqlite3 connection con, in
    one transaction, and merge the index's segments as qund's job thread would once it
    caught up (src/jobs/scheduler.c, merge_search), so that a benchmark's first seconds
    do not measure those merges; a no-op on a schema without the search index."""
    if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'search_state'").fetchone():
        return
    con.execute("INSERT INTO messages_fts(rowid, body) SELECT id, body FROM messages "
                "WHERE id > (SELECT indexed_to FROM search_state) AND kind = 'text'")
    con.execute("UPDATE search_state SET indexed_to = (SELECT COALESCE(MAX(id), 0) FROM messages)")
    con.commit()
    while True:  # FTS5 counts a merge that wrote anything as at least two changes
        before = con.total_changes
        con.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('merge', 4096)")
        con.commit()
        if con.total_changes - before < 2:
            break
