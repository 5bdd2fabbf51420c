// A pull answer that breaks off (docs/PROTOCOL.md, Pull): the server cuts a page it cannot
// finish, so the client sees a 200 whose body does not parse, or a connection that drops
// before the body's end. The client must take either for a failure: keep its cursor, apply
// nothing of the broken page, and retry until a whole page comes. The broken answers are
// made by Playwright's request routing (tests/fault/damaged-page.test.mjs makes the real
// ones from a damaged database); the rest is the real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

test('a cut pull answer (body that does not parse, dropped connection): cursor kept, nothing applied, retried', { skip, timeout: 120000 }, async (t) => {
  const srv = h.startServer();
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  let page = null;
  let failed = false;
  t.after(async () => {
    if (failed) h.dumpLogs('page', page);
    await browser.close();
    srv.stop({ keep: failed });
  });
  try {
    page = await h.openApp(ctx, srv);
    const head = () => Number(srv.sql("SELECT value FROM _rhtmx_sync_state WHERE key = 'head'")[0].value);
    const cursor = head();
    // Leave while the server moves on: two new rows to pull on return.
    await page.goto('about:blank');
    srv.sql("INSERT INTO todos (title) VALUES ('first new'), ('second new')");
    const firstNew = srv.sql("SELECT id FROM todos WHERE title = 'first new'")[0].id;

    const seen = [];
    await ctx.route('**/api/sync/todos?*', (route) => {
      const since = Number(new URL(route.request().url()).searchParams.get('since'));
      seen.push(since);
      if (seen.length === 1) {
        // The start of a page, then nothing: what a server that hit a damaged page sends.
        return route.fulfill({ status: 200, contentType: 'application/json',
          body: `{"entity":"todos","changes":[{"id":${firstNew},"action":"create","data":{"id":${firstNew},"title":"from a broken page","done":0},"version":${cursor + 1}},{"id":` });
      }
      if (seen.length === 2) return route.abort('connectionreset');
      return route.continue();
    });
    await page.goto(srv.origin + '/');
    await h.appReady(page);
    await h.eventually(() => seen.length >= 3, { timeout: 30000, what: 'a third pull after two broken answers' });
    assert.deepEqual(seen.slice(0, 3), [cursor, cursor, cursor], 'the cursor moved on a broken answer');
    await h.waitIdle(page, 30000);
    await h.eventually(async () => (await h.titles(page)).includes('second new'), { what: 'the new rows shown' });
    const row = await page.evaluate((id) => RhtmxSync.get('todos', id), firstNew);
    assert.equal(row.title, 'first new', 'a row of the broken page was applied');
    assert.ok(!(await h.titles(page)).includes('from a broken page'));
    await h.eventually(() => h.matchesDb(page, srv), { what: 'the page to match the database' });
  } catch (err) {
    failed = true;
    throw err;
  }
});
