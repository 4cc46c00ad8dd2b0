-- SPDX-License-Identifier: MIT
-- Invitations with consent (core/invitation.c): someone invited to a group becomes a
-- member only when they accept.  state: pending, then accepted, declined, revoked (by
-- the inviter or an admin) or expired; at most one pending invitation per group and
-- invitee.  A group's purge deletes its invitations (jobs/purge.c).
CREATE TABLE invitations (
  id TEXT PRIMARY KEY,
  group_id BIGINT NOT NULL REFERENCES groups(id),
  inviter_id BIGINT NOT NULL REFERENCES users(id),
  invitee_id BIGINT NOT NULL REFERENCES users(id),
  role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
  state TEXT NOT NULL CHECK (state IN ('pending', 'accepted', 'declined', 'revoked', 'expired')),
  created_at BIGINT NOT NULL,
  decided_at BIGINT
);
CREATE UNIQUE INDEX invitations_one_pending ON invitations(group_id, invitee_id) WHERE state = 'pending';
CREATE INDEX invitations_by_invitee ON invitations(invitee_id, state);
