// Log retention end to end: `rhtmx-sync compact` (as cron runs it) removes old
// tombstones and superseded changes; a client that was away longer than the
// retention gets 410 resync_required, pulls from 0, and ends with exactly the
// server's rows; a client that was not away that long carries on incrementally.
// Every case runs on both backends (SQLite and PostgreSQL).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { runCgi, bin, assertSanitizerClean } from '../harness/rhtmx.mjs';
import { BACKENDS, backendsForFile } from '../harness/backends.mjs';

const on = backendsForFile({ underValgrind: true });

const OLD = '2000-01-01T00:00:00.000Z';

function cli(...args) {
  const r = spawnSync(bin('rhtmx-sync'), args, { encoding: 'utf8', env: { ...process.env, RHTMX_SYNC_CONFIG: '' } });
  assertSanitizerClean(r.stderr, 'rhtmx-sync');
  return r;
}

/** A browser's local copy: rows by id and a cursor, kept the way rhtmx-sync.js does. */
class Client {
  constructor(app, { limit = 1000 } = {}) { this.app = app; this.rows = new Map(); this.cursor = 0; this.resyncs = 0; this.limit = limit; }
  pullOnce(since, full) {
    return runCgi('sync-pull', { config: this.app.config, path: '/todos', query: `since=${since}&limit=${this.limit}${full ? '&full=1' : ''}` });
  }
  /** Pull until has_more is false; on 410, clear and start again from 0 (at most 3 times, like js/). */
  sync() {
    let full = this.cursor === 0; // later pages of a full sync say so (docs/PROTOCOL.md)
    for (;;) {
      const r = this.pullOnce(this.cursor, full);
      if (r.status === 410) {
        assert.ok(this.resyncs < 3, `resync loop: 410 again at cursor ${this.cursor} after a resync`);
        const body = r.json();
        assert.equal(body.error.code, 'resync_required');
        assert.ok(Number.isInteger(body.error.version ?? body.version), JSON.stringify(body));
        this.rows.clear();
        this.cursor = 0;
        full = true;
        this.resyncs++;
        continue;
      }
      assert.equal(r.status, 200, r.text());
      const page = r.json();
      for (const c of page.changes) {
        if (c.action === 'delete') this.rows.delete(c.id);
        else this.rows.set(c.id, c.data);
      }
      this.cursor = page.version;
      if (!page.has_more) return;
    }
  }
  sorted() { return [...this.rows.values()].sort((a, b) => a.id - b.id); }
}

const serverRows = (app) => app.rows('SELECT id, title, done FROM todos ORDER BY id');

for (const backend of BACKENDS) {
  const skip = on.skip(backend);

  test(`a client away longer than the retention resyncs and ends with exactly the server's rows (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { config: { retention: { days: 30 } } });
    app.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
                 INSERT INTO todos (title) SELECT 'row ' || i FROM n;`);
    const away = new Client(app);
    away.sync();
    assert.deepEqual(away.sorted(), serverRows(app));

    // While it is away: updates, deletes, new rows, a row deleted and re-created.
    app.exec(`UPDATE todos SET done = 1 WHERE id % 3 = 0;
                 UPDATE todos SET title = title || ' (edited)' WHERE id % 4 = 0;
                 DELETE FROM todos WHERE id IN (2, 5, 7, 11);
                 INSERT INTO todos (title) VALUES ('new 1'), ('new 2');
                 INSERT INTO todos (id, title) VALUES (5, 'five again');
                 DELETE FROM todos WHERE id = 21;`);
    // ...and all of that was long ago.
    app.exec(`UPDATE _rhtmx_sync_log SET created_at = '${OLD}';`);
    // A second client synced after those changes, before compaction.
    const recent = new Client(app);
    recent.sync();

    const before = Number(app.exec('SELECT count(*) FROM _rhtmx_sync_log;'));
    const r = cli('compact', '--config', app.config);
    assert.equal(r.status, 0, r.stderr);
    const removed = Number(r.stdout.match(/^removed\s+(\d+)/m)[1]);
    const horizon = Number(r.stdout.match(/^horizon\s+(\d+)/m)[1]);
    const head = Number(r.stdout.match(/^head\s+(\d+)/m)[1]);
    assert.ok(removed > 0);
    assert.equal(Number(app.exec('SELECT count(*) FROM _rhtmx_sync_log;')), before - removed);
    // One entry per live row is all that is left of the old past.
    assert.equal(Number(app.exec('SELECT count(*) FROM _rhtmx_sync_log;')), serverRows(app).length);
    assert.ok(horizon > away.cursor && horizon <= head);
    assert.match(cli('status', '--config', app.config).stdout, new RegExp(`^horizon\\s+${horizon}$`, 'm'));

    // New changes after compaction, seen by both.
    app.exec("UPDATE todos SET title = 'after compaction' WHERE id = 1; DELETE FROM todos WHERE id = 3;");

    const direct = away.pullOnce(away.cursor);
    assert.equal(direct.status, 410);
    assert.equal(direct.json().error.code, 'resync_required');
    away.sync();
    assert.equal(away.resyncs, 1);
    assert.deepEqual(away.sorted(), serverRows(app));

    // The recent client's cursor is at the head it saw, above the horizon: no resync.
    assert.ok(recent.cursor >= horizon);
    recent.sync();
    assert.equal(recent.resyncs, 0);
    assert.deepEqual(recent.sorted(), serverRows(app));

    // A fresh client's full sync is complete too.
    const fresh = new Client(app);
    fresh.sync();
    assert.deepEqual(fresh.sorted(), serverRows(app));
  });

  // A full sync in pages after a compaction: page 1 ends at the version of an old
  // row (kept forever, below the horizon). The next page says full=1, so the
  // server does not mistake its cursor for a stale one; without it, 410.
  test(`a paged full sync after a compaction completes (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=0' }); // installs the triggers
    app.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)
                 INSERT INTO todos (title) SELECT 'row ' || i FROM n;
                 DELETE FROM todos WHERE id = 10; UPDATE _rhtmx_sync_log SET created_at = '${OLD}';`);
    assert.equal(cli('compact', '--config', app.config).status, 0);
    const c = new Client(app, { limit: 3 });
    c.sync();
    assert.equal(c.resyncs, 0);
    assert.deepEqual(c.sorted(), serverRows(app));
    const stale = runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=3&limit=3' });
    assert.equal(stale.status, 410, 'an incremental cursor below the horizon still resyncs');
  });

  test(`compact keeps what is recent and is safe to run again and again (cron) (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    app.exec("INSERT INTO todos (title) VALUES ('a'), ('b'); UPDATE todos SET done = 1; DELETE FROM todos WHERE id = 2;");
    for (let i = 0; i < 2; i++) {
      const r = cli('compact', '--config', app.config);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^removed\s+0 /m);
      assert.match(r.stdout, /^horizon\s+0$/m);
      assert.match(r.stdout, /^retention\s+30 days$/m);
    }
    const c = new Client(app);
    c.sync();
    assert.deepEqual(c.sorted(), serverRows(app));
  });

  test(`retention.days decides what is old: within it everything stays, past it tombstones and superseded entries go (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { config: { retention: { days: 7 } } });
    runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=0' }); // installs the triggers
    app.exec("INSERT INTO todos (title) VALUES ('a'), ('b'), ('c'); UPDATE todos SET done = 1 WHERE id = 1; DELETE FROM todos WHERE id = 2;");
    const ago = (days) => new Date(Date.now() - days * 86_400_000).toISOString();
    const entries = () => app.rows('SELECT entity_id AS id, action, version FROM _rhtmx_sync_log ORDER BY version')
      .map((e) => [Number(e.id), e.action, e.version]);
    const all = entries();
    assert.deepEqual(all, [[1, 'create', 1], [2, 'create', 2], [3, 'create', 3], [1, 'update', 4], [2, 'delete', 5]]);

    app.exec(`UPDATE _rhtmx_sync_log SET created_at = '${ago(6)}';`);
    let r = cli('compact', '--config', app.config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^retention\s+7 days$/m);
    assert.match(r.stdout, /^removed\s+0 /m);
    assert.match(r.stdout, /^horizon\s+0$/m);
    assert.deepEqual(entries(), all);

    app.exec(`UPDATE _rhtmx_sync_log SET created_at = '${ago(8)}';`);
    r = cli('compact', '--config', app.config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^removed\s+3 /m);
    assert.match(r.stdout, /^horizon\s+5$/m);
    assert.deepEqual(entries(), [[3, 'create', 3], [1, 'update', 4]]);
    const stale = runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=1' });
    assert.equal(stale.status, 410);
    const c = new Client(app);
    c.sync();
    assert.deepEqual(c.sorted(), serverRows(app));
  });

  test(`events: a cursor below the horizon gets "resync" (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { config: { events: { poll_wait: 1 } } });
    app.exec("INSERT INTO todos (title) VALUES ('a'); UPDATE todos SET done = 1;");
    runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=0' }); // installs the triggers
    app.exec(`INSERT INTO todos (title) VALUES ('b'); UPDATE todos SET done = 1; DELETE FROM todos WHERE title = 'b';
                 UPDATE _rhtmx_sync_log SET created_at = '${OLD}';`);
    assert.equal(cli('compact', '--config', app.config).status, 0);
    const r = runCgi('sync-events', { config: app.config, query: 'entities=todos&since=1&mode=poll' });
    assert.equal(r.status, 200, r.text());
    assert.match(r.text(), /^event: resync$/m);
  });

  test(`sync-push compacts opportunistically after a successful push (no cron needed) (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    app.exec("INSERT INTO todos (title) VALUES ('keep'), ('gone');");
    runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=0' }); // installs the triggers
    app.exec(`INSERT INTO todos (title) VALUES ('a'), ('b'); DELETE FROM todos WHERE title = 'gone';
                 UPDATE _rhtmx_sync_log SET created_at = '${OLD}';`);
    const before = app.exec("SELECT count(*) FROM _rhtmx_sync_log WHERE action = 'delete';").trim();
    assert.equal(before, '1');
    const body = JSON.stringify({ client_id: 'c-1', changes: [{ mutation_id: 'm-1', id: 'tmp-1', action: 'create', data: { title: 'new' }, client_version: 0 }] });
    const r = runCgi('sync-push', { config: app.config, method: 'POST', path: '/todos', body, headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.status, 200, r.text());
    assert.equal(app.exec("SELECT count(*) FROM _rhtmx_sync_log WHERE action = 'delete';").trim(), '0', 'the old tombstone was compacted');
    assert.ok(Number(app.exec("SELECT value FROM _rhtmx_sync_state WHERE key = 'horizon';").trim()) > 0);
    assert.ok(Number(app.exec("SELECT value FROM _rhtmx_sync_state WHERE key = 'compacted_at';").trim()) > 0);
    const c = new Client(app);
    c.sync();
    assert.deepEqual(c.sorted(), serverRows(app));
  });
}
