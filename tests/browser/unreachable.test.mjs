// The web server stops while the page is open, and Chromium still says it is online
// (navigator.onLine stays true): what the requests say is what counts. The status says
// "Server unreachable", adds through the form are kept and shown as pending, and once the
// server is back each one reaches its SQLite file exactly once, without a reload or a new
// write to wake the queue up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

test('web server stopped while the page is open: writes queued, pushed once after restart', { skip, timeout: 120000 }, async (t) => {
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
    srv.halt();
    const titles = ['while down 1', 'while down 2', 'while down 3'];
    for (const title of titles) {
      await h.addTodo(page, title);
      await page.waitForSelector(`#todo-list li[data-sync-pending] >> text=${title}`, { timeout: 10000 });
    }
    assert.equal(await page.evaluate(() => navigator.onLine), true, 'the browser itself thinks it is online');
    await page.waitForSelector('rhtmx-sync-status[state=unreachable]', { timeout: 20000 });
    assert.match(await page.textContent('rhtmx-sync-status .rhtmx-sync-label'), /Server unreachable/);
    assert.equal(await page.getAttribute('rhtmx-sync-status', 'pending'), '3', 'the three adds are queued');
    assert.equal(await page.inputValue('#add-form input[name=title]'), '', 'the form took the last add');
    await h.screenshot(page, 'server-unreachable');

    srv.resume();
    await h.waitIdle(page, 45000);
    const counts = h.titleCounts(srv);
    for (const title of titles) assert.equal(counts[title], 1, `${title} is in the database exactly once: ${JSON.stringify(counts)}`);
    await h.eventually(() => h.matchesDb(page, srv), { what: 'the page to show the database' });
  } catch (err) { failed = true; throw err; }
});

test('a proxy answering 502 in front of the server: unreachable, writes queued, pushed once after', { skip, timeout: 120000 }, async (t) => {
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
    // Everything but the page's own files gets the proxy's HTML error page.
    const proxied = (u) => /^\/(api\/sync\/(?!client\.js)|[a-z]+\.php)/.test(u.pathname);
    await ctx.route(proxied, (route) => route.fulfill({ status: 502, contentType: 'text/html', body: '<h1>502 Bad Gateway</h1>' }));
    await h.addTodo(page, 'behind a broken proxy');
    await page.waitForSelector('#todo-list li[data-sync-pending] >> text=behind a broken proxy', { timeout: 10000 });
    await page.waitForSelector('rhtmx-sync-status[state=unreachable]', { timeout: 20000 });
    assert.equal(await page.getAttribute('rhtmx-sync-status', 'pending'), '1');
    await ctx.unroute(proxied);
    await h.waitIdle(page, 30000);
    assert.equal(h.titleCounts(srv)['behind a broken proxy'], 1);
    await h.eventually(() => h.matchesDb(page, srv), { what: 'the page to show the database' });
  } catch (err) { failed = true; throw err; }
});
