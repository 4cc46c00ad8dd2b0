-- SPDX-License-Identifier: MIT
-- Message search (store/search.c): a full-text index of messages.body kept by triggers
-- in the same transaction as the row, so a message is findable when it commits and not
-- after its text is changed (recall, masking at purge) or its row is deleted (purge).
-- FTS5's trigram tokenizer indexes every run of three characters, case-folded, so a
-- query of three or more characters (Chinese or English) is a substring match through
-- the index; shorter queries scan the group's rows by (group_id, seq) instead, in
-- windows, because a trigram index holds nothing it could look up for them.
-- External content: the index stores no copy of the text; it is derived data and
-- `qun admin migrate` rebuilds nothing from it (PostgreSQL has its own index).  Every
-- kind of message is indexed (the triggers stay simple and 'rebuild' stays exact); the
-- search filters kind = 'text'.  A NULL body indexes nothing.
CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', content_rowid='id',
                                             tokenize='trigram');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
  INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
  INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
  INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
  INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body);
END;
-- The rows from before this migration.
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
