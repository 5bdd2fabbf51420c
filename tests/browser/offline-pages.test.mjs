// Offline page loads (data-sync-offline, the service worker at /api/sync/sw.js): a page visited
// online opens again with the network off, by a reload and in a new tab, showing the synced
// data and the writes still queued; those reach the server exactly once when it is back.
// "Network off" is both Chromium's offline emulation for the pages and the web server
// stopped, so nothing the worker asks for can be answered either.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

test('pages visited online open offline, with their data and queued writes', { skip, timeout: 120000 }, async (t) => {
  const srv = h.startServer({ offline: true });
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  let failed = false;
  let page, tab;
  t.after(async () => {
    if (failed) { h.dumpLogs('page', page); h.dumpLogs('tab', tab); }
    await browser.close();
    srv.stop({ keep: failed });
  });
  const guard = (fn) => async (st) => { try { await fn(st); } catch (err) { failed = true; throw err; } };
  const offline = async () => { await ctx.setOffline(true); srv.halt(); };
  const online = async () => { srv.resume(); await ctx.setOffline(false); };

  page = await h.openApp(ctx, srv);
  await h.workerReady(page);
  // A row the page pulled after it was rendered: only IndexedDB has it, not the kept page.
  srv.sql("INSERT INTO todos (title) VALUES ('added at a shell')");
  await page.waitForSelector('#todo-list >> text=added at a shell');
  const synced = h.dbTodos(srv).map((x) => x.title);

  await t.test('a reload with the network off renders the page and its data', guard(async () => {
    await offline();
    await page.reload();
    await h.appReady(page);
    assert.equal(await page.evaluate(() => typeof window.htmx), 'object', 'htmx came from the kept copy');
    await page.waitForSelector('#todo-list[data-sync-rendered=local] >> text=added at a shell');
    assert.deepEqual(await h.titles(page), synced);
    assert.equal(await page.getAttribute('rhtmx-sync-status', 'state'), 'offline');
  }));

  await t.test('a second tab opened offline renders too', guard(async () => {
    tab = await ctx.newPage();
    tab.logs = [];
    tab.on('console', (m) => tab.logs.push(`${m.type()}: ${m.text()}`));
    await tab.goto(srv.url);
    await h.appReady(tab);
    await tab.waitForSelector('#todo-list >> text=added at a shell');
    assert.deepEqual(await h.titles(tab), synced);
    await tab.close();
  }));

  await t.test('an offline write is still shown as pending after an offline reload, then pushed once', guard(async () => {
    await h.addTodo(page, 'written offline');
    await page.waitForSelector('#todo-list li[data-sync-pending] >> text=written offline');
    await page.reload();
    await h.appReady(page);
    await page.waitForSelector('#todo-list li[data-sync-pending] >> text=written offline');
    assert.equal(await page.evaluate(() => RhtmxSync.pendingCount()), 1);
    assert.equal(h.titleCounts(srv)['written offline'], undefined, 'nothing reached the server');
    await online();
    await h.waitIdle(page, 40000);
    assert.equal(h.titleCounts(srv)['written offline'], 1, 'created exactly once');
    await h.eventually(() => h.matchesDb(page, srv), { what: 'the page to show the server state' });
    // A reload online again shows the server's page, and still one row.
    await page.reload();
    await h.appReady(page);
    await h.waitIdle(page);
    assert.equal(h.titleCounts(srv)['written offline'], 1);
    assert.ok(await h.matchesDb(page, srv));
  }));
});
