-- SPDX-License-Identifier: MIT
-- How far each member has read each group (docs/matrix.md "Receipts, unread counts
-- and typing"): seq is the newest message seq the user has read, by any receipt (a
-- Matrix m.read or m.read.private, or POST /v1/groups/{id}/read), and pub_seq the one
-- its public receipts show the other members.  Both only move forward.  A group's rows
-- go with its purge.
CREATE TABLE read_marks (
  user_id BIGINT NOT NULL REFERENCES users(id),
  group_id BIGINT NOT NULL REFERENCES groups(id),
  seq BIGINT NOT NULL DEFAULT 0,
  ts BIGINT NOT NULL DEFAULT 0,        -- when seq last moved, ms
  pub_seq BIGINT NOT NULL DEFAULT 0,
  pub_ts BIGINT NOT NULL DEFAULT 0,    -- when pub_seq last moved, ms
  PRIMARY KEY (user_id, group_id)
);
CREATE INDEX read_marks_by_group ON read_marks(group_id);
