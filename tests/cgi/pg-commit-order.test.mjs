// Versions in commit order on PostgreSQL (docs/ARCHITECTURE.md, "PostgreSQL: versions in commit order"):
// a long transaction and short ones interleave, a client pulls in between, and it still
// receives every change exactly once. Each step waits for a state PostgreSQL reports
// (pg_stat_activity: idle in transaction, waiting for a lock), never for a time.
//
// With versions from a sequence this fails: the long transaction takes version 1, the
// short ones 2 and 3 and commit; the pull in between answers them with version 3 as the
// cursor; version 1 commits afterwards, below the cursor, and is never sent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runCgi } from '../harness/rhtmx.mjs';
import { startPostgres, pgSkipReason, until } from '../harness/postgres.mjs';
import { backendApp } from '../harness/backends.mjs';

const skip = pgSkipReason() ?? false;
let pg;
before(async () => { if (!skip) pg = await startPostgres(); });
after(async () => { if (pg) await pg.stop(); });

const SCHEMA = `CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL, done integer NOT NULL DEFAULT 0);
                CREATE TABLE notes (id serial PRIMARY KEY, body text);`;
const pull = (app, since) => {
  const r = runCgi('sync-pull', { config: app.config, path: '/todos', query: `since=${since}` });
  assert.equal(r.status, 200, r.text());
  return r.json();
};

/** A client: pulls from its cursor, keeps every change it got. */
function client(app) {
  const got = [];
  let cursor = 0;
  return {
    got,
    get cursor() { return cursor; },
    pull() {
      const r = pull(app, cursor);
      got.push(...r.changes);
      cursor = r.version;
      return r;
    },
  };
}

const state = (app, name) => pg.activity(app.dbname, name);
const idleInTx = (app, name) => async () => state(app, name).some((s) => s.state === 'idle in transaction');
const waitingForLock = (app, name) => async () => state(app, name).some((s) => s.wait_event_type === 'Lock');

test('a client that pulls while a long transaction is open still gets every change once', { skip }, async () => {
  const app = await backendApp(pg, { postgres: SCHEMA, tag: 'order' });
  const c = client(app);
  assert.deepEqual(c.pull().changes, []); // installs the trigger

  const long = pg.session(app.dbname, 'long');
  long.send('BEGIN;');
  long.send("INSERT INTO todos (title) VALUES ('long');");
  await until(idleInTx(app, 'long'), 'the long transaction to hold its insert');

  const shorts = [1, 2].map((i) => {
    const s = pg.session(app.dbname, `short${i}`);
    s.send(`INSERT INTO todos (title) VALUES ('short ${i}');`);
    return s;
  });
  // The short writers queue behind the long one's counter row: they cannot commit first.
  await until(waitingForLock(app, 'short1'), 'short1 to wait for the counter row');
  await until(waitingForLock(app, 'short2'), 'short2 to wait for the counter row');

  const between = c.pull();
  assert.deepEqual(between.changes, [], 'nothing is committed yet');
  assert.equal(between.version, 0, 'the cursor stays below the open transaction');

  long.send('COMMIT;');
  await long.close();
  for (const s of shorts) await s.close();

  c.pull();
  assert.deepEqual(c.pull().changes, [], 'nothing comes twice');
  assert.deepEqual(c.got.map((x) => x.data.title).sort(), ['long', 'short 1', 'short 2']);
  assert.deepEqual(c.got.map((x) => x.version), [1, 2, 3]);
  assert.equal(c.got[0].data.title, 'long', 'the long transaction committed first and has the lowest version');
  assert.equal(c.cursor, 3);
});

test('a long transaction that writes a synced table late gets a version after the short ones', { skip }, async () => {
  const app = await backendApp(pg, { postgres: SCHEMA, config: { entities: ['todos'] }, tag: 'order' });
  const c = client(app);
  c.pull();

  const long = pg.session(app.dbname, 'long');
  long.send('BEGIN;');
  long.send("INSERT INTO notes (body) VALUES ('not synced: takes no version');");
  await until(idleInTx(app, 'long'), 'the long transaction to start');

  const s1 = pg.session(app.dbname, 'short1');
  s1.send("INSERT INTO todos (title) VALUES ('short 1');");
  await s1.close(); // committed: nothing holds the counter row
  assert.deepEqual(c.pull().changes.map((x) => [x.data.title, x.version]), [['short 1', 1]]);

  long.send("INSERT INTO todos (title) VALUES ('long');");
  await until(async () => pg.psql(app.dbname, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'long' AND l.locktype = 'transactionid'").trim() !== '0'
    && state(app, 'long').some((s) => s.state === 'idle in transaction'), 'the long transaction to log its insert');
  const s2 = pg.session(app.dbname, 'short2');
  s2.send("INSERT INTO todos (title) VALUES ('short 2');");
  await until(waitingForLock(app, 'short2'), 'short2 to wait for the counter row');
  const between = c.pull();
  assert.deepEqual(between.changes, []);
  assert.equal(between.version, 1);

  long.send('COMMIT;');
  await long.close();
  await s2.close();
  c.pull();
  assert.deepEqual(c.pull().changes, []);
  assert.deepEqual(c.got.map((x) => [x.data.title, x.version]), [['short 1', 1], ['long', 2], ['short 2', 3]]);
});

test('many writers at once: every change arrives once, in version order, whatever the interleaving', { skip }, async () => {
  const app = await backendApp(pg, { postgres: SCHEMA, tag: 'order' });
  const c = client(app);
  c.pull();
  const writers = Array.from({ length: 6 }, (_, w) => {
    const s = pg.session(app.dbname, `w${w}`);
    for (let i = 0; i < 20; i++) {
      s.send(`BEGIN; INSERT INTO todos (title) VALUES ('w${w} ${i}'); UPDATE todos SET done = done + 1 WHERE title = 'w${w} ${i}'; COMMIT;`);
    }
    return s;
  });
  const closing = Promise.all(writers.map((s) => s.close()));
  let done = false;
  closing.then(() => { done = true; });
  // Pull as often as we can while they write, then once more after.
  while (!done) {
    c.pull();
    await new Promise((r) => setImmediate(r));
  }
  await closing;
  c.pull();
  const latest = new Map();
  for (const x of c.got) latest.set(x.id, x);
  assert.equal(latest.size, 120, 'every row arrived');
  for (const x of latest.values()) assert.equal(x.data.done, 1, `row ${x.id} arrived as it is now`);
  const versions = c.got.map((x) => x.version);
  assert.deepEqual(versions, [...versions].sort((a, b) => a - b), 'in version order');
  assert.equal(new Set(versions).size, versions.length, 'no version twice');
  assert.equal(c.cursor, 240);
});
