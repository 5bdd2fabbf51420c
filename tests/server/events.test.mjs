// sync-events behind a real lighttpd (mod_fastcgi, max-procs 1, stream-response-body 2):
// one process, many streams; commits made with the database's own shell (sqlite3, psql)
// reach every stream; resume after a disconnect and at the lifetime limit loses and
// repeats nothing. Every case runs on both backends: SQLite (the hub watches the files)
// and PostgreSQL (it LISTENs; tests/harness/postgres.mjs starts one cluster for the file).
// No timing is asserted beyond "it arrives before a generous timeout".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startLighttpd, openEvents, childrenOf } from '../harness/rhtmx.mjs';
import { BACKENDS, TODOS, useBackends } from '../harness/backends.mjs';
import { now } from '../harness/token.mjs';

const backends = useBackends();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const isEvent = (i) => i.event === 'message';
const isComment = (i) => i.comments.length > 0;
const versions = (s) => s.items.filter(isEvent).map((i) => Number(i.id));

/** The sync-events FastCGI process lighttpd started. */
function eventsPid(srv) {
  const pids = childrenOf(srv.pid).filter((p) => {
    try { return fs.readlinkSync(`/proc/${p}/exe`).endsWith('/sync-events'); } catch { return false; }
  });
  assert.equal(pids.length, 1, `one sync-events process, got ${pids.length}`);
  return pids[0];
}
const fdCount = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;
const status = (pid, key) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`${key}:\\s+(\\d+)`))[1]);

/** Open a stream and wait for its first bytes (the retry field and the opening comment). */
async function stream(srv, query = '', headers = {}) {
  const s = await openEvents(`${srv.url}/api/sync/events${query ? `?${query}` : ''}`, { headers });
  assert.equal(s.status, 200, `status ${s.status}`);
  await s.take(isComment);
  return s;
}

/** Collect events from s until one has version v (inclusive). */
async function until(s, v, ms = 20_000) {
  await s.take((i) => isEvent(i) && Number(i.id) >= v, ms);
  return versions(s);
}

const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

for (const backend of BACKENDS) {
  const skip = backends.skip(backend);

  test(`sync-events under lighttpd (${backend})`, { skip }, async (t) => {
    const app = await backends.app(backend, {
      sqlite: `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
               CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT);`,
      postgres: `CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL, done integer NOT NULL DEFAULT 0);
                 CREATE TABLE notes (id text PRIMARY KEY, body text);`,
      config: { entities: ['todos', 'notes'], events: { heartbeat: 1, lifetime: 600, poll_wait: 1 } },
    });
    const srv = await startLighttpd(app);
    try {
      // The first stream makes sure the triggers are in before anything is written.
      (await stream(srv)).close();

      await t.test(`N streams get the headers, retry and each commit made by ${backend === 'sqlite' ? 'sqlite3' : 'psql'}, once`, async () => {
        const N = 20;
        const v0 = app.head();
        const all = await Promise.all(Array.from({ length: N }, () => stream(srv)));
        for (const s of all) {
          assert.equal(s.headers['content-type'], 'text/event-stream');
          assert.equal(s.headers['cache-control'], 'no-cache, no-transform');
          assert.equal(s.headers['x-accel-buffering'], 'no');
          assert.equal(s.headers['content-encoding'], undefined);
          // events.retry_ms (2000) plus up to half of it: clients cut off together
          // (a restart) come back spread over a second, not in the same instant.
          assert.ok(Number(s.items[0].retry) >= 2000 && Number(s.items[0].retry) <= 3000, `retry: ${s.items[0].retry}`);
        }
        assert.ok(new Set(all.map((s) => s.items[0].retry)).size > 1, 'the retry: field is spread');
        app.exec("INSERT INTO todos (title) VALUES ('milk');");
        app.exec("UPDATE todos SET done = 1 WHERE id = 1;");
        for (const s of all) {
          assert.deepEqual(await until(s, v0 + 2), [v0 + 1, v0 + 2]);
          const [a, b] = s.items.filter(isEvent);
          assert.equal(a.id, String(v0 + 1));
          assert.equal(a.data, `{"entity":"todos","action":"create","id":1,"version":${v0 + 1}}`);
          assert.equal(b.data, `{"entity":"todos","action":"update","id":1,"version":${v0 + 2}}`);
          s.close();
        }
        assert.equal(eventsPid(srv) > 0, true);
      });

      await t.test('a commit through sync-push wakes the streams; its event carries the client_id', async () => {
        const v0 = app.head();
        const s = await stream(srv, 'entities=todos');
        const body = JSON.stringify({ client_id: 'c-ev', changes: [
          { mutation_id: 'm-1', id: 'tmp-1', action: 'create', data: { title: 'pushed' }, client_version: v0 }] });
        const res = await fetch(`${srv.url}/api/sync/todos`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
        const text = await res.text();
        assert.equal(res.status, 200, text);
        const id = JSON.parse(text).applied[0];
        const ev = await s.take(isEvent);
        assert.equal(ev.data, `{"entity":"todos","action":"create","id":${id},"version":${v0 + 1},"client_id":"c-ev"}`);
        s.close();
      });

      await t.test('?entities= filters, and keys keep their SQL type', async () => {
        const v0 = app.head();
        const notes = await stream(srv, 'entities=notes');
        const both = await stream(srv, 'entities=todos,notes');
        app.exec("INSERT INTO todos (title) VALUES ('bread'); INSERT INTO notes VALUES ('n-1', 'hello');");
        const ev = await notes.take(isEvent);
        assert.equal(ev.data, `{"entity":"notes","action":"create","id":"n-1","version":${v0 + 2}}`);
        assert.deepEqual(await until(both, v0 + 2), [v0 + 1, v0 + 2]);
        notes.close();
        both.close();
        const bad = await openEvents(`${srv.url}/api/sync/events?entities=nope`);
        assert.equal(bad.status, 404);
        bad.close();
      });

      await t.test('a forced disconnect, then Last-Event-ID: nothing lost, nothing twice', async () => {
        const v0 = app.head();
        const total = 60;
        const s1 = await stream(srv, `since=${v0}`);
        // A writer commits one row at a time, each its own sqlite3 (psql) process, while the
        // client drops its connection in the middle and comes back.
        const writer = (async () => {
          for (let i = 0; i < total; i++) await app.execAsync(`INSERT INTO todos (title) VALUES ('w${i}');`);
        })();
        await s1.take((i) => isEvent(i) && Number(i.id) >= v0 + 10);
        s1.close();
        const first = versions(s1);
        const last = first[first.length - 1];
        await sleep(300); // commits go on while nobody listens
        const s2 = await stream(srv, `since=${v0}`, { 'Last-Event-ID': String(last) });
        await writer;
        const second = await until(s2, v0 + total);
        s2.close();
        assert.deepEqual([...first, ...second], range(v0 + 1, v0 + total));
      });

      await t.test('a replay longer than the in-memory ring hands over to it without a gap', async () => {
        const live = await stream(srv); // the hub is up and sees the big commit
        const v0 = app.head();
        const n = 5000;
        app.exec(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${n})
                     INSERT INTO todos (title) SELECT 'bulk ' || i FROM c;`);
        assert.deepEqual(await until(live, v0 + n), range(v0 + 1, v0 + n));
        live.close();
        const s = await stream(srv, `since=${v0 - 3}`);
        assert.deepEqual(await until(s, v0 + n), range(v0 - 2, v0 + n));
        s.close();
      });

      await t.test('heartbeat comments arrive while nothing changes', async () => {
        const s = await stream(srv);
        await s.take((i) => i.comments.includes('keep-alive'), 10_000);
        await s.take((i) => i.comments.includes('keep-alive'), 10_000);
        assert.deepEqual(versions(s), []);
        s.close();
      });

      await t.test('a cursor older than the horizon, or newer than the head, gets resync', async () => {
        const h = app.head();
        app.exec("UPDATE _rhtmx_sync_state SET value = 5 WHERE key = 'horizon';");
        try {
          for (const q of ['since=4', `since=${h + 1}`, 'since=0']) {
            const s = await stream(srv, q);
            const r = await s.take((i) => i.event === 'resync');
            assert.equal(r.data, `{"version":${h}}`);
            assert.equal(r.id, undefined);
            await s.ended;
            assert.deepEqual(versions(s), [], q);
          }
          const ok = await stream(srv, 'since=5');
          app.exec("INSERT INTO todos (title) VALUES ('after horizon');");
          await until(ok, h + 1);
          ok.close();
        } finally {
          app.exec("UPDATE _rhtmx_sync_state SET value = 0 WHERE key = 'horizon';");
        }
      });

      await t.test('mode=poll: ends right after its events, or after poll_wait with bye', async () => {
        const v0 = app.head();
        app.exec("INSERT INTO todos (title) VALUES ('p1'), ('p2');");
        const a = await stream(srv, `since=${v0}&mode=poll`);
        await a.ended;
        assert.deepEqual(versions(a), [v0 + 1, v0 + 2]);
        const bye = a.items[a.items.length - 1];
        assert.equal(bye.event, 'bye');
        assert.equal(bye.id, String(v0 + 2));
        assert.equal(bye.data, `{"version":${v0 + 2}}`);
        assert.ok(a.items.some((i) => i.comments.includes('rhtmx-sync poll')));

        const b = await stream(srv, `since=${v0 + 2}&mode=poll`);
        await b.ended; // poll_wait is 1 s
        assert.deepEqual(versions(b), []);
        assert.equal(b.items[b.items.length - 1].event, 'bye');

        const c = await stream(srv, `since=${v0 + 2}&mode=poll&entities=todos`);
        app.exec("INSERT INTO todos (title) VALUES ('p3');");
        await c.ended;
        assert.deepEqual(versions(c), [v0 + 3]);
      });

      await t.test('clients that leave are noticed; no descriptor or thread growth over cycles', async () => {
        const pid = eventsPid(srv);
        const settle = async (want) => {
          for (let i = 0; i < 100 && fdCount(pid) > want; i++) await sleep(100);
          return fdCount(pid);
        };
        const cycle = async (n) => {
          const all = await Promise.all(Array.from({ length: n }, () => stream(srv)));
          for (const s of all) s.close();
        };
        const sanitized = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').includes('libasan');
        const round = async () => {
          for (let i = 0; i < 8; i++) await cycle(40);
          await sleep(1500); // the next heartbeat notices the closed ones
        };
        await round(); // warm up: thread stacks and malloc arenas reach their working size
        const base = fdCount(pid);
        const rss = [status(pid, 'VmRSS')];
        for (let r = 0; r < 2; r++) {
          await round();
          const after = await settle(base);
          assert.ok(after <= base, `descriptors: ${base} before, ${after} after ${(r + 1) * 320} more connect/disconnect cycles`);
          rss.push(status(pid, 'VmRSS'));
        }
        console.log(`# VmRSS after each round of 320 cycles: ${rss.join(', ')} kB${sanitized ? ' (ASan build: not asserted)' : ''}`);
        // ASan's quarantine holds freed memory on purpose; its leak check runs at exit instead.
        if (!sanitized) assert.ok(rss[2] - rss[1] < 512, `RSS still grows after warm-up: ${rss.join(', ')} kB`);
        for (let i = 0; i < 100 && status(pid, 'Threads') > 12; i++) await sleep(100);
        assert.ok(status(pid, 'Threads') <= 12, `${status(pid, 'Threads')} threads left with no stream open`);
      });

      await t.test('SIGTERM ends every stream on purpose with bye', async () => {
        const v0 = app.head();
        const all = await Promise.all(Array.from({ length: 5 }, () => stream(srv, `since=${v0}`)));
        const pid = eventsPid(srv);
        process.kill(pid, 'SIGTERM');
        for (const s of all) {
          const bye = await s.take((i) => i.event === 'bye', 10_000);
          assert.equal(bye.data, `{"version":${v0}}`);
          await s.ended;
        }
        for (let i = 0; i < 100 && fs.existsSync(`/proc/${pid}`); i++) await sleep(50);
        assert.ok(!fs.existsSync(`/proc/${pid}`) || /State:\s+Z/.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8')),
          'sync-events exited after SIGTERM');
      });
    } finally {
      await srv.stop();
    }
    assert.doesNotMatch(srv.errorLog(), /AddressSanitizer|LeakSanitizer|runtime error/);
  });

  test(`over events.max_streams: 503 busy with Retry-After; a freed slot is reused (${backend})`, { skip }, async () => {
    const app = await backends.app(backend, { ...TODOS, config: { events: { heartbeat: 1, max_streams: 5 } } });
    const srv = await startLighttpd(app);
    const all = [];
    try {
      for (let i = 0; i < 5; i++) all.push(await stream(srv));
      const over = await openEvents(`${srv.url}/api/sync/events`);
      assert.equal(over.status, 503);
      assert.match(over.headers['retry-after'], /^\d+$/);
      assert.ok(Number(over.headers['retry-after']) >= 1);
      assert.match(over.headers['content-type'], /^application\/json/);
      await over.ended;
      all.pop().close();
      let ok = null;
      for (let i = 0; i < 50 && !ok; i++) {
        const s = await openEvents(`${srv.url}/api/sync/events`);
        if (s.status === 200) ok = s;
        else { s.close(); await sleep(200); }
      }
      assert.ok(ok, 'a slot came free after a client left');
      all.push(ok);
    } finally {
      for (const s of all) s.close();
      await srv.stop();
    }
  });

  test(`the lifetime limit: bye, then a reconnect with Last-Event-ID resumes (${backend})`, { skip }, async () => {
    const app = await backends.app(backend, { ...TODOS, config: { events: { heartbeat: 1, lifetime: 2 } } });
    const srv = await startLighttpd(app);
    try {
      (await stream(srv)).close();
      const v0 = app.head();
      const s = await stream(srv, `since=${v0}`);
      app.exec("INSERT INTO todos (title) VALUES ('before');");
      await until(s, v0 + 1);
      const bye = await s.take((i) => i.event === 'bye', 10_000);
      await s.ended;
      assert.equal(bye.id, String(v0 + 1));
      assert.equal(bye.data, `{"version":${v0 + 1}}`);
      app.exec("INSERT INTO todos (title) VALUES ('between');");
      const s2 = await stream(srv, `since=${v0}`, { 'Last-Event-ID': bye.id });
      assert.deepEqual(await until(s2, v0 + 2), [v0 + 2]);
      await s2.take((i) => i.event === 'bye', 10_000);
      s2.close();
    } finally {
      await srv.stop();
    }
  });

  test(`a stream ends with bye when its token expires; a fresh token resumes from its id (${backend})`, { skip }, async () => {
    // The lifetime is long: only the token's exp can end this stream.
    const app = await backends.tokenApp(backend, { ...TODOS, config: { events: { heartbeat: 1, lifetime: 600 } } });
    const srv = await startLighttpd(app);
    const bearer = (token) => ({ Authorization: `Bearer ${token}` });
    try {
      (await stream(srv, '', bearer(app.token('u1')))).close(); // installs the triggers
      const v0 = app.head();
      const s = await stream(srv, `since=${v0}`, bearer(app.token('u1', { exp: now() + 2 })));
      app.exec("INSERT INTO todos (title) VALUES ('before expiry');");
      assert.deepEqual(await until(s, v0 + 1), [v0 + 1]);
      const bye = await s.take((i) => i.event === 'bye', 15_000);
      await s.ended;
      assert.equal(bye.id, String(v0 + 1));
      assert.equal(bye.data, `{"version":${v0 + 1}}`);
      app.exec("INSERT INTO todos (title) VALUES ('after expiry');");
      const s2 = await stream(srv, '', { ...bearer(app.token('u1')), 'Last-Event-ID': bye.id });
      assert.deepEqual(await until(s2, v0 + 2), [v0 + 2]);
      s2.close();
    } finally {
      await srv.stop();
    }
  });

  test(`a stream ends with bye when the app alters a synced table; the reconnect says the new fingerprint (${backend})`, { skip }, async () => {
    const app = await backends.app(backend, { ...TODOS, config: { events: { heartbeat: 1, lifetime: 600 } } });
    const srv = await startLighttpd(app);
    const fingerprint = async () => (await (await fetch(`${srv.url}/api/sync/todos?since=0`)).json()).schema;
    /** The opening event: schema of stream s ({ entity: fingerprint }). */
    const opening = async (s) => JSON.parse((s.items.find((i) => i.event === 'schema') ?? await s.take((i) => i.event === 'schema')).data);
    try {
      const before = await fingerprint(); // installs the triggers
      const v0 = app.head();
      const s = await stream(srv, `since=${v0}`);
      assert.deepEqual(await opening(s), { todos: before });
      // No row is written: only the schema changed.
      app.exec('ALTER TABLE todos ADD COLUMN note TEXT;');
      const bye = await s.take((i) => i.event === 'bye', 20_000);
      await s.ended;
      assert.equal(bye.id, String(v0));
      assert.equal(bye.data, `{"version":${v0}}`);
      const after = await fingerprint();
      assert.notEqual(after, before);
      const s2 = await stream(srv, '', { 'Last-Event-ID': bye.id });
      assert.deepEqual(await opening(s2), { todos: after });
      s2.close();
    } finally {
      await srv.stop();
    }
  });

  test(`3,000 concurrent streams in one sync-events process: a few threads, every stream gets a commit (${backend})`, { skip }, async () => {
    // The streams are held by one event loop (lib/streams.c), not a thread each: the
    // thread count stays at the pool's few accepting threads whatever the number of streams.
    const app = await backends.app(backend, { ...TODOS, config: { events: { heartbeat: 15, lifetime: 600 } } });
    const srv = await startLighttpd(app);
    const N = 3000;
    const all = [];
    try {
      (await stream(srv)).close();
      for (let i = 0; i < N; i += 200) {
        all.push(...await Promise.all(Array.from({ length: 200 }, () => stream(srv))));
      }
      const pid = eventsPid(srv);
      const threads = status(pid, 'Threads');
      assert.ok(threads < 48, `${threads} threads for ${N} streams`);
      const v0 = app.head();
      app.exec("INSERT INTO todos (title) VALUES ('to everyone');");
      for (const s of all) assert.deepEqual(await until(s, v0 + 1, 60_000), [v0 + 1]);
      console.log(`# ${N} streams: sync-events has ${status(pid, 'Threads')} threads, VmRSS ${status(pid, 'VmRSS')} kB (this build)`);
    } finally {
      for (const s of all) s.close();
      await srv.stop();
    }
  });

  test(`plain CGI under lighttpd (mod_cgi): poll answers, woken by a commit (${backend})`, { skip }, async () => {
    const app = await backends.app(backend, { ...TODOS, config: { events: { poll_wait: 20, heartbeat: 5 } } });
    app.exec("INSERT INTO todos (title) VALUES ('seed');");
    const srv = await startLighttpd(app, { cgi: true });
    try {
      const a = await stream(srv, 'since=0'); // no mode: under CGI the server polls
      await a.ended;
      assert.ok(a.items.some((i) => i.comments.includes('rhtmx-sync poll')));
      assert.deepEqual(versions(a), [1]);
      const bye = a.items[a.items.length - 1];
      assert.equal(bye.event, 'bye');
      const b = await stream(srv, '', { 'Last-Event-ID': bye.id });
      const t0 = Date.now();
      app.exec("INSERT INTO todos (title) VALUES ('news');");
      await b.ended;
      assert.ok(Date.now() - t0 < 15_000, 'the commit ended the poll before poll_wait (20 s)');
      assert.deepEqual(versions(b), [2]);
      assert.equal(b.items[b.items.length - 1].event, 'bye');
    } finally {
      await srv.stop();
    }
  });
}
