-- SPDX-License-Identifier: MIT
-- Passkeys (WebAuthn credentials): the browser form of a device key.  A passkey is
-- registered from a device of its user (device_id) and approves challenges like that
-- device's key.  public_key is the ES256 point x || y (64 bytes) as libfido2 reads
-- it from the COSE key; sign_count the authenticator's last counter (0: it keeps none).
CREATE TABLE passkeys (
  id INTEGER PRIMARY KEY,
  pkid TEXT NOT NULL UNIQUE,
  user_id INTEGER NOT NULL REFERENCES users(id),
  device_id TEXT NOT NULL,
  credential_id BLOB NOT NULL UNIQUE,
  cose_alg INTEGER NOT NULL,
  public_key BLOB NOT NULL,
  sign_count INTEGER NOT NULL DEFAULT 0,
  label TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  last_used_at INTEGER
);
CREATE INDEX passkeys_user ON passkeys(user_id, device_id);
-- A registration ceremony's challenge, kept as its SHA-256 (hex): single use, short-lived,
-- bound to the user and session that asked for the options.
CREATE TABLE passkey_options (
  challenge_hash TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  session_id INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);
CREATE INDEX passkey_options_user ON passkey_options(user_id, created_at);
