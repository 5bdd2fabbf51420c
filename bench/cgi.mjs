// Plain CGI: sync-pull run by lighttpd's mod_cgi, a process per request, against a minimal
// C CGI program printing the same answer through the same server. What sync-pull adds
// over the floor (fork + exec) is its start-up: loading libraries, reading the config,
// opening the database, checking the schema, preparing the statement.
//
// RHTMX_BIN is the build under test (bench/run-all.sh: the default one, RHTMX_STATIC=AUTO,
// which is ON where the archives are installed: libraries linked in, the C library shared).
// Beside it when bench/run-all.sh made them (cmake/Static.cmake): BENCH_FULLSTATIC_BIN
// (FULL: nothing shared, the build docs/DEPLOY.md recommends for shared hosting) as
// /bench/fullstatic/, and BENCH_SHARED_BIN (OFF: the system's shared libraries, for
// distribution packages; a reference row) as /bench/shared/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCgi, bin, neededLibs } from '../tests/harness/rhtmx.mjs';
import { P, makeDataset, startServers, get, wrkSideBySide, fmt, result } from './common.mjs';

export async function benchCgi() {
  const app = makeDataset({ rows: Math.min(P.rows, 10_000), tag: 'bench-cgi' });
  const query = `since=${app.head - 10}`;
  const answer = runCgi('sync-pull', { config: app.config, path: '/items', query });
  assert.equal(answer.status, 200);
  const bodyFile = path.join(app.dir, 'small.json');
  fs.writeFileSync(bodyFile, answer.body);

  const builds = [
    { name: 'fullstatic', env: 'BENCH_FULLSTATIC_BIN', goal: 0.5 },
    { name: 'shared', env: 'BENCH_SHARED_BIN' },
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
    const rows = [result(`plain CGI: sync-pull (10 changes), ${linkage(bin('sync-pull'))}, vs minimal C CGI program`, {
      ratio: r.pull / r.fixed, goal: 0.5,
      figures: `sync-pull ${fmt(r.pull)} req/s, minimal CGI ${fmt(r.fixed)} req/s`,
    })];
    for (const b of builds) {
      rows.push(result(`plain CGI: sync-pull, ${linkage(b.bin)}, vs minimal C CGI`, {
        ratio: r[b.name] / r.fixed, goal: b.goal,
        figures: `${b.name} sync-pull ${fmt(r[b.name])} req/s, minimal CGI ${fmt(r.fixed)} req/s`,
      }));
    }
    return rows;
  } finally {
    await srv.stop();
  }
}

/** How a program was linked, from its dynamic section (cmake/Static.cmake's kinds). */
function linkage(file) {
  const needed = neededLibs(file);
  if (needed.length === 0) return 'fully static build (RHTMX_STATIC=FULL)';
  if (needed.some((n) => n.startsWith('libsqlite3'))) return 'shared-library build (RHTMX_STATIC=OFF)';
  return 'libraries linked in, libc shared (RHTMX_STATIC=ON, the default where the archives are installed)';
}
