// The first visit pulls the whole table in pages, showing progress; later visits pull only
// what changed since their cursor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();
const ROWS = 1200; // two pages at the server's default limit (1000)

test('paged initial sync, then incremental pulls', { skip, timeout: 120000 }, async (t) => {
  const srv = h.startServer({ seed: ROWS });
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
  const pulls = h.recordRequests(ctx, '/api/sync/todos');
  // Slow each page down so the progress can be seen (and photographed).
  await ctx.route('**/api/sync/todos?*', async (route) => {
    await new Promise((r) => setTimeout(r, 700));
    await route.continue();
  });

  await t.test('pages with progress', guard(async () => {
    page = await h.openApp(ctx, srv, { waitSynced: false });
    await page.waitForSelector('rhtmx-sync-status[state=syncing]');
    await page.waitForFunction(() => {
      const s = RhtmxSync.status();
      return s.progress && s.progress.loaded >= 500;
    }, null, { timeout: 15000 });
    const label = await page.textContent('rhtmx-sync-status .rhtmx-sync-label');
    assert.match(label, /Syncing todos… \d+ rows/);
    assert.equal(await page.isVisible('rhtmx-sync-status progress'), true, 'the progress bar shows');
    await h.screenshot(page, 'syncing');
    await h.waitIdle(page, 30000);
    const sinces = pulls.map((r) => Number(new URL(r.url).searchParams.get('since')));
    // Two pages, and no more: the event stream opens after them, at their cursor, so it
    // replays nothing that would pull again (it once opened at since=0 meanwhile).
    assert.deepEqual(sinces.length, 2, `two pages: ${sinces}`);
    assert.equal(sinces[0], 0, 'starts from 0');
    for (let i = 1; i < sinces.length; i++) assert.ok(sinces[i] > sinces[i - 1], `cursors increase: ${sinces}`);
    assert.equal(await page.evaluate(async () => (await RhtmxSync.list('todos')).length), ROWS);
    assert.equal(await page.isVisible('rhtmx-sync-status progress'), false, 'the progress bar is gone');
  }));

  await t.test('a reload pulls from its cursor, not from 0', guard(async () => {
    await ctx.unroute('**/api/sync/todos?*');
    srv.sql("INSERT INTO todos (title) VALUES ('one more')");
    const n = pulls.length;
    await page.reload();
    await h.appReady(page);
    await h.waitIdle(page);
    const after = pulls.slice(n).map((r) => Number(new URL(r.url).searchParams.get('since')));
    assert.ok(after.length >= 1 && after.every((s) => s > 0), `incremental: ${after}`);
    await h.eventually(async () => (await page.evaluate(async () => (await RhtmxSync.list('todos')).length)) === ROWS + 1,
      { what: 'the new row in IndexedDB' });
  }));
});
