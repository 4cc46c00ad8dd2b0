-- SPDX-License-Identifier: MIT
-- The audit ledger: canonical JSON entries and every complete perfect subtree hash
-- (level 0 = leaf hashes), so proofs and roots need O(log n) reads.  No foreign keys:
-- the ledger outlives what it records and is never updated or deleted.
CREATE TABLE ledger_entries (
  idx BIGINT PRIMARY KEY,
  event TEXT NOT NULL,
  group_openid TEXT,
  actor_openid TEXT,
  entry TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX ledger_entries_group ON ledger_entries(group_openid, idx);
CREATE TABLE ledger_nodes (
  level BIGINT NOT NULL,
  idx BIGINT NOT NULL,
  hash BYTEA NOT NULL,
  PRIMARY KEY (level, idx)
);
