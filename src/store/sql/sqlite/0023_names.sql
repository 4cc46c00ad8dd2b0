-- SPDX-License-Identifier: MIT
-- Names people see and names Matrix clients address (issue 14, docs/api.md "Names").
--
-- users.mx_localpart: the account's Matrix localpart (@<localpart>:<server>), given
-- once and never recomputed, so a Matrix ID never changes, not even at a rename.  It is
-- the username in ASCII lower case when that uses only the localpart alphabet
-- (a-z 0-9 . _ = - / +) and no older account has it; otherwise the Matrix spec's escape
-- of the username ("Mapping from other character sets": A -> _a, _ -> __, any other
-- byte -> =xx), and if even that is taken, the escape with ".2", ".3"... appended.
-- core/names.c does the same for accounts created from now on.  SQLite cannot add a
-- NOT NULL column without a default, so here the column is nullable; qund gives any
-- row written without one (by tools writing SQL directly) its localpart at startup.
--
-- users.display_name: the name shown for the person, NULL when they have not set one
-- (clients show the username then).
ALTER TABLE users ADD COLUMN mx_localpart TEXT;
ALTER TABLE users ADD COLUMN display_name TEXT;

-- The lower-cased username, for the oldest account of each lower-cased form.
UPDATE users SET mx_localpart = lower(username)
 WHERE username NOT GLOB '*[^A-Za-z0-9._=/+-]*'
   AND NOT EXISTS (SELECT 1 FROM users o WHERE o.id < users.id AND lower(o.username) = lower(users.username));

-- The escape of every other username, one character at a time (hex() gives the
-- character's UTF-8 bytes).
CREATE TEMP TABLE mx_escaped AS
WITH RECURSIVE walk(id, rest, out) AS (
  SELECT id, username, '' FROM users WHERE mx_localpart IS NULL
  UNION ALL
  SELECT id, substr(rest, 2), out || CASE
      WHEN instr('abcdefghijklmnopqrstuvwxyz0123456789.-/+', substr(rest, 1, 1)) > 0 THEN substr(rest, 1, 1)
      WHEN instr('ABCDEFGHIJKLMNOPQRSTUVWXYZ', substr(rest, 1, 1)) > 0 THEN '_' || lower(substr(rest, 1, 1))
      WHEN substr(rest, 1, 1) = '_' THEN '__'
      ELSE '=' || lower(substr(hex(substr(rest, 1, 1)), 1, 2))
        || CASE WHEN length(hex(substr(rest, 1, 1))) > 2 THEN '=' || lower(substr(hex(substr(rest, 1, 1)), 3, 2)) ELSE '' END
        || CASE WHEN length(hex(substr(rest, 1, 1))) > 4 THEN '=' || lower(substr(hex(substr(rest, 1, 1)), 5, 2)) ELSE '' END
        || CASE WHEN length(hex(substr(rest, 1, 1))) > 6 THEN '=' || lower(substr(hex(substr(rest, 1, 1)), 7, 2)) ELSE '' END
    END
  FROM walk WHERE rest <> '')
SELECT id, out AS localpart FROM walk WHERE rest = '';

-- The escape where it is free (distinct usernames have distinct escapes, so these
-- can only meet a lower-cased name from above).
UPDATE users SET mx_localpart = (SELECT localpart FROM mx_escaped e WHERE e.id = users.id)
 WHERE mx_localpart IS NULL
   AND NOT EXISTS (SELECT 1 FROM users o WHERE o.mx_localpart = (SELECT localpart FROM mx_escaped e WHERE e.id = users.id));

-- Otherwise the escape with the lowest free ".N" (N from 2).
UPDATE users SET mx_localpart = (
  WITH RECURSIVE n(k) AS (SELECT 2 UNION ALL SELECT k + 1 FROM n WHERE k < 100000)
  SELECT e.localpart || '.' || n.k FROM mx_escaped e, n
   WHERE e.id = users.id AND NOT EXISTS (SELECT 1 FROM users o WHERE o.mx_localpart = e.localpart || '.' || n.k)
   ORDER BY n.k LIMIT 1)
 WHERE mx_localpart IS NULL;

DROP TABLE mx_escaped;
CREATE UNIQUE INDEX users_by_mx_localpart ON users(mx_localpart);
