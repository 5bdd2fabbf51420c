// A push the server applied but whose answer the page cannot store (the disk is full:
// every IndexedDB write fails with QuotaExceededError for a while). Once space returns the
// queue goes on by itself (no reload, no new write to wake it), the batch is sent again and
// the server's mutation ids keep it from being applied twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

test('a push answer that cannot be stored: the queue resumes once space returns, nothing doubled', { skip, timeout: 120000 }, async (t) => {
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
    await h.fakeFullDisk(ctx);
    const pushes = [];
    ctx.on('request', (r) => { if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/sync/todos') pushes.push(r.postData()); });
    page = await h.openApp(ctx, srv);
    await ctx.setOffline(true);
    await page.waitForSelector('rhtmx-sync-status[state=offline]');
    const titles = ['no room 1', 'no room 2', 'no room 3', 'no room 4', 'no room 5'];
    for (const [i, title] of titles.entries()) {
      await h.addTodo(page, title);
      await h.eventually(async () => (await page.evaluate(() => RhtmxSync.pendingCount())) === i + 1, { what: `${i + 1} queued adds` });
    }

    await page.evaluate(() => { window.__diskFull = true; });
    await ctx.setOffline(false);
    // The server applies the batch; the page cannot write its answer down.
    await h.eventually(() => titles.every((x) => h.titleCounts(srv)[x] === 1), { what: 'the batch to be applied on the server' });
    await page.waitForFunction(() => window.__quotaErrors > 0);
    await page.waitForSelector('rhtmx-sync-status .rhtmx-sync-problem >> text=Storage is full');
    const sentWhileFull = pushes.length;
    assert.ok(sentWhileFull >= 1);
    assert.equal(await page.evaluate(() => RhtmxSync.pendingCount()), 5, 'the queue still holds the batch');

    // Space comes back. Nothing else happens: no new write, no reload, no network change.
    await page.evaluate(() => { window.__diskFull = false; });
    await h.waitIdle(page, 60000);
    assert.ok(pushes.length > sentWhileFull, 'the batch was sent again');
    const counts = h.titleCounts(srv);
    assert.deepEqual(titles.map((x) => counts[x]), [1, 1, 1, 1, 1], 'each add is on the server once');
    const stored = await page.evaluate(() => RhtmxSync.list('todos'));
    assert.ok(stored.every((r) => typeof r.id === 'number'), 'the temporary ids became the server\'s');
    await h.eventually(() => h.matchesDb(page, srv), { what: 'the page to show the database' });
  } catch (err) { failed = true; throw err; }
});
