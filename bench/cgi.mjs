// Plain CGI: sync-pull run by lighttpd's mod_cgi, a process per request, against a minimal
// C CGI program printing the same answer through the same server. What sync-pull adds
// over the floor (fork + exec) is its start-up: dynamic libraries, reading the config,
// opening the database, checking the schema, preparing the statement.
//
// With BENCH_STATIC_BIN (bench/run-all.sh sets it when the build offers RHTMX_STATIC), the
// upload-ready build with its libraries linked in runs beside it as /bench/static/.
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

  const staticBin = process.env.BENCH_STATIC_BIN ? path.join(process.env.BENCH_STATIC_BIN, 'sync-pull') : null;
  const withStatic = staticBin && fs.existsSync(staticBin);
  const extra = withStatic ? `$HTTP["url"] =~ "^/bench/static/" {
      alias.url += ( "/bench/static" => "${staticBin}" )
      cgi.assign = ( "" => "" )
    }` : '';
  const srv = await startServers(app, { cgi: true, bodyFile, extra });
  try {
    const u = { pull: `${srv.url}/api/sync/items?${query}`, fixed: `${srv.url}/bench/fixed` };
    if (withStatic) u.static = `${srv.url}/bench/static/items?${query}`;
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
    if (withStatic) {
      rows.push(result('plain CGI, upload-ready build (RHTMX_STATIC=ON: libraries linked in) vs minimal C CGI', {
        ratio: r.static / r.fixed, goal: 0.5,
        figures: `static sync-pull ${fmt(r.static)} req/s, minimal CGI ${fmt(r.fixed)} req/s`,
      }));
    }
    return rows;
  } finally {
    await srv.stop();
  }
}
