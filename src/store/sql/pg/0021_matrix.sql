-- SPDX-License-Identifier: MIT
-- What Matrix clients keep on the server (docs/matrix.md): the sync filters they
-- upload (accepted and mostly ignored), their account data (global when group_id is
-- 0, else per room) and the rooms they asked to forget.  Per-room rows go with the
-- group's purge.
CREATE TABLE mx_filters (
  id BIGSERIAL PRIMARY KEY,
  user_id BIGINT NOT NULL REFERENCES users(id),
  json TEXT NOT NULL
);
CREATE INDEX mx_filters_by_user ON mx_filters(user_id);
CREATE TABLE mx_account_data (
  id BIGSERIAL PRIMARY KEY,
  user_id BIGINT NOT NULL REFERENCES users(id),
  group_id BIGINT NOT NULL DEFAULT 0, -- 0: global
  type TEXT NOT NULL,
  json TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX mx_account_data_key ON mx_account_data(user_id, group_id, type);
CREATE TABLE mx_forgotten (
  user_id BIGINT NOT NULL REFERENCES users(id),
  group_id BIGINT NOT NULL REFERENCES groups(id),
  forgotten_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, group_id)
);
