// Offline writes through the example's htmx forms: with the network off (Chromium's offline
// emulation) they show at once, rendered from IndexedDB, and wait in _pending; with the
// network back they reach the server exactly once, in order, temporary ids become real, and
// another browser converges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

test('offline writes through htmx forms', { skip, timeout: 120000 }, async (t) => {
  const srv = h.startServer();
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
  const before = h.dbTodos(srv);
  const guard = (fn) => async (st) => { try { await fn(st); } catch (err) { failed = true; throw err; } };

  try {
    pageA = await h.openApp(ctxA, srv);
    pageB = await h.openApp(ctxB, srv);
    assert.ok(await h.matchesDb(pageA, srv), 'A starts with the server list');
    assert.equal(await pageA.getAttribute('rhtmx-sync-status', 'state'), 'online');
    await h.screenshot(pageA, 'online');

    await t.test('with the network off, add/complete/delete show at once and wait in _pending', guard(async () => {
      await ctxA.setOffline(true);
      await pageA.waitForSelector('rhtmx-sync-status[state=offline]');
      await h.addTodo(pageA, 'buy milk');
      await pageA.waitForSelector('#todo-list li[data-sync-pending] >> text=buy milk');
      assert.equal(await pageA.inputValue('#add-form input[name=title]'), '', 'the add form was reset');
      await h.addTodo(pageA, 'walk dog');
      await pageA.waitForSelector('#todo-list >> text=walk dog');
      await h.toggleTodo(pageA, 'Turn the network off');
      await h.deleteTodo(pageA, 'Try the demo');
      await pageA.waitForFunction(() => !document.querySelector('#todo-list').textContent.includes('Try the demo'));
      await h.toggleTodo(pageA, 'buy milk'); // a record that only has a temporary id
      await pageA.waitForSelector('#todo-list li[data-done="1"] >> text=buy milk');

      const shown = await h.shownTodos(pageA);
      assert.deepEqual(shown.map((x) => x.title), ['Turn the network off', 'Watch it sync', 'buy milk', 'walk dog']);
      const by = Object.fromEntries(shown.map((x) => [x.title, x]));
      assert.equal(by['Turn the network off'].done, true);
      assert.equal(by['Turn the network off'].pending, true);
      assert.equal(by['Watch it sync'].pending, false);
      assert.equal(by['buy milk'].done, true);
      assert.match(by['buy milk'].id, /^tmp-/);
      assert.equal(await pageA.evaluate(() => RhtmxSync.pendingCount()), 5);
      assert.equal(await pageA.getAttribute('rhtmx-sync-status', 'pending'), '5');
      assert.match(await pageA.textContent('rhtmx-sync-status'), /Offline.*5 pending/s);
      assert.deepEqual(h.dbTodos(srv), before, 'nothing reached the server while offline');
      await h.screenshot(pageA, 'offline-with-pending');
    }));

    await t.test('back online: pushed exactly once, in order; ids rewritten; the other browser converges',
      guard(async () => {
        const pushes = h.recordRequests(ctxA, '/api/sync/');
        const clientId = await pageA.evaluate(() => RhtmxSync.clientId);
        await ctxA.setOffline(false);
        await h.waitIdle(pageA, 20000);

        const db = h.dbTodos(srv);
        assert.deepEqual(db.map((x) => [x.title, x.done]),
          [['Turn the network off', true], ['Watch it sync', false], ['buy milk', true], ['walk dog', false]]);
        const creates = srv.sql(`SELECT entity_id, data FROM _rhtmx_sync_log WHERE client_id = '${clientId}' AND action = 'create' ORDER BY version`);
        assert.deepEqual(creates.map((r) => JSON.parse(r.data).title), ['buy milk', 'walk dog'], 'each create applied once, in order');
        const mine = srv.sql(`SELECT action, entity_id FROM _rhtmx_sync_log WHERE client_id = '${clientId}' ORDER BY version`);
        assert.deepEqual(mine.map((r) => r.action), ['create', 'create', 'update', 'delete', 'update'], 'the five mutations, in order, once each');
        const batches = pushes.filter((r) => r.method === 'POST').map((r) => JSON.parse(r.body));
        assert.ok(batches.length >= 2, 'the create and the update of its temporary id went in two batches');
        const sent = batches.flatMap((b) => b.changes);
        assert.deepEqual(sent.map((c) => c.action), ['create', 'create', 'update', 'delete', 'update'], 'sent in order');
        assert.equal(new Set(sent.map((c) => c.mutation_id)).size, 5, 'each mutation sent once');
        assert.ok(batches.every((b) => b.client_id === clientId));
        const tmpRefs = sent.filter((c) => c.action !== 'create' && String(c.id).startsWith('tmp-'));
        assert.deepEqual(tmpRefs, [], 'later changes to a created record carry its real id');

        await h.eventually(() => h.matchesDb(pageA, srv), { what: 'A to show the server state' });
        const shownA = await h.shownTodos(pageA);
        assert.ok(shownA.every((x) => !x.id.startsWith('tmp-') && !x.pending), 'no temporary ids or pending marks left');
        const stored = await pageA.evaluate(() => RhtmxSync.list('todos'));
        assert.ok(stored.every((r) => typeof r.id === 'number'), 'IndexedDB holds the real keys');
        assert.equal(stored.length, 4);

        await h.eventually(() => h.matchesDb(pageB, srv), { what: 'B to converge without reload' });
        // Own echoes: the five events A's push caused must not make A pull again. Since
        // going online A pulls once (its catch-up), however the pull and push interleave.
        await pageA.waitForTimeout(1500);
        const pulls = pushes.filter((r) => r.method === 'GET' && r.path === '/api/sync/todos');
        assert.ok(pulls.length <= 1, `A did not refetch because of its own echoes: ${pulls.map((r) => r.search)}`);
      }));
  } catch (err) { failed = true; throw err; }
});
