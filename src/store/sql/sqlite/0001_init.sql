-- SPDX-License-Identifier: MIT
-- qun schema v1 (SQLite): accounts, orgs, groups, messages, files, payments,
-- dissolutions, durable jobs, idempotency keys and confirmation tokens.
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  openid TEXT NOT NULL UNIQUE,
  username TEXT NOT NULL UNIQUE,
  pwhash TEXT NOT NULL,
  is_minor INTEGER NOT NULL DEFAULT 0,
  password_changed_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE guardians (
  minor_id INTEGER NOT NULL REFERENCES users(id),
  guardian_id INTEGER NOT NULL REFERENCES users(id),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (minor_id, guardian_id)
);
CREATE TABLE devices (
  user_id INTEGER NOT NULL REFERENCES users(id),
  device_id TEXT NOT NULL,
  platform TEXT NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  PRIMARY KEY (user_id, device_id)
);
CREATE TABLE sessions (
  id INTEGER PRIMARY KEY,
  sid TEXT NOT NULL UNIQUE,
  user_id INTEGER NOT NULL REFERENCES users(id),
  token_hash TEXT NOT NULL UNIQUE,
  device_id TEXT NOT NULL,
  platform TEXT NOT NULL,
  ip TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE orgs (
  id INTEGER PRIMARY KEY,
  oid TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('enterprise', 'school')),
  dissolve_protection INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE org_admins (
  org_id INTEGER NOT NULL REFERENCES orgs(id),
  user_id INTEGER NOT NULL REFERENCES users(id),
  PRIMARY KEY (org_id, user_id)
);
CREATE TABLE groups (
  id INTEGER PRIMARY KEY,
  gid TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('standard','enterprise','education','finance','cross_border')),
  org_id INTEGER REFERENCES orgs(id),
  regions TEXT NOT NULL DEFAULT '[]',
  owner_id INTEGER NOT NULL REFERENCES users(id),
  state TEXT NOT NULL DEFAULT 'active'
    CHECK (state IN ('active','review','pending','dissolved','purging','purged')),
  member_count INTEGER NOT NULL DEFAULT 0,
  next_seq INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE members (
  group_id INTEGER NOT NULL REFERENCES groups(id),
  user_id INTEGER NOT NULL REFERENCES users(id),
  role TEXT NOT NULL CHECK (role IN ('owner','admin','member')),
  joined_at INTEGER NOT NULL,
  PRIMARY KEY (group_id, user_id)
);
CREATE INDEX members_user ON members(user_id, group_id);
CREATE TABLE transfers (
  group_id INTEGER PRIMARY KEY REFERENCES groups(id),
  from_id INTEGER NOT NULL REFERENCES users(id),
  to_id INTEGER NOT NULL REFERENCES users(id),
  created_at INTEGER NOT NULL
);
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  group_id INTEGER NOT NULL REFERENCES groups(id),
  seq INTEGER NOT NULL,
  author_id INTEGER NOT NULL REFERENCES users(id),
  kind TEXT NOT NULL DEFAULT 'text',
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (group_id, seq)
);
CREATE TABLE blobs (
  sha256 TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  refcount INTEGER NOT NULL CHECK (refcount >= 0),
  created_at INTEGER NOT NULL
);
CREATE TABLE group_files (
  id INTEGER PRIMARY KEY,
  group_id INTEGER NOT NULL REFERENCES groups(id),
  sha256 TEXT NOT NULL REFERENCES blobs(sha256),
  name TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  uploader_id INTEGER NOT NULL REFERENCES users(id),
  created_at INTEGER NOT NULL,
  UNIQUE (group_id, sha256)
);
-- Blob files whose last reference went away: unlinked from disk after commit.
CREATE TABLE unlink_queue (
  sha256 TEXT PRIMARY KEY,
  queued_at INTEGER NOT NULL
);
CREATE TABLE payments (
  id INTEGER PRIMARY KEY,
  pid TEXT NOT NULL UNIQUE,
  group_id INTEGER NOT NULL REFERENCES groups(id),
  creator_id INTEGER NOT NULL REFERENCES users(id),
  kind TEXT NOT NULL CHECK (kind IN ('red_packet')),
  amount INTEGER NOT NULL CHECK (amount > 0),
  shares INTEGER NOT NULL CHECK (shares > 0),
  claimed_amount INTEGER NOT NULL DEFAULT 0,
  claimed_shares INTEGER NOT NULL DEFAULT 0,
  memo TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  CHECK (claimed_shares <= shares AND claimed_amount <= amount)
);
CREATE TABLE payment_claims (
  payment_id INTEGER NOT NULL REFERENCES payments(id),
  user_id INTEGER NOT NULL REFERENCES users(id),
  amount INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (payment_id, user_id)
);
-- Personal bill lines: never purged by a dissolution, hence no foreign key to
-- groups or payments; they keep the public ids as text.
CREATE TABLE bill_lines (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  group_openid TEXT NOT NULL,
  group_name TEXT NOT NULL,
  payment_openid TEXT NOT NULL,
  kind TEXT NOT NULL,
  amount INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX bill_lines_user ON bill_lines(user_id, id);
CREATE TABLE confirm_tokens (
  token_hash TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  group_id INTEGER NOT NULL REFERENCES groups(id),
  action TEXT NOT NULL,
  params_digest TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);
CREATE TABLE dissolutions (
  id INTEGER PRIMARY KEY,
  group_id INTEGER NOT NULL REFERENCES groups(id),
  requested_by INTEGER NOT NULL REFERENCES users(id),
  messages TEXT NOT NULL CHECK (messages IN ('keep','delete')),
  state TEXT NOT NULL,
  requested_at INTEGER NOT NULL,
  dissolved_at INTEGER,
  purged_at INTEGER,
  cancelled_at INTEGER,
  receipt TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX dissolutions_group ON dissolutions(group_id, id);
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  group_id INTEGER REFERENCES groups(id),
  ref_id INTEGER,
  due_at INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued','running','done','failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  progress TEXT NOT NULL DEFAULT '{}',
  last_error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  finished_at INTEGER
);
CREATE INDEX jobs_due ON jobs(state, due_at);
-- Resource-reclamation events (e.g. CDN purges) for delivery by the outbox.
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY,
  topic TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  delivered_at INTEGER
);
CREATE TABLE idempotency (
  user_id INTEGER NOT NULL,
  key TEXT NOT NULL,
  request_digest TEXT NOT NULL,
  status INTEGER NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_created ON idempotency(created_at);
