-- SPDX-License-Identifier: MIT
-- PostgreSQL's message search moved to a copy of the text indexed apart from the post
-- (pg/0043); SQLite's FTS5 index already works from a watermark (0035).  This version
-- only keeps the two schemas' numbers equal, which `qun admin migrate` requires.
SELECT 1;
