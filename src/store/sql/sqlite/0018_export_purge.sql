-- SPDX-License-Identifier: MIT
-- A group's exports follow its dissolution's disposition (src/jobs/purge.c): the purge
-- deletes each archive's file and marks its row purged_at, so the row stays as the
-- record of what was made (id, digest, size, recipients: no content) and a download
-- answers EXPORT_PURGED.  Its storage grants are deleted outright.
ALTER TABLE exports ADD COLUMN purged_at INTEGER;
