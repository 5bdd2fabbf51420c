#!/usr/bin/env node
// The benchmark suite: every target of issue 8 as a ratio against a baseline measured side
// by side in the same run, with the figures behind it. See bench/README.md.
//
//   node bench/run.mjs [--smoke] [--only pull,cgi,push,browser,events,pg,scope] [--json FILE]
//
// Environment: RHTMX_BIN (the executables; bench/run-all.sh points it at a Release build
// without sanitizers), BENCH_BASELINES (bench-fcgi-fixed, bench-cgi-fixed).
// --smoke: tiny sizes and sub-second loads; checks that each benchmark runs and yields
// figures (the `bench` CTest label), never how fast. Exits 77 when a tool it needs (wrk,
// php-cgi, lighttpd, sqlite3) is missing, so CTest reports a skip rather than a failure.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { SMOKE, BASELINES, bin, fmt, haveWrk } from './common.mjs';

const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : null;
};
const only = arg('--only') ? arg('--only').split(',') : null;
const wanted = (name) => !only || only.includes(name);

function missing() {
  for (const tool of ['lighttpd', 'php-cgi', 'sqlite3']) {
    if (spawnSync('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`], { stdio: 'ignore' }).status !== 0) return tool;
  }
  if (!haveWrk()) return 'wrk';
  for (const f of [bin('sync-pull'), bin('rhtmx-sync'), path.join(BASELINES, 'bench-fcgi-fixed'), path.join(BASELINES, 'bench-cgi-fixed')]) {
    if (!fs.existsSync(f)) return f;
  }
  return null;
}

function machine() {
  const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1] ?? 'unknown CPU';
  return `${os.cpus().length} cores (nproc ${spawnSync('nproc').stdout.toString().trim()}), ${cpu}, ${os.type()} ${os.release()}`;
}

function table(rows) {
  const lines = [
    '| target | goal | measured | met | figures |',
    '|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const goal = r.goal === undefined ? '' : `${r.cmp} ${r.goal}${r.unit ?? '×'}`;
    const measured = r.ratio === null || r.ratio === undefined ? 'n/a' : `${fmt(r.ratio, 2)}${r.unit ?? '×'}`;
    const met = r.met === null || r.met === undefined ? (r.note ?? 'not run') : r.met ? 'yes' : '**no**';
    lines.push(`| ${r.name} | ${goal} | ${measured} | ${met} | ${r.figures ?? ''} |`);
  }
  return lines.join('\n');
}

/* The PostgreSQL rows, from the build BENCH_PG_BIN names (bench/run-all.sh builds one with
 * -DRHTMX_POSTGRES=ON beside the default one), in a process of their own so the other
 * benchmarks keep RHTMX_BIN; without BENCH_PG_BIN, from RHTMX_BIN (the test build). */
async function benchPgBuild() {
  if (!process.env.BENCH_PG_BIN) return import('./pg.mjs').then((m) => m.benchPg());
  const r = spawnSync(process.execPath, [path.join(path.dirname(new URL(import.meta.url).pathname), 'pg.mjs'),
    ...(SMOKE ? ['--smoke'] : [])], {
    env: { ...process.env, RHTMX_BIN: process.env.BENCH_PG_BIN, RHTMX_BUILD: path.dirname(process.env.BENCH_PG_BIN) },
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 16 << 20,
  });
  if (r.status !== 0) throw new Error(`bench/pg.mjs exited with ${r.status}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}

async function main() {
  const why = missing();
  if (why) {
    console.log(`SKIP benchmarks: ${why} is missing`);
    process.exit(SMOKE ? 77 : 1);
  }
  const suites = [
    ['pull', () => import('./pull.mjs').then((m) => m.benchPull())],
    ['cgi', () => import('./cgi.mjs').then((m) => m.benchCgi())],
    ['push', () => import('./push.mjs').then((m) => m.benchPush())],
    // The same 10,000 streams behind each server we ship a config for that streams.
    ['events', () => import('./events.mjs').then(async (m) => [
      ...(await m.benchEvents({ server: 'lighttpd' })), ...(await m.benchEvents({ server: 'nginx' }))])],
    ['browser', () => import('./browser.mjs').then((m) => m.benchBrowser())],
    ['pg', () => benchPgBuild()],
    ['scope', () => import('./scope.mjs').then((m) => m.benchScope())],
  ];
  const rows = [];
  let failed = false;
  // In a smoke run nothing is judged: sizes are tiny and the build may be sanitized.
  const judge = (r) => (SMOKE && Number.isFinite(r.ratio) ? { ...r, met: null, note: 'smoke' } : r);
  const t0 = Date.now();
  for (const [name, run] of suites) {
    if (!wanted(name)) continue;
    const t = Date.now();
    process.stderr.write(`bench: ${name}...\n`);
    try {
      const got = (await run()).map(judge);
      rows.push(...got);
      for (const r of got) process.stderr.write(`  ${r.name}: ${r.ratio === null || r.ratio === undefined ? r.note : fmt(r.ratio, 2)} (${r.figures ?? ''})\n`);
    } catch (err) {
      failed = true;
      rows.push({ name: `${name}: FAILED`, ratio: null, met: null, note: 'failed', figures: String(err.message).split('\n')[0] });
      process.stderr.write(`bench: ${name} failed: ${err.stack}\n`);
    }
    process.stderr.write(`bench: ${name} took ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
  }
  console.log(`\nrhtmx-sync benchmarks${SMOKE ? ' (SMOKE: tiny sizes, figures meaningless)' : ''}, ${new Date().toISOString().slice(0, 10)}`);
  console.log(`machine: ${machine()}`);
  console.log(`total time: ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  console.log(table(rows));
  const out = arg('--json');
  if (out) fs.writeFileSync(out, JSON.stringify({ machine: machine(), smoke: SMOKE, rows }, null, 2));
  if (SMOKE) {
    // The smoke run asserts that every benchmark ran and produced figures; never timings.
    // Rows say 'not run' only when their program is not in this build (501) or a tool is
    // missing (Chromium); anything else must carry a number.
    const empty = rows.filter((r) => !Number.isFinite(r.ratio) && !/^not run/.test(r.note ?? ''));
    if (failed || empty.length) {
      console.log(`\nsmoke: ${failed ? 'a benchmark failed' : `no figures for ${empty.map((r) => r.name).join(', ')}`}`);
      process.exit(1);
    }
  }
  process.exit(failed ? 1 : 0);
}

main().catch((err) => { console.error(err); process.exit(1); });
