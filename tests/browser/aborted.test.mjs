// Requests cut off while Chromium says it is online (navigator.onLine stays true): before
// the server saw them, or after it answered (the answer is lost). Every add made through
// the form reaches the database exactly once, and a second press after a lost answer does
// not make a second row. The cuts are made by Playwright's request routing; the server,
// the database and the page are real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

async function setup(t) {
  const srv = h.startServer();
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  const env = { srv, browser, ctx, page: null, failed: false };
  t.after(async () => {
    if (env.failed) h.dumpLogs('page', env.page);
    await browser.close();
    srv.stop({ keep: env.failed });
  });
  env.guard = async (fn) => { try { await fn(); } catch (err) { env.failed = true; throw err; } };
  return env;
}

// A write, whichever way the page sends it: the app's own handler or the sync API.
const isWrite = (req) => req.method() === 'POST';
// What the page fetches besides the page itself and its scripts (the event stream is left alone).
const isData = (req) => {
  const p = new URL(req.url()).pathname;
  return isWrite(req) || p === '/list.php' || p === '/api/sync/todos';
};

// A small seeded generator, so a failing run can be replayed.
function prng(seed) {
  let x = seed >>> 0;
  return () => { x = (x * 1664525 + 1013904223) >>> 0; return x / 2 ** 32; };
}

test('requests aborted at random points: 100 adds, each exactly once', { skip, timeout: 240000 }, async (t) => {
  const env = await setup(t);
  const { ctx, srv } = env;
  await env.guard(async () => {
    env.page = await h.openApp(ctx, srv);
    const page = env.page;
    const seed = Number(process.env.RHTMX_SEED || Date.now() % 100000);
    console.log(`seed ${seed} (RHTMX_SEED=${seed} replays this run)`);
    const rnd = prng(seed);
    const cuts = { before: 0, after: 0, through: 0 };
    await ctx.route(() => true, async (route) => {
      const req = route.request();
      if (!isData(req)) return route.continue();
      const r = rnd();
      if (r < 0.15) { cuts.before++; return route.abort('failed'); }
      if (r < 0.3) {
        cuts.after++;
        try { await route.fetch(); } catch { /* the server's answer is what is lost */ }
        return route.abort('failed');
      }
      cuts.through++;
      return route.continue();
    });
    const titles = Array.from({ length: 100 }, (_, i) => `add ${i + 1}`);
    for (const title of titles) {
      await h.addTodo(page, title);
      // A person waits for the box to be empty before typing the next todo (or gives up
      // after a moment and types over what is left).
      await page.waitForFunction(() => document.querySelector('#add-form input[name=title]').value === '', null, { timeout: 1000 }).catch(() => {});
    }
    assert.equal(await page.evaluate(() => navigator.onLine), true);
    // The last add has been taken in (shown) before the page can be idle with nothing pending.
    await page.waitForSelector('#todo-list >> text="add 100"', { timeout: 10000 }).catch(() => {});
    await h.waitIdle(page, 120000);
    console.log(`cuts: ${JSON.stringify(cuts)}`);
    assert.ok(cuts.before > 0 && cuts.after > 0, 'requests were cut both before and after the server');
    const counts = h.titleCounts(srv);
    const wrong = titles.filter((x) => counts[x] !== 1).map((x) => `${x}: ${counts[x] || 0}`);
    assert.deepEqual(wrong, [], 'every add is in the database exactly once');
    await ctx.unroute(() => true);
    await h.eventually(() => h.matchesDb(page, srv), { what: 'the page to show the database', timeout: 30000 });
  });
});

test('a lost answer, then a second press: one row', { skip, timeout: 120000 }, async (t) => {
  const env = await setup(t);
  const { ctx, srv } = env;
  await env.guard(async () => {
    env.page = await h.openApp(ctx, srv);
    const page = env.page;
    let lost = 0;
    const writes = { started: 0, ended: 0 };
    ctx.on('request', (r) => { if (isWrite(r)) writes.started++; });
    ctx.on('requestfinished', (r) => { if (isWrite(r)) writes.ended++; });
    ctx.on('requestfailed', (r) => { if (isWrite(r)) writes.ended++; });
    await ctx.route(() => true, async (route) => {
      if (!isWrite(route.request()) || lost > 0) return route.continue();
      lost++;
      await route.fetch(); // the server applies it ...
      return route.abort('failed'); // ... and the answer never arrives
    });
    await h.addTodo(page, 'press twice');
    await h.eventually(() => lost > 0, { what: 'the write to reach the server' });
    await h.eventually(() => h.titleCounts(srv)['press twice'] === 1, { what: 'the first press to be applied' });
    // The person sees no confirmation and presses Add again, with whatever the box holds.
    await page.click('#add-form button');
    await h.waitIdle(page, 45000);
    await page.waitForTimeout(500); // a second request, if one is made, has started by now
    await h.eventually(() => writes.ended === writes.started, { what: 'every write request to end' });
    await h.waitIdle(page, 45000);
    assert.equal(h.titleCounts(srv)['press twice'], 1, 'one row for one todo');
    await h.eventually(() => h.matchesDb(page, srv), { what: 'the page to show the database' });
    assert.equal((await h.titles(page)).filter((x) => x === 'press twice').length, 1);
  });
});
