-- SPDX-License-Identifier: MIT
-- Usernames unique as people read them: username_key is the name's Unicode
-- NFKC_Casefold (core/username.c), unique, and what login looks a name up by.  SQL
-- cannot fold Unicode, so qund fills the key of existing accounts at startup, oldest
-- first; an account whose key an older one holds keeps logging in by its exact
-- username and is recorded in username_collisions (docs/accounts.md).
ALTER TABLE users ADD COLUMN username_key TEXT;
CREATE UNIQUE INDEX users_by_username_key ON users(username_key);
CREATE TABLE username_collisions (
  user_id INTEGER PRIMARY KEY REFERENCES users(id),
  holder_id INTEGER NOT NULL REFERENCES users(id),
  username_key TEXT NOT NULL,
  found_at INTEGER NOT NULL
);
