-- SPDX-License-Identifier: MIT
-- Recall and removal of messages (core/message.c, qun_message_recall).  The author
-- recalls a message within the policy's recall_window_seconds, an owner or admin removes
-- one with a reason; either way body becomes '' and the file and media links become NULL
-- in the same transaction (the text is deleted, not hidden), and these columns say who
-- and when: recalled_by is the users row, recall_reason the reason given (NULL for none).
ALTER TABLE messages ADD COLUMN recalled_at INTEGER;
ALTER TABLE messages ADD COLUMN recalled_by INTEGER;
ALTER TABLE messages ADD COLUMN recall_reason TEXT;
