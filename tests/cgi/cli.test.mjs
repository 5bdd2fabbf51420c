// rhtmx-sync, the operator's tool: init installs, status verifies and changes nothing. The
// cases with a database run on both backends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { bin, assertSanitizerClean, runCgi } from '../harness/rhtmx.mjs';
import { BACKENDS, backendsForFile } from '../harness/backends.mjs';

const on = backendsForFile();

function cli(...args) {
  const r = spawnSync(bin('rhtmx-sync'), args, { encoding: 'utf8', env: { ...process.env, RHTMX_SYNC_CONFIG: '' } });
  assertSanitizerClean(r.stderr, 'rhtmx-sync');
  return r;
}

for (const backend of BACKENDS) {
  const skip = on.skip(backend);
  /** The sync tables the database holds. */
  const syncTables = (app) => Number(app.exec(backend === 'sqlite'
    ? "SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_rhtmx%' ESCAPE '\\';"
    : "SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_rhtmx%';").trim());

  test(`status before init says what to do; init installs; status then reports counts (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { schema: `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT);
                                   INSERT INTO todos (title) VALUES ('a'), ('b');` });
    let r = cli('status', '--config', app.config);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /the sync tables are missing or old: run 'rhtmx-sync init'/);
    assert.equal(syncTables(app), 0, 'status must not change the database');

    r = cli('init', '--config', app.config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^head\s+2$/m);
    assert.match(r.stdout, /^todos\s+todos\s+2\s+2\s+ok$/m);
    if (backend === 'postgres') assert.match(r.stdout, /^database\s+postgresql:\/\/rhtmx@\/\S+ \(PostgreSQL\)$/m);

    app.exec("INSERT INTO todos (title) VALUES ('c');");
    r = cli('status', `--config=${app.config}`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^head\s+3$/m);
    assert.match(r.stdout, /^todos\s+todos\s+3\s+3\s+ok$/m);

    // A dropped trigger is reported, and init repairs it: what changed meanwhile reaches a
    // client that had pulled before (the delete the trigger missed included).
    const pull = (since) => runCgi('sync-pull', { config: app.config, path: '/todos', query: `since=${since}` }).json();
    const seen = new Map(pull(0).changes.map((c) => [c.id, c.data]));
    app.exec(backend === 'sqlite' ? 'DROP TRIGGER _rhtmx_sync_todos_delete;' : 'DROP TRIGGER _rhtmx_sync_todos ON todos;');
    app.exec("DELETE FROM todos WHERE id = 1; UPDATE todos SET title = 'changed' WHERE id = 2;");
    r = cli('status', '--config', app.config);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /missing or out of date/);
    assert.equal(cli('init', '--config', app.config).status, 0);
    assert.equal(cli('status', '--config', app.config).status, 0);
    for (const c of pull(3).changes) {
      if (c.action === 'delete') seen.delete(c.id);
      else seen.set(c.id, c.data);
    }
    assert.deepEqual([...seen.values()], app.rows('SELECT id, title FROM todos ORDER BY id'));
  });

  test(`status prints the same one line as the web programs for a config mistake (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    fs.writeFileSync(app.config, `{"database": ${JSON.stringify(app.cfg.database)}, "entities": ["todos"], "auth": {"mode": "none"}, "typo": true}`);
    const r = cli('status', '--config', app.config);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /rhtmx-sync\.json: unknown key 'typo' in the top level/);
    const init = cli('init', '--config', app.config);
    assert.equal(init.status, 1);
    assert.match(init.stderr, /unknown key 'typo'/);
  });
}

test('bad usage exits 2 with help', () => {
  const r = cli('frobnicate');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: rhtmx-sync/);
  assert.equal(cli().status, 2);
});
