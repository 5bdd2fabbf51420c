// Sync rules (an entity's "scope", lib/scope.h) at scale, through one lighttpd:
//   full pull   every row of 100,000 under a membership scope, page by page over HTTP,
//               against the same pull of the same table without a scope (a second entity
//               on the same table), alternating. "first": a user's first pull, which builds
//               their view (one entry per row in scope); "again": a pull of a user whose view
//               is built (another device of theirs). The target is judged on the first.
//   events      1,000 streams of 100 users (10 each), each a member of the list every commit
//               writes to, so every stream's filter probes the scope and every stream gets
//               every commit; commit-to-receipt p50 and p99 (bench/events-client.c).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { makeApp, sql, startLighttpd, openEvents, bin } from '../tests/harness/rhtmx.mjs';
import { mintToken, claims } from '../tests/harness/token.mjs';
import { P, SMOKE, get, median, now, since, fmt, result, cpuSec, childPids } from './common.mjs';
import { quantile, commitAll, latencies, buildCClient, cClient } from './events.mjs';

const PAGE = 1000;
const MEMBER = 'list_id IN (SELECT list_id FROM list_members WHERE user_id = :user)';

/** An app in token mode: a fresh secret and a token minter. */
function tokenApp({ schema, config, tag }) {
  const app = makeApp({ tag, schema, config: { ...config, auth: { mode: 'token', secret_file: 'sync.secret' } } });
  const secret = 'b'.repeat(16) + Math.random().toString(36).slice(2).padEnd(32, 'x');
  fs.writeFileSync(path.join(app.dir, 'sync.secret'), `${secret}\n`, { mode: 0o600 });
  execFileSync(bin('rhtmx-sync'), ['init', '--config', app.config], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { ...app, token: (sub) => mintToken(secret, claims(sub, { exp: Math.floor(Date.now() / 1000) + 86400 })) };
}

/** Pull entity whole, page by page, over one keep-alive connection; returns { sec, rows }. */
async function fullPull(base, entity, token) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const headers = { Authorization: `Bearer ${token}` };
  let cursor = 0, rows = 0, first = true;
  const t0 = now();
  for (;;) {
    const r = await get(`${base}/api/sync/${entity}?since=${cursor}&limit=${PAGE}${first ? '' : '&full=1'}`, { agent, headers });
    if (r.status !== 200) throw new Error(`full pull of ${entity}: ${r.status} ${r.body}`);
    const tail = r.body.subarray(Math.max(0, r.body.length - 64)).toString();
    const m = tail.match(/"has_more":(true|false),"version":(\d+)\}\s*$/);
    if (!m) throw new Error(`full pull: unexpected tail ${tail}`);
    rows += (r.body.toString().match(/"action":"create"/g) ?? []).length;
    cursor = Number(m[2]);
    first = false;
    if (m[1] === 'false') break;
  }
  const sec = since(t0);
  agent.destroy();
  return { sec, rows };
}

async function benchFullPull() {
  const rows = P.fullRows;
  const users = P.reps + 1;
  const app = tokenApp({
    tag: 'bench-scope-pull',
    schema: `CREATE TABLE list_members (list_id INTEGER NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (list_id, user_id)) WITHOUT ROWID;
      CREATE INDEX list_members_user ON list_members (user_id, list_id);
      CREATE TABLE items (id INTEGER PRIMARY KEY, list_id INTEGER NOT NULL, title TEXT NOT NULL,
        done INTEGER NOT NULL DEFAULT 0, note TEXT);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows})
      INSERT INTO items (list_id, title, done, note)
        SELECT 1 + i % 10, 'item ' || i || ': buy milk and bread', i % 3 = 0, 'note for item ' || i FROM n;
      WITH RECURSIVE l(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM l WHERE i < 10),
                     u(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM u WHERE j < ${users})
      INSERT INTO list_members SELECT i, 'u' || j FROM l, u;
      INSERT INTO list_members VALUES (99, 'other');`,
    config: { entities: ['items', { name: 'scoped', table: 'items', scope: MEMBER }] },
  });
  const srv = await startLighttpd(app);
  try {
    const plain = [], first = [], again = [];
    // Warm-up: the page cache and the processes, for both paths.
    await fullPull(srv.url, 'items', app.token('u0'));
    await fullPull(srv.url, 'scoped', app.token('u0'));
    const [pid] = childPids(srv, 'sync-pull');
    // Wall time, and sync-pull's own CPU time (the machine may be shared: CPU is what the
    // program spent, wall what the client waited).
    const timed = async (entity, user) => {
      const c0 = cpuSec(pid);
      const r = await fullPull(srv.url, entity, app.token(user));
      return { ...r, cpu: cpuSec(pid) - c0 };
    };
    for (let i = 1; i <= P.reps; i++) {
      const p = await timed('items', 'u0');
      const f = await timed('scoped', `u${i}`); // builds u<i>'s view
      const a = await timed('scoped', `u${i}`); // u<i>'s other device
      assert.equal(p.rows, rows);
      assert.equal(f.rows, rows, 'the scope lets every row through');
      assert.equal(a.rows, rows);
      plain.push(p); first.push(f); again.push(a);
    }
    const m = (xs, k) => median(xs.map((x) => x[k]));
    const mp = m(plain, 'sec'), mf = m(first, 'sec'), ma = m(again, 'sec');
    const cp = m(plain, 'cpu'), cf = m(first, 'cpu'), ca = m(again, 'cpu');
    return [
      result(`scope: full pull of ${fmt(rows)} rows under a membership scope (a user's first) vs without a scope`, {
        ratio: mf / mp, goal: 1.5, cmp: '<=',
        figures: `scoped (first, builds the view) ${fmt(mf * 1000)} ms, without scope ${fmt(mp * 1000)} ms; sync-pull CPU ${fmt(cf * 1000)} vs ${fmt(cp * 1000)} ms (${fmt(cf / cp, 2)}×); median of ${P.reps}, pages of ${PAGE}`,
      }),
      result(`scope: full pull of ${fmt(rows)} rows under a membership scope (view built) vs without a scope`, {
        ratio: ma / mp, goal: 1.5, cmp: '<=',
        figures: `scoped (again) ${fmt(ma * 1000)} ms, without scope ${fmt(mp * 1000)} ms; sync-pull CPU ${fmt(ca * 1000)} vs ${fmt(cp * 1000)} ms; median of ${P.reps}`,
      }),
    ];
  } finally {
    await srv.stop();
  }
}

/** Commit-to-receipt latencies to users × perUser streams; scoped: the entity has the
 * membership scope (else none: the same streams and commits, for reference). */
async function eventsRun({ scoped, users, perUser, commits }) {
  const N = users * perUser;
  const app = tokenApp({
    tag: 'bench-scope-events',
    schema: `CREATE TABLE list_members (list_id INTEGER NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (list_id, user_id)) WITHOUT ROWID;
      CREATE INDEX list_members_user ON list_members (user_id, list_id);
      CREATE TABLE todos (id INTEGER PRIMARY KEY, list_id INTEGER NOT NULL, title TEXT NOT NULL);
      CREATE INDEX todos_list ON todos (list_id);
      WITH RECURSIVE u(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM u WHERE j < ${users - 1})
      INSERT INTO list_members SELECT 1, 'u' || j FROM u UNION ALL SELECT 2 + j, 'u' || j FROM u;
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
      INSERT INTO todos (list_id, title) SELECT 1 + i % ${users + 1}, 'todo ' || i FROM n;`,
    config: { entities: [scoped ? { name: 'todos', scope: MEMBER } : 'todos'], events: { max_streams: N + 100 } },
  });
  const tokens = path.join(app.dir, 'tokens.txt');
  fs.writeFileSync(tokens, Array.from({ length: users }, (_, j) => app.token(`u${j}`)).join('\n') + '\n');
  const srv = await startLighttpd(app, { maxConnections: Math.max(4096, N * 2 + 256) });
  let client = null;
  try {
    const exe = buildCClient(app.dir);
    if (!exe) return null;
    (await openEvents(`${srv.url}/api/sync/events`, { headers: { Authorization: `Bearer ${app.token('u0')}` } })).close();
    process.env.EVENTS_CLIENT_TOKENS = tokens;
    try {
      client = await cClient(exe, srv.port, N);
    } finally {
      delete process.env.EVENTS_CLIENT_TOKENS;
    }
    const shell = spawn('sqlite3', ['-batch', app.db], { stdio: ['pipe', 'ignore', 'inherit'] });
    shell.stdin.write('PRAGMA synchronous = NORMAL;\n');
    let n = 0;
    const writer = { commit() { shell.stdin.write(`INSERT INTO todos (list_id, title) VALUES (1, 'shared ${n++}');\n`); } };
    const t0 = await commitAll(client, writer, app.db, commits);
    shell.stdin.end();
    const receipts = await client.finish();
    client = null;
    return latencies(receipts, t0);
  } finally {
    if (client) client.close();
    await srv.stop();
  }
}

async function benchScopedEvents({ users = SMOKE ? 10 : 100, perUser = 10, commits = SMOKE ? 5 : 40 } = {}) {
  const N = users * perUser;
  const lat = await eventsRun({ scoped: true, users, perUser, commits });
  if (!lat) return [{ name: 'scope: a commit to scoped streams', ratio: null, met: null, note: 'needs a C compiler' }];
  const ref = await eventsRun({ scoped: false, users, perUser, commits });
  const figs = `p50 ${fmt(quantile(lat, 0.5), 1)} ms, p99 ${fmt(quantile(lat, 0.99), 1)} ms over ${lat.length} receipts (${commits} commits by the sqlite3 shell × ${N} streams of ${users} users, ${perUser} each, every stream's filter probing the membership scope); per commit (median): first stream ${fmt(quantile(lat.first, 0.5), 1)} ms, last ${fmt(quantile(lat.last, 0.5), 1)} ms; the same streams and commits without a scope, in the same run: p50 ${fmt(quantile(ref, 0.5), 1)} ms, p99 ${fmt(quantile(ref, 0.99), 1)} ms`;
  return [
    result(`scope: commit → receipt p50, ${N} scoped streams (${users} users)`, { ratio: quantile(lat, 0.5), goal: 20, cmp: '<', unit: ' ms', figures: figs }),
    result(`scope: commit → receipt p99, ${N} scoped streams (${users} users)`, { ratio: quantile(lat, 0.99), goal: 100, cmp: '<', unit: ' ms', figures: figs }),
  ];
}

export async function benchScope() {
  return [...await benchFullPull(), ...await benchScopedEvents()];
}
