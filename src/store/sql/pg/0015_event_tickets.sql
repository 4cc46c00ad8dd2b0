-- SPDX-License-Identifier: MIT
-- Tickets for GET /v1/events?ticket= (a browser's EventSource cannot send an
-- Authorization header).  Only the SHA-256 of a ticket is stored; it is bound to the
-- session that asked for it, good once (used_at) and short-lived (event_ticket_ttl).
CREATE TABLE event_tickets (
  token_hash TEXT PRIMARY KEY,
  session_id BIGINT NOT NULL REFERENCES sessions(id),
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT
);
CREATE INDEX event_tickets_expires ON event_tickets(expires_at);
