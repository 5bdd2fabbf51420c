// Pull benchmarks, all through one lighttpd with sync-pull, the minimal libfcgi responder
// and the PHP pull side by side as FastCGI (one process each):
//   small delta   10 changes a request: req/s against the minimal responder and PHP
//   page          1,000 changes a request: changes/s against PHP
//   full          every row of the table, page by page over HTTP, against the sqlite3
//                 shell writing the same change objects from the same file; and the peak
//                 RSS of the sync-pull process when it is done
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { runCgi } from '../tests/harness/rhtmx.mjs';
import {
  P, makeDataset, startServers, get, wrkSideBySide, memKb, childPids, median, now, since,
  fmt, result,
} from './common.mjs';

const PAGE = 1000;

/** The change objects the sqlite3 shell writes: one json_object per row, from the same
 * query as sync-pull's (lib/db.c, STMT_PULL), so the database work is equal. */
const SHELL_SQL = `SELECT json_object('id', l.entity_id, 'action', 'create', 'data', json(l.data),
         'version', l.version)
    FROM _rhtmx_sync_log AS l
    LEFT JOIN _rhtmx_sync_log AS m INDEXED BY idx_sync_row_version
      ON m.entity = l.entity AND m.entity_id = l.entity_id AND m.version > l.version
   WHERE l.entity = 'items' AND l.action <> 'delete' AND m.version IS NULL
   ORDER BY l.version;`;

/** Time the sqlite3 shell writing every change object to out; returns seconds. */
function shellFull(db, out) {
  const fd = fs.openSync(out, 'w');
  const t0 = now();
  const r = spawnSync('sqlite3', ['-batch', '-noheader', '-list', db, SHELL_SQL], { stdio: ['ignore', fd, 'pipe'] });
  const t = since(t0);
  fs.closeSync(fd);
  assert.equal(r.status, 0, `sqlite3: ${r.stderr}`);
  return t;
}

/** Pull the whole entity page by page over one keep-alive connection; returns { sec, bodies }. */
async function httpFull(base) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const bodies = [];
  const t0 = now();
  let cursor = 0;
  for (;;) {
    const r = await get(`${base}/api/sync/items?since=${cursor}&limit=${PAGE}`, { agent });
    if (r.status !== 200) throw new Error(`full pull: ${r.status} ${r.body}`);
    bodies.push(r.body);
    // The cursor and has_more close every answer: read them from the tail, as cheaply as
    // a client that streams the changes would.
    const tail = r.body.subarray(Math.max(0, r.body.length - 64)).toString();
    const m = tail.match(/"has_more":(true|false),"version":(\d+)\}\s*$/);
    if (!m) throw new Error(`full pull: unexpected tail ${tail}`);
    cursor = Number(m[2]);
    if (m[1] === 'false') break;
  }
  const sec = since(t0);
  agent.destroy();
  return { sec, bodies };
}

export async function benchPull() {
  const results = [];
  const app = makeDataset({ rows: P.rows, tag: 'bench-pull' });
  const smallQuery = `since=${app.head - 10}`;
  const pageQuery = `since=${Math.floor(P.rows / 10)}&limit=${PAGE}`;

  // The fixed body of the minimal responder is exactly sync-pull's small answer.
  const smallAnswer = runCgi('sync-pull', { config: app.config, path: '/items', query: smallQuery });
  assert.equal(smallAnswer.status, 200);
  const bodyFile = path.join(app.dir, 'small.json');
  fs.writeFileSync(bodyFile, smallAnswer.body);

  const srv = await startServers(app, { bodyFile });
  try {
    const u = {
      pull: (q) => `${srv.url}/api/sync/items?${q}`,
      php: (q) => `${srv.url}/bench/pull.php?entity=items&${q}`,
      fixed: `${srv.url}/bench/fixed`,
      early: `${srv.url}/bench/fixed-early`,
    };
    // Same answers before any timing: the baselines do the same work.
    for (const q of [smallQuery, pageQuery]) {
      const [a, b] = await Promise.all([get(u.pull(q)), get(u.php(q))]);
      assert.equal(a.status, 200, `sync-pull ${q}: ${a.body}`);
      assert.equal(b.status, 200, `pull.php ${q}: ${b.body}`);
      assert.deepEqual(JSON.parse(b.body), JSON.parse(a.body), `pull.php answers as sync-pull for ${q}`);
    }
    const smallChanges = JSON.parse(smallAnswer.body).changes.length;
    assert.equal(smallChanges, 10);
    // The same bytes with the same headers: an answer of known length is less work for
    // the web server than one it must frame, so a responder without Content-Length would
    // be a lower ceiling than the one sync-pull is held to.
    const headersOf = (r) => Object.fromEntries(['content-type', 'content-length', 'cache-control', 'vary',
      'transfer-encoding'].map((h) => [h, r.headers[h]]));
    const pullSmall = await get(u.pull(smallQuery));
    for (const url of [u.fixed, u.early]) {
      const r = await get(url);
      assert.deepEqual(r.body, smallAnswer.body);
      assert.deepEqual(headersOf(r), headersOf(pullSmall), `${url} answers with sync-pull's headers`);
    }

    // Two responders: libfcgi as shipped, and one ending its connections as sync-pull does
    // (at once, not after waiting for the web server to close first: lib/http.c). The
    // second is the ceiling of the path sync-pull takes, so the target is judged on it.
    const one = (name) => {
      const p = childPids(srv, name);
      assert.equal(p.length, 1, `one ${name} process`);
      return p[0];
    };
    const small = await wrkSideBySide({
      pull: u.pull(smallQuery), early: u.early, fixed: u.fixed, php: u.php(smallQuery),
    }, { pids: { pull: one('sync-pull'), early: fixedPid(srv, 'BENCH_CLOSE_EARLY=1') } });
    results.push(result('small delta pull (10 changes) vs minimal libfcgi responder closing as sync-pull does', {
      ratio: small.pull / small.early, goal: 0.7,
      figures: `sync-pull ${fmt(small.pull)} req/s, fixed-body responder ${fmt(small.early)} req/s; `
        + `CPU per request: sync-pull ${fmt(small.cpuUs.pull, 1)} µs, responder ${fmt(small.cpuUs.early, 1)} µs`,
    }));
    results.push(result('small delta pull (10 changes) vs minimal libfcgi responder as shipped', {
      ratio: small.pull / small.fixed,
      figures: `sync-pull ${fmt(small.pull)} req/s, fixed-body responder (libfcgi's lingering close) ${fmt(small.fixed)} req/s`,
    }));
    results.push(result('small delta pull (10 changes) vs PHP (PDO + json_encode)', {
      ratio: small.pull / small.php, goal: 4,
      figures: `sync-pull ${fmt(small.pull)} req/s, PHP ${fmt(small.php)} req/s`,
    }));

    const page = await wrkSideBySide({ pull: u.pull(pageQuery), php: u.php(pageQuery) }, { connections: 2 });
    results.push(result(`page pull (${PAGE} changes) vs PHP, changes/s`, {
      ratio: page.pull / page.php, goal: 3,
      figures: `sync-pull ${fmt(page.pull * PAGE)} changes/s, PHP ${fmt(page.php * PAGE)} changes/s`,
    }));

    // Full pull: HTTP page by page against the shell, alternating.
    const shellOut = path.join(app.dir, 'shell.jsonl');
    const th = [], ts = [];
    let bodies;
    for (let r = 0; r < P.rounds; r++) {
      const h = await httpFull(srv.url);
      th.push(h.sec);
      bodies = h.bodies;
      ts.push(shellFull(app.db, shellOut));
    }
    // Both produced every live row once, in the same order.
    const ids = bodies.flatMap((b) => JSON.parse(b).changes.map((c) => c.id));
    const shellLines = fs.readFileSync(shellOut, 'utf8').trimEnd().split('\n');
    assert.equal(ids.length, P.fullRows);
    assert.equal(shellLines.length, P.fullRows);
    assert.deepEqual(JSON.parse(shellLines[shellLines.length - 1]).id, ids[ids.length - 1]);
    const full = { http: median(th), shell: median(ts) };
    results.push(result(`full pull of ${fmt(P.fullRows)} rows, ${bodies.length} pages over HTTP, time vs sqlite3 shell`, {
      ratio: full.http / full.shell, goal: 1.5, cmp: '<=',
      figures: `HTTP ${fmt(full.http * 1000)} ms, sqlite3 shell ${fmt(full.shell * 1000)} ms`,
    }));

    const mem = memKb(one('sync-pull'));
    results.push(result('sync-pull peak RSS after all of the above', {
      ratio: mem.peak / 1024, goal: 32, cmp: '<', unit: ' MB',
      figures: `VmHWM ${fmt(mem.peak / 1024, 1)} MB, VmRSS now ${fmt(mem.rss / 1024, 1)} MB`,
    }));
  } finally {
    await srv.stop();
  }
  return results;
}

/** The pid of the responder started with env entry `entry` (two run one executable). */
function fixedPid(srv, entry) {
  const p = childPids(srv, 'bench-fcgi-fixed').filter((pid) =>
    fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(entry));
  assert.equal(p.length, 1, `one responder with ${entry}`);
  return p[0];
}
