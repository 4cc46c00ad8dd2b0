-- SPDX-License-Identifier: MIT
-- Group exports (src/jobs/export.c): one row per requested archive, run by an
-- `export_group` job whose ref_id is the row's id.  recipients is the JSON array of
-- age X25519 recipients; progress the counters {messages, files, bytes} the job
-- copies in; digest the SHA-256 of the finished .age file, ledger_index the index of
-- its `export.made` entry.
CREATE TABLE exports (
  id INTEGER PRIMARY KEY,
  xid TEXT NOT NULL UNIQUE,
  group_id INTEGER NOT NULL REFERENCES groups(id),
  requester_id INTEGER NOT NULL REFERENCES users(id),
  recipients TEXT NOT NULL,
  desensitize INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running','done','failed')),
  progress TEXT NOT NULL DEFAULT '{"bytes":0,"files":0,"messages":0}',
  digest TEXT,
  size INTEGER,
  ledger_index INTEGER,
  error TEXT,
  created_at INTEGER NOT NULL,
  finished_at INTEGER
);
CREATE INDEX exports_group ON exports(group_id, id);
