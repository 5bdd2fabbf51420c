// A damaged database page under a pull: a leaf of the change log (the table)
// or of the index the pull walks, overwritten in the file. The read fails part
// way through the page of changes. The answer must never look like a complete
// page: the old code closed it anyway ({"changes":[10 of them],"has_more":false,
// "version":head}), and a client stored the head as its cursor and never asked
// for the rest. Now a failure before anything left the process is a 500 in the
// error shape, and one after is cut off (CGI: the body stops short; FastCGI: the
// web server's connection is dropped), so no client can parse it as a page.
// ("Left the process": a plain answer of 150 KB has; the same compressed is
// still in the program's buffers, and becomes the 500.)
//
// Then the page is written back: the database is intact, the change log matches
// the table, every acknowledged write is there, and the very same pull (the
// client's retry) gets the whole page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { assertIntact } from '../harness/fault.mjs';
import { makeApp, sql, bin, runCgi, cgiCommand, parseCgi, assertSanitizerClean, startLighttpd, openEvents, logShows, UNDER_VALGRIND } from '../harness/rhtmx.mjs';

const ROWS = 3000;

/** An app with ROWS todos (one log entry each, versions 1..ROWS), all of it in the main file. */
function bigApp(tag) {
  const app = makeApp({ tag });
  sql(app.db, 'CREATE TABLE bump (x);'); // not synced: a write that touches nothing of the pull
  execFileSync(bin('rhtmx-sync'), ['init', '--config', app.config], { stdio: 'ignore' });
  sql(app.db, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS})
    INSERT INTO todos (title) SELECT printf('row %05d %s', i, hex(zeroblob(100))) FROM n;
    PRAGMA wal_checkpoint(TRUNCATE);`);
  return app;
}

/**
 * The leaf page of b-tree name holding its nth entry (1-based, in key order):
 * leaves in left-to-right order with their cell counts (dbstat). For an index
 * the count is approximate (interior pages hold entries too), which is enough
 * to land well inside a page of the pull.
 */
function leafAt(db, name, nth) {
  const leaves = sql(db, `SELECT pageno, ncell FROM dbstat WHERE name = '${name}' AND pagetype = 'leaf' ORDER BY path;`, { json: true });
  let seen = 0;
  for (const l of leaves) {
    seen += l.ncell;
    if (seen >= nth) return l.pageno;
  }
  throw new Error(`${name} has fewer than ${nth} entries`);
}

/** Overwrite page pageno of db with garbage; returns a function that writes the original back. */
function damage(db, pageno) {
  const size = Number(sql(db, 'PRAGMA page_size;').trim());
  const fd = fs.openSync(db, 'r+');
  const original = Buffer.alloc(size);
  fs.readSync(fd, original, 0, size, (pageno - 1) * size);
  fs.writeSync(fd, Buffer.alloc(size, 0xa5), 0, size, (pageno - 1) * size);
  fs.closeSync(fd);
  return () => {
    const f = fs.openSync(db, 'r+');
    fs.writeSync(f, original, 0, size, (pageno - 1) * size);
    fs.closeSync(f);
  };
}

/** Whether text is a whole pull page. */
function page(text) {
  try {
    const p = JSON.parse(text);
    return Array.isArray(p.changes) && typeof p.version === 'number' ? p : null;
  } catch { return null; }
}

const pullQuery = 'since=1500&limit=1000';

/** The pull as plain CGI, its output as the web server gets it (which may be nothing at all). */
function pullCgi(app, gzip) {
  const [cmd, ...args] = cgiCommand('sync-pull');
  const env = {
    PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? '', UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? '',
    GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', REQUEST_METHOD: 'GET', PATH_INFO: '/todos',
    QUERY_STRING: pullQuery, SCRIPT_NAME: '/api/sync', RHTMX_SYNC_CONFIG: app.config,
    ...(gzip ? { HTTP_ACCEPT_ENCODING: 'gzip' } : {}),
  };
  const r = spawnSync(cmd, args, { env, input: '', maxBuffer: 64 << 20, timeout: UNDER_VALGRIND ? 300_000 : 60_000 });
  const stderr = r.stderr.toString();
  assertSanitizerClean(stderr, 'sync-pull');
  assert.equal(r.status, 0, stderr);
  if (r.stdout.length === 0) return { empty: true, stderr };
  return { ...parseCgi(r.stdout), stderr };
}

/** The whole page a healthy database answers: versions 1501..2500, more to come. */
function assertWholePage(p) {
  assert.ok(p, 'no page');
  assert.equal(p.changes.length, 1000);
  assert.equal(p.changes[0].version, 1501);
  assert.equal(p.has_more, true);
  assert.equal(p.version, 2500);
}

// The table's leaf holding version 1510: the read fails at the tenth change,
// while the answer is still staged: a clean 500.
// The index's leaf near version 2100: the read fails some 150 KB into the
// answer; sent plain, the first 64 KB left long before: the answer is cut off.
const DAMAGE = [
  { what: 'a change-log page', tree: '_rhtmx_sync_log', nth: 1510, cut: false },
  { what: 'an index page', tree: 'idx_sync_entity_version', nth: 2100, cut: true },
];

for (const d of DAMAGE) {
  test(`${d.what} damaged, plain CGI: the pull never answers a page that looks complete; repaired, the retry gets it whole`, () => {
    const app = bigApp('damage-cgi');
    const repair = damage(app.db, leafAt(app.db, d.tree, d.nth));
    for (const gzip of [false, true]) {
      const r = pullCgi(app, gzip);
      assert.match(r.stderr, /malformed/, 'the damage is logged');
      if (!d.cut || gzip) {
        assert.equal(r.status, 500, r.empty ? '(nothing)' : r.text().slice(0, 200));
        assert.equal(r.headers['content-encoding'], undefined);
        assert.deepEqual(r.json(), { error: { code: 'database', message: "server error (details in the server's error log)" } });
        continue;
      }
      // Headers and part of the body went out before the failure: 200, cut short.
      assert.match(r.stderr, /answer already started, cut off/);
      assert.equal(r.status, 200);
      assert.ok(r.body.length > 16384, `${r.body.length} bytes`);
      const text = gzip ? (() => {
        try { return execFileSync('gzip', ['-dc'], { input: r.body, stdio: ['pipe', 'pipe', 'ignore'] }).toString(); } catch (e) { return e.stdout.toString(); }
      })() : r.text();
      assert.equal(page(text), null, `a cut answer parsed as a page: ${text.slice(-200)}`);
      assert.doesNotMatch(text, /"has_more"/);
    }
    repair();
    assertWholePage(page(runCgi('sync-pull', { config: app.config, path: '/todos', query: pullQuery }).text()));
    assertIntact(app.db);
  });
}

test('damaged pages behind lighttpd (FastCGI): no complete-looking page; repaired, the same process serves the retry whole', { skip: UNDER_VALGRIND && 'FastCGI: nothing runs under valgrind here' }, async (t) => {
  const app = bigApp('damage-fcgi');
  const srv = await startLighttpd(app);
  const get = async (headers = {}) => {
    try {
      const r = await fetch(`${srv.url}/api/sync/todos?${pullQuery}`, { headers });
      return { status: r.status, text: await r.text() };
    } catch (e) {
      return { status: 0, text: '', error: String(e.cause ?? e) };
    }
  };
  try {
    const acknowledged = [];
    for (const d of DAMAGE) {
      // The damage goes into the main file, so every page must be there rather
      // than newer in the -wal; and a commit after it makes the running
      // processes drop the pages they cached (SQLite trusts its cache while
      // the -wal says nothing changed).
      sql(app.db, 'PRAGMA wal_checkpoint(TRUNCATE);');
      const repair = damage(app.db, leafAt(app.db, d.tree, d.nth));
      sql(app.db, 'INSERT INTO bump VALUES (1);');
      if (!d.cut) {
        // An event stream resuming inside the damage: no event it could not
        // read, and no "bye" (which would carry a cursor past them). The
        // opening "schema" event (no id, no cursor) says only the fingerprints.
        const s = await openEvents(`${srv.url}/api/sync/events?since=1500`);
        await s.ended;
        assert.deepEqual(s.items.filter((i) => i.event && i.event !== 'schema'), [], 'an event from a stream that could not read');
        assert.ok(s.items.every((i) => i.event !== 'schema' || i.id === undefined));
        await logShows(srv.errorLog, /events: replay changes: database disk image is malformed/);
      }
      for (const enc of ['identity', 'gzip']) {
        const r = await get({ 'Accept-Encoding': enc });
        assert.ok(!(r.status === 200 && page(r.text)), `${d.what}, ${enc}: a complete-looking page: ${r.text.slice(-200)}`);
        if (!d.cut || enc === 'gzip') {
          assert.equal(r.status, 500, r.text);
          assert.equal(JSON.parse(r.text).error.code, 'database');
        } else {
          // Cut off: the body stops short. lighttpd then either drops the
          // connection in the middle of the chunked body or, as often, ends the
          // response there (curl says "transfer closed with outstanding read
          // data remaining" in the first case only); had it not sent the status
          // yet, it would answer its own 5xx.
          assert.ok(r.status === 0 || r.status >= 500 || (r.status === 200 && !/"has_more"/.test(r.text)), `${r.status} ${r.text.slice(-100)}`);
          t.diagnostic(`${d.what}, plain: ${r.status === 0 ? r.error : `status ${r.status}, ${r.text.length} bytes`}`);
        }
      }
      repair();
      // A push after the repair: its commit makes the processes read the file afresh.
      const tag = `after-${d.tree}`;
      const p = await fetch(`${srv.url}/api/sync/todos`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ client_id: 'c-dmg', changes: [{ mutation_id: tag, action: 'create', id: `tmp-${tag}`, data: { title: tag }, client_version: 0 }] }),
      });
      assert.equal(p.status, 200, await p.text());
      acknowledged.push(tag);
      const again = await get();
      assert.equal(again.status, 200);
      assertWholePage(page(again.text));
    }
    assert.match(srv.errorLog(), /answer already started, cut off: pull: database disk image is malformed/);
    assertIntact(app.db, acknowledged);
  } finally {
    await srv.stop();
  }
});
