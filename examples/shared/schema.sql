-- Shared lists: every list has members; a member sees the list and its todos, and nobody
-- else does. The rules are two "scope"s in rhtmx-sync.json (see serve.sh), which read
-- list_members; rhtmx-sync finds that table by itself and watches it, so removing a member
-- removes the list from that member's devices.
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS lists (
  id   INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100)
);
CREATE TABLE IF NOT EXISTS list_members (
  list_id INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
  user_id TEXT    NOT NULL,
  PRIMARY KEY (list_id, user_id)
) WITHOUT ROWID;
-- Who is in a list, by user: what both scopes look up.
CREATE INDEX IF NOT EXISTS list_members_user ON list_members (user_id, list_id);
CREATE TABLE IF NOT EXISTS todos (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  list_id INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
  title   TEXT    NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  done    INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1))
);
CREATE INDEX IF NOT EXISTS todos_list ON todos (list_id);
