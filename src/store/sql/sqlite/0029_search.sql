-- SPDX-License-Identifier: MIT
-- Message search (store/search.c): an FTS5 trigram index of the text messages' body.
-- FTS5's trigram tokenizer indexes every run of three characters, case-folded, so a
-- query of three or more characters (Chinese or English) is a substring match through
-- the index; shorter queries scan the group's rows by (group_id, seq) instead, in
-- windows, because a trigram index holds nothing it could look up for them.
-- External content: the index stores no copy of the text; it is derived data and
-- `qun admin migrate` copies nothing of it (PostgreSQL has its own index).
--
-- Writes stay cheap and out of triggers: FTS5 writes a segment whenever a statement that
-- writes it opens a savepoint, which a trigger's write into it does for every row (and
-- FTS5 writes reached from triggers did not survive injected allocation faults: the
-- connection saw its index as malformed afterwards).  So the triggers only write plain
-- tables: a new text message's id goes to search_pending, a changed or deleted one's old
-- body, if it was indexed, to search_gone.  Just before its COMMIT the connection
-- (store/search.c, qun_db_search_flush) takes search_gone's text out of the index, and
-- once search_batch (default 256) ids wait in search_pending indexes them all, one
-- statement each, in the same transaction: FTS5's cost per row falls with the rows per
-- flush.  A search reads the text of the rows still queued directly, so a committed
-- message is always found, indexed or not, and old text never outlives the transaction
-- that changed or deleted its row.  search_gone never holds a committed row (the flush
-- empties it before the COMMIT; secure_delete zeroes the pages).
--
-- Invariant, after each COMMIT through this store: a text message is in messages_fts,
-- with its current body, exactly when it is not in search_pending.  FTS5's 'delete'
-- of text it never indexed would corrupt it, hence the NOT EXISTS guards.  Recalled and
-- purged text thus leaves the index in the transaction that changes the row.
CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', content_rowid='id',
                                             tokenize='trigram');
CREATE TABLE search_pending (id INTEGER PRIMARY KEY);
CREATE TABLE search_gone (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TRIGGER search_insert AFTER INSERT ON messages WHEN new.kind = 'text' BEGIN
  INSERT OR IGNORE INTO search_pending(id) VALUES (new.id);
END;
CREATE TRIGGER search_update AFTER UPDATE OF body ON messages WHEN old.kind = 'text' BEGIN
  INSERT OR IGNORE INTO search_gone(id, body)
    SELECT old.id, old.body WHERE NOT EXISTS (SELECT 1 FROM search_pending WHERE id = old.id);
  INSERT OR IGNORE INTO search_pending(id) VALUES (new.id);
END;
CREATE TRIGGER search_delete AFTER DELETE ON messages WHEN old.kind = 'text' BEGIN
  INSERT OR IGNORE INTO search_gone(id, body)
    SELECT old.id, old.body WHERE NOT EXISTS (SELECT 1 FROM search_pending WHERE id = old.id);
  DELETE FROM search_pending WHERE id = old.id;
END;
-- The messages from before this migration.
INSERT INTO messages_fts(rowid, body) SELECT id, body FROM messages WHERE kind = 'text';
