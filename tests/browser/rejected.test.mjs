// Changes the server can never apply are rejected: the client drops them from its queue,
// undoes them locally and says so; nothing is retried forever, nothing is silently lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

test('rejected changes are undone and surfaced', { skip, timeout: 120000 }, async (t) => {
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
  try {
    page = await h.openApp(ctx, srv);
    const before = h.dbTodos(srv);
    await page.evaluate(() => {
      window.__rejected = [];
      document.body.addEventListener('rhtmx:sync:rejected', (e) => window.__rejected.push(e.detail));
    });
    await ctx.setOffline(true);
    await page.waitForSelector('rhtmx-sync-status[state=offline]');
    // Both break the table's CHECK constraints (title 1..200 characters, done 0 or 1).
    await page.evaluate(() => RhtmxSync.put('todos', { title: 'x'.repeat(300), done: 0 }));
    await page.evaluate(() => RhtmxSync.put('todos', { id: 2, done: 7 }));
    await page.evaluate(() => RhtmxSync.put('todos', { title: 'a good one', done: 0 }));
    // And one for a row that is deleted on the server meanwhile.
    await page.evaluate(() => RhtmxSync.put('todos', { id: 3, done: 1 }));
    srv.sql('DELETE FROM todos WHERE id = 3');
    assert.equal(await page.evaluate(() => RhtmxSync.pendingCount()), 4);
    await ctx.setOffline(false);
    await h.waitIdle(page, 20000);

    const rejected = await page.evaluate(() => window.__rejected);
    assert.equal(rejected.length, 3, JSON.stringify(rejected));
    assert.deepEqual(rejected.map((r) => r.detail.code), ['constraint', 'constraint', 'not_found'], 'reported with the server\'s codes');
    assert.ok(rejected.every((r) => r.detail.reason), 'and its reason');
    assert.match(await page.textContent('rhtmx-sync-status'), /Could not save 'x+…': the server did not accept its values/, 'in the person\'s words, not SQLite\'s');
    assert.doesNotMatch(await page.textContent('rhtmx-sync-status'), /constraint/i);

    const db = h.dbTodos(srv);
    assert.deepEqual(db.slice(0, 2), before.slice(0, 2), 'the server rows are unchanged');
    assert.deepEqual(db.slice(2).map((x) => x.title), ['a good one'], 'the valid change went through');
    assert.equal(await page.evaluate(() => RhtmxSync.get('todos', 3)), undefined, 'the row deleted on the server is gone here too');
    const two = await page.evaluate(() => RhtmxSync.get('todos', 2));
    assert.equal(two.done, 0, 'the rejected update was undone locally');
    const all = await page.evaluate(() => RhtmxSync.list('todos'));
    assert.ok(!all.some((r) => String(r.title).startsWith('xxx')), 'the rejected create was removed locally');
    assert.equal(await page.evaluate(() => RhtmxSync.pendingCount()), 0, 'nothing is left to retry');
    await h.eventually(() => h.matchesDb(page, srv), { what: 'the page to show the server state' });
  } catch (err) { failed = true; throw err; }
});
