// The example and the status element for people who use a keyboard or a screen reader, read
// through Chromium's accessibility tree (playwright-core's ariaSnapshot): buttons named with
// their todo and a pressed state, "not sent yet" apart from the title, focus kept on the list
// when rows are replaced, a live region that says a sync's start and end (not each page of
// rows), messages in the person's words that wrap inside the card, named dismiss buttons,
// and words the page can replace (another language).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

/* The accessible name and pressed state of the focused element, and whether it is in the list. */
const focused = (page) => page.evaluate(() => {
  const a = document.activeElement;
  return { name: a.getAttribute('aria-label'), pressed: a.getAttribute('aria-pressed'), inList: !!a.closest('#todo-list'), tag: a.tagName };
});
const row = (page, title) => page.locator('#todo-list li.todo', { has: page.locator('.title', { hasText: title }) });

test('accessibility of the example and the status element', { skip, timeout: 180000 }, async (t) => {
  const srv = h.startServer();
  const browser = await h.launchBrowser();
  let failed = false;
  const pages = [];
  t.after(async () => {
    if (failed) pages.forEach((p, i) => h.dumpLogs(`page ${i}`, p));
    await browser.close();
    srv.stop({ keep: failed });
  });
  const guard = (fn) => async (st) => { try { await fn(st); } catch (err) { failed = true; throw err; } };

  await t.test('the list in the accessibility tree: buttons named with the todo, pressed state, "not sent yet" apart',
    guard(async () => {
      const ctx = await browser.newContext();
      const page = await h.openApp(ctx, srv);
      pages.push(page);
      const tree = await page.locator('#todo-list').ariaSnapshot();
      assert.match(tree, /^- list "Todos":/, tree);
      assert.match(tree, /- button "Mark 'Try the demo' done" \[pressed\]/, tree);
      assert.match(tree, /- button "Mark 'Turn the network off' done"\n/, `not pressed: ${tree}`);
      assert.match(tree, /- button "Delete 'Watch it sync'"/, tree);

      await ctx.setOffline(true);
      await page.waitForSelector('rhtmx-sync-status[state=offline]');
      await h.addTodo(page, 'Buy bread');
      await page.waitForSelector('#todo-list li[data-sync-pending] >> text=Buy bread');
      const pending = await row(page, 'Buy bread').ariaSnapshot();
      assert.match(pending, /- text: Buy bread\s*, not sent yet/, `a phrase of its own: ${pending}`);
      assert.match(pending, /- button "Mark 'Buy bread' done"\n/, pending);
      const sent = await row(page, 'Watch it sync').ariaSnapshot();
      assert.doesNotMatch(sent, /not sent yet/, `only pending rows say it: ${sent}`);
      await ctx.setOffline(false);
      await h.waitIdle(page);
      await ctx.close();
    }));

  await t.test('focus stays on the list after a toggle or a delete, online and offline; it is not taken from elsewhere',
    guard(async () => {
      const ctx = await browser.newContext();
      const page = await h.openApp(ctx, srv);
      pages.push(page);
      const idle = async () => { await h.waitIdle(page); await h.eventually(() => h.matchesDb(page, srv), { what: 'the page to show the database' }); };

      await row(page, 'Turn the network off').locator('button.check').focus();
      await page.keyboard.press('Enter');
      await page.waitForSelector('#todo-list li[data-done="1"] >> text=Turn the network off');
      await idle();
      assert.equal(srv.sql("SELECT done FROM todos WHERE title = 'Turn the network off'")[0].done, 1);
      assert.deepEqual(await focused(page), { name: "Mark 'Turn the network off' done", pressed: 'true', inList: true, tag: 'BUTTON' });

      await row(page, 'Watch it sync').locator('button.remove').focus();
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => !document.querySelector('#todo-list').textContent.includes('Watch it sync'));
      await idle();
      assert.equal(srv.sql("SELECT count(*) AS n FROM todos WHERE title = 'Watch it sync'")[0].n, 0);
      assert.deepEqual(await focused(page), { name: "Delete 'Buy bread'", pressed: null, inList: true, tag: 'BUTTON' },
        'the row is gone: focus goes to the same button of the row after it');
      await row(page, 'Buy bread').locator('button.remove').focus();
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => !document.querySelector('#todo-list').textContent.includes('Buy bread'));
      await idle();
      assert.deepEqual(await focused(page), { name: "Delete 'Turn the network off'", pressed: null, inList: true, tag: 'BUTTON' },
        'the last row is gone: focus goes to the row before it');

      await ctx.setOffline(true);
      await page.waitForSelector('rhtmx-sync-status[state=offline]');
      await row(page, 'Try the demo').locator('button.check').focus();
      await page.keyboard.press('Enter');
      await page.waitForSelector('#todo-list li[data-done="0"][data-sync-pending] >> text=Try the demo');
      assert.deepEqual(await focused(page), { name: "Mark 'Try the demo' done", pressed: 'false', inList: true, tag: 'BUTTON' },
        'rendered from IndexedDB, focus on the same button');
      await ctx.setOffline(false);
      await idle();
      assert.deepEqual(await focused(page), { name: "Mark 'Try the demo' done", pressed: 'false', inList: true, tag: 'BUTTON' });

      await page.focus('#add-form input[name=title]');
      srv.sql("UPDATE todos SET title = 'Try it again' WHERE title = 'Try the demo'");
      await page.waitForSelector('#todo-list >> text=Try it again');
      assert.equal(await page.evaluate(() => document.activeElement.name), 'title', 'a row replaced meanwhile does not take the focus');
      await ctx.close();
    }));

  await t.test('the live region says the start and the end of a sync, not each page of rows', guard(async () => {
    const big = h.startServer({ seed: 2500 }); // three pages of 1,000
    try {
      const ctx = await browser.newContext();
      await ctx.addInitScript(() => {
        window.__said = [];
        window.__labels = [];
        /* Watches the element from the moment it is built, before the first pull answers. */
        const found = new MutationObserver(() => {
          const said = document.querySelector('rhtmx-sync-status .rhtmx-sync-announce');
          const label = document.querySelector('rhtmx-sync-status .rhtmx-sync-label');
          if (!said || !label) return;
          found.disconnect();
          new MutationObserver(() => window.__said.push(said.textContent)).observe(said, { childList: true, characterData: true, subtree: true });
          new MutationObserver(() => window.__labels.push(label.textContent)).observe(label, { childList: true, characterData: true, subtree: true });
        });
        found.observe(document, { childList: true, subtree: true });
      });
      const page = await h.openApp(ctx, big);
      pages.push(page);
      const labels = await page.evaluate(() => window.__labels);
      const counts = new Set(labels.filter((l) => /^Syncing todos… \d+ rows$/.test(l)));
      assert.ok(counts.size >= 2, `the label counts the rows page by page: ${JSON.stringify(labels)}`);
      assert.deepEqual(await page.evaluate(() => window.__said), ['Syncing todos…', 'Sync complete.'], 'said once at the start, once at the end');
      const host = await page.evaluate(() => {
        const el = document.querySelector('rhtmx-sync-status');
        return { live: el.getAttribute('aria-live'), role: el.getAttribute('role') };
      });
      assert.deepEqual(host, { live: null, role: null }, 'the element itself is not a live region');
      const tree = await page.locator('rhtmx-sync-status').ariaSnapshot();
      assert.match(tree, /- status: Sync complete\./, tree);

      await ctx.setOffline(true);
      await page.waitForSelector('rhtmx-sync-status[state=offline]');
      await ctx.setOffline(false);
      await h.waitIdle(page);
      const said = await page.evaluate(() => window.__said);
      assert.match(said[2], /^Offline\. Changes are kept on this device/, JSON.stringify(said));
      assert.equal(said[3], 'Back online.', JSON.stringify(said));
      await ctx.close();
    } finally {
      big.stop({ keep: failed });
    }
  }));

  await t.test('a write that cannot be saved: named by its todo in plain words, a named dismiss button, wrapped in the card',
    guard(async () => {
      const ctx = await browser.newContext({ viewport: { width: 360, height: 640 } });
      await h.fakeFullDisk(ctx);
      const page = await h.openApp(ctx, srv);
      pages.push(page);
      const long = 'Remember-the-unbreakably-long-word-that-no-line-can-hold-anywhere';
      await h.addTodo(page, 'Buy milk');
      await h.addTodo(page, long);
      await h.eventually(async () => (await h.matchesDb(page, srv)) && h.waitIdle(page).then(() => true), { what: 'both todos on the server' });
      await page.evaluate(() => { window.__diskFull = true; });
      await h.toggleTodo(page, 'Buy milk');
      await page.waitForSelector("rhtmx-sync-status .rhtmx-sync-problem >> text=Could not save 'Buy milk': storage is full");
      await h.toggleTodo(page, long);
      await page.waitForSelector(`rhtmx-sync-status .rhtmx-sync-problem >> text=Could not save '${long.slice(0, 20)}`);
      await page.evaluate(() => { window.__diskFull = false; });

      const tree = await page.locator('rhtmx-sync-status').ariaSnapshot();
      assert.match(tree, /- list "Sync messages":/, tree);
      assert.match(tree, /- text: "Could not save 'Buy milk': storage is full"/, tree);
      assert.doesNotMatch(tree, /QuotaExceeded|quota has been exceeded/, `the library's words stay in the console: ${tree}`);
      const dismiss = page.locator('rhtmx-sync-status').getByRole('button', { name: "Dismiss: Could not save 'Buy milk': storage is full", exact: true });
      assert.equal(await dismiss.count(), 1, `the dismiss button says what it dismisses: ${tree}`);

      const box = await page.evaluate(() => {
        const card = document.querySelector('main').getBoundingClientRect();
        const items = [document.querySelector('rhtmx-sync-status'), ...document.querySelectorAll('rhtmx-sync-status .rhtmx-sync-problem')];
        return {
          card: card.right,
          right: Math.max(...items.map((e) => e.getBoundingClientRect().right)),
          scroll: document.documentElement.scrollWidth,
          width: document.documentElement.clientWidth,
        };
      });
      assert.ok(box.right <= box.card + 0.5, `messages end inside the card: ${JSON.stringify(box)}`);
      assert.ok(box.scroll <= box.width, `nothing runs off the page: ${JSON.stringify(box)}`);
      await h.screenshot(page, 'messages-narrow');

      await dismiss.click();
      await page.waitForFunction(() => !document.querySelector('rhtmx-sync-status').textContent.includes("'Buy milk'"));
      await h.waitIdle(page);
      await ctx.close();
    }));

  await t.test('the page can give the words (another language)', guard(async () => {
    const ctx = await browser.newContext();
    await ctx.addInitScript(() => {
      window.RhtmxSyncMessages = { offline: 'Hors ligne', say_offline: 'Hors ligne : les modifications restent sur cet appareil.' };
    });
    const page = await h.openApp(ctx, srv);
    pages.push(page);
    await ctx.setOffline(true);
    await page.waitForSelector('rhtmx-sync-status[state=offline]');
    assert.equal(await page.textContent('rhtmx-sync-status .rhtmx-sync-label'), 'Hors ligne');
    assert.match(await page.locator('rhtmx-sync-status').ariaSnapshot(), /- status: "?Hors ligne : les modifications/);
    await page.evaluate(() => { RhtmxSync.messages.pending = '{n} en attente'; });
    await h.addTodo(page, 'du pain');
    await page.waitForSelector('rhtmx-sync-status .rhtmx-sync-pending >> text=1 en attente');
    await ctx.setOffline(false);
    await h.waitIdle(page);
    await ctx.close();
  }));
});
