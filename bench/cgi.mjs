// Plain CGI: sync-pull run by lighttpd's mod_cgi, a process per request, against a minimal
// C CGI program printing the same answer through the same server. What sync-pull adds
// over the floor (fork + exec) is its start-up: dynamic libraries, reading the config,
// opening the database, checking the schema, preparing the statement.
//
// The upload-ready builds run beside it when bench/run-all.sh made them (cmake/Static.cmake):
// BENCH_STATIC_BIN (RHTMX_STATIC=ON: libraries linked in, the C library shared) as
// /bench/static/, BENCH_FULLSTATIC_BIN (FULL: nothing shared, the build docs/DEPLOY.md
// recommends for shared hosting) as /bench/fullstatic/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCgi } from '../tests/harness/rhtmx.mjs';
import { P, makeDataset, startServers, get, wrkSideBySide, fmt, result } from './common.mjs';

export async function benchCgi() {
  const app = makeDataset({ rows: Math.min(P.rows, 10_000), tag: 'bench-cgi' });
  const query = `since=${app.head - 10}`;
  const answer = runCgi('sync-pull', { config: app.config, path: '/items', query });
  assert.equal(answer.status, 200);
  const bodyFile = path.join(app.dir, 'small.json');
  fs.writeFileSync(bodyFile, answer.body);

  const builds = [
    { name: 'static', env: 'BENCH_STATIC_BIN', what: 'upload-ready build (RHTMX_STATIC=ON: libraries linked in, libc shared)' },
    { name: 'fullstatic', env: 'BENCH_FULLSTATIC_BIN', what: 'upload-ready build (RHTMX_STATIC=FULL: fully static, the one docs/DEPLOY.md recommends)' },
  ].map((b) => ({ ...b, bin: process.env[b.env] ? path.join(process.env[b.env], 'sync-pull') : null }))
    .filter((b) => b.bin && fs.existsSync(b.bin));
  const extra = builds.map((b) => `$HTTP["url"] =~ "^/bench/${b.name}/" {
      alias.url += ( "/bench/${b.name}" => "${b.bin}" )
      cgi.assign = ( "" => "" )
    }`).join('\n');
  const srv = await startServers(app, { cgi: true, bodyFile, extra });
  try {
    const u = { pull: `${srv.url}/api/sync/items?${query}`, fixed: `${srv.url}/bench/fixed` };
    for (const b of builds) u[b.name] = `${srv.url}/bench/${b.name}/items?${query}`;
    for (const url of Object.values(u)) {
      const a = await get(url);
      assert.equal(a.status, 200, `${url}: ${a.body}`);
      assert.deepEqual(a.body, answer.body, `${url} answers the same bytes`);
    }
    const r = await wrkSideBySide(u, { connections: 4 });
    const rows = [result('plain CGI: sync-pull (10 changes) vs minimal C CGI program', {
      ratio: r.pull / r.fixed, goal: 0.5,
      figures: `sync-pull ${fmt(r.pull)} req/s, minimal CGI ${fmt(r.fixed)} req/s`,
    })];
    for (const b of builds) {
      rows.push(result(`plain CGI, ${b.what} vs minimal C CGI`, {
        ratio: r[b.name] / r.fixed, goal: 0.5,
        figures: `${b.name} sync-pull ${fmt(r[b.name])} req/s, minimal CGI ${fmt(r.fixed)} req/s`,
      }));
    }
    return rows;
  } finally {
    await srv.stop();
  }
}
