-- SPDX-License-Identifier: MIT
-- A device is identified by a secret only it holds: at a device's first login the
-- server issues a random device secret and keeps its SHA-256 here.  A later login that
-- claims the device must present it.  Devices recorded before this migration have
-- none (NULL) and can no longer be claimed: their owners log in as a new device.
ALTER TABLE devices ADD COLUMN secret_hash TEXT;
