// sync-events run as plain CGI: one request per process. By default a CGI answer is a
// poll (it ends as soon as it has events, or after events.poll_wait); mode=stream still
// streams, and SIGTERM (what a web server sends when the client leaves) ends it with bye.
// Every case runs on both backends: with SQLite a poll or stream waits by watching the
// database's files, with PostgreSQL by LISTEN/NOTIFY.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { runCgi, cgiCommand, parseCgi, assertSanitizerClean } from '../harness/rhtmx.mjs';
import { BACKENDS, backendsForFile } from '../harness/backends.mjs';

const on = backendsForFile({ underValgrind: true });
const head = (app) => Number(app.exec("SELECT value FROM _rhtmx_sync_state WHERE key = 'head';").trim());
const events = (app, query, headers = {}) => runCgi('sync-events', { config: app.config, query, headers });

/** Parse an SSE body into blocks: { comments, event, id, data, retry }. */
function blocks(text) {
  return text.split('\n\n').filter((b) => b.length).map((b) => {
    const item = { comments: [] };
    for (const line of b.split('\n')) {
      if (line.startsWith(':')) item.comments.push(line.slice(1).trim());
      else {
        const i = line.indexOf(':');
        item[line.slice(0, i)] = line.slice(i + 1).replace(/^ /, '');
      }
    }
    if (item.data !== undefined) item.event ??= 'message';
    return item;
  });
}
const ids = (items) => items.filter((i) => i.event === 'message').map((i) => Number(i.id));

/** Start sync-events as CGI in the background; resolves with its output when it exits. */
function startCgi(app, query) {
  const env = {
    PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? '', UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? '',
    GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', REQUEST_METHOD: 'GET',
    QUERY_STRING: query, SCRIPT_NAME: '/api/sync/events', REMOTE_ADDR: '127.0.0.1', RHTMX_SYNC_CONFIG: app.config,
  };
  const [cmd, ...args] = cgiCommand('sync-events');
  const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = Buffer.alloc(0);
  let err = '';
  const waiters = [];
  p.stdout.on('data', (d) => { out = Buffer.concat([out, d]); for (const w of waiters.splice(0)) w(); });
  p.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => p.on('close', (code, signal) => resolve({ code, signal, stderr: err, ...parseCgi(out) })));
  return {
    pid: p.pid, exited,
    /** Wait until the output so far contains s. */
    async sees(s, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (!out.toString().includes(s)) {
        if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(s)} in ${JSON.stringify(out.toString())}`);
        await new Promise((r) => { waiters.push(r); setTimeout(r, 50); });
      }
    },
  };
}

const app0 = (backend) => on.app(backend, { config: { events: { poll_wait: 1, heartbeat: 1, lifetime: 30 } } });

for (const backend of BACKENDS) {
  const skip = on.skip(backend);

  test(`under CGI the answer is a poll: pending events, then bye, then the process exits (${backend})`, { skip }, async () => {
    const app = await app0(backend);
    app.exec("INSERT INTO todos (title) VALUES ('a'), ('b');");
    const r = events(app, 'since=0');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/event-stream');
    assert.equal(r.headers['cache-control'], 'no-cache, no-transform');
    assert.equal(r.headers['x-accel-buffering'], 'no');
    const items = blocks(r.text());
    // A poll answer's retry: is short (EVENTS_POLL_RETRY_MS, 100) plus a spread of up to half.
    assert.ok(Number(items[0].retry) >= 100 && Number(items[0].retry) <= 150, `retry: ${items[0].retry}`);
    assert.deepEqual(items[1].comments, ['rhtmx-sync poll']);
    // Then each entity's schema fingerprint, the same as a pull answer's.
    const fp = runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=0' }).json().schema;
    assert.deepEqual(items[2], { comments: [], event: 'schema', data: JSON.stringify({ todos: fp }) });
    assert.deepEqual(ids(items), [1, 2]);
    assert.equal(items[3].data, '{"entity":"todos","action":"create","id":1,"version":1}');
    assert.deepEqual(items[items.length - 1], { comments: [], event: 'bye', id: '2', data: '{"version":2}' });
  });

  test(`a poll with nothing new ends after events.poll_wait with bye at the same cursor (${backend})`, { skip }, async () => {
    const app = await app0(backend);
    app.exec("INSERT INTO todos (title) VALUES ('a');");
    events(app, 'since=0'); // installs the triggers: the row above is version 1
    const r = events(app, 'since=1');
    const items = blocks(r.text());
    assert.deepEqual(ids(items), []);
    assert.deepEqual(items[items.length - 1], { comments: [], event: 'bye', id: '1', data: '{"version":1}' });
    // No cursor at all: live from the head.
    assert.equal(blocks(events(app, '').text()).pop().id, '1');
  });

  test(`a commit during a CGI poll ends it at once with that event (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { config: { events: { poll_wait: 30 } } });
    app.exec("INSERT INTO todos (title) VALUES ('seed');");
    events(app, 'since=0'); // installs the triggers; returns at once with the seed row
    const h = head(app);
    const c = startCgi(app, `since=${h}`);
    await c.sees(': rhtmx-sync poll');
    const t0 = Date.now();
    app.exec("INSERT INTO todos (title) VALUES ('news');");
    const r = await c.exited;
    assert.ok(Date.now() - t0 < 20_000, 'the commit ended the poll, not poll_wait (30 s)');
    assertSanitizerClean(r.stderr, 'sync-events');
    assert.equal(r.code, 0);
    const items = blocks(r.text());
    assert.deepEqual(ids(items), [h + 1]);
    assert.equal(items.pop().event, 'bye');
  });

  test(`mode=stream under CGI streams; SIGTERM ends it with bye and exit 0 (${backend})`, { skip }, async () => {
    const app = await app0(backend);
    events(app, 'since=0');
    const h = head(app);
    const c = startCgi(app, `since=${h}&mode=stream`);
    await c.sees(': rhtmx-sync stream');
    app.exec("INSERT INTO todos (title) VALUES ('one');");
    await c.sees(`id: ${h + 1}\n`);
    await c.sees(': keep-alive');
    process.kill(c.pid, 'SIGTERM');
    const r = await c.exited;
    assertSanitizerClean(r.stderr, 'sync-events');
    assert.equal(r.code, 0, r.stderr);
    const items = blocks(r.text());
    assert.deepEqual(ids(items), [h + 1]);
    assert.deepEqual(items.pop(), { comments: [], event: 'bye', id: String(h + 1), data: `{"version":${h + 1}}` });
  });

  test(`Last-Event-ID overrides since; resync outside the retained log (${backend})`, { skip }, async () => {
    const app = await app0(backend);
    app.exec("INSERT INTO todos (title) VALUES ('a'), ('b'), ('c');");
    events(app, 'since=0');
    assert.deepEqual(ids(blocks(events(app, 'since=0', { 'Last-Event-ID': '2' }).text())), [3]);
    app.exec("UPDATE _rhtmx_sync_state SET value = 2 WHERE key = 'horizon';");
    for (const q of ['since=1', 'since=4']) {
      const items = blocks(events(app, q).text());
      assert.deepEqual(items.pop(), { comments: [], event: 'resync', data: '{"version":3}' }, q);
    }
    assert.deepEqual(ids(blocks(events(app, 'since=2').text())), [3]);
  });

  test(`input is declared: bad values are 400, unknown entities 404, other methods 405 (${backend})`, { skip }, async () => {
    const app = await app0(backend);
    const cases = [
      ['since=-1', {}, 400], ['since=x', {}, 400], ['since=1&since=2', {}, 400], ['mode=fast', {}, 400],
      ['', { 'Last-Event-ID': 'abc' }, 400], ['entities=todos,nope', {}, 404], ['entities=a%20b', {}, 404],
    ];
    for (const [query, headers, status] of cases) {
      const r = events(app, query, headers);
      assert.equal(r.status, status, `${query} ${JSON.stringify(headers)}: ${r.text()}`);
      assert.equal(r.headers['content-type'], 'application/json');
    }
    const post = runCgi('sync-events', { config: app.config, method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, OPTIONS');
  });

  test(`events.mode "poll" in the config and mode=stream: the server wins (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { config: { events: { mode: 'poll', poll_wait: 0 } } });
    const items = blocks(events(app, 'mode=stream').text());
    assert.deepEqual(items[1].comments, ['rhtmx-sync poll']);
    assert.equal(items.pop().event, 'bye');
  });

  test(`auth mode token: 401 without a token, 403 for an entity the token leaves out, owners see their rows (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { token: true,
      schema: `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, user_id INTEGER);
               CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT);`,
      config: { entities: [{ name: 'todos', owner_column: 'user_id' }, 'tags'], events: { poll_wait: 0 } },
    });
    assert.equal(events(app, 'since=0').status, 401);
    const auth = (sub, extra) => ({ Authorization: `Bearer ${app.token(sub, extra)}` });
    assert.equal(events(app, 'since=0', auth('1')).status, 200); // installs the triggers
    app.exec(`INSERT INTO todos (title, user_id) VALUES ('mine', 1), ('theirs', 2), ('nobody', NULL);
                 INSERT INTO tags (name) VALUES ('t');`);
    const mine = blocks(events(app, 'since=0', auth('1')).text()).filter((i) => i.event === 'message');
    assert.deepEqual(mine.map((i) => JSON.parse(i.data)).map((d) => [d.entity, d.id]), [['todos', 1], ['tags', 1]]);
    assert.equal(events(app, 'since=0&entities=todos', auth('1', { entities: ['tags'] })).status, 403);
    const only = blocks(events(app, 'since=0', auth('2', { entities: ['tags'] })).text()).filter((i) => i.event === 'message');
    assert.deepEqual(only.map((i) => JSON.parse(i.data).entity), ['tags']);
  });
}
