// kill -9 of sync-push while its transaction is open, in the middle of a batch of
// 5,000 creates: afterwards the table and the change log hold none of the batch
// (all or nothing), and the client's retry of the very same batch applies it once.
//
// The moment is found, not guessed: the test waits until the -wal file grows
// (the open transaction spilled pages there), then asks for the write lock
// (BEGIN IMMEDIATE with no busy timeout, from the sqlite3 shell). Nobody else
// writes, so a refusal means the push holds the lock, i.e. its transaction is
// open with uncommitted frames on disk; the push process is then killed by pid.
// If the commit slipped in between the probe and the kill (the whole batch is
// there), that attempt proves nothing and the test tries again with a new batch;
// any attempt that leaves part of a batch fails it. Run both as plain CGI (the
// test spawns sync-push itself) and as lighttpd's FastCGI process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { spawn, execFile, execFileSync } from 'node:child_process';
import { makeApp, sql, bin, startLighttpd, childrenOf, assertSanitizerClean, parseCgi } from '../harness/rhtmx.mjs';
import { assertIntact } from '../harness/fault.mjs';

const N = 5000;
// How each attempt picks its moment (see killMidBatch).
const HOW = ['wal', 'wal', 'lock', 'lock'];
const ATTEMPTS = HOW.length;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** 1 if someone holds the write lock of db (a BEGIN IMMEDIATE without waiting is refused). */
function lockHeld(db) {
  return new Promise((resolve) => {
    execFile('sqlite3', ['-bail', db, 'BEGIN IMMEDIATE; ROLLBACK;'], (err, _out, stderr) => {
      if (!err) resolve(false);
      else if (/locked|busy/i.test(stderr)) resolve(true);
      else resolve(new Error(`probe failed: ${stderr}`));
    });
  });
}

// Rows big enough that the batch outgrows SQLite's page cache (2 MB) and spills
// uncommitted pages into the -wal file before it commits: recovery must ignore them.
const PAD = 'x'.repeat(300);
const batch = (client, tag) => ({
  client_id: client,
  changes: Array.from({ length: N }, (_, i) => ({
    mutation_id: `${tag}-${i}`, action: 'create', id: `tmp-${tag}-${i}`,
    data: { title: `${tag} row ${i} ${PAD}`, done: i % 2 }, client_version: 0,
  })),
});

/** A digest of the whole database's content (its .dump is too big to keep around). */
const digest = (db) => crypto.createHash('sha256')
  .update(execFileSync('sqlite3', ['-batch', db, '.dump'], { maxBuffer: 256 << 20 })).digest('hex');

const count = (db, where) => Number(sql(db, `SELECT count(*) FROM ${where};`).trim());

/** What of batch `tag` is in the database: rows, log entries, stored mutations. */
function traces(app, tag) {
  return {
    rows: count(app.db, `todos WHERE title LIKE '${tag} row %'`),
    log: count(app.db, `_rhtmx_sync_log WHERE data LIKE '%"${tag} row %'`),
    mutations: count(app.db, `_rhtmx_sync_mutations WHERE mutation_id LIKE '${tag}-%'`),
  };
}

/** After a successful retry: each row once, logged once, versions strictly increasing. */
function assertAppliedOnce(app, tag, answer) {
  assert.deepEqual(traces(app, tag), { rows: N, log: N, mutations: N });
  assert.equal(answer.applied.length, N);
  assert.equal(answer.rejected.length, 0);
  assert.equal(new Set(answer.applied).size, N, 'every create got its own key');
  const rows = sql(app.db, `SELECT count(DISTINCT title) AS titles, count(DISTINCT id) AS ids FROM todos WHERE title LIKE '${tag} row %';`, { json: true });
  assert.deepEqual(rows, [{ titles: N, ids: N }]);
  const log = sql(app.db, `SELECT entity_id, version FROM _rhtmx_sync_log WHERE data LIKE '%"${tag} row %' ORDER BY id;`, { json: true });
  assert.equal(new Set(log.map((l) => l.entity_id)).size, N, 'a row logged twice');
  for (let i = 1; i < log.length; i++) assert.ok(log[i].version > log[i - 1].version, 'versions not strictly increasing');
  const all = sql(app.db, 'SELECT version FROM _rhtmx_sync_log ORDER BY id;', { json: true }).map((r) => r.version);
  all.forEach((v, i) => assert.equal(v, i + 1, 'a gap or a repeat in the versions'));
  assertIntact(app.db, ['before']); // the batch's N rows were counted above
}

/** The size of db's -wal file (0 when there is none). */
const walSize = (db) => { try { return fs.statSync(`${db}-wal`).size; } catch { return 0; } };

/**
 * One kill: start(body) begins a push and returns { pid(), done(), result }. The
 * push is killed by pid once it holds the write lock and, with how = 'wal', once
 * its -wal file has also grown by 64 KB (pages of the open transaction spilled
 * there: the kill lands among the inserts, with uncommitted frames on disk). With
 * how = 'lock' the lock alone decides (for builds that outrun the WAL poll).
 * Returns { outcome, result, wal }: outcome 'killed' (nothing of the batch is in
 * the database) or 'late' (it had committed: all of it is there); result what
 * push.result resolved to; wal the -wal bytes added by the transaction at the kill.
 */
async function killMidBatch(app, tag, start, how) {
  const body = JSON.stringify(batch('c-kill', tag));
  const base = walSize(app.db);
  const push = await start(body);
  const deadline = Date.now() + 60_000;
  let held = false;
  while (!held && !push.done()) {
    assert.ok(Date.now() < deadline, 'the push neither took the write lock nor finished');
    if (how === 'wal' && walSize(app.db) < base + 65536) {
      await sleep(2);
      continue;
    }
    held = await lockHeld(app.db);
    if (held instanceof Error) throw held;
  }
  const wal = walSize(app.db) - base;
  if (held) process.kill(push.pid(), 'SIGKILL');
  const result = await push.result;
  const t = traces(app, tag);
  if (t.rows === N && t.log === N && t.mutations === N) return { outcome: 'late', result, wal };
  assert.ok(held, 'the push finished without committing');
  assert.deepEqual(t, { rows: 0, log: 0, mutations: 0 }, `part of batch ${tag} survived the kill`);
  assert.equal(sql(app.db, 'PRAGMA integrity_check;').trim(), 'ok');
  return { outcome: 'killed', result, wal };
}

const config = { push: { max_changes: N, max_body_bytes: 8 << 20 } };

test('kill -9 of sync-push as plain CGI mid-batch: nothing of it stays; the retry applies it once', async (t) => {
  const app = makeApp({ config, tag: 'kill-cgi' });
  sql(app.db, "INSERT INTO todos (title) VALUES ('before');");
  const env = {
    PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? '', UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? '',
    GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', REQUEST_METHOD: 'POST', PATH_INFO: '/todos',
    SCRIPT_NAME: '/api/sync', CONTENT_TYPE: 'application/json', RHTMX_SYNC_CONFIG: app.config,
  };
  const cgi = (body) => {
    const p = spawn(bin('sync-push'), [], { env: { ...env, CONTENT_LENGTH: String(Buffer.byteLength(body)) } });
    let out = '', err = '', over = false;
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.stdin.on('error', () => {}); // killed before it read everything
    const result = new Promise((resolve) => p.on('close', (code, signal) => { over = true; resolve({ code, signal, out, err }); }));
    p.stdin.end(body);
    return { pid: () => p.pid, done: () => over, result };
  };
  // The first run installs the triggers (v1: the row made before).
  const warm = await cgi(JSON.stringify({ client_id: 'warm', changes: [] })).result;
  assert.equal(warm.code, 0, warm.err);

  let outcome, tag;
  for (let a = 0; a < ATTEMPTS && outcome !== 'killed'; a++) {
    tag = `cgi${a}`;
    const k = await killMidBatch(app, tag, async (body) => cgi(body), HOW[a]);
    outcome = k.outcome;
    if (outcome === 'killed') {
      assert.equal(k.result.signal, 'SIGKILL');
      t.diagnostic(`killed inside the transaction (attempt ${a + 1}, ${HOW[a]}), ${k.wal} bytes of it in the -wal`);
    }
  }
  assert.equal(outcome, 'killed', `no kill landed inside the transaction in ${ATTEMPTS} attempts`);

  // The client never got an answer, so it sends the same batch again.
  const body = JSON.stringify(batch('c-kill', tag));
  const r = await cgi(body).result;
  assert.equal(r.code, 0, r.err);
  assertSanitizerClean(r.err, 'sync-push');
  const res = parseCgi(Buffer.from(r.out));
  assert.equal(res.status, 200, r.out.slice(0, 300));
  assertAppliedOnce(app, tag, res.json());
  // And once more (the answer was lost again): the same answer, nothing written.
  const dump = digest(app.db);
  const again = await cgi(body).result;
  assert.equal(again.out, r.out);
  assert.equal(digest(app.db), dump);
});

test('kill -9 of the FastCGI sync-push behind lighttpd mid-batch: all or nothing, then exactly once', async (t) => {
  const app = makeApp({ config, tag: 'kill-fcgi' });
  sql(app.db, "INSERT INTO todos (title) VALUES ('before');");
  const srv = await startLighttpd(app);
  const url = `${srv.url}/api/sync/todos`;
  const post = async (body) => {
    const r = await fetch(url, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
    return { status: r.status, text: await r.text() };
  };
  const pushPid = () => {
    const pids = childrenOf(srv.pid).filter((p) => {
      try { return fs.readlinkSync(`/proc/${p}/exe`).endsWith('/sync-push'); } catch { return false; }
    });
    assert.equal(pids.length, 1, 'one sync-push process');
    return pids[0];
  };
  /** The client's retry loop: the same body until it gets a 200 (lighttpd restarts the backend). */
  const retry = async (body) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await post(body).catch((e) => ({ status: 0, text: String(e) }));
      if (r.status === 200) return r;
      assert.ok(r.status === 0 || r.status >= 500, `retry answered ${r.status}: ${r.text}`);
      assert.ok(Date.now() < deadline, `no 200 within 30 s; last: ${r.status} ${r.text}`);
      await sleep(200);
    }
  };
  try {
    assert.equal((await post(JSON.stringify({ client_id: 'warm', changes: [] }))).status, 200);
    const killed = [];
    let outcome, tag;
    for (let a = 0; a < ATTEMPTS && outcome !== 'killed'; a++) {
      tag = `fcgi${a}`;
      const k = await killMidBatch(app, tag, async (body) => {
        const pid = pushPid();
        let over = false;
        const result = post(body).catch((e) => ({ status: 0, text: String(e) })).finally(() => { over = true; });
        return { pid: () => { killed.push(pid); return pid; }, done: () => over, result };
      }, HOW[a]);
      outcome = k.outcome;
      if (outcome === 'killed') {
        // The client got an error status (or a dropped connection), never a 200.
        assert.ok(k.result.status === 0 || k.result.status >= 500, `the killed push answered ${k.result.status}`);
        t.diagnostic(`killed inside the transaction (attempt ${a + 1}, ${HOW[a]}), ${k.wal} bytes of it in the -wal; the client got ${k.result.status}`);
      } else {
        await retry(JSON.stringify(batch('c-kill', tag))); // settle before the next attempt
      }
    }
    assert.equal(outcome, 'killed', `no kill landed inside the transaction in ${ATTEMPTS} attempts`);

    const body = JSON.stringify(batch('c-kill', tag));
    const r = await retry(body);
    assert.notEqual(pushPid(), killed.at(-1), 'lighttpd started a new sync-push');
    assertAppliedOnce(app, tag, JSON.parse(r.text));
    const dump = digest(app.db);
    const again = await post(body);
    assert.equal(again.status, 200);
    assert.equal(again.text, r.text);
    assert.equal(digest(app.db), dump);
  } finally {
    await srv.stop();
  }
});
