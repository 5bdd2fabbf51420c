// A conflict under each strategy: browser A edits todo 2 while offline, the same row is
// changed at a shell meanwhile, A comes back. Whatever the strategy decides, both browsers
// end up showing the database, and A is told about the conflict.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

// title: both sides change it; done: only A changes it.
const EXPECT = {
  'last-write-wins': { title: 'from A', done: true },     // A's push is the later write
  'server-wins': { title: 'from the shell', done: false },
  'client-wins': { title: 'from A', done: true },
  merge: { title: null, done: true },                     // done only A changed: applied; title: the tie rule
};

for (const strategy of Object.keys(EXPECT)) {
  test(`conflict under ${strategy}`, { skip, timeout: 120000 }, async (t) => {
    const srv = h.startServer({ strategy });
    const browser = await h.launchBrowser();
    const ctxA = await browser.newContext();
    const ctxB = await browser.newContext();
    let failed = false;
    let pageA, pageB;
    t.after(async () => {
      if (failed) { h.dumpLogs('A', pageA); h.dumpLogs('B', pageB); }
      await browser.close();
      srv.stop({ keep: failed });
    });
    try {
      pageA = await h.openApp(ctxA, srv);
      pageB = await h.openApp(ctxB, srv);
      const conflict = pageA.evaluate(() => new Promise((resolve) => {
        document.body.addEventListener('rhtmx:sync:conflict', (e) => resolve(e.detail.detail), { once: true });
        setTimeout(() => resolve(null), 30000);
      }));

      await ctxA.setOffline(true);
      await pageA.waitForSelector('rhtmx-sync-status[state=offline]');
      await pageA.evaluate(() => RhtmxSync.put('todos', { id: 2, title: 'from A', done: 1 }));
      await pageA.waitForSelector('#todo-list li[data-sync-pending] >> text=from A');
      srv.sql("UPDATE todos SET title = 'from the shell' WHERE id = 2");
      await ctxA.setOffline(false);
      await h.waitIdle(pageA, 20000);

      const row = h.dbTodos(srv).find((x) => x.id === '2');
      const want = EXPECT[strategy];
      if (want.title !== null) assert.equal(row.title, want.title, `title under ${strategy}`);
      else assert.ok(['from A', 'from the shell'].includes(row.title));
      assert.equal(row.done, want.done, `done under ${strategy}`);

      const c = await conflict;
      assert.ok(c, 'A was told about the conflict (rhtmx:sync:conflict)');
      assert.ok(['server', 'client', 'merged'].includes(c.decision), `a decision: ${JSON.stringify(c)}`);
      assert.match(await pageA.textContent('rhtmx-sync-status'), /Your change to 'from A' was (kept|merged|not kept)/);

      const stored = await pageA.evaluate(() => RhtmxSync.get('todos', 2));
      assert.equal(stored.title, row.title, 'A\'s IndexedDB holds the decided row');
      assert.equal(Boolean(stored.done), row.done);
      await h.eventually(async () => (await h.matchesDb(pageA, srv)) && h.matchesDb(pageB, srv),
        { what: 'both browsers to show the database', timeout: 20000 });
    } catch (err) { failed = true; throw err; }
  });
}
