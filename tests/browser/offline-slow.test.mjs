// A slow network: the page's server does not answer the navigation within 3 s, so the worker
// serves the copy kept at the last visit, which predates a row the page has since pulled into
// IndexedDB. The library hears from the worker that the page came from the copy and renders
// the list from IndexedDB at load: the row is there although no pull brings anything new
// (without that render the list would stay as old as the copy).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

test('a page served from the kept copy renders its regions from IndexedDB at load', { skip, timeout: 120000 }, async (t) => {
  const srv = h.startServer({ offline: true });
  let slow = false;
  let delayed = 0;
  const proxy = await h.startProxy(srv, (req, res) => {
    if (!slow || req.method !== 'GET' || new URL(req.url, 'http://x').pathname !== '/') return false;
    delayed++;
    // No answer within the worker's 3 s (and then an error page, which is not kept).
    setTimeout(() => { if (!res.destroyed) { res.writeHead(503, { 'Content-Type': 'text/plain' }); res.end('slow'); } }, 5000);
    return true;
  });
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  let failed = false;
  let page;
  t.after(async () => {
    if (failed) h.dumpLogs('page', page);
    await browser.close();
    proxy.close();
    srv.stop({ keep: failed });
  });
  try {
    page = await h.openApp(ctx, srv, { origin: proxy.origin });
    await h.workerReady(page);
    srv.sql("INSERT INTO todos (title) VALUES ('pulled after the visit')");
    await page.waitForSelector('#todo-list >> text=pulled after the visit');
    await h.waitIdle(page);

    slow = true;
    await page.reload();
    await h.appReady(page);
    assert.equal(delayed, 1, 'the navigation was held back');
    await page.waitForSelector('#todo-list[data-sync-rendered=local] >> text=pulled after the visit', { timeout: 10000 });
    assert.deepEqual(await h.titles(page), h.dbTodos(srv).map((x) => x.title));
    assert.equal(await page.evaluate(() => navigator.onLine), true, 'online all along');
  } catch (err) { failed = true; throw err; }
});
