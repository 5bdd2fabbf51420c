// PostgreSQL (docs/POSTGRES.md): the rows issue 20 asks for, each against a baseline
// measured side by side in the same run, on a throwaway cluster started by
// tests/harness/postgres.mjs (fsync off: the figures are the programs', not the disk's).
//   small pull    10 changes a request: sync-pull vs a PHP pull (PDO pgsql) of the same rows
//   page pull     1,000 changes a request: changes/s, the same two
//   push          a batch of creates through sync-push vs psql inserting the same rows in
//                 one transaction (triggers on for both)
//   events        commit (by psql) to receipt over N streams (1,000; smoke: 50) in one
//                 sync-events process, p50 and p99
// Skipped (rows say why) when the build lacks -DRHTMX_POSTGRES=ON, PostgreSQL's server
// binaries are missing, or php-cgi has no pdo_pgsql (Debian: php-pgsql).
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLighttpd, openEvents, runCgi } from '../tests/harness/rhtmx.mjs';
import { startPostgres, pgSkipReason } from '../tests/harness/postgres.mjs';
import { backendApp } from '../tests/harness/backends.mjs';
import { buildCClient, cClient, nodeClient, latencies } from './events.mjs';
import {
  P, SMOKE, bin, get, post, wrkSideBySide, median, now, since, fmt, result, rowValues,
} from './common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const PAGE = 1000;
const quote = (s) => `'${String(s).replace(/'/g, "''")}'`;
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const nowNs = () => Number(process.hrtime.bigint());

const ITEMS = `CREATE TABLE items (
  id serial PRIMARY KEY,
  title text NOT NULL,
  done integer NOT NULL DEFAULT 0,
  note text,
  updated_at text NOT NULL DEFAULT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
);`;

function phpHasPgsql() {
  const r = spawnSync('php-cgi', ['-m'], { encoding: 'utf8' });
  return r.status === 0 && /^pdo_pgsql$/m.test(r.stdout);
}

const skipped = (why) => ['small pull (10 changes) vs PHP (PDO pgsql)', `page pull (${PAGE} changes) vs PHP (PDO pgsql)`,
  'push vs psql inserts', 'commit (psql) → receipt'].map((n) => result(`postgres: ${n}`, { ratio: null, note: `not run: ${why}` }));

export async function benchPg() {
  const why = pgSkipReason() ?? (phpHasPgsql() ? null : 'php-cgi has no pdo_pgsql (Debian: php-pgsql)');
  if (why) return skipped(why);
  const pg = await startPostgres({ settings: { max_connections: 300 } });
  try {
    return [...await pulls(pg), ...await pushes(pg), ...await events(pg)];
  } finally {
    await pg.stop();
  }
}

/** An app on PostgreSQL with `rows` items, initialised, then `updates` rows changed by psql. */
async function dataset(pg, { rows, updates = 10, tag, config = {} }) {
  const app = await backendApp(pg, {
    postgres: `${ITEMS} INSERT INTO items (title, done, note)
      SELECT 'item ' || i || ': buy milk and bread', (i % 3 = 0)::int, 'note for item ' || i FROM generate_series(1, ${rows}) AS i;`,
    config: { entities: ['items'], ...config }, tag,
  });
  const r = spawnSync(bin('rhtmx-sync'), ['init', '--config', app.config], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  if (updates > 0) app.exec(`UPDATE items SET done = 1 - done WHERE id <= ${updates};`);
  app.exec('VACUUM ANALYZE;');
  app.head = Number(app.exec("SELECT value FROM _rhtmx_sync_state WHERE key = 'head'").trim());
  return app;
}

async function pulls(pg) {
  const app = await dataset(pg, { rows: P.rows, tag: 'benchpgpull' });
  const www = fs.mkdtempSync(path.join(app.dir, 'www-'));
  fs.mkdirSync(path.join(www, 'bench'));
  fs.copyFileSync(path.join(here, 'baselines/pull-pg.php'), path.join(www, 'bench/pull-pg.php'));
  const dsn = `pgsql:host=${pg.socketDir};dbname=${app.dbname};user=${pg.role}`;
  const srv = await startLighttpd(app, {
    docroot: www,
    extra: `$HTTP["url"] =~ "^/bench/pull-pg\\.php" {
      fastcgi.server = ( ".php" => ( ( "bin-path" => "/usr/bin/php-cgi", "socket" => "${app.dir}/php.sock",
        "max-procs" => 1, "bin-environment" => ( "BENCH_PG_DSN" => "${dsn}", "PHP_FCGI_CHILDREN" => "0",
        "PHP_FCGI_MAX_REQUESTS" => "1000000" ) ) ) )
    }`,
  });
  try {
    const smallQuery = `since=${app.head - 10}`;
    const pageQuery = `since=${Math.floor(P.rows / 10)}&limit=${PAGE}`;
    const u = {
      pull: (q) => `${srv.url}/api/sync/items?${q}`,
      php: (q) => `${srv.url}/bench/pull-pg.php?entity=items&${q}`,
    };
    for (const q of [smallQuery, pageQuery]) {
      const [a, b] = await Promise.all([get(u.pull(q)), get(u.php(q))]);
      assert.equal(a.status, 200, `sync-pull ${q}: ${a.body}`);
      assert.equal(b.status, 200, `pull-pg.php ${q}: ${b.body}`);
      assert.deepEqual(JSON.parse(b.body), JSON.parse(a.body), `pull-pg.php answers as sync-pull for ${q}`);
    }
    assert.equal(JSON.parse((await get(u.pull(smallQuery))).body).changes.length, 10);
    const small = await wrkSideBySide({ pull: u.pull(smallQuery), php: u.php(smallQuery) });
    const page = await wrkSideBySide({ pull: u.pull(pageQuery), php: u.php(pageQuery) }, { connections: 2 });
    return [
      result('postgres: small pull (10 changes) vs PHP (PDO pgsql)', {
        ratio: small.pull / small.php,
        figures: `sync-pull ${fmt(small.pull)} req/s, PHP ${fmt(small.php)} req/s (${fmt(P.rows)} rows)`,
      }),
      result(`postgres: page pull (${PAGE} changes) vs PHP (PDO pgsql), changes/s`, {
        ratio: page.pull / page.php,
        figures: `sync-pull ${fmt(page.pull * PAGE)} changes/s, PHP ${fmt(page.php * PAGE)} changes/s`,
      }),
    ];
  } finally {
    await srv.stop();
  }
}

async function pushes(pg) {
  const n = P.pushBatch;
  const app = await dataset(pg, { rows: 1000, updates: 0, tag: 'benchpgpush' });
  const srv = await startLighttpd(app);
  try {
    const url = `${srv.url}/api/sync/items`;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const tp = [], ts = [];
    for (let rep = 0; rep < P.reps + 1; rep++) {
      const body = JSON.stringify({ client_id: `bench-${rep}`, changes: Array.from({ length: n }, (_, i) => {
        const [title, done, note] = rowValues(rep * n + i);
        return { mutation_id: `m-${i}`, id: `tmp-${i}`, action: 'create', data: { title, done, note }, client_version: 0 };
      }) });
      const lines = ['BEGIN;'];
      for (let i = 0; i < n; i++) {
        const [title, done, note] = rowValues(1e6 + rep * n + i);
        lines.push(`INSERT INTO items (title, done, note) VALUES (${quote(title)}, ${done}, ${quote(note)});`);
      }
      lines.push('COMMIT;');
      let t0 = now();
      const r = await post(url, body, { agent });
      const tPush = since(t0);
      assert.equal(r.status, 200, String(r.body).slice(0, 300));
      assert.equal(JSON.parse(r.body).applied.length, n);
      t0 = now();
      app.exec(lines.join('\n'));
      const tPsql = since(t0);
      if (rep > 0) { tp.push(tPush); ts.push(tPsql); }
    }
    agent.destroy();
    assert.equal(Number(app.exec("SELECT count(*) FROM _rhtmx_sync_log WHERE entity = 'items'").trim()), 1000 + 2 * n * (P.reps + 1));
    const push = n / median(tp), psql = n / median(ts);
    return [result(`postgres: push of ${fmt(n)} creates in one batch vs psql inserts in one transaction (triggers on), rows/s`, {
      ratio: push / psql,
      figures: `sync-push ${fmt(push)} rows/s (${fmt(median(tp) * 1000, 1)} ms a batch), psql ${fmt(psql)} rows/s (${fmt(median(ts) * 1000, 1)} ms)`,
    })];
  } finally {
    await srv.stop();
  }
}

async function events(pg) {
  const N = SMOKE ? 50 : 1000;
  const K = SMOKE ? 5 : 40;
  const app = await backendApp(pg, {
    postgres: 'CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL, done integer NOT NULL DEFAULT 0);',
    config: { events: { max_streams: N + 100 } }, tag: 'benchpgevents',
  });
  const srv = await startLighttpd(app, { maxConnections: N + 1024 });
  let client = null;
  const writer = pg.session(app.dbname, 'bench-writer');
  try {
    (await openEvents(`${srv.url}/api/sync/events`)).close(); // triggers in before anything is written
    const exe = buildCClient(app.dir);
    client = exe ? await cClient(exe, srv.port, N) : await nodeClient(srv.port, N);
    let v = Number(app.exec("SELECT value FROM _rhtmx_sync_state WHERE key = 'head'").trim());
    const t0 = new Map();
    for (let c = 0; c < K; c++) {
      v++;
      const all = client.allGot(v);
      t0.set(v, nowNs());
      writer.send(`INSERT INTO todos (title) VALUES ('psql ${c}');`);
      await all;
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 30));
    }
    const lat = latencies(await client.finish(), t0);
    client = null;
    const figures = `p50 ${f1(quantile(lat, 0.5))} ms, p99 ${f1(quantile(lat, 0.99))} ms over ${lat.length} receipts (${K} commits × ${N} streams, one sync-events process); per commit (median): first stream ${f1(quantile(lat.first, 0.5))} ms, last ${f1(quantile(lat.last, 0.5))} ms; ${exe ? 'bench/events-client.c' : 'a node client'}`;
    return [
      result(`postgres: commit (psql) → receipt p50, ${N} streams`, { ratio: quantile(lat, 0.5), goal: 20, cmp: '<', unit: ' ms', figures }),
      result(`postgres: commit (psql) → receipt p99, ${N} streams`, { ratio: quantile(lat, 0.99), goal: 100, cmp: '<', unit: ' ms', figures }),
    ];
  } finally {
    if (client) client.close();
    await writer.close();
    await srv.stop();
  }
}

/*
 * Run as a program (bench/run.mjs does, with RHTMX_BIN pointing at a build with
 * -DRHTMX_POSTGRES=ON, which the other benchmarks do not use): prints the rows as JSON.
 */
if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const rows = await benchPg();
  process.stdout.write(`${JSON.stringify(rows)}\n`);
}
