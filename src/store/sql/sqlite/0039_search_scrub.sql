-- SPDX-License-Identifier: MIT
-- Text taken out of the FTS5 index (a purge, a recall, a mask) was only hidden: FTS5's
-- 'delete' writes a tombstone in a new segment, and the old segments keep every trigram
-- of the text, with its positions, until a merge into the oldest level drops both.  So
-- a purged group's messages could be read back out of qun.db (bench/README.md, "The
-- search index kept purged text").  The store now counts the COMMITs that took text out
-- (gone), and a rewrite of the whole index, a bounded 'merge' at a time
-- (qun_db_search_scrub), drops what they hid: scrub_to is gone when the rewrite under
-- way began (0: none), scrubbed is what the last finished rewrite covers.  A purge ends
-- only after one that covers it; recalls wait for the jobs thread's next one.
ALTER TABLE search_state ADD COLUMN gone INTEGER NOT NULL DEFAULT 0;
ALTER TABLE search_state ADD COLUMN scrubbed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE search_state ADD COLUMN scrub_to INTEGER NOT NULL DEFAULT 0;
-- Recalls and purges before this version may have left text: an index that holds
-- anything is rewritten once.
UPDATE search_state SET gone = 1 WHERE indexed_to > 0;
