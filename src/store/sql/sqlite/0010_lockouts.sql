-- SPDX-License-Identifier: MIT
-- Brute-force protection (core/lockout.c): failed logins, step-ups and challenge
-- signatures counted per account (username) and per network (/24, /64) in a window,
-- and the locks they engage, kept for the admins' view after they end.
CREATE TABLE auth_failures (
  scope TEXT NOT NULL CHECK (scope IN ('account', 'network')),
  subject TEXT NOT NULL,
  failures INTEGER NOT NULL,
  window_start INTEGER NOT NULL,
  last_kind TEXT NOT NULL,
  last_at INTEGER NOT NULL,
  PRIMARY KEY (scope, subject)
);
CREATE TABLE lockouts (
  id INTEGER PRIMARY KEY,
  lid TEXT NOT NULL UNIQUE,
  scope TEXT NOT NULL CHECK (scope IN ('account', 'network')),
  subject TEXT NOT NULL,
  kind TEXT NOT NULL,
  failures INTEGER NOT NULL,
  locked_at INTEGER NOT NULL,
  until_at INTEGER NOT NULL,
  cleared_at INTEGER,
  cleared_by TEXT
);
CREATE INDEX lockouts_subject ON lockouts(scope, subject, until_at);
CREATE INDEX lockouts_until ON lockouts(until_at);
