// How the client copes with a difficult path to the server: non-200 answers on the event
// stream (backoff, not a dead EventSource), a stream that ends (Last-Event-ID resume), a
// stream that is buffered (poll mode), and a cursor the server no longer has (410 resync).
// The odd answers are made by Playwright's request routing; the rest is the real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

async function setup(t, serverOptions) {
  const srv = h.startServer(serverOptions);
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  const env = { srv, browser, ctx, page: null, failed: false };
  t.after(async () => {
    if (env.failed) h.dumpLogs('page', env.page);
    await browser.close();
    srv.stop({ keep: env.failed });
  });
  env.guard = async (fn) => { try { await fn(); } catch (err) { env.failed = true; throw err; } };
  return env;
}

const isStream = (u) => new URL(u).pathname === '/api/sync/events';

test('non-200 answers on the event stream: reconnect with backoff', { skip, timeout: 120000 }, async (t) => {
  const env = await setup(t);
  const { ctx, srv } = env;
  await env.guard(async () => {
    const seen = [];
    await ctx.route((u) => isStream(u.href), (route) => {
      seen.push(Date.now());
      if (seen.length <= 4) return route.fulfill({ status: 503, contentType: 'application/json', headers: { 'Retry-After': '1' }, body: '{"error":{"code":"busy","message":"over capacity"}}' });
      return route.continue();
    });
    env.page = await h.openApp(ctx, srv);
    await h.eventually(() => seen.length >= 5, { timeout: 40000, what: 'five stream attempts' });
    const gaps = seen.slice(1).map((x, i) => x - seen[i]);
    assert.ok(gaps.every((g) => g >= 400), `no tight retry loop: ${gaps}`);
    assert.ok(gaps[3] > gaps[0], `the delay grows: ${gaps}`);
    await env.page.waitForSelector('rhtmx-sync-status[live=stream]', { timeout: 15000 });
    srv.sql("INSERT INTO todos (title) VALUES ('after the 503s')");
    await env.page.waitForSelector('#todo-list >> text=after the 503s', { timeout: 15000 });
  });
});

test('a stream that ends is resumed with Last-Event-ID', { skip, timeout: 120000 }, async (t) => {
  const env = await setup(t);
  const { ctx, srv } = env;
  await env.guard(async () => {
    const streams = [];
    const proxy = await h.startProxy(srv, (req, res) => {
      if (!req.url.startsWith('/api/sync/events')) return false;
      streams.push({ url: req.url, lastEventId: req.headers['last-event-id'] });
      if (streams.length > 1) return false; // the real server from now on
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
      res.end('retry: 300\n\nid: 3\ndata: {"entity":"todos","action":"update","id":2,"version":3}\n\n');
      return true;
    });
    t.after(() => proxy.close());
    env.page = await h.openApp(ctx, srv, { origin: proxy.origin });
    await h.eventually(() => streams.length >= 2, { what: 'the reconnect' });
    assert.equal(streams[0].lastEventId, undefined);
    assert.equal(streams[1].lastEventId, '3', `the reconnect carries Last-Event-ID: 3 (${JSON.stringify(streams)})`);
  });
});

test('a buffered stream: poll mode', { skip, timeout: 120000 }, async (t) => {
  const env = await setup(t);
  const { ctx, srv } = env;
  await env.guard(async () => {
    const polls = [];
    // Streaming requests never answer (a buffering proxy); poll requests go through.
    await ctx.route((u) => isStream(u.href), (route) => {
      if (new URL(route.request().url()).searchParams.get('mode') === 'poll') { polls.push(route.request().url()); return route.continue(); }
      return undefined; // held: no byte ever arrives
    });
    env.page = await h.openApp(ctx, srv);
    await h.eventually(() => polls.length >= 1, { timeout: 15000, what: 'a mode=poll request' });
    await env.page.waitForSelector('rhtmx-sync-status[live=poll]', { timeout: 15000 });
    srv.sql("INSERT INTO todos (title) VALUES ('seen by polling')");
    await env.page.waitForSelector('#todo-list >> text=seen by polling', { timeout: 30000 });
    assert.ok(polls.length >= 2, 'it polls again after each answer');
  });
});

test('a web server that buffers responses: poll mode, for real', { skip, timeout: 120000 }, async (t) => {
  const env = await setup(t, { buffered: true }); // lighttpd with server.stream-response-body = 0
  const { ctx, srv } = env;
  await env.guard(async () => {
    const streams = h.recordRequests(ctx, '/api/sync/events');
    env.page = await h.openApp(ctx, srv);
    await h.eventually(() => streams.some((r) => /mode=poll/.test(r.search)), { what: 'a switch to mode=poll' });
    // A poll answer ends as soon as it has an event, so this arrives well before poll_wait.
    const t0 = Date.now();
    srv.sql("INSERT INTO todos (title) VALUES ('through the buffer')");
    await env.page.waitForSelector('#todo-list >> text=through the buffer', { timeout: 20000 });
    assert.ok(Date.now() - t0 < 15000, 'delivered without waiting for the poll to time out');
    await env.page.waitForSelector('rhtmx-sync-status[live=poll]', { timeout: 10000 });
    srv.sql("INSERT INTO todos (title) VALUES ('and the next one')");
    await env.page.waitForSelector('#todo-list >> text=and the next one', { timeout: 20000 });
  });
});

test('410 resync_required: the entity is pulled again from 0', { skip, timeout: 120000 }, async (t) => {
  const env = await setup(t);
  const { ctx, srv } = env;
  await env.guard(async () => {
    env.page = await h.openApp(ctx, srv);
    // Leave the app while the server's log moves on without it.
    await env.page.goto('about:blank');
    // A row vanishes without a tombstone the client could see: only a full resync notices.
    // (As compaction past the retention horizon would: the row's whole history goes.)
    srv.sql('DELETE FROM todos WHERE id = 1; DELETE FROM _rhtmx_sync_log WHERE entity_id = 1;');
    const pulls = h.recordRequests(ctx, '/api/sync/todos');
    let answered410 = false;
    await ctx.route('**/api/sync/todos?*', (route) => {
      const since = Number(new URL(route.request().url()).searchParams.get('since'));
      if (since > 0 && !answered410) {
        answered410 = true;
        return route.fulfill({ status: 410, contentType: 'application/json',
          body: JSON.stringify({ error: { code: 'resync_required', message: 'cursor older than the log' }, version: 99 }) });
      }
      return route.continue();
    });
    await env.page.goto(srv.origin + '/');
    await h.appReady(env.page);
    await h.eventually(() => answered410 && pulls.some((r, i) => i > 0 && /since=0/.test(r.search)), { what: 'a pull from 0 after the 410' });
    await h.waitIdle(env.page);
    await h.eventually(async () => !(await env.page.evaluate(() => RhtmxSync.get('todos', 1))), { what: 'row 1 to leave IndexedDB' });
    const ids = (await env.page.evaluate(() => RhtmxSync.list('todos'))).map((r) => r.id).sort();
    assert.deepEqual(ids, [2, 3]);
  });
});
