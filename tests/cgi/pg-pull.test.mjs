// sync-pull against PostgreSQL gives the answers it gives against SQLite: the same
// steps run on both backends (the app writing with its own SQL, as with the sqlite3
// shell or psql), and the answers must be equal, schema fingerprint aside (it is made
// from the declared column types, which differ between the two).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runCgi } from '../harness/rhtmx.mjs';
import { startPostgres, pgSkipReason } from '../harness/postgres.mjs';
import { backendApp } from '../harness/backends.mjs';

const skip = pgSkipReason() ?? false;
let pg;
before(async () => { if (!skip) pg = await startPostgres(); });
after(async () => { if (pg) await pg.stop(); });

const TODOS = {
  sqlite: 'CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);',
  postgres: 'CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL, done integer NOT NULL DEFAULT 0);',
};

const pull = (app, query = '', opts = {}) => runCgi('sync-pull', { config: app.config, path: '/todos', query, ...opts });
/** An answer without its schema fingerprint (checked for shape). */
function body(r) {
  const b = r.json();
  if ('schema' in b) {
    assert.match(b.schema, /^[0-9a-f]{16}$/);
    delete b.schema;
  }
  return { status: r.status, body: b };
}

/** Run steps(app) on both backends; both must give the same list of answers. Returns it. */
async function same(schemas, steps, config = {}) {
  const answers = {};
  for (const backend of ['sqlite', pg]) {
    const app = await backendApp(backend, { ...schemas, config });
    answers[app.backend] = steps(app);
  }
  assert.deepEqual(answers.postgres, answers.sqlite);
  return answers.sqlite;
}

test('a row written by the app shows up in the next pull, as with SQLite', { skip }, async () => {
  const got = await same(TODOS, (app) => {
    const first = body(pull(app, 'since=0')); // installs the triggers
    app.exec("INSERT INTO todos (title) VALUES ('from the shell');");
    return [first, body(pull(app, `since=${first.body.version}`))];
  });
  assert.deepEqual(got, [
    { status: 200, body: { entity: 'todos', changes: [], has_more: false, version: 0 } },
    { status: 200, body: { entity: 'todos', has_more: false, version: 1,
      changes: [{ id: 1, action: 'create', version: 1, data: { id: 1, title: 'from the shell', done: 0 } }] } },
  ]);
});

test('rows that existed before the triggers sync completely at since=0, in pages', { skip }, async () => {
  const seed = {
    sqlite: `${TODOS.sqlite} WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1234)
             INSERT INTO todos (title) SELECT 'row ' || i FROM n;`,
    postgres: `${TODOS.postgres} INSERT INTO todos (title) SELECT 'row ' || i FROM generate_series(1, 1234) AS i;`,
  };
  const got = await same(seed, (app) => {
    const pages = [];
    let since = 0;
    for (;;) {
      const r = body(pull(app, `since=${since}&limit=500`));
      pages.push(r);
      since = r.body.version;
      if (!r.body.has_more) break;
    }
    return pages;
  });
  assert.deepEqual(got.map((p) => [p.body.changes.length, p.body.has_more, p.body.version]),
    [[500, true, 500], [500, true, 1000], [234, false, 1234]]);
  assert.deepEqual(got[2].body.changes.at(-1), { id: 1234, action: 'create', version: 1234, data: { id: 1234, title: 'row 1234', done: 0 } });
});

test('updates and deletes reach incremental pulls; a full sync has live rows only', { skip }, async () => {
  const got = await same(TODOS, (app) => {
    pull(app, 'since=0'); // installs the triggers
    app.exec("INSERT INTO todos (title) VALUES ('a'), ('b'), ('c');");
    const v = pull(app, 'since=0').json().version;
    app.exec("UPDATE todos SET done = 1 WHERE id = 2; DELETE FROM todos WHERE id = 1; UPDATE todos SET title = 'c2' WHERE id = 3; UPDATE todos SET title = 'c3' WHERE id = 3;");
    return [body(pull(app, `since=${v}`)), body(pull(app, 'since=0'))];
  });
  assert.deepEqual(got[0].body.changes, [
    { id: 2, action: 'update', version: 4, data: { id: 2, title: 'b', done: 1 } },
    { id: 1, action: 'delete', version: 5 },
    { id: 3, action: 'update', version: 7, data: { id: 3, title: 'c3', done: 0 } },
  ]);
  assert.deepEqual(got[1].body.changes.map((c) => [c.id, c.action]), [[2, 'create'], [3, 'create']]);
});

test('a changed key is a delete of the old key and a create of the new one', { skip }, async () => {
  const got = await same(TODOS, (app) => {
    pull(app, 'since=0'); // installs the triggers
    app.exec("INSERT INTO todos (title) VALUES ('a');");
    app.exec('UPDATE todos SET id = 10 WHERE id = 1;');
    return [body(pull(app, 'since=1'))];
  });
  assert.deepEqual(got[0].body.changes, [
    { id: 1, action: 'delete', version: 2 },
    { id: 10, action: 'create', version: 3, data: { id: 10, title: 'a', done: 0 } },
  ]);
});

test('values keep their JSON types: integers, reals, text, NULL, bytes as hex', { skip }, async () => {
  const schemas = {
    sqlite: `CREATE TABLE todos (id TEXT PRIMARY KEY, n INTEGER, r REAL, t TEXT, b BLOB, z TEXT);
             INSERT INTO todos VALUES ('k1', -42, 2.0, 'é "q"', x'0aff', NULL), ('k2', 9007199254740993, -1.25, '', x'', NULL);`,
    postgres: `CREATE TABLE todos (id text PRIMARY KEY, n bigint, r double precision, t text, b bytea, z text);
               INSERT INTO todos VALUES ('k1', -42, 2.0, 'é "q"', '\\x0aff', NULL), ('k2', 9007199254740993, -1.25, '', '\\x', NULL);`,
  };
  const got = await same(schemas, (app) => [pull(app, 'since=0').text().replace(/"schema":"[0-9a-f]+",/, '')]);
  assert.match(got[0], /"data":\{"id":"k1","n":-42,"r":2\.0,"t":"é \\"q\\"","b":"0AFF","z":null\}/);
  // Reals exactly representable in binary: SQLite's own printf writes others differently
  // under valgrind (its long double is emulated there; tests/cgi/values says more).
  assert.match(got[0], /"n":9007199254740993,"r":-1\.25,"t":"","b":"","z":null/);
});

test('errors have the same status and shape on both backends', { skip }, async () => {
  const cases = [
    [{ path: '/nope' }, 404],
    [{ query: 'since=abc' }, 400],
    [{ query: 'limit=1001' }, 400],
    [{ query: 'since=5' }, 410], // newer than the head: the database was replaced
    [{ method: 'DELETE' }, 405],
  ];
  await same(TODOS, (app) => cases.map(([opts, status]) => {
    const r = pull(app, opts.query ?? '', opts);
    assert.equal(r.status, status, JSON.stringify(opts));
    const b = r.json();
    assert.deepEqual(Object.keys(b), ['error']);
    return [r.status, b.error.code, b.error.version ?? null];
  }));
});
