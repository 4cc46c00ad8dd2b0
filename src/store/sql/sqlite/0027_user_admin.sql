-- SPDX-License-Identifier: MIT
-- User administration (core/useradmin.c): a server admin disables an account
-- (disabled_at; its sessions are revoked in the same transaction and it cannot log in)
-- or resets its password to a one-time code.  password_reset: 0 none; 1 the pwhash is
-- the argon2id hash of a one-time code nobody has logged in with yet; 2 a session was
-- opened with the code, which logs in no more, and that session may do nothing but set
-- a new password (which puts it back to 0).
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
ALTER TABLE users ADD COLUMN password_reset INTEGER NOT NULL DEFAULT 0;
