// Concurrent writers and readers on one database, for a bounded time: pushers
// through lighttpd (three FastCGI sync-push processes) and as plain CGI (a
// process per push, spawned here), the PHP-style writer (the sqlite3 shell, a
// loop of INSERT/UPDATE/DELETE with a busy timeout, as PDO has), a puller and an
// event stream reading all along.
//
// What must hold: no client ever gets "database is locked" or any 5xx; every
// committed change is in the log exactly once (the log has as many entries as
// the writers made changes, with versions 1..head and no gap, and replaying it
// gives the table as it is); the stream sees every version once, in order; the
// puller's pages never repeat a version and its replica ends equal to the table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { makeApp, sql, bin, startLighttpd, openEvents, parseCgi, assertSanitizerClean, childrenOf } from '../harness/rhtmx.mjs';
import { assertIntact } from '../harness/fault.mjs';

const SECONDS = 12;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const head = (db) => Number(sql(db, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head';").trim());

/** One push as plain CGI: a fresh sync-push process, like mod_cgi runs it. */
function cgiPush(app, body) {
  return new Promise((resolve, reject) => {
    const env = {
      PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? '', UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? '',
      GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', REQUEST_METHOD: 'POST', PATH_INFO: '/todos',
      SCRIPT_NAME: '/api/sync', CONTENT_TYPE: 'application/json', CONTENT_LENGTH: String(Buffer.byteLength(body)),
      RHTMX_SYNC_CONFIG: app.config,
    };
    const p = spawn(bin('sync-push'), [], { env });
    const out = [];
    let err = '';
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('close', (code) => {
      try {
        assertSanitizerClean(err, 'sync-push');
        assert.equal(code, 0, err);
        assert.doesNotMatch(err, /locked|busy/i, 'a CGI push waited out a lock and gave up');
        const r = parseCgi(Buffer.concat(out));
        resolve({ status: r.status, text: r.text(), stderr: err });
      } catch (e) { reject(e); }
    });
    p.stdin.end(body);
  });
}

/** The shell writer's loop; resolves to the number of rows its statements changed. */
async function shellWriter(db, stop) {
  let changed = 0;
  for (let round = 0; !stop.done; round++) {
    const n = "SELECT 'n', changes();";
    const mine = "(SELECT id FROM todos WHERE title LIKE 'shell %' ORDER BY random() LIMIT 1)";
    const script = `.timeout 30000
INSERT INTO todos (title) VALUES ('shell ${round}.a'); ${n}
INSERT INTO todos (title, done) VALUES ('shell ${round}.b', 1); ${n}
UPDATE todos SET title = title || '+' WHERE id = ${mine}; ${n}
DELETE FROM todos WHERE id = (SELECT min(id) FROM todos WHERE title LIKE 'shell %'); ${n}
BEGIN IMMEDIATE;
INSERT INTO todos (title) VALUES ('shell ${round}.c'); ${n}
UPDATE todos SET done = 1 - done WHERE id = ${mine}; ${n}
COMMIT;
`;
    const { code, stdout, stderr } = await new Promise((resolve) => {
      const p = spawn('sqlite3', ['-bail', '-batch', db]);
      let so = '', se = '';
      p.stdout.on('data', (d) => { so += d; });
      p.stderr.on('data', (d) => { se += d; });
      p.on('close', (c) => resolve({ code: c, stdout: so, stderr: se }));
      p.stdin.end(script);
    });
    assert.equal(code, 0, `the sqlite3 writer failed: ${stderr}`);
    for (const line of stdout.trim().split('\n')) changed += Number(line.split('|')[1]);
    await sleep(20);
  }
  return changed;
}

/**
 * A pusher: batches of creates, an update of one of its rows, an update through
 * a temporary id of the same batch, a delete of its oldest row; now and then the
 * same batch twice at once (a retry racing the original). Resolves to the
 * number of changes its batches applied (each one a logged write: it only
 * touches its own rows, so nothing conflicts and nothing is a no-op).
 */
async function pusher(name, send, stop) {
  const rows = [];
  let applied = 0, version = 0;
  for (let b = 0; !stop.done; b++) {
    const tmp = (i) => `tmp-${name}-${b}-${i}`;
    const changes = [0, 1, 2].map((i) => ({ mutation_id: `${b}.c${i}`, action: 'create', id: tmp(i),
      data: { title: `${name} ${b}.${i}` }, client_version: version }));
    changes.push({ mutation_id: `${b}.t`, action: 'update', id: tmp(0), data: { done: 1 }, client_version: version });
    if (rows.length > 0) {
      changes.push({ mutation_id: `${b}.u`, action: 'update', id: rows[Math.floor(Math.random() * rows.length)],
        data: { title: `${name} ${b} edited` }, client_version: version });
    }
    const gone = rows.length > 3 ? rows.shift() : undefined;
    if (gone !== undefined) changes.push({ mutation_id: `${b}.d`, action: 'delete', id: gone, client_version: version });
    const body = JSON.stringify({ client_id: name, changes });
    const twice = b % 5 === 4;
    const answers = await Promise.all(twice ? [send(body), send(body)] : [send(body)]);
    for (const r of answers) {
      assert.equal(r.status, 200, `${name}: ${r.status} ${r.text}`);
      assert.doesNotMatch(r.text, /locked|busy/);
    }
    if (twice) assert.equal(answers[1].text, answers[0].text, 'a racing retry answered differently');
    const a = JSON.parse(answers[0].text);
    assert.deepEqual([a.rejected, a.conflicts], [[], []], `${name}: ${answers[0].text}`);
    assert.equal(a.applied.length, changes.length);
    applied += a.applied.length;
    version = a.version;
    rows.push(...[0, 1, 2].map((i) => a.ids[tmp(i)]));
  }
  return applied;
}

/** Pull pages until stop, then to the head: every page 200, versions never repeat. */
async function puller(url, stop) {
  const replica = new Map(), seen = new Set();
  let since = 0, pages = 0;
  for (;;) {
    const final = stop.finished; // this pull began after every writer was done
    const r = await fetch(`${url}/api/sync/todos?since=${since}&limit=50`);
    const text = await r.text();
    assert.equal(r.status, 200, `pull: ${r.status} ${text}`);
    const p = JSON.parse(text);
    pages++;
    let prev = since;
    for (const c of p.changes) {
      assert.ok(c.version > prev, `pull: version ${c.version} after ${prev}`);
      assert.ok(!seen.has(c.version), `pull: version ${c.version} twice`);
      seen.add(c.version);
      prev = c.version;
      if (c.action === 'delete') replica.delete(c.id);
      else replica.set(c.id, c.data);
    }
    since = p.version;
    if (!p.has_more) {
      if (final) return { replica, since, pages };
      await sleep(30);
    }
  }
}

/** Follow the event stream from version v0, reconnecting with Last-Event-ID after a bye. */
async function follower(url, v0, stop) {
  const got = [];
  let last = v0;
  while (!stop.finished || last < stop.head) {
    const s = await openEvents(`${url}/api/sync/events?since=${v0}`, last > v0 ? { headers: { 'Last-Event-ID': String(last) } } : {});
    assert.equal(s.status, 200, 'events');
    for (;;) {
      let item;
      try {
        item = await s.take((i) => i.event !== undefined, 1000);
      } catch {
        if (s.isDone()) break;
        if (stop.finished && last >= stop.head) break;
        continue;
      }
      assert.notEqual(item.event, 'resync', 'the stream asked for a resync');
      if (item.event === 'message') {
        const v = Number(item.id);
        assert.equal(JSON.parse(item.data).version, v);
        got.push(v);
        last = v;
      }
      if (stop.finished && last >= stop.head) break;
    }
    s.close();
  }
  return got;
}

test(`concurrent pushers, a sqlite3 writer, a puller and a stream for ${SECONDS} s: nothing locked, lost or doubled`, async (t) => {
  const app = makeApp({ tag: 'concurrency' });
  const srv = await startLighttpd(app, { procs: { 'sync-push': 3 } });
  const viaHttp = async (body) => {
    const r = await fetch(`${srv.url}/api/sync/todos`, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
    return { status: r.status, text: await r.text() };
  };
  try {
    assert.equal((await viaHttp(JSON.stringify({ client_id: 'warm', changes: [] }))).status, 200);
    sql(app.db, "INSERT INTO todos (title) VALUES ('shell seed');");
    const v0 = head(app.db);
    const stop = { done: false, finished: false, head: Infinity };

    const stream = follower(srv.url, v0, stop);
    const pull = puller(srv.url, stop);
    const writers = [
      pusher('fcgi-a', viaHttp, stop), pusher('fcgi-b', viaHttp, stop), pusher('fcgi-c', viaHttp, stop),
      pusher('cgi-a', (body) => cgiPush(app, body), stop), pusher('cgi-b', (body) => cgiPush(app, body), stop),
      shellWriter(app.db, stop),
    ];
    await sleep(SECONDS * 1000);
    stop.done = true;
    const counts = await Promise.all(writers);
    stop.head = head(app.db);
    stop.finished = true;
    const [events, pulled] = await Promise.all([stream, pull]);

    const made = counts.reduce((a, b) => a + b, 0);
    t.diagnostic(`changes: ${counts.join(' + ')} = ${made}; head ${stop.head}; ${pulled.pages} pulls; ${events.length} events`);
    assert.ok(counts.every((n) => n > 0), `a writer got nothing done: ${counts}`);

    // The log: one entry per change made, versions v0+1..head without a gap.
    const log = sql(app.db, `SELECT count(*) AS n, min(version) AS lo, max(version) AS hi, count(DISTINCT version) AS d
                             FROM _rhtmx_sync_log WHERE version > ${v0};`, { json: true })[0];
    assert.deepEqual(log, { n: made, lo: v0 + 1, hi: v0 + made, d: made });
    assert.equal(stop.head, v0 + made);
    // Replaying the log gives the table: every row's newest entry is the row as it is.
    const newest = sql(app.db, `SELECT l.entity_id AS id, l.action, l.data FROM _rhtmx_sync_log AS l
                                WHERE l.version = (SELECT max(version) FROM _rhtmx_sync_log AS m
                                                   WHERE m.entity = l.entity AND m.entity_id = l.entity_id);`, { json: true });
    const table = new Map(sql(app.db, 'SELECT id, title, done FROM todos;', { json: true }).map((r) => [r.id, r]));
    const logged = new Map(newest.filter((l) => l.action !== 'delete').map((l) => [l.id, JSON.parse(l.data)]));
    assert.deepEqual(logged, table, 'the log replayed is not the table');
    assertIntact(app.db); // integrity_check, and the same comparison in SQL
    // Each pushed create is in the log once.
    const creates = sql(app.db, `SELECT count(*) AS n, count(DISTINCT entity_id) AS rows FROM _rhtmx_sync_log
                                 WHERE action = 'create' AND client_id IS NOT NULL AND client_id <> 'warm';`, { json: true })[0];
    assert.equal(creates.n, creates.rows);

    // The stream: every version once, in order. The puller: ends equal to the table.
    assert.deepEqual(events, Array.from({ length: made }, (_, i) => v0 + 1 + i));
    assert.equal(pulled.since, stop.head);
    assert.deepEqual(pulled.replica, table);

    assert.doesNotMatch(srv.errorLog(), /locked|busy/i);
    assert.equal(childrenOf(srv.pid).length >= 5, true, 'three sync-push, sync-pull and sync-events processes');
  } finally {
    await srv.stop();
  }
});
