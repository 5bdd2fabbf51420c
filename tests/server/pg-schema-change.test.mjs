// A long-lived (FastCGI) process serving PostgreSQL notices what changed between requests:
// a column added or dropped changes the rows and the schema fingerprint at the next pull,
// a trigger dropped by hand is installed again (with the rows written meanwhile logged),
// and a restarted database server is connected to again, all without a restart; while the
// database server is down, open streams keep their heartbeats and the log is not flooded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLighttpd, openEvents, stopPid, logShows } from '../harness/rhtmx.mjs';
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

test('the database server restarts under a FastCGI process: the next request connects again', { skip }, async () => {
  const app = await backendApp(pg, { postgres: "CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL); INSERT INTO todos (title) VALUES ('a');" });
  const srv = await startLighttpd(app);
  try {
    assert.equal((await pull(srv)).changes.length, 1);
    const stream = await openEvents(`${srv.url}/api/sync/events?since=1`);
    await stream.take((i) => i.comments.length > 0);
    await pg.restart();
    // The request's first query (the schema check) finds the connection broken; the
    // process connects again and answers.
    assert.deepEqual((await pull(srv)).changes.map((c) => c.data.title), ['a']);
    app.exec("INSERT INTO todos (title) VALUES ('b');");
    assert.deepEqual((await pull(srv)).changes.map((c) => c.data.title), ['a', 'b']);
    // The open stream's process listened again after the restart: the write reaches it.
    const ev = await stream.take((i) => i.event === 'message', 20_000);
    assert.equal(ev.data, '{"entity":"todos","action":"create","id":2,"version":2}');
    stream.close();
  } finally {
    await srv.stop();
  }
});

test('the database server is down under open streams: heartbeats go on, each error is logged once, and the stream resumes', { skip }, async () => {
  const app = await backendApp(pg, { postgres: 'CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL);', config: { events: { heartbeat: 1 } } });
  const srv = await startLighttpd(app);
  try {
    const stream = await openEvents(`${srv.url}/api/sync/events?since=0`);
    await stream.take((i) => i.comments.length > 0);
    await stopPid(pg.pid, { ms: 10_000, signal: 'SIGINT' });
    // Down: the stream's own timers still send keep-alives, several of them while the
    // process tries to connect again every second.
    for (let i = 0; i < 4; i++) await stream.take((x) => x.comments.includes('keep-alive'), 10_000);
    await pg.restart();
    app.exec("INSERT INTO todos (title) VALUES ('after the outage');");
    const ev = await stream.take((i) => i.event === 'message', 20_000);
    assert.equal(ev.data, '{"entity":"todos","action":"create","id":1,"version":1}');
    stream.close();
    // One line per distinct error for the whole outage, not one per attempt.
    const lines = srv.errorLog().split('\n').filter((l) => /events: .*cannot connect/.test(l));
    assert.ok(lines.length >= 1, srv.errorLog());
    assert.deepEqual(lines, [...new Set(lines)], srv.errorLog());
    await logShows(srv.errorLog, /sync-events: events: connected to PostgreSQL again at postgresql:/);
  } finally {
    await srv.stop();
  }
});
