-- SPDX-License-Identifier: MIT
-- Message search (store/search.c): a pg_trgm GIN index on messages.body, which
-- PostgreSQL maintains in the same transaction as the row (so recall, masking and purge
-- take text out of it with the row) and builds here for the rows that exist.  It serves
-- ILIKE '%...%' for queries of three or more characters; shorter queries scan the
-- group's rows by (group_id, seq) in windows.  pg_trgm extracts trigrams from
-- alphanumeric runs as the database's LC_CTYPE classifies them: under the C locale only
-- ASCII letters and digits count, so Chinese text is then found by the group scan (the
-- answer is the same, only slower on a large group).  pg_trgm ships with Debian's
-- postgresql package (contrib); creating it needs a role allowed to (it is a trusted
-- extension since PostgreSQL 13, so the database owner may).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX messages_body_trgm ON messages USING gin (body gin_trgm_ops);
