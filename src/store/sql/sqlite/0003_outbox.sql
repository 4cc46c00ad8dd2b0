-- SPDX-License-Identifier: MIT
-- Webhook delivery of the outbox (src/jobs/outbox.c).  Each outbox row gets a random
-- public event id when it is first picked up, sent as Qun-Event-Id on every attempt so
-- receivers can drop repeats.  One outbox_deliveries row per (event, webhook URL)
-- tracks that URL's attempts:  pending --2xx--> delivered;  pending --max attempts-->
-- dead --admin retry--> pending.  outbox.delivered_at is set once every URL has it.
ALTER TABLE outbox ADD COLUMN event_id TEXT;
CREATE UNIQUE INDEX outbox_event_id ON outbox(event_id);
CREATE INDEX outbox_undelivered ON outbox(id) WHERE delivered_at IS NULL;
CREATE TABLE outbox_deliveries (
  id INTEGER PRIMARY KEY,
  outbox_id INTEGER NOT NULL REFERENCES outbox(id),
  url TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','delivered','dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL,
  last_status INTEGER,              -- HTTP status of the last attempt; NULL when none came back
  last_error TEXT NOT NULL DEFAULT '',
  last_attempt_at INTEGER,
  created_at INTEGER NOT NULL,
  delivered_at INTEGER,
  UNIQUE (outbox_id, url)
);
CREATE INDEX outbox_deliveries_due ON outbox_deliveries(state, next_at, outbox_id);
