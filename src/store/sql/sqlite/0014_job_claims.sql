-- SPDX-License-Identifier: MIT
-- Job claims (src/jobs/scheduler.c): an instance takes due jobs by writing its id
-- and a lease deadline on them; another instance leaves a claimed job alone until
-- its lease runs out (the claimer crashed) or it is released.  On PostgreSQL the
-- claim also skips rows another instance's transaction holds (FOR UPDATE SKIP LOCKED).
ALTER TABLE jobs ADD COLUMN claimed_by TEXT;
ALTER TABLE jobs ADD COLUMN claimed_until INTEGER;
