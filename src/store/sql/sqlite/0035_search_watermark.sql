-- SPDX-License-Identifier: MIT
-- Message search without a queue row per message (store/search.c; migration 0029 has
-- the rest).  Message ids only grow as messages are posted, so the messages not yet in
-- the index are, but for rare exceptions, exactly those above a watermark: search_state
-- holds the highest id the index has taken in, and a new message costs the index nothing
-- until a COMMIT finds search_batch ids above it and indexes them in one statement.
-- search_pending keeps only the exceptions: an indexed message whose text changed
-- (recall, masking) and a message inserted at or below the watermark (an id SQLite
-- reused after the newest message was deleted, or a copied row).
--
-- Invariant, after each COMMIT through this store: a text message is in messages_fts,
-- with its current body, exactly when its id is at most search_state.indexed_to and it is
-- not in search_pending.  The triggers look at rows at or below the watermark only.
DROP TRIGGER search_insert;
DROP TRIGGER search_update;
DROP TRIGGER search_delete;
-- FTS5 merges a level's segments into one once 16 gather, not 4: each row is then
-- rewritten a third as often (bench/README.md, benchmark 14), and a query reads at most
-- 16 segments a level, which cost it nothing measurable at a million messages.
INSERT INTO messages_fts(messages_fts, rank) VALUES ('automerge', 16);
INSERT INTO messages_fts(messages_fts, rank) VALUES ('crisismerge', 64);
-- What waits now goes in, so the watermark can start above every message.
INSERT INTO messages_fts(rowid, body)
  SELECT m.id, m.body FROM search_pending p CROSS JOIN messages m ON m.id = p.id WHERE m.kind = 'text';
DELETE FROM search_pending;
CREATE TABLE search_state (indexed_to INTEGER NOT NULL);
INSERT INTO search_state(indexed_to) SELECT COALESCE(MAX(id), 0) FROM messages;
CREATE TRIGGER search_insert AFTER INSERT ON messages
WHEN new.kind = 'text' AND new.id <= (SELECT indexed_to FROM search_state) BEGIN
  INSERT OR IGNORE INTO search_pending(id) VALUES (new.id);
END;
CREATE TRIGGER search_update AFTER UPDATE OF body ON messages
WHEN old.kind = 'text' AND old.id <= (SELECT indexed_to FROM search_state) BEGIN
  INSERT OR IGNORE INTO search_gone(id, body)
    SELECT old.id, old.body WHERE NOT EXISTS (SELECT 1 FROM search_pending WHERE id = old.id);
  INSERT OR IGNORE INTO search_pending(id) VALUES (new.id);
END;
CREATE TRIGGER search_delete AFTER DELETE ON messages
WHEN old.kind = 'text' AND old.id <= (SELECT indexed_to FROM search_state) BEGIN
  INSERT OR IGNORE INTO search_gone(id, body)
    SELECT old.id, old.body WHERE NOT EXISTS (SELECT 1 FROM search_pending WHERE id = old.id);
  DELETE FROM search_pending WHERE id = old.id;
END;
