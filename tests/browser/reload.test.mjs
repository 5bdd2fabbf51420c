// Offline changes live in IndexedDB: a reload keeps them (shown, marked pending) and they are
// pushed later, once the server can be reached.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

test('offline changes survive a reload', { skip, timeout: 120000 }, async (t) => {
  const srv = h.startServer();
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  let failed = false;
  let page;
  t.after(async () => {
    if (failed) h.dumpLogs('page', page);
    await browser.close();
    srv.stop({ keep: failed });
  });
  const guard = (fn) => async (st) => { try { await fn(st); } catch (err) { failed = true; throw err; } };
  const before = h.dbTodos(srv);
  page = await h.openApp(ctx, srv);

  await t.test('queued changes are shown again after a reload', guard(async () => {
    await ctx.setOffline(true);
    await page.waitForSelector('rhtmx-sync-status[state=offline]');
    await h.addTodo(page, 'survives reload');
    await h.toggleTodo(page, 'Watch it sync');
    await page.waitForSelector('#todo-list li[data-done="1"][data-sync-pending] >> text=Watch it sync');
    // The server stays out of reach for pushes while the page reloads.
    await ctx.route('**/api/sync/todos', (route) => (route.request().method() === 'POST' ? route.abort('internetdisconnected') : route.continue()));
    await ctx.setOffline(false);
    await page.reload();
    await h.appReady(page);
    await page.waitForSelector('#todo-list li[data-sync-pending] >> text=survives reload', { timeout: 10000 });
    const shown = Object.fromEntries((await h.shownTodos(page)).map((x) => [x.title, x]));
    assert.equal(shown['Watch it sync'].done, true);
    assert.equal(shown['Watch it sync'].pending, true);
    assert.equal(await page.evaluate(() => RhtmxSync.pendingCount()), 2);
    assert.deepEqual(h.dbTodos(srv), before, 'the server has not seen them yet');
  }));

  await t.test('and are pushed once the server is reachable again',
    guard(async () => {
      await ctx.unroute('**/api/sync/todos');
      // No help from the test: the library's own retry (with backoff) finds the server.
      await h.waitIdle(page, 40000);
      const db = h.dbTodos(srv);
      assert.equal(db.filter((x) => x.title === 'survives reload').length, 1, 'created exactly once');
      assert.equal(db.find((x) => x.title === 'Watch it sync').done, true);
      await h.eventually(() => h.matchesDb(page, srv), { what: 'the page to show the server state' });
    }));
});
