// The JS API (window.RhtmxSync), the IndexedDB schema upgrade when the entity list changes,
// and storage quota reporting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

async function setup(t, contextOptions) {
  const srv = h.startServer();
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext(contextOptions);
  const env = { srv, browser, ctx, page: null, failed: false };
  t.after(async () => {
    if (env.failed) h.dumpLogs('page', env.page);
    await browser.close();
    srv.stop({ keep: env.failed });
  });
  env.guard = async (fn) => { try { await fn(); } catch (err) { env.failed = true; throw err; } };
  return env;
}

test('JS API: get, put, delete, list, pendingCount, on', { skip, timeout: 60000 }, async (t) => {
  const env = await setup(t);
  await env.guard(async () => {
    const page = env.page = await h.openApp(env.ctx, env.srv);
    await env.ctx.setOffline(true);
    await page.waitForSelector('rhtmx-sync-status[state=offline]');
    const r = await page.evaluate(async () => {
      const changed = [];
      const statuses = [];
      const off = RhtmxSync.on('changed', (d) => changed.push(d));
      RhtmxSync.on('status', (s) => statuses.push(s.pending));
      const domEvents = [];
      document.body.addEventListener('rhtmx:todos:changed', (e) => domEvents.push(e.detail.ids));
      const created = await RhtmxSync.put('todos', { title: 'via the API', done: 0 });
      const got = await RhtmxSync.get('todos', created.id);
      await RhtmxSync.put('todos', { id: 2, done: 1 });
      const two = await RhtmxSync.get('todos', '2');
      await RhtmxSync.delete('todos', 3);
      const list = (await RhtmxSync.list('todos')).map((x) => x.id);
      const pending = await RhtmxSync.pendingCount();
      const pendingTodos = await RhtmxSync.pendingCount('todos');
      off();
      await RhtmxSync.put('todos', { id: 1, title: 'after off' });
      await new Promise((res) => setTimeout(res, 50));
      let unknown = null;
      try { await RhtmxSync.get('nope', 1); } catch (e) { unknown = e.message; }
      return { created, got, two, list, pending, pendingTodos, changed, domEvents, statuses, unknown };
    });
    assert.match(String(r.created.id), /^tmp-/, 'a create gets a temporary id');
    assert.deepEqual(r.got, r.created);
    assert.equal(r.two.done, 1);
    assert.equal(r.two.title, 'Turn the network off', 'an update keeps the other fields');
    assert.deepEqual(r.list.filter((x) => typeof x === 'number').sort(), [1, 2]);
    assert.ok(r.list.includes(r.created.id));
    assert.equal(r.pending, 3);
    assert.equal(r.pendingTodos, 3);
    assert.equal(r.changed.length, 3, 'on(changed) fired per write until unsubscribed');
    assert.deepEqual(r.domEvents.slice(0, 3), [[r.created.id], [2], [3]]);
    assert.ok(r.statuses.includes(3), 'status listeners saw the pending count');
    assert.match(r.unknown, /not in data-sync-entities/);
    // The page's list follows the API writes (rendered from IndexedDB while offline).
    await page.waitForSelector('#todo-list >> text=via the API');
    await page.waitForSelector('#todo-list >> text=after off');
    assert.ok(!(await h.titles(page)).includes('Watch it sync'));
  });
});

test('IndexedDB schema upgrade when the entity list changes', { skip, timeout: 60000 }, async (t) => {
  const env = await setup(t);
  await env.guard(async () => {
    const pageFor = (entities) => `<!doctype html><meta charset=utf-8><title>x</title>
      <script src="/api/sync/client.js" data-sync-entities="${entities}"></script><body></body>`;
    await env.ctx.route(`${env.srv.origin}/one.html`, (r) => r.fulfill({ contentType: 'text/html', body: pageFor('todos') }));
    await env.ctx.route(`${env.srv.origin}/two.html`, (r) => r.fulfill({ contentType: 'text/html', body: pageFor('todos, notes:uuid') }));
    const pulls = h.recordRequests(env.ctx, '/api/sync/todos');
    const page = env.page = await env.ctx.newPage();
    const schema = () => page.evaluate(() => new Promise((resolve) => {
      const req = indexedDB.open('rhtmx-sync');
      req.onsuccess = () => {
        const db = req.result;
        const stores = [...db.objectStoreNames].sort();
        const keys = Object.fromEntries(stores.filter((s) => !s.startsWith('_')).map((s) => [s, db.transaction(s).objectStore(s).keyPath]));
        resolve({ version: db.version, stores, keys });
        db.close();
      };
    }));
    await page.goto(`${env.srv.origin}/one.html`);
    await h.appReady(page);
    await h.eventually(async () => (await page.evaluate(() => RhtmxSync.list('todos'))).length === 3, { what: 'todos pulled' });
    const s1 = await schema();
    assert.deepEqual(s1.stores, ['_meta', '_pending', 'todos']);
    const pullsBefore = pulls.length;
    await page.goto(`${env.srv.origin}/two.html`);
    await h.appReady(page);
    const s2 = await schema();
    assert.deepEqual(s2.stores, ['_meta', '_pending', 'notes', 'todos']);
    assert.ok(s2.version > s1.version, 'the database version went up');
    assert.deepEqual(s2.keys, { notes: 'uuid', todos: 'id' });
    assert.equal((await page.evaluate(() => RhtmxSync.list('todos'))).length, 3, 'todos were kept');
    await h.eventually(() => pulls.length > pullsBefore, { what: 'a todos pull' });
    assert.ok(pulls.slice(pullsBefore).every((r) => !/since=0(&|$)/.test(r.search)), 'todos kept their cursor');
  });
});

test('storage quota: nearly full is reported', { skip, timeout: 60000 }, async (t) => {
  const env = await setup(t);
  await env.guard(async () => {
    await env.ctx.addInitScript(() => {
      window.__quota = [];
      document.addEventListener('rhtmx:sync:quota', (e) => window.__quota.push(e.detail));
      navigator.storage.estimate = async () => ({ usage: 96 * 1024 * 1024, quota: 100 * 1024 * 1024 });
    });
    const page = env.page = await h.openApp(env.ctx, env.srv, { waitSynced: false });
    await page.waitForFunction(() => window.__quota.length > 0);
    assert.equal(await page.evaluate(() => window.__quota[0].low), true);
    await page.waitForSelector('rhtmx-sync-status .rhtmx-sync-problem:not([hidden])');
    assert.match(await page.textContent('rhtmx-sync-status'), /Storage is almost full \(96% used\)/);
  });
});

test('storage quota: a full disk is reported, not swallowed', { skip, timeout: 60000 }, async (t) => {
  const env = await setup(t);
  await env.guard(async () => {
    const page = env.page = await h.openApp(env.ctx, env.srv);
    await env.ctx.setOffline(true);
    await page.waitForSelector('rhtmx-sync-status[state=offline]');
    await page.evaluate(() => {
      window.__quota = [];
      document.addEventListener('rhtmx:sync:quota', (e) => window.__quota.push(e.detail));
      IDBObjectStore.prototype.add = function () { throw new DOMException('quota exceeded', 'QuotaExceededError'); };
    });
    await h.addTodo(page, 'no room for this');
    await page.waitForFunction(() => window.__quota.length > 0);
    assert.equal(await page.evaluate(() => window.__quota[0].full), true);
    assert.match(await page.textContent('rhtmx-sync-status'), /Storage is full|Could not save/);
    assert.equal(await page.inputValue('#add-form input[name=title]'), 'no room for this', 'the typed text is kept');
    assert.ok(!(await h.titles(page)).includes('no room for this'), 'nothing pretends to be saved');
    assert.equal(await page.evaluate(() => RhtmxSync.pendingCount()), 0);
  });
});

test('tokens: Authorization: Bearer on pulls, 401 surfaced, setToken', { skip, timeout: 60000 }, async (t) => {
  const env = await setup(t);
  await env.guard(async () => {
    const page = env.page = await env.ctx.newPage();
    await env.ctx.route(`${env.srv.origin}/token.html`, (r) => r.fulfill({ contentType: 'text/html',
      body: `<!doctype html><meta charset=utf-8><title>x</title><script>window.__auth = [];
        document.addEventListener('rhtmx:sync:unauthorized', (e) => window.__auth.push(e.detail));</script>
        <script src="/api/sync/client.js" data-sync-entities="todos" data-sync-token="old-token"
          data-sync-events="off"></script><body><rhtmx-sync-status></rhtmx-sync-status></body>` }));
    const seen = [];
    await env.ctx.route('**/api/sync/todos?*', (route) => {
      const auth = route.request().headers().authorization;
      seen.push(auth);
      if (auth !== 'Bearer new-token') {
        return route.fulfill({ status: 401, contentType: 'application/json', headers: { 'WWW-Authenticate': 'Bearer realm="rhtmx-sync"' },
          body: '{"error":{"code":"unauthorized","message":"token expired"}}' });
      }
      return route.continue();
    });
    await page.goto(`${env.srv.origin}/token.html`);
    await h.appReady(page);
    await page.waitForFunction(() => window.__auth.length > 0);
    assert.equal(seen[0], 'Bearer old-token');
    assert.equal(await page.evaluate(() => window.__auth[0].status), 401);
    assert.match(await page.textContent('rhtmx-sync-status'), /You are signed out: sign in again/);
    await page.evaluate(() => RhtmxSync.setToken('new-token'));
    await h.eventually(async () => (await page.evaluate(() => RhtmxSync.list('todos'))).length === 3, { what: 'a pull with the new token' });
    assert.ok(seen.includes('Bearer new-token'));
  });
});
