-- SPDX-License-Identifier: MIT
-- Names people see and names Matrix clients address (issue 14, docs/api.md "Names").
--
-- users.mx_localpart: the account's Matrix localpart (@<localpart>:<server>), given
-- once and never recomputed, so a Matrix ID never changes, not even at a rename.  It is
-- the username in ASCII lower case when that uses only the localpart alphabet
-- (a-z 0-9 . _ = - / +) and no older account has it; otherwise the Matrix spec's escape
-- of the username ("Mapping from other character sets": A -> _a, _ -> __, any other
-- byte -> =xx), and if even that is taken, the escape with ".2", ".3"... appended.
-- core/names.c does the same for accounts created from now on.
--
-- users.display_name: the name shown for the person, NULL when they have not set one
-- (clients show the username then).
ALTER TABLE users ADD COLUMN mx_localpart TEXT;
ALTER TABLE users ADD COLUMN display_name TEXT;

-- The lower-cased username (translate(), not lower(): ASCII only, whatever the
-- database's locale), for the oldest account of each lower-cased form.
UPDATE users SET mx_localpart = translate(username, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
 WHERE username ~ '^[A-Za-z0-9._=/+-]+$'
   AND NOT EXISTS (SELECT 1 FROM users o WHERE o.id < users.id AND
       translate(o.username, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') =
       translate(users.username, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'));

-- Every other account, oldest first: the escape, or the escape with the lowest free
-- ".N" (N from 2).
DO $$
DECLARE
  r RECORD;
  esc TEXT;
  k INT;
BEGIN
  FOR r IN SELECT id, username FROM users WHERE mx_localpart IS NULL ORDER BY id LOOP
    SELECT string_agg(CASE
        WHEN c ~ '^[a-z0-9./+-]$' THEN c
        WHEN c ~ '^[A-Z]$' THEN '_' || translate(c, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
        WHEN c = '_' THEN '__'
        ELSE regexp_replace(encode(convert_to(c, 'UTF8'), 'hex'), '(..)', '=\1', 'g')
      END, '' ORDER BY i) INTO esc
      FROM regexp_split_to_table(r.username, '') WITH ORDINALITY AS t(c, i);
    k := 1;
    WHILE EXISTS (SELECT 1 FROM users WHERE mx_localpart = CASE WHEN k = 1 THEN esc ELSE esc || '.' || k END) LOOP
      k := k + 1;
    END LOOP;
    UPDATE users SET mx_localpart = CASE WHEN k = 1 THEN esc ELSE esc || '.' || k END WHERE id = r.id;
  END LOOP;
END $$;

-- Nullable, as on SQLite: an account written without one (by an older qund sharing the
-- database, or restored from an old dump) gets its localpart when qund next starts
-- (qun_mx_localpart_backfill), on both stores alike.
CREATE UNIQUE INDEX users_by_mx_localpart ON users(mx_localpart);
