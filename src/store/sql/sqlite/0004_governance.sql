-- SPDX-License-Identifier: MIT
-- Dissolution governance: timers, approvals, legal holds, successors, tombstones.
ALTER TABLE dissolutions ADD COLUMN due_at INTEGER;
ALTER TABLE dissolutions ADD COLUMN grace_until INTEGER;
ALTER TABLE dissolutions ADD COLUMN tombstone_until INTEGER;
ALTER TABLE dissolutions ADD COLUMN successor_name TEXT;
ALTER TABLE dissolutions ADD COLUMN successor_group_id INTEGER REFERENCES groups(id);
ALTER TABLE dissolutions ADD COLUMN rules TEXT NOT NULL DEFAULT '{}';
ALTER TABLE dissolutions ADD COLUMN ended_reason TEXT;
CREATE TABLE approvals (
  id INTEGER PRIMARY KEY,
  aid TEXT NOT NULL UNIQUE,
  dissolution_id INTEGER NOT NULL REFERENCES dissolutions(id),
  group_id INTEGER NOT NULL REFERENCES groups(id),
  kind TEXT NOT NULL CHECK (kind IN ('org_admin', 'school_admin', 'guardian', 'risk_review')),
  approver_id INTEGER REFERENCES users(id),
  org_id INTEGER REFERENCES orgs(id),
  subject_id INTEGER REFERENCES users(id),
  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
  reason TEXT NOT NULL DEFAULT '',
  decided_by INTEGER REFERENCES users(id),
  created_at INTEGER NOT NULL,
  decided_at INTEGER,
  expires_at INTEGER NOT NULL
);
CREATE INDEX approvals_dissolution ON approvals(dissolution_id);
CREATE INDEX approvals_approver ON approvals(approver_id, state);
CREATE INDEX approvals_org ON approvals(org_id, state);
CREATE TABLE holds (
  id INTEGER PRIMARY KEY,
  hid TEXT NOT NULL UNIQUE,
  group_id INTEGER NOT NULL REFERENCES groups(id),
  reason TEXT NOT NULL,
  placed_by INTEGER NOT NULL REFERENCES users(id),
  placed_at INTEGER NOT NULL,
  released_by INTEGER REFERENCES users(id),
  released_at INTEGER
);
CREATE INDEX holds_group ON holds(group_id, released_at);
