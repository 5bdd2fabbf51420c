// Values pulled from PostgreSQL are written as those pulled from SQLite: the same rows on
// both backends give the same text. (The rest of sync-pull runs on both backends in
// cgi/pull.)
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
