// Where the event stream starts: on a first visit, at the cursor of the finished initial
// sync (not since=0, which would replay the whole change log); in a tab that takes the
// stream over from a closed leader, at the cursor stored in IndexedDB (not the one it had
// in memory when it loaded).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

async function setup(t) {
  const srv = h.startServer();
  const browser = await h.launchBrowser();
  const ctx = await browser.newContext();
  const env = { srv, browser, ctx, pages: [], failed: false };
  t.after(async () => {
    if (env.failed) env.pages.forEach((p, i) => h.dumpLogs(`tab ${i + 1}`, p));
    await browser.close();
    srv.stop({ keep: env.failed });
  });
  env.guard = async (fn) => { try { await fn(); } catch (err) { env.failed = true; throw err; } };
  return env;
}

const sinceOf = (r) => Number(new URL(r.url).searchParams.get('since'));
const head = (srv) => srv.sql('SELECT max(version) AS v FROM _rhtmx_sync_log')[0].v;

test('first visit: the stream starts at the initial sync\'s cursor', { skip, timeout: 120000 }, async (t) => {
  const env = await setup(t);
  const { ctx, srv } = env;
  await env.guard(async () => {
    // 500 logged changes (written after the triggers were installed).
    srv.sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) INSERT INTO todos (title) SELECT 'logged ' || i FROM n");
    const v = head(srv);
    assert.ok(v >= 500);
    const streams = h.recordRequests(ctx, '/api/sync/events');
    env.pages.push(await h.openApp(ctx, srv));
    await h.eventually(() => streams.length > 0, { what: 'the event stream request' });
    assert.ok(sinceOf(streams[0]) >= v, `the first stream starts at the pulled cursor ${v}, not before: ${streams.map((r) => r.search)}`);
  });
});

test('a new leader starts from the cursor in IndexedDB', { skip, timeout: 120000 }, async (t) => {
  const env = await setup(t);
  const { ctx, srv } = env;
  await env.guard(async () => {
    const streams = h.recordRequests(ctx, '/api/sync/events');
    const tab1 = await h.openApp(ctx, srv);
    await tab1.waitForFunction(() => RhtmxSync.isLeader);
    const tab2 = await h.openApp(ctx, srv);
    env.pages.push(tab1, tab2);
    // Changes the leader pulls (and stores the cursor of) while tab 2 only hears about them.
    srv.sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) INSERT INTO todos (title) SELECT 'later ' || i FROM n");
    const v = head(srv);
    await tab1.waitForSelector('#todo-list >> text=later 50', { timeout: 15000 });
    await h.eventually(async () => (await tab1.evaluate(() => RhtmxSync._debug.state.cursors.todos)) >= v, { what: 'the leader to store the new cursor' });
    await tab1.close();
    await tab2.waitForFunction(() => RhtmxSync.isLeader, null, { timeout: 10000 });
    await h.eventually(() => streams.some((r) => r.page === tab2), { what: 'the new leader to open the stream' });
    const first = streams.find((r) => r.page === tab2);
    assert.ok(sinceOf(first) >= v, `the new leader starts at the stored cursor ${v}: ${first.search}`);
  });
});
