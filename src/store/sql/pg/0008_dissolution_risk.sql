-- SPDX-License-Identifier: MIT
-- A dissolution points at the risk evaluation of its request; purges find a
-- group's payments by index.
ALTER TABLE dissolutions ADD COLUMN risk_id TEXT;
CREATE INDEX payments_group ON payments(group_id, id);
