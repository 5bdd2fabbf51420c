// sync-events over PostgreSQL with several web servers: two lighttpd instances (two ports,
// standing in for two machines) serve one PostgreSQL database: a write through either, or
// by psql, reaches the streams of both; pushes through both at once lose and double
// nothing; a client resumes on the other server with Last-Event-ID. What one server does
// (?entities=, poll mode, resync, heartbeats, lifetimes...) is tests/server/events.test.mjs,
// which runs on both backends. No timing is asserted beyond "it arrives before a generous
// timeout".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLighttpd, openEvents } from '../harness/rhtmx.mjs';
import { startPostgres, pgSkipReason } from '../harness/postgres.mjs';
import { backendApp } from '../harness/backends.mjs';

const skip = pgSkipReason() ?? false;
let pg;
before(async () => { if (!skip) pg = await startPostgres(); });
after(async () => { if (pg) await pg.stop(); });

const isEvent = (i) => i.event === 'message';
const isComment = (i) => i.comments.length > 0;
const versions = (s) => s.items.filter(isEvent).map((i) => Number(i.id));
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

async function stream(srv, query = '', headers = {}) {
  const s = await openEvents(`${srv.url}/api/sync/events${query ? `?${query}` : ''}`, { headers });
  assert.equal(s.status, 200, `status ${s.status}`);
  await s.take(isComment);
  return s;
}
async function until(s, v, ms = 20_000) {
  await s.take((i) => isEvent(i) && Number(i.id) >= v, ms);
  return versions(s);
}
async function push(srv, entity, batch) {
  const res = await fetch(`${srv.url}/api/sync/${entity}`, { method: 'POST', body: JSON.stringify(batch), headers: { 'content-type': 'application/json' } });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text);
}

test('two web servers over one PostgreSQL', { skip }, async (t) => {
  const app = await backendApp(pg, {
    postgres: `CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL, done integer NOT NULL DEFAULT 0);
               CREATE TABLE notes (id text PRIMARY KEY, body text);`,
    config: { entities: ['todos', 'notes'], events: { heartbeat: 1, lifetime: 600, poll_wait: 1 } },
    tag: 'pgev',
  });
  const head = () => Number(app.exec("SELECT value FROM _rhtmx_sync_state WHERE key = 'head'").trim());
  const a = await startLighttpd(app);
  const b = await startLighttpd(app);
  try {
    (await stream(a)).close(); // installs the triggers
    (await stream(b)).close();

    await t.test('a write by psql reaches the streams of both servers, once', async () => {
      const v0 = head();
      const all = [await stream(a), await stream(a), await stream(b), await stream(b)];
      app.exec("INSERT INTO todos (title) VALUES ('milk'); UPDATE todos SET done = 1 WHERE title = 'milk';");
      for (const s of all) {
        assert.deepEqual(await until(s, v0 + 2), [v0 + 1, v0 + 2]);
        const [x, y] = s.items.filter(isEvent);
        assert.equal(x.data, `{"entity":"todos","action":"create","id":1,"version":${v0 + 1}}`);
        assert.equal(y.data, `{"entity":"todos","action":"update","id":1,"version":${v0 + 2}}`);
        s.close();
      }
    });

    await t.test('a push through either server reaches both; its event carries the client_id', async () => {
      for (const [via, name] of [[a, 'A'], [b, 'B']]) {
        const v0 = head();
        const sa = await stream(a, 'entities=todos');
        const sb = await stream(b, 'entities=todos');
        const r = await push(via, 'todos', { client_id: `c-${name}`, changes: [
          { mutation_id: 'm-1', id: 'tmp-1', action: 'create', data: { title: `via ${name}` }, client_version: v0 }] });
        for (const s of [sa, sb]) {
          const ev = await s.take(isEvent);
          assert.equal(ev.data, `{"entity":"todos","action":"create","id":${r.applied[0]},"version":${v0 + 1},"client_id":"c-${name}"}`);
          s.close();
        }
      }
    });

    await t.test('pushes through both servers at once: nothing lost, nothing twice, every stream sees all', async () => {
      const v0 = head();
      const rows0 = Number(app.exec('SELECT count(*) FROM todos').trim());
      const sa = await stream(a, `since=${v0}`);
      const sb = await stream(b, `since=${v0}`);
      const batches = [];
      for (const [via, name] of [[a, 'a'], [b, 'b']]) {
        for (let i = 0; i < 10; i++) {
          batches.push(push(via, 'todos', { client_id: `conc-${name}-${i}`, changes: [
            { mutation_id: 'm-1', id: 'tmp-1', action: 'create', data: { title: `${name}${i}` }, client_version: v0 },
            { mutation_id: 'm-2', id: 'tmp-1', action: 'update', data: { done: 1 }, client_version: v0 }] }));
        }
      }
      const answers = await Promise.all(batches);
      assert.equal(new Set(answers.map((r) => r.applied[0])).size, 20, 'twenty distinct rows');
      assert.equal(Number(app.exec('SELECT count(*) FROM todos').trim()), rows0 + 20);
      assert.equal(head(), v0 + 40);
      for (const s of [sa, sb]) {
        assert.deepEqual(await until(s, v0 + 40), range(v0 + 1, v0 + 40));
        s.close();
      }
      // Retried, every batch answers the same and writes nothing.
      const again = await push(a, 'todos', { client_id: 'conc-b-3', changes: [
        { mutation_id: 'm-1', id: 'tmp-1', action: 'create', data: { title: 'b3' }, client_version: v0 },
        { mutation_id: 'm-2', id: 'tmp-1', action: 'update', data: { done: 1 }, client_version: v0 }] });
      assert.deepEqual(again, answers[13]);
      assert.equal(head(), v0 + 40);
    });

    await t.test('a disconnect, then Last-Event-ID on the other server: nothing lost, nothing twice', async () => {
      const v0 = head();
      const s1 = await stream(a, `since=${v0}`);
      for (let i = 0; i < 5; i++) app.exec(`INSERT INTO todos (title) VALUES ('before ${i}');`);
      await s1.take((i) => isEvent(i) && Number(i.id) >= v0 + 5);
      s1.close();
      const first = versions(s1);
      // Commits while nobody listens, then the client comes back through the other server.
      const session = pg.session(app.dbname, 'writer');
      for (let i = 0; i < 35; i++) session.send(`INSERT INTO todos (title) VALUES ('while away ${i}');`);
      await session.close();
      const s2 = await stream(b, `since=${v0}`, { 'Last-Event-ID': String(first.at(-1)) });
      const second = await until(s2, v0 + 40);
      s2.close();
      assert.deepEqual(first, range(v0 + 1, v0 + 5));
      assert.deepEqual([...first, ...second], range(v0 + 1, v0 + 40));
    });
  } finally {
    await a.stop();
    await b.stop();
  }
});
