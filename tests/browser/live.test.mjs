// Live updates: two browsers (contexts) on the example app. A todo added in one appears in
// the other without a reload; a todo written by sqlite3 at a shell appears in both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

test('live updates between browsers', { skip, timeout: 120000 }, async (t) => {
  const srv = h.startServer();
  const browser = await h.launchBrowser();
  const ctxA = await browser.newContext();
  const ctxB = await browser.newContext();
  let failed = false;
  let pageA, pageB;
  t.after(async () => {
    if (failed) { h.dumpLogs('A', pageA); h.dumpLogs('B', pageB); }
    await browser.close();
    srv.stop({ keep: failed });
  });
  const guard = (fn) => async (st) => { try { await fn(st); } catch (err) { failed = true; throw err; } };

  pageA = await h.openApp(ctxA, srv);
  pageB = await h.openApp(ctxB, srv);
  // Both leaders (one per browser) have their event stream open.
  await pageA.waitForSelector('rhtmx-sync-status[live=stream], rhtmx-sync-status[live=poll]');
  await pageB.waitForSelector('rhtmx-sync-status[live=stream], rhtmx-sync-status[live=poll]');
  await pageB.evaluate(() => { window.__sameDocument = true; });

  await t.test('a todo added in A appears in B without reload', guard(async () => {
    const changed = pageB.evaluate(() => new Promise((resolve) => {
      document.body.addEventListener('rhtmx:todos:changed', (e) => resolve(e.detail), { once: true });
    }));
    await h.addTodo(pageA, 'added in A');
    await pageB.waitForSelector('#todo-list >> text=added in A', { timeout: 15000 });
    assert.equal(await pageB.evaluate(() => window.__sameDocument), true, 'B was not reloaded');
    const detail = await changed;
    const id = h.dbTodos(srv).find((x) => x.title === 'added in A').id;
    assert.ok(detail.ids.map(String).includes(id), `the changed event names id ${id}: ${JSON.stringify(detail)}`);
    assert.ok(await h.matchesDb(pageA, srv));
  }));

  await t.test('a todo written by sqlite3 at a shell appears in both', guard(async () => {
    srv.sql("INSERT INTO todos (title, done) VALUES ('from the shell', 0)");
    await pageA.waitForSelector('#todo-list >> text=from the shell', { timeout: 15000 });
    await pageB.waitForSelector('#todo-list >> text=from the shell', { timeout: 15000 });
    srv.sql("UPDATE todos SET done = 1 WHERE title = 'from the shell'");
    srv.sql("DELETE FROM todos WHERE title = 'Watch it sync'");
    await h.eventually(async () => (await h.matchesDb(pageA, srv)) && h.matchesDb(pageB, srv), { what: 'both to show the shell edits' });
    const stored = await pageB.evaluate(() => RhtmxSync.list('todos'));
    assert.deepEqual(stored.map((r) => r.title).sort(), h.dbTodos(srv).map((r) => r.title).sort(), 'IndexedDB follows too');
    assert.equal(await pageB.evaluate(() => window.__sameDocument), true, 'B was not reloaded');
    await h.screenshot(pageB, 'online-live');
  }));
});
