#!/usr/bin/env node
// Live updates at scale: 10,000 concurrent event streams through a real lighttpd
// (mod_fastcgi, max-procs 1, stream-response-body 2), or with --nginx a real nginx with the
// shipped nginx/rhtmx-sync.conf (two worker processes, sync-events under spawn-fcgi), into
// ONE sync-events process.
//
//   node bench/events.mjs [--smoke] [--nginx] [--streams N] [--commits K]
//
// Measures, and prints with the figures behind them:
//   - commit-to-receipt latency, p50 and p99 over every (stream, commit) pair, for commits
//     made by the sqlite3 shell and for commits made through sync-push (POST), one row per
//     commit, one commit at a time. The clock (CLOCK_MONOTONIC) starts just before the commit
//     is issued (the statement written to the shell's stdin / the POST sent) and stops when
//     the event is read off its socket by the client, so the figure includes the writer's
//     own commit, lighttpd, and the client: an upper bound on what sync-events adds. The
//     client is bench/events-client.c (one epoll loop, a few microseconds per event),
//     compiled on the fly with cc; without a C compiler a node client is used, whose own
//     CPU time (about 20 us per event, on the same two cores) inflates the figures;
//   - sync-events' resident memory (VmRSS, VmHWM) and thread count with all streams open;
//   - its CPU time while the streams sit idle (heartbeats only), as % of one core;
//   - a burst: 5,000 connections opened at once (after the streams above are closed),
//     each answered 200 or JSON 503 busy with Retry-After, never anything else.
// The shell runs with PRAGMA synchronous=NORMAL, as our own writers do: with FULL (its
// default) each commit first waits for an fsync of the disk, which is the disk's latency,
// not ours.
//
// Also exported as benchEvents() for bench/run.mjs: rows { name, cmp, goal, unit, ratio, met,
// figures }, with the goals of issues 8 and 17 (p50 < 20 ms, p99 < 100 ms, RSS < 200 MB, idle
// CPU < 1% of a core, 10,000 streams in one process, a burst of 5,000 all answered 200 or
// 503 busy). --smoke: 50 streams, a few commits, a short idle window, a burst of 200; proves
// the benchmark runs, figures meaningless. RHTMX_BIN chooses the build
// (a Release build without sanitizers for real figures).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { makeApp, sql, startLighttpd, childrenOf, openEvents } from '../tests/harness/rhtmx.mjs';
import { startNginx } from '../tests/harness/nginx.mjs';
import { PROGRAMS } from '../tests/harness/apache.mjs';

const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : def;
};
const SMOKE = argv.includes('--smoke');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');

function procStatus(pid, key) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`${key}:\\s+(\\d+)`));
  return m ? Number(m[1]) : NaN;
}
function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
}
/** The hard RLIMIT_NOFILE processes started from here get. */
const hardNofile = () => Number(execFileSync('sh', ['-c', 'ulimit -Hn']).toString().trim()) || 4096;
const fdCount = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** The children of pid running the executable name. */
const childrenRunning = (pid, name) => childrenOf(pid).filter((p) => {
  try { return fs.readlinkSync(`/proc/${p}/exe`).endsWith(`/${name}`); } catch { return false; }
});

/**
 * The web server in front of ONE sync-events process, sized for `want` connections:
 * lighttpd as tests/harness starts it (mod_fastcgi starts sync-events), or nginx with the
 * shipped nginx/rhtmx-sync.conf (sync-events under spawn-fcgi). Each stream holds a
 * client and a FastCGI connection in the server (docs/EVENTS.md, "Many pages"), so one
 * server process holds at most (its RLIMIT_NOFILE) / 2 streams: 10,000 for the hard limit
 * of 20,000 here, which an unprivileged server cannot raise. Beyond that the server's own
 * worker processes share the load (lighttpd: server.max-worker; nginx: worker_processes,
 * two here anyway, one per core); they all connect to the one sync-events.
 * Returns the server's handle plus { name, workers, webPids(), eventsPid }.
 */
async function startWebServer(name, app, want) {
  const perWorker = Math.floor((hardNofile() - 1024) / 2);
  if (name === 'nginx') {
    const workers = Math.max(2, Math.ceil(want / perWorker));
    const srv = await startNginx(app, { workers, connections: Math.min(2 * Math.ceil(want / workers), 2 * perWorker) });
    return { ...srv, name, workers, webPids: () => [srv.pid, ...childrenRunning(srv.pid, 'nginx')],
      eventsPid: srv.pids[PROGRAMS.indexOf('sync-events')] };
  }
  const workers = Math.ceil(want / perWorker);
  const srv = await startLighttpd(app, { maxConnections: Math.min(want, perWorker), workers });
  const events = childrenRunning(srv.pid, 'sync-events');
  const ours = () => [srv.pid, ...childrenRunning(srv.pid, 'lighttpd')]; // its workers too
  return { ...srv, name, workers, webPids: ours, eventsPid: events.length === 1 ? events[0] : null };
}

/** The sqlite3 shell kept open, one INSERT (one commit) per call. */
function shellWriter(db) {
  const p = spawn('sqlite3', ['-batch', db], { stdio: ['pipe', 'ignore', 'inherit'] });
  p.stdin.write('PRAGMA synchronous = NORMAL;\n');
  let n = 0;
  return {
    commit() { p.stdin.write(`INSERT INTO todos (title) VALUES ('shell ${n++}');\n`); },
    close() { p.stdin.end(); return new Promise((r) => p.on('close', r)); },
  };
}

/** Commits through sync-push: one create per POST. */
function pushWriter(url) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let n = 0;
  return {
    commit() {
      const i = n++;
      const body = JSON.stringify({ client_id: 'bench', changes: [
        { mutation_id: `m-${i}`, id: `tmp-${i}`, action: 'create', data: { title: `push ${i}` }, client_version: 0 }] });
      const req = http.request(`${url}/api/sync/todos`, { method: 'POST', agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        if (res.statusCode !== 200) console.error(`sync-push answered ${res.statusCode}`);
      });
      req.on('error', (e) => console.error(`sync-push: ${e.message}`));
      req.end(body);
    },
    close() { agent.destroy(); },
  };
}

const nowNs = () => Number(process.hrtime.bigint()); // CLOCK_MONOTONIC, like the C client's

/**
 * Commit `commits` times with writer, one at a time (the next once every stream has the
 * last). Returns the commit time (ns) of each version.
 */
export async function commitAll(client, writer, db, commits) {
  const t0 = new Map();
  // Nobody else writes: each commit is the next version (read once; no process spawned per commit).
  let v = Number(sql(db, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head';").trim());
  for (let c = 0; c < commits; c++) {
    v++;
    const all = client.allGot(v);
    t0.set(v, nowNs());
    writer.commit();
    await all;
    await sleep(20 + Math.random() * 30); // let everything go idle again
  }
  return t0;
}

/** Latencies (ms) of the receipts of the versions in t0, with per-commit first and last. */
export function latencies(receipts, t0) {
  const lat = [];
  const byVersion = new Map();
  for (const [v, ns] of receipts) {
    if (!t0.has(v)) continue;
    const ms = (ns - t0.get(v)) / 1e6;
    lat.push(ms);
    const m = byVersion.get(v) ?? { first: Infinity, last: -Infinity };
    m.first = Math.min(m.first, ms);
    m.last = Math.max(m.last, ms);
    byVersion.set(v, m);
  }
  lat.first = [...byVersion.values()].map((m) => m.first); // the fixed part of the path
  lat.last = [...byVersion.values()].map((m) => m.last); //   the fan-out to every stream
  return lat;
}

/** bench/events-client.c, compiled once per run into dir; null without a C compiler. */
export function buildCClient(dir) {
  const src = fileURLToPath(new URL('./events-client.c', import.meta.url));
  const exe = `${dir}/events-client`;
  try {
    execFileSync('cc', ['-O2', '-o', exe, src], { stdio: ['ignore', 'ignore', 'pipe'] });
    return exe;
  } catch {
    return null;
  }
}

/** N streams read by the C client: { ready, allGot(v), finish() -> [[v, ns]], pid, close() }. */
export async function cClient(exe, port, N) {
  const p = spawn(exe, ['127.0.0.1', String(port), '/api/sync/events', String(N)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waits = new Map();
  const got = new Set();
  const receipts = [];
  let readyResolve;
  const ready = new Promise((r) => { readyResolve = r; });
  let pending = '';
  const exited = new Promise((r) => p.on('close', r));
  p.stdout.setEncoding('latin1');
  p.stdout.on('data', (d) => {
    pending += d;
    let i;
    while ((i = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, i);
      pending = pending.slice(i + 1);
      if (line === 'ready') readyResolve();
      else if (line.startsWith('got ')) {
        const v = Number(line.slice(4));
        got.add(v);
        const w = waits.get(v);
        if (w) { waits.delete(v); w(); }
      } else if (line.startsWith('r ')) {
        const [, v, ns] = line.split(' ');
        receipts.push([Number(v), Number(ns)]);
      }
    }
  });
  await Promise.race([ready, exited.then(() => { throw new Error('events-client ended before its streams were open'); })]);
  return {
    pid: p.pid,
    allGot(v) {
      if (got.has(v)) return Promise.resolve();
      return new Promise((ok, fail) => {
        const timer = setTimeout(() => fail(new Error(`version ${v} not received by every stream within 30 s`)), 30_000);
        waits.set(v, () => { clearTimeout(timer); ok(); });
      });
    },
    async finish() { p.stdin.end(); await exited; return receipts; },
    close() { try { p.kill('SIGKILL'); } catch { /* gone */ } },
  };
}

/** The same with node sockets (no C compiler). */
export async function nodeClient(port, N) {
  const readers = [];
  const counts = new Map();
  const waits = new Map();
  const receipts = [];
  const onVersion = (v) => {
    receipts.push([v, nowNs()]);
    const c = (counts.get(v) ?? 0) + 1;
    counts.set(v, c);
    if (c === N && waits.has(v)) { waits.get(v)(); waits.delete(v); }
  };
  for (let i = 0; i < N; i += 100) {
    readers.push(...await Promise.all(Array.from({ length: Math.min(100, N - i) },
      () => openReader(port, '/api/sync/events', onVersion))));
  }
  return {
    pid: process.pid,
    allGot(v) {
      if (counts.get(v) === N) return Promise.resolve();
      return new Promise((ok, fail) => {
        const timer = setTimeout(() => fail(new Error(`version ${v} not received by every stream within 30 s`)), 30_000);
        waits.set(v, () => { clearTimeout(timer); ok(); });
      });
    },
    async finish() { return receipts; },
    close() { for (const r of readers) r.close(); },
  };
}

/** One stream on a raw socket with a line scan; calls onVersion(v) per event. */
function openReader(port, path, onVersion) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let pending = '';
    let opened = false;
    sock.setEncoding('latin1');
    sock.setNoDelay(true);
    sock.on('connect', () => sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`));
    sock.on('error', reject);
    sock.on('data', (chunk) => {
      pending += chunk;
      if (!opened) {
        if (!pending.startsWith('HTTP/1.1 200')) { reject(new Error(pending.split('\r\n')[0])); sock.destroy(); return; }
        if (!pending.includes(': rhtmx-sync')) return;
        opened = true;
        resolve({ close: () => sock.destroy() });
      }
      let start = 0;
      for (let i; (i = pending.indexOf('\n', start)) >= 0; start = i + 1) {
        if (pending.startsWith('id: ', start)) onVersion(Number(pending.slice(start + 4, i)));
      }
      pending = pending.slice(start);
    });
  });
}

export async function benchEvents({ smoke = SMOKE, streams: N = opt('--streams', smoke ? 50 : 10000),
  commits: K = opt('--commits', smoke ? 5 : 40), idleSec = smoke ? 2 : 30,
  burst: B = opt('--burst', smoke ? 200 : 5000),
  server = argv.includes('--nginx') ? 'nginx' : 'lighttpd' } = {}) {
  const app = makeApp({ config: { events: { max_streams: Math.max(10000, N + 100) } }, tag: `bench-events-${server}` });
  const want = Math.max(4096, N + 2048, B + 2048);
  const srv = await startWebServer(server, app, want);
  const { workers } = srv;
  let client = null;
  try {
    const url = `${srv.url}/api/sync/events`;
    (await openEvents(url)).close(); // triggers installed before anything is written
    const exe = buildCClient(app.dir);
    client = exe ? await cClient(exe, srv.port, N) : await nodeClient(srv.port, N);
    const clientName = exe ? 'bench/events-client.c' : 'a node client (no cc: figures inflated)';
    const pid = srv.eventsPid ?? childrenRunning(srv.pid, 'sync-events')[0];
    if (!pid) throw new Error('no sync-events process');
    const threads = procStatus(pid, 'Threads');

    // Idle: only heartbeats (events.heartbeat, 15 s by default) for idleSec.
    await sleep(1000);
    const c0 = cpuTicks(pid);
    const w0 = performance.now();
    await sleep(idleSec * 1000);
    const idleCpu = ((cpuTicks(pid) - c0) / CLK_TCK) / ((performance.now() - w0) / 1000) * 100;

    // CPU per commit of each process on the path: where the latency goes on two cores.
    const web = srv.webPids();
    const cpu = () => [cpuTicks(pid), web.map(cpuTicks).reduce((a, b) => a + b, 0), cpuTicks(client.pid)];
    const perCommit = (a, b) => {
      const ms = b.map((x, i) => ((x - a[i]) * 1000) / CLK_TCK / K);
      return `CPU per commit: sync-events ${f1(ms[0])} ms, ${srv.name} ${f1(ms[1])} ms, the client ${f1(ms[2])} ms (${clientName})`;
    };
    const shell = shellWriter(app.db);
    const c1 = cpu();
    const t0Shell = await commitAll(client, shell, app.db, K);
    const cpuShell = perCommit(c1, cpu());
    await shell.close();
    const push = pushWriter(srv.url);
    let t0Push = null;
    let pushNote = null;
    let cpuPush = '';
    try {
      const c2 = cpu();
      t0Push = await commitAll(client, push, app.db, K);
      cpuPush = perCommit(c2, cpu());
    } catch (e) {
      pushNote = `sync-push: ${e.message}`;
    }
    push.close();
    const receipts = await client.finish();
    const latShell = latencies(receipts, t0Shell);
    const latPush = t0Push ? latencies(receipts, t0Push) : [];
    const rss = procStatus(pid, 'VmRSS') / 1024;
    const hwm = procStatus(pid, 'VmHWM') / 1024;

    const figures = (lat, c) => `p50 ${f1(quantile(lat, 0.5))} ms, p99 ${f1(quantile(lat, 0.99))} ms, max ${f1(lat.reduce((a, b) => Math.max(a, b), -Infinity))} ms over ${lat.length} receipts (${K} commits × ${N} streams); per commit (median): first stream ${f1(quantile(lat.first, 0.5))} ms, last ${f1(quantile(lat.last, 0.5))} ms; ${c}`;
    const row = (name, cmp, goal, unit, value, figs) => ({
      name: server === 'lighttpd' ? name : name.replace(/^events:/, `events behind ${server}:`), cmp, goal, unit, ratio: value,
      met: smoke ? null : (cmp === '<' ? value < goal : value >= goal),
      note: smoke ? 'smoke' : undefined, figures: figs,
    });
    const rows = [
      row(`events: streams in one sync-events process`, '≥', 10000, '', N,
        `${threads} threads, 1 process, ${N} streams open behind ${server}${workers > 1 ? ` (${workers} worker processes, see docs/EVENTS.md)` : ''}`),
      row('events: sqlite3 commit → receipt p50', '<', 20, ' ms', quantile(latShell, 0.5), figures(latShell, cpuShell)),
      row('events: sqlite3 commit → receipt p99', '<', 100, ' ms', quantile(latShell, 0.99), figures(latShell, cpuShell)),
    ];
    if (latPush.length) {
      rows.push(row('events: sync-push commit → receipt p50', '<', 20, ' ms', quantile(latPush, 0.5), figures(latPush, cpuPush)));
      rows.push(row('events: sync-push commit → receipt p99', '<', 100, ' ms', quantile(latPush, 0.99), figures(latPush, cpuPush)));
    } else {
      rows.push({ name: 'events: sync-push commit → receipt', ratio: null, met: null, note: pushNote ?? 'not run' });
    }
    rows.push(row('events: sync-events RSS with the streams open', '<', 200, ' MB', rss,
      `VmRSS ${f1(rss)} MB, peak VmHWM ${f1(hwm)} MB, ${N} streams`));
    rows.push({ ...row('events: CPU with the streams idle', '<', 1, '% of a core', idleCpu,
      `${f1(idleCpu * 10)} ms CPU per s over ${idleSec} s idle (heartbeats only), ${N} streams`),
    ...(idleCpu === 0 ? { met: smoke ? null : true } : {}) });

    // The burst: the streams above are gone (the client closed them); B connections at once.
    client.close();
    client = null;
    for (let i = 0; i < 300 && fdCount(pid) > 64; i++) await sleep(100);
    const fdsBefore = fdCount(pid);
    if (exe) {
      const out = execFileSync(exe, ['127.0.0.1', String(srv.port), '/api/sync/events', String(B), 'burst'],
        { encoding: 'utf8', timeout: 120_000 });
      const m = out.match(/^burst (\d+) (\d+) ok=(\d+) busy=(\d+) busy_json=(\d+) retry_after=(\d+) other=(\d+) failed=(\d+)/m);
      const [, , ms, ok, busy, json, retry, other, failed] = m.map(Number);
      const wrong = other + failed + (busy - Math.min(json, retry));
      rows.push(row(`events: a burst of ${B} connections, answers other than 200 or JSON 503 busy with Retry-After`,
        '<', 1, '', wrong,
        `${B} opened at once, all answered within ${ms} ms: ${ok} × 200, ${busy} × 503 (${json} JSON, ${retry} with Retry-After), ${other} other, ${failed} without an answer; sync-events had ${fdsBefore} descriptors open before it and ${procStatus(pid, 'Threads')} threads after it`));
    } else {
      rows.push({ name: 'events: burst', ratio: null, met: null, note: 'needs a C compiler' });
    }
    return rows;
  } finally {
    if (client) client.close();
    await srv.stop();
  }
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const rows = await benchEvents();
  console.log(`\nsync-events benchmark${SMOKE ? ' (SMOKE: figures meaningless)' : ''}, binaries from ${process.env.RHTMX_BIN ?? 'build/cgi-bin'}`);
  for (const r of rows) {
    const goal = r.goal === undefined ? '' : ` (goal ${r.cmp} ${r.goal}${r.unit})`;
    const v = Number.isFinite(r.ratio) ? `${f1(r.ratio)}${r.unit ?? ''}` : r.note;
    console.log(`${r.name}: ${v}${goal}${r.met === true ? ' met' : r.met === false ? ' NOT MET' : ''}${r.figures ? `\n    ${r.figures}` : ''}`);
  }
  const bad = rows.filter((r) => r.met !== null && r.met !== undefined && !Number.isFinite(r.ratio));
  process.exit(bad.length ? 1 : 0);
}
