-- SPDX-License-Identifier: MIT
-- Verification and risk: device keys, challenges (device_key and qr), TOTP
-- enrollments, declared account links and stored risk evaluations.
-- One Ed25519 public key per (user, device): the device signs challenges with it.
CREATE TABLE device_keys (
  user_id INTEGER NOT NULL REFERENCES users(id),
  device_id TEXT NOT NULL,
  public_key BLOB NOT NULL CHECK (length(public_key) = 32),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, device_id)
);
-- A challenge is bound to its user, the requesting session and device, an action, a
-- group and a parameters digest; it is approved once by a signature and used once.
CREATE TABLE challenges (
  id INTEGER PRIMARY KEY,
  cid TEXT NOT NULL UNIQUE,
  user_id INTEGER NOT NULL REFERENCES users(id),
  session_id INTEGER NOT NULL,
  device_id TEXT NOT NULL,
  method TEXT NOT NULL CHECK (method IN ('device_key', 'qr')),
  action TEXT NOT NULL,
  group_openid TEXT NOT NULL DEFAULT '',
  params_digest TEXT NOT NULL DEFAULT '',
  nonce TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  approved_at INTEGER,
  approved_device TEXT,
  used_at INTEGER
);
CREATE INDEX challenges_user ON challenges(user_id, created_at);
-- TOTP secrets, sealed with the server's TOTP key (crypto_secretbox: nonce || box).
-- last_step is the highest RFC 6238 time step accepted: no code of it or before is
-- accepted again (replay protection).
CREATE TABLE totp (
  user_id INTEGER PRIMARY KEY REFERENCES users(id),
  sealed BLOB NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'active')),
  created_at INTEGER NOT NULL,
  confirmed_at INTEGER,
  last_step INTEGER NOT NULL DEFAULT -1
);
-- Links between accounts an admin declared (the risk engine's linked-accounts rule).
CREATE TABLE account_links (
  user_a INTEGER NOT NULL REFERENCES users(id),
  user_b INTEGER NOT NULL REFERENCES users(id),
  reason TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_a, user_b)
);
CREATE TABLE risk_evaluations (
  id INTEGER PRIMARY KEY,
  rid TEXT NOT NULL UNIQUE,
  user_id INTEGER NOT NULL REFERENCES users(id),
  group_id INTEGER REFERENCES groups(id),
  session_id INTEGER,
  device_id TEXT NOT NULL DEFAULT '',
  ip TEXT NOT NULL DEFAULT '',
  level TEXT NOT NULL CHECK (level IN ('allow', 'warn', 'verify', 'review', 'deny')),
  score INTEGER NOT NULL,
  reasons TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL
);
CREATE INDEX risk_evaluations_user ON risk_evaluations(user_id, created_at);
-- The risk rules' lookups: dissolutions by requester and time, recent requesters,
-- a user's own message times, groups by owner.
CREATE INDEX dissolutions_requester ON dissolutions(requested_by, requested_at);
CREATE INDEX dissolutions_requested_at ON dissolutions(requested_at);
CREATE INDEX messages_author ON messages(author_id, created_at);
CREATE INDEX groups_owner ON groups(owner_id);
