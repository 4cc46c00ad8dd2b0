-- SPDX-License-Identifier: MIT
-- FTS5 no longer merges its segments inside the statement that writes one (automerge 0):
-- the COMMIT that flushed new or purged text then also merged, taking 100 to 170 ms
-- with 3M messages indexed, and every write queued behind it waited (bench/README.md,
-- "Benchmark 7: the search index's merges").  The job thread merges instead, a bounded
-- 'merge' of about 128 pages at a time as background work (qun_db_search_merge); crisismerge stays the
-- backstop should it fall behind.
INSERT INTO messages_fts(messages_fts, rank) VALUES ('automerge', 0);
-- The job's merges take 16 segments of a level at a time, as automerge did (0035).
INSERT INTO messages_fts(messages_fts, rank) VALUES ('usermerge', 16);
