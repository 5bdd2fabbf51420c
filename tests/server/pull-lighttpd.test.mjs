// sync-pull as a long-lived FastCGI process behind a real lighttpd, and as plain CGI;
// each case on SQLite and on PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startLighttpd, childrenOf } from '../harness/rhtmx.mjs';
import { BACKENDS, TODOS, useBackends } from '../harness/backends.mjs';

const backends = useBackends();

function rssKb(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
  return parseInt(m[1], 10);
}

for (const backend of BACKENDS) {
  const skip = backends.skip(backend);

  test(`pull through lighttpd + FastCGI: contract, one process, no growth, clean stop (${backend})`, { skip }, async () => {
    const app = await backends.app(backend, TODOS);
    app.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
                 INSERT INTO todos (title) SELECT 'row ' || i FROM n;`);
    // ASan keeps freed memory in quarantine, which would read as growth.
    const asan = `${process.env.ASAN_OPTIONS ?? ''}:quarantine_size_mb=0:thread_local_quarantine_size_kb=0`;
    const srv = await startLighttpd(app, { env: { ASAN_OPTIONS: asan } });
    try {
      const r = await fetch(`${srv.url}/api/sync/todos?since=0&limit=100`);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), 'application/json');
      const body = await r.json();
      assert.equal(body.changes.length, 100);
      assert.equal(body.has_more, true);
      assert.equal(body.version, 100);

      // A write by the database's shell (sqlite3, psql) while the FastCGI process is running.
      app.exec("UPDATE todos SET title = 'changed' WHERE id = 7;");
      const inc = await (await fetch(`${srv.url}/api/sync/todos?since=300`)).json();
      assert.deepEqual(inc.changes.map((c) => [c.id, c.action, c.data.title]), [[7, 'update', 'changed']]);
      assert.equal(inc.version, 301);

      // The table gains a column while the process runs: the next pull carries it, under a
      // new schema fingerprint (SQLite's remade triggers log every row again; PostgreSQL's
      // trigger names no column and stays: docs/POSTGRES.md).
      app.exec("ALTER TABLE todos ADD COLUMN note TEXT; UPDATE todos SET note = 'n' WHERE id = 1;");
      const after = await (await fetch(`${srv.url}/api/sync/todos?since=301&limit=1000`)).json();
      assert.notEqual(after.schema, inc.schema);
      const row1 = after.changes.find((c) => c.id === 1);
      assert.equal(row1.data.note, 'n');
      assert.ok(after.changes.every((c) => 'note' in c.data));

      const errors = await fetch(`${srv.url}/api/sync/unknown`);
      assert.equal(errors.status, 404);
      assert.equal((await errors.json()).error.code, 'not_found');

      // One long-lived process answers everything; its memory does not grow per request.
      const pids = childrenOf(srv.pid).filter((p) => fs.readlinkSync(`/proc/${p}/exe`).endsWith('/sync-pull'));
      assert.equal(pids.length, 1);
      const pullOnce = async () => { const x = await fetch(`${srv.url}/api/sync/todos?since=0&limit=200`); await x.arrayBuffer(); };
      for (let i = 0; i < 100; i++) await pullOnce();
      const before = rssKb(pids[0]);
      for (let i = 0; i < 1000; i++) await pullOnce();
      const grown = rssKb(pids[0]) - before;
      assert.ok(grown < 2048, `RSS grew by ${grown} kB over 1000 requests`);
      assert.deepEqual(childrenOf(srv.pid).filter((p) => fs.readlinkSync(`/proc/${p}/exe`).endsWith('/sync-pull')), pids);
    } finally {
      await srv.stop();
    }
  });

  test(`pull through lighttpd + plain CGI (mod_cgi) (${backend})`, { skip }, async () => {
    const app = await backends.app(backend, TODOS);
    app.exec("INSERT INTO todos (title) VALUES ('cgi');");
    const srv = await startLighttpd(app, { cgi: true });
    try {
      const r = await fetch(`${srv.url}/api/sync/todos?since=0`);
      assert.equal(r.status, 200, await r.clone().text());
      assert.equal((await r.json()).changes[0].data.title, 'cgi');
      const bad = await fetch(`${srv.url}/api/sync/todos?limit=abc`);
      assert.equal(bad.status, 400);
    } finally {
      await srv.stop();
    }
  });
}
