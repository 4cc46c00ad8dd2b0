-- SPDX-License-Identifier: MIT
-- Notifications that reach people (src/core/notify.c, docs/notifications.md).
-- notifications: one person's inbox, each row a code (`kind`) with its parameters as
-- JSON (names, not ids alone), written in the transaction of what it announces;
-- read_at is set by POST /v1/me/notifications/read.
CREATE TABLE notifications (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  kind TEXT NOT NULL,
  params TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  read_at INTEGER
);
CREATE INDEX notifications_user ON notifications(user_id, id);
CREATE INDEX notifications_unread ON notifications(user_id, id) WHERE read_at IS NULL;
-- The language mail is written in ('en' or 'zh-CN'); NULL: not chosen yet.
ALTER TABLE users ADD COLUMN lang TEXT;
-- One mail address per person.  code_hash: SHA-256 (hex) of a random salt and the
-- pending verification code, never the code; verified_at once it was typed back.
CREATE TABLE email_addresses (
  user_id INTEGER PRIMARY KEY REFERENCES users(id),
  address TEXT NOT NULL,
  verified_at INTEGER,
  code_salt TEXT,
  code_hash TEXT,
  code_sent_at INTEGER,
  code_expires_at INTEGER,
  created_at INTEGER NOT NULL
);
-- Mail waiting to be sent by src/jobs/mail.c.  mid is the Message-ID, the same on every
-- attempt; params holds what the text is made of (a verification code only sealed, and
-- wiped once the mail is sent or dead).
--   pending --sent--> sent;  pending --max attempts--> dead
CREATE TABLE mail_outbox (
  id INTEGER PRIMARY KEY,
  mid TEXT NOT NULL UNIQUE,
  user_id INTEGER REFERENCES users(id),
  to_addr TEXT NOT NULL,
  lang TEXT NOT NULL,
  kind TEXT NOT NULL,
  params TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','sent','dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL,
  last_error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  sent_at INTEGER
);
CREATE INDEX mail_outbox_due ON mail_outbox(state, next_at, id);
-- Invitations by mail for people with no account yet: an org admin asks someone to
-- become an admin of the org, or a guardian of a minor of the school.  Only the
-- token's SHA-256 is stored; the invitee redeems it once, signed in.
CREATE TABLE email_invites (
  id INTEGER PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  org_id INTEGER NOT NULL REFERENCES orgs(id),
  role TEXT NOT NULL CHECK (role IN ('admin','guardian')),
  minor_id INTEGER REFERENCES users(id),
  address TEXT NOT NULL,
  invited_by INTEGER NOT NULL REFERENCES users(id),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  redeemed_by INTEGER REFERENCES users(id),
  redeemed_at INTEGER
);
