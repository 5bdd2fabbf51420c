// Taking offline page loads away again: data-sync-offline="false" on the page removes the
// worker this library registered and its caches; the operator's kill switch (client-js with
// RHTMX_SYNC_SW=off answers sw.js with a worker that removes itself) does the same for every
// browser that loads a page, whatever the pages say.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

/* The rhtmx-sync workers and caches the page's origin has. */
function leftovers(page) {
  return page.evaluate(async () => ({
    workers: (await navigator.serviceWorker.getRegistrations()).map((r) => (r.active || r.waiting || r.installing || {}).scriptURL || '?'),
    caches: (await caches.keys()).filter((n) => n.startsWith('rhtmx-sync:')),
  }));
}

async function withWorker(t, name, fn) {
  const srv = h.startServer({ offline: true });
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  let page;
  let failed = false;
  t.after(async () => {
    if (failed) h.dumpLogs(name, page);
    await browser.close();
    srv.stop({ keep: failed });
  });
  try {
    page = await h.openApp(ctx, srv);
    await h.workerReady(page);
    const before = await leftovers(page);
    assert.equal(before.workers.length, 1);
    assert.match(before.workers[0], /\/api\/sync\/sw\.js\?precache=%2F$/);
    assert.ok(before.caches.length >= 2, `the worker keeps pages and the library: ${before.caches}`);
    await fn(srv, page, ctx);
  } catch (err) { failed = true; throw err; }
}

test('data-sync-offline="false" removes the worker and its caches', { skip, timeout: 120000 }, async (t) => {
  await withWorker(t, 'false', async (srv, page) => {
    srv.halt();
    srv.resume(['--offline', 'false']);
    await page.reload();
    await h.appReady(page);
    assert.equal(await page.getAttribute('script[data-sync-entities]', 'data-sync-offline'), 'false');
    await page.evaluate(() => RhtmxSync._debug.offline.done);
    assert.deepEqual(await leftovers(page), { workers: [], caches: [] });
    await h.waitIdle(page);
    assert.ok(await h.matchesDb(page, srv), 'the page still syncs');
  });
});

test('the kill switch (RHTMX_SYNC_SW=off) removes the worker, whatever the page says', { skip, timeout: 120000 }, async (t) => {
  await withWorker(t, 'kill', async (srv, page, ctx) => {
    srv.halt();
    srv.resume(['--sw-off']);
    // The page still says data-sync-offline="true": the browser's update check gets the
    // kill switch, which deletes the caches as it installs, and once it takes over (as soon
    // as Chromium has stopped the old worker as idle; should an event restart the old worker
    // meanwhile, docs/CLIENT.md "Updates", once the site's pages are closed: the old worker,
    // still active meanwhile, may keep pages again) deletes them again and unregisters
    // itself.
    await page.reload();
    await h.appReady(page);
    const gone = async (p) => { const l = await leftovers(p); return l.workers.length === 0 && l.caches.length === 0; };
    let removed = await h.eventually(() => gone(page), { what: 'the worker to be gone', timeout: 5000 }).catch(() => false);
    if (!removed) {
      console.log('the kill switch was kept waiting while the page was open: closing it');
      await page.close();
      page = await h.openApp(ctx, srv);
      removed = await h.eventually(() => gone(page), { what: 'the worker and its caches to be gone', timeout: 20000 });
    }
    assert.ok(removed);
    await h.waitIdle(page);
    assert.ok(await h.matchesDb(page, srv), 'the page still syncs');
  });
});
