-- SPDX-License-Identifier: MIT
-- The search index keeps no positions (detail='none'): which messages hold a trigram,
-- not where.  A search looks up a few trigrams that cover the needle and checks each
-- candidate's text for the needle itself (store/search.c), so FTS5 phrases, which need
-- positions, are no longer used.  Positions were most of what a flush wrote and a merge
-- rewrote: at 1M messages the index's pages fall from 66 to 26 MiB, and the writer spends
-- about 40 % less on the index per post (bench/README.md, "The search index without
-- positions").
--
-- The old index is dropped (secure_delete zeroes its pages, hidden text with them) and
-- the new one starts empty, its watermark at 0: the first COMMITs and the jobs thread take
-- the messages in as after a bulk load, QUN_SEARCH_CATCHUP ids per COMMIT, and a search
-- reads the text of those not taken in yet meanwhile, so it finds the same messages.
-- search_pending and search_gone concern the old index only.
DROP TABLE messages_fts;
CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', content_rowid='id',
                                             tokenize='trigram', detail='none');
INSERT INTO messages_fts(messages_fts, rank) VALUES ('automerge', 0);
INSERT INTO messages_fts(messages_fts, rank) VALUES ('usermerge', 16);
INSERT INTO messages_fts(messages_fts, rank) VALUES ('crisismerge', 64);
DELETE FROM search_pending;
DELETE FROM search_gone;
UPDATE search_state SET indexed_to = 0, scrubbed = gone, scrub_to = 0;
