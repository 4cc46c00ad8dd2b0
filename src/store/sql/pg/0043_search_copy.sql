-- SPDX-License-Identifier: MIT
-- Message search apart from the post (store/search.c, "PostgreSQL"): the pg_trgm GIN
-- index on messages.body cost every post its trigrams' entries in the writer's
-- transaction, a fifth of the server's time per post (bench/README.md, "Search apart
-- from the post on PostgreSQL").  Text messages are now copied into message_search,
-- which holds the index, by the job thread's own connection, a slice at a time, beside
-- the writer; a search reads the copies and the few messages above search_state's
-- watermark that have none yet.
--
-- Invariant, in every snapshot: a text message whose id is at most
-- search_state.indexed_to has its copy, with its current body.  A message whose text
-- changes writes its copy itself, by the trigger below, in the changing transaction
-- (INSERT ... ON CONFLICT: copied or not yet), and the copy statement's ON CONFLICT DO
-- NOTHING keeps that one; a deleted message takes its copy with it (ON DELETE CASCADE),
-- and the copy statement takes each row FOR KEY SHARE, so a deletion under way is
-- waited for and the row skipped.  A write that changes no text (stream_id) never
-- waits for the copy.
CREATE TABLE message_search (
  id BIGINT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
  group_id BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  body TEXT NOT NULL
);
INSERT INTO message_search(id, group_id, seq, body)
  SELECT id, group_id, seq, body FROM messages WHERE kind = 'text';
CREATE INDEX message_search_body_trgm ON message_search USING gin (body gin_trgm_ops);
CREATE INDEX message_search_seq ON message_search(group_id, seq);
DROP INDEX messages_body_trgm;
CREATE TABLE search_state (indexed_to BIGINT NOT NULL);
INSERT INTO search_state(indexed_to) SELECT COALESCE(MAX(id), 0) FROM messages;
CREATE FUNCTION message_search_body() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.kind = 'text' THEN
    INSERT INTO message_search(id, group_id, seq, body) VALUES (NEW.id, NEW.group_id, NEW.seq, NEW.body)
      ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body;
  ELSE
    DELETE FROM message_search WHERE id = NEW.id;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER message_search_body AFTER UPDATE OF body, kind ON messages
  FOR EACH ROW WHEN (OLD.body IS DISTINCT FROM NEW.body OR OLD.kind IS DISTINCT FROM NEW.kind)
  EXECUTE FUNCTION message_search_body();
