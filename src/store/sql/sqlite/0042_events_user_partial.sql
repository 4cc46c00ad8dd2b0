-- SPDX-License-Identifier: MIT
-- events_user indexes the events addressed to one user; a message's event, like every
-- event of a group, has no user, and each still cost the index an entry: one more
-- b-tree written per post (0.5 µs of a 2.8 µs event row on SQLite, bench/README.md, "The
-- post path, 2026-12-06").  Partial now: the queries that use it ask for
-- `user_id = $n`, which implies the index's WHERE, so their plans are unchanged.
DROP INDEX events_user;
CREATE INDEX events_user ON events(user_id, id) WHERE user_id IS NOT NULL;
