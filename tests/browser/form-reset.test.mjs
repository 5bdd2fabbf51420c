// The add form is emptied the moment the person submits it, so what they type next is
// never erased by a reset that lands later (after IndexedDB answered). If the write cannot
// be stored, what was submitted comes back into the still-empty fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

test('typing right after an offline Add is kept', { skip, timeout: 60000 }, async (t) => {
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
    await ctx.setOffline(true);
    await page.waitForSelector('rhtmx-sync-status[state=offline]');
    // Submit, then type the next todo at once (the same task: before IndexedDB can answer).
    await page.evaluate(() => {
      const input = document.querySelector('#add-form input[name=title]');
      input.value = 'first';
      document.querySelector('#add-form').requestSubmit();
      input.value = 'typed meanwhile';
    });
    await page.waitForSelector('#todo-list li[data-sync-pending] >> text=first');
    assert.equal(await page.evaluate(() => RhtmxSync.pendingCount()), 1);
    await page.waitForTimeout(300); // a late reset, if there is one, has landed by now
    assert.equal(await page.inputValue('#add-form input[name=title]'), 'typed meanwhile', 'what was typed after the Add is kept');
  } catch (err) { failed = true; throw err; }
});
