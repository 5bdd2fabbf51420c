// Shared by the benchmarks: the data set, the web servers with the baselines beside the
// product, the load generator (wrk), and how figures are taken.
//
// Every figure is taken side by side in one run: a benchmark alternates the product and its
// baseline in short rounds and keeps the median of each, so a neighbour's burst of CPU on
// this shared machine hits both sides alike. Absolute numbers are printed only as the
// figures behind a ratio.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  makeApp, sql, startLighttpd, childrenOf, stopPid, bin,
} from '../tests/harness/rhtmx.mjs';

export { sql, bin, childrenOf, stopPid };

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..');
export const BASELINES = process.env.BENCH_BASELINES ?? path.join(ROOT, 'build-bench/bench');
export const SMOKE = process.argv.includes('--smoke');

/** Sizes and durations: the real run, or a smoke run that only proves the harness works. */
export const P = SMOKE
  ? { rows: 3000, fullRows: 3000, browserRows: 600, pushBatch: 50, wrkSec: 1, rounds: 1, reps: 1 }
  : { rows: 100_000, fullRows: 100_000, browserRows: 20_000, pushBatch: 1000, wrkSec: 2, rounds: 3, reps: 5 };

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export const ITEMS_SCHEMA = `
CREATE TABLE items (
  id INTEGER PRIMARY KEY,
  title TEXT NOT NULL,
  done INTEGER NOT NULL DEFAULT 0,
  note TEXT,
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);`;

/** A row as the app would write it (the same shape for every benchmark). */
export const rowValues = (i) => [`item ${i}: buy milk and bread`, i % 3 === 0 ? 1 : 0, `note for item ${i}`];

/**
 * An app (database + config) with `rows` items, the triggers installed by
 * `rhtmx-sync init` (so every row is a logged create), then `updates` rows
 * changed by the sqlite3 shell: the newest `updates` versions are updates.
 */
export function makeDataset({ rows, updates = 10, tag = 'bench', config = {} }) {
  const app = makeApp({
    tag,
    schema: `${ITEMS_SCHEMA}
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows})
      INSERT INTO items (title, done, note)
        SELECT 'item ' || i || ': buy milk and bread', i % 3 = 0, 'note for item ' || i FROM n;`,
    config: { entities: ['items'], ...config },
  });
  execFileSync(bin('rhtmx-sync'), ['init', '--config', app.config], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (updates > 0) sql(app.db, `UPDATE items SET done = 1 - done WHERE id <= ${updates};`);
  app.head = Number(sql(app.db, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head';").trim());
  return app;
}

/**
 * One lighttpd, the product's executables as FastCGI (one process each, as
 * tests/harness does) and beside them, through the same server:
 *   /bench/fixed     the minimal libfcgi responder (fixed body from bodyFile)
 *   /bench/fixed-early  the same, ending connections as sync-pull does (BENCH_CLOSE_EARLY)
 *   /bench/pull.php  the PHP pull under php-cgi as FastCGI, one process
 * With cgi: true, everything is mod_cgi and /bench/fixed is the minimal C CGI.
 */
export async function startServers(app, { cgi = false, bodyFile = '/dev/null', docroot = null, env = {}, extra = '' } = {}) {
  const www = docroot ?? fs.mkdtempSync(path.join(path.dirname(app.dir), 'www-'));
  fs.mkdirSync(path.join(www, 'bench'), { recursive: true });
  fs.copyFileSync(path.join(here, 'baselines/pull.php'), path.join(www, 'bench/pull.php'));
  const sock = (name) => path.join(app.dir, `${name}.sock`);
  const fixed = cgi
    ? `$HTTP["url"] =~ "^/bench/fixed" {
         alias.url += ( "/bench/fixed" => "${path.join(BASELINES, 'bench-cgi-fixed')}" )
         cgi.assign = ( "" => "" )
       }`
    : `$HTTP["url"] =~ "^/bench/fixed$" {
         fastcgi.server = ( "/bench/fixed" => ( ( "bin-path" => "${path.join(BASELINES, 'bench-fcgi-fixed')}",
           "socket" => "${sock('fixed')}", "max-procs" => 1, "check-local" => "disable",
           "bin-environment" => ( "BENCH_BODY_FILE" => "${bodyFile}" ) ) ) )
       }
       $HTTP["url"] =~ "^/bench/fixed-early" {
         fastcgi.server = ( "/bench/fixed-early" => ( ( "bin-path" => "${path.join(BASELINES, 'bench-fcgi-fixed')}",
           "socket" => "${sock('fixed-early')}", "max-procs" => 1, "check-local" => "disable",
           "bin-environment" => ( "BENCH_BODY_FILE" => "${bodyFile}", "BENCH_CLOSE_EARLY" => "1" ) ) ) )
       }`;
  // php-cgi as a single FastCGI process like the others. PHP_FCGI_MAX_REQUESTS is raised
  // from its default of 500 so PHP is not charged for restarts during the run.
  const php = `$HTTP["url"] =~ "^/bench/pull\\.php" {
      fastcgi.server = ( ".php" => ( ( "bin-path" => "/usr/bin/php-cgi", "socket" => "${sock('php')}",
        "max-procs" => 1, "bin-environment" => ( "BENCH_DB" => "${app.db}", "PHP_FCGI_CHILDREN" => "0",
        "PHP_FCGI_MAX_REQUESTS" => "1000000" ) ) ) )
    }`;
  return startLighttpd(app, {
    cgi, docroot: www, env: { BENCH_BODY_FILE: bodyFile, ...env },
    extra: `${fixed}\n${cgi ? '' : php}\n${extra}\n`,
  });
}

/** GET url; resolves { status, headers, body: Buffer }. Keep-alive through agent when given. */
export function get(url, { agent, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** POST a JSON body; resolves like get(). */
export function post(url, body, { agent } = {}) {
  const data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST', agent,
      headers: { 'Content-Type': 'application/json', 'Content-Length': data.length },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

export function haveWrk() {
  return spawnSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' }).status === 0;
}

/**
 * Load url with wrk on loopback for sec seconds with `connections` keep-alive
 * connections on one thread. Resolves { rps, requests, errors } and fails on
 * any non-2xx answer or socket error: a fast error page is not a result.
 */
export function wrk(url, { sec = P.wrkSec, connections = 4 } = {}) {
  return new Promise((resolve, reject) => {
    // wrk takes whole seconds only.
    const args = ['-t1', `-c${connections}`, `-d${Math.max(1, Math.round(sec))}s`, '--timeout', '10s', url];
    const p = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const guard = setTimeout(() => p.kill('SIGKILL'), (sec + 30) * 1000);
    p.on('close', (code) => {
      clearTimeout(guard);
      const rps = Number((out.match(/Requests\/sec:\s+([\d.]+)/) || [])[1]);
      const requests = Number((out.match(/(\d+) requests in/) || [])[1]);
      const bad = Number((out.match(/Non-2xx or 3xx responses:\s+(\d+)/) || [0, 0])[1]);
      const sockErr = /Socket errors:/.test(out) ? out.match(/Socket errors:.*/)[0] : '';
      if (code !== 0 || !(rps > 0)) return reject(new Error(`wrk ${url} failed (${code}):\n${out}`));
      if (bad > 0 || sockErr) return reject(new Error(`wrk ${url}: ${bad} bad answers ${sockErr}\n${out}`));
      resolve({ rps, requests });
    });
  });
}

/**
 * Alternate the named request loads in rounds (a, b, c, a, b, c, ...), each for P.wrkSec,
 * after a one-second warm-up of each; resolves { name: median req/s }. With
 * opts.pids ({ name: pid of the process serving it }) it also resolves
 * cpuUs: { name: that process's CPU time per request in microseconds, over all rounds },
 * the cost of a request apart from how two shared cores happen to interleave the
 * web server, the load generator and the backend.
 */
export async function wrkSideBySide(urls, { pids = {}, ...opts } = {}) {
  const all = Object.fromEntries(Object.keys(urls).map((k) => [k, []]));
  const cpu = Object.fromEntries(Object.keys(pids).map((k) => [k, { ns: 0, requests: 0 }]));
  if (!SMOKE) for (const u of Object.values(urls)) await wrk(u, { ...opts, sec: 1 });
  for (let r = 0; r < P.rounds; r++) {
    for (const [name, u] of Object.entries(urls)) {
      const before = pids[name] ? cpuNs(pids[name]) : 0;
      const w = await wrk(u, opts);
      all[name].push(w.rps);
      if (pids[name]) {
        cpu[name].ns += cpuNs(pids[name]) - before;
        cpu[name].requests += w.requests;
      }
    }
  }
  const rps = Object.fromEntries(Object.entries(all).map(([k, v]) => [k, median(v)]));
  if (Object.keys(pids).length === 0) return rps;
  rps.cpuUs = Object.fromEntries(Object.entries(cpu).map(([k, c]) => [k, c.ns / 1000 / c.requests]));
  return rps;
}

/** CPU time pid has run for, in nanoseconds, all its threads together (a FastCGI program
 * serves on a pool thread, not its main one): the sum of /proc/PID/task/TID/schedstat, or
 * the coarser utime + stime of /proc/PID/stat on a kernel built without it. */
function cpuNs(pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).reduce((ns, tid) => ns
      + Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]), 0);
  } catch {
    return cpuSec(pid) * 1e9;
  }
}

/** Peak and current resident set of pid in kB (VmHWM, VmRSS). */
export function memKb(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((s.match(new RegExp(`${k}:\\s+(\\d+)`)) || [])[1]);
  return { peak: kb('VmHWM'), rss: kb('VmRSS') };
}

/** CPU time (user + system) of pid in seconds. */
export function cpuSec(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** The pids of lighttpd's children running executable `name`. */
export function childPids(srv, name) {
  return childrenOf(srv.pid).filter((p) => {
    try { return fs.readlinkSync(`/proc/${p}/exe`).endsWith(`/${name}`); } catch { return false; }
  });
}

/** Seconds since t0 (a process.hrtime.bigint()). */
export const since = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
export const now = () => process.hrtime.bigint();

/** Format a number for the table. */
export function fmt(x, digits = 0) {
  if (x === null || x === undefined || Number.isNaN(x)) return 'n/a';
  return x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/**
 * A result row: target text, measured ratio, whether it is met (cmp '>=' or '<='
 * against goal), and the figures behind it. Without a goal the row is a reference
 * figure, judged by nothing.
 */
export function result(name, { ratio, goal, cmp = '>=', unit = '×', figures, note }) {
  if (goal === undefined) return { name, ratio, unit, met: null, figures, note: note ?? 'reference' };
  const met = ratio === null || ratio === undefined ? null
    : cmp === '>=' ? ratio >= goal : cmp === '<' ? ratio < goal : ratio <= goal;
  return { name, ratio, goal, cmp, unit, met, figures, note };
}
