-- SPDX-License-Identifier: MIT
-- Completed ownership transfers (src/core/group.c): one row per accepted transfer, so
-- the policy's caps (at most N per group in a window, M per new owner in a window;
-- policies/verification.json) can be counted.  Proposals and declines are in the ledger.
CREATE TABLE transfer_log (
  id INTEGER PRIMARY KEY,
  group_id INTEGER NOT NULL REFERENCES groups(id),
  from_id INTEGER NOT NULL REFERENCES users(id),
  to_id INTEGER NOT NULL REFERENCES users(id),
  accepted_at INTEGER NOT NULL
);
CREATE INDEX transfer_log_group ON transfer_log(group_id, accepted_at);
CREATE INDEX transfer_log_to ON transfer_log(to_id, accepted_at);
