#!/usr/bin/env node
// Live updates at scale: 1,000 concurrent event streams through a real lighttpd
// (mod_fastcgi, max-procs 1, stream-response-body 2) into ONE sync-events process.
//
//   node bench/events.mjs [--smoke] [--streams N] [--commits K]
//
// Measures, and prints with the figures behind them:
//   - commit-to-receipt latency, p50 and p99 over every (stream, commit) pair, for commits
//     made by the sqlite3 shell and for commits made through sync-push (POST), one row per
//     commit, one commit at a time. The clock starts just before the commit is issued (the
//     statement written to the shell's stdin / the POST sent) and stops when the event is
//     parsed in this process, so the figure includes the writer's own commit and this
//     client's handling of 1,000 sockets: an upper bound on what sync-events adds;
//   - sync-events' resident memory (VmRSS, VmHWM) and thread count with all streams open;
//   - its CPU time while the streams sit idle (heartbeats only), as % of one core.
// The shell runs with PRAGMA synchronous=NORMAL, as our own writers do: with FULL (its
// default) each commit first waits for an fsync of the disk, which is the disk's latency,
// not ours.
//
// Also exported as benchEvents() for bench/run.mjs: rows { name, cmp, goal, unit, ratio, met,
// figures }, with the goals of issue 8 (p50 < 20 ms, p99 < 100 ms, RSS < 100 MB, idle CPU
// < 1% of a core, 1,000 streams in one process). --smoke: 50 streams, a few commits, a short
// idle window; proves the benchmark runs, figures meaningless. RHTMX_BIN chooses the build
// (a Release build without sanitizers for real figures).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { makeApp, sql, startLighttpd, childrenOf, openEvents } from '../tests/harness/rhtmx.mjs';

const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : def;
};
const SMOKE = argv.includes('--smoke');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs, q) => {
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
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function eventsPid(srv) {
  const pids = childrenOf(srv.pid).filter((p) => {
    try { return fs.readlinkSync(`/proc/${p}/exe`).endsWith('/sync-events'); } catch { return false; }
  });
  if (pids.length !== 1) throw new Error(`expected one sync-events process, found ${pids.length}`);
  return pids[0];
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

/**
 * Commit `commits` times with writer, one at a time, and return the latencies (ms) of every
 * stream's receipt of every commit.
 */
async function measure(streams, writer, db, commits) {
  const lat = [];
  lat.first = []; // per commit: the first stream to have it (the fixed part of the path)
  lat.last = []; //  and the last (the fan-out to every stream)
  // Nobody else writes: each commit is the next version (read once; no process spawned per commit).
  let v = Number(sql(db, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head';").trim());
  for (let c = 0; c < commits; c++) {
    v++;
    const got = streams.map((s) => s.waitVersion(v));
    const t0 = performance.now();
    writer.commit();
    const times = await Promise.all(got);
    for (const t of times) lat.push(t - t0);
    lat.first.push(Math.min(...times) - t0);
    lat.last.push(Math.max(...times) - t0);
    await sleep(20 + Math.random() * 30); // let everything go idle again
  }
  return lat;
}

/**
 * A stream that records when each version arrives. A raw socket and a line scan rather than
 * node's HTTP client and the harness's SSE parser: with 1,000 streams on two cores the
 * client's own CPU time per event is part of every figure, so it is kept small.
 */
function openReader(port, path) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const seen = new Map();
    const waits = new Map();
    let pending = '';
    let opened = false;
    const api = {
      close: () => sock.destroy(),
      waitVersion(v) {
        if (seen.has(v)) return Promise.resolve(seen.get(v));
        return new Promise((ok, fail) => {
          const timer = setTimeout(() => fail(new Error(`version ${v} not received within 30 s`)), 30_000);
          waits.set(v, (t) => { clearTimeout(timer); ok(t); });
        });
      },
    };
    sock.setEncoding('latin1');
    sock.setNoDelay(true);
    sock.on('connect', () => sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`));
    sock.on('error', reject);
    sock.on('data', (chunk) => {
      const t = performance.now();
      pending += chunk;
      if (!opened) {
        if (!pending.startsWith('HTTP/1.1 200')) { reject(new Error(pending.split('\r\n')[0])); sock.destroy(); return; }
        if (!pending.includes(': rhtmx-sync')) return;
        opened = true;
        resolve(api);
      }
      let start = 0;
      for (let i; (i = pending.indexOf('\n', start)) >= 0; start = i + 1) {
        if (pending.startsWith('id: ', start)) {
          const v = Number(pending.slice(start + 4, i));
          seen.set(v, t);
          const w = waits.get(v);
          if (w) { waits.delete(v); w(t); }
        }
      }
      pending = pending.slice(start);
    });
  });
}

export async function benchEvents({ smoke = SMOKE, streams: N = opt('--streams', smoke ? 50 : 1000),
  commits: K = opt('--commits', smoke ? 5 : 40), idleSec = smoke ? 2 : 30 } = {}) {
  const app = makeApp({ config: { events: { max_streams: Math.max(2000, N + 100) } }, tag: 'bench-events' });
  const srv = await startLighttpd(app);
  const readers = [];
  try {
    const url = `${srv.url}/api/sync/events`;
    (await openEvents(url)).close(); // triggers installed before anything is written
    for (let i = 0; i < N; i += 100) {
      readers.push(...await Promise.all(Array.from({ length: Math.min(100, N - i) },
        () => openReader(srv.port, '/api/sync/events'))));
    }
    const pid = eventsPid(srv);
    const threads = procStatus(pid, 'Threads');

    // Idle: only heartbeats (events.heartbeat, 15 s by default) for idleSec.
    await sleep(1000);
    const c0 = cpuTicks(pid);
    const w0 = performance.now();
    await sleep(idleSec * 1000);
    const idleCpu = ((cpuTicks(pid) - c0) / CLK_TCK) / ((performance.now() - w0) / 1000) * 100;

    // CPU per commit of each process on the path: where the latency goes on two cores.
    const cpu = () => [pid, srv.pid, process.pid].map(cpuTicks);
    const perCommit = (a, b) => {
      const ms = b.map((x, i) => ((x - a[i]) * 1000) / CLK_TCK / K);
      return `CPU per commit: sync-events ${f1(ms[0])} ms, lighttpd ${f1(ms[1])} ms, this client ${f1(ms[2])} ms`;
    };
    const shell = shellWriter(app.db);
    const c1 = cpu();
    const latShell = await measure(readers, shell, app.db, K);
    const cpuShell = perCommit(c1, cpu());
    await shell.close();
    const push = pushWriter(srv.url);
    let latPush = [];
    let pushNote = null;
    let cpuPush = '';
    try {
      const c2 = cpu();
      latPush = await measure(readers, push, app.db, K);
      cpuPush = perCommit(c2, cpu());
    } catch (e) {
      pushNote = `sync-push: ${e.message}`;
    }
    push.close();
    const rss = procStatus(pid, 'VmRSS') / 1024;
    const hwm = procStatus(pid, 'VmHWM') / 1024;

    const figures = (lat, c) => `p50 ${f1(quantile(lat, 0.5))} ms, p99 ${f1(quantile(lat, 0.99))} ms, max ${f1(Math.max(...lat))} ms over ${lat.length} receipts (${K} commits × ${N} streams); per commit (median): first stream ${f1(quantile(lat.first, 0.5))} ms, last ${f1(quantile(lat.last, 0.5))} ms; ${c}`;
    const row = (name, cmp, goal, unit, value, figs) => ({
      name, cmp, goal, unit, ratio: value,
      met: smoke ? null : (cmp === '<' ? value < goal : value >= goal),
      note: smoke ? 'smoke' : undefined, figures: figs,
    });
    const rows = [
      row(`events: streams in one sync-events process`, '≥', 1000, '', N,
        `${threads} threads, 1 process, ${N} streams open`),
      row('events: sqlite3 commit → receipt p50', '<', 20, ' ms', quantile(latShell, 0.5), figures(latShell, cpuShell)),
      row('events: sqlite3 commit → receipt p99', '<', 100, ' ms', quantile(latShell, 0.99), figures(latShell, cpuShell)),
    ];
    if (latPush.length) {
      rows.push(row('events: sync-push commit → receipt p50', '<', 20, ' ms', quantile(latPush, 0.5), figures(latPush, cpuPush)));
      rows.push(row('events: sync-push commit → receipt p99', '<', 100, ' ms', quantile(latPush, 0.99), figures(latPush, cpuPush)));
    } else {
      rows.push({ name: 'events: sync-push commit → receipt', ratio: null, met: null, note: pushNote ?? 'not run' });
    }
    rows.push(row('events: sync-events RSS with the streams open', '<', 100, ' MB', rss,
      `VmRSS ${f1(rss)} MB, peak VmHWM ${f1(hwm)} MB, ${N} streams`));
    rows.push({ ...row('events: CPU with the streams idle', '<', 1, '% of a core', idleCpu,
      `${f1(idleCpu * 10)} ms CPU per s over ${idleSec} s idle (heartbeats only), ${N} streams`),
    ...(idleCpu === 0 ? { met: smoke ? null : true } : {}) });
    return rows;
  } finally {
    for (const r of readers) r.close();
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
