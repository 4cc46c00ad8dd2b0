-- SPDX-License-Identifier: MIT
-- Message search (store/search.c): a trigram index of the text messages' body, in plain
-- tables this store keeps itself (no FTS5: its segment writes did not survive injected
-- allocation faults, and it flushed a segment at every savepoint release of the writer).
--
-- search_trigrams holds one row per distinct run of three characters of lower(body)
-- (SQLite's lower() folds ASCII letters only) and message, keyed by the group first, so
-- a group's messages holding a trigram are one range, in seq order.  A query of three or
-- more characters walks one of its trigrams' range down from the cursor, checks two more
-- by key and the whole needle with instr(); shorter queries scan the group's rows.
--
-- Writes stay cheap: inserting a text message only records its id in search_pending
-- (trigger search_insert); the connection indexes the pending messages in one
-- INSERT ... SELECT just before its COMMIT (store_sqlite.c, qun_db_search_flush), in
-- the same transaction, and takes them off search_pending (up to 2048 per COMMIT: a
-- writer's batch whole; a bulk insert by another tool a slice per commit).  A search
-- also looks at pending messages, so it is right for rows not indexed yet.
--
-- Invariant: a text message not in search_pending has exactly the trigrams of its body
-- in search_trigrams.  A change of body (recall sets it to '', the purge masks it) and
-- a deleted row take the old body's trigrams out in the same statement (triggers
-- search_update, search_delete), so recalled and purged text leaves the index with the
-- row.  search_positions numbers the characters of a body (1 to 65536, more than any
-- message holds: texts are at most 16 KiB) for substr(); triggers cannot use WITH.
-- These tables are derived data: `qun admin migrate` does not copy them.
CREATE TABLE search_positions (i INTEGER PRIMARY KEY);
INSERT INTO search_positions(i)
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 65536) SELECT i FROM n;
CREATE TABLE search_trigrams (
  group_id INTEGER NOT NULL,
  tri TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (group_id, tri, seq)
) WITHOUT ROWID;
CREATE TABLE search_pending (id INTEGER PRIMARY KEY);
CREATE TRIGGER search_insert AFTER INSERT ON messages WHEN new.kind = 'text' BEGIN
  INSERT OR IGNORE INTO search_pending(id) VALUES (new.id);
END;
CREATE TRIGGER search_update AFTER UPDATE OF body ON messages WHEN old.kind = 'text' BEGIN
  DELETE FROM search_trigrams WHERE group_id = old.group_id AND seq = old.seq AND tri IN
    (SELECT substr(lower(old.body), i, 3) FROM search_positions WHERE i <= length(old.body) - 2);
  INSERT OR IGNORE INTO search_pending(id) VALUES (new.id);
END;
CREATE TRIGGER search_delete AFTER DELETE ON messages WHEN old.kind = 'text' BEGIN
  DELETE FROM search_trigrams WHERE group_id = old.group_id AND seq = old.seq AND tri IN
    (SELECT substr(lower(old.body), i, 3) FROM search_positions WHERE i <= length(old.body) - 2);
  DELETE FROM search_pending WHERE id = old.id;
END;
-- The messages from before this migration.
INSERT OR IGNORE INTO search_trigrams(group_id, tri, seq)
  SELECT m.group_id, substr(lower(m.body), p.i, 3), m.seq FROM messages m
  JOIN search_positions p ON p.i <= length(m.body) - 2 WHERE m.kind = 'text';
