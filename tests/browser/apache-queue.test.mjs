// The queue never sticks on a size limit. Behind real Apache with mod_fcgid at its defaults
// (FcgidMaxRequestLen 131072: a longer request body gets Apache's own HTML 500), 200 writes
// of 2 KB queued offline (400 KB) all reach the database exactly once: batches are bounded
// in bytes, and a failed batch is split. One change that Apache can never take (140 KB) is
// reported as rejected in the problems list instead of being retried forever.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

test('200 queued writes of 2 KB behind Apache + mod_fcgid at its defaults arrive once each', { skip, timeout: 180000 }, async (t) => {
  const srv = await h.startApacheApp({ fcgid: 'default', pages: { 'index.html': h.libraryPage() } });
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.logs = [];
  page.on('console', (m) => page.logs.push(`${m.type()}: ${m.text()}`));
  let failed = false;
  t.after(async () => {
    if (failed) h.dumpLogs('page', page);
    await browser.close();
    await srv.stop();
  });
  try {
    await page.goto(`${srv.url}/`);
    await h.appReady(page);
    await h.waitIdle(page, 20000);

    await t.test('all 200 arrive, once each', async () => {
      await ctx.setOffline(true);
      await page.evaluate(async () => {
        for (let i = 0; i < 200; i++) {
          await RhtmxSync.put('todos', { title: `write ${String(i).padStart(3, '0')} `.padEnd(2048, 'x'), done: 0 });
        }
      });
      assert.equal(await page.evaluate(() => RhtmxSync.pendingCount()), 200);
      await ctx.setOffline(false);
      await page.waitForFunction(() => RhtmxSync.status().pending === 0, null, { timeout: 90000 });
      const rows = srv.sql('SELECT substr(title, 1, 9) AS t, count(*) AS n FROM todos GROUP BY t');
      assert.equal(rows.length, 200, 'every write is in the database');
      assert.ok(rows.every((r) => r.n === 1), 'each exactly once');
      assert.deepEqual(await page.evaluate(() => RhtmxSync.problems()), [], 'nothing was rejected');
    });

    await t.test('one change Apache never takes is rejected, not retried forever', async () => {
      await page.evaluate(() => RhtmxSync.put('todos', { title: 'too big '.padEnd(140000, 'y'), done: 0 }));
      await page.waitForFunction(() => RhtmxSync.status().pending === 0, null, { timeout: 60000 });
      const problems = await page.evaluate(() => RhtmxSync.problems());
      assert.equal(problems.length, 1, JSON.stringify(problems));
      assert.equal(problems[0].kind, 'rejected');
      assert.match(problems[0].message, /^Could not save 'too big y+…': /);
      assert.equal(srv.sql("SELECT count(*) AS n FROM todos WHERE title LIKE 'too big%'")[0].n, 0);
      await page.waitForSelector('rhtmx-sync-status li[data-kind=rejected]');
    });
  } catch (err) {
    failed = true;
    throw err;
  }
});
