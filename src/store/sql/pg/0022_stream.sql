-- SPDX-License-Identifier: MIT
-- A global stream position for messages and an explicit retention horizon for the
-- event log (the Matrix adapter's /sync reads both; docs/events.md).
-- messages.stream_id: the id of the message's `message.created` row in events, set in
-- the same transaction as the insert; NULL for messages posted before this migration.
-- msgtype: NULL means plain text (m.text); 'm.notice' or 'm.emote' otherwise.
-- session_id: the sessions row that posted it (NULL for system messages); txn_id: the
-- client's transaction id, when it gave one.
ALTER TABLE messages ADD COLUMN stream_id BIGINT;
ALTER TABLE messages ADD COLUMN msgtype TEXT CHECK (msgtype IN ('m.notice','m.emote'));
ALTER TABLE messages ADD COLUMN session_id BIGINT;
ALTER TABLE messages ADD COLUMN txn_id TEXT;
CREATE INDEX messages_stream ON messages(group_id, stream_id);
-- The largest event id the housekeeping job ever deleted (at most one row, written in
-- the same transaction as the delete; no row means none).  A replay that resumes
-- below it has lost events.  Group-state rows are kept until the group's purge, so
-- MIN(events.id) no longer tells what was deleted.
CREATE TABLE event_horizon (
  one SMALLINT PRIMARY KEY CHECK (one = 1),
  id BIGINT NOT NULL
);
