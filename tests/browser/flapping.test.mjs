// A flapping network: Chromium's offline emulation toggled every 500 ms for 20 s while a
// person keeps adding todos through the form. Five runs (each a fresh browser profile
// against the same server); in each, every add reaches the database exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();
const RUNS = 5;
const FLAP_MS = 500;
const DURATION_MS = 20000;

test(`offline/online every ${FLAP_MS} ms for ${DURATION_MS / 1000} s, ${RUNS} runs: every write once`, { skip, timeout: 300000 }, async (t) => {
  const srv = h.startServer();
  const browser = await h.launchBrowser();
  let failed = false;
  let page;
  t.after(async () => {
    if (failed) h.dumpLogs('page', page);
    await browser.close();
    srv.stop({ keep: failed });
  });
  try {
    for (let run = 1; run <= RUNS; run++) {
      const ctx = await browser.newContext();
      page = await h.openApp(ctx, srv);
      const end = Date.now() + DURATION_MS;
      let offline = false;
      const flapper = (async () => {
        while (Date.now() < end) {
          offline = !offline;
          await ctx.setOffline(offline);
          await new Promise((r) => setTimeout(r, FLAP_MS));
        }
        await ctx.setOffline(false);
      })();
      const titles = [];
      while (Date.now() < end) {
        const title = `run ${run} add ${titles.length + 1}`;
        titles.push(title);
        await h.addTodo(page, title);
        await page.waitForFunction(() => document.querySelector('#add-form input[name=title]').value === '', null, { timeout: 300 }).catch(() => {});
      }
      await flapper;
      // The last add has been taken in (shown) before the page can be idle with nothing pending.
      await page.waitForSelector(`#todo-list >> text="${titles[titles.length - 1]}"`, { timeout: 10000 }).catch(() => {});
      await h.waitIdle(page, 60000);
      const counts = h.titleCounts(srv);
      const wrong = titles.filter((x) => counts[x] !== 1).map((x) => `${x}: ${counts[x] || 0}`);
      assert.deepEqual(wrong, [], `run ${run}: every one of ${titles.length} adds is in the database exactly once`);
      await ctx.close();
    }
  } catch (err) { failed = true; throw err; }
});
