// A long-lived (FastCGI) process serving PostgreSQL notices what the app does to its
// tables between requests: a column added or dropped changes the rows and the schema
// fingerprint at the next pull, and a trigger dropped by hand is installed again (with
// the rows written meanwhile logged), without a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLighttpd } from '../harness/rhtmx.mjs';
import { startPostgres, pgSkipReason } from '../harness/postgres.mjs';
import { backendApp } from '../harness/backends.mjs';

const skip = pgSkipReason() ?? false;
let pg;
before(async () => { if (!skip) pg = await startPostgres(); });
after(async () => { if (pg) await pg.stop(); });

async function pull(srv, since = 0) {
  const res = await fetch(`${srv.url}/api/sync/todos?since=${since}`);
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
}

test('the app alters its table, drops the trigger: the next request follows', { skip }, async () => {
  const app = await backendApp(pg, { postgres: "CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL); INSERT INTO todos (title) VALUES ('a');" });
  const srv = await startLighttpd(app);
  try {
    const first = await pull(srv);
    assert.deepEqual(first.changes.map((c) => c.data), [{ id: 1, title: 'a' }]);

    app.exec('ALTER TABLE todos ADD COLUMN done boolean NOT NULL DEFAULT false;');
    const added = await pull(srv);
    assert.notEqual(added.schema, first.schema, 'a new fingerprint: clients rebuild their store');
    assert.deepEqual(added.changes.map((c) => c.data), [{ id: 1, title: 'a', done: false }]);

    app.exec('ALTER TABLE todos DROP COLUMN title;');
    const dropped = await pull(srv);
    assert.deepEqual(dropped.changes.map((c) => c.data), [{ id: 1, done: false }]);

    app.exec('DROP TRIGGER _rhtmx_sync_todos ON todos; INSERT INTO todos (done) VALUES (true);');
    const v = dropped.version;
    const after = await pull(srv, v);
    assert.deepEqual(after.changes.map((c) => [c.id, c.action, c.data]), [[1, 'update', { id: 1, done: false }], [2, 'create', { id: 2, done: true }]]);
    app.exec('INSERT INTO todos (done) VALUES (false);');
    assert.deepEqual((await pull(srv, after.version)).changes.map((c) => c.id), [3], 'the trigger is back');
    assert.match(srv.errorLog(), /installed change-capture triggers on 1 table\(s\)/);
  } finally {
    await srv.stop();
  }
});
