-- SPDX-License-Identifier: MIT
-- A notice to many people (src/core/notify.c): more than QUN_NOTIFY_INLINE members are
-- not notified in the transaction of what the notice announces, which would hold the
-- writer for every member; that transaction records the notice and who it goes to, and
-- queues a `notify_fanout` job (ref_id: the fan-out's id) that notifies them a slice
-- per transaction.  Each slice's people leave notice_targets in the transaction that
-- notified them, so a step repeated after a crash notifies nobody twice; the fan-out's
-- row goes with its last target.  group_id is the group the notice is about, for
-- whoever reads the table.
CREATE TABLE notice_fanouts (
  id INTEGER PRIMARY KEY,
  group_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  params TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE notice_targets (
  fanout_id INTEGER NOT NULL REFERENCES notice_fanouts(id),
  user_id INTEGER NOT NULL REFERENCES users(id),
  PRIMARY KEY (fanout_id, user_id)
) WITHOUT ROWID;
