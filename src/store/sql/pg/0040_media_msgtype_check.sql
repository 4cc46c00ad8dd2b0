-- SPDX-License-Identifier: MIT
-- SQLite's messages.media_msgtype CHECK is rewritten with `=` and `OR` (sqlite/0040), where
-- `IN` cost a temporary index for every row.  PostgreSQL tests `IN` a list of constants
-- directly.  This version only keeps the two schemas' numbers equal, which `qun admin
-- migrate` requires.
SELECT 1;
