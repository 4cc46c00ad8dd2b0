-- SPDX-License-Identifier: MIT
-- SQLite's FTS5 index is rewritten to drop text taken out of it (sqlite/0039).  On
-- PostgreSQL the pg_trgm entries of deleted rows go with VACUUM (docs/postgres.md).
-- This version only keeps the two schemas' numbers equal, which `qun admin migrate`
-- requires.
SELECT 1;
