// Sync rules on the event stream, on both backends, behind two real lighttpd instances
// over one database (two ports, standing in for two machines; one sync-events process
// each), alice's stream on one and bob's on the other: each stream is told only about rows
// in its user's scope before or after the change; a row moving out reaches the user who
// had it; a change to a table the scope reads (a membership) is one "scope" event, after
// which the user's pull has the deletes. No timing is asserted beyond "it arrives before a
// generous timeout".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLighttpd, openEvents } from '../harness/rhtmx.mjs';
import { startPostgres, pgSkipReason } from '../harness/postgres.mjs';
import { BACKENDS, backendTokenApp } from '../harness/backends.mjs';

const pgSkip = pgSkipReason() ?? false;
let pg;
before(async () => { if (!pgSkip) pg = await startPostgres(); });
after(async () => { if (pg) await pg.stop(); });

const ROWS = `
INSERT INTO list_members VALUES (1, 'alice'), (1, 'bob'), (2, 'alice'), (3, 'carol');
INSERT INTO todos (id, list_id, title) VALUES (10, 1, 'milk'), (20, 2, 'report'), (30, 3, 'gift');
`;
const SCHEMA = {
  sqlite: `
CREATE TABLE list_members (list_id INTEGER NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (list_id, user_id));
CREATE TABLE todos (id INTEGER PRIMARY KEY, list_id INTEGER NOT NULL, title TEXT NOT NULL);
${ROWS}`,
  postgres: `
CREATE TABLE list_members (list_id integer NOT NULL, user_id text NOT NULL, PRIMARY KEY (list_id, user_id));
CREATE TABLE todos (id integer PRIMARY KEY, list_id integer NOT NULL, title text NOT NULL);
${ROWS}`,
};
const isEvent = (i) => i.event === 'message';
const data = (s) => s.items.filter(isEvent).map((i) => JSON.parse(i.data));

for (const backend of BACKENDS) test(`${backend}: events are filtered per user across two streams on two servers`, { skip: backend === 'postgres' ? pgSkip : false }, async () => {
  const app = await backendTokenApp(backend === 'sqlite' ? 'sqlite' : pg, {
    ...SCHEMA,
    config: { entities: [{ name: 'todos', scope: 'list_id IN (SELECT list_id FROM list_members WHERE user_id = :user)' }],
      events: { heartbeat: 1, lifetime: 600 } },
  });
  const head = () => Number(app.rows("SELECT value FROM _rhtmx_sync_state WHERE key = 'head'")[0].value);
  const srv = await startLighttpd(app);
  const srv2 = await startLighttpd(app);
  const auth = (u) => ({ Authorization: `Bearer ${app.token(u)}` });
  const pull = async (u, since) => {
    const r = await fetch(`${srv.url}/api/sync/todos?since=${since}`, { headers: auth(u) });
    assert.equal(r.status, 200, await r.clone().text());
    return r.json();
  };
  const streams = [];
  try {
    // Both users pull first, as the library does: their views hold what their devices hold.
    const a0 = await pull('alice', 0);
    const b0 = await pull('bob', 0);
    assert.deepEqual(a0.changes.map((c) => c.id), [10, 20]);
    assert.deepEqual(b0.changes.map((c) => c.id), [10]);
    const open = async (u, server) => {
      const s = await openEvents(`${server.url}/api/sync/events?since=${head()}`, { headers: auth(u) });
      assert.equal(s.status, 200);
      await s.take((i) => i.comments.length > 0);
      streams.push(s);
      return s;
    };
    const alice = await open('alice', srv);
    const bob = await open('bob', srv2);
    const v0 = head();

    // 1: a row in alice's list 2 only; 2: one in the shared list 1; 3: carol's list 3.
    app.exec("INSERT INTO todos (id, list_id, title) VALUES (21, 2, 'alice only');");
    app.exec("INSERT INTO todos (id, list_id, title) VALUES (11, 1, 'shared');");
    app.exec("INSERT INTO todos (id, list_id, title) VALUES (31, 3, 'carol only');");
    // 4: the shared row moves to carol's list: both had it, both are told.
    app.exec('UPDATE todos SET list_id = 3 WHERE id = 10;');
    // 5: alice's row moves to carol's list: only alice had it.
    app.exec('UPDATE todos SET list_id = 3 WHERE id = 20;');
    // 6: a row of carol's changes: nobody here is told.
    app.exec("UPDATE todos SET title = 'wrapped' WHERE id = 30;");
    // 7: a change both can see, to know the streams have seen everything before it.
    app.exec("UPDATE todos SET title = 'shared!' WHERE id = 11;");
    const last = v0 + 7;
    await alice.take((i) => isEvent(i) && Number(i.id) === last, 20_000);
    await bob.take((i) => isEvent(i) && Number(i.id) === last, 20_000);
    assert.deepEqual(data(alice).map((d) => [d.id, d.version]),
      [[21, v0 + 1], [11, v0 + 2], [10, v0 + 4], [20, v0 + 5], [11, v0 + 7]]);
    assert.deepEqual(data(bob).map((d) => [d.id, d.version]), [[11, v0 + 2], [10, v0 + 4], [11, v0 + 7]]);

    // Bob leaves list 1: a "scope" event for todos; his next pull has the deletes.
    const b1 = await pull('bob', b0.version);
    assert.deepEqual(b1.changes.map((c) => [c.id, c.action]), [[10, 'delete'], [11, 'create']]);
    app.exec("DELETE FROM list_members WHERE list_id = 1 AND user_id = 'bob';");
    const ev = await bob.take((i) => isEvent(i) && JSON.parse(i.data).action === 'scope', 20_000);
    assert.deepEqual(JSON.parse(ev.data), { entity: 'todos', action: 'scope', version: Number(ev.id) });
    const b2 = await pull('bob', b1.version);
    assert.deepEqual(b2.changes.map((c) => [c.id, c.action]), [[11, 'delete']]);
    // Now a change in list 1 no longer reaches bob, and still reaches alice.
    app.exec("UPDATE todos SET title = 'alice now' WHERE id = 11;");
    app.exec("INSERT INTO list_members VALUES (9, 'bob');"); // a scope event both get next
    const end = head();
    await alice.take((i) => isEvent(i) && Number(i.id) === end, 20_000);
    await bob.take((i) => isEvent(i) && Number(i.id) === end, 20_000);
    assert.ok(data(alice).some((d) => d.id === 11 && d.version === end - 1));
    assert.ok(!data(bob).some((d) => d.version === end - 1), JSON.stringify(data(bob)));
  } finally {
    for (const s of streams) s.close();
    await srv.stop();
    await srv2.stop();
  }
});
