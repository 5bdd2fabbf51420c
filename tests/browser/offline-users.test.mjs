// Two users in turn on one browser profile (a shared computer), with token auth and rows owned
// by their user (owner_column). Each user's local data is a database of their own: the second
// sees none of the first's rows or queued writes, the worker does not serve the first's kept
// page to the second, and the first's write queued before signing out is pushed, as the first,
// exactly once, when the first signs in again. The pages come from a small node server in
// front of the shipped lighttpd config, which renders /app.html for whoever is signed in (what
// a PHP session does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as h from './harness.mjs';

const skip = h.prerequisites();
process.env.RHTMX_SOURCE ??= h.ROOT;
process.env.RHTMX_BIN ??= h.BIN;
const { startLighttpdConf } = await import('../harness/apache.mjs');
const { makeTokenApp } = await import('../harness/token.mjs');

test('two users in turn on one profile', { skip, timeout: 120000 }, async (t) => {
  const app = makeTokenApp({
    schema: `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, user_id TEXT);
      INSERT INTO todos (title, user_id) VALUES ('a row of alice', 'alice'), ('a row of bob', 'bob');`,
    config: { entities: [{ name: 'todos', owner_column: 'user_id' }] },
  });
  const api = await startLighttpdConf(app);
  let signedIn = null;
  let up = true;
  const page = (user) => `<!doctype html><meta charset="utf-8"><title>todos</title>
<h1 id="who">${user}</h1>
<script src="/api/sync/client.js" data-sync-entities="todos" data-sync-token="${app.token(user)}"
        data-sync-offline="true" data-sync-events="off" data-debug="true"></script>
<ul id="list" data-sync-render="todos"><template><li>{{title}}</li></template></ul>\n`;
  const front = http.createServer((req, res) => {
    if (!up) { res.destroy(); return; }
    if (req.url === '/app.html') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(page(signedIn));
      return;
    }
    const fwd = http.request(`${api.url}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise((r) => front.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${front.address().port}`;
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  let failed = false;
  let tab;
  t.after(async () => {
    if (failed) h.dumpLogs('tab', tab);
    await browser.close();
    front.closeAllConnections();
    front.close();
    await api.stop();
  });
  const guard = (fn) => async (st) => { try { await fn(st); } catch (err) { failed = true; throw err; } };
  const titles = async () => (await tab.evaluate(() => RhtmxSync.list('todos'))).map((r) => r.title).sort();
  const open = async (user) => {
    signedIn = user;
    tab = await h.openApp(ctx, { origin }, { path: '/app.html', waitSynced: false });
    assert.equal(await tab.textContent('#who'), user);
    await h.workerReady(tab);
    await h.waitIdle(tab, 20000);
  };

  await t.test('alice queues a write offline and signs out', guard(async () => {
    await open('alice');
    assert.deepEqual(await titles(), ['a row of alice']);
    assert.equal(await tab.evaluate(() => RhtmxSync.user), 'alice');
    await ctx.setOffline(true);
    await tab.evaluate(() => RhtmxSync.put('todos', { title: 'queued by alice' }));
    assert.equal(await tab.evaluate(() => RhtmxSync.pendingCount()), 1);
    await tab.evaluate(() => RhtmxSync.logout());
    await ctx.setOffline(false);
    await tab.close();
  }));

  await t.test('bob sees none of alice\'s rows or writes, online and offline', guard(async () => {
    await open('bob');
    assert.deepEqual(await titles(), ['a row of bob']);
    assert.equal(await tab.evaluate(() => RhtmxSync.pendingCount()), 0);
    const dbs = await tab.evaluate(async () => (await indexedDB.databases()).map((d) => d.name).sort());
    assert.deepEqual(dbs, ['rhtmx-sync:u:alice', 'rhtmx-sync:u:bob'], 'a database per user');
    // Offline, the worker serves bob's kept page (never alice's), rendered from bob's data.
    await ctx.setOffline(true);
    up = false;
    await tab.reload();
    await h.appReady(tab);
    assert.equal(await tab.textContent('#who'), 'bob');
    await tab.waitForSelector('#list[data-sync-rendered=local] >> text=a row of bob');
    assert.deepEqual(await tab.$$eval('#list li', (lis) => lis.map((li) => li.textContent)), ['a row of bob']);
    up = true;
    await ctx.setOffline(false);
    await tab.close();
    assert.deepEqual(h.sql(app.db, "SELECT title FROM todos WHERE title = 'queued by alice'"), [], 'alice\'s write was not pushed while bob was signed in');
  }));

  await t.test('a token for another user stops sync in the page at once', guard(async () => {
    await open('bob');
    const sent = h.recordRequests(ctx, '/api/sync/todos');
    const detail = await tab.evaluate((token) => {
      let got = null;
      document.body.addEventListener('rhtmx:sync:identity', (e) => { got = e.detail; e.preventDefault(); });
      RhtmxSync.setToken(token);
      return got;
    }, app.token('alice'));
    assert.deepEqual(detail, { from: 'bob', to: 'alice' });
    await tab.evaluate(() => RhtmxSync.put('todos', { title: 'after the switch' }).catch(() => null));
    await tab.evaluate(() => RhtmxSync.sync().catch(() => null));
    assert.deepEqual(sent, [], 'nothing sent with the other user\'s token, nor bob\'s data with it');
    assert.equal(await tab.evaluate(() => RhtmxSync.user), 'bob');
    await tab.close();
  }));

  await t.test('alice signs in again: her queued write is pushed once, as hers', guard(async () => {
    await open('alice');
    assert.deepEqual(h.sql(app.db, "SELECT title, user_id FROM todos WHERE title = 'queued by alice'"), [{ title: 'queued by alice', user_id: 'alice' }]);
    assert.deepEqual(await titles(), ['a row of alice', 'queued by alice']);
  }));
});
