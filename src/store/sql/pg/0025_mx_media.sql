-- SPDX-License-Identifier: MIT
-- Matrix media (docs/matrix.md "Media", core/mx_media.c).  An upload through
-- /_matrix/media/v3/upload stores its bytes as a blob (blobs.refcount +1 for as long
-- as its mx_media row lives) and stages a row under a random media_id, never the
-- digest.  A message that references mxc://<server>/<media_id> adds the file to the
-- group (group_files, as /v1 uploads do) and links the media to the group; a second
-- group gets a link of its own.  Staged media no message linked expire after 24 h;
-- a group's purge deletes its links, and media left with no link go with it.
CREATE TABLE mx_media (
  media_id TEXT PRIMARY KEY,
  sha256 TEXT NOT NULL,
  size BIGINT NOT NULL,
  uploader_id BIGINT NOT NULL REFERENCES users(id),
  content_type TEXT NOT NULL,
  name TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX mx_media_by_created ON mx_media(created_at);
CREATE TABLE mx_media_links (
  media_id TEXT NOT NULL REFERENCES mx_media(media_id),
  group_id BIGINT NOT NULL REFERENCES groups(id),
  linked_at BIGINT NOT NULL,
  PRIMARY KEY (media_id, group_id)
);
CREATE INDEX mx_media_links_by_group ON mx_media_links(group_id);
-- A message that carries a file: the digest of the group_files row it shows, and
-- for one sent through Matrix its media id and msgtype (messages.msgtype's CHECK
-- allows m.notice and m.emote only).
ALTER TABLE messages ADD COLUMN file_sha256 TEXT;
ALTER TABLE messages ADD COLUMN media_id TEXT;
ALTER TABLE messages ADD COLUMN media_msgtype TEXT CHECK (media_msgtype IN ('m.image','m.file','m.audio','m.video'));
