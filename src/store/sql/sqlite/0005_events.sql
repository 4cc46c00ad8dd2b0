-- SPDX-License-Identifier: MIT
-- Member-facing events for GET /v1/events (server-sent events), appended by the core
-- in the same transaction as the change they describe.  Audience: the members of
-- group_id (resolved in memory by each HTTP loop at delivery) plus the single user
-- user_id; either may be NULL.  AUTOINCREMENT keeps ids increasing even after the
-- retention job has emptied the table, so a client's Last-Event-ID never repeats.
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  topic TEXT NOT NULL,
  group_id INTEGER,
  user_id INTEGER,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX events_group ON events(group_id, id);
CREATE INDEX events_user ON events(user_id, id);
CREATE INDEX events_created ON events(created_at);
