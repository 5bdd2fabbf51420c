// What a table must be to sync, checked against the database when the
// configuration is loaded: a key that names one row, WITHOUT ROWID tables,
// generated columns. Run as plain CGI and through the operator's tool. Every case runs on
// both backends but WITHOUT ROWID, a kind of table SQLite's alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { makeApp, runCgi, sql, bin, assertSanitizerClean } from '../harness/rhtmx.mjs';
import { BACKENDS, backendsForFile } from '../harness/backends.mjs';

const on = backendsForFile();

const cli = (...args) => {
  const r = spawnSync(bin('rhtmx-sync'), args, { encoding: 'utf8', env: { ...process.env, RHTMX_SYNC_CONFIG: '' } });
  assertSanitizerClean(r.stderr, 'rhtmx-sync');
  return r;
};
const push = (app, changes, entity = 'todos') => runCgi('sync-push', {
  config: app.config, method: 'POST', path: `/${entity}`,
  body: JSON.stringify({ client_id: 'c-keys', changes }),
  headers: { 'Content-Type': 'application/json' },
});
const pull = (app, since = 0, entity = 'todos') =>
  runCgi('sync-pull', { config: app.config, path: `/${entity}`, query: `since=${since}` });
const change = (mutation_id, action, id, data, client_version = 0) => (
  { mutation_id, action, ...(id === undefined ? {} : { id }), ...(data ? { data } : {}), client_version });

// Tables whose key column does not name one row; each must be refused.
const NOT_UNIQUE = [
  ['no index at all', 'CREATE TABLE todos (id INTEGER, title TEXT);'],
  ['part of a composite primary key', 'CREATE TABLE todos (id INTEGER, list INTEGER, title TEXT, PRIMARY KEY (id, list));'],
  ['part of a composite UNIQUE constraint', 'CREATE TABLE todos (id INTEGER, list INTEGER, title TEXT, UNIQUE (list, id));'],
  ['a partial unique index', 'CREATE TABLE todos (id INTEGER, title TEXT); CREATE UNIQUE INDEX u ON todos (id) WHERE id > 1;'],
  ['a unique index of two columns', 'CREATE TABLE todos (id INTEGER, title TEXT); CREATE UNIQUE INDEX u ON todos (id, title);'],
  ['a unique index on an expression', 'CREATE TABLE todos (id INTEGER, title TEXT); CREATE UNIQUE INDEX u ON todos ((id || title));'],
  ['a plain (not unique) index', 'CREATE TABLE todos (id INTEGER, title TEXT); CREATE INDEX i ON todos (id);'],
];

/** Two rows with key 1 (a list column, where there is one, tells them apart). */
const twoOnes = (schema) => (/\blist\b/.test(schema)
  ? "INSERT INTO todos (id, list, title) VALUES (1, 1, 'a'), (1, 2, 'b');"
  : "INSERT INTO todos (id, title) VALUES (1, 'a'), (1, 'b');");

for (const [backend, [what, schema]] of BACKENDS.flatMap((b) => NOT_UNIQUE.map((c) => [b, c]))) {
  // Two rows with key 1: a pull would show one of them, a pushed delete of 1 would remove both.
  test(`a key column that is not unique (${what}) is a configuration error everywhere (${backend})`, { skip: on.skip(backend) }, async () => {
    const app = await on.app(backend, { schema: `${schema} ${twoOnes(schema)}` });
    const line = /rhtmx-sync\.json: entity 'todos': key column 'id' of table 'todos' is not unique/;
    for (const cmd of ['init', 'status']) {
      const r = cli(cmd, '--config', app.config);
      assert.equal(r.status, 1, `${cmd}: ${r.stdout}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, line);
    }
    for (const r of [pull(app), push(app, [change('m1', 'delete', 1)])]) {
      assert.equal(r.status, 500);
      assert.equal(r.json().error.code, 'config');
      assert.match(r.stderr, line);
    }
    // Nothing was installed and nothing was deleted.
    assert.equal(app.exec(backend === 'sqlite' ? "SELECT count(*) FROM sqlite_master WHERE type = 'trigger';"
      : 'SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal;').trim(), '0');
    assert.equal(app.exec('SELECT count(*) FROM todos;').trim(), '2');
  });
}

const UNIQUE = [
  ['INTEGER PRIMARY KEY', 'CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT);'],
  ['TEXT PRIMARY KEY', 'CREATE TABLE todos (id TEXT PRIMARY KEY, title TEXT);'],
  ['a UNIQUE column', 'CREATE TABLE todos (rowno INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, title TEXT);'],
  ['a UNIQUE index of its own', 'CREATE TABLE todos (id TEXT, list INTEGER, title TEXT, PRIMARY KEY (id, list)); CREATE UNIQUE INDEX u ON todos (id);'],
];

for (const [backend, [what, schema]] of BACKENDS.flatMap((b) => UNIQUE.map((c) => [b, c]))) {
  test(`a key that is unique (${what}) is accepted (${backend})`, { skip: on.skip(backend) }, async () => {
    const key = /id INTEGER PRIMARY KEY/.test(schema) ? '1' : "'k1'";
    const list = /\blist\b/.test(schema);
    const app = await on.app(backend, { schema: `${schema} INSERT INTO todos (id, title${list ? ', list' : ''}) VALUES (${key}, 'a'${list ? ', 1' : ''});` });
    const r = cli('init', '--config', app.config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^todos\s+todos\s+1\s+1\s+ok$/m);
    const p = pull(app);
    assert.equal(p.status, 200, p.text());
    assert.equal(p.json().changes.length, 1);
  });
}

for (const backend of BACKENDS) {
  test(`a UNIQUE key column without NOT NULL: a row with a NULL key is refused by the change log (${backend})`, { skip: on.skip(backend) }, async () => {
    const app = await on.app(backend, { schema: 'CREATE TABLE todos (rowno INTEGER PRIMARY KEY, id TEXT UNIQUE, title TEXT);' });
    assert.equal(cli('init', '--config', app.config).status, 0);
    const r = spawnSync(app.shell.argv[0], app.shell.argv.slice(1), { input: "INSERT INTO todos (id, title) VALUES (NULL, 'x');", encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, backend === 'sqlite' ? /NOT NULL constraint failed: _rhtmx_sync_log\.entity_id/
      : /rhtmx-sync: entity todos: a row without a key cannot be synced/);
    assert.equal(app.exec('SELECT count(*) FROM todos;').trim(), '0');
  });
}

// WITHOUT ROWID is a kind of table SQLite's alone.
test('WITHOUT ROWID: a create answers the key it stored, and temporary ids get the next integer key', () => {
  const app = makeApp({ schema: `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT) WITHOUT ROWID;
                                 INSERT INTO todos VALUES (41, 'old');` });
  let r = push(app, [
    change('m1', 'create', 7, { title: 'seven' }),
    change('m2', 'create', 'tmp-a', { title: 'tmp a' }),
    change('m3', 'update', 'tmp-a', { title: 'tmp a, edited' }),
    change('m4', 'create', undefined, { title: 'no id' }),
  ]);
  assert.equal(r.status, 200, r.text());
  const a = r.json();
  assert.deepEqual(a.applied, [7, 42, 42, 43]);
  assert.deepEqual(a.ids, { 'tmp-a': 42 });
  assert.deepEqual(a.rejected, []);
  assert.deepEqual(sql(app.db, 'SELECT id, title FROM todos ORDER BY id;', { json: true }), [
    { id: 7, title: 'seven' }, { id: 41, title: 'old' }, { id: 42, title: 'tmp a, edited' }, { id: 43, title: 'no id' }]);
  // A later batch still finds the temporary id.
  r = push(app, [change('m5', 'delete', 'tmp-a')]);
  assert.deepEqual(r.json().applied, [42]);
  const p = pull(app).json();
  assert.deepEqual(p.changes.map((c) => c.id).sort((x, y) => x - y), [7, 41, 43]);
  // A TEXT key of a WITHOUT ROWID table is the client's to give.
  const t = makeApp({ schema: 'CREATE TABLE todos (id TEXT PRIMARY KEY, title TEXT) WITHOUT ROWID;' });
  r = push(t, [change('m1', 'create', 'k-1', { title: 'x' }), change('m2', 'create', undefined, { title: 'y' })]);
  assert.deepEqual(r.json().applied, ['k-1']);
  assert.match(r.json().rejected[0].reason, /a create needs an id/);
});

for (const backend of BACKENDS) test(`generated columns sync in pulls; a push that writes one is rejected and changes nothing (${backend})`, { skip: on.skip(backend) }, async () => {
  // PostgreSQL has STORED generated columns only.
  const app = await on.app(backend, { schema: `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT, qty INTEGER,
                                   upper_title TEXT GENERATED ALWAYS AS (upper(title)) ${backend === 'sqlite' ? 'VIRTUAL' : 'STORED'},
                                   double_qty INTEGER GENERATED ALWAYS AS (qty * 2) STORED);
                                 INSERT INTO todos (title, qty) VALUES ('milk', 2);` });
  assert.equal(cli('init', '--config', app.config).status, 0);
  let p = pull(app).json();
  assert.deepEqual(p.changes[0].data, { id: 1, title: 'milk', qty: 2, upper_title: 'MILK', double_qty: 4 });

  let r = push(app, [change('m1', 'update', 1, { qty: 5 }, p.version)]);
  assert.deepEqual(r.json().applied, [1]);
  p = pull(app, p.version).json();
  assert.deepEqual(p.changes[0].data, { id: 1, title: 'milk', qty: 5, upper_title: 'MILK', double_qty: 10 });

  r = push(app, [change('m2', 'update', 1, { title: 'eggs', upper_title: 'X' }, p.version),
                 change('m3', 'create', 'tmp-1', { title: 'bread', double_qty: 1 })]);
  assert.equal(r.status, 200);
  const a = r.json();
  assert.deepEqual(a.applied, []);
  assert.deepEqual(a.rejected.map((x) => [x.mutation_id, x.code]), [['m2', 'bad_change'], ['m3', 'bad_change']]);
  assert.match(a.rejected[0].reason, /column 'upper_title' of todos is generated by the database: a push cannot write it/);
  assert.deepEqual(app.rows('SELECT id, title FROM todos'), [{ id: 1, title: 'milk' }]);
});

for (const backend of BACKENDS) test(`a generated key or owner column is a configuration error (${backend})`, { skip: on.skip(backend) }, async () => {
  const app = await on.app(backend, { schema: `CREATE TABLE todos (n INTEGER PRIMARY KEY, title TEXT,
                                   id TEXT GENERATED ALWAYS AS ('t' || n) STORED);
                                 CREATE UNIQUE INDEX u ON todos (id);` });
  const r = cli('init', '--config', app.config);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /entity 'todos': key column 'id' of table 'todos' is a generated column/);
});
