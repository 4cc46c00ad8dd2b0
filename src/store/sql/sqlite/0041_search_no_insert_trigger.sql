-- SPDX-License-Identifier: MIT
-- A message row no longer fires a trigger.  search_insert (0035) queued a new row whose
-- id SQLite had reused at or below the watermark, after the newest message was deleted.
-- Its WHEN alone cost every post a statement journal: a trigger makes an INSERT a
-- statement that may fail halfway, so SQLite first copied each page the row touched
-- (five or so, 4 KiB each) into memory: a tenth of the writer's CPU per post
-- (bench/README.md, "The post path, 2026-12-06").
--
-- Instead the watermark never stays above the newest message: deleting the newest row
-- lowers it to the new newest, in the same statement.  A new row's id is one above the
-- newest row's, so it is always above the watermark and waits there like any other
-- until the COMMIT that indexes it.  Lowering it is safe: no row is left above the new
-- watermark, and a deleted row's text is queued for removal (search_gone) before it is
-- lowered.  search_tail does both itself, so it is right whichever of it and
-- search_delete (0035, unchanged) SQLite fires first; only the newest row's deletion
-- fires it.  Rows written by another tool with ids of their own at or below the
-- watermark are not indexed (docs/api.md).
DROP TRIGGER search_insert;
CREATE TRIGGER search_tail AFTER DELETE ON messages
WHEN old.id > (SELECT COALESCE(MAX(id), 0) FROM messages) BEGIN
  INSERT OR IGNORE INTO search_gone(id, body)
    SELECT old.id, old.body
     WHERE old.kind = 'text' AND old.id <= (SELECT indexed_to FROM search_state)
       AND NOT EXISTS (SELECT 1 FROM search_pending WHERE id = old.id);
  DELETE FROM search_pending WHERE id = old.id;
  UPDATE search_state SET indexed_to = (SELECT COALESCE(MAX(id), 0) FROM messages)
   WHERE indexed_to > (SELECT COALESCE(MAX(id), 0) FROM messages);
END;
