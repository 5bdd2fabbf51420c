// A full sync in pages while the app keeps writing, with and without a compacted
// log: whatever happens between two pages, the client ends with exactly the
// server's rows. Later pages of a full sync carry full=1 (so a cursor below the
// compaction horizon is not taken for a stale one); they must still carry the
// deletes of rows an earlier page sent, or the client keeps ghosts. Every case runs on
// both backends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { runCgi, bin, assertSanitizerClean } from '../harness/rhtmx.mjs';
import { BACKENDS, backendsForFile } from '../harness/backends.mjs';

const on = backendsForFile();

const OLD = '2000-01-01T00:00:00.000Z';

function compact(app) {
  const r = spawnSync(bin('rhtmx-sync'), ['compact', '--config', app.config], { encoding: 'utf8', env: { ...process.env, RHTMX_SYNC_CONFIG: '' } });
  assertSanitizerClean(r.stderr, 'rhtmx-sync');
  assert.equal(r.status, 0, r.stderr);
}

/** One full sync from nothing, page by page; between(page) runs after each page. */
function fullSync(app, { limit, between = () => {} }) {
  const rows = new Map();
  let cursor = 0;
  for (let page = 1; ; page++) {
    const q = `since=${cursor}&limit=${limit}${cursor > 0 ? '&full=1' : ''}`;
    const r = runCgi('sync-pull', { config: app.config, path: '/todos', query: q });
    assert.equal(r.status, 200, `page ${page} (${q}): ${r.text()}`);
    const body = r.json();
    for (const c of body.changes) {
      if (c.action === 'delete') rows.delete(c.id);
      else rows.set(c.id, c.data);
    }
    cursor = body.version;
    if (!body.has_more) break;
    between(page);
    assert.ok(page < 100, 'the full sync does not end');
  }
  return [...rows.values()].sort((a, b) => a.id - b.id);
}

const serverRows = (app) => app.rows('SELECT id, title, done FROM todos ORDER BY id');

async function seed(backend, { compacted }) {
  const app = await on.app(backend);
  runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=0' }); // installs the triggers
  app.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12)
               INSERT INTO todos (title) SELECT 'row ' || i FROM n;
               DELETE FROM todos WHERE id = 12;`);
  if (compacted) {
    app.exec(`UPDATE _rhtmx_sync_log SET created_at = '${OLD}';`);
    compact(app);
  }
  return app;
}

for (const [backend, compacted] of BACKENDS.flatMap((b) => [[b, false], [b, true]])) {
  const log = compacted ? 'a compacted log' : 'a whole log';
  const skip = on.skip(backend);
  test(`${log}: rows deleted, changed and added between pages (${backend})`, { skip }, async () => {
    const app = await seed(backend, { compacted });
    const got = fullSync(app, {
      limit: 3,
      between: (page) => {
        if (page === 1) app.exec("DELETE FROM todos WHERE id = 2; UPDATE todos SET done = 1 WHERE id = 1;");
        if (page === 2) app.exec("INSERT INTO todos (title) VALUES ('added'); DELETE FROM todos WHERE id = 5;");
      },
    });
    assert.deepEqual(got, serverRows(app));
  });

  test(`${log}: a quiet full sync (${backend})`, { skip }, async () => {
    const app = await seed(backend, { compacted });
    assert.deepEqual(fullSync(app, { limit: 3 }), serverRows(app));
  });
}
