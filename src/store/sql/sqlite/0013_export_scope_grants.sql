-- SPDX-License-Identifier: MIT
-- Exports beyond the owner's whole-group archive (src/jobs/export.c, src/core/grant.c):
-- an export's scope ('group', or 'self': one member's own copy during a notice); the
-- export a dissolution waits for when it was asked with "archive" (the dissolution
-- stays in state 'archiving', the group `active`, until that export is ledgered); and
-- storage grants, expiring revocable tokens that let another application download one
-- group's exports.  A grant's token is `qgr_<grid>_<secret>`; only the SHA-256 of the
-- secret is kept.
ALTER TABLE exports ADD COLUMN scope TEXT NOT NULL DEFAULT 'group' CHECK (scope IN ('group','self'));
ALTER TABLE dissolutions ADD COLUMN export_id INTEGER REFERENCES exports(id);
CREATE TABLE export_grants (
  id INTEGER PRIMARY KEY,
  grid TEXT NOT NULL UNIQUE,
  group_id INTEGER NOT NULL REFERENCES groups(id),
  secret_hash TEXT NOT NULL,
  label TEXT,
  created_by INTEGER NOT NULL REFERENCES users(id),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER,
  revoked_by INTEGER REFERENCES users(id),
  uses INTEGER NOT NULL DEFAULT 0,
  last_used_at INTEGER
);
CREATE INDEX export_grants_group ON export_grants(group_id, id);
