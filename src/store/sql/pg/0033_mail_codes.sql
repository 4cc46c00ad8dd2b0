-- SPDX-License-Identifier: MIT
-- The verification codes an account had mailed lately, counted per account whatever
-- the address (docs/notifications.md: one a minute, ten a day).
CREATE INDEX mail_outbox_user ON mail_outbox(user_id, kind, created_at);
