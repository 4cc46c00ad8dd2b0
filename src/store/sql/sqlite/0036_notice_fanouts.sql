-- SPDX-License-Identifier: MIT
-- A notice to many people (src/core/notify.c, docs/notifications.md): more than
-- QUN_NOTIFY_INLINE members are not notified in the transaction of what the notice
-- announces, which would hold the writer for every member.  That transaction records the
-- notice here and queues a `notify_fanout` job (ref_id: the row's id) that notifies the
-- group's members in user id order, a slice per transaction, each slice moving
-- after_user_id past the people it notified in the same transaction: a step repeated
-- after a crash notifies nobody twice.  skip_user_id (0: none) is the one who caused it.
-- The row goes with the last slice; the group's purge removes its memberships only after.
CREATE TABLE notice_fanouts (
  id INTEGER PRIMARY KEY,
  group_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  params TEXT NOT NULL,
  skip_user_id INTEGER NOT NULL DEFAULT 0,
  after_user_id INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE INDEX notice_fanouts_group ON notice_fanouts(group_id);
