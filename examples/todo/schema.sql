-- The example's one table. rhtmx-sync's triggers (installed by `rhtmx-sync init`) record
-- every write to it, whoever makes it: these PHP pages, sync-push, or sqlite3 at a shell.
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS todos (
  -- AUTOINCREMENT: a deleted todo's id is never given to a new one, so a browser that still
  -- holds the old id (an offline edit, say) can never change a different todo by mistake.
  id    INTEGER PRIMARY KEY AUTOINCREMENT,
  title TEXT    NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  done  INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1))
);
