-- SPDX-License-Identifier: MIT
-- Passphrase archives and their transcript (src/core/export.c, src/jobs/export.c):
-- passphrase_sealed is the passphrase of an export asked for with one instead of age
-- recipients, sealed with the server's sealing key (as TOTP secrets) and set back to
-- NULL when the export's job ends, done or failed (recipients is then '[]');
-- lang ('en' or 'zh-CN') and tz_offset (minutes east of UTC, NULL: UTC) say how the
-- archive's human-readable transcript is written.
ALTER TABLE exports ADD COLUMN passphrase_sealed BLOB;
ALTER TABLE exports ADD COLUMN lang TEXT NOT NULL DEFAULT 'en';
ALTER TABLE exports ADD COLUMN tz_offset INTEGER;
