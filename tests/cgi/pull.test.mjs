// sync-pull run as plain CGI: one request per process, the way mod_cgi runs it. Every case
// runs on both backends (SQLite and PostgreSQL), the app writing with its own SQL (the
// sqlite3 shell, psql); the answers must be the same on both, schema fingerprint aside (it
// is made from the declared column types, which differ between the two).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCgi } from '../harness/rhtmx.mjs';
import { BACKENDS, backendsForFile } from '../harness/backends.mjs';

const on = backendsForFile({ underValgrind: true });
const pull = (app, query = '', opts = {}) =>
  runCgi('sync-pull', { config: app.config, path: '/todos', query, ...opts });
/** n rows 'row 1' .. 'row n', written by the app before the triggers exist. */
const seeded = (n) => `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${n})
  INSERT INTO todos (title) SELECT 'row ' || i FROM n;`;

for (const backend of BACKENDS) {
  const skip = on.skip(backend);

  test(`a row inserted by the app's own SQL shows up in the next pull (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    const first = pull(app, 'since=0');
    assert.equal(first.status, 200);
    assert.equal(first.headers['content-type'], 'application/json');
    const { schema, ...rest } = first.json();
    assert.match(schema, /^[0-9a-f]{16}$/);
    assert.deepEqual(rest, { entity: 'todos', changes: [], has_more: false, version: 0 });

    app.exec("INSERT INTO todos (title) VALUES ('from the shell');");
    const next = pull(app, `since=${first.json().version}`);
    assert.deepEqual(next.json(), {
      entity: 'todos', has_more: false, version: 1, schema,
      changes: [{ id: 1, action: 'create', version: 1, data: { id: 1, title: 'from the shell', done: 0 } }],
    });
  });

  test(`rows that existed before the triggers sync completely at since=0, in pages (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { schema: seeded(1234) });
    const seen = new Map();
    const pages = [];
    let since = 0;
    for (;;) {
      const r = pull(app, `since=${since}&limit=500`).json();
      for (const c of r.changes) seen.set(c.id, c.data);
      pages.push([r.changes.length, r.has_more, r.version]);
      since = r.version;
      if (!r.has_more) break;
    }
    assert.deepEqual(pages, [[500, true, 500], [500, true, 1000], [234, false, 1234]]);
    assert.equal(seen.size, 1234);
    assert.deepEqual(seen.get(1234), { id: 1234, title: 'row 1234', done: 0 });
  });

  test(`updates and deletes reach incremental pulls; a full sync has live rows only (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    app.exec("INSERT INTO todos (title) VALUES ('a'), ('b'), ('c');");
    const v = pull(app, 'since=0').json().version;
    assert.equal(v, 3);
    app.exec(`UPDATE todos SET done = 1 WHERE id = 2; DELETE FROM todos WHERE id = 1;
              UPDATE todos SET title = 'c2' WHERE id = 3; UPDATE todos SET title = 'c3' WHERE id = 3;`);
    assert.deepEqual(pull(app, `since=${v}`).json().changes, [
      { id: 2, action: 'update', version: 4, data: { id: 2, title: 'b', done: 1 } },
      { id: 1, action: 'delete', version: 5 },
      { id: 3, action: 'update', version: 7, data: { id: 3, title: 'c3', done: 0 } },
    ]);
    assert.deepEqual(pull(app, 'since=0').json().changes.map((c) => [c.id, c.action]), [[2, 'create'], [3, 'create']]);
  });

  test(`a changed key is a delete of the old key and a create of the new one (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    pull(app, 'since=0'); // installs the triggers
    app.exec("INSERT INTO todos (title) VALUES ('a');");
    app.exec('UPDATE todos SET id = 10 WHERE id = 1;');
    assert.deepEqual(pull(app, 'since=1').json().changes, [
      { id: 1, action: 'delete', version: 2 },
      { id: 10, action: 'create', version: 3, data: { id: 10, title: 'a', done: 0 } },
    ]);
  });

  test(`errors have the contract shape and status (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    const cases = [
      [{ path: '/nope' }, 404, 'not_found', /unknown entity 'nope'/],
      [{ path: '', env: { REQUEST_URI: '/api/sync/' } }, 404, 'not_found', /unknown entity 'sync'/],
      [{ path: '/todos/1' }, 404, 'not_found', /no entity/],
      [{ query: 'since=abc' }, 400, 'bad_request', /'since' must be a non-negative integer/],
      [{ query: 'since=-1' }, 400, 'bad_request', /'since'/],
      [{ query: 'since=1&since=2' }, 400, 'bad_request', /given twice/],
      [{ query: 'limit=0' }, 400, 'bad_request', /'limit' must be within 1..1000/],
      [{ query: 'limit=1001' }, 400, 'bad_request', /'limit'/],
      [{ query: 'since=99999999999999999999999' }, 400, 'bad_request', /'since'/],
      [{ query: 'x='.padEnd(2000, 'y') }, 414, 'bad_request', /longer than 1024/],
      [{ method: 'POST' }, 405, 'method_not_allowed', /POST is not allowed/],
      [{ method: 'DELETE' }, 405, 'method_not_allowed', /DELETE/],
    ];
    for (const [opts, status, code, msg] of cases) {
      const r = pull(app, opts.query ?? '', opts);
      assert.equal(r.status, status, JSON.stringify(opts));
      const body = r.json();
      assert.deepEqual(Object.keys(body), ['error']);
      assert.equal(body.error.code, code);
      assert.match(body.error.message, msg);
    }
    assert.equal(pull(app, '', { method: 'PUT' }).headers.allow, 'GET, HEAD, POST, OPTIONS');
    // A cursor newer than the head: the database was replaced.
    const newer = pull(app, 'since=5');
    assert.equal(newer.status, 410);
    assert.equal(newer.json().error.code, 'resync_required');
  });

  test(`unknown query parameters (cache busters) are ignored (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    assert.equal(pull(app, '_=1700000000&since=0').status, 200);
  });

  test(`the entity comes from REQUEST_URI when the server sets no PATH_INFO (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    app.exec("INSERT INTO todos (title) VALUES ('x');");
    const r = runCgi('sync-pull', { config: app.config, path: '', env: { REQUEST_URI: '/api/sync/todos?since=0' }, query: 'since=0' });
    assert.equal(r.json().changes.length, 1);
  });

  test(`every config mistake is one stderr line naming the file, and a 500 in the error shape (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    const db = JSON.stringify(app.cfg.database);
    const cases = [
      [`{"database": ${db}, "entities": ["todos"]`, /invalid JSON/],
      [`{"database": ${db}, "entities": ["todos"], "auth": {"mode": "none"}, "extra": 1}`, /unknown key 'extra'/],
      [`{"database": ${db}, "entities": ["ghosts"], "auth": {"mode": "none"}}`, /entity 'ghosts': table 'ghosts' does not exist/],
      [`{"database": ${db}, "entities": [{"name": "todos", "key": "uuid"}], "auth": {"mode": "none"}}`, /has no key column 'uuid'/],
      [`{"database": ${db}, "entities": [{"name": "todos", "strategy": "newest"}], "auth": {"mode": "none"}}`, /unknown strategy 'newest'/],
    ];
    // A missing SQLite file (PostgreSQL's own connection errors are in cgi/pg-config).
    if (backend === 'sqlite') cases.push(['{"database": "missing.db", "entities": ["todos"], "auth": {"mode": "none"}}', /missing\.db/]);
    for (const [text, msg] of cases) {
      fs.writeFileSync(app.config, text);
      const r = pull(app, 'since=0');
      assert.equal(r.status, 500);
      assert.equal(r.json().error.code, 'config');
      assert.doesNotMatch(r.json().error.message, /rhtmx-sync\.json/, 'details stay in the log');
      const lines = r.stderr.trim().split('\n').filter((l) => !/warning/.test(l));
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0].includes(app.config), lines[0]);
      assert.match(lines[0], msg);
    }
    const r = runCgi('sync-pull', { config: path.join(app.dir, 'nope.json'), path: '/todos' });
    assert.equal(r.status, 500);
    assert.match(r.stderr, /nope\.json: cannot open config file/);
  });

  test(`the config is found beside the executable when RHTMX_SYNC_CONFIG is unset (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    // Copy the binary next to a config file, as a customer uploads both into cgi-bin.
    const exe = path.join(app.dir, 'sync-pull');
    fs.copyFileSync(path.join(process.env.RHTMX_BIN, 'sync-pull'), exe);
    fs.chmodSync(exe, 0o755);
    app.exec("INSERT INTO todos (title) VALUES ('beside');");
    const r = runCgi(exe, { path: '/todos', query: 'since=0' });
    assert.equal(r.status, 200, r.text());
    assert.equal(r.json().changes[0].data.title, 'beside');
  });

  test(`a large pull streams a complete, valid answer (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    // 1,000 rows of 2,000 characters and more (SQLite has no repeat(), PostgreSQL no printf()).
    const long = backend === 'sqlite' ? "printf('%.*c', 2000, 'x')" : "repeat('x', 2000)";
    app.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
              INSERT INTO todos (title) SELECT ${long} || i FROM n;`);
    const r = pull(app, 'since=0&limit=1000');
    assert.ok(r.body.length > 2_000_000);
    const body = r.json();
    assert.equal(body.changes.length, 1000);
    assert.equal(body.has_more, false);
    assert.equal(body.changes[999].data.title, `${'x'.repeat(2000)}1000`);
  });

  test(`several programs meeting a new database at the same moment all answer (${backend})`, { skip }, async () => {
    // The first requests after an upload: every program installs the triggers at once (and
    // with SQLite switches the file to WAL). SQLite refuses a WAL switch at once ("database
    // is locked", no busy wait) when two processes collide on it; PostgreSQL's installs take
    // turns on an advisory lock. Neither may reach a client. A race: each round gives it a
    // chance (about 1 in 25 processes failed in a release build before db_use_wal retried).
    const { spawn } = await import('node:child_process');
    const { cgiCommand, parseCgi, assertSanitizerClean, UNDER_VALGRIND } = await import('../harness/rhtmx.mjs');
    for (let round = 0; round < (UNDER_VALGRIND ? 2 : 10); round++) {
      const app = await on.app(backend, { schema: seeded(3) });
      const runs = Array.from({ length: 6 }, () => new Promise((resolve) => {
        const [cmd, ...args] = cgiCommand('sync-pull');
        const p = spawn(cmd, args, { env: { ...process.env, RHTMX_SYNC_CONFIG: app.config, GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'GET', PATH_INFO: '/todos', QUERY_STRING: 'since=0' } });
        const out = [], err = [];
        p.stdout.on('data', (d) => out.push(d));
        p.stderr.on('data', (d) => err.push(d));
        p.on('close', () => resolve({ out: Buffer.concat(out), err: Buffer.concat(err).toString() }));
      }));
      for (const r of await Promise.all(runs)) {
        assertSanitizerClean(r.err, 'sync-pull');
        const answer = parseCgi(r.out);
        assert.equal(answer.status, 200, r.err);
        // Each program saw the rows logged once, whoever installed the triggers.
        assert.deepEqual(answer.json().changes.map((c) => [c.id, c.version]), [[1, 1], [2, 2], [3, 3]]);
      }
      if (backend === 'sqlite') assert.equal(app.exec('PRAGMA journal_mode;').trim(), 'wal');
    }
  });
}
