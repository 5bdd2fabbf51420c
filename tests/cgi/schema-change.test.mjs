// The app changes its schema with the product installed: its own ALTER TABLE
// statements run as written, the programs notice on their next request, the
// log stays consistent with the table, and queued writes meet the new shape
// visibly (docs/DEPLOY.md "Changing your schema"). Every case runs on both backends but
// the migration held open between its DDL and its COMMIT, which is about SQLite's write lock.
import { test } from 'node:test';
import fs from 'node:fs';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { runCgi, cgiCommand, bin } from '../harness/rhtmx.mjs';
import { BACKENDS, backendsForFile } from '../harness/backends.mjs';

const on = backendsForFile();

const SCHEMA = `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, priority INTEGER);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
INSERT INTO todos (title, priority) SELECT 'row ' || i, i % 3 FROM n;`;

const pull = (app, since, limit = 1000) =>
  runCgi('sync-pull', { config: app.config, path: '/todos', query: `since=${since}&limit=${limit}` }).json();
const push = (app, body) => runCgi('sync-push', {
  config: app.config, method: 'POST', path: '/todos', body: JSON.stringify(body),
  headers: { 'Content-Type': 'application/json' },
});

/* Apply pulls from since onto a copy of rows (a client's store), to the end. */
function syncFrom(app, since, rows = new Map()) {
  let last;
  for (;;) {
    const r = pull(app, since, 17);
    for (const c of r.changes) {
      if (c.action === 'delete') rows.delete(c.id);
      else rows.set(c.id, c.data);
    }
    since = r.version;
    last = r;
    if (!r.has_more) break;
  }
  return { rows, version: since, schema: last.schema };
}
/* What a page does (docs/CLIENT.md, "Changing your schema"): pull on from its cursor; when
 * an answer carries another fingerprint, pull the entity again from 0 and replace its rows.
 * SQLite's triggers, remade for the new columns, log every row again; PostgreSQL's name no
 * column and stay, so there only the fingerprint says that the rows changed shape. */
function clientSync(app, prev) {
  const next = syncFrom(app, prev.version, new Map(prev.rows));
  return next.schema === prev.schema ? next : { ...syncFrom(app, 0), resynced: true };
}
const table = (app) => new Map(app.rows('SELECT * FROM todos ORDER BY id').map((r) => [r.id, r]));
const sorted = (m) => [...m.entries()].sort((a, b) => a[0] - b[0]);

for (const backend of BACKENDS) {
  const skip = on.skip(backend);

  test(`DROP COLUMN runs with the triggers installed; pulls drop the column and change the fingerprint (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { schema: SCHEMA });
    const before = syncFrom(app, 0);
    assert.equal(before.rows.get(1).priority, 1);
    // Fails on the triggers that named every column: "no such column: NEW.priority".
    app.exec('ALTER TABLE todos DROP COLUMN priority;');
    const after = clientSync(app, before);
    assert.notEqual(after.schema, before.schema);
    assert.deepEqual(sorted(after.rows), sorted(table(app)));
    assert.equal('priority' in after.rows.get(1), false);
    // SQLite's log alone carries every row in the new shape.
    if (backend === 'sqlite') assert.deepEqual(sorted(syncFrom(app, before.version, new Map(before.rows)).rows), sorted(table(app)));
    assert.deepEqual(sorted(syncFrom(app, 0).rows), sorted(table(app)));
    // The app keeps writing; the triggers still capture it.
    app.exec("UPDATE todos SET title = 'after drop' WHERE id = 2;");
    assert.equal(syncFrom(app, after.version, after.rows).rows.get(2).title, 'after drop');
  });

  // The stream's lifetime is an hour: only the schema change can end it. (The timeout only
  // keeps a stream that never ends from holding the suite: it was the lifetime, 240 s, that
  // ended PostgreSQL's before its feeder compared the tables' shape.)
  test(`event answers open with the fingerprints, and a stream ends when the schema changes (${backend})`, { skip, timeout: 120_000 }, async (t) => {
    const app = await on.app(backend, { schema: SCHEMA, config: { events: { poll_wait: 0, lifetime: 3600 } } });
    const fingerprints = () => {
      const r = runCgi('sync-events', { config: app.config, query: 'entities=todos&mode=poll' });
      const m = r.text().match(/\nevent: schema\ndata: (\{.*\})\n\n/);
      assert.ok(m, r.text());
      return JSON.parse(m[1]);
    };
    const before = fingerprints();
    assert.deepEqual(before, { todos: pull(app, 0).schema });
    // A stream open while the app adds a column: no row is written, the stream ends with bye.
    const argv = cgiCommand('sync-events');
    const head = Number(app.exec("SELECT value FROM _rhtmx_sync_state WHERE key = 'head';").trim());
    const stream = spawn(argv[0], argv.slice(1), { env: { PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? '',
      GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'GET', QUERY_STRING: `entities=todos&mode=stream&since=${head}`,
      RHTMX_SYNC_CONFIG: app.config } });
    t.signal.addEventListener('abort', () => stream.kill('SIGKILL')); // a timed-out test leaves no stream
    let out = '';
    stream.stdout.on('data', (d) => { out += d; });
    const ended = new Promise((resolve) => stream.on('close', resolve));
    while (!out.includes('event: schema')) await new Promise((r) => setTimeout(r, 20));
    app.exec('ALTER TABLE todos ADD COLUMN note TEXT;');
    assert.equal(await ended, 0);
    assert.match(out, new RegExp(`event: bye\nid: ${head}\ndata: \\{"version":${head}\\}\n\n$`), out);
    // The next answer says the new shape.
    const after = fingerprints();
    assert.notEqual(after.todos, before.todos);
    assert.deepEqual(after, { todos: pull(app, 0).schema });
  });

  test(`RENAME COLUMN and an added column: the next pull shows the new shape (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { schema: SCHEMA });
    const before = syncFrom(app, 0);
    app.exec('ALTER TABLE todos RENAME COLUMN priority TO rank; ALTER TABLE todos ADD COLUMN note TEXT;');
    // A write to the new column alone is logged (the old triggers compared columns).
    runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=0&limit=1' });
    app.exec("UPDATE todos SET note = 'n' WHERE id = 3;");
    const after = clientSync(app, before);
    assert.notEqual(after.schema, before.schema);
    assert.equal(after.rows.get(3).note, 'n');
    assert.equal(after.rows.get(1).rank, 1);
    assert.equal('priority' in after.rows.get(1), false);
    assert.deepEqual(sorted(after.rows), sorted(table(app)));
  });

  test(`a table rebuilt under its name (the 12-step ALTER) with writes before any request: the log catches up (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { schema: SCHEMA });
    const before = syncFrom(app, 0);
    app.exec(`BEGIN;
      CREATE TABLE todos_new (id ${backend === 'sqlite' ? 'INTEGER' : 'serial'} PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, due TEXT);
      INSERT INTO todos_new (id, title, done) SELECT id, title, done FROM todos WHERE id <> 7;
      ${backend === 'sqlite' ? '' : "SELECT setval(pg_get_serial_sequence('todos_new', 'id'), 50);"}
      DROP TABLE todos;
      ALTER TABLE todos_new RENAME TO todos;
      COMMIT;
      INSERT INTO todos (title, due) VALUES ('written while the triggers were gone', '2026-12-31');
      UPDATE todos SET title = 'changed unseen' WHERE id = 5;`);
    const after = syncFrom(app, before.version, new Map(before.rows));
    assert.deepEqual(sorted(after.rows), sorted(table(app)));
    assert.equal(after.rows.has(7), false);
    assert.equal(after.rows.get(5).title, 'changed unseen');
    assert.deepEqual(sorted(syncFrom(app, 0).rows), sorted(table(app)));
    // The triggers are back.
    app.exec('DELETE FROM todos WHERE id = 8;');
    assert.equal(syncFrom(app, after.version, after.rows).rows.has(8), false);
    // status shows the entity's schema as the programs see it, and its fingerprint.
    const st = spawnSync(bin('rhtmx-sync'), ['status', '--config', app.config], { encoding: 'utf8' });
    assert.equal(st.status, 0, st.stderr);
    const types = backend === 'sqlite' ? 'id INTEGER title TEXT done INTEGER due TEXT' : 'id integer title text done integer due text';
    assert.match(st.stdout, new RegExp(`schema ${after.schema}: key id; ${types}`));
  });

  test(`a queued write naming a dropped column is rejected as schema_changed and changes nothing (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { schema: SCHEMA });
    const before = syncFrom(app, 0);
    pull(app, 0); // the programs saw the old shape
    app.exec('ALTER TABLE todos DROP COLUMN priority;');
    const r = push(app, { client_id: 'c1', changes: [
      { mutation_id: 'm1', action: 'update', id: 4, data: { title: 'renamed', priority: 9 }, client_version: before.version },
      { mutation_id: 'm2', action: 'update', id: 4, data: { colour: 'red' }, client_version: before.version },
      { mutation_id: 'm3', action: 'update', id: 5, data: { title: 'kept' }, client_version: before.version },
    ] });
    assert.equal(r.status, 200, r.body?.toString());
    const a = r.json();
    assert.deepEqual(a.rejected.map((x) => [x.mutation_id, x.code]), [['m1', 'schema_changed'], ['m2', 'unknown_column']]);
    // m3 names columns that still exist: applied, and no conflict with the rows
    // the programs logged again after the change (they changed nothing m3 saw).
    assert.deepEqual(a.applied, [5]);
    assert.equal((a.conflicts ?? []).length, 0, JSON.stringify(a));
    assert.equal(table(app).get(5).title, 'kept');
    assert.equal(table(app).get(4).title, 'row 4');
  });

  test(`an UPDATE that writes the values already there logs a change but makes no conflict (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { schema: SCHEMA });
    const seen = syncFrom(app, 0);
    app.exec('UPDATE todos SET done = done WHERE id = 6;');
    const r = push(app, { client_id: 'c2', changes: [
      { mutation_id: 'n1', action: 'update', id: 6, data: { title: 'mine' }, client_version: seen.version },
    ] }).json();
    assert.deepEqual(r.applied, [6]);
    assert.equal((r.conflicts ?? []).length, 0, JSON.stringify(r));
    // A real change after the client's version still conflicts.
    app.exec("UPDATE todos SET title = 'theirs' WHERE id = 9;");
    const c = push(app, { client_id: 'c2', changes: [
      { mutation_id: 'n2', action: 'update', id: 9, data: { title: 'mine too' }, client_version: seen.version },
    ] }).json();
    assert.equal(c.conflicts.length, 1, JSON.stringify(c));
  });

  test(`the key column changed (config and table): the log moves the rows to their new keys (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { schema: `${SCHEMA}
      ALTER TABLE todos ADD COLUMN uid TEXT; UPDATE todos SET uid = 'u' || id; CREATE UNIQUE INDEX todos_uid ON todos (uid);` });
    const before = syncFrom(app, 0);
    assert.equal(before.rows.size, 50);
    fs.writeFileSync(app.config, JSON.stringify({ ...app.cfg, entities: [{ name: 'todos', key: 'uid' }] }));
    const after = syncFrom(app, before.version, new Map(before.rows));
    const byUid = new Map([...table(app).values()].map((r) => [r.uid, r]));
    const sortedS = (m) => [...m.entries()].sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    assert.notEqual(after.schema, before.schema);
    assert.deepEqual(sortedS(after.rows), sortedS(byUid), 'old keys deleted, every row created under its new key');
    assert.deepEqual(sortedS(syncFrom(app, 0).rows), sortedS(byUid));
  });
}

// The migration is held open in the middle (a sqlite3 shell waiting on a file between its
// DDL and COMMIT), so pulls are certain to run while it is under way, then while it commits
// and the first of them rebuilds the triggers and reconciles the log, then after it.
test('pulls running while the app migrates (before, during and across the COMMIT) all answer, and end equal to the table (sqlite)', async () => {
  const app = await on.app('sqlite', { schema: SCHEMA });
  const before = syncFrom(app, 0);
  const argv = cgiCommand('sync-pull');
  const env = { PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? '', GATEWAY_INTERFACE: 'CGI/1.1',
    REQUEST_METHOD: 'GET', PATH_INFO: '/todos', QUERY_STRING: `since=${before.version}`, RHTMX_SYNC_CONFIG: app.config };
  const one = () => new Promise((resolve) => {
    const p = spawn(argv[0], argv.slice(1), { env });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('close', (code) => resolve({ code, out }));
  });
  const started = `${app.db}.started`;
  const go = `${app.db}.go`;
  const migration = spawn('sqlite3', ['-batch', app.db], { stdio: ['pipe', 'ignore', 'pipe'] });
  let migrationErr = '';
  migration.stderr.on('data', (d) => { migrationErr += d; });
  const migrated = new Promise((resolve) => migration.on('close', resolve));
  migration.stdin.end(`.timeout 10000
    BEGIN;
    CREATE TABLE todos_new (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
    INSERT INTO todos_new SELECT id, title, done FROM todos WHERE id <> 13;
    DROP TABLE todos;
    ALTER TABLE todos_new RENAME TO todos;

.shell touch '${started}'; while [ ! -e '${go}' ]; do sleep 0.02; done
    COMMIT;
    ALTER TABLE todos ADD COLUMN tag TEXT;
    UPDATE todos SET tag = 'x' WHERE id <= 10;
`);
  // (Ends early if the shell failed before reaching its wait: nothing would create the file.)
  let exited = false;
  migrated.then(() => { exited = true; });
  while (!fs.existsSync(started) && !exited) await new Promise((r) => setTimeout(r, 20));
  assert.ok(fs.existsSync(started), `the migration stopped before its COMMIT: ${migrationErr}`);
  // The migration holds the write lock, its DDL not committed: pulls answer from the old shape.
  const during = await Promise.all(Array.from({ length: 6 }, one));
  for (const r of during) {
    assert.equal(r.code, 0);
    assert.match(r.out, /^Status: 200|\r\n\r\n\{/m, r.out.slice(0, 300));
    assert.equal(JSON.parse(r.out.slice(r.out.indexOf('{'))).schema, before.schema, 'the old shape, until the COMMIT');
  }
  const running = Array.from({ length: 8 }, one);
  fs.writeFileSync(go, '');
  running.push(...Array.from({ length: 8 }, one));
  assert.equal(await migrated, 0, migrationErr);
  running.push(...Array.from({ length: 4 }, one));
  for (const r of await Promise.all(running)) {
    assert.equal(r.code, 0);
    assert.match(r.out, /^Status: 200|\r\n\r\n\{/m, r.out.slice(0, 300));
  }
  const after = syncFrom(app, before.version, new Map(before.rows));
  assert.notEqual(after.schema, before.schema);
  assert.equal(after.rows.has(13), false, 'the row left out of the copy is deleted for the clients');
  assert.equal(after.rows.get(4).tag, 'x');
  assert.deepEqual(sorted(after.rows), sorted(table(app)));
  assert.deepEqual(sorted(syncFrom(app, 0).rows), sorted(table(app)));
});
